/*
** firehose/relay_source.h — the relay / PDS subscribeRepos WebSocket client
** (libwebsockets), the `relay` source.
**
** Connects to <relay_url>/xrpc/com.atproto.sync.subscribeRepos (ws://, wss://;
** http(s):// is taken as ws(s)://; a URL already ending in the method name is
** used as is) with cursor = the stored seq when there is one. Each binary
** message (reassembled from fragments, capped at MDW_MAX_FRAME_BYTES) is
** decoded by mdw_relay_decode() into Jetstream-shaped events, which go to the
** same mdw_ingest (lightweight filter, batching, cursor) as Jetstream's, with
** the frame's seq as their position. Ops of collections the filter would drop
** anyway are not rendered (the `want` hook). Frames without a wanted event
** still advance the cursor.
**
** Frames that fail to decode (or to verify, with verify_commits) are counted
** by frame type and logged (rate-limited) with their reason; the stream goes
** on. #sync frames are counted and logged as "repository needs re-reading"
** (the re-read itself belongs to `meadow rebuild`). #info OutdatedCursor is
** logged and counted (the relay replays what it still has). Error frames are
** logged; the relay closes the connection after them and we reconnect; after
** FutureCursor the next connection asks for no cursor (live tail).
**
** Reconnects: exponential backoff with jitter (backoff_min .. backoff_max,
** reset once a connection delivers a frame), watchdog after watchdog_s of
** silence while reading, TCP backpressure while ingest says pause. Same
** threading as the Jetstream client: mdw_relay_source_run() runs the lws
** loop in the calling thread until mdw_relay_source_request_stop() (any
** thread) or mdw_stop_requested(), then flushes the ingest and returns.
*/
#ifndef MDW_FIREHOSE_RELAY_SOURCE_H
#define MDW_FIREHOSE_RELAY_SOURCE_H

#include <stdint.h>

#include "common/clock.h"
#include "common/config.h"
#include "identity/identity.h"
#include "firehose/ingest.h"

typedef struct mdw_relay_source mdw_relay_source;

typedef struct mdw_relay_source_opts {
    char *url; /* owned (mdw_relay_source_opts_release) */
    int64_t watchdog_us, backoff_min_us, backoff_max_us;
    uint64_t jitter_seed;       /* 0 = from the clock */
    mdw_did_resolver *resolver; /* owned: verify every commit when set */
} mdw_relay_source_opts;

/* From relay_url, watchdog_s, backoff_*, verify_commits + did_docs_file. */
int mdw_relay_source_opts_from_config(mdw_relay_source_opts *o, const mdw_config *cfg);
void mdw_relay_source_opts_release(mdw_relay_source_opts *o);

typedef struct mdw_relay_source_stats {
    uint64_t connects, connect_failures, disconnects, watchdog_closes, frames, events;
    uint64_t decode_errors, ops_failed, sync_frames, info_frames, error_frames, unknown_frames;
    uint64_t oversize, high_s;
} mdw_relay_source_stats;

/* Takes ownership of o's contents (o is left empty). */
int mdw_relay_source_new(mdw_relay_source **out, mdw_relay_source_opts *o, mdw_ingest *in,
                         mdw_clock *clock);
int mdw_relay_source_run(mdw_relay_source *rs);
void mdw_relay_source_request_stop(mdw_relay_source *rs);
void mdw_relay_source_free(mdw_relay_source *rs);

#endif
