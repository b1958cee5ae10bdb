/*
 * router.c -- the api's libmicrohttpd callbacks: request bodies, routing,
 * and the operational endpoints (/healthz, /readyz, /openapi.json); the
 * responses themselves are reply.c's.
 *
 * Bodies are accumulated into a capped buffer (CS_REQUEST_MAX_BYTES; more
 * is answered 413 at once). A route is a method and a pattern whose "{}"
 * segments become r->params.
 *
 * Checklist when adding a route: the table below, api/openapi.json, and
 * tests/integration/test_api.py (which checks the two agree).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "api.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_mem.h"

static enum MHD_Result healthz(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
static enum MHD_Result readyz(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
static enum MHD_Result metrics(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
static enum MHD_Result openapi(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

static const struct route {
    const char *method;
    const char *pattern;
    enum MHD_Result (*fn)(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
    const char *name;
    bool html; /* errors as pages rather than JSON */
    bool db;   /* the router lends the handler a pooled connection (else NULL) */
} routes[] = {
    {"POST", "/v1/proxy", agent_proxy, "proxy", false, true},
    {"GET", "/v1/approvals/{}", agent_status, "approval_status", false, true},
    {"GET", "/v1/approvals/{}/result", agent_result, "approval_result", false, true},
    {"POST", "/v1/approvals/{}/cancel", agent_cancel, "approval_cancel", false, true},
    {"POST", "/v1/batches/{}/seal", agent_batch_seal, "batch_seal", false, true},
    {"GET", "/v1/batches/{}", agent_batch_status, "batch_status", false, true},
    {"GET", "/status/{}", page_status, "status_page", true, true},
    {"POST", "/status/{}", page_decide, "decide", true, true},
    {"GET", "/status/{}/body", page_body, "status_body", true, true},
    {"POST", "/status/{}/signin-links", page_resend, "signin_resend", true, true},
    {"GET", "/inbox", page_inbox, "inbox_page", true, true},
    {"GET", "/signin", signin_page, "signin_page", true, false},
    {"GET", "/signin/oidc", signin_oidc_start, "signin_oidc", true, true},
    {"GET", "/signin/oidc/callback", signin_oidc_callback, "signin_oidc_callback", true, true},
    {"GET", "/signin/{}", signin_link_page, "signin_link_page", true, true},
    {"POST", "/signin/{}", signin_link_use, "signin_link", true, true},
    {"POST", "/signout", signout, "signout", true, true},
    {"GET", "/passkeys", passkeys_page, "passkeys_page", true, true},
    {"POST", "/passkeys", passkeys_register, "passkey_register", true, true},
    {"POST", "/passkeys/{}/revoke", passkeys_revoke, "passkey_revoke", true, true},
    {"GET", "/static/passkey.js", passkeys_script, "passkey_script", false, false},
    {"GET", "/batch/{}", page_batch, "batch_page", true, true},
    {"GET", "/batch/{}/items.csv", page_batch_csv, "batch_csv", true, true},
    {"POST", "/batch/{}", page_batch_decide, "batch_decide", true, true},
    {"GET", "/console", console_overview, "console_overview", true, true},
    {"GET", "/console/approvals", console_approvals, "console_approvals", true, true},
    {"GET", "/console/approvals/{}", console_approval, "console_approval", true, true},
    {"POST", "/console/approvals/{}/cancel", console_cancel, "console_cancel", true, true},
    {"POST", "/console/approvals/{}/decide", console_decide, "console_decide", true, true},
    {"POST", "/console/approvals/{}/resubmit", console_resubmit, "console_resubmit", true, true},
    {"GET", "/console/batches", console_batches, "console_batches", true, true},
    {"GET", "/console/grants", console_grants, "console_grants", true, true},
    {"POST", "/console/grants/{}/pause", console_grant_pause, "console_grant_pause", true, true},
    {"POST", "/console/grants/{}/resume", console_grant_resume, "console_grant_resume", true, true},
    {"GET", "/console/policies", console_policies, "console_policies", true, true},
    {"GET", "/console/approvers", console_approvers, "console_approvers", true, true},
    {"GET", "/console/dead-letters", console_dead_letters, "console_dead_letters", true, true},
    {"GET", "/console/audit", console_audit, "console_audit", true, true},
    {"GET", "/static/console.js", console_script, "console_script", false, false},
    {"GET", "/healthz", healthz, "healthz", false, false},
    {"GET", "/readyz", readyz, "readyz", false, true},
    {"GET", "/metrics", metrics, "metrics", false, true},
    {"GET", "/openapi.json", openapi, "openapi", false, false},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))
#define ROUTE_ADMIN NROUTES
#define ROUTE_OTHER (NROUTES + 1)

int router_nroutes(void)
{
    return NROUTES + 2;
}

const char *router_route_name(int route)
{
    return route < NROUTES ? routes[route].name : route == ROUTE_ADMIN ? "admin" : "other";
}

/* ---- operational endpoints ---- */

static enum MHD_Result healthz(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    (void)d;
    return reply_text(r, c, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static enum MHD_Result readyz(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    char err[CS_ERRLEN];
    PGresult *res = NULL;
    bool pg = cs_db_exec(d->db, CS_DB_Q0(PING), &res, err) == CS_OK;
    PQclear(res);
    /* Events wait in the WAL while no relay reads them: not ready before the disk fills. */
    struct metrics_slot slot = {0};
    bool events = pg && metrics_event_slot(r->api, d->db, &slot) && slot.exists &&
                  slot.lag_bytes <= r->api->cfg->event_lag_max_bytes;
    bool kafka = r->api->kafka_ok && r->api->kafka_ok(r->api);
    bool ready = pg && kafka && events;
    json_object *o = json_object_new_object(), *ev = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "not ready"));
    json_object_object_add(o, "postgres", json_object_new_boolean(pg));
    json_object_object_add(o, "kafka", json_object_new_boolean(kafka));
    json_object_object_add(ev, "ok", json_object_new_boolean(events));
    json_object_object_add(ev, "slot_exists", json_object_new_boolean(slot.exists));
    json_object_object_add(ev, "relay_active", json_object_new_boolean(slot.active));
    json_object_object_add(ev, "lag_bytes", json_object_new_int64(slot.lag_bytes));
    json_object_object_add(o, "events", ev);
    return reply_json(r, c, ready ? 200 : 503, o);
}

static enum MHD_Result metrics(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    return metrics_reply(r->api, c, r, d);
}

static enum MHD_Result openapi(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    (void)d;
    return reply_text(r, c, 200, "application/json", r->api->openapi, strlen(r->api->openapi));
}

/* ---- routing ---- */

bool router_match(const char *pattern, const char *path, struct api_req *r)
{
    int np = 0;
    char *out = r->pathbuf;
    size_t room = sizeof(r->pathbuf);
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= room || np == API_MAX_PARAMS)
                return false;
            memcpy(out, path, n);
            out[n] = '\0';
            r->params[np++] = out;
            out += n + 1;
            room -= n + 1;
            path += n;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

static void allow_one(struct api_req *r, const char *m)
{
    size_t n = strlen(r->allow), k = strlen(m);
    for (const char *p = r->allow; (p = strstr(p, m)); p += k)
        if ((p == r->allow || p[-1] == ' ') && (p[k] == ',' || p[k] == '\0'))
            return;
    if (n + k + 3 > sizeof(r->allow))
        return;
    snprintf(r->allow + n, sizeof(r->allow) - n, "%s%s", n ? ", " : "", m);
}

void router_allow(struct api_req *r, const char *method)
{
    allow_one(r, method);
    if (strcmp(method, "GET") == 0)
        allow_one(r, "HEAD");
}

/*
 * Runs one handler with a connection borrowed from the pool for the whole
 * call when the route needs one: the one place a request takes and returns
 * its connection, so no handler holds two or forgets one. A handler that
 * suspends its connection (waiters.c) returns at once, so nothing is held
 * while it waits; the resumed call borrows again.
 */
static enum MHD_Result
call(struct api_req *r, struct MHD_Connection *c,
     enum MHD_Result (*fn)(struct api_req *, struct MHD_Connection *, struct api_db *), bool db)
{
    if (!db)
        return fn(r, c, NULL);
    struct api_db *d = pool_get(r->api->pool);
    enum MHD_Result ret = fn(r, c, d);
    pool_put(r->api->pool, d);
    return ret;
}

static enum MHD_Result dispatch(struct api_req *r, struct MHD_Connection *c, const char *url,
                                const char *method)
{
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    if (strncmp(url, "/v1/admin/", 10) == 0) {
        r->route = ROUTE_ADMIN;
        r->route_name = "admin";
        struct api_db *d = pool_get(r->api->pool);
        enum MHD_Result ret = admin_route(r, c, d, m, url + 9);
        pool_put(r->api->pool, d);
        return ret;
    }
    bool other_method = false;
    for (int i = 0; i < NROUTES; i++) {
        if (!router_match(routes[i].pattern, url, r))
            continue;
        if (strcmp(routes[i].method, m) != 0) {
            other_method = true;
            router_allow(r, routes[i].method);
            continue;
        }
        r->route = i;
        r->route_name = routes[i].name;
        return call(r, c, routes[i].fn, routes[i].db);
    }
    r->route = ROUTE_OTHER;
    r->route_name = "other";
    if (other_method)
        return reply_error(r, c, CS_ERR_METHOD, NULL, NULL);
    return reply_error(r, c, CS_ERR_NOT_FOUND, "no such route", NULL);
}

/* ---- framing ---- */

struct framing {
    int host, te, cl;
    const char *cl_value, *te_value;
    bool cl_differ;
};

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (strcasecmp(key, "Host") == 0) {
        f->host++;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->te++;
        f->te_value = value;
    } else if (strcasecmp(key, "Content-Length") == 0) {
        if (f->cl++ && strcmp(f->cl_value, value ? value : "") != 0)
            f->cl_differ = true;
        f->cl_value = value ? value : "";
    }
    return MHD_YES;
}

/*
 * What is wrong with the request's framing, or NULL. A request whose body
 * length two parsers could read differently -- Content-Length beside
 * Transfer-Encoding, two different Content-Lengths, a transfer coding other
 * than chunked -- is how a proxy in front of the api and the api come to
 * see two different requests on one connection (request smuggling). A
 * request with no Host, or two, is refused as RFC 9112 says.
 */
static const char *framing_error(struct MHD_Connection *c)
{
    struct framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, framing_header, &f);
    if (f.host != 1)
        return f.host ? "more than one Host header" : "no Host header";
    if (f.te && f.cl)
        return "both Content-Length and Transfer-Encoding";
    if (f.cl_differ)
        return "two different Content-Length headers";
    if (f.cl && (!*f.cl_value || strspn(f.cl_value, "0123456789") != strlen(f.cl_value)))
        return "a Content-Length that is not a number";
    if (f.te > 1 || (f.te && strcasecmp(f.te_value ? f.te_value : "", "chunked") != 0))
        return "a Transfer-Encoding other than chunked";
    return NULL;
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

enum MHD_Result router_handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    struct api *a = cls;
    struct api_req *r = *req_cls;
    (void)version;
    if (!r) {
        r = cs_calloc(1, sizeof(*r));
        r->api = a;
        r->route = ROUTE_OTHER;
        r->route_name = "other";
        r->started_us = now_us();
        cs_buf_init(&r->body, (size_t)a->cfg->request_max_bytes);
        *req_cls = r;
        const char *bad = framing_error(c);
        if (!bad)
            return MHD_YES;
        /* Answered before any body is read; the connection is closed after. */
        r->close = true;
        return reply_error(r, c, CS_ERR_INVALID, bad, NULL);
    }
    if (r->close) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_large && cs_buf_append(&r->body, upload, *upload_size) != CS_OK) {
            r->too_large = true;
            cs_buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return reply_error(r, c, CS_ERR_TOO_LARGE, "the request body is too large", NULL);
    return dispatch(r, c, url, method);
}

void router_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct api *a = cls;
    struct api_req *r = *req_cls;
    (void)c;
    (void)toe;
    if (!r)
        return;
    if (r->waiter)
        waiters_remove(a->waiters, r->waiter);
    metrics_request(a->metrics, r->route, r->status, now_us() - r->started_us);
    cs_log(CS_LOG_DEBUG, "http", "%s %u %lldus", router_route_name(r->route), r->status,
           (long long)(now_us() - r->started_us));
    cs_buf_free(&r->body);
    cs_free(r);
    *req_cls = NULL;
}
