/*
 * cs_test.h -- the header-only harness of the C unit tests (tests/unit/).
 *
 * Each tests/unit/test_<noun>.c is its own binary (the Makefile discovers
 * them): it defines tests with CS_TEST(name), checks with the CS_CHECK*
 * macros and ends with CS_TEST_MAIN(CS_RUN(a), CS_RUN(b), ...). A failed
 * check prints file:line and the expression and the test goes on, so one
 * run shows every failure; each test then prints "ok" or "FAIL", and the
 * binary prints "<file>: N passed, N failed" and exits non-zero when any
 * test failed.
 *
 * Every check is an expression that yields true when it held, so a test
 * can stop before it would dereference a NULL: `if (!CS_CHECK(p)) return;`.
 * Deliberately missing: fixtures, forking, timeouts and mocks -- tests
 * build real objects through the public API and free what they allocate
 * (`make valgrind` treats leaks as errors).
 */
#ifndef CS_TEST_H
#define CS_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cs_err.h"

struct cs_test {
    const char *name;
    void (*fn)(void);
};

static int cs_test_checks; /* checks run in this binary */
static int cs_test_failed; /* checks failed in the current test */

#define CS_TEST(name) static void name(void)
#define CS_RUN(name) \
    {                \
#name, name  \
    }

/* Counts one check; a failed one is reported by the caller just before. */
static inline bool cs_test_count(bool ok)
{
    cs_test_checks++;
    cs_test_failed += !ok;
    return ok;
}

static inline bool cs_test_check(bool ok, const char *file, int line, const char *expr)
{
    if (!ok)
        printf("  %s:%d: check failed: %s\n", file, line, expr);
    return cs_test_count(ok);
}

static inline bool cs_test_eq_int(long long a, long long b, const char *file, int line,
                                  const char *ta)
{
    if (a != b)
        printf("  %s:%d: %s == %lld, expected %lld\n", file, line, ta, a, b);
    return cs_test_count(a == b);
}

static inline bool cs_test_eq_str(const char *a, const char *b, const char *file, int line,
                                  const char *ta)
{
    bool ok = a && b ? strcmp(a, b) == 0 : a == b;
    if (!ok)
        printf("  %s:%d: %s == \"%s\", expected \"%s\"\n", file, line, ta, a ? a : "(null)",
               b ? b : "(null)");
    return cs_test_count(ok);
}

static inline bool cs_test_has(const char *hay, const char *needle, const char *file, int line,
                               const char *th)
{
    bool ok = hay && strstr(hay, needle);
    if (!ok)
        printf("  %s:%d: %s == \"%s\" does not contain \"%s\"\n", file, line, th,
               hay ? hay : "(null)", needle);
    return cs_test_count(ok);
}

static inline bool cs_test_eq_rc(enum cs_err got, enum cs_err want, const char *file, int line,
                                 const char *call)
{
    if (got != want)
        printf("  %s:%d: %s returned %s, expected %s\n", file, line, call, cs_err_code(got),
               cs_err_code(want));
    return cs_test_count(got == want);
}

#define CS_CHECK(e) cs_test_check(!!(e), __FILE__, __LINE__, #e)
#define CS_CHECK_EQ_INT(a, b) cs_test_eq_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a)
#define CS_CHECK_EQ_STR(a, b) cs_test_eq_str((a), (b), __FILE__, __LINE__, #a)
/* True when the string hay contains needle (for error details naming a field). */
#define CS_CHECK_HAS(hay, needle) cs_test_has((hay), (needle), __FILE__, __LINE__, #hay)
/* Runs call once and compares the enum cs_err it returns with want. */
#define CS_CHECK_RC(call, want) cs_test_eq_rc((call), (want), __FILE__, __LINE__, #call)

static inline int cs_test_run(const char *file, const struct cs_test *tests, size_t n)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash keeps the lines before it */
    for (size_t i = 0; i < n; i++) {
        cs_test_failed = 0;
        tests[i].fn();
        printf("%s %s\n", cs_test_failed ? "FAIL" : "ok  ", tests[i].name);
        failed += cs_test_failed > 0;
    }
    const char *base = strrchr(file, '/');
    printf("%d checks\n%s: %zu passed, %d failed\n", cs_test_checks, base ? base + 1 : file,
           n - (size_t)failed, failed);
    return failed ? 1 : 0;
}

#define CS_TEST_MAIN(...)                                                      \
    int main(void)                                                             \
    {                                                                          \
        static const struct cs_test tests[] = {__VA_ARGS__};                   \
        return cs_test_run(__FILE__, tests, sizeof(tests) / sizeof(tests[0])); \
    }

#endif
