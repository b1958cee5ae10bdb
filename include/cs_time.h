/*
 * cs_time.h -- wall-clock time as the processes read and print it.
 *
 * Milliseconds since the Unix epoch everywhere in C; RFC 3339 UTC with
 * milliseconds ("2026-11-25T14:36:22.123Z") on the wire.
 */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <stdint.h>

#define CS_TIME_ISO_LEN 32

/* Milliseconds since the epoch (wall clock). */
int64_t cs_now_ms(void);

/* Formats ms as RFC 3339 UTC into out[CS_TIME_ISO_LEN]; returns out. */
char *cs_time_iso(int64_t ms, char out[CS_TIME_ISO_LEN]);

#endif
