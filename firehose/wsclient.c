/*
** firehose/wsclient.c — see wsclient.h. Extracted from the Jetstream client,
** which the relay source had copied: one copy of the connection handling.
**
** The connection is an lws RAW client socket: lws resolves, connects and
** runs the event loop; the WebSocket handshake and the framing are ours
** (firehose/wsframe.c), because lws 4.1.6's client frame parser handles
** payload one byte at a time and capped ingest near 300k events/s. For wss://
** TLS is ours too, OpenSSL over memory BIOs on that raw socket: lws 4.1.6
** starts TLS on a RAW client before its socket exists ("tls start fail",
** EBADF), so its raw+TLS client cannot be used. See docs/firehose.md,
** "WebSocket framing and TLS".
*/
#include "firehose/wsclient.h"

#include <inttypes.h>
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "firehose/wsframe.h"
#include "common/banned.h"

#define RX_BUF (256 * 1024)

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN };

struct mdw_wsclient {
    mdw_wsclient_opts o;
    mdw_ingest *in;
    mdw_clock *clock;
    struct lws_protocols protocols[2];
    char proto_name[48];
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t wake;
    atomic_int stop;
    int fatal;
    int state;
    int url_idx;
    int attempt;          /* consecutive failures, for the backoff */
    int64_t next_connect; /* mono µs */
    int64_t last_rx;      /* mono µs of the last message */
    int64_t asked_cursor; /* cursor sent on this connection, 0 = none */
    int got_message;      /* this connection delivered a message */
    int rx_paused;
    mdw_wsframe *fp;   /* frame parser of the current connection */
    uint64_t fp_bytes; /* payload bytes already added to m_bytes */
    mdw_buf hs;        /* the server's 101 response head while it arrives */
    mdw_buf tx;        /* LWS_PRE + bytes to write (request, pong, close) */
    char key[MDW_WS_KEY_LEN + 1];
    char host[256];
    int port, tls;
    char path[1408]; /* the request path, with a '/' in front if it lacked one */
    char why[200];   /* why this connection is being closed by us */
    SSL_CTX *sslctx; /* wss:// : peer verified against the system CA store */
    SSL *ssl;        /* this connection's TLS, NULL for ws:// */
    BIO *rbio, *wbio;
    int tls_up;
    uint8_t *plain;  /* decrypted bytes, RX_BUF */
    uint8_t *cipher; /* LWS_PRE + TLS records to send */
    uint64_t rng;
    mdw_wsclient_stats st;
};

static void count(mdw_counter *c)
{
    if (c)
        mdw_counter_inc(c);
}

/* ws[s]://host[:port] (and http[s]:// when allowed) -> parts; *rest = what follows. */
typedef struct url_parts {
    int tls, port;
    char host[256];
    const char *rest;
} url_parts;

static int parse_url(const char *url, int allow_http, url_parts *u)
{
    const char *p;
    if (!strncmp(url, "ws://", 5) || (allow_http && !strncmp(url, "http://", 7))) {
        u->tls = 0;
        u->port = 80;
        p = strstr(url, "://") + 3;
    } else if (!strncmp(url, "wss://", 6) || (allow_http && !strncmp(url, "https://", 8))) {
        u->tls = 1;
        u->port = 443;
        p = strstr(url, "://") + 3;
    } else {
        return MDW_ECONFIG;
    }
    size_t hl = strcspn(p, ":/?");
    if (hl == 0 || hl >= sizeof u->host)
        return MDW_ECONFIG;
    memcpy(u->host, p, hl);
    u->host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return MDW_ECONFIG;
        u->port = (int)port;
        p = end;
    }
    u->rest = p;
    return 0;
}

static int64_t mono(const mdw_wsclient *ws)
{
    return mdw_clock_mono_us(ws->clock);
}

static uint64_t rnd(mdw_wsclient *ws)
{
    ws->rng ^= ws->rng << 13;
    ws->rng ^= ws->rng >> 7;
    ws->rng ^= ws->rng << 17;
    return ws->rng;
}

static void tls_drop(mdw_wsclient *ws)
{
    if (ws->ssl)
        SSL_free(ws->ssl); /* and its BIOs */
    ws->ssl = NULL;
    ws->rbio = ws->wbio = NULL;
    ws->tls_up = 0;
}

/* Sends what TLS has queued (handshake records, encrypted data). */
static int tls_send(mdw_wsclient *ws, struct lws *wsi)
{
    for (;;) {
        int n = BIO_read(ws->wbio, ws->cipher + LWS_PRE, RX_BUF);
        if (n <= 0)
            return 0;
        if (lws_write(wsi, ws->cipher + LWS_PRE, (size_t)n, LWS_WRITE_RAW) < 0)
            return -1;
    }
}

static void tls_why(mdw_wsclient *ws, const char *what)
{
    long vr = ws->ssl ? SSL_get_verify_result(ws->ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    char es[120] = "";
    if (e)
        ERR_error_string_n(e, es, sizeof es);
    ERR_clear_error();
    snprintf(ws->why, sizeof ws->why, "TLS %s: %s%s%s", what,
             vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "", vr != X509_V_OK ? " " : "",
             es);
}

static int tls_start(mdw_wsclient *ws)
{
    ws->ssl = SSL_new(ws->sslctx);
    ws->rbio = BIO_new(BIO_s_mem());
    ws->wbio = BIO_new(BIO_s_mem());
    if (!ws->ssl || !ws->rbio || !ws->wbio) {
        BIO_free(ws->rbio);
        BIO_free(ws->wbio);
        ws->rbio = ws->wbio = NULL;
        tls_why(ws, "setup failed");
        return -1;
    }
    SSL_set_bio(ws->ssl, ws->rbio, ws->wbio);
    SSL_set_connect_state(ws->ssl);
    SSL_set_tlsext_host_name(ws->ssl, ws->host); /* SNI */
    /* The certificate must name the host we asked for (or its IP address). */
    unsigned char ip[16];
    if (inet_pton(AF_INET, ws->host, ip) == 1 || inet_pton(AF_INET6, ws->host, ip) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws->ssl), ws->host);
    else
        SSL_set1_host(ws->ssl, ws->host);
    return 0;
}

/* Next attempt after an exponential backoff with jitter, on the next URL. */
static void schedule_reconnect(mdw_wsclient *ws, const char *why)
{
    if (ws->got_message)
        ws->attempt = 0;
    int64_t d = ws->o.backoff_min_us;
    for (int i = 0; i < ws->attempt && d < ws->o.backoff_max_us; i++)
        d *= 2;
    if (d > ws->o.backoff_max_us)
        d = ws->o.backoff_max_us;
    /* "Equal jitter": half fixed, half random, so hosts are not hit in lockstep. */
    int64_t delay = d / 2 + (int64_t)(rnd(ws) % (uint64_t)(d / 2 + 1));
    ws->attempt++;
    ws->url_idx = (ws->url_idx + 1) % ws->o.nurls;
    ws->next_connect = mono(ws) + delay;
    ws->state = ST_IDLE;
    ws->wsi = NULL;
    ws->rx_paused = 0;
    mdw_wsframe_reset(ws->fp);
    ws->fp_bytes = 0;
    mdw_buf_reset(&ws->hs);
    ws->why[0] = '\0';
    tls_drop(ws);
    if (ws->stop || mdw_stop_requested())
        return;
    char msg[64];
    snprintf(msg, sizeof msg, "%s disconnected; reconnecting", ws->o.name);
    if (ws->o.log_url)
        mdw_info("firehose", msg, "why=\"%s\" next_url=%s delay_ms=%lld", why,
                 ws->o.urls[ws->url_idx], (long long)(delay / 1000));
    else
        mdw_info("firehose", msg, "why=\"%s\" delay_ms=%lld", why, (long long)(delay / 1000));
}

static void on_frame_message(void *ctx, int opcode, const uint8_t *data, size_t len)
{
    mdw_wsclient *ws = ctx;
    if (ws->fatal)
        return; /* a source refused a message: deliver no more */
    ws->got_message = 1;
    ws->o.on_message(ws->o.ctx, (const char *)data, len);
}

static void on_frame_oversize(void *ctx, int opcode, const uint8_t *head, size_t len)
{
    mdw_wsclient *ws = ctx;
    ws->o.on_oversize(ws->o.ctx, (const char *)head, len);
}

/*
** Writes what is queued: the upgrade request, pongs, closes. A raw lws_write
** that the socket cannot take whole is kept by lws and sent when writable.
*/
static int flush_tx(mdw_wsclient *ws, struct lws *wsi)
{
    size_t n;
    const uint8_t *f = mdw_wsframe_out(ws->fp, &n);
    if (f && mdw_buf_append(&ws->tx, f, n) == 0)
        mdw_wsframe_out_done(ws->fp, n);
    if (ws->tx.len <= LWS_PRE)
        return 0;
    size_t len = ws->tx.len - LWS_PRE;
    if (ws->ssl) {
        if (!ws->tls_up)
            return 0; /* sent once TLS is up */
        /* Memory BIOs: SSL_write takes everything at once. */
        if (SSL_write(ws->ssl, ws->tx.data + LWS_PRE, (int)len) <= 0) {
            tls_why(ws, "write failed");
            return -1;
        }
        ws->tx.len = LWS_PRE;
        return tls_send(ws, wsi);
    }
    int w = lws_write(wsi, (unsigned char *)ws->tx.data + LWS_PRE, len, LWS_WRITE_RAW);
    ws->tx.len = LWS_PRE;
    return w < 0 ? -1 : 0;
}

static void tx_reset(mdw_wsclient *ws)
{
    mdw_buf_reset(&ws->tx);
    static const char pre[LWS_PRE] = {0};
    mdw_buf_append(&ws->tx, pre, LWS_PRE);
}

/* Bytes after the handshake: frames. Returns -1 to close the connection. */
static int on_frames(mdw_wsclient *ws, struct lws *wsi, const uint8_t *in, size_t len)
{
    int rc = mdw_wsframe_feed(ws->fp, in, len);
    uint64_t pb = mdw_wsframe_payload_bytes(ws->fp);
    if (ws->o.m_bytes && pb > ws->fp_bytes)
        mdw_counter_add(ws->o.m_bytes, pb - ws->fp_bytes);
    ws->fp_bytes = pb;
    int code;
    if (rc != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s protocol error: closing", ws->o.name);
        mdw_warn("firehose", msg, "error=\"%s\"", mdw_wsframe_error(ws->fp));
        snprintf(ws->why, sizeof ws->why, "protocol error: %s", mdw_wsframe_error(ws->fp));
        flush_tx(ws, wsi); /* the close 1002 */
        return -1;
    }
    if (mdw_wsframe_closed(ws->fp, &code)) {
        snprintf(ws->why, sizeof ws->why, "server closed (%d)", code);
        flush_tx(ws, wsi); /* the close reply */
        return -1;
    }
    size_t n;
    if (mdw_wsframe_out(ws->fp, &n))
        lws_callback_on_writable(wsi); /* a pong */
    return 0;
}

static int on_plain(mdw_wsclient *ws, struct lws *wsi, const uint8_t *in, size_t len)
{
    if (ws->state == ST_OPEN)
        return on_frames(ws, wsi, in, len);
    if (ws->state != ST_HANDSHAKE)
        return -1;
    /*
    ** The server may send frames right behind its 101, in the same read: only
    ** the head is kept while it is incomplete (capped), never the frames.
    */
    size_t old = ws->hs.len, head = 0;
    size_t take = len < MDW_MAX_WS_HEAD_BYTES - old ? len : MDW_MAX_WS_HEAD_BYTES - old;
    const char *buf = (const char *)in;
    size_t blen = len;
    if (old) {
        mdw_buf_append(&ws->hs, in, take); /* fits: take is bounded by the cap */
        buf = ws->hs.data;
        blen = ws->hs.len;
    }
    char err[160];
    int rc = mdw_ws_handshake_check(buf, blen, ws->key, &head, err, sizeof err);
    if (rc == MDW_EAGAIN) {
        if (!old)
            mdw_buf_append(&ws->hs, in, take); /* take == len: the check saw no end below the cap */
        return 0;
    }
    if (rc != 0) {
        snprintf(ws->why, sizeof ws->why, "handshake refused: %s", err);
        return -1;
    }
    /* The head's end lies in this read: what follows it are frames, parsed in place. */
    size_t used = head - old;
    mdw_buf_reset(&ws->hs);
    ws->state = ST_OPEN;
    ws->st.connects++;
    count(ws->o.m_connects);
    char msg[64];
    snprintf(msg, sizeof msg, "%s connected", ws->o.name);
    mdw_info("firehose", msg, "url=%s cursor=%" PRId64, ws->o.urls[ws->url_idx], ws->asked_cursor);
    return used < len ? on_frames(ws, wsi, in + used, len - used) : 0;
}

static int on_raw_rx(mdw_wsclient *ws, struct lws *wsi, const uint8_t *in, size_t len)
{
    ws->last_rx = mono(ws);
    if (!ws->ssl)
        return on_plain(ws, wsi, in, len); /* ws://: frames in place in lws' buffer */
    if (BIO_write(ws->rbio, in, (int)len) != (int)len) {
        tls_why(ws, "buffer failed");
        return -1;
    }
    if (!ws->tls_up) {
        int r = SSL_do_handshake(ws->ssl);
        if (r != 1) {
            int e = SSL_get_error(ws->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_why(ws, "handshake failed");
                return -1;
            }
            return tls_send(ws, wsi);
        }
        ws->tls_up = 1;
        if (tls_send(ws, wsi) < 0 || flush_tx(ws, wsi) < 0) /* the upgrade request */
            return -1;
    }
    for (;;) {
        int n = SSL_read(ws->ssl, ws->plain, RX_BUF);
        if (n > 0) {
            if (on_plain(ws, wsi, ws->plain, (size_t)n) < 0)
                return -1;
            if (!ws->ssl)
                return -1;
            continue;
        }
        int e = SSL_get_error(ws->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN)
            snprintf(ws->why, sizeof ws->why, "TLS closed by the server");
        else
            tls_why(ws, "read failed");
        return -1;
    }
    return tls_send(ws, wsi);
}

static void closed(mdw_wsclient *ws, const char *dflt)
{
    char why[200];
    snprintf(why, sizeof why, "%s", ws->why[0] ? ws->why : dflt);
    if (ws->state == ST_OPEN) {
        ws->st.disconnects++;
    } else {
        ws->st.connect_failures++;
        if (!ws->why[0] && ws->state == ST_HANDSHAKE)
            snprintf(why, sizeof why, "%s before the handshake completed", dflt);
    }
    count(ws->o.m_failures);
    schedule_reconnect(ws, why);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    mdw_wsclient *ws = lws_context_user(lws_get_context(wsi));
    if (!ws)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED:
        if (wsi != ws->wsi)
            return -1;
        /* TCP (and TLS) are up: send the upgrade request (RFC 6455 4.1). */
        ws->state = ST_HANDSHAKE;
        ws->last_rx = mono(ws);
        mdw_ws_handshake_key(ws->key);
        tx_reset(ws);
        if (mdw_ws_handshake_request(&ws->tx, ws->host, ws->port, ws->tls, ws->path, ws->key)) {
            snprintf(ws->why, sizeof ws->why, "cannot build the upgrade request");
            return -1;
        }
        if (ws->tls) {
            /* ClientHello now; the request goes once TLS is up (on_raw_rx). */
            if (tls_start(ws) < 0)
                return -1;
            int r = SSL_do_handshake(ws->ssl);
            if (r != 1 && SSL_get_error(ws->ssl, r) != SSL_ERROR_WANT_READ) {
                tls_why(ws, "handshake failed");
                return -1;
            }
            if (tls_send(ws, wsi) < 0)
                return -1;
            break;
        }
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (wsi == ws->wsi && flush_tx(ws, wsi) < 0)
            return -1;
        break;
    case LWS_CALLBACK_RAW_RX:
        if (wsi == ws->wsi)
            return on_raw_rx(ws, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == ws->wsi || ws->state == ST_CONNECTING) {
            char why[200];
            snprintf(why, sizeof why, "connection error: %.*s", in ? (int)len : 7,
                     in ? (const char *)in : "unknown");
            ws->state = ST_CONNECTING;
            ws->why[0] = '\0';
            closed(ws, why);
        }
        break;
    case LWS_CALLBACK_RAW_CLOSE:
        if (wsi == ws->wsi && ws->state != ST_IDLE)
            closed(ws, "closed");
        break;
    default:
        break;
    }
    return 0;
}

static void connect_next(mdw_wsclient *ws)
{
    const char *url = ws->o.urls[ws->url_idx];
    url_parts u;
    char path[1400];
    if (parse_url(url, ws->o.allow_http, &u) ||
        ws->o.request_path(ws->o.ctx, u.rest, path, sizeof path, &ws->asked_cursor)) {
        mdw_error("firehose", ws->o.bad_url_msg, "url=%s", url);
        ws->st.connect_failures++;
        schedule_reconnect(ws, "bad url");
        return;
    }
    snprintf(ws->host, sizeof ws->host, "%s", u.host);
    ws->port = u.port;
    ws->tls = u.tls;
    snprintf(ws->path, sizeof ws->path, "%s%s", path[0] == '/' ? "" : "/", path);
    ws->why[0] = '\0';
    mdw_wsframe_reset(ws->fp);
    ws->fp_bytes = 0;
    mdw_buf_reset(&ws->hs);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ws->ctx;
    ci.address = u.host;
    ci.port = u.port;
    ci.host = u.host;
    ci.method = "RAW"; /* the upgrade and the framing are ours */
    ci.local_protocol_name = ws->protocols[0].name;
    ci.pwsi = &ws->wsi;
    ws->state = ST_CONNECTING;
    ws->got_message = 0;
    ws->rx_paused = 0;
    char msg[64];
    snprintf(msg, sizeof msg, "%s connecting", ws->o.name);
    mdw_debug("firehose", msg, "url=%s cursor=%" PRId64, url, ws->asked_cursor);
    if (!lws_client_connect_via_info(&ci)) {
        /* Failed synchronously (e.g. no DNS); the error callback may have run already. */
        if (ws->state == ST_CONNECTING) {
            ws->st.connect_failures++;
            count(ws->o.m_failures);
            schedule_reconnect(ws, "connect failed");
        }
    }
}

/*
** The wake-up timer bounds lws_service()'s wait. A timer already ripe when
** lws computes its poll timeout is run before the poll and then no longer
** bounds it, so the callback also interrupts the poll explicitly.
*/
static void wake_cb(lws_sorted_usec_list_t *sul)
{
    mdw_wsclient *ws = lws_container_of(sul, mdw_wsclient, wake);
    lws_cancel_service(ws->ctx);
}

/* From the ingest's writer thread: a transaction finished, close the next batch now. */
static void wake_loop(void *arg)
{
    mdw_wsclient *ws = arg;
    if (ws->ctx)
        lws_cancel_service(ws->ctx);
}

int mdw_wsclient_new(mdw_wsclient **out, const mdw_wsclient_opts *o, mdw_ingest *in,
                     mdw_clock *clock)
{
    if (o->nurls < 1 || !o->request_path || !o->on_message || !o->on_oversize)
        return MDW_ECONFIG;
    mdw_wsclient *ws = xcalloc(1, sizeof *ws);
    ws->o = *o;
    if (ws->o.backoff_min_us < 1000)
        ws->o.backoff_min_us = 1000;
    if (ws->o.backoff_max_us < ws->o.backoff_min_us)
        ws->o.backoff_max_us = ws->o.backoff_min_us;
    ws->in = in;
    ws->clock = clock;
    ws->rng = o->jitter_seed ? o->jitter_seed : (uint64_t)mdw_clock_now_us(clock) | 1;
    mdw_wsframe_cbs cbs = {on_frame_message, on_frame_oversize, ws};
    if (mdw_wsframe_new(&ws->fp, o->max_msg ? o->max_msg : MDW_MAX_EVENT_BYTES, &cbs)) {
        free(ws);
        return MDW_ECONFIG;
    }
    mdw_buf_init(&ws->hs, MDW_MAX_WS_HEAD_BYTES);
    mdw_buf_init(&ws->tx, LWS_PRE + MDW_MAX_WS_HEAD_BYTES + 64 * 1024);
    tx_reset(ws);
    snprintf(ws->proto_name, sizeof ws->proto_name, "meadow-%s", o->name);
    ws->protocols[0].name = ws->proto_name;
    ws->protocols[0].callback = callback;
    ws->protocols[0].rx_buffer_size = RX_BUF;

    ws->plain = xmalloc(RX_BUF);
    ws->cipher = xmalloc(LWS_PRE + RX_BUF);
    ws->sslctx = SSL_CTX_new(TLS_client_method());
    if (!ws->sslctx) {
        mdw_error("firehose", "SSL_CTX_new failed", NULL);
        mdw_wsclient_free(ws);
        return MDW_ECONFIG;
    }
    SSL_CTX_set_min_proto_version(ws->sslctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ws->sslctx, SSL_VERIFY_PEER, NULL);
    /* The system CA store (Debian: ca-certificates); SSL_CERT_FILE overrides it (tests). */
    SSL_CTX_set_default_verify_paths(ws->sslctx);
    if (!getenv("SSL_CERT_FILE") && access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        SSL_CTX_load_verify_locations(ws->sslctx, "/etc/ssl/certs/ca-certificates.crt", NULL);
    ERR_clear_error();

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ws->protocols;
    info.user = ws;
    info.pt_serv_buf_size = RX_BUF;
    info.connect_timeout_secs = 10;
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        mdw_error("firehose", "lws_create_context failed", NULL);
        mdw_wsclient_free(ws);
        return MDW_ECONFIG;
    }
    ws->state = ST_IDLE;
    ws->next_connect = mono(ws);
    mdw_ingest_set_wake(in, wake_loop, ws);
    *out = ws;
    return 0;
}

void mdw_wsclient_request_stop(mdw_wsclient *ws)
{
    ws->stop = 1;
    if (ws->ctx)
        lws_cancel_service(ws->ctx);
}

void mdw_wsclient_fail(mdw_wsclient *ws)
{
    ws->fatal = 1;
}

static int stopping(const mdw_wsclient *ws)
{
    return ws->stop || ws->fatal || mdw_stop_requested();
}

/* Is anything left to read on the socket right now? */
static int socket_drained(struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi), avail = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0)
        return 1;
    return avail == 0;
}

void mdw_wsclient_run(mdw_wsclient *ws)
{
    while (!stopping(ws)) {
        int64_t now = mono(ws);
        if (ws->state == ST_IDLE && now >= ws->next_connect)
            connect_next(ws);

        /* Reading or not: the queue decides (TCP backpressure). */
        if ((ws->state == ST_OPEN || ws->state == ST_HANDSHAKE) && ws->wsi) {
            int pause = ws->state == ST_OPEN ? mdw_ingest_should_pause(ws->in) : 0;
            if (pause != ws->rx_paused) {
                lws_rx_flow_control(ws->wsi, pause ? 0 : 1);
                ws->rx_paused = pause;
                ws->last_rx = now; /* silence while paused is ours, not the server's */
            }
            if (!ws->rx_paused && now - ws->last_rx > ws->o.watchdog_us) {
                ws->st.watchdog_closes++;
                count(ws->o.m_watchdog);
                char msg[64];
                snprintf(msg, sizeof msg, "%s silent: reconnecting", ws->o.name);
                if (ws->o.log_url)
                    mdw_warn("firehose", msg, "silent_s=%lld url=%s",
                             (long long)((now - ws->last_rx) / 1000000), ws->o.urls[ws->url_idx]);
                else
                    mdw_warn("firehose", msg, "silent_s=%lld",
                             (long long)((now - ws->last_rx) / 1000000));
                lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                ws->last_rx = now;
            }
        }

        int64_t wait = mdw_ingest_next_tick_us(ws->in);
        if (wait > 50000)
            wait = 50000;
        if (ws->state == ST_IDLE && ws->next_connect - now < wait)
            wait = ws->next_connect - now;
        if (wait < 1)
            wait = 1;
        lws_sul_schedule(ws->ctx, 0, &ws->wake, wake_cb, (lws_usec_t)wait);
        if (lws_service(ws->ctx, 0) < 0) {
            mdw_error("firehose", "lws_service failed", NULL);
            break;
        }
        /* An error here ended ingest (logged there): stop; the source returns it. */
        if (ws->state == ST_OPEN && ws->wsi && !ws->rx_paused && socket_drained(ws->wsi) &&
            mdw_ingest_idle(ws->in) < 0)
            ws->fatal = 1;
        if (mdw_ingest_tick(ws->in) < 0)
            ws->fatal = 1;
    }
    /* A clean close for the server (best effort: the context goes next). */
    if (ws->state == ST_OPEN && ws->wsi) {
        mdw_wsframe_send_close(ws->fp, 1000);
        flush_tx(ws, ws->wsi);
    }
    lws_sul_cancel(&ws->wake);
}

void mdw_wsclient_free(mdw_wsclient *ws)
{
    if (!ws)
        return;
    mdw_ingest_set_wake(ws->in, NULL, NULL);
    if (ws->ctx)
        lws_context_destroy(ws->ctx);
    tls_drop(ws);
    if (ws->sslctx)
        SSL_CTX_free(ws->sslctx);
    free(ws->plain);
    free(ws->cipher);
    mdw_wsframe_free(ws->fp);
    mdw_buf_release(&ws->hs);
    mdw_buf_release(&ws->tx);
    free(ws);
}
