/*
 * cs_mem.h -- allocation that aborts on exhaustion, and bounded strings.
 *
 * cs_malloc/cs_calloc/cs_realloc/cs_strdup never return NULL: running out
 * of memory aborts the process (Redis zmalloc, librdkafka rd_malloc), so no
 * caller checks. cs_free(NULL) does nothing. lib/cs_mem.c is the only file
 * allowed to call malloc/free/strcpy and friends (make check-style).
 */
#ifndef CS_MEM_H
#define CS_MEM_H

#include <stddef.h>

void *cs_malloc(size_t n);
void *cs_calloc(size_t count, size_t n);
void *cs_realloc(void *p, size_t n);
char *cs_strdup(const char *s); /* cs_strdup(NULL) returns NULL */
char *cs_strndup(const char *s, size_t n);
void *cs_memdup(const void *p, size_t n);
void cs_free(void *p);

/* Overwrites n bytes with zeros in a way the compiler keeps (for secrets). */
void cs_wipe(void *p, size_t n);

/* Copies src into dst[size] always NUL-terminated; returns strlen(src). */
size_t cs_strlcpy(char *dst, const char *src, size_t size);

/* Formats into a fresh cs_malloc'd string; the caller frees it. */
char *cs_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
