/*
 * test_session.c -- unit tests of the pure parts of sign-in
 * (lib/cs_session.c: cs_session_next_valid, cs_session_cookie). The
 * database half -- minting, spending and revoking links and sessions --
 * is covered by ../integration/.
 *
 * cs_session_next_valid decides where a browser goes after sign-in, so it
 * must accept only a local path: one '/', then printable ASCII without
 * spaces or backslashes, at most CS_NEXT_PATH_MAX bytes. Everything a
 * browser would read as another origin ("//host", "/\host", a scheme),
 * every control character, space, DEL and non-ASCII byte is refused.
 *
 * cs_session_cookie is the session's Set-Cookie value: HttpOnly,
 * SameSite=Lax, Path=/, Max-Age the absolute lifetime, Secure exactly when
 * CS_PUBLIC_URL is https; the clearing form has an empty value and
 * Max-Age=0 with the same attributes.
 */
#include <string.h>

#include "cs_config.h"
#include "cs_session.h"
#include "cs_test.h"

CS_TEST(next_accepts_local_paths)
{
    static const char *const ok[] = {
        "/inbox",
        "/status/x",
        "/batch/abc?page=2",
        "/status/AQGJ-_x#frag",
        "/a/b/c.d?x=1&y=%2F",
        "/signin?next=/inbox",
        "/~user",
        "/a//b",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!CS_CHECK(cs_session_next_valid(ok[i])))
            printf("  refused: \"%s\"\n", ok[i]);
}

CS_TEST(next_refuses_other_origins)
{
    static const char *const bad[] = {
        "",
        "/",
        "x",
        "inbox",
        "//evil.example",
        "//evil.example/inbox",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "/a\\b",
        "/a b",
        " /inbox",
        "/inbox ",
        "https://evil.example/",
        "javascript:alert(1)",
        "./inbox",
        "?next=/",
        "#/inbox",
        "/a\tb",
        "/a\nb",
        "/a\rb",
        "/\t/evil.example",
        "/a\x7f",
        "/a\x01",
        "/a\x1f",
        "/caf\xc3\xa9",
        "/\xe2\x80\xae",
        "/\xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CS_CHECK(!cs_session_next_valid(bad[i])))
            printf("  accepted: case %zu\n", i);
    CS_CHECK(!cs_session_next_valid(NULL));
}

CS_TEST(next_every_byte)
{
    /* "/a<c>b" for every byte: exactly printable ASCII but space and backslash. */
    int wrong = 0;
    for (int c = 1; c < 256; c++) {
        char p[] = {'/', 'a', (char)c, 'b', '\0'};
        bool want = c > 0x20 && c < 0x7f && c != '\\';
        if (cs_session_next_valid(p) != want) {
            printf("  byte 0x%02x: %s\n", c, want ? "refused" : "accepted");
            wrong++;
        }
    }
    CS_CHECK_EQ_INT(wrong, 0);
    /* The byte after the first '/' decides "//host" and "/\host". */
    for (int c = 1; c < 256; c++) {
        char p[] = {'/', (char)c, 'x', '\0'};
        bool want = c > 0x20 && c < 0x7f && c != '\\' && c != '/';
        if (!CS_CHECK(cs_session_next_valid(p) == want))
            printf("  second byte 0x%02x\n", c);
    }
}

CS_TEST(next_length)
{
    char p[CS_NEXT_PATH_MAX + 2];
    memset(p, 'a', sizeof(p));
    p[0] = '/';
    p[CS_NEXT_PATH_MAX] = '\0';
    CS_CHECK_EQ_INT(strlen(p), 512);
    CS_CHECK(cs_session_next_valid(p));
    p[CS_NEXT_PATH_MAX] = 'a';
    p[CS_NEXT_PATH_MAX + 1] = '\0';
    CS_CHECK(!cs_session_next_valid(p));
}

/* A zeroed config with only what cs_session_cookie reads. */
static void config(struct cs_config *cfg, const char *public_url)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->public_url = (char *)public_url;
    cfg->session_max_s = 43200;
}

#define TOKEN "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE"

CS_TEST(cookie_plain_http)
{
    struct cs_config cfg;
    char out[256];
    CS_CHECK_EQ_INT(strlen(TOKEN), CS_SESSION_TOKEN_LEN);
    config(&cfg, "http://127.0.0.1:8080");
    cs_session_cookie(&cfg, TOKEN, out, sizeof(out));
    CS_CHECK_EQ_STR(out, "cs_session=" TOKEN "; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200");
    cs_session_cookie(&cfg, NULL, out, sizeof(out));
    CS_CHECK_EQ_STR(out, "cs_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
}

CS_TEST(cookie_https_is_secure)
{
    struct cs_config cfg;
    char out[256];
    config(&cfg, "https://cs.example.com/");
    cfg.session_max_s = 2592000; /* the largest CS_SESSION_MAX_SECONDS */
    cs_session_cookie(&cfg, TOKEN, out, sizeof(out));
    CS_CHECK_EQ_STR(out, "cs_session=" TOKEN
                         "; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000; Secure");
    cs_session_cookie(&cfg, NULL, out, sizeof(out));
    CS_CHECK_EQ_STR(out, "cs_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure");

    /* Secure only for an https scheme, not for "https" elsewhere in the URL. */
    config(&cfg, "http://https.example.com/https:");
    cs_session_cookie(&cfg, TOKEN, out, sizeof(out));
    CS_CHECK(!strstr(out, "Secure"));
    CS_CHECK_HAS(out, "HttpOnly");
}

CS_TEST(cookie_fits_small_buffers)
{
    /* snprintf semantics: cut, always terminated, never past n. */
    struct cs_config cfg;
    char out[32];
    config(&cfg, "https://cs.example.com");
    memset(out, 'x', sizeof(out));
    cs_session_cookie(&cfg, TOKEN, out, 16);
    CS_CHECK_EQ_INT(strlen(out), 15);
    CS_CHECK(out[16] == 'x');
    memset(out, 'x', sizeof(out));
    cs_session_cookie(&cfg, TOKEN, out, 0);
    CS_CHECK(out[0] == 'x'); /* untouched */
}

CS_TEST_MAIN(CS_RUN(next_accepts_local_paths), CS_RUN(next_refuses_other_origins),
             CS_RUN(next_every_byte), CS_RUN(next_length), CS_RUN(cookie_plain_http),
             CS_RUN(cookie_https_is_secure), CS_RUN(cookie_fits_small_buffers))
