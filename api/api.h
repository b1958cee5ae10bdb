/*
 * api.h -- shared by the files of the countersign-api process (this folder only).
 *
 * The api serves three audiences on one libmicrohttpd daemon (a pool of
 * CS_HTTP_THREADS threads, epoll, suspend/resume):
 *   agents     /v1/proxy, /v1/approvals/...        agent.c  (API key)
 *   approvers  /status/, /batch/, /inbox, /signin   pages.c, batch_pages.c, signin.c
 *              (a vote needs a signed-in session: cs_session.h)
 *   operators  /v1/admin/...                        admin.c  (admin token)
 * plus /healthz, /readyz, /metrics, /openapi.json (router.c, metrics.c).
 *
 * Every rule lives in lib/ (cs_request, cs_approval, cs_link, ...); these
 * files only translate HTTP to those calls and back. The router lends a
 * handler one database connection from pool.c for the duration of one call
 * (the route table says which routes get one); a handler never takes its
 * own, and none is held while a connection is suspended (waiters.c).
 */
#ifndef API_H
#define API_H

#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_buf.h"
#include "cs_approval.h"
#include "cs_catalog.h"
#include "cs_config.h"
#include "cs_crypto.h"
#include "cs_db.h"
#include "cs_err.h"
#include "cs_link.h"
#include "cs_session.h"

#define API_MAX_PARAMS 2
#define API_PAGE_MAX (8u << 20) /* cap on one rendered HTML page */

struct api;

/* One pooled database connection with its own catalog cache. */
struct api_db {
    struct cs_db *db;
    struct cs_catalog *cat;
    struct api_db *next;
};

/* pool.c -- a fixed set of connections shared by the HTTP threads. */
struct api_pool;
enum cs_err pool_new(const struct cs_config *cfg, int n, struct api_pool **out,
                     char *err) CS_MUSTCHECK;
/* Blocks until a connection is free; reconnects it if it was lost. */
struct api_db *pool_get(struct api_pool *p);
void pool_put(struct api_pool *p, struct api_db *d);
void pool_free(struct api_pool *p);

/* The authenticated caller of an agent route. */
struct api_agent {
    char key_id[CS_UUID_STRLEN + 1];
    struct cs_agent agent; /* id and name (name points into name_buf) */
    char name_buf[72];
};

/* waiters.c -- suspended long-poll connections, woken by LISTEN cs_done. */
struct api_waiters;
struct api_waiter;
enum cs_err waiters_start(struct api *a, struct api_waiters **out, char *err) CS_MUSTCHECK;
/*
 * Registers c's interest in approval `id` until it changes or deadline_ms
 * (c is not suspended yet: read the approval, then waiters_suspend).
 */
struct api_waiter *waiters_add(struct api_waiters *w, const char *id, struct MHD_Connection *c,
                               int64_t deadline_ms);
/*
 * Suspends x's connection until it fires (the approval changed, the
 * deadline passed, the api stops); false, and nothing suspended, when it
 * already fired since waiters_add. Thread: x's connection's, in its handler.
 */
bool waiters_suspend(struct api_waiters *w, struct api_waiter *x);
/* Unregisters and frees x (never suspended, or resumed). */
void waiters_remove(struct api_waiters *w, struct api_waiter *x);
int waiters_count(struct api_waiters *w);
/* Resumes every waiter and stops the thread. */
void waiters_stop(struct api_waiters *w);
void waiters_free(struct api_waiters *w);

/* Per-request state, the libmicrohttpd request closure. */
struct api_req {
    struct api *api;
    struct cs_buf body;
    bool too_large;
    int64_t started_us;
    int route;              /* index in router.c's table, -1 unknown */
    const char *route_name; /* its name, for logs ("other" until routed) */
    const char *params[API_MAX_PARAMS];
    char pathbuf[512];
    struct api_waiter *waiter; /* set while suspended */
    int waits;                 /* what the suspension is for (agent.c) */
    int64_t inline_expires_ms; /* expiry of the approval a submission created */
    char approval_id[CS_UUID_STRLEN + 1];
    struct api_agent who;
    unsigned status; /* HTTP status answered, for metrics */
    bool close;      /* answer with Connection: close (bad framing) */
    char allow[64];  /* a 405's Allow header: the path's methods */
};

/* metrics.c */
struct api_metrics;
/* Counters for nroutes routes, named by route_name (router.c's table). */
struct api_metrics *metrics_new(int nroutes, const char *(*route_name)(int route));
void metrics_free(struct api_metrics *m);
void metrics_request(struct api_metrics *m, int route, unsigned status, int64_t micros);
enum MHD_Result metrics_reply(struct api *a, struct MHD_Connection *c, struct api_req *r,
                              struct api_db *d);
/* The event slot as /metrics and /readyz show it; false when it cannot be read. */
struct metrics_slot {
    bool exists, active;
    int64_t lag_bytes; /* WAL held back: events not yet confirmed published */
};
bool metrics_event_slot(struct api *a, struct cs_db *db, struct metrics_slot *out);

struct api {
    const struct cs_config *cfg;
    struct MHD_Daemon *d;
    struct api_pool *pool;
    struct api_waiters *waiters;
    struct api_metrics *metrics;
    struct cs_link_keys keys;        /* approval_url and batch page links (cs_link.h) */
    unsigned char csrf_key[32];      /* session-bound form tokens (csrf.c) */
    char origin[256];                /* scheme://host[:port] of CS_PUBLIC_URL */
    char rp_id[256];                 /* its host: the passkeys' relying party id */
    const char *openapi;             /* api/openapi.json, embedded */
    bool (*kafka_ok)(struct api *a); /* readiness probe of the broker (main.c) */
    void *kafka;                     /* main.c's librdkafka handle for that probe */
    struct cs_oidc *oidc;            /* SSO (cs_oidc.h), NULL when CS_OIDC_ISSUER is unset */
    atomic_int stopping;
};

/* reply.c -- responses. Each returns what MHD_queue_response returned. */
enum MHD_Result reply_json(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           json_object *body); /* takes body */
enum MHD_Result reply_error(struct api_req *r, struct MHD_Connection *c, enum cs_err rc,
                            const char *message, json_object *details); /* takes details */
enum MHD_Result reply_html(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           struct cs_buf *html, const char *set_cookie); /* takes html */
enum MHD_Result reply_text(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           const char *type, const char *text, size_t len);
/* A file to save (Content-Disposition: attachment; filename is plain ASCII); takes body. */
enum MHD_Result reply_download(struct api_req *r, struct MHD_Connection *c, const char *type,
                               const char *filename, struct cs_buf *body);
/* A 303 See Other to `location` (a local path or an absolute URL) with up to two Set-Cookie values. */
enum MHD_Result reply_redirect(struct api_req *r, struct MHD_Connection *c, const char *location,
                               const char *cookie1, const char *cookie2);

/* router.c -- the MHD callbacks. */
enum MHD_Result router_handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls);
void router_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe);
/* Matches path against pattern, capturing "{}" segments into r->params. */
/* Adds method (and HEAD with GET) to r->allow, the Allow header of a 405. */
void router_allow(struct api_req *r, const char *method);
bool router_match(const char *pattern, const char *path, struct api_req *r);
int router_nroutes(void);
const char *router_route_name(int route);

/*
 * Route handlers (the tables of router.c and admin.c) take (r, c, d): d is
 * the request's database connection, lent by the router for the call and
 * returned by it (NULL on a route marked as needing none). A handler
 * neither returns d nor takes another.
 */

/* agent.c */
enum MHD_Result agent_proxy(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result agent_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result agent_result(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result agent_cancel(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result agent_batch_seal(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result agent_batch_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

/* pages.c */
enum MHD_Result page_status(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_body(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_resend(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_inbox(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

/* html.c -- the approval pages' frame and escaping. */
void html_esc(struct cs_buf *b, const char *s);
void html_raw(struct cs_buf *b, const char *s);
void html_head(struct cs_buf *b, const char *title);
void html_foot(struct cs_buf *b);
void html_time_left(char *out, size_t n, int64_t ms); /* "in 42 min" ... "passed" */
/* A page with a heading and a sentence (outcomes and refusals). */
enum MHD_Result html_message(struct api_req *r, struct MHD_Connection *c, unsigned status,
                             const char *title, const char *text);
/* The refusal page for rc, with its HTTP status from the cs_err table. */
enum MHD_Result html_error(struct api_req *r, struct MHD_Connection *c, enum cs_err rc,
                           const char *detail);

/* csrf.c -- session-bound form tokens and same-origin checks (see the file's comment). */
#define CSRF_LEN 43
void csrf_token(struct api *a, const struct cs_session *s, char out[CSRF_LEN + 1]);
/* The same for any subject (a semi-public link: "link:<token>"). */
void csrf_token_for(struct api *a, const char *subject, char out[CSRF_LEN + 1]);
enum cs_err csrf_check_for(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                           const char *subject, char *err) CS_MUSTCHECK;
/* Sec-Fetch-Site / Origin say the POST comes from our own pages. */
enum cs_err csrf_check_origin(struct api *a, struct MHD_Connection *c, char *err) CS_MUSTCHECK;
/* The origin check, and form_csrf is session s's token. */
enum cs_err csrf_check(struct api *a, struct MHD_Connection *c, const char *form_csrf,
                       const struct cs_session *s, char *err) CS_MUSTCHECK;

struct form;

/*
 * session.c -- who is signed in. Looks up the request's session cookie on
 * d into *s; false (and *s zeroed) when there is none or it has ended.
 */
bool session_of(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                struct cs_session *s);
/*
 * The same, telling why not: CS_ERR_UNAUTHENTICATED when nobody is signed in,
 * another error (CS_ERR_UNAVAILABLE...) when the lookup itself failed -- a
 * POST must then fail as such, not as "sign in" (nor sign-out succeed).
 */
enum cs_err session_get(struct MHD_Connection *c, struct api_db *d, struct cs_session *s,
                        char *err) CS_MUSTCHECK;
/*
 * For a page only a signed-in person sees: true with *s filled; otherwise
 * false and *ret is the answer given (303 to /signin?next=next, or the
 * lookup's own error page in an outage).
 */
bool session_require(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                     struct cs_session *s, const char *next, enum MHD_Result *ret);
/* The client's IP address as text ("" when unknown). */
void session_client_address(struct MHD_Connection *c, char out[64]);
/* "Signed in as NAME · Sign out" with the sign-out form, for a page of s. */
void session_bar(struct cs_buf *b, struct api *a, const struct cs_session *s);
/* The decision form's hidden CSRF field for s. */
void session_csrf_field(struct cs_buf *b, struct api *a, const struct cs_session *s);
/* The "sign in to decide" box for a visitor of `path`. */
void session_signin_box(struct cs_buf *b, struct api *a, const char *path, bool resend);

/*
 * pages.c -- what the decision POSTs share: the form parsed into f (the
 * caller form_free()s it), its CSRF token checked against csrf_subject
 * (the session id, or "link:<token>" for a semi-public link), and the
 * decision read into *approve.
 */
enum cs_err pages_decision(struct api_req *r, struct MHD_Connection *c, const char *csrf_subject,
                           struct form *f, bool *approve, char *err) CS_MUSTCHECK;
/*
 * Shows a body (base64 in) to people: JSON pretty, text whole, binary as its
 * size and SHA-256; false when it could not be shown (binary).
 */
bool pages_show_body(struct cs_buf *b, const char *b64);
/* A JSON object's text, pretty, or "(none)" when empty. */
void pages_show_json(struct cs_buf *b, const char *text);
/* The "thank you" page after a vote. */
enum MHD_Result pages_outcome(struct api_req *r, struct MHD_Connection *c, bool approve,
                              const struct cs_vote_outcome *out, const char *approved_text,
                              const char *denied_text);
/* The approver slot person s votes in on approval (or batch) id, into slot; false when none. */
bool pages_slot(struct api_db *d, bool batch, const char *id, const struct cs_session *s,
                char slot[CS_UUID_STRLEN + 1]);

/* passkeys.c -- passkey registration and revocation pages; a vote's passkey check. */
#define PASSKEY_NONCE_LEN (16 + 1 + 22)
enum MHD_Result passkeys_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result passkeys_register(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result passkeys_revoke(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result passkeys_script(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
/* A fresh nonce for a decision form of session s (bound to it). */
void passkeys_vote_nonce(struct api *a, const struct cs_session *s,
                         char out[PASSKEY_NONCE_LEN + 1]);
/* The credential ids of s's live passkeys as JSON array text (cs_malloc'd). */
char *passkeys_credentials(struct api_db *d, const struct cs_session *s);
/*
 * When approval_id's policy requires passkeys: checks the form's nonce
 * (issued to s) and its assertion (cs_passkey_verify_vote), filling
 * passkey_id and *detail (cs_malloc'd, the caller frees). Otherwise
 * CS_OK with passkey_id "" and *detail NULL.
 */
enum cs_err passkeys_vote_check(struct api *a, struct api_db *d, const struct cs_session *s,
                                const char *approval_id, bool approve, const struct form *f,
                                char passkey_id[CS_UUID_STRLEN + 1], char **detail,
                                char *err) CS_MUSTCHECK;

/* signin.c -- sign-in links, OpenID Connect, sign-out. */
enum MHD_Result signin_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result signin_link_page(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result signin_link_use(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result signin_oidc_start(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result signin_oidc_callback(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result signout(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

/* batch_pages.c */
enum MHD_Result page_batch(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_batch_csv(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result page_batch_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

/* admin.c */
enum MHD_Result admin_route(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                            const char *method, const char *path);

/*
 * console.c -- the operator console's access rule and page frame; its pages
 * are console_*.c, one file per noun. A handler opens a struct console (the
 * signed-in operator, the request's connection, the page being built) and
 * ends with console_page(), console_fail() or console_done().
 */
struct console {
    struct api_req *r;
    struct MHD_Connection *c;
    struct api_db *d;
    struct cs_session s;
    struct cs_buf b;
    char actor[160]; /* "operator:<name>", what the audit records */
};
struct form;
/* A GET: true for a signed-in operator of either role; otherwise *ret is the answer (sign-in, 403). */
bool console_open(struct api_req *r, struct MHD_Connection *c, struct api_db *d, struct console *k,
                  enum MHD_Result *ret);
/* A POST: true for a read-write operator whose form f (parsed; form_free it) passes the CSRF checks. */
bool console_open_post(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                       struct console *k, struct form *f, enum MHD_Result *ret);
/* Starts the page: the frame, the navigation (`here` is its current entry) and the title. */
void console_head(struct console *k, const char *title, const char *here);
enum MHD_Result console_page(struct console *k); /* 200 with the page; ends k */
enum MHD_Result console_fail(struct console *k, enum cs_err rc, const char *err); /* ends k */
/* 303 back to `to` after an action (a local path); ends k. */
enum MHD_Result console_done(struct console *k, const char *to);
/* A query parameter, NULL when absent or empty. */
const char *console_arg(struct console *k, const char *name);
void console_time(struct cs_buf *b, int64_t ms); /* "2026-12-02 07:10:11" UTC, "-" for 0 */
void console_ago(struct cs_buf *b, int64_t ms);  /* "3 min ago" */
void console_csrf(struct console *k);            /* the hidden csrf field of k's session */
void console_esc_or_dash(struct cs_buf *b, const char *s);
/* A database value as text (escaped, "-" when NULL). */
void console_cell(struct cs_buf *b, const PGresult *res, int row, int col);
enum MHD_Result console_script(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
/* console_overview.c */
enum MHD_Result console_overview(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
/* console_approvals.c -- the list, search and export; one approval's timeline and actions. */
enum MHD_Result console_approvals(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_approval(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_cancel(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_resubmit(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
/* console_catalog.c -- batches, grants (and pausing them), policies, approvers, delegations. */
enum MHD_Result console_batches(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_grants(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_grant_pause(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_grant_resume(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_policies(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_approvers(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
/* console_audit.c -- dead letters and the audit chain. */
enum MHD_Result console_dead_letters(struct api_req *r, struct MHD_Connection *c, struct api_db *d);
enum MHD_Result console_audit(struct api_req *r, struct MHD_Connection *c, struct api_db *d);

/* form.c -- application/x-www-form-urlencoded, strict. */
#define FORM_MAX_FIELDS 16
struct form {
    char *names[FORM_MAX_FIELDS];
    char *values[FORM_MAX_FIELDS];
    int n;
};
enum cs_err form_parse(const char *body, size_t len, struct form *f, char *err) CS_MUSTCHECK;
const char *form_get(const struct form *f, const char *name);
void form_free(struct form *f);

#endif
