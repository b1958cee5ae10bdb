/*
 * cs_link.c -- approval link tokens (see cs_link.h).
 */
#include "cs_link.h"

#include <stdio.h>
#include <string.h>

#include "cs_mem.h"

#define LINK_VERSION 1
#define LINK_BODY (1 + 16 + 16 + 16 + 8)
#define LINK_RAW (LINK_BODY + CS_SHA256_LEN)

void cs_link_keys_derive(const unsigned char master[32], struct cs_link_keys *k)
{
    cs_key_derive(master, CS_LINK_VIEW_PURPOSE, k->approval);
    cs_key_derive(master, CS_LINK_BATCH_PURPOSE, k->batch);
}

void cs_link_keys_wipe(struct cs_link_keys *k)
{
    cs_wipe(k, sizeof(*k));
}

/* The one place a public link is signed. */
static void mint(const unsigned char key[32], const char *route, const char *id, int64_t expires_ms,
                 char out[CS_LINK_PATH_MAX])
{
    struct cs_link l;
    char token[CS_LINK_TOKEN_LEN + 1];
    cs_strlcpy(l.approval_id, id, sizeof(l.approval_id));
    cs_strlcpy(l.approver_id, CS_NIL_UUID, sizeof(l.approver_id));
    cs_strlcpy(l.voter_id, CS_NIL_UUID, sizeof(l.voter_id));
    cs_assert(expires_ms <= INT64_MAX - CS_LINK_GRACE_MS); /* windows are days, not aeons */
    l.expires_ms = expires_ms + CS_LINK_GRACE_MS;
    cs_assert(cs_link_sign(key, &l, token) == CS_OK);
    snprintf(out, CS_LINK_PATH_MAX, "/%s/%s", route, token);
}

void cs_link_approval_path(const struct cs_link_keys *k, const char *id, int64_t expires_ms,
                           char out[CS_LINK_PATH_MAX])
{
    mint(k->approval, "status", id, expires_ms, out);
}

void cs_link_batch_path(const struct cs_link_keys *k, const char *uid, int64_t expires_ms,
                        char out[CS_LINK_PATH_MAX])
{
    mint(k->batch, "batch", uid, expires_ms, out);
}

enum cs_err cs_link_sign(const unsigned char key[32], const struct cs_link *l,
                         char out[CS_LINK_TOKEN_LEN + 1])
{
    unsigned char raw[LINK_RAW];
    raw[0] = LINK_VERSION;
    if (cs_uuid_parse(l->approval_id, raw + 1) || cs_uuid_parse(l->approver_id, raw + 17) ||
        cs_uuid_parse(l->voter_id, raw + 33))
        return CS_ERR_INVALID;
    uint64_t e = (uint64_t)l->expires_ms;
    for (int i = 0; i < 8; i++)
        raw[49 + i] = (unsigned char)(e >> (56 - 8 * i));
    cs_hmac_sha256(key, 32, raw, LINK_BODY, raw + LINK_BODY);
    cs_b64_encode_to(raw, LINK_RAW, true, out);
    return CS_OK;
}

enum cs_err cs_link_verify(const unsigned char key[32], const char *token, int64_t now_ms,
                           struct cs_link *out, char *err)
{
    unsigned char *raw = NULL, mac[CS_SHA256_LEN];
    size_t len = 0;
    size_t tl = strnlen(token, CS_LINK_TOKEN_LEN + 1);
    if (tl != CS_LINK_TOKEN_LEN || cs_b64_decode(token, tl, true, &raw, &len) != CS_OK)
        return cs_err_set(err, CS_ERR_BAD_TOKEN, "malformed link");
    enum cs_err rc = CS_OK;
    if (len != LINK_RAW || raw[0] != LINK_VERSION) {
        rc = cs_err_set(err, CS_ERR_BAD_TOKEN, "malformed link");
        goto done;
    }
    cs_hmac_sha256(key, 32, raw, LINK_BODY, mac);
    if (!cs_ct_equal(mac, raw + LINK_BODY, CS_SHA256_LEN)) {
        rc = cs_err_set(err, CS_ERR_BAD_TOKEN, "the link's signature does not verify");
        goto done;
    }
    cs_uuid_format(raw + 1, out->approval_id);
    cs_uuid_format(raw + 17, out->approver_id);
    cs_uuid_format(raw + 33, out->voter_id);
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | raw[49 + i];
    out->expires_ms = (int64_t)e;
    if (now_ms >= out->expires_ms)
        rc = cs_err_set(err, CS_ERR_EXPIRED, "the link has expired");
done:
    cs_free(raw);
    return rc;
}

char *cs_link_url(const char *public_url, const char *path)
{
    size_t n = strlen(public_url);
    while (n && public_url[n - 1] == '/')
        n--;
    return cs_asprintf("%.*s%s", (int)n, public_url, path);
}
