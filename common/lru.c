/* common/lru.c — see lru.h. */
#include "common/lru.h"

#include <stdlib.h>

#include "common/mem.h"
#include "common/banned.h"

void mdw_lru_init(mdw_lru *l, size_t max, int (*eq)(const mdw_lru_node *, const void *),
                  void (*drop)(mdw_lru_node *))
{
    l->max = max ? max : 1;
    l->nbuckets = 64;
    while (l->nbuckets < l->max && l->nbuckets < (1u << 20))
        l->nbuckets <<= 1;
    l->tab = xcalloc(l->nbuckets, sizeof *l->tab);
    l->count = 0;
    l->head = l->tail = NULL;
    l->eq = eq;
    l->drop = drop;
}

void mdw_lru_release(mdw_lru *l)
{
    for (mdw_lru_node *n = l->head, *next; n; n = next) {
        next = n->next;
        l->drop(n);
    }
    free(l->tab);
    l->tab = NULL;
    l->head = l->tail = NULL;
    l->count = 0;
}

mdw_lru_node *mdw_lru_find(const mdw_lru *l, uint64_t hash, const void *key)
{
    for (mdw_lru_node *n = l->tab[hash & (l->nbuckets - 1)]; n; n = n->hnext)
        if (n->hash == hash && l->eq(n, key))
            return n;
    return NULL;
}

static void unlink_recency(mdw_lru *l, mdw_lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void push_front(mdw_lru *l, mdw_lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

void mdw_lru_touch(mdw_lru *l, mdw_lru_node *n)
{
    if (l->head == n)
        return;
    unlink_recency(l, n);
    push_front(l, n);
}

void mdw_lru_remove(mdw_lru *l, mdw_lru_node *n)
{
    mdw_lru_node **pp = &l->tab[n->hash & (l->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    unlink_recency(l, n);
    l->count--;
    l->drop(n);
}

void mdw_lru_insert(mdw_lru *l, mdw_lru_node *n, uint64_t hash)
{
    while (l->count >= l->max && l->tail)
        mdw_lru_remove(l, l->tail);
    n->hash = hash;
    mdw_lru_node **b = &l->tab[hash & (l->nbuckets - 1)];
    n->hnext = *b;
    *b = n;
    push_front(l, n);
    l->count++;
}
