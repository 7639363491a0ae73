#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/err.h"
#include "common/mem.h"
#include "common/banned.h"

void mdw_buf_init(mdw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void mdw_buf_release(mdw_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mdw_buf_reset(mdw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int mdw_buf_reserve(mdw_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return MDW_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int mdw_buf_append(mdw_buf *b, const void *p, size_t n)
{
    int rc = mdw_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int mdw_buf_puts(mdw_buf *b, const char *s)
{
    return mdw_buf_append(b, s, strlen(s));
}

int mdw_buf_putc(mdw_buf *b, char c)
{
    return mdw_buf_append(b, &c, 1);
}

int mdw_buf_vprintf(mdw_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -22; /* -EINVAL */
    int rc = mdw_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int mdw_buf_printf(mdw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mdw_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/*
** Copies n bytes of s to d while checking that none needs escaping in a JSON
** string: < 0x20, '"', '\\' (escaped by the slow path), 0x7f and >= 0x80
** (copied by the slow path; checked there, not here). 1 if all were plain.
** Sixteen bytes at a time with SSE2 (x86-64 baseline): one signed compare
** catches both < 0x20 and >= 0x80. Feed pages are ~4 KB of URIs, and a
** per-character check was a fifth of a feed request's user time.
*/
int mdw_json_copy_plain(char *d, const char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(0x20), q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
                  del = _mm_set1_epi8(0x7f);
#define PLAIN16(at)                                                                                \
    do {                                                                                           \
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + (at)));                    \
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, sp), _mm_cmpeq_epi8(v, q)),      \
                                   _mm_or_si128(_mm_cmpeq_epi8(v, bs), _mm_cmpeq_epi8(v, del)));   \
        if (_mm_movemask_epi8(bad))                                                                \
            return 0;                                                                              \
        _mm_storeu_si128((__m128i *)(void *)(d + (at)), v);                                        \
    } while (0)
    for (; i + 16 <= n; i += 16)
        PLAIN16(i);
    if (i < n && n >= 16) {
        PLAIN16(n - 16); /* the tail, overlapping bytes already checked */
        return 1;
    }
#undef PLAIN16
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
            return 0;
        d[i] = (char)c;
    }
    return 1;
}

int mdw_buf_json_str(mdw_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len;
    /* Fast path: nothing to escape, one copy. */
    if (n < SIZE_MAX / 2 && mdw_buf_reserve(b, n + 2) == 0) {
        char *d = b->data + b->len;
        if (mdw_json_copy_plain(d + 1, s, n)) {
            d[0] = '"';
            d[n + 1] = '"';
            b->len += n + 2;
            b->data[b->len] = '\0';
            return 0;
        }
    }
    int rc = mdw_buf_putc(b, '"');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            rc = mdw_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = mdw_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = mdw_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = mdw_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = mdw_buf_append(b, "\\t", 2);
            break;
        case '\b':
            rc = mdw_buf_append(b, "\\b", 2);
            break;
        case '\f':
            rc = mdw_buf_append(b, "\\f", 2);
            break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = mdw_buf_append(b, e, 6);
            } else {
                rc = mdw_buf_putc(b, (char)c);
            }
        }
    }
    if (rc == 0)
        rc = mdw_buf_putc(b, '"');
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

char *mdw_buf_detach(mdw_buf *b, size_t *len)
{
    char *d = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
