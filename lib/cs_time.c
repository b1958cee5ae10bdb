/*
 * cs_time.c -- wall-clock helpers (see cs_time.h).
 */
#include "cs_time.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

int64_t cs_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

char *cs_time_iso(int64_t ms, char out[CS_TIME_ISO_LEN])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char date[24];
    gmtime_r(&s, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, CS_TIME_ISO_LEN, "%.24s.%03uZ", date, (unsigned)(ms % 1000));
    return out;
}

int cs_backoff_next(struct cs_backoff *b)
{
    b->ms = b->ms ? (b->ms > b->max_ms / 2 ? b->max_ms : b->ms * 2) : b->min_ms;
    return b->ms;
}

void cs_backoff_reset(struct cs_backoff *b)
{
    b->ms = 0;
}
