/*
** Unit tests for lexicon/: the embedded documents match lexicon/<id>.json,
** loading, each rule and format of the validator with its message, the
** application rules. The record-by-record comparison with @atproto/lexicon is
** tests/integration/lexicon_xcheck.sh.
*/
#include "tests/test.h"

#include <cJSON.h>
#include <dirent.h>

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
    RUN(app_rules);
    return TEST_REPORT();
}
