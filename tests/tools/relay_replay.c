/*
** tests/tools/relay_replay — a libwebsockets server on 127.0.0.1 serving a
** relay frames file ([u32 LE length][frame] records, zstd or plain) the way
** com.atproto.sync.subscribeRepos does, for the relay source's tests.
**
**   relay_replay --file F [--port P] [--drop-after K] [--max-seconds S] [--quiet]
**
** Each connection gets, as binary messages, the frames whose seq is greater
** than its `cursor` (all of them without one), then stays open and silent
** like a live tail. A cursor older than the file's first seq - 1 first gets
** an #info OutdatedCursor frame; a cursor past the last seq gets an error
** frame FutureCursor and the connection is closed, as a relay does.
** --drop-after K closes every connection after K frames. Prints "port=<n>"
** on stdout once listening; exits on SIGTERM/SIGINT or after --max-seconds
** (default 600).
*/
#include <inttypes.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "common/zfile.h"
#include "firehose/relay.h"
#include "common/banned.h"

static char *blob;
static size_t nframes;
static const uint8_t *fptr[1 << 16];
static size_t flen[1 << 16];
static int64_t fseq[1 << 16];
static long drop_after, max_seconds = 600;
static int quiet;
static volatile sig_atomic_t stopping;

static const uint8_t info_outdated[] = "\xa2\x61t\x65#info\x62op\x01"
                                       "\xa1\x64name\x6eOutdatedCursor";
static const uint8_t err_future[] = "\xa1\x62op\x20\xa1\x65"
                                    "error\x6c"
                                    "FutureCursor";

typedef struct conn {
    size_t next; /* next frame index */
    long sent;
    int pre; /* 1: send the #info frame first; 2: send FutureCursor then close */
    int closing;
} conn;

static void load(const char *path)
{
    size_t len;
    if (mdw_zfile_slurp(path, 1u << 30, &blob, &len)) {
        fprintf(stderr, "relay_replay: cannot read %s\n", path);
        exit(2);
    }
    const uint8_t *p = (const uint8_t *)blob;
    for (size_t o = 0; o + 4 <= len && nframes < (1 << 16);) {
        uint32_t l = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 |
                     (uint32_t)p[o + 3] << 24;
        if (l > len - o - 4)
            break;
        mdw_relay_frame info;
        mdw_relay_decode(p + o + 4, l, NULL, &info, NULL, NULL);
        fptr[nframes] = p + o + 4;
        flen[nframes] = l;
        fseq[nframes++] = info.seq;
        o += 4 + l;
    }
}

static int send_bin(struct lws *wsi, const uint8_t *p, size_t n)
{
    unsigned char *buf = xmalloc(LWS_PRE + n);
    memcpy(buf + LWS_PRE, p, n);
    int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY);
    free(buf);
    return w < (int)n ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        memset(c, 0, sizeof *c);
        char buf[128];
        int64_t cursor = -1;
        for (int i = 0;
             lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++)
            if (!strncmp(buf, "cursor=", 7))
                cursor = strtoll(buf + 7, NULL, 10);
        if (cursor >= 0 && nframes) {
            if (cursor < fseq[0] - 1)
                c->pre = 1;
            else if (cursor > fseq[nframes - 1])
                c->pre = 2;
            while (c->next < nframes && fseq[c->next] <= cursor)
                c->next++;
        }
        if (!quiet)
            fprintf(stderr, "relay_replay: connection cursor=%" PRId64 " from frame %zu\n", cursor,
                    c->next);
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c->closing)
            return -1;
        if (c->pre == 1) {
            c->pre = 0;
            if (send_bin(wsi, info_outdated, sizeof info_outdated - 1))
                return -1;
        } else if (c->pre == 2) {
            c->closing = 1;
            if (send_bin(wsi, err_future, sizeof err_future - 1))
                return -1;
        } else if (drop_after > 0 && c->sent >= drop_after) {
            if (!quiet)
                fprintf(stderr, "relay_replay: dropping the connection after %ld frames\n",
                        c->sent);
            return -1;
        } else if (c->next < nframes) {
            if (send_bin(wsi, fptr[c->next], flen[c->next]))
                return -1;
            c->next++;
            c->sent++;
        } else {
            return 0; /* live tail with nothing new: stay open */
        }
        lws_callback_on_writable(wsi);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"relay", callback, sizeof(conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    stopping = 1;
}

/* A 100 ms tick, so lws_service() returns and signals are seen. */
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
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (v && !strcmp(a, "--file")) {
            file = argv[++i];
        } else if (v && !strcmp(a, "--port")) {
            port = strtol(argv[++i], NULL, 10);
        } else if (v && !strcmp(a, "--drop-after")) {
            drop_after = strtol(argv[++i], NULL, 10);
        } else if (v && !strcmp(a, "--max-seconds")) {
            max_seconds = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: relay_replay --file F [--port P] [--drop-after K] "
                            "[--max-seconds S] [--quiet]\n");
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "relay_replay: --file is required\n");
        return 2;
    }
    load(file);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.pt_serv_buf_size = 65536;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "relay_replay: lws_create_context failed\n");
        return 1;
    }
    printf("port=%d\n", lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default")));
    fflush(stdout);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 100 * LWS_US_PER_MS);
    time_t end = time(NULL) + max_seconds;
    while (!stopping && time(NULL) < end)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    free(blob);
    return 0;
}
