/*
** common/json_arena.h — cJSON trees parsed into a bump arena.
**
** cJSON allocates every node and every string separately: a 460-byte
** Jetstream event is ~50 malloc calls to build and ~50 free calls to tear
** down, which was a fifth of the processor's time. A tree parsed here takes
** its memory from the arena and is thrown away whole by
** mdw_json_arena_reset(), without walking it.
**
** How: cJSON's allocation hooks (process-wide, installed once by the first
** mdw_json_arena_new()) allocate from the calling thread's arena while
** mdw_json_arena_parse() runs, and from malloc otherwise; the free hook
** ignores pointers inside the running parse's arena (a failed parse deletes
** what it built) and passes the rest to free().
** So every other cJSON use in the process (other threads, or this one
** outside a parse) is unchanged.
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

/* cJSON_ParseWithLengthOpts(data, len, end, 0) with the tree in a (NULL on a parse error). */
cJSON *mdw_json_arena_parse(mdw_json_arena *a, const char *data, size_t len, const char **end);

/* Forgets every tree parsed into a (their memory is reused by the next parse). */
void mdw_json_arena_reset(mdw_json_arena *a);

/* Bytes the arena holds (all chunks). */
size_t mdw_json_arena_bytes(const mdw_json_arena *a);

#endif
