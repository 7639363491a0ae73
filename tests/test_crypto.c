/*
** Unit tests for common/crypto: SHA-256, base64/base58btc/base32/multibase
** on published vectors, varints, did:key parsing (the atproto spec's own
** example keys), and ECDSA on both curves with keys generated in the test:
** secp256k1 with libsecp256k1, P-256 with OpenSSL (EVP keygen + sign). Each
** curve is checked for: a good signature verifies, a flipped bit or another
** key fails, the high-S twin of a good signature is refused and flagged
** (and accepted only with MDW_SIG_ALLOW_HIGH_S).
*/
#include "tests/test.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <secp256k1.h>

#include "common/crypto.h"
#include "common/err.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

TEST(sha256_abc)
{
    uint8_t d[32];
    char h[65];
    mdw_sha256("abc", 3, d);
    hex(d, 32, h);
    ASSERT_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(base64_rfc4648_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *pad[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *raw[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        mdw_buf b = MDW_BUF_INIT(64);
        ASSERT_OK(mdw_base64_encode(&b, in[i], strlen(in[i]), MDW_B64_STD | MDW_B64_PAD));
        ASSERT_STREQ(b.data ? b.data : "", pad[i]);
        mdw_buf_reset(&b);
        ASSERT_OK(mdw_base64_encode(&b, in[i], strlen(in[i]), MDW_B64_STD));
        ASSERT_STREQ(b.data ? b.data : "", raw[i]);
        mdw_buf_release(&b);
        uint8_t out[16];
        size_t n;
        ASSERT_OK(mdw_base64_decode(raw[i], strlen(raw[i]), MDW_B64_STD, out, sizeof out, &n));
        ASSERT_EQ(n, strlen(in[i]));
        ASSERT(memcmp(out, in[i], n) == 0);
        ASSERT_OK(mdw_base64_decode(pad[i], strlen(pad[i]), MDW_B64_STD, out, sizeof out, &n));
        ASSERT_EQ(n, strlen(in[i]));
    }
}

TEST(base64_alphabets_and_rejects)
{
    const uint8_t bytes[] = {0xfb, 0xff, 0xfe};
    mdw_buf b = MDW_BUF_INIT(64);
    ASSERT_OK(mdw_base64_encode(&b, bytes, 3, MDW_B64_STD));
    ASSERT_STREQ(b.data, "+//+");
    mdw_buf_reset(&b);
    ASSERT_OK(mdw_base64_encode(&b, bytes, 3, MDW_B64_URL));
    ASSERT_STREQ(b.data, "-__-");
    mdw_buf_release(&b);
    uint8_t out[8];
    size_t n;
    ASSERT_EQ(mdw_base64_decode("-__-", 4, MDW_B64_STD, out, 8, &n), MDW_EMALFORMED);
    ASSERT_EQ(mdw_base64_decode("+//+", 4, MDW_B64_URL, out, 8, &n), MDW_EMALFORMED);
    ASSERT_EQ(mdw_base64_decode("Zh", 2, MDW_B64_STD, out, 8, &n), MDW_EMALFORMED); /* bits */
    ASSERT_EQ(mdw_base64_decode("Z", 1, MDW_B64_STD, out, 8, &n), MDW_EMALFORMED);
    ASSERT_EQ(mdw_base64_decode("Zg=", 3, MDW_B64_STD, out, 8, &n), MDW_EMALFORMED);
    ASSERT_EQ(mdw_base64_decode("Zm9vYmFy", 8, MDW_B64_STD, out, 5, &n), MDW_ETOOBIG);
}

TEST(base58btc_vectors)
{
    mdw_buf b = MDW_BUF_INIT(64);
    ASSERT_OK(mdw_base58btc_encode(&b, (const uint8_t *)"Hello World!", 12));
    ASSERT_STREQ(b.data, "2NEpo7TZRRrLZSi2U");
    mdw_buf_reset(&b);
    const uint8_t z[] = {0, 0, 0x28, 0x7f, 0xb4, 0xcd};
    ASSERT_OK(mdw_base58btc_encode(&b, z, sizeof z));
    ASSERT_STREQ(b.data, "11233QC4");
    mdw_buf_release(&b);
    uint8_t out[16];
    size_t n;
    ASSERT_OK(mdw_base58btc_decode("11233QC4", 8, out, sizeof out, &n));
    ASSERT_EQ(n, 6);
    ASSERT(memcmp(out, z, 6) == 0);
    ASSERT_EQ(mdw_base58btc_decode("0OIl", 4, out, sizeof out, &n), MDW_EMALFORMED);
}

TEST(base32_and_multibase)
{
    static const char *in[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out32[] = {"my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
    for (int i = 0; i < 6; i++) {
        mdw_buf b = MDW_BUF_INIT(64);
        ASSERT_OK(mdw_base32_encode(&b, (const uint8_t *)in[i], strlen(in[i])));
        ASSERT_STREQ(b.data, out32[i]);
        mdw_buf_release(&b);
        uint8_t o[16];
        size_t n;
        char mb[32];
        snprintf(mb, sizeof mb, "b%s", out32[i]);
        ASSERT_OK(mdw_multibase_decode(mb, o, sizeof o, &n));
        ASSERT_EQ(n, strlen(in[i]));
        ASSERT(memcmp(o, in[i], n) == 0);
    }
    uint8_t o[16];
    size_t n;
    ASSERT_OK(mdw_multibase_decode("mZm9vYg", o, sizeof o, &n));
    ASSERT_EQ(n, 4);
    ASSERT_OK(mdw_multibase_decode("uZm9vYg", o, sizeof o, &n));
    ASSERT_EQ(mdw_multibase_decode("xabc", o, sizeof o, &n), MDW_EMALFORMED);
    ASSERT_EQ(mdw_multibase_decode("bmy1", o, sizeof o, &n), MDW_EMALFORMED);
}

TEST(uvarint_minimal_and_bounded)
{
    uint64_t v;
    const uint8_t one[] = {0x01}, two[] = {0xac, 0x02}, overlong[] = {0x81, 0x00};
    const uint8_t ten[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t cut[] = {0x80, 0x80};
    ASSERT_EQ(mdw_uvarint_decode(one, 1, &v), 1);
    ASSERT_EQ(v, 1);
    ASSERT_EQ(mdw_uvarint_decode(two, 2, &v), 2);
    ASSERT_EQ(v, 300);
    ASSERT_EQ(mdw_uvarint_decode(overlong, 2, &v), MDW_EMALFORMED);
    ASSERT_EQ(mdw_uvarint_decode(ten, 10, &v), MDW_EMALFORMED);
    ASSERT_EQ(mdw_uvarint_decode(cut, 2, &v), MDW_EEOF);
}

/* The atproto specification's example did:key values (cryptography page). */
TEST(did_key_spec_examples_round_trip)
{
    static const char *k1 = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
    static const char *p256 = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";
    mdw_pubkey k;
    mdw_buf b = MDW_BUF_INIT(128);
    ASSERT_OK(mdw_pubkey_from_did_key(k1, &k));
    ASSERT_EQ(k.type, MDW_KEY_SECP256K1);
    ASSERT_STREQ(mdw_pubkey_jwt_alg(&k), "ES256K");
    ASSERT_OK(mdw_pubkey_to_did_key(&k, &b));
    ASSERT_STREQ(b.data, k1);
    mdw_buf_reset(&b);
    ASSERT_OK(mdw_pubkey_from_did_key(p256, &k));
    ASSERT_EQ(k.type, MDW_KEY_P256);
    ASSERT_STREQ(mdw_pubkey_jwt_alg(&k), "ES256");
    ASSERT_OK(mdw_pubkey_to_did_key(&k, &b));
    ASSERT_STREQ(b.data, p256);
    mdw_buf_release(&b);
    /* Not a key: wrong prefix, wrong multicodec, a point off the curve. */
    ASSERT_EQ(mdw_pubkey_from_did_key("did:web:example.com", &k), MDW_ECRYPTO);
    ASSERT_EQ(mdw_pubkey_from_multibase("z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", &k),
              MDW_ECRYPTO); /* ed25519: not an atproto key type */
    uint8_t bad[35] = {0xe7, 0x01, 0x02};
    memset(bad + 3, 0xff, 32);
    ASSERT_EQ(mdw_pubkey_from_multicodec(bad, sizeof bad, &k), MDW_ECRYPTO);
}

/* secp256k1 group order n, big-endian. */
static const uint8_t k1_n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

/* s := n - s (the high-S twin), 32-byte big-endian arithmetic. */
static void negate_s(uint8_t s[32], const uint8_t n[32])
{
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - s[i] - borrow;
        borrow = d < 0;
        s[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

TEST(secp256k1_sign_verify_and_high_s)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    uint8_t sk[32], digest[32], sig[64], pub[33];
    for (int i = 0; i < 32; i++)
        sk[i] = (uint8_t)(i * 7 + 1);
    secp256k1_pubkey pk;
    ASSERT(secp256k1_ec_pubkey_create(ctx, &pk, sk));
    size_t pl = 33;
    secp256k1_ec_pubkey_serialize(ctx, pub, &pl, &pk, SECP256K1_EC_COMPRESSED);
    mdw_sha256("meadow", 6, digest);
    secp256k1_ecdsa_signature s;
    ASSERT(secp256k1_ecdsa_sign(ctx, &s, digest, sk, NULL, NULL));
    secp256k1_ecdsa_signature_serialize_compact(ctx, sig, &s);
    secp256k1_context_destroy(ctx);

    mdw_pubkey k;
    int high = -1;
    ASSERT_OK(mdw_pubkey_from_sec1(MDW_KEY_SECP256K1, pub, 33, &k));
    ASSERT_OK(mdw_ecdsa_verify_digest(&k, digest, sig, 0, &high));
    ASSERT_EQ(high, 0);
    ASSERT_OK(mdw_ecdsa_verify(&k, "meadow", 6, sig, 0, NULL));
    uint8_t twin[64];
    memcpy(twin, sig, 64);
    negate_s(twin + 32, k1_n);
    ASSERT_EQ(mdw_ecdsa_verify_digest(&k, digest, twin, 0, &high), MDW_ECRYPTO);
    ASSERT_EQ(high, 1);
    ASSERT_OK(mdw_ecdsa_verify_digest(&k, digest, twin, MDW_SIG_ALLOW_HIGH_S, &high));
    ASSERT_EQ(high, 1);
    uint8_t bad[64];
    memcpy(bad, sig, 64);
    bad[10] ^= 0x01;
    ASSERT_EQ(mdw_ecdsa_verify_digest(&k, digest, bad, 0, &high), MDW_ECRYPTO);
    ASSERT_EQ(high, 0);
    ASSERT_EQ(mdw_ecdsa_verify(&k, "meadoW", 6, sig, 0, NULL), MDW_ECRYPTO);
    /* did:key round trip of a generated key */
    mdw_buf b = MDW_BUF_INIT(128);
    mdw_pubkey k2;
    ASSERT_OK(mdw_pubkey_to_did_key(&k, &b));
    ASSERT(strncmp(b.data, "did:key:zQ3s", 12) == 0);
    ASSERT_OK(mdw_pubkey_from_did_key(b.data, &k2));
    ASSERT(memcmp(k2.point, k.point, 33) == 0);
    mdw_buf_release(&b);
}

static const uint8_t p256_n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                   0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* A P-256 key pair made by OpenSSL, its compressed point and an r||s signature
 * of digest (normalized to low S, as atproto signers do). */
static int p256_make(EVP_PKEY **key, uint8_t pub[33], const uint8_t digest[32], uint8_t sig[64])
{
    *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!*key)
        return -1;
    uint8_t raw[65];
    size_t rl = 0;
    if (!EVP_PKEY_get_octet_string_param(*key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, raw, sizeof raw,
                                         &rl))
        return -1;
    mdw_pubkey k;
    if (mdw_pubkey_from_sec1(MDW_KEY_P256, raw, rl, &k))
        return -1;
    memcpy(pub, k.point, 33);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(*key, NULL);
    uint8_t der[80];
    size_t dl = sizeof der;
    int ok = ctx && EVP_PKEY_sign_init(ctx) > 0 && EVP_PKEY_sign(ctx, der, &dl, digest, 32) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return -1;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (!es)
        return -1;
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    static const uint8_t half[32] = {0x7f, 0xff, 0xff, 0xff, 0x80, 0,    0,    0,
                                     0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
                                     0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};
    if (memcmp(sig + 32, half, 32) > 0)
        negate_s(sig + 32, p256_n);
    return 0;
}

TEST(p256_openssl_vectors)
{
    uint8_t digest[32], pub[33], sig[64];
    mdw_sha256("a P-256 signed message", 22, digest);
    /* Several generated keys, so both parities of the point are exercised. */
    for (int round = 0; round < 4; round++) {
        EVP_PKEY *key = NULL;
        ASSERT_OK(p256_make(&key, pub, digest, sig));
        EVP_PKEY_free(key);
        mdw_pubkey k;
        int high = -1;
        ASSERT_OK(mdw_pubkey_from_sec1(MDW_KEY_P256, pub, 33, &k));
        ASSERT_OK(mdw_ecdsa_verify_digest(&k, digest, sig, 0, &high));
        ASSERT_EQ(high, 0);
        ASSERT_OK(mdw_ecdsa_verify(&k, "a P-256 signed message", 22, sig, 0, NULL));
        uint8_t twin[64];
        memcpy(twin, sig, 64);
        negate_s(twin + 32, p256_n);
        ASSERT_EQ(mdw_ecdsa_verify_digest(&k, digest, twin, 0, &high), MDW_ECRYPTO);
        ASSERT_EQ(high, 1);
        ASSERT_OK(mdw_ecdsa_verify_digest(&k, digest, twin, MDW_SIG_ALLOW_HIGH_S, &high));
        uint8_t bad[64];
        memcpy(bad, sig, 64);
        bad[63] ^= 0x80;
        ASSERT_EQ(mdw_ecdsa_verify_digest(&k, digest, bad, 0, &high), MDW_ECRYPTO);
        ASSERT_EQ(high, 0);
        /* the same signature under a secp256k1 reading of the key type fails */
        mdw_buf b = MDW_BUF_INIT(128);
        ASSERT_OK(mdw_pubkey_to_did_key(&k, &b));
        ASSERT(strncmp(b.data, "did:key:zDn", 11) == 0);
        mdw_pubkey k2;
        ASSERT_OK(mdw_pubkey_from_did_key(b.data, &k2));
        ASSERT_OK(mdw_ecdsa_verify_digest(&k2, digest, sig, 0, NULL));
        mdw_buf_release(&b);
    }
    /* another key's signature does not verify */
    EVP_PKEY *a = NULL, *b = NULL;
    uint8_t pa[33], pb[33], sa[64], sb[64];
    ASSERT_OK(p256_make(&a, pa, digest, sa));
    ASSERT_OK(p256_make(&b, pb, digest, sb));
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    mdw_pubkey ka;
    ASSERT_OK(mdw_pubkey_from_sec1(MDW_KEY_P256, pa, 33, &ka));
    ASSERT_EQ(mdw_ecdsa_verify_digest(&ka, digest, sb, 0, NULL), MDW_ECRYPTO);
    /* all-zero r/s is refused, not a crash */
    uint8_t zero[64] = {0};
    ASSERT_EQ(mdw_ecdsa_verify_digest(&ka, digest, zero, 0, NULL), MDW_ECRYPTO);
}

/* The two-part digest equals the digest of the concatenation; the array encoder equals the buffer
 * one. */
TEST(sha256_two_parts_and_base64_to_array)
{
    uint8_t a[32], b[32];
    const char *msg = "did:plc:abc\nat://did:plc:abc/app.bsky.feed.post/3kabc";
    size_t n = strlen(msg);
    mdw_sha256(msg, n, a);
    for (size_t cut = 0; cut <= n; cut += 7) {
        mdw_sha256_2(msg, cut, msg + cut, n - cut, b);
        ASSERT(memcmp(a, b, 32) == 0);
    }
    const uint8_t raw[6] = {0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83};
    for (int flags = 0; flags < 4; flags++)
        for (size_t len = 0; len <= sizeof raw; len++) {
            char arr[16];
            mdw_buf buf = MDW_BUF_INIT(64);
            ASSERT_OK(mdw_base64_encode(&buf, raw, len, flags));
            ASSERT_EQ(mdw_base64_encode_to(arr, raw, len, flags), buf.len);
            ASSERT_STREQ(arr, buf.data);
            mdw_buf_release(&buf);
        }
    char arr[16];
    mdw_base64_encode_to(arr, raw, 3, MDW_B64_URL);
    ASSERT_STREQ(arr, "-_-_");
}

int main(void)
{
    RUN(sha256_abc);
    RUN(sha256_two_parts_and_base64_to_array);
    RUN(base64_rfc4648_vectors);
    RUN(base64_alphabets_and_rejects);
    RUN(base58btc_vectors);
    RUN(base32_and_multibase);
    RUN(uvarint_minimal_and_bounded);
    RUN(did_key_spec_examples_round_trip);
    RUN(secp256k1_sign_verify_and_high_s);
    RUN(p256_openssl_vectors);
    return TEST_REPORT();
}
