/*
** feedgen/auth.c — see auth.h. The order of the checks follows the
** reference's verifyJwt so that a token failing several checks gets the same
** error name: shape (BadJwt), typ (BadJwtType), exp (JwtExpired), aud
** (BadJwtAudience), lxm (BadJwtLexiconMethod), iss (BadJwtIss), then the
** signature (BadJwtSignature). Everything that costs a network fetch or an
** ECDSA verification comes after the cheap checks.
*/
#include "feedgen/auth.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/atname.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/lru.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/banned.h"

#define COUNTER(var, labels)                                                                       \
    static mdw_counter var =                                                                       \
        MDW_COUNTER_INIT("meadow_auth_requests_total", labels, "feed requests by auth outcome")
COUNTER(m_verified, "result=\"verified\"");
COUNTER(m_cached, "result=\"cached\"");
COUNTER(m_anonymous, "result=\"anonymous\"");
COUNTER(m_refused, "result=\"refused\"");
#undef COUNTER
#define REFUSED(var, name)                                                                         \
    static mdw_counter var = MDW_COUNTER_INIT("meadow_auth_refused_total", "error=\"" name "\"",   \
                                              "refused tokens by XRPC error")
REFUSED(r_missing, "AuthMissing");
REFUSED(r_badjwt, "BadJwt");
REFUSED(r_type, "BadJwtType");
REFUSED(r_expired, "JwtExpired");
REFUSED(r_aud, "BadJwtAudience");
REFUSED(r_lxm, "BadJwtLexiconMethod");
REFUSED(r_iss, "BadJwtIss");
REFUSED(r_sig, "BadJwtSignature");
#undef REFUSED
static mdw_counter m_high_s = MDW_COUNTER_INIT(
    "meadow_auth_high_s_total", NULL, "tokens accepted whose signature had a high S (normalized)");
static mdw_counter m_refetch = MDW_COUNTER_INIT(
    "meadow_auth_key_refetch_total", NULL, "DID documents refetched after a signature failure");
static mdw_hist m_verify_time =
    MDW_HIST_INIT("meadow_auth_verify_seconds", NULL, "full token verification (not cache hits)");

static mdw_ratelimit refuse_rl = MDW_RATELIMIT_INIT(1000000);

typedef struct tok {
    mdw_lru_node node; /* first: the cache's links; hash = the key's first 8 bytes */
    uint8_t key[32];
    char *viewer;
    int64_t expires_us; /* wall clock */
} tok;

struct mdw_auth {
    mdw_auth_mode mode;
    char *service_did;
    char *service_did_fg; /* service_did + "#bsky_fg" */
    int64_t leeway_s;
    int64_t token_ttl_us;
    mdw_didres *res;
    int owns_res; /* built by mdw_auth_new_from_config */
    int no_token_cache;
    mdw_clock *clock;

    pthread_mutex_t mu; /* token cache */
    mdw_lru toks;
    _Atomic uint64_t hits;
};

/* --- verified-token cache (common/lru) ---------------------------------- */

static int tok_eq(const mdw_lru_node *n, const void *key)
{
    return memcmp(((const tok *)n)->key, key, 32) == 0;
}

static void tok_drop(mdw_lru_node *n)
{
    tok *t = (tok *)n;
    free(t->viewer);
    free(t);
}

int mdw_auth_mode_parse(const char *s, mdw_auth_mode *out)
{
    if (s && strcmp(s, "off") == 0)
        *out = MDW_AUTH_OFF;
    else if (s && strcmp(s, "optional") == 0)
        *out = MDW_AUTH_OPTIONAL;
    else if (s && strcmp(s, "required") == 0)
        *out = MDW_AUTH_REQUIRED;
    else
        return MDW_ECONFIG;
    return 0;
}

int mdw_auth_new(mdw_auth **out, const mdw_auth_opts *o, mdw_clock *clock)
{
    static int metrics_done;
    *out = NULL;
    if (o->mode != MDW_AUTH_OFF && (!o->resolver || !o->service_did || !o->service_did[0])) {
        mdw_error("auth", "auth needs a service DID and a DID resolver", "mode=%d", (int)o->mode);
        return MDW_ECONFIG;
    }
    mdw_auth *a = xcalloc(1, sizeof *a);
    a->mode = o->mode;
    a->service_did = xstrdup(o->service_did ? o->service_did : "");
    a->service_did_fg = xasprintf("%s#bsky_fg", a->service_did);
    a->leeway_s = o->leeway_s;
    a->token_ttl_us = o->token_cache_ttl_s * 1000000;
    a->no_token_cache = o->no_token_cache;
    a->res = o->resolver;
    a->clock = clock;
    mdw_lru_init(&a->toks, o->token_cache_max ? o->token_cache_max : MDW_AUTH_TOKEN_CACHE_DEFAULT,
                 tok_eq, tok_drop);
    pthread_mutex_init(&a->mu, NULL);
    if (!metrics_done) {
        mdw_counter *cs[] = {&m_verified, &m_cached, &m_anonymous, &m_refused, &r_missing,
                             &r_badjwt,   &r_type,   &r_expired,   &r_aud,     &r_lxm,
                             &r_iss,      &r_sig,    &m_high_s,    &m_refetch};
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            mdw_counter_register(cs[i]);
        mdw_hist_register(&m_verify_time);
        metrics_done = 1;
    }
    *out = a;
    return 0;
}

void mdw_auth_free(mdw_auth *a)
{
    if (!a)
        return;
    mdw_lru_release(&a->toks);
    if (a->owns_res)
        mdw_didres_free(a->res);
    pthread_mutex_destroy(&a->mu);
    free(a->service_did);
    free(a->service_did_fg);
    free(a);
}

int mdw_auth_new_from_config(mdw_auth **out, const mdw_config *cfg, mdw_clock *clock)
{
    mdw_auth_opts o = {0};
    *out = NULL;
    if (mdw_auth_mode_parse(cfg->auth, &o.mode) != 0)
        return MDW_ECONFIG;
    mdw_didres *res = NULL;
    if (o.mode != MDW_AUTH_OFF) {
        mdw_didres_opts ro = {.plc_url = cfg->plc_url,
                              .cache_ttl_s = cfg->did_cache_ttl_s,
                              .cache_max = (size_t)cfg->did_cache_max,
                              .docs_file = cfg->did_docs_file};
        int rc = mdw_didres_new(&res, &ro, clock);
        if (rc)
            return rc;
    }
    char *did = mdw_config_service_did(cfg);
    o.service_did = did;
    o.leeway_s = cfg->jwt_leeway_s;
    o.resolver = res;
    /* A verified token is not trusted longer than the key that verified it. */
    o.token_cache_ttl_s = cfg->did_cache_ttl_s;
    int rc = mdw_auth_new(out, &o, clock);
    free(did);
    if (rc) {
        mdw_didres_free(res);
        return rc;
    }
    (*out)->owns_res = 1;
    return 0;
}

uint64_t mdw_auth_high_s_count(void)
{
    return m_high_s.value;
}

uint64_t mdw_auth_token_cache_hits(const mdw_auth *a)
{
    return a->hits;
}

void mdw_auth_did_tag(const char *did, char out[13])
{
    uint8_t h[32];
    mdw_sha256(did, strlen(did), h);
    for (int i = 0; i < 6; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* --- token parsing ------------------------------------------------------ */

void mdw_jwt_release(mdw_jwt *j)
{
    if (!j)
        return;
    free(j->alg);
    free(j->typ);
    free(j->iss);
    free(j->aud);
    free(j->lxm);
    memset(j, 0, sizeof *j);
}

/* Decodes one base64url part and parses it as a JSON object. */
static cJSON *part_json(const char *p, size_t n)
{
    uint8_t buf[MDW_MAX_JWT_BYTES];
    size_t len = 0;
    /* base64url without padding (RFC 7515 §2): '=' is refused, not skipped. */
    if (memchr(p, '=', n) || mdw_base64_decode(p, n, MDW_B64_URL, buf, sizeof buf, &len) != 0)
        return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/*
** JSON.parse keeps the last of duplicate keys, cJSON finds the first: refuse
** duplicates of the members we read so no two parsers can disagree on them.
*/
static int has_dup(const cJSON *obj, const char *const *names)
{
    for (; *names; names++) {
        int seen = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, obj) seen += it->string && strcmp(it->string, *names) == 0;
        if (seen > 1)
            return 1;
    }
    return 0;
}

/* JS truthiness of a JSON value (for the reference's `x && typeof x !== …`). */
static int truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    return 1;
}

int mdw_jwt_parse(const char *token, size_t n, mdw_jwt *out, const char **xrpc_error)
{
    static const char *const hdr_names[] = {"alg", "typ", NULL};
    static const char *const pl_names[] = {"iss", "aud", "exp", "lxm", "nonce", NULL};
    cJSON *h = NULL, *p = NULL;
    int rc = MDW_EMALFORMED;
    memset(out, 0, sizeof *out);
    *xrpc_error = "BadJwt";
    if (n > MDW_MAX_JWT_BYTES)
        return MDW_ETOOBIG;
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
        return MDW_EMALFORMED; /* exactly three parts */
    if (memchr(token, '\0', n))
        return MDW_EMALFORMED;

    h = part_json(token, (size_t)(d1 - token));
    if (!h || has_dup(h, hdr_names))
        goto done;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(h, "typ");
    if (!cJSON_IsString(alg))
        goto done;
    if (cJSON_IsString(typ) &&
        (strcmp(typ->valuestring, "at+jwt") == 0 || strcmp(typ->valuestring, "refresh+jwt") == 0 ||
         strcmp(typ->valuestring, "dpop+jwt") == 0)) {
        *xrpc_error = "BadJwtType";
        rc = MDW_EDENIED;
        goto done;
    }

    p = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!p || has_dup(p, pl_names))
        goto done;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(p, "iss");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(p, "aud");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(p, "exp");
    const cJSON *lxm = cJSON_GetObjectItemCaseSensitive(p, "lxm");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(p, "nonce");
    if (!cJSON_IsString(iss) || !cJSON_IsString(aud) || !cJSON_IsNumber(exp) ||
        (truthy(lxm) && !cJSON_IsString(lxm)) || (truthy(nonce) && !cJSON_IsString(nonce)))
        goto done;
    if (!isfinite(exp->valuedouble))
        goto done;

    /*
    ** The signature part never makes a token BadJwt: the reference decodes it
    ** leniently and fails at verification, so anything but 64 strict bytes is
    ** a signature failure (sig_len != 64), reported after the claim checks.
    */
    size_t siglen = 0;
    const char *s = d2 + 1;
    size_t sn = n - (size_t)(s - token);
    if (sn > 86 || memchr(s, '=', sn) ||
        mdw_base64_decode(s, sn, MDW_B64_URL, out->sig, sizeof out->sig, &siglen) != 0)
        siglen = 0;
    out->sig_len = siglen;
    out->alg = xstrdup(alg->valuestring);
    out->typ = cJSON_IsString(typ) ? xstrdup(typ->valuestring) : NULL;
    out->iss = xstrdup(iss->valuestring);
    out->aud = xstrdup(aud->valuestring);
    out->lxm = cJSON_IsString(lxm) ? xstrdup(lxm->valuestring) : NULL;
    out->exp = exp->valuedouble;
    out->signed_part = token;
    out->signed_len = (size_t)(d2 - token);
    *xrpc_error = NULL;
    rc = 0;
done:
    cJSON_Delete(h);
    cJSON_Delete(p);
    return rc;
}

/* iss: a DID, or a DID with a non-empty #fragment (the reference's isDidStringOrService). */
static int iss_split(const char *iss, char *did, size_t didmax, const char **frag)
{
    const char *hash = strchr(iss, '#');
    size_t dl = hash ? (size_t)(hash - iss) : strlen(iss);
    if (hash && (!hash[1] || strchr(hash + 1, '#')))
        return -1;
    if (dl == 0 || dl >= didmax || dl > MDW_MAX_DID_BYTES)
        return -1;
    if (!mdw_did_valid(iss, dl))
        return -1;
    memcpy(did, iss, dl);
    did[dl] = '\0';
    *frag = hash ? hash + 1 : NULL;
    return 0;
}

/* --- verified-token cache ----------------------------------------------- */

static uint64_t tok_hash(const uint8_t key[32])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return h;
}

/* Copies the cached viewer for key into viewer; 1 on a live hit. */
static int tok_get(mdw_auth *a, const uint8_t key[32], int64_t now_us, char *viewer, size_t max)
{
    int hit = 0;
    pthread_mutex_lock(&a->mu);
    tok *t = (tok *)mdw_lru_find(&a->toks, tok_hash(key), key);
    if (t && now_us <= t->expires_us) {
        snprintf(viewer, max, "%s", t->viewer);
        mdw_lru_touch(&a->toks, &t->node);
        hit = 1;
    } else if (t) {
        mdw_lru_remove(&a->toks, &t->node);
    }
    pthread_mutex_unlock(&a->mu);
    return hit;
}

static void tok_put(mdw_auth *a, const uint8_t key[32], const char *viewer, int64_t expires_us)
{
    pthread_mutex_lock(&a->mu);
    tok *t = (tok *)mdw_lru_find(&a->toks, tok_hash(key), key);
    if (t) {
        t->expires_us = expires_us;
        pthread_mutex_unlock(&a->mu);
        return;
    }
    t = xcalloc(1, sizeof *t);
    memcpy(t->key, key, 32);
    t->viewer = xstrdup(viewer);
    t->expires_us = expires_us;
    mdw_lru_insert(&a->toks, &t->node, tok_hash(key));
    pthread_mutex_unlock(&a->mu);
}

/* --- the check ---------------------------------------------------------- */

static int refuse(mdw_counter *c, const char *name, const char *msg, const char **xrpc_error,
                  char *message, size_t message_max, const char *did)
{
    mdw_counter_inc(c);
    mdw_counter_inc(&m_refused);
    *xrpc_error = name;
    snprintf(message, message_max, "%s", msg);
    uint64_t suppressed = 0;
    if (mdw_log_enabled(MDW_LOG_INFO) &&
        mdw_ratelimit_ok(&refuse_rl, mdw_clock_mono_us(mdw_clock_real()), &suppressed)) {
        char tag[13] = "-";
        if (did && did[0])
            mdw_auth_did_tag(did, tag);
        mdw_info("auth", "token refused", "error=%s reason=\"%s\" viewer=%s suppressed=%llu", name,
                 msg, tag, (unsigned long long)suppressed);
    }
    return MDW_EDENIED;
}

/*
** The key must be of the curve the header names (the reference throws on a
** mismatch); the signature is checked high-S allowed, as allowMalleableSig.
*/
static int verify(const mdw_pubkey *k, mdw_key_type want, const mdw_jwt *j, int *high_s)
{
    int hs = 0;
    if (k->type != want)
        return 0;
    if (mdw_ecdsa_verify(k, j->signed_part, j->signed_len, j->sig, MDW_SIG_ALLOW_HIGH_S, &hs) != 0)
        return 0;
    *high_s = hs;
    return 1;
}

#define REFUSE(c, name, msg) refuse(c, name, msg, xrpc_error, message, message_max, did)

int mdw_auth_check(mdw_auth *a, const char *authorization, const char *lxm, char *viewer,
                   size_t viewer_max, const char **xrpc_error, char *message, size_t message_max)
{
    const char *did = NULL;
    viewer[0] = '\0';
    *xrpc_error = NULL;
    if (message_max)
        message[0] = '\0';
    if (a->mode == MDW_AUTH_OFF) {
        mdw_counter_inc(&m_anonymous);
        return 0;
    }
    const char *h = authorization ? authorization : "";
    while (*h == ' ' || *h == '\t')
        h++;
    if (!*h) {
        if (a->mode == MDW_AUTH_OPTIONAL) {
            mdw_counter_inc(&m_anonymous);
            return 0;
        }
        return REFUSE(&r_missing, "AuthMissing", "authentication required");
    }
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return REFUSE(&r_badjwt, "BadJwt", "authorization is not a Bearer token");
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return REFUSE(&r_badjwt, "BadJwt", "poorly formatted jwt");
    if (n > MDW_MAX_JWT_BYTES)
        return REFUSE(&r_badjwt, "BadJwt", "jwt too large");

    /* Verified before? The key covers the method, so a token is reused only for its lxm. */
    int64_t now_us = mdw_clock_now_us(a->clock);
    uint8_t key[32];
    {
        size_t ln = strlen(lxm);
        uint8_t buf[MDW_MAX_JWT_BYTES + 512];
        if (ln + 1 + n <= sizeof buf) {
            memcpy(buf, lxm, ln);
            buf[ln] = '\0';
            memcpy(buf + ln + 1, t, n);
            mdw_sha256(buf, ln + 1 + n, key);
        } else {
            memset(key, 0, sizeof key); /* never stored: see below */
        }
    }
    if (!a->no_token_cache && tok_get(a, key, now_us, viewer, viewer_max)) {
        a->hits++;
        mdw_counter_inc(&m_cached);
        return 0;
    }

    int64_t t0 = mdw_clock_mono_us(mdw_clock_real());
    mdw_jwt j;
    const char *perr = NULL;
    int rc = mdw_jwt_parse(t, n, &j, &perr);
    if (rc != 0) {
        if (perr && strcmp(perr, "BadJwtType") == 0)
            return REFUSE(&r_type, "BadJwtType", "invalid jwt type");
        return REFUSE(&r_badjwt, "BadJwt", "poorly formatted jwt");
    }
    char issdid[MDW_MAX_DID_BYTES + 1];
    const char *frag = NULL;
    int iss_ok = iss_split(j.iss, issdid, sizeof issdid, &frag) == 0;
    if (iss_ok)
        did = issdid;

    double now_s = (double)now_us / 1e6;
    if (now_s > j.exp + (double)a->leeway_s) {
        rc = REFUSE(&r_expired, "JwtExpired", "jwt expired");
        goto out;
    }
    if (strcmp(j.aud, a->service_did) != 0 && strcmp(j.aud, a->service_did_fg) != 0) {
        rc = REFUSE(&r_aud, "BadJwtAudience", "jwt audience does not match service did");
        goto out;
    }
    if (!j.lxm || strcmp(j.lxm, lxm) != 0) {
        rc = REFUSE(&r_lxm, "BadJwtLexiconMethod",
                    j.lxm ? "bad jwt lexicon method (\"lxm\")"
                          : "missing jwt lexicon method (\"lxm\")");
        goto out;
    }
    if (!iss_ok) {
        rc = REFUSE(&r_iss, "BadJwtIss", "jwt iss is not a valid did");
        goto out;
    }
    mdw_key_type want_alg = strcmp(j.alg, "ES256K") == 0  ? MDW_KEY_SECP256K1
                            : strcmp(j.alg, "ES256") == 0 ? MDW_KEY_P256
                                                          : MDW_KEY_NONE;
    if (want_alg == MDW_KEY_NONE) {
        /* none, HS256, RS256…: the reference fails these at verification, same name. */
        rc = REFUSE(&r_sig, "BadJwtSignature", "unsupported jwt alg");
        goto out;
    }
    if (j.sig_len != 64) {
        rc = REFUSE(&r_sig, "BadJwtSignature", "jwt signature is not 64 bytes (r||s)");
        goto out;
    }

    /* The reference maps iss#atproto_labeler to the #atproto_label key, all else #atproto. */
    const char *key_id = frag && strcmp(frag, "atproto_labeler") == 0 ? "atproto_label" : "atproto";
    mdw_pubkey pk;
    int refreshed = 0, valid = 0, high_s = 0;
    rc = mdw_didres_key(a->res, issdid, key_id, 0, &pk, NULL);
    if (rc == 0)
        valid = verify(&pk, want_alg, &j, &high_s);
    if (rc == 0 && !valid) {
        /* The key may have rotated since we cached it: fetch the document again, once. */
        mdw_pubkey fresh;
        int rc2 = mdw_didres_key(a->res, issdid, key_id, 1, &fresh, &refreshed);
        if (refreshed)
            mdw_counter_inc(&m_refetch);
        if (rc2 == 0 && refreshed && memcmp(&fresh, &pk, sizeof pk) != 0)
            valid = verify(&fresh, want_alg, &j, &high_s);
    }
    if (rc == MDW_EHTTP) {
        rc = REFUSE(&r_iss, "BadJwtIss", "could not resolve iss did (directory unreachable)");
        goto out;
    }
    if (rc == MDW_ENOTFOUND || rc == MDW_EMALFORMED) {
        rc = REFUSE(&r_iss, "BadJwtIss", "could not resolve iss did or its key");
        goto out;
    }
    if (rc != 0 || !valid) {
        rc = REFUSE(&r_sig, "BadJwtSignature", "jwt signature does not match jwt issuer");
        goto out;
    }

    if (high_s)
        mdw_counter_inc(&m_high_s);
    int64_t exp_us = (int64_t)fmin(j.exp + (double)a->leeway_s, 9.0e12) * 1000000;
    if (a->token_ttl_us > 0 && exp_us > now_us + a->token_ttl_us)
        exp_us = now_us + a->token_ttl_us;
    if (!a->no_token_cache && strlen(lxm) + 1 + n <= MDW_MAX_JWT_BYTES + 512)
        tok_put(a, key, issdid, exp_us);
    snprintf(viewer, viewer_max, "%s", issdid);
    mdw_counter_inc(&m_verified);
    mdw_hist_observe_us(&m_verify_time, mdw_clock_mono_us(mdw_clock_real()) - t0);
    if (mdw_log_enabled(MDW_LOG_DEBUG)) {
        char tag[13];
        mdw_auth_did_tag(issdid, tag);
        mdw_debug("auth", "token verified", "viewer=%s alg=%s high_s=%d", tag, j.alg, high_s);
    }
    rc = 0;
out:
    mdw_jwt_release(&j);
    return rc;
}
