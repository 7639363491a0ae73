/*
** lexicon/app_check.c — Meadow's application rules, beyond what lexicon can
** express (no pattern keyword, no sums): the config hashtag is "#atr_" and
** 8 lowercase hex digits; feedMix's own + parent + global is 100. That a
** config's hashtag never changes needs the previous record, so the processor
** enforces it (docs/lexicon.md).
*/
#include <stdio.h>
#include <string.h>

#include "common/atname.h"
#include "common/err.h"
#include "lexicon/lexicon.h"
#include "common/banned.h"

int mdw_lexicon_app_check(const char *nsid, const cJSON *record, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (strcmp(nsid, "net.atrarium.community.config"))
        return 0;
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(record, "hashtag");
    uint8_t id[4];
    if (!cJSON_IsString(tag) || mdw_hashtag_parse(tag->valuestring, strlen(tag->valuestring), id)) {
        snprintf(err, errlen, "application rule: hashtag must be #atr_ and 8 lowercase hex digits");
        return MDW_EINVALID;
    }
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(record, "feedMix");
    if (mix) {
        static const char *const parts[] = {"own", "parent", "global"};
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            const cJSON *p =
                cJSON_IsObject(mix) ? cJSON_GetObjectItemCaseSensitive(mix, parts[i]) : NULL;
            if (cJSON_IsNumber(p))
                sum += p->valuedouble;
        }
        if (sum != 100) {
            snprintf(err, errlen,
                     "application rule: feedMix own + parent + global must be 100, not %g", sum);
            return MDW_EINVALID;
        }
    }
    return 0;
}
