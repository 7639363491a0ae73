/*
** queue/queue.c — the LMDB durable queue (contract in queue/queue.h).
**
** Layout (all integers in stored values are little-endian, keys big-endian so
** LMDB's byte order is seq order and MDB_APPEND applies):
**   events  key u64be seq -> envelope
**   meta    "next_seq" -> u64, "cursor/<source>" -> i64, "format" -> u32
**   dead    key u64be seq -> u8 version, u16 error length, error, envelope
** Envelope: u8 version (1), u8 source, i64 time_us, u32 attempts, raw bytes.
**
** Every operation is one LMDB transaction. A process-local rwlock is held
** (shared) around each transaction so that MDB_MAP_RESIZED (another process
** grew the map) can be handled by taking it exclusively, which is the only
** moment mdb_env_set_mapsize(env, 0) is allowed (no transaction active in
** this process).
**
** Full map: appends keep a reserve of free pages (RESERVE_* below) so that an
** ack — which copies a few pages on write — still fits after ingest was
** refused with MDW_EFULL; otherwise a full queue could not be drained.
*/
#include "queue/queue.h"

#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/config.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/banned.h"

#define ENV_VERSION  1u
#define DEAD_VERSION 1u
#define FORMAT       1u
#define HDR_LEN      14 /* version, source, time_us, attempts */
#define DEAD_HDR_LEN 3  /* version, error length */
#define RESERVE_MIN  8  /* pages kept free for acks when the map fills */
#define RESERVE_MAX  1024
#define CHUNK        1000 /* entries per transaction in dead requeue/purge */

struct mdw_queue {
    MDB_env *env;
    MDB_dbi events, meta, dead;
    mdw_queue_opts opts;
    pthread_rwlock_t resize; /* shared around txns; exclusive to re-read the map size */
    pthread_mutex_t mu;      /* wait/wake */
    pthread_cond_t cond;
    uint64_t gen_appended, gen_seen, gen_wake, gen_wake_seen;
    _Atomic uint64_t refused_toobig;
    uint64_t stale_readers;
    char *dir;                   /* for telling a full filesystem from an I/O error */
    mdw_ratelimit env_rl;        /* failures that are the environment's: logged every 10 s */
    struct mdw_queue *next_open; /* gauges read the most recently opened queue */
};

/* ---- metrics ---------------------------------------------------------------------------- */

static mdw_counter m_appended =
    MDW_COUNTER_INIT("meadow_queue_appended_total", NULL, "events appended to the queue");
static mdw_counter m_acked = MDW_COUNTER_INIT("meadow_queue_acked_total", NULL, "events acked");
static mdw_counter m_nacked =
    MDW_COUNTER_INIT("meadow_queue_nacked_total", NULL, "event processing failures recorded");
static mdw_counter m_dead =
    MDW_COUNTER_INIT("meadow_queue_dead_lettered_total", NULL, "events moved to dead letters");
static mdw_counter m_toobig = MDW_COUNTER_INIT("meadow_queue_refused_total", "reason=\"toobig\"",
                                               "events refused by the queue");
static mdw_counter m_full = MDW_COUNTER_INIT("meadow_queue_full_total", NULL,
                                             "appends refused because the LMDB map was full");
static mdw_counter m_resized = MDW_COUNTER_INIT("meadow_queue_map_resized_total", NULL,
                                                "map size re-read after another process grew it");

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static mdw_queue *g_open; /* list of open handles, newest first */

/* NaN when the queue cannot be read: a failure must not look like an empty queue. */
static double gauge_read(int which)
{
    double v = 0;
    pthread_mutex_lock(&g_mu);
    mdw_queue *q = g_open;
    mdw_queue_stats st;
    if (q && mdw_queue_stats_get(q, &st) != 0)
        v = NAN;
    else if (q) {
        switch (which) {
        case 0:
            v = (double)st.depth;
            break;
        case 1:
            if (st.oldest_time_us > 0) {
                int64_t now = mdw_clock_now_us(q->opts.clock);
                v = now > st.oldest_time_us ? (double)(now - st.oldest_time_us) / 1e6 : 0;
            }
            break;
        case 2:
            v = (double)st.dead;
            break;
        case 3:
            v = st.map_bytes ? (double)st.bytes_used / (double)st.map_bytes : 0;
            break;
        default:
            v = (double)st.bytes_used;
            break;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return v;
}

static double g_depth_fn(void *ctx)
{
    return gauge_read(0);
}
static double g_age_fn(void *ctx)
{
    return gauge_read(1);
}
static double g_dead_fn(void *ctx)
{
    return gauge_read(2);
}
static double g_usage_fn(void *ctx)
{
    return gauge_read(3);
}
static double g_bytes_fn(void *ctx)
{
    return gauge_read(4);
}

static mdw_gauge g_depth = {
    "meadow_queue_depth", NULL, "events waiting in the queue (unacked)", g_depth_fn, NULL, NULL, 0};
static mdw_gauge g_age = {"meadow_queue_oldest_age_seconds",
                          NULL,
                          "age of the oldest waiting event (source time)",
                          g_age_fn,
                          NULL,
                          NULL,
                          0};
static mdw_gauge g_deadg = {
    "meadow_queue_dead_letters", NULL, "events in the dead-letter table", g_dead_fn, NULL, NULL, 0};
static mdw_gauge g_usage = {"meadow_queue_map_usage_ratio",
                            NULL,
                            "LMDB pages in use / map size",
                            g_usage_fn,
                            NULL,
                            NULL,
                            0};
static mdw_gauge g_bytes = {
    "meadow_queue_bytes_used", NULL, "LMDB pages in use * page size", g_bytes_fn, NULL, NULL, 0};

static void metrics_register(void)
{
    mdw_counter_register(&m_appended);
    mdw_counter_register(&m_acked);
    mdw_counter_register(&m_nacked);
    mdw_counter_register(&m_dead);
    mdw_counter_register(&m_toobig);
    mdw_counter_register(&m_full);
    mdw_counter_register(&m_resized);
    mdw_gauge_register(&g_depth);
    mdw_gauge_register(&g_age);
    mdw_gauge_register(&g_deadg);
    mdw_gauge_register(&g_usage);
    mdw_gauge_register(&g_bytes);
}

/* ---- encoding --------------------------------------------------------------------------- */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}
static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}
static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void env_header(unsigned char *h, uint8_t source, int64_t time_us, uint32_t attempts)
{
    h[0] = ENV_VERSION;
    h[1] = source;
    put_le(h + 2, (uint64_t)time_us, 8);
    put_le(h + 10, attempts, 4);
}

typedef struct envelope {
    uint8_t source;
    int64_t time_us;
    uint32_t attempts;
    const char *data;
    size_t len;
} envelope;

static int env_parse(const MDB_val *v, uint64_t seq, envelope *e)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < HDR_LEN) {
        mdw_error("queue", "short envelope", "seq=%llu len=%zu", (unsigned long long)seq,
                  v->mv_size);
        return MDW_ECORRUPT;
    }
    if (p[0] != ENV_VERSION) {
        mdw_error("queue", "unknown envelope version", "seq=%llu version=%u",
                  (unsigned long long)seq, p[0]);
        return MDW_EVERSION;
    }
    e->source = p[1];
    e->time_us = (int64_t)get_le(p + 2, 8);
    e->attempts = (uint32_t)get_le(p + 10, 4);
    e->data = (const char *)p + HDR_LEN;
    e->len = v->mv_size - HDR_LEN;
    return 0;
}

/* A dead value: version, error length, error, envelope. */
static int dead_parse(const MDB_val *v, uint64_t seq, const char **err, size_t *errlen,
                      MDB_val *envv)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < DEAD_HDR_LEN || p[0] != DEAD_VERSION) {
        mdw_error("queue", "bad dead letter", "seq=%llu len=%zu", (unsigned long long)seq,
                  v->mv_size);
        return MDW_ECORRUPT;
    }
    size_t el = (size_t)get_le(p + 1, 2);
    if (v->mv_size < DEAD_HDR_LEN + el + HDR_LEN) {
        mdw_error("queue", "short dead letter", "seq=%llu len=%zu", (unsigned long long)seq,
                  v->mv_size);
        return MDW_ECORRUPT;
    }
    *err = (const char *)p + DEAD_HDR_LEN;
    *errlen = el;
    envv->mv_data = (char *)p + DEAD_HDR_LEN + el;
    envv->mv_size = v->mv_size - DEAD_HDR_LEN - el;
    return 0;
}

/* ---- transactions ----------------------------------------------------------------------- */

/*
** LMDB's code as Meadow's, with a short write on a full filesystem (EIO)
** named for what it is (ENOSPC).
*/
static int q_err(const mdw_queue *q, int rc)
{
    return mdw_err_nospace(mdw_err_from_lmdb(rc), q->dir);
}

/*
** The one log line of a failed public operation. Failures that are the
** environment's (disk or map full, I/O) repeat while ingest and the
** processor retry: at most one line per 10 s, with the count suppressed.
*/
static void q_log_fail(mdw_queue *q, const char *what, int rc)
{
    if (!mdw_err_environment(rc)) {
        mdw_error("queue", what, "err=\"%s\"", mdw_strerror(rc));
        return;
    }
    uint64_t suppressed = 0;
    if (mdw_ratelimit_ok(&q->env_rl, mdw_clock_mono_us(q->opts.clock), &suppressed))
        mdw_warn("queue", what, "err=\"%s\" retrying=1 suppressed=%llu", mdw_strerror(rc),
                 (unsigned long long)suppressed);
}

/*
** Begins a transaction with the resize lock held shared; txn_end() releases
** both. Not logged here: the public operation logs its failure once. MDB_MAP_RESIZED: another
*process grew the map past ours, so adopt its
** size (with the lock held exclusively: no txn of ours is open) and retry.
*/
static int txn_begin(mdw_queue *q, unsigned flags, MDB_txn **txn)
{
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&q->resize);
        int rc = mdb_txn_begin(q->env, NULL, flags, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&q->resize);
        if (rc != MDB_MAP_RESIZED || tries >= 5)
            return q_err(q, rc);
        pthread_rwlock_wrlock(&q->resize);
        rc = mdb_env_set_mapsize(q->env, 0);
        pthread_rwlock_unlock(&q->resize);
        mdw_counter_inc(&m_resized);
        if (rc)
            return q_err(q, rc);
        mdw_info("queue", "map size changed by another process; adopted", NULL);
    }
}

static void txn_abort(mdw_queue *q, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&q->resize);
}

static int txn_commit(mdw_queue *q, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&q->resize);
    return q_err(q, rc);
}

/* Pages used by all trees as seen by txn (uncommitted changes included). */
static uint64_t pages_used(mdw_queue *q, MDB_txn *txn)
{
    MDB_dbi dbis[5] = {0, 1, q->events, q->meta, q->dead};
    uint64_t n = 0;
    for (int i = 0; i < 5; i++) {
        MDB_stat st;
        if (mdb_stat(txn, dbis[i], &st) == 0)
            n += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return n;
}

static uint64_t map_pages(mdw_queue *q, unsigned *psize)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(q->env, &info);
    mdb_env_stat(q->env, &st);
    if (psize)
        *psize = st.ms_psize;
    return info.me_mapsize / st.ms_psize;
}

static uint64_t reserve_pages(uint64_t maxpg)
{
    uint64_t r = maxpg / 32;
    return r < RESERVE_MIN ? RESERVE_MIN : r > RESERVE_MAX ? RESERVE_MAX : r;
}

static void key_seq(unsigned char *buf, uint64_t seq, MDB_val *k)
{
    put_be64(buf, seq);
    k->mv_data = buf;
    k->mv_size = 8;
}

static int meta_get_u64(mdw_queue *q, MDB_txn *txn, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, q->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return MDW_ENOTFOUND;
    if (rc)
        return mdw_err_from_lmdb(rc);
    if (v.mv_size != 8)
        return MDW_ECORRUPT;
    *out = get_le(v.mv_data, 8);
    return 0;
}

static int meta_put_u64(mdw_queue *q, MDB_txn *txn, const char *name, uint64_t val)
{
    unsigned char b[8];
    put_le(b, val, 8);
    MDB_val k = {strlen(name), (void *)name}, v = {8, b};
    return mdw_err_from_lmdb(mdb_put(txn, q->meta, &k, &v, 0));
}

static void cursor_key(char *buf, size_t n, uint8_t source)
{
    snprintf(buf, n, "cursor/%u", (unsigned)source);
}

/* ---- open / close ----------------------------------------------------------------------- */

void mdw_queue_opts_default(mdw_queue_opts *o)
{
    memset(o, 0, sizeof *o);
    o->map_bytes = (size_t)1024 * 1024 * 1024;
    o->max_event_bytes = MDW_MAX_EVENT_BYTES;
    o->max_attempts = 5;
    o->high_water = 200000;
    o->low_water = 100000;
}

void mdw_queue_opts_from_config(mdw_queue_opts *o, const mdw_config *cfg)
{
    mdw_queue_opts_default(o);
    o->map_bytes = (size_t)cfg->queue_map_mb << 20;
    o->max_attempts = (int)cfg->queue_max_attempts;
    o->high_water = (uint64_t)cfg->queue_high_water;
    o->low_water = (uint64_t)cfg->queue_low_water;
}

char *mdw_queue_dir(const mdw_config *cfg)
{
    return xasprintf("%s/queue", cfg->data);
}

/* mkdir -p for the queue directory (the data directory may not exist yet). */
static int mkdirs(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

int mdw_queue_open(mdw_queue **out, const char *dir, const mdw_queue_opts *opts)
{
    *out = NULL;
    mdw_queue *q = xcalloc(1, sizeof *q);
    if (opts)
        q->opts = *opts;
    else
        mdw_queue_opts_default(&q->opts);
    if (!q->opts.clock)
        q->opts.clock = mdw_clock_real();
    if (q->opts.max_attempts < 1)
        q->opts.max_attempts = 1;
    if (!q->opts.max_event_bytes)
        q->opts.max_event_bytes = MDW_MAX_EVENT_BYTES;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A waiting map re-read must not starve behind a stream of short txns. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&q->resize, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&q->mu, NULL);
    q->dir = xstrdup(dir);
    q->env_rl.interval_us = 10 * 1000000LL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);

    int rc = mkdirs(dir);
    if (rc) {
        mdw_error("queue", "cannot create directory", "dir=%s err=\"%s\"", dir, mdw_strerror(rc));
        goto fail;
    }
    MDB_txn *txn = NULL;
    /* map_bytes 0: keep the size the environment has (tools beside a running firehose). */
    if ((rc = mdb_env_create(&q->env)) || (rc = mdb_env_set_maxdbs(q->env, 4)) ||
        (q->opts.map_bytes && (rc = mdb_env_set_mapsize(q->env, q->opts.map_bytes))) ||
        (rc = mdb_env_open(q->env, dir, MDB_NOTLS | (q->opts.nosync ? MDB_NOSYNC : 0), 0644))) {
        mdw_error("queue", "cannot open environment", "dir=%s err=\"%s\"", dir, mdb_strerror(rc));
        rc = mdw_err_from_lmdb(rc);
        goto fail;
    }
    /* After a kill -9 a dead process may still own reader slots, pinning old pages. */
    int dead = 0;
    mdb_reader_check(q->env, &dead);
    q->stale_readers = (uint64_t)dead;
    if (dead)
        mdw_info("queue", "cleared stale reader slots", "dir=%s n=%d", dir, dead);

    if ((rc = txn_begin(q, 0, &txn))) {
        mdw_error("queue", "cannot begin a transaction", "dir=%s err=\"%s\"", dir,
                  mdw_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_dbi_open(txn, "events", MDB_CREATE, &q->events)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &q->meta)) ||
        (rc = mdb_dbi_open(txn, "dead", MDB_CREATE, &q->dead))) {
        mdw_error("queue", "cannot open tables", "dir=%s err=\"%s\"", dir, mdb_strerror(rc));
        txn_abort(q, txn);
        rc = mdw_err_from_lmdb(rc);
        goto fail;
    }
    uint64_t fmt;
    rc = meta_get_u64(q, txn, "format", &fmt);
    if (rc == MDW_ENOTFOUND) {
        rc = meta_put_u64(q, txn, "format", FORMAT);
    } else if (rc == 0 && fmt != FORMAT) {
        mdw_error("queue", "unknown queue format", "dir=%s format=%llu", dir,
                  (unsigned long long)fmt);
        rc = MDW_EVERSION;
    }
    if (rc) {
        if (rc != MDW_EVERSION)
            mdw_error("queue", "cannot read the format", "dir=%s err=\"%s\"", dir,
                      mdw_strerror(rc));
        txn_abort(q, txn);
        goto fail;
    }
    if ((rc = txn_commit(q, txn))) {
        mdw_error("queue", "cannot create tables", "dir=%s err=\"%s\"", dir, mdw_strerror(rc));
        goto fail;
    }

    metrics_register();
    pthread_mutex_lock(&g_mu);
    q->next_open = g_open;
    g_open = q;
    pthread_mutex_unlock(&g_mu);
    *out = q;
    return 0;
fail:
    if (q->env)
        mdb_env_close(q->env);
    q->env = NULL;
    pthread_rwlock_destroy(&q->resize);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q->dir);
    free(q);
    return rc;
}

void mdw_queue_close(mdw_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&g_mu);
    for (mdw_queue **pp = &g_open; *pp; pp = &(*pp)->next_open)
        if (*pp == q) {
            *pp = q->next_open;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    mdb_env_close(q->env);
    pthread_rwlock_destroy(&q->resize);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q->dir);
    free(q);
}

/* ---- append / cursor -------------------------------------------------------------------- */

int mdw_queue_event_fits(const mdw_queue *q, size_t len)
{
    return len <= q->opts.max_event_bytes;
}

static void signal_appended(mdw_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->gen_appended++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

/*
** Counted, logged at most every 10 s, and a chance to free pages: a reader slot
** left by a killed process pins old pages until mdb_reader_check() clears it.
*/
static void full_seen(mdw_queue *q)
{
    static mdw_ratelimit rl = MDW_RATELIMIT_INIT(10 * 1000000);
    mdw_counter_inc(&m_full);
    int dead = 0;
    mdb_reader_check(q->env, &dead);
    uint64_t suppressed = 0;
    if (mdw_ratelimit_ok(&rl, mdw_clock_mono_us(q->opts.clock), &suppressed))
        mdw_warn("queue", "map full: ingest must pause until the queue drains",
                 "stale_readers_cleared=%d suppressed=%llu", dead, (unsigned long long)suppressed);
}

int mdw_queue_append(mdw_queue *q, uint8_t source, const mdw_queue_event *ev, size_t n,
                     int64_t cursor)
{
    size_t toobig = 0;
    for (size_t i = 0; i < n; i++)
        if (!mdw_queue_event_fits(q, ev[i].len)) {
            toobig++;
            mdw_warn("queue", "event refused: too big", "len=%zu max=%zu", ev[i].len,
                     q->opts.max_event_bytes);
        }
    if (toobig) {
        q->refused_toobig += toobig;
        mdw_counter_add(&m_toobig, toobig);
        return MDW_ETOOBIG;
    }

    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        goto out;
    uint64_t seq = 1;
    rc = meta_get_u64(q, txn, "next_seq", &seq);
    if (rc == MDW_ENOTFOUND)
        rc = 0;
    if (rc)
        goto fail;
    if (n) {
        if ((rc = mdw_err_from_lmdb(mdb_cursor_open(txn, q->events, &cur))))
            goto fail;
        for (size_t i = 0; i < n; i++, seq++) {
            unsigned char kb[8];
            MDB_val k, v = {HDR_LEN + ev[i].len, NULL};
            key_seq(kb, seq, &k);
            rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (rc) {
                rc = q_err(q, rc);
                goto fail;
            }
            env_header(v.mv_data, source, ev[i].time_us, 0);
            if (ev[i].len)
                memcpy((char *)v.mv_data + HDR_LEN, ev[i].data, ev[i].len);
        }
        mdb_cursor_close(cur);
        cur = NULL;
        if ((rc = meta_put_u64(q, txn, "next_seq", seq)))
            goto fail;
    }
    char ck[32];
    cursor_key(ck, sizeof ck, source);
    if ((rc = meta_put_u64(q, txn, ck, (uint64_t)cursor)))
        goto fail;
    if (n) {
        uint64_t maxpg = map_pages(q, NULL);
        if (pages_used(q, txn) + reserve_pages(maxpg) > maxpg) {
            rc = MDW_EFULL;
            goto fail;
        }
    }
    rc = txn_commit(q, txn);
    if (rc == 0 && n) {
        mdw_counter_add(&m_appended, n);
        signal_appended(q);
    }
    goto out;
fail:
    if (cur)
        mdb_cursor_close(cur);
    txn_abort(q, txn);
out:
    if (rc == MDW_EFULL)
        full_seen(q);
    else if (rc)
        q_log_fail(q, n ? "append failed" : "cursor commit failed", rc);
    return rc;
}

int mdw_queue_commit_cursor(mdw_queue *q, uint8_t source, int64_t cursor)
{
    return mdw_queue_append(q, source, NULL, 0, cursor);
}

int mdw_queue_get_cursor(mdw_queue *q, uint8_t source, int64_t *cursor)
{
    MDB_txn *txn;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc) {
        q_log_fail(q, "cursor read failed", rc);
        return rc;
    }
    char ck[32];
    uint64_t v = 0;
    cursor_key(ck, sizeof ck, source);
    rc = meta_get_u64(q, txn, ck, &v);
    txn_abort(q, txn);
    if (rc == 0)
        *cursor = (int64_t)v;
    else if (rc != MDW_ENOTFOUND)
        q_log_fail(q, "cursor read failed", rc);
    return rc;
}

/* ---- claim / ack / nack ----------------------------------------------------------------- */

void mdw_queue_batch_init(mdw_queue_batch *b)
{
    memset(b, 0, sizeof *b);
}

void mdw_queue_batch_release(mdw_queue_batch *b)
{
    free(b->items);
    free(b->store);
    memset(b, 0, sizeof *b);
}

static void batch_add(mdw_queue_batch *b, uint64_t seq, const envelope *e)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->items = xrealloc(b->items, b->cap * sizeof *b->items);
    }
    if (b->store_len + e->len + 1 > b->store_cap) {
        size_t c = b->store_cap ? b->store_cap : 4096;
        while (c < b->store_len + e->len + 1)
            c *= 2;
        b->store = xrealloc(b->store, c);
        b->store_cap = c;
    }
    mdw_queue_item *it = &b->items[b->n++];
    it->seq = seq;
    it->source = e->source;
    it->time_us = e->time_us;
    it->attempts = e->attempts;
    /* An offset until the store stops moving; claim() turns it into a pointer. */
    it->data = (const char *)(uintptr_t)b->store_len;
    it->len = e->len;
    if (e->len)
        memcpy(b->store + b->store_len, e->data, e->len);
    b->store[b->store_len + e->len] = '\0'; /* text events can be used as C strings */
    b->store_len += e->len + 1;
}

int mdw_queue_claim(mdw_queue *q, uint64_t after_seq, size_t max, mdw_queue_batch *b)
{
    b->n = 0;
    b->store_len = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc) {
        q_log_fail(q, "claim failed", rc);
        return rc;
    }
    if ((rc = mdb_cursor_open(txn, q->events, &cur))) {
        txn_abort(q, txn);
        rc = q_err(q, rc);
        q_log_fail(q, "claim failed", rc);
        return rc;
    }
    unsigned char kb[8];
    MDB_val k, v;
    key_seq(kb, after_seq + 1, &k);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && b->n < max) {
        uint64_t seq = get_be64(k.mv_data);
        envelope e;
        if ((rc = env_parse(&v, seq, &e)))
            break;
        batch_add(b, seq, &e);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    rc = rc == MDB_NOTFOUND ? 0 : mdw_err_from_lmdb(rc);
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    for (size_t i = 0; i < b->n; i++)
        b->items[i].data = b->store + (uintptr_t)b->items[i].data;
    if (rc) {
        b->n = 0;
        if (rc != MDW_ECORRUPT && rc != MDW_EVERSION) /* env_parse logged those */
            q_log_fail(q, "claim failed", rc);
    }
    return rc;
}

static int ack_range(mdw_queue *q, const uint64_t *seqs, size_t n)
{
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return rc;
    /*
    ** One cursor: after a delete LMDB leaves it on the next entry, and acked
    ** seqs are mostly consecutive (a claimed batch), so most deletes need no
    ** descent from the root (mdb_del per seq was 7% of the processor).
    */
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, q->events, &cur))) {
        txn_abort(q, txn);
        return q_err(q, rc);
    }
    size_t done = 0;
    int here = 0; /* the cursor is on an entry (the one after the last delete) */
    for (size_t i = 0; i < n; i++) {
        unsigned char kb[8];
        MDB_val k, v;
        if (here && (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT)) == 0 && k.mv_size == 8 &&
            get_be64(k.mv_data) == seqs[i]) {
            rc = 0;
        } else {
            key_seq(kb, seqs[i], &k);
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        }
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            here = 0;
            continue;
        }
        if (rc || (rc = mdb_cursor_del(cur, 0)))
            break;
        here = 1;
        done++;
    }
    mdb_cursor_close(cur);
    if (rc) {
        txn_abort(q, txn);
        return q_err(q, rc);
    }
    rc = txn_commit(q, txn);
    if (rc == 0)
        mdw_counter_add(&m_acked, done);
    return rc;
}

/*
** A delete copies pages; on a completely full map (pages pinned by a
** reader, say) a big ack may not fit where smaller ones do, and draining
** is the way out of "full": split.
*/
static int ack_split(mdw_queue *q, const uint64_t *seqs, size_t n)
{
    int rc = ack_range(q, seqs, n);
    if (rc == MDW_EFULL && n > 1) {
        rc = ack_split(q, seqs, n / 2);
        if (rc == 0)
            rc = ack_split(q, seqs + n / 2, n - n / 2);
    }
    return rc;
}

int mdw_queue_ack(mdw_queue *q, const uint64_t *seqs, size_t n)
{
    if (!n)
        return 0;
    int rc = ack_split(q, seqs, n);
    if (rc)
        q_log_fail(q, "ack failed", rc);
    return rc;
}

/* Puts a dead letter for (seq, envelope value with attempts already set). */
static int dead_put(mdw_queue *q, MDB_txn *txn, uint64_t seq, const MDB_val *envv,
                    const char *error)
{
    size_t el = error ? strlen(error) : 0;
    if (el > MDW_QUEUE_MAX_ERROR)
        el = MDW_QUEUE_MAX_ERROR;
    unsigned char kb[8];
    MDB_val k, v = {DEAD_HDR_LEN + el + envv->mv_size, NULL};
    key_seq(kb, seq, &k);
    int rc = mdb_put(txn, q->dead, &k, &v, MDB_RESERVE);
    if (rc)
        return mdw_err_from_lmdb(rc);
    unsigned char *p = v.mv_data;
    p[0] = DEAD_VERSION;
    put_le(p + 1, el, 2);
    if (el)
        memcpy(p + DEAD_HDR_LEN, error, el);
    memcpy(p + DEAD_HDR_LEN + el, envv->mv_data, envv->mv_size);
    return 0;
}

/* One failure of seq: attempts+1; to dead when force or attempts reach the maximum. */
static int fail_event(mdw_queue *q, uint64_t seq, const char *error, int force, int *dead_out)
{
    if (dead_out)
        *dead_out = 0;
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        goto out;
    unsigned char kb[8];
    MDB_val k, v;
    key_seq(kb, seq, &k);
    rc = mdb_get(txn, q->events, &k, &v);
    if (rc) {
        txn_abort(q, txn);
        return rc == MDB_NOTFOUND ? MDW_ENOTFOUND : q_err(q, rc); /* not found: acked meanwhile */
    }
    envelope e;
    if ((rc = env_parse(&v, seq, &e))) {
        txn_abort(q, txn);
        return rc; /* logged by env_parse */
    }
    /* v points into the map; copy before writing to the same tree. */
    MDB_val nv = {v.mv_size, xmemdup(v.mv_data, v.mv_size)};
    uint32_t attempts = e.attempts + 1;
    put_le((unsigned char *)nv.mv_data + 10, attempts, 4);
    int to_dead = force || attempts >= (uint32_t)q->opts.max_attempts;
    if (to_dead) {
        rc = dead_put(q, txn, seq, &nv, error);
        if (!rc)
            rc = mdw_err_from_lmdb(mdb_del(txn, q->events, &k, NULL));
    } else {
        rc = mdw_err_from_lmdb(mdb_put(txn, q->events, &k, &nv, 0));
    }
    free(nv.mv_data);
    if (rc) {
        txn_abort(q, txn);
        goto out;
    }
    if ((rc = txn_commit(q, txn)))
        goto out;
    mdw_counter_inc(&m_nacked);
    if (to_dead) {
        mdw_counter_inc(&m_dead);
        if (!force) /* a forced dead letter is the caller's decision, logged there */
            mdw_warn("queue", "event dead-lettered", "seq=%llu attempts=%u error=\"%s\"",
                     (unsigned long long)seq, attempts, error ? error : "");
        if (dead_out)
            *dead_out = 1;
    }
    return 0;
out:
    q_log_fail(q, force ? "dead letter failed" : "nack failed", rc);
    return rc;
}

int mdw_queue_nack(mdw_queue *q, uint64_t seq, const char *error, int *dead_out)
{
    return fail_event(q, seq, error, 0, dead_out);
}

int mdw_queue_dead_letter(mdw_queue *q, uint64_t seq, const char *error)
{
    return fail_event(q, seq, error, 1, NULL);
}

/* ---- dead letters ----------------------------------------------------------------------- */

int mdw_queue_dead_list(mdw_queue *q, mdw_queue_dead_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (!rc && (rc = mdb_cursor_open(txn, q->dead, &cur))) {
        txn_abort(q, txn);
        rc = q_err(q, rc);
    }
    if (rc) {
        q_log_fail(q, "dead letter list failed", rc);
        return rc;
    }
    MDB_val k, v;
    int lrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (lrc == 0) {
        uint64_t seq = get_be64(k.mv_data);
        const char *err;
        size_t el;
        MDB_val envv;
        envelope e;
        if ((rc = dead_parse(&v, seq, &err, &el, &envv)) || (rc = env_parse(&envv, seq, &e)))
            break;
        char ebuf[MDW_QUEUE_MAX_ERROR + 1];
        memcpy(ebuf, err, el);
        ebuf[el] = '\0';
        if ((rc = fn(ctx, seq, e.attempts, ebuf, e.data, e.len)))
            break;
        lrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (!rc && lrc != MDB_NOTFOUND) {
        rc = q_err(q, lrc);
        q_log_fail(q, "dead letter list failed", rc);
    }
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    return rc;
}

/*
** Requeue (or purge) dead letters: seq 0 = all, in transactions of at most
** CHUNK entries so a big dead table never overflows one write transaction.
*/
static int dead_move(mdw_queue *q, uint64_t seq, int requeue, uint64_t *n_out)
{
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        MDB_txn *txn;
        MDB_cursor *cur = NULL, *ecur = NULL;
        if ((rc = txn_begin(q, 0, &txn)))
            break;
        uint64_t next = 1;
        size_t done = 0;
        rc = meta_get_u64(q, txn, "next_seq", &next);
        if (rc == MDW_ENOTFOUND)
            rc = 0;
        if (!rc)
            rc = mdw_err_from_lmdb(mdb_cursor_open(txn, q->dead, &cur));
        if (!rc && requeue)
            rc = mdw_err_from_lmdb(mdb_cursor_open(txn, q->events, &ecur));
        unsigned char kb[8];
        MDB_val k, v;
        int lrc = MDB_NOTFOUND;
        if (!rc) {
            if (seq) {
                key_seq(kb, seq, &k);
                lrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
            } else {
                lrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            }
        }
        while (!rc && lrc == 0 && done < CHUNK) {
            if (requeue) {
                const char *err;
                size_t el;
                MDB_val envv;
                envelope e;
                uint64_t oseq = get_be64(k.mv_data);
                if ((rc = dead_parse(&v, oseq, &err, &el, &envv)) ||
                    (rc = env_parse(&envv, oseq, &e)))
                    break;
                unsigned char nk[8];
                MDB_val kk, nv = {envv.mv_size, NULL};
                key_seq(nk, next, &kk);
                if ((rc = mdw_err_from_lmdb(
                         mdb_cursor_put(ecur, &kk, &nv, MDB_APPEND | MDB_RESERVE))))
                    break;
                env_header(nv.mv_data, e.source, e.time_us, 0);
                memcpy((char *)nv.mv_data + HDR_LEN, e.data, e.len);
                next++;
            }
            if ((rc = mdw_err_from_lmdb(mdb_cursor_del(cur, 0))))
                break;
            done++;
            if (seq)
                break;
            lrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); /* we delete from the front */
        }
        if (!rc && lrc != 0 && lrc != MDB_NOTFOUND)
            rc = mdw_err_from_lmdb(lrc);
        if (!rc && requeue && done)
            rc = meta_put_u64(q, txn, "next_seq", next);
        if (ecur)
            mdb_cursor_close(ecur);
        if (cur)
            mdb_cursor_close(cur);
        if (rc) {
            txn_abort(q, txn);
            break;
        }
        if ((rc = txn_commit(q, txn)))
            break;
        total += done;
        if (requeue && done)
            signal_appended(q);
        if (seq || done < CHUNK)
            break;
    }
    if (n_out)
        *n_out = total;
    if (rc)
        q_log_fail(q, requeue ? "dead requeue failed" : "dead purge failed", rc);
    else if (total)
        mdw_info("queue", requeue ? "dead letters requeued" : "dead letters purged", "n=%llu",
                 (unsigned long long)total);
    return rc;
}

int mdw_queue_dead_requeue(mdw_queue *q, uint64_t seq, uint64_t *n_out)
{
    return dead_move(q, seq, 1, n_out);
}

int mdw_queue_dead_purge(mdw_queue *q, uint64_t seq, uint64_t *n_out)
{
    return dead_move(q, seq, 0, n_out);
}

/* ---- stats / backpressure --------------------------------------------------------------- */

int mdw_queue_stats_get(mdw_queue *q, mdw_queue_stats *st)
{
    memset(st, 0, sizeof *st);
    MDB_txn *txn;
    MDB_stat es, ds;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (!rc && ((rc = mdb_stat(txn, q->events, &es)) || (rc = mdb_stat(txn, q->dead, &ds)))) {
        txn_abort(q, txn);
        rc = q_err(q, rc);
    }
    if (rc) {
        q_log_fail(q, "stats failed", rc);
        return rc;
    }
    st->depth = es.ms_entries;
    st->dead = ds.ms_entries;
    unsigned psize;
    uint64_t maxpg = map_pages(q, &psize);
    st->bytes_used = pages_used(q, txn) * psize;
    st->map_bytes = maxpg * psize;
    uint64_t next = 1;
    meta_get_u64(q, txn, "next_seq", &next);
    st->next_seq = next;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, q->events, &cur) == 0) {
        MDB_val k, v;
        envelope e;
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 &&
            env_parse(&v, get_be64(k.mv_data), &e) == 0)
            st->oldest_time_us = e.time_us;
        mdb_cursor_close(cur);
    }
    txn_abort(q, txn);
    st->refused_toobig = q->refused_toobig;
    st->stale_readers = q->stale_readers;
    return 0;
}

int mdw_queue_depth(mdw_queue *q, uint64_t *depth)
{
    *depth = 0;
    MDB_txn *txn;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc == 0) {
        MDB_stat es;
        rc = q_err(q, mdb_stat(txn, q->events, &es));
        if (rc == 0)
            *depth = es.ms_entries;
        txn_abort(q, txn);
    }
    if (rc)
        q_log_fail(q, "depth read failed", rc);
    return rc;
}

int mdw_queue_above_high_water(mdw_queue *q)
{
    uint64_t d;
    int rc = mdw_queue_depth(q, &d);
    return rc ? rc : d >= q->opts.high_water;
}

int mdw_queue_below_low_water(mdw_queue *q)
{
    uint64_t d;
    int rc = mdw_queue_depth(q, &d);
    return rc ? rc : d <= q->opts.low_water;
}

/* ---- wait / wake ------------------------------------------------------------------------ */

int mdw_queue_wait(mdw_queue *q, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int got = 0, timed_out = timeout_ms <= 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->gen_appended != q->gen_seen) {
            q->gen_seen = q->gen_appended;
            got = 1;
            break;
        }
        if (q->gen_wake != q->gen_wake_seen) {
            q->gen_wake_seen = q->gen_wake;
            break;
        }
        if (timed_out)
            break;
        timed_out = pthread_cond_timedwait(&q->cond, &q->mu, &dl) == ETIMEDOUT;
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

void mdw_queue_wake(mdw_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->gen_wake++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}
