/*
** firehose/car.h — CARv1 archives: the `blocks` of a subscribeRepos #commit
** and a whole repository export (com.atproto.sync.getRepo).
**
** Layout: varint(header length) + DAG-CBOR header {version: 1, roots: [CID]},
** then blocks, each varint(length) + binary CID + data. mdw_car_open() reads
** it all at once and checks EVERY block's bytes against its CID (sha2-256):
** a flipped byte anywhere is MDW_ECORRUPT, a bad varint or CID
** MDW_EMALFORMED, a cut-off archive MDW_EEOF. Blocks are then found by CID
** in O(log n).
**
** An mdw_car points into the caller's bytes (no copy): keep them alive until
** mdw_car_release(). Reentrant; one mdw_car per thread at a time.
*/
#ifndef MDW_CAR_H
#define MDW_CAR_H

#include <stddef.h>
#include <stdint.h>

#include "firehose/cbor.h"
#include "firehose/cid.h"

typedef struct mdw_car_block {
    mdw_cid cid;
    const uint8_t *data;
    size_t len;
} mdw_car_block;

#define MDW_CAR_MAX_ROOTS 8

typedef struct mdw_car {
    mdw_cid roots[MDW_CAR_MAX_ROOTS];
    size_t nroots;
    mdw_car_block *blocks; /* sorted by binary CID */
    size_t nblocks;
    mdw_arena arena; /* the decoded header */
} mdw_car;

/* Parses and verifies p[0..n). err (may be NULL) gets a one-line reason. */
int mdw_car_open(mdw_car *car, const uint8_t *p, size_t n, char *err, size_t errlen);
void mdw_car_release(mdw_car *car);
/* The block named by binary CID cid[0..len), or NULL. */
const mdw_car_block *mdw_car_find(const mdw_car *car, const uint8_t *cid, size_t len);

#endif
