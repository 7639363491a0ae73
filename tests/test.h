/*
** tests/test.h — Meadow's small test runner (after redis' testhelp.h).
**
**   TEST(name) { ASSERT(...); ASSERT_EQ(a, b); ASSERT_OK(rc); ... }
**   int main(void) { RUN(name); ...; return TEST_REPORT(); }
**
** No forking: a failing ASSERT returns from the test function, so gdb and ASan
** work directly. The binary prints "N passed, N failed" last and exits
** non-zero when anything failed. TEST_TMPDIR() gives each test a fresh
** directory under $TMPDIR (removed at the end unless MEADOW_KEEP_TMP is set).
*/
#ifndef MDW_TEST_H
#define MDW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test__passed, test__failed, test__cur_failed;
static const char *test__name;
static char test__tmp[512];

#define TEST(name) static void test_##name(void)

#define TEST_FAIL_(fmt, ...)                                                                       \
    do {                                                                                           \
        fprintf(stderr, "  FAIL %s (%s:%d): " fmt "\n", test__name, __FILE__, __LINE__,            \
                __VA_ARGS__);                                                                      \
        test__cur_failed = 1;                                                                      \
        return;                                                                                    \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST_FAIL_("%s", #cond);                                                               \
    } while (0)

#define ASSERT_MSG(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s (%s:%d): %s: ", test__name, __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            test__cur_failed = 1;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("%s == %s (%lld != %lld)", #a, #b, a_, b_);                                 \
    } while (0)

#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        long long r_ = (long long)(expr);                                                          \
        if (r_ != 0)                                                                               \
            TEST_FAIL_("%s returned %lld", #expr, r_);                                             \
    } while (0)

#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            TEST_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, a_ ? a_ : "(null)",                  \
                       b_ ? b_ : "(null)");                                                        \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            TEST_FAIL_("\"%s\" contains \"%s\"", h_ ? h_ : "(null)", n_);                          \
    } while (0)

static inline const char *test__mktmp(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(test__tmp, sizeof test__tmp, "%s/meadow-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(test__tmp)) {
        perror("mkdtemp");
        exit(2);
    }
    return test__tmp;
}

static inline void test__rmtmp(void)
{
    if (test__tmp[0] && !getenv("MEADOW_KEEP_TMP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", test__tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "  warning: could not remove %s\n", test__tmp);
    }
    test__tmp[0] = '\0';
}

#define TEST_TMPDIR() test__mktmp()

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test__name = #name;                                                                        \
        test__cur_failed = 0;                                                                      \
        test_##name();                                                                             \
        test__rmtmp();                                                                             \
        if (test__cur_failed) {                                                                    \
            test__failed++;                                                                        \
            fprintf(stderr, "not ok %s\n", #name);                                                 \
        } else {                                                                                   \
            test__passed++;                                                                        \
            if (getenv("TEST_VERBOSE"))                                                            \
                fprintf(stderr, "ok %s\n", #name);                                                 \
        }                                                                                          \
    } while (0)

#define TEST_REPORT()                                                                              \
    (printf("%d passed, %d failed\n", test__passed, test__failed), test__failed ? 1 : 0)

#endif
