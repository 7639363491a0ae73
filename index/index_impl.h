/*
** index/index_impl.h — the index's LMDB layout, shared by the index/ sources (open,
** reads, dump) and the processor's rule engine (processor/rules.c), which is
** the only writer. Not for feedgen: feedgen uses index/index.h only.
**
** Every key that would hold a URI or DID holds H(x) instead: the first 16
** bytes of SHA-256(x) (MDW_IX_H). LMDB keys are at most 511 bytes while DIDs
** may be 2 KB and record keys 512 characters. The full string is kept in the
** value and compared on every read that relies on it; a write that would put
** a second string under an existing hash is refused and counted
** (mdw_ix_collisions), never merged. SHA-256 rather than a fast hash because
** keys come from strangers: a crafted collision must not be feasible.
**
** Tables (docs/index.md has the same list with reasons):
**   meta          "format" u32, "last_seq" u64, "retention_us" i64
**   records       RK(uri) -> rec: kind, state (live/tomb/none), rev, first seen, uri, aux;
**                 a live post adds sortkey, createdAt, tags, cid (its author is in the uri)
**   (posts by author: in the writer's memory, processor/authors.h; format 3 had author_posts)
**   (posts by age: the retention sweep walks records in key order, see processor/rules.c;
**    format 4 had tag_posts)
**   configs       H(uri) -> effective version of a config record
**   config_vers   H(uri) | rev16 -> owner, uri, rev, record JSON (every version seen)
**   owner_configs H(owner) | tag4 | H(uri) -> createdAt, uri (winner selection)
**   communities   H(owner|tag) -> tag, owner, winning config uri, config JSON
**   by_tag        tag4 | H(comm) -> ""                      (open communities of a tag)
**   roles         H(comm) | H(did) -> flags (moderator, blocklisted), did
**   memberships   H(config uri) | H(did) | H(uri) -> active, did, uri, config uri
**   moderation    H(config uri) | H(target) | H(uri) -> createdAt, action, author, target, uri
**   accounts      H(did) -> active, seq, status, did
**   members       H(comm) | H(did) -> did                   (derived: current members)
**   feed          H(comm) | sortkey_be | H(uri) -> uri      (derived: visible posts)
**   expiry        time_be | RK(uri) or H(did) -> table id   (tombstones, unseen-post revs,
**                 live posts whose sort key is far below their rkey time)
**
** RK(uri), the records key (MDW_IX_RK bytes), is the time of the URI's
** record key when that is a TID (big-endian µs; 0 otherwise), then H(uri).
** Record keys of new records are TIDs of about now, so the records written
** by a batch land on a few pages at the right edge of the table instead of
** one random page each (most of the writer's cost was copying and writing
** those pages: docs/index.md, "Records key").
*/
#ifndef MDW_INDEX_IMPL_H
#define MDW_INDEX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <pthread.h>

#include "common/buf.h"
#include "common/clock.h"
#include "index/index.h"

#define MDW_IX_H   16             /* hashed key bytes */
#define MDW_IX_TAG 4              /* hashtag id: 8 hex digits as 4 bytes */
#define MDW_IX_RK  (8 + MDW_IX_H) /* records key: rkey TID time, H(uri) */
/* bump on any layout change (2: post_refs dropped; 3: records keyed by RK, posts folded in) */
#define MDW_IX_FORMAT            5
#define MDW_IX_FORMAT_UPGRADABLE 3  /* formats 3 and 4: upgraded in place by dropping tables */
#define MDW_IX_MAX_POST_TAGS     16 /* distinct community tags looked at per post */
#define MDW_IX_REV_KEY           16 /* rev (TID, 13 chars) zero-padded in config_vers keys */

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

extern const char *const mdw_ix_table_names[IX_NTABLES];

#define IX_RPOOL_MAX  16
#define IX_CCACHE     64  /* community lookups remembered per snapshot */
#define IX_CCACHE_DID 128 /* owner DIDs at most this long (NUL included) are cached */

/*
** A feed read's community lookup (hash of owner and tag, communities table,
** retention in meta), remembered for the snapshot it was made in: an entry
** is used only by a read transaction with the same txnid, i.e. when nothing
** was committed since, so it can never answer differently than the tables.
*/
typedef struct ix_ccache_slot {
    uint64_t txnid; /* 0 = empty */
    uint8_t tag[MDW_IX_TAG];
    uint8_t ck[MDW_IX_H];
    int rc; /* 0 or MDW_ENOTFOUND */
    int64_t retention;
    char owner[IX_CCACHE_DID];
} ix_ccache_slot;

struct mdw_index {
    MDB_env *env;
    MDB_dbi dbi[IX_NTABLES];
    int readonly;
    mdw_clock *clock;
    char *dir;
    /*
    ** Reset read transactions kept for reuse: with MDB_NOTLS every
    ** mdb_txn_begin takes a reader slot under the lock file's mutex and every
    ** abort gives it back; a reset transaction keeps its slot (pinning no
    ** pages), and renewing it is a few loads. Measured: a feed page's LMDB
    ** time halved under wrk with two server threads (docs/index.md).
    */
    pthread_mutex_t rpool_mu;
    MDB_txn *rpool[IX_RPOOL_MAX];
    int rpool_n;
    pthread_mutex_t cc_mu;
    ix_ccache_slot cc[IX_CCACHE];
};

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

/* Hash collisions refused since start (process-wide; also a metric). */
extern _Atomic uint64_t mdw_ix_collisions;

void mdw_ix_hash(const void *p, size_t n, uint8_t out[MDW_IX_H]);
/* H(a ‖ b), without building the concatenation. */
void mdw_ix_hash2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[MDW_IX_H]);
/* RK(uri): the records key (see the top of this file). out + 8 is H(uri). */
void mdw_ix_rec_key(const char *uri, uint8_t out[MDW_IX_RK]);
static inline void mdw_ix_hash_str(const char *s, uint8_t out[MDW_IX_H]);
/* Community key: H(owner DID "\n" hashtag id text). */
void mdw_ix_comm_key(const char *owner, const uint8_t tag[MDW_IX_TAG], uint8_t out[MDW_IX_H]);
/* "0123abcd" <-> 4 bytes. parse: 0 or MDW_EMALFORMED (lowercase hex only). */
int mdw_ix_tag_parse(const char *hex8, size_t len, uint8_t out[MDW_IX_TAG]);
void mdw_ix_tag_format(const uint8_t tag[MDW_IX_TAG], char out[9]);

void mdw_ix_put_be64(uint8_t *p, uint64_t v);
uint64_t mdw_ix_get_be64(const uint8_t *p);
/* Sort keys are µs since the epoch; stored big-endian with the sign bit flipped. */
static inline uint64_t mdw_ix_sk_enc(int64_t sk)
{
    return (uint64_t)sk ^ 0x8000000000000000ull;
}
static inline int64_t mdw_ix_sk_dec(uint64_t v)
{
    return (int64_t)(v ^ 0x8000000000000000ull);
}

static inline void mdw_ix_hash_str(const char *s, uint8_t out[MDW_IX_H])
{
    size_t n = 0;
    while (s[n])
        n++;
    mdw_ix_hash(s, n, out);
}

/*
** Value codec: a flat sequence of fields. Strings are u32 length + bytes
** (no NUL stored); the decoder hands back pointers into the LMDB value, valid
** until the transaction ends. A short or malformed value sets dec.err.
*/
typedef struct mdw_ix_enc {
    uint8_t *p;
    size_t len, cap;
} mdw_ix_enc;

void mdw_ix_enc_reset(mdw_ix_enc *e);
void mdw_ix_enc_release(mdw_ix_enc *e);
void mdw_ix_enc_u8(mdw_ix_enc *e, uint8_t v);
void mdw_ix_enc_i64(mdw_ix_enc *e, int64_t v);
void mdw_ix_enc_bytes(mdw_ix_enc *e, const void *p, size_t n);
void mdw_ix_enc_str(mdw_ix_enc *e, const char *s, size_t n);
static inline void mdw_ix_enc_cstr(mdw_ix_enc *e, const char *s)
{
    size_t n = 0;
    while (s && s[n])
        n++;
    mdw_ix_enc_str(e, s ? s : "", n);
}

typedef struct mdw_ix_dec {
    const uint8_t *p, *end;
    int err;
} mdw_ix_dec;

typedef struct mdw_ix_str {
    const char *p;
    size_t n;
} mdw_ix_str;

void mdw_ix_dec_init(mdw_ix_dec *d, const MDB_val *v);
uint8_t mdw_ix_dec_u8(mdw_ix_dec *d);
int64_t mdw_ix_dec_i64(mdw_ix_dec *d);
const uint8_t *mdw_ix_dec_bytes(mdw_ix_dec *d, size_t n);
mdw_ix_str mdw_ix_dec_str(mdw_ix_dec *d);
/* 1 when the decoded string equals the C string s. */
int mdw_ix_str_eq(mdw_ix_str a, const char *s);
/* Malloc'd NUL-terminated copy. */
char *mdw_ix_str_dup(mdw_ix_str a);

/* Base64url (no padding) of the 24-byte position. out >= MDW_INDEX_CURSOR_MAX. */
void mdw_ix_cursor_encode(int64_t sortkey, const uint8_t urih[MDW_IX_H], char *out);
int mdw_ix_cursor_decode(const char *s, int64_t *sortkey, uint8_t urih[MDW_IX_H]);

/* Read-only txn that survives another process growing the map (MDB_MAP_RESIZED). */
int mdw_ix_rtxn(mdw_index *ix, MDB_txn **txn);
/* Ends a read transaction from mdw_ix_rtxn (reset and pooled, or aborted). */
void mdw_ix_rtxn_end(mdw_index *ix, MDB_txn *txn);

/* TID (13 chars base32-sortable) -> its timestamp in µs; 0 or MDW_EMALFORMED. */
int mdw_ix_tid_time(const char *tid, size_t n, int64_t *us);

#endif
