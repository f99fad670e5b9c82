/* Named dumps of attn run: --dump PATTERN[,PATTERN...] --out DIR
 * [--format npy|csv|jsonl], and --list-dumps. (Skeleton: issue 11 item 3.) */
#include "run.h"

attn_status run_dump_check(const run_opts *o, attn_error *err) {
    if (o->dump || o->format || o->list_dumps)
        return cli_usage(err, "--dump, --format and --list-dumps are not built yet");
    if (o->out && !o->stats_cmd) return cli_usage(err, "--out needs --dump");
    return ATTN_OK;
}

attn_status run_dump_open(runner *r, const run_opts *o, attn_error *err) {
    (void)r, (void)o, (void)err;
    return ATTN_OK;
}

attn_status run_dump_list(const runner *r, const run_opts *o, attn_error *err) {
    (void)r, (void)o;
    return cli_usage(err, "--list-dumps is not built yet");
}
