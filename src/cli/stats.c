/* attn stats: one CSV row of statistics per input, stack, layer, kind and
 * head (attn_csv_stats in attn/write.h; docs/aggregation.md). It is a run
 * (run.c) whose one output is the statistics: each input's rows are held
 * in memory and written after the input succeeded, into a file that
 * appears when the run is complete (attn_outfile). */
#include "run.h"

#include <stdlib.h>
#include <string.h>

const char run_stats_usage[] =
    "Usage: attn stats --config PATH [INPUT] [--out FILE] [SELECTION]\n"
    "\n"
    "Runs the model as attn run does and writes one CSV row of statistics per\n"
    "attention map: per input, stack, layer, kind and query head. They tell\n"
    "previous-token, same-token, sink and broad heads apart.\n"
    "\n"
    "  --config PATH         the model's config file, a folder holding config.json,\n"
    "                        or '-' (standard input)\n"
    RUN_INPUT_HELP
    "Output:\n"
    "  --out FILE            the CSV (default: standard output); it appears only\n"
    "                        when complete\n"
    "Selection:\n"
    "  --layers LIST         layers, e.g. 0,2-5 (default: all)\n"
    "  --heads LIST          query heads, e.g. 0,2-5 (default: all)\n"
    "  --stack S             encoder or decoder (an encoder-decoder has both)\n"
    "  --kind K              self or cross\n"
    "  --from P              the means over the queries at P only: a position (-1:\n"
    "                        the last) or a token's text (=3 is the token 3)\n"
    "  --to P                a last column 'to': the weight on the keys at P\n"
    "  --ablate SPEC[,...], --ablate-mode M, --mean-over FILE\n"
    "                        of the model with heads or MLPs knocked out (see\n"
    "                        attn run --help)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: input,stack,layer,kind,head,entropy,sink,distance,prev,self[,to]\n"
    "  Each is the mean over the map's query rows i of its weights w_ij (key j):\n"
    "  entropy   -sum_j w_ij ln w_ij, in nats\n"
    "  sink      w_i0, the weight on position 0 (the attention-sink share)\n"
    "  distance  sum_j w_ij |i - j|, the mean attended distance\n"
    "  prev      w_i,i-1, the weight on the previous token, over the rows i >= 1\n"
    "            (empty for a one-token input)\n"
    "  self      w_ii, the weight on the same token\n"
    "  For cross-attention, j counts positions of the encoder input and i of the\n"
    "  decoder's, compared as numbers (docs/aggregation.md).\n"
    "\n"
    "Examples:\n"
    "  attn stats --config models/tiny-decoder --text \"the cat sits on the mat\"\n"
    "  attn stats --config models/tiny-decoder --layers 1 --heads 0-1 --text \"a cat\"\n"
    "  attn stats --config models/tiny-decoder --text \"the cat sits on the mat\" --from mat --to cat\n"
    "  printf 'the cat\\nthe dog\\n' | attn stats --config models/tiny-decoder --out stats.csv\n"
    "  attn stats --config models/tiny-translator --kind cross --source \"the cat sleeps\" --text \"<s> dine\"\n"
    "\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";

int cmd_stats(int argc, char **argv) { return run_main(argc, argv, RUN_CMD_STATS); }

attn_status run_stats_check(const run_opts *o, attn_error *err) {
    if (!o->stats_cmd) return ATTN_OK;
    const cli_refused refused[] = {
        {o->maps != NULL, "--maps"},         {o->context != NULL, "--context"},
        {o->top_k != NULL, "--top-k"},       {o->predictions != NULL, "--predictions"},
        {o->last, "--last"},                 {o->color != NULL, "--color"},
        {o->width != NULL, "--width"},       {o->full, "--full"},
        {o->format != NULL, "--format"},     {o->list_dumps, "--list-dumps"},
        {o->heatmap != NULL, "--heatmap"},   {o->heatmap_grid, "--heatmap-grid"},
        {o->html != NULL, "--html"},
    };
    attn_status rc = cli_refuse(refused, sizeof refused / sizeof refused[0],
                                "is a flag of attn run: attn stats writes only its statistics "
                                "CSV (--out FILE)",
                                err);
    if (rc) return rc;
    if (!*o->stats) return cli_usage(err, "--out: expected a file name or '-', got ''");
    return ATTN_OK;
}

/* The statistics output: its file of rows per input, and its writer. */
typedef struct stats_out {
    run_rows rows; /* first */
    attn_csv_stats csv;
} stats_out;

static void stats_release(run_rows *rows) { free(rows); }

attn_status run_stats_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->stats_cmd) return ATTN_OK;
    stats_out *s = calloc(1, sizeof *s);
    if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    s->csv = (attn_csv_stats){.run = &r->rc, .raw_text = o->raw_text};
    s->rows = (run_rows){.f = &s->csv.f, .release = stats_release, .what = "statistics"};
    attn_status rc = run_rows_open(r, &s->rows, o->stats, err);
    if (rc) return rc;
    attn_csv_stats_header(s->rows.file.f, o->to != NULL);
    attn_capture c = {attn_csv_stats_wants, attn_csv_stats_emit, &s->csv};
    if ((rc = run_select(r, o, c, &c, err))) return rc;
    return attn_fanout_add(&r->fo, c, err);
}
