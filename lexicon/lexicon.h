/*
** lexicon/lexicon.h — lexicon documents and the record validator.
**
** The validator is generic: it loads lexicon JSON documents (lexicon version
** 1) at start and validates data against their definitions; nothing is
** hand-written per record type. Meadow's own documents ship in lexicon/*.json
** (net.atrarium.community.config, .community.membership,
** net.atrarium.moderation.action, app.bsky.feed.generator and what it refers
** to). Application rules (hashtag form, feedMix sum, immutable hashtag) are
** checked apart (mdw_lexicon_app_check) and reported as such.
**
** A loaded mdw_lexicon is immutable: share it between threads freely.
** Errors are written to err as one line naming the path, e.g.
** "Record/target/uri must be an at-uri".
*/
#ifndef MDW_LEXICON_H
#define MDW_LEXICON_H

#include <stddef.h>

#include <cJSON.h>

typedef struct mdw_lexicon mdw_lexicon;

/* Loads every *.json lexicon document in dir. MDW_EMALFORMED on a bad document. */
int mdw_lexicon_load_dir(mdw_lexicon **out, const char *dir);
/* Loads Meadow's own documents (compiled into the binary, so `meadow` runs anywhere). */
int mdw_lexicon_load_builtin(mdw_lexicon **out);
void mdw_lexicon_free(mdw_lexicon *lex);

/*
** Validates a record (a JSON object) against the main `record` definition of
** the lexicon `nsid`. 0 = valid; MDW_EINVALID with err filled; MDW_ENOTFOUND
** when no document defines nsid.
*/
int mdw_lexicon_validate_record(const mdw_lexicon *lex, const char *nsid, const cJSON *record,
                                char *err, size_t errlen);

/*
** Application rules for Meadow's records, beyond what lexicon can say: the
** config hashtag is "#atr_" + 8 lowercase hex digits; feedMix sums to 100.
** 0 = fine; MDW_EINVALID with err filled ("application rule: ...").
*/
int mdw_lexicon_app_check(const char *nsid, const cJSON *record, char *err, size_t errlen);

#endif
