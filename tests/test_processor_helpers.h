/*
** tests/test_processor_helpers.h — building Jetstream-shaped events and
** reading feeds back, for the processor and index unit tests.
**
** Each fixture has a fake clock at NOW and an event clock `t` that advances
** 1 ms per event: revs and record keys are real TIDs of that time, createdAt
** is its RFC 3339 form, time_us is the same instant (honest clients).
*/
#ifndef MDW_TEST_PROCESSOR_HELPERS_H
#define MDW_TEST_PROCESSOR_HELPERS_H

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/mem.h"
#include "index/index.h"
#include "processor/event.h"
#include "processor/rules.h"

#define NOW_US       1795392000000000LL /* 2026-11-23T00:00:00Z */
#define DAY_US       86400000000LL
#define RETENTION_US (7 * DAY_US)

#define OWNER   "did:plc:owner000000000000000000"
#define OWNER2  "did:plc:owner222222222222222222"
#define ALICE   "did:plc:alice000000000000000000"
#define BOB     "did:plc:bob00000000000000000000"
#define CAROL   "did:plc:carol000000000000000000"
#define MALLORY "did:plc:mallory0000000000000000"
#define TAG     "0123abcd"
#define TAG2    "89abcdef"

typedef struct fx {
    mdw_clock clk;
    mdw_index *ix;
    mdw_rules *r;
    int64_t t; /* event time, advances per event */
    char dir[1024];
    int applied, noop, refused, skipped;
    mdw_rule_reason last_why; /* what decided the last event (its name: last_reason) */
    const char *last_reason;
    /* capture mode: fx_run() stores the events instead of applying them */
    int capturing;
    char **cap;
    size_t ncap, capcap;
} fx;

static inline void fx_tid(int64_t us, unsigned clockid, char out[14])
{
    static const char alpha[] = "234567abcdefghijklmnopqrstuvwxyz";
    uint64_t v = ((uint64_t)us << 10) | (clockid & 1023);
    for (int i = 12; i >= 0; i--) {
        out[i] = alpha[v & 31];
        v >>= 5;
    }
    out[13] = '\0';
}

static inline int fx_open(fx *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/index", dir);
    mdw_clock_fake_init(&f->clk, NOW_US);
    f->t = NOW_US - DAY_US;
    mdw_index_opts o = {0};
    o.nosync = 1;
    o.map_bytes = 256u << 20;
    o.clock = &f->clk;
    int rc = mdw_index_open(&f->ix, f->dir, &o);
    if (rc)
        return rc;
    return mdw_rules_new(&f->r, f->ix, &f->clk, RETENTION_US);
}

static inline void fx_close(fx *f)
{
    for (size_t i = 0; i < f->ncap; i++)
        free(f->cap[i]);
    free(f->cap);
    f->cap = NULL;
    f->ncap = f->capcap = 0;
    mdw_rules_free(f->r);
    mdw_index_close(f->ix);
    f->r = NULL;
    f->ix = NULL;
}

/* Closes the rule engine and the index and opens them again (a restart), the clock kept. */
static inline int fx_restart(fx *f)
{
    mdw_rules_free(f->r);
    mdw_index_close(f->ix);
    f->r = NULL;
    f->ix = NULL;
    mdw_index_opts o = {0};
    o.nosync = 1;
    o.map_bytes = 256u << 20;
    o.clock = &f->clk;
    int rc = mdw_index_open(&f->ix, f->dir, &o);
    return rc ? rc : mdw_rules_new(&f->r, f->ix, &f->clk, RETENTION_US);
}

/* Applies one JSON event in its own transaction; returns the outcome (or a negative code). */
static inline int fx_apply_json(fx *f, const char *json)
{
    mdw_event ev;
    char err[256];
    int rc = mdw_event_parse(&ev, json, strlen(json), err, sizeof err);
    if (rc) {
        mdw_event_release(&ev);
        return rc;
    }
    mdw_rules_result res = {0};
    if ((rc = mdw_rules_begin(f->r)) == 0 && (rc = mdw_rules_apply(f->r, &ev, &res)) == 0)
        rc = mdw_rules_commit(f->r, 0);
    else
        mdw_rules_abort(f->r);
    mdw_event_release(&ev);
    if (rc)
        return rc;
    f->last_why = res.why;
    f->last_reason = res.reason;
    switch (res.outcome) {
    case MDW_RULE_APPLIED:
        f->applied++;
        break;
    case MDW_RULE_NOOP:
        f->noop++;
        break;
    case MDW_RULE_REFUSED:
        f->refused++;
        break;
    default:
        f->skipped++;
    }
    return res.outcome;
}

/* Builds a commit event (record owned and freed; NULL for deletes); returns malloc'd JSON. */
static inline char *fx_commit(fx *f, const char *did, const char *coll, const char *rkey,
                              const char *op, cJSON *record)
{
    char rev[14];
    f->t += 1000;
    fx_tid(f->t, 7, rev);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "did", did);
    cJSON_AddNumberToObject(ev, "time_us", (double)f->t);
    cJSON_AddStringToObject(ev, "kind", "commit");
    cJSON *c = cJSON_AddObjectToObject(ev, "commit");
    cJSON_AddStringToObject(c, "rev", rev);
    cJSON_AddStringToObject(c, "operation", op);
    cJSON_AddStringToObject(c, "collection", coll);
    cJSON_AddStringToObject(c, "rkey", rkey);
    if (record) {
        cJSON_AddItemToObject(c, "record", record);
        cJSON_AddStringToObject(c, "cid",
                                "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4");
    }
    char *s = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return s;
}

static inline int fx_run(fx *f, char *json)
{
    if (f->capturing) {
        if (f->ncap == f->capcap) {
            f->capcap = f->capcap ? 2 * f->capcap : 64;
            f->cap = xrealloc(f->cap, f->capcap * sizeof *f->cap);
        }
        f->cap[f->ncap++] = json;
        return MDW_RULE_APPLIED;
    }
    int rc = fx_apply_json(f, json);
    free(json);
    return rc;
}

static inline void fx_iso(int64_t us, char out[40])
{
    mdw_time_format(us, out, 40);
}

/* A fresh TID record key at the event clock. */
static inline void fx_rkey(fx *f, char out[14])
{
    fx_tid(f->t + 1000, 3, out);
}

static inline cJSON *fx_post_record(fx *f, const char *text)
{
    char iso[40];
    fx_iso(f->t + 1000, iso);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "app.bsky.feed.post");
    cJSON_AddStringToObject(r, "text", text);
    cJSON_AddStringToObject(r, "createdAt", iso);
    return r;
}

/* Creates a post; its URI goes to uri_out (may be NULL). Returns the outcome. */
static inline int fx_post(fx *f, const char *did, const char *text, char *uri_out, size_t n)
{
    char rkey[14];
    fx_rkey(f, rkey);
    if (uri_out)
        snprintf(uri_out, n, "at://%s/app.bsky.feed.post/%s", did, rkey);
    return fx_run(f,
                  fx_commit(f, did, "app.bsky.feed.post", rkey, "create", fx_post_record(f, text)));
}

static inline cJSON *fx_config_record(fx *f, const char *hashtag, const char *name)
{
    char iso[40];
    fx_iso(f->t + 1000, iso);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "net.atrarium.community.config");
    cJSON_AddStringToObject(r, "name", name);
    cJSON_AddStringToObject(r, "hashtag", hashtag);
    cJSON_AddStringToObject(r, "stage", "theme");
    cJSON_AddStringToObject(r, "createdAt", iso);
    return r;
}

/* Creates a community config; its URI into curi. */
static inline int fx_config(fx *f, const char *owner, const char *tag, char *curi, size_t n,
                            const char *mods[], const char *blocks[])
{
    char rkey[14], ht[16];
    fx_rkey(f, rkey);
    snprintf(curi, n, "at://%s/net.atrarium.community.config/%s", owner, rkey);
    snprintf(ht, sizeof ht, "#atr_%s", tag);
    cJSON *rec = fx_config_record(f, ht, "Test community");
    if (mods) {
        cJSON *a = cJSON_AddArrayToObject(rec, "moderators");
        for (int i = 0; mods[i]; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(mods[i]));
    }
    if (blocks) {
        cJSON *a = cJSON_AddArrayToObject(rec, "blocklist");
        for (int i = 0; blocks[i]; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(blocks[i]));
    }
    return fx_run(f, fx_commit(f, owner, "net.atrarium.community.config", rkey, "create", rec));
}

static inline int fx_join(fx *f, const char *did, const char *curi, const char *role, int active,
                          char *muri, size_t n)
{
    char rkey[14], iso[40];
    fx_rkey(f, rkey);
    fx_iso(f->t + 1000, iso);
    if (muri)
        snprintf(muri, n, "at://%s/net.atrarium.community.membership/%s", did, rkey);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "net.atrarium.community.membership");
    cJSON_AddStringToObject(r, "community", curi);
    cJSON_AddStringToObject(r, "role", role);
    cJSON_AddStringToObject(r, "joinedAt", iso);
    if (active >= 0)
        cJSON_AddBoolToObject(r, "active", active);
    return fx_run(f, fx_commit(f, did, "net.atrarium.community.membership", rkey, "create", r));
}

/* A moderation action by `by`; target is a post URI (hide/unhide) or a DID (block/unblock). */
static inline int fx_mod(fx *f, const char *by, const char *curi, const char *action,
                         const char *target, char *auri, size_t n)
{
    char rkey[14], iso[40];
    fx_rkey(f, rkey);
    fx_iso(f->t + 1000, iso);
    if (auri)
        snprintf(auri, n, "at://%s/net.atrarium.moderation.action/%s", by, rkey);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$type", "net.atrarium.moderation.action");
    cJSON_AddStringToObject(r, "action", action);
    cJSON *t = cJSON_AddObjectToObject(r, "target");
    if (!strncmp(target, "at://", 5)) {
        cJSON_AddStringToObject(t, "$type", "net.atrarium.moderation.action#postTarget");
        cJSON_AddStringToObject(t, "uri", target);
        cJSON_AddStringToObject(t, "cid",
                                "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4");
    } else {
        cJSON_AddStringToObject(t, "$type", "net.atrarium.moderation.action#userTarget");
        cJSON_AddStringToObject(t, "did", target);
    }
    cJSON_AddStringToObject(r, "community", curi);
    cJSON_AddStringToObject(r, "createdAt", iso);
    return fx_run(f, fx_commit(f, by, "net.atrarium.moderation.action", rkey, "create", r));
}

/* Deletes the record at an at:// URI (did/collection/rkey taken from it). */
static inline int fx_delete(fx *f, const char *uri)
{
    char did[256], coll[256], rkey[600];
    if (sscanf(uri, "at://%255[^/]/%255[^/]/%599s", did, coll, rkey) != 3)
        return -1;
    return fx_run(f, fx_commit(f, did, coll, rkey, "delete", NULL));
}

static inline char *fx_account_json(fx *f, const char *did, int active, const char *status,
                                    int64_t seq)
{
    f->t += 1000;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "did", did);
    cJSON_AddNumberToObject(ev, "time_us", (double)f->t);
    cJSON_AddStringToObject(ev, "kind", "account");
    cJSON *a = cJSON_AddObjectToObject(ev, "account");
    cJSON_AddBoolToObject(a, "active", active);
    cJSON_AddStringToObject(a, "did", did);
    cJSON_AddNumberToObject(a, "seq", (double)seq);
    if (status)
        cJSON_AddStringToObject(a, "status", status);
    char *s = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return s;
}

/*
** The whole feed of (owner, tag) as "uri uri ..." (newest first), read page
** by page with `limit`; "UNKNOWN" when the community does not exist. Caller frees.
*/
static inline char *fx_feed_paged(fx *f, const char *owner, const char *tag, size_t limit)
{
    mdw_buf b = MDW_BUF_INIT(1 << 20);
    mdw_buf_puts(&b, "");
    char cursor[MDW_INDEX_CURSOR_MAX] = "";
    for (int pages = 0; pages < 1000; pages++) {
        mdw_index_page pg;
        int rc = mdw_index_feed_page(f->ix, owner, tag, cursor, limit, &pg);
        if (rc == MDW_ENOTFOUND) {
            mdw_buf_reset(&b);
            mdw_buf_puts(&b, "UNKNOWN");
            break;
        }
        if (rc) {
            mdw_buf_reset(&b);
            mdw_buf_printf(&b, "ERROR %d", rc);
            break;
        }
        for (size_t i = 0; i < pg.n; i++)
            mdw_buf_printf(&b, "%s%s", b.len ? " " : "", pg.uris[i]);
        snprintf(cursor, sizeof cursor, "%s", pg.cursor);
        mdw_index_page_release(&pg);
        if (!cursor[0])
            break;
    }
    return mdw_buf_detach(&b, NULL);
}

static inline char *fx_feed(fx *f, const char *owner, const char *tag)
{
    return fx_feed_paged(f, owner, tag, 100);
}

/* Dump of the whole index (records included) as a malloc'd string. */
static inline char *fx_dump(mdw_index *ix, unsigned flags)
{
    char *p = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&p, &n);
    int rc = mdw_index_dump(ix, m, NULL, NULL, flags);
    fclose(m);
    if (rc) {
        free(p);
        return xasprintf("DUMP ERROR %d", rc);
    }
    return p;
}

#endif
