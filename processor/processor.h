/*
** processor/processor.h — the processing stage: queue -> index.
**
** Claims batches from the queue, decodes each event, validates records
** against the lexicon documents (plus Meadow's application rules), applies
** the community rules (processor/rules.h) in ONE index write transaction per
** batch that also stores the batch's last queue seq, then acks the batch.
** A crash between the index commit and the ack is harmless: on restart the
** claimed events with seq <= the stored seq are acked without being applied
** again. Malformed events (bad JSON, missing fields) go to dead letters with
** their error; invalid records are refused, logged and counted (acked, not
** retried). Storage that refuses writes (a full disk or map, I/O errors:
** mdw_err_environment) is never the events' fault: the batch is kept, not
** nacked, and mdw_processor_run retries it with backoff until it commits.
** Any other index failure nacks the batch (the queue dead-letters events
** that keep failing).
**
** Exactly one processor may run per data directory: mdw_processor_open()
** takes an exclusive flock on <data>/processor.lock (MDW_ELOCKED otherwise);
** it is released by close (or by the kernel when the process dies).
** Retention is swept at open and every sweep_interval.
**
** Decoding runs on a second thread: while the step applies one claimed
** chunk of events, the decoder claims and decodes the next (parse, lexicon,
** hashes, hashtags: everything that does not read the index), so a busy
** processor uses up to two cores. The index sees the same events in the same
** order either way.
**
** Threading: one processor handle is driven by one thread (its own, after
** mdw_processor_start, or the caller's in mdw_processor_run/step). The
** index and queue handles may be shared with other threads (feedgen reads,
** the firehose appends). Wake-ups come from mdw_queue_wait (appends in this
** process signal it); the wait's timeout (1 s at most) covers appends made
** by another process (`meadow firehose` beside `meadow process`).
*/
#ifndef MDW_PROCESSOR_H
#define MDW_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/config.h"
#include "index/index.h"
#include "lexicon/lexicon.h"
#include "queue/queue.h"

typedef struct mdw_processor mdw_processor;

typedef struct mdw_processor_cfg {
    const char *data_dir;      /* holds processor.lock */
    int64_t retention_us;      /* posts older than this leave the feeds */
    int64_t sweep_interval_us; /* retention sweep period */
    size_t batch;              /* events claimed per index transaction */
    const mdw_lexicon *lex;    /* NULL: the built-in documents are loaded (and owned) */
    int wait_max_ms;           /* longest queue wait (0 = 1000): bounds cross-process latency */
    int decode_inline;         /* 1: no decoder thread (tests compare the two) */
} mdw_processor_cfg;

/* Fills cfg from the settings (data, retention_days, sweep_interval_s, process_batch). */
void mdw_processor_cfg_from_config(mdw_processor_cfg *pc, const mdw_config *c);

/* Counts since open (the same figures also go to meadow_processor_* metrics). */
typedef struct mdw_processor_stats {
    uint64_t applied, noop, refused, skipped, dead, replayed;
    uint64_t refused_lexicon, refused_app;
    uint64_t batches, swept_posts, swept_records, index_errors;
    uint64_t storage_waits; /* batches kept and retried: storage full or failing */
    uint64_t last_seq;
} mdw_processor_stats;

/* Takes the lock, loads what it needs, sweeps retention once. */
int mdw_processor_open(mdw_processor **out, const mdw_processor_cfg *cfg, mdw_queue *q,
                       mdw_index *ix, mdw_clock *clock);
void mdw_processor_close(mdw_processor *p);

/* Processes at most one batch; *n = events claimed (0 when the queue was empty). */
int mdw_processor_step(mdw_processor *p, size_t *n);
/* Sweeps retention now (its own transaction). */
int mdw_processor_sweep(mdw_processor *p);
/*
** Blocking loop for `meadow process`: steps while there is work, sweeps when
** due, waits on the queue otherwise; returns 0 when mdw_stop_requested() or
** mdw_processor_request_stop(), or an error code when the index fails hard.
*/
int mdw_processor_run(mdw_processor *p);
void mdw_processor_request_stop(mdw_processor *p);

/*
** For `meadow serve`: open + a thread running mdw_processor_run. stop
** requests the stop, wakes the wait, lets the current batch finish, joins
** and closes (returns the loop's result). NULL-safe.
*/
int mdw_processor_start(mdw_processor **out, const mdw_processor_cfg *cfg, mdw_queue *q,
                        mdw_index *ix, mdw_clock *clock);
int mdw_processor_stop(mdw_processor *p);
/*
** 1 once the thread of mdw_processor_start has returned on its own (it
** gave up: mdw_processor_stop returns why). `meadow serve` then stops
** everything and exits non-zero instead of serving a frozen index.
*/
int mdw_processor_ended(const mdw_processor *p);

void mdw_processor_stats_get(mdw_processor *p, mdw_processor_stats *st);

#endif
