#include <stdio.h>

#include "cmd/commands.h"
#include "common/banned.h"

int mdw_cmd_unbuilt(const char *what)
{
    fprintf(stderr, "meadow: %s is not built yet\n", what);
    return 2;
}
