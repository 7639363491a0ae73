/*
** firehose/mst.h — walk an atproto repository's Merkle Search Tree.
**
** A repository commit's `data` names the MST root. Each node is DAG-CBOR
** {l: left subtree link | null, e: [{p: prefix length shared with the
** previous key, k: key suffix bytes, v: record CID, t: right subtree | null}]}
** and keys are "collection/rkey". mdw_mst_walk() visits every (key, record
** CID) in key order, reading nodes from a CAR (every block already checked
** against its CID by mdw_car_open). It checks what a walk can: every node is
** present and well-formed, keys strictly increase, prefixes stay inside the
** previous key, keys stay under MDW_MST_MAX_KEY, depth under
** MDW_MAX_CBOR_DEPTH. Reentrant; no state outside the call.
*/
#ifndef MDW_MST_H
#define MDW_MST_H

#include <stddef.h>

#include "firehose/car.h"
#include "firehose/cid.h"

#define MDW_MST_MAX_KEY 1024 /* NSID (317) + '/' + record key (512), rounded up */

/* Called per entry, in key order; key is NUL-terminated. Non-zero stops the
 * walk and is returned. */
typedef int (*mdw_mst_visit_fn)(void *ctx, const char *key, size_t keylen, const mdw_cid *value);

/* MDW_ENOTFOUND when a node is missing from car, MDW_EMALFORMED when one is
 * invalid, MDW_ETOOBIG past the depth or key cap; err gets a reason. */
int mdw_mst_walk(const mdw_car *car, const mdw_cid *root, mdw_mst_visit_fn fn, void *ctx, char *err,
                 size_t errlen);

#endif
