/*
** processor/rules_int.h — the rule engine's internals, shared by
** processor/rules*.c only: the engine struct, the records, posts and
** communities as the rules see them (owned copies of index rows), and the
** functions one concern calls in another.
**
** LMDB pointers returned inside a write transaction die at the next write:
** everything read is copied into these structs before writing.
*/
#ifndef MDW_PROCESSOR_RULES_INT_H
#define MDW_PROCESSOR_RULES_INT_H

#include <stdint.h>
#include <string.h>

#include <cJSON.h>

#include "common/limits.h"
#include "index/index_write.h"
#include "processor/authors.h"
#include "processor/keyset.h"
#include "processor/rules.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

/*
** The open communities of each hashtag seen, kept in memory between events
** (by_tag + communities are read for every tagged post otherwise). Only
** this writer changes those tables, so the cache stays true as long as it
** is dropped whenever a community is rebuilt or a transaction aborted.
*/
#define TAGCACHE_SLOTS  8192 /* power of two; cleared when half full */
#define CURICACHE_SLOTS 256  /* power of two */

/* An open community. */
typedef struct comm {
    int found;
    uint8_t ck[MDW_IX_H];
    uint8_t tag[MDW_IX_TAG];
    char *owner, *curi;
    uint8_t curih[MDW_IX_H]; /* H(curi), hashed once: moderation keys start with it */
} comm;

typedef struct tagcache_entry {
    uint32_t tag;
    int used;
    size_t n;
    comm *comms;
} tagcache_entry;

typedef struct curicache_entry {
    int used;
    uint8_t h[MDW_IX_H];
    char *curi;
    comm c; /* c.found 0: no open community has this config */
} curicache_entry;

struct mdw_rules {
    mdw_index *ix;
    mdw_ixw *w; /* the index's write half: one transaction at a time */
    mdw_clock *clock;
    int64_t retention_us, now, cutoff;
    mdw_tagger *tagger;
    int64_t tomb_delta, post_delta;
    int64_t min_regular_rk; /* lowest rkey time of a regular post made live in this transaction */
    tagcache_entry *tc;
    size_t tc_used;
    mdw_authors *authors; /* posts by author, rebuilt from records by the first transaction */
    int authors_built;
    /*
    ** Negative filters (keyset.h: supersets of the table's keys, kept by
    ** every put to those tables and filled by the first transaction) in
    ** front of lookups that mostly find nothing: moderation of a target
    ** (H(config uri) | H(target)), an account stored as not visible (H(did)),
    ** membership and roles (H(comm) | H(did)).
    */
    mdw_keyset *mod_targets, *hidden_accounts, *members, *roles;
    /* comm_by_curi() results by H(config uri); dropped when configs or communities change. */
    curicache_entry *cc;
    int cc_used;
    mdw_author_post *al; /* scratch list for mdw_authors_list */
    size_t alcap;
};

/*
** A live tagged post: kept in its records row (format 3 folded the posts
** table in: one get and one put per post instead of two of each). The
** author is the DID in the URI.
*/
typedef struct post {
    int found;
    int64_t sk, created;
    size_t ntags;
    uint8_t tags[MDW_MAX_POST_TAGS][MDW_IX_TAG];
    char *author, *uri, *cid;
    uint8_t ah[MDW_IX_H]; /* H(author), hashed once */
} post;

/* A records row. */
typedef struct rec {
    int found;
    uint8_t kind, state;
    int64_t first_seen;
    char rev[MDW_MAX_REV_BYTES + 1];
    char *aux1, *aux2;
    post p; /* p.found: a live post with its data */
} rec;

/* ---- rules.c: outcomes, records, shared helpers ---- */

int rules_refuse(mdw_rules_result *res, mdw_rule_reason why);
int rules_noop(mdw_rules_result *res, mdw_rule_reason why);
int rules_applied(mdw_rules_result *res, mdw_rule_reason why);
/* Why an event that is not newer than the stored record c is a no-op. */
mdw_rule_reason rules_noop_reason(const rec *c, const char *rev);

int rules_rev_cmp(const char *a, const char *b);
int64_t rules_exp_time(const char *rev, int64_t first_seen);
static inline int rules_str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}
/* The array itself, or NULL when it is absent or not an array (cJSON_ArrayForEach takes NULL). */
static inline const cJSON *rules_as_array(const cJSON *a)
{
    return cJSON_IsArray(a) ? a : NULL;
}
/* Counts and logs a refused hash collision (table what); returns MDW_ECOLLISION. */
int rules_collision(const char *what, const char *a, mdw_ix_str b);

void rules_post_free(post *p);
void rules_rec_free(rec *c);
/* A records row as the rules keep it; uri (when not NULL) must match: MDW_ECOLLISION if not. */
int rules_rec_from_row(const mdw_ix_record *row, const char *uri, rec *c);
/* 0 (c->found 0 when absent), MDW_ECOLLISION, or an error. */
int rules_rec_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, rec *c);
/* Writes the record (and its expiry entry unless live); p: the post's data when a live post. */
int rules_rec_store(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, const rec *old,
                    uint8_t kind, uint8_t state, int64_t first, const char *rev, const char *aux1,
                    const char *aux2, const post *p);
/* The live post under records key rk (p->found 0 when there is none or it is not one). */
int rules_post_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], post *p);

/* ---- rules_posts.c ---- */

/* Retention's slack: see rules_post_regular. */
#define SWEEP_SLACK_US (3600LL * 1000000)
/* A post whose sort key sk is within SWEEP_SLACK_US below its rkey time (swept by rkey order). */
int rules_post_regular(int64_t sk, const uint8_t rk[MDW_IX_RK]);
int rules_post_eval(mdw_rules *r, const comm *c, const uint8_t rk[MDW_IX_RK], const post *p,
                    int fresh);
int rules_post_unplace(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p);
int rules_post_place(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p);
int rules_post_remove(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p);
void rules_tagcache_clear(mdw_rules *r);
int rules_apply_post(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);

/* ---- rules_communities.c (communities and configs) ---- */

void rules_comm_free(comm *c);
int rules_comm_load(mdw_rules *r, const uint8_t ck[MDW_IX_H], comm *c);
/* The open community whose winning config is curi (c->found 0: none). */
int rules_comm_by_curi(mdw_rules *r, const char *curi, comm *c);
void rules_curicache_clear(mdw_rules *r);
int rules_apply_config(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);

/* ---- rules_members.c ---- */

/* dh: H(did) when the caller has it, else NULL. */
int rules_role_flags(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did, const uint8_t *dh,
                     uint8_t *flags);
int rules_members_has(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did,
                      const uint8_t dh[MDW_IX_H], int *has);
/* Membership of did in c recomputed; its posts follow when it changed. dh: H(did), or NULL. */
int rules_member_reeval(mdw_rules *r, const comm *c, const char *did, const uint8_t *dh);
int rules_apply_membership(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);

/* ---- rules_moderation.c ---- */

/* The deciding action (IX_ACT_*, 0: none) on target kind 'p' (post) / 'u' (user) in c. */
int rules_mod_decide(mdw_rules *r, const comm *c, char kind, const char *target, int *act);
int rules_apply_action(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);

/* ---- rules_accounts.c ---- */

int rules_account_visible(mdw_rules *r, const char *did, const uint8_t dh[MDW_IX_H], int *vis);
int rules_apply_account(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res);

#endif
