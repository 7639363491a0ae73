/*
** firehose/ingest.h — source-agnostic handoff from a stream to the queue.
**
** A source (the Jetstream client, the relay client) feeds raw events in
** stream order; ingest runs the lightweight filter (firehose/filter.h), keeps
** the candidates in an open batch and tracks the cursor: the largest
** position read so far, dropped and malformed-but-dated events included
** (Jetstream's time_us is not monotonic, so "largest", not "last"). It never
** moves backwards, also not below the cursor stored at start. The cursor is
** an int64 whose meaning belongs to the source (time_us for Jetstream, seq
** for a relay); the source id names its row in the queue's meta table.
**
** A batch is appended, with the cursor, in ONE queue transaction
** (mdw_queue_append) when the caller reports that the socket has nothing
** more ready (mdw_ingest_idle), when it holds batch_max_events candidates,
** or when its first candidate is batch_max_us old (mdw_ingest_tick). With
** no candidate pending, the cursor alone is committed (mdw_queue_commit_cursor)
** at least every cursor_interval_us when it moved, so a quiet stream never
** forces a long rewind. The cursor committed is never ahead of a candidate
** that is not yet stored: cursor-only commits happen only with nothing
** pending, and a batch commits the cursor covering exactly what was read.
**
** Backpressure: mdw_ingest_should_pause() says 1 while the queue is above
** its high-water mark (until it falls to low water) or while a batch waits
** for space after MDW_EFULL; the caller then stops reading its socket (TCP
** backpressure) and keeps calling mdw_ingest_tick(), which retries. Nothing
** is dropped: events the caller still delivers while paused join the open
** batch. A full disk (-ENOSPC, LMDB's EIO on a short write) is the same as
** a full map: pause and retry, with backoff. A queue error no wait cures
** is returned by every call from then on (see mdw_ingest_event).
**
** Writing: synced LMDB commits take milliseconds (much more when the disk is
** busy). In sync mode (default, used by unit tests) the caller's thread
** appends and waits. In async mode (opts.async, used by the Jetstream
** client) a writer thread does the transactions: a closed batch is handed
** over when the writer is free; while it is still writing, the open batch
** keeps collecting and goes as one transaction next (group commit: one fsync
** covers everything read meanwhile; a batch can then exceed
** batch_max_events; past 4 x batch_max_events pending, should_pause says 1
** until the writer is free). The rules above are unchanged: each transaction holds
** whole batches and the cursor covering exactly what was read before it.
**
** Threading: an mdw_ingest is used by one thread (the source's loop), plus
** its own writer thread in async mode. Counters are process-wide metrics.
** Time comes from the mdw_clock given (the writer's retry pacing excepted).
*/
#ifndef MDW_FIREHOSE_INGEST_H
#define MDW_FIREHOSE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/config.h"
#include "firehose/filter.h"
#include "firehose/sources.h"
#include "queue/queue.h"

typedef struct mdw_ingest mdw_ingest;

typedef struct mdw_ingest_opts {
    uint8_t source;             /* queue source id (MDW_SOURCE_JETSTREAM, ...) */
    const char *name;           /* for logs */
    size_t batch_max_events;    /* candidates per append transaction */
    int64_t batch_max_us;       /* longest a batch stays open */
    int64_t cursor_interval_us; /* cursor-only commit period when no candidate arrives */
    int64_t retry_us;           /* retry period after MDW_EFULL or while above high water */
    size_t batch_max_bytes;     /* candidate bytes held at most (then the caller is blocked) */
    int async;                  /* 1: a writer thread does the synced appends (see above) */
} mdw_ingest_opts;

void mdw_ingest_opts_default(mdw_ingest_opts *o, uint8_t source, const char *name);
/* batch_max_events and batch_max_ms from the settings. */
void mdw_ingest_opts_from_config(mdw_ingest_opts *o, const mdw_config *cfg);

/*
** The queue and clock must outlive the ingest. Reads the stored cursor. With
** opts.async a writer thread is started (stopped by flush or free).
*/
int mdw_ingest_new(mdw_ingest **out, mdw_queue *q, mdw_clock *clock, const mdw_ingest_opts *o);
/*
** Async mode: fn(ctx) is called from the writer thread after each finished
** transaction, so a caller sleeping in its event loop can close the next
** batch at once (the Jetstream client passes lws_cancel_service).
*/
void mdw_ingest_set_wake(mdw_ingest *in, void (*fn)(void *), void *ctx);
/* Frees without flushing (call mdw_ingest_flush first to keep the open batch). */
void mdw_ingest_free(mdw_ingest *in);

/* The cursor stored when ingest started (0 and *c set) or MDW_ENOTFOUND. */
int mdw_ingest_start_cursor(const mdw_ingest *in, int64_t *c);
/* The cursor now (largest position read, or the start cursor); 0 when none. */
int64_t mdw_ingest_cursor(const mdw_ingest *in);
int64_t mdw_ingest_committed_cursor(const mdw_ingest *in);

/*
** Feeds one raw event. Its position is its time_us (Jetstream). Returns the
** filter's result (MDW_FILTER_PASS/DROP/MALFORMED, all > 0) or a negative
** error that ends ingest: the queue failed in a way no retry cures
** (corrupt, unknown format; the source must stop and the process exit
** non-zero), or MDW_ESTOPPED while blocked at shutdown. A full map or disk
** is never returned here: it pauses (mdw_ingest_should_pause) and retries.
** The bytes are copied when kept.
*/
int mdw_ingest_event(mdw_ingest *in, const void *data, size_t len);
/* Same with an explicit position (relay seq); position <= 0 = none. */
int mdw_ingest_event_at(mdw_ingest *in, const void *data, size_t len, int64_t position);
/* Advances the cursor without an event (a frame that carries nothing wanted). */
void mdw_ingest_advance(mdw_ingest *in, int64_t position);
/* Counts and logs input that never became an event (e.g. an oversized frame). */
void mdw_ingest_malformed(mdw_ingest *in, mdw_filter_reason r, const void *head, size_t len);

/*
** The socket has nothing more ready: close the open batch now. 0, or the
** error that ended ingest (as mdw_ingest_event).
*/
int mdw_ingest_idle(mdw_ingest *in);
/*
** Timers: closes an old batch, commits the cursor alone, retries after a
** refusal (backoff: retry_us doubling up to 1 s). 0, or the error that
** ended ingest (as mdw_ingest_event): the caller stops reading and returns.
*/
int mdw_ingest_tick(mdw_ingest *in);
/* Microseconds until mdw_ingest_tick() has something to do (capped at 100 ms). */
int64_t mdw_ingest_next_tick_us(mdw_ingest *in);
/* 1: stop reading the socket; 0: read. Cheap; updated by idle/tick/appends. */
int mdw_ingest_should_pause(const mdw_ingest *in);
/*
** Appends the open batch and commits the cursor (shutdown). 0; the refusal
** still in force (mdw_err_environment: nothing lost, the cursor stays
** before what was not stored); or the error that ended ingest.
*/
int mdw_ingest_flush(mdw_ingest *in);

typedef struct mdw_ingest_stats {
    uint64_t events, candidates, batches, cursor_commits, full_retries, pauses;
    uint64_t by_reason[MDW_FILTER_NREASONS];
    size_t pending;
    int paused;
} mdw_ingest_stats;
void mdw_ingest_stats_get(const mdw_ingest *in, mdw_ingest_stats *st);

#endif
