/*
** cmd/cmd_serve.c — `meadow serve`: every stage in one process.
**
** Opens <data>/queue and <data>/index once (LMDB allows one open per
** process; the handles are shared by the threads), then starts the processor
** thread, the feed server's threads and the firehose thread. On SIGINT or
** SIGTERM it stops them in data-flow order: ingest first (the open batch and
** the cursor are flushed to the queue), then the processor (it finishes the
** batch in hand), then the HTTP server (in-flight requests finish), and closes
** LMDB. Anything still queued is processed on the next start. A stage whose
** thread ends on its own (the processor gave up, ingest hit a queue error no
** retry cures) stops the process the same way, with status 1: no half-alive
** server. A full disk ends nothing: the stages pause and resume.
*/
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "feedgen/feedgen.h"
#include "firehose/firehose.h"
#include "index/index.h"
#include "processor/processor.h"
#include "queue/queue.h"
#include "common/banned.h"

const mdw_cmd_spec mdw_cmd_serve_spec = {
    .path = "serve",
    .summary = "run firehose, processor and feed server in one process",
    .synopsis = "[--SETTING VALUE ...]",
    .run = mdw_cmd_serve,
};

int mdw_cmd_serve(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_serve_spec, argc, argv, &a))
        return a.status;
    mdw_clock *clock = mdw_clock_real();
    mdw_stop_install();
    /*
    ** The feed server's replies make glibc trim and regrow the heap on every
    ** request (~10% of CPU measured, docs/feedgen.md); meadow feedgen sets the
    ** same threshold.
    */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);

    int rc = 0, exit_code = 1;
    mdw_queue *q = NULL;
    mdw_index *ix = NULL;
    mdw_processor *proc = NULL;
    mdw_feedgen *fg = NULL;
    mdw_firehose *fh = NULL;

    char *qdir = mdw_queue_dir(cfg);
    mdw_queue_opts qo;
    mdw_queue_opts_from_config(&qo, cfg);
    rc = mdw_queue_open(&q, qdir, &qo);
    if (rc) {
        mdw_error("serve", "cannot open queue", "dir=%s err=\"%s\"", qdir, mdw_strerror(rc));
        goto out;
    }
    char *idir = xasprintf("%s/index", cfg->data);
    mdw_index_opts io = {0};
    io.map_bytes = (size_t)cfg->index_map_mb << 20;
    rc = mdw_index_open(&ix, idir, &io);
    if (rc)
        mdw_error("serve", "cannot open index", "dir=%s err=\"%s\"", idir, mdw_strerror(rc));
    free(idir);
    if (rc)
        goto out;

    mdw_processor_cfg pc;
    mdw_processor_cfg_from_config(&pc, cfg);
    rc = mdw_processor_start(&proc, &pc, q, ix, clock);
    if (rc) {
        mdw_error("serve", "cannot start processor", "err=\"%s\"", mdw_strerror(rc));
        goto out;
    }
    rc = mdw_feedgen_start(&fg, cfg, ix, clock);
    if (rc) {
        mdw_error("serve", "cannot start feed server", "err=\"%s\"", mdw_strerror(rc));
        goto out;
    }
    rc = mdw_firehose_start(&fh, cfg, q, clock);
    if (rc) {
        mdw_error("serve", "cannot start firehose", "err=\"%s\"", mdw_strerror(rc));
        goto out;
    }
    mdw_info("serve", "serving", "data=%s bind=%s port=%d source=%s", cfg->data, cfg->bind,
             mdw_feedgen_port(fg), cfg->source);

    /*
    ** A stage whose thread ended on its own cannot go on (a full disk only
    ** pauses them): stop everything and exit non-zero rather than answer
    ** HTTP from an index nobody updates any more.
    */
    int stage_ended = 0;
    while (!mdw_stop_requested()) {
        if (mdw_processor_ended(proc) || mdw_firehose_ended(fh)) {
            mdw_error("serve", "a stage stopped on an error: shutting down", "stage=%s",
                      mdw_processor_ended(proc) ? "processor" : "firehose");
            stage_ended = 1;
            break;
        }
        struct pollfd p = {.fd = mdw_stop_fd(), .events = POLLIN};
        if (poll(&p, 1, 200) < 0 && errno != EINTR)
            break;
    }
    mdw_info("serve", "stopping", NULL);
    exit_code = stage_ended;

out:
    if (fh && mdw_firehose_stop(fh))
        exit_code = 1;
    if (proc && mdw_processor_stop(proc))
        exit_code = 1;
    mdw_feedgen_stop(fg);
    mdw_index_close(ix);
    mdw_queue_close(q);
    free(qdir);
    if (exit_code == 0)
        mdw_info("serve", "stopped", NULL);
    return exit_code;
}
