/* firehose/mst.c — see mst.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "firehose/cbor.h"
#include "firehose/mst.h"
#include "common/banned.h"

typedef struct walk {
    const mdw_car *car;
    mdw_mst_visit_fn fn;
    void *ctx;
    char *err;
    size_t errlen;
    char last[MDW_MST_MAX_KEY + 1]; /* previous key visited (order check) */
    size_t last_len;
    int have_last;
} walk;

static int wfail(walk *w, int rc, const mdw_cid *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int wfail(walk *w, int rc, const mdw_cid *node, const char *fmt, ...)
{
    if (w->err && w->errlen) {
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        mdw_buf t = MDW_BUF_INIT(256);
        if (node)
            mdw_cid_to_text(node, &t);
        snprintf(w->err, w->errlen, "MST node %s: %s", t.data ? t.data : "?", msg);
        mdw_buf_release(&t);
    }
    return rc;
}

static int link_or_null(const mdw_cbor *n, mdw_cid *out, int *present)
{
    *present = 0;
    if (!n || n->type == MDW_CBOR_NULL)
        return 0;
    if (n->type != MDW_CBOR_LINK || mdw_cid_parse(n->v.p, n->len, out, NULL))
        return MDW_EMALFORMED;
    *present = 1;
    return 0;
}

static int walk_node(walk *w, const mdw_cid *cid, int depth)
{
    if (depth > MDW_MAX_CBOR_DEPTH)
        return wfail(w, MDW_ETOOBIG, cid, "tree deeper than %d", MDW_MAX_CBOR_DEPTH);
    const mdw_car_block *b = mdw_car_find(w->car, cid->bytes, cid->len);
    if (!b)
        return wfail(w, MDW_ENOTFOUND, cid, "missing from the CAR");
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *node;
    char why[160];
    int rc = mdw_cbor_decode(b->data, b->len, &a, &node, NULL, why, sizeof why);
    if (rc) {
        rc = wfail(w, MDW_EMALFORMED, cid, "%s", why);
        goto out;
    }
    const mdw_cbor *l = mdw_cbor_get(node, "l"), *e = mdw_cbor_get(node, "e");
    mdw_cid sub;
    int present;
    if (node->type != MDW_CBOR_MAP || !e || e->type != MDW_CBOR_ARRAY ||
        link_or_null(l, &sub, &present)) {
        rc = wfail(w, MDW_EMALFORMED, cid, "not an MST node {l, e}");
        goto out;
    }
    if (present && (rc = walk_node(w, &sub, depth + 1)))
        goto out;
    char key[MDW_MST_MAX_KEY + 1];
    size_t klen = 0;
    for (size_t i = 0; i < e->len; i++) {
        const mdw_cbor *ent = &e->v.items[i];
        const mdw_cbor *p = mdw_cbor_get(ent, "p"), *k = mdw_cbor_get(ent, "k");
        const mdw_cbor *v = mdw_cbor_get(ent, "v"), *t = mdw_cbor_get(ent, "t");
        int64_t pre;
        mdw_cid val, right;
        int has_right;
        if (mdw_cbor_int(p, &pre) || !k || k->type != MDW_CBOR_BYTES || !v ||
            v->type != MDW_CBOR_LINK || mdw_cid_parse(v->v.p, v->len, &val, NULL) ||
            link_or_null(t, &right, &has_right)) {
            rc = wfail(w, MDW_EMALFORMED, cid, "entry %zu is not {p, k, v, t}", i);
            goto out;
        }
        if (pre < 0 || (size_t)pre > klen || (i == 0 && pre != 0)) {
            rc = wfail(w, MDW_EMALFORMED, cid, "entry %zu: prefix %lld outside the previous key", i,
                       (long long)pre);
            goto out;
        }
        if (k->len > MDW_MST_MAX_KEY - (size_t)pre) {
            rc = wfail(w, MDW_ETOOBIG, cid, "entry %zu: key longer than %d bytes", i,
                       MDW_MST_MAX_KEY);
            goto out;
        }
        memcpy(key + pre, k->v.p, k->len);
        klen = (size_t)pre + k->len;
        key[klen] = '\0';
        if (w->have_last) {
            size_t m = klen < w->last_len ? klen : w->last_len;
            int c = memcmp(w->last, key, m);
            if (c > 0 || (c == 0 && w->last_len >= klen)) {
                rc = wfail(w, MDW_EMALFORMED, cid, "keys out of order at \"%s\"", key);
                goto out;
            }
        }
        memcpy(w->last, key, klen + 1);
        w->last_len = klen;
        w->have_last = 1;
        if ((rc = w->fn(w->ctx, key, klen, &val)))
            goto out;
        if (has_right && (rc = walk_node(w, &right, depth + 1)))
            goto out;
    }
out:
    mdw_arena_release(&a);
    return rc;
}

int mdw_mst_walk(const mdw_car *car, const mdw_cid *root, mdw_mst_visit_fn fn, void *ctx, char *err,
                 size_t errlen)
{
    walk w;
    memset(&w, 0, sizeof w);
    w.car = car;
    w.fn = fn;
    w.ctx = ctx;
    w.err = err;
    w.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    return walk_node(&w, root, 1);
}
