/*
 * test_oidc.c -- unit tests of the OpenID Connect relying party
 * (lib/cs_oidc.c): configuration, discovery, the authorization URL, the
 * callback check and the code exchange.
 *
 * The authorization URL is parsed back: every parameter present and
 * encoded, the S256 challenge equal to base64url(SHA-256(verifier)), and
 * state, nonce and verifier fresh and distinct on every call. For the code
 * exchange a tiny HTTP responder runs in a thread on 127.0.0.1:0 (bound
 * before the thread starts, so nothing waits) and answers each path with
 * what the test set: the finish path, client authentication (Basic with
 * form-encoded id and secret, or client_id in the body for a public
 * client), the token endpoint's errors mapped to codes, a redirect never
 * followed, and the JWKS refetch rules (an unknown kid refetches, at most
 * once per 30 s; an hour-old set is refreshed) are checked against real
 * HTTP without a provider, on a clock the test moves (no sleeps).
 * The real provider (tests/oidc/provider.mjs) is the integration tests'.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cs_oidc.h"
#include "cs_test.h"
#include "oidc_fixture.h"

/* ---- the responder ---- */

struct route {
    const char *path;
    int status;
    char *body; /* owned */
    int hits;
};

static struct srv {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    struct route r[4]; /* discovery, jwks, token, authorize */
    char auth[512];    /* Authorization of the last POST ("" none) */
    char form[4096];   /* body of the last POST */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

enum { R_DISCO, R_JWKS, R_TOKEN };

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0 && errno == EINTR)
            continue;
        if (c < 0)
            return NULL; /* shut down */
        char req[16384];
        size_t n = 0, need = 0;
        char *end = NULL;
        while (n < sizeof(req) - 1) {
            ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            if (!end && (end = strstr(req, "\r\n\r\n"))) {
                char *cl = strcasestr(req, "\r\ncontent-length:");
                need = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            }
            if (end && n >= need)
                break;
        }
        req[n] = '\0';
        char path[128] = "";
        sscanf(req, "%*s %127s", path);
        pthread_mutex_lock(&srv.mu);
        int status = 404;
        const char *body = "{}";
        for (int i = 0; i < 4; i++)
            if (srv.r[i].path && strcmp(srv.r[i].path, path) == 0) {
                srv.r[i].hits++;
                status = srv.r[i].status;
                body = srv.r[i].body ? srv.r[i].body : "";
            }
        if (strncmp(req, "POST", 4) == 0 && end) {
            char *a = strcasestr(req, "\r\nauthorization: ");
            srv.auth[0] = '\0';
            if (a && a < end)
                sscanf(a + 17, "%511[^\r]", srv.auth);
            cs_strlcpy(srv.form, end + 4, sizeof(srv.form));
        }
        char *resp = cs_asprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                 "Location: http://127.0.0.1:%d/elsewhere\r\n"
                                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                 status, srv.port, strlen(body), body);
        pthread_mutex_unlock(&srv.mu);
        for (size_t off = 0, len = strlen(resp); off < len;) {
            ssize_t k = write(c, resp + off, len - off);
            if (k <= 0)
                break;
            off += (size_t)k;
        }
        cs_free(resp);
        close(c);
    }
}

static void srv_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    cs_assert(srv.fd >= 0 && bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    cs_assert(listen(srv.fd, 16) == 0 && getsockname(srv.fd, (struct sockaddr *)&sa, &len) == 0);
    srv.port = ntohs(sa.sin_port);
    srv.r[R_DISCO].path = "/.well-known/openid-configuration";
    srv.r[R_JWKS].path = "/jwks";
    srv.r[R_TOKEN].path = "/token";
    cs_assert(pthread_create(&srv.th, NULL, serve, NULL) == 0);
}

static void srv_stop(void)
{
    shutdown(srv.fd, SHUT_RDWR);
    pthread_join(srv.th, NULL);
    close(srv.fd);
    for (int i = 0; i < 4; i++)
        cs_free(srv.r[i].body);
}

/* Sets what path i answers (body copied) and zeroes its hit count. */
static void srv_set(int i, int status, const char *body)
{
    pthread_mutex_lock(&srv.mu);
    cs_free(srv.r[i].body);
    srv.r[i].body = cs_strdup(body);
    srv.r[i].status = status;
    srv.r[i].hits = 0;
    pthread_mutex_unlock(&srv.mu);
}

/* The Authorization header and body of the last POST, copied. */
static void srv_last(char auth[512], char form[4096])
{
    pthread_mutex_lock(&srv.mu);
    memcpy(auth, srv.auth, 512);
    memcpy(form, srv.form, 4096);
    pthread_mutex_unlock(&srv.mu);
}

static int srv_hits(int i)
{
    pthread_mutex_lock(&srv.mu);
    int h = srv.r[i].hits;
    pthread_mutex_unlock(&srv.mu);
    return h;
}

/* ---- fixtures ---- */

#define CLIENT "countersign"
#define SECRET "s3cr+t/x"
#define REDIRECT "http://127.0.0.1:8080/signin/oidc/callback"

static char issuer[64];
static struct fx_key rsa, ec;
static int64_t now_ms; /* the clients' clock: only the test thread moves it */

static int64_t clock_ms(void)
{
    return now_ms;
}

static struct cs_oidc_config config(void)
{
    struct cs_oidc_config oc = {.issuer = issuer,
                                .client_id = CLIENT,
                                .client_secret = SECRET,
                                .redirect_uri = REDIRECT,
                                .leeway_s = 60,
                                .http_timeout_ms = 5000,
                                .allow_http = true,
                                .clock_ms = clock_ms};
    return oc;
}

static char *discovery(const char *iss, const char *authz)
{
    return cs_asprintf("{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s\","
                       "\"token_endpoint\":\"http://127.0.0.1:%d/token\","
                       "\"jwks_uri\":\"http://127.0.0.1:%d/jwks\"}",
                       iss, authz, srv.port, srv.port);
}

/* A token endpoint answer carrying an ID token for nonce, signed by k with header kid. */
static void token_answer(const struct fx_key *k, const char *kid, const char *nonce)
{
    char *h = cs_asprintf("{'alg':'%s','kid':'%s'}", k->ec ? "ES256" : "RS256", kid);
    long long now = (long long)(now_ms / 1000);
    char *c = cs_asprintf("{'iss':'%s','aud':'" CLIENT "','sub':'alice','email':'a@example.test',"
                          "'email_verified':true,'nonce':'%s','iat':%lld,'exp':%lld}",
                          issuer, nonce, now, now + 300);
    char *t = fx_sign(k, h, c);
    char *body = cs_asprintf("{\"access_token\":\"at-secret\",\"token_type\":\"Bearer\","
                             "\"expires_in\":300,\"id_token\":\"%s\"}",
                             t);
    srv_set(R_TOKEN, 200, body);
    cs_free(h);
    cs_free(c);
    cs_free(t);
    cs_free(body);
}

static void jwks_of(const struct fx_key *a, const struct fx_key *b)
{
    char *j[2] = {fx_jwk(a, "", NULL), b ? fx_jwk(b, "", NULL) : NULL};
    char *set = fx_jwks((const char *const *)j, b ? 2 : 1);
    srv_set(R_JWKS, 200, set);
    cs_free(set);
    cs_free(j[0]);
    cs_free(j[1]);
}

/* ---- tests ---- */

CS_TEST(setup)
{
    srv_start();
    snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%d", srv.port);
    now_ms = 1800000000000LL;
    fx_key_new(&rsa, "rsa-1", 2048);
    fx_key_new(&ec, "ec-1", 0);
    CS_CHECK(srv.port > 0);
}

CS_TEST(config_refused)
{
    struct cs_oidc *o = NULL;
    char err[CS_ERRLEN];
    struct cs_oidc_config oc = config();
    CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_OK);
    cs_oidc_free(o);
    cs_oidc_free(NULL);
    struct {
        const char *what, *issuer, *client_id, *redirect, *scopes;
        bool allow_http;
        int leeway;
    } bad[] = {
        {"http issuer", "http://127.0.0.1:9", CLIENT, REDIRECT, NULL, false, 60},
        {"http, not loopback", "http://login.example.com", CLIENT, REDIRECT, NULL, true, 60},
        {"issuer with query", "https://login.example.com/?x=1", CLIENT, REDIRECT, NULL, false, 60},
        {"issuer with fragment", "https://login.example.com/#x", CLIENT, REDIRECT, NULL, false, 60},
        {"no issuer", NULL, CLIENT, REDIRECT, NULL, false, 60},
        {"empty client", "https://login.example.com", "", REDIRECT, NULL, false, 60},
        {"client with space", "https://login.example.com", "a b", REDIRECT, NULL, false, 60},
        {"bad redirect", "https://login.example.com", CLIENT, "/signin", NULL, false, 60},
        {"no openid", "https://login.example.com", CLIENT, REDIRECT, "email profile", false, 60},
        {"openidx", "https://login.example.com", CLIENT, REDIRECT, "openidx email", false, 60},
        {"scope quote", "https://login.example.com", CLIENT, REDIRECT, "openid \"x\"", false, 60},
        {"leeway", "https://login.example.com", CLIENT, REDIRECT, NULL, false, 601},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oc = config();
        oc.issuer = bad[i].issuer;
        oc.client_id = bad[i].client_id;
        oc.redirect_uri = bad[i].redirect;
        oc.scopes = bad[i].scopes;
        oc.allow_http = bad[i].allow_http;
        oc.leeway_s = bad[i].leeway;
        if (!CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_ERR_CONFIG))
            printf("  case: %s\n", bad[i].what);
        CS_CHECK(o == NULL);
        CS_CHECK(strstr(err, SECRET) == NULL);
    }
    oc = config();
    oc.issuer = "https://login.example.com/realms/x/";
    oc.allow_http = false;
    oc.scopes = "email openid";
    CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_OK);
    cs_oidc_free(o);
}

CS_TEST(discovery_checked)
{
    struct cs_oidc *o = NULL;
    char err[CS_ERRLEN];
    struct cs_oidc_config oc = config();
    CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_OK);
    char *ok = discovery(issuer, "http://127.0.0.1:1/authorize");
    char *bad[] = {
        discovery("http://127.0.0.1:1", "http://127.0.0.1:1/authorize"), /* other issuer */
        cs_asprintf("%s/", issuer),                                      /* not an object */
        discovery(issuer, "http://login.example.com/authorize"),         /* http, not loopback */
        discovery(issuer, "ftp://127.0.0.1/authorize"),
        discovery(issuer, "http://127.0.0.1:1/authorize#frag"),
        cs_asprintf("{\"issuer\":\"%s\",\"authorization_endpoint\":\"http://127.0.0.1/a\"}",
                    issuer),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CS_CHECK_RC(cs_oidc_set_discovery(o, bad[i], strlen(bad[i]), err), CS_ERR_UNAVAILABLE);
        cs_free(bad[i]);
    }
    CS_CHECK_RC(cs_oidc_set_discovery(o, ok, strlen(ok), err), CS_OK);
    cs_free(ok);
    cs_oidc_free(o);
}

/* The value of query parameter `name` in url (borrowed into buf), or NULL. */
static const char *param(const char *url, const char *name, char *buf, size_t size)
{
    const char *q = strchr(url, '?');
    size_t n = strlen(name);
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '=') {
            size_t len = strcspn(p + 2 + n, "&");
            if (len >= size)
                return NULL;
            memcpy(buf, p + 2 + n, len);
            buf[len] = '\0';
            return buf;
        }
    return NULL;
}

CS_TEST(begin_url)
{
    struct cs_oidc *o = NULL;
    char err[CS_ERRLEN], v[512];
    struct cs_oidc_config oc = config();
    oc.issuer = "https://login.example.com/realms/x";
    oc.allow_http = false;
    CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_OK);
    const char *doc = "{\"issuer\":\"https://login.example.com/realms/x\","
                      "\"authorization_endpoint\":\"https://login.example.com/auth\","
                      "\"token_endpoint\":\"https://login.example.com/token\","
                      "\"jwks_uri\":\"https://login.example.com/certs\"}";
    CS_CHECK_RC(cs_oidc_set_discovery(o, doc, strlen(doc), err), CS_OK);
    struct cs_oidc_login l[2];
    char *url[2];
    for (int i = 0; i < 2; i++) {
        CS_CHECK_RC(cs_oidc_begin(o, &l[i], &url[i], err), CS_OK);
        CS_CHECK(strncmp(url[i], "https://login.example.com/auth?", 31) == 0);
        CS_CHECK_EQ_STR(param(url[i], "response_type", v, sizeof(v)), "code");
        CS_CHECK_EQ_STR(param(url[i], "client_id", v, sizeof(v)), CLIENT);
        CS_CHECK_EQ_STR(param(url[i], "redirect_uri", v, sizeof(v)),
                        "http%3A%2F%2F127.0.0.1%3A8080%2Fsignin%2Foidc%2Fcallback");
        CS_CHECK_EQ_STR(param(url[i], "scope", v, sizeof(v)), "openid%20email%20profile");
        CS_CHECK_EQ_STR(param(url[i], "state", v, sizeof(v)), l[i].state);
        CS_CHECK_EQ_STR(param(url[i], "nonce", v, sizeof(v)), l[i].nonce);
        CS_CHECK_EQ_STR(param(url[i], "code_challenge_method", v, sizeof(v)), "S256");
        unsigned char h[CS_SHA256_LEN];
        char want[44];
        cs_sha256(l[i].verifier, strlen(l[i].verifier), h);
        cs_b64_encode_to(h, sizeof(h), true, want);
        CS_CHECK_EQ_STR(param(url[i], "code_challenge", v, sizeof(v)), want);
        CS_CHECK(param(url[i], "code_verifier", v, sizeof(v)) == NULL);
        CS_CHECK(strstr(url[i], l[i].verifier) == NULL);
        CS_CHECK(strstr(url[i], SECRET) == NULL);
        CS_CHECK_EQ_INT(strlen(l[i].state), 43);
        CS_CHECK_EQ_INT(strlen(l[i].nonce), 43);
        CS_CHECK_EQ_INT(strlen(l[i].verifier), 43);
        CS_CHECK(strcmp(l[i].state, l[i].nonce) != 0 && strcmp(l[i].nonce, l[i].verifier) != 0);
    }
    CS_CHECK(strcmp(l[0].state, l[1].state) != 0 && strcmp(l[0].nonce, l[1].nonce) != 0 &&
             strcmp(l[0].verifier, l[1].verifier) != 0);
    cs_free(url[0]);
    cs_free(url[1]);
    /* An authorization endpoint that has a query of its own (Azure AD B2C's ?p=). */
    doc = "{\"issuer\":\"https://login.example.com/realms/x\","
          "\"authorization_endpoint\":\"https://login.example.com/auth?p=b2c_signin\","
          "\"token_endpoint\":\"https://login.example.com/token\","
          "\"jwks_uri\":\"https://login.example.com/certs\"}";
    CS_CHECK_RC(cs_oidc_set_discovery(o, doc, strlen(doc), err), CS_OK);
    CS_CHECK_RC(cs_oidc_begin(o, &l[0], &url[0], err), CS_OK);
    CS_CHECK(strncmp(url[0], "https://login.example.com/auth?p=b2c_signin&response_type=code&",
                     63) == 0);
    cs_free(url[0]);

    /* The callback: state (constant time) and RFC 9207 iss. */
    CS_CHECK_RC(cs_oidc_check_callback(o, &l[0], l[0].state, NULL, err), CS_OK);
    CS_CHECK_RC(
        cs_oidc_check_callback(o, &l[0], l[0].state, "https://login.example.com/realms/x", err),
        CS_OK);
    CS_CHECK_RC(cs_oidc_check_callback(o, &l[0], l[1].state, NULL, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_RC(cs_oidc_check_callback(o, &l[0], NULL, NULL, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_RC(cs_oidc_check_callback(o, &l[0], "", NULL, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_RC(cs_oidc_check_callback(o, &l[0], l[0].state, "https://evil.example.com", err),
                CS_ERR_UNAUTHENTICATED);
    /* Malformed codes never reach the provider. */
    struct cs_oidc_identity id;
    const char *codes[] = {"", "a b", "a\nb", NULL};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        CS_CHECK_RC(cs_oidc_finish(o, &l[0], codes[i], &id, err), CS_ERR_INVALID);
    cs_oidc_free(o);
}

CS_TEST(discovery_fetched_and_retried)
{
    struct cs_oidc *o = NULL;
    struct cs_oidc_login l;
    char err[CS_ERRLEN], *url = NULL;
    struct cs_oidc_config oc = config();
    CS_CHECK_RC(cs_oidc_new(&oc, &o, err), CS_OK);
    srv_set(R_DISCO, 500, "oops");
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_ERR_UNAVAILABLE);
    CS_CHECK(url == NULL);
    srv_set(R_DISCO, 200, "not json");
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_ERR_UNAVAILABLE);
    srv_set(R_DISCO, 302, ""); /* a redirect is not followed */
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_ERR_UNAVAILABLE);
    char *doc = discovery(issuer, "http://127.0.0.1:9/authorize");
    srv_set(R_DISCO, 200, doc);
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK);
    cs_free(url);
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK); /* cached: no second fetch */
    CS_CHECK_EQ_INT(srv_hits(R_DISCO), 1);
    cs_free(url);
    cs_free(doc);
    cs_oidc_free(o);
}

/* A client (secret or public) with discovery served by the responder. */
static struct cs_oidc *client(const char *secret)
{
    struct cs_oidc *o = NULL;
    char err[CS_ERRLEN];
    struct cs_oidc_config oc = config();
    oc.client_secret = secret;
    char *doc = discovery(issuer, "http://127.0.0.1:9/authorize");
    srv_set(R_DISCO, 200, doc);
    cs_free(doc);
    cs_assert(cs_oidc_new(&oc, &o, err) == CS_OK);
    return o;
}

CS_TEST(finish_confidential_and_public)
{
    char err[CS_ERRLEN] = "", *url = NULL, want[256], auth[512], form[4096];
    struct cs_oidc_login l;
    struct cs_oidc_identity id;
    jwks_of(&rsa, &ec);
    for (int pub = 0; pub < 2; pub++) {
        struct cs_oidc *o = client(pub ? NULL : SECRET);
        CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK);
        token_answer(pub ? &ec : &rsa, pub ? "ec-1" : "rsa-1", l.nonce);
        CS_CHECK_RC(cs_oidc_finish(o, &l, "c0de/+x", &id, err), CS_OK);
        CS_CHECK_EQ_STR(id.iss, issuer);
        CS_CHECK_EQ_STR(id.sub, "alice");
        CS_CHECK_EQ_STR(id.email, "a@example.test");
        CS_CHECK(id.email_verified);
        snprintf(want, sizeof(want),
                 "grant_type=authorization_code&code=c0de%%2F%%2Bx&"
                 "redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A8080%%2Fsignin%%2Foidc%%2Fcallback&"
                 "code_verifier=%s%s",
                 l.verifier, pub ? "&client_id=" CLIENT : "");
        srv_last(auth, form);
        CS_CHECK_EQ_STR(form, want);
        /* RFC 6749 2.3.1: "countersign:s3cr%2Bt%2Fx" in base64. */
        CS_CHECK_EQ_STR(auth, pub ? "" : "Basic Y291bnRlcnNpZ246czNjciUyQnQlMkZ4");
        /* The nonce is this login's: another login's token is refused. */
        token_answer(&rsa, "rsa-1", "another-login-nonce");
        CS_CHECK_RC(cs_oidc_finish(o, &l, "c0de", &id, err), CS_ERR_UNAUTHENTICATED);
        CS_CHECK_HAS(err, "nonce");
        CS_CHECK_EQ_STR(id.sub, "");
        cs_free(url);
        cs_oidc_free(o);
    }
}

CS_TEST(token_endpoint_errors)
{
    char err[CS_ERRLEN], *url = NULL;
    struct cs_oidc_login l;
    struct cs_oidc_identity id;
    struct cs_oidc *o = client(SECRET);
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK);
    cs_free(url);
    struct {
        int status;
        const char *body;
        enum cs_err want;
        const char *why;
    } cases[] = {
        {400, "{\"error\":\"invalid_grant\",\"error_description\":\"code c0de-xyz used\"}",
         CS_ERR_UNAUTHENTICATED, "(invalid_grant)"},
        {401, "{\"error\":\"invalid_client\"}", CS_ERR_CONFIG, "(invalid_client)"},
        {400, "{\"error\":\"unauthorized_client\"}", CS_ERR_CONFIG, "client"},
        {400, "{\"error\":\"in<valid>_request\"}", CS_ERR_UNAUTHENTICATED, "(invalid_request)"},
        {400, "not json", CS_ERR_UNAVAILABLE, "HTTP status 400"},
        {500, "{\"error\":\"server_error\"}", CS_ERR_UNAVAILABLE, "HTTP status 500"},
        {302, "", CS_ERR_UNAVAILABLE, "HTTP status 302"},
        {200, "not json", CS_ERR_UNAVAILABLE, "without id_token"},
        {200, "{\"access_token\":\"x\"}", CS_ERR_UNAVAILABLE, "without id_token"},
        {200, "{\"id_token\":\"a.b.c\"}", CS_ERR_UNAUTHENTICATED, "ID token refused"},
    };
    jwks_of(&rsa, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srv_set(R_TOKEN, cases[i].status, cases[i].body);
        err[0] = '\0';
        if (!CS_CHECK_RC(cs_oidc_finish(o, &l, "c0de-xyz", &id, err), cases[i].want))
            printf("  case %zu: %s\n", i, err);
        CS_CHECK_HAS(err, cases[i].why);
        CS_CHECK(strstr(err, "c0de") == NULL && strstr(err, l.verifier) == NULL);
    }
    /* An answer over the cap. */
    char *big = cs_malloc(70000);
    memset(big, ' ', 69999);
    big[69999] = '\0';
    srv_set(R_TOKEN, 200, big);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c0de-xyz", &id, err), CS_ERR_UNAVAILABLE);
    CS_CHECK_HAS(err, "larger than");
    cs_free(big);
    cs_oidc_free(o);
}

CS_TEST(jwks_refetch_limited)
{
    char err[CS_ERRLEN], *url = NULL;
    struct cs_oidc_login l;
    struct cs_oidc_identity id;
    struct fx_key ec2;
    fx_key_new(&ec2, "ec-2", 0);
    struct cs_oidc *o = client(SECRET);
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK);
    cs_free(url);
    jwks_of(&rsa, NULL);
    token_answer(&rsa, "rsa-1", l.nonce);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c1", &id, err), CS_OK);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 1);
    /* The provider adds ec-2: within the interval an unknown kid is refused, no fetch. */
    jwks_of(&rsa, &ec2);
    token_answer(&ec2, "ec-2", l.nonce);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c2", &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "no key");
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 0);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c3", &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 0);
    /* 30 s later, one refetch finds the new key. */
    now_ms += 29999;
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c3b", &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 0);
    now_ms += 1;
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c4", &id, err), CS_OK);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 1);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c5", &id, err), CS_OK); /* cached now */
    /* A kid the provider never had: refused, and no fetch right after the last one. */
    token_answer(&ec2, "ec-9", l.nonce);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c6", &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 1);
    /* A JWKS outage after the interval keeps the set there was. */
    now_ms += 30000;
    srv_set(R_JWKS, 503, "");
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c7", &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 1);
    token_answer(&rsa, "rsa-1", l.nonce);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c8", &id, err), CS_OK);
    /* An hour after the last load the set is refreshed once, whatever the token. */
    jwks_of(&rsa, NULL);
    now_ms += 3600 * 1000;
    token_answer(&rsa, "rsa-1", l.nonce);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c9", &id, err), CS_OK);
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c10", &id, err), CS_OK);
    CS_CHECK_EQ_INT(srv_hits(R_JWKS), 1);
    token_answer(&ec2, "ec-2", l.nonce); /* ec-2 has left the set */
    CS_CHECK_RC(cs_oidc_finish(o, &l, "c11", &id, err), CS_ERR_UNAUTHENTICATED);
    fx_key_free(&ec2);
    cs_oidc_free(o);
}

struct racer {
    struct cs_oidc *o;
    const struct cs_oidc_login *l;
    int ok;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 5; i++) {
        struct cs_oidc_identity id;
        char err[CS_ERRLEN];
        r->ok += cs_oidc_finish(r->o, r->l, "c-race", &id, err) == CS_OK;
    }
    return NULL;
}

/* Threads share one struct cs_oidc: the first JWKS fetch races, sets are swapped under them. */
CS_TEST(threads_share_the_cache)
{
    char err[CS_ERRLEN], *url = NULL;
    struct cs_oidc_login l;
    struct cs_oidc *o = client(SECRET);
    CS_CHECK_RC(cs_oidc_begin(o, &l, &url, err), CS_OK);
    cs_free(url);
    jwks_of(&rsa, &ec);
    token_answer(&ec, "ec-1", l.nonce);
    for (int round = 0; round < 2; round++) {
        pthread_t th[4];
        struct racer r[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct racer){.o = o, .l = &l};
            cs_assert(pthread_create(&th[i], NULL, race, &r[i]) == 0);
        }
        int ok = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            ok += r[i].ok;
        }
        CS_CHECK_EQ_INT(ok, 20);
        now_ms += 3600 * 1000; /* the next round refreshes the set while threads verify */
        token_answer(&ec, "ec-1", l.nonce);
    }
    cs_oidc_free(o);
}

CS_TEST(teardown)
{
    srv_stop();
    fx_key_free(&rsa);
    fx_key_free(&ec);
    CS_CHECK(true);
}

CS_TEST_MAIN(CS_RUN(setup), CS_RUN(config_refused), CS_RUN(discovery_checked), CS_RUN(begin_url),
             CS_RUN(discovery_fetched_and_retried), CS_RUN(finish_confidential_and_public),
             CS_RUN(token_endpoint_errors), CS_RUN(jwks_refetch_limited),
             CS_RUN(threads_share_the_cache), CS_RUN(teardown))
