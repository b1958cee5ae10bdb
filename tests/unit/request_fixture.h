/*
 * request_fixture.h -- requests for the unit tests that need one
 * (test_request.c, test_approval.c), written as JSON with ' for " so the
 * fixtures read easily in C strings.
 */
#ifndef REQUEST_FIXTURE_H
#define REQUEST_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "cs_json.h"
#include "cs_mem.h"
#include "cs_request.h"

/* Parses the '-quoted JSON sq as a request of the given mode into *rq (zeroed first). */
static inline enum cs_err fixture_request(const char *sq, unsigned mode, size_t max_body,
                                          struct cs_request *rq, char *err)
{
    char *s = cs_strdup(sq);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_object *o = NULL;
    enum cs_err rc = cs_json_parse(s, strlen(s), &o, err);
    memset(rq, 0, sizeof(*rq));
    if (rc)
        printf("  fixture is not JSON: %s: %s\n", err, s);
    else
        rc = cs_request_parse(o, mode, max_body, rq, err);
    json_object_put(o);
    cs_free(s);
    return rc;
}

#endif
