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
    "  --ablate SPEC[,...], --ablate-mode M, --mean-over FILE\n"
    "                        of the model with heads or MLPs knocked out (see\n"
    "                        attn run --help)\n"
    "Direct logit attribution (pre-norm models):\n"
    "  --attribute TOKEN     instead of the top k: the logit of TOKEN (its text, else\n"
    "                        an id) split into the direct part of the embeddings, each\n"
    "                        head, each o bias, each MLP and the final norm's bias,\n"
    "                        with the final norm's scale frozen (TransformerLens'\n"
    "                        decomposition); the parts sum to the logit (checked)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: input,layer,pos,rank,token_id,token,logit,prob\n"
    "  layer: the block after which the stream is read; pos: the position whose\n"
    "  stream it is (a decoder's prediction follows it); rank from 1; prob: softmax\n"
    "  over the whole vocabulary; equal logits rank by the lower id.\n"
    "With --attribute: input,pos,token_id,token,part,kind,layer,head,logit\n"
    "  part: embed, head, attn_bias, mlp, norm_bias, then total (the model's logit);\n"
    "  kind (self or cross), layer and head are empty where they do not apply.\n"
    "\n"
    "Examples:\n"
    "  attn lens --config models/tiny-decoder --text \"the cat sits on the\" --last --top-k 3\n"
    "  attn lens --config models/tiny-decoder --text \"the cat sits on the\" --last --attribute mat\n"
    "  printf 'the cat\\nthe dog\\n' | attn lens --config models/tiny-decoder --top-k 1 --out lens.csv\n"
    "\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";

int cmd_lens(int argc, char **argv) { return run_main(argc, argv, RUN_CMD_LENS); }

attn_status run_lens_check(const run_opts *o, attn_error *err) {
    if (!o->lens_cmd) {
        if (o->attribute)
            return cli_usage(err, "--attribute is a flag of attn lens (see attn lens --help)");
        return ATTN_OK;
    }
    if (o->attribute && (o->top_k || o->layers))
        return cli_usage(err, "--attribute splits one token's logit into every part: drop %s",
                         o->top_k ? "--top-k" : "--layers");
    const cli_refused refused[] = {
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
    attn_status rc = cli_refuse(refused, sizeof refused / sizeof refused[0],
                                "is not a flag of attn lens, which writes only its CSV (--out "
                                "FILE; see attn lens --help)",
                                err);
    if (rc) return rc;
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

/* The attribution output: the parts of each input, written at its end
 * into the rows of `rows` (registered after this, so still open). */
typedef struct attribute_out {
    attn_attribution *a;
    run_rows *rows;
    const attn_tokenizer *tok;
    int target;
    bool last, raw_text;
} attribute_out;

static attn_status attribute_begin(void *self, const attn_run_info *run, attn_error *err) {
    (void)run;
    (void)err;
    attn_attribution_reset(((attribute_out *)self)->a);
    return ATTN_OK;
}

/* One row: input,pos,token_id,token,part,kind,layer,head,logit. */
static void attribute_row(FILE *f, const attribute_out *s, const attn_run_info *run, int pos,
                          const char *part, const char *kind, int layer, int head, double logit) {
    char num[ATTN_ID_TEXT_MAX];
    attn_csv_input(f, run, s->raw_text);
    fprintf(f, ",%d,%d,", pos, s->target);
    attn_csv_field(f, attn_token_text(s->tok, s->target, num, sizeof num), s->raw_text);
    fprintf(f, ",%s,%s,", part, kind);
    if (layer >= 0) fprintf(f, "%d", layer);
    putc(',', f);
    if (head >= 0) fprintf(f, "%d", head);
    fprintf(f, ",%.9g\n", logit);
}

static attn_status attribute_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    attribute_out *s = self;
    if (!ok) return ATTN_OK;
    attn_status rc = attn_attribution_finish(s->a, err);
    if (rc) return rc;
    static const char *const names[] = {"embed", "head", "attn_bias", "mlp", "norm_bias"};
    const int T = attn_attribution_positions(s->a), t0 = s->last && T > 0 ? T - 1 : 0;
    const int off = attn_attribution_row_offset(s->a);
    FILE *f = s->rows->mem;
    for (int t = t0; t < T; t++) {
        for (size_t i = 0; i < attn_attribution_count(s->a); i++) {
            const attn_attribution_part *p = attn_attribution_at(s->a, i);
            const bool kinded = p->type == ATTN_PART_HEAD || p->type == ATTN_PART_ATTN_BIAS;
            attribute_row(f, s, run, off + t, names[p->type], kinded ? attn_kind_name(p->kind) : "",
                          p->layer, p->head, p->logit[t]);
        }
        attribute_row(f, s, run, off + t, "total", "", -1, -1, attn_attribution_logit(s->a)[t]);
    }
    return ATTN_OK;
}

static void attribute_abort(void *self) {
    attribute_out *s = self;
    attn_attribution_free(s->a);
    free(s);
}

static attn_status attribute_open(runner *r, const run_opts *o, lens_out *lo, attn_error *err) {
    attribute_out *s = calloc(1, sizeof *s);
    if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    *s = (attribute_out){.rows = &lo->rows, .tok = r->tok, .last = o->last, .raw_text = o->raw_text};
    attn_status rc = cli_token_arg(r->tok, r->cfg->vocab_size, "--attribute", o->attribute, &s->target, err);
    if (!rc && (rc = attn_attribution_new(&s->a, r->model, s->target, err)))
        attn_error_prefix(err, "--attribute");
    if (rc) {
        free(s);
        return rc;
    }
    if ((rc = run_add_output(r, (run_output){.self = s, .begin = attribute_begin,
                                             .end = attribute_end, .abort = attribute_abort},
                             err)))
        return rc;
    return attn_fanout_add(&r->fo, attn_attribution_capture(s->a), err);
}

attn_status run_lens_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->lens_cmd) return ATTN_OK;
    if (o->attribute) {
        lens_out *s = calloc(1, sizeof *s);
        if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        s->rows = (run_rows){.f = &s->csv.csv.f, .release = lens_release, .what = "attribution"};
        /* the attribution's end runs before the rows', while this input's rows are open */
        attn_status rc = attribute_open(r, o, s, err);
        if (rc) {
            lens_release(&s->rows);
            return rc;
        }
        if ((rc = run_rows_open(r, &s->rows, o->lens, err))) return rc;
        fputs("input,pos,token_id,token,part,kind,layer,head,logit\n", s->rows.file.f);
        return ATTN_OK;
    }
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
