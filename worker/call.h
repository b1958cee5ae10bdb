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

struct job {
    struct job *next;              /* retry-wait list */
    struct job *prev_active, *next_active;   /* every job, for shutdown */
    struct executor *ex;
    char id[CS_UUID_STRLEN + 1];
    char *grant_id, *agent_id, *method, *url;
    unsigned char *body;
    size_t body_len;
    json_object *req_headers;
    int attempt, max_attempts, timeout_ms;
    bool idempotent;               /* from the policy snapshot */
    bool allow_private;            /* the matching base names this IP literally */
    bool blocked;                  /* opensocket refused a private address */
    bool prepared;                 /* grant checked and headers built */
    CURL *easy;
    struct curl_slist *hdrs;       /* holds the injected secret: wiped on free */
    struct cs_buf resp;
    json_object *resp_headers;
    size_t resp_header_bytes;
    long retry_after_ms;           /* from the last response, -1 when absent */
    int64_t decided_ms;            /* when it was approved (decision or policy) */
    int64_t started_ms;            /* when the current attempt started */
    int64_t retry_at_ms;
    int64_t renew_ms;              /* > 0: the lease still has to be renewed by this much */
};


/* Builds j->hdrs once per attempt: the caller's headers, ours, the secret. */
enum cs_err call_headers(struct job *j, const struct cs_grant *g, const struct cs_config *cfg,
                         char *err) CS_MUSTCHECK;
/* A new easy handle for the job's attempt; the response fields are reset. */
CURL *call_easy(struct job *j, const struct cs_config *cfg);
/* Wipes the headers (they hold the secret) and frees them. */
void call_wipe_headers(struct job *j);

#endif
