/*
 * fuzz_link.c -- libFuzzer target: approval link tokens (lib/cs_link.c).
 *
 * Two halves on every input:
 *   1. The whole input as a token from a URL path (/approve/<token>):
 *      cs_link_verify with a fixed key must refuse it unless it is
 *      exactly what cs_link_sign makes for the fields it decodes to (so
 *      no second spelling of a link exists), and its answer must agree
 *      with the expiry it reports.
 *   2. A property of the signer: fields taken from the input (three
 *      UUIDs from 48 bytes, an expiry from 8 more) are signed; the token
 *      has CS_LINK_TOKEN_LEN characters of base64url, verifies, gives the
 *      same fields back, is expired exactly from expires_at on, and stops
 *      verifying when one character is changed (position and value from
 *      the input) or another key is used. The input's text is also tried
 *      as an approval id, which cs_link_sign must refuse unless it is a
 *      UUID (and then the link carries it in lower case).
 */
#include <ctype.h>

#include "cs_link.h"
#include "fuzz.h"

static const unsigned char key[32] = "fuzz-link-key-0123456789abcdef!";
static const unsigned char other_key[32] = "fuzz-link-key-0123456789abcdef?";
#define NOW_MS 1790000000000LL

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
    sign_and_verify(data, size);
    return 0;
}
