/*
** firehose/wsclient.c — see wsclient.h. Extracted from the Jetstream client,
** which the relay source had copied: one copy of the connection handling.
*/
#include "firehose/wsclient.h"

#include <inttypes.h>
#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "common/banned.h"

#define RX_BUF (256 * 1024)

enum { ST_IDLE, ST_CONNECTING, ST_OPEN };

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
    mdw_buf msg; /* reassembly */
    int msg_oversize;
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
    mdw_buf_reset(&ws->msg);
    ws->msg_oversize = 0;
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

static void deliver(mdw_wsclient *ws, const char *data, size_t len)
{
    ws->got_message = 1;
    ws->o.on_message(ws->o.ctx, data, len);
}

static void on_receive(mdw_wsclient *ws, struct lws *wsi, const char *in, size_t len)
{
    ws->last_rx = mono(ws);
    if (ws->o.m_bytes)
        mdw_counter_add(ws->o.m_bytes, len);
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first && final && ws->msg.len == 0 && !ws->msg_oversize) {
        deliver(ws, in, len); /* whole message in one piece: no copy */
        return;
    }
    if (first) {
        mdw_buf_reset(&ws->msg);
        ws->msg_oversize = 0;
    }
    if (!ws->msg_oversize && mdw_buf_append(&ws->msg, in, len) != 0) {
        ws->msg_oversize = 1;
        ws->o.on_oversize(ws->o.ctx, ws->msg.data, ws->msg.len);
        mdw_buf_reset(&ws->msg);
    }
    if (final) {
        if (!ws->msg_oversize)
            deliver(ws, ws->msg.data, ws->msg.len);
        mdw_buf_reset(&ws->msg);
        ws->msg_oversize = 0;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    mdw_wsclient *ws = lws_context_user(lws_get_context(wsi));
    if (!ws)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        ws->state = ST_OPEN;
        ws->last_rx = mono(ws);
        ws->st.connects++;
        count(ws->o.m_connects);
        char msg[64];
        snprintf(msg, sizeof msg, "%s connected", ws->o.name);
        mdw_info("firehose", msg, "url=%s cursor=%" PRId64, ws->o.urls[ws->url_idx],
                 ws->asked_cursor);
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi == ws->wsi)
            on_receive(ws, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == ws->wsi || ws->state == ST_CONNECTING) {
            ws->st.connect_failures++;
            count(ws->o.m_failures);
            char why[200];
            snprintf(why, sizeof why, "connection error: %.*s", in ? (int)len : 7,
                     in ? (const char *)in : "unknown");
            schedule_reconnect(ws, why);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == ws->wsi) {
            ws->st.disconnects++;
            count(ws->o.m_failures);
            schedule_reconnect(ws, "closed");
        }
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
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ws->ctx;
    ci.address = u.host;
    ci.port = u.port;
    ci.path = path;
    ci.host = u.host;
    ci.origin = u.host;
    ci.ssl_connection = u.tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = ws->protocols[0].name;
    ci.ietf_version_or_minus_one = -1;
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
    mdw_buf_init(&ws->msg, o->max_msg);
    snprintf(ws->proto_name, sizeof ws->proto_name, "meadow-%s", o->name);
    ws->protocols[0].name = ws->proto_name;
    ws->protocols[0].callback = callback;
    ws->protocols[0].rx_buffer_size = RX_BUF;

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ws->protocols;
    info.user = ws;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.pt_serv_buf_size = RX_BUF;
    info.connect_timeout_secs = 10;
    /* The system CA store (Debian: ca-certificates). */
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        info.client_ssl_ca_filepath = "/etc/ssl/certs/ca-certificates.crt";
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
        if (ws->state == ST_OPEN && ws->wsi) {
            int pause = mdw_ingest_should_pause(ws->in);
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
        if (ws->state == ST_OPEN && ws->wsi && !ws->rx_paused && socket_drained(ws->wsi))
            mdw_ingest_idle(ws->in);
        mdw_ingest_tick(ws->in);
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
    mdw_buf_release(&ws->msg);
    free(ws);
}

void mdw_wsclient_stats_get(const mdw_wsclient *ws, mdw_wsclient_stats *st)
{
    *st = ws->st;
}
