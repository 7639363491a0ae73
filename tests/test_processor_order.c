/*
** tests/test_processor_order.c — "the index is a function of the current
** records": one scripted history of configs, memberships, posts, edits,
** deletes, moderation and account events, applied
**   A) in order,
**   B) shuffled within rewind-sized windows, with duplicated events,
**   C) in order and then the whole input again (a replay),
** must give byte-identical `index dump` output, per-record revs and
** tombstones included (MDW_INDEX_DUMP_RECORDS).
*/
#include <sys/stat.h>

#include "tests/test.h"
#include "common/buf.h"
#include "common/log.h"
#include "tests/test_processor_helpers.h"
#include "common/banned.h"

#define URI_MAX 256
#define WINDOW  8 /* events per shuffle window (a 5 s rewind holds many more) */
#define DAVE    "did:plc:dave0000000000000000000"

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Records the scripted history into f->cap (capture mode). */
static void script(fx *f)
{
    char c1[URI_MAX], c2[URI_MAX], c3[URI_MAX], c4[URI_MAX], m[8][URI_MAX], p[40][URI_MAX],
        a[8][URI_MAX];
    const char *mods[] = {CAROL, NULL}, *blocks[] = {BOB, NULL};
    const char *authors[] = {ALICE, BOB, CAROL, DAVE, OWNER, MALLORY, OWNER2};
    f->capturing = 1;
    char c1_created[40];
    fx_iso(f->t + 1000, c1_created); /* an update keeps its record's createdAt */
    fx_config(f, OWNER, TAG, c1, URI_MAX, mods, NULL);
    fx_config(f, OWNER2, TAG, c2, URI_MAX, NULL, blocks);
    fx_config(f, OWNER, TAG2, c3, URI_MAX, NULL, NULL);
    fx_join(f, ALICE, c1, "member", -1, m[0], URI_MAX);
    fx_join(f, BOB, c1, "member", 1, m[1], URI_MAX);
    fx_join(f, BOB, c2, "member", 1, m[2], URI_MAX);
    fx_join(f, DAVE, c1, "member", 0, m[3], URI_MAX);
    fx_join(f, MALLORY, c1, "owner", 1, m[4], URI_MAX);
    fx_join(f, ALICE, c3, "member", 1, m[5], URI_MAX);
    for (int i = 0; i < 40; i++) {
        const char *text = i % 5 == 0   ? "#atr_" TAG " and #atr_" TAG2
                           : i % 5 == 1 ? "plain #atr_" TAG2
                           : i % 5 == 4 ? "untagged atr_ mention"
                                        : "hello #atr_" TAG "!";
        fx_post(f, authors[i % 7], text, p[i], URI_MAX);
        if (i == 12)
            fx_config(f, OWNER, TAG, c4, URI_MAX, NULL, NULL); /* later: does not win */
    }
    fx_mod(f, OWNER, c1, "hide_post", p[3], a[0], URI_MAX);
    fx_mod(f, CAROL, c1, "hide_post", p[7], a[1], URI_MAX);
    fx_mod(f, MALLORY, c1, "hide_post", p[14], a[2], URI_MAX);
    fx_mod(f, CAROL, c1, "block_user", ALICE, a[3], URI_MAX);
    fx_mod(f, OWNER, c1, "unhide_post", p[3], a[4], URI_MAX);
    fx_mod(f, OWNER, c1, "unblock_user", ALICE, a[5], URI_MAX);
    fx_delete(f, a[1]);
    fx_delete(f, p[10]);
    fx_delete(f, p[20]);
    /* Edits: drop the tag, add a tag. */
    fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", strrchr(p[21], '/') + 1, "update",
                        fx_post_record(f, "edited: gone")));
    fx_run(f, fx_commit(f, BOB, "app.bsky.feed.post", strrchr(p[22], '/') + 1, "update",
                        fx_post_record(f, "edited: now #atr_" TAG2)));
    /* Membership changes. */
    fx_delete(f, m[3]);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "community", c1);
    cJSON_AddStringToObject(r, "role", "member");
    cJSON_AddStringToObject(r, "joinedAt", "2026-11-22T00:00:00.000Z");
    cJSON_AddBoolToObject(r, "active", 0);
    fx_run(f, fx_commit(f, BOB, "net.atrarium.community.membership", strrchr(m[1], '/') + 1,
                        "update", r));
    /* A refused hashtag change, then an update that adds a moderator. */
    fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", strrchr(c1, '/') + 1, "update",
                        fx_config_record(f, "#atr_" TAG2, "moved")));
    cJSON *cfg = fx_config_record(f, "#atr_" TAG, "with dave");
    cJSON_ReplaceItemInObject(cfg, "createdAt", cJSON_CreateString(c1_created));
    cJSON *ma = cJSON_AddArrayToObject(cfg, "moderators");
    cJSON_AddItemToArray(ma, cJSON_CreateString(DAVE));
    fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", strrchr(c1, '/') + 1, "update",
                        cfg));
    /* Accounts. */
    fx_run(f, fx_account_json(f, BOB, 0, "deactivated", 10));
    fx_run(f, fx_account_json(f, BOB, 1, NULL, 11));
    fx_run(f, fx_account_json(f, CAROL, 0, "takendown", 20));
    /* A closed community, a deleted then re-created post. */
    fx_delete(f, c3);
    fx_delete(f, p[30]);
    fx_run(f, fx_commit(f, authors[30 % 7], "app.bsky.feed.post", strrchr(p[30], '/') + 1, "create",
                        fx_post_record(f, "again #atr_" TAG)));
    f->capturing = 0;
}

static char *run_into(const char *dir, char **ev, size_t n, int times)
{
    fx f;
    mkdir(dir, 0755);
    if (fx_open(&f, dir))
        return xstrdup("OPEN FAILED");
    for (int t = 0; t < times; t++)
        for (size_t i = 0; i < n; i++)
            if (fx_apply_json(&f, ev[i]) < 0) {
                fx_close(&f);
                return xasprintf("APPLY FAILED at %zu", i);
            }
    char *d = fx_dump(f.ix, MDW_INDEX_DUMP_RECORDS);
    fx_close(&f);
    return d;
}

/*
** Like run_into, but k events per write transaction (as the processor
** batches them): the rules read their own uncommitted writes (the deferred
** author_posts writes among them), which must not change the outcome.
*/
static char *run_batched(const char *dir, char **ev, size_t n, size_t k)
{
    fx f;
    mkdir(dir, 0755);
    if (fx_open(&f, dir))
        return xstrdup("OPEN FAILED");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += k) {
        if ((rc = mdw_rules_begin(f.r)))
            break;
        for (size_t j = i; j < n && j < i + k && !rc; j++) {
            mdw_event e;
            char err[256];
            mdw_rules_result res;
            if (mdw_event_parse(&e, ev[j], strlen(ev[j]), err, sizeof err) == 0)
                rc = mdw_rules_apply(f.r, &e, &res);
            mdw_event_release(&e);
        }
        if (rc)
            mdw_rules_abort(f.r);
        else
            rc = mdw_rules_commit(f.r, 0);
    }
    char *d = rc ? xasprintf("APPLY FAILED (%d)", rc) : fx_dump(f.ix, MDW_INDEX_DUMP_RECORDS);
    fx_close(&f);
    return d;
}

static void first_diff(const char *a, const char *b)
{
    size_t line = 1, i = 0;
    for (; a[i] && a[i] == b[i]; i++)
        if (a[i] == '\n')
            line++;
    const char *la = a + i, *lb = b + i;
    while (la > a && la[-1] != '\n')
        la--;
    while (lb > b && lb[-1] != '\n')
        lb--;
    fprintf(stderr, "  dumps differ at line %zu:\n    A: %.200s\n    B: %.200s\n", line, la, lb);
}

TEST(same_records_any_order_same_dump)
{
    const char *tmp = TEST_TMPDIR();
    fx f;
    ASSERT_OK(fx_open(&f, tmp));
    script(&f);
    size_t n = f.ncap;
    ASSERT(n > 60);
    char **ev = f.cap;

    char da[600], db[600], dc[600];
    snprintf(da, sizeof da, "%s/a", tmp);
    snprintf(db, sizeof db, "%s/b", tmp);
    snprintf(dc, sizeof dc, "%s/c", tmp);
    char *A = run_into(da, ev, n, 1);

    /* B: shuffled within windows, about a third of the events duplicated nearby (3 seeds). */
    char **shuf = xcalloc(2 * n, sizeof *shuf);
    char *C = run_into(dc, ev, n, 2);
    int ab = 1, ac = strcmp(A, C) == 0;
    if (!ac)
        first_diff(A, C);
    for (int seed = 0; seed < 3 && ab; seed++) {
        size_t m = 0;
        for (size_t w = 0; w < n; w += WINDOW) {
            size_t len = n - w < WINDOW ? n - w : WINDOW;
            char *win[WINDOW];
            memcpy(win, ev + w, len * sizeof *win);
            for (size_t i = len; i > 1; i--) {
                size_t j = next_rand() % i;
                char *t = win[i - 1];
                win[i - 1] = win[j];
                win[j] = t;
            }
            for (size_t i = 0; i < len; i++) {
                shuf[m++] = win[i];
                if (next_rand() % 3 == 0)
                    shuf[m++] = win[next_rand() % len];
            }
        }
        char bdir[700];
        snprintf(bdir, sizeof bdir, "%s%d", db, seed);
        char *B = run_into(bdir, shuf, m, 1);
        ab = strcmp(A, B) == 0;
        if (!ab)
            first_diff(A, B);
        free(B);
    }
    /* The dump must hold real content, not two empty strings. */
    int communities = 0, posts = 0, tombs = 0;
    for (const char *p = A; (p = strstr(p, "\ncommunity ")); p++)
        communities++;
    for (const char *p = A; (p = strstr(p, "\n  post ")); p++)
        posts++;
    for (const char *p = A; (p = strstr(p, "state=tombstone")); p++)
        tombs++;
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "%s", A);
    free(A);
    free(C);
    free(shuf);
    fx_close(&f);
    ASSERT(ab);
    ASSERT(ac);
    ASSERT_EQ(communities, 2); /* c1 and c2 open, c3 deleted */
    ASSERT(posts > 10);
    ASSERT(tombs >= 5);
}

/* The same history in one transaction, and in transactions of 7 and of 2 events: the same dump. */
TEST(batched_transactions_same_dump)
{
    const char *tmp = TEST_TMPDIR();
    fx f;
    ASSERT_OK(fx_open(&f, tmp));
    script(&f);
    size_t n = f.ncap;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/one", tmp);
    char *A = run_into(dir, f.cap, n, 1);
    ASSERT(strstr(A, "\n  post ") != NULL);
    const size_t ks[] = {n, 7, 2};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        snprintf(dir, sizeof dir, "%s/batch%zu", tmp, ks[i]);
        char *B = run_batched(dir, f.cap, n, ks[i]);
        int same = strcmp(A, B) == 0;
        if (!same) {
            fprintf(stderr, "  batch of %zu:\n", ks[i]);
            first_diff(A, B);
        }
        free(B);
        ASSERT(same);
    }
    free(A);
    fx_close(&f);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_OFF);
    RUN(same_records_any_order_same_dump);
    RUN(batched_transactions_same_dump);
    return TEST_REPORT();
}
