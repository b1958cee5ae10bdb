/*
 * cs_time.h -- wall-clock time as the processes read and print it.
 *
 * Milliseconds since the Unix epoch everywhere in C; RFC 3339 UTC with
 * milliseconds ("2026-11-25T14:36:22.123Z") on the wire. And the one
 * backoff every retry loop uses (reconnects, stalled rounds).
 */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <stdint.h>

#define CS_TIME_ISO_LEN 32

/* Milliseconds since the epoch (wall clock). */
int64_t cs_now_ms(void);

/* Formats ms as RFC 3339 UTC into out[CS_TIME_ISO_LEN]; returns out. */
char *cs_time_iso(int64_t ms, char out[CS_TIME_ISO_LEN]);

/*
 * Exponential backoff: the first wait is min_ms, each next one doubles, up
 * to max_ms. Zero-initialise ms (or call cs_backoff_reset) before the first
 * failure; CS_BACKOFF is the usual 100 ms .. 5 s.
 */
struct cs_backoff {
    int min_ms, max_ms;
    int ms; /* the last wait handed out, 0 before any */
};
#define CS_BACKOFF ((struct cs_backoff){100, 5000, 0})

/* The wait before the next attempt, in ms (and the one after doubles). */
int cs_backoff_next(struct cs_backoff *b);
/* After a success: the next failure waits min_ms again. */
void cs_backoff_reset(struct cs_backoff *b);

#endif
