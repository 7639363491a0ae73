/*
** tests/fuzz/fuzz_atname.c — libFuzzer target for common/atname.h, the one
** parser of each AT Protocol name. The input is taken as n bytes with no
** NUL (every parser takes a length) and goes through all of them; the
** checks are the parsers' promises to each other:
**   - a split AT-URI is a valid one, its parts are valid names lying inside
**     the input, and a feed URI is an AT-URI with a DID authority;
**   - a TID with a time is valid TID syntax, and its time makes the same
**     time back; every hashtag form parses to the id its bare form gives.
** Seeds: tests/fuzz/corpus/atname/.
**
**   make fuzz && build-fuzz/fuzz_atname -max_total_time=60 tests/fuzz/corpus/atname
*/
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/atname.h"
#include "common/banned.h"

static int inside(const char *p, size_t n, const char *s, size_t sn)
{
    return p >= s && p + n <= s + sn;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so reading past n is an ASan error. */
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    size_t n = size;

    (void)mdw_did_valid(s, n);
    (void)mdw_handle_valid(s, n);
    (void)mdw_at_identifier_valid(s, n);
    (void)mdw_nsid_valid(s, n);
    (void)mdw_rkey_valid(s, n);

    mdw_at_uri p;
    if (mdw_at_uri_split(s, n, &p) == 0) {
        if (!mdw_at_uri_valid(s, n) || !inside(p.authority, p.authority_len, s, n) ||
            !mdw_at_identifier_valid(p.authority, p.authority_len))
            abort();
        if (p.collection_len && (!inside(p.collection, p.collection_len, s, n) ||
                                 !mdw_nsid_valid(p.collection, p.collection_len)))
            abort();
        if (p.rkey_len && (!p.collection_len || !inside(p.rkey, p.rkey_len, s, n) ||
                           !mdw_rkey_valid(p.rkey, p.rkey_len)))
            abort();
    }
    size_t olen = 0;
    char id[9];
    if (mdw_feed_uri_parse(s, n, &olen, id) == 0) {
        uint8_t t[4];
        if (mdw_at_uri_split(s, n, &p) != 0 || p.authority_len != olen ||
            !mdw_did_valid(s + 5, olen) || strlen(id) != 8 || mdw_tag_id_parse(id, 8, t) != 0)
            abort();
    }

    int64_t us = -1, back = -2;
    if (mdw_tid_time(s, n, &us) == 0) {
        char tid[14];
        if (!mdw_tid_valid(s, n) || us < 0 || us >= (1LL << 53))
            abort();
        mdw_tid_make(us, 0, tid);
        if (mdw_tid_time(tid, 13, &back) != 0 || back != us)
            abort();
    }

    uint8_t a[4], b[4];
    if (mdw_hashtag_parse(s, n, a) == 0 &&
        (mdw_tag_parse(s + 1, n - 1, b) != 0 || memcmp(a, b, 4) != 0 ||
         mdw_tag_id_parse(s + 5, n - 5, b) != 0 || memcmp(a, b, 4) != 0))
        abort();
    free(s);
    return 0;
}
