/*
 * executor.c -- the worker's executor: approved -> provider call -> outcome.
 *
 * Claims approved rows with FOR UPDATE SKIP LOCKED under a lease
 * (claim_approved), woken by LISTEN cs_approved with polling only as a
 * fallback, and runs the calls concurrently on one libcurl multi handle.
 * Before a call it re-checks the stored request against its digest, the
 * URL against the grant's allowed bases, and at connect time refuses
 * private addresses the grant did not name (cs_url.h). The secret is
 * decrypted only to build the injected header and never logged. Finished
 * calls are written back in batches (complete_executions): the terminal
 * state, its audit entry and its events (cs_emit) in one statement, guarded
 * by status = 'executing' AND lease_owner = us.
 *
 * What a claim takes is decided in Postgres (claim_approved): per grant, its
 * pause, its throttle, its token bucket and in-flight cap shared by every
 * worker, this worker's share of slots, grants taking turns. A call that is
 * to be retried goes back to the queue (requeue_execution) with a time
 * before which no worker claims it: waiting holds no slot.
 *
 * What a finished attempt means (an outcome, or a retry: free or using up
 * an attempt, and whether the whole grant waits) is decided in verdict.c.
 *
 * Shutdown: stop claiming; calls waiting to retry are released back to
 * approved; calls in flight get CS_SHUTDOWN_GRACE_MS, after which their
 * leases are left to lapse and the scheduler's rescuer decides.
 */
#include <curl/curl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cs_approval.h"
#include "cs_buf.h"
#include "cs_catalog.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_process.h"
#include "cs_url.h"
#include "call.h"
#include "worker.h"


/* Reconnection attempts of one connection, without ever sleeping. */
struct backoff {
    int64_t at_ms;                 /* the next attempt */
    struct cs_backoff b;
};

struct executor {
    const struct cs_config *cfg;
    struct worker_role *role;
    struct cs_db *db;              /* claims, leases, grants, LISTEN cs_approved */
    struct cs_db *wdb;             /* outcomes, written asynchronously */
    struct backoff db_retry, wdb_retry;
    struct cs_catalog *cat;
    char owner[96];                /* lease owner: instance id + per-start nonce */
    CURLM *cm;
    struct job *active;            /* every job this executor holds */
    int inflight;
    int nwaiting;
    struct job *waiting;           /* Postgres was down: retried here, lease held */
    json_object *done;             /* completion rows not yet written */
    json_object *writing;          /* completion rows being written, or NULL */
    bool wake;
    int64_t next_poll_ms;
    uint64_t executed, failed;
};

/* claim_approved columns (sql/queries/execution.sql) */
enum { C_ID, C_GRANT, C_METHOD, C_URL, C_HEADERS, C_BODY, C_DIGEST, C_ATTEMPTS, C_TIMEOUT,
       C_MAX_ATTEMPTS, C_IDEMPOTENT, C_AGENT, C_DECIDED, C_FAILURES, C_WAITS, C_LAST_WAIT,
       C_OVERDUE, C_DEADLINE, C_QUEUE_WAIT, C_NEXT };

/* A retry Postgres has yet to take (requeue_execution, grant_throttle). */
struct requeue {
    long delay_ms;
    bool failure;                  /* uses up an attempt */
    const char *wait_code;         /* the error at the deadline, or NULL: keep */
    long throttle_ms;              /* >= 0: the whole grant waits this long */
    char why[CS_ERRLEN];
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->prev_active)
        j->prev_active->next_active = j->next_active;
    else
        j->ex->active = j->next_active;
    if (j->next_active)
        j->next_active->prev_active = j->prev_active;
    if (j->easy) {
        curl_multi_remove_handle(j->ex->cm, j->easy);
        curl_easy_cleanup(j->easy);
    }
    call_wipe_headers(j);
    cs_free(j->grant_id);
    cs_free(j->agent_id);
    cs_free(j->method);
    cs_free(j->url);
    cs_free(j->body);
    json_object_put(j->req_headers);
    json_object_put(j->resp_headers);
    cs_buf_free(&j->resp);
    cs_free(j->rq);
    cs_free(j);
}

/* ---- outcomes ---- */

static void record(struct executor *ex, struct job *j, json_object *row)
{
    json_object_object_add(row, "id", json_object_new_string(j->id));
    json_object_object_add(row, "attempt", json_object_new_int(j->attempt));
    json_object_array_add(ex->done, row);
}

static void fail(struct executor *ex, struct job *j, enum cs_err rc, const char *msg)
{
    json_object *row = json_object_new_object();
    json_object_object_add(row, "status", json_object_new_string("failed"));
    json_object_object_add(row, "error_code", json_object_new_string(cs_err_code(rc)));
    json_object_object_add(row, "error_message", json_object_new_string(msg));
    record(ex, j, row);
    ex->failed++;
    atomic_fetch_add(&ex->role->m->failed, 1);
    atomic_fetch_add(&j->stats->failed, 1);
    cs_log_ap(CS_LOG_INFO, "executor", j->id, "failed after %d attempt(s): %s: %s", j->attempt,
              cs_err_code(rc), msg);
    job_free(j);
}

static void executed(struct executor *ex, struct job *j, long code)
{
    json_object *row = json_object_new_object();
    json_object_object_add(row, "status", json_object_new_string("executed"));
    json_object_object_add(row, "response_status", json_object_new_int((int)code));
    json_object_object_add(row, "response_headers", json_object_get(j->resp_headers));
    char *b64 = cs_b64_encode(j->resp.data ? j->resp.data : "", j->resp.len, false);
    json_object_object_add(row, "body_b64", json_object_new_string(b64));
    cs_free(b64);
    json_object_object_add(row, "truncated", json_object_new_boolean(j->resp.truncated));
    record(ex, j, row);
    ex->executed++;
    atomic_fetch_add(&ex->role->m->executed, 1);
    atomic_fetch_add(&j->stats->executed, 1);
    cs_log_ap(CS_LOG_INFO, "executor", j->id, "executed: provider answered %ld (%zu bytes%s)",
              code, j->resp.len, j->resp.truncated ? ", truncated" : "");
    job_free(j);
}

static void start_transfer(struct executor *ex, struct job *j)
{
    CURL *e = j->easy = call_easy(j, ex->cfg);
    cs_assert(curl_multi_add_handle(ex->cm, e) == CURLM_OK);
    ex->inflight++;
    atomic_fetch_add(&ex->role->m->inflight, 1);
    atomic_fetch_add(&j->stats->inflight, 1);
    j->started_ms = cs_now_ms();
    if (j->attempt == 1) /* the first attempt of the first claim */
        cs_histogram_observe_us(&ex->role->m->decision_to_call, (j->started_ms - j->decided_ms) * 1000);
}

static void wait_for(struct executor *ex, struct job *j, int64_t delay_ms)
{
    j->retry_at_ms = cs_now_ms() + delay_ms;
    j->next = ex->waiting;
    ex->waiting = j;
    ex->nwaiting++;
}

/* Puts a call that was not sent back in the queue; false when Postgres did not answer. */
static bool release(struct executor *ex, struct job *j)
{
    char attempt[16], err[CS_ERRLEN];
    snprintf(attempt, sizeof(attempt), "%d", j->attempt);
    const char *p[] = {j->id, ex->owner, attempt};
    if (cs_db_exec(ex->db, CSQ_RELEASE_LEASE, 3, p, NULL, err) != CS_OK) {
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "cannot release (the lease will lapse): %s", err);
        return false;
    }
    return true;
}

/* Checks the grant as it is now and builds the headers, then starts the call. */
static void prepare(struct executor *ex, struct job *j)
{
    char err[CS_ERRLEN];
    const struct cs_grant *g = NULL;
    enum cs_err rc = cs_catalog_grant(ex->cat, ex->db, j->grant_id, &g, err);
    if (rc && cs_err_info(rc)->retriable) {
        /* Nothing was sent; check again shortly rather than guess. */
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "grant lookup failed, retrying: %s", err);
        return wait_for(ex, j, 1000);
    }
    if (rc)
        return fail(ex, j, rc, err);
    if (g->paused) {
        /* Paused after we claimed it (or while it waited to retry): nothing was
         * sent, so it goes back to the queue and starts after the resume. */
        cs_log_ap(CS_LOG_INFO, "executor", j->id, "grant %s is paused: back to the queue", g->id);
        if (!release(ex, j))
            return wait_for(ex, j, 1000);
        return job_free(j);
    }
    struct cs_url base;
    int idx = 0;
    if ((rc = cs_grant_admits(g, j->agent_id, j->url, &idx, err)))
        return fail(ex, j, rc, err);
    if (cs_url_parse(g->bases[idx], &base, NULL) == CS_OK) {
        j->allow_private = base.host_is_ip;
        cs_url_free(&base);
    }
    if ((rc = call_headers(j, g, ex->cfg, err)))
        return fail(ex, j, rc, err);
    start_transfer(ex, j);
}

/* Claimed past its execution deadline: ends unsent, with the reason it last waited for. */
static void end_overdue(struct executor *ex, struct job *j)
{
    enum cs_err rc = j->last_wait[0] ? cs_err_from_code(j->last_wait) : CS_ERR_EXEC_DEADLINE;
    if (rc == CS_ERR__COUNT)
        rc = CS_ERR_EXEC_DEADLINE;
    char msg[CS_ERRLEN];
    if (rc == CS_ERR_RATE_LIMITED)
        snprintf(msg, sizeof(msg), "the provider was still throttling the grant at the "
                 "execution deadline; the call was not executed");
    else if (rc == CS_ERR_OUTCOME_UNKNOWN)
        snprintf(msg, sizeof(msg), "the provider was still processing this idempotency key at "
                 "the execution deadline; it may complete it");
    else if (rc == CS_ERR_CONNECT || rc == CS_ERR_TLS)
        snprintf(msg, sizeof(msg), "the provider could not be reached before the execution "
                 "deadline (%s); nothing was sent", cs_err_code(rc));
    else
        snprintf(msg, sizeof(msg), "the call could not start before its execution deadline "
                 "(grant paused or over its limits); nothing was sent");
    fail(ex, j, rc, msg);
}

/* Takes a claimed row; a request that fails its digest is failed without any call. */
static void start(struct executor *ex, const PGresult *res, int r)
{
    struct job *j = cs_calloc(1, sizeof(*j));
    char err[CS_ERRLEN];
    j->ex = ex;
    j->next_active = ex->active;
    if (ex->active)
        ex->active->prev_active = j;
    ex->active = j;
    cs_strlcpy(j->id, cs_db_str(res, r, C_ID), sizeof(j->id));
    j->grant_id = cs_strdup(cs_db_str(res, r, C_GRANT));
    j->agent_id = cs_strdup(cs_db_str(res, r, C_AGENT));
    j->method = cs_strdup(cs_db_str(res, r, C_METHOD));
    j->url = cs_strdup(cs_db_str(res, r, C_URL));
    j->attempt = (int)cs_db_int(res, r, C_ATTEMPTS);
    j->timeout_ms = (int)cs_db_int(res, r, C_TIMEOUT);
    j->max_attempts = (int)cs_db_int(res, r, C_MAX_ATTEMPTS);
    j->idempotent = cs_db_bool(res, r, C_IDEMPOTENT);
    j->decided_ms = cs_db_int(res, r, C_DECIDED);
    j->failures = (int)cs_db_int(res, r, C_FAILURES);
    j->waits = (int)cs_db_int(res, r, C_WAITS);
    cs_strlcpy(j->last_wait, cs_db_str(res, r, C_LAST_WAIT) ? cs_db_str(res, r, C_LAST_WAIT) : "",
               sizeof(j->last_wait));
    j->overdue = cs_db_bool(res, r, C_OVERDUE);
    j->deadline_ms = cs_db_int(res, r, C_DEADLINE);
    j->stats = worker_grant_stats(ex->role->m, j->grant_id);
    cs_histogram_observe_us(&j->stats->queue_wait, cs_db_int(res, r, C_QUEUE_WAIT) * 1000);
    if (j->overdue)
        return end_overdue(ex, j);
    const char *h = cs_db_str(res, r, C_HEADERS), *b = cs_db_str(res, r, C_BODY);
    unsigned char want[CS_SHA256_LEN], got[CS_SHA256_LEN];
    const char *digest = cs_db_str(res, r, C_DIGEST);
    if (cs_json_parse(h, strlen(h), &j->req_headers, err) != CS_OK ||
        cs_b64_decode(b, strlen(b), false, &j->body, &j->body_len) != CS_OK ||
        cs_hex_decode(digest, strlen(digest), want, sizeof(want)) != CS_OK)
        return fail(ex, j, CS_ERR_DIGEST_MISMATCH, "the stored request cannot be read");
    cs_request_digest(j->method, j->url, j->grant_id, j->req_headers, j->body, j->body_len, got);
    if (!cs_ct_equal(want, got, sizeof(want)))
        return fail(ex, j, CS_ERR_DIGEST_MISMATCH,
                    "the stored request does not match the digest the approvers saw");
    prepare(ex, j);
}

/* ---- finishing a call ---- */

/* No call of the grant starts for ms, on any worker (grant_flow.throttled_until). */
static enum cs_err throttle_grant(struct executor *ex, const char *grant, long ms, char *err)
{
    if (!cs_db_connected(ex->db))
        return cs_err_set(err, CS_ERR_DB, "not connected");
    char t[24];
    snprintf(t, sizeof(t), "%ld", ms);
    const char *p[] = {grant, t};
    return cs_db_exec(ex->db, CSQ_GRANT_THROTTLE, 2, p, NULL, err);
}

/*
 * Hands a call back to the queue to be retried rq->delay_ms from now (and
 * first makes the whole grant wait when rq->throttle_ms >= 0). False when
 * Postgres did not answer: the job then waits in ex->waiting, lease held,
 * and this is tried again.
 */
static bool requeue_now(struct executor *ex, struct job *j)
{
    struct requeue *rq = j->rq;
    char err[CS_ERRLEN], attempt[16], delay[24];
    enum cs_err rc = CS_OK;
    if (rq->throttle_ms >= 0 && !(rc = throttle_grant(ex, j->grant_id, rq->throttle_ms, err)))
        rq->throttle_ms = -1; /* done: not again if the requeue has to wait */
    snprintf(attempt, sizeof(attempt), "%d", j->attempt);
    snprintf(delay, sizeof(delay), "%ld", rq->delay_ms);
    const char *p[] = {j->id, ex->owner, attempt, delay, rq->why, rq->failure ? "true" : "false",
                       rq->wait_code};
    PGresult *res = NULL;
    if (!rc)
        rc = cs_db_exec(ex->db, CSQ_REQUEUE_EXECUTION, 7, p, &res, err);
    if (rc && !cs_db_connected(ex->db)) {
        PQclear(res);
        return false; /* keep the job: the lease may still be ours when Postgres is back */
    }
    if (rc || PQntuples(res) != 1)
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "cannot requeue the call (%s): the rescuer "
                  "owns the outcome", rc ? err : "lease lost");
    else
        atomic_fetch_add(&j->stats->requeued, 1);
    PQclear(res);
    return true;
}

static void requeue(struct executor *ex, struct job *j, long delay_ms, bool failure,
                    const char *wait_code, long throttle_ms, const char *why)
{
    struct requeue *rq = j->rq = cs_calloc(1, sizeof(*rq));
    rq->delay_ms = delay_ms + rand() % 100; /* jitter */
    rq->failure = failure;
    rq->wait_code = wait_code;
    rq->throttle_ms = throttle_ms;
    snprintf(rq->why, sizeof(rq->why), "%s", why);
    cs_log_ap(CS_LOG_INFO, "executor", j->id, "retrying in %ld ms (%s%s): %s", rq->delay_ms,
              failure ? "attempt used: " : "no attempt used",
              failure ? (j->failures + 1 < j->max_attempts ? "attempts left" : "last attempt") : "",
              why);
    atomic_fetch_add(&ex->role->m->retries, 1);
    if (!requeue_now(ex, j)) {
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "the retry waits for Postgres");
        return wait_for(ex, j, 1000);
    }
    job_free(j);
}

/* Whether an error answer means "the idempotency key is still in progress". */
static bool in_progress(struct executor *ex, struct job *j, long code)
{
    char err[CS_ERRLEN];
    const struct cs_grant *g = NULL;
    return code >= 400 && cs_catalog_grant(ex->cat, ex->db, j->grant_id, &g, err) == CS_OK &&
           cs_grant_in_progress(g, code, j->resp.data ? j->resp.data : "", j->resp.len);
}

/* Carries out what verdict.c decides about a finished attempt. */
static void finish(struct executor *ex, struct job *j, CURLcode c)
{
    long code = 0, sent = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(j->easy, CURLINFO_REQUEST_SIZE, &sent);
    bool unsent = c != CURLE_OK && verdict_never_sent(j, sent);
    curl_multi_remove_handle(ex->cm, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    ex->inflight--;
    atomic_fetch_sub(&ex->role->m->inflight, 1);
    atomic_fetch_sub(&j->stats->inflight, 1);
    cs_histogram_observe_us(&ex->role->m->call, (cs_now_ms() - j->started_ms) * 1000);
    struct verdict v;
    verdict_of(j, c, code, unsent, c == CURLE_OK && in_progress(ex, j, code), cs_now_ms(), &v);
    if (v.counted == VERDICT_THROTTLED)
        atomic_fetch_add(&j->stats->throttled, 1);
    else if (v.counted == VERDICT_IN_PROGRESS)
        atomic_fetch_add(&j->stats->in_progress, 1);
    else if (v.counted == VERDICT_NOT_SENT)
        atomic_fetch_add(&j->stats->not_sent, 1);
    char err[CS_ERRLEN];
    if (v.kind != VERDICT_RETRY && v.throttle_ms >= 0 &&
        throttle_grant(ex, j->grant_id, v.throttle_ms, err) != CS_OK)
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "cannot throttle the grant: %s", err);
    if (v.kind == VERDICT_RETRY)
        return requeue(ex, j, v.delay_ms, v.failure, v.wait_code, v.throttle_ms, v.msg);
    if (v.kind == VERDICT_FAILED)
        return fail(ex, j, v.rc, v.msg);
    executed(ex, j, code);
}

/* ---- the loop ---- */

/*
 * Outcomes are written on their own connection without blocking the loop:
 * write_start() sends what is done, write_end() takes the answer when it is
 * in (or waits for it). Rows that could not be written go back to done.
 */
static bool db_ready(struct executor *ex, struct cs_db *db, struct backoff *b, int64_t now);

static void write_start(struct executor *ex, int64_t now)
{
    if (ex->writing || json_object_array_length(ex->done) == 0 ||
        !db_ready(ex, ex->wdb, &ex->wdb_retry, now))
        return;
    char err[CS_ERRLEN];
    const char *p[] = {ex->owner, cs_json_text(ex->done, NULL)};
    if (cs_db_send(ex->wdb, CSQ_COMPLETE_EXECUTIONS, 2, p, err) != CS_OK) {
        static struct cs_log_limit lim;
        if (cs_log_limit_allow(&lim, 10, NULL))
            cs_log(CS_LOG_WARN, "executor", "cannot record outcomes yet: %s", err);
        return;
    }
    ex->writing = ex->done;
    ex->done = json_object_new_array();
}

static void write_end(struct executor *ex, bool wait)
{
    enum cs_err rc;
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    if (!ex->writing || !cs_db_poll(ex->wdb, wait, &rc, &res, err))
        return;
    int total = (int)json_object_array_length(ex->writing);
    if (rc) {
        static struct cs_log_limit lim;
        if (cs_log_limit_allow(&lim, 10, NULL))
            cs_log(CS_LOG_WARN, "executor", "cannot record %d outcome(s) yet: %s", total, err);
        for (size_t i = 0; i < json_object_array_length(ex->done); i++)
            json_object_array_add(ex->writing, json_object_get(json_object_array_get_idx(ex->done, i)));
        json_object_put(ex->done);
        ex->done = ex->writing;
    } else {
        if (PQntuples(res) < total)
            cs_log(CS_LOG_WARN, "executor", "%d outcome(s) not recorded: their lease was lost to "
                   "the rescuer", total - PQntuples(res));
        PQclear(res);
        json_object_put(ex->writing);
        ex->wake = true; /* their grants' in-flight counts just went down */
    }
    ex->writing = NULL;
}

/* {"grant": calls this worker holds} for the claim's per-grant share. */
static json_object *held_per_grant(struct executor *ex)
{
    json_object *o = json_object_new_object();
    for (struct job *j = ex->active; j; j = j->next_active) {
        json_object *n = NULL;
        int v = json_object_object_get_ex(o, j->grant_id, &n) ? json_object_get_int(n) : 0;
        json_object_object_add(o, j->grant_id, json_object_new_int(v + 1));
    }
    return o;
}

static enum cs_err claim(struct executor *ex, int n, bool *full, char *err)
{
    char lim[16], margin[24], share[24];
    int64_t per_grant = ex->cfg->exec_concurrency * ex->cfg->exec_grant_share / 100;
    snprintf(lim, sizeof(lim), "%d", n);
    snprintf(margin, sizeof(margin), "%lld", (long long)ex->cfg->lease_margin_ms);
    snprintf(share, sizeof(share), "%lld", (long long)(per_grant > 0 ? per_grant : 1));
    json_object *held = held_per_grant(ex);
    const char *p[] = {ex->owner, lim, margin, share, cs_json_text(held, NULL)};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(ex->db, CSQ_CLAIM_APPROVED, 5, p, &res, err);
    json_object_put(held);
    if (rc)
        return rc;
    int rows = PQntuples(res), got = rows - 1; /* the last row says when to claim again */
    *full = got == n;
    if (rows > 0 && !PQgetisnull(res, rows - 1, C_NEXT)) {
        int64_t next = cs_now_ms() + cs_db_int(res, rows - 1, C_NEXT);
        if (next < ex->next_poll_ms)
            ex->next_poll_ms = next;
    }
    cs_catalog_tick(ex->cat);
    if (got > 0)
        cs_catalog_expire(ex->cat); /* check the claimed calls against the grants as they are now */
    for (int r = 0; r < got; r++)
        start(ex, res, r);
    PQclear(res);
    if (got > 0)
        cs_log(CS_LOG_DEBUG, "executor", "claimed %d", got);
    return CS_OK;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct executor *ex = arg;
    (void)payload;
    if (strcmp(channel, "cs_approved") == 0)
        ex->wake = true;
}

/* Jobs that waited for Postgres: a requeue to hand over, or a call to prepare. */
static void restart_due(struct executor *ex, int64_t now)
{
    for (struct job **pj = &ex->waiting; *pj;) {
        struct job *j = *pj;
        if (j->retry_at_ms > now) {
            pj = &j->next;
            continue;
        }
        *pj = j->next;
        ex->nwaiting--;
        if (!j->rq) {
            prepare(ex, j);
        } else if (requeue_now(ex, j)) {
            job_free(j);
        } else {
            wait_for(ex, j, 1000);
        }
    }
}

static void release_waiting(struct executor *ex)
{
    while (ex->waiting) {
        struct job *j = ex->waiting;
        ex->waiting = j->next;
        release(ex, j);
        job_free(j);
    }
    ex->nwaiting = 0;
}

static int next_timeout(struct executor *ex, int64_t now)
{
    int64_t t = ex->next_poll_ms - now;
    for (struct job *j = ex->waiting; j; j = j->next)
        if (j->retry_at_ms - now < t)
            t = j->retry_at_ms - now;
    return t < 0 ? 0 : t > 1000 ? 1000 : (int)t;
}

/*
 * After a reconnect: a claim whose commit reached Postgres just as the
 * connection died left rows leased to us that we never started. Every
 * call we hold is in ex->active or, finished, in ex->done; the rest go
 * back to approved (nothing was sent for them).
 */
static void add_ids(json_object *held, json_object *rows)
{
    for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
        json_object *id = NULL;
        json_object_object_get_ex(json_object_array_get_idx(rows, i), "id", &id);
        json_object_array_add(held, json_object_get(id));
    }
}

static void release_unheld(struct executor *ex)
{
    json_object *held = json_object_new_array();
    for (struct job *j = ex->active; j; j = j->next_active)
        json_object_array_add(held, json_object_new_string(j->id));
    add_ids(held, ex->done);
    add_ids(held, ex->writing);
    char err[CS_ERRLEN];
    const char *p[] = {ex->owner, cs_json_text(held, NULL)};
    PGresult *res = NULL;
    if (cs_db_exec(ex->db, CSQ_RELEASE_UNHELD, 2, p, &res, err) != CS_OK)
        cs_log(CS_LOG_WARN, "executor", "cannot release unheld leases (they will lapse): %s", err);
    else if (cs_db_int(res, 0, 0) > 0)
        cs_log(CS_LOG_WARN, "executor", "released %lld claim(s) whose answer was lost with the "
               "connection", (long long)cs_db_int(res, 0, 0));
    PQclear(res);
    json_object_put(held);
}

/* One connection attempt when due; never sleeps, so calls in flight keep moving. */
static bool db_ready(struct executor *ex, struct cs_db *db, struct backoff *b, int64_t now)
{
    if (cs_db_connected(db))
        return true;
    if (now < b->at_ms)
        return false;
    char err[CS_ERRLEN];
    if (cs_db_reset(db, err) == CS_OK) {
        cs_log(CS_LOG_INFO, "executor", "reconnected to Postgres");
        cs_backoff_reset(&b->b);
        if (db == ex->db) {
            release_unheld(ex);
            ex->wake = true; /* catch up on what was approved meanwhile */
        }
        return true;
    }
    b->at_ms = now + cs_backoff_next(&b->b);
    return false;
}

static void run(struct executor *ex)
{
    char err[CS_ERRLEN];
    bool full = false;
    int64_t stop_at = 0;
    for (;;) {
        int64_t now = cs_now_ms();
        bool stopping = atomic_load(&ex->role->stop);
        if (stopping && !stop_at) {
            stop_at = now + ex->cfg->shutdown_grace_ms;
            release_waiting(ex);
            cs_log(CS_LOG_INFO, "executor", "stopping: %d call(s) in flight", ex->inflight);
        }
        if (stopping && (ex->inflight == 0 || now >= stop_at))
            break;
        /* Outcomes not yet written hold their slot too: a claim never outruns
         * what the database records (their rows stay executing meanwhile). */
        int unrecorded = (int)json_object_array_length(ex->done) +
                         (ex->writing ? (int)json_object_array_length(ex->writing) : 0);
        int free_slots = (int)ex->cfg->exec_concurrency - ex->inflight - ex->nwaiting - unrecorded;
        if (!stopping && free_slots > 0 && (ex->wake || full || now >= ex->next_poll_ms)) {
            ex->wake = false;
            ex->next_poll_ms = now + ex->cfg->poll_interval_ms;
            int n = free_slots < ex->cfg->exec_claim_batch ? free_slots : (int)ex->cfg->exec_claim_batch;
            enum cs_err rc = db_ready(ex, ex->db, &ex->db_retry, now) ? claim(ex, n, &full, err)
                                                                       : CS_ERR_DB;
            if (rc == CS_ERR_DB && !cs_db_connected(ex->db)) {
                full = false;
                ex->wake = false;
                ex->next_poll_ms = ex->db_retry.at_ms;
                rc = CS_OK;
            }
            if (rc) {
                full = false;
                cs_log(CS_LOG_ERROR, "executor", "claim failed: %s", err);
            }
        }
        /* Wake on a notification, or on a stop request until we have seen it. */
        struct curl_waitfd extra[3];
        unsigned nextra = 0;
        if (cs_db_socket(ex->db) >= 0)
            extra[nextra++] = (struct curl_waitfd){cs_db_socket(ex->db), CURL_WAIT_POLLIN, 0};
        if (ex->writing && cs_db_socket(ex->wdb) >= 0)
            extra[nextra++] = (struct curl_waitfd){cs_db_socket(ex->wdb), CURL_WAIT_POLLIN, 0};
        if (!stopping)
            extra[nextra++] = (struct curl_waitfd){ex->role->wake[0], CURL_WAIT_POLLIN, 0};
        int running = 0;
        curl_multi_poll(ex->cm, extra, nextra, full ? 0 : next_timeout(ex, now), NULL);
        curl_multi_perform(ex->cm, &running);
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(ex->cm, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct job *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            finish(ex, j, msg->data.result);
        }
        restart_due(ex, cs_now_ms());
        write_end(ex, false);
        write_start(ex, cs_now_ms());
        if (cs_db_notifies(ex->db, on_notify, ex) < 0 && !cs_db_connected(ex->db))
            ex->next_poll_ms = 0; /* reconnect on the next claim */
    }
}

void *executor_main(void *arg)
{
    struct worker_role *role = arg;
    struct executor ex = {.cfg = role->cfg, .role = role, .db_retry = {0, CS_BACKOFF},
                          .wdb_retry = {0, CS_BACKOFF}};
    char err[CS_ERRLEN];
    ex.cat = cs_catalog_new(role->cfg->catalog_ttl_ms);
    ex.done = json_object_new_array();
    ex.cm = curl_multi_init();
    cs_assert(ex.cm);
    /* Connections per provider host are capped and reused (keep-alive; HTTP/2
     * multiplexing where offered). A call that waits inside libcurl for one
     * of them and times out never sent a byte: it is retried as never sent.
     * The grants' max_in_flight keeps that wait short. */
    curl_multi_setopt(ex.cm, CURLMOPT_MAX_HOST_CONNECTIONS, (long)role->cfg->exec_host_connections);
    curl_multi_setopt(ex.cm, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    srand((unsigned)getpid());
    unsigned char nonce[4];
    char hex[9];
    cs_random_bytes(nonce, sizeof(nonce));
    cs_hex_encode(nonce, sizeof(nonce), hex);
    /* Unique per start: a restarted worker with the same instance id never
     * mistakes its predecessor's leases for its own. */
    snprintf(ex.owner, sizeof(ex.owner), "%s/%s", role->cfg->instance_id, hex);
    if (cs_process_db(role->cfg, "countersign-executor", &role->stop, &ex.db, err) != CS_OK ||
        cs_db_listen(ex.db, CSQ_LISTEN_APPROVED, err) != CS_OK) {
        if (!atomic_load(&role->stop)) {
            cs_log(CS_LOG_ERROR, "executor", "cannot start: %s", err);
            role->status = 1;
        }
    } else {
        /* Not connected yet is fine: write_start() reconnects when there is work. */
        if (cs_db_open(&ex.wdb, role->cfg->pg_url, "countersign-executor-writer", err) != CS_OK)
            cs_log(CS_LOG_WARN, "executor", "outcome connection not up yet: %s", err);
        cs_log(CS_LOG_INFO, "executor", "executing as %s, up to %lld calls at once",
               ex.owner, (long long)role->cfg->exec_concurrency);
        run(&ex);
        write_end(&ex, true);
        write_start(&ex, cs_now_ms());
        write_end(&ex, true);
        if (json_object_array_length(ex.done) > 0)
            cs_log(CS_LOG_WARN, "executor", "%zu outcome(s) not recorded at exit (leases will lapse)",
                   json_object_array_length(ex.done));
        if (ex.inflight)
            cs_log(CS_LOG_WARN, "executor", "%d call(s) still in flight at exit: leases left to lapse",
                   ex.inflight);
        cs_log(CS_LOG_INFO, "executor", "stopped: %llu executed, %llu failed",
               (unsigned long long)ex.executed, (unsigned long long)ex.failed);
    }
    release_waiting(&ex);
    while (ex.active) /* calls abandoned after the grace period: their leases lapse */
        job_free(ex.active);
    json_object_put(ex.done);
    json_object_put(ex.writing);
    curl_multi_cleanup(ex.cm);
    cs_catalog_free(ex.cat);
    cs_db_close(ex.db);
    cs_db_close(ex.wdb);
    atomic_store(&role->done, 1);
    return NULL;
}
