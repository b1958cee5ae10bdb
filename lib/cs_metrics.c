/*
 * cs_metrics.c -- Prometheus text format (see cs_metrics.h).
 */
#include "cs_metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cs_log.h"
#include "cs_mem.h"

const double cs_hist_bounds[CS_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,  0.25,
                                                0.5,   1,      2.5,   5,    10,   60,   1e300};

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

/* ---- a /metrics endpoint for the worker and the scheduler ---- */

struct cs_metrics_server {
    struct MHD_Daemon *d;
    void (*render)(void *arg, struct cs_buf *b);
    void *arg;
};

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **req_cls)
{
    struct cs_metrics_server *s = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req_cls;
    struct cs_buf b;
    unsigned status = 200;
    cs_buf_init(&b, 1u << 20);
    if (strcmp(method, "GET") != 0) {
        status = 405;
        cs_buf_append_trunc(&b, "method not allowed\n", 19);
    } else if (strcmp(url, "/metrics") == 0) {
        s->render(s->arg, &b);
    } else if (strcmp(url, "/healthz") == 0) {
        cs_buf_append_trunc(&b, "{\"status\":\"ok\"}", 15);
    } else {
        status = 404;
        cs_buf_append_trunc(&b, "not found\n", 10);
    }
    size_t len = 0;
    char *text = cs_buf_take(&b, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, text, cs_free);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct cs_metrics_server *cs_metrics_serve(const char *addr, int port,
                                           void (*render)(void *arg, struct cs_buf *b), void *arg)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return NULL;
    struct cs_metrics_server *s = cs_calloc(1, sizeof(*s));
    s->render = render;
    s->arg = arg;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, serve, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!s->d) {
        cs_free(s);
        return NULL;
    }
    cs_log(CS_LOG_INFO, "metrics", "serving /metrics on http://%s:%d", addr, port);
    return s;
}

void cs_metrics_server_stop(struct cs_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    cs_free(s);
}
