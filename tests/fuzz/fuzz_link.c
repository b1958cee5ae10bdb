/*
 * fuzz_link.c -- libFuzzer target: signed public link tokens (lib/cs_link.c).
 *
 * Three parts on every input:
 *   1. The whole input as a token: cs_link_verify with a fixed key must
 *      refuse it unless it is exactly what cs_link_sign makes for the
 *      fields it decodes to (so no second spelling of a link exists), and
 *      its answer must agree with the expiry it reports. The whole input
 *      as a request path too: "/status/<token>" verified with the approval
 *      link key, "/batch/<token>" with the batch key; one that is not
 *      refused is exactly what cs_link_approval_path / cs_link_batch_path
 *      makes, names nobody, and the other keys refuse it.
 *   2. A property of the signer: fields taken from the input (three
 *      UUIDs from 48 bytes, an expiry from 8 more) are signed; the token
 *      has CS_LINK_TOKEN_LEN characters of base64url, verifies, gives the
 *      same fields back, is expired exactly from expires_at on, and stops
 *      verifying when one character is changed (position and value from
 *      the input) or another key is used. The input's text is also tried
 *      as an approval id, which cs_link_sign must refuse unless it is a
 *      UUID (and then the link carries it in lower case).
 *   3. The path helpers, for the id and expiry of part 2 (the route
 *      picked by an input bit): "/status/" or "/batch/" and a token that
 *      verifies with that route's key and not the other's, for that id,
 *      nil approver and voter, alive until expiry + CS_LINK_GRACE_MS and
 *      not from then on; the same path every time; and cs_link_url of
 *      the rest of the input and the path is that text without its
 *      trailing slashes, then the path.
 */
#include <ctype.h>

#include "cs_link.h"
#include "fuzz.h"

static const unsigned char key[32] = "fuzz-link-key-0123456789abcdef!";
static const unsigned char other_key[32] = "fuzz-link-key-0123456789abcdef?";
#define NOW_MS 1790000000000LL

/* The link keys derived from `key` as a master (seeds in corpus/link/ use them). */
static const struct cs_link_keys *link_keys(void)
{
    static struct cs_link_keys keys;
    static bool derived;
    if (!derived) {
        cs_link_keys_derive(key, &keys);
        derived = true;
    }
    return &keys;
}

static bool same_link(const struct cs_link *a, const struct cs_link *b)
{
    return strcmp(a->approval_id, b->approval_id) == 0 &&
           strcmp(a->approver_id, b->approver_id) == 0 && strcmp(a->voter_id, b->voter_id) == 0 &&
           a->expires_ms == b->expires_ms;
}

static void verify_any(const uint8_t *data, size_t size)
{
    char *token = fuzz_cstr(data, size);
    struct cs_link l;
    char err[CS_ERRLEN] = "";
    memset(&l, 0, sizeof(l));
    enum cs_err rc = cs_link_verify(key, token, NOW_MS, &l, err);
    FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_EXPIRED || rc == CS_ERR_BAD_TOKEN);
    FUZZ_CHECK(rc == CS_OK || err[0]);
    if (rc != CS_ERR_BAD_TOKEN) {
        char again[CS_LINK_TOKEN_LEN + 1];
        FUZZ_CHECK(cs_link_sign(key, &l, again) == CS_OK);
        FUZZ_CHECK(strcmp(again, token) == 0);
        FUZZ_CHECK((rc == CS_OK) == (NOW_MS < l.expires_ms));
    }
    cs_free(token);
}

/* The input as a request path "/status/<token>" or "/batch/<token>". */
static void verify_path(const uint8_t *data, size_t size)
{
    const struct cs_link_keys *k = link_keys();
    char *path = fuzz_cstr(data, size);
    bool status = strncmp(path, "/status/", 8) == 0, batch = strncmp(path, "/batch/", 7) == 0;
    if (status || batch) {
        const unsigned char *mine = status ? k->approval : k->batch;
        const unsigned char *other = status ? k->batch : k->approval;
        const char *token = path + (status ? 8 : 7);
        struct cs_link l;
        char err[CS_ERRLEN];
        memset(&l, 0, sizeof(l));
        enum cs_err rc = cs_link_verify(mine, token, NOW_MS, &l, err);
        FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_EXPIRED || rc == CS_ERR_BAD_TOKEN);
        if (rc != CS_ERR_BAD_TOKEN) {
            FUZZ_CHECK(strcmp(l.approver_id, CS_NIL_UUID) == 0);
            FUZZ_CHECK(strcmp(l.voter_id, CS_NIL_UUID) == 0);
            FUZZ_CHECK(l.expires_ms >= INT64_MIN + CS_LINK_GRACE_MS);
            char again[CS_LINK_PATH_MAX];
            if (status)
                cs_link_approval_path(k, l.approval_id, l.expires_ms - CS_LINK_GRACE_MS, again);
            else
                cs_link_batch_path(k, l.approval_id, l.expires_ms - CS_LINK_GRACE_MS, again);
            FUZZ_CHECK(strcmp(again, path) == 0);
            FUZZ_CHECK(cs_link_verify(other, token, NOW_MS, &l, err) == CS_ERR_BAD_TOKEN);
            FUZZ_CHECK(cs_link_verify(key, token, NOW_MS, &l, err) == CS_ERR_BAD_TOKEN);
        }
    }
    cs_free(path);
}

/* Part 3 for approval (or batch) id, window end expires_ms; rest is the input's text. */
static void check_path(const char *id, int64_t expires_ms, bool status, const char *rest)
{
    const struct cs_link_keys *k = link_keys();
    const unsigned char *mine = status ? k->approval : k->batch;
    const unsigned char *other = status ? k->batch : k->approval;
    const char *route = status ? "/status/" : "/batch/";
    char path[CS_LINK_PATH_MAX], again[CS_LINK_PATH_MAX], err[CS_ERRLEN];
    if (status)
        cs_link_approval_path(k, id, expires_ms, path);
    else
        cs_link_batch_path(k, id, expires_ms, path);
    size_t rl = strlen(route);
    FUZZ_CHECK(strlen(path) == rl + CS_LINK_TOKEN_LEN && strncmp(path, route, rl) == 0);
    const char *token = path + rl;
    int64_t dies = expires_ms + CS_LINK_GRACE_MS;
    struct cs_link l;
    memset(&l, 0, sizeof(l));
    FUZZ_CHECK(cs_link_verify(mine, token, dies - 1, &l, err) == CS_OK);
    for (int i = 0; i < CS_UUID_STRLEN; i++)
        FUZZ_CHECK(l.approval_id[i] == tolower((unsigned char)id[i]));
    FUZZ_CHECK(strcmp(l.approver_id, CS_NIL_UUID) == 0 && strcmp(l.voter_id, CS_NIL_UUID) == 0);
    FUZZ_CHECK(l.expires_ms == dies);
    FUZZ_CHECK(cs_link_verify(mine, token, dies, &l, err) == CS_ERR_EXPIRED);
    FUZZ_CHECK(cs_link_verify(other, token, INT64_MIN, &l, err) == CS_ERR_BAD_TOKEN);
    if (status)
        cs_link_approval_path(k, id, expires_ms, again);
    else
        cs_link_batch_path(k, id, expires_ms, again);
    FUZZ_CHECK(strcmp(again, path) == 0);

    char *url = cs_link_url(rest, path);
    size_t n = strlen(rest);
    while (n && rest[n - 1] == '/')
        n--;
    FUZZ_CHECK(strlen(url) == n + strlen(path) && strncmp(url, rest, n) == 0 &&
               strcmp(url + n, path) == 0);
    cs_free(url);
}

static void sign_and_verify(const uint8_t *data, size_t size)
{
    if (size < 56)
        return;
    struct cs_link l, got;
    cs_uuid_format(data, l.approval_id);
    cs_uuid_format(data + 16, l.approver_id);
    cs_uuid_format(data + 32, l.voter_id);
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | data[48 + i];
    l.expires_ms = (int64_t)e;

    char token[CS_LINK_TOKEN_LEN + 1];
    FUZZ_CHECK(cs_link_sign(key, &l, token) == CS_OK);
    FUZZ_CHECK(strlen(token) == CS_LINK_TOKEN_LEN);
    for (const char *c = token; *c; c++)
        FUZZ_CHECK(isalnum((unsigned char)*c) || *c == '-' || *c == '_');

    char err[CS_ERRLEN];
    if (l.expires_ms != INT64_MIN) {
        memset(&got, 0, sizeof(got));
        FUZZ_CHECK(cs_link_verify(key, token, l.expires_ms - 1, &got, err) == CS_OK);
        FUZZ_CHECK(same_link(&got, &l));
    }
    memset(&got, 0, sizeof(got));
    FUZZ_CHECK(cs_link_verify(key, token, l.expires_ms, &got, err) == CS_ERR_EXPIRED);
    FUZZ_CHECK(same_link(&got, &l));
    FUZZ_CHECK(cs_link_verify(other_key, token, INT64_MIN, &got, err) == CS_ERR_BAD_TOKEN);

    /* One changed character: never a valid link. */
    if (size >= 58) {
        size_t at = data[56] % CS_LINK_TOKEN_LEN;
        char c = (char)data[57];
        if (c != token[at] && c != '\0') {
            char bad[CS_LINK_TOKEN_LEN + 1];
            memcpy(bad, token, sizeof(bad));
            bad[at] = c;
            FUZZ_CHECK(cs_link_verify(key, bad, INT64_MIN, &got, err) == CS_ERR_BAD_TOKEN);
        }
    }

    /* The rest of the input as an approval id. */
    char *text = fuzz_cstr(data + 56, size - 56);
    /* The voter's last byte (paths name no voter) picks the route. */
    if (l.expires_ms <= INT64_MAX - CS_LINK_GRACE_MS) /* windows end long before */
        check_path(l.approval_id, l.expires_ms, data[47] & 1, text);
    if (strlen(text) <= CS_UUID_STRLEN) {
        struct cs_link t = l;
        cs_strlcpy(t.approval_id, text, sizeof(t.approval_id));
        bool uuid = cs_uuid_valid(text);
        FUZZ_CHECK((cs_link_sign(key, &t, token) == CS_OK) == uuid);
        if (uuid) {
            enum cs_err rc = cs_link_verify(key, token, INT64_MIN, &got, err);
            FUZZ_CHECK(rc == CS_OK || (rc == CS_ERR_EXPIRED && l.expires_ms == INT64_MIN));
            for (int i = 0; i < CS_UUID_STRLEN; i++)
                FUZZ_CHECK(got.approval_id[i] == tolower((unsigned char)text[i]));
        }
    }
    cs_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    verify_any(data, size);
    verify_path(data, size);
    sign_and_verify(data, size);
    return 0;
}
