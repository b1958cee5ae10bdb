/*
 * submit_and_wait.c -- the full flow of the Countersign C client: submit a
 * refund with a concrete reason, print the approval page (approval_url) to
 * hand to a person -- approvers sign in on it and decide there -- wait for
 * the approvers, and handle every outcome.
 *
 *   COUNTERSIGN_API_KEY=... [COUNTERSIGN_URL=http://127.0.0.1:8080] \
 *   [COUNTERSIGN_GRANT=stripe] submit_and_wait [PROVIDER_URL [AMOUNT]]
 *
 * PROVIDER_URL defaults to https://api.stripe.com/v1/refunds and must be
 * under a base URL the operator allowed for the grant. Exit status:
 * 0 when the provider answered 2xx, 1 for any other outcome, 2 for bad usage.
 * Build: see examples/README.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include "countersign.h"

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "https://api.stripe.com/v1/refunds";
    int amount = argc > 2 ? atoi(argv[2]) : 2500;
    const char *key = getenv("COUNTERSIGN_API_KEY");
    const char *grant = getenv("COUNTERSIGN_GRANT");
    if (!key) {
        fprintf(stderr, "set COUNTERSIGN_API_KEY (countersign key create <agent>)\n");
        return 2;
    }

    /* NULL base URL: $COUNTERSIGN_URL, else http://127.0.0.1:8080. */
    char err[COUNTERSIGN_ERRLEN];
    struct countersign_client *client = countersign_client_new(NULL, key, err);
    if (!client) {
        fprintf(stderr, "countersign: %s\n", err);
        return 2;
    }

    /* The call Countersign makes for us, with the secret of the grant.
     * Approvers read the reason: say why, with the ticket. The idempotency key
     * is our own identity of this refund, so a resubmission after a crash
     * finds the same approval instead of making a second one. */
    char json[128];
    snprintf(json, sizeof(json), "{\"charge\":\"ch_3MmlLrLkdIwHu7ix0snN0B15\",\"amount\":%d}",
             amount);
    const struct countersign_header headers[] = {{"Stripe-Version", "2024-06-20"}};
    struct countersign_request req = {
        .method = "POST",
        .url = url,
        .grant_id = grant ? grant : "stripe",
        .json = json,
        .headers = headers,
        .n_headers = 1,
        .reason = "customer was charged twice for order 1042 (ticket #4312); "
                  "refunding the duplicate charge",
        .context = "{\"ticket\":4312,\"order\":1042}",
    };

    struct countersign_response *outcome = NULL, *result = NULL;
    struct countersign_error e;
    int status = 1;
    if (countersign_proxy_request(client, &req, &outcome, &e) != COUNTERSIGN_OK) {
        /* VALIDATION (e.g. forbidden_header), NOT_FOUND (unknown_grant),
         * PERMISSION (host_not_allowed), AUTHENTICATION, CONNECTION, ... */
        fprintf(stderr, "refused: %s (%s, HTTP %d): %s\n", countersign_code_name(e.code),
                e.server_code, e.http_status, e.message);
        goto done;
    }

    if (outcome->kind == COUNTERSIGN_RESULT) {
        result = outcome; /* the policy needed no approval: executed inline */
        outcome = NULL;
    } else {
        /* The approval's page: hand it to a person. Approvers sign in there
         * (single sign-on, or a one-time link sent to their own channel) and
         * decide on it; without a sign-in it shows no decision form, so
         * nothing this program holds can vote. */
        printf("waiting for approval: %s\n", outcome->approval_url);
        fflush(stdout);
        switch (countersign_await_approval(client, outcome->approval_id, 600, &result, &e)) {
        case COUNTERSIGN_OK: break;
        case COUNTERSIGN_DENIED: printf("denied by %s - %s\n", e.decided_by, e.reason); goto done;
        case COUNTERSIGN_EXPIRED:
            printf("nobody decided before %s\n", outcome->expires_at);
            goto done;
        case COUNTERSIGN_CANCELLED: printf("cancelled\n"); goto done;
        case COUNTERSIGN_EXECUTION_FAILED:
            /* Approved, but the call failed; "outcome_unknown" means the provider
             * may have received it: check there before trying again. */
            printf("approved but the call failed: %s\n", e.error_code);
            goto done;
        case COUNTERSIGN_TIMEOUT:
            /* Only our wait gave up: it may still be approved later. */
            printf("still %s; await %s again later\n", e.last_status, outcome->approval_id);
            goto done;
        default: fprintf(stderr, "could not wait: %s: %s\n", e.server_code, e.message); goto done;
        }
    }

    /* The body is NUL-terminated, so a text body prints as a string. */
    printf("provider answered %d %s\n", result->status_code, (const char *)result->body);
    status = result->status_code >= 200 && result->status_code < 300 ? 0 : 1;
done:
    countersign_response_free(outcome);
    countersign_response_free(result);
    countersign_client_free(client);
    return status;
}
