/*
** pds/pds.c — the PDS client on libcurl: requests with retries, the
** session (createSession / refreshSession, cached in a 0600 file), record
** writes and reads, identity resolution. See pds/pds.h.
**
** Secrets: the app password and the JWTs only ever go into request bodies and
** Authorization headers. Debug logs name the method, URL and status of each
** request, never a header or a body; the session file is written 0600.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/atname.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/strv.h"
#include "identity/identity.h"
#include "pds/pds.h"
#include "common/banned.h"

struct mdw_pds {
    char *pds_url, *plc_url, *identifier, *app_password, *app_password_file, *session_file;
    long timeout_ms;
    int max_retries;
    int64_t backoff_ms, max_wait_ms;
    mdw_clock *clock;
    CURL *curl;
    char *did, *handle, *access_jwt, *refresh_jwt; /* the session */
    char err[MDW_PDS_ERR_MAX];
};

enum { AUTH_NONE, AUTH_ACCESS, AUTH_REFRESH };

typedef struct resp {
    long status;
    mdw_buf body;
    int64_t ratelimit_reset; /* unix seconds, 0 = absent */
    int64_t retry_after_s;   /* -1 = absent */
    int too_big;
} resp;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void set_err(mdw_pds *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(mdw_pds *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

void mdw_pds_opts_init(mdw_pds_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 30000;
    o->max_retries = 3;
    o->backoff_ms = 250;
    o->max_wait_ms = MDW_PDS_MAX_RATELIMIT_WAIT_MS;
}

int mdw_pds_open(mdw_pds **out, const mdw_pds_opts *o)
{
    *out = NULL;
    if (!o->pds_url || !*o->pds_url)
        return MDW_ECONFIG;
    pthread_once(&curl_once, curl_init_once);
    mdw_pds *p = xcalloc(1, sizeof *p);
    p->pds_url = xstrdup(o->pds_url);
    size_t n = strlen(p->pds_url);
    while (n > 0 && p->pds_url[n - 1] == '/')
        p->pds_url[--n] = '\0';
    p->plc_url = xstrdup(o->plc_url && *o->plc_url ? o->plc_url : "https://plc.directory");
    p->identifier = xstrdup(o->identifier ? o->identifier : "");
    p->app_password = o->app_password && *o->app_password ? xstrdup(o->app_password) : NULL;
    p->app_password_file = xstrdup(o->app_password_file ? o->app_password_file : "");
    p->session_file = o->session_file && *o->session_file ? xstrdup(o->session_file) : NULL;
    p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    p->max_retries = o->max_retries >= 0 ? o->max_retries : 0;
    p->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 250;
    p->max_wait_ms = o->max_wait_ms > 0 ? o->max_wait_ms : MDW_PDS_MAX_RATELIMIT_WAIT_MS;
    p->clock = o->clock ? o->clock : mdw_clock_real();
    p->curl = curl_easy_init();
    if (!p->curl) {
        mdw_pds_close(p);
        return MDW_EHTTP;
    }
    *out = p;
    return 0;
}

static void session_clear(mdw_pds *p)
{
    free(p->did);
    free(p->handle);
    wipe_free(p->access_jwt);
    wipe_free(p->refresh_jwt);
    p->did = p->handle = p->access_jwt = p->refresh_jwt = NULL;
}

void mdw_pds_close(mdw_pds *p)
{
    if (!p)
        return;
    session_clear(p);
    if (p->curl)
        curl_easy_cleanup(p->curl);
    free(p->pds_url);
    free(p->plc_url);
    free(p->identifier);
    wipe_free(p->app_password);
    free(p->app_password_file);
    free(p->session_file);
    free(p);
}

const char *mdw_pds_error(const mdw_pds *p)
{
    return p->err;
}
const char *mdw_pds_did(const mdw_pds *p)
{
    return p->did;
}

/* ---- one HTTP exchange ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    resp *r = ctx;
    size_t n = size * nmemb;
    if (mdw_buf_append(&r->body, data, n) != 0) {
        r->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

static int64_t header_int(const char *v, size_t n)
{
    char tmp[32];
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (errno || *end || x < 0)
        return -1;
    return x;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    resp *r = ctx;
    size_t n = size * nmemb;
    static const char rl[] = "ratelimit-reset:", ra[] = "retry-after:";
    if (n > sizeof rl - 1 && !strncasecmp(data, rl, sizeof rl - 1)) {
        int64_t v = header_int(data + sizeof rl - 1, n - (sizeof rl - 1));
        r->ratelimit_reset = v > 0 ? v : 0;
    } else if (n > sizeof ra - 1 && !strncasecmp(data, ra, sizeof ra - 1)) {
        r->retry_after_s = header_int(data + sizeof ra - 1, n - (sizeof ra - 1));
    }
    return n;
}

/*
** One request. Returns 0 with r->status set when an HTTP answer came (any
** status); MDW_ETOOBIG when the body passed the cap; MDW_EHTTP for a
** transport failure (*cc tells which).
*/
static int http_once(mdw_pds *p, int post, const char *url, const char *body, const char *bearer,
                     resp *r, CURLcode *cc)
{
    CURL *c = p->curl;
    curl_easy_reset(c);
    mdw_buf_reset(&r->body);
    r->status = 0;
    r->ratelimit_reset = 0;
    r->retry_after_s = -1;
    r->too_big = 0;
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (post)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (bearer) {
        auth = xasprintf("Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms < 10000 ? p->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "meadow-pds-client");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MDW_MAX_HTTP_BODY_BYTES);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    }
    int64_t t0 = mdw_clock_mono_us(p->clock);
    *cc = curl_easy_perform(c);
    /* The request is done: forget the header copy holding the token. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    for (struct curl_slist *h = hdrs; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data)); /* curl's copy of the bearer token */
    curl_slist_free_all(hdrs);
    wipe_free(auth);
    if (*cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    mdw_debug("pds", "http", "method=%s url=%s status=%ld curl=%d ms=%lld", post ? "POST" : "GET",
              url, r->status, (int)*cc, (long long)((mdw_clock_mono_us(p->clock) - t0) / 1000));
    if (r->too_big || *cc == CURLE_FILESIZE_EXCEEDED)
        return MDW_ETOOBIG;
    if (*cc != CURLE_OK)
        return MDW_EHTTP;
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double jitter01(void)
{
    uint32_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
        x = (uint32_t)getpid() * 2654435761u;
    return (double)x / 4294967296.0;
}

static int retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* curl failures where the request certainly never reached the server. */
static int never_sent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_RESOLVE_PROXY;
}

/*
** An XRPC call with retries. On 2xx: 0 and *out (may be NULL) the parsed JSON
** body. Otherwise p->err says why; returns MDW_EAGAIN (rate limited),
** MDW_EDENIED (401/403), MDW_ENOTFOUND (404 or a *NotFound error), MDW_ETOOBIG,
** MDW_EHTTP. name (may be NULL) receives the XRPC error name.
*/
static int xrpc(mdw_pds *p, const char *base, const char *nsid, int post, const char *query,
                const cJSON *body, const char *bearer, int idempotent, cJSON **out, char *name,
                size_t namelen)
{
    if (out)
        *out = NULL;
    if (name && namelen)
        name[0] = '\0';
    p->err[0] = '\0';
    char *url = mdw_pds_xrpc_url(base, nsid, query);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    if (body && !text)
        abort(); /* cJSON only fails on OOM */
    resp r = {.body = MDW_BUF_INIT(MDW_MAX_HTTP_BODY_BYTES)};
    int rc = MDW_EHTTP;
    for (int attempt = 0;; attempt++) {
        CURLcode cc = CURLE_OK;
        rc = http_once(p, post, url, text, bearer, &r, &cc);
        if (rc == MDW_ETOOBIG) {
            set_err(p, "%s: the response from %s is over %u bytes", nsid, base,
                    (unsigned)MDW_MAX_HTTP_BODY_BYTES);
            break;
        }
        int may_retry = attempt < p->max_retries;
        if (rc == MDW_EHTTP) {
            set_err(p, "%s: cannot reach %s: %s", nsid, base, curl_easy_strerror(cc));
            if (!may_retry || (!idempotent && !never_sent(cc)))
                break;
            int64_t d = mdw_pds_retry_delay_ms(attempt + 1, 0, 0, -1, p->backoff_ms, p->max_wait_ms,
                                               jitter01());
            mdw_warn("pds", "request failed, retrying", "method=%s error=\"%s\" wait_ms=%lld", nsid,
                     curl_easy_strerror(cc), (long long)d);
            sleep_ms(d < 0 ? p->max_wait_ms : d);
            continue;
        }
        if (r.status >= 200 && r.status < 300) {
            rc = 0;
            if (out) {
                *out = r.body.len ? cJSON_ParseWithLength(r.body.data, r.body.len) : NULL;
                if (!*out) {
                    set_err(p, "%s: the answer from %s is not JSON", nsid, base);
                    rc = MDW_EMALFORMED;
                }
            }
            break;
        }
        char ename[128];
        mdw_pds_format_error(nsid, r.status, r.body.data, r.body.len, p->err, sizeof p->err, ename,
                             sizeof ename);
        if (name && namelen)
            snprintf(name, namelen, "%s", ename);
        if (r.status == 429) {
            rc = MDW_EAGAIN;
            int64_t now = mdw_clock_now_us(p->clock);
            int64_t d = mdw_pds_retry_delay_ms(attempt + 1, now, r.ratelimit_reset, r.retry_after_s,
                                               p->backoff_ms, p->max_wait_ms, jitter01());
            char when[40] = "";
            if (r.ratelimit_reset > 0)
                mdw_time_format(r.ratelimit_reset * 1000000, when, sizeof when);
            size_t l = strlen(p->err);
            snprintf(p->err + l, sizeof p->err - l, "; rate limited by %s%s%s", base,
                     when[0] ? " until " : "", when);
            if (d < 0 || !may_retry) {
                l = strlen(p->err);
                snprintf(p->err + l, sizeof p->err - l, "%s",
                         d < 0 ? " (too long to wait; try again later)"
                               : " (gave up after retrying; try again later)");
                break;
            }
            mdw_warn("pds", "rate limited, waiting", "method=%s wait_ms=%lld attempt=%d", nsid,
                     (long long)d, attempt + 1);
            sleep_ms(d);
            continue;
        }
        if (retryable_status(r.status) && idempotent && may_retry) {
            int64_t d = mdw_pds_retry_delay_ms(attempt + 1, 0, 0, r.retry_after_s, p->backoff_ms,
                                               p->max_wait_ms, jitter01());
            mdw_warn("pds", "server error, retrying", "method=%s status=%ld wait_ms=%lld", nsid,
                     r.status, (long long)d);
            sleep_ms(d < 0 ? p->max_wait_ms : d);
            continue;
        }
        if (r.status == 401 || r.status == 403)
            rc = MDW_EDENIED;
        else if (r.status == 404 || strstr(ename, "NotFound"))
            rc = MDW_ENOTFOUND;
        else
            rc = MDW_EHTTP;
        break;
    }
    if (rc && rc != MDW_ENOTFOUND)
        mdw_debug("pds", "xrpc failed", "method=%s error=\"%s\"", nsid, p->err);
    mdw_buf_release(&r.body);
    if (text) {
        explicit_bzero(text, strlen(text)); /* createSession bodies hold the password */
        free(text);
    }
    free(url);
    return rc;
}

/* ---- the session ---- */

static char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

static int session_take(mdw_pds *p, const cJSON *j)
{
    session_clear(p);
    p->did = json_str(j, "did");
    p->handle = json_str(j, "handle");
    p->access_jwt = json_str(j, "accessJwt");
    p->refresh_jwt = json_str(j, "refreshJwt");
    if (!p->did || !p->access_jwt || !p->refresh_jwt || strncmp(p->did, "did:", 4) != 0) {
        session_clear(p);
        return MDW_EMALFORMED;
    }
    return 0;
}

static void session_save(mdw_pds *p)
{
    if (!p->session_file)
        return;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "service", p->pds_url);
    cJSON_AddStringToObject(j, "identifier", p->identifier);
    cJSON_AddStringToObject(j, "did", p->did);
    if (p->handle)
        cJSON_AddStringToObject(j, "handle", p->handle);
    cJSON_AddStringToObject(j, "accessJwt", p->access_jwt);
    cJSON_AddStringToObject(j, "refreshJwt", p->refresh_jwt);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    /* Its directory (the data directory by default) may not exist yet. */
    char *dir = xstrdup(p->session_file);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            mdw_warn("pds", "cannot create the session directory", "dir=%s errno=%d", dir, errno);
    }
    free(dir);
    int rc = mdw_pds_write_private_file(p->session_file, text, strlen(text));
    explicit_bzero(text, strlen(text));
    free(text);
    if (rc)
        mdw_warn("pds", "cannot write the session file", "path=%s error=\"%s\"", p->session_file,
                 mdw_strerror(rc));
}

/* 0 when a usable cached session was loaded. */
static int session_load(mdw_pds *p)
{
    if (!p->session_file)
        return MDW_ENOTFOUND;
    int fd = open(p->session_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return MDW_ENOTFOUND;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return MDW_ENOTFOUND;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        close(fd);
        mdw_warn("pds", "session file readable by others: not used (a new one replaces it)",
                 "path=%s mode=%03o", p->session_file, (unsigned)(st.st_mode & 0777));
        return MDW_EDENIED;
    }
    mdw_buf b = MDW_BUF_INIT(MDW_PDS_MAX_SESSION_BYTES);
    char chunk[4096];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                rc = -errno;
            break;
        }
        if ((rc = mdw_buf_append(&b, chunk, (size_t)r)) != 0)
            break;
    }
    close(fd);
    explicit_bzero(chunk, sizeof chunk);
    cJSON *j = rc ? NULL : cJSON_ParseWithLength(b.data ? b.data : "", b.len);
    if (b.data)
        explicit_bzero(b.data, b.len);
    mdw_buf_release(&b);
    rc = MDW_ENOTFOUND;
    const cJSON *svc = cJSON_GetObjectItemCaseSensitive(j, "service");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "identifier");
    const cJSON *did = cJSON_GetObjectItemCaseSensitive(j, "did");
    const cJSON *handle = cJSON_GetObjectItemCaseSensitive(j, "handle");
    /* Only a session of this PDS and this account is reused. */
    if (cJSON_IsString(svc) && !strcmp(svc->valuestring, p->pds_url) &&
        ((cJSON_IsString(id) && !strcmp(id->valuestring, p->identifier)) ||
         (cJSON_IsString(did) && !strcmp(did->valuestring, p->identifier)) ||
         (cJSON_IsString(handle) && !strcasecmp(handle->valuestring, p->identifier))))
        rc = session_take(p, j);
    cJSON_Delete(j);
    if (rc == 0)
        mdw_debug("pds", "using the cached session", "path=%s did=%s", p->session_file, p->did);
    return rc;
}

static int get_password(mdw_pds *p, char **out)
{
    *out = NULL;
    if (p->app_password_file[0]) {
        char err[512];
        int rc = mdw_pds_read_password_file(p->app_password_file, out, err, sizeof err);
        if (rc)
            set_err(p, "%s", err);
        return rc;
    }
    if (p->app_password) {
        *out = xstrdup(p->app_password);
        return 0;
    }
    set_err(p, "no app password: set MEADOW_APP_PASSWORD or app_password_file "
               "(a file readable only by you)");
    return MDW_ECONFIG;
}

static int create_session(mdw_pds *p)
{
    if (!p->identifier[0]) {
        set_err(p, "no account: set identifier (your handle or DID)");
        return MDW_ECONFIG;
    }
    char *pw;
    int rc = get_password(p, &pw);
    if (rc)
        return rc;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "identifier", p->identifier);
    cJSON_AddStringToObject(body, "password", pw);
    wipe_free(pw);
    cJSON *res = NULL;
    rc = xrpc(p, p->pds_url, "com.atproto.server.createSession", 1, NULL, body, NULL, 1, &res, NULL,
              0);
    cJSON *pwitem = cJSON_GetObjectItemCaseSensitive(body, "password");
    if (pwitem && pwitem->valuestring)
        explicit_bzero(pwitem->valuestring, strlen(pwitem->valuestring));
    cJSON_Delete(body);
    if (rc == 0) {
        rc = session_take(p, res);
        if (rc)
            set_err(p, "com.atproto.server.createSession: the answer has no session");
    }
    cJSON_Delete(res);
    if (rc)
        return rc;
    mdw_info("pds", "logged in", "did=%s handle=%s", p->did, p->handle ? p->handle : "");
    session_save(p);
    return 0;
}

int mdw_pds_login(mdw_pds *p)
{
    if (p->access_jwt)
        return 0;
    if (session_load(p) == 0)
        return 0;
    return create_session(p);
}

/* refreshSession; on a refused refresh token, a new createSession. */
static int refresh_session(mdw_pds *p)
{
    cJSON *res = NULL;
    char name[128];
    char *tok = xstrdup(p->refresh_jwt);
    int rc = xrpc(p, p->pds_url, "com.atproto.server.refreshSession", 1, NULL, NULL, tok, 1, &res,
                  name, sizeof name);
    wipe_free(tok);
    if (rc == 0) {
        rc = session_take(p, res);
        cJSON_Delete(res);
        if (rc) {
            set_err(p, "com.atproto.server.refreshSession: the answer has no session");
            return rc;
        }
        mdw_info("pds", "session refreshed", "did=%s", p->did);
        session_save(p);
        return 0;
    }
    cJSON_Delete(res);
    /* Only a refused refresh token falls back to the password. */
    if (strcmp(name, "ExpiredToken") != 0 && strcmp(name, "InvalidToken") != 0 && rc != MDW_EDENIED)
        return rc;
    mdw_info("pds", "refresh token refused, logging in again", "error=%s", name);
    session_clear(p);
    return create_session(p);
}

/* An authenticated call: logs in if needed, refreshes once on ExpiredToken. */
static int authed(mdw_pds *p, const char *nsid, int post, const char *query, const cJSON *body,
                  int idempotent, cJSON **out)
{
    int rc = mdw_pds_login(p);
    if (rc)
        return rc;
    for (int round = 0;; round++) {
        char name[128];
        char *tok = xstrdup(p->access_jwt);
        rc = xrpc(p, p->pds_url, nsid, post, query, body, tok, idempotent, out, name, sizeof name);
        wipe_free(tok);
        if (rc == 0 || round > 0)
            return rc;
        if (strcmp(name, "ExpiredToken") != 0 && strcmp(name, "InvalidToken") != 0)
            return rc;
        mdw_info("pds", "access token refused, refreshing the session", "error=%s", name);
        if ((rc = refresh_session(p)) != 0)
            return rc;
    }
}

/* ---- records ---- */

static int write_record(mdw_pds *p, const char *nsid, const char *collection, const char *rkey,
                        const cJSON *record, int idempotent, char **uri_out, char **cid_out)
{
    if (uri_out)
        *uri_out = NULL;
    if (cid_out)
        *cid_out = NULL;
    int rc = mdw_pds_login(p);
    if (rc)
        return rc;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "repo", p->did);
    cJSON_AddStringToObject(body, "collection", collection);
    if (rkey)
        cJSON_AddStringToObject(body, "rkey", rkey);
    /* `validate` stays unset: the PDS refuses validate=true for unknown lexicons. */
    cJSON_AddItemToObject(body, "record", cJSON_Duplicate(record, 1));
    cJSON *res = NULL;
    rc = authed(p, nsid, 1, NULL, body, idempotent, &res);
    cJSON_Delete(body);
    if (rc && rc != MDW_EAGAIN && rkey && !strcmp(nsid, "com.atproto.repo.createRecord")) {
        /*
        ** A retried create with our own key fails when the first attempt was
        ** written but its answer lost: if the record under that key is ours,
        ** it was a success, and there is still exactly one record.
        */
        char saved[MDW_PDS_ERR_MAX];
        memcpy(saved, p->err, sizeof saved);
        cJSON *got = NULL;
        if (mdw_pds_get_record(p, NULL, p->did, collection, rkey, &got) == 0 &&
            cJSON_Compare(cJSON_GetObjectItemCaseSensitive(got, "value"), record, 1)) {
            mdw_info("pds", "the record was written by an earlier attempt", "rkey=%s", rkey);
            cJSON_Delete(res);
            res = got;
            got = NULL;
            rc = 0;
        } else {
            memcpy(p->err, saved, sizeof saved);
        }
        cJSON_Delete(got);
    }
    if (rc == 0) {
        char *uri = json_str(res, "uri"), *cid = json_str(res, "cid");
        if (!uri) {
            set_err(p, "%s: the answer has no uri", nsid);
            rc = MDW_EMALFORMED;
        } else {
            mdw_debug("pds", "record written", "method=%s uri=%s", nsid, uri);
        }
        if (uri_out && !rc)
            *uri_out = uri;
        else
            free(uri);
        if (cid_out && !rc)
            *cid_out = cid;
        else
            free(cid);
    }
    cJSON_Delete(res);
    return rc;
}

int mdw_pds_create_record(mdw_pds *p, const char *collection, const char *rkey, const cJSON *record,
                          char **uri_out, char **cid_out)
{
    return write_record(p, "com.atproto.repo.createRecord", collection, rkey, record, rkey != NULL,
                        uri_out, cid_out);
}

int mdw_pds_put_record(mdw_pds *p, const char *collection, const char *rkey, const cJSON *record,
                       char **uri_out, char **cid_out)
{
    return write_record(p, "com.atproto.repo.putRecord", collection, rkey, record, 1, uri_out,
                        cid_out);
}

int mdw_pds_delete_record(mdw_pds *p, const char *collection, const char *rkey)
{
    int rc = mdw_pds_login(p);
    if (rc)
        return rc;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "repo", p->did);
    cJSON_AddStringToObject(body, "collection", collection);
    cJSON_AddStringToObject(body, "rkey", rkey);
    cJSON *res = NULL;
    rc = authed(p, "com.atproto.repo.deleteRecord", 1, NULL, body, 1, &res);
    cJSON_Delete(body);
    cJSON_Delete(res);
    return rc;
}

/* key=value&... with each value URL-escaped; NULL values skipped. Caller frees. */
static char *query_of(mdw_pds *p, const char *const *kv, size_t n)
{
    mdw_buf b = MDW_BUF_INIT(MDW_MAX_HTTP_URL_BYTES);
    int rc = 0;
    for (size_t i = 0; i + 1 < n && !rc; i += 2) {
        if (!kv[i + 1])
            continue;
        char *e = curl_easy_escape(p->curl, kv[i + 1], 0);
        if (!e)
            abort();
        rc = mdw_buf_printf(&b, "%s%s=%s", b.len ? "&" : "", kv[i], e);
        curl_free(e);
    }
    if (rc) {
        mdw_buf_release(&b);
        return NULL;
    }
    char *q = mdw_buf_detach(&b, NULL);
    return q ? q : xstrdup("");
}

int mdw_pds_get_record(mdw_pds *p, const char *base_url, const char *repo, const char *collection,
                       const char *rkey, cJSON **out)
{
    const char *kv[] = {"repo", repo, "collection", collection, "rkey", rkey};
    char *q = query_of(p, kv, 6);
    if (!q) {
        set_err(p, "com.atproto.repo.getRecord: the query is too long");
        return MDW_ETOOBIG;
    }
    int rc = xrpc(p, base_url ? base_url : p->pds_url, "com.atproto.repo.getRecord", 0, q, NULL,
                  NULL, 1, out, NULL, 0);
    free(q);
    return rc;
}

int mdw_pds_list_records(mdw_pds *p, const char *base_url, const char *repo, const char *collection,
                         mdw_pds_record_fn fn, void *ctx)
{
    char *cursor = NULL;
    int rc = 0;
    for (int pages = 0;; pages++) {
        const char *kv[] = {"repo",  repo,  "collection", collection,
                            "limit", "100", "cursor",     cursor};
        char *q = query_of(p, kv, 8);
        if (!q) {
            set_err(p, "com.atproto.repo.listRecords: the query is too long");
            rc = MDW_ETOOBIG;
            break;
        }
        cJSON *res = NULL;
        rc = xrpc(p, base_url ? base_url : p->pds_url, "com.atproto.repo.listRecords", 0, q, NULL,
                  NULL, 1, &res, NULL, 0);
        free(q);
        if (rc) {
            cJSON_Delete(res);
            break;
        }
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(res, "records");
        const cJSON *r;
        int n = 0;
        cJSON_ArrayForEach(r, recs)
        {
            const cJSON *uri = cJSON_GetObjectItemCaseSensitive(r, "uri");
            const cJSON *cid = cJSON_GetObjectItemCaseSensitive(r, "cid");
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(r, "value");
            n++;
            if (!cJSON_IsString(uri) || !val)
                continue;
            rc = fn(ctx, uri->valuestring, cJSON_IsString(cid) ? cid->valuestring : "", val);
            if (rc)
                break;
        }
        char *next = json_str(res, "cursor");
        cJSON_Delete(res);
        /* No cursor, an empty page or the same cursor again: the listing is done. */
        if (rc || !next || n == 0 || (cursor && !strcmp(next, cursor))) {
            free(next);
            break;
        }
        free(cursor);
        cursor = next;
    }
    free(cursor);
    return rc;
}

/* ---- identity ---- */

int mdw_pds_resolve_handle(mdw_pds *p, const char *handle, char **did_out)
{
    *did_out = NULL;
    const char *kv[] = {"handle", handle};
    char *q = query_of(p, kv, 2);
    if (!q)
        return MDW_ETOOBIG;
    cJSON *res = NULL;
    int rc = xrpc(p, p->pds_url, "com.atproto.identity.resolveHandle", 0, q, NULL, NULL, 1, &res,
                  NULL, 0);
    free(q);
    if (rc == 0) {
        *did_out = json_str(res, "did");
        if (!*did_out || strncmp(*did_out, "did:", 4) != 0) {
            free(*did_out);
            *did_out = NULL;
            set_err(p, "com.atproto.identity.resolveHandle: no DID for %s", handle);
            rc = MDW_EMALFORMED;
        }
    }
    cJSON_Delete(res);
    return rc;
}

int mdw_pds_resolve_actor(mdw_pds *p, const char *actor, char **did_out)
{
    if (!strncmp(actor, "did:", 4)) {
        *did_out = xstrdup(actor);
        return 0;
    }
    const char *h = actor[0] == '@' ? actor + 1 : actor;
    return mdw_pds_resolve_handle(p, h, did_out);
}

/* GET of a plain JSON document (not XRPC), with the same retries and caps. */
static int get_json(mdw_pds *p, const char *url, cJSON **out)
{
    *out = NULL;
    p->err[0] = '\0';
    resp r = {.body = MDW_BUF_INIT(MDW_MAX_HTTP_BODY_BYTES)};
    int rc = MDW_EHTTP;
    for (int attempt = 0;; attempt++) {
        CURLcode cc = CURLE_OK;
        rc = http_once(p, 0, url, NULL, NULL, &r, &cc);
        if (rc == MDW_ETOOBIG) {
            set_err(p, "%s: the answer is over %u bytes", url, (unsigned)MDW_MAX_HTTP_BODY_BYTES);
            break;
        }
        if (rc == 0 && r.status == 200) {
            *out = cJSON_ParseWithLength(r.body.data ? r.body.data : "", r.body.len);
            rc = *out ? 0 : MDW_EMALFORMED;
            if (rc)
                set_err(p, "%s: the answer is not JSON", url);
            break;
        }
        if (rc == 0)
            set_err(p, "%s: HTTP %ld", url, r.status);
        else
            set_err(p, "%s: %s", url, curl_easy_strerror(cc));
        int again = attempt < p->max_retries && (rc != 0 || retryable_status(r.status));
        if (!again) {
            rc = rc ? rc : (r.status == 404 || r.status == 410 ? MDW_ENOTFOUND : MDW_EHTTP);
            break;
        }
        int64_t d = mdw_pds_retry_delay_ms(attempt + 1, mdw_clock_now_us(p->clock),
                                           r.status == 429 ? r.ratelimit_reset : 0, r.retry_after_s,
                                           p->backoff_ms, p->max_wait_ms, jitter01());
        if (d < 0) {
            rc = MDW_EAGAIN;
            break;
        }
        sleep_ms(d);
    }
    mdw_buf_release(&r.body);
    return rc;
}

int mdw_pds_resolve_endpoint(mdw_pds *p, const char *did, char **endpoint_out)
{
    *endpoint_out = NULL;
    /* identity/ decides where a DID's document lives (the resolver service auth uses). */
    char *url = mdw_did_doc_url(did, p->plc_url, 1);
    if (!url) {
        if (!strncmp(did, "did:plc:", 8))
            set_err(p, "not a did:plc: %s", did);
        else if (!strncmp(did, "did:web:", 8))
            set_err(p, "not a valid did:web: %s", did);
        else
            set_err(p, "unsupported DID method: %s", did);
        return MDW_EMALFORMED;
    }
    cJSON *doc = NULL;
    int rc = get_json(p, url, &doc);
    free(url);
    if (rc == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, did) != 0) {
            set_err(p, "the DID document of %s names another DID", did);
            rc = MDW_EMALFORMED;
        } else if (!(*endpoint_out = mdw_diddoc_pds_endpoint(doc))) {
            set_err(p, "the DID document of %s names no #atproto_pds service", did);
            rc = MDW_ENOTFOUND;
        }
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---- the rebuild walk ---- */

typedef struct walk_ctx {
    const mdw_pds_walk_opts *o;
    mdw_pds_walk_stats *st;
    mdw_pds_event_fn fn;
    void *ctx;
    const char *did, *rev, *collection;
    int posts;
    mdw_buf ev;
} walk_ctx;

static int key_cmp(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/*
** Object keys sorted bytewise at every depth, in place: the order the relay
** decoder and Jetstream render records in. A PDS's listRecords keeps the
** writer's order, so without this a rebuilt index would store the same
** record as different text than the live one (found by tests/integration/e2e_feed.sh).
*/
static void sort_keys(cJSON *item, int depth)
{
    if (depth > MDW_MAX_CBOR_DEPTH)
        return; /* deeper than any record the firehose can carry */
    for (cJSON *c = item->child; c; c = c->next)
        sort_keys(c, depth + 1);
    if (!cJSON_IsObject(item) || !item->child)
        return;
    size_t n = (size_t)cJSON_GetArraySize(item);
    cJSON **v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = cJSON_DetachItemViaPointer(item, item->child);
    qsort(v, n, sizeof *v, key_cmp);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(item, v[i]);
    free(v);
}

/* listRecords callback: one event per record; 1 = stop (older posts follow). */
static int walk_record(void *ctx, const char *uri, const char *cid, const cJSON *value)
{
    walk_ctx *w = ctx;
    char *rkey = NULL;
    if (mdw_pds_parse_at_uri(uri, NULL, NULL, &rkey) != 0)
        return 0;
    cJSON *sorted = cJSON_Duplicate(value, 1);
    if (!sorted)
        abort();
    sort_keys(sorted, 0);
    char *json = cJSON_PrintUnformatted(sorted);
    cJSON_Delete(sorted);
    if (!json)
        abort();
    int rc = 0;
    if (w->posts) {
        w->st->posts_seen++;
        int64_t t = 0;
        if (mdw_tid_time(rkey, strlen(rkey), &t) == 0 && t < w->o->min_post_us) {
            rc = 1; /* newest first: every later post is older still */
            goto out;
        }
        if (!strstr(json, "atr_"))
            goto out;
    }
    mdw_buf_reset(&w->ev);
    rc = mdw_buf_printf(&w->ev, "{\"did\":");
    rc = rc ? rc : mdw_buf_json_str(&w->ev, w->did, strlen(w->did));
    rc = rc ? rc
            : mdw_buf_printf(&w->ev, ",\"time_us\":%lld,\"kind\":\"commit\",\"commit\":{\"rev\":",
                             (long long)w->o->time_us);
    rc = rc ? rc : mdw_buf_json_str(&w->ev, w->rev, strlen(w->rev));
    rc = rc ? rc : mdw_buf_puts(&w->ev, ",\"operation\":\"create\",\"collection\":");
    rc = rc ? rc : mdw_buf_json_str(&w->ev, w->collection, strlen(w->collection));
    rc = rc ? rc : mdw_buf_puts(&w->ev, ",\"rkey\":");
    rc = rc ? rc : mdw_buf_json_str(&w->ev, rkey, strlen(rkey));
    rc = rc ? rc : mdw_buf_puts(&w->ev, ",\"record\":");
    rc = rc ? rc : mdw_buf_puts(&w->ev, json);
    rc = rc ? rc : mdw_buf_puts(&w->ev, ",\"cid\":");
    rc = rc ? rc : mdw_buf_json_str(&w->ev, cid, strlen(cid));
    rc = rc ? rc : mdw_buf_puts(&w->ev, "}}");
    if (rc) {
        /* One record over the event cap: skipped, as ingest would refuse it. */
        mdw_warn("pds", "record too large for an event, skipped", "uri=%s", uri);
        rc = 0;
        goto out;
    }
    w->st->records++;
    rc = w->fn(w->ctx, w->ev.data, w->ev.len);
    if (rc == 1)
        rc = MDW_ESTOPPED; /* the caller's 1 is not our internal "stop here" */
out:
    free(json);
    free(rkey);
    return rc;
}

static int walk_repo(mdw_pds *p, walk_ctx *w, const char *base, const char *did, const char *rev)
{
    w->did = did;
    w->rev = rev;
    int rc = 0;
    for (size_t i = 0; i < w->o->ncollections + (w->o->post_collection ? 1 : 0) && !rc; i++) {
        w->posts = i == w->o->ncollections;
        w->collection = w->posts ? w->o->post_collection : w->o->collections[i];
        rc = mdw_pds_list_records(p, base, did, w->collection, walk_record, w);
        if (rc == 1)
            rc = 0;
    }
    return rc;
}

/*
** The DIDs of the relay walk, gathered over several collections: appended
** (duplicates included), then sorted and made unique once
** (mdw_strv_sort_unique), O(n log n) instead of a search per insert.
*/
typedef struct did_set {
    char **v;
    size_t n, cap;
} did_set;

static void did_set_add(did_set *s, const char *did)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = xstrdup(did);
}

/* One page of listRepos / listReposByCollection: DIDs (+ revs, active) into the arrays. */
static int list_repos_page(mdw_pds *p, const char *base, const char *nsid, const char *collection,
                           const char *cursor, cJSON **res)
{
    const char *kv[] = {"collection", collection, "limit", "500", "cursor", cursor};
    char *q = query_of(p, kv, 6);
    if (!q)
        return MDW_ETOOBIG;
    int rc = xrpc(p, base, nsid, 0, q, NULL, NULL, 1, res, NULL, 0);
    free(q);
    return rc;
}

int mdw_pds_walk(mdw_pds *p, const mdw_pds_walk_opts *o, mdw_pds_event_fn fn, void *ctx,
                 mdw_pds_walk_stats *st)
{
    memset(st, 0, sizeof *st);
    const char *base = o->base_url ? o->base_url : p->pds_url;
    walk_ctx w = {.o = o, .st = st, .fn = fn, .ctx = ctx, .ev = MDW_BUF_INIT(MDW_MAX_EVENT_BYTES)};
    int rc = 0;
    if (o->progress)
        o->progress(o->progress_ctx, st);
    if (!o->relay) {
        /* A PDS: listRepos gives every repository with its rev and status. */
        char *cursor = NULL;
        for (;;) {
            cJSON *res = NULL;
            rc = list_repos_page(p, base, "com.atproto.sync.listRepos", NULL, cursor, &res);
            if (rc) {
                cJSON_Delete(res);
                break;
            }
            const cJSON *repos = cJSON_GetObjectItemCaseSensitive(res, "repos"), *r;
            int n = cJSON_GetArraySize(repos);
            st->repos_total += (uint64_t)n;
            cJSON_ArrayForEach(r, repos)
            {
                const cJSON *did = cJSON_GetObjectItemCaseSensitive(r, "did");
                const cJSON *rev = cJSON_GetObjectItemCaseSensitive(r, "rev");
                if (!cJSON_IsString(did) || !cJSON_IsString(rev) ||
                    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "active"))) {
                    st->repos_skipped++;
                    continue;
                }
                rc = walk_repo(p, &w, base, did->valuestring, rev->valuestring);
                if (rc)
                    break;
                st->repos++;
                if (o->progress)
                    o->progress(o->progress_ctx, st);
            }
            char *next = json_str(res, "cursor");
            cJSON_Delete(res);
            if (rc || !next || n == 0 || (cursor && !strcmp(cursor, next))) {
                free(next);
                break;
            }
            free(cursor);
            cursor = next;
        }
        free(cursor);
        mdw_buf_release(&w.ev);
        return rc;
    }
    /* A relay: the DIDs holding each wanted collection, then each one's own PDS. */
    did_set dids = {0};
    const char *colls[64];
    size_t nc = 0;
    for (size_t i = 0; i < o->ncollections && nc < 63; i++)
        colls[nc++] = o->collections[i];
    if (o->post_collection)
        colls[nc++] = o->post_collection;
    for (size_t i = 0; i < nc && !rc; i++) {
        char *cursor = NULL;
        for (;;) {
            cJSON *res = NULL;
            rc = list_repos_page(p, base, "com.atproto.sync.listReposByCollection", colls[i],
                                 cursor, &res);
            if (rc) {
                cJSON_Delete(res);
                break;
            }
            const cJSON *repos = cJSON_GetObjectItemCaseSensitive(res, "repos"), *r;
            int n = cJSON_GetArraySize(repos);
            cJSON_ArrayForEach(r, repos)
            {
                const cJSON *did = cJSON_GetObjectItemCaseSensitive(r, "did");
                if (cJSON_IsString(did))
                    did_set_add(&dids, did->valuestring);
            }
            char *next = json_str(res, "cursor");
            cJSON_Delete(res);
            if (!next || n == 0 || (cursor && !strcmp(cursor, next))) {
                free(next);
                break;
            }
            free(cursor);
            cursor = next;
        }
        free(cursor);
    }
    dids.n = mdw_strv_sort_unique(dids.v, dids.n);
    st->repos_total = dids.n;
    for (size_t i = 0; i < dids.n && !rc; i++) {
        char *ep = NULL;
        cJSON *head = NULL;
        const char *kv[] = {"did", dids.v[i]};
        char *q = query_of(p, kv, 2);
        if (mdw_pds_resolve_endpoint(p, dids.v[i], &ep) != 0 || !q ||
            xrpc(p, ep, "com.atproto.sync.getLatestCommit", 0, q, NULL, NULL, 1, &head, NULL, 0)) {
            mdw_warn("pds", "repository skipped", "did=%s error=\"%s\"", dids.v[i], p->err);
            st->repos_skipped++;
        } else {
            char *rev = json_str(head, "rev");
            rc = walk_repo(p, &w, ep, dids.v[i], rev ? rev : "");
            free(rev);
            st->repos++;
        }
        cJSON_Delete(head);
        free(q);
        free(ep);
        if (o->progress)
            o->progress(o->progress_ctx, st);
    }
    for (size_t i = 0; i < dids.n; i++)
        free(dids.v[i]);
    free(dids.v);
    mdw_buf_release(&w.ev);
    return rc;
}
