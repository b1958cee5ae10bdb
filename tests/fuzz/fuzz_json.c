/*
 * fuzz_json.c -- libFuzzer target: strict JSON input (lib/cs_json.c).
 *
 * Input: any bytes, as an HTTP body or a Kafka message value would carry
 * them. cs_json_parse must refuse what json-c would accept beyond RFC 8259
 * (invalid UTF-8, NaN, single quotes, raw control characters, trailing
 * data, nesting deeper than CS_JSON_MAX_DEPTH) without leaking. On every
 * object of an accepted document -- nested ones too -- each field is read
 * with every typed getter (cs_json_str, _int, _typed, _bool) and the
 * object is checked with cs_json_only_keys, and the answers are compared
 * with what json-c says about the field. Finally the compact text of the
 * document (cs_json_text, what a "json" request body becomes) must be
 * accepted again and serialise to the same text: policy rules re-parse
 * stored bodies, and a body the parser refuses would fail every rule.
 */
#include <errno.h>
#include <stdlib.h>

#include "cs_json.h"
#include "fuzz.h"

static const char *const allowed[] = {"request_id", "grant_id", "method", "url", "json",
                                      "amount", "a", "", NULL};

static bool in_allowed(const char *key)
{
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return true;
    return false;
}

static void check_field(json_object *obj, const char *key, json_object *val)
{
    static const json_type types[] = {json_type_null, json_type_boolean, json_type_double,
                                      json_type_int, json_type_object, json_type_array,
                                      json_type_string};
    char err[CS_ERRLEN];
    bool present = val != NULL; /* a JSON null reads as missing */

    for (int required = 0; required < 2; required++) {
        const char *s = NULL;
        enum cs_err rc = cs_json_str(obj, key, required, 8, &s, err);
        bool str = present && json_object_is_type(val, json_type_string);
        if (rc == CS_OK) {
            FUZZ_CHECK(present ? str : !required);
            FUZZ_CHECK(present ? s == json_object_get_string(val) : s == NULL);
            if (s)
                FUZZ_CHECK(strlen(s) <= 8 && (!required || *s));
        } else {
            FUZZ_CHECK(rc == CS_ERR_INVALID && s == NULL);
        }
        rc = cs_json_str(obj, key, required, SIZE_MAX, &s, err);
        if (str && rc == CS_OK)
            FUZZ_CHECK(strlen(s) == (size_t)json_object_get_string_len(val));

        int64_t n = 0;
        rc = cs_json_int(obj, key, required, -5, 1000, 7, &n, err);
        if (rc == CS_OK) {
            FUZZ_CHECK(present ? json_object_is_type(val, json_type_int) : !required && n == 7);
            FUZZ_CHECK(n >= -5 && n <= 1000);
            if (present) {
                /* The number read is the number written. */
                errno = 0;
                long long text = strtoll(json_object_get_string(val), NULL, 10);
                FUZZ_CHECK(errno == 0 && text == n);
            }
        } else {
            FUZZ_CHECK(rc == CS_ERR_INVALID);
        }
        rc = cs_json_int(obj, key, required, INT64_MIN, INT64_MAX, 0, &n, err);
        FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_INVALID);

        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            json_object *out = NULL;
            rc = cs_json_typed(obj, key, required, types[t], &out, err);
            bool want = present ? json_object_is_type(val, types[t]) : !required;
            FUZZ_CHECK((rc == CS_OK) == want);
            FUZZ_CHECK(out == (rc == CS_OK ? val : NULL));
        }
    }
    bool b = false;
    enum cs_err rc = cs_json_bool(obj, key, true, &b, err);
    if (!present)
        FUZZ_CHECK(rc == CS_OK && b);
    else if (json_object_is_type(val, json_type_boolean))
        FUZZ_CHECK(rc == CS_OK && b == json_object_get_boolean(val));
    else
        FUZZ_CHECK(rc == CS_ERR_INVALID);
}

static void walk(json_object *v, int depth)
{
    FUZZ_CHECK(depth <= CS_JSON_MAX_DEPTH);
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            walk(json_object_array_get_idx(v, i), depth + 1);
        return;
    }
    if (!json_object_is_type(v, json_type_object))
        return;
    char err[CS_ERRLEN];
    bool all_known = true;
    json_object_object_foreach(v, key, val) {
        all_known = all_known && in_allowed(key);
        check_field(v, key, val);
        walk(val, depth + 1);
    }
    FUZZ_CHECK((cs_json_only_keys(v, allowed, err) == CS_OK) == all_known);
    /* Missing fields read as missing. */
    check_field(v, "no such field \x01", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *obj = NULL;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = cs_json_parse((const char *)data, size, &obj, err);
    if (rc != CS_OK) {
        FUZZ_CHECK(obj == NULL && err[0]);
        FUZZ_CHECK(rc == CS_ERR_MALFORMED_JSON || rc == CS_ERR_TOO_LARGE);
        return 0;
    }
    walk(obj, 1);

    size_t len = 0;
    char *text = cs_strdup(cs_json_text(obj, &len));
    json_object *again = NULL;
    rc = cs_json_parse(text, len, &again, err);
    if (rc != CS_OK && !fuzz_known_1(text, len))
        fprintf(stderr, "serialised document refused: %s\n", err);
    FUZZ_CHECK(rc == CS_OK || fuzz_known_1(text, len));
    if (rc == CS_OK) {
        size_t len2 = 0;
        const char *text2 = cs_json_text(again, &len2);
        FUZZ_CHECK(len2 == len && memcmp(text, text2, len) == 0);
    }
    cs_free(text);
    json_object_put(again);
    json_object_put(obj);
    return 0;
}
