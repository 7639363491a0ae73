/*
** cmd/commands.h — the `meadow <command>` table's entry points.
**
** Each command gets the loaded configuration and its remaining arguments
** (argv[0] is the command name; config flags already removed). It returns the
** process exit code. A command whose stage is not built yet prints so and
** returns 2 (mdw_cmd_unbuilt), never a silent success.
*/
#ifndef MDW_COMMANDS_H
#define MDW_COMMANDS_H

#include "common/config.h"

typedef int (*mdw_cmd_fn)(const mdw_config *cfg, int argc, char **argv);

int mdw_cmd_unbuilt(const char *what);

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
