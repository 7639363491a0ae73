/* firehose/cid.c — see cid.h. */
#include <string.h>

#include "common/crypto.h"
#include "common/err.h"
#include "firehose/cid.h"
#include "common/banned.h"

int mdw_cid_parse(const uint8_t *p, size_t n, mdw_cid *out, size_t *used)
{
    memset(out, 0, sizeof *out);
    size_t o = 0;
    int k;
    if (n >= 2 && p[0] == 0x12 && p[1] == 0x20) { /* CIDv0: bare sha2-256 multihash */
        if (n < 34)
            return MDW_EMALFORMED;
        out->version = 0;
        out->codec = MDW_CODEC_DAGCBOR; /* v0 implies dag-pb, but only the hash matters here */
        out->hash = MDW_MH_SHA256;
        out->digest = p + 2;
        out->digest_len = 32;
        o = 34;
    } else {
        uint64_t ver, codec, hash, dlen;
        if ((k = mdw_uvarint_decode(p, n, &ver)) < 0)
            return MDW_EMALFORMED;
        o += (size_t)k;
        if (ver != 1)
            return MDW_EMALFORMED;
        if ((k = mdw_uvarint_decode(p + o, n - o, &codec)) < 0)
            return MDW_EMALFORMED;
        o += (size_t)k;
        if ((k = mdw_uvarint_decode(p + o, n - o, &hash)) < 0)
            return MDW_EMALFORMED;
        o += (size_t)k;
        if ((k = mdw_uvarint_decode(p + o, n - o, &dlen)) < 0)
            return MDW_EMALFORMED;
        o += (size_t)k;
        if (dlen > n - o || dlen > 64)
            return MDW_EMALFORMED;
        out->version = 1;
        out->codec = codec;
        out->hash = hash;
        out->digest = p + o;
        out->digest_len = (size_t)dlen;
        o += (size_t)dlen;
    }
    if (o > MDW_CID_MAX_BYTES)
        return MDW_EMALFORMED;
    if (!used && o != n)
        return MDW_EMALFORMED;
    out->bytes = p;
    out->len = o;
    if (used)
        *used = o;
    return 0;
}

int mdw_cid_to_text(const mdw_cid *c, mdw_buf *out)
{
    if (c->version == 0)
        return mdw_base58btc_encode(out, c->bytes, c->len);
    int rc = mdw_buf_putc(out, 'b');
    return rc ? rc : mdw_base32_encode(out, c->bytes, c->len);
}

int mdw_cid_bytes_to_text(const uint8_t *p, size_t n, mdw_buf *out)
{
    mdw_cid c;
    int rc = mdw_cid_parse(p, n, &c, NULL);
    return rc ? rc : mdw_cid_to_text(&c, out);
}

int mdw_cid_from_text(const char *s, uint8_t *out, size_t outmax, size_t *outlen)
{
    int rc;
    if (s[0] == 'Q' && s[1] == 'm')
        rc = mdw_base58btc_decode(s, strlen(s), out, outmax, outlen);
    else
        rc = mdw_multibase_decode(s, out, outmax, outlen);
    if (rc)
        return rc == MDW_ETOOBIG ? rc : MDW_EMALFORMED;
    mdw_cid c;
    return mdw_cid_parse(out, *outlen, &c, NULL);
}

int mdw_cid_check(const mdw_cid *c, const uint8_t *data, size_t n)
{
    if (c->hash != MDW_MH_SHA256 || c->digest_len != MDW_SHA256_LEN)
        return MDW_EUNIMPL;
    uint8_t d[MDW_SHA256_LEN];
    mdw_sha256(data, n, d);
    return memcmp(d, c->digest, MDW_SHA256_LEN) == 0 ? 0 : MDW_ECORRUPT;
}
