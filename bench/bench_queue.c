/*
** bench/bench_queue.c — queue append and claim+ack, events/s at batch 1, 100
** and 1000 with durable sync (no MDB_NOSYNC), each beside a bare LMDB loop on
** the same values in the same run:
**   append baseline: one write txn per batch, mdb_cursor_put(MDB_APPEND) of
**     the same envelope bytes (header + event), commit (fsync).
**   claim+ack baseline: read txn walking a batch and copying it out, then one
**     write txn deleting those keys, commit (fsync).
** The events are the real Jetstream JSON lines of the test corpus, cycled.
** Each side does the same number of events (or stops at a time cap), the two
** taking turns in short slices so both see the same disk conditions. Directories are
** under $TMPDIR (else /tmp) and removed afterwards.
*/
#include <lmdb.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "common/banned.h"

#define CORPUS     "../shared/testdata/atproto-corpus/jetstream_expected_first100.jsonl"
#define MAX_EVENTS 128
#define HDR_LEN    14
#define TIME_CAP_S 6.0 /* per measurement, both sides */

static mdw_queue_event events[MAX_EVENTS];
static int nevents;

static void load_events(void)
{
    FILE *f = fopen(CORPUS, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && nevents < MAX_EVENTS && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        events[nevents].data = xmemdup(line, (size_t)n);
        events[nevents].len = (size_t)n;
        events[nevents].time_us = 1700000000000000LL + nevents;
        nevents++;
    }
    free(line);
    if (f)
        fclose(f);
    if (!nevents) { /* no corpus beside the clone: same-sized synthetic events */
        fprintf(stderr, "bench_queue: %s missing, using synthetic 600-byte events\n", CORPUS);
        for (; nevents < MAX_EVENTS; nevents++) {
            char *p = xmalloc(600);
            memset(p, 'a' + nevents % 26, 600);
            events[nevents] = (mdw_queue_event){p, 600, 1700000000000000LL + nevents};
        }
    }
}

/* ---- bare LMDB --------------------------------------------------------------------- */

typedef struct bare {
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t next, head;
} bare;

static int bare_open(bare *b, const char *dir)
{
    memset(b, 0, sizeof *b);
    b->next = b->head = 1;
    MDB_txn *txn;
    if (mdb_env_create(&b->env) || mdb_env_set_maxdbs(b->env, 4) ||
        mdb_env_set_mapsize(b->env, (size_t)4 << 30) ||
        mdb_env_open(b->env, dir, MDB_NOTLS, 0644) || mdb_txn_begin(b->env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, "events", MDB_CREATE, &b->dbi) || mdb_txn_commit(txn))
        return -1;
    return 0;
}

static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static int bare_append(bare *b, size_t batch, size_t *ev_i)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(b->env, NULL, 0, &txn) || mdb_cursor_open(txn, b->dbi, &cur))
        return -1;
    for (size_t i = 0; i < batch; i++) {
        const mdw_queue_event *e = &events[(*ev_i)++ % (size_t)nevents];
        unsigned char kb[8];
        be64(kb, b->next++);
        MDB_val k = {8, kb}, v = {HDR_LEN + e->len, NULL};
        if (mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE))
            return -1;
        unsigned char *p = v.mv_data;
        memset(p, 0, HDR_LEN); /* same bytes as the envelope header, values aside */
        p[0] = 1;
        p[1] = MDW_SOURCE_TEST;
        memcpy(p + HDR_LEN, e->data, e->len);
    }
    mdb_cursor_close(cur);
    return mdb_txn_commit(txn) ? -1 : 0;
}

/* Returns events consumed (0 when empty), -1 on error. */
static long bare_consume(bare *b, size_t batch, char *copy)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char kb[8];
    be64(kb, b->head);
    MDB_val k = {8, kb}, v;
    if (mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn) || mdb_cursor_open(txn, b->dbi, &cur))
        return -1;
    uint64_t keys[1000];
    size_t n = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < batch) {
        memcpy(copy, v.mv_data, v.mv_size); /* the consumer gets its own copy */
        const unsigned char *kp = k.mv_data;
        uint64_t s = 0;
        for (int i = 0; i < 8; i++)
            s = s << 8 | kp[i];
        keys[n++] = s;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (!n)
        return 0;
    if (mdb_txn_begin(b->env, NULL, 0, &txn))
        return -1;
    for (size_t i = 0; i < n; i++) {
        be64(kb, keys[i]);
        MDB_val dk = {8, kb};
        if (mdb_del(txn, b->dbi, &dk, NULL))
            return -1;
    }
    if (mdb_txn_commit(txn))
        return -1;
    b->head = keys[n - 1] + 1;
    return (long)n;
}

/* ---- queue --------------------------------------------------------------------------- */

static int q_append(mdw_queue *q, size_t batch, size_t *ev_i, int64_t *cursor)
{
    mdw_queue_event ev[1000];
    for (size_t i = 0; i < batch; i++)
        ev[i] = events[(*ev_i)++ % (size_t)nevents];
    *cursor += (int64_t)batch;
    return mdw_queue_append(q, MDW_SOURCE_TEST, ev, batch, *cursor);
}

static long q_consume(mdw_queue *q, size_t batch, mdw_queue_batch *b, uint64_t *after)
{
    if (mdw_queue_claim(q, *after, batch, b))
        return -1;
    if (!b->n)
        return 0;
    uint64_t seqs[1000];
    for (size_t i = 0; i < b->n; i++)
        seqs[i] = b->items[i].seq;
    if (mdw_queue_ack(q, seqs, b->n))
        return -1;
    *after = seqs[b->n - 1];
    return (long)b->n;
}

/*
** The two sides take turns in slices of SLICES-th of the work, so both see
** the same disk and the same neighbours (fsync times on a shared machine
** swing by 2x within seconds; whole-run alternation left ratios noisy).
*/
#define SLICES 20

typedef struct ctx {
    bare b;
    mdw_queue *q;
    size_t batch, eb, eq;
    int64_t cursor;
    uint64_t after;
    mdw_queue_batch qb;
    char *copy;
} ctx;

/* One step of one side: events done (0 = nothing left), -1 on error. */
static long step(ctx *c, int do_bare, int consume)
{
    if (!consume) {
        int rc = do_bare ? bare_append(&c->b, c->batch, &c->eb)
                         : q_append(c->q, c->batch, &c->eq, &c->cursor);
        return rc ? -1 : (long)c->batch;
    }
    return do_bare ? bare_consume(&c->b, c->batch, c->copy)
                   : q_consume(c->q, c->batch, &c->qb, &c->after);
}

/* Runs both sides to `goal` events each (or until empty / time cap); fills rates. */
static int measure(ctx *c, int consume, const uint64_t goal[2], double rate[2], uint64_t done[2])
{
    double t[2] = {0, 0};
    int finished[2] = {0, 0};
    done[0] = done[1] = 0;
    double start = bench_now();
    for (int slice = 0; !(finished[0] && finished[1]); slice++) {
        int side = slice % 2; /* 0 = bare, 1 = queue */
        if (finished[side])
            continue;
        uint64_t slice_goal = done[side] + (goal[side] + SLICES - 1) / SLICES;
        double t0 = bench_now();
        while (done[side] < slice_goal && done[side] < goal[side]) {
            long n = step(c, side == 0, consume);
            if (n < 0) {
                fprintf(stderr, "bench_queue: %s failed\n", consume ? "consume" : "append");
                return -1;
            }
            if (n == 0) {
                finished[side] = 1;
                break;
            }
            done[side] += (uint64_t)n;
        }
        t[side] += bench_now() - t0;
        if (done[side] >= goal[side] || bench_now() - start > TIME_CAP_S)
            finished[side] = 1;
    }
    for (int i = 0; i < 2; i++)
        rate[i] = t[i] > 0 ? (double)done[i] / t[i] : 0;
    return 0;
}

static int run(const char *base, size_t batch, uint64_t total)
{
    char bdir[600], qdir[600];
    snprintf(bdir, sizeof bdir, "%s/bare-%zu", base, batch);
    snprintf(qdir, sizeof qdir, "%s/queue-%zu", base, batch);
    if (mkdir(bdir, 0755)) {
        perror(bdir);
        return -1;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.batch = batch;
    if (bare_open(&c.b, bdir)) {
        fprintf(stderr, "bench_queue: bare open failed\n");
        return -1;
    }
    mdw_queue_opts o;
    mdw_queue_opts_default(&o);
    o.map_bytes = (size_t)4 << 30; /* synced: nosync stays 0 */
    if (mdw_queue_open(&c.q, qdir, &o)) {
        fprintf(stderr, "bench_queue: queue open failed\n");
        return -1;
    }
    mdw_queue_batch_init(&c.qb);
    c.copy = xmalloc(1 << 20);
    uint64_t goal[2] = {total, total}, done[2];
    double rate[2];
    char name[64], bname[64];
    int rc = measure(&c, 0, goal, rate, done);
    if (!rc) {
        snprintf(name, sizeof name, "queue append, batch %zu, synced", batch);
        snprintf(bname, sizeof bname, "bare MDB_APPEND, batch %zu", batch);
        bench_report(name, rate[1], "events/s", bname, rate[0]);
        /* Each side drains what it appended. */
        uint64_t cgoal[2] = {done[0], done[1]};
        rc = measure(&c, 1, cgoal, rate, done);
    }
    if (!rc) {
        snprintf(name, sizeof name, "queue claim+ack, batch %zu, synced", batch);
        snprintf(bname, sizeof bname, "bare read+delete, batch %zu", batch);
        bench_report(name, rate[1], "events/s", bname, rate[0]);
    }
    free(c.copy);
    mdw_queue_batch_release(&c.qb);
    mdw_queue_close(c.q);
    mdb_env_close(c.b.env);
    return rc;
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_WARN);
    load_events();
    const char *tmp = getenv("TMPDIR");
    char base[512];
    snprintf(base, sizeof base, "%s/meadow-bench-queue-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    size_t avg = 0;
    for (int i = 0; i < nevents; i++)
        avg += events[i].len;
    printf("events: %d distinct, %zu bytes average; directory %s\n", nevents, avg / (size_t)nevents,
           base);
    static const struct {
        size_t batch;
        uint64_t total;
    } cases[] = {{1, 600}, {100, 60000}, {1000, 300000}};
    int status = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && !status; i++)
        status = run(base, cases[i].batch, cases[i].total);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_queue: could not remove %s\n", base);
    for (int i = 0; i < nevents; i++)
        free((void *)events[i].data);
    return status ? 1 : 0;
}
