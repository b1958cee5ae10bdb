/*
 * dead_letters.c -- what the ingest says of a message it refuses: the dead
 * letter it publishes (<prefix>.dlq, README "Dead letters") and the record
 * it stores for the operator console (sql/queries/console.sql
 * dead_letters_insert), whose preview is safe to show a person.
 */
#include <stdio.h>
#include <string.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_log.h"
#include "worker.h"

/*
 * A preview of a refused message that is safe to show an operator: of a
 * JSON object, its keys and its identifying fields (request_id, agent,
 * grant_id, method; never headers, bodies or URLs, which may carry
 * credentials the message should not have held); of anything else, its
 * size and first bytes in hex. At most 200 bytes of printable ASCII.
 */
static void safe_preview(const rd_kafka_message_t *m, char out[201])
{
    static const char *const shown[] = {"request_id", "agent", "grant_id", "method"};
    json_object *doc = NULL;
    char err[CS_ERRLEN], t[1024];
    size_t n = 0;
#define ADD(...)                                                                   \
    (n += (size_t)snprintf(t + n, n < sizeof(t) ? sizeof(t) - n : 0, __VA_ARGS__), \
     n = n < sizeof(t) ? n : sizeof(t) - 1)
    t[0] = '\0';
    if (m->payload && cs_json_parse(m->payload, m->len, &doc, err) == CS_OK &&
        json_object_is_type(doc, json_type_object)) {
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
            json_object *v = NULL;
            if (json_object_object_get_ex(doc, shown[i], &v) &&
                json_object_is_type(v, json_type_string))
                ADD("%s=%.48s ", shown[i], json_object_get_string(v));
        }
        ADD("keys:");
        json_object_object_foreach(doc, key, val)
        {
            (void)val;
            ADD(" %.32s", key);
        }
    } else {
        const unsigned char *p = m->payload;
        ADD("not a JSON object; %zu bytes:", m->payload ? m->len : 0);
        for (size_t i = 0; p && i < m->len && i < 16; i++)
            ADD(" %02x", p[i]);
    }
#undef ADD
    json_object_put(doc);
    size_t k = 0;
    for (size_t i = 0; i < n && k < 200; i++)
        out[k++] = t[i] >= 0x20 && t[i] < 0x7f ? t[i] : '?';
    out[k] = '\0';
}

/* What a dead letter and its record say of message m: reason, message, topic, partition, offset. */
json_object *dead_letter_fields(const rd_kafka_message_t *m, enum cs_err rc, const char *detail)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "reason", json_object_new_string(cs_err_code(rc)));
    json_object_object_add(o, "message", json_object_new_string(detail));
    json_object_object_add(o, "topic", json_object_new_string(rd_kafka_topic_name(m->rkt)));
    json_object_object_add(o, "partition", json_object_new_int(m->partition));
    json_object_object_add(o, "offset", json_object_new_int64(m->offset));
    return o;
}

json_object *dead_letter_record(const rd_kafka_message_t *m, enum cs_err rc, const char *detail)
{
    unsigned char hash[CS_SHA256_LEN];
    char hex[2 * CS_SHA256_LEN + 1], preview[201];
    cs_sha256(m->payload ? m->payload : "", m->payload ? m->len : 0, hash);
    cs_hex_encode(hash, sizeof(hash), hex);
    safe_preview(m, preview);
    json_object *o = dead_letter_fields(m, rc, detail);
    json_object_object_add(o, "size", json_object_new_int64(m->payload ? (int64_t)m->len : 0));
    json_object_object_add(o, "sha256", json_object_new_string(hex));
    json_object_object_add(o, "preview", json_object_new_string(preview));
    return o;
}

const void *dead_letter_key(const rd_kafka_message_t *m, char hashed[DEAD_LETTER_KEY_MAX],
                            size_t *len)
{
    *len = m->key ? m->key_len : 0;
    if (*len <= 1024)
        return m->key;
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(m->key, m->key_len, h);
    memcpy(hashed, "sha256:", 7);
    cs_hex_encode(h, sizeof(h), hashed + 7);
    *len = strlen(hashed);
    return hashed;
}

void dead_letter_dropped(const void *key, size_t key_len, rd_kafka_resp_err_t e)
{
    static struct cs_log_limit lim;
    unsigned suppressed = 0;
    if (cs_log_limit_allow(&lim, 5, &suppressed))
        cs_log(CS_LOG_ERROR, "ingest",
               "a dead letter (key %.*s) cannot be written and is "
               "skipped: %s (%u similar suppressed)",
               (int)(key_len > 64 ? 64 : key_len), key ? (const char *)key : "",
               rd_kafka_err2str(e), suppressed);
}
