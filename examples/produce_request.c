/*
 * produce_request.c -- enqueue a request for approval through Kafka instead
 * of HTTP, as an event-driven backend or a batch refund pipeline does.
 *
 *   produce_request REQUEST_ID [PROVIDER_URL [AMOUNT]]
 *
 * Brokers come from $CS_KAFKA_BROKERS (default 127.0.0.1:9092), the topic
 * prefix from $CS_TOPIC_PREFIX (default "countersign": the topic is
 * countersign.requests), the agent and grant from $COUNTERSIGN_AGENT and
 * $COUNTERSIGN_GRANT (default "bot1", "stripe"), and the agent's signing key
 * from $COUNTERSIGN_SIGNING_KEY_ID and $COUNTERSIGN_SIGNING_SECRET (what
 * `countersign agent key create bot1` printed). The worker checks the
 * signature, ingests the envelope as that agent and the approval appears
 * like one submitted over HTTP; its outcome goes to the
 * results topic. A repeated REQUEST_ID is a no-op there, so re-running after
 * a crash is safe. Exit status 0 once the broker stored the message.
 */
#include <stdio.h>
#include <stdlib.h>

#include "countersign.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: produce_request REQUEST_ID [PROVIDER_URL [AMOUNT]]\n");
        return 2;
    }
    const char *url = argc > 2 ? argv[2] : "https://api.stripe.com/v1/refunds";
    int amount = argc > 3 ? atoi(argv[3]) : 2500;
    const char *brokers = getenv("CS_KAFKA_BROKERS");
    const char *agent = getenv("COUNTERSIGN_AGENT"), *grant = getenv("COUNTERSIGN_GRANT");

    char err[COUNTERSIGN_ERRLEN];
    struct countersign_producer *producer = countersign_producer_new(
        brokers ? brokers : "127.0.0.1:9092", getenv("CS_TOPIC_PREFIX"), err);
    if (!producer) {
        fprintf(stderr, "countersign: %s\n", err);
        return 2;
    }
    /* Every envelope is signed with the agent's key (unsigned ones are refused). */
    if (countersign_producer_set_signing_key(producer, getenv("COUNTERSIGN_SIGNING_KEY_ID"),
                                             getenv("COUNTERSIGN_SIGNING_SECRET"), err)) {
        fprintf(stderr, "countersign: signing key: %s\n", err);
        countersign_producer_free(producer);
        return 2;
    }

    char json[128];
    snprintf(json, sizeof(json), "{\"charge\":\"ch_1\",\"amount\":%d}", amount);
    const struct countersign_header headers[] = {{"Stripe-Version", "2024-06-20"}};
    struct countersign_envelope env = {
        .request_id = argv[1], /* keys the message; deduplicated per agent */
        .agent = agent ? agent : "bot1",
        .grant_id = grant ? grant : "stripe",
        .method = "POST",
        .url = url,
        .headers = headers,
        .n_headers = 1,
        .json = json,
        .reason = "customer charged twice, ticket #4312",
        .context = "{\"ticket\":4312}",
    };

    /* Returns once the broker acknowledged the message (or after 30 s). */
    enum countersign_code rc = countersign_produce_request(producer, &env, err);
    if (rc == COUNTERSIGN_OK)
        printf("enqueued %s\n", env.request_id);
    else
        fprintf(stderr, "not enqueued (%s): %s\n", countersign_code_name(rc), err);
    countersign_producer_free(producer);
    return rc == COUNTERSIGN_OK ? 0 : 1;
}
