/*
** firehose/relay_commit.h — a repository commit object and its signature.
**
** A commit (repo format v3) is the DAG-CBOR map {did, version, data (MST
** root link), rev, prev (link or null), sig (64 bytes r||s)}. The signature
** covers the SHA-256 of the canonical DAG-CBOR encoding of the same map
** without `sig`, made with the #atproto key of the DID's document.
**
** Parsed fields point into the block bytes and the arena (no copy). Reentrant.
*/
#ifndef MDW_RELAY_COMMIT_H
#define MDW_RELAY_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "firehose/cbor.h"
#include "firehose/cid.h"

typedef struct mdw_repo_commit {
    const mdw_cbor *node; /* the whole decoded object */
    const char *did;      /* not NUL-terminated: did_len */
    size_t did_len;
    int64_t version;
    mdw_cid data; /* MST root */
    const char *rev;
    size_t rev_len;
    int has_prev;
    mdw_cid prev;
    const uint8_t *sig;
    size_t sig_len;
} mdw_repo_commit;

/* Decodes a commit block (in arena a). MDW_EMALFORMED with err set when it is
 * not a commit object. */
int mdw_repo_commit_parse(const uint8_t *block, size_t n, mdw_arena *a, mdw_repo_commit *out,
                          char *err, size_t errlen);

/*
** Checks c's signature with key: 0, or MDW_ECRYPTO with err saying why (bad
** length, high-S — *high_s set — or no match). flags: MDW_SIG_ALLOW_HIGH_S.
*/
int mdw_repo_commit_verify(const mdw_repo_commit *c, const mdw_pubkey *key, unsigned flags,
                           int *high_s, char *err, size_t errlen);

#endif
