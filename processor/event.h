/*
** processor/event.h — decoding one queued event (Jetstream JSON shape; the
** relay source converts its frames to the same shape) and finding the
** community hashtags a post names.
**
** mdw_event_parse() builds a cJSON tree and points the struct's fields into
** it: the event owns the tree until mdw_event_release(). A decode error
** (not JSON, not an object, a required field missing or of the wrong type,
** a field over its named maximum) is MDW_EMALFORMED with the reason in err:
** the processor sends such events to dead letters, since no retry fixes them.
**
** The tagger holds the compiled PCRE2 pattern and its match data: one per
** thread (not thread-safe), created once, reused for every post.
*/
#ifndef MDW_PROCESSOR_EVENT_H
#define MDW_PROCESSOR_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "common/json_arena.h"

#define MDW_MAX_RKEY_BYTES       512 /* atproto record key limit */
#define MDW_MAX_COLLECTION_BYTES 317 /* NSID limit */
#define MDW_MAX_REV_BYTES        15  /* a TID is 13; index keys pad revs to 16 */
#define MDW_MAX_POST_TAGS        16  /* community tags taken from one post */

enum { MDW_EV_COMMIT = 1, MDW_EV_ACCOUNT, MDW_EV_IDENTITY, MDW_EV_OTHER };
enum { MDW_OP_CREATE = 1, MDW_OP_UPDATE, MDW_OP_DELETE };

typedef struct mdw_event {
    int kind;
    const char *did;
    int64_t time_us; /* event time (0 when absent) */
    /* commit */
    int op;
    const char *collection, *rkey, *rev, *cid;
    const cJSON *record; /* NULL for deletes */
    char *uri;           /* at://did/collection/rkey (in the arena, or malloc'd and owned) */
    /* account */
    int active;
    const char *status; /* NULL when absent */
    int64_t seq;        /* account seq (0 when absent) */
    cJSON *root;
    mdw_json_arena *arena; /* the tree's arena, or NULL when it is malloc'd */
    int shared_arena;      /* other events' trees share the arena: release leaves it */
    /*
    ** Derived by mdw_event_prepare() (pure: run on any thread, e.g. the
    ** processor's decoder, before the rules see the event; the rules derive
    ** them themselves when prepared is 0).
    */
    int prepared;
    uint8_t did_hash[16];               /* H(did): MDW_IX_H bytes */
    uint8_t rec_key[24];                /* commits: the records key of uri (MDW_IX_RK) */
    size_t ntags;                       /* post create/update: community hashtag ids */
    uint8_t tags[MDW_MAX_POST_TAGS][4]; /* ... in the record, as mdw_tagger_extract */
    int created_rc;                     /* record's createdAt: 0 and created_us, or an error */
    int64_t created_us;
    int rkey_time_rc; /* rkey as a TID: 0 and rkey_time_us (its time), or an error */
    int64_t rkey_time_us;
} mdw_event;

int mdw_event_parse(mdw_event *ev, const char *data, size_t len, char *err, size_t errlen);
/*
** The same with the tree in arena (common/json_arena.h): releasing the event
** resets the arena, so one event per arena is alive at a time. The
** processor decodes every event this way.
*/
int mdw_event_parse_in(mdw_event *ev, mdw_json_arena *arena, const char *data, size_t len,
                       char *err, size_t errlen);
/*
** The same, but the arena holds the trees of many events at a time (the
** processor's decoder fills one per claimed chunk): releasing the event
** frees only what it owns; the caller resets the arena once every event
** parsed into it is released.
*/
int mdw_event_parse_shared(mdw_event *ev, mdw_json_arena *arena, const char *data, size_t len,
                           char *err, size_t errlen);
void mdw_event_release(mdw_event *ev);

typedef struct mdw_tagger mdw_tagger;
int mdw_tagger_new(mdw_tagger **out);
void mdw_tagger_free(mdw_tagger *t);
/*
** The distinct community hashtag ids a post record names (text, hashtag
** facets, `tags`), as 4 bytes each, in first-seen order; returns the count
** (at most MDW_MAX_POST_TAGS).
*/
size_t mdw_tagger_extract(mdw_tagger *t, const cJSON *record, uint8_t tags[MDW_MAX_POST_TAGS][4]);

/* Fills the event's derived fields (above) with t, this thread's tagger. */
void mdw_event_prepare(mdw_event *ev, mdw_tagger *t);

#endif
