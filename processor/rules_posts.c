/*
** processor/rules_posts.c — posts: where a post is placed (the feeds of the
** open communities of its tags where it is visible), its secondary entries
** (the in-memory author index, an expiry entry when retention cannot find
** it by rkey time), and the post rule itself.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "processor/rules_int.h"
#include "common/banned.h"

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
int rules_post_regular(int64_t sk, const uint8_t rk[MDW_IX_RK])
{
    int64_t t = (int64_t)mdw_ix_get_be64(rk);
    return t > 0 && sk <= t && t - sk <= SWEEP_SLACK_US;
}

static int has_tag(const post *p, const uint8_t tag[MDW_IX_TAG])
{
    for (size_t i = 0; i < p->ntags; i++)
        if (!memcmp(p->tags[i], tag, MDW_IX_TAG))
            return 1;
    return 0;
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
    if (!rules_post_regular(p->sk, rk)) {
        uint8_t ek[MDW_IX_KEY_EXP_POST];
        mdw_ix_expiry e = {IX_EXP_POST};
        mdw_ix_key_expiry_post(ek, p->sk, rk);
        return add ? mdw_ixw_put_expiry(r->w, ek, sizeof ek, &e)
                   : mdw_ixw_del(r->w, IX_EXPIRY, ek, sizeof ek);
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

/*
** Decides post p (maybe not found) in community c and makes the feed say
** so. A post can only be in c's feed under its current sort key (every sort
** key change goes through rules_post_unplace first), so the feed key is
** known from the post itself. fresh: the post is known to be in no feed yet.
*/
int rules_post_eval(mdw_rules *r, const comm *c, const uint8_t rk[MDW_IX_RK], const post *p,
                    int fresh)
{
    if (!p->found || !has_tag(p, c->tag))
        return 0; /* not in this feed, and not to be */
    uint8_t fk[MDW_IX_KEY_FEED];
    mdw_ix_key_feed(fk, c->ck, p->sk, rk + 8);
    if (!fresh)
        TRY(mdw_ixw_del(r->w, IX_FEED, fk, sizeof fk));
    if (p->sk < r->cutoff)
        return 0;
    int ok;
    TRY(rules_members_has(r, c->ck, p->author, p->ah, &ok));
    if (!ok)
        return 0;
    TRY(rules_account_visible(r, p->author, p->ah, &ok));
    if (!ok)
        return 0;
    int act = 0;
    TRY(rules_mod_decide(r, c, 'p', p->uri, &act));
    if (act == IX_ACT_HIDE)
        return 0;
    mdw_ix_feed row = {mdw_ix_s(p->uri)};
    return mdw_ixw_put_feed(r->w, fk, sizeof fk, &row);
}

void rules_tagcache_clear(mdw_rules *r)
{
    if (!r->tc_used)
        return;
    for (size_t i = 0; i < TAGCACHE_SLOTS; i++) {
        tagcache_entry *e = &r->tc[i];
        for (size_t j = 0; j < e->n; j++)
            rules_comm_free(&e->comms[j]);
        free(e->comms);
        memset(e, 0, sizeof *e);
    }
    r->tc_used = 0;
}

/* The open communities using tag (cached; see TAGCACHE_SLOTS). */
static int tag_communities(mdw_rules *r, const uint8_t tag[MDW_IX_TAG], const tagcache_entry **out)
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
        rules_tagcache_clear(r);
        return tag_communities(r, tag, out);
    }
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_BY_TAG, tag, MDW_IX_TAG, 0, &l));
    int rc = 0;
    size_t n = 0, max = l.n;
    comm *cs = max ? xcalloc(max, sizeof *cs) : NULL;
    for (size_t j = 0; j < max && !rc; j++)
        if ((rc = rules_comm_load(r, l.a[j].k + MDW_IX_TAG, &cs[n])) == 0 && cs[n].found)
            n++;
    mdw_ix_kvlist_free(&l);
    if (rc) {
        for (size_t j = 0; j < max; j++)
            rules_comm_free(&cs[j]);
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
int rules_post_unplace(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    for (size_t i = 0; i < p->ntags; i++) {
        const tagcache_entry *e;
        TRY(tag_communities(r, p->tags[i], &e));
        for (size_t j = 0; j < e->n; j++) {
            uint8_t fk[MDW_IX_KEY_FEED];
            mdw_ix_key_feed(fk, e->comms[j].ck, p->sk, rk + 8);
            TRY(mdw_ixw_del(r->w, IX_FEED, fk, sizeof fk));
        }
    }
    return 0;
}

/*
** Puts post p in each open community of each of its tags where it is
** visible. Callers have just taken it out of every feed (or it is new).
*/
int rules_post_place(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    for (size_t i = 0; i < p->ntags; i++) {
        const tagcache_entry *e;
        TRY(tag_communities(r, p->tags[i], &e));
        for (size_t j = 0; j < e->n; j++)
            TRY(rules_post_eval(r, &e->comms[j], rk, p, 1));
    }
    return 0;
}

/* Out of every feed and secondary index; the caller rewrites or deletes the record. */
int rules_post_remove(mdw_rules *r, const uint8_t rk[MDW_IX_RK], const post *p)
{
    TRY(rules_post_unplace(r, rk, p));
    return post_index(r, rk, p, 0);
}

/*
** The record's createdAt (mdw_event_prepare parsed it exactly as the
** lexicon validator accepts it, so every valid record has an instant).
*/
static int64_t post_sortkey(const mdw_event *ev, int64_t first_seen, int64_t *created)
{
    int64_t sk = first_seen;
    *created = 0;
    if (ev->created_rc == 0) {
        *created = ev->created_us;
        if (ev->created_us < sk)
            sk = ev->created_us;
    }
    if (ev->rkey_time_rc == 0 && ev->rkey_time_us < sk)
        sk = ev->rkey_time_us;
    return sk;
}

int rules_apply_post(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    rec c;
    int rc = rules_rec_load(r, rk, ev->uri, &c);
    if (rc == MDW_ECOLLISION)
        return rules_refuse(res, MDW_RR_HASH_COLLISION);
    TRY(rc);
    int64_t seen = ev->time_us > 0 ? ev->time_us : r->now;
    const post *old = &c.p; /* the live post as stored (old->found 0 when none) */
    if (c.found && rules_rev_cmp(ev->rev, c.rev) <= 0) {
        /* Not newer, but first seen is the earliest sighting of any version. */
        mdw_rule_reason why = rules_noop_reason(&c, ev->rev);
        if (seen < c.first_seen) {
            post nw = *old;
            if (old->found && seen < old->sk) {
                /* Its sort key moves earlier: re-placed under the new one. */
                nw.sk = seen;
                if (!(rc = rules_post_unplace(r, rk, old)) && !(rc = post_write(r, rk, old, &nw)))
                    rc = rules_post_place(r, rk, &nw);
            }
            if (!rc)
                rc = rules_rec_store(r, rk, ev->uri, &c, c.kind, c.state, seen, c.rev, NULL, NULL,
                                     old->found ? &nw : NULL);
        }
        rules_rec_free(&c);
        TRY(rc);
        return rules_noop(res, why);
    }
    /*
    ** first seen = the earliest time_us of ANY event for this URI (deletes and
    ** earlier generations included): a minimum over a set, so the same
    ** whatever order the events came in.
    */
    int64_t first = c.found && c.first_seen < seen ? c.first_seen : seen;
    mdw_rule_reason why;
    if (ev->op == MDW_OP_DELETE) {
        if (old->found)
            rc = rules_post_remove(r, rk, old);
        if (!rc)
            rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_TOMB, first, ev->rev,
                                 NULL, NULL, NULL);
        why = MDW_RR_POST_DELETED;
    } else {
        post p = {0};
        p.found = 1;
        p.ntags = ev->ntags;
        memcpy(p.tags, ev->tags, sizeof p.tags);
        p.sk = post_sortkey(ev, first, &p.created);
        if (p.ntags == 0 || p.sk < r->cutoff) {
            if (old->found)
                rc = rules_post_remove(r, rk, old);
            if (!rc)
                rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_NONE, first,
                                     ev->rev, NULL, NULL, NULL);
            why = p.ntags == 0 ? MDW_RR_POST_UNTAGGED : MDW_RR_POST_EXPIRED;
        } else {
            p.author = (char *)ev->did;
            memcpy(p.ah, ev->did_hash, MDW_IX_H);
            p.uri = ev->uri;
            p.cid = (char *)(ev->cid ? ev->cid : "");
            if (old->found)
                rc = rules_post_unplace(r, rk, old);
            if (!rc)
                rc = post_write(r, rk, old, &p);
            if (!rc)
                rc = rules_post_place(r, rk, &p);
            if (!rc)
                rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_POST, IX_STATE_LIVE, first,
                                     ev->rev, NULL, NULL, &p);
            why = MDW_RR_POST_INDEXED;
        }
    }
    rules_rec_free(&c);
    TRY(rc);
    return rules_applied(res, why);
}
