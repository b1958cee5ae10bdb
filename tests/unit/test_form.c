/*
 * test_form.c -- unit tests of the decision form parser (api/form.c).
 *
 * The approval page reads an approver's vote and reason from an
 * application/x-www-form-urlencoded body that anyone can post, so these
 * tests hold its strictness: names of [a-z_] given once, at most
 * FORM_MAX_FIELDS fields, '+' and percent escapes decoded, and a value
 * refused -- with the field named in err -- when an escape is malformed,
 * when it holds a NUL (raw or %00, which C would cut short) or when it is
 * not UTF-8 (Postgres text refuses it).
 *
 * form.c belongs to the api process, not to libcountersign.a, so it is
 * compiled into this binary by including it: the unit Makefile rule links
 * each test_<noun>.c with the library only.
 */
#include <string.h>

#include "../../api/form.c"
#include "cs_test.h"

/* Parses a string literal (its length from sizeof, so it may hold NULs). */
#define FORM(lit, f, err) form_parse((lit), sizeof(lit) - 1, (f), (err))

CS_TEST(parses_fields)
{
    struct form f;
    char err[CS_ERRLEN] = "";
    if (!CS_CHECK_RC(FORM("decision=approve&reason=ok+by+me%21&csrf=a%2Fb&&empty=&bare", &f, err),
                     CS_OK))
        return;
    CS_CHECK_EQ_INT(f.n, 5);
    CS_CHECK_EQ_STR(form_get(&f, "decision"), "approve");
    CS_CHECK_EQ_STR(form_get(&f, "reason"), "ok by me!");
    CS_CHECK_EQ_STR(form_get(&f, "csrf"), "a/b");
    CS_CHECK_EQ_STR(form_get(&f, "empty"), "");
    CS_CHECK_EQ_STR(form_get(&f, "bare"), "");
    CS_CHECK(form_get(&f, "missing") == NULL);
    form_free(&f);
    CS_CHECK_EQ_INT(f.n, 0);
    form_free(&f); /* twice is harmless */

    /* UTF-8, raw or escaped, is kept as it is. */
    CS_CHECK_RC(FORM("reason=caf%C3%A9+\xe2\x82\xac+%F0%9F%98%80", &f, err), CS_OK);
    CS_CHECK_EQ_STR(form_get(&f, "reason"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    form_free(&f);
}

CS_TEST(refuses_bad_names_and_repeats)
{
    static const char *const bad[] = {"Reason=x", "re-ason=x", "a=1&a=2", "=x",
                                      "a=1&=2",   "a b=1",     NULL};
    for (const char *const *s = bad; *s; s++) {
        struct form f;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(form_parse(*s, strlen(*s), &f, err), CS_ERR_INVALID))
            printf("  input: %s\n", *s);
        CS_CHECK(f.n == 0 && err[0]);
    }
    struct form f;
    char err[CS_ERRLEN] = "";
    /* FORM_MAX_FIELDS (16; a passkey-signed vote sends 8) and one more. */
    CS_CHECK_RC(
        FORM("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16", &f, err),
        CS_OK);
    form_free(&f);
    CS_CHECK_RC(FORM("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16&q=17",
                     &f, err),
                CS_ERR_INVALID);
    CS_CHECK_HAS(err, "too many");
    CS_CHECK_RC(FORM("a=1&a=2", &f, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"a\" is repeated");
}

CS_TEST(refuses_malformed_escapes)
{
    static const char *const bad[] = {"reason=%",   "reason=%4",      "reason=%zz",
                                      "reason=%4g", "reason=50%+off", NULL};
    for (const char *const *s = bad; *s; s++) {
        struct form f;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(form_parse(*s, strlen(*s), &f, err), CS_ERR_INVALID))
            printf("  input: %s\n", *s);
        CS_CHECK_HAS(err, "\"reason\" has a malformed percent escape");
    }
}

/* A NUL would cut the value short: "approve\0..." must not read as "approve". */
CS_TEST(refuses_nul_bytes)
{
    struct form f;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(FORM("reason=a%00b", &f, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"reason\" contains a NUL");
    CS_CHECK(f.n == 0);
    CS_CHECK_RC(FORM("decision=approve\0deny&reason=x", &f, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"decision\" contains a NUL");
    CS_CHECK(f.n == 0);
    CS_CHECK_RC(FORM("reason=x&decision=\0", &f, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"decision\" contains a NUL");
    CS_CHECK(f.n == 0);
    /* A NUL in a name is a bad name. */
    CS_CHECK_RC(FORM("reason\0=x", &f, err), CS_ERR_INVALID);
    CS_CHECK(f.n == 0);
}

CS_TEST(refuses_invalid_utf8)
{
    static const char *const bad[] = {"reason=%FF",          /* never valid */
                                      "reason=%80",          /* lone continuation byte */
                                      "reason=caf%C3",       /* truncated */
                                      "reason=%C0%AF",       /* overlong '/' */
                                      "reason=%ED%A0%80",    /* UTF-16 surrogate */
                                      "reason=%F4%90%80%80", /* above U+10FFFF */
                                      "reason=\xff",         /* raw */
                                      "reason=ok&csrf=\xc3\x28",
                                      NULL};
    for (const char *const *s = bad; *s; s++) {
        struct form f;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(form_parse(*s, strlen(*s), &f, err), CS_ERR_INVALID))
            printf("  input: %s\n", *s);
        CS_CHECK_HAS(err, "is not valid UTF-8");
        CS_CHECK(f.n == 0);
    }
}

CS_TEST_MAIN(CS_RUN(parses_fields), CS_RUN(refuses_bad_names_and_repeats),
             CS_RUN(refuses_malformed_escapes), CS_RUN(refuses_nul_bytes),
             CS_RUN(refuses_invalid_utf8))
