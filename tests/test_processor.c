/*
** tests/test_processor.c — the processing stage end to end over the real
** queue (LMDB), the real lexicon validator and a real index: events go in
** with mdw_queue_append, come out as feeds. Invalid records are refused and
** counted, malformed events become dead letters with their error, a crash
** between index commit and ack does not apply twice, one processor per data
** directory, the thread is woken by appends (not a timer), retention is
** swept periodically, and real Jetstream events decode without a dead letter.
*/
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/test.h"
#include "common/log.h"
#include "common/metrics.h"
#include "index/index_impl.h"
#include "processor/processor.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "tests/test_processor_helpers.h"
#include "common/banned.h"

/* The queue's depth; UINT64_MAX when it cannot be read (no test expects that). */
static uint64_t qdepth(mdw_queue *q)
{
    uint64_t d;
    return mdw_queue_depth(q, &d) == 0 ? d : UINT64_MAX;
}

#define URI_MAX 256

typedef struct pfx {
    fx f; /* index + event builders (its rules object is unused here) */
    mdw_queue *q;
    mdw_processor *p;
    mdw_processor_cfg cfg;
    char data[512];
} pfx;

static int pfx_open(pfx *x, const char *tmp)
{
    memset(x, 0, sizeof *x);
    snprintf(x->data, sizeof x->data, "%s", tmp);
    int rc = fx_open(&x->f, tmp);
    if (rc)
        return rc;
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/queue", tmp);
    mdw_queue_opts qo;
    mdw_queue_opts_default(&qo);
    qo.nosync = 1;
    qo.map_bytes = 64u << 20;
    qo.max_attempts = 3;
    if ((rc = mdw_queue_open(&x->q, qdir, &qo)))
        return rc;
    x->cfg.data_dir = x->data;
    x->cfg.retention_us = RETENTION_US;
    x->cfg.sweep_interval_us = 600LL * 1000000;
    x->cfg.batch = 64;
    return 0;
}

/* Opens the processor on the fixture's queue, index and clock, with x->cfg. */
static int pfx_start(pfx *x)
{
    return mdw_processor_open(&x->p, &x->cfg, x->q, x->f.ix, &x->f.clk);
}

static void pfx_close(pfx *x)
{
    mdw_processor_close(x->p);
    x->p = NULL;
    mdw_queue_close(x->q);
    fx_close(&x->f);
}

/* Appends the captured events of x->f to the queue (one append) and clears them. */
static int pfx_flush(pfx *x)
{
    mdw_queue_event *ev = xcalloc(x->f.ncap + 1, sizeof *ev);
    for (size_t i = 0; i < x->f.ncap; i++) {
        ev[i].data = x->f.cap[i];
        ev[i].len = strlen(x->f.cap[i]);
        ev[i].time_us = x->f.t;
    }
    int rc = mdw_queue_append(x->q, MDW_SOURCE_TEST, ev, x->f.ncap, x->f.t);
    free(ev);
    for (size_t i = 0; i < x->f.ncap; i++)
        free(x->f.cap[i]);
    x->f.ncap = 0;
    return rc;
}

static int pfx_append_raw(pfx *x, const char *s)
{
    mdw_queue_event ev = {s, strlen(s), x->f.t};
    return mdw_queue_append(x->q, MDW_SOURCE_TEST, &ev, 1, x->f.t);
}

/* Steps until the queue is empty. */
static int pfx_drain(pfx *x)
{
    for (int i = 0; i < 10000; i++) {
        size_t n;
        int rc = mdw_processor_step(x->p, &n);
        if (rc)
            return rc;
        if (n == 0)
            return 0;
    }
    return -1;
}

TEST(queue_to_feed)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    f->capturing = 1;
    char curi[URI_MAX], p[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    fx_join(f, ALICE, curi, "member", 1, NULL, 0);
    fx_post(f, ALICE, "hello #atr_" TAG, p, sizeof p);
    fx_post(f, BOB, "not a member #atr_" TAG, NULL, 0);
    ASSERT_OK(pfx_flush(&x));
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    char *feed = fx_feed(f, OWNER, TAG);
    ASSERT_STREQ(feed, p);
    free(feed);
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.applied, 4);
    ASSERT_EQ(st.refused + st.dead, 0);
    ASSERT_EQ(qdepth(x.q), 0);
    mdw_index_stats is;
    ASSERT_OK(mdw_index_stats_get(f->ix, &is));
    ASSERT_EQ(is.last_applied_seq, st.last_seq);
    ASSERT(st.last_seq >= 4);
    /* Two tagged posts (member and stranger alike) in the author index, shown by /metrics. */
    mdw_buf m;
    mdw_buf_init(&m, 1 << 20);
    ASSERT_OK(mdw_metrics_render(&m));
    ASSERT(m.data && strstr(m.data, "meadow_processor_author_index_entries 2\n") != NULL);
    /* One batch so far: one observation of the applier's wait for decoded events. */
    ASSERT(strstr(m.data, "meadow_processor_decode_wait_seconds_count 1\n") != NULL);
    mdw_buf_release(&m);
    pfx_close(&x);
}

TEST(invalid_records_refused_and_counted)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    int64_t before_lex =
        mdw_metrics_counter_value("meadow_processor_rule_total", "rule=\"lexicon\"");
    f->capturing = 1;
    char curi[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    /* application rule: hashtag form */
    char rkey[14];
    fx_rkey(f, rkey);
    fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", rkey, "create",
                        fx_config_record(f, "#atr_0123ABCD", "bad hashtag")));
    /* lexicon: membership without role, with a bad community URI */
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "$type", "net.atrarium.community.membership");
    cJSON_AddStringToObject(m, "community", curi);
    cJSON_AddStringToObject(m, "joinedAt", "2026-11-22T00:00:00.000Z");
    fx_rkey(f, rkey);
    fx_run(f, fx_commit(f, ALICE, "net.atrarium.community.membership", rkey, "create", m));
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "$type", "net.atrarium.community.membership");
    cJSON_AddStringToObject(m, "community", "not an at-uri");
    cJSON_AddStringToObject(m, "role", "member");
    cJSON_AddStringToObject(m, "joinedAt", "2026-11-22T00:00:00.000Z");
    fx_rkey(f, rkey);
    fx_run(f, fx_commit(f, ALICE, "net.atrarium.community.membership", rkey, "create", m));
    /* lexicon: unknown action */
    fx_mod(f, OWNER, curi, "delete_everything", ALICE, NULL, 0);
    ASSERT_OK(pfx_flush(&x));
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.applied, 1);
    ASSERT_EQ(st.refused, 4);
    ASSERT_EQ(st.refused_app, 1);
    ASSERT_EQ(st.refused_lexicon, 3);
    ASSERT_EQ(st.dead, 0);
    ASSERT_EQ(qdepth(x.q), 0); /* acked: refused records are not retried */
    ASSERT_EQ(mdw_metrics_counter_value("meadow_processor_rule_total", "rule=\"lexicon\""),
              before_lex + 3);
    char *feed = fx_feed(f, OWNER, TAG);
    ASSERT_STREQ(feed, "");
    free(feed);
    pfx_close(&x);
}

typedef struct dead_seen {
    int n;
    char errs[8][256];
} dead_seen;

static int on_dead(void *ctx, uint64_t seq, uint32_t attempts, const char *error, const char *data,
                   size_t len)
{
    dead_seen *d = ctx;
    if (d->n < 8)
        snprintf(d->errs[d->n], sizeof d->errs[0], "%s", error ? error : "");
    d->n++;
    return 0;
}

/*
** Posts are validated with app.bsky.feed.post's own lexicon (the AppView
** drops what it refuses, so an indexed one would leave a page short): 1 MB
** of text, 301 graphemes, four langs, a facet without its index are
** refused with the reason, never indexed; a post with facets, langs, tags
** and an external embed passes.
*/
TEST(posts_validated_by_their_lexicon)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    f->capturing = 1;
    char curi[URI_MAX], good[URI_MAX], rkey[14];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    fx_join(f, ALICE, curi, "member", 1, NULL, 0);
    size_t big = 1u << 20;
    char *text = xmalloc(big + 1);
    memset(text, 'x', big);
    memcpy(text, "#atr_" TAG " ", 14);
    text[big] = '\0';
    fx_post(f, ALICE, text, NULL, 0);
    memset(text, 'y', 301);
    memcpy(text, "#atr_" TAG " ", 14);
    text[301] = '\0';
    fx_post(f, ALICE, text, NULL, 0); /* 301 graphemes (and bytes) */
    free(text);
    cJSON *r = fx_post_record(f, "four langs #atr_" TAG);
    cJSON *langs = cJSON_AddArrayToObject(r, "langs");
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(langs, cJSON_CreateString("en"));
    fx_rkey(f, rkey);
    fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", r));
    r = fx_post_record(f, "facet without index #atr_" TAG);
    cJSON_AddItemToObject(r, "facets",
                          cJSON_Parse("[{\"features\":[{\"$type\":\"app.bsky.richtext.facet#tag\","
                                      "\"tag\":\"atr_" TAG "\"}]}]"));
    fx_rkey(f, rkey);
    fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", r));
    r = fx_post_record(f, "all good #atr_" TAG);
    cJSON_AddItemToObject(r, "facets",
                          cJSON_Parse("[{\"index\":{\"byteStart\":9,\"byteEnd\":22},\"features\":[{"
                                      "\"$type\":\"app.bsky.richtext.facet#tag\",\"tag\":\"atr_" TAG
                                      "\"}]}]"));
    cJSON_AddItemToObject(r, "langs", cJSON_Parse("[\"en\",\"ja\"]"));
    cJSON_AddItemToObject(r, "tags", cJSON_Parse("[\"meadow\"]"));
    cJSON_AddItemToObject(r, "embed",
                          cJSON_Parse("{\"$type\":\"app.bsky.embed.external\",\"external\":{"
                                      "\"uri\":\"https://example.com/\",\"title\":\"t\","
                                      "\"description\":\"d\"}}"));
    fx_rkey(f, rkey);
    snprintf(good, sizeof good, "at://%s/app.bsky.feed.post/%s", ALICE, rkey);
    fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", r));
    ASSERT_OK(pfx_flush(&x));
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.refused_lexicon, 4);
    ASSERT_EQ(st.dead, 0);
    ASSERT_EQ(st.applied, 3); /* config, membership, the good post */
    ASSERT_EQ(qdepth(x.q), 0);
    char *feed = fx_feed(f, OWNER, TAG);
    ASSERT_STREQ(feed, good);
    free(feed);
    pfx_close(&x);
}

TEST(malformed_events_go_to_dead_letters)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    ASSERT_OK(pfx_append_raw(&x, "{\"did\":\"did:plc:x\",\"kind\":\"commit\",\"commit\":{"));
    ASSERT_OK(pfx_append_raw(&x, "[1,2,3]"));
    ASSERT_OK(pfx_append_raw(&x, "{\"kind\":\"commit\"}"));
    ASSERT_OK(pfx_append_raw(&x, "{\"did\":\"did:plc:x\",\"kind\":\"commit\",\"commit\":"
                                 "{\"operation\":\"create\",\"collection\":\"app.bsky.feed.post\","
                                 "\"rkey\":\"3k\"}}"));
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.dead, 4);
    ASSERT_EQ(qdepth(x.q), 0);
    dead_seen d = {0};
    ASSERT_OK(mdw_queue_dead_list(x.q, on_dead, &d));
    ASSERT_EQ(d.n, 4);
    ASSERT_CONTAINS(d.errs[0], "malformed JSON");
    ASSERT_CONTAINS(d.errs[1], "not a JSON object");
    ASSERT_CONTAINS(d.errs[2], "did");
    ASSERT_CONTAINS(d.errs[3], "record");
    pfx_close(&x);
}

/*
** A crash after the index commit and before the ack: simulated by applying
** a claimed batch through the rule engine with its last seq, without acking.
** The processor then acks those events without applying them again.
*/
TEST(crash_between_commit_and_ack_not_applied_twice)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    f->capturing = 1;
    char curi[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    for (int i = 0; i < 5; i++)
        fx_post(f, OWNER, "#atr_" TAG, NULL, 0);
    ASSERT_OK(pfx_flush(&x));
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    ASSERT_OK(mdw_queue_claim(x.q, 0, 100, &b));
    ASSERT_EQ(b.n, 6);
    ASSERT_OK(mdw_rules_begin(f->r));
    for (size_t i = 0; i < b.n; i++) {
        mdw_event ev;
        char err[128];
        mdw_rules_result res;
        ASSERT_OK(mdw_event_parse(&ev, b.items[i].data, b.items[i].len, err, sizeof err));
        ASSERT_OK(mdw_rules_apply(f->r, &ev, &res));
        mdw_event_release(&ev);
    }
    ASSERT_OK(mdw_rules_commit(f->r, b.items[b.n - 1].seq));
    mdw_queue_batch_release(&b);
    /* "restart" */
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.replayed, 6);
    ASSERT_EQ(st.applied + st.noop, 0);
    ASSERT_EQ(qdepth(x.q), 0);
    char *feed = fx_feed(f, OWNER, TAG);
    int n = 0;
    for (char *s = feed; (s = strstr(s, "at://")); s++)
        n++;
    free(feed);
    ASSERT_EQ(n, 5);
    pfx_close(&x);
}

TEST(one_processor_per_data_dir)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    mdw_processor *second = NULL;
    ASSERT_OK(pfx_start(&x));
    ASSERT_EQ(mdw_processor_open(&second, &x.cfg, x.q, x.f.ix, &x.f.clk), MDW_ELOCKED);
    ASSERT(second == NULL);
    mdw_processor_close(x.p);
    x.p = NULL;
    ASSERT_OK(mdw_processor_open(&second, &x.cfg, x.q, x.f.ix, &x.f.clk));
    mdw_processor_close(second);
    pfx_close(&x);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
** The thread's wait has a 60 s timeout here: the post shows up within
** seconds only because the append woke it. Stop finishes and joins.
*/
TEST(thread_woken_by_append_and_stops)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    x.cfg.wait_max_ms = 60000;
    ASSERT_OK(mdw_processor_start(&x.p, &x.cfg, x.q, f->ix, &f->clk));
    sleep_ms(100); /* let it block in the wait */
    f->capturing = 1;
    char curi[URI_MAX], p[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    fx_post(f, OWNER, "#atr_" TAG, p, sizeof p);
    int64_t t0 = mono_ms();
    ASSERT_OK(pfx_flush(&x));
    char *feed = NULL;
    while (mono_ms() - t0 < 10000) {
        free(feed);
        feed = fx_feed(f, OWNER, TAG);
        if (!strcmp(feed, p))
            break;
        sleep_ms(5);
    }
    int64_t took = mono_ms() - t0;
    int ok = feed && !strcmp(feed, p);
    free(feed);
    ASSERT_OK(mdw_processor_stop(x.p));
    x.p = NULL;
    ASSERT(ok);
    ASSERT_MSG(took < 10000, "took %lld ms", (long long)took);
    pfx_close(&x);
}

/* The running loop sweeps when sweep_interval has passed on the (fake) clock. */
TEST(retention_swept_periodically)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    x.cfg.wait_max_ms = 20;
    x.cfg.sweep_interval_us = 10LL * 1000000;
    f->capturing = 1;
    char curi[URI_MAX], p[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    fx_post(f, OWNER, "#atr_" TAG, p, sizeof p);
    ASSERT_OK(pfx_flush(&x));
    ASSERT_OK(mdw_processor_start(&x.p, &x.cfg, x.q, f->ix, &f->clk));
    mdw_index_stats st = {0};
    for (int i = 0; i < 500 && st.posts != 1; i++) {
        sleep_ms(10);
        ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    }
    ASSERT_EQ(st.posts, 1);
    mdw_clock_fake_advance(&f->clk, 8 * DAY_US);
    for (int i = 0; i < 500 && st.posts != 0; i++) {
        sleep_ms(10);
        ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    }
    mdw_processor_stats ps;
    mdw_processor_stats_get(x.p, &ps);
    ASSERT_OK(mdw_processor_stop(x.p));
    x.p = NULL;
    ASSERT_EQ(st.posts, 0);
    ASSERT_EQ(ps.swept_posts, 1);
    pfx_close(&x);
}

static size_t append_file_lines(pfx *x, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len && pfx_append_raw(x, line) == 0)
            n++;
    }
    free(line);
    fclose(fp);
    return n;
}

/* Real Jetstream output (shared corpus): every event decodes; nothing is dead-lettered. */
TEST(real_jetstream_events_decode)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    const char *base = "../shared/testdata/atproto-corpus";
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/jetstream_golden_10.jsonl", base);
    snprintf(p2, sizeof p2, "%s/jetstream_expected_first100.jsonl", base);
    size_t n = append_file_lines(&x, p1) + append_file_lines(&x, p2);
    ASSERT_EQ(n, 110);
    ASSERT_OK(pfx_start(&x));
    ASSERT_OK(pfx_drain(&x));
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.dead, 0);
    ASSERT_EQ(st.applied + st.noop + st.skipped + st.refused, 110);
    ASSERT(st.skipped > 50); /* likes, follows, reposts, identity... */
    ASSERT(st.applied > 0);  /* posts (untagged) and the account event */
    pfx_close(&x);
}

/* A config and 3,000 long posts, queued: more than a 512 KiB index holds. */
static int queue_many_posts(pfx *x)
{
    fx *f = &x->f;
    f->capturing = 1;
    char curi[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    for (int i = 0; i < 3000; i++)
        fx_post(f, OWNER, "a post long enough to fill pages quickly #atr_" TAG, NULL, 0);
    return pfx_flush(x);
}

/* (Re)opens the processor on an index of its own in <tmp>/small, map_bytes big. */
static int reopen_small(pfx *x, const char *tmp, size_t map_bytes, mdw_index **small)
{
    mdw_processor_close(x->p);
    x->p = NULL;
    mdw_index_close(*small);
    *small = NULL;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/small", tmp);
    mdw_index_opts o = {0};
    o.nosync = 1;
    o.map_bytes = map_bytes;
    o.clock = &x->f.clk;
    int rc = mdw_index_open(small, dir, &o);
    return rc ? rc : mdw_processor_open(&x->p, &x->cfg, x->q, *small, &x->f.clk);
}

/*
** A full index map is not the events' fault: the batch stays in the queue
** with no attempt counted (nothing dead-lettered), and a bigger map after a
** restart takes it.
*/
TEST(index_full_keeps_events)
{
    pfx x;
    const char *tmp = TEST_TMPDIR();
    ASSERT_OK(pfx_open(&x, tmp));
    ASSERT_OK(queue_many_posts(&x));
    mdw_index *small = NULL;
    x.cfg.batch = 5000;
    ASSERT_OK(reopen_small(&x, tmp, 512u << 10, &small));
    size_t n;
    ASSERT_EQ(mdw_processor_step(x.p, &n), MDW_EFULL);
    ASSERT_EQ(qdepth(x.q), 3001);
    dead_seen d = {0};
    ASSERT_OK(mdw_queue_dead_list(x.q, on_dead, &d));
    ASSERT_EQ(d.n, 0);
    ASSERT_OK(reopen_small(&x, tmp, 64u << 20, &small));
    ASSERT_OK(pfx_drain(&x));
    ASSERT_EQ(qdepth(x.q), 0);
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.applied, 3001);
    mdw_processor_close(x.p);
    x.p = NULL;
    mdw_index_close(small);
    pfx_close(&x);
}

/*
** A batch larger than one claim chunk (512) is still one index transaction
** and one ack: the claims continue after the previous chunk's last seq, and
** the step stops at cfg.batch, leaving the rest queued for the next step.
*/
TEST(batch_spans_several_claims_one_transaction)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    f->capturing = 1;
    char curi[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    for (int i = 0; i < 1299; i++)
        fx_post(f, OWNER, "#atr_" TAG, NULL, 0);
    ASSERT_OK(pfx_flush(&x));
    x.cfg.batch = 1000;
    ASSERT_OK(pfx_start(&x));
    size_t n;
    ASSERT_OK(mdw_processor_step(x.p, &n));
    ASSERT_EQ(n, 1000);
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.batches, 1);
    ASSERT_EQ(st.applied, 1000);
    ASSERT_EQ(qdepth(x.q), 300);
    mdw_index_stats is;
    ASSERT_OK(mdw_index_stats_get(f->ix, &is));
    ASSERT_EQ(is.last_applied_seq, st.last_seq);
    ASSERT_EQ(is.posts, 999);
    ASSERT_OK(mdw_processor_step(x.p, &n));
    ASSERT_EQ(n, 300);
    ASSERT_OK(mdw_processor_step(x.p, &n));
    ASSERT_EQ(n, 0);
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.batches, 2);
    ASSERT_EQ(st.applied, 1300);
    ASSERT_EQ(qdepth(x.q), 0);
    ASSERT_OK(mdw_index_stats_get(f->ix, &is));
    ASSERT_EQ(is.posts, 1299);
    pfx_close(&x);
}

/* A mixed history (about 1,500 events) captured as JSON, for runs of the whole processor. */
static void mixed_history(fx *f, char ***out, size_t *nout)
{
    f->capturing = 1;
    char c1[URI_MAX], c2[URI_MAX], u[URI_MAX];
    const char *who[] = {ALICE, BOB, CAROL, MALLORY};
    fx_config(f, OWNER, TAG, c1, sizeof c1, NULL, NULL);
    fx_config(f, OWNER2, TAG2, c2, sizeof c2, NULL, NULL);
    for (int i = 0; i < 3; i++)
        fx_join(f, who[i], c1, "member", 1, NULL, 0);
    fx_join(f, CAROL, c2, "member", 1, NULL, 0);
    for (int i = 0; i < 1400; i++) {
        const char *did = who[i % 4];
        if (i % 7 == 0)
            fx_post(f, did, "no community tag here", NULL, 0);
        else if (i % 5 == 0)
            fx_post(f, did, "both #atr_" TAG " #atr_" TAG2, u, sizeof u);
        else
            fx_post(f, did, "hello #atr_" TAG, u, sizeof u);
        if (i % 97 == 0)
            fx_delete(f, u);
        if (i % 131 == 0)
            fx_mod(f, OWNER, c1, "hide_post", u, NULL, 0);
        if (i % 400 == 0) /* malformed and invalid events among them */
            fx_run(f, xstrdup("{\"did\":\"did:plc:x\",\"kind\":\"commit\",\"commit\":{"));
        if (i == 700)
            fx_join(f, ALICE, c1, "member", 0, NULL, 0);
        if (i == 900)
            fx_run(f, fx_account_json(f, BOB, 0, "deactivated", 0));
    }
    *out = f->cap;
    *nout = f->ncap;
    f->cap = NULL;
    f->ncap = f->capcap = 0;
    f->capturing = 0;
}

/* Processes the events through queue and processor in dir; returns the index dump. */
static char *process_into(const char *dir, char **ev, size_t n, size_t batch, int inline_,
                          mdw_processor_stats *st)
{
    pfx x;
    mkdir(dir, 0755);
    if (pfx_open(&x, dir))
        return xstrdup("OPEN FAILED");
    x.f.capturing = 1;
    for (size_t i = 0; i < n; i++)
        fx_run(&x.f, xstrdup(ev[i]));
    char *d = NULL;
    x.cfg.batch = batch;
    x.cfg.decode_inline = inline_;
    if (pfx_flush(&x) || pfx_start(&x) || pfx_drain(&x))
        d = xstrdup("PROCESS FAILED");
    else if (qdepth(x.q) != 0)
        d = xstrdup("QUEUE NOT DRAINED");
    else
        d = fx_dump(x.f.ix, MDW_INDEX_DUMP_RECORDS);
    if (x.p)
        mdw_processor_stats_get(x.p, st);
    pfx_close(&x);
    return d;
}

/*
** The decoder thread and its ring of chunks change where events are
** decoded, not what the index becomes: the same history gives the dump of
** the rules applied event by event, with the decoder inline and with the
** thread at batch sizes below, at and above a claim (512) and the ring of
** decoded chunks (4 x 512), with the same counts.
*/
TEST(decoder_thread_same_index_as_inline)
{
    const char *tmp = TEST_TMPDIR();
    fx f;
    ASSERT_OK(fx_open(&f, tmp));
    char **ev;
    size_t n;
    mixed_history(&f, &ev, &n);
    fx_close(&f);
    ASSERT(n > 1400);
    /* The reference: every event given to the rules one by one, no queue, no processor. */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/rules", tmp);
    mkdir(dir, 0755);
    ASSERT_OK(fx_open(&f, dir));
    for (size_t i = 0; i < n; i++)
        fx_apply_json(&f, ev[i]);
    char *R = fx_dump(f.ix, MDW_INDEX_DUMP_RECORDS);
    fx_close(&f);
    snprintf(dir, sizeof dir, "%s/inline", tmp);
    mdw_processor_stats a, b;
    char *A = process_into(dir, ev, n, 64, 1, &a);
    ASSERT(strstr(A, "\n  post ") != NULL);
    ASSERT(strcmp(A, R) == 0); /* (not ASSERT_STREQ: the dumps are ~600 KB) */
    free(R);
    ASSERT_EQ(a.dead, 4);
    ASSERT(a.applied > 1400);
    const size_t batches[] = {1, 64, 700, 3000};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        snprintf(dir, sizeof dir, "%s/thread%zu", tmp, batches[i]);
        char *B = process_into(dir, ev, n, batches[i], 0, &b);
        if (strcmp(A, B) != 0)
            fprintf(stderr, "  batch %zu: dumps differ\n", batches[i]);
        ASSERT(strcmp(A, B) == 0);
        ASSERT_EQ(b.applied, a.applied);
        ASSERT_EQ(b.noop, a.noop);
        ASSERT_EQ(b.refused, a.refused);
        ASSERT_EQ(b.skipped, a.skipped);
        ASSERT_EQ(b.dead, a.dead);
        free(B);
    }
    free(A);
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

/*
** Chunks the decoder claimed ahead are only claimed, not acked: a processor
** closed after one step of a full batch, or one whose index fills up in the
** middle of the stream (every later step fails), loses nothing and applies
** nothing twice.
*/
TEST(chunks_decoded_ahead_lose_nothing)
{
    pfx x;
    const char *tmp = TEST_TMPDIR();
    ASSERT_OK(pfx_open(&x, tmp));
    ASSERT_OK(queue_many_posts(&x));
    /* Closed with up to four chunks decoded ahead of the step. */
    x.cfg.batch = 200;
    ASSERT_OK(pfx_start(&x));
    size_t n;
    ASSERT_OK(mdw_processor_step(x.p, &n));
    ASSERT_EQ(n, 200);
    mdw_processor_close(x.p);
    x.p = NULL;
    ASSERT_EQ(qdepth(x.q), 2801);
    /* An index that fills up mid-stream, with chunks decoded ahead of each failed batch. */
    mdw_index *small = NULL;
    ASSERT_OK(reopen_small(&x, tmp, 512u << 10, &small));
    int rc = 0, steps = 0;
    while (steps < 100 && (rc = mdw_processor_step(x.p, &n)) == 0 && n)
        steps++;
    ASSERT_EQ(rc, MDW_EFULL);
    ASSERT(steps >= 1); /* some batches committed before the map filled */
    size_t depth = qdepth(x.q);
    ASSERT(depth < 2801 && depth > 0);
    ASSERT_EQ(mdw_processor_step(x.p, &n), MDW_EFULL); /* again from the queue's head */
    ASSERT_EQ(qdepth(x.q), depth);
    dead_seen d = {0};
    ASSERT_OK(mdw_queue_dead_list(x.q, on_dead, &d));
    ASSERT_EQ(d.n, 0);
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    uint64_t applied = st.applied;
    ASSERT_OK(reopen_small(&x, tmp, 64u << 20, &small));
    ASSERT_OK(pfx_drain(&x));
    ASSERT_EQ(qdepth(x.q), 0);
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(applied + st.applied + st.replayed, 2801); /* each event once */
    mdw_index_stats is;
    ASSERT_OK(mdw_index_stats_get(small, &is));
    ASSERT_EQ(is.posts, 2801); /* the config and 199 posts went to the first index */
    mdw_processor_close(x.p);
    x.p = NULL;
    mdw_index_close(small);
    pfx_close(&x);
}

/*
** Swaps the value under uri's records key with *saved (a value no decoder
** accepts the first time): called twice, it damages the record, then puts
** it back.
*/
static int swap_record(mdw_index *ix, const char *uri, mdw_buf *saved)
{
    uint8_t key[MDW_IX_RK], junk[5] = {IX_KIND_POST, IX_STATE_LIVE, 0xff, 0xff, 0xff};
    mdw_ix_rec_key(uri, key);
    MDB_txn *txn;
    int rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {sizeof key, key}, old;
    if (!(rc = mdb_get(txn, ix->dbi[IX_RECORDS], &k, &old))) {
        mdw_buf prev;
        mdw_buf_init(&prev, 1 << 20);
        mdw_buf_append(&prev, old.mv_data, old.mv_size);
        MDB_val v = saved->len ? (MDB_val){saved->len, saved->data} : (MDB_val){sizeof junk, junk};
        rc = mdb_put(txn, ix->dbi[IX_RECORDS], &k, &v, 0);
        mdw_buf_release(saved);
        *saved = prev;
    }
    return rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
}

/*
** A batch that fails is tried again first: the chunks the decoder claimed
** past it are dropped, so later events do not overtake it (under steady
** traffic they would keep doing so, and the failed events would wait
** indefinitely). Once the cause is gone the whole stream is applied once.
*/
TEST(failed_batch_retried_before_later_events)
{
    pfx x;
    ASSERT_OK(pfx_open(&x, TEST_TMPDIR()));
    fx *f = &x.f;
    f->capturing = 1;
    char curi[URI_MAX], first[URI_MAX];
    fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL);
    fx_post(f, OWNER, "#atr_" TAG, first, sizeof first);
    for (int i = 0; i < 148; i++)
        fx_post(f, OWNER, "#atr_" TAG, NULL, 0);
    fx_delete(f, first); /* event 151: in the second batch */
    for (int i = 0; i < 300; i++)
        fx_post(f, OWNER, "#atr_" TAG, NULL, 0);
    ASSERT_OK(pfx_flush(&x));
    x.cfg.batch = 100;
    ASSERT_OK(pfx_start(&x));
    size_t n;
    ASSERT_OK(mdw_processor_step(x.p, &n));
    ASSERT_EQ(n, 100);
    mdw_buf saved;
    mdw_buf_init(&saved, 1 << 20);
    ASSERT_OK(swap_record(f->ix, first, &saved));
    ASSERT_EQ(mdw_processor_step(x.p, &n), MDW_ECORRUPT);
    ASSERT_EQ(qdepth(x.q), 351);
    ASSERT_EQ(mdw_processor_step(x.p, &n), MDW_ECORRUPT); /* the same batch, not the next */
    ASSERT_EQ(qdepth(x.q), 351);
    ASSERT_OK(swap_record(f->ix, first, &saved));
    mdw_buf_release(&saved);
    ASSERT_OK(pfx_drain(&x));
    ASSERT_EQ(qdepth(x.q), 0);
    mdw_processor_stats st;
    mdw_processor_stats_get(x.p, &st);
    ASSERT_EQ(st.applied, 451);
    ASSERT_EQ(st.dead, 0);
    mdw_index_stats is;
    ASSERT_OK(mdw_index_stats_get(f->ix, &is));
    ASSERT_EQ(is.posts, 448); /* 449 posts, one deleted */
    pfx_close(&x);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_OFF);
    RUN(queue_to_feed);
    RUN(invalid_records_refused_and_counted);
    RUN(posts_validated_by_their_lexicon);
    RUN(malformed_events_go_to_dead_letters);
    RUN(crash_between_commit_and_ack_not_applied_twice);
    RUN(one_processor_per_data_dir);
    RUN(thread_woken_by_append_and_stops);
    RUN(retention_swept_periodically);
    RUN(real_jetstream_events_decode);
    RUN(index_full_keeps_events);
    RUN(batch_spans_several_claims_one_transaction);
    RUN(decoder_thread_same_index_as_inline);
    RUN(chunks_decoded_ahead_lose_nothing);
    RUN(failed_batch_retried_before_later_events);
    return TEST_REPORT();
}
