/*
 * cs_kafka.c -- librdkafka configuration and topic creation (see cs_kafka.h).
 *
 * Every client gets the same base: the brokers, a client id, reconnect
 * backoff, then the operator's properties (SASL, TLS, ...: cs_config.h
 * kafka_props); producer and consumer settings Countersign needs for
 * correctness come last and cannot be overridden (cs_config refuses them).
 */
#include "cs_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_log.h"
#include "cs_mem.h"
#include "cs_time.h"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    enum cs_log_level l = level <= 3   ? CS_LOG_ERROR
                          : level == 4 ? CS_LOG_WARN
                          : level <= 6 ? CS_LOG_INFO
                                       : CS_LOG_DEBUG;
    cs_log(l, "kafka", "%s: %s", fac, buf);
}

static bool set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err)
{
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        cs_err_set(err, CS_ERR_CONFIG, "kafka %s: %s", k, e);
        return false;
    }
    return true;
}

/*
 * The operator's librdkafka properties (CS_KAFKA_PROPERTIES_FILE,
 * CS_KAFKA_PROP_*): security.protocol, sasl.*, ssl.* and any other. A
 * secret's value never reaches an error message (librdkafka's may quote it).
 */
static bool operator_props(rd_kafka_conf_t *conf, const struct cs_config *cfg, char *err)
{
    for (int i = 0; i < cfg->nkafka_props; i++) {
        const char *k = cfg->kafka_props[2 * i], *v = cfg->kafka_props[2 * i + 1];
        char e[512];
        if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK)
            continue;
        if (cs_config_kafka_prop_secret(k))
            cs_err_set(err, CS_ERR_CONFIG,
                       "Kafka property %s: refused by librdkafka (its "
                       "value is a secret and not shown)",
                       k);
        else
            cs_err_set(err, CS_ERR_CONFIG, "Kafka property %s: %s", k, e);
        return false;
    }
    return true;
}

static rd_kafka_conf_t *base_conf(const struct cs_config *cfg, const char *client_id, char *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (!set(conf, "bootstrap.servers", cfg->kafka_brokers, err) ||
        !set(conf, "client.id", client_id, err) || !set(conf, "reconnect.backoff.ms", "100", err) ||
        !set(conf, "reconnect.backoff.max.ms", "5000", err) ||
        !set(conf, "log.connection.close", "false", err) || !operator_props(conf, cfg, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *cs_kafka_producer(const struct cs_config *cfg, const char *client_id,
                              void (*dr_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                            void *opaque),
                              void *opaque, char *err)
{
    rd_kafka_conf_t *conf = base_conf(cfg, client_id, err);
    if (!conf)
        return NULL;
    if (!set(conf, "enable.idempotence", "true", err) || !set(conf, "acks", "all", err) ||
        !set(conf, "linger.ms", "5", err) || !set(conf, "message.timeout.ms", "30000", err) ||
        !set(conf, "compression.type", "lz4", err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (dr_cb)
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cs_err_set(err, CS_ERR_KAFKA, "cannot create producer: %s", e);
    }
    return rk;
}

rd_kafka_t *cs_kafka_consumer(const struct cs_config *cfg, const char *client_id, const char *group,
                              char *err)
{
    rd_kafka_conf_t *conf = base_conf(cfg, client_id, err);
    char session[24], heartbeat[24];
    snprintf(session, sizeof(session), "%lld", (long long)cfg->kafka_session_timeout_ms);
    snprintf(heartbeat, sizeof(heartbeat), "%lld", (long long)cfg->kafka_session_timeout_ms / 5);
    if (!conf)
        return NULL;
    if (!set(conf, "group.id", group, err) || !set(conf, "enable.auto.commit", "false", err) ||
        !set(conf, "enable.auto.offset.store", "false", err) ||
        !set(conf, "auto.offset.reset", "earliest", err) ||
        !set(conf, "enable.partition.eof", "false", err) ||
        !set(conf, "fetch.wait.max.ms", "50", err) ||
        !set(conf, "session.timeout.ms", session, err) ||
        !set(conf, "heartbeat.interval.ms", heartbeat, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cs_err_set(err, CS_ERR_KAFKA, "cannot create consumer: %s", e);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

enum cs_err cs_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, int n, int partitions,
                                   const char *append_time_topic, int timeout_ms, char *err)
{
    char e[512];
    rd_kafka_NewTopic_t **nt = cs_calloc((size_t)n, sizeof(*nt));
    for (int i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, 1, e, sizeof(e));
        cs_assert(nt[i]);
        if (append_time_topic && !strcmp(topics[i], append_time_topic))
            cs_assert(rd_kafka_NewTopic_set_config(nt[i], "message.timestamp.type",
                                                   "LogAppendTime") == 0);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, e, sizeof(e));
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, e, sizeof(e));
    rd_kafka_CreateTopics(rk, nt, (size_t)n, opt, q);
    enum cs_err rc = CS_OK;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        rc = cs_err_set(err, CS_ERR_KAFKA, "creating topics timed out");
    } else if (rd_kafka_event_error(ev)) {
        rc = cs_err_set(err, CS_ERR_KAFKA, "creating topics: %s", rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt && !rc; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
            if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                rc = cs_err_set(err, CS_ERR_KAFKA, "creating topic %s: %s",
                                rd_kafka_topic_result_name(tr[i]),
                                rd_kafka_topic_result_error_string(tr[i]));
            else if (!te)
                cs_log(CS_LOG_INFO, "kafka", "created topic %s (%d partitions)",
                       rd_kafka_topic_result_name(tr[i]), partitions);
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    for (int i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    cs_free(nt);
    return rc;
}

enum cs_err cs_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out,
                                  size_t outlen, int timeout_ms, char *err)
{
    char e[512];
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, e, sizeof(e));
    rd_kafka_DescribeConfigs(rk, &res, 1, opt, q);
    enum cs_err rc = cs_err_set(err, CS_ERR_NOT_FOUND, "topic %s has no setting %s", topic, name);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        rc = cs_err_set(err, CS_ERR_KAFKA, "describing topic %s timed out", topic);
    } else if (rd_kafka_event_error(ev)) {
        rc = cs_err_set(err, CS_ERR_KAFKA, "describing topic %s: %s", topic,
                        rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_DescribeConfigs_result_t *r = rd_kafka_event_DescribeConfigs_result(ev);
        size_t nres = 0, ncfg = 0;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(r, &nres);
        for (size_t i = 0; i < nres; i++) {
            if (rd_kafka_ConfigResource_error(rs[i])) {
                rc = cs_err_set(err, CS_ERR_KAFKA, "describing topic %s: %s", topic,
                                rd_kafka_ConfigResource_error_string(rs[i]));
                break;
            }
            const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[i], &ncfg);
            for (size_t k = 0; k < ncfg; k++) {
                const char *v = rd_kafka_ConfigEntry_value(ce[k]);
                if (!strcmp(rd_kafka_ConfigEntry_name(ce[k]), name) && v) {
                    snprintf(out, outlen, "%s", v);
                    rc = CS_OK;
                }
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

int64_t cs_kafka_limit_get(struct cs_kafka_limit *l, rd_kafka_t *rk, const char *const *topics,
                           int n)
{
    if (l->known || cs_now_ms() < l->next_try_ms)
        return l->bytes;
    char v[32], err[CS_ERRLEN];
    size_t vlen = sizeof(v);
    int64_t own = 1000000;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", v, &vlen) == RD_KAFKA_CONF_OK)
        own = strtoll(v, NULL, 10);
    int64_t least = own;
    bool all = true;
    for (int i = 0; i < n && all; i++) {
        if (cs_kafka_topic_config(rk, topics[i], "max.message.bytes", v, sizeof(v), 5000, err)) {
            all = false;
            cs_log(CS_LOG_WARN, "kafka",
                   "cannot read max.message.bytes of %s (%s): using %lld "
                   "bytes until the broker answers",
                   topics[i], err, (long long)least);
        } else if (strtoll(v, NULL, 10) > 0 && strtoll(v, NULL, 10) < least) {
            least = strtoll(v, NULL, 10);
        }
    }
    l->bytes = least;
    l->known = all;
    l->next_try_ms = cs_now_ms() + 30000;
    if (all)
        cs_log(CS_LOG_INFO, "kafka",
               "messages to %s%s limited to %lld bytes (the broker's "
               "max.message.bytes, capped by the producer's %lld)",
               topics[0], n > 1 ? " and others" : "", (long long)least, (long long)own);
    return least;
}

bool cs_kafka_err_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG: return true;
    default: return false;
    }
}
