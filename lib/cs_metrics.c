/*
 * cs_metrics.c -- Prometheus text format (see cs_metrics.h).
 */
#include "cs_metrics.h"

#include <stdio.h>

const double cs_hist_bounds[CS_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
                                                0.25,  0.5,    1,     2.5,  5,    10,   60,
                                                1e300};

void cs_histogram_observe_us(struct cs_histogram *h, int64_t us)
{
    double s = (double)us / 1e6;
    int i = 0;
    while (i < CS_HIST_BUCKETS - 1 && s > cs_hist_bounds[i])
        i++;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint_fast64_t)(us > 0 ? us : 0));
}

void cs_metrics_family(struct cs_buf *b, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    cs_buf_append_trunc(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void cs_metrics_value(struct cs_buf *b, const char *name, const char *labels, double value)
{
    char line[512];
    int n = labels && *labels ? snprintf(line, sizeof(line), "%s{%s} %.17g\n", name, labels, value)
                              : snprintf(line, sizeof(line), "%s %.17g\n", name, value);
    cs_buf_append_trunc(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void cs_metrics_histogram(struct cs_buf *b, const char *name, const char *labels,
                          const struct cs_histogram *h)
{
    char metric[160], lbl[384];
    uint64_t cum = 0;
    snprintf(metric, sizeof(metric), "%s_bucket", name);
    for (int i = 0; i < CS_HIST_BUCKETS; i++) {
        cum += atomic_load(&h->buckets[i]);
        if (i == CS_HIST_BUCKETS - 1)
            snprintf(lbl, sizeof(lbl), "%s%sle=\"+Inf\"", labels ? labels : "",
                     labels && *labels ? "," : "");
        else
            snprintf(lbl, sizeof(lbl), "%s%sle=\"%g\"", labels ? labels : "",
                     labels && *labels ? "," : "", cs_hist_bounds[i]);
        cs_metrics_value(b, metric, lbl, (double)cum);
    }
    snprintf(metric, sizeof(metric), "%s_sum", name);
    cs_metrics_value(b, metric, labels, (double)atomic_load(&h->sum_us) / 1e6);
    snprintf(metric, sizeof(metric), "%s_count", name);
    cs_metrics_value(b, metric, labels, (double)atomic_load(&h->count));
}
