#include "firehose/jetstream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "firehose/wsclient.h"
#include "common/banned.h"

#define WANTED "wantedCollections=app.bsky.feed.post&wantedCollections=net.atrarium.*"
struct mdw_jetstream {
    mdw_jetstream_opts o;
    mdw_ingest *in;
    mdw_wsclient *ws;
    int64_t asked_cursor; /* cursor sent on this connection, 0 = none */
    int first_event_seen;
    int fatal; /* the error that ended ingest: stop, and run() returns it */
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

/* --------------------------------------------------------------- the client */

/* The path (with a leading '/') + wantedCollections + the cursor, stored - rewind. */
static int request_path(void *ctx, const char *rest, char *path, size_t size, int64_t *cursor)
{
    mdw_jetstream *js = ctx;
    char base[1024];
    int n = snprintf(base, sizeof base, "%s%s", *rest == '/' ? "" : "/", rest);
    if (n < 0 || (size_t)n >= sizeof base)
        return MDW_ECONFIG;
    int64_t cur = mdw_ingest_cursor(js->in);
    js->asked_cursor = cur > 0 ? cur - js->o.rewind_us : 0;
    if (js->asked_cursor < 0)
        js->asked_cursor = 0;
    *cursor = js->asked_cursor;
    if (js->asked_cursor > 0)
        snprintf(path, size, "%s%c" WANTED "&cursor=%" PRId64, base, strchr(base, '?') ? '&' : '?',
                 js->asked_cursor);
    else
        snprintf(path, size, "%s%c" WANTED, base, strchr(base, '?') ? '&' : '?');
    js->first_event_seen = 0;
    return 0;
}

static void on_event(void *ctx, const char *data, size_t len)
{
    mdw_jetstream *js = ctx;
    js->st.messages++;
    js->st.bytes += len;
    int res = mdw_ingest_event(js->in, data, len);
    if (res < 0) {
        /* The queue failed for good (logged by the queue and ingest): stop reading. */
        js->fatal = res;
        mdw_wsclient_fail(js->ws);
        return;
    }
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

static void on_oversize(void *ctx, const char *head, size_t len)
{
    mdw_jetstream *js = ctx;
    js->st.oversize++;
    mdw_ingest_malformed(js->in, MDW_FILTER_OVERSIZE, head, len);
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
    js->in = in;
    mdw_counter_register(&m_connects);
    mdw_counter_register(&m_failures);
    mdw_counter_register(&m_watchdog);
    mdw_counter_register(&m_clamped);
    mdw_counter_register(&m_bytes);
    mdw_wsclient_opts wo = {
        .name = "jetstream",
        .bad_url_msg = "bad jetstream url (want ws:// or wss://)",
        .urls = (const char *const *)js->o.urls,
        .nurls = js->o.nurls,
        .log_url = 1,
        .watchdog_us = o->watchdog_us,
        .backoff_min_us = o->backoff_min_us,
        .backoff_max_us = o->backoff_max_us,
        .jitter_seed = o->jitter_seed,
        .max_msg = MDW_MAX_EVENT_BYTES,
        .m_connects = &m_connects,
        .m_failures = &m_failures,
        .m_watchdog = &m_watchdog,
        .m_bytes = &m_bytes,
        .request_path = request_path,
        .on_message = on_event,
        .on_oversize = on_oversize,
        .ctx = js,
    };
    int rc = mdw_wsclient_new(&js->ws, &wo, in, clock);
    if (rc) {
        mdw_jetstream_free(js);
        return rc;
    }
    *out = js;
    return 0;
}

void mdw_jetstream_request_stop(mdw_jetstream *js)
{
    mdw_wsclient_request_stop(js->ws);
}

int mdw_jetstream_run(mdw_jetstream *js)
{
    mdw_wsclient_run(js->ws);
    int rc = mdw_ingest_flush(js->in);
    mdw_info("firehose", "jetstream stopped", "cursor=%" PRId64 " committed=%" PRId64 " flush=%s",
             mdw_ingest_cursor(js->in), mdw_ingest_committed_cursor(js->in), mdw_strerror(rc));
    if (js->fatal)
        return js->fatal;
    /* Still refused for space at shutdown: nothing is lost, the cursor stays before it. */
    return mdw_err_environment(rc) ? 0 : rc;
}

void mdw_jetstream_free(mdw_jetstream *js)
{
    if (!js)
        return;
    mdw_wsclient_free(js->ws);
    mdw_jetstream_opts_release(&js->o);
    free(js);
}
