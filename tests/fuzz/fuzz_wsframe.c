/*
** tests/fuzz/fuzz_wsframe.c — libFuzzer target for the WebSocket frame
** parser and the handshake response check (firehose/wsframe.c).
**
** Byte 0 picks the target. Even: the rest is a stream of server frames
** (byte 1 sets the message cap, byte 2 where the stream is cut in two). It
** is parsed whole by one parser and in two reads by another, and both must
** agree exactly: messages (opcode, length, bytes, in order), skipped-oversize
** count, error or not, close state and code, bytes queued to send. A parser
** that behaves differently depending on where reads end is the bug this
** looks for. Odd: the rest is a server's response head, checked against the
** key of RFC 6455's example, copied to a buffer of exactly its size (ASan
** catches a read past it); an accepted head must end in CRLF CRLF within it.
** Seeds: tests/fuzz/corpus/wsframe (frames as the replay server and Jetstream
** send them, fragments, control frames, good and bad 101 responses).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "firehose/wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
    uint64_t hash, count, oversize;
} rec;

static void mix(rec *r, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ p[i]) * 1099511628211ull;
}

static void on_msg(void *ctx, int op, const uint8_t *d, size_t n)
{
    rec *r = ctx;
    uint8_t hdr[9] = {(uint8_t)op};
    for (int i = 0; i < 8; i++)
        hdr[1 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    mix(r, hdr, sizeof hdr);
    mix(r, d, n);
    r->count++;
}

static void on_over(void *ctx, int op, const uint8_t *head, size_t n)
{
    rec *r = ctx;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < n; i++) /* the head must be readable */
        sink ^= head[i];
    (void)sink;
    r->oversize++;
}

static void run(const uint8_t *s, size_t n, size_t max, size_t cut, rec *r, int *rc, int *closed,
                int *code, size_t *out)
{
    mdw_wsframe_cbs cb = {on_msg, on_over, r};
    mdw_wsframe *p;
    if (mdw_wsframe_new(&p, max, &cb))
        abort();
    *rc = mdw_wsframe_feed(p, s, cut);
    if (*rc == 0)
        *rc = mdw_wsframe_feed(p, s + cut, n - cut);
    *closed = mdw_wsframe_closed(p, code);
    mdw_wsframe_out(p, out);
    mdw_wsframe_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        size_t n = size - 1;
        char *buf = malloc(n ? n : 1);
        if (!buf)
            return 0;
        memcpy(buf, data + 1, n);
        size_t hl = 0;
        char err[160];
        int rc = mdw_ws_handshake_check(buf, n, "dGhlIHNhbXBsZSBub25jZQ==", &hl, err, sizeof err);
        if (rc == 0 && (hl < 4 || hl > n || memcmp(buf + hl - 4, "\r\n\r\n", 4) != 0))
            abort();
        if (rc != 0 && rc != MDW_EAGAIN && rc != MDW_ETOOBIG && rc != MDW_EMALFORMED)
            abort();
        free(buf);
        return 0;
    }
    if (size < 3)
        return 0;
    size_t n = size - 3;
    uint8_t *s = malloc(n ? n : 1);
    if (!s)
        return 0;
    memcpy(s, data + 3, n);
    size_t max = 1 + (size_t)data[1] * 64;
    size_t cut = n ? (size_t)data[2] * n / 255 : 0;
    rec a = {14695981039346656037ull, 0, 0}, b = a;
    int rca, rcb, cla, clb, coa = 0, cob = 0;
    size_t outa, outb;
    run(s, n, max, n, &a, &rca, &cla, &coa, &outa);
    run(s, n, max, cut, &b, &rcb, &clb, &cob, &outb);
    if (a.hash != b.hash || a.count != b.count || a.oversize != b.oversize || rca != rcb ||
        cla != clb || coa != cob || outa != outb)
        abort();
    free(s);
    return 0;
}
