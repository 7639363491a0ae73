/*
** identity/identity.h — who a DID is: DID documents and DID resolution, the
** one module for both, used by firehose/ (relay commit signatures: the
** #atproto key of the repository's DID), feedgen/ (service auth: the key of
** a token's issuer) and pds/ (a DID's PDS endpoint).
**
** DID documents (diddoc.c). mdw_diddoc_parse() reads a document's JSON
** (cJSON). The key is the verification method whose id ends in "#atproto":
** type Multikey with a multicodec publicKeyMultibase (secp256k1 0xe7, P-256
** 0x1200), or the legacy EcdsaSecp256k1VerificationKey2019 /
** EcdsaSecp256r1VerificationKey2019 forms holding a bare SEC1 point. The PDS
** is the service mdw_diddoc_pds_endpoint() picks; the handle is the first
** "at://" entry of alsoKnownAs.
**
** mdw_did_resolver is a small vtable so the relay decoder does not care where
** documents come from: the file-backed one (a JSON object mapping DID to
** document, plain or zstd, as in tests and offline runs; read-only after
** open, so one instance may be shared by threads).
** Ownership: a filled mdw_diddoc owns its strings; release it.
**
** DID resolution over the network with a cache (didres.c): DID -> the public
** keys of its DID document.
** did:plc is fetched from the PLC directory (GET <plc_url>/<did>), did:web
** from https://<host>/.well-known/did.json (host-only did:web, as the
** reference resolver; did:web:localhost… only when allow_localhost is set,
** then over plain http, for tests). An optional docs file (setting
** did_docs_file, read by the file resolver above) answers instead,
** offline. Fetches use libcurl with a total timeout and a bounded body
** (MDW_MAX_DID_DOC_BYTES); documents are parsed by mdw_diddoc_parse and their
** `id` must equal the DID. Keys kept: #atproto, and #atproto_label (the key
** the reference uses for an iss ending in #atproto_labeler; Multikey only,
** and not from the docs file, whose resolver keeps #atproto alone).
**
** Cache: resolved keys are kept cache_ttl_s, at most cache_max DIDs (least
** recently used evicted). A DID that cannot be resolved is remembered for a
** short time (negative entry) so a flood of tokens naming it costs one fetch.
** A forced refresh (after a signature failure) refetches at most once per
** DID per MDW_DIDRES_MIN_REFRESH_US.
**
** Threading: one resolver is shared by all HTTP threads; the cache is guarded
** by a mutex that is never held across a fetch. Two threads missing the same
** DID at once may both fetch it (harmless). Ownership: the resolver owns its
** cache; results are copied out to the caller.
*/
#ifndef MDW_IDENTITY_H
#define MDW_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "common/clock.h"
#include "common/crypto.h"

typedef struct mdw_diddoc {
    char *did;      /* "id" */
    char *handle;   /* from alsoKnownAs "at://<handle>", or NULL */
    char *pds;      /* #atproto_pds serviceEndpoint, or NULL */
    int has_key;    /* 0 when no usable #atproto key */
    mdw_pubkey key; /* the #atproto signing key */
} mdw_diddoc;

/* 0, or MDW_EMALFORMED when json is not a DID document object. A document
 * without a usable #atproto key still parses (has_key = 0). */
int mdw_diddoc_parse(const char *json, size_t len, mdw_diddoc *out);
void mdw_diddoc_release(mdw_diddoc *d);

/*
** The PDS a DID document names (malloc'd), or NULL: the service whose id is
** "#atproto_pds" or "<doc id>#atproto_pds", of type
** AtprotoPersonalDataServer (or untyped), with an http(s) serviceEndpoint.
*/
char *mdw_diddoc_pds_endpoint(const cJSON *doc);

/*
** Where did's document lives (malloc'd), or NULL when it is not a DID this
** resolves: did:plc (24 base32 characters) -> <plc_url>/<did>; host-only
** did:web (an optional %3A-encoded port) -> https://<host>/.well-known/did.json,
** did:web:localhost… only with allow_localhost and then over http.
*/
char *mdw_did_doc_url(const char *did, const char *plc_url, int allow_localhost);

typedef struct mdw_did_resolver mdw_did_resolver;
struct mdw_did_resolver {
    /* Fills *out for did (caller releases it): 0, MDW_ENOTFOUND, or an error. */
    int (*resolve)(mdw_did_resolver *r, const char *did, mdw_diddoc *out);
    void (*close)(mdw_did_resolver *r);
};

static inline int mdw_did_resolve(mdw_did_resolver *r, const char *did, mdw_diddoc *out)
{
    return r->resolve(r, did, out);
}
static inline void mdw_did_resolver_close(mdw_did_resolver *r)
{
    if (r)
        r->close(r);
}

/* Opens a file holding {"did:…": {DID document}, …} (zstd accepted). */
int mdw_did_resolver_file_open(const char *path, mdw_did_resolver **out);

/* ---- network resolution with a cache (didres.c) ---- */

typedef struct mdw_didres mdw_didres;

#define MDW_DIDRES_MIN_REFRESH_US (1000 * 1000)  /* forced refetch at most 1/s per DID */
#define MDW_DIDRES_NEG_TTL_US     (30 * 1000000) /* unresolvable DIDs remembered 30 s */
#define MDW_MAX_DID_DOC_BYTES     (64u * 1024)   /* one fetched DID document */

typedef struct mdw_didres_opts {
    const char *plc_url;   /* e.g. https://plc.directory (no trailing slash needed) */
    int64_t cache_ttl_s;   /* 0: keep nothing (fetch every time) */
    size_t cache_max;      /* most DIDs cached (>= 1) */
    const char *docs_file; /* NULL or "": none */
    int timeout_ms;        /* per fetch, connect included; 0: 3000 as the reference */
    int allow_localhost;   /* did:web:localhost%3Aport -> http://localhost:port (tests) */
} mdw_didres_opts;

int mdw_didres_new(mdw_didres **out, const mdw_didres_opts *opts, mdw_clock *clock);
void mdw_didres_free(mdw_didres *r);

/* The keys service-auth may use from one DID document. */
typedef struct mdw_didres_keys {
    int has_atproto, has_label;
    mdw_pubkey atproto, label; /* #atproto, #atproto_label */
} mdw_didres_keys;

/*
** The key of verification method #key_id ("atproto" or "atproto_label") of
** did's document.
** force_refresh: the caller found the cached key wrong (signature failure):
** refetch unless fetched less than MDW_DIDRES_MIN_REFRESH_US ago; *refreshed
** (may be NULL) says whether a fetch happened.
** Returns 0, MDW_ENOTFOUND (no such DID, or no usable key with that id),
** MDW_EMALFORMED (not a DID it can resolve, or a bad document) or MDW_EHTTP
** (fetch failed: timeout, connection, 5xx).
*/
int mdw_didres_key(mdw_didres *r, const char *did, const char *key_id, int force_refresh,
                   mdw_pubkey *out, int *refreshed);

/*
** Parses a DID document (JSON text) for did into its keys (mdw_diddoc_parse for
** #atproto). Exposed for tests and fuzzing. 0, or MDW_EMALFORMED (not a DID
** document, or its id is not did).
*/
int mdw_didres_parse_doc(const char *did, const char *json, size_t len, mdw_didres_keys *out);

/* Statistics (tests, metrics): fetches made, cache hits. */
uint64_t mdw_didres_fetches(const mdw_didres *r);
uint64_t mdw_didres_hits(const mdw_didres *r);

#endif
