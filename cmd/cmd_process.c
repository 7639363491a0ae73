#include "cmd/commands.h"
#include "common/banned.h"

int mdw_cmd_process(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow process");
}

int mdw_cmd_index(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow index");
}
