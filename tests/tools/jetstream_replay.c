/*
** tests/tools/jetstream_replay — a libwebsockets server on 127.0.0.1 that
** serves a JSONL file the way Jetstream's /subscribe does, for integration
** tests and the ingest benchmark.
**
**   jetstream_replay --file F [--port P] [--drop-after K] [--pause-after K
**       --pause-ms M] [--garbage-every K] [--fragment-every K] [--forget N]
**       [--repeat R] [--rate EPS] [--max-seconds S] [--tls-cert C --tls-key K]
**       [--ping-every K] [--bad-frame-after K] [--quiet]
**
** Serving: events in file order (time_us may step back, as in real streams).
** `cursor=T` selects the events with time_us >= T. `wantedCollections`
** (repeatable) keeps commits whose collection equals one of them or, for a
** value ending in `.*`, starts with its prefix; identity and account events
** are always sent; no wantedCollections = everything. A line that does not
** parse is sent as it is, whatever the filters (the file can carry garbage).
** At the end of the file the connection stays open and silent, like a live
** tail with nothing new.
**
** Test knobs: --drop-after K closes every connection after K events;
** --pause-after K --pause-ms M stops sending for M ms after K events (once
** per connection); --garbage-every K sends a garbage frame after every K
** events (rotating: not JSON, no time_us, truncated JSON, a binary frame, and
** every 8th an oversized 2 MiB+ text frame); --fragment-every K splits every
** Kth message into three WebSocket frames (text + continuations); --forget N
** pretends the first N lines aged out of the server's window: when a cursor
** is given they are never sent (Jetstream clamps old cursors silently);
** --repeat R serves the file R times (benchmarks); --rate EPS paces each
** connection to EPS events per second; --tls-cert/--tls-key serve wss:// (lws
** server TLS; the frames then go through lws_write(LWS_WRITE_RAW), which
** encrypts); --ping-every K sends a ping after every K events (pongs are
** logged: "replay: pong"); --bad-frame-after K sends, once in the server's
** life, a frame with the RSV1 bit set after K events of a connection (a
** protocol error for a client that negotiated no extension). The server exits on
** SIGTERM/SIGINT or after --max-seconds (default 600): it is bounded.
**
** It prints "port=<n>" on stdout once listening. Frames are encoded here
** (server frames are unmasked) and written with send() in large chunks from
** LWS_CALLBACK_SERVER_WRITEABLE, after lws has finished the handshake; lws
** owns the connection otherwise (upgrade, close, pings).
*/
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/banned.h"

enum { CLS_COMMIT = 0, CLS_ALWAYS = 1, CLS_RAW = 2 };

typedef struct line {
    size_t off;
    uint32_t len;
    uint8_t cls;
    int64_t time_us;
    char *coll; /* commits only */
} line;

static char *file_data;
static line *lines;
static size_t nlines;

static long drop_after, pause_after, pause_ms, garbage_every, fragment_every, forget_n;
static long ping_every, bad_frame_after;
static int bad_frame_sent;
static long repeat = 1, max_seconds = 600, rate;
static int quiet;
static const char *tls_cert, *tls_key;
static volatile sig_atomic_t stopping;

#define OUT_CAP     (256 * 1024)
#define MAX_WANT    16
#define SEND_BUDGET (8u * 1024 * 1024)

typedef struct conn {
    char *want[MAX_WANT];
    int nwant;
    int has_cursor;
    int64_t cursor;
    long rep;
    size_t idx;
    long sent, garbage_sent;
    int paused_once, paused, throttled;
    int64_t start_us;
    unsigned char *out;
    size_t out_len, out_off, out_cap;
} conn;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void load_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "jetstream_replay: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    file_data = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, file_data + got, (size_t)st.st_size - got);
        if (r <= 0) {
            fprintf(stderr, "jetstream_replay: read %s failed\n", path);
            exit(2);
        }
        got += (size_t)r;
    }
    close(fd);
    file_data[got] = '\0';
    size_t cap = 1024;
    lines = xmalloc(cap * sizeof *lines);
    for (size_t p = 0; p < got;) {
        char *nl = memchr(file_data + p, '\n', got - p);
        size_t end = nl ? (size_t)(nl - file_data) : got;
        if (end > p) {
            if (nlines == cap) {
                cap *= 2;
                lines = xrealloc(lines, cap * sizeof *lines);
            }
            line *l = &lines[nlines++];
            memset(l, 0, sizeof *l);
            l->off = p;
            l->len = (uint32_t)(end - p);
            l->cls = CLS_RAW;
            cJSON *j = cJSON_ParseWithLength(file_data + p, end - p);
            cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "time_us") : NULL;
            const char *kind =
                j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind")) : NULL;
            if (cJSON_IsNumber(t) && kind) {
                l->time_us = (int64_t)t->valuedouble;
                if (!strcmp(kind, "commit")) {
                    cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "commit");
                    const char *coll =
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "collection"));
                    if (coll) {
                        l->cls = CLS_COMMIT;
                        l->coll = xstrdup(coll);
                    }
                } else {
                    l->cls = CLS_ALWAYS;
                }
            }
            cJSON_Delete(j);
        }
        p = end + 1;
    }
}

static int wanted(const conn *c, const line *l)
{
    if (l->cls == CLS_RAW)
        return 1;
    if (c->has_cursor && l->time_us < c->cursor)
        return 0;
    if (l->cls == CLS_ALWAYS || c->nwant == 0)
        return 1;
    for (int i = 0; i < c->nwant; i++) {
        size_t n = strlen(c->want[i]);
        if (n >= 2 && c->want[i][n - 1] == '*' && c->want[i][n - 2] == '.') {
            if (!strncmp(l->coll, c->want[i], n - 1))
                return 1;
        } else if (!strcmp(l->coll, c->want[i])) {
            return 1;
        }
    }
    return 0;
}

static void out_reserve(conn *c, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        while (c->out_len + n > c->out_cap)
            c->out_cap = c->out_cap ? c->out_cap * 2 : OUT_CAP;
        c->out = xrealloc(c->out, c->out_cap);
    }
}

static void put_frame(conn *c, int opcode, int fin, const void *p, size_t n)
{
    out_reserve(c, n + 10);
    unsigned char *h = c->out + c->out_len;
    h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    size_t hl;
    if (n < 126) {
        h[1] = (unsigned char)n;
        hl = 2;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, p, n);
    c->out_len += hl + n;
}

static void put_message(conn *c, const char *p, size_t n, long seqno)
{
    if (fragment_every > 0 && n >= 3 && seqno % fragment_every == 0) {
        size_t a = n / 3, b = n / 3;
        put_frame(c, 0x1, 0, p, a);
        put_frame(c, 0x0, 0, p + a, b);
        put_frame(c, 0x0, 1, p + a + b, n - a - b);
        return;
    }
    put_frame(c, 0x1, 1, p, n);
}

static void put_garbage(conn *c)
{
    static const char *g[] = {"this is not json \x01\x02", "{\"kind\":\"commit\",\"did\":\"x\"}",
                              "{\"did\":\"did:plc:x\",\"time_us\":17"};
    long k = c->garbage_sent++;
    if (k % 8 == 7) {
        size_t n = 2u * 1024 * 1024 + 100;
        char *big = xmalloc(n);
        memset(big, ' ', n);
        big[0] = '{';
        big[n - 1] = '}';
        put_frame(c, 0x1, 1, big, n);
        free(big);
    } else if (k % 4 == 3) {
        put_frame(c, 0x2, 1, "\xff\x00\xfe binary", 10);
    } else {
        put_frame(c, 0x1, 1, g[k % 4], strlen(g[k % 4]));
    }
}

/* Encodes the next frames into c->out. Returns 0 when nothing is left to send now. */
static int refill(conn *c)
{
    c->out_len = c->out_off = 0;
    c->throttled = 0;
    int64_t allowed = rate > 0 ? (now_us() - c->start_us) * rate / 1000000 + 1 : INT64_MAX;
    while (c->out_len < OUT_CAP) {
        if (c->sent >= allowed) {
            c->throttled = 1;
            break;
        }
        if (drop_after > 0 && c->sent >= drop_after)
            break;
        if (pause_after > 0 && !c->paused_once && c->sent >= pause_after)
            break;
        if (c->rep >= repeat)
            break;
        if (c->idx >= nlines) {
            c->idx = 0;
            c->rep++;
            continue;
        }
        const line *l = &lines[c->idx++];
        if (c->has_cursor && c->rep == 0 && c->idx <= (size_t)forget_n)
            continue;
        if (!wanted(c, l))
            continue;
        put_message(c, file_data + l->off, l->len, c->sent);
        c->sent++;
        if (garbage_every > 0 && c->sent % garbage_every == 0)
            put_garbage(c);
        if (ping_every > 0 && c->sent % ping_every == 0)
            put_frame(c, 0x9, 1, "meadow?", 7);
        if (bad_frame_after > 0 && !bad_frame_sent && c->sent == bad_frame_after) {
            bad_frame_sent = 1;
            put_frame(c, 0x40 | 0x1, 1, "{}", 2); /* RSV1 + text: no extension agreed */
            if (!quiet)
                fprintf(stderr, "replay: bad frame sent after %ld events\n", c->sent);
        }
    }
    return c->out_len > 0;
}

static void parse_args(struct lws *wsi, conn *c)
{
    char buf[512];
    for (int i = 0; i < 64; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (!strncmp(buf, "cursor=", 7)) {
            c->has_cursor = 1;
            c->cursor = strtoll(buf + 7, NULL, 10);
        } else if (!strncmp(buf, "wantedCollections=", 18) && c->nwant < MAX_WANT) {
            c->want[c->nwant++] = xstrdup(buf + 18);
        }
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof *c);
        parse_args(wsi, c);
        c->start_us = now_us();
        if (!quiet)
            fprintf(stderr, "replay: connection cursor=%s%" PRId64 " wanted=%d\n",
                    c->has_cursor ? "" : "(none) ", c->cursor, c->nwant);
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (c->paused)
            break;
        int fd = lws_get_socket_fd(wsi);
        size_t budget = SEND_BUDGET;
        for (;;) {
            if (c->out_off == c->out_len) {
                if (drop_after > 0 && c->sent >= drop_after) {
                    if (!quiet)
                        fprintf(stderr, "replay: dropping connection after %ld events\n", c->sent);
                    return -1;
                }
                if (pause_after > 0 && !c->paused_once && c->sent >= pause_after) {
                    c->paused_once = c->paused = 1;
                    if (!quiet)
                        fprintf(stderr, "replay: paused after %ld events\n", c->sent);
                    lws_set_timer_usecs(wsi, (lws_usec_t)pause_ms * 1000);
                    return 0;
                }
                if (!refill(c)) {
                    if (c->throttled) { /* --rate: come back in 2 ms */
                        c->paused = 1;
                        lws_set_timer_usecs(wsi, 2000);
                    }
                    return 0; /* end of stream: stay open and silent */
                }
            }
            if (budget == 0) {
                lws_callback_on_writable(wsi);
                return 0;
            }
            if (tls_cert) {
                /*
                ** TLS: lws encrypts. It takes the whole chunk (keeping what
                ** the socket refuses) and calls back once that is sent.
                */
                size_t n = c->out_len - c->out_off;
                unsigned char *tmp = xmalloc(LWS_PRE + n);
                memcpy(tmp + LWS_PRE, c->out + c->out_off, n);
                int w = lws_write(wsi, tmp + LWS_PRE, n, LWS_WRITE_RAW);
                free(tmp);
                if (w < 0)
                    return -1;
                c->out_off = c->out_len;
                lws_callback_on_writable(wsi);
                return 0;
            }
            ssize_t w =
                send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    lws_callback_on_writable(wsi);
                    return 0;
                }
                return -1;
            }
            c->out_off += (size_t)w;
            budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
        }
    }
    case LWS_CALLBACK_RECEIVE_PONG:
        if (!quiet)
            fprintf(stderr, "replay: pong \"%.*s\"\n", (int)len, (const char *)in);
        break;
    case LWS_CALLBACK_TIMER:
        if (c->paused) {
            if (!quiet && !c->throttled)
                fprintf(stderr, "replay: resumed after pause\n");
            c->paused = 0;
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLOSED:
        for (int i = 0; i < c->nwant; i++)
            free(c->want[i]);
        free(c->out);
        c->out = NULL;
        c->nwant = 0;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"jetstream", callback, sizeof(conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static lws_sorted_usec_list_t tick_sul;
static struct lws_context *ctx;
static void tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 100 * LWS_US_PER_MS);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *target = NULL;
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (v && !strcmp(a, "--file")) {
            file = v;
            i++;
            continue;
        }
        if (v && !strcmp(a, "--tls-cert")) {
            tls_cert = v;
            i++;
            continue;
        }
        if (v && !strcmp(a, "--tls-key")) {
            tls_key = v;
            i++;
            continue;
        }
        if (!strcmp(a, "--port"))
            target = &port;
        else if (!strcmp(a, "--drop-after"))
            target = &drop_after;
        else if (!strcmp(a, "--pause-after"))
            target = &pause_after;
        else if (!strcmp(a, "--pause-ms"))
            target = &pause_ms;
        else if (!strcmp(a, "--ping-every"))
            target = &ping_every;
        else if (!strcmp(a, "--bad-frame-after"))
            target = &bad_frame_after;
        else if (!strcmp(a, "--garbage-every"))
            target = &garbage_every;
        else if (!strcmp(a, "--fragment-every"))
            target = &fragment_every;
        else if (!strcmp(a, "--forget"))
            target = &forget_n;
        else if (!strcmp(a, "--repeat"))
            target = &repeat;
        else if (!strcmp(a, "--rate"))
            target = &rate;
        else if (!strcmp(a, "--max-seconds"))
            target = &max_seconds;
        if (!target || !v) {
            fprintf(stderr, "usage: jetstream_replay --file F [--port P] [--drop-after K] "
                            "[--pause-after K --pause-ms M] [--garbage-every K] "
                            "[--fragment-every K] [--forget N] [--repeat R] [--rate EPS] "
                            "[--max-seconds S] [--tls-cert C --tls-key K] [--ping-every K] "
                            "[--bad-frame-after K] [--quiet]\n");
            return 2;
        }
        *target = strtol(v, NULL, 10);
        i++;
    }
    if (!file) {
        fprintf(stderr, "jetstream_replay: --file is required\n");
        return 2;
    }
    load_file(file);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port ? (int)port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.pt_serv_buf_size = 65536;
    if (tls_cert && tls_key) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = tls_cert;
        info.ssl_private_key_filepath = tls_key;
    } else {
        tls_cert = NULL;
    }
    if (!port) {
        /* Port 0: bind an ephemeral port ourselves and hand the socket to lws. */
        info.port = 0;
    }
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "jetstream_replay: lws_create_context failed\n");
        return 1;
    }
    int bound = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default"));
    printf("port=%d\n", bound);
    fflush(stdout);
    if (!quiet)
        fprintf(stderr, "replay: %zu lines from %s on 127.0.0.1:%d\n", nlines, file, bound);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 100 * LWS_US_PER_MS);
    time_t end = time(NULL) + max_seconds;
    while (!stopping && time(NULL) < end)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i].coll);
    free(lines);
    free(file_data);
    return 0;
}
