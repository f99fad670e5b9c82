/* Aggregation of the maps of attn run: --reduce mean|max, --rollout.
 * (Skeleton: issue 11 item 5.) */
#include "run.h"

attn_status run_aggregate_check(const run_opts *o, attn_error *err) {
    if (o->reduce || o->rollout) return cli_usage(err, "--reduce and --rollout are not built yet");
    return ATTN_OK;
}

attn_status run_aggregate_wrap(runner *r, const run_opts *o, attn_capture c, attn_capture *out,
                               attn_error *err) {
    (void)r, (void)o, (void)err;
    *out = c;
    return ATTN_OK;
}
