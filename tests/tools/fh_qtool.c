/*
** tests/tools/fh_qtool — inspects and drains a queue directory for the
** firehose integration tests (independent of `meadow queue`).
**
**   fh_qtool dump DIR            every waiting event's bytes, one per line, seq order
**   fh_qtool drain DIR           claims and acks everything waiting; prints the count
**   fh_qtool take DIR            dump + ack: prints what it removes
**   fh_qtool cursor DIR [SRC]    the stored cursor of source SRC (default 1, Jetstream)
**   fh_qtool depth DIR           events waiting
**   fh_qtool poison DIR          appends one event whose envelope version no
**                                build knows (a queue error no retry cures:
**                                tests that a stage which cannot go on ends the process)
**   fh_qtool break-appends DIR   stores a next_seq of the wrong size: every later
**                                append fails with "stored data corrupt" (ingest's fatal path)
*/
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "common/banned.h"

/*
** Raw LMDB edits of queue/queue.c's layout: the last event's envelope
** version byte set to 99 (poison), or next_seq replaced by 3 bytes (break).
*/
static int raw_edit(const char *dir, int poison)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 4)) ||
        (rc = mdb_env_open(env, dir, 0, 0644)))
        return mdw_err_from_lmdb(rc);
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
        goto out;
    if (!poison) {
        MDB_val bk = {8, "next_seq"}, bv = {3, "bad"};
        if (!(rc = mdb_dbi_open(txn, "meta", 0, &dbi)))
            rc = mdb_put(txn, dbi, &bk, &bv, 0);
    } else if (!(rc = mdb_dbi_open(txn, "events", 0, &dbi)) &&
               !(rc = mdb_cursor_open(txn, dbi, &cur))) {
        if (!(rc = mdb_cursor_get(cur, &k, &v, MDB_LAST))) {
            char *copy = xmemdup(v.mv_data, v.mv_size);
            copy[0] = 99;
            MDB_val nv = {v.mv_size, copy};
            rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
            free(copy);
        }
        mdb_cursor_close(cur);
    }
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = mdb_txn_commit(txn);
out:
    mdb_env_close(env);
    return mdw_err_from_lmdb(rc);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: fh_qtool dump|drain|take|cursor|depth|poison|break-appends DIR [SRC]\n");
        return 2;
    }
    mdw_log_set_level(MDW_LOG_WARN);
    mdw_queue_opts o;
    mdw_queue_opts_default(&o);
    o.map_bytes = (size_t)1024 * 1024 * 1024;
    mdw_queue *q;
    int rc = mdw_queue_open(&q, argv[2], &o);
    if (rc) {
        fprintf(stderr, "fh_qtool: open %s: %s\n", argv[2], mdw_strerror(rc));
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "cursor")) {
        int64_t c;
        long src = argc > 3 ? strtol(argv[3], NULL, 10) : MDW_SOURCE_JETSTREAM;
        rc = mdw_queue_get_cursor(q, (uint8_t)src, &c);
        if (rc == 0)
            printf("%lld\n", (long long)c);
        else
            printf("none\n");
        rc = 0;
    } else if (!strcmp(cmd, "depth")) {
        uint64_t depth;
        if ((rc = mdw_queue_depth(q, &depth)) == 0)
            printf("%llu\n", (unsigned long long)depth);
    } else if (!strcmp(cmd, "dump") || !strcmp(cmd, "drain") || !strcmp(cmd, "take")) {
        int drain = !strcmp(cmd, "drain"), take = !strcmp(cmd, "take");
        mdw_queue_batch b;
        mdw_queue_batch_init(&b);
        uint64_t after = 0, total = 0;
        for (;;) {
            rc = mdw_queue_claim(q, after, 1000, &b);
            if (rc || b.n == 0)
                break;
            uint64_t *seqs = xmalloc(b.n * sizeof *seqs);
            for (size_t i = 0; i < b.n; i++) {
                seqs[i] = b.items[i].seq;
                if (!drain) {
                    fwrite(b.items[i].data, 1, b.items[i].len, stdout);
                    fputc('\n', stdout);
                }
            }
            after = b.items[b.n - 1].seq;
            total += b.n;
            if (drain || take)
                rc = mdw_queue_ack(q, seqs, b.n);
            free(seqs);
            if (rc)
                break;
        }
        mdw_queue_batch_release(&b);
        if (drain)
            printf("%llu\n", (unsigned long long)total);
    } else if (!strcmp(cmd, "poison")) {
        mdw_queue_event ev = {"{}", 2, 1};
        rc = mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, 1);
        mdw_queue_close(q);
        q = NULL;
        if (!rc)
            rc = raw_edit(argv[2], 1);
    } else if (!strcmp(cmd, "break-appends")) {
        mdw_queue_close(q);
        q = NULL;
        rc = raw_edit(argv[2], 0);
    } else {
        fprintf(stderr, "fh_qtool: unknown command %s\n", cmd);
        rc = MDW_EINVALID;
    }
    if (q)
        mdw_queue_close(q);
    if (rc) {
        fprintf(stderr, "fh_qtool: %s\n", mdw_strerror(rc));
        return 1;
    }
    return 0;
}
