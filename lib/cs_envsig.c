/*
 * cs_envsig.c -- envelope signature headers: parse, MAC, verify (see cs_envsig.h).
 *
 * The parser is strict about what it needs (t, k and v1 once each, in
 * their exact syntax) and ignores names it does not know, so a producer
 * may add a v2 MAC during a future algorithm change. The key lookup, the
 * replay window and the agent match are the verifier's (worker/ingest.c).
 */
#include "cs_envsig.h"

#include <stdio.h>
#include <string.h>

#include "cs_mem.h"

bool cs_envsig_kid_valid(const char *s)
{
    if (strlen(s) != CS_ENVSIG_KID_LEN || strncmp(s, "csk_", 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* One name=value pair of v[0..len): copies the value of a known name into the signature. */
static enum cs_err pair(const char *p, size_t n, struct cs_envsig *out, unsigned *seen, char *err)
{
    const char *eq = memchr(p, '=', n);
    if (!eq)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "malformed signature header: a part "
                          "without '='");
    size_t nlen = (size_t)(eq - p), vlen = n - nlen - 1;
    const char *v = eq + 1;
    unsigned bit = nlen == 1 && *p == 't'             ? 1u
                   : nlen == 1 && *p == 'k'           ? 2u
                   : nlen == 2 && !memcmp(p, "v1", 2) ? 4u
                                                      : 0u;
    if (!bit)
        return CS_OK; /* another name: ignored */
    if (*seen & bit)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "malformed signature header: %.*s twice",
                          (int)nlen, p);
    *seen |= bit;
    if (bit == 1) {
        if (vlen < 1 || vlen > 12)
            return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                              "malformed signature header: t is "
                              "1-12 digits");
        out->t = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                                  "malformed signature header: t "
                                  "is 1-12 digits");
            out->t = out->t * 10 + (v[i] - '0');
        }
        memcpy(out->t_text, v, vlen);
        out->t_text[vlen] = '\0';
    } else if (bit == 2) {
        if (vlen != CS_ENVSIG_KID_LEN)
            return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                              "malformed signature header: k is "
                              "not a key id (csk_ and 16 hex digits)");
        memcpy(out->kid, v, vlen);
        out->kid[vlen] = '\0';
        if (!cs_envsig_kid_valid(out->kid))
            return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                              "malformed signature header: k is "
                              "not a key id (csk_ and 16 hex digits)");
    } else {
        for (size_t i = 0; i < vlen; i++)
            if (v[i] >= 'A' && v[i] <= 'F')
                vlen = 0; /* lower-case only */
        if (vlen != 2 * CS_SHA256_LEN || cs_hex_decode(v, vlen, out->mac, CS_SHA256_LEN))
            return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                              "malformed signature header: v1 is "
                              "not 64 lower-case hex digits");
    }
    return CS_OK;
}

enum cs_err cs_envsig_parse(const char *v, size_t len, struct cs_envsig *out, char *err)
{
    memset(out, 0, sizeof(*out));
    if (len > 1024)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "malformed signature header: longer "
                          "than 1024 bytes");
    unsigned seen = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != ',')
            continue;
        enum cs_err rc = pair(v + start, i - start, out, &seen, err);
        if (rc)
            return rc;
        start = i + 1;
    }
    if (seen != 7)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "malformed signature header: t, k and "
                          "v1 are required");
    return CS_OK;
}

void cs_envsig_mac(const char *secret, size_t secret_len, const char *t_text, const void *value,
                   size_t len, unsigned char mac[CS_SHA256_LEN])
{
    /* "<t>." || value, in one buffer: the MAC wrapper takes one message. */
    size_t tl = strlen(t_text);
    unsigned char *msg = cs_malloc(tl + 1 + len + 1);
    memcpy(msg, t_text, tl);
    msg[tl] = '.';
    if (len)
        memcpy(msg + tl + 1, value, len);
    cs_hmac_sha256(secret, secret_len, msg, tl + 1 + len, mac);
    cs_free(msg);
}

bool cs_envsig_verify(const struct cs_envsig *sig, const char *secret, size_t secret_len,
                      const void *value, size_t len)
{
    unsigned char mac[CS_SHA256_LEN];
    cs_envsig_mac(secret, secret_len, sig->t_text, value, len, mac);
    return cs_ct_equal(mac, sig->mac, sizeof(mac));
}

void cs_envsig_sign(const char *kid, const char *secret, size_t secret_len, int64_t t,
                    const void *value, size_t len, char out[CS_ENVSIG_HEADER_MAX])
{
    char t_text[24], hex[2 * CS_SHA256_LEN + 1];
    unsigned char mac[CS_SHA256_LEN];
    snprintf(t_text, sizeof(t_text), "%lld", (long long)t);
    cs_envsig_mac(secret, secret_len, t_text, value, len, mac);
    cs_hex_encode(mac, sizeof(mac), hex);
    snprintf(out, CS_ENVSIG_HEADER_MAX, "t=%s,k=%s,v1=%s", t_text, kid, hex);
}
