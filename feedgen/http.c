/*
** feedgen/http.c — libmicrohttpd glue around feedgen/xrpc.c: daemon setup
** (thread pool of epoll loops, limits, timeouts), per-request bookkeeping,
** HTTP metrics, graceful stop. Why libmicrohttpd: docs/feedgen.md.
*/
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "feedgen/feedgen.h"
#include "feedgen/xrpc.h"
#include "common/banned.h"

/*
** Per-connection memory: holds the request line, the headers and our
** response headers. It must fit MDW_MAX_HTTP_URL_BYTES plus ordinary
** headers; a request line beyond it gets MHD's 414, headers beyond it 431.
*/
#define HTTP_CONN_MEMORY (16u * 1024)

struct mdw_feedgen {
    struct MHD_Daemon *d;
    mdw_xrpc_server xs;
    mdw_clock *clock;
    char *service_did, *hostname;
    int port;
    int drain_s;
    _Atomic int inflight; /* requests whose line was read and not completed */
    _Atomic int draining;
    void (*on_stop)(const void *arg);
    const void *on_stop_arg;
};

/*
** One TCP connection (MHD's socket context, from MHD_OPTION_NOTIFY_CONNECTION),
** and the request in flight on it (also its con_cls while one is). What every
** request needs is kept here and reused, so a keep-alive request allocates
** nothing of ours: its target copy, and the response body, which MHD sends
** straight from this buffer (a connection's next request is read only after
** its response went out, and the connection is closed after its last one).
*/
struct conn {
    int64_t t0_us;
    int called; /* the access handler ran once */
    int status;
    int route;
    size_t len;   /* target's length */
    char *target; /* the raw target, copied before MHD edits it */
    size_t tcap;  /* target's allocation */
    mdw_buf body; /* the response body being sent */
};

/* A body buffer grown past this (a big /metrics, describeFeedGenerator) is not kept. */
#define CONN_BODY_KEEP (64u * 1024)

/* ---- metrics ------------------------------------------------------------------------------- */

static const int tracked_status[] = {200, 204, 400, 401, 404, 405, 414, 500, 501, 503};
#define NSTATUS (sizeof tracked_status / sizeof tracked_status[0] + 1) /* + "other" */

/*
** Two locks: metrics_mu serialises the lazy registration below, gauge_mu
** guards gauge_fg. The registry calls inflight_value under its own lock while
** registration takes the registry's lock, so one mutex for both would order
** them both ways (a deadlock ThreadSanitizer reported).
*/
static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t gauge_mu = PTHREAD_MUTEX_INITIALIZER;
static mdw_counter req_total[MDW_ROUTE_COUNT][NSTATUS];
static char req_labels[MDW_ROUTE_COUNT][NSTATUS][64];
static _Atomic int req_registered[MDW_ROUTE_COUNT][NSTATUS];
static mdw_hist req_seconds[MDW_ROUTE_COUNT];
static char hist_labels[MDW_ROUTE_COUNT][48];
static _Atomic int hist_registered[MDW_ROUTE_COUNT];
static mdw_counter posts_served = MDW_COUNTER_INIT("meadow_feedgen_posts_served_total", NULL,
                                                   "post URIs returned by getFeedSkeleton");
static mdw_counter entries_scanned = MDW_COUNTER_INIT(
    "meadow_feedgen_index_entries_scanned_total", NULL, "index entries read to build feed pages");
static mdw_gauge inflight_gauge;
static mdw_feedgen *gauge_fg; /* the server the in-flight gauge reads (last started) */

static double inflight_value(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&gauge_mu);
    double v = gauge_fg ? (double)atomic_load(&gauge_fg->inflight) : 0.0;
    pthread_mutex_unlock(&gauge_mu);
    return v;
}

static void metrics_init(mdw_feedgen *fg)
{
    pthread_mutex_lock(&gauge_mu);
    gauge_fg = fg;
    pthread_mutex_unlock(&gauge_mu);
    mdw_counter_register(&posts_served);
    mdw_counter_register(&entries_scanned);
    inflight_gauge.name = "meadow_feedgen_requests_in_flight";
    inflight_gauge.help = "HTTP requests being handled";
    inflight_gauge.fn = inflight_value;
    mdw_gauge_register(&inflight_gauge);
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (tracked_status[i] == status)
            return i;
    return NSTATUS - 1;
}

/* Registers on first use, so /metrics lists only the route/status pairs seen. */
static void count_request(int route, int status, int64_t us)
{
    size_t s = status_slot(status);
    if (!atomic_load(&req_registered[route][s])) {
        pthread_mutex_lock(&metrics_mu);
        if (!atomic_load(&req_registered[route][s])) {
            if (s == NSTATUS - 1)
                snprintf(req_labels[route][s], sizeof req_labels[route][s],
                         "route=\"%s\",status=\"other\"", mdw_xrpc_route_name(route));
            else
                snprintf(req_labels[route][s], sizeof req_labels[route][s],
                         "route=\"%s\",status=\"%d\"", mdw_xrpc_route_name(route),
                         tracked_status[s]);
            mdw_counter *c = &req_total[route][s];
            c->name = "meadow_feedgen_requests_total";
            c->help = "HTTP requests by route and status";
            c->labels = req_labels[route][s];
            mdw_counter_register(c);
            atomic_store(&req_registered[route][s], 1);
        }
        pthread_mutex_unlock(&metrics_mu);
    }
    mdw_counter_inc(&req_total[route][s]);

    if (!atomic_load(&hist_registered[route])) {
        pthread_mutex_lock(&metrics_mu);
        if (!atomic_load(&hist_registered[route])) {
            snprintf(hist_labels[route], sizeof hist_labels[route], "route=\"%s\"",
                     mdw_xrpc_route_name(route));
            mdw_hist *h = &req_seconds[route];
            h->name = "meadow_feedgen_request_seconds";
            h->help = "time from request line read to response sent";
            h->labels = hist_labels[route];
            mdw_hist_register(h);
            atomic_store(&hist_registered[route], 1);
        }
        pthread_mutex_unlock(&metrics_mu);
    }
    mdw_hist_observe_us(&req_seconds[route], us);
}

/* ---- MHD callbacks ------------------------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn *cn = xcalloc(1, sizeof *cn);
        mdw_buf_init(&cn->body, MDW_FEEDGEN_MAX_RESPONSE_BYTES);
        *socket_context = cn;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct conn *cn = *socket_context;
        mdw_buf_release(&cn->body);
        free(cn->target);
        free(cn);
        *socket_context = NULL;
    }
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    mdw_feedgen *fg = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *cn = ci ? ci->socket_context : NULL;
    if (!cn)
        return NULL; /* cannot happen (on_connection runs first); on_request refuses */
    size_t n = strlen(uri);
    if (n + 1 > cn->tcap) {
        cn->tcap = n + 1 > 256 ? n + 1 : 256;
        free(cn->target);
        cn->target = xmalloc(cn->tcap);
    }
    cn->t0_us = mdw_clock_mono_us(fg->clock);
    cn->status = 0;
    cn->called = 0;
    cn->route = MDW_ROUTE_NOT_FOUND;
    cn->len = n;
    memcpy(cn->target, uri, n + 1);
    atomic_fetch_add(&fg->inflight, 1);
    return cn;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    mdw_feedgen *fg = cls;
    struct conn *r = *con_cls;
    (void)c;
    (void)toe;
    if (!r)
        return;
    *con_cls = NULL;
    /* status 0: MHD answered by itself (e.g. 431) or the client went away first. */
    if (r->status)
        count_request(r->route, r->status, mdw_clock_mono_us(fg->clock) - r->t0_us);
    atomic_fetch_sub(&fg->inflight, 1);
}

static void add_header(struct MHD_Response *resp, const char *k, const char *v)
{
    if (MHD_add_response_header(resp, k, v) != MHD_YES)
        mdw_warn("feedgen", "could not add response header", "header=%s", k);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    mdw_feedgen *fg = cls;
    struct conn *r = *con_cls;
    if (!r)
        return MHD_NO; /* cannot happen: on_uri always runs first */
    if (r->status) {
        /* Response already queued: discard any body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->called) {
        /*
        ** First call (headers read). A reply queued now is "early" for
        ** libmicrohttpd, which then closes the connection: fine for a request
        ** with a body (none of our routes reads one, so it is never read),
        ** but a bodiless GET must be answered on the next call, or every
        ** request costs a new TCP connection (measured: half the rate).
        */
        r->called = 1;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
        int has_body = te != NULL || (cl != NULL && strspn(cl, "0") != strlen(cl));
        if (!has_body)
            return MHD_YES;
    }

    mdw_xrpc_request q = {
        .verb = method,
        .target = r->target,
        .target_len = r->len,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        .acr_headers =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers"),
    };
    mdw_xrpc_reply rep;
    mdw_xrpc_reply_init(&rep);
    if (r->body.cap > CONN_BODY_KEEP)
        mdw_buf_release(&r->body);
    rep.body = r->body; /* the connection's buffer, empty, maybe allocated */
    rep.body.len = 0;
    if (mdw_xrpc_serve(&fg->xs, &q, &rep) != 0) {
        mdw_buf_reset(&rep.body);
        rep.status = 500;
        rep.content_type = "application/json; charset=utf-8";
        mdw_xrpc_error_json(&rep.body, "InternalServerError", "Internal Server Error");
    }
    r->body = rep.body; /* (the serve may have grown it) */
    if (rep.posts)
        mdw_counter_add(&posts_served, rep.posts);
    if (rep.scanned)
        mdw_counter_add(&entries_scanned, rep.scanned);

    /* Sent from the connection's buffer, which outlives the response (struct conn). */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body.len, r->body.len ? r->body.data : NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (rep.content_type)
        add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep.content_type);
    add_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    if (rep.status == 204) {
        add_header(resp, "Access-Control-Allow-Methods", rep.allow);
        if (rep.acr_headers && strlen(rep.acr_headers) < 1024)
            add_header(resp, "Access-Control-Allow-Headers", rep.acr_headers);
        add_header(resp, "Access-Control-Max-Age", "86400");
        add_header(resp, MHD_HTTP_HEADER_VARY, "Access-Control-Request-Headers");
    } else if (rep.allow) {
        add_header(resp, MHD_HTTP_HEADER_ALLOW, rep.allow);
    }
    if (atomic_load(&fg->draining))
        add_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (rep.viewer_did[0])
        mdw_debug("feedgen", "authenticated request", "route=%s", mdw_xrpc_route_name(rep.route));

    r->status = rep.status;
    r->route = rep.route;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rep.status, resp);
    MHD_destroy_response(resp);
    if (*upload_data_size)
        *upload_data_size = 0;
    return ret;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    mdw_warn("feedgen", "libmicrohttpd", "detail=\"%s\"", line);
}

/* ---- start / stop -------------------------------------------------------------------------- */

/*
** A stopping server accepts no new connection: libmicrohttpd closes one the
** policy refuses at once. This replaces MHD_quiesce_daemon, which with the
** epoll internal thread races MHD_epoll for removing the listen socket from
** the epoll set, and the loser calls MHD_PANIC (abort): an open defect in
** libmicrohttpd 0.9.75, seen here as test_feedgen_http aborting under load.
*/
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    mdw_feedgen *fg = cls;
    return atomic_load(&fg->draining) ? MHD_NO : MHD_YES;
}

int mdw_feedgen_start_opts(mdw_feedgen **out, const mdw_feedgen_opts *o)
{
    const mdw_config *cfg = o->cfg;
    *out = NULL;
    int port = o->port_override >= 0 ? o->port_override : (int)cfg->port;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(cfg->bind && *cfg->bind ? cfg->bind : NULL, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        mdw_error("feedgen", "cannot resolve bind address", "bind=\"%s\" err=\"%s\"", cfg->bind,
                  gai_strerror(gai));
        if (ai)
            freeaddrinfo(ai);
        return MDW_ECONFIG;
    }

    mdw_feedgen *fg = xcalloc(1, sizeof *fg);
    fg->clock = o->clock ? o->clock : mdw_clock_real();
    fg->service_did = mdw_config_service_did(cfg);
    fg->hostname = xstrdup(cfg->hostname);
    fg->xs.source = o->source;
    fg->xs.service_did = fg->service_did;
    fg->xs.hostname = fg->hostname;
    fg->xs.auth = o->auth;
    fg->xs.auth_ctx = o->auth_ctx;
    fg->drain_s = (int)cfg->http_timeout_s < MDW_FEEDGEN_DRAIN_MAX_S ? (int)cfg->http_timeout_s
                                                                     : MDW_FEEDGEN_DRAIN_MAX_S;
    metrics_init(fg);

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned threads = (unsigned)cfg->http_threads;
    fg->d = MHD_start_daemon(
        flags, (uint16_t)port, accept_policy, fg, on_request, fg, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, fg, MHD_OPTION_URI_LOG_CALLBACK, on_uri, fg, MHD_OPTION_NOTIFY_COMPLETED,
        on_done, fg, MHD_OPTION_NOTIFY_CONNECTION, on_connection, fg, MHD_OPTION_SOCK_ADDR,
        ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
        threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!fg->d) {
        int e = errno ? errno : EADDRINUSE;
        mdw_error("feedgen", "cannot start HTTP server", "bind=\"%s\" port=%d err=\"%s\"",
                  cfg->bind, port, strerror(e));
        pthread_mutex_lock(&gauge_mu);
        if (gauge_fg == fg)
            gauge_fg = NULL;
        pthread_mutex_unlock(&gauge_mu);
        free(fg->service_did);
        free(fg->hostname);
        free(fg);
        return -e;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(fg->d, MHD_DAEMON_INFO_BIND_PORT);
    fg->port = info ? (int)info->port : port;
    mdw_info("feedgen", "listening", "bind=\"%s\" port=%d threads=%u service_did=%s", cfg->bind,
             fg->port, threads, fg->service_did);
    *out = fg;
    return 0;
}

void mdw_feedgen__on_stop(mdw_feedgen *fg, void (*fn)(const void *arg), const void *arg)
{
    fg->on_stop = fn;
    fg->on_stop_arg = arg;
}

int mdw_feedgen_port(const mdw_feedgen *fg)
{
    return fg ? fg->port : -1;
}

void mdw_feedgen_stop(mdw_feedgen *fg)
{
    if (!fg)
        return;
    atomic_store(&fg->draining, 1); /* accept_policy refuses new connections from now on */
    /*
    ** In-flight requests get up to drain_s to finish; idle keep-alive ones are
    ** just closed. The real clock on purpose: a fake one never advances here.
    */
    int64_t until = mdw_clock_mono_us(mdw_clock_real()) + (int64_t)fg->drain_s * 1000000;
    while (atomic_load(&fg->inflight) > 0 && mdw_clock_mono_us(mdw_clock_real()) < until)
        usleep(2000);
    int left = atomic_load(&fg->inflight);
    MHD_stop_daemon(fg->d);
    pthread_mutex_lock(&gauge_mu);
    if (gauge_fg == fg)
        gauge_fg = NULL;
    pthread_mutex_unlock(&gauge_mu);
    if (fg->on_stop)
        fg->on_stop(fg->on_stop_arg);
    mdw_info("feedgen", "stopped", "port=%d unfinished=%d", fg->port, left);
    free(fg->service_did);
    free(fg->hostname);
    free(fg);
}
