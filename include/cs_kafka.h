/*
 * cs_kafka.h -- librdkafka clients configured one way for every process.
 *
 * Producers are idempotent (acks=all, ordered retries), so a relay
 * retrying after a broker outage never reorders or duplicates within a
 * session; consumers never auto-commit (ingest commits offsets only after
 * the Postgres commit). librdkafka's own log lines go through cs_log.
 */
#ifndef CS_KAFKA_H
#define CS_KAFKA_H

#include <librdkafka/rdkafka.h>

#include <stdbool.h>
#include <stdint.h>

#include "cs_config.h"
#include "cs_err.h"

/*
 * A producer. dr_cb (may be NULL) receives delivery reports from
 * rd_kafka_poll()/rd_kafka_flush() on the caller's thread; opaque is
 * passed to it. Returns NULL with err set on a configuration error.
 */
rd_kafka_t *cs_kafka_producer(const struct cs_config *cfg, const char *client_id,
                              void (*dr_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                            void *opaque),
                              void *opaque, char *err);

/* A consumer in group `group` with manual offset storage and commits. */
rd_kafka_t *cs_kafka_consumer(const struct cs_config *cfg, const char *client_id, const char *group,
                              char *err);

/*
 * Creates the topics that do not exist yet (n names, `partitions` each),
 * waiting at most timeout_ms. Existing topics are left as they are. The
 * topic named append_time_topic (may be NULL) is created with
 * message.timestamp.type=LogAppendTime: the broker stamps each record, and
 * signed envelopes' replay window is measured against that (cs_envsig.h).
 */
enum cs_err cs_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, int n, int partitions,
                                   const char *append_time_topic, int timeout_ms,
                                   char *err) CS_MUSTCHECK;

/*
 * Reads the broker's value of setting `name` of `topic` (DescribeConfigs;
 * e.g. max.message.bytes, message.timestamp.type) into out[outlen].
 * CS_ERR_KAFKA when the broker does not answer within timeout_ms or refuses;
 * CS_ERR_NOT_FOUND when the topic has no such setting.
 */
enum cs_err cs_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out,
                                  size_t outlen, int timeout_ms, char *err) CS_MUSTCHECK;

/*
 * The most bytes one record to `topics` may carry: the smallest
 * max.message.bytes the broker reports for them, capped by rk's own
 * message.max.bytes. Read when first asked and, while the broker cannot
 * say, again at most every 30 s (meanwhile the producer's limit, or
 * 1000000, is used and *known is false). Thread: the caller's; l is the
 * caller's.
 */
struct cs_kafka_limit {
    int64_t bytes;
    bool known;
    int64_t next_try_ms;
};
int64_t cs_kafka_limit_get(struct cs_kafka_limit *l, rd_kafka_t *rk, const char *const *topics,
                           int n);

/* True when a produce or delivery error is about this message (its size or
 * form) and retrying it can never succeed; false for outages and timeouts. */
bool cs_kafka_err_permanent(rd_kafka_resp_err_t e);

#endif
