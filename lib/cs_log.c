/*
 * cs_log.c -- JSON-lines logger (see cs_log.h).
 *
 * Process-wide state is two values set once by cs_log_init() before any
 * thread starts; after that it is only read.
 */
#include "cs_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char *log_process = "countersign";
static enum cs_log_level log_level = CS_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void cs_log_init(const char *process, enum cs_log_level level)
{
    log_process = process;
    log_level = level;
}

int cs_log_level_parse(const char *s)
{
    for (int i = 0; i <= CS_LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

bool cs_log_enabled(enum cs_log_level level)
{
    return level >= log_level && level < CS_LOG_OFF;
}

/* Appends s JSON-escaped to out[*n..cap); stops (without splitting an escape) when full. */
static void put_escaped(char *out, size_t *n, size_t cap, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *rep = NULL;
        size_t len;
        if (c == '"')
            rep = "\\\"";
        else if (c == '\\')
            rep = "\\\\";
        else if (c == '\n')
            rep = "\\n";
        else if (c == '\r')
            rep = "\\r";
        else if (c == '\t')
            rep = "\\t";
        else if (c < 0x20) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            rep = tmp;
        }
        len = rep ? strlen(rep) : 1;
        if (*n + len >= cap)
            return;
        if (rep)
            memcpy(out + *n, rep, len);
        else
            out[*n] = (char)c;
        *n += len;
    }
}

static void put_raw(char *out, size_t *n, size_t cap, const char *s)
{
    size_t len = strlen(s);
    if (*n + len >= cap)
        len = cap - *n - 1;
    memcpy(out + *n, s, len);
    *n += len;
}

void cs_log_write(enum cs_log_level level, const char *subsystem, const char *approval_id,
                  const char *fmt, ...)
{
    char msg[2048], line[4096], ts[64];
    struct timeval tv;
    struct tm tm;
    size_t n = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    const size_t cap = sizeof(line) - 2; /* room for "}\n" */
    put_raw(line, &n, cap, "{\"ts\":\"");
    put_raw(line, &n, cap, ts);
    put_raw(line, &n, cap, "\",\"level\":\"");
    put_raw(line, &n, cap, level_names[level]);
    put_raw(line, &n, cap, "\",\"process\":\"");
    put_escaped(line, &n, cap, log_process);
    put_raw(line, &n, cap, "\",\"subsystem\":\"");
    put_escaped(line, &n, cap, subsystem);
    if (approval_id) {
        put_raw(line, &n, cap, "\",\"approval_id\":\"");
        put_escaped(line, &n, cap, approval_id);
    }
    put_raw(line, &n, cap, "\",\"msg\":\"");
    put_escaped(line, &n, cap - 1, msg);
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

bool cs_log_limit_allow(struct cs_log_limit *lim, int seconds, unsigned *suppressed)
{
    time_t now = time(NULL);
    if (lim->last && now - lim->last < seconds) {
        lim->suppressed++;
        return false;
    }
    if (suppressed)
        *suppressed = lim->suppressed;
    lim->suppressed = 0;
    lim->last = now;
    return true;
}
