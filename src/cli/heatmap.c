/* PNG heatmaps of attn run: --heatmap DIR [--heatmap-grid].
 * (Skeleton: issue 11 item 6.) */
#include "run.h"

attn_status run_heatmap_check(const run_opts *o, attn_error *err) {
    if (o->heatmap || o->heatmap_grid) return cli_usage(err, "--heatmap is not built yet");
    return ATTN_OK;
}

attn_status run_heatmap_open(runner *r, const run_opts *o, attn_error *err) {
    (void)r, (void)o, (void)err;
    return ATTN_OK;
}
