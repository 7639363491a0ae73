/*
** pds/pds_util.c — the PDS client's pure pieces: record keys, URLs,
** XRPC error text, retry delays, and the owner-only files
** (app password, session cache). Kept apart from the libcurl code so the
** unit tests exercise them without a network.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/mem.h"
#include "pds/pds.h"
#include "common/banned.h"

void mdw_pds_tid(int64_t now_us, char out[14])
{
    uint16_t clock_id = 0;
    if (getrandom(&clock_id, sizeof clock_id, 0) != (ssize_t)sizeof clock_id)
        clock_id = (uint16_t)getpid();
    mdw_tid_make(now_us, clock_id, out);
}

char *mdw_pds_xrpc_url(const char *base, const char *nsid, const char *query)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (query && *query)
        return xasprintf("%.*s/xrpc/%s?%s", (int)n, base, nsid, query);
    return xasprintf("%.*s/xrpc/%s", (int)n, base, nsid);
}

int mdw_pds_parse_at_uri(const char *uri, char **authority, char **collection, char **rkey)
{
    mdw_at_uri p;
    if (authority)
        *authority = NULL;
    if (collection)
        *collection = NULL;
    if (rkey)
        *rkey = NULL;
    if (mdw_at_uri_split(uri, strlen(uri), &p) != 0 || !p.rkey_len)
        return MDW_EMALFORMED;
    if (authority)
        *authority = xstrndup(p.authority, p.authority_len);
    if (collection)
        *collection = xstrndup(p.collection, p.collection_len);
    if (rkey)
        *rkey = xstrndup(p.rkey, p.rkey_len);
    return 0;
}

/* Copies s into out (bounded), replacing control characters with '?'. */
static void copy_clean(char *out, size_t outlen, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[j++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (outlen)
        out[j] = '\0';
}

void mdw_pds_format_error(const char *nsid, long status, const char *body, size_t body_len,
                          char *out, size_t outlen, char *name, size_t namelen)
{
    char ename[128] = "", emsg[400] = "";
    cJSON *j = body && body_len ? cJSON_ParseWithLength(body, body_len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(e))
        copy_clean(ename, sizeof ename, e->valuestring, strlen(e->valuestring));
    if (cJSON_IsString(m))
        copy_clean(emsg, sizeof emsg, m->valuestring, strlen(m->valuestring));
    cJSON_Delete(j);
    if (name && namelen)
        copy_clean(name, namelen, ename, strlen(ename));
    if (ename[0] && emsg[0])
        snprintf(out, outlen, "%s: %s: %s (HTTP %ld)", nsid, ename, emsg, status);
    else if (ename[0] || emsg[0])
        snprintf(out, outlen, "%s: %s (HTTP %ld)", nsid, ename[0] ? ename : emsg, status);
    else
        snprintf(out, outlen, "%s: HTTP %ld with no XRPC error body", nsid, status);
}

int64_t mdw_pds_retry_delay_ms(int attempt, int64_t now_us, int64_t ratelimit_reset,
                               int64_t retry_after_s, int64_t backoff_ms, int64_t max_wait_ms,
                               double jitter)
{
    int64_t d;
    if (ratelimit_reset > 0) {
        /* The PDS says when the window reopens: wait until then (+ a little). */
        d = ratelimit_reset * 1000 - now_us / 1000 + 100;
        if (d < 0)
            d = 0;
    } else if (retry_after_s >= 0) {
        d = retry_after_s * 1000;
    } else {
        int shift = attempt > 1 ? attempt - 1 : 0;
        if (shift > 16)
            shift = 16;
        d = backoff_ms << shift;
        d = (int64_t)((double)d * (0.75 + 0.5 * jitter));
    }
    if (d > max_wait_ms)
        return -1;
    return d;
}

int mdw_pds_read_password_file(const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open app_password_file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "cannot stat app_password_file %s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "app_password_file %s is not a regular file", path);
        return MDW_EDENIED;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(err, errlen,
                 "app_password_file %s must be owned by you and readable only by you "
                 "(mode %03o; run chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 0777), path);
        return MDW_EDENIED;
    }
    char buf[MDW_PDS_MAX_PASSWORD_BYTES + 1];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(buf, sizeof buf);
            snprintf(err, errlen, "cannot read app_password_file %s: %s", path, strerror(e));
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf)
            break;
    }
    close(fd);
    if (n > MDW_PDS_MAX_PASSWORD_BYTES) {
        explicit_bzero(buf, sizeof buf);
        snprintf(err, errlen, "app_password_file %s is over %u bytes", path,
                 (unsigned)MDW_PDS_MAX_PASSWORD_BYTES);
        return MDW_ETOOBIG;
    }
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(buf, '\0', n)) {
        explicit_bzero(buf, sizeof buf);
        snprintf(err, errlen, "app_password_file %s holds no password", path);
        return MDW_EINVALID;
    }
    *out = xstrndup(buf, n);
    explicit_bzero(buf, sizeof buf);
    return 0;
}

int mdw_pds_write_private_file(const char *path, const char *text, size_t len)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return -e;
    }
    int rc = 0;
    if (fchmod(fd, 0600) != 0)
        rc = -errno;
    size_t off = 0;
    while (!rc && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            off += (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}
