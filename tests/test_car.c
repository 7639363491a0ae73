/*
** Unit tests for firehose/car, firehose/mst and firehose/relay_commit on the
** real repository export of the corpus (repo.car) and on small CARs built
** here with libcbor, so each failure mode is made on purpose: a flipped byte
** in a block, every truncation, bad varints, a wrong header, MST keys out of
** order, a missing MST node.
*/
#include "tests/test.h"

#include <cbor.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "firehose/car.h"
#include "firehose/mst.h"
#include "firehose/relay_commit.h"
#include "tests/relay_test_util.h"

typedef struct listing {
    mdw_buf out;
    long n;
    const mdw_car *car;
    int missing_values;
} listing;

static int collect(void *ctx, const char *key, size_t keylen, const mdw_cid *value)
{
    listing *l = ctx;
    l->n++;
    if (!mdw_car_find(l->car, value->bytes, value->len))
        l->missing_values++;
    mdw_buf_append(&l->out, key, keylen);
    mdw_buf_putc(&l->out, '\t');
    mdw_cid_to_text(value, &l->out);
    mdw_buf_putc(&l->out, '\n');
    return 0;
}

TEST(repo_car_info_matches_repo_commit_txt)
{
    size_t n, tn;
    char *car_bytes = read_corpus("repo.car", &n);
    char *txt = read_corpus("repo_commit.txt", &tn);
    ASSERT(car_bytes && txt);
    mdw_car car;
    char err[320];
    ASSERT_MSG(mdw_car_open(&car, (const uint8_t *)car_bytes, n, err, sizeof err) == 0, "%s", err);
    ASSERT_EQ(car.nroots, 1);
    const mdw_car_block *b = mdw_car_find(&car, car.roots[0].bytes, car.roots[0].len);
    ASSERT(b != NULL);
    mdw_arena a;
    mdw_arena_init(&a);
    mdw_repo_commit c;
    ASSERT_OK(mdw_repo_commit_parse(b->data, b->len, &a, &c, err, sizeof err));
    char line[512];
    snprintf(line, sizeof line, "DID: %.*s\n", (int)c.did_len, c.did);
    ASSERT_CONTAINS(txt, line);
    mdw_buf t = MDW_BUF_INIT(256);
    mdw_cid_to_text(&c.data, &t);
    snprintf(line, sizeof line, "Data CID: %s\n", t.data);
    ASSERT_CONTAINS(txt, line);
    snprintf(line, sizeof line, "Revision: %.*s\n", (int)c.rev_len, c.rev);
    ASSERT_CONTAINS(txt, line);
    ASSERT_CONTAINS(txt, "Prev CID: <nil>");
    ASSERT_EQ(c.has_prev, 0);
    ASSERT_EQ(c.version, 3);
    ASSERT_EQ(c.sig_len, 64);
    mdw_buf_release(&t);
    mdw_arena_release(&a);
    mdw_car_release(&car);
    free(car_bytes);
    free(txt);
}

TEST(repo_car_mst_walk_matches_independent_listing)
{
    size_t n, tn;
    char *car_bytes = read_corpus("repo.car", &n);
    char *tsv = read_corpus("repo_records_first12.tsv", &tn);
    ASSERT(car_bytes && tsv);
    mdw_car car;
    char err[320];
    ASSERT_OK(mdw_car_open(&car, (const uint8_t *)car_bytes, n, err, sizeof err));
    mdw_arena a;
    mdw_arena_init(&a);
    mdw_repo_commit c;
    const mdw_car_block *b = mdw_car_find(&car, car.roots[0].bytes, car.roots[0].len);
    ASSERT_OK(mdw_repo_commit_parse(b->data, b->len, &a, &c, err, sizeof err));
    listing l = {MDW_BUF_INIT(1 << 20), 0, &car, 0};
    ASSERT_MSG(mdw_mst_walk(&car, &c.data, collect, &l, err, sizeof err) == 0, "%s", err);
    /* the first 12 rows are exactly the independent walk's */
    ASSERT_EQ(strncmp(l.out.data, tsv, tn), 0);
    ASSERT(l.n > 12); /* the repository holds more */
    ASSERT_EQ(l.missing_values, 0);
    mdw_buf_release(&l.out);
    mdw_arena_release(&a);
    mdw_car_release(&car);
    free(car_bytes);
    free(tsv);
}

TEST(repo_car_flipped_byte_in_a_block_is_caught)
{
    size_t n;
    char *bytes = read_corpus("repo.car", &n);
    ASSERT(bytes);
    mdw_car car;
    char err[320];
    /* flip bytes at many places after the header: each must be caught (a CID
    ** mismatch, or a broken varint/CID when the flip hits framing) */
    for (size_t pos = 100; pos < n; pos += 97) {
        bytes[pos] ^= 0x20;
        int rc = mdw_car_open(&car, (const uint8_t *)bytes, n, err, sizeof err);
        bytes[pos] ^= 0x20;
        ASSERT_MSG(rc != 0, "flip at %zu not detected", pos);
        ASSERT(err[0] != '\0');
    }
    /* a flip deep in block data is named as a CID mismatch */
    bytes[n - 10] ^= 0x01;
    ASSERT_EQ(mdw_car_open(&car, (const uint8_t *)bytes, n, err, sizeof err), MDW_ECORRUPT);
    ASSERT_CONTAINS(err, "does not match its CID");
    free(bytes);
}

TEST(repo_car_every_truncation_fails_cleanly)
{
    size_t n;
    char *bytes = read_corpus("repo.car", &n);
    ASSERT(bytes);
    mdw_car car;
    char err[320];
    int ok_cuts = 0;
    for (size_t cut = 0; cut < n; cut++) {
        /* a copy of exactly cut bytes, so ASan sees any read past the end */
        uint8_t *p = xmalloc(cut ? cut : 1);
        memcpy(p, bytes, cut);
        int rc = mdw_car_open(&car, p, cut, err, sizeof err);
        if (rc == 0) {
            ok_cuts++; /* a cut exactly between blocks is a valid, shorter CAR */
            mdw_car_release(&car);
        }
        free(p);
    }
    ASSERT(ok_cuts < 40); /* at most one per block boundary */
    ASSERT_OK(mdw_car_open(&car, (const uint8_t *)bytes, n, err, sizeof err));
    mdw_car_release(&car);
    free(bytes);
}

/* ---- CARs built here ---- */

static void cid_of(const uint8_t *data, size_t n, uint8_t cid[36])
{
    cid[0] = 0x01;
    cid[1] = 0x71;
    cid[2] = 0x12;
    cid[3] = 0x20;
    mdw_sha256(data, n, cid + 4);
}

static cbor_item_t *cid_link(const uint8_t cid[36])
{
    uint8_t b[37] = {0};
    memcpy(b + 1, cid, 36);
    return cbor_build_tag(42, cbor_move(cbor_build_bytestring(b, 37)));
}

static void put_pair(cbor_item_t *m, const char *k, cbor_item_t *v)
{
    cbor_map_add(m,
                 (struct cbor_pair){.key = cbor_move(cbor_build_string(k)), .value = cbor_move(v)});
}

static size_t serialize(cbor_item_t *it, uint8_t **out)
{
    size_t cap;
    size_t n = cbor_serialize_alloc(it, out, &cap);
    cbor_decref(&it);
    return n;
}

typedef struct blk {
    uint8_t *data;
    size_t len;
    uint8_t cid[36];
} blk;

static void put_varint(mdw_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        mdw_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    mdw_buf_putc(b, (char)v);
}

/* CAR with root (36-byte CID) and blocks. */
static void build_car(mdw_buf *out, const uint8_t root[36], blk *blocks, size_t n)
{
    cbor_item_t *h = cbor_new_definite_map(2);
    cbor_item_t *roots = cbor_new_definite_array(1);
    cbor_array_push(roots, cbor_move(cid_link(root)));
    put_pair(h, "roots", roots);
    put_pair(h, "version", cbor_build_uint8(1));
    uint8_t *hb;
    size_t hl = serialize(h, &hb);
    put_varint(out, hl);
    mdw_buf_append(out, hb, hl);
    free(hb);
    for (size_t i = 0; i < n; i++) {
        put_varint(out, 36 + blocks[i].len);
        mdw_buf_append(out, blocks[i].cid, 36);
        mdw_buf_append(out, blocks[i].data, blocks[i].len);
    }
}

/* MST node {e: [{k, p, t, v}...], l} with keys given whole (p computed). */
static void mst_node(blk *out, const char **keys, size_t n, const uint8_t *left,
                     const uint8_t (*rights)[36], const uint8_t value[36])
{
    cbor_item_t *node = cbor_new_definite_map(2);
    cbor_item_t *e = cbor_new_definite_array(n);
    const char *prev = "";
    for (size_t i = 0; i < n; i++) {
        size_t p = 0;
        while (prev[p] && prev[p] == keys[i][p])
            p++;
        cbor_item_t *ent = cbor_new_definite_map(4);
        put_pair(ent, "k",
                 cbor_build_bytestring((const uint8_t *)keys[i] + p, strlen(keys[i]) - p));
        put_pair(ent, "p", cbor_build_uint8((uint8_t)p));
        put_pair(ent, "t",
                 rights && rights[i][0] ? cid_link(rights[i]) : cbor_build_ctrl(CBOR_CTRL_NULL));
        put_pair(ent, "v", cid_link(value));
        cbor_array_push(e, cbor_move(ent));
        prev = keys[i];
    }
    put_pair(node, "e", e);
    put_pair(node, "l", left ? cid_link(left) : cbor_build_ctrl(CBOR_CTRL_NULL));
    out->len = serialize(node, &out->data);
    cid_of(out->data, out->len, out->cid);
}

typedef struct keys_seen {
    char all[512];
} keys_seen;

static int join_keys(void *ctx, const char *key, size_t keylen, const mdw_cid *value)
{
    keys_seen *k = ctx;
    size_t l = strlen(k->all);
    snprintf(k->all + l, sizeof k->all - l, "%s;", key);
    return 0;
}

TEST(built_mst_walks_in_order_across_subtrees)
{
    uint8_t rec[36];
    cid_of((const uint8_t *)"r", 1, rec);
    blk leaf_l, leaf_r, root;
    const char *lk[] = {"app.bsky.feed.like/1", "app.bsky.feed.like/2"};
    const char *rk[] = {"app.bsky.feed.post/9"};
    const char *mk[] = {"app.bsky.feed.post/1"};
    mst_node(&leaf_l, lk, 2, NULL, NULL, rec);
    mst_node(&leaf_r, rk, 1, NULL, NULL, rec);
    uint8_t rights[1][36];
    memcpy(rights[0], leaf_r.cid, 36);
    mst_node(&root, mk, 1, leaf_l.cid, (const uint8_t(*)[36])rights, rec);
    blk blocks[] = {root, leaf_l, leaf_r};
    mdw_buf b = MDW_BUF_INIT(1 << 16);
    build_car(&b, root.cid, blocks, 3);
    mdw_car car;
    char err[320];
    ASSERT_MSG(mdw_car_open(&car, (const uint8_t *)b.data, b.len, err, sizeof err) == 0, "%s", err);
    keys_seen k = {{0}};
    ASSERT_MSG(mdw_mst_walk(&car, &car.roots[0], join_keys, &k, err, sizeof err) == 0, "%s", err);
    ASSERT_STREQ(k.all, "app.bsky.feed.like/1;app.bsky.feed.like/2;app.bsky.feed.post/1;"
                        "app.bsky.feed.post/9;");
    mdw_car_release(&car);

    /* drop the right leaf: the walk names the missing node */
    mdw_buf_reset(&b);
    build_car(&b, root.cid, blocks, 2);
    ASSERT_OK(mdw_car_open(&car, (const uint8_t *)b.data, b.len, err, sizeof err));
    ASSERT_EQ(mdw_mst_walk(&car, &car.roots[0], join_keys, &k, err, sizeof err), MDW_ENOTFOUND);
    ASSERT_CONTAINS(err, "missing from the CAR");
    mdw_car_release(&car);
    mdw_buf_release(&b);
    for (int i = 0; i < 3; i++)
        free(blocks[i].data);
}

TEST(built_mst_keys_out_of_order_refused)
{
    uint8_t rec[36];
    cid_of((const uint8_t *)"r", 1, rec);
    blk node;
    const char *keys[] = {"app.bsky.feed.post/2", "app.bsky.feed.post/1"};
    mst_node(&node, keys, 2, NULL, NULL, rec);
    mdw_buf b = MDW_BUF_INIT(1 << 16);
    build_car(&b, node.cid, &node, 1);
    mdw_car car;
    char err[320];
    keys_seen k = {{0}};
    ASSERT_OK(mdw_car_open(&car, (const uint8_t *)b.data, b.len, err, sizeof err));
    ASSERT_EQ(mdw_mst_walk(&car, &car.roots[0], join_keys, &k, err, sizeof err), MDW_EMALFORMED);
    ASSERT_CONTAINS(err, "out of order");
    mdw_car_release(&car);
    mdw_buf_release(&b);
    free(node.data);
}

TEST(bad_varints_and_headers)
{
    mdw_car car;
    char err[320];
    const uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
    ASSERT_EQ(mdw_car_open(&car, long_varint, sizeof long_varint, err, sizeof err), MDW_EMALFORMED);
    ASSERT_CONTAINS(err, "varint");
    const uint8_t overlong[] = {0x80, 0x00};
    ASSERT_EQ(mdw_car_open(&car, overlong, sizeof overlong, err, sizeof err), MDW_EMALFORMED);
    const uint8_t empty[1] = {0};
    ASSERT(mdw_car_open(&car, empty, 0, err, sizeof err) != 0);
    /* header {version: 2, roots: []} */
    const uint8_t v2[] = {0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80,
                          0x67, 'v',  'e',  'r', 's', 'i', 'o', 'n', 0x02};
    ASSERT_EQ(mdw_car_open(&car, v2, sizeof v2, err, sizeof err), MDW_EMALFORMED);
    ASSERT_CONTAINS(err, "version");
    /* a valid header, then a block whose length varint is overlong */
    mdw_buf b = MDW_BUF_INIT(4096);
    uint8_t root[36];
    cid_of((const uint8_t *)"x", 1, root);
    build_car(&b, root, NULL, 0);
    ASSERT_OK(mdw_car_open(&car, (const uint8_t *)b.data, b.len, err, sizeof err));
    mdw_car_release(&car);
    mdw_buf_append(&b, "\x85\x80\x80\x80\x80\x80\x80\x80\x80\x80", 10);
    ASSERT_EQ(mdw_car_open(&car, (const uint8_t *)b.data, b.len, err, sizeof err), MDW_EMALFORMED);
    ASSERT_CONTAINS(err, "bad block length varint");
    mdw_buf_release(&b);
    /* a block with a sha-512 CID is refused, not trusted */
    mdw_buf c = MDW_BUF_INIT(4096);
    build_car(&c, root, NULL, 0);
    const uint8_t blk512[] = {0x08, 0x01, 0x71, 0x13, 0x02, 0xaa, 0xbb, 'h', 'i'};
    mdw_buf_append(&c, blk512, sizeof blk512);
    ASSERT_EQ(mdw_car_open(&car, (const uint8_t *)c.data, c.len, err, sizeof err), MDW_EUNIMPL);
    ASSERT_CONTAINS(err, "other than sha-256");
    mdw_buf_release(&c);
}

int main(void)
{
    RUN(repo_car_info_matches_repo_commit_txt);
    RUN(repo_car_mst_walk_matches_independent_listing);
    RUN(repo_car_flipped_byte_in_a_block_is_caught);
    RUN(repo_car_every_truncation_fails_cleanly);
    RUN(built_mst_walks_in_order_across_subtrees);
    RUN(built_mst_keys_out_of_order_refused);
    RUN(bad_varints_and_headers);
    return TEST_REPORT();
}
