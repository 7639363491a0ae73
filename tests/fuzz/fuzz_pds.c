/*
** tests/fuzz/fuzz_pds.c — libFuzzer target for the PDS client's parsers of
** outside bytes: XRPC error bodies (mdw_pds_format_error), DID documents
** (mdw_diddoc_pds_endpoint), AT-URIs, DID document URLs, TID record keys.
** The first byte picks nothing: every input goes through all of them.
**
**   make fuzz && build-fuzz/fuzz_pds -max_total_time=60 tests/fuzz/corpus/pds
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/atname.h"
#include "identity/identity.h"
#include "pds/pds.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[MDW_PDS_ERR_MAX], name[128];
    mdw_pds_format_error("m", 400, (const char *)data, size, out, sizeof out, name, sizeof name);
    if (strlen(out) >= sizeof out || strlen(name) >= sizeof name)
        abort();
    for (const char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            abort(); /* control characters never reach a terminal */

    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    char *ep = mdw_diddoc_pds_endpoint(doc);
    if (ep && strncmp(ep, "https://", 8) != 0 && strncmp(ep, "http://", 7) != 0)
        abort();
    free(ep);
    cJSON_Delete(doc);

    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *a, *c, *k;
    if (mdw_pds_parse_at_uri(s, &a, &c, &k) == 0) {
        if (!*a || !*c || !*k || strchr(k, '/'))
            abort();
        free(a), free(c), free(k);
    }
    char *u = mdw_did_doc_url(s, "https://plc.directory", 1);
    if (u && !strncmp(s, "did:web:", 8) && !strstr(u, "/.well-known/did.json"))
        abort();
    free(u);
    int64_t t = 0, t2 = -1;
    if (mdw_tid_time(s, strlen(s), &t) == 0) {
        char back[14];
        mdw_pds_tid(t, back);
        if (mdw_tid_time(back, 13, &t2) != 0 || t2 != t)
            abort();
    }
    free(s);
    return 0;
}
