/*
** tests/test_queue.c — queue/: order, atomic batch+cursor, redelivery after
** reopen, nack -> dead letters, full map and recovery, oversized events,
** stale readers, map resized by another process, wait/wake, metrics, and
** concurrent append + claim from two threads and from two processes.
*/
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "tests/test.h"
#include "common/banned.h"

/* The queue's depth; UINT64_MAX when it cannot be read (no test expects that). */
static uint64_t qdepth(mdw_queue *q)
{
    uint64_t d;
    return mdw_queue_depth(q, &d) == 0 ? d : UINT64_MAX;
}

static mdw_queue_opts fast_opts(void)
{
    mdw_queue_opts o;
    mdw_queue_opts_default(&o);
    o.map_bytes = 64u << 20;
    o.nosync = 1; /* durability itself is proven by tests/integration/queue_crash.sh */
    return o;
}

/* Appends events "<prefix><i>" for i in [from, to) in one call with cursor = to-1. */
static int append_range(mdw_queue *q, const char *prefix, int from, int to)
{
    int n = to - from;
    mdw_queue_event *ev = calloc((size_t)n, sizeof *ev);
    char(*txt)[32] = calloc((size_t)n, 32);
    for (int i = 0; i < n; i++) {
        snprintf(txt[i], 32, "%s%d", prefix, from + i);
        ev[i].data = txt[i];
        ev[i].len = strlen(txt[i]);
        ev[i].time_us = 1000000 + from + i;
    }
    int rc = mdw_queue_append(q, MDW_SOURCE_TEST, ev, (size_t)n, to - 1);
    free(ev);
    free(txt);
    return rc;
}

TEST(order_kept)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "e", 0, 10));
    ASSERT_OK(append_range(q, "e", 10, 25));
    ASSERT_OK(append_range(q, "e", 25, 26));
    ASSERT_EQ(qdepth(q), 26);
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    uint64_t after = 0;
    int next = 0;
    for (;;) {
        ASSERT_OK(mdw_queue_claim(q, after, 7, &b));
        if (!b.n)
            break;
        ASSERT(b.n <= 7);
        for (size_t i = 0; i < b.n; i++) {
            char want[32];
            snprintf(want, sizeof want, "e%d", next);
            ASSERT_EQ(b.items[i].len, strlen(want));
            ASSERT(memcmp(b.items[i].data, want, b.items[i].len) == 0);
            ASSERT_STREQ(b.items[i].data, want); /* NUL-terminated copy */
            ASSERT_EQ(b.items[i].time_us, 1000000 + next);
            ASSERT_EQ(b.items[i].source, MDW_SOURCE_TEST);
            ASSERT_EQ(b.items[i].attempts, 0);
            ASSERT(b.items[i].seq > after);
            after = b.items[i].seq;
            next++;
        }
    }
    ASSERT_EQ(next, 26);
    /* Claims do not consume: from the head again, the same first event. */
    ASSERT_OK(mdw_queue_claim(q, 0, 1, &b));
    ASSERT_EQ(b.n, 1);
    ASSERT_STREQ(b.items[0].data, "e0");
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.depth, 26);
    ASSERT_EQ(st.oldest_time_us, 1000000);
    ASSERT_EQ(st.next_seq, 27);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

/* Acks walk one cursor over runs of seqs: gaps, unknown and repeated seqs, the last entry. */
TEST(ack_runs_gaps_and_unknown_seqs)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "e", 0, 12)); /* seqs 1..12 */
    uint64_t acks[] = {2, 3, 4, 4, 7, 9, 10, 12, 40};
    ASSERT_OK(mdw_queue_ack(q, acks, sizeof acks / sizeof acks[0]));
    ASSERT_EQ(qdepth(q), 5);
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 100, &b));
    uint64_t want[] = {1, 5, 6, 8, 11};
    ASSERT_EQ(b.n, 5);
    for (size_t i = 0; i < 5; i++)
        ASSERT_EQ(b.items[i].seq, want[i]);
    uint64_t rest[] = {1, 5, 6, 8, 11};
    ASSERT_OK(mdw_queue_ack(q, rest, 5));
    ASSERT_EQ(qdepth(q), 0);
    ASSERT_OK(mdw_queue_claim(q, 0, 100, &b));
    ASSERT_EQ(b.n, 0);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

TEST(cursor_alone_and_with_batch)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    int64_t c = 0;
    ASSERT_EQ(mdw_queue_get_cursor(q, MDW_SOURCE_JETSTREAM, &c), MDW_ENOTFOUND);
    ASSERT_OK(mdw_queue_commit_cursor(q, MDW_SOURCE_JETSTREAM, 1732345678000000LL));
    ASSERT_OK(mdw_queue_get_cursor(q, MDW_SOURCE_JETSTREAM, &c));
    ASSERT_EQ(c, 1732345678000000LL);
    ASSERT_EQ(qdepth(q), 0);
    /* Cursors are per source. */
    ASSERT_EQ(mdw_queue_get_cursor(q, MDW_SOURCE_RELAY, &c), MDW_ENOTFOUND);
    ASSERT_OK(append_range(q, "x", 0, 5));
    ASSERT_OK(mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &c));
    ASSERT_EQ(c, 4);
    mdw_queue_close(q);
}

/* A refused batch (oversized member, or full map) leaves neither events nor cursor. */
TEST(batch_and_cursor_all_or_nothing)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.max_event_bytes = 100;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "a", 0, 3));
    char big[101];
    memset(big, 'b', sizeof big);
    mdw_queue_event ev[3] = {{"ok1", 3, 1}, {big, sizeof big, 2}, {"ok2", 3, 3}};
    ASSERT_EQ(mdw_queue_append(q, MDW_SOURCE_TEST, ev, 3, 999), MDW_ETOOBIG);
    int64_t c;
    ASSERT_OK(mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &c));
    ASSERT_EQ(c, 2); /* unchanged */
    ASSERT_EQ(qdepth(q), 3);
    mdw_queue_close(q);

    /* The same through a full map: the refused batch's cursor is not stored. */
    dir = TEST_TMPDIR();
    o = fast_opts();
    o.map_bytes = 256 * 1024;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    char payload[900];
    memset(payload, 'p', sizeof payload);
    mdw_queue_event pe[8];
    for (int i = 0; i < 8; i++)
        pe[i] = (mdw_queue_event){payload, sizeof payload, i};
    int64_t cur = 0;
    int rc;
    while ((rc = mdw_queue_append(q, MDW_SOURCE_TEST, pe, 8, cur + 8)) == 0)
        cur += 8;
    ASSERT_EQ(rc, MDW_EFULL);
    ASSERT(cur > 0);
    ASSERT_OK(mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &c));
    ASSERT_EQ(c, cur);
    ASSERT_EQ(qdepth(q), (uint64_t)cur);
    mdw_queue_close(q);
}

TEST(redelivered_after_reopen)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o;
    mdw_queue_opts_default(&o); /* synced */
    o.map_bytes = 16u << 20;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "r", 0, 10));
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 10, &b));
    ASSERT_EQ(b.n, 10);
    uint64_t seqs[5];
    for (int i = 0; i < 5; i++)
        seqs[i] = b.items[2 * i].seq; /* ack the even ones */
    ASSERT_OK(mdw_queue_ack(q, seqs, 5));
    ASSERT_OK(mdw_queue_ack(q, seqs, 5)); /* again: unknown seqs are ignored */
    mdw_queue_close(q);

    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(mdw_queue_claim(q, 0, 100, &b));
    ASSERT_EQ(b.n, 5);
    for (int i = 0; i < 5; i++) {
        char want[8];
        snprintf(want, sizeof want, "r%d", 2 * i + 1);
        ASSERT_STREQ(b.items[i].data, want);
    }
    /* New seqs continue after the old ones even when the table emptied. */
    uint64_t all[5];
    for (int i = 0; i < 5; i++)
        all[i] = b.items[i].seq;
    ASSERT_OK(mdw_queue_ack(q, all, 5));
    ASSERT_EQ(qdepth(q), 0);
    mdw_queue_close(q);
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "s", 0, 1));
    ASSERT_OK(mdw_queue_claim(q, 0, 10, &b));
    ASSERT_EQ(b.n, 1);
    ASSERT_EQ(b.items[0].seq, 11);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

typedef struct dead_seen {
    int n;
    uint64_t seq[8];
    uint32_t attempts[8];
    char err[8][64];
    char data[8][16];
} dead_seen;

static int collect_dead(void *ctx, uint64_t seq, uint32_t attempts, const char *error,
                        const char *data, size_t len)
{
    dead_seen *d = ctx;
    if (d->n < 8) {
        d->seq[d->n] = seq;
        d->attempts[d->n] = attempts;
        snprintf(d->err[d->n], 64, "%s", error);
        snprintf(d->data[d->n], 16, "%.*s", (int)len, data);
    }
    d->n++;
    return 0;
}

TEST(nack_to_dead_letters)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.max_attempts = 3;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "d", 0, 3));
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 10, &b));
    uint64_t s0 = b.items[0].seq, s1 = b.items[1].seq, s2 = b.items[2].seq;
    int dead = -1;
    int64_t dead_before = mdw_metrics_counter_value("meadow_queue_dead_lettered_total", NULL);
    ASSERT_OK(mdw_queue_nack(q, s0, "boom 1", &dead));
    ASSERT_EQ(dead, 0);
    ASSERT_OK(mdw_queue_nack(q, s0, "boom 2", &dead));
    ASSERT_EQ(dead, 0);
    ASSERT_OK(mdw_queue_claim(q, 0, 1, &b));
    ASSERT_EQ(b.items[0].attempts, 2); /* the count survives in the envelope */
    ASSERT_STREQ(b.items[0].data, "d0");
    ASSERT_OK(mdw_queue_nack(q, s0, "boom 3", &dead));
    ASSERT_EQ(dead, 1);
    ASSERT_EQ(mdw_queue_nack(q, s0, "again", &dead), MDW_ENOTFOUND);
    ASSERT_OK(mdw_queue_dead_letter(q, s2, "malformed json"));
    ASSERT_EQ(mdw_metrics_counter_value("meadow_queue_dead_lettered_total", NULL), dead_before + 2);

    ASSERT_EQ(qdepth(q), 1);
    dead_seen d = {0};
    ASSERT_OK(mdw_queue_dead_list(q, collect_dead, &d));
    ASSERT_EQ(d.n, 2);
    ASSERT_EQ(d.seq[0], s0);
    ASSERT_EQ(d.attempts[0], 3);
    ASSERT_STREQ(d.err[0], "boom 3");
    ASSERT_STREQ(d.data[0], "d0");
    ASSERT_EQ(d.seq[1], s2);
    ASSERT_STREQ(d.err[1], "malformed json");
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.dead, 2);

    /* Requeue one: new seq at the tail, attempts reset, same bytes. */
    uint64_t n = 0;
    ASSERT_OK(mdw_queue_dead_requeue(q, s0, &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(mdw_queue_claim(q, 0, 10, &b));
    ASSERT_EQ(b.n, 2);
    ASSERT_EQ(b.items[0].seq, s1);
    ASSERT_STREQ(b.items[1].data, "d0");
    ASSERT(b.items[1].seq > s2);
    ASSERT_EQ(b.items[1].attempts, 0);
    ASSERT_EQ(mdw_queue_dead_requeue(q, 12345, &n), 0);
    ASSERT_EQ(n, 0);
    /* Purge all. */
    ASSERT_OK(mdw_queue_dead_purge(q, 0, &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.dead, 0);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

TEST(dead_requeue_all_many)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "m", 0, 2500)); /* more than one requeue chunk */
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 3000, &b));
    ASSERT_EQ(b.n, 2500);
    for (size_t i = 0; i < b.n; i++)
        ASSERT_OK(mdw_queue_dead_letter(q, b.items[i].seq, "x"));
    ASSERT_EQ(qdepth(q), 0);
    uint64_t n = 0;
    ASSERT_OK(mdw_queue_dead_requeue(q, 0, &n));
    ASSERT_EQ(n, 2500);
    ASSERT_OK(mdw_queue_claim(q, 0, 3000, &b));
    ASSERT_EQ(b.n, 2500);
    for (size_t i = 0; i < b.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "m%zu", i);
        ASSERT_STREQ(b.items[i].data, want); /* order kept through the dead table */
        ASSERT_EQ(b.items[i].seq, 2501 + i);
    }
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

TEST(map_full_then_recovers)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.map_bytes = 256 * 1024; /* 64 pages */
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    int64_t full_before = mdw_metrics_counter_value("meadow_queue_full_total", NULL);
    char payload[1500];
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    for (int round = 0; round < 4; round++) {
        int appended = 0, rc;
        for (;;) {
            memset(payload, 'a' + round, sizeof payload);
            snprintf(payload, sizeof payload, "%d/%d", round, appended);
            mdw_queue_event ev = {payload, sizeof payload, appended};
            rc = mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, appended);
            if (rc)
                break;
            appended++;
        }
        ASSERT_EQ(rc, MDW_EFULL);
        ASSERT(appended > 10);
        mdw_queue_stats st;
        ASSERT_OK(mdw_queue_stats_get(q, &st));
        ASSERT_EQ(st.depth, (uint64_t)appended);
        ASSERT(st.bytes_used <= st.map_bytes);
        /* Cursor-only commits still work while full (no new pages for events). */
        ASSERT_OK(mdw_queue_commit_cursor(q, MDW_SOURCE_JETSTREAM, 7));
        /* Drain in one big ack, which must fit in the reserve. */
        ASSERT_OK(mdw_queue_claim(q, 0, 100000, &b));
        ASSERT_EQ(b.n, (size_t)appended);
        char want[32];
        snprintf(want, sizeof want, "%d/%d", round, appended - 1);
        ASSERT_STREQ(b.items[b.n - 1].data, want);
        uint64_t *seqs = calloc(b.n, sizeof *seqs);
        for (size_t i = 0; i < b.n; i++)
            seqs[i] = b.items[i].seq;
        int arc = mdw_queue_ack(q, seqs, b.n);
        free(seqs);
        ASSERT_OK(arc);
        ASSERT_EQ(qdepth(q), 0);
    }
    ASSERT(mdw_metrics_counter_value("meadow_queue_full_total", NULL) >= full_before + 4);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
    /* Reopens cleanly after all that. */
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "z", 0, 3));
    ASSERT_EQ(qdepth(q), 3);
    mdw_queue_close(q);
}

TEST(oversized_refused_and_counted)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.max_event_bytes = 1000;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT(mdw_queue_event_fits(q, 1000));
    ASSERT(!mdw_queue_event_fits(q, 1001));
    int64_t before = mdw_metrics_counter_value("meadow_queue_refused_total", "reason=\"toobig\"");
    char big[1001];
    memset(big, 'x', sizeof big);
    mdw_queue_event ev = {big, sizeof big, 1};
    ASSERT_EQ(mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, 1), MDW_ETOOBIG);
    ASSERT_EQ(mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, 1), MDW_ETOOBIG);
    ev.len = 1000; /* exactly the maximum is fine, stored whole */
    ASSERT_OK(mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, 1));
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.refused_toobig, 2);
    ASSERT_EQ(st.depth, 1);
    ASSERT_EQ(mdw_metrics_counter_value("meadow_queue_refused_total", "reason=\"toobig\""),
              before + 2);
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 1, &b));
    ASSERT_EQ(b.items[0].len, 1000);
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

TEST(backpressure_marks)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.high_water = 5;
    o.low_water = 2;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT(!mdw_queue_above_high_water(q));
    ASSERT(mdw_queue_below_low_water(q));
    ASSERT_OK(append_range(q, "h", 0, 3));
    ASSERT(!mdw_queue_above_high_water(q));
    ASSERT(!mdw_queue_below_low_water(q));
    ASSERT_OK(append_range(q, "h", 3, 5));
    ASSERT(mdw_queue_above_high_water(q));
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 3, &b));
    uint64_t s[3] = {b.items[0].seq, b.items[1].seq, b.items[2].seq};
    ASSERT_OK(mdw_queue_ack(q, s, 3));
    ASSERT(!mdw_queue_above_high_water(q));
    ASSERT(mdw_queue_below_low_water(q));
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

TEST(metrics_gauges)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_clock clk;
    mdw_clock_fake_init(&clk, 1000000 + 30 * 1000000LL);
    o.clock = &clk;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "g", 0, 4)); /* oldest time_us = 1000000 */
    ASSERT_OK(mdw_queue_dead_letter(q, 4, "bad"));
    mdw_buf out;
    mdw_buf_init(&out, 1 << 20);
    ASSERT_OK(mdw_metrics_render(&out));
    ASSERT_CONTAINS(out.data, "# TYPE meadow_queue_depth gauge\nmeadow_queue_depth 3\n");
    ASSERT_CONTAINS(out.data, "meadow_queue_oldest_age_seconds 30\n");
    ASSERT_CONTAINS(out.data, "meadow_queue_dead_letters 1\n");
    ASSERT_CONTAINS(out.data, "meadow_queue_map_usage_ratio 0.");
    ASSERT_CONTAINS(out.data, "meadow_queue_refused_total{reason=\"toobig\"}");
    mdw_queue_close(q);
    /* A closed queue is no longer read by the gauges. */
    mdw_buf_reset(&out);
    ASSERT_OK(mdw_metrics_render(&out));
    ASSERT_CONTAINS(out.data, "meadow_queue_depth 0\n");
    mdw_buf_release(&out);
}

/* A process that died holding a read transaction leaves a reader slot; open clears it. */
TEST(stale_readers_cleared_on_open)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "s", 0, 2));
    mdw_queue_close(q);
    /*
    ** The first process to open an environment resets the reader table, so a
    ** holder keeps it open (as the firehose would while the processor dies).
    */
    int pfd[2], rfd[2];
    ASSERT_OK(pipe(pfd));
    ASSERT_OK(pipe(rfd));
    pid_t holder = fork();
    ASSERT(holder >= 0);
    if (holder == 0) {
        close(pfd[1]);
        mdw_queue *hq;
        if (mdw_queue_open(&hq, dir, &o))
            _exit(3);
        char c = 'r';
        if (write(rfd[1], &c, 1) != 1)
            _exit(5);
        if (read(pfd[0], &c, 1) < 0) /* until the parent closes the pipe */
            _exit(4);
        mdw_queue_close(hq);
        _exit(0);
    }
    close(pfd[0]);
    close(rfd[1]);
    char ready;
    ASSERT_EQ(read(rfd[0], &ready, 1), 1); /* the holder has it open */
    close(rfd[0]);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) ||
            mdb_env_open(env, dir, MDB_NOTLS, 0644) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int orc = mdw_queue_open(&q, dir, &o);
    close(pfd[1]);
    waitpid(holder, &status, 0);
    ASSERT_OK(orc);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.stale_readers, 1);
    ASSERT_EQ(st.depth, 2);
    mdw_queue_close(q);
}

/* Another process opens with a bigger map and fills past ours: MDB_MAP_RESIZED is handled. */
TEST(map_resized_by_other_process)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.map_bytes = 1u << 20;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "a", 0, 1));
    int64_t resized_before = mdw_metrics_counter_value("meadow_queue_map_resized_total", NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* The parent's handle is not touched here (LMDB handles do not cross fork). */
        mdw_queue_opts co = fast_opts();
        co.map_bytes = 8u << 20;
        mdw_queue *cq;
        if (mdw_queue_open(&cq, dir, &co))
            _exit(3);
        char payload[3000];
        memset(payload, 'c', sizeof payload);
        for (int i = 0; i < 1500; i++) {
            mdw_queue_event ev = {payload, sizeof payload, i};
            if (mdw_queue_append(cq, MDW_SOURCE_TEST, &ev, 1, i))
                _exit(4);
        }
        mdw_queue_close(cq);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.depth, 1501);
    ASSERT_EQ(st.map_bytes, 8u << 20);
    ASSERT(mdw_metrics_counter_value("meadow_queue_map_resized_total", NULL) > resized_before);
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(q, 0, 2000, &b));
    ASSERT_EQ(b.n, 1501);
    ASSERT_EQ(b.items[1500].len, 3000);
    ASSERT_OK(append_range(q, "z", 0, 1)); /* and writes too */
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
}

typedef struct waiter {
    mdw_queue *q;
    int rc;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->rc = mdw_queue_wait(w->q, 10000);
    return NULL;
}

TEST(wait_and_wake)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_EQ(mdw_queue_wait(q, 20), 0); /* nothing: times out */
    ASSERT_OK(append_range(q, "w", 0, 1));
    ASSERT_EQ(mdw_queue_wait(q, 0), 1); /* data appended since last call */
    ASSERT_EQ(mdw_queue_wait(q, 0), 0);
    /* A blocked waiter is woken by an append from another thread... */
    waiter w = {q, -1};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(20000);
    ASSERT_OK(append_range(q, "w", 1, 2));
    pthread_join(t, NULL);
    ASSERT_EQ(w.rc, 1);
    /* ...and by mdw_queue_wake (shutdown), returning 0 well before its timeout. */
    w.rc = -1;
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(20000);
    mdw_queue_wake(q);
    pthread_join(t, NULL);
    ASSERT_EQ(w.rc, 0);
    mdw_queue_close(q);
}

#define CONC_EVENTS 20000

typedef struct producer {
    mdw_queue *q;
    int rc;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < CONC_EVENTS && !p->rc; i += 50)
        p->rc = append_range(p->q, "c", i, i + 50);
    return NULL;
}

/* Consumes until CONC_EVENTS in order; returns the count or -1 on a violation. */
static int consume_all(mdw_queue *q, int use_wait)
{
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    int next = 0, idle = 0;
    uint64_t after = 0;
    while (next < CONC_EVENTS && idle < 2000) {
        if (mdw_queue_claim(q, after, 128, &b)) {
            next = -1;
            break;
        }
        if (!b.n) {
            if (use_wait)
                mdw_queue_wait(q, 50);
            else
                usleep(2000);
            idle++;
            continue;
        }
        idle = 0;
        uint64_t *seqs = calloc(b.n, sizeof *seqs);
        for (size_t i = 0; i < b.n; i++) {
            char want[32];
            snprintf(want, sizeof want, "c%d", next);
            if (strcmp(b.items[i].data, want) != 0) {
                fprintf(stderr, "  got %s want %s\n", b.items[i].data, want);
                free(seqs);
                mdw_queue_batch_release(&b);
                return -1;
            }
            seqs[i] = b.items[i].seq;
            after = seqs[i];
            next++;
        }
        int rc = mdw_queue_ack(q, seqs, b.n);
        free(seqs);
        if (rc) {
            next = -1;
            break;
        }
    }
    mdw_queue_batch_release(&b);
    return next;
}

TEST(two_threads_append_and_claim)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    producer p = {q, 0};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    int got = consume_all(q, 1);
    pthread_join(t, NULL);
    ASSERT_OK(p.rc);
    ASSERT_EQ(got, CONC_EVENTS);
    ASSERT_EQ(qdepth(q), 0);
    int64_t c;
    ASSERT_OK(mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &c));
    ASSERT_EQ(c, CONC_EVENTS - 1);
    mdw_queue_close(q);
}

TEST(two_processes_append_and_claim)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    /* Create it first so both processes open an existing environment. */
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    mdw_queue_close(q);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        mdw_queue *cq;
        if (mdw_queue_open(&cq, dir, &o))
            _exit(3);
        producer p = {cq, 0};
        produce(&p);
        mdw_queue_close(cq);
        _exit(p.rc ? 4 : 0);
    }
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    int got = consume_all(q, 0); /* another process: no in-process wake-up */
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(got, CONC_EVENTS);
    ASSERT_EQ(qdepth(q), 0);
    mdw_queue_close(q);
}

/* map_bytes 0 adopts the environment's size (what the CLI does beside a running firehose). */
TEST(map_bytes_zero_keeps_size)
{
    const char *dir = TEST_TMPDIR();
    mdw_queue_opts o = fast_opts();
    o.map_bytes = 8u << 20;
    mdw_queue *q;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "k", 0, 2));
    mdw_queue_close(q);
    o.map_bytes = 0;
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "k", 2, 4)); /* a write keeps it too */
    mdw_queue_stats st;
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.map_bytes, 8u << 20);
    ASSERT_EQ(st.depth, 4);
    mdw_queue_close(q);
    o.map_bytes = 16u << 20; /* a configured bigger size is taken */
    ASSERT_OK(mdw_queue_open(&q, dir, &o));
    ASSERT_OK(append_range(q, "k", 4, 5));
    ASSERT_OK(mdw_queue_stats_get(q, &st));
    ASSERT_EQ(st.map_bytes, 16u << 20);
    mdw_queue_close(q);
}

TEST(opts_from_config)
{
    mdw_config cfg;
    mdw_config_defaults(&cfg);
    ASSERT_OK(mdw_config_set(&cfg, "queue_map_mb", "3", MDW_SRC_FLAG, stderr));
    ASSERT_OK(mdw_config_set(&cfg, "queue_max_attempts", "7", MDW_SRC_FLAG, stderr));
    ASSERT_OK(mdw_config_set(&cfg, "data", "/srv/meadow", MDW_SRC_FLAG, stderr));
    mdw_queue_opts o;
    mdw_queue_opts_from_config(&o, &cfg);
    char *dir = mdw_queue_dir(&cfg);
    mdw_config_release(&cfg);
    ASSERT_STREQ(dir, "/srv/meadow/queue");
    free(dir);
    ASSERT_EQ(o.map_bytes, 3u << 20);
    ASSERT_EQ(o.max_attempts, 7);
    ASSERT_EQ(o.high_water, 200000);
    ASSERT_EQ(o.low_water, 100000);
    ASSERT_EQ(o.max_event_bytes, MDW_MAX_EVENT_BYTES);
    ASSERT_EQ(o.nosync, 0); /* durable unless a test asks otherwise */
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_OFF);
    RUN(order_kept);
    RUN(ack_runs_gaps_and_unknown_seqs);
    RUN(cursor_alone_and_with_batch);
    RUN(batch_and_cursor_all_or_nothing);
    RUN(redelivered_after_reopen);
    RUN(nack_to_dead_letters);
    RUN(dead_requeue_all_many);
    RUN(map_full_then_recovers);
    RUN(oversized_refused_and_counted);
    RUN(backpressure_marks);
    RUN(metrics_gauges);
    RUN(stale_readers_cleared_on_open);
    RUN(map_resized_by_other_process);
    RUN(wait_and_wake);
    RUN(two_threads_append_and_claim);
    RUN(two_processes_append_and_claim);
    RUN(map_bytes_zero_keeps_size);
    RUN(opts_from_config);
    return TEST_REPORT();
}
