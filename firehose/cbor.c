/*
** firehose/cbor.c — see cbor.h. libcbor's streaming decoder reads one item
** head at a time (cbor_stream_decode); the recursion, the DAG-CBOR rules
** libcbor does not know (minimal heads, tag 42 only, text keys) and the depth
** and item caps are ours. Heads are re-encoded with libcbor's cbor_encode_*,
** which always choose the shortest form, as canonical DAG-CBOR requires.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/mem.h"
#include "firehose/cbor.h"
#include "firehose/cid.h"
#include "common/banned.h"

/* ---- arena ---- */

struct mdw_arena_chunk {
    struct mdw_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK 16384

void mdw_arena_init(mdw_arena *a)
{
    a->head = NULL;
    a->items = 0;
}

void mdw_arena_release(mdw_arena *a)
{
    if (!a)
        return;
    struct mdw_arena_chunk *c = a->head;
    while (c) {
        struct mdw_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->items = 0;
}

static void *arena_alloc(mdw_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct mdw_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = xmalloc(sizeof *c + size);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* ---- decoding ---- */

enum { H_NONE, H_UINT, H_NEGINT, H_BYTES, H_TEXT, H_ARRAY, H_MAP, H_TAG, H_FLOAT, H_BOOL, H_NULL };

struct head {
    int kind;
    const char *bad; /* a construct DAG-CBOR forbids */
    uint64_t u;      /* integer, tag, length or count */
    const uint8_t *p;
    double f;
};

#define H(ctx) ((struct head *)(ctx))
static void cb_u8(void *c, uint8_t v)
{
    H(c)->kind = H_UINT, H(c)->u = v;
}
static void cb_u16(void *c, uint16_t v)
{
    H(c)->kind = H_UINT, H(c)->u = v;
}
static void cb_u32(void *c, uint32_t v)
{
    H(c)->kind = H_UINT, H(c)->u = v;
}
static void cb_u64(void *c, uint64_t v)
{
    H(c)->kind = H_UINT, H(c)->u = v;
}
static void cb_n8(void *c, uint8_t v)
{
    H(c)->kind = H_NEGINT, H(c)->u = v;
}
static void cb_n16(void *c, uint16_t v)
{
    H(c)->kind = H_NEGINT, H(c)->u = v;
}
static void cb_n32(void *c, uint32_t v)
{
    H(c)->kind = H_NEGINT, H(c)->u = v;
}
static void cb_n64(void *c, uint64_t v)
{
    H(c)->kind = H_NEGINT, H(c)->u = v;
}
static void cb_bytes(void *c, cbor_data p, size_t n)
{
    H(c)->kind = H_BYTES, H(c)->p = p, H(c)->u = n;
}
static void cb_text(void *c, cbor_data p, size_t n)
{
    H(c)->kind = H_TEXT, H(c)->p = p, H(c)->u = n;
}
static void cb_array(void *c, size_t n)
{
    H(c)->kind = H_ARRAY, H(c)->u = n;
}
static void cb_map(void *c, size_t n)
{
    H(c)->kind = H_MAP, H(c)->u = n;
}
static void cb_tag(void *c, uint64_t v)
{
    H(c)->kind = H_TAG, H(c)->u = v;
}
static void cb_f8(void *c, double v)
{
    H(c)->kind = H_FLOAT, H(c)->f = v;
}
static void cb_half_single(void *c, float v)
{
    H(c)->bad = "float shorter than 64 bits";
}
static void cb_bool(void *c, bool v)
{
    H(c)->kind = H_BOOL, H(c)->u = v;
}
static void cb_null(void *c)
{
    H(c)->kind = H_NULL;
}
static void cb_undef(void *c)
{
    H(c)->bad = "undefined";
}
static void cb_indef_bytes(void *c)
{
    H(c)->bad = "indefinite-length byte string";
}
static void cb_indef_text(void *c)
{
    H(c)->bad = "indefinite-length text string";
}
static void cb_indef_array(void *c)
{
    H(c)->bad = "indefinite-length array";
}
static void cb_indef_map(void *c)
{
    H(c)->bad = "indefinite-length map";
}
static void cb_break(void *c)
{
    H(c)->bad = "unexpected break";
}
#undef H

static const struct cbor_callbacks dag_callbacks = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_u64,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_n64,
    .byte_string_start = cb_indef_bytes,
    .byte_string = cb_bytes,
    .string = cb_text,
    .string_start = cb_indef_text,
    .indef_array_start = cb_indef_array,
    .array_start = cb_array,
    .indef_map_start = cb_indef_map,
    .map_start = cb_map,
    .tag = cb_tag,
    .float2 = cb_half_single,
    .float4 = cb_half_single,
    .float8 = cb_f8,
    .undefined = cb_undef,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

typedef struct dec {
    const uint8_t *base;
    size_t n;
    mdw_arena *a;
    char *err;
    size_t errlen;
} dec;

static int fail(dec *d, int rc, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(dec *d, int rc, size_t off, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < d->errlen)
            snprintf(d->err + k, d->errlen - (size_t)k, " at byte %zu", off);
    }
    return rc;
}

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* DAG-CBOR ordering of map keys: shorter first, then bytewise. */
static int key_cmp_canonical(const mdw_cbor *a, const mdw_cbor *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->v.p, b->v.p, a->len);
}

/* Bytewise, a prefix first: Go's sort.Strings, hence Jetstream's JSON order. */
static int key_cmp_bytes(const mdw_cbor *a, const mdw_cbor *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->v.p, b->v.p, m);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* Sorts idx[0..n) (pair indices of map m) by cmp: insertion sort for the
** usual handful of keys, a merge sort otherwise (no qsort: its comparator
** would need global state to reach the map). */
static void sort_keys(const mdw_cbor *m, size_t *idx, size_t n,
                      int (*cmp)(const mdw_cbor *, const mdw_cbor *))
{
    const mdw_cbor *it = m->v.items;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            size_t x = idx[i], j = i;
            while (j > 0 && cmp(&it[2 * idx[j - 1]], &it[2 * x]) > 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
        return;
    }
    /* bottom-up merge sort: no global state, O(n log n) for adversarial maps */
    size_t *tmp = xmalloc(n * sizeof *tmp);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(&it[2 * idx[i]], &it[2 * idx[j]]) <= 0 ? idx[i++] : idx[j++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
    free(tmp);
}

static int minimal_head(uint8_t ib, uint64_t arg)
{
    switch (ib & 0x1f) {
    case 24:
        return arg >= 24;
    case 25:
        return arg >= 0x100;
    case 26:
        return arg >= 0x10000;
    case 27:
        return arg >= 0x100000000ull;
    default:
        return 1;
    }
}

static int dec_item(dec *d, size_t *off, mdw_cbor *out, int depth);

static int dec_map_check_keys(dec *d, mdw_cbor *m, size_t off)
{
    size_t n = m->len;
    int ordered = 1;
    for (size_t i = 1; i < n && ordered; i++)
        if (key_cmp_canonical(&m->v.items[2 * (i - 1)], &m->v.items[2 * i]) >= 0)
            ordered = 0;
    if (ordered)
        return 0;
    size_t stack[32], *idx = n <= 32 ? stack : xmalloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    sort_keys(m, idx, n, key_cmp_canonical);
    int rc = 0;
    for (size_t i = 1; i < n; i++)
        if (key_cmp_canonical(&m->v.items[2 * idx[i - 1]], &m->v.items[2 * idx[i]]) == 0) {
            const mdw_cbor *k = &m->v.items[2 * idx[i]];
            rc = fail(d, MDW_EMALFORMED, off, "duplicate map key \"%.*s\"",
                      (int)(k->len > 64 ? 64 : k->len), (const char *)k->v.p);
            break;
        }
    if (idx != stack)
        free(idx);
    return rc;
}

static int dec_item(dec *d, size_t *off, mdw_cbor *out, int depth)
{
    size_t o = *off;
    if (o >= d->n)
        return fail(d, MDW_EEOF, o, "input ends where an item should start");
    if (++d->a->items > MDW_MAX_CBOR_ITEMS)
        return fail(d, MDW_ETOOBIG, o, "more than %d items", MDW_MAX_CBOR_ITEMS);
    struct head h = {0};
    struct cbor_decoder_result r = cbor_stream_decode(d->base + o, d->n - o, &dag_callbacks, &h);
    if (r.status == CBOR_DECODER_NEDATA)
        return fail(d, MDW_EEOF, o, "truncated item (needs %zu more bytes)", r.required);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
        return fail(d, MDW_EMALFORMED, o, "invalid CBOR initial byte 0x%02x", d->base[o]);
    if (h.bad)
        return fail(d, MDW_EMALFORMED, o, "%s is not allowed in DAG-CBOR", h.bad);
    uint8_t ib = d->base[o];
    if (h.kind != H_FLOAT && h.kind != H_BOOL && h.kind != H_NULL && !minimal_head(ib, h.u))
        return fail(d, MDW_EMALFORMED, o, "non-minimal length or integer encoding");
    o += r.read;
    memset(out, 0, sizeof *out);
    switch (h.kind) {
    case H_UINT:
        out->type = MDW_CBOR_UINT;
        out->v.u = h.u;
        break;
    case H_NEGINT:
        out->type = MDW_CBOR_NEGINT;
        out->v.u = h.u;
        break;
    case H_BYTES:
        out->type = MDW_CBOR_BYTES;
        out->v.p = h.p;
        out->len = (size_t)h.u;
        break;
    case H_TEXT:
        if (!utf8_valid(h.p, (size_t)h.u))
            return fail(d, MDW_EMALFORMED, *off, "text string is not valid UTF-8");
        out->type = MDW_CBOR_TEXT;
        out->v.p = h.p;
        out->len = (size_t)h.u;
        break;
    case H_FLOAT:
        if (isnan(h.f) || isinf(h.f))
            return fail(d, MDW_EMALFORMED, *off, "NaN or infinity is not allowed in DAG-CBOR");
        out->type = MDW_CBOR_FLOAT;
        out->v.f = h.f;
        break;
    case H_BOOL:
        out->type = MDW_CBOR_BOOL;
        out->v.u = h.u;
        break;
    case H_NULL:
        out->type = MDW_CBOR_NULL;
        break;
    case H_TAG: {
        if (h.u != 42)
            return fail(d, MDW_EMALFORMED, *off, "tag %llu (DAG-CBOR allows only 42)",
                        (unsigned long long)h.u);
        mdw_cbor inner;
        size_t io = o;
        /* one level deeper: tag(tag(tag(…))) must hit the cap, not the stack */
        if (depth >= MDW_MAX_CBOR_DEPTH)
            return fail(d, MDW_ETOOBIG, *off, "nesting deeper than %d", MDW_MAX_CBOR_DEPTH);
        int rc = dec_item(d, &o, &inner, depth + 1);
        if (rc)
            return rc;
        if (inner.type != MDW_CBOR_BYTES || inner.len < 2 || inner.v.p[0] != 0x00)
            return fail(d, MDW_EMALFORMED, io, "tag 42 must hold 0x00 + a binary CID");
        mdw_cid cid;
        if (mdw_cid_parse(inner.v.p + 1, inner.len - 1, &cid, NULL))
            return fail(d, MDW_EMALFORMED, io, "tag 42 holds an invalid CID");
        out->type = MDW_CBOR_LINK;
        out->v.p = inner.v.p + 1;
        out->len = inner.len - 1;
        break;
    }
    case H_ARRAY:
    case H_MAP: {
        int is_map = h.kind == H_MAP;
        if (depth >= MDW_MAX_CBOR_DEPTH)
            return fail(d, MDW_ETOOBIG, *off, "nesting deeper than %d", MDW_MAX_CBOR_DEPTH);
        uint64_t count = h.u, slots = is_map ? 2 * count : count;
        if (is_map && count > UINT64_MAX / 2)
            return fail(d, MDW_EEOF, *off, "map of %llu pairs", (unsigned long long)count);
        if (slots > d->n - o) /* every item takes at least one byte */
            return fail(d, MDW_EEOF, *off, "%s of %llu items runs past the end",
                        is_map ? "map" : "array", (unsigned long long)count);
        if (slots > MDW_MAX_CBOR_ITEMS - (d->a->items < MDW_MAX_CBOR_ITEMS ? d->a->items : 0))
            return fail(d, MDW_ETOOBIG, *off, "more than %d items", MDW_MAX_CBOR_ITEMS);
        out->type = is_map ? MDW_CBOR_MAP : MDW_CBOR_ARRAY;
        out->len = (size_t)count;
        out->v.items = slots ? arena_alloc(d->a, (size_t)slots * sizeof(mdw_cbor)) : NULL;
        for (size_t i = 0; i < slots; i++) {
            size_t io = o;
            int rc = dec_item(d, &o, &out->v.items[i], depth + 1);
            if (rc)
                return rc;
            if (is_map && i % 2 == 0 && out->v.items[i].type != MDW_CBOR_TEXT)
                return fail(d, MDW_EMALFORMED, io, "map key is not a text string");
        }
        if (is_map) {
            int rc = dec_map_check_keys(d, out, *off);
            if (rc)
                return rc;
        }
        break;
    }
    default:
        return fail(d, MDW_EMALFORMED, *off, "unsupported CBOR item 0x%02x", ib);
    }
    *off = o;
    return 0;
}

int mdw_cbor_decode(const uint8_t *p, size_t n, mdw_arena *a, const mdw_cbor **root, size_t *used,
                    char *err, size_t errlen)
{
    dec d = {p, n, a, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    mdw_cbor *node = arena_alloc(a, sizeof *node);
    size_t off = 0;
    int rc = dec_item(&d, &off, node, 1);
    if (rc)
        return rc;
    if (!used && off != n)
        return fail(&d, MDW_EMALFORMED, off, "%zu trailing bytes after the item", n - off);
    if (used)
        *used = off;
    *root = node;
    return 0;
}

/* ---- access ---- */

const mdw_cbor *mdw_cbor_get(const mdw_cbor *m, const char *key)
{
    if (!m || m->type != MDW_CBOR_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < m->len; i++) {
        const mdw_cbor *k = &m->v.items[2 * i];
        if (k->len == kl && memcmp(k->v.p, key, kl) == 0)
            return &m->v.items[2 * i + 1];
    }
    return NULL;
}

int mdw_cbor_text_is(const mdw_cbor *n, const char *s)
{
    size_t l = strlen(s);
    return n && n->type == MDW_CBOR_TEXT && n->len == l && memcmp(n->v.p, s, l) == 0;
}

int mdw_cbor_int(const mdw_cbor *n, int64_t *out)
{
    if (!n || n->v.u > (uint64_t)INT64_MAX)
        return MDW_EMALFORMED;
    if (n->type == MDW_CBOR_UINT)
        *out = (int64_t)n->v.u;
    else if (n->type == MDW_CBOR_NEGINT)
        *out = -(int64_t)n->v.u - 1;
    else
        return MDW_EMALFORMED;
    return 0;
}

/* ---- canonical encoding ---- */

static int put_head(mdw_buf *out, size_t k, const unsigned char *tmp)
{
    return k ? mdw_buf_append(out, tmp, k) : MDW_EMALFORMED;
}

static int enc(const mdw_cbor *n, const char *omit, mdw_buf *out)
{
    unsigned char t[16];
    int rc;
    switch (n->type) {
    case MDW_CBOR_UINT:
        return put_head(out, cbor_encode_uint(n->v.u, t, sizeof t), t);
    case MDW_CBOR_NEGINT:
        return put_head(out, cbor_encode_negint(n->v.u, t, sizeof t), t);
    case MDW_CBOR_BYTES:
    case MDW_CBOR_TEXT:
        rc = put_head(out,
                      n->type == MDW_CBOR_BYTES ? cbor_encode_bytestring_start(n->len, t, sizeof t)
                                                : cbor_encode_string_start(n->len, t, sizeof t),
                      t);
        return rc ? rc : mdw_buf_append(out, n->v.p, n->len);
    case MDW_CBOR_LINK:
        if ((rc = put_head(out, cbor_encode_tag(42, t, sizeof t), t)) ||
            (rc = put_head(out, cbor_encode_bytestring_start(n->len + 1, t, sizeof t), t)) ||
            (rc = mdw_buf_putc(out, 0)))
            return rc;
        return mdw_buf_append(out, n->v.p, n->len);
    case MDW_CBOR_BOOL:
        return put_head(out, cbor_encode_bool(n->v.u != 0, t, sizeof t), t);
    case MDW_CBOR_NULL:
        return put_head(out, cbor_encode_null(t, sizeof t), t);
    case MDW_CBOR_FLOAT:
        return put_head(out, cbor_encode_double(n->v.f, t, sizeof t), t);
    case MDW_CBOR_ARRAY:
        if ((rc = put_head(out, cbor_encode_array_start(n->len, t, sizeof t), t)))
            return rc;
        for (size_t i = 0; i < n->len; i++)
            if ((rc = enc(&n->v.items[i], NULL, out)))
                return rc;
        return 0;
    case MDW_CBOR_MAP: {
        size_t stack[32], *idx = n->len <= 32 ? stack : xmalloc(n->len * sizeof *idx);
        size_t m = 0;
        for (size_t i = 0; i < n->len; i++)
            if (!omit || !mdw_cbor_text_is(&n->v.items[2 * i], omit))
                idx[m++] = i;
        sort_keys(n, idx, m, key_cmp_canonical);
        rc = put_head(out, cbor_encode_map_start(m, t, sizeof t), t);
        for (size_t i = 0; rc == 0 && i < m; i++) {
            rc = enc(&n->v.items[2 * idx[i]], NULL, out);
            if (rc == 0)
                rc = enc(&n->v.items[2 * idx[i] + 1], NULL, out);
        }
        if (idx != stack)
            free(idx);
        return rc;
    }
    }
    return MDW_EMALFORMED;
}

int mdw_cbor_encode(const mdw_cbor *n, const char *omit_key, mdw_buf *out)
{
    return enc(n, omit_key, out);
}

/* ---- JSON ---- */

typedef struct jw {
    mdw_buf *out;
    char *err;
    size_t errlen;
} jw;

static int jfail(jw *w, const char *msg)
{
    if (w->err && w->errlen)
        snprintf(w->err, w->errlen, "%s", msg);
    return MDW_EMALFORMED;
}

static int json(jw *w, const mdw_cbor *n)
{
    mdw_buf *out = w->out;
    int rc;
    char num[32];
    switch (n->type) {
    case MDW_CBOR_UINT:
        if (n->v.u > (uint64_t)INT64_MAX)
            return jfail(w, "integer above the int64 range of the atproto data model");
        snprintf(num, sizeof num, "%llu", (unsigned long long)n->v.u);
        return mdw_buf_puts(out, num);
    case MDW_CBOR_NEGINT:
        if (n->v.u > (uint64_t)INT64_MAX)
            return jfail(w, "integer below the int64 range of the atproto data model");
        snprintf(num, sizeof num, "%lld", (long long)(-(int64_t)n->v.u - 1));
        return mdw_buf_puts(out, num);
    case MDW_CBOR_TEXT:
        return mdw_buf_json_str(out, (const char *)n->v.p, n->len);
    case MDW_CBOR_BYTES:
        if ((rc = mdw_buf_puts(out, "{\"$bytes\":\"")) ||
            (rc = mdw_base64_encode(out, n->v.p, n->len, MDW_B64_STD)))
            return rc;
        return mdw_buf_puts(out, "\"}");
    case MDW_CBOR_LINK: {
        mdw_cid c;
        if (mdw_cid_parse(n->v.p, n->len, &c, NULL))
            return jfail(w, "invalid CID link");
        if ((rc = mdw_buf_puts(out, "{\"$link\":\"")) || (rc = mdw_cid_to_text(&c, out)))
            return rc;
        return mdw_buf_puts(out, "\"}");
    }
    case MDW_CBOR_BOOL:
        return mdw_buf_puts(out, n->v.u ? "true" : "false");
    case MDW_CBOR_NULL:
        return mdw_buf_puts(out, "null");
    case MDW_CBOR_FLOAT:
        return jfail(w, "floats are not allowed in the atproto data model");
    case MDW_CBOR_ARRAY:
        if ((rc = mdw_buf_putc(out, '[')))
            return rc;
        for (size_t i = 0; i < n->len; i++) {
            if (i && (rc = mdw_buf_putc(out, ',')))
                return rc;
            if ((rc = json(w, &n->v.items[i])))
                return rc;
        }
        return mdw_buf_putc(out, ']');
    case MDW_CBOR_MAP: {
        size_t stack[32], *idx = n->len <= 32 ? stack : xmalloc(n->len * sizeof *idx);
        for (size_t i = 0; i < n->len; i++)
            idx[i] = i;
        sort_keys(n, idx, n->len, key_cmp_bytes);
        rc = mdw_buf_putc(out, '{');
        for (size_t i = 0; rc == 0 && i < n->len; i++) {
            const mdw_cbor *k = &n->v.items[2 * idx[i]];
            if (i)
                rc = mdw_buf_putc(out, ',');
            if (rc == 0)
                rc = mdw_buf_json_str(out, (const char *)k->v.p, k->len);
            if (rc == 0)
                rc = mdw_buf_putc(out, ':');
            if (rc == 0)
                rc = json(w, &n->v.items[2 * idx[i] + 1]);
        }
        if (idx != stack)
            free(idx);
        return rc ? rc : mdw_buf_putc(out, '}');
    }
    }
    return jfail(w, "unknown node");
}

int mdw_cbor_to_json(const mdw_cbor *n, mdw_buf *out, char *err, size_t errlen)
{
    jw w = {out, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    return json(&w, n);
}
