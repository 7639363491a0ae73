/*
** tests/test_index_layout.c — index/ owns the on-disk layout, and this
** checks it two ways:
**   - layout_table_matches_docs: the table in docs/index.md ("Tables") is
**     the index's own descriptors (mdw_ix_tables) cell for cell, each row
**     codec writes exactly the encoding its descriptor states and decodes
**     what it wrote, and each key builder makes keys of the stated length;
**   - layout_bytes_unchanged: a fixed scenario run through the rule engine
**     leaves an index whose every key and value (all tables, raw LMDB
**     bytes) hash to the digest the format-5 writer produced before the
**     layout moved into index/ (recorded from commit cf3fb57). A change to
**     what is written fails it: that is a format bump, not a refactoring.
*/
#include <openssl/evp.h>

#include "tests/test.h"
#include "common/log.h"
#include "index/index_impl.h"
#include "tests/test_processor_helpers.h"
#include "common/banned.h"

#define URI_MAX 256

/* ---- the doc's table ---- */

typedef struct doc_row {
    char *cell[5]; /* table, key, value, encoding, kind */
} doc_row;

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* The rows of the first markdown table after "## Tables" in docs/index.md; returns how many. */
static int read_doc_table(doc_row *rows, int max, char *err, size_t errn)
{
    const char *src = getenv("MEADOW_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/index.md", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errn, "cannot open %s (run from the repository root or set MEADOW_SRC)",
                 path);
        return -1;
    }
    char line[4096];
    int in = 0, n = 0, header = 0;
    while (fgets(line, sizeof line, f)) {
        if (!in) {
            in = strncmp(line, "## Tables", 9) == 0;
            continue;
        }
        if (line[0] != '|') {
            if (header)
                break; /* the table ended */
            continue;
        }
        if (header++ < 2)
            continue; /* the header row and |---| */
        if (n == max)
            break;
        /* | a | b | c | d | e | : cells split on '|' (the doc uses ‖ inside cells, never |). */
        char *p = line + 1;
        int c = 0;
        for (char *bar; c < 5 && (bar = strchr(p, '|')); p = bar + 1, c++) {
            *bar = '\0';
            rows[n].cell[c] = strdup(trim(p));
        }
        if (c != 5) {
            snprintf(err, errn, "row %d has %d cells, not 5", n + 1, c);
            fclose(f);
            return -1;
        }
        n++;
    }
    fclose(f);
    return n;
}

/* Walks encoded bytes by an encoding string ("u8 i64 str ...; ..."); stops at "; " unless tail. */
static int walk_enc(const char *enc, const uint8_t *p, size_t n, int tail, size_t *used)
{
    size_t o = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", enc);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        size_t tl = strlen(tok);
        int last_of_head = tl && tok[tl - 1] == ';';
        if (last_of_head)
            tok[tl - 1] = '\0';
        size_t need = 0;
        if (!strcmp(tok, "u8"))
            need = 1;
        else if (!strcmp(tok, "i64") || !strcmp(tok, "u64"))
            need = 8;
        else if (!strcmp(tok, "tag"))
            need = 4;
        else if (!strcmp(tok, "str")) {
            if (n - o < 4)
                return -1;
            need = 4 +
                   ((size_t)p[o] << 24 | (size_t)p[o + 1] << 16 | (size_t)p[o + 2] << 8 | p[o + 3]);
        } else if (!strcmp(tok, "tags")) {
            if (n - o < 1)
                return -1;
            need = 1 + 4 * (size_t)p[o];
        } else if (!strcmp(tok, "-"))
            need = 0;
        else
            return -2;
        if (n - o < need)
            return -1;
        o += need;
        if (last_of_head && !tail)
            break;
    }
    *used = o;
    return 0;
}

TEST(layout_table_matches_docs)
{
    doc_row rows[32];
    char err[2048] = "";
    int n = read_doc_table(rows, 32, err, sizeof err);
    ASSERT_MSG(n >= 0, "%s", err);
    ASSERT_MSG(n == IX_NTABLES, "docs/index.md lists %d tables, the index has %d", n, IX_NTABLES);
    for (int t = 0; t < IX_NTABLES; t++) {
        const mdw_ix_table_desc *d = &mdw_ix_tables[t];
        const doc_row *row = NULL;
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].cell[0], d->name))
                row = &rows[i];
        ASSERT_MSG(row, "table %s is not in docs/index.md", d->name);
        const char *want[5] = {d->name, d->key, d->value, d->enc, d->kind};
        static const char *const col[5] = {"table", "key", "value", "encoding", "kind"};
        for (int c = 1; c < 5; c++) {
            /* The doc writes code spans in backticks; encodings are in one. */
            const char *got = row->cell[c];
            char unq[1024];
            size_t gl = strlen(got);
            if (c == 3 && gl >= 2 && got[0] == '`' && got[gl - 1] == '`') {
                snprintf(unq, sizeof unq, "%.*s", (int)(gl - 2), got + 1);
                got = unq;
            }
            ASSERT_MSG(!strcmp(got, want[c]), "%s: docs say %s [%s], the code [%s]", d->name,
                       col[c], got, want[c]);
        }
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 5; c++)
            free(rows[i].cell[c]);

    /* Each codec writes what its descriptor's encoding says, and reads it back. */
    uint8_t tags[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    mdw_ix_enc e = {0};
    size_t used;
#define ENC_IS(t, enc_fn, rowp, tail)                                                              \
    do {                                                                                           \
        mdw_ix_enc_reset(&e);                                                                      \
        enc_fn(rowp, &e);                                                                          \
        ASSERT_MSG(walk_enc(mdw_ix_tables[t].enc, e.p, e.len, tail, &used) == 0 && used == e.len,  \
                   "%s: %zu bytes written, the encoding [%s] covers %zu", mdw_ix_tables[t].name,   \
                   e.len, mdw_ix_tables[t].enc, used);                                             \
    } while (0)
    mdw_ix_meta meta = {42};
    ENC_IS(IX_META, mdw_ix_meta_enc, &meta, 1);
    mdw_ix_record rec = {IX_KIND_POST,
                         IX_STATE_LIVE,
                         7,
                         mdw_ix_s("rev"),
                         mdw_ix_s("at://u"),
                         mdw_ix_s(""),
                         mdw_ix_s("x"),
                         -3,
                         99,
                         2,
                         tags,
                         mdw_ix_s("cid")};
    ENC_IS(IX_RECORDS, mdw_ix_record_enc, &rec, 1);
    mdw_ix_record back;
    ASSERT_OK(mdw_ix_record_dec(e.p, e.len, &back));
    ASSERT(mdw_ix_record_is_post(&back) && back.sortkey == -3 && back.ntags == 2 &&
           !memcmp(back.tags, tags, 8) && mdw_ix_str_eq(back.cid, "cid") &&
           mdw_ix_str_eq(back.aux2, "x"));
    rec.state = IX_STATE_TOMB; /* not a live post: the head only */
    ENC_IS(IX_RECORDS, mdw_ix_record_enc, &rec, 0);
    mdw_ix_config cfg = {{9, 9, 9, 9},  5, mdw_ix_s("o"), mdw_ix_s("u"), mdw_ix_s("r"),
                         mdw_ix_s("{}")};
    ENC_IS(IX_CONFIGS, mdw_ix_config_enc, &cfg, 1);
    ENC_IS(IX_CONFIG_VERS, mdw_ix_config_enc, &cfg, 1);
    mdw_ix_config cback;
    ASSERT_OK(mdw_ix_config_dec(e.p, e.len, &cback));
    ASSERT(cback.created == 5 && mdw_ix_str_eq(cback.json, "{}") && cback.tag[0] == 9);
    mdw_ix_owner_config oc = {5, mdw_ix_s("u"), mdw_ix_s("o")};
    ENC_IS(IX_OWNER_CONFIGS, mdw_ix_owner_config_enc, &oc, 1);
    mdw_ix_community cm = {{1, 2, 3, 4}, mdw_ix_s("o"), mdw_ix_s("c"), mdw_ix_s("{}")};
    ENC_IS(IX_COMMUNITIES, mdw_ix_community_enc, &cm, 1);
    mdw_ix_by_tag bt = {0};
    ENC_IS(IX_BY_TAG, mdw_ix_by_tag_enc, &bt, 1);
    mdw_ix_role ro = {IX_ROLE_MOD, mdw_ix_s("did")};
    ENC_IS(IX_ROLES, mdw_ix_role_enc, &ro, 1);
    mdw_ix_membership ms = {1, mdw_ix_s("d"), mdw_ix_s("u"), mdw_ix_s("c")};
    ENC_IS(IX_MEMBERSHIPS, mdw_ix_membership_enc, &ms, 1);
    mdw_ix_moderation md = {
        5, IX_ACT_HIDE, mdw_ix_s("a"), mdw_ix_s("p:x"), mdw_ix_s("u"), mdw_ix_s("c")};
    ENC_IS(IX_MODERATION, mdw_ix_moderation_enc, &md, 1);
    mdw_ix_account ac = {0, 3, 4, mdw_ix_s("deactivated"), mdw_ix_s("did")};
    ENC_IS(IX_ACCOUNTS, mdw_ix_account_enc, &ac, 1);
    mdw_ix_account aback;
    ASSERT_OK(mdw_ix_account_dec(e.p, e.len, &aback));
    ASSERT(aback.visible == 0 && aback.seq == 3 && aback.time == 4 &&
           mdw_ix_str_eq(aback.status, "deactivated") && mdw_ix_str_eq(aback.did, "did"));
    mdw_ix_member mb = {mdw_ix_s("did")};
    ENC_IS(IX_MEMBERS, mdw_ix_member_enc, &mb, 1);
    mdw_ix_feed fd = {mdw_ix_s("at://x")};
    ENC_IS(IX_FEED, mdw_ix_feed_enc, &fd, 1);
    mdw_ix_expiry ex = {IX_EXP_POST};
    ENC_IS(IX_EXPIRY, mdw_ix_expiry_enc, &ex, 1);
    mdw_ix_enc_release(&e);
    /* A short value does not decode. */
    ASSERT_EQ(mdw_ix_account_dec("\x01", 1, &aback), MDW_ECORRUPT);

    /* Key builders make the stated key lengths. */
    ASSERT_EQ(mdw_ix_tables[IX_RECORDS].key_len, MDW_IX_RK);
    ASSERT_EQ(mdw_ix_tables[IX_CONFIG_VERS].key_len, MDW_IX_H + MDW_IX_REV_KEY);
    ASSERT_EQ(mdw_ix_tables[IX_OWNER_CONFIGS].key_len, MDW_IX_H + MDW_IX_TAG + MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_BY_TAG].key_len, MDW_IX_TAG + MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_ROLES].key_len, 2 * MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_MEMBERS].key_len, 2 * MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_MEMBERSHIPS].key_len, 3 * MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_MODERATION].key_len, 3 * MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_FEED].key_len, MDW_IX_H + 8 + MDW_IX_H);
    ASSERT_EQ(mdw_ix_tables[IX_ACCOUNTS].key_len, MDW_IX_H);
}

/* ---- the bytes written ---- */

/* The scenario's own instant (not the fixture's NOW_US): the digest must not move with it. */
#define LAYOUT_NOW 1795392000000000LL /* 2026-11-23T00:00:00Z */

static const char *const layout_tables[] = {
    "meta",  "records",     "configs",    "config_vers", "owner_configs", "communities", "by_tag",
    "roles", "memberships", "moderation", "accounts",    "members",       "feed",        "expiry",
};

/* SHA-256 over every table's name, then each key and value with their lengths, hex. */
static int index_digest(mdw_index *ix, char out[65])
{
    MDB_txn *txn;
    if (mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn))
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    int rc = 0;
    for (size_t t = 0; t < sizeof layout_tables / sizeof layout_tables[0] && !rc; t++) {
        MDB_dbi dbi;
        MDB_cursor *cur;
        if (mdb_dbi_open(txn, layout_tables[t], 0, &dbi) || mdb_cursor_open(txn, dbi, &cur)) {
            rc = -1;
            break;
        }
        EVP_DigestUpdate(ctx, layout_tables[t], strlen(layout_tables[t]) + 1);
        MDB_val k, v;
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
             r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t kn = k.mv_size, vn = v.mv_size;
            EVP_DigestUpdate(ctx, &kn, sizeof kn);
            EVP_DigestUpdate(ctx, k.mv_data, k.mv_size);
            EVP_DigestUpdate(ctx, &vn, sizeof vn);
            EVP_DigestUpdate(ctx, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    mdb_txn_abort(txn);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return rc;
}

static int layout_post_at(fx *f, const char *did, const char *rkey, int64_t created,
                          const char *text)
{
    cJSON *rec = fx_post_record(f, text);
    char iso[40];
    fx_iso(created, iso);
    cJSON_ReplaceItemInObject(rec, "createdAt", cJSON_CreateString(iso));
    return fx_run(f, fx_commit(f, did, "app.bsky.feed.post", rkey, "create", rec));
}

/* Every kind of row in every table: configs (one updated), roles, memberships, posts (tagged
 * twice, untagged, backdated, not a TID, deleted), actions, account states, a sweep. */
static int layout_scenario(fx *f)
{
    mdw_clock_fake_set(&f->clk, LAYOUT_NOW);
    f->t = LAYOUT_NOW - DAY_US;
    char curi[URI_MAX], curi2[URI_MAX], pa[URI_MAX], pb[URI_MAX], pc[URI_MAX], muri[URI_MAX];
    char rkey[14];
    const char *mods[] = {BOB, NULL}, *blocks[] = {MALLORY, NULL};
    int bad = 0;
    bad |= fx_config(f, OWNER, TAG, curi, sizeof curi, mods, blocks) != MDW_RULE_APPLIED;
    bad |= fx_config(f, OWNER2, TAG2, curi2, sizeof curi2, NULL, NULL) != MDW_RULE_APPLIED;
    bad |= fx_join(f, ALICE, curi, "member", -1, NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_join(f, CAROL, curi2, "member", 1, muri, sizeof muri) != MDW_RULE_APPLIED;
    bad |= fx_join(f, MALLORY, curi, "member", 0, NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_post(f, ALICE, "a #atr_" TAG, pa, sizeof pa) != MDW_RULE_APPLIED;
    bad |= fx_post(f, ALICE, "b #atr_" TAG " #atr_" TAG2, pb, sizeof pb) != MDW_RULE_APPLIED;
    bad |= fx_post(f, CAROL, "c #atr_" TAG2, pc, sizeof pc) != MDW_RULE_APPLIED;
    bad |= fx_post(f, BOB, "d #atr_" TAG, NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_post(f, OWNER, "untagged", NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_post(f, MALLORY, "m #atr_" TAG, NULL, 0) != MDW_RULE_APPLIED;
    fx_rkey(f, rkey);
    bad |= layout_post_at(f, ALICE, rkey, f->t - 3 * DAY_US, "backdated #atr_" TAG) !=
           MDW_RULE_APPLIED;
    bad |= layout_post_at(f, BOB, "self", f->t, "no tid #atr_" TAG) != MDW_RULE_APPLIED;
    bad |= fx_mod(f, BOB, curi, "hide_post", pa, NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_mod(f, OWNER2, curi2, "block_user", CAROL, NULL, 0) != MDW_RULE_APPLIED;
    bad |= fx_run(f, fx_account_json(f, BOB, 0, "deactivated", 5)) != MDW_RULE_APPLIED;
    bad |= fx_run(f, fx_account_json(f, CAROL, 1, NULL, 6)) != MDW_RULE_APPLIED;
    bad |= fx_delete(f, pb) != MDW_RULE_APPLIED;
    bad |= fx_delete(f, muri) != MDW_RULE_APPLIED;
    /* An update of the first config (same hashtag, no moderators now). */
    const char *slash = strrchr(curi, '/');
    cJSON *upd = fx_config_record(f, "#atr_" TAG, "Renamed");
    bad |= fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", slash + 1, "update",
                               upd)) != MDW_RULE_APPLIED;
    uint64_t np, nr;
    if (bad || mdw_rules_begin(f->r) || mdw_rules_sweep(f->r, &np, &nr) ||
        mdw_rules_commit(f->r, 42))
        return -1;
    return 0;
}

/* Recorded from the format-5 writer before the layout moved into index/ (commit cf3fb57). */
#define LAYOUT_DIGEST "633af4b32866de099776e4ef1a734cb1a56583889ceb4f6e6978a8726345023e"

TEST(layout_bytes_unchanged)
{
    fx f_, *f = &f_;
    ASSERT_OK(fx_open(f, TEST_TMPDIR()));
    ASSERT_OK(layout_scenario(f));
    char got[65];
    ASSERT_OK(index_digest(f->ix, got));
    fx_close(f);
    ASSERT_MSG(!strcmp(got, LAYOUT_DIGEST), "index bytes digest %s, format 5 wrote %s", got,
               LAYOUT_DIGEST);
}

int main(void)
{
    RUN(layout_table_matches_docs);
    RUN(layout_bytes_unchanged);
    return TEST_REPORT();
}
