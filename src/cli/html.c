/* The HTML head view of attn run: --html FILE. (Skeleton: issue 11 item 7.) */
#include "run.h"

attn_status run_html_check(const run_opts *o, attn_error *err) {
    if (o->html) return cli_usage(err, "--html is not built yet");
    return ATTN_OK;
}

attn_status run_html_open(runner *r, const run_opts *o, attn_error *err) {
    (void)r, (void)o, (void)err;
    return ATTN_OK;
}
