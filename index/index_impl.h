/*
** index/index_impl.h — the index's private parts, shared by the index/
** sources only: the environment handle, the low-level value codec the row
** codecs (index/layout.c) are written with, cursors and pooled read
** transactions. The layout itself (tables, keys, rows) and the write half
** are in index/index_write.h; feedgen uses index/index.h only.
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
#include "index/index_write.h"

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

/*
** Value codec: a flat sequence of fields. Strings are u32 length + bytes
** (no NUL stored); the decoder hands back pointers into the LMDB value, valid
** until the transaction ends. A short or malformed value sets dec.err.
*/
struct mdw_ix_enc {
    uint8_t *p;
    size_t len, cap;
};

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

void mdw_ix_dec_init(mdw_ix_dec *d, const MDB_val *v);
uint8_t mdw_ix_dec_u8(mdw_ix_dec *d);
int64_t mdw_ix_dec_i64(mdw_ix_dec *d);
const uint8_t *mdw_ix_dec_bytes(mdw_ix_dec *d, size_t n);
mdw_ix_str mdw_ix_dec_str(mdw_ix_dec *d);

/* Base64url (no padding) of the 24-byte position. out >= MDW_INDEX_CURSOR_MAX. */
void mdw_ix_cursor_encode(int64_t sortkey, const uint8_t urih[MDW_IX_H], char *out);
int mdw_ix_cursor_decode(const char *s, int64_t *sortkey, uint8_t urih[MDW_IX_H]);

/* Read-only txn that survives another process growing the map (MDB_MAP_RESIZED). */
int mdw_ix_rtxn(mdw_index *ix, MDB_txn **txn);
/* Ends a read transaction from mdw_ix_rtxn (reset and pooled, or aborted). */
void mdw_ix_rtxn_end(mdw_index *ix, MDB_txn *txn);

#endif
