/*
** firehose/relay_source.c — see relay_source.h. The connection handling
** (backoff with jitter, watchdog, rx flow control, fragment reassembly, the
** wake-up timer) follows firehose/jetstream.c so both sources behave alike;
** what differs is the URL, the cursor (seq, no rewind: seq is monotonic per
** relay) and that each message is a CBOR frame turned into events by
** mdw_relay_decode().
*/
#include "firehose/relay_source.h"

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
#include "firehose/relay.h"
#include "common/banned.h"

#define METHOD "com.atproto.sync.subscribeRepos"
#define RX_BUF (256 * 1024)

enum { ST_IDLE, ST_CONNECTING, ST_OPEN };

struct mdw_relay_source {
    mdw_relay_source_opts o;
    mdw_ingest *in;
    mdw_clock *clock;
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t wake;
    atomic_int stop;
    int state;
    int attempt;
    int64_t next_connect, last_rx;
    int64_t asked_cursor;
    int no_cursor_once; /* after FutureCursor: ask for the live tail */
    int got_frame;
    int rx_paused;
    int fatal; /* an ingest (queue) error: stop */
    mdw_buf msg;
    int msg_oversize;
    uint64_t rng;
    mdw_ratelimit log_rl;
    mdw_relay_source_stats st;
};

#define FRAMES(type)                                                                               \
    MDW_COUNTER_INIT("meadow_firehose_relay_frames_total", "type=\"" type "\"",                    \
                     "subscribeRepos frames received, by type")
static mdw_counter m_frames[] = {FRAMES("commit"),  FRAMES("identity"),   FRAMES("account"),
                                 FRAMES("sync"),    FRAMES("info"),       FRAMES("error"),
                                 FRAMES("unknown"), FRAMES("undecodable")};
static mdw_counter m_decode_errors = MDW_COUNTER_INIT(
    "meadow_firehose_relay_decode_errors_total", NULL,
    "Frames refused: malformed CBOR/CAR, block hash mismatch, bad signature, over 5 MB");
static mdw_counter m_sig_errors =
    MDW_COUNTER_INIT("meadow_firehose_relay_signature_failures_total", NULL,
                     "Commits whose signature did not verify (verify_commits)");
static mdw_counter m_high_s = MDW_COUNTER_INIT("meadow_firehose_relay_high_s_total", NULL,
                                               "Commits refused for a high-S signature");
static mdw_counter m_ops_failed = MDW_COUNTER_INIT("meadow_firehose_relay_ops_failed_total", NULL,
                                                   "Commit ops whose record could not be rendered");
static mdw_counter m_outdated =
    MDW_COUNTER_INIT("meadow_firehose_relay_outdated_cursor_total", NULL,
                     "#info OutdatedCursor: the resume cursor was older than the relay keeps");
static mdw_counter m_connects = MDW_COUNTER_INIT("meadow_firehose_relay_connects_total", NULL,
                                                 "Relay WebSocket connections established");

/* ------------------------------------------------------------------ options */

int mdw_relay_source_opts_from_config(mdw_relay_source_opts *o, const mdw_config *cfg)
{
    memset(o, 0, sizeof *o);
    if (!cfg->relay_url || !cfg->relay_url[0]) {
        mdw_error("firehose", "relay_url is empty", NULL);
        return MDW_ECONFIG;
    }
    o->url = xstrdup(cfg->relay_url);
    o->watchdog_us = cfg->watchdog_s * 1000000;
    o->backoff_min_us = cfg->backoff_min_ms * 1000;
    o->backoff_max_us = cfg->backoff_max_ms * 1000;
    if (o->backoff_max_us < o->backoff_min_us)
        o->backoff_max_us = o->backoff_min_us;
    if (cfg->verify_commits) {
        if (!cfg->did_docs_file || !cfg->did_docs_file[0]) {
            mdw_error("firehose",
                      "verify_commits needs did_docs_file (network DID resolution is not built "
                      "yet)",
                      NULL);
            mdw_relay_source_opts_release(o);
            return MDW_ECONFIG;
        }
        int rc = mdw_did_resolver_file_open(cfg->did_docs_file, &o->resolver);
        if (rc) {
            mdw_relay_source_opts_release(o);
            return rc;
        }
    }
    return 0;
}

void mdw_relay_source_opts_release(mdw_relay_source_opts *o)
{
    free(o->url);
    o->url = NULL;
    mdw_did_resolver_close(o->resolver);
    o->resolver = NULL;
}

typedef struct url_parts {
    int tls, port;
    char host[256];
    char path[1024];
} url_parts;

/* ws[s]|http[s]://host[:port][/path]; the method path is added when missing. */
static int parse_url(const char *url, url_parts *u)
{
    const char *p;
    if (!strncmp(url, "ws://", 5) || !strncmp(url, "http://", 7)) {
        u->tls = 0;
        u->port = 80;
        p = strstr(url, "://") + 3;
    } else if (!strncmp(url, "wss://", 6) || !strncmp(url, "https://", 8)) {
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
    size_t pl = strcspn(p, "?");
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    int has_method =
        pl >= strlen(METHOD) && !strncmp(p + pl - strlen(METHOD), METHOD, strlen(METHOD));
    int n = snprintf(u->path, sizeof u->path, "%s%.*s%s", pl && p[0] == '/' ? "" : "/", (int)pl, p,
                     has_method ? "" : (pl ? "/xrpc/" METHOD : "xrpc/" METHOD));
    if (n < 0 || (size_t)n >= sizeof u->path)
        return MDW_ECONFIG;
    return 0;
}

/* --------------------------------------------------------------- the client */

static int64_t mono(const mdw_relay_source *rs)
{
    return mdw_clock_mono_us(rs->clock);
}

static uint64_t rnd(mdw_relay_source *rs)
{
    rs->rng ^= rs->rng << 13;
    rs->rng ^= rs->rng >> 7;
    rs->rng ^= rs->rng << 17;
    return rs->rng;
}

static void schedule_reconnect(mdw_relay_source *rs, const char *why)
{
    if (rs->got_frame)
        rs->attempt = 0;
    int64_t d = rs->o.backoff_min_us;
    for (int i = 0; i < rs->attempt && d < rs->o.backoff_max_us; i++)
        d *= 2;
    if (d > rs->o.backoff_max_us)
        d = rs->o.backoff_max_us;
    int64_t delay = d / 2 + (int64_t)(rnd(rs) % (uint64_t)(d / 2 + 1));
    rs->attempt++;
    rs->next_connect = mono(rs) + delay;
    rs->state = ST_IDLE;
    rs->wsi = NULL;
    rs->rx_paused = 0;
    mdw_buf_reset(&rs->msg);
    rs->msg_oversize = 0;
    if (rs->stop || mdw_stop_requested())
        return;
    mdw_info("firehose", "relay disconnected; reconnecting", "why=\"%s\" delay_ms=%lld", why,
             (long long)(delay / 1000));
}

static int want_collection(void *ctx, const char *collection)
{
    /* what the lightweight filter can pass: posts and net.atrarium.* */
    return !strcmp(collection, "app.bsky.feed.post") || !strncmp(collection, "net.atrarium.", 13);
}

static int to_ingest(void *ctx, const mdw_relay_event *ev)
{
    mdw_relay_source *rs = ctx;
    rs->st.events++;
    int r = mdw_ingest_event_at(rs->in, ev->json, ev->json_len, ev->seq);
    if (r < -1) {
        rs->fatal = r;
        return r; /* stops the frame; the loop ends */
    }
    return 0;
}

static void on_frame(mdw_relay_source *rs, const uint8_t *data, size_t len)
{
    rs->st.frames++;
    rs->got_frame = 1;
    mdw_relay_opts opts = {.resolver = rs->o.resolver, .want = want_collection};
    mdw_relay_frame info;
    int rc = mdw_relay_decode(data, len, &opts, &info, to_ingest, rs);
    if (rs->fatal)
        return;
    mdw_counter_inc(&m_frames[rc && info.type == MDW_RELAY_NONE ? 7 : info.type - 1]);
    if (rc) {
        rs->st.decode_errors++;
        mdw_counter_inc(&m_decode_errors);
        if (rc == MDW_ECRYPTO) {
            mdw_counter_inc(&m_sig_errors);
            if (info.high_s) {
                rs->st.high_s++;
                mdw_counter_inc(&m_high_s);
            }
        }
        uint64_t suppressed = 0;
        if (mdw_ratelimit_ok(&rs->log_rl, mono(rs), &suppressed))
            mdw_warn("firehose", "relay frame refused", "err=\"%s\" code=%s suppressed=%llu",
                     info.err, mdw_strerror(rc), (unsigned long long)suppressed);
        mdw_ingest_malformed(rs->in, MDW_FILTER_BAD_EVENT, data, len < 64 ? len : 64);
        if (info.seq > 0)
            mdw_ingest_advance(rs->in, info.seq);
        return;
    }
    if (info.ops_failed) {
        rs->st.ops_failed += (uint64_t)info.ops_failed;
        mdw_counter_add(&m_ops_failed, (uint64_t)info.ops_failed);
        mdw_warn("firehose", "relay ops skipped", "count=%d err=\"%s\"", info.ops_failed, info.err);
    }
    if (info.events == 0 && info.seq > 0)
        mdw_ingest_advance(rs->in, info.seq);
    switch (info.type) {
    case MDW_RELAY_SYNC:
        rs->st.sync_frames++;
        mdw_info("firehose", "relay #sync: repository needs re-reading", "did=%s seq=%lld",
                 info.did, (long long)info.seq);
        break;
    case MDW_RELAY_INFO:
        rs->st.info_frames++;
        if (!strcmp(info.name, "OutdatedCursor"))
            mdw_counter_inc(&m_outdated);
        mdw_warn("firehose", "relay #info", "name=%s message=\"%s\" asked_cursor=%lld", info.name,
                 info.message, (long long)rs->asked_cursor);
        break;
    case MDW_RELAY_ERROR:
        rs->st.error_frames++;
        if (!strcmp(info.name, "FutureCursor"))
            rs->no_cursor_once = 1;
        mdw_warn("firehose", "relay error frame", "error=%s message=\"%s\" asked_cursor=%lld",
                 info.name, info.message, (long long)rs->asked_cursor);
        break;
    case MDW_RELAY_UNKNOWN:
        rs->st.unknown_frames++;
        break;
    default:
        break;
    }
}

static void on_receive(mdw_relay_source *rs, struct lws *wsi, const uint8_t *in, size_t len)
{
    rs->last_rx = mono(rs);
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first && final && rs->msg.len == 0 && !rs->msg_oversize) {
        on_frame(rs, in, len);
        return;
    }
    if (first) {
        mdw_buf_reset(&rs->msg);
        rs->msg_oversize = 0;
    }
    if (!rs->msg_oversize && mdw_buf_append(&rs->msg, in, len) != 0) {
        rs->msg_oversize = 1;
        rs->st.oversize++;
        mdw_counter_inc(&m_decode_errors);
        mdw_warn("firehose", "relay frame over the limit: skipped", "max=%u", MDW_MAX_FRAME_BYTES);
        mdw_ingest_malformed(rs->in, MDW_FILTER_OVERSIZE, rs->msg.data, 64);
        mdw_buf_reset(&rs->msg);
    }
    if (final) {
        if (!rs->msg_oversize)
            on_frame(rs, (const uint8_t *)rs->msg.data, rs->msg.len);
        mdw_buf_reset(&rs->msg);
        rs->msg_oversize = 0;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    mdw_relay_source *rs = lws_context_user(lws_get_context(wsi));
    if (!rs)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        rs->state = ST_OPEN;
        rs->last_rx = mono(rs);
        rs->st.connects++;
        mdw_counter_inc(&m_connects);
        mdw_info("firehose", "relay connected", "url=%s cursor=%" PRId64, rs->o.url,
                 rs->asked_cursor);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi == rs->wsi)
            on_receive(rs, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == rs->wsi || rs->state == ST_CONNECTING) {
            rs->st.connect_failures++;
            char why[200];
            snprintf(why, sizeof why, "connection error: %.*s", in ? (int)len : 7,
                     in ? (const char *)in : "unknown");
            schedule_reconnect(rs, why);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == rs->wsi) {
            rs->st.disconnects++;
            schedule_reconnect(rs, "closed");
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"meadow-relay", callback, 0, RX_BUF, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_next(mdw_relay_source *rs)
{
    url_parts u;
    if (parse_url(rs->o.url, &u)) {
        mdw_error("firehose", "bad relay_url (want ws://, wss://, http:// or https://)", "url=%s",
                  rs->o.url);
        rs->st.connect_failures++;
        schedule_reconnect(rs, "bad url");
        return;
    }
    int64_t cur = mdw_ingest_cursor(rs->in);
    rs->asked_cursor = cur > 0 && !rs->no_cursor_once ? cur : 0;
    rs->no_cursor_once = 0;
    char path[1200];
    if (rs->asked_cursor > 0)
        snprintf(path, sizeof path, "%s?cursor=%" PRId64, u.path, rs->asked_cursor);
    else
        snprintf(path, sizeof path, "%s", u.path);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = rs->ctx;
    ci.address = u.host;
    ci.port = u.port;
    ci.path = path;
    ci.host = u.host;
    ci.origin = u.host;
    ci.ssl_connection = u.tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = protocols[0].name;
    ci.ietf_version_or_minus_one = -1;
    ci.pwsi = &rs->wsi;
    rs->state = ST_CONNECTING;
    rs->got_frame = 0;
    rs->rx_paused = 0;
    if (!lws_client_connect_via_info(&ci) && rs->state == ST_CONNECTING) {
        rs->st.connect_failures++;
        schedule_reconnect(rs, "connect failed");
    }
}

static void wake_cb(lws_sorted_usec_list_t *sul)
{
    mdw_relay_source *rs = lws_container_of(sul, mdw_relay_source, wake);
    lws_cancel_service(rs->ctx);
}

static void wake_loop(void *arg)
{
    mdw_relay_source *rs = arg;
    if (rs->ctx)
        lws_cancel_service(rs->ctx);
}

int mdw_relay_source_new(mdw_relay_source **out, mdw_relay_source_opts *o, mdw_ingest *in,
                         mdw_clock *clock)
{
    if (!o->url)
        return MDW_ECONFIG;
    mdw_relay_source *rs = xcalloc(1, sizeof *rs);
    rs->o = *o;
    memset(o, 0, sizeof *o);
    if (rs->o.backoff_min_us < 1000)
        rs->o.backoff_min_us = 1000;
    if (rs->o.backoff_max_us < rs->o.backoff_min_us)
        rs->o.backoff_max_us = rs->o.backoff_min_us;
    if (rs->o.watchdog_us <= 0)
        rs->o.watchdog_us = 30 * 1000000LL;
    rs->in = in;
    rs->clock = clock;
    rs->rng = rs->o.jitter_seed ? rs->o.jitter_seed : (uint64_t)mdw_clock_now_us(clock) | 1;
    rs->log_rl.interval_us = 10 * 1000000LL;
    mdw_buf_init(&rs->msg, MDW_MAX_FRAME_BYTES);
    for (size_t i = 0; i < sizeof m_frames / sizeof m_frames[0]; i++)
        mdw_counter_register(&m_frames[i]);
    mdw_counter_register(&m_decode_errors);
    mdw_counter_register(&m_sig_errors);
    mdw_counter_register(&m_high_s);
    mdw_counter_register(&m_ops_failed);
    mdw_counter_register(&m_outdated);
    mdw_counter_register(&m_connects);

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = rs;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.pt_serv_buf_size = RX_BUF;
    info.connect_timeout_secs = 10;
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        info.client_ssl_ca_filepath = "/etc/ssl/certs/ca-certificates.crt";
    rs->ctx = lws_create_context(&info);
    if (!rs->ctx) {
        mdw_error("firehose", "lws_create_context failed", NULL);
        mdw_relay_source_free(rs);
        return MDW_ECONFIG;
    }
    rs->state = ST_IDLE;
    rs->next_connect = mono(rs);
    mdw_ingest_set_wake(in, wake_loop, rs);
    *out = rs;
    return 0;
}

void mdw_relay_source_request_stop(mdw_relay_source *rs)
{
    rs->stop = 1;
    if (rs->ctx)
        lws_cancel_service(rs->ctx);
}

static int stopping(const mdw_relay_source *rs)
{
    return rs->stop || rs->fatal || mdw_stop_requested();
}

static int socket_drained(struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi), avail = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0)
        return 1;
    return avail == 0;
}

int mdw_relay_source_run(mdw_relay_source *rs)
{
    while (!stopping(rs)) {
        int64_t now = mono(rs);
        if (rs->state == ST_IDLE && now >= rs->next_connect)
            connect_next(rs);
        if (rs->state == ST_OPEN && rs->wsi) {
            int pause = mdw_ingest_should_pause(rs->in);
            if (pause != rs->rx_paused) {
                lws_rx_flow_control(rs->wsi, pause ? 0 : 1);
                rs->rx_paused = pause;
                rs->last_rx = now;
            }
            if (!rs->rx_paused && now - rs->last_rx > rs->o.watchdog_us) {
                rs->st.watchdog_closes++;
                mdw_warn("firehose", "relay silent: reconnecting", "silent_s=%lld",
                         (long long)((now - rs->last_rx) / 1000000));
                lws_set_timeout(rs->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                rs->last_rx = now;
            }
        }
        int64_t wait = mdw_ingest_next_tick_us(rs->in);
        if (wait > 50000)
            wait = 50000;
        if (rs->state == ST_IDLE && rs->next_connect - now < wait)
            wait = rs->next_connect - now;
        if (wait < 1)
            wait = 1;
        lws_sul_schedule(rs->ctx, 0, &rs->wake, wake_cb, (lws_usec_t)wait);
        if (lws_service(rs->ctx, 0) < 0) {
            mdw_error("firehose", "lws_service failed", NULL);
            break;
        }
        if (rs->state == ST_OPEN && rs->wsi && !rs->rx_paused && socket_drained(rs->wsi))
            mdw_ingest_idle(rs->in);
        mdw_ingest_tick(rs->in);
    }
    lws_sul_cancel(&rs->wake);
    int rc = mdw_ingest_flush(rs->in);
    mdw_info("firehose", "relay stopped",
             "cursor=%" PRId64 " committed=%" PRId64 " frames=%llu events=%llu flush=%s",
             mdw_ingest_cursor(rs->in), mdw_ingest_committed_cursor(rs->in),
             (unsigned long long)rs->st.frames, (unsigned long long)rs->st.events,
             mdw_strerror(rc));
    if (rs->fatal)
        return rs->fatal;
    return rc == MDW_EFULL ? 0 : rc;
}

void mdw_relay_source_free(mdw_relay_source *rs)
{
    if (!rs)
        return;
    mdw_ingest_set_wake(rs->in, NULL, NULL);
    if (rs->ctx)
        lws_context_destroy(rs->ctx);
    mdw_relay_source_opts_release(&rs->o);
    mdw_buf_release(&rs->msg);
    free(rs);
}

void mdw_relay_source_stats_get(const mdw_relay_source *rs, mdw_relay_source_stats *st)
{
    *st = rs->st;
}
