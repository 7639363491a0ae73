/*
** tests/tools/lexicon_judge.c — Meadow's verdicts for the lexicon
** cross-check: loads the builtin documents (unless --no-builtin) plus every
** DIR, then judges each
** line of a JSONL corpus ({"id","nsid","record",...}) with
** mdw_lexicon_validate_record. Prints "<id>\t<valid|invalid>\t<message>" per
** record, the same shape as tests/node/lexicon-judge.mjs.
**   lexicon_judge [--no-builtin] CORPUS.jsonl [DIR...]
*/
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "common/buf.h"
#include "common/err.h"
#include "lexicon/lexicon.h"
#include "common/banned.h"

#define MAX_LINE (4u * 1024 * 1024)

int main(int argc, char **argv)
{
    int builtin = 1;
    if (argc > 1 && !strcmp(argv[1], "--no-builtin")) {
        builtin = 0;
        argc--;
        argv++;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: lexicon_judge [--no-builtin] CORPUS.jsonl [DIR...]\n");
        return 2;
    }
    mdw_lexicon *lex;
    int rc = mdw_lexicon_new(&lex);
    if (!rc && builtin)
        rc = mdw_lexicon_add_builtin(lex);
    for (int i = 2; !rc && i < argc; i++)
        rc = mdw_lexicon_add_dir(lex, argv[i]);
    if (rc) {
        fprintf(stderr, "lexicon_judge: cannot load lexicons: %s\n", mdw_strerror(rc));
        mdw_lexicon_free(lex);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        mdw_lexicon_free(lex);
        return 2;
    }
    mdw_buf line = MDW_BUF_INIT(MAX_LINE);
    int c, status = 0;
    for (;;) {
        mdw_buf_reset(&line);
        while ((c = fgetc(f)) != EOF && c != '\n')
            if (mdw_buf_putc(&line, (char)c)) {
                fprintf(stderr, "lexicon_judge: line too long\n");
                status = 2;
                goto out;
            }
        if (line.len > 0) {
            cJSON *entry = cJSON_ParseWithLength(line.data, line.len);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "id");
            const cJSON *nsid = cJSON_GetObjectItemCaseSensitive(entry, "nsid");
            const cJSON *rec = cJSON_GetObjectItemCaseSensitive(entry, "record");
            if (!cJSON_IsString(id) || !cJSON_IsString(nsid) || !rec) {
                fprintf(stderr, "lexicon_judge: bad corpus line: %.80s\n", line.data);
                cJSON_Delete(entry);
                status = 2;
                goto out;
            }
            char err[1024];
            rc = mdw_lexicon_validate_record(lex, nsid->valuestring, rec, err, sizeof err);
            for (char *p = err; *p; p++)
                if (*p == '\t' || *p == '\n')
                    *p = ' ';
            printf("%s\t%s\t%s\n", id->valuestring, rc ? "invalid" : "valid", rc ? err : "");
            cJSON_Delete(entry);
        }
        if (c == EOF)
            break;
    }
out:
    fclose(f);
    mdw_buf_release(&line);
    mdw_lexicon_free(lex);
    return status;
}
