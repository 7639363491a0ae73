/*
** tests/test_json_arena.c — cJSON trees parsed into an arena
** (common/json_arena.h) equal the malloc'd trees of the same input (the
** production Jetstream events of the shared corpus, and inputs for each of
** cJSON's quirks), what cJSON refuses is refused and leaks nothing, trees
** bigger than a chunk work, and cJSON elsewhere (another thread, this
** thread outside a parse) still uses malloc/free.
*/
#include <pthread.h>
#include <stdio.h>

#include "tests/test.h"
#include "common/json_arena.h"
#include "tests/json_same_tree.h"
#include "common/mem.h"
#include "common/banned.h"

static const char *corpus_dir(void)
{
    static char dir[1024];
    const char *env = getenv("MEADOW_CORPUS");
    snprintf(dir, sizeof dir, "%s", env ? env : "../shared/testdata/atproto-corpus");
    return dir;
}

/* The arena tree and cJSON's malloc'd tree of data: 1 when both fail, or both parse alike. */
static int same_tree(mdw_json_arena *a, const char *data, size_t len)
{
    const char *e1 = NULL, *e2 = NULL;
    cJSON *t1 = cJSON_ParseWithLengthOpts(data, len, &e1, 0);
    cJSON *t2 = mdw_json_arena_parse(a, data, len, &e2);
    int same = (!t1) == (!t2) && (!t1 || e1 == e2);
    if (same && t1)
        same = json_same_node(t1, t2);
    cJSON_Delete(t1);
    mdw_json_arena_reset(a);
    return same;
}

TEST(corpus_events_same_as_malloc_trees)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/jetstream_expected_first100.jsonl", corpus_dir());
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    mdw_json_arena *a = mdw_json_arena_new();
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        ASSERT(same_tree(a, line, (size_t)len));
        n++;
    }
    free(line);
    fclose(f);
    ASSERT(n >= 100);
    mdw_json_arena_free(a);
}

TEST(malformed_inputs_fail_alike)
{
    mdw_json_arena *a = mdw_json_arena_new();
    const char *bad[] = {"{\"a\":[1,2,{\"b\":\"x\"",
                         "{\"a\":tru}",
                         "[\"\\ud800\"",
                         "",
                         "{\"k\":\"v\",}",
                         "[\"\\udc00\"]",
                         "[\"\\q\"]",
                         "[-]",
                         "[1e]",
                         "[\"x",
                         "{\"a\" 1}",
                         "[1,]",
                         "   ",
                         "[\"\\ud800\\u0041\"]",
                         "[.5]",
                         "[+1]",
                         "[\"\\u12\"]",
                         "{\"a\":1",
                         "nul",
                         "[1 2]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *end = NULL;
        if (!same_tree(a, bad[i], strlen(bad[i])))
            fprintf(stderr, "  differs: %s\n", bad[i]);
        ASSERT(same_tree(a, bad[i], strlen(bad[i])));
        ASSERT(mdw_json_arena_parse(a, bad[i], strlen(bad[i]), &end) == NULL);
        ASSERT(end >= bad[i] && end <= bad[i] + (bad[i][0] ? strlen(bad[i]) - 1 : 0));
        mdw_json_arena_reset(a);
    }
    mdw_json_arena_free(a);
}

/* cJSON's leniencies, kept so that the processor accepts what it accepted before. */
TEST(cjson_quirks_alike)
{
    mdw_json_arena *a = mdw_json_arena_new();
    const char *ok[] = {"{\"a\":1} trailing",
                        "\xEF\xBB\xBF{\"bom\":true}",
                        "[01, -0, 1., -.5, 1e5, 1E+2, 2e-1]",
                        "[1e999, -1e999, 3000000000, -3000000000, 123456789012345678]",
                        "[\"\\u00e9\\u20ac\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\"]",
                        "[\"\\uZZZZ tail\"]",
                        "{\"dup\":1,\"dup\":2}",
                        "\x01\x1f [ \x20 ]",
                        "[\"raw \x01 control\"]",
                        "[\"\\u0000 after a NUL\"]",
                        "1e",
                        "{\"k\\\"ey\":\"v\\\\\"}",
                        "[null,true,false,{},[],\"\"]",
                        "[0.1, 1.7976931348623157e308, 4.9e-324]",
                        "[99999999999999999999999999999999999999999999999999999999999999999]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!same_tree(a, ok[i], strlen(ok[i])))
            fprintf(stderr, "  differs: %s\n", ok[i]);
        ASSERT(same_tree(a, ok[i], strlen(ok[i])));
        if (!mdw_json_arena_parse(a, ok[i], strlen(ok[i]), NULL))
            fprintf(stderr, "  refused: %s\n", ok[i]);
        ASSERT(mdw_json_arena_parse(a, ok[i], strlen(ok[i]), NULL) != NULL);
        mdw_json_arena_reset(a);
    }
    /* Nesting: cJSON's limit of 1000 levels, on both sides of it. */
    char deep[2100];
    for (int d = 999; d <= 1001; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        ASSERT(same_tree(a, deep, 2 * (size_t)d));
    }
    mdw_json_arena_free(a);
}

static char *big_array(size_t n, size_t *len)
{
    char *s = xmalloc(n * 12 + 16);
    *len = 0;
    s[(*len)++] = '[';
    for (size_t i = 0; i < n; i++)
        *len += (size_t)snprintf(s + *len, 12, "%s\"k%zu\"", i ? "," : "", i % 1000);
    s[(*len)++] = ']';
    return s;
}

TEST(tree_bigger_than_a_chunk)
{
    /*
    ** ~40,000 array items: several 64 KiB chunks. A reset keeps one chunk of
    ** the size grown to, so parsing as much again allocates nothing.
    */
    size_t n = 40000, len;
    char *s = big_array(n, &len);
    mdw_json_arena *a = mdw_json_arena_new();
    size_t first = mdw_json_arena_bytes(a);
    ASSERT(same_tree(a, s, len));
    size_t grown = mdw_json_arena_bytes(a);
    ASSERT(grown > first);
    cJSON *t = mdw_json_arena_parse(a, s, len, NULL);
    ASSERT(t != NULL);
    ASSERT_EQ(mdw_json_arena_bytes(a), grown); /* fitted in the kept chunk */
    ASSERT_EQ(cJSON_GetArraySize(t), (int)n);
    ASSERT_STREQ(cJSON_GetArrayItem(t, 1999)->valuestring, "k999");
    mdw_json_arena_reset(a);
    ASSERT_EQ(mdw_json_arena_bytes(a), grown);
    ASSERT(same_tree(a, "{\"x\":[1,2,3]}", 13));
    free(s);
    /* Past 8 MiB a reset gives the memory back: one 64 KiB chunk again. */
    s = big_array(200000, &len);
    ASSERT(mdw_json_arena_parse(a, s, len, NULL) != NULL);
    ASSERT(mdw_json_arena_bytes(a) > (8u << 20));
    mdw_json_arena_reset(a);
    ASSERT_EQ(mdw_json_arena_bytes(a), first);
    ASSERT(same_tree(a, "[true]", 6));
    mdw_json_arena_free(a);
    free(s);
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* Outside any arena parse: malloc'd trees, deleted normally (ASan would see a bad free). */
    for (int i = 0; i < 2000; i++) {
        cJSON *t = cJSON_Parse("{\"a\":[\"x\",\"y\",{\"b\":1.5}]}");
        if (!t || !cJSON_IsArray(cJSON_GetObjectItem(t, "a")))
            return (void *)1;
        cJSON_Delete(t);
    }
    return NULL;
}

TEST(other_cjson_use_unchanged)
{
    mdw_json_arena *a = mdw_json_arena_new();
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, other_thread, NULL));
    for (int i = 0; i < 2000; i++) {
        cJSON *t = mdw_json_arena_parse(a, "{\"q\":\"w\"}", 9, NULL);
        ASSERT(t && cJSON_IsString(cJSON_GetObjectItem(t, "q")));
        /* A malloc'd tree built on this thread between arena parses. */
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "k", "v");
        char *p = cJSON_PrintUnformatted(m);
        ASSERT_STREQ(p, "{\"k\":\"v\"}");
        cJSON_free(p);
        cJSON_Delete(m);
        mdw_json_arena_reset(a);
    }
    void *ret;
    ASSERT_OK(pthread_join(th, &ret));
    ASSERT(ret == NULL);
    mdw_json_arena_free(a);
}

int main(void)
{
    RUN(corpus_events_same_as_malloc_trees);
    RUN(malformed_inputs_fail_alike);
    RUN(cjson_quirks_alike);
    RUN(tree_bigger_than_a_chunk);
    RUN(other_cjson_use_unchanged);
    return TEST_REPORT();
}
