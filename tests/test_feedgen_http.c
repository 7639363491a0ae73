/*
** tests/test_feedgen_http.c — the real libmicrohttpd server (feedgen/http.c)
** on a free loopback port, called with libcurl and raw sockets, over the fake
** feed source: CORS headers, HEAD, preflight, libmicrohttpd's own limits
** (414 request line, 431 headers), the connection cap, the idle timeout,
** graceful stop finishing an in-flight request, and the HTTP metrics.
*/
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"
#include "feedgen/feedgen.h"
#include "tests/test.h"
#include "tests/test_feedgen_fake.h"
#include "common/banned.h"

#define FEED_Q "feed=at://" FAKE_OWNER "/app.bsky.feed.generator/" FAKE_ID

static fake_source fsrc;
static mdw_config cfg;
static int cfg_loaded;

static mdw_feedgen *start(int threads, int max_conn, int timeout_s)
{
    memset(&fsrc, 0, sizeof fsrc);
    if (cfg_loaded)
        mdw_config_release(&cfg);
    mdw_config_defaults(&cfg);
    cfg_loaded = 1;
    cfg.http_threads = threads;
    cfg.http_max_connections = max_conn;
    cfg.http_timeout_s = timeout_s;
    mdw_feedgen_opts o = {&cfg, fake_source_make(&fsrc), mdw_clock_real(), NULL, NULL, 0};
    mdw_feedgen *fg = NULL;
    if (mdw_feedgen_start_opts(&fg, &o) != 0)
        return NULL;
    return fg;
}

typedef struct resp {
    long status;
    mdw_buf body;
    mdw_buf headers;
    CURLcode rc;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    mdw_buf *b = ud;
    return mdw_buf_append(b, p, sz * n) ? 0 : sz * n;
}

static resp http(int port, const char *method, const char *path, const char *header)
{
    resp r;
    memset(&r, 0, sizeof r);
    mdw_buf_init(&r.body, 1 << 20);
    mdw_buf_init(&r.headers, 1 << 16);
    char url[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    if (header)
        hl = curl_slist_append(hl, header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (!r.body.data)
        mdw_buf_puts(&r.body, "");
    if (!r.headers.data)
        mdw_buf_puts(&r.headers, "");
    return r;
}

static void resp_release(resp *r)
{
    mdw_buf_release(&r->body);
    mdw_buf_release(&r->headers);
}

/* Raw TCP connection to the server; rcvbuf > 0 sets a small receive buffer first. */
static int tcp_connect_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int tcp_connect(int port)
{
    return tcp_connect_rcvbuf(port, 0);
}

/* Sends raw bytes, returns the status code of the reply (0 if the connection closed first). */
static int raw_status(int port, const char *req, size_t n)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char buf[256] = "";
    ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -2;
    return status;
}

TEST(basic_routes)
{
    mdw_feedgen *fg = start(2, 64, 10);
    ASSERT(fg);
    int port = mdw_feedgen_port(fg);
    ASSERT(port > 0);

    resp r = http(port, "GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=3", NULL);
    ASSERT_EQ(r.rc, CURLE_OK);
    ASSERT_EQ(r.status, 200);
    ASSERT_CONTAINS(r.headers.data, "Access-Control-Allow-Origin: *\r\n");
    ASSERT_CONTAINS(r.headers.data, "Content-Type: application/json; charset=utf-8\r\n");
    ASSERT_CONTAINS(r.body.data, "{\"cursor\":\"3\",\"feed\":[{\"post\":\"at://");
    resp_release(&r);

    r = http(port, "GET", "/xrpc/app.bsky.feed.getFeedSkeleton?feed=nope", NULL);
    ASSERT_EQ(r.status, 400);
    ASSERT_CONTAINS(r.headers.data, "Access-Control-Allow-Origin: *\r\n"); /* errors too */
    ASSERT_CONTAINS(r.body.data, "\"error\":\"InvalidRequest\"");
    resp_release(&r);

    r = http(port, "POST", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q, NULL);
    ASSERT_EQ(r.status, 400);
    ASSERT_CONTAINS(r.body.data, "Incorrect HTTP method (POST) expected GET");
    resp_release(&r);

    r = http(port, "GET", "/xrpc/app.bsky.actor.getProfile", NULL);
    ASSERT_EQ(r.status, 501);
    resp_release(&r);

    r = http(port, "GET", "/index.html", NULL);
    ASSERT_EQ(r.status, 404);
    resp_release(&r);

    r = http(port, "HEAD", "/xrpc/_health", NULL);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body.len, 0);
    ASSERT_CONTAINS(r.headers.data, "Content-Length: 19\r\n"); /* {"version":"0.1.0"} */
    resp_release(&r);

    r = http(port, "OPTIONS", "/xrpc/app.bsky.feed.getFeedSkeleton",
             "Access-Control-Request-Headers: authorization");
    ASSERT_EQ(r.status, 204);
    ASSERT_CONTAINS(r.headers.data, "Access-Control-Allow-Origin: *\r\n");
    ASSERT_CONTAINS(r.headers.data, "Access-Control-Allow-Methods: GET,HEAD,OPTIONS\r\n");
    ASSERT_CONTAINS(r.headers.data, "Access-Control-Allow-Headers: authorization\r\n");
    resp_release(&r);

    r = http(port, "GET", "/metrics", NULL);
    ASSERT_EQ(r.status, 200);
    ASSERT_CONTAINS(r.body.data, "# TYPE meadow_feedgen_requests_total counter");
    ASSERT_CONTAINS(r.body.data,
                    "meadow_feedgen_requests_total{route=\"getFeedSkeleton\",status=\"200\"} ");
    ASSERT_CONTAINS(r.body.data,
                    "meadow_feedgen_requests_total{route=\"xrpc_other\",status=\"501\"} 1\n");
    ASSERT_CONTAINS(r.body.data,
                    "meadow_feedgen_request_seconds_bucket{route=\"getFeedSkeleton\",le=\"+Inf\"}");
    ASSERT_CONTAINS(r.body.data, "meadow_feedgen_posts_served_total ");
    ASSERT_CONTAINS(r.body.data, "meadow_feedgen_requests_in_flight 1\n"); /* this one */
    resp_release(&r);
    mdw_feedgen_stop(fg);
}

TEST(keep_alive)
{
    /* Bodiless GETs keep the connection (one TCP connection for many requests). */
    mdw_feedgen *fg = start(2, 64, 10);
    ASSERT(fg);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/xrpc/app.bsky.feed.getFeedSkeleton?%s&limit=2",
             mdw_feedgen_port(fg), FEED_Q);
    mdw_buf body = MDW_BUF_INIT(1 << 16);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    long connects = -1, status = 0, total_connects = 0;
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        ASSERT_EQ(status, 200);
        total_connects += connects;
    }
    curl_easy_cleanup(c);
    mdw_buf_release(&body);
    ASSERT_EQ(total_connects, 1);

    /* A request with a body is answered at once and the connection closed. */
    int port = mdw_feedgen_port(fg);
    const char post[] = "POST /xrpc/app.bsky.feed.getFeedSkeleton HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 100000\r\n\r\nabc";
    int fd = tcp_connect(port);
    ASSERT(fd >= 0);
    ASSERT_EQ(send(fd, post, sizeof post - 1, MSG_NOSIGNAL), (ssize_t)sizeof post - 1);
    char buf[2048];
    ssize_t got = 0, r;
    while ((r = recv(fd, buf + got, sizeof buf - 1 - (size_t)got, 0)) > 0)
        got += r;
    close(fd);
    buf[got > 0 ? got : 0] = '\0';
    ASSERT_CONTAINS(buf, "HTTP/1.1 400 ");
    ASSERT_CONTAINS(buf, "Incorrect HTTP method (POST) expected GET");
    ASSERT_EQ(r, 0); /* closed by the server, without waiting for the body */
    mdw_feedgen_stop(fg);
}

/* The fake source's body for (cursor, limit), as serve_feed writes it. */
static void fake_body(mdw_buf *b, long start, long limit, const char *first)
{
    long end = start + limit < FAKE_POSTS ? start + limit : FAKE_POSTS;
    mdw_buf_reset(b);
    if (end < FAKE_POSTS)
        mdw_buf_printf(b, "{\"cursor\":\"%ld\",\"feed\":[", end);
    else
        mdw_buf_puts(b, "{\"feed\":[");
    for (long i = start; i < end; i++) {
        mdw_buf_puts(b, i > start ? ",{\"post\":\"" : "{\"post\":\"");
        if (i == start && first)
            mdw_buf_puts(b, first);
        else {
            char uri[FAKE_URI_MAX];
            mdw_buf_puts(b, fake_uri(i, uri));
        }
        mdw_buf_puts(b, "\"}");
    }
    mdw_buf_puts(b, "]}");
}

/* Reads one response from fd into head/body (body per Content-Length; none for HEAD). */
static int read_response(int fd, mdw_buf *in, int head_only, mdw_buf *status_line, mdw_buf *body)
{
    char chunk[65536];
    for (;;) {
        char *end = in->data ? strstr(in->data, "\r\n\r\n") : NULL;
        if (end) {
            size_t hlen = (size_t)(end - in->data) + 4;
            const char *cl = strstr(in->data, "Content-Length: ");
            size_t blen = cl && cl < end ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
            if (head_only)
                blen = 0;
            if (in->len >= hlen + blen) {
                mdw_buf_reset(status_line);
                mdw_buf_append(status_line, in->data,
                               (size_t)(strstr(in->data, "\r\n") - in->data));
                mdw_buf_reset(body);
                mdw_buf_append(body, in->data + hlen, blen);
                size_t rest = in->len - hlen - blen;
                memmove(in->data, in->data + hlen + blen, rest + 1);
                in->len = rest;
                return 0;
            }
        }
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r <= 0)
            return -1;
        if (mdw_buf_append(in, chunk, (size_t)r))
            return -1;
    }
}

TEST(pipelined_responses_intact)
{
    /*
    ** Responses are sent from a buffer the connection reuses: five requests
    ** pipelined in one write, the client reading only after the server's
    ** socket buffer filled up mid-way through a 200 KB body, must come back
    ** byte for byte (a later request must not overwrite a body still being
    ** sent), including a small body right after a big one (the big buffer
    ** is dropped then) and a HEAD.
    */
    mdw_feedgen *fg = start(1, 64, 10);
    ASSERT(fg);
    static char huge[200001];
    for (size_t i = 0; i < sizeof huge - 1; i++)
        huge[i] = (char)('a' + i % 26);
    fsrc.first_uri = huge;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET /xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=100 HTTP/1.1\r\n"
                     "Host: x\r\n\r\n"
                     "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\n"
                     "HEAD /xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=3 HTTP/1.1\r\n"
                     "Host: x\r\n\r\n"
                     "GET /xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q "&limit=3&cursor=5 "
                     "HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\n");
    /* A small receive buffer, so the big body stalls in the server's send. */
    int fd = tcp_connect_rcvbuf(mdw_feedgen_port(fg), 4096);
    ASSERT(fd >= 0);
    ASSERT_EQ(send(fd, req, (size_t)n, MSG_NOSIGNAL), (ssize_t)n);
    usleep(300 * 1000); /* the server fills the socket buffers and waits */

    mdw_buf in = MDW_BUF_INIT(1 << 22), line = MDW_BUF_INIT(256), body = MDW_BUF_INIT(1 << 22),
            want = MDW_BUF_INIT(1 << 22);
    const char *health = "{\"version\":\"" MDW_VERSION "\"}";

    ASSERT_OK(read_response(fd, &in, 0, &line, &body));
    ASSERT_STREQ(line.data, "HTTP/1.1 200 OK");
    fake_body(&want, 0, 100, huge);
    ASSERT(body.len > 200000);
    ASSERT_EQ(body.len, want.len);
    ASSERT(memcmp(body.data, want.data, want.len) == 0);

    ASSERT_OK(read_response(fd, &in, 0, &line, &body));
    ASSERT_STREQ(line.data, "HTTP/1.1 200 OK");
    ASSERT_STREQ(body.data, health);

    ASSERT_OK(read_response(fd, &in, 1, &line, &body));
    ASSERT_STREQ(line.data, "HTTP/1.1 200 OK");
    ASSERT_EQ(body.len, 0);

    ASSERT_OK(read_response(fd, &in, 0, &line, &body));
    ASSERT_STREQ(line.data, "HTTP/1.1 200 OK");
    fake_body(&want, 5, 3, huge);
    ASSERT_STREQ(body.data, want.data);

    ASSERT_OK(read_response(fd, &in, 0, &line, &body));
    ASSERT_STREQ(body.data, health);
    ASSERT_EQ(in.len, 0);
    close(fd);
    mdw_buf_release(&in);
    mdw_buf_release(&line);
    mdw_buf_release(&body);
    mdw_buf_release(&want);
    fsrc.first_uri = NULL;
    mdw_feedgen_stop(fg);
}

TEST(size_limits)
{
    mdw_feedgen *fg = start(1, 64, 10);
    ASSERT(fg);
    int port = mdw_feedgen_port(fg);
    static char req[80000];

    /* A target between our limit and the connection buffer: our 414, as JSON. */
    int n = snprintf(req, sizeof req, "GET /xrpc/_health?x=");
    memset(req + n, 'a', 9000);
    n += 9000;
    n += snprintf(req + n, sizeof req - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(raw_status(port, req, (size_t)n), 414);

    /* A request line bigger than the connection's memory: libmicrohttpd's 414. */
    n = snprintf(req, sizeof req, "GET /xrpc/_health?x=");
    memset(req + n, 'a', 40000);
    n += 40000;
    n += snprintf(req + n, sizeof req - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(raw_status(port, req, (size_t)n), 414);

    /* Headers bigger than the connection's memory: 431. */
    n = snprintf(req, sizeof req, "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 40; i++) {
        n += snprintf(req + n, sizeof req - (size_t)n, "X-Pad-%d: ", i);
        memset(req + n, 'b', 1000);
        n += 1000;
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    ASSERT_EQ(raw_status(port, req, (size_t)n), 431);

    /* Ordinary requests still work afterwards. */
    const char ok[] = "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(raw_status(port, ok, sizeof ok - 1), 200);
    mdw_feedgen_stop(fg);
}

/* The reply's status on fd, 0 when closed, -1 when nothing came within timeout_ms. */
static int read_status(int fd, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256] = "";
    ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;
    buf[r] = '\0';
    int status = 0;
    return sscanf(buf, "HTTP/1.%*d %d", &status) == 1 ? status : -2;
}

TEST(connection_cap)
{
    /* Over the cap libmicrohttpd stops accepting: a new client waits in the backlog. */
    mdw_feedgen *fg = start(1, 2, 10);
    ASSERT(fg);
    int port = mdw_feedgen_port(fg);
    int a = tcp_connect(port), b = tcp_connect(port);
    ASSERT(a >= 0 && b >= 0);
    usleep(200000); /* let the server accept both */
    const char ok[] = "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\n";
    int c = tcp_connect(port);
    ASSERT(c >= 0);
    ASSERT_EQ(send(c, ok, sizeof ok - 1, MSG_NOSIGNAL), (ssize_t)sizeof ok - 1);
    ASSERT_EQ(read_status(c, 700), -1); /* not served while two are open */
    close(a);
    ASSERT_EQ(read_status(c, 3000), 200); /* served once a slot frees */
    close(c);
    ASSERT_EQ(send(b, ok, sizeof ok - 1, MSG_NOSIGNAL), (ssize_t)sizeof ok - 1);
    ASSERT_EQ(read_status(b, 3000), 200);
    close(b);
    mdw_feedgen_stop(fg);
}

TEST(idle_timeout)
{
    mdw_feedgen *fg = start(1, 16, 1);
    ASSERT(fg);
    int fd = tcp_connect(mdw_feedgen_port(fg));
    ASSERT(fd >= 0);
    const char partial[] = "GET /xrpc/_health HTTP/1.1\r\nHost: x\r\n"; /* never finished */
    ASSERT_EQ(send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL), (ssize_t)sizeof partial - 1);
    char buf[64];
    double t0 = (double)mdw_clock_mono_us(mdw_clock_real()) / 1e6;
    ssize_t r = recv(fd, buf, sizeof buf, 0); /* SO_RCVTIMEO 5 s */
    double dt = (double)mdw_clock_mono_us(mdw_clock_real()) / 1e6 - t0;
    close(fd);
    ASSERT_EQ(r, 0); /* closed by the server */
    ASSERT_MSG(dt >= 0.5 && dt < 4.0, "closed after %.2f s", dt);
    mdw_feedgen_stop(fg);
}

struct slow_call {
    int port;
    resp r;
};

static void *slow_thread(void *arg)
{
    struct slow_call *s = arg;
    s->r = http(s->port, "GET", "/xrpc/app.bsky.feed.getFeedSkeleton?" FEED_Q, NULL);
    return NULL;
}

TEST(stop_finishes_in_flight)
{
    mdw_feedgen *fg = start(2, 64, 10);
    ASSERT(fg);
    int port = mdw_feedgen_port(fg);
    fsrc.delay_ms = 600;
    struct slow_call s = {port, {0}};
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, slow_thread, &s));
    for (int i = 0; i < 200 && fsrc.calls == 0; i++)
        usleep(5000);
    ASSERT_EQ(fsrc.calls, 1); /* the request is inside the handler now */
    mdw_feedgen_stop(fg);     /* must wait for it */
    pthread_join(th, NULL);
    ASSERT_EQ(s.r.rc, CURLE_OK);
    ASSERT_EQ(s.r.status, 200);
    ASSERT_CONTAINS(s.r.body.data, "\"feed\":[{\"post\":");
    ASSERT_CONTAINS(s.r.headers.data, "Connection: close");
    resp_release(&s.r);
    /* and the port is closed afterwards */
    ASSERT_EQ(tcp_connect(port), -1);
}

TEST(port_in_use)
{
    mdw_feedgen *fg = start(1, 16, 10);
    ASSERT(fg);
    mdw_config c2;
    mdw_config_defaults(&c2);
    fake_source f2;
    memset(&f2, 0, sizeof f2);
    mdw_feedgen_opts o = {&c2, fake_source_make(&f2), NULL, NULL, NULL, mdw_feedgen_port(fg)};
    mdw_feedgen *fg2 = NULL;
    int rc = mdw_feedgen_start_opts(&fg2, &o);
    mdw_config_release(&c2);
    ASSERT(rc < 0);
    ASSERT(fg2 == NULL);
    mdw_feedgen_stop(fg);
    mdw_feedgen_stop(NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mdw_log_set_level(MDW_LOG_ERROR);
    RUN(basic_routes);
    RUN(keep_alive);
    RUN(pipelined_responses_intact);
    RUN(size_limits);
    RUN(connection_cap);
    RUN(idle_timeout);
    RUN(stop_finishes_in_flight);
    RUN(port_in_use);
    if (cfg_loaded)
        mdw_config_release(&cfg);
    curl_global_cleanup();
    return TEST_REPORT();
}
