/*
** bench_relay — subscribeRepos frames decoded and converted to Jetstream
** JSON per second (mdw_relay_decode: header + body DAG-CBOR, the CAR slice
** with every block's sha-256 checked, each record rendered as JSON), over
** the corpus's 150 real relay frames repeated, beside a bare libcbor decode
** (cbor_load of the header and body items, then freeing them) of the same
** bytes in the same run. A second figure adds commit signature verification
** (secp256k1, DID documents from the corpus file).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "bench/bench.h"
#include "identity/identity.h"
#include "common/zfile.h"
#include "firehose/relay.h"

#define CORPUS "../shared/testdata/atproto-corpus"

static const uint8_t *fp[256];
static size_t fl[256], nf;

static int count_bytes(void *ctx, const mdw_relay_event *ev)
{
    *(size_t *)ctx += ev->json_len;
    return 0;
}

static double run_decode(const mdw_relay_opts *opts, double seconds, size_t *frames_out)
{
    size_t frames = 0, bytes = 0;
    double t0 = bench_now(), t;
    do {
        for (size_t i = 0; i < nf; i++) {
            mdw_relay_frame info;
            if (mdw_relay_decode(fp[i], fl[i], opts, &info, count_bytes, &bytes)) {
                fprintf(stderr, "bench_relay: frame %zu: %s\n", i, info.err);
                exit(1);
            }
        }
        frames += nf;
        t = bench_now() - t0;
    } while (t < seconds);
    *frames_out = frames;
    return (double)frames / t;
}

static double run_libcbor(double seconds)
{
    size_t frames = 0;
    double t0 = bench_now(), t;
    do {
        for (size_t i = 0; i < nf; i++) {
            struct cbor_load_result r1, r2;
            cbor_item_t *h = cbor_load(fp[i], fl[i], &r1);
            cbor_item_t *b = h ? cbor_load(fp[i] + r1.read, fl[i] - r1.read, &r2) : NULL;
            if (!h || !b) {
                fprintf(stderr, "bench_relay: libcbor failed on frame %zu\n", i);
                exit(1);
            }
            cbor_decref(&h);
            cbor_decref(&b);
        }
        frames += nf;
        t = bench_now() - t0;
    } while (t < seconds);
    return (double)frames / t;
}

int main(void)
{
    char *blob;
    size_t len;
    if (mdw_zfile_slurp(CORPUS "/relay_frames.bin.zst", 64u << 20, &blob, &len)) {
        fprintf(stderr, "bench_relay: cannot read the corpus frames\n");
        return 1;
    }
    const uint8_t *p = (const uint8_t *)blob;
    for (size_t o = 0; o + 4 <= len && nf < 256;) {
        uint32_t l = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 |
                     (uint32_t)p[o + 3] << 24;
        fp[nf] = p + o + 4;
        fl[nf++] = l;
        o += 4 + l;
    }
    size_t n1, n2;
    run_decode(NULL, 0.2, &n1); /* warm-up */
    double base = run_libcbor(3.0);
    double ours = run_decode(NULL, 3.0, &n1);
    printf("%zu real frames (%.0f bytes on average), repeated\n", nf, (double)len / (double)nf);
    bench_report("relay frames decoded+converted", ours, "frames/s", "libcbor cbor_load only",
                 base);
    mdw_did_resolver *r;
    if (mdw_did_resolver_file_open(CORPUS "/did_docs.json.zst", &r) == 0) {
        mdw_relay_opts opts = {.resolver = r};
        double v = run_decode(&opts, 3.0, &n2);
        bench_report("relay frames decoded+converted+verified", v, "frames/s",
                     "libcbor cbor_load only", base);
        mdw_did_resolver_close(r);
    }
    free(blob);
    return 0;
}
