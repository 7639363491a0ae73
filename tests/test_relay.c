/*
** Unit tests for firehose/relay (subscribeRepos frame -> Jetstream v1
** events) on the real relay frames of the corpus and on frames built here.
**
** What they prove:
**  - the 150 real frames give the 152 events of the window with the
**    manifest's per-kind counts, and the first 100 equal production
**    Jetstream's output semantically, in order (time_us aside, which must
**    still be within seconds of Jetstream's receipt time);
**  - every commit signature verifies against did_docs.json.zst; a flipped
**    signature byte (block re-hashed so only the signature is wrong), a
**    high-S twin, a missing DID document, a flipped record byte each fail
**    with a clear reason and emit nothing;
**  - a P-256-signed commit (key made with OpenSSL here, Multikey zDn… DID
**    document) verifies, and its record's bytes/links render per the data
**    model;
**  - #identity/#account/#sync/#info/error/unknown frames, truncations,
**    oversize frames, trailing bytes and deep nesting are handled as
**    documented in relay.h.
*/
#include "tests/test.h"

#include <cJSON.h>
#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "common/crypto.h"
#include "identity/identity.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "firehose/car.h"
#include "firehose/cbor.h"
#include "firehose/relay.h"
#include "firehose/relay_commit.h"
#include "tests/relay_test_util.h"

/* The corpus frames, split from [u32 LE length][frame] records. */
static char *frames_blob;
static const uint8_t *frame_ptr[256];
static size_t frame_len[256], nframes;

static int load_frames(void)
{
    if (frames_blob)
        return 0;
    size_t n;
    frames_blob = read_corpus("relay_frames.bin.zst", &n);
    if (!frames_blob)
        return -1;
    const uint8_t *p = (const uint8_t *)frames_blob;
    for (size_t o = 0; o + 4 <= n && nframes < 256;) {
        uint32_t l = (uint32_t)p[o] | (uint32_t)p[o + 1] << 8 | (uint32_t)p[o + 2] << 16 |
                     (uint32_t)p[o + 3] << 24;
        frame_ptr[nframes] = p + o + 4;
        frame_len[nframes++] = l;
        o += 4 + l;
    }
    return 0;
}

/* Collected events: JSON lines and kinds. */
typedef struct sink {
    char **json;
    int *kind, *op;
    int64_t *time_us;
    size_t n, cap;
    int stop_after; /* > 0: return 99 after this many */
} sink;

static int collect(void *ctx, const mdw_relay_event *ev)
{
    sink *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->json = xrealloc(s->json, s->cap * sizeof *s->json);
        s->kind = xrealloc(s->kind, s->cap * sizeof *s->kind);
        s->op = xrealloc(s->op, s->cap * sizeof *s->op);
        s->time_us = xrealloc(s->time_us, s->cap * sizeof *s->time_us);
    }
    s->json[s->n] = xstrndup(ev->json, ev->json_len);
    s->kind[s->n] = ev->kind;
    s->op[s->n] = ev->op;
    s->time_us[s->n] = ev->time_us;
    s->n++;
    return s->stop_after && (int)s->n >= s->stop_after ? 99 : 0;
}

static void sink_free(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->json[i]);
    free(s->json);
    free(s->kind);
    free(s->op);
    free(s->time_us);
    memset(s, 0, sizeof *s);
}

static int decode_all(const mdw_relay_opts *opts, sink *s, int *failures)
{
    *failures = 0;
    for (size_t i = 0; i < nframes; i++) {
        mdw_relay_frame info;
        if (mdw_relay_decode(frame_ptr[i], frame_len[i], opts, &info, collect, s) ||
            info.ops_failed) {
            fprintf(stderr, "  frame %zu: %s\n", i, info.err);
            (*failures)++;
        }
    }
    return 0;
}

TEST(corpus_window_counts_match_manifest)
{
    ASSERT_OK(load_frames());
    size_t mn;
    char *mtext = read_corpus("manifest.json", &mn);
    ASSERT(mtext);
    cJSON *m = cJSON_Parse(mtext);
    free(mtext);
    ASSERT(m);
    ASSERT_EQ(nframes, cJSON_GetObjectItem(m, "frames")->valueint);
    sink s = {0};
    int failures;
    decode_all(NULL, &s, &failures);
    ASSERT_EQ(failures, 0);
    int c[4] = {0}, ident = 0, acct = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.kind[i] == MDW_EV_COMMIT)
            c[s.op[i]]++;
        ident += s.kind[i] == MDW_EV_IDENTITY;
        acct += s.kind[i] == MDW_EV_ACCOUNT;
    }
    ASSERT_EQ(s.n, cJSON_GetObjectItem(m, "v1_events")->valueint);
    ASSERT_EQ(c[MDW_OP_CREATE], cJSON_GetObjectItem(m, "creates")->valueint);
    ASSERT_EQ(c[MDW_OP_UPDATE], cJSON_GetObjectItem(m, "updates")->valueint);
    ASSERT_EQ(c[MDW_OP_DELETE], cJSON_GetObjectItem(m, "deletes")->valueint);
    ASSERT_EQ(ident, cJSON_GetObjectItem(m, "identity")->valueint);
    ASSERT_EQ(acct, cJSON_GetObjectItem(m, "account")->valueint);
    /* every event parses as JSON */
    for (size_t i = 0; i < s.n; i++) {
        cJSON *j = cJSON_Parse(s.json[i]);
        ASSERT_MSG(j != NULL, "event %zu is not JSON: %s", i, s.json[i]);
        cJSON_Delete(j);
    }
    cJSON_Delete(m);
    sink_free(&s);
}

TEST(corpus_first_100_equal_production_jetstream_in_order)
{
    ASSERT_OK(load_frames());
    size_t en;
    char *exp = read_corpus("jetstream_expected_first100.jsonl", &en);
    ASSERT(exp);
    sink s = {0};
    int failures;
    decode_all(NULL, &s, &failures);
    ASSERT_EQ(failures, 0);
    size_t i = 0;
    for (char *line = exp, *nl; *line; line = nl + 1, i++) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line) - 1;
        else
            *nl = '\0';
        ASSERT(i < s.n);
        cJSON *want = cJSON_Parse(line), *got = cJSON_Parse(s.json[i]);
        int eq = json_eq(want, got, 1);
        int64_t jt = (int64_t)cJSON_GetObjectItem(want, "time_us")->valuedouble;
        cJSON_Delete(want);
        cJSON_Delete(got);
        ASSERT_MSG(eq, "event %zu differs\n  want %s\n  got  %s", i, line, s.json[i]);
        /* our time_us is the relay's frame time; Jetstream's its receipt time */
        ASSERT_MSG(llabs(jt - s.time_us[i]) < 5000000, "event %zu time_us %lld vs %lld", i,
                   (long long)s.time_us[i], (long long)jt);
    }
    ASSERT_EQ(i, 100);
    free(exp);
    sink_free(&s);
}

static mdw_did_resolver *corpus_resolver(void)
{
    char path[1024];
    mdw_did_resolver *r = NULL;
    snprintf(path, sizeof path, "%s/did_docs.json.zst", corpus());
    return mdw_did_resolver_file_open(path, &r) == 0 ? r : NULL;
}

TEST(corpus_every_commit_signature_verifies)
{
    ASSERT_OK(load_frames());
    mdw_did_resolver *r = corpus_resolver();
    ASSERT(r);
    mdw_relay_opts opts = {.resolver = r};
    int commits = 0, verified = 0;
    for (size_t i = 0; i < nframes; i++) {
        mdw_relay_frame info;
        int rc = mdw_relay_decode(frame_ptr[i], frame_len[i], &opts, &info, NULL, NULL);
        ASSERT_MSG(rc == 0, "frame %zu: %s", i, info.err);
        commits += info.type == MDW_RELAY_COMMIT;
        verified += info.sig_verified;
        ASSERT_EQ(info.high_s, 0);
    }
    ASSERT_EQ(commits, 148);
    ASSERT_EQ(verified, 148);
    mdw_did_resolver_close(r);
}

/*
** Copies frame i and changes its commit block with mutate(); then re-hashes
** the block and rewrites every copy of its old digest in the frame (CAR root,
** block CID, the body's commit link), so only the mutation is wrong.
*/
typedef void (*mutate_fn)(uint8_t *sig);

static uint8_t *reforge(size_t i, mutate_fn mutate)
{
    size_t n = frame_len[i];
    uint8_t *f = xmemdup(frame_ptr[i], n);
    mdw_arena a;
    mdw_arena_init(&a);
    const mdw_cbor *hdr, *body;
    size_t used;
    mdw_cbor_decode(f, n, &a, &hdr, &used, NULL, 0);
    mdw_cbor_decode(f + used, n - used, &a, &body, NULL, NULL, 0);
    const mdw_cbor *blocks = mdw_cbor_get(body, "blocks"), *link = mdw_cbor_get(body, "commit");
    mdw_car car;
    mdw_car_open(&car, blocks->v.p, blocks->len, NULL, 0);
    const mdw_car_block *b = mdw_car_find(&car, link->v.p, link->len);
    mdw_repo_commit c;
    mdw_repo_commit_parse(b->data, b->len, &a, &c, NULL, 0);
    uint8_t old[32], neu[32];
    memcpy(old, b->cid.digest, 32);
    mutate((uint8_t *)c.sig);
    mdw_sha256(b->data, b->len, neu);
    mdw_car_release(&car);
    mdw_arena_release(&a);
    for (size_t o = 0; o + 32 <= n; o++)
        if (memcmp(f + o, old, 32) == 0)
            memcpy(f + o, neu, 32);
    return f;
}

static void flip_sig_byte(uint8_t *sig)
{
    sig[20] ^= 0x04;
}

static void make_high_s(uint8_t *sig)
{
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - sig[32 + i] - borrow;
        borrow = d < 0;
        sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

TEST(flipped_signature_byte_fails_clearly)
{
    ASSERT_OK(load_frames());
    mdw_did_resolver *r = corpus_resolver();
    ASSERT(r);
    mdw_relay_opts opts = {.resolver = r};
    for (size_t i = 0; i < 5; i++) {
        uint8_t *f = reforge(i, flip_sig_byte);
        mdw_relay_frame info;
        sink s = {0};
        int rc = mdw_relay_decode(f, frame_len[i], &opts, &info, collect, &s);
        ASSERT_EQ(rc, MDW_ECRYPTO);
        ASSERT_CONTAINS(info.err, "commit signature: does not verify");
        ASSERT_CONTAINS(info.err, "#commit seq ");
        ASSERT_EQ(s.n, 0);
        ASSERT_EQ(info.high_s, 0);
        /* without verification the same frame still decodes: only the signature is bad */
        ASSERT_OK(mdw_relay_decode(f, frame_len[i], NULL, &info, collect, &s));
        ASSERT(s.n > 0);
        sink_free(&s);
        free(f);
    }
    mdw_did_resolver_close(r);
}

TEST(high_s_signature_refused_and_flagged)
{
    ASSERT_OK(load_frames());
    mdw_did_resolver *r = corpus_resolver();
    ASSERT(r);
    uint8_t *f = reforge(0, make_high_s);
    mdw_relay_opts opts = {.resolver = r};
    mdw_relay_frame info;
    ASSERT_EQ(mdw_relay_decode(f, frame_len[0], &opts, &info, NULL, NULL), MDW_ECRYPTO);
    ASSERT_EQ(info.high_s, 1);
    ASSERT_CONTAINS(info.err, "high-S");
    opts.sig_flags = MDW_SIG_ALLOW_HIGH_S;
    ASSERT_OK(mdw_relay_decode(f, frame_len[0], &opts, &info, NULL, NULL));
    ASSERT_EQ(info.high_s, 1);
    ASSERT_EQ(info.sig_verified, 1);
    free(f);
    mdw_did_resolver_close(r);
}

TEST(flipped_block_byte_fails_with_cid_mismatch)
{
    ASSERT_OK(load_frames());
    mdw_did_resolver *r = corpus_resolver();
    ASSERT(r);
    mdw_relay_opts opts = {.resolver = r};
    /* flip the last byte of the blocks (inside the CAR's last block) */
    for (size_t i = 0; i < 10; i++) {
        uint8_t *f = xmemdup(frame_ptr[i], frame_len[i]);
        mdw_arena a;
        mdw_arena_init(&a);
        const mdw_cbor *hdr, *body;
        size_t used;
        ASSERT_OK(mdw_cbor_decode(f, frame_len[i], &a, &hdr, &used, NULL, 0));
        ASSERT_OK(mdw_cbor_decode(f + used, frame_len[i] - used, &a, &body, NULL, NULL, 0));
        const mdw_cbor *blocks = mdw_cbor_get(body, "blocks");
        ASSERT(blocks && blocks->len > 0);
        f[(size_t)(blocks->v.p - f) + blocks->len - 1] ^= 0x01;
        mdw_arena_release(&a);
        mdw_relay_frame info;
        sink s = {0};
        ASSERT_EQ(mdw_relay_decode(f, frame_len[i], &opts, &info, collect, &s), MDW_ECORRUPT);
        ASSERT_CONTAINS(info.err, "does not match its CID (sha-256 mismatch)");
        ASSERT_EQ(s.n, 0);
        free(f);
    }
    mdw_did_resolver_close(r);
}

TEST(missing_did_document_fails)
{
    ASSERT_OK(load_frames());
    const char *dir = TEST_TMPDIR();
    char path[600];
    snprintf(path, sizeof path, "%s/docs.json", dir);
    FILE *fp = fopen(path, "w");
    ASSERT(fp);
    fputs("{}", fp);
    fclose(fp);
    mdw_did_resolver *r;
    ASSERT_OK(mdw_did_resolver_file_open(path, &r));
    mdw_relay_opts opts = {.resolver = r};
    mdw_relay_frame info;
    ASSERT_EQ(mdw_relay_decode(frame_ptr[0], frame_len[0], &opts, &info, NULL, NULL),
              MDW_ENOTFOUND);
    ASSERT_CONTAINS(info.err, "no DID document");
    mdw_did_resolver_close(r);
}

TEST(every_truncation_of_real_frames_fails_without_events)
{
    ASSERT_OK(load_frames());
    for (size_t i = 0; i < 3; i++) {
        for (size_t cut = 0; cut < frame_len[i]; cut++) {
            uint8_t *f = xmemdup(frame_ptr[i], cut ? cut : 1);
            mdw_relay_frame info;
            sink s = {0};
            int rc = mdw_relay_decode(f, cut, NULL, &info, collect, &s);
            free(f);
            ASSERT_MSG(rc != 0, "frame %zu cut at %zu accepted", i, cut);
            ASSERT(info.err[0] != '\0');
            ASSERT_EQ(s.n, 0);
        }
    }
}

TEST(oversize_frame_refused)
{
    ASSERT_OK(load_frames());
    size_t n = MDW_MAX_FRAME_BYTES + 1;
    uint8_t *f = xcalloc(1, n);
    memcpy(f, frame_ptr[0], frame_len[0]);
    mdw_relay_frame info;
    ASSERT_EQ(mdw_relay_decode(f, n, NULL, &info, NULL, NULL), MDW_ETOOBIG);
    ASSERT_CONTAINS(info.err, "over the 5242880-byte limit");
    free(f);
}

/* ---- frames built here (libcbor item API) ---- */

/* libcbor's item API keeps the width asked for: pick the minimal one, as
** DAG-CBOR requires. */
static cbor_item_t *uint_item(uint64_t v)
{
    return v < 0x100            ? cbor_build_uint8((uint8_t)v)
           : v < 0x10000        ? cbor_build_uint16((uint16_t)v)
           : v < 0x100000000ull ? cbor_build_uint32((uint32_t)v)
                                : cbor_build_uint64(v);
}

static void put(cbor_item_t *m, const char *k, cbor_item_t *v)
{
    cbor_map_add(m,
                 (struct cbor_pair){.key = cbor_move(cbor_build_string(k)), .value = cbor_move(v)});
}

static void append_item(mdw_buf *b, cbor_item_t *it)
{
    unsigned char *p;
    size_t cap, n = cbor_serialize_alloc(it, &p, &cap);
    mdw_buf_append(b, p, n);
    free(p);
    cbor_decref(&it);
}

static void header(mdw_buf *b, int op, const char *t)
{
    cbor_item_t *h = cbor_new_definite_map(2);
    put(h, "t", cbor_build_string(t));
    put(h, "op", op >= 0 ? cbor_build_uint8((uint8_t)op) : cbor_build_negint8((uint8_t)(-op - 1)));
    append_item(b, h);
}

static int decode_buf(mdw_buf *b, mdw_relay_frame *info, sink *s)
{
    return mdw_relay_decode((const uint8_t *)b->data, b->len, NULL, info, collect, s);
}

TEST(identity_and_account_frames)
{
    mdw_buf b = MDW_BUF_INIT(1 << 16);
    header(&b, 1, "#identity");
    cbor_item_t *body = cbor_new_definite_map(4);
    put(body, "seq", uint_item(31527015400ull));
    put(body, "did", cbor_build_string("did:plc:abc"));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09.123Z"));
    put(body, "handle", cbor_build_string("alice.example.com"));
    append_item(&b, body);
    mdw_relay_frame info;
    sink s = {0};
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_IDENTITY);
    ASSERT_EQ(info.seq, 31527015400ll);
    ASSERT_EQ(s.n, 1);
    ASSERT_EQ(s.time_us[0], 1783175889123000ll);
    cJSON *got = cJSON_Parse(s.json[0]);
    cJSON *want = cJSON_Parse(
        "{\"did\":\"did:plc:abc\",\"kind\":\"identity\",\"identity\":{\"did\":\"did:plc:abc\","
        "\"seq\":31527015400,\"time\":\"2026-07-04T14:38:09.123Z\",\"handle\":"
        "\"alice.example.com\"}}");
    ASSERT(json_eq(want, got, 1));
    cJSON_Delete(got);
    cJSON_Delete(want);
    sink_free(&s);

    mdw_buf_reset(&b);
    header(&b, 1, "#account");
    body = cbor_new_definite_map(5);
    put(body, "seq", uint_item(7));
    put(body, "did", cbor_build_string("did:plc:abc"));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09.123Z"));
    put(body, "active", cbor_build_bool(false));
    put(body, "status", cbor_build_string("takendown"));
    append_item(&b, body);
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_ACCOUNT);
    ASSERT_EQ(s.n, 1);
    got = cJSON_Parse(s.json[0]);
    want = cJSON_Parse("{\"did\":\"did:plc:abc\",\"kind\":\"account\",\"account\":{\"active\":"
                       "false,\"did\":\"did:plc:abc\",\"seq\":7,\"time\":"
                       "\"2026-07-04T14:38:09.123Z\",\"status\":\"takendown\"}}");
    ASSERT(json_eq(want, got, 1));
    cJSON_Delete(got);
    cJSON_Delete(want);
    sink_free(&s);

    /* account without active is malformed, with a clear reason */
    mdw_buf_reset(&b);
    header(&b, 1, "#account");
    body = cbor_new_definite_map(3);
    put(body, "seq", cbor_build_uint8(8));
    put(body, "did", cbor_build_string("did:plc:abc"));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09.123Z"));
    append_item(&b, body);
    ASSERT_EQ(decode_buf(&b, &info, &s), MDW_EMALFORMED);
    ASSERT_CONTAINS(info.err, "active");
    ASSERT_EQ(s.n, 0);
    mdw_buf_release(&b);
}

TEST(sync_info_error_and_unknown_frames)
{
    mdw_buf b = MDW_BUF_INIT(1 << 16);
    mdw_relay_frame info;
    sink s = {0};
    header(&b, 1, "#sync");
    cbor_item_t *body = cbor_new_definite_map(5);
    put(body, "seq", cbor_build_uint8(9));
    put(body, "did", cbor_build_string("did:plc:resync"));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09Z"));
    put(body, "rev", cbor_build_string("3mptbypluud2a"));
    put(body, "blocks", cbor_build_bytestring((const uint8_t *)"", 0));
    append_item(&b, body);
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_SYNC);
    ASSERT_STREQ(info.did, "did:plc:resync");
    ASSERT_EQ(info.seq, 9);
    ASSERT_EQ(s.n, 0);

    mdw_buf_reset(&b);
    header(&b, 1, "#info");
    body = cbor_new_definite_map(2);
    put(body, "name", cbor_build_string("OutdatedCursor"));
    put(body, "message", cbor_build_string("cursor is older than the window"));
    append_item(&b, body);
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_INFO);
    ASSERT_STREQ(info.name, "OutdatedCursor");
    ASSERT_STREQ(info.message, "cursor is older than the window");

    mdw_buf_reset(&b);
    cbor_item_t *h = cbor_new_definite_map(1);
    put(h, "op", cbor_build_negint8(0)); /* -1: no t */
    append_item(&b, h);
    body = cbor_new_definite_map(2);
    put(body, "error", cbor_build_string("FutureCursor"));
    put(body, "message", cbor_build_string("cursor in the future"));
    append_item(&b, body);
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_ERROR);
    ASSERT_STREQ(info.name, "FutureCursor");

    mdw_buf_reset(&b);
    header(&b, 1, "#labels");
    body = cbor_new_definite_map(1);
    put(body, "seq", cbor_build_uint8(1));
    append_item(&b, body);
    ASSERT_OK(decode_buf(&b, &info, &s));
    ASSERT_EQ(info.type, MDW_RELAY_UNKNOWN);
    ASSERT_STREQ(info.name, "#labels");
    ASSERT_EQ(s.n, 0);

    /* op 2, a header that is not a map, a body that is not a map, trailing bytes */
    mdw_buf_reset(&b);
    header(&b, 2, "#commit");
    append_item(&b, cbor_new_definite_map(0));
    ASSERT_EQ(decode_buf(&b, &info, &s), MDW_EMALFORMED);
    ASSERT_CONTAINS(info.err, "op: 1|-1");
    mdw_buf_reset(&b);
    append_item(&b, cbor_build_string("#commit"));
    append_item(&b, cbor_new_definite_map(0));
    ASSERT_EQ(decode_buf(&b, &info, &s), MDW_EMALFORMED);
    mdw_buf_reset(&b);
    header(&b, 1, "#commit");
    append_item(&b, cbor_build_uint8(1));
    ASSERT_EQ(decode_buf(&b, &info, &s), MDW_EMALFORMED);
    ASSERT_CONTAINS(info.err, "body is not a map");
    mdw_buf_reset(&b);
    header(&b, 1, "#info");
    body = cbor_new_definite_map(1);
    put(body, "name", cbor_build_string("x"));
    append_item(&b, body);
    mdw_buf_putc(&b, 0x00);
    ASSERT_EQ(decode_buf(&b, &info, &s), MDW_EMALFORMED);
    ASSERT_CONTAINS(info.err, "trailing");
    ASSERT_EQ(s.n, 0);
    mdw_buf_release(&b);
}

/* ---- a commit built and signed here ---- */

static void cid_of(const uint8_t *d, size_t n, uint8_t cid[36])
{
    cid[0] = 1, cid[1] = 0x71, cid[2] = 0x12, cid[3] = 0x20;
    mdw_sha256(d, n, cid + 4);
}

static cbor_item_t *cid_link(const uint8_t cid[36])
{
    uint8_t b[37] = {0};
    memcpy(b + 1, cid, 36);
    return cbor_build_tag(42, cbor_move(cbor_build_bytestring(b, 37)));
}

static size_t ser(cbor_item_t *it, uint8_t **out)
{
    size_t cap, n = cbor_serialize_alloc(it, out, &cap);
    cbor_decref(&it);
    return n;
}

static void car_block(mdw_buf *car, const uint8_t cid[36], const uint8_t *d, size_t n)
{
    size_t l = 36 + n;
    while (l >= 0x80) {
        mdw_buf_putc(car, (char)(l | 0x80));
        l >>= 7;
    }
    mdw_buf_putc(car, (char)l);
    mdw_buf_append(car, cid, 36);
    mdw_buf_append(car, d, n);
}

/* The unsigned commit {did, rev, data, prev, version} in canonical order,
 * plus sig when given. */
static size_t commit_obj(const char *did, const char *rev, const uint8_t data[36],
                         const uint8_t *sig, uint8_t **out)
{
    cbor_item_t *c = cbor_new_definite_map(sig ? 6 : 5);
    put(c, "did", cbor_build_string(did));
    put(c, "rev", cbor_build_string(rev));
    if (sig)
        put(c, "sig", cbor_build_bytestring(sig, 64));
    put(c, "data", cid_link(data));
    put(c, "prev", cbor_build_ctrl(CBOR_CTRL_NULL));
    put(c, "version", cbor_build_uint8(3));
    return ser(c, out);
}

static int p256_sign(EVP_PKEY *key, const uint8_t *msg, size_t n, uint8_t sig[64])
{
    uint8_t digest[32], der[80];
    size_t dl = sizeof der;
    mdw_sha256(msg, n, digest);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx && EVP_PKEY_sign_init(ctx) > 0 && EVP_PKEY_sign(ctx, der, &dl, digest, 32) > 0;
    EVP_PKEY_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *es = ok ? d2i_ECDSA_SIG(NULL, &p, (long)dl) : NULL;
    if (!es)
        return -1;
    BIGNUM *s = BN_dup(ECDSA_SIG_get0_s(es)), *order = BN_new(), *half = BN_new();
    BN_hex2bn(&order, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    BN_rshift1(half, order);
    if (BN_cmp(s, half) > 0) /* low-S, as atproto signers produce */
        BN_sub(s, order, s);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(s, sig + 32, 32);
    BN_free(s);
    BN_free(order);
    BN_free(half);
    ECDSA_SIG_free(es);
    return 0;
}

TEST(p256_signed_commit_end_to_end_with_bytes_and_links)
{
    const char *did = "did:plc:p256testaccount0000000", *rev = "3mptbypluud2a";
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ASSERT(key);
    uint8_t raw[65];
    size_t rl;
    ASSERT(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, raw, sizeof raw,
                                           &rl));
    mdw_pubkey pk;
    ASSERT_OK(mdw_pubkey_from_sec1(MDW_KEY_P256, raw, rl, &pk));
    mdw_buf didkey = MDW_BUF_INIT(256);
    ASSERT_OK(mdw_pubkey_to_did_key(&pk, &didkey));

    /* a record with bytes, a link and nesting */
    const uint8_t blob_bytes[] = {0xfb, 0xff, 0x00, 0x10};
    cbor_item_t *rec = cbor_new_definite_map(5);
    put(rec, "$type", cbor_build_string("net.atrarium.test"));
    put(rec, "data", cbor_build_bytestring(blob_bytes, sizeof blob_bytes));
    uint8_t target[36];
    cid_of((const uint8_t *)"t", 1, target);
    put(rec, "ref", cid_link(target));
    put(rec, "n", cbor_build_negint8(41));
    put(rec, "createdAt", cbor_build_string("2026-07-04T14:38:08.999Z"));
    uint8_t *recb;
    size_t recl = ser(rec, &recb);
    uint8_t rec_cid[36], data_cid[36];
    cid_of(recb, recl, rec_cid);
    cid_of((const uint8_t *)"mst", 3, data_cid); /* the MST is not walked here */
    uint8_t *unsig, sig[64], *signed_c;
    size_t ul = commit_obj(did, rev, data_cid, NULL, &unsig);
    ASSERT_OK(p256_sign(key, unsig, ul, sig));
    size_t sl = commit_obj(did, rev, data_cid, sig, &signed_c);
    uint8_t commit_cid[36];
    cid_of(signed_c, sl, commit_cid);

    mdw_buf car = MDW_BUF_INIT(1 << 16);
    cbor_item_t *ch = cbor_new_definite_map(2);
    cbor_item_t *roots = cbor_new_definite_array(1);
    cbor_array_push(roots, cbor_move(cid_link(commit_cid)));
    put(ch, "roots", roots);
    put(ch, "version", cbor_build_uint8(1));
    uint8_t *chb;
    size_t chl = ser(ch, &chb);
    mdw_buf_putc(&car, (char)chl);
    mdw_buf_append(&car, chb, chl);
    car_block(&car, commit_cid, signed_c, sl);
    car_block(&car, rec_cid, recb, recl);

    mdw_buf fr = MDW_BUF_INIT(1 << 16);
    header(&fr, 1, "#commit");
    cbor_item_t *body = cbor_new_definite_map(8);
    put(body, "seq", uint_item(1000));
    put(body, "repo", cbor_build_string(did));
    put(body, "rev", cbor_build_string(rev));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09.5Z"));
    put(body, "commit", cid_link(commit_cid));
    put(body, "blocks", cbor_build_bytestring((const uint8_t *)car.data, car.len));
    cbor_item_t *ops = cbor_new_definite_array(2);
    cbor_item_t *op = cbor_new_definite_map(3);
    put(op, "action", cbor_build_string("create"));
    put(op, "path", cbor_build_string("net.atrarium.test/3mptbyplj5d2a"));
    put(op, "cid", cid_link(rec_cid));
    cbor_array_push(ops, cbor_move(op));
    op = cbor_new_definite_map(3);
    put(op, "action", cbor_build_string("delete"));
    put(op, "path", cbor_build_string("app.bsky.feed.post/3mptbyplj5d2b"));
    put(op, "cid", cbor_build_ctrl(CBOR_CTRL_NULL));
    cbor_array_push(ops, cbor_move(op));
    put(body, "ops", ops);
    put(body, "since", cbor_build_ctrl(CBOR_CTRL_NULL));
    append_item(&fr, body);

    /* the DID document, as a file the resolver reads */
    const char *dir = TEST_TMPDIR();
    char path[600];
    snprintf(path, sizeof path, "%s/docs.json", dir);
    FILE *fp = fopen(path, "w");
    ASSERT(fp);
    fprintf(fp,
            "{\"%s\":{\"id\":\"%s\",\"alsoKnownAs\":[\"at://p256.example\"],"
            "\"verificationMethod\":[{\"id\":\"%s#atproto\",\"type\":\"Multikey\","
            "\"controller\":\"%s\",\"publicKeyMultibase\":\"%s\"}],\"service\":[{\"id\":"
            "\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":"
            "\"https://pds.example\"}]}}",
            did, did, did, did, didkey.data + strlen("did:key:"));
    fclose(fp);
    mdw_did_resolver *r;
    ASSERT_OK(mdw_did_resolver_file_open(path, &r));
    mdw_diddoc doc;
    ASSERT_OK(mdw_did_resolve(r, did, &doc));
    ASSERT_STREQ(doc.handle, "p256.example");
    ASSERT_STREQ(doc.pds, "https://pds.example");
    ASSERT_EQ(doc.key.type, MDW_KEY_P256);
    mdw_diddoc_release(&doc);

    mdw_relay_opts opts = {.resolver = r};
    mdw_relay_frame info;
    sink s = {0};
    int rc = mdw_relay_decode((const uint8_t *)fr.data, fr.len, &opts, &info, collect, &s);
    ASSERT_MSG(rc == 0, "%s", info.err);
    ASSERT_EQ(info.sig_verified, 1);
    ASSERT_EQ(s.n, 2);
    mdw_buf rec_text = MDW_BUF_INIT(128), tgt_text = MDW_BUF_INIT(128);
    mdw_cid_bytes_to_text(rec_cid, 36, &rec_text);
    mdw_cid_bytes_to_text(target, 36, &tgt_text);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"did\":\"%s\",\"kind\":\"commit\",\"commit\":{\"rev\":\"%s\",\"operation\":"
             "\"create\",\"collection\":\"net.atrarium.test\",\"rkey\":\"3mptbyplj5d2a\","
             "\"record\":{\"$type\":\"net.atrarium.test\",\"createdAt\":"
             "\"2026-07-04T14:38:08.999Z\",\"data\":{\"$bytes\":\"+/8AEA\"},\"n\":-42,"
             "\"ref\":{\"$link\":\"%s\"}},\"cid\":\"%s\"}}",
             did, rev, tgt_text.data, rec_text.data);
    cJSON *w = cJSON_Parse(want), *g = cJSON_Parse(s.json[0]);
    ASSERT_MSG(json_eq(w, g, 1), "\n  want %s\n  got  %s", want, s.json[0]);
    cJSON_Delete(w);
    cJSON_Delete(g);
    ASSERT_EQ(s.time_us[0], 1783175889500000ll);
    ASSERT_CONTAINS(s.json[1], "\"operation\":\"delete\"");
    ASSERT(strstr(s.json[1], "\"record\"") == NULL && strstr(s.json[1], "\"cid\"") == NULL);
    sink_free(&s);

    /* another key's document: the same frame fails */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t sig2[64];
    ASSERT_OK(p256_sign(other, unsig, ul, sig2));
    EVP_PKEY_free(other);
    mdw_repo_commit c;
    mdw_arena a;
    mdw_arena_init(&a);
    uint8_t *signed2;
    size_t sl2 = commit_obj(did, rev, data_cid, sig2, &signed2);
    ASSERT_OK(mdw_repo_commit_parse(signed2, sl2, &a, &c, NULL, 0));
    char err[200];
    ASSERT_EQ(mdw_repo_commit_verify(&c, &pk, 0, NULL, err, sizeof err), MDW_ECRYPTO);
    ASSERT_CONTAINS(err, "does not verify");
    mdw_arena_release(&a);
    free(signed2);

    mdw_did_resolver_close(r);
    mdw_buf_release(&rec_text);
    mdw_buf_release(&tgt_text);
    mdw_buf_release(&fr);
    mdw_buf_release(&car);
    mdw_buf_release(&didkey);
    free(recb);
    free(unsig);
    free(signed_c);
    free(chb);
    EVP_PKEY_free(key);
}

static int only_posts(void *ctx, const char *collection)
{
    return strcmp(collection, "app.bsky.feed.post") == 0;
}

TEST(want_filter_and_emit_stop)
{
    ASSERT_OK(load_frames());
    mdw_relay_opts opts = {.want = only_posts};
    sink s = {0};
    int skipped = 0;
    for (size_t i = 0; i < nframes; i++) {
        mdw_relay_frame info;
        ASSERT_OK(mdw_relay_decode(frame_ptr[i], frame_len[i], &opts, &info, collect, &s));
        skipped += info.ops_skipped;
    }
    size_t posts = 0, ident_acct = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.kind[i] == MDW_EV_COMMIT) {
            ASSERT_CONTAINS(s.json[i], "\"collection\":\"app.bsky.feed.post\"");
            posts++;
        } else {
            ident_acct++;
        }
    }
    ASSERT(posts > 0);
    ASSERT_EQ(ident_acct, 2); /* identity and account pass whatever the filter */
    ASSERT_EQ(posts + (size_t)skipped + ident_acct, 152);
    sink_free(&s);
    /* the callback's non-zero return stops the frame and is returned */
    s.stop_after = 1;
    for (size_t i = 0; i < nframes; i++) {
        mdw_relay_frame info;
        mdw_relay_decode(frame_ptr[i], frame_len[i], NULL, &info, NULL, NULL);
        if (info.events >= 2) {
            ASSERT_EQ(mdw_relay_decode(frame_ptr[i], frame_len[i], NULL, &info, collect, &s), 99);
            ASSERT_EQ(s.n, 1);
            break;
        }
    }
    sink_free(&s);
}

TEST(deeply_nested_record_skips_only_that_op)
{
    /* a frame whose one create's record nests 100 maps deep, beside a delete */
    mdw_buf rec = MDW_BUF_INIT(1 << 16);
    for (int i = 0; i < 100; i++)
        mdw_buf_append(&rec,
                       "\xa1\x61"
                       "a",
                       3);
    mdw_buf_putc(&rec, 0x01);
    uint8_t rec_cid[36], commit_cid[36];
    cid_of((const uint8_t *)rec.data, rec.len, rec_cid);
    cid_of((const uint8_t *)"c", 1, commit_cid);
    mdw_buf car = MDW_BUF_INIT(1 << 16);
    cbor_item_t *ch = cbor_new_definite_map(2);
    cbor_item_t *roots = cbor_new_definite_array(1);
    cbor_array_push(roots, cbor_move(cid_link(commit_cid)));
    put(ch, "roots", roots);
    put(ch, "version", cbor_build_uint8(1));
    uint8_t *chb;
    size_t chl = ser(ch, &chb);
    mdw_buf_putc(&car, (char)chl);
    mdw_buf_append(&car, chb, chl);
    free(chb);
    car_block(&car, rec_cid, (const uint8_t *)rec.data, rec.len);
    mdw_buf fr = MDW_BUF_INIT(1 << 16);
    header(&fr, 1, "#commit");
    cbor_item_t *body = cbor_new_definite_map(6);
    put(body, "seq", cbor_build_uint8(5));
    put(body, "repo", cbor_build_string("did:plc:deep"));
    put(body, "rev", cbor_build_string("3mptbypluud2a"));
    put(body, "time", cbor_build_string("2026-07-04T14:38:09Z"));
    put(body, "blocks", cbor_build_bytestring((const uint8_t *)car.data, car.len));
    cbor_item_t *ops = cbor_new_definite_array(2);
    cbor_item_t *op = cbor_new_definite_map(3);
    put(op, "action", cbor_build_string("create"));
    put(op, "path", cbor_build_string("app.bsky.feed.post/a"));
    put(op, "cid", cid_link(rec_cid));
    cbor_array_push(ops, cbor_move(op));
    op = cbor_new_definite_map(2);
    put(op, "action", cbor_build_string("delete"));
    put(op, "path", cbor_build_string("app.bsky.feed.post/b"));
    cbor_array_push(ops, cbor_move(op));
    put(body, "ops", ops);
    append_item(&fr, body);
    mdw_relay_frame info;
    sink s = {0};
    ASSERT_OK(decode_buf(&fr, &info, &s));
    ASSERT_EQ(info.ops_failed, 1);
    ASSERT_CONTAINS(info.err, "nesting deeper than 64");
    ASSERT_EQ(s.n, 1);
    ASSERT_CONTAINS(s.json[0], "\"rkey\":\"b\"");
    sink_free(&s);
    mdw_buf_release(&fr);
    mdw_buf_release(&car);
    mdw_buf_release(&rec);
}

TEST(zstd_and_plain_inputs_and_truncated_zstd)
{
    ASSERT_OK(load_frames());
    char path[1024], *full, *cut, *plain;
    size_t n, m, k;
    snprintf(path, sizeof path, "%s/relay_frames.bin.zst", corpus());
    ASSERT_OK(mdw_zfile_slurp(path, 64u << 20, &full, &n));
    /* a plain copy reads back the same bytes */
    const char *dir = TEST_TMPDIR();
    char p2[600], p3[600];
    snprintf(p2, sizeof p2, "%s/plain.bin", dir);
    FILE *f = fopen(p2, "wb");
    ASSERT(f && fwrite(full, 1, n, f) == n);
    fclose(f);
    ASSERT_OK(mdw_zfile_slurp(p2, 64u << 20, &plain, &k));
    ASSERT_EQ(k, n);
    ASSERT(memcmp(plain, full, n) == 0);
    free(plain);
    /* the compressed file cut in half: an error, not a silently short read */
    char *z;
    size_t zn;
    FILE *zf = fopen(path, "rb");
    ASSERT(zf);
    z = xmalloc(1 << 20);
    zn = fread(z, 1, 1 << 20, zf);
    fclose(zf);
    snprintf(p3, sizeof p3, "%s/cut.zst", dir);
    f = fopen(p3, "wb");
    ASSERT(f && fwrite(z, 1, zn / 2, f) == zn / 2);
    fclose(f);
    free(z);
    ASSERT_EQ(mdw_zfile_slurp(p3, 64u << 20, &cut, &m), MDW_EMALFORMED);
    /* over the stated maximum: MDW_ETOOBIG */
    ASSERT_EQ(mdw_zfile_slurp(path, 1000, &cut, &m), MDW_ETOOBIG);
    ASSERT_EQ(mdw_zfile_slurp("/nonexistent/x", 10, &cut, &m), -2);
    free(full);
}

int main(void)
{
    RUN(corpus_window_counts_match_manifest);
    RUN(corpus_first_100_equal_production_jetstream_in_order);
    RUN(corpus_every_commit_signature_verifies);
    RUN(flipped_signature_byte_fails_clearly);
    RUN(high_s_signature_refused_and_flagged);
    RUN(flipped_block_byte_fails_with_cid_mismatch);
    RUN(missing_did_document_fails);
    RUN(every_truncation_of_real_frames_fails_without_events);
    RUN(oversize_frame_refused);
    RUN(identity_and_account_frames);
    RUN(sync_info_error_and_unknown_frames);
    RUN(p256_signed_commit_end_to_end_with_bytes_and_links);
    RUN(want_filter_and_emit_stop);
    RUN(deeply_nested_record_skips_only_that_op);
    RUN(zstd_and_plain_inputs_and_truncated_zstd);
    free(frames_blob);
    return TEST_REPORT();
}
