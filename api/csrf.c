/*
 * csrf.c -- a POST counts only when it comes from our own pages.
 *
 * Forms of a signed-in person carry a token bound to their session:
 * base64url(HMAC(csrf_key, "form|" session id)), under a sub-key of the
 * master key. It needs no cookie of its own, so any number of tabs stay
 * valid together, and it dies with the session. Browsers' Sec-Fetch-Site
 * and Origin headers add a second, independent check on every POST,
 * including the sign-in POST, which has no session yet. A semi-public
 * link's form (no session by design) binds its token to the link instead.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_mem.h"

void csrf_token_for(struct api *a, const char *subject, char out[CSRF_LEN + 1])
{
    unsigned char mac[CS_SHA256_LEN];
    char *msg = cs_asprintf("form|%s", subject);
    cs_hmac_sha256(a->csrf_key, 32, msg, strlen(msg), mac);
    cs_b64_encode_to(mac, sizeof(mac), true, out);
    cs_free(msg);
}

void csrf_token(struct api *a, const struct cs_session *s, char out[CSRF_LEN + 1])
{
    csrf_token_for(a, s->id, out);
}

/*
 * A browser's Sec-Fetch-Site (which pages cannot forge) must say
 * same-origin; without it, an Origin other than "null" must be ours
 * ("null" is what browsers send under our no-referrer policy).
 */
enum cs_err csrf_check_origin(struct api *a, struct MHD_Connection *c, char *err)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the form was sent from another site");
    if (!site && origin && strcmp(origin, "null") != 0 && strcmp(origin, a->origin) != 0)
        return cs_err_set(err, CS_ERR_CSRF, "the form was sent from another origin");
    return CS_OK;
}

enum cs_err csrf_check_for(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                           const char *subject, char *err)
{
    enum cs_err rc = csrf_check_origin(a, c, err);
    if (rc)
        return rc;
    char want[CSRF_LEN + 1];
    csrf_token_for(a, subject, want);
    if (!form_csrf || strlen(form_csrf) != CSRF_LEN || !cs_ct_equal(want, form_csrf, CSRF_LEN))
        return cs_err_set(err, CS_ERR_CSRF,
                          "the form's security token is missing or stale; open the page again");
    return CS_OK;
}

enum cs_err csrf_check(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                       const struct cs_session *s, char *err)
{
    return csrf_check_for(a, c, form_csrf, s->id, err);
}
