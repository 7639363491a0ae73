/*
** tests/json_same_tree.h — two cJSON trees alike node by node: types, keys,
** strings, numbers (bit for bit), valueint, children. For the tests and the
** fuzz target that hold Meadow's JSON parser (common/json_arena.c) to cJSON.
*/
#ifndef MDW_TESTS_JSON_SAME_TREE_H
#define MDW_TESTS_JSON_SAME_TREE_H

#include <string.h>

#include <cJSON.h>

static inline int json_same_node(const cJSON *x, const cJSON *y)
{
    for (; x && y; x = x->next, y = y->next) {
        if (x->type != y->type || x->valueint != y->valueint ||
            memcmp(&x->valuedouble, &y->valuedouble, sizeof(double)) != 0 ||
            (!x->string) != (!y->string) || (x->string && strcmp(x->string, y->string) != 0) ||
            (!x->valuestring) != (!y->valuestring) ||
            (x->valuestring && strcmp(x->valuestring, y->valuestring) != 0) ||
            !json_same_node(x->child, y->child))
            return 0;
    }
    return !x && !y;
}

#endif
