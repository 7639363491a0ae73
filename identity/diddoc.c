/* identity/diddoc.c — DID documents and the file-backed resolver (identity.h). */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "identity/identity.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/zfile.h"
#include "common/banned.h"

#define MDW_MAX_DIDDOC_FILE (256u * 1024 * 1024)

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int vm_key(const cJSON *vm, mdw_pubkey *key)
{
    const char *type = jstr(vm, "type"), *mb = jstr(vm, "publicKeyMultibase");
    if (!type || !mb)
        return MDW_ECRYPTO;
    if (!strcmp(type, "Multikey"))
        return mdw_pubkey_from_multibase(mb, key);
    mdw_key_type kt = !strcmp(type, "EcdsaSecp256k1VerificationKey2019")   ? MDW_KEY_SECP256K1
                      : !strcmp(type, "EcdsaSecp256r1VerificationKey2019") ? MDW_KEY_P256
                                                                           : MDW_KEY_NONE;
    uint8_t raw[80];
    size_t n;
    if (kt == MDW_KEY_NONE || mdw_multibase_decode(mb, raw, sizeof raw, &n))
        return MDW_ECRYPTO;
    return mdw_pubkey_from_sec1(kt, raw, n, key);
}

char *mdw_diddoc_pds_endpoint(const cJSON *doc)
{
    const cJSON *services = cJSON_GetObjectItemCaseSensitive(doc, "service");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    const cJSON *s;
    cJSON_ArrayForEach(s, services)
    {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(s, "id");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(s, "serviceEndpoint");
        if (!cJSON_IsString(sid) || !cJSON_IsString(ep))
            continue;
        /* The id is "#atproto_pds" or "<did>#atproto_pds". */
        const char *frag = strchr(sid->valuestring, '#');
        if (!frag || strcmp(frag, "#atproto_pds") != 0)
            continue;
        if (frag != sid->valuestring &&
            (!cJSON_IsString(id) || strlen(id->valuestring) != (size_t)(frag - sid->valuestring) ||
             strncmp(id->valuestring, sid->valuestring, (size_t)(frag - sid->valuestring))))
            continue;
        if (cJSON_IsString(type) && strcmp(type->valuestring, "AtprotoPersonalDataServer") != 0)
            continue;
        const char *u = ep->valuestring;
        if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
            continue;
        return xstrdup(u);
    }
    return NULL;
}

static int from_cjson(const cJSON *doc, mdw_diddoc *out)
{
    memset(out, 0, sizeof *out);
    const char *id = jstr(doc, "id");
    if (!cJSON_IsObject(doc) || !id || strlen(id) > MDW_MAX_DID_BYTES)
        return MDW_EMALFORMED;
    out->did = xstrdup(id);
    const cJSON *it;
    const cJSON *aka = cJSON_GetObjectItemCaseSensitive(doc, "alsoKnownAs");
    cJSON_ArrayForEach(it, aka)
    {
        if (cJSON_IsString(it) && !strncmp(it->valuestring, "at://", 5)) {
            out->handle = xstrdup(it->valuestring + 5);
            break;
        }
    }
    const cJSON *vms = cJSON_GetObjectItemCaseSensitive(doc, "verificationMethod");
    cJSON_ArrayForEach(it, vms)
    {
        const char *vid = jstr(it, "id");
        if (vid && ends_with(vid, "#atproto")) {
            out->has_key = vm_key(it, &out->key) == 0;
            break;
        }
    }
    out->pds = mdw_diddoc_pds_endpoint(doc);
    return 0;
}

int mdw_diddoc_parse(const char *json, size_t len, mdw_diddoc *out)
{
    memset(out, 0, sizeof *out);
    cJSON *doc = cJSON_ParseWithLength(json, len);
    if (!doc)
        return MDW_EMALFORMED;
    int rc = from_cjson(doc, out);
    cJSON_Delete(doc);
    if (rc)
        mdw_diddoc_release(out);
    return rc;
}

void mdw_diddoc_release(mdw_diddoc *d)
{
    if (!d)
        return;
    free(d->did);
    free(d->handle);
    free(d->pds);
    memset(d, 0, sizeof *d);
}

/* ---- the file-backed resolver ---- */

typedef struct file_resolver {
    mdw_did_resolver base;
    mdw_diddoc *docs; /* sorted by did */
    size_t n;
} file_resolver;

static int doc_cmp(const void *a, const void *b)
{
    return strcmp(((const mdw_diddoc *)a)->did, ((const mdw_diddoc *)b)->did);
}

static int file_resolve(mdw_did_resolver *r, const char *did, mdw_diddoc *out)
{
    file_resolver *f = (file_resolver *)r;
    mdw_diddoc key = {.did = (char *)did};
    const mdw_diddoc *d = bsearch(&key, f->docs, f->n, sizeof *f->docs, doc_cmp);
    memset(out, 0, sizeof *out);
    if (!d)
        return MDW_ENOTFOUND;
    *out = *d;
    out->did = xstrdup(d->did);
    out->handle = d->handle ? xstrdup(d->handle) : NULL;
    out->pds = d->pds ? xstrdup(d->pds) : NULL;
    return 0;
}

static void file_close(mdw_did_resolver *r)
{
    file_resolver *f = (file_resolver *)r;
    for (size_t i = 0; i < f->n; i++)
        mdw_diddoc_release(&f->docs[i]);
    free(f->docs);
    free(f);
}

int mdw_did_resolver_file_open(const char *path, mdw_did_resolver **out)
{
    char *text;
    size_t len;
    int rc = mdw_zfile_slurp(path, MDW_MAX_DIDDOC_FILE, &text, &len);
    if (rc) {
        mdw_error("diddoc", "cannot read DID documents file", "path=%s err=\"%s\"", path,
                  mdw_strerror(rc));
        return rc;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        mdw_error("diddoc", "DID documents file is not a JSON object", "path=%s", path);
        return MDW_EMALFORMED;
    }
    file_resolver *f = xcalloc(1, sizeof *f);
    f->base.resolve = file_resolve;
    f->base.close = file_close;
    size_t cap = (size_t)cJSON_GetArraySize(root);
    f->docs = xcalloc(cap ? cap : 1, sizeof *f->docs);
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        mdw_diddoc d;
        if (from_cjson(it, &d) || strcmp(d.did, it->string) != 0) {
            mdw_warn("diddoc", "skipping an invalid DID document", "path=%s did=%s", path,
                     it->string);
            mdw_diddoc_release(&d);
            continue;
        }
        f->docs[f->n++] = d;
    }
    cJSON_Delete(root);
    qsort(f->docs, f->n, sizeof *f->docs, doc_cmp);
    *out = &f->base;
    return 0;
}
