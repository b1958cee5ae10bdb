/*
 * call.h -- one provider call of the executor (call.c) and the job that
 * carries it through claims, attempts and retries (executor.c).
 */
#ifndef WORKER_CALL_H
#define WORKER_CALL_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "cs_buf.h"
#include "cs_catalog.h"
#include "cs_config.h"
#include "cs_crypto.h"

struct executor;
struct requeue;
struct worker_grant_stats;

struct job {
    struct job *next;                      /* retry-wait list */
    struct job *prev_active, *next_active; /* every job, for shutdown */
    struct executor *ex;
    char id[CS_UUID_STRLEN + 1];
    char *grant_id, *agent_id, *method, *url;
    unsigned char *body;
    size_t body_len;
    json_object *req_headers;
    int attempt, max_attempts, timeout_ms;
    int failures;        /* attempts that used up max_attempts before this one */
    int waits;           /* retries before this one that did not */
    char last_wait[32];  /* the error it ends with if its deadline passes waiting */
    bool overdue;        /* claimed past its deadline: ended unsent */
    int64_t deadline_ms; /* execution deadline (approval + grant's exec_deadline_s) */
    bool idempotent;     /* from the policy snapshot */
    bool allow_private;  /* the matching base names this IP literally */
    bool blocked;        /* opensocket refused a private address */
    /* most bytes a peer acknowledged on a socket of this attempt (-1: no socket closed
     * yet; INT64_MAX: unknown) */
    int64_t acked;
    CURL *easy;
    struct curl_slist *hdrs; /* holds the injected secret: wiped on free */
    struct cs_buf resp;
    json_object *resp_headers;
    size_t resp_header_bytes;
    long retry_after_ms; /* from the last response, -1 when absent */
    int64_t decided_ms;  /* when it was approved (decision or policy) */
    int64_t started_ms;  /* when the current attempt started */
    int64_t retry_at_ms; /* in ex->waiting: its turn, or when to try Postgres again */
    int turn_gap_ms;     /* 1000 / the grant's rate (0: no rate) */
    struct requeue *rq;  /* in ex->waiting: a requeue Postgres has not taken yet */
    struct worker_grant_stats *stats;
};

/* Builds j->hdrs once per attempt: the caller's headers, ours, the secret. */
enum cs_err call_headers(struct job *j, const struct cs_grant *g, const struct cs_config *cfg,
                         char *err) CS_MUSTCHECK;
/* A new easy handle for the job's attempt; the response fields are reset. */
CURL *call_easy(struct job *j, const struct cs_config *cfg);
/* Wipes the headers (they hold the secret) and frees them. */
void call_wipe_headers(struct job *j);

/* ---- verdict.c: what a finished attempt means ---- */

struct verdict {
    enum { VERDICT_EXECUTED, VERDICT_FAILED, VERDICT_RETRY } kind;
    enum cs_err rc;        /* FAILED */
    char msg[CS_ERRLEN];   /* FAILED: the error message; RETRY: why (audited) */
    long delay_ms;         /* RETRY: back in the queue for this long */
    bool failure;          /* RETRY: uses up an attempt */
    const char *wait_code; /* RETRY: the error at the deadline, NULL: keep the last */
    long throttle_ms;      /* >= 0: the whole grant waits this long (any kind) */
    enum { VERDICT_PLAIN, VERDICT_THROTTLED, VERDICT_IN_PROGRESS, VERDICT_NOT_SENT } counted;
};

/* Whether no request byte of the attempt reached the provider (before cleanup). */
bool verdict_never_sent(const struct job *j, long sent);
/* c and code from libcurl; in_progress: cs_grant_in_progress() of the answer. */
void verdict_of(const struct job *j, CURLcode c, long code, bool unsent, bool in_progress,
                int64_t now_ms, struct verdict *v);
/* A call claimed past its execution deadline: FAILED, with the reason it last waited for. */
void verdict_overdue(const struct job *j, struct verdict *v);

#endif
