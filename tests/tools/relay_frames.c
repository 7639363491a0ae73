/*
** relay_frames — makes test inputs from a relay frames file ([u32 LE
** length][frame] records, zstd or plain), for the integration tests and the
** fuzz seed corpora:
**
**   relay_frames plain IN OUT           decompressed copy
**   relay_frames forge-sig IN OUT K     frame K's commit signature gets one
**                                       flipped byte; the commit block is
**                                       re-hashed and every copy of its CID
**                                       rewritten, so only the signature is bad
**   relay_frames flip-block IN OUT K    one flipped byte in frame K's last block
**   relay_frames oversize IN OUT        IN plus one record of 5 MiB + 1 bytes
**   relay_frames cut IN OUT N           IN with its last frame cut to N bytes
**   relay_frames head IN OUT N          the first N frames
**   relay_frames seeds IN DIR N         frames 0..N-1 as DIR/frame-NNN
**   relay_frames car-seeds IN DIR N     their CAR slices as DIR/car-NNN
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/limits.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "firehose/car.h"
#include "firehose/cbor.h"
#include "firehose/relay_commit.h"
#include "common/banned.h"

typedef struct frames {
    char *blob;
    size_t len, n;
    size_t off[4096], flen[4096]; /* offset of each frame's bytes */
} frames;

static frames fr;

static void load(const char *path)
{
    if (mdw_zfile_slurp(path, 1u << 30, &fr.blob, &fr.len)) {
        fprintf(stderr, "relay_frames: cannot read %s\n", path);
        exit(2);
    }
    const uint8_t *p = (const uint8_t *)fr.blob;
    for (size_t o = 0; o + 4 <= fr.len && fr.n < 4096;) {
        uint32_t l = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 |
                     (uint32_t)p[o + 3] << 24;
        fr.off[fr.n] = o + 4;
        fr.flen[fr.n++] = l;
        o += 4 + l;
    }
}

static void save(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "relay_frames: cannot write %s\n", path);
        exit(2);
    }
}

/* The body and its blocks of frame k (decoded into a). */
static const mdw_cbor *body_of(size_t k, mdw_arena *a)
{
    const uint8_t *f = (const uint8_t *)fr.blob + fr.off[k];
    const mdw_cbor *hdr, *body;
    size_t used;
    if (mdw_cbor_decode(f, fr.flen[k], a, &hdr, &used, NULL, 0) ||
        mdw_cbor_decode(f + used, fr.flen[k] - used, a, &body, NULL, NULL, 0)) {
        fprintf(stderr, "relay_frames: frame %zu does not decode\n", k);
        exit(2);
    }
    return body;
}

static void forge_sig(size_t k)
{
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *body = body_of(k, &a);
    const mdw_cbor *blocks = mdw_cbor_get(body, "blocks"), *link = mdw_cbor_get(body, "commit");
    mdw_car car;
    mdw_repo_commit c;
    const mdw_car_block *b;
    if (!blocks || !link || mdw_car_open(&car, blocks->v.p, blocks->len, NULL, 0) ||
        !(b = mdw_car_find(&car, link->v.p, link->len)) ||
        mdw_repo_commit_parse(b->data, b->len, &a, &c, NULL, 0) || c.sig_len != 64) {
        fprintf(stderr, "relay_frames: frame %zu is not a commit with a signature\n", k);
        exit(2);
    }
    uint8_t old[32], neu[32];
    memcpy(old, b->cid.digest, 32);
    ((uint8_t *)c.sig)[20] ^= 0x04;
    mdw_sha256(b->data, b->len, neu);
    mdw_car_release(&car);
    mdw_arena_release(&a);
    uint8_t *f = (uint8_t *)fr.blob + fr.off[k];
    for (size_t o = 0; o + 32 <= fr.flen[k]; o++)
        if (memcmp(f + o, old, 32) == 0)
            memcpy(f + o, neu, 32);
}

static void flip_block(size_t k)
{
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *blocks = mdw_cbor_get(body_of(k, &a), "blocks");
    if (!blocks || !blocks->len) {
        fprintf(stderr, "relay_frames: frame %zu has no blocks\n", k);
        exit(2);
    }
    ((uint8_t *)blocks->v.p)[blocks->len - 1] ^= 0x01;
    mdw_arena_release(&a);
}

static void seeds(const char *dir, size_t n, int car)
{
    char path[4096];
    for (size_t k = 0; k < n && k < fr.n; k++) {
        if (!car) {
            snprintf(path, sizeof path, "%s/frame-%03zu", dir, k);
            save(path, fr.blob + fr.off[k], fr.flen[k]);
            continue;
        }
        mdw_arena a;
        mdw_arena_init(&a);
        const mdw_cbor *blocks = mdw_cbor_get(body_of(k, &a), "blocks");
        if (blocks && blocks->len) {
            snprintf(path, sizeof path, "%s/car-%03zu", dir, k);
            save(path, blocks->v.p, blocks->len);
        }
        mdw_arena_release(&a);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: see tests/tools/relay_frames.c\n");
        return 2;
    }
    const char *cmd = argv[1];
    load(argv[2]);
    size_t k = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 0;
    if (!strcmp(cmd, "plain")) {
        save(argv[3], fr.blob, fr.len);
    } else if (!strcmp(cmd, "forge-sig") && argc == 5 && k < fr.n) {
        forge_sig(k);
        save(argv[3], fr.blob, fr.len);
    } else if (!strcmp(cmd, "flip-block") && argc == 5 && k < fr.n) {
        flip_block(k);
        save(argv[3], fr.blob, fr.len);
    } else if (!strcmp(cmd, "oversize")) {
        size_t big = MDW_MAX_FRAME_BYTES + 1;
        char *out = xcalloc(1, fr.len + 4 + big);
        memcpy(out, fr.blob, fr.len);
        uint8_t *p = (uint8_t *)out + fr.len;
        p[0] = (uint8_t)big, p[1] = (uint8_t)(big >> 8), p[2] = (uint8_t)(big >> 16),
        p[3] = (uint8_t)(big >> 24);
        save(argv[3], out, fr.len + 4 + big);
        free(out);
    } else if (!strcmp(cmd, "cut") && argc == 5 && fr.n > 0 && k < fr.flen[fr.n - 1]) {
        save(argv[3], fr.blob, fr.off[fr.n - 1] + k);
    } else if (!strcmp(cmd, "head") && argc == 5 && k > 0 && k <= fr.n) {
        save(argv[3], fr.blob, fr.off[k - 1] + fr.flen[k - 1]);
    } else if (!strcmp(cmd, "seeds") && argc == 5) {
        seeds(argv[3], k, 0);
    } else if (!strcmp(cmd, "car-seeds") && argc == 5) {
        seeds(argv[3], k, 1);
    } else {
        fprintf(stderr, "relay_frames: bad arguments\n");
        return 2;
    }
    free(fr.blob);
    return 0;
}
