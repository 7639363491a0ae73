/*
** tests/test_feedgen_fake.h — an in-memory feed source for the HTTP-layer
** unit tests of feedgen (parameters, errors, shapes). It is NOT the index:
** paging and visibility are tested against the real index by
** tests/integration/feedgen_*.sh. One community, FAKE_OWNER / FAKE_ID, with
** FAKE_POSTS posts; the cursor is the decimal position of the next post.
*/
#ifndef MDW_TEST_FEEDGEN_FAKE_H
#define MDW_TEST_FEEDGEN_FAKE_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/mem.h"
#include "feedgen/feedgen.h"

#define FAKE_OWNER "did:plc:fakeowner0000000000000"
#define FAKE_ID    "0a1b2c3d"
#define FAKE_POSTS 120

typedef struct fake_source {
    _Atomic int delay_ms; /* feed_walk sleeps this long (drain tests) */
    _Atomic int fail;     /* feed_walk returns this code when non-zero */
    _Atomic int calls;    /* feed_walk calls */
    char last_cursor[64]; /* cursor of the last call ("" for none) */
    size_t last_limit;
    const char *first_uri; /* when set, replaces the first post's URI (escaping tests) */
} fake_source;

/* The URI of post i (0 = newest) of the fake community. */
#define FAKE_URI_MAX 96
static inline const char *fake_uri(long i, char out[FAKE_URI_MAX])
{
    snprintf(out, FAKE_URI_MAX, "at://did:plc:author%03ld/app.bsky.feed.post/3k%06ld", i % 7,
             FAKE_POSTS - i);
    return out;
}

static int fake_feed_walk(void *ctx, const char *owner, const char *id, const char *cursor,
                          size_t limit, mdw_index_post_fn fn, void *fn_ctx, mdw_index_page *page)
{
    fake_source *f = ctx;
    f->calls++;
    snprintf(f->last_cursor, sizeof f->last_cursor, "%s", cursor ? cursor : "");
    f->last_limit = limit;
    memset(page, 0, sizeof *page);
    if (f->delay_ms)
        usleep((useconds_t)f->delay_ms * 1000);
    if (f->fail)
        return f->fail;
    if (strcmp(owner, FAKE_OWNER) != 0 || strcmp(id, FAKE_ID) != 0)
        return MDW_ENOTFOUND;
    long start = 0;
    if (cursor && *cursor) {
        char *end;
        start = strtol(cursor, &end, 10);
        if (*end || start < 0 || start > FAKE_POSTS)
            return MDW_EMALFORMED;
    }
    long i = start;
    for (; i < FAKE_POSTS && page->n < limit; i++) {
        char uri[FAKE_URI_MAX];
        const char *u = fake_uri(i, uri);
        if (f->first_uri && page->n == 0)
            u = f->first_uri;
        page->n++;
        page->scanned++;
        int rc = fn(fn_ctx, u, strlen(u));
        if (rc)
            return rc;
    }
    if (i < FAKE_POSTS)
        snprintf(page->cursor, sizeof page->cursor, "%ld", i);
    return 0;
}

static int fake_communities(void *ctx, mdw_index_community_fn fn, void *fctx)
{
    fake_source *f = ctx;
    if (f->fail)
        return f->fail;
    int rc = fn(fctx, FAKE_OWNER, FAKE_ID);
    if (!rc)
        rc = fn(fctx, "did:web:example.com", "ffffffff");
    return rc < 0 ? rc : 0;
}

static inline mdw_feed_source fake_source_make(fake_source *f)
{
    mdw_feed_source s = {f, fake_feed_walk, fake_communities};
    return s;
}

#endif
