/*
** feedgen/auth_crypto.h — the few crypto primitives service-auth needs:
** base64url, base58btc multibase, public keys of the two atproto curves,
** and ECDSA verification of compact (r‖s) signatures over SHA-256.
**
** Internal to feedgen/auth and feedgen/didres (names mdw_auth__*). It is kept
** behind this small header so that it can be wired to common/crypto (the
** shared crypto module) without touching the callers. All functions are pure
** and thread-safe; keys are plain values, nothing is allocated.
*/
#ifndef MDW_AUTH_CRYPTO_H
#define MDW_AUTH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

enum { MDW_KEY_NONE = 0, MDW_KEY_K256 = 1, MDW_KEY_P256 = 2 };

/* A public key: the curve and its SEC1 encoding, uncompressed (65 bytes). */
typedef struct mdw_auth__key {
    int alg; /* MDW_KEY_* */
    size_t len;
    uint8_t pub[65];
} mdw_auth__key;

/* JWT alg name of a key type ("ES256K", "ES256"), NULL for none. */
const char *mdw_auth__key_jwt_alg(int alg);

/*
** base64url without padding (RFC 7515 §2), strict: any byte outside the
** alphabet, '=' included, or a length of 1 mod 4 is MDW_EMALFORMED. Writes at
** most outmax bytes (MDW_ETOOBIG when more would be needed).
*/
int mdw_auth__b64url_decode(const char *in, size_t n, uint8_t *out, size_t outmax, size_t *outlen);

/* base58btc (Bitcoin alphabet) decode; MDW_EMALFORMED / MDW_ETOOBIG. */
int mdw_auth__b58_decode(const char *in, size_t n, uint8_t *out, size_t outmax, size_t *outlen);

/*
** A verification method's key. type is the DID document's `type`:
**  "Multikey": publicKeyMultibase is 'z' + base58btc(multicodec varint ‖ key),
**    secp256k1-pub 0xe7 (bytes e7 01) or p256-pub 0x1200 (bytes 80 24);
**  "EcdsaSecp256k1VerificationKey2019" / "EcdsaSecp256r1VerificationKey2019"
**    (legacy): 'z' + base58btc(raw key), the curve given by the type.
** The point is checked to be on its curve and stored uncompressed.
** 0, MDW_EMALFORMED or MDW_ECRYPTO.
*/
int mdw_auth__key_from_multibase(const char *type, const char *multibase, mdw_auth__key *out);

/*
** Verifies a 64-byte r‖s ECDSA signature over SHA-256(msg). A high-S signature
** is normalized to low-S before verifying (the reference verifies service JWTs
** with allowMalleableSig) and reported in *high_s. Returns 1 valid, 0 invalid.
*/
int mdw_auth__verify(const mdw_auth__key *key, const uint8_t *msg, size_t msglen,
                     const uint8_t sig[64], int *high_s);

/* SHA-256. */
void mdw_auth__sha256(const void *p, size_t n, uint8_t out[32]);

#endif
