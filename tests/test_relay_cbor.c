/*
** Unit tests for firehose/cbor and firehose/cid: DAG-CBOR decoding rules,
** the JSON form Jetstream and the atproto data model use ($bytes with the
** standard base64 alphabet and no padding, $link, sorted keys, int64 range),
** canonical re-encoding, and the caps (nesting, item count) on hostile input.
** Inputs are hand-written CBOR bytes, so each case states exactly what is on
** the wire.
*/
#include "tests/test.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/mem.h"
#include "firehose/cbor.h"
#include "firehose/cid.h"

/* Decodes p[0..n) and renders it as JSON into out (caller releases). */
static int to_json(const uint8_t *p, size_t n, mdw_buf *out, char *err, size_t errlen)
{
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *root;
    int rc = mdw_cbor_decode(p, n, &a, &root, NULL, err, errlen);
    if (rc == 0)
        rc = mdw_cbor_to_json(root, out, err, errlen);
    mdw_arena_release(&a);
    return rc;
}

static int decode_rc(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *root;
    int rc = mdw_cbor_decode(p, n, &a, &root, NULL, err, errlen);
    mdw_arena_release(&a);
    return rc;
}

#define JSON_IS(bytes, want)                                                                       \
    do {                                                                                           \
        mdw_buf jb_ = MDW_BUF_INIT(1 << 16);                                                       \
        char je_[200];                                                                             \
        ASSERT_MSG(to_json(bytes, sizeof bytes, &jb_, je_, sizeof je_) == 0, "%s", je_);           \
        ASSERT_STREQ(jb_.data, want);                                                              \
        mdw_buf_release(&jb_);                                                                     \
    } while (0)

TEST(bytes_render_as_std_base64_without_padding)
{
    /* {"a": h'fbff'} -> +/8 (standard alphabet, "=" dropped) */
    const uint8_t two[] = {0xa1, 0x61, 'a', 0x42, 0xfb, 0xff};
    JSON_IS(two, "{\"a\":{\"$bytes\":\"+/8\"}}");
    /* "foob" -> Zm9vYg (two padding characters dropped) */
    const uint8_t foob[] = {0x44, 'f', 'o', 'o', 'b'};
    JSON_IS(foob, "{\"$bytes\":\"Zm9vYg\"}");
    /* three bytes: no padding needed; empty: empty string */
    const uint8_t three[] = {0x83, 0x43, 0xfb, 0xef, 0xbe, 0x40, 0x41, 0x00};
    JSON_IS(three, "[{\"$bytes\":\"++++\"},{\"$bytes\":\"\"},{\"$bytes\":\"AA\"}]");
}

TEST(links_render_as_cid_text)
{
    /* tag 42, h'00' + CIDv1 dag-cbor sha2-256 of 32 zero bytes */
    uint8_t v1[4 + 1 + 4 + 32] = {0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x20};
    JSON_IS(v1, "{\"$link\":\"bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
    /* CIDv0 inside a link renders base58btc ("Qm…") */
    uint8_t v0[4 + 1 + 34] = {0xd8, 0x2a, 0x58, 0x23, 0x00, 0x12, 0x20};
    JSON_IS(v0, "{\"$link\":\"QmNLei78zWmzUdbeRB3CiUfAizWUrbeeZh5K1rhAQKCh51\"}");
    /* raw codec (blobs) */
    uint8_t raw[4 + 1 + 4 + 32] = {0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x55, 0x12, 0x20};
    mdw_buf b = MDW_BUF_INIT(256);
    char e[200];
    ASSERT_OK(to_json(raw, sizeof raw, &b, e, sizeof e));
    ASSERT_CONTAINS(b.data, "\"bafkrei");
    mdw_buf_release(&b);
}

TEST(keys_sorted_bytewise_and_scalars)
{
    /* {"b": 1, "a": -1, "ab": true, "": null, "B": "x"} in that wire order */
    const uint8_t m[] = {0xa5, 0x61, 'b',  0x01, 0x61, 'a', 0x20, 0x62, 'a',
                         'b',  0xf5, 0x60, 0xf6, 0x61, 'B', 0x61, 'x'};
    JSON_IS(m, "{\"\":null,\"B\":\"x\",\"a\":-1,\"ab\":true,\"b\":1}");
    /* int64 extremes render; one past them is refused */
    const uint8_t big[] = {0x82, 0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                           0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    JSON_IS(big, "[9223372036854775807,-9223372036854775808]");
    const uint8_t over[] = {0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0};
    mdw_buf b = MDW_BUF_INIT(256);
    char e[200];
    ASSERT_EQ(to_json(over, sizeof over, &b, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "int64");
    mdw_buf_release(&b);
    /* text with quotes, control characters and non-ASCII is escaped, UTF-8 kept */
    const uint8_t txt[] = {0x66, '"', '\n', 0x01, 0xc3, 0xa9, '\\'};
    JSON_IS(txt, "\"\\\"\\n\\u0001\xc3\xa9\\\\\"");
}

TEST(floats_refused_in_records)
{
    const uint8_t f64[] = {0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    mdw_buf b = MDW_BUF_INIT(256);
    char e[200];
    ASSERT_EQ(to_json(f64, sizeof f64, &b, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "floats");
    mdw_buf_release(&b);
    const uint8_t f16[] = {0xf9, 0x3c, 0x00};
    ASSERT_EQ(decode_rc(f16, sizeof f16, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "float shorter");
    const uint8_t nan[] = {0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(decode_rc(nan, sizeof nan, e, sizeof e), MDW_EMALFORMED);
}

TEST(dag_cbor_strictness)
{
    char e[200];
    const uint8_t indef_arr[] = {0x9f, 0x01, 0xff};
    ASSERT_EQ(decode_rc(indef_arr, sizeof indef_arr, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "indefinite-length array");
    const uint8_t indef_str[] = {0x7f, 0x61, 'a', 0xff};
    ASSERT_EQ(decode_rc(indef_str, sizeof indef_str, e, sizeof e), MDW_EMALFORMED);
    const uint8_t nonmin[] = {0x18, 0x05};
    ASSERT_EQ(decode_rc(nonmin, sizeof nonmin, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "non-minimal");
    const uint8_t nonmin_len[] = {0x79, 0x00, 0x01, 'a'};
    ASSERT_EQ(decode_rc(nonmin_len, sizeof nonmin_len, e, sizeof e), MDW_EMALFORMED);
    const uint8_t tag1[] = {0xc1, 0x01};
    ASSERT_EQ(decode_rc(tag1, sizeof tag1, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "only 42");
    const uint8_t tag42_text[] = {0xd8, 0x2a, 0x61, 'a'};
    ASSERT_EQ(decode_rc(tag42_text, sizeof tag42_text, e, sizeof e), MDW_EMALFORMED);
    const uint8_t tag42_badcid[] = {0xd8, 0x2a, 0x43, 0x00, 0x01, 0x71};
    ASSERT_EQ(decode_rc(tag42_badcid, sizeof tag42_badcid, e, sizeof e), MDW_EMALFORMED);
    const uint8_t bad_utf8[] = {0x62, 0xc0, 0xaf};
    ASSERT_EQ(decode_rc(bad_utf8, sizeof bad_utf8, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "UTF-8");
    const uint8_t surrogate[] = {0x63, 0xed, 0xa0, 0x80};
    ASSERT_EQ(decode_rc(surrogate, sizeof surrogate, e, sizeof e), MDW_EMALFORMED);
    const uint8_t int_key[] = {0xa1, 0x01, 0x02};
    ASSERT_EQ(decode_rc(int_key, sizeof int_key, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "map key");
    const uint8_t dup_sorted[] = {0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02};
    ASSERT_EQ(decode_rc(dup_sorted, sizeof dup_sorted, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "duplicate map key \"a\"");
    const uint8_t dup_unsorted[] = {0xa3, 0x61, 'b', 0x01, 0x61, 'a', 0x01, 0x61, 'b', 0x02};
    ASSERT_EQ(decode_rc(dup_unsorted, sizeof dup_unsorted, e, sizeof e), MDW_EMALFORMED);
    const uint8_t undef[] = {0xf7};
    ASSERT_EQ(decode_rc(undef, sizeof undef, e, sizeof e), MDW_EMALFORMED);
    const uint8_t simple[] = {0xf0};
    ASSERT_EQ(decode_rc(simple, sizeof simple, e, sizeof e), MDW_EMALFORMED);
    const uint8_t trailing[] = {0x01, 0x02};
    ASSERT_EQ(decode_rc(trailing, sizeof trailing, e, sizeof e), MDW_EMALFORMED);
    ASSERT_CONTAINS(e, "trailing");
}

TEST(truncation_is_eof_with_offset)
{
    /* {"text": "hello"} cut at every length */
    const uint8_t m[] = {0xa1, 0x64, 't', 'e', 'x', 't', 0x65, 'h', 'e', 'l', 'l', 'o'};
    char e[200];
    for (size_t n = 0; n < sizeof m; n++)
        ASSERT_EQ(decode_rc(m, n, e, sizeof e), MDW_EEOF);
    ASSERT_OK(decode_rc(m, sizeof m, e, sizeof e));
    /* a length claiming far more than is there */
    const uint8_t huge_bytes[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    ASSERT_EQ(decode_rc(huge_bytes, sizeof huge_bytes, e, sizeof e), MDW_EEOF);
    const uint8_t huge_arr[] = {0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    ASSERT_EQ(decode_rc(huge_arr, sizeof huge_arr, e, sizeof e), MDW_EEOF);
    const uint8_t huge_map[] = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    ASSERT_EQ(decode_rc(huge_map, sizeof huge_map, e, sizeof e), MDW_EEOF);
}

TEST(nesting_capped_without_stack_overflow)
{
    /* MDW_MAX_CBOR_DEPTH - 1 nested arrays inside the top one: accepted */
    size_t n = 200000;
    uint8_t *p = xmalloc(n + 1);
    memset(p, 0x81, n);
    char e[200];
    p[MDW_MAX_CBOR_DEPTH - 1] = 0x00;
    ASSERT_OK(decode_rc(p, MDW_MAX_CBOR_DEPTH, e, sizeof e));
    /* one more level: refused */
    memset(p, 0x81, n);
    p[MDW_MAX_CBOR_DEPTH] = 0x00;
    ASSERT_EQ(decode_rc(p, MDW_MAX_CBOR_DEPTH + 1, e, sizeof e), MDW_ETOOBIG);
    ASSERT_CONTAINS(e, "nesting deeper than 64");
    /* 200000 levels of maps {"a": {"a": …}}: refused, no recursion blow-up */
    for (size_t i = 0; i + 3 <= n; i += 3) {
        p[i] = 0xa1;
        p[i + 1] = 0x61;
        p[i + 2] = 'a';
    }
    ASSERT_EQ(decode_rc(p, n, e, sizeof e), MDW_ETOOBIG);
    /* 100000 nested tags 42: also capped (each tag is a level) */
    for (size_t i = 0; i + 2 <= n; i += 2) {
        p[i] = 0xd8;
        p[i + 1] = 0x2a;
    }
    ASSERT_EQ(decode_rc(p, n, e, sizeof e), MDW_ETOOBIG);
    free(p);
}

TEST(item_count_capped)
{
    /* an array of 600000 zeros: every item is one byte, over MDW_MAX_CBOR_ITEMS */
    size_t count = 600000, n = 5 + count;
    uint8_t *p = xmalloc(n);
    p[0] = 0x9a;
    p[1] = (uint8_t)(count >> 24);
    p[2] = (uint8_t)(count >> 16);
    p[3] = (uint8_t)(count >> 8);
    p[4] = (uint8_t)count;
    memset(p + 5, 0, count);
    char e[200];
    ASSERT_EQ(decode_rc(p, n, e, sizeof e), MDW_ETOOBIG);
    ASSERT_CONTAINS(e, "items");
    free(p);
}

TEST(canonical_encoding_sorts_and_omits)
{
    /* {"bb": 1, "a": h'01', "sig": h'02', "c": [-1, 500]} (non-canonical order) */
    const uint8_t m[] = {0xa4, 0x62, 'b',  'b',  0x01, 0x61, 'a',  0x41, 0x01, 0x63, 's',
                         'i',  'g',  0x41, 0x02, 0x61, 'c',  0x82, 0x20, 0x19, 0x01, 0xf4};
    /* canonical: length first, then bytes: a, c, bb, sig */
    const uint8_t want[] = {0xa4, 0x61, 'a', 0x41, 0x01, 0x61, 'c', 0x82, 0x20, 0x19, 0x01,
                            0xf4, 0x62, 'b', 'b',  0x01, 0x63, 's', 'i',  'g',  0x41, 0x02};
    const uint8_t want_nosig[] = {0xa3, 0x61, 'a',  0x41, 0x01, 0x61, 'c', 0x82,
                                  0x20, 0x19, 0x01, 0xf4, 0x62, 'b',  'b', 0x01};
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *root;
    ASSERT_OK(mdw_cbor_decode(m, sizeof m, &a, &root, NULL, NULL, 0));
    mdw_buf b = MDW_BUF_INIT(256);
    ASSERT_OK(mdw_cbor_encode(root, NULL, &b));
    ASSERT_EQ(b.len, sizeof want);
    ASSERT(memcmp(b.data, want, sizeof want) == 0);
    mdw_buf_reset(&b);
    ASSERT_OK(mdw_cbor_encode(root, "sig", &b));
    ASSERT_EQ(b.len, sizeof want_nosig);
    ASSERT(memcmp(b.data, want_nosig, sizeof want_nosig) == 0);
    mdw_buf_release(&b);
    mdw_arena_release(&a);
}

TEST(cid_text_round_trip_and_check)
{
    const char *t = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i";
    uint8_t bin[64];
    size_t n;
    ASSERT_OK(mdw_cid_from_text(t, bin, sizeof bin, &n));
    ASSERT_EQ(n, 36);
    mdw_cid c;
    ASSERT_OK(mdw_cid_parse(bin, n, &c, NULL));
    ASSERT_EQ(c.version, 1);
    ASSERT_EQ(c.codec, MDW_CODEC_DAGCBOR);
    ASSERT_EQ(c.hash, MDW_MH_SHA256);
    mdw_buf b = MDW_BUF_INIT(128);
    ASSERT_OK(mdw_cid_to_text(&c, &b));
    ASSERT_STREQ(b.data, t);
    mdw_buf_release(&b);
    ASSERT_EQ(mdw_cid_check(&c, (const uint8_t *)"x", 1), MDW_ECORRUPT);
    /* prefix parse reports the length used; a cut CID or version 2 fails */
    uint8_t longer[40];
    memcpy(longer, bin, 36);
    size_t used = 0;
    ASSERT_OK(mdw_cid_parse(longer, sizeof longer, &c, &used));
    ASSERT_EQ(used, 36);
    ASSERT_EQ(mdw_cid_parse(bin, 35, &c, NULL), MDW_EMALFORMED);
    bin[0] = 2;
    ASSERT_EQ(mdw_cid_parse(bin, 36, &c, NULL), MDW_EMALFORMED);
    /* an unsupported hash is not trusted */
    const uint8_t sha512[] = {0x01, 0x71, 0x13, 0x02, 0xaa, 0xbb};
    ASSERT_OK(mdw_cid_parse(sha512, sizeof sha512, &c, NULL));
    ASSERT_EQ(mdw_cid_check(&c, (const uint8_t *)"x", 1), MDW_EUNIMPL);
}

int main(void)
{
    RUN(bytes_render_as_std_base64_without_padding);
    RUN(links_render_as_cid_text);
    RUN(keys_sorted_bytewise_and_scalars);
    RUN(floats_refused_in_records);
    RUN(dag_cbor_strictness);
    RUN(truncation_is_eof_with_offset);
    RUN(nesting_capped_without_stack_overflow);
    RUN(item_count_capped);
    RUN(canonical_encoding_sorts_and_omits);
    RUN(cid_text_round_trip_and_check);
    return TEST_REPORT();
}
