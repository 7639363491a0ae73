/*
** identity/didres.c — DID resolution over the network, cached (identity.h).
**
** The cache is common/lru's hash table and recency list keyed by the DID
** string; one mutex guards it. Fetches run without the lock: a slow PLC directory
** must not serialize requests for DIDs that are already cached.
*/
#include "identity/identity.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/buf.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/lru.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/banned.h"

#define DIDRES_HTTP_ERR_TTL_US (5 * 1000000) /* a failing directory is retried after 5 s */

static mdw_counter m_fetch_ok =
    MDW_COUNTER_INIT("meadow_auth_did_fetches_total", "result=\"ok\"", "DID document fetches");
static mdw_counter m_fetch_notfound = MDW_COUNTER_INIT(
    "meadow_auth_did_fetches_total", "result=\"notfound\"", "DID document fetches");
static mdw_counter m_fetch_bad = MDW_COUNTER_INIT("meadow_auth_did_fetches_total",
                                                  "result=\"malformed\"", "DID document fetches");
static mdw_counter m_fetch_err =
    MDW_COUNTER_INIT("meadow_auth_did_fetches_total", "result=\"error\"", "DID document fetches");
static mdw_counter m_cache_hit =
    MDW_COUNTER_INIT("meadow_auth_did_cache_hits_total", NULL, "DID keys answered from cache");
static mdw_hist m_fetch_time =
    MDW_HIST_INIT("meadow_auth_did_fetch_seconds", NULL, "DID document fetch latency");

typedef struct entry {
    mdw_lru_node node; /* first: the cache's links; hash = FNV-1a of did */
    char *did;
    int rc; /* 0 or the resolution error remembered (negative entry) */
    mdw_didres_keys keys;
    int64_t fetched_us, expires_us; /* monotonic */
} entry;

struct mdw_didres {
    char *plc_url;
    int64_t ttl_us;
    int timeout_ms;
    int allow_localhost;
    mdw_clock *clock;
    mdw_did_resolver *docs; /* docs file (identity/diddoc.c), read-only after open */

    pthread_mutex_t mu;
    mdw_lru cache;
    _Atomic uint64_t fetches, hits;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int entry_eq(const mdw_lru_node *n, const void *did)
{
    return strcmp(((const entry *)n)->did, did) == 0;
}

static void entry_drop(mdw_lru_node *n)
{
    entry *e = (entry *)n;
    free(e->did);
    free(e);
}

int mdw_didres_new(mdw_didres **out, const mdw_didres_opts *o, mdw_clock *clock)
{
    static int metrics_done;
    *out = NULL;
    mdw_didres *r = xcalloc(1, sizeof *r);
    r->plc_url = xstrdup(o->plc_url && o->plc_url[0] ? o->plc_url : "https://plc.directory");
    size_t pl = strlen(r->plc_url);
    while (pl > 0 && r->plc_url[pl - 1] == '/')
        r->plc_url[--pl] = '\0';
    r->ttl_us = o->cache_ttl_s * 1000000;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 3000;
    r->allow_localhost = o->allow_localhost;
    r->clock = clock;
    mdw_lru_init(&r->cache, o->cache_max ? o->cache_max : 1, entry_eq, entry_drop);
    pthread_mutex_init(&r->mu, NULL);
    if (o->docs_file && o->docs_file[0]) {
        int rc = mdw_did_resolver_file_open(o->docs_file, &r->docs);
        if (rc) {
            mdw_error("auth", "did_docs_file unreadable", "file=%s err=\"%s\"", o->docs_file,
                      mdw_strerror(rc));
            mdw_didres_free(r);
            return MDW_ECONFIG;
        }
    }
    pthread_once(&curl_once, curl_init_once);
    if (!metrics_done) { /* registration is idempotent; the flag only saves the lock */
        mdw_counter_register(&m_fetch_ok);
        mdw_counter_register(&m_fetch_notfound);
        mdw_counter_register(&m_fetch_bad);
        mdw_counter_register(&m_fetch_err);
        mdw_counter_register(&m_cache_hit);
        mdw_hist_register(&m_fetch_time);
        metrics_done = 1;
    }
    *out = r;
    return 0;
}

void mdw_didres_free(mdw_didres *r)
{
    if (!r)
        return;
    mdw_lru_release(&r->cache);
    mdw_did_resolver_close(r->docs);
    pthread_mutex_destroy(&r->mu);
    free(r->plc_url);
    free(r);
}

uint64_t mdw_didres_fetches(const mdw_didres *r)
{
    return r->fetches;
}

uint64_t mdw_didres_hits(const mdw_didres *r)
{
    return r->hits;
}

/* --- document parsing --------------------------------------------------- */

/*
** #atproto_label, for iss "<did>#atproto_labeler" (the reference's mapping):
** identity/diddoc.c keeps only #atproto, so this one method is looked up here, by
** the reference's rule ("#atproto_label" or "<did>#atproto_label", first
** match decides), Multikey form only.
*/
static int label_key(const cJSON *doc, const char *did, mdw_pubkey *out)
{
    const cJSON *vm;
    size_t dl = strlen(did);
    cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(doc, "verificationMethod"))
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(vm, "id");
        if (!cJSON_IsString(id))
            continue;
        const char *v = id->valuestring;
        if (strncmp(v, did, dl) == 0)
            v += dl;
        if (strcmp(v, "#atproto_label") != 0)
            continue;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(vm, "type");
        const cJSON *mb = cJSON_GetObjectItemCaseSensitive(vm, "publicKeyMultibase");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "Multikey") != 0 ||
            !cJSON_IsString(mb))
            return MDW_ENOTFOUND;
        return mdw_pubkey_from_multibase(mb->valuestring, out) == 0 ? 0 : MDW_ENOTFOUND;
    }
    return MDW_ENOTFOUND;
}

int mdw_didres_parse_doc(const char *did, const char *json, size_t len, mdw_didres_keys *out)
{
    mdw_diddoc d;
    memset(out, 0, sizeof *out);
    if (mdw_diddoc_parse(json, len, &d) != 0)
        return MDW_EMALFORMED;
    int ok = d.did && strcmp(d.did, did) == 0;
    out->has_atproto = ok && d.has_key;
    if (out->has_atproto)
        out->atproto = d.key;
    mdw_diddoc_release(&d);
    if (!ok)
        return MDW_EMALFORMED;
    cJSON *doc = cJSON_ParseWithLength(json, len);
    out->has_label = doc && label_key(doc, did, &out->label) == 0;
    cJSON_Delete(doc);
    return 0;
}

/* --- fetching ----------------------------------------------------------- */

/* did:web:<host>[%3A<port>] -> host[:port], checked to be a plain host name. */
static int web_host(const char *did, char *host, size_t hostmax, int *localhost)
{
    const char *p = did + 8;
    size_t o = 0;
    for (; *p; p++) {
        char c = *p;
        if (c == ':')
            return MDW_EMALFORMED; /* a path: atproto does not support it */
        if (c == '%') {
            if (strncmp(p, "%3A", 3) != 0 && strncmp(p, "%3a", 3) != 0)
                return MDW_EMALFORMED;
            c = ':';
            p += 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '-')) {
            return MDW_EMALFORMED;
        }
        if (o + 1 >= hostmax)
            return MDW_EMALFORMED;
        host[o++] = c;
    }
    host[o] = '\0';
    if (o == 0 || host[0] == ':')
        return MDW_EMALFORMED;
    char *colon = strchr(host, ':');
    if (colon) { /* a port: digits only, once */
        if (!colon[1] || strchr(colon + 1, ':'))
            return MDW_EMALFORMED;
        for (const char *d = colon + 1; *d; d++)
            if (*d < '0' || *d > '9')
                return MDW_EMALFORMED;
    }
    size_t hl = colon ? (size_t)(colon - host) : o;
    *localhost = hl == 9 && strncasecmp(host, "localhost", 9) == 0;
    return 0;
}

char *mdw_did_doc_url(const char *did, const char *plc_url, int allow_localhost)
{
    if (!mdw_did_valid(did, strlen(did)))
        return NULL;
    if (strncmp(did, "did:plc:", 8) == 0) {
        const char *id = did + 8;
        if (strlen(id) != 24 || strspn(id, "abcdefghijklmnopqrstuvwxyz234567") != 24)
            return NULL;
        size_t n = strlen(plc_url);
        while (n > 0 && plc_url[n - 1] == '/')
            n--;
        return xasprintf("%.*s/%s", (int)n, plc_url, did);
    }
    if (strncmp(did, "did:web:", 8) == 0) {
        char host[512];
        int local = 0;
        if (web_host(did, host, sizeof host, &local) != 0 || (local && !allow_localhost))
            return NULL;
        return xasprintf("%s://%s/.well-known/did.json", local ? "http" : "https", host);
    }
    return NULL;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    mdw_buf *b = ud;
    size_t n = size * nmemb;
    return mdw_buf_append(b, p, n) == 0 ? n : 0; /* 0 aborts: body over the cap */
}

/* Fetches and parses did's document into *keys. */
static int fetch_doc(mdw_didres *r, const char *did, mdw_didres_keys *keys)
{
    memset(keys, 0, sizeof *keys);
    if (!mdw_did_valid(did, strlen(did)))
        return MDW_EMALFORMED;
    if (r->docs) {
        mdw_diddoc d;
        int rc = mdw_did_resolve(r->docs, did, &d);
        if (rc)
            return rc == MDW_ENOTFOUND ? rc : MDW_EMALFORMED;
        keys->has_atproto = d.has_key;
        keys->atproto = d.key;
        mdw_diddoc_release(&d);
        return 0;
    }
    int is_plc = strncmp(did, "did:plc:", 8) == 0;
    char *url = mdw_did_doc_url(did, r->plc_url, r->allow_localhost);
    if (!url)
        return MDW_EMALFORMED;

    mdw_buf body = MDW_BUF_INIT(MDW_MAX_DID_DOC_BYTES);
    CURL *c = curl_easy_init();
    if (!c) {
        mdw_buf_release(&body);
        free(url);
        return MDW_EHTTP;
    }
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Accept: application/did+ld+json,application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "meadow-feedgen");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* several threads: no SIGALRM timeouts */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* as the reference: redirect = error */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    int64_t t0 = mdw_clock_mono_us(mdw_clock_real());
    CURLcode cc = curl_easy_perform(c);
    mdw_hist_observe_us(&m_fetch_time, mdw_clock_mono_us(mdw_clock_real()) - t0);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    r->fetches++;

    int rc;
    if (cc == CURLE_WRITE_ERROR) {
        rc = MDW_EMALFORMED; /* over MDW_MAX_DID_DOC_BYTES */
    } else if (cc != CURLE_OK) {
        mdw_warn("auth", "did document fetch failed", "url=%s err=\"%s\"", url,
                 curl_easy_strerror(cc));
        rc = MDW_EHTTP;
    } else if (status == 200) {
        rc = mdw_didres_parse_doc(did, body.data ? body.data : "", body.len, keys);
    } else if (status == 404 || (!is_plc && status >= 300 && status < 500)) {
        /* "positively not found"; did:web treats any non-ok answer so, as the reference */
        rc = MDW_ENOTFOUND;
    } else {
        mdw_warn("auth", "did document fetch refused", "url=%s status=%ld", url, status);
        rc = MDW_EHTTP;
    }
    mdw_buf_release(&body);
    free(url);
    if (rc == 0)
        mdw_counter_inc(&m_fetch_ok);
    else if (rc == MDW_ENOTFOUND)
        mdw_counter_inc(&m_fetch_notfound);
    else if (rc == MDW_EHTTP)
        mdw_counter_inc(&m_fetch_err);
    else
        mdw_counter_inc(&m_fetch_bad);
    return rc;
}

/* --- cache (callers hold r->mu) ----------------------------------------- */

static entry *cache_find(mdw_didres *r, const char *did, uint64_t h)
{
    return (entry *)mdw_lru_find(&r->cache, h, did);
}

static entry *cache_put(mdw_didres *r, const char *did, uint64_t h)
{
    entry *e = cache_find(r, did, h);
    if (e) {
        mdw_lru_touch(&r->cache, &e->node);
        return e;
    }
    e = xcalloc(1, sizeof *e);
    e->did = xstrdup(did);
    mdw_lru_insert(&r->cache, &e->node, h);
    return e;
}

static int answer(const entry *e, const char *key_id, mdw_pubkey *out)
{
    if (e->rc)
        return e->rc;
    if (strcmp(key_id, "atproto") == 0 && e->keys.has_atproto)
        *out = e->keys.atproto;
    else if (strcmp(key_id, "atproto_label") == 0 && e->keys.has_label)
        *out = e->keys.label;
    else
        return MDW_ENOTFOUND;
    return 0;
}

int mdw_didres_key(mdw_didres *r, const char *did, const char *key_id, int force_refresh,
                   mdw_pubkey *out, int *refreshed)
{
    uint64_t h = hash_str(did);
    int64_t now = mdw_clock_mono_us(r->clock);
    int rc;
    if (refreshed)
        *refreshed = 0;
    memset(out, 0, sizeof *out);

    pthread_mutex_lock(&r->mu);
    entry *e = cache_find(r, did, h);
    if (e && now < e->expires_us &&
        (!force_refresh || now - e->fetched_us < MDW_DIDRES_MIN_REFRESH_US)) {
        mdw_lru_touch(&r->cache, &e->node);
        rc = answer(e, key_id, out);
        pthread_mutex_unlock(&r->mu);
        r->hits++;
        mdw_counter_inc(&m_cache_hit);
        return rc;
    }
    pthread_mutex_unlock(&r->mu);

    mdw_didres_keys keys;
    rc = fetch_doc(r, did, &keys);
    if (refreshed)
        *refreshed = 1;
    now = mdw_clock_mono_us(r->clock);

    pthread_mutex_lock(&r->mu);
    if (r->ttl_us <= 0) {
        /* No caching: answer from the fetch alone. */
        entry tmp = {.rc = rc, .keys = keys};
        pthread_mutex_unlock(&r->mu);
        return answer(&tmp, key_id, out);
    }
    e = cache_find(r, did, h);
    if (rc == MDW_EHTTP && e && e->rc == 0) {
        /* Directory unreachable: keep serving the keys we had (stale-if-error). */
        e->fetched_us = now;
        e->expires_us = now + DIDRES_HTTP_ERR_TTL_US;
        rc = answer(e, key_id, out);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    e = cache_put(r, did, h);
    e->rc = rc;
    e->keys = keys;
    e->fetched_us = now;
    int64_t ttl = r->ttl_us;
    if (rc == MDW_EHTTP)
        ttl = ttl < DIDRES_HTTP_ERR_TTL_US ? ttl : DIDRES_HTTP_ERR_TTL_US;
    else if (rc)
        ttl = ttl < MDW_DIDRES_NEG_TTL_US ? ttl : MDW_DIDRES_NEG_TTL_US;
    e->expires_us = now + ttl;
    rc = answer(e, key_id, out);
    pthread_mutex_unlock(&r->mu);
    return rc;
}
