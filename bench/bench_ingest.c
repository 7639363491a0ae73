/*
** bench/bench_ingest — Jetstream ingest throughput, end to end:
** tests/tools/jetstream_replay (another process, loopback TCP) -> our
** client (firehose/jetstream.c on firehose/wsclient.c: an lws RAW socket with
** our own RFC 6455 framing, firehose/wsframe.c) -> the lightweight filter ->
** batched, synced appends to a real queue (LMDB), over >= 2,000,000 events.
** Printed beside two baselines measured in the same run on the same frames:
** (a) a bare libwebsockets client (lws' own WebSocket client, as issue 4
** defines the baseline) that only counts the messages, and
** (b) a bare memmem("atr_") scan of the same bytes in memory; and, for
** information, (c) our own client's receive loop alone (firehose/wsclient.c
** with a callback that only counts: what the filter and the queue cost).
** Goals (issue 4): >= 1,000,000 events/s and >= 70% of the bare receive loop.
**
** The stream is gen_stream's synthetic mix (250,000 lines, ~600 bytes),
** served BENCH_INGEST_REPEAT times (default 10) by one server; each figure is
** the best of two rounds (one when the first took over 15 s). Bounded: each
** phase stops after PHASE_S seconds
** (then the rate over the part done is printed, marked so) and the server
** exits after 120 s.
*/
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "firehose/filter.h"
#include "firehose/ingest.h"
#include "firehose/jetstream.h"
#include "firehose/wsclient.h"
#include "queue/queue.h"
#include "common/banned.h"

#define LINES    250000
#define START_US 1779719009000000LL
#define PHASE_S  20 /* each timed phase stops here: the bench stays bounded */

static char *data;
static size_t data_len;
static size_t *off, *len_; /* served lines */
static size_t nserved, served_bytes;
static long repeat = 10;
static int port;

static int served_line(const char *p, size_t n)
{
    return memmem(p, n, "\"collection\":\"app.bsky.feed.post\"", 33) ||
           memmem(p, n, "\"collection\":\"net.atrarium.", 27) ||
           memmem(p, n, "\"kind\":\"identity\"", 17) || memmem(p, n, "\"kind\":\"account\"", 16);
}

static void load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    struct stat st;
    fstat(fileno(f), &st);
    data = xmalloc((size_t)st.st_size + 1);
    data_len = fread(data, 1, (size_t)st.st_size, f);
    fclose(f);
    off = xmalloc(LINES * 2 * sizeof *off);
    len_ = xmalloc(LINES * 2 * sizeof *len_);
    for (size_t p = 0; p < data_len;) {
        char *nl = memchr(data + p, '\n', data_len - p);
        size_t e = nl ? (size_t)(nl - data) : data_len;
        if (e > p && served_line(data + p, e - p)) {
            off[nserved] = p;
            len_[nserved++] = e - p;
            served_bytes += e - p;
        }
        p = e + 1;
    }
}

/* (b) memmem over the same message bytes, in memory. */
static double bench_memmem(uint64_t *hits)
{
    double t0 = bench_now();
    uint64_t h = 0;
    for (long r = 0; r < repeat; r++)
        for (size_t i = 0; i < nserved; i++)
            h += memmem(data + off[i], len_[i], "atr_", 4) != NULL;
    double dt = bench_now() - t0;
    *hits = h;
    return (double)nserved * (double)repeat / dt;
}

static double bench_filter_only(void)
{
    double t0 = bench_now();
    uint64_t pass = 0;
    for (long r = 0; r < repeat; r++)
        for (size_t i = 0; i < nserved; i++) {
            mdw_filter_verdict v;
            pass += mdw_filter_event(data + off[i], len_[i], &v) == MDW_FILTER_PASS;
        }
    double dt = bench_now() - t0;
    if (!pass)
        fprintf(stderr, "bench_ingest: no candidate passed?\n");
    return (double)nserved * (double)repeat / dt;
}

/* (a) bare lws client: counts complete messages, nothing else. */
static uint64_t bare_msgs;
static int bare_done, bare_fail;
static double bare_t0, bare_t1;

static int bare_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        bare_t0 = bench_now();
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_final_fragment(wsi) && ++bare_msgs == (uint64_t)nserved * (uint64_t)repeat) {
            bare_t1 = bench_now();
            bare_done = 1;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        bare_fail = 1;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols bare_protocols[] = {
    {"bare", bare_cb, 0, 256 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static double bench_bare(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = bare_protocols;
    info.pt_serv_buf_size = 256 * 1024;
    struct lws_context *ctx = lws_create_context(&info);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=net.atrarium.*";
    ci.host = ci.origin = "127.0.0.1";
    ci.local_protocol_name = "bare";
    ci.ietf_version_or_minus_one = -1;
    bare_msgs = 0;
    bare_done = bare_fail = 0;
    lws_client_connect_via_info(&ci);
    double deadline = bench_now() + PHASE_S;
    while (!bare_done && !bare_fail && bench_now() < deadline)
        lws_service(ctx, 0);
    double tp = bench_now();
    lws_context_destroy(ctx);
    if (!bare_done) {
        printf("(bare receive: %llu of %zu messages in %d s, stopped there: rate from that part)\n",
               (unsigned long long)bare_msgs, nserved * (size_t)repeat, PHASE_S);
        return bare_t0 > 0 ? (double)bare_msgs / (tp - bare_t0) : 0;
    }
    return (double)bare_msgs / (bare_t1 - bare_t0);
}

/* (c) our client (lws raw socket + wsframe) with a callback that only counts. */
static _Atomic uint64_t own_msgs;
static double own_t0, own_t1;
static mdw_wsclient *own_ws;

static int own_path(void *ctx, const char *rest, char *path, size_t size, int64_t *cursor)
{
    snprintf(path, size,
             "/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=net.atrarium.*");
    *cursor = 0;
    return 0;
}

static void own_msg(void *ctx, const char *d, size_t n)
{
    uint64_t k = ++own_msgs;
    if (k == 1)
        own_t0 = bench_now();
    if (k == (uint64_t)nserved * (uint64_t)repeat) {
        own_t1 = bench_now();
        mdw_wsclient_request_stop(own_ws);
    }
}

static void own_oversize(void *ctx, const char *head, size_t n)
{
}

static void *run_own(void *arg)
{
    mdw_wsclient_run(arg);
    return NULL;
}

static double bench_own(const char *dir)
{
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/queue-own", dir);
    mdw_queue_opts qo;
    mdw_queue_opts_default(&qo);
    mdw_queue *q;
    if (mdw_queue_open(&q, qdir, &qo))
        return 0;
    mdw_ingest_opts io;
    mdw_ingest_opts_default(&io, MDW_SOURCE_JETSTREAM, "bench-own");
    mdw_ingest *in; /* receives nothing: the client needs one for backpressure and ticks */
    mdw_ingest_new(&in, q, mdw_clock_real(), &io);
    char url[100];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/subscribe", port);
    const char *urls[1] = {url};
    mdw_wsclient_opts o = {
        .name = "bench",
        .bad_url_msg = "bad url",
        .urls = urls,
        .nurls = 1,
        .watchdog_us = 30000000,
        .backoff_min_us = 100000,
        .backoff_max_us = 1000000,
        .max_msg = 2u * 1024 * 1024,
        .request_path = own_path,
        .on_message = own_msg,
        .on_oversize = own_oversize,
    };
    own_msgs = 0;
    own_t0 = own_t1 = 0;
    double r = 0;
    if (mdw_wsclient_new(&own_ws, &o, in, mdw_clock_real()) == 0) {
        pthread_t th;
        double t0 = bench_now();
        pthread_create(&th, NULL, run_own, own_ws);
        while (own_t1 == 0 && bench_now() < t0 + PHASE_S)
            usleep(1000);
        mdw_wsclient_request_stop(own_ws);
        pthread_join(th, NULL);
        mdw_wsclient_free(own_ws);
        if (own_t1 > 0)
            r = (double)own_msgs / (own_t1 - own_t0);
        else if (own_t0 > 0)
            r = (double)own_msgs / (bench_now() - own_t0);
    }
    mdw_ingest_free(in);
    mdw_queue_close(q);
    return r;
}

/* The full pipeline in a thread; the main thread watches the byte counter. */
static uint64_t filter_total(void)
{
    uint64_t n = 0;
    for (int r = 0; r < MDW_FILTER_NREASONS; r++)
        n += mdw_filter_counter_value((mdw_filter_reason)r);
    return n;
}

static void *run_js(void *arg)
{
    mdw_jetstream_run(arg);
    return NULL;
}

static double bench_full(const char *dir, int round, mdw_ingest_stats *st_out)
{
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/queue%d", dir, round);
    mdw_queue_opts qo;
    mdw_queue_opts_default(&qo);
    mdw_queue *q;
    if (mdw_queue_open(&q, qdir, &qo)) {
        fprintf(stderr, "bench_ingest: queue open failed\n");
        return 0;
    }
    mdw_ingest_opts io;
    mdw_ingest_opts_default(&io, MDW_SOURCE_JETSTREAM, "bench");
    io.async = 1;
    mdw_ingest *in;
    mdw_ingest_new(&in, q, mdw_clock_real(), &io);
    mdw_jetstream_opts jo;
    memset(&jo, 0, sizeof jo);
    char url[100];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/subscribe", port);
    jo.urls[0] = url;
    jo.nurls = 1;
    jo.rewind_us = 5000000;
    jo.watchdog_us = 30000000;
    jo.backoff_min_us = 100000;
    jo.backoff_max_us = 1000000;
    mdw_jetstream *js;
    if (mdw_jetstream_new(&js, &jo, in, mdw_clock_real())) {
        fprintf(stderr, "bench_ingest: client init failed\n");
        return 0;
    }
    int64_t b0 = mdw_metrics_counter_value("meadow_firehose_bytes_total", NULL);
    int64_t want = (int64_t)served_bytes * repeat;
    uint64_t e0 = filter_total();
    pthread_t th;
    double t0 = bench_now();
    pthread_create(&th, NULL, run_js, js);
    double deadline = t0 + PHASE_S, t1 = 0;
    while (bench_now() < deadline) {
        if (mdw_metrics_counter_value("meadow_firehose_bytes_total", NULL) - b0 >= want) {
            t1 = bench_now();
            break;
        }
        usleep(200);
    }
    uint64_t partial = filter_total() - e0;
    double tp = bench_now();
    mdw_jetstream_request_stop(js);
    pthread_join(th, NULL);
    mdw_ingest_stats_get(in, st_out);
    mdw_jetstream_free(js);
    mdw_ingest_free(in);
    mdw_queue_close(q);
    if (!t1) {
        printf("(full pipeline: %llu events in %d s, stopped there: rate from that part)\n",
               (unsigned long long)partial, PHASE_S);
        return (double)partial / (tp - t0);
    }
    return (double)nserved * (double)repeat / (t1 - t0);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_WARN);
    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *tools = getenv("TOOLS") ? getenv("TOOLS") : "build/tools";
    const char *rep = getenv("BENCH_INGEST_REPEAT");
    if (rep)
        repeat = strtol(rep, NULL, 10);
    char dir[] = "/tmp/meadow-bench-ingest-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char *cmd = xasprintf("'%s/gen_stream' --start-us %lld --count %d --seed 5 > '%s/s.jsonl'",
                          tools, (long long)START_US, LINES, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_ingest: gen_stream failed (%s)\n", cmd);
        return 1;
    }
    free(cmd);
    char *file = xasprintf("%s/s.jsonl", dir);
    load(file);

    int pfd[2];
    if (pipe(pfd)) {
        perror("pipe");
        return 1;
    }
    pid_t srv = fork();
    if (srv == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        char *bin = xasprintf("%s/jetstream_replay", tools);
        char reps[32];
        snprintf(reps, sizeof reps, "%ld", repeat);
        execl(bin, bin, "--file", file, "--repeat", reps, "--quiet", "--max-seconds", "120",
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[64] = {0};
    ssize_t n = read(pfd[0], buf, sizeof buf - 1);
    if (n <= 0 || sscanf(buf, "port=%d", &port) != 1) {
        fprintf(stderr, "bench_ingest: replay server did not start\n");
        return 1;
    }

    printf("stream: %zu messages x %ld = %zu events, %.0f bytes/event (replay server in another "
           "process)\n",
           nserved, repeat, nserved * (size_t)repeat, (double)served_bytes / (double)nserved);
    uint64_t hits;
    double mm = bench_memmem(&hits), mm2 = bench_memmem(&hits);
    if (mm2 > mm)
        mm = mm2;
    double flt = bench_filter_only();
    double bare = 0, full = 0, own = 0;
    mdw_ingest_stats st = {0};
    double started = bench_now();
    for (int round = 0; round < 2; round++) {
        if (round == 1 && bench_now() - started > 15)
            break; /* a slow (busy) machine: one round keeps the bench under a minute */
        double b = bench_bare();
        double o = bench_own(dir);
        double f = bench_full(dir, round, &st);
        if (b > bare)
            bare = b;
        if (o > own)
            own = o;
        if (f > full)
            full = f;
    }
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);

    bench_report("ingest: replay -> wsframe -> filter -> queue", full, "events/s",
                 "bare lws ws client receive", bare);
    bench_report("ingest: replay -> wsframe -> filter -> queue", full, "events/s",
                 "memmem scan, in memory", mm);
    bench_report("ingest: replay -> wsframe -> filter -> queue", full, "events/s",
                 "bare receive, our client (wsframe)", own);
    bench_report("filter alone, in memory", flt, "events/s", "memmem scan, in memory", mm);
    printf("last full run: %llu events, %llu candidates, %llu batches appended (synced)\n",
           (unsigned long long)st.events, (unsigned long long)st.candidates,
           (unsigned long long)st.batches);
    printf("goals: >= 1000000 events/s: %s; >= 70%% of bare receive: %s (%.0f%%)\n",
           full >= 1e6 ? "met" : "NOT met", full >= 0.7 * bare ? "met" : "NOT met",
           bare > 0 ? 100.0 * full / bare : 0.0);
    cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_ingest: could not remove %s\n", dir);
    free(cmd);
    free(file);
    free(data);
    free(off);
    free(len_);
    return full > 0 && bare > 0 ? 0 : 1;
}
