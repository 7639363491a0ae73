/*
** feedgen/auth_hook.c — mdw_auth as feedgen's service-auth hook
** (mdw_feedgen_auth_fn, feedgen/feedgen.h): the server calls it from its HTTP
** threads for getFeedSkeleton; ctx is the mdw_auth.
*/
#include <stdio.h>

#include "feedgen/auth.h"
#include "feedgen/feedgen.h"
#include "common/banned.h"

int mdw_auth_feedgen_hook(void *ctx, const char *authorization, const char *lxm,
                          mdw_feedgen_auth_result *res)
{
    const char *err = NULL;
    int rc = mdw_auth_check(ctx, authorization, lxm, res->viewer_did, sizeof res->viewer_did, &err,
                            res->message, sizeof res->message);
    snprintf(res->error, sizeof res->error, "%s", rc == 0 || !err ? "" : err);
    return rc;
}
