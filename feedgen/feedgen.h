/*
** feedgen/feedgen.h — the XRPC feed server (libmicrohttpd).
**
** Serves app.bsky.feed.getFeedSkeleton, app.bsky.feed.describeFeedGenerator,
** /.well-known/did.json, /xrpc/_health and /metrics (see docs/feedgen.md).
** The HTTP layer reads feeds through a small feed source (function
** pointers): production uses the index (mdw_feedgen_source_index, read-only
** LMDB transactions, no locks), unit tests may pass a fake one.
**
** Threading: mdw_feedgen_start() spawns the server's own threads (a pool of
** cfg->http_threads, each with its own epoll loop); source and auth
** callbacks are called from those threads concurrently and must be
** thread-safe. start/stop are called from one controlling thread.
** Ownership: the server copies what it needs from the config; the source's
** ctx (e.g. the mdw_index) and the clock are borrowed and must outlive
** mdw_feedgen_stop(). mdw_feedgen_stop() stops accepting, lets in-flight
** requests finish (bounded), then closes every connection and frees the
** server.
*/
#ifndef MDW_FEEDGEN_H
#define MDW_FEEDGEN_H

#include <stddef.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/limits.h"
#include "index/index.h"

typedef struct mdw_feedgen mdw_feedgen;

/*
** Where feed pages come from. feed_walk has mdw_index_feed_walk's contract
** (posts handed to fn one by one; 0, MDW_ENOTFOUND for no open community,
** MDW_EMALFORMED for a cursor that does not decode, fn's own non-zero code,
** other codes are server errors); communities visits every open community.
*/
typedef struct mdw_feed_source {
    void *ctx;
    int (*feed_walk)(void *ctx, const char *owner_did, const char *hashtag_id, const char *cursor,
                     size_t limit, mdw_index_post_fn fn, void *fn_ctx, mdw_index_page *page);
    int (*communities)(void *ctx, mdw_index_community_fn fn, void *fn_ctx);
} mdw_feed_source;

/* The production source: reads the index ix (borrowed). */
void mdw_feedgen_source_index(mdw_feed_source *src, mdw_index *ix);

/*
** Optional service-auth hook (feedgen/auth*.c provides the verifier), called
** for getFeedSkeleton with the Authorization header (NULL when absent) and
** the method's NSID. Returns 0 and fills viewer_did ("" = anonymous), or
** non-zero and fills error (XRPC error name, e.g. "BadJwtSignature") and
** message: the request is then refused with 401 and that JSON error.
*/
#define MDW_FEEDGEN_AUTH_ERROR_MAX   64
#define MDW_FEEDGEN_AUTH_MESSAGE_MAX 256
typedef struct mdw_feedgen_auth_result {
    char viewer_did[MDW_MAX_DID_BYTES + 1];
    char error[MDW_FEEDGEN_AUTH_ERROR_MAX];
    char message[MDW_FEEDGEN_AUTH_MESSAGE_MAX];
} mdw_feedgen_auth_result;
typedef int (*mdw_feedgen_auth_fn)(void *ctx, const char *authorization, const char *lxm,
                                   mdw_feedgen_auth_result *res);

typedef struct mdw_feedgen_opts {
    const mdw_config *cfg; /* bind, port, hostname, service_did, http_* */
    mdw_feed_source source;
    mdw_clock *clock;
    mdw_feedgen_auth_fn auth; /* NULL: no verification */
    void *auth_ctx;
    int port_override; /* >= 0: use instead of cfg->port (0 = any free port; tests) */
} mdw_feedgen_opts;

/* Serves the index ix with cfg's settings (what `meadow serve` and `meadow feedgen` call). */
int mdw_feedgen_start(mdw_feedgen **out, const mdw_config *cfg, mdw_index *ix, mdw_clock *clock);
/* Same with every knob (tests, auth). Returns 0, -errno or MDW_ECONFIG (logged). */
int mdw_feedgen_start_opts(mdw_feedgen **out, const mdw_feedgen_opts *opts);
/* The TCP port actually bound (useful with port_override = 0). */
int mdw_feedgen_port(const mdw_feedgen *fg);
/*
** Stops accepting, waits for in-flight requests to finish (at most
** min(http_timeout_s, MDW_FEEDGEN_DRAIN_MAX_S) seconds), closes connections
** and frees fg. NULL-safe.
*/
#define MDW_FEEDGEN_DRAIN_MAX_S 5
void mdw_feedgen_stop(mdw_feedgen *fg);

#endif
