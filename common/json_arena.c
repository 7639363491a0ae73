/*
** common/json_arena.c — see json_arena.h.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_arena.h"
#include "common/mem.h"
#include "common/banned.h"

#define CHUNK_BYTES    (64 * 1024) /* holds the tree of a ~5 KB event; bigger ones add chunks */
#define KEEP_MAX_BYTES (8 * 1024 * 1024) /* most a reset keeps (in one chunk) */

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk;

struct mdw_json_arena {
    chunk *head; /* the chunk being filled; the first chunk is the last in the list */
    size_t bytes;
};

/*
** The arena of this thread's running parse (NULL outside mdw_json_arena_parse).
** cJSON frees only inside a parse (a failed one deletes what it built) or in
** cJSON_Delete, which arena trees never see: so only the running parse's
** arena needs recognising in the free hook.
*/
static _Thread_local mdw_json_arena *tl_active;

static chunk *chunk_new(size_t size, chunk *next)
{
    chunk *c = xmalloc(sizeof *c + size);
    c->next = next;
    c->size = size;
    c->used = 0;
    return c;
}

static void *hook_malloc(size_t n)
{
    mdw_json_arena *a = tl_active;
    if (!a)
        return malloc(n);
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

static int owns(const mdw_json_arena *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    for (const chunk *c = a->head; c; c = c->next)
        if (u >= (uintptr_t)c->data && u < (uintptr_t)c->data + c->size)
            return 1;
    return 0;
}

static void hook_free(void *p)
{
    if (p && tl_active && owns(tl_active, p))
        return; /* goes with the arena's reset */
    free(p);
}

static void install(void)
{
    cJSON_Hooks h = {hook_malloc, hook_free};
    cJSON_InitHooks(&h);
}

mdw_json_arena *mdw_json_arena_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install);
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

cJSON *mdw_json_arena_parse(mdw_json_arena *a, const char *data, size_t len, const char **end)
{
    tl_active = a;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, end, 0);
    tl_active = NULL;
    return root;
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
