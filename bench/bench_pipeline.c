/*
** bench/bench_pipeline — post-to-feed latency of the whole pipeline.
**
** This process is the Jetstream server (libwebsockets, 127.0.0.1, its own
** thread) and the AppView (libcurl, one keep-alive connection). It starts
** `meadow serve` ($MEADOW, default build/meadow) on a fresh data directory
** and a free port, subscribed to itself. Then, BENCH_PIPELINE_POSTS times
** (default 200): a post tagged for a community, stamped now, is sent as one
** WebSocket message; the clock starts when lws_write() has handed it to the
** socket and stops when getFeedSkeleton (limit 1, polled back to back)
** returns it. The path measured: firehose read + filter + queue commit
** (fsync) + processor wake-up + index commit (fsync) + HTTP read.
**
** Baseline, same run, same connection: the round trip of the same
** getFeedSkeleton request once the post is visible (what one poll costs, so
** also the resolution of the measurement). Goals (issue 6): p50 < 20 ms,
** p99 < 100 ms.
*/
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/mem.h"
#include "common/banned.h"

#define OWNER "did:plc:benchpipelineownerxxxxx"
#define TAG   "be11a7e0"
#define CID   "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct lws *client;     /* meadow's connection */
static unsigned char *pending; /* LWS_PRE + message, NULL when none */
static size_t pending_len;
static double sent_at; /* bench_now() after lws_write */
static int sent_flag;
static volatile int stop_lws;
static struct lws_context *ctx;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void tid(int64_t us, unsigned clk, char out[14])
{
    static const char a[] = "234567abcdefghijklmnopqrstuvwxyz";
    uint64_t v = ((uint64_t)us << 10 | (clk & 1023)) & 0x7fffffffffffffffULL;
    for (int i = 12; i >= 0; i--) {
        out[i] = a[v & 31];
        v >>= 5;
    }
    out[13] = '\0';
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        pthread_mutex_lock(&mu);
        client = wsi;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        break;
    case LWS_CALLBACK_CLOSED:
        pthread_mutex_lock(&mu);
        if (client == wsi)
            client = NULL;
        pthread_mutex_unlock(&mu);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        pthread_mutex_lock(&mu);
        if (client && pending)
            lws_callback_on_writable(client);
        pthread_mutex_unlock(&mu);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        pthread_mutex_lock(&mu);
        if (pending && wsi == client) {
            int w = lws_write(wsi, pending + LWS_PRE, pending_len, LWS_WRITE_TEXT);
            sent_at = bench_now();
            free(pending);
            pending = NULL;
            sent_flag = w < 0 ? -1 : 1;
            pthread_cond_broadcast(&cv);
        }
        pthread_mutex_unlock(&mu);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"jetstream", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *lws_thread(void *arg)
{
    (void)arg;
    while (!stop_lws)
        if (lws_service(ctx, 0) < 0)
            break;
    return NULL;
}

/* Sends one message to meadow; returns the time it was written, or < 0. */
static double send_event(const char *json)
{
    size_t n = strlen(json);
    unsigned char *p = xmalloc(LWS_PRE + n);
    memcpy(p + LWS_PRE, json, n);
    pthread_mutex_lock(&mu);
    pending = p;
    pending_len = n;
    sent_flag = 0;
    pthread_mutex_unlock(&mu);
    lws_cancel_service(ctx);
    pthread_mutex_lock(&mu);
    while (!sent_flag) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
            break;
    }
    double t = sent_flag > 0 ? sent_at : -1;
    pthread_mutex_unlock(&mu);
    return t;
}

static int64_t ev_us;
static void commit_json(mdw_buf *b, const char *coll, const char *rkey, const char *record)
{
    int64_t now = wall_us();
    ev_us = now > ev_us ? now : ev_us + 1;
    char rev[14];
    tid(ev_us, 7, rev);
    mdw_buf_reset(b);
    mdw_buf_printf(b,
                   "{\"did\":\"" OWNER "\",\"time_us\":%" PRId64
                   ",\"kind\":\"commit\",\"commit\":{\"rev\":\"%s\",\"operation\":\"create\","
                   "\"collection\":\"%s\",\"rkey\":\"%s\",\"record\":%s,\"cid\":\"" CID "\"}}",
                   ev_us, rev, coll, rkey, record);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    mdw_buf_append(ud, p, sz * n);
    return sz * n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
        getsockname(s, (struct sockaddr *)&a, &l)) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

int main(void)
{
    const char *meadow = getenv("MEADOW") ? getenv("MEADOW") : "build/meadow";
    long nposts =
        getenv("BENCH_PIPELINE_POSTS") ? strtol(getenv("BENCH_PIPELINE_POSTS"), NULL, 10) : 200;
    if (nposts < 10 || nposts > 100000)
        nposts = 200;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/meadow-bench-pipeline-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "bench_pipeline: lws_create_context failed\n");
        return 1;
    }
    int wsport = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default"));
    pthread_t th;
    pthread_create(&th, NULL, lws_thread, NULL);

    int hport = free_port();
    char a_data[600], a_port[16], a_url[128], logpath[600];
    snprintf(a_data, sizeof a_data, "%s/data", dir);
    snprintf(a_port, sizeof a_port, "%d", hport);
    snprintf(a_url, sizeof a_url, "ws://127.0.0.1:%d/subscribe", wsport);
    snprintf(logpath, sizeof logpath, "%s/serve.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(logpath, "w", stderr);
        (void)lf;
        execl(meadow, meadow, "serve", "--data", a_data, "--port", a_port, "--jetstream_urls",
              a_url, "--log_level", "warn", "--index_map_mb", "256", "--queue_map_mb", "256",
              (char *)NULL);
        _exit(127);
    }

    int status = 1;
    CURL *h = curl_easy_init();
    mdw_buf body = MDW_BUF_INIT(1 << 20);
    mdw_buf ev = MDW_BUF_INIT(1 << 16);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    char feed_url[512];
    snprintf(feed_url, sizeof feed_url,
             "http://127.0.0.1:%d/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://" OWNER
             "/app.bsky.feed.generator/" TAG "&limit=1",
             hport);
    curl_easy_setopt(h, CURLOPT_URL, feed_url);
    double *lat = xcalloc((size_t)nposts, sizeof *lat);
    double *rtt = xcalloc((size_t)nposts * 5, sizeof *rtt);
    size_t nlat = 0, nrtt = 0;

    /* meadow connected to us? */
    pthread_mutex_lock(&mu);
    for (int i = 0; !client && i < 30; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    int connected = client != NULL;
    pthread_mutex_unlock(&mu);
    if (!connected) {
        fprintf(stderr, "bench_pipeline: meadow serve did not connect (log: %s)\n", logpath);
        goto out;
    }

    /* the community */
    char rk[14], iso[40], rec[1024];
    int64_t now = wall_us();
    tid(now, 3, rk);
    mdw_time_format(now, iso, sizeof iso);
    snprintf(
        rec, sizeof rec,
        "{\"$type\":\"net.atrarium.community.config\",\"name\":\"bench\",\"hashtag\":\"#atr_" TAG
        "\",\"stage\":\"theme\",\"createdAt\":\"%s\"}",
        iso);
    commit_json(&ev, "net.atrarium.community.config", rk, rec);
    if (send_event(ev.data) < 0)
        goto out;
    double t_end = bench_now() + 20;
    for (;;) {
        mdw_buf_reset(&body);
        if (curl_easy_perform(h) == CURLE_OK && body.len && !strstr(body.data, "\"error\""))
            break;
        if (bench_now() > t_end) {
            fprintf(stderr, "bench_pipeline: the community never appeared (log: %s)\n", logpath);
            goto out;
        }
        usleep(2000);
    }

    double bench_start = bench_now();
    for (long i = 0; i < nposts; i++) {
        now = wall_us();
        tid(now, 3, rk);
        mdw_time_format(now, iso, sizeof iso);
        snprintf(rec, sizeof rec,
                 "{\"$type\":\"app.bsky.feed.post\",\"text\":\"latency %ld #atr_" TAG
                 "\",\"createdAt\":\"%s\"}",
                 i, iso);
        commit_json(&ev, "app.bsky.feed.post", rk, rec);
        char uri[128];
        snprintf(uri, sizeof uri, "\"at://" OWNER "/app.bsky.feed.post/%s\"", rk);
        double t0 = send_event(ev.data);
        if (t0 < 0) {
            fprintf(stderr, "bench_pipeline: send failed\n");
            goto out;
        }
        double deadline = t0 + 10, t1;
        for (;;) {
            mdw_buf_reset(&body);
            CURLcode cc = curl_easy_perform(h);
            t1 = bench_now();
            if (cc == CURLE_OK && body.len && strstr(body.data, uri))
                break;
            if (t1 > deadline) {
                fprintf(stderr, "bench_pipeline: post %ld not visible after 10 s\n", i);
                goto out;
            }
        }
        lat[nlat++] = t1 - t0;
        /* baseline: the same request, the post already visible */
        for (int k = 0; k < 5; k++) {
            double r0 = bench_now();
            mdw_buf_reset(&body);
            if (curl_easy_perform(h) == CURLE_OK && strstr(body.data, uri))
                rtt[nrtt++] = bench_now() - r0;
        }
        usleep(1000 + (useconds_t)(i * 7919 % 9000)); /* spread the sends: 1-10 ms gaps */
        if (bench_now() - bench_start > 45) {
            fprintf(stderr, "bench_pipeline: stopping after 45 s (%zu posts)\n", nlat);
            break;
        }
    }
    if (nlat < 10 || nrtt < 10)
        goto out;
    double l50 = pct(lat, nlat, 0.50) * 1e6, l99 = pct(lat, nlat, 0.99) * 1e6,
           lmax = lat[nlat - 1] * 1e6;
    double r50 = pct(rtt, nrtt, 0.50) * 1e6, r99 = pct(rtt, nrtt, 0.99) * 1e6;
    printf("%zu posts sent one at a time by the in-process Jetstream server to meadow serve; "
           "%zu baseline requests\n",
           nlat, nrtt);
    bench_report("post-to-feed latency p50", l50, "us", "getFeedSkeleton round trip p50", r50);
    bench_report("post-to-feed latency p99", l99, "us", "getFeedSkeleton round trip p99", r99);
    printf("post-to-feed latency max %.0f us\n", lmax);
    printf("goal p50 < 20 ms: %s; goal p99 < 100 ms: %s\n", l50 < 20000 ? "met" : "NOT met",
           l99 < 100000 ? "met" : "NOT met");
    /* where the time goes: the processor's own per-batch histogram (index transaction) */
    char murl[128];
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d/metrics", hport);
    curl_easy_setopt(h, CURLOPT_URL, murl);
    mdw_buf_reset(&body);
    if (curl_easy_perform(h) == CURLE_OK && body.len) {
        printf("meadow_processor_batch_seconds (cumulative buckets):");
        for (const char *p = body.data; (p = strstr(p, "meadow_processor_batch_seconds_")); p++) {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            const char *le = strstr(p, "le=\"");
            if (le && le < p + len)
                printf(" %.*s", (int)(p + len - le), le);
            else if (!strncmp(p, "meadow_processor_batch_seconds_sum", 34) ||
                     !strncmp(p, "meadow_processor_batch_seconds_count", 36))
                printf(" %.*s", len - 31, p + 31);
        }
        printf("\n");
    }
    status = 0;

out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_pipeline: meadow serve exit status %d\n", st);
            status = 1;
        }
    }
    stop_lws = 1;
    lws_cancel_service(ctx);
    pthread_join(th, NULL);
    lws_context_destroy(ctx);
    curl_easy_cleanup(h);
    mdw_buf_release(&body);
    mdw_buf_release(&ev);
    free(lat);
    free(rtt);
    if (status == 0 || !getenv("BENCH_KEEP_TMP"))
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
