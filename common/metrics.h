/*
** common/metrics.h — process-wide Prometheus metrics.
**
** Modules own their metric objects (usually static) and register them once at
** init; feedgen renders the registry at GET /metrics. Counters and histograms
** are lock-free to update from any thread (atomics); registration and
** rendering take one mutex. A metric name may be registered several times
** with different label sets ({reason="x"}); they render as one family.
** Gauges are callbacks so values are read when scraped (queue depth, lag).
*/
#ifndef MDW_METRICS_H
#define MDW_METRICS_H

#include <stdint.h>

#include "common/buf.h"

typedef struct mdw_counter {
    const char *name;   /* e.g. "meadow_firehose_events_total" */
    const char *labels; /* e.g. "reason=\"not_post\"" or NULL */
    const char *help;
    _Atomic uint64_t value;
    struct mdw_counter *next;
    int registered;
} mdw_counter;

#define MDW_COUNTER_INIT(name, labels, help)                                                       \
    {                                                                                              \
        (name), (labels), (help), 0, NULL, 0                                                       \
    }

typedef double (*mdw_gauge_fn)(void *ctx);

typedef struct mdw_gauge {
    const char *name;
    const char *labels;
    const char *help;
    mdw_gauge_fn fn;
    void *ctx;
    struct mdw_gauge *next;
    int registered;
} mdw_gauge;

#define MDW_HIST_BUCKETS 14
typedef struct mdw_hist {
    const char *name; /* seconds; buckets 0.0001 .. 5 */
    const char *labels;
    const char *help;
    _Atomic uint64_t buckets[MDW_HIST_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
    struct mdw_hist *next;
    int registered;
} mdw_hist;

#define MDW_HIST_INIT(name, labels, help)                                                          \
    {                                                                                              \
        (name), (labels), (help), {0}, 0, 0, NULL, 0                                               \
    }

void mdw_counter_register(mdw_counter *c);
void mdw_gauge_register(mdw_gauge *g);
void mdw_hist_register(mdw_hist *h);

static inline void mdw_counter_add(mdw_counter *c, uint64_t n)
{
    c->value += n;
}
static inline void mdw_counter_inc(mdw_counter *c)
{
    c->value++;
}
void mdw_hist_observe_us(mdw_hist *h, int64_t us);

/* Prometheus text exposition format 0.0.4. */
int mdw_metrics_render(mdw_buf *out);
/* Finds a registered counter's value by name and labels (tests); -1 if absent. */
int64_t mdw_metrics_counter_value(const char *name, const char *labels);

#endif
