/*
** cmd/cmd_process.c — `meadow process` (the processing stage alone) and
** `meadow index stats | dump [feed-uri] [--records] | backup DIR`.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/commands.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/stop.h"
#include "index/index.h"
#include "processor/processor.h"
#include "queue/queue.h"
#include "common/banned.h"

static char *data_path(const mdw_config *cfg, const char *name)
{
    return xasprintf("%s/%s", cfg->data, name);
}

static int open_index(const mdw_config *cfg, int readonly, mdw_index **ix)
{
    char *dir = data_path(cfg, "index");
    mdw_index_opts o = {0};
    o.map_bytes = (size_t)cfg->index_map_mb << 20;
    o.readonly = readonly;
    int rc = mdw_index_open(ix, dir, &o);
    if (rc)
        fprintf(stderr, "meadow: cannot open index %s: %s\n", dir, mdw_strerror(rc));
    free(dir);
    return rc;
}

const mdw_cmd_spec mdw_cmd_process_spec = {
    .path = "process",
    .summary = "run the processor alone: queue -> index",
    .synopsis = "[--SETTING VALUE ...]",
    .run = mdw_cmd_process,
};

int mdw_cmd_process(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_process_spec, argc, argv, &a))
        return a.status;
    if (mkdir(cfg->data, 0755) && errno != EEXIST) {
        fprintf(stderr, "meadow: cannot create %s: %s\n", cfg->data, strerror(errno));
        return 1;
    }
    mdw_stop_install();
    mdw_queue_opts qo;
    mdw_queue_opts_from_config(&qo, cfg);
    mdw_queue *q = NULL;
    mdw_index *ix = NULL;
    mdw_processor *p = NULL;
    char *qdir = mdw_queue_dir(cfg);
    int rc = mdw_queue_open(&q, qdir, &qo);
    if (rc)
        fprintf(stderr, "meadow: cannot open queue %s: %s\n", qdir, mdw_strerror(rc));
    free(qdir);
    if (!rc)
        rc = open_index(cfg, 0, &ix);
    mdw_processor_cfg pc;
    mdw_processor_cfg_from_config(&pc, cfg);
    if (!rc && (rc = mdw_processor_open(&p, &pc, q, ix, mdw_clock_real())))
        fprintf(stderr, "meadow: processor: %s\n", mdw_strerror(rc));
    if (!rc)
        rc = mdw_processor_run(p);
    if (p) {
        mdw_processor_stats st;
        mdw_processor_stats_get(p, &st);
        mdw_info("processor", "stopped",
                 "applied=%llu noop=%llu refused=%llu skipped=%llu dead=%llu last_seq=%llu",
                 (unsigned long long)st.applied, (unsigned long long)st.noop,
                 (unsigned long long)st.refused, (unsigned long long)st.skipped,
                 (unsigned long long)st.dead, (unsigned long long)st.last_seq);
    }
    mdw_processor_close(p);
    mdw_index_close(ix);
    mdw_queue_close(q);
    return rc == MDW_ELOCKED ? 3 : rc ? 1 : 0;
}

static int index_stats(const mdw_config *cfg)
{
    mdw_index *ix;
    if (open_index(cfg, 1, &ix))
        return 1;
    mdw_index_stats st;
    int rc = mdw_index_stats_get(ix, &st);
    if (!rc)
        printf("communities %" PRIu64 "\nmembers %" PRIu64 "\nposts %" PRIu64
               "\nmoderation %" PRIu64 "\nrecords %" PRIu64 "\ntombstones %" PRIu64
               "\nlast_applied_seq %" PRIu64 "\nbytes_used %" PRIu64 "\nmap_bytes %" PRIu64 "\n",
               st.communities, st.members, st.posts, st.moderation, st.records, st.tombstones,
               st.last_applied_seq, st.bytes_used, st.map_bytes);
    mdw_index_close(ix);
    return rc ? 1 : 0;
}

static int index_dump(const mdw_config *cfg, const mdw_cmd_args *a)
{
    const char *feed = a->npos ? a->pos[0] : NULL;
    unsigned flags = a->opt[0] ? MDW_INDEX_DUMP_RECORDS : 0;
    char *owner = NULL, id[9];
    if (feed && mdw_index_parse_feed_uri(feed, &owner, id)) {
        fprintf(stderr,
                "meadow: not a feed URI (at://<owner>/app.bsky.feed.generator/<8 hex>): "
                "%s\n",
                feed);
        return 2;
    }
    mdw_index *ix;
    if (open_index(cfg, 1, &ix)) {
        free(owner);
        return 1;
    }
    int rc = mdw_index_dump(ix, stdout, owner, owner ? id : NULL, flags);
    if (rc == MDW_ENOTFOUND)
        fprintf(stderr, "meadow: no open community for %s\n", feed);
    else if (rc)
        fprintf(stderr, "meadow: dump failed: %s\n", mdw_strerror(rc));
    free(owner);
    mdw_index_close(ix);
    return rc ? 1 : 0;
}

static int index_backup(const mdw_config *cfg, const char *dir)
{
    mdw_index *ix;
    if (open_index(cfg, 1, &ix))
        return 1;
    int rc = mdw_index_backup(ix, dir);
    if (rc)
        fprintf(stderr, "meadow: backup to %s failed: %s\n", dir, mdw_strerror(rc));
    else
        printf("backup written to %s/data.mdb\n", dir);
    mdw_index_close(ix);
    return rc ? 1 : 0;
}

static const mdw_cmd_spec index_stats_spec = {
    .path = "index stats",
    .summary = "count communities, members, posts, records; map usage",
};
static const mdw_cmd_spec index_dump_spec = {
    .path = "index dump",
    .summary = "print the index (one community's feed when FEED-URI is given)",
    .synopsis = "[FEED-URI] [--records]",
    .opts = {{"records", 0, NULL, "also print the stored records"}},
    .max_pos = 1,
};
static const mdw_cmd_spec index_backup_spec = {
    .path = "index backup",
    .summary = "copy the index (a consistent snapshot) to DIR/data.mdb",
    .synopsis = "DIR",
    .min_pos = 1,
    .max_pos = 1,
};
const mdw_cmd_spec mdw_cmd_index_spec = {
    .path = "index",
    .summary = "index stats | index dump [FEED-URI] | index backup DIR",
    .subs = (const mdw_cmd_spec *const[]){&index_stats_spec, &index_dump_spec, &index_backup_spec,
                                          NULL},
    .run = mdw_cmd_index,
};

int mdw_cmd_index(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_index_spec, argc, argv, &a))
        return a.status;
    if (a.spec == &index_stats_spec)
        return index_stats(cfg);
    if (a.spec == &index_dump_spec)
        return index_dump(cfg, &a);
    return index_backup(cfg, a.pos[0]);
}
