/*
** firehose/cid.h — content identifiers (CIDs) as atproto uses them.
**
** A CID names a block by the hash of its bytes. atproto writes CIDv1
** (varint version 1, varint codec — 0x71 dag-cbor or 0x55 raw — then a
** multihash: varint hash code 0x12 sha2-256, varint length 32, digest); old
** data may hold CIDv0 (a bare sha2-256 multihash, 0x12 0x20 …). In text a
** CIDv1 is multibase base32 ("bafy…"), a CIDv0 base58btc ("Qm…").
**
** A parsed mdw_cid points into the caller's bytes (no copy): keep them alive.
** Reentrant, no allocation except into the caller's mdw_buf.
*/
#ifndef MDW_CID_H
#define MDW_CID_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MDW_CODEC_RAW     0x55
#define MDW_CODEC_DAGCBOR 0x71
#define MDW_MH_SHA256     0x12
#define MDW_CID_MAX_BYTES 128 /* longest CID accepted (a sha-256 CID is 36) */

typedef struct mdw_cid {
    const uint8_t *bytes; /* the whole binary CID */
    size_t len;
    uint64_t version; /* 0 or 1 */
    uint64_t codec;
    uint64_t hash; /* multihash code */
    const uint8_t *digest;
    size_t digest_len;
} mdw_cid;

/*
** Parses a binary CID at the start of p[0..n); *used gets its length (pass
** NULL to require that the CID fill all n bytes). MDW_EMALFORMED on a bad
** varint, a version other than 0/1, or a digest running past the end.
*/
int mdw_cid_parse(const uint8_t *p, size_t n, mdw_cid *out, size_t *used);
/* Appends the text form ("bafy…" or "Qm…"). */
int mdw_cid_to_text(const mdw_cid *c, mdw_buf *out);
/* Same from binary bytes (must be one whole CID). */
int mdw_cid_bytes_to_text(const uint8_t *p, size_t n, mdw_buf *out);
/* Binary form of a text CID into out (max outmax), *outlen its length. */
int mdw_cid_from_text(const char *s, uint8_t *out, size_t outmax, size_t *outlen);
/*
** Checks that data hashes to c's digest. sha2-256 is the only hash atproto
** uses; any other is refused (MDW_EUNIMPL) rather than trusted. A mismatch
** is MDW_ECORRUPT.
*/
int mdw_cid_check(const mdw_cid *c, const uint8_t *data, size_t n);

#endif
