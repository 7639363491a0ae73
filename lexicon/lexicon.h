/*
** lexicon/lexicon.h — lexicon documents and the record validator.
**
** The validator is generic: it loads lexicon JSON documents (lexicon version
** 1) at start and validates data against their definitions; nothing is
** hand-written per record type. Meadow's own documents ship in lexicon/<id>.json
** (net.atrarium.community.config, .community.membership,
** net.atrarium.moderation.action, app.bsky.feed.generator and
** app.bsky.feed.post, with the definitions they refer to). Application rules (hashtag form, feedMix
*sum, immutable hashtag) are
** checked apart (mdw_lexicon_app_check) and reported as such.
**
** A loaded mdw_lexicon is immutable: share it between threads freely.
** Errors are written to err as one line naming the path, in the words of
** @atproto/lexicon, e.g. "Record/target/uri must be a valid at-uri".
*/
#ifndef MDW_LEXICON_H
#define MDW_LEXICON_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

typedef struct mdw_lexicon mdw_lexicon;

/* Loads every *.json lexicon document in dir. MDW_EMALFORMED on a bad document. */
int mdw_lexicon_load_dir(mdw_lexicon **out, const char *dir);
/* Loads Meadow's own documents (compiled into the binary, so `meadow` runs anywhere). */
int mdw_lexicon_load_builtin(mdw_lexicon **out);
void mdw_lexicon_free(mdw_lexicon *lex);

/*
** Building a lexicon from several sources (e.g. the builtin documents plus a
** directory of test documents). Call these before sharing the lexicon; each
** resolves every reference once its documents are in, so add a document
** after the ones it refers to. MDW_EMALFORMED on a bad or duplicate
** document or an unresolved reference (logged); free the lexicon then.
*/
int mdw_lexicon_new(mdw_lexicon **out);
int mdw_lexicon_add_builtin(mdw_lexicon *lex);
int mdw_lexicon_add_dir(mdw_lexicon *lex, const char *dir);
int mdw_lexicon_add_doc(mdw_lexicon *lex, const char *json, size_t len, const char *origin);

/* 1 when the lexicon defines a record type nsid (e.g. to tell unknown collections apart). */
int mdw_lexicon_has_record(const mdw_lexicon *lex, const char *nsid);

/*
** Validates a record (a JSON object) against the main `record` definition of
** the lexicon `nsid`. 0 = valid; MDW_EINVALID with err filled; MDW_ENOTFOUND
** when no document defines nsid.
*/
int mdw_lexicon_validate_record(const mdw_lexicon *lex, const char *nsid, const cJSON *record,
                                char *err, size_t errlen);

/*
** Parses a datetime exactly as the validator accepts it (format datetime,
** strict form): microseconds since 1970, fraction truncated. A day past
** the month's end rolls over as in JavaScript ("2024-02-30" is 1 March),
** which the reference accepts and common/clock.h's mdw_time_parse refuses;
** use this for a record's createdAt so every valid record has an instant.
** 0, or MDW_EMALFORMED.
*/
int mdw_lexicon_parse_datetime(const char *s, int64_t *unix_us);

/*
** Application rules for Meadow's records, beyond what lexicon can say: the
** config hashtag is "#atr_" + 8 lowercase hex digits; feedMix sums to 100.
** 0 = fine; MDW_EINVALID with err filled ("application rule: ...").
*/
int mdw_lexicon_app_check(const char *nsid, const cJSON *record, char *err, size_t errlen);

#endif
