#include "cmd/commands.h"
#include "common/banned.h"

int mdw_cmd_feedgen(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow feedgen");
}
