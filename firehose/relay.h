/*
** firehose/relay.h — com.atproto.sync.subscribeRepos frames to Jetstream v1
** events.
**
** A relay or PDS sends one binary WebSocket message per event: a DAG-CBOR
** header {op, t} then a DAG-CBOR body. mdw_relay_decode() turns one such
** frame into zero or more Jetstream-shaped JSON events, handed one at a time
** to a callback, in the order Jetstream emits them (ops in commit order):
**
**   #commit   -> one "commit" event per op (create/update carry the record,
**                rendered from its CAR block, and its CID; delete neither)
**   #identity -> one "identity" event {did, seq, time, handle?}
**   #account  -> one "account" event {active, did, seq, time, status?}
**   #sync     -> no event: the frame type and DID are reported so the caller
**                counts it and marks that repository for re-reading
**   #info     -> no event: name/message reported (e.g. OutdatedCursor)
**   op -1     -> an error frame: no event, error name/message reported
**   other t   -> skipped (type MDW_RELAY_UNKNOWN, t in name)
**
** time_us is the frame's own `time` (Jetstream stamps its receipt time
** instead; the two differ by the relay's latency). seq is the frame's seq,
** the relay source's cursor.
**
** Checks before any event is emitted: frame size (MDW_MAX_FRAME_BYTES ->
** MDW_ETOOBIG), DAG-CBOR validity and nesting (cbor.h), the CAR slice and
** the sha-256 of every block against its CID (MDW_ECORRUPT), and, when
** opts->resolver is set, the commit signature against the repository's
** #atproto key (MDW_ECRYPTO; MDW_ENOTFOUND without a DID document). A
** failing frame emits nothing and fills info->err with a one-line reason. A
** single op whose record cannot be rendered (missing block, a float, …) is
** skipped and counted in info->ops_failed (first reason in info->err) while
** the frame's other ops are still emitted, as Jetstream does.
**
** Threading and ownership: nothing is carried from one call to the next (the
** only hidden state is common/crypto's per-thread SHA-256 context cache), so
** any number of threads may decode at once. The event passed to emit points
** into buffers that live only during the callback.
*/
#ifndef MDW_RELAY_H
#define MDW_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "identity/identity.h"
#include "common/limits.h"

typedef enum {
    MDW_RELAY_NONE = 0,
    MDW_RELAY_COMMIT,
    MDW_RELAY_IDENTITY,
    MDW_RELAY_ACCOUNT,
    MDW_RELAY_SYNC,
    MDW_RELAY_INFO,
    MDW_RELAY_ERROR, /* op -1 */
    MDW_RELAY_UNKNOWN
} mdw_relay_frame_type;

typedef enum { MDW_EV_COMMIT = 1, MDW_EV_IDENTITY, MDW_EV_ACCOUNT } mdw_relay_event_kind;
typedef enum { MDW_OP_NONE = 0, MDW_OP_CREATE, MDW_OP_UPDATE, MDW_OP_DELETE } mdw_relay_op;

typedef struct mdw_relay_event {
    mdw_relay_event_kind kind;
    mdw_relay_op op;               /* commits */
    const char *did;               /* NUL-terminated */
    const char *collection, *rkey; /* commits; NUL-terminated */
    int64_t time_us;
    int64_t seq;
    const char *json; /* one Jetstream v1 event, no newline, NUL-terminated */
    size_t json_len;
} mdw_relay_event;

/* Return non-zero to stop: mdw_relay_decode() returns that value. */
typedef int (*mdw_relay_emit_fn)(void *ctx, const mdw_relay_event *ev);
/* Return 0 to skip converting an op of this collection (counted as skipped). */
typedef int (*mdw_relay_want_fn)(void *ctx, const char *collection);

typedef struct mdw_relay_opts {
    mdw_did_resolver *resolver; /* non-NULL: verify every commit signature */
    unsigned sig_flags;         /* MDW_SIG_ALLOW_HIGH_S to accept high-S */
    mdw_relay_want_fn want;     /* NULL: every collection */
    void *want_ctx;
} mdw_relay_opts;

#define MDW_RELAY_NAME_MAX 128
#define MDW_RELAY_ERR_MAX  320

typedef struct mdw_relay_frame {
    mdw_relay_frame_type type;
    int64_t seq;                     /* -1 when the frame has none */
    char did[MDW_MAX_DID_BYTES + 1]; /* repo / did, or "" */
    char name[MDW_RELAY_NAME_MAX];   /* error/info name, or the unknown t */
    char message[MDW_RELAY_ERR_MAX]; /* error/info message */
    int events;                      /* events emitted */
    int ops_skipped;                 /* ops of unwanted collections */
    int ops_failed;                  /* ops whose record could not be rendered */
    int sig_verified;                /* 1 when the commit signature was checked */
    int high_s;                      /* the signature was refused for high S */
    char err[MDW_RELAY_ERR_MAX];     /* why the frame (or first op) failed */
} mdw_relay_frame;

/*
** Decodes one frame (see the top of this file). opts may be NULL; info is
** always filled (type is MDW_RELAY_NONE when the header itself is bad).
*/
int mdw_relay_decode(const uint8_t *frame, size_t len, const mdw_relay_opts *opts,
                     mdw_relay_frame *info, mdw_relay_emit_fn emit, void *ctx);

const char *mdw_relay_frame_type_name(mdw_relay_frame_type t);

#endif
