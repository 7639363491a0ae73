#include "firehose/filter.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/banned.h"

/* What the walk found. Pointers are into the caller's bytes. */
typedef struct scan {
    int has_time, time_bad;
    int64_t time_us;
    const char *kind, *op, *coll;
    size_t kind_len, op_len, coll_len;
} scan;

static inline const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* p at an opening quote. Returns the byte after the closing quote, or NULL. */
static const char *skip_str(const char *p, const char *e)
{
    p++;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (!q)
            return NULL;
        /* A quote is escaped when an odd number of backslashes precede it. */
        const char *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
}

/* Skips one JSON value (lightly: brackets are counted, not matched). */
static const char *skip_value(const char *p, const char *e)
{
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_str(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            char c = *p;
            if (c == '"') {
                p = skip_str(p, e);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > MDW_MAX_CBOR_DEPTH * 16)
                    return NULL;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *s = p;
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t')
        p++;
    return p > s ? p : NULL;
}

static inline int key_is(const char *k, size_t klen, const char *lit, size_t litlen)
{
    return klen == litlen && memcmp(k, lit, litlen) == 0;
}
#define KEY_IS(k, klen, lit) key_is(k, klen, lit, sizeof(lit) - 1)

/* Parses a positive integer time_us; p at its first byte. */
static const char *parse_time(const char *p, const char *e, scan *s)
{
    int64_t v = 0;
    const char *d = p;
    while (p < e && *p >= '0' && *p <= '9') {
        int dig = *p - '0';
        if (v > (INT64_MAX - dig) / 10) {
            s->time_bad = 1;
            return skip_value(d, e);
        }
        v = v * 10 + dig;
        p++;
    }
    if (p == d || v <= 0 ||
        (p < e && *p != ',' && *p != '}' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')) {
        s->time_bad = 1;
        return skip_value(d, e);
    }
    if (!s->has_time && !s->time_bad) {
        s->has_time = 1;
        s->time_us = v;
    }
    return p;
}

static int top_done(const scan *s)
{
    if (!(s->has_time || s->time_bad) || !s->kind)
        return 0;
    if (KEY_IS(s->kind, s->kind_len, "commit"))
        return s->op && s->coll;
    return 1;
}

enum { WALK_ERR = -1, WALK_END = 0, WALK_DONE = 1 };

/* Reads a string value (p at its quote) into v and vlen; returns after it. */
static const char *take_str(const char *p, const char *e, const char **v, size_t *vlen)
{
    const char *q = skip_str(p, e);
    if (q && !*v) {
        *v = p + 1;
        *vlen = (size_t)(q - 1 - (p + 1));
    }
    return q;
}

/*
** Walks the object at *pp ('{'). level 0 = top, 1 = inside commit. Returns
** WALK_DONE as soon as everything needed is known, WALK_END at the closing
** brace (with *pp after it), WALK_ERR on broken structure.
*/
static int walk(const char **pp, const char *e, scan *s, int level)
{
    const char *p = *pp + 1;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e)
            return WALK_ERR;
        if (*p == '}') {
            *pp = p + 1;
            return WALK_END;
        }
        if (*p != '"')
            return WALK_ERR;
        const char *k = p + 1;
        p = skip_str(p, e);
        if (!p)
            return WALK_ERR;
        size_t klen = (size_t)(p - 1 - k);
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return WALK_ERR;
        p = skip_ws(p + 1, e);
        if (p >= e)
            return WALK_ERR;
        if (level == 0 && KEY_IS(k, klen, "time_us")) {
            p = parse_time(p, e, s);
        } else if (level == 0 && *p == '"' && KEY_IS(k, klen, "kind")) {
            p = take_str(p, e, &s->kind, &s->kind_len);
        } else if (level == 1 && *p == '"' && KEY_IS(k, klen, "operation")) {
            p = take_str(p, e, &s->op, &s->op_len);
        } else if (level == 1 && *p == '"' && KEY_IS(k, klen, "collection")) {
            p = take_str(p, e, &s->coll, &s->coll_len);
        } else if (level == 0 && *p == '{' && KEY_IS(k, klen, "commit")) {
            int rc = walk(&p, e, s, 1);
            if (rc != WALK_END)
                return rc;
        } else {
            p = skip_value(p, e);
        }
        if (!p)
            return WALK_ERR;
        if (top_done(s))
            return WALK_DONE;
        p = skip_ws(p, e);
        if (p >= e)
            return WALK_ERR;
        if (*p == ',') {
            p++;
        } else if (*p == '}') {
            *pp = p + 1;
            return WALK_END;
        } else {
            return WALK_ERR;
        }
    }
}

/* JSON-looking: first non-space byte '{', last non-space byte '}'. */
static int looks_like_object(const char **pp, const char *e)
{
    const char *p = skip_ws(*pp, e);
    while (e > p && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
        e--;
    if (e - p < 2 || *p != '{' || e[-1] != '}')
        return 0;
    *pp = p;
    return 1;
}

/*
** memmem(d, n, "atr_", 4), about twice as fast here: '_' is rare in an event
** (the "time_us" key, then seldom in a post's text), so memchr's SIMD scan
** finds the few candidates and each is checked for the "atr" before it. perf
** showed glibc's memmem as a third of `meadow firehose`'s CPU once framing
** was cheap (docs/firehose.md).
*/
static int has_atr(const char *d, size_t n)
{
    if (n < 4)
        return 0;
    const char *p = d + 3, *e = d + n;
    while (p < e && (p = memchr(p, '_', (size_t)(e - p))) != NULL) {
        if (p[-3] == 'a' && p[-2] == 't' && p[-1] == 'r')
            return 1;
        p++;
    }
    return 0;
}

static mdw_filter_result verdict(mdw_filter_verdict *v, mdw_filter_reason r)
{
    v->reason = r;
    return mdw_filter_result_of(r);
}

mdw_filter_result mdw_filter_event(const void *data, size_t len, mdw_filter_verdict *v)
{
    const char *p = data, *e = (const char *)data + len;
    v->has_time = 0;
    v->time_us = 0;
    if (len > MDW_MAX_EVENT_BYTES)
        return verdict(v, MDW_FILTER_OVERSIZE);
    if (!looks_like_object(&p, e))
        return verdict(v, MDW_FILTER_NOT_JSON);
    scan s;
    memset(&s, 0, sizeof s);
    int rc = walk(&p, e, &s, 0);
    if (rc == WALK_ERR)
        return verdict(v, MDW_FILTER_NOT_JSON);
    if (!s.has_time || s.time_bad)
        return verdict(v, MDW_FILTER_NO_TIME_US);
    v->has_time = 1;
    v->time_us = s.time_us;
    if (!s.kind)
        return verdict(v, MDW_FILTER_BAD_EVENT);
    if (KEY_IS(s.kind, s.kind_len, "commit")) {
        if (!s.op || !s.coll)
            return verdict(v, MDW_FILTER_BAD_EVENT);
        if (KEY_IS(s.coll, s.coll_len, "app.bsky.feed.post")) {
            if (KEY_IS(s.op, s.op_len, "create"))
                return verdict(v, has_atr(data, len) ? MDW_FILTER_POST_CREATE_TAGGED
                                                     : MDW_FILTER_POST_CREATE_UNTAGGED);
            if (KEY_IS(s.op, s.op_len, "update"))
                return verdict(v, MDW_FILTER_POST_UPDATE);
            if (KEY_IS(s.op, s.op_len, "delete"))
                return verdict(v, MDW_FILTER_POST_DELETE);
            return verdict(v, MDW_FILTER_BAD_EVENT);
        }
        if (s.coll_len > 13 && memcmp(s.coll, "net.atrarium.", 13) == 0)
            return verdict(v, MDW_FILTER_ATRARIUM);
        return verdict(v, MDW_FILTER_OTHER_COLLECTION);
    }
    if (KEY_IS(s.kind, s.kind_len, "account"))
        return verdict(v, MDW_FILTER_ACCOUNT);
    if (KEY_IS(s.kind, s.kind_len, "identity"))
        return verdict(v, MDW_FILTER_IDENTITY);
    return verdict(v, MDW_FILTER_OTHER_KIND);
}

int mdw_filter_time_us(const void *data, size_t len, int64_t *time_us)
{
    /* The same walk as the filter, so both always agree on what time_us is. */
    mdw_filter_verdict v;
    mdw_filter_event(data, len, &v);
    if (!v.has_time)
        return MDW_EMALFORMED;
    *time_us = v.time_us;
    return 0;
}

static const struct {
    const char *name;
    mdw_filter_result result;
} reasons[MDW_FILTER_NREASONS] = {
    [MDW_FILTER_POST_CREATE_TAGGED] = {"post_create_tagged", MDW_FILTER_PASS},
    [MDW_FILTER_POST_UPDATE] = {"post_update", MDW_FILTER_PASS},
    [MDW_FILTER_POST_DELETE] = {"post_delete", MDW_FILTER_PASS},
    [MDW_FILTER_ATRARIUM] = {"atrarium", MDW_FILTER_PASS},
    [MDW_FILTER_ACCOUNT] = {"account", MDW_FILTER_PASS},
    [MDW_FILTER_POST_CREATE_UNTAGGED] = {"post_create_untagged", MDW_FILTER_DROP},
    [MDW_FILTER_OTHER_COLLECTION] = {"other_collection", MDW_FILTER_DROP},
    [MDW_FILTER_IDENTITY] = {"identity", MDW_FILTER_DROP},
    [MDW_FILTER_OTHER_KIND] = {"other_kind", MDW_FILTER_DROP},
    [MDW_FILTER_NOT_JSON] = {"not_json", MDW_FILTER_MALFORMED},
    [MDW_FILTER_NO_TIME_US] = {"no_time_us", MDW_FILTER_MALFORMED},
    [MDW_FILTER_OVERSIZE] = {"oversize", MDW_FILTER_MALFORMED},
    [MDW_FILTER_BAD_EVENT] = {"bad_event", MDW_FILTER_MALFORMED},
};

mdw_filter_result mdw_filter_result_of(mdw_filter_reason r)
{
    return (unsigned)r < MDW_FILTER_NREASONS ? reasons[r].result : MDW_FILTER_MALFORMED;
}

const char *mdw_filter_reason_name(mdw_filter_reason r)
{
    return (unsigned)r < MDW_FILTER_NREASONS ? reasons[r].name : "unknown";
}

#define LBL(res, rsn) "result=\"" res "\",reason=\"" rsn "\""
#define HELP          "Firehose events by lightweight-filter verdict"
#define CTR(res, rsn) MDW_COUNTER_INIT("meadow_firehose_events_total", LBL(res, rsn), HELP)
static mdw_counter counters[MDW_FILTER_NREASONS] = {
    [MDW_FILTER_POST_CREATE_TAGGED] = CTR("pass", "post_create_tagged"),
    [MDW_FILTER_POST_UPDATE] = CTR("pass", "post_update"),
    [MDW_FILTER_POST_DELETE] = CTR("pass", "post_delete"),
    [MDW_FILTER_ATRARIUM] = CTR("pass", "atrarium"),
    [MDW_FILTER_ACCOUNT] = CTR("pass", "account"),
    [MDW_FILTER_POST_CREATE_UNTAGGED] = CTR("drop", "post_create_untagged"),
    [MDW_FILTER_OTHER_COLLECTION] = CTR("drop", "other_collection"),
    [MDW_FILTER_IDENTITY] = CTR("drop", "identity"),
    [MDW_FILTER_OTHER_KIND] = CTR("drop", "other_kind"),
    [MDW_FILTER_NOT_JSON] = CTR("malformed", "not_json"),
    [MDW_FILTER_NO_TIME_US] = CTR("malformed", "no_time_us"),
    [MDW_FILTER_OVERSIZE] = CTR("malformed", "oversize"),
    [MDW_FILTER_BAD_EVENT] = CTR("malformed", "bad_event"),
};

void mdw_filter_metrics_register(void)
{
    for (int i = 0; i < MDW_FILTER_NREASONS; i++)
        mdw_counter_register(&counters[i]);
}

void mdw_filter_count(const uint64_t counts[MDW_FILTER_NREASONS])
{
    for (int i = 0; i < MDW_FILTER_NREASONS; i++)
        if (counts[i])
            mdw_counter_add(&counters[i], counts[i]);
}

uint64_t mdw_filter_counter_value(mdw_filter_reason r)
{
    return (unsigned)r < MDW_FILTER_NREASONS ? counters[r].value : 0;
}

#define MINUTE_US (60 * 1000000LL)
static mdw_ratelimit malformed_rl[MDW_FILTER_NREASONS] = {
    [MDW_FILTER_NOT_JSON] = MDW_RATELIMIT_INIT(MINUTE_US),
    [MDW_FILTER_NO_TIME_US] = MDW_RATELIMIT_INIT(MINUTE_US),
    [MDW_FILTER_OVERSIZE] = MDW_RATELIMIT_INIT(MINUTE_US),
    [MDW_FILTER_BAD_EVENT] = MDW_RATELIMIT_INIT(MINUTE_US),
};

void mdw_filter_log_malformed(mdw_filter_reason r, const void *data, size_t len,
                              int64_t now_mono_us)
{
    if (mdw_filter_result_of(r) != MDW_FILTER_MALFORMED || (unsigned)r >= MDW_FILTER_NREASONS)
        return;
    uint64_t suppressed = 0;
    if (!mdw_ratelimit_ok(&malformed_rl[r], now_mono_us, &suppressed))
        return;
    /* A short printable prefix: enough to recognise the input, never the whole frame. */
    char head[81];
    size_t n = len < 80 ? len : 80, j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char *)data)[i];
        head[j++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '.';
    }
    head[j] = '\0';
    mdw_warn("firehose", "malformed event", "reason=%s bytes=%zu suppressed=%llu head=\"%s\"",
             mdw_filter_reason_name(r), len, (unsigned long long)suppressed, head);
}
