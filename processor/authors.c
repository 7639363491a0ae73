/*
** processor/authors.c — the in-memory author index (authors.h): an
** open-addressing table of authors, each with its posts in a sorted array.
*/
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "processor/authors.h"
#include "processor/keyset.h"
#include "common/banned.h"

typedef struct author {
    uint8_t ah[MDW_IX_H];
    int used;
    uint32_t n, cap;
    mdw_author_post *p; /* sorted by (rk, tag) */
} author;

enum { J_ADD = 1, J_DEL = 2 };

typedef struct jentry {
    uint8_t op;
    uint8_t ah[MDW_IX_H];
    mdw_author_post e;
} jentry;

struct mdw_authors {
    author *slots;
    size_t cap, used; /* slots; slots in use (authors, empty ones included until a resize) */
    size_t entries;
    uint64_t k[2]; /* secret hash key */
    jentry *j;
    size_t jn, jcap;
};

/* The slot of an author: H(did) under the table's secret key (keyset.h says why). */
static size_t slot_of(const mdw_authors *a, const uint8_t ah[MDW_IX_H])
{
    return (size_t)mdw_keyset_hash(a->k, ah, MDW_IX_H) & (a->cap - 1);
}

mdw_authors *mdw_authors_new(void)
{
    mdw_authors *a = xcalloc(1, sizeof *a);
    mdw_keyset_seed(a->k);
    a->cap = 1024;
    a->slots = xcalloc(a->cap, sizeof *a->slots);
    return a;
}

void mdw_authors_free(mdw_authors *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->cap; i++)
        free(a->slots[i].p);
    free(a->slots);
    free(a->j);
    free(a);
}

static author *find(const mdw_authors *a, const uint8_t ah[MDW_IX_H])
{
    for (size_t i = slot_of(a, ah);; i = (i + 1) & (a->cap - 1)) {
        author *s = &a->slots[i];
        if (!s->used)
            return NULL;
        if (!memcmp(s->ah, ah, MDW_IX_H))
            return s;
    }
}

/* Rehashes into a table sized for the authors that still have posts (empty ones are dropped). */
static void resize(mdw_authors *a)
{
    size_t live = 0;
    for (size_t i = 0; i < a->cap; i++)
        live += a->slots[i].used && a->slots[i].n;
    size_t cap = 1024;
    while (cap < live * 2 + 2)
        cap *= 2;
    author *old = a->slots;
    size_t ocap = a->cap;
    a->slots = xcalloc(cap, sizeof *a->slots);
    a->cap = cap;
    a->used = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].used)
            continue;
        if (!old[i].n) {
            free(old[i].p);
            continue;
        }
        size_t j = slot_of(a, old[i].ah);
        while (a->slots[j].used)
            j = (j + 1) & (cap - 1);
        a->slots[j] = old[i];
        a->used++;
    }
    free(old);
}

static author *find_or_add(mdw_authors *a, const uint8_t ah[MDW_IX_H])
{
    author *s = find(a, ah);
    if (s)
        return s;
    if ((a->used + 1) * 10 > a->cap * 7)
        resize(a);
    size_t i = slot_of(a, ah);
    while (a->slots[i].used)
        i = (i + 1) & (a->cap - 1);
    s = &a->slots[i];
    memcpy(s->ah, ah, MDW_IX_H);
    s->used = 1;
    a->used++;
    return s;
}

/* Position of e in s (found: 1) or where it would go (0). Posts are mostly appended (new TIDs). */
static int locate(const author *s, const mdw_author_post *e, size_t *at)
{
    size_t lo = 0, hi = s->n;
    if (hi && memcmp(&s->p[hi - 1], e, sizeof *e) < 0) {
        *at = hi;
        return 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(&s->p[mid], e, sizeof *e);
        if (c == 0) {
            *at = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

static void journal(mdw_authors *a, uint8_t op, const uint8_t ah[MDW_IX_H],
                    const mdw_author_post *e)
{
    if (a->jn == a->jcap) {
        a->jcap = a->jcap ? a->jcap * 2 : 256;
        a->j = xrealloc(a->j, a->jcap * sizeof *a->j);
    }
    jentry *j = &a->j[a->jn++];
    j->op = op;
    memcpy(j->ah, ah, MDW_IX_H);
    j->e = *e;
}

static int add(mdw_authors *a, const uint8_t ah[MDW_IX_H], const mdw_author_post *e)
{
    author *s = find_or_add(a, ah);
    size_t at;
    if (locate(s, e, &at))
        return 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->p = xrealloc(s->p, s->cap * sizeof *s->p);
    }
    memmove(&s->p[at + 1], &s->p[at], (s->n - at) * sizeof *s->p);
    s->p[at] = *e;
    s->n++;
    a->entries++;
    return 1;
}

static int del(mdw_authors *a, const uint8_t ah[MDW_IX_H], const mdw_author_post *e)
{
    author *s = find(a, ah);
    size_t at;
    if (!s || !locate(s, e, &at))
        return 0;
    memmove(&s->p[at], &s->p[at + 1], (s->n - at - 1) * sizeof *s->p);
    s->n--;
    a->entries--;
    if (!s->n) { /* keep the slot (open addressing); its array goes, the slot at the next resize */
        free(s->p);
        s->p = NULL;
        s->cap = 0;
    }
    return 1;
}

/* Adds (J_ADD) or removes (J_DEL) (ah, tag, rk), journalling it when the set changed. */
static void change(mdw_authors *a, uint8_t op, const uint8_t ah[MDW_IX_H],
                   const uint8_t tag[MDW_IX_TAG], const uint8_t rk[MDW_IX_RK])
{
    mdw_author_post e;
    memcpy(e.tag, tag, MDW_IX_TAG);
    memcpy(e.rk, rk, MDW_IX_RK);
    if (op == J_ADD ? add(a, ah, &e) : del(a, ah, &e))
        journal(a, op, ah, &e);
}

void mdw_authors_add(mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t tag[MDW_IX_TAG],
                     const uint8_t rk[MDW_IX_RK])
{
    change(a, J_ADD, ah, tag, rk);
}

void mdw_authors_del(mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t tag[MDW_IX_TAG],
                     const uint8_t rk[MDW_IX_RK])
{
    change(a, J_DEL, ah, tag, rk);
}

size_t mdw_authors_list(const mdw_authors *a, const uint8_t ah[MDW_IX_H], const uint8_t *tag,
                        mdw_author_post **out, size_t *cap)
{
    const author *s = find(a, ah);
    if (!s || !s->n)
        return 0;
    if (s->n > *cap) {
        *cap = s->n;
        *out = xrealloc(*out, s->n * sizeof **out);
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!tag || !memcmp(s->p[i].tag, tag, MDW_IX_TAG))
            (*out)[n++] = s->p[i];
    return n;
}

void mdw_authors_commit(mdw_authors *a)
{
    a->jn = 0;
    if (a->jcap > 65536) { /* one huge transaction (a sweep, a rebuild) must not pin its journal */
        free(a->j);
        a->j = NULL;
        a->jcap = 0;
    }
}

void mdw_authors_rollback(mdw_authors *a)
{
    while (a->jn) {
        const jentry *j = &a->j[--a->jn];
        if (j->op == J_ADD)
            del(a, j->ah, &j->e);
        else
            add(a, j->ah, &j->e);
    }
    mdw_authors_commit(a);
}

size_t mdw_authors_entries(const mdw_authors *a)
{
    return a->entries;
}

size_t mdw_authors_count(const mdw_authors *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->cap; i++)
        n += a->slots[i].used && a->slots[i].n;
    return n;
}
