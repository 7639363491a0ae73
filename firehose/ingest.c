#include "firehose/ingest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/stop.h"
#include "common/banned.h"

typedef struct pending_ev {
    size_t off, len;
    int64_t time_us;
} pending_ev;

struct mdw_ingest {
    mdw_queue *q;
    mdw_clock *clock;
    mdw_ingest_opts o;
    int has_start;
    int64_t start_cursor;
    int64_t cursor;    /* largest position read (>= start cursor) */
    int64_t committed; /* last cursor stored */
    int dirty;         /* cursor != committed */
    /* open batch */
    mdw_buf arena;
    pending_ev *ev;
    size_t n, cap;
    mdw_queue_event *qev;
    int64_t batch_open_us;
    int64_t last_commit_us;
    /* backpressure */
    int above_high;   /* hysteresis: set at high water, cleared at low water */
    int blocked_full; /* an append failed with MDW_EFULL: retry later */
    int64_t next_retry_us;
    uint64_t counts[MDW_FILTER_NREASONS]; /* not yet published */
    mdw_ingest_stats st;
};

static mdw_counter m_batches = MDW_COUNTER_INIT("meadow_firehose_batches_total", NULL,
                                                "Batches appended to the queue by ingest");
static mdw_counter m_cursor = MDW_COUNTER_INIT("meadow_firehose_cursor_commits_total", NULL,
                                               "Cursor-only commits (no candidate pending)");
static mdw_counter m_full = MDW_COUNTER_INIT("meadow_firehose_queue_full_total", NULL,
                                             "Appends refused because the queue map was full");
static mdw_counter m_pauses = MDW_COUNTER_INIT("meadow_firehose_backpressure_pauses_total", NULL,
                                               "Times ingest stopped reading (queue high water)");

void mdw_ingest_opts_default(mdw_ingest_opts *o, uint8_t source, const char *name)
{
    memset(o, 0, sizeof *o);
    o->source = source;
    o->name = name;
    o->batch_max_events = 1000;
    o->batch_max_us = 5000;
    o->cursor_interval_us = 1000000;
    o->retry_us = 50000;
    o->batch_max_bytes = 64u * 1024 * 1024;
}

void mdw_ingest_opts_from_config(mdw_ingest_opts *o, const mdw_config *cfg)
{
    o->batch_max_events = (size_t)cfg->batch_max_events;
    o->batch_max_us = cfg->batch_max_ms * 1000;
}

int mdw_ingest_new(mdw_ingest **out, mdw_queue *q, mdw_clock *clock, const mdw_ingest_opts *o)
{
    mdw_ingest *in = xcalloc(1, sizeof *in);
    in->q = q;
    in->clock = clock;
    in->o = *o;
    if (!in->o.name)
        in->o.name = "ingest";
    if (in->o.batch_max_events < 1)
        in->o.batch_max_events = 1;
    if (in->o.batch_max_bytes < MDW_MAX_EVENT_BYTES)
        in->o.batch_max_bytes = MDW_MAX_EVENT_BYTES;
    mdw_buf_init(&in->arena, in->o.batch_max_bytes);
    int64_t c;
    int rc = mdw_queue_get_cursor(q, o->source, &c);
    if (rc == 0) {
        in->has_start = 1;
        in->start_cursor = in->cursor = in->committed = c;
    } else if (rc != MDW_ENOTFOUND) {
        mdw_error("firehose", "cannot read stored cursor", "source=%s err=\"%s\"", in->o.name,
                  mdw_strerror(rc));
        mdw_buf_release(&in->arena);
        free(in);
        return rc;
    }
    in->last_commit_us = mdw_clock_mono_us(clock);
    mdw_filter_metrics_register();
    mdw_counter_register(&m_batches);
    mdw_counter_register(&m_cursor);
    mdw_counter_register(&m_full);
    mdw_counter_register(&m_pauses);
    *out = in;
    return 0;
}

void mdw_ingest_free(mdw_ingest *in)
{
    if (!in)
        return;
    mdw_filter_count(in->counts);
    mdw_buf_release(&in->arena);
    free(in->ev);
    free(in->qev);
    free(in);
}

int mdw_ingest_start_cursor(const mdw_ingest *in, int64_t *c)
{
    if (!in->has_start)
        return MDW_ENOTFOUND;
    *c = in->start_cursor;
    return 0;
}

int64_t mdw_ingest_cursor(const mdw_ingest *in)
{
    return in->cursor;
}

int64_t mdw_ingest_committed_cursor(const mdw_ingest *in)
{
    return in->committed;
}

static void publish_counts(mdw_ingest *in)
{
    mdw_filter_count(in->counts);
    memset(in->counts, 0, sizeof in->counts);
}

static void update_watermarks(mdw_ingest *in)
{
    if (!in->above_high) {
        if (mdw_queue_above_high_water(in->q)) {
            in->above_high = 1;
            in->st.pauses++;
            mdw_counter_inc(&m_pauses);
            mdw_info("firehose", "queue above high water: pausing reads", "source=%s depth=%llu",
                     in->o.name, (unsigned long long)mdw_queue_depth(in->q));
        }
    } else if (mdw_queue_below_low_water(in->q)) {
        in->above_high = 0;
        mdw_info("firehose", "queue below low water: resuming reads", "source=%s depth=%llu",
                 in->o.name, (unsigned long long)mdw_queue_depth(in->q));
    }
}

/* Appends the open batch (or the cursor alone when n == 0 and it moved). */
static int commit(mdw_ingest *in)
{
    int64_t now = mdw_clock_mono_us(in->clock);
    if (in->n == 0 && !in->dirty)
        return 0;
    int rc;
    if (in->n > 0) {
        for (size_t i = 0; i < in->n; i++) {
            in->qev[i].data = in->arena.data + in->ev[i].off;
            in->qev[i].len = in->ev[i].len;
            in->qev[i].time_us = in->ev[i].time_us;
        }
        rc = mdw_queue_append(in->q, in->o.source, in->qev, in->n, in->cursor);
    } else {
        rc = mdw_queue_commit_cursor(in->q, in->o.source, in->cursor);
    }
    if (rc) {
        /*
        ** MDW_EFULL (map full) or any other refusal: keep the batch, stop
        ** reading, retry later. Never drop; the cursor stays where it was.
        */
        if (!in->blocked_full)
            mdw_warn("firehose", "queue refused the batch: ingest paused, retrying",
                     "source=%s pending=%zu err=\"%s\"", in->o.name, in->n, mdw_strerror(rc));
        in->blocked_full = 1;
        in->next_retry_us = now + in->o.retry_us;
        in->st.full_retries++;
        if (rc == MDW_EFULL)
            mdw_counter_inc(&m_full);
        return 0;
    }
    if (in->blocked_full)
        mdw_info("firehose", "queue accepts again", "source=%s", in->o.name);
    in->blocked_full = 0;
    if (in->n > 0) {
        in->st.batches++;
        mdw_counter_inc(&m_batches);
    } else {
        in->st.cursor_commits++;
        mdw_counter_inc(&m_cursor);
    }
    in->committed = in->cursor;
    in->dirty = 0;
    in->n = 0;
    mdw_buf_reset(&in->arena);
    in->last_commit_us = now;
    publish_counts(in);
    update_watermarks(in);
    return 0;
}

static void advance(mdw_ingest *in, int64_t pos)
{
    if (pos > in->cursor) {
        in->cursor = pos;
        in->dirty = 1;
    }
}

void mdw_ingest_advance(mdw_ingest *in, int64_t position)
{
    advance(in, position);
}

void mdw_ingest_malformed(mdw_ingest *in, mdw_filter_reason r, const void *head, size_t len)
{
    in->counts[r]++;
    in->st.by_reason[r]++;
    in->st.events++;
    mdw_filter_log_malformed(r, head, len, mdw_clock_mono_us(in->clock));
}

/* Waits out a full batch while the queue refuses it (the caller is blocked). */
static int keep(mdw_ingest *in, const void *data, size_t len, int64_t time_us)
{
    while (in->arena.len + len > in->o.batch_max_bytes && in->n > 0) {
        int rc = commit(in);
        if (rc)
            return rc;
        if (in->n > 0) {
            /* Still refused: the caller ignored should_pause; wait here, never drop. */
            if (mdw_stop_requested())
                return MDW_ESTOPPED;
            struct timespec ts = {0, (long)in->o.retry_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (in->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 256;
        in->ev = xrealloc(in->ev, in->cap * sizeof *in->ev);
        in->qev = xrealloc(in->qev, in->cap * sizeof *in->qev);
    }
    pending_ev *e = &in->ev[in->n];
    e->off = in->arena.len;
    e->len = len;
    e->time_us = time_us;
    int rc = mdw_buf_append(&in->arena, data, len);
    if (rc)
        return rc; /* cannot happen: batch_max_bytes >= MDW_MAX_EVENT_BYTES */
    if (in->n++ == 0)
        in->batch_open_us = mdw_clock_mono_us(in->clock);
    return 0;
}

static int feed(mdw_ingest *in, const void *data, size_t len, int64_t position, int pos_is_time)
{
    mdw_filter_verdict v;
    int res = mdw_filter_event(data, len, &v);
    mdw_filter_reason r = v.reason;
    in->st.events++;
    if (res == MDW_FILTER_PASS && !mdw_queue_event_fits(in->q, len)) {
        res = MDW_FILTER_MALFORMED;
        r = MDW_FILTER_OVERSIZE;
    }
    in->counts[r]++;
    in->st.by_reason[r]++;
    if (res == MDW_FILTER_MALFORMED)
        mdw_filter_log_malformed(r, data, len, mdw_clock_mono_us(in->clock));
    if (res == MDW_FILTER_PASS) {
        in->st.candidates++;
        int rc = keep(in, data, len, v.has_time ? v.time_us : 0);
        if (rc)
            return rc;
    }
    if (pos_is_time) {
        if (v.has_time)
            advance(in, v.time_us);
    } else if (position > 0) {
        advance(in, position);
    }
    if (in->n >= in->o.batch_max_events && !in->blocked_full) {
        int rc = commit(in);
        if (rc)
            return rc;
    }
    return res;
}

int mdw_ingest_event(mdw_ingest *in, const void *data, size_t len)
{
    return feed(in, data, len, 0, 1);
}

int mdw_ingest_event_at(mdw_ingest *in, const void *data, size_t len, int64_t position)
{
    return feed(in, data, len, position, 0);
}

int mdw_ingest_idle(mdw_ingest *in)
{
    if (in->n == 0 || in->blocked_full)
        return 0;
    return commit(in);
}

int mdw_ingest_tick(mdw_ingest *in)
{
    int64_t now = mdw_clock_mono_us(in->clock);
    if (in->blocked_full) {
        if (now < in->next_retry_us)
            return 0;
        /*
        ** LMDB reuses pages freed by the newest transaction only after one
        ** more commit; refused appends abort and commit nothing. So re-store
        ** the cursor already committed (a no-op for its meaning) first: when
        ** a consumer has just drained the queue, the retry then finds room.
        */
        if (in->committed > 0)
            mdw_queue_commit_cursor(in->q, in->o.source, in->committed);
        return commit(in);
    }
    if (in->n > 0) {
        if (now - in->batch_open_us >= in->o.batch_max_us)
            return commit(in);
    } else if (in->dirty && now - in->last_commit_us >= in->o.cursor_interval_us) {
        return commit(in);
    }
    if (in->above_high && now >= in->next_retry_us) {
        in->next_retry_us = now + in->o.retry_us;
        update_watermarks(in);
    }
    return 0;
}

int64_t mdw_ingest_next_tick_us(mdw_ingest *in)
{
    int64_t now = mdw_clock_mono_us(in->clock), wait = 100000;
    if (in->blocked_full || in->above_high) {
        wait = in->next_retry_us - now;
    } else if (in->n > 0) {
        wait = in->batch_open_us + in->o.batch_max_us - now;
    } else if (in->dirty) {
        wait = in->last_commit_us + in->o.cursor_interval_us - now;
    }
    if (wait > 100000)
        wait = 100000;
    return wait < 0 ? 0 : wait;
}

int mdw_ingest_should_pause(const mdw_ingest *in)
{
    return in->above_high || in->blocked_full;
}

int mdw_ingest_flush(mdw_ingest *in)
{
    int rc = commit(in);
    publish_counts(in);
    if (rc == 0 && in->blocked_full)
        return MDW_EFULL;
    return rc;
}

void mdw_ingest_stats_get(const mdw_ingest *in, mdw_ingest_stats *st)
{
    *st = in->st;
    st->pending = in->n;
    st->paused = mdw_ingest_should_pause(in);
}
