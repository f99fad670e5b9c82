/* The HTML head view of attn run: --html FILE, one self-contained page of
 * the selected maps of every input (docs/html.md). The page itself is
 * written by the library (attn_html_*, src/write/html.c); this wires it as
 * a map output: page -> aggregation -> selection -> fan-out, with a
 * run_output for each input's labels and end, and the closing at commit. */
#include "run.h"

#include <stdlib.h>
#include <string.h>

typedef struct html_out {
    attn_outfile file;
    attn_html page;
} html_out;

static bool is_stdout(const char *path) { return path && strcmp(path, "-") == 0; }

attn_status run_html_check(const run_opts *o, attn_error *err) {
    if (!o->html) return ATTN_OK;
    if (!o->html[0]) return cli_usage(err, "--html: expected a file name ('-': standard output)");
    const char *const names[] = {"--maps", "--context", "--predictions"};
    const char *const paths[] = {o->maps, o->context, o->predictions};
    for (int i = 0; i < 3; i++)
        if (cli_same_file(o->html, paths[i]))
            return cli_usage(err, "--html names the same file '%s' as %s", o->html, names[i]);
    for (int i = 0; i < 3; i++)
        if (is_stdout(o->html) && is_stdout(paths[i]))
            return cli_usage(err, "--html - and %s - both use standard output: give one a file",
                             names[i]);
    if (is_stdout(o->html) && o->top_k && !o->predictions)
        return cli_usage(err, "--html - and the predictions of --top-k both use standard output: "
                              "give --predictions FILE or --html FILE");
    return ATTN_OK;
}

static attn_status html_begin(void *self, const attn_run_info *run, attn_error *err) {
    (void)run;
    html_out *h = self;
    return attn_html_input_begin(&h->page, err);
}

static attn_status html_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    (void)run;
    html_out *h = self;
    return attn_html_input_end(&h->page, ok, err);
}

static attn_status html_commit(void *self, attn_error *err) {
    html_out *h = self;
    attn_status rc = attn_html_end(&h->page, err);
    if (rc) return rc;
    rc = attn_outfile_commit(&h->file, err);
    if (rc) attn_error_prefix(err, "--html");
    return rc;
}

static void html_abort(void *self) {
    html_out *h = self;
    attn_outfile_abort(&h->file);
    free(h);
}

attn_status run_html_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->html) return ATTN_OK;
    html_out *h = calloc(1, sizeof *h);
    if (!h) return attn_error_set(err, ATTN_ERR_NOMEM, "--html: out of memory");
    attn_status rc = run_add_output(r, (run_output){.self = h,
                                                    .begin = html_begin,
                                                    .end = html_end,
                                                    .commit = html_commit,
                                                    .abort = html_abort},
                                    err);
    if (rc) return rc;
    if ((rc = attn_outfile_open(&h->file, o->html, err)) ||
        (rc = attn_html_begin(&h->page, h->file.f, &r->rc, o->config, err)))
        return rc;
    attn_capture c = {attn_html_wants, attn_html_emit, &h->page};
    if ((rc = run_aggregate_wrap(r, o, c, &c, err)) || (rc = run_select(r, o, c, &c, err)))
        return rc;
    return attn_fanout_add(&r->fo, c, err);
}
