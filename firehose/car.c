/* firehose/car.c — see car.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/mem.h"
#include "firehose/car.h"
#include "common/banned.h"

static int cid_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = memcmp(a, b, m);
    return c ? c : (al < bl ? -1 : al > bl ? 1 : 0);
}

static int block_cmp(const void *x, const void *y)
{
    const mdw_car_block *a = x, *b = y;
    return cid_cmp(a->cid.bytes, a->cid.len, b->cid.bytes, b->cid.len);
}

static int car_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int car_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int header(mdw_car *car, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    char why[160];
    const mdw_cbor *h;
    int rc = mdw_cbor_decode(p, n, &car->arena, &h, NULL, why, sizeof why);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "CAR header: %s", why);
        return rc == MDW_EEOF ? MDW_EMALFORMED : rc;
    }
    int64_t version;
    const mdw_cbor *roots = mdw_cbor_get(h, "roots");
    if (mdw_cbor_int(mdw_cbor_get(h, "version"), &version) || version != 1)
        return car_fail(err, errlen, MDW_EMALFORMED, "CAR header: version is not 1");
    if (!roots || roots->type != MDW_CBOR_ARRAY)
        return car_fail(err, errlen, MDW_EMALFORMED, "CAR header: no roots array");
    if (roots->len > MDW_CAR_MAX_ROOTS)
        return car_fail(err, errlen, MDW_EMALFORMED, "CAR header: %zu roots (max %d)", roots->len,
                        MDW_CAR_MAX_ROOTS);
    for (size_t i = 0; i < roots->len; i++) {
        const mdw_cbor *r = &roots->v.items[i];
        if (r->type != MDW_CBOR_LINK ||
            mdw_cid_parse(r->v.p, r->len, &car->roots[car->nroots++], NULL))
            return car_fail(err, errlen, MDW_EMALFORMED, "CAR header: root %zu is not a CID", i);
    }
    return 0;
}

int mdw_car_open(mdw_car *car, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    memset(car, 0, sizeof *car);
    mdw_arena_init(&car->arena);
    if (err && errlen)
        err[0] = '\0';
    uint64_t len;
    size_t o = 0, cap = 0;
    int k = mdw_uvarint_decode(p, n, &len), rc;
    if (k < 0)
        return car_fail(err, errlen, k == MDW_EEOF ? MDW_EEOF : MDW_EMALFORMED,
                        "CAR: bad header length varint at byte 0");
    o = (size_t)k;
    if (len == 0 || len > n - o)
        return car_fail(err, errlen, MDW_EEOF, "CAR: header of %zu bytes runs past the end (%zu)",
                        (size_t)len, n - o);
    if ((rc = header(car, p + o, (size_t)len, err, errlen)))
        goto fail;
    o += (size_t)len;
    while (o < n) {
        size_t start = o;
        k = mdw_uvarint_decode(p + o, n - o, &len);
        if (k < 0) {
            rc = car_fail(err, errlen, k, "CAR: bad block length varint at byte %zu", start);
            goto fail;
        }
        o += (size_t)k;
        if (len == 0 || len > n - o) {
            rc = car_fail(err, errlen, MDW_EEOF,
                          "CAR: block at byte %zu runs past the end (%zu bytes claimed)", start,
                          (size_t)len);
            goto fail;
        }
        mdw_car_block b;
        size_t used;
        if (mdw_cid_parse(p + o, (size_t)len, &b.cid, &used)) {
            rc = car_fail(err, errlen, MDW_EMALFORMED, "CAR: bad CID in block at byte %zu", start);
            goto fail;
        }
        b.data = p + o + used;
        b.len = (size_t)len - used;
        rc = mdw_cid_check(&b.cid, b.data, b.len);
        if (rc) {
            if (err && errlen) {
                mdw_buf t = MDW_BUF_INIT(256);
                mdw_cid_to_text(&b.cid, &t);
                snprintf(err, errlen,
                         rc == MDW_ECORRUPT
                             ? "CAR: block %s at byte %zu does not match its CID (sha-256 mismatch)"
                             : "CAR: block %s at byte %zu uses a hash other than sha-256",
                         t.data ? t.data : "?", start);
                mdw_buf_release(&t);
            }
            goto fail;
        }
        if (car->nblocks == cap) {
            cap = cap ? cap * 2 : 16;
            car->blocks = xrealloc(car->blocks, cap * sizeof *car->blocks);
        }
        car->blocks[car->nblocks++] = b;
        o += (size_t)len;
    }
    if (car->nblocks > 1)
        qsort(car->blocks, car->nblocks, sizeof *car->blocks, block_cmp);
    return 0;
fail:
    mdw_car_release(car);
    return rc;
}

void mdw_car_release(mdw_car *car)
{
    if (!car)
        return;
    free(car->blocks);
    car->blocks = NULL;
    car->nblocks = 0;
    car->nroots = 0;
    mdw_arena_release(&car->arena);
}

const mdw_car_block *mdw_car_find(const mdw_car *car, const uint8_t *cid, size_t len)
{
    size_t lo = 0, hi = car->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mdw_car_block *b = &car->blocks[mid];
        int c = cid_cmp(b->cid.bytes, b->cid.len, cid, len);
        if (c == 0)
            return b;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
