#include "common/strv.h"

#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t mdw_strv_sort_unique(char **v, size_t n)
{
    if (n < 2) /* qsort(NULL, 0, ...) is undefined */
        return n;
    qsort(v, n, sizeof *v, cmp);
    size_t out = 1;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i], v[out - 1]) == 0)
            free(v[i]);
        else
            v[out++] = v[i];
    }
    return out;
}
