/*
** processor/rules_sweep.c — retention: posts whose sort key is past the
** window leave the index, and so do tombstones, unseen-post revs and
** active-account entries once they are older than it (a replay of an event
** that old is refused by the window itself, see docs/processor.md).
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "processor/rules_int.h"
#include "common/banned.h"

/* The regular posts' walk over records (see rules_post_regular). */
typedef struct old_posts {
    mdw_rules *r;
    int64_t bound, kept;
    mdw_ix_kvlist old; /* records keys of posts past the cutoff */
} old_posts;

static int old_posts_visit(void *ctx, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    old_posts *o = ctx;
    if (kn != MDW_IX_RK)
        return 0;
    int64_t t = (int64_t)mdw_ix_get_be64(k);
    if (t >= o->bound)
        return 1;
    mdw_ix_record row;
    if (mdw_ix_record_dec(v, vn, &row) || !mdw_ix_record_is_post(&row))
        return 0;
    if (row.sortkey < o->r->cutoff)
        mdw_ix_kvlist_add(&o->old, k, kn, NULL, 0);
    else if (rules_post_regular(row.sortkey, k) && t < o->kept)
        o->kept = t;
    return 0;
}

/* Removes the live post under rk (it left the window); counts it. */
static int post_sweep(mdw_rules *r, const uint8_t rk[MDW_IX_RK], int64_t only_sk, uint64_t *nposts)
{
    post p;
    int rc = rules_post_load(r, rk, &p);
    if (rc == 0 && p.found && (only_sk == INT64_MIN || p.sk == only_sk)) {
        rc = rules_post_remove(r, rk, &p); /* its expiry entry included */
        if (!rc)
            rc = mdw_ixw_del(r->w, IX_RECORDS, rk, MDW_IX_RK);
        r->post_delta--;
        (*nposts)++;
    }
    rules_post_free(&p);
    return rc;
}

typedef struct expired {
    uint64_t cut;
    mdw_ix_kvlist ex;
} expired;

static int expired_visit(void *ctx, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    expired *x = ctx;
    if (kn <= 8 || mdw_ix_get_be64(k) >= x->cut)
        return 1;
    mdw_ix_kvlist_add(&x->ex, k, kn, v, vn);
    return 0;
}

/* A get whose row is undecodable (logged by the index) counts as absent here, as it always did. */
static int absent(int rc)
{
    return rc == MDW_ENOTFOUND || rc == MDW_ECORRUPT;
}

/* One expiry entry past the cutoff: what it names goes if it is still what expired. */
static int expire_one(mdw_rules *r, const mdw_ix_kv *e, uint64_t *nposts, uint64_t *nrecords)
{
    const uint8_t *h = e->k + 8;
    size_t hn = e->kn - 8;
    int64_t t = mdw_ix_sk_dec(mdw_ix_get_be64(e->k));
    mdw_ix_expiry x;
    if (mdw_ix_expiry_dec(e->v, e->vn, &x))
        x.which = 0;
    int rc = 0;
    if (x.which == IX_EXP_RECORD && hn == MDW_IX_RK) {
        mdw_ix_record row;
        rc = mdw_ixw_get_record(r->w, h, hn, &row);
        if (absent(rc))
            rc = 0;
        else if (rc == 0 && row.state != IX_STATE_LIVE && row.rev.n <= MDW_MAX_REV_BYTES) {
            char rv[MDW_MAX_REV_BYTES + 1];
            memcpy(rv, row.rev.p, row.rev.n);
            rv[row.rev.n] = '\0';
            if (rules_exp_time(rv, row.first_seen) == t) {
                if (row.state == IX_STATE_TOMB)
                    r->tomb_delta--;
                rc = mdw_ixw_del(r->w, IX_RECORDS, h, MDW_IX_RK);
                (*nrecords)++;
            }
        }
    } else if (x.which == IX_EXP_POST && hn == MDW_IX_RK + 1) {
        rc = post_sweep(r, h, t, nposts);
    } else if (x.which == IX_EXP_ACCOUNT && hn == MDW_IX_H) {
        mdw_ix_account a;
        rc = mdw_ixw_get_account(r->w, h, MDW_IX_H, &a);
        if (absent(rc))
            rc = 0;
        else if (rc == 0 && a.visible && a.time == t)
            rc = mdw_ixw_del(r->w, IX_ACCOUNTS, h, MDW_IX_H);
    }
    return rc ? rc : mdw_ixw_del(r->w, IX_EXPIRY, e->k, e->kn);
}

int mdw_rules_sweep(mdw_rules *r, uint64_t *nposts, uint64_t *nrecords)
{
    *nposts = *nrecords = 0;
    if (r->cutoff == INT64_MIN)
        return 0;
    /*
    ** Regular posts (see rules_post_regular): records from sweep_from up to
    ** cutoff + slack, in rkey time order; sweep_from then moves to the
    ** lowest rkey time of a regular live post left in that range (or the
    ** bound). Irregular ones have expiry entries, swept below. A failed
    ** step of the walk fails the sweep (the transaction is aborted): taken
    ** for the end of the range, it would move sweep_from past posts never
    ** looked at, and no later sweep would remove them.
    */
    uint64_t from = 0;
    int rc = mdw_ixw_get_meta(r->w, MDW_IX_META_SWEEP_FROM, &from);
    if (rc && !absent(rc))
        return rc;
    if (rc)
        from = 0;
    int64_t bound = r->cutoff < 0 ? 0 : r->cutoff + SWEEP_SLACK_US;
    old_posts o = {r, bound, bound, {0}};
    uint8_t seek[MDW_IX_RK] = {0};
    mdw_ix_put_be64(seek, from);
    rc = mdw_ixw_walk(r->w, IX_RECORDS, seek, sizeof seek, old_posts_visit, &o);
    for (size_t i = 0; i < o.old.n && !rc; i++)
        rc = post_sweep(r, o.old.a[i].k, INT64_MIN, nposts);
    mdw_ix_kvlist_free(&o.old);
    TRY(rc);
    if ((uint64_t)o.kept != from)
        TRY(mdw_ixw_put_meta(r->w, MDW_IX_META_SWEEP_FROM, (uint64_t)o.kept));
    /* Tombstones, unseen-post revs, irregular posts, active-account entries past the cutoff. */
    expired x = {mdw_ix_sk_enc(r->cutoff), {0}};
    rc = mdw_ixw_walk(r->w, IX_EXPIRY, NULL, 0, expired_visit, &x);
    for (size_t i = 0; i < x.ex.n && !rc; i++)
        rc = expire_one(r, &x.ex.a[i], nposts, nrecords);
    mdw_ix_kvlist_free(&x.ex);
    return rc;
}
