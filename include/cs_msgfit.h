/*
 * cs_msgfit.h -- making a Kafka message fit the broker's size limit.
 *
 * One message the broker cannot take must never stop a pipeline (issue 12
 * section 4): a dead letter of a huge request, a result carrying a large
 * provider response. These functions take the message and the limit (the
 * topic's max.message.bytes as the broker reports it, capped by the
 * producer's message.max.bytes: cs_kafka_limit_get) and return what to
 * publish, so the producing loops stay small:
 *   - an event or result (worker/relay.c) keeps everything when it fits;
 *     otherwise its body_b64 becomes the longest prefix that fits, with
 *     body_truncated true and "body_cut" saying so (the stored body's size
 *     and SHA-256, the limit, and the API route that returns it whole);
 *     then, if still too large, headers and error_message are cut the same
 *     way; as a last resort only the identifying fields remain;
 *   - a dead letter (worker/ingest.c) carries the original whole when it
 *     fits, else a prefix of it with original_truncated, original_size and
 *     original_sha256.
 * Pure functions: no I/O, no log. CS_MSGFIT_OVERHEAD bytes of the limit
 * are left for the record's framing (batch and record headers).
 */
#ifndef CS_MSGFIT_H
#define CS_MSGFIT_H

#include <json-c/json.h>
#include <stddef.h>

#define CS_MSGFIT_OVERHEAD 512

/*
 * payload[0..len): an outbox event or result (JSON object text), to go
 * under a key of key_len bytes. NULL when it fits as it is (publish it
 * unchanged); otherwise a cs_malloc'd replacement of *outlen bytes that
 * fits, which the caller frees. A payload that is not a JSON object and
 * does not fit also gets a minimal replacement (never NULL when too large).
 */
char *cs_msgfit_event(const char *payload, size_t len, size_t key_len, size_t limit,
                      size_t *outlen);

/*
 * The text of dead letter o (its reason, message, topic, partition and
 * offset; borrowed, gets original fields added) for the original message
 * orig[0..len), to go under a key of key_len bytes within limit. Returns a
 * cs_malloc'd text of *outlen bytes the caller frees.
 */
char *cs_msgfit_dead_letter(json_object *o, const void *orig, size_t len, size_t key_len,
                            size_t limit, size_t *outlen);

#endif
