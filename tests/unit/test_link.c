/*
 * test_link.c -- unit tests of signed approval links (lib/cs_link.c).
 *
 * A link is the only credential an approver presents, so: a signed token
 * verifies and gives back what was signed; changing any single byte of it
 * (to any other byte) is refused with CS_ERR_BAD_TOKEN; a token signed
 * with another key, of the wrong length or outside the base64url alphabet
 * is refused; an expired one is CS_ERR_EXPIRED, never accepted. A token
 * built by hand from the layout documented in cs_link.h must verify, so
 * the header and the code cannot drift apart.
 */
#include <string.h>

#include "cs_link.h"
#include "cs_mem.h"
#include "cs_test.h"

static const struct cs_link sample = {
    .approval_id = "01890a5d-ac96-774b-bcce-b302099a8057",
    .approver_id = "01890a5d-ac96-7000-8000-000000000001",
    .voter_id = "01890a5d-ac96-7000-8000-000000000002",
    .expires_ms = 1893456000000LL, /* 2030-01-01 */
};

static void test_key(unsigned char key[32], unsigned char seed)
{
    unsigned char master[32];
    memset(master, seed, sizeof(master));
    cs_link_key(master, key);
}

CS_TEST(key_is_derived)
{
    unsigned char master[32], a[32], b[32];
    memset(master, 1, sizeof(master));
    cs_link_key(master, a);
    cs_link_key(master, b);
    CS_CHECK(memcmp(a, b, 32) == 0);
    CS_CHECK(memcmp(a, master, 32) != 0);
    test_key(b, 2);
    CS_CHECK(memcmp(a, b, 32) != 0);
}

CS_TEST(sign_verify_round_trip)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 1];
    if (!CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK))
        return;
    CS_CHECK_EQ_INT(strlen(tok), CS_LINK_TOKEN_LEN);
    CS_CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
             CS_LINK_TOKEN_LEN);
    struct cs_link out;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_link_verify(key, tok, sample.expires_ms - 1, &out, err), CS_OK);
    CS_CHECK_EQ_STR(out.approval_id, sample.approval_id);
    CS_CHECK_EQ_STR(out.approver_id, sample.approver_id);
    CS_CHECK_EQ_STR(out.voter_id, sample.voter_id);
    CS_CHECK_EQ_INT(out.expires_ms, sample.expires_ms);
    CS_CHECK_RC(cs_link_verify(key, tok, cs_now_ms(), &out, err), CS_OK);

    /* Upper-case ids sign the same bytes; verify gives them back in lower case. */
    struct cs_link upper = sample;
    cs_strlcpy(upper.approval_id, "01890A5D-AC96-774B-BCCE-B302099A8057", CS_UUID_STRLEN + 1);
    char tok2[CS_LINK_TOKEN_LEN + 1];
    CS_CHECK_RC(cs_link_sign(key, &upper, tok2), CS_OK);
    CS_CHECK_EQ_STR(tok2, tok);
}

CS_TEST(sign_refuses_bad_ids)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 1];
    struct cs_link l = sample;
    cs_strlcpy(l.voter_id, "not-a-uuid", CS_UUID_STRLEN + 1);
    CS_CHECK_RC(cs_link_sign(key, &l, tok), CS_ERR_INVALID);
    l = sample;
    l.approval_id[0] = '\0';
    CS_CHECK_RC(cs_link_sign(key, &l, tok), CS_ERR_INVALID);
}

CS_TEST(any_single_byte_change_is_refused)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 1];
    if (!CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK))
        return;
    /* Every position, every other byte value but NUL (which shortens the token). */
    int accepted = 0, wrong_code = 0;
    for (int i = 0; i < CS_LINK_TOKEN_LEN; i++) {
        char orig = tok[i];
        for (int c = 1; c < 256; c++) {
            if ((char)c == orig)
                continue;
            tok[i] = (char)c;
            struct cs_link out;
            enum cs_err rc = cs_link_verify(key, tok, 0, &out, NULL);
            accepted += rc == CS_OK;
            wrong_code += rc != CS_ERR_BAD_TOKEN;
        }
        tok[i] = orig;
    }
    CS_CHECK_EQ_INT(accepted, 0);
    CS_CHECK_EQ_INT(wrong_code, 0);
    struct cs_link out;
    CS_CHECK_RC(cs_link_verify(key, tok, 0, &out, NULL), CS_OK);
}

CS_TEST(other_key_is_refused)
{
    unsigned char key[32], other[32];
    test_key(key, 1);
    test_key(other, 2);
    char tok[CS_LINK_TOKEN_LEN + 1];
    CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK);
    struct cs_link out;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_link_verify(other, tok, 0, &out, err), CS_ERR_BAD_TOKEN);
    CS_CHECK_HAS(err, "signature");
    /* Even after expiry, a forged token is a bad token, not an expired one. */
    CS_CHECK_RC(cs_link_verify(other, tok, sample.expires_ms + 1, &out, err), CS_ERR_BAD_TOKEN);
}

CS_TEST(expiry)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 1];
    CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK);
    struct cs_link out;
    memset(&out, 0, sizeof(out));
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_link_verify(key, tok, sample.expires_ms, &out, err), CS_ERR_EXPIRED);
    CS_CHECK_HAS(err, "expired");
    CS_CHECK_EQ_STR(out.approval_id, sample.approval_id); /* filled for the error page */
    CS_CHECK_EQ_INT(out.expires_ms, sample.expires_ms);
    CS_CHECK_RC(cs_link_verify(key, tok, sample.expires_ms + 86400000, &out, err), CS_ERR_EXPIRED);
    CS_CHECK_RC(cs_link_verify(key, tok, sample.expires_ms - 1, &out, err), CS_OK);

    struct cs_link past = sample;
    past.expires_ms = cs_now_ms() - 1;
    CS_CHECK_RC(cs_link_sign(key, &past, tok), CS_OK);
    CS_CHECK_RC(cs_link_verify(key, tok, cs_now_ms(), &out, err), CS_ERR_EXPIRED);
}

CS_TEST(malformed_tokens)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 2];
    CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK);
    struct cs_link out;
    char err[CS_ERRLEN] = "";

    char shorter[CS_LINK_TOKEN_LEN + 1];
    memcpy(shorter, tok, CS_LINK_TOKEN_LEN - 1);
    shorter[CS_LINK_TOKEN_LEN - 1] = '\0';
    CS_CHECK_RC(cs_link_verify(key, shorter, 0, &out, err), CS_ERR_BAD_TOKEN);
    CS_CHECK_HAS(err, "malformed");
    tok[CS_LINK_TOKEN_LEN] = 'A';
    tok[CS_LINK_TOKEN_LEN + 1] = '\0';
    CS_CHECK_RC(cs_link_verify(key, tok, 0, &out, err), CS_ERR_BAD_TOKEN);
    tok[CS_LINK_TOKEN_LEN] = '\0';
    CS_CHECK_RC(cs_link_verify(key, "", 0, &out, err), CS_ERR_BAD_TOKEN);

    /* The standard alphabet's '+' and '/' are not base64url. */
    char std[CS_LINK_TOKEN_LEN + 1];
    memcpy(std, tok, sizeof(std));
    for (int i = 0; i < CS_LINK_TOKEN_LEN; i++)
        std[i] = std[i] == '-' ? '+' : std[i] == '_' ? '/' : std[i];
    if (strcmp(std, tok) != 0)
        CS_CHECK_RC(cs_link_verify(key, std, 0, &out, err), CS_ERR_BAD_TOKEN);
    char bad[CS_LINK_TOKEN_LEN + 1];
    memset(bad, '.', CS_LINK_TOKEN_LEN);
    bad[CS_LINK_TOKEN_LEN] = '\0';
    CS_CHECK_RC(cs_link_verify(key, bad, 0, &out, err), CS_ERR_BAD_TOKEN);
}

/* Builds a token by hand from the layout in cs_link.h. */
static void handmade(const unsigned char key[32], unsigned char version, char *out)
{
    unsigned char raw[1 + 16 + 16 + 16 + 8 + CS_SHA256_LEN];
    raw[0] = version;
    if (cs_uuid_parse(sample.approval_id, raw + 1) || cs_uuid_parse(sample.approver_id, raw + 17) ||
        cs_uuid_parse(sample.voter_id, raw + 33))
        cs_assert(!"sample ids parse");
    for (int i = 0; i < 8; i++)
        raw[49 + i] = (unsigned char)((uint64_t)sample.expires_ms >> (56 - 8 * i));
    cs_hmac_sha256(key, 32, raw, 57, raw + 57);
    char *b64 = cs_b64_encode(raw, sizeof(raw), true);
    cs_strlcpy(out, b64, CS_LINK_TOKEN_LEN + 1);
    cs_free(b64);
}

CS_TEST(documented_layout)
{
    unsigned char key[32];
    test_key(key, 1);
    char tok[CS_LINK_TOKEN_LEN + 1], mine[CS_LINK_TOKEN_LEN + 1];
    CS_CHECK_RC(cs_link_sign(key, &sample, tok), CS_OK);
    handmade(key, 1, mine);
    CS_CHECK_EQ_STR(mine, tok);
    /* A correctly signed token of an unknown version is refused. */
    handmade(key, 2, mine);
    struct cs_link out;
    CS_CHECK_RC(cs_link_verify(key, mine, 0, &out, NULL), CS_ERR_BAD_TOKEN);
}

CS_TEST(link_url)
{
    char *u = cs_link_url("https://cs.example.com", "approve", "TOKEN");
    CS_CHECK_EQ_STR(u, "https://cs.example.com/approve/TOKEN");
    cs_free(u);
    u = cs_link_url("https://cs.example.com/base//", "approve", "T");
    CS_CHECK_EQ_STR(u, "https://cs.example.com/base/approve/T");
    cs_free(u);
    u = cs_link_url("http://127.0.0.1:8080/", "inbox", "T");
    CS_CHECK_EQ_STR(u, "http://127.0.0.1:8080/inbox/T");
    cs_free(u);
}

CS_TEST_MAIN(CS_RUN(key_is_derived), CS_RUN(sign_verify_round_trip), CS_RUN(sign_refuses_bad_ids),
             CS_RUN(any_single_byte_change_is_refused), CS_RUN(other_key_is_refused),
             CS_RUN(expiry), CS_RUN(malformed_tokens), CS_RUN(documented_layout),
             CS_RUN(link_url))
