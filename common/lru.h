/*
** common/lru.h — a bounded cache index: a chained hash table plus a
** recency list, least recently used evicted first. Shared by service auth's
** verified-token cache and identity's DID cache (each had its own copy).
**
** Intrusive: the caller's entry embeds an mdw_lru_node as its FIRST member
** and owns the key inside the entry; the cache compares keys through eq and
** frees evicted or removed entries through drop. The caller computes the
** hash (the bucket is hash mod a power of two, so its low bits must vary).
** Not thread-safe: callers hold their own lock around every call.
*/
#ifndef MDW_LRU_H
#define MDW_LRU_H

#include <stddef.h>
#include <stdint.h>

typedef struct mdw_lru_node {
    struct mdw_lru_node *hnext;       /* hash chain */
    struct mdw_lru_node *prev, *next; /* recency: head = most recent */
    uint64_t hash;
} mdw_lru_node;

typedef struct mdw_lru {
    mdw_lru_node **tab;
    size_t nbuckets, count, max;
    mdw_lru_node *head, *tail;
    int (*eq)(const mdw_lru_node *n, const void *key); /* 1 when n's key is key */
    void (*drop)(mdw_lru_node *n);                     /* frees an entry */
} mdw_lru;

/* At most max entries (>= 1); buckets: the power of two >= max, 64 .. 2^20. */
void mdw_lru_init(mdw_lru *l, size_t max, int (*eq)(const mdw_lru_node *, const void *),
                  void (*drop)(mdw_lru_node *));
/* Drops every entry and frees the table. */
void mdw_lru_release(mdw_lru *l);
/* The entry of key, or NULL; recency unchanged. */
mdw_lru_node *mdw_lru_find(const mdw_lru *l, uint64_t hash, const void *key);
/* Marks n the most recently used. */
void mdw_lru_touch(mdw_lru *l, mdw_lru_node *n);
/*
** Adds n (whose key is not in the cache) as the most recently used, first
** dropping the least recently used entries while the cache is full.
*/
void mdw_lru_insert(mdw_lru *l, mdw_lru_node *n, uint64_t hash);
/* Unlinks n and drops it. */
void mdw_lru_remove(mdw_lru *l, mdw_lru_node *n);

#endif
