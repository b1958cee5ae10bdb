/*
 * test_link.c -- unit tests of the signed public links (lib/cs_link.c).
 *
 * A link shows status to whoever holds it and lets nobody vote, yet it is
 * still a bearer token, so: a signed token verifies and gives back what
 * was signed; changing any single byte of it (to any other byte) is
 * refused with CS_ERR_BAD_TOKEN; a token signed with another key, of the
 * wrong length or outside the base64url alphabet is refused; an expired
 * one is CS_ERR_EXPIRED, never accepted. A token built by hand from the
 * layout documented in cs_link.h must verify, so the header and the code
 * cannot drift apart.
 *
 * The two link keys (cs_link_keys_derive) are distinct sub-keys of the
 * master, and distinct from every other sub-key of it. The path helpers
 * give "/status/<token>" and "/batch/<token>", the same path for the same
 * approval, signed with the approval key and the batch key respectively
 * (neither verifies with the other), naming nobody (nil approver and
 * voter) and dying CS_LINK_GRACE_MS after the approval's window. A token
 * of the former voting links (/approve/, key "approval-link/v1") is not
 * a link any more. cs_link_url joins a public URL and a path.
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
    cs_key_derive(master, CS_LINK_VIEW_PURPOSE, key);
}

static void test_keys(struct cs_link_keys *k, unsigned char seed)
{
    unsigned char master[32];
    memset(master, seed, sizeof(master));
    cs_link_keys_derive(master, k);
}

CS_TEST(keys_are_derived)
{
    unsigned char master[32];
    struct cs_link_keys a, b, c;
    memset(master, 1, sizeof(master));
    cs_link_keys_derive(master, &a);
    cs_link_keys_derive(master, &b);
    CS_CHECK(memcmp(&a, &b, sizeof(a)) == 0);       /* deterministic */
    CS_CHECK(memcmp(a.approval, a.batch, 32) != 0); /* two distinct keys */
    CS_CHECK(memcmp(a.approval, master, 32) != 0);
    CS_CHECK(memcmp(a.batch, master, 32) != 0);
    test_keys(&c, 2); /* another master */
    CS_CHECK(memcmp(a.approval, c.approval, 32) != 0);
    CS_CHECK(memcmp(a.batch, c.batch, 32) != 0);

    /* Each is the sub-key of its purpose, and no other sub-key of the master. */
    unsigned char k[32];
    cs_key_derive(master, CS_LINK_VIEW_PURPOSE, k);
    CS_CHECK(memcmp(a.approval, k, 32) == 0);
    cs_key_derive(master, CS_LINK_BATCH_PURPOSE, k);
    CS_CHECK(memcmp(a.batch, k, 32) == 0);
    static const char *const others[] = {CS_LINK_CSRF_PURPOSE, CS_WEBHOOK_PURPOSE,
                                         "countersign/approval-link/v1"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        cs_key_derive(master, others[i], k);
        CS_CHECK(memcmp(a.approval, k, 32) != 0);
        CS_CHECK(memcmp(a.batch, k, 32) != 0);
    }

    cs_link_keys_wipe(&b);
    static const struct cs_link_keys zero;
    CS_CHECK(memcmp(&b, &zero, sizeof(b)) == 0);
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

#define APPROVAL "01890a5d-ac96-774b-bcce-b302099a8057"
#define BATCH "01890a5d-ac96-774b-bcce-b302099a80ff"
#define EXPIRES 1893456000000LL /* the approval's window ends 2030-01-01 */

/* Checks that path is "<prefix><token>" for id, verifying with key and not with other. */
static void check_path(const char *path, const char *prefix, const unsigned char key[32],
                       const unsigned char other[32], const char *id)
{
    size_t pl = strlen(prefix);
    CS_CHECK_EQ_INT(strlen(path), pl + CS_LINK_TOKEN_LEN);
    if (!CS_CHECK(strncmp(path, prefix, pl) == 0))
        return;
    const char *tok = path + pl;
    CS_CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
             CS_LINK_TOKEN_LEN);
    struct cs_link l;
    char err[CS_ERRLEN] = "";
    memset(&l, 0, sizeof(l));
    if (CS_CHECK_RC(cs_link_verify(key, tok, EXPIRES, &l, err), CS_OK)) {
        CS_CHECK_EQ_STR(l.approval_id, id);
        CS_CHECK_EQ_STR(l.approver_id, CS_NIL_UUID); /* the link names nobody */
        CS_CHECK_EQ_STR(l.voter_id, CS_NIL_UUID);
        CS_CHECK_EQ_INT(l.expires_ms, EXPIRES + CS_LINK_GRACE_MS);
    }
    /* Readable through the grace period, dead from its end on. */
    CS_CHECK_RC(cs_link_verify(key, tok, EXPIRES + CS_LINK_GRACE_MS - 1, &l, err), CS_OK);
    CS_CHECK_RC(cs_link_verify(key, tok, EXPIRES + CS_LINK_GRACE_MS, &l, err), CS_ERR_EXPIRED);
    CS_CHECK_RC(cs_link_verify(other, tok, EXPIRES, &l, err), CS_ERR_BAD_TOKEN);
}

CS_TEST(approval_path)
{
    struct cs_link_keys k, other;
    test_keys(&k, 1);
    test_keys(&other, 2);
    char p[CS_LINK_PATH_MAX], q[CS_LINK_PATH_MAX];
    cs_link_approval_path(&k, APPROVAL, EXPIRES, p);
    check_path(p, "/status/", k.approval, k.batch, APPROVAL);
    check_path(p, "/status/", k.approval, other.approval, APPROVAL);
    CS_CHECK_EQ_INT(strlen(p) + 1, CS_LINK_PATH_MAX); /* the longest path fills it exactly */

    /* The same approval always gets the same link (upper case ids too). */
    cs_link_approval_path(&k, APPROVAL, EXPIRES, q);
    CS_CHECK_EQ_STR(q, p);
    cs_link_approval_path(&k, "01890A5D-AC96-774B-BCCE-B302099A8057", EXPIRES, q);
    CS_CHECK_EQ_STR(q, p);
    /* Another approval, window or key: another link. */
    cs_link_approval_path(&k, BATCH, EXPIRES, q);
    CS_CHECK(strcmp(q, p) != 0);
    cs_link_approval_path(&k, APPROVAL, EXPIRES + 1, q);
    CS_CHECK(strcmp(q, p) != 0);
    cs_link_approval_path(&other, APPROVAL, EXPIRES, q);
    CS_CHECK(strcmp(q, p) != 0);

    /* It is exactly what cs_link_sign makes of (id, nil, nil, expiry + grace). */
    struct cs_link l = {.approval_id = APPROVAL,
                        .approver_id = CS_NIL_UUID,
                        .voter_id = CS_NIL_UUID,
                        .expires_ms = EXPIRES + CS_LINK_GRACE_MS};
    char tok[CS_LINK_TOKEN_LEN + 1];
    if (CS_CHECK_RC(cs_link_sign(k.approval, &l, tok), CS_OK))
        CS_CHECK_EQ_STR(p + strlen("/status/"), tok);
}

CS_TEST(batch_path)
{
    struct cs_link_keys k, other;
    test_keys(&k, 1);
    test_keys(&other, 2);
    char p[CS_LINK_PATH_MAX], q[CS_LINK_PATH_MAX];
    cs_link_batch_path(&k, BATCH, EXPIRES, p);
    check_path(p, "/batch/", k.batch, k.approval, BATCH);
    check_path(p, "/batch/", k.batch, other.batch, BATCH);
    cs_link_batch_path(&k, BATCH, EXPIRES, q);
    CS_CHECK_EQ_STR(q, p);
    cs_link_batch_path(&k, APPROVAL, EXPIRES, q);
    CS_CHECK(strcmp(q, p) != 0);

    /* An approval's link and a batch's link of one id are different tokens. */
    cs_link_approval_path(&k, BATCH, EXPIRES, q);
    CS_CHECK(strcmp(q + strlen("/status/"), p + strlen("/batch/")) != 0);
}

CS_TEST(former_voting_links_are_refused)
{
    /* A token of the former /approve/<token> links, signed with their key. */
    unsigned char master[32], old[32];
    struct cs_link_keys k;
    memset(master, 1, sizeof(master));
    cs_key_derive(master, "countersign/approval-link/v1", old);
    cs_link_keys_derive(master, &k);
    char tok[CS_LINK_TOKEN_LEN + 1];
    if (!CS_CHECK_RC(cs_link_sign(old, &sample, tok), CS_OK))
        return;
    struct cs_link out;
    CS_CHECK_RC(cs_link_verify(k.approval, tok, 0, &out, NULL), CS_ERR_BAD_TOKEN);
    CS_CHECK_RC(cs_link_verify(k.batch, tok, 0, &out, NULL), CS_ERR_BAD_TOKEN);
}

CS_TEST(link_url)
{
    static const struct {
        const char *base, *path, *want;
    } cases[] = {
        {"https://cs.example.com", "/status/T", "https://cs.example.com/status/T"},
        {"https://cs.example.com/", "/status/T", "https://cs.example.com/status/T"},
        {"https://cs.example.com/base//", "/batch/T", "https://cs.example.com/base/batch/T"},
        {"https://cs.example.com/base", "/batch/T", "https://cs.example.com/base/batch/T"},
        {"http://127.0.0.1:8080/", "/inbox", "http://127.0.0.1:8080/inbox"},
        {"", "/status/T", "/status/T"},
        {"///", "/x", "/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *u = cs_link_url(cases[i].base, cases[i].path);
        CS_CHECK_EQ_STR(u, cases[i].want);
        cs_free(u);
    }
    /* With a real path. */
    struct cs_link_keys k;
    char p[CS_LINK_PATH_MAX];
    test_keys(&k, 1);
    cs_link_approval_path(&k, APPROVAL, EXPIRES, p);
    char *a = cs_link_url("https://cs.example.com/", p);
    char *b = cs_link_url("https://cs.example.com", p);
    CS_CHECK_EQ_STR(a, b);
    CS_CHECK_EQ_INT(strlen(a), strlen("https://cs.example.com") + strlen(p));
    cs_free(a);
    cs_free(b);
}

CS_TEST_MAIN(CS_RUN(keys_are_derived), CS_RUN(sign_verify_round_trip), CS_RUN(sign_refuses_bad_ids),
             CS_RUN(any_single_byte_change_is_refused), CS_RUN(other_key_is_refused),
             CS_RUN(expiry), CS_RUN(malformed_tokens), CS_RUN(documented_layout),
             CS_RUN(approval_path), CS_RUN(batch_path), CS_RUN(former_voting_links_are_refused),
             CS_RUN(link_url))
