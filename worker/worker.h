/*
 * worker.h -- the roles of the worker process (this folder only).
 *
 * Each role runs in its own thread with its own Postgres connection and
 * stops when cs_stopping is set, in the order main.c documents:
 *   ingest   -- Kafka requests topic -> approvals (ingest.c)
 *   executor -- approved -> provider call -> executed | failed (executor.c)
 *   notifier -- approver emails and webhooks with their links (notifier.c)
 *   relay    -- event slot -> events and results topics (relay.c)
 */
#ifndef WORKER_H
#define WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>

#include "cs_config.h"
#include "cs_catalog.h"
#include "cs_db.h"
#include "cs_metrics.h"

/* One grant's figures in this process (labels grant="..."). Never freed before exit. */
struct worker_grant_stats {
    struct worker_grant_stats *next;
    char grant[72];
    atomic_uint_fast64_t executed, failed, requeued; /* calls by outcome; requeued: to retry */
    atomic_uint_fast64_t throttled;                  /* 429, or 503 with Retry-After */
    atomic_uint_fast64_t in_progress;                /* "key still in progress" answers */
    atomic_uint_fast64_t not_sent;                   /* attempts that never reached it */
    atomic_int inflight;
    struct cs_histogram queue_wait; /* due (approved or retry time) -> claimed */
    int64_t next_turn_ms; /* executor thread only: a late turn of the grant starts no sooner */
};

/* What the roles count, rendered by metrics.c on CS_METRICS_PORT. */
struct worker_metrics {
    atomic_uint_fast64_t ingested, duplicates, dead_lettered, dead_letters_dropped;
    struct cs_histogram ingest_batch; /* first message polled -> offsets committed */
    atomic_uint_fast64_t executed, failed, retries;
    atomic_int inflight;
    struct cs_histogram call;             /* provider call, request to response */
    struct cs_histogram decision_to_call; /* decided_at -> call started */
    atomic_uint_fast64_t published, publish_failures, publish_cut, publish_dropped;
    atomic_uint_fast64_t notified, notify_failures;
    pthread_mutex_t grants_lock; /* guards the list, not the figures */
    struct worker_grant_stats *grants;
};

/* The figures of `grant` (created on first use; the pointer stays valid). */
struct worker_grant_stats *worker_grant_stats(struct worker_metrics *m, const char *grant);
/* At exit, after every role and the metrics server stopped. */
void worker_metrics_free(struct worker_metrics *m);

/* metrics.c: renders m (the cs_metrics_serve callback). */
void worker_metrics_render(void *m, struct cs_buf *b);

struct worker_role {
    const char *name;
    const struct cs_config *cfg;
    pthread_t thread;
    atomic_int ready;         /* set by the role once it works (worker_ready) */
    atomic_int done;          /* set by the role when its loop has ended */
    atomic_int stop;          /* set by main to end the role (after cs_stopping) */
    int wake[2];              /* main writes a byte after setting stop; roles poll wake[0] */
    int status;               /* 0 ok, else the role failed to start */
    struct worker_metrics *m; /* shared by every role */
};

/* The role works: main logs the process's ready line once every role has said so. */
void worker_ready(struct worker_role *role);
/* Waits up to ms for the role's wake pipe (a stop request). */
void worker_sleep(struct worker_role *role, int ms);
/*
 * The idle wait of a role that LISTENs on db: drains pending NOTIFYs to
 * on_notify; when there were none, waits for the database socket, a stop
 * or timeout_ms, then drains again. True when a notification arrived
 * before the wait (the caller has work at once).
 */
bool worker_wait(struct worker_role *role, struct cs_db *db, int timeout_ms,
                 void (*on_notify)(void *arg, const char *channel, const char *payload), void *arg);

/* dead_letters.c -- what a dead letter of message m says (reason, message, topic, partition, offset). */
json_object *dead_letter_fields(const rd_kafka_message_t *m, enum cs_err rc, const char *detail);
/* The same with size, SHA-256 and a safe preview: the console's record of it. */
json_object *dead_letter_record(const rd_kafka_message_t *m, enum cs_err rc, const char *detail);
/* The key of m's dead letter: m's own, or "sha256:<hex>" of it in hashed when over 1 KB. */
#define DEAD_LETTER_KEY_MAX (8 + 2 * 32 + 1)
const void *dead_letter_key(const rd_kafka_message_t *m, char hashed[DEAD_LETTER_KEY_MAX],
                            size_t *len);
/* Logs (rate-limited) a dead letter the broker refused for good; the caller counts it. */
void dead_letter_dropped(const void *key, size_t key_len, rd_kafka_resp_err_t e);

/*
 * signature.c -- authenticates record m (cs_envsig.h) before it is parsed:
 * *key is the signing key it was signed with, or NULL for an unsigned
 * record accepted under CS_KAFKA_ALLOW_UNSIGNED. CS_ERR_UNAUTHENTICATED
 * says which check failed; the key lookup may return a retriable CS_ERR_DB
 * (db NULL: from cat's cache only).
 */
enum cs_err signature_check(const struct cs_config *cfg, struct cs_catalog *cat,
                            const rd_kafka_message_t *m, struct cs_db *db,
                            const struct cs_signing_key **key, char *err) CS_MUSTCHECK;
/* After parsing: CS_ERR_UNAUTHENTICATED ("wrong agent") when key (if any) is not agent's. */
enum cs_err signature_owner(const struct cs_signing_key *key, const char *agent,
                            char *err) CS_MUSTCHECK;

void *ingest_main(void *role);
void *executor_main(void *role);
void *notifier_main(void *role);
void *relay_main(void *role);

#endif
