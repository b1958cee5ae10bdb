/*
 * cs_mem.c -- the one file that wraps the C allocator (see cs_mem.h).
 */
#include "cs_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "FATAL out of memory allocating %zu bytes\n", n);
    abort();
}

void *cs_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cs_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *cs_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cs_strdup(const char *s)
{
    return s ? cs_memdup(s, strlen(s) + 1) : NULL;
}

char *cs_strndup(const char *s, size_t n)
{
    char *p = cs_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *cs_memdup(const void *p, size_t n)
{
    void *q = cs_malloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

void cs_free(void *p)
{
    free(p);
}

void cs_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

size_t cs_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

char *cs_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *s = cs_malloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}
