/*
** pds/pds.h — a client of one person's PDS (libcurl), for the CLI that
** writes community, membership, moderation and feed records.
**
** A handle logs in as `identifier` with an app password taken from an
** owner-only file or the environment (never from argv, never logged). The
** session (access + refresh JWT) is cached in a 0600 file, since PDSes
** rate-limit createSession; an access token the PDS answers with ExpiredToken
** is refreshed (refreshSession) and the call repeated, transparently. Requests
** have a timeout; 429 and 5xx answers (and transport failures of requests
** that are safe to repeat) are retried with exponential backoff, honouring
** the PDS's ratelimit-reset / retry-after. Response bodies are capped at
** MDW_MAX_HTTP_BODY_BYTES. On failure, mdw_pds_error() gives one line for a
** person: the XRPC method, the error name and message, the HTTP status.
**
** Threading: a handle is used by one thread at a time. Ownership: strings
** and cJSON trees returned through out-parameters belong to the caller
** (free() / cJSON_Delete()); strings passed in are copied.
*/
#ifndef MDW_PDS_H
#define MDW_PDS_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "common/clock.h"

#define MDW_PDS_MAX_PASSWORD_BYTES    1024        /* an app password file */
#define MDW_PDS_MAX_SESSION_BYTES     (64 * 1024) /* the cached session file */
#define MDW_PDS_MAX_RATELIMIT_WAIT_MS 60000       /* longer ratelimit-reset: give up at once */
#define MDW_PDS_ERR_MAX               1024

typedef struct mdw_pds mdw_pds;

typedef struct mdw_pds_opts {
    const char *pds_url;           /* base URL of the PDS, e.g. https://bsky.social */
    const char *plc_url;           /* PLC directory, for did:plc resolution */
    const char *identifier;        /* handle or DID to log in as ("" = reads only) */
    const char *app_password_file; /* owner-only file ("" = none) */
    const char *app_password;      /* from the environment (NULL = none) */
    const char *session_file;      /* session cache (NULL or "" = no cache) */
    long timeout_ms;               /* whole-request timeout */
    int max_retries;               /* extra attempts after 429/5xx/transport errors */
    int64_t backoff_ms;            /* first backoff delay (doubles, with jitter) */
    int64_t max_wait_ms;           /* a ratelimit-reset further away fails at once */
    mdw_clock *clock;              /* NULL = real */
} mdw_pds_opts;

/* Fills defaults: 30 s timeout, 3 retries, 250 ms backoff, 60 s max wait. */
void mdw_pds_opts_init(mdw_pds_opts *o);

int mdw_pds_open(mdw_pds **out, const mdw_pds_opts *o);
void mdw_pds_close(mdw_pds *p);

/* The last failure, for a person ("" when none). Never holds a secret. */
const char *mdw_pds_error(const mdw_pds *p);

/*
** Ensures a session: the cached one when it belongs to (pds_url, identifier),
** else createSession with the app password (then cached). Does not check the
** access token's age; calls refresh it when the PDS says ExpiredToken.
*/
int mdw_pds_login(mdw_pds *p);
/* The logged-in account's DID (NULL before mdw_pds_login). */
const char *mdw_pds_did(const mdw_pds *p);

/*
** Writes into the logged-in account's repository (logs in if needed). The
** PDS's own `validate` is left unset: a PDS refuses validate=true for
** lexicons it does not know; Meadow validates before calling. createRecord
** with a NULL rkey lets the PDS choose one and is then not retried after a
** 5xx or transport failure (it might have been written); give an rkey
** (mdw_pds_tid) to make it safe to repeat. uri_out / cid_out may be NULL.
*/
int mdw_pds_create_record(mdw_pds *p, const char *collection, const char *rkey, const cJSON *record,
                          char **uri_out, char **cid_out);
int mdw_pds_put_record(mdw_pds *p, const char *collection, const char *rkey, const cJSON *record,
                       char **uri_out, char **cid_out);
int mdw_pds_delete_record(mdw_pds *p, const char *collection, const char *rkey);

/*
** Reads (no login needed). base_url NULL = the configured PDS; otherwise the
** repository's own PDS (mdw_pds_resolve_endpoint). getRecord: *out is the
** whole answer {uri, cid, value}; MDW_ENOTFOUND when there is no such record.
*/
int mdw_pds_get_record(mdw_pds *p, const char *base_url, const char *repo, const char *collection,
                       const char *rkey, cJSON **out);
/* Visits every record of every page, oldest page first; fn != 0 stops (returned). */
typedef int (*mdw_pds_record_fn)(void *ctx, const char *uri, const char *cid, const cJSON *value);
int mdw_pds_list_records(mdw_pds *p, const char *base_url, const char *repo, const char *collection,
                         mdw_pds_record_fn fn, void *ctx);

/* com.atproto.identity.resolveHandle on the configured PDS. */
int mdw_pds_resolve_handle(mdw_pds *p, const char *handle, char **did_out);
/*
** DID -> PDS endpoint (the DID document's #atproto_pds service): did:plc
** through plc_url, did:web through https://<host>/.well-known/did.json
** (http for localhost, as the reference resolver does for tests).
*/
int mdw_pds_resolve_endpoint(mdw_pds *p, const char *did, char **endpoint_out);
/* A handle or a DID -> DID (a DID is returned as is, copied). */
int mdw_pds_resolve_actor(mdw_pds *p, const char *actor, char **did_out);

/*
** Rebuild input: walks the repositories of a PDS (com.atproto.sync.listRepos,
** every page) or of a relay (com.atproto.sync.listReposByCollection for each
** collection, then each repository's own PDS) and calls fn with one
** Jetstream-shaped event per record, JSON text:
**   {"did","time_us","kind":"commit","commit":{"rev","operation":"create",
**    "collection","rkey","record","cid"}}
** Every record of `collections` is emitted; of `post_collection` only posts
** whose JSON names "atr_" (the lightweight filter's rule) and whose record
** key time is at least min_post_us (listRecords is newest first, so the walk
** of a repository's posts stops at the first older one). rev is the
** repository's current revision (records carry none of their own). Inactive
** repositories are skipped and counted. fn != 0 stops the walk (returned).
*/
typedef int (*mdw_pds_event_fn)(void *ctx, const char *json, size_t len);
typedef struct mdw_pds_walk_stats {
    uint64_t repos, repos_total, repos_skipped, records, posts_seen;
} mdw_pds_walk_stats;
/* Called after each repository (and once at the start with repos = 0). */
typedef void (*mdw_pds_progress_fn)(void *ctx, const mdw_pds_walk_stats *st);
typedef struct mdw_pds_walk_opts {
    const char *base_url; /* the PDS or relay (NULL = pds_url) */
    int relay;            /* 1: listReposByCollection (relay); 0: listRepos (PDS) */
    const char *const *collections;
    size_t ncollections;
    const char *post_collection; /* NULL = none */
    int64_t min_post_us;
    int64_t time_us; /* the events' time_us (the rebuild's time) */
    mdw_pds_progress_fn progress;
    void *progress_ctx;
} mdw_pds_walk_opts;
int mdw_pds_walk(mdw_pds *p, const mdw_pds_walk_opts *o, mdw_pds_event_fn fn, void *ctx,
                 mdw_pds_walk_stats *st);

/* ---- pure helpers (public so the unit tests reach them) ---- */

/* A TID record key (13 chars + NUL) for time now_us, with a random clock id. */
void mdw_pds_tid(int64_t now_us, char out[14]);
/* base + "/xrpc/" + nsid + ("?" + query): caller frees. base may end in "/". */
char *mdw_pds_xrpc_url(const char *base, const char *nsid, const char *query);
/*
** Splits at://authority/collection/rkey (a valid AT-URI with all three
** parts, common/atname.h). Any out may be NULL; outputs are caller-freed.
** MDW_EMALFORMED when it is not of that form.
*/
int mdw_pds_parse_at_uri(const char *uri, char **authority, char **collection, char **rkey);
/*
** The one-line description of a failed XRPC call: "<nsid>: <Error>: <message>
** (HTTP <status>)" from the body {"error","message"} when it has them.
** Control characters are replaced and the message bounded. Returns the
** error name into name (may be NULL) for callers that branch on it.
*/
void mdw_pds_format_error(const char *nsid, long status, const char *body, size_t body_len,
                          char *out, size_t outlen, char *name, size_t namelen);
/*
** How long to wait before attempt `attempt` (1-based) after a 429/5xx:
** ratelimit_reset (unix seconds, 0 = absent) or retry_after_s (-1 = absent)
** win over exponential backoff (backoff_ms * 2^(attempt-1), +-25% jitter from
** jitter in [0,1)). Returns -1 when the wait would exceed max_wait_ms.
*/
int64_t mdw_pds_retry_delay_ms(int attempt, int64_t now_us, int64_t ratelimit_reset,
                               int64_t retry_after_s, int64_t backoff_ms, int64_t max_wait_ms,
                               double jitter);
/*
** Reads an app password file: it must be a regular file owned by the
** effective user with no group/other permission bits (else MDW_EDENIED and
** a message in err). Trailing whitespace is dropped; caller frees (and
** should wipe) *out.
*/
int mdw_pds_read_password_file(const char *path, char **out, char *err, size_t errlen);
/*
** Writes text to path atomically (temporary file, fsync, rename) with mode
** 0600, whatever the umask.
*/
int mdw_pds_write_private_file(const char *path, const char *text, size_t len);

#endif
