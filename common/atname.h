/*
** common/atname.h — the AT Protocol's names, one parser each: DID, handle,
** NSID, record key, TID, AT-URI, feed URI, and Meadow's community hashtag
** id (`atr_` + 8 lowercase hex digits). Every module that reads one of these
** from outside bytes calls these; nobody keeps a second copy.
**
** The syntax checks follow @atproto/syntax (isValidDid, isValidHandle,
** isValidNsid regex form, isValidRecordKey, isValidTid, isAtUriString
** strict), which the lexicon cross-check compares against, rather than a
** looser reading of the specs. They take (s, n) — n bytes, no NUL needed —
** and answer 1 (valid) or 0. Hand-written scanners, no regex: the processor
** checks every candidate record. Pure functions: thread-safe.
**
** TIDs: the syntax (mdw_tid_valid, the reference regex
** ^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$) admits 13
** base32-sortable characters whose first is at most 'j'; 13 x 5 = 65 bits,
** so that bounds the 65th bit only. The TID spec's layout says the top bit
** of the 64-bit integer is always 0 (then 53 bits of microseconds, 10 bits
** of clock id), so a first character 'c'..'j' is syntactically a TID but
** has no time: mdw_tid_time refuses it (atproto.com/specs/tid).
*/
#ifndef MDW_ATNAME_H
#define MDW_ATNAME_H

#include <stddef.h>
#include <stdint.h>

/* did:<method [a-z]+>:<[A-Za-z0-9._:%-]* not ending in ':' or '%'>, 7..MDW_MAX_DID_BYTES. */
int mdw_did_valid(const char *s, size_t n);
/* Labels [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?, at least two, the last starts with a letter.
 */
int mdw_handle_valid(const char *s, size_t n);
/* A DID (when it starts with "did:") or a handle. */
int mdw_at_identifier_valid(const char *s, size_t n);
/* Three or more segments, the first starting with a letter, the name [A-Za-z][A-Za-z0-9]*; 5..317.
 */
int mdw_nsid_valid(const char *s, size_t n);
/* [A-Za-z0-9._~:-]{1,512}, not "." or "..". */
int mdw_rkey_valid(const char *s, size_t n);

/* TID syntax (see above): 13 base32-sortable characters, the first '2'..'j'. */
int mdw_tid_valid(const char *s, size_t n);
/* The microseconds of a TID: 0, or MDW_EMALFORMED when s is not a TID or its top bit is set. */
int mdw_tid_time(const char *s, size_t n, int64_t *us);
/* The TID of (us mod 2^53, clock_id mod 1024): 13 characters and a NUL. */
void mdw_tid_make(int64_t us, unsigned clock_id, char out[14]);

/*
** isAtUriString (strict): at://authority[/collection[/rkey]], ASCII from a
** fixed set, authority a DID or handle, collection an NSID, rkey a record
** key, an optional #fragment that is a JSON pointer; no query, no trailing
** slash; at most 8192 bytes.
*/
int mdw_at_uri_valid(const char *s, size_t n);

/* An AT-URI's parts, pointing into the parsed string; a missing part has len 0. */
typedef struct mdw_at_uri {
    const char *authority, *collection, *rkey;
    size_t authority_len, collection_len, rkey_len;
} mdw_at_uri;
/*
** Splits a valid AT-URI without a fragment (mdw_at_uri_valid) into its
** parts. 0, or MDW_EMALFORMED.
*/
int mdw_at_uri_split(const char *s, size_t n, mdw_at_uri *out);

/*
** A Meadow feed URI: at://<owner DID>/app.bsky.feed.generator/<8 lowercase
** hex>. 0 with *owner_len (the owner is s + 5) and the hashtag id
** (NUL-terminated), or MDW_EMALFORMED.
*/
int mdw_feed_uri_parse(const char *s, size_t n, size_t *owner_len, char hashtag_id[9]);

/* The community hashtag id: exactly 8 lowercase hex digits -> 4 bytes. 0 or MDW_EMALFORMED. */
int mdw_tag_id_parse(const char *s, size_t n, uint8_t tag[4]);
/* A tag as facets and the tags array hold it: "atr_" + the id. */
int mdw_tag_parse(const char *s, size_t n, uint8_t tag[4]);
/* A hashtag as a community config holds it: "#atr_" + the id. */
int mdw_hashtag_parse(const char *s, size_t n, uint8_t tag[4]);

#endif
