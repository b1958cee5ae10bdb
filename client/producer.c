/*
 * producer.c -- the Kafka side door of the C client: enqueues a request
 * envelope on <prefix>.requests with librdkafka, keyed by its request_id,
 * or a batch's seal message ({"type": "seal", "agent", "batch_id",
 * "count"}, keyed by the batch id), for the worker's ingest (README "Kafka
 * topics and messages", "Batches").
 *
 * Each produce waits for its delivery report, so a return of COUNTERSIGN_OK
 * means the broker stored the message (acks=all, idempotent producer) and
 * nothing is in flight between calls: countersign_producer_free() never
 * hangs on an unreleased message (librdkafka #3470), and there is no flush
 * to forget. A broker that stays away fails the call after
 * message.timeout.ms (DELIVERY_TIMEOUT_MS). It does not read any topic, and
 * it does not create topics (the worker does).
 *
 * With a signing key (countersign_producer_set_signing_key) every message
 * carries the countersign-signature header, made at the time of producing
 * (include/cs_envsig.h has the layout; this is its client-side twin,
 * checked against the same vector by test_client's "sign" case and
 * tests/unit/test_envsig.c).
 */
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "cs_mem.h"

#define DELIVERY_TIMEOUT_MS 30000
#define CLOSE_FLUSH_MS 5000

struct countersign_producer {
    rd_kafka_t *rk;
    char *topic;     /* <prefix>.requests */
    char key_id[24]; /* empty: unsigned */
    char secret[65];
};

/* What one delivery report says; lives on the producing call's stack. */
struct delivery {
    bool done;
    rd_kafka_resp_err_t err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct delivery *d = msg->_private;
    if (d) {
        d->err = msg->err;
        d->done = true;
    }
}

/* librdkafka's own log lines go nowhere: the caller gets errors as return codes. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/* True when name is a setting the producer makes itself (its guarantees rest on them). */
static bool locked(const char *name)
{
    static const char *const own[] = {"bootstrap.servers", "enable.idempotence", "acks",
                                      "message.timeout.ms", NULL};
    for (const char *const *o = own; *o; o++)
        if (!strcmp(name, *o))
            return true;
    return false;
}

/* True when the value of librdkafka property name is a secret (never in an error). */
static bool secret_prop(const char *name)
{
    size_t n = strlen(name);
    return strstr(name, "password") || strstr(name, "secret") ||
           strstr(name, "oauthbearer.config") || (n > 4 && !strcmp(name + n - 4, ".pem"));
}

struct countersign_producer *countersign_producer_new(const char *brokers, const char *topic_prefix,
                                                      char err[COUNTERSIGN_ERRLEN])
{
    return countersign_producer_new_props(brokers, topic_prefix, NULL, 0, err);
}

struct countersign_producer *countersign_producer_new_props(const char *brokers,
                                                            const char *topic_prefix,
                                                            const char *const *props,
                                                            size_t n_props,
                                                            char err[COUNTERSIGN_ERRLEN])
{
    char errstr[512];
    if (!brokers || !*brokers) {
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "brokers are required (host:port,...)");
        return NULL;
    }
    if (!topic_prefix || !*topic_prefix)
        topic_prefix = "countersign";
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", DELIVERY_TIMEOUT_MS);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const settings[][2] = {
        {"bootstrap.servers", brokers},
        {"client.id", "countersign-c"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "0"},
        {"message.timeout.ms", timeout},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "kafka %s: %s", settings[i][0], errstr);
            return NULL;
        }
    }
    for (size_t i = 0; i < n_props; i++) {
        const char *k = props[2 * i], *v = props[2 * i + 1];
        const char *why = !k || !v    ? "a name and a value are required"
                          : locked(k) ? "set by the producer itself"
                                      : NULL;
        if (!why && rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            why = secret_prop(k) ? "refused by librdkafka (a secret: the value is not shown)"
                                 : errstr;
        if (why) {
            rd_kafka_conf_destroy(conf);
            client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "kafka property %s: %s", k ? k : "(null)",
                       why);
            return NULL;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) { /* on failure conf is still ours */
        rd_kafka_conf_destroy(conf);
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "kafka producer: %s", errstr);
        return NULL;
    }
    struct countersign_producer *p = cs_calloc(1, sizeof(*p));
    p->rk = rk;
    p->topic = cs_asprintf("%s.requests", topic_prefix);
    if (err)
        err[0] = '\0';
    return p;
}

static bool hex_ok(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* A well-formed key id and secret, or INVALID_ARGUMENT. */
static enum countersign_code key_ok(const char *key_id, const char *secret, char *err)
{
    if (!key_id || strncmp(key_id, "csk_", 4) || !hex_ok(key_id + 4, 16))
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a signing key id is csk_ and 16 "
                          "lower-case hex digits");
    if (!hex_ok(secret, 64))
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a signing secret is 64 lower-case "
                          "hex digits");
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_sign_envelope(const char *key_id, const char *secret,
                                                long long unix_time, const void *value, size_t len,
                                                char out[COUNTERSIGN_SIGNATURE_MAX],
                                                char err[COUNTERSIGN_ERRLEN])
{
    enum countersign_code rc = key_ok(key_id, secret, err);
    if (rc)
        return rc;
    if (unix_time < 0 || unix_time > 999999999999LL || (!value && len))
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a time of 0-999999999999 seconds "
                          "and a value are required");
    char t[16];
    snprintf(t, sizeof(t), "%lld", unix_time);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t tl = strlen(t);
    unsigned char *msg = cs_malloc(tl + 1 + len + 1); /* "<t>." || value */
    memcpy(msg, t, tl);
    msg[tl] = '.';
    if (len)
        memcpy(msg + tl + 1, value, len);
    bool ok = HMAC(EVP_sha256(), secret, 64, msg, tl + 1 + len, mac, &maclen) != NULL;
    cs_free(msg);
    if (!ok || maclen != 32)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "HMAC-SHA256 failed (OpenSSL)");
    int n = snprintf(out, COUNTERSIGN_SIGNATURE_MAX, "t=%s,k=%s,v1=", t, key_id);
    for (unsigned i = 0; i < maclen; i++)
        n += snprintf(out + n, (size_t)(COUNTERSIGN_SIGNATURE_MAX - n), "%02x", mac[i]);
    if (err)
        err[0] = '\0';
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_producer_set_signing_key(struct countersign_producer *p,
                                                           const char *key_id, const char *secret,
                                                           char err[COUNTERSIGN_ERRLEN])
{
    if (!p)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "a producer is required");
    enum countersign_code rc = key_ok(key_id, secret, err);
    if (rc)
        return rc;
    snprintf(p->key_id, sizeof(p->key_id), "%s", key_id);
    snprintf(p->secret, sizeof(p->secret), "%s", secret);
    if (err)
        err[0] = '\0';
    return COUNTERSIGN_OK;
}

/*
 * Enqueues value (a JSON object text) keyed by key on the requests topic,
 * signed when the producer has a key, and waits for its delivery report;
 * `key` also names it in errors.
 */
static enum countersign_code produce(struct countersign_producer *p, const char *key, char *value,
                                     char *err)
{
    struct delivery d = {0};
    rd_kafka_headers_t *hdrs = NULL;
    if (p->key_id[0]) {
        char sig[COUNTERSIGN_SIGNATURE_MAX];
        enum countersign_code rc = countersign_sign_envelope(
            p->key_id, p->secret, (long long)time(NULL), value, strlen(value), sig, err);
        if (rc)
            return rc;
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, COUNTERSIGN_SIGNATURE_HEADER, -1, sig, -1);
    }
    /* On success the message owns hdrs; on failure they are still ours. */
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, strlen(value)),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (kerr && hdrs)
        rd_kafka_headers_destroy(hdrs);
    if (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "kafka: the message is larger "
                          "than the producer's message.max.bytes");
    if (kerr)
        return client_err(err, COUNTERSIGN_CONNECTION, "kafka: could not enqueue to %s: %s",
                          p->topic, rd_kafka_err2str(kerr));
    /* The report always comes, at the latest after message.timeout.ms. */
    while (!d.done)
        rd_kafka_poll(p->rk, 100);
    if (d.err)
        return client_err(err, COUNTERSIGN_CONNECTION, "kafka: %s was not delivered to %s: %s", key,
                          p->topic, rd_kafka_err2str(d.err));
    if (err)
        err[0] = '\0';
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_produce_request(struct countersign_producer *p,
                                                  const struct countersign_envelope *env,
                                                  char err[COUNTERSIGN_ERRLEN])
{
    if (!p || !env)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a producer and an envelope are "
                          "required");
    struct client_fields f = {
        .id = env->request_id,
        .agent = env->agent,
        .grant_id = env->grant_id,
        .method = env->method,
        .url = env->url,
        .json = env->json,
        .reason = env->reason,
        .context = env->context,
        .batch_id = env->batch_id,
        .body = env->body,
        .body_len = env->body_len,
        .headers = env->headers,
        .n_headers = env->n_headers,
        .query_params = env->query_params,
        .n_query_params = env->n_query_params,
        .path_params = env->path_params,
        .n_path_params = env->n_path_params,
    };
    char *value = NULL;
    enum countersign_code rc = client_request_json(&f, CLIENT_JSON_ENVELOPE, &value, err);
    if (rc)
        return rc;
    rc = produce(p, env->request_id, value, err);
    cs_free(value);
    return rc;
}

enum countersign_code countersign_produce_seal(struct countersign_producer *p, const char *agent,
                                               const char *batch_id, int count,
                                               char err[COUNTERSIGN_ERRLEN])
{
    if (!p || !agent || !*agent)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a producer and an agent are "
                          "required");
    if (!client_batch_id_ok(batch_id))
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "a batch id is 1-%d letters, "
                          "digits and ._:- only",
                          COUNTERSIGN_BATCH_ID_MAX);
    if (count < 1 || count > COUNTERSIGN_BATCH_MAX)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "count must be from 1 to %d, "
                          "not %d",
                          COUNTERSIGN_BATCH_MAX, count);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("seal"));
    json_object_object_add(o, "agent", json_object_new_string(agent));
    json_object_object_add(o, "batch_id", json_object_new_string(batch_id));
    json_object_object_add(o, "count", json_object_new_int(count));
    char *value = cs_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    enum countersign_code rc = produce(p, batch_id, value, err);
    cs_free(value);
    return rc;
}

void countersign_producer_free(struct countersign_producer *p)
{
    if (!p)
        return;
    rd_kafka_flush(p->rk, CLOSE_FLUSH_MS);
    rd_kafka_destroy(p->rk);
    cs_free(p->topic);
    OPENSSL_cleanse(p->secret, sizeof(p->secret));
    cs_free(p);
}
