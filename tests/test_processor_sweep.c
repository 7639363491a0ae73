/*
** tests/test_processor_sweep.c — the retention sweep when the index fails
** under it.
**
** This binary interposes mdb_cursor_get (the rule engine is linked into the
** executable, so its calls bind here first; the real one is found with
** dlsym(RTLD_NEXT)) to make one cursor step fail while armed. Kept out of
** the other processor tests so nothing else runs over the interposer.
*/
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>

#include "tests/test.h"
#include "tests/test_processor_helpers.h"
#include "common/banned.h"

#define URI_MAX 256

/* MDB_NEXT steps left before the armed failure (-1: not armed). */
static int fail_next_after = -1;

int mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op)
{
    typedef int (*real_fn)(MDB_cursor *, MDB_val *, MDB_val *, MDB_cursor_op);
    static real_fn real;
    if (!real)
        real = (real_fn)(uintptr_t)dlsym(RTLD_NEXT, "mdb_cursor_get");
    if (op == MDB_NEXT && fail_next_after >= 0 && fail_next_after-- == 0)
        return EIO;
    return real(cursor, key, data, op);
}

static uint64_t live_posts(fx *f)
{
    mdw_index_stats st;
    return mdw_index_stats_get(f->ix, &st) ? UINT64_MAX : st.posts;
}

/*
** A cursor step that fails in the middle of the sweep's walk over records
** must fail the sweep (the transaction is then aborted), not end the walk as
** if the range were done: the sweep would otherwise move meta.sweep_from past
** posts it never looked at, and no later sweep would remove them.
*/
TEST(sweep_fails_when_its_scan_fails)
{
    fx f_, *f = &f_;
    ASSERT_OK(fx_open(f, TEST_TMPDIR()));
    char curi[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(fx_post(f, OWNER, "old #atr_" TAG, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(live_posts(f), 6);

    /* Every post is past retention a week later. The third step of the walk fails. */
    uint64_t np = 0, nr = 0;
    mdw_clock_fake_set(&f->clk, NOW_US + RETENTION_US);
    ASSERT_OK(mdw_rules_begin(f->r));
    fail_next_after = 2;
    int rc = mdw_rules_sweep(f->r, &np, &nr);
    fail_next_after = -1;
    if (rc == 0)
        rc = mdw_rules_commit(f->r, 0);
    else
        mdw_rules_abort(f->r);
    ASSERT_MSG(rc != 0, "the sweep reported success after its scan failed (np=%llu)",
               (unsigned long long)np);

    /* The next sweep, on a sound index, removes every one of them. */
    ASSERT_OK(mdw_rules_begin(f->r));
    ASSERT_OK(mdw_rules_sweep(f->r, &np, &nr));
    ASSERT_OK(mdw_rules_commit(f->r, 0));
    ASSERT_EQ(np, 6);
    ASSERT_EQ(live_posts(f), 0);
    fx_close(f);
}

/* The same for the walk over expiry entries (tombstones): a failed step fails the sweep. */
TEST(sweep_fails_when_its_expiry_scan_fails)
{
    fx f_, *f = &f_;
    ASSERT_OK(fx_open(f, TEST_TMPDIR()));
    char uri[URI_MAX];
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(fx_post(f, ALICE, "untagged", uri, sizeof uri), MDW_RULE_APPLIED);
        ASSERT_EQ(fx_delete(f, uri), MDW_RULE_APPLIED);
    }
    mdw_index_stats st;
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.tombstones, 4);

    uint64_t np = 0, nr = 0;
    mdw_clock_fake_set(&f->clk, NOW_US + RETENTION_US);
    ASSERT_OK(mdw_rules_begin(f->r));
    fail_next_after = 5; /* four steps over the records (tombstones), then the second of expiry */
    int rc = mdw_rules_sweep(f->r, &np, &nr);
    fail_next_after = -1;
    if (rc == 0)
        rc = mdw_rules_commit(f->r, 0);
    else
        mdw_rules_abort(f->r);
    ASSERT_MSG(rc != 0, "the sweep reported success after its scan failed (nr=%llu)",
               (unsigned long long)nr);

    ASSERT_OK(mdw_rules_begin(f->r));
    ASSERT_OK(mdw_rules_sweep(f->r, &np, &nr));
    ASSERT_OK(mdw_rules_commit(f->r, 0));
    ASSERT_EQ(nr, 4);
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.tombstones, 0);
    fx_close(f);
}

int main(void)
{
    RUN(sweep_fails_when_its_scan_fails);
    RUN(sweep_fails_when_its_expiry_scan_fails);
    return TEST_REPORT();
}
