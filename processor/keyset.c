/*
** processor/keyset.c — see keyset.h: open addressing over a flat array of
** keys, a one-byte tag per slot (0 free) to skip most key compares.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/mem.h"
#include "processor/keyset.h"
#include "common/banned.h"

struct mdw_keyset {
    size_t klen, cap, n;
    uint8_t *tags; /* per slot: 0 free, else 1..255 from the hash */
    uint8_t *keys; /* cap * klen */
    uint64_t k[2];
};

/* splitmix64's finalizer: a bijection where every input bit changes about half the output bits. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void mdw_keyset_seed(uint64_t k[2])
{
    if (getrandom(k, 2 * sizeof *k, 0) != (ssize_t)(2 * sizeof *k)) {
        struct timespec ts; /* no entropy source: still varies per process and table */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)k);
        k[1] = mix64(k[0] ^ (uint64_t)ts.tv_sec);
    }
}

uint64_t mdw_keyset_hash(const uint64_t k[2], const void *key, size_t n)
{
    const uint8_t *p = key;
    uint64_t h = k[1];
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        h = mix64(h ^ x ^ k[0]);
    }
    if (n % 8) {
        uint64_t x = 0;
        memcpy(&x, p + n - n % 8, n % 8);
        h = mix64(h ^ x ^ k[0]);
    }
    return h;
}

static uint64_t hash(const mdw_keyset *s, const uint8_t *key)
{
    return mdw_keyset_hash(s->k, key, s->klen);
}

mdw_keyset *mdw_keyset_new(size_t klen)
{
    if (klen < 8 || klen > MDW_KEYSET_MAX_KEY)
        abort(); /* a programming error */
    mdw_keyset *s = xcalloc(1, sizeof *s);
    mdw_keyset_seed(s->k);
    s->klen = klen;
    s->cap = 1024;
    s->tags = xcalloc(s->cap, 1);
    s->keys = xmalloc(s->cap * klen);
    return s;
}

void mdw_keyset_free(mdw_keyset *s)
{
    if (!s)
        return;
    free(s->tags);
    free(s->keys);
    free(s);
}

/* The slot holding key, or the free slot where it would go (*found says which). */
static size_t probe(const mdw_keyset *s, const uint8_t *key, uint64_t h, int *found)
{
    uint8_t tag = (uint8_t)(h >> 56) | 1;
    for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->tags[i]) {
            *found = 0;
            return i;
        }
        if (s->tags[i] == tag && !memcmp(s->keys + i * s->klen, key, s->klen)) {
            *found = 1;
            return i;
        }
    }
}

static void put(mdw_keyset *s, const uint8_t *key, uint64_t h, size_t i)
{
    s->tags[i] = (uint8_t)(h >> 56) | 1;
    memcpy(s->keys + i * s->klen, key, s->klen);
    s->n++;
}

static void grow(mdw_keyset *s)
{
    size_t ocap = s->cap;
    uint8_t *otags = s->tags, *okeys = s->keys;
    s->cap *= 2;
    s->tags = xcalloc(s->cap, 1);
    s->keys = xmalloc(s->cap * s->klen);
    s->n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (otags[i]) {
            const uint8_t *k = okeys + i * s->klen;
            uint64_t h = hash(s, k);
            int found;
            put(s, k, h, probe(s, k, h, &found));
        }
    free(otags);
    free(okeys);
}

void mdw_keyset_add(mdw_keyset *s, const void *key)
{
    if ((s->n + 1) * 4 > s->cap * 3)
        grow(s);
    uint64_t h = hash(s, key);
    int found;
    size_t i = probe(s, key, h, &found);
    if (!found)
        put(s, key, h, i);
}

int mdw_keyset_has(const mdw_keyset *s, const void *key)
{
    int found;
    probe(s, key, hash(s, key), &found);
    return found;
}

size_t mdw_keyset_count(const mdw_keyset *s)
{
    return s->n;
}
