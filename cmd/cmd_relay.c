#include "cmd/commands.h"
#include "common/banned.h"

int mdw_cmd_relay(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow relay");
}

int mdw_cmd_car(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow car");
}
