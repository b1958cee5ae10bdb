/*
 * cs_ident.h -- the one rule for the identifiers people choose: agent names,
 * policy and grant ids, batch ids, the instance id and the topic prefix.
 *
 * Each kind has one row in lib/cs_ident.c: its alphabet, its length and the
 * same rule as a POSIX extended regex. For agents.name, policies.id and
 * grants.id that regex is, character for character, the CHECK of
 * sql/migrations/001_core.sql, so what the CLI and the database accept is what
 * an HTTP submit and a Kafka envelope accept. tests/unit/test_ident.c holds
 * the two together (the CHECK text read from the migrations the build embeds,
 * and cs_ident_valid() against regexec() of the regex).
 *
 * Checklist when a rule changes: the row in lib/cs_ident.c; for the three
 * schema kinds a new migration that replaces the CHECK (never edit 001); the
 * test's table of accepted and refused names; docs that quote the rule.
 *
 * Thread: any thread (the table is const).
 */
#ifndef CS_IDENT_H
#define CS_IDENT_H

#include <stdbool.h>

enum cs_ident {
    CS_IDENT_AGENT,        /* agents.name: ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$ */
    CS_IDENT_ID,           /* policies.id, grants.id: ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$ */
    CS_IDENT_BATCH,        /* batch_id (free text in SQL): ^[A-Za-z0-9._:-]{1,128}$ */
    CS_IDENT_INSTANCE,     /* CS_INSTANCE_ID: ^[A-Za-z0-9._:-]{1,80}$ */
    CS_IDENT_TOPIC_PREFIX, /* CS_TOPIC_PREFIX, Kafka's topic alphabet: ^[A-Za-z0-9._-]{1,120}$ */
    CS_IDENT__COUNT
};

/* True when s (NUL-terminated, may be NULL: false) follows the rule of kind. */
bool cs_ident_valid(const char *s, enum cs_ident kind);

/* The rule as a POSIX extended regex (for agents, policies and grants the
 * schema's CHECK). Static storage. */
const char *cs_ident_regex(enum cs_ident kind);

/* The rule in words for an error message, e.g. "1-64 letters, digits and
 * ._:@- starting with a letter or digit". Static storage. */
const char *cs_ident_rule(enum cs_ident kind);

#endif
