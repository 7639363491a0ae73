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
**
** The engine is split by concern: processor/rules.c (entry points, records,
** the writer's in-memory state), rules_posts.c, rules_communities.c
** (communities and configs), rules_members.c, rules_moderation.c,
** rules_accounts.c, rules_sweep.c (retention); processor/rules_int.h is
** their shared internal header. They hold rule logic only: every table
** access goes through index/index_write.h.
*/
#ifndef MDW_PROCESSOR_RULES_H
#define MDW_PROCESSOR_RULES_H

#include <stdint.h>

#include "common/clock.h"
#include "index/index.h"
#include "index/index_write.h" /* mdw_index_last_seq */
#include "processor/event.h"

typedef struct mdw_rules mdw_rules;

typedef enum mdw_rule_outcome {
    MDW_RULE_APPLIED = 1, /* the index may have changed */
    MDW_RULE_NOOP,        /* duplicate, stale rev, tombstoned */
    MDW_RULE_REFUSED,     /* not applied: reason says why (logged, counted) */
    MDW_RULE_SKIPPED      /* not Meadow's: unknown net.atrarium.*, other collections */
} mdw_rule_outcome;

/*
** What decided an event: a value per rule, counted by index (the processor's
** meadow_processor_rule_total{rule=...} counters follow this order) and
** named by mdw_rules_reason_name() for logs and dead letters. LEXICON,
** APP_RULE and MALFORMED are the processor's own (decoding and validation,
** before the rules).
*/
/* clang-format off */
#define MDW_RULE_REASONS(X)                                                                        \
    X(POST_INDEXED, "post_indexed")                                                                \
    X(POST_UNTAGGED, "post_untagged")                                                              \
    X(POST_EXPIRED, "post_expired")                                                                \
    X(POST_DELETED, "post_deleted")                                                                \
    X(CONFIG, "config")                                                                            \
    X(CONFIG_DELETED, "config_deleted")                                                            \
    X(MEMBERSHIP, "membership")                                                                    \
    X(MEMBERSHIP_DELETED, "membership_deleted")                                                    \
    X(MODERATION, "moderation")                                                                    \
    X(MODERATION_DELETED, "moderation_deleted")                                                    \
    X(ACCOUNT_VISIBLE, "account_visible")                                                          \
    X(ACCOUNT_HIDDEN, "account_hidden")                                                            \
    X(DUPLICATE, "duplicate")                                                                      \
    X(STALE_REV, "stale_rev")                                                                      \
    X(STALE_SEQ, "stale_seq")                                                                      \
    X(TOMBSTONED, "tombstoned")                                                                    \
    X(LEXICON, "lexicon")                                                                          \
    X(APP_RULE, "app_rule")                                                                        \
    X(HASHTAG_CHANGE, "hashtag_change")                                                            \
    X(HASH_COLLISION, "hash_collision")                                                            \
    X(BAD_TARGET, "bad_target")                                                                    \
    X(BAD_ACTION, "bad_action")                                                                    \
    X(BAD_DATETIME, "bad_datetime")                                                                \
    X(BAD_COMMUNITY, "bad_community")                                                              \
    X(UNKNOWN_ATRARIUM, "unknown_atrarium")                                                        \
    X(OTHER_COLLECTION, "other_collection")                                                        \
    X(OTHER_KIND, "other_kind")                                                                    \
    X(MALFORMED, "malformed")                                                                      \
    X(OTHER, "other")
/* clang-format on */

#define MDW_RULE_REASON_ENUM_(id, name) MDW_RR_##id,
typedef enum mdw_rule_reason {
    MDW_RULE_REASONS(MDW_RULE_REASON_ENUM_) MDW_RR_COUNT
} mdw_rule_reason;
#undef MDW_RULE_REASON_ENUM_

/* The reason's name ("post_indexed", ...): static, never NULL. */
const char *mdw_rules_reason_name(mdw_rule_reason why);

typedef struct mdw_rules_result {
    mdw_rule_outcome outcome;
    mdw_rule_reason why;
    const char *reason; /* mdw_rules_reason_name(why): for logs and dead letters */
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

#endif
