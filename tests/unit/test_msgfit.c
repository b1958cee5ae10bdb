/*
 * test_msgfit.c -- unit tests of fitting Kafka messages to the broker's
 * limit (lib/cs_msgfit.c).
 *
 * An event that fits is published unchanged (NULL). A result whose body
 * would make it too large comes back within the limit, with body_b64 a
 * true prefix of the body, body_truncated set and body_cut giving the
 * whole body's size and SHA-256, the limit and the route to read it;
 * every other field intact. Huge headers and error messages are cut next;
 * something that is not JSON becomes the minimal message. A dead letter
 * keeps its original whole when it fits, else a prefix with the
 * original's size and SHA-256, always within the limit.
 */
#include <string.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_msgfit.h"
#include "cs_test.h"

#define KEY_LEN 36

static unsigned char *body_of(size_t n)
{
    unsigned char *b = cs_malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + (i >> 9));
    return b;
}

/* A result as the outbox holds it, with a body of n bytes. */
static char *result(const unsigned char *body, size_t n, const char *extra)
{
    char *b64 = cs_b64_encode(body, n, false);
    char *s = cs_asprintf("{\"event_id\":\"a1:executed:1\",\"type\":\"result.executed\","
                          "\"approval_id\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
                          "\"status\":\"executed\",\"status_code\":200,\"headers\":{\"x\":\"y\"},"
                          "\"body_b64\":\"%s\",\"body_truncated\":false%s}",
                          b64, extra ? extra : "");
    cs_free(b64);
    return s;
}

static json_object *parsed(const char *s, size_t n)
{
    json_object *o = NULL;
    char err[CS_ERRLEN];
    return cs_json_parse(s, n, &o, err) == CS_OK ? o : NULL;
}

static void sha_hex(const void *p, size_t n, char hex[2 * CS_SHA256_LEN + 1])
{
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(p, n, h);
    cs_hex_encode(h, sizeof(h), hex);
}

static const char *str(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

CS_TEST(event_that_fits_is_unchanged)
{
    unsigned char *body = body_of(1000);
    char *r = result(body, 1000, NULL);
    size_t n = 0;
    CS_CHECK(cs_msgfit_event(r, strlen(r), KEY_LEN, 1000000, &n) == NULL);
    /* Exactly at the room left: unchanged; one byte less room: cut. */
    size_t at = strlen(r) + KEY_LEN + CS_MSGFIT_OVERHEAD;
    CS_CHECK(cs_msgfit_event(r, strlen(r), KEY_LEN, at, &n) == NULL);
    char *cut = cs_msgfit_event(r, strlen(r), KEY_LEN, at - 1, &n);
    CS_CHECK(cut && n <= at - 1 - KEY_LEN - CS_MSGFIT_OVERHEAD);
    cs_free(cut);
    cs_free(r);
    cs_free(body);
}

CS_TEST(large_result_is_cut_to_the_limit)
{
    size_t len = (size_t)1 << 20, limit = 1000000;
    unsigned char *body = body_of(len);
    char *r = result(body, len, ",\"error_code\":null");
    size_t n = 0;
    char *cut = cs_msgfit_event(r, strlen(r), KEY_LEN, limit, &n);
    if (!CS_CHECK(cut))
        return;
    CS_CHECK(n == strlen(cut));
    CS_CHECK(n <= limit - KEY_LEN - CS_MSGFIT_OVERHEAD);
    CS_CHECK(n > limit - KEY_LEN - CS_MSGFIT_OVERHEAD - 64); /* the longest prefix, not less */
    json_object *o = parsed(cut, n);
    if (!CS_CHECK(o))
        return;
    CS_CHECK_EQ_STR(str(o, "event_id"), "a1:executed:1");
    CS_CHECK_EQ_STR(str(o, "status"), "executed");
    CS_CHECK_EQ_STR(str(o, "body_truncated"), "true");
    json_object *bc = NULL;
    CS_CHECK(json_object_object_get_ex(o, "body_cut", &bc));
    CS_CHECK_EQ_STR(str(bc, "body_bytes"), "1048576");
    char hex[2 * CS_SHA256_LEN + 1];
    sha_hex(body, len, hex);
    CS_CHECK_EQ_STR(str(bc, "body_sha256"), hex);
    CS_CHECK_EQ_STR(str(bc, "full_body"),
                    "GET /v1/approvals/01890a5d-ac96-774b-bcce-b302099a8057/result");
    const char *b64 = str(o, "body_b64");
    unsigned char *prefix = NULL;
    size_t plen = 0;
    CS_CHECK_RC(cs_b64_decode(b64, strlen(b64), false, &prefix, &plen), CS_OK);
    CS_CHECK(plen > 600000 && plen < len && memcmp(prefix, body, plen) == 0);
    json_object *hd = NULL;
    CS_CHECK(json_object_object_get_ex(o, "headers", &hd) && !strcmp(str(hd, "x"), "y"));
    cs_free(prefix);
    json_object_put(o);
    cs_free(cut);
    cs_free(r);
    cs_free(body);
}

CS_TEST(headers_and_errors_are_cut_next)
{
    size_t big = 300000;
    char *pad = cs_malloc(big + 1);
    memset(pad, 'h', big);
    pad[big] = '\0';
    char *extra = cs_asprintf(",\"error_message\":\"%s\"", pad);
    char *r = cs_asprintf("{\"event_id\":\"e\",\"type\":\"result.failed\",\"approval_id\":\"a\","
                          "\"headers\":{\"h\":\"%s\"}%s}",
                          pad, extra);
    size_t n = 0, limit = 100000;
    char *cut = cs_msgfit_event(r, strlen(r), KEY_LEN, limit, &n);
    CS_CHECK(cut && n <= limit - KEY_LEN - CS_MSGFIT_OVERHEAD);
    json_object *o = cut ? parsed(cut, n) : NULL;
    CS_CHECK(o && !strcmp(str(o, "headers_cut"), "true") &&
             !strcmp(str(o, "type"), "result.failed"));
    CS_CHECK(o && strlen(str(o, "error_message")) > 90000);
    json_object_put(o);
    cs_free(cut);
    /* Not JSON at all: the minimal message. */
    cut = cs_msgfit_event(pad, big, KEY_LEN, limit, &n);
    CS_CHECK(cut && n < 300 && strstr(cut, "\"cut\":true"));
    cs_free(cut);
    cs_free(r);
    cs_free(extra);
    cs_free(pad);
}

static char *dead(const unsigned char *orig, size_t len, size_t limit, size_t *n)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "reason", json_object_new_string("invalid_request"));
    json_object_object_add(o, "message", json_object_new_string("\"reason\" is too long"));
    char *t = cs_msgfit_dead_letter(o, orig, len, KEY_LEN, limit, n);
    json_object_put(o);
    return t;
}

CS_TEST(dead_letters_always_fit)
{
    size_t n = 0, limit = 1000000;
    unsigned char *small = body_of(5000);
    char *t = dead(small, 5000, limit, &n);
    json_object *o = parsed(t, n);
    CS_CHECK(o && !str(o, "original_truncated") && strlen(str(o, "original_b64")) == 6668);
    json_object_put(o);
    cs_free(t);
    cs_free(small);
    size_t len = 900 * 1024;
    unsigned char *orig = body_of(len);
    t = dead(orig, len, limit, &n);
    CS_CHECK(n <= limit - KEY_LEN - CS_MSGFIT_OVERHEAD);
    o = parsed(t, n);
    if (CS_CHECK(o)) {
        CS_CHECK_EQ_STR(str(o, "original_truncated"), "true");
        CS_CHECK_EQ_STR(str(o, "original_size"), "921600");
        CS_CHECK_EQ_STR(str(o, "reason"), "invalid_request");
        char hex[2 * CS_SHA256_LEN + 1];
        sha_hex(orig, len, hex);
        CS_CHECK_EQ_STR(str(o, "original_sha256"), hex);
        const char *b64 = str(o, "original_b64");
        unsigned char *prefix = NULL;
        size_t plen = 0;
        CS_CHECK_RC(cs_b64_decode(b64, strlen(b64), false, &prefix, &plen), CS_OK);
        CS_CHECK(plen > 700000 && memcmp(prefix, orig, plen) == 0);
        cs_free(prefix);
    }
    json_object_put(o);
    cs_free(t);
    /* A small limit still gives a dead letter within it. */
    t = dead(orig, len, 4096, &n);
    CS_CHECK(n <= 4096 - KEY_LEN - CS_MSGFIT_OVERHEAD);
    cs_free(t);
    cs_free(orig);
}

CS_TEST_MAIN(CS_RUN(event_that_fits_is_unchanged), CS_RUN(large_result_is_cut_to_the_limit),
             CS_RUN(headers_and_errors_are_cut_next), CS_RUN(dead_letters_always_fit))
