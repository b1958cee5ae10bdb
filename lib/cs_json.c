/*
 * cs_json.c -- strict JSON input (see cs_json.h).
 */
#include "cs_json.h"

#include <errno.h>
#include <string.h>

enum cs_err cs_json_parse(const char *s, size_t n, json_object **out, char *err)
{
    *out = NULL;
    if (n > INT32_MAX)
        return cs_err_set(err, CS_ERR_TOO_LARGE, "JSON document too large");
    if (memchr(s, '\0', n))
        return cs_err_set(err, CS_ERR_MALFORMED_JSON, "JSON document contains a NUL byte");
    json_tokener *tok = json_tokener_new_ex(CS_JSON_MAX_DEPTH);
    if (!tok)
        return cs_err_set(err, CS_ERR_INTERNAL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, s, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    enum cs_err rc = CS_OK;
    if (jerr == json_tokener_continue || (!obj && jerr == json_tokener_success)) {
        rc = cs_err_set(err, CS_ERR_MALFORMED_JSON, "JSON document is incomplete");
    } else if (jerr != json_tokener_success) {
        rc = cs_err_set(err, CS_ERR_MALFORMED_JSON, "malformed JSON at offset %zu: %s", used,
                        json_tokener_error_desc(jerr));
    } else {
        for (; used < n; used++)
            if (!strchr(" \t\r\n", s[used])) {
                rc = cs_err_set(err, CS_ERR_MALFORMED_JSON,
                                "unexpected data after the JSON value at offset %zu", used);
                break;
            }
    }
    json_tokener_free(tok);
    if (rc) {
        json_object_put(obj);
        return rc;
    }
    *out = obj;
    return CS_OK;
}

enum cs_err cs_json_only_keys(json_object *obj, const char *const *allowed, char *err)
{
    json_object_object_foreach(obj, key, val) {
        (void)val;
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return cs_err_set(err, CS_ERR_INVALID, "unknown field \"%.64s\"", key);
    }
    return CS_OK;
}

static json_object *field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v; /* a JSON null is NULL here too */
}

enum cs_err cs_json_str(json_object *obj, const char *key, bool required, size_t maxlen,
                        const char **out, char *err)
{
    json_object *v = field(obj, key);
    *out = NULL;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    if (!json_object_is_type(v, json_type_string))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be a string", key);
    size_t len = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (len > maxlen)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" is longer than %zu bytes", key, maxlen);
    if (strlen(s) != len)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" contains a NUL character", key);
    if (required && len == 0)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must not be empty", key);
    *out = s;
    return CS_OK;
}

enum cs_err cs_json_int(json_object *obj, const char *key, bool required, int64_t min,
                        int64_t max, int64_t def, int64_t *out, char *err)
{
    json_object *v = field(obj, key);
    *out = def;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    if (!json_object_is_type(v, json_type_int))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be an integer", key);
    errno = 0;
    int64_t n = json_object_get_int64(v);
    if (errno || n < min || n > max)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be between %lld and %lld", key,
                          (long long)min, (long long)max);
    *out = n;
    return CS_OK;
}

enum cs_err cs_json_typed(json_object *obj, const char *key, bool required, json_type t,
                          json_object **out, char *err)
{
    json_object *v = field(obj, key);
    *out = NULL;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    if (!json_object_is_type(v, t))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be %s %s", key,
                          t == json_type_object || t == json_type_array ? "an" : "a",
                          json_type_to_name(t));
    *out = v;
    return CS_OK;
}

enum cs_err cs_json_bool(json_object *obj, const char *key, bool def, bool *out, char *err)
{
    json_object *v = field(obj, key);
    *out = def;
    if (!v)
        return CS_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be true or false", key);
    *out = json_object_get_boolean(v);
    return CS_OK;
}

const char *cs_json_text(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE, len);
}
