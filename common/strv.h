/*
** common/strv.h — arrays of owned strings (char *v[n], each from malloc).
**
** mdw_strv_sort_unique() sorts v by strcmp and frees every duplicate, in
** O(n log n): the repository walk gathers 10^5+ DIDs over several
** collections, where a linear search per insert cost ~5·10^9 comparisons.
*/
#ifndef MDW_STRV_H
#define MDW_STRV_H

#include <stddef.h>

/* Sorts v[0..n) and frees duplicates; returns the new count (v[0..count) unique). */
size_t mdw_strv_sort_unique(char **v, size_t n);

#endif
