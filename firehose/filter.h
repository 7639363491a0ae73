/*
** firehose/filter.h — the lightweight filter: decides from an event's raw
** JSON bytes, without building a JSON tree, whether the event can matter to
** Meadow (shared/DESIGN.md "Lightweight filter").
**
** Pass: an app.bsky.feed.post create whose bytes contain "atr_" (a cheap
** superset of every way a post can name a community: `#atr_` in the text,
** the JSON escape of `#`, hashtag facets, the `tags` array); every
** app.bsky.feed.post update and delete; every net.atrarium.* record event;
** account events. Everything else is dropped with a reason. Identity events
** are dropped: nothing downstream reads handles or DID documents from the
** stream. Malformed input (not JSON-looking, no usable time_us, over
** MDW_MAX_EVENT_BYTES, a commit without operation/collection or an event
** without kind) gets its own reasons.
**
** How: a small structural walk over the top-level object reads only the keys
** it needs (time_us, kind, and inside `commit` the operation and collection),
** skipping other values. In Jetstream's key order (did, time_us, kind,
** commit{rev, operation, collection, ...}) it stops within the first ~200
** bytes; any other key order is still read correctly, only slower. Strings
** are skipped with memchr, the `atr_` test is one memmem.
**
** mdw_filter_event() is pure and thread-safe (no allocation, no globals).
** Counting (Prometheus meadow_firehose_events_total{result,reason}) and the
** rate-limited malformed log are separate calls so that hot loops can keep
** local counts and publish them once per batch.
*/
#ifndef MDW_FIREHOSE_FILTER_H
#define MDW_FIREHOSE_FILTER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    /* pass */
    MDW_FILTER_POST_CREATE_TAGGED = 0,
    MDW_FILTER_POST_UPDATE,
    MDW_FILTER_POST_DELETE,
    MDW_FILTER_ATRARIUM,
    MDW_FILTER_ACCOUNT,
    /* drop */
    MDW_FILTER_POST_CREATE_UNTAGGED,
    MDW_FILTER_OTHER_COLLECTION,
    MDW_FILTER_IDENTITY,
    MDW_FILTER_OTHER_KIND,
    /* malformed */
    MDW_FILTER_NOT_JSON,
    MDW_FILTER_NO_TIME_US,
    MDW_FILTER_OVERSIZE,
    MDW_FILTER_BAD_EVENT,
    MDW_FILTER_NREASONS
} mdw_filter_reason;

#define MDW_FILTER_FIRST_DROP      MDW_FILTER_POST_CREATE_UNTAGGED
#define MDW_FILTER_FIRST_MALFORMED MDW_FILTER_NOT_JSON

/*
** Distinct positive values: a result never reads as success (0) or as an
** error (-errno, MDW_E*), so mdw_ingest_event() can return either a result
** or a queue error without the two meeting (-1 is -EPERM).
*/
typedef enum {
    MDW_FILTER_PASS = 1,
    MDW_FILTER_DROP = 2,
    MDW_FILTER_MALFORMED = 3
} mdw_filter_result;

typedef struct mdw_filter_verdict {
    mdw_filter_reason reason;
    int has_time; /* time_us was found and valid (also for some malformed events) */
    int64_t time_us;
} mdw_filter_verdict;

/*
** Classifies one event. Returns MDW_FILTER_PASS, MDW_FILTER_DROP or
** MDW_FILTER_MALFORMED and fills *v. Never reads past data[len).
*/
mdw_filter_result mdw_filter_event(const void *data, size_t len, mdw_filter_verdict *v);

/* Result class of a reason (PASS/DROP/MALFORMED) and its label text. */
mdw_filter_result mdw_filter_result_of(mdw_filter_reason r);
const char *mdw_filter_reason_name(mdw_filter_reason r);

/*
** Extracts the top-level integer time_us (the same walk as the filter). 0 or
** MDW_EMALFORMED. Exposed for tests, fuzzing and tools.
*/
int mdw_filter_time_us(const void *data, size_t len, int64_t *time_us);

/*
** Metrics: registers the counters (idempotent) and adds local counts
** (indexed by mdw_filter_reason) to them. Thread-safe.
*/
void mdw_filter_metrics_register(void);
void mdw_filter_count(const uint64_t counts[MDW_FILTER_NREASONS]);
uint64_t mdw_filter_counter_value(mdw_filter_reason r);

/*
** Logs a malformed event at warn level, at most once per minute per reason
** (with the number suppressed since), showing a short escaped prefix.
** now_mono_us: mdw_clock_mono_us() of the caller's clock.
*/
void mdw_filter_log_malformed(mdw_filter_reason r, const void *data, size_t len,
                              int64_t now_mono_us);

#endif
