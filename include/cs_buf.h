/*
 * cs_buf.h -- a growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Every buffer that grows from outside input has a cap, so no input can
 * grow a process without bound. Appending past the cap fails with
 * CS_ERR_TOO_LARGE and leaves the buffer as it was; `truncated` records
 * that something was dropped when cs_buf_append_trunc() is used.
 * The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef CS_BUF_H
#define CS_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"

struct cs_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;     /* allocated bytes */
    size_t max;     /* cap on len */
    bool truncated; /* cs_buf_append_trunc() dropped bytes */
};

void cs_buf_init(struct cs_buf *b, size_t max);
void cs_buf_free(struct cs_buf *b);  /* frees data; the struct can be reused after init */
void cs_buf_reset(struct cs_buf *b); /* len = 0, keeps the allocation */

/* Appends n bytes; CS_ERR_TOO_LARGE if len + n > max (nothing appended). */
enum cs_err cs_buf_append(struct cs_buf *b, const void *p, size_t n) CS_MUSTCHECK;
enum cs_err cs_buf_puts(struct cs_buf *b, const char *s) CS_MUSTCHECK;
enum cs_err cs_buf_printf(struct cs_buf *b, const char *fmt, ...) CS_MUSTCHECK CS_PRINTF(2, 3);

/* Appends what fits under max and sets truncated when bytes were dropped. */
void cs_buf_append_trunc(struct cs_buf *b, const void *p, size_t n);

/* Hands the data to the caller (who cs_free()s it) and empties the buffer. */
char *cs_buf_take(struct cs_buf *b, size_t *len);

#endif
