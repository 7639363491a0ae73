/*
** tests/fuzz/fuzz_query.c — libFuzzer target for feedgen's query-string and
** cursor parsing: the input is used (1) as a raw getFeedSkeleton query
** string, (2) as a whole request target routed by mdw_xrpc_serve over the
** fake feed source (which decodes cursors), and (3) as a cursor. Checks the
** invariants too: a parse that succeeds yields a limit in 1..100, a valid
** DID, an 8-hex id and a cursor that passes mdw_xrpc_cursor_valid; every
** reply has a status in 200..599 and, but for 204 and an empty /metrics, a body.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/log.h"
#include "feedgen/xrpc.h"
#include "tests/test_feedgen_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        mdw_log_set_level(MDW_LOG_OFF);
        quiet = 1;
    }
    const char *in = (const char *)data;

    /* 1. the query parser */
    mdw_xrpc_feed_params p;
    char msg[160];
    if (mdw_xrpc_feed_params_parse(in, size, &p, msg, sizeof msg) == 0) {
        if (p.limit < 1 || p.limit > MDW_XRPC_LIMIT_MAX)
            abort();
        if (!mdw_did_valid(p.owner_did, strlen(p.owner_did)) || strlen(p.hashtag_id) != 8)
            abort();
        if (p.cursor[0] && !mdw_xrpc_cursor_valid(p.cursor, strlen(p.cursor)))
            abort();
    }

    /* 2. the router, with the input as the request target */
    fake_source f;
    memset(&f, 0, sizeof f);
    mdw_xrpc_server s = {fake_source_make(&f), "did:web:fuzz.example", "fuzz.example", NULL, NULL};
    static const char *const verbs[] = {"GET", "POST", "OPTIONS", "HEAD"};
    mdw_xrpc_request q = {verbs[size % 4], in, size, NULL, NULL};
    mdw_xrpc_reply r;
    mdw_xrpc_reply_init(&r);
    if (mdw_xrpc_serve(&s, &q, &r) == 0 && (r.status < 200 || r.status > 599))
        abort();
    if (r.status != 204 && r.route != MDW_ROUTE_METRICS && (!r.body.data || r.body.len == 0))
        abort();
    mdw_xrpc_reply_release(&r);

    /* 3. the same bytes as the query of a getFeedSkeleton target */
    char *t = malloc(size + 64);
    int n = snprintf(t, 64, "/xrpc/app.bsky.feed.getFeedSkeleton?");
    memcpy(t + n, data, size);
    q.verb = "GET";
    q.target = t;
    q.target_len = (size_t)n + size;
    mdw_xrpc_reply_init(&r);
    if (mdw_xrpc_serve(&s, &q, &r) == 0 && r.status != 200 && r.status != 400 && r.status != 414)
        abort();
    mdw_xrpc_reply_release(&r);
    free(t);

    /* 4. cursor check */
    (void)mdw_xrpc_cursor_valid(in, size);
    return 0;
}
