/*
** processor/rules.c — the rule engine: records in, index tables out.
**
** Source tables hold the current records (posts, config versions,
** memberships, moderation actions, account states). Derived tables
** (communities, roles, members, feed) are recomputed from them
** for whatever an event touches:
**   post changed      -> re-place that post in the communities of its tags
**   membership        -> re-evaluate (community, author) membership
**   moderation action -> re-evaluate its target (a post, or a member)
**   account state     -> re-place every post of that account
**   config            -> rebuild the whole community (owner, hashtag)
** Visibility is therefore decided at write time and a feed holds exactly
** its visible posts: a read never skips hidden ones, so pages are full and
** each read scans only what it returns (docs/index.md says why).
**
** LMDB pointers returned inside a write transaction die at the next write:
** everything read is decoded into owned memory before writing.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "index/index_impl.h"
#include "lexicon/lexicon.h"
#include "processor/authors.h"
#include "processor/keyset.h"
#include "processor/rules.h"
#include "common/banned.h"

/* The array itself, or NULL when it is absent or not an array (cJSON_ArrayForEach takes NULL). */
static const cJSON *as_array(const cJSON *a)
{
    return cJSON_IsArray(a) ? a : NULL;
}

#define MAX_CONFIG_VERSIONS 64

/*
** The open communities of each hashtag seen, kept in memory between events
** (by_tag + communities are read for every tagged post otherwise). Only
** this writer changes those tables, so the cache stays true as long as it
** is dropped whenever a community is rebuilt or a transaction aborted.
*/
#define TAGCACHE_SLOTS 8192 /* power of two; cleared when half full */

typedef struct comm comm;
#define CURICACHE_SLOTS 256 /* power of two */
typedef struct tagcache_entry {
    uint32_t tag;
    int used;
    size_t n;
    comm *comms;
} tagcache_entry;

struct mdw_rules {
    mdw_index *ix;
    mdw_clock *clock;
    int64_t retention_us, now, cutoff;
    MDB_txn *txn;
    mdw_tagger *tagger;
    mdw_ix_enc enc;
    int64_t tomb_delta, post_delta;
    int64_t min_regular_rk; /* lowest rkey time of a regular post made live in this transaction */
    /* One cursor per table for the whole write transaction (closed before it ends): collect() runs
     * a few times per event. */
    MDB_cursor *cur[IX_NTABLES];
    tagcache_entry *tc;
    size_t tc_used;
    mdw_authors *authors; /* posts by author, rebuilt from records by the first transaction */
    int authors_built;
    /*
    ** Negative filters (keyset.h: supersets of the table's keys, kept by put()
    ** and filled by the first transaction) in front of lookups that mostly
    ** find nothing: moderation of a target (H(config uri) | H(target)), an
    ** account stored as not visible (H(did)), membership and roles
    ** (H(comm) | H(did)).
    */
    mdw_keyset *mod_targets, *hidden_accounts, *members, *roles;
    /* comm_by_curi() results by H(config uri); dropped when configs or communities change. */
    struct curicache_entry *cc;
    int cc_used;
    mdw_author_post *al; /* scratch list for mdw_authors_list */
    size_t alcap;
};

#define DBI(t) (r->ix->dbi[(t)])
#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

/* ---- small LMDB helpers ---- */

static int lmdb_rc(int rc, const char *what)
{
    if (rc && rc != MDB_NOTFOUND)
        mdw_error("processor", "index write failed", "op=%s err=\"%s\"", what, mdb_strerror(rc));
    return mdw_err_from_lmdb(rc);
}

static int get(mdw_rules *r, int t, const void *k, size_t kn, MDB_val *v)
{
    MDB_val key = {kn, (void *)k};
    int rc = mdb_get(r->txn, DBI(t), &key, v);
    if (rc == MDB_NOTFOUND)
        return MDW_ENOTFOUND;
    return rc ? lmdb_rc(rc, "get") : 0;
}

/* Looks a value up and starts decoding it: 1 found (d ready), 0 absent, or an error. */
static int get_dec(mdw_rules *r, int t, const void *k, size_t kn, mdw_ix_dec *d)
{
    MDB_val v;
    int rc = get(r, t, k, kn, &v);
    if (rc == MDW_ENOTFOUND)
        return 0;
    TRY(rc);
    mdw_ix_dec_init(d, &v);
    return 1;
}

static void curicache_clear(mdw_rules *r);

/*
** Keeps the negative filters supersets (every key put into a filtered table
** goes in) and the config-URI cache true (dropped on any write to what it
** read).
*/
static void filters_note(mdw_rules *r, int t, const void *k, size_t kn, const void *d, size_t dn)
{
    if (t == IX_CONFIGS || t == IX_COMMUNITIES)
        curicache_clear(r);
    else if (t == IX_ROLES && kn == 2 * MDW_IX_H)
        mdw_keyset_add(r->roles, k);
    else if (t == IX_MODERATION && kn >= 2 * MDW_IX_H)
        mdw_keyset_add(r->mod_targets, k);
    else if (t == IX_MEMBERS && kn == 2 * MDW_IX_H)
        mdw_keyset_add(r->members, k);
    else if (t == IX_ACCOUNTS && kn == MDW_IX_H && dn && ((const uint8_t *)d)[0] == 0)
        mdw_keyset_add(r->hidden_accounts, k);
}

static int put(mdw_rules *r, int t, const void *k, size_t kn, const void *d, size_t dn)
{
    MDB_val key = {kn, (void *)k}, val = {dn, (void *)d};
    filters_note(r, t, k, kn, d, dn);
    int rc = mdb_put(r->txn, DBI(t), &key, &val, 0);
    return rc ? lmdb_rc(rc, mdw_ix_table_names[t]) : 0;
}

static int put_enc(mdw_rules *r, int t, const void *k, size_t kn)
{
    return put(r, t, k, kn, r->enc.p, r->enc.len);
}

static int del(mdw_rules *r, int t, const void *k, size_t kn)
{
    MDB_val key = {kn, (void *)k};
    if (t == IX_CONFIGS || t == IX_COMMUNITIES)
        curicache_clear(r);
    int rc = mdb_del(r->txn, DBI(t), &key, NULL);
    return rc && rc != MDB_NOTFOUND ? lmdb_rc(rc, "del") : 0;
}

typedef struct kv {
    uint8_t *k, *v;
    size_t kn, vn;
} kv;

typedef struct kvlist {
    kv *a;
    size_t n, cap;
} kvlist;

static void kvlist_free(kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->a[i].k);
        free(l->a[i].v);
    }
    free(l->a);
    memset(l, 0, sizeof *l);
}

/* The transaction's cursor on table t (opened on first use). */
static int cursor(mdw_rules *r, int t, MDB_cursor **out)
{
    if (!r->cur[t]) {
        int rc = mdb_cursor_open(r->txn, DBI(t), &r->cur[t]);
        if (rc) {
            r->cur[t] = NULL;
            return lmdb_rc(rc, "cursor");
        }
    }
    *out = r->cur[t];
    return 0;
}

/* Before the transaction ends (LMDB frees a write transaction's cursors with it). */
static void cursors_close(mdw_rules *r)
{
    for (int t = 0; t < IX_NTABLES; t++)
        if (r->cur[t]) {
            mdb_cursor_close(r->cur[t]);
            r->cur[t] = NULL;
        }
}

/* Copies every (key, value) whose key starts with prefix (values only when with_v). */
static int collect(mdw_rules *r, int t, const void *prefix, size_t plen, int with_v, kvlist *out)
{
    memset(out, 0, sizeof *out);
    MDB_cursor *cur = NULL;
    TRY(cursor(r, t, &cur));
    int rc;
    MDB_val k = {plen, (void *)prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->a = xrealloc(out->a, out->cap * sizeof *out->a);
        }
        kv *e = &out->a[out->n++];
        e->k = xmemdup(k.mv_data, k.mv_size);
        e->kn = k.mv_size;
        e->v = with_v ? xmemdup(v.mv_data, v.mv_size ? v.mv_size : 1) : NULL;
        e->vn = with_v ? v.mv_size : 0;
    }
    if (rc && rc != MDB_NOTFOUND) {
        kvlist_free(out);
        return lmdb_rc(rc, "cursor_get");
    }
    return 0;
}

static void dec_kv(mdw_ix_dec *d, const kv *e)
{
    MDB_val v = {e->vn, e->v};
    mdw_ix_dec_init(d, &v);
}

static int rev_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

static int64_t exp_time(const char *rev, int64_t first_seen)
{
    int64_t t;
    return mdw_ix_tid_time(rev, strlen(rev), &t) == 0 ? t : first_seen;
}

static int str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int collision(const char *what, const char *a, mdw_ix_str b)
{
    mdw_ix_collisions++;
    mdw_warn("processor", "hash collision: refused", "table=%s new=\"%.200s\" stored=\"%.*s\"",
             what, a, (int)(b.n > 200 ? 200 : b.n), b.p);
    return 1;
}

/* ---- records: rev, state, first seen; a live post's data ---- */

/*
** A live tagged post: kept in its records value (format 3 folded the posts
** table in: one get and one put per post instead of two of each). The
** author is the DID in the URI.
*/
typedef struct post {
    int found;
    int64_t sk, created;
    size_t ntags;
    uint8_t tags[MDW_MAX_POST_TAGS][4];
    char *author, *uri, *cid;
    uint8_t ah[MDW_IX_H]; /* H(author), hashed once */
} post;

static void post_free(post *p)
{
    free(p->author);
    free(p->uri);
    free(p->cid);
    memset(p, 0, sizeof *p);
}

typedef struct rec {
    int found;
    uint8_t kind, state;
    int64_t first_seen;
    char rev[MDW_MAX_REV_BYTES + 1];
    char *aux1, *aux2;
    post p; /* p.found: a live post with its data */
} rec;

static void rec_free(rec *c)
{
    free(c->aux1);
    free(c->aux2);
    post_free(&c->p);
    memset(c, 0, sizeof *c);
}

/* The DID of at://did/... (malloc'd), or NULL. */
static char *uri_did(const char *p, size_t n)
{
    if (n < 5 || memcmp(p, "at://", 5) != 0)
        return NULL;
    const char *s = memchr(p + 5, '/', n - 5);
    return s ? xstrndup(p + 5, (size_t)(s - p - 5)) : NULL;
}

/* Decodes a records value; uri (when not NULL) must match or it is a collision (1). */
static int rec_decode(const MDB_val *v, const char *uri, rec *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_dec d;
    mdw_ix_dec_init(&d, v);
    c->kind = mdw_ix_dec_u8(&d);
    c->state = mdw_ix_dec_u8(&d);
    c->first_seen = mdw_ix_dec_i64(&d);
    mdw_ix_str rev = mdw_ix_dec_str(&d);
    mdw_ix_str u = mdw_ix_dec_str(&d);
    mdw_ix_str a1 = mdw_ix_dec_str(&d);
    mdw_ix_str a2 = mdw_ix_dec_str(&d);
    if (d.err || rev.n > MDW_MAX_REV_BYTES)
        return MDW_ECORRUPT;
    if (uri && !mdw_ix_str_eq(u, uri))
        return collision("records", uri, u);
    if (c->kind == IX_KIND_POST && c->state == IX_STATE_LIVE) {
        post *p = &c->p;
        p->sk = mdw_ix_dec_i64(&d);
        p->created = mdw_ix_dec_i64(&d);
        p->ntags = mdw_ix_dec_u8(&d);
        if (p->ntags > MDW_MAX_POST_TAGS)
            return MDW_ECORRUPT;
        const uint8_t *t = mdw_ix_dec_bytes(&d, p->ntags * 4);
        mdw_ix_str cid = mdw_ix_dec_str(&d);
        if (d.err || !(p->author = uri_did(u.p, u.n)))
            return MDW_ECORRUPT;
        memcpy(p->tags, t, p->ntags * 4);
        mdw_ix_hash_str(p->author, p->ah);
        p->uri = mdw_ix_str_dup(u);
        p->cid = mdw_ix_str_dup(cid);
        p->found = 1;
    }
    c->found = 1;
    memcpy(c->rev, rev.p, rev.n);
    c->rev[rev.n] = '\0';
    c->aux1 = a1.n ? mdw_ix_str_dup(a1) : NULL;
    c->aux2 = a2.n ? mdw_ix_str_dup(a2) : NULL;
    return 0;
}

/* 0 (found or not), 1 on a hash collision, or an error. */
static int rec_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, rec *c)
{
    memset(c, 0, sizeof *c);
    MDB_val v;
    int rc = get(r, IX_RECORDS, rk, MDW_IX_RK, &v);
    if (rc == MDW_ENOTFOUND)
        return 0;
    TRY(rc);
    rc = rec_decode(&v, uri, c);
    if (rc)
        rec_free(c);
    return rc;
}

/* Expiry keys: time, then the records key (or H(did) for accounts). */
static void expiry_key(uint8_t *key, int64_t t, const uint8_t *id, size_t idn)
{
    mdw_ix_put_be64(key, mdw_ix_sk_enc(t));
    memcpy(key + 8, id, idn);
}

static int rec_unexpire(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const rec *old)
{
    if (!old->found || old->state == IX_STATE_LIVE)
        return 0;
    uint8_t ek[8 + MDW_IX_RK];
    expiry_key(ek, exp_time(old->rev, old->first_seen), rk, MDW_IX_RK);
    if (old->state == IX_STATE_TOMB)
        r->tomb_delta--;
    return del(r, IX_EXPIRY, ek, sizeof ek);
}

/* p: the post's data when kind is a post and state live (else NULL). */
static int rec_store(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, const rec *old,
                     uint8_t kind, uint8_t state, int64_t first, const char *rev, const char *aux1,
                     const char *aux2, const post *p)
{
    TRY(rec_unexpire(r, rk, old));
    int was_post = old->found && old->p.found,
        is_post = kind == IX_KIND_POST && state == IX_STATE_LIVE && p;
    r->post_delta += is_post - was_post;
    mdw_ix_enc *e = &r->enc;
    mdw_ix_enc_reset(e);
    mdw_ix_enc_u8(e, kind);
    mdw_ix_enc_u8(e, state);
    mdw_ix_enc_i64(e, first);
    mdw_ix_enc_cstr(e, rev);
    mdw_ix_enc_cstr(e, uri);
    mdw_ix_enc_cstr(e, aux1);
    mdw_ix_enc_cstr(e, aux2);
    if (is_post) {
        mdw_ix_enc_i64(e, p->sk);
        mdw_ix_enc_i64(e, p->created);
        mdw_ix_enc_u8(e, (uint8_t)p->ntags);
        mdw_ix_enc_bytes(e, p->tags, p->ntags * 4);
        mdw_ix_enc_cstr(e, p->cid);
    }
    TRY(put_enc(r, IX_RECORDS, rk, MDW_IX_RK));
    if (state != IX_STATE_LIVE) {
        uint8_t ek[8 + MDW_IX_RK], tid = IX_EXP_RECORD;
        expiry_key(ek, exp_time(rev, first), rk, MDW_IX_RK);
        if (state == IX_STATE_TOMB)
            r->tomb_delta++;
        TRY(put(r, IX_EXPIRY, ek, sizeof ek, &tid, 1));
    }
    return 0;
}

/* ---- posts ---- */

/* The live post under records key rk (p->found 0 when there is none or it is not one). */
static int post_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], post *p)
{
    memset(p, 0, sizeof *p);
    rec c;
    TRY(rec_load(r, rk, NULL, &c));
    *p = c.p;
    memset(&c.p, 0, sizeof c.p);
    rec_free(&c);
    return 0;
}

static int has_tag(const post *p, const uint8_t tag[4])
{
    for (size_t i = 0; i < p->ntags; i++)
        if (!memcmp(p->tags[i], tag, 4))
            return 1;
    return 0;
}

/*
** Retention without a posts-by-age table (format 5; format 4 put every
** tagged post in tag_posts, one more write per post). A post's sort key is
** at most its rkey's TID time (the minimum of first seen, createdAt and that
** time), and for almost every post within SWEEP_SLACK_US of it: "regular".
** Records are keyed by rkey time, so the sweep walks them from
** meta.sweep_from (no regular live post lies below it) to cutoff + slack.
** The others (a backdated createdAt, a rkey that is not a TID) get an
** expiry entry at their sort key, swept with the tombstones.
*/
#define SWEEP_SLACK_US  (3600LL * 1000000)
#define POST_EXPIRY_KEY (8 + MDW_IX_RK + 1) /* time | RK | 'p': never a record expiry key */

static int post_regular(const post *p, const uint8_t rk[MDW_IX_RK])
{
    int64_t t = (int64_t)mdw_ix_get_be64(rk);
    return t > 0 && p->sk <= t && t - p->sk <= SWEEP_SLACK_US;
}

static void post_expiry_key(uint8_t k[POST_EXPIRY_KEY], int64_t sk, const uint8_t rk[MDW_IX_RK])
{
    expiry_key(k, sk, rk, MDW_IX_RK);
    k[8 + MDW_IX_RK] = 'p';
}

/* Adds (add=1) or removes (add=0) the post's secondary entries (the author index, its expiry). */
static int post_index(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p, int add)
{
    for (size_t i = 0; i < p->ntags; i++) {
        if (add)
            mdw_authors_add(r->authors, p->ah, p->tags[i], rk);
        else
            mdw_authors_del(r->authors, p->ah, p->tags[i], rk);
    }
    if (!post_regular(p, rk)) {
        uint8_t ek[POST_EXPIRY_KEY], id = IX_EXP_POST;
        post_expiry_key(ek, p->sk, rk);
        return add ? put(r, IX_EXPIRY, ek, sizeof ek, &id, 1) : del(r, IX_EXPIRY, ek, sizeof ek);
    }
    int64_t t = (int64_t)mdw_ix_get_be64(rk);
    if (add && t < r->min_regular_rk)
        r->min_regular_rk = t;
    return 0;
}

/* Moves the post's secondary entries from old (maybe not found) to p; the record is the caller's.
 */
static int post_write(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *old, const post *p)
{
    if (old->found)
        TRY(post_index(r, rk, old, 0));
    return post_index(r, rk, p, 1);
}

/* ---- communities ---- */

struct comm {
    int found;
    uint8_t ck[MDW_IX_H];
    uint8_t tag[4];
    char *owner, *curi;
    uint8_t curih[MDW_IX_H]; /* H(curi), hashed once: moderation keys start with it */
};

static void comm_free(comm *c)
{
    free(c->owner);
    free(c->curi);
    memset(c, 0, sizeof *c);
}

static int comm_load(mdw_rules *r, const uint8_t ck[MDW_IX_H], comm *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_dec d;
    int rc = get_dec(r, IX_COMMUNITIES, ck, MDW_IX_H, &d);
    if (rc <= 0)
        return rc;
    const uint8_t *t = mdw_ix_dec_bytes(&d, 4);
    mdw_ix_str o = mdw_ix_dec_str(&d), u = mdw_ix_dec_str(&d);
    if (d.err)
        return MDW_ECORRUPT;
    memcpy(c->ck, ck, MDW_IX_H);
    memcpy(c->tag, t, 4);
    c->owner = mdw_ix_str_dup(o);
    c->curi = mdw_ix_str_dup(u);
    mdw_ix_hash(u.p, u.n, c->curih);
    c->found = 1;
    return 0;
}

typedef struct curicache_entry {
    int used;
    uint8_t h[MDW_IX_H];
    char *curi;
    comm c; /* c.found 0: no open community has this config */
} curicache_entry;

static void curicache_clear(mdw_rules *r)
{
    if (!r->cc_used)
        return;
    for (size_t i = 0; i < CURICACHE_SLOTS; i++) {
        free(r->cc[i].curi);
        comm_free(&r->cc[i].c);
        r->cc[i].used = 0;
        r->cc[i].curi = NULL;
    }
    r->cc_used = 0;
}

static void comm_copy(comm *dst, const comm *src)
{
    *dst = *src;
    dst->owner = src->owner ? xstrdup(src->owner) : NULL;
    dst->curi = src->curi ? xstrdup(src->curi) : NULL;
}

static int comm_by_curi_load(mdw_rules *r, const char *curi, const uint8_t h[MDW_IX_H], comm *c);

/*
** The open community whose winning config is curi, if any (memberships and
** actions name their community by config URI: one lookup of configs and
** communities per event otherwise).
*/
static int comm_by_curi(mdw_rules *r, const char *curi, comm *c)
{
    uint8_t h[MDW_IX_H];
    mdw_ix_hash_str(curi, h);
    curicache_entry *e = &r->cc[h[0] & (CURICACHE_SLOTS - 1)];
    if (e->used && !memcmp(e->h, h, MDW_IX_H) && str_eq(e->curi, curi)) {
        comm_copy(c, &e->c);
        return 0;
    }
    TRY(comm_by_curi_load(r, curi, h, c));
    free(e->curi);
    comm_free(&e->c);
    e->used = 1;
    r->cc_used = 1;
    memcpy(e->h, h, MDW_IX_H);
    e->curi = xstrdup(curi);
    comm_copy(&e->c, c);
    return 0;
}

static int comm_by_curi_load(mdw_rules *r, const char *curi, const uint8_t h[MDW_IX_H], comm *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_dec d;
    int rc = get_dec(r, IX_CONFIGS, h, MDW_IX_H, &d);
    if (rc <= 0)
        return rc;
    uint8_t tag[4];
    const uint8_t *tp = mdw_ix_dec_bytes(&d, 4);
    if (tp)
        memcpy(tag, tp, 4);
    mdw_ix_dec_i64(&d);
    mdw_ix_str o = mdw_ix_dec_str(&d), u = mdw_ix_dec_str(&d);
    if (d.err)
        return MDW_ECORRUPT;
    if (!mdw_ix_str_eq(u, curi))
        return 0;
    char *owner = mdw_ix_str_dup(o);
    uint8_t ck[MDW_IX_H];
    mdw_ix_comm_key(owner, tag, ck);
    free(owner);
    TRY(comm_load(r, ck, c));
    if (c->found && !str_eq(c->curi, curi))
        comm_free(c);
    return 0;
}

/* dh: H(did) when the caller has it, else NULL (the same for members_has, account_visible). */
static int role_flags(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did, const uint8_t *dh,
                      uint8_t *flags)
{
    *flags = 0;
    uint8_t k[2 * MDW_IX_H];
    memcpy(k, ck, MDW_IX_H);
    if (dh)
        memcpy(k + MDW_IX_H, dh, MDW_IX_H);
    else
        mdw_ix_hash_str(did, k + MDW_IX_H);
    if (!mdw_keyset_has(r->roles, k))
        return 0; /* neither moderator nor blocklisted */
    mdw_ix_dec d;
    int rc = get_dec(r, IX_ROLES, k, sizeof k, &d);
    if (rc <= 0)
        return rc;
    uint8_t f = mdw_ix_dec_u8(&d);
    mdw_ix_str s = mdw_ix_dec_str(&d);
    if (!d.err && mdw_ix_str_eq(s, did))
        *flags = f;
    return 0;
}

/*
** The deciding action on target tkey ("p:<post uri>" or "u:<did>") in
** community c: among actions naming c's config whose author is the owner or
** a moderator now, the latest (createdAt, URI). 0 when none.
*/
/* The stored target key ("p:<uri>", "u:<did>") equals kind ':' target. */
static int tkey_eq(mdw_ix_str tk, char kind, const char *target, size_t tn)
{
    return tk.n == tn + 2 && tk.p[0] == kind && tk.p[1] == ':' && !memcmp(tk.p + 2, target, tn);
}

static int mod_decide(mdw_rules *r, const comm *c, char kind, const char *target, int *act)
{
    *act = 0;
    uint8_t pre[2 * MDW_IX_H];
    size_t tn = strlen(target);
    const char kp[2] = {kind, ':'};
    memcpy(pre, c->curih, MDW_IX_H);
    mdw_ix_hash2(kp, 2, target, tn, pre + MDW_IX_H);
    if (!mdw_keyset_has(r->mod_targets, pre))
        return 0; /* no action on this target in c, ever */
    kvlist l;
    TRY(collect(r, IX_MODERATION, pre, sizeof pre, 1, &l));
    int64_t best_t = 0;
    char *best_u = NULL;
    int rc = 0;
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_dec d;
        dec_kv(&d, &l.a[i]);
        int64_t t = mdw_ix_dec_i64(&d);
        uint8_t a = mdw_ix_dec_u8(&d);
        mdw_ix_str author = mdw_ix_dec_str(&d), tk = mdw_ix_dec_str(&d), u = mdw_ix_dec_str(&d),
                   cu = mdw_ix_dec_str(&d);
        if (d.err || !tkey_eq(tk, kind, target, tn) || !mdw_ix_str_eq(cu, c->curi))
            continue;
        char *as = mdw_ix_str_dup(author);
        uint8_t fl = 0;
        int ok = str_eq(as, c->owner);
        if (!ok && (rc = role_flags(r, c->ck, as, NULL, &fl)) == 0)
            ok = fl & IX_ROLE_MOD;
        free(as);
        if (rc)
            break;
        if (!ok)
            continue;
        char *us = mdw_ix_str_dup(u);
        if (!best_u || t > best_t || (t == best_t && strcmp(us, best_u) > 0)) {
            free(best_u);
            best_u = us;
            best_t = t;
            *act = a;
        } else {
            free(us);
        }
    }
    free(best_u);
    kvlist_free(&l);
    return rc;
}

static int is_member(mdw_rules *r, const comm *c, const char *did, const uint8_t dh[MDW_IX_H],
                     int *m)
{
    *m = 0;
    uint8_t fl;
    TRY(role_flags(r, c->ck, did, dh, &fl));
    if (fl & IX_ROLE_BLOCKLIST)
        return 0;
    int act = 0;
    TRY(mod_decide(r, c, 'u', did, &act));
    if (act == IX_ACT_BLOCK)
        return 0;
    if (str_eq(did, c->owner) || (fl & IX_ROLE_MOD)) {
        *m = 1;
        return 0;
    }
    uint8_t pre[2 * MDW_IX_H];
    memcpy(pre, c->curih, MDW_IX_H);
    memcpy(pre + MDW_IX_H, dh, MDW_IX_H);
    kvlist l;
    TRY(collect(r, IX_MEMBERSHIPS, pre, sizeof pre, 1, &l));
    for (size_t i = 0; i < l.n && !*m; i++) {
        mdw_ix_dec d;
        dec_kv(&d, &l.a[i]);
        uint8_t active = mdw_ix_dec_u8(&d);
        mdw_ix_str ds = mdw_ix_dec_str(&d), u = mdw_ix_dec_str(&d), cu = mdw_ix_dec_str(&d);
        (void)u;
        if (!d.err && active && mdw_ix_str_eq(ds, did) && mdw_ix_str_eq(cu, c->curi))
            *m = 1;
    }
    kvlist_free(&l);
    return 0;
}

static int members_has(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did,
                       const uint8_t dh[MDW_IX_H], int *has)
{
    *has = 0;
    uint8_t k[2 * MDW_IX_H];
    memcpy(k, ck, MDW_IX_H);
    memcpy(k + MDW_IX_H, dh, MDW_IX_H);
    if (!mdw_keyset_has(r->members, k))
        return 0;
    mdw_ix_dec d;
    int rc = get_dec(r, IX_MEMBERS, k, sizeof k, &d);
    if (rc <= 0)
        return rc;
    *has = mdw_ix_str_eq(mdw_ix_dec_str(&d), did) && !d.err;
    return 0;
}

static int account_visible(mdw_rules *r, const char *did, const uint8_t dh[MDW_IX_H], int *vis)
{
    *vis = 1;
    if (!mdw_keyset_has(r->hidden_accounts, dh))
        return 0; /* never stored as not visible */
    mdw_ix_dec d;
    int rc = get_dec(r, IX_ACCOUNTS, dh, MDW_IX_H, &d);
    if (rc <= 0)
        return rc;
    uint8_t visible = mdw_ix_dec_u8(&d);
    mdw_ix_dec_i64(&d);
    mdw_ix_dec_i64(&d);
    mdw_ix_dec_str(&d);
    mdw_ix_str ds = mdw_ix_dec_str(&d);
    if (!d.err && mdw_ix_str_eq(ds, did))
        *vis = visible;
    return 0;
}

/* ---- feed placement ---- */

static void feed_key(uint8_t k[MDW_IX_H + 8 + MDW_IX_H], const uint8_t ck[MDW_IX_H], int64_t sk,
                     const uint8_t h[MDW_IX_H])
{
    memcpy(k, ck, MDW_IX_H);
    mdw_ix_put_be64(k + MDW_IX_H, mdw_ix_sk_enc(sk));
    memcpy(k + MDW_IX_H + 8, h, MDW_IX_H);
}

/*
** Decides post h (p, maybe not found) in community c and makes the feed say
** so. A post can only be in c's feed under its current sort key (every sort
** key change goes through post_unplace first), so the feed key is known
** from the post itself. fresh: the post is known to be in no feed yet.
*/
static int post_eval(mdw_rules *r, const comm *c, const uint8_t rk[MDW_IX_RK], const post *p,
                     int fresh)
{
    if (!p->found || !has_tag(p, c->tag))
        return 0; /* not in this feed, and not to be */
    uint8_t fk[MDW_IX_H + 8 + MDW_IX_H];
    feed_key(fk, c->ck, p->sk, rk + 8);
    if (!fresh)
        TRY(del(r, IX_FEED, fk, sizeof fk));
    if (p->sk < r->cutoff)
        return 0;
    int ok;
    TRY(members_has(r, c->ck, p->author, p->ah, &ok));
    if (!ok)
        return 0;
    TRY(account_visible(r, p->author, p->ah, &ok));
    if (!ok)
        return 0;
    int act = 0;
    TRY(mod_decide(r, c, 'p', p->uri, &act));
    if (act == IX_ACT_HIDE)
        return 0;
    mdw_ix_enc_reset(&r->enc);
    mdw_ix_enc_cstr(&r->enc, p->uri);
    return put_enc(r, IX_FEED, fk, sizeof fk);
}

static void tagcache_clear(mdw_rules *r)
{
    if (!r->tc_used)
        return;
    for (size_t i = 0; i < TAGCACHE_SLOTS; i++) {
        tagcache_entry *e = &r->tc[i];
        for (size_t j = 0; j < e->n; j++)
            comm_free(&e->comms[j]);
        free(e->comms);
        memset(e, 0, sizeof *e);
    }
    r->tc_used = 0;
}

/* The open communities using tag (cached; see TAGCACHE_SLOTS). */
static int tag_communities(mdw_rules *r, const uint8_t tag[4], const tagcache_entry **out)
{
    uint32_t t = (uint32_t)tag[0] << 24 | (uint32_t)tag[1] << 16 | (uint32_t)tag[2] << 8 | tag[3];
    size_t i = (t * 2654435761u) & (TAGCACHE_SLOTS - 1);
    while (r->tc[i].used && r->tc[i].tag != t)
        i = (i + 1) & (TAGCACHE_SLOTS - 1);
    tagcache_entry *e = &r->tc[i];
    if (e->used) {
        *out = e;
        return 0;
    }
    if (r->tc_used >= TAGCACHE_SLOTS / 2) {
        tagcache_clear(r);
        return tag_communities(r, tag, out);
    }
    kvlist l;
    TRY(collect(r, IX_BY_TAG, tag, 4, 0, &l));
    int rc = 0;
    size_t n = 0, max = l.n;
    comm *cs = max ? xcalloc(max, sizeof *cs) : NULL;
    for (size_t j = 0; j < max && !rc; j++)
        if ((rc = comm_load(r, l.a[j].k + 4, &cs[n])) == 0 && cs[n].found)
            n++;
    kvlist_free(&l);
    if (rc) {
        for (size_t j = 0; j < max; j++)
            comm_free(&cs[j]);
        free(cs);
        return rc;
    }
    e->used = 1;
    e->tag = t;
    e->n = n;
    e->comms = cs;
    r->tc_used++;
    *out = e;
    return 0;
}

/*
** Takes post p (as stored: its tags and sort key) out of every feed: feed
** entries exist only in the open communities of its tags (closing a
** community deletes its whole feed).
*/
static int post_unplace(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    for (size_t i = 0; i < p->ntags; i++) {
        const tagcache_entry *e;
        TRY(tag_communities(r, p->tags[i], &e));
        for (size_t j = 0; j < e->n; j++) {
            uint8_t fk[MDW_IX_H + 8 + MDW_IX_H];
            feed_key(fk, e->comms[j].ck, p->sk, rk + 8);
            TRY(del(r, IX_FEED, fk, sizeof fk));
        }
    }
    return 0;
}

/*
** Puts post h in each open community of each of its tags where it is
** visible. Callers have just taken it out of every feed (or it is new).
*/
static int post_place(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    for (size_t i = 0; i < p->ntags; i++) {
        const tagcache_entry *e;
        TRY(tag_communities(r, p->tags[i], &e));
        for (size_t j = 0; j < e->n; j++)
            TRY(post_eval(r, &e->comms[j], rk, p, 1));
    }
    return 0;
}

/* Out of every feed and secondary index; the caller rewrites or deletes the record. */
static int post_remove(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    TRY(post_unplace(r, rk, p));
    return post_index(r, rk, p, 0);
}

/* Membership of did in c recomputed; its posts follow when it changed. dh: H(did), or NULL. */
static int member_reeval(mdw_rules *r, const comm *c, const char *did, const uint8_t *dh_in)
{
    int m, has;
    uint8_t dh[MDW_IX_H];
    if (dh_in)
        memcpy(dh, dh_in, MDW_IX_H);
    else
        mdw_ix_hash_str(did, dh);
    TRY(is_member(r, c, did, dh, &m));
    TRY(members_has(r, c->ck, did, dh, &has));
    if (m == has)
        return 0;
    uint8_t k[2 * MDW_IX_H];
    memcpy(k, c->ck, MDW_IX_H);
    memcpy(k + MDW_IX_H, dh, MDW_IX_H);
    if (m) {
        mdw_ix_enc_reset(&r->enc);
        mdw_ix_enc_cstr(&r->enc, did);
        TRY(put_enc(r, IX_MEMBERS, k, sizeof k));
    } else {
        TRY(del(r, IX_MEMBERS, k, sizeof k));
    }
    size_t n = mdw_authors_list(r->authors, dh, c->tag, &r->al, &r->alcap);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const uint8_t *rk = r->al[i].rk;
        post p;
        if ((rc = post_load(r, rk, &p)) == 0 && p.found && str_eq(p.author, did))
            rc = post_eval(r, c, rk, &p, 0);
        post_free(&p);
    }
    return rc;
}

static int del_prefix(mdw_rules *r, int t, const void *pre, size_t plen)
{
    kvlist l;
    TRY(collect(r, t, pre, plen, 0, &l));
    int rc = 0;
    for (size_t i = 0; i < l.n && !rc; i++)
        rc = del(r, t, l.a[i].k, l.a[i].kn);
    kvlist_free(&l);
    return rc;
}

static int role_add(mdw_rules *r, const uint8_t ck[MDW_IX_H], const cJSON *arr, uint8_t flag)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, as_array(arr))
    {
        if (!cJSON_IsString(e))
            continue;
        uint8_t fl;
        TRY(role_flags(r, ck, e->valuestring, NULL, &fl));
        uint8_t k[2 * MDW_IX_H];
        memcpy(k, ck, MDW_IX_H);
        mdw_ix_hash_str(e->valuestring, k + MDW_IX_H);
        mdw_ix_enc_reset(&r->enc);
        mdw_ix_enc_u8(&r->enc, fl | flag);
        mdw_ix_enc_cstr(&r->enc, e->valuestring);
        TRY(put_enc(r, IX_ROLES, k, sizeof k));
    }
    return 0;
}

/*
** Rebuilds community (owner, tag) from the source tables: the winning
** config is the lowest (createdAt, URI) among the owner's effective configs
** with that hashtag; no config = no community (feed unknown).
*/
static int community_rebuild(mdw_rules *r, const char *owner, const uint8_t tag[4])
{
    tagcache_clear(r);
    uint8_t ck[MDW_IX_H];
    mdw_ix_comm_key(owner, tag, ck);
    comm old;
    TRY(comm_load(r, ck, &old));
    int rc = 0;
    if (old.found) {
        rc = del_prefix(r, IX_FEED, ck, MDW_IX_H);
        uint8_t bk[4 + MDW_IX_H];
        memcpy(bk, tag, 4);
        memcpy(bk + 4, ck, MDW_IX_H);
        if (!rc)
            rc = del_prefix(r, IX_MEMBERS, ck, MDW_IX_H);
        if (!rc)
            rc = del_prefix(r, IX_ROLES, ck, MDW_IX_H);
        if (!rc)
            rc = del(r, IX_BY_TAG, bk, sizeof bk);
        if (!rc)
            rc = del(r, IX_COMMUNITIES, ck, MDW_IX_H);
    }
    comm_free(&old);
    TRY(rc);

    uint8_t pre[MDW_IX_H + 4];
    mdw_ix_hash_str(owner, pre);
    memcpy(pre + MDW_IX_H, tag, 4);
    kvlist l;
    TRY(collect(r, IX_OWNER_CONFIGS, pre, sizeof pre, 1, &l));
    int64_t best_t = 0;
    char *best = NULL;
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_dec d;
        dec_kv(&d, &l.a[i]);
        int64_t t = mdw_ix_dec_i64(&d);
        mdw_ix_str u = mdw_ix_dec_str(&d), o = mdw_ix_dec_str(&d);
        if (d.err || !mdw_ix_str_eq(o, owner))
            continue;
        char *us = mdw_ix_str_dup(u);
        if (!best || t < best_t || (t == best_t && strcmp(us, best) < 0)) {
            free(best);
            best = us;
            best_t = t;
        } else {
            free(us);
        }
    }
    kvlist_free(&l);
    if (!best)
        return 0;

    uint8_t bh[MDW_IX_H];
    mdw_ix_hash_str(best, bh);
    MDB_val v;
    char *json = NULL;
    if ((rc = get(r, IX_CONFIGS, bh, MDW_IX_H, &v)) == 0) {
        mdw_ix_dec d;
        mdw_ix_dec_init(&d, &v);
        mdw_ix_dec_bytes(&d, 4);
        mdw_ix_dec_i64(&d);
        mdw_ix_dec_str(&d);
        mdw_ix_dec_str(&d);
        mdw_ix_dec_str(&d);
        mdw_ix_str js = mdw_ix_dec_str(&d);
        rc = d.err ? MDW_ECORRUPT : 0;
        if (!rc)
            json = mdw_ix_str_dup(js);
    }
    if (rc) {
        free(best);
        return rc;
    }
    cJSON *cfg = cJSON_Parse(json);
    mdw_ix_enc_reset(&r->enc);
    mdw_ix_enc_bytes(&r->enc, tag, 4);
    mdw_ix_enc_cstr(&r->enc, owner);
    mdw_ix_enc_cstr(&r->enc, best);
    mdw_ix_enc_cstr(&r->enc, json);
    free(json);
    rc = put_enc(r, IX_COMMUNITIES, ck, MDW_IX_H);
    uint8_t bk[4 + MDW_IX_H];
    memcpy(bk, tag, 4);
    memcpy(bk + 4, ck, MDW_IX_H);
    if (!rc)
        rc = put(r, IX_BY_TAG, bk, sizeof bk, "", 0);
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(cfg, "moderators");
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(cfg, "blocklist");
    if (!rc)
        rc = role_add(r, ck, mods, IX_ROLE_MOD);
    if (!rc)
        rc = role_add(r, ck, bl, IX_ROLE_BLOCKLIST);

    comm c = {1, {0}, {0}, xstrdup(owner), best, {0}};
    memcpy(c.ck, ck, MDW_IX_H);
    memcpy(c.curih, bh, MDW_IX_H);
    memcpy(c.tag, tag, 4);
    /* Candidates: the owner, moderators, and every DID with a membership naming this config. */
    if (!rc)
        rc = member_reeval(r, &c, owner, NULL);
    const cJSON *e;
    cJSON_ArrayForEach(e, as_array(mods))
    {
        if (!rc && cJSON_IsString(e))
            rc = member_reeval(r, &c, e->valuestring, NULL);
    }
    cJSON_Delete(cfg);
    if (!rc) {
        mdw_ix_hash_str(best, pre);
        if ((rc = collect(r, IX_MEMBERSHIPS, pre, MDW_IX_H, 1, &l)) == 0) {
            for (size_t i = 0; i < l.n && !rc; i++) {
                mdw_ix_dec d;
                dec_kv(&d, &l.a[i]);
                mdw_ix_dec_u8(&d);
                mdw_ix_str ds = mdw_ix_dec_str(&d);
                if (d.err)
                    continue;
                char *did = mdw_ix_str_dup(ds);
                rc = member_reeval(r, &c, did, NULL);
                free(did);
            }
            kvlist_free(&l);
        }
    }
    comm_free(&c);
    return rc;
}

/* ---- configs ---- */

typedef struct cfgver {
    int found;
    uint8_t tag[4];
    char rev[MDW_MAX_REV_BYTES + 1];
    char *owner;
} cfgver;

static void cfgver_decode(const MDB_val *v, cfgver *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_dec d;
    mdw_ix_dec_init(&d, v);
    const uint8_t *t = mdw_ix_dec_bytes(&d, 4);
    mdw_ix_dec_i64(&d);
    mdw_ix_str o = mdw_ix_dec_str(&d);
    mdw_ix_dec_str(&d);
    mdw_ix_str rv = mdw_ix_dec_str(&d);
    if (d.err || rv.n > MDW_MAX_REV_BYTES)
        return;
    memcpy(c->tag, t, 4);
    memcpy(c->rev, rv.p, rv.n);
    c->rev[rv.n] = '\0';
    c->owner = mdw_ix_str_dup(o);
    c->found = 1;
}

/*
** Effective version of config uri: the versions seen (all newer than its
** last delete) are in rev order; the oldest fixes the hashtag, the newest
** with that hashtag is in effect. *h0 receives the fixed hashtag.
*/
static int config_recompute(mdw_rules *r, const uint8_t h[MDW_IX_H], const char *uri, uint8_t h0[4],
                            int *has_h0)
{
    *has_h0 = 0;
    kvlist l;
    TRY(collect(r, IX_CONFIG_VERS, h, MDW_IX_H, 1, &l));
    const kv *eff = NULL;
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_dec d;
        dec_kv(&d, &l.a[i]);
        const uint8_t *t = mdw_ix_dec_bytes(&d, 4);
        mdw_ix_dec_i64(&d);
        mdw_ix_dec_str(&d);
        mdw_ix_str u = mdw_ix_dec_str(&d);
        if (d.err || !mdw_ix_str_eq(u, uri))
            continue;
        if (!*has_h0) {
            memcpy(h0, t, 4);
            *has_h0 = 1;
        }
        if (!memcmp(t, h0, 4))
            eff = &l.a[i];
    }
    cfgver old = {0}, nw = {0};
    MDB_val v;
    int rc = get(r, IX_CONFIGS, h, MDW_IX_H, &v);
    if (rc == 0)
        cfgver_decode(&v, &old);
    else if (rc != MDW_ENOTFOUND)
        goto out;
    rc = 0;
    if (eff) {
        MDB_val ev = {eff->vn, eff->v};
        cfgver_decode(&ev, &nw);
    }
    if (old.found && nw.found && !strcmp(old.rev, nw.rev))
        goto out; /* unchanged */
    if (old.found) {
        uint8_t ok[MDW_IX_H + 4 + MDW_IX_H];
        mdw_ix_hash_str(old.owner, ok);
        memcpy(ok + MDW_IX_H, old.tag, 4);
        memcpy(ok + MDW_IX_H + 4, h, MDW_IX_H);
        if ((rc = del(r, IX_OWNER_CONFIGS, ok, sizeof ok)) ||
            (rc = del(r, IX_CONFIGS, h, MDW_IX_H)))
            goto out;
    }
    if (nw.found) {
        if ((rc = put(r, IX_CONFIGS, h, MDW_IX_H, eff->v, eff->vn)))
            goto out;
        mdw_ix_dec d;
        dec_kv(&d, eff);
        mdw_ix_dec_bytes(&d, 4);
        int64_t created = mdw_ix_dec_i64(&d);
        uint8_t ok[MDW_IX_H + 4 + MDW_IX_H];
        mdw_ix_hash_str(nw.owner, ok);
        memcpy(ok + MDW_IX_H, nw.tag, 4);
        memcpy(ok + MDW_IX_H + 4, h, MDW_IX_H);
        mdw_ix_enc_reset(&r->enc);
        mdw_ix_enc_i64(&r->enc, created);
        mdw_ix_enc_cstr(&r->enc, uri);
        mdw_ix_enc_cstr(&r->enc, nw.owner);
        if ((rc = put_enc(r, IX_OWNER_CONFIGS, ok, sizeof ok)))
            goto out;
    }
    if (old.found && (!nw.found || memcmp(old.tag, nw.tag, 4) || strcmp(old.owner, nw.owner)))
        if ((rc = community_rebuild(r, old.owner, old.tag)))
            goto out;
    if (nw.found)
        rc = community_rebuild(r, nw.owner, nw.tag);
out:
    free(old.owner);
    free(nw.owner);
    kvlist_free(&l);
    return rc;
}

static int refuse(mdw_rules_result *res, const char *reason)
{
    res->outcome = MDW_RULE_REFUSED;
    res->reason = reason;
    return 0;
}

static int noop(mdw_rules_result *res, const char *reason)
{
    res->outcome = MDW_RULE_NOOP;
    res->reason = reason;
    return 0;
}

static int applied(mdw_rules_result *res, const char *reason)
{
    res->outcome = MDW_RULE_APPLIED;
    res->reason = reason;
    return 0;
}

static const char *noop_reason(const rec *c, const char *rev)
{
    if (c->state == IX_STATE_TOMB)
        return "tombstoned";
    return rev_cmp(rev, c->rev) == 0 ? "duplicate" : "stale_rev";
}

static int parse_hashtag(const cJSON *record, uint8_t tag[4])
{
    const cJSON *ht = cJSON_GetObjectItemCaseSensitive(record, "hashtag");
    if (!cJSON_IsString(ht) || strncmp(ht->valuestring, "#atr_", 5) != 0)
        return MDW_EINVALID;
    return mdw_ix_tag_parse(ht->valuestring + 5, strlen(ht->valuestring + 5), tag);
}

/*
** The record's createdAt (mdw_event_prepare parsed it exactly as the
** lexicon validator accepts it, so every valid record has an instant).
*/
static int created_at(const mdw_event *ev, int64_t *t)
{
    *t = ev->created_us;
    return ev->created_rc;
}

static int apply_config(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    const uint8_t *h = rk + 8; /* H(uri) */
    rec c;
    int rc = rec_load(r, rk, ev->uri, &c);
    if (rc == 1)
        return refuse(res, "hash_collision");
    TRY(rc);
    const char *tomb = c.found && c.state == IX_STATE_TOMB ? c.rev : NULL;
    if (tomb && rev_cmp(ev->rev, tomb) <= 0) {
        rec_free(&c);
        return noop(res, "tombstoned");
    }
    uint8_t h0[4];
    int has_h0;
    if (ev->op == MDW_OP_DELETE) {
        kvlist l;
        if ((rc = collect(r, IX_CONFIG_VERS, h, MDW_IX_H, 1, &l)) == 0) {
            for (size_t i = 0; i < l.n && !rc; i++) {
                cfgver v;
                MDB_val mv = {l.a[i].vn, l.a[i].v};
                cfgver_decode(&mv, &v);
                if (!v.found || rev_cmp(v.rev, ev->rev) < 0)
                    rc = del(r, IX_CONFIG_VERS, l.a[i].k, l.a[i].kn);
                free(v.owner);
            }
            kvlist_free(&l);
        }
        if (!rc)
            rc = rec_store(r, rk, ev->uri, &c, IX_KIND_CONFIG, IX_STATE_TOMB, ev->time_us, ev->rev,
                           NULL, NULL, NULL);
        rec_free(&c);
        TRY(rc);
        TRY(config_recompute(r, h, ev->uri, h0, &has_h0));
        return applied(res, "config_deleted");
    }
    uint8_t tag[4];
    int64_t created;
    if (parse_hashtag(ev->record, tag)) {
        rec_free(&c);
        return refuse(res, "app_rule");
    }
    if (created_at(ev, &created)) {
        rec_free(&c);
        return refuse(res, "bad_datetime");
    }
    uint8_t vk[MDW_IX_H + MDW_IX_REV_KEY] = {0};
    memcpy(vk, h, MDW_IX_H);
    memcpy(vk + MDW_IX_H, ev->rev, strlen(ev->rev));
    MDB_val v;
    if ((rc = get(r, IX_CONFIG_VERS, vk, sizeof vk, &v)) == 0) {
        rec_free(&c);
        return noop(res, "duplicate");
    }
    if (rc != MDW_ENOTFOUND) {
        rec_free(&c);
        return rc;
    }
    char *json = cJSON_PrintUnformatted(ev->record);
    mdw_ix_enc_reset(&r->enc);
    mdw_ix_enc_bytes(&r->enc, tag, 4);
    mdw_ix_enc_i64(&r->enc, created);
    mdw_ix_enc_cstr(&r->enc, ev->did);
    mdw_ix_enc_cstr(&r->enc, ev->uri);
    mdw_ix_enc_cstr(&r->enc, ev->rev);
    mdw_ix_enc_cstr(&r->enc, json ? json : "{}");
    free(json);
    rc = put_enc(r, IX_CONFIG_VERS, vk, sizeof vk);
    /* A bare "exists" marker (no rev, no time): the versions carry the content. */
    if (!rc && !c.found)
        rc = rec_store(r, rk, ev->uri, &c, IX_KIND_CONFIG, IX_STATE_LIVE, 0, "", NULL, NULL, NULL);
    rec_free(&c);
    TRY(rc);
    /* Bound the history an owner can pile up: keep the oldest and the newest versions. */
    kvlist l;
    TRY(collect(r, IX_CONFIG_VERS, h, MDW_IX_H, 0, &l));
    for (size_t i = 1; !rc && l.n > MAX_CONFIG_VERSIONS && i < l.n - (MAX_CONFIG_VERSIONS - 1); i++)
        rc = del(r, IX_CONFIG_VERS, l.a[i].k, l.a[i].kn);
    kvlist_free(&l);
    TRY(rc);
    TRY(config_recompute(r, h, ev->uri, h0, &has_h0));
    if (has_h0 && memcmp(h0, tag, 4)) {
        mdw_warn("processor", "config update changes the hashtag: refused", "uri=\"%s\" rev=%s",
                 ev->uri, ev->rev);
        return refuse(res, "hashtag_change");
    }
    return applied(res, "config");
}

/* ---- memberships and moderation ---- */

static int reeval_curi_member(mdw_rules *r, const char *curi, const char *did,
                              const uint8_t dh[MDW_IX_H])
{
    comm c;
    TRY(comm_by_curi(r, curi, &c));
    int rc = c.found ? member_reeval(r, &c, did, dh) : 0;
    comm_free(&c);
    return rc;
}

static int apply_membership(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key, *dh = ev->did_hash;
    const uint8_t *h = rk + 8; /* H(uri) */
    rec c;
    int rc = rec_load(r, rk, ev->uri, &c);
    if (rc == 1)
        return refuse(res, "hash_collision");
    TRY(rc);
    if (c.found && rev_cmp(ev->rev, c.rev) <= 0) {
        const char *why = noop_reason(&c, ev->rev);
        rec_free(&c);
        return noop(res, why);
    }
    const char *curi = NULL;
    int active = 1;
    if (ev->op != MDW_OP_DELETE) {
        const cJSON *cu = cJSON_GetObjectItemCaseSensitive(ev->record, "community");
        const cJSON *ac = cJSON_GetObjectItemCaseSensitive(ev->record, "active");
        if (!cJSON_IsString(cu) || strlen(cu->valuestring) > MDW_MAX_URI_BYTES) {
            rec_free(&c);
            return refuse(res, "bad_community");
        }
        curi = cu->valuestring;
        active = !cJSON_IsFalse(ac);
    }
    char *old_curi = c.state == IX_STATE_LIVE ? c.aux1 : NULL;
    if (old_curi) {
        uint8_t k[3 * MDW_IX_H];
        mdw_ix_hash_str(old_curi, k);
        memcpy(k + MDW_IX_H, dh, MDW_IX_H);
        memcpy(k + 2 * MDW_IX_H, h, MDW_IX_H);
        rc = del(r, IX_MEMBERSHIPS, k, sizeof k);
    }
    if (!rc && curi) {
        uint8_t k[3 * MDW_IX_H];
        mdw_ix_hash_str(curi, k);
        memcpy(k + MDW_IX_H, dh, MDW_IX_H);
        memcpy(k + 2 * MDW_IX_H, h, MDW_IX_H);
        mdw_ix_enc_reset(&r->enc);
        mdw_ix_enc_u8(&r->enc, (uint8_t)active);
        mdw_ix_enc_cstr(&r->enc, ev->did);
        mdw_ix_enc_cstr(&r->enc, ev->uri);
        mdw_ix_enc_cstr(&r->enc, curi);
        rc = put_enc(r, IX_MEMBERSHIPS, k, sizeof k);
    }
    if (!rc)
        rc = rec_store(r, rk, ev->uri, &c, IX_KIND_MEMBERSHIP, curi ? IX_STATE_LIVE : IX_STATE_TOMB,
                       ev->time_us, ev->rev, curi, NULL, NULL);
    if (!rc && old_curi)
        rc = reeval_curi_member(r, old_curi, ev->did, dh);
    if (!rc && curi && !str_eq(curi, old_curi))
        rc = reeval_curi_member(r, curi, ev->did, dh);
    rec_free(&c);
    TRY(rc);
    return applied(res, curi ? "membership" : "membership_deleted");
}

static int target_reeval(mdw_rules *r, const char *curi, const char *tkey)
{
    comm c;
    TRY(comm_by_curi(r, curi, &c));
    int rc = 0;
    if (c.found && tkey[0] == 'u') {
        rc = member_reeval(r, &c, tkey + 2, NULL);
    } else if (c.found) {
        uint8_t prk[MDW_IX_RK];
        mdw_ix_rec_key(tkey + 2, prk);
        post p;
        if ((rc = post_load(r, prk, &p)) == 0 && (!p.found || str_eq(p.uri, tkey + 2)))
            rc = post_eval(r, &c, prk, &p, 0);
        post_free(&p);
    }
    comm_free(&c);
    return rc;
}

static int apply_action(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    const uint8_t *h = rk + 8; /* H(uri) */
    char *tkey = NULL;
    const char *curi = NULL;
    int64_t created = 0;
    uint8_t act = 0;
    if (ev->op != MDW_OP_DELETE) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev->record, "action");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->record, "target");
        const cJSON *cu = cJSON_GetObjectItemCaseSensitive(ev->record, "community");
        const cJSON *tu = cJSON_GetObjectItemCaseSensitive(t, "uri");
        const cJSON *td = cJSON_GetObjectItemCaseSensitive(t, "did");
        const char *as = cJSON_IsString(a) ? a->valuestring : "";
        act = !strcmp(as, "hide_post")      ? IX_ACT_HIDE
              : !strcmp(as, "unhide_post")  ? IX_ACT_UNHIDE
              : !strcmp(as, "block_user")   ? IX_ACT_BLOCK
              : !strcmp(as, "unblock_user") ? IX_ACT_UNBLOCK
                                            : 0;
        int post_act = act == IX_ACT_HIDE || act == IX_ACT_UNHIDE;
        if (!act || !cJSON_IsString(cu))
            return refuse(res, "bad_action");
        if (post_act && cJSON_IsString(tu) && strlen(tu->valuestring) <= MDW_MAX_URI_BYTES)
            tkey = xasprintf("p:%s", tu->valuestring);
        else if (!post_act && cJSON_IsString(td) && strlen(td->valuestring) <= MDW_MAX_DID_BYTES)
            tkey = xasprintf("u:%s", td->valuestring);
        else
            return refuse(res, "bad_target");
        if (created_at(ev, &created)) {
            free(tkey);
            return refuse(res, "bad_datetime");
        }
        curi = cu->valuestring;
    }
    rec c;
    int rc = rec_load(r, rk, ev->uri, &c);
    if (rc) {
        free(tkey);
        if (rc == 1)
            return refuse(res, "hash_collision");
        return rc;
    }
    if (c.found && rev_cmp(ev->rev, c.rev) <= 0) {
        const char *why = noop_reason(&c, ev->rev);
        rec_free(&c);
        free(tkey);
        return noop(res, why);
    }
    const char *old_curi = c.state == IX_STATE_LIVE ? c.aux1 : NULL;
    const char *old_tkey = c.state == IX_STATE_LIVE ? c.aux2 : NULL;
    if (old_curi && old_tkey) {
        uint8_t k[3 * MDW_IX_H];
        mdw_ix_hash_str(old_curi, k);
        mdw_ix_hash_str(old_tkey, k + MDW_IX_H);
        memcpy(k + 2 * MDW_IX_H, h, MDW_IX_H);
        rc = del(r, IX_MODERATION, k, sizeof k);
    }
    if (!rc && curi) {
        uint8_t k[3 * MDW_IX_H];
        mdw_ix_hash_str(curi, k);
        mdw_ix_hash_str(tkey, k + MDW_IX_H);
        memcpy(k + 2 * MDW_IX_H, h, MDW_IX_H);
        mdw_ix_enc_reset(&r->enc);
        mdw_ix_enc_i64(&r->enc, created);
        mdw_ix_enc_u8(&r->enc, act);
        mdw_ix_enc_cstr(&r->enc, ev->did);
        mdw_ix_enc_cstr(&r->enc, tkey);
        mdw_ix_enc_cstr(&r->enc, ev->uri);
        mdw_ix_enc_cstr(&r->enc, curi);
        rc = put_enc(r, IX_MODERATION, k, sizeof k);
    }
    if (!rc)
        rc = rec_store(r, rk, ev->uri, &c, IX_KIND_ACTION, curi ? IX_STATE_LIVE : IX_STATE_TOMB,
                       ev->time_us, ev->rev, curi, tkey, NULL);
    if (!rc && old_curi && old_tkey)
        rc = target_reeval(r, old_curi, old_tkey);
    if (!rc && curi && !(str_eq(curi, old_curi) && str_eq(tkey, old_tkey)))
        rc = target_reeval(r, curi, tkey);
    rec_free(&c);
    free(tkey);
    TRY(rc);
    return applied(res, curi ? "moderation" : "moderation_deleted");
}

/* ---- posts ---- */

static int64_t post_sortkey(const mdw_event *ev, int64_t first_seen, int64_t *created)
{
    int64_t sk = first_seen, t;
    *created = 0;
    if (created_at(ev, &t) == 0) {
        *created = t;
        if (t < sk)
            sk = t;
    }
    if (ev->rkey_time_rc == 0 && ev->rkey_time_us < sk)
        sk = ev->rkey_time_us;
    return sk;
}

static int apply_post(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    rec c;
    int rc = rec_load(r, rk, ev->uri, &c);
    if (rc == 1)
        return refuse(res, "hash_collision");
    TRY(rc);
    int64_t seen = ev->time_us > 0 ? ev->time_us : r->now;
    const post *old = &c.p; /* the live post as stored (old->found 0 when none) */
    if (c.found && rev_cmp(ev->rev, c.rev) <= 0) {
        /* Not newer, but first seen is the earliest sighting of any version. */
        const char *why = noop_reason(&c, ev->rev);
        if (seen < c.first_seen) {
            post nw = *old;
            if (old->found && seen < old->sk) {
                /* Its sort key moves earlier: re-placed under the new one. */
                nw.sk = seen;
                if (!(rc = post_unplace(r, rk, old)) && !(rc = post_write(r, rk, old, &nw)))
                    rc = post_place(r, rk, &nw);
            }
            if (!rc)
                rc = rec_store(r, rk, ev->uri, &c, c.kind, c.state, seen, c.rev, NULL, NULL,
                               old->found ? &nw : NULL);
        }
        rec_free(&c);
        TRY(rc);
        return noop(res, why);
    }
    /*
    ** first seen = the earliest time_us of ANY event for this URI (deletes and
    ** earlier generations included): a minimum over a set, so the same
    ** whatever order the events came in.
    */
    int64_t first = c.found && c.first_seen < seen ? c.first_seen : seen;
    const char *why;
    if (ev->op == MDW_OP_DELETE) {
        if (old->found)
            rc = post_remove(r, rk, old);
        if (!rc)
            rc = rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_TOMB, first, ev->rev, NULL,
                           NULL, NULL);
        why = "post_deleted";
    } else {
        post p = {0};
        p.found = 1;
        p.ntags = ev->ntags;
        memcpy(p.tags, ev->tags, sizeof p.tags);
        p.sk = post_sortkey(ev, first, &p.created);
        if (p.ntags == 0 || p.sk < r->cutoff) {
            if (old->found)
                rc = post_remove(r, rk, old);
            if (!rc)
                rc = rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_NONE, first, ev->rev,
                               NULL, NULL, NULL);
            why = p.ntags == 0 ? "post_untagged" : "post_expired";
        } else {
            p.author = (char *)ev->did;
            memcpy(p.ah, ev->did_hash, MDW_IX_H);
            p.uri = ev->uri;
            p.cid = (char *)(ev->cid ? ev->cid : "");
            if (old->found)
                rc = post_unplace(r, rk, old);
            if (!rc)
                rc = post_write(r, rk, old, &p);
            if (!rc)
                rc = post_place(r, rk, &p);
            if (!rc)
                rc = rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_LIVE, first, ev->rev,
                               NULL, NULL, &p);
            why = "post_indexed";
        }
    }
    rec_free(&c);
    TRY(rc);
    return applied(res, why);
}

/* ---- accounts ---- */

static int is_hiding_status(const char *s)
{
    return s && (!strcmp(s, "deactivated") || !strcmp(s, "takendown") || !strcmp(s, "suspended") ||
                 !strcmp(s, "deleted"));
}

static int apply_account(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *dh = ev->did_hash;
    int64_t seq = ev->seq ? ev->seq : ev->time_us;
    int64_t t = ev->time_us > 0 ? ev->time_us : r->now;
    int vis = ev->active || !is_hiding_status(ev->status);
    int found = 0, old_vis = 1;
    int64_t old_seq = 0, old_t = 0;
    MDB_val v;
    int rc = get(r, IX_ACCOUNTS, dh, MDW_IX_H, &v);
    if (rc == 0) {
        mdw_ix_dec d;
        mdw_ix_dec_init(&d, &v);
        old_vis = mdw_ix_dec_u8(&d);
        old_seq = mdw_ix_dec_i64(&d);
        old_t = mdw_ix_dec_i64(&d);
        mdw_ix_dec_str(&d);
        mdw_ix_str ds = mdw_ix_dec_str(&d);
        if (d.err)
            return MDW_ECORRUPT;
        if (!mdw_ix_str_eq(ds, ev->did)) {
            collision("accounts", ev->did, ds);
            return refuse(res, "hash_collision");
        }
        found = 1;
    } else if (rc != MDW_ENOTFOUND) {
        return rc;
    }
    rc = 0;
    if (found && seq <= old_seq)
        return noop(res, seq == old_seq ? "duplicate" : "stale_seq");
    uint8_t ek[8 + MDW_IX_H], tid = IX_EXP_ACCOUNT;
    if (found && old_vis) {
        expiry_key(ek, old_t, dh, MDW_IX_H);
        TRY(del(r, IX_EXPIRY, ek, sizeof ek));
    }
    mdw_ix_enc_reset(&r->enc);
    mdw_ix_enc_u8(&r->enc, (uint8_t)vis);
    mdw_ix_enc_i64(&r->enc, seq);
    mdw_ix_enc_i64(&r->enc, t);
    mdw_ix_enc_cstr(&r->enc, ev->status ? ev->status : (ev->active ? "active" : "inactive"));
    mdw_ix_enc_cstr(&r->enc, ev->did);
    TRY(put_enc(r, IX_ACCOUNTS, dh, MDW_IX_H));
    /* An active account's entry only matters against reordering: it expires with retention. */
    if (vis) {
        expiry_key(ek, t, dh, MDW_IX_H);
        TRY(put(r, IX_EXPIRY, ek, sizeof ek, &tid, 1));
    }
    if (vis != old_vis) {
        size_t n = mdw_authors_list(r->authors, dh, NULL, &r->al, &r->alcap);
        /* (post, tag) pairs: a post with two tags is placed twice, the second time a no-op. */
        for (size_t i = 0; i < n && !rc; i++) {
            const uint8_t *rk = r->al[i].rk;
            post p;
            if ((rc = post_load(r, rk, &p)) == 0 && p.found && str_eq(p.author, ev->did) &&
                (rc = post_unplace(r, rk, &p)) == 0)
                rc = post_place(r, rk, &p);
            post_free(&p);
        }
        TRY(rc);
    }
    return applied(res, vis ? "account_visible" : "account_hidden");
}

/* ---- entry points ---- */

int mdw_rules_apply(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    mdw_event own;
    if (!ev->prepared) {
        own = *ev;
        mdw_event_prepare(&own, r->tagger);
        ev = &own;
    }
    res->outcome = MDW_RULE_SKIPPED;
    res->reason = "other_kind";
    if (ev->kind == MDW_EV_ACCOUNT)
        return apply_account(r, ev, res);
    if (ev->kind != MDW_EV_COMMIT)
        return 0;
    const char *col = ev->collection;
    if (!strcmp(col, "app.bsky.feed.post"))
        return apply_post(r, ev, res);
    if (!strcmp(col, "net.atrarium.community.config"))
        return apply_config(r, ev, res);
    if (!strcmp(col, "net.atrarium.community.membership"))
        return apply_membership(r, ev, res);
    if (!strcmp(col, "net.atrarium.moderation.action"))
        return apply_action(r, ev, res);
    res->reason = strncmp(col, "net.atrarium.", 13) == 0 ? "unknown_atrarium" : "other_collection";
    return 0;
}

int mdw_rules_new(mdw_rules **out, mdw_index *ix, mdw_clock *clock, int64_t retention_us)
{
    mdw_rules *r = xcalloc(1, sizeof *r);
    r->tc = xcalloc(TAGCACHE_SLOTS, sizeof *r->tc);
    r->authors = mdw_authors_new();
    r->mod_targets = mdw_keyset_new(2 * MDW_IX_H);
    r->hidden_accounts = mdw_keyset_new(MDW_IX_H);
    r->members = mdw_keyset_new(2 * MDW_IX_H);
    r->roles = mdw_keyset_new(2 * MDW_IX_H);
    r->cc = xcalloc(CURICACHE_SLOTS, sizeof *r->cc);
    r->ix = ix;
    r->clock = clock ? clock : mdw_clock_real();
    r->retention_us = retention_us;
    int rc = mdw_tagger_new(&r->tagger);
    if (rc) {
        mdw_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mdw_rules_free(mdw_rules *r)
{
    if (!r)
        return;
    cursors_close(r);
    if (r->txn)
        mdb_txn_abort(r->txn);
    mdw_tagger_free(r->tagger);
    mdw_ix_enc_release(&r->enc);
    tagcache_clear(r);
    free(r->tc);
    mdw_authors_free(r->authors);
    mdw_keyset_free(r->mod_targets);
    mdw_keyset_free(r->hidden_accounts);
    mdw_keyset_free(r->members);
    mdw_keyset_free(r->roles);
    curicache_clear(r);
    free(r->cc);
    free(r->al);
    free(r);
}

/* Fills a negative filter with the keys (their first klen bytes) of table t; accounts: hidden ones.
 */
static int filter_build(mdw_rules *r, int t, mdw_keyset *s, size_t klen)
{
    MDB_cursor *cur = NULL;
    TRY(cursor(r, t, &cur));
    MDB_val k, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size >= klen &&
            (t != IX_ACCOUNTS || (v.mv_size && ((const uint8_t *)v.mv_data)[0] == 0)))
            mdw_keyset_add(s, k.mv_data);
    return rc == MDB_NOTFOUND ? 0 : lmdb_rc(rc, "cursor_get");
}

/*
** What the writer keeps in memory (the author index, the negative filters),
** from the tables, once per writer, in its first transaction.
*/
static int authors_build(mdw_rules *r)
{
    TRY(filter_build(r, IX_MODERATION, r->mod_targets, 2 * MDW_IX_H));
    TRY(filter_build(r, IX_ACCOUNTS, r->hidden_accounts, MDW_IX_H));
    TRY(filter_build(r, IX_MEMBERS, r->members, 2 * MDW_IX_H));
    TRY(filter_build(r, IX_ROLES, r->roles, 2 * MDW_IX_H));
    MDB_cursor *cur = NULL;
    TRY(cursor(r, IX_RECORDS, &cur));
    MDB_val k, v;
    int rc;
    size_t posts = 0, bad = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *b = v.mv_data;
        if (k.mv_size != MDW_IX_RK || v.mv_size < 2 || b[0] != IX_KIND_POST ||
            b[1] != IX_STATE_LIVE)
            continue;
        rec c;
        if (rec_decode(&v, NULL, &c)) {
            /* Not fatal here: the record's own events meet the same error, as before. */
            rec_free(&c);
            bad++;
            continue;
        }
        for (size_t i = 0; i < c.p.ntags; i++)
            mdw_authors_add(r->authors, c.p.ah, c.p.tags[i], k.mv_data);
        posts++;
        if (!post_regular(&c.p, k.mv_data)) {
            /* Its expiry entry (written already, or by nothing when the index was format 4). */
            uint8_t ek[POST_EXPIRY_KEY], id = IX_EXP_POST;
            post_expiry_key(ek, c.p.sk, k.mv_data);
            MDB_val ev;
            if ((rc = get(r, IX_EXPIRY, ek, sizeof ek, &ev)) == MDW_ENOTFOUND)
                rc = put(r, IX_EXPIRY, ek, sizeof ek, &id, 1);
            if (rc) {
                rec_free(&c);
                return rc;
            }
        }
        rec_free(&c);
    }
    if (rc != MDB_NOTFOUND)
        return lmdb_rc(rc, "cursor_get");
    if (bad)
        mdw_error("processor", "undecodable post records skipped by the author index", "n=%zu",
                  bad);
    mdw_authors_commit(r->authors); /* what is built is the committed state */
    r->authors_built = 1;
    if (posts)
        mdw_info("processor", "author index built from records",
                 "posts=%zu entries=%zu authors=%zu", posts, mdw_authors_entries(r->authors),
                 mdw_authors_count(r->authors));
    return 0;
}

size_t mdw_rules_author_entries(const mdw_rules *r)
{
    return mdw_authors_entries(r->authors);
}

int mdw_rules_begin(mdw_rules *r)
{
    if (r->ix->readonly)
        return MDW_EDENIED;
    int rc = mdb_txn_begin(r->ix->env, NULL, 0, &r->txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(r->ix->env, 0);
        rc = mdb_txn_begin(r->ix->env, NULL, 0, &r->txn);
    }
    if (rc) {
        r->txn = NULL;
        return lmdb_rc(rc, "txn_begin");
    }
    r->now = mdw_clock_now_us(r->clock);
    r->cutoff = r->retention_us > 0 ? r->now - r->retention_us : INT64_MIN;
    r->tomb_delta = 0;
    r->post_delta = 0;
    r->min_regular_rk = INT64_MAX;
    if (!r->authors_built && (rc = authors_build(r))) {
        mdw_rules_abort(r);
        return rc;
    }
    return 0;
}

void mdw_rules_abort(mdw_rules *r)
{
    cursors_close(r);
    if (r->txn)
        mdb_txn_abort(r->txn);
    r->txn = NULL;
    tagcache_clear(r); /* it may hold what the aborted transaction wrote */
    curicache_clear(r);
    mdw_authors_rollback(r->authors);
}

static int meta_put_u64(mdw_rules *r, const char *name, uint64_t v)
{
    uint8_t b[8];
    mdw_ix_put_be64(b, v);
    return put(r, IX_META, name, strlen(name), b, 8);
}

int mdw_rules_commit(mdw_rules *r, uint64_t last_seq)
{
    int rc = 0;
    if (last_seq)
        rc = meta_put_u64(r, "last_seq", last_seq);
    if (!rc)
        rc = meta_put_u64(r, "retention_us", (uint64_t)r->retention_us);
    if (!rc && r->tomb_delta) {
        MDB_val v;
        uint64_t n = 0;
        if (get(r, IX_META, "tombstones", 10, &v) == 0 && v.mv_size == 8)
            n = mdw_ix_get_be64(v.mv_data);
        rc = meta_put_u64(r, "tombstones", (uint64_t)((int64_t)n + r->tomb_delta));
    }
    if (!rc && r->post_delta) {
        MDB_val v;
        uint64_t n = 0;
        if (get(r, IX_META, "posts", 5, &v) == 0 && v.mv_size == 8)
            n = mdw_ix_get_be64(v.mv_data);
        rc = meta_put_u64(r, "posts", (uint64_t)((int64_t)n + r->post_delta));
    }
    if (!rc && r->min_regular_rk != INT64_MAX) {
        /* Keeps "no regular live post below sweep_from" (absent: 0, nothing is below). */
        MDB_val v;
        if (get(r, IX_META, "sweep_from", 10, &v) == 0 && v.mv_size == 8 &&
            (uint64_t)r->min_regular_rk < mdw_ix_get_be64(v.mv_data))
            rc = meta_put_u64(r, "sweep_from", (uint64_t)r->min_regular_rk);
    }
    if (rc) {
        mdw_rules_abort(r);
        return rc;
    }
    cursors_close(r);
    rc = mdb_txn_commit(r->txn);
    r->txn = NULL;
    if (rc) { /* LMDB aborted it: what this writer remembers of it goes too */
        tagcache_clear(r);
        curicache_clear(r);
        mdw_authors_rollback(r->authors);
        return lmdb_rc(rc, "commit");
    }
    mdw_authors_commit(r->authors);
    return 0;
}

int mdw_rules_sweep(mdw_rules *r, uint64_t *nposts, uint64_t *nrecords)
{
    *nposts = *nrecords = 0;
    if (r->cutoff == INT64_MIN)
        return 0;
    /*
    ** Regular posts (see post_regular): records from sweep_from up to
    ** cutoff + slack, in rkey time order; sweep_from then moves to the
    ** lowest rkey time of a regular live post left in that range (or the
    ** bound). Irregular ones have expiry entries, swept below.
    */
    kvlist old = {0};
    uint64_t from = 0;
    MDB_val mv;
    if (get(r, IX_META, "sweep_from", 10, &mv) == 0 && mv.mv_size == 8)
        from = mdw_ix_get_be64(mv.mv_data);
    int64_t bound = r->cutoff < 0 ? 0 : r->cutoff + SWEEP_SLACK_US, kept = bound;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, DBI(IX_RECORDS), &cur);
    if (rc)
        return lmdb_rc(rc, "cursor");
    uint8_t seek[MDW_IX_RK] = {0};
    mdw_ix_put_be64(seek, from);
    MDB_val k = {sizeof seek, seek}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != MDW_IX_RK)
            continue;
        int64_t t = (int64_t)mdw_ix_get_be64(k.mv_data);
        if (t >= bound)
            break;
        const uint8_t *b = v.mv_data;
        rec c;
        if (v.mv_size < 2 || b[0] != IX_KIND_POST || b[1] != IX_STATE_LIVE ||
            rec_decode(&v, NULL, &c))
            continue;
        if (c.p.sk < r->cutoff) {
            if (old.n == old.cap) {
                old.cap = old.cap ? old.cap * 2 : 64;
                old.a = xrealloc(old.a, old.cap * sizeof *old.a);
            }
            old.a[old.n].k = xmemdup(k.mv_data, MDW_IX_RK);
            old.a[old.n].kn = MDW_IX_RK;
            old.a[old.n++].v = NULL;
        } else if (post_regular(&c.p, k.mv_data) && t < kept) {
            kept = t;
        }
        rec_free(&c);
    }
    mdb_cursor_close(cur);
    /*
    ** A failed step is not the end of the range: sweep_from would move past
    ** posts never looked at, and no later sweep would remove them.
    */
    if (rc && rc != MDB_NOTFOUND) {
        kvlist_free(&old);
        return lmdb_rc(rc, "cursor_get");
    }
    rc = 0;
    for (size_t i = 0; i < old.n && !rc; i++) {
        post p;
        if ((rc = post_load(r, old.a[i].k, &p)) == 0 && p.found) {
            rc = post_remove(r, old.a[i].k, &p);
            if (!rc)
                rc = del(r, IX_RECORDS, old.a[i].k, MDW_IX_RK);
            r->post_delta--;
            (*nposts)++;
        }
        post_free(&p);
    }
    kvlist_free(&old);
    TRY(rc);
    if ((uint64_t)kept != from)
        TRY(meta_put_u64(r, "sweep_from", (uint64_t)kept));
    /* Tombstones, unseen-post revs, irregular posts, active-account entries past the cutoff. */
    uint64_t cut = mdw_ix_sk_enc(r->cutoff);
    kvlist ex = {0};
    if ((rc = mdb_cursor_open(r->txn, DBI(IX_EXPIRY), &cur)))
        return lmdb_rc(rc, "cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && k.mv_size > 8 && mdw_ix_get_be64(k.mv_data) < cut;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (ex.n == ex.cap) {
            ex.cap = ex.cap ? ex.cap * 2 : 64;
            ex.a = xrealloc(ex.a, ex.cap * sizeof *ex.a);
        }
        ex.a[ex.n].k = xmemdup(k.mv_data, k.mv_size);
        ex.a[ex.n].kn = k.mv_size;
        ex.a[ex.n].v = xmemdup(v.mv_data, v.mv_size ? v.mv_size : 1);
        ex.a[ex.n++].vn = v.mv_size;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) {
        kvlist_free(&ex);
        return lmdb_rc(rc, "cursor_get");
    }
    rc = 0;
    for (size_t i = 0; i < ex.n && !rc; i++) {
        const uint8_t *h = ex.a[i].k + 8;
        int64_t t = mdw_ix_sk_dec(mdw_ix_get_be64(ex.a[i].k));
        uint8_t which = ex.a[i].vn ? ex.a[i].v[0] : 0;
        MDB_val val;
        size_t hn = ex.a[i].kn - 8;
        if (which == IX_EXP_RECORD && hn == MDW_IX_RK && get(r, IX_RECORDS, h, hn, &val) == 0) {
            mdw_ix_dec d;
            mdw_ix_dec_init(&d, &val);
            mdw_ix_dec_u8(&d);
            uint8_t state = mdw_ix_dec_u8(&d);
            int64_t first = mdw_ix_dec_i64(&d);
            mdw_ix_str rev = mdw_ix_dec_str(&d);
            char rv[MDW_MAX_REV_BYTES + 1] = "";
            if (!d.err && rev.n <= MDW_MAX_REV_BYTES)
                memcpy(rv, rev.p, rev.n);
            if (!d.err && state != IX_STATE_LIVE && exp_time(rv, first) == t) {
                if (state == IX_STATE_TOMB)
                    r->tomb_delta--;
                rc = del(r, IX_RECORDS, h, MDW_IX_RK);
                (*nrecords)++;
            }
        } else if (which == IX_EXP_POST && hn == MDW_IX_RK + 1) {
            post p;
            if ((rc = post_load(r, h, &p)) == 0 && p.found && p.sk == t) {
                rc = post_remove(r, h, &p); /* its expiry entry included */
                if (!rc)
                    rc = del(r, IX_RECORDS, h, MDW_IX_RK);
                r->post_delta--;
                (*nposts)++;
            }
            post_free(&p);
        } else if (which == IX_EXP_ACCOUNT && hn == MDW_IX_H &&
                   get(r, IX_ACCOUNTS, h, MDW_IX_H, &val) == 0) {
            mdw_ix_dec d;
            mdw_ix_dec_init(&d, &val);
            uint8_t vis = mdw_ix_dec_u8(&d);
            mdw_ix_dec_i64(&d);
            int64_t at = mdw_ix_dec_i64(&d);
            if (!d.err && vis && at == t)
                rc = del(r, IX_ACCOUNTS, h, MDW_IX_H);
        }
        if (!rc)
            rc = del(r, IX_EXPIRY, ex.a[i].k, ex.a[i].kn);
    }
    kvlist_free(&ex);
    return rc;
}

int mdw_index_last_seq(mdw_index *ix, uint64_t *seq)
{
    *seq = 0;
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    MDB_val k = {8, (void *)"last_seq"}, v;
    if (mdb_get(txn, ix->dbi[IX_META], &k, &v) == 0 && v.mv_size == 8)
        *seq = mdw_ix_get_be64(v.mv_data);
    mdw_ix_rtxn_end(ix, txn);
    return 0;
}
