#include "common/metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "common/banned.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mdw_counter *counters;
static mdw_gauge *gauges;
static mdw_hist *hists;
static const double bucket_le[MDW_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

/* Appends at the tail so a family's label sets render in registration order. */
#define APPEND(list, item, type)                                                                   \
    do {                                                                                           \
        pthread_mutex_lock(&mu);                                                                   \
        if (!(item)->registered) {                                                                 \
            (item)->registered = 1;                                                                \
            (item)->next = NULL;                                                                   \
            type **pp = &(list);                                                                   \
            while (*pp)                                                                            \
                pp = &(*pp)->next;                                                                 \
            *pp = (item);                                                                          \
        }                                                                                          \
        pthread_mutex_unlock(&mu);                                                                 \
    } while (0)

void mdw_counter_register(mdw_counter *c)
{
    APPEND(counters, c, mdw_counter);
}

void mdw_gauge_register(mdw_gauge *g)
{
    APPEND(gauges, g, mdw_gauge);
}

void mdw_hist_register(mdw_hist *h)
{
    APPEND(hists, h, mdw_hist);
}

void mdw_hist_observe_us(mdw_hist *h, int64_t us)
{
    double s = (double)us / 1e6;
    int i = 0;
    while (i < MDW_HIST_BUCKETS && s > bucket_le[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum_us += (uint64_t)(us > 0 ? us : 0);
}

/* Has a family with this name already been written (HELP/TYPE once)? */
static int seen_before(const char *name, const void *self, const void *head, size_t next_off,
                       size_t name_off)
{
    for (const char *p = head; p && p != self; p = *(const char *const *)(p + next_off))
        if (strcmp(*(const char *const *)(p + name_off), name) == 0)
            return 1;
    return 0;
}

int mdw_metrics_render(mdw_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&mu);
    for (mdw_counter *c = counters; c && !rc; c = c->next) {
        if (!seen_before(c->name, c, counters, offsetof(mdw_counter, next),
                         offsetof(mdw_counter, name)))
            rc =
                mdw_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", c->name, c->help, c->name);
        if (!rc)
            rc = mdw_buf_printf(out, "%s%s%s%s %llu\n", c->name, c->labels ? "{" : "",
                                c->labels ? c->labels : "", c->labels ? "}" : "",
                                (unsigned long long)c->value);
    }
    for (mdw_gauge *g = gauges; g && !rc; g = g->next) {
        if (!seen_before(g->name, g, gauges, offsetof(mdw_gauge, next), offsetof(mdw_gauge, name)))
            rc = mdw_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", g->name, g->help, g->name);
        if (!rc)
            rc = mdw_buf_printf(out, "%s%s%s%s %.17g\n", g->name, g->labels ? "{" : "",
                                g->labels ? g->labels : "", g->labels ? "}" : "", g->fn(g->ctx));
    }
    for (mdw_hist *h = hists; h && !rc; h = h->next) {
        if (!seen_before(h->name, h, hists, offsetof(mdw_hist, next), offsetof(mdw_hist, name)))
            rc = mdw_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help,
                                h->name);
        const char *l = h->labels ? h->labels : "";
        const char *sep = h->labels ? "," : "";
        uint64_t cum = 0;
        for (int i = 0; i <= MDW_HIST_BUCKETS && !rc; i++) {
            cum += h->buckets[i];
            if (i < MDW_HIST_BUCKETS)
                rc = mdw_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", h->name, l, sep,
                                    bucket_le[i], (unsigned long long)cum);
            else
                rc = mdw_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", h->name, l, sep,
                                    (unsigned long long)cum);
        }
        if (!rc)
            rc = mdw_buf_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", h->name,
                                h->labels ? "{" : "", l, h->labels ? "}" : "",
                                (double)h->sum_us / 1e6, h->name, h->labels ? "{" : "", l,
                                h->labels ? "}" : "", (unsigned long long)h->count);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int64_t mdw_metrics_counter_value(const char *name, const char *labels)
{
    int64_t v = -1;
    pthread_mutex_lock(&mu);
    for (mdw_counter *c = counters; c; c = c->next) {
        if (strcmp(c->name, name) == 0 &&
            ((!labels && !c->labels) || (labels && c->labels && strcmp(labels, c->labels) == 0))) {
            v = (int64_t)c->value;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return v;
}
