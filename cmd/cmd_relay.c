/*
** cmd/cmd_relay.c — `meadow relay decode FILE`, `meadow car ls FILE`,
** `meadow car info FILE`: the relay decoder and repository reader on files.
**
** relay decode reads [u32 little-endian length][frame bytes] records (zstd
** accepted), prints each Jetstream v1 event on its own line on stdout and a
** one-line summary on stderr; each failing frame is reported on stderr with
** its index, seq and reason, decoding goes on, and the exit code is 1.
** verify_commits = true checks every commit signature against the DID
** documents of did_docs_file (HTTP resolution is not built yet).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "identity/identity.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "firehose/car.h"
#include "firehose/mst.h"
#include "firehose/relay.h"
#include "firehose/relay_commit.h"
#include "common/banned.h"

#define MDW_MAX_CAR_FILE_BYTES (1024u * 1024 * 1024) /* a repository export */

typedef struct decode_stats {
    long frames, events, by_type[MDW_RELAY_UNKNOWN + 1], by_op[4], identity, account;
    long failed, ops_failed, verified, high_s;
} decode_stats;

static int print_event(void *ctx, const mdw_relay_event *ev)
{
    decode_stats *st = ctx;
    st->events++;
    if (ev->kind == MDW_EV_COMMIT)
        st->by_op[ev->op]++;
    else if (ev->kind == MDW_EV_IDENTITY)
        st->identity++;
    else
        st->account++;
    fwrite(ev->json, 1, ev->json_len, stdout);
    fputc('\n', stdout);
    return 0;
}

static int open_resolver(const mdw_config *cfg, mdw_did_resolver **r)
{
    *r = NULL;
    if (!cfg->verify_commits)
        return 0;
    if (!cfg->did_docs_file || !cfg->did_docs_file[0]) {
        fprintf(stderr, "meadow: verify_commits needs did_docs_file (network DID resolution is "
                        "not built yet)\n");
        return MDW_ECONFIG;
    }
    int rc = mdw_did_resolver_file_open(cfg->did_docs_file, r);
    if (rc)
        fprintf(stderr, "meadow: cannot load DID documents from %s: %s\n", cfg->did_docs_file,
                mdw_strerror(rc));
    return rc;
}

static int relay_decode(const mdw_config *cfg, const char *path)
{
    mdw_did_resolver *resolver;
    if (open_resolver(cfg, &resolver))
        return 2;
    mdw_zfile *z;
    int rc = mdw_zfile_open(path, &z);
    if (rc) {
        fprintf(stderr, "meadow: cannot open %s: %s\n", path, mdw_strerror(rc));
        mdw_did_resolver_close(resolver);
        return 2;
    }
    mdw_relay_opts opts = {.resolver = resolver};
    decode_stats st;
    memset(&st, 0, sizeof st);
    uint8_t *frame = xmalloc(MDW_MAX_FRAME_BYTES);
    int status = 0;
    for (;;) {
        uint8_t lenb[4];
        size_t got;
        if ((rc = mdw_zfile_read(z, lenb, 4, &got)) != 0 || (got != 0 && got != 4)) {
            fprintf(stderr, "meadow: %s: record %ld: %s\n", path, st.frames,
                    rc ? mdw_strerror(rc) : "file ends inside a length prefix");
            status = 1;
            break;
        }
        if (got == 0)
            break;
        uint32_t len = (uint32_t)lenb[0] | (uint32_t)lenb[1] << 8 | (uint32_t)lenb[2] << 16 |
                       (uint32_t)lenb[3] << 24;
        long idx = st.frames++;
        /* Over the cap: still read it (to skip it), decode only the cap, so the
        ** decoder reports the size error as it would on the network. */
        size_t keep = len > MDW_MAX_FRAME_BYTES ? MDW_MAX_FRAME_BYTES : len;
        if ((rc = mdw_zfile_read(z, frame, keep, &got)) != 0 || got != keep) {
            fprintf(stderr, "meadow: %s: frame %ld: %s\n", path, idx,
                    rc ? mdw_strerror(rc) : "file ends inside the frame (truncated)");
            status = 1;
            break;
        }
        for (size_t left = len - keep; left > 0;) {
            uint8_t sink[65536];
            size_t k = left < sizeof sink ? left : sizeof sink;
            if (mdw_zfile_read(z, sink, k, &got) || got != k) {
                left = 0;
                break;
            }
            left -= k;
        }
        mdw_relay_frame info;
        if (len > MDW_MAX_FRAME_BYTES) {
            memset(&info, 0, sizeof info);
            snprintf(info.err, sizeof info.err, "frame of %u bytes is over the %u-byte limit", len,
                     MDW_MAX_FRAME_BYTES);
            rc = MDW_ETOOBIG;
        } else {
            rc = mdw_relay_decode(frame, len, &opts, &info, print_event, &st);
        }
        st.by_type[info.type]++;
        st.verified += info.sig_verified;
        st.high_s += info.high_s;
        if (rc) {
            st.failed++;
            status = 1;
            fprintf(stderr, "meadow: frame %ld: %s (%s)\n", idx, info.err, mdw_strerror(rc));
        } else if (info.ops_failed) {
            st.ops_failed += info.ops_failed;
            status = 1;
            fprintf(stderr, "meadow: frame %ld: %d op(s) skipped: %s\n", idx, info.ops_failed,
                    info.err);
        } else if (info.type == MDW_RELAY_ERROR || info.type == MDW_RELAY_INFO) {
            fprintf(stderr, "meadow: frame %ld: %s %s: %s\n", idx,
                    mdw_relay_frame_type_name(info.type), info.name, info.message);
        }
    }
    fflush(stdout);
    fprintf(stderr,
            "relay decode: frames=%ld events=%ld creates=%ld updates=%ld deletes=%ld "
            "identity=%ld account=%ld commit_frames=%ld sync=%ld info=%ld error_frames=%ld "
            "unknown=%ld failed_frames=%ld failed_ops=%ld verified=%ld high_s=%ld\n",
            st.frames, st.events, st.by_op[MDW_OP_CREATE], st.by_op[MDW_OP_UPDATE],
            st.by_op[MDW_OP_DELETE], st.identity, st.account, st.by_type[MDW_RELAY_COMMIT],
            st.by_type[MDW_RELAY_SYNC], st.by_type[MDW_RELAY_INFO], st.by_type[MDW_RELAY_ERROR],
            st.by_type[MDW_RELAY_UNKNOWN], st.failed, st.ops_failed, st.verified, st.high_s);
    free(frame);
    mdw_zfile_close(z);
    mdw_did_resolver_close(resolver);
    return status;
}

static const mdw_cmd_spec decode_spec = {
    .path = "relay decode",
    .summary = "subscribeRepos frames ([u32 LE length][frame], zstd accepted) -> Jetstream JSON "
               "lines; --verify_commits true --did_docs_file F checks signatures",
    .synopsis = "FILE",
    .min_pos = 1,
    .max_pos = 1,
};
const mdw_cmd_spec mdw_cmd_relay_spec = {
    .path = "relay",
    .summary = "relay decode FILE: subscribeRepos frames -> Jetstream JSON",
    .subs = (const mdw_cmd_spec *const[]){&decode_spec, NULL},
    .run = mdw_cmd_relay,
};

int mdw_cmd_relay(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_relay_spec, argc, argv, &a))
        return a.status;
    return relay_decode(cfg, a.pos[0]);
}

/* ---- car ---- */

typedef struct repo {
    char *bytes;
    size_t len;
    mdw_car car;
    mdw_arena arena;
    mdw_repo_commit commit;
} repo;

static int repo_open(const char *path, repo *r)
{
    memset(r, 0, sizeof *r);
    mdw_arena_init(&r->arena);
    char err[MDW_RELAY_ERR_MAX];
    int rc = mdw_zfile_slurp(path, MDW_MAX_CAR_FILE_BYTES, &r->bytes, &r->len);
    if (rc) {
        fprintf(stderr, "meadow: cannot read %s: %s\n", path, mdw_strerror(rc));
        return rc;
    }
    if ((rc = mdw_car_open(&r->car, (const uint8_t *)r->bytes, r->len, err, sizeof err))) {
        fprintf(stderr, "meadow: %s: %s\n", path, err);
        return rc;
    }
    if (r->car.nroots != 1) {
        fprintf(stderr, "meadow: %s: expected one root (the commit), found %zu\n", path,
                r->car.nroots);
        return MDW_EMALFORMED;
    }
    const mdw_car_block *b = mdw_car_find(&r->car, r->car.roots[0].bytes, r->car.roots[0].len);
    if (!b) {
        fprintf(stderr, "meadow: %s: the root commit block is missing\n", path);
        return MDW_ENOTFOUND;
    }
    if ((rc = mdw_repo_commit_parse(b->data, b->len, &r->arena, &r->commit, err, sizeof err))) {
        fprintf(stderr, "meadow: %s: %s\n", path, err);
        return rc;
    }
    return 0;
}

static void repo_close(repo *r)
{
    mdw_car_release(&r->car);
    mdw_arena_release(&r->arena);
    free(r->bytes);
}

static int print_entry(void *ctx, const char *key, size_t keylen, const mdw_cid *value)
{
    mdw_buf *line = ctx;
    mdw_buf_reset(line);
    int rc = mdw_buf_append(line, key, keylen);
    if (!rc)
        rc = mdw_buf_putc(line, '\t');
    if (!rc)
        rc = mdw_cid_to_text(value, line);
    if (!rc)
        rc = mdw_buf_putc(line, '\n');
    if (!rc)
        fwrite(line->data, 1, line->len, stdout);
    return rc;
}

static int count_entry(void *ctx, const char *key, size_t keylen, const mdw_cid *value)
{
    (*(long *)ctx)++;
    return 0;
}

static int car_ls(const char *path)
{
    repo r;
    int rc = repo_open(path, &r);
    if (rc == 0) {
        char err[MDW_RELAY_ERR_MAX];
        mdw_buf line = MDW_BUF_INIT(4096);
        rc = mdw_mst_walk(&r.car, &r.commit.data, print_entry, &line, err, sizeof err);
        mdw_buf_release(&line);
        if (rc)
            fprintf(stderr, "meadow: %s: %s\n", path, err);
    }
    repo_close(&r);
    return rc ? 1 : 0;
}

static int car_info(const mdw_config *cfg, const char *path)
{
    repo r;
    int rc = repo_open(path, &r);
    if (rc) {
        repo_close(&r);
        return 1;
    }
    mdw_buf t = MDW_BUF_INIT(4096);
    long records = 0;
    char err[MDW_RELAY_ERR_MAX];
    mdw_cid_to_text(&r.commit.data, &t);
    printf("DID: %.*s\n", (int)r.commit.did_len, r.commit.did);
    printf("Data CID: %s\n", t.data);
    mdw_buf_reset(&t);
    if (r.commit.has_prev)
        mdw_cid_to_text(&r.commit.prev, &t);
    printf("Prev CID: %s\n", r.commit.has_prev ? t.data : "<nil>");
    printf("Revision: %.*s\n", (int)r.commit.rev_len, r.commit.rev ? r.commit.rev : "");
    printf("Version: %lld\n", (long long)r.commit.version);
    printf("Blocks: %zu\n", r.car.nblocks);
    rc = mdw_mst_walk(&r.car, &r.commit.data, count_entry, &records, err, sizeof err);
    if (rc)
        fprintf(stderr, "meadow: %s: %s\n", path, err);
    else
        printf("Records: %ld\n", records);
    if (cfg->did_docs_file && cfg->did_docs_file[0]) {
        mdw_did_resolver *res;
        mdw_diddoc doc;
        char *did = xstrndup(r.commit.did, r.commit.did_len);
        if (mdw_did_resolver_file_open(cfg->did_docs_file, &res) == 0) {
            if (mdw_did_resolve(res, did, &doc) == 0 && doc.has_key) {
                int high_s = 0;
                int v = mdw_repo_commit_verify(&r.commit, &doc.key, 0, &high_s, err, sizeof err);
                printf("Signature: %s\n", v == 0 ? "valid" : err);
                if (v)
                    rc = v;
            } else {
                printf("Signature: not checked (no DID document with a key for %s)\n", did);
            }
            mdw_diddoc_release(&doc);
            mdw_did_resolver_close(res);
        }
        free(did);
    }
    mdw_buf_release(&t);
    repo_close(&r);
    return rc ? 1 : 0;
}

static const mdw_cmd_spec car_ls_spec = {
    .path = "car ls",
    .summary = "list a repository export's records: key, tab, CID",
    .synopsis = "FILE",
    .min_pos = 1,
    .max_pos = 1,
};
static const mdw_cmd_spec car_info_spec = {
    .path = "car info",
    .summary = "a repository export's commit (DID, CIDs, revision, counts; signature with "
               "--did_docs_file F)",
    .synopsis = "FILE",
    .min_pos = 1,
    .max_pos = 1,
};
const mdw_cmd_spec mdw_cmd_car_spec = {
    .path = "car",
    .summary = "car ls FILE | car info FILE",
    .subs = (const mdw_cmd_spec *const[]){&car_ls_spec, &car_info_spec, NULL},
    .run = mdw_cmd_car,
};

int mdw_cmd_car(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_car_spec, argc, argv, &a))
        return a.status;
    return a.spec == &car_ls_spec ? car_ls(a.pos[0]) : car_info(cfg, a.pos[0]);
}
