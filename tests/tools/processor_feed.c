/*
** tests/tools/processor_feed.c — appends the lines of a JSONL file to the
** queue of a data directory, for the processor's integration tests
** (tests/integration/processor_*.sh) and manual runs.
**
**   processor_feed DATA_DIR FILE [BATCH]
**
** Each non-empty line is one event; BATCH lines (default 500) per append
** transaction; time_us of the envelope = the event's own time_us when the
** line has one, else 0. Prints the number of events appended.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "common/banned.h"

static int64_t time_of(const char *line)
{
    const char *p = strstr(line, "\"time_us\":");
    return p ? strtoll(p + 10, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: processor_feed DATA_DIR FILE [BATCH]\n");
        return 2;
    }
    long batch = argc > 3 ? strtol(argv[3], NULL, 10) : 500;
    if (batch < 1 || batch > 100000)
        batch = 500;
    FILE *fp = fopen(argv[2], "r");
    if (!fp) {
        perror(argv[2]);
        return 1;
    }
    char *qdir = xasprintf("%s/queue", argv[1]);
    mdw_queue_opts o;
    mdw_queue_opts_default(&o);
    mdw_queue *q;
    int rc = mdw_queue_open(&q, qdir, &o);
    free(qdir);
    if (rc) {
        fprintf(stderr, "processor_feed: cannot open queue: %s\n", mdw_strerror(rc));
        return 1;
    }
    mdw_queue_event *ev = xcalloc((size_t)batch, sizeof *ev);
    char **lines = xcalloc((size_t)batch, sizeof *lines);
    size_t n = 0, total = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t cursor = 0;
    for (;;) {
        len = getline(&line, &cap, fp);
        if (len > 0) {
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (len) {
                lines[n] = xstrdup(line);
                ev[n].data = lines[n];
                ev[n].len = (size_t)len;
                ev[n].time_us = time_of(line);
                if (ev[n].time_us > cursor)
                    cursor = ev[n].time_us;
                n++;
            }
        }
        if (n && (n == (size_t)batch || len < 0)) {
            if ((rc = mdw_queue_append(q, MDW_SOURCE_TEST, ev, n, cursor))) {
                fprintf(stderr, "processor_feed: append failed: %s\n", mdw_strerror(rc));
                break;
            }
            total += n;
            for (size_t i = 0; i < n; i++)
                free(lines[i]);
            n = 0;
        }
        if (len < 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(line);
    free(lines);
    free(ev);
    fclose(fp);
    mdw_queue_close(q);
    printf("%zu\n", total);
    return rc ? 1 : 0;
}
