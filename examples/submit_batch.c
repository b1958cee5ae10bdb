/*
 * submit_batch.c -- a batch of refunds with the Countersign C client:
 * submit every refund as a member of one batch (each with its own reason),
 * seal it, wait while the approvers decide the whole batch on one page
 * (approve all, deny all, or approve all but some), then print how many
 * refunds ran and how many were denied. The approvers are notified through
 * their own channels and sign in to decide; nothing this program holds
 * lets it vote.
 *
 *   COUNTERSIGN_API_KEY=... [COUNTERSIGN_URL=http://127.0.0.1:8080] \
 *   [COUNTERSIGN_GRANT=stripe] submit_batch BATCH_ID [PROVIDER_URL [COUNT]]
 *
 * PROVIDER_URL defaults to https://api.stripe.com/v1/refunds and must be
 * under a base URL the operator allowed for the grant; COUNT refunds (1..50,
 * default 3) go to PROVIDER_URL/<n>. Running it again with the same BATCH_ID
 * finds the same batch (each member's idempotency key is "BATCH_ID:<n>").
 * Exit status: 0 when every member executed, 1 otherwise, 2 for bad usage.
 * Build: see examples/README.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include "countersign.h"

#define MAX_REFUNDS 50

int main(int argc, char **argv)
{
    const char *key = getenv("COUNTERSIGN_API_KEY");
    const char *grant = getenv("COUNTERSIGN_GRANT");
    if (argc < 2 || !key) {
        fprintf(stderr, "usage: COUNTERSIGN_API_KEY=... submit_batch BATCH_ID [PROVIDER_URL "
                        "[COUNT]]\n");
        return 2;
    }
    const char *batch_id = argv[1];
    const char *provider = argc > 2 ? argv[2] : "https://api.stripe.com/v1/refunds";
    int count = argc > 3 ? atoi(argv[3]) : 3;
    if (count < 1 || count > MAX_REFUNDS) {
        fprintf(stderr, "COUNT must be 1..%d\n", MAX_REFUNDS);
        return 2;
    }

    char err[COUNTERSIGN_ERRLEN];
    struct countersign_client *client = countersign_client_new(NULL, key, err);
    if (!client) {
        fprintf(stderr, "countersign: %s\n", err);
        return 2;
    }

    /* One request per refund; approvers see each reason on the batch page.
     * All members use one grant. submit_batch fills in batch_id and, since
     * we give none, the idempotency keys "<batch_id>:<index>". */
    struct countersign_request reqs[MAX_REFUNDS] = {{0}};
    char urls[MAX_REFUNDS][512], json[MAX_REFUNDS][96], reasons[MAX_REFUNDS][160];
    for (int i = 0; i < count; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s/%d", provider, i);
        snprintf(json[i], sizeof(json[i]), "{\"charge\":\"ch_%04d\",\"amount\":%d}", i,
                 1000 + 250 * i);
        snprintf(reasons[i], sizeof(reasons[i]),
                 "order %d was shipped twice and charged twice (ticket #%d)", 2000 + i, 4400 + i);
        reqs[i] = (struct countersign_request){
            .method = "POST",
            .url = urls[i],
            .grant_id = grant ? grant : "stripe",
            .json = json[i],
            .reason = reasons[i],
        };
    }

    struct countersign_batch_status *batch = NULL, *done = NULL;
    struct countersign_error e;
    int status = 1;
    if (countersign_submit_batch(client, batch_id, reqs, (size_t)count, true, &batch, &e) !=
        COUNTERSIGN_OK) {
        /* A member refused (e.batch_index says which; nothing after it was sent
         * and the batch is not sealed), or the seal refused: fix, run again. */
        if (e.batch_index >= 0)
            fprintf(stderr, "refund %ld refused: ", e.batch_index);
        fprintf(stderr, "%s (%s, HTTP %d): %s\n", countersign_code_name(e.code), e.server_code,
                e.http_status, e.message);
        goto done;
    }
    printf("batch %s: %d members, %s; waiting for the approvers\n", batch->batch_id, batch->members,
           batch->status);
    fflush(stdout);

    switch (countersign_await_batch(client, batch_id, 3600, &done, &e)) {
    case COUNTERSIGN_OK: break;
    case COUNTERSIGN_TIMEOUT:
        /* Only our wait gave up: the batch may still be decided. */
        printf("still %s; await batch %s again later\n", e.last_status, batch_id);
        goto done;
    default: fprintf(stderr, "could not wait: %s: %s\n", e.server_code, e.message); goto done;
    }
    /* Denied or expired members are counted, not errors. */
    printf("batch %s %s: executed %d, denied %d, failed %d, expired %d\n", done->batch_id,
           done->decision[0] ? done->decision : done->status,
           countersign_batch_count(done, "executed"), countersign_batch_count(done, "denied"),
           countersign_batch_count(done, "failed"), countersign_batch_count(done, "expired"));
    status = countersign_batch_count(done, "executed") == done->members ? 0 : 1;
done:
    countersign_batch_status_free(batch);
    countersign_batch_status_free(done);
    countersign_client_free(client);
    return status;
}
