/*
 * relay.c -- the worker's event relay: logical decoding messages -> Kafka.
 *
 * Every transition emits its events into the WAL (cs_emit, migration 014),
 * most as records the relay renders as JSON (cs_eventrec, migration 016),
 * a statement's events as one message per topic that the relay splits
 * (cs_emit_all, migration 020).
 * The relay reads them in commit order over a logical replication
 * connection to the event slot (pgoutput with messages 'true') and
 * publishes each to <prefix>.events or <prefix>.results, keyed as emitted,
 * through an idempotent producer. It confirms the slot's position only up
 * to the end of the last transaction whose every message the broker
 * acknowledged: a broker outage delays publishing and loses nothing, and a
 * crash between the acknowledgement and the confirmation republishes from
 * the confirmed position (at least once; consumers deduplicate on the
 * payload's event_id, which is the same bytes again). A payload over the
 * topics' message limit as the broker reports it is published cut to fit
 * (cs_msgfit_event: body_b64 a prefix, body_cut says so; the whole body
 * stays available through the API); one the broker refuses for good is
 * counted, logged and skipped, never retried forever.
 *
 * One relay reads at a time, because Postgres lets one connection use a
 * slot: whoever holds the slot leads, the others retry every STANDBY_MS and
 * take over once the holder's connection ends.
 */
#include <poll.h>
#include <string.h>

#include "cs_eventrec.h"
#include "cs_events.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_msgfit.h"
#include "cs_time.h"
#include "cs_wal.h"
#include "worker.h"

#define STANDBY_MS 2000
#define STATUS_MS 10000   /* standby status at least this often (wal_sender_timeout 60 s) */
#define STOP_QUIET_MS 100 /* at a stop: publish until the stream is this long quiet ... */
#define STOP_MAX_MS 2000  /* ... or this long has passed */

struct relay {
    const struct cs_config *cfg;
    struct worker_role *role;
    PGconn *pg; /* replication connection, in COPY BOTH while leading */
    rd_kafka_t *rk;
    struct cs_kafka_limit limit; /* the events and results topics' message limit */
    char slot[CS_EVENTS_SLOT_MAX + 1];
    bool in_txn;           /* between a Begin and its Commit */
    uint64_t complete_lsn; /* end of the last transaction wholly handed to the broker */
    uint64_t confirmed;    /* the position the server was last told */
    int64_t status_due;    /* when the next standby status goes out (ms) */
    int produced;          /* handed to the broker since the last settle */
    atomic_int failed;     /* of those, not acknowledged (delivery reports) */
    uint64_t published, dropped;
    struct cs_log_limit skip_warn, stall_warn, cut_warn;
};

static void skipped(struct relay *r, const char *what, const char *why)
{
    r->dropped++;
    atomic_fetch_add(&r->role->m->publish_dropped, 1);
    unsigned suppressed = 0;
    if (cs_log_limit_allow(&r->skip_warn, 10, &suppressed))
        cs_log(CS_LOG_ERROR, "relay", "skipped %s: %s (%u similar suppressed)", what, why,
               suppressed);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct relay *r = opaque;
    (void)rk;
    if (!m->err)
        return;
    if (cs_kafka_err_permanent(m->err))
        skipped(r, "an event the broker refuses", rd_kafka_err2str(m->err));
    else
        atomic_fetch_add(&r->failed, 1);
}

static void close_stream(struct relay *r)
{
    PQfinish(r->pg);
    r->pg = NULL;
    r->in_txn = false;
}

/* Connects in replication mode and starts streaming the slot; CS_ERR_CONFLICT: another relay leads. */
static enum cs_err open_stream(struct relay *r, char *err)
{
    const char *kw[] = {"dbname", "replication", "fallback_application_name", NULL};
    const char *url = r->cfg->relay_pg_url ? r->cfg->relay_pg_url : r->cfg->pg_url;
    const char *val[] = {url, "database", "countersign-relay", NULL};
    r->pg = PQconnectdbParams(kw, val, 1);
    if (PQstatus(r->pg) != CONNECTION_OK) {
        cs_err_set(err, CS_ERR_DB, "replication connection: %s", PQerrorMessage(r->pg));
        close_stream(r);
        return CS_ERR_DB;
    }
    enum cs_err rc = cs_events_slot_name(r->cfg, PQdb(r->pg), r->slot, err);
    if (rc) {
        close_stream(r);
        return rc;
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', "
             "publication_names '%s', messages 'true')",
             r->slot, CS_EVENTS_PUBLICATION);
    PGresult *res = PQexec(r->pg, cmd);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        rc = state && strcmp(state, "55006") == 0 ? CS_ERR_CONFLICT : CS_ERR_DB;
        cs_err_set(err, rc, "slot %s: %s", r->slot, PQresultErrorMessage(res));
        PQclear(res);
        close_stream(r);
        return rc;
    }
    PQclear(res);
    r->complete_lsn = r->confirmed = 0;
    r->status_due = 0;
    return CS_OK;
}

static enum cs_err send_status(struct relay *r, char *err)
{
    unsigned char msg[CS_WAL_STATUS_LEN];
    cs_wal_status(msg, r->complete_lsn, cs_now_ms() * 1000);
    if (PQputCopyData(r->pg, (const char *)msg, sizeof(msg)) != 1 || PQflush(r->pg) != 0)
        return cs_err_set(err, CS_ERR_DB, "standby status: %s", PQerrorMessage(r->pg));
    r->confirmed = r->complete_lsn;
    r->status_due = cs_now_ms() + STATUS_MS;
    return CS_OK;
}

/*
 * Waits for the broker's reports of everything produced; then the position
 * reached is safe to confirm. Any message not acknowledged fails the round:
 * the caller reconnects and the slot replays from the confirmed position.
 */
static enum cs_err settle(struct relay *r, char *err)
{
    if (r->produced) {
        rd_kafka_flush(r->rk, 35000); /* > message.timeout.ms: every message gets its report */
        int failed = atomic_exchange(&r->failed, 0), queued = rd_kafka_outq_len(r->rk);
        int n = r->produced;
        r->produced = 0;
        if (failed || queued) {
            atomic_fetch_add(&r->role->m->publish_failures, (uint_fast64_t)(failed + queued));
            return cs_err_set(err, CS_ERR_KAFKA, "%d of %d events not acknowledged by the broker",
                              failed + queued, n);
        }
        r->published += (uint64_t)n;
        atomic_fetch_add(&r->role->m->published, (uint_fast64_t)n);
    }
    return r->complete_lsn > r->confirmed ? send_status(r, err) : CS_OK;
}

/* What to publish for payload[0..len) of m: NULL when it fits as it is, else
 * the cut version (cs_msgfit_event) the caller frees; *outlen set. */
static char *fit(struct relay *r, const struct cs_wal_msg *m, const char *payload, size_t len,
                 size_t *outlen)
{
    const char *topics[] = {r->cfg->topic_events, r->cfg->topic_results};
    int64_t limit = cs_kafka_limit_get(&r->limit, r->rk, topics, 2);
    char *cut = cs_msgfit_event(payload, len, m->key_len, (size_t)limit, outlen);
    if (!cut) {
        *outlen = len;
        return NULL;
    }
    atomic_fetch_add(&r->role->m->publish_cut, 1);
    unsigned suppressed = 0;
    if (cs_log_limit_allow(&r->cut_warn, 5, &suppressed))
        cs_log(CS_LOG_WARN, "relay",
               "event of %.*s is %zu bytes, over the topic's limit of %lld: "
               "published cut to %zu bytes (%u similar suppressed)",
               (int)(m->key_len > 64 ? 64 : m->key_len), m->key, len, (long long)limit, *outlen,
               suppressed);
    return cut;
}

static void produce(struct relay *r, const struct cs_wal_msg *m)
{
    const char *topic = m->topic_len == 7 ? r->cfg->topic_results : r->cfg->topic_events;
    const char *payload = m->payload;
    size_t len = m->payload_len, vlen = 0;
    char *json = NULL, err[CS_ERRLEN];
    /* A record (migration 016) becomes the event's JSON here, off the transaction's path. */
    if (cs_eventrec_is(payload, len)) {
        if (cs_eventrec_render(payload, len, &json, &len, err) != CS_OK) {
            skipped(r, "an event record", err);
            return;
        }
        payload = json;
    }
    char *cut = fit(r, m, payload, len, &vlen);
    rd_kafka_resp_err_t e;
    while (
        (e = rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                               RD_KAFKA_V_VALUE(cut ? cut : (void *)payload, vlen),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
        RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(r->rk, 50);
    cs_free(cut);
    cs_free(json);
    if (!e)
        r->produced++;
    else if (cs_kafka_err_permanent(e))
        skipped(r, "an event the producer refuses", rd_kafka_err2str(e));
    else {
        r->produced++;
        atomic_fetch_add(&r->failed, 1);
    }
}

/* One message of the stream. */
static void take(struct relay *r, const char *buf, size_t len)
{
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    if (cs_wal_decode(buf, len, &m, err) != CS_OK) {
        skipped(r, "a replication message", err);
        return;
    }
    switch (m.kind) {
    case CS_WAL_BEGIN: r->in_txn = true; break;
    case CS_WAL_MESSAGE: produce(r, &m); break;
    case CS_WAL_BATCH:
        for (size_t pos = 0; pos < m.payload_len;) {
            struct cs_wal_msg one;
            if (cs_wal_entry(&m, &pos, &one, err) != CS_OK) {
                skipped(r, "the rest of an event batch", err);
                break;
            }
            produce(r, &one);
        }
        break;
    case CS_WAL_COMMIT:
        r->in_txn = false;
        r->complete_lsn = m.end_lsn;
        break;
    case CS_WAL_KEEPALIVE:
        /* Nothing in flight and between transactions: all before the server's position is done. */
        if (!r->in_txn && !r->produced && m.end_lsn > r->complete_lsn)
            r->complete_lsn = m.end_lsn;
        if (m.reply_requested)
            r->status_due = 0;
        break;
    case CS_WAL_OTHER: break;
    }
}

/* Waits at most ms for the stream's socket (and, unless stopping, the stop pipe). */
static enum cs_err wait_stream(struct relay *r, int ms, bool stopping, bool *quiet, char *err)
{
    struct pollfd p[2] = {{.fd = PQsocket(r->pg), .events = POLLIN},
                          {.fd = r->role->wake[0], .events = POLLIN}};
    int n = poll(p, stopping ? 1 : 2, ms < 0 ? 0 : ms);
    *quiet = n <= 0;
    if (n > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(r->pg))
        return cs_err_set(err, CS_ERR_DB, "replication stream: %s", PQerrorMessage(r->pg));
    return CS_OK;
}

/*
 * Streams until a stop or an error. At a stop it goes on publishing what is
 * already on its way (the outcomes the other roles recorded while stopping)
 * until the stream is STOP_QUIET_MS quiet, at most STOP_MAX_MS.
 */
static enum cs_err stream(struct relay *r, char *err)
{
    int64_t stop_at = 0;
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(r->pg, &buf, 1);
        if (n > 0) {
            take(r, buf, (size_t)n);
            PQfreemem(buf);
            enum cs_err rc = r->produced >= r->cfg->relay_batch ? settle(r, err) : CS_OK;
            if (rc)
                return rc;
            continue;
        }
        if (n < 0) {
            PGresult *res = PQgetResult(r->pg);
            cs_err_set(err, CS_ERR_DB, "replication stream ended: %s",
                       res ? PQresultErrorMessage(res) : PQerrorMessage(r->pg));
            PQclear(res);
            return CS_ERR_DB;
        }
        /* Nothing buffered: what was read is published before waiting. */
        enum cs_err rc = settle(r, err);
        if (!rc && cs_now_ms() >= r->status_due)
            rc = send_status(r, err);
        if (rc)
            return rc;
        int64_t now = cs_now_ms();
        if (!stop_at && atomic_load(&r->role->stop))
            stop_at = now;
        if (stop_at && now - stop_at >= STOP_MAX_MS)
            return CS_OK;
        bool quiet = false;
        rc = wait_stream(r, stop_at ? STOP_QUIET_MS : (int)(r->status_due - now), stop_at != 0,
                         &quiet, err);
        if (rc || (stop_at && quiet))
            return rc;
    }
}

static void run(struct relay *r)
{
    char err[CS_ERRLEN];
    struct cs_backoff stalled = CS_BACKOFF;
    bool standing_by = false;
    while (!atomic_load(&r->role->stop)) {
        enum cs_err rc = open_stream(r, err);
        if (rc == CS_ERR_CONFLICT) {
            if (!standing_by)
                cs_log(CS_LOG_INFO, "relay", "standing by: %s", err);
            standing_by = true;
            worker_sleep(r->role, STANDBY_MS);
            continue;
        }
        if (!rc) {
            cs_log(CS_LOG_INFO, "relay", "active: publishing the events of slot %s", r->slot);
            standing_by = false;
            cs_backoff_reset(&stalled);
            rc = stream(r, err);
            close_stream(r);
            if (!rc)
                break; /* stopped */
        }
        unsigned suppressed = 0;
        if (cs_log_limit_allow(&r->stall_warn, 10, &suppressed))
            cs_log(CS_LOG_WARN, "relay",
                   "publishing stalled, retrying from the confirmed "
                   "position: %s (%u similar suppressed)",
                   err, suppressed);
        worker_sleep(r->role, cs_backoff_next(&stalled));
    }
}

void *relay_main(void *arg)
{
    struct worker_role *role = arg;
    struct relay r = {.cfg = role->cfg, .role = role};
    char err[CS_ERRLEN], client[200];
    snprintf(client, sizeof(client), "countersign-relay-%s", role->cfg->instance_id);
    if (!(r.rk = cs_kafka_producer(role->cfg, client, on_delivery, &r, err))) {
        cs_log(CS_LOG_ERROR, "relay", "cannot start: %s", err);
        role->status = 1;
    } else {
        worker_ready(role); /* leading or standing by, it relays once it may */
        run(&r);
        cs_log(CS_LOG_INFO, "relay", "stopped: %llu events published, %llu skipped",
               (unsigned long long)r.published, (unsigned long long)r.dropped);
        rd_kafka_flush(r.rk, 5000);
        rd_kafka_destroy(r.rk);
    }
    close_stream(&r);
    atomic_store(&role->done, 1);
    return NULL;
}
