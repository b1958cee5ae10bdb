/*
 * cs_log.h -- the one logger: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-25T14:36:22.123Z","level":"info","process":"worker",
 *    "subsystem":"executor","approval_id":"...","msg":"executed status=200"}
 *
 * The level is checked before formatting (cs_log is a macro). Info means a
 * state changed; per-row detail is Debug; an error is logged once where it is
 * decided; repeated warnings go through a struct cs_log_limit. Never pass a
 * secret, an Authorization header or a request body to the logger: the
 * message is written as given (escaped for JSON, capped at 2 KiB).
 *
 * Thread: any thread; each line is written with one write(2).
 */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdbool.h>
#include <time.h>

enum cs_log_level { CS_LOG_DEBUG, CS_LOG_INFO, CS_LOG_WARN, CS_LOG_ERROR, CS_LOG_OFF };

/* Sets the process name and minimum level; call once from main(). */
void cs_log_init(const char *process, enum cs_log_level level);

/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int cs_log_level_parse(const char *s);

bool cs_log_enabled(enum cs_log_level level);

void cs_log_write(enum cs_log_level level, const char *subsystem, const char *approval_id,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define cs_log(level, subsystem, ...)                          \
    do {                                                       \
        if (cs_log_enabled(level))                             \
            cs_log_write(level, subsystem, NULL, __VA_ARGS__); \
    } while (0)

#define cs_log_ap(level, subsystem, approval_id, ...)                 \
    do {                                                              \
        if (cs_log_enabled(level))                                    \
            cs_log_write(level, subsystem, approval_id, __VA_ARGS__); \
    } while (0)

/*
 * Rate limit for a repeated warning: cs_log_limit_allow() returns true at
 * most once per `seconds`, and reports how many were suppressed meanwhile.
 * One static struct per call site. Thread: one thread per struct.
 */
struct cs_log_limit {
    time_t last;
    unsigned suppressed;
};
bool cs_log_limit_allow(struct cs_log_limit *lim, int seconds, unsigned *suppressed);

#endif
