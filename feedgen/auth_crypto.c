/*
** feedgen/auth_crypto.c — see auth_crypto.h. secp256k1 through libsecp256k1
** (its static context: verification needs no randomized context), P-256
** through OpenSSL 3's EVP interface.
*/
#include "feedgen/auth_crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <secp256k1.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

const char *mdw_auth__key_jwt_alg(int alg)
{
    switch (alg) {
    case MDW_KEY_K256:
        return "ES256K";
    case MDW_KEY_P256:
        return "ES256";
    default:
        return NULL;
    }
}

void mdw_auth__sha256(const void *p, size_t n, uint8_t out[32])
{
    SHA256(p, n, out);
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int mdw_auth__b64url_decode(const char *in, size_t n, uint8_t *out, size_t outmax, size_t *outlen)
{
    if (n % 4 == 1)
        return MDW_EMALFORMED;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > outmax)
        return MDW_ETOOBIG;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0)
            return MDW_EMALFORMED;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero: one encoding per byte string. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return MDW_EMALFORMED;
    *outlen = o;
    return 0;
}

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

#define B58_MAX_IN 256

int mdw_auth__b58_decode(const char *in, size_t n, uint8_t *out, size_t outmax, size_t *outlen)
{
    if (n == 0)
        return MDW_EMALFORMED;
    if (n > B58_MAX_IN)
        return MDW_ETOOBIG;
    /* Big-endian base-256 accumulator; each digit multiplies by 58 and adds. */
    uint8_t tmp[B58_MAX_IN];
    size_t len = 0; /* significant bytes at the end of tmp */
    size_t zeros = 0;
    while (zeros < n && in[zeros] == '1')
        zeros++;
    for (size_t i = zeros; i < n; i++) {
        const char *p = memchr(b58_alphabet, in[i], sizeof b58_alphabet - 1);
        if (!p || in[i] == '\0')
            return MDW_EMALFORMED;
        uint32_t carry = (uint32_t)(p - b58_alphabet);
        size_t j;
        for (j = 0; j < len || carry; j++) {
            size_t k = B58_MAX_IN - 1 - j;
            if (j < len)
                carry += 58u * tmp[k];
            tmp[k] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        len = j;
    }
    if (zeros + len > outmax)
        return MDW_ETOOBIG;
    memset(out, 0, zeros);
    memcpy(out + zeros, tmp + B58_MAX_IN - len, len);
    *outlen = zeros + len;
    return 0;
}

/*
** Both checks also rewrite the point uncompressed (65 bytes): keys are parsed
** once per DID document and used for every token, and decompressing (a square
** root) on each verification cost ~45 µs for P-256 (bench_auth).
*/
static int k256_check(const uint8_t *p, size_t n, uint8_t out[65])
{
    secp256k1_pubkey pk;
    size_t len = 65;
    return secp256k1_ec_pubkey_parse(secp256k1_context_static, &pk, p, n) == 1 &&
           secp256k1_ec_pubkey_serialize(secp256k1_context_static, out, &len, &pk,
                                         SECP256K1_EC_UNCOMPRESSED) == 1 &&
           len == 65;
}

static int p256_check(const uint8_t *p, size_t n, uint8_t out[65])
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    int ok = pt && EC_POINT_oct2point(g, pt, p, n, NULL) == 1 &&
             EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, out, 65, NULL) == 65;
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return ok;
}

int mdw_auth__key_from_multibase(const char *type, const char *multibase, mdw_auth__key *out)
{
    uint8_t raw[80];
    size_t rawlen = 0;
    memset(out, 0, sizeof *out);
    if (!type || !multibase || multibase[0] != 'z')
        return MDW_EMALFORMED;
    int rc = mdw_auth__b58_decode(multibase + 1, strlen(multibase + 1), raw, sizeof raw, &rawlen);
    if (rc)
        return rc == MDW_ETOOBIG ? MDW_EMALFORMED : rc;
    const uint8_t *key = raw;
    size_t keylen = rawlen;
    int alg;
    if (strcmp(type, "Multikey") == 0) {
        if (rawlen > 2 && raw[0] == 0xe7 && raw[1] == 0x01)
            alg = MDW_KEY_K256;
        else if (rawlen > 2 && raw[0] == 0x80 && raw[1] == 0x24)
            alg = MDW_KEY_P256;
        else
            return MDW_EMALFORMED;
        key += 2;
        keylen -= 2;
    } else if (strcmp(type, "EcdsaSecp256k1VerificationKey2019") == 0) {
        alg = MDW_KEY_K256;
    } else if (strcmp(type, "EcdsaSecp256r1VerificationKey2019") == 0) {
        alg = MDW_KEY_P256;
    } else {
        return MDW_EMALFORMED;
    }
    if (keylen != 33 && keylen != 65)
        return MDW_EMALFORMED;
    if (!(alg == MDW_KEY_K256 ? k256_check(key, keylen, out->pub)
                              : p256_check(key, keylen, out->pub))) {
        memset(out, 0, sizeof *out);
        return MDW_ECRYPTO;
    }
    out->alg = alg;
    out->len = 65;
    return 0;
}

static int k256_verify(const mdw_auth__key *key, const uint8_t hash[32], const uint8_t sig64[64],
                       int *high_s)
{
    const secp256k1_context *ctx = secp256k1_context_static;
    secp256k1_pubkey pk;
    secp256k1_ecdsa_signature sig, norm;
    if (!secp256k1_ec_pubkey_parse(ctx, &pk, key->pub, key->len))
        return 0;
    if (!secp256k1_ecdsa_signature_parse_compact(ctx, &sig, sig64))
        return 0; /* r or s not below the group order */
    /* libsecp256k1 verifies low-S only; normalize as allowMalleableSig does. */
    *high_s = secp256k1_ecdsa_signature_normalize(ctx, &norm, &sig);
    return secp256k1_ecdsa_verify(ctx, &norm, hash, &pk) == 1;
}

/* The order n of P-256 and n/2 (floor), big-endian. */
static const uint8_t p256_n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                   0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t p256_half_n[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

static int p256_verify(const mdw_auth__key *key, const uint8_t hash[32], const uint8_t sig64[64],
                       int *high_s)
{
    uint8_t s[32];
    memcpy(s, sig64 + 32, 32);
    if (memcmp(s, p256_n, 32) >= 0)
        return 0;
    if (memcmp(s, p256_half_n, 32) > 0) { /* s = n - s */
        int borrow = 0;
        for (int i = 31; i >= 0; i--) {
            int d = (int)p256_n[i] - (int)s[i] - borrow;
            borrow = d < 0;
            s[i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        *high_s = 1;
    }
    int ok = 0;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *fctx = NULL, *vctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    ECDSA_SIG *esig = NULL;
    unsigned char *der = NULL;
    BIGNUM *r = NULL, *sn = NULL;

    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, key->pub, key->len))
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    fctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !fctx || EVP_PKEY_fromdata_init(fctx) <= 0 ||
        EVP_PKEY_fromdata(fctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto done;
    r = BN_bin2bn(sig64, 32, NULL);
    sn = BN_bin2bn(s, 32, NULL);
    esig = ECDSA_SIG_new();
    if (!r || !sn || !esig || !ECDSA_SIG_set0(esig, r, sn))
        goto done;
    r = sn = NULL; /* owned by esig */
    int derlen = i2d_ECDSA_SIG(esig, &der);
    if (derlen <= 0)
        goto done;
    vctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (!vctx || EVP_PKEY_verify_init(vctx) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()) <= 0)
        goto done;
    ok = EVP_PKEY_verify(vctx, der, (size_t)derlen, hash, 32) == 1;
done:
    OPENSSL_free(der);
    ECDSA_SIG_free(esig);
    BN_free(r);
    BN_free(sn);
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_CTX_free(fctx);
    EVP_PKEY_free(pkey);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok;
}

int mdw_auth__verify(const mdw_auth__key *key, const uint8_t *msg, size_t msglen,
                     const uint8_t sig[64], int *high_s)
{
    uint8_t hash[32];
    *high_s = 0;
    mdw_auth__sha256(msg, msglen, hash);
    if (key->alg == MDW_KEY_K256)
        return k256_verify(key, hash, sig, high_s);
    if (key->alg == MDW_KEY_P256)
        return p256_verify(key, hash, sig, high_s);
    return 0;
}
