/*
** tests/test_auth_util.h — signing keys and service-auth tokens for the auth
** tests and benchmark: secp256k1 keys through libsecp256k1, P-256 keys through
** OpenSSL, Multikey encoding for DID documents, and tokens minted the way
** @atproto/xrpc-server's createServiceJwt does (base64url JSON header and
** payload, r‖s signature over the ASCII "header.payload").
**
** Also a tiny DID document server (libmicrohttpd on 127.0.0.1) that answers
** GET /<did> (PLC directory style) and GET /.well-known/did.json (did:web),
** counts requests and lets a test replace documents (key rotation).
*/
#ifndef MDW_TEST_AUTH_UTIL_H
#define MDW_TEST_AUTH_UTIL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <secp256k1.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tkey {
    int k256; /* 1 secp256k1, 0 P-256 */
    uint8_t sec[32];
    EVP_PKEY *pkey; /* P-256 */
    uint8_t pub[33];
    char multibase[80]; /* z + base58btc(multicodec ‖ compressed key) */
} tkey;

static inline void tau_b58(const uint8_t *in, size_t n, char *out, size_t outmax)
{
    static const char alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint8_t digits[128] = {0};
    size_t nd = 0, zeros = 0;
    while (zeros < n && in[zeros] == 0)
        zeros++;
    for (size_t i = zeros; i < n; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < nd; j++) {
            carry += (unsigned)digits[j] << 8;
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry) {
            digits[nd++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < zeros && o + 1 < outmax; i++)
        out[o++] = '1';
    for (size_t i = nd; i > 0 && o + 1 < outmax; i--)
        out[o++] = alpha[digits[i - 1]];
    out[o] = '\0';
}

static inline void tau_b64url(const uint8_t *in, size_t n, char *out, size_t outmax)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars && o + 1 < outmax; k++)
            out[o++] = a[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
}

static inline void tkey_gen(tkey *k, int k256)
{
    memset(k, 0, sizeof *k);
    k->k256 = k256;
    uint8_t mc[35];
    if (k256) {
        secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
        secp256k1_pubkey pk;
        do {
            RAND_bytes(k->sec, 32);
        } while (!secp256k1_ec_seckey_verify(ctx, k->sec));
        if (!secp256k1_ec_pubkey_create(ctx, &pk, k->sec))
            abort();
        size_t len = 33;
        secp256k1_ec_pubkey_serialize(ctx, k->pub, &len, &pk, SECP256K1_EC_COMPRESSED);
        secp256k1_context_destroy(ctx);
        mc[0] = 0xe7;
        mc[1] = 0x01;
    } else {
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!k->pkey)
            abort();
        uint8_t un[65];
        size_t len = 0;
        if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, un,
                                             sizeof un, &len) ||
            len != 65 || un[0] != 4)
            abort();
        k->pub[0] = (uint8_t)(2 + (un[64] & 1)); /* SEC1 compressed: parity of y */
        memcpy(k->pub + 1, un + 1, 32);
        mc[0] = 0x80;
        mc[1] = 0x24;
    }
    memcpy(mc + 2, k->pub, 33);
    k->multibase[0] = 'z';
    tau_b58(mc, 35, k->multibase + 1, sizeof k->multibase - 1);
}

static inline void tkey_free(tkey *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

/* r‖s over SHA-256(msg), low-S (as both libraries produce). */
static inline void tkey_sign(const tkey *k, const void *msg, size_t n, uint8_t sig[64])
{
    uint8_t h[32];
    SHA256(msg, n, h);
    if (k->k256) {
        secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
        secp256k1_ecdsa_signature s;
        if (!secp256k1_ecdsa_sign(ctx, &s, h, k->sec, NULL, NULL))
            abort();
        secp256k1_ecdsa_signature_serialize_compact(ctx, sig, &s);
        secp256k1_context_destroy(ctx);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t derlen = sizeof der;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, der, &derlen, msg, n) != 1)
        abort();
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    /* OpenSSL may return a high S; make it low so "high-S" tests are deliberate. */
    BIGNUM *order = BN_new(), *half = BN_new(), *s2 = BN_dup(s);
    BN_hex2bn(&order, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    BN_rshift1(half, order);
    if (BN_cmp(s2, half) > 0)
        BN_sub(s2, order, s2);
    BN_bn2binpad(r, sig, 32);
    BN_bn2binpad(s2, sig + 32, 32);
    BN_free(order);
    BN_free(half);
    BN_free(s2);
    ECDSA_SIG_free(es);
}

/* s -> n - s: the same signature, high-S form. */
static inline void tkey_flip_s(int k256, uint8_t sig[64])
{
    BIGNUM *order = BN_new(), *s = BN_bin2bn(sig + 32, 32, NULL);
    BN_hex2bn(&order, k256 ? "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"
                           : "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    BN_sub(s, order, s);
    BN_bn2binpad(s, sig + 32, 32);
    BN_free(order);
    BN_free(s);
}

/* A token: header and payload JSON as given, signed by k (or sig_override). */
static inline char *tau_mint_ex(const tkey *k, const char *header, const char *payload, int high_s)
{
    char *out = malloc(16384);
    char h64[4096], p64[8192], s64[100];
    tau_b64url((const uint8_t *)header, strlen(header), h64, sizeof h64);
    tau_b64url((const uint8_t *)payload, strlen(payload), p64, sizeof p64);
    int n = snprintf(out, 16384, "%s.%s", h64, p64);
    uint8_t sig[64];
    tkey_sign(k, out, (size_t)n, sig);
    if (high_s)
        tkey_flip_s(k->k256, sig);
    tau_b64url(sig, 64, s64, sizeof s64);
    snprintf(out + n, 16384 - (size_t)n, ".%s", s64);
    return out;
}

/* A well-formed service token from iss to aud for lxm, expiring at exp (unix s). */
static inline char *tau_mint(const tkey *k, const char *iss, const char *aud, const char *lxm,
                             long long exp)
{
    char header[128], payload[4096];
    snprintf(header, sizeof header, "{\"typ\":\"JWT\",\"alg\":\"%s\"}",
             k->k256 ? "ES256K" : "ES256");
    snprintf(payload, sizeof payload,
             "{\"iat\":%lld,\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\","
             "\"jti\":\"%08x\"}",
             exp - 60, iss, aud, exp, lxm, (unsigned)rand());
    return tau_mint_ex(k, header, payload, 0);
}

/* A DID document with #atproto = k (and #atproto_label = label when given). */
static inline char *tau_doc(const char *did, const tkey *k, const tkey *label)
{
    char *out = malloc(4096);
    int n = snprintf(out, 4096,
                     "{\"@context\":[\"https://www.w3.org/ns/did/v1\","
                     "\"https://w3id.org/security/multikey/v1\"],\"id\":\"%s\","
                     "\"alsoKnownAs\":[\"at://someone.test\"],\"verificationMethod\":["
                     "{\"id\":\"%s#atproto\",\"type\":\"Multikey\",\"controller\":\"%s\","
                     "\"publicKeyMultibase\":\"%s\"}",
                     did, did, did, k->multibase);
    if (label)
        n += snprintf(out + n, 4096 - (size_t)n,
                      ",{\"id\":\"#atproto_label\",\"type\":\"Multikey\",\"controller\":\"%s\","
                      "\"publicKeyMultibase\":\"%s\"}",
                      did, label->multibase);
    snprintf(out + n, 4096 - (size_t)n,
             "],\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
             "\"serviceEndpoint\":\"http://127.0.0.1:1\"}]}");
    return out;
}

/* --- DID document server ---------------------------------------------- */

#define TAU_MAX_DOCS 64
typedef struct tau_srv {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    char *path[TAU_MAX_DOCS];
    char *body[TAU_MAX_DOCS];
    int hits[TAU_MAX_DOCS];
    int n;
    int total;
    int delay_ms;
} tau_srv;

static inline enum MHD_Result tau_srv_cb(void *cls, struct MHD_Connection *c, const char *url,
                                         const char *method, const char *version,
                                         const char *upload, size_t *upload_size, void **ptr)
{
    tau_srv *s = cls;
    char *body = NULL;
    pthread_mutex_lock(&s->mu);
    s->total++;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->path[i], url) == 0) {
            s->hits[i]++;
            body = s->body[i] ? strdup(s->body[i]) : NULL;
        }
    int delay = s->delay_ms;
    pthread_mutex_unlock(&s->mu);
    if (delay)
        usleep((useconds_t)delay * 1000);
    struct MHD_Response *r;
    unsigned status = body ? 200 : 404;
    if (body)
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static inline int tau_srv_start(tau_srv *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000001); /* 127.0.0.1, port chosen by the kernel */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, tau_srv_cb, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_END);
    if (!s->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port ? 0 : -1;
}

/* Serves body (copied; NULL = 404) at path; replaces an earlier one. */
static inline void tau_srv_put(tau_srv *s, const char *path, const char *body)
{
    pthread_mutex_lock(&s->mu);
    int i;
    for (i = 0; i < s->n && strcmp(s->path[i], path) != 0; i++)
        ;
    if (i == s->n) {
        if (s->n == TAU_MAX_DOCS)
            abort();
        s->path[s->n++] = strdup(path);
    } else {
        free(s->body[i]);
    }
    s->body[i] = body ? strdup(body) : NULL;
    pthread_mutex_unlock(&s->mu);
}

static inline int tau_srv_hits(tau_srv *s, const char *path)
{
    int h = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->path[i], path) == 0)
            h = s->hits[i];
    pthread_mutex_unlock(&s->mu);
    return h;
}

static inline void tau_srv_stop(tau_srv *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    for (int i = 0; i < s->n; i++) {
        free(s->path[i]);
        free(s->body[i]);
    }
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof *s);
}

/* A random did:plc (24 base32 characters). */
static inline void tau_plc_did(char out[33])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t r[24];
    RAND_bytes(r, sizeof r);
    memcpy(out, "did:plc:", 8);
    for (int i = 0; i < 24; i++)
        out[8 + i] = b32[r[i] & 31];
    out[32] = '\0';
}

#endif
