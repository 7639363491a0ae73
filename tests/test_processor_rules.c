/*
** tests/test_processor_rules.c — the scenario tests of issue 5, one case
** each, driven through event decoding and the rule engine into a real LMDB
** index, read back through the feed API feedgen uses (fake clock).
** The queue-driven loop and lexicon validation are in test_processor.c.
*/
#include "tests/test.h"
#include "common/buf.h"
#include "common/log.h"
#include "tests/test_processor_helpers.h"
#include "common/banned.h"

#define URI_MAX 256

/* Opens a fixture in a fresh directory; `f` and `d` are declared by the macro. */
#define FX()                                                                                       \
    fx f_, *f = &f_;                                                                               \
    ASSERT_OK(fx_open(f, TEST_TMPDIR()))

#define FEED_IS(owner, tag, want)                                                                  \
    do {                                                                                           \
        char *got_ = fx_feed(f, owner, tag);                                                       \
        int same_ = strcmp(got_, want) == 0;                                                       \
        if (!same_)                                                                                \
            fprintf(stderr, "  feed %s/%s:\n    got  [%s]\n    want [%s]\n", owner, tag, got_,     \
                    want);                                                                         \
        free(got_);                                                                                \
        if (!same_) {                                                                              \
            fx_close(f);                                                                           \
            TEST_FAIL_("%s", "feed differs");                                                      \
        }                                                                                          \
    } while (0)

/* Community OWNER/TAG with ALICE joined; curi receives the config URI. */
static int setup_community(fx *f, char *curi)
{
    if (fx_config(f, OWNER, TAG, curi, URI_MAX, NULL, NULL) != MDW_RULE_APPLIED)
        return -1;
    if (fx_join(f, ALICE, curi, "member", -1, NULL, 0) != MDW_RULE_APPLIED)
        return -1;
    return 0;
}

TEST(member_post_hide_unhide_block_unblock)
{
    FX();
    char curi[URI_MAX], p1[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "hello #atr_" TAG, p1, sizeof p1), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p1);
    ASSERT_EQ(fx_mod(f, OWNER, curi, "hide_post", p1, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    ASSERT_EQ(fx_mod(f, OWNER, curi, "unhide_post", p1, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p1);
    ASSERT_EQ(fx_mod(f, OWNER, curi, "block_user", ALICE, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    ASSERT_EQ(fx_mod(f, OWNER, curi, "unblock_user", ALICE, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p1);
    fx_close(f);
}

TEST(owner_post_listed_without_membership)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, OWNER, "#atr_" TAG " welcome", p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(five_members_newest_first)
{
    FX();
    char curi[URI_MAX], p[5][URI_MAX], want[5 * URI_MAX] = "";
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    const char *dids[5] = {ALICE, BOB, CAROL, "did:plc:dave", "did:web:erin.example.com"};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(fx_join(f, dids[i], curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(fx_post(f, dids[i], "post #atr_" TAG, p[i], URI_MAX), MDW_RULE_APPLIED);
    for (int i = 4; i >= 0; i--) {
        size_t l = strlen(want);
        snprintf(want + l, sizeof want - l, "%s%s", l ? " " : "", p[i]);
    }
    FEED_IS(OWNER, TAG, want);
    /* Pages of 2 give the same order. */
    char *paged = fx_feed_paged(f, OWNER, TAG, 2);
    ASSERT_STREQ(paged, want);
    free(paged);
    fx_close(f);
}

TEST(tags_in_facet_tags_array_and_escaped_hash)
{
    FX();
    char curi[URI_MAX], p1[URI_MAX], p2[URI_MAX], p3[URI_MAX], want[4 * URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    /* Only in a hashtag facet (text has no #atr_). */
    char rkey[14];
    fx_rkey(f, rkey);
    snprintf(p1, sizeof p1, "at://%s/app.bsky.feed.post/%s", ALICE, rkey);
    cJSON *rec = fx_post_record(f, "facet only");
    cJSON *facets = cJSON_AddArrayToObject(rec, "facets");
    cJSON *fa = cJSON_CreateObject();
    cJSON_AddItemToArray(facets, fa);
    cJSON *idx = cJSON_AddObjectToObject(fa, "index");
    cJSON_AddNumberToObject(idx, "byteStart", 0);
    cJSON_AddNumberToObject(idx, "byteEnd", 5);
    cJSON *feats = cJSON_AddArrayToObject(fa, "features");
    cJSON *ft = cJSON_CreateObject();
    cJSON_AddItemToArray(feats, ft);
    cJSON_AddStringToObject(ft, "$type", "app.bsky.richtext.facet#tag");
    cJSON_AddStringToObject(ft, "tag", "atr_" TAG);
    ASSERT_EQ(fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", rec)),
              MDW_RULE_APPLIED);
    /* Only in the tags array. */
    fx_rkey(f, rkey);
    snprintf(p2, sizeof p2, "at://%s/app.bsky.feed.post/%s", ALICE, rkey);
    rec = fx_post_record(f, "tags only");
    cJSON *tags = cJSON_AddArrayToObject(rec, "tags");
    cJSON_AddItemToArray(tags, cJSON_CreateString("atr_" TAG));
    ASSERT_EQ(fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", rec)),
              MDW_RULE_APPLIED);
    /* "#" written as a JSON escape (\u0023) and as fullwidth ＃ in raw event bytes. */
    fx_rkey(f, rkey);
    snprintf(p3, sizeof p3, "at://%s/app.bsky.feed.post/%s", ALICE, rkey);
    char iso[40], rev[14], json[1024];
    f->t += 1000;
    fx_tid(f->t, 7, rev);
    fx_iso(f->t, iso);
    snprintf(json, sizeof json,
             "{\"did\":\"%s\",\"time_us\":%lld,\"kind\":\"commit\",\"commit\":{\"rev\":\"%s\","
             "\"operation\":\"create\",\"collection\":\"app.bsky.feed.post\",\"rkey\":\"%s\","
             "\"record\":{\"$type\":\"app.bsky.feed.post\",\"text\":\"escaped \\u0023atr_%s!\","
             "\"createdAt\":\"%s\"},\"cid\":\"bafyx\"}}",
             ALICE, (long long)f->t, rev, rkey, TAG, iso);
    ASSERT_EQ(fx_apply_json(f, json), MDW_RULE_APPLIED);
    ASSERT_EQ(f->last_why, MDW_RR_POST_INDEXED);
    snprintf(want, sizeof want, "%s %s %s", p3, p2, p1);
    FEED_IS(OWNER, TAG, want);
    char p4[URI_MAX];
    ASSERT_EQ(fx_post(f, ALICE,
                      "fullwidth \xef\xbc\x83"
                      "atr_" TAG,
                      p4, sizeof p4),
              MDW_RULE_APPLIED);
    ASSERT_EQ(f->last_why, MDW_RR_POST_INDEXED);
    fx_close(f);
}

TEST(untagged_and_malformed_tags_not_found)
{
    FX();
    char curi[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    const char *texts[] = {
        "no tag at all",  "#atr_xyz",          "#atr_0123ABCD",   "#atr_0123abc",
        "#atr_0123abcde", "word#atr_0123abcd", "#atr_0123abcd_x", "atr_0123abcd bare",
        "#atr_0123abcdé", "##atr_0123abcd",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        ASSERT_EQ(fx_post(f, ALICE, texts[i], NULL, 0), MDW_RULE_APPLIED);
        ASSERT_MSG(f->last_why == MDW_RR_POST_UNTAGGED, "text [%s] gave %s", texts[i],
                   f->last_reason);
    }
    /* The boundary cases that must match: start, after a newline, before punctuation, end. */
    const char *good[] = {"#atr_0123abcd", "x\n#atr_0123abcd.", "(see) #atr_0123abcd, ok",
                          "a #atr_0123abcd"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ASSERT_EQ(fx_post(f, ALICE, good[i], NULL, 0), MDW_RULE_APPLIED);
        ASSERT_MSG(f->last_why == MDW_RR_POST_INDEXED, "text [%s] gave %s", good[i],
                   f->last_reason);
    }
    /* Facet/tags entries must be exact. */
    char rkey[14];
    fx_rkey(f, rkey);
    cJSON *rec = fx_post_record(f, "inexact tags");
    cJSON *tags = cJSON_AddArrayToObject(rec, "tags");
    cJSON_AddItemToArray(tags, cJSON_CreateString("#atr_" TAG));
    cJSON_AddItemToArray(tags, cJSON_CreateString("atr_0123ABCD"));
    cJSON_AddItemToArray(tags, cJSON_CreateString("atr_" TAG "0"));
    ASSERT_EQ(fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", rec)),
              MDW_RULE_APPLIED);
    ASSERT_EQ(f->last_why, MDW_RR_POST_UNTAGGED);
    char *feed = fx_feed(f, OWNER, TAG);
    int n = 0;
    for (char *p = feed; (p = strstr(p, "at://")); p++)
        n++;
    free(feed);
    ASSERT_EQ(n, 4);
    fx_close(f);
}

TEST(nonmember_listed_once_author_joins)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "early #atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(membership_deleted_not_listed)
{
    FX();
    char curi[URI_MAX], muri[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, muri, sizeof muri), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    ASSERT_EQ(fx_delete(f, muri), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    fx_close(f);
}

TEST(membership_inactive_not_listed)
{
    FX();
    char curi[URI_MAX], muri[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 0, muri, sizeof muri), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    /* An update of the same membership record to active lists the post. */
    char rkey[14], iso[40];
    snprintf(rkey, sizeof rkey, "%s", strrchr(muri, '/') + 1);
    fx_iso(f->t, iso);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "net.atrarium.community.membership");
    cJSON_AddStringToObject(r, "community", curi);
    cJSON_AddStringToObject(r, "role", "member");
    cJSON_AddStringToObject(r, "joinedAt", iso);
    cJSON_AddBoolToObject(r, "active", 1);
    ASSERT_EQ(fx_run(f, fx_commit(f, BOB, "net.atrarium.community.membership", rkey, "update", r)),
              MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(blocklisted_member_not_listed)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    const char *blocks[] = {BOB, NULL};
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, blocks), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    fx_close(f);
}

TEST(deleted_post_leaves_every_feed)
{
    FX();
    char c1[URI_MAX], c2[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, c1, sizeof c1, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_config(f, OWNER, TAG2, c2, sizeof c2, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, OWNER, "#atr_" TAG " #atr_" TAG2, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    FEED_IS(OWNER, TAG2, p);
    ASSERT_EQ(fx_delete(f, p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    FEED_IS(OWNER, TAG2, "");
    fx_close(f);
}

TEST(post_edited_to_drop_tag_leaves)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG " first", p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    const char *rkey = strrchr(p, '/') + 1;
    ASSERT_EQ(fx_run(f, fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "update",
                                  fx_post_record(f, "edited, no tag"))),
              MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    fx_close(f);
}

TEST(post_with_two_community_tags_in_both)
{
    FX();
    char c1[URI_MAX], c2[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, c1, sizeof c1, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_config(f, OWNER2, TAG2, c2, sizeof c2, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, c1, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, c2, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "both #atr_" TAG " and #atr_" TAG2, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    FEED_IS(OWNER2, TAG2, p);
    fx_close(f);
}

TEST(member_claiming_role_owner_cannot_hide)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, MALLORY, curi, "owner", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    fx_mod(f, MALLORY, curi, "hide_post", p, NULL, 0);
    fx_mod(f, MALLORY, curi, "block_user", ALICE, NULL, 0);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(stranger_moderation_changes_nothing)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    fx_mod(f, MALLORY, curi, "hide_post", p, NULL, 0);
    fx_mod(f, MALLORY, curi, "block_user", ALICE, NULL, 0);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(moderator_of_one_community_cannot_act_in_another)
{
    FX();
    char c1[URI_MAX], c2[URI_MAX], p1[URI_MAX], p2[URI_MAX];
    const char *mods[] = {CAROL, NULL};
    ASSERT_EQ(fx_config(f, OWNER, TAG, c1, sizeof c1, mods, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_config(f, OWNER2, TAG2, c2, sizeof c2, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, c1, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, c2, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p1, sizeof p1), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG2, p2, sizeof p2), MDW_RULE_APPLIED);
    /* Carol moderates c1: her hide there works... */
    ASSERT_EQ(fx_mod(f, CAROL, c1, "hide_post", p1, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    /* ...and does nothing in c2. */
    fx_mod(f, CAROL, c2, "hide_post", p2, NULL, 0);
    fx_mod(f, CAROL, c2, "block_user", ALICE, NULL, 0);
    FEED_IS(OWNER2, TAG2, p2);
    fx_close(f);
}

TEST(deleting_hide_action_restores_post)
{
    FX();
    char curi[URI_MAX], p[URI_MAX], a[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_mod(f, OWNER, curi, "hide_post", p, a, sizeof a), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    ASSERT_EQ(fx_delete(f, a), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(second_owner_same_hashtag_is_separate_community)
{
    FX();
    char c1[URI_MAX], c2[URI_MAX], p1[URI_MAX], p2[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, c1, sizeof c1, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_config(f, OWNER2, TAG, c2, sizeof c2, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, c1, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, BOB, c2, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p1, sizeof p1), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "#atr_" TAG, p2, sizeof p2), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p1);
    FEED_IS(OWNER2, TAG, p2);
    fx_close(f);
}

TEST(deleted_config_makes_feed_unknown)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    ASSERT_EQ(fx_delete(f, curi), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "UNKNOWN");
    mdw_index_stats st;
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.communities, 0);
    fx_close(f);
}

TEST(membership_before_config_takes_effect)
{
    FX();
    char curi[URI_MAX], p[URI_MAX], rkey[14];
    /* The config's URI is known before it arrives (its rkey is a TID chosen now). */
    fx_tid(f->t + 50000, 3, rkey);
    snprintf(curi, sizeof curi, "at://%s/net.atrarium.community.config/%s", OWNER, rkey);
    ASSERT_EQ(fx_join(f, ALICE, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "UNKNOWN");
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", rkey, "create",
                                  fx_config_record(f, "#atr_" TAG, "late"))),
              MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

/*
** The writer remembers which community a config URI names (comm_by_curi);
** a config arriving or going away must be seen by the next membership.
*/
TEST(config_uri_lookups_follow_config_changes)
{
    FX();
    char curi[URI_MAX], p[URI_MAX], rkey[14];
    fx_tid(f->t + 50000, 3, rkey);
    snprintf(curi, sizeof curi, "at://%s/net.atrarium.community.config/%s", OWNER, rkey);
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED); /* no community */
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", rkey, "create",
                                  fx_config_record(f, "#atr_" TAG, "late"))),
              MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, CAROL, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, CAROL, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    ASSERT_EQ(fx_delete(f, curi), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    mdw_index_stats st;
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.communities, 0);
    ASSERT_EQ(st.members, 0); /* nobody is a member of a community that is gone */
    fx_close(f);
}

TEST(deactivated_account_hidden_and_restored)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    const char *statuses[] = {"deactivated", "takendown", "suspended", "deleted"};
    int64_t seq = 100;
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(fx_run(f, fx_account_json(f, ALICE, 0, statuses[i], seq++)), MDW_RULE_APPLIED);
        FEED_IS(OWNER, TAG, "");
        ASSERT_EQ(fx_run(f, fx_account_json(f, ALICE, 1, NULL, seq++)), MDW_RULE_APPLIED);
        FEED_IS(OWNER, TAG, p);
    }
    /* An older account event arriving late changes nothing. */
    ASSERT_EQ(fx_run(f, fx_account_json(f, ALICE, 0, "deactivated", 1)), MDW_RULE_NOOP);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(retention_removes_old_post)
{
    FX();
    char curi[URI_MAX], p_old[URI_MAX], p_new[URI_MAX], rkey[14];
    ASSERT_OK(setup_community(f, curi));
    fx_rkey(f, rkey);
    snprintf(p_old, sizeof p_old, "at://%s/app.bsky.feed.post/%s", ALICE, rkey);
    char *old_json = fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create",
                               fx_post_record(f, "old #atr_" TAG));
    ASSERT_EQ(fx_apply_json(f, old_json), MDW_RULE_APPLIED);
    f->t += 2 * DAY_US;
    ASSERT_EQ(fx_post(f, ALICE, "new #atr_" TAG, p_new, sizeof p_new), MDW_RULE_APPLIED);
    char both[2 * URI_MAX];
    snprintf(both, sizeof both, "%s %s", p_new, p_old);
    FEED_IS(OWNER, TAG, both);
    /* Seven days after the first post (and a bit): it leaves, the second stays. */
    mdw_clock_fake_set(&f->clk, NOW_US - DAY_US + RETENTION_US + DAY_US / 2);
    FEED_IS(OWNER, TAG, p_new); /* reads already leave it out */
    uint64_t np, nr;
    ASSERT_OK(mdw_rules_begin(f->r));
    ASSERT_OK(mdw_rules_sweep(f->r, &np, &nr));
    ASSERT_OK(mdw_rules_commit(f->r, 0));
    ASSERT_EQ(np, 1);
    FEED_IS(OWNER, TAG, p_new);
    mdw_index_stats st;
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.posts, 1);
    /* A replay of the old post's create does not bring it back. */
    ASSERT_EQ(fx_apply_json(f, old_json), MDW_RULE_APPLIED);
    ASSERT_EQ(f->last_why, MDW_RR_POST_EXPIRED);
    free(old_json);
    FEED_IS(OWNER, TAG, p_new);
    fx_close(f);
}

static uint64_t sweep_now(fx *f, int64_t now)
{
    uint64_t np = 0, nr = 0;
    mdw_clock_fake_set(&f->clk, now);
    if (mdw_rules_begin(f->r) || mdw_rules_sweep(f->r, &np, &nr) || mdw_rules_commit(f->r, 0))
        return UINT64_MAX;
    return np;
}

static uint64_t live_posts(fx *f)
{
    mdw_index_stats st;
    return mdw_index_stats_get(f->ix, &st) ? UINT64_MAX : st.posts;
}

/* A post record whose createdAt is `created` and whose rkey is rkey. */
static int fx_post_at(fx *f, const char *did, const char *rkey, int64_t created, const char *text)
{
    cJSON *rec = fx_post_record(f, text);
    char iso[40];
    fx_iso(created, iso);
    cJSON_ReplaceItemInObject(rec, "createdAt", cJSON_CreateString(iso));
    return fx_run(f, fx_commit(f, did, "app.bsky.feed.post", rkey, "create", rec));
}

/*
** Retention walks records in rkey time order (format 5): posts whose sort
** key is far below their rkey time (a backdated createdAt, a rkey that is
** not a TID) are swept through expiry entries at their sort key, and a post
** arriving with a rkey time below where the last sweep stopped is still
** swept when its time comes.
*/
TEST(retention_sweeps_irregular_and_late_posts)
{
    FX();
    char curi[URI_MAX], rkey[14];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "regular #atr_" TAG, NULL, 0), MDW_RULE_APPLIED); /* sk ~ now-1d */
    fx_rkey(f, rkey);
    ASSERT_EQ(fx_post_at(f, ALICE, rkey, f->t - 3 * DAY_US, "backdated #atr_" TAG),
              MDW_RULE_APPLIED); /* sk = now-4d, rkey time now-1d */
    ASSERT_EQ(fx_post_at(f, ALICE, "self", f->t, "no tid #atr_" TAG), MDW_RULE_APPLIED);
    ASSERT_EQ(live_posts(f), 3);
    ASSERT_EQ(sweep_now(f, NOW_US), 0);
    /* After that sweep: a post whose rkey time is just above the cutoff, below where it stopped. */
    int64_t late = NOW_US - RETENTION_US + DAY_US / 48; /* cutoff + 30 min */
    fx_tid(late, 5, rkey);
    ASSERT_EQ(fx_post_at(f, ALICE, rkey, late, "late #atr_" TAG), MDW_RULE_APPLIED);
    ASSERT_EQ(live_posts(f), 4);
    ASSERT_EQ(sweep_now(f, NOW_US + DAY_US / 24), 1); /* an hour later: the late one */
    ASSERT_EQ(live_posts(f), 3);
    ASSERT_EQ(sweep_now(f, NOW_US + 3 * DAY_US + DAY_US / 24), 1); /* the backdated one */
    ASSERT_EQ(live_posts(f), 2);
    ASSERT_EQ(sweep_now(f, NOW_US + 5 * DAY_US), 0);
    ASSERT_EQ(sweep_now(f, NOW_US + 6 * DAY_US + DAY_US / 12), 2); /* regular and no-tid */
    ASSERT_EQ(live_posts(f), 0);
    fx_close(f);
}

TEST(config_hashtag_change_refused)
{
    FX();
    char curi[URI_MAX], p[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    const char *rkey = strrchr(curi, '/') + 1;
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", rkey, "update",
                                  fx_config_record(f, "#atr_" TAG2, "moved"))),
              MDW_RULE_REFUSED);
    ASSERT_EQ(f->last_why, MDW_RR_HASHTAG_CHANGE);
    FEED_IS(OWNER, TAG, p);
    FEED_IS(OWNER, TAG2, "UNKNOWN");
    /* A later update keeping the hashtag applies. */
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "net.atrarium.community.config", rkey, "update",
                                  fx_config_record(f, "#atr_" TAG, "renamed"))),
              MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(lowest_createdat_config_wins)
{
    FX();
    char c1[URI_MAX], c2[URI_MAX], p[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, c1, sizeof c1, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_config(f, OWNER, TAG, c2, sizeof c2, NULL, NULL), MDW_RULE_APPLIED);
    /* Memberships naming the later config do not count. */
    ASSERT_EQ(fx_join(f, ALICE, c2, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p, sizeof p), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    /* Deleting the first makes the second win. */
    ASSERT_EQ(fx_delete(f, c1), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p);
    fx_close(f);
}

TEST(unknown_atrarium_collection_skipped)
{
    FX();
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "net.atrarium.group.config");
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "net.atrarium.group.config", "3kabc", "create", r)),
              MDW_RULE_SKIPPED);
    ASSERT_EQ(f->last_why, MDW_RR_UNKNOWN_ATRARIUM);
    r = cJSON_CreateObject();
    ASSERT_EQ(fx_run(f, fx_commit(f, OWNER, "app.bsky.feed.like", "3kabc", "create", r)),
              MDW_RULE_SKIPPED);
    ASSERT_EQ(f->last_why, MDW_RR_OTHER_COLLECTION);
    fx_close(f);
}

TEST(replays_and_stale_events_are_noops)
{
    FX();
    char curi[URI_MAX], rkey[14];
    ASSERT_OK(setup_community(f, curi));
    fx_rkey(f, rkey);
    char *create =
        fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "create", fx_post_record(f, "#atr_" TAG));
    char *del = fx_commit(f, ALICE, "app.bsky.feed.post", rkey, "delete", NULL);
    ASSERT_EQ(fx_apply_json(f, create), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_apply_json(f, create), MDW_RULE_NOOP);
    ASSERT_EQ(f->last_why, MDW_RR_DUPLICATE);
    ASSERT_EQ(fx_apply_json(f, del), MDW_RULE_APPLIED);
    /* The create replayed after its delete (a rewind) stays deleted. */
    ASSERT_EQ(fx_apply_json(f, create), MDW_RULE_NOOP);
    ASSERT_EQ(f->last_why, MDW_RR_TOMBSTONED);
    FEED_IS(OWNER, TAG, "");
    mdw_index_stats st;
    ASSERT_OK(mdw_index_stats_get(f->ix, &st));
    ASSERT_EQ(st.tombstones, 1);
    free(create);
    free(del);
    fx_close(f);
}

TEST(moderator_from_config_is_member_and_can_hide)
{
    FX();
    char curi[URI_MAX], p1[URI_MAX], p2[URI_MAX];
    const char *mods[] = {CAROL, NULL};
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, mods, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, CAROL, "mod here #atr_" TAG, p1, sizeof p1), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG, p2, sizeof p2), MDW_RULE_APPLIED);
    char both[2 * URI_MAX];
    snprintf(both, sizeof both, "%s %s", p2, p1);
    FEED_IS(OWNER, TAG, both);
    ASSERT_EQ(fx_mod(f, CAROL, curi, "hide_post", p2, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p1);
    fx_close(f);
}

TEST(action_with_mismatched_target_refused)
{
    FX();
    char curi[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    /* hide_post naming a DID */
    ASSERT_EQ(fx_mod(f, OWNER, curi, "hide_post", ALICE, NULL, 0), MDW_RULE_REFUSED);
    ASSERT_EQ(f->last_why, MDW_RR_BAD_TARGET);
    fx_close(f);
}

/*
** Posts by author live in the writer's memory (processor/authors.h), built
** from records when a writer starts: after a restart a join, a block and an
** account change must still find the author's earlier posts.
*/
TEST(author_posts_found_after_restart)
{
    FX();
    char curi[URI_MAX], pb[URI_MAX], pa[URI_MAX], pa2[URI_MAX];
    ASSERT_OK(setup_community(f, curi));
    ASSERT_EQ(fx_post(f, BOB, "early #atr_" TAG, pb, sizeof pb), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "#atr_" TAG " and #atr_" TAG2, pa, sizeof pa), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "deleted later #atr_" TAG, pa2, sizeof pa2), MDW_RULE_APPLIED);
    char want[3 * URI_MAX];
    snprintf(want, sizeof want, "%s %s", pa2, pa);
    FEED_IS(OWNER, TAG, want);
    ASSERT_OK(fx_restart(f));
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    snprintf(want, sizeof want, "%s %s %s", pa2, pa, pb);
    FEED_IS(OWNER, TAG, want);
    ASSERT_OK(fx_restart(f));
    ASSERT_EQ(fx_delete(f, pa2), MDW_RULE_APPLIED);
    ASSERT_OK(fx_restart(f));
    ASSERT_EQ(fx_run(f, fx_account_json(f, ALICE, 0, "deactivated", 7)), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, pb);
    ASSERT_OK(fx_restart(f));
    ASSERT_EQ(fx_run(f, fx_account_json(f, ALICE, 1, NULL, 8)), MDW_RULE_APPLIED);
    snprintf(want, sizeof want, "%s %s", pa, pb);
    FEED_IS(OWNER, TAG, want);
    ASSERT_EQ(fx_mod(f, OWNER, curi, "block_user", ALICE, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, pb);
    fx_close(f);
}

/*
** The writer's negative filters (moderated targets, hidden accounts,
** members) are filled from the tables when it starts: state written before
** a restart still decides after it.
*/
TEST(lookup_filters_built_after_restart)
{
    FX();
    char curi[URI_MAX], p1[URI_MAX], p2[URI_MAX], p3[URI_MAX], pc[URI_MAX], muri[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_join(f, ALICE, curi, "member", 1, muri, sizeof muri), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "one #atr_" TAG, p1, sizeof p1), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, ALICE, "two #atr_" TAG, p2, sizeof p2), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_mod(f, OWNER, curi, "hide_post", p1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_run(f, fx_account_json(f, CAROL, 0, "deactivated", 5)), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, p2);
    ASSERT_OK(fx_restart(f));
    /* members: ALICE is one without any event since the restart */
    ASSERT_EQ(fx_post(f, ALICE, "three #atr_" TAG, p3, sizeof p3), MDW_RULE_APPLIED);
    char want[3 * URI_MAX];
    snprintf(want, sizeof want, "%s %s", p3, p2);
    FEED_IS(OWNER, TAG, want);
    /* hidden accounts: CAROL joins and posts, still deactivated */
    ASSERT_EQ(fx_join(f, CAROL, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, CAROL, "me too #atr_" TAG, pc, sizeof pc), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, want);
    /* moderated targets: ALICE's posts placed again (block, unblock) keep p1 hidden */
    ASSERT_OK(fx_restart(f));
    ASSERT_EQ(fx_mod(f, OWNER, curi, "block_user", ALICE, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, "");
    ASSERT_EQ(fx_mod(f, OWNER, curi, "unblock_user", ALICE, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, want);
    fx_close(f);
}

/*
** An aborted transaction leaves the in-memory author index as it found it:
** a delete that is rolled back must not make a later join miss the post.
*/
TEST(aborted_transaction_keeps_author_posts)
{
    FX();
    char curi[URI_MAX], pb[URI_MAX];
    ASSERT_EQ(fx_config(f, OWNER, TAG, curi, sizeof curi, NULL, NULL), MDW_RULE_APPLIED);
    ASSERT_EQ(fx_post(f, BOB, "early #atr_" TAG, pb, sizeof pb), MDW_RULE_APPLIED);
    /* Delete it inside a transaction that is then aborted. */
    const char *rkey = strrchr(pb, '/') + 1;
    char *json = fx_commit(f, BOB, "app.bsky.feed.post", rkey, "delete", NULL);
    mdw_event ev;
    char err[256];
    ASSERT_OK(mdw_event_parse(&ev, json, strlen(json), err, sizeof err));
    mdw_rules_result res;
    ASSERT_OK(mdw_rules_begin(f->r));
    ASSERT_OK(mdw_rules_apply(f->r, &ev, &res));
    ASSERT_EQ(res.outcome, MDW_RULE_APPLIED);
    mdw_rules_abort(f->r);
    mdw_event_release(&ev);
    free(json);
    ASSERT_EQ(fx_join(f, BOB, curi, "member", 1, NULL, 0), MDW_RULE_APPLIED);
    FEED_IS(OWNER, TAG, pb);
    fx_close(f);
}

int main(void)
{
    mdw_log_set_level(MDW_LOG_ERROR);
    RUN(member_post_hide_unhide_block_unblock);
    RUN(owner_post_listed_without_membership);
    RUN(five_members_newest_first);
    RUN(tags_in_facet_tags_array_and_escaped_hash);
    RUN(untagged_and_malformed_tags_not_found);
    RUN(nonmember_listed_once_author_joins);
    RUN(membership_deleted_not_listed);
    RUN(membership_inactive_not_listed);
    RUN(blocklisted_member_not_listed);
    RUN(deleted_post_leaves_every_feed);
    RUN(post_edited_to_drop_tag_leaves);
    RUN(post_with_two_community_tags_in_both);
    RUN(member_claiming_role_owner_cannot_hide);
    RUN(stranger_moderation_changes_nothing);
    RUN(moderator_of_one_community_cannot_act_in_another);
    RUN(deleting_hide_action_restores_post);
    RUN(second_owner_same_hashtag_is_separate_community);
    RUN(deleted_config_makes_feed_unknown);
    RUN(membership_before_config_takes_effect);
    RUN(deactivated_account_hidden_and_restored);
    RUN(retention_removes_old_post);
    RUN(config_hashtag_change_refused);
    RUN(lowest_createdat_config_wins);
    RUN(unknown_atrarium_collection_skipped);
    RUN(replays_and_stale_events_are_noops);
    RUN(moderator_from_config_is_member_and_can_hide);
    RUN(action_with_mismatched_target_refused);
    RUN(author_posts_found_after_restart);
    RUN(aborted_transaction_keeps_author_posts);
    RUN(lookup_filters_built_after_restart);
    RUN(config_uri_lookups_follow_config_changes);
    RUN(retention_sweeps_irregular_and_late_posts);
    return TEST_REPORT();
}
