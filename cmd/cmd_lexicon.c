/*
** cmd/cmd_lexicon.c — `meadow lexicon validate [--dir DIR] [--no-app] NSID [FILE|-]`:
** checks one record (JSON, from FILE or stdin) against the builtin lexicon
** documents (plus those in DIR), then Meadow's application rules. Prints
** "valid" and exits 0, or prints the error and exits 1; 2 on usage errors,
** an unknown NSID or unreadable input.
*/
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "cmd/commands.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "lexicon/lexicon.h"
#include "common/banned.h"

enum { O_DIR, O_NO_BUILTIN, O_NO_APP };
static const mdw_cmd_spec validate_spec = {
    .path = "lexicon validate",
    .summary = "check a record (JSON from FILE or stdin) against the lexicon documents and "
               "Meadow's rules",
    .synopsis = "[--dir DIR] [--no-builtin] [--no-app] NSID [FILE|-]",
    .opts =
        {
            [O_DIR] = {"dir", 0, "DIR", "also load the lexicon documents (*.json) under DIR"},
            [O_NO_BUILTIN] = {"no-builtin", 0, NULL, "without the builtin documents (needs --dir)"},
            [O_NO_APP] = {"no-app", 0, NULL, "skip Meadow's application rules"},
        },
    .min_pos = 1,
    .max_pos = 2,
};
const mdw_cmd_spec mdw_cmd_lexicon_spec = {
    .path = "lexicon",
    .summary = "lexicon validate NSID [FILE]: check a record",
    .subs = (const mdw_cmd_spec *const[]){&validate_spec, NULL},
    .run = mdw_cmd_lexicon,
};

static int read_all(FILE *f, mdw_buf *b)
{
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        int rc = mdw_buf_append(b, chunk, k);
        if (rc)
            return rc;
    }
    return ferror(f) ? MDW_EEOF : 0;
}

int mdw_cmd_lexicon(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&mdw_cmd_lexicon_spec, argc, argv, &a))
        return a.status;
    const char *dir = a.opt[O_DIR], *nsid = a.pos[0], *file = a.npos > 1 ? a.pos[1] : "-";
    int app = !a.opt[O_NO_APP], builtin = !a.opt[O_NO_BUILTIN];
    if (!builtin && !dir)
        return mdw_cmd_usage_error(&validate_spec, "--no-builtin needs --dir");

    mdw_lexicon *lex = NULL;
    int rc = mdw_lexicon_new(&lex);
    if (!rc && builtin)
        rc = mdw_lexicon_add_builtin(lex);
    if (!rc && dir)
        rc = mdw_lexicon_add_dir(lex, dir);
    if (rc) {
        fprintf(stderr, "meadow lexicon: cannot load lexicons: %s\n", mdw_strerror(rc));
        mdw_lexicon_free(lex);
        return 2;
    }

    mdw_buf in = MDW_BUF_INIT(MDW_MAX_RECORD_BYTES);
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "meadow lexicon: cannot open %s\n", file);
        mdw_lexicon_free(lex);
        return 2;
    }
    rc = read_all(f, &in);
    if (f != stdin)
        fclose(f);
    int exit_code = 2;
    if (rc) {
        fprintf(stderr, "meadow lexicon: cannot read %s: %s\n", file, mdw_strerror(rc));
        goto out;
    }
    cJSON *rec = cJSON_ParseWithLength(in.data ? in.data : "", in.len);
    if (!rec) {
        printf("not JSON\n");
        exit_code = 1;
        goto out;
    }
    char err[512];
    rc = mdw_lexicon_validate_record(lex, nsid, rec, err, sizeof err);
    if (!rc && app)
        rc = mdw_lexicon_app_check(nsid, rec, err, sizeof err);
    cJSON_Delete(rec);
    if (rc == MDW_ENOTFOUND) {
        fprintf(stderr, "meadow lexicon: %s\n", err);
    } else if (rc) {
        printf("%s\n", err);
        exit_code = 1;
    } else {
        printf("valid\n");
        exit_code = 0;
    }
out:
    mdw_buf_release(&in);
    mdw_lexicon_free(lex);
    return exit_code;
}
