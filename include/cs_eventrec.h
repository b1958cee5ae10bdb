/*
 * cs_eventrec.h -- an event's JSON, rendered from the record a transition
 * emitted.
 *
 * Transitions emit the fields of their events as a Postgres row literal
 * (cs_event_rec, cs_result_rec, cs_created_rec; migration 016), which is
 * cheap inside the transaction; the relay renders the JSON the events and
 * results topics carry, the same document cs_event() / cs_result() build in
 * SQL. A payload that starts with '{' is JSON already and is published as
 * it is. Pure functions over bytes: unit tested (tests/unit/test_eventrec.c)
 * and fuzzed (tests/fuzz/fuzz_eventrec.c).
 */
#ifndef CS_EVENTREC_H
#define CS_EVENTREC_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"

/* True when payload[0..len) is a record to render (it starts with '('). */
bool cs_eventrec_is(const char *payload, size_t len);

/*
 * Renders record rec[0..len) as the event's JSON: a cs_malloc'd text of
 * *outlen bytes (NUL-terminated) the caller frees. CS_ERR_INVALID, with
 * why, for anything but a well-formed record of a known kind.
 */
enum cs_err cs_eventrec_render(const char *rec, size_t len, char **out, size_t *outlen,
                               char *err) CS_MUSTCHECK;

#endif
