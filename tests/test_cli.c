/*
** The command line (cmd/cmd_args.c): every command and subcommand answers
** --help, every option lands in its own slot and nowhere else, unknown options
** are errors that name them, and settings flags and command options coexist.
*/
#include "tests/test.h"

#include <stdarg.h>

#include "cmd/commands.h"
#include "common/config.h"

typedef struct captured {
    char *out, *err;
    size_t outlen, errlen;
    int rc;
    mdw_cmd_args a;
} captured;

static void cap_free(captured *c)
{
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof *c);
}

/* Parses words (argv[0] first) against spec, output and errors captured. */
static void parse_words(const mdw_cmd_spec *spec, char **words, int n, captured *c)
{
    memset(c, 0, sizeof *c);
    char *argv[40];
    for (int i = 0; i < n; i++)
        argv[i] = words[i];
    argv[n] = NULL;
    FILE *out = open_memstream(&c->out, &c->outlen);
    FILE *err = open_memstream(&c->err, &c->errlen);
    c->rc = mdw_cmd_parse_to(spec, n, argv, &c->a, out, err);
    fclose(out);
    fclose(err);
}

static void parse(const mdw_cmd_spec *spec, captured *c, ...)
{
    char *words[40];
    int n = 0;
    va_list ap;
    va_start(ap, c);
    for (char *w; (w = va_arg(ap, char *)) != NULL && n < 39;)
        words[n++] = w;
    va_end(ap);
    parse_words(spec, words, n, c);
}

static const mdw_cmd_spec *sub_named(const mdw_cmd_spec *s, const char *name)
{
    for (const mdw_cmd_spec *const *c = s->subs; c && *c; c++) {
        const char *sp = strrchr((*c)->path, ' ');
        if (!strcmp(sp ? sp + 1 : (*c)->path, name))
            return *c;
    }
    return NULL;
}

static int opt_index(const mdw_cmd_spec *s, const char *name)
{
    for (int i = 0; i < MDW_CMD_MAX_OPTS; i++)
        if (s->opts[i].name && !strcmp(s->opts[i].name, name))
            return i;
    return -1;
}

/* The words of a spec's path (split in place of a copy) after its top-level command. */
static int path_words(const mdw_cmd_spec *s, char *buf, size_t len, char **words)
{
    snprintf(buf, len, "%s", s->path);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    return n;
}

typedef int (*leaf_check)(const mdw_cmd_spec *top, const mdw_cmd_spec *s, char *why, size_t n);

/* Calls check on every spec below top (parents included); 0 or the first failure. */
static int walk(const mdw_cmd_spec *top, const mdw_cmd_spec *s, leaf_check check, char *why,
                size_t n)
{
    int rc = check(top, s, why, n);
    for (const mdw_cmd_spec *const *c = s->subs; !rc && c && *c; c++)
        rc = walk(top, *c, check, why, n);
    return rc;
}

static int walk_all(leaf_check check, char *why, size_t n)
{
    for (const mdw_cmd_spec *const *c = mdw_cmd_root.subs; *c; c++) {
        int rc = walk(*c, *c, check, why, n);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_help(const mdw_cmd_spec *top, const mdw_cmd_spec *s, char *why, size_t n)
{
    static const char *const flags[] = {"--help", "-h"};
    for (int f = 0; f < 2; f++) {
        char buf[128], *words[40];
        int k = path_words(s, buf, sizeof buf, words);
        words[k++] = (char *)flags[f];
        captured c;
        parse_words(top, words, k, &c);
        char want[160];
        snprintf(want, sizeof want, "usage: meadow %s", s->path);
        int ok =
            c.rc == 1 && c.a.status == 0 && c.out && strstr(c.out, want) && (!c.err || !c.err[0]);
        if (!ok)
            snprintf(why, n, "meadow %s %s: rc %d status %d out \"%s\"", s->path, flags[f], c.rc,
                     c.a.status, c.out ? c.out : "");
        cap_free(&c);
        if (!ok)
            return 1;
    }
    return 0;
}

TEST(every_command_and_subcommand_answers_help)
{
    char why[1024] = "";
    ASSERT_MSG(walk_all(check_help, why, sizeof why) == 0, "%s", why);
}

static int check_unknown(const mdw_cmd_spec *top, const mdw_cmd_spec *s, char *why, size_t n)
{
    static const char *const bad[] = {"--no-such-option", "--no-such-option=1", "-Z"};
    for (int b = 0; b < 3; b++) {
        char buf[128], *words[40];
        int k = path_words(s, buf, sizeof buf, words);
        for (int i = 0; !s->subs && i < s->min_pos; i++)
            words[k++] = "arg";
        words[k++] = (char *)bad[b];
        words[k++] = "value";
        captured c;
        parse_words(top, words, k, &c);
        char want[80];
        snprintf(want, sizeof want, "unknown option %s", b == 2 ? "-Z" : "--no-such-option");
        int set = 0;
        for (int i = 0; i < MDW_CMD_MAX_OPTS; i++)
            set |= c.a.opt[i] != NULL;
        int ok = c.rc == 1 && c.a.status == 2 && c.err && strstr(c.err, want) &&
                 strstr(c.err, "usage: meadow ") && !set && (!c.out || !c.out[0]);
        if (!ok)
            snprintf(why, n, "meadow %s %s: rc %d status %d err \"%s\"", s->path, bad[b], c.rc,
                     c.a.status, c.err ? c.err : "");
        cap_free(&c);
        if (!ok)
            return 1;
    }
    return 0;
}

TEST(unknown_options_exit_2_and_are_named_everywhere)
{
    char why[2048] = "";
    ASSERT_MSG(walk_all(check_unknown, why, sizeof why) == 0, "%s", why);
}

/* Each option, given alone, fills its own slot and no other. */
static int check_slots(const mdw_cmd_spec *top, const mdw_cmd_spec *s, char *why, size_t n)
{
    for (int i = 0; !s->subs && i < MDW_CMD_MAX_OPTS; i++) {
        if (!s->opts[i].name)
            continue;
        char buf[128], *words[40], opt[64];
        int k = path_words(s, buf, sizeof buf, words);
        for (int p = 0; p < s->min_pos; p++)
            words[k++] = "arg";
        snprintf(opt, sizeof opt, "--%s", s->opts[i].name);
        words[k++] = opt;
        if (s->opts[i].value)
            words[k++] = "VALUE";
        captured c;
        parse_words(top, words, k, &c);
        int ok = c.rc == 0 && c.a.spec == s && c.a.opt[i] &&
                 !strcmp(c.a.opt[i], s->opts[i].value ? "VALUE" : "");
        for (int j = 0; j < MDW_CMD_MAX_OPTS; j++)
            if (j != i && c.a.opt[j])
                ok = 0;
        if (!ok)
            snprintf(why, n, "meadow %s %s: rc %d err \"%s\"", s->path, opt, c.rc,
                     c.err ? c.err : "");
        cap_free(&c);
        if (!ok)
            return 1;
    }
    return 0;
}

TEST(every_option_fills_its_own_slot_only)
{
    char why[1024] = "";
    ASSERT_MSG(walk_all(check_slots, why, sizeof why) == 0, "%s", why);
}

/* The bug the hand parser had: an option it did not map went to --cid. */
TEST(moderate_hide_unknown_option_is_never_the_cid)
{
    const mdw_cmd_spec *hide = sub_named(&mdw_cmd_moderate_spec, "hide");
    ASSERT(hide);
    int cid = opt_index(hide, "cid"), com = opt_index(hide, "community");
    ASSERT(cid >= 0 && com >= 0);
    captured c;
    parse(&mdw_cmd_moderate_spec, &c, "moderate", "hide", "at://did:plc:a/app.bsky.feed.post/1",
          "--community", "#atr_0123abcd", "--display-name", "X", NULL);
    ASSERT_EQ(c.rc, 1);
    ASSERT_EQ(c.a.status, 2);
    ASSERT(c.a.opt[cid] == NULL);
    ASSERT_CONTAINS(c.err, "unknown option --display-name");
    cap_free(&c);

    parse(&mdw_cmd_moderate_spec, &c, "moderate", "hide", "--cid=bafyX", "--community", "C",
          "at://did:plc:a/app.bsky.feed.post/1", NULL);
    ASSERT_EQ(c.rc, 0);
    ASSERT_STREQ(c.a.opt[cid], "bafyX");
    ASSERT_STREQ(c.a.opt[com], "C");
    ASSERT_EQ(c.a.npos, 1);
    ASSERT_STREQ(c.a.pos[0], "at://did:plc:a/app.bsky.feed.post/1");
    cap_free(&c);

    /* block takes no --cid: it is unknown there, not stored. */
    const mdw_cmd_spec *block = sub_named(&mdw_cmd_moderate_spec, "block");
    ASSERT(block && opt_index(block, "cid") < 0);
    parse(&mdw_cmd_moderate_spec, &c, "moderate", "block", "alice.test", "--community", "C",
          "--cid", "bafyX", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "unknown option --cid");
    for (int i = 0; i < MDW_CMD_MAX_OPTS; i++)
        ASSERT(i == opt_index(block, "community") || c.a.opt[i] == NULL);
    cap_free(&c);
}

TEST(option_errors_name_the_option)
{
    captured c;
    parse(&mdw_cmd_feed_spec, &c, "feed", "publish", "#atr_0123abcd", "--display-name", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "meadow feed publish: option --display-name needs a value");
    cap_free(&c);

    parse(&mdw_cmd_rebuild_spec, &c, "rebuild", "--events=yes", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "option --events takes no value");
    cap_free(&c);

    parse(&mdw_cmd_community_spec, &c, "community", "join", "a", "b", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "unexpected argument \"b\"");
    cap_free(&c);

    parse(&mdw_cmd_community_spec, &c, "community", "leave", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "missing argument");
    cap_free(&c);

    parse(&mdw_cmd_queue_spec, &c, "queue", "dead", "frob", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "meadow queue dead: unknown subcommand \"frob\"");
    ASSERT_CONTAINS(c.err, "usage: meadow queue dead list");
    cap_free(&c);

    parse(&mdw_cmd_queue_spec, &c, "queue", NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "missing subcommand");
    cap_free(&c);

    /* The password is never an option, whatever its spelling. */
    parse(&mdw_cmd_community_spec, &c, "community", "create", "--name", "N", "--app-password", "x",
          NULL);
    ASSERT_EQ(c.a.status, 2);
    ASSERT_CONTAINS(c.err, "never taken from the command line");
    cap_free(&c);
}

TEST(options_take_both_spellings_and_any_position)
{
    const mdw_cmd_spec *pub = sub_named(&mdw_cmd_feed_spec, "publish");
    int dn = opt_index(pub, "display-name"), de = opt_index(pub, "description");
    captured c;
    parse(&mdw_cmd_feed_spec, &c, "feed", "publish", "--display_name", "A", "#atr_0123abcd",
          "--description=B", NULL);
    ASSERT_EQ(c.rc, 0);
    ASSERT_STREQ(c.a.opt[dn], "A");
    ASSERT_STREQ(c.a.opt[de], "B");
    ASSERT_STREQ(c.a.pos[0], "#atr_0123abcd");
    cap_free(&c);

    /* "--" ends the options: what follows is positional. */
    parse(&mdw_cmd_lexicon_spec, &c, "lexicon", "validate", "--", "app.bsky.feed.post", "-", NULL);
    ASSERT_EQ(c.rc, 0);
    ASSERT_EQ(c.a.npos, 2);
    ASSERT_STREQ(c.a.pos[1], "-");
    cap_free(&c);
}

/* Parsing twice in a row starts over (getopt's state is global). */
TEST(parses_are_independent)
{
    captured c;
    parse(&mdw_cmd_rebuild_spec, &c, "rebuild", "--bogus", NULL);
    ASSERT_EQ(c.a.status, 2);
    cap_free(&c);
    parse(&mdw_cmd_rebuild_spec, &c, "rebuild", "--relay", "--from", "http://x", NULL);
    ASSERT_EQ(c.rc, 0);
    ASSERT_STREQ(c.a.opt[opt_index(&mdw_cmd_rebuild_spec, "from")], "http://x");
    ASSERT(c.a.opt[opt_index(&mdw_cmd_rebuild_spec, "relay")] != NULL);
    cap_free(&c);
}

/*
** Settings are taken out of argv first (mdw_config_load); a command option
** must therefore never share a setting's name, or the settings layer would
** eat it.
*/
static int check_not_setting(const mdw_cmd_spec *top, const mdw_cmd_spec *s, char *why, size_t n)
{
    for (int i = 0; !s->subs && i < MDW_CMD_MAX_OPTS; i++) {
        if (!s->opts[i].name)
            continue;
        char opt[64];
        snprintf(opt, sizeof opt, "--%s", s->opts[i].name);
        char *argv[] = {"meadow", "--config", "/dev/null", opt, "v", NULL};
        int argc = 5;
        char *noenv[] = {NULL};
        mdw_config cfg;
        int rc = mdw_config_load(&cfg, &argc, argv, noenv, NULL);
        mdw_config_release(&cfg);
        if (rc != 0 || argc != 3) {
            snprintf(why, n, "meadow %s %s is also a setting", s->path, opt);
            return 1;
        }
    }
    return 0;
}

TEST(no_command_option_is_a_setting)
{
    char why[256] = "";
    ASSERT_MSG(walk_all(check_not_setting, why, sizeof why) == 0, "%s", why);
}

TEST(settings_and_command_options_coexist)
{
    char *argv[] = {"meadow",      "--config", "/dev/null", "moderate",
                    "--port",      "4001",     "hide",      "--community",
                    "#atr_0123ab", "--data",   "/tmp/dd",   "at://did:plc:a/app.bsky.feed.post/1",
                    NULL};
    int argc = 12;
    char *noenv[] = {NULL};
    mdw_config cfg;
    ASSERT_OK(mdw_config_load(&cfg, &argc, argv, noenv, NULL));
    ASSERT_EQ(cfg.port, 4001);
    ASSERT_STREQ(cfg.data, "/tmp/dd");
    ASSERT_EQ(argc, 6);
    captured c;
    parse_words(&mdw_cmd_moderate_spec, argv + 1, argc - 1, &c);
    mdw_config_release(&cfg);
    ASSERT_EQ(c.rc, 0);
    ASSERT_STREQ(c.a.opt[opt_index(c.a.spec, "community")], "#atr_0123ab");
    ASSERT_EQ(c.a.npos, 1);
    cap_free(&c);
}

int main(void)
{
    RUN(every_command_and_subcommand_answers_help);
    RUN(unknown_options_exit_2_and_are_named_everywhere);
    RUN(every_option_fills_its_own_slot_only);
    RUN(moderate_hide_unknown_option_is_never_the_cid);
    RUN(option_errors_name_the_option);
    RUN(options_take_both_spellings_and_any_position);
    RUN(parses_are_independent);
    RUN(no_command_option_is_a_setting);
    RUN(settings_and_command_options_coexist);
    return TEST_REPORT();
}
