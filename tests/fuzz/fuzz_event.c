/*
** tests/fuzz/fuzz_event.c — libFuzzer target for the processor's event
** decoding: mdw_event_parse_in() on arbitrary bytes with the tree in an
** arena, as the processor decodes (and mdw_event_parse(), malloc'd, must
** give the same verdict and fields), then (for what decodes) the derived
** fields of mdw_event_prepare (hashtags, hashes, times; the same from both
** trees) and the rule engine against a small real index that
** holds one community (config + a membership), inside a write transaction
** that is aborted so every input meets the same index.
**
**   make fuzz && build-fuzz/fuzz_event -max_total_time=60 tests/fuzz/corpus/event
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "index/index.h"
#include "processor/event.h"
#include "processor/rules.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mdw_index *ix;
static mdw_rules *rules;
static mdw_tagger *tagger;
static mdw_json_arena *arena;
static mdw_clock clk;
static char dir[128];

/* The index is scratch: removed when libFuzzer exits. */
static void cleanup(void)
{
    mdw_rules_free(rules);
    mdw_tagger_free(tagger);
    mdw_json_arena_free(arena);
    mdw_index_close(ix);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_event: could not remove %s\n", dir);
}

static const char *const setup[] = {
    "{\"did\":\"did:plc:owner\",\"time_us\":1795391000000000,\"kind\":\"commit\",\"commit\":"
    "{\"rev\":\"3n2ucocudyk2b\",\"operation\":\"create\",\"collection\":\"net.atrarium.community."
    "config\",\"rkey\":\"3n2ucocudyk25\",\"record\":{\"$type\":\"net.atrarium.community.config\","
    "\"name\":\"Fuzz\",\"hashtag\":\"#atr_0123abcd\",\"stage\":\"theme\",\"moderators\":"
    "[\"did:plc:mod\"],\"createdAt\":\"2026-11-22T23:00:00.000Z\"}}}",
    "{\"did\":\"did:plc:alice\",\"time_us\":1795391000001000,\"kind\":\"commit\",\"commit\":"
    "{\"rev\":\"3n2ucocueyk2b\",\"operation\":\"create\",\"collection\":\"net.atrarium.community."
    "membership\",\"rkey\":\"3n2ucocueyk25\",\"record\":{\"community\":\"at://did:plc:owner/"
    "net.atrarium.community.config/3n2ucocudyk25\",\"role\":\"member\",\"joinedAt\":"
    "\"2026-11-22T23:00:00.000Z\"}}}",
};

static void init(void)
{
    snprintf(dir, sizeof dir, "/tmp/meadow-fuzz-event-%ld", (long)getpid());
    mdw_log_set_level(MDW_LOG_OFF);
    mdw_clock_fake_init(&clk, 1795392000000000LL);
    mdw_index_opts o = {0};
    o.nosync = 1;
    o.map_bytes = 64u << 20;
    o.clock = &clk;
    if (mdw_index_open(&ix, dir, &o) || mdw_rules_new(&rules, ix, &clk, 7 * 86400LL * 1000000) ||
        mdw_tagger_new(&tagger))
        abort();
    arena = mdw_json_arena_new();
    atexit(cleanup);
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        mdw_event ev;
        char err[256];
        mdw_rules_result res;
        if (mdw_event_parse(&ev, setup[i], strlen(setup[i]), err, sizeof err) ||
            mdw_rules_begin(rules) || mdw_rules_apply(rules, &ev, &res) ||
            mdw_rules_commit(rules, 0))
            abort();
        mdw_event_release(&ev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ix)
        init();
    mdw_event ev, ev2;
    char err[256], err2[256];
    int rc = mdw_event_parse_in(&ev, arena, (const char *)data, size, err, sizeof err);
    int rc2 = mdw_event_parse(&ev2, (const char *)data, size, err2, sizeof err2);
    /*
    ** The arena parser (Meadow's) and cJSON accept the same inputs and give
    ** the same trees (fuzz_json_arena); only a syntax error's position may
    ** differ, so "malformed JSON near byte N" is compared up to N.
    */
    int syntax = rc && !strncmp(err, "malformed JSON", 14) && !strncmp(err2, "malformed JSON", 14);
    if (rc != rc2 || (rc && !syntax && strcmp(err, err2) != 0))
        abort();
    if (!rc && (ev.kind != ev2.kind || ev.op != ev2.op || ev.time_us != ev2.time_us ||
                strcmp(ev.did, ev2.did) != 0 || (!ev.uri) != (!ev2.uri) ||
                (ev.uri && strcmp(ev.uri, ev2.uri) != 0) || (!ev.record) != (!ev2.record)))
        abort();
    if (!rc) {
        /* The decoder's derived fields, from either tree: the same. */
        mdw_event_prepare(&ev, tagger);
        mdw_event_prepare(&ev2, tagger);
        if (ev.ntags > MDW_MAX_POST_TAGS || ev.ntags != ev2.ntags ||
            memcmp(ev.tags, ev2.tags, sizeof ev.tags) != 0 ||
            memcmp(ev.did_hash, ev2.did_hash, sizeof ev.did_hash) != 0 ||
            (ev.kind == MDW_EV_COMMIT && memcmp(ev.rec_key, ev2.rec_key, sizeof ev.rec_key) != 0) ||
            ev.created_rc != ev2.created_rc ||
            (!ev.created_rc && ev.created_us != ev2.created_us) ||
            ev.rkey_time_rc != ev2.rkey_time_rc ||
            (!ev.rkey_time_rc && ev.rkey_time_us != ev2.rkey_time_us))
            abort();
    }
    mdw_event_release(&ev2);
    if (rc == 0) {
        mdw_rules_result res;
        if (mdw_rules_begin(rules) == 0) {
            if (mdw_rules_apply(rules, &ev, &res) == 0 &&
                (res.outcome < 1 || res.outcome > 4 || !res.reason))
                abort();
            mdw_rules_abort(rules);
        }
    } else if (!err[0]) {
        abort(); /* a decode error always says why */
    }
    mdw_event_release(&ev);
    return 0;
}
