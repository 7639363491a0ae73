/*
** lexicon/lexicon.c — loads lexicon documents into a tree of compiled
** definitions and validates records against it.
**
** Loading parses each document once: every definition becomes an lx_node
** (limits as integers, enum lists, formats as an enum, refs resolved to the
** node they name), so validating a record walks nodes and cJSON values
** without parsing, allocating or looking up a name (one linear pass over the
** record's keys per property). The walk and its messages follow
** @atproto/lexicon's validators (validators/complex.js, primitives.js) so
** the cross-check can compare verdicts and messages one to one: properties
** are checked in the document's order, the first failure is reported, a
** missing required property is "<path> must have the property \"x\"".
*/
#include "lexicon/lexicon.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "lexicon/builtin.h"
#include "lexicon/formats.h"
#include "common/banned.h"

#define LX_MAX_DOC_BYTES (1u * 1024 * 1024) /* one lexicon document file */

enum lx_type {
    LX_RECORD,
    LX_OBJECT,
    LX_ARRAY,
    LX_STRING,
    LX_INTEGER,
    LX_BOOLEAN,
    LX_REF,
    LX_UNION,
    LX_UNKNOWN,
    LX_BLOB,
    LX_BYTES,
    LX_CIDLINK,
    LX_TOKEN,
    LX_OTHER /* query, procedure, subscription, params, permission-set: not validated here */
};

static const char *const type_names[] = {
    "record", "object",  "array", "string", "integer",  "boolean", "ref",
    "union",  "unknown", "blob",  "bytes",  "cid-link", "token",   "other",
};

enum lx_format {
    F_NONE,
    F_DATETIME,
    F_URI,
    F_AT_URI,
    F_DID,
    F_HANDLE,
    F_AT_IDENTIFIER,
    F_NSID,
    F_CID,
    F_LANGUAGE,
    F_TID,
    F_RECORD_KEY
};

static const struct {
    const char *name;
    int (*check)(const char *, size_t);
    const char *msg; /* @atproto/lexicon's wording */
} formats[] = {
    [F_NONE] = {NULL, NULL, NULL},
    [F_DATETIME] = {"datetime", lexicon__is_datetime,
                    "must be an valid atproto datetime (both RFC-3339 and ISO-8601)"},
    [F_URI] = {"uri", lexicon__is_uri, "must be a uri"},
    [F_AT_URI] = {"at-uri", mdw_at_uri_valid, "must be a valid at-uri"},
    [F_DID] = {"did", mdw_did_valid, "must be a valid did"},
    [F_HANDLE] = {"handle", mdw_handle_valid, "must be a valid handle"},
    [F_AT_IDENTIFIER] = {"at-identifier", mdw_at_identifier_valid,
                         "must be a valid did or a handle"},
    [F_NSID] = {"nsid", mdw_nsid_valid, "must be a valid nsid"},
    [F_CID] = {"cid", lexicon__is_cid, "must be a cid string"},
    [F_LANGUAGE] = {"language", lexicon__is_language, "must be a well-formed BCP 47 language tag"},
    [F_TID] = {"tid", mdw_tid_valid, "must be a valid TID"},
    [F_RECORD_KEY] = {"record-key", mdw_rkey_valid, "must be a valid Record Key"},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

typedef struct lx_node lx_node;

typedef struct lx_prop {
    char *name;
    size_t name_len;
    lx_node *def;
    unsigned char required, nullable;
} lx_prop;

typedef struct lx_uref {
    char *nsid, *frag; /* frag "main" when the ref names a document */
    char *shown;       /* as @atproto/lexicon prints it: "lex:nsid#frag" */
    lx_node *target;
} lx_uref;

struct lx_node {
    enum lx_type type;
    lx_node *next_alloc; /* every node of a lexicon, for freeing */
    /* string, array, bytes: -1 when absent */
    long long min_len, max_len, min_graph, max_graph;
    enum lx_format format;
    char *const_s, *default_s;
    char **enum_s;
    size_t n_enum;
    char *enum_msg; /* "(a|b|c)" */
    /* integer */
    int has_min, has_max, has_const, has_default;
    long long min, max, const_i;
    double *enum_i;
    /* boolean */
    int const_b;
    /* object */
    lx_prop *props;
    size_t n_props;
    /* array items, record body, resolved ref */
    lx_node *child;
    char *ref_nsid, *ref_frag;
    /* union */
    lx_uref *refs;
    size_t n_refs;
    int closed;
};

typedef struct lx_def {
    char *nsid, *name;
    size_t nsid_len, name_len;
    lx_node *node;
} lx_def;

struct mdw_lexicon {
    lx_def *defs;
    size_t n_defs, cap_defs;
    lx_node *nodes;
};

/* ---- loading ---- */

typedef struct loader {
    mdw_lexicon *lex;
    const char *doc_id;
    const char *origin;
    char err[256];
} loader;

static lx_node *node_new(loader *ld, enum lx_type t)
{
    lx_node *n = xcalloc(1, sizeof *n);
    n->type = t;
    n->min_len = n->max_len = n->min_graph = n->max_graph = -1;
    n->next_alloc = ld->lex->nodes;
    ld->lex->nodes = n;
    return n;
}

static void node_free(lx_node *n)
{
    free(n->const_s);
    free(n->default_s);
    for (size_t i = 0; n->enum_s && i < n->n_enum; i++)
        free(n->enum_s[i]);
    free(n->enum_s);
    free(n->enum_msg);
    free(n->enum_i);
    for (size_t i = 0; i < n->n_props; i++)
        free(n->props[i].name);
    free(n->props);
    free(n->ref_nsid);
    free(n->ref_frag);
    for (size_t i = 0; i < n->n_refs; i++) {
        free(n->refs[i].nsid);
        free(n->refs[i].frag);
        free(n->refs[i].shown);
    }
    free(n->refs);
    free(n);
}

static int fail(loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, sizeof ld->err, fmt, ap);
    va_end(ap);
    return MDW_EMALFORMED;
}

/* Reads an optional integer field; -1 when absent. */
static int opt_int(loader *ld, const cJSON *o, const char *key, long long *out, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9007199254740991.0)
        return fail(ld, "%s must be an integer", key);
    *out = (long long)v->valuedouble;
    return 0;
}

/* Splits a reference ("#x", "nsid", "nsid#x", "lex:nsid#x") into nsid and fragment. */
static int split_ref(loader *ld, const char *ref, char **nsid, char **frag)
{
    if (!strncmp(ref, "lex:", 4))
        ref += 4;
    const char *hash = strchr(ref, '#');
    if (hash && strchr(hash + 1, '#'))
        return fail(ld, "reference %s has more than one '#'", ref);
    if (ref[0] == '#') {
        *nsid = xstrdup(ld->doc_id);
        *frag = xstrdup(ref + 1);
    } else if (hash) {
        *nsid = xstrndup(ref, (size_t)(hash - ref));
        *frag = xstrdup(hash + 1);
    } else {
        *nsid = xstrdup(ref);
        *frag = xstrdup("main");
    }
    if (!**frag || !**nsid)
        return fail(ld, "bad reference %s", ref);
    return 0;
}

static int compile(loader *ld, const cJSON *j, lx_node **out, int depth);

static int compile_string(loader *ld, const cJSON *j, lx_node *n)
{
    int rc;
    if ((rc = opt_int(ld, j, "minLength", &n->min_len, NULL)) ||
        (rc = opt_int(ld, j, "maxLength", &n->max_len, NULL)) ||
        (rc = opt_int(ld, j, "minGraphemes", &n->min_graph, NULL)) ||
        (rc = opt_int(ld, j, "maxGraphemes", &n->max_graph, NULL)))
        return rc;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (f) {
        if (!cJSON_IsString(f))
            return fail(ld, "%s", "format must be a string");
        for (size_t i = 1; i < NFORMATS; i++)
            if (!strcmp(f->valuestring, formats[i].name))
                n->format = (enum lx_format)i;
        if (n->format == F_NONE)
            return fail(ld, "unknown string format %s", f->valuestring);
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "const");
    if (c) {
        if (!cJSON_IsString(c))
            return fail(ld, "%s", "string const must be a string");
        n->const_s = xstrdup(c->valuestring);
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "default");
    if (d) {
        if (!cJSON_IsString(d))
            return fail(ld, "%s", "string default must be a string");
        n->default_s = xstrdup(d->valuestring);
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "enum");
    if (e) {
        if (!cJSON_IsArray(e))
            return fail(ld, "%s", "enum must be an array");
        size_t cnt = (size_t)cJSON_GetArraySize(e), msglen = 3;
        n->enum_s = xcalloc(cnt ? cnt : 1, sizeof *n->enum_s);
        const cJSON *it;
        cJSON_ArrayForEach(it, e)
        {
            if (!cJSON_IsString(it))
                return fail(ld, "%s", "string enum values must be strings");
            n->enum_s[n->n_enum++] = xstrdup(it->valuestring);
            msglen += strlen(it->valuestring) + 1;
        }
        n->enum_msg = xmalloc(msglen);
        size_t w = 0;
        n->enum_msg[w++] = '(';
        for (size_t i = 0; i < n->n_enum; i++) {
            if (i)
                n->enum_msg[w++] = '|';
            size_t l = strlen(n->enum_s[i]);
            memcpy(n->enum_msg + w, n->enum_s[i], l);
            w += l;
        }
        n->enum_msg[w++] = ')';
        n->enum_msg[w] = '\0';
    }
    return 0;
}

static int compile_integer(loader *ld, const cJSON *j, lx_node *n)
{
    int rc;
    if ((rc = opt_int(ld, j, "minimum", &n->min, &n->has_min)) ||
        (rc = opt_int(ld, j, "maximum", &n->max, &n->has_max)) ||
        (rc = opt_int(ld, j, "const", &n->const_i, &n->has_const)))
        return rc;
    long long dummy;
    if ((rc = opt_int(ld, j, "default", &dummy, &n->has_default)))
        return rc;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "enum");
    if (e) {
        if (!cJSON_IsArray(e))
            return fail(ld, "%s", "enum must be an array");
        size_t cnt = (size_t)cJSON_GetArraySize(e);
        n->enum_i = xcalloc(cnt ? cnt : 1, sizeof *n->enum_i);
        char msg[1024];
        size_t w = 0;
        msg[w++] = '(';
        const cJSON *it;
        cJSON_ArrayForEach(it, e)
        {
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
                return fail(ld, "%s", "integer enum values must be integers");
            if (n->n_enum)
                w += (size_t)snprintf(msg + w, w < sizeof msg ? sizeof msg - w : 0, "|");
            w += (size_t)snprintf(msg + w, w < sizeof msg ? sizeof msg - w : 0, "%lld",
                                  (long long)it->valuedouble);
            n->enum_i[n->n_enum++] = it->valuedouble;
        }
        if (w + 2 > sizeof msg)
            return fail(ld, "%s", "integer enum too long");
        msg[w++] = ')';
        msg[w] = '\0';
        n->enum_msg = xstrdup(msg);
    }
    return 0;
}

static int compile_object(loader *ld, const cJSON *j, lx_node *n, int depth)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(j, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(j, "required");
    const cJSON *nul = cJSON_GetObjectItemCaseSensitive(j, "nullable");
    if (props && !cJSON_IsObject(props))
        return fail(ld, "%s", "properties must be an object");
    if ((req && !cJSON_IsArray(req)) || (nul && !cJSON_IsArray(nul)))
        return fail(ld, "%s", "required and nullable must be arrays");
    size_t cnt = props ? (size_t)cJSON_GetArraySize(props) : 0;
    n->props = xcalloc(cnt ? cnt : 1, sizeof *n->props);
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        lx_prop *pr = &n->props[n->n_props++];
        pr->name = xstrdup(p->string);
        pr->name_len = strlen(p->string);
        int rc = compile(ld, p, &pr->def, depth + 1);
        if (rc)
            return rc;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, req)
    {
        if (!cJSON_IsString(it))
            return fail(ld, "%s", "required entries must be strings");
        size_t i;
        for (i = 0; i < n->n_props; i++)
            if (!strcmp(n->props[i].name, it->valuestring))
                break;
        if (i == n->n_props)
            return fail(ld, "Required field \"%s\" not defined", it->valuestring);
        n->props[i].required = 1;
    }
    cJSON_ArrayForEach(it, nul)
    {
        if (!cJSON_IsString(it))
            return fail(ld, "%s", "nullable entries must be strings");
        for (size_t i = 0; i < n->n_props; i++)
            if (!strcmp(n->props[i].name, it->valuestring))
                n->props[i].nullable = 1;
    }
    return 0;
}

static int compile(loader *ld, const cJSON *j, lx_node **out, int depth)
{
    if (depth > 32)
        return fail(ld, "%s", "definition nested too deeply");
    if (!cJSON_IsObject(j))
        return fail(ld, "%s", "a definition must be an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return fail(ld, "%s", "a definition needs a string type");
    const char *ts = t->valuestring;
    enum lx_type type = LX_OTHER;
    size_t i;
    for (i = 0; i < LX_OTHER; i++)
        if (!strcmp(ts, type_names[i]))
            break;
    if (i < LX_OTHER)
        type = (enum lx_type)i;
    else if (strcmp(ts, "query") && strcmp(ts, "procedure") && strcmp(ts, "subscription") &&
             strcmp(ts, "params") && strcmp(ts, "permission-set"))
        return fail(ld, "unknown definition type %s", ts);
    lx_node *n = node_new(ld, type);
    *out = n;
    int rc = 0;
    switch (type) {
    case LX_RECORD: {
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(j, "record");
        if (!rec)
            return fail(ld, "%s", "a record needs a record object");
        rc = compile(ld, rec, &n->child, depth + 1);
        if (!rc && n->child->type != LX_OBJECT)
            return fail(ld, "%s", "a record's record must be an object");
        break;
    }
    case LX_OBJECT:
        rc = compile_object(ld, j, n, depth);
        break;
    case LX_ARRAY: {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
        if (!items)
            return fail(ld, "%s", "an array needs items");
        if ((rc = opt_int(ld, j, "minLength", &n->min_len, NULL)) ||
            (rc = opt_int(ld, j, "maxLength", &n->max_len, NULL)))
            return rc;
        rc = compile(ld, items, &n->child, depth + 1);
        break;
    }
    case LX_STRING:
        rc = compile_string(ld, j, n);
        break;
    case LX_INTEGER:
        rc = compile_integer(ld, j, n);
        break;
    case LX_BOOLEAN: {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "const");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "default");
        if ((c && !cJSON_IsBool(c)) || (d && !cJSON_IsBool(d)))
            return fail(ld, "%s", "boolean const and default must be booleans");
        n->has_const = c != NULL;
        n->const_b = cJSON_IsTrue(c);
        n->has_default = d != NULL;
        break;
    }
    case LX_REF: {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "ref");
        if (!cJSON_IsString(r))
            return fail(ld, "%s", "a ref needs a string ref");
        rc = split_ref(ld, r->valuestring, &n->ref_nsid, &n->ref_frag);
        break;
    }
    case LX_UNION: {
        const cJSON *refs = cJSON_GetObjectItemCaseSensitive(j, "refs");
        const cJSON *closed = cJSON_GetObjectItemCaseSensitive(j, "closed");
        if (!cJSON_IsArray(refs))
            return fail(ld, "%s", "a union needs refs");
        n->closed = cJSON_IsTrue(closed);
        size_t cnt = (size_t)cJSON_GetArraySize(refs);
        n->refs = xcalloc(cnt ? cnt : 1, sizeof *n->refs);
        const cJSON *it;
        cJSON_ArrayForEach(it, refs)
        {
            if (!cJSON_IsString(it))
                return fail(ld, "%s", "union refs must be strings");
            lx_uref *u = &n->refs[n->n_refs++];
            if ((rc = split_ref(ld, it->valuestring, &u->nsid, &u->frag)))
                return rc;
            const char *s = it->valuestring;
            if (!strncmp(s, "lex:", 4))
                u->shown = xstrdup(s);
            else if (s[0] == '#')
                u->shown = xasprintf("lex:%s%s", ld->doc_id, s);
            else
                u->shown = xasprintf("lex:%s", s);
        }
        break;
    }
    case LX_BYTES:
        if ((rc = opt_int(ld, j, "minLength", &n->min_len, NULL)) ||
            (rc = opt_int(ld, j, "maxLength", &n->max_len, NULL)))
            return rc;
        break;
    default:
        break;
    }
    return rc;
}

/* Orders definitions by (nsid, name) for find_def's binary search. */
static int def_cmp_key(const char *an, size_t anl, const char *af, size_t afl, const lx_def *b)
{
    size_t l = anl < b->nsid_len ? anl : b->nsid_len;
    int c = memcmp(an, b->nsid, l);
    if (c || anl != b->nsid_len)
        return c ? c : (anl < b->nsid_len ? -1 : 1);
    l = afl < b->name_len ? afl : b->name_len;
    c = memcmp(af, b->name, l);
    if (c || afl != b->name_len)
        return c ? c : (afl < b->name_len ? -1 : 1);
    return 0;
}

static int def_cmp(const void *a, const void *b)
{
    const lx_def *x = a;
    return def_cmp_key(x->nsid, x->nsid_len, x->name, x->name_len, b);
}

static lx_node *find_def(const mdw_lexicon *lex, const char *nsid, size_t nsid_len,
                         const char *frag, size_t frag_len)
{
    size_t lo = 0, hi = lex->n_defs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = def_cmp_key(nsid, nsid_len, frag, frag_len, &lex->defs[mid]);
        if (c == 0)
            return lex->defs[mid].node;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int add_doc(loader *ld, const char *text, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *id = NULL;
    int rc = 0;
    if (!doc) {
        rc = fail(ld, "%s", "not JSON");
        goto out;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(doc, "lexicon");
    id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(doc, "defs");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        rc = fail(ld, "%s", "lexicon version must be 1");
        goto out;
    }
    if (!cJSON_IsString(id) || !mdw_nsid_valid(id->valuestring, strlen(id->valuestring))) {
        rc = fail(ld, "%s", "id must be an NSID");
        goto out;
    }
    if (!cJSON_IsObject(defs)) {
        rc = fail(ld, "%s", "defs must be an object");
        goto out;
    }
    mdw_lexicon *lex = ld->lex;
    size_t idlen = strlen(id->valuestring);
    for (size_t i = 0; i < lex->n_defs; i++)
        if (!strcmp(lex->defs[i].nsid, id->valuestring)) {
            rc = fail(ld, "lex:%s has already been registered", id->valuestring);
            goto out;
        }
    ld->doc_id = id->valuestring;
    const cJSON *d;
    cJSON_ArrayForEach(d, defs)
    {
        lx_node *n;
        if ((rc = compile(ld, d, &n, 0)))
            goto out;
        if (n->type == LX_RECORD && strcmp(d->string, "main"))
            if ((rc = fail(ld, "record definition %s must be main", d->string)))
                goto out;
        if (lex->n_defs == lex->cap_defs) {
            lex->cap_defs = lex->cap_defs ? lex->cap_defs * 2 : 16;
            lex->defs = xrealloc(lex->defs, lex->cap_defs * sizeof *lex->defs);
        }
        lx_def *nd = &lex->defs[lex->n_defs++];
        nd->nsid = xstrndup(id->valuestring, idlen);
        nd->name = xstrdup(d->string);
        nd->nsid_len = idlen;
        nd->name_len = strlen(d->string);
        nd->node = n;
    }
out:
    if (rc)
        mdw_error("lexicon", "bad lexicon document", "file=%s id=%s err=\"%s\"", ld->origin,
                  cJSON_IsString(id) ? id->valuestring : "?", ld->err);
    cJSON_Delete(doc);
    ld->doc_id = NULL;
    return rc;
}

/* Points every ref and union member at its definition; MDW_EMALFORMED when one is missing. */
static int resolve_all(mdw_lexicon *lex)
{
    int rc = 0;
    /* A document with empty `defs` leaves defs NULL: qsort(NULL, 0) is undefined. */
    if (lex->n_defs > 1)
        qsort(lex->defs, lex->n_defs, sizeof *lex->defs, def_cmp);
    for (lx_node *n = lex->nodes; n; n = n->next_alloc) {
        if (n->type == LX_REF && !n->child) {
            n->child =
                find_def(lex, n->ref_nsid, strlen(n->ref_nsid), n->ref_frag, strlen(n->ref_frag));
            if (!n->child) {
                mdw_error("lexicon", "unresolved lexicon reference", "ref=%s#%s", n->ref_nsid,
                          n->ref_frag);
                rc = MDW_EMALFORMED;
            }
        }
        for (size_t i = 0; i < n->n_refs; i++) {
            lx_uref *u = &n->refs[i];
            if (!u->target)
                u->target = find_def(lex, u->nsid, strlen(u->nsid), u->frag, strlen(u->frag));
            if (!u->target) {
                mdw_error("lexicon", "unresolved lexicon reference", "ref=%s", u->shown);
                rc = MDW_EMALFORMED;
            }
        }
    }
    return rc;
}

static mdw_lexicon *lexicon_new(void)
{
    return xcalloc(1, sizeof(mdw_lexicon));
}

void mdw_lexicon_free(mdw_lexicon *lex)
{
    if (!lex)
        return;
    for (lx_node *n = lex->nodes, *next; n; n = next) {
        next = n->next_alloc;
        node_free(n);
    }
    for (size_t i = 0; i < lex->n_defs; i++) {
        free(lex->defs[i].nsid);
        free(lex->defs[i].name);
    }
    free(lex->defs);
    free(lex);
}

int mdw_lexicon_add_doc(mdw_lexicon *lex, const char *json, size_t len, const char *origin)
{
    loader ld = {.lex = lex, .origin = origin ? origin : "(memory)"};
    int rc = add_doc(&ld, json, len);
    return rc ? rc : resolve_all(lex);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    mdw_buf b = MDW_BUF_INIT(LX_MAX_DOC_BYTES);
    char chunk[8192];
    size_t k;
    int rc = 0;
    while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = mdw_buf_append(&b, chunk, k);
    if (!rc && ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc) {
        mdw_buf_release(&b);
        return rc;
    }
    *out = mdw_buf_detach(&b, len);
    if (!*out)
        *out = xstrdup("");
    return 0;
}

int mdw_lexicon_add_dir(mdw_lexicon *lex, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        int rc = -errno;
        mdw_error("lexicon", "cannot open lexicon directory", "dir=%s err=\"%s\"", dir,
                  mdw_strerror(rc));
        return rc;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str); /* deterministic order and messages */
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc) {
            char *path = xasprintf("%s/%s", dir, names[i]), *text = NULL;
            size_t len = 0;
            rc = read_file(path, &text, &len);
            if (rc) {
                mdw_error("lexicon", "cannot read lexicon document", "file=%s err=\"%s\"", path,
                          mdw_strerror(rc));
            } else {
                loader ld = {.lex = lex, .origin = path};
                rc = add_doc(&ld, text, len);
            }
            free(text);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    return rc ? rc : resolve_all(lex);
}

int mdw_lexicon_load_dir(mdw_lexicon **out, const char *dir)
{
    mdw_lexicon *lex = lexicon_new();
    int rc = mdw_lexicon_add_dir(lex, dir);
    if (rc) {
        mdw_lexicon_free(lex);
        *out = NULL;
        return rc;
    }
    *out = lex;
    return 0;
}

int mdw_lexicon_add_builtin(mdw_lexicon *lex)
{
    for (size_t i = 0; i < lexicon__builtin_count; i++) {
        loader ld = {.lex = lex, .origin = lexicon__builtin_docs[i].name};
        int rc = add_doc(&ld, lexicon__builtin_docs[i].text, lexicon__builtin_docs[i].len);
        if (rc)
            return rc;
    }
    return resolve_all(lex);
}

int mdw_lexicon_load_builtin(mdw_lexicon **out)
{
    mdw_lexicon *lex = lexicon_new();
    int rc = mdw_lexicon_add_builtin(lex);
    if (rc) {
        mdw_lexicon_free(lex);
        *out = NULL;
        return rc;
    }
    *out = lex;
    return 0;
}

int mdw_lexicon_new(mdw_lexicon **out)
{
    *out = lexicon_new();
    return 0;
}

/* ---- validation ---- */

#define LX_MAX_DEPTH MDW_MAX_CBOR_DEPTH

typedef struct vctx {
    const char *root; /* "Record" */
    struct {
        const char *key; /* NULL: index */
        int idx;
    } seg[LX_MAX_DEPTH];
    int depth;
    char *err;
    size_t errlen;
} vctx;

/* Writes "<path> <message>" into the error buffer; returns MDW_EINVALID. */
static int verr(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int verr(vctx *c, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return MDW_EINVALID;
    size_t w = 0;
    int k = snprintf(c->err, c->errlen, "%s", c->root);
    w = k > 0 ? (size_t)k : 0;
    for (int i = 0; i < c->depth && w < c->errlen; i++) {
        if (c->seg[i].key)
            k = snprintf(c->err + w, c->errlen - w, "/%s", c->seg[i].key);
        else
            k = snprintf(c->err + w, c->errlen - w, "/%d", c->seg[i].idx);
        w += k > 0 ? (size_t)k : 0;
    }
    if (w < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        c->err[w++] = ' ';
        if (w < c->errlen)
            vsnprintf(c->err + w, c->errlen - w, fmt, ap);
        else
            c->err[c->errlen - 1] = '\0';
        va_end(ap);
    }
    return MDW_EINVALID;
}

static int validate_oneof(vctx *c, const lx_node *def, const cJSON *v);

static int is_objlike(const cJSON *v)
{
    return v && (cJSON_IsObject(v) || cJSON_IsArray(v));
}

/* An object holding exactly one member, key, returned. */
static const cJSON *sole_member(const cJSON *v, const char *key)
{
    if (!cJSON_IsObject(v) || !v->child || v->child->next || !v->child->string ||
        strcmp(v->child->string, key))
        return NULL;
    return v->child;
}

static int is_link(const cJSON *v)
{
    const cJSON *l = sole_member(v, "$link");
    return l && cJSON_IsString(l) && l->valuestring[0] &&
           lexicon__is_cid(l->valuestring, strlen(l->valuestring));
}

static int push(vctx *c, const char *key, int idx)
{
    if (c->depth >= LX_MAX_DEPTH)
        return verr(c, "is nested too deeply");
    c->seg[c->depth].key = key;
    c->seg[c->depth].idx = idx;
    c->depth++;
    return 0;
}

#define LX_MAX_FAST_PROPS 64

static int v_object(vctx *c, const lx_node *def, const cJSON *v)
{
    if (!is_objlike(v))
        return verr(c, "must be an object");
    /*
    ** One pass over the record's members finds each property's value (the
    ** last of duplicates wins, as in JSON.parse); then properties are checked
    ** in the document's order, as the reference does.
    */
    const cJSON *found[LX_MAX_FAST_PROPS];
    int fast = def->n_props <= LX_MAX_FAST_PROPS;
    if (fast) {
        memset(found, 0, def->n_props * sizeof found[0]);
        if (cJSON_IsObject(v))
            for (const cJSON *m = v->child; m; m = m->next) {
                if (!m->string)
                    continue;
                size_t kl = strlen(m->string);
                for (size_t i = 0; i < def->n_props; i++)
                    if (def->props[i].name_len == kl &&
                        !memcmp(def->props[i].name, m->string, kl)) {
                        found[i] = m;
                        break;
                    }
            }
    }
    for (size_t i = 0; i < def->n_props; i++) {
        const lx_prop *p = &def->props[i];
        const cJSON *kv = NULL;
        if (fast)
            kv = found[i];
        else if (cJSON_IsObject(v))
            for (const cJSON *m = v->child; m; m = m->next)
                if (m->string && !strcmp(m->string, p->name))
                    kv = m;
        if (kv && cJSON_IsNull(kv) && p->nullable)
            continue;
        if (!kv && !p->required)
            continue; /* absent, or a default applies: nothing to check */
        int rc = push(c, p->name, 0);
        if (rc)
            return rc;
        rc = validate_oneof(c, p->def, kv);
        c->depth--;
        if (rc && !kv)
            return verr(c, "must have the property \"%s\"", p->name);
        if (rc)
            return rc;
    }
    return 0;
}

static int v_array(vctx *c, const lx_node *def, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return verr(c, "must be an array");
    if (def->max_len >= 0 || def->min_len >= 0) {
        long long n = cJSON_GetArraySize(v);
        if (def->max_len >= 0 && n > def->max_len)
            return verr(c, "must not have more than %lld elements", def->max_len);
        if (def->min_len >= 0 && n < def->min_len)
            return verr(c, "must not have fewer than %lld elements", def->min_len);
    }
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        int rc = push(c, NULL, i);
        if (rc)
            return rc;
        rc = validate_oneof(c, def->child, it);
        c->depth--;
        if (rc)
            return rc;
    }
    return 0;
}

static size_t graphemes(const char *s, size_t n, size_t limit)
{
    size_t crlf = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return lexicon__graphemes(s, n, limit);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            crlf++;
    }
    return n - crlf; /* ASCII: every byte is a cluster, except CR LF (rule GB3) */
}

static int v_string(vctx *c, const lx_node *def, const cJSON *v)
{
    if (!v) {
        if (def->default_s)
            return 0;
        return verr(c, "must be a string");
    }
    if (!cJSON_IsString(v))
        return verr(c, "must be a string");
    const char *s = v->valuestring;
    if (def->const_s && strcmp(s, def->const_s))
        return verr(c, "must be %s", def->const_s);
    if (def->enum_s) {
        size_t i;
        for (i = 0; i < def->n_enum; i++)
            if (!strcmp(s, def->enum_s[i]))
                break;
        if (i == def->n_enum)
            return verr(c, "must be one of %s", def->enum_msg);
    }
    size_t n = strlen(s);
    if (def->max_len >= 0 && (long long)n > def->max_len)
        return verr(c, "must not be longer than %lld characters", def->max_len);
    if (def->min_len >= 0 && (long long)n < def->min_len)
        return verr(c, "must not be shorter than %lld characters", def->min_len);
    if (def->max_graph >= 0 || def->min_graph >= 0) {
        /* graphemes <= UTF-16 units <= bytes: most strings need no segmentation */
        int need_max = def->max_graph >= 0 && (long long)n > def->max_graph;
        if (def->min_graph >= 0 && (long long)n < def->min_graph)
            return verr(c, "must not be shorter than %lld graphemes", def->min_graph);
        if (need_max || def->min_graph >= 0) {
            size_t g = graphemes(s, n, def->max_graph >= 0 ? (size_t)def->max_graph : SIZE_MAX);
            if (def->max_graph >= 0 && (long long)g > def->max_graph)
                return verr(c, "must not be longer than %lld graphemes", def->max_graph);
            if (def->min_graph >= 0 && (long long)g < def->min_graph)
                return verr(c, "must not be shorter than %lld graphemes", def->min_graph);
        }
    }
    if (def->format != F_NONE && !formats[def->format].check(s, n))
        return verr(c, "%s", formats[def->format].msg);
    return 0;
}

static int v_integer(vctx *c, const lx_node *def, const cJSON *v)
{
    if (!v) {
        if (def->has_default)
            return 0;
        return verr(c, "must be an integer");
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d))
        return verr(c, "must be an integer");
    if (def->has_const && d != (double)def->const_i)
        return verr(c, "must be %lld", def->const_i);
    if (def->enum_i) {
        size_t i;
        for (i = 0; i < def->n_enum; i++)
            if (d == def->enum_i[i])
                break;
        if (i == def->n_enum)
            return verr(c, "must be one of %s", def->enum_msg);
    }
    if (def->has_max && d > (double)def->max)
        return verr(c, "can not be greater than %lld", def->max);
    if (def->has_min && d < (double)def->min)
        return verr(c, "can not be less than %lld", def->min);
    return 0;
}

static int v_boolean(vctx *c, const lx_node *def, const cJSON *v)
{
    if (!v) {
        if (def->has_default)
            return 0;
        return verr(c, "must be a boolean");
    }
    if (!cJSON_IsBool(v))
        return verr(c, "must be a boolean");
    if (def->has_const && cJSON_IsTrue(v) != def->const_b)
        return verr(c, "must be %s", def->const_b ? "true" : "false");
    return 0;
}

static int v_bytes(vctx *c, const lx_node *def, const cJSON *v)
{
    const cJSON *b = sole_member(v, "$bytes");
    size_t len;
    if (!b || !cJSON_IsString(b) ||
        !lexicon__base64_len(b->valuestring, strlen(b->valuestring), &len))
        return verr(c, "must be a byte array");
    if (def->max_len >= 0 && (long long)len > def->max_len)
        return verr(c, "must not be larger than %lld bytes", def->max_len);
    if (def->min_len >= 0 && (long long)len < def->min_len)
        return verr(c, "must not be smaller than %lld bytes", def->min_len);
    return 0;
}

/*
** A blob ref in JSON: {"$type":"blob","ref":{"$link":cid},"mimeType":s,"size":n}
** or the legacy {"cid":s,"mimeType":s}, with no other member (as
** @atproto/lexicon's jsonBlobRef schemas, which are strict).
*/
static int is_blob(const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return 0;
    const cJSON *type = NULL, *ref = NULL, *mime = NULL, *size = NULL, *cid = NULL;
    int count = 0;
    for (const cJSON *m = v->child; m; m = m->next, count++) {
        if (!strcmp(m->string, "$type"))
            type = m;
        else if (!strcmp(m->string, "ref"))
            ref = m;
        else if (!strcmp(m->string, "mimeType"))
            mime = m;
        else if (!strcmp(m->string, "size"))
            size = m;
        else if (!strcmp(m->string, "cid"))
            cid = m;
        else
            return 0;
    }
    if (!cJSON_IsString(mime))
        return 0;
    if (type)
        return count == 4 && cJSON_IsString(type) && !strcmp(type->valuestring, "blob") &&
               is_link(ref) && cJSON_IsNumber(size);
    return count == 2 && cJSON_IsString(cid) &&
           lexicon__is_cid(cid->valuestring, strlen(cid->valuestring));
}

static int v_concrete(vctx *c, const lx_node *def, const cJSON *v)
{
    switch (def->type) {
    case LX_OBJECT:
        return v_object(c, def, v);
    case LX_ARRAY:
        return v_array(c, def, v);
    case LX_STRING:
        return v_string(c, def, v);
    case LX_INTEGER:
        return v_integer(c, def, v);
    case LX_BOOLEAN:
        return v_boolean(c, def, v);
    case LX_BLOB:
        return is_blob(v) ? 0 : verr(c, "should be a blob ref");
    case LX_BYTES:
        return v_bytes(c, def, v);
    case LX_CIDLINK:
        return is_link(v) ? 0 : verr(c, "must be a CID");
    case LX_UNKNOWN:
        if (!is_objlike(v))
            return verr(c, "must be an object");
        return 0;
    default: {
        /* a ref or union naming a record, token or XRPC definition */
        char msg[64];
        snprintf(msg, sizeof msg, "Unexpected lexicon type: %s", type_names[def->type]);
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen, "%s", msg);
        return MDW_EINVALID;
    }
    }
}

/* Whether a union member named by $type t (lex: prefix optional, #main implied) is u. */
static int type_matches(const lx_uref *u, const char *t)
{
    if (!strncmp(t, "lex:", 4))
        t += 4;
    const char *hash = strchr(t, '#');
    size_t nl = hash ? (size_t)(hash - t) : strlen(t);
    const char *frag = hash ? hash + 1 : "main";
    return strlen(u->nsid) == nl && !memcmp(u->nsid, t, nl) && !strcmp(u->frag, frag);
}

static int validate_oneof(vctx *c, const lx_node *def, const cJSON *v)
{
    if (def->type == LX_REF) {
        if (!def->child) { /* only after a failed load the caller went on with */
            if (c->err && c->errlen)
                snprintf(c->err, c->errlen, "Lexicon not found: lex:%s#%s", def->ref_nsid,
                         def->ref_frag);
            return MDW_EINVALID;
        }
        return v_concrete(c, def->child, v);
    }
    if (def->type != LX_UNION)
        return v_concrete(c, def, v);
    const cJSON *t = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "$type") : NULL;
    if (!cJSON_IsString(t))
        return verr(c, "must be an object which includes the \"$type\" property");
    const char *ts = t->valuestring, *hash = strchr(ts, '#');
    if (hash && strchr(hash + 1, '#')) {
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen, "Uri can only have one hash segment");
        return MDW_EINVALID;
    }
    if (ts[0] == '#') {
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen, "Unable to resolve uri without anchor: %s", ts);
        return MDW_EINVALID;
    }
    for (size_t i = 0; i < def->n_refs; i++)
        if (type_matches(&def->refs[i], ts)) {
            if (!def->refs[i].target) {
                if (c->err && c->errlen)
                    snprintf(c->err, c->errlen, "Lexicon not found: %s", def->refs[i].shown);
                return MDW_EINVALID;
            }
            return v_concrete(c, def->refs[i].target, v);
        }
    if (!def->closed)
        return 0; /* open union: an unknown member is accepted as is */
    char list[1024];
    size_t w = 0;
    list[0] = '\0';
    for (size_t i = 0; i < def->n_refs && w < sizeof list; i++) {
        int k = snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "", def->refs[i].shown);
        w += k > 0 ? (size_t)k : 0;
    }
    return verr(c, "$type must be one of %s", list);
}

int mdw_lexicon_validate_record(const mdw_lexicon *lex, const char *nsid, const cJSON *record,
                                char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    const lx_node *def = find_def(lex, nsid, strlen(nsid), "main", 4);
    if (!def || def->type != LX_RECORD) {
        if (err && errlen)
            snprintf(err, errlen, "Lexicon not found: lex:%s", nsid);
        return MDW_ENOTFOUND;
    }
    vctx c = {.root = "Record", .err = err, .errlen = errlen};
    if (!is_objlike(record))
        return verr(&c, "must be an object");
    const cJSON *t =
        cJSON_IsObject(record) ? cJSON_GetObjectItemCaseSensitive(record, "$type") : NULL;
    if (!cJSON_IsString(t)) {
        if (err && errlen)
            snprintf(err, errlen, "Record/$type must be a string");
        return MDW_EINVALID;
    }
    const char *ts = t->valuestring, *hash = strchr(ts, '#');
    if (hash && strchr(hash + 1, '#')) {
        if (err && errlen)
            snprintf(err, errlen, "Uri can only have one hash segment");
        return MDW_EINVALID;
    }
    const char *bare = strncmp(ts, "lex:", 4) ? ts : ts + 4;
    if (strcmp(bare, nsid)) {
        if (err && errlen)
            snprintf(err, errlen, "Invalid $type: must be lex:%s, got %s", nsid, ts);
        return MDW_EINVALID;
    }
    return v_object(&c, def->child, record);
}

int mdw_lexicon_parse_datetime(const char *s, int64_t *unix_us)
{
    return lexicon__parse_datetime(s, strlen(s), unix_us) ? 0 : MDW_EMALFORMED;
}

int mdw_lexicon_has_record(const mdw_lexicon *lex, const char *nsid)
{
    const lx_node *def = find_def(lex, nsid, strlen(nsid), "main", 4);
    return def && def->type == LX_RECORD;
}
