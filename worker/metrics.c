/*
 * metrics.c -- the worker's /metrics (Prometheus text), on CS_METRICS_PORT.
 *
 * Counters and histograms live in struct worker_metrics (worker.h); the
 * roles update them with atomics, this file only renders them.
 */
#include "worker.h"

static void counter(struct cs_buf *b, const char *name, const char *help,
                    atomic_uint_fast64_t *v)
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

void worker_metrics_render(void *arg, struct cs_buf *b)
{
    struct worker_metrics *m = arg;
    counter(b, "countersign_ingest_stored_total", "requests stored from Kafka", &m->ingested);
    counter(b, "countersign_ingest_duplicates_total", "requests whose request_id was already stored",
            &m->duplicates);
    counter(b, "countersign_ingest_dead_lettered_total", "messages sent to the dead-letter topic",
            &m->dead_lettered);
    counter(b, "countersign_ingest_dead_letters_dropped_total",
            "dead letters the broker refused for good (size or form): logged and skipped",
            &m->dead_letters_dropped);
    histogram(b, "countersign_ingest_batch_seconds", "first message of a batch to its offsets committed",
              &m->ingest_batch);
    counter(b, "countersign_executions_executed_total", "calls the provider answered", &m->executed);
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
    counter(b, "countersign_relay_failures_total", "events the broker did not acknowledge (retried)",
            &m->publish_failures);
    counter(b, "countersign_relay_cut_total",
            "events and results cut to fit the topic's message limit (full body through the API)",
            &m->publish_cut);
    counter(b, "countersign_relay_dropped_total",
            "events the broker refused for good (size or form): logged, counted and deleted",
            &m->publish_dropped);
    counter(b, "countersign_notifications_sent_total", "approver messages delivered", &m->notified);
    counter(b, "countersign_notifications_failed_total", "approver message attempts that failed",
            &m->notify_failures);
}
