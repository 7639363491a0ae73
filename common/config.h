/*
** common/config.h — settings, from common/config_table.h.
**
** mdw_config_load() fills an mdw_config from the table's defaults, then the
** file (`config`), then MEADOW_* environment variables, then --flags taken out
** of argv (the flags it consumed are removed; the rest is left for the
** command). Each setting remembers its source for --print-config. Invalid
** values stop with a message naming the setting, the value and what is
** allowed. The struct is plain data: copy what a module needs at its init.
*/
#ifndef MDW_CONFIG_H
#define MDW_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/config_table.h"

typedef enum { MDW_SRC_DEFAULT, MDW_SRC_FILE, MDW_SRC_ENV, MDW_SRC_FLAG } mdw_config_source;

#define MDW_CFG_FIELD_STR(n)                                  char *n;
#define MDW_CFG_FIELD_INT(n)                                  int64_t n;
#define MDW_CFG_FIELD_BOOL(n)                                 int n;
#define MDW_CFG_FIELD_ENUM(n)                                 char *n;
#define MDW_CFG_FIELD(name, type, def, mn, mx, allowed, help) MDW_CFG_FIELD_##type(name)
#define MDW_CFG_SRC(name, type, def, mn, mx, allowed, help)   mdw_config_source src_##name;

typedef struct mdw_config {
    MDW_SETTINGS(MDW_CFG_FIELD)
    MDW_SETTINGS(MDW_CFG_SRC)
    int print_config; /* --print-config was given */
} mdw_config;

/* Defaults only (no file, env or flags): for tests and library callers. */
void mdw_config_defaults(mdw_config *c);
/*
** Full load. envp may be NULL (then `environ`). *argc/argv are edited in place
** to drop consumed flags. On error writes one line to err and returns
** MDW_ECONFIG.
*/
int mdw_config_load(mdw_config *c, int *argc, char **argv, char **envp, FILE *err);
/* Sets one setting by name from text (as a file line would). */
int mdw_config_set(mdw_config *c, const char *name, const char *value, mdw_config_source src,
                   FILE *err);
void mdw_config_print(const mdw_config *c, FILE *out);
void mdw_config_release(mdw_config *c);
/* service_did, or did:web:<hostname> when empty (caller frees). */
char *mdw_config_service_did(const mdw_config *c);
const char *mdw_config_source_name(mdw_config_source s);

#endif
