/*
 * cs_metrics.h -- Prometheus text exposition for every process.
 *
 * Counters and histograms are plain structs of C11 atomics that any thread
 * may update without a lock; rendering reads them into a capped buffer.
 * Histogram buckets are fixed (1 ms .. 60 s) so that every process's
 * latency figures can be summed across instances.
 */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "cs_buf.h"

#define CS_HIST_BUCKETS 15

struct cs_histogram {
    atomic_uint_fast64_t buckets[CS_HIST_BUCKETS]; /* non-cumulative counts */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

/* Bucket upper bounds in seconds (the last is +Inf). */
extern const double cs_hist_bounds[CS_HIST_BUCKETS];

void cs_histogram_observe_us(struct cs_histogram *h, int64_t us);

/* "# HELP name help\n# TYPE name type\n" */
void cs_metrics_family(struct cs_buf *b, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels may be NULL or "" */
void cs_metrics_value(struct cs_buf *b, const char *name, const char *labels, double value);
/* The _bucket/_sum/_count lines of h (labels may be NULL). */
void cs_metrics_histogram(struct cs_buf *b, const char *name, const char *labels,
                          const struct cs_histogram *h);

/*
 * A tiny HTTP server for processes without an api: GET /metrics answers
 * render(arg, buf) as Prometheus text, GET /healthz answers ok. Runs on its
 * own libmicrohttpd thread on addr:port; NULL when it cannot listen.
 * render is called on that thread.
 */
struct cs_metrics_server;
struct cs_metrics_server *cs_metrics_serve(const char *addr, int port,
                                           void (*render)(void *arg, struct cs_buf *b), void *arg);
void cs_metrics_server_stop(struct cs_metrics_server *s);

#endif
