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
** This file: the entry points, the records every rule starts from, the
** outcomes, and what the writer keeps in memory (built by its first
** transaction). Each kind of record has its own file (rules.h lists them).
*/
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "lexicon/lexicon.h"
#include "processor/rules_int.h"
#include "common/banned.h"

/* ---- outcomes ---- */

#define MDW_RULE_REASON_NAME_(id, name) [MDW_RR_##id] = name,
static const char *const reason_names[MDW_RR_COUNT] = {MDW_RULE_REASONS(MDW_RULE_REASON_NAME_)};
#undef MDW_RULE_REASON_NAME_

const char *mdw_rules_reason_name(mdw_rule_reason why)
{
    return (unsigned)why < MDW_RR_COUNT ? reason_names[why] : reason_names[MDW_RR_OTHER];
}

static int outcome(mdw_rules_result *res, mdw_rule_outcome o, mdw_rule_reason why)
{
    res->outcome = o;
    res->why = why;
    res->reason = reason_names[why];
    return 0;
}

int rules_refuse(mdw_rules_result *res, mdw_rule_reason why)
{
    return outcome(res, MDW_RULE_REFUSED, why);
}

int rules_noop(mdw_rules_result *res, mdw_rule_reason why)
{
    return outcome(res, MDW_RULE_NOOP, why);
}

int rules_applied(mdw_rules_result *res, mdw_rule_reason why)
{
    return outcome(res, MDW_RULE_APPLIED, why);
}

int rules_rev_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

mdw_rule_reason rules_noop_reason(const rec *c, const char *rev)
{
    if (c->state == IX_STATE_TOMB)
        return MDW_RR_TOMBSTONED;
    return rules_rev_cmp(rev, c->rev) == 0 ? MDW_RR_DUPLICATE : MDW_RR_STALE_REV;
}

int64_t rules_exp_time(const char *rev, int64_t first_seen)
{
    int64_t t;
    return mdw_tid_time(rev, strlen(rev), &t) == 0 ? t : first_seen;
}

int rules_collision(const char *what, const char *a, mdw_ix_str b)
{
    mdw_ix_collisions++;
    mdw_warn("processor", "hash collision: refused", "table=%s new=\"%.200s\" stored=\"%.*s\"",
             what, a, (int)(b.n > 200 ? 200 : b.n), b.p);
    return MDW_ECOLLISION;
}

/* ---- records: rev, state, first seen; a live post's data ---- */

void rules_post_free(post *p)
{
    free(p->author);
    free(p->uri);
    free(p->cid);
    memset(p, 0, sizeof *p);
}

void rules_rec_free(rec *c)
{
    free(c->aux1);
    free(c->aux2);
    rules_post_free(&c->p);
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

int rules_rec_from_row(const mdw_ix_record *row, const char *uri, rec *c)
{
    memset(c, 0, sizeof *c);
    if (row->rev.n > MDW_MAX_REV_BYTES)
        return MDW_ECORRUPT;
    if (uri && !mdw_ix_str_eq(row->uri, uri))
        return rules_collision("records", uri, row->uri);
    if (mdw_ix_record_is_post(row)) {
        post *p = &c->p;
        p->sk = row->sortkey;
        p->created = row->created;
        p->ntags = row->ntags;
        if (p->ntags > MDW_MAX_POST_TAGS || !(p->author = uri_did(row->uri.p, row->uri.n)))
            return MDW_ECORRUPT;
        memcpy(p->tags, row->tags, p->ntags * MDW_IX_TAG);
        mdw_ix_hash_str(p->author, p->ah);
        p->uri = mdw_ix_str_dup(row->uri);
        p->cid = mdw_ix_str_dup(row->cid);
        p->found = 1;
    }
    c->found = 1;
    c->kind = row->kind;
    c->state = row->state;
    c->first_seen = row->first_seen;
    memcpy(c->rev, row->rev.p, row->rev.n);
    c->rev[row->rev.n] = '\0';
    c->aux1 = row->aux1.n ? mdw_ix_str_dup(row->aux1) : NULL;
    c->aux2 = row->aux2.n ? mdw_ix_str_dup(row->aux2) : NULL;
    return 0;
}

int rules_rec_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, rec *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_record row;
    int rc = mdw_ixw_get_record(r->w, rk, MDW_IX_RK, &row);
    if (rc == MDW_ENOTFOUND)
        return 0;
    TRY(rc);
    rc = rules_rec_from_row(&row, uri, c);
    if (rc == MDW_ECORRUPT)
        mdw_error("processor", "stored record does not fit the rules", "uri=\"%.*s\"",
                  (int)(row.uri.n > 300 ? 300 : row.uri.n), row.uri.p);
    if (rc)
        rules_rec_free(c);
    return rc;
}

static int rec_unexpire(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const rec *old)
{
    if (!old->found || old->state == IX_STATE_LIVE)
        return 0;
    uint8_t ek[MDW_IX_KEY_EXP_RECORD];
    mdw_ix_key_expiry(ek, rules_exp_time(old->rev, old->first_seen), rk, MDW_IX_RK);
    if (old->state == IX_STATE_TOMB)
        r->tomb_delta--;
    return mdw_ixw_del(r->w, IX_EXPIRY, ek, sizeof ek);
}

int rules_rec_store(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const char *uri, const rec *old,
                    uint8_t kind, uint8_t state, int64_t first, const char *rev, const char *aux1,
                    const char *aux2, const post *p)
{
    TRY(rec_unexpire(r, rk, old));
    int was_post = old->found && old->p.found,
        is_post = kind == IX_KIND_POST && state == IX_STATE_LIVE && p;
    r->post_delta += is_post - was_post;
    mdw_ix_record row = {.kind = kind,
                         .state = state,
                         .first_seen = first,
                         .rev = mdw_ix_s(rev),
                         .uri = mdw_ix_s(uri),
                         .aux1 = mdw_ix_s(aux1),
                         .aux2 = mdw_ix_s(aux2)};
    if (is_post) {
        row.sortkey = p->sk;
        row.created = p->created;
        row.ntags = (uint8_t)p->ntags;
        row.tags = &p->tags[0][0];
        row.cid = mdw_ix_s(p->cid);
    }
    TRY(mdw_ixw_put_record(r->w, rk, MDW_IX_RK, &row));
    if (state != IX_STATE_LIVE) {
        uint8_t ek[MDW_IX_KEY_EXP_RECORD];
        mdw_ix_expiry e = {IX_EXP_RECORD};
        mdw_ix_key_expiry(ek, rules_exp_time(rev, first), rk, MDW_IX_RK);
        if (state == IX_STATE_TOMB)
            r->tomb_delta++;
        TRY(mdw_ixw_put_expiry(r->w, ek, sizeof ek, &e));
    }
    return 0;
}

int rules_post_load(mdw_rules *r, const uint8_t rk[MDW_IX_RK], post *p)
{
    memset(p, 0, sizeof *p);
    rec c;
    TRY(rules_rec_load(r, rk, NULL, &c));
    *p = c.p;
    memset(&c.p, 0, sizeof c.p);
    rules_rec_free(&c);
    return 0;
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
    outcome(res, MDW_RULE_SKIPPED, MDW_RR_OTHER_KIND);
    if (ev->kind == MDW_EV_ACCOUNT)
        return rules_apply_account(r, ev, res);
    if (ev->kind != MDW_EV_COMMIT)
        return 0;
    const char *col = ev->collection;
    if (!strcmp(col, "app.bsky.feed.post"))
        return rules_apply_post(r, ev, res);
    if (!strcmp(col, "net.atrarium.community.config"))
        return rules_apply_config(r, ev, res);
    if (!strcmp(col, "net.atrarium.community.membership"))
        return rules_apply_membership(r, ev, res);
    if (!strcmp(col, "net.atrarium.moderation.action"))
        return rules_apply_action(r, ev, res);
    outcome(res, MDW_RULE_SKIPPED,
            strncmp(col, "net.atrarium.", 13) == 0 ? MDW_RR_UNKNOWN_ATRARIUM
                                                   : MDW_RR_OTHER_COLLECTION);
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
    r->w = mdw_ixw_new(ix);
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
    mdw_ixw_free(r->w);
    mdw_tagger_free(r->tagger);
    rules_tagcache_clear(r);
    free(r->tc);
    mdw_authors_free(r->authors);
    mdw_keyset_free(r->mod_targets);
    mdw_keyset_free(r->hidden_accounts);
    mdw_keyset_free(r->members);
    mdw_keyset_free(r->roles);
    rules_curicache_clear(r);
    free(r->cc);
    free(r->al);
    free(r);
}

/* ---- what the writer keeps in memory, built by its first transaction ---- */

typedef struct filter_fill {
    mdw_keyset *s;
    size_t klen;
    int hidden_accounts; /* accounts: only those stored as not visible */
} filter_fill;

static int filter_visit(void *ctx, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    filter_fill *f = ctx;
    if (kn < f->klen)
        return 0;
    if (f->hidden_accounts) {
        mdw_ix_account a;
        /* An undecodable row goes in: the filter must stay a superset. */
        if (mdw_ix_account_dec(v, vn, &a) == 0 && a.visible)
            return 0;
    }
    mdw_keyset_add(f->s, k);
    return 0;
}

/* Fills a negative filter with the keys (their first klen bytes) of table t. */
static int filter_build(mdw_rules *r, int t, mdw_keyset *s, size_t klen)
{
    filter_fill f = {s, klen, t == IX_ACCOUNTS};
    return mdw_ixw_walk(r->w, t, NULL, 0, filter_visit, &f);
}

typedef struct authors_fill {
    mdw_rules *r;
    size_t posts, bad;
} authors_fill;

static int authors_visit(void *ctx, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    authors_fill *a = ctx;
    mdw_rules *r = a->r;
    mdw_ix_record row;
    if (kn != MDW_IX_RK)
        return 0;
    if (mdw_ix_record_dec(v, vn, &row)) {
        a->bad++; /* not fatal here: the record's own events meet the same error, as before */
        return 0;
    }
    if (!mdw_ix_record_is_post(&row))
        return 0;
    rec c;
    if (rules_rec_from_row(&row, NULL, &c)) {
        rules_rec_free(&c);
        a->bad++;
        return 0;
    }
    for (size_t i = 0; i < c.p.ntags; i++)
        mdw_authors_add(r->authors, c.p.ah, c.p.tags[i], k);
    a->posts++;
    int rc = 0;
    if (!rules_post_regular(c.p.sk, k)) {
        /* Its expiry entry (written already, or by nothing when the index was format 4). */
        uint8_t ek[MDW_IX_KEY_EXP_POST];
        mdw_ix_expiry e = {IX_EXP_POST};
        mdw_ix_key_expiry_post(ek, c.p.sk, k);
        if ((rc = mdw_ixw_has(r->w, IX_EXPIRY, ek, sizeof ek)) == 0)
            rc = mdw_ixw_put_expiry(r->w, ek, sizeof ek, &e);
        else if (rc == 1)
            rc = 0;
    }
    rules_rec_free(&c);
    return rc;
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
    authors_fill a = {r, 0, 0};
    TRY(mdw_ixw_walk(r->w, IX_RECORDS, NULL, 0, authors_visit, &a));
    if (a.bad)
        mdw_error("processor", "undecodable post records skipped by the author index", "n=%zu",
                  a.bad);
    mdw_authors_commit(r->authors); /* what is built is the committed state */
    r->authors_built = 1;
    if (a.posts)
        mdw_info("processor", "author index built from records",
                 "posts=%zu entries=%zu authors=%zu", a.posts, mdw_authors_entries(r->authors),
                 mdw_authors_count(r->authors));
    return 0;
}

size_t mdw_rules_author_entries(const mdw_rules *r)
{
    return mdw_authors_entries(r->authors);
}

/* ---- transactions ---- */

int mdw_rules_begin(mdw_rules *r)
{
    int rc = mdw_ixw_begin(r->w);
    if (rc)
        return rc;
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

/* What this writer remembers of a transaction that did not commit goes with it. */
static void forget_txn(mdw_rules *r)
{
    rules_tagcache_clear(r); /* it may hold what the aborted transaction wrote */
    rules_curicache_clear(r);
    mdw_authors_rollback(r->authors);
}

void mdw_rules_abort(mdw_rules *r)
{
    mdw_ixw_abort(r->w);
    forget_txn(r);
}

/* meta name += delta (absent: 0). */
static int meta_add(mdw_rules *r, const char *name, int64_t delta)
{
    uint64_t n = 0;
    int rc = mdw_ixw_get_meta(r->w, name, &n);
    if (rc && rc != MDW_ENOTFOUND && rc != MDW_ECORRUPT)
        return rc;
    if (rc)
        n = 0;
    return mdw_ixw_put_meta(r->w, name, (uint64_t)((int64_t)n + delta));
}

int mdw_rules_commit(mdw_rules *r, uint64_t last_seq)
{
    int rc = 0;
    if (last_seq)
        rc = mdw_ixw_put_meta(r->w, MDW_IX_META_LAST_SEQ, last_seq);
    if (!rc)
        rc = mdw_ixw_put_meta(r->w, MDW_IX_META_RETENTION, (uint64_t)r->retention_us);
    if (!rc && r->tomb_delta)
        rc = meta_add(r, MDW_IX_META_TOMBSTONES, r->tomb_delta);
    if (!rc && r->post_delta)
        rc = meta_add(r, MDW_IX_META_POSTS, r->post_delta);
    if (!rc && r->min_regular_rk != INT64_MAX) {
        /* Keeps "no regular live post below sweep_from" (absent: 0, nothing is below). */
        uint64_t from = 0;
        if (mdw_ixw_get_meta(r->w, MDW_IX_META_SWEEP_FROM, &from) == 0 &&
            (uint64_t)r->min_regular_rk < from)
            rc = mdw_ixw_put_meta(r->w, MDW_IX_META_SWEEP_FROM, (uint64_t)r->min_regular_rk);
    }
    if (rc) {
        mdw_rules_abort(r);
        return rc;
    }
    if ((rc = mdw_ixw_commit(r->w))) { /* LMDB aborted it */
        forget_txn(r);
        return rc;
    }
    mdw_authors_commit(r->authors);
    return 0;
}
