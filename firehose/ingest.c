#include "firehose/ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* Candidates waiting for one append transaction, with the cursor covering them. */
typedef struct batch {
    mdw_buf arena;
    pending_ev *ev;
    mdw_queue_event *qev;
    size_t n, cap;
    int64_t cursor;
} batch;

struct mdw_ingest {
    mdw_queue *q;
    mdw_clock *clock;
    mdw_ingest_opts o;
    int has_start;
    int64_t start_cursor;
    /* reader side (the source's thread) */
    int64_t cursor; /* largest position read (>= start cursor) */
    int dirty;      /* cursor not yet handed to a commit */
    batch open;
    int64_t batch_open_us;
    int64_t last_commit_us; /* last hand-off (async) or commit (sync) */
    int64_t next_retry_us;
    uint64_t counts[MDW_FILTER_NREASONS]; /* not yet published */
    /*
    ** The reader's totals for stats_get, which any thread may call: atomics
    ** written by the reader alone (bump), so no lock and no locked increment
    ** per event on the hot path.
    */
    _Atomic uint64_t n_events, n_candidates, n_by_reason[MDW_FILTER_NREASONS];
    /* shared */
    atomic_int above_high; /* hysteresis: set at high water, cleared at low water */
    atomic_int blocked;    /* the queue refused the last append: retrying */
    atomic_int block_rc;   /* why (a code mdw_err_environment() accepts) */
    atomic_int retries;    /* refusals in a row: the retry delay doubles (backoff) */
    atomic_int fatal;      /* a queue error no retry cures: 0 or the code, ingest stops */
    atomic_ullong pauses;
    _Atomic int64_t committed;
    /* writer thread (async mode) */
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch inflight;
    int job;     /* inflight holds work (mu) */
    int stop;    /* writer must exit when idle (mu) */
    int abandon; /* shutdown while refused: give up the inflight batch (mu) */
    void (*wake)(void *);
    void *wake_ctx;
    mdw_ingest_stats st; /* writer-side fields under mu in async mode */
};

/* Single-writer counter: a relaxed load and store, which cost what `c++` does. */
static inline void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

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
    o->async = 0;
}

void mdw_ingest_opts_from_config(mdw_ingest_opts *o, const mdw_config *cfg)
{
    o->batch_max_events = (size_t)cfg->batch_max_events;
    o->batch_max_us = cfg->batch_max_ms * 1000;
}

static void batch_init(batch *b, size_t max_bytes)
{
    memset(b, 0, sizeof *b);
    mdw_buf_init(&b->arena, max_bytes);
}

static void batch_release(batch *b)
{
    mdw_buf_release(&b->arena);
    free(b->ev);
    free(b->qev);
}

static void batch_reset(batch *b)
{
    b->n = 0;
    mdw_buf_reset(&b->arena);
}

static void *writer_main(void *arg);

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
    batch_init(&in->open, in->o.batch_max_bytes);
    batch_init(&in->inflight, in->o.batch_max_bytes);
    int64_t c;
    int rc = mdw_queue_get_cursor(q, o->source, &c);
    if (rc == 0) {
        in->has_start = 1;
        in->start_cursor = in->cursor = c;
        in->committed = c;
    } else if (rc != MDW_ENOTFOUND) {
        mdw_error("firehose", "cannot read stored cursor", "source=%s err=\"%s\"", in->o.name,
                  mdw_strerror(rc));
        batch_release(&in->open);
        batch_release(&in->inflight);
        free(in);
        return rc;
    }
    in->last_commit_us = mdw_clock_mono_us(clock);
    mdw_filter_metrics_register();
    mdw_counter_register(&m_batches);
    mdw_counter_register(&m_cursor);
    mdw_counter_register(&m_full);
    mdw_counter_register(&m_pauses);
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    if (in->o.async) {
        rc = pthread_create(&in->writer, NULL, writer_main, in);
        if (rc) {
            in->o.async = 0;
            mdw_warn("firehose", "no writer thread: appending from the reader", "err=%d", rc);
        }
    }
    *out = in;
    return 0;
}

void mdw_ingest_set_wake(mdw_ingest *in, void (*fn)(void *), void *ctx)
{
    pthread_mutex_lock(&in->mu);
    in->wake = fn;
    in->wake_ctx = ctx;
    pthread_mutex_unlock(&in->mu);
}

static void stop_writer(mdw_ingest *in)
{
    if (!in->o.async)
        return;
    pthread_mutex_lock(&in->mu);
    in->stop = 1;
    in->abandon = 1;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    pthread_join(in->writer, NULL);
    in->o.async = 0;
}

void mdw_ingest_free(mdw_ingest *in)
{
    if (!in)
        return;
    stop_writer(in);
    mdw_filter_count(in->counts);
    batch_release(&in->open);
    batch_release(&in->inflight);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
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

/*
** Either thread; transitions are atomic so each is counted and logged once.
** A depth that cannot be read (logged by the queue) changes nothing.
*/
static void update_watermarks(mdw_ingest *in)
{
    uint64_t d = 0;
    if (!in->above_high) {
        if (mdw_queue_above_high_water(in->q) == 1 && atomic_exchange(&in->above_high, 1) == 0) {
            mdw_counter_inc(&m_pauses);
            in->pauses++;
            mdw_queue_depth(in->q, &d);
            mdw_info("firehose", "queue above high water: pausing reads", "source=%s depth=%llu",
                     in->o.name, (unsigned long long)d);
        }
    } else if (mdw_queue_below_low_water(in->q) == 1 && atomic_exchange(&in->above_high, 0) == 1) {
        mdw_queue_depth(in->q, &d);
        mdw_info("firehose", "queue below low water: resuming reads", "source=%s depth=%llu",
                 in->o.name, (unsigned long long)d);
    }
}

/* The retry delay after the n-th refusal in a row: retry_us doubling, at most 1 s. */
static int64_t retry_delay_us(const mdw_ingest *in)
{
    int64_t d = in->o.retry_us > 0 ? in->o.retry_us : 1000;
    for (int i = 1; i < in->retries && d < 1000000; i++)
        d *= 2;
    return d < 1000000 ? d : 1000000;
}

/*
** One transaction: the batch's events and its cursor, or the cursor alone.
** On refusal nothing is written and the batch is kept. A refusal that is
** the environment's (map or disk full, I/O: mdw_err_environment) sets
** `blocked`: the reader stops reading and the append is retried with
** backoff until it fits. Any other queue error (corruption, a format this
** build does not know) cannot be cured by waiting: it is kept in `fatal`,
** returned by every later call, and the source stops. The queue logged
** the error itself; the lines here are ingest's state changes.
*/
static int write_batch(mdw_ingest *in, batch *b)
{
    int rc;
    if (b->n > 0) {
        for (size_t i = 0; i < b->n; i++) {
            b->qev[i].data = b->arena.data + b->ev[i].off;
            b->qev[i].len = b->ev[i].len;
            b->qev[i].time_us = b->ev[i].time_us;
        }
        rc = mdw_queue_append(in->q, in->o.source, b->qev, b->n, b->cursor);
    } else {
        rc = mdw_queue_commit_cursor(in->q, in->o.source, b->cursor);
    }
    if (rc && !mdw_err_environment(rc)) {
        if (atomic_exchange(&in->fatal, rc) == 0)
            mdw_error("firehose", "queue failed: ingest stops (the cursor stays before the batch)",
                      "source=%s pending=%zu err=\"%s\"", in->o.name, b->n, mdw_strerror(rc));
        return rc;
    }
    if (rc) {
        if (!in->blocked)
            mdw_warn("firehose", "queue refused the batch: ingest paused, retrying",
                     "source=%s pending=%zu err=\"%s\"", in->o.name, b->n, mdw_strerror(rc));
        in->block_rc = rc;
        in->blocked = 1;
        in->retries++;
        if (rc == MDW_EFULL)
            mdw_counter_inc(&m_full);
        return rc;
    }
    if (in->blocked)
        mdw_info("firehose", "queue accepts again", "source=%s retries=%d", in->o.name,
                 (int)in->retries);
    in->blocked = 0;
    in->retries = 0;
    mdw_counter_inc(b->n > 0 ? &m_batches : &m_cursor);
    in->committed = b->cursor;
    update_watermarks(in);
    return 0;
}

/*
** LMDB reuses pages freed by the newest transaction only after one more
** commit, and refused appends commit nothing. Re-storing the cursor already
** committed (a no-op for its meaning) before a retry lets an append find
** the room a consumer has just freed.
*/
static void before_retry(mdw_ingest *in)
{
    int64_t c = in->committed;
    if (c > 0)
        mdw_queue_commit_cursor(in->q, in->o.source, c);
}

static void *writer_main(void *arg)
{
    mdw_ingest *in = arg;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->job && !in->stop)
            pthread_cond_wait(&in->cv, &in->mu);
        if (!in->job)
            break;
        pthread_mutex_unlock(&in->mu);
        int rc = write_batch(in, &in->inflight);
        pthread_mutex_lock(&in->mu);
        if (rc && in->fatal) {
            /* Nothing more is written; the reader sees fatal at its next call. */
            in->job = 0;
            batch_reset(&in->inflight);
            pthread_cond_broadcast(&in->cv);
            if (in->wake)
                in->wake(in->wake_ctx);
            continue;
        }
        if (rc) {
            in->st.full_retries++;
            if (in->abandon) {
                in->job = 0; /* shutdown: the cursor was not advanced, nothing is lost */
                batch_reset(&in->inflight);
                pthread_cond_broadcast(&in->cv);
                continue;
            }
            struct timespec ts;
            int64_t delay = retry_delay_us(in);
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (long)(delay % 1000000) * 1000;
            ts.tv_sec += (time_t)(delay / 1000000) + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&in->cv, &in->mu, &ts);
            pthread_mutex_unlock(&in->mu);
            before_retry(in);
            pthread_mutex_lock(&in->mu);
            continue;
        }
        if (in->inflight.n > 0)
            in->st.batches++;
        else
            in->st.cursor_commits++;
        in->job = 0;
        batch_reset(&in->inflight);
        pthread_cond_broadcast(&in->cv);
        if (in->wake)
            in->wake(in->wake_ctx);
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

/* Sync mode: the reader writes itself. */
static int commit_sync(mdw_ingest *in)
{
    int64_t now = mdw_clock_mono_us(in->clock);
    if (in->open.n == 0 && !in->dirty)
        return 0;
    in->open.cursor = in->cursor;
    int rc = write_batch(in, &in->open);
    if (rc && in->fatal)
        return rc;
    if (rc) {
        in->st.full_retries++;
        in->next_retry_us = now + retry_delay_us(in);
        return 0;
    }
    if (in->open.n > 0)
        in->st.batches++;
    else
        in->st.cursor_commits++;
    in->dirty = 0;
    batch_reset(&in->open);
    in->last_commit_us = now;
    publish_counts(in);
    return 0;
}

/*
** Async mode: hands the open batch (and the cursor) to the writer when it is
** free. While it is still writing the previous one, the batch stays open and
** keeps growing: its events join the next transaction (group commit), so one
** fsync covers everything read meanwhile.
*/
static int handoff(mdw_ingest *in)
{
    if (in->open.n == 0 && !in->dirty)
        return 0;
    pthread_mutex_lock(&in->mu);
    if (in->job) {
        pthread_mutex_unlock(&in->mu);
        return 0;
    }
    batch tmp = in->inflight;
    in->inflight = in->open;
    in->open = tmp;
    in->inflight.cursor = in->cursor;
    in->job = 1;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    in->dirty = 0;
    in->last_commit_us = mdw_clock_mono_us(in->clock);
    publish_counts(in);
    return 0;
}

static int close_batch(mdw_ingest *in)
{
    return in->o.async ? handoff(in) : commit_sync(in);
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
    bump(&in->n_by_reason[r]);
    bump(&in->n_events);
    mdw_filter_log_malformed(r, head, len, mdw_clock_mono_us(in->clock));
}

static int writer_busy(mdw_ingest *in)
{
    if (!in->o.async)
        return in->blocked;
    pthread_mutex_lock(&in->mu);
    int busy = in->job;
    pthread_mutex_unlock(&in->mu);
    return busy;
}

/* Appends one candidate to the open batch; waits (never drops) when it is full. */
static int keep(mdw_ingest *in, const void *data, size_t len, int64_t time_us)
{
    batch *b = &in->open;
    while (b->arena.len + len > in->o.batch_max_bytes && b->n > 0) {
        /* The caller ignored should_pause for 64 MiB: wait for the writer here. */
        if (mdw_stop_requested())
            return MDW_ESTOPPED;
        if (in->fatal)
            return in->fatal;
        if (!writer_busy(in))
            close_batch(in);
        if (b->n > 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            if (!in->o.async && in->blocked)
                before_retry(in);
        }
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->ev = xrealloc(b->ev, b->cap * sizeof *b->ev);
        b->qev = xrealloc(b->qev, b->cap * sizeof *b->qev);
    }
    pending_ev *e = &b->ev[b->n];
    e->off = b->arena.len;
    e->len = len;
    e->time_us = time_us;
    int rc = mdw_buf_append(&b->arena, data, len);
    if (rc)
        return rc; /* cannot happen: batch_max_bytes >= MDW_MAX_EVENT_BYTES */
    if (b->n++ == 0)
        in->batch_open_us = mdw_clock_mono_us(in->clock);
    return 0;
}

static int feed(mdw_ingest *in, const void *data, size_t len, int64_t position, int pos_is_time)
{
    if (in->fatal)
        return in->fatal;
    mdw_filter_verdict v;
    mdw_filter_result res = mdw_filter_event(data, len, &v);
    mdw_filter_reason r = v.reason;
    bump(&in->n_events);
    if (res == MDW_FILTER_PASS && !mdw_queue_event_fits(in->q, len)) {
        res = MDW_FILTER_MALFORMED;
        r = MDW_FILTER_OVERSIZE;
    }
    in->counts[r]++;
    bump(&in->n_by_reason[r]);
    if (res == MDW_FILTER_MALFORMED)
        mdw_filter_log_malformed(r, data, len, mdw_clock_mono_us(in->clock));
    if (res == MDW_FILTER_PASS) {
        bump(&in->n_candidates);
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
    if (in->open.n >= in->o.batch_max_events && !in->blocked) {
        int rc = close_batch(in);
        if (rc)
            return rc;
    }
    return (int)res;
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
    if (in->fatal)
        return in->fatal;
    if (in->open.n == 0 || in->blocked)
        return 0;
    return close_batch(in);
}

int mdw_ingest_tick(mdw_ingest *in)
{
    if (in->fatal)
        return in->fatal;
    int64_t now = mdw_clock_mono_us(in->clock);
    if (!in->o.async && in->blocked) {
        if (now < in->next_retry_us)
            return 0;
        before_retry(in);
        return commit_sync(in);
    }
    if (in->open.n > 0) {
        if (now - in->batch_open_us >= in->o.batch_max_us && !in->blocked)
            return close_batch(in);
    } else if (in->dirty && now - in->last_commit_us >= in->o.cursor_interval_us) {
        return close_batch(in);
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
    if (in->fatal) {
        wait = 0; /* the caller's next tick returns it */
    } else if (in->blocked || in->above_high) {
        wait = in->o.async && in->blocked ? retry_delay_us(in) : in->next_retry_us - now;
    } else if (in->open.n > 0) {
        /* Writer busy: its completion wakes the caller (mdw_ingest_set_wake). */
        if (in->o.async && writer_busy(in))
            wait = in->wake ? 100000 : 1000;
        else
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
    /*
    ** Async: while the writer is busy the open batch grows; past 4 batches'
    ** worth, stop reading too, so a slow disk bounds what is held in memory
    ** and how far one transaction can overshoot the high-water mark.
    */
    return in->above_high || in->blocked || in->fatal ||
           (in->o.async && in->open.n >= 4 * in->o.batch_max_events);
}

static void wait_writer_idle(mdw_ingest *in, int64_t max_us)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(max_us / 1000000);
    pthread_mutex_lock(&in->mu);
    while (in->job) {
        if (pthread_cond_timedwait(&in->cv, &in->mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&in->mu);
}

int mdw_ingest_flush(mdw_ingest *in)
{
    if (in->o.async) {
        /* The writer may hold a batch; then ours goes next. Refused for 5 s: give up. */
        for (int round = 0; round < 2; round++) {
            wait_writer_idle(in, 5000000);
            handoff(in);
        }
        wait_writer_idle(in, 5000000);
        int blocked = in->blocked;
        stop_writer(in);
        publish_counts(in);
        if (in->fatal)
            return in->fatal;
        return blocked ? in->block_rc : in->open.n > 0 ? MDW_EFULL : 0;
    }
    int rc = in->fatal ? in->fatal : commit_sync(in);
    publish_counts(in);
    if (rc)
        return rc;
    return in->blocked ? in->block_rc : 0;
}

void mdw_ingest_stats_get(const mdw_ingest *in, mdw_ingest_stats *st)
{
    pthread_mutex_lock((pthread_mutex_t *)&in->mu);
    *st = in->st;
    pthread_mutex_unlock((pthread_mutex_t *)&in->mu);
    st->events = atomic_load_explicit(&in->n_events, memory_order_relaxed);
    st->candidates = atomic_load_explicit(&in->n_candidates, memory_order_relaxed);
    for (int r = 0; r < MDW_FILTER_NREASONS; r++)
        st->by_reason[r] = atomic_load_explicit(&in->n_by_reason[r], memory_order_relaxed);
    st->pending = in->open.n;
    st->paused = mdw_ingest_should_pause(in);
    st->pauses = in->pauses;
}
