/* Unit tests for common/: errors, bounded buffers, clock, time parsing, metrics, strv. */
#include "tests/test.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/lru.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/strv.h"

TEST(strerror_names_every_code)
{
    for (int c = MDW_EFULL; c > MDW_ELAST; c--)
        ASSERT(strcmp(mdw_strerror(c), "unknown error") != 0);
    ASSERT_STREQ(mdw_strerror(-2), "No such file or directory");
    ASSERT_STREQ(mdw_strerror(0), "success");
}

TEST(buf_refuses_past_max_and_keeps_contents)
{
    mdw_buf b = MDW_BUF_INIT(8);
    ASSERT_OK(mdw_buf_puts(&b, "abcd"));
    ASSERT_OK(mdw_buf_puts(&b, "efgh"));
    ASSERT_EQ(mdw_buf_putc(&b, 'x'), MDW_ETOOBIG);
    ASSERT_EQ(b.len, 8);
    ASSERT_STREQ(b.data, "abcdefgh");
    mdw_buf_reset(&b);
    ASSERT_EQ(mdw_buf_printf(&b, "%s", "0123456789"), MDW_ETOOBIG);
    ASSERT_EQ(b.len, 0);
    mdw_buf_release(&b);
}

TEST(buf_json_string_escapes)
{
    mdw_buf b = MDW_BUF_INIT(100);
    ASSERT_OK(mdw_buf_json_str(&b, "a\"b\\c\n\x01", 7));
    ASSERT_STREQ(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    mdw_buf_release(&b);
}

/*
** The fast path copies 16 bytes at a time: a byte that needs escaping (or
** is 0x7f / >= 0x80) at every offset of strings of every length up to 40
** must give the same text as escaping character by character.
*/
TEST(buf_json_string_fast_path_matches_slow)
{
    static const unsigned char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    for (size_t n = 0; n <= 40; n++) {
        for (size_t at = 0; at <= n; at++) {
            for (size_t k = 0; k < sizeof specials; k++) {
                char in[41];
                for (size_t i = 0; i < n; i++)
                    in[i] = (char)('a' + i % 26);
                if (at < n)
                    in[at] = (char)specials[k];
                char want[41 * 6 + 3];
                size_t w = 0;
                want[w++] = '"';
                for (size_t i = 0; i < n; i++) {
                    unsigned char c = (unsigned char)in[i];
                    if (c == '"' || c == '\\') {
                        want[w++] = '\\';
                        want[w++] = (char)c;
                    } else if (c == '\n') {
                        want[w++] = '\\';
                        want[w++] = 'n';
                    } else if (c < 0x20) {
                        w += (size_t)snprintf(want + w, 7, "\\u%04x", c);
                    } else {
                        want[w++] = (char)c;
                    }
                }
                want[w++] = '"';
                want[w] = '\0';
                mdw_buf b = MDW_BUF_INIT(1000);
                ASSERT_OK(mdw_buf_puts(&b, "x"));
                ASSERT_OK(mdw_buf_json_str(&b, in, n));
                ASSERT_EQ(b.len, w + 1);
                ASSERT_MSG(memcmp(b.data + 1, want, w + 1) == 0, "n=%zu at=%zu k=%zu", n, at, k);
                mdw_buf_release(&b);
                if (at == n)
                    break; /* no special: one pass is enough */
            }
        }
    }
}

TEST(fake_clock_moves_only_when_told)
{
    mdw_clock c;
    mdw_clock_fake_init(&c, 1000);
    ASSERT_EQ(mdw_clock_now_us(&c), 1000);
    mdw_clock_fake_advance(&c, 500);
    ASSERT_EQ(mdw_clock_now_us(&c), 1500);
    ASSERT_EQ(mdw_clock_mono_us(&c), 1500);
    ASSERT(mdw_clock_now_us(mdw_clock_real()) > 1700000000000000LL);
}

TEST(time_parse_and_format)
{
    int64_t t;
    ASSERT_OK(mdw_time_parse("2024-01-02T03:04:05.678Z", &t));
    ASSERT_EQ(t, 1704164645678000LL);
    ASSERT_OK(mdw_time_parse("2024-01-02T04:04:05.678+01:00", &t));
    ASSERT_EQ(t, 1704164645678000LL);
    ASSERT_OK(mdw_time_parse("1970-01-01T00:00:00Z", &t));
    ASSERT_EQ(t, 0);
    ASSERT_EQ(mdw_time_parse("2024-01-02T03:04:05", &t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_time_parse("2023-02-29T00:00:00Z", &t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_time_parse("2024-13-01T00:00:00Z", &t), MDW_EMALFORMED);
    ASSERT_EQ(mdw_time_parse("2024-01-01T00:00:00.Z", &t), MDW_EMALFORMED);
    char out[40];
    mdw_time_format(1704164645678000LL, out, sizeof out);
    ASSERT_STREQ(out, "2024-01-02T03:04:05.678Z");
}

static mdw_counter c_a = MDW_COUNTER_INIT("meadow_test_total", "reason=\"a\"", "test counter");
static mdw_counter c_b = MDW_COUNTER_INIT("meadow_test_total", "reason=\"b\"", "test counter");
static mdw_hist h = MDW_HIST_INIT("meadow_test_seconds", NULL, "test histogram");

TEST(metrics_render_families_once)
{
    mdw_counter_register(&c_a);
    mdw_counter_register(&c_b);
    mdw_counter_register(&c_a); /* twice is harmless */
    mdw_hist_register(&h);
    mdw_counter_add(&c_a, 3);
    mdw_counter_inc(&c_b);
    mdw_hist_observe_us(&h, 1500);
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    ASSERT_OK(mdw_metrics_render(&b));
    ASSERT_CONTAINS(b.data, "# TYPE meadow_test_total counter\n"
                            "meadow_test_total{reason=\"a\"} 3\n"
                            "meadow_test_total{reason=\"b\"} 1\n");
    ASSERT_CONTAINS(b.data, "meadow_test_seconds_bucket{le=\"0.001\"} 0\n");
    ASSERT_CONTAINS(b.data, "meadow_test_seconds_bucket{le=\"0.0025\"} 1\n");
    ASSERT_CONTAINS(b.data, "meadow_test_seconds_count 1\n");
    ASSERT(strstr(strstr(b.data, "# TYPE meadow_test_total") + 1, "# TYPE meadow_test_total") ==
           NULL);
    ASSERT_EQ(mdw_metrics_counter_value("meadow_test_total", "reason=\"a\""), 3);
    mdw_buf_release(&b);
}

TEST(ratelimit_once_per_interval)
{
    mdw_ratelimit rl = MDW_RATELIMIT_INIT(60000000);
    uint64_t sup = 99;
    ASSERT(mdw_ratelimit_ok(&rl, 1000, &sup));
    ASSERT_EQ(sup, 0);
    ASSERT(!mdw_ratelimit_ok(&rl, 2000, &sup));
    ASSERT(!mdw_ratelimit_ok(&rl, 3000, &sup));
    ASSERT(mdw_ratelimit_ok(&rl, 61001000, &sup));
    ASSERT_EQ(sup, 2);
}

TEST(log_levels_parse)
{
    ASSERT_EQ(mdw_log_level_parse("warn"), MDW_LOG_WARN);
    ASSERT_EQ(mdw_log_level_parse("loud"), -1);
    mdw_log_set_level(MDW_LOG_ERROR);
    ASSERT(!mdw_log_enabled(MDW_LOG_INFO));
    ASSERT(mdw_log_enabled(MDW_LOG_ERROR));
    mdw_log_set_level(MDW_LOG_INFO);
}

TEST(xasprintf_formats)
{
    char *s = xasprintf("%s-%d", "a", 7);
    ASSERT_STREQ(s, "a-7");
    free(s);
}

TEST(strv_sort_unique_small_cases)
{
    ASSERT_EQ(mdw_strv_sort_unique(NULL, 0), 0);
    char *one[] = {xstrdup("did:plc:a")};
    ASSERT_EQ(mdw_strv_sort_unique(one, 1), 1);
    free(one[0]);
    char *v[] = {xstrdup("did:web:b"), xstrdup("did:plc:z"), xstrdup("did:web:b"),
                 xstrdup("did:plc:a"), xstrdup("did:plc:z"), xstrdup("did:web:b")};
    size_t n = mdw_strv_sort_unique(v, 6);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(v[0], "did:plc:a");
    ASSERT_STREQ(v[1], "did:plc:z");
    ASSERT_STREQ(v[2], "did:web:b");
    for (size_t i = 0; i < n; i++) /* the duplicates were freed (ASan: no leak) */
        free(v[i]);
    char *same[] = {xstrdup("x"), xstrdup("x"), xstrdup("x")};
    ASSERT_EQ(mdw_strv_sort_unique(same, 3), 1);
    ASSERT_STREQ(same[0], "x");
    free(same[0]);
}

/* 10^5 DIDs seen over three collections, as the relay walk gathers them. */
TEST(strv_sort_unique_walk_sized)
{
    enum { N = 100000 };
    size_t total = N + N / 5 + N / 10, k = 0;
    char **v = xmalloc(total * sizeof *v);
    for (int i = 0; i < N; i++)
        v[k++] = xasprintf("did:plc:%024d", (i * 7919) % N);
    for (int i = 0; i < N; i += 5)
        v[k++] = xasprintf("did:plc:%024d", i);
    for (int i = 0; i < N; i += 10)
        v[k++] = xasprintf("did:plc:%024d", i);
    size_t n = mdw_strv_sort_unique(v, k);
    int ordered = 1;
    for (size_t i = 1; i < n; i++)
        ordered &= strcmp(v[i - 1], v[i]) < 0;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    ASSERT_EQ(n, N);
    ASSERT(ordered);
}

/* ---- common/lru ---- */

typedef struct lru_item {
    mdw_lru_node node;
    int key;
} lru_item;

static int lru_dropped;

static int item_eq(const mdw_lru_node *n, const void *key)
{
    return ((const lru_item *)n)->key == *(const int *)key;
}

static void item_drop(mdw_lru_node *n)
{
    lru_dropped++;
    free(n);
}

static lru_item *lru_get(mdw_lru *l, int key)
{
    return (lru_item *)mdw_lru_find(l, (uint64_t)key % 3, &key); /* few hashes: shared chains */
}

static void lru_add(mdw_lru *l, int key)
{
    lru_item *it = xcalloc(1, sizeof *it);
    it->key = key;
    mdw_lru_insert(l, &it->node, (uint64_t)key % 3);
}

TEST(lru_evicts_least_recently_used)
{
    mdw_lru l;
    lru_dropped = 0;
    mdw_lru_init(&l, 3, item_eq, item_drop);
    ASSERT_EQ(l.nbuckets, 64);
    lru_add(&l, 1);
    lru_add(&l, 2);
    lru_add(&l, 3);
    ASSERT(lru_get(&l, 1) && lru_get(&l, 2) && lru_get(&l, 3) && !lru_get(&l, 4));
    mdw_lru_touch(&l, &lru_get(&l, 1)->node); /* recency now 1, 3, 2 */
    lru_add(&l, 4);                           /* full: 2 goes */
    ASSERT_EQ(lru_dropped, 1);
    ASSERT(!lru_get(&l, 2) && lru_get(&l, 1) && lru_get(&l, 3) && lru_get(&l, 4));
    ASSERT_EQ(l.count, 3);
    lru_add(&l, 5); /* then 3 */
    ASSERT(!lru_get(&l, 3) && lru_get(&l, 1));
    mdw_lru_remove(&l, &lru_get(&l, 4)->node);
    ASSERT(!lru_get(&l, 4) && lru_get(&l, 5));
    ASSERT_EQ(l.count, 2);
    ASSERT_EQ(lru_dropped, 3);
    mdw_lru_release(&l);
    ASSERT_EQ(lru_dropped, 5);
    /* Buckets follow the cap: a power of two, at most 2^20; a cap of 0 is 1. */
    mdw_lru_init(&l, 1000, item_eq, item_drop);
    ASSERT_EQ(l.nbuckets, 1024);
    mdw_lru_release(&l);
    mdw_lru_init(&l, 0, item_eq, item_drop);
    lru_add(&l, 7);
    lru_add(&l, 8);
    ASSERT(!lru_get(&l, 7) && lru_get(&l, 8));
    mdw_lru_release(&l);
}

int main(void)
{
    RUN(strerror_names_every_code);
    RUN(buf_refuses_past_max_and_keeps_contents);
    RUN(buf_json_string_escapes);
    RUN(buf_json_string_fast_path_matches_slow);
    RUN(fake_clock_moves_only_when_told);
    RUN(time_parse_and_format);
    RUN(metrics_render_families_once);
    RUN(ratelimit_once_per_interval);
    RUN(log_levels_parse);
    RUN(xasprintf_formats);
    RUN(strv_sort_unique_small_cases);
    RUN(strv_sort_unique_walk_sized);
    RUN(lru_evicts_least_recently_used);
    return TEST_REPORT();
}
