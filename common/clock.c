#include "common/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/banned.h"

static mdw_clock real_clock = {0, 0};

mdw_clock *mdw_clock_real(void)
{
    return &real_clock;
}

void mdw_clock_fake_init(mdw_clock *c, int64_t now_us)
{
    c->fake = 1;
    c->now = now_us;
}

void mdw_clock_fake_set(mdw_clock *c, int64_t now_us)
{
    c->now = now_us;
}

void mdw_clock_fake_advance(mdw_clock *c, int64_t delta_us)
{
    c->now += delta_us;
}

int64_t mdw_clock_now_us(const mdw_clock *c)
{
    if (c && c->fake)
        return c->now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mdw_clock_mono_us(const mdw_clock *c)
{
    if (c && c->fake)
        return c->now;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mdw_time_format(int64_t unix_us, char *out, unsigned outlen)
{
    time_t secs = (time_t)(unix_us / 1000000);
    int64_t frac = unix_us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 1000));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Howard Hinnant's formula. */
int64_t mdw_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int mdw_time_parse(const char *s, int64_t *unix_us)
{
    int Y, M, D, h, m, sec;
    size_t n = strlen(s);
    if (n < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return MDW_EMALFORMED;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return MDW_EMALFORMED;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (D > mdays[M - 1])
        return MDW_EMALFORMED;
    if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
        return MDW_EMALFORMED;
    const char *p = s + 19;
    int64_t us = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        int64_t scale = 100000;
        while (isdigit((unsigned char)*p)) {
            if (nd < 6)
                us += (*p - '0') * scale;
            scale /= 10;
            nd++;
            p++;
        }
        if (nd == 0)
            return MDW_EMALFORMED;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return MDW_EMALFORMED;
        off = (int64_t)(oh * 60 + om) * 60;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return MDW_EMALFORMED;
    }
    if (*p)
        return MDW_EMALFORMED;
    int64_t t =
        mdw_days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + (sec > 59 ? 59 : sec) - off;
    *unix_us = t * 1000000 + us;
    return 0;
}
