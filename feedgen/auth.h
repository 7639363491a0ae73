/*
** feedgen/auth.h — service-auth JWT verification for feed requests.
**
** The Bluesky AppView forwards each viewer's service-auth token (minted by the
** viewer's PDS with com.atproto.server.getServiceAuth) as
** `Authorization: Bearer <jwt>`. mdw_auth_check() verifies it as the
** reference server does (@atproto/xrpc-server verifyJwt): compact JWS, alg
** ES256K or ES256, typ not at+jwt / refresh+jwt / dpop+jwt, exp in the future
** (plus leeway), aud = this service's DID with or without #bsky_fg, lxm = the
** method called, iss a DID (optionally #fragment), and the signature by the
** `#atproto` key of the issuer's DID document (`#atproto_label` for an iss
** ending in #atproto_labeler, as the reference maps it). High-S signatures are
** normalized before verifying (the reference's allowMalleableSig) and counted.
** docs/auth.md lists where Meadow is stricter and why.
**
** Modes: off (headers ignored, everyone anonymous), optional (a valid token
** names the viewer, no header is anonymous, an invalid token is refused),
** required (no header is refused with AuthMissing).
**
** Caches: DID keys live in the resolver (identity/identity.h); verified tokens
** are kept until their exp (capped by the DID cache TTL) keyed by SHA-256 of
** (method, token), so a repeated token costs one hash and one lookup.
**
** Threading: one mdw_auth is shared by every HTTP thread; mdw_auth_check is
** thread-safe. Ownership: the resolver is borrowed (it must outlive the
** mdw_auth); the viewer DID is copied to the caller's buffer. Logs carry the
** viewer DID only as a hash (mdw_auth_did_tag).
*/
#ifndef MDW_AUTH_H
#define MDW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "identity/identity.h"

typedef struct mdw_auth mdw_auth;

typedef enum { MDW_AUTH_OFF = 0, MDW_AUTH_OPTIONAL = 1, MDW_AUTH_REQUIRED = 2 } mdw_auth_mode;

#define MDW_AUTH_TOKEN_CACHE_DEFAULT 65536 /* verified tokens kept */

typedef struct mdw_auth_opts {
    mdw_auth_mode mode;        /* setting `auth` */
    const char *service_did;   /* the feed record's `did` (mdw_config_service_did) */
    int64_t leeway_s;          /* setting jwt_leeway_s: accepted clock skew on exp */
    mdw_didres *resolver;      /* borrowed; may be NULL only when mode is off */
    size_t token_cache_max;    /* 0: MDW_AUTH_TOKEN_CACHE_DEFAULT */
    int64_t token_cache_ttl_s; /* cap on how long a verified token is reused; 0: exp only */
    int no_token_cache;        /* verify every request in full (benchmarks, tests) */
} mdw_auth_opts;

struct mdw_config;

/*
** The way the server builds it: from the settings auth, service_did (empty:
** did:web:<hostname>), jwt_leeway_s, plc_url, did_cache_ttl_s, did_cache_max
** and did_docs_file. The resolver is created too and owned by the mdw_auth
** (freed by mdw_auth_free). 0 or MDW_ECONFIG.
*/
int mdw_auth_new_from_config(mdw_auth **out, const struct mdw_config *cfg, mdw_clock *clock);

/* "off|optional|required" -> mode; MDW_ECONFIG when unknown. */
int mdw_auth_mode_parse(const char *s, mdw_auth_mode *out);

/* 0 or MDW_ECONFIG (no service DID, or no resolver while mode is not off). */
int mdw_auth_new(mdw_auth **out, const mdw_auth_opts *opts, mdw_clock *clock);
void mdw_auth_free(mdw_auth *a);

/*
** Checks a request. authorization: the Authorization header's value or NULL.
** lxm: the XRPC method called (e.g. "app.bsky.feed.getFeedSkeleton").
** Returns 0 when the request may proceed: viewer (viewer_max >= 1) holds the
** verified issuer DID (without #fragment), or "" for an anonymous request.
** Returns MDW_EDENIED when refused: answer 401 with *xrpc_error (a static
** string: AuthMissing, BadJwt, BadJwtType, JwtExpired, BadJwtAudience,
** BadJwtLexiconMethod, BadJwtIss, BadJwtSignature) and message (never holds
** the token). viewer is "" then.
*/
int mdw_auth_check(mdw_auth *a, const char *authorization, const char *lxm, char *viewer,
                   size_t viewer_max, const char **xrpc_error, char *message, size_t message_max);

/*
** A token's decoded, type-checked parts (no signature or claim check). Used by
** mdw_auth_check and by the fuzz target. The struct owns its strings
** (mdw_jwt_release).
*/
typedef struct mdw_jwt {
    char *alg, *typ;         /* header; typ may be NULL */
    char *iss, *aud, *lxm;   /* claims; lxm may be NULL */
    double exp;              /* unix seconds */
    const char *signed_part; /* "header.payload" inside the token (not owned) */
    size_t signed_len;
    uint8_t sig[64];
    size_t sig_len; /* decoded signature length (64 when well-formed) */
} mdw_jwt;

/*
** Parses a compact JWS of n bytes (n <= MDW_MAX_JWT_BYTES). Returns 0, or
** MDW_EMALFORMED / MDW_ETOOBIG and *xrpc_error BadJwt. A header typ the
** reference refuses gives MDW_EDENIED and BadJwtType.
*/
int mdw_jwt_parse(const char *token, size_t n, mdw_jwt *out, const char **xrpc_error);
void mdw_jwt_release(mdw_jwt *j);

/*
** feedgen's service-auth hook (mdw_feedgen_auth_fn in feedgen/feedgen.h), ctx
** an mdw_auth: fills res->viewer_did, or res->error and res->message and
** returns non-zero (the server answers 401).
*/
struct mdw_feedgen_auth_result;
int mdw_auth_feedgen_hook(void *ctx, const char *authorization, const char *lxm,
                          struct mdw_feedgen_auth_result *res);

/* A short, stable tag of a DID for logs: the first 12 hex digits of SHA-256. */
void mdw_auth_did_tag(const char *did, char out[13]);

/* Counters for tests and /metrics: tokens verified with high-S, token cache hits. */
uint64_t mdw_auth_high_s_count(void);
uint64_t mdw_auth_token_cache_hits(const mdw_auth *a);

#endif
