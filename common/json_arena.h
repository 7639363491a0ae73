/*
** common/json_arena.h — cJSON trees parsed into a bump arena.
**
** cJSON allocates every node and every string separately: a 460-byte
** Jetstream event is ~50 malloc calls to build and ~50 free calls to tear
** down, which was a fifth of the processor's time; and its parser compares
** every value with "null", "false" and "true" and reads every number
** through a locale-aware strtod. mdw_json_arena_parse() is Meadow's own
** parser for the same grammar: it accepts exactly the inputs
** cJSON_ParseWithLengthOpts(data, len, end, 0) accepts (cJSON 1.7.15's
** quirks included, listed in json_arena.c) and builds the same cJSON tree,
** with every node and string in the arena; a tree is thrown away whole by
** mdw_json_arena_reset(), without walking it. Checked against the
** installed libcjson by tests/test_json_arena.c and by the libFuzzer
** target tests/fuzz/fuzz_json_arena.c. cJSON itself is untouched (no
** hooks): every other cJSON use in the process is unchanged.
**
** Rules for a tree from the arena: never cJSON_Delete() it or detach,
** replace or add items (an item added later would be malloc'd and leak);
** read it, then reset the arena. An arena is used by one thread at a time
** and may hold many trees (all forgotten by the reset); it grows as needed
** (chunks), and a reset keeps one chunk of the size it had grown to (up to
** 8 MiB), so refilling it with as much allocates nothing.
*/
#ifndef MDW_COMMON_JSON_ARENA_H
#define MDW_COMMON_JSON_ARENA_H

#include <stddef.h>

#include <cJSON.h>

typedef struct mdw_json_arena mdw_json_arena;

mdw_json_arena *mdw_json_arena_new(void);
void mdw_json_arena_free(mdw_json_arena *a);

/*
** cJSON_ParseWithLengthOpts(data, len, end, 0) with the tree in a (NULL on
** a parse error; *end then points at or after the first byte that cannot
** start or continue the value, which may differ from cJSON's position).
*/
cJSON *mdw_json_arena_parse(mdw_json_arena *a, const char *data, size_t len, const char **end);

/* n bytes (16-aligned) that live until the next reset, for what goes with a tree. */
void *mdw_json_arena_alloc(mdw_json_arena *a, size_t n);

/* Forgets every tree parsed into a (their memory is reused by the next parse). */
void mdw_json_arena_reset(mdw_json_arena *a);

/* Bytes the arena holds (all chunks). */
size_t mdw_json_arena_bytes(const mdw_json_arena *a);

#endif
