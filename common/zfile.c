/* common/zfile.c — see zfile.h. libzstd's streaming decoder over stdio. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/err.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "common/banned.h"

struct mdw_zfile {
    FILE *f;
    ZSTD_DStream *ds; /* NULL: plain file */
    unsigned char *in;
    size_t in_cap;
    ZSTD_inBuffer ib;
    int eof;         /* underlying file exhausted */
    size_t last_ret; /* last ZSTD_decompressStream result: 0 at a frame end */
};

int mdw_zfile_open(const char *path, mdw_zfile **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    mdw_zfile *z = xcalloc(1, sizeof *z);
    z->f = f;
    z->in_cap = ZSTD_DStreamInSize();
    z->in = xmalloc(z->in_cap);
    size_t n = fread(z->in, 1, 4, f);
    static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (n == 4 && memcmp(z->in, magic, 4) == 0) {
        z->ds = ZSTD_createDStream();
        ZSTD_initDStream(z->ds);
    }
    z->ib.src = z->in;
    z->ib.size = n;
    z->ib.pos = 0;
    *out = z;
    return 0;
}

static int refill(mdw_zfile *z)
{
    if (z->eof)
        return 0;
    size_t n = fread(z->in, 1, z->in_cap, z->f);
    if (n == 0) {
        if (ferror(z->f))
            return -EIO;
        z->eof = 1;
    }
    z->ib.src = z->in;
    z->ib.size = n;
    z->ib.pos = 0;
    return 0;
}

int mdw_zfile_read(mdw_zfile *z, void *buf, size_t n, size_t *got)
{
    size_t o = 0;
    int rc;
    *got = 0;
    while (o < n) {
        if (z->ib.pos >= z->ib.size) {
            if ((rc = refill(z)) != 0)
                return rc;
            if (z->eof && !z->ds)
                break;
        }
        if (!z->ds) {
            size_t k = z->ib.size - z->ib.pos;
            if (k > n - o)
                k = n - o;
            memcpy((char *)buf + o, z->in + z->ib.pos, k);
            z->ib.pos += k;
            o += k;
            continue;
        }
        if (z->eof && z->ib.pos >= z->ib.size && z->last_ret == 0)
            break; /* every frame complete and flushed: the end */
        ZSTD_outBuffer ob = {(char *)buf + o, n - o, 0};
        size_t r = ZSTD_decompressStream(z->ds, &ob, &z->ib);
        if (ZSTD_isError(r))
            return MDW_EMALFORMED;
        z->last_ret = r;
        o += ob.pos;
        if (z->eof && ob.pos == 0 && z->ib.pos >= z->ib.size) {
            if (r != 0) /* the stream stopped inside a frame */
                return MDW_EMALFORMED;
            break;
        }
    }
    *got = o;
    return 0;
}

void mdw_zfile_close(mdw_zfile *z)
{
    if (!z)
        return;
    if (z->ds)
        ZSTD_freeDStream(z->ds);
    fclose(z->f);
    free(z->in);
    free(z);
}

int mdw_zfile_slurp(const char *path, size_t max, char **data, size_t *len)
{
    mdw_zfile *z;
    int rc = mdw_zfile_open(path, &z);
    if (rc)
        return rc;
    size_t cap = 1 << 16, n = 0;
    char *p = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                rc = MDW_ETOOBIG;
                break;
            }
            cap *= 2;
            p = xrealloc(p, cap + 1);
        }
        size_t got;
        if ((rc = mdw_zfile_read(z, p + n, cap - n, &got)) != 0)
            break;
        n += got;
        if (n > max) {
            rc = MDW_ETOOBIG;
            break;
        }
        if (got == 0)
            break;
    }
    mdw_zfile_close(z);
    if (rc) {
        free(p);
        return rc;
    }
    p[n] = '\0';
    *data = p;
    *len = n;
    return 0;
}
