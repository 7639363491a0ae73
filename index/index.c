/*
** index/index.c — opening the index environment, the format version, the
** read API feedgen uses (feed pages, communities, stats) and the small
** helpers (hashes, value codec, cursors) shared with the writer.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>

#include "common/atname.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "index/index_impl.h"
#include "common/banned.h"

/* Tables of older formats, dropped with the rest when an older index is cleared or upgraded. */
static const char *const retired_tables[] = {"post_refs", "posts", "author_posts", "tag_posts"};
#define N_RETIRED (sizeof retired_tables / sizeof retired_tables[0])

_Atomic uint64_t mdw_ix_collisions;

/*
** Keys hash with common/crypto's SHA-256 (the digest fetched once, one
** context per thread: docs/index.md, "Hashed keys").
*/
void mdw_ix_hash2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[MDW_IX_H])
{
    uint8_t md[MDW_SHA256_LEN];
    mdw_sha256_2(a, an, b, bn, md);
    memcpy(out, md, MDW_IX_H);
}

void mdw_ix_hash(const void *p, size_t n, uint8_t out[MDW_IX_H])
{
    mdw_ix_hash2(p, n, NULL, 0, out);
}

void mdw_ix_rec_key(const char *uri, uint8_t out[MDW_IX_RK])
{
    size_t n = strlen(uri);
    const char *slash = strrchr(uri, '/');
    const char *rkey = slash ? slash + 1 : uri;
    int64_t t = 0;
    if (mdw_tid_time(rkey, n - (size_t)(rkey - uri), &t) != 0)
        t = 0;
    mdw_ix_put_be64(out, (uint64_t)t);
    mdw_ix_hash(uri, n, out + 8);
}

void mdw_ix_comm_key(const char *owner, const uint8_t tag[MDW_IX_TAG], uint8_t out[MDW_IX_H])
{
    char hex[9];
    mdw_ix_tag_format(tag, hex);
    size_t n = strlen(owner);
    char small[256];
    char *s = n + 10 <= sizeof small ? small : xmalloc(n + 10);
    memcpy(s, owner, n);
    s[n] = '\n';
    memcpy(s + n + 1, hex, 8);
    mdw_ix_hash(s, n + 9, out);
    if (s != small)
        free(s);
}

void mdw_ix_tag_format(const uint8_t tag[MDW_IX_TAG], char out[9])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        out[2 * i] = hx[tag[i] >> 4];
        out[2 * i + 1] = hx[tag[i] & 15];
    }
    out[8] = '\0';
}

/* (GCC 12 -O2 kept the byte loops: one load and a bswap, read per feed entry.) */
void mdw_ix_put_be64(uint8_t *p, uint64_t v)
{
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
#else
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
#endif
}

uint64_t mdw_ix_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, 8);
    v = __builtin_bswap64(v);
#else
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
#endif
    return v;
}

/* ---- value codec ---- */

static void enc_grow(mdw_ix_enc *e, size_t n)
{
    if (e->len + n <= e->cap)
        return;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < e->len + n)
        cap *= 2;
    e->p = xrealloc(e->p, cap);
    e->cap = cap;
}

void mdw_ix_enc_reset(mdw_ix_enc *e)
{
    e->len = 0;
}

void mdw_ix_enc_release(mdw_ix_enc *e)
{
    free(e->p);
    e->p = NULL;
    e->len = e->cap = 0;
}

void mdw_ix_enc_u8(mdw_ix_enc *e, uint8_t v)
{
    enc_grow(e, 1);
    e->p[e->len++] = v;
}

void mdw_ix_enc_i64(mdw_ix_enc *e, int64_t v)
{
    enc_grow(e, 8);
    mdw_ix_put_be64(e->p + e->len, (uint64_t)v);
    e->len += 8;
}

void mdw_ix_enc_bytes(mdw_ix_enc *e, const void *p, size_t n)
{
    enc_grow(e, n);
    if (n)
        memcpy(e->p + e->len, p, n);
    e->len += n;
}

void mdw_ix_enc_str(mdw_ix_enc *e, const char *s, size_t n)
{
    enc_grow(e, 4 + n);
    uint32_t l = (uint32_t)n;
    e->p[e->len++] = (uint8_t)(l >> 24);
    e->p[e->len++] = (uint8_t)(l >> 16);
    e->p[e->len++] = (uint8_t)(l >> 8);
    e->p[e->len++] = (uint8_t)l;
    mdw_ix_enc_bytes(e, s, n);
}

void mdw_ix_dec_init(mdw_ix_dec *d, const MDB_val *v)
{
    d->p = v->mv_data;
    d->end = d->p + v->mv_size;
    d->err = 0;
}

uint8_t mdw_ix_dec_u8(mdw_ix_dec *d)
{
    if (d->err || d->end - d->p < 1) {
        d->err = 1;
        return 0;
    }
    return *d->p++;
}

int64_t mdw_ix_dec_i64(mdw_ix_dec *d)
{
    if (d->err || d->end - d->p < 8) {
        d->err = 1;
        return 0;
    }
    int64_t v = (int64_t)mdw_ix_get_be64(d->p);
    d->p += 8;
    return v;
}

const uint8_t *mdw_ix_dec_bytes(mdw_ix_dec *d, size_t n)
{
    if (d->err || (size_t)(d->end - d->p) < n) {
        d->err = 1;
        return NULL;
    }
    const uint8_t *r = d->p;
    d->p += n;
    return r;
}

mdw_ix_str mdw_ix_dec_str(mdw_ix_dec *d)
{
    mdw_ix_str s = {"", 0};
    const uint8_t *l = mdw_ix_dec_bytes(d, 4);
    if (!l)
        return s;
    size_t n = (size_t)l[0] << 24 | (size_t)l[1] << 16 | (size_t)l[2] << 8 | l[3];
    const uint8_t *p = mdw_ix_dec_bytes(d, n);
    if (!p)
        return s;
    s.p = (const char *)p;
    s.n = n;
    return s;
}

int mdw_ix_str_eq(mdw_ix_str a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

char *mdw_ix_str_dup(mdw_ix_str a)
{
    return xstrndup(a.p, a.n);
}

/* ---- cursors: base64url(sortkey_be || uri hash) ---- */

void mdw_ix_cursor_encode(int64_t sortkey, const uint8_t urih[MDW_IX_H], char *out)
{
    uint8_t raw[8 + MDW_IX_H];
    mdw_ix_put_be64(raw, mdw_ix_sk_enc(sortkey));
    memcpy(raw + 8, urih, MDW_IX_H);
    mdw_base64_encode_to(out, raw, sizeof raw, MDW_B64_URL); /* 24 bytes: 32 characters */
}

int mdw_ix_cursor_decode(const char *s, int64_t *sortkey, uint8_t urih[MDW_IX_H])
{
    uint8_t raw[8 + MDW_IX_H];
    size_t got = 0;
    if (strlen(s) != 32 || mdw_base64_decode(s, 32, MDW_B64_URL, raw, sizeof raw, &got) != 0 ||
        got != sizeof raw)
        return MDW_EMALFORMED;
    *sortkey = mdw_ix_sk_dec(mdw_ix_get_be64(raw));
    memcpy(urih, raw + 8, MDW_IX_H);
    return 0;
}

/* ---- environment ---- */

static int open_tables(mdw_index *ix, MDB_txn *txn)
{
    for (int i = 0; i < IX_NTABLES; i++) {
        int rc =
            mdb_dbi_open(txn, mdw_ix_tables[i].name, ix->readonly ? 0 : MDB_CREATE, &ix->dbi[i]);
        if (rc) {
            mdw_error("index", "cannot open table", "table=%s err=\"%s\"", mdw_ix_tables[i].name,
                      mdb_strerror(rc));
            return rc == MDB_NOTFOUND ? MDW_EVERSION : mdw_err_from_lmdb(rc);
        }
    }
    return 0;
}

static int read_format(mdw_index *ix, MDB_txn *txn, int64_t *fmt)
{
    MDB_val k = {strlen(MDW_IX_META_FORMAT), (void *)MDW_IX_META_FORMAT}, v;
    int rc = mdb_get(txn, ix->dbi[IX_META], &k, &v);
    if (rc == MDB_NOTFOUND)
        return MDW_ENOTFOUND;
    if (rc)
        return mdw_err_from_lmdb(rc);
    mdw_ix_meta m;
    if (mdw_ix_meta_dec(v.mv_data, v.mv_size, &m))
        return MDW_ECORRUPT;
    *fmt = (int64_t)m.value;
    return 0;
}

static int write_format(mdw_index *ix, MDB_txn *txn)
{
    mdw_ix_enc e = {0};
    mdw_ix_meta m = {MDW_IX_FORMAT};
    mdw_ix_meta_enc(&m, &e);
    MDB_val k = {strlen(MDW_IX_META_FORMAT), (void *)MDW_IX_META_FORMAT}, v = {e.len, e.p};
    int rc = mdw_err_from_lmdb(mdb_put(txn, ix->dbi[IX_META], &k, &v, 0));
    mdw_ix_enc_release(&e);
    return rc;
}

/* Drops the tables older formats had and this one does not (those that exist). */
static int drop_retired(MDB_txn *txn)
{
    for (size_t i = 0; i < N_RETIRED; i++) {
        MDB_dbi d;
        int r = mdb_dbi_open(txn, retired_tables[i], 0, &d);
        if (r == 0)
            r = mdb_drop(txn, d, 1);
        if (r && r != MDB_NOTFOUND)
            return mdw_err_from_lmdb(r);
    }
    return 0;
}

/*
** An index of an older format is cleared, not migrated: its content is a
** function of records we no longer have, so the honest path is an empty
** index and `meadow rebuild` (logged). Formats 3 and 4 are the exception:
** they differ from this one only by tables since dropped, so dropping them
** is the whole upgrade. A newer format is refused: this binary cannot know
** what it means.
*/
static int check_format(mdw_index *ix, MDB_txn *txn)
{
    int64_t fmt = 0;
    int rc = read_format(ix, txn, &fmt);
    if (rc && rc != MDW_ENOTFOUND)
        return rc;
    if (rc == 0 && fmt == MDW_IX_FORMAT)
        return 0;
    if (rc == 0 && fmt >= MDW_IX_FORMAT_UPGRADABLE && fmt < MDW_IX_FORMAT) {
        /*
        ** Format 4 is format 3 without author_posts (now in the writer's
        ** memory), format 5 is format 4 without tag_posts (the sweep walks
        ** records): same reads. What format 5 adds (expiry entries of posts
        ** whose sort key is far below their rkey time) the writer's first
        ** transaction writes for every live post it finds.
        */
        if (ix->readonly)
            return 0;
        if ((rc = drop_retired(txn)))
            return rc;
        mdw_info("index", "index format upgraded in place", "from=%lld to=%d", (long long)fmt,
                 MDW_IX_FORMAT);
        return write_format(ix, txn);
    }
    if (rc == 0 && fmt > MDW_IX_FORMAT) {
        mdw_error("index", "index format is newer than this binary", "found=%lld supported=%d",
                  (long long)fmt, MDW_IX_FORMAT);
        return MDW_EVERSION;
    }
    if (ix->readonly) {
        mdw_error("index", "index has no usable format version (run the processor)",
                  "found=%lld supported=%d", rc ? -1LL : (long long)fmt, MDW_IX_FORMAT);
        return MDW_EVERSION;
    }
    int nonempty = 0;
    for (int i = 0; i < IX_NTABLES; i++) {
        MDB_stat st;
        if (mdb_stat(txn, ix->dbi[i], &st) == 0 && st.ms_entries)
            nonempty = 1;
    }
    if (nonempty) {
        mdw_warn("index", "index format is older: cleared, run meadow rebuild to refill",
                 "found=%lld supported=%d", rc ? -1LL : (long long)fmt, MDW_IX_FORMAT);
        for (int i = 0; i < IX_NTABLES; i++) {
            int r = mdb_drop(txn, ix->dbi[i], 0);
            if (r)
                return mdw_err_from_lmdb(r);
        }
        if ((rc = drop_retired(txn)))
            return rc;
    }
    return write_format(ix, txn);
}

int mdw_index_open(mdw_index **out, const char *dir, const mdw_index_opts *opts)
{
    mdw_index_opts def = {0};
    if (!opts)
        opts = &def;
    *out = NULL;
    mdw_index *ix = xcalloc(1, sizeof *ix);
    pthread_mutex_init(&ix->rpool_mu, NULL);
    pthread_mutex_init(&ix->cc_mu, NULL);
    ix->readonly = opts->readonly;
    ix->clock = opts->clock ? opts->clock : mdw_clock_real();
    ix->dir = xstrdup(dir);
    MDB_txn *txn = NULL;
    int rc;
    if (!ix->readonly && mkdir(dir, 0755) && errno != EEXIST) {
        rc = -errno;
        mdw_error("index", "cannot create directory", "dir=%s err=\"%s\"", dir, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&ix->env)))
        goto lmdb_fail;
    mdb_env_set_maxdbs(ix->env, IX_NTABLES + N_RETIRED + 2);
    mdb_env_set_mapsize(ix->env, opts->map_bytes ? opts->map_bytes : (size_t)1 << 30);
    /*
    ** No MDB_WRITEMAP. It saves the pwrite of dirty pages when commits are not
    ** synced, but a synced commit then msyncs the whole map, and every page
    ** written back is write-protected again, so the next write to it faults.
    ** bench_processor, 240,000 events, every commit synced (as in production):
    ** 2,429 events/s with WRITEMAP, 9,525 without (33.2 s -> 10.9 s of CPU).
    */
    unsigned flags = MDB_NOTLS | (ix->readonly ? MDB_RDONLY : 0) | (opts->nosync ? MDB_NOSYNC : 0);
    if ((rc = mdb_env_open(ix->env, dir, flags, 0644))) {
        mdw_error("index", "cannot open index", "dir=%s err=\"%s\"", dir, mdb_strerror(rc));
        rc = rc == ENOENT ? MDW_ENOTFOUND : mdw_err_from_lmdb(rc);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(ix->env, &dead);
    if (dead)
        mdw_info("index", "cleared stale readers", "n=%d", dead);
    if (ix->readonly) {
        if ((rc = mdw_ix_rtxn(ix, &txn)))
            goto fail;
    } else if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn))) {
        goto lmdb_fail;
    }
    if ((rc = open_tables(ix, txn)) || (rc = check_format(ix, txn)))
        goto fail;
    if ((rc = mdb_txn_commit(txn))) {
        txn = NULL;
        goto lmdb_fail;
    }
    *out = ix;
    return 0;
lmdb_fail:
    mdw_error("index", "lmdb error", "dir=%s err=\"%s\"", dir, mdb_strerror(rc));
    rc = mdw_err_from_lmdb(rc);
fail:
    if (txn)
        mdb_txn_abort(txn);
    mdw_index_close(ix);
    return rc;
}

void mdw_index_close(mdw_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < ix->rpool_n; i++)
        mdb_txn_abort(ix->rpool[i]);
    ix->rpool_n = 0;
    pthread_mutex_destroy(&ix->rpool_mu);
    pthread_mutex_destroy(&ix->cc_mu);
    if (ix->env)
        mdb_env_close(ix->env);
    free(ix->dir);
    free(ix);
}

int mdw_ix_rtxn(mdw_index *ix, MDB_txn **txn)
{
    MDB_txn *t = NULL;
    pthread_mutex_lock(&ix->rpool_mu);
    if (ix->rpool_n)
        t = ix->rpool[--ix->rpool_n];
    pthread_mutex_unlock(&ix->rpool_mu);
    if (t) {
        if (mdb_txn_renew(t) == 0) {
            *txn = t;
            return 0;
        }
        mdb_txn_abort(t); /* e.g. MDB_MAP_RESIZED: start afresh below */
    }
    int rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* The writer (maybe another process) grew the map: adopt its size. */
        mdb_env_set_mapsize(ix->env, 0);
        rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, txn);
    }
    if (rc) {
        mdw_error("index", "cannot begin read transaction", "err=\"%s\"", mdb_strerror(rc));
        return mdw_err_from_lmdb(rc);
    }
    return 0;
}

void mdw_ix_rtxn_end(mdw_index *ix, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_mutex_lock(&ix->rpool_mu);
    int kept = ix->rpool_n < IX_RPOOL_MAX;
    if (kept)
        ix->rpool[ix->rpool_n++] = txn;
    pthread_mutex_unlock(&ix->rpool_mu);
    if (!kept)
        mdb_txn_abort(txn);
}

/* ---- reads ---- */

static uint64_t meta_u64(mdw_index *ix, MDB_txn *txn, const char *name)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    mdw_ix_meta m;
    if (mdb_get(txn, ix->dbi[IX_META], &k, &v) || mdw_ix_meta_dec(v.mv_data, v.mv_size, &m))
        return 0;
    return m.value;
}

static int64_t read_retention(mdw_index *ix, MDB_txn *txn)
{
    return (int64_t)meta_u64(ix, txn, MDW_IX_META_RETENTION);
}

/* Looks up an open community; 0 and *ck filled, or MDW_ENOTFOUND. */
static int find_community(mdw_index *ix, MDB_txn *txn, const char *owner, const uint8_t tag[4],
                          uint8_t ck[MDW_IX_H])
{
    mdw_ix_comm_key(owner, tag, ck);
    MDB_val k = {MDW_IX_H, ck}, v;
    int rc = mdb_get(txn, ix->dbi[IX_COMMUNITIES], &k, &v);
    if (rc == MDB_NOTFOUND)
        return MDW_ENOTFOUND;
    if (rc)
        return mdw_err_from_lmdb(rc);
    mdw_ix_community c;
    if (mdw_ix_community_dec(v.mv_data, v.mv_size, &c))
        return MDW_ECORRUPT;
    /* Full strings checked: a hash collision must not show another community. */
    if (memcmp(c.tag, tag, MDW_IX_TAG) != 0 || !mdw_ix_str_eq(c.owner, owner))
        return MDW_ENOTFOUND;
    return 0;
}

/*
** find_community + read_retention, answered from the per-snapshot cache when
** this transaction sees the same commit as the entry (ix_ccache_slot).
*/
static int find_community_cached(mdw_index *ix, MDB_txn *txn, const char *owner,
                                 const uint8_t tag[MDW_IX_TAG], uint8_t ck[MDW_IX_H],
                                 int64_t *retention)
{
    uint64_t txnid = (uint64_t)mdb_txn_id(txn);
    size_t olen = strlen(owner);
    uint32_t h = 2166136261u; /* FNV-1a: picks the slot only */
    for (size_t i = 0; i < olen; i++)
        h = (h ^ (uint8_t)owner[i]) * 16777619u;
    for (size_t i = 0; i < MDW_IX_TAG; i++)
        h = (h ^ tag[i]) * 16777619u;
    ix_ccache_slot *sl = &ix->cc[h % IX_CCACHE];
    int cacheable = olen < IX_CCACHE_DID && txnid != 0;
    if (cacheable) {
        pthread_mutex_lock(&ix->cc_mu);
        int hit = sl->txnid == txnid && memcmp(sl->tag, tag, MDW_IX_TAG) == 0 &&
                  strcmp(sl->owner, owner) == 0;
        int rc = sl->rc;
        if (hit) {
            memcpy(ck, sl->ck, MDW_IX_H);
            *retention = sl->retention;
        }
        pthread_mutex_unlock(&ix->cc_mu);
        if (hit)
            return rc;
    }
    int rc = find_community(ix, txn, owner, tag, ck);
    *retention = rc == 0 ? read_retention(ix, txn) : 0;
    if (cacheable && (rc == 0 || rc == MDW_ENOTFOUND)) {
        pthread_mutex_lock(&ix->cc_mu);
        sl->txnid = txnid;
        memcpy(sl->tag, tag, MDW_IX_TAG);
        memcpy(sl->ck, ck, MDW_IX_H);
        memcpy(sl->owner, owner, olen + 1);
        sl->rc = rc;
        sl->retention = *retention;
        pthread_mutex_unlock(&ix->cc_mu);
    }
    return rc;
}

int mdw_index_feed_walk(mdw_index *ix, const char *owner_did, const char *hashtag_id,
                        const char *cursor, size_t limit, mdw_index_post_fn fn, void *ctx,
                        mdw_index_page *page)
{
    memset(page, 0, sizeof *page);
    if (limit < 1 || limit > 100 || !owner_did || !hashtag_id)
        return MDW_EMALFORMED;
    uint8_t tag[MDW_IX_TAG];
    if (mdw_tag_id_parse(hashtag_id, strlen(hashtag_id), tag))
        return MDW_ENOTFOUND;
    uint8_t key[MDW_IX_H + 8 + MDW_IX_H];
    int has_cursor = cursor && cursor[0];
    if (has_cursor) {
        int64_t sk;
        if (mdw_ix_cursor_decode(cursor, &sk, key + MDW_IX_H + 8))
            return MDW_EMALFORMED;
        mdw_ix_put_be64(key + MDW_IX_H, mdw_ix_sk_enc(sk));
    } else {
        memset(key + MDW_IX_H, 0xff, 8 + MDW_IX_H);
    }
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur = NULL;
    int64_t retention = 0;
    if ((rc = find_community_cached(ix, txn, owner_did, tag, key, &retention)))
        goto done;
    int64_t cutoff = retention > 0 ? mdw_clock_now_us(ix->clock) - retention : INT64_MIN;
    if ((rc = mdb_cursor_open(txn, ix->dbi[IX_FEED], &cur))) {
        rc = mdw_err_from_lmdb(rc);
        goto done;
    }
    MDB_val k = {sizeof key, key}, v;
    /* Newest first = descending keys: land on the first key >= position, step back once. */
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    r = r == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    int64_t last_sk = 0;
    const uint8_t *last_h = NULL; /* inside the key, valid until the txn ends */
    int more = 0;
    while (r == 0 && k.mv_size == sizeof key && memcmp(k.mv_data, key, MDW_IX_H) == 0) {
        const uint8_t *kp = k.mv_data;
        int64_t sk = mdw_ix_sk_dec(mdw_ix_get_be64(kp + MDW_IX_H));
        if (sk < cutoff)
            break; /* older entries are all past retention */
        if (page->n == limit || page->scanned == MDW_INDEX_SCAN_MAX) {
            more = 1;
            break;
        }
        page->scanned++;
        mdw_ix_feed row;
        last_sk = sk;
        last_h = kp + MDW_IX_H + 8;
        if (mdw_ix_feed_dec(v.mv_data, v.mv_size, &row) == 0) {
            page->n++;
            if ((rc = fn(ctx, row.uri.p, row.uri.n)) != 0)
                goto done;
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    if (more && page->scanned)
        mdw_ix_cursor_encode(last_sk, last_h, page->cursor);
    rc = 0;
done:
    if (cur)
        mdb_cursor_close(cur);
    mdw_ix_rtxn_end(ix, txn);
    return rc;
}

/* mdw_index_feed_page's visitor: the URIs back to back in a growing block. */
struct page_acc {
    mdw_buf strs;
    size_t lens[100];
    size_t n;
};

static int page_acc_add(void *ctx, const char *uri, size_t len)
{
    struct page_acc *a = ctx;
    a->lens[a->n++] = len;
    int rc = mdw_buf_append(&a->strs, uri, len);
    return rc ? rc : mdw_buf_putc(&a->strs, '\0');
}

int mdw_index_feed_page(mdw_index *ix, const char *owner_did, const char *hashtag_id,
                        const char *cursor, size_t limit, mdw_index_page *page)
{
    struct page_acc a;
    a.n = 0;
    mdw_buf_init(&a.strs, 100 * (MDW_MAX_URI_BYTES + 1));
    int rc = mdw_index_feed_walk(ix, owner_did, hashtag_id, cursor, limit, page_acc_add, &a, page);
    if (rc) {
        mdw_buf_release(&a.strs);
        memset(page, 0, sizeof *page);
        return rc;
    }
    /* One block: n pointers, n lengths, then the strings. */
    size_t head = a.n * (sizeof(char *) + sizeof(size_t));
    char *block = xmalloc(head + a.strs.len + 1);
    page->uris = (char **)(void *)block;
    page->lens = (size_t *)(void *)(block + a.n * sizeof(char *));
    char *str = block + head;
    if (a.strs.len)
        memcpy(str, a.strs.data, a.strs.len);
    for (size_t i = 0; i < a.n; i++) {
        page->uris[i] = str;
        page->lens[i] = a.lens[i];
        str += a.lens[i] + 1;
    }
    mdw_buf_release(&a.strs);
    return 0;
}

void mdw_index_page_release(mdw_index_page *page)
{
    if (!page)
        return;
    free(page->uris); /* one block with the lengths and strings */
    page->uris = NULL;
    page->lens = NULL;
    page->n = 0;
}

int mdw_index_communities(mdw_index *ix, mdw_index_community_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, ix->dbi[IX_COMMUNITIES], &cur))) {
        mdw_ix_rtxn_end(ix, txn);
        return mdw_err_from_lmdb(rc);
    }
    MDB_val k, v;
    for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
         r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        mdw_ix_community c;
        if (mdw_ix_community_dec(v.mv_data, v.mv_size, &c))
            continue;
        char hex[9];
        mdw_ix_tag_format(c.tag, hex);
        char *owner = mdw_ix_str_dup(c.owner);
        int stop = fn(ctx, owner, hex);
        free(owner);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    mdw_ix_rtxn_end(ix, txn);
    return 0;
}

static uint64_t entries(mdw_index *ix, MDB_txn *txn, int t)
{
    MDB_stat st;
    return mdb_stat(txn, ix->dbi[t], &st) ? 0 : st.ms_entries;
}

int mdw_index_stats_get(mdw_index *ix, mdw_index_stats *st)
{
    memset(st, 0, sizeof *st);
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    st->communities = entries(ix, txn, IX_COMMUNITIES);
    st->members = entries(ix, txn, IX_MEMBERS);
    st->posts = meta_u64(ix, txn, MDW_IX_META_POSTS);
    st->moderation = entries(ix, txn, IX_MODERATION);
    st->records = entries(ix, txn, IX_RECORDS);
    st->tombstones = meta_u64(ix, txn, MDW_IX_META_TOMBSTONES);
    st->last_applied_seq = meta_u64(ix, txn, MDW_IX_META_LAST_SEQ);
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(ix->env, &info);
    mdb_env_stat(ix->env, &est);
    st->bytes_used = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
    st->map_bytes = info.me_mapsize;
    mdw_ix_rtxn_end(ix, txn);
    return 0;
}

int mdw_index_last_seq(mdw_index *ix, uint64_t *seq)
{
    *seq = 0;
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    *seq = meta_u64(ix, txn, MDW_IX_META_LAST_SEQ);
    mdw_ix_rtxn_end(ix, txn);
    return 0;
}

int mdw_index_backup(mdw_index *ix, const char *dir)
{
    if (mkdir(dir, 0755) && errno != EEXIST) {
        int e = errno;
        mdw_error("index", "cannot create backup directory", "dir=%s err=\"%s\"", dir, strerror(e));
        return -e;
    }
    int rc = mdb_env_copy2(ix->env, dir, MDB_CP_COMPACT);
    if (rc) {
        mdw_error("index", "backup failed", "dir=%s err=\"%s\"", dir, mdb_strerror(rc));
        return rc == EEXIST ? -EEXIST : mdw_err_from_lmdb(rc);
    }
    return 0;
}

int mdw_index_parse_feed_uri(const char *uri, char **owner, char hashtag_id[9])
{
    size_t olen = 0;
    *owner = NULL;
    if (mdw_feed_uri_parse(uri, strlen(uri), &olen, hashtag_id))
        return MDW_EMALFORMED;
    *owner = xstrndup(uri + 5, olen);
    return 0;
}
