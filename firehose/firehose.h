/*
** firehose/firehose.h — the ingest stage as one unit, for `meadow serve`
** (its own thread) and `meadow firehose` (the calling thread).
**
** It reads the configured source (setting `source`: jetstream; relay is
** built by firehose/relay*; none = no ingest), runs the lightweight filter
** and appends batches with the cursor to the queue (firehose/ingest.h). The
** queue and clock belong to the caller and must outlive the firehose.
**
** mdw_firehose_start() starts a thread and returns at once;
** mdw_firehose_stop() (any thread) makes it flush the open batch and the
** cursor, joins it and frees everything. mdw_firehose_run() blocks until
** SIGINT/SIGTERM (common/stop.h) and then flushes the same way.
*/
#ifndef MDW_FIREHOSE_H
#define MDW_FIREHOSE_H

#include "common/clock.h"
#include "common/config.h"
#include "queue/queue.h"

typedef struct mdw_firehose mdw_firehose;

int mdw_firehose_start(mdw_firehose **out, const mdw_config *cfg, mdw_queue *q, mdw_clock *clock);
/* Returns the thread's result (0, or the error that ended it). NULL-safe. */
int mdw_firehose_stop(mdw_firehose *fh);
/*
** 1 once the thread has returned on its own: ingest hit a queue error no
** retry cures (a full disk only pauses it). mdw_firehose_stop returns the
** error; `meadow serve` then exits non-zero.
*/
int mdw_firehose_ended(const mdw_firehose *fh);
int mdw_firehose_run(const mdw_config *cfg, mdw_queue *q, mdw_clock *clock);

#endif
