/* attn lens: the logit lens. A run of the model whose one output is, for
 * each layer's residual stream of the main stack (blocks.L.resid), the top k
 * tokens it would predict through the final norm and the unembedding
 * (attn_csv_lens), as CSV: input,layer,pos,rank,token_id,token,logit,prob. */
#include "run.h"

#include <stdlib.h>
#include <string.h>

const char run_lens_usage[] =
    "Usage: attn lens --config PATH [INPUT] [--top-k K] [--last] [--layers LIST] [--out FILE]\n"
    "\n"
    "The logit lens: runs the model as attn run does and reads the residual stream\n"
    "after each layer through the final norm and the unembedding (lm_head), as if\n"
    "the model stopped there. One CSV row per layer, position and rank of the k\n"
    "most likely tokens. The last layer's rows are the model's own predictions.\n"
    "\n"
    "  --config PATH         the model's config file, a folder holding config.json,\n"
    "                        or '-' (standard input); it needs an lm_head\n"
    RUN_INPUT_HELP
    "Output:\n"
    "  --top-k K             the k most likely tokens per layer and position\n"
    "                        (default 5; 1 to vocab_size)\n"
    "  --last                the last position of each input only\n"
    "  --layers LIST         layers, e.g. 0,2-5 (default: all)\n"
    "  --out FILE            the CSV (default: standard output); it appears only\n"
    "                        when complete\n"
    "  --raw-text            token texts as they are (see attn run --help)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: input,layer,pos,rank,token_id,token,logit,prob\n"
    "  layer: the block after which the stream is read; pos: the position whose\n"
    "  stream it is (a decoder's prediction follows it); rank from 1; prob: softmax\n"
    "  over the whole vocabulary; equal logits rank by the lower id.\n"
    "\n"
    "Examples:\n"
    "  attn lens --config models/tiny-decoder --text \"the cat sits on the\" --last --top-k 3\n"
    "  printf 'the cat\\nthe dog\\n' | attn lens --config models/tiny-decoder --top-k 1 --out lens.csv\n"
    "\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";

int cmd_lens(int argc, char **argv) { return run_main(argc, argv, RUN_CMD_LENS); }

attn_status run_lens_check(const run_opts *o, attn_error *err) {
    if (!o->lens_cmd) return ATTN_OK;
    const struct {
        bool given;
        const char *flag;
    } refused[] = {
        {o->maps != NULL, "--maps"},         {o->context != NULL, "--context"},
        {o->predictions != NULL, "--predictions"},
        {o->color != NULL, "--color"},       {o->width != NULL, "--width"},
        {o->full, "--full"},                 {o->dump != NULL, "--dump"},
        {o->format != NULL, "--format"},     {o->list_dumps, "--list-dumps"},
        {o->heatmap != NULL, "--heatmap"},   {o->heatmap_grid, "--heatmap-grid"},
        {o->html != NULL, "--html"},         {o->reduce != NULL, "--reduce"},
        {o->rollout, "--rollout"},           {o->heads != NULL, "--heads"},
        {o->kind != NULL, "--kind"},         {o->stack != NULL, "--stack"},
        {o->from != NULL, "--from"},         {o->to != NULL, "--to"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (refused[i].given)
            return cli_usage(err, "%s is not a flag of attn lens, which writes only its CSV "
                                  "(--out FILE; see attn lens --help)",
                             refused[i].flag);
    if (!*o->lens) return cli_usage(err, "--out: expected a file name or '-', got ''");
    return ATTN_OK;
}

/* The lens output: its file of rows per input, and its writer. */
typedef struct lens_out {
    run_rows rows; /* first */
    attn_csv_lens csv;
} lens_out;

static void lens_release(run_rows *rows) {
    lens_out *s = (lens_out *)rows;
    attn_csv_lens_free(&s->csv);
    free(s);
}

attn_status run_lens_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->lens_cmd) return ATTN_OK;
    const int k = o->top_k ? o->k : 5 < r->cfg->vocab_size ? 5 : r->cfg->vocab_size;
    lens_out *s = calloc(1, sizeof *s);
    if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    s->rows = (run_rows){.f = &s->csv.csv.f, .release = lens_release, .what = "logit lens"};
    attn_status rc = attn_csv_lens_init(&s->csv, NULL, r->model, k, o->last, &r->rc, o->raw_text, err);
    if (rc) {
        lens_release(&s->rows);
        return rc;
    }
    if ((rc = run_rows_open(r, &s->rows, o->lens, err))) return rc;
    attn_csv_lens_header(s->rows.file.f);
    attn_capture c = {attn_csv_lens_wants, attn_csv_lens_emit, &s->csv};
    if ((rc = run_select(r, o, c, &c, err))) return rc;
    return attn_fanout_add(&r->fo, c, err);
}
