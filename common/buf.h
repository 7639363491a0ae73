/*
** common/buf.h — a growable byte buffer with a hard maximum.
**
** Every mdw_buf has a cap fixed at init (use a constant from common/limits.h);
** an append that would pass it fails with MDW_ETOOBIG and leaves the buffer
** as it was. data is always NUL-terminated (not counted in len), so text can
** be passed to C string functions. Not thread-safe; the buffer owns data.
*/
#ifndef MDW_BUF_H
#define MDW_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct mdw_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated */
    size_t max; /* hard limit on len */
} mdw_buf;

#define MDW_BUF_INIT(maxbytes)                                                                     \
    {                                                                                              \
        NULL, 0, 0, (maxbytes)                                                                     \
    }

void mdw_buf_init(mdw_buf *b, size_t max);
void mdw_buf_release(mdw_buf *b);
void mdw_buf_reset(mdw_buf *b);
int mdw_buf_reserve(mdw_buf *b, size_t extra);
int mdw_buf_append(mdw_buf *b, const void *p, size_t n);
int mdw_buf_puts(mdw_buf *b, const char *s);
int mdw_buf_putc(mdw_buf *b, char c);
int mdw_buf_printf(mdw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mdw_buf_vprintf(mdw_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal (quotes and escapes included). */
/*
** Copies n bytes of s to d (room for n) if none needs JSON escaping (or is
** 0x7f or >= 0x80): returns 1; else 0, with d partly written.
*/
int mdw_json_copy_plain(char *d, const char *s, size_t n);
int mdw_buf_json_str(mdw_buf *b, const char *s, size_t n);
/* Hands data to the caller (free()) and resets the buffer. */
char *mdw_buf_detach(mdw_buf *b, size_t *len);

#endif
