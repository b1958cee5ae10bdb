/*
 * ingest.c -- the worker's Kafka ingest: requests topic -> approvals.
 *
 * A consumer in the CS_KAFKA_GROUP group reads request envelopes
 * (cs_request.h), validates them, looks up agent and grant, evaluates the
 * policy and stores a batch of approvals in one statement
 * (cs_approval_insert_text; rows are written as JSON text into a buffer
 * reused from batch to batch). Invariants:
 *   - offsets are committed only after the Postgres commit and after every
 *     dead letter of the batch was acknowledged by the broker: a committed
 *     offset means the request is in Postgres (or in the dead-letter topic);
 *   - a repeated (agent, request_id) is a no-op (ON CONFLICT DO NOTHING);
 *   - every message is authenticated before it is parsed: its
 *     countersign-signature header (cs_envsig.h) names a live signing key,
 *     its MAC verifies, its time lies within the replay window of the
 *     broker's append time (or this worker's clock), and the envelope's
 *     agent owns the key; otherwise it is a dead letter `unauthenticated`
 *     saying which check failed (unsigned ones are accepted only with
 *     CS_KAFKA_ALLOW_UNSIGNED, announced at start);
 *   - a malformed or refused message goes to <prefix>.dlq with its reason
 *     code (cs_err_table) and never stops the consumer: its dead letter is
 *     made to fit the topic's limit as the broker reports it (cs_msgfit.h:
 *     the original whole when it fits, else a prefix with its size and
 *     SHA-256), and a dead letter the broker refuses for good (its size or
 *     form) is counted, logged and skipped; only an outage stalls;
 *   - a Postgres or Kafka outage stalls the batch, which is retried as a
 *     whole with backoff: nothing is skipped.
 * Pipelining: while the insert of a batch of plain rows runs in Postgres
 * (sent with cs_db_send inside the batch's transaction), the next batch is
 * polled and admitted from the catalog cache alone; its rows wait in their
 * own buffer. Batches still complete strictly one after the other: the
 * first is committed and its dead letters acknowledged before its offsets
 * are stored and committed (asynchronously: a lost commit only means
 * redelivery), and only then does the next one reach the database.
 * Waiting: for a message, the thread sleeps in poll() on the consumer
 * queue's event pipe (librdkafka writes to it when the queue stops being
 * empty) and the role's stop pipe, like the other roles (worker_wait), so
 * a stop ends an idle wait at once.
 * It does not execute anything: approved rows are the executor's.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs_approval.h"
#include "cs_batch.h"
#include "cs_catalog.h"
#include "cs_json.h"
#include "cs_kafka.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_msgfit.h"
#include "cs_process.h"
#include "worker.h"

/* Row buffers larger than this are freed after their batch, not kept. */
#define ROWS_KEEP ((size_t)16 << 20)

/* The longest idle wait before looking at the consumer again (a safety net). */
#define IDLE_WAIT_MS 1000

/* One message of a batch, parsed. */
struct item {
    int msg;              /* index in the batch's msgs */
    struct cs_request rq; /* kept until the row is stored */
    const struct cs_agent *agent;
    const struct cs_grant *grant;
    bool needs; /* the policy asks for approval (or a batch member) */
    bool row;   /* has an approval row to store; false once refused */
    /* the row's text: in the batch's rows, a member's in in->members (written once its
     * batch admitted it) */
    size_t off, len;
    bool member;         /* a batch member (its row is written by store()) */
    struct cs_seal seal; /* count > 0: a seal message */
};

/*
 * A batch of messages and what became of them. There are two: the one
 * being stored and the next, admitted while the first one's insert runs.
 */
struct batch {
    rd_kafka_message_t **msgs; /* CS_INGEST_BATCH slots */
    int nmsgs;
    int64_t first_ms;   /* when its first message was polled */
    struct item *items; /* one per message (CS_INGEST_BATCH slots) */
    struct item **todo; /* the rows to store, in message order */
    int ntodo;
    int admitted; /* items[0..admitted) went through admission */
    int stored, ndlq;
    atomic_int dlq_failed;  /* its dead letters the broker did not take (yet) */
    atomic_int dlq_dropped; /* ... and never will (their size or form): skipped */
    json_object *dead;      /* its dead letters for the console (NULL: none) */
    struct cs_buf rows;     /* its rows as JSON text */
};

struct ingest {
    const struct cs_config *cfg;
    struct worker_role *role;
    struct cs_db *db;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *cq; /* the consumer's queue: serves commit results */
    int events[2];        /* cq's event pipe: readable when cq has something */
    rd_kafka_t *dlq;
    struct cs_kafka_limit dlq_limit; /* the dead-letter topic's message limit */
    struct cs_catalog *cat;
    struct cs_link_keys keys; /* approval_url and batch page links */
    struct batch b[2];
    struct cs_buf param;   /* the JSON array one insert takes (reused) */
    struct cs_buf members; /* the batch members' rows of one store() (reused) */
};

/* Delivery report of a dead letter: its batch is the message's opaque. */
static void dlq_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct batch *b = m->_private;
    if (!m->err || !b)
        return;
    if (cs_kafka_err_permanent(m->err)) {
        atomic_fetch_add(&b->dlq_dropped, 1);
        dead_letter_dropped(m->key, m->key_len, m->err);
    } else {
        atomic_fetch_add(&b->dlq_failed, 1);
    }
}

/* Records the dead letter of m in b->dead, stored for the console once the broker has it. */
static void dead_record(struct batch *b, const rd_kafka_message_t *m, enum cs_err rc,
                        const char *detail)
{
    if (!b->dead)
        b->dead = json_object_new_array();
    json_object_array_add(b->dead, dead_letter_record(m, rc, detail));
}

/*
 * Builds and enqueues the dead letter for message m of batch b, fitted to
 * the dead-letter topic's limit; keyed like the original, or by the
 * original key's SHA-256 when that key alone is over 1 KB.
 */
static void dead_letter(struct ingest *in, struct batch *b, const rd_kafka_message_t *m,
                        enum cs_err rc, const char *detail)
{
    json_object *o = dead_letter_fields(m, rc, detail);
    char hashed[DEAD_LETTER_KEY_MAX];
    size_t key_len = 0;
    const void *key = dead_letter_key(m, hashed, &key_len);
    const char *topic = in->cfg->topic_dlq;
    int64_t limit = cs_kafka_limit_get(&in->dlq_limit, in->dlq, &topic, 1);
    size_t len = 0;
    char *text =
        cs_msgfit_dead_letter(o, m->payload, m->payload ? m->len : 0, key_len, (size_t)limit, &len);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(in->dlq, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                  RD_KAFKA_V_VALUE(text, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(b),
                                  RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(in->dlq, 100);
    if (e && cs_kafka_err_permanent(e)) {
        atomic_fetch_add(&b->dlq_dropped, 1);
        dead_letter_dropped(key, key_len, e);
    } else if (e) {
        atomic_fetch_add(&b->dlq_failed, 1);
    }
    b->ndlq++;
    dead_record(b, m, rc, detail);
    cs_free(text);
    json_object_put(o);
    static struct cs_log_limit lim;
    unsigned suppressed = 0;
    if (cs_log_limit_allow(&lim, 5, &suppressed))
        cs_log(CS_LOG_WARN, "ingest", "dead-lettered %s[%d]@%lld: %s: %s (%u similar suppressed)",
               rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset, cs_err_code(rc),
               detail, suppressed);
}

/* ---- admission ---- */

/*
 * Checks message m and turns it into a request to store (it->rq, agent,
 * grant, needs; write_row writes the row) or a seal (it->seal), or returns
 * the refusal. Catalog lookups use db; with db NULL they answer from the
 * cache only. Retriable errors (database) are returned as such.
 */
static enum cs_err admit(struct ingest *in, const rd_kafka_message_t *m, struct cs_db *db,
                         struct item *it, char *err)
{
    json_object *obj = NULL;
    const struct cs_signing_key *key = NULL;
    bool needs = true;
    enum cs_err rc;

    if (m->payload && m->len > (size_t)in->cfg->request_max_bytes)
        return cs_err_set(err, CS_ERR_TOO_LARGE, "message larger than %lld bytes",
                          (long long)in->cfg->request_max_bytes);
    if ((rc = signature_check(in->cfg, in->cat, m, db, &key, err)))
        return rc;
    if (!m->payload || m->len == 0)
        return cs_err_set(err, CS_ERR_INVALID, "empty message");
    if ((rc = cs_json_parse(m->payload, m->len, &obj, err)))
        return rc;
    if (cs_batch_is_seal(obj)) {
        rc = cs_batch_seal_parse(obj, &it->seal, err);
        json_object_put(obj);
        if (!rc && !(rc = signature_owner(key, it->seal.agent, err)) &&
            !(rc = cs_catalog_agent(in->cat, db, it->seal.agent, &it->agent, err)))
            return CS_OK;
        it->seal.count = 0;
        return rc;
    }
    rc = cs_request_parse(obj, CS_REQ_ENVELOPE, (size_t)in->cfg->request_max_bytes, &it->rq, err);
    json_object_put(obj);
    if (rc)
        return rc;
    if (!(rc = signature_owner(key, it->rq.agent, err)) &&
        !(rc = cs_catalog_agent(in->cat, db, it->rq.agent, &it->agent, err)) &&
        !(rc = cs_catalog_grant(in->cat, db, it->rq.grant_id, &it->grant, err)) &&
        !(rc = cs_approval_check(&it->rq, it->agent, it->grant, &needs, err)))
        it->needs = needs || it->rq.batch_id; /* a batch member waits for the batch decision */
    return rc;
}

/*
 * Writes the approval row of item it at the end of rows (member_expires_ms: a batch
 * member's window, from its batch). CS_ERR_TOO_LARGE when rows is full.
 */
static enum cs_err row_text(struct ingest *in, struct cs_buf *rows, struct item *it,
                            int64_t member_expires_ms, char *err)
{
    char id[CS_UUID_STRLEN + 1], actor[96];
    int64_t expires_ms;
    snprintf(actor, sizeof(actor), "agent:%s", it->agent->name);
    it->off = rows->len;
    if (cs_approval_row_write(rows, &it->rq, it->agent, it->grant, it->needs, member_expires_ms,
                              &in->keys, in->cfg->public_url, actor, id, &expires_ms) != CS_OK)
        return cs_err_set(err, CS_ERR_TOO_LARGE,
                          "the approval rows exceed %zu bytes for one insert",
                          (size_t)CS_APPROVAL_ROWS_MAX);
    it->len = rows->len - it->off;
    return CS_OK;
}

/*
 * Writes the approval row of an admitted request at the end of b->rows; a
 * batch member's waits for store(), where its batch admits it and gives it
 * its window. CS_ERR_TOO_LARGE when b->rows is full.
 */
static enum cs_err write_row(struct ingest *in, struct batch *b, struct item *it, char *err)
{
    it->member = it->rq.batch_id != NULL;
    enum cs_err rc = it->member ? CS_OK : row_text(in, &b->rows, it, 0, err);
    it->row = !rc;
    return rc;
}

/* Drops the row of a refused item. */
static void drop_row(struct item *it)
{
    it->row = false;
}

/* Undoes an item's admission (it holds no side effect). */
static void item_reset(struct item *it)
{
    cs_request_free(&it->rq);
    cs_batch_seal_free(&it->seal);
    memset(it, 0, sizeof(*it));
}

static enum cs_err store_all(struct ingest *in, struct batch *b, struct item **items, int n,
                             char *err);

/*
 * Admits b's messages from b->admitted on. With db, every message is
 * admitted (rows stored early when b->rows is full) or a retriable error is
 * returned. With db NULL (while another batch's insert runs) it stops
 * quietly, CS_OK, at the first message that needs the database or room.
 */
static enum cs_err admit_rest(struct ingest *in, struct batch *b, struct cs_db *db, char *err)
{
    for (int i = b->admitted; i < b->nmsgs; i++) {
        struct item *it = &b->items[i];
        char why[CS_ERRLEN];
        it->msg = i;
        enum cs_err r = admit(in, b->msgs[i], db, it, why);
        if (!r && it->seal.count <= 0) {
            r = write_row(in, b, it, why);
            if (r == CS_ERR_TOO_LARGE && b->ntodo > 0 && db) {
                /* b->rows is full: store what it holds first, then start it again. */
                enum cs_err rc = store_all(in, b, b->todo, b->ntodo, err);
                b->ntodo = 0;
                cs_buf_reset(&b->rows);
                if (rc) {
                    item_reset(it);
                    return rc;
                }
                r = write_row(in, b, it, why);
            }
        }
        if (r && (cs_err_info(r)->retriable || (!db && r == CS_ERR_TOO_LARGE && b->ntodo > 0))) {
            item_reset(it);
            return db ? cs_err_set(err, r, "%s", why) : CS_OK; /* later, with the database */
        }
        if (r) {
            dead_letter(in, b, b->msgs[i], r, why);
            drop_row(it);
        } else if (it->row) {
            b->todo[b->ntodo++] = it;
        }
        b->admitted = i + 1;
    }
    return CS_OK;
}

/* Batch members are admitted in (agent, batch) order so ingest consumers never deadlock. */
static int member_order(const void *a, const void *b)
{
    const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
    int c = strcmp(x->agent->id, y->agent->id);
    return c ? c : strcmp(x->rq.batch_id, y->rq.batch_id);
}

/*
 * The next message (or error event) of the consumer, waiting up to ms for
 * one on the consumer queue's event pipe and the role's stop pipe; NULL on
 * timeout or stop.
 */
static rd_kafka_message_t *next_message(struct ingest *in, int ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(in->consumer, 0);
    if (m || ms <= 0 || atomic_load(&in->role->stop))
        return m;
    /* Anything enqueued since the poll above has written to the pipe. */
    struct pollfd fds[2] = {{in->events[0], POLLIN, 0}, {in->role->wake[0], POLLIN, 0}};
    if (poll(fds, 2, ms) > 0 && (fds[0].revents & POLLIN)) {
        char drain[64];
        while (read(in->events[0], drain, sizeof(drain)) > 0)
            ;
    }
    return rd_kafka_consumer_poll(in->consumer, 0);
}

/* Makes the consumer queue write to in->events when it stops being empty. */
static enum cs_err events_open(struct ingest *in, char *err)
{
    if (pipe(in->events) != 0)
        return cs_err_set(err, CS_ERR_INTERNAL, "pipe failed");
    for (int k = 0; k < 2; k++)
        fcntl(in->events[k], F_SETFL, fcntl(in->events[k], F_GETFL) | O_NONBLOCK);
    rd_kafka_queue_io_event_enable(in->cq, in->events[1], "1", 1);
    return CS_OK;
}

/*
 * Reads up to CS_INGEST_BATCH messages into b, waiting at most the linger
 * after its first; with nowait, only what has already arrived.
 */
static void fill_batch(struct ingest *in, struct batch *b, bool nowait)
{
    int64_t deadline = b->first_ms + in->cfg->ingest_linger_ms;
    while (b->nmsgs < in->cfg->ingest_batch && !atomic_load(&in->role->stop)) {
        int wait = nowait ? 0 : IDLE_WAIT_MS;
        if (!nowait && b->nmsgs > 0) {
            int64_t left = deadline - cs_now_ms();
            if (left <= 0)
                break;
            wait = (int)left;
        }
        rd_kafka_message_t *m = next_message(in, wait);
        if (!m) {
            if (nowait || b->nmsgs == 0)
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
        if (b->nmsgs == 0) {
            b->first_ms = cs_now_ms();
            deadline = b->first_ms + in->cfg->ingest_linger_ms;
        }
        b->msgs[b->nmsgs++] = m;
    }
}

/* ---- storing ---- */

/* The JSON array of the rows of items[0..n) still to store, into in->param; *nrows set. */
static enum cs_err rows_param(struct ingest *in, struct batch *b, struct item **items, int n,
                              int *nrows, char *err)
{
    enum cs_err rc;
    *nrows = 0;
    cs_buf_reset(&in->param);
    rc = cs_buf_append(&in->param, "[", 1);
    for (int i = 0; i < n && !rc; i++) {
        if (!items[i]->row)
            continue;
        const char *text = (items[i]->member ? in->members.data : b->rows.data) + items[i]->off;
        if (*nrows && (rc = cs_buf_append(&in->param, ",", 1)))
            break;
        rc = cs_buf_append(&in->param, text, items[i]->len);
        (*nrows)++;
    }
    if (!rc)
        rc = cs_buf_append(&in->param, "]", 1);
    if (rc)
        return cs_err_set(err, CS_ERR_TOO_LARGE,
                          "the approval rows exceed %zu bytes for one insert",
                          (size_t)CS_APPROVAL_ROWS_MAX);
    return CS_OK;
}

/*
 * Stores items[0..n) (rows not yet refused) of batch b in one transaction:
 * batch members are admitted (locking their batches), rows inserted,
 * complete batches made decidable. Refusals go to the dead-letter topic; a
 * non-retriable failure of the whole is reported as such.
 */
static enum cs_err store(struct ingest *in, struct batch *b, struct item **items, int n, char *err)
{
    struct item **members = cs_calloc((size_t)(n ? n : 1), sizeof(*members));
    int nm = 0;
    for (int i = 0; i < n; i++)
        if (items[i]->row && items[i]->rq.batch_id)
            members[nm++] = items[i];
    qsort(members, (size_t)nm, sizeof(*members), member_order);
    struct cs_batch_tx *t = cs_batch_tx_new();
    PGresult *res = NULL;
    int nrows = 0;
    enum cs_err rc = cs_db_begin(in->db, err);
    cs_buf_reset(&in->members);
    for (int i = 0; i < nm && !rc; i++) {
        char why[CS_ERRLEN];
        int64_t window_ms = 0;
        enum cs_err r = cs_batch_tx_admit(t, in->db, &members[i]->rq, members[i]->agent,
                                          members[i]->grant, &window_ms, why);
        if (!r)
            rc = row_text(in, &in->members, members[i], window_ms, err);
        if (r && cs_err_info(r)->retriable) {
            rc = cs_err_set(err, r, "%s", why);
        } else if (r) {
            dead_letter(in, b, b->msgs[members[i]->msg], r, why);
            drop_row(members[i]);
        }
    }
    if (!rc)
        rc = rows_param(in, b, items, n, &nrows, err);
    if (!rc && nrows > 0)
        rc = cs_approval_insert_text(in->db, in->param.data, &res, err);
    if (!rc)
        rc = cs_batch_tx_finish(t, in->db, res, &in->keys, in->cfg->public_url, "worker:ingest",
                                err);
    if (!rc)
        rc = cs_db_commit(in->db, err);
    if (!rc && res)
        b->stored += PQntuples(res);
    if (rc)
        cs_db_rollback(in->db);
    PQclear(res);
    cs_batch_tx_free(t);
    cs_free(members);
    return rc;
}

/*
 * After the database refused a whole for a row it cannot store: the rows
 * one by one, so only the offending messages are dead-lettered.
 */
static enum cs_err store_each(struct ingest *in, struct batch *b, struct item **items, int n,
                              const char *why_whole, char *err)
{
    enum cs_err rc = CS_OK;
    cs_log(CS_LOG_WARN, "ingest", "batch refused (%s), storing row by row", why_whole);
    for (int i = 0; i < n && !rc; i++) {
        char why[CS_ERRLEN];
        enum cs_err r = items[i]->row ? store(in, b, &items[i], 1, why) : CS_OK;
        if (r && cs_err_info(r)->retriable)
            rc = cs_err_set(err, r, "%s", why);
        else if (r)
            dead_letter(in, b, b->msgs[items[i]->msg], r, why);
    }
    return rc;
}

/* store() of items[0..n), row by row when refused as a whole; CS_OK or a retriable error. */
static enum cs_err store_all(struct ingest *in, struct batch *b, struct item **items, int n,
                             char *err)
{
    enum cs_err rc = store(in, b, items, n, err);
    if (!rc || cs_err_info(rc)->retriable)
        return rc;
    char whole[CS_ERRLEN];
    cs_strlcpy(whole, err, sizeof(whole));
    return store_each(in, b, items, n, whole, err);
}

/*
 * Stores b's rows (plain rows only: no batch member, no seal) with the
 * insert sent asynchronously inside the transaction, admitting `next` from
 * the cache while Postgres works; then commits. CS_OK or a retriable error.
 */
static enum cs_err store_pipelined(struct ingest *in, struct batch *b, struct batch *next,
                                   char *err)
{
    PGresult *res = NULL;
    int nrows = 0;
    enum cs_err rc = rows_param(in, b, b->todo, b->ntodo, &nrows, err);
    if (rc) /* not one insert: row by row */
        return store_all(in, b, b->todo, b->ntodo, err);
    if (!(rc = cs_db_begin(in->db, err))) {
        const char *p[] = {in->param.data};
        rc = cs_db_send(in->db, CS_DB_Q(INSERT_APPROVALS, p), err);
    }
    if (!rc) {
        char ignore[CS_ERRLEN];
        fill_batch(in, next, true);
        (void)admit_rest(in, next, NULL, ignore);
        cs_db_poll(in->db, true, &rc, &res, err);
    }
    if (!rc)
        rc = cs_db_commit(in->db, err);
    if (!rc) {
        b->stored += PQntuples(res);
        PQclear(res);
        return CS_OK;
    }
    PQclear(res);
    cs_db_rollback(in->db);
    if (cs_err_info(rc)->retriable)
        return rc;
    char whole[CS_ERRLEN];
    cs_strlcpy(whole, err, sizeof(whole));
    return store_each(in, b, b->todo, b->ntodo, whole, err);
}

/* Seals after the members: whatever arrives in whichever order, the last piece wins. */
static enum cs_err seal_all(struct ingest *in, struct batch *b, char *err)
{
    for (int i = 0; i < b->nmsgs; i++) {
        struct item *it = &b->items[i];
        if (it->seal.count <= 0)
            continue;
        char why[CS_ERRLEN];
        enum cs_err r = cs_batch_seal(in->db, it->agent->id, it->seal.batch_id, it->seal.count,
                                      &in->keys, in->cfg->public_url, "worker:ingest", why);
        if (r && cs_err_info(r)->retriable)
            return cs_err_set(err, r, "%s", why);
        if (r)
            dead_letter(in, b, b->msgs[i], r, why);
        else
            b->stored++;
    }
    return CS_OK;
}

/*
 * Makes batch b durable: admits what is left, stores its rows and seals,
 * and waits until the broker has every dead letter of it. Returns CS_OK
 * when every message is stored or dead-lettered; a retriable error
 * otherwise. `next` has no admitted message when this starts.
 */
static enum cs_err attempt(struct ingest *in, struct batch *b, struct batch *next, char *err)
{
    /* No admitted item points into the catalog but b's, admitted from it since
     * the last lookup that could retire an entry: retired entries can go. */
    cs_assert(next->admitted == 0);
    cs_catalog_tick(in->cat);
    enum cs_err rc = admit_rest(in, b, in->db, err);
    bool plain = true;
    for (int i = 0; i < b->nmsgs && plain; i++)
        plain = b->items[i].seal.count <= 0 && !b->items[i].member;
    if (!rc && b->ntodo > 0)
        rc = plain ? store_pipelined(in, b, next, err) : store_all(in, b, b->todo, b->ntodo, err);
    if (!rc)
        rc = seal_all(in, b, err);
    /* Wait for every dead letter to be acknowledged before offsets move. */
    if (!rc && b->ndlq > 0 &&
        (rd_kafka_flush(in->dlq, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
         atomic_load(&b->dlq_failed) > 0))
        rc = cs_err_set(err, CS_ERR_KAFKA, "dead-letter topic unavailable");
    if (!rc && b->dead) {
        /* What the console shows; a retried batch records each message once. */
        const char *p[] = {cs_json_text(b->dead, NULL)};
        rc = cs_db_exec(in->db, CS_DB_Q(DEAD_LETTERS_INSERT, p), NULL, err);
    }
    return rc;
}

/* ---- batches ---- */

/* Undoes b's admission (its messages stay): it will be admitted again. */
static void batch_forget(struct ingest *in, struct batch *b)
{
    for (int i = 0; i < b->admitted; i++)
        item_reset(&b->items[i]);
    if (b->ndlq > 0)
        rd_kafka_flush(in->dlq, 30000); /* no report of this round counts for the next */
    b->admitted = b->ntodo = b->stored = b->ndlq = 0;
    atomic_store(&b->dlq_failed, 0);
    json_object_put(b->dead);
    b->dead = NULL;
    atomic_store(&b->dlq_dropped, 0);
    cs_buf_reset(&b->rows);
    if (b->rows.cap > ROWS_KEEP) {
        /* Keep the buffers of ordinary batches; give back what a huge one took. */
        cs_buf_free(&b->rows);
        cs_buf_init(&b->rows, CS_APPROVAL_ROWS_MAX);
    }
}

static void committed(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    (void)opaque;
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        /* The rows are stored; a lost commit only means redelivery, which
         * the (agent, request_id) key turns into a no-op. */
        static struct cs_log_limit lim;
        if (cs_log_limit_allow(&lim, 10, NULL))
            cs_log(CS_LOG_WARN, "ingest", "offset commit failed (will be redelivered): %s",
                   rd_kafka_err2str(e));
    }
}

/* b is durable: counts it, moves its offsets on, and empties it. */
static void complete(struct ingest *in, struct batch *b)
{
    struct worker_metrics *wm = in->role->m;
    int dup = b->nmsgs - b->stored - b->ndlq, dropped = atomic_load(&b->dlq_dropped);
    atomic_fetch_add(&wm->ingested, (uint_fast64_t)b->stored);
    atomic_fetch_add(&wm->dead_lettered, (uint_fast64_t)(b->ndlq - dropped));
    atomic_fetch_add(&wm->dead_letters_dropped, (uint_fast64_t)dropped);
    atomic_fetch_add(&wm->duplicates, (uint_fast64_t)(dup > 0 ? dup : 0));
    cs_log(CS_LOG_DEBUG, "ingest", "batch of %d: %d stored, %d duplicate, %d dead-lettered",
           b->nmsgs, b->stored, dup, b->ndlq);
    for (int i = 0; i < b->nmsgs; i++) {
        rd_kafka_offset_store(b->msgs[i]->rkt, b->msgs[i]->partition, b->msgs[i]->offset);
        rd_kafka_message_destroy(b->msgs[i]);
    }
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(in->consumer, NULL, in->cq, committed, in);
    if (e)
        committed(in->consumer, e, NULL, in);
    cs_histogram_observe_us(&wm->ingest_batch, (cs_now_ms() - b->first_ms) * 1000);
    batch_forget(in, b);
    b->nmsgs = 0;
}

static void run(struct ingest *in)
{
    char err[CS_ERRLEN];
    struct cs_backoff failed = CS_BACKOFF;
    struct batch *b = &in->b[0], *next = &in->b[1];
    while (!atomic_load(&in->role->stop)) {
        fill_batch(in, b, false);
        if (b->nmsgs == 0)
            continue;
        enum cs_err rc = attempt(in, b, next, err);
        if (!rc) {
            complete(in, b);
            struct batch *t = b;
            b = next;
            next = t;
            cs_backoff_reset(&failed);
            continue;
        }
        static struct cs_log_limit lim;
        if (cs_log_limit_allow(&lim, 10, NULL))
            cs_log(CS_LOG_WARN, "ingest", "batch of %d not stored, retrying: %s: %s", b->nmsgs,
                   cs_err_code(rc), err);
        /* Both batches start again from their messages: the retry may reload
         * catalog entries the next one was admitted with. */
        batch_forget(in, b);
        batch_forget(in, next);
        if (rc == CS_ERR_DB && !cs_db_connected(in->db) &&
            cs_db_reconnect(in->db, &in->role->stop, err) != CS_OK)
            break;
        if (atomic_load(&in->role->stop))
            break; /* offsets not committed: the batches will be redelivered */
        worker_sleep(in->role, cs_backoff_next(&failed));
    }
}

void *ingest_main(void *arg)
{
    struct worker_role *role = arg;
    struct ingest in = {.cfg = role->cfg, .role = role};
    char err[CS_ERRLEN], client[200];
    snprintf(client, sizeof(client), "countersign-ingest-%s", role->cfg->instance_id);
    cs_link_keys_derive(role->cfg->master_key, &in.keys);
    for (int k = 0; k < 2; k++) {
        struct batch *b = &in.b[k];
        b->msgs = cs_calloc((size_t)role->cfg->ingest_batch, sizeof(*b->msgs));
        b->items = cs_calloc((size_t)role->cfg->ingest_batch, sizeof(*b->items));
        b->todo = cs_calloc((size_t)role->cfg->ingest_batch, sizeof(*b->todo));
        cs_buf_init(&b->rows, CS_APPROVAL_ROWS_MAX);
    }
    cs_buf_init(&in.param, CS_APPROVAL_ROWS_MAX);
    cs_buf_init(&in.members, CS_APPROVAL_ROWS_MAX);
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
    in.cq = rd_kafka_queue_get_consumer(in.consumer);
    if (events_open(&in, err) != CS_OK) {
        cs_log(CS_LOG_ERROR, "ingest", "cannot start: %s", err);
        role->status = 1;
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
    worker_ready(role);
    if (role->cfg->kafka_allow_unsigned)
        cs_log(CS_LOG_WARN, "ingest",
               "CS_KAFKA_ALLOW_UNSIGNED is on: request envelopes without "
               "a signature are accepted as the agent they name; anyone who can write %s can "
               "act as any agent",
               role->cfg->topic_requests);
    char ts_type[32];
    if (cs_kafka_topic_config(in.dlq, role->cfg->topic_requests, "message.timestamp.type", ts_type,
                              sizeof(ts_type), 10000, err) == CS_OK &&
        strcmp(ts_type, "LogAppendTime"))
        cs_log(CS_LOG_WARN, "ingest",
               "%s keeps %s: the signatures' replay window is measured "
               "against this worker's clock, so a backlog older than %llds is refused as stale; "
               "set message.timestamp.type=LogAppendTime on the topic",
               role->cfg->topic_requests, ts_type, (long long)role->cfg->kafka_signature_window_s);
    run(&in);
out:
    for (int k = 0; k < 2; k++) {
        struct batch *b = &in.b[k];
        for (int i = 0; i < b->admitted; i++)
            item_reset(&b->items[i]);
        for (int i = 0; i < b->nmsgs; i++)
            rd_kafka_message_destroy(b->msgs[i]);
    }
    if (in.consumer) {
        /* Every completed batch's offsets were committed (asynchronously); the
         * group waits for those commits before it is left. */
        if (in.cq) {
            rd_kafka_queue_io_event_enable(in.cq, -1, NULL, 0);
            rd_kafka_queue_destroy(in.cq);
        }
        rd_kafka_consumer_close(in.consumer);
        rd_kafka_destroy(in.consumer);
    }
    if (in.dlq) {
        rd_kafka_flush(in.dlq, 5000);
        rd_kafka_destroy(in.dlq);
    }
    for (int k = 0; k < 2; k++)
        if (in.events[k] > 0)
            close(in.events[k]);
    cs_catalog_free(in.cat);
    cs_db_close(in.db);
    for (int k = 0; k < 2; k++) {
        cs_free(in.b[k].msgs);
        cs_free(in.b[k].items);
        cs_free(in.b[k].todo);
        json_object_put(in.b[k].dead);
        cs_buf_free(&in.b[k].rows);
    }
    cs_buf_free(&in.param);
    cs_buf_free(&in.members);
    cs_link_keys_wipe(&in.keys);
    atomic_store(&role->done, 1);
    return NULL;
}
