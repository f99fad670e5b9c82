/* attn stats: one CSV row of statistics per input, stack, layer, kind and
 * head. (Skeleton: issue 11 item 5.) */
#include "run.h"

const char run_stats_usage[] = "Usage: attn stats --config PATH [INPUT] [--out FILE]\n";

int cmd_stats(int argc, char **argv) { return run_main(argc, argv, true); }

attn_status run_stats_check(const run_opts *o, attn_error *err) {
    if (o->stats_cmd) return cli_usage(err, "attn stats is not built yet");
    return ATTN_OK;
}

attn_status run_stats_open(runner *r, const run_opts *o, attn_error *err) {
    (void)r, (void)o, (void)err;
    return ATTN_OK;
}
