/*
 * cs_oidc.h -- OpenID Connect relying party: approvers sign in with any
 * standard provider (Okta, Entra ID, Google, Keycloak), authorization code
 * flow with PKCE (S256).
 *
 *   cs_oidc_begin ──302 to authorization_endpoint──> provider login
 *     ──302 to redirect_uri?code&state[&iss]──> cs_oidc_check_callback
 *     ──> cs_oidc_finish: code at token_endpoint, ID token verified ──> identity
 *
 * The api keeps the struct cs_oidc_login of each begin server-side (keyed
 * by its state, for a few minutes, used once) and hands it back to
 * cs_oidc_check_callback and cs_oidc_finish. struct cs_oidc caches the
 * discovery document (fetched lazily, again after a failure) and the JWKS
 * (refetched when an hour old or when a token names a key it lacks, either
 * at most once per 30 s). Plain http only with allow_http
 * and only to a loopback host; TLS is verified; redirects are never
 * followed; every response body is capped. Secrets (client secret, code,
 * verifier, tokens) are never logged nor put in err.
 *
 * Errors: CS_ERR_UNAUTHENTICATED for every refused token, code or callback;
 * CS_ERR_UNAVAILABLE when the provider cannot be reached or answers
 * garbage; CS_ERR_CONFIG for a bad configuration (and a client the
 * provider does not know); CS_ERR_INVALID for malformed input.
 */
#ifndef CS_OIDC_H
#define CS_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_idtoken.h"

struct cs_oidc_config { /* strings borrowed for cs_oidc_new only (copied) */
    const char *issuer; /* exactly the discovery document's "issuer" */
    const char *client_id;
    const char *client_secret; /* NULL: public client, PKCE only (client_id in the body) */
    const char *redirect_uri;  /* <CS_PUBLIC_URL>/signin/oidc/callback */
    const char *scopes;        /* NULL: "openid email profile"; must hold "openid" */
    int leeway_s;              /* clock skew allowed on exp, iat, nbf: 0..600 */
    int http_timeout_ms;       /* per request to the provider; 0: 10000 */
    int64_t (*clock_ms)(void); /* NULL: cs_now_ms; tests pass one they move (any thread calls it) */
    bool allow_http;           /* http:// issuer and endpoints on a loopback host (tests) */
    const char *role_claim;    /* an ID token claim whose values go to identity.roles, or NULL */
};

struct cs_oidc;

/*
 * Validates oc and makes the relying party (nothing fetched yet): *out is
 * the caller's (cs_oidc_free). CS_ERR_CONFIG names the bad setting. Calls
 * curl_global_init, so call it before the process starts threads.
 * Thread: main thread.
 */
enum cs_err cs_oidc_new(const struct cs_oidc_config *oc, struct cs_oidc **out,
                        char *err) CS_MUSTCHECK;
/* Frees o (NULL ok) and wipes its secret. Thread: after every caller is done. */
void cs_oidc_free(struct cs_oidc *o);

/*
 * Installs a discovery document as if fetched from the issuer, checked the
 * same way (issuer equal, endpoints https or loopback http): for unit tests
 * and for providers without a reachable discovery URL. CS_ERR_UNAVAILABLE
 * when it is refused. Thread: any (Locks: o's mutex).
 */
enum cs_err cs_oidc_set_discovery(struct cs_oidc *o, const char *json, size_t len,
                                  char *err) CS_MUSTCHECK;

/* What the api stores server-side between the redirect and the callback. */
struct cs_oidc_login {
    char state[44];    /* base64url of 32 random bytes (43 chars) */
    char nonce[44];    /* idem, bound into the ID token */
    char verifier[64]; /* PKCE code_verifier, 43 chars (RFC 7636: 43..128); secret */
};

/*
 * Fresh state, nonce and verifier into *login, and in *auth_url (cs_malloc'd,
 * the caller's) the authorization URL with response_type=code, client_id,
 * redirect_uri, scope, state, nonce, code_challenge = base64url(SHA-256(
 * verifier)) and code_challenge_method=S256. Fetches discovery when not
 * cached. CS_ERR_UNAVAILABLE when discovery fails. Thread: any.
 */
enum cs_err cs_oidc_begin(struct cs_oidc *o, struct cs_oidc_login *login, char **auth_url,
                          char *err) CS_MUSTCHECK;

/*
 * Checks the callback's query against the stored login: `state` must equal
 * login->state (constant time) and `iss` (RFC 9207; NULL when absent) the
 * issuer. CS_ERR_UNAUTHENTICATED otherwise. Thread: any.
 */
enum cs_err cs_oidc_check_callback(const struct cs_oidc *o, const struct cs_oidc_login *login,
                                   const char *state, const char *iss, char *err) CS_MUSTCHECK;

/*
 * Redeems `code` at the token endpoint (grant_type=authorization_code,
 * code_verifier, redirect_uri; client_secret_basic when a secret is set,
 * else client_id in the body), then verifies the ID token against the
 * cached JWKS with login->nonce (cs_oidc_verify_id_token, cs_idtoken.h)
 * and fills *id.
 * CS_ERR_INVALID for a malformed code; CS_ERR_UNAUTHENTICATED when the
 * provider refuses the code (invalid_grant) or the token is refused;
 * CS_ERR_CONFIG when it refuses the client; CS_ERR_UNAVAILABLE otherwise.
 * Call cs_oidc_check_callback first. Thread: any.
 */
enum cs_err cs_oidc_finish(struct cs_oidc *o, const struct cs_oidc_login *login, const char *code,
                           struct cs_oidc_identity *id, char *err) CS_MUSTCHECK;

#endif
