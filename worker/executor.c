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
 * Retries (documented in README.md, "Execution"): nothing sent (connect or DNS
 * failure) -> retried up to the policy's max_attempts; 429 or 5xx, or no
 * answer after sending -> retried with the same Idempotency-Key only when
 * the grant says the provider honours idempotency keys; TLS failure ->
 * failed/tls_error. Retry-After is honoured (capped at 60 s).
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
    struct job *waiting;
    json_object *done;             /* completion rows not yet written */
    json_object *writing;          /* completion rows being written, or NULL */
    bool wake;
    int64_t next_poll_ms;
    uint64_t executed, failed;
};

/* claim_approved columns (sql/queries/execution.sql) */
enum { C_ID, C_GRANT, C_METHOD, C_URL, C_HEADERS, C_BODY, C_DIGEST, C_ATTEMPTS, C_TIMEOUT,
       C_MAX_ATTEMPTS, C_IDEMPOTENT, C_AGENT, C_DECIDED };

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
    j->prepared = true;
    start_transfer(ex, j);
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

enum renewal { RENEWED, LEASE_LOST, DB_DOWN };

/* Extends the lease of the attempt held by renew_ms and counts a new attempt. */
static enum renewal renew(struct executor *ex, struct job *j)
{
    char lease[24], attempt[16], err[CS_ERRLEN];
    snprintf(lease, sizeof(lease), "%lld", (long long)j->renew_ms);
    snprintf(attempt, sizeof(attempt), "%d", j->attempt);
    const char *p[] = {j->id, ex->owner, lease, "retry", attempt};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_connected(ex->db)
                         ? cs_db_exec(ex->db, CSQ_RENEW_LEASE, 5, p, &res, err)
                         : cs_err_set(err, CS_ERR_DB, "not connected");
    if (rc && !cs_db_connected(ex->db)) {
        PQclear(res);
        return DB_DOWN; /* keep the job: the lease may still be ours when Postgres is back */
    }
    bool ours = !rc && PQntuples(res) == 1;
    if (ours)
        j->attempt = (int)cs_db_int(res, 0, 0);
    PQclear(res);
    if (!ours)
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "cannot renew the lease to retry (%s): the "
                  "rescuer owns the outcome", rc ? err : "lease lost");
    j->renew_ms = 0;
    return ours ? RENEWED : LEASE_LOST;
}

static void retry_later(struct executor *ex, struct job *j, const char *why)
{
    long delay = j->retry_after_ms >= 0 ? j->retry_after_ms : 500L << (j->attempt - 1);
    if (delay > 30000 && j->retry_after_ms < 0)
        delay = 30000;
    delay += rand() % 100; /* jitter */
    j->renew_ms = delay + j->timeout_ms + ex->cfg->lease_margin_ms;
    enum renewal r = renew(ex, j);
    if (r == LEASE_LOST)
        return job_free(j);
    if (r == DB_DOWN)
        cs_log_ap(CS_LOG_WARN, "executor", j->id, "retry waits for Postgres (%s)", why);
    else
        cs_log_ap(CS_LOG_INFO, "executor", j->id, "retrying in %ld ms (attempt %d of %d): %s",
                  delay, j->attempt, j->max_attempts, why);
    atomic_fetch_add(&ex->role->m->retries, 1);
    wait_for(ex, j, delay);
}

static bool tls_error(CURLcode c)
{
    return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
           c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CIPHER ||
           c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_ISSUER_ERROR ||
           c == CURLE_SSL_PINNEDPUBKEYNOTMATCH || c == CURLE_SSL_INVALIDCERTSTATUS ||
           c == CURLE_SSL_CRL_BADFILE || c == CURLE_SSL_ENGINE_INITFAILED;
}

static void finish(struct executor *ex, struct job *j, CURLcode c)
{
    long code = 0, sent = 0;
    char msg[CS_ERRLEN];
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(j->easy, CURLINFO_REQUEST_SIZE, &sent);
    curl_multi_remove_handle(ex->cm, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    ex->inflight--;
    atomic_fetch_sub(&ex->role->m->inflight, 1);
    cs_histogram_observe_us(&ex->role->m->call, (cs_now_ms() - j->started_ms) * 1000);
    bool more = j->attempt < j->max_attempts;

    if (j->blocked)
        return fail(ex, j, CS_ERR_HOST_NOT_ALLOWED,
                    "the host resolved to a private address the grant does not name");
    if (c == CURLE_OK) {
        if ((code == 429 || code >= 500) && j->idempotent && more) {
            snprintf(msg, sizeof(msg), "provider answered %ld", code);
            return retry_later(ex, j, msg);
        }
        return executed(ex, j, code);
    }
    snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(c));
    if (tls_error(c))
        return fail(ex, j, CS_ERR_TLS, msg);
    if (sent == 0 && more) /* nothing reached the provider: always safe */
        return retry_later(ex, j, msg);
    if (sent > 0 && j->idempotent && more)
        return retry_later(ex, j, msg);
    if (c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST)
        return fail(ex, j, CS_ERR_CONNECT, msg);
    if (c == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, sizeof(msg), "no answer within %d ms%s", j->timeout_ms,
                 sent ? "; the provider may have received the call, and it is not re-run" : "");
        return fail(ex, j, CS_ERR_TIMEOUT, msg);
    }
    if (sent > 0) {
        snprintf(msg, sizeof(msg), "%s after the call was sent; the provider may have received "
                 "it, and it is not re-run", curl_easy_strerror(c));
        return fail(ex, j, CS_ERR_OUTCOME_UNKNOWN, msg);
    }
    return fail(ex, j, CS_ERR_PROVIDER, msg);
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
    }
    ex->writing = NULL;
}

static enum cs_err claim(struct executor *ex, int n, bool *full, char *err)
{
    char lim[16], margin[24];
    snprintf(lim, sizeof(lim), "%d", n);
    snprintf(margin, sizeof(margin), "%lld", (long long)ex->cfg->lease_margin_ms);
    const char *p[] = {ex->owner, lim, margin};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(ex->db, CSQ_CLAIM_APPROVED, 3, p, &res, err);
    if (rc)
        return rc;
    int got = PQntuples(res);
    *full = got == n;
    cs_catalog_tick(ex->cat);
    if (got)
        cs_catalog_expire(ex->cat); /* check the claimed calls against the grants as they are now */
    for (int r = 0; r < got; r++)
        start(ex, res, r);
    PQclear(res);
    if (got)
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
        if (j->renew_ms > 0) {
            enum renewal r = renew(ex, j);
            if (r == LEASE_LOST) {
                job_free(j);
                continue;
            }
            if (r == DB_DOWN) {
                wait_for(ex, j, 1000);
                continue;
            }
        }
        if (j->prepared) {
            /* A retry is a new call: check the grant again and rebuild its headers
             * (the hosts may have narrowed, the secret may have rotated). */
            call_wipe_headers(j);
            j->prepared = false;
            cs_catalog_forget_grant(ex->cat, j->grant_id);
        }
        prepare(ex, j);
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
    /* As many connections per host as calls in flight: a call queued inside
     * libcurl would spend its timeout (and its lease) waiting. */
    curl_multi_setopt(ex.cm, CURLMOPT_MAX_HOST_CONNECTIONS, (long)role->cfg->exec_concurrency);
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
