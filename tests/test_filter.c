/*
** Unit tests for firehose/filter: every pass/drop/malformed reason on real
** Jetstream events from ../shared/testdata/atproto-corpus and on synthetic
** ones, cross-checked against an independent full parse (cJSON); time_us
** extraction edge cases.
*/
#include "tests/test.h"

#include <cJSON.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "firehose/filter.h"

static const char *corpus_dir(void)
{
    static char dir[1024];
    const char *env = getenv("MEADOW_CORPUS");
    snprintf(dir, sizeof dir, "%s", env ? env : "../shared/testdata/atproto-corpus");
    return dir;
}

/* Reads a JSONL file into lines (caller frees each and the array). */
static char **read_lines(const char *name, size_t *n)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", corpus_dir(), name);
    FILE *f = fopen(path, "r");
    *n = 0;
    if (!f)
        return NULL;
    char **lines = NULL;
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            lines = xrealloc(lines, cap * sizeof *lines);
        }
        lines[(*n)++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    return lines;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* The reference: DESIGN's rule applied to a full cJSON parse. */
static mdw_filter_reason reference(const char *s, int64_t *t)
{
    cJSON *j = cJSON_Parse(s);
    mdw_filter_reason r;
    if (!j || !cJSON_IsObject(j)) {
        r = MDW_FILTER_NOT_JSON;
        goto out;
    }
    cJSON *tu = cJSON_GetObjectItemCaseSensitive(j, "time_us");
    if (!cJSON_IsNumber(tu) || tu->valuedouble <= 0 ||
        tu->valuedouble != (double)(int64_t)tu->valuedouble) {
        r = MDW_FILTER_NO_TIME_US;
        goto out;
    }
    *t = (int64_t)tu->valuedouble;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
    if (!kind) {
        r = MDW_FILTER_BAD_EVENT;
    } else if (!strcmp(kind, "commit")) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "commit");
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "operation"));
        const char *coll = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "collection"));
        if (!op || !coll)
            r = MDW_FILTER_BAD_EVENT;
        else if (!strcmp(coll, "app.bsky.feed.post"))
            r = !strcmp(op, "create")   ? (strstr(s, "atr_") ? MDW_FILTER_POST_CREATE_TAGGED
                                                             : MDW_FILTER_POST_CREATE_UNTAGGED)
                : !strcmp(op, "update") ? MDW_FILTER_POST_UPDATE
                : !strcmp(op, "delete") ? MDW_FILTER_POST_DELETE
                                        : MDW_FILTER_BAD_EVENT;
        else if (!strncmp(coll, "net.atrarium.", 13) && coll[13])
            r = MDW_FILTER_ATRARIUM;
        else
            r = MDW_FILTER_OTHER_COLLECTION;
    } else if (!strcmp(kind, "account")) {
        r = MDW_FILTER_ACCOUNT;
    } else if (!strcmp(kind, "identity")) {
        r = MDW_FILTER_IDENTITY;
    } else {
        r = MDW_FILTER_OTHER_KIND;
    }
out:
    cJSON_Delete(j);
    return r;
}

static mdw_filter_reason classify(const char *s, mdw_filter_verdict *v)
{
    int rc = mdw_filter_event(s, strlen(s), v);
    if (rc != (int)mdw_filter_result_of(v->reason))
        return MDW_FILTER_NREASONS; /* inconsistent result: fails any compare */
    return v->reason;
}

TEST(corpus_events_match_reference)
{
    const char *files[] = {"jetstream_golden_10.jsonl", "jetstream_expected_first100.jsonl"};
    size_t total = 0, seen[MDW_FILTER_NREASONS] = {0};
    for (size_t f = 0; f < 2; f++) {
        size_t n;
        char **lines = read_lines(files[f], &n);
        ASSERT_MSG(lines && n >= 10, "corpus file %s/%s missing", corpus_dir(), files[f]);
        for (size_t i = 0; i < n; i++) {
            mdw_filter_verdict v;
            int64_t t = 0;
            mdw_filter_reason want = reference(lines[i], &t);
            mdw_filter_reason got = classify(lines[i], &v);
            ASSERT_MSG(got == want, "%s line %zu: got %s want %s", files[f], i + 1,
                       mdw_filter_reason_name(got), mdw_filter_reason_name(want));
            ASSERT(v.has_time);
            ASSERT_EQ(v.time_us, t);
            seen[got]++;
            total++;
        }
        free_lines(lines, n);
    }
    ASSERT_EQ(total, 110);
    /* The corpus has real likes, posts, deletes, identity and account events. */
    ASSERT(seen[MDW_FILTER_POST_CREATE_UNTAGGED] > 0);
    ASSERT(seen[MDW_FILTER_OTHER_COLLECTION] > 0);
    ASSERT(seen[MDW_FILTER_IDENTITY] == 1);
    ASSERT(seen[MDW_FILTER_ACCOUNT] == 1);
}

/* Real corpus post, re-tagged: the text, facet tag and tags array forms all pass. */
TEST(real_post_with_tags_passes)
{
    size_t n;
    char **lines = read_lines("jetstream_golden_10.jsonl", &n);
    ASSERT(lines && n == 10);
    const char *post = lines[1]; /* a reply post: "Try RSV for a good time !!" */
    mdw_filter_verdict v;
    ASSERT_EQ(mdw_filter_event(post, strlen(post), &v), MDW_FILTER_DROP);
    ASSERT_EQ(v.reason, MDW_FILTER_POST_CREATE_UNTAGGED);
    const char *forms[] = {"for a good time #atr_0a1b2c3d !!",
                           "for a good time \\u0023atr_ff00aa11", "for a good time ＃atr_12345678"};
    for (size_t i = 0; i < 3; i++) {
        const char *at = strstr(post, "for a good time !!");
        ASSERT(at);
        char *s = xasprintf("%.*s%s%s", (int)(at - post), post, forms[i],
                            at + strlen("for a good time !!"));
        ASSERT_EQ(mdw_filter_event(s, strlen(s), &v), MDW_FILTER_PASS);
        ASSERT_EQ(v.reason, MDW_FILTER_POST_CREATE_TAGGED);
        ASSERT_EQ(v.time_us, 1779719009157119LL);
        free(s);
    }
    free_lines(lines, n);
}

#define EV(kind_and_rest) "{\"did\":\"did:plc:abc\",\"time_us\":1700000000000001," kind_and_rest "}"
#define COMMIT(op, coll, rec)                                                                      \
    EV("\"kind\":\"commit\",\"commit\":{\"rev\":\"3l\",\"operation\":\"" op                        \
       "\",\"collection\":\"" coll "\",\"rkey\":\"3k\"" rec "}")

TEST(every_reason_synthetic)
{
    static const struct {
        const char *json;
        mdw_filter_reason want;
    } cases[] = {
        {COMMIT("create", "app.bsky.feed.post", ",\"record\":{\"text\":\"hi #atr_deadbeef\"}"),
         MDW_FILTER_POST_CREATE_TAGGED},
        {COMMIT("create", "app.bsky.feed.post",
                ",\"record\":{\"text\":\"x\",\"facets\":[{\"features\":[{\"$type\":\"app.bsky."
                "richtext.facet#tag\",\"tag\":\"atr_deadbeef\"}]}]}"),
         MDW_FILTER_POST_CREATE_TAGGED},
        {COMMIT("create", "app.bsky.feed.post",
                ",\"record\":{\"text\":\"x\",\"tags\":[\"atr_1\"]}"),
         MDW_FILTER_POST_CREATE_TAGGED},
        {COMMIT("create", "app.bsky.feed.post", ",\"record\":{\"text\":\"hello #art\"}"),
         MDW_FILTER_POST_CREATE_UNTAGGED},
        {COMMIT("update", "app.bsky.feed.post", ",\"record\":{\"text\":\"edited\"}"),
         MDW_FILTER_POST_UPDATE},
        {COMMIT("delete", "app.bsky.feed.post", ""), MDW_FILTER_POST_DELETE},
        {COMMIT("create", "net.atrarium.community.config", ",\"record\":{}"), MDW_FILTER_ATRARIUM},
        {COMMIT("delete", "net.atrarium.moderation.action", ""), MDW_FILTER_ATRARIUM},
        {COMMIT("create", "net.atrarium.group.config", ",\"record\":{}"), MDW_FILTER_ATRARIUM},
        {COMMIT("create", "app.bsky.feed.postgate", ",\"record\":{\"x\":\"atr_\"}"),
         MDW_FILTER_OTHER_COLLECTION},
        {COMMIT("create", "app.bsky.feed.like", ",\"record\":{\"x\":\"atr_\"}"),
         MDW_FILTER_OTHER_COLLECTION},
        {COMMIT("create", "net.atrarium", ",\"record\":{}"), MDW_FILTER_OTHER_COLLECTION},
        {COMMIT("create", "net.atrariumx.foo", ",\"record\":{}"), MDW_FILTER_OTHER_COLLECTION},
        {EV("\"kind\":\"account\",\"account\":{\"active\":false,\"status\":\"takendown\"}"),
         MDW_FILTER_ACCOUNT},
        {EV("\"kind\":\"identity\",\"identity\":{\"handle\":\"atr_x.bsky.social\"}"),
         MDW_FILTER_IDENTITY},
        {EV("\"kind\":\"sync\",\"sync\":{}"), MDW_FILTER_OTHER_KIND},
        {"not json at all", MDW_FILTER_NOT_JSON},
        {"", MDW_FILTER_NOT_JSON},
        {"{\"time_us\":1700000000000001,\"kind\":\"commit\"", MDW_FILTER_NOT_JSON},
        {"[1,2,3]", MDW_FILTER_NOT_JSON},
        {"{\"time_us\":1700000000000001 \"kind\":\"account\"}", MDW_FILTER_NOT_JSON},
        {"{\"did\":\"x\",\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":\"1700000000000001\",\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":-5,\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":1.5,\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":99999999999999999999,\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":0,\"kind\":\"account\"}", MDW_FILTER_NO_TIME_US},
        {"{\"time_us\":1700000000000001}", MDW_FILTER_BAD_EVENT},
        {EV("\"kind\":\"commit\",\"commit\":{\"operation\":\"create\"}"), MDW_FILTER_BAD_EVENT},
        {COMMIT("upsert", "app.bsky.feed.post", ""), MDW_FILTER_BAD_EVENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mdw_filter_verdict v;
        int64_t t = 0;
        mdw_filter_reason got = classify(cases[i].json, &v);
        ASSERT_MSG(got == cases[i].want, "case %zu (%s): got %s want %s", i, cases[i].json,
                   mdw_filter_reason_name(got), mdw_filter_reason_name(cases[i].want));
        /* The independent full parse agrees on every case. */
        mdw_filter_reason ref = reference(cases[i].json, &t);
        ASSERT_MSG(ref == cases[i].want, "reference disagrees on case %zu: %s", i,
                   mdw_filter_reason_name(ref));
        if (v.has_time)
            ASSERT_EQ(v.time_us, t);
    }
}

TEST(key_order_and_whitespace_do_not_matter)
{
    const char *s[] = {
        /* commit before kind and time_us, record before operation */
        "{\"commit\":{\"record\":{\"text\":\"#atr_00000001\",\"kind\":\"identity\",\"time_us\":1},"
        "\"collection\":\"app.bsky.feed.post\",\"operation\":\"create\"},\"kind\":\"commit\","
        "\"time_us\":1700000000000002,\"did\":\"did:plc:x\"}",
        " \n{ \"did\" : \"did:plc:x\" ,\t\"time_us\" : 1700000000000002 , \"kind\" : \"commit\" , "
        "\"commit\" : { \"operation\" : \"create\" , \"collection\" : \"app.bsky.feed.post\" , "
        "\"record\" : { \"text\" : \"#atr_00000001\" } } }\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        mdw_filter_verdict v;
        ASSERT_EQ(mdw_filter_event(s[i], strlen(s[i]), &v), MDW_FILTER_PASS);
        ASSERT_EQ(v.reason, MDW_FILTER_POST_CREATE_TAGGED);
        ASSERT_EQ(v.time_us, 1700000000000002LL);
    }
}

TEST(nested_time_us_and_kind_are_not_top_level)
{
    /* A record carrying keys named like the envelope's must not fool the walk. */
    const char *s = "{\"did\":\"d\",\"commit\":{\"record\":{\"time_us\":5,\"kind\":\"account\"},"
                    "\"operation\":\"create\",\"collection\":\"app.bsky.feed.like\"},"
                    "\"time_us\":1700000000000003,\"kind\":\"commit\"}";
    mdw_filter_verdict v;
    ASSERT_EQ(mdw_filter_event(s, strlen(s), &v), MDW_FILTER_DROP);
    ASSERT_EQ(v.reason, MDW_FILTER_OTHER_COLLECTION);
    ASSERT_EQ(v.time_us, 1700000000000003LL);
    /* Escaped quotes inside strings are skipped correctly. */
    const char *e = "{\"did\":\"a\\\"b\\\\\",\"x\":\"\\\\\\\"time_us\\\":7\",\"time_us\":"
                    "1700000000000004,\"kind\":\"identity\"}";
    ASSERT_EQ(mdw_filter_event(e, strlen(e), &v), MDW_FILTER_DROP);
    ASSERT_EQ(v.reason, MDW_FILTER_IDENTITY);
    ASSERT_EQ(v.time_us, 1700000000000004LL);
}

#define TIME_US(lit, out) mdw_filter_time_us(lit, strlen(lit), out)
TEST(time_us_extraction_edges)
{
    int64_t t = 0;
    ASSERT_OK(TIME_US("{\"time_us\":1}", &t));
    ASSERT_EQ(t, 1);
    ASSERT_OK(TIME_US("{\"a\":[1,{\"time_us\":2}],\"time_us\":9223372036854775807}", &t));
    ASSERT_EQ(t, INT64_MAX);
    ASSERT_EQ(TIME_US("{\"time_us\":9223372036854775808}", &t), MDW_EMALFORMED);
    ASSERT_EQ(TIME_US("{\"time_us\":}", &t), MDW_EMALFORMED);
    ASSERT_EQ(TIME_US("{\"time_us\":12x}", &t), MDW_EMALFORMED);
    ASSERT_EQ(TIME_US("{\"time_us\":null}", &t), MDW_EMALFORMED);
    ASSERT_EQ(TIME_US("{\"time_us\"", &t), MDW_EMALFORMED);
    ASSERT_EQ(TIME_US("{}", &t), MDW_EMALFORMED);
    /* Never reads past len: the digits after the cut are not seen. */
    ASSERT_EQ(mdw_filter_time_us("{\"time_us\":12}345", 14, &t), 0);
    ASSERT_EQ(t, 12);
    /* Duplicate key: the first wins. */
    ASSERT_OK(TIME_US("{\"time_us\":3,\"time_us\":4}", &t));
    ASSERT_EQ(t, 3);
}

TEST(oversize_is_refused_before_reading)
{
    size_t n = MDW_MAX_EVENT_BYTES + 1;
    char *big = xmalloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    mdw_filter_verdict v;
    ASSERT_EQ(mdw_filter_event(big, n, &v), MDW_FILTER_MALFORMED);
    ASSERT_EQ(v.reason, MDW_FILTER_OVERSIZE);
    free(big);
}

TEST(counters_and_rate_limited_log)
{
    mdw_filter_metrics_register();
    uint64_t counts[MDW_FILTER_NREASONS] = {0};
    counts[MDW_FILTER_POST_UPDATE] = 3;
    counts[MDW_FILTER_NOT_JSON] = 2;
    uint64_t before = mdw_filter_counter_value(MDW_FILTER_POST_UPDATE);
    mdw_filter_count(counts);
    ASSERT_EQ(mdw_filter_counter_value(MDW_FILTER_POST_UPDATE), before + 3);
    ASSERT_EQ(mdw_metrics_counter_value("meadow_firehose_events_total",
                                        "result=\"malformed\",reason=\"not_json\""),
              2);
    ASSERT_STREQ(mdw_filter_reason_name(MDW_FILTER_ACCOUNT), "account");
    ASSERT_EQ(mdw_filter_result_of(MDW_FILTER_IDENTITY), MDW_FILTER_DROP);
    /* Logging is rate limited per kind; it must not crash on binary input. */
    mdw_filter_log_malformed(MDW_FILTER_NOT_JSON, "\x01\x02garbage\"\\", 11, 1000000);
    mdw_filter_log_malformed(MDW_FILTER_NOT_JSON, "again", 5, 2000000);
    mdw_filter_log_malformed(MDW_FILTER_NO_TIME_US, "{}", 2, 2000000);
}

int main(void)
{
    RUN(corpus_events_match_reference);
    RUN(real_post_with_tags_passes);
    RUN(every_reason_synthetic);
    RUN(key_order_and_whitespace_do_not_matter);
    RUN(nested_time_us_and_kind_are_not_top_level);
    RUN(time_us_extraction_edges);
    RUN(oversize_is_refused_before_reading);
    RUN(counters_and_rate_limited_log);
    return TEST_REPORT();
}
