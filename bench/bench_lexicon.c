/*
** bench/bench_lexicon.c — records validated per second, beside a bare
** cJSON parse of the same records in the same run (the processor parses
** every candidate anyway, so the ratio says what validation adds). Three
** typical records (membership, moderation action, a config with moderators
** and a multi-byte name that needs grapheme counting), 300,000 of each.
*/
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "bench/bench.h"
#include "lexicon/lexicon.h"

#define N 300000

static const struct {
    const char *nsid, *json;
} recs[] = {
    {"net.atrarium.community.membership",
     "{\"$type\":\"net.atrarium.community.membership\",\"community\":\"at://"
     "did:plc:ewvi7nxzyoun6zhxrhs64oiz/net.atrarium.community.config/3kfwpqaijmk2c\","
     "\"role\":\"member\",\"joinedAt\":\"2024-05-01T12:00:00.000Z\",\"active\":true}"},
    {"net.atrarium.moderation.action",
     "{\"$type\":\"net.atrarium.moderation.action\",\"action\":\"hide_post\",\"target\":{\"$type\":"
     "\"net.atrarium.moderation.action#postTarget\",\"uri\":\"at://"
     "did:plc:ewvi7nxzyoun6zhxrhs64oiz/"
     "app.bsky.feed.post/3kfwpqaijmk2d\",\"cid\":"
     "\"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm\"},\"community\":\"at://"
     "did:plc:ewvi7nxzyoun6zhxrhs64oiz/net.atrarium.community.config/3kfwpqaijmk2c\","
     "\"reason\":\"spam\",\"createdAt\":\"2024-05-01T12:00:00.000Z\"}"},
    {"net.atrarium.community.config",
     "{\"$type\":\"net.atrarium.community.config\",\"name\":\"Jardin partag\xc3\xa9 "
     "\xf0\x9f\x8c\xb1 "
     "des voisins du quartier nord, pour \xc3\xa9"
     "changer graines et conseils\",\"hashtag\":"
     "\"#atr_0123abcd\",\"stage\":\"community\",\"moderators\":[\"did:plc:"
     "aaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb\"],\"feedMix\":{\"own\":60,\"parent\":30,\"global\":10},"
     "\"createdAt\":\"2024-05-01T12:00:00.000Z\"}"},
};

int main(void)
{
    mdw_lexicon *lex;
    if (mdw_lexicon_load_builtin(&lex))
        return 1;
    size_t nrec = sizeof recs / sizeof recs[0];
    /* baseline: parse + free */
    double t0 = bench_now();
    for (int i = 0; i < N; i++)
        for (size_t r = 0; r < nrec; r++)
            cJSON_Delete(cJSON_Parse(recs[r].json));
    double parse_s = bench_now() - t0;
    /* parse + validate + application rules */
    char err[256];
    long invalid = 0;
    t0 = bench_now();
    for (int i = 0; i < N; i++)
        for (size_t r = 0; r < nrec; r++) {
            cJSON *j = cJSON_Parse(recs[r].json);
            invalid += mdw_lexicon_validate_record(lex, recs[r].nsid, j, err, sizeof err) != 0;
            invalid += mdw_lexicon_app_check(recs[r].nsid, j, err, sizeof err) != 0;
            cJSON_Delete(j);
        }
    double full_s = bench_now() - t0;
    /* validation alone, on parsed records */
    cJSON *parsed[3];
    for (size_t r = 0; r < nrec; r++)
        parsed[r] = cJSON_Parse(recs[r].json);
    t0 = bench_now();
    for (int i = 0; i < N; i++)
        for (size_t r = 0; r < nrec; r++)
            invalid +=
                mdw_lexicon_validate_record(lex, recs[r].nsid, parsed[r], err, sizeof err) != 0;
    double val_s = bench_now() - t0;
    for (size_t r = 0; r < nrec; r++)
        cJSON_Delete(parsed[r]);
    mdw_lexicon_free(lex);
    if (invalid) {
        fprintf(stderr, "bench_lexicon: %ld records refused: %s\n", invalid, err);
        return 1;
    }
    double total = (double)N * (double)nrec;
    bench_report("lexicon parse+validate+app records/s", total / full_s, "rec/s",
                 "cJSON parse records/s", total / parse_s);
    bench_report("lexicon validate (parsed) records/s", total / val_s, "rec/s",
                 "cJSON parse records/s", total / parse_s);
    return 0;
}
