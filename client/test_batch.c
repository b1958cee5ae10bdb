/*
 * test_batch.c -- the C client's batch scenarios on the real system: submit,
 * seal, approve all but one on the batch page, await; and batches through
 * the Kafka producer helper (members and seal in either order). Approvers
 * decide with decide_batch() (test_client.c): sign in with the one-time
 * link of `countersign batch links`, then post the batch page's form.
 * Driven by tests/integration/test_sdk_c.py through client/test_client.c's
 * main().
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countersign.h"
#include "cs_mem.h"
#include "test_client.h"

/* ==== batches ============================================================ */

#define BATCH_N 6

/* n refunds to the stub's /v1/batch/<prefix>/<i>; urls[] and json[] hold their strings. */
static void batch_requests(struct countersign_request *reqs, size_t n, const char *prefix,
                           char urls[][256], char json[][64])
{
    for (size_t i = 0; i < n; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s/v1/batch/%s/%zu", stub_url, prefix, i);
        snprintf(json[i], sizeof(json[i]), "{\"amount\":%zu}", 100 + i);
        reqs[i] = (struct countersign_request){
            .method = "POST",
            .url = urls[i],
            .grant_id = "stripe",
            .json = json[i],
            .reason = "refund of a duplicate charge (batch test)",
        };
    }
}

/* Reads the batch until its status is `want` (or the time is up); the last state read. */
static struct countersign_batch_status *
batch_until(struct countersign_client *c, const char *batch_id, const char *want, double seconds)
{
    struct countersign_batch_status *st = NULL;
    struct countersign_error e;
    for (double until = now() + seconds;; pause_for(0.2)) {
        countersign_batch_status_free(st);
        st = NULL;
        enum countersign_code rc = countersign_get_batch_status(c, batch_id, &st, &e);
        if ((rc == COUNTERSIGN_OK && !strcmp(st->status, want)) || now() > until)
            return st;
    }
}

/*
 * A batch of 6 over HTTP: local refusals first (nothing sent), then submit
 * and seal, resubmit (the same members), a conflicting seal, a wait that
 * times out, approve all but one on the batch page, await: 5 executed, 1
 * denied. Then a batch whose third member is refused: not sealed, fixed,
 * submitted again.
 */
void test_batch(struct countersign_client *c)
{
    struct countersign_request reqs[BATCH_N];
    char urls[BATCH_N][256], json[BATCH_N][64], why[512];
    struct countersign_batch_status *st = NULL, *again = NULL, *done = NULL;
    struct countersign_response *r = NULL;
    struct countersign_error e;
    char err[COUNTERSIGN_ERRLEN];
    batch_requests(reqs, BATCH_N, "cb6", urls, json);
    CHECK(countersign_client_set_poll_interval(c, 0.5, err) == COUNTERSIGN_OK, "poll 0.5 s");

    /* Refused locally: nothing is sent. */
    enum countersign_code rc = countersign_submit_batch(c, "bad id", reqs, BATCH_N, true, &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && st == NULL, "a batch id with a space -> %s: %s",
          countersign_code_name(rc), e.message);
    rc = countersign_submit_batch(c, "cb6", reqs, 0, true, &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "no requests and seal -> %s: %s",
          countersign_code_name(rc), e.message);
    reqs[1].idempotency_key = "dup";
    reqs[4].idempotency_key = "dup";
    rc = countersign_submit_batch(c, "cb6", reqs, BATCH_N, true, &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && e.batch_index == 4 && !strcmp(e.batch_id, "cb6") &&
              strstr(e.message, "requests[1] and requests[4]"),
          "two requests with one key -> %s, index %ld: %s", countersign_code_name(rc),
          e.batch_index, e.message);
    reqs[1].idempotency_key = reqs[4].idempotency_key = NULL;
    reqs[3].batch_id = "other";
    rc = countersign_submit_batch(c, "cb6", reqs, BATCH_N, true, &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && e.batch_index == 3,
          "a request of another batch -> %s, index %ld", countersign_code_name(rc), e.batch_index);
    reqs[3].batch_id = "cb6"; /* the same batch id is fine */
    reqs[5].json = "{not json";
    rc = countersign_submit_batch(c, "cb6", reqs, BATCH_N, true, &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && e.batch_index == 5 &&
              strstr(e.message, "requests[5]"),
          "bad JSON in requests[5] -> %s: %s", countersign_code_name(rc), e.message);
    reqs[5].json = json[5];
    rc = countersign_get_batch_status(c, "cb6", &st, &e);
    CHECK(rc == COUNTERSIGN_NOT_FOUND && e.http_status == 404 && st == NULL,
          "nothing was sent: the batch is unknown -> %s", countersign_code_name(rc));

    /* Submit and seal. */
    rc = countersign_submit_batch(c, "cb6", reqs, BATCH_N, true, &st, &e);
    if (!CHECK_CODE(rc, COUNTERSIGN_OK, e, "submit_batch of 6, sealed"))
        goto done;
    CHECK(!strcmp(st->batch_id, "cb6") && strlen(st->batch_uid) == COUNTERSIGN_ID_LEN &&
              !strcmp(st->status, "decidable") && st->expected == BATCH_N &&
              st->members == BATCH_N && strlen(st->digest) == 64 && !st->is_terminal &&
              st->expires_at[0] && st->grant_id && !strcmp(st->grant_id, "stripe"),
          "decidable, 6 of 6, digest %s", st->digest);
    CHECK(countersign_batch_count(st, "pending") == BATCH_N &&
              countersign_batch_count(st, "executed") == 0,
          "6 pending");
    bool ids_ok = st->n_approval_ids == BATCH_N;
    for (size_t i = 0; ids_ok && i < BATCH_N; i++)
        ids_ok = strlen(st->approval_ids[i]) == COUNTERSIGN_ID_LEN &&
                 (i == 0 || strcmp(st->approval_ids[i], st->approval_ids[i - 1]) != 0);
    CHECK(ids_ok, "an approval id per request");

    /* Again: the same members (keys "cb6:<i>"), the same seal. */
    rc = countersign_submit_batch(c, "cb6", reqs, BATCH_N, true, &again, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "the same batch again")) {
        bool same = again->n_approval_ids == BATCH_N && again->members == BATCH_N;
        for (size_t i = 0; same && i < BATCH_N; i++)
            same = !strcmp(again->approval_ids[i], st->approval_ids[i]);
        CHECK(same && !strcmp(again->digest, st->digest), "the same members, the same digest");
    }
    countersign_batch_status_free(again);
    again = NULL;
    rc = countersign_seal_batch(c, "cb6", BATCH_N, NULL, &e);
    CHECK_CODE(rc, COUNTERSIGN_OK, e, "the same seal again");
    rc = countersign_seal_batch(c, "cb6", BATCH_N + 1, &again, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_CONFLICT, e, "a seal with another count"))
        CHECK(e.http_status == 409 && !strcmp(e.server_code, "conflict") &&
                  !strcmp(e.batch_id, "cb6") && e.batch_index == -1 && again == NULL,
              "409 conflict: %s", e.message);
    rc = countersign_seal_batch(c, "cb6", 0, NULL, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "a count of 0 -> %s", countersign_code_name(rc));

    /* Waiting while nobody decides. */
    double t0 = now();
    rc = countersign_await_batch(c, "cb6", 1, &done, &e);
    double took = now() - t0;
    if (CHECK_CODE(rc, COUNTERSIGN_TIMEOUT, e, "await 1 s while decidable"))
        CHECK(took >= 0.9 && took < 1 + 5 * mult && !strcmp(e.last_status, "decidable") &&
                  !strcmp(e.server_code, "timeout") && strstr(e.message, "pending 6") &&
                  done == NULL,
              "gave up after %.2f s: %s", took, e.message);

    /* Alice approves all but the third on the batch page. */
    long s = decide_batch("cb6", "alice", "approve", "cb6:2",
                          "refunds checked against the tickets; cb6:2 was already refunded", why,
                          sizeof(why));
    CHECK(s == 200, "alice approved all but cb6:2 on the batch page (HTTP %ld, %s)", s, why);
    rc = countersign_await_batch(c, "cb6", 90 * mult, &done, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await_batch")) {
        CHECK(done->is_terminal && countersign_batch_count(done, "executed") == 5 &&
                  countersign_batch_count(done, "denied") == 1 && done->n_counts == 2,
              "counts: executed %d, denied %d (%zu statuses)",
              countersign_batch_count(done, "executed"), countersign_batch_count(done, "denied"),
              done->n_counts);
        CHECK(!strcmp(done->status, "decided") && !strcmp(done->decision, "approved") &&
                  done->decided_at[0] && done->finished_at[0] && done->decided_by[0] &&
                  done->approvals_received == 1 && done->n_approval_ids == 0,
              "decided (%s, %s) by %s", done->status, done->decision, done->decided_by);
    }
    rc = countersign_await_approval(c, st->approval_ids[2], 10 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_DENIED, e, "await of the excepted member"))
        CHECK(strstr(e.reason, "already refunded") != NULL, "its reason: %s", e.reason);
    countersign_response_free(r);
    r = NULL;
    rc = countersign_await_approval(c, st->approval_ids[0], 10 * mult, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await of an approved member"))
        CHECK(r->status_code == 201, "executed: %d", r->status_code);
    countersign_response_free(r);
    r = NULL;
    rc = countersign_get_batch_status(c, "nope", &again, &e);
    CHECK_CODE(rc, COUNTERSIGN_NOT_FOUND, e, "an unknown batch");

    /* A refused member stops the submission; the batch is not sealed. */
    countersign_batch_status_free(st);
    st = NULL;
    batch_requests(reqs, 4, "cbr", urls, json);
    reqs[2].grant_id = "no-such-grant";
    rc = countersign_submit_batch(c, "cbr", reqs, 4, true, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_NOT_FOUND, e, "a member with an unknown grant"))
        CHECK(e.batch_index == 2 && !strcmp(e.batch_id, "cbr") &&
                  !strcmp(e.server_code, "unknown_grant") && st == NULL,
              "index %ld, %s: %s", e.batch_index, e.server_code, e.message);
    rc = countersign_get_batch_status(c, "cbr", &again, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "the refused batch's status"))
        CHECK(again->members == 2 && again->expected == -1 && !strcmp(again->status, "open") &&
                  !again->digest[0],
              "2 members, not sealed, open (%d, %d, %s)", again->members, again->expected,
              again->status);
    countersign_batch_status_free(again);
    again = NULL;
    reqs[2].grant_id = "stripe";
    rc = countersign_submit_batch(c, "cbr", reqs, 4, false, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "fixed and submitted again, without the seal"))
        CHECK(st->members == 4 && st->expected == -1 && st->n_approval_ids == 4,
              "4 members, not sealed");
    rc = countersign_seal_batch(c, "cbr", 4, &again, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "seal_batch 4"))
        CHECK(!strcmp(again->status, "decidable") && again->expected == 4, "decidable, expected 4");
done:
    countersign_batch_status_free(st);
    countersign_batch_status_free(again);
    countersign_batch_status_free(done);
}

/*
 * Members produced on Kafka with batch_id, sealed with countersign_produce_seal
 * (one batch seal last, one seal first): both become decidable; the first is
 * approved and awaited over HTTP.
 */
void test_batch_kafka(struct countersign_client *c)
{
    char err[COUNTERSIGN_ERRLEN], why[512];
    struct countersign_producer *p = signing_producer(err);
    struct countersign_batch_status *st = NULL;
    struct countersign_error e;
    if (!CHECK(p != NULL, "producer_new: %s", p ? "ok" : err))
        return;
    CHECK(countersign_client_set_poll_interval(c, 0.5, err) == COUNTERSIGN_OK, "poll 0.5 s");
    char url[256], id[64];
    struct countersign_envelope env = {
        .agent = "bot1",
        .grant_id = "stripe",
        .method = "POST",
        .url = url,
        .json = "{\"amount\":300}",
        .reason = "refund of a duplicate charge (kafka batch)",
        .request_id = id,
    };
    bool all = true;
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof(url), "%s/v1/batch/ckb/%d", stub_url, i);
        snprintf(id, sizeof(id), "ckb-%d", i);
        env.batch_id = "ckb";
        all &= countersign_produce_request(p, &env, err) == COUNTERSIGN_OK;
    }
    CHECK(all, "3 members of ckb produced: %s", err);
    enum countersign_code rc = countersign_produce_seal(p, "bot1", "ckb", 3, err);
    CHECK(rc == COUNTERSIGN_OK, "seal ckb for 3 produced: %s", err);

    rc = countersign_produce_seal(p, "bot1", "ckf", 2, err);
    CHECK(rc == COUNTERSIGN_OK, "seal ckf for 2 produced first: %s", err);
    all = true;
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), "%s/v1/batch/ckf/%d", stub_url, i);
        snprintf(id, sizeof(id), "ckf-%d", i);
        env.batch_id = "ckf";
        all &= countersign_produce_request(p, &env, err) == COUNTERSIGN_OK;
    }
    CHECK(all, "then its 2 members: %s", err);

    CHECK(countersign_produce_seal(p, "bot1", "ckb", 0, err) == COUNTERSIGN_INVALID_ARGUMENT,
          "a seal count of 0 is refused: %s", err);
    CHECK(countersign_produce_seal(p, "bot1", "c/kb", 3, err) == COUNTERSIGN_INVALID_ARGUMENT,
          "a bad batch id is refused: %s", err);
    CHECK(countersign_produce_seal(p, NULL, "ckb", 3, err) == COUNTERSIGN_INVALID_ARGUMENT,
          "a seal without agent is refused: %s", err);
    countersign_producer_free(p);

    st = batch_until(c, "ckb", "decidable", 30 * mult);
    CHECK(st && !strcmp(st->status, "decidable") && st->expected == 3 && st->members == 3 &&
              strlen(st->digest) == 64,
          "ckb decidable, 3 of 3 (%s)", st ? st->status : "unknown");
    countersign_batch_status_free(st);
    st = batch_until(c, "ckf", "decidable", 30 * mult);
    CHECK(st && !strcmp(st->status, "decidable") && st->expected == 2 && st->members == 2,
          "ckf (seal first) decidable, 2 of 2 (%s)", st ? st->status : "unknown");
    countersign_batch_status_free(st);
    st = NULL;

    long s = decide_batch("ckb", "bob", "approve", NULL, "all three checked", why, sizeof(why));
    CHECK(s == 200, "bob approved all of ckb (HTTP %ld, %s)", s, why);
    rc = countersign_await_batch(c, "ckb", 90 * mult, &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await_batch ckb"))
        CHECK(countersign_batch_count(st, "executed") == 3 && st->n_counts == 1 && st->is_terminal,
              "3 executed");
    countersign_batch_status_free(st);
}

/* ==== main =============================================================== */
