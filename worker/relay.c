/*
 * relay.c -- the worker's outbox relay: outbox rows -> Kafka.
 *
 * Publishes every transition event to <prefix>.events and every terminal
 * outcome to <prefix>.results, keyed by approval id, through an idempotent
 * producer. A row is deleted only after the broker acknowledged it, so a
 * broker outage delays publishing and loses nothing; a crash between the
 * acknowledgement and the delete republishes (at least once: consumers
 * deduplicate on the payload's event_id).
 *
 * A payload over the topics' message limit as the broker reports it is
 * published cut to fit (cs_msgfit_event: body_b64 a prefix, body_cut says
 * so; the stored body stays whole behind the API). A message the broker
 * refuses for good (its size or form) is counted, logged and deleted: one
 * unpublishable row never stops the others; only an outage stalls.
 *
 * One relay is active at a time (a session advisory lock, CS_LOCK_RELAY),
 * so events leave in outbox order; the others stand by and take over when
 * the holder's connection ends. Woken by LISTEN cs_outbox.
 */
#include <poll.h>
#include <string.h>

#include "cs_buf.h"
#include "cs_db.h"
#include "cs_kafka.h"
#include "cs_leader.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_msgfit.h"
#include "cs_process.h"
#include "worker.h"

#define STANDBY_MS 2000

struct relay {
    const struct cs_config *cfg;
    struct worker_role *role;
    struct cs_db *db;
    rd_kafka_t *rk;
    struct cs_kafka_limit limit;     /* the events and results topics' message limit */
    struct cs_leader leader;         /* one relay publishes at a time (CS_LOCK_RELAY) */
    bool wake;
    char *acked;          /* per row of the current round: 1 delivered, 2 refused for good */
    int nacked_fail;
    uint64_t published;
};

/* outbox_fetch columns */
enum { O_ID, O_TOPIC, O_KEY, O_PAYLOAD };

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct relay *r = opaque;
    (void)rk;
    intptr_t row = (intptr_t)m->_private;
    if (m->err && cs_kafka_err_permanent(m->err))
        r->acked[row] = 2;
    else if (m->err)
        r->nacked_fail++;
    else
        r->acked[row] = 1;
}

/*
 * What to publish for payload val under key: NULL when it fits as it is,
 * else the cut version (cs_msgfit_event) the caller frees; *len set.
 */
static char *fit(struct relay *r, const char *key, const char *val, size_t *len)
{
    const char *topics[] = {r->cfg->topic_events, r->cfg->topic_results};
    int64_t limit = cs_kafka_limit_get(&r->limit, r->rk, topics, 2);
    size_t cutlen = 0;
    char *cut = cs_msgfit_event(val, strlen(val), strlen(key), (size_t)limit, &cutlen);
    *len = cut ? cutlen : strlen(val);
    if (cut) {
        atomic_fetch_add(&r->role->m->publish_cut, 1);
        static struct cs_log_limit lim;
        unsigned suppressed = 0;
        if (cs_log_limit_allow(&lim, 5, &suppressed))
            cs_log(CS_LOG_WARN, "relay", "event of %.64s is %zu bytes, over the topic's limit of "
                   "%lld: published cut to %zu bytes (%u similar suppressed)", key, strlen(val),
                   (long long)limit, cutlen, suppressed);
    }
    return cut;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct relay *r = arg;
    (void)channel;
    (void)payload;
    r->wake = true;
}

/* Publishes one round; *n is how many rows it fetched. */
static enum cs_err round_once(struct relay *r, int *n, char *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%lld", (long long)r->cfg->relay_batch);
    const char *p[] = {lim};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(r->db, CSQ_OUTBOX_FETCH, 1, p, &res, err);
    if (rc)
        return rc;
    *n = PQntuples(res);
    if (*n == 0) {
        PQclear(res);
        return CS_OK;
    }
    r->acked = cs_calloc((size_t)*n, 1);
    r->nacked_fail = 0;
    for (int i = 0; i < *n; i++) {
        const char *topic = strcmp(cs_db_str(res, i, O_TOPIC), "results") == 0
                                ? r->cfg->topic_results : r->cfg->topic_events;
        const char *key = cs_db_str(res, i, O_KEY), *val = cs_db_str(res, i, O_PAYLOAD);
        size_t vlen = 0;
        char *cut = fit(r, key, val, &vlen);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(cut ? cut : (void *)val, vlen),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
                                      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(r->rk, 50);
        cs_free(cut);
        if (e && cs_kafka_err_permanent(e))
            r->acked[i] = 2;
        else if (e)
            r->nacked_fail++;
    }
    rd_kafka_flush(r->rk, 35000); /* > message.timeout.ms: every message gets its report */
    struct cs_buf ids;
    cs_buf_init(&ids, (size_t)*n * 24 + 8);
    int acked = 0, dropped = 0;
    enum cs_err brc = cs_buf_puts(&ids, "{");
    for (int i = 0; i < *n && !brc; i++) {
        if (r->acked[i] == 2) {
            dropped++;
            cs_log(CS_LOG_ERROR, "relay", "event %s (key %.64s) refused by the broker for good: "
                   "deleted unpublished", cs_db_str(res, i, O_ID), cs_db_str(res, i, O_KEY));
        }
        if (r->acked[i])
            brc = cs_buf_printf(&ids, "%s%s", acked++ ? "," : "", cs_db_str(res, i, O_ID));
    }
    if (!brc)
        brc = cs_buf_puts(&ids, "}");
    cs_assert(brc == CS_OK);
    PQclear(res);
    if (acked) {
        const char *dp[] = {ids.data};
        rc = cs_db_exec(r->db, CSQ_OUTBOX_DELETE, 1, dp, NULL, err);
        if (!rc) {
            r->published += (uint64_t)(acked - dropped);
            atomic_fetch_add(&r->role->m->published, (uint_fast64_t)(acked - dropped));
            atomic_fetch_add(&r->role->m->publish_dropped, (uint_fast64_t)dropped);
        }
    }
    cs_buf_free(&ids);
    cs_free(r->acked);
    r->acked = NULL;
    if (acked < *n)
        atomic_fetch_add(&r->role->m->publish_failures, (uint_fast64_t)(*n - acked));
    if (!rc && acked < *n)
        rc = cs_err_set(err, CS_ERR_KAFKA, "%d of %d events not acknowledged by the broker",
                        *n - acked, *n);
    return rc;
}

static void run(struct relay *r)
{
    char err[CS_ERRLEN];
    struct cs_backoff stalled = CS_BACKOFF;
    /* After a stop request: one last drain so outcomes recorded at shutdown leave too. */
    for (bool last = false; !last;) {
        last = atomic_load(&r->role->stop);
        if (!cs_db_connected(r->db)) {
            cs_leader_hold(&r->leader); /* gives the lead up */
            if (cs_db_reconnect(r->db, &r->role->stop, err) != CS_OK)
                break;
        }
        if (!cs_leader_hold(&r->leader)) {
            worker_sleep(r->role, STANDBY_MS);
            continue;
        }
        int n = 0;
        enum cs_err rc = round_once(r, &n, err);
        if (rc) {
            static struct cs_log_limit lim;
            unsigned suppressed = 0;
            if (cs_log_limit_allow(&lim, 10, &suppressed))
                cs_log(CS_LOG_WARN, "relay", "publishing stalled, retrying: %s (%u similar "
                       "suppressed)", err, suppressed);
            if (last)
                break;
            worker_sleep(r->role, cs_backoff_next(&stalled));
            continue;
        }
        cs_backoff_reset(&stalled);
        if (n == r->cfg->relay_batch && !last)
            continue; /* a backlog: keep going */
        if (last)
            break;
        /* Idle: wait for a NOTIFY cs_outbox, a stop, or the fallback poll. */
        r->wake = false;
        worker_wait(r->role, r->db, (int)r->cfg->poll_interval_ms, on_notify, r);
    }
}

void *relay_main(void *arg)
{
    struct worker_role *role = arg;
    struct relay r = {.cfg = role->cfg, .role = role};
    char err[CS_ERRLEN], client[200];
    snprintf(client, sizeof(client), "countersign-relay-%s", role->cfg->instance_id);
    bool ok = cs_process_db(role->cfg, "countersign-relay", &role->stop, &r.db, err) == CS_OK;
    r.leader = (struct cs_leader){r.db, CS_LOCK_RELAY, "relay", "active: publishing the outbox",
                                  false};
    if (!ok || cs_db_listen(r.db, CSQ_LISTEN_OUTBOX, err) != CS_OK ||
        !(r.rk = cs_kafka_producer(role->cfg, client, on_delivery, &r, err))) {
        if (!atomic_load(&role->stop)) {
            cs_log(CS_LOG_ERROR, "relay", "cannot start: %s", err);
            role->status = 1;
        }
    } else {
        run(&r);
        cs_log(CS_LOG_INFO, "relay", "stopped: %llu events published",
               (unsigned long long)r.published);
    }
    if (r.rk) {
        rd_kafka_flush(r.rk, 5000);
        rd_kafka_destroy(r.rk);
    }
    cs_db_close(r.db);
    atomic_store(&role->done, 1);
    return NULL;
}
