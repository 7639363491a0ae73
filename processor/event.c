/*
** processor/event.c — event decoding and hashtag extraction.
*/
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "index/index_write.h"
#include "lexicon/lexicon.h"
#include "processor/event.h"
#include "common/banned.h"

/* The array itself, or NULL when it is absent or not an array (cJSON_ArrayForEach takes NULL). */
static const cJSON *as_array(const cJSON *a)
{
    return cJSON_IsArray(a) ? a : NULL;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return MDW_EMALFORMED;
}

static const char *str_field(const cJSON *o, const char *name, size_t max, int *bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return NULL;
    if (!cJSON_IsString(it) || strlen(it->valuestring) > max) {
        *bad = 1;
        return NULL;
    }
    return it->valuestring;
}

int mdw_event_parse(mdw_event *ev, const char *data, size_t len, char *err, size_t errlen)
{
    return mdw_event_parse_in(ev, NULL, data, len, err, errlen);
}

int mdw_event_parse_in(mdw_event *ev, mdw_json_arena *arena, const char *data, size_t len,
                       char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    if (len > MDW_MAX_EVENT_BYTES)
        return fail(err, errlen, "event over MDW_MAX_EVENT_BYTES");
    const char *end = NULL;
    ev->arena = arena;
    ev->root = arena ? mdw_json_arena_parse(arena, data, len, &end)
                     : cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!ev->root) {
        size_t off = end && end >= data ? (size_t)(end - data) : 0;
        snprintf(err, errlen, "malformed JSON near byte %zu", off);
        return MDW_EMALFORMED;
    }
    if (!cJSON_IsObject(ev->root))
        return fail(err, errlen, "event is not a JSON object");
    int bad = 0;
    ev->did = str_field(ev->root, "did", MDW_MAX_DID_BYTES, &bad);
    if (bad || !ev->did || strncmp(ev->did, "did:", 4) != 0)
        return fail(err, errlen, "event has no valid did");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev->root, "time_us");
    if (t && cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble < 9.2e18)
        ev->time_us = (int64_t)t->valuedouble;
    const char *kind = str_field(ev->root, "kind", 32, &bad);
    if (bad || !kind)
        return fail(err, errlen, "event has no kind");
    if (!strcmp(kind, "commit")) {
        ev->kind = MDW_EV_COMMIT;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(ev->root, "commit");
        if (!cJSON_IsObject(c))
            return fail(err, errlen, "commit event without commit object");
        const char *op = str_field(c, "operation", 16, &bad);
        ev->collection = str_field(c, "collection", MDW_MAX_COLLECTION_BYTES, &bad);
        ev->rkey = str_field(c, "rkey", MDW_MAX_RKEY_BYTES, &bad);
        ev->rev = str_field(c, "rev", MDW_MAX_REV_BYTES, &bad);
        ev->cid = str_field(c, "cid", 256, &bad);
        if (bad)
            return fail(err, errlen, "commit field of wrong type or too long");
        if (!op || !ev->collection || !ev->rkey || !ev->collection[0] || !ev->rkey[0])
            return fail(err, errlen, "commit without operation, collection or rkey");
        if (strchr(ev->collection, '/') || strchr(ev->rkey, '/'))
            return fail(err, errlen, "collection or rkey contains '/'");
        if (!ev->rev)
            ev->rev = "";
        if (!strcmp(op, "create"))
            ev->op = MDW_OP_CREATE;
        else if (!strcmp(op, "update"))
            ev->op = MDW_OP_UPDATE;
        else if (!strcmp(op, "delete"))
            ev->op = MDW_OP_DELETE;
        else
            return fail(err, errlen, "unknown commit operation");
        if (ev->op != MDW_OP_DELETE) {
            ev->record = cJSON_GetObjectItemCaseSensitive(c, "record");
            if (!cJSON_IsObject(ev->record))
                return fail(err, errlen, "create/update without record object");
        }
        /* at://did/collection/rkey (memcpy: vasprintf showed at 2.5% of the processor). */
        size_t dn = strlen(ev->did), cn = strlen(ev->collection), rn = strlen(ev->rkey);
        /* In the tree's arena when there is one (no malloc, no free on another thread). */
        size_t un = 5 + dn + 1 + cn + 1 + rn + 1;
        char *u = ev->uri = arena ? mdw_json_arena_alloc(arena, un) : xmalloc(un);
        memcpy(u, "at://", 5);
        memcpy(u += 5, ev->did, dn);
        *(u += dn) = '/';
        memcpy(++u, ev->collection, cn);
        *(u += cn) = '/';
        memcpy(++u, ev->rkey, rn);
        u[rn] = '\0';
    } else if (!strcmp(kind, "account")) {
        ev->kind = MDW_EV_ACCOUNT;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev->root, "account");
        if (!cJSON_IsObject(a))
            return fail(err, errlen, "account event without account object");
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(a, "active");
        if (!cJSON_IsBool(act))
            return fail(err, errlen, "account event without boolean active");
        ev->active = cJSON_IsTrue(act);
        ev->status = str_field(a, "status", 64, &bad);
        if (bad)
            return fail(err, errlen, "account status is not a short string");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(a, "seq");
        if (cJSON_IsNumber(seq) && seq->valuedouble > 0 && seq->valuedouble < 9.2e18)
            ev->seq = (int64_t)seq->valuedouble;
    } else if (!strcmp(kind, "identity")) {
        ev->kind = MDW_EV_IDENTITY;
    } else {
        ev->kind = MDW_EV_OTHER;
    }
    return 0;
}

int mdw_event_parse_shared(mdw_event *ev, mdw_json_arena *arena, const char *data, size_t len,
                           char *err, size_t errlen)
{
    int rc = mdw_event_parse_in(ev, arena, data, len, err, errlen);
    ev->shared_arena = 1;
    return rc;
}

void mdw_event_release(mdw_event *ev)
{
    if (!ev)
        return;
    if (ev->shared_arena)
        ; /* the caller resets the arena */
    else if (ev->arena)
        mdw_json_arena_reset(ev->arena);
    else
        cJSON_Delete(ev->root);
    if (!ev->arena)
        free(ev->uri); /* else it is in the arena */
    memset(ev, 0, sizeof *ev);
}

/* ---- hashtags ---- */

struct mdw_tagger {
    pcre2_code *re;
    pcre2_match_data *md;
};

/*
** "#atr_" or the fullwidth "＃atr_", after the start or whitespace, then 8
** lowercase hex digits, then the end, whitespace or punctuation. `_` is
** Unicode punctuation (Pc) but continues a word, so it does not end a tag.
** UCP makes \s and \p{P} Unicode-aware; MATCH_INVALID_UTF keeps a record
** with broken UTF-8 from failing the match (it just cannot match there).
*/
static const char tag_pattern[] =
    "(?<!\\S)[#\xef\xbc\x83]atr_([0-9a-f]{8})(?=\\z|[\\s\\p{P}])(?!_)";

int mdw_tagger_new(mdw_tagger **out)
{
    mdw_tagger *t = xcalloc(1, sizeof *t);
    int errcode;
    PCRE2_SIZE erroff;
    t->re = pcre2_compile((PCRE2_SPTR)tag_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        mdw_error("processor", "tag pattern does not compile", "err=\"%s\" at=%zu", (char *)msg,
                  (size_t)erroff);
        free(t);
        return MDW_EINVALID;
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    *out = t;
    return 0;
}

void mdw_tagger_free(mdw_tagger *t)
{
    if (!t)
        return;
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t);
}

static size_t add_tag(uint8_t tags[MDW_MAX_POST_TAGS][4], size_t n, const uint8_t tag[4])
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(tags[i], tag, 4))
            return n;
    if (n == MDW_MAX_POST_TAGS)
        return n;
    memcpy(tags[n], tag, 4);
    return n + 1;
}

/* "atr_" + exactly 8 lowercase hex digits (facet tags and the tags array). */
static size_t add_exact(uint8_t tags[MDW_MAX_POST_TAGS][4], size_t n, const cJSON *s)
{
    uint8_t tag[4];
    if (!cJSON_IsString(s) || mdw_tag_parse(s->valuestring, strlen(s->valuestring), tag))
        return n;
    return add_tag(tags, n, tag);
}

size_t mdw_tagger_extract(mdw_tagger *t, const cJSON *record, uint8_t tags[MDW_MAX_POST_TAGS][4])
{
    size_t n = 0;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(record, "text");
    if (cJSON_IsString(text)) {
        const char *s = text->valuestring;
        size_t len = strlen(s);
        PCRE2_SIZE off = 0;
        /* memmem first: almost every candidate names its tag once, most texts hold none. */
        while (off < len && memmem(s + off, len - off, "atr_", 4)) {
            int rc = pcre2_match(t->re, (PCRE2_SPTR)s, len, off, 0, t->md, NULL);
            if (rc < 2)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
            uint8_t tag[4];
            if (mdw_tag_id_parse(s + ov[2], ov[3] - ov[2], tag) == 0)
                n = add_tag(tags, n, tag);
            off = ov[1] > off ? ov[1] : off + 1;
        }
    }
    const cJSON *facets = cJSON_GetObjectItemCaseSensitive(record, "facets");
    const cJSON *f;
    cJSON_ArrayForEach(f, as_array(facets))
    {
        const cJSON *features = cJSON_GetObjectItemCaseSensitive(f, "features");
        const cJSON *ft;
        cJSON_ArrayForEach(ft, as_array(features))
        {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(ft, "$type");
            if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "app.bsky.richtext.facet#tag"))
                n = add_exact(tags, n, cJSON_GetObjectItemCaseSensitive(ft, "tag"));
        }
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(record, "tags");
    const cJSON *e;
    cJSON_ArrayForEach(e, as_array(arr)) n = add_exact(tags, n, e);
    return n;
}

/* ---- derived fields ---- */

_Static_assert(sizeof((mdw_event *)0)->did_hash == MDW_IX_H, "did_hash is H(did)");
_Static_assert(sizeof((mdw_event *)0)->rec_key == MDW_IX_RK, "rec_key is a records key");

void mdw_event_prepare(mdw_event *ev, mdw_tagger *t)
{
    mdw_ix_hash_str(ev->did, ev->did_hash);
    ev->ntags = 0;
    ev->created_rc = ev->rkey_time_rc = MDW_EINVALID;
    if (ev->kind == MDW_EV_COMMIT) {
        mdw_ix_rec_key(ev->uri, ev->rec_key);
        ev->rkey_time_rc = mdw_tid_time(ev->rkey, strlen(ev->rkey), &ev->rkey_time_us);
        /* createdAt exactly as the lexicon validator accepts it (a valid record has an instant) */
        const cJSON *c =
            ev->record ? cJSON_GetObjectItemCaseSensitive(ev->record, "createdAt") : NULL;
        if (cJSON_IsString(c))
            ev->created_rc = mdw_lexicon_parse_datetime(c->valuestring, &ev->created_us);
        if (ev->record && !strcmp(ev->collection, "app.bsky.feed.post"))
            ev->ntags = mdw_tagger_extract(t, ev->record, ev->tags);
    }
    ev->prepared = 1;
}
