/*
** libFuzzer target for service-auth token handling: the input is an
** Authorization header value (or, when it starts with '{', a DID document).
** Tokens go through mdw_jwt_parse and the whole mdw_auth_check path; DID
** resolution is answered offline from a docs file written at start (one
** secp256k1 and one P-256 DID, as in the seed corpus), so signature
** verification, the refetch path and the token cache run too, and nothing
** touches the network. Seeds: tests/fuzz/corpus/jwt/ (tokens minted by a real
** PDS's com.atproto.server.getServiceAuth and by the reference library).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "feedgen/auth.h"
#include "identity/identity.h"

/* Keys of the corpus tokens' issuers (see tests/fuzz/corpus/jwt/README). */
#define DOCS                                                                                       \
    "{\"did:plc:fuzzfuzzfuzzfuzzfuzzfuzz\":{\"id\":\"did:plc:fuzzfuzzfuzzfuzzfuzzfuzz\","          \
    "\"verificationMethod\":[{\"id\":\"#atproto\",\"type\":\"Multikey\","                          \
    "\"publicKeyMultibase\":\"zQ3shYP6NcJp2XofT6JRNkhF6fVTux1zJVHqiqz5y6hR6rAeP\"}]},"             \
    "\"did:plc:p256p256p256p256p256p256\":{\"id\":\"did:plc:p256p256p256p256p256p256\","           \
    "\"verificationMethod\":[{\"id\":\"#atproto\",\"type\":\"Multikey\","                          \
    "\"publicKeyMultibase\":\"zDnaerJGHDByjvdKoV5xsU1GFZJhE18b32EqRR6jAEZV8VkiQ\"}]}}"

static mdw_didres *res;
static mdw_auth *auth;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/meadow-fuzz-jwt-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, DOCS, strlen(DOCS)) != (ssize_t)strlen(DOCS))
        abort();
    close(fd);
    mdw_log_set_level(MDW_LOG_OFF);
    mdw_didres_opts ro = {
        .plc_url = "http://127.0.0.1:1", .cache_ttl_s = 3600, .cache_max = 16, .docs_file = path};
    if (mdw_didres_new(&res, &ro, mdw_clock_real()) != 0)
        abort();
    unlink(path);
    mdw_auth_opts ao = {.mode = MDW_AUTH_OPTIONAL,
                        .service_did = "did:web:feeds.meadow.test",
                        .leeway_s = 30,
                        .resolver = res,
                        .token_cache_max = 64};
    if (mdw_auth_new(&auth, &ao, mdw_clock_real()) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MDW_MAX_JWT_BYTES + 64)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    if (size && s[0] == '{') {
        mdw_didres_keys keys;
        mdw_didres_parse_doc("did:plc:fuzzfuzzfuzzfuzzfuzzfuzz", s, size, &keys);
        free(s);
        return 0;
    }
    mdw_jwt j;
    const char *err = NULL;
    if (mdw_jwt_parse(s, size, &j, &err) == 0) {
        if (j.signed_len >= size || j.sig_len > 64)
            abort();
        mdw_jwt_release(&j);
    } else if (!err) {
        abort(); /* every refusal names its XRPC error */
    }
    char viewer[MDW_MAX_DID_BYTES + 1], msg[256];
    int rc = mdw_auth_check(auth, s, "app.bsky.feed.getFeedSkeleton", viewer, sizeof viewer, &err,
                            msg, sizeof msg);
    if (rc == 0 && err)
        abort();
    if (rc != 0 && (!err || viewer[0]))
        abort();
    free(s);
    return 0;
}
