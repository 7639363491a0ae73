#include "cmd/commands.h"
#include "common/banned.h"

int mdw_cmd_community(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow community");
}

int mdw_cmd_moderate(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow moderate");
}

int mdw_cmd_feed(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow feed");
}

int mdw_cmd_rebuild(const mdw_config *cfg, int argc, char **argv)
{
    return mdw_cmd_unbuilt("meadow rebuild");
}
