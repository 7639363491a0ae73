/*
** feedgen/xrpc_source.c — the production feed source: the index (read-only
** LMDB transactions inside index/), and mdw_feedgen_start() which serves it.
** Also exposes the index's sizes at /metrics (gauges read when scraped).
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/mem.h"
#include "feedgen/auth.h"
#include "feedgen/feedgen.h"
#include "feedgen/xrpc.h"
#include "index/index.h"
#include "common/banned.h"

static int ix_feed_walk(void *ctx, const char *owner_did, const char *hashtag_id,
                        const char *cursor, size_t limit, mdw_index_post_fn fn, void *fn_ctx,
                        mdw_index_page *page)
{
    return mdw_index_feed_walk(ctx, owner_did, hashtag_id, cursor, limit, fn, fn_ctx, page);
}

static int ix_communities(void *ctx, mdw_index_community_fn fn, void *fn_ctx)
{
    return mdw_index_communities(ctx, fn, fn_ctx);
}

void mdw_feedgen_source_index(mdw_feed_source *src, mdw_index *ix)
{
    src->ctx = ix;
    src->feed_walk = ix_feed_walk;
    src->communities = ix_communities;
}

/*
** Index size gauges. The registry keeps pointers forever (no unregister), so
** the gauges read the index through this slot, cleared when the server that
** set it stops; a scrape then reads 0 instead of a closed index.
*/
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static mdw_index *slot_ix;

enum {
    G_COMMUNITIES,
    G_MEMBERS,
    G_POSTS,
    G_MODERATION,
    G_RECORDS,
    G_TOMBSTONES,
    G_SEQ,
    G_BYTES,
    G_MAP,
    G_N
};
static const struct {
    const char *name, *help;
} gauge_def[G_N] = {
    {"meadow_index_communities", "open communities in the index"},
    {"meadow_index_members", "community memberships in effect"},
    {"meadow_index_posts", "tagged posts kept (all communities, visible or not)"},
    {"meadow_index_moderation_actions", "moderation action records"},
    {"meadow_index_records", "record revisions tracked"},
    {"meadow_index_tombstones", "deleted records remembered until retention"},
    {"meadow_index_last_applied_seq", "last queue seq applied to the index"},
    {"meadow_index_bytes_used", "bytes of the LMDB map in use"},
    {"meadow_index_map_bytes", "LMDB map size"},
};
static mdw_gauge gauges[G_N];
static int gauge_which[G_N];

static double index_gauge(void *ctx)
{
    int which = *(const int *)ctx;
    mdw_index_stats st;
    memset(&st, 0, sizeof st);
    pthread_mutex_lock(&slot_mu);
    int rc = slot_ix ? mdw_index_stats_get(slot_ix, &st) : -1;
    pthread_mutex_unlock(&slot_mu);
    if (rc)
        return 0;
    switch (which) {
    case G_COMMUNITIES:
        return (double)st.communities;
    case G_MEMBERS:
        return (double)st.members;
    case G_POSTS:
        return (double)st.posts;
    case G_MODERATION:
        return (double)st.moderation;
    case G_RECORDS:
        return (double)st.records;
    case G_TOMBSTONES:
        return (double)st.tombstones;
    case G_SEQ:
        return (double)st.last_applied_seq;
    case G_BYTES:
        return (double)st.bytes_used;
    default:
        return (double)st.map_bytes;
    }
}

static void index_gauges_set(mdw_index *ix)
{
    pthread_mutex_lock(&slot_mu);
    slot_ix = ix;
    pthread_mutex_unlock(&slot_mu);
    for (int i = 0; i < G_N; i++) {
        gauge_which[i] = i;
        gauges[i].name = gauge_def[i].name;
        gauges[i].help = gauge_def[i].help;
        gauges[i].fn = index_gauge;
        gauges[i].ctx = &gauge_which[i];
        mdw_gauge_register(&gauges[i]); /* idempotent */
    }
}

static void index_gauges_clear(const void *ix)
{
    pthread_mutex_lock(&slot_mu);
    if (slot_ix == ix)
        slot_ix = NULL;
    pthread_mutex_unlock(&slot_mu);
}

/* What the production server owns beside the index: freed when it stops. */
typedef struct start_state {
    mdw_index *ix;
    mdw_auth *auth; /* service auth (feedgen/auth.h), NULL when auth = off */
} start_state;

static void start_state_stop(const void *arg)
{
    start_state *st = (start_state *)arg;
    index_gauges_clear(st->ix);
    mdw_auth_free(st->auth); /* the HTTP threads have ended: no caller left */
    free(st);
}

int mdw_feedgen_start(mdw_feedgen **out, const mdw_config *cfg, mdw_index *ix, mdw_clock *clock)
{
    mdw_feedgen_opts o;
    memset(&o, 0, sizeof o);
    o.cfg = cfg;
    o.clock = clock;
    o.port_override = -1;
    mdw_feedgen_source_index(&o.source, ix);
    mdw_auth *auth = NULL;
    if (strcmp(cfg->auth, "off") != 0) {
        int rc = mdw_auth_new_from_config(&auth, cfg, clock);
        if (rc)
            return rc;
        o.auth = mdw_auth_feedgen_hook;
        o.auth_ctx = auth;
    }
    int rc = mdw_feedgen_start_opts(out, &o);
    if (rc) {
        mdw_auth_free(auth);
        return rc;
    }
    index_gauges_set(ix);
    start_state *st = xcalloc(1, sizeof *st);
    st->ix = ix;
    st->auth = auth;
    mdw_feedgen__on_stop(*out, start_state_stop, st);
    return 0;
}
