/*
** main.c — `meadow <command>`: loads the settings (file < env < flags: the
** --<setting> flags are taken out of argv here) and runs one command of the
** table in cmd/cmd_main.c, which parses the command's own options.
*/
#include <stdio.h>

#include "cmd/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "common/banned.h"

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
    } else {
        rc = mdw_cmd_main(&cfg, argc, argv);
    }
    mdw_config_release(&cfg);
    return rc;
}
