/*
** Unit tests for feedgen/auth (service-auth JWT verification) and
** identity/didres.c (DID resolution and caching). Keys are generated per run
** (secp256k1 by libsecp256k1, P-256 by OpenSSL), tokens are minted as
** @atproto/xrpc-server's createServiceJwt mints them, and DID documents are
** served over real HTTP by libmicrohttpd on 127.0.0.1 (PLC directory and
** did:web layouts), so the resolver's libcurl path is what is exercised.
*/
#include "tests/test.h"
#include "tests/test_auth_util.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "feedgen/auth.h"
#include "common/crypto.h"
#include "identity/identity.h"

#define LXM "app.bsky.feed.getFeedSkeleton"
#define SVC "did:web:feeds.meadow.test"

static tau_srv srv;
static mdw_clock fclock;
static char plc_url[64];

typedef struct fx {
    mdw_didres *res;
    mdw_auth *auth;
    char did[33];
    char path[64];
    tkey k;
} fx;

static long long now_s(void)
{
    return (long long)(mdw_clock_now_us(&fclock) / 1000000);
}

/* An issuer with a fresh key of the given curve, published in the PLC server. */
static void fx_issuer(fx *f, int k256)
{
    tau_plc_did(f->did);
    snprintf(f->path, sizeof f->path, "/%s", f->did);
    tkey_gen(&f->k, k256);
    char *doc = tau_doc(f->did, &f->k, NULL);
    tau_srv_put(&srv, f->path, doc);
    free(doc);
}

static int fx_init(fx *f, mdw_auth_mode mode, int k256)
{
    memset(f, 0, sizeof *f);
    mdw_didres_opts ro = {.plc_url = plc_url,
                          .cache_ttl_s = 3600,
                          .cache_max = 100,
                          .timeout_ms = 2000,
                          .allow_localhost = 1};
    if (mdw_didres_new(&f->res, &ro, &fclock) != 0)
        return -1;
    mdw_auth_opts ao = {.mode = mode,
                        .service_did = SVC,
                        .leeway_s = 30,
                        .resolver = f->res,
                        .token_cache_ttl_s = 3600};
    if (mdw_auth_new(&f->auth, &ao, &fclock) != 0)
        return -1;
    fx_issuer(f, k256);
    return 0;
}

static void fx_free(fx *f)
{
    mdw_auth_free(f->auth);
    mdw_didres_free(f->res);
    tkey_free(&f->k);
}

typedef struct res {
    int rc;
    const char *err;
    char viewer[MDW_MAX_DID_BYTES + 1];
    char msg[256];
} res;

static res check_hdr(fx *f, const char *hdr, const char *lxm)
{
    res r;
    memset(&r, 0, sizeof r);
    r.rc =
        mdw_auth_check(f->auth, hdr, lxm, r.viewer, sizeof r.viewer, &r.err, r.msg, sizeof r.msg);
    return r;
}

static res check_tok(fx *f, const char *token)
{
    char hdr[MDW_MAX_JWT_BYTES + 64];
    snprintf(hdr, sizeof hdr, "Bearer %s", token);
    return check_hdr(f, hdr, LXM);
}

/* Mints with f's key, checks, frees; returns the result. */
static res mint_check(fx *f, const char *iss, const char *aud, const char *lxm, long long exp)
{
    char *t = tau_mint(&f->k, iss, aud, lxm, exp);
    res r = check_tok(f, t);
    free(t);
    return r;
}

#define EXPECT_REFUSED(r, name)                                                                    \
    do {                                                                                           \
        ASSERT_EQ((r).rc, MDW_EDENIED);                                                            \
        ASSERT_STREQ((r).err, name);                                                               \
        ASSERT_STREQ((r).viewer, "");                                                              \
    } while (0)

#define EXPECT_OK(r, did)                                                                          \
    do {                                                                                           \
        ASSERT_MSG((r).rc == 0, "rc=%d err=%s msg=%s", (r).rc, (r).err ? (r).err : "-", (r).msg);  \
        ASSERT_STREQ((r).viewer, did);                                                             \
        ASSERT((r).err == NULL);                                                                   \
    } while (0)

/* --- accepted ------------------------------------------------------------ */

TEST(es256k_token_accepted)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 1);
    fx_free(&f);
}

TEST(es256_token_accepted_openssl_key)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_REQUIRED, 0));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    fx_free(&f);
}

TEST(aud_with_bsky_fg_fragment_accepted)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC "#bsky_fg", LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    /* Any other fragment is another audience. */
    r = mint_check(&f, f.did, SVC "#atproto_pds", LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtAudience");
    fx_free(&f);
}

TEST(high_s_normalized_accepted_and_counted)
{
    for (int k256 = 0; k256 <= 1; k256++) {
        fx f;
        ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, k256));
        char hdr[64], pl[512];
        snprintf(hdr, sizeof hdr, "{\"typ\":\"JWT\",\"alg\":\"%s\"}", k256 ? "ES256K" : "ES256");
        snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}",
                 f.did, SVC, now_s() + 60, LXM);
        uint64_t before = mdw_auth_high_s_count();
        char *t = tau_mint_ex(&f.k, hdr, pl, 1);
        res r = check_tok(&f, t);
        free(t);
        EXPECT_OK(r, f.did);
        ASSERT_EQ(mdw_auth_high_s_count(), before + 1);
        ASSERT_EQ(mdw_metrics_counter_value("meadow_auth_high_s_total", NULL), (int64_t)before + 1);
        /* The low-S form of a token is not counted. */
        r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
        EXPECT_OK(r, f.did);
        ASSERT_EQ(mdw_auth_high_s_count(), before + 1);
        fx_free(&f);
    }
}

TEST(exp_within_leeway_accepted)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() - 20); /* leeway 30 s */
    EXPECT_OK(r, f.did);
    fx_free(&f);
}

TEST(did_web_issuer_resolved_over_http)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 0));
    char did[64];
    snprintf(did, sizeof did, "did:web:localhost%%3A%d", srv.port);
    char *doc = tau_doc(did, &f.k, NULL);
    tau_srv_put(&srv, "/.well-known/did.json", doc);
    free(doc);
    int before = tau_srv_hits(&srv, "/.well-known/did.json");
    res r = mint_check(&f, did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, did);
    ASSERT_EQ(tau_srv_hits(&srv, "/.well-known/did.json"), before + 1);
    fx_free(&f);
}

TEST(labeler_fragment_uses_atproto_label_key)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    tkey label;
    tkey_gen(&label, 0);
    char *doc = tau_doc(f.did, &f.k, &label);
    tau_srv_put(&srv, f.path, doc);
    free(doc);
    char iss[64];
    snprintf(iss, sizeof iss, "%s#atproto_labeler", f.did);
    /* Signed by #atproto_label: accepted, viewer is the DID without fragment. */
    char *t = tau_mint(&label, iss, SVC, LXM, now_s() + 60);
    res r = check_tok(&f, t);
    free(t);
    EXPECT_OK(r, f.did);
    /* Signed by #atproto with the labeler fragment: wrong key. */
    r = mint_check(&f, iss, SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* Any other fragment maps to #atproto (as the reference does). */
    snprintf(iss, sizeof iss, "%s#whatever", f.did);
    r = mint_check(&f, iss, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    tkey_free(&label);
    fx_free(&f);
}

/* --- refused -------------------------------------------------------------- */

TEST(tampered_payload_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    char *t = tau_mint(&f.k, f.did, SVC, LXM, now_s() + 60);
    /* Replace the payload by another valid one (a later exp) keeping the signature. */
    char pl[512], p64[1024], tok[2048];
    snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}", f.did,
             SVC, now_s() + 86400, LXM);
    tau_b64url((const uint8_t *)pl, strlen(pl), p64, sizeof p64);
    char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    snprintf(tok, sizeof tok, "%.*s.%s%s", (int)(d1 - t), t, p64, d2);
    res r = check_tok(&f, tok);
    EXPECT_REFUSED(r, "BadJwtSignature");
    free(t);
    fx_free(&f);
}

TEST(tampered_signature_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 0));
    char *t = tau_mint(&f.k, f.did, SVC, LXM, now_s() + 60);
    char *sig = strrchr(t, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    res r = check_tok(&f, t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* A signature of the wrong length (DER, 65 bytes, empty) is a signature failure too. */
    sig[0] = '\0';
    r = check_tok(&f, t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    free(t);
    fx_free(&f);
}

TEST(wrong_aud_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, "did:web:other.test", LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtAudience");
    fx_free(&f);
}

TEST(wrong_or_missing_lxm_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, "app.bsky.feed.getTimeline", now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtLexiconMethod");
    char pl[512];
    snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", f.did, SVC,
             now_s() + 60);
    char *t = tau_mint_ex(&f.k, "{\"alg\":\"ES256K\"}", pl, 0);
    r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwtLexiconMethod");
    /* A valid token is good for its own method only (and the cache does not leak it). */
    t = tau_mint(&f.k, f.did, SVC, LXM, now_s() + 60);
    char hdr[2048];
    snprintf(hdr, sizeof hdr, "Bearer %s", t);
    r = check_hdr(&f, hdr, LXM);
    EXPECT_OK(r, f.did);
    r = check_hdr(&f, hdr, "app.bsky.feed.describeFeedGenerator");
    EXPECT_REFUSED(r, "BadJwtLexiconMethod");
    free(t);
    fx_free(&f);
}

TEST(expired_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() - 31);
    EXPECT_REFUSED(r, "JwtExpired");
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 0); /* refused before any fetch */
    fx_free(&f);
}

TEST(alg_none_and_hs256_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    char pl[512], h64[128], p64[1024], tok[2048];
    snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}", f.did,
             SVC, now_s() + 60, LXM);
    tau_b64url((const uint8_t *)pl, strlen(pl), p64, sizeof p64);
    /* alg none, empty signature (the classic forgery) */
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    tau_b64url((const uint8_t *)none, strlen(none), h64, sizeof h64);
    snprintf(tok, sizeof tok, "%s.%s.", h64, p64);
    res r = check_tok(&f, tok);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* alg none carrying a valid ES256K signature of the same bytes: still refused */
    char *t = tau_mint_ex(&f.k, none, pl, 0);
    r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* HS256 keyed with the public key (algorithm confusion) */
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    tau_b64url((const uint8_t *)hs, strlen(hs), h64, sizeof h64);
    int n = snprintf(tok, sizeof tok, "%s.%s", h64, p64);
    uint8_t mac[32];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), f.k.pub, 33, (const uint8_t *)tok, (size_t)n, mac, &maclen);
    char m64[64];
    tau_b64url(mac, maclen, m64, sizeof m64);
    snprintf(tok + n, sizeof tok - (size_t)n, ".%s", m64);
    r = check_tok(&f, tok);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* ES256 header over a secp256k1 key: the alg must match the key's curve */
    t = tau_mint_ex(&f.k, "{\"alg\":\"ES256\"}", pl, 0);
    r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    fx_free(&f);
}

TEST(signed_by_other_key_refused_after_one_refetch)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    tkey other;
    tkey_gen(&other, 1);
    char *t = tau_mint(&other, f.did, SVC, LXM, now_s() + 60);
    uint64_t refetch0 = (uint64_t)mdw_metrics_counter_value("meadow_auth_key_refetch_total", NULL);
    res r = check_tok(&f, t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    /* First fetch, then within the 1 s refresh floor no second fetch. */
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 1);
    mdw_clock_fake_advance(&fclock, 2 * 1000000);
    r = check_tok(&f, t);
    EXPECT_REFUSED(r, "BadJwtSignature");
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 2); /* refetched once, then refused */
    ASSERT_EQ((uint64_t)mdw_metrics_counter_value("meadow_auth_key_refetch_total", NULL),
              refetch0 + 1);
    free(t);
    tkey_free(&other);
    fx_free(&f);
}

TEST(key_rotation_picked_up_by_refetch)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did); /* document cached with the old key */
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 1);
    tkey fresh;
    tkey_gen(&fresh, 0); /* rotated to a P-256 key */
    char *doc = tau_doc(f.did, &fresh, NULL);
    tau_srv_put(&srv, f.path, doc);
    free(doc);
    mdw_clock_fake_advance(&fclock, 2 * 1000000);
    char *t = tau_mint(&fresh, f.did, SVC, LXM, now_s() + 60);
    r = check_tok(&f, t);
    EXPECT_OK(r, f.did);
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 2);
    /* The cache now holds the new key: another token costs no fetch. */
    free(t);
    t = tau_mint(&fresh, f.did, SVC, LXM, now_s() + 60);
    r = check_tok(&f, t);
    EXPECT_OK(r, f.did);
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 2);
    free(t);
    tkey_free(&fresh);
    fx_free(&f);
}

TEST(unresolvable_did_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    char ghost[33];
    tau_plc_did(ghost); /* the server answers 404 */
    res r = mint_check(&f, ghost, SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    /* Remembered: a flood of tokens naming it costs one fetch. */
    int total = srv.total;
    r = mint_check(&f, ghost, SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    ASSERT_EQ(srv.total, total);
    /* Methods we cannot resolve, a did:web with a path, a document without #atproto. */
    r = mint_check(&f, "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", SVC, LXM,
                   now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    r = mint_check(&f, "did:web:example.com:user:alice", SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    char did[33], path[64];
    tau_plc_did(did);
    snprintf(path, sizeof path, "/%s", did);
    char doc[256];
    snprintf(doc, sizeof doc, "{\"id\":\"%s\",\"verificationMethod\":[]}", did);
    tau_srv_put(&srv, path, doc);
    r = mint_check(&f, did, SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    /* A document whose id is another DID is refused. */
    tau_plc_did(did);
    snprintf(path, sizeof path, "/%s", did);
    char *bad = tau_doc(f.did, &f.k, NULL);
    tau_srv_put(&srv, path, bad);
    free(bad);
    r = mint_check(&f, did, SVC, LXM, now_s() + 60);
    EXPECT_REFUSED(r, "BadJwtIss");
    /* A directory that does not answer (closed port) is refused, not hung on. */
    mdw_didres *dead;
    mdw_didres_opts ro = {.plc_url = "http://127.0.0.1:1", .cache_ttl_s = 60, .cache_max = 4};
    ASSERT_OK(mdw_didres_new(&dead, &ro, &fclock));
    mdw_pubkey k;
    ASSERT_EQ(mdw_didres_key(dead, f.did, "atproto", 0, &k, NULL), MDW_EHTTP);
    mdw_didres_free(dead);
    fx_free(&f);
}

TEST(bad_iss_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    const char *bad[] = {"alice.test",   "did:plc:", "did:PLC:abc", "did:plc:abc#", "did:plc:a#b#c",
                         "did:plc:abc:", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        res r = mint_check(&f, bad[i], SVC, LXM, now_s() + 60);
        ASSERT_MSG(r.rc == MDW_EDENIED && strcmp(r.err, "BadJwtIss") == 0, "iss=%s err=%s", bad[i],
                   r.err ? r.err : "-");
    }
    ASSERT_EQ(srv.total >= 0, 1);
    fx_free(&f);
}

TEST(malformed_tokens_refused)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    char pl[512], p64[1024], h64[128], tok[4096];
    snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}", f.did,
             SVC, now_s() + 60, LXM);
    tau_b64url((const uint8_t *)pl, strlen(pl), p64, sizeof p64);
    const char *hj = "{\"alg\":\"ES256K\"}";
    tau_b64url((const uint8_t *)hj, strlen(hj), h64, sizeof h64);
    const char *cases[] = {
        "abc", "a.b", "a.b.c.d", "...", "!!!.???.sig", "eyJhbGciOiJFUzI1NksifQ.e30.", NULL};
    for (int i = 0; cases[i]; i++) {
        res r = check_tok(&f, cases[i]);
        ASSERT_MSG(r.rc == MDW_EDENIED && strcmp(r.err, "BadJwt") == 0, "case %d err=%s", i,
                   r.err ? r.err : "-");
    }
    /* header not JSON; header without alg; padding; payload with exp as a string; four parts */
    const char *payloads[] = {"{\"iss\":\"did:plc:x\",\"aud\":\"a\",\"exp\":\"1\"}",
                              "{\"iss\":1,\"aud\":\"a\",\"exp\":1}", "[1,2]",
                              "{\"iss\":\"a\",\"aud\":\"a\",\"exp\":1,\"lxm\":5}", NULL};
    for (int i = 0; payloads[i]; i++) {
        char *t = tau_mint_ex(&f.k, hj, payloads[i], 0);
        res r = check_tok(&f, t);
        free(t);
        ASSERT_MSG(r.rc == MDW_EDENIED && strcmp(r.err, "BadJwt") == 0, "payload %d err=%s", i,
                   r.err ? r.err : "-");
    }
    char *t = tau_mint_ex(&f.k, "not json", pl, 0);
    res r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwt");
    t = tau_mint_ex(&f.k, "{\"typ\":\"JWT\"}", pl, 0);
    r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwt");
    /* Duplicate claims (JSON.parse and cJSON would disagree on which wins). */
    char dup[600];
    snprintf(dup, sizeof dup,
             "{\"iss\":\"%s\",\"aud\":\"did:web:x\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}",
             f.did, SVC, now_s() + 60, LXM);
    t = tau_mint_ex(&f.k, hj, dup, 0);
    r = check_tok(&f, t);
    free(t);
    EXPECT_REFUSED(r, "BadJwt");
    /* base64 padding or the standard alphabet is not base64url */
    snprintf(tok, sizeof tok, "%s=.%s.AAAA", h64, p64);
    r = check_tok(&f, tok);
    EXPECT_REFUSED(r, "BadJwt");
    /* Over MDW_MAX_JWT_BYTES */
    char *big = malloc(MDW_MAX_JWT_BYTES + 100);
    memset(big, 'A', MDW_MAX_JWT_BYTES + 99);
    big[MDW_MAX_JWT_BYTES + 99] = '\0';
    r = check_tok(&f, big);
    free(big);
    EXPECT_REFUSED(r, "BadJwt");
    /* Not a Bearer token */
    r = check_hdr(&f, "Basic dXNlcjpwYXNz", LXM);
    EXPECT_REFUSED(r, "BadJwt");
    r = check_hdr(&f, "Bearer    ", LXM);
    EXPECT_REFUSED(r, "BadJwt");
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 0); /* none of these cost a fetch */
    fx_free(&f);
}

TEST(refused_typ_values)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    const char *typs[] = {"at+jwt", "refresh+jwt", "dpop+jwt"};
    char pl[512];
    snprintf(pl, sizeof pl, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"lxm\":\"%s\"}", f.did,
             SVC, now_s() + 60, LXM);
    for (int i = 0; i < 3; i++) {
        char h[128];
        snprintf(h, sizeof h, "{\"typ\":\"%s\",\"alg\":\"ES256K\"}", typs[i]);
        char *t = tau_mint_ex(&f.k, h, pl, 0);
        res r = check_tok(&f, t);
        free(t);
        EXPECT_REFUSED(r, "BadJwtType");
    }
    fx_free(&f);
}

/* --- modes and caches ------------------------------------------------------ */

TEST(modes_off_optional_required)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = check_hdr(&f, NULL, LXM);
    EXPECT_OK(r, ""); /* anonymous */
    r = check_hdr(&f, "", LXM);
    EXPECT_OK(r, "");
    r = check_tok(&f, "garbage");
    EXPECT_REFUSED(r, "BadJwt"); /* invalid is refused even when optional */
    fx_free(&f);

    ASSERT_OK(fx_init(&f, MDW_AUTH_REQUIRED, 1));
    r = check_hdr(&f, NULL, LXM);
    EXPECT_REFUSED(r, "AuthMissing");
    r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    fx_free(&f);

    ASSERT_OK(fx_init(&f, MDW_AUTH_OFF, 1));
    r = check_tok(&f, "garbage");
    EXPECT_OK(r, "");
    r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, ""); /* off: nobody is identified */
    fx_free(&f);

    mdw_auth_mode m;
    ASSERT_OK(mdw_auth_mode_parse("required", &m));
    ASSERT_EQ(m, MDW_AUTH_REQUIRED);
    ASSERT_EQ(mdw_auth_mode_parse("yes", &m), MDW_ECONFIG);
    mdw_auth *a;
    mdw_auth_opts bad = {.mode = MDW_AUTH_REQUIRED, .service_did = ""};
    ASSERT_EQ(mdw_auth_new(&a, &bad, &fclock), MDW_ECONFIG);
}

TEST(token_cache_hit_until_exp)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 0));
    char *t = tau_mint(&f.k, f.did, SVC, LXM, now_s() + 60);
    res r = check_tok(&f, t);
    EXPECT_OK(r, f.did);
    ASSERT_EQ(mdw_auth_token_cache_hits(f.auth), 0);
    uint64_t dhits = mdw_didres_hits(f.res);
    for (int i = 0; i < 5; i++) {
        r = check_tok(&f, t);
        EXPECT_OK(r, f.did);
    }
    ASSERT_EQ(mdw_auth_token_cache_hits(f.auth), 5);
    ASSERT_EQ(mdw_didres_hits(f.res), dhits); /* not even a key lookup */
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 1);
    /* Past exp + leeway the cached entry no longer answers. */
    mdw_clock_fake_advance(&fclock, (60 + 31) * 1000000LL);
    r = check_tok(&f, t);
    EXPECT_REFUSED(r, "JwtExpired");
    free(t);
    fx_free(&f);
}

TEST(no_token_cache_verifies_every_time)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_REQUIRED, 1));
    mdw_auth *nc;
    mdw_auth_opts ao = {.mode = MDW_AUTH_REQUIRED,
                        .service_did = SVC,
                        .leeway_s = 30,
                        .resolver = f.res,
                        .no_token_cache = 1};
    ASSERT_OK(mdw_auth_new(&nc, &ao, &fclock));
    char *t = tau_mint(&f.k, f.did, SVC, LXM, now_s() + 60);
    char hdr[2048], viewer[MDW_MAX_DID_BYTES + 1], msg[128];
    const char *err;
    snprintf(hdr, sizeof hdr, "Bearer %s", t);
    uint64_t dhits = mdw_didres_hits(f.res);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(mdw_auth_check(nc, hdr, LXM, viewer, sizeof viewer, &err, msg, sizeof msg));
        ASSERT_STREQ(viewer, f.did);
    }
    ASSERT_EQ(mdw_auth_token_cache_hits(nc), 0);
    ASSERT_EQ(mdw_didres_hits(f.res), dhits + 2); /* first fetched, then cached keys */
    free(t);
    mdw_auth_free(nc);
    fx_free(&f);
}

TEST(did_cache_ttl_and_cap)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_OPTIONAL, 1));
    res r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    r = mint_check(&f, f.did, SVC, LXM, now_s() + 60); /* another token, same DID */
    EXPECT_OK(r, f.did);
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 1);
    mdw_clock_fake_advance(&fclock, 3601LL * 1000000);
    r = mint_check(&f, f.did, SVC, LXM, now_s() + 60);
    EXPECT_OK(r, f.did);
    ASSERT_EQ(tau_srv_hits(&srv, f.path), 2); /* TTL passed: refetched */
    fx_free(&f);

    /* A cap of 2 DIDs: the least recently used is evicted. */
    mdw_didres *res2;
    mdw_didres_opts ro = {.plc_url = plc_url, .cache_ttl_s = 3600, .cache_max = 2};
    ASSERT_OK(mdw_didres_new(&res2, &ro, &fclock));
    fx a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    fx_issuer(&a, 1);
    fx_issuer(&b, 1);
    fx_issuer(&c, 1);
    mdw_pubkey k;
    ASSERT_OK(mdw_didres_key(res2, a.did, "atproto", 0, &k, NULL));
    ASSERT_EQ(k.type, MDW_KEY_SECP256K1);
    ASSERT_EQ(memcmp(k.point, a.k.pub, 33), 0);
    ASSERT_OK(mdw_didres_key(res2, b.did, "atproto", 0, &k, NULL));
    ASSERT_OK(mdw_didres_key(res2, a.did, "atproto", 0, &k, NULL)); /* a is most recent */
    ASSERT_OK(mdw_didres_key(res2, c.did, "atproto", 0, &k, NULL)); /* evicts b */
    ASSERT_EQ(mdw_didres_fetches(res2), 3);
    ASSERT_OK(mdw_didres_key(res2, a.did, "atproto", 0, &k, NULL));
    ASSERT_EQ(mdw_didres_fetches(res2), 3);
    ASSERT_OK(mdw_didres_key(res2, b.did, "atproto", 0, &k, NULL));
    ASSERT_EQ(mdw_didres_fetches(res2), 4);
    ASSERT_EQ(mdw_didres_key(res2, b.did, "atproto_label", 0, &k, NULL), MDW_ENOTFOUND);
    mdw_didres_free(res2);
    tkey_free(&a.k);
    tkey_free(&b.k);
    tkey_free(&c.k);
}

TEST(docs_file_answers_offline)
{
    const char *dir = TEST_TMPDIR();
    tkey k;
    tkey_gen(&k, 1);
    char did[33];
    tau_plc_did(did);
    char *doc = tau_doc(did, &k, NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/docs.json", dir);
    FILE *fp = fopen(path, "w");
    ASSERT(fp);
    fprintf(fp, "{\"%s\": %s}", did, doc);
    fclose(fp);
    free(doc);
    mdw_didres *r;
    mdw_didres_opts ro = {
        .plc_url = "http://127.0.0.1:1", .cache_ttl_s = 60, .cache_max = 4, .docs_file = path};
    ASSERT_OK(mdw_didres_new(&r, &ro, &fclock));
    mdw_pubkey key;
    ASSERT_OK(mdw_didres_key(r, did, "atproto", 0, &key, NULL));
    ASSERT_EQ(memcmp(key.point, k.pub, 33), 0);
    char other[33];
    tau_plc_did(other);
    ASSERT_EQ(mdw_didres_key(r, other, "atproto", 0, &key, NULL), MDW_ENOTFOUND);
    mdw_didres_free(r);
    tkey_free(&k);
}

TEST(doc_parsing_rules)
{
    mdw_didres_keys keys;
    tkey k1, k2, k3;
    tkey_gen(&k1, 1);
    tkey_gen(&k2, 0);
    tkey_gen(&k3, 0);
    char doc[2048];
    /* The first #atproto method decides; the legacy key types are understood. */
    char legacy[80] = "z";
    tau_b58(k2.pub, 33, legacy + 1, sizeof legacy - 1);
    snprintf(doc, sizeof doc,
             "{\"id\":\"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa\",\"verificationMethod\":["
             "{\"id\":\"#atproto\",\"type\":\"EcdsaSecp256r1VerificationKey2019\","
             "\"publicKeyMultibase\":\"%s\"},"
             "{\"id\":\"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto\",\"type\":\"Multikey\","
             "\"publicKeyMultibase\":\"%s\"},"
             "{\"id\":\"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_label\",\"type\":\"Multikey\","
             "\"publicKeyMultibase\":\"%s\"}]}",
             legacy, k1.multibase, k3.multibase);
    ASSERT_OK(mdw_didres_parse_doc("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", doc, strlen(doc), &keys));
    ASSERT(keys.has_atproto);
    ASSERT_EQ(keys.atproto.type, MDW_KEY_P256);
    ASSERT_EQ(memcmp(keys.atproto.point, k2.pub, 33), 0);
    ASSERT(keys.has_label);
    ASSERT_EQ(memcmp(keys.label.point, k3.pub, 33), 0);
    /* The document must be the DID's own. */
    ASSERT_EQ(mdw_didres_parse_doc("did:plc:cccccccccccccccccccccccc", doc, strlen(doc), &keys),
              MDW_EMALFORMED);
    ASSERT_EQ(mdw_didres_parse_doc("did:plc:x", "[]", 2, &keys), MDW_EMALFORMED);
    /* A point off the curve is no key. */
    uint8_t mc[35] = {0xe7, 0x01, 0x02};
    memset(mc + 3, 0xff, 32);
    char mb[80] = "z";
    tau_b58(mc, 35, mb + 1, sizeof mb - 1);
    snprintf(doc, sizeof doc,
             "{\"id\":\"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa\",\"verificationMethod\":["
             "{\"id\":\"#atproto\",\"type\":\"Multikey\",\"publicKeyMultibase\":\"%s\"}]}",
             mb);
    ASSERT_OK(mdw_didres_parse_doc("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", doc, strlen(doc), &keys));
    ASSERT(!keys.has_atproto);
    ASSERT(!keys.has_label);
    tkey_free(&k1);
    tkey_free(&k2);
    tkey_free(&k3);
}

TEST(did_tag_hides_the_did)
{
    char tag[13], tag2[13];
    mdw_auth_did_tag("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", tag);
    mdw_auth_did_tag("did:plc:aaaaaaaaaaaaaaaaaaaaaaab", tag2);
    ASSERT_EQ(strlen(tag), 12);
    ASSERT(strstr(tag, "did") == NULL);
    ASSERT(strcmp(tag, tag2) != 0);
}

/* Tokens minted by the reference library (seeds of fuzz_jwt, see their README). */
TEST(reference_minted_tokens_accepted)
{
    const char *dir = TEST_TMPDIR();
    char path[600];
    snprintf(path, sizeof path, "%s/docs.json", dir);
    FILE *fp = fopen(path, "w");
    ASSERT(fp);
    const char *dids[2] = {"did:plc:fuzzfuzzfuzzfuzzfuzzfuzz", "did:plc:p256p256p256p256p256p256"};
    const char *mbs[2] = {"zQ3shYP6NcJp2XofT6JRNkhF6fVTux1zJVHqiqz5y6hR6rAeP",
                          "zDnaerJGHDByjvdKoV5xsU1GFZJhE18b32EqRR6jAEZV8VkiQ"};
    fputc('{', fp);
    for (int i = 0; i < 2; i++)
        fprintf(fp,
                "%s\"%s\":{\"id\":\"%s\",\"verificationMethod\":[{\"id\":\"#atproto\","
                "\"type\":\"Multikey\",\"publicKeyMultibase\":\"%s\"}]}",
                i ? "," : "", dids[i], dids[i], mbs[i]);
    fputc('}', fp);
    fclose(fp);
    mdw_didres *r;
    mdw_didres_opts ro = {.cache_ttl_s = 60, .cache_max = 4, .docs_file = path};
    ASSERT_OK(mdw_didres_new(&r, &ro, &fclock));
    mdw_auth *a;
    mdw_auth_opts ao = {.mode = MDW_AUTH_REQUIRED,
                        .service_did = "did:web:feeds.meadow.test",
                        .leeway_s = 30,
                        .resolver = r};
    ASSERT_OK(mdw_auth_new(&a, &ao, &fclock));
    const char *files[] = {"es256k_valid", "es256_valid_bsky_fg", "es256k_expired",
                           "es256k_wrong_aud", "alg_none"};
    const char *want[] = {NULL, NULL, "JwtExpired", "BadJwtAudience", "BadJwtSignature"};
    for (int i = 0; i < 5; i++) {
        char fn[256], hdr[MDW_MAX_JWT_BYTES + 64] = {0};
        snprintf(fn, sizeof fn, "tests/fuzz/corpus/jwt/%s", files[i]);
        FILE *f = fopen(fn, "r");
        ASSERT_MSG(f != NULL, "%s", fn);
        size_t n = fread(hdr, 1, sizeof hdr - 1, f);
        fclose(f);
        hdr[n] = '\0';
        char viewer[MDW_MAX_DID_BYTES + 1], msg[128];
        const char *err = NULL;
        int rc = mdw_auth_check(a, hdr, LXM, viewer, sizeof viewer, &err, msg, sizeof msg);
        if (!want[i]) {
            ASSERT_MSG(rc == 0, "%s: %s %s", files[i], err ? err : "-", msg);
            ASSERT_STREQ(viewer, dids[i]);
        } else {
            ASSERT_EQ(rc, MDW_EDENIED);
            ASSERT_STREQ(err, want[i]);
        }
    }
    mdw_auth_free(a);
    mdw_didres_free(r);
}

/* Several threads verifying, hitting both caches and refusing, at once. */
typedef struct thr {
    fx *f;
    char **toks;
    int ntoks;
    int ok, refused;
} thr;

static void *thr_main(void *p)
{
    thr *t = p;
    for (int i = 0; i < 200; i++) {
        const char *tok = t->toks[i % t->ntoks];
        char hdr[2048], viewer[MDW_MAX_DID_BYTES + 1], msg[128];
        const char *err;
        snprintf(hdr, sizeof hdr, "Bearer %s", tok);
        if (mdw_auth_check(t->f->auth, hdr, LXM, viewer, sizeof viewer, &err, msg, sizeof msg) == 0)
            t->ok++;
        else
            t->refused++;
    }
    return NULL;
}

TEST(concurrent_checks)
{
    fx f;
    ASSERT_OK(fx_init(&f, MDW_AUTH_REQUIRED, 1));
    fx g;
    memset(&g, 0, sizeof g);
    fx_issuer(&g, 0);
    char *toks[8];
    for (int i = 0; i < 6; i++)
        toks[i] = tau_mint(i % 2 ? &g.k : &f.k, i % 2 ? g.did : f.did, SVC, LXM, now_s() + 60);
    toks[6] = tau_mint(&f.k, f.did, "did:web:nope", LXM, now_s() + 60);
    toks[7] = tau_mint(&g.k, f.did, SVC, LXM, now_s() + 60); /* wrong key */
    thr ts[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ts[i] = (thr){.f = &f, .toks = toks, .ntoks = 8};
        pthread_create(&th[i], NULL, thr_main, &ts[i]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += ts[i].ok;
        refused += ts[i].refused;
    }
    ASSERT_EQ(ok, 4 * 200 * 6 / 8);
    ASSERT_EQ(refused, 4 * 200 * 2 / 8);
    for (int i = 0; i < 8; i++)
        free(toks[i]);
    tkey_free(&g.k);
    fx_free(&f);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_WARN);
    mdw_clock_fake_init(&fclock, mdw_clock_now_us(mdw_clock_real()));
    if (tau_srv_start(&srv) != 0) {
        fprintf(stderr, "cannot start the DID document server\n");
        return 2;
    }
    snprintf(plc_url, sizeof plc_url, "http://127.0.0.1:%d", srv.port);
    RUN(es256k_token_accepted);
    RUN(es256_token_accepted_openssl_key);
    RUN(aud_with_bsky_fg_fragment_accepted);
    RUN(high_s_normalized_accepted_and_counted);
    RUN(exp_within_leeway_accepted);
    RUN(did_web_issuer_resolved_over_http);
    RUN(labeler_fragment_uses_atproto_label_key);
    RUN(tampered_payload_refused);
    RUN(tampered_signature_refused);
    RUN(wrong_aud_refused);
    RUN(wrong_or_missing_lxm_refused);
    RUN(expired_refused);
    RUN(alg_none_and_hs256_refused);
    RUN(signed_by_other_key_refused_after_one_refetch);
    RUN(key_rotation_picked_up_by_refetch);
    RUN(unresolvable_did_refused);
    RUN(bad_iss_refused);
    RUN(malformed_tokens_refused);
    RUN(refused_typ_values);
    RUN(modes_off_optional_required);
    RUN(token_cache_hit_until_exp);
    RUN(no_token_cache_verifies_every_time);
    RUN(did_cache_ttl_and_cap);
    RUN(docs_file_answers_offline);
    RUN(doc_parsing_rules);
    RUN(did_tag_hides_the_did);
    RUN(reference_minted_tokens_accepted);
    RUN(concurrent_checks);
    tau_srv_stop(&srv);
    return TEST_REPORT();
}
