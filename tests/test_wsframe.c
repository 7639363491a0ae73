/*
** tests/test_wsframe.c — the RFC 6455 client framing (firehose/wsframe.c):
** every server frame form (7/16/64-bit lengths, text, binary, fragments,
** ping, pong, close), fed whole, split at every byte boundary and byte by
** byte; control frames between fragments; the size cap; every protocol error
** the parser must refuse; masked client frames; the Upgrade request and the
** 101 response check (the RFC's own key/accept example, bad responses).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "firehose/wsframe.h"
#include "tests/test.h"
#include "common/banned.h"

/* ------------------------------------------------------------- helpers */

typedef struct got {
    int n, oversize;
    int op[64];
    size_t len[64];
    char *data[64];
    const uint8_t *ptr[64]; /* where the callback saw it (zero-copy check) */
    size_t over_head[16];
} got;

static void on_msg(void *ctx, int op, const uint8_t *d, size_t n)
{
    got *g = ctx;
    if (g->n >= 64)
        return;
    g->op[g->n] = op;
    g->len[g->n] = n;
    g->ptr[g->n] = d;
    g->data[g->n] = malloc(n + 1);
    memcpy(g->data[g->n], d, n);
    g->data[g->n][n] = 0;
    g->n++;
}

static void on_over(void *ctx, int op, const uint8_t *head, size_t n)
{
    got *g = ctx;
    if (g->oversize < 16)
        g->over_head[g->oversize] = n;
    g->oversize++;
}

static void got_free(got *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->data[i]);
    memset(g, 0, sizeof *g);
}

static mdw_wsframe *parser(got *g, size_t max)
{
    mdw_wsframe_cbs cb = {on_msg, on_over, g};
    mdw_wsframe *p = NULL;
    if (mdw_wsframe_new(&p, max, &cb) != 0)
        abort();
    return p;
}

/* An unmasked server frame; len64 forces the 64-bit form, len16 the 16-bit one. */
static void sframe(mdw_buf *b, int op, int fin, const void *pl, size_t n, int force)
{
    uint8_t h[10];
    size_t hl = 2;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (n < 126 && !force) {
        h[1] = (uint8_t)n;
    } else if (n < 65536 && force != 64) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    mdw_buf_append(b, h, hl);
    mdw_buf_append(b, pl, n);
}

/* Reads one masked client frame from out: opcode, unmasked payload. */
static int client_frame(const uint8_t *f, size_t n, int *op, uint8_t *pl, size_t *pn)
{
    if (n < 2 || !(f[1] & 0x80))
        return -1;
    *op = f[0] & 0x0f;
    size_t len = f[1] & 0x7f, hl = 2;
    if (len == 126) {
        len = (size_t)f[2] << 8 | f[3];
        hl = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | f[2 + i];
        hl = 10;
    }
    if (n < hl + 4 + len)
        return -1;
    const uint8_t *m = f + hl;
    for (size_t i = 0; i < len; i++)
        pl[i] = f[hl + 4 + i] ^ m[i & 3];
    *pn = len;
    return (int)(hl + 4 + len);
}

static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(c + (char)(i % 23));
    s[n] = 0;
    return s;
}

/*
** The mixed stream used by the split tests: short text, ping, 16-bit text,
** a fragmented text with a ping and a pong between its fragments, empty
** binary, 16-bit-encoded short binary, then a close with a reason.
*/
static void mixed_stream(mdw_buf *b, char **t300)
{
    *t300 = filled(300, 'a');
    sframe(b, MDW_WS_TEXT, 1, "{\"a\":1}", 7, 0);
    sframe(b, MDW_WS_PING, 1, "hb", 2, 0);
    sframe(b, MDW_WS_TEXT, 1, *t300, 300, 0);
    sframe(b, MDW_WS_TEXT, 0, "frag-", 5, 0);
    sframe(b, MDW_WS_PING, 1, "", 0, 0);
    sframe(b, MDW_WS_CONT, 0, "men", 3, 0);
    sframe(b, MDW_WS_PONG, 1, "x", 1, 0);
    sframe(b, MDW_WS_CONT, 1, "ted", 3, 0);
    sframe(b, MDW_WS_BINARY, 1, "", 0, 0);
    sframe(b, MDW_WS_BINARY, 1, "\x00\xff\x01", 3, 16);
    sframe(b, MDW_WS_CLOSE, 1,
           "\x03\xe8"
           "bye",
           5, 0);
}

static int check_mixed(got *g, mdw_wsframe *p, const char *t300)
{
    int code = 0;
    if (g->n != 5 || g->oversize)
        return 0;
    if (g->op[0] != MDW_WS_TEXT || g->len[0] != 7 || memcmp(g->data[0], "{\"a\":1}", 7))
        return 0;
    if (g->len[1] != 300 || memcmp(g->data[1], t300, 300))
        return 0;
    if (g->op[2] != MDW_WS_TEXT || g->len[2] != 11 || strcmp(g->data[2], "frag-mented"))
        return 0;
    if (g->op[3] != MDW_WS_BINARY || g->len[3] != 0)
        return 0;
    if (g->op[4] != MDW_WS_BINARY || g->len[4] != 3 || memcmp(g->data[4], "\x00\xff\x01", 3))
        return 0;
    if (!mdw_wsframe_closed(p, &code) || code != 1000)
        return 0;
    /* queued: pong "hb", pong "", close 1000 */
    size_t n;
    const uint8_t *o = mdw_wsframe_out(p, &n);
    uint8_t pl[200];
    size_t pn;
    int op, k;
    if (!o || (k = client_frame(o, n, &op, pl, &pn)) < 0 || op != MDW_WS_PONG || pn != 2 ||
        memcmp(pl, "hb", 2))
        return 0;
    o += k, n -= (size_t)k;
    if ((k = client_frame(o, n, &op, pl, &pn)) < 0 || op != MDW_WS_PONG || pn != 0)
        return 0;
    o += k, n -= (size_t)k;
    if ((k = client_frame(o, n, &op, pl, &pn)) < 0 || op != MDW_WS_CLOSE || pn != 2 ||
        pl[0] != 0x03 || pl[1] != 0xe8)
        return 0;
    return n == (size_t)k;
}

/* --------------------------------------------------------------- tests */

TEST(whole_frames_are_delivered_in_place)
{
    got g = {0};
    mdw_wsframe *p = parser(&g, 1 << 20);
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    char *big = filled(70000, 'A');
    sframe(&b, MDW_WS_TEXT, 1, "hello", 5, 0);
    sframe(&b, MDW_WS_TEXT, 1, big, 200, 0);      /* 16-bit length */
    sframe(&b, MDW_WS_BINARY, 1, big, 70000, 0);  /* 64-bit length */
    sframe(&b, MDW_WS_TEXT, 1, "short64", 7, 64); /* 64-bit form for a short payload */
    sframe(&b, MDW_WS_TEXT, 1, big, 65535, 0);    /* largest 16-bit */
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)b.data, b.len));
    ASSERT_EQ(g.n, 5);
    ASSERT_EQ(g.len[0], 5);
    ASSERT(!memcmp(g.data[0], "hello", 5));
    ASSERT_EQ(g.len[1], 200);
    ASSERT_EQ(g.op[2], MDW_WS_BINARY);
    ASSERT_EQ(g.len[2], 70000);
    ASSERT(!memcmp(g.data[2], big, 70000));
    ASSERT(!strcmp(g.data[3], "short64"));
    ASSERT_EQ(g.len[4], 65535);
    /* zero copy: every pointer lies inside the buffer that was fed */
    for (int i = 0; i < g.n; i++)
        ASSERT(g.ptr[i] >= (const uint8_t *)b.data &&
               g.ptr[i] + g.len[i] <= (uint8_t *)b.data + b.len);
    ASSERT_EQ(mdw_wsframe_messages(p), 5);
    ASSERT_EQ(mdw_wsframe_payload_bytes(p), 5 + 200 + 70000 + 7 + 65535);
    size_t n;
    ASSERT(mdw_wsframe_out(p, &n) == NULL && n == 0);
    free(big);
    mdw_buf_release(&b);
    got_free(&g);
    mdw_wsframe_free(p);
}

TEST(mixed_stream_split_at_every_byte_boundary)
{
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    char *t300;
    mixed_stream(&b, &t300);
    const uint8_t *s = (const uint8_t *)b.data;
    for (size_t cut = 0; cut <= b.len; cut++) {
        got g = {0};
        mdw_wsframe *p = parser(&g, 4096);
        ASSERT_OK(mdw_wsframe_feed(p, s, cut));
        ASSERT_OK(mdw_wsframe_feed(p, s + cut, b.len - cut));
        ASSERT_MSG(check_mixed(&g, p, t300), "cut at %zu", cut);
        got_free(&g);
        mdw_wsframe_free(p);
    }
    /* two cuts everywhere in the first 40 bytes (headers, the ping, short payloads) */
    for (size_t c1 = 0; c1 < 40; c1++)
        for (size_t c2 = c1; c2 < 40; c2++) {
            got g = {0};
            mdw_wsframe *p = parser(&g, 4096);
            ASSERT_OK(mdw_wsframe_feed(p, s, c1));
            ASSERT_OK(mdw_wsframe_feed(p, s + c1, c2 - c1));
            ASSERT_OK(mdw_wsframe_feed(p, s + c2, b.len - c2));
            ASSERT_MSG(check_mixed(&g, p, t300), "cuts at %zu, %zu", c1, c2);
            got_free(&g);
            mdw_wsframe_free(p);
        }
    /* one byte at a time */
    got g = {0};
    mdw_wsframe *p = parser(&g, 4096);
    for (size_t i = 0; i < b.len; i++)
        ASSERT_OK(mdw_wsframe_feed(p, s + i, 1));
    ASSERT(check_mixed(&g, p, t300));
    got_free(&g);
    mdw_wsframe_free(p);
    free(t300);
    mdw_buf_release(&b);
}

TEST(long_frame_split_in_its_header_and_payload)
{
    char *big = filled(70000, 'k');
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    sframe(&b, MDW_WS_TEXT, 1, big, 70000, 0); /* 10-byte header */
    sframe(&b, MDW_WS_TEXT, 1, "after", 5, 0);
    const uint8_t *s = (const uint8_t *)b.data;
    size_t cuts[] = {0, 1, 2, 3, 5, 9, 10, 11, 4096, 65536, 70009, 70010, 70011, 70012, 70016};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        got g = {0};
        mdw_wsframe *p = parser(&g, 100000);
        ASSERT_OK(mdw_wsframe_feed(p, s, cuts[i]));
        ASSERT_OK(mdw_wsframe_feed(p, s + cuts[i], b.len - cuts[i]));
        ASSERT_MSG(g.n == 2 && g.len[0] == 70000 && !memcmp(g.data[0], big, 70000) &&
                       !strcmp(g.data[1], "after"),
                   "cut at %zu: %d messages", cuts[i], g.n);
        got_free(&g);
        mdw_wsframe_free(p);
    }
    free(big);
    mdw_buf_release(&b);
}

TEST(fragments_with_control_frames_between)
{
    got g = {0};
    mdw_wsframe *p = parser(&g, 4096);
    mdw_buf b = MDW_BUF_INIT(4096);
    sframe(&b, MDW_WS_BINARY, 0, "ab", 2, 0);
    sframe(&b, MDW_WS_PING, 1, "p1", 2, 0);
    sframe(&b, MDW_WS_CONT, 0, "", 0, 0); /* empty fragment */
    sframe(&b, MDW_WS_PONG, 1, "", 0, 0);
    sframe(&b, MDW_WS_CONT, 0, "cd", 2, 16);
    sframe(&b, MDW_WS_PING, 1, "p2", 2, 0);
    sframe(&b, MDW_WS_CONT, 1, "e", 1, 0);
    sframe(&b, MDW_WS_TEXT, 0, "", 0, 0); /* a message of empty fragments */
    sframe(&b, MDW_WS_CONT, 1, "", 0, 0);
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)b.data, b.len));
    ASSERT_EQ(g.n, 2);
    ASSERT_EQ(g.op[0], MDW_WS_BINARY);
    ASSERT(g.len[0] == 5 && !memcmp(g.data[0], "abcde", 5));
    ASSERT_EQ(g.op[1], MDW_WS_TEXT);
    ASSERT_EQ(g.len[1], 0);
    size_t n;
    const uint8_t *o = mdw_wsframe_out(p, &n);
    uint8_t pl[200];
    size_t pn;
    int op, k = client_frame(o, n, &op, pl, &pn);
    ASSERT(k > 0 && op == MDW_WS_PONG && pn == 2 && !memcmp(pl, "p1", 2));
    ASSERT(client_frame(o + k, n - (size_t)k, &op, pl, &pn) > 0 && !memcmp(pl, "p2", 2));
    mdw_wsframe_out_done(p, (size_t)k);
    ASSERT(mdw_wsframe_out(p, &n) != NULL && n == (size_t)k);
    mdw_wsframe_out_done(p, n);
    ASSERT(mdw_wsframe_out(p, &n) == NULL);
    mdw_buf_release(&b);
    got_free(&g);
    mdw_wsframe_free(p);
}

TEST(oversize_messages_are_skipped_and_the_stream_goes_on)
{
    got g = {0};
    mdw_wsframe *p = parser(&g, 100);
    mdw_buf b = MDW_BUF_INIT(1 << 16);
    char *big = filled(5000, 'x');
    sframe(&b, MDW_WS_TEXT, 1, big, 150, 0); /* one frame over the cap */
    sframe(&b, MDW_WS_TEXT, 1, big, 100, 0); /* exactly the cap: delivered */
    sframe(&b, MDW_WS_TEXT, 0, big, 60, 0);  /* fragments: 60 + 60 > 100 */
    sframe(&b, MDW_WS_PING, 1, "in", 2, 0);  /* still answered while skipping */
    sframe(&b, MDW_WS_CONT, 0, big, 60, 0);
    sframe(&b, MDW_WS_CONT, 1, big, 4000, 0); /* rest of the skipped message */
    sframe(&b, MDW_WS_TEXT, 1, "ok", 2, 0);
    const uint8_t *s = (const uint8_t *)b.data;
    for (size_t cut = 0; cut <= b.len; cut += 7) {
        got_free(&g);
        mdw_wsframe_reset(p);
        ASSERT_OK(mdw_wsframe_feed(p, s, cut));
        ASSERT_OK(mdw_wsframe_feed(p, s + cut, b.len - cut));
        ASSERT_MSG(g.n == 2 && g.len[0] == 100 && !strcmp(g.data[1], "ok"), "cut %zu", cut);
        ASSERT_MSG(g.oversize == 2, "cut %zu: oversize %d", cut, g.oversize);
        ASSERT(g.over_head[0] <= 100 && g.over_head[1] == 60);
        size_t n;
        ASSERT(mdw_wsframe_out(p, &n) != NULL); /* the pong */
    }
    ASSERT_EQ(mdw_wsframe_payload_bytes(p), 150 + 100 + 60 + 60 + 4000 + 2);
    free(big);
    mdw_buf_release(&b);
    got_free(&g);
    mdw_wsframe_free(p);
}

/* Feeds bytes, expects MDW_EMALFORMED with `want` in the error and a queued close 1002. */
static int refused(const char *bytes, size_t n, const char *want, int prefix_frames)
{
    got g = {0};
    mdw_wsframe *p = parser(&g, 1 << 20);
    int ok = mdw_wsframe_feed(p, (const uint8_t *)bytes, n) == MDW_EMALFORMED &&
             strstr(mdw_wsframe_error(p), want) != NULL;
    /* a second feed keeps failing */
    ok = ok && mdw_wsframe_feed(p, (const uint8_t *)"\x81\x00", 2) == MDW_EMALFORMED;
    size_t on;
    const uint8_t *o = mdw_wsframe_out(p, &on);
    uint8_t pl[200];
    size_t pn;
    int op;
    ok = ok && o && client_frame(o, on, &op, pl, &pn) > 0 && op == MDW_WS_CLOSE && pn == 2 &&
         pl[0] == 0x03 && pl[1] == 0xea; /* 1002 */
    ok = ok && g.n == prefix_frames;
    if (!ok)
        fprintf(stderr, "    error was \"%s\"\n", mdw_wsframe_error(p));
    got_free(&g);
    mdw_wsframe_free(p);
    return ok;
}

TEST(protocol_errors_fail_the_connection)
{
    ASSERT(refused("\x81\x85\x01\x02\x03\x04hello", 11, "masked frame", 0));
    ASSERT(refused("\xc1\x01x", 3, "reserved bits", 0)); /* RSV1 (permessage-deflate not offered) */
    ASSERT(refused("\xa1\x01x", 3, "reserved bits", 0));
    ASSERT(refused("\x91\x01x", 3, "reserved bits", 0));
    ASSERT(refused("\x83\x00", 2, "unknown opcode 0x3", 0));
    ASSERT(refused("\x87\x00", 2, "unknown opcode 0x7", 0));
    ASSERT(refused("\x8b\x00", 2, "unknown opcode 0xb", 0));
    ASSERT(refused("\x8f\x00", 2, "unknown opcode 0xf", 0));
    ASSERT(refused("\x09\x00", 2, "fragmented control frame", 0));
    ASSERT(refused("\x89\x7e\x00\x7e", 4, "over 125 bytes", 0));
    ASSERT(refused("\x88\x7f\x00\x00\x00\x00\x00\x00\x00\x7e", 10, "over 125 bytes", 0));
    ASSERT(refused("\x80\x01x", 3, "continuation frame without", 0));
    ASSERT(refused("\x01\x01"
                   "a\x81\x01"
                   "b",
                   6, "new data frame inside", 0));
    ASSERT(refused("\x02\x01"
                   "a\x82\x01"
                   "b",
                   6, "new data frame inside", 0));
    ASSERT(refused("\x81\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 10, "top bit", 0));
    ASSERT(refused("\x88\x01\x03", 3, "1-byte payload", 0));
    /* good frames before the bad one are delivered */
    ASSERT(refused("\x81\x02hi\x81\x02ok\x84\x00", 10, "unknown opcode 0x4", 2));
    /* an error found in a header split across reads */
    got g = {0};
    mdw_wsframe *p = parser(&g, 100);
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)"\x81", 1));
    ASSERT_EQ(mdw_wsframe_feed(p, (const uint8_t *)"\x81", 1), MDW_EMALFORMED);
    ASSERT(strstr(mdw_wsframe_error(p), "masked"));
    mdw_wsframe_reset(p); /* a new connection starts clean */
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)"\x81\x02ok", 4));
    ASSERT_EQ(g.n, 1);
    got_free(&g);
    mdw_wsframe_free(p);
}

TEST(close_ends_parsing_and_is_answered_once)
{
    got g = {0};
    mdw_wsframe *p = parser(&g, 100);
    int code = 0;
    /* close without a status: 1005, empty reply; bytes after it are ignored */
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)"\x88\x00\x81\x02hi", 6));
    ASSERT(mdw_wsframe_closed(p, &code) && code == 1005);
    ASSERT_EQ(g.n, 0);
    size_t n;
    const uint8_t *o = mdw_wsframe_out(p, &n);
    uint8_t pl[200];
    size_t pn;
    int op;
    ASSERT(o && client_frame(o, n, &op, pl, &pn) == (int)n && op == MDW_WS_CLOSE && pn == 0);
    /* we closed first (1000): the server's close is not answered again */
    mdw_wsframe_reset(p);
    ASSERT(!mdw_wsframe_closed(p, NULL));
    mdw_wsframe_send_close(p, 1000);
    mdw_wsframe_send_close(p, 1000); /* once */
    o = mdw_wsframe_out(p, &n);
    ASSERT(client_frame(o, n, &op, pl, &pn) == (int)n && op == MDW_WS_CLOSE && pl[0] == 0x03 &&
           pl[1] == 0xe8);
    mdw_wsframe_out_done(p, n);
    ASSERT_OK(mdw_wsframe_feed(p, (const uint8_t *)"\x89\x00\x88\x02\x03\xe9", 6));
    ASSERT(mdw_wsframe_closed(p, &code) && code == 1001);
    ASSERT(mdw_wsframe_out(p, &n) == NULL); /* no pong after our close, no second close */
    got_free(&g);
    mdw_wsframe_free(p);
}

TEST(client_frames_are_masked_in_every_length_form)
{
    size_t lens[] = {0, 1, 125, 126, 65535, 65536, 70000};
    uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    char *pl = filled(70000, 'm');
    uint8_t *back = malloc(70000);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        mdw_buf b = MDW_BUF_INIT(1 << 20);
        ASSERT_OK(mdw_wsframe_build(&b, MDW_WS_BINARY, 1, pl, lens[i], mask));
        const uint8_t *f = (const uint8_t *)b.data;
        size_t hl = lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10;
        ASSERT_EQ(b.len, hl + 4 + lens[i]);
        ASSERT_EQ(f[0], 0x82);
        ASSERT(f[1] & 0x80);
        ASSERT(!memcmp(f + hl, mask, 4));
        int op;
        size_t pn;
        ASSERT(client_frame(f, b.len, &op, back, &pn) == (int)b.len);
        ASSERT(pn == lens[i] && !memcmp(back, pl, pn));
        if (lens[i] >= 4)
            ASSERT(memcmp(f + hl + 4, pl, 4) != 0); /* really masked */
        mdw_buf_release(&b);
    }
    mdw_buf small = MDW_BUF_INIT(10);
    ASSERT_EQ(mdw_wsframe_build(&small, MDW_WS_PONG, 1, pl, 20, mask), MDW_ETOOBIG);
    ASSERT_EQ(small.len, 0);
    mdw_buf_release(&small);
    free(back);
    free(pl);
}

TEST(handshake_request_key_and_accept)
{
    char acc[MDW_WS_ACCEPT_LEN + 1];
    mdw_ws_handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", acc); /* RFC 6455 1.3 */
    ASSERT(!strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    char k1[MDW_WS_KEY_LEN + 1], k2[MDW_WS_KEY_LEN + 1];
    mdw_ws_handshake_key(k1);
    mdw_ws_handshake_key(k2);
    ASSERT_EQ(strlen(k1), 24);
    ASSERT(k1[22] == '=' && k1[23] == '=');
    ASSERT(strcmp(k1, k2) != 0);
    mdw_buf b = MDW_BUF_INIT(4096);
    ASSERT_OK(mdw_ws_handshake_request(&b, "jetstream1.us-east.bsky.network", 443, 1,
                                       "/subscribe?wantedCollections=app.bsky.feed.post", k1));
    ASSERT(
        !strncmp(b.data, "GET /subscribe?wantedCollections=app.bsky.feed.post HTTP/1.1\r\n", 62));
    ASSERT(strstr(b.data, "\r\nHost: jetstream1.us-east.bsky.network\r\n"));
    ASSERT(strstr(b.data, "\r\nUpgrade: websocket\r\n"));
    ASSERT(strstr(b.data, "\r\nConnection: Upgrade\r\n"));
    ASSERT(strstr(b.data, "\r\nSec-WebSocket-Version: 13\r\n"));
    ASSERT(strstr(b.data, k1));
    ASSERT(b.len > 4 && !strcmp(b.data + b.len - 4, "\r\n\r\n"));
    mdw_buf_reset(&b);
    ASSERT_OK(mdw_ws_handshake_request(&b, "127.0.0.1", 8080, 0, "/x", k1));
    ASSERT(strstr(b.data, "\r\nHost: 127.0.0.1:8080\r\n"));
    mdw_buf_reset(&b);
    ASSERT_EQ(mdw_ws_handshake_request(&b, "h", 80, 0, "/x\r\nEvil: 1", k1), MDW_EMALFORMED);
    ASSERT_EQ(mdw_ws_handshake_request(&b, "h\r\n", 80, 0, "/x", k1), MDW_EMALFORMED);
    ASSERT_EQ(mdw_ws_handshake_request(&b, "h", 80, 0, "x", k1), MDW_EMALFORMED);
    mdw_buf_release(&b);
}

static const char *KEY = "dGhlIHNhbXBsZSBub25jZQ==";

static int check_resp(const char *r, char *err, size_t *hl)
{
    return mdw_ws_handshake_check(r, strlen(r), KEY, hl, err, 200);
}

TEST(handshake_response_accepted)
{
    const char *r = "HTTP/1.1 101 Switching Protocols\r\n"
                    "upgrade: WebSocket\r\n"
                    "CONNECTION: keep-alive, Upgrade\r\n"
                    "Date: Mon, 23 Nov 2026 09:00:00 GMT\r\n"
                    "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n"
                    "\r\n"
                    "\x81\x02hi";
    char err[200];
    size_t hl = 0, n = strlen(r);
    ASSERT_OK(check_resp(r, err, &hl));
    ASSERT_EQ(hl, n - 4); /* the frame after the head is not part of it */
    /* every prefix short of the head's end: not yet complete */
    for (size_t i = 0; i < hl; i++) {
        int rc = mdw_ws_handshake_check(r, i, KEY, &hl, err, sizeof err);
        ASSERT_MSG(rc == MDW_EAGAIN, "prefix %zu: %d (%s)", i, rc, err);
        hl = n - 4;
    }
    /* minimal, with a reason-less status line */
    ASSERT_OK(check_resp("HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                         err, &hl));
}

TEST(handshake_response_refused)
{
    char err[200];
    size_t hl;
    struct {
        const char *resp, *why;
    } bad[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "status 200"},
        {"HTTP/1.1 404 Not Found\r\n\r\n", "status 404"},
        {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\n", "status 429"},
        {"HTTP/1.0 101 Switching\r\n\r\n", "bad status line"},
        {"HTTP/1.1 1011 x\r\n\r\n", "bad status line"},
        {"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP response"},
        {"HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         "no Upgrade header"},
        {"HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "is not websocket"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         "no Connection header"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n",
         "has no upgrade"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "no Sec-WebSocket-Accept"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n",
         "does not match"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
         "does not match"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
         "extension"},
        {"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
         "subprotocol"},
        {"HTTP/1.1 101 S\r\nUpgrade websocket\r\n\r\n", "without a name"},
        {"HTTP/1.1 101 S\r\n: x\r\n\r\n", "without a name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = check_resp(bad[i].resp, err, &hl);
        ASSERT_MSG(rc == MDW_EMALFORMED && strstr(err, bad[i].why), "case %zu: rc %d err \"%s\"", i,
                   rc, err);
    }
    /* a NUL inside the head */
    const char nul[] = "HTTP/1.1 101 S\r\nX: a\0b\r\n\r\n";
    ASSERT_EQ(mdw_ws_handshake_check(nul, sizeof nul - 1, KEY, &hl, err, sizeof err),
              MDW_EMALFORMED);
    /* no end within the cap */
    size_t big = 20000;
    char *r = malloc(big);
    memcpy(r, "HTTP/1.1 101 S\r\n", 16);
    memset(r + 16, 'x', big - 16);
    ASSERT_EQ(mdw_ws_handshake_check(r, big, KEY, &hl, err, sizeof err), MDW_ETOOBIG);
    ASSERT_EQ(mdw_ws_handshake_check(r, 1000, KEY, &hl, err, sizeof err), MDW_EAGAIN);
    free(r);
}

int main(void)
{
    RUN(whole_frames_are_delivered_in_place);
    RUN(mixed_stream_split_at_every_byte_boundary);
    RUN(long_frame_split_in_its_header_and_payload);
    RUN(fragments_with_control_frames_between);
    RUN(oversize_messages_are_skipped_and_the_stream_goes_on);
    RUN(protocol_errors_fail_the_connection);
    RUN(close_ends_parsing_and_is_answered_once);
    RUN(client_frames_are_masked_in_every_length_form);
    RUN(handshake_request_key_and_accept);
    RUN(handshake_response_accepted);
    RUN(handshake_response_refused);
    return TEST_REPORT();
}
