/*
** firehose/wsframe.h — RFC 6455 client-side framing as pure functions over
** byte buffers (no sockets): the server-frame parser with message reassembly,
** masked client frames, and the HTTP/1.1 Upgrade request and response check.
**
** Why our own: libwebsockets 4.1.6 (the version Debian 12 ships) parses a
** client's incoming payload one byte at a time, and that alone capped ingest
** near 300k events/s. Here a frame that lies whole in the receive buffer is
** handed to on_message in place, with no copy and no per-byte work; only a
** frame split across reads, or a fragmented message, is copied into a
** reassembly buffer capped at max_msg. firehose/wsclient.c runs this parser on
** an lws RAW connection (lws still does TCP, TLS and the event loop).
**
** What the parser enforces (a violation fails the connection with a message
** in mdw_wsframe_error()): server frames are unmasked; no reserved bit is set
** (no extension is negotiated); opcodes are 0, 1, 2, 8, 9, 10; control frames
** are final and carry at most 125 bytes; a continuation follows a started
** message and a new message does not start inside one; a 64-bit length has
** its top bit clear; a close payload is not 1 byte long. Text frames are not
** checked for UTF-8 (the filter decides what is an event).
**
** Messages over max_msg are not errors: on_oversize gets the head that was
** seen, the rest of the message is skipped, and the stream goes on.
** A ping queues a masked pong with the same payload; a close queues the close
** reply (unless we sent one first) and ends parsing. Frames to send are read
** with mdw_wsframe_out() and released with mdw_wsframe_out_done().
**
** Threading: a parser is used by one thread. Ownership: data passed to the
** callbacks is only valid during the call.
*/
#ifndef MDW_FIREHOSE_WSFRAME_H
#define MDW_FIREHOSE_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum {
    MDW_WS_CONT = 0x0,
    MDW_WS_TEXT = 0x1,
    MDW_WS_BINARY = 0x2,
    MDW_WS_CLOSE = 0x8,
    MDW_WS_PING = 0x9,
    MDW_WS_PONG = 0xA
};

#define MDW_WS_MAX_CONTROL 125 /* RFC 6455 5.5: control frame payload */
#define MDW_WS_KEY_LEN     24  /* base64 of 16 random bytes */
#define MDW_WS_ACCEPT_LEN  28  /* base64 of a SHA-1 */

typedef struct mdw_wsframe mdw_wsframe;

typedef struct mdw_wsframe_cbs {
    /* A complete text or binary message (at most max_msg bytes). */
    void (*on_message)(void *ctx, int opcode, const uint8_t *data, size_t len);
    /* A message over max_msg: the head seen so far (may be empty); the rest is skipped. */
    void (*on_oversize)(void *ctx, int opcode, const uint8_t *head, size_t len);
    void *ctx;
} mdw_wsframe_cbs;

/* max_msg >= 1; the callbacks are required. */
int mdw_wsframe_new(mdw_wsframe **out, size_t max_msg, const mdw_wsframe_cbs *cb);
void mdw_wsframe_free(mdw_wsframe *p);
/* Forget everything, counters included (a new connection). */
void mdw_wsframe_reset(mdw_wsframe *p);

/*
** Parses len bytes received from the server; a frame left incomplete is kept
** for the next call. 0 = fine; MDW_EMALFORMED = protocol error (the
** connection must be failed; mdw_wsframe_error() says why, and a close 1002
** is queued). After a close frame the remaining bytes are ignored.
*/
int mdw_wsframe_feed(mdw_wsframe *p, const uint8_t *data, size_t len);
const char *mdw_wsframe_error(const mdw_wsframe *p);
/* 1 once the server's close frame was read; *code = its status (1005 = none). */
int mdw_wsframe_closed(const mdw_wsframe *p, int *code);
/* Since the last reset: payload bytes of data frames (skipped messages included). */
uint64_t mdw_wsframe_payload_bytes(const mdw_wsframe *p);
/* Since the last reset: messages delivered (not those skipped as oversize). */
uint64_t mdw_wsframe_messages(const mdw_wsframe *p);

/* Queues our close frame (once). */
void mdw_wsframe_send_close(mdw_wsframe *p, int code);
/* Queued frames to send (pong, close); NULL/0 when none. */
const uint8_t *mdw_wsframe_out(const mdw_wsframe *p, size_t *len);
void mdw_wsframe_out_done(mdw_wsframe *p, size_t n);

/*
** Appends one masked client frame to out. mask = 4 bytes (RFC 6455 5.3 wants
** them unpredictable: callers pass RAND_bytes output). 0 or MDW_ETOOBIG.
*/
int mdw_wsframe_build(mdw_buf *out, int opcode, int fin, const void *payload, size_t len,
                      const uint8_t mask[4]);

/* A fresh Sec-WebSocket-Key (NUL-terminated, MDW_WS_KEY_LEN chars). */
void mdw_ws_handshake_key(char key[MDW_WS_KEY_LEN + 1]);
/* The Sec-WebSocket-Accept a server must answer to key. */
void mdw_ws_handshake_accept(const char *key, char accept[MDW_WS_ACCEPT_LEN + 1]);
/*
** Appends the GET .. Upgrade request. host and path must not contain CR/LF
** (MDW_EMALFORMED); port is left out of Host when it is the scheme default.
*/
int mdw_ws_handshake_request(mdw_buf *out, const char *host, int port, int tls, const char *path,
                             const char *key);
/*
** Checks the server's response head at the start of data[0..len): 0 = a valid
** 101 and *head_len = its length (what follows are frames); MDW_EAGAIN = not
** complete yet; MDW_ETOOBIG = no end within MDW_MAX_WS_HEAD_BYTES;
** MDW_EMALFORMED = refused, err (may be NULL) says why.
*/
int mdw_ws_handshake_check(const char *data, size_t len, const char *key, size_t *head_len,
                           char *err, size_t errlen);

#endif
