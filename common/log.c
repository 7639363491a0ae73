#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/banned.h"

static _Atomic int log_level = MDW_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void mdw_log_set_level(mdw_log_level lvl)
{
    log_level = lvl;
}

mdw_log_level mdw_log_get_level(void)
{
    return (mdw_log_level)log_level;
}

int mdw_log_level_parse(const char *s)
{
    for (int i = 0; i <= MDW_LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int mdw_log_enabled(mdw_log_level lvl)
{
    return (int)lvl >= log_level && lvl < MDW_LOG_OFF;
}

void mdw_log(mdw_log_level lvl, const char *mod, const char *msg, const char *kvfmt, ...)
{
    if (!mdw_log_enabled(lvl))
        return;
    char line[MDW_MAX_LOG_LINE];
    char ts[40];
    mdw_time_format(mdw_clock_now_us(mdw_clock_real()), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s mod=%s msg=\"", ts, level_names[lvl], mod);
    /* The message is quoted: escape quotes, backslashes and control bytes. */
    for (const char *p = msg; *p && n < (int)sizeof line - 8; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            line[n++] = ' ';
        } else {
            line[n++] = (char)c;
        }
    }
    line[n++] = '"';
    if (kvfmt && *kvfmt && n < (int)sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, kvfmt, ap);
        va_end(ap);
        if (k > 0)
            n += k < (int)(sizeof line - (size_t)n - 1) ? k : (int)(sizeof line - (size_t)n - 2);
    }
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

int mdw_ratelimit_ok(mdw_ratelimit *rl, int64_t now_mono_us, uint64_t *suppressed)
{
    int64_t last = rl->last_us;
    if (last != 0 && now_mono_us - last < rl->interval_us) {
        rl->suppressed++;
        return 0;
    }
    rl->last_us = now_mono_us ? now_mono_us : 1;
    uint64_t s = rl->suppressed;
    rl->suppressed = 0;
    if (suppressed)
        *suppressed = s;
    return 1;
}
