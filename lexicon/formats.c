/*
** lexicon/formats.c — string formats of the lexicon language.
**
** Each check mirrors the @atproto/syntax function that @atproto/lexicon
** calls (isValidDid, isValidHandle, isAtUriString, ...), written as a scanner
** instead of a regex because the processor checks every candidate record.
** Where the reference uses JavaScript's idea of length (UTF-16 code units),
** the formats concerned only admit ASCII, so bytes and code units coincide.
*/
#include "lexicon/formats.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/banned.h"

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static int is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* Decodes one UTF-8 sequence; returns its length, *cp = -1 for an invalid byte. */
static size_t utf8_next(const char *s, size_t n, int32_t *cp)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    if (k <= 0) {
        *cp = -1;
        return 1;
    }
    *cp = c;
    return (size_t)k;
}

/* JavaScript's \s. */
static int js_space(int32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000 || c == 0xfeff;
}

/* ^\w+:(?://)?[^\s/][^\s]*$ */
int lexicon__is_uri(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '_'))
        i++;
    if (i == 0 || i >= n || s[i] != ':')
        return 0;
    i++;
    if (i + 1 < n && s[i] == '/' && s[i + 1] == '/')
        i += 2;
    if (i >= n || s[i] == '/')
        return 0;
    while (i < n) {
        int32_t c;
        i += utf8_next(s + i, n - i, &c);
        if (js_space(c))
            return 0;
    }
    return 1;
}

static int digits(const char *s, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}
static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
** YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), not "-00:00", at most 64
** bytes; as V8's Date parses it, day 00 and second 60 are refused and a day
** past the month's end rolls over; the UTC year must be 0..9999.
*/
int lexicon__parse_datetime(const char *s, size_t n, int64_t *unix_us)
{
    if (n > 64 || n < 20)
        return 0;
    if (n >= 6 && memcmp(s + n - 6, "-00:00", 6) == 0)
        return 0;
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
        !digits(s + 17, 2))
        return 0;
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + num2(s + 2);
    int mon = num2(s + 5), day = num2(s + 8), hh = num2(s + 11), mi = num2(s + 14),
        ss = num2(s + 17);
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 59)
        return 0;
    size_t i = 19;
    int64_t frac_us = 0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && is_digit((unsigned char)s[i])) {
            if (i - f0 < 6) /* microseconds, the rest truncated */
                frac_us = frac_us * 10 + (s[i] - '0');
            i++;
        }
        if (i == f0)
            return 0;
        for (size_t k = i - f0; k < 6; k++)
            frac_us *= 10;
    }
    int off = 0;
    if (i + 1 == n && s[i] == 'Z') {
        off = 0;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) &&
               s[i + 3] == ':' && digits(s + i + 4, 2)) {
        int oh = num2(s + i + 1), om = num2(s + i + 4);
        if (oh > 23 || om > 59)
            return 0;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
    } else {
        return 0;
    }
    int64_t t = mdw_days_from_civil(year, mon, day) * 86400 + hh * 3600 + mi * 60 + ss - off;
    int64_t lo = mdw_days_from_civil(0, 1, 1) * 86400,
            hi = mdw_days_from_civil(10000, 1, 1) * 86400;
    if (t < lo || t >= hi)
        return 0;
    if (unix_us)
        *unix_us = t * 1000000 + frac_us;
    return 1;
}

int lexicon__is_datetime(const char *s, size_t n)
{
    return lexicon__parse_datetime(s, n, NULL);
}

/* ---- CID strings (multiformats CID.parse) ---- */

static int b58_val(unsigned char c)
{
    static const char a[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}
static int b36_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    return -1;
}

/* base-x decoding (leading zero digits become zero bytes). out holds at least n bytes. */
static int basex_decode(const char *s, size_t n, int base, int (*val)(unsigned char), uint8_t *out,
                        size_t *outlen)
{
    size_t zeros = 0;
    while (zeros < n && val((unsigned char)s[zeros]) == 0)
        zeros++;
    uint8_t b256[160];
    size_t size = sizeof b256, length = 0;
    memset(b256, 0, sizeof b256);
    for (size_t p = zeros; p < n; p++) {
        int v = val((unsigned char)s[p]);
        if (v < 0)
            return 0;
        unsigned carry = (unsigned)v;
        size_t i = 0;
        for (size_t it = size; (carry != 0 || i < length) && it > 0; it--, i++) {
            carry += (unsigned)base * b256[it - 1];
            b256[it - 1] = (uint8_t)(carry % 256);
            carry /= 256;
        }
        if (carry)
            return 0;
        length = i;
    }
    size_t it = size - length;
    while (it < size && b256[it] == 0)
        it++;
    if (zeros + (size - it) > n)
        return 0;
    memset(out, 0, zeros);
    memcpy(out + zeros, b256 + it, size - it);
    *outlen = zeros + (size - it);
    return 1;
}

/* RFC 4648 base32 lowercase, trailing '=' ignored, leftover bits must be zero. */
static int base32_decode(const char *s, size_t n, uint8_t *out, size_t *outlen)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    unsigned bits = 0, buffer = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int v = (c >= 'a' && c <= 'z') ? c - 'a' : (c >= '2' && c <= '7') ? c - '2' + 26 : -1;
        if (v < 0)
            return 0;
        buffer = (buffer << 5) | (unsigned)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[w++] = (uint8_t)(buffer >> bits);
        }
    }
    if (bits >= 5 || ((buffer << (8 - bits)) & 0xff) != 0)
        return 0;
    *outlen = w;
    return 1;
}

static int varint(const uint8_t *b, size_t n, size_t *off, uint64_t *v)
{
    uint64_t r = 0;
    unsigned shift = 0;
    for (;;) {
        if (*off >= n || shift > 63)
            return 0;
        uint8_t c = b[(*off)++];
        r |= (uint64_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80))
            break;
    }
    *v = r;
    return 1;
}

int lexicon__is_cid(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    uint8_t bytes[160];
    size_t len = 0;
    int ok;
    switch (s[0]) {
    case 'Q':
        ok = basex_decode(s, n, 58, b58_val, bytes, &len);
        break;
    case 'z':
        ok = basex_decode(s + 1, n - 1, 58, b58_val, bytes, &len);
        break;
    case 'b':
        ok = base32_decode(s + 1, n - 1, bytes, &len);
        break;
    case 'k':
        ok = basex_decode(s + 1, n - 1, 36, b36_val, bytes, &len);
        break;
    default:
        return 0;
    }
    if (!ok)
        return 0;
    size_t off = 0;
    uint64_t version, codec, mhcode, dsize;
    if (!varint(bytes, len, &off, &version))
        return 0;
    if (version == 18) {
        version = 0;
        off = 0;
    } else if (!varint(bytes, len, &off, &codec)) {
        return 0;
    }
    if (version > 1)
        return 0;
    if (!varint(bytes, len, &off, &mhcode) || !varint(bytes, len, &off, &dsize))
        return 0;
    if (dsize != len - off)
        return 0;
    return version == 1 || s[0] == 'Q';
}

/* ---- BCP 47 language tags: the reference's regex, through PCRE2 ---- */

static pcre2_code *lang_re;
static pthread_once_t lang_once = PTHREAD_ONCE_INIT;

static void lang_compile(void)
{
    static const char pat[] =
        "^((?<grandfathered>(en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|"
        "i-mingo|i-navajo|i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE)|(art-lojban|"
        "cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang))|((?<language>("
        "[A-Za-z]{2,3}(-(?<extlang>[A-Za-z]{3}(-[A-Za-z]{3}){0,2}))?)|[A-Za-z]{4}|[A-Za-z]{5,8})("
        "-(?<script>[A-Za-z]{4}))?(-(?<region>[A-Za-z]{2}|[0-9]{3}))?(-(?<variant>[A-Za-z0-9]{5,"
        "8}|[0-9][A-Za-z0-9]{3}))*(-(?<extension>[0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+))*(-(?<"
        "privateUseA>[xX](-[A-Za-z0-9]{1,8})+))?)|(?<privateUseB>[xX](-[A-Za-z0-9]{1,8})+))$";
    int err;
    PCRE2_SIZE off;
    lang_re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY, &err,
                            &off, NULL);
    if (lang_re)
        pcre2_jit_compile(lang_re, PCRE2_JIT_COMPLETE);
}

int lexicon__is_language(const char *s, size_t n)
{
    pthread_once(&lang_once, lang_compile);
    if (!lang_re || n > 256)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(lang_re, NULL);
    int rc = pcre2_match(lang_re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

int lexicon__base64_len(const char *s, size_t n, size_t *outlen)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
                : (c >= 'a' && c <= 'z') ? c - 'a' + 26
                : is_digit(c)            ? c - '0' + 52
                : c == '+'               ? 62
                : c == '/'               ? 63
                                         : -1;
        if (v < 0)
            return 0;
    }
    *outlen = n / 4 * 3 + (n % 4 == 2 ? 1 : n % 4 == 3 ? 2 : 0);
    return 1;
}

size_t lexicon__utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        int32_t c;
        i += utf8_next(s + i, n - i, &c);
        units += c >= 0x10000 ? 2 : 1;
    }
    return units;
}

/*
** utf8proc gives the UAX #29 breaks of its Unicode version, which predates
** rule GB9c (Unicode 15.1): a consonant, then extends and linkers with at
** least one linker, does not break before the next consonant. The reference
** (Node's ICU) applies it, so it is added here: conj tracks that sequence.
*/
size_t lexicon__graphemes(const char *s, size_t n, size_t limit)
{
    size_t count = 0;
    utf8proc_int32_t state = 0, prev = -1;
    int conj = 0; /* 0 none, 1 after a consonant, 2 after a consonant and a linker */
    for (size_t i = 0; i < n;) {
        int32_t c;
        i += utf8_next(s + i, n - i, &c);
        if (c < 0)
            c = 0xfffd;
        int brk = prev < 0 || utf8proc_grapheme_break_stateful(prev, c, &state);
        int cls = lexicon__incb(c);
        if (brk && conj == 2 && cls == LEXICON_INCB_CONSONANT)
            brk = 0;
        if (cls == LEXICON_INCB_CONSONANT)
            conj = 1;
        else if (conj && cls == LEXICON_INCB_LINKER)
            conj = 2;
        else if (!(conj && cls == LEXICON_INCB_EXTEND))
            conj = 0;
        if (brk && ++count > limit)
            return count;
        prev = c;
    }
    return count;
}
