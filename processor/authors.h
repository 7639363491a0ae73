/*
** processor/authors.h — the tagged posts of each author, in memory: which
** live posts (records key and tag) an author has, read when a membership,
** block or account state changes and that author's posts must be placed
** again.
**
** It replaces the index's former author_posts table (H(did) | tag | RK):
** that table's key started with H(author), so every tagged post dirtied one
** random B-tree page, and the processor ran 37% faster without it
** (docs/processor.md). The set is a function of the live posts in the
** records table (a live post's value names its tags, its URI names its
** author), so it is rebuilt from there when the writer starts and needs no
** durability of its own.
**
** Transactions: changes since mdw_authors_commit() are journalled;
** mdw_authors_rollback() undoes them when the index transaction aborts, so
** the set always equals the committed records plus the open transaction's.
**
** Memory: 28 bytes per (post, tag) plus about 40 per author; bounded by
** what the retention window keeps in the index (and much smaller than the
** index's own copy of the same posts).
**
** Not thread-safe: owned by the one index writer (processor/rules.c).
*/
#ifndef MDW_PROCESSOR_AUTHORS_H
#define MDW_PROCESSOR_AUTHORS_H

#include <stddef.h>
#include <stdint.h>

#include "index/index_write.h"

typedef struct mdw_authors mdw_authors;

/*
** One post of an author under one of its tags. Ordered by records key first
** (its rkey's TID time): new posts append at the end of the author's array.
*/
typedef struct mdw_author_post {
    uint8_t rk[MDW_IX_RK];
    uint8_t tag[MDW_IX_TAG];
} mdw_author_post;

mdw_authors *mdw_authors_new(void);
void mdw_authors_free(mdw_authors *a);

/* Adds or removes (ah, tag, rk); adding a present entry or removing an absent one does nothing. */
void mdw_authors_add(mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t tag[MDW_IX_TAG],
                     const uint8_t rk[MDW_IX_RK]);
void mdw_authors_del(mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t tag[MDW_IX_TAG],
                     const uint8_t rk[MDW_IX_RK]);

/*
** Copies the author's posts (only those under tag, or all when tag is NULL)
** into *out (grown with xrealloc, *cap its capacity) in (records key, tag)
** order; returns how many. The copy lets callers change the set meanwhile.
*/
size_t mdw_authors_list(const mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t *tag,
                        mdw_author_post **out, size_t *cap);

/* The open transaction committed: forget its journal. */
void mdw_authors_commit(mdw_authors *a);
/* The open transaction aborted: undo every change since the last commit. */
void mdw_authors_rollback(mdw_authors *a);

/* Entries (post, tag pairs) and authors held. */
size_t mdw_authors_entries(const mdw_authors *a);
size_t mdw_authors_count(const mdw_authors *a);

#endif
