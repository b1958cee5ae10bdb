/*
 * cs_msgfit.c -- making a Kafka message fit the broker's limit (see cs_msgfit.h).
 *
 * A prefix is found by measuring: the message is serialised with an empty
 * field first (the fixed part), the room left becomes the prefix's length,
 * and the result is measured again (JSON escaping can only grow a string
 * field that is not base64), shrinking until it fits: a few rounds at most.
 */
#include "cs_msgfit.h"

#include <string.h>

#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"

/* The room left for a record's value under limit. */
static size_t room(size_t key_len, size_t limit)
{
    size_t fixed = CS_MSGFIT_OVERHEAD + key_len;
    return limit > fixed ? limit - fixed : 0;
}

static char *text_of(json_object *o, size_t *outlen)
{
    size_t n = 0;
    const char *t = cs_json_text(o, &n);
    *outlen = n;
    return cs_memdup(t, n + 1);
}

static size_t measure(json_object *o)
{
    size_t n = 0;
    (void)cs_json_text(o, &n);
    return n;
}

/*
 * Sets o[field] to the base64 of the longest prefix of raw[0..len) with which
 * o measures at most max bytes (an empty string when even that is too much).
 */
static void b64_prefix(json_object *o, const char *field, const unsigned char *raw, size_t len,
                       size_t max)
{
    json_object_object_add(o, field, json_object_new_string(""));
    size_t fixed = measure(o);
    size_t n = max > fixed ? (max - fixed) / 4 * 3 : 0;
    if (n > len)
        n = len;
    for (;;) {
        char *b64 = cs_b64_encode(raw, n, false);
        json_object_object_add(o, field, json_object_new_string(b64));
        cs_free(b64);
        if (n == 0 || measure(o) <= max)
            return;
        n = n > 3 ? n - 3 : 0;
    }
}

/* Sets o[field] (a string) to its longest prefix (at a UTF-8 boundary) with which o fits max. */
static void text_prefix(json_object *o, const char *field, size_t max)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
        return;
    char *s = cs_strdup(json_object_get_string(v));
    size_t n = strlen(s);
    while (measure(o) > max && n > 0) {
        size_t over = measure(o) - max;
        n = n > over ? n - over : 0;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 sequence */
        s[n] = '\0';
        json_object_object_add(o, field, json_object_new_string(s));
    }
    cs_free(s);
}

static void sha256_hex(const void *p, size_t n, char hex[2 * CS_SHA256_LEN + 1])
{
    unsigned char h[CS_SHA256_LEN];
    cs_sha256(p, n, h);
    cs_hex_encode(h, sizeof(h), hex);
}

/* The identifying fields of an event, and that it was cut: the last resort. */
static char *minimal(json_object *o, size_t max, size_t *outlen)
{
    static const char *const keep[] = {"event_id",   "type",       "approval_id",
                                       "request_id", "agent_id",   "grant_id",
                                       "status",     "error_code", NULL};
    json_object *m = json_object_new_object();
    for (int i = 0; o && keep[i]; i++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(o, keep[i], &v) && json_object_is_type(v, json_type_string) &&
            json_object_get_string_len(v) <= 128)
            json_object_object_add(m, keep[i], json_object_get(v));
    }
    json_object_object_add(m, "cut", json_object_new_boolean(1));
    json_object_object_add(
        m, "cut_reason",
        json_object_new_string(
            "larger than the topic's message limit; read the approval through the API"));
    char *t = text_of(m, outlen);
    json_object_put(m);
    (void)max;
    return t;
}

char *cs_msgfit_event(const char *payload, size_t len, size_t key_len, size_t limit, size_t *outlen)
{
    size_t max = room(key_len, limit);
    if (len <= max)
        return NULL;
    json_object *o = NULL;
    char err[CS_ERRLEN];
    if (cs_json_parse(payload, len, &o, err) != CS_OK ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return minimal(NULL, max, outlen);
    }
    json_object *v = NULL;
    if (json_object_object_get_ex(o, "body_b64", &v) && json_object_is_type(v, json_type_string)) {
        const char *b64 = json_object_get_string(v);
        unsigned char *raw = NULL;
        size_t rawlen = 0;
        if (cs_b64_decode(b64, strlen(b64), false, &raw, &rawlen) == CS_OK) {
            char hex[2 * CS_SHA256_LEN + 1];
            sha256_hex(raw, rawlen, hex);
            json_object *cut = json_object_new_object();
            const char *id = "";
            json_object *idv = NULL;
            if (json_object_object_get_ex(o, "approval_id", &idv) &&
                json_object_is_type(idv, json_type_string))
                id = json_object_get_string(idv);
            char *route = cs_asprintf("GET /v1/approvals/%.64s/result", id);
            json_object_object_add(
                cut, "reason",
                json_object_new_string(
                    "the result is larger than the topic's message limit: body_b64 holds a prefix"));
            json_object_object_add(cut, "body_bytes", json_object_new_int64((int64_t)rawlen));
            json_object_object_add(cut, "body_sha256", json_object_new_string(hex));
            json_object_object_add(cut, "limit", json_object_new_int64((int64_t)limit));
            json_object_object_add(cut, "full_body", json_object_new_string(route));
            cs_free(route);
            json_object_object_add(o, "body_cut", cut);
            json_object_object_add(o, "body_truncated", json_object_new_boolean(1));
            b64_prefix(o, "body_b64", raw, rawlen, max);
            cs_free(raw);
        }
    }
    if (measure(o) > max && json_object_object_get_ex(o, "headers", &v) &&
        !json_object_is_type(v, json_type_null)) {
        json_object_object_add(o, "headers", json_object_new_object());
        json_object_object_add(o, "headers_cut", json_object_new_boolean(1));
    }
    static const char *const texts[] = {"error_message", "decision_reason", "url", NULL};
    for (int i = 0; texts[i] && measure(o) > max; i++)
        text_prefix(o, texts[i], max);
    char *t = measure(o) <= max ? text_of(o, outlen) : minimal(o, max, outlen);
    json_object_put(o);
    return t;
}

char *cs_msgfit_dead_letter(json_object *o, const void *orig, size_t len, size_t key_len,
                            size_t limit, size_t *outlen)
{
    size_t max = room(key_len, limit);
    char *b64 = cs_b64_encode(orig, len, false);
    json_object_object_add(o, "original_b64", json_object_new_string(b64));
    cs_free(b64);
    if (measure(o) <= max)
        return text_of(o, outlen);
    char hex[2 * CS_SHA256_LEN + 1];
    sha256_hex(orig, len, hex);
    json_object_object_add(o, "original_truncated", json_object_new_boolean(1));
    json_object_object_add(o, "original_size", json_object_new_int64((int64_t)len));
    json_object_object_add(o, "original_sha256", json_object_new_string(hex));
    b64_prefix(o, "original_b64", orig, len, max);
    return text_of(o, outlen);
}
