/*
 * batch.c -- the batch calls of the C client: submit many requests as the
 * members of one batch and seal it (POST /v1/proxy with batch_id, POST
 * /v1/batches/{id}/seal), read the batch (GET /v1/batches/{id}), wait until
 * it is terminal; and struct countersign_batch_status with its _free. The
 * semantics are the Python SDK's (submit_batch, seal_batch,
 * get_batch_status, await_batch in sdk/python/countersign/_agent.py).
 *
 * Every request of a batch is checked and turned into its JSON before the
 * first byte is sent, so a local refusal sends nothing. Each member carries
 * an idempotency key (the caller's, else "<batch_id>:<index>"), so every
 * member submission may be retried like a read, and submitting the same
 * batch again finds the members already stored. The first member the server
 * refuses stops the submission and the batch is not sealed: a seal with the
 * full count would make a batch that can never be complete.
 *
 * A batch id goes into a path only after client_batch_id_ok() (the server's
 * own alphabet), so it needs no escaping. Like approval.c, every public
 * function accepts error == NULL and sets *out to NULL before anything can
 * fail.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cs_mem.h"

#define INLINE_WAIT_SECONDS 60
#define BATCH_POLL_MAX_SECONDS 10.0

/* Puts the batch (and the member's index, or -1) into e; returns its code. */
static enum countersign_code batch_fail(struct countersign_error *e, const char *batch_id,
                                        long index)
{
    if (batch_id)
        cs_strlcpy(e->batch_id, batch_id, sizeof(e->batch_id));
    e->batch_index = index;
    return e->code;
}

static enum countersign_code bad_batch_id(struct countersign_error *e, const char *batch_id)
{
    client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                "a batch id is 1-%d letters, digits and ._:- only", COUNTERSIGN_BATCH_ID_MAX);
    return batch_fail(e, batch_id, -1);
}

/* ==== batch statuses ===================================================== */

void countersign_batch_status_free(struct countersign_batch_status *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_approval_ids; i++)
        cs_free(st->approval_ids[i]);
    cs_free(st->approval_ids);
    cs_free(st->counts);
    cs_free(st->grant_id);
    cs_free(st->policy_id);
    cs_free(st);
}

int countersign_batch_count(const struct countersign_batch_status *st, const char *status)
{
    if (!st || !status)
        return 0;
    for (size_t i = 0; i < st->n_counts; i++)
        if (!strcmp(st->counts[i].status, status))
            return st->counts[i].count;
    return 0;
}

/* A BatchStatus object into *out. */
static enum countersign_code parse_batch(json_object *o, long http,
                                         struct countersign_batch_status **out,
                                         struct countersign_error *e)
{
    struct countersign_batch_status *st = cs_calloc(1, sizeof(*st));
    json_object *counts = NULL, *expected = NULL;
    bool ok = client_json_copy(o, "batch_id", st->batch_id, sizeof(st->batch_id)) &&
              client_json_copy(o, "status", st->status, sizeof(st->status));
    if (ok && json_object_object_get_ex(o, "counts", &counts) && counts) {
        ok = json_object_is_type(counts, json_type_object);
        if (ok)
            st->counts =
                cs_calloc((size_t)json_object_object_length(counts) + 1, sizeof(*st->counts));
        if (ok) {
            json_object_object_foreach(counts, name, value)
            {
                struct countersign_batch_count *bc = &st->counts[st->n_counts];
                if (!json_object_is_type(value, json_type_int)) {
                    ok = false;
                    break;
                }
                cs_strlcpy(bc->status, name, sizeof(bc->status));
                bc->count = json_object_get_int(value);
                st->n_counts++;
            }
        }
    }
    st->expected = -1;
    if (ok && json_object_object_get_ex(o, "expected", &expected) && expected &&
        !client_json_int(o, "expected", &st->expected))
        ok = false;
    if (!ok) {
        countersign_batch_status_free(st);
        client_fail(e, COUNTERSIGN_SERVER, (int)http, "invalid_response",
                    "Countersign answered HTTP %ld with an unexpected body: not a batch "
                    "status (batch_id, status, counts)",
                    http);
        return e->code;
    }
    client_json_int(o, "members", &st->members);
    client_json_int(o, "approvals_received", &st->approvals_received);
    client_json_int(o, "approvals_required", &st->approvals_required);
    client_json_copy(o, "batch_uid", st->batch_uid, sizeof(st->batch_uid));
    client_json_copy(o, "digest", st->digest, sizeof(st->digest));
    client_json_copy(o, "created_at", st->created_at, sizeof(st->created_at));
    client_json_copy(o, "expires_at", st->expires_at, sizeof(st->expires_at));
    client_json_copy(o, "decided_at", st->decided_at, sizeof(st->decided_at));
    client_json_copy(o, "finished_at", st->finished_at, sizeof(st->finished_at));
    client_json_copy(o, "decided_by", st->decided_by, sizeof(st->decided_by));
    client_json_copy(o, "decision", st->decision, sizeof(st->decision));
    if (!client_json_bool(o, "is_terminal", &st->is_terminal))
        st->is_terminal = st->finished_at[0] != '\0';
    st->grant_id = cs_strdup(client_json_str(o, "grant_id"));
    st->policy_id = cs_strdup(client_json_str(o, "policy_id"));
    *out = st;
    return COUNTERSIGN_OK;
}

/* One exchange whose answer is a batch status; errors carry the batch id. */
static enum countersign_code batch_call(struct countersign_client *c, const char *method,
                                        const char *batch_id, const char *suffix, const char *body,
                                        enum client_retry retry,
                                        struct countersign_batch_status **out,
                                        struct countersign_error *e)
{
    char path[64 + COUNTERSIGN_BATCH_ID_MAX];
    snprintf(path, sizeof(path), "/v1/batches/%s%s", batch_id, suffix);
    struct client_reply rep;
    enum countersign_code rc = client_call(c, method, path, NULL, body, 0, retry, NULL, &rep, e);
    if (rc)
        return batch_fail(e, batch_id, -1);
    json_object *o = client_reply_object(&rep, e, NULL);
    rc = o ? parse_batch(o, rep.status, out, e) : e->code;
    json_object_put(o);
    client_reply_free(&rep);
    return rc ? batch_fail(e, batch_id, -1) : COUNTERSIGN_OK;
}

/* ==== seal, status ======================================================= */

enum countersign_code countersign_seal_batch(struct countersign_client *c, const char *batch_id,
                                             int count, struct countersign_batch_status **out,
                                             struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c)
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client is required");
    if (!client_batch_id_ok(batch_id))
        return bad_batch_id(e, batch_id);
    if (count < 1 || count > COUNTERSIGN_BATCH_MAX) {
        client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                    "count must be from 1 to %d, not %d", COUNTERSIGN_BATCH_MAX, count);
        return batch_fail(e, batch_id, -1);
    }
    char body[32];
    snprintf(body, sizeof(body), "{\"count\":%d}", count);
    struct countersign_batch_status *st = NULL;
    /* The same seal again is a no-op on the server: safe to re-send. */
    enum countersign_code rc =
        batch_call(c, "POST", batch_id, "/seal", body, CLIENT_RETRY_ALL, &st, e);
    if (out)
        *out = st;
    else
        countersign_batch_status_free(st);
    return rc;
}

enum countersign_code countersign_get_batch_status(struct countersign_client *c,
                                                   const char *batch_id,
                                                   struct countersign_batch_status **out,
                                                   struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || !out)
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client and out are required");
    if (!client_batch_id_ok(batch_id))
        return bad_batch_id(e, batch_id);
    return batch_call(c, "GET", batch_id, "", NULL, CLIENT_RETRY_ALL, out, e);
}

/* ==== submit ============================================================= */

struct keyed {
    const char *key;
    size_t index;
};

static int by_key(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int d = strcmp(x->key, y->key);
    return d ? d : (x->index > y->index) - (x->index < y->index);
}

/*
 * Finds two requests with one idempotency key: the first whose key an
 * earlier request has (the smallest *second), and that earlier one.
 */
static bool duplicate_key(char *const *keys, size_t n, size_t *first, size_t *second)
{
    struct keyed *k = cs_calloc(n ? n : 1, sizeof(*k));
    bool found = false;
    for (size_t i = 0; i < n; i++)
        k[i] = (struct keyed){keys[i], i};
    qsort(k, n, sizeof(*k), by_key);
    for (size_t i = 0, j; i < n; i = j) { /* k[i..j-1]: one key, earliest request first */
        for (j = i + 1; j < n && !strcmp(k[j].key, k[i].key); j++)
            ;
        if (j - i >= 2 && (!found || k[i + 1].index < *second)) {
            *first = k[i].index;
            *second = k[i + 1].index;
            found = true;
        }
    }
    cs_free(k);
    return found;
}

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        cs_free(v[i]);
    cs_free(v);
}

/* Checks every request and builds its body and key; INVALID_ARGUMENT names requests[i]. */
static enum countersign_code prepare(const char *batch_id, const struct countersign_request *reqs,
                                     size_t n, char **bodies, char **keys,
                                     struct countersign_error *e)
{
    for (size_t i = 0; i < n; i++) {
        const struct countersign_request *req = &reqs[i];
        char err[COUNTERSIGN_ERRLEN], *body = NULL;
        if (req->batch_id && strcmp(req->batch_id, batch_id) != 0) {
            client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                        "requests[%zu]: its batch_id is not %s (leave it NULL)", i, batch_id);
            return batch_fail(e, batch_id, (long)i);
        }
        keys[i] = req->idempotency_key ? cs_strdup(req->idempotency_key)
                                       : cs_asprintf("%s:%zu", batch_id, i);
        struct client_fields f = client_fields_of(req, keys[i], batch_id);
        enum countersign_code rc = client_request_json(&f, CLIENT_JSON_HTTP, &body, err);
        if (rc) {
            client_fail(e, rc, 0, "invalid_argument", "requests[%zu]: %s", i, err);
            return batch_fail(e, batch_id, (long)i);
        }
        bodies[i] = body;
    }
    size_t first = 0, second = 0;
    if (duplicate_key(keys, n, &first, &second)) {
        client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                    "requests[%zu] and requests[%zu] have the same idempotency_key \"%.200s\": "
                    "they would be one member",
                    first, second, keys[second]);
        return batch_fail(e, batch_id, (long)second);
    }
    return COUNTERSIGN_OK;
}

/* Submits one member; its approval id into id[] (also for an outcome already decided). */
static enum countersign_code submit_member(struct countersign_client *c, const char *body,
                                           char id[COUNTERSIGN_ID_LEN + 1],
                                           struct countersign_error *e)
{
    struct client_reply rep;
    enum countersign_code rc = client_call(c, "POST", "/v1/proxy", NULL, body, INLINE_WAIT_SECONDS,
                                           CLIENT_RETRY_ALL, NULL, &rep, e);
    if (rc == COUNTERSIGN_DENIED || rc == COUNTERSIGN_CANCELLED ||
        rc == COUNTERSIGN_EXECUTION_FAILED) {
        /* Stored before and already decided: the first answer is an outcome. */
        cs_strlcpy(id, e->approval_id, COUNTERSIGN_ID_LEN + 1);
        client_error_clear(e);
        return COUNTERSIGN_OK;
    }
    if (rc)
        return rc;
    json_object *o = client_reply_object(&rep, e, NULL);
    if (o && !client_json_copy(o, "approval_id", id, COUNTERSIGN_ID_LEN + 1))
        client_fail(e, COUNTERSIGN_SERVER, (int)rep.status, "invalid_response",
                    "Countersign answered HTTP %ld to a batch member without an approval_id",
                    rep.status);
    rc = o && id[0] ? COUNTERSIGN_OK : e->code;
    json_object_put(o);
    client_reply_free(&rep);
    return rc;
}

enum countersign_code countersign_submit_batch(struct countersign_client *c, const char *batch_id,
                                               const struct countersign_request *reqs, size_t n,
                                               bool seal, struct countersign_batch_status **out,
                                               struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || (n && !reqs))
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client and the requests are required");
    if (!client_batch_id_ok(batch_id))
        return bad_batch_id(e, batch_id);
    if (n == 0 && seal) {
        client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                    "a batch needs at least one request");
        return batch_fail(e, batch_id, -1);
    }
    if (n > COUNTERSIGN_BATCH_MAX) {
        client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                    "a batch has at most %d members, not %zu", COUNTERSIGN_BATCH_MAX, n);
        return batch_fail(e, batch_id, -1);
    }

    char **bodies = cs_calloc(n ? n : 1, sizeof(*bodies));
    char **keys = cs_calloc(n ? n : 1, sizeof(*keys));
    char **ids = cs_calloc(n ? n : 1, sizeof(*ids));
    struct countersign_batch_status *st = NULL;
    enum countersign_code rc = prepare(batch_id, reqs, n, bodies, keys, e);
    for (size_t i = 0; !rc && i < n; i++) {
        char id[COUNTERSIGN_ID_LEN + 1] = "";
        rc = submit_member(c, bodies[i], id, e);
        if (rc)
            batch_fail(e, batch_id, (long)i); /* no further member, no seal */
        else
            ids[i] = cs_strdup(id);
    }
    if (!rc && seal)
        rc = countersign_seal_batch(c, batch_id, (int)n, &st, e);
    else if (!rc)
        rc = countersign_get_batch_status(c, batch_id, &st, e);
    if (!rc) {
        st->approval_ids = ids;
        st->n_approval_ids = n;
        ids = NULL;
    }
    free_strings(bodies, n);
    free_strings(keys, n);
    free_strings(ids, n);
    if (out)
        *out = st;
    else
        countersign_batch_status_free(st);
    return rc;
}

/* ==== await ============================================================== */

/* The pause before read number poll + 1: the interval growing by half each time, capped. */
static double batch_poll_delay(int poll, double interval)
{
    double cap = fmax(BATCH_POLL_MAX_SECONDS, interval);
    return fmin(cap, interval * pow(1.5, poll < 64 ? poll : 64));
}

/* "executed 5, denied 1" (or "no members") into buf[size]. */
static void counts_text(const struct countersign_batch_status *st, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < st->n_counts && used < size; i++) {
        int k = snprintf(buf + used, size - used, "%s%s %d", i ? ", " : "", st->counts[i].status,
                         st->counts[i].count);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    if (!st->n_counts)
        snprintf(buf, size, "no members");
}

enum countersign_code countersign_await_batch(struct countersign_client *c, const char *batch_id,
                                              double timeout_seconds,
                                              struct countersign_batch_status **out,
                                              struct countersign_error *error)
{
    struct countersign_error local;
    struct countersign_error *e = error ? error : &local;
    client_error_clear(e);
    if (out)
        *out = NULL;
    if (!c || !out)
        return client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                           "a client and out are required");
    if (!client_batch_id_ok(batch_id))
        return bad_batch_id(e, batch_id);
    bool forever = timeout_seconds == COUNTERSIGN_WAIT_FOREVER;
    if (!forever && !(timeout_seconds >= 0)) {
        client_fail(e, COUNTERSIGN_INVALID_ARGUMENT, 0, "invalid_argument",
                    "timeout_seconds must be >= 0, or COUNTERSIGN_WAIT_FOREVER");
        return batch_fail(e, batch_id, -1);
    }
    double deadline = forever ? INFINITY : client_now() + timeout_seconds;
    double interval = client_poll_interval(c);
#define LEFT() (forever ? INFINITY : fmax(0.0, deadline - client_now()))
    for (int polls = 0;; polls++) {
        struct countersign_batch_status *st = NULL;
        enum countersign_code rc =
            batch_call(c, "GET", batch_id, "", NULL, CLIENT_RETRY_NONE, &st, e);
        if (rc) {
            if (!client_retriable(e) || LEFT() <= 0)
                return rc;
        } else if (st->is_terminal) {
            *out = st;
            return COUNTERSIGN_OK;
        } else if (LEFT() <= 0) {
            char counts[256];
            counts_text(st, counts, sizeof(counts));
            client_fail(e, COUNTERSIGN_TIMEOUT, 0, "timeout",
                        "batch %s is still %s (%s) after waiting %g s; it may still be "
                        "decided: await it again later",
                        batch_id, st->status, counts, timeout_seconds);
            cs_strlcpy(e->last_status, st->status, sizeof(e->last_status));
            countersign_batch_status_free(st);
            return batch_fail(e, batch_id, -1);
        }
        countersign_batch_status_free(st);
        client_sleep(fmin(batch_poll_delay(polls, interval), LEFT()));
    }
#undef LEFT
}
