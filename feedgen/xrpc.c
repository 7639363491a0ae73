/*
** feedgen/xrpc.c — routing, parameters and JSON bodies of the feed server
** (see xrpc.h). Nothing here touches a socket.
*/
#include "feedgen/xrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"
#include "common/banned.h"

#define JSON_TYPE    "application/json; charset=utf-8"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static const char *const route_names[MDW_ROUTE_COUNT] = {"getFeedSkeleton", "describeFeedGenerator",
                                                         "did_json",        "health",
                                                         "metrics",         "xrpc_other",
                                                         "preflight",       "not_found"};

const char *mdw_xrpc_route_name(int route)
{
    return route >= 0 && route < MDW_ROUTE_COUNT ? route_names[route] : "unknown";
}

/* ---- parameters ---------------------------------------------------------------------------- */

long mdw_xrpc_unescape(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = mdw_hex_value((unsigned char)in[i + 1]),
                lo = mdw_hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int mdw_xrpc_cursor_valid(const char *s, size_t n)
{
    if (n == 0 || n >= MDW_INDEX_CURSOR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(msg, msgcap, __VA_ARGS__);                                                        \
        return MDW_EMALFORMED;                                                                     \
    } while (0)

int mdw_xrpc_feed_params_parse(const char *query, size_t len, mdw_xrpc_feed_params *p, char *msg,
                               size_t msgcap)
{
    /* Decoded text is never longer than its source, so these hold any pair. */
    char key[MDW_MAX_HTTP_QUERY_BYTES + 1], val[MDW_MAX_HTTP_QUERY_BYTES + 1];
    int seen_feed = 0, seen_limit = 0, seen_cursor = 0;

    p->owner_did[0] = p->hashtag_id[0] = p->cursor[0] = '\0';
    p->limit = MDW_XRPC_LIMIT_DEFAULT;
    if (len > MDW_MAX_HTTP_QUERY_BYTES) {
        snprintf(msg, msgcap, "query string longer than %u bytes", MDW_MAX_HTTP_QUERY_BYTES);
        return MDW_ETOOBIG;
    }
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && query[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && query[eq] != '=')
            eq++;
        if (end > i) {
            long kl = mdw_xrpc_unescape(query + i, eq - i, key, sizeof key);
            long vl = eq < end ? mdw_xrpc_unescape(query + eq + 1, end - eq - 1, val, sizeof val)
                               : (val[0] = '\0', 0);
            if (kl < 0 || vl < 0)
                FAIL("malformed percent-encoding in the query string");
            if (strcmp(key, "feed") == 0) {
                if (seen_feed++)
                    FAIL("feed given more than once");
                size_t olen = 0;
                if (mdw_feed_uri_parse(val, (size_t)vl, &olen, p->hashtag_id) != 0 ||
                    olen >= sizeof p->owner_did)
                    FAIL("feed must be an AT-URI at://<did>/app.bsky.feed.generator/<8 lowercase "
                         "hex digits>");
                memcpy(p->owner_did, val + 5, olen);
                p->owner_did[olen] = '\0';
            } else if (strcmp(key, "limit") == 0) {
                if (seen_limit++)
                    FAIL("limit given more than once");
                if (vl == 0 || vl > 9)
                    FAIL("limit must be an integer");
                for (long k = 0; k < vl; k++)
                    if (val[k] < '0' || val[k] > '9')
                        FAIL("limit must be an integer");
                long v = strtol(val, NULL, 10);
                if (v < 1)
                    FAIL("limit can not be less than 1");
                if (v > MDW_XRPC_LIMIT_MAX)
                    FAIL("limit can not be greater than %d", MDW_XRPC_LIMIT_MAX);
                p->limit = (size_t)v;
            } else if (strcmp(key, "cursor") == 0) {
                if (seen_cursor++)
                    FAIL("cursor given more than once");
                if (vl > 0 && !mdw_xrpc_cursor_valid(val, (size_t)vl))
                    FAIL("malformed cursor");
                memcpy(p->cursor, val, (size_t)vl + 1);
            }
        }
        i = end + 1;
    }
    if (!seen_feed)
        FAIL("Error: Params must have the property \"feed\"");
    return 0;
}

int mdw_xrpc_error_json(mdw_buf *b, const char *error, const char *message)
{
    int rc = mdw_buf_puts(b, "{\"error\":");
    if (!rc)
        rc = mdw_buf_json_str(b, error, strlen(error));
    if (!rc)
        rc = mdw_buf_puts(b, ",\"message\":");
    if (!rc)
        rc = mdw_buf_json_str(b, message, strlen(message));
    if (!rc)
        rc = mdw_buf_putc(b, '}');
    return rc;
}

/* ---- replies ------------------------------------------------------------------------------- */

void mdw_xrpc_reply_init(mdw_xrpc_reply *r)
{
    /* Field by field: a memset would clear the 2 KiB DID buffer on every request. */
    r->status = 0;
    r->route = 0;
    r->content_type = r->allow = r->acr_headers = NULL;
    r->scanned = r->posts = 0;
    r->viewer_did[0] = '\0';
    mdw_buf_init(&r->body, MDW_FEEDGEN_MAX_RESPONSE_BYTES);
}

void mdw_xrpc_reply_release(mdw_xrpc_reply *r)
{
    if (r)
        mdw_buf_release(&r->body);
}

static int reply_error(mdw_xrpc_reply *r, int status, const char *error, const char *message)
{
    r->status = status;
    r->content_type = JSON_TYPE;
    mdw_buf_reset(&r->body);
    return mdw_xrpc_error_json(&r->body, error, message);
}

static int is_get(const char *verb)
{
    return strcmp(verb, "GET") == 0 || strcmp(verb, "HEAD") == 0;
}

/*
** One item, written in place: 10 fixed bytes ('[' for the first item, ','
** after) then {"post":"; a URI that needs escaping takes the slow path.
*/
struct feed_items {
    mdw_buf *b;
    size_t n;
};

static int feed_item(void *ctx, const char *uri, size_t n)
{
    enum { ILEN = 10 };
    struct feed_items *it = ctx;
    mdw_buf *b = it->b;
    int rc;
    if (b->cap - b->len < ILEN + n + 3 && (rc = mdw_buf_reserve(b, ILEN + n + 2)) != 0)
        return rc;
    char *w = b->data + b->len;
    memcpy(w, it->n++ == 0 ? "[{\"post\":\"" : ",{\"post\":\"", ILEN);
    if (mdw_json_copy_plain(w + ILEN, uri, n)) {
        memcpy(w + ILEN + n, "\"}", 3); /* with the NUL */
        b->len += ILEN + n + 2;
        return 0;
    }
    b->len += ILEN - 1; /* keep the item up to the '"': escape the slow way */
    b->data[b->len] = '\0';
    rc = mdw_buf_json_str(b, uri, n);
    return rc ? rc : mdw_buf_putc(b, '}');
}

static int serve_feed(const mdw_xrpc_server *s, const mdw_xrpc_request *q, const char *query,
                      size_t qlen, mdw_xrpc_reply *r)
{
    mdw_xrpc_feed_params p;
    char msg[160];
    if (mdw_xrpc_feed_params_parse(query, qlen, &p, msg, sizeof msg) != 0)
        return reply_error(r, 400, "InvalidRequest", msg);

    if (s->auth) {
        mdw_feedgen_auth_result ar;
        ar.viewer_did[0] = ar.error[0] = ar.message[0] = '\0';
        if (s->auth(s->auth_ctx, q->authorization, MDW_NSID_GET_FEED_SKELETON, &ar) != 0)
            return reply_error(r, 401, ar.error[0] ? ar.error : "AuthRequired",
                               ar.message[0] ? ar.message : "authentication failed");
        snprintf(r->viewer_did, sizeof r->viewer_did, "%s", ar.viewer_did);
    }

    /*
    ** The items are written straight from the index's values inside its read
    ** transaction, after room for the longest {"cursor":"…","feed": head;
    ** the head, known once the walk ends, then goes right before them.
    */
    enum { HEAD_MAX = sizeof "{\"cursor\":\"\",\"feed\":" - 1 + MDW_INDEX_CURSOR_MAX };
    mdw_buf *b = &r->body;
    int rc = mdw_buf_reserve(b, HEAD_MAX + 16 + p.limit * 96);
    if (rc)
        return reply_error(r, 500, "InternalServerError", "Internal Server Error");
    b->len = HEAD_MAX;
    mdw_index_page page;
    memset(&page, 0, sizeof page);
    struct feed_items items = {b, 0};
    rc = s->source.feed_walk(s->source.ctx, p.owner_did, p.hashtag_id,
                             p.cursor[0] ? p.cursor : NULL, p.limit, feed_item, &items, &page);
    if (rc == MDW_ENOTFOUND)
        return reply_error(r, 400, "UnknownFeed", "could not find feed");
    if (rc == MDW_EMALFORMED)
        return reply_error(r, 400, "InvalidRequest", "malformed cursor");
    if (rc != 0) {
        mdw_error("feedgen", "feed page failed", "err=\"%s\" owner=%s id=%s", mdw_strerror(rc),
                  p.owner_did, p.hashtag_id);
        return reply_error(r, 500, "InternalServerError", "Internal Server Error");
    }
    r->scanned = page.scanned;
    r->posts = page.n;
    rc = mdw_buf_puts(b, items.n ? "]}" : "[]}");
    /* The head, escaped the usual way in a small buffer, then moved into place. */
    mdw_buf head = MDW_BUF_INIT(HEAD_MAX + 8 + MDW_INDEX_CURSOR_MAX * 5);
    if (!rc && page.cursor[0]) {
        rc = mdw_buf_puts(&head, "{\"cursor\":");
        if (!rc)
            rc = mdw_buf_json_str(&head, page.cursor, strlen(page.cursor));
        if (!rc)
            rc = mdw_buf_puts(&head, ",\"feed\":");
    } else if (!rc) {
        rc = mdw_buf_puts(&head, "{\"feed\":");
    }
    if (!rc && head.len <= HEAD_MAX) {
        size_t n = b->len - HEAD_MAX;
        memcpy(b->data, head.data, head.len);
        memmove(b->data + head.len, b->data + HEAD_MAX, n + 1);
        b->len = head.len + n;
    } else if (!rc) {
        rc = MDW_ETOOBIG; /* a cursor needing escapes: never one of ours */
    }
    mdw_buf_release(&head);
    if (rc) {
        mdw_error("feedgen", "feed page too big", "err=\"%s\"", mdw_strerror(rc));
        return reply_error(r, 500, "InternalServerError", "Internal Server Error");
    }
    r->status = 200;
    r->content_type = JSON_TYPE;
    return 0;
}

struct describe_ctx {
    mdw_buf *b;
    int n;
    int rc;
};

static int describe_one(void *ctx, const char *owner_did, const char *hashtag_id)
{
    struct describe_ctx *d = ctx;
    mdw_buf uri = MDW_BUF_INIT(MDW_MAX_URI_BYTES);
    /* The index validated both parts; escape anyway, never trust storage. */
    int rc = mdw_buf_printf(&uri, "at://%s/app.bsky.feed.generator/%s", owner_did, hashtag_id);
    if (!rc)
        rc = mdw_buf_puts(d->b, d->n++ ? ",{\"uri\":" : "{\"uri\":");
    if (!rc)
        rc = mdw_buf_json_str(d->b, uri.data, uri.len);
    if (!rc)
        rc = mdw_buf_putc(d->b, '}');
    mdw_buf_release(&uri);
    d->rc = rc;
    return rc;
}

static int serve_describe(const mdw_xrpc_server *s, mdw_xrpc_reply *r)
{
    mdw_buf *b = &r->body;
    int rc = mdw_buf_puts(b, "{\"did\":");
    if (!rc)
        rc = mdw_buf_json_str(b, s->service_did, strlen(s->service_did));
    if (!rc)
        rc = mdw_buf_puts(b, ",\"feeds\":[");
    struct describe_ctx d = {b, 0, 0};
    if (!rc)
        rc = s->source.communities(s->source.ctx, describe_one, &d);
    if (!rc)
        rc = d.rc;
    if (!rc)
        rc = mdw_buf_puts(b, "]}");
    if (rc) {
        mdw_error("feedgen", "describeFeedGenerator failed", "err=\"%s\"", mdw_strerror(rc));
        return reply_error(r, 500, "InternalServerError", "Internal Server Error");
    }
    r->status = 200;
    r->content_type = JSON_TYPE;
    return 0;
}

static int serve_did_json(const mdw_xrpc_server *s, mdw_xrpc_reply *r)
{
    mdw_buf *b = &r->body;
    mdw_buf did = MDW_BUF_INIT(MDW_MAX_URI_BYTES), ep = MDW_BUF_INIT(MDW_MAX_URI_BYTES);
    int rc = mdw_buf_printf(&did, "did:web:%s", s->hostname);
    if (!rc)
        rc = mdw_buf_printf(&ep, "https://%s", s->hostname);
    if (!rc)
        rc = mdw_buf_puts(b, "{\"@context\":[\"https://www.w3.org/ns/did/v1\"],\"id\":");
    if (!rc)
        rc = mdw_buf_json_str(b, did.data, did.len);
    if (!rc)
        rc = mdw_buf_puts(b, ",\"service\":[{\"id\":\"#bsky_fg\",\"type\":\"BskyFeedGenerator\","
                             "\"serviceEndpoint\":");
    if (!rc)
        rc = mdw_buf_json_str(b, ep.data, ep.len);
    if (!rc)
        rc = mdw_buf_puts(b, "}]}");
    mdw_buf_release(&did);
    mdw_buf_release(&ep);
    if (rc)
        return reply_error(r, 500, "InternalServerError", "Internal Server Error");
    r->status = 200;
    r->content_type = JSON_TYPE;
    return 0;
}

/*
** The reference server's parseUrlNsid: /xrpc/ then [A-Za-z0-9.-]+, then the
** end, '?' or a final '/'. Returns the NSID length or 0 when invalid.
*/
static size_t xrpc_nsid(const char *path, size_t n)
{
    size_t i = 6;
    while (i < n) {
        char c = path[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-')
            i++;
        else
            break;
    }
    if (i == 6)
        return 0;
    if (i < n && !(path[i] == '/' && i + 1 == n))
        return 0;
    return i - 6;
}

static int path_is(const char *path, size_t n, const char *want)
{
    size_t w = strlen(want);
    return n == w && memcmp(path, want, w) == 0;
}

int mdw_xrpc_serve(const mdw_xrpc_server *s, const mdw_xrpc_request *q, mdw_xrpc_reply *r)
{
    const char *t = q->target;
    size_t tn = q->target_len;
    const char *qm = memchr(t, '?', tn);
    size_t pn = qm ? (size_t)(qm - t) : tn;
    const char *query = qm ? qm + 1 : "";
    size_t qlen = qm ? tn - pn - 1 : 0;
    char msg[192];

    r->route = MDW_ROUTE_NOT_FOUND;
    if (tn > MDW_MAX_HTTP_URL_BYTES) {
        snprintf(msg, sizeof msg, "request target longer than %u bytes", MDW_MAX_HTTP_URL_BYTES);
        return reply_error(r, 414, "InvalidRequest", msg);
    }
    if (qlen > MDW_MAX_HTTP_QUERY_BYTES) {
        snprintf(msg, sizeof msg, "query string longer than %u bytes", MDW_MAX_HTTP_QUERY_BYTES);
        return reply_error(r, 414, "InvalidRequest", msg);
    }
    if (strcmp(q->verb, "OPTIONS") == 0) {
        /* CORS preflight, for every path (the reference server's cors() does the same). */
        r->route = MDW_ROUTE_PREFLIGHT;
        r->status = 204;
        r->allow = "GET,HEAD,OPTIONS";
        r->acr_headers = q->acr_headers;
        return 0;
    }

    if (pn >= 6 && memcmp(t, "/xrpc/", 6) == 0) {
        if (path_is(t, pn, "/xrpc/_health")) {
            r->route = MDW_ROUTE_HEALTH;
            if (!is_get(q->verb))
                return reply_error(r, 400, "InvalidRequest", "invalid xrpc path");
            r->status = 200;
            r->content_type = JSON_TYPE;
            return mdw_buf_puts(&r->body, "{\"version\":\"" MDW_VERSION "\"}");
        }
        size_t nl = xrpc_nsid(t, pn);
        r->route = MDW_ROUTE_XRPC_OTHER;
        if (nl == 0)
            return reply_error(r, 400, "InvalidRequest", "invalid xrpc path");
        int feed = nl == strlen(MDW_NSID_GET_FEED_SKELETON) &&
                   memcmp(t + 6, MDW_NSID_GET_FEED_SKELETON, nl) == 0;
        int desc = nl == strlen(MDW_NSID_DESCRIBE) && memcmp(t + 6, MDW_NSID_DESCRIBE, nl) == 0;
        if (!feed && !desc)
            return reply_error(r, 501, "MethodNotImplemented", "Method Not Implemented");
        r->route = feed ? MDW_ROUTE_FEED_SKELETON : MDW_ROUTE_DESCRIBE;
        if (!is_get(q->verb)) {
            char verb[16];
            snprintf(verb, sizeof verb, "%s", q->verb);
            snprintf(msg, sizeof msg, "Incorrect HTTP method (%s) expected GET", verb);
            return reply_error(r, 400, "InvalidRequest", msg);
        }
        return feed ? serve_feed(s, q, query, qlen, r) : serve_describe(s, r);
    }

    int did = path_is(t, pn, "/.well-known/did.json");
    int met = path_is(t, pn, "/metrics");
    if (did || met) {
        r->route = did ? MDW_ROUTE_DID_JSON : MDW_ROUTE_METRICS;
        if (!is_get(q->verb)) {
            r->allow = "GET,HEAD,OPTIONS";
            return reply_error(r, 405, "MethodNotAllowed", "Method Not Allowed");
        }
        if (did)
            return serve_did_json(s, r);
        int rc = mdw_metrics_render(&r->body);
        if (rc)
            return reply_error(r, 500, "InternalServerError", "metrics too large");
        r->status = 200;
        r->content_type = METRICS_TYPE;
        return 0;
    }
    return reply_error(r, 404, "NotFound", "Not Found");
}
