/* attn generate: being written */
#include "cli/cli.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAIL, "generate: not yet available");
}
