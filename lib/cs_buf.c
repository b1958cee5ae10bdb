/*
 * cs_buf.c -- capped growable buffers (see cs_buf.h).
 */
#include "cs_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cs_mem.h"

void cs_buf_init(struct cs_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void cs_buf_free(struct cs_buf *b)
{
    cs_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->truncated = false;
}

void cs_buf_reset(struct cs_buf *b)
{
    b->len = 0;
    b->truncated = false;
    if (b->data)
        b->data[0] = '\0';
}

static void grow(struct cs_buf *b, size_t need)
{
    if (need + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    b->data = cs_realloc(b->data, cap);
    b->cap = cap;
}

enum cs_err cs_buf_append(struct cs_buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return CS_ERR_TOO_LARGE;
    grow(b, b->len + n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CS_OK;
}

enum cs_err cs_buf_puts(struct cs_buf *b, const char *s)
{
    return cs_buf_append(b, s, strlen(s));
}

enum cs_err cs_buf_printf(struct cs_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > b->max || b->len > b->max - (size_t)n) {
        va_end(ap2);
        return CS_ERR_TOO_LARGE;
    }
    grow(b, b->len + (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return CS_OK;
}

void cs_buf_append_trunc(struct cs_buf *b, const void *p, size_t n)
{
    size_t room = b->max > b->len ? b->max - b->len : 0;
    if (n > room) {
        n = room;
        b->truncated = true;
    }
    if (cs_buf_append(b, p, n) != CS_OK)
        cs_assert(!"cs_buf_append failed within room");
}

char *cs_buf_take(struct cs_buf *b, size_t *len)
{
    if (!b->data)
        grow(b, 0), b->data[0] = '\0';
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
