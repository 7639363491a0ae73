/*
** common/json_arena.c — see json_arena.h.
**
** The parser accepts exactly what Debian 12's cJSON (1.7.15 with the fix
** for CVE-2023-26819: numbers of any length) accepts in
** cJSON_ParseWithLengthOpts (require_null_terminated 0) and builds the
** same tree; the
** differences are speed and where the memory comes from. What it copies
** from cJSON, on purpose (tests/fuzz/fuzz_json_arena.c checks every input
** against the installed libcjson):
**  - whitespace is any byte <= 32; a UTF-8 BOM is skipped when at least
**    five bytes follow the start; after the root value anything may follow;
**  - a number is the longest run of [0-9+-eE.] read by strtod, which must
**    take at least one byte (so "1e" is 1 followed by "e", and "01" is 1);
**    valueint saturates at INT_MIN/INT_MAX;
**  - a string is copied byte for byte (control bytes and invalid UTF-8
**    included) with \b \f \n \r \t \" \\ \/ and \uXXXX unescaped; a \u
**    whose four characters are not all hex digits is U+0000; a low
**    surrogate alone, or a high one not followed by \u and a low one, fails;
**  - duplicate keys are kept; nesting deeper than CJSON_NESTING_LIMIT fails.
** Only the error position may differ from cJSON's: both point at or after
** the first byte that cannot start or continue the value.
*/
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_arena.h"
#include "common/mem.h"
#include "common/banned.h"

#define CHUNK_BYTES    (64 * 1024) /* holds the tree of a ~5 KB event; bigger ones add chunks */
#define KEEP_MAX_BYTES (8 * 1024 * 1024) /* most a reset keeps (in one chunk) */

#ifndef CJSON_NESTING_LIMIT
#define CJSON_NESTING_LIMIT 1000
#endif

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk;

struct mdw_json_arena {
    chunk *head; /* the chunk being filled; the first chunk is the last in the list */
    size_t bytes;
};

static chunk *chunk_new(size_t size, chunk *next)
{
    chunk *c = xmalloc(sizeof *c + size);
    c->next = next;
    c->size = size;
    c->used = 0;
    return c;
}

static void *alloc(mdw_json_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk *c = a->head;
    if (c->size - c->used < n) {
        size_t size = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        c = a->head = chunk_new(size, a->head);
        a->bytes += size;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void *mdw_json_arena_alloc(mdw_json_arena *a, size_t n)
{
    return alloc(a, n);
}

mdw_json_arena *mdw_json_arena_new(void)
{
    mdw_json_arena *a = xcalloc(1, sizeof *a);
    a->head = chunk_new(CHUNK_BYTES, NULL);
    a->bytes = CHUNK_BYTES;
    return a;
}

void mdw_json_arena_free(mdw_json_arena *a)
{
    if (!a)
        return;
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void mdw_json_arena_reset(mdw_json_arena *a)
{
    if (a->head->next) {
        /*
        ** Several chunks: the arena holds more than one tree at a time (the
        ** processor's decoder keeps a claim's worth). Keep one chunk of the
        ** size used, so the next fill of the same size allocates nothing;
        ** past KEEP_MAX_BYTES (a run of huge events) keep only CHUNK_BYTES.
        */
        size_t keep = a->bytes <= KEEP_MAX_BYTES ? a->bytes : CHUNK_BYTES;
        for (chunk *c = a->head, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        a->head = chunk_new(keep, NULL);
        a->bytes = keep;
    }
    a->head->used = 0;
}

size_t mdw_json_arena_bytes(const mdw_json_arena *a)
{
    return a->bytes;
}

/* ---- the parser ---- */

typedef struct parser {
    mdw_json_arena *a;
    const unsigned char *p, *end;
    size_t depth;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && *ps->p <= 32)
        ps->p++;
}

static cJSON *node(parser *ps)
{
    cJSON *n = alloc(ps->a, sizeof *n);
    memset(n, 0, sizeof *n);
    return n;
}

/* cJSON's parse_hex4: the value of four hex digits, 0 if any is not one. */
static unsigned hex4(const unsigned char *s)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return 0;
        h = (h << 4) | d;
    }
    return h;
}

/* \uXXXX (or a surrogate pair) at s, the string's closing quote at q: bytes read, 0 on failure. */
static size_t utf16_escape(const unsigned char *s, const unsigned char *q, unsigned char **out)
{
    if (q - s < 6)
        return 0;
    unsigned long cp = hex4(s + 2);
    size_t used = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return 0;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        const unsigned char *s2 = s + 6;
        if (q - s2 < 6 || s2[0] != '\\' || s2[1] != 'u')
            return 0;
        unsigned lo = hex4(s2 + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        used = 12;
    }
    unsigned char *o = *out;
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xC0 | (cp >> 6));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (cp >> 12));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (cp >> 18));
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *out = o;
    return used;
}

/* The string at ps->p (its opening quote), unescaped into the arena; NULL on failure. */
static char *parse_string(parser *ps)
{
    const unsigned char *s = ps->p + 1, *end = ps->end;
    if (ps->p >= end || *ps->p != '"')
        return NULL;
    const unsigned char *q = memchr(s, '"', (size_t)(end - s));
    if (!q)
        return NULL;
    const unsigned char *bs = memchr(s, '\\', (size_t)(q - s));
    if (!bs) { /* no escapes: one copy */
        size_t n = (size_t)(q - s);
        char *o = alloc(ps->a, n + 1);
        memcpy(o, s, n);
        o[n] = '\0';
        ps->p = q + 1;
        return o;
    }
    /* The closing quote is the first one not taken by a backslash (cJSON's first pass). */
    q = s;
    while (q < end && *q != '"') {
        if (*q == '\\') {
            if (q + 1 >= end)
                return NULL;
            q++;
        }
        q++;
    }
    if (q >= end)
        return NULL;
    unsigned char *o = alloc(ps->a, (size_t)(q - s) + 1), *w = o;
    const unsigned char *r = s;
    while (r < q) {
        if (*r != '\\') {
            *w++ = *r++;
            continue;
        }
        size_t used = 2;
        switch (r[1]) {
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case '"':
        case '\\':
        case '/':
            *w++ = r[1];
            break;
        case 'u':
            if (!(used = utf16_escape(r, q, &w))) {
                ps->p = r;
                return NULL;
            }
            break;
        default:
            ps->p = r;
            return NULL;
        }
        r += used;
    }
    *w = '\0';
    ps->p = q + 1;
    return (char *)o;
}

static int parse_number(parser *ps, cJSON *n)
{
    const unsigned char *p = ps->p;
    size_t len = 0, left = (size_t)(ps->end - p);
    int plain = 1; /* only digits after an optional leading '-' */
    for (; len < left; len++) {
        unsigned char c = p[len];
        if (c >= '0' && c <= '9')
            continue;
        if (c != '+' && c != '-' && c != 'e' && c != 'E' && c != '.')
            break;
        plain &= c == '-' && len == 0;
    }
    double d;
    size_t used;
    size_t digits = len - (len && p[0] == '-');
    if (plain && digits >= 1 && digits <= 15) {
        /* Exact in a double, so the value strtod gives, without its locale work. */
        int64_t v = 0;
        for (size_t i = len - digits; i < len; i++)
            v = v * 10 + (p[i] - '0');
        d = p[0] == '-' ? -(double)v : (double)v;
        used = len;
    } else {
        char small[64], *buf = len < sizeof small ? small : xmalloc(len + 1), *after = NULL;
        memcpy(buf, p, len);
        buf[len] = '\0';
        d = strtod(buf, &after);
        used = (size_t)(after - buf);
        if (buf != small)
            free(buf);
        if (used == 0)
            return -1;
    }
    n->type = cJSON_Number;
    n->valuedouble = d;
    n->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    ps->p += used;
    return 0;
}

static int parse_value(parser *ps, cJSON *n);

/* '[' or '{' at ps->p: the elements (members: key then ':' then value), comma separated. */
static int parse_container(parser *ps, cJSON *n, int object)
{
    if (ps->depth >= CJSON_NESTING_LIMIT)
        return -1;
    ps->depth++;
    unsigned char close = object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    cJSON *head = NULL, *last = NULL;
    if (ps->p < ps->end && *ps->p == close)
        goto done;
    for (;;) {
        cJSON *it = node(ps);
        if (!head)
            head = it;
        else {
            last->next = it;
            it->prev = last;
        }
        last = it;
        if (object) {
            if (!(it->string = parse_string(ps)))
                return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return -1;
            ps->p++;
            skip_ws(ps);
        }
        if (parse_value(ps, it))
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        break;
    }
    if (ps->p >= ps->end || *ps->p != close)
        return -1;
done:
    ps->depth--;
    ps->p++;
    if (head)
        head->prev = last;
    n->type = object ? cJSON_Object : cJSON_Array;
    n->child = head;
    return 0;
}

static int parse_value(parser *ps, cJSON *n)
{
    const unsigned char *p = ps->p;
    size_t left = (size_t)(ps->end - p);
    if (left == 0)
        return -1;
    switch (*p) {
    case '"':
        n->type = cJSON_String;
        return (n->valuestring = parse_string(ps)) ? 0 : -1;
    case '{':
        return parse_container(ps, n, 1);
    case '[':
        return parse_container(ps, n, 0);
    case 'n':
        if (left >= 4 && !memcmp(p, "null", 4)) {
            n->type = cJSON_NULL;
            ps->p += 4;
            return 0;
        }
        return -1;
    case 'f':
        if (left >= 5 && !memcmp(p, "false", 5)) {
            n->type = cJSON_False;
            ps->p += 5;
            return 0;
        }
        return -1;
    case 't':
        if (left >= 4 && !memcmp(p, "true", 4)) {
            n->type = cJSON_True;
            n->valueint = 1;
            ps->p += 4;
            return 0;
        }
        return -1;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9'))
            return parse_number(ps, n);
        return -1;
    }
}

cJSON *mdw_json_arena_parse(mdw_json_arena *a, const char *data, size_t len, const char **end)
{
    parser ps = {a, (const unsigned char *)data, (const unsigned char *)data + len, 0};
    if (!data || len == 0) {
        if (end)
            *end = data;
        return NULL;
    }
    if (len >= 5 && !memcmp(data, "\xEF\xBB\xBF", 3))
        ps.p += 3;
    skip_ws(&ps);
    cJSON *root = node(&ps);
    if (parse_value(&ps, root)) {
        /* Where it stopped (cJSON's convention: the last byte when past the end). */
        if (end)
            *end = ps.p < ps.end ? (const char *)ps.p : data + len - 1;
        return NULL; /* what it built stays in the arena until the reset */
    }
    if (end)
        *end = (const char *)ps.p;
    return root;
}
