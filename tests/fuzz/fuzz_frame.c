/*
** libFuzzer target: one subscribeRepos frame through mdw_relay_decode(),
** twice — without signature checks (the JSON path: every event emitted must
** parse as JSON) and with a resolver that answers every DID with one fixed
** secp256k1 key (the canonical re-encoding and ECDSA path). Seeds: real
** relay frames from the corpus (tests/fuzz/corpus/frame), plus an error
** frame and an #info frame. Crashes, leaks, UB and invalid JSON are findings.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "identity/identity.h"
#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "firehose/relay.h"

static int fixed_resolve(mdw_did_resolver *r, const char *did, mdw_diddoc *out)
{
    memset(out, 0, sizeof *out);
    out->did = xstrdup(did);
    out->has_key = mdw_pubkey_from_multibase("zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj",
                                             &out->key) == 0;
    return 0;
}

static void fixed_close(mdw_did_resolver *r)
{
}

static mdw_did_resolver fixed = {fixed_resolve, fixed_close};

static int check_json(void *ctx, const mdw_relay_event *ev)
{
    cJSON *j = cJSON_ParseWithLength(ev->json, ev->json_len);
    if (!j || strlen(ev->json) != ev->json_len || !ev->did || !ev->did[0])
        abort(); /* the decoder emitted something that is not one JSON event */
    cJSON_Delete(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdw_log_set_level(MDW_LOG_OFF);
    mdw_relay_frame info;
    int rc = mdw_relay_decode(data, size, NULL, &info, check_json, NULL);
    if (rc && info.err[0] == '\0')
        abort(); /* every failure carries a reason */
    mdw_relay_opts opts = {.resolver = &fixed};
    mdw_relay_decode(data, size, &opts, &info, check_json, NULL);
    return 0;
}
