/*
** libFuzzer target: CARv1 bytes through mdw_car_open(), then the same bytes
** with every block's CID digest recomputed by the harness (so mutations get
** past the sha-256 check and reach what lies behind it): the MST walk from
** each root, DAG-CBOR decoding and JSON rendering of every block, and the
** canonical encoder, which must be idempotent (encode(decode(encode(x))) ==
** encode(x)). Seeds: the CAR slices of real relay frames and the corpus's
** repository export (tests/fuzz/corpus/car).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "firehose/car.h"
#include "firehose/cbor.h"
#include "firehose/mst.h"

static int visit(void *ctx, const char *key, size_t keylen, const mdw_cid *value)
{
    if (strlen(key) != keylen)
        abort();
    return 0;
}

/* Recomputes the digest of every sha-256 CID block in p (loosely framed). */
static void rehash(uint8_t *p, size_t n)
{
    uint64_t len;
    int k = mdw_uvarint_decode(p, n, &len);
    if (k < 0 || len > n - (size_t)k)
        return;
    size_t o = (size_t)k + (size_t)len;
    while (o < n) {
        k = mdw_uvarint_decode(p + o, n - o, &len);
        if (k < 0 || len == 0 || len > n - o - (size_t)k)
            return;
        o += (size_t)k;
        mdw_cid c;
        size_t used;
        if (mdw_cid_parse(p + o, (size_t)len, &c, &used) == 0 && c.hash == MDW_MH_SHA256 &&
            c.digest_len == 32)
            mdw_sha256(p + o + used, (size_t)len - used, (uint8_t *)c.digest);
        o += (size_t)len;
    }
}

static void exercise(const mdw_car *car)
{
    char err[256];
    for (size_t i = 0; i < car->nroots; i++)
        mdw_mst_walk(car, &car->roots[i], visit, NULL, err, sizeof err);
    for (size_t i = 0; i < car->nblocks; i++) {
        mdw_arena a;
        mdw_arena_init(&a);
        const mdw_cbor *n;
        if (mdw_cbor_decode(car->blocks[i].data, car->blocks[i].len, &a, &n, NULL, err,
                            sizeof err) == 0) {
            mdw_buf j = MDW_BUF_INIT(MDW_MAX_EVENT_BYTES), e1 = MDW_BUF_INIT(MDW_MAX_FRAME_BYTES),
                    e2 = MDW_BUF_INIT(MDW_MAX_FRAME_BYTES);
            mdw_cbor_to_json(n, &j, err, sizeof err);
            if (mdw_cbor_encode(n, NULL, &e1) == 0) {
                mdw_arena b;
                mdw_arena_init(&b);
                const mdw_cbor *m;
                if (mdw_cbor_decode((const uint8_t *)e1.data, e1.len, &b, &m, NULL, err,
                                    sizeof err) != 0)
                    abort(); /* our own canonical output must decode */
                if (mdw_cbor_encode(m, NULL, &e2) != 0 || e1.len != e2.len ||
                    memcmp(e1.data, e2.data, e1.len) != 0)
                    abort(); /* canonical encoding must be a fixed point */
                mdw_arena_release(&b);
            }
            mdw_buf_release(&j);
            mdw_buf_release(&e1);
            mdw_buf_release(&e2);
        }
        mdw_arena_release(&a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdw_log_set_level(MDW_LOG_OFF);
    char err[256];
    mdw_car car;
    if (mdw_car_open(&car, data, size, err, sizeof err) == 0) {
        exercise(&car);
        mdw_car_release(&car);
    } else if (err[0] == '\0') {
        abort();
    }
    uint8_t *copy = xmemdup(data, size ? size : 1);
    rehash(copy, size);
    if (mdw_car_open(&car, copy, size, err, sizeof err) == 0) {
        exercise(&car);
        mdw_car_release(&car);
    }
    free(copy);
    return 0;
}
