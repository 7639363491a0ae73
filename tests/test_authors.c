/*
** tests/test_authors.c — the processor's in-memory author index
** (processor/authors.h) against a plain model: set semantics, ordering, tag
** filtering, rollback of an aborted transaction, growth past many resizes.
*/
#include "tests/test.h"
#include "common/mem.h"
#include "processor/authors.h"
#include "common/banned.h"

static void mk(uint8_t ah[MDW_IX_H], uint8_t tag[4], uint8_t rk[MDW_IX_RK], unsigned a, unsigned t,
               unsigned p)
{
    memset(ah, 0, MDW_IX_H);
    memcpy(ah, &a, sizeof a);
    ah[15] = 0x5a;
    memset(tag, 0, 4);
    tag[3] = (uint8_t)t;
    memset(rk, 0, MDW_IX_RK);
    rk[6] = (uint8_t)(p >> 8); /* the TID time's low bytes: order by p */
    rk[7] = (uint8_t)p;
    rk[8] = (uint8_t)(p * 31);
}

TEST(add_del_list_set_semantics_and_order)
{
    mdw_authors *a = mdw_authors_new();
    uint8_t ah[MDW_IX_H], tag[4], rk[MDW_IX_RK];
    /* Out of order, with a duplicate. */
    unsigned ps[] = {5, 1, 9, 3, 5};
    for (size_t i = 0; i < 5; i++) {
        mk(ah, tag, rk, 1, 2, ps[i]);
        mdw_authors_add(a, ah, tag, rk);
    }
    mk(ah, tag, rk, 1, 1, 7); /* another tag, sorts first */
    mdw_authors_add(a, ah, tag, rk);
    ASSERT_EQ(mdw_authors_entries(a), 5);
    ASSERT_EQ(mdw_authors_count(a), 1);
    mdw_author_post *l = NULL;
    size_t cap = 0;
    /* By records key (the post's time), then tag. */
    ASSERT_EQ(mdw_authors_list(a, ah, NULL, &l, &cap), 5);
    unsigned want_p[] = {1, 3, 5, 7, 9}, want_t[] = {2, 2, 2, 1, 2};
    for (size_t i = 0; i < 5; i++) {
        ASSERT_EQ(l[i].rk[7], want_p[i]);
        ASSERT_EQ(l[i].tag[3], want_t[i]);
    }
    uint8_t t2[4] = {0, 0, 0, 2}, t3[4] = {0, 0, 0, 3};
    ASSERT_EQ(mdw_authors_list(a, ah, t2, &l, &cap), 4);
    ASSERT_EQ(l[0].rk[7], 1);
    ASSERT_EQ(mdw_authors_list(a, ah, t3, &l, &cap), 0);
    /* Remove one, remove an absent one. */
    mk(ah, tag, rk, 1, 2, 3);
    mdw_authors_del(a, ah, tag, rk);
    mdw_authors_del(a, ah, tag, rk);
    mk(ah, tag, rk, 99, 2, 3);
    mdw_authors_del(a, ah, tag, rk);
    ASSERT_EQ(mdw_authors_entries(a), 4);
    mk(ah, tag, rk, 1, 2, 3);
    ASSERT_EQ(mdw_authors_list(a, ah, t2, &l, &cap), 3);
    ASSERT_EQ(l[1].rk[7], 5);
    mk(ah, tag, rk, 2, 2, 3);
    ASSERT_EQ(mdw_authors_list(a, ah, NULL, &l, &cap), 0);
    free(l);
    mdw_authors_free(a);
}

TEST(rollback_restores_committed_state)
{
    mdw_authors *a = mdw_authors_new();
    uint8_t ah[MDW_IX_H], tag[4], rk[MDW_IX_RK];
    for (unsigned p = 0; p < 10; p++) {
        mk(ah, tag, rk, p % 3, 1, p);
        mdw_authors_add(a, ah, tag, rk);
    }
    mdw_authors_commit(a);
    /* A transaction: removes some (one twice), adds some (one already present), then aborts. */
    for (unsigned p = 0; p < 10; p += 2) {
        mk(ah, tag, rk, p % 3, 1, p);
        mdw_authors_del(a, ah, tag, rk);
        mdw_authors_del(a, ah, tag, rk);
    }
    for (unsigned p = 5; p < 20; p++) {
        mk(ah, tag, rk, p % 3, 1, p);
        mdw_authors_add(a, ah, tag, rk);
    }
    ASSERT_EQ(mdw_authors_entries(a), 5 + 12); /* 5, 7 and 9 were still there */
    mdw_authors_rollback(a);
    ASSERT_EQ(mdw_authors_entries(a), 10);
    mdw_author_post *l = NULL;
    size_t cap = 0, total = 0;
    for (unsigned who = 0; who < 3; who++) {
        mk(ah, tag, rk, who, 1, 0);
        size_t n = mdw_authors_list(a, ah, NULL, &l, &cap);
        for (size_t i = 0; i < n; i++)
            ASSERT_EQ(l[i].rk[7] % 3, who);
        total += n;
    }
    ASSERT_EQ(total, 10);
    /* A second rollback has nothing to undo. */
    mdw_authors_rollback(a);
    ASSERT_EQ(mdw_authors_entries(a), 10);
    free(l);
    mdw_authors_free(a);
}

TEST(many_authors_through_resizes)
{
    mdw_authors *a = mdw_authors_new();
    uint8_t ah[MDW_IX_H], tag[4], rk[MDW_IX_RK];
    enum { N = 50000 };
    for (unsigned i = 0; i < N; i++) {
        mk(ah, tag, rk, i, i % 7, i & 0xffff);
        mdw_authors_add(a, ah, tag, rk);
    }
    mdw_authors_commit(a);
    ASSERT_EQ(mdw_authors_count(a), N);
    /* Empty most authors, then add new ones: the emptied slots are dropped as the table grows. */
    for (unsigned i = 0; i < N; i++)
        if (i % 10) {
            mk(ah, tag, rk, i, i % 7, i & 0xffff);
            mdw_authors_del(a, ah, tag, rk);
        }
    for (unsigned i = N; i < 2 * N; i++) {
        mk(ah, tag, rk, i, 1, 1);
        mdw_authors_add(a, ah, tag, rk);
    }
    mdw_authors_commit(a);
    ASSERT_EQ(mdw_authors_count(a), N / 10 + N);
    ASSERT_EQ(mdw_authors_entries(a), N / 10 + N);
    mdw_author_post *l = NULL;
    size_t cap = 0;
    for (unsigned i = 0; i < 2 * N; i += 997) {
        mk(ah, tag, rk, i, 0, 0);
        size_t want = i >= N || i % 10 == 0;
        ASSERT_EQ(mdw_authors_list(a, ah, NULL, &l, &cap), want);
    }
    free(l);
    mdw_authors_free(a);
}

int main(void)
{
    RUN(add_del_list_set_semantics_and_order);
    RUN(rollback_restores_committed_state);
    RUN(many_authors_through_resizes);
    return TEST_REPORT();
}
