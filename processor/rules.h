/*
** processor/rules.h — Meadow's community rules, applied to the index in one
** LMDB write transaction (the index's write side).
**
** The index is a function of the current records (DESIGN.md): every rule
** below is written so that the same set of events, in any order and with any
** duplicates, leaves the same index. How:
**   - each record URI keeps the last applied rev; an event whose rev is not
**     newer is a no-op, and a delete leaves a tombstone (URI, rev);
**   - config records keep every version seen, because "the hashtag cannot
**     change" needs the first version: the effective version is the newest
**     one whose hashtag equals the oldest version's;
**   - derived tables (members, feed, roles, communities) are
**     recomputed from the source tables for what an event touches, never
**     patched incrementally from the event itself.
** Record validation (lexicon) happens before: mdw_rules_apply() expects
** records that passed it, and checks only what needs the index (hashtag
** immutability, target shape, hash collisions).
**
** Not thread-safe: one mdw_rules per writer; LMDB allows one write
** transaction at a time anyway. One writer per index at a time (the
** processor's lock): the writer keeps derived state in memory (the author
** index, lookup filters, community caches) that assumes nobody else writes.
** Strings in mdw_rules_result are static.
*/
#ifndef MDW_PROCESSOR_RULES_H
#define MDW_PROCESSOR_RULES_H

#include <stdint.h>

#include "common/clock.h"
#include "index/index.h"
#include "processor/event.h"

typedef struct mdw_rules mdw_rules;

enum {
    MDW_RULE_APPLIED = 1, /* the index may have changed */
    MDW_RULE_NOOP,        /* duplicate, stale rev, tombstoned */
    MDW_RULE_REFUSED,     /* not applied: reason says why (logged, counted) */
    MDW_RULE_SKIPPED      /* not Meadow's: unknown net.atrarium.*, other collections */
};

typedef struct mdw_rules_result {
    int outcome;
    const char *reason; /* short label for metrics, e.g. "post_indexed", "stale_rev" */
} mdw_rules_result;

/* Creates the writer state (tagger included). */
int mdw_rules_new(mdw_rules **out, mdw_index *ix, mdw_clock *clock, int64_t retention_us);
void mdw_rules_free(mdw_rules *r);

/* Opens the write transaction; "now" (retention cutoff) is read here. */
int mdw_rules_begin(mdw_rules *r);
/*
** Applies one decoded event. Returns 0 with *res filled, or a negative code
** when the index itself failed (the transaction must then be aborted).
*/
int mdw_rules_apply(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);
/* Removes posts past retention and expired tombstones; counts in *posts, *records. */
int mdw_rules_sweep(mdw_rules *r, uint64_t *posts, uint64_t *records);
/* (post, tag) pairs in the writer's in-memory author index (processor/authors.h). */
size_t mdw_rules_author_entries(const mdw_rules *r);
/* Stores last_seq (when non-zero) and the retention, then commits. */
int mdw_rules_commit(mdw_rules *r, uint64_t last_seq);
void mdw_rules_abort(mdw_rules *r);

/* The last applied queue seq stored in the index (0 when none). */
int mdw_index_last_seq(mdw_index *ix, uint64_t *seq);

#endif
