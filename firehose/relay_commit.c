/* firehose/relay_commit.c — see relay_commit.h. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "firehose/relay_commit.h"
#include "common/banned.h"

static int cfail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "commit object: %s", msg);
    return MDW_EMALFORMED;
}

int mdw_repo_commit_parse(const uint8_t *block, size_t n, mdw_arena *a, mdw_repo_commit *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char why[160];
    const mdw_cbor *c;
    if (mdw_cbor_decode(block, n, a, &c, NULL, why, sizeof why))
        return cfail(err, errlen, why);
    const mdw_cbor *did = mdw_cbor_get(c, "did"), *ver = mdw_cbor_get(c, "version");
    const mdw_cbor *data = mdw_cbor_get(c, "data"), *rev = mdw_cbor_get(c, "rev");
    const mdw_cbor *prev = mdw_cbor_get(c, "prev"), *sig = mdw_cbor_get(c, "sig");
    if (c->type != MDW_CBOR_MAP)
        return cfail(err, errlen, "not a map");
    if (!did || did->type != MDW_CBOR_TEXT)
        return cfail(err, errlen, "no did");
    if (mdw_cbor_int(ver, &out->version) || (out->version != 2 && out->version != 3))
        return cfail(err, errlen, "version is not 2 or 3");
    if (!data || data->type != MDW_CBOR_LINK ||
        mdw_cid_parse(data->v.p, data->len, &out->data, NULL))
        return cfail(err, errlen, "no data link");
    if (out->version == 3 && (!rev || rev->type != MDW_CBOR_TEXT))
        return cfail(err, errlen, "no rev");
    if (prev && prev->type == MDW_CBOR_LINK) {
        if (mdw_cid_parse(prev->v.p, prev->len, &out->prev, NULL))
            return cfail(err, errlen, "bad prev link");
        out->has_prev = 1;
    } else if (prev && prev->type != MDW_CBOR_NULL) {
        return cfail(err, errlen, "prev is neither a link nor null");
    }
    if (sig && sig->type != MDW_CBOR_BYTES)
        return cfail(err, errlen, "sig is not bytes");
    out->node = c;
    out->did = (const char *)did->v.p;
    out->did_len = did->len;
    if (rev && rev->type == MDW_CBOR_TEXT) {
        out->rev = (const char *)rev->v.p;
        out->rev_len = rev->len;
    }
    if (sig) {
        out->sig = sig->v.p;
        out->sig_len = sig->len;
    }
    return 0;
}

int mdw_repo_commit_verify(const mdw_repo_commit *c, const mdw_pubkey *key, unsigned flags,
                           int *high_s, char *err, size_t errlen)
{
    int hs = 0;
    if (high_s)
        *high_s = 0;
    if (!c->sig || c->sig_len != 64) {
        if (err && errlen)
            snprintf(err, errlen, "commit signature: %s", c->sig ? "not 64 bytes" : "missing");
        return MDW_ECRYPTO;
    }
    mdw_buf unsigned_bytes = MDW_BUF_INIT(4096);
    int rc = mdw_cbor_encode(c->node, "sig", &unsigned_bytes);
    if (rc == 0)
        rc = mdw_ecdsa_verify(key, unsigned_bytes.data, unsigned_bytes.len, c->sig, flags, &hs);
    mdw_buf_release(&unsigned_bytes);
    if (high_s)
        *high_s = hs;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "commit signature: %s",
                     hs ? "high-S signature (atproto requires low-S)"
                        : "does not verify against the DID document's #atproto key");
        return MDW_ECRYPTO;
    }
    return 0;
}
