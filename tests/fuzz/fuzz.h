/*
 * fuzz.h -- what every libFuzzer target in tests/fuzz shares.
 *
 * FUZZ_CHECK states a property that must hold for every input: when it
 * does not, the target prints which one and traps, so libFuzzer records
 * the input as a crash like any sanitizer report. fuzz_cstr() turns the
 * fuzzer's bytes (not NUL-terminated, may hold NULs) into the C string a
 * parser of text would receive; the caller cs_free()s it.
 *
 * FUZZ_TOLERATE_KNOWN (make FUZZ_TOLERATE=1) builds variants that step
 * over bugs already reported and not yet fixed, each marked KNOWN-<n> in
 * the target and listed in README.md, so a long run can go past them.
 * The default build checks everything; regressions/ replays each known
 * bug's input and fails until it is fixed.
 *
 * Header-only on purpose: each target is one .c plus the library sources
 * it exercises (tests/fuzz/Makefile), nothing else.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cs_mem.h"

#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FUZZ PROPERTY FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            __builtin_trap();                                                               \
        }                                                                                   \
    } while (0)

/*
 * A bug reported and not yet fixed gets a predicate here,
 *     static inline int fuzz_known_<n>(...) -- true, in a tolerant build,
 *     for an input that shows bug <n>; always 0 otherwise,
 * and the target skips the property it breaks when the predicate holds.
 * None is open: KNOWN-1 to KNOWN-5 (regressions/README.md) are fixed and
 * their inputs stay in regressions/.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data[size] as a NUL-terminated string, cut at the first NUL (as C sees it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    const void *nul = memchr(data, '\0', size);
    size_t n = nul ? (size_t)((const uint8_t *)nul - data) : size;
    return cs_strndup((const char *)data, n);
}

/* Splits data at the first `sep` byte: the head is data[0..*head_len), the tail follows. */
static inline const uint8_t *fuzz_split(const uint8_t *data, size_t size, uint8_t sep,
                                        size_t *head_len, size_t *tail_len)
{
    const uint8_t *s = memchr(data, sep, size);
    if (!s) {
        *head_len = size;
        *tail_len = 0;
        return data + size;
    }
    *head_len = (size_t)(s - data);
    *tail_len = size - *head_len - 1;
    return s + 1;
}

#endif
