/*
** tests/test_feedgen.c — feedgen's request logic without sockets
** (feedgen/xrpc.c): query decoding, feed URI and cursor validation, error
** JSON, routing with the XRPC conventions, and the JSON shapes, over a fake
** feed source (tests/test_feedgen_fake.h).
*/
#include <cJSON.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/version.h"
#include "feedgen/xrpc.h"
#include "tests/test.h"
#include "tests/test_feedgen_fake.h"
#include "common/banned.h"

#define FEED_URI "at://" FAKE_OWNER "/app.bsky.feed.generator/" FAKE_ID
#define FEED_Q   "feed=" FEED_URI

TEST(unescape)
{
    char out[32];
    ASSERT_EQ(mdw_xrpc_unescape("a%20b+c", 7, out, sizeof out), 5);
    ASSERT_STREQ(out, "a b c");
    ASSERT_EQ(mdw_xrpc_unescape("at%3A%2F%2Fx", 12, out, sizeof out), 6);
    ASSERT_STREQ(out, "at://x");
    ASSERT_EQ(mdw_xrpc_unescape("%2", 2, out, sizeof out), -1);
    ASSERT_EQ(mdw_xrpc_unescape("%", 1, out, sizeof out), -1);
    ASSERT_EQ(mdw_xrpc_unescape("a%zz", 4, out, sizeof out), -1);
    ASSERT_EQ(mdw_xrpc_unescape("a%00b", 5, out, sizeof out), -1);
    ASSERT_EQ(mdw_xrpc_unescape("abcd", 4, out, 4), -1); /* no room for the NUL */
    ASSERT_EQ(mdw_xrpc_unescape("abc", 3, out, 4), 3);
    ASSERT_EQ(mdw_xrpc_unescape("", 0, out, sizeof out), 0);
    ASSERT_STREQ(out, "");
}

TEST(cursor_syntax)
{
    ASSERT(mdw_xrpc_cursor_valid("AAAAAZPx-_09az", 14));
    ASSERT(!mdw_xrpc_cursor_valid("", 0));
    ASSERT(!mdw_xrpc_cursor_valid("abc=", 4));
    ASSERT(!mdw_xrpc_cursor_valid("ab+c", 4));
    ASSERT(!mdw_xrpc_cursor_valid("ab/c", 4));
    ASSERT(!mdw_xrpc_cursor_valid("a c", 3));
    char c[MDW_INDEX_CURSOR_MAX + 1];
    memset(c, 'A', sizeof c);
    ASSERT(mdw_xrpc_cursor_valid(c, MDW_INDEX_CURSOR_MAX - 1));
    ASSERT(!mdw_xrpc_cursor_valid(c, MDW_INDEX_CURSOR_MAX));
}

static int parse(const char *q, mdw_xrpc_feed_params *p, char *msg)
{
    return mdw_xrpc_feed_params_parse(q, strlen(q), p, msg, 160);
}

TEST(params_good)
{
    mdw_xrpc_feed_params p;
    char msg[160];
    ASSERT_OK(parse(FEED_Q, &p, msg));
    ASSERT_STREQ(p.owner_did, FAKE_OWNER);
    ASSERT_STREQ(p.hashtag_id, FAKE_ID);
    ASSERT_EQ(p.limit, 50);
    ASSERT_STREQ(p.cursor, "");
    ASSERT_OK(parse("limit=1&" FEED_Q "&cursor=abc_-9", &p, msg));
    ASSERT_EQ(p.limit, 1);
    ASSERT_STREQ(p.cursor, "abc_-9");
    ASSERT_OK(parse(FEED_Q "&limit=100&cursor=", &p, msg)); /* empty cursor = first page */
    ASSERT_EQ(p.limit, 100);
    ASSERT_STREQ(p.cursor, "");
    ASSERT_OK(parse(FEED_Q "&limit=007", &p, msg));
    ASSERT_EQ(p.limit, 7);
    /* percent-encoded feed, as clients send it; unknown parameters ignored */
    ASSERT_OK(parse("feed=at%3A%2F%2Fdid%3Aplc%3Afakeowner0000000000000%2Fapp.bsky.feed."
                    "generator%2F0a1b2c3d&foo=bar&&x",
                    &p, msg));
    ASSERT_STREQ(p.owner_did, FAKE_OWNER);
}

TEST(params_bad)
{
    static const struct {
        const char *q, *msg;
    } cases[] = {
        {"", "must have the property \"feed\""},
        {"limit=5", "must have the property \"feed\""},
        {"feed=", "feed must be an AT-URI"},
        {"feed=at://did:plc:x/app.bsky.feed.generator/XYZ", "feed must be an AT-URI"},
        {"feed", "feed must be an AT-URI"},
        {FEED_Q "&" FEED_Q, "feed given more than once"},
        {FEED_Q "&limit=0", "limit can not be less than 1"},
        {FEED_Q "&limit=101", "limit can not be greater than 100"},
        {FEED_Q "&limit=99999999", "limit can not be greater than 100"},
        {FEED_Q "&limit=9999999999999999999999", "limit must be an integer"},
        {FEED_Q "&limit=abc", "limit must be an integer"},
        {FEED_Q "&limit=-1", "limit must be an integer"},
        {FEED_Q "&limit=1.5", "limit must be an integer"},
        {FEED_Q "&limit=+5", "limit must be an integer"}, /* '+' decodes to a space */
        {FEED_Q "&limit=0x10", "limit must be an integer"},
        {FEED_Q "&limit=", "limit must be an integer"},
        {FEED_Q "&limit=5&limit=6", "limit given more than once"},
        {FEED_Q "&cursor=a%2Fb", "malformed cursor"},
        {FEED_Q "&cursor=abc=", "malformed cursor"},
        {FEED_Q "&cursor=1&cursor=2", "cursor given more than once"},
        {FEED_Q "&cursor=%zz", "malformed percent-encoding"},
        {"feed=at%3", "malformed percent-encoding"},
        {FEED_Q "&x=%00", "malformed percent-encoding"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mdw_xrpc_feed_params p;
        char msg[160] = "";
        int rc = parse(cases[i].q, &p, msg);
        ASSERT_MSG(rc == MDW_EMALFORMED, "%s -> %d", cases[i].q, rc);
        ASSERT_MSG(strstr(msg, cases[i].msg) != NULL, "%s -> \"%s\"", cases[i].q, msg);
    }
    char cur[MDW_INDEX_CURSOR_MAX + 160];
    int n = snprintf(cur, sizeof cur, "%s&cursor=", FEED_Q);
    memset(cur + n, 'A', MDW_INDEX_CURSOR_MAX);
    cur[n + MDW_INDEX_CURSOR_MAX] = '\0';
    mdw_xrpc_feed_params p;
    char msg[160];
    ASSERT_EQ(parse(cur, &p, msg), MDW_EMALFORMED);
    ASSERT_CONTAINS(msg, "malformed cursor");

    char big[MDW_MAX_HTTP_QUERY_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_EQ(parse(big, &p, msg), MDW_ETOOBIG);
}

TEST(error_json)
{
    mdw_buf b = MDW_BUF_INIT(1024);
    ASSERT_OK(mdw_xrpc_error_json(&b, "InvalidRequest", "bad \"x\"\n"));
    ASSERT_STREQ(b.data, "{\"error\":\"InvalidRequest\",\"message\":\"bad \\\"x\\\"\\n\"}");
    cJSON *j = cJSON_Parse(b.data);
    ASSERT(j);
    ASSERT_STREQ(cJSON_GetObjectItem(j, "message")->valuestring, "bad \"x\"\n");
    cJSON_Delete(j);
    mdw_buf_release(&b);
}

/* ---- routing ------------------------------------------------------------------------------- */

static fake_source fsrc;
static mdw_xrpc_server server;

static void server_init(void)
{
    memset(&fsrc, 0, sizeof fsrc);
    memset(&server, 0, sizeof server);
    server.source = fake_source_make(&fsrc);
    server.service_did = "did:web:feeds.example.org";
    server.hostname = "feeds.example.org";
}

/* Serves one request; returns the reply (caller releases). */
static mdw_xrpc_reply call(const char *verb, const char *target)
{
    mdw_xrpc_request q = {verb, target, strlen(target), NULL, NULL};
    mdw_xrpc_reply r;
    mdw_xrpc_reply_init(&r);
    if (mdw_xrpc_serve(&server, &q, &r) != 0)
        r.status = -1;
    return r;
}

/* Status and, for an error, the XRPC error name. */
static int expect(const char *verb, const char *target, int status, const char *error)
{
    mdw_xrpc_reply r = call(verb, target);
    int ok = r.status == status;
    if (ok && error) {
        cJSON *j = cJSON_Parse(r.body.data ? r.body.data : "");
        cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
        cJSON *m = j ? cJSON_GetObjectItem(j, "message") : NULL;
        ok = cJSON_IsString(e) && strcmp(e->valuestring, error) == 0 && cJSON_IsString(m) &&
             cJSON_GetArraySize(j) == 2;
        cJSON_Delete(j);
    }
    if (!ok)
        fprintf(stderr, "  %s %s -> %d %s (want %d %s)\n", verb, target, r.status,
                r.body.data ? r.body.data : "", status, error ? error : "");
    mdw_xrpc_reply_release(&r);
    return ok;
}

TEST(routing_conventions)
{
    server_init();
    ASSERT(expect("GET", "/xrpc/_health", 200, NULL));
    ASSERT(expect("HEAD", "/xrpc/_health", 200, NULL));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q, 200, NULL));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getFeedSkeleton/?" FEED_Q, 200, NULL));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.describeFeedGenerator", 200, NULL));
    /* known method, wrong verb */
    ASSERT(expect("POST", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q, 400, "InvalidRequest"));
    ASSERT(expect("DELETE", "/xrpc/app.bsky.feed.describeFeedGenerator", 400, "InvalidRequest"));
    ASSERT(expect("POST", "/xrpc/_health", 400, "InvalidRequest"));
    /* unknown method, any verb */
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getTimeline", 501, "MethodNotImplemented"));
    ASSERT(expect("POST", "/xrpc/com.atproto.repo.createRecord", 501, "MethodNotImplemented"));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getfeedskeleton", 501, "MethodNotImplemented"));
    /* not an NSID */
    ASSERT(expect("GET", "/xrpc/", 400, "InvalidRequest"));
    ASSERT(expect("GET", "/xrpc/a%2Eb", 400, "InvalidRequest"));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getFeedSkeleton/x", 400, "InvalidRequest"));
    /* outside /xrpc */
    ASSERT(expect("GET", "/", 404, "NotFound"));
    ASSERT(expect("GET", "/xrpc", 404, "NotFound"));
    ASSERT(expect("GET", "/.well-known/atproto-did", 404, "NotFound"));
    ASSERT(expect("GET", "/metrics/x", 404, "NotFound"));
    ASSERT(expect("POST", "/.well-known/did.json", 405, "MethodNotAllowed"));
    ASSERT(expect("GET", "/.well-known/did.json?x=1", 200, NULL));
    ASSERT(expect("GET", "/metrics", 200, NULL));
    ASSERT(expect("OPTIONS", "/xrpc/app.bsky.feed.getFeedSkeleton", 204, NULL));
}

TEST(feed_errors)
{
    server_init();
    const char *fs = "/xrpc/app.bsky.feed.getFeedSkeleton";
    char t[512];
#define T(q) (snprintf(t, sizeof t, "%s?%s", fs, q), t)
    ASSERT(expect("GET", fs, 400, "InvalidRequest"));
    ASSERT(
        expect("GET", T("feed=at://did:plc:x/app.bsky.feed.post/0a1b2c3d"), 400, "InvalidRequest"));
    ASSERT(expect("GET", T(FEED_Q "&limit=0"), 400, "InvalidRequest"));
    ASSERT(expect("GET", T(FEED_Q "&limit=101"), 400, "InvalidRequest"));
    ASSERT(expect("GET", T(FEED_Q "&limit=ten"), 400, "InvalidRequest"));
    ASSERT(expect("GET", T(FEED_Q "&cursor=%2F%2F"), 400, "InvalidRequest"));
    /* well-formed cursor the source cannot decode */
    ASSERT(expect("GET", T(FEED_Q "&cursor=notanumber"), 400, "InvalidRequest"));
    ASSERT(expect("GET", T("feed=at://did:plc:other/app.bsky.feed.generator/" FAKE_ID), 400,
                  "UnknownFeed"));
    ASSERT(expect("GET", T("feed=at://" FAKE_OWNER "/app.bsky.feed.generator/ffffffff"), 400,
                  "UnknownFeed"));
    fsrc.fail = MDW_ECORRUPT;
    ASSERT(expect("GET", T(FEED_Q), 500, "InternalServerError"));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.describeFeedGenerator", 500, "InternalServerError"));
    fsrc.fail = 0;
    /* over the limits: 414 */
    char big[MDW_MAX_HTTP_URL_BYTES + 64];
    int n = snprintf(big, sizeof big, "%s?%s&pad=", fs, FEED_Q);
    memset(big + n, 'x', MDW_MAX_HTTP_QUERY_BYTES);
    big[n + MDW_MAX_HTTP_QUERY_BYTES] = '\0';
    ASSERT(expect("GET", big, 414, "InvalidRequest"));
    memset(big, 'x', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = '\0';
    ASSERT(expect("GET", big, 414, "InvalidRequest"));
#undef T
}

TEST(feed_pages)
{
    server_init();
    mdw_xrpc_reply r = call("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=7");
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(r.content_type, "application/json; charset=utf-8");
    ASSERT_EQ(fsrc.last_limit, 7);
    ASSERT_STREQ(fsrc.last_cursor, "");
    cJSON *j = cJSON_Parse(r.body.data);
    mdw_xrpc_reply_release(&r);
    ASSERT(j);
    ASSERT_EQ(cJSON_GetArraySize(j), 2);
    ASSERT_STREQ(cJSON_GetObjectItem(j, "cursor")->valuestring, "7");
    cJSON *feed = cJSON_GetObjectItem(j, "feed");
    ASSERT_EQ(cJSON_GetArraySize(feed), 7);
    cJSON *first = cJSON_GetArrayItem(feed, 0);
    ASSERT_EQ(cJSON_GetArraySize(first), 1);
    ASSERT_STREQ(cJSON_GetObjectItem(first, "post")->valuestring,
                 "at://did:plc:author000/app.bsky.feed.post/3k000120");
    cJSON_Delete(j);
    ASSERT_EQ(r.posts, 7);

    /* default limit, cursor passed through, last page has no cursor */
    r = call("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&cursor=100");
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(fsrc.last_limit, 50);
    ASSERT_STREQ(fsrc.last_cursor, "100");
    j = cJSON_Parse(r.body.data);
    mdw_xrpc_reply_release(&r);
    ASSERT(j);
    ASSERT(!cJSON_GetObjectItem(j, "cursor"));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "feed")), 20);
    cJSON_Delete(j);

    r = call("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&cursor=120");
    ASSERT_STREQ(r.body.data, "{\"feed\":[]}");
    mdw_xrpc_reply_release(&r);
}

TEST(feed_json_escaping)
{
    /* The index never stores such URIs; the page must still be valid JSON. */
    server_init();
    const char *odd[] = {"at://did:plc:a/app.bsky.feed.post/\"q\\\n",
                         "at://did:plc:a/x/\xc3\xa9\x01",
                         "at://did:plc:a/app.bsky.feed.post/3kplain"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        fsrc.first_uri = odd[i];
        mdw_xrpc_reply r = call("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=2");
        ASSERT_EQ(r.status, 200);
        cJSON *j = cJSON_Parse(r.body.data);
        mdw_xrpc_reply_release(&r);
        ASSERT(j);
        cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "feed"), 0);
        int same = strcmp(cJSON_GetObjectItem(first, "post")->valuestring, odd[i]) == 0;
        cJSON_Delete(j);
        ASSERT_MSG(same, "uri %zu", i);
    }
}

TEST(describe_and_did)
{
    server_init();
    mdw_xrpc_reply r = call("GET", "/xrpc/app.bsky.feed.describeFeedGenerator");
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(r.body.data,
                 "{\"did\":\"did:web:feeds.example.org\",\"feeds\":[{\"uri\":\"" FEED_URI
                 "\"},{\"uri\":\"at://did:web:example.com/app.bsky.feed.generator/ffffffff\"}]}");
    mdw_xrpc_reply_release(&r);

    r = call("GET", "/.well-known/did.json");
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(r.body.data,
                 "{\"@context\":[\"https://www.w3.org/ns/did/v1\"],\"id\":\"did:web:feeds."
                 "example.org\",\"service\":[{\"id\":\"#bsky_fg\",\"type\":\"BskyFeedGenerator\","
                 "\"serviceEndpoint\":\"https://feeds.example.org\"}]}");
    mdw_xrpc_reply_release(&r);

    r = call("GET", "/xrpc/_health");
    ASSERT_STREQ(r.body.data, "{\"version\":\"" MDW_VERSION "\"}");
    mdw_xrpc_reply_release(&r);
}

TEST(metrics_render)
{
    static mdw_counter c = MDW_COUNTER_INIT("meadow_test_feedgen_things_total", "kind=\"a\"",
                                            "things seen by the feedgen unit test");
    mdw_counter_register(&c);
    mdw_counter_add(&c, 42);
    server_init();
    mdw_xrpc_reply r = call("GET", "/metrics");
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    ASSERT_CONTAINS(r.body.data, "# TYPE meadow_test_feedgen_things_total counter\n");
    ASSERT_CONTAINS(r.body.data, "meadow_test_feedgen_things_total{kind=\"a\"} 42\n");
    mdw_xrpc_reply_release(&r);
}

TEST(preflight)
{
    server_init();
    mdw_xrpc_request q = {"OPTIONS", "/xrpc/app.bsky.feed.getFeedSkeleton", 35, NULL,
                          "authorization,content-type"};
    mdw_xrpc_reply r;
    mdw_xrpc_reply_init(&r);
    ASSERT_OK(mdw_xrpc_serve(&server, &q, &r));
    ASSERT_EQ(r.status, 204);
    ASSERT_EQ(r.body.len, 0);
    ASSERT_STREQ(r.allow, "GET,HEAD,OPTIONS");
    ASSERT_STREQ(r.acr_headers, "authorization,content-type");
    mdw_xrpc_reply_release(&r);
}

static int auth_calls;
static int fake_auth(void *ctx, const char *authorization, const char *lxm,
                     mdw_feedgen_auth_result *res)
{
    auth_calls++;
    if (strcmp(lxm, MDW_NSID_GET_FEED_SKELETON) != 0)
        return -1;
    if (!authorization)
        return 0; /* anonymous */
    if (strcmp(authorization, "Bearer good") == 0) {
        snprintf(res->viewer_did, sizeof res->viewer_did, "did:plc:viewer");
        return 0;
    }
    snprintf(res->error, sizeof res->error, "BadJwtSignature");
    snprintf(res->message, sizeof res->message, "jwt signature does not match jwt issuer");
    return -1;
}

TEST(auth_hook)
{
    server_init();
    server.auth = fake_auth;
    auth_calls = 0;
    const char *t = "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q;
    mdw_xrpc_request q = {"GET", t, strlen(t), "Bearer good", NULL};
    mdw_xrpc_reply r;
    mdw_xrpc_reply_init(&r);
    ASSERT_OK(mdw_xrpc_serve(&server, &q, &r));
    ASSERT_EQ(r.status, 200);
    ASSERT_STREQ(r.viewer_did, "did:plc:viewer");
    mdw_xrpc_reply_release(&r);

    q.authorization = "Bearer bad";
    mdw_xrpc_reply_init(&r);
    ASSERT_OK(mdw_xrpc_serve(&server, &q, &r));
    ASSERT_EQ(r.status, 401);
    ASSERT_STREQ(r.body.data, "{\"error\":\"BadJwtSignature\",\"message\":\"jwt signature does "
                              "not match jwt issuer\"}");
    mdw_xrpc_reply_release(&r);

    /* parameters are checked before auth; other routes never call it */
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.getFeedSkeleton?feed=x", 400, "InvalidRequest"));
    ASSERT(expect("GET", "/xrpc/app.bsky.feed.describeFeedGenerator", 200, NULL));
    ASSERT_EQ(auth_calls, 2);
}

int main(void)
{
    RUN(unescape);
    RUN(cursor_syntax);
    RUN(params_good);
    RUN(params_bad);
    RUN(error_json);
    RUN(routing_conventions);
    RUN(feed_errors);
    RUN(feed_pages);
    RUN(feed_json_escaping);
    RUN(describe_and_did);
    RUN(metrics_render);
    RUN(preflight);
    RUN(auth_hook);
    return TEST_REPORT();
}
