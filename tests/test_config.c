/* Config: precedence default < file < env < flag, and every rejected value. */
#include "tests/test.h"

#include "common/config.h"
#include "common/err.h"

static char conf_path[600];

static void write_conf(const char *dir, const char *text)
{
    snprintf(conf_path, sizeof conf_path, "%s/meadow.conf", dir);
    FILE *f = fopen(conf_path, "w");
    fputs(text, f);
    fclose(f);
}

/* Loads with the given argv (NULL-terminated list) and env; errors to a buffer. */
static int load(mdw_config *c, const char **args, char **env, char *errbuf, size_t errlen,
                int *argc_out, char ***argv_out)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = "meadow";
    for (const char **a = args; a && *a; a++)
        argv[argc++] = (char *)*a;
    argv[argc] = NULL;
    FILE *err = fmemopen(errbuf, errlen, "w");
    static char *noenv[] = {NULL};
    int rc = mdw_config_load(c, &argc, argv, env ? env : noenv, err);
    fclose(err);
    if (argc_out)
        *argc_out = argc;
    if (argv_out)
        *argv_out = argv;
    return rc;
}

TEST(defaults)
{
    mdw_config c;
    char e[512] = "";
    const char *args[] = {"--config", "/nonexistent-but-default-is-optional", NULL};
    ASSERT_EQ(load(&c, args, NULL, e, sizeof e, NULL, NULL), MDW_ECONFIG); /* explicit: required */
    mdw_config_release(&c);
    const char *none[] = {NULL};
    ASSERT_OK(load(&c, none, NULL, e, sizeof e, NULL, NULL));
    ASSERT_STREQ(c.data, "./data");
    ASSERT_EQ(c.port, 3000);
    ASSERT_STREQ(c.log_level, "info");
    ASSERT_EQ(c.src_port, MDW_SRC_DEFAULT);
    char *did = mdw_config_service_did(&c);
    ASSERT_STREQ(did, "did:web:localhost");
    free(did);
    mdw_config_release(&c);
}

TEST(precedence_file_env_flag)
{
    const char *dir = TEST_TMPDIR();
    write_conf(dir, "# comment\nport = 4000\ndata = \"/tmp/from-file\"\nhostname=file.example\n"
                    "log_level = warn\n");
    mdw_config c;
    char e[512] = "";
    char envport[] = "MEADOW_PORT=5000";
    char envhost[] = "MEADOW_HOSTNAME=env.example";
    char *env[] = {envport, envhost, NULL};
    const char *args[] = {"--config", conf_path, "serve", "--port", "6000", "--extra", NULL};
    int argc;
    char **argv;
    ASSERT_OK(load(&c, args, env, e, sizeof e, &argc, &argv));
    ASSERT_EQ(c.port, 6000);
    ASSERT_EQ(c.src_port, MDW_SRC_FLAG);
    ASSERT_STREQ(c.hostname, "env.example");
    ASSERT_EQ(c.src_hostname, MDW_SRC_ENV);
    ASSERT_STREQ(c.data, "/tmp/from-file");
    ASSERT_EQ(c.src_data, MDW_SRC_FILE);
    ASSERT_STREQ(c.log_level, "warn");
    ASSERT_EQ(c.src_rewind_s, MDW_SRC_DEFAULT);
    /* Config flags are consumed; the command and its own flags stay. */
    ASSERT_EQ(argc, 3);
    ASSERT_STREQ(argv[1], "serve");
    ASSERT_STREQ(argv[2], "--extra");
    mdw_config_release(&c);
}

TEST(env_names_the_config_file_and_flags_take_dashes)
{
    const char *dir = TEST_TMPDIR();
    write_conf(dir, "retention_days = 3\n");
    char envc[700];
    snprintf(envc, sizeof envc, "MEADOW_CONFIG=%s", conf_path);
    char *env[] = {envc, NULL};
    mdw_config c;
    char e[512] = "";
    const char *args[] = {"--log-level=debug", "--verify_commits", NULL};
    ASSERT_OK(load(&c, args, env, e, sizeof e, NULL, NULL));
    ASSERT_EQ(c.retention_days, 3);
    ASSERT_STREQ(c.log_level, "debug");
    ASSERT_EQ(c.verify_commits, 1);
    ASSERT_EQ(c.src_config, MDW_SRC_ENV);
    mdw_config_release(&c);
}

/* Each bad value stops start-up with the setting's name, the value and what is allowed. */
TEST(rejects_bad_values)
{
    static const struct {
        const char *flag, *value, *expect;
    } bad[] = {
        {"--port", "0", "invalid value for port: \"0\" (allowed: an integer from 1 to 65535)"},
        {"--port", "70000", "port: \"70000\""},
        {"--port", "12ab", "port: \"12ab\""},
        {"--port", "", "port: \"\""},
        {"--port", " 80", "port: \" 80\""},
        {"--port", "99999999999999999999", "port"},
        {"--log_level", "loud", "log_level: \"loud\" (allowed: debug|info|warn|error|off)"},
        {"--auth", "maybe", "auth: \"maybe\" (allowed: off|optional|required)"},
        {"--source", "carrier-pigeon", "allowed: jetstream|relay|none"},
        {"--verify_commits", "perhaps", "verify_commits: \"perhaps\" (allowed: true or false)"},
        {"--retention_days", "0", "retention_days"},
        {"--rewind_s", "-1", "rewind_s"},
        {"--queue_map_mb", "0", "queue_map_mb"},
        {"--batch_max_events", "1000001", "batch_max_events"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mdw_config c;
        char e[512] = "";
        const char *args[] = {bad[i].flag, bad[i].value, NULL};
        int rc = load(&c, args, NULL, e, sizeof e, NULL, NULL);
        mdw_config_release(&c);
        ASSERT_MSG(rc == MDW_ECONFIG, "%s %s accepted", bad[i].flag, bad[i].value);
        ASSERT_CONTAINS(e, bad[i].expect);
    }
}

TEST(rejects_bad_combinations_and_env)
{
    mdw_config c;
    char e[512] = "";
    const char *args[] = {"--queue_low_water", "10", "--queue_high_water", "5", NULL};
    ASSERT_EQ(load(&c, args, NULL, e, sizeof e, NULL, NULL), MDW_ECONFIG);
    ASSERT_CONTAINS(e, "queue_low_water");
    mdw_config_release(&c);
    char envp[] = "MEADOW_PORT=abc";
    char *env[] = {envp, NULL};
    const char *none[] = {NULL};
    ASSERT_EQ(load(&c, none, env, e, sizeof e, NULL, NULL), MDW_ECONFIG);
    ASSERT_CONTAINS(e, "port: \"abc\"");
    mdw_config_release(&c);
    const char *missing[] = {"--port", NULL};
    ASSERT_EQ(load(&c, missing, NULL, e, sizeof e, NULL, NULL), MDW_ECONFIG);
    ASSERT_CONTAINS(e, "--port needs a value");
    mdw_config_release(&c);
}

TEST(rejects_bad_files)
{
    const char *dir = TEST_TMPDIR();
    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"no_such_setting = 1\n", "unknown setting \"no_such_setting\""},
        {"port 3000\n", "expected key = value"},
        {"port = many\n", "port: \"many\""},
        {"config = other.conf\n", "config cannot be set from a file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_conf(dir, bad[i].text);
        mdw_config c;
        char e[512] = "";
        const char *args[] = {"--config", conf_path, NULL};
        int rc = load(&c, args, NULL, e, sizeof e, NULL, NULL);
        mdw_config_release(&c);
        ASSERT_EQ(rc, MDW_ECONFIG);
        ASSERT_CONTAINS(e, bad[i].expect);
    }
}

TEST(print_config_shows_sources)
{
    mdw_config c;
    char e[512] = "";
    char envh[] = "MEADOW_HOSTNAME=feeds.example";
    char *env[] = {envh, NULL};
    const char *args[] = {"--print-config", "--port", "3111", NULL};
    ASSERT_OK(load(&c, args, env, e, sizeof e, NULL, NULL));
    ASSERT(c.print_config);
    char out[16384] = "";
    FILE *f = fmemopen(out, sizeof out, "w");
    mdw_config_print(&c, f);
    fclose(f);
    ASSERT_CONTAINS(out, "port = 3111  # source: flag");
    ASSERT_CONTAINS(out, "hostname = \"feeds.example\"  # source: env");
    ASSERT_CONTAINS(out, "data = \"./data\"  # source: default");
    mdw_config_release(&c);
}

int main(void)
{
    RUN(defaults);
    RUN(precedence_file_env_flag);
    RUN(env_names_the_config_file_and_flags_take_dashes);
    RUN(rejects_bad_values);
    RUN(rejects_bad_combinations_and_env);
    RUN(rejects_bad_files);
    RUN(print_config_shows_sources);
    return TEST_REPORT();
}
