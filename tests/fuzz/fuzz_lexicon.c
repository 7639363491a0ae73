/*
** tests/fuzz/fuzz_lexicon.c — libFuzzer target for lexicon/.
**
** The first byte picks what the rest is:
**   0..127   a record (JSON), validated against every record type of the
**            builtin documents and the test documents (tests/lexicon/docs,
**            when the fuzzer runs from the repository), then the app rules;
**   128..191 a lexicon document, loaded on its own, then a few records
**            validated against it (exercises the loader and resolution);
**   192..255 raw bytes for every string format checker and the grapheme
**            counter (no NUL terminator: they take a length).
** Seeds: tests/fuzz/corpus/lexicon/ (records of the cross-check corpus).
*/
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/atname.h"
#include "common/log.h"
#include "lexicon/formats.h"
#include "lexicon/lexicon.h"

static mdw_lexicon *lex;
static const char *const nsids[] = {"net.atrarium.community.config",
                                    "net.atrarium.community.membership",
                                    "net.atrarium.moderation.action",
                                    "app.bsky.feed.generator",
                                    "app.bsky.feed.post",
                                    "com.example.lexicon.kitchen"};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    mdw_log_set_level(MDW_LOG_OFF);
    if (mdw_lexicon_new(&lex) || mdw_lexicon_add_builtin(lex))
        abort();
    const char *dir = getenv("MEADOW_FUZZ_LEXICON_DIR");
    if (mdw_lexicon_add_dir(lex, dir ? dir : "tests/lexicon/docs")) {
        /* not run from the repository: builtin documents only */
        mdw_lexicon_free(lex);
        if (mdw_lexicon_load_builtin(&lex))
            abort();
    }
    return 0;
}

static void validate_all(const mdw_lexicon *l, const cJSON *rec)
{
    char err[256];
    for (size_t i = 0; i < sizeof nsids / sizeof nsids[0]; i++) {
        int rc = mdw_lexicon_validate_record(l, nsids[i], rec, err, sizeof err);
        if (rc == 0)
            mdw_lexicon_app_check(nsids[i], rec, err, sizeof err);
        if (strlen(err) >= sizeof err)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (mode < 128) {
        cJSON *rec = cJSON_ParseWithLength(s, n);
        if (rec)
            validate_all(lex, rec);
        cJSON_Delete(rec);
    } else if (mode < 192) {
        mdw_lexicon *l;
        mdw_lexicon_new(&l);
        if (mdw_lexicon_add_doc(l, s, n, "fuzz") == 0) {
            cJSON *doc = cJSON_ParseWithLength(s, n);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
            if (cJSON_IsString(id) && mdw_lexicon_has_record(l, id->valuestring)) {
                static const char *const recs[] = {"{}", "{\"a\":1}", "[]", "{\"x\":[{}]}"};
                char err[128];
                for (size_t i = 0; i < 4; i++) {
                    cJSON *r = cJSON_Parse(recs[i]);
                    cJSON_AddStringToObject(r, "$type", id->valuestring);
                    mdw_lexicon_validate_record(l, id->valuestring, r, err, sizeof err);
                    cJSON_Delete(r);
                }
            }
            cJSON_Delete(doc);
        }
        mdw_lexicon_free(l);
    } else {
        size_t len;
        (void)mdw_did_valid(s, n);
        (void)mdw_handle_valid(s, n);
        (void)mdw_at_identifier_valid(s, n);
        (void)mdw_nsid_valid(s, n);
        (void)mdw_at_uri_valid(s, n);
        (void)lexicon__is_datetime(s, n);
        (void)lexicon__is_cid(s, n);
        (void)lexicon__is_uri(s, n);
        (void)mdw_tid_valid(s, n);
        (void)mdw_rkey_valid(s, n);
        (void)lexicon__is_language(s, n);
        (void)lexicon__base64_len(s, n, &len);
        size_t g = lexicon__graphemes(s, n, SIZE_MAX);
        if (g > n || lexicon__utf16_len(s, n) > n)
            abort();
    }
    return 0;
}
