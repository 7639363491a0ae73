/*
** processor/rules_members.c — membership: who is a member of a community
** now (the owner and moderators always, blocklisted or blocked users never,
** anyone else through an active membership record naming its winning
** config), the members table that caches the answer, and the membership
** rule.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "processor/rules_int.h"
#include "common/banned.h"

int rules_role_flags(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did, const uint8_t *dh,
                     uint8_t *flags)
{
    *flags = 0;
    uint8_t h[MDW_IX_H], k[MDW_IX_KEY_PAIR];
    if (!dh) {
        mdw_ix_hash_str(did, h);
        dh = h;
    }
    mdw_ix_key_pair(k, ck, dh);
    if (!mdw_keyset_has(r->roles, k))
        return 0; /* neither moderator nor blocklisted */
    mdw_ix_role row;
    int rc = mdw_ixw_get_role(r->w, k, sizeof k, &row);
    if (rc == MDW_ENOTFOUND || rc == MDW_ECORRUPT)
        return 0;
    TRY(rc);
    if (mdw_ix_str_eq(row.did, did))
        *flags = row.flags;
    return 0;
}

static int is_member(mdw_rules *r, const comm *c, const char *did, const uint8_t dh[MDW_IX_H],
                     int *m)
{
    *m = 0;
    uint8_t fl;
    TRY(rules_role_flags(r, c->ck, did, dh, &fl));
    if (fl & IX_ROLE_BLOCKLIST)
        return 0;
    int act = 0;
    TRY(rules_mod_decide(r, c, 'u', did, &act));
    if (act == IX_ACT_BLOCK)
        return 0;
    if (rules_str_eq(did, c->owner) || (fl & IX_ROLE_MOD)) {
        *m = 1;
        return 0;
    }
    uint8_t pre[MDW_IX_KEY_PAIR];
    mdw_ix_key_pair(pre, c->curih, dh);
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_MEMBERSHIPS, pre, sizeof pre, 1, &l));
    for (size_t i = 0; i < l.n && !*m; i++) {
        mdw_ix_membership ms;
        if (!mdw_ix_membership_dec(l.a[i].v, l.a[i].vn, &ms) && ms.active &&
            mdw_ix_str_eq(ms.did, did) && mdw_ix_str_eq(ms.config, c->curi))
            *m = 1;
    }
    mdw_ix_kvlist_free(&l);
    return 0;
}

int rules_members_has(mdw_rules *r, const uint8_t ck[MDW_IX_H], const char *did,
                      const uint8_t dh[MDW_IX_H], int *has)
{
    *has = 0;
    uint8_t k[MDW_IX_KEY_PAIR];
    mdw_ix_key_pair(k, ck, dh);
    if (!mdw_keyset_has(r->members, k))
        return 0;
    mdw_ix_member row;
    int rc = mdw_ixw_get_member(r->w, k, sizeof k, &row);
    if (rc == MDW_ENOTFOUND || rc == MDW_ECORRUPT)
        return 0;
    TRY(rc);
    *has = mdw_ix_str_eq(row.did, did);
    return 0;
}

int rules_member_reeval(mdw_rules *r, const comm *c, const char *did, const uint8_t *dh_in)
{
    int m, has;
    uint8_t dh[MDW_IX_H];
    if (dh_in)
        memcpy(dh, dh_in, MDW_IX_H);
    else
        mdw_ix_hash_str(did, dh);
    TRY(is_member(r, c, did, dh, &m));
    TRY(rules_members_has(r, c->ck, did, dh, &has));
    if (m == has)
        return 0;
    uint8_t k[MDW_IX_KEY_PAIR];
    mdw_ix_key_pair(k, c->ck, dh);
    if (m) {
        mdw_ix_member row = {mdw_ix_s(did)};
        mdw_keyset_add(r->members, k);
        TRY(mdw_ixw_put_member(r->w, k, sizeof k, &row));
    } else {
        TRY(mdw_ixw_del(r->w, IX_MEMBERS, k, sizeof k));
    }
    size_t n = mdw_authors_list(r->authors, dh, c->tag, &r->al, &r->alcap);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const uint8_t *rk = r->al[i].rk;
        post p;
        if ((rc = rules_post_load(r, rk, &p)) == 0 && p.found && rules_str_eq(p.author, did))
            rc = rules_post_eval(r, c, rk, &p, 0);
        rules_post_free(&p);
    }
    return rc;
}

static int reeval_curi_member(mdw_rules *r, const char *curi, const char *did,
                              const uint8_t dh[MDW_IX_H])
{
    comm c;
    TRY(rules_comm_by_curi(r, curi, &c));
    int rc = c.found ? rules_member_reeval(r, &c, did, dh) : 0;
    rules_comm_free(&c);
    return rc;
}

int rules_apply_membership(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key, *dh = ev->did_hash;
    const uint8_t *h = rk + 8; /* H(uri) */
    rec c;
    int rc = rules_rec_load(r, rk, ev->uri, &c);
    if (rc == MDW_ECOLLISION)
        return rules_refuse(res, MDW_RR_HASH_COLLISION);
    TRY(rc);
    if (c.found && rules_rev_cmp(ev->rev, c.rev) <= 0) {
        mdw_rule_reason why = rules_noop_reason(&c, ev->rev);
        rules_rec_free(&c);
        return rules_noop(res, why);
    }
    const char *curi = NULL;
    int active = 1;
    if (ev->op != MDW_OP_DELETE) {
        const cJSON *cu = cJSON_GetObjectItemCaseSensitive(ev->record, "community");
        const cJSON *ac = cJSON_GetObjectItemCaseSensitive(ev->record, "active");
        if (!cJSON_IsString(cu) || strlen(cu->valuestring) > MDW_MAX_URI_BYTES) {
            rules_rec_free(&c);
            return rules_refuse(res, MDW_RR_BAD_COMMUNITY);
        }
        curi = cu->valuestring;
        active = !cJSON_IsFalse(ac);
    }
    char *old_curi = c.state == IX_STATE_LIVE ? c.aux1 : NULL;
    if (old_curi) {
        uint8_t ch[MDW_IX_H], k[MDW_IX_KEY_TRIPLE];
        mdw_ix_hash_str(old_curi, ch);
        mdw_ix_key_triple(k, ch, dh, h);
        rc = mdw_ixw_del(r->w, IX_MEMBERSHIPS, k, sizeof k);
    }
    if (!rc && curi) {
        uint8_t ch[MDW_IX_H], k[MDW_IX_KEY_TRIPLE];
        mdw_ix_hash_str(curi, ch);
        mdw_ix_key_triple(k, ch, dh, h);
        mdw_ix_membership row = {(uint8_t)active, mdw_ix_s(ev->did), mdw_ix_s(ev->uri),
                                 mdw_ix_s(curi)};
        rc = mdw_ixw_put_membership(r->w, k, sizeof k, &row);
    }
    if (!rc)
        rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_MEMBERSHIP,
                             curi ? IX_STATE_LIVE : IX_STATE_TOMB, ev->time_us, ev->rev, curi, NULL,
                             NULL);
    if (!rc && old_curi)
        rc = reeval_curi_member(r, old_curi, ev->did, dh);
    if (!rc && curi && !rules_str_eq(curi, old_curi))
        rc = reeval_curi_member(r, curi, ev->did, dh);
    rules_rec_free(&c);
    TRY(rc);
    return rules_applied(res, curi ? MDW_RR_MEMBERSHIP : MDW_RR_MEMBERSHIP_DELETED);
}
