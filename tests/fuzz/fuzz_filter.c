/*
** tests/fuzz/fuzz_filter.c — libFuzzer target for the lightweight filter and
** time_us extraction (firehose/filter.c). The input is one raw frame, copied
** to a buffer of exactly its size so any read past the end trips ASan.
** Checked: the result matches the reason's class; a dated verdict has a
** positive time_us and agrees with mdw_filter_time_us(); a pass needs a
** dated event; a post create is tagged exactly when memmem finds "atr_".
** Seeds: real Jetstream events from the corpus (tests/fuzz/corpus/filter).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "firehose/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    mdw_filter_verdict v;
    int res = mdw_filter_event(buf, size, &v);
    if (res != (int)mdw_filter_result_of(v.reason) || (unsigned)v.reason >= MDW_FILTER_NREASONS)
        abort();
    if (res == MDW_FILTER_PASS && !v.has_time)
        abort();
    if (v.has_time) {
        int64_t t = 0;
        if (v.time_us <= 0 || mdw_filter_time_us(buf, size, &t) != 0 || t != v.time_us)
            abort();
    }
    if (mdw_filter_reason_name(v.reason) == NULL)
        abort();
    /* the tag search is exactly memmem("atr_") over the whole event */
    if ((v.reason == MDW_FILTER_POST_CREATE_TAGGED ||
         v.reason == MDW_FILTER_POST_CREATE_UNTAGGED) &&
        (v.reason == MDW_FILTER_POST_CREATE_TAGGED) != (memmem(buf, size, "atr_", 4) != NULL))
        abort();
    free(buf);
    return 0;
}
