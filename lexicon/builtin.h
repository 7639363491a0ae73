/*
** lexicon/builtin.h — Meadow's own lexicon documents, compiled into the
** binary (lexicon/builtin_docs.c, generated from lexicon/<id>.json by
** scripts/embed-lexicons.sh; tests/test_lexicon.c proves they match byte for
** byte). Internal to lexicon/ and its tests.
*/
#ifndef MDW_LEXICON_BUILTIN_H
#define MDW_LEXICON_BUILTIN_H

#include <stddef.h>

struct lexicon__builtin {
    const char *name; /* file name under lexicon/, e.g. "net.atrarium.community.config.json" */
    const char *text;
    size_t len;
};

extern const struct lexicon__builtin lexicon__builtin_docs[];
extern const size_t lexicon__builtin_count;

#endif
