/*
** relay_jsoncmp EXPECTED.jsonl GOT.jsonl — compares JSON lines semantically
** (same values, object key order free, top-level "time_us" ignored): every
** line of EXPECTED against the line at the same position in GOT, so order
** matters. GOT may have more lines (the expected file can be a prefix).
** Prints "N of N equal" and exits 0, or the first difference and exits 1.
** A C tool so tests need neither jq nor python.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/mem.h"
#include "common/zfile.h"
#include "tests/relay_test_util.h"
#include "common/banned.h"

static char **split(char *text, size_t *n)
{
    size_t cap = 64;
    char **lines = xmalloc(cap * sizeof *lines);
    *n = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p) {
            if (*n == cap)
                lines = xrealloc(lines, (cap *= 2) * sizeof *lines);
            lines[(*n)++] = p;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return lines;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: relay_jsoncmp EXPECTED.jsonl GOT.jsonl\n");
        return 2;
    }
    char *want_text, *got_text;
    size_t wl, gl, nw, ng;
    if (mdw_zfile_slurp(argv[1], 1u << 30, &want_text, &wl) ||
        mdw_zfile_slurp(argv[2], 1u << 30, &got_text, &gl)) {
        fprintf(stderr, "relay_jsoncmp: cannot read the inputs\n");
        return 2;
    }
    char **want = split(want_text, &nw), **got = split(got_text, &ng);
    int status = 0;
    size_t i;
    for (i = 0; i < nw; i++) {
        if (i >= ng) {
            printf("line %zu: missing (got has %zu lines)\n", i + 1, ng);
            status = 1;
            break;
        }
        cJSON *a = cJSON_Parse(want[i]), *b = cJSON_Parse(got[i]);
        int same = a && b && json_eq(a, b, 1);
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (!same) {
            printf("line %zu differs\n  want %s\n  got  %s\n", i + 1, want[i], got[i]);
            status = 1;
            break;
        }
    }
    if (status == 0)
        printf("%zu of %zu equal\n", nw, nw);
    free(want);
    free(got);
    free(want_text);
    free(got_text);
    return status;
}
