/*
** tests/tools/gen_stream — writes a synthetic Jetstream stream (JSONL) to
** stdout, modelled on the real events in shared/testdata/atproto-corpus:
** key order and field shapes as Jetstream v1 prints them, ~80% post creates
** of 20-280 characters (some Japanese, some emoji, replies, external embeds),
** likes/follows/reposts/blocks/profile updates, post updates and deletes,
** ~0.5% posts naming a community (#atr_<8 hex> in the text, the JSON escape
** \u0023, fullwidth ＃, a hashtag facet only, the `tags` array only) and some
** malformed tags (#atr_ with 7 or 9 digits, capitals, no #), net.atrarium.*
** records, identity and account events. time_us grows at --rate events/s
** from --start-us and, as in real output, about one adjacent pair in four
** steps back by up to 33 ms. Deterministic: the same flags give the same
** bytes (no wall clock, no libc rand).
**
**   gen_stream --start-us T [--count N] [--seed S] [--rate R] [--tag-permille P]
**              [--no-candidates] [--stats]
** --no-candidates leaves out everything the lightweight filter passes (for
** "a stream with no candidates still advances the cursor").
*/
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/banned.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static unsigned rn(unsigned n)
{
    return (unsigned)(rnd() % n);
}
static int chance(unsigned per_million)
{
    return rn(1000000) < per_million;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char s32[] = "234567abcdefghijklmnopqrstuvwxyz"; /* TID alphabet */

static void put_did(mdw_buf *b, unsigned user)
{
    uint64_t h = user * 0x9e3779b97f4a7c15ULL + 12345;
    mdw_buf_puts(b, "did:plc:");
    for (int i = 0; i < 24; i++) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        mdw_buf_putc(b, b32[(h >> 59) & 31]);
    }
}

static void put_tid(mdw_buf *b, int64_t us, unsigned clk)
{
    uint64_t v = ((uint64_t)us << 10 | (clk & 1023)) & 0x7fffffffffffffffULL;
    char out[13];
    for (int i = 12; i >= 0; i--) {
        out[i] = s32[v & 31];
        v >>= 5;
    }
    mdw_buf_append(b, out, 13);
}

static void put_cid(mdw_buf *b)
{
    mdw_buf_puts(b, "bafyrei");
    for (int i = 0; i < 52; i++)
        mdw_buf_putc(b, b32[rn(32)]);
}

static void put_time(mdw_buf *b, int64_t us)
{
    char t[40];
    mdw_time_format(us, t, sizeof t);
    mdw_buf_puts(b, t);
}

static const char *words[] = {
    "the",    "a",     "today",   "coffee",  "morning", "bluesky", "cat",      "dog",
    "rain",   "sun",   "music",   "new",     "post",    "thread",  "art",      "drawing",
    "game",   "night", "friends", "weekend", "work",    "really",  "love",     "this",
    "so",     "good",  "what",    "think",   "about",   "just",    "finished", "reading",
    "book",   "walk",  "park",    "photo",   "#art",    "#photo",  "lol",      "🙂",
    "❤️", "🔥",     "garden",  "city",    "train",   "late",    "again",    "why",
};
static const char *jp[] = {"今日は", "雨",         "ですね", "コーヒー", "散歩",
                           "楽しい", "ありがとう", "写真",   "猫",       "😊"};

/* Random text of about target bytes; JSON-safe (no quotes or backslashes). */
static void put_words(mdw_buf *b, unsigned target)
{
    int japanese = chance(150000);
    size_t start = b->len;
    while (b->len - start < target) {
        if (b->len > start)
            mdw_buf_putc(b, ' ');
        mdw_buf_puts(b, japanese ? jp[rn(10)] : words[rn(sizeof words / sizeof words[0])]);
    }
}

static uint32_t ids[8];

typedef enum {
    TAG_NONE,
    TAG_TEXT,
    TAG_ESCAPED,
    TAG_FULLWIDTH,
    TAG_FACET_ONLY,
    TAG_ARRAY_ONLY,
    TAG_MALFORMED
} tag_form;

static void put_post_record(mdw_buf *b, int64_t us, unsigned user, tag_form tag)
{
    char tagtxt[64] = "";
    uint32_t id = ids[rn(8)];
    switch (tag) {
    case TAG_TEXT:
        snprintf(tagtxt, sizeof tagtxt, " #atr_%08x", id);
        break;
    case TAG_ESCAPED:
        snprintf(tagtxt, sizeof tagtxt, " \\u0023atr_%08x", id);
        break;
    case TAG_FULLWIDTH:
        snprintf(tagtxt, sizeof tagtxt, " ＃atr_%08x", id);
        break;
    case TAG_MALFORMED: {
        switch (rn(5)) {
        case 0:
            snprintf(tagtxt, sizeof tagtxt, " #atr_%07x", id & 0xfffffff);
            break;
        case 1:
            snprintf(tagtxt, sizeof tagtxt, " #atr_%08x1", id);
            break;
        case 2:
            snprintf(tagtxt, sizeof tagtxt, " #ATR_%08X", id);
            break;
        case 3:
            snprintf(tagtxt, sizeof tagtxt, " atr_%08x", id);
            break;
        default:
            snprintf(tagtxt, sizeof tagtxt, " #atr_%08xzz", id);
        }
        break;
    }
    default:
        break;
    }
    mdw_buf_puts(b, "{\"$type\":\"app.bsky.feed.post\",\"createdAt\":\"");
    put_time(b, us - (int64_t)rn(3000000));
    mdw_buf_puts(b, "\"");
    if (chance(100000)) {
        mdw_buf_puts(b, ",\"embed\":{\"$type\":\"app.bsky.embed.external\",\"external\":{"
                        "\"description\":\"");
        put_words(b, 20 + rn(60));
        mdw_buf_puts(b, "\",\"title\":\"");
        put_words(b, 10 + rn(40));
        mdw_buf_printf(b, "\",\"uri\":\"https://example.com/%u\"}}", rn(100000));
    }
    size_t text_bytes = 20 + rn(261);
    if (tag == TAG_FACET_ONLY) {
        mdw_buf_printf(b,
                       ",\"facets\":[{\"features\":[{\"$type\":\"app.bsky.richtext.facet#tag\","
                       "\"tag\":\"atr_%08x\"}],\"index\":{\"byteEnd\":4,\"byteStart\":0}}]",
                       id);
    } else if (tag == TAG_TEXT && chance(500000)) {
        mdw_buf_printf(b,
                       ",\"facets\":[{\"features\":[{\"$type\":\"app.bsky.richtext.facet#tag\","
                       "\"tag\":\"atr_%08x\"}],\"index\":{\"byteEnd\":%zu,\"byteStart\":%zu}}]",
                       id, text_bytes + 14, text_bytes + 1);
    }
    mdw_buf_puts(b, chance(150000) ? ",\"langs\":[\"ja\"]" : ",\"langs\":[\"en\"]");
    if (chance(300000)) {
        mdw_buf_puts(b, ",\"reply\":{\"parent\":{\"cid\":\"");
        put_cid(b);
        mdw_buf_puts(b, "\",\"uri\":\"at://");
        put_did(b, rn(5000));
        mdw_buf_puts(b, "/app.bsky.feed.post/");
        put_tid(b, us - (int64_t)rn(100000000), rn(1024));
        mdw_buf_puts(b, "\"},\"root\":{\"cid\":\"");
        put_cid(b);
        mdw_buf_puts(b, "\",\"uri\":\"at://");
        put_did(b, rn(5000));
        mdw_buf_puts(b, "/app.bsky.feed.post/");
        put_tid(b, us - (int64_t)rn(100000000), rn(1024));
        mdw_buf_puts(b, "\"}}");
    }
    if (tag == TAG_ARRAY_ONLY)
        mdw_buf_printf(b, ",\"tags\":[\"atr_%08x\"]", id);
    mdw_buf_puts(b, ",\"text\":\"");
    put_words(b, (unsigned)text_bytes);
    mdw_buf_puts(b, tagtxt);
    mdw_buf_puts(b, "\"}");
    (void)user;
}

static void put_commit_head(mdw_buf *b, int64_t us, unsigned user, const char *op, const char *coll,
                            int64_t rkey_us)
{
    mdw_buf_puts(b, "{\"did\":\"");
    put_did(b, user);
    mdw_buf_printf(b, "\",\"time_us\":%" PRId64 ",\"kind\":\"commit\",\"commit\":{\"rev\":\"", us);
    put_tid(b, us, user);
    mdw_buf_printf(b, "\",\"operation\":\"%s\",\"collection\":\"%s\",\"rkey\":\"", op, coll);
    put_tid(b, rkey_us, user + 7);
    mdw_buf_puts(b, "\"");
}

static void put_commit_tail(mdw_buf *b)
{
    mdw_buf_puts(b, ",\"cid\":\"");
    put_cid(b);
    mdw_buf_puts(b, "\"}}");
}

static void put_subject_record(mdw_buf *b, const char *type, int64_t us)
{
    mdw_buf_printf(b, ",\"record\":{\"$type\":\"%s\",\"createdAt\":\"", type);
    put_time(b, us - (int64_t)rn(2000000));
    mdw_buf_puts(b, "\",\"subject\":");
    if (!strcmp(type, "app.bsky.graph.follow") || !strcmp(type, "app.bsky.graph.block")) {
        mdw_buf_puts(b, "\"");
        put_did(b, rn(5000));
        mdw_buf_puts(b, "\"}");
        return;
    }
    mdw_buf_puts(b, "{\"cid\":\"");
    put_cid(b);
    mdw_buf_puts(b, "\",\"uri\":\"at://");
    put_did(b, rn(5000));
    mdw_buf_puts(b, "/app.bsky.feed.post/");
    put_tid(b, us - (int64_t)rn(1000000000), rn(1024));
    mdw_buf_puts(b, "\"}}");
}

static void put_atrarium(mdw_buf *b, int64_t us, unsigned user)
{
    static const char *colls[] = {"net.atrarium.community.config",
                                  "net.atrarium.community.membership",
                                  "net.atrarium.moderation.action", "net.atrarium.group.config"};
    const char *coll = colls[rn(4)];
    int del = chance(100000);
    put_commit_head(b, us, user, del ? "delete" : "create", coll, us - (int64_t)rn(1000000));
    if (del) {
        mdw_buf_puts(b, "}}");
        return;
    }
    uint32_t id = ids[rn(8)];
    mdw_buf_printf(b, ",\"record\":{\"$type\":\"%s\",\"createdAt\":\"", coll);
    put_time(b, us);
    if (strstr(coll, "config"))
        mdw_buf_printf(b,
                       "\",\"hashtag\":\"#atr_%08x\",\"name\":\"community %08x\","
                       "\"stage\":\"theme\"}",
                       id, id);
    else if (strstr(coll, "membership"))
        mdw_buf_printf(b,
                       "\",\"active\":true,\"community\":\"at://did:plc:owner%08x/"
                       "net.atrarium.community.config/self\",\"role\":\"member\"}",
                       id);
    else
        mdw_buf_puts(b, "\",\"action\":\"hide_post\",\"reason\":\"spam\"}");
    put_commit_tail(b);
}

int main(int argc, char **argv)
{
    int64_t start = 0;
    uint64_t count = 1000, seed = 1, rate = 2000, tag_permille = 5;
    int no_candidates = 0, stats = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-candidates")) {
            no_candidates = 1;
        } else if (!strcmp(a, "--stats")) {
            stats = 1;
        } else if (v && !strcmp(a, "--start-us")) {
            start = strtoll(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--count")) {
            count = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--seed")) {
            seed = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--rate")) {
            rate = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--tag-permille")) {
            tag_permille = strtoull(v, NULL, 10), i++;
        } else {
            fprintf(stderr, "usage: gen_stream --start-us T [--count N] [--seed S] [--rate R] "
                            "[--tag-permille P] [--no-candidates] [--stats]\n");
            return 2;
        }
    }
    if (start <= 0 || rate == 0) {
        fprintf(stderr, "gen_stream: --start-us (unix µs) is required and --rate must be > 0\n");
        return 2;
    }
    rng_state = seed;
    for (int i = 0; i < 8; i++)
        ids[i] = (uint32_t)rnd();
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    uint64_t n_kind[16] = {0};
    int64_t base = start;
    int64_t step = (int64_t)(1000000 / rate);
    if (step < 1)
        step = 1;
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    for (uint64_t n = 0; n < count; n++) {
        base += step / 2 + (int64_t)rn((unsigned)step + 1);
        int64_t us = base;
        if (chance(250000))
            us -= (int64_t)rn(33001);
        unsigned user = rn(5000);
        unsigned r = rn(1000000);
        mdw_buf_reset(&b);
        int kind;
        if (!no_candidates && r < 2000) { /* identity 0.2%, account 0.2% */
            kind = r < 1000 ? 0 : 1;
            mdw_buf_puts(&b, "{\"did\":\"");
            put_did(&b, user);
            mdw_buf_printf(&b, "\",\"time_us\":%" PRId64 ",\"kind\":\"%s\",\"%s\":{", us,
                           kind ? "account" : "identity", kind ? "account" : "identity");
            if (kind)
                mdw_buf_puts(&b, chance(200000) ? "\"active\":false,\"status\":\"deactivated\","
                                                : "\"active\":true,");
            mdw_buf_puts(&b, "\"did\":\"");
            put_did(&b, user);
            if (!kind)
                mdw_buf_printf(&b, "\",\"handle\":\"user%u.bsky.social", user);
            mdw_buf_printf(&b, "\",\"seq\":%" PRIu64 ",\"time\":\"", (uint64_t)30000000000 + n);
            put_time(&b, us - 300000);
            mdw_buf_puts(&b, "\"}}");
        } else if (no_candidates && r < 1000) { /* identity only */
            kind = 0;
            mdw_buf_puts(&b, "{\"did\":\"");
            put_did(&b, user);
            mdw_buf_printf(&b,
                           "\",\"time_us\":%" PRId64 ",\"kind\":\"identity\",\"identity\":{"
                           "\"did\":\"",
                           us);
            put_did(&b, user);
            mdw_buf_printf(&b, "\",\"seq\":%" PRIu64 ",\"time\":\"", (uint64_t)30000000000 + n);
            put_time(&b, us - 300000);
            mdw_buf_puts(&b, "\"}}");
        } else if (!no_candidates && r < 4000) { /* net.atrarium.* 0.2% */
            kind = 2;
            put_atrarium(&b, us, user);
        } else if (!no_candidates && r < 7000) { /* post delete 0.3% */
            kind = 3;
            put_commit_head(&b, us, user, "delete", "app.bsky.feed.post",
                            us - (int64_t)rn(1000000000));
            mdw_buf_puts(&b, "}}");
        } else if (!no_candidates && r < 8000) { /* post update 0.1% */
            kind = 4;
            put_commit_head(&b, us, user, "update", "app.bsky.feed.post",
                            us - (int64_t)rn(1000000000));
            mdw_buf_puts(&b, ",\"record\":");
            put_post_record(&b, us, user, chance(100000) ? TAG_TEXT : TAG_NONE);
            put_commit_tail(&b);
        } else if (r < 808000) { /* post create ~80% */
            tag_form tag = TAG_NONE;
            if (!no_candidates && rn(1000) < tag_permille) {
                static const tag_form forms[] = {TAG_TEXT,       TAG_TEXT,      TAG_TEXT,
                                                 TAG_ESCAPED,    TAG_FULLWIDTH, TAG_FACET_ONLY,
                                                 TAG_ARRAY_ONLY, TAG_MALFORMED};
                tag = forms[rn(8)];
            }
            kind = tag == TAG_NONE ? 5 : 6;
            put_commit_head(&b, us, user, "create", "app.bsky.feed.post", us - (int64_t)rn(2000));
            mdw_buf_puts(&b, ",\"record\":");
            put_post_record(&b, us, user, tag);
            put_commit_tail(&b);
        } else { /* likes, reposts, follows, blocks, profiles */
            static const char *types[] = {"app.bsky.feed.like",    "app.bsky.feed.like",
                                          "app.bsky.feed.like",    "app.bsky.feed.repost",
                                          "app.bsky.graph.follow", "app.bsky.graph.block"};
            kind = 7;
            const char *t = types[rn(6)];
            put_commit_head(&b, us, user, "create", t, us - (int64_t)rn(2000));
            put_subject_record(&b, t, us);
            put_commit_tail(&b);
        }
        n_kind[kind]++;
        mdw_buf_putc(&b, '\n');
        fwrite(b.data, 1, b.len, stdout);
    }
    mdw_buf_release(&b);
    if (fflush(stdout) != 0) {
        perror("gen_stream: write");
        return 1;
    }
    if (stats)
        fprintf(stderr,
                "identity=%" PRIu64 " account=%" PRIu64 " atrarium=%" PRIu64 " delete=%" PRIu64
                " update=%" PRIu64 " post=%" PRIu64 " tagged=%" PRIu64 " other=%" PRIu64 "\n",
                n_kind[0], n_kind[1], n_kind[2], n_kind[3], n_kind[4], n_kind[5], n_kind[6],
                n_kind[7]);
    return 0;
}
