/*
 * verdict.c -- what a finished attempt of a provider call means: the
 * outcome, or a retry and on what terms (README.md, "Providers: limits and
 * retries"). Pure: it reads the job and what libcurl reported, and decides;
 * executor.c carries the verdict out.
 *
 *   never sent (connect refused or timed out, DNS, TLS handshake; or on a
 *       plain-http connection of its own, written but not one byte
 *       acknowledged by the provider's TCP stack)
 *       -> retried with backoff until the execution deadline, keys or not,
 *          without using an attempt; at the deadline connect_failed/tls_error
 *   429, or 503 with Retry-After -> the whole grant waits the advised time
 *       (1 s for a 429 without one) and the call is retried with the same
 *       Idempotency-Key without using an attempt; at the deadline
 *       rate_limited. Without keys only 429 is retried (the provider says it
 *       did not process it); a 503 may follow work done and is the outcome.
 *   "key still in progress" (Stripe's 409 idempotency_key_in_use, or the
 *       grant's pattern) -> retried with the same key without using an
 *       attempt; at the deadline outcome_unknown
 *   5xx, or no answer after sending -> retried with the same key only when
 *       the grant says the provider honours keys, using up an attempt
 *   otherwise the answer is the outcome; a transport failure after sending
 *       is timeout or outcome_unknown, never re-run.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "call.h"
#include "cs_process.h"

bool verdict_never_sent(const struct job *j, long sent)
{
    curl_off_t pretransfer = 0;
    char *scheme = NULL;
    curl_easy_getinfo(j->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    curl_easy_getinfo(j->easy, CURLINFO_SCHEME, &scheme);
    if (sent == 0 && pretransfer == 0)
        return true;
    /* 1 byte acknowledged is the handshake's SYN (call.c on_close). */
    return scheme && !strcasecmp(scheme, "http") && j->acked >= 0 && j->acked <= 1;
}

static bool tls_error(CURLcode c)
{
    return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
           c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CIPHER || c == CURLE_SSL_CACERT_BADFILE ||
           c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
           c == CURLE_SSL_INVALIDCERTSTATUS || c == CURLE_SSL_CRL_BADFILE ||
           c == CURLE_SSL_ENGINE_INITFAILED;
}

/* Backoff of retries that use no attempt: 0.5 s doubling to 10 s. */
static long wait_backoff(const struct job *j)
{
    int k = j->waits < 5 ? j->waits : 5;
    long d = 500L << k;
    return d > 10000 ? 10000 : d;
}

static void failed(struct verdict *v, enum cs_err rc, const char *msg)
{
    v->kind = VERDICT_FAILED;
    v->rc = rc;
    snprintf(v->msg, sizeof(v->msg), "%s", msg);
}

/* A retry delay_ms from now if it starts before the deadline, else failed with rc. */
static void retry(struct verdict *v, const struct job *j, int64_t now, long delay_ms, bool failure,
                  const char *wait_code, enum cs_err rc, const char *late)
{
    if (now + delay_ms >= j->deadline_ms)
        return failed(v, rc, late);
    v->kind = VERDICT_RETRY;
    v->delay_ms = delay_ms;
    v->failure = failure;
    v->wait_code = wait_code;
}

static void answered(struct verdict *v, const struct job *j, long code, bool in_progress,
                     int64_t now)
{
    bool ra = j->retry_after_ms >= 0;
    bool more = j->failures + 1 < j->max_attempts;
    v->kind = VERDICT_EXECUTED;
    if (code == 429 || (code == 503 && ra)) {
        v->counted = VERDICT_THROTTLED;
        v->throttle_ms = ra ? j->retry_after_ms : 1000;
        snprintf(v->msg, sizeof(v->msg), "provider answered %ld%s; the grant waits %ld ms", code,
                 ra ? " with Retry-After" : "", v->throttle_ms);
        if (code == 503 && !j->idempotent)
            return; /* the outcome, but the grant still waits as told */
        return retry(v, j, now, v->throttle_ms, false, "rate_limited", CS_ERR_RATE_LIMITED,
                     "the provider was still throttling the grant at the execution deadline; "
                     "the call was not executed");
    }
    if (in_progress) {
        v->counted = VERDICT_IN_PROGRESS;
        snprintf(v->msg, sizeof(v->msg),
                 "provider answered %ld: the idempotency key is still "
                 "in progress",
                 code);
        return retry(v, j, now, ra ? j->retry_after_ms : wait_backoff(j), false, "outcome_unknown",
                     CS_ERR_OUTCOME_UNKNOWN,
                     "the provider was still processing this idempotency key at the execution "
                     "deadline; it may complete it");
    }
    long backoff = 500L << (j->failures < 6 ? j->failures : 6);
    long delay = ra ? j->retry_after_ms : backoff > 30000 ? 30000 : backoff;
    if (code >= 500 && j->idempotent && more && now + delay < j->deadline_ms) {
        snprintf(v->msg, sizeof(v->msg), "provider answered %ld", code);
        retry(v, j, now, delay, true, NULL, CS_ERR_INTERNAL, "");
    }
}

void verdict_of(const struct job *j, CURLcode c, long code, bool unsent, bool in_progress,
                int64_t now, struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->throttle_ms = -1;
    if (j->blocked)
        return failed(v, CS_ERR_HOST_NOT_ALLOWED,
                      "the host resolved to a private address the grant does not name");
    if (c == CURLE_OK)
        return answered(v, j, code, in_progress, now);
    char late[CS_ERRLEN];
    snprintf(v->msg, sizeof(v->msg), "%s", curl_easy_strerror(c));
    if (unsent) {
        /* Nothing reached the provider: always safe, and not a failure of the call. */
        enum cs_err rc = tls_error(c) ? CS_ERR_TLS : CS_ERR_CONNECT;
        v->counted = VERDICT_NOT_SENT;
        snprintf(late, sizeof(late), "%s; nothing was sent, and the execution deadline has come",
                 curl_easy_strerror(c));
        return retry(v, j, now, wait_backoff(j), false, cs_err_code(rc), rc, late);
    }
    long backoff = 500L << (j->failures < 6 ? j->failures : 6);
    backoff = backoff > 30000 ? 30000 : backoff;
    if (j->idempotent && j->failures + 1 < j->max_attempts && now + backoff < j->deadline_ms)
        return retry(v, j, now, backoff, true, NULL, CS_ERR_INTERNAL, "");
    if (c == CURLE_OPERATION_TIMEDOUT) {
        snprintf(late, sizeof(late),
                 "no answer within %d ms; the provider may have received "
                 "the call, and it is not re-run",
                 j->timeout_ms);
        return failed(v, CS_ERR_TIMEOUT, late);
    }
    snprintf(late, sizeof(late),
             "%s after the call was sent; the provider may have received "
             "it, and it is not re-run",
             curl_easy_strerror(c));
    failed(v, CS_ERR_OUTCOME_UNKNOWN, late);
}

void verdict_overdue(const struct job *j, struct verdict *v)
{
    *v = (struct verdict){.throttle_ms = -1};
    enum cs_err rc = j->last_wait[0] ? cs_err_from_code(j->last_wait) : CS_ERR_EXEC_DEADLINE;
    if (rc == CS_ERR__COUNT)
        rc = CS_ERR_EXEC_DEADLINE;
    char msg[CS_ERRLEN];
    if (rc == CS_ERR_RATE_LIMITED)
        snprintf(msg, sizeof(msg),
                 "the provider was still throttling the grant at the "
                 "execution deadline; the call was not executed");
    else if (rc == CS_ERR_OUTCOME_UNKNOWN)
        snprintf(msg, sizeof(msg),
                 "the provider was still processing this idempotency key at "
                 "the execution deadline; it may complete it");
    else if (rc == CS_ERR_CONNECT || rc == CS_ERR_TLS)
        snprintf(msg, sizeof(msg),
                 "the provider could not be reached before the execution "
                 "deadline (%s); nothing was sent",
                 cs_err_code(rc));
    else
        snprintf(msg, sizeof(msg),
                 "the call could not start before its execution deadline "
                 "(grant paused or over its limits); nothing was sent");
    failed(v, rc, msg);
}
