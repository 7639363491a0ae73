/*
** firehose/wsframe.c — see wsframe.h. RFC 6455 sections cited inline.
*/
#include "firehose/wsframe.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/mem.h"
#include "common/banned.h"

#define OUT_MAX (64u * 1024) /* queued pongs and closes; a ping flood is not answered past it */

struct mdw_wsframe {
    size_t max_msg;
    mdw_wsframe_cbs cb;
    uint8_t hdr[14]; /* a header split across reads */
    size_t hdr_have;
    int in_frame; /* header read, payload pending */
    int f_op, f_fin;
    uint64_t f_left; /* payload bytes of the current frame still to come */
    int msg_op;      /* opcode of the data message in progress, 0 = none */
    int msg_skip;    /* the message in progress is over max_msg */
    mdw_buf msg;     /* reassembly: fragments, or a frame split across reads */
    uint8_t ctrl[MDW_WS_MAX_CONTROL];
    size_t ctrl_len;
    mdw_buf out;
    int closed, close_code, close_sent, failed;
    char err[160];
    uint64_t payload_bytes, messages;
};

int mdw_wsframe_new(mdw_wsframe **out, size_t max_msg, const mdw_wsframe_cbs *cb)
{
    if (max_msg < 1 || !cb || !cb->on_message || !cb->on_oversize)
        return MDW_ECONFIG;
    mdw_wsframe *p = xcalloc(1, sizeof *p);
    p->max_msg = max_msg;
    p->cb = *cb;
    mdw_buf_init(&p->msg, max_msg);
    mdw_buf_init(&p->out, OUT_MAX);
    *out = p;
    return 0;
}

void mdw_wsframe_free(mdw_wsframe *p)
{
    if (!p)
        return;
    mdw_buf_release(&p->msg);
    mdw_buf_release(&p->out);
    free(p);
}

void mdw_wsframe_reset(mdw_wsframe *p)
{
    p->hdr_have = 0;
    p->in_frame = p->f_op = p->f_fin = 0;
    p->f_left = 0;
    p->msg_op = p->msg_skip = 0;
    mdw_buf_reset(&p->msg);
    p->ctrl_len = 0;
    mdw_buf_reset(&p->out);
    p->closed = p->close_code = p->close_sent = p->failed = 0;
    p->err[0] = '\0';
    p->payload_bytes = p->messages = 0;
}

const char *mdw_wsframe_error(const mdw_wsframe *p)
{
    return p->err;
}

int mdw_wsframe_closed(const mdw_wsframe *p, int *code)
{
    if (code)
        *code = p->close_code;
    return p->closed;
}

uint64_t mdw_wsframe_payload_bytes(const mdw_wsframe *p)
{
    return p->payload_bytes;
}

uint64_t mdw_wsframe_messages(const mdw_wsframe *p)
{
    return p->messages;
}

/* ------------------------------------------------------------- client frames */

int mdw_wsframe_build(mdw_buf *out, int opcode, int fin, const void *payload, size_t len,
                      const uint8_t mask[4])
{
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        h[1] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, mask, 4); /* 5.3: every client frame is masked */
    hl += 4;
    if (len > SIZE_MAX - hl || mdw_buf_reserve(out, hl + len) != 0)
        return MDW_ETOOBIG;
    memcpy(out->data + out->len, h, hl);
    uint8_t *d = (uint8_t *)out->data + out->len + hl;
    const uint8_t *s = payload;
    for (size_t i = 0; i < len; i++)
        d[i] = s[i] ^ mask[i & 3];
    out->len += hl + len;
    out->data[out->len] = '\0';
    return 0;
}

static void queue_frame(mdw_wsframe *p, int opcode, const void *payload, size_t len)
{
    uint8_t mask[4];
    if (RAND_bytes(mask, sizeof mask) != 1)
        abort(); /* no randomness: nothing sensible left to do */
    (void)mdw_wsframe_build(&p->out, opcode, 1, payload, len, mask); /* full: not answered */
}

void mdw_wsframe_send_close(mdw_wsframe *p, int code)
{
    if (p->close_sent)
        return;
    uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    queue_frame(p, MDW_WS_CLOSE, c, 2);
    p->close_sent = 1;
}

const uint8_t *mdw_wsframe_out(const mdw_wsframe *p, size_t *len)
{
    *len = p->out.len;
    return p->out.len ? (const uint8_t *)p->out.data : NULL;
}

void mdw_wsframe_out_done(mdw_wsframe *p, size_t n)
{
    if (n >= p->out.len) {
        mdw_buf_reset(&p->out);
        return;
    }
    memmove(p->out.data, p->out.data + n, p->out.len - n);
    p->out.len -= n;
    p->out.data[p->out.len] = '\0';
}

/* ------------------------------------------------------------- the parser */

__attribute__((format(printf, 2, 3))) static int fail(mdw_wsframe *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->failed = 1;
    mdw_wsframe_send_close(p, 1002); /* 7.4.1: protocol error */
    return MDW_EMALFORMED;
}

static size_t hdr_size(const uint8_t *h)
{
    size_t n = 2;
    unsigned l = h[1] & 0x7f;
    if (l == 126)
        n += 2;
    else if (l == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

/* The checks the first two bytes allow (5.2, 5.5). */
static int check_start(mdw_wsframe *p, const uint8_t *h)
{
    int op = h[0] & 0x0f;
    if (h[0] & 0x70)
        return fail(p, "reserved bits 0x%02x set (no extension was negotiated)", h[0] & 0x70);
    if (op != MDW_WS_CONT && op != MDW_WS_TEXT && op != MDW_WS_BINARY && op != MDW_WS_CLOSE &&
        op != MDW_WS_PING && op != MDW_WS_PONG)
        return fail(p, "unknown opcode 0x%x", op);
    if (h[1] & 0x80)
        return fail(p, "masked frame from the server (5.1)");
    if (op >= 8 && !(h[0] & 0x80))
        return fail(p, "fragmented control frame (opcode 0x%x)", op);
    if (op >= 8 && (h[1] & 0x7f) > MDW_WS_MAX_CONTROL)
        return fail(p, "control frame (opcode 0x%x) over %d bytes", op, MDW_WS_MAX_CONTROL);
    return 0;
}

/* h holds a complete header that passed check_start(). */
static int begin_frame(mdw_wsframe *p, const uint8_t *h)
{
    int op = h[0] & 0x0f;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        if (h[2] & 0x80)
            return fail(p, "64-bit payload length with the top bit set");
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[2 + i];
    }
    if (op == MDW_WS_CLOSE && n == 1)
        return fail(p, "close frame with a 1-byte payload");
    if (op == MDW_WS_CONT && !p->msg_op)
        return fail(p, "continuation frame without a message to continue");
    if ((op == MDW_WS_TEXT || op == MDW_WS_BINARY) && p->msg_op)
        return fail(p, "new data frame inside a fragmented message");
    if (op == MDW_WS_TEXT || op == MDW_WS_BINARY) {
        p->msg_op = op;
        p->msg_skip = 0;
        mdw_buf_reset(&p->msg);
    }
    p->in_frame = 1;
    p->f_op = op;
    p->f_fin = (h[0] & 0x80) != 0;
    p->f_left = n;
    p->ctrl_len = 0;
    return 0;
}

static void control(mdw_wsframe *p)
{
    switch (p->f_op) {
    case MDW_WS_PING: /* 5.5.2: answer with the same application data */
        if (!p->close_sent)
            queue_frame(p, MDW_WS_PONG, p->ctrl, p->ctrl_len);
        break;
    case MDW_WS_CLOSE: /* 5.5.1: echo the status, then nothing more is read */
        p->closed = 1;
        p->close_code = p->ctrl_len >= 2 ? (p->ctrl[0] << 8 | p->ctrl[1]) : 1005;
        if (!p->close_sent) {
            queue_frame(p, MDW_WS_CLOSE, p->ctrl, p->ctrl_len >= 2 ? 2 : 0);
            p->close_sent = 1;
        }
        break;
    default: /* pong: nothing asked for one, nothing to do */
        break;
    }
}

int mdw_wsframe_feed(mdw_wsframe *p, const uint8_t *data, size_t len)
{
    if (p->failed)
        return MDW_EMALFORMED;
    const uint8_t *d = data, *end = data + len;
    while (!p->closed) {
        if (!p->in_frame) {
            if (d == end)
                break;
            const uint8_t *h;
            size_t hs;
            if (p->hdr_have == 0 && end - d >= 2 && (size_t)(end - d) >= (hs = hdr_size(d))) {
                if (check_start(p, d))
                    return MDW_EMALFORMED;
                h = d; /* the usual case: the header is here, whole */
                d += hs;
            } else {
                while (p->hdr_have < 2 && d < end)
                    p->hdr[p->hdr_have++] = *d++;
                if (p->hdr_have < 2)
                    break;
                if (check_start(p, p->hdr))
                    return MDW_EMALFORMED;
                hs = hdr_size(p->hdr);
                while (p->hdr_have < hs && d < end)
                    p->hdr[p->hdr_have++] = *d++;
                if (p->hdr_have < hs)
                    break;
                h = p->hdr;
                p->hdr_have = 0;
            }
            if (begin_frame(p, h))
                return MDW_EMALFORMED;
            if (p->f_op < 8 && !p->msg_skip && p->msg.len + p->f_left > p->max_msg) {
                /* Over the cap: show what there is of the head, skip the rest. */
                size_t avail = (size_t)(end - d);
                if (p->msg.len)
                    p->cb.on_oversize(p->cb.ctx, p->msg_op, (const uint8_t *)p->msg.data,
                                      p->msg.len);
                else
                    p->cb.on_oversize(p->cb.ctx, p->msg_op, d,
                                      avail < p->max_msg ? avail : p->max_msg);
                p->msg_skip = 1;
                mdw_buf_reset(&p->msg);
            }
        }
        size_t avail = (size_t)(end - d);
        size_t n = p->f_left < avail ? (size_t)p->f_left : avail;
        if (p->f_op >= 8) {
            memcpy(p->ctrl + p->ctrl_len, d, n);
            p->ctrl_len += n;
            d += n;
            p->f_left -= n;
            if (p->f_left)
                break;
            p->in_frame = 0;
            control(p);
            continue;
        }
        p->payload_bytes += n;
        int delivered = 0;
        if (p->msg_skip) {
            /* skipped: nothing kept */
        } else if (p->f_op != MDW_WS_CONT && p->f_fin && p->msg.len == 0 && n == p->f_left) {
            /* The whole message is here in one frame: hand it over in place. */
            p->f_left = 0;
            p->in_frame = 0;
            p->msg_op = 0;
            p->messages++;
            delivered = 1;
            p->cb.on_message(p->cb.ctx, p->f_op, d, n);
        } else {
            (void)mdw_buf_append(&p->msg, d, n); /* fits: checked against max_msg above */
        }
        d += n;
        if (delivered)
            continue;
        p->f_left -= n;
        if (p->f_left)
            break;
        p->in_frame = 0;
        if (p->f_fin) {
            int op = p->msg_op;
            p->msg_op = 0;
            if (!p->msg_skip) {
                p->messages++;
                p->cb.on_message(p->cb.ctx, op, (const uint8_t *)p->msg.data, p->msg.len);
            }
            p->msg_skip = 0;
            mdw_buf_reset(&p->msg);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- handshake */

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; /* 1.3 */

void mdw_ws_handshake_key(char key[MDW_WS_KEY_LEN + 1])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort();
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    key[MDW_WS_KEY_LEN] = '\0';
}

void mdw_ws_handshake_accept(const char *key, char accept[MDW_WS_ACCEPT_LEN + 1])
{
    char cat[128];
    int n = snprintf(cat, sizeof cat, "%s%s", key, GUID);
    if (n < 0 || (size_t)n >= sizeof cat)
        n = (int)sizeof cat - 1;
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, (size_t)n, md);
    EVP_EncodeBlock((unsigned char *)accept, md, sizeof md);
    accept[MDW_WS_ACCEPT_LEN] = '\0';
}

int mdw_ws_handshake_request(mdw_buf *out, const char *host, int port, int tls, const char *path,
                             const char *key)
{
    if (strpbrk(host, "\r\n ") || strpbrk(path, "\r\n ") || path[0] != '/')
        return MDW_EMALFORMED;
    char hostport[300];
    if (port == (tls ? 443 : 80))
        snprintf(hostport, sizeof hostport, "%s", host);
    else
        snprintf(hostport, sizeof hostport, "%s:%d", host, port);
    return mdw_buf_printf(out,
                          "GET %s HTTP/1.1\r\n"
                          "Host: %s\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "User-Agent: meadow\r\n"
                          "\r\n",
                          path, hostport, key) < 0
               ? MDW_ETOOBIG
               : 0;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *err, size_t errlen, const char *fmt,
                                                        ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MDW_EMALFORMED;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Does the comma-separated list v[0..n) hold token tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows(v[e - 1]))
            e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl))
            return 1;
    }
    return 0;
}

int mdw_ws_handshake_check(const char *data, size_t len, const char *key, size_t *head_len,
                           char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    size_t lim = len < MDW_MAX_WS_HEAD_BYTES ? len : MDW_MAX_WS_HEAD_BYTES;
    const char *endp = memmem(data, lim, "\r\n\r\n", 4);
    if (!endp) {
        if (len >= MDW_MAX_WS_HEAD_BYTES) {
            refuse(err, errlen, "response head over %u bytes", MDW_MAX_WS_HEAD_BYTES);
            return MDW_ETOOBIG;
        }
        /* A status line that is already wrong need not wait for the rest. */
        if (len >= 5 && memcmp(data, "HTTP/", 5) != 0)
            return refuse(err, errlen, "not an HTTP response");
        return MDW_EAGAIN;
    }
    size_t hl = (size_t)(endp - data) + 4;
    if (memchr(data, '\0', hl))
        return refuse(err, errlen, "NUL byte in the response head");
    /* Status line: HTTP/1.1 101 <reason> (4.2.2 step 1). */
    const char *eol = memmem(data, hl, "\r\n", 2);
    size_t sl = (size_t)(eol - data);
    if (sl < 12 || memcmp(data, "HTTP/1.1 ", 9) != 0 || (sl > 12 && data[12] != ' '))
        return refuse(err, errlen, "bad status line \"%.*s\"", (int)(sl < 60 ? sl : 60), data);
    if (memcmp(data + 9, "101", 3) != 0)
        return refuse(err, errlen, "status %.3s instead of 101: \"%.*s\"", data + 9,
                      (int)(sl < 60 ? sl : 60), data);
    char want[MDW_WS_ACCEPT_LEN + 1];
    mdw_ws_handshake_accept(key, want);
    int upgrade = 0, connection = 0, accept = 0;
    const char *p = eol + 2, *stop = data + hl - 2; /* the last line is the empty one */
    while (p < stop) {
        const char *le = memmem(p, (size_t)(stop - p) + 2, "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p)
            return refuse(err, errlen, "header line without a name: \"%.*s\"",
                          (int)(le - p < 60 ? le - p : 60), p);
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1, *ve = le;
        while (v < ve && is_ows(*v))
            v++;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        size_t vl = (size_t)(ve - v);
#define NAME_IS(s) (nl == sizeof(s) - 1 && !strncasecmp(p, s, nl))
        if (NAME_IS("Upgrade")) {
            if (vl != 9 || strncasecmp(v, "websocket", 9))
                return refuse(err, errlen, "Upgrade: \"%.*s\" is not websocket",
                              (int)(vl < 60 ? vl : 60), v);
            upgrade = 1;
        } else if (NAME_IS("Connection")) {
            if (!has_token(v, vl, "upgrade"))
                return refuse(err, errlen, "Connection: \"%.*s\" has no upgrade",
                              (int)(vl < 60 ? vl : 60), v);
            connection = 1;
        } else if (NAME_IS("Sec-WebSocket-Accept")) {
            if (vl != MDW_WS_ACCEPT_LEN || memcmp(v, want, MDW_WS_ACCEPT_LEN))
                return refuse(err, errlen, "Sec-WebSocket-Accept \"%.*s\" does not match the key",
                              (int)(vl < 60 ? vl : 60), v);
            accept = 1;
        } else if (NAME_IS("Sec-WebSocket-Extensions") && vl) {
            return refuse(err, errlen, "server chose an extension we did not offer: \"%.*s\"",
                          (int)(vl < 60 ? vl : 60), v);
        } else if (NAME_IS("Sec-WebSocket-Protocol") && vl) {
            return refuse(err, errlen, "server chose a subprotocol we did not offer: \"%.*s\"",
                          (int)(vl < 60 ? vl : 60), v);
        }
#undef NAME_IS
        p = le + 2;
    }
    if (!upgrade)
        return refuse(err, errlen, "no Upgrade header");
    if (!connection)
        return refuse(err, errlen, "no Connection header");
    if (!accept)
        return refuse(err, errlen, "no Sec-WebSocket-Accept header");
    *head_len = hl;
    return 0;
}
