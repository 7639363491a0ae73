/*
** tests/tools/pipeline_gen — weaves community life into a Jetstream stream,
** for the whole-pipeline tests (tests/integration/pipeline_kill.sh).
**
**   gen_stream ... | pipeline_gen [--every K] [--seed S] [--communities C]
**                    [--members M] [--summary FILE] > stream.jsonl
**
** Copies the input (JSONL, e.g. gen_stream's noise) and after every K input
** lines inserts one event of C communities (owners did:plc:pipeowner…, tags
** 7e570000 + i) with M would-be members: configs and most memberships first,
** then tagged posts by members, owners and non-members (some with two
** community tags), late joins, hides and unhides by owners, blocks and
** unblocks, post deletes, edits dropping the tag, memberships set inactive,
** account deactivation and reactivation. Inserted events are stamped after
** the largest time_us read so far (so revs, TIDs of time_us, grow per
** repository, and "near now" follows the input). The last line is a
** sentinel post by owner 0 in community 0: once a reader sees it, every
** earlier event has been applied (queue and processor keep stream order).
**
** --summary FILE writes "feed <owner DID> <tag>" per community and
** "sentinel <post URI>". Deterministic: same input and flags, same bytes.
*/
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/banned.h"

#define MAX_COMM    16
#define MAX_MEMBERS 1000
#define MAX_POSTS   100000
#define CID         "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4"

static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static unsigned rn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void tid(int64_t us, unsigned clk, char out[14])
{
    static const char a[] = "234567abcdefghijklmnopqrstuvwxyz";
    uint64_t v = ((uint64_t)us << 10 | (clk & 1023)) & 0x7fffffffffffffffULL;
    for (int i = 12; i >= 0; i--) {
        out[i] = a[v & 31];
        v >>= 5;
    }
    out[13] = '\0';
}

typedef struct post {
    char did[64];
    char rkey[14];
    int comm;
} post;

static int ncomm = 3, nmem = 30;
static char owners[MAX_COMM][64], config_uri[MAX_COMM][120];
static char members[MAX_MEMBERS][64];
static char mship[MAX_MEMBERS][MAX_COMM][120]; /* membership URI, "" = not joined */
static post *posts;
static size_t nposts;
static int64_t ev_us;       /* the stamp of the last inserted event */
static unsigned long seqno; /* account seq */

static void stamp(int64_t seen)
{
    ev_us = seen > ev_us ? seen : ev_us + 1;
}

static void commit(const char *did, const char *coll, const char *op, const char *rkey,
                   const char *record)
{
    char rev[14];
    tid(ev_us, 7, rev);
    printf("{\"did\":\"%s\",\"time_us\":%" PRId64
           ",\"kind\":\"commit\",\"commit\":{\"rev\":\"%s\",\"operation\":\"%s\","
           "\"collection\":\"%s\",\"rkey\":\"%s\"",
           did, ev_us, rev, op, coll, rkey);
    if (record)
        printf(",\"record\":%s,\"cid\":\"" CID "\"", record);
    printf("}}\n");
}

static void rkey_now(char rk[14])
{
    tid(ev_us, 3, rk);
}

static void config(int c)
{
    char rk[14], iso[40], rec[512];
    rkey_now(rk);
    mdw_time_format(ev_us, iso, sizeof iso);
    snprintf(rec, sizeof rec,
             "{\"$type\":\"net.atrarium.community.config\",\"name\":\"pipeline %d\","
             "\"hashtag\":\"#atr_%08x\",\"stage\":\"community\",\"createdAt\":\"%s\"}",
             c, 0x7e570000u + (unsigned)c, iso);
    commit(owners[c], "net.atrarium.community.config", "create", rk, rec);
    snprintf(config_uri[c], sizeof config_uri[c], "at://%s/net.atrarium.community.config/%s",
             owners[c], rk);
}

static void join(int m, int c, int active, const char *rkey)
{
    char rk[14], iso[40], rec[512];
    if (rkey)
        memcpy(rk, rkey, 14);
    else
        rkey_now(rk);
    mdw_time_format(ev_us, iso, sizeof iso);
    snprintf(rec, sizeof rec,
             "{\"$type\":\"net.atrarium.community.membership\",\"community\":\"%s\","
             "\"role\":\"member\",\"joinedAt\":\"%s\",\"active\":%s}",
             config_uri[c], iso, active ? "true" : "false");
    commit(members[m], "net.atrarium.community.membership", rkey ? "update" : "create", rk, rec);
    if (!rkey)
        snprintf(mship[m][c], sizeof mship[m][c], "at://%s/net.atrarium.community.membership/%s",
                 members[m], rk);
}

static void new_post(const char *did, int c, int two)
{
    char rk[14], iso[40], rec[512];
    rkey_now(rk);
    mdw_time_format(ev_us, iso, sizeof iso);
    char extra[32] = "";
    if (two)
        snprintf(extra, sizeof extra, " and #atr_%08x", 0x7e570000u + (unsigned)((c + 1) % ncomm));
    snprintf(rec, sizeof rec,
             "{\"$type\":\"app.bsky.feed.post\",\"text\":\"post %zu in #atr_%08x%s\","
             "\"createdAt\":\"%s\"}",
             nposts, 0x7e570000u + (unsigned)c, extra, iso);
    commit(did, "app.bsky.feed.post", "create", rk, rec);
    if (nposts < MAX_POSTS) {
        post *p = &posts[nposts++];
        snprintf(p->did, sizeof p->did, "%s", did);
        memcpy(p->rkey, rk, 14);
        p->comm = c;
    }
}

static void modaction(int c, const char *action, const char *target_json)
{
    char rk[14], iso[40], rec[1024];
    rkey_now(rk);
    mdw_time_format(ev_us, iso, sizeof iso);
    snprintf(rec, sizeof rec,
             "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"%s\",\"target\":%s,"
             "\"community\":\"%s\",\"createdAt\":\"%s\"}",
             action, target_json, config_uri[c], iso);
    commit(owners[c], "net.atrarium.moderation.action", "create", rk, rec);
}

static void one_event(void)
{
    unsigned r = rn(100);
    int c = (int)rn((unsigned)ncomm), m = (int)rn((unsigned)nmem);
    char buf[512];
    if (r < 60 || nposts == 0) { /* a tagged post: mostly members, some owners and non-members */
        unsigned who = rn(10);
        if (who == 0)
            new_post(owners[c], c, 0);
        else if (who == 1)
            snprintf(buf, sizeof buf, "did:plc:pipestranger%04ux", rn(50)), new_post(buf, c, 0);
        else
            new_post(members[m], c, rn(8) == 0);
        return;
    }
    const post *p = &posts[rn((unsigned)nposts)];
    if (r < 68) {
        snprintf(buf, sizeof buf,
                 "{\"$type\":\"net.atrarium.moderation.action#postTarget\","
                 "\"uri\":\"at://%s/app.bsky.feed.post/%s\",\"cid\":\"" CID "\"}",
                 p->did, p->rkey);
        modaction(p->comm, r < 64 ? "hide_post" : "unhide_post", buf);
    } else if (r < 72) {
        commit(p->did, "app.bsky.feed.post", "delete", p->rkey, NULL);
    } else if (r < 76) {
        char iso[40], rec[256];
        mdw_time_format(ev_us, iso, sizeof iso);
        snprintf(rec, sizeof rec,
                 "{\"$type\":\"app.bsky.feed.post\",\"text\":\"edited, no tag\","
                 "\"createdAt\":\"%s\"}",
                 iso);
        commit(p->did, "app.bsky.feed.post", "update", p->rkey, rec);
    } else if (r < 82) {
        snprintf(buf, sizeof buf,
                 "{\"$type\":\"net.atrarium.moderation.action#userTarget\",\"did\":\"%s\"}",
                 members[m]);
        modaction(c, r < 80 ? "block_user" : "unblock_user", buf);
    } else if (r < 92) {
        if (!mship[m][c][0])
            join(m, c, 1, NULL);
        else
            new_post(members[m], c, 0);
    } else if (r < 95) {
        if (mship[m][c][0])
            join(m, c, (int)rn(2), strrchr(mship[m][c], '/') + 1);
        else
            new_post(members[m], c, 0);
    } else {
        char iso[40];
        mdw_time_format(ev_us, iso, sizeof iso);
        int active = (int)rn(2);
        printf("{\"did\":\"%s\",\"time_us\":%" PRId64
               ",\"kind\":\"account\",\"account\":{\"active\":%s,\"did\":\"%s\",\"seq\":%lu%s,"
               "\"time\":\"%s\"}}\n",
               members[m], ev_us, active ? "true" : "false", members[m], ++seqno,
               active ? "" : ",\"status\":\"deactivated\"", iso);
    }
}

static int64_t line_time_us(const char *l)
{
    const char *p = strstr(l, "\"time_us\":");
    return p ? strtoll(p + 10, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
    long every = 15;
    const char *summary = NULL;
    rng = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: pipeline_gen [--every K] [--seed S] [--communities C] "
                            "[--members M] [--summary FILE] < in > out\n");
            return 2;
        }
        if (!strcmp(a, "--every"))
            every = strtol(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            rng = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--communities"))
            ncomm = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--members"))
            nmem = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--summary"))
            summary = v;
        else {
            fprintf(stderr, "pipeline_gen: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (every < 1 || ncomm < 2 || ncomm > MAX_COMM || nmem < 1 || nmem > MAX_MEMBERS) {
        fprintf(stderr, "pipeline_gen: --every >= 1, --communities 2..%d, --members 1..%d\n",
                MAX_COMM, MAX_MEMBERS);
        return 2;
    }
    posts = xcalloc(MAX_POSTS, sizeof *posts);
    for (int c = 0; c < ncomm; c++)
        snprintf(owners[c], sizeof owners[c], "did:plc:pipeowner%02dxxxxxxxxxxxxx", c);
    for (int m = 0; m < nmem; m++)
        snprintf(members[m], sizeof members[m], "did:plc:pipemember%04dxxxxxxxxxx", m);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lines = 0;
    int started = 0;
    int64_t seen = 0;
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        int64_t t = line_time_us(line);
        if (t > seen)
            seen = t;
        fwrite(line, 1, (size_t)n, stdout);
        if (n && line[n - 1] != '\n')
            putchar('\n');
        if (!started && seen > 0) { /* communities and two thirds of the memberships first */
            started = 1;
            for (int c = 0; c < ncomm; c++)
                stamp(seen), config(c);
            for (int m = 0; m < nmem; m++)
                if (m % 3 != 2)
                    stamp(seen), join(m, m % ncomm, 1, NULL);
        }
        if (started && ++lines % every == 0)
            stamp(seen), one_event();
    }
    free(line);
    if (!started) {
        fprintf(stderr, "pipeline_gen: no input line with a time_us\n");
        return 1;
    }
    /* the sentinel: last line, newest of all */
    stamp(seen + 1000);
    size_t sent_idx = nposts;
    new_post(owners[0], 0, 0);
    if (fflush(stdout) != 0) {
        perror("pipeline_gen: write");
        return 1;
    }
    if (summary) {
        FILE *f = fopen(summary, "w");
        if (!f) {
            perror(summary);
            return 1;
        }
        for (int c = 0; c < ncomm; c++)
            fprintf(f, "feed %s %08x\n", owners[c], 0x7e570000u + (unsigned)c);
        fprintf(f, "sentinel at://%s/app.bsky.feed.post/%s\n", posts[sent_idx].did,
                posts[sent_idx].rkey);
        fprintf(f, "posts %zu\n", nposts);
        fclose(f);
    }
    free(posts);
    return 0;
}
