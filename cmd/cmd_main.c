/*
** cmd/cmd_main.c — the command table (`meadow help` lists it in this order),
** `meadow version`, `meadow help [COMMAND ...]`, and the dispatch.
*/
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "common/version.h"
#include "common/banned.h"

static int cmd_version(const mdw_config *cfg, int argc, char **argv);
static int cmd_help(const mdw_config *cfg, int argc, char **argv);

static const mdw_cmd_spec version_spec = {
    .path = "version",
    .summary = "print the version",
    .run = cmd_version,
};

static const mdw_cmd_spec help_spec = {
    .path = "help",
    .summary = "list the commands, or print a command's usage",
    .synopsis = "[COMMAND [SUBCOMMAND ...]]",
    .max_pos = MDW_CMD_MAX_POS,
    .run = cmd_help,
};

static const mdw_cmd_spec *const commands[] = {
    &mdw_cmd_serve_spec,
    &mdw_cmd_firehose_spec,
    &mdw_cmd_process_spec,
    &mdw_cmd_feedgen_spec,
    &mdw_cmd_queue_spec,
    &mdw_cmd_index_spec,
    &mdw_cmd_relay_spec,
    &mdw_cmd_car_spec,
    &mdw_cmd_lexicon_spec,
    &mdw_cmd_community_spec,
    &mdw_cmd_moderate_spec,
    &mdw_cmd_feed_spec,
    &mdw_cmd_rebuild_spec,
    &version_spec,
    &help_spec,
    NULL,
};

const mdw_cmd_spec mdw_cmd_root = {
    .path = "",
    .summary = "an AT Protocol feed generator",
    .subs = commands,
};

static int cmd_version(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&version_spec, argc, argv, &a))
        return a.status;
    printf("meadow %s\n", MDW_VERSION);
    return 0;
}

static void root_usage(FILE *f)
{
    fprintf(f, "usage: meadow [--setting value ...] [--print-config] <command> [args]\n"
               "       meadow <command> --help\n\ncommands:\n");
    for (const mdw_cmd_spec *const *c = commands; *c; c++)
        fprintf(f, "  %-10s %s\n", (*c)->path, (*c)->summary);
    fprintf(f, "\nsettings come from meadow.conf, MEADOW_<NAME> and --<name> anywhere on the "
               "command line;\nmeadow --print-config lists them\n");
}

static int cmd_help(const mdw_config *cfg, int argc, char **argv)
{
    mdw_cmd_args a;
    if (mdw_cmd_parse(&help_spec, argc, argv, &a))
        return a.status;
    if (a.npos == 0) {
        root_usage(stdout);
        return 0;
    }
    const mdw_cmd_spec *s = &mdw_cmd_root;
    for (int i = 0; i < a.npos; i++) {
        const mdw_cmd_spec *next = NULL;
        for (const mdw_cmd_spec *const *c = s->subs; c && *c; c++) {
            const char *sp = strrchr((*c)->path, ' ');
            if (!strcmp(sp ? sp + 1 : (*c)->path, a.pos[i]))
                next = *c;
        }
        if (!next)
            return mdw_cmd_usage_error(&help_spec, "no command \"%s\" in \"meadow%s%s\"", a.pos[i],
                                       s->path[0] ? " " : "", s->path);
        s = next;
    }
    mdw_cmd_usage(s, stdout);
    return 0;
}

int mdw_cmd_main(const mdw_config *cfg, int argc, char **argv)
{
    if (argc < 2) {
        root_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        root_usage(stdout);
        return 0;
    }
    if (name[0] == '-' && name[1]) {
        fprintf(stderr,
                "meadow: unknown option %s (not a setting: meadow --print-config lists "
                "them)\n",
                name);
        root_usage(stderr);
        return 2;
    }
    for (const mdw_cmd_spec *const *c = commands; *c; c++)
        if (!strcmp(name, (*c)->path))
            return (*c)->run(cfg, argc - 1, argv + 1);
    fprintf(stderr, "meadow: unknown command \"%s\" (meadow help lists them)\n", name);
    return 2;
}
