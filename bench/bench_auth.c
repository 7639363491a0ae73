/*
** bench_auth — the cost of service-auth per request, in-process:
**   - a repeated token (verified-token cache hit) against auth=off;
**   - full verification (parse, claims, ECDSA) with the issuer's keys already
**     cached, ES256K and ES256, each token seen once, against the cache hit.
** Tokens come from a pool minted before timing (one issuer per curve, unique
** jti each); DID documents are answered from a docs file, so no network.
** Single thread; bounded to about a second per figure.
*/
#include "bench/bench.h"
#include "tests/test_auth_util.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "feedgen/auth.h"
#include "identity/identity.h"

#define LXM  "app.bsky.feed.getFeedSkeleton"
#define SVC  "did:web:feeds.meadow.test"
#define POOL 4000

static int check(mdw_auth *a, const char *hdr)
{
    char viewer[MDW_MAX_DID_BYTES + 1], msg[128];
    const char *err;
    return mdw_auth_check(a, hdr, LXM, viewer, sizeof viewer, &err, msg, sizeof msg);
}

/* Checks hdrs[0..n) once each (or hdrs[0] n times when same), returns checks/s. */
static double run(mdw_auth *a, char **hdrs, int n, int same, double budget_s)
{
    double t0 = bench_now(), t;
    int done = 0;
    do {
        for (int i = 0; i < 200 && done < n; i++, done++)
            if (check(a, hdrs[same ? 0 : done]) != 0) {
                fprintf(stderr, "bench_auth: a valid token was refused\n");
                exit(1);
            }
        t = bench_now() - t0;
    } while (done < n && t < budget_s);
    return done / t;
}

static char **mint_pool(const tkey *k, const char *did, int n)
{
    char **hdrs = malloc(sizeof *hdrs * (size_t)n);
    long long exp = (long long)time(NULL) + 3600;
    for (int i = 0; i < n; i++) {
        char *t = tau_mint(k, did, SVC, LXM, exp);
        hdrs[i] = malloc(strlen(t) + 8);
        snprintf(hdrs[i], strlen(t) + 8, "Bearer %s", t);
        free(t);
    }
    return hdrs;
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_WARN);
    srand(1);
    tkey k1, k2;
    tkey_gen(&k1, 1);
    tkey_gen(&k2, 0);
    char d1[33], d2[33];
    tau_plc_did(d1);
    tau_plc_did(d2);
    char path[] = "/tmp/meadow-bench-auth-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    char *doc1 = tau_doc(d1, &k1, NULL), *doc2 = tau_doc(d2, &k2, NULL);
    fprintf(fp, "{\"%s\":%s,\"%s\":%s}", d1, doc1, d2, doc2);
    fclose(fp);
    free(doc1);
    free(doc2);

    mdw_didres *res;
    mdw_didres_opts ro = {.cache_ttl_s = 3600, .cache_max = 1000, .docs_file = path};
    mdw_auth *on, *off;
    mdw_auth_opts ao = {.mode = MDW_AUTH_REQUIRED, .service_did = SVC, .leeway_s = 30};
    mdw_auth_opts oo = {.mode = MDW_AUTH_OFF, .service_did = SVC};
    if (mdw_didres_new(&res, &ro, mdw_clock_real()) != 0)
        return 1;
    unlink(path);
    ao.resolver = res;
    ao.token_cache_max = 2 * POOL + 16;
    if (mdw_auth_new(&on, &ao, mdw_clock_real()) != 0 ||
        mdw_auth_new(&off, &oo, mdw_clock_real()) != 0)
        return 1;

    char **p1 = mint_pool(&k1, d1, POOL), **p2 = mint_pool(&k2, d2, POOL);
    /* Warm the DID cache (one fetch from the docs file per issuer). */
    check(on, p1[POOL - 1]);
    check(on, p2[POOL - 1]);

    double anon = run(off, p1, 2000000, 1, 1.0);
    double hit = run(on, p1, 2000000, 1, 1.0); /* p1[0] verified once, then cache hits */
    double k256 = run(on, p1 + 1, POOL - 2, 0, 1.5);
    double p256 = run(on, p2, POOL - 1, 0, 1.5);

    bench_report("auth check, token cache hit", hit, "checks/s", "auth=off", anon);
    bench_report("auth verify ES256K, DID key cached", k256, "checks/s", "token cache hit", hit);
    bench_report("auth verify ES256, DID key cached", p256, "checks/s", "token cache hit", hit);
    printf("per check: cache hit %.2f us, ES256K %.1f us, ES256 %.1f us\n", 1e6 / hit, 1e6 / k256,
           1e6 / p256);

    for (int i = 0; i < POOL; i++) {
        free(p1[i]);
        free(p2[i]);
    }
    free(p1);
    free(p2);
    mdw_auth_free(on);
    mdw_auth_free(off);
    mdw_didres_free(res);
    tkey_free(&k1);
    tkey_free(&k2);
    return 0;
}
