/*
** index/dump.c — `meadow index dump`: the index as stable text.
**
** Lines come in table key order (hash order, which depends only on the
** content), with no wall-clock field: two indexes holding the same records
** dump byte for byte alike, which is how replays and rebuilds are compared.
** Sort keys are printed: they are derived from record content and event
** times (the firehose's, not ours).
*/
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/mem.h"
#include "index/index_impl.h"
#include "common/banned.h"

/* Not a table: the live posts of the records table, dumped as "tagged" rows. */
#define DUMP_TAGGED (-1)

#define S(x) (int)(x).n, (x).p

static int dump_feed(mdw_index *ix, MDB_txn *txn, FILE *out, const uint8_t ck[MDW_IX_H])
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, ix->dbi[IX_FEED], &cur);
    if (rc)
        return mdw_err_from_lmdb(rc);
    uint8_t key[MDW_IX_H + 8 + MDW_IX_H];
    memcpy(key, ck, MDW_IX_H);
    memset(key + MDW_IX_H, 0xff, 8 + MDW_IX_H);
    MDB_val k = {sizeof key, key}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    r = r == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    for (; r == 0 && k.mv_size == sizeof key && memcmp(k.mv_data, ck, MDW_IX_H) == 0;
         r = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        mdw_ix_feed row;
        mdw_ix_feed_dec(v.mv_data, v.mv_size, &row);
        int64_t sk = mdw_ix_sk_dec(mdw_ix_get_be64((const uint8_t *)k.mv_data + MDW_IX_H));
        fprintf(out, "  post %" PRId64 " %.*s\n", sk, S(row.uri));
    }
    mdb_cursor_close(cur);
    return 0;
}

static int dump_prefix(mdw_index *ix, MDB_txn *txn, FILE *out, int t, const uint8_t *pre,
                       size_t plen, const char *label)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, ix->dbi[t], &cur);
    if (rc)
        return mdw_err_from_lmdb(rc);
    MDB_val k = {plen, (void *)pre}, v;
    for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         r == 0 && k.mv_size >= plen && memcmp(k.mv_data, pre, plen) == 0;
         r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (t == IX_ROLES) {
            mdw_ix_role row;
            mdw_ix_role_dec(v.mv_data, v.mv_size, &row);
            fprintf(out, "  %s %.*s%s%s\n", label, S(row.did),
                    row.flags & IX_ROLE_MOD ? " moderator" : "",
                    row.flags & IX_ROLE_BLOCKLIST ? " blocklisted" : "");
        } else {
            mdw_ix_member row;
            mdw_ix_member_dec(v.mv_data, v.mv_size, &row);
            fprintf(out, "  %s %.*s\n", label, S(row.did));
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

static int dump_community(mdw_index *ix, MDB_txn *txn, FILE *out, const uint8_t ck[MDW_IX_H],
                          const MDB_val *v)
{
    mdw_ix_community c;
    if (mdw_ix_community_dec(v->mv_data, v->mv_size, &c))
        return MDW_ECORRUPT;
    char hex[9];
    mdw_ix_tag_format(c.tag, hex);
    fprintf(out, "community %.*s %s config=%.*s\n", S(c.owner), hex, S(c.config));
    int rc = dump_prefix(ix, txn, out, IX_ROLES, ck, MDW_IX_H, "role");
    if (!rc)
        rc = dump_prefix(ix, txn, out, IX_MEMBERS, ck, MDW_IX_H, "member");
    if (!rc)
        rc = dump_feed(ix, txn, out, ck);
    return rc;
}

static const char *act_name(int a)
{
    static const char *const n[] = {"?", "hide_post", "unhide_post", "block_user", "unblock_user"};
    return a >= 1 && a <= 4 ? n[a] : n[0];
}

static const char *state_name(int s)
{
    return s == IX_STATE_LIVE ? "live" : s == IX_STATE_TOMB ? "tombstone" : "none";
}

static void dump_row(FILE *out, int t, const MDB_val *v)
{
    char hex[9];
    switch (t) {
    case IX_CONFIGS: {
        mdw_ix_config c;
        if (mdw_ix_config_dec(v->mv_data, v->mv_size, &c))
            break;
        mdw_ix_tag_format(c.tag, hex);
        fprintf(out,
                "config %.*s owner=%.*s hashtag=%s createdAt=%" PRId64 " rev=%.*s record=%.*s\n",
                S(c.uri), S(c.owner), hex, c.created, S(c.rev), S(c.json));
        break;
    }
    case IX_MEMBERSHIPS: {
        mdw_ix_membership m;
        if (!mdw_ix_membership_dec(v->mv_data, v->mv_size, &m))
            fprintf(out, "membership %.*s did=%.*s community=%.*s active=%d\n", S(m.uri), S(m.did),
                    S(m.config), m.active);
        break;
    }
    case IX_MODERATION: {
        mdw_ix_moderation m;
        if (!mdw_ix_moderation_dec(v->mv_data, v->mv_size, &m))
            fprintf(out,
                    "action %.*s author=%.*s action=%s target=%.*s community=%.*s "
                    "createdAt=%" PRId64 "\n",
                    S(m.uri), S(m.author), act_name(m.action), S(m.target), S(m.config), m.created);
        break;
    }
    case IX_ACCOUNTS: {
        mdw_ix_account a;
        if (!mdw_ix_account_dec(v->mv_data, v->mv_size, &a))
            fprintf(out, "account %.*s visible=%d status=%.*s seq=%" PRId64 "\n", S(a.did),
                    a.visible, S(a.status), a.seq);
        break;
    }
    case DUMP_TAGGED: {
        /* The live posts of the records table (format 3 keeps a post's data in its record). */
        mdw_ix_record r;
        if (mdw_ix_record_dec(v->mv_data, v->mv_size, &r) || !mdw_ix_record_is_post(&r))
            break;
        mdw_ix_str u = r.uri;
        const char *a = u.n > 5 ? memchr(u.p + 5, '/', u.n - 5) : NULL;
        if (!a)
            break;
        fprintf(out,
                "tagged %.*s author=%.*s sortkey=%" PRId64 " createdAt=%" PRId64 " cid=%.*s tags=",
                S(u), (int)(a - u.p - 5), u.p + 5, r.sortkey, r.created, S(r.cid));
        for (uint8_t i = 0; i < r.ntags; i++) {
            mdw_ix_tag_format(r.tags + 4 * i, hex);
            fprintf(out, "%s%s", i ? "," : "", hex);
        }
        fputc('\n', out);
        break;
    }
    case IX_RECORDS: {
        mdw_ix_record r;
        if (!mdw_ix_record_dec(v->mv_data, v->mv_size, &r))
            fprintf(out,
                    "record %.*s kind=%d state=%s rev=%.*s first_seen=%" PRId64 " aux=%.*s|%.*s\n",
                    S(r.uri), r.kind, state_name(r.state), S(r.rev), r.first_seen, S(r.aux1),
                    S(r.aux2));
        break;
    }
    default:
        break;
    }
}

static int dump_table(mdw_index *ix, MDB_txn *txn, FILE *out, int t)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, ix->dbi[t == DUMP_TAGGED ? IX_RECORDS : t], &cur);
    if (rc)
        return mdw_err_from_lmdb(rc);
    MDB_val k, v;
    for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0 && !rc;
         r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (t == IX_COMMUNITIES)
            rc = dump_community(ix, txn, out, k.mv_data, &v);
        else
            dump_row(out, t, &v);
    }
    mdb_cursor_close(cur);
    return rc;
}

int mdw_index_dump(mdw_index *ix, FILE *out, const char *owner_did, const char *hashtag_id,
                   unsigned flags)
{
    MDB_txn *txn;
    int rc = mdw_ix_rtxn(ix, &txn);
    if (rc)
        return rc;
    if (owner_did && hashtag_id) {
        uint8_t tag[4], ck[MDW_IX_H];
        if (mdw_tag_id_parse(hashtag_id, strlen(hashtag_id), tag)) {
            rc = MDW_EMALFORMED;
            goto out;
        }
        mdw_ix_comm_key(owner_did, tag, ck);
        MDB_val k = {MDW_IX_H, ck}, v;
        if (mdb_get(txn, ix->dbi[IX_COMMUNITIES], &k, &v)) {
            rc = MDW_ENOTFOUND;
            goto out;
        }
        mdw_ix_community c;
        if (mdw_ix_community_dec(v.mv_data, v.mv_size, &c) || memcmp(c.tag, tag, 4) ||
            !mdw_ix_str_eq(c.owner, owner_did)) {
            rc = MDW_ENOTFOUND;
            goto out;
        }
        rc = dump_community(ix, txn, out, ck, &v);
        goto out;
    }
    fprintf(out, "meadow index dump format=%d\n", MDW_IX_FORMAT);
    static const int order[] = {IX_COMMUNITIES, IX_CONFIGS,  IX_MEMBERSHIPS,
                                IX_MODERATION,  IX_ACCOUNTS, DUMP_TAGGED};
    for (size_t i = 0; i < sizeof order / sizeof order[0] && !rc; i++)
        rc = dump_table(ix, txn, out, order[i]);
    if (!rc && (flags & MDW_INDEX_DUMP_RECORDS))
        rc = dump_table(ix, txn, out, IX_RECORDS);
out:
    mdw_ix_rtxn_end(ix, txn);
    return rc;
}
