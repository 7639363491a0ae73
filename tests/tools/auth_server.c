/*
** auth_server — the feed server with service auth, for bench/bench_auth.sh
** (authenticated getFeedSkeleton beside unauthenticated, with wrk) and
** tests/integration/auth_pds.sh (real PDS tokens through HTTP).
**
**   auth_server mint N ISSUERS DOCS_OUT TOKENS_OUT [--service_did D]
**     N service tokens (aud = the service DID, lxm getFeedSkeleton, exp one
**     hour ahead) from ISSUERS secp256k1 DIDs; the DID documents go to
**     DOCS_OUT (a did_docs_file), the tokens to TOKENS_OUT as Authorization
**     values, one a line.
**   auth_server serve [settings…] [--no_token_cache]
**     the real feed server (feedgen/http.c) over the in-memory fake source
**     of the feedgen unit tests, with mdw_auth from the settings as its
**     service-auth hook (auth = off: no hook); prints "PORT <n>" and serves
**     until SIGTERM/SIGINT. --no_token_cache makes every request a full
**     verification (keys still cached).
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/stop.h"
#include "feedgen/auth.h"
#include "feedgen/feedgen.h"
#include "tests/test_auth_util.h"
#include "tests/test_feedgen_fake.h"

static int mint(int argc, char **argv, const mdw_config *cfg)
{
    if (argc < 6) {
        fprintf(stderr, "usage: auth_server mint N ISSUERS DOCS_OUT TOKENS_OUT\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10), m = strtol(argv[3], NULL, 10);
    if (n < 1 || m < 1 || m > n)
        return 2;
    char *svc = mdw_config_service_did(cfg);
    FILE *docs = fopen(argv[4], "w"), *toks = fopen(argv[5], "w");
    if (!docs || !toks)
        return 2;
    tkey *keys = calloc((size_t)m, sizeof *keys);
    char(*dids)[33] = calloc((size_t)m, sizeof *dids);
    fputc('{', docs);
    for (long i = 0; i < m; i++) {
        tkey_gen(&keys[i], 1);
        tau_plc_did(dids[i]);
        char *doc = tau_doc(dids[i], &keys[i], NULL);
        fprintf(docs, "%s\"%s\":%s", i ? "," : "", dids[i], doc);
        free(doc);
    }
    fputs("}\n", docs);
    long long exp = (long long)time(NULL) + 3600;
    for (long i = 0; i < n; i++) {
        char *t = tau_mint(&keys[i % m], dids[i % m], svc, "app.bsky.feed.getFeedSkeleton", exp);
        fprintf(toks, "Bearer %s\n", t);
        free(t);
    }
    fclose(docs);
    fclose(toks);
    free(keys);
    free(dids);
    free(svc);
    return 0;
}

static int serve(int argc, char **argv, const mdw_config *cfg)
{
    int no_cache = 0;
    for (int i = 2; i < argc; i++)
        no_cache |= strcmp(argv[i], "--no_token_cache") == 0;
    mdw_auth *a = NULL;
    if (strcmp(cfg->auth, "off") != 0) {
        if (no_cache) {
            /* The server's construction, with the verified-token cache left out. */
            mdw_didres *res;
            mdw_didres_opts ro = {.plc_url = cfg->plc_url,
                                  .cache_ttl_s = cfg->did_cache_ttl_s,
                                  .cache_max = (size_t)cfg->did_cache_max,
                                  .docs_file = cfg->did_docs_file};
            if (mdw_didres_new(&res, &ro, mdw_clock_real()) != 0)
                return 1;
            char *svc = mdw_config_service_did(cfg);
            mdw_auth_mode mode;
            mdw_auth_mode_parse(cfg->auth, &mode);
            mdw_auth_opts ao = {.mode = mode,
                                .service_did = svc,
                                .leeway_s = cfg->jwt_leeway_s,
                                .resolver = res,
                                .no_token_cache = 1};
            int rc = mdw_auth_new(&a, &ao, mdw_clock_real());
            free(svc);
            if (rc)
                return 1;
        } else if (mdw_auth_new_from_config(&a, cfg, mdw_clock_real()) != 0) {
            return 1;
        }
    }
    static fake_source fsrc;
    mdw_feedgen_opts o = {
        cfg, fake_source_make(&fsrc), mdw_clock_real(), a ? mdw_auth_feedgen_hook : NULL, a,
        0 /* any free port, printed */};
    mdw_feedgen *fg;
    if (mdw_stop_install() != 0 || mdw_feedgen_start_opts(&fg, &o) != 0)
        return 1;
    printf("PORT %d\n", mdw_feedgen_port(fg));
    fflush(stdout);
    while (!mdw_stop_requested())
        usleep(50000);
    mdw_feedgen_stop(fg);
    mdw_auth_free(a);
    return 0;
}

int main(int argc, char **argv)
{
    mdw_config cfg;
    if (mdw_config_load(&cfg, &argc, argv, NULL, stderr) != 0)
        return 2;
    mdw_log_set_level(MDW_LOG_WARN);
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "mint") == 0)
        rc = mint(argc, argv, &cfg);
    else if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        rc = serve(argc, argv, &cfg);
    else
        fprintf(stderr, "usage: auth_server mint|serve …\n");
    mdw_config_release(&cfg);
    return rc;
}
