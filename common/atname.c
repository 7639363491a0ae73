/*
** common/atname.c — see atname.h. The syntax checks mirror the
** @atproto/syntax functions @atproto/lexicon calls, written as scanners; the
** formats concerned only admit ASCII, so bytes and UTF-16 code units (the
** reference's idea of length) coincide.
*/
#include "common/atname.h"

#include <string.h>

#include <utf8proc.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/banned.h"

/* Character classes of the names: one table lookup per byte. */
enum { C_ALPHA = 1, C_DIGIT = 2 };
static const unsigned char cclass[256] = {
    ['0' ... '9'] = C_DIGIT, ['A' ... 'Z'] = C_ALPHA, ['a' ... 'z'] = C_ALPHA};
#define is_alpha(c) (cclass[(unsigned char)(c)] & C_ALPHA)
#define is_alnum(c) (cclass[(unsigned char)(c)] != 0)

/* did:<method [a-z]+>:<[a-zA-Z0-9._:%-]* ending in [a-zA-Z0-9._-]>, at most MDW_MAX_DID_BYTES. */
int mdw_did_valid(const char *s, size_t n)
{
    if (n < 7 || n > MDW_MAX_DID_BYTES || memcmp(s, "did:", 4) != 0)
        return 0;
    size_t i = 4;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i == 4 || i >= n || s[i] != ':')
        return 0;
    i++;
    if (i >= n)
        return 0;
    for (size_t j = i; j < n; j++) {
        char c = s[j];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '%' || c == '-';
        if (!ok)
            return 0;
    }
    return s[n - 1] != ':' && s[n - 1] != '%';
}

/* Labels [a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?, at least two, TLD starts with a letter. */
int mdw_handle_valid(const char *s, size_t n)
{
    if (n > 253 || n == 0)
        return 0;
    size_t start = 0, labels = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (!(is_alnum(c) || c == '-'))
                return 0;
            continue;
        }
        size_t len = i - start;
        if (len < 1 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        if (i == n && !is_alpha((unsigned char)s[start]))
            return 0;
        labels++;
        start = i + 1;
    }
    return labels >= 2;
}

int mdw_at_identifier_valid(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n >= 4 && memcmp(s, "did:", 4) == 0)
        return mdw_did_valid(s, n);
    return mdw_handle_valid(s, n);
}

/*
** The regex form of @atproto/syntax (validateNsidRegex): first segment
** starts with a letter, middle segments alphanumeric at both ends (hyphens
** inside), the name segment a letter then letters and digits; 5..317 bytes.
*/
int mdw_nsid_valid(const char *s, size_t n)
{
    if (n < 5 || n > 317)
        return 0;
    size_t start = 0, seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (!(is_alnum(c) || c == '-'))
                return 0;
            continue;
        }
        size_t len = i - start;
        if (len < 1 || len > 63)
            return 0;
        const char *p = s + start;
        if (i == n) { /* name segment */
            if (!is_alpha((unsigned char)p[0]))
                return 0;
            for (size_t k = 1; k < len; k++)
                if (!is_alnum((unsigned char)p[k]))
                    return 0;
        } else {
            if (seg == 0 && !is_alpha((unsigned char)p[0]))
                return 0;
            if (p[0] == '-' || p[len - 1] == '-')
                return 0;
        }
        seg++;
        start = i + 1;
    }
    return seg >= 3;
}

int mdw_rkey_valid(const char *s, size_t n)
{
    if (n < 1 || n > 512)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_alnum(c) || c == '_' || c == '~' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Whether decodeURIComponent() accepts s: %XX escapes forming valid UTF-8. */
static int percent_decodes(const char *s, size_t n)
{
    unsigned char buf[4];
    size_t need = 0, have = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            if (need)
                return 0;
            continue;
        }
        if (i + 2 >= n)
            return 0;
        int h = mdw_hex_value((unsigned char)s[i + 1]), l = mdw_hex_value((unsigned char)s[i + 2]);
        if (h < 0 || l < 0)
            return 0;
        i += 2;
        unsigned char b = (unsigned char)(h * 16 + l);
        if (!need) {
            if (b < 0x80)
                continue;
            need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
            if (!need)
                return 0;
            have = 0;
        }
        buf[have++] = b;
        if (have == need) {
            utf8proc_int32_t c;
            if (utf8proc_iterate(buf, (utf8proc_ssize_t)need, &c) != (utf8proc_ssize_t)need)
                return 0;
            need = 0;
        }
    }
    return need == 0;
}

#define ALNUM_CHARS ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1
/* INVALID_CHAR_REGEXP's complement: the bytes an AT-URI may hold. */
static const unsigned char at_uri_char[256] = {
    ALNUM_CHARS, ['.'] = 1, ['_'] = 1,  ['~'] = 1, [':'] = 1, ['@'] = 1,  ['!'] = 1,
    ['$'] = 1,   ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,  ['+'] = 1,
    [','] = 1,   [';'] = 1, ['='] = 1,  ['%'] = 1, ['/'] = 1, ['\\'] = 1, ['['] = 1,
    [']'] = 1,   ['#'] = 1, ['?'] = 1,  ['-'] = 1};
/* BASIC_JSON_POINTER_REGEXP's characters, for the fragment. */
static const unsigned char json_pointer_char[256] = {
    ALNUM_CHARS, ['.'] = 1,  ['_'] = 1, ['~'] = 1, [':'] = 1, ['@'] = 1, ['!'] = 1, ['$'] = 1,
    ['&'] = 1,   ['\''] = 1, [')'] = 1, ['('] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1,
    ['='] = 1,   ['%'] = 1,  ['['] = 1, [']'] = 1, ['/'] = 1, ['-'] = 1};

/*
** isAtUriString (strict): at://authority[/collection[/rkey]], ASCII from a
** fixed set, authority a DID or handle, collection an NSID, rkey a record
** key, an optional #fragment that is a JSON pointer; no query, no trailing
** slash.
*/
static int at_uri_scan(const char *s, size_t n, mdw_at_uri *p, int *fragment)
{
    memset(p, 0, sizeof *p);
    *fragment = 0;
    if (n > 8192 || n < 5 || memcmp(s, "at://", 5) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!at_uri_char[(unsigned char)s[i]])
            return 0;
    size_t i = 5, a0 = i;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    if (i == a0 || !mdw_at_identifier_valid(s + a0, i - a0))
        return 0;
    p->authority = s + a0;
    p->authority_len = i - a0;
    if (i < n && s[i] == '/') {
        size_t c0 = ++i;
        while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
            i++;
        if (i == c0) /* "at://x/" (trailing slash) or "at://x//" */
            return 0;
        if (!mdw_nsid_valid(s + c0, i - c0))
            return 0;
        p->collection = s + c0;
        p->collection_len = i - c0;
        if (i < n && s[i] == '/') {
            size_t r0 = ++i;
            while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
                i++;
            if (i == r0 || (i < n && s[i] == '/'))
                return 0;
            if (!mdw_rkey_valid(s + r0, i - r0))
                return 0;
            p->rkey = s + r0;
            p->rkey_len = i - r0;
        }
    }
    if (i < n && s[i] == '?')
        return 0;
    if (i < n && s[i] == '#') {
        const char *h = s + i + 1;
        size_t hn = n - i - 1;
        if (hn == 0 || h[0] != '/')
            return 0;
        for (size_t k = 0; k < hn; k++)
            if (!json_pointer_char[(unsigned char)h[k]])
                return 0;
        if (!percent_decodes(h, hn))
            return 0;
        *fragment = 1;
        i = n;
    }
    return i == n;
}

int mdw_at_uri_valid(const char *s, size_t n)
{
    mdw_at_uri p;
    int frag;
    return at_uri_scan(s, n, &p, &frag);
}

int mdw_at_uri_split(const char *s, size_t n, mdw_at_uri *out)
{
    int frag;
    if (!at_uri_scan(s, n, out, &frag) || frag) {
        memset(out, 0, sizeof *out);
        return MDW_EMALFORMED;
    }
    return 0;
}

/* ---- TIDs ---- */

static const char s32[] = "234567abcdefghijklmnopqrstuvwxyz";

/* base32-sortable digit values plus one; 0 for any other byte. */
static const unsigned char s32_p1[256] = {
    ['2'] = 1,  ['3'] = 2,  ['4'] = 3,  ['5'] = 4,  ['6'] = 5,  ['7'] = 6,  ['a'] = 7,  ['b'] = 8,
    ['c'] = 9,  ['d'] = 10, ['e'] = 11, ['f'] = 12, ['g'] = 13, ['h'] = 14, ['i'] = 15, ['j'] = 16,
    ['k'] = 17, ['l'] = 18, ['m'] = 19, ['n'] = 20, ['o'] = 21, ['p'] = 22, ['q'] = 23, ['r'] = 24,
    ['s'] = 25, ['t'] = 26, ['u'] = 27, ['v'] = 28, ['w'] = 29, ['x'] = 30, ['y'] = 31, ['z'] = 32};

static int s32_val(char c)
{
    return (int)s32_p1[(unsigned char)c] - 1;
}

int mdw_tid_valid(const char *s, size_t n)
{
    if (n != 13 || s32_val(s[0]) < 0 || s32_val(s[0]) > 15)
        return 0;
    for (size_t i = 1; i < 13; i++)
        if (s32_val(s[i]) < 0)
            return 0;
    return 1;
}

int mdw_tid_time(const char *s, size_t n, int64_t *us)
{
    /*
    ** The first character carries bits 64..60 of the 65 the 13 characters
    ** hold: bit 64 must be 0 (the syntax) and so must bit 63, the integer's
    ** top bit (the layout): its value is below 8 ('2'..'b').
    */
    if (n != 13 || s32_val(s[0]) < 0 || s32_val(s[0]) >= 8)
        return MDW_EMALFORMED;
    uint64_t v = 0;
    for (size_t i = 0; i < 13; i++) {
        int d = s32_val(s[i]);
        if (d < 0)
            return MDW_EMALFORMED;
        v = v << 5 | (uint64_t)d;
    }
    *us = (int64_t)(v >> 10);
    return 0;
}

void mdw_tid_make(int64_t us, unsigned clock_id, char out[14])
{
    uint64_t v = ((uint64_t)us & ((1ull << 53) - 1)) << 10 | (clock_id & 0x3ffu);
    for (int i = 12; i >= 0; i--) {
        out[i] = s32[v & 31];
        v >>= 5;
    }
    out[13] = '\0';
}

/* ---- feed URIs and community hashtags ---- */

int mdw_feed_uri_parse(const char *s, size_t n, size_t *owner_len, char hashtag_id[9])
{
    static const char coll[] = "/app.bsky.feed.generator/";
    uint8_t tag[4];
    if (n < 5 || memcmp(s, "at://", 5) != 0)
        return MDW_EMALFORMED;
    const char *owner = s + 5;
    const char *slash = memchr(owner, '/', n - 5);
    if (!slash)
        return MDW_EMALFORMED;
    size_t olen = (size_t)(slash - owner);
    if (!mdw_did_valid(owner, olen))
        return MDW_EMALFORMED;
    size_t rest = n - 5 - olen;
    if (rest != sizeof coll - 1 + 8 || memcmp(slash, coll, sizeof coll - 1) != 0)
        return MDW_EMALFORMED;
    const char *id = slash + sizeof coll - 1;
    if (mdw_tag_id_parse(id, 8, tag))
        return MDW_EMALFORMED;
    memcpy(hashtag_id, id, 8);
    hashtag_id[8] = '\0';
    *owner_len = olen;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int mdw_tag_id_parse(const char *s, size_t n, uint8_t tag[4])
{
    if (n != 8)
        return MDW_EMALFORMED;
    for (int i = 0; i < 4; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MDW_EMALFORMED;
        tag[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int mdw_tag_parse(const char *s, size_t n, uint8_t tag[4])
{
    if (n < 4 || memcmp(s, "atr_", 4) != 0)
        return MDW_EMALFORMED;
    return mdw_tag_id_parse(s + 4, n - 4, tag);
}

int mdw_hashtag_parse(const char *s, size_t n, uint8_t tag[4])
{
    if (n < 1 || s[0] != '#')
        return MDW_EMALFORMED;
    return mdw_tag_parse(s + 1, n - 1, tag);
}
