/*
** cmd/cmd_queue.c — `meadow queue stats` and `meadow queue dead
** list|requeue|purge [seq]` on <data>/queue (settings queue_*). Safe while the
** firehose and processor run: each command is a few LMDB transactions.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/commands.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/mem.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "common/banned.h"

#define PREVIEW_BYTES 120 /* of each dead letter's event shown by `dead list` */

static const mdw_cmd_spec stats_spec = {
    .path = "queue stats",
    .summary = "depth, oldest event, dead letters, cursors, map usage",
};
static const mdw_cmd_spec dead_list_spec = {
    .path = "queue dead list",
    .summary = "list the dead letters",
};
static const mdw_cmd_spec dead_requeue_spec = {
    .path = "queue dead requeue",
    .summary = "put dead letters back in the queue (no SEQ: all)",
    .synopsis = "[SEQ]",
    .max_pos = 1,
};
static const mdw_cmd_spec dead_purge_spec = {
    .path = "queue dead purge",
    .summary = "delete dead letters (no SEQ: all)",
    .synopsis = "[SEQ]",
    .max_pos = 1,
};
static const mdw_cmd_spec dead_spec = {
    .path = "queue dead",
    .summary = "the dead letters: list | requeue [SEQ] | purge [SEQ]",
    .subs =
        (const mdw_cmd_spec *const[]){&dead_list_spec, &dead_requeue_spec, &dead_purge_spec, NULL},
};
const mdw_cmd_spec mdw_cmd_queue_spec = {
    .path = "queue",
    .summary = "queue stats | queue dead list|requeue|purge",
    .subs = (const mdw_cmd_spec *const[]){&stats_spec, &dead_spec, NULL},
    .run = mdw_cmd_queue,
};

static int print_dead(void *ctx, uint64_t seq, uint32_t attempts, const char *error,
                      const char *data, size_t len)
{
    size_t *n = ctx;
    char prev[PREVIEW_BYTES + 1];
    size_t pl = len < PREVIEW_BYTES ? len : PREVIEW_BYTES;
    for (size_t i = 0; i < pl; i++) /* one line per letter whatever the bytes */
        prev[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? data[i] : '.';
    prev[pl] = '\0';
    printf("seq=%" PRIu64 " attempts=%" PRIu32 " bytes=%zu error=\"%s\" event=%s%s\n", seq,
           attempts, len, error, prev, len > pl ? "..." : "");
    (*n)++;
    return 0;
}

static int parse_seq(const char *s, uint64_t *seq)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0) {
        fprintf(stderr, "meadow queue: bad seq \"%s\" (a positive number)\n", s);
        return -1;
    }
    *seq = v;
    return 0;
}

static int print_stats(mdw_queue *q, const char *dir)
{
    mdw_queue_stats st;
    int rc = mdw_queue_stats_get(q, &st);
    if (rc) {
        fprintf(stderr, "meadow queue: stats: %s\n", mdw_strerror(rc));
        return rc;
    }
    char when[40] = "-";
    if (st.oldest_time_us)
        mdw_time_format(st.oldest_time_us, when, sizeof when);
    printf("dir: %s\n", dir);
    printf("depth: %" PRIu64 "\n", st.depth);
    printf("oldest_time: %s\n", when);
    if (st.oldest_time_us) {
        int64_t age = mdw_clock_now_us(mdw_clock_real()) - st.oldest_time_us;
        printf("oldest_age_s: %.1f\n", age > 0 ? (double)age / 1e6 : 0.0);
    }
    printf("dead: %" PRIu64 "\n", st.dead);
    printf("next_seq: %" PRIu64 "\n", st.next_seq);
    printf("bytes_used: %" PRIu64 "\n", st.bytes_used);
    printf("map_bytes: %" PRIu64 "\n", st.map_bytes);
    printf("map_usage: %.4f\n", st.map_bytes ? (double)st.bytes_used / (double)st.map_bytes : 0);
    static const struct {
        uint8_t id;
        const char *name;
    } sources[] = {{MDW_SOURCE_JETSTREAM, "jetstream"},
                   {MDW_SOURCE_RELAY, "relay"},
                   {MDW_SOURCE_TEST, "test"}};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        int64_t c;
        if (mdw_queue_get_cursor(q, sources[i].id, &c) == 0)
            printf("cursor_%s: %" PRId64 "\n", sources[i].name, c);
    }
    return 0;
}

int mdw_cmd_queue(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_queue_spec, argc, argv, &a))
        return a.status;
    int is_stats = a.spec == &stats_spec;
    const char *verb = a.spec == &dead_list_spec      ? "list"
                       : a.spec == &dead_requeue_spec ? "requeue"
                       : a.spec == &dead_purge_spec   ? "purge"
                                                      : "";
    uint64_t seq = 0;
    if (a.npos && parse_seq(a.pos[0], &seq))
        return 2;

    char *dir = mdw_queue_dir(cfg);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        /* Do not create an empty queue just to report on it. */
        fprintf(stderr, "meadow queue: no queue at %s (data = %s)\n", dir, cfg->data);
        free(dir);
        return 1;
    }
    mdw_queue_opts o;
    mdw_queue_opts_from_config(&o, cfg);
    /*
    ** Keep the map size the running firehose/processor gave the queue: the
    ** stats then report its real usage, and an admin command never resizes
    ** a live map.
    */
    o.map_bytes = 0;
    mdw_queue *q;
    int rc = mdw_queue_open(&q, dir, &o);
    if (rc) {
        fprintf(stderr, "meadow queue: cannot open %s: %s\n", dir, mdw_strerror(rc));
        free(dir);
        return 1;
    }
    int ret = 0;
    if (is_stats) {
        rc = print_stats(q, dir);
    } else if (!strcmp(verb, "list")) {
        size_t n = 0;
        rc = mdw_queue_dead_list(q, print_dead, &n);
        if (rc)
            fprintf(stderr, "meadow queue: dead list: %s\n", mdw_strerror(rc));
        else
            printf("%zu dead letters\n", n);
    } else {
        uint64_t n = 0;
        int requeue = !strcmp(verb, "requeue");
        rc = requeue ? mdw_queue_dead_requeue(q, seq, &n) : mdw_queue_dead_purge(q, seq, &n);
        if (rc)
            fprintf(stderr, "meadow queue: dead %s: %s\n", verb, mdw_strerror(rc));
        else if (seq && n == 0) {
            fprintf(stderr, "meadow queue: no dead letter with seq %" PRIu64 "\n", seq);
            ret = 1;
        } else
            printf("%s %" PRIu64 " dead letters\n", requeue ? "requeued" : "purged", n);
    }
    mdw_queue_close(q);
    free(dir);
    return rc ? 1 : ret;
}
