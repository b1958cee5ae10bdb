/*
 * csrf.c -- decisions come only from the page that showed the request.
 *
 * The review page issues a token bound to its link (nonce "." HMAC of link
 * and nonce under a sub-key of the master key) in a hidden field and in a
 * SameSite=Strict cookie; a decision POST must return both, equal, and
 * verifying for that link. Browsers' Sec-Fetch-Site and Origin headers add
 * a second, independent check where present.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_mem.h"

/* csrf = nonce "." base64url(HMAC(csrf_key, token "|" nonce)) */
void csrf_make(struct api *a, const char *token, const char *nonce, char *out, size_t n)
{
    unsigned char mac[CS_SHA256_LEN];
    char *msg = cs_asprintf("%s|%s", token, nonce), b64[48];
    cs_hmac_sha256(a->csrf_key, 32, msg, strlen(msg), mac);
    cs_b64_encode_to(mac, sizeof(mac), true, b64);
    snprintf(out, n, "%s.%s", nonce, b64);
    cs_free(msg);
}

static bool csrf_valid(struct api *a, const char *token, const char *value)
{
    if (!value || strlen(value) > 128)
        return false;
    const char *dot = strchr(value, '.');
    if (!dot || dot == value)
        return false;
    char nonce[64], want[160];
    cs_strlcpy(nonce, value, (size_t)(dot - value) + 1 < sizeof(nonce) ? (size_t)(dot - value) + 1
                                                                        : sizeof(nonce));
    csrf_make(a, token, nonce, want, sizeof(want));
    return strlen(want) == strlen(value) && cs_ct_equal(want, value, strlen(want));
}

static const char *cookie(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, name);
}

/*
 * A decision must come from this page: a browser's Sec-Fetch-Site (which
 * pages cannot forge) must say same-origin; without it, an Origin other than
 * "null" must be ours ("null" is what browsers send under our no-referrer
 * policy); and in every case the form's token must match the SameSite=Strict
 * cookie this link's page set, and verify for this link.
 */
enum cs_err csrf_check(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                             const char *token, char *err)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    const char *ck = cookie(c, "cs_csrf");
    if (site && strcmp(site, "same-origin") != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the decision was sent from another site");
    if (!site && origin && strcmp(origin, "null") != 0 && strcmp(origin, a->origin) != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the decision was sent from another origin");
    if (!ck || !form_csrf || strcmp(ck, form_csrf) != 0 || !csrf_valid(a, token, form_csrf))
        return cs_err_set(err, CS_ERR_CSRF,
                          "the form's security token is missing or stale; open the link again");
    return CS_OK;
}


void csrf_issue(struct api *a, const char *token, const char *cookie_path, char csrf[160],
                char set_cookie[320])
{
    unsigned char raw[16];
    char nonce[32];
    cs_random_bytes(raw, sizeof(raw));
    cs_b64_encode_to(raw, sizeof(raw), true, nonce);
    csrf_make(a, token, nonce, csrf, 160);
    snprintf(set_cookie, 320, "cs_csrf=%s; Path=%s; HttpOnly; SameSite=Strict%s", csrf,
             cookie_path, strncmp(a->cfg->public_url, "https:", 6) == 0 ? "; Secure" : "");
}
