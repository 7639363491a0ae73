/*
** common/log.h — leveled logfmt logging to stderr.
**
** One line per call: ts=<RFC3339> level=<lvl> mod=<module> msg="<msg>" k=v …
** kvfmt is a printf format for the trailing key=value pairs (may be NULL).
** Lines are written with a single write(2), so threads do not interleave.
** Never pass secrets (passwords, tokens) to these functions.
*/
#ifndef MDW_LOG_H
#define MDW_LOG_H

#include <stdint.h>

typedef enum {
    MDW_LOG_DEBUG,
    MDW_LOG_INFO,
    MDW_LOG_WARN,
    MDW_LOG_ERROR,
    MDW_LOG_OFF
} mdw_log_level;

void mdw_log_set_level(mdw_log_level lvl);
mdw_log_level mdw_log_get_level(void);
/* Parses "debug|info|warn|error|off"; -1 when unknown. */
int mdw_log_level_parse(const char *s);
int mdw_log_enabled(mdw_log_level lvl);

void mdw_log(mdw_log_level lvl, const char *mod, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));

#define mdw_debug(mod, msg, ...) mdw_log(MDW_LOG_DEBUG, mod, msg, __VA_ARGS__)
#define mdw_info(mod, msg, ...)  mdw_log(MDW_LOG_INFO, mod, msg, __VA_ARGS__)
#define mdw_warn(mod, msg, ...)  mdw_log(MDW_LOG_WARN, mod, msg, __VA_ARGS__)
#define mdw_error(mod, msg, ...) mdw_log(MDW_LOG_ERROR, mod, msg, __VA_ARGS__)

/*
** Rate limit: "log at most once per interval per kind". Keep one per kind;
** mdw_ratelimit_ok() returns 1 when the caller may log now, and counts the
** calls suppressed since the last allowed one in *suppressed.
*/
typedef struct mdw_ratelimit {
    int64_t interval_us;
    _Atomic int64_t last_us;
    _Atomic uint64_t suppressed;
} mdw_ratelimit;

#define MDW_RATELIMIT_INIT(interval_us)                                                            \
    {                                                                                              \
        (interval_us), 0, 0                                                                        \
    }
int mdw_ratelimit_ok(mdw_ratelimit *rl, int64_t now_mono_us, uint64_t *suppressed);

#endif
