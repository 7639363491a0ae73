/*
** firehose/relay_source.c — see relay_source.h. The connection handling
** (backoff with jitter, watchdog, rx flow control, fragment reassembly, the
** wake-up timer) is firehose/wsclient.c, shared with the Jetstream client;
** what differs is the URL, the cursor (seq, no rewind: seq is monotonic per
** relay) and that each message is a CBOR frame turned into events by
** mdw_relay_decode().
*/
#include "firehose/relay_source.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "firehose/relay.h"
#include "firehose/wsclient.h"
#include "common/banned.h"

#define METHOD "com.atproto.sync.subscribeRepos"
struct mdw_relay_source {
    mdw_relay_source_opts o;
    mdw_ingest *in;
    mdw_clock *clock;
    mdw_wsclient *ws;
    int64_t asked_cursor;
    int no_cursor_once; /* after FutureCursor: ask for the live tail */
    int fatal;          /* an ingest (queue) error: stop */
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

/* The path of the URL, with /xrpc/<method> added when missing, and ?cursor=seq. */
static int request_path(void *ctx, const char *rest, char *path, size_t size, int64_t *cursor)
{
    mdw_relay_source *rs = ctx;
    const char *p = rest;
    char base[1024];
    size_t pl = strcspn(p, "?");
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    int has_method =
        pl >= strlen(METHOD) && !strncmp(p + pl - strlen(METHOD), METHOD, strlen(METHOD));
    int n = snprintf(base, sizeof base, "%s%.*s%s", pl && p[0] == '/' ? "" : "/", (int)pl, p,
                     has_method ? "" : (pl ? "/xrpc/" METHOD : "xrpc/" METHOD));
    if (n < 0 || (size_t)n >= sizeof base)
        return MDW_ECONFIG;
    int64_t cur = mdw_ingest_cursor(rs->in);
    rs->asked_cursor = cur > 0 && !rs->no_cursor_once ? cur : 0;
    rs->no_cursor_once = 0;
    *cursor = rs->asked_cursor;
    if (rs->asked_cursor > 0)
        snprintf(path, size, "%s?cursor=%" PRId64, base, rs->asked_cursor);
    else
        snprintf(path, size, "%s", base);
    return 0;
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
    if (r < 0) { /* ingest ended (logged by the queue and ingest): stop reading */
        rs->fatal = r;
        mdw_wsclient_fail(rs->ws);
        return r; /* stops the frame; the loop ends */
    }
    return 0;
}

static void on_frame(void *ctx, const char *msg, size_t len)
{
    mdw_relay_source *rs = ctx;
    const uint8_t *data = (const uint8_t *)msg;
    rs->st.frames++;
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
        if (mdw_ratelimit_ok(&rs->log_rl, mdw_clock_mono_us(rs->clock), &suppressed))
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

static void on_oversize(void *ctx, const char *head, size_t len)
{
    mdw_relay_source *rs = ctx;
    (void)len;
    rs->st.oversize++;
    mdw_counter_inc(&m_decode_errors);
    mdw_warn("firehose", "relay frame over the limit: skipped", "max=%u", MDW_MAX_FRAME_BYTES);
    mdw_ingest_malformed(rs->in, MDW_FILTER_OVERSIZE, head, 64);
}

int mdw_relay_source_new(mdw_relay_source **out, mdw_relay_source_opts *o, mdw_ingest *in,
                         mdw_clock *clock)
{
    if (!o->url)
        return MDW_ECONFIG;
    mdw_relay_source *rs = xcalloc(1, sizeof *rs);
    rs->o = *o;
    memset(o, 0, sizeof *o);
    if (rs->o.watchdog_us <= 0)
        rs->o.watchdog_us = 30 * 1000000LL;
    rs->in = in;
    rs->clock = clock;
    rs->log_rl.interval_us = 10 * 1000000LL;
    for (size_t i = 0; i < sizeof m_frames / sizeof m_frames[0]; i++)
        mdw_counter_register(&m_frames[i]);
    mdw_counter_register(&m_decode_errors);
    mdw_counter_register(&m_sig_errors);
    mdw_counter_register(&m_high_s);
    mdw_counter_register(&m_ops_failed);
    mdw_counter_register(&m_outdated);
    mdw_counter_register(&m_connects);
    mdw_wsclient_opts wo = {
        .name = "relay",
        .bad_url_msg = "bad relay_url (want ws://, wss://, http:// or https://)",
        .urls = (const char *const *)&rs->o.url,
        .nurls = 1,
        .allow_http = 1,
        .watchdog_us = rs->o.watchdog_us,
        .backoff_min_us = rs->o.backoff_min_us,
        .backoff_max_us = rs->o.backoff_max_us,
        .jitter_seed = rs->o.jitter_seed,
        .max_msg = MDW_MAX_FRAME_BYTES,
        .m_connects = &m_connects,
        .request_path = request_path,
        .on_message = on_frame,
        .on_oversize = on_oversize,
        .ctx = rs,
    };
    int rc = mdw_wsclient_new(&rs->ws, &wo, in, clock);
    if (rc) {
        mdw_relay_source_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

void mdw_relay_source_request_stop(mdw_relay_source *rs)
{
    mdw_wsclient_request_stop(rs->ws);
}

int mdw_relay_source_run(mdw_relay_source *rs)
{
    mdw_wsclient_run(rs->ws);
    int rc = mdw_ingest_flush(rs->in);
    mdw_info("firehose", "relay stopped",
             "cursor=%" PRId64 " committed=%" PRId64 " frames=%llu events=%llu flush=%s",
             mdw_ingest_cursor(rs->in), mdw_ingest_committed_cursor(rs->in),
             (unsigned long long)rs->st.frames, (unsigned long long)rs->st.events,
             mdw_strerror(rc));
    if (rs->fatal)
        return rs->fatal;
    /* Still refused for space at shutdown: nothing is lost, the cursor stays before it. */
    return mdw_err_environment(rc) ? 0 : rc;
}

void mdw_relay_source_free(mdw_relay_source *rs)
{
    if (!rs)
        return;
    mdw_wsclient_free(rs->ws);
    mdw_relay_source_opts_release(&rs->o);
    free(rs);
}
