/*
 * fuzz_eventrec.c -- libFuzzer target: the event records transitions emit
 * (migration 016) as the relay renders them (lib/cs_eventrec.c). The bytes
 * come from the WAL, so from whoever can run pg_logical_emit_message.
 *
 * Input: one record. Properties:
 *   - rendering never reads outside the input (ASan);
 *   - a rendered record is one JSON object, NUL-terminated at *outlen,
 *     whose event_id starts with its approval_id and whose type names its
 *     status;
 *   - a refusal says why and returns nothing.
 */
#include <json-c/json.h>

#include "cs_eventrec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL, err[CS_ERRLEN] = "";
    size_t n = 1;
    if (cs_eventrec_render((const char *)data, size, &out, &n, err) != CS_OK) {
        FUZZ_CHECK(err[0] != '\0' && out == NULL && n == 0);
        return 0;
    }
    FUZZ_CHECK(out[n] == '\0' && strlen(out) == n);
    json_object *o = json_tokener_parse(out), *id = NULL, *ev = NULL, *type = NULL, *st = NULL;
    FUZZ_CHECK(o && json_object_is_type(o, json_type_object));
    FUZZ_CHECK(json_object_object_get_ex(o, "approval_id", &id) &&
               json_object_object_get_ex(o, "event_id", &ev) &&
               json_object_object_get_ex(o, "type", &type) &&
               json_object_object_get_ex(o, "status", &st));
    const char *i = json_object_get_string(id), *t = json_object_get_string(type),
               *s = json_object_get_string(st);
    FUZZ_CHECK(strncmp(json_object_get_string(ev), i, strlen(i)) == 0);
    FUZZ_CHECK(strlen(t) > strlen(s) && strcmp(t + strlen(t) - strlen(s), s) == 0);
    json_object_put(o);
    cs_free(out);
    return 0;
}
