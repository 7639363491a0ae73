/*
** queue/queue.h — the durable event queue between ingest and processing.
**
** An LMDB environment in <data>/queue with tables:
**   events  u64 seq (big-endian) -> envelope (header + raw event bytes)
**   meta    "cursor/<source>" -> i64, "next_seq" -> u64
**   dead    u64 seq -> envelope + attempts + last error
** Nothing accepted is ever lost: mdw_queue_append() stores a batch of events
** AND the source's cursor in one durable write transaction, so the cursor
** never runs ahead of what is stored. Claimed events stay in `events` until
** acked; a crash before the ack redelivers them (at-least-once).
**
** Concurrency: one mdw_queue handle may be used from several threads (LMDB
** serializes writers; readers never block). Several processes may open the
** same directory (the firehose appending while a processor claims and acks).
** Claims are not exclusive between processes: exactly one consumer
** (processor) must run — the processor enforces that with its own lock.
** Open a directory at most once per process (an LMDB rule): share the handle.
** Seqs are never reused, even after the table empties (next_seq in meta), so
** a consumer may remember "last applied seq" across restarts.
** A map grown by another process (MDB_MAP_RESIZED) is adopted transparently;
** stale reader slots of killed processes are cleared on open (and on a full
** map). mdw_queue_wait() is woken by appends through this handle only; a
** consumer in another process relies on its timeout.
**
** Errors: 0 or a negative code (common/err.h), logged once here (failures
** that are the environment's, mdw_err_environment(), at most every 10 s; a
** short write on a full filesystem is reported as -ENOSPC, not LMDB's EIO):
** callers pass the code on without logging it again. MDW_EFULL means the
** map is full: pause ingest and retry after the consumer drains; nothing is
** corrupted. -ENOSPC/-EIO: the same, the disk is full; nothing was written. Appends stop short of
*the last few pages of the map (1/32 of
** it, 8..1024 pages) so acks, which copy pages too, still fit when full.
** Memory returned in mdw_queue_batch is owned by the batch
** (mdw_queue_batch_release).
*/
#ifndef MDW_QUEUE_H
#define MDW_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

typedef struct mdw_queue mdw_queue;

#define MDW_QUEUE_MAX_ERROR 1024 /* bytes of a dead letter's error text kept */

typedef struct mdw_queue_opts {
    size_t map_bytes;       /* LMDB map size; 0 = the size the environment has */
    size_t max_event_bytes; /* larger events are refused (MDW_ETOOBIG), counted */
    int max_attempts;       /* nacks before an event moves to dead */
    uint64_t high_water;    /* depth at which ingest should stop reading */
    uint64_t low_water;     /* depth at which ingest may resume */
    int nosync;             /* tests/bench only: MDB_NOSYNC */
    mdw_clock *clock;       /* oldest-age gauge; NULL = mdw_clock_real() */
} mdw_queue_opts;

void mdw_queue_opts_default(mdw_queue_opts *o);
/*
** Defaults, then the queue_* settings (queue_map_mb, queue_max_attempts,
** queue_high_water, queue_low_water). The directory is "<data>/queue":
** mdw_queue_dir() returns it (caller frees).
*/
struct mdw_config;
void mdw_queue_opts_from_config(mdw_queue_opts *o, const struct mdw_config *cfg);
char *mdw_queue_dir(const struct mdw_config *cfg);

/* One event going in. */
typedef struct mdw_queue_event {
    const void *data;
    size_t len;
    int64_t time_us; /* source time (Jetstream time_us / relay frame time) */
} mdw_queue_event;

/* One event coming out of a claim. data points into the batch's storage. */
typedef struct mdw_queue_item {
    uint64_t seq;
    uint8_t source; /* the producer's id, opaque to the queue (firehose/sources.h lists them) */
    int64_t time_us;
    uint32_t attempts;
    const char *data;
    size_t len;
} mdw_queue_item;

typedef struct mdw_queue_batch {
    mdw_queue_item *items;
    size_t n;
    size_t cap;
    char *store; /* owns the copied event bytes */
    size_t store_len, store_cap;
} mdw_queue_batch;

typedef struct mdw_queue_stats {
    uint64_t depth;         /* events waiting (claimed but unacked included) */
    int64_t oldest_time_us; /* time_us of the oldest waiting event, 0 if none */
    uint64_t dead;          /* dead letters */
    uint64_t bytes_used;    /* pages in use * page size */
    uint64_t map_bytes;     /* map size */
    uint64_t next_seq;
    uint64_t refused_toobig; /* this handle's count of oversized events */
    uint64_t stale_readers;  /* reader slots of dead processes cleared at open */
} mdw_queue_stats;

int mdw_queue_open(mdw_queue **out, const char *dir, const mdw_queue_opts *opts);
void mdw_queue_close(mdw_queue *q);

/*
** Appends n events (in order) and sets the cursor of `source` (an opaque
** byte naming the producer: its events are stamped with it) to `cursor`, in
** ONE write transaction, synced before returning. n may be 0 (cursor only).
** An event over max_event_bytes fails the whole call with MDW_ETOOBIG before
** anything is written (callers filter those out first with
** mdw_queue_event_fits()). MDW_EFULL: nothing written.
*/
int mdw_queue_append(mdw_queue *q, uint8_t source, const mdw_queue_event *ev, size_t n,
                     int64_t cursor);
int mdw_queue_commit_cursor(mdw_queue *q, uint8_t source, int64_t cursor);
/* 0 and *cursor = stored value, or MDW_ENOTFOUND when none stored yet. */
int mdw_queue_get_cursor(mdw_queue *q, uint8_t source, int64_t *cursor);
int mdw_queue_event_fits(const mdw_queue *q, size_t len);

/*
** Claims up to max of the oldest events with seq > after_seq (pass 0 to start
** at the head; pass the last seq of the previous batch to continue without
** waiting for its ack). Fills *b (reset first). 0 with b->n == 0 when empty.
*/
int mdw_queue_claim(mdw_queue *q, uint64_t after_seq, size_t max, mdw_queue_batch *b);
/* Deletes these seqs in one transaction. Unknown seqs are ignored. */
int mdw_queue_ack(mdw_queue *q, const uint64_t *seqs, size_t n);
/*
** Records a failure: attempts+1; once attempts reach max_attempts the event
** moves to `dead` with `error` (one transaction). *dead_out (may be NULL) is
** set to 1 when it moved.
*/
int mdw_queue_nack(mdw_queue *q, uint64_t seq, const char *error, int *dead_out);
/* Moves straight to dead (malformed input that no retry can fix). */
int mdw_queue_dead_letter(mdw_queue *q, uint64_t seq, const char *error);

/*
** Dead letters: visit each (seq, attempts, error, bytes) in seq order, inside
** one read transaction: fn must not call back into the queue. A non-zero
** return from fn stops the walk and is returned.
*/
typedef int (*mdw_queue_dead_fn)(void *ctx, uint64_t seq, uint32_t attempts, const char *error,
                                 const char *data, size_t len);
int mdw_queue_dead_list(mdw_queue *q, mdw_queue_dead_fn fn, void *ctx);
/* Requeue (attempts reset, new seq at the tail) or purge; seq 0 = all. *n_out = count. */
int mdw_queue_dead_requeue(mdw_queue *q, uint64_t seq, uint64_t *n_out);
int mdw_queue_dead_purge(mdw_queue *q, uint64_t seq, uint64_t *n_out);

int mdw_queue_stats_get(mdw_queue *q, mdw_queue_stats *st);
/*
** Cheap depth for backpressure checks (entries in `events`): 0 and *depth,
** or a negative code (logged) with *depth 0 — never a failure read as empty.
*/
int mdw_queue_depth(mdw_queue *q, uint64_t *depth);
/* 1 or 0, or the negative code of mdw_queue_depth(). */
int mdw_queue_above_high_water(mdw_queue *q);
int mdw_queue_below_low_water(mdw_queue *q);

/*
** Wake-up between an appender and a consumer in the same process: append
** signals, mdw_queue_wait() blocks until new data was appended since the last
** call, timeout_ms passes, or mdw_queue_wake() is called (shutdown).
** Returns 1 if woken by data, 0 on timeout/wake.
*/
int mdw_queue_wait(mdw_queue *q, int timeout_ms);
void mdw_queue_wake(mdw_queue *q);

void mdw_queue_batch_init(mdw_queue_batch *b);
void mdw_queue_batch_release(mdw_queue_batch *b);

#endif
