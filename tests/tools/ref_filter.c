/*
** tests/tools/ref_filter — the reference for the lightweight filter, written
** independently of firehose/filter.c: every line of a JSONL stream (stdin) is
** fully parsed with cJSON and DESIGN's rule is applied to the tree. Prints the
** candidate lines, byte for byte, to stdout. Integration tests compare this
** with what `meadow firehose` left in the queue.
**
**   ref_filter [--stats] < stream.jsonl > candidates.jsonl
*/
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

static int candidate(const char *line, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    int pass = 0;
    if (!cJSON_IsObject(j) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "time_us")))
        goto out;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
    if (kind && !strcmp(kind, "account")) {
        pass = 1;
    } else if (kind && !strcmp(kind, "commit")) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "commit");
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "operation"));
        const char *coll = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "collection"));
        if (op && coll && !strcmp(coll, "app.bsky.feed.post")) {
            if (!strcmp(op, "update") || !strcmp(op, "delete"))
                pass = 1;
            else if (!strcmp(op, "create"))
                pass = memmem(line, len, "atr_", 4) != NULL;
        } else if (op && coll && !strncmp(coll, "net.atrarium.", 13) && coll[13]) {
            pass = 1;
        }
    }
out:
    cJSON_Delete(j);
    return pass;
}

int main(int argc, char **argv)
{
    int stats = argc > 1 && !strcmp(argv[1], "--stats");
    char *line = NULL;
    size_t cap = 0, n = 0, pass = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        size_t l = (size_t)len;
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            l--;
        if (!l)
            continue;
        n++;
        if (candidate(line, l)) {
            pass++;
            fwrite(line, 1, l, stdout);
            fputc('\n', stdout);
        }
    }
    free(line);
    if (stats)
        fprintf(stderr, "lines=%zu candidates=%zu\n", n, pass);
    return fflush(stdout) ? 1 : 0;
}
