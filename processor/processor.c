/*
** processor/processor.c — the queue-driven loop around the rule engine:
** claim, decode, validate, apply in one index transaction, ack.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/stop.h"
#include "index/index_write.h"
#include "processor/event.h"
#include "processor/processor.h"
#include "processor/rules.h"
#include "common/banned.h"

#define WAIT_MAX_MS    1000 /* default bound on a wait: covers appends from another process */
#define BACKOFF_MIN_MS 100  /* first retry after storage refused a batch */
#define BACKOFF_MAX_MS 5000 /* the delay doubles up to this while it keeps refusing */
#define FAILURES_MAX   10   /* other failures in a row before the processor gives up */
#define NSLOTS         4    /* decoded chunks the decoder may hold ahead of the step */
#define CLAIM_CHUNK    512  /* events per claim (and slot) */

struct mdw_processor {
    mdw_processor_cfg cfg;
    mdw_queue *q;
    mdw_index *ix;
    mdw_clock *clock;
    mdw_rules *rules;
    mdw_lexicon *own_lex;
    const mdw_lexicon *lex;
    int lock_fd;
    uint64_t last_seq;
    int64_t next_sweep_us;
    atomic_int stop;
    atomic_int ended; /* the loop returned (mdw_processor_ended) */
    pthread_t thread;
    int has_thread;
    int run_rc;
    int paused;              /* storage refused the last batch: retrying with backoff */
    int64_t paused_since_us; /* monotonic */
    mdw_ratelimit env_rl;    /* the retried failure, logged at most every 10 s */
    mdw_processor_stats st;
    pthread_mutex_t st_mu;
    uint64_t *seqs;
    size_t seqs_cap;
    /*
    ** The decoder (its own thread): claims chunks of events and decodes them
    ** (parse, validate, hashes, hashtags: nothing that reads the index) into
    ** a ring of slots, up to NSLOTS chunks ahead of the step, which applies
    ** them in order. After a full batch it goes on with the next one (the
    ** claims are reads: dropped if the batch does not commit). Under dec_mu:
    ** slot states, head, fill, plan_*.
    */
    struct slot {
        mdw_queue_batch b;
        mdw_json_arena *arena; /* every tree of the chunk; reset by the next decode */
        struct decoded *d;
        size_t dcap;
        size_t asked;
        int rc;    /* the claim's result */
        int state; /* SLOT_IDLE, SLOT_BUSY (being decoded), SLOT_DONE */
    } slots[NSLOTS];
    uint64_t head, fill;    /* next slot to apply, next to decode (ring positions) */
    int64_t wait_us;        /* the step's waits for decoded slots (metric) */
    int plan_on;            /* the decoder claims on (after the last claim was full) */
    uint64_t plan_after;    /* its next claim starts after this seq */
    size_t plan_left;       /* events left in the batch it is claiming for */
    mdw_tagger *dec_tagger; /* the decoder's (PCRE2 match data is per thread) */
    pthread_t dec_thread;
    int dec_has_thread, dec_quit;
    pthread_mutex_t dec_mu;
    pthread_cond_t dec_cv;
};

/* One claimed event after decoding. */
typedef struct decoded {
    uint64_t seq;
    int status;
    mdw_event ev;
    char *why; /* DEC_DEAD, DEC_LEXICON, DEC_APP_RULE: the reason (owned) */
} decoded;

enum { DEC_OK, DEC_DEAD, DEC_LEXICON, DEC_APP_RULE };
enum { SLOT_IDLE, SLOT_BUSY, SLOT_DONE };

static void release_slot(struct slot *sl);
static void *decoder_main(void *arg);

/* ---- metrics ---- */

#define H_EV   "processor events by outcome"
#define H_RULE "processor events by the rule or reason that decided them"

static mdw_counter m_events[] = {
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"applied\"", H_EV),
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"noop\"", H_EV),
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"refused\"", H_EV),
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"skipped\"", H_EV),
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"dead\"", H_EV),
    MDW_COUNTER_INIT("meadow_processor_events_total", "outcome=\"replayed\"", H_EV),
};
enum { EV_APPLIED, EV_NOOP, EV_REFUSED, EV_SKIPPED, EV_DEAD, EV_REPLAYED };

#define RULE(r)                                                                                    \
    {                                                                                              \
        r, MDW_COUNTER_INIT("meadow_processor_rule_total", "rule=\"" r "\"", H_RULE)               \
    }
static struct rule_counter {
    const char *reason;
    mdw_counter c;
} m_rules[] = {
    RULE("post_indexed"),
    RULE("post_untagged"),
    RULE("post_expired"),
    RULE("post_deleted"),
    RULE("config"),
    RULE("config_deleted"),
    RULE("membership"),
    RULE("membership_deleted"),
    RULE("moderation"),
    RULE("moderation_deleted"),
    RULE("account_visible"),
    RULE("account_hidden"),
    RULE("duplicate"),
    RULE("stale_rev"),
    RULE("stale_seq"),
    RULE("tombstoned"),
    RULE("lexicon"),
    RULE("app_rule"),
    RULE("hashtag_change"),
    RULE("hash_collision"),
    RULE("bad_target"),
    RULE("bad_action"),
    RULE("bad_datetime"),
    RULE("bad_community"),
    RULE("unknown_atrarium"),
    RULE("other_collection"),
    RULE("other_kind"),
    RULE("malformed"),
    RULE("other"),
};
#define NRULES (sizeof m_rules / sizeof m_rules[0])

static mdw_counter m_batches =
    MDW_COUNTER_INIT("meadow_processor_batches_total", NULL, "index transactions committed");
static mdw_counter m_swept_posts = MDW_COUNTER_INIT(
    "meadow_processor_swept_total", "what=\"posts\"", "entries removed by the retention sweep");
static mdw_counter m_swept_records = MDW_COUNTER_INIT(
    "meadow_processor_swept_total", "what=\"records\"", "entries removed by the retention sweep");
static mdw_counter m_index_errors = MDW_COUNTER_INIT(
    "meadow_processor_index_errors_total", NULL, "batches aborted by an index failure (nacked)");
static mdw_counter m_storage_waits =
    MDW_COUNTER_INIT("meadow_processor_storage_waits_total", NULL,
                     "batches kept and retried because storage was full or failing (not nacked)");
static mdw_hist m_batch_s =
    MDW_HIST_INIT("meadow_processor_batch_seconds", NULL, "time to process one batch");
static mdw_hist m_decode_wait_s = MDW_HIST_INIT(
    "meadow_processor_decode_wait_seconds", NULL,
    "per batch, time the applying thread waited for decoded events (high: decoding is the "
    "bottleneck)");
static _Atomic uint64_t g_last_seq;
static _Atomic int g_paused;              /* 1 while storage refuses the processor's writes */
static _Atomic uint64_t g_author_entries; /* written by the processor after each commit */

static double gauge_last_seq(void *ctx)
{
    return (double)g_last_seq;
}
static double gauge_paused(void *ctx)
{
    return (double)g_paused;
}
static double gauge_author_entries(void *ctx)
{
    return (double)g_author_entries;
}
static double gauge_collisions(void *ctx)
{
    return (double)mdw_ix_collisions;
}
static mdw_gauge m_last_seq = {"meadow_processor_last_applied_seq",
                               NULL,
                               "last queue seq applied to the index",
                               gauge_last_seq,
                               NULL,
                               NULL,
                               0};
static mdw_gauge m_paused = {"meadow_processor_paused",
                             NULL,
                             "1 while storage (disk or map full, I/O errors) refuses the index or "
                             "queue writes: events kept, retried with backoff",
                             gauge_paused,
                             NULL,
                             NULL,
                             0};
static mdw_gauge m_author_entries = {
    "meadow_processor_author_index_entries",
    NULL,
    "(post, tag) pairs in the processor's in-memory author index (28 bytes each)",
    gauge_author_entries,
    NULL,
    NULL,
    0};
static mdw_gauge m_collisions = {"meadow_index_hash_collisions_total",
                                 NULL,
                                 "writes refused because a hashed key held another string",
                                 gauge_collisions,
                                 NULL,
                                 NULL,
                                 0};

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;
static void metrics_register(void)
{
    for (size_t i = 0; i < sizeof m_events / sizeof m_events[0]; i++)
        mdw_counter_register(&m_events[i]);
    for (size_t i = 0; i < NRULES; i++) {
        if (strcmp(m_rules[i].reason, mdw_rules_reason_name((mdw_rule_reason)i)) != 0)
            abort(); /* a programming error: the two lists must be in the same order */
        mdw_counter_register(&m_rules[i].c);
    }
    mdw_counter_register(&m_batches);
    mdw_counter_register(&m_swept_posts);
    mdw_counter_register(&m_swept_records);
    mdw_counter_register(&m_index_errors);
    mdw_counter_register(&m_storage_waits);
    mdw_gauge_register(&m_paused);
    mdw_hist_register(&m_batch_s);
    mdw_hist_register(&m_decode_wait_s);
    mdw_gauge_register(&m_last_seq);
    mdw_gauge_register(&m_collisions);
    mdw_gauge_register(&m_author_entries);
}

/* m_rules is in mdw_rule_reason order (checked once at start): counted by index, no strcmp. */
_Static_assert(NRULES == MDW_RR_COUNT, "one counter per rule reason");
static void count_rule(mdw_rule_reason why)
{
    mdw_counter_inc(&m_rules[(unsigned)why < NRULES ? why : MDW_RR_OTHER].c);
}

/* ---- setup ---- */

void mdw_processor_cfg_from_config(mdw_processor_cfg *pc, const mdw_config *c)
{
    memset(pc, 0, sizeof *pc);
    pc->data_dir = c->data;
    pc->retention_us = c->retention_days * 86400LL * 1000000LL;
    pc->sweep_interval_us = c->sweep_interval_s * 1000000LL;
    pc->batch = (size_t)c->process_batch;
}

static int take_lock(mdw_processor *p)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/processor.lock", p->cfg.data_dir ? p->cfg.data_dir : ".");
    p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->lock_fd < 0) {
        int e = errno;
        mdw_error("processor", "cannot open lock file", "path=%s err=\"%s\"", path, strerror(e));
        return -e;
    }
    if (flock(p->lock_fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(p->lock_fd);
        p->lock_fd = -1;
        if (e == EWOULDBLOCK) {
            mdw_error("processor", "another processor holds the lock", "path=%s", path);
            return MDW_ELOCKED;
        }
        mdw_error("processor", "cannot lock", "path=%s err=\"%s\"", path, strerror(e));
        return -e;
    }
    /* The holder's pid, for people reading the file (the flock is what counts). */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(p->lock_fd, 0) == 0 && write(p->lock_fd, pid, (size_t)n) < 0)
        mdw_debug("processor", "cannot write pid to lock file", NULL);
    return 0;
}

int mdw_processor_open(mdw_processor **out, const mdw_processor_cfg *cfg, mdw_queue *q,
                       mdw_index *ix, mdw_clock *clock)
{
    *out = NULL;
    pthread_once(&metrics_once, metrics_register);
    mdw_processor *p = xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    if (!p->cfg.batch)
        p->cfg.batch = 16384;
    if (p->cfg.wait_max_ms <= 0)
        p->cfg.wait_max_ms = WAIT_MAX_MS;
    p->q = q;
    p->ix = ix;
    p->clock = clock ? clock : mdw_clock_real();
    p->lock_fd = -1;
    p->env_rl.interval_us = 10 * 1000000LL;
    pthread_mutex_init(&p->st_mu, NULL);
    pthread_mutex_init(&p->dec_mu, NULL);
    pthread_cond_init(&p->dec_cv, NULL);
    for (int i = 0; i < NSLOTS; i++) {
        mdw_queue_batch_init(&p->slots[i].b);
        p->slots[i].arena = mdw_json_arena_new();
    }
    int rc = take_lock(p);
    if (rc)
        goto fail;
    p->lex = cfg->lex;
    if (!p->lex) {
        if ((rc = mdw_lexicon_load_builtin(&p->own_lex))) {
            mdw_error("processor", "cannot load the lexicon documents", "err=\"%s\"",
                      mdw_strerror(rc));
            goto fail;
        }
        p->lex = p->own_lex;
    }
    if ((rc = mdw_rules_new(&p->rules, ix, p->clock, p->cfg.retention_us)))
        goto fail;
    if ((rc = mdw_index_last_seq(ix, &p->last_seq)))
        goto fail;
    p->st.last_seq = p->last_seq;
    g_last_seq = p->last_seq;
    /*
    ** A full disk at start is no reason not to start: the loop pauses on it
    ** like on any other commit, and the sweep runs again when due.
    */
    if ((rc = mdw_processor_sweep(p)) && !mdw_err_environment(rc))
        goto fail;
    rc = 0;
    if ((rc = mdw_tagger_new(&p->dec_tagger)))
        goto fail;
    if (!p->cfg.decode_inline) {
        int e = pthread_create(&p->dec_thread, NULL, decoder_main, p);
        if (e) /* still correct, only slower: the step decodes itself */
            mdw_warn("processor", "no decoder thread: decoding inline", "err=\"%s\"", strerror(e));
        p->dec_has_thread = e == 0;
    }
    mdw_info("processor", "started", "last_seq=%llu retention_s=%lld batch=%zu",
             (unsigned long long)p->last_seq, (long long)(p->cfg.retention_us / 1000000),
             p->cfg.batch);
    *out = p;
    return 0;
fail:
    mdw_processor_close(p);
    return rc;
}

void mdw_processor_close(mdw_processor *p)
{
    if (!p)
        return;
    if (p->dec_has_thread) {
        pthread_mutex_lock(&p->dec_mu);
        p->dec_quit = 1;
        pthread_cond_broadcast(&p->dec_cv);
        pthread_mutex_unlock(&p->dec_mu);
        pthread_join(p->dec_thread, NULL);
    }
    mdw_tagger_free(p->dec_tagger);
    mdw_rules_free(p->rules);
    mdw_lexicon_free(p->own_lex);
    if (p->lock_fd >= 0)
        close(p->lock_fd); /* releases the flock */
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *sl = &p->slots[i];
        release_slot(sl);
        free(sl->d);
        mdw_queue_batch_release(&sl->b);
        mdw_json_arena_free(sl->arena);
    }
    free(p->seqs);
    pthread_mutex_destroy(&p->dec_mu);
    pthread_cond_destroy(&p->dec_cv);
    pthread_mutex_destroy(&p->st_mu);
    free(p);
}

/* ---- one batch ---- */

static mdw_ratelimit rl_refused = MDW_RATELIMIT_INIT(1000000);

static int validate(mdw_processor *p, const mdw_event *ev, char *why, size_t n, int *lexicon)
{
    *lexicon = 0;
    if (ev->kind != MDW_EV_COMMIT || !ev->record)
        return 0;
    const char *col = ev->collection;
    int ours = !strcmp(col, "net.atrarium.community.config") ||
               !strcmp(col, "net.atrarium.community.membership") ||
               !strcmp(col, "net.atrarium.moderation.action");
    if (!ours && strcmp(col, "app.bsky.feed.post") != 0)
        return 0; /* skipped later by the rules (unknown or other collections) */
    /*
    ** Posts too: with their own lexicon (app.bsky.feed.post and the subset of
    ** its references that a record can hold, builtin): the AppView drops a
    ** post its lexicon refuses, so an indexed one would leave a page short.
    */
    int rc = mdw_lexicon_validate_record(p->lex, col, ev->record, why, n);
    if (rc == MDW_ENOTFOUND && !ours)
        rc =
            0; /* a caller's lexicon without the post document: the rules read text, facets, tags */
    if (rc) {
        *lexicon = 1;
        if (rc == MDW_ENOTFOUND)
            snprintf(why, n, "no lexicon document for %s", col);
        return MDW_EINVALID;
    }
    if (ours && (rc = mdw_lexicon_app_check(col, ev->record, why, n)))
        return MDW_EINVALID;
    return 0;
}

static void stat_add(mdw_processor *p, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&p->st_mu);
    *field += n;
    pthread_mutex_unlock(&p->st_mu);
}

static void log_refused(mdw_processor *p, const mdw_event *ev, uint64_t seq, const char *what,
                        const char *why)
{
    uint64_t suppressed = 0;
    if (mdw_ratelimit_ok(&rl_refused, mdw_clock_mono_us(p->clock), &suppressed))
        mdw_warn("processor", "record refused",
                 "seq=%llu uri=\"%.300s\" rule=%s reason=\"%s\" suppressed=%llu",
                 (unsigned long long)seq, ev->uri ? ev->uri : ev->did, what, why,
                 (unsigned long long)suppressed);
}

/* ---- decoding (the decoder thread, or the step itself) ---- */

/* Frees what the slot's decoded events own (their trees go with the arena). */
static void release_slot(struct slot *sl)
{
    for (size_t i = 0; i < sl->b.n && sl->d; i++) {
        mdw_event_release(&sl->d[i].ev);
        free(sl->d[i].why);
        sl->d[i].why = NULL;
    }
}

/*
** Claims up to asked events after seq after into sl and decodes each:
** parse, lexicon and application checks, then mdw_event_prepare (hashes,
** hashtags, times). Reads the queue and the lexicon, never the index: safe
** beside the step's open index transaction.
*/
static void decode_slot(mdw_processor *p, mdw_tagger *tg, struct slot *sl, uint64_t after,
                        size_t asked)
{
    mdw_json_arena_reset(sl->arena); /* the previous fill's events are released */
    sl->asked = asked;
    sl->rc = mdw_queue_claim(p->q, after, asked, &sl->b);
    if (sl->rc)
        sl->b.n = 0;
    if (sl->dcap < sl->b.n) {
        free(sl->d);
        sl->dcap = sl->b.n;
        sl->d = xcalloc(sl->dcap, sizeof *sl->d);
    }
    for (size_t i = 0; i < sl->b.n; i++) {
        const mdw_queue_item *it = &sl->b.items[i];
        decoded *d = &sl->d[i];
        memset(d, 0, sizeof *d);
        d->seq = it->seq;
        char why[512] = "";
        if (mdw_event_parse_shared(&d->ev, sl->arena, it->data, it->len, why, sizeof why)) {
            d->status = DEC_DEAD;
            d->why = xstrdup(why);
            continue;
        }
        int lexicon;
        if (validate(p, &d->ev, why, sizeof why, &lexicon)) {
            d->status = lexicon ? DEC_LEXICON : DEC_APP_RULE;
            d->why = xstrdup(why);
            continue;
        }
        mdw_event_prepare(&d->ev, tg);
    }
}

/*
** dec_mu guards the ring and the plan; with no decoder thread the step is
** alone and these do nothing. wake_dec is called with dec_mu held.
*/
static void lock_dec(mdw_processor *p)
{
    if (p->dec_has_thread)
        pthread_mutex_lock(&p->dec_mu);
}

static void unlock_dec(mdw_processor *p)
{
    if (p->dec_has_thread)
        pthread_mutex_unlock(&p->dec_mu);
}

static void wake_dec(mdw_processor *p)
{
    if (p->dec_has_thread)
        pthread_cond_broadcast(&p->dec_cv);
}

/*
** Decodes the next chunk of the plan into the slot at fill, if the plan is
** on and that slot is free; returns 0 when there was nothing to do. Called
** with dec_mu held (it is released while decoding) by the decoder thread,
** or by the step itself when there is no decoder thread.
*/
static int decode_next(mdw_processor *p)
{
    struct slot *sl = &p->slots[p->fill % NSLOTS];
    if (!p->plan_on || sl->state != SLOT_IDLE)
        return 0;
    size_t chunk = p->cfg.batch < CLAIM_CHUNK ? p->cfg.batch : CLAIM_CHUNK;
    size_t asked = p->plan_left < chunk ? p->plan_left : chunk;
    uint64_t after = p->plan_after;
    sl->state = SLOT_BUSY;
    unlock_dec(p);
    decode_slot(p, p->dec_tagger, sl, after, asked);
    lock_dec(p);
    sl->state = SLOT_DONE;
    p->fill++;
    if (sl->rc || sl->b.n < asked) {
        p->plan_on = 0; /* the queue is drained (or failed): the step starts the next plan */
    } else {
        p->plan_after = sl->b.items[sl->b.n - 1].seq;
        p->plan_left -= sl->b.n;
        if (p->plan_left == 0)
            p->plan_left = p->cfg.batch; /* on into the next batch */
    }
    wake_dec(p);
    return 1;
}

static void *decoder_main(void *arg)
{
    mdw_processor *p = arg;
    pthread_mutex_lock(&p->dec_mu);
    while (!p->dec_quit)
        if (!decode_next(p))
            pthread_cond_wait(&p->dec_cv, &p->dec_mu);
    pthread_mutex_unlock(&p->dec_mu);
    return NULL;
}

/* The slot at head once decoded (decoding it here when there is no decoder thread). */
static struct slot *next_slot(mdw_processor *p)
{
    lock_dec(p);
    if (!p->plan_on && p->head == p->fill) {
        /* Nothing decoded or planned: claim from the queue's head, a fresh batch. */
        p->plan_on = 1;
        p->plan_after = 0;
        p->plan_left = p->cfg.batch;
        wake_dec(p);
    }
    struct slot *sl = &p->slots[p->head % NSLOTS];
    if (sl->state != SLOT_DONE && p->dec_has_thread) {
        int64_t t0 = mdw_clock_mono_us(mdw_clock_real());
        while (sl->state != SLOT_DONE)
            pthread_cond_wait(&p->dec_cv, &p->dec_mu);
        p->wait_us += mdw_clock_mono_us(mdw_clock_real()) - t0;
    }
    while (sl->state != SLOT_DONE)
        decode_next(p); /* no decoder thread */
    unlock_dec(p);
    return sl;
}

/* The step is done with the slot at head: its events are released, the decoder may refill it. */
static void put_slot(mdw_processor *p)
{
    struct slot *sl = &p->slots[p->head % NSLOTS];
    release_slot(sl);
    sl->b.n = 0;
    lock_dec(p);
    sl->state = SLOT_IDLE;
    p->head++;
    wake_dec(p);
    unlock_dec(p);
}

/*
** Drops everything decoded ahead (after a batch that did not commit and
** ack: its events are claimed again from the queue's head).
*/
static void drop_ahead(mdw_processor *p)
{
    lock_dec(p);
    p->plan_on = 0;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < NSLOTS; i++)
            busy |= p->slots[i].state == SLOT_BUSY;
        if (!busy)
            break;
        pthread_cond_wait(&p->dec_cv, &p->dec_mu); /* only with a thread can one be busy */
    }
    unlock_dec(p);
    while (p->head != p->fill)
        put_slot(p);
}

static void prefetch_str(const char *s)
{
    if (s)
        __builtin_prefetch(s);
}

static int apply_slot(mdw_processor *p, struct slot *sl, uint64_t *last, mdw_processor_stats *d)
{
    int rc;
    for (size_t i = 0; i < sl->b.n; i++) {
        decoded *e = &sl->d[i];
        /*
        ** The decoder wrote these on the other core: fetch the next events'
        ** structs and strings while this one is applied (their first reads
        ** here were cache misses costing ~10% of this thread's time).
        */
        if (i + 2 < sl->b.n)
            for (size_t o = 0; o < sizeof *e; o += 64)
                __builtin_prefetch((const char *)&sl->d[i + 2] + o);
        if (i + 1 < sl->b.n && sl->d[i + 1].status == DEC_OK) {
            const mdw_event *n = &sl->d[i + 1].ev;
            prefetch_str(n->uri);
            prefetch_str(n->did);
            prefetch_str(n->rev);
            prefetch_str(n->collection);
            prefetch_str(n->cid);
        }
        if (e->seq <= p->last_seq) {
            /* Applied before a crash that came ahead of the ack: ack only. */
            d->replayed++;
            continue;
        }
        if (e->seq > *last)
            *last = e->seq;
        switch (e->status) {
        case DEC_DEAD:
            mdw_warn("processor", "malformed event: dead letter", "seq=%llu err=\"%s\"",
                     (unsigned long long)e->seq, e->why);
            if ((rc = mdw_queue_dead_letter(p->q, e->seq, e->why))) {
                mdw_error("processor", "cannot dead-letter an event", "seq=%llu err=\"%s\"",
                          (unsigned long long)e->seq, mdw_strerror(rc));
                return rc;
            }
            d->dead++;
            count_rule(MDW_RR_MALFORMED);
            continue;
        case DEC_LEXICON:
        case DEC_APP_RULE: {
            int lexicon = e->status == DEC_LEXICON;
            log_refused(p, &e->ev, e->seq, lexicon ? "lexicon" : "app_rule", e->why);
            count_rule(lexicon ? MDW_RR_LEXICON : MDW_RR_APP_RULE);
            d->refused++;
            if (lexicon)
                d->refused_lexicon++;
            else
                d->refused_app++;
            continue;
        }
        default:
            break;
        }
        mdw_rules_result res;
        if ((rc = mdw_rules_apply(p->rules, &e->ev, &res)))
            return rc;
        count_rule(res.why);
        switch (res.outcome) {
        case MDW_RULE_APPLIED:
            d->applied++;
            break;
        case MDW_RULE_NOOP:
            d->noop++;
            break;
        case MDW_RULE_REFUSED:
            log_refused(p, &e->ev, e->seq, res.reason, "community rule");
            d->refused++;
            break;
        default:
            d->skipped++;
        }
    }
    return 0;
}

/*
** One index transaction for up to cfg.batch events, claimed CLAIM_CHUNK at a
** time (each chunk continues after the previous one's last seq): the events'
** bytes in memory stay bounded by NSLOTS chunks whatever the batch, while the
** commit (and its syncs) and the ack are paid once per batch. The decoder
** claims and decodes the chunks ahead, on its own thread.
*/
int mdw_processor_step(mdw_processor *p, size_t *nout)
{
    *nout = 0;
    p->wait_us = 0;
    struct slot *sl = next_slot(p);
    int rc = sl->rc;
    if (rc || sl->b.n == 0) {
        put_slot(p);
        return rc; /* a failed claim was logged by the queue */
    }
    int64_t t0 = mdw_clock_mono_us(p->clock);
    if ((rc = mdw_rules_begin(p->rules))) {
        drop_ahead(p);
        return rc;
    }
    uint64_t last = p->last_seq;
    mdw_processor_stats d = {0};
    size_t n = 0;
    for (;;) {
        if (p->seqs_cap < n + sl->b.n) {
            p->seqs_cap = (n + sl->b.n) * 2;
            p->seqs = xrealloc(p->seqs, p->seqs_cap * sizeof *p->seqs);
        }
        for (size_t i = 0; i < sl->b.n; i++)
            p->seqs[n + i] = sl->b.items[i].seq;
        n += sl->b.n;
        rc = apply_slot(p, sl, &last, &d);
        int end = n == p->cfg.batch || sl->b.n < sl->asked; /* batch full, or queue drained */
        put_slot(p);
        if (rc)
            goto abort;
        if (end)
            break;
        sl = next_slot(p);
        if (sl->rc || sl->b.n == 0) {
            /* What is applied so far is sound: commit it, the rest comes next time. */
            put_slot(p);
            break;
        }
    }
    *nout = n;
    if ((rc = mdw_rules_commit(p->rules, last > p->last_seq ? last : 0))) {
        rc = mdw_err_nospace(rc, p->cfg.data_dir); /* LMDB's EIO for a short write */
        goto nack;
    }
    p->last_seq = last;
    g_last_seq = last;
    g_author_entries = mdw_rules_author_entries(p->rules);
    /*
    ** After the commit: a crash here redelivers, and seq <= last_seq skips
    ** them; so does a failed ack (logged by the queue), whose code is
    ** returned so the loop backs off rather than spinning on it.
    */
    int ack_rc = mdw_queue_ack(p->q, p->seqs, n);
    if (ack_rc)
        drop_ahead(p); /* the next claim starts at the queue's head */
    mdw_counter_add(&m_events[EV_APPLIED], d.applied);
    mdw_counter_add(&m_events[EV_NOOP], d.noop);
    mdw_counter_add(&m_events[EV_REFUSED], d.refused);
    mdw_counter_add(&m_events[EV_SKIPPED], d.skipped);
    mdw_counter_add(&m_events[EV_DEAD], d.dead);
    mdw_counter_add(&m_events[EV_REPLAYED], d.replayed);
    mdw_counter_inc(&m_batches);
    mdw_hist_observe_us(&m_batch_s, mdw_clock_mono_us(p->clock) - t0);
    mdw_hist_observe_us(&m_decode_wait_s, p->wait_us);
    pthread_mutex_lock(&p->st_mu);
    p->st.applied += d.applied;
    p->st.noop += d.noop;
    p->st.refused += d.refused;
    p->st.refused_lexicon += d.refused_lexicon;
    p->st.refused_app += d.refused_app;
    p->st.skipped += d.skipped;
    p->st.dead += d.dead;
    p->st.replayed += d.replayed;
    p->st.batches++;
    p->st.last_seq = last;
    pthread_mutex_unlock(&p->st_mu);
    return ack_rc;
abort:
    *nout = n;
    mdw_rules_abort(p->rules); /* the failure was logged where it happened */
nack:
    drop_ahead(p); /* the next claim starts at the queue's head */
    if (mdw_err_environment(rc)) {
        /*
        ** A full disk or map, an I/O error: the environment's fault, never
        ** the events'. Keep them all (no attempt counted, nothing
        ** dead-lettered); the caller retries the same batch later.
        */
        mdw_counter_inc(&m_storage_waits);
        stat_add(p, &p->st.storage_waits, 1);
        uint64_t suppressed = 0;
        if (mdw_ratelimit_ok(&p->env_rl, mdw_clock_mono_us(p->clock), &suppressed))
            mdw_warn("processor", "storage refused the batch: events kept for a retry",
                     "events=%zu err=\"%s\" hint=\"%s\" suppressed=%llu", n, mdw_strerror(rc),
                     rc == MDW_EFULL ? "index map full: raise index_map_mb, or wait for the sweep"
                                     : "free disk space: the processor resumes by itself",
                     (unsigned long long)suppressed);
        return rc;
    }
    mdw_error("processor", "batch failed: events nacked", "events=%zu err=\"%s\"", n,
              mdw_strerror(rc));
    mdw_counter_inc(&m_index_errors);
    stat_add(p, &p->st.index_errors, 1);
    for (size_t i = 0; i < n; i++)
        if (p->seqs[i] > p->last_seq)
            mdw_queue_nack(p->q, p->seqs[i], mdw_strerror(rc), NULL); /* failures logged there */
    return rc;
}

int mdw_processor_sweep(mdw_processor *p)
{
    uint64_t np = 0, nr = 0;
    int rc = mdw_rules_begin(p->rules);
    if (!rc && (rc = mdw_rules_sweep(p->rules, &np, &nr)) == 0)
        rc = mdw_err_nospace(mdw_rules_commit(p->rules, 0), p->cfg.data_dir);
    else
        mdw_rules_abort(p->rules);
    int64_t now = mdw_clock_now_us(p->clock);
    p->next_sweep_us =
        now + (p->cfg.sweep_interval_us > 0 ? p->cfg.sweep_interval_us : 600LL * 1000000LL);
    if (rc)
        return rc; /* logged where it failed (index/write.c) */
    g_author_entries = mdw_rules_author_entries(p->rules); /* the start-up sweep built it */
    mdw_counter_add(&m_swept_posts, np);
    mdw_counter_add(&m_swept_records, nr);
    pthread_mutex_lock(&p->st_mu);
    p->st.swept_posts += np;
    p->st.swept_records += nr;
    pthread_mutex_unlock(&p->st_mu);
    if (np || nr)
        mdw_info("processor", "retention sweep", "posts=%llu records=%llu", (unsigned long long)np,
                 (unsigned long long)nr);
    return 0;
}

void mdw_processor_request_stop(mdw_processor *p)
{
    p->stop = 1;
    mdw_queue_wake(p->q);
}

/* Waits ms unless stopped (appends do not cut it short: this is a backoff). */
static void backoff_wait(mdw_processor *p, int ms)
{
    int64_t until = mdw_clock_mono_us(mdw_clock_real()) + (int64_t)ms * 1000;
    for (;;) {
        int64_t left = until - mdw_clock_mono_us(mdw_clock_real());
        if (left <= 0 || p->stop || mdw_stop_requested())
            return;
        mdw_queue_wait(p->q, (int)((left + 999) / 1000));
    }
}

static void set_paused(mdw_processor *p, int on, int rc)
{
    if (on == p->paused)
        return;
    p->paused = on;
    g_paused = on;
    int64_t now = mdw_clock_mono_us(p->clock);
    if (on) {
        p->paused_since_us = now;
        mdw_warn("processor", "paused: storage refuses writes; retrying with backoff", "err=\"%s\"",
                 mdw_strerror(rc));
    } else {
        mdw_info("processor", "resumed: storage accepts writes again", "paused_s=%lld",
                 (long long)((now - p->paused_since_us) / 1000000));
    }
}

/*
** Environment failures (mdw_err_environment: disk or map full, I/O) pause
** the loop: the same events are retried with backoff (BACKOFF_MIN_MS
** doubling to BACKOFF_MAX_MS) for as long as it takes, and processing
** resumes by itself when storage accepts writes again. Any other failure
** nacks the batch (the queue dead-letters an event that keeps failing);
** FAILURES_MAX of them in a row and the processor gives up: run returns
** the error and the process must exit non-zero.
*/
int mdw_processor_run(mdw_processor *p)
{
    int failures = 0, backoff_ms = 0;
    while (!p->stop && !mdw_stop_requested()) {
        size_t n = 0;
        int rc = mdw_processor_step(p, &n);
        int64_t now = mdw_clock_now_us(p->clock);
        if (rc && mdw_err_environment(rc)) {
            set_paused(p, 1, rc);
            backoff_ms = backoff_ms ? backoff_ms * 2 : BACKOFF_MIN_MS;
            if (backoff_ms > BACKOFF_MAX_MS)
                backoff_ms = BACKOFF_MAX_MS;
            /* A sweep may free room in a full index map; its failure is logged and retried. */
            if (now >= p->next_sweep_us && (rc = mdw_processor_sweep(p)) &&
                !mdw_err_environment(rc))
                return rc;
            backoff_wait(p, backoff_ms);
            continue;
        }
        if (rc) {
            if (++failures >= FAILURES_MAX) {
                mdw_error("processor", "giving up after repeated failures", "err=\"%s\"",
                          mdw_strerror(rc));
                return rc;
            }
            backoff_wait(p, 100 * failures);
            continue;
        }
        set_paused(p, 0, 0);
        failures = 0;
        backoff_ms = 0;
        if (now >= p->next_sweep_us && (rc = mdw_processor_sweep(p)) && !mdw_err_environment(rc))
            return rc;
        if (n > 0)
            continue; /* drain while there is work */
        int64_t until = (p->next_sweep_us - now) / 1000;
        int timeout =
            until < p->cfg.wait_max_ms ? (until > 0 ? (int)until : 1) : p->cfg.wait_max_ms;
        mdw_queue_wait(p->q, timeout);
    }
    return 0;
}

static void *thread_main(void *arg)
{
    mdw_processor *p = arg;
    p->run_rc = mdw_processor_run(p);
    p->ended = 1;
    return NULL;
}

int mdw_processor_ended(const mdw_processor *p)
{
    return p && p->ended;
}

int mdw_processor_start(mdw_processor **out, const mdw_processor_cfg *cfg, mdw_queue *q,
                        mdw_index *ix, mdw_clock *clock)
{
    int rc = mdw_processor_open(out, cfg, q, ix, clock);
    if (rc)
        return rc;
    if ((rc = pthread_create(&(*out)->thread, NULL, thread_main, *out))) {
        mdw_error("processor", "cannot start thread", "err=\"%s\"", strerror(rc));
        mdw_processor_close(*out);
        *out = NULL;
        return -rc;
    }
    (*out)->has_thread = 1;
    return 0;
}

int mdw_processor_stop(mdw_processor *p)
{
    if (!p)
        return 0;
    int rc = 0;
    if (p->has_thread) {
        mdw_processor_request_stop(p);
        pthread_join(p->thread, NULL);
        rc = p->run_rc;
    }
    mdw_processor_close(p);
    return rc;
}

void mdw_processor_stats_get(mdw_processor *p, mdw_processor_stats *st)
{
    pthread_mutex_lock(&p->st_mu);
    *st = p->st;
    pthread_mutex_unlock(&p->st_mu);
}
