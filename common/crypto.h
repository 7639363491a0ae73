/*
** common/crypto.h — the small cryptographic toolbox of AT Protocol: SHA-256,
** the text encodings keys and CIDs travel in (base58btc, base32, base64 and
** multibase), public keys named by multicodec (did:key, publicKeyMultibase)
** and ECDSA verification on the two curves atproto allows: secp256k1
** (libsecp256k1) and NIST P-256 (OpenSSL 3).
**
** Used by the relay decoder (commit signatures) and meant for service-auth
** JWTs (ES256K / ES256): a signature is always the 64-byte compact r||s form
** atproto uses on the wire, never DER.
**
** Low-S: atproto requires the s half of a signature to be in the lower half
** of the curve order (no malleable twins). mdw_ecdsa_verify*() reject a
** high-S signature unless MDW_SIG_ALLOW_HIGH_S is given, and tell the caller
** through *high_s so it can count those apart from plain bad signatures.
**
** Threading: every function is reentrant (no shared mutable state; the
** libsecp256k1 static context is read-only). Ownership: outputs go to
** caller-provided buffers (mdw_buf or arrays with an explicit size).
*/
#ifndef MDW_CRYPTO_H
#define MDW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MDW_SHA256_LEN 32

void mdw_sha256(const void *data, size_t len, uint8_t out[MDW_SHA256_LEN]);
/* SHA-256 of a then b (b may be empty): the one digest wrapper, per-thread context. */
void mdw_sha256_2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[MDW_SHA256_LEN]);

/* ---- text encodings ---- */

/* A hex digit's value (either case), or -1. */
int mdw_hex_value(int c);

/* base64 (RFC 4648). Flags combine: URL alphabet (-_) and '=' padding. */
enum { MDW_B64_STD = 0, MDW_B64_URL = 1, MDW_B64_PAD = 2 };

/* Appends the encoding of data[0..n) to out. */
int mdw_base64_encode(mdw_buf *out, const void *data, size_t n, int flags);
/*
** The same into a caller's array of at least (n + 2) / 3 * 4 + 1 bytes,
** NUL-terminated, without allocating; returns the length written.
*/
size_t mdw_base64_encode_to(char *out, const void *data, size_t n, int flags);
/*
** Decodes s[0..n) (alphabet per flags; '=' padding accepted either way, and
** required to be complete when present). Non-zero leftover bits are refused
** (one canonical text per byte string). MDW_EMALFORMED on bad input,
** MDW_ETOOBIG when the result would pass outmax.
*/
int mdw_base64_decode(const char *s, size_t n, int flags, uint8_t *out, size_t outmax,
                      size_t *outlen);

/* base58btc (Bitcoin alphabet). Inputs are capped at MDW_BASE58_MAX bytes. */
#define MDW_BASE58_MAX 256
int mdw_base58btc_encode(mdw_buf *out, const uint8_t *data, size_t n);
int mdw_base58btc_decode(const char *s, size_t n, uint8_t *out, size_t outmax, size_t *outlen);

/* RFC 4648 base32, lowercase, no padding (the multibase 'b' form of CIDs). */
int mdw_base32_encode(mdw_buf *out, const uint8_t *data, size_t n);
int mdw_base32_decode(const char *s, size_t n, uint8_t *out, size_t outmax, size_t *outlen);

/* Multibase text: 'z' base58btc, 'b' base32, 'u' base64url, 'm' base64. */
int mdw_multibase_decode(const char *s, uint8_t *out, size_t outmax, size_t *outlen);

/* Unsigned LEB128 varint as multiformats uses it: at most 9 bytes, minimal.
 * Returns bytes read (> 0) or MDW_EMALFORMED / MDW_EEOF. */
int mdw_uvarint_decode(const uint8_t *p, size_t n, uint64_t *v);

/* ---- public keys ---- */

typedef enum { MDW_KEY_NONE = 0, MDW_KEY_SECP256K1, MDW_KEY_P256 } mdw_key_type;

/* A validated public key: the curve and its compressed SEC1 point. */
typedef struct mdw_pubkey {
    mdw_key_type type;
    uint8_t point[33];
} mdw_pubkey;

/* Multicodec codes of atproto's key types. */
#define MDW_MULTICODEC_SECP256K1_PUB 0xe7
#define MDW_MULTICODEC_P256_PUB      0x1200

/* varint(multicodec) || SEC1 point (compressed, or uncompressed 65 bytes). */
int mdw_pubkey_from_multicodec(const uint8_t *p, size_t n, mdw_pubkey *out);
/* Multibase text of the above ("zQ3s…" secp256k1, "zDn…" P-256). */
int mdw_pubkey_from_multibase(const char *s, mdw_pubkey *out);
/* "did:key:z…". */
int mdw_pubkey_from_did_key(const char *did, mdw_pubkey *out);
/* Raw SEC1 point for a known curve (legacy DID documents). */
int mdw_pubkey_from_sec1(mdw_key_type type, const uint8_t *p, size_t n, mdw_pubkey *out);
/* Appends "did:key:z…" naming k. */
int mdw_pubkey_to_did_key(const mdw_pubkey *k, mdw_buf *out);
/* "ES256K", "ES256" (JWT alg names), or NULL. */
const char *mdw_pubkey_jwt_alg(const mdw_pubkey *k);

/* ---- ECDSA ---- */

enum { MDW_SIG_ALLOW_HIGH_S = 1 };

/*
** Verifies a 64-byte r||s signature over a SHA-256 digest. Returns 0 when
** valid, MDW_ECRYPTO otherwise. high_s (may be NULL) is set to 1 when the
** signature is mathematically valid but its s is in the upper half of the
** order: refused unless flags has MDW_SIG_ALLOW_HIGH_S.
*/
int mdw_ecdsa_verify_digest(const mdw_pubkey *k, const uint8_t digest[MDW_SHA256_LEN],
                            const uint8_t sig[64], unsigned flags, int *high_s);
/* Same over a message (hashed with SHA-256 first, as ES256K/ES256 do). */
int mdw_ecdsa_verify(const mdw_pubkey *k, const void *msg, size_t n, const uint8_t sig[64],
                     unsigned flags, int *high_s);

#endif
