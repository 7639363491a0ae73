/*
** Unit tests for common/atname.h: one parser per AT Protocol name, each at
** its edges (lengths at and past the limit, the TID top bit, prefixes, n
** bounding the bytes read).
*/
#include "tests/test.h"

#include "common/atname.h"
#include "common/err.h"
#include "common/limits.h"

#define YES(f, s) ASSERT_MSG(f(s, strlen(s)), "%s(%s)", #f, s)
#define NO(f, s)  ASSERT_MSG(!f(s, strlen(s)), "!%s(%s)", #f, s)

TEST(did_syntax)
{
    const char *good[] = {"did:plc:z72i7hdynmk6r22z27h6tvur", "did:web:example.com",
                          "did:web:localhost%3A3000", "did:example:a:b"};
    const char *bad[] = {"did:plc:",   "did::abc",    "did:PLC:abc", "plc:abc", "did:web:host:",
                         "did:web:a%", "did:web:a b", "did:web:a/b", "did",     "did:web:a\"b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ASSERT_MSG(mdw_did_valid(good[i], strlen(good[i])), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_MSG(!mdw_did_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
    char big[MDW_MAX_DID_BYTES + 2];
    memcpy(big, "did:web:", 8);
    memset(big + 8, 'a', sizeof big - 9);
    big[sizeof big - 1] = '\0';
    ASSERT(!mdw_did_valid(big, strlen(big)));      /* 2049 bytes */
    ASSERT(mdw_did_valid(big, MDW_MAX_DID_BYTES)); /* 2048 bytes */
}

/* A feed URI through the canonical parser; owner copied out (NUL-terminated). */
static int feed_parse(const char *s, char *owner, size_t cap, char id[9])
{
    size_t olen = 0;
    int rc = mdw_feed_uri_parse(s, strlen(s), &olen, id);
    if (rc == 0) {
        if (olen + 1 > cap)
            return MDW_ETOOBIG;
        memcpy(owner, s + 5, olen);
        owner[olen] = '\0';
    }
    return rc;
}

TEST(feed_uri)
{
    char owner[MDW_MAX_DID_BYTES + 1], id[9];
    ASSERT_OK(feed_parse("at://did:plc:fakeowner0000000000000/app.bsky.feed.generator/0a1b2c3d",
                         owner, sizeof owner, id));
    ASSERT_STREQ(owner, "did:plc:fakeowner0000000000000");
    ASSERT_STREQ(id, "0a1b2c3d");
    const char *bad[] = {
        "",
        "at://",
        "at://did:plc:abc",
        "at://did:plc:abc/app.bsky.feed.generator/",
        "at://did:plc:abc/app.bsky.feed.generator/0A1B2C3D", /* uppercase */
        "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3",  /* 7 digits */
        "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3d4",
        "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3g",
        "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3d/",
        "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3d?x",
        "at://did:plc:abc/app.bsky.feed.post/0a1b2c3d",
        "at://alice.bsky.social/app.bsky.feed.generator/0a1b2c3d", /* handle, not a DID */
        "http://did:plc:abc/app.bsky.feed.generator/0a1b2c3d",
        "at://did:plc:abc//app.bsky.feed.generator/0a1b2c3d",
        "at://did:plc:abc/app.bsky.feed.generator/atr_0a1b",
        "at:///app.bsky.feed.generator/0a1b2c3d",            /* no owner */
        "at://x/y/app.bsky.feed.generator/0a1b2c3d",         /* owner with a path */
        "at://did:plc:a/b/app.bsky.feed.generator/0a1b2c3d", /* the same, DID-shaped */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_MSG(feed_parse(bad[i], owner, sizeof owner, id) == MDW_EMALFORMED, "%s", bad[i]);
    /* n bounds the parse: a valid prefix of a longer string is what is parsed. */
    const char *longer = "at://did:plc:abc/app.bsky.feed.generator/0a1b2c3dEXTRA";
    size_t olen = 0;
    ASSERT_OK(mdw_feed_uri_parse(longer, strlen(longer) - 5, &olen, id));
    ASSERT_EQ(olen, 11);
    ASSERT_EQ(mdw_feed_uri_parse(longer, strlen(longer), &olen, id), MDW_EMALFORMED);
}

TEST(handle_edges)
{
    char h[300];
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes: the longest handle. */
    memset(h, 'a', sizeof h);
    h[63] = h[127] = h[191] = '.';
    ASSERT(mdw_handle_valid(h, 253));
    ASSERT(!mdw_handle_valid(h, 254));
    /* A label of 64. */
    memset(h, 'a', 64);
    memcpy(h + 64, ".com", 4);
    ASSERT(!mdw_handle_valid(h, 68));
    ASSERT(mdw_handle_valid(h + 1, 67));
    YES(mdw_handle_valid, "a.co");
    YES(mdw_handle_valid, "xn--ls8h.test");
    NO(mdw_handle_valid, "");
    NO(mdw_handle_valid, "a.");
    NO(mdw_handle_valid, ".a.com");
    NO(mdw_handle_valid, "a..com");
    NO(mdw_handle_valid, "-a.com");
    NO(mdw_handle_valid, "a.com-");
    NO(mdw_handle_valid, "a.1com");
    NO(mdw_handle_valid, "a_b.com");
    YES(mdw_at_identifier_valid, "alice.test");
    YES(mdw_at_identifier_valid, "did:plc:abc");
    NO(mdw_at_identifier_valid, "did:plc:");
    NO(mdw_at_identifier_valid, "");
}

TEST(nsid_and_rkey_edges)
{
    YES(mdw_nsid_valid, "app.bsky.feed.post");
    YES(mdw_nsid_valid, "a.b.c");
    YES(mdw_nsid_valid, "com.ex-ample.fooBar2");
    NO(mdw_nsid_valid, "a.b");
    NO(mdw_nsid_valid, "1a.b.c");
    NO(mdw_nsid_valid, "a.b.1c");
    NO(mdw_nsid_valid, "a.b.c-d");
    NO(mdw_nsid_valid, "a.-b.c");
    NO(mdw_nsid_valid, "a..c");
    NO(mdw_nsid_valid, "a.b.c.");
    char s[600];
    memset(s, 'a', sizeof s);
    ASSERT(mdw_rkey_valid(s, 512));
    ASSERT(!mdw_rkey_valid(s, 513));
    ASSERT(!mdw_rkey_valid(s, 0));
    YES(mdw_rkey_valid, "self");
    YES(mdw_rkey_valid, "...");
    YES(mdw_rkey_valid, "a:b~c_d.e-f");
    NO(mdw_rkey_valid, ".");
    NO(mdw_rkey_valid, "..");
    NO(mdw_rkey_valid, "a/b");
    NO(mdw_rkey_valid, "a b");
    NO(mdw_rkey_valid, "a#b");
}

/*
** The TID spec: a 64-bit integer whose top bit is always 0, in 13
** base32-sortable characters (65 bits). The syntax (the reference regex)
** bounds the first character at 'j' (bit 64 zero); the time is refused when
** bit 63 is set too, first characters 'c'..'j'.
*/
TEST(tid_top_bit)
{
    int64_t t = -1;
    ASSERT_OK(mdw_tid_time("2222222222222", 13, &t));
    ASSERT_EQ(t, 0);
    ASSERT_OK(mdw_tid_time("bzzzzzzzzzzzz", 13, &t)); /* top bit 0, everything else 1 */
    ASSERT_EQ(t, (1LL << 53) - 1);
    YES(mdw_tid_valid, "bzzzzzzzzzzzz");
    YES(mdw_tid_valid, "c222222222222");                              /* syntax: yes; */
    ASSERT_EQ(mdw_tid_time("c222222222222", 13, &t), MDW_EMALFORMED); /* time: top bit set */
    YES(mdw_tid_valid, "jzzzzzzzzzzzz");
    ASSERT_EQ(mdw_tid_time("jzzzzzzzzzzzz", 13, &t), MDW_EMALFORMED);
    YES(mdw_tid_valid, "djpykdjpy6t2e"); /* found by fuzz_pds */
    ASSERT_EQ(mdw_tid_time("djpykdjpy6t2e", 13, &t), MDW_EMALFORMED);
    NO(mdw_tid_valid, "kzzzzzzzzzzzz"); /* bit 64: not even syntax */
    ASSERT_EQ(mdw_tid_time("kzzzzzzzzzzzz", 13, &t), MDW_EMALFORMED);
}

TEST(tid_syntax_and_roundtrip)
{
    int64_t t = 0;
    YES(mdw_tid_valid, "3kfwpqaijmk2c");
    NO(mdw_tid_valid, "3kfwpqaijmk2");
    NO(mdw_tid_valid, "3kfwpqaijmk2cc");
    NO(mdw_tid_valid, "3KFWPQAIJMK2C");
    NO(mdw_tid_valid, "3lqdkdjpy6t21"); /* '1' is not base32-sortable */
    ASSERT(!mdw_tid_valid("3lqdkdjpy6t2\0", 13));
    ASSERT_EQ(mdw_tid_time("3lqdkdjpy6t2\0", 13, &t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tid_time("self", 4, &t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tid_time("3lqdkdjpy6t21", 13, &t), MDW_EMALFORMED);
    /* A real record key (a like of the PDS corpus) is a 2023-2026 time. */
    ASSERT_OK(mdw_tid_time("3lqdkdjpy6t2e", 13, &t));
    ASSERT(t > 1672531200000000LL && t < 1798761600000000LL);
    char out[14];
    mdw_tid_make(0, 0, out);
    ASSERT_STREQ(out, "2222222222222");
    mdw_tid_make((1LL << 53) - 1, 1023, out);
    ASSERT_STREQ(out, "bzzzzzzzzzzzz");
    const int64_t times[] = {1, 1763878280000000LL, 1763878280000001LL, (1LL << 53) - 2};
    char prev[14] = "";
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        mdw_tid_make(times[i], 517, out);
        ASSERT(mdw_tid_valid(out, 13));
        ASSERT_OK(mdw_tid_time(out, 13, &t));
        ASSERT_EQ(t, times[i]);
        ASSERT(strcmp(prev, out) < 0); /* later times sort later */
        memcpy(prev, out, sizeof out);
    }
}

TEST(at_uri_split)
{
    mdw_at_uri p;
    const char *u = "at://did:plc:abc/app.bsky.feed.post/3kabc";
    ASSERT_OK(mdw_at_uri_split(u, strlen(u), &p));
    ASSERT(p.authority == u + 5 && p.authority_len == 11);
    ASSERT(p.collection_len == 18 && !memcmp(p.collection, "app.bsky.feed.post", 18));
    ASSERT(p.rkey_len == 5 && !memcmp(p.rkey, "3kabc", 5));
    ASSERT_OK(mdw_at_uri_split("at://alice.test", 15, &p));
    ASSERT(p.authority_len == 10 && p.collection_len == 0 && p.rkey_len == 0);
    ASSERT_OK(mdw_at_uri_split("at://alice.test/a.b.c", 21, &p));
    ASSERT(p.collection_len == 5 && p.rkey_len == 0);
    /* n bounds the bytes read: a prefix is parsed as itself. */
    ASSERT_OK(mdw_at_uri_split(u, 16, &p));
    ASSERT(p.authority_len == 11 && p.collection_len == 0);
    const char *bad[] = {
        "",
        "at://",
        "https://x.test/a.b.c/d",
        "at://did:plc:abc/app.bsky.feed.post/3kabc/",  /* trailing slash */
        "at://did:plc:abc/app.bsky.feed.post/3kabc/x", /* a fourth part */
        "at://did:plc:abc/app.bsky.feed.post/3kabc?x", /* a query */
        "at://did:plc:abc/app.bsky.feed.post/3k abc",  /* a space */
        "at:///app.bsky.feed.post/3kabc",              /* no authority */
        "at://a/b/c",                                  /* neither a handle nor an NSID */
        "at://did:plc:abc//3kabc",
        "at://did:plc:abc/app.bsky.feed.post/..",
        "at://did:plc:abc/app.bsky.feed.post/3kabc#/a", /* valid, but split takes no fragment */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ASSERT_MSG(mdw_at_uri_split(bad[i], strlen(bad[i]), &p) == MDW_EMALFORMED, "%s", bad[i]);
        ASSERT(p.authority == NULL && p.authority_len == 0);
    }
    YES(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc#/a");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc#a");
    char big[8200];
    memcpy(big, "at://alice.test/a.b.c/k#/", 25); /* a long fragment: rkeys stop at 512 */
    memset(big + 25, 'a', sizeof big - 25);
    ASSERT(mdw_at_uri_valid(big, 8192));
    ASSERT(!mdw_at_uri_valid(big, 8193));
}

TEST(hashtag_id_forms)
{
    uint8_t t[4];
    ASSERT_OK(mdw_tag_id_parse("0123abcd", 8, t));
    ASSERT(t[0] == 0x01 && t[1] == 0x23 && t[2] == 0xab && t[3] == 0xcd);
    ASSERT_OK(mdw_tag_id_parse("ffffffff", 8, t));
    ASSERT(t[0] == 0xff && t[3] == 0xff);
    ASSERT_OK(mdw_tag_id_parse("0123abcdXYZ", 8, t)); /* n bounds the read */
    ASSERT_EQ(mdw_tag_id_parse("0123ABCD", 8, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_id_parse("0123abc", 7, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_id_parse("0123abcde", 9, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_id_parse("0123abcg", 8, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_id_parse("0123 bcd", 8, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_id_parse("", 0, t), MDW_EMALFORMED);
    ASSERT_OK(mdw_tag_parse("atr_0123abcd", 12, t));
    ASSERT(t[0] == 0x01 && t[3] == 0xcd);
    ASSERT_EQ(mdw_tag_parse("#atr_0123abcd", 13, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_parse("0123abcd", 8, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_parse("atr_", 4, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_parse("ATR_0123abcd", 12, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_tag_parse("atr", 3, t), MDW_EMALFORMED);
    ASSERT_OK(mdw_hashtag_parse("#atr_0123abcd", 13, t));
    ASSERT(t[0] == 0x01 && t[3] == 0xcd);
    ASSERT_EQ(mdw_hashtag_parse("atr_0123abcd", 12, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_hashtag_parse("#atr_0123abcd ", 14, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_hashtag_parse("\xef\xbc\x83"
                                "atr_0123abcd",
                                15, t),
              MDW_EMALFORMED); /* fullwidth # */
    ASSERT_EQ(mdw_hashtag_parse("#", 1, t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_hashtag_parse("", 0, t), MDW_EMALFORMED);
}

int main(void)
{
    RUN(did_syntax);
    RUN(feed_uri);
    RUN(handle_edges);
    RUN(nsid_and_rkey_edges);
    RUN(tid_top_bit);
    RUN(tid_syntax_and_roundtrip);
    RUN(at_uri_split);
    RUN(hashtag_id_forms);
    return TEST_REPORT();
}
