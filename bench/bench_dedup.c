/*
** bench/bench_dedup.c — de-duplicating the DIDs of a relay repository walk
** (pds/pds.c, mdw_pds_walk with relay = 1): 10^5 distinct synthetic
** did:plc DIDs gathered over three collections (every DID once, a fifth of
** them again, a tenth a third time), de-duplicated by mdw_strv_sort_unique.
** Baseline: the linear search per insert it replaced (O(n^2), measured in
** the same run). BENCH_DEDUP_N overrides the number of DIDs.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/mem.h"
#include "common/strv.h"
#include "common/banned.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* did:plc: + 24 base32 characters, as the PLC directory issues them. */
static char *make_did(void)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    char d[8 + 24 + 1] = "did:plc:";
    for (int i = 0; i < 24; i++)
        d[8 + i] = b32[next() % 32];
    d[32] = '\0';
    return xstrdup(d);
}

typedef struct set {
    char **v;
    size_t n;
} set;

/* The replaced code: a linear search before each insert, realloc by one. */
static void old_add(set *s, const char *did)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], did))
            return;
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = xstrdup(did);
}

int main(void)
{
    const char *e = getenv("BENCH_DEDUP_N");
    size_t n = e ? (size_t)strtoull(e, NULL, 10) : 100000;
    char **dids = xmalloc(n * sizeof *dids);
    for (size_t i = 0; i < n; i++)
        dids[i] = make_did();
    /* The insert order: all, then every 5th, then every 10th (three collections). */
    size_t total = n + n / 5 + n / 10, k = 0;
    const char **order = xmalloc(total * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[k++] = dids[i];
    for (size_t i = 0; i < n; i += 5)
        order[k++] = dids[i];
    for (size_t i = 0; i < n && k < total; i += 10)
        order[k++] = dids[i];
    total = k;

    double t0 = bench_now();
    char **v = xmalloc(total * sizeof *v);
    for (size_t i = 0; i < total; i++)
        v[i] = xstrdup(order[i]);
    size_t got = mdw_strv_sort_unique(v, total);
    double t_new = bench_now() - t0;

    t0 = bench_now();
    set old = {0};
    for (size_t i = 0; i < total; i++)
        old_add(&old, order[i]);
    double t_old = bench_now() - t0;

    printf("dedup: %zu DIDs, %zu inserts, %zu unique (old: %zu)\n", n, total, got, old.n);
    bench_report("dedup sort+unique (ms)", t_new * 1e3, "ms", "linear search per insert",
                 t_old * 1e3);
    int status = got == n && old.n == n ? 0 : 1;
    for (size_t i = 0; i < got; i++)
        free(v[i]);
    for (size_t i = 0; i < old.n; i++)
        free(old.v[i]);
    for (size_t i = 0; i < n; i++)
        free(dids[i]);
    free(v);
    free(old.v);
    free(order);
    free(dids);
    return status;
}
