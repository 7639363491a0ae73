/*
** main.c — `meadow <command>`: loads the settings (file < env < flags) and
** runs one command from the table below.
*/
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "common/version.h"
#include "common/banned.h"

static int cmd_version(const mdw_config *cfg, int argc, char **argv);
static int cmd_help(const mdw_config *cfg, int argc, char **argv);

static const struct {
    const char *name;
    mdw_cmd_fn fn;
    const char *help;
} commands[] = {
    {"serve", mdw_cmd_serve, "run firehose, processor and feed server in one process"},
    {"firehose", mdw_cmd_firehose, "run ingest alone: source -> lightweight filter -> queue"},
    {"process", mdw_cmd_process, "run the processor alone: queue -> index"},
    {"feedgen", mdw_cmd_feedgen, "serve the XRPC feed endpoints from an existing data directory"},
    {"queue", mdw_cmd_queue, "queue stats | queue dead list|requeue|purge"},
    {"index", mdw_cmd_index, "index stats | index dump [feed-uri] | index backup DIR"},
    {"relay", mdw_cmd_relay, "relay decode FILE: subscribeRepos frames -> Jetstream JSON"},
    {"car", mdw_cmd_car, "car ls FILE | car info FILE"},
    {"lexicon", mdw_cmd_lexicon, "lexicon validate NSID [FILE]: check a record"},
    {"community", mdw_cmd_community, "community create|join|leave"},
    {"moderate", mdw_cmd_moderate, "moderate hide|unhide|block|unblock"},
    {"feed", mdw_cmd_feed, "feed publish COMMUNITY --display-name ..."},
    {"rebuild", mdw_cmd_rebuild, "rebuild the index from PDS records"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this text"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int cmd_version(const mdw_config *cfg, int argc, char **argv)
{
    printf("meadow %s\n", MDW_VERSION);
    return 0;
}

static int cmd_help(const mdw_config *cfg, int argc, char **argv)
{
    printf("usage: meadow [--setting value ...] [--print-config] <command> [args]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\nsettings come from meadow.conf, MEADOW_<NAME> and --<name>; "
           "meadow --print-config lists them\n");
    return 0;
}

int main(int argc, char **argv)
{
    mdw_config cfg;
    if (mdw_config_load(&cfg, &argc, argv, NULL, stderr)) {
        mdw_config_release(&cfg);
        return 2;
    }
    mdw_log_set_level((mdw_log_level)mdw_log_level_parse(cfg.log_level));
    int rc;
    if (cfg.print_config) {
        mdw_config_print(&cfg, stdout);
        rc = 0;
    } else if (argc < 2) {
        cmd_help(&cfg, 0, NULL);
        rc = 2;
    } else {
        rc = -1;
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (!strcmp(argv[1], commands[i].name)) {
                rc = commands[i].fn(&cfg, argc - 1, argv + 1);
                break;
            }
        if (rc == -1) {
            fprintf(stderr, "meadow: unknown command \"%s\" (meadow help lists them)\n", argv[1]);
            rc = 2;
        }
    }
    mdw_config_release(&cfg);
    return rc;
}
