/*
** cmd/cmd_feedgen.c — `meadow feedgen`: serves the XRPC feed endpoints from
** an existing data directory (<data>/index opened read-only) until SIGINT or
** SIGTERM, while another process (`meadow process` or `meadow serve`) may
** be writing the index. Exit 0 after a clean stop.
*/
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/commands.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "feedgen/feedgen.h"
#include "index/index.h"
#include "common/banned.h"

const mdw_cmd_spec mdw_cmd_feedgen_spec = {
    .path = "feedgen",
    .summary = "serve the XRPC feed endpoints from an existing data directory",
    .synopsis = "[--SETTING VALUE ...]",
    .run = mdw_cmd_feedgen,
};

int mdw_cmd_feedgen(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_feedgen_spec, argc, argv, &a))
        return a.status;
    /*
    ** Every request allocates and frees a few KiB on its worker thread's
    ** arena; with glibc's default trimming the arenas shrink and regrow all
    ** the time (page faults, TLB-shootdown IPIs: ~10% of the server's CPU
    ** under wrk, perf). Keep freed memory instead. `meadow serve` should do
    ** the same (docs/feedgen.md).
    */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    int rc = mdw_stop_install();
    if (rc) {
        fprintf(stderr, "meadow feedgen: cannot install signal handlers: %s\n", mdw_strerror(rc));
        return 1;
    }
    char *dir = xasprintf("%s/index", cfg->data);
    mdw_index_opts io = {(size_t)cfg->index_map_mb << 20, 1, 0, NULL};
    mdw_index *ix = NULL;
    rc = mdw_index_open(&ix, dir, &io);
    if (rc) {
        fprintf(stderr, "meadow feedgen: cannot open the index %s read-only: %s\n", dir,
                mdw_strerror(rc));
        free(dir);
        return 1;
    }
    mdw_feedgen *fg = NULL;
    rc = mdw_feedgen_start(&fg, cfg, ix, mdw_clock_real());
    if (rc) {
        fprintf(stderr, "meadow feedgen: cannot serve on %s:%d: %s\n", cfg->bind, (int)cfg->port,
                mdw_strerror(rc));
        mdw_index_close(ix);
        free(dir);
        return 1;
    }
    mdw_info("feedgen", "serving", "index=%s port=%d", dir, mdw_feedgen_port(fg));
    struct pollfd p = {mdw_stop_fd(), POLLIN, 0};
    while (!mdw_stop_requested()) {
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
    }
    mdw_info("feedgen", "stopping", NULL);
    mdw_feedgen_stop(fg);
    mdw_index_close(ix);
    free(dir);
    return 0;
}
