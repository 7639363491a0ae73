/*
** processor/keyset.h — a grow-only set of fixed-size keys in memory, used
** by the rule engine as an exact negative filter in front of LMDB lookups
** that usually find nothing.
**
** The writer adds every key it puts into the table being filtered (and
** every key found there when it starts), never removes any: the set is a
** superset of the table's keys, so "not in the set" proves "not in the
** table" without a B-tree descent, and "in the set" means "look it up". A
** transaction that aborts leaves extra keys behind, which only cost a
** lookup. Keys are hashed with a secret per-process key (see authors.c).
**
** Not thread-safe: owned by the one index writer.
*/
#ifndef MDW_PROCESSOR_KEYSET_H
#define MDW_PROCESSOR_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#define MDW_KEYSET_MAX_KEY 32

typedef struct mdw_keyset mdw_keyset;

/*
** The keyed hash the writer's in-memory tables use (here and authors.c):
** keys are SHA-256 prefixes, but a stranger can grind DIDs or URIs whose
** hashes share the bits that pick a slot and pile them into one probe run;
** a secret per table makes the slot unpredictable. mdw_keyset_seed() fills
** k with getrandom() bytes; mdw_keyset_hash() hashes n bytes under k.
*/
void mdw_keyset_seed(uint64_t k[2]);
uint64_t mdw_keyset_hash(const uint64_t k[2], const void *key, size_t n);

/* A set of keys of klen bytes (8..MDW_KEYSET_MAX_KEY). */
mdw_keyset *mdw_keyset_new(size_t klen);
void mdw_keyset_free(mdw_keyset *s);
void mdw_keyset_add(mdw_keyset *s, const void *key);
int mdw_keyset_has(const mdw_keyset *s, const void *key);
size_t mdw_keyset_count(const mdw_keyset *s);

#endif
