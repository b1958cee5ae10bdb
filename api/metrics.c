/*
 * metrics.c -- the api's /metrics (Prometheus text format).
 *
 * Requests by route and status with a latency histogram per route, the
 * long-poll waiters suspended right now, and -- read from Postgres at each
 * scrape -- approvals waiting by status and the event slot's lag. Execution
 * latency and throughput are measured where calls are made: on the
 * worker's own /metrics (CS_METRICS_PORT).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cs_events.h"
#include "cs_mem.h"
#include "cs_metrics.h"

#define CODES 6 /* 1xx..5xx by class, plus "other" */

struct api_metrics {
    int nroutes;
    const char *(*route_name)(int route); /* router.c's, handed in by main.c */
    atomic_uint_fast64_t *requests;       /* [route][status class] */
    struct cs_histogram *latency;         /* [route] */
};

bool metrics_event_slot(struct api *a, struct cs_db *db, struct metrics_slot *out)
{
    char name[CS_EVENTS_SLOT_MAX + 1], err[CS_ERRLEN];
    if (cs_events_slot_name(a->cfg, db->pg ? PQdb(db->pg) : NULL, name, err) != CS_OK)
        return false;
    const char *p[] = {name};
    PGresult *res = NULL;
    bool ok = cs_db_exec(db, CS_DB_Q(EVENT_SLOT_STATE, p), &res, err) == CS_OK;
    if (ok)
        *out = (struct metrics_slot){cs_db_bool(res, 0, CSC_EVENT_SLOT_STATE_SLOT_EXISTS),
                                     cs_db_bool(res, 0, CSC_EVENT_SLOT_STATE_ACTIVE),
                                     cs_db_int(res, 0, CSC_EVENT_SLOT_STATE_LAG_BYTES)};
    PQclear(res);
    return ok;
}

struct api_metrics *metrics_new(int nroutes, const char *(*route_name)(int route))
{
    struct api_metrics *m = cs_calloc(1, sizeof(*m));
    m->nroutes = nroutes;
    m->route_name = route_name;
    m->requests = cs_calloc((size_t)(m->nroutes * CODES), sizeof(*m->requests));
    m->latency = cs_calloc((size_t)m->nroutes, sizeof(*m->latency));
    return m;
}

void metrics_free(struct api_metrics *m)
{
    if (!m)
        return;
    cs_free(m->requests);
    cs_free(m->latency);
    cs_free(m);
}

void metrics_request(struct api_metrics *m, int route, unsigned status, int64_t micros)
{
    if (route < 0 || route >= m->nroutes)
        return;
    int cls = status >= 100 && status < 600 ? (int)status / 100 - 1 : CODES - 1;
    atomic_fetch_add(&m->requests[route * CODES + cls], 1);
    cs_histogram_observe_us(&m->latency[route], micros);
}

/* Per grant, the fleet's view (grant_states): each worker's /metrics has its own figures. */
static void grant_states(struct cs_buf *b, const PGresult *res)
{
    static const struct {
        const char *name, *help;
        int col;
    } fam[] = {
        {"countersign_grant_paused", "1 while an operator has paused the grant",
         CSC_GRANT_STATES_PAUSED},
        {"countersign_grant_throttled_until_seconds",
         "unix time until which the provider throttled the grant (429/503), 0 when not",
         CSC_GRANT_STATES_THROTTLED_UNTIL_S},
        {"countersign_grant_queued",
         "calls approved and waiting to start (limits, throttle, "
         "pause or a retry time)",
         CSC_GRANT_STATES_QUEUED},
        {"countersign_grant_in_flight_leases",
         "calls in flight across the fleet (unexpired "
         "leases: what max_in_flight counts)",
         CSC_GRANT_STATES_IN_FLIGHT},
    };
    char labels[160];
    for (int f = 0; f < 4; f++) {
        cs_metrics_family(b, fam[f].name, "gauge", fam[f].help);
        for (int r = 0; r < PQntuples(res); r++) {
            snprintf(labels, sizeof(labels), "grant=\"%s\"",
                     cs_db_str(res, r, CSC_GRANT_STATES_GRANT_ID));
            cs_metrics_value(b, fam[f].name, labels, strtod(cs_db_str(res, r, fam[f].col), NULL));
        }
    }
}

enum MHD_Result metrics_reply(struct api *a, struct MHD_Connection *c, struct api_req *r,
                              struct api_db *d)
{
    static const char *const classes[CODES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    struct api_metrics *m = a->metrics;
    struct cs_buf b;
    char labels[128];
    cs_buf_init(&b, 1u << 20);
    cs_metrics_family(&b, "countersign_http_requests_total", "counter",
                      "HTTP requests answered, by route and status class");
    for (int i = 0; i < m->nroutes; i++)
        for (int k = 0; k < CODES; k++) {
            uint64_t n = atomic_load(&m->requests[i * CODES + k]);
            if (!n)
                continue;
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%s\"", m->route_name(i),
                     classes[k]);
            cs_metrics_value(&b, "countersign_http_requests_total", labels, (double)n);
        }
    cs_metrics_family(&b, "countersign_http_request_duration_seconds", "histogram",
                      "time from the request's first byte to its completion");
    for (int i = 0; i < m->nroutes; i++) {
        if (!atomic_load(&m->latency[i].count))
            continue;
        snprintf(labels, sizeof(labels), "route=\"%s\"", m->route_name(i));
        cs_metrics_histogram(&b, "countersign_http_request_duration_seconds", labels,
                             &m->latency[i]);
    }
    cs_metrics_family(&b, "countersign_longpoll_waiters", "gauge",
                      "connections suspended waiting for an outcome");
    cs_metrics_value(&b, "countersign_longpoll_waiters", NULL, waiters_count(a->waiters));

    PGresult *res = NULL;
    char err[CS_ERRLEN];
    if (cs_db_exec(d->db, CS_DB_Q0(QUEUE_DEPTHS), &res, err) == CS_OK) {
        static const char *const st[] = {"pending", "approved", "executing"};
        static const int col[] = {CSC_QUEUE_DEPTHS_PENDING, CSC_QUEUE_DEPTHS_APPROVED,
                                  CSC_QUEUE_DEPTHS_EXECUTING};
        cs_metrics_family(
            &b, "countersign_approvals", "gauge",
            "approvals not yet terminal, by status (approved = waiting for a worker)");
        for (int i = 0; i < 3; i++) {
            snprintf(labels, sizeof(labels), "status=\"%s\"", st[i]);
            cs_metrics_value(&b, "countersign_approvals", labels,
                             (double)cs_db_int(res, 0, col[i]));
        }
    }
    PQclear(res);
    struct metrics_slot slot;
    if (metrics_event_slot(a, d->db, &slot)) {
        cs_metrics_family(&b, "countersign_event_slot_active", "gauge",
                          "1 while a relay reads the event slot (0: events wait in the WAL)");
        cs_metrics_value(&b, "countersign_event_slot_active", NULL, slot.active);
        cs_metrics_family(&b, "countersign_event_slot_lag_bytes", "gauge",
                          "WAL the event slot holds back: events not yet confirmed published");
        cs_metrics_value(&b, "countersign_event_slot_lag_bytes", NULL, (double)slot.lag_bytes);
    }
    res = NULL;
    if (cs_db_exec(d->db, CS_DB_Q0(GRANT_STATES), &res, err) == CS_OK)
        grant_states(&b, res);
    PQclear(res);
    size_t len = 0;
    char *text = cs_buf_take(&b, &len);
    enum MHD_Result ret = reply_text(r, c, 200, "text/plain; version=0.0.4", text, len);
    cs_free(text);
    return ret;
}
