#include "firehose/jetstream.h"

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
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/stop.h"
#include "common/banned.h"

#define WANTED "wantedCollections=app.bsky.feed.post&wantedCollections=net.atrarium.*"
#define RX_BUF (256 * 1024)

enum { ST_IDLE, ST_CONNECTING, ST_OPEN };

struct mdw_jetstream {
    mdw_jetstream_opts o;
    mdw_ingest *in;
    mdw_clock *clock;
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t wake;
    atomic_int stop;
    int state;
    int url_idx;
    int attempt;          /* consecutive failures, for the backoff */
    int64_t next_connect; /* mono µs */
    int64_t last_rx;      /* mono µs of the last message */
    int64_t asked_cursor; /* cursor sent on this connection, 0 = none */
    int first_event_seen;
    int got_message; /* this connection delivered a message */
    int rx_paused;
    mdw_buf msg; /* reassembly */
    int msg_oversize;
    uint64_t rng;
    mdw_jetstream_stats st;
};

static mdw_counter m_connects =
    MDW_COUNTER_INIT("meadow_firehose_connects_total", NULL, "WebSocket connections established");
static mdw_counter m_failures = MDW_COUNTER_INIT("meadow_firehose_connect_failures_total", NULL,
                                                 "Connection attempts that failed or closed");
static mdw_counter m_watchdog = MDW_COUNTER_INIT("meadow_firehose_watchdog_reconnects_total", NULL,
                                                 "Connections closed after watchdog_s of silence");
static mdw_counter m_clamped =
    MDW_COUNTER_INIT("meadow_firehose_cursor_clamped_total", NULL,
                     "Reconnects whose first event was far newer than the cursor asked for");
static mdw_counter m_bytes =
    MDW_COUNTER_INIT("meadow_firehose_bytes_total", NULL, "Message bytes received from the source");

/* ------------------------------------------------------------------ options */

int mdw_jetstream_opts_from_config(mdw_jetstream_opts *o, const mdw_config *cfg)
{
    memset(o, 0, sizeof *o);
    const char *s = cfg->jetstream_urls ? cfg->jetstream_urls : "";
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n) {
            if (o->nurls == MDW_JETSTREAM_MAX_URLS) {
                mdw_error("firehose", "too many jetstream_urls", "max=%d", MDW_JETSTREAM_MAX_URLS);
                mdw_jetstream_opts_release(o);
                return MDW_ECONFIG;
            }
            o->urls[o->nurls++] = xstrndup(s, n);
        }
        if (!comma)
            break;
        s = comma + 1;
    }
    if (o->nurls == 0) {
        mdw_error("firehose", "jetstream_urls is empty", NULL);
        return MDW_ECONFIG;
    }
    o->rewind_us = cfg->rewind_s * 1000000;
    o->watchdog_us = cfg->watchdog_s * 1000000;
    o->backoff_min_us = cfg->backoff_min_ms * 1000;
    o->backoff_max_us = cfg->backoff_max_ms * 1000;
    if (o->backoff_max_us < o->backoff_min_us)
        o->backoff_max_us = o->backoff_min_us;
    return 0;
}

void mdw_jetstream_opts_release(mdw_jetstream_opts *o)
{
    for (int i = 0; i < o->nurls; i++)
        free(o->urls[i]);
    o->nurls = 0;
}

/* ws[s]://host[:port][/path] -> parts (host and path are copies). */
typedef struct url_parts {
    int tls, port;
    char host[256];
    char path[1024];
} url_parts;

static int parse_url(const char *url, url_parts *u)
{
    const char *p;
    if (!strncmp(url, "ws://", 5)) {
        u->tls = 0;
        u->port = 80;
        p = url + 5;
    } else if (!strncmp(url, "wss://", 6)) {
        u->tls = 1;
        u->port = 443;
        p = url + 6;
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
    int n = snprintf(u->path, sizeof u->path, "%s%s", *p == '/' ? "" : "/", p);
    if (n < 0 || (size_t)n >= sizeof u->path)
        return MDW_ECONFIG;
    return 0;
}

/* --------------------------------------------------------------- the client */

static int64_t mono(const mdw_jetstream *js)
{
    return mdw_clock_mono_us(js->clock);
}

static uint64_t rnd(mdw_jetstream *js)
{
    js->rng ^= js->rng << 13;
    js->rng ^= js->rng >> 7;
    js->rng ^= js->rng << 17;
    return js->rng;
}

/* Next attempt after an exponential backoff with jitter, on the next URL. */
static void schedule_reconnect(mdw_jetstream *js, const char *why)
{
    if (js->got_message)
        js->attempt = 0;
    int64_t d = js->o.backoff_min_us;
    for (int i = 0; i < js->attempt && d < js->o.backoff_max_us; i++)
        d *= 2;
    if (d > js->o.backoff_max_us)
        d = js->o.backoff_max_us;
    /* "Equal jitter": half fixed, half random, so hosts are not hit in lockstep. */
    int64_t delay = d / 2 + (int64_t)(rnd(js) % (uint64_t)(d / 2 + 1));
    js->attempt++;
    js->url_idx = (js->url_idx + 1) % js->o.nurls;
    js->next_connect = mono(js) + delay;
    js->state = ST_IDLE;
    js->wsi = NULL;
    js->rx_paused = 0;
    mdw_buf_reset(&js->msg);
    js->msg_oversize = 0;
    if (js->stop || mdw_stop_requested())
        return;
    mdw_info("firehose", "jetstream disconnected; reconnecting",
             "why=\"%s\" next_url=%s delay_ms=%lld", why, js->o.urls[js->url_idx],
             (long long)(delay / 1000));
}

static void on_event(mdw_jetstream *js, const char *data, size_t len)
{
    js->st.messages++;
    js->st.bytes += len;
    js->got_message = 1;
    int res = mdw_ingest_event(js->in, data, len);
    (void)res;
    if (!js->first_event_seen && res != MDW_FILTER_MALFORMED) {
        int64_t t;
        if (mdw_filter_time_us(data, len, &t) == 0) {
            js->first_event_seen = 1;
            if (js->asked_cursor > 0 && t - js->asked_cursor > MDW_JETSTREAM_CLAMP_US) {
                js->st.clamped++;
                mdw_counter_inc(&m_clamped);
                mdw_warn("firehose",
                         "resume cursor was clamped by the server: events in between are lost",
                         "asked_cursor=%" PRId64 " first_time_us=%" PRId64 " gap_s=%lld",
                         js->asked_cursor, t, (long long)((t - js->asked_cursor) / 1000000));
            }
        }
    }
}

static void on_receive(mdw_jetstream *js, struct lws *wsi, const char *in, size_t len)
{
    js->last_rx = mono(js);
    mdw_counter_add(&m_bytes, len);
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first && final && js->msg.len == 0 && !js->msg_oversize) {
        on_event(js, in, len); /* whole message in one piece: no copy */
        return;
    }
    if (first) {
        mdw_buf_reset(&js->msg);
        js->msg_oversize = 0;
    }
    if (!js->msg_oversize && mdw_buf_append(&js->msg, in, len) != 0) {
        js->msg_oversize = 1;
        js->st.oversize++;
        mdw_ingest_malformed(js->in, MDW_FILTER_OVERSIZE, js->msg.data, js->msg.len);
        mdw_buf_reset(&js->msg);
    }
    if (final) {
        if (!js->msg_oversize)
            on_event(js, js->msg.data, js->msg.len);
        mdw_buf_reset(&js->msg);
        js->msg_oversize = 0;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    mdw_jetstream *js = lws_context_user(lws_get_context(wsi));
    if (!js)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        js->state = ST_OPEN;
        js->last_rx = mono(js);
        js->st.connects++;
        mdw_counter_inc(&m_connects);
        mdw_info("firehose", "jetstream connected", "url=%s cursor=%" PRId64,
                 js->o.urls[js->url_idx], js->asked_cursor);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi == js->wsi)
            on_receive(js, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == js->wsi || js->state == ST_CONNECTING) {
            js->st.connect_failures++;
            mdw_counter_inc(&m_failures);
            char why[200];
            snprintf(why, sizeof why, "connection error: %.*s", in ? (int)len : 7,
                     in ? (const char *)in : "unknown");
            schedule_reconnect(js, why);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == js->wsi) {
            js->st.disconnects++;
            mdw_counter_inc(&m_failures);
            schedule_reconnect(js, "closed");
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"meadow-jetstream", callback, 0, RX_BUF, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_next(mdw_jetstream *js)
{
    const char *url = js->o.urls[js->url_idx];
    url_parts u;
    if (parse_url(url, &u)) {
        mdw_error("firehose", "bad jetstream url (want ws:// or wss://)", "url=%s", url);
        js->st.connect_failures++;
        schedule_reconnect(js, "bad url");
        return;
    }
    int64_t cur = mdw_ingest_cursor(js->in);
    js->asked_cursor = cur > 0 ? cur - js->o.rewind_us : 0;
    if (js->asked_cursor < 0)
        js->asked_cursor = 0;
    char path[1400];
    if (js->asked_cursor > 0)
        snprintf(path, sizeof path, "%s%c" WANTED "&cursor=%" PRId64, u.path,
                 strchr(u.path, '?') ? '&' : '?', js->asked_cursor);
    else
        snprintf(path, sizeof path, "%s%c" WANTED, u.path, strchr(u.path, '?') ? '&' : '?');
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = js->ctx;
    ci.address = u.host;
    ci.port = u.port;
    ci.path = path;
    ci.host = u.host;
    ci.origin = u.host;
    ci.ssl_connection = u.tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = protocols[0].name;
    ci.ietf_version_or_minus_one = -1;
    ci.pwsi = &js->wsi;
    js->state = ST_CONNECTING;
    js->first_event_seen = 0;
    js->got_message = 0;
    js->rx_paused = 0;
    mdw_debug("firehose", "jetstream connecting", "url=%s cursor=%" PRId64, url, js->asked_cursor);
    if (!lws_client_connect_via_info(&ci)) {
        /* Failed synchronously (e.g. no DNS); the error callback may have run already. */
        if (js->state == ST_CONNECTING) {
            js->st.connect_failures++;
            mdw_counter_inc(&m_failures);
            schedule_reconnect(js, "connect failed");
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
    mdw_jetstream *js = lws_container_of(sul, mdw_jetstream, wake);
    lws_cancel_service(js->ctx);
}

/* From the ingest's writer thread: a transaction finished, close the next batch now. */
static void wake_loop(void *arg)
{
    mdw_jetstream *js = arg;
    if (js->ctx)
        lws_cancel_service(js->ctx);
}

int mdw_jetstream_new(mdw_jetstream **out, const mdw_jetstream_opts *o, mdw_ingest *in,
                      mdw_clock *clock)
{
    if (o->nurls < 1)
        return MDW_ECONFIG;
    mdw_jetstream *js = xcalloc(1, sizeof *js);
    js->o = *o;
    for (int i = 0; i < o->nurls; i++)
        js->o.urls[i] = xstrdup(o->urls[i]);
    if (js->o.backoff_min_us < 1000)
        js->o.backoff_min_us = 1000;
    if (js->o.backoff_max_us < js->o.backoff_min_us)
        js->o.backoff_max_us = js->o.backoff_min_us;
    js->in = in;
    js->clock = clock;
    js->rng = o->jitter_seed ? o->jitter_seed : (uint64_t)mdw_clock_now_us(clock) | 1;
    mdw_buf_init(&js->msg, MDW_MAX_EVENT_BYTES);
    mdw_counter_register(&m_connects);
    mdw_counter_register(&m_failures);
    mdw_counter_register(&m_watchdog);
    mdw_counter_register(&m_clamped);
    mdw_counter_register(&m_bytes);

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = js;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.pt_serv_buf_size = RX_BUF;
    info.connect_timeout_secs = 10;
    /* The system CA store (Debian: ca-certificates). */
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        info.client_ssl_ca_filepath = "/etc/ssl/certs/ca-certificates.crt";
    js->ctx = lws_create_context(&info);
    if (!js->ctx) {
        mdw_error("firehose", "lws_create_context failed", NULL);
        mdw_jetstream_free(js);
        return MDW_ECONFIG;
    }
    js->state = ST_IDLE;
    js->next_connect = mono(js);
    mdw_ingest_set_wake(in, wake_loop, js);
    *out = js;
    return 0;
}

void mdw_jetstream_request_stop(mdw_jetstream *js)
{
    js->stop = 1;
    if (js->ctx)
        lws_cancel_service(js->ctx);
}

static int stopping(const mdw_jetstream *js)
{
    return js->stop || mdw_stop_requested();
}

/* Is anything left to read on the socket right now? */
static int socket_drained(struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi), avail = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0)
        return 1;
    return avail == 0;
}

int mdw_jetstream_run(mdw_jetstream *js)
{
    while (!stopping(js)) {
        int64_t now = mono(js);
        if (js->state == ST_IDLE && now >= js->next_connect)
            connect_next(js);

        /* Reading or not: the queue decides (TCP backpressure). */
        if (js->state == ST_OPEN && js->wsi) {
            int pause = mdw_ingest_should_pause(js->in);
            if (pause != js->rx_paused) {
                lws_rx_flow_control(js->wsi, pause ? 0 : 1);
                js->rx_paused = pause;
                js->last_rx = now; /* silence while paused is ours, not the server's */
            }
            if (!js->rx_paused && now - js->last_rx > js->o.watchdog_us) {
                js->st.watchdog_closes++;
                mdw_counter_inc(&m_watchdog);
                mdw_warn("firehose", "jetstream silent: reconnecting", "silent_s=%lld url=%s",
                         (long long)((now - js->last_rx) / 1000000), js->o.urls[js->url_idx]);
                lws_set_timeout(js->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                js->last_rx = now;
            }
        }

        int64_t wait = mdw_ingest_next_tick_us(js->in);
        if (wait > 50000)
            wait = 50000;
        if (js->state == ST_IDLE && js->next_connect - now < wait)
            wait = js->next_connect - now;
        if (wait < 1)
            wait = 1;
        lws_sul_schedule(js->ctx, 0, &js->wake, wake_cb, (lws_usec_t)wait);
        if (lws_service(js->ctx, 0) < 0) {
            mdw_error("firehose", "lws_service failed", NULL);
            break;
        }
        if (js->state == ST_OPEN && js->wsi && !js->rx_paused && socket_drained(js->wsi))
            mdw_ingest_idle(js->in);
        mdw_ingest_tick(js->in);
    }
    lws_sul_cancel(&js->wake);
    int rc = mdw_ingest_flush(js->in);
    mdw_info("firehose", "jetstream stopped", "cursor=%" PRId64 " committed=%" PRId64 " flush=%s",
             mdw_ingest_cursor(js->in), mdw_ingest_committed_cursor(js->in), mdw_strerror(rc));
    return rc == MDW_EFULL ? 0 : rc;
}

void mdw_jetstream_free(mdw_jetstream *js)
{
    if (!js)
        return;
    mdw_ingest_set_wake(js->in, NULL, NULL);
    if (js->ctx)
        lws_context_destroy(js->ctx);
    mdw_jetstream_opts_release(&js->o);
    mdw_buf_release(&js->msg);
    free(js);
}

void mdw_jetstream_stats_get(const mdw_jetstream *js, mdw_jetstream_stats *st)
{
    *st = js->st;
}
