/*
** common/mem.h — the xmalloc family. Out of memory is not recoverable in
** Meadow: these abort with a message instead of returning NULL, so callers
** never check. Memory they return is owned by the caller (free()).
*/
#ifndef MDW_MEM_H
#define MDW_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* Formatted allocation (asprintf that aborts on OOM). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
