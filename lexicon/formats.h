/*
** lexicon/formats.h — the lexicon string formats, internal to lexicon/.
**
** Each lexicon__is_<format>(s, n) answers whether the n bytes at s are a
** valid value of that format, following @atproto/syntax (the reference the
** cross-check compares against) rather than a looser reading of the spec, so
** both sides agree. Hand-written scanners, no regex, except the BCP 47
** language tag (PCRE2, compiled once). Pure functions: thread-safe.
** The formats that are AT Protocol names (did, handle, at-identifier, nsid,
** at-uri, tid, record-key) are common/atname.h's parsers, not copies here.
*/
#ifndef MDW_LEXICON_FORMATS_H
#define MDW_LEXICON_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* Strict atproto datetime (RFC 3339 and ISO 8601 with a zone), as V8 parses it. */
int lexicon__is_datetime(const char *s, size_t n);
/* The same, giving the instant in microseconds since 1970 (fraction truncated to µs). */
int lexicon__parse_datetime(const char *s, size_t n, int64_t *unix_us);
int lexicon__is_cid(const char *s, size_t n);
int lexicon__is_uri(const char *s, size_t n);
int lexicon__is_language(const char *s, size_t n);
/* Standard base64, padding optional, leftover bits ignored (as Node's Buffer); *outlen = size. */
int lexicon__base64_len(const char *s, size_t n, size_t *outlen);

/* Number of UTF-16 code units of UTF-8 text (invalid bytes count one each). */
size_t lexicon__utf16_len(const char *s, size_t n);
/*
** Grapheme clusters of UTF-8 text (UAX #29 via utf8proc). Stops counting
** once past limit (returns limit + 1) so a long string costs no more than
** needed; pass SIZE_MAX to count all.
*/
size_t lexicon__graphemes(const char *s, size_t n, size_t limit);

/* Indic_Conjunct_Break class of a code point (lexicon/incb.c, generated), for rule GB9c. */
enum { LEXICON_INCB_NONE, LEXICON_INCB_CONSONANT, LEXICON_INCB_EXTEND, LEXICON_INCB_LINKER };
int lexicon__incb(int32_t c);

#endif
