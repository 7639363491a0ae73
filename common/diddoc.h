/*
** common/diddoc.h — DID documents: what atproto needs from one (the #atproto
** signing key, the PDS endpoint, the handle claimed) and a resolver
** interface that finds a document for a DID.
**
** mdw_diddoc_parse() reads a document's JSON (cJSON). The key is the
** verification method whose id ends in "#atproto": type Multikey with a
** multicodec publicKeyMultibase (secp256k1 0xe7, P-256 0x1200), or the
** legacy EcdsaSecp256k1VerificationKey2019 / EcdsaSecp256r1VerificationKey2019
** forms holding a bare SEC1 point. The PDS is the service whose id ends in
** "#atproto_pds"; the handle is the first "at://" entry of alsoKnownAs.
**
** mdw_did_resolver is a small vtable so the relay decoder does not care where
** documents come from: the file-backed one here (a JSON object mapping DID to
** document, plain or zstd, as in tests and offline runs; read-only after
** open, so one instance may be shared by threads) and, later, an HTTP one
** (PLC directory, did:web) with a cache behind the same two calls.
** Ownership: a filled mdw_diddoc owns its strings; release it.
*/
#ifndef MDW_DIDDOC_H
#define MDW_DIDDOC_H

#include <stddef.h>

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
** DID syntax as @atproto/syntax checks it: did:<method [a-z]+>:<id of
** [A-Za-z0-9._:%-], not ending in ':' or '%'>, at most MDW_MAX_DID_BYTES.
** 1 = valid. Shared by the lexicon "did" format and the XRPC parameters.
*/
int mdw_did_syntax_valid(const char *s, size_t n);

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

#endif
