/*
** cmd/cmd_firehose.c — `meadow firehose`: the ingest stage alone. Opens
** <data>/queue with the queue_* settings and runs the configured source
** (firehose/firehose.h) until SIGINT/SIGTERM, then flushes the open batch and
** the cursor and exits 0. Network failures never end it: the client retries
** with backoff; so does a full queue or disk (ingest pauses reading). A queue
** error no retry cures (corrupt, unknown format) ends it with status 1.
*/
#include <stdio.h>
#include <stdlib.h>

#include "cmd/commands.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "firehose/firehose.h"
#include "queue/queue.h"
#include "common/banned.h"

const mdw_cmd_spec mdw_cmd_firehose_spec = {
    .path = "firehose",
    .summary = "run ingest alone: source -> lightweight filter -> queue",
    .synopsis = "[--SETTING VALUE ...]",
    .run = mdw_cmd_firehose,
};

int mdw_cmd_firehose(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_firehose_spec, argc, argv, &a))
        return a.status;
    int rc = mdw_stop_install();
    if (rc) {
        fprintf(stderr, "meadow firehose: cannot install signal handlers: %s\n", mdw_strerror(rc));
        return 1;
    }
    char *dir = mdw_queue_dir(cfg);
    mdw_queue_opts qo;
    mdw_queue_opts_from_config(&qo, cfg);
    mdw_queue *q;
    rc = mdw_queue_open(&q, dir, &qo);
    if (rc) {
        fprintf(stderr, "meadow firehose: cannot open queue %s: %s\n", dir, mdw_strerror(rc));
        free(dir);
        return 1;
    }
    mdw_info("firehose", "starting", "queue=%s source=%s", dir, cfg->source);
    rc = mdw_firehose_run(cfg, q, mdw_clock_real());
    mdw_queue_close(q);
    free(dir);
    if (rc) {
        fprintf(stderr, "meadow firehose: %s\n", mdw_strerror(rc));
        return 1;
    }
    return 0;
}
