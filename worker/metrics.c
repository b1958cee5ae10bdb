/*
 * metrics.c -- the worker's /metrics (Prometheus text), on CS_METRICS_PORT.
 *
 * Counters and histograms live in struct worker_metrics (worker.h); the
 * roles update them with atomics, this file only renders them.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cs_mem.h"
#include "worker.h"

static void counter(struct cs_buf *b, const char *name, const char *help, atomic_uint_fast64_t *v)
{
    cs_metrics_family(b, name, "counter", help);
    cs_metrics_value(b, name, NULL, (double)atomic_load(v));
}

static void histogram(struct cs_buf *b, const char *name, const char *help,
                      const struct cs_histogram *h)
{
    cs_metrics_family(b, name, "histogram", help);
    cs_metrics_histogram(b, name, NULL, h);
}

struct worker_grant_stats *worker_grant_stats(struct worker_metrics *m, const char *grant)
{
    pthread_mutex_lock(&m->grants_lock);
    struct worker_grant_stats *g = m->grants;
    while (g && strcmp(g->grant, grant) != 0)
        g = g->next;
    if (!g) {
        g = cs_calloc(1, sizeof(*g));
        cs_strlcpy(g->grant, grant, sizeof(g->grant));
        g->next = m->grants;
        m->grants = g;
    }
    pthread_mutex_unlock(&m->grants_lock);
    return g;
}

/* A family of per-grant values at offset `field`; type NULL: more values of the last family
 * (counters). */
static void grant_family(struct cs_buf *b, struct worker_metrics *m, const char *name,
                         const char *type, const char *help, size_t field, const char *extra)
{
    char labels[160];
    if (type)
        cs_metrics_family(b, name, type, help);
    else
        type = "counter";
    pthread_mutex_lock(&m->grants_lock);
    for (struct worker_grant_stats *g = m->grants; g; g = g->next) {
        snprintf(labels, sizeof(labels), "grant=\"%s\"%s", g->grant, extra ? extra : "");
        if (!strcmp(type, "histogram"))
            cs_metrics_histogram(b, name, labels,
                                 (const struct cs_histogram *)((const char *)g + field));
        else if (!strcmp(type, "gauge"))
            cs_metrics_value(b, name, labels, atomic_load((atomic_int *)((char *)g + field)));
        else
            cs_metrics_value(b, name, labels,
                             (double)atomic_load((atomic_uint_fast64_t *)((char *)g + field)));
    }
    pthread_mutex_unlock(&m->grants_lock);
}

void worker_metrics_free(struct worker_metrics *m)
{
    while (m->grants) {
        struct worker_grant_stats *g = m->grants;
        m->grants = g->next;
        cs_free(g);
    }
}

/* Per grant, in this worker: the fleet's view (paused, throttled, queued) is the api's /metrics. */
static void grant_metrics(struct cs_buf *b, struct worker_metrics *m)
{
    const char *calls = "countersign_grant_calls_total";
    grant_family(b, m, calls, "counter",
                 "calls by grant and outcome: executed, failed, or "
                 "requeued (back in the queue to be retried, holding no slot)",
                 offsetof(struct worker_grant_stats, executed), ",outcome=\"executed\"");
    grant_family(b, m, calls, NULL, NULL, offsetof(struct worker_grant_stats, failed),
                 ",outcome=\"failed\"");
    grant_family(b, m, calls, NULL, NULL, offsetof(struct worker_grant_stats, requeued),
                 ",outcome=\"requeued\"");
    grant_family(b, m, "countersign_grant_throttled_total", "counter",
                 "429 answers, and 503 with Retry-After: the grant paused for the advised time",
                 offsetof(struct worker_grant_stats, throttled), NULL);
    grant_family(b, m, "countersign_grant_in_progress_total", "counter",
                 "answers that an idempotency key is still in progress (retried with the key)",
                 offsetof(struct worker_grant_stats, in_progress), NULL);
    grant_family(b, m, "countersign_grant_not_sent_total", "counter",
                 "attempts that failed before any request byte was written (retried)",
                 offsetof(struct worker_grant_stats, not_sent), NULL);
    grant_family(b, m, "countersign_grant_in_flight", "gauge", "this worker's calls in flight",
                 offsetof(struct worker_grant_stats, inflight), NULL);
    grant_family(b, m, "countersign_grant_queue_wait_seconds", "histogram",
                 "a call due (approved, or its retry time) to claimed: time spent waiting for "
                 "the grant's limits, throttle or pause",
                 offsetof(struct worker_grant_stats, queue_wait), NULL);
}

void worker_metrics_render(void *arg, struct cs_buf *b)
{
    struct worker_metrics *m = arg;
    counter(b, "countersign_ingest_stored_total", "requests stored from Kafka", &m->ingested);
    counter(b, "countersign_ingest_duplicates_total",
            "requests whose request_id was already stored", &m->duplicates);
    counter(b, "countersign_ingest_dead_lettered_total", "messages sent to the dead-letter topic",
            &m->dead_lettered);
    counter(b, "countersign_ingest_dead_letters_dropped_total",
            "dead letters the broker refused for good (size or form): logged and skipped",
            &m->dead_letters_dropped);
    histogram(b, "countersign_ingest_batch_seconds",
              "first message of a batch to its offsets committed", &m->ingest_batch);
    counter(b, "countersign_executions_executed_total", "calls the provider answered",
            &m->executed);
    counter(b, "countersign_executions_failed_total", "calls that ended failed", &m->failed);
    counter(b, "countersign_execution_retries_total", "attempts retried", &m->retries);
    cs_metrics_family(b, "countersign_executions_in_flight", "gauge", "provider calls in flight");
    cs_metrics_value(b, "countersign_executions_in_flight", NULL, atomic_load(&m->inflight));
    histogram(b, "countersign_execution_seconds", "provider call, request sent to response read",
              &m->call);
    histogram(b, "countersign_decision_to_call_seconds",
              "approval decided (or auto-approved) to its call starting", &m->decision_to_call);
    counter(b, "countersign_relay_published_total", "events and results the broker acknowledged",
            &m->published);
    counter(b, "countersign_relay_failures_total",
            "events the broker did not acknowledge (retried)", &m->publish_failures);
    counter(b, "countersign_relay_cut_total",
            "events and results cut to fit the topic's message limit (full body through the API)",
            &m->publish_cut);
    counter(b, "countersign_relay_dropped_total",
            "events the broker refused for good (size or form): logged, counted and deleted",
            &m->publish_dropped);
    counter(b, "countersign_notifications_sent_total", "approver messages delivered", &m->notified);
    counter(b, "countersign_notifications_failed_total", "approver message attempts that failed",
            &m->notify_failures);
    grant_metrics(b, m);
}
