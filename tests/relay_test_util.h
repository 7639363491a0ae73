/*
** tests/relay_test_util.h — helpers the relay/CAR unit tests and the
** relay_jsoncmp tool share: the corpus path, reading a corpus file (plain or
** zstd) and semantic JSON equality. Header-only (static inline) so each test
** binary and tool takes what it uses. Single-threaded test code.
*/
#ifndef MDW_TESTS_RELAY_TEST_UTIL_H
#define MDW_TESTS_RELAY_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/zfile.h"

static inline const char *corpus(void)
{
    const char *c = getenv("MEADOW_CORPUS");
    return c ? c : "../shared/testdata/atproto-corpus";
}

static inline char *read_corpus(const char *name, size_t *len)
{
    char path[1024], *data;
    snprintf(path, sizeof path, "%s/%s", corpus(), name);
    if (mdw_zfile_slurp(path, 64u << 20, &data, len)) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    return data;
}

/* Semantic JSON equality (key order free); with top, top-level time_us is ignored. */
static inline int json_eq(const cJSON *a, const cJSON *b, int top)
{
    if (!a || !b || (a->type & 0xff) != (b->type & 0xff))
        return 0;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return 0;
        for (const cJSON *x = a->child, *y = b->child; x; x = x->next, y = y->next)
            if (!json_eq(x, y, 0))
                return 0;
        return 1;
    }
    if (cJSON_IsObject(a)) {
        int na = 0, nb = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, a)
        {
            if (top && !strcmp(x->string, "time_us"))
                continue;
            na++;
            if (!json_eq(x, cJSON_GetObjectItemCaseSensitive(b, x->string), 0))
                return 0;
        }
        cJSON_ArrayForEach(x, b) nb += !(top && !strcmp(x->string, "time_us"));
        return na == nb;
    }
    return 1; /* true, false, null: same type */
}

#endif
