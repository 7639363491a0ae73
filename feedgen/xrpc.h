/*
** feedgen/xrpc.h — the feed server's request logic, without sockets.
**
** mdw_xrpc_serve() turns one request (verb, raw request target, a few
** headers) into a reply (status, content type, body): routing with the XRPC
** conventions of the reference server, parameter parsing and validation,
** the JSON bodies. feedgen/http.c is only the libmicrohttpd glue around it,
** so the whole behaviour is unit-testable and fuzzable without a network.
** Stateless and thread-safe: the server struct is read-only after setup;
** the reply owns its body (mdw_xrpc_reply_release).
*/
#ifndef MDW_XRPC_H
#define MDW_XRPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/limits.h"
#include "feedgen/feedgen.h"
#include "index/index.h"

#define MDW_XRPC_LIMIT_DEFAULT 50
#define MDW_XRPC_LIMIT_MAX     100
/* Largest body the server builds (describeFeedGenerator grows with communities). */
#define MDW_FEEDGEN_MAX_RESPONSE_BYTES (16u * 1024 * 1024)

#define MDW_NSID_GET_FEED_SKELETON "app.bsky.feed.getFeedSkeleton"
#define MDW_NSID_DESCRIBE          "app.bsky.feed.describeFeedGenerator"

/* Routes, for metrics labels (mdw_xrpc_route_name). */
typedef enum {
    MDW_ROUTE_FEED_SKELETON,
    MDW_ROUTE_DESCRIBE,
    MDW_ROUTE_DID_JSON,
    MDW_ROUTE_HEALTH,
    MDW_ROUTE_METRICS,
    MDW_ROUTE_XRPC_OTHER, /* unknown or invalid XRPC method */
    MDW_ROUTE_PREFLIGHT,  /* OPTIONS */
    MDW_ROUTE_NOT_FOUND,
    MDW_ROUTE_COUNT
} mdw_xrpc_route;
const char *mdw_xrpc_route_name(int route);

/* getFeedSkeleton's parameters, validated. */
typedef struct mdw_xrpc_feed_params {
    char owner_did[MDW_MAX_DID_BYTES + 1];
    char hashtag_id[9];
    size_t limit;
    char cursor[MDW_INDEX_CURSOR_MAX]; /* "" = from the newest */
} mdw_xrpc_feed_params;

/*
** Parses a raw query string (without '?', percent-encoded, '+' = space) of
** getFeedSkeleton. Unknown parameters are ignored (as the reference server
** does); a repeated known one is an error. Returns 0, or MDW_EMALFORMED /
** MDW_ETOOBIG with a message for the client in msg.
*/
int mdw_xrpc_feed_params_parse(const char *query, size_t len, mdw_xrpc_feed_params *p, char *msg,
                               size_t msgcap);

/* A cursor this server could have issued: 1..MDW_INDEX_CURSOR_MAX-1 base64url chars. */
int mdw_xrpc_cursor_valid(const char *s, size_t n);
/*
** Percent-decodes in[0..n) into out (cap bytes incl. NUL), '+' -> ' '.
** Returns the decoded length, or -1 on a bad escape, a %00, or no room.
*/
long mdw_xrpc_unescape(const char *in, size_t n, char *out, size_t cap);

/* Appends {"error":...,"message":...}. */
int mdw_xrpc_error_json(mdw_buf *b, const char *error, const char *message);

typedef struct mdw_xrpc_server {
    mdw_feed_source source;
    const char *service_did; /* describeFeedGenerator's did */
    const char *hostname;    /* did.json */
    mdw_feedgen_auth_fn auth;
    void *auth_ctx;
} mdw_xrpc_server;

typedef struct mdw_xrpc_request {
    const char *verb;   /* "GET", "HEAD", "POST", "OPTIONS", ... */
    const char *target; /* raw request target: /path?query, not decoded */
    size_t target_len;
    const char *authorization; /* header or NULL */
    const char *acr_headers;   /* Access-Control-Request-Headers or NULL */
} mdw_xrpc_request;

typedef struct mdw_xrpc_reply {
    int status;
    int route;                /* mdw_xrpc_route */
    const char *content_type; /* static; NULL when no body */
    const char *allow;        /* Allow / preflight methods header, or NULL */
    const char *acr_headers;  /* preflight: headers to allow (points into the request) */
    mdw_buf body;
    uint64_t scanned; /* index entries read */
    uint64_t posts;   /* posts returned */
    char viewer_did[MDW_MAX_DID_BYTES + 1];
} mdw_xrpc_reply;

void mdw_xrpc_reply_init(mdw_xrpc_reply *r);
void mdw_xrpc_reply_release(mdw_xrpc_reply *r);

/* Fills r for request q (r initialized by the caller). Returns 0 (the reply
 * carries any HTTP error), negative only if the body could not be built. */
int mdw_xrpc_serve(const mdw_xrpc_server *s, const mdw_xrpc_request *q, mdw_xrpc_reply *r);

/* Internal (feedgen/xrpc_source.c): fn(arg) runs in mdw_feedgen_stop after the server stopped. */
void mdw_feedgen__on_stop(mdw_feedgen *fg, void (*fn)(const void *arg), const void *arg);

#endif
