/*
** processor/rules_communities.c — communities and the config records that
** make them: every version of a config is kept (the first fixes the
** hashtag), the effective version is recomputed from them, and a community
** (owner, hashtag) is rebuilt from the owner's effective configs whenever
** one of them changes.
*/
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "processor/rules_int.h"
#include "common/banned.h"

#define MAX_CONFIG_VERSIONS 64

void rules_comm_free(comm *c)
{
    free(c->owner);
    free(c->curi);
    memset(c, 0, sizeof *c);
}

int rules_comm_load(mdw_rules *r, const uint8_t ck[MDW_IX_H], comm *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_community row;
    int rc = mdw_ixw_get_community(r->w, ck, MDW_IX_H, &row);
    if (rc == MDW_ENOTFOUND)
        return 0;
    TRY(rc);
    memcpy(c->ck, ck, MDW_IX_H);
    memcpy(c->tag, row.tag, MDW_IX_TAG);
    c->owner = mdw_ix_str_dup(row.owner);
    c->curi = mdw_ix_str_dup(row.config);
    mdw_ix_hash(row.config.p, row.config.n, c->curih);
    c->found = 1;
    return 0;
}

void rules_curicache_clear(mdw_rules *r)
{
    if (!r->cc_used)
        return;
    for (size_t i = 0; i < CURICACHE_SLOTS; i++) {
        free(r->cc[i].curi);
        rules_comm_free(&r->cc[i].c);
        r->cc[i].used = 0;
        r->cc[i].curi = NULL;
    }
    r->cc_used = 0;
}

static void comm_copy(comm *dst, const comm *src)
{
    *dst = *src;
    dst->owner = src->owner ? xstrdup(src->owner) : NULL;
    dst->curi = src->curi ? xstrdup(src->curi) : NULL;
}

static int comm_by_curi_load(mdw_rules *r, const char *curi, const uint8_t h[MDW_IX_H], comm *c)
{
    memset(c, 0, sizeof *c);
    mdw_ix_config row;
    int rc = mdw_ixw_get_config(r->w, h, MDW_IX_H, &row);
    if (rc == MDW_ENOTFOUND)
        return 0;
    TRY(rc);
    if (!mdw_ix_str_eq(row.uri, curi))
        return 0;
    char *owner = mdw_ix_str_dup(row.owner);
    uint8_t ck[MDW_IX_H];
    mdw_ix_comm_key(owner, row.tag, ck);
    free(owner);
    TRY(rules_comm_load(r, ck, c));
    if (c->found && !rules_str_eq(c->curi, curi))
        rules_comm_free(c);
    return 0;
}

/*
** The open community whose winning config is curi, if any (memberships and
** actions name their community by config URI: one lookup of configs and
** communities per event otherwise).
*/
int rules_comm_by_curi(mdw_rules *r, const char *curi, comm *c)
{
    uint8_t h[MDW_IX_H];
    mdw_ix_hash_str(curi, h);
    curicache_entry *e = &r->cc[h[0] & (CURICACHE_SLOTS - 1)];
    if (e->used && !memcmp(e->h, h, MDW_IX_H) && rules_str_eq(e->curi, curi)) {
        comm_copy(c, &e->c);
        return 0;
    }
    TRY(comm_by_curi_load(r, curi, h, c));
    free(e->curi);
    rules_comm_free(&e->c);
    e->used = 1;
    r->cc_used = 1;
    memcpy(e->h, h, MDW_IX_H);
    e->curi = xstrdup(curi);
    comm_copy(&e->c, c);
    return 0;
}

static int role_add(mdw_rules *r, const uint8_t ck[MDW_IX_H], const cJSON *arr, uint8_t flag)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, rules_as_array(arr))
    {
        if (!cJSON_IsString(e))
            continue;
        uint8_t fl;
        TRY(rules_role_flags(r, ck, e->valuestring, NULL, &fl));
        uint8_t dh[MDW_IX_H], k[MDW_IX_KEY_PAIR];
        mdw_ix_hash_str(e->valuestring, dh);
        mdw_ix_key_pair(k, ck, dh);
        mdw_ix_role row = {(uint8_t)(fl | flag), mdw_ix_s(e->valuestring)};
        mdw_keyset_add(r->roles, k);
        TRY(mdw_ixw_put_role(r->w, k, sizeof k, &row));
    }
    return 0;
}

/* Takes community ck (tag) down: its feed, members, roles, by_tag entry and row. */
static int community_drop(mdw_rules *r, const uint8_t ck[MDW_IX_H], const uint8_t tag[MDW_IX_TAG])
{
    uint8_t bk[MDW_IX_KEY_BY_TAG];
    mdw_ix_key_by_tag(bk, tag, ck);
    TRY(mdw_ixw_del_prefix(r->w, IX_FEED, ck, MDW_IX_H));
    TRY(mdw_ixw_del_prefix(r->w, IX_MEMBERS, ck, MDW_IX_H));
    TRY(mdw_ixw_del_prefix(r->w, IX_ROLES, ck, MDW_IX_H));
    TRY(mdw_ixw_del(r->w, IX_BY_TAG, bk, sizeof bk));
    rules_curicache_clear(r);
    return mdw_ixw_del(r->w, IX_COMMUNITIES, ck, MDW_IX_H);
}

/* The winning config of (owner, tag): the lowest (createdAt, URI) among the owner's effective
 * configs with that hashtag (malloc'd URI, or NULL when none). */
static int winning_config(mdw_rules *r, const char *owner, const uint8_t tag[MDW_IX_TAG],
                          char **best)
{
    *best = NULL;
    uint8_t pre[MDW_IX_H + MDW_IX_TAG];
    mdw_ix_hash_str(owner, pre);
    memcpy(pre + MDW_IX_H, tag, MDW_IX_TAG);
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_OWNER_CONFIGS, pre, sizeof pre, 1, &l));
    int64_t best_t = 0;
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_owner_config oc;
        if (mdw_ix_owner_config_dec(l.a[i].v, l.a[i].vn, &oc) || !mdw_ix_str_eq(oc.owner, owner))
            continue;
        char *us = mdw_ix_str_dup(oc.uri);
        if (!*best || oc.created < best_t || (oc.created == best_t && strcmp(us, *best) < 0)) {
            free(*best);
            *best = us;
            best_t = oc.created;
        } else {
            free(us);
        }
    }
    mdw_ix_kvlist_free(&l);
    return 0;
}

/* Every DID with a membership naming config curi (h: its hash) re-evaluated in c. */
static int members_reeval(mdw_rules *r, const comm *c)
{
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_MEMBERSHIPS, c->curih, MDW_IX_H, 1, &l));
    int rc = 0;
    for (size_t i = 0; i < l.n && !rc; i++) {
        mdw_ix_membership m;
        if (mdw_ix_membership_dec(l.a[i].v, l.a[i].vn, &m))
            continue;
        char *did = mdw_ix_str_dup(m.did);
        rc = rules_member_reeval(r, c, did, NULL);
        free(did);
    }
    mdw_ix_kvlist_free(&l);
    return rc;
}

/*
** Rebuilds community (owner, tag) from the source tables: the winning
** config is the lowest (createdAt, URI) among the owner's effective configs
** with that hashtag; no config = no community (feed unknown).
*/
static int community_rebuild(mdw_rules *r, const char *owner, const uint8_t tag[MDW_IX_TAG])
{
    rules_tagcache_clear(r);
    uint8_t ck[MDW_IX_H];
    mdw_ix_comm_key(owner, tag, ck);
    comm old;
    TRY(rules_comm_load(r, ck, &old));
    int rc = old.found ? community_drop(r, ck, tag) : 0;
    rules_comm_free(&old);
    TRY(rc);

    char *best;
    TRY(winning_config(r, owner, tag, &best));
    if (!best)
        return 0;
    uint8_t bh[MDW_IX_H];
    mdw_ix_hash_str(best, bh);
    mdw_ix_config cfgrow;
    if ((rc = mdw_ixw_get_config(r->w, bh, MDW_IX_H, &cfgrow))) {
        free(best);
        return rc;
    }
    char *json = mdw_ix_str_dup(cfgrow.json);
    cJSON *cfg = cJSON_Parse(json);
    mdw_ix_community row = {
        .owner = mdw_ix_s(owner), .config = mdw_ix_s(best), .json = mdw_ix_s(json)};
    memcpy(row.tag, tag, MDW_IX_TAG);
    rules_curicache_clear(r);
    rc = mdw_ixw_put_community(r->w, ck, MDW_IX_H, &row);
    free(json);
    uint8_t bk[MDW_IX_KEY_BY_TAG];
    mdw_ix_by_tag bt = {0};
    mdw_ix_key_by_tag(bk, tag, ck);
    if (!rc)
        rc = mdw_ixw_put_by_tag(r->w, bk, sizeof bk, &bt);
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(cfg, "moderators");
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(cfg, "blocklist");
    if (!rc)
        rc = role_add(r, ck, mods, IX_ROLE_MOD);
    if (!rc)
        rc = role_add(r, ck, bl, IX_ROLE_BLOCKLIST);

    comm c = {1, {0}, {0}, xstrdup(owner), best, {0}};
    memcpy(c.ck, ck, MDW_IX_H);
    memcpy(c.curih, bh, MDW_IX_H);
    memcpy(c.tag, tag, MDW_IX_TAG);
    /* Candidates: the owner, moderators, and every DID with a membership naming this config. */
    if (!rc)
        rc = rules_member_reeval(r, &c, owner, NULL);
    const cJSON *e;
    cJSON_ArrayForEach(e, rules_as_array(mods))
    {
        if (!rc && cJSON_IsString(e))
            rc = rules_member_reeval(r, &c, e->valuestring, NULL);
    }
    cJSON_Delete(cfg);
    if (!rc)
        rc = members_reeval(r, &c);
    rules_comm_free(&c);
    return rc;
}

/* ---- configs ---- */

/* A config version as the rules keep it. */
typedef struct cfgver {
    int found;
    uint8_t tag[MDW_IX_TAG];
    char rev[MDW_MAX_REV_BYTES + 1];
    char *owner;
} cfgver;

static void cfgver_from_row(const mdw_ix_config *row, cfgver *c)
{
    memset(c, 0, sizeof *c);
    if (row->rev.n > MDW_MAX_REV_BYTES)
        return;
    memcpy(c->tag, row->tag, MDW_IX_TAG);
    memcpy(c->rev, row->rev.p, row->rev.n);
    c->rev[row->rev.n] = '\0';
    c->owner = mdw_ix_str_dup(row->owner);
    c->found = 1;
}

static void cfgver_from_kv(const mdw_ix_kv *e, cfgver *c)
{
    mdw_ix_config row;
    if (mdw_ix_config_dec(e->v, e->vn, &row))
        memset(c, 0, sizeof *c);
    else
        cfgver_from_row(&row, c);
}

/*
** Effective version of config uri: the versions seen (all newer than its
** last delete) are in rev order; the oldest fixes the hashtag, the newest
** with that hashtag is in effect. *h0 receives the fixed hashtag.
*/
static int config_recompute(mdw_rules *r, const uint8_t h[MDW_IX_H], const char *uri,
                            uint8_t h0[MDW_IX_TAG], int *has_h0)
{
    *has_h0 = 0;
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_CONFIG_VERS, h, MDW_IX_H, 1, &l));
    const mdw_ix_kv *eff = NULL;
    mdw_ix_config effrow; /* points into l */
    for (size_t i = 0; i < l.n; i++) {
        mdw_ix_config row;
        if (mdw_ix_config_dec(l.a[i].v, l.a[i].vn, &row) || !mdw_ix_str_eq(row.uri, uri))
            continue;
        if (!*has_h0) {
            memcpy(h0, row.tag, MDW_IX_TAG);
            *has_h0 = 1;
        }
        if (!memcmp(row.tag, h0, MDW_IX_TAG)) {
            eff = &l.a[i];
            effrow = row;
        }
    }
    cfgver old = {0}, nw = {0};
    mdw_ix_config row;
    int rc = mdw_ixw_get_config(r->w, h, MDW_IX_H, &row);
    if (rc == 0)
        cfgver_from_row(&row, &old);
    else if (rc != MDW_ENOTFOUND && rc != MDW_ECORRUPT)
        goto out;
    rc = 0;
    if (eff)
        cfgver_from_kv(eff, &nw);
    if (old.found && nw.found && !strcmp(old.rev, nw.rev))
        goto out; /* unchanged */
    if (old.found) {
        uint8_t ok[MDW_IX_KEY_OWNER_CONFIG];
        mdw_ix_key_owner_config(ok, old.owner, old.tag, h);
        rules_curicache_clear(r);
        if ((rc = mdw_ixw_del(r->w, IX_OWNER_CONFIGS, ok, sizeof ok)) ||
            (rc = mdw_ixw_del(r->w, IX_CONFIGS, h, MDW_IX_H)))
            goto out;
    }
    if (nw.found) {
        rules_curicache_clear(r);
        if ((rc = mdw_ixw_put_config(r->w, h, MDW_IX_H, &effrow)))
            goto out;
        uint8_t ok[MDW_IX_KEY_OWNER_CONFIG];
        mdw_ix_key_owner_config(ok, nw.owner, nw.tag, h);
        mdw_ix_owner_config oc = {effrow.created, mdw_ix_s(uri), mdw_ix_s(nw.owner)};
        if ((rc = mdw_ixw_put_owner_config(r->w, ok, sizeof ok, &oc)))
            goto out;
    }
    if (old.found &&
        (!nw.found || memcmp(old.tag, nw.tag, MDW_IX_TAG) || strcmp(old.owner, nw.owner)))
        if ((rc = community_rebuild(r, old.owner, old.tag)))
            goto out;
    if (nw.found)
        rc = community_rebuild(r, nw.owner, nw.tag);
out:
    free(old.owner);
    free(nw.owner);
    mdw_ix_kvlist_free(&l);
    return rc;
}

static int parse_hashtag(const cJSON *record, uint8_t tag[MDW_IX_TAG])
{
    const cJSON *ht = cJSON_GetObjectItemCaseSensitive(record, "hashtag");
    if (!cJSON_IsString(ht))
        return MDW_EINVALID;
    return mdw_hashtag_parse(ht->valuestring, strlen(ht->valuestring), tag);
}

/* A config delete: the versions up to its rev go, the record becomes a tombstone. */
static int config_delete(mdw_rules *r, const mdw_event *ev, rec *c)
{
    const uint8_t *rk = ev->rec_key, *h = rk + 8;
    mdw_ix_kvlist l;
    int rc = mdw_ixw_collect(r->w, IX_CONFIG_VERS, h, MDW_IX_H, 1, &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        cfgver v;
        cfgver_from_kv(&l.a[i], &v);
        if (!v.found || rules_rev_cmp(v.rev, ev->rev) < 0)
            rc = mdw_ixw_del(r->w, IX_CONFIG_VERS, l.a[i].k, l.a[i].kn);
        free(v.owner);
    }
    mdw_ix_kvlist_free(&l);
    if (!rc)
        rc = rules_rec_store(r, rk, ev->uri, c, IX_KIND_CONFIG, IX_STATE_TOMB, ev->time_us, ev->rev,
                             NULL, NULL, NULL);
    return rc;
}

int rules_apply_config(mdw_rules *r, const mdw_event *ev, mdw_rules_result *res)
{
    const uint8_t *rk = ev->rec_key;
    const uint8_t *h = rk + 8; /* H(uri) */
    rec c;
    int rc = rules_rec_load(r, rk, ev->uri, &c);
    if (rc == MDW_ECOLLISION)
        return rules_refuse(res, MDW_RR_HASH_COLLISION);
    TRY(rc);
    const char *tomb = c.found && c.state == IX_STATE_TOMB ? c.rev : NULL;
    if (tomb && rules_rev_cmp(ev->rev, tomb) <= 0) {
        rules_rec_free(&c);
        return rules_noop(res, MDW_RR_TOMBSTONED);
    }
    uint8_t h0[MDW_IX_TAG];
    int has_h0;
    if (ev->op == MDW_OP_DELETE) {
        rc = config_delete(r, ev, &c);
        rules_rec_free(&c);
        TRY(rc);
        TRY(config_recompute(r, h, ev->uri, h0, &has_h0));
        return rules_applied(res, MDW_RR_CONFIG_DELETED);
    }
    uint8_t tag[MDW_IX_TAG];
    if (parse_hashtag(ev->record, tag)) {
        rules_rec_free(&c);
        return rules_refuse(res, MDW_RR_APP_RULE);
    }
    if (ev->created_rc) {
        rules_rec_free(&c);
        return rules_refuse(res, MDW_RR_BAD_DATETIME);
    }
    uint8_t vk[MDW_IX_KEY_CONFIG_VER];
    mdw_ix_key_config_ver(vk, h, ev->rev);
    if ((rc = mdw_ixw_has(r->w, IX_CONFIG_VERS, vk, sizeof vk)) != 0) {
        rules_rec_free(&c);
        return rc == 1 ? rules_noop(res, MDW_RR_DUPLICATE) : rc;
    }
    char *json = cJSON_PrintUnformatted(ev->record);
    mdw_ix_config row = {.created = ev->created_us,
                         .owner = mdw_ix_s(ev->did),
                         .uri = mdw_ix_s(ev->uri),
                         .rev = mdw_ix_s(ev->rev),
                         .json = mdw_ix_s(json ? json : "{}")};
    memcpy(row.tag, tag, MDW_IX_TAG);
    rc = mdw_ixw_put_config_ver(r->w, vk, sizeof vk, &row);
    free(json);
    /* A bare "exists" marker (no rev, no time): the versions carry the content. */
    if (!rc && !c.found)
        rc = rules_rec_store(r, rk, ev->uri, &c, IX_KIND_CONFIG, IX_STATE_LIVE, 0, "", NULL, NULL,
                             NULL);
    rules_rec_free(&c);
    TRY(rc);
    /* Bound the history an owner can pile up: keep the oldest and the newest versions. */
    mdw_ix_kvlist l;
    TRY(mdw_ixw_collect(r->w, IX_CONFIG_VERS, h, MDW_IX_H, 0, &l));
    for (size_t i = 1; !rc && l.n > MAX_CONFIG_VERSIONS && i < l.n - (MAX_CONFIG_VERSIONS - 1); i++)
        rc = mdw_ixw_del(r->w, IX_CONFIG_VERS, l.a[i].k, l.a[i].kn);
    mdw_ix_kvlist_free(&l);
    TRY(rc);
    TRY(config_recompute(r, h, ev->uri, h0, &has_h0));
    if (has_h0 && memcmp(h0, tag, MDW_IX_TAG)) {
        mdw_warn("processor", "config update changes the hashtag: refused", "uri=\"%s\" rev=%s",
                 ev->uri, ev->rev);
        return rules_refuse(res, MDW_RR_HASHTAG_CHANGE);
    }
    return rules_applied(res, MDW_RR_CONFIG);
}
