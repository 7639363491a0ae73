/*
** tests/tools/feedgen_fill.c — fills an index with one synthetic community
** for feedgen's integration tests and benchmark, through the processor's
** real write path (Jetstream-shaped JSON events -> mdw_event_parse ->
** mdw_rules_apply), and writes the feed it expects, computed independently:
** the visible posts' URIs, newest first.
**
**   feedgen_fill DIR --owner DID --id HEX [--posts N] [--members N]
**                [--newest-us T] [--step-ms S] [--hide-every K]
**                [--outsider-every K] [--block-every K] [--expect FILE]
**                [--stream N --stream-ms MS --stream-out FILE] [--span N]
**
** Post i (0 = newest) is dated newest - i*step (createdAt, TID rkey), so its
** sort key is that time; authors rotate over the owner and the members.
** --outsider-every: every K-th post is by a non-member (never listed).
** --hide-every: the owner hides every K-th post (never listed).
** --block-every: every K-th member is blocked by the owner (their posts never listed).
** --stream: after the fill, N more visible posts, one transaction each every
** MS ms, alternately newer than everything and in between existing posts;
** their URIs go to --stream-out. Prints "filled N events" on stdout.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "index/index.h"
#include "processor/event.h"
#include "processor/rules.h"
#include "common/banned.h"

static const char b32[] = "234567abcdefghijklmnopqrstuvwxyz";

/* A TID: 53-bit µs timestamp and 10-bit clock id, base32-sortable, 13 chars. */
static void tid(int64_t us, unsigned clock_id, char out[14])
{
    uint64_t v = ((uint64_t)us << 10) | (clock_id & 1023u);
    for (int i = 12; i >= 0; i--) {
        out[i] = b32[v & 31];
        v >>= 5;
    }
    out[13] = '\0';
}

typedef struct fill {
    mdw_rules *rules;
    int64_t rev_us; /* revs: one global increasing TID counter */
    uint64_t applied, refused;
    size_t in_txn;
} fill;

static int apply_json(fill *f, const char *json)
{
    mdw_event ev;
    char err[256];
    int rc = mdw_event_parse(&ev, json, strlen(json), err, sizeof err);
    if (rc) {
        fprintf(stderr, "feedgen_fill: bad event (%s): %s\n", err, json);
        return rc;
    }
    mdw_rules_result res;
    rc = mdw_rules_apply(f->rules, &ev, &res);
    mdw_event_release(&ev);
    if (rc) {
        fprintf(stderr, "feedgen_fill: apply failed: %s\n", mdw_strerror(rc));
        return rc;
    }
    if (res.outcome == MDW_RULE_REFUSED || res.outcome == MDW_RULE_SKIPPED) {
        fprintf(stderr, "feedgen_fill: event not applied (%s): %s\n", res.reason, json);
        f->refused++;
        return MDW_EINVALID;
    }
    f->applied++;
    return 0;
}

static void iso(int64_t us, char out[40])
{
    mdw_time_format(us, out, 40);
}

/* Commits every 1000 events so a reader sees progress and txns stay small. */
static int maybe_commit(fill *f, int force)
{
    if (++f->in_txn < 1000 && !force)
        return 0;
    f->in_txn = 0;
    int rc = mdw_rules_commit(f->rules, 0);
    if (!rc)
        rc = mdw_rules_begin(f->rules);
    return rc;
}

static int commit_event(fill *f, const char *did, const char *collection, const char *rkey,
                        const char *record_json, int64_t now_us)
{
    char rev[14];
    tid(f->rev_us++, 1, rev);
    char *json =
        xasprintf("{\"did\":\"%s\",\"time_us\":%" PRId64
                  ",\"kind\":\"commit\",\"commit\":{\"rev\":\"%s\",\"operation\":"
                  "\"create\",\"collection\":\"%s\",\"rkey\":\"%s\",\"record\":%s,"
                  "\"cid\":\"bafyreicl7rzkxdrm4zz2ehbx52kuk3mvfow6p3gzfys72r5grvskxoswy4\"}}",
                  did, now_us, rev, collection, rkey, record_json);
    int rc = apply_json(f, json);
    free(json);
    return rc;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static int64_t arg_int(int argc, char **argv, const char *name, int64_t def)
{
    const char *s = arg_str(argc, argv, name, NULL);
    return s ? strtoll(s, NULL, 10) : def;
}

static int post(fill *f, const char *author, const char *id, int64_t t_us, unsigned clock_id,
                int64_t now_us, char *uri_out, size_t cap)
{
    char rkey[14], when[40];
    tid(t_us, clock_id, rkey);
    iso(t_us, when);
    char *rec = xasprintf("{\"$type\":\"app.bsky.feed.post\",\"createdAt\":\"%s\",\"langs\":"
                          "[\"en\"],\"text\":\"meadow test post #atr_%s\"}",
                          when, id);
    int rc = commit_event(f, author, "app.bsky.feed.post", rkey, rec, now_us);
    free(rec);
    snprintf(uri_out, cap, "at://%s/app.bsky.feed.post/%s", author, rkey);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: feedgen_fill DIR --owner DID --id HEX [options]\n");
        return 2;
    }
    mdw_log_set_level(MDW_LOG_WARN);
    const char *dir = argv[1];
    const char *owner = arg_str(argc, argv, "--owner", "did:plc:feedgenowner00000000000");
    const char *id = arg_str(argc, argv, "--id", "0a1b2c3d");
    int64_t nposts = arg_int(argc, argv, "--posts", 1000);
    /* --span: the community's post count when adding to it (--posts 0 --stream ...) */
    int64_t span = arg_int(argc, argv, "--span", nposts ? nposts : 1000);
    int64_t nmembers = arg_int(argc, argv, "--members", 5);
    int64_t step_us = arg_int(argc, argv, "--step-ms", 1000) * 1000;
    int64_t now_us = mdw_clock_now_us(mdw_clock_real());
    int64_t newest = arg_int(argc, argv, "--newest-us", (now_us - 3600 * 1000000LL) / 1000 * 1000);
    int64_t hide_every = arg_int(argc, argv, "--hide-every", 0);
    int64_t outsider_every = arg_int(argc, argv, "--outsider-every", 0);
    int64_t block_every = arg_int(argc, argv, "--block-every", 0);
    const char *expect_path = arg_str(argc, argv, "--expect", NULL);
    int64_t nstream = arg_int(argc, argv, "--stream", 0);
    int64_t stream_ms = arg_int(argc, argv, "--stream-ms", 10);
    const char *stream_out = arg_str(argc, argv, "--stream-out", NULL);

    /*
    ** TID clock ids from the hashtag id: two communities filled with the same
    ** members and dates must not produce the same post URIs. Even ids for
    ** the fill, odd ones for --stream.
    */
    unsigned clock_fill = (unsigned)(strtoul(id, NULL, 16) % 509) * 2;
    unsigned clock_stream = clock_fill + 1;
    mdw_index *ix = NULL;
    mdw_index_opts io = {(size_t)1 << 32, 0, 1, NULL};
    int rc = mdw_index_open(&ix, dir, &io);
    if (rc) {
        fprintf(stderr, "feedgen_fill: cannot open index %s: %s\n", dir, mdw_strerror(rc));
        return 1;
    }
    fill f = {0};
    f.rev_us = now_us - 7200 * 1000000LL; /* before every post's own TID, after nothing */
    rc = mdw_rules_new(&f.rules, ix, mdw_clock_real(), 7LL * 86400 * 1000000);
    if (!rc)
        rc = mdw_rules_begin(f.rules);
    char when[40], ckey[14], uri[512], config_uri[512];
    FILE *expect = expect_path ? fopen(expect_path, "w") : NULL;
    char **members = xcalloc((size_t)nmembers + 1, sizeof(char *));

    /* the community: config by the owner */
    tid(newest - (span + 10) * step_us, 7, ckey);
    iso(newest - (span + 10) * step_us, when);
    snprintf(config_uri, sizeof config_uri, "at://%s/net.atrarium.community.config/%s", owner,
             ckey);
    char *rec =
        xasprintf("{\"$type\":\"net.atrarium.community.config\",\"name\":\"feedgen "
                  "test\",\"hashtag\":\"#atr_%s\",\"stage\":\"theme\",\"createdAt\":\"%s\"}",
                  id, when);
    if (!rc)
        rc = commit_event(&f, owner, "net.atrarium.community.config", ckey, rec, now_us);
    free(rec);

    /* members (the owner is one without a record) */
    members[0] = xstrdup(owner);
    for (int64_t m = 1; m <= nmembers && !rc; m++) {
        members[m] = xasprintf("did:plc:fgmember%016" PRId64, m);
        char mkey[14];
        tid(newest - (span + 5) * step_us + m, 3, mkey);
        rec = xasprintf("{\"$type\":\"net.atrarium.community.membership\",\"community\":\"%s\","
                        "\"role\":\"member\",\"joinedAt\":\"%s\"}",
                        config_uri, when);
        rc = commit_event(&f, members[m], "net.atrarium.community.membership", mkey, rec, now_us);
        free(rec);
        if (!rc && block_every > 0 && m % block_every == 0) {
            char akey[14];
            tid(newest - (span + 4) * step_us + m, 5, akey);
            rec = xasprintf("{\"$type\":\"net.atrarium.moderation.action\",\"action\":"
                            "\"block_user\",\"target\":{\"$type\":\"net.atrarium.moderation."
                            "action#userTarget\",\"did\":\"%s\"},\"community\":\"%s\","
                            "\"createdAt\":\"%s\"}",
                            members[m], config_uri, when);
            rc = commit_event(&f, owner, "net.atrarium.moderation.action", akey, rec, now_us);
            free(rec);
        }
    }

    /* posts, newest first */
    for (int64_t i = 0; i < nposts && !rc; i++) {
        int64_t t = newest - i * step_us;
        int outsider = outsider_every > 0 && i % outsider_every == outsider_every - 1;
        int64_t m = i % (nmembers + 1);
        const char *author = outsider ? "did:plc:fgoutsider00000000000000" : members[m];
        rc = post(&f, author, id, t, clock_fill, now_us, uri, sizeof uri);
        int visible = !outsider && !(block_every > 0 && m > 0 && m % block_every == 0);
        if (!rc && hide_every > 0 && i % hide_every == hide_every - 1) {
            char akey[14];
            tid(t + 1, 9, akey);
            iso(t, when);
            rec = xasprintf("{\"$type\":\"net.atrarium.moderation.action\",\"action\":"
                            "\"hide_post\",\"target\":{\"$type\":\"net.atrarium.moderation."
                            "action#postTarget\",\"uri\":\"%s\"},\"community\":\"%s\","
                            "\"createdAt\":\"%s\"}",
                            uri, config_uri, when);
            rc = commit_event(&f, owner, "net.atrarium.moderation.action", akey, rec, now_us);
            free(rec);
            visible = 0;
        }
        if (!rc && visible && expect)
            fprintf(expect, "%s\n", uri);
        if (!rc)
            rc = maybe_commit(&f, 0);
    }
    if (!rc)
        rc = maybe_commit(&f, 1);
    if (expect)
        fclose(expect);
    if (!rc)
        printf("filled %" PRIu64 " events\n", f.applied);
    fflush(stdout);

    /* live writes while someone reads */
    FILE *so = stream_out ? fopen(stream_out, "w") : NULL;
    for (int64_t k = 0; k < nstream && !rc; k++) {
        int64_t t = (k % 2 == 0) ? newest + (k + 1) * step_us
                                 : newest - ((k * 37) % span) * step_us - step_us / 2;
        const char *author = members[(k + 1) % (nmembers + 1)];
        if (block_every > 0 && ((k + 1) % (nmembers + 1)) % block_every == 0 &&
            (k + 1) % (nmembers + 1) > 0)
            author = owner;
        rc = post(&f, author, id, t, clock_stream, mdw_clock_now_us(mdw_clock_real()), uri,
                  sizeof uri);
        if (!rc)
            rc = maybe_commit(&f, 1);
        if (!rc && so) {
            fprintf(so, "%s\n", uri);
            fflush(so);
        }
        usleep((useconds_t)stream_ms * 1000);
    }
    if (so)
        fclose(so);
    mdw_rules_abort(f.rules); /* the empty transaction maybe_commit reopened, or a failed one */
    mdw_rules_free(f.rules);
    mdw_index_close(ix);
    for (int64_t m = 0; m <= nmembers; m++)
        free(members[m]);
    free(members);
    if (rc) {
        fprintf(stderr, "feedgen_fill: failed: %s\n", mdw_strerror(rc));
        return 1;
    }
    return 0;
}
