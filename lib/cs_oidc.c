/*
 * cs_oidc.c -- the OpenID Connect relying party (see cs_oidc.h).
 *
 * Run by the api's HTTP threads, all sharing one struct cs_oidc. Three
 * parts: the provider's HTTP (one libcurl easy handle per request, bodies
 * in capped cs_bufs, no redirects, TLS verified, https unless allow_http,
 * and then loopback hosts only); the cache (discovery endpoints and a
 * reference-counted JWKS under one mutex that is never held across network
 * I/O, so a slow provider stalls only the logins waiting on it); and the
 * flow itself, begin and finish. Token checks live in cs_idtoken.c.
 *
 * Cache rules: discovery is fetched on first use and again after a
 * failure, then kept. The JWKS is fetched on first use, refreshed when an
 * hour old, and refetched when a token names a key it lacks -- but at most
 * once per 30 s (JWKS_REFETCH_MS), so unknown kids cannot make us hammer
 * the provider. A failed refresh keeps the previous set.
 *
 * Secrets (client secret, code, verifier, the token endpoint's answer) are
 * wiped after use and never reach err or the log. The provider's own error
 * text is not repeated either: only its error code, reduced to [a-z_].
 */
#include "cs_oidc.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <string.h>

#include "cs_buf.h"
#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_time.h"
#include "cs_url.h"

#define JWKS_MAX_AGE_MS (3600 * 1000LL)
#define JWKS_REFETCH_MS (30 * 1000LL)
#define DOC_MAX (256 * 1024)       /* discovery document */
#define TOKEN_BODY_MAX (64 * 1024) /* token endpoint answer */
#define URL_MAX 2048
#define CODE_MAX 4096
#define WELL_KNOWN "/.well-known/openid-configuration"

/* A JWKS shared by the threads verifying with it. */
struct keyset {
    struct cs_jwks *jwks;
    int refs; /* the cache's own + one per verifying thread; under mu */
};

struct cs_oidc {
    char *issuer, *client_id, *client_secret, *discovery_url, *role_claim;
    char *q_client_id, *q_redirect_uri, *q_scopes; /* URL-encoded for the query */
    int leeway_s;
    long timeout_ms;
    int64_t (*clock_ms)(void);
    bool allow_http;
    pthread_mutex_t mu;
    /* Guarded by mu: */
    char *authz_ep, *token_ep, *jwks_uri; /* NULL until discovered */
    struct keyset *keys;                  /* NULL until fetched */
    int64_t keys_loaded_ms, keys_tried_ms;
};

/* ---- checks ---- */

/* True for hosts that stay on this machine: 127.0.0.0/8, ::1, localhost. */
static bool loopback(const struct cs_url *u)
{
    return strcmp(u->host, "localhost") == 0 || strcmp(u->host, "::1") == 0 ||
           (u->host_is_ip && strncmp(u->host, "127.", 4) == 0);
}

/* An endpoint we may call: https, or http to a loopback host with allow_http. */
static enum cs_err endpoint_ok(bool allow_http, const char *what, const char *s, char *err)
{
    struct cs_url u;
    char uerr[CS_ERRLEN];
    if (!s || strlen(s) > URL_MAX || strchr(s, '#') || cs_url_parse(s, &u, uerr) != CS_OK)
        return cs_err_set(err, CS_ERR_INVALID, "%s is not an absolute http(s) URL", what);
    bool ok = strcmp(u.scheme, "https") == 0 || (allow_http && loopback(&u));
    cs_url_free(&u);
    if (!ok)
        return cs_err_set(err, CS_ERR_INVALID, "%s must be https%s", what,
                          allow_http ? " (or http to a loopback host)" : "");
    return CS_OK;
}

/* True when s is 1..max bytes of printable ASCII (no space unless `space`). */
static bool printable(const char *s, size_t max, bool space)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (const char *c = s; *c; c++)
        if (*c < (space ? 0x20 : 0x21) || *c > 0x7e)
            return false;
    return true;
}

/* Scope tokens (RFC 6749 3.3) separated by single spaces, one of them "openid". */
static bool scopes_ok(const char *s)
{
    if (!printable(s, 1024, true) || s[0] == ' ' || s[strlen(s) - 1] == ' ' || strstr(s, "  ") ||
        strpbrk(s, "\"\\"))
        return false;
    for (const char *p = s; (p = strstr(p, "openid")); p += 6)
        if ((p == s || p[-1] == ' ') && (p[6] == ' ' || p[6] == '\0'))
            return true;
    return false;
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    cs_assert(e);
    char *copy = cs_strdup(e);
    curl_free(e);
    return copy;
}

/* ---- new, free ---- */

enum cs_err cs_oidc_new(const struct cs_oidc_config *oc, struct cs_oidc **out, char *err)
{
    *out = NULL;
    const char *scopes = oc->scopes ? oc->scopes : "openid email profile";
    char e[CS_ERRLEN];
    if (endpoint_ok(oc->allow_http, "issuer", oc->issuer, e) || strlen(oc->issuer) > 255 ||
        strchr(oc->issuer, '?'))
        return cs_err_set(err, CS_ERR_CONFIG,
                          "OIDC issuer: an https URL of at most 255 bytes "
                          "without query or fragment is required%s",
                          oc->allow_http ? " (http to a loopback host allowed)" : "");
    if (!printable(oc->client_id, 255, false))
        return cs_err_set(err, CS_ERR_CONFIG, "OIDC client_id: 1..255 printable ASCII bytes");
    if (oc->client_secret && !printable(oc->client_secret, 1024, false))
        return cs_err_set(err, CS_ERR_CONFIG, "OIDC client_secret: 1..1024 printable ASCII bytes");
    struct cs_url u;
    if (!oc->redirect_uri || strchr(oc->redirect_uri, '#') ||
        cs_url_parse(oc->redirect_uri, &u, e) != CS_OK)
        return cs_err_set(err, CS_ERR_CONFIG,
                          "OIDC redirect_uri: an absolute http(s) URL "
                          "without fragment is required");
    cs_url_free(&u);
    if (!scopes_ok(scopes))
        return cs_err_set(err, CS_ERR_CONFIG,
                          "OIDC scopes: space-separated scope tokens "
                          "including openid");
    if (oc->leeway_s < 0 || oc->leeway_s > 600)
        return cs_err_set(err, CS_ERR_CONFIG, "OIDC leeway: 0..600 seconds");
    if (oc->http_timeout_ms != 0 && (oc->http_timeout_ms < 100 || oc->http_timeout_ms > 300000))
        return cs_err_set(err, CS_ERR_CONFIG, "OIDC HTTP timeout: 100..300000 ms (0: 10000)");

    cs_assert(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    struct cs_oidc *o = cs_calloc(1, sizeof(*o));
    o->issuer = cs_strdup(oc->issuer);
    o->client_id = cs_strdup(oc->client_id);
    o->client_secret = cs_strdup(oc->client_secret);
    o->role_claim = cs_strdup(oc->role_claim);
    size_t n = strlen(o->issuer);
    o->discovery_url =
        cs_asprintf("%.*s" WELL_KNOWN, (int)(n && o->issuer[n - 1] == '/' ? n - 1 : n), o->issuer);
    o->q_client_id = escape(oc->client_id);
    o->q_redirect_uri = escape(oc->redirect_uri);
    o->q_scopes = escape(scopes);
    o->leeway_s = oc->leeway_s;
    o->timeout_ms = oc->http_timeout_ms ? oc->http_timeout_ms : 10000;
    o->clock_ms = oc->clock_ms ? oc->clock_ms : cs_now_ms;
    o->allow_http = oc->allow_http;
    cs_assert(pthread_mutex_init(&o->mu, NULL) == 0);
    *out = o;
    return CS_OK;
}

static void keyset_put(struct cs_oidc *o, struct keyset *ks)
{
    if (!ks)
        return;
    pthread_mutex_lock(&o->mu);
    bool last = --ks->refs == 0;
    pthread_mutex_unlock(&o->mu);
    if (last) {
        cs_jwks_free(ks->jwks);
        cs_free(ks);
    }
}

void cs_oidc_free(struct cs_oidc *o)
{
    if (!o)
        return;
    keyset_put(o, o->keys);
    if (o->client_secret)
        cs_wipe(o->client_secret, strlen(o->client_secret));
    char *strs[] = {o->issuer,      o->client_id,      o->client_secret, o->discovery_url,
                    o->q_client_id, o->q_redirect_uri, o->q_scopes,      o->authz_ep,
                    o->token_ep,    o->jwks_uri,       o->role_claim};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        cs_free(strs[i]);
    pthread_mutex_destroy(&o->mu);
    cs_free(o);
    curl_global_cleanup();
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return cs_buf_append(ud, p, size * n) == CS_OK ? size * n : 0; /* 0: curl stops */
}

/*
 * GET url, or POST `form` (application/x-www-form-urlencoded) with an
 * optional Authorization header. *status and *body (capped at body->max)
 * hold the answer. CS_ERR_UNAVAILABLE when no complete answer came.
 */
static enum cs_err http(const struct cs_oidc *o, const char *what, const char *url,
                        const char *form, const char *auth, long *status, struct cs_buf *body,
                        char *err)
{
    CURL *c = curl_easy_init();
    cs_assert(c);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (auth)
        h = curl_slist_append(h, auth);
    cs_assert(h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->allow_http ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "countersign-oidc/1");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
    }
    CURLcode cr = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (cr == CURLE_WRITE_ERROR)
        return cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC %s: answer larger than %zu bytes", what,
                          body->max);
    if (cr != CURLE_OK)
        return cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC %s %s: %s", what, url,
                          curl_easy_strerror(cr));
    return CS_OK;
}

/* A 200 answer holding a JSON object into *obj (the caller's). */
static enum cs_err json_answer(const char *what, long status, const struct cs_buf *b,
                               json_object **obj, char *err)
{
    char jerr[CS_ERRLEN];
    *obj = NULL;
    if (status != 200)
        return cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC %s: HTTP status %ld", what, status);
    if (cs_json_parse(b->data ? b->data : "", b->len, obj, jerr) != CS_OK ||
        !json_object_is_type(*obj, json_type_object)) {
        json_object_put(*obj);
        *obj = NULL;
        return cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC %s: answer is not a JSON object", what);
    }
    return CS_OK;
}

/* ---- discovery ---- */

enum cs_err cs_oidc_set_discovery(struct cs_oidc *o, const char *json, size_t len, char *err)
{
    json_object *doc = NULL;
    const char *iss = NULL, *ep[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"authorization_endpoint", "token_endpoint", "jwks_uri"};
    char e[CS_ERRLEN];
    enum cs_err rc = CS_OK;
    if (cs_json_parse(json, len, &doc, e) != CS_OK || !json_object_is_type(doc, json_type_object)) {
        rc = cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC discovery: not a JSON object");
        goto done;
    }
    if (cs_json_str(doc, "issuer", true, 1024, &iss, e) || strcmp(iss, o->issuer) != 0) {
        rc = cs_err_set(err, CS_ERR_UNAVAILABLE,
                        "OIDC discovery: issuer is not the configured "
                        "%s",
                        o->issuer);
        goto done;
    }
    for (int i = 0; i < 3; i++)
        if (cs_json_str(doc, names[i], true, URL_MAX, &ep[i], e) ||
            endpoint_ok(o->allow_http, names[i], ep[i], e)) {
            rc = cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC discovery: %s: %s", names[i], e);
            goto done;
        }
    pthread_mutex_lock(&o->mu);
    char *old[3] = {o->authz_ep, o->token_ep, o->jwks_uri};
    o->authz_ep = cs_strdup(ep[0]);
    o->token_ep = cs_strdup(ep[1]);
    o->jwks_uri = cs_strdup(ep[2]);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < 3; i++)
        cs_free(old[i]);
done:
    json_object_put(doc);
    return rc;
}

/* Copies endpoint `which` of the discovery document, fetching it when not cached. */
static enum cs_err endpoint(struct cs_oidc *o, char *const *which, char **out, char *err)
{
    pthread_mutex_lock(&o->mu);
    *out = cs_strdup(*which);
    pthread_mutex_unlock(&o->mu);
    if (*out)
        return CS_OK;
    struct cs_buf b;
    long status;
    json_object *doc = NULL;
    cs_buf_init(&b, DOC_MAX);
    enum cs_err rc = http(o, "discovery", o->discovery_url, NULL, NULL, &status, &b, err);
    if (!rc)
        rc = json_answer("discovery", status, &b, &doc, err);
    json_object_put(doc);
    if (!rc)
        rc = cs_oidc_set_discovery(o, b.data, b.len, err);
    cs_buf_free(&b);
    if (rc)
        return rc;
    cs_log(CS_LOG_INFO, "oidc", "discovery loaded from %s", o->discovery_url);
    pthread_mutex_lock(&o->mu);
    *out = cs_strdup(*which);
    pthread_mutex_unlock(&o->mu);
    return CS_OK;
}

/* ---- JWKS cache ---- */

/*
 * A reference to the cached key set (keyset_put it), fetching first when
 * there is none, it is an hour old, or `refetch` -- the last two at most
 * once per JWKS_REFETCH_MS. A failed refresh keeps the set there was.
 */
static enum cs_err keyset_get(struct cs_oidc *o, bool refetch, struct keyset **out, char *err)
{
    char *uri = NULL;
    enum cs_err rc = endpoint(o, &o->jwks_uri, &uri, err);
    if (rc)
        return rc;
    int64_t now = o->clock_ms();
    pthread_mutex_lock(&o->mu);
    bool due = now - o->keys_tried_ms >= JWKS_REFETCH_MS &&
               (refetch || now - o->keys_loaded_ms >= JWKS_MAX_AGE_MS);
    bool fetch = !o->keys || due;
    if (fetch)
        o->keys_tried_ms = now;
    pthread_mutex_unlock(&o->mu);

    if (fetch) {
        struct cs_buf b;
        long status;
        json_object *doc = NULL;
        struct cs_jwks *jwks = NULL;
        char e[CS_ERRLEN];
        cs_buf_init(&b, CS_OIDC_JWKS_MAX);
        rc = http(o, "JWKS", uri, NULL, NULL, &status, &b, e);
        if (!rc)
            rc = json_answer("JWKS", status, &b, &doc, e);
        json_object_put(doc);
        if (!rc && cs_jwks_parse(b.data, b.len, &jwks, e) != CS_OK)
            rc = CS_ERR_UNAVAILABLE;
        cs_buf_free(&b);
        if (rc) {
            cs_err_set(err, CS_ERR_UNAVAILABLE, "%s", e);
        } else {
            struct keyset *ks = cs_calloc(1, sizeof(*ks)), *old;
            ks->jwks = jwks;
            ks->refs = 1;
            /* Counted before it is published: once o->keys holds it, another
             * thread may replace and free it before this one logs. */
            size_t usable = cs_jwks_count(jwks);
            pthread_mutex_lock(&o->mu);
            old = o->keys;
            o->keys = ks;
            o->keys_loaded_ms = now;
            pthread_mutex_unlock(&o->mu);
            keyset_put(o, old);
            cs_log(CS_LOG_INFO, "oidc", "JWKS loaded from %s: %zu usable keys", uri, usable);
        }
    }
    pthread_mutex_lock(&o->mu);
    if ((*out = o->keys))
        o->keys->refs++;
    pthread_mutex_unlock(&o->mu);
    if (rc && *out) /* the caller cannot see this one: say it here (at most every 30 s) */
        cs_log(CS_LOG_WARN, "oidc", "JWKS from %s not refreshed, previous set kept: %s", uri, err);
    cs_free(uri);
    return *out ? CS_OK : rc ? rc : cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC JWKS not loaded");
}

/* ---- the flow ---- */

/* 32 random bytes as 43 characters of base64url into out[44]. */
static void random_b64(char out[44])
{
    unsigned char r[32];
    cs_random_bytes(r, sizeof(r));
    cs_b64_encode_to(r, sizeof(r), true, out);
    cs_wipe(r, sizeof(r));
}

static void put(struct cs_buf *b, const char *s)
{
    cs_assert(cs_buf_puts(b, s) == CS_OK); /* the caps are far above what is put */
}

enum cs_err cs_oidc_begin(struct cs_oidc *o, struct cs_oidc_login *login, char **auth_url,
                          char *err)
{
    char *ep = NULL;
    *auth_url = NULL;
    memset(login, 0, sizeof(*login));
    enum cs_err rc = endpoint(o, &o->authz_ep, &ep, err);
    if (rc)
        return rc;
    random_b64(login->state);
    random_b64(login->nonce);
    random_b64(login->verifier);
    unsigned char h[CS_SHA256_LEN];
    char challenge[44];
    cs_sha256(login->verifier, strlen(login->verifier), h);
    cs_b64_encode_to(h, sizeof(h), true, challenge);

    struct cs_buf b;
    cs_buf_init(&b, 4 * URL_MAX + 4096);
    put(&b, ep);
    put(&b, strchr(ep, '?') ? "&" : "?");
    const char *kv[][2] = {
        {"response_type=", "code"},
        {"&client_id=", o->q_client_id},
        {"&redirect_uri=", o->q_redirect_uri},
        {"&scope=", o->q_scopes},
        {"&state=", login->state},
        {"&nonce=", login->nonce},
        {"&code_challenge=", challenge},
        {"&code_challenge_method=", "S256"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        put(&b, kv[i][0]);
        put(&b, kv[i][1]); /* already URL-safe: escaped at cs_oidc_new, or base64url */
    }
    cs_free(ep);
    *auth_url = cs_buf_take(&b, NULL);
    return CS_OK;
}

enum cs_err cs_oidc_check_callback(const struct cs_oidc *o, const struct cs_oidc_login *login,
                                   const char *state, const char *iss, char *err)
{
    size_t n = strnlen(login->state, sizeof(login->state));
    if (!state || n == 0 || strlen(state) != n || !cs_ct_equal(state, login->state, n))
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "OIDC callback: state is missing or not this login's");
    if (iss && strcmp(iss, o->issuer) != 0)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "OIDC callback: iss is not the configured issuer");
    return CS_OK;
}

/* Keeps [a-z_] of the provider's error code (at most 40), for err. */
static void error_code(json_object *doc, char out[41])
{
    const char *s = NULL;
    size_t n = 0;
    char e[CS_ERRLEN];
    if (doc && cs_json_str(doc, "error", false, 256, &s, e) != CS_OK)
        s = NULL;
    for (; s && *s && n < 40; s++)
        if ((*s >= 'a' && *s <= 'z') || *s == '_')
            out[n++] = *s;
    out[n] = '\0';
}

/*
 * POSTs the code to the token endpoint; *id_token (cs_malloc'd) on success.
 * The form, the Authorization header and the answer are wiped after use.
 */
static enum cs_err redeem(struct cs_oidc *o, const struct cs_oidc_login *login, const char *code,
                          char **id_token, char *err)
{
    char *ep = NULL, *q_code = NULL, *q_verifier = NULL, *auth = NULL;
    enum cs_err rc = endpoint(o, &o->token_ep, &ep, err);
    if (rc)
        return rc;
    struct cs_buf b;
    cs_buf_init(&b, TOKEN_BODY_MAX);
    q_code = escape(code);
    q_verifier = escape(login->verifier);
    /* One allocation each, so that wiping them leaves no copy behind. */
    char *form =
        cs_asprintf("grant_type=authorization_code&code=%s&redirect_uri=%s"
                    "&code_verifier=%s%s%s",
                    q_code, o->q_redirect_uri, q_verifier,
                    o->client_secret ? "" : "&client_id=", o->client_secret ? "" : o->q_client_id);
    if (o->client_secret) {
        /* RFC 6749 2.3.1: id and secret are form-encoded before base64. */
        char *q_secret = escape(o->client_secret);
        char *pair = cs_asprintf("%s:%s", o->q_client_id, q_secret);
        char *b64 = cs_b64_encode(pair, strlen(pair), false);
        auth = cs_asprintf("Authorization: Basic %s", b64);
        cs_wipe(q_secret, strlen(q_secret));
        cs_wipe(pair, strlen(pair));
        cs_wipe(b64, strlen(b64));
        cs_free(q_secret);
        cs_free(pair);
        cs_free(b64);
    }
    long status = 0;
    json_object *doc = NULL;
    const char *tok = NULL;
    char jerr[CS_ERRLEN], code_s[41];
    rc = http(o, "token endpoint", ep, form, auth, &status, &b, err);
    if (!rc && b.len && cs_json_parse(b.data, b.len, &doc, jerr) == CS_OK &&
        !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        doc = NULL;
    }
    error_code(doc, code_s);
    if (rc) {
        /* http() said why */
    } else if (status == 200 && doc &&
               cs_json_str(doc, "id_token", true, TOKEN_BODY_MAX, &tok, jerr) == CS_OK) {
        *id_token = cs_strdup(tok); /* a NUL inside is refused by cs_json_str */
    } else if (status == 200) {
        rc = cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC token endpoint: answer without id_token");
    } else if (status >= 400 && status < 500 && doc &&
               (!strcmp(code_s, "invalid_client") || !strcmp(code_s, "unauthorized_client") ||
                !strcmp(code_s, "unsupported_grant_type") || !strcmp(code_s, "invalid_scope"))) {
        rc = cs_err_set(err, CS_ERR_CONFIG, "OIDC token endpoint refused this client (%s)", code_s);
    } else if (status >= 400 && status < 500 && code_s[0]) {
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED, "OIDC token endpoint refused the code (%s)",
                        code_s);
    } else {
        rc = cs_err_set(err, CS_ERR_UNAVAILABLE, "OIDC token endpoint: HTTP status %ld", status);
    }
    json_object_put(doc);
    cs_wipe(form, strlen(form));
    cs_wipe(b.data, b.len);
    cs_wipe(q_code, strlen(q_code));
    cs_wipe(q_verifier, strlen(q_verifier));
    if (auth)
        cs_wipe(auth, strlen(auth));
    cs_free(form);
    cs_buf_free(&b);
    cs_free(q_code);
    cs_free(q_verifier);
    cs_free(auth);
    cs_free(ep);
    return rc;
}

enum cs_err cs_oidc_finish(struct cs_oidc *o, const struct cs_oidc_login *login, const char *code,
                           struct cs_oidc_identity *id, char *err)
{
    memset(id, 0, sizeof(*id));
    if (!printable(code, CODE_MAX, false))
        return cs_err_set(err, CS_ERR_INVALID,
                          "OIDC callback: code is missing, longer than %d "
                          "bytes or not printable ASCII",
                          CODE_MAX);
    size_t vn = strnlen(login->verifier, sizeof(login->verifier));
    if (vn < 43 || vn >= sizeof(login->verifier) ||
        strnlen(login->nonce, sizeof(login->nonce)) >= sizeof(login->nonce))
        return cs_err_set(err, CS_ERR_INVALID, "OIDC login: not one cs_oidc_begin made");

    char *jwt = NULL;
    struct keyset *ks = NULL;
    bool unknown = false;
    enum cs_err rc = redeem(o, login, code, &jwt, err);
    if (!rc)
        rc = keyset_get(o, false, &ks, err);
    if (!rc)
        rc = cs_oidc_verify_id_token(ks->jwks, jwt, o->issuer, o->client_id, login->nonce,
                                     o->clock_ms() / 1000, o->leeway_s, o->role_claim, id, &unknown,
                                     err);
    if (rc == CS_ERR_UNAUTHENTICATED && unknown) {
        /* Maybe the provider rolled its keys: one refetch (rate-limited), then decide. */
        struct keyset *fresh = NULL;
        if (keyset_get(o, true, &fresh, err) == CS_OK && fresh != ks)
            rc = cs_oidc_verify_id_token(fresh->jwks, jwt, o->issuer, o->client_id, login->nonce,
                                         o->clock_ms() / 1000, o->leeway_s, o->role_claim, id, NULL,
                                         err);
        else
            cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                       "ID token refused: no key of the provider's "
                       "set for its kid and alg (the set is refetched at most every 30 s)");
        keyset_put(o, fresh);
    }
    keyset_put(o, ks);
    if (jwt) {
        cs_wipe(jwt, strlen(jwt));
        cs_free(jwt);
    }
    return rc;
}
