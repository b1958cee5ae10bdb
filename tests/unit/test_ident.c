/*
 * test_ident.c -- unit tests of the identifier rules (lib/cs_ident.c).
 *
 * Holds the C rule and the schema together: the CHECK regexes of agents.name,
 * policies.id and grants.id, read from the migrations the build embeds
 * (sql/migrations/001_core.sql as the database runs it), are exactly
 * cs_ident_regex(); every identifier-shaped CHECK in any migration is one of
 * them; and cs_ident_valid() gives regexec()'s answer for every kind on a
 * table of names and on generated strings around each alphabet and length
 * limit. Then the places that use the rule: the Kafka envelope and the seal
 * accept the agent names the CLI and the database accept (ops@acme) and
 * refuse the others with the rule in the message.
 */
#include <regex.h>
#include <stdint.h>
#include <string.h>

#include "cs_batch.h"
#include "cs_db.h"
#include "cs_ident.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_request.h"
#include "cs_test.h"
#include "request_fixture.h"

/* The regex of "<column> ~ '...'" in "CREATE TABLE <table> (" of migration 1,
 * copied into out; false when not found. */
static bool schema_regex(const char *table, const char *column, char *out, size_t cap)
{
    const char *sql = NULL;
    for (int i = 0; i < cs_nmigrations; i++)
        if (cs_migrations[i].version == 1)
            sql = cs_migrations[i].sql;
    if (!sql)
        return false;
    char head[64], pat[64];
    snprintf(head, sizeof(head), "CREATE TABLE %s (", table);
    snprintf(pat, sizeof(pat), "CHECK (%s ~ '", column);
    const char *t = strstr(sql, head);
    const char *end = t ? strstr(t, ");") : NULL;
    const char *p = t ? strstr(t, pat) : NULL;
    if (!p || p > end)
        return false;
    p += strlen(pat);
    const char *q = strchr(p, '\'');
    if (!q || (size_t)(q - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return true;
}

CS_TEST(schema_checks_are_the_c_rule)
{
    static const struct {
        const char *table, *column;
        enum cs_ident kind;
    } cols[] = {{"agents", "name", CS_IDENT_AGENT},
                {"policies", "id", CS_IDENT_ID},
                {"grants", "id", CS_IDENT_ID}};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        char re[128] = "";
        if (!CS_CHECK(schema_regex(cols[i].table, cols[i].column, re, sizeof(re))))
            printf("  no CHECK (%s ~ '...') in CREATE TABLE %s\n", cols[i].column, cols[i].table);
        else if (!CS_CHECK_EQ_STR(re, cs_ident_regex(cols[i].kind)))
            printf("  %s.%s: the CHECK and cs_ident.c disagree\n", cols[i].table, cols[i].column);
    }
    CS_CHECK_EQ_STR(cs_ident_regex(CS_IDENT_AGENT), "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$");
    CS_CHECK_EQ_STR(cs_ident_regex(CS_IDENT_ID), "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$");
}

/* A later migration that adds or replaces an identifier CHECK must say one of
 * the C rules (then this test, and the C side, change with it). */
CS_TEST(no_migration_has_another_identifier_check)
{
    const char *mark = "~ '^[A-Za-z0-9";
    int seen = 0;
    for (int i = 0; i < cs_nmigrations; i++) {
        for (const char *p = strstr(cs_migrations[i].sql, mark); p; p = strstr(p + 1, mark)) {
            const char *re = p + 3, *q = strchr(re, '\'');
            bool known = false;
            for (int k = 0; q && k < CS_IDENT__COUNT; k++) {
                const char *c = cs_ident_regex((enum cs_ident)k);
                known =
                    known || (strlen(c) == (size_t)(q - re) && !strncmp(c, re, (size_t)(q - re)));
            }
            seen++;
            if (!CS_CHECK(known))
                printf("  migration %d (%s): %.80s is no cs_ident rule\n", cs_migrations[i].version,
                       cs_migrations[i].name, re);
        }
    }
    CS_CHECK(seen >= 3);
}

static const struct {
    const char *s;
    bool agent, id, batch, instance, prefix;
} names[] = {
    /*  name                  agent  id     batch  inst   prefix */
    {"ops@acme", true, false, false, false, false},
    {"billing-bot", true, true, true, true, true},
    {"a", true, true, true, true, true},
    {"A.b_c:d-e", true, true, true, true, false},
    {"host:1234", true, true, true, true, false},
    {"9lives", true, true, true, true, true},
    {"-ops", false, false, true, true, true},
    {".hidden", false, false, true, true, true},
    {"@acme", false, false, false, false, false},
    {"ops@", true, false, false, false, false},
    {"", false, false, false, false, false},
    {"a b", false, false, false, false, false},
    {"a/b", false, false, false, false, false},
    {"ops\n", false, false, false, false, false},
    {"caf\xc3\xa9", false, false, false, false, false},
    {"\xc3\xa9t\xc3\xa9", false, false, false, false, false},
    {"a\x7f", false, false, false, false, false},
};

CS_TEST(accepted_and_refused_names)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const bool want[CS_IDENT__COUNT] = {names[i].agent, names[i].id, names[i].batch,
                                            names[i].instance, names[i].prefix};
        for (int k = 0; k < CS_IDENT__COUNT; k++)
            if (!CS_CHECK(cs_ident_valid(names[i].s, (enum cs_ident)k) == want[k]))
                printf("  \"%s\" kind %d: expected %s\n", names[i].s, k,
                       want[k] ? "valid" : "refused");
    }
    CS_CHECK(!cs_ident_valid(NULL, CS_IDENT_AGENT));
    char s[200];
    static const size_t max[CS_IDENT__COUNT] = {64, 64, 128, 80, 120};
    for (int k = 0; k < CS_IDENT__COUNT; k++) {
        memset(s, 'x', max[k] + 1);
        s[max[k] + 1] = '\0';
        CS_CHECK(!cs_ident_valid(s, (enum cs_ident)k));
        s[max[k]] = '\0';
        CS_CHECK(cs_ident_valid(s, (enum cs_ident)k));
        CS_CHECK(strlen(cs_ident_rule((enum cs_ident)k)) > 10);
    }
}

/* cs_ident_valid() and regexec() of cs_ident_regex() agree: on the table,
 * and on generated strings of every length up to past the cap, built from an
 * alphabet that holds every allowed character class and the near misses. */
CS_TEST(c_rule_is_its_regex)
{
    static const char alphabet[] = "aZ09._:@-/ \n\x7f\x80\xff+";
    uint64_t x = 0x9e3779b97f4a7c15u;
    int checked = 0;
    for (int k = 0; k < CS_IDENT__COUNT; k++) {
        regex_t re;
        if (!CS_CHECK(regcomp(&re, cs_ident_regex((enum cs_ident)k), REG_EXTENDED | REG_NOSUB) ==
                      0))
            continue;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            CS_CHECK((regexec(&re, names[i].s, 0, NULL, 0) == 0) ==
                     cs_ident_valid(names[i].s, (enum cs_ident)k));
        for (int n = 0; n < 4000; n++) {
            char s[140];
            size_t len = (size_t)n % 132;
            for (size_t j = 0; j < len; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                /* Mostly letters, so that long valid names occur too. */
                s[j] = (x >> 40) % 4 ? "abcXYZ019"[(x >> 20) % 9]
                                     : alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
            }
            s[len] = '\0';
            bool by_re = regexec(&re, s, 0, NULL, 0) == 0;
            checked++;
            if (!CS_CHECK(by_re == cs_ident_valid(s, (enum cs_ident)k))) {
                printf("  kind %d, \"%s\": regex %d\n", k, s, by_re);
                break;
            }
        }
        regfree(&re);
    }
    CS_CHECK_EQ_INT(checked, 4000 * CS_IDENT__COUNT);
}

/* ---- where the rule is used ---- */

#define ENV_AGENT(agent)                                                           \
    "{'request_id':'r-1','agent':'" agent "','grant_id':'stripe','method':'POST'," \
    "'url':'https://api.example.com/v1/refunds'}"

CS_TEST(kafka_envelope_takes_the_schema_agent_names)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(fixture_request(ENV_AGENT("ops@acme"), CS_REQ_ENVELOPE, 1024, &rq, err), CS_OK))
        CS_CHECK_EQ_STR(rq.agent, "ops@acme");
    cs_request_free(&rq);
    static const char *const refused[] = {ENV_AGENT("-ops"), ENV_AGENT("@acme"), ENV_AGENT("a b")};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CS_CHECK_RC(fixture_request(refused[i], CS_REQ_ENVELOPE, 1024, &rq, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "\"agent\" must be 1-64 letters, digits and ._:@- starting with");
        cs_request_free(&rq);
    }
    /* A grant id follows the policies/grants CHECK: no @, alphanumeric first. */
    CS_CHECK_RC(fixture_request("{'grant_id':'-stripe','method':'GET','url':'https://x.example/'}",
                                CS_REQ_SUBMIT, 1024, &rq, err),
                CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"grant_id\" must be 1-64 letters, digits and ._:- starting with");
    cs_request_free(&rq);
}

CS_TEST(seal_takes_the_schema_agent_names)
{
    char err[CS_ERRLEN] = "";
    struct cs_seal s;
    static const char ok[] = "{\"type\":\"seal\",\"agent\":\"ops@acme\",\"batch_id\":\"b-1\","
                             "\"count\":2}";
    static const char bad[] = "{\"type\":\"seal\",\"agent\":\"ops acme\",\"batch_id\":\"b-1\","
                              "\"count\":2}";
    json_object *obj = NULL;
    if (CS_CHECK_RC(cs_json_parse(ok, strlen(ok), &obj, err), CS_OK) &&
        CS_CHECK_RC(cs_batch_seal_parse(obj, &s, err), CS_OK)) {
        CS_CHECK_EQ_STR(s.agent, "ops@acme");
        cs_batch_seal_free(&s);
    }
    json_object_put(obj);
    obj = NULL;
    if (CS_CHECK_RC(cs_json_parse(bad, strlen(bad), &obj, err), CS_OK)) {
        CS_CHECK_RC(cs_batch_seal_parse(obj, &s, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "\"agent\" must be 1-64");
        cs_batch_seal_free(&s);
    }
    json_object_put(obj);
}

CS_TEST_MAIN(CS_RUN(schema_checks_are_the_c_rule),
             CS_RUN(no_migration_has_another_identifier_check), CS_RUN(accepted_and_refused_names),
             CS_RUN(c_rule_is_its_regex), CS_RUN(kafka_envelope_takes_the_schema_agent_names),
             CS_RUN(seal_takes_the_schema_agent_names))
