/*
 * test_producer.c -- the C client's Kafka producer against the running
 * system (tests/integration/test_sdk_c.py and test_kafka_security.py):
 * envelopes signed with bot1's key, the signer against the documented
 * vector, and the producer's refusals of properties it owns.
 */
#include <stdlib.h>
#include <string.h>

#include "countersign.h"
#include "cs_mem.h"
#include "test_client.h"

/*
 * A producer for the system under test; with $COUNTERSIGN_TEST_KAFKA_PROPS
 * ("name=value" lines: SASL, TLS) through countersign_producer_new_props.
 */
struct countersign_producer *signing_producer(char *err)
{
    const char *brokers = getenv("CS_KAFKA_BROKERS"), *prefix = getenv("CS_TOPIC_PREFIX");
    const char *text = getenv("COUNTERSIGN_TEST_KAFKA_PROPS");
    char *copy = cs_strdup(text ? text : "");
    const char *props[64];
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && n < 32;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        props[2 * n] = line;
        props[2 * n + 1] = eq + 1;
        n++;
    }
    struct countersign_producer *p = countersign_producer_new_props(brokers, prefix, props, n, err);
    cs_free(copy);
    if (p && countersign_producer_set_signing_key(p, getenv("COUNTERSIGN_SIGNING_KEY_ID"),
                                                  getenv("COUNTERSIGN_SIGNING_SECRET"),
                                                  err) != COUNTERSIGN_OK) {
        countersign_producer_free(p);
        return NULL;
    }
    return p;
}

/* The signer against the vector of tests/unit/test_envsig.c, and its refusals. */
static void sign_vector(void)
{
    static const char secret[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    static const char value[] = "{\"request_id\":\"r1\",\"agent\":\"bot1\"}";
    char out[COUNTERSIGN_SIGNATURE_MAX], err[COUNTERSIGN_ERRLEN];
    enum countersign_code rc = countersign_sign_envelope("csk_00112233aabbccdd", secret, 1700000000,
                                                         value, strlen(value), out, err);
    CHECK(rc == COUNTERSIGN_OK &&
              !strcmp(out, "t=1700000000,k=csk_00112233aabbccdd,v1=2ea8549c31b92616"
                           "b700405b319ad33e82a9b21ec01dea7f5ca8362fe651330a"),
          "the documented vector: %s", rc ? err : out);
    rc = countersign_sign_envelope("csk_00112233AABBCCDD", secret, 1, value, 1, out, err);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "an upper-case key id is refused: %s", err);
    rc = countersign_sign_envelope("csk_00112233aabbccdd", "abc", 1, value, 1, out, err);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "a short secret is refused: %s", err);
}

void test_produce(void)
{
    char err[COUNTERSIGN_ERRLEN];
    sign_vector();
    struct countersign_producer *p = signing_producer(err);
    if (!CHECK(p != NULL, "producer_new: %s", p ? "ok" : err))
        return;
    char *url = stub("/v1/refunds/kafka");
    const struct countersign_header hdrs[] = {{"X-Trace", "c-kafka"}};
    struct countersign_envelope env = {
        .request_id = "c-produce-1",
        .agent = "bot1",
        .grant_id = "stripe",
        .method = "POST",
        .url = url,
        .json = "{\"amount\":500,\"charge\":\"ch_1\"}",
        .headers = hdrs,
        .n_headers = 1,
        .reason = "customer charged twice, ticket #4312",
        .context = "{\"ticket\":4312}",
    };
    enum countersign_code rc = countersign_produce_request(p, &env, err);
    CHECK(rc == COUNTERSIGN_OK, "produce c-produce-1 (needs approval): %s", err);
    env.request_id = "c-produce-2";
    env.json = "{\"amount\":20}";
    rc = countersign_produce_request(p, &env, err);
    CHECK(rc == COUNTERSIGN_OK, "produce c-produce-2 (no approval needed): %s", err);
    env.agent = NULL;
    rc = countersign_produce_request(p, &env, err);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "an envelope without agent is refused: %s", err);
    countersign_producer_free(p);
    CHECK(countersign_producer_new("", NULL, err) == NULL, "no brokers refused: %s", err);
    const char *own[] = {"acks", "1"}, *secret[] = {"sasl.password", ""}, *odd[] = {"no.such", "x"};
    CHECK(!countersign_producer_new_props("127.0.0.1:1", NULL, own, 1, err) && strstr(err, "acks"),
          "acks is the producer's own: %s", err);
    CHECK(!countersign_producer_new_props("127.0.0.1:1", NULL, odd, 1, err) &&
              strstr(err, "no.such"),
          "an unknown property is refused: %s", err);
    p = countersign_producer_new_props("127.0.0.1:1", NULL, secret, 1, err);
    CHECK(p != NULL, "an empty password is a value like another: %s", p ? "ok" : err);
    countersign_producer_free(p);
    cs_free(url);
}
