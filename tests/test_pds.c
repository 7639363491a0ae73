/*
** tests/test_pds.c — the PDS client's offline parts: record keys, URLs, DID
** documents (the corpus' real ones), XRPC error text, retry delays, the
** owner-only password file, the 0600 session file and its reuse rules.
** The client against a real PDS is tests/integration/e2e_pds_cli.sh.
*/
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zstd.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "identity/identity.h"
#include "pds/pds.h"
#include "tests/test.h"
#include "common/banned.h"

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok && chmod(path, mode) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = xcalloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A TID's time through the one TID parser (common/atname.h); -1 when none. */
static int64_t tid_us(const char *s)
{
    int64_t t = 0;
    return mdw_tid_time(s, strlen(s), &t) ? -1 : t;
}

TEST(tid_shape_and_order)
{
    char a[14], b[14];
    mdw_pds_tid(1763878280000000LL, a);
    mdw_pds_tid(1763878280000001LL, b);
    ASSERT_EQ(strlen(a), 13);
    for (int i = 0; i < 13; i++)
        ASSERT(strchr("234567abcdefghijklmnopqrstuvwxyz", a[i]) != NULL);
    /* The top bit is zero, so the first character is one of the first 16. */
    ASSERT(strchr("234567abcdefghij", a[0]) != NULL);
    ASSERT(strcmp(a, b) < 0); /* later time sorts later whatever the clock id */
    ASSERT_EQ(tid_us(a), 1763878280000000LL);
    ASSERT_EQ(tid_us(b), 1763878280000001LL);
    /* A real record key of the corpus repository (a like) decodes to a 2023-2026 time. */
    int64_t t = tid_us("3lqdkdjpy6t2e");
    ASSERT(t > 1672531200000000LL && t < 1798761600000000LL);
    ASSERT_EQ(tid_us("self"), -1);
    ASSERT_EQ(tid_us("zzzzzzzzzzzzz"), -1); /* not TID syntax */
    ASSERT_EQ(tid_us("djpykdjpy6t2e"), -1); /* TID syntax, top bit set (fuzz) */
    ASSERT_EQ(tid_us("3lqdkdjpy6t21"), -1); /* '1' is not base32-sortable */
}

TEST(xrpc_url)
{
    char *u = mdw_pds_xrpc_url("http://127.0.0.1:9/", "com.atproto.repo.getRecord", "repo=x");
    ASSERT_STREQ(u, "http://127.0.0.1:9/xrpc/com.atproto.repo.getRecord?repo=x");
    free(u);
    u = mdw_pds_xrpc_url("https://bsky.social", "com.atproto.server.createSession", NULL);
    ASSERT_STREQ(u, "https://bsky.social/xrpc/com.atproto.server.createSession");
    free(u);
}

TEST(did_web_url)
{
    char *u = mdw_did_doc_url("did:web:feeds.example.com", "https://plc.directory", 1);
    ASSERT_STREQ(u, "https://feeds.example.com/.well-known/did.json");
    free(u);
    u = mdw_did_doc_url("did:web:localhost%3A2583", "https://plc.directory", 1);
    ASSERT_STREQ(u, "http://localhost:2583/.well-known/did.json");
    free(u);
    ASSERT(mdw_did_doc_url("did:web:example.com:user:alice", "https://plc.directory", 1) ==
           NULL); /* paths: not atproto */
    ASSERT(mdw_did_doc_url("did:plc:abc", "https://plc.directory", 1) == NULL);
    ASSERT(mdw_did_doc_url("did:web:localhost%3A2583", "https://plc.directory", 0) == NULL);
    u = mdw_did_doc_url("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "https://plc.directory/", 1);
    ASSERT_STREQ(u, "https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    free(u);
    ASSERT(mdw_did_doc_url("did:web:", "https://plc.directory", 1) == NULL);
    ASSERT(mdw_did_doc_url("did:web:evil.com%2Fx", "https://plc.directory", 1) == NULL);
}

/* Every real DID document of the corpus names an https PDS endpoint. */
TEST(doc_endpoint_corpus)
{
    char *z = slurp("../shared/testdata/atproto-corpus/did_docs.json.zst");
    ASSERT_MSG(z != NULL, "corpus missing (run from the repository root)");
    FILE *f = fopen("../shared/testdata/atproto-corpus/did_docs.json.zst", "rb");
    fseek(f, 0, SEEK_END);
    long zn = ftell(f);
    fclose(f);
    unsigned long long n = ZSTD_getFrameContentSize(z, (size_t)zn);
    ASSERT(n != ZSTD_CONTENTSIZE_ERROR && n != ZSTD_CONTENTSIZE_UNKNOWN && n < (64u << 20));
    char *text = xmalloc((size_t)n + 1);
    size_t got = ZSTD_decompress(text, (size_t)n, z, (size_t)zn);
    free(z);
    ASSERT(!ZSTD_isError(got));
    text[got] = '\0';
    cJSON *docs = cJSON_Parse(text);
    free(text);
    ASSERT(docs != NULL);
    int count = 0, found = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        count++;
        char *ep = mdw_diddoc_pds_endpoint(d);
        if (ep && !strncmp(ep, "https://", 8))
            found++;
        free(ep);
    }
    cJSON_Delete(docs);
    ASSERT(count > 10);
    ASSERT_EQ(found, count);
}

TEST(doc_endpoint_rules)
{
    const char *ok = "{\"id\":\"did:plc:a\",\"service\":[{\"id\":\"#bsky_fg\",\"type\":"
                     "\"BskyFeedGenerator\",\"serviceEndpoint\":\"https://fg\"},{\"id\":"
                     "\"did:plc:a#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
                     "\"serviceEndpoint\":\"https://pds.example\"}]}";
    cJSON *j = cJSON_Parse(ok);
    char *ep = mdw_diddoc_pds_endpoint(j);
    ASSERT_STREQ(ep, "https://pds.example");
    free(ep);
    cJSON_Delete(j);
    /* A full id naming another DID, or a non-http endpoint, is not ours. */
    j = cJSON_Parse("{\"id\":\"did:plc:a\",\"service\":[{\"id\":\"did:plc:b#atproto_pds\","
                    "\"serviceEndpoint\":\"https://x\"},{\"id\":\"#atproto_pds\","
                    "\"serviceEndpoint\":\"ftp://x\"}]}");
    ASSERT(mdw_diddoc_pds_endpoint(j) == NULL);
    cJSON_Delete(j);
}

TEST(at_uri)
{
    char *a, *c, *k;
    ASSERT_OK(mdw_pds_parse_at_uri("at://did:plc:abc/app.bsky.feed.post/3kabc", &a, &c, &k));
    ASSERT_STREQ(a, "did:plc:abc");
    ASSERT_STREQ(c, "app.bsky.feed.post");
    ASSERT_STREQ(k, "3kabc");
    free(a), free(c), free(k);
    ASSERT_EQ(mdw_pds_parse_at_uri("at://did:plc:abc/app.bsky.feed.post", NULL, NULL, NULL),
              MDW_EMALFORMED);
    ASSERT_EQ(mdw_pds_parse_at_uri("https://x/y/z", NULL, NULL, NULL), MDW_EMALFORMED);
    ASSERT_EQ(mdw_pds_parse_at_uri("at://a/b/c/d", NULL, NULL, NULL), MDW_EMALFORMED);
    ASSERT_EQ(mdw_pds_parse_at_uri("at://a/b/c d", NULL, NULL, NULL), MDW_EMALFORMED);
    ASSERT_EQ(mdw_pds_parse_at_uri("at:///b/c", NULL, NULL, NULL), MDW_EMALFORMED);
}

TEST(format_error)
{
    char out[256], name[64];
    const char *body = "{\"error\":\"AuthenticationRequired\",\"message\":\"Invalid identifier "
                       "or password\"}";
    mdw_pds_format_error("com.atproto.server.createSession", 401, body, strlen(body), out,
                         sizeof out, name, sizeof name);
    ASSERT_STREQ(out, "com.atproto.server.createSession: AuthenticationRequired: Invalid "
                      "identifier or password (HTTP 401)");
    ASSERT_STREQ(name, "AuthenticationRequired");
    mdw_pds_format_error("m", 502, "<html>bad gateway</html>", 24, out, sizeof out, name,
                         sizeof name);
    ASSERT_STREQ(out, "m: HTTP 502 with no XRPC error body");
    ASSERT_STREQ(name, "");
    /* Control characters from the server never reach the terminal. */
    const char *evil = "{\"error\":\"X\\u001b[31m\",\"message\":\"a\\nb\"}";
    mdw_pds_format_error("m", 400, evil, strlen(evil), out, sizeof out, NULL, 0);
    ASSERT_STREQ(out, "m: X?[31m: a?b (HTTP 400)");
    /* A long message is bounded. */
    char big[3000];
    int n = snprintf(big, sizeof big, "{\"error\":\"E\",\"message\":\"");
    memset(big + n, 'x', 2000);
    memcpy(big + n + 2000, "\"}", 3);
    mdw_pds_format_error("m", 400, big, strlen(big), out, sizeof out, NULL, 0);
    ASSERT(strlen(out) < sizeof out);
}

TEST(retry_delay)
{
    int64_t now = 1763878280LL * 1000000; /* µs */
    /* ratelimit-reset 2 s ahead: wait ~2 s, whatever the attempt. */
    int64_t d = mdw_pds_retry_delay_ms(3, now, 1763878282LL, -1, 250, 60000, 0.5);
    ASSERT(d >= 2000 && d <= 2200);
    /* A reset in the past: go now. */
    ASSERT(mdw_pds_retry_delay_ms(1, now, 1763878000LL, -1, 250, 60000, 0.5) <= 100);
    /* An hour away: give up at once. */
    ASSERT_EQ(mdw_pds_retry_delay_ms(1, now, 1763878280LL + 3600, -1, 250, 60000, 0.5), -1);
    /* retry-after seconds. */
    ASSERT_EQ(mdw_pds_retry_delay_ms(1, now, 0, 3, 250, 60000, 0.5), 3000);
    /* Exponential backoff, +-25 % jitter. */
    ASSERT_EQ(mdw_pds_retry_delay_ms(1, now, 0, -1, 250, 60000, 0.5), 250);
    ASSERT_EQ(mdw_pds_retry_delay_ms(3, now, 0, -1, 250, 60000, 0.5), 1000);
    ASSERT_EQ(mdw_pds_retry_delay_ms(3, now, 0, -1, 250, 60000, 0.0), 750);
    ASSERT(mdw_pds_retry_delay_ms(3, now, 0, -1, 250, 60000, 0.999) <= 1250);
    ASSERT_EQ(mdw_pds_retry_delay_ms(40, now, 0, -1, 250, 60000, 0.5), -1);
}

TEST(password_file)
{
    const char *dir = TEST_TMPDIR();
    char path[600], err[512];
    char *pw = NULL;
    snprintf(path, sizeof path, "%s/pw", dir);
    ASSERT_OK(write_file(path, "abcd-efgh-ijkl-mnop\n", 0600));
    ASSERT_OK(mdw_pds_read_password_file(path, &pw, err, sizeof err));
    ASSERT_STREQ(pw, "abcd-efgh-ijkl-mnop");
    free(pw);
    ASSERT_OK(chmod(path, 0400));
    ASSERT_OK(mdw_pds_read_password_file(path, &pw, err, sizeof err));
    free(pw);
    static const mode_t refused[] = {0640, 0604, 0644, 0660, 0606};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ASSERT_OK(chmod(path, refused[i]));
        ASSERT_EQ(mdw_pds_read_password_file(path, &pw, err, sizeof err), MDW_EDENIED);
        ASSERT(pw == NULL);
        ASSERT_CONTAINS(err, "readable only by you");
        ASSERT(strstr(err, "abcd") == NULL); /* the message never shows the password */
    }
    ASSERT_EQ(mdw_pds_read_password_file(dir, &pw, err, sizeof err), MDW_EDENIED);
    snprintf(path, sizeof path, "%s/missing", dir);
    ASSERT_EQ(mdw_pds_read_password_file(path, &pw, err, sizeof err), -ENOENT);
    snprintf(path, sizeof path, "%s/empty", dir);
    ASSERT_OK(write_file(path, " \n", 0600));
    ASSERT_EQ(mdw_pds_read_password_file(path, &pw, err, sizeof err), MDW_EINVALID);
    snprintf(path, sizeof path, "%s/big", dir);
    char big[MDW_PDS_MAX_PASSWORD_BYTES + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_OK(write_file(path, big, 0600));
    ASSERT_EQ(mdw_pds_read_password_file(path, &pw, err, sizeof err), MDW_ETOOBIG);
}

TEST(private_file_mode)
{
    const char *dir = TEST_TMPDIR();
    char path[600];
    snprintf(path, sizeof path, "%s/session.json", dir);
    ASSERT_OK(write_file(path, "old", 0644));
    mode_t old = umask(0);
    int rc = mdw_pds_write_private_file(path, "{\"x\":1}", 7);
    umask(old);
    ASSERT_OK(rc);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    char *t = slurp(path);
    ASSERT_STREQ(t, "{\"x\":1}");
    free(t);
}

/*
** The cached session is reused only for the same PDS and account and only
** from an owner-only file. The PDS URL points at a closed port, so any use
** of the network fails: a login that succeeds came from the cache.
*/
TEST(session_cache_rules)
{
    const char *dir = TEST_TMPDIR();
    char path[600];
    snprintf(path, sizeof path, "%s/session.json", dir);
    const char *sess = "{\"service\":\"http://127.0.0.1:9\",\"identifier\":\"alice.test\","
                       "\"did\":\"did:plc:alice\",\"handle\":\"alice.test\",\"accessJwt\":"
                       "\"a.b.c\",\"refreshJwt\":\"d.e.f\"}";
    ASSERT_OK(write_file(path, sess, 0600));
    mdw_pds_opts o;
    mdw_pds_opts_init(&o);
    o.pds_url = "http://127.0.0.1:9/";
    o.identifier = "alice.test";
    o.session_file = path;
    o.max_retries = 0;
    o.timeout_ms = 2000;
    mdw_pds *p;
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_OK(mdw_pds_login(p));
    ASSERT_STREQ(mdw_pds_did(p), "did:plc:alice");
    mdw_pds_close(p);
    /* By DID too. */
    o.identifier = "did:plc:alice";
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_OK(mdw_pds_login(p));
    mdw_pds_close(p);
    /* Another account: not reused; no password: a clear error. */
    o.identifier = "bob.test";
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_EQ(mdw_pds_login(p), MDW_ECONFIG);
    ASSERT_CONTAINS(mdw_pds_error(p), "MEADOW_APP_PASSWORD");
    mdw_pds_close(p);
    /* Another PDS: not reused; with a password it tries the (closed) PDS. */
    o.identifier = "alice.test";
    o.pds_url = "http://127.0.0.1:7";
    o.app_password = "pw-pw-pw-pw";
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_EQ(mdw_pds_login(p), MDW_EHTTP);
    ASSERT_CONTAINS(mdw_pds_error(p), "cannot reach http://127.0.0.1:7");
    ASSERT(strstr(mdw_pds_error(p), "pw-pw") == NULL);
    mdw_pds_close(p);
    /* The right PDS but a file others can read: not used. */
    o.pds_url = "http://127.0.0.1:9";
    o.app_password = NULL;
    ASSERT_OK(chmod(path, 0640));
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_EQ(mdw_pds_login(p), MDW_ECONFIG);
    mdw_pds_close(p);
}

TEST(no_identifier)
{
    mdw_pds_opts o;
    mdw_pds_opts_init(&o);
    o.pds_url = "http://127.0.0.1:9";
    o.app_password = "x";
    mdw_pds *p;
    ASSERT_OK(mdw_pds_open(&p, &o));
    ASSERT_EQ(mdw_pds_login(p), MDW_ECONFIG);
    ASSERT_CONTAINS(mdw_pds_error(p), "identifier");
    mdw_pds_close(p);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_OFF);
    RUN(tid_shape_and_order);
    RUN(xrpc_url);
    RUN(did_web_url);
    RUN(doc_endpoint_corpus);
    RUN(doc_endpoint_rules);
    RUN(at_uri);
    RUN(format_error);
    RUN(retry_delay);
    RUN(password_file);
    RUN(private_file_mode);
    RUN(session_cache_rules);
    RUN(no_identifier);
    return TEST_REPORT();
}
