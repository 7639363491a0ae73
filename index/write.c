/*
** index/write.c — the index's write half (index/index_write.h): one LMDB
** write transaction, typed gets and puts per table, deletes, prefix
** collections and walks. The processor's rules are its only user.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "index/index_impl.h"
#include "common/banned.h"

struct mdw_ixw {
    mdw_index *ix;
    MDB_txn *txn;
    /* One cursor per table for the whole transaction (closed before it ends): collections run a
     * few times per event. */
    MDB_cursor *cur[IX_NTABLES];
    mdw_ix_enc enc;
};

/*
** An LMDB failure, logged here, once, with what was being done (callers
** only pass the code up). A full map is not logged: the processor reports
** it once per batch with its remedy (raise index_map_mb).
*/
/*
** Logs a failed index operation once, here, with the operation and table.
** The environment's failures (a full disk or map, I/O errors) are left to the
** processor, which pauses on them and logs at a bounded rate with the errno
** corrected (LMDB reports a short write as EIO).
*/
static int fail(int rc, const char *op, int t)
{
    int code = mdw_err_from_lmdb(rc);
    if (rc && rc != MDB_NOTFOUND && !mdw_err_environment(code))
        mdw_error("index", "index write failed", "op=%s table=%s err=\"%s\"", op,
                  t >= 0 ? mdw_ix_tables[t].name : "-", mdb_strerror(rc));
    return code;
}

mdw_ixw *mdw_ixw_new(mdw_index *ix)
{
    mdw_ixw *w = xcalloc(1, sizeof *w);
    w->ix = ix;
    return w;
}

static void cursors_close(mdw_ixw *w)
{
    for (int t = 0; t < IX_NTABLES; t++)
        if (w->cur[t]) {
            mdb_cursor_close(w->cur[t]);
            w->cur[t] = NULL;
        }
}

void mdw_ixw_free(mdw_ixw *w)
{
    if (!w)
        return;
    mdw_ixw_abort(w);
    mdw_ix_enc_release(&w->enc);
    free(w);
}

int mdw_ixw_begin(mdw_ixw *w)
{
    if (w->ix->readonly)
        return MDW_EDENIED;
    int rc = mdb_txn_begin(w->ix->env, NULL, 0, &w->txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(w->ix->env, 0);
        rc = mdb_txn_begin(w->ix->env, NULL, 0, &w->txn);
    }
    if (rc) {
        w->txn = NULL;
        return fail(rc, "txn_begin", -1);
    }
    return 0;
}

int mdw_ixw_commit(mdw_ixw *w)
{
    cursors_close(w); /* LMDB frees a write transaction's cursors with it */
    int rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    return rc ? fail(rc, "commit", -1) : 0;
}

void mdw_ixw_abort(mdw_ixw *w)
{
    cursors_close(w);
    if (w->txn)
        mdb_txn_abort(w->txn);
    w->txn = NULL;
}

static int get(mdw_ixw *w, int t, const void *k, size_t kn, MDB_val *v)
{
    MDB_val key = {kn, (void *)k};
    int rc = mdb_get(w->txn, w->ix->dbi[t], &key, v);
    if (rc == MDB_NOTFOUND)
        return MDW_ENOTFOUND;
    return rc ? fail(rc, "get", t) : 0;
}

static int put(mdw_ixw *w, int t, const void *k, size_t kn, const void *d, size_t dn)
{
    MDB_val key = {kn, (void *)k}, val = {dn, (void *)d};
    int rc = mdb_put(w->txn, w->ix->dbi[t], &key, &val, 0);
    return rc ? fail(rc, "put", t) : 0;
}

static int corrupt(int t)
{
    mdw_error("index", "stored row does not decode", "table=%s", mdw_ix_tables[t].name);
    return MDW_ECORRUPT;
}

#define ROW_OPS(op, row, t)                                                                        \
    int mdw_ixw_get_##op(mdw_ixw *w, const void *k, size_t kn, mdw_ix_##row *out)                  \
    {                                                                                              \
        MDB_val v;                                                                                 \
        int rc = get(w, t, k, kn, &v);                                                             \
        if (rc)                                                                                    \
            return rc;                                                                             \
        return mdw_ix_##row##_dec(v.mv_data, v.mv_size, out) ? corrupt(t) : 0;                     \
    }                                                                                              \
    int mdw_ixw_put_##op(mdw_ixw *w, const void *k, size_t kn, const mdw_ix_##row *in)             \
    {                                                                                              \
        mdw_ix_enc_reset(&w->enc);                                                                 \
        mdw_ix_##row##_enc(in, &w->enc);                                                           \
        return put(w, t, k, kn, w->enc.p, w->enc.len);                                             \
    }
ROW_OPS(record, record, IX_RECORDS)
ROW_OPS(config, config, IX_CONFIGS)
ROW_OPS(config_ver, config, IX_CONFIG_VERS)
ROW_OPS(owner_config, owner_config, IX_OWNER_CONFIGS)
ROW_OPS(community, community, IX_COMMUNITIES)
ROW_OPS(by_tag, by_tag, IX_BY_TAG)
ROW_OPS(role, role, IX_ROLES)
ROW_OPS(membership, membership, IX_MEMBERSHIPS)
ROW_OPS(moderation, moderation, IX_MODERATION)
ROW_OPS(account, account, IX_ACCOUNTS)
ROW_OPS(member, member, IX_MEMBERS)
ROW_OPS(feed, feed, IX_FEED)
ROW_OPS(expiry, expiry, IX_EXPIRY)

int mdw_ixw_get_meta(mdw_ixw *w, const char *name, uint64_t *v)
{
    MDB_val val;
    int rc = get(w, IX_META, name, strlen(name), &val);
    if (rc)
        return rc;
    mdw_ix_meta m;
    if (mdw_ix_meta_dec(val.mv_data, val.mv_size, &m))
        return corrupt(IX_META);
    *v = m.value;
    return 0;
}

int mdw_ixw_put_meta(mdw_ixw *w, const char *name, uint64_t v)
{
    mdw_ix_meta m = {v};
    mdw_ix_enc_reset(&w->enc);
    mdw_ix_meta_enc(&m, &w->enc);
    return put(w, IX_META, name, strlen(name), w->enc.p, w->enc.len);
}

int mdw_ixw_del(mdw_ixw *w, int t, const void *k, size_t kn)
{
    MDB_val key = {kn, (void *)k};
    int rc = mdb_del(w->txn, w->ix->dbi[t], &key, NULL);
    return rc && rc != MDB_NOTFOUND ? fail(rc, "del", t) : 0;
}

int mdw_ixw_has(mdw_ixw *w, int t, const void *k, size_t kn)
{
    MDB_val v;
    int rc = get(w, t, k, kn, &v);
    return rc == 0 ? 1 : rc == MDW_ENOTFOUND ? 0 : rc;
}

void mdw_ix_kvlist_free(mdw_ix_kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->a[i].k);
        free(l->a[i].v);
    }
    free(l->a);
    memset(l, 0, sizeof *l);
}

void mdw_ix_kvlist_add(mdw_ix_kvlist *l, const void *k, size_t kn, const void *v, size_t vn)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->a = xrealloc(l->a, l->cap * sizeof *l->a);
    }
    mdw_ix_kv *e = &l->a[l->n++];
    e->k = xmemdup(k, kn);
    e->kn = kn;
    e->v = v ? xmemdup(v, vn ? vn : 1) : NULL;
    e->vn = v ? vn : 0;
}

/* The transaction's cursor on table t (opened on first use). */
static int cursor(mdw_ixw *w, int t, MDB_cursor **out)
{
    if (!w->cur[t]) {
        int rc = mdb_cursor_open(w->txn, w->ix->dbi[t], &w->cur[t]);
        if (rc) {
            w->cur[t] = NULL;
            return fail(rc, "cursor", t);
        }
    }
    *out = w->cur[t];
    return 0;
}

int mdw_ixw_collect(mdw_ixw *w, int t, const void *prefix, size_t plen, int with_v,
                    mdw_ix_kvlist *out)
{
    memset(out, 0, sizeof *out);
    MDB_cursor *cur = NULL;
    int rc = cursor(w, t, &cur);
    if (rc)
        return rc;
    MDB_val k = {plen, (void *)prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        mdw_ix_kvlist_add(out, k.mv_data, k.mv_size, with_v ? v.mv_data : NULL, v.mv_size);
    if (rc && rc != MDB_NOTFOUND) {
        mdw_ix_kvlist_free(out);
        return fail(rc, "cursor_get", t);
    }
    return 0;
}

int mdw_ixw_del_prefix(mdw_ixw *w, int t, const void *prefix, size_t plen)
{
    mdw_ix_kvlist l;
    int rc = mdw_ixw_collect(w, t, prefix, plen, 0, &l);
    for (size_t i = 0; i < l.n && !rc; i++)
        rc = mdw_ixw_del(w, t, l.a[i].k, l.a[i].kn);
    mdw_ix_kvlist_free(&l);
    return rc;
}

int mdw_ixw_walk(mdw_ixw *w, int t, const void *from, size_t fromn, mdw_ixw_visit_fn fn, void *ctx)
{
    /* Its own cursor: fn may collect from other tables through the shared ones. */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->ix->dbi[t], &cur);
    if (rc)
        return fail(rc, "cursor", t);
    MDB_val k = {fromn, (void *)from}, v;
    int stop = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((stop = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size)) != 0)
            break;
    mdb_cursor_close(cur);
    if (stop < 0)
        return stop;
    if (rc && rc != MDB_NOTFOUND)
        return fail(rc, "cursor_get", t);
    return 0;
}
