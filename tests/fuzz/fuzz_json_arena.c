/*
** tests/fuzz/fuzz_json_arena.c — libFuzzer target for Meadow's JSON parser
** (common/json_arena.c), differential against the installed libcjson: on
** every input both accept or both refuse, and what they accept is the same
** tree (types, keys, strings, numbers bit for bit, valueint) ending at the
** same byte. The processor decodes every event with it, so any difference
** would change which events reach dead letters.
**
**   make fuzz && build-fuzz/fuzz_json_arena -max_total_time=60 -dict=tests/fuzz/json.dict \
**       <copy of tests/fuzz/corpus/json_arena>
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/json_arena.h"
#include "tests/json_same_tree.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mdw_json_arena *a;
    if (!a)
        a = mdw_json_arena_new();
    const char *s = (const char *)data, *e1 = NULL, *e2 = NULL;
    cJSON *t1 = cJSON_ParseWithLengthOpts(s, size, &e1, 0);
    cJSON *t2 = mdw_json_arena_parse(a, s, size, &e2);
    if ((!t1) != (!t2))
        abort(); /* one accepts what the other refuses */
    if (t1 && (e1 != e2 || !json_same_node(t1, t2)))
        abort(); /* both accept, but not alike */
    if (!t2 && size && (e2 < s || e2 >= s + size))
        abort(); /* the error position is inside the input */
    cJSON_Delete(t1);
    mdw_json_arena_reset(a);
    return 0;
}
