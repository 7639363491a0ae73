/*
** processor/rules_accounts.c — account states: an account that is
** deactivated, taken down, suspended or deleted has its posts out of every
** feed until it is active again (the newest state by seq wins).
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "processor/rules_int.h"
#include "common/banned.h"

int rules_account_visible(mdw_rules *r, const char *did, const uint8_t dh[MDW_IX_H], int *vis)
{
    *vis = 1;
    if (!mdw_keyset_has(r->hidden_accounts, dh))
        return 0; /* never stored as not visible */
    mdw_ix_account row;
    int rc = mdw_ixw_get_account(r->w, dh, MDW_IX_H, &row);
    if (rc == MDW_ENOTFOUND || rc == MDW_ECORRUPT)
        return 0;
    TRY(rc);
    if (mdw_ix_str_eq(row.did, did))
        *vis = row.visible;
    return 0;
}

static int is_hiding_status(const char *s)
{
    return s && (!strcmp(s, "deactivated") || !strcmp(s, "takendown") || !strcmp(s, "suspended") ||
                 !strcmp(s, "deleted"));
}

/* Every post of the account re-placed (its visibility changed). */
static int account_posts_replace(mdw_rules *r, const mdw_event *ev)
{
    size_t n = mdw_authors_list(r->authors, ev->did_hash, NULL, &r->al, &r->alcap);
    int rc = 0;
    /* (post, tag) pairs: a post with two tags is placed twice, the second time a no-op. */
    for (size_t i = 0; i < n && !rc; i++) {
        const uint8_t *rk = r->al[i].rk;
        post p;
        if ((rc = rules_post_load(r, rk, &p)) == 0 && p.found && rules_str_eq(p.author, ev->did) &&
            (rc = rules_post_unplace(r, rk, &p)) == 0)
            rc = rules_post_place(r, rk, &p);
        rules_post_free(&p);
    }
    return rc;
}

int rules_apply_account(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *dh = ev->did_hash;
    int64_t seq = ev->seq ? ev->seq : ev->time_us;
    int64_t t = ev->time_us > 0 ? ev->time_us : r->now;
    int vis = ev->active || !is_hiding_status(ev->status);
    int found = 0, old_vis = 1;
    int64_t old_seq = 0, old_t = 0;
    mdw_ix_account old;
    int rc = mdw_ixw_get_account(r->w, dh, MDW_IX_H, &old);
    if (rc == 0) {
        if (!mdw_ix_str_eq(old.did, ev->did)) {
            rules_collision("accounts", ev->did, old.did);
            return rules_refuse(res, MDW_RR_HASH_COLLISION);
        }
        old_vis = old.visible;
        old_seq = old.seq;
        old_t = old.time;
        found = 1;
    } else if (rc != MDW_ENOTFOUND) {
        return rc;
    }
    if (found && seq <= old_seq)
        return rules_noop(res, seq == old_seq ? MDW_RR_DUPLICATE : MDW_RR_STALE_SEQ);
    uint8_t ek[MDW_IX_KEY_EXP_ACCOUNT];
    mdw_ix_expiry e = {IX_EXP_ACCOUNT};
    if (found && old_vis) {
        mdw_ix_key_expiry(ek, old_t, dh, MDW_IX_H);
        TRY(mdw_ixw_del(r->w, IX_EXPIRY, ek, sizeof ek));
    }
    mdw_ix_account row = {(uint8_t)vis, seq, t,
                          mdw_ix_s(ev->status ? ev->status : (ev->active ? "active" : "inactive")),
                          mdw_ix_s(ev->did)};
    if (!vis)
        mdw_keyset_add(r->hidden_accounts, dh);
    TRY(mdw_ixw_put_account(r->w, dh, MDW_IX_H, &row));
    /* An active account's entry only matters against reordering: it expires with retention. */
    if (vis) {
        mdw_ix_key_expiry(ek, t, dh, MDW_IX_H);
        TRY(mdw_ixw_put_expiry(r->w, ek, sizeof ek, &e));
    }
    if (vis != old_vis)
        TRY(account_posts_replace(r, ev));
    return rules_applied(res, vis ? MDW_RR_ACCOUNT_VISIBLE : MDW_RR_ACCOUNT_HIDDEN);
}
