/*
 * cs_json.h -- strict reading of untrusted JSON with json-c.
 *
 * Every HTTP body and Kafka envelope goes through cs_json_parse (depth and
 * size capped, trailing garbage refused) and then through these getters,
 * which name the offending field in err. Unknown fields are refused by
 * cs_json_only_keys so a typo never silently drops a setting.
 *
 * Ownership: objects returned by getters are borrowed from their parent.
 */
#ifndef CS_JSON_H
#define CS_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_JSON_MAX_DEPTH 32
#define CS_JSON_MAX_EXPONENT 1000 /* |e| of a number, far inside a Postgres numeric */
#define CS_JSON_MAX_NUMBER 1000   /* characters of one number, sign included */

/*
 * Parses s[n] as one RFC 8259 JSON value that Postgres json and jsonb also
 * accept: RFC 3629 UTF-8, no NUL, at most CS_JSON_MAX_DEPTH values deep
 * (every value is a level, a scalar too: 5 is 1 deep, [5] 2), numbers
 * by the RFC's grammar (no "1.", "-.5", "01") within CS_JSON_MAX_EXPONENT
 * and CS_JSON_MAX_NUMBER, nothing but whitespace after the value, no
 * name twice in one object (after decoding escapes: "a" and "\u0061" are
 * one name) and no U+0000 in a name -- json-c would keep the last member
 * or cut the name, so such a document could mean one thing here and
 * another to a provider. Any value may stand alone ("5", "true", "\"x\"").
 *
 * CS_OK: *out is owned by the caller (json_object_put) -- and is NULL when
 * the document is a JSON null, so a caller that wants an object or an
 * array checks the type (json_object_is_type(NULL, json_type_object) is
 * false). CS_ERR_MALFORMED_JSON or CS_ERR_TOO_LARGE: *out is NULL.
 */
enum cs_err cs_json_parse(const char *s, size_t n, json_object **out, char *err) CS_MUSTCHECK;

/* Refuses any key of obj not in the NULL-terminated list `allowed`. */
enum cs_err cs_json_only_keys(json_object *obj, const char *const *allowed, char *err) CS_MUSTCHECK;

/*
 * Reads a string field. Missing or null: CS_OK with *out = NULL when not
 * required, CS_ERR_INVALID when required. Wrong type, longer than maxlen
 * bytes, or holding a NUL: CS_ERR_INVALID. *out is borrowed.
 */
enum cs_err cs_json_str(json_object *obj, const char *key, bool required, size_t maxlen,
                        const char **out, char *err) CS_MUSTCHECK;

/* Reads an integer field within [min, max]; missing -> *out = def when not required.
 * As in JSON Schema, a number with no fraction is an integer (16761.0, 1e3), up to
 * 2^53 in magnitude when written with a fraction or an exponent; 1.5 is refused. */
enum cs_err cs_json_int(json_object *obj, const char *key, bool required, int64_t min, int64_t max,
                        int64_t def, int64_t *out, char *err) CS_MUSTCHECK;

/* Reads a field that must be of type t (json_type_object, json_type_array, ...). */
enum cs_err cs_json_typed(json_object *obj, const char *key, bool required, json_type t,
                          json_object **out, char *err) CS_MUSTCHECK;

/* Reads a boolean field; missing -> def. */
enum cs_err cs_json_bool(json_object *obj, const char *key, bool def, bool *out,
                         char *err) CS_MUSTCHECK;

/*
 * True when s[n] is RFC 3629 UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF), as cs_json_parse and Postgres text require. NULs
 * are not checked here.
 */
bool cs_json_utf8_valid(const char *s, size_t n);

/* Compact serialization (borrowed from obj, valid until obj changes or is freed). */
const char *cs_json_text(json_object *obj, size_t *len);

#endif
