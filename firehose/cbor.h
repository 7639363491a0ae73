/*
** firehose/cbor.h — DAG-CBOR, the encoding of every atproto frame, commit,
** MST node and record: decode (on libcbor's streaming decoder), canonical
** re-encode (for commit signatures) and JSON rendering as Jetstream v1 and
** the atproto data model write it.
**
** Decoding builds a small tree of mdw_cbor nodes in an arena; strings, byte
** strings and links point into the input bytes (zero copy), so the input must
** outlive the tree. The decoder is strict where DAG-CBOR is: definite lengths
** only, minimal-length integer and length heads, text keys only, no duplicate
** keys, valid UTF-8 text, tag 42 (a CID link, 0x00 + binary CID) as the only
** tag, float64 only (no NaN or infinity), no `undefined`. It is lenient on
** map key order (accepted in any order; the canonical encoder and the JSON
** writer sort anyway). Nesting is capped at MDW_MAX_CBOR_DEPTH and item count
** at MDW_MAX_CBOR_ITEMS: both are MDW_ETOOBIG.
**
** Every function is reentrant (no global state); an arena belongs to one
** thread at a time. Error text, when asked for, goes to the caller's array.
*/
#ifndef MDW_CBOR_H
#define MDW_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum {
    MDW_CBOR_UINT = 1, /* v.u */
    MDW_CBOR_NEGINT,   /* the value is -1 - v.u */
    MDW_CBOR_BYTES,    /* v.p, len */
    MDW_CBOR_TEXT,     /* v.p, len (valid UTF-8, not NUL-terminated) */
    MDW_CBOR_ARRAY,    /* v.items[0..len) */
    MDW_CBOR_MAP,      /* v.items[0..2*len): key, value, key, value … (keys are TEXT) */
    MDW_CBOR_LINK,     /* tag 42: v.p, len = the binary CID (without the 0x00 prefix) */
    MDW_CBOR_BOOL,     /* v.u 0 or 1 */
    MDW_CBOR_NULL,
    MDW_CBOR_FLOAT /* v.f (float64) */
} mdw_cbor_type;

typedef struct mdw_cbor {
    mdw_cbor_type type;
    size_t len;
    union {
        uint64_t u;
        double f;
        const uint8_t *p;
        struct mdw_cbor *items;
    } v;
} mdw_cbor;

/* A bump allocator for decoded trees; release frees everything at once. */
typedef struct mdw_arena {
    struct mdw_arena_chunk *head;
    size_t items; /* nodes handed out since init (for the item cap) */
} mdw_arena;

void mdw_arena_init(mdw_arena *a);
void mdw_arena_release(mdw_arena *a);

/*
** Decodes one DAG-CBOR item at the start of p[0..n). *used (may be NULL:
** then the item must fill exactly n bytes) gets the bytes consumed. Returns
** 0, MDW_EMALFORMED, MDW_EEOF (input ends inside the item) or MDW_ETOOBIG
** (nesting or item cap); err (may be NULL) gets a one-line reason with the
** byte offset.
*/
int mdw_cbor_decode(const uint8_t *p, size_t n, mdw_arena *a, const mdw_cbor **root, size_t *used,
                    char *err, size_t errlen);

/* Value of key in a map (NULL when absent or m is not a map). */
const mdw_cbor *mdw_cbor_get(const mdw_cbor *m, const char *key);
/* 1 when n is TEXT equal to s. */
int mdw_cbor_text_is(const mdw_cbor *n, const char *s);
/* n as a signed 64-bit integer: 0, or MDW_EMALFORMED when not an int in range. */
int mdw_cbor_int(const mdw_cbor *n, int64_t *out);

/*
** Appends the canonical DAG-CBOR encoding of n (map keys ordered by length,
** then bytes; minimal heads). When n is a map and omit_key is not NULL, that
** top-level key is left out (the unsigned form of a signed commit).
*/
int mdw_cbor_encode(const mdw_cbor *n, const char *omit_key, mdw_buf *out);

/*
** Appends n as JSON in the atproto data model's JSON form, as Jetstream v1
** renders records: links {"$link": "<cid>"}, bytes {"$bytes": "<base64,
** standard alphabet, no padding>"}, object keys sorted bytewise (Go's
** encoding/json order). Integers outside int64 and floats (not part of the
** atproto data model) are MDW_EMALFORMED; err gets why.
*/
int mdw_cbor_to_json(const mdw_cbor *n, mdw_buf *out, char *err, size_t errlen);

#endif
