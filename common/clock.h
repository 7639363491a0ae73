/*
** common/clock.h — the one way Meadow reads the time.
**
** Everything that needs "now" (cursor age, retention, token expiry, sort keys,
** log timestamps, timeouts) takes an mdw_clock. mdw_clock_real() reads the
** system clocks; a fake clock holds a wall time that tests set and advance, so
** no test depends on the wall clock. The fake is safe to read and advance from
** several threads (atomics). Monotonic time on a fake clock moves with it.
*/
#ifndef MDW_CLOCK_H
#define MDW_CLOCK_H

#include <stdint.h>

typedef struct mdw_clock {
    int fake;            /* 0: real clocks */
    _Atomic int64_t now; /* fake: unix µs */
} mdw_clock;

/* The process-wide real clock (static storage, never freed). */
mdw_clock *mdw_clock_real(void);
void mdw_clock_fake_init(mdw_clock *c, int64_t now_us);
void mdw_clock_fake_set(mdw_clock *c, int64_t now_us);
void mdw_clock_fake_advance(mdw_clock *c, int64_t delta_us);

/* Wall time, unix microseconds. */
int64_t mdw_clock_now_us(const mdw_clock *c);
/* Monotonic microseconds (for timeouts and rates; arbitrary origin). */
int64_t mdw_clock_mono_us(const mdw_clock *c);

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-23T06:11:20.123Z; out >= 32 bytes. */
void mdw_time_format(int64_t unix_us, char *out, unsigned outlen);
/* Parses an atproto datetime (RFC 3339 with zone) to unix µs; 0 or MDW_EMALFORMED. */
int mdw_time_parse(const char *s, int64_t *unix_us);
/* Days from 1970-01-01 to y-m-d, proleptic Gregorian; d past the month's end rolls over. */
int64_t mdw_days_from_civil(int64_t y, int m, int d);

#endif
