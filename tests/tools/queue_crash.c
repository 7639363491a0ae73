/*
** tests/tools/queue_crash.c — processes for the queue crash test
** (tests/integration/queue_crash.sh), which SIGKILLs them at random moments.
**
**   queue_crash writer   DIR WLOG  append numbered events, cursor = last number
**   queue_crash consumer DIR CLOG  claim, log delivered numbers, then ack
**   queue_crash check    DIR WLOG CLOG [--drain]  verify the invariants
**   queue_crash fill     DIR N DEAD  seed N events, DEAD of them dead-lettered
**   queue_crash hold     DIR       keep the environment open until killed
**
** `hold` matters: the first process to open an LMDB environment resets its
** lock table, which would hide what a kill leaves behind there (a reader
** slot of a killed consumer, a write mutex of a killed writer). With a holder
** running, every restart has to recover from those through LMDB's robust
** mutex and mdb_reader_check().
**
** Event n carries "n=<n>;" followed by bytes derived from n (length varies
** with n), so the checker can tell a torn or mixed-up event. The writer
** continues after the stored cursor, so the numbers committed are exactly
** 1..cursor. After each commit returns it appends "<cursor>\n" to WLOG; the
** consumer appends the numbers it received to CLOG before acking them. Both
** logs are written with write(2), which a SIGKILL cannot undo.
**
** check: (1) the stored cursor >= the last cursor the writer saw committed
** (a committed batch survived); (2) no event numbered above the cursor exists
** anywhere (a batch never lands without its cursor); (3) every number
** 1..cursor is in the queue or in CLOG (none lost: the cursor never points
** past a committed event); (4) the queue holds them in order and intact.
** --drain then consumes everything left and requires CLOG to cover 1..cursor
** (every committed event delivered at least once).
** Exit 0 when all hold, 1 on a violation (printed), 2 on usage or I/O error.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/mem.h"
#include "queue/queue.h"
#include "firehose/sources.h"
#include "common/banned.h"

#define MAP_BYTES (64u << 20)

static size_t event_len(uint64_t n)
{
    return 24 + (size_t)(n * 7919 % 1500);
}

static void event_fill(char *buf, uint64_t n)
{
    size_t len = event_len(n);
    int h = snprintf(buf, len, "n=%" PRIu64 ";", n);
    for (size_t i = (size_t)h; i < len; i++)
        buf[i] = (char)('a' + (n + i) % 26);
}

/* The event's number, or 0 when its bytes are not exactly what event_fill wrote. */
static uint64_t event_check(const char *data, size_t len)
{
    if (len < 3 || memcmp(data, "n=", 2) != 0)
        return 0;
    char *end;
    uint64_t n = strtoull(data + 2, &end, 10);
    if (end >= data + len || *end != ';' || len != event_len(n))
        return 0;
    static char want[2048];
    event_fill(want, n);
    return memcmp(want, data, len) == 0 ? n : 0;
}

static int open_queue(mdw_queue **q, const char *dir)
{
    mdw_queue_opts o;
    mdw_queue_opts_default(&o);
    o.map_bytes = MAP_BYTES; /* synced: durability is what is tested */
    int rc = mdw_queue_open(q, dir, &o);
    if (rc)
        fprintf(stderr, "queue_crash: open %s: %s\n", dir, mdw_strerror(rc));
    return rc;
}

static int log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        fprintf(stderr, "queue_crash: %s: %s\n", path, strerror(errno));
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int run_writer(const char *dir, const char *wlog)
{
    mdw_queue *q;
    if (open_queue(&q, dir))
        return 2;
    int fd = log_open(wlog);
    if (fd < 0)
        return 2;
    int64_t cursor = 0;
    int rc = mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &cursor);
    if (rc && rc != MDW_ENOTFOUND) {
        fprintf(stderr, "queue_crash: get cursor: %s\n", mdw_strerror(rc));
        return 2;
    }
    srand((unsigned)getpid());
    enum { MAXB = 64 };
    static char bufs[MAXB][2048];
    mdw_queue_event ev[MAXB];
    for (int iter = 0; iter < 1000000; iter++) {
        size_t k = 1 + (size_t)rand() % MAXB;
        for (size_t i = 0; i < k; i++) {
            uint64_t n = (uint64_t)cursor + 1 + i;
            event_fill(bufs[i], n);
            ev[i] = (mdw_queue_event){bufs[i], event_len(n), (int64_t)n};
        }
        rc = mdw_queue_append(q, MDW_SOURCE_TEST, ev, k, cursor + (int64_t)k);
        if (rc == MDW_EFULL) {
            usleep(5000);
            continue;
        }
        if (rc) {
            fprintf(stderr, "queue_crash: append: %s\n", mdw_strerror(rc));
            return 2;
        }
        cursor += (int64_t)k;
        char line[32];
        int len = snprintf(line, sizeof line, "%" PRId64 "\n", cursor);
        if (write_all(fd, line, (size_t)len))
            return 2;
        if (iter % 16 == 0) /* a quiet stream: the cursor alone, same value */
            mdw_queue_commit_cursor(q, MDW_SOURCE_TEST, cursor);
    }
    mdw_queue_close(q);
    close(fd);
    return 0;
}

/* Claims and acks until empty (drain) or forever; 0, 1 on a bad event, 2 on error. */
static int consume(mdw_queue *q, int fd, int drain)
{
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    uint64_t after = 0;
    int status = 0;
    char *out = xmalloc(128 * 24);
    uint64_t *seqs = xmalloc(128 * sizeof *seqs);
    for (;;) {
        int rc = mdw_queue_claim(q, after, 1 + (size_t)rand() % 128, &b);
        if (rc) {
            fprintf(stderr, "queue_crash: claim: %s\n", mdw_strerror(rc));
            status = 2;
            break;
        }
        if (!b.n) {
            if (drain)
                break;
            after = 0; /* from the head again: nothing acked is skipped for good */
            mdw_queue_wait(q, 5);
            continue;
        }
        size_t len = 0;
        for (size_t i = 0; i < b.n; i++) {
            uint64_t n = event_check(b.items[i].data, b.items[i].len);
            if (!n || b.items[i].time_us != (int64_t)n) {
                fprintf(stderr, "VIOLATION: seq %" PRIu64 " holds a damaged event\n",
                        b.items[i].seq);
                status = 1;
                goto out;
            }
            len += (size_t)snprintf(out + len, 24, "%" PRIu64 "\n", n);
            seqs[i] = b.items[i].seq;
        }
        if (write_all(fd, out, len)) {
            status = 2;
            break;
        }
        after = b.items[b.n - 1].seq;
        if ((rc = mdw_queue_ack(q, seqs, b.n))) {
            fprintf(stderr, "queue_crash: ack: %s\n", mdw_strerror(rc));
            status = 2;
            break;
        }
    }
out:
    free(out);
    free(seqs);
    mdw_queue_batch_release(&b);
    return status;
}

static int run_consumer(const char *dir, const char *clog)
{
    mdw_queue *q;
    if (open_queue(&q, dir))
        return 2;
    int fd = log_open(clog);
    if (fd < 0)
        return 2;
    srand((unsigned)getpid());
    int st = consume(q, fd, 0);
    mdw_queue_close(q);
    close(fd);
    return st;
}

/* Reads a log of numbers; a last line without newline (cut by a kill) is ignored. */
static int read_log(const char *path, uint8_t **seen, uint64_t *cap, uint64_t *last,
                    uint64_t *count)
{
    FILE *f = fopen(path, "r");
    *last = 0;
    *count = 0;
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[64];
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break;
        uint64_t n = strtoull(line, NULL, 10);
        *last = n;
        (*count)++;
        if (seen) {
            if (n >= *cap) {
                uint64_t nc = (n + 1) * 2;
                *seen = xrealloc(*seen, nc);
                memset(*seen + *cap, 0, nc - *cap);
                *cap = nc;
            }
            (*seen)[n] = 1;
        }
    }
    fclose(f);
    return 0;
}

static int run_check(const char *dir, const char *wlog, const char *clog, int drain)
{
    uint64_t wlast, wcount, clast, ccount, cap = 0;
    uint8_t *seen = NULL;
    if (read_log(wlog, NULL, NULL, &wlast, &wcount) ||
        read_log(clog, &seen, &cap, &clast, &ccount)) {
        fprintf(stderr, "queue_crash: cannot read logs\n");
        return 2;
    }
    mdw_queue *q;
    if (open_queue(&q, dir))
        return 2;
    mdw_queue_stats st;
    mdw_queue_stats_get(q, &st);
    int64_t cur = 0;
    int rc = mdw_queue_get_cursor(q, MDW_SOURCE_TEST, &cur);
    if (rc && rc != MDW_ENOTFOUND) {
        fprintf(stderr, "queue_crash: get cursor: %s\n", mdw_strerror(rc));
        return 2;
    }
    uint64_t cursor = (uint64_t)cur;
    int bad = 0;
    if (cursor < wlast) {
        printf("VIOLATION: stored cursor %" PRIu64 " < committed %" PRIu64 "\n", cursor, wlast);
        bad = 1;
    }
    for (uint64_t n = cursor + 1; n < cap; n++)
        if (seen[n]) {
            printf("VIOLATION: event %" PRIu64 " delivered but cursor is %" PRIu64 "\n", n, cursor);
            bad = 1;
            break;
        }
    /* Walk the queue: intact, in order, nothing above the cursor. */
    uint8_t *inq = xcalloc(cursor + 2, 1);
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    uint64_t after = 0, prev = 0, queued = 0;
    while (!bad && (rc = mdw_queue_claim(q, after, 4096, &b)) == 0 && b.n) {
        for (size_t i = 0; i < b.n && !bad; i++) {
            uint64_t n = event_check(b.items[i].data, b.items[i].len);
            if (!n) {
                printf("VIOLATION: seq %" PRIu64 " holds a damaged event\n", b.items[i].seq);
                bad = 1;
            } else if (n > cursor) {
                printf("VIOLATION: event %" PRIu64 " stored past cursor %" PRIu64 "\n", n, cursor);
                bad = 1;
            } else if (n <= prev) {
                printf("VIOLATION: event %" PRIu64 " after %" PRIu64 " (order)\n", n, prev);
                bad = 1;
            } else {
                inq[n] = 1;
                prev = n;
                queued++;
            }
        }
        after = b.items[b.n - 1].seq;
    }
    mdw_queue_batch_release(&b);
    if (rc) {
        fprintf(stderr, "queue_crash: claim: %s\n", mdw_strerror(rc));
        bad = 2;
    }
    for (uint64_t n = 1; n <= cursor && !bad; n++)
        if (!inq[n] && !(n < cap && seen[n])) {
            printf("VIOLATION: event %" PRIu64 " (<= cursor %" PRIu64 ") lost\n", n, cursor);
            bad = 1;
        }
    free(inq);
    if (!bad && drain) {
        int fd = log_open(clog);
        if (fd < 0 || consume(q, fd, 1) != 0)
            bad = 2;
        if (fd >= 0)
            close(fd);
        free(seen);
        seen = NULL;
        cap = 0;
        if (!bad && read_log(clog, &seen, &cap, &clast, &ccount) == 0) {
            for (uint64_t n = 1; n <= cursor && !bad; n++)
                if (n >= cap || !seen[n]) {
                    printf("VIOLATION: event %" PRIu64 " never delivered\n", n);
                    bad = 1;
                }
            uint64_t depth = 0;
            if (!bad && (mdw_queue_depth(q, &depth) != 0 || depth != 0)) {
                printf("VIOLATION: queue not empty after drain\n");
                bad = 1;
            }
        }
    }
    printf("check: cursor=%" PRIu64 " writer_last=%" PRIu64 " commits=%" PRIu64
           " delivered=%" PRIu64 " queued=%" PRIu64 " stale_readers_cleared=%" PRIu64 " %s\n",
           cursor, wlast, wcount, ccount, queued, st.stale_readers, bad ? "FAILED" : "ok");
    free(seen);
    mdw_queue_close(q);
    return bad;
}

static int run_fill(const char *dir, uint64_t n, uint64_t dead)
{
    mdw_queue *q;
    if (open_queue(&q, dir))
        return 2;
    static char buf[2048];
    for (uint64_t i = 1; i <= n; i++) {
        event_fill(buf, i);
        mdw_queue_event ev = {buf, event_len(i), (int64_t)i * 1000000};
        if (mdw_queue_append(q, MDW_SOURCE_TEST, &ev, 1, (int64_t)i))
            return 2;
    }
    mdw_queue_batch b;
    mdw_queue_batch_init(&b);
    int rc = mdw_queue_claim(q, 0, (size_t)dead, &b);
    for (size_t i = 0; !rc && i < b.n; i++) {
        char err[64];
        snprintf(err, sizeof err, "test failure %zu", i + 1);
        rc = mdw_queue_dead_letter(q, b.items[i].seq, err);
    }
    mdw_queue_batch_release(&b);
    mdw_queue_close(q);
    return rc ? 2 : 0;
}

static int run_hold(const char *dir)
{
    mdw_queue *q;
    if (open_queue(&q, dir))
        return 2;
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    mdw_log_set_level(MDW_LOG_WARN);
    if (argc == 4 && !strcmp(argv[1], "writer"))
        return run_writer(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "consumer"))
        return run_consumer(argv[2], argv[3]);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "check"))
        return run_check(argv[2], argv[3], argv[4], argc == 6 && !strcmp(argv[5], "--drain"));
    if (argc == 3 && !strcmp(argv[1], "hold"))
        return run_hold(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "fill"))
        return run_fill(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: queue_crash writer|consumer DIR LOG | check DIR WLOG CLOG [--drain]"
                    " | fill DIR N DEAD | hold DIR\n");
    return 2;
}
