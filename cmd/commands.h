/*
** cmd/commands.h — the `meadow <command>` tree: its entry points, and the
** one option parser every command uses (docs/cli.md).
**
** Each command gets the loaded configuration and its remaining arguments
** (argv[0] is the command name; the --<setting> flags were already taken out
** by mdw_config_load). It returns the process exit code: 0, 1 when the
** operation failed, 2 on a usage error.
**
** Every command and subcommand is described by an mdw_cmd_spec: its path
** ("queue dead purge"), a one-line summary, and either its subcommands or its
** options and positional arguments. mdw_cmd_parse() reads argv against a
** spec with getopt_long, descending into subcommands, and answers --help / -h
** (usage on stdout, exit 0) and usage errors (the message naming the option or
** argument, then the usage, on stderr, exit 2) the same way for every command.
*/
#ifndef MDW_COMMANDS_H
#define MDW_COMMANDS_H

#include <stdio.h>

#include "common/config.h"

typedef int (*mdw_cmd_fn)(const mdw_config *cfg, int argc, char **argv);

#define MDW_CMD_MAX_OPTS 8 /* options of one (sub)command */
#define MDW_CMD_MAX_POS  8 /* positional arguments of one (sub)command */

/* One option: --name (also spelled with '_' for '-') and -short when set. */
typedef struct mdw_cmd_opt {
    const char *name;  /* "display-name"; NULL: no option at this index */
    char short_name;   /* 0: none */
    const char *value; /* the value's name in the usage ("NAME"); NULL: a flag */
    const char *help;
} mdw_cmd_opt;

typedef struct mdw_cmd_spec {
    const char *path;                       /* words after "meadow": "community create" */
    const char *summary;                    /* one line */
    const struct mdw_cmd_spec *const *subs; /* NULL-terminated; NULL for a leaf */
    /* A leaf's syntax: */
    const char *synopsis; /* what follows the path in the usage line */
    mdw_cmd_opt opts[MDW_CMD_MAX_OPTS];
    int min_pos, max_pos;
    mdw_cmd_fn run; /* a top-level command's entry point (the root's table) */
} mdw_cmd_spec;

typedef struct mdw_cmd_args {
    const mdw_cmd_spec *spec;          /* the leaf that was named */
    const char *opt[MDW_CMD_MAX_OPTS]; /* opts[i]'s value; "" for a flag; NULL: absent */
    const char *pos[MDW_CMD_MAX_POS];
    int npos;
    int status; /* when mdw_cmd_parse returned nonzero: the exit status */
} mdw_cmd_args;

/*
** Parses argv (argv[0] = the spec's last word) against spec and its
** subcommands. Returns 0 when the command should run (a->spec is the leaf,
** a->opt / a->pos hold what was given); otherwise it has printed the help (on
** out, a->status 0) or a usage error (on err, a->status 2) and returns 1.
** An unknown option is always an error, never taken for another one.
*/
int mdw_cmd_parse(const mdw_cmd_spec *spec, int argc, char **argv, mdw_cmd_args *a);
int mdw_cmd_parse_to(const mdw_cmd_spec *spec, int argc, char **argv, mdw_cmd_args *a, FILE *out,
                     FILE *err);
/* The usage of a spec (a parent: every leaf below it) and its options or subcommands. */
void mdw_cmd_usage(const mdw_cmd_spec *spec, FILE *f);
/* "meadow <path>: <message>" and the usage on stderr; returns 2. */
int mdw_cmd_usage_error(const mdw_cmd_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The root: every top-level command, in `meadow help` order (cmd/cmd_main.c). */
extern const mdw_cmd_spec mdw_cmd_root;
/* Runs `meadow <argv[1]> ...`; argv[0] is the program. Returns the exit code. */
int mdw_cmd_main(const mdw_config *cfg, int argc, char **argv);

/* Each command's spec and entry point. */
extern const mdw_cmd_spec mdw_cmd_serve_spec, mdw_cmd_firehose_spec, mdw_cmd_process_spec,
    mdw_cmd_feedgen_spec, mdw_cmd_queue_spec, mdw_cmd_index_spec, mdw_cmd_relay_spec,
    mdw_cmd_car_spec, mdw_cmd_lexicon_spec, mdw_cmd_community_spec, mdw_cmd_moderate_spec,
    mdw_cmd_feed_spec, mdw_cmd_rebuild_spec;

int mdw_cmd_serve(const mdw_config *cfg, int argc, char **argv);     /* cmd/cmd_serve.c */
int mdw_cmd_firehose(const mdw_config *cfg, int argc, char **argv);  /* cmd/cmd_firehose.c */
int mdw_cmd_process(const mdw_config *cfg, int argc, char **argv);   /* cmd/cmd_process.c */
int mdw_cmd_index(const mdw_config *cfg, int argc, char **argv);     /* cmd/cmd_process.c */
int mdw_cmd_feedgen(const mdw_config *cfg, int argc, char **argv);   /* cmd/cmd_feedgen.c */
int mdw_cmd_queue(const mdw_config *cfg, int argc, char **argv);     /* cmd/cmd_queue.c */
int mdw_cmd_relay(const mdw_config *cfg, int argc, char **argv);     /* cmd/cmd_relay.c */
int mdw_cmd_car(const mdw_config *cfg, int argc, char **argv);       /* cmd/cmd_relay.c */
int mdw_cmd_lexicon(const mdw_config *cfg, int argc, char **argv);   /* cmd/cmd_lexicon.c */
int mdw_cmd_community(const mdw_config *cfg, int argc, char **argv); /* cmd/cmd_pds.c */
int mdw_cmd_moderate(const mdw_config *cfg, int argc, char **argv);  /* cmd/cmd_pds.c */
int mdw_cmd_feed(const mdw_config *cfg, int argc, char **argv);      /* cmd/cmd_pds.c */
int mdw_cmd_rebuild(const mdw_config *cfg, int argc, char **argv);   /* cmd/cmd_pds.c */

#endif
