/*
** cmd/cmd_args.c — one option parser for every command (getopt_long).
**
** The settings flags (--<setting> VALUE, common/config_table.h) are taken out
** of argv by mdw_config_load before any command runs; what is left is read
** here against the command's spec. A leaf's options may come before or after
** its positional arguments (GNU permutation); a parent stops at its first
** positional word, the subcommand, and the rest is the subcommand's.
*/
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "common/banned.h"

#define OPT_BASE 256 /* getopt_long value of opts[i]: OPT_BASE + i */

static const char *name_of(const mdw_cmd_spec *s)
{
    const char *sp = strrchr(s->path, ' ');
    return sp ? sp + 1 : s->path;
}

static void leaf_lines(const mdw_cmd_spec *s, FILE *f, int *first)
{
    if (s->subs) {
        for (const mdw_cmd_spec *const *c = s->subs; *c; c++)
            leaf_lines(*c, f, first);
        return;
    }
    fprintf(f, "%s meadow%s%s%s%s\n", *first ? "usage:" : "      ", s->path[0] ? " " : "", s->path,
            s->synopsis && s->synopsis[0] ? " " : "", s->synopsis ? s->synopsis : "");
    *first = 0;
}

void mdw_cmd_usage(const mdw_cmd_spec *s, FILE *f)
{
    int first = 1;
    leaf_lines(s, f, &first);
    if (s->summary)
        fprintf(f, "%s\n", s->summary);
    if (s->subs) {
        fprintf(f, "\nsubcommands:\n");
        for (const mdw_cmd_spec *const *c = s->subs; *c; c++)
            fprintf(f, "  %-10s %s\n", name_of(*c), (*c)->summary);
        return;
    }
    fprintf(f, "\noptions:\n");
    for (int i = 0; i < MDW_CMD_MAX_OPTS; i++) {
        const mdw_cmd_opt *o = &s->opts[i];
        if (!o->name)
            continue;
        char head[64];
        snprintf(head, sizeof head, "%s%c%s--%s%s%s", o->short_name ? "-" : "",
                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : " ", o->name,
                 o->value ? " " : "", o->value ? o->value : "");
        fprintf(f, "  %-26s %s\n", o->short_name ? head : head + 2, o->help ? o->help : "");
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "print this help and exit");
}

static int verror(const mdw_cmd_spec *s, FILE *err, const char *fmt, va_list ap)
{
    fprintf(err, "meadow%s%s: ", s->path[0] ? " " : "", s->path);
    vfprintf(err, fmt, ap);
    fputc('\n', err);
    mdw_cmd_usage(s, err);
    return 2;
}

static int error_to(const mdw_cmd_spec *s, FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int error_to(const mdw_cmd_spec *s, FILE *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(s, err, fmt, ap);
    va_end(ap);
    return rc;
}

int mdw_cmd_usage_error(const mdw_cmd_spec *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(s, stderr, fmt, ap);
    va_end(ap);
    return rc;
}

/* The option as typed, without "=value": "--bogus", "-x". */
static void typed(char *argv_item, int shortc, char out[64])
{
    if (shortc) {
        snprintf(out, 64, "-%c", shortc);
        return;
    }
    const char *eq = argv_item ? strchr(argv_item, '=') : NULL;
    int n = argv_item ? (eq ? (int)(eq - argv_item) : (int)strlen(argv_item)) : 0;
    snprintf(out, 64, "%.*s", n > 60 ? 60 : n, argv_item ? argv_item : "?");
}

static int add_pos(const mdw_cmd_spec *s, mdw_cmd_args *a, const char *arg, FILE *err)
{
    if (a->npos == s->max_pos || a->npos == MDW_CMD_MAX_POS) {
        a->status = error_to(s, err, "unexpected argument \"%s\"", arg);
        return 1;
    }
    a->pos[a->npos++] = arg;
    return 0;
}

int mdw_cmd_parse_to(const mdw_cmd_spec *s, int argc, char **argv, mdw_cmd_args *a, FILE *out,
                     FILE *err)
{
    memset(a, 0, sizeof *a);
    a->spec = s;
    /* Each option twice when its name has a '-': "display-name" and "display_name". */
    struct option lo[2 * MDW_CMD_MAX_OPTS + 2];
    char alias[MDW_CMD_MAX_OPTS][32];
    char shorts[3 * MDW_CMD_MAX_OPTS + 8];
    int nl = 0, ns = 0;
    /*
    ** A parent stops at its subcommand ('+'); a leaf takes its arguments in
    ** order as they come ('-': returned as 1), so options may follow them
    ** even under POSIXLY_CORRECT.
    */
    shorts[ns++] = s->subs ? '+' : '-';
    shorts[ns++] = ':'; /* a missing value returns ':' */
    shorts[ns++] = 'h';
    for (int i = 0; !s->subs && i < MDW_CMD_MAX_OPTS; i++) {
        const mdw_cmd_opt *o = &s->opts[i];
        if (!o->name)
            continue;
        int has = o->value ? required_argument : no_argument;
        lo[nl++] = (struct option){o->name, has, NULL, OPT_BASE + i};
        if (strchr(o->name, '-') && strlen(o->name) < sizeof alias[i]) {
            snprintf(alias[i], sizeof alias[i], "%s", o->name);
            for (char *p = alias[i]; *p; p++)
                if (*p == '-')
                    *p = '_';
            lo[nl++] = (struct option){alias[i], has, NULL, OPT_BASE + i};
        }
        if (o->short_name) {
            shorts[ns++] = o->short_name;
            if (o->value)
                shorts[ns++] = ':';
        }
    }
    lo[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nl] = (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';

    optind = 0; /* glibc: start over (argv differs from the last call) */
    opterr = 0; /* the messages below name the command */
    int c;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (c == 1) {
            if (add_pos(s, a, optarg, err))
                return 1;
            continue;
        }
        if (c == 'h') {
            mdw_cmd_usage(s, out);
            a->status = 0;
            return 1;
        }
        int idx = -1;
        if (c >= OPT_BASE)
            idx = c - OPT_BASE;
        else
            for (int i = 0; c != '?' && c != ':' && i < MDW_CMD_MAX_OPTS; i++)
                if (s->opts[i].name && s->opts[i].short_name == c)
                    idx = i;
        if (idx >= 0) {
            a->opt[idx] = s->opts[idx].value ? optarg : "";
            continue;
        }
        char t[64];
        if (c == ':') {
            if (optopt >= OPT_BASE)
                snprintf(t, sizeof t, "--%s", s->opts[optopt - OPT_BASE].name);
            else
                typed(NULL, optopt, t);
            a->status = error_to(s, err, "option %s needs a value", t);
            return 1;
        }
        /* '?': unknown, ambiguous, or a value given to a flag. */
        if (optopt >= OPT_BASE) {
            a->status =
                error_to(s, err, "option --%s takes no value", s->opts[optopt - OPT_BASE].name);
            return 1;
        }
        typed(optopt ? NULL : argv[optind - 1], optopt, t);
        if (strstr(t, "password"))
            a->status = error_to(s, err,
                                 "the app password is never taken from the command line: set "
                                 "MEADOW_APP_PASSWORD or app_password_file");
        else
            a->status = error_to(s, err, "unknown option %s", t);
        return 1;
    }
    if (s->subs) {
        if (optind >= argc) {
            a->status = error_to(s, err, "missing subcommand");
            return 1;
        }
        for (const mdw_cmd_spec *const *sub = s->subs; *sub; sub++)
            if (!strcmp(argv[optind], name_of(*sub)))
                return mdw_cmd_parse_to(*sub, argc - optind, argv + optind, a, out, err);
        a->status = error_to(s, err, "unknown subcommand \"%s\"", argv[optind]);
        return 1;
    }
    for (int i = optind; i < argc; i++) /* after "--" */
        if (add_pos(s, a, argv[i], err))
            return 1;
    if (a->npos < s->min_pos) {
        a->status = error_to(s, err, "missing argument");
        return 1;
    }
    return 0;
}

int mdw_cmd_parse(const mdw_cmd_spec *s, int argc, char **argv, mdw_cmd_args *a)
{
    return mdw_cmd_parse_to(s, argc, argv, a, stdout, stderr);
}
