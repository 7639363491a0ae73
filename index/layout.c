/*
** index/layout.c — the on-disk layout: table descriptors, key builders and
** one encode / decode per table (index/index_write.h). Format 5: these
** produce byte for byte what the hand-sequenced writers of formats 3 to 5
** wrote, so no index needs rewriting.
*/
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "index/index_impl.h"
#include "common/banned.h"

/*
** Cell for cell the table in docs/index.md ("Tables"); test_index
** layout_table_matches_docs fails when either side changes alone.
*/
const mdw_ix_table_desc mdw_ix_tables[IX_NTABLES] = {
    [IX_META] = {"meta",
                 "`format`, `last_seq`, `retention_us`, `tombstones`, `posts`, `sweep_from`",
                 "the value", "u64", "", 0},
    [IX_RECORDS] = {"records", "RK(uri) = rkey time · H(uri)",
                    "kind, state (live / tombstone / none), first seen, rev, uri, aux1, aux2; a "
                    "live tagged post adds sort key, createdAt, tags, cid",
                    "u8 u8 i64 str str str str; i64 i64 tags str", "source", MDW_IX_RK},
    [IX_CONFIGS] = {"configs", "H(uri)", "the effective version (a config_vers row)",
                    "tag i64 str str str str", "derived from config_vers", MDW_IX_H},
    [IX_CONFIG_VERS] = {"config_vers", "H(uri) · rev",
                        "hashtag, createdAt, owner, uri, rev, record JSON",
                        "tag i64 str str str str", "source: every version seen",
                        MDW_IX_KEY_CONFIG_VER},
    [IX_OWNER_CONFIGS] = {"owner_configs", "H(owner) · tag · H(uri)", "createdAt, uri, owner",
                          "i64 str str", "derived: winner selection", MDW_IX_KEY_OWNER_CONFIG},
    [IX_COMMUNITIES] = {"communities", "H(owner ‖ tag)",
                        "tag, owner, winning config uri, config JSON", "tag str str str", "derived",
                        MDW_IX_H},
    [IX_BY_TAG] = {"by_tag", "tag · H(community)", "—", "-", "derived", MDW_IX_KEY_BY_TAG},
    [IX_ROLES] = {"roles", "H(community) · H(did)", "moderator / blocklisted flags, did", "u8 str",
                  "derived from the winning config", MDW_IX_KEY_PAIR},
    [IX_MEMBERSHIPS] = {"memberships", "H(config uri) · H(did) · H(uri)",
                        "active, did, uri, config uri", "u8 str str str", "source",
                        MDW_IX_KEY_TRIPLE},
    [IX_MODERATION] = {"moderation", "H(config uri) · H(target) · H(uri)",
                       "createdAt, action, author, target, uri, config uri",
                       "i64 u8 str str str str", "source", MDW_IX_KEY_TRIPLE},
    [IX_ACCOUNTS] = {"accounts", "H(did)", "visible, seq, time, status, did", "u8 i64 i64 str str",
                     "source", MDW_IX_H},
    [IX_MEMBERS] = {"members", "H(community) · H(did)", "did", "str", "derived", MDW_IX_KEY_PAIR},
    [IX_FEED] = {"feed", "H(community) · sortkey · H(uri)", "uri", "str",
                 "derived: visible posts only", MDW_IX_KEY_FEED},
    [IX_EXPIRY] = {"expiry",
                   "time · RK(uri); time · RK(uri) · `p` for posts whose sort key is over an hour "
                   "below their rkey time (or whose rkey is not a TID); time · H(did) for accounts",
                   "table id", "u8", "tombstones and other entries that retention removes", 0},
};

void mdw_ix_hash_str(const char *s, uint8_t out[MDW_IX_H])
{
    mdw_ix_hash(s, strlen(s), out);
}

/* ---- keys ---- */

void mdw_ix_key_config_ver(uint8_t out[MDW_IX_KEY_CONFIG_VER], const uint8_t h[MDW_IX_H],
                           const char *rev)
{
    size_t n = strlen(rev);
    memset(out, 0, MDW_IX_KEY_CONFIG_VER);
    memcpy(out, h, MDW_IX_H);
    memcpy(out + MDW_IX_H, rev, n < MDW_IX_REV_KEY ? n : MDW_IX_REV_KEY);
}

void mdw_ix_key_owner_config(uint8_t out[MDW_IX_KEY_OWNER_CONFIG], const char *owner,
                             const uint8_t tag[MDW_IX_TAG], const uint8_t h[MDW_IX_H])
{
    mdw_ix_hash_str(owner, out);
    memcpy(out + MDW_IX_H, tag, MDW_IX_TAG);
    memcpy(out + MDW_IX_H + MDW_IX_TAG, h, MDW_IX_H);
}

void mdw_ix_key_by_tag(uint8_t out[MDW_IX_KEY_BY_TAG], const uint8_t tag[MDW_IX_TAG],
                       const uint8_t ck[MDW_IX_H])
{
    memcpy(out, tag, MDW_IX_TAG);
    memcpy(out + MDW_IX_TAG, ck, MDW_IX_H);
}

void mdw_ix_key_pair(uint8_t out[MDW_IX_KEY_PAIR], const uint8_t a[MDW_IX_H],
                     const uint8_t b[MDW_IX_H])
{
    memcpy(out, a, MDW_IX_H);
    memcpy(out + MDW_IX_H, b, MDW_IX_H);
}

void mdw_ix_key_triple(uint8_t out[MDW_IX_KEY_TRIPLE], const uint8_t a[MDW_IX_H],
                       const uint8_t b[MDW_IX_H], const uint8_t c[MDW_IX_H])
{
    memcpy(out, a, MDW_IX_H);
    memcpy(out + MDW_IX_H, b, MDW_IX_H);
    memcpy(out + 2 * MDW_IX_H, c, MDW_IX_H);
}

void mdw_ix_key_feed(uint8_t out[MDW_IX_KEY_FEED], const uint8_t ck[MDW_IX_H], int64_t sk,
                     const uint8_t h[MDW_IX_H])
{
    memcpy(out, ck, MDW_IX_H);
    mdw_ix_put_be64(out + MDW_IX_H, mdw_ix_sk_enc(sk));
    memcpy(out + MDW_IX_H + 8, h, MDW_IX_H);
}

void mdw_ix_key_expiry(uint8_t *out, int64_t t, const uint8_t *id, size_t idn)
{
    mdw_ix_put_be64(out, mdw_ix_sk_enc(t));
    memcpy(out + 8, id, idn);
}

void mdw_ix_key_expiry_post(uint8_t out[MDW_IX_KEY_EXP_POST], int64_t sk,
                            const uint8_t rk[MDW_IX_RK])
{
    mdw_ix_key_expiry(out, sk, rk, MDW_IX_RK);
    out[8 + MDW_IX_RK] = 'p';
}

/* ---- strings ---- */

mdw_ix_str mdw_ix_s(const char *s)
{
    mdw_ix_str r = {s ? s : "", s ? strlen(s) : 0};
    return r;
}

static void enc_s(mdw_ix_enc *e, mdw_ix_str s)
{
    mdw_ix_enc_str(e, s.p ? s.p : "", s.p ? s.n : 0);
}

static void dec_begin(mdw_ix_dec *d, const void *p, size_t n)
{
    d->p = p;
    d->end = d->p + n;
    d->err = 0;
}

static int dec_end(const mdw_ix_dec *d)
{
    return d->err ? MDW_ECORRUPT : 0;
}

static void dec_tag(mdw_ix_dec *d, uint8_t tag[MDW_IX_TAG])
{
    const uint8_t *t = mdw_ix_dec_bytes(d, MDW_IX_TAG);
    if (t)
        memcpy(tag, t, MDW_IX_TAG);
    else
        memset(tag, 0, MDW_IX_TAG);
}

/* ---- rows ---- */

void mdw_ix_meta_enc(const mdw_ix_meta *row, mdw_ix_enc *e)
{
    mdw_ix_enc_i64(e, (int64_t)row->value);
}

int mdw_ix_meta_dec(const void *p, size_t n, mdw_ix_meta *row)
{
    if (n != 8)
        return MDW_ECORRUPT;
    row->value = mdw_ix_get_be64(p);
    return 0;
}

void mdw_ix_record_enc(const mdw_ix_record *row, mdw_ix_enc *e)
{
    mdw_ix_enc_u8(e, row->kind);
    mdw_ix_enc_u8(e, row->state);
    mdw_ix_enc_i64(e, row->first_seen);
    enc_s(e, row->rev);
    enc_s(e, row->uri);
    enc_s(e, row->aux1);
    enc_s(e, row->aux2);
    if (mdw_ix_record_is_post(row)) {
        mdw_ix_enc_i64(e, row->sortkey);
        mdw_ix_enc_i64(e, row->created);
        mdw_ix_enc_u8(e, row->ntags);
        mdw_ix_enc_bytes(e, row->tags, (size_t)row->ntags * MDW_IX_TAG);
        enc_s(e, row->cid);
    }
}

int mdw_ix_record_dec(const void *p, size_t n, mdw_ix_record *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    memset(row, 0, sizeof *row);
    row->kind = mdw_ix_dec_u8(&d);
    row->state = mdw_ix_dec_u8(&d);
    row->first_seen = mdw_ix_dec_i64(&d);
    row->rev = mdw_ix_dec_str(&d);
    row->uri = mdw_ix_dec_str(&d);
    row->aux1 = mdw_ix_dec_str(&d);
    row->aux2 = mdw_ix_dec_str(&d);
    if (!d.err && mdw_ix_record_is_post(row)) {
        row->sortkey = mdw_ix_dec_i64(&d);
        row->created = mdw_ix_dec_i64(&d);
        row->ntags = mdw_ix_dec_u8(&d);
        row->tags = mdw_ix_dec_bytes(&d, (size_t)row->ntags * MDW_IX_TAG);
        row->cid = mdw_ix_dec_str(&d);
    }
    return dec_end(&d);
}

void mdw_ix_config_enc(const mdw_ix_config *row, mdw_ix_enc *e)
{
    mdw_ix_enc_bytes(e, row->tag, MDW_IX_TAG);
    mdw_ix_enc_i64(e, row->created);
    enc_s(e, row->owner);
    enc_s(e, row->uri);
    enc_s(e, row->rev);
    enc_s(e, row->json);
}

int mdw_ix_config_dec(const void *p, size_t n, mdw_ix_config *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    dec_tag(&d, row->tag);
    row->created = mdw_ix_dec_i64(&d);
    row->owner = mdw_ix_dec_str(&d);
    row->uri = mdw_ix_dec_str(&d);
    row->rev = mdw_ix_dec_str(&d);
    row->json = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_owner_config_enc(const mdw_ix_owner_config *row, mdw_ix_enc *e)
{
    mdw_ix_enc_i64(e, row->created);
    enc_s(e, row->uri);
    enc_s(e, row->owner);
}

int mdw_ix_owner_config_dec(const void *p, size_t n, mdw_ix_owner_config *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->created = mdw_ix_dec_i64(&d);
    row->uri = mdw_ix_dec_str(&d);
    row->owner = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_community_enc(const mdw_ix_community *row, mdw_ix_enc *e)
{
    mdw_ix_enc_bytes(e, row->tag, MDW_IX_TAG);
    enc_s(e, row->owner);
    enc_s(e, row->config);
    enc_s(e, row->json);
}

int mdw_ix_community_dec(const void *p, size_t n, mdw_ix_community *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    dec_tag(&d, row->tag);
    row->owner = mdw_ix_dec_str(&d);
    row->config = mdw_ix_dec_str(&d);
    row->json = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_by_tag_enc(const mdw_ix_by_tag *row, mdw_ix_enc *e)
{
    (void)row;
    (void)e;
}

int mdw_ix_by_tag_dec(const void *p, size_t n, mdw_ix_by_tag *row)
{
    row->none = 0;
    return n == 0 ? 0 : MDW_ECORRUPT;
}

void mdw_ix_role_enc(const mdw_ix_role *row, mdw_ix_enc *e)
{
    mdw_ix_enc_u8(e, row->flags);
    enc_s(e, row->did);
}

int mdw_ix_role_dec(const void *p, size_t n, mdw_ix_role *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->flags = mdw_ix_dec_u8(&d);
    row->did = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_membership_enc(const mdw_ix_membership *row, mdw_ix_enc *e)
{
    mdw_ix_enc_u8(e, row->active);
    enc_s(e, row->did);
    enc_s(e, row->uri);
    enc_s(e, row->config);
}

int mdw_ix_membership_dec(const void *p, size_t n, mdw_ix_membership *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->active = mdw_ix_dec_u8(&d);
    row->did = mdw_ix_dec_str(&d);
    row->uri = mdw_ix_dec_str(&d);
    row->config = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_moderation_enc(const mdw_ix_moderation *row, mdw_ix_enc *e)
{
    mdw_ix_enc_i64(e, row->created);
    mdw_ix_enc_u8(e, row->action);
    enc_s(e, row->author);
    enc_s(e, row->target);
    enc_s(e, row->uri);
    enc_s(e, row->config);
}

int mdw_ix_moderation_dec(const void *p, size_t n, mdw_ix_moderation *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->created = mdw_ix_dec_i64(&d);
    row->action = mdw_ix_dec_u8(&d);
    row->author = mdw_ix_dec_str(&d);
    row->target = mdw_ix_dec_str(&d);
    row->uri = mdw_ix_dec_str(&d);
    row->config = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_account_enc(const mdw_ix_account *row, mdw_ix_enc *e)
{
    mdw_ix_enc_u8(e, row->visible);
    mdw_ix_enc_i64(e, row->seq);
    mdw_ix_enc_i64(e, row->time);
    enc_s(e, row->status);
    enc_s(e, row->did);
}

int mdw_ix_account_dec(const void *p, size_t n, mdw_ix_account *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->visible = mdw_ix_dec_u8(&d);
    row->seq = mdw_ix_dec_i64(&d);
    row->time = mdw_ix_dec_i64(&d);
    row->status = mdw_ix_dec_str(&d);
    row->did = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_member_enc(const mdw_ix_member *row, mdw_ix_enc *e)
{
    enc_s(e, row->did);
}

int mdw_ix_member_dec(const void *p, size_t n, mdw_ix_member *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->did = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_feed_enc(const mdw_ix_feed *row, mdw_ix_enc *e)
{
    enc_s(e, row->uri);
}

int mdw_ix_feed_dec(const void *p, size_t n, mdw_ix_feed *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->uri = mdw_ix_dec_str(&d);
    return dec_end(&d);
}

void mdw_ix_expiry_enc(const mdw_ix_expiry *row, mdw_ix_enc *e)
{
    mdw_ix_enc_u8(e, row->which);
}

int mdw_ix_expiry_dec(const void *p, size_t n, mdw_ix_expiry *row)
{
    mdw_ix_dec d;
    dec_begin(&d, p, n);
    row->which = mdw_ix_dec_u8(&d);
    return dec_end(&d);
}
