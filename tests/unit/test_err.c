/*
 * test_err.c -- unit tests of the error table (lib/cs_err.c).
 *
 * The JSON error codes, HTTP statuses, dead-letter reasons and retry
 * decisions are all read from cs_err_table[], so these tests hold the
 * table's invariants: a complete row for every enum value, unique
 * snake_case codes, plausible HTTP statuses, and lookups that round-trip.
 */
#include <ctype.h>
#include <string.h>

#include "cs_err.h"
#include "cs_test.h"

static bool snake_case(const char *s)
{
    if (!s || !islower((unsigned char)s[0]))
        return false;
    for (const char *c = s; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_') ||
            (*c == '_' && (c[1] == '_' || c[1] == '\0')))
            return false;
    return true;
}

CS_TEST(every_code_has_a_row)
{
    for (int i = 0; i < CS_ERR__COUNT; i++) {
        const struct cs_err_info *e = &cs_err_table[i];
        if (!CS_CHECK(e->code && e->message)) {
            printf("  row %d is missing\n", i);
            continue;
        }
        CS_CHECK(e->message[0] != '\0');
        if (!CS_CHECK(snake_case(e->code)))
            printf("  code \"%s\" is not snake_case\n", e->code);
    }
}

CS_TEST(codes_are_unique)
{
    for (int i = 0; i < CS_ERR__COUNT; i++)
        for (int j = i + 1; j < CS_ERR__COUNT; j++)
            if (cs_err_table[i].code && cs_err_table[j].code &&
                !CS_CHECK(strcmp(cs_err_table[i].code, cs_err_table[j].code) != 0))
                printf("  rows %d and %d share \"%s\"\n", i, j, cs_err_table[i].code);
}

CS_TEST(http_statuses_are_sane)
{
    CS_CHECK_EQ_INT(cs_err_table[CS_OK].http_status, 200);
    CS_CHECK(!cs_err_table[CS_OK].retriable);
    for (int i = 1; i < CS_ERR__COUNT; i++) {
        int s = cs_err_table[i].http_status;
        if (!CS_CHECK(s >= 400 && s <= 599))
            printf("  %s has HTTP status %d\n", cs_err_table[i].code, s);
        /* Retrying the same input only makes sense when the fault was ours. */
        if (cs_err_table[i].retriable && !CS_CHECK(s >= 500))
            printf("  %s is retriable but answers %d\n", cs_err_table[i].code, s);
    }
    CS_CHECK_EQ_INT(cs_err_info(CS_ERR_INVALID)->http_status, 400);
    CS_CHECK_EQ_INT(cs_err_info(CS_ERR_UNAUTHENTICATED)->http_status, 401);
    CS_CHECK_EQ_INT(cs_err_info(CS_ERR_NOT_FOUND)->http_status, 404);
    CS_CHECK_EQ_INT(cs_err_info(CS_ERR_TOO_LARGE)->http_status, 413);
    CS_CHECK_EQ_INT(cs_err_info(CS_ERR_INTERNAL)->http_status, 500);
    CS_CHECK(cs_err_info(CS_ERR_DB)->retriable);
    CS_CHECK(!cs_err_info(CS_ERR_OUTCOME_UNKNOWN)->retriable);
}

CS_TEST(from_code_round_trips)
{
    for (int i = 0; i < CS_ERR__COUNT; i++) {
        const char *code = cs_err_code((enum cs_err)i);
        CS_CHECK_EQ_STR(code, cs_err_table[i].code);
        CS_CHECK_EQ_INT(cs_err_from_code(code), i);
        CS_CHECK(cs_err_info((enum cs_err)i) == &cs_err_table[i]);
    }
    CS_CHECK_EQ_INT(cs_err_from_code("no_such_code"), CS_ERR__COUNT);
    CS_CHECK_EQ_INT(cs_err_from_code(""), CS_ERR__COUNT);
    CS_CHECK_EQ_INT(cs_err_from_code("NOT_PENDING"), CS_ERR__COUNT);
    CS_CHECK_EQ_STR(cs_err_code(CS_ERR_NOT_PENDING), "not_pending");
}

CS_TEST(out_of_range_is_internal)
{
    CS_CHECK(cs_err_info(CS_ERR__COUNT) == &cs_err_table[CS_ERR_INTERNAL]);
    CS_CHECK(cs_err_info((enum cs_err)1000) == &cs_err_table[CS_ERR_INTERNAL]);
    CS_CHECK_EQ_STR(cs_err_code(CS_ERR__COUNT), "internal_error");
}

CS_TEST(set_formats_and_returns)
{
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", "url"), CS_ERR_INVALID);
    CS_CHECK_EQ_STR(err, "\"url\" is required");
    CS_CHECK_RC(cs_err_set(NULL, CS_ERR_CONFLICT, "ignored %d", 1), CS_ERR_CONFLICT);

    char longer[2 * CS_ERRLEN];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    CS_CHECK_RC(cs_err_set(err, CS_ERR_INTERNAL, "%s", longer), CS_ERR_INTERNAL);
    CS_CHECK_EQ_INT(strlen(err), CS_ERRLEN - 1);
}

CS_TEST_MAIN(CS_RUN(every_code_has_a_row), CS_RUN(codes_are_unique), CS_RUN(http_statuses_are_sane),
             CS_RUN(from_code_round_trips), CS_RUN(out_of_range_is_internal),
             CS_RUN(set_formats_and_returns))
