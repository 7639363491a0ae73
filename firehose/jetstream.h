/*
** firehose/jetstream.h — the Jetstream WebSocket client (libwebsockets).
**
** Connects to the first of a list of /subscribe URLs (ws:// or wss://, TLS
** with the system CA store) asking for wantedCollections=app.bsky.feed.post
** and net.atrarium.*, and, when a cursor is stored, cursor = stored - rewind
** (duplicates inside the rewind are expected and harmless downstream). Each
** message (reassembled from fragments into a buffer capped at
** MDW_MAX_EVENT_BYTES; larger ones are counted as oversize and skipped) goes
** to an mdw_ingest. After each service pass that leaves the socket with
** nothing more to read, the open batch is closed (mdw_ingest_idle).
**
** Failures (refused, DNS, TLS, close, garbage at the WebSocket level) lead to
** a reconnect to the NEXT URL after an exponential backoff with jitter
** (backoff_min .. backoff_max; reset once a connection delivers a message).
** A watchdog closes a connection that was silent for watchdog_s while we were
** reading. A resume cursor older than the server keeps is clamped by
** Jetstream without notice: when the first event after connecting is more
** than a minute newer than the cursor asked for, it is logged and counted
** (meadow_firehose_cursor_clamped_total). While ingest says pause (queue
** above high water, or full), the socket is not read (lws_rx_flow_control):
** TCP backpressure reaches the server and nothing is dropped.
**
** Threading: mdw_jetstream_run() runs the lws service loop in the calling
** thread until mdw_jetstream_request_stop() (any thread) or
** mdw_stop_requested(); it then flushes the ingest (open batch + cursor) and
** returns 0. The ingest and clock belong to the caller and must outlive it.
*/
#ifndef MDW_FIREHOSE_JETSTREAM_H
#define MDW_FIREHOSE_JETSTREAM_H

#include <stdint.h>

#include "common/clock.h"
#include "common/config.h"
#include "firehose/ingest.h"

typedef struct mdw_jetstream mdw_jetstream;

#define MDW_JETSTREAM_MAX_URLS 16
#define MDW_JETSTREAM_CLAMP_US (60 * 1000000LL) /* first event this much newer = clamped */

typedef struct mdw_jetstream_opts {
    char *urls[MDW_JETSTREAM_MAX_URLS]; /* owned by the opts (mdw_jetstream_opts_release) */
    int nurls;
    int64_t rewind_us, watchdog_us, backoff_min_us, backoff_max_us;
    uint64_t jitter_seed; /* 0 = from the clock */
} mdw_jetstream_opts;

/* From the settings jetstream_urls (comma-separated), rewind_s, watchdog_s, backoff_*. */
int mdw_jetstream_opts_from_config(mdw_jetstream_opts *o, const mdw_config *cfg);
void mdw_jetstream_opts_release(mdw_jetstream_opts *o);

int mdw_jetstream_new(mdw_jetstream **out, const mdw_jetstream_opts *o, mdw_ingest *in,
                      mdw_clock *clock);
int mdw_jetstream_run(mdw_jetstream *js);
/* Thread-safe and idempotent: makes mdw_jetstream_run() return soon. */
void mdw_jetstream_request_stop(mdw_jetstream *js);
void mdw_jetstream_free(mdw_jetstream *js);

typedef struct mdw_jetstream_stats {
    uint64_t connects, connect_failures, disconnects, watchdog_closes, clamped, messages, bytes;
    uint64_t oversize;
} mdw_jetstream_stats;

#endif
