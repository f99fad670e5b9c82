/* attn import: converts models from other projects into attn's format. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char import_usage[] =
    "Usage: attn import llama2c --checkpoint FILE --tokenizer FILE --out DIR [--force]\n"
    "\n"
    "Converts a llama2.c model (Karpathy's llama2.c: the legacy .bin export or the\n"
    "version-1 \"ak42\" export, float32) and its tokenizer.bin into an attn model:\n"
    "DIR/config.json, DIR/model.safetensors and DIR/tokenizer.bin. Run it with\n"
    "'attn run --config DIR/config.json'.\n"
    "\n"
    "  --checkpoint FILE   the llama2.c checkpoint (e.g. stories260K.bin)\n"
    "  --tokenizer FILE    its llama2.c tokenizer (e.g. tok512.bin); it must have one\n"
    "                      piece per id of the model\n"
    "  --out DIR           the folder to create; it must not exist or be empty\n"
    "  --force             write into an existing folder, replacing the three files\n"
    "                      (other files there are left alone)\n"
    "  -h, --help          show this help\n"
    "\n"
    "The checkpoint's header is checked (positive sizes, n_heads a multiple of\n"
    "n_kv_heads, dim a multiple of n_heads) and the file's size must be exactly\n"
    "what the header implies (legacy files include the two rope tables). The files\n"
    "appear only when the whole import succeeded and the result loads as a model.\n"
    "\n"
    "Examples:\n"
    "  attn import llama2c --checkpoint stories260K.bin --tokenizer tok512.bin --out stories260K\n"
    "  attn info --config stories260K\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static int import_llama2c(int argc, char **argv) {
    const char *checkpoint = NULL, *tokenizer = NULL, *out = NULL;
    bool force = false;
    const cli_flag flags[] = {
        {"checkpoint", .value = &checkpoint},
        {"tokenizer", .value = &tokenizer},
        {"out", .value = &out},
        {"force", .set = &force},
        {NULL},
    };
    bool help = false;
    attn_error err = {0};
    if (cli_parse_flags(argc, argv, "import", flags, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(import_usage);
    if (!checkpoint) return cli_error(EXIT_USAGE, "--checkpoint FILE is required");
    if (!tokenizer) return cli_error(EXIT_USAGE, "--tokenizer FILE is required");
    if (!out) return cli_error(EXIT_USAGE, "--out DIR is required");
    if (attn_import_llama2c(checkpoint, tokenizer, out, force ? ATTN_IMPORT_FORCE : 0, &err))
        return cli_lib_error(&err);
    return EXIT_OK;
}

int cmd_import(int argc, char **argv) {
    if (argc < 2)
        return cli_error(EXIT_USAGE, "import: give a format, e.g. 'attn import llama2c "
                                     "--checkpoint FILE --tokenizer FILE --out DIR'");
    const char *fmt = argv[1];
    if (strcmp(fmt, "-h") == 0 || strcmp(fmt, "--help") == 0) return cli_help(import_usage);
    if (strcmp(fmt, "llama2c") == 0) return import_llama2c(argc - 1, argv + 1);
    return cli_error(EXIT_USAGE, "import: unknown format '%s' (known: llama2c)", fmt);
}
