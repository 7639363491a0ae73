/*
** firehose/wsclient.h — the WebSocket client connection both firehose
** sources (Jetstream, relay subscribeRepos) run on: libwebsockets client
** setup (TLS with the system CA store), URL parsing, reconnect with an
** exponential backoff with jitter over a list of URLs, the watchdog, rx flow
** control driven by the ingest, fragment reassembly into a capped buffer and
** the service loop with its wake-up timer. What differs between the sources
** comes in through callbacks: the request path for this connection (with the
** cursor to ask for) and what to do with a complete message.
**
** Threading: mdw_wsclient_run() runs the lws service loop in the calling
** thread (all callbacks run there) until mdw_wsclient_request_stop() (any
** thread), mdw_wsclient_fail() (from a callback) or mdw_stop_requested(). It
** does not flush the ingest: the source does that after run() returns.
** Ownership: the URLs, the ingest, the clock and the counters are borrowed and
** must outlive the client.
*/
#ifndef MDW_FIREHOSE_WSCLIENT_H
#define MDW_FIREHOSE_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/metrics.h"
#include "firehose/ingest.h"

typedef struct mdw_wsclient mdw_wsclient;

typedef struct mdw_wsclient_opts {
    const char *name;        /* "jetstream": log texts and lws protocol "meadow-<name>" */
    const char *bad_url_msg; /* logged when a URL does not parse */
    const char *const *urls; /* tried in turn, one more after each failure */
    int nurls;
    int allow_http; /* http(s):// is taken as ws(s):// */
    int log_url;    /* reconnect and watchdog lines name the URL */
    int64_t watchdog_us, backoff_min_us, backoff_max_us;
    uint64_t jitter_seed; /* 0 = from the clock */
    size_t max_msg;       /* reassembly cap */
    /* optional counters (NULL = not counted) */
    mdw_counter *m_connects, *m_failures, *m_watchdog, *m_bytes;
    /*
    ** Before each connection: from the URL's path and query (after host and
    ** port, possibly empty), write the request path into path[size] and the
    ** cursor asked for (0 = none) into *cursor. Nonzero = the URL is bad.
    */
    int (*request_path)(void *ctx, const char *rest, char *path, size_t size, int64_t *cursor);
    /* A complete message (at most max_msg bytes). */
    void (*on_message)(void *ctx, const char *data, size_t len);
    /* A message over max_msg: what was buffered of it; the rest is skipped. */
    void (*on_oversize)(void *ctx, const char *head, size_t len);
    void *ctx;
} mdw_wsclient_opts;

typedef struct mdw_wsclient_stats {
    uint64_t connects, connect_failures, disconnects, watchdog_closes;
} mdw_wsclient_stats;

/* nurls >= 1 and the three callbacks are required. */
int mdw_wsclient_new(mdw_wsclient **out, const mdw_wsclient_opts *o, mdw_ingest *in,
                     mdw_clock *clock);
void mdw_wsclient_run(mdw_wsclient *ws);
/* Thread-safe and idempotent: makes mdw_wsclient_run() return soon. */
void mdw_wsclient_request_stop(mdw_wsclient *ws);
/* From a callback: a fatal error, run() returns after this service pass. */
void mdw_wsclient_fail(mdw_wsclient *ws);
void mdw_wsclient_free(mdw_wsclient *ws);

#endif
