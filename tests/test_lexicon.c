/*
** Unit tests for lexicon/: the embedded documents match lexicon/<id>.json,
** loading, each rule and format of the validator with its message, the
** application rules. The record-by-record comparison with @atproto/lexicon is
** tests/integration/lexicon_xcheck.sh.
*/
#include "tests/test.h"

#include <cJSON.h>
#include <dirent.h>
#include <pthread.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/mem.h"
#include "lexicon/builtin.h"
#include "lexicon/formats.h"
#include "lexicon/lexicon.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = xmalloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, f);
    p[*len] = '\0';
    fclose(f);
    return p;
}

/* Validates JSON text against nsid; returns the code, message in err. */
static int check(const mdw_lexicon *lex, const char *nsid, const char *json, char *err,
                 size_t errlen)
{
    cJSON *j = cJSON_Parse(json);
    if (!j) {
        snprintf(err, errlen, "test bug: bad JSON %s", json);
        return -1;
    }
    int rc = mdw_lexicon_validate_record(lex, nsid, j, err, errlen);
    cJSON_Delete(j);
    return rc;
}

TEST(builtin_docs_match_files_byte_for_byte)
{
    size_t files = 0;
    DIR *d = opendir("lexicon");
    ASSERT(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json"))
            continue;
        files++;
        size_t i;
        for (i = 0; i < lexicon__builtin_count; i++)
            if (!strcmp(lexicon__builtin_docs[i].name, e->d_name))
                break;
        if (i == lexicon__builtin_count) {
            closedir(d);
            ASSERT_MSG(0, "%s is not embedded: run scripts/embed-lexicons.sh", e->d_name);
        }
        char path[512];
        snprintf(path, sizeof path, "lexicon/%s", e->d_name);
        size_t len;
        char *text = slurp(path, &len);
        int same = text && len == lexicon__builtin_docs[i].len &&
                   !memcmp(text, lexicon__builtin_docs[i].text, len);
        free(text);
        if (!same) {
            closedir(d);
            ASSERT_MSG(0, "%s differs from lexicon/builtin_docs.c: run scripts/embed-lexicons.sh",
                       e->d_name);
        }
    }
    closedir(d);
    ASSERT_EQ(files, lexicon__builtin_count);
    ASSERT(files >= 6);
}

TEST(builtin_and_dir_load_the_same_documents)
{
    mdw_lexicon *a = NULL, *b = NULL;
    ASSERT_OK(mdw_lexicon_load_builtin(&a));
    ASSERT_OK(mdw_lexicon_load_dir(&b, "lexicon"));
    const char *ids[] = {"net.atrarium.community.config", "net.atrarium.community.membership",
                         "net.atrarium.moderation.action", "app.bsky.feed.generator"};
    for (size_t i = 0; i < 4; i++) {
        ASSERT(mdw_lexicon_has_record(a, ids[i]));
        ASSERT(mdw_lexicon_has_record(b, ids[i]));
    }
    ASSERT(!mdw_lexicon_has_record(a, "net.atrarium.group.config"));
    ASSERT(!mdw_lexicon_has_record(a, "app.bsky.richtext.facet")); /* an object, not a record */
    mdw_lexicon_free(a);
    mdw_lexicon_free(b);
}

TEST(unknown_nsid_is_not_found)
{
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_load_builtin(&lex));
    char err[256];
    ASSERT_EQ(check(lex, "net.atrarium.group.config", "{\"$type\":\"net.atrarium.group.config\"}",
                    err, sizeof err),
              MDW_ENOTFOUND);
    ASSERT_STREQ(err, "Lexicon not found: lex:net.atrarium.group.config");
    mdw_lexicon_free(lex);
}

TEST(moderation_action_paths_and_messages)
{
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_load_builtin(&lex));
    char err[256];
    const char *ok = "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"hide_post\","
                     "\"target\":{\"$type\":\"net.atrarium.moderation.action#postTarget\","
                     "\"uri\":\"at://did:plc:abc/app.bsky.feed.post/3kabc\"},"
                     "\"community\":\"at://did:plc:abc/net.atrarium.community.config/3kabc\","
                     "\"createdAt\":\"2024-01-01T00:00:00Z\"}";
    ASSERT_OK(check(lex, "net.atrarium.moderation.action", ok, err, sizeof err));
    const char *bad_uri = "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"hide_post\","
                          "\"target\":{\"$type\":\"net.atrarium.moderation.action#postTarget\","
                          "\"uri\":\"https://x\"},\"community\":\"at://did:plc:abc\","
                          "\"createdAt\":\"2024-01-01T00:00:00Z\"}";
    ASSERT_EQ(check(lex, "net.atrarium.moderation.action", bad_uri, err, sizeof err), MDW_EINVALID);
    ASSERT_STREQ(err, "Record/target/uri must be a valid at-uri");
    const char *closed = "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"hide_post\","
                         "\"target\":{\"$type\":\"com.example.other\"},"
                         "\"community\":\"at://did:plc:abc\","
                         "\"createdAt\":\"2024-01-01T00:00:00Z\"}";
    ASSERT_EQ(check(lex, "net.atrarium.moderation.action", closed, err, sizeof err), MDW_EINVALID);
    ASSERT_STREQ(err, "Record/target $type must be one of "
                      "lex:net.atrarium.moderation.action#postTarget, "
                      "lex:net.atrarium.moderation.action#userTarget");
    const char *missing = "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"hide_post\","
                          "\"community\":\"at://did:plc:abc\","
                          "\"createdAt\":\"2024-01-01T00:00:00Z\"}";
    ASSERT_EQ(check(lex, "net.atrarium.moderation.action", missing, err, sizeof err), MDW_EINVALID);
    ASSERT_STREQ(err, "Record must have the property \"target\"");
    ASSERT_EQ(
        check(lex, "net.atrarium.moderation.action", "{\"action\":\"hide_post\"}", err, sizeof err),
        MDW_EINVALID);
    ASSERT_STREQ(err, "Record/$type must be a string");
    ASSERT_EQ(check(lex, "net.atrarium.moderation.action",
                    "{\"$type\":\"net.atrarium.community.config\"}", err, sizeof err),
              MDW_EINVALID);
    ASSERT_STREQ(err, "Invalid $type: must be lex:net.atrarium.moderation.action, got "
                      "net.atrarium.community.config");
    mdw_lexicon_free(lex);
}

TEST(formats_accept_and_refuse)
{
#define YES(f, s) ASSERT_MSG(f(s, strlen(s)), "%s should accept %s", #f, s)
#define NO(f, s)  ASSERT_MSG(!f(s, strlen(s)), "%s should refuse %s", #f, s)
    YES(mdw_did_valid, "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    YES(mdw_did_valid, "did:web:localhost%3A8080");
    NO(mdw_did_valid, "did:plc:");
    NO(mdw_did_valid, "did:Plc:x");
    NO(mdw_did_valid, "did:plc:x%");
    YES(mdw_handle_valid, "alice.bsky.social");
    NO(mdw_handle_valid, "alice");
    NO(mdw_handle_valid, "alice.1com");
    NO(mdw_handle_valid, "a-.com");
    YES(mdw_nsid_valid, "net.atrarium.community.config");
    NO(mdw_nsid_valid, "net.atrarium");
    NO(mdw_nsid_valid, "net.atrarium.foo-bar");
    YES(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc");
    YES(mdw_at_uri_valid, "at://alice.test/app.bsky.feed.post/3kabc#/a%E2%82%AC");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc/");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc?x");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc#/%C0%80");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc#/%E2%82");
    NO(mdw_at_uri_valid, "at://did:plc:abc/app.bsky.feed.post/3kabc#/%");
    YES(lexicon__is_datetime, "2024-02-30T00:00:00Z");
    YES(lexicon__is_datetime, "0000-01-01T01:00:00+01:00");
    NO(lexicon__is_datetime, "0000-01-01T00:59:59+01:00");
    NO(lexicon__is_datetime, "9999-12-31T23:00:00-01:00");
    NO(lexicon__is_datetime, "2024-01-01T00:00:60Z");
    NO(lexicon__is_datetime, "2024-01-00T00:00:00Z");
    NO(lexicon__is_datetime, "2024-01-01T00:00:00");
    YES(lexicon__is_cid, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");
    YES(lexicon__is_cid, "QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU");
    NO(lexicon__is_cid, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hp");
    NO(lexicon__is_cid, "zQmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU");
    YES(lexicon__is_uri, "https://example.com");
    NO(lexicon__is_uri, "https://exa mple.com");
    NO(lexicon__is_uri, "https:/x");
    YES(mdw_tid_valid, "3kfwpqaijmk2c");
    NO(mdw_tid_valid, "kkfwpqaijmk2c");
    YES(mdw_rkey_valid, "self");
    NO(mdw_rkey_valid, "..");
    YES(lexicon__is_language, "zh-Hant-TW");
    NO(lexicon__is_language, "en_US");
    NO(lexicon__is_language, "en\n");
    size_t len;
    ASSERT(lexicon__base64_len("AQIDBA==", 8, &len) && len == 4);
    ASSERT(lexicon__base64_len("AQIDBA", 6, &len) && len == 4);
    ASSERT(!lexicon__base64_len("A", 1, &len));
#undef YES
#undef NO
}

TEST(datetime_parses_as_validated)
{
    int64_t t;
    ASSERT_OK(mdw_lexicon_parse_datetime("2024-01-02T03:04:05.678Z", &t));
    ASSERT_EQ(t, 1704164645678000LL);
    ASSERT_OK(mdw_lexicon_parse_datetime("2024-01-02T04:04:05.6789999+01:00", &t));
    ASSERT_EQ(t, 1704164645678999LL);
    ASSERT_OK(mdw_lexicon_parse_datetime("2024-02-30T00:00:00Z", &t)); /* rolls over to 1 March */
    int64_t march;
    ASSERT_OK(mdw_lexicon_parse_datetime("2024-03-01T00:00:00Z", &march));
    ASSERT_EQ(t, march);
    ASSERT_OK(mdw_lexicon_parse_datetime("1970-01-01T00:00:00Z", &t));
    ASSERT_EQ(t, 0);
    ASSERT_EQ(mdw_lexicon_parse_datetime("2024-01-02T03:04:05", &t), MDW_EMALFORMED);
}

TEST(graphemes_count_clusters)
{
    const char *family = "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7";
    ASSERT_EQ(lexicon__graphemes(family, strlen(family), SIZE_MAX), 1);
    ASSERT_EQ(lexicon__graphemes("e\xcc\x81"
                                 "a",
                                 4, SIZE_MAX),
              2);
    ASSERT_EQ(lexicon__graphemes("\r\n\r\n", 4, SIZE_MAX), 2);
    ASSERT_EQ(lexicon__graphemes("abcdef", 6, 2), 3);          /* stops past the limit */
    ASSERT_EQ(lexicon__graphemes("\xff\xfe", 2, SIZE_MAX), 2); /* invalid bytes: one each */
    ASSERT_EQ(lexicon__utf16_len("a\xf0\x9f\x98\x80", 5), 3);
    /* GB9c: KA VIRAMA SSA is one cluster; KA AA VIRAMA SSA is two */
    ASSERT_EQ(lexicon__graphemes("\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7", 9, SIZE_MAX), 1);
    ASSERT_EQ(lexicon__graphemes("\xe0\xa4\x95\xe0\xa4\xbe\xe0\xa5\x8d\xe0\xa4\xb7", 12, SIZE_MAX),
              2);
    ASSERT_EQ(lexicon__incb(0x094d), LEXICON_INCB_LINKER);
    ASSERT_EQ(lexicon__incb(0x0915), LEXICON_INCB_CONSONANT);
    ASSERT_EQ(lexicon__incb(0x200d), LEXICON_INCB_EXTEND);
    ASSERT_EQ(lexicon__incb('a'), LEXICON_INCB_NONE);
}

static const char *const defs_doc =
    "{\"lexicon\":1,\"id\":\"com.example.t.defs\",\"defs\":{\"pt\":{\"type\":\"object\","
    "\"required\":[\"x\"],\"properties\":{\"x\":{\"type\":\"integer\"}}}}}";

TEST(loader_refuses_bad_documents)
{
    const char *bad[] = {
        "not json",
        "{\"lexicon\":2,\"id\":\"com.example.t.a\",\"defs\":{}}",
        "{\"lexicon\":1,\"id\":\"nope\",\"defs\":{}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\"}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"main\":{\"type\":\"wat\"}}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"main\":{\"type\":\"string\","
        "\"format\":\"email\"}}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"main\":{\"type\":\"object\","
        "\"required\":[\"y\"],\"properties\":{}}}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"main\":{\"type\":\"ref\","
        "\"ref\":\"com.example.t.nowhere#x\"}}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"main\":{\"type\":\"integer\","
        "\"maximum\":1.5}}}",
        "{\"lexicon\":1,\"id\":\"com.example.t.a\",\"defs\":{\"other\":{\"type\":\"record\","
        "\"record\":{\"type\":\"object\",\"properties\":{}}}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mdw_lexicon *lex;
        ASSERT_OK(mdw_lexicon_new(&lex));
        int rc = mdw_lexicon_add_doc(lex, bad[i], strlen(bad[i]), "test");
        mdw_lexicon_free(lex);
        ASSERT_MSG(rc == MDW_EMALFORMED, "document %zu loaded (rc %d)", i, rc);
    }
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_new(&lex));
    ASSERT_OK(mdw_lexicon_add_doc(lex, defs_doc, strlen(defs_doc), "test"));
    ASSERT_EQ(mdw_lexicon_add_doc(lex, defs_doc, strlen(defs_doc), "test"), MDW_EMALFORMED);
    mdw_lexicon_free(lex);
    /* a caller that goes on after a failed load gets refusals, not a crash */
    const char *dangling =
        "{\"lexicon\":1,\"id\":\"com.example.t.dang\",\"defs\":{\"main\":{\"type\":\"record\","
        "\"key\":\"any\",\"record\":{\"type\":\"object\",\"properties\":{\"p\":{\"type\":"
        "\"ref\",\"ref\":\"com.example.t.gone\"}}}}}}";
    ASSERT_OK(mdw_lexicon_new(&lex));
    ASSERT_EQ(mdw_lexicon_add_doc(lex, dangling, strlen(dangling), "test"), MDW_EMALFORMED);
    char err[128];
    ASSERT_EQ(check(lex, "com.example.t.dang", "{\"$type\":\"com.example.t.dang\",\"p\":{}}", err,
                    sizeof err),
              MDW_EINVALID);
    ASSERT_STREQ(err, "Lexicon not found: lex:com.example.t.gone#main");
    mdw_lexicon_free(lex);
    ASSERT(mdw_lexicon_load_dir(&lex, "/nonexistent-meadow-dir") < 0);
    ASSERT(lex == NULL);
}

/* Found by fuzz_lexicon (UBSan): an empty `defs` reached qsort(NULL, 0, ...). */
TEST(document_with_empty_defs_loads)
{
    const char *doc = "{\"lexicon\":1,\"id\":\"com.example.t.empty\",\"defs\":{}}";
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_new(&lex));
    ASSERT_OK(mdw_lexicon_add_doc(lex, doc, strlen(doc), "test"));
    ASSERT(!mdw_lexicon_has_record(lex, "com.example.t.empty"));
    char err[128];
    ASSERT_EQ(check(lex, "com.example.t.empty", "{}", err, sizeof err), MDW_ENOTFOUND);
    mdw_lexicon_free(lex);
}

TEST(refs_across_documents_and_recursion_depth)
{
    const char *doc =
        "{\"lexicon\":1,\"id\":\"com.example.t.rec\",\"defs\":{\"main\":{\"type\":\"record\","
        "\"key\":\"any\",\"record\":{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"ref\","
        "\"ref\":\"com.example.t.defs#pt\"},\"tree\":{\"type\":\"ref\",\"ref\":\"#node\"}}}},"
        "\"node\":{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\",\"items\":{"
        "\"type\":\"ref\",\"ref\":\"#node\"}}}}}}";
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_new(&lex));
    ASSERT_OK(mdw_lexicon_add_doc(lex, defs_doc, strlen(defs_doc), "test"));
    ASSERT_OK(mdw_lexicon_add_doc(lex, doc, strlen(doc), "test"));
    char err[512];
    ASSERT_OK(check(lex, "com.example.t.rec", "{\"$type\":\"com.example.t.rec\",\"p\":{\"x\":1}}",
                    err, sizeof err));
    ASSERT_EQ(check(lex, "com.example.t.rec", "{\"$type\":\"com.example.t.rec\",\"p\":{}}", err,
                    sizeof err),
              MDW_EINVALID);
    ASSERT_STREQ(err, "Record/p must have the property \"x\"");
    /* a recursive definition: 20 levels pass, 40 (80 path segments) are refused */
    char deep[2048];
    for (int levels = 20; levels <= 40; levels += 20) {
        size_t w =
            (size_t)snprintf(deep, sizeof deep, "{\"$type\":\"com.example.t.rec\",\"tree\":");
        for (int i = 0; i < levels; i++)
            w += (size_t)snprintf(deep + w, sizeof deep - w, "{\"kids\":[");
        w += (size_t)snprintf(deep + w, sizeof deep - w, "{}");
        for (int i = 0; i < levels; i++)
            w += (size_t)snprintf(deep + w, sizeof deep - w, "]}");
        snprintf(deep + w, sizeof deep - w, "}");
        int rc = check(lex, "com.example.t.rec", deep, err, sizeof err);
        if (levels == 20)
            ASSERT_OK(rc);
        else {
            ASSERT_EQ(rc, MDW_EINVALID);
            ASSERT_CONTAINS(err, "is nested too deeply");
        }
    }
    mdw_lexicon_free(lex);
}

TEST(error_buffer_is_bounded)
{
    mdw_lexicon *lex;
    ASSERT_OK(mdw_lexicon_load_builtin(&lex));
    char err[16];
    ASSERT_EQ(check(lex, "net.atrarium.community.config",
                    "{\"$type\":\"net.atrarium.community.config\",\"name\":5}", err, sizeof err),
              MDW_EINVALID);
    ASSERT_STREQ(err, "Record/name mus");
    cJSON *j = cJSON_Parse("{\"$type\":\"net.atrarium.community.config\",\"name\":5}");
    ASSERT_EQ(mdw_lexicon_validate_record(lex, "net.atrarium.community.config", j, NULL, 0),
              MDW_EINVALID);
    cJSON_Delete(j);
    mdw_lexicon_free(lex);
}

/* One lexicon shared by threads (the processor's pattern): same verdicts, no races (first use of
 *the
 ** language regex included). */
static mdw_lexicon *shared_lex;

static void *validate_many(void *arg)
{
    static const char *const recs[] = {
        "{\"$type\":\"com.example.lexicon.kitchen\",\"req\":\"x\",\"maybeReq\":null,"
        "\"fLanguage\":\"zh-Hant-TW\"}",
        "{\"$type\":\"com.example.lexicon.kitchen\",\"req\":\"x\",\"maybeReq\":null,"
        "\"fLanguage\":\"en_US\"}",
        "{\"$type\":\"com.example.lexicon.kitchen\",\"req\":\"x\",\"maybeReq\":null,"
        "\"sGraphemes\":\"\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7"
        "a\"}"};
    long bad = 0;
    cJSON *parsed[3];
    for (int r = 0; r < 3; r++)
        parsed[r] = cJSON_Parse(recs[r]);
    for (int i = 0; i < 2000; i++)
        for (int r = 0; r < 3; r++) {
            char err[128];
            int rc = mdw_lexicon_validate_record(shared_lex, "com.example.lexicon.kitchen",
                                                 parsed[r], err, sizeof err);
            bad += (r == 1) != (rc == MDW_EINVALID);
        }
    for (int r = 0; r < 3; r++)
        cJSON_Delete(parsed[r]);
    *(long *)arg = bad;
    return NULL;
}

TEST(shared_between_threads)
{
    ASSERT_OK(mdw_lexicon_new(&shared_lex));
    ASSERT_OK(mdw_lexicon_add_builtin(shared_lex));
    ASSERT_OK(mdw_lexicon_add_dir(shared_lex, "tests/lexicon/docs"));
    pthread_t t[4];
    long bad[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, validate_many, &bad[i]));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    mdw_lexicon_free(shared_lex);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(bad[i], 0);
}

TEST(app_rules)
{
    char err[256];
    cJSON *j = cJSON_Parse("{\"hashtag\":\"#atr_0123abcd\",\"feedMix\":{\"own\":60,\"parent\":"
                           "30,\"global\":10}}");
    ASSERT_OK(mdw_lexicon_app_check("net.atrarium.community.config", j, err, sizeof err));
    cJSON_Delete(j);
    const char *bad_tags[] = {"#atr_0123ABCD", "#atr_0123abc",  "#atr_0123abcde",
                              "atr_0123abcd",  "#atr_xyzxyzxy", "#ATR_0123abcd"};
    for (size_t i = 0; i < sizeof bad_tags / sizeof bad_tags[0]; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "hashtag", bad_tags[i]);
        int rc = mdw_lexicon_app_check("net.atrarium.community.config", r, err, sizeof err);
        cJSON_Delete(r);
        ASSERT_EQ(rc, MDW_EINVALID);
        ASSERT_CONTAINS(err, "application rule: hashtag");
    }
    j = cJSON_Parse("{\"hashtag\":\"#atr_0123abcd\",\"feedMix\":{\"own\":60,\"parent\":30}}");
    ASSERT_EQ(mdw_lexicon_app_check("net.atrarium.community.config", j, err, sizeof err),
              MDW_EINVALID);
    ASSERT_STREQ(err, "application rule: feedMix own + parent + global must be 100, not 90");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"hashtag\":\"whatever\"}");
    ASSERT_OK(mdw_lexicon_app_check("net.atrarium.community.membership", j, err, sizeof err));
    cJSON_Delete(j);
}

int main(void)
{
    RUN(builtin_docs_match_files_byte_for_byte);
    RUN(builtin_and_dir_load_the_same_documents);
    RUN(unknown_nsid_is_not_found);
    RUN(moderation_action_paths_and_messages);
    RUN(formats_accept_and_refuse);
    RUN(datetime_parses_as_validated);
    RUN(graphemes_count_clusters);
    RUN(loader_refuses_bad_documents);
    RUN(document_with_empty_defs_loads);
    RUN(refs_across_documents_and_recursion_depth);
    RUN(error_buffer_is_bounded);
    RUN(shared_between_threads);
    RUN(app_rules);
    return TEST_REPORT();
}
