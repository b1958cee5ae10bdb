/*
 * cs_ident.c -- the identifier rules (see cs_ident.h): one row per kind.
 *
 * Used by every process: the request parser (agent, grant_id, batch_id of an
 * HTTP submit or a Kafka envelope), the batch seal parser, the config loader
 * (CS_INSTANCE_ID, CS_TOPIC_PREFIX) and the operator actions. The database's
 * CHECKs stay the last word for what is stored; this is the same rule applied
 * before a request is stored, so both refuse and accept the same names.
 * ASCII only, whatever the locale (no isalnum()).
 */
#include "cs_ident.h"

#include <string.h>

#include "cs_err.h"

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

struct ident_rule {
    const char *first; /* alphabet of the first character */
    const char *rest;  /* alphabet of the others */
    size_t min, max;   /* length in bytes */
    const char *regex; /* the same rule, for the schema and the test */
    const char *text;  /* the same rule, for people */
};

/* Checklist: a row here, its regex, its text and cs_ident.h's comment change
 * together; for AGENT and ID also a migration (the CHECKs of 001_core.sql). */
static const struct ident_rule rules[CS_IDENT__COUNT] = {
    [CS_IDENT_AGENT] = {ALNUM, ALNUM "._:@-", 1, 64, "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$",
                        "1-64 letters, digits and ._:@- starting with a letter or digit"},
    [CS_IDENT_ID] = {ALNUM, ALNUM "._:-", 1, 64, "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
                     "1-64 letters, digits and ._:- starting with a letter or digit"},
    [CS_IDENT_BATCH] = {ALNUM "._:-", ALNUM "._:-", 1, 128, "^[A-Za-z0-9._:-]{1,128}$",
                        "1-128 letters, digits and ._:-"},
    [CS_IDENT_INSTANCE] = {ALNUM "._:-", ALNUM "._:-", 1, 80, "^[A-Za-z0-9._:-]{1,80}$",
                           "1-80 letters, digits and ._:-"},
    [CS_IDENT_TOPIC_PREFIX] = {ALNUM "._-", ALNUM "._-", 1, 120, "^[A-Za-z0-9._-]{1,120}$",
                               "1-120 letters, digits and ._-"},
};

bool cs_ident_valid(const char *s, enum cs_ident kind)
{
    cs_assert((unsigned)kind < CS_IDENT__COUNT);
    const struct ident_rule *r = &rules[kind];
    if (!s)
        return false;
    size_t n = strlen(s);
    return n >= r->min && n <= r->max && s[0] && strchr(r->first, s[0]) &&
           strspn(s + 1, r->rest) == n - 1;
}

const char *cs_ident_regex(enum cs_ident kind)
{
    cs_assert((unsigned)kind < CS_IDENT__COUNT);
    return rules[kind].regex;
}

const char *cs_ident_rule(enum cs_ident kind)
{
    cs_assert((unsigned)kind < CS_IDENT__COUNT);
    return rules[kind].text;
}
