/*
** index/index.h — the feed index (LMDB environment <data>/index).
**
** Written only by the processor (processor/), read by feedgen in read-only
** transactions (no locks between them; other processes may read while the
** processor writes). This header is the CONTRACT between the two: the read
** API below is what feedgen uses. The write half, with the on-disk layout
** (tables, keys, one typed row codec per table), is index/index_write.h;
** the processor's rules (processor/rules*.c) are its only user.
**
** Communities are keyed by (owner DID, hashtag id), the id being the 8
** lowercase hex digits of #atr_<id>. A feed page lists, newest first, the
** posts of that community that are visible now (author a member, not
** blocked, not hidden, account active, inside retention), reading at most a
** bounded number of index entries; when it stops early or fills the page it
** returns an opaque cursor to continue. Paging is stable while new posts
** arrive: a cursor encodes the position (sort key, uri hash), never an
** offset. Strings in a page are owned by the page (mdw_index_page_release).
*/
#ifndef MDW_INDEX_H
#define MDW_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/clock.h"

typedef struct mdw_index mdw_index;

typedef struct mdw_index_opts {
    size_t map_bytes;
    int readonly; /* feedgen: open without write access */
    int nosync;   /* tests/bench only */
    /*
    ** Added by the processor engineer (zero = old behaviour): the clock reads
    ** use to leave out posts past the retention window the processor stored
    ** in the index (so a feed never shows a post the next sweep will drop).
    ** NULL = mdw_clock_real().
    */
    mdw_clock *clock;
} mdw_index_opts;

#define MDW_INDEX_CURSOR_MAX 64   /* opaque cursor text, NUL included */
#define MDW_INDEX_SCAN_MAX   2000 /* entries one page request may read */

typedef struct mdw_index_page {
    char **uris;  /* n post AT-URIs, newest first */
    size_t *lens; /* their lengths */
    size_t n;
    char cursor[MDW_INDEX_CURSOR_MAX]; /* "" when the feed has no more posts */
    size_t scanned;                    /* entries read (metrics) */
} mdw_index_page;

int mdw_index_open(mdw_index **out, const char *dir, const mdw_index_opts *opts);
void mdw_index_close(mdw_index *ix);

/*
** One page of community (owner_did, hashtag_id). cursor NULL or "" = newest.
** limit 1..100. Returns 0; MDW_ENOTFOUND when no open community matches;
** MDW_EMALFORMED when the cursor does not decode.
*/
int mdw_index_feed_page(mdw_index *ix, const char *owner_did, const char *hashtag_id,
                        const char *cursor, size_t limit, mdw_index_page *page);

/*
** The same page without copying it: fn(ctx, uri, len) for each post, newest
** first, inside the read transaction (uri is not NUL-terminated and valid only
** during the call; a non-zero return stops the walk and is returned). page
** gets n, cursor and scanned; its uris and lens stay NULL (nothing to release).
*/
typedef int (*mdw_index_post_fn)(void *ctx, const char *uri, size_t len);
int mdw_index_feed_walk(mdw_index *ix, const char *owner_did, const char *hashtag_id,
                        const char *cursor, size_t limit, mdw_index_post_fn fn, void *ctx,
                        mdw_index_page *page);
void mdw_index_page_release(mdw_index_page *page);

/* Visits every open community: (owner DID, hashtag id). Stops if fn returns non-zero. */
typedef int (*mdw_index_community_fn)(void *ctx, const char *owner_did, const char *hashtag_id);
int mdw_index_communities(mdw_index *ix, mdw_index_community_fn fn, void *ctx);

typedef struct mdw_index_stats {
    uint64_t communities, members, posts, moderation, records, tombstones;
    uint64_t last_applied_seq;
    uint64_t bytes_used, map_bytes;
} mdw_index_stats;
int mdw_index_stats_get(mdw_index *ix, mdw_index_stats *st);

/*
** Additions (processor engineer). A stable text dump: one line per entry, in
** key order, no wall-clock field, so two indexes built from the same records
** dump byte for byte alike. owner_did/hashtag_id non-NULL: that community's
** feed only, newest first. MDW_INDEX_DUMP_RECORDS adds per-record revs,
** first-seen times and tombstones (replay comparisons; a rebuild from PDS
** records has no history, so leave it out there).
*/
#define MDW_INDEX_DUMP_RECORDS 1u
int mdw_index_dump(mdw_index *ix, FILE *out, const char *owner_did, const char *hashtag_id,
                   unsigned flags);
/* Compacted online copy into dir (created; must be empty): mdb_env_copy2 MDB_CP_COMPACT. */
int mdw_index_backup(mdw_index *ix, const char *dir);
/* Parses a feed URI at://<owner>/app.bsky.feed.generator/<8 hex>; owner is malloc'd. */
int mdw_index_parse_feed_uri(const char *uri, char **owner, char hashtag_id[9]);

#endif
