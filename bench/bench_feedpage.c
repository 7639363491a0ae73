/*
** bench/bench_feedpage.c — one getFeedSkeleton page inside the process, no
** sockets: `mdw_xrpc_serve` (query parsing, the index read, the JSON body)
** over 200 cursors spread across a 100,000-post community, beside a bare
** LMDB walk of the same pages (begin a read transaction, position a cursor,
** step back 50 times touching every value, abort); then both again with the
** caches evicted before each request (closer to a server whose core also
** runs wrk and the kernel: what the index read costs there). Both on one thread,
** timed in CPU seconds, so the figure is the read path's own cost whatever
** else runs on the machine; bench/bench_feed.sh measures the served rate.
**
** The index is filled by tests/tools/feedgen_fill (the processor's real
** write path), found through $TOOLS (set by bench/run.sh) or build/tools.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "common/atname.h"
#include "common/log.h"
#include "common/mem.h"
#include "feedgen/xrpc.h"
#include "index/index_impl.h"
#include "common/banned.h"

#define OWNER "did:plc:benchfeedowner000000000"
#define ID    "be11c4ed"
#define FEED_Q                                                                                     \
    "feed=at%3A%2F%2F"                                                                             \
    "did%3Aplc%3Abenchfeedowner000000000"                                                          \
    "%2Fapp.bsky.feed.generator%2F" ID
#define POSTS  100000
#define LIMIT  50
#define NCUR   201
#define ROUNDS 100000

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The bare LMDB walk of one page: begin, position, LIMIT steps back touching every value, abort. */
static int bare_walk(mdw_index *ix, const uint8_t *key, uint64_t *touch, size_t *walked)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    mdb_cursor_open(txn, ix->dbi[IX_FEED], &cur);
    MDB_val k = {MDW_IX_H + 8 + MDW_IX_H, (void *)key}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    r = r == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    for (int n = 0; r == 0 && n < LIMIT; n++) {
        const uint8_t *p = v.mv_data;
        for (size_t j = 0; j < v.mv_size; j += 64) /* every cache line of the value */
            *touch += p[j];
        *touch += p[v.mv_size - 1];
        (*walked)++;
        r = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return 0;
}

/*
** Caches evicted between requests (a server's state after wrk and the kernel
** ran on its core): a buffer written through before each request, outside
** the timed part; 1 MiB by default (about this machine's L2; measured:
** 512 KiB, 1, 2, 8 MiB give 4.3, 8.5, 9.0, 11.3 us per served page), or
** BENCH_EVICT_KIB. Each request timed alone (CLOCK_THREAD_CPUTIME_ID around
** it; the clock's own cost, ~0.1 us, is in both sides alike).
*/
#define COLD_ROUNDS 2000
#define EVICT_BYTES (16u << 20) /* the most BENCH_EVICT_KIB may ask for */

static size_t evict_bytes = 1u << 20;

static void evict(uint8_t *buf)
{
    static uint8_t v;
    v++;
    for (size_t i = 0; i < evict_bytes; i += 64)
        buf[i] = v;
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_WARN);
    char tmpl[] = "/tmp/meadow-bench-feedpage-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 1;
    }
    const char *tools = getenv("TOOLS") ? getenv("TOOLS") : "build/tools";
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s/feedgen_fill' '%s' --owner " OWNER " --id " ID
             " --posts %d --members 20 --step-ms 500 >/dev/null",
             tools, dir, POSTS);
    int rc = 1;
    mdw_index *ix = NULL;
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_feedpage: %s failed\n", cmd);
        goto out;
    }
    mdw_index_opts o = {.readonly = 1};
    if (mdw_index_open(&ix, dir, &o) != 0) {
        fprintf(stderr, "bench_feedpage: cannot open the index\n");
        goto out;
    }

    /* Cursors across the whole feed: every 500th post, and the first page. */
    static char cursors[NCUR][MDW_INDEX_CURSOR_MAX];
    int ncur = 1;
    cursors[0][0] = '\0';
    char c[MDW_INDEX_CURSOR_MAX] = "";
    for (;;) {
        mdw_index_page pg;
        if (mdw_index_feed_page(ix, OWNER, ID, c, 100, &pg) != 0)
            goto out;
        snprintf(c, sizeof c, "%s", pg.cursor);
        mdw_index_page_release(&pg);
        if (!c[0] || ncur == NCUR)
            break;
        static int pages;
        if (++pages % 5 == 0)
            snprintf(cursors[ncur++], MDW_INDEX_CURSOR_MAX, "%s", c);
    }

    mdw_xrpc_server s = {.service_did = "did:web:bench.invalid", .hostname = "bench.invalid"};
    mdw_feedgen_source_index(&s.source, ix);
    static char targets[NCUR][320];
    for (int i = 0; i < ncur; i++)
        snprintf(targets[i], sizeof targets[i],
                 "/xrpc/app.bsky.feed.getFeedSkeleton?%s&limit=%d%s%.63s", FEED_Q, LIMIT,
                 cursors[i][0] ? "&cursor=" : "", cursors[i]);

    /* The bare walk starts at the same positions: the decoded cursor keys. */
    static uint8_t keys[NCUR][MDW_IX_H + 8 + MDW_IX_H];
    uint8_t tag[MDW_IX_TAG];
    mdw_tag_id_parse(ID, 8, tag);
    for (int i = 0; i < ncur; i++) {
        mdw_ix_comm_key(OWNER, tag, keys[i]);
        if (cursors[i][0]) {
            int64_t sk;
            mdw_ix_cursor_decode(cursors[i], &sk, keys[i] + MDW_IX_H + 8);
            mdw_ix_put_be64(keys[i] + MDW_IX_H, mdw_ix_sk_enc(sk));
        } else {
            memset(keys[i] + MDW_IX_H, 0xff, 8 + MDW_IX_H);
        }
    }

    size_t bytes = 0, posts = 0, walked = 0;
    uint64_t touch = 0;
    double best_serve = 0, best_bare = 0;
    for (int pass = 0; pass < 3; pass++) { /* best of three: the machine is shared */
        double t0 = cpu_now();
        for (int i = 0; i < ROUNDS; i++) {
            const char *t = targets[i % ncur];
            mdw_xrpc_request q = {.verb = "GET", .target = t, .target_len = strlen(t)};
            mdw_xrpc_reply r;
            mdw_xrpc_reply_init(&r);
            if (mdw_xrpc_serve(&s, &q, &r) != 0 || r.status != 200) {
                fprintf(stderr, "bench_feedpage: status %d for %s\n", r.status, t);
                mdw_xrpc_reply_release(&r);
                goto out;
            }
            bytes += r.body.len;
            posts += r.posts;
            mdw_xrpc_reply_release(&r);
        }
        double serve = ROUNDS / (cpu_now() - t0);

        t0 = cpu_now();
        for (int i = 0; i < ROUNDS; i++)
            if (bare_walk(ix, keys[i % ncur], &touch, &walked) != 0)
                goto out;
        double bare = ROUNDS / (cpu_now() - t0);
        if (serve > best_serve)
            best_serve = serve;
        if (bare > best_bare)
            best_bare = bare;
    }
    /* The same two, with cold caches. */
    if (getenv("BENCH_EVICT_KIB"))
        evict_bytes = (size_t)strtoul(getenv("BENCH_EVICT_KIB"), NULL, 10) * 1024;
    if (evict_bytes > EVICT_BYTES)
        evict_bytes = EVICT_BYTES;
    uint8_t *ebuf = xmalloc(EVICT_BYTES);
    double cold_serve = 0, cold_bare = 0;
    for (int i = 0; i < COLD_ROUNDS; i++) {
        const char *t = targets[(i * 37) % ncur];
        mdw_xrpc_request q = {.verb = "GET", .target = t, .target_len = strlen(t)};
        mdw_xrpc_reply r;
        mdw_xrpc_reply_init(&r);
        evict(ebuf);
        double t0 = cpu_now();
        int ok = mdw_xrpc_serve(&s, &q, &r) == 0 && r.status == 200;
        cold_serve += cpu_now() - t0;
        mdw_xrpc_reply_release(&r);
        evict(ebuf);
        t0 = cpu_now();
        ok = ok && bare_walk(ix, keys[(i * 37) % ncur], &touch, &walked) == 0;
        cold_bare += cpu_now() - t0;
        if (!ok) {
            free(ebuf);
            goto out;
        }
    }
    free(ebuf);
    printf("%d requests x 3 over %d cursors; %.0f posts and %.0f bytes per page; %zu values walked "
           "(sum %" PRIu64 ")\n",
           ROUNDS, ncur, (double)posts / (3.0 * ROUNDS), (double)bytes / (3.0 * ROUNDS), walked,
           touch);
    bench_report("feed page served in-process (limit 50)", best_serve, "pages/CPU-s",
                 "bare LMDB walk of the page", best_bare);
    bench_report("feed page in-process, caches evicted", COLD_ROUNDS / cold_serve, "pages/CPU-s",
                 "bare LMDB walk, caches evicted", COLD_ROUNDS / cold_bare);
    rc = 0;
out:
    mdw_index_close(ix);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
