/*
** auth_check — verifies service-auth tokens the way the feed server does, for
** integration tests: settings as meadow takes them (--auth, --service_did,
** --plc_url, --jwt_leeway_s, --did_cache_ttl_s, --did_docs_file …), then one
** Authorization header value per stdin line ("-" alone: no header). Prints
** one line per input:
**   ok <viewer DID> | anonymous | refused <XRPC error> <message>
** and at the end "fetches=<n> token_cache_hits=<n>". --lxm M selects the
** method (default app.bsky.feed.getFeedSkeleton); --clock_offset_s S checks
** as if the wall clock were S seconds ahead (a fixed fake clock: expiry tests
** without sleeping).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "feedgen/auth.h"
#include "common/banned.h"

int main(int argc, char **argv)
{
    mdw_config cfg;
    if (mdw_config_load(&cfg, &argc, argv, NULL, stderr) != 0)
        return 2;
    int lvl = mdw_log_level_parse(cfg.log_level);
    mdw_log_set_level(lvl < 0 ? MDW_LOG_INFO : (mdw_log_level)lvl);
    const char *lxm = "app.bsky.feed.getFeedSkeleton";
    mdw_clock *clock = mdw_clock_real();
    static mdw_clock fake;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--lxm") == 0)
            lxm = argv[i + 1];
        if (strcmp(argv[i], "--clock_offset_s") == 0) {
            long long off = strtoll(argv[i + 1], NULL, 10);
            mdw_clock_fake_init(&fake, mdw_clock_now_us(clock) + off * 1000000LL);
            clock = &fake;
        }
    }
    mdw_auth *a;
    if (mdw_auth_new_from_config(&a, &cfg, clock) != 0)
        return 2;
    static char line[MDW_MAX_JWT_BYTES + 256];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char viewer[MDW_MAX_DID_BYTES + 1], msg[256];
        const char *err = NULL;
        int rc = mdw_auth_check(a, strcmp(line, "-") == 0 ? NULL : line, lxm, viewer, sizeof viewer,
                                &err, msg, sizeof msg);
        if (rc == 0 && viewer[0])
            printf("ok %s\n", viewer);
        else if (rc == 0)
            printf("anonymous\n");
        else
            printf("refused %s %s\n", err ? err : "?", msg);
        fflush(stdout);
    }
    printf("fetches=%lld token_cache_hits=%llu\n",
           (long long)(mdw_metrics_counter_value("meadow_auth_did_fetches_total", "result=\"ok\"")),
           (unsigned long long)mdw_auth_token_cache_hits(a));
    mdw_auth_free(a);
    mdw_config_release(&cfg);
    return 0;
}
