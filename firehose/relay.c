/*
** firehose/relay.c — see relay.h. One call decodes one frame: header and
** body through cbor.c, the commit's CAR slice through car.c (every block
** hashed), the optional signature check through relay_commit.c, then one
** JSON event per op written straight into a bounded buffer (Jetstream's key
** names and nesting; object key order inside records is Go's, sorted).
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "firehose/car.h"
#include "firehose/cbor.h"
#include "firehose/cid.h"
#include "firehose/relay.h"
#include "firehose/relay_commit.h"
#include "common/banned.h"

typedef struct fr {
    const mdw_relay_opts *opts;
    mdw_relay_frame *info;
    mdw_relay_emit_fn emit;
    void *ctx;
    mdw_arena arena; /* header, body, commit object */
    mdw_buf json;    /* the event being written */
} fr;

const char *mdw_relay_frame_type_name(mdw_relay_frame_type t)
{
    switch (t) {
    case MDW_RELAY_COMMIT:
        return "#commit";
    case MDW_RELAY_IDENTITY:
        return "#identity";
    case MDW_RELAY_ACCOUNT:
        return "#account";
    case MDW_RELAY_SYNC:
        return "#sync";
    case MDW_RELAY_INFO:
        return "#info";
    case MDW_RELAY_ERROR:
        return "error";
    case MDW_RELAY_UNKNOWN:
        return "unknown";
    default:
        return "none";
    }
}

static int ferr(fr *f, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ferr(fr *f, int rc, const char *fmt, ...)
{
    mdw_relay_frame *in = f->info;
    char msg[MDW_RELAY_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* prefix, then the reason cut to what fits (no snprintf truncation games) */
    size_t k = 0;
    if (in->seq >= 0)
        k = (size_t)snprintf(in->err, sizeof in->err,
                             "%s seq %lld%s%.200s: ", mdw_relay_frame_type_name(in->type),
                             (long long)in->seq, in->did[0] ? " " : "", in->did);
    if (k >= sizeof in->err)
        k = sizeof in->err - 1;
    size_t m = strlen(msg);
    if (m > sizeof in->err - 1 - k)
        m = sizeof in->err - 1 - k;
    memcpy(in->err + k, msg, m);
    in->err[k + m] = '\0';
    return rc;
}

/* Copies a TEXT node into dst (NUL-terminated); 0 or MDW_EMALFORMED/ETOOBIG. */
static int text_copy(const mdw_cbor *n, char *dst, size_t cap)
{
    if (!n || n->type != MDW_CBOR_TEXT)
        return MDW_EMALFORMED;
    if (n->len >= cap)
        return MDW_ETOOBIG;
    if (memchr(n->v.p, 0, n->len))
        return MDW_EMALFORMED;
    memcpy(dst, n->v.p, n->len);
    dst[n->len] = '\0';
    return 0;
}

static int get_seq(fr *f, const mdw_cbor *body)
{
    int64_t seq;
    if (mdw_cbor_int(mdw_cbor_get(body, "seq"), &seq) || seq < 0)
        return ferr(f, MDW_EMALFORMED, "%s: missing or invalid seq",
                    mdw_relay_frame_type_name(f->info->type));
    f->info->seq = seq;
    return 0;
}

static int get_did(fr *f, const mdw_cbor *body, const char *key)
{
    int rc = text_copy(mdw_cbor_get(body, key), f->info->did, sizeof f->info->did);
    if (rc == 0 && strncmp(f->info->did, "did:", 4) != 0)
        rc = MDW_EMALFORMED;
    if (rc) {
        f->info->did[0] = '\0';
        return ferr(f, rc, "missing or invalid %s", key);
    }
    return 0;
}

static int get_time(fr *f, const mdw_cbor *body, int64_t *us)
{
    char t[64];
    if (text_copy(mdw_cbor_get(body, "time"), t, sizeof t) || mdw_time_parse(t, us))
        return ferr(f, MDW_EMALFORMED, "missing or invalid time");
    return 0;
}

/* The common head of every event: {"did":…,"time_us":…,"kind":"…","<kind>":{ */
static int json_head(fr *f, const char *kind, int64_t time_us)
{
    mdw_buf *b = &f->json;
    mdw_buf_reset(b);
    int rc = mdw_buf_puts(b, "{\"did\":");
    if (!rc)
        rc = mdw_buf_json_str(b, f->info->did, strlen(f->info->did));
    if (!rc)
        rc = mdw_buf_printf(b, ",\"time_us\":%lld,\"kind\":\"%s\",\"%s\":{", (long long)time_us,
                            kind, kind);
    return rc;
}

static int json_text_field(mdw_buf *b, const char *key, const mdw_cbor *n)
{
    int rc = mdw_buf_printf(b, "\"%s\":", key);
    return rc ? rc : mdw_buf_json_str(b, (const char *)n->v.p, n->len);
}

static int do_emit(fr *f, mdw_relay_event *ev)
{
    ev->did = f->info->did;
    ev->seq = f->info->seq;
    ev->json = f->json.data;
    ev->json_len = f->json.len;
    f->info->events++;
    return f->emit ? f->emit(f->ctx, ev) : 0;
}

/*
** The tail #identity and #account share: <lead>"did","seq","time", the
** optional text field opt_key when it is text, then the event goes out.
*/
static int emit_repo_event(fr *f, const char *kind_name, mdw_relay_event_kind kind, int64_t us,
                           const char *lead, const mdw_cbor *time, const char *opt_key,
                           const mdw_cbor *opt)
{
    mdw_buf *b = &f->json;
    int rc = json_head(f, kind_name, us);
    if (!rc)
        rc = mdw_buf_printf(b, "%s\"did\":", lead);
    if (!rc)
        rc = mdw_buf_json_str(b, f->info->did, strlen(f->info->did));
    if (!rc)
        rc = mdw_buf_printf(b, ",\"seq\":%lld,", (long long)f->info->seq);
    if (!rc)
        rc = json_text_field(b, "time", time);
    if (!rc && opt && opt->type == MDW_CBOR_TEXT) {
        rc = mdw_buf_putc(b, ',');
        if (!rc)
            rc = json_text_field(b, opt_key, opt);
    }
    if (!rc)
        rc = mdw_buf_puts(b, "}}");
    if (rc)
        return ferr(f, rc, "event over %u bytes", MDW_MAX_EVENT_BYTES);
    mdw_relay_event ev = {.kind = kind, .time_us = us};
    return do_emit(f, &ev);
}

/* #identity {seq, did, time, handle?} -> {"did","seq","time","handle"?} */
static int do_identity(fr *f, const mdw_cbor *body)
{
    int64_t us;
    int rc;
    const mdw_cbor *time = mdw_cbor_get(body, "time"), *handle = mdw_cbor_get(body, "handle");
    if ((rc = get_seq(f, body)) || (rc = get_did(f, body, "did")) || (rc = get_time(f, body, &us)))
        return rc;
    if (handle && handle->type != MDW_CBOR_TEXT && handle->type != MDW_CBOR_NULL)
        return ferr(f, MDW_EMALFORMED, "handle is not text");
    return emit_repo_event(f, "identity", MDW_EV_IDENTITY, us, "", time, "handle", handle);
}

/* #account {seq, did, time, active, status?} -> {"active","did","seq","time","status"?} */
static int do_account(fr *f, const mdw_cbor *body)
{
    int64_t us;
    int rc;
    const mdw_cbor *time = mdw_cbor_get(body, "time"), *active = mdw_cbor_get(body, "active");
    const mdw_cbor *status = mdw_cbor_get(body, "status");
    if ((rc = get_seq(f, body)) || (rc = get_did(f, body, "did")) || (rc = get_time(f, body, &us)))
        return rc;
    if (!active || active->type != MDW_CBOR_BOOL)
        return ferr(f, MDW_EMALFORMED, "missing or invalid active");
    if (status && status->type != MDW_CBOR_TEXT && status->type != MDW_CBOR_NULL)
        return ferr(f, MDW_EMALFORMED, "status is not text");
    return emit_repo_event(f, "account", MDW_EV_ACCOUNT, us,
                           active->v.u ? "\"active\":true," : "\"active\":false,", time, "status",
                           status);
}

/* #sync {seq, did, blocks, rev, time}: reported, never converted. */
static int do_sync(fr *f, const mdw_cbor *body)
{
    int rc;
    int64_t us;
    if ((rc = get_seq(f, body)) || (rc = get_did(f, body, "did")) || (rc = get_time(f, body, &us)))
        return rc;
    return 0;
}

/* #info {name, message?} and error frames {error, message?}. */
static int do_named(fr *f, const mdw_cbor *body, const char *name_key)
{
    int rc = text_copy(mdw_cbor_get(body, name_key), f->info->name, sizeof f->info->name);
    if (rc)
        return ferr(f, MDW_EMALFORMED, "%s frame without a valid %s",
                    mdw_relay_frame_type_name(f->info->type), name_key);
    const mdw_cbor *m = mdw_cbor_get(body, "message");
    if (m && m->type == MDW_CBOR_TEXT) {
        size_t n = m->len < sizeof f->info->message - 1 ? m->len : sizeof f->info->message - 1;
        memcpy(f->info->message, m->v.p, n);
        f->info->message[n] = '\0';
    }
    return 0;
}

/* NSID-ish and record-key character checks (as Jetstream drops invalid ones). */
static int valid_collection(const char *s, size_t n)
{
    if (n == 0 || n > 317 || !memchr(s, '.', n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int valid_rkey(const char *s, size_t n)
{
    if (n == 0 || n > 512 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '~'))
            return 0;
    }
    return 1;
}

/* A revision is a TID (13 base32-sortable characters); allow any short
** lowercase alphanumeric string so it needs no JSON escaping. */
static int valid_rev(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static int op_fail(fr *f, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int op_fail(fr *f, size_t i, const char *fmt, ...)
{
    f->info->ops_failed++;
    if (f->info->ops_failed == 1) {
        char msg[MDW_RELAY_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ferr(f, 0, "op %zu: %s", i, msg);
    }
    return 0;
}

static int verify_commit(fr *f, const mdw_car *car, const mdw_cbor *body)
{
    const mdw_cbor *link = mdw_cbor_get(body, "commit");
    mdw_cid cid;
    if (!link || link->type != MDW_CBOR_LINK || mdw_cid_parse(link->v.p, link->len, &cid, NULL))
        return ferr(f, MDW_EMALFORMED, "no commit link to verify");
    const mdw_car_block *b = mdw_car_find(car, cid.bytes, cid.len);
    if (!b)
        return ferr(f, MDW_EMALFORMED, "commit block missing from blocks");
    mdw_repo_commit c;
    char why[MDW_RELAY_ERR_MAX];
    if (mdw_repo_commit_parse(b->data, b->len, &f->arena, &c, why, sizeof why))
        return ferr(f, MDW_EMALFORMED, "%s", why);
    size_t dl = strlen(f->info->did);
    if (c.did_len != dl || memcmp(c.did, f->info->did, dl) != 0)
        return ferr(f, MDW_ECRYPTO, "commit object is for %.*s, not the frame's repo",
                    (int)(c.did_len > 200 ? 200 : c.did_len), c.did);
    const mdw_cbor *rev = mdw_cbor_get(body, "rev");
    if (!rev || rev->type != MDW_CBOR_TEXT || rev->len != c.rev_len ||
        memcmp(rev->v.p, c.rev, c.rev_len) != 0)
        return ferr(f, MDW_ECRYPTO, "frame rev differs from the signed commit's rev");
    mdw_diddoc doc;
    int rc = mdw_did_resolve(f->opts->resolver, f->info->did, &doc);
    if (rc)
        return ferr(f, rc == MDW_ENOTFOUND ? MDW_ENOTFOUND : rc, "no DID document (%s)",
                    mdw_strerror(rc));
    if (!doc.has_key) {
        mdw_diddoc_release(&doc);
        return ferr(f, MDW_ECRYPTO, "DID document has no usable #atproto key");
    }
    rc =
        mdw_repo_commit_verify(&c, &doc.key, f->opts->sig_flags, &f->info->high_s, why, sizeof why);
    mdw_diddoc_release(&doc);
    if (rc)
        return ferr(f, MDW_ECRYPTO, "%s", why);
    f->info->sig_verified = 1;
    return 0;
}

static int one_op(fr *f, const mdw_car *car, const mdw_cbor *op, size_t i, const char *rev_json,
                  int64_t us)
{
    const mdw_cbor *action = mdw_cbor_get(op, "action"), *path = mdw_cbor_get(op, "path");
    const mdw_cbor *cidn = mdw_cbor_get(op, "cid");
    mdw_relay_op kind = mdw_cbor_text_is(action, "create")   ? MDW_OP_CREATE
                        : mdw_cbor_text_is(action, "update") ? MDW_OP_UPDATE
                        : mdw_cbor_text_is(action, "delete") ? MDW_OP_DELETE
                                                             : MDW_OP_NONE;
    if (kind == MDW_OP_NONE)
        return op_fail(f, i, "unknown action");
    if (!path || path->type != MDW_CBOR_TEXT)
        return op_fail(f, i, "no path");
    const char *p = (const char *)path->v.p;
    const char *slash = memchr(p, '/', path->len);
    if (!slash)
        return op_fail(f, i, "path without '/'");
    size_t cl = (size_t)(slash - p), rl = path->len - cl - 1;
    if (!valid_collection(p, cl) || !valid_rkey(slash + 1, rl))
        return op_fail(f, i, "invalid collection or record key in path");
    char coll[320], rkey[520];
    memcpy(coll, p, cl);
    coll[cl] = '\0';
    memcpy(rkey, slash + 1, rl);
    rkey[rl] = '\0';
    if (f->opts && f->opts->want && !f->opts->want(f->opts->want_ctx, coll)) {
        f->info->ops_skipped++;
        return 0;
    }
    mdw_cid cid;
    const mdw_car_block *blk = NULL;
    if (kind != MDW_OP_DELETE) {
        if (!cidn || cidn->type != MDW_CBOR_LINK || mdw_cid_parse(cidn->v.p, cidn->len, &cid, NULL))
            return op_fail(f, i, "%s without a record CID",
                           kind == MDW_OP_CREATE ? "create" : "update");
        if (!(blk = mdw_car_find(car, cid.bytes, cid.len)))
            return op_fail(f, i, "record block %s/%s missing from blocks", coll, rkey);
    }
    mdw_buf *b = &f->json;
    static const char *const names[] = {"", "create", "update", "delete"};
    int rc = json_head(f, "commit", us);
    if (!rc)
        rc = mdw_buf_printf(b, "\"rev\":%s,\"operation\":\"%s\",\"collection\":\"%s\",\"rkey\":",
                            rev_json, names[kind], coll);
    if (!rc)
        rc = mdw_buf_json_str(b, rkey, rl);
    if (!rc && blk) {
        mdw_arena ra;
        mdw_arena_init(&ra);
        const mdw_cbor *rec;
        char why[200];
        if (blk->len > MDW_MAX_RECORD_BYTES) {
            mdw_arena_release(&ra);
            return op_fail(f, i, "record of %zu bytes over the limit", blk->len);
        }
        if ((rc = mdw_cbor_decode(blk->data, blk->len, &ra, &rec, NULL, why, sizeof why)) ||
            rec->type != MDW_CBOR_MAP) {
            mdw_arena_release(&ra);
            return op_fail(f, i, "record %s/%s: %s", coll, rkey, rc ? why : "not a map");
        }
        rc = mdw_buf_puts(b, ",\"record\":");
        if (!rc && (rc = mdw_cbor_to_json(rec, b, why, sizeof why)) == MDW_EMALFORMED) {
            mdw_arena_release(&ra);
            return op_fail(f, i, "record %s/%s: %s", coll, rkey, why);
        }
        mdw_arena_release(&ra);
        if (!rc)
            rc = mdw_buf_puts(b, ",\"cid\":\"");
        if (!rc)
            rc = mdw_cid_to_text(&cid, b);
        if (!rc)
            rc = mdw_buf_putc(b, '"');
    }
    if (!rc)
        rc = mdw_buf_puts(b, "}}");
    if (rc)
        return op_fail(f, i, "event over %u bytes", MDW_MAX_EVENT_BYTES);
    mdw_relay_event ev = {
        .kind = MDW_EV_COMMIT, .op = kind, .collection = coll, .rkey = rkey, .time_us = us};
    return do_emit(f, &ev);
}

static int do_commit(fr *f, const mdw_cbor *body)
{
    int rc;
    int64_t us;
    if ((rc = get_seq(f, body)) || (rc = get_did(f, body, "repo")) || (rc = get_time(f, body, &us)))
        return rc;
    const mdw_cbor *rev = mdw_cbor_get(body, "rev"), *blocks = mdw_cbor_get(body, "blocks");
    const mdw_cbor *ops = mdw_cbor_get(body, "ops"), *too_big = mdw_cbor_get(body, "tooBig");
    if (!rev || rev->type != MDW_CBOR_TEXT || !valid_rev((const char *)rev->v.p, rev->len))
        return ferr(f, MDW_EMALFORMED, "missing or invalid rev");
    if (!ops || ops->type != MDW_CBOR_ARRAY)
        return ferr(f, MDW_EMALFORMED, "missing ops");
    if (!blocks || blocks->type != MDW_CBOR_BYTES)
        return ferr(f, MDW_EMALFORMED, "missing blocks");
    if (too_big && too_big->type == MDW_CBOR_BOOL && too_big->v.u && blocks->len == 0) {
        /* Legacy (before Sync 1.1): the relay left the blocks out; nothing to
        ** convert. With blocks present the flag is ignored (it is not signed). */
        snprintf(f->info->name, sizeof f->info->name, "tooBig");
        return 0;
    }
    mdw_car car;
    char why[MDW_RELAY_ERR_MAX];
    if ((rc = mdw_car_open(&car, blocks->v.p, blocks->len, why, sizeof why)))
        return ferr(f, rc, "%s", why);
    if (f->opts && f->opts->resolver && (rc = verify_commit(f, &car, body))) {
        mdw_car_release(&car);
        return rc;
    }
    char rev_json[72];
    snprintf(rev_json, sizeof rev_json, "\"%.*s\"", (int)rev->len, (const char *)rev->v.p);
    for (size_t i = 0; i < ops->len && rc == 0; i++)
        rc = one_op(f, &car, &ops->v.items[i], i, rev_json, us);
    mdw_car_release(&car);
    return rc;
}

int mdw_relay_decode(const uint8_t *frame, size_t len, const mdw_relay_opts *opts,
                     mdw_relay_frame *info, mdw_relay_emit_fn emit, void *ctx)
{
    memset(info, 0, sizeof *info);
    info->seq = -1;
    fr f = {opts, info, emit, ctx, {0}, MDW_BUF_INIT(MDW_MAX_EVENT_BYTES)};
    mdw_arena_init(&f.arena);
    if (len > MDW_MAX_FRAME_BYTES)
        return ferr(&f, MDW_ETOOBIG, "frame of %zu bytes is over the %u-byte limit", len,
                    MDW_MAX_FRAME_BYTES);
    const mdw_cbor *hdr, *body;
    size_t used;
    char why[200];
    int rc = mdw_cbor_decode(frame, len, &f.arena, &hdr, &used, why, sizeof why);
    if (rc) {
        rc = ferr(&f, rc, "frame header: %s", why);
        goto out;
    }
    int64_t op;
    const mdw_cbor *t = mdw_cbor_get(hdr, "t");
    if (hdr->type != MDW_CBOR_MAP || mdw_cbor_int(mdw_cbor_get(hdr, "op"), &op) ||
        (op != 1 && op != -1)) {
        rc = ferr(&f, MDW_EMALFORMED, "frame header is not {op: 1|-1, t}");
        goto out;
    }
    if (op == 1 && (!t || t->type != MDW_CBOR_TEXT)) {
        rc = ferr(&f, MDW_EMALFORMED, "frame header without a message type t");
        goto out;
    }
    rc = mdw_cbor_decode(frame + used, len - used, &f.arena, &body, NULL, why, sizeof why);
    if (rc) {
        rc = ferr(&f, rc, "frame body: %s", why);
        goto out;
    }
    if (body->type != MDW_CBOR_MAP) {
        rc = ferr(&f, MDW_EMALFORMED, "frame body is not a map");
        goto out;
    }
    if (op == -1) {
        info->type = MDW_RELAY_ERROR;
        rc = do_named(&f, body, "error");
    } else if (mdw_cbor_text_is(t, "#commit")) {
        info->type = MDW_RELAY_COMMIT;
        rc = do_commit(&f, body);
    } else if (mdw_cbor_text_is(t, "#identity")) {
        info->type = MDW_RELAY_IDENTITY;
        rc = do_identity(&f, body);
    } else if (mdw_cbor_text_is(t, "#account")) {
        info->type = MDW_RELAY_ACCOUNT;
        rc = do_account(&f, body);
    } else if (mdw_cbor_text_is(t, "#sync")) {
        info->type = MDW_RELAY_SYNC;
        rc = do_sync(&f, body);
    } else if (mdw_cbor_text_is(t, "#info")) {
        info->type = MDW_RELAY_INFO;
        rc = do_named(&f, body, "name");
    } else {
        info->type = MDW_RELAY_UNKNOWN;
        size_t n = t->len < sizeof info->name - 1 ? t->len : sizeof info->name - 1;
        memcpy(info->name, t->v.p, n);
        info->name[n] = '\0';
    }
out:
    mdw_arena_release(&f.arena);
    mdw_buf_release(&f.json);
    return rc;
}
