/*
** index/index_write.h — the index's on-disk layout and its write half.
**
** index/ owns the layout: each table has one typed row struct with one
** encode and one decode (index/layout.c), key builders for its key shape,
** and a descriptor (mdw_ix_tables) that docs/index.md's table is checked
** against (test_index layout_table_matches_docs). The processor's rules
** (processor/rules*.c, the only writer), `index dump` (index/dump.c) and the
** reads (index/index.c) all go through these; nobody else sequences fields.
**
** Every key that would hold a URI or DID holds H(x) instead: the first 16
** bytes of SHA-256(x) (MDW_IX_H). LMDB keys are at most 511 bytes while DIDs
** may be 2 KB and record keys 512 characters. The full string is kept in the
** row and compared on every read that relies on it; a write that would put a
** second string under an existing hash is refused and counted
** (mdw_ix_collisions), never merged. SHA-256 rather than a fast hash because
** keys come from strangers: a crafted collision must not be feasible.
**
** Rows hand back strings as (pointer, length) into the LMDB value: valid
** until the transaction writes again or ends. Copy what must outlive that.
**
** The write half (mdw_ixw) is one LMDB write transaction at a time with a
** typed get / put per table, del, prefix collection and ordered walks. It
** logs an LMDB failure once, where it happens, with the operation and table
** (except a full map, which the processor reports with its remedy).
*/
#ifndef MDW_INDEX_WRITE_H
#define MDW_INDEX_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "index/index.h"

#define MDW_IX_H   16             /* hashed key bytes */
#define MDW_IX_TAG 4              /* hashtag id: 8 hex digits as 4 bytes */
#define MDW_IX_RK  (8 + MDW_IX_H) /* records key: rkey TID time, H(uri) */
/* bump on any layout change (2: post_refs dropped; 3: records keyed by RK, posts folded in) */
#define MDW_IX_FORMAT            5
#define MDW_IX_FORMAT_UPGRADABLE 3  /* formats 3 and 4: upgraded in place by dropping tables */
#define MDW_IX_MAX_POST_TAGS     16 /* distinct community tags looked at per post */
#define MDW_IX_REV_KEY           16 /* rev (TID, 13 chars) zero-padded in config_vers keys */

/* Key lengths of the fixed-shape keys. */
#define MDW_IX_KEY_CONFIG_VER   (MDW_IX_H + MDW_IX_REV_KEY)
#define MDW_IX_KEY_OWNER_CONFIG (MDW_IX_H + MDW_IX_TAG + MDW_IX_H)
#define MDW_IX_KEY_BY_TAG       (MDW_IX_TAG + MDW_IX_H)
#define MDW_IX_KEY_PAIR         (2 * MDW_IX_H) /* roles, members: H(comm) | H(did) */
#define MDW_IX_KEY_TRIPLE       (3 * MDW_IX_H) /* memberships, moderation */
#define MDW_IX_KEY_FEED         (MDW_IX_H + 8 + MDW_IX_H)
#define MDW_IX_KEY_EXP_RECORD   (8 + MDW_IX_RK)
#define MDW_IX_KEY_EXP_POST     (8 + MDW_IX_RK + 1) /* time | RK | 'p' */
#define MDW_IX_KEY_EXP_ACCOUNT  (8 + MDW_IX_H)

/* Tables, in the order of mdw_ix_tables. */
enum {
    IX_META,
    IX_RECORDS,
    IX_CONFIGS,
    IX_CONFIG_VERS,
    IX_OWNER_CONFIGS,
    IX_COMMUNITIES,
    IX_BY_TAG,
    IX_ROLES,
    IX_MEMBERSHIPS,
    IX_MODERATION,
    IX_ACCOUNTS,
    IX_MEMBERS,
    IX_FEED,
    IX_EXPIRY,
    IX_NTABLES
};

/*
** A table as docs/index.md's table describes it, cell for cell: name, key
** shape, row fields, their encoding and kind; and the key length when fixed
** (0: several shapes). Encoding tokens, in order: u8, i64 / u64 (8 bytes
** big-endian), tag (4 bytes), str (u32 big-endian length, bytes), tags (u8
** count n, n tags), "-" (empty); "; " starts what only a live post adds.
** test_index checks the doc against these, each row codec's bytes against
** enc and each key builder against key_len.
*/
typedef struct mdw_ix_table_desc {
    const char *name, *key, *value, *enc, *kind;
    size_t key_len;
} mdw_ix_table_desc;
extern const mdw_ix_table_desc mdw_ix_tables[IX_NTABLES];

/* records.kind */
enum { IX_KIND_POST = 1, IX_KIND_CONFIG = 2, IX_KIND_MEMBERSHIP = 3, IX_KIND_ACTION = 4 };
/* records.state */
enum { IX_STATE_LIVE = 1, IX_STATE_TOMB = 2, IX_STATE_NONE = 3 };
/* roles flags */
enum { IX_ROLE_MOD = 1, IX_ROLE_BLOCKLIST = 2 };
/* moderation actions */
enum { IX_ACT_HIDE = 1, IX_ACT_UNHIDE = 2, IX_ACT_BLOCK = 3, IX_ACT_UNBLOCK = 4 };
/* expiry table ids */
enum { IX_EXP_RECORD = 1, IX_EXP_ACCOUNT = 2, IX_EXP_POST = 3 };

/* meta keys (u64 values) */
#define MDW_IX_META_FORMAT     "format"
#define MDW_IX_META_LAST_SEQ   "last_seq"
#define MDW_IX_META_RETENTION  "retention_us"
#define MDW_IX_META_TOMBSTONES "tombstones"
#define MDW_IX_META_POSTS      "posts"
#define MDW_IX_META_SWEEP_FROM "sweep_from"

/* Hash collisions refused since start (process-wide; also a metric). */
extern _Atomic uint64_t mdw_ix_collisions;

/* ---- keys ---- */

void mdw_ix_hash(const void *p, size_t n, uint8_t out[MDW_IX_H]);
/* H(a ‖ b), without building the concatenation. */
void mdw_ix_hash2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[MDW_IX_H]);
void mdw_ix_hash_str(const char *s, uint8_t out[MDW_IX_H]);
/* RK(uri): the records key: the rkey's TID time (big-endian µs; 0 when not a TID), then H(uri). */
void mdw_ix_rec_key(const char *uri, uint8_t out[MDW_IX_RK]);
/* Community key: H(owner DID "\n" hashtag id text). */
void mdw_ix_comm_key(const char *owner, const uint8_t tag[MDW_IX_TAG], uint8_t out[MDW_IX_H]);
/* 4 bytes -> "0123abcd" (the parser is common/atname.h's mdw_tag_id_parse). */
void mdw_ix_tag_format(const uint8_t tag[MDW_IX_TAG], char out[9]);

void mdw_ix_put_be64(uint8_t *p, uint64_t v);
uint64_t mdw_ix_get_be64(const uint8_t *p);
/* Sort keys and expiry times are µs since the epoch, stored big-endian with the sign bit flipped.
 */
static inline uint64_t mdw_ix_sk_enc(int64_t sk)
{
    return (uint64_t)sk ^ 0x8000000000000000ull;
}
static inline int64_t mdw_ix_sk_dec(uint64_t v)
{
    return (int64_t)(v ^ 0x8000000000000000ull);
}

/* config_vers: H(uri) | rev zero-padded to MDW_IX_REV_KEY. */
void mdw_ix_key_config_ver(uint8_t out[MDW_IX_KEY_CONFIG_VER], const uint8_t h[MDW_IX_H],
                           const char *rev);
/* owner_configs: H(owner) | tag | H(uri). */
void mdw_ix_key_owner_config(uint8_t out[MDW_IX_KEY_OWNER_CONFIG], const char *owner,
                             const uint8_t tag[MDW_IX_TAG], const uint8_t h[MDW_IX_H]);
/* by_tag: tag | H(community). */
void mdw_ix_key_by_tag(uint8_t out[MDW_IX_KEY_BY_TAG], const uint8_t tag[MDW_IX_TAG],
                       const uint8_t ck[MDW_IX_H]);
/* roles, members: H(community) | H(did). */
void mdw_ix_key_pair(uint8_t out[MDW_IX_KEY_PAIR], const uint8_t a[MDW_IX_H],
                     const uint8_t b[MDW_IX_H]);
/* memberships: H(config uri) | H(did) | H(uri); moderation: H(config uri) | H(target) | H(uri). */
void mdw_ix_key_triple(uint8_t out[MDW_IX_KEY_TRIPLE], const uint8_t a[MDW_IX_H],
                       const uint8_t b[MDW_IX_H], const uint8_t c[MDW_IX_H]);
/* feed: H(community) | sort key | H(uri). */
void mdw_ix_key_feed(uint8_t out[MDW_IX_KEY_FEED], const uint8_t ck[MDW_IX_H], int64_t sk,
                     const uint8_t h[MDW_IX_H]);
/* expiry: time | id (RK for records, H(did) for accounts); posts: time | RK | 'p'. */
void mdw_ix_key_expiry(uint8_t *out, int64_t t, const uint8_t *id, size_t idn);
void mdw_ix_key_expiry_post(uint8_t out[MDW_IX_KEY_EXP_POST], int64_t sk,
                            const uint8_t rk[MDW_IX_RK]);

/* ---- rows: one struct, one encode, one decode per table ---- */

typedef struct mdw_ix_str {
    const char *p;
    size_t n;
} mdw_ix_str;

/* The C string s as a row string (NULL -> ""). */
mdw_ix_str mdw_ix_s(const char *s);
/* 1 when the row string equals the C string s. */
int mdw_ix_str_eq(mdw_ix_str a, const char *s);
/* Malloc'd NUL-terminated copy. */
char *mdw_ix_str_dup(mdw_ix_str a);

/* Encoders append to a growing buffer (index/index_impl.h); decoders return 0 or MDW_ECORRUPT. */
typedef struct mdw_ix_enc mdw_ix_enc;

typedef struct mdw_ix_meta {
    uint64_t value;
} mdw_ix_meta;

/* records: RK(uri). A live post (kind post, state live) adds sortkey .. cid. */
typedef struct mdw_ix_record {
    uint8_t kind, state;
    int64_t first_seen;
    mdw_ix_str rev, uri, aux1, aux2;
    int64_t sortkey, created;
    uint8_t ntags;
    const uint8_t *tags; /* ntags * MDW_IX_TAG bytes */
    mdw_ix_str cid;
} mdw_ix_record;
static inline int mdw_ix_record_is_post(const mdw_ix_record *r)
{
    return r->kind == IX_KIND_POST && r->state == IX_STATE_LIVE;
}

/* configs (the effective version) and config_vers (every version seen): the same row. */
typedef struct mdw_ix_config {
    uint8_t tag[MDW_IX_TAG];
    int64_t created;
    mdw_ix_str owner, uri, rev, json;
} mdw_ix_config;

typedef struct mdw_ix_owner_config {
    int64_t created;
    mdw_ix_str uri, owner;
} mdw_ix_owner_config;

typedef struct mdw_ix_community {
    uint8_t tag[MDW_IX_TAG];
    mdw_ix_str owner, config, json; /* config: the winning config's URI, json its record */
} mdw_ix_community;

typedef struct mdw_ix_by_tag {
    char none; /* the key says it all */
} mdw_ix_by_tag;

typedef struct mdw_ix_role {
    uint8_t flags; /* IX_ROLE_* */
    mdw_ix_str did;
} mdw_ix_role;

typedef struct mdw_ix_membership {
    uint8_t active;
    mdw_ix_str did, uri, config;
} mdw_ix_membership;

typedef struct mdw_ix_moderation {
    int64_t created;
    uint8_t action;                         /* IX_ACT_* */
    mdw_ix_str author, target, uri, config; /* target: "p:<post uri>" or "u:<did>" */
} mdw_ix_moderation;

typedef struct mdw_ix_account {
    uint8_t visible;
    int64_t seq, time;
    mdw_ix_str status, did;
} mdw_ix_account;

typedef struct mdw_ix_member {
    mdw_ix_str did;
} mdw_ix_member;

typedef struct mdw_ix_feed {
    mdw_ix_str uri;
} mdw_ix_feed;

typedef struct mdw_ix_expiry {
    uint8_t which; /* IX_EXP_* */
} mdw_ix_expiry;

#define MDW_IX_CODEC(name)                                                                         \
    void mdw_ix_##name##_enc(const mdw_ix_##name *row, mdw_ix_enc *e);                             \
    int mdw_ix_##name##_dec(const void *p, size_t n, mdw_ix_##name *row);
MDW_IX_CODEC(meta)
MDW_IX_CODEC(record)
MDW_IX_CODEC(config)
MDW_IX_CODEC(owner_config)
MDW_IX_CODEC(community)
MDW_IX_CODEC(by_tag)
MDW_IX_CODEC(role)
MDW_IX_CODEC(membership)
MDW_IX_CODEC(moderation)
MDW_IX_CODEC(account)
MDW_IX_CODEC(member)
MDW_IX_CODEC(feed)
MDW_IX_CODEC(expiry)
#undef MDW_IX_CODEC

/* ---- the write half ---- */

typedef struct mdw_ixw mdw_ixw;

mdw_ixw *mdw_ixw_new(mdw_index *ix);
void mdw_ixw_free(mdw_ixw *w); /* aborts an open transaction */
/* Opens the write transaction (adopting a map another process grew). MDW_EDENIED: read-only. */
int mdw_ixw_begin(mdw_ixw *w);
int mdw_ixw_commit(mdw_ixw *w);
void mdw_ixw_abort(mdw_ixw *w);

/*
** Typed access, table by table: get = 0 with *row filled, MDW_ENOTFOUND,
** MDW_ECORRUPT (logged) or an LMDB error; put replaces.
*/
#define MDW_IXW_ROW(op, row)                                                                       \
    int mdw_ixw_get_##op(mdw_ixw *w, const void *k, size_t kn, mdw_ix_##row *out);                 \
    int mdw_ixw_put_##op(mdw_ixw *w, const void *k, size_t kn, const mdw_ix_##row *in);
MDW_IXW_ROW(record, record)
MDW_IXW_ROW(config, config)
MDW_IXW_ROW(config_ver, config)
MDW_IXW_ROW(owner_config, owner_config)
MDW_IXW_ROW(community, community)
MDW_IXW_ROW(by_tag, by_tag)
MDW_IXW_ROW(role, role)
MDW_IXW_ROW(membership, membership)
MDW_IXW_ROW(moderation, moderation)
MDW_IXW_ROW(account, account)
MDW_IXW_ROW(member, member)
MDW_IXW_ROW(feed, feed)
MDW_IXW_ROW(expiry, expiry)
#undef MDW_IXW_ROW
/* meta: by name (MDW_IX_META_*). */
int mdw_ixw_get_meta(mdw_ixw *w, const char *name, uint64_t *v);
int mdw_ixw_put_meta(mdw_ixw *w, const char *name, uint64_t v);

/* Deletes key k of table t; absent is not an error. */
int mdw_ixw_del(mdw_ixw *w, int t, const void *k, size_t kn);
/* 1 when table t has key k, 0 when not, or an error. */
int mdw_ixw_has(mdw_ixw *w, int t, const void *k, size_t kn);

/* Owned copies of (key, value) pairs: safe to keep across writes. */
typedef struct mdw_ix_kv {
    uint8_t *k, *v;
    size_t kn, vn;
} mdw_ix_kv;
typedef struct mdw_ix_kvlist {
    mdw_ix_kv *a;
    size_t n, cap;
} mdw_ix_kvlist;
void mdw_ix_kvlist_free(mdw_ix_kvlist *l);
/* Appends a copy of (k, v) (v NULL: key only). */
void mdw_ix_kvlist_add(mdw_ix_kvlist *l, const void *k, size_t kn, const void *v, size_t vn);

/* Every (key, value) of table t whose key starts with prefix, in key order (values when with_v). */
int mdw_ixw_collect(mdw_ixw *w, int t, const void *prefix, size_t plen, int with_v,
                    mdw_ix_kvlist *out);
/* Deletes every key of table t that starts with prefix. */
int mdw_ixw_del_prefix(mdw_ixw *w, int t, const void *prefix, size_t plen);

/*
** Visits table t in key order from the first key >= from (from NULL: the
** first key). fn returns 0 to go on, 1 to stop (walk returns 0), or a
** negative code (returned). The pointers are LMDB's: fn must not write to
** the same table. A failed cursor step is returned, never taken for the end.
*/
typedef int (*mdw_ixw_visit_fn)(void *ctx, const uint8_t *k, size_t kn, const uint8_t *v,
                                size_t vn);
int mdw_ixw_walk(mdw_ixw *w, int t, const void *from, size_t fromn, mdw_ixw_visit_fn fn, void *ctx);

/* The last applied queue seq stored in the index (0 when none). A read. */
int mdw_index_last_seq(mdw_index *ix, uint64_t *seq);

#endif
