#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/mem.h"
#include "common/banned.h"

extern char **environ;

typedef enum { T_STR, T_INT, T_BOOL, T_ENUM } setting_type;

typedef struct setting {
    const char *name;
    setting_type type;
    const char *def;
    int64_t min, max;
    const char *allowed;
    const char *help;
    size_t off;     /* of the value in mdw_config */
    size_t src_off; /* of its source */
} setting;

#define T_OF_STR  T_STR
#define T_OF_INT  T_INT
#define T_OF_BOOL T_BOOL
#define T_OF_ENUM T_ENUM
#define ROW(name, type, def, mn, mx, allowed, help)                                                \
    {#name,                                                                                        \
     T_OF_##type,                                                                                  \
     def,                                                                                          \
     mn,                                                                                           \
     mx,                                                                                           \
     allowed,                                                                                      \
     help,                                                                                         \
     offsetof(mdw_config, name),                                                                   \
     offsetof(mdw_config, src_##name)},

static const setting settings[] = {MDW_SETTINGS(ROW)};
#define NSETTINGS (sizeof settings / sizeof settings[0])

const char *mdw_config_source_name(mdw_config_source s)
{
    static const char *const n[] = {"default", "file", "env", "flag"};
    return n[s];
}

static const setting *find(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *s = settings[i].name;
        if (strlen(s) != len)
            continue;
        size_t j = 0;
        /* '-' on the command line stands for '_'. */
        while (j < len && (name[j] == s[j] || (name[j] == '-' && s[j] == '_')))
            j++;
        if (j == len)
            return &settings[i];
    }
    return NULL;
}

static int enum_ok(const char *allowed, const char *v)
{
    size_t vl = strlen(v);
    const char *p = allowed;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && memcmp(p, v, l) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

static int apply(mdw_config *c, const setting *s, const char *v, mdw_config_source src, FILE *err)
{
    char *base = (char *)c;
    switch (s->type) {
    case T_STR:
    case T_ENUM: {
        if (s->type == T_ENUM && !enum_ok(s->allowed, v)) {
            if (err)
                fprintf(err, "meadow: invalid value for %s: \"%s\" (allowed: %s)\n", s->name, v,
                        s->allowed);
            return MDW_ECONFIG;
        }
        char **slot = (char **)(base + s->off);
        free(*slot);
        *slot = xstrdup(v);
        break;
    }
    case T_INT: {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || errno || *end || isspace((unsigned char)*v) || n < s->min || n > s->max) {
            if (err)
                fprintf(err,
                        "meadow: invalid value for %s: \"%s\" (allowed: an integer from %lld to "
                        "%lld)\n",
                        s->name, v, (long long)s->min, (long long)s->max);
            return MDW_ECONFIG;
        }
        *(int64_t *)(base + s->off) = n;
        break;
    }
    case T_BOOL: {
        int b;
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
            b = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
            b = 0;
        else {
            if (err)
                fprintf(err, "meadow: invalid value for %s: \"%s\" (allowed: true or false)\n",
                        s->name, v);
            return MDW_ECONFIG;
        }
        *(int *)(base + s->off) = b;
        break;
    }
    }
    *(mdw_config_source *)(base + s->src_off) = src;
    return 0;
}

int mdw_config_set(mdw_config *c, const char *name, const char *value, mdw_config_source src,
                   FILE *err)
{
    const setting *s = find(name, strlen(name));
    if (!s) {
        if (err)
            fprintf(err, "meadow: unknown setting \"%s\" (meadow --print-config lists them)\n",
                    name);
        return MDW_ECONFIG;
    }
    return apply(c, s, value, src, err);
}

void mdw_config_defaults(mdw_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++)
        apply(c, &settings[i], settings[i].def, MDW_SRC_DEFAULT, stderr);
}

void mdw_config_release(mdw_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].type == T_STR || settings[i].type == T_ENUM) {
            char **slot = (char **)((char *)c + settings[i].off);
            free(*slot);
            *slot = NULL;
        }
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_file(mdw_config *c, const char *path, int required, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT)
            return 0;
        if (err)
            fprintf(err, "meadow: cannot read config file %s: %s\n", path, strerror(errno));
        return MDW_ECONFIG;
    }
    char line[MDW_MAX_CONFIG_LINE];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            if (err)
                fprintf(err, "meadow: %s:%d: line longer than %d bytes\n", path, lineno,
                        MDW_MAX_CONFIG_LINE);
            rc = MDW_ECONFIG;
            break;
        }
        char *p = trim(line);
        if (!*p || *p == '#' || *p == ';')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            if (err)
                fprintf(err, "meadow: %s:%d: expected key = value\n", path, lineno);
            rc = MDW_ECONFIG;
            break;
        }
        *eq = '\0';
        char *k = trim(p), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        if (!strcmp(k, "config")) {
            if (err)
                fprintf(err, "meadow: %s:%d: config cannot be set from a file\n", path, lineno);
            rc = MDW_ECONFIG;
            break;
        }
        const setting *s = find(k, strlen(k));
        if (!s) {
            if (err)
                fprintf(err, "meadow: %s:%d: unknown setting \"%s\"\n", path, lineno, k);
            rc = MDW_ECONFIG;
            break;
        }
        rc = apply(c, s, v, MDW_SRC_FILE, err);
    }
    fclose(f);
    return rc;
}

/* Looks up MEADOW_<UPPER NAME> in envp. */
static const char *env_get(char **envp, const char *name)
{
    char key[128];
    size_t n = 0;
    const char *prefix = "MEADOW_";
    while (*prefix)
        key[n++] = *prefix++;
    for (const char *p = name; *p && n < sizeof key - 2; p++)
        key[n++] = (char)toupper((unsigned char)*p);
    key[n++] = '=';
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, key, n) == 0)
            return *e + n;
    return NULL;
}

int mdw_config_load(mdw_config *c, int *argc, char **argv, char **envp, FILE *err)
{
    if (!envp)
        envp = environ;
    mdw_config_defaults(c);

    /* Pass 1: take --flags out of argv (stop at "--"); apply them last. */
    int n = *argc, out = 1;
    const char **fk = xcalloc((size_t)n + 1, sizeof *fk);
    const char **fv = xcalloc((size_t)n + 1, sizeof *fv);
    size_t *fl = xcalloc((size_t)n + 1, sizeof *fl);
    int nf = 0, rc = 0;
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (i < n)
                argv[out++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--print-config")) {
            c->print_config = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            argv[out++] = argv[i];
            continue;
        }
        const char *k = a + 2, *eq = strchr(k, '=');
        size_t kl = eq ? (size_t)(eq - k) : strlen(k);
        const setting *s = find(k, kl);
        if (!s) { /* a command's own flag: leave it */
            argv[out++] = argv[i];
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (s->type == T_BOOL && (i + 1 >= n || strncmp(argv[i + 1], "--", 2) == 0)) {
                v = "true";
            } else if (i + 1 >= n) {
                if (err)
                    fprintf(err, "meadow: --%s needs a value\n", s->name);
                rc = MDW_ECONFIG;
                break;
            } else {
                v = argv[++i];
            }
        }
        fk[nf] = s->name;
        fv[nf] = v;
        fl[nf] = strlen(s->name);
        nf++;
    }
    argv[out] = NULL;
    *argc = out;

    /* The file named by flag, else env, else the default (optional). */
    if (rc == 0) {
        const char *path = NULL;
        mdw_config_source src = MDW_SRC_DEFAULT;
        for (int i = 0; i < nf; i++)
            if (!strcmp(fk[i], "config")) {
                path = fv[i];
                src = MDW_SRC_FLAG;
            }
        if (!path && (path = env_get(envp, "config")))
            src = MDW_SRC_ENV;
        if (!path)
            path = c->config;
        char *p = xstrdup(path);
        rc = apply(c, find("config", 6), p, src, err);
        if (rc == 0)
            rc = load_file(c, p, src != MDW_SRC_DEFAULT, err);
        free(p);
    }
    for (size_t i = 0; rc == 0 && i < NSETTINGS; i++) {
        const char *v = env_get(envp, settings[i].name);
        if (v && strcmp(settings[i].name, "config") != 0)
            rc = apply(c, &settings[i], v, MDW_SRC_ENV, err);
    }
    for (int i = 0; rc == 0 && i < nf; i++)
        rc = apply(c, find(fk[i], fl[i]), fv[i], MDW_SRC_FLAG, err);
    if (rc == 0 && c->queue_low_water >= c->queue_high_water) {
        if (err)
            fprintf(err,
                    "meadow: invalid value for queue_low_water: \"%lld\" (allowed: less than "
                    "queue_high_water, %lld)\n",
                    (long long)c->queue_low_water, (long long)c->queue_high_water);
        rc = MDW_ECONFIG;
    }
    if (rc == 0 && c->backoff_min_ms > c->backoff_max_ms) {
        if (err)
            fprintf(err,
                    "meadow: invalid value for backoff_min_ms: \"%lld\" (allowed: at most "
                    "backoff_max_ms, %lld)\n",
                    (long long)c->backoff_min_ms, (long long)c->backoff_max_ms);
        rc = MDW_ECONFIG;
    }
    free(fk);
    free(fv);
    free(fl);
    return rc;
}

void mdw_config_print(const mdw_config *c, FILE *out)
{
    const char *base = (const char *)c;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        mdw_config_source src = *(const mdw_config_source *)(base + s->src_off);
        /* Secrets never reach a setting: passwords come from a file or env. */
        switch (s->type) {
        case T_STR:
        case T_ENUM:
            fprintf(out, "%s = \"%s\"", s->name, *(char *const *)(base + s->off));
            break;
        case T_INT:
            fprintf(out, "%s = %lld", s->name, (long long)*(const int64_t *)(base + s->off));
            break;
        case T_BOOL:
            fprintf(out, "%s = %s", s->name, *(const int *)(base + s->off) ? "true" : "false");
            break;
        }
        fprintf(out, "  # source: %s; %s\n", mdw_config_source_name(src), s->help);
    }
}

char *mdw_config_service_did(const mdw_config *c)
{
    if (c->service_did && *c->service_did)
        return xstrdup(c->service_did);
    return xasprintf("did:web:%s", c->hostname);
}
