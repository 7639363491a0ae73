/*
** processor/rules_moderation.c — moderation actions: the deciding action on
** a target (a post or a user) in a community, and the action rule, which
** re-evaluates the targets an action names before and after it changes.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "processor/rules_int.h"
#include "common/banned.h"

/* The stored target key ("p:<uri>", "u:<did>") equals kind ':' target. */
static int tkey_eq(mdw_ix_str tk, char kind, const char *target, size_t tn)
{
    return tk.n == tn + 2 && tk.p[0] == kind && tk.p[1] == ':' && !memcmp(tk.p + 2, target, tn);
}

/*
** The deciding action on target tkey ("p:<post uri>" or "u:<did>") in
** community c: among actions naming c's config whose author is the owner or
** a moderator now, the latest (createdAt, URI). 0 when none.
*/
int rules_mod_decide(mdw_rules *r, const comm *c, char kind, const char *target, int *act)
{
    *act = 0;
    uint8_t pre[2 * MDW_IX_H];
    size_t tn = strlen(target);
    const char kp[2] = {kind, ':'};
    memcpy(pre, c->curih, MDW_IX_H);
    mdw_ix_hash2(kp, 2, target, tn, pre + MDW_IX_H);
    if (!mdw_keyset_has(r->mod_targets, pre))
        return 0; /* no action on this target in c, ever */
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_MODERATION, pre, sizeof pre, 1, &l));
    int64_t best_t = 0;
    char *best_u = NULL;
    int rc = 0;
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_moderation m;
        if (mdw_ix_moderation_dec(l.a[i].v, l.a[i].vn, &m) ||
            !tkey_eq(m.target, kind, target, tn) || !mdw_ix_str_eq(m.config, c->curi))
            continue;
        char *as = mdw_ix_str_dup(m.author);
        uint8_t fl = 0;
        int ok = rules_str_eq(as, c->owner);
        if (!ok && (rc = rules_role_flags(r, c->ck, as, NULL, &fl)) == 0)
            ok = fl & IX_ROLE_MOD;
        free(as);
        if (rc)
            break;
        if (!ok)
            continue;
        char *us = mdw_ix_str_dup(m.uri);
        if (!best_u || m.created > best_t || (m.created == best_t && strcmp(us, best_u) > 0)) {
            free(best_u);
            best_u = us;
            best_t = m.created;
            *act = m.action;
        } else {
            free(us);
        }
    }
    free(best_u);
    mdw_ix_kvlist_free(&l);
    return rc;
}

static int target_reeval(mdw_rules *r, const char *curi, const char *tkey)
{
    comm c;
    TRY(rules_comm_by_curi(r, curi, &c));
    int rc = 0;
    if (c.found && tkey[0] == 'u') {
        rc = rules_member_reeval(r, &c, tkey + 2, NULL);
    } else if (c.found) {
        uint8_t prk[MDW_IX_RK];
        mdw_ix_rec_key(tkey + 2, prk);
        post p;
        if ((rc = rules_post_load(r, prk, &p)) == 0 && (!p.found || rules_str_eq(p.uri, tkey + 2)))
            rc = rules_post_eval(r, &c, prk, &p, 0);
        rules_post_free(&p);
    }
    rules_comm_free(&c);
    return rc;
}

/* moderation key: H(config uri) | H(target key) | H(uri). */
static void mod_key(uint8_t k[MDW_IX_KEY_TRIPLE], const char *curi, const char *tkey,
                    const uint8_t h[MDW_IX_H])
{
    uint8_t ch[MDW_IX_H], th[MDW_IX_H];
    mdw_ix_hash_str(curi, ch);
    mdw_ix_hash_str(tkey, th);
    mdw_ix_key_triple(k, ch, th, h);
}

int rules_apply_action(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    const uint8_t *h = rk + 8; /* H(uri) */
    char *tkey = NULL;
    const char *curi = NULL;
    uint8_t act = 0;
    if (ev->op != MDW_OP_DELETE) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev->record, "action");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->record, "target");
        const cJSON *cu = cJSON_GetObjectItemCaseSensitive(ev->record, "community");
        const cJSON *tu = cJSON_GetObjectItemCaseSensitive(t, "uri");
        const cJSON *td = cJSON_GetObjectItemCaseSensitive(t, "did");
        const char *as = cJSON_IsString(a) ? a->valuestring : "";
        act = !strcmp(as, "hide_post")      ? IX_ACT_HIDE
              : !strcmp(as, "unhide_post")  ? IX_ACT_UNHIDE
              : !strcmp(as, "block_user")   ? IX_ACT_BLOCK
              : !strcmp(as, "unblock_user") ? IX_ACT_UNBLOCK
                                            : 0;
        int post_act = act == IX_ACT_HIDE || act == IX_ACT_UNHIDE;
        if (!act || !cJSON_IsString(cu))
            return rules_refuse(res, MDW_RR_BAD_ACTION);
        if (post_act && cJSON_IsString(tu) && strlen(tu->valuestring) <= MDW_MAX_URI_BYTES)
            tkey = xasprintf("p:%s", tu->valuestring);
        else if (!post_act && cJSON_IsString(td) && strlen(td->valuestring) <= MDW_MAX_DID_BYTES)
            tkey = xasprintf("u:%s", td->valuestring);
        else
            return rules_refuse(res, MDW_RR_BAD_TARGET);
        if (ev->created_rc) {
            free(tkey);
            return rules_refuse(res, MDW_RR_BAD_DATETIME);
        }
        curi = cu->valuestring;
    }
    rec c;
    int rc = rules_rec_load(r, rk, ev->uri, &c);
    if (rc) {
        free(tkey);
        if (rc == MDW_ECOLLISION)
            return rules_refuse(res, MDW_RR_HASH_COLLISION);
        return rc;
    }
    if (c.found && rules_rev_cmp(ev->rev, c.rev) <= 0) {
        mdw_rule_reason why = rules_noop_reason(&c, ev->rev);
        rules_rec_free(&c);
        free(tkey);
        return rules_noop(res, why);
    }
    const char *old_curi = c.state == IX_STATE_LIVE ? c.aux1 : NULL;
    const char *old_tkey = c.state == IX_STATE_LIVE ? c.aux2 : NULL;
    if (old_curi && old_tkey) {
        uint8_t k[MDW_IX_KEY_TRIPLE];
        mod_key(k, old_curi, old_tkey, h);
        rc = mdw_ixw_del(r->w, IX_MODERATION, k, sizeof k);
    }
    if (!rc && curi) {
        uint8_t k[MDW_IX_KEY_TRIPLE];
        mod_key(k, curi, tkey, h);
        mdw_ix_moderation row = {ev->created_us,    act,
                                 mdw_ix_s(ev->did), mdw_ix_s(tkey),
                                 mdw_ix_s(ev->uri), mdw_ix_s(curi)};
        mdw_keyset_add(r->mod_targets, k);
        rc = mdw_ixw_put_moderation(r->w, k, sizeof k, &row);
    }
    if (!rc)
        rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_ACTION,
                             curi ? IX_STATE_LIVE : IX_STATE_TOMB, ev->time_us, ev->rev, curi, tkey,
                             NULL);
    if (!rc && old_curi && old_tkey)
        rc = target_reeval(r, old_curi, old_tkey);
    if (!rc && curi && !(rules_str_eq(curi, old_curi) && rules_str_eq(tkey, old_tkey)))
        rc = target_reeval(r, curi, tkey);
    rules_rec_free(&c);
    free(tkey);
    TRY(rc);
    return rules_applied(res, curi ? MDW_RR_MODERATION : MDW_RR_MODERATION_DELETED);
}
