/*
 * ingest.c -- the worker's Kafka ingest: requests topic -> approvals.
 *
 * A consumer in the CS_KAFKA_GROUP group reads request envelopes
 * (cs_request.h), validates them, looks up agent and grant, evaluates the
 * policy and stores a batch of approvals in one statement
 * (cs_approval_insert). Invariants:
 *   - offsets are committed only after the Postgres commit and after every
 *     dead letter of the batch was acknowledged by the broker: a committed
 *     offset means the request is in Postgres (or in the dead-letter topic);
 *   - a repeated (agent, request_id) is a no-op (ON CONFLICT DO NOTHING);
 *   - a malformed or refused message goes to <prefix>.dlq with its reason
 *     code (cs_err_table) and never stops the consumer;
 *   - a Postgres or Kafka outage stalls the batch, which is retried as a
 *     whole with backoff: nothing is skipped.
 * It does not execute anything: approved rows are the executor's.
 */
#include <string.h>

#include "cs_approval.h"
#include "cs_batch.h"
#include "cs_catalog.h"
#include "cs_json.h"
#include "cs_kafka.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_process.h"
#include "worker.h"

struct ingest {
    const struct cs_config *cfg;
    struct worker_role *role;
    struct cs_db *db;
    rd_kafka_t *consumer;
    rd_kafka_t *dlq;
    struct cs_catalog *cat;
    unsigned char link_key[32];
    unsigned char batch_key[32];
    rd_kafka_message_t **msgs;    /* the current batch */
    int nmsgs;
    int64_t first_ms;             /* when the batch's first message was polled */
    atomic_int dlq_failed;        /* delivery reports of the current flush */
};

static void dlq_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct ingest *in = opaque;
    if (m->err)
        atomic_fetch_add(&in->dlq_failed, 1);
}

/* Builds and enqueues the dead letter for message m. */
static void dead_letter(struct ingest *in, const rd_kafka_message_t *m, enum cs_err rc,
                        const char *detail)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "reason", json_object_new_string(cs_err_code(rc)));
    json_object_object_add(o, "message", json_object_new_string(detail));
    json_object_object_add(o, "topic", json_object_new_string(rd_kafka_topic_name(m->rkt)));
    json_object_object_add(o, "partition", json_object_new_int(m->partition));
    json_object_object_add(o, "offset", json_object_new_int64(m->offset));
    char *b64 = cs_b64_encode(m->payload, m->payload ? m->len : 0, false);
    json_object_object_add(o, "original_b64", json_object_new_string(b64));
    cs_free(b64);
    size_t len = 0;
    const char *text = cs_json_text(o, &len);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(in->dlq, RD_KAFKA_V_TOPIC(in->cfg->topic_dlq),
                                  RD_KAFKA_V_KEY(m->key, m->key_len),
                                  RD_KAFKA_V_VALUE((void *)text, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(in->dlq, 100);
    if (e)
        atomic_fetch_add(&in->dlq_failed, 1);
    json_object_put(o);
    static struct cs_log_limit lim;
    unsigned suppressed = 0;
    if (cs_log_limit_allow(&lim, 5, &suppressed))
        cs_log(CS_LOG_WARN, "ingest", "dead-lettered %s[%d]@%lld: %s: %s (%u similar suppressed)",
               rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset, cs_err_code(rc),
               detail, suppressed);
}

/* One message of the current batch, parsed. */
struct item {
    int msg;                          /* index in in->msgs */
    struct cs_request rq;             /* kept until the row is stored */
    const struct cs_agent *agent;
    const struct cs_grant *grant;
    json_object *row;                 /* the approval row, NULL once refused */
    struct cs_seal seal;              /* count > 0: a seal message */
};

/*
 * Turns message m into an approval row (it->row) or a seal (it->seal), or
 * returns the refusal. Retriable errors (database) are returned as such.
 */
static enum cs_err admit(struct ingest *in, struct item *it, char *err)
{
    const rd_kafka_message_t *m = in->msgs[it->msg];
    json_object *obj = NULL;
    bool needs = true;
    enum cs_err rc;

    if (!m->payload || m->len == 0)
        return cs_err_set(err, CS_ERR_INVALID, "empty message");
    if (m->len > (size_t)in->cfg->request_max_bytes)
        return cs_err_set(err, CS_ERR_TOO_LARGE, "message larger than %lld bytes",
                          (long long)in->cfg->request_max_bytes);
    if ((rc = cs_json_parse(m->payload, m->len, &obj, err)))
        return rc;
    if (cs_batch_is_seal(obj)) {
        rc = cs_batch_seal_parse(obj, &it->seal, err);
        json_object_put(obj);
        if (!rc && !(rc = cs_catalog_agent(in->cat, in->db, it->seal.agent, &it->agent, err)))
            return CS_OK;
        it->seal.count = 0;
        return rc;
    }
    rc = cs_request_parse(obj, CS_REQ_ENVELOPE, (size_t)in->cfg->request_max_bytes, &it->rq, err);
    json_object_put(obj);
    if (rc)
        return rc;
    if (!(rc = cs_catalog_agent(in->cat, in->db, it->rq.agent, &it->agent, err)) &&
        !(rc = cs_catalog_grant(in->cat, in->db, it->rq.grant_id, &it->grant, err)) &&
        !(rc = cs_approval_check(&it->rq, it->agent, it->grant, &needs, err))) {
        char id[CS_UUID_STRLEN + 1], actor[96];
        int64_t expires_ms;
        snprintf(actor, sizeof(actor), "agent:%s", it->agent->name);
        it->row = cs_approval_row(&it->rq, it->agent, it->grant, needs || it->rq.batch_id,
                                  in->link_key, in->cfg->public_url, actor, id, &expires_ms);
    }
    return rc;
}

/* Batch members are admitted in (agent, batch) order so ingest consumers never deadlock. */
static int member_order(const void *a, const void *b)
{
    const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
    int c = strcmp(x->agent->id, y->agent->id);
    return c ? c : strcmp(x->rq.batch_id, y->rq.batch_id);
}

/* Reads up to CS_INGEST_BATCH messages, waiting at most the linger after the first. */
static void fill_batch(struct ingest *in)
{
    int64_t deadline = 0;
    while (in->nmsgs < in->cfg->ingest_batch && !atomic_load(&in->role->stop)) {
        int wait = 100;
        if (in->nmsgs > 0) {
            int64_t left = deadline - cs_now_ms();
            if (left <= 0)
                break;
            wait = (int)left;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(in->consumer, wait);
        if (!m) {
            if (in->nmsgs == 0)
                return; /* idle: let the caller check for a stop */
            continue;
        }
        if (m->err) {
            static struct cs_log_limit lim;
            if (cs_log_limit_allow(&lim, 10, NULL))
                cs_log(CS_LOG_WARN, "ingest", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (in->nmsgs == 0) {
            in->first_ms = cs_now_ms();
            deadline = in->first_ms + in->cfg->ingest_linger_ms;
        }
        in->msgs[in->nmsgs++] = m;
    }
}

/*
 * Stores items[0..n) (rows not yet refused) in one transaction: batch
 * members are admitted (locking their batches), rows inserted, complete
 * batches made decidable. Refusals go to the dead-letter topic; a
 * non-retriable failure of the whole is reported as such.
 */
static enum cs_err store(struct ingest *in, struct item **items, int n, int *stored, int *ndlq,
                         char *err)
{
    struct item **members = cs_calloc((size_t)(n ? n : 1), sizeof(*members));
    int nm = 0;
    for (int i = 0; i < n; i++)
        if (items[i]->row && items[i]->rq.batch_id)
            members[nm++] = items[i];
    qsort(members, (size_t)nm, sizeof(*members), member_order);
    struct cs_batch_tx *t = cs_batch_tx_new();
    json_object *rows = json_object_new_array();
    PGresult *res = NULL;
    enum cs_err rc = cs_db_begin(in->db, err);
    for (int i = 0; i < nm && !rc; i++) {
        char why[CS_ERRLEN];
        enum cs_err r = cs_batch_tx_admit(t, in->db, members[i]->row, &members[i]->rq,
                                          members[i]->agent, members[i]->grant, why);
        if (r && cs_err_info(r)->retriable) {
            rc = cs_err_set(err, r, "%s", why);
        } else if (r) {
            dead_letter(in, in->msgs[members[i]->msg], r, why);
            json_object_put(members[i]->row);
            members[i]->row = NULL;
            (*ndlq)++;
        }
    }
    for (int i = 0; i < n && !rc; i++)
        if (items[i]->row)
            json_object_array_add(rows, json_object_get(items[i]->row));
    if (!rc && json_object_array_length(rows) > 0)
        rc = cs_approval_insert(in->db, rows, &res, err);
    if (!rc)
        rc = cs_batch_tx_finish(t, in->db, res, in->batch_key, in->cfg->public_url,
                                "worker:ingest", err);
    if (!rc)
        rc = cs_db_commit(in->db, err);
    if (!rc && res)
        *stored += PQntuples(res);
    if (rc)
        cs_db_rollback(in->db);
    PQclear(res);
    json_object_put(rows);
    cs_batch_tx_free(t);
    cs_free(members);
    return rc;
}

/*
 * Processes the current batch until it is durable. Returns CS_OK when
 * every message is stored or dead-lettered; a retriable error otherwise.
 */
static enum cs_err process_batch(struct ingest *in, int *stored, int *dead, char *err)
{
    struct item *items = cs_calloc((size_t)in->nmsgs, sizeof(*items));
    struct item **todo = cs_calloc((size_t)in->nmsgs, sizeof(*todo));
    enum cs_err rc = CS_OK;
    int ndlq = 0, ntodo = 0;
    *stored = *dead = 0;
    cs_catalog_tick(in->cat);
    atomic_store(&in->dlq_failed, 0);
    for (int i = 0; i < in->nmsgs && !rc; i++) {
        char why[CS_ERRLEN];
        items[i].msg = i;
        enum cs_err r = admit(in, &items[i], why);
        if (r && cs_err_info(r)->retriable) {
            rc = cs_err_set(err, r, "%s", why);
        } else if (r) {
            dead_letter(in, in->msgs[i], r, why);
            json_object_put(items[i].row);
            items[i].row = NULL;
            ndlq++;
        } else if (items[i].row) {
            todo[ntodo++] = &items[i];
        }
    }
    if (!rc && ntodo > 0) {
        rc = store(in, todo, ntodo, stored, &ndlq, err);
        if (rc && !cs_err_info(rc)->retriable) {
            /* The database refused the whole for a row it cannot store: store the
             * rows one by one, so only the offending messages are dead-lettered. */
            cs_log(CS_LOG_WARN, "ingest", "batch refused (%s), storing row by row", err);
            rc = CS_OK;
            for (int i = 0; i < ntodo && !rc; i++) {
                char why[CS_ERRLEN];
                enum cs_err r = todo[i]->row ? store(in, &todo[i], 1, stored, &ndlq, why) : CS_OK;
                if (r && cs_err_info(r)->retriable) {
                    rc = cs_err_set(err, r, "%s", why);
                } else if (r) {
                    dead_letter(in, in->msgs[todo[i]->msg], r, why);
                    ndlq++;
                }
            }
        }
    }
    /* Seals after the members: whatever arrives in whichever order, the last piece wins. */
    for (int i = 0; i < in->nmsgs && !rc; i++) {
        if (items[i].seal.count <= 0)
            continue;
        char why[CS_ERRLEN];
        enum cs_err r = cs_batch_seal(in->db, items[i].agent->id, items[i].seal.batch_id,
                                      items[i].seal.count, in->batch_key, in->cfg->public_url,
                                      "worker:ingest", why);
        if (r && cs_err_info(r)->retriable) {
            rc = cs_err_set(err, r, "%s", why);
        } else if (r) {
            dead_letter(in, in->msgs[i], r, why);
            ndlq++;
        } else {
            (*stored)++;
        }
    }
    for (int i = 0; i < in->nmsgs; i++) {
        json_object_put(items[i].row);
        cs_request_free(&items[i].rq);
        cs_batch_seal_free(&items[i].seal);
    }
    cs_free(items);
    cs_free(todo);
    if (ndlq) {
        /* Wait for every dead letter to be acknowledged before offsets move. */
        if (rd_kafka_flush(in->dlq, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            atomic_load(&in->dlq_failed) > 0)
            rc = rc ? rc : cs_err_set(err, CS_ERR_KAFKA, "dead-letter topic unavailable");
    }
    *dead = ndlq;
    return rc;
}

static void commit_batch(struct ingest *in)
{
    for (int i = 0; i < in->nmsgs; i++) {
        rd_kafka_offset_store(in->msgs[i]->rkt, in->msgs[i]->partition, in->msgs[i]->offset);
        rd_kafka_message_destroy(in->msgs[i]);
    }
    in->nmsgs = 0;
    rd_kafka_resp_err_t e = rd_kafka_commit(in->consumer, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        /* The rows are stored; a lost commit only means redelivery, which
         * the (agent, request_id) key turns into a no-op. */
        static struct cs_log_limit lim;
        if (cs_log_limit_allow(&lim, 10, NULL))
            cs_log(CS_LOG_WARN, "ingest", "offset commit failed (will be redelivered): %s",
                   rd_kafka_err2str(e));
    }
}

static void run(struct ingest *in)
{
    char err[CS_ERRLEN];
    int delay = 100;
    while (!atomic_load(&in->role->stop)) {
        fill_batch(in);
        if (in->nmsgs == 0)
            continue;
        for (;;) {
            int stored = 0, dead = 0;
            enum cs_err rc = process_batch(in, &stored, &dead, err);
            if (!rc) {
                struct worker_metrics *wm = in->role->m;
                atomic_fetch_add(&wm->ingested, (uint_fast64_t)stored);
                atomic_fetch_add(&wm->dead_lettered, (uint_fast64_t)dead);
                atomic_fetch_add(&wm->duplicates, (uint_fast64_t)(in->nmsgs - stored - dead));
                cs_log(CS_LOG_DEBUG, "ingest", "batch of %d: %d stored, %d duplicate, %d dead-lettered",
                       in->nmsgs, stored, in->nmsgs - stored - dead, dead);
                commit_batch(in);
                cs_histogram_observe_us(&in->role->m->ingest_batch,
                                        (cs_now_ms() - in->first_ms) * 1000);
                delay = 100;
                break;
            }
            static struct cs_log_limit lim;
            if (cs_log_limit_allow(&lim, 10, NULL))
                cs_log(CS_LOG_WARN, "ingest", "batch of %d not stored, retrying: %s: %s",
                       in->nmsgs, cs_err_code(rc), err);
            if (rc == CS_ERR_DB && !cs_db_connected(in->db) &&
                cs_db_reconnect(in->db, &in->role->stop, err) != CS_OK)
                break;
            if (atomic_load(&in->role->stop))
                break; /* offsets not committed: the batch will be redelivered */
            worker_sleep(in->role, delay);
            delay = delay * 2 > 5000 ? 5000 : delay * 2;
        }
    }
}

void *ingest_main(void *arg)
{
    struct worker_role *role = arg;
    struct ingest in = {.cfg = role->cfg, .role = role};
    char err[CS_ERRLEN], client[200];
    snprintf(client, sizeof(client), "countersign-ingest-%s", role->cfg->instance_id);
    cs_link_key(role->cfg->master_key, in.link_key);
    cs_key_derive(role->cfg->master_key, CS_BATCH_LINK_PURPOSE, in.batch_key);
    in.msgs = cs_calloc((size_t)role->cfg->ingest_batch, sizeof(*in.msgs));
    in.cat = cs_catalog_new(role->cfg->catalog_ttl_ms);
    if (cs_process_db(role->cfg, "countersign-ingest", &role->stop, &in.db, err) != CS_OK ||
        !(in.dlq = cs_kafka_producer(role->cfg, client, dlq_report, &in, err)) ||
        !(in.consumer = cs_kafka_consumer(role->cfg, client, role->cfg->kafka_group, err))) {
        if (!atomic_load(&role->stop)) {
            cs_log(CS_LOG_ERROR, "ingest", "cannot start: %s", err);
            role->status = 1;
        }
        goto out;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, role->cfg->topic_requests, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(in.consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        cs_log(CS_LOG_ERROR, "ingest", "cannot subscribe to %s: %s", role->cfg->topic_requests,
               rd_kafka_err2str(e));
        role->status = 1;
        goto out;
    }
    cs_log(CS_LOG_INFO, "ingest", "consuming %s as group %s", role->cfg->topic_requests,
           role->cfg->kafka_group);
    run(&in);
out:
    for (int i = 0; i < in.nmsgs; i++)
        rd_kafka_message_destroy(in.msgs[i]);
    if (in.consumer) {
        rd_kafka_consumer_close(in.consumer);
        rd_kafka_destroy(in.consumer);
    }
    if (in.dlq) {
        rd_kafka_flush(in.dlq, 5000);
        rd_kafka_destroy(in.dlq);
    }
    cs_catalog_free(in.cat);
    cs_db_close(in.db);
    cs_free(in.msgs);
    cs_wipe(in.link_key, sizeof(in.link_key));
    cs_wipe(in.batch_key, sizeof(in.batch_key));
    atomic_store(&role->done, 1);
    return NULL;
}
