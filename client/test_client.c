/*
 * test_client.c -- the C client against the real system (api, worker,
 * scheduler, Postgres, Kafka, a stub provider), one scenario per run:
 *
 *   test_client SCENARIO...   immediate approved denied expired timeout
 *                             failure cancel errors produce retries
 *                             batch batch_kafka
 *
 * Inputs from the environment (tests/integration/test_sdk_c.py sets them):
 * COUNTERSIGN_URL, COUNTERSIGN_API_KEY, CS_STUB_URL (the stub provider the
 * grant allows), CS_CLI (the countersign binary, for `approval links`, with
 * the system's CS_* variables), CS_KAFKA_BROKERS, CS_TOPIC_PREFIX,
 * CS_TEST_TIMEOUT_MULT. Approvers decide as people do: take their one-time
 * sign-in link from `approval links ID` (or `batch links AGENT BATCH_ID`),
 * GET it ("Continue as NAME"), POST it (303: the cs_session cookie and
 * Location, the approval's or batch's page), GET that page with the cookie,
 * then POST its decision form (hidden csrf bound to the session; a batch
 * page adds a hidden digest and takes except=<one request id per line>)
 * with the cookie and an Origin header. The agent's approval_url alone
 * shows no form and cannot vote.
 *
 * Prints one TAP line per check ("ok N - ..." / "not ok N - ... at line L"),
 * then "1..N" and "N passed, N failed"; exits 1 if any check failed. It
 * never prints the API key. Every object is freed, so LeakSanitizer stays
 * quiet.
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "countersign.h"
#include "cs_mem.h"
#include "test_client.h"

static int n_checks, n_failed;
const char *base_url, *api_key, *stub_url, *cli;
double mult = 1.0;
static char scenario[32];

/* ==== checks ============================================================= */

bool check(bool cond, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

bool check(bool cond, int line, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    n_checks++;
    if (!cond)
        n_failed++;
    printf("%sok %d - %s: %s%s", cond ? "" : "not ", n_checks, scenario, what, cond ? "\n" : "");
    if (!cond)
        printf(" (test_client.c line %d)\n", line);
    fflush(stdout);
    return cond;
}

/* A check on a returned code, showing the error when it is not the wanted one. */
bool check_code(enum countersign_code rc, enum countersign_code want,
                const struct countersign_error *e, const char *what, int line)
{
    if (rc == want)
        return check(true, line, "%s -> %s", what, countersign_code_name(rc));
    return check(false, line, "%s -> %s, want %s [http %d, %s: %s]", what,
                 countersign_code_name(rc), countersign_code_name(want), e->http_status,
                 e->server_code, e->message);
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pause_for(double seconds)
{
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ==== acting as an approver ============================================== */

/*
 * The one-time sign-in link of `approver` printed by `countersign LIST`
 * (LIST: "approval links ID" or "batch links AGENT BATCH_ID"; each call
 * mints fresh links), a fresh string or NULL; the slot's approver_id into
 * approver_id when asked.
 */
static char *signin_link_of(const char *list, const char *approver, char *approver_id,
                            size_t id_size)
{
    char cmd[1024], line[4096];
    snprintf(cmd, sizeof(cmd), "'%s' %s", cli, list);
    FILE *f = popen(cmd, "r");
    char *url = NULL;
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        json_object *o = json_tokener_parse(line), *v = NULL;
        if (o && !url && json_object_object_get_ex(o, "approver", &v) &&
            !strcmp(json_object_get_string(v), approver) &&
            json_object_object_get_ex(o, "url", &v)) {
            url = cs_strdup(json_object_get_string(v));
            if (approver_id && json_object_object_get_ex(o, "approver_id", &v))
                cs_strlcpy(approver_id, json_object_get_string(v), id_size);
        }
        json_object_put(o);
    }
    pclose(f);
    return url;
}

struct page {
    char *data;
    size_t len;
};

static size_t page_write(char *p, size_t size, size_t n, void *arg)
{
    struct page *pg = arg;
    pg->data = cs_realloc(pg->data, pg->len + size * n + 1);
    memcpy(pg->data + pg->len, p, size * n);
    pg->len += size * n;
    pg->data[pg->len] = '\0';
    return size * n;
}

/* A person's browser: one handle whose cookie engine keeps the cs_session cookie. */
struct browser {
    CURL *h;
    struct curl_slist *origin; /* "Origin: <base_url>", sent with every POST */
    struct page pg;            /* the last answer's body ("" when none) */
};

static void browser_open(struct browser *b)
{
    *b = (struct browser){.h = curl_easy_init()};
    char *origin = cs_asprintf("Origin: %s", base_url);
    b->origin = curl_slist_append(NULL, origin);
    cs_free(origin);
    curl_easy_setopt(b->h, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
    curl_easy_setopt(b->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->h, CURLOPT_TIMEOUT_MS, (long)(10000 * mult));
    curl_easy_setopt(b->h, CURLOPT_WRITEFUNCTION, page_write);
    curl_easy_setopt(b->h, CURLOPT_WRITEDATA, &b->pg);
}

static void browser_close(struct browser *b)
{
    curl_easy_cleanup(b->h);
    curl_slist_free_all(b->origin);
    cs_free(b->pg.data);
}

/* GETs url (form NULL) or POSTs the url-encoded form to it; the HTTP status, 0 without one. */
static long browse(struct browser *b, const char *url, const char *form)
{
    long status = 0;
    cs_free(b->pg.data);
    b->pg = (struct page){.data = cs_strdup("")};
    curl_easy_setopt(b->h, CURLOPT_URL, url);
    if (form) {
        curl_easy_setopt(b->h, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(b->h, CURLOPT_HTTPHEADER, b->origin);
    } else {
        curl_easy_setopt(b->h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(b->h, CURLOPT_HTTPHEADER, NULL);
    }
    if (curl_easy_perform(b->h) == CURLE_OK)
        curl_easy_getinfo(b->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* True when the browser holds an HttpOnly cs_session cookie. */
static bool signed_in(struct browser *b)
{
    struct curl_slist *cookies = NULL;
    bool found = false;
    curl_easy_getinfo(b->h, CURLINFO_COOKIELIST, &cookies);
    for (struct curl_slist *c = cookies; c; c = c->next)
        found |= !strncmp(c->data, "#HttpOnly_", 10) && strstr(c->data, "\tcs_session\t");
    curl_slist_free_all(cookies);
    return found;
}

/*
 * Signs in with a one-time link as a person does: GET it ("Continue as
 * NAME", a form, nothing spent: no cookie yet), POST it (303 with the
 * cs_session cookie and Location, a local path). Returns the absolute URL
 * of the page it leads to (base_url + Location; a fresh string), or NULL
 * with *why saying what went wrong.
 */
static char *sign_in(struct browser *b, const char *link, char *why, size_t wn)
{
    long status = browse(b, link, NULL);
    if (status != 200 || !strstr(b->pg.data, "Continue as") ||
        !strstr(b->pg.data, "<form method=\"post\"") || signed_in(b)) {
        snprintf(why, wn, "GET of the sign-in link: HTTP %ld, signed in %d: %.160s", status,
                 signed_in(b), b->pg.data);
        return NULL;
    }
    status = browse(b, link, "");
    struct curl_header *loc = NULL;
    bool local = curl_easy_header(b->h, "Location", 0, CURLH_HEADER, -1, &loc) == CURLHE_OK &&
                 loc->value[0] == '/' && loc->value[1] != '/';
    if (status != 303 || !local || !signed_in(b)) {
        snprintf(why, wn, "POST of the sign-in link: HTTP %ld, Location %s, signed in %d: %.160s",
                 status, loc ? loc->value : "(none)", signed_in(b), b->pg.data);
        return NULL;
    }
    size_t n = strlen(base_url);
    while (n && base_url[n - 1] == '/')
        n--;
    return cs_asprintf("%.*s%s", (int)n, base_url, loc->value);
}

/*
 * The decision form of a page (the <form> with the decision buttons, not
 * the sign-out bar's, though both carry the csrf field), a fresh string,
 * or NULL when the page has none.
 */
static char *decision_form(const char *html)
{
    for (const char *at = strstr(html, "<form"); at; at = strstr(at + 5, "<form")) {
        const char *end = strstr(at, "</form>");
        if (!end)
            return NULL;
        char *form = cs_strndup(at, (size_t)(end - at));
        if (strstr(form, "name=\"decision\""))
            return form;
        cs_free(form);
    }
    return NULL;
}

/* The value of the hidden input `name` of a form (a fresh string), or NULL. */
static char *hidden_field(const char *html, const char *name)
{
    char attr[64];
    snprintf(attr, sizeof(attr), "name=\"%s\"", name);
    const char *at = strstr(html, attr);
    if (!at)
        return NULL;
    const char *open = at;
    while (open > html && *open != '<')
        open--;
    const char *close = strchr(at, '>');
    const char *v = strstr(open, "value=\"");
    if (!close || !v || v > close)
        return NULL;
    v += 7;
    const char *end = strchr(v, '"');
    return end && end < close ? cs_strndup(v, (size_t)(end - v)) : NULL;
}

/*
 * Decides as a person with a browser, from a one-time sign-in link: sign
 * in (sign_in), GET the page it leads to with the session cookie, read its
 * decision form, POST decision, reason, csrf -- and, on a batch page, the
 * digest it showed and the except list -- with the cookie and Origin.
 * Returns the POST's HTTP status (0 when it went wrong earlier; *why says
 * what).
 */
static long decide_on(const char *link, const char *decision, const char *reason, bool batch,
                      const char *except, char *why, size_t wn)
{
    struct browser b;
    browser_open(&b);
    char *csrf = NULL, *digest = NULL, *form = NULL, *body = NULL;
    char *page = sign_in(&b, link, why, wn);
    long status = page ? browse(&b, page, NULL) : 0;
    if (!page)
        goto done;
    form = decision_form(b.pg.data);
    csrf = form ? hidden_field(form, "csrf") : NULL;
    digest = form && batch ? hidden_field(form, "digest") : NULL;
    if (status != 200 || !csrf || (batch && (!digest || strlen(digest) != 64))) {
        snprintf(why, wn, "%s page: HTTP %ld, decision form %d, csrf field %d, digest field %s",
                 batch ? "batch" : "approval", status, form != NULL, csrf != NULL,
                 digest ? digest : "(none)");
        status = 0;
        goto done;
    }
    char *r = curl_easy_escape(b.h, reason, 0), *t = curl_easy_escape(b.h, csrf, 0);
    body = cs_asprintf("decision=%s&reason=%s&csrf=%s", decision, r, t);
    curl_free(r);
    curl_free(t);
    if (batch) {
        char *d = curl_easy_escape(b.h, digest, 0), *x = curl_easy_escape(b.h, except, 0);
        char *more = cs_asprintf("%s&digest=%s&except=%s", body, d, x);
        curl_free(d);
        curl_free(x);
        cs_free(body);
        body = more;
    }
    status = browse(&b, page, body);
    if (status != 200)
        snprintf(why, wn, "POST of the decision answered %ld: %.160s", status, b.pg.data);
done:
    browser_close(&b);
    cs_free(page);
    cs_free(form);
    cs_free(csrf);
    cs_free(digest);
    cs_free(body);
    return status;
}

/* Decides one approval through `approver`'s one-time sign-in link. */
static long decide(const char *approval_id, const char *approver, const char *decision,
                   const char *reason, char *approver_id, size_t id_size, char *why, size_t wn)
{
    char list[128];
    snprintf(list, sizeof(list), "approval links '%s'", approval_id);
    char *url = signin_link_of(list, approver, approver_id, id_size);
    snprintf(why, wn, "ok");
    if (!url) {
        snprintf(why, wn, "no sign-in link of %s for %s", approver, approval_id);
        return 0;
    }
    long status = decide_on(url, decision, reason, false, NULL, why, wn);
    cs_free(url);
    return status;
}

/* Decides a whole batch on its page: approve (all but `except`, one id a line) or deny. */
long decide_batch(const char *batch_id, const char *approver, const char *decision,
                  const char *except, const char *reason, char *why, size_t wn)
{
    char list[256];
    const char *agent = getenv("CS_AGENT") ? getenv("CS_AGENT") : "bot1";
    snprintf(list, sizeof(list), "batch links '%s' '%s'", agent, batch_id);
    char *url = signin_link_of(list, approver, NULL, 0);
    snprintf(why, wn, "ok");
    if (!url) {
        snprintf(why, wn, "no batch sign-in link of %s for %s", approver, batch_id);
        return 0;
    }
    long status = decide_on(url, decision, reason, true, except ? except : "", why, wn);
    cs_free(url);
    return status;
}

/*
 * What an agent holds does not vote: its approval_url, without a session,
 * shows the status and a "Sign in to decide" box but no decision form, and
 * a POST of a decision to it is refused 401.
 */
static void agent_cannot_vote(const char *approval_url)
{
    struct browser b;
    browser_open(&b);
    long status = browse(&b, approval_url, NULL);
    char *form = decision_form(b.pg.data);
    CHECK(status == 200 && !form && strstr(b.pg.data, "Sign in to decide"),
          "approval_url without a session: HTTP %ld, a status page without a decision form",
          status);
    status = browse(&b, approval_url, "decision=approve&reason=agent&csrf=x");
    CHECK(status == 401, "a decision POSTed to it without a session -> HTTP %ld", status);
    cs_free(form);
    browser_close(&b);
}

/* Approves as alice after a pause, on another thread (while the main one awaits). */
struct later {
    char approval_id[COUNTERSIGN_ID_LEN + 1];
    double delay;
    long status;
    char why[256];
};

static void *approve_later(void *arg)
{
    struct later *l = arg;
    pause_for(l->delay);
    l->status =
        decide(l->approval_id, "alice", "approve",
               "checked ticket #4312: duplicate charge confirmed", NULL, 0, l->why, sizeof(l->why));
    return NULL;
}

/* ==== helpers ============================================================ */

struct countersign_client *client(const char *key)
{
    char err[COUNTERSIGN_ERRLEN];
    struct countersign_client *c = countersign_client_new(base_url, key, err);
    if (!CHECK(c != NULL, "client_new: %s", c ? "ok" : err))
        exit(1);
    return c;
}

char *stub(const char *path)
{
    return cs_asprintf("%s%s", stub_url, path);
}

/* Submits a refund of `amount` to the stub's `path`; *out as returned. */
enum countersign_code refund(struct countersign_client *c, const char *path, int amount,
                             struct countersign_response **out, struct countersign_error *e)
{
    char json[64];
    snprintf(json, sizeof(json), "{\"amount\":%d}", amount);
    char *url = stub(path);
    struct countersign_request req = {
        .method = "POST",
        .url = url,
        .grant_id = "stripe",
        .json = json,
        .reason = "customer charged twice for order 1042, ticket #4312",
        .context = "{\"ticket\":4312,\"order\":1042}",
    };
    enum countersign_code rc = countersign_proxy_request(c, &req, out, e);
    cs_free(url);
    return rc;
}

/* Submits a refund that needs approval; returns its pending response or NULL. */
struct countersign_response *pending(struct countersign_client *c, const char *path, int amount)
{
    struct countersign_response *p = NULL;
    struct countersign_error e;
    enum countersign_code rc = refund(c, path, amount, &p, &e);
    if (!CHECK_CODE(rc, COUNTERSIGN_OK, e, "submit") ||
        !CHECK(p->kind == COUNTERSIGN_PENDING, "pending (kind %d, status %s)", p->kind,
               p->status)) {
        countersign_response_free(p);
        return NULL;
    }
    return p;
}

/* ==== scenarios ========================================================== */

static void immediate(struct countersign_client *c)
{
    struct countersign_response *r = NULL, *again = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    enum countersign_code rc = refund(c, "/v1/refunds/small", 50, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "submit of a small refund") &&
        CHECK(r->kind == COUNTERSIGN_RESULT, "no approval needed: a result")) {
        CHECK(r->status_code == 201, "provider status %d", r->status_code);
        CHECK(!strcmp(r->status, "executed"), "status %s", r->status);
        CHECK(r->body_len == strlen("{\"id\":\"re_1\",\"amount\":50}") &&
                  !memcmp(r->body, "{\"id\":\"re_1\",\"amount\":50}", r->body_len),
              "body %.*s", (int)r->body_len, (const char *)r->body);
        const char *rid = countersign_response_header(r, "X-Request-Id");
        CHECK(rid && !strcmp(rid, "req_1"), "header x-request-id %s", rid ? rid : "(none)");
        CHECK(!r->body_truncated && r->executed_at[0], "not truncated, executed_at %s",
              r->executed_at);
        rc = countersign_get_approval_status(c, r->approval_id, &st, &e);
        if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status"))
            CHECK(!strcmp(st->status, "executed") && st->is_terminal && st->has_result &&
                      st->executed_at[0],
                  "status executed, terminal, has_result");
        rc = countersign_await_approval(c, r->approval_id, 0, &again, &e);
        if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await with timeout 0 of an executed one"))
            CHECK(again->status_code == 201 && again->body_len == r->body_len,
                  "the same result again");
    }
    countersign_response_free(r);
    countersign_response_free(again);
    countersign_status_free(st);

    /* Bytes, path and query parameters, extra headers. */
    unsigned char raw[1024];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)i;
    const struct countersign_header path[] = {{"file_id", "file_9"}};
    const struct countersign_header query[] = {
        {"purpose", "dispute_evidence"}, {"tag", "a"}, {"tag", "b"}};
    const struct countersign_header hdrs[] = {{"Content-Type", "application/octet-stream"},
                                              {"X-Trace", "t-1"}};
    char *url = stub("/v1/files/{file_id}");
    struct countersign_request req = {
        .method = "put",
        .url = url,
        .grant_id = "stripe",
        .body = raw,
        .body_len = sizeof(raw),
        .path_params = path,
        .n_path_params = 1,
        .query_params = query,
        .n_query_params = 3,
        .headers = hdrs,
        .n_headers = 2,
        .reason = "upload the dispute evidence for ticket #77",
    };
    rc = countersign_proxy_request(c, &req, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "PUT of 1024 bytes with parameters"))
        CHECK(r->kind == COUNTERSIGN_RESULT && r->status_code == 200, "executed, 200");
    countersign_response_free(r);
    cs_free(url);
    url = stub("/v1/ping");
    struct countersign_request ping = {.method = "POST",
                                       .url = url,
                                       .grant_id = "stripe",
                                       .json = "null",
                                       .reason = "health check"};
    rc = countersign_proxy_request(c, &ping, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "POST of JSON null"))
        CHECK(r->kind == COUNTERSIGN_RESULT && r->body[r->body_len] == '\0',
              "a result, its body NUL-terminated");
    countersign_response_free(r);
    cs_free(url);
}

static void approved(struct countersign_client *c)
{
    struct countersign_response *p = pending(c, "/v1/refunds/approve", 500), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    if (!p)
        return;
    char *prefix = cs_asprintf("%s/status/", base_url);
    CHECK(!strcmp(p->status, "pending") && p->expires_at[0], "pending, expires_at %s",
          p->expires_at);
    CHECK(!strncmp(p->approval_url, prefix, strlen(prefix)), "approval_url is a status page");
    cs_free(prefix);
    enum countersign_code rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status before the decision"))
        CHECK(!strcmp(st->status, "pending") && !st->is_terminal && !st->has_result &&
                  st->approvals_received == 0 && st->approvals_required == 1 &&
                  !strcmp(st->expires_at, p->expires_at) && st->grant_id &&
                  !strcmp(st->grant_id, "stripe") && !strcmp(st->method, "POST"),
              "pending 0/1, not terminal, same expiry");
    countersign_status_free(st);
    st = NULL;

    struct later l = {.delay = 1.0};
    cs_strlcpy(l.approval_id, p->approval_id, sizeof(l.approval_id));
    pthread_t t;
    pthread_create(&t, NULL, approve_later, &l);
    double t0 = now();
    rc = countersign_await_approval(c, p->approval_id, 60 * mult, &r, &e);
    double took = now() - t0;
    pthread_join(t, NULL);
    CHECK(l.status == 200, "alice signed in with her link and approved (HTTP %ld, %s)", l.status,
          l.why);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await while alice decides")) {
        CHECK(took >= 0.9, "await returned after the decision (%.2f s)", took);
        CHECK(r->kind == COUNTERSIGN_RESULT && r->status_code == 201 &&
                  !strcmp(r->approval_id, p->approval_id),
              "the provider's answer 201");
        CHECK(r->body_len && strstr((const char *)r->body, "re_approved"), "body %s",
              (const char *)r->body);
    }
    rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status after"))
        CHECK(!strcmp(st->status, "executed") && st->is_terminal && st->has_result &&
                  st->decided_at[0] && st->approvals_received == 1,
              "executed, 1 approval");
    countersign_status_free(st);
    countersign_response_free(r);
    countersign_response_free(p);
}

static void denied(struct countersign_client *c)
{
    const char *why_deny = "duplicate refund: already refunded as re_41";
    struct countersign_response *p = pending(c, "/v1/refunds/deny", 700), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    char bob[64] = "", why[256];
    if (!p)
        return;
    agent_cannot_vote(p->approval_url);
    long s = decide(p->approval_id, "bob", "deny", why_deny, bob, sizeof(bob), why, sizeof(why));
    CHECK(s == 200, "bob signed in with his link and denied (HTTP %ld, %s)", s, why);
    enum countersign_code rc = countersign_await_approval(c, p->approval_id, 30 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_DENIED, e, "await")) {
        CHECK(e.http_status == 409 && !strcmp(e.server_code, "denied"), "409 denied");
        CHECK(!strcmp(e.reason, why_deny), "the approver's reason: %s", e.reason);
        CHECK(bob[0] && strstr(e.decided_by, bob), "decided_by %s names bob %s", e.decided_by, bob);
        CHECK(!strcmp(e.approval_id, p->approval_id) && e.decided_at[0], "approval id, when");
    }
    CHECK(r == NULL, "no result");
    rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status"))
        CHECK(!strcmp(st->status, "denied") && st->is_terminal && !st->has_result &&
                  st->decision_reason && !strcmp(st->decision_reason, why_deny) &&
                  st->decided_at[0],
              "denied with the reason");
    countersign_status_free(st);
    countersign_response_free(p);
}

static void expired(struct countersign_client *c)
{
    struct countersign_response *p = pending(c, "/v1/refunds/expire", 900), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    if (!p)
        return;
    enum countersign_code rc = countersign_await_approval(c, p->approval_id, 30 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_EXPIRED, e, "await"))
        CHECK(e.http_status == 410 && !strcmp(e.server_code, "expired") &&
                  !strcmp(e.approval_id, p->approval_id),
              "410 expired, approval id");
    rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status"))
        CHECK(!strcmp(st->status, "expired") && st->is_terminal && st->decided_at[0] &&
                  strcmp(st->decided_at, st->expires_at) >= 0,
              "expired at %s (deadline %s)", st->decided_at, st->expires_at);
    countersign_status_free(st);
    countersign_response_free(p);
}

static void timeout(struct countersign_client *c)
{
    struct countersign_response *p = pending(c, "/v1/refunds/later", 250), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    char why[256];
    if (!p)
        return;
    double t0 = now();
    enum countersign_code rc = countersign_await_approval(c, p->approval_id, 2, &r, &e);
    double took = now() - t0;
    if (CHECK_CODE(rc, COUNTERSIGN_TIMEOUT, e, "await 2 s while pending")) {
        CHECK(took >= 1.9 && took < 2 + 5 * mult, "gave up after %.2f s", took);
        CHECK(e.http_status == 0 && !strcmp(e.server_code, "timeout") &&
                  !strcmp(e.last_status, "pending") && !strcmp(e.approval_id, p->approval_id),
              "local timeout, last status %s", e.last_status);
    }
    rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status"))
        CHECK(!strcmp(st->status, "pending"), "still pending");
    long s = decide(p->approval_id, "alice", "approve", "ok after the customer called back", NULL,
                    0, why, sizeof(why));
    CHECK(s == 200, "alice approved (HTTP %ld, %s)", s, why);
    rc = countersign_await_approval(c, p->approval_id, 30 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "a later await"))
        CHECK(r->status_code == 201, "the result (%d)", r->status_code);
    countersign_response_free(r);
    countersign_status_free(st);
    countersign_response_free(p);
}

static void failure(struct countersign_client *c)
{
    struct countersign_response *p = pending(c, "/v1/refunds/broken", 300), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    char why[256];
    if (!p)
        return;
    long s = decide(p->approval_id, "alice", "approve", "fine", NULL, 0, why, sizeof(why));
    CHECK(s == 200, "alice approved (HTTP %ld, %s)", s, why);
    enum countersign_code rc = countersign_await_approval(c, p->approval_id, 60 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_EXECUTION_FAILED, e, "await"))
        CHECK(e.http_status == 502 && !strcmp(e.server_code, "execution_failed") &&
                  !strcmp(e.error_code, "outcome_unknown") &&
                  !strcmp(e.approval_id, p->approval_id),
              "502, error_code %s (%s)", e.error_code, e.error_message);
    rc = countersign_get_approval_status(c, p->approval_id, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status"))
        CHECK(!strcmp(st->status, "failed") && !strcmp(st->error_code, "outcome_unknown"),
              "failed / outcome_unknown");
    countersign_status_free(st);
    countersign_response_free(r);
    countersign_response_free(p);
}

static void cancel(struct countersign_client *c)
{
    struct countersign_response *p = pending(c, "/v1/refunds/cancel", 400), *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    if (!p)
        return;
    enum countersign_code rc =
        countersign_cancel_approval(c, p->approval_id, "customer withdrew the request", &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "cancel"))
        CHECK(!strcmp(st->status, "cancelled") && st->is_terminal &&
                  !strcmp(st->approval_id, p->approval_id),
              "cancelled, terminal");
    rc = countersign_await_approval(c, p->approval_id, 10 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_CANCELLED, e, "await"))
        CHECK(e.http_status == 409 && !strcmp(e.approval_id, p->approval_id) &&
                  !strcmp(e.reason, "customer withdrew the request"),
              "409, the reason: %s", e.reason);
    rc = countersign_cancel_approval(c, p->approval_id, NULL, NULL, &e);
    CHECK((rc == COUNTERSIGN_CONFLICT || rc == COUNTERSIGN_CANCELLED) && e.http_status == 409,
          "cancel again -> %s %d %s", countersign_code_name(rc), e.http_status, e.server_code);
    countersign_status_free(st);
    countersign_response_free(p);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    base_url = getenv("COUNTERSIGN_URL");
    api_key = getenv("COUNTERSIGN_API_KEY");
    stub_url = getenv("CS_STUB_URL");
    cli = getenv("CS_CLI");
    const char *m = getenv("CS_TEST_TIMEOUT_MULT");
    if (m && atof(m) > 0)
        mult = atof(m);
    if (argc < 2 || !base_url || !api_key || !stub_url || !cli) {
        fprintf(stderr, "usage: test_client SCENARIO... with COUNTERSIGN_URL, "
                        "COUNTERSIGN_API_KEY, CS_STUB_URL, CS_CLI set\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before the approver thread starts */
    struct countersign_client *c = NULL;
    for (int i = 1; i < argc; i++) {
        cs_strlcpy(scenario, argv[i], sizeof(scenario));
        if (!c && strcmp(argv[i], "produce") != 0 && strcmp(argv[i], "retries") != 0)
            c = client(api_key);
        if (!strcmp(argv[i], "immediate"))
            immediate(c);
        else if (!strcmp(argv[i], "approved"))
            approved(c);
        else if (!strcmp(argv[i], "denied"))
            denied(c);
        else if (!strcmp(argv[i], "expired"))
            expired(c);
        else if (!strcmp(argv[i], "timeout"))
            timeout(c);
        else if (!strcmp(argv[i], "failure"))
            failure(c);
        else if (!strcmp(argv[i], "cancel"))
            cancel(c);
        else if (!strcmp(argv[i], "errors"))
            test_errors(c);
        else if (!strcmp(argv[i], "produce"))
            test_produce();
        else if (!strcmp(argv[i], "retries"))
            test_retries();
        else if (!strcmp(argv[i], "batch"))
            test_batch(c);
        else if (!strcmp(argv[i], "batch_kafka"))
            test_batch_kafka(c);
        else
            CHECK(false, "unknown scenario %s", argv[i]);
    }
    countersign_client_free(c);
    curl_global_cleanup();
    printf("1..%d\n%d passed, %d failed\n", n_checks, n_checks - n_failed, n_failed);
    return n_failed ? 1 : 0;
}
