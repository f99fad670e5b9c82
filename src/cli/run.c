/* attn run: one input from flags, or one input per line of standard input. */
#include "run.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char run_usage[] =
    "Usage: attn run --config PATH [INPUT] [OUTPUTS]\n"
    "\n"
    "Runs the model on one input, or on every line of standard input, and shows\n"
    "the attention weights of every layer and head and the final hidden states.\n"
    "\n"
    "  --config PATH         the model's config file, or a folder holding config.json,\n"
    "                        or '-' (standard input; its relative paths are then from\n"
    "                        the current folder)\n"
    "Input (one of; neither: standard input, one input per line):\n"
    "  --text STRING         text, tokenized by the model's tokenizer\n"
    "  --ids N,N,...         token ids\n"
    "  --ids-input           standard input lines are token ids, not text\n"
    "  --embeddings FILE     vectors instead of tokens: a CSV row of d_model numbers\n"
    "                        per position, or a .npy [T, d_model]; given to the first\n"
    "                        block as they are (labels: the positions); '-' =\n"
    "                        standard input (CSV, or .npy known by its magic bytes)\n"
    "  --no-special          split special tokens of the text (\"<mask>\", every <...>\n"
    "                        of the vocabulary) like other text, not as one token\n"
    "  --special             match the special tokens of a gpt2 tokenizer\n"
    "                        (\"<|endoftext|>\"), which are plain text without it\n"
    "Encoder input of an encoder-decoder model:\n"
    "  --source STRING       source text\n"
    "  --source-ids N,N,...  source token ids\n"
    "  --source-embeddings FILE  source vectors, as --embeddings\n"
    "                        (in batch mode without these, each line is SOURCE<TAB>TARGET)\n"
    "Outputs (neither: a readable view on standard output):\n"
    "  --maps FILE           attention weights as CSV ('-' = standard output)\n"
    "  --context FILE        final hidden states as CSV ('-' = standard output)\n"
    "  --top-k K             the K most likely tokens of each position (models with\n"
    "                        an lm_head; K from 1 to vocab_size): a decoder predicts\n"
    "                        the next token after the position, an encoder the token\n"
    "                        at it (a masked word: --text \"the <mask> rises\")\n"
    "  --last                with --top-k: the last position only\n"
    "  --predictions FILE    with --top-k: the predictions as CSV ('-' = standard output);\n"
    "                        without it they are listed readably on standard output\n"
    "  --raw-text            write the token texts of the CSVs as they are (see below)\n"
    "  --color WHEN          heatmap shading of the view: auto (on a terminal,\n"
    "                        unless NO_COLOR is set or TERM=dumb), always, never\n"
    "                        (default auto)\n"
    "  --width N             line width of the view (default: $COLUMNS, the\n"
    "                        terminal's, or 80; 0: no limit; else 20 to 100000,\n"
    "                        below 40 taken as 40). A map whose keys do not fit\n"
    "                        lists each query's strongest keys and sums the rest\n"
    "                        (\"… N more keys, Σ=S\"); of more than 32 queries the\n"
    "                        first and last 16 are shown\n"
    "  --full                the view shows every weight: maps wider than the line\n"
    "                        in bands of key columns, every query\n"
    ;
/* The rest of run's help (one C string may hold only 4095 bytes). */
static const char run_usage_more[] =
    "Named dumps (docs/dumps.md):\n"
    "  --dump PATTERN[,PATTERN...]  write the values whose names match a shell-style\n"
    "                        pattern ('blocks.*.attn.weights', 'embed', 'logits', ...)\n"
    "  --out DIR             the folder of the dumps (batch mode: one folder per input)\n"
    "  --format F            npy (default: DIR/NAME.npy, heads as the first axis),\n"
    "                        csv (long form: one value per row) or jsonl\n"
    "  --list-dumps          print every name this model has, with its shape, and exit\n"
    "Selection (maps, view, dumps, heatmaps, page):\n"
    "  --layers LIST         layers, e.g. 0,2-5 (default: all)\n"
    "  --heads LIST          query heads, e.g. 0,2-5 (default: all)\n"
    "  --stack S             encoder or decoder (an encoder-decoder has both)\n"
    "  --kind K              self or cross (attention values)\n"
    "  --from P              maps CSV, view, stats: only the queries at P, a position\n"
    "                        (-1: the last) or a token's text (every position holding\n"
    "                        it; =3 is the token 3)\n"
    "  --to P                maps CSV, view: only the keys at P; stats: a column 'to'\n"
    "                        with the weight on them\n"
    "Aggregation (maps, heatmaps):\n"
    "  --reduce R            mean or max over the selected heads of each layer\n"
    "  --rollout             attention rollout across the layers (Abnar & Zuidema 2020)\n"
    "Pictures:\n"
    "  --heatmap DIR         one PNG per selected layer and head\n"
    "  --heatmap-grid        with --heatmap: one PNG per layer, its heads in a grid\n"
    "  --html FILE           a self-contained page to explore the heads (no network)\n"
    "Batches:\n"
    "  --keyed               each line is KEY<TAB>text (or KEY<TAB>SOURCE<TAB>TARGET);\n"
    "                        the input column and dump folders carry KEY\n"
    "  --quiet               no progress on standard error (shown only on a terminal)\n"
    "Speed:\n"
    "  --threads N           threads of the matrix products (default: $ATTN_THREADS,\n"
    "                        else the online cores); the output is the same for any N\n"
    "Interventions (docs/interventions.md):\n"
    "  --ablate SPEC[,...]   knock out heads or MLPs: L.H (head H of layer L), L.*\n"
    "                        (every head), cross:L.H, mlp:L, encoder:L.H ...; every\n"
    "                        output shows the ablated model\n"
    "  --ablate-mode M       zero (default) or mean (each position gets the head's\n"
    "                        mean over the input's positions)\n"
    "  --mean-over FILE      mean mode: the means over every position of FILE's\n"
    "                        inputs (one a line, as on standard input) instead\n"
    "                        of each input's own, from the model without ablation\n"
    "  --target TOKEN        the logit, probability and rank of TOKEN (a piece or\n"
    "                        an id) at each position (--last: the last), listed\n"
    "                        with the predictions; with --ablate, --top-k and\n"
    "                        --target also show the same without the ablation\n"
    "  -h, --help            show this help\n"
    "\n"
    "Maps CSV columns: input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n"
    "  (entries a causal mask sets to 0 are left out: a missing entry means 0)\n"
    "Context CSV columns: input,pos,token,d0,d1,...\n"
    "Predictions CSV columns: input,pos,rank,token_id,token,logit,prob\n"
    "  (pos: the position whose logits these are; a decoder's prediction follows it,\n"
    "  an encoder's is of the token at it; rank from 1; prob: softmax over the whole\n"
    "  vocabulary; equal logits rank by the lower id)\n"
    "Token texts in the CSVs: one record per line. Control bytes are written as\n"
    "  \\n \\t \\r or \\xNN, a backslash as \\\\, and bytes that are not valid UTF-8 as\n"
    "  \\xNN; a field with a comma, a quote or leading/trailing spaces is quoted\n"
    "  (RFC 4180). --raw-text keeps the bytes as they are (quoted when they hold\n"
    "  a line break).\n"
    "Files appear only when complete. When both go to standard output, the maps\n"
    "come first, then a blank line, then the context.\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";
static const char run_usage_examples[] =
    "\n"
    "Examples:\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits on the mat\"\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits\" --maps maps.csv --layers 1 --heads 0\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits\" --dump 'blocks.*.attn.weights' --out dumps\n"
    "  attn run --config models/tiny-decoder --list-dumps\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits\" --maps - --reduce mean\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits on the mat\" --maps - --from -1 --to cat\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits\" --heatmap pictures\n"
    "  attn run --config models/tiny-decoder --text \"The cat sits\" --html heads.html\n"
    "  attn run --config models/tiny-translator --source \"the cat sleeps\" --text \"<s> dine\" --maps - --kind cross\n"
    "  printf 'a\\tthe cat\\nb\\tthe dog\\n' | attn run --config models/tiny-decoder --keyed --maps -\n";

static attn_status parse_flags(int argc, char **argv, run_opts *o, bool *help, attn_error *err) {
    const cli_flag flags[] = {
        {"config", 'c', .value = &o->config},
        {"text", .value = &o->input.text},
        {"ids", .value = &o->input.ids},
        {"ids-input", .set = &o->ids_input},
        {"source", .value = &o->source.text},
        {"source-ids", .value = &o->source.ids},
        {"maps", .value = &o->maps},
        {"context", .value = &o->context},
        {"top-k", .value = &o->top_k},
        {"last", .set = &o->last},
        {"predictions", .value = &o->predictions},
        {"embeddings", .value = &o->input.emb},
        {"source-embeddings", .value = &o->source.emb},
        {"color", .value = &o->color},
        {"width", .value = &o->width},
        {"full", .set = &o->full},
        {"raw-text", .set = &o->raw_text},
        {"no-special", .set = &cli_no_special},
        {"special", .set = &cli_special},
        {"dump", .value = &o->dump},
        {"out", .value = &o->out},
        {"format", .value = &o->format},
        {"list-dumps", .set = &o->list_dumps},
        {"layers", .value = &o->layers},
        {"heads", .value = &o->heads},
        {"stack", .value = &o->stack},
        {"kind", .value = &o->kind},
        {"from", .value = &o->from},
        {"to", .value = &o->to},
        {"reduce", .value = &o->reduce},
        {"rollout", .set = &o->rollout},
        {"heatmap", .value = &o->heatmap},
        {"heatmap-grid", .set = &o->heatmap_grid},
        {"html", .value = &o->html},
        {"keyed", .set = &o->keyed},
        {"quiet", .set = &o->quiet},
        {"threads", .value = &o->threads},
        {"attribute", .value = &o->attribute},
        {"ablate", .value = &o->ablate},
        {"ablate-mode", .value = &o->ablate_mode},
        {"mean-over", .value = &o->mean_over},
        {"target", .value = &o->target},
        {NULL},
    };
    return cli_parse_flags(argc, argv, o->stats_cmd ? "stats" : o->lens_cmd ? "lens" : "run", flags,
                           help, err);
}

/* The outputs a selection applies to (maps, dumps, heatmaps, the page, the
 * statistics, the view): without one of them it would do nothing. */
static bool has_map_output(const run_opts *o) {
    return o->maps || o->dump || o->heatmap || o->html || o->stats || o->lens || o->list_dumps ||
           (!o->context && !o->predictions);
}

/* No output flag: the readable view on standard output. */
static bool wants_view(const run_opts *o) {
    return !o->maps && !o->context && !o->predictions && !o->dump && !o->heatmap && !o->html &&
           !o->stats && !o->lens;
}

/* --from, --to: parsed; they filter the maps CSV, the view and the stats. */
static attn_status check_picks(run_opts *o, attn_error *err) {
    const char *const flags[] = {"--from", "--to"};
    const char *const args[] = {o->from, o->to};
    attn_pick *const picks[] = {&o->from_pick, &o->to_pick};
    for (int i = 0; i < 2; i++) {
        if (!args[i]) continue;
        if (!o->maps && !o->stats && !wants_view(o))
            return cli_usage(err, "%s picks positions of the maps CSV, the view and attn stats: "
                                  "give --maps, or no output flag (the view)",
                             flags[i]);
        attn_status rc = attn_pick_parse(picks[i], args[i], err);
        if (rc) {
            attn_error_prefix(err, "%s", flags[i]);
            return rc;
        }
    }
    return ATTN_OK;
}

/* A token pick must name a token of the vocabulary (checked once the model
 * is open; a model without a tokenizer has only positions). */
static attn_status check_pick_vocabulary(const runner *r, const char *flag, const char *arg,
                                         const attn_pick *p, attn_error *err) {
    if (!arg || !p->text) return ATTN_OK;
    if (!r->tok)
        return cli_usage(err, "%s '%s': the model has no tokenizer; pick a position", flag, arg);
    for (int id = 0; id < attn_tokenizer_size(r->tok); id++)
        if (attn_pick_matches(p, attn_tokenizer_piece(r->tok, id))) return ATTN_OK;
    return cli_usage(err, "%s '%s': no token of the vocabulary is '%s'", flag, arg, p->text);
}

/* A pick (NULL: none) must pick some position of this input: of its
 * labels l or, for an encoder-decoder, of its source's s. */
static attn_status check_pick_input(const char *flag, const attn_pick *p, const attn_labels *l,
                                    const attn_labels *s, attn_error *err) {
    if (!p || attn_pick_count(p, l) + attn_pick_count(p, s) > 0) return ATTN_OK;
    if (p->text)
        return cli_usage(err, "%s '%s': the input has no such token", flag, p->text);
    const size_t n = l->n > (s ? s->n : 0) ? l->n : s->n;
    return cli_usage(err, "%s %ld: position %ld is out of range: the input has positions 0-%zu",
                     flag, p->pos, p->pos, n ? n - 1 : 0);
}

/* Refuses flags that exclude or need each other; parses the values that do
 * not depend on the model. */
static attn_status check_flags(run_opts *o, attn_error *err) {
    const cli_input_args *in = &o->input, *src = &o->source;
    if (!o->config) return cli_usage(err, "--config PATH is required");
    if (cli_check_special(err)) return ATTN_ERR_USAGE;
    if (o->lens_cmd) o->lens = o->out ? o->out : "-";
    attn_status rc = run_lens_check(o, err);
    if (rc) return rc;
    if (in->text && in->ids) return cli_usage(err, "--text and --ids exclude each other");
    if (src->text && src->ids)
        return cli_usage(err, "--source and --source-ids exclude each other");
    if (o->ids_input && (in->text || in->ids))
        return cli_usage(err, "--ids-input reads standard input; drop --text / --ids");
    if (in->emb && (in->text || in->ids || o->ids_input))
        return cli_usage(err, "--embeddings excludes %s",
                         in->text ? "--text" : in->ids ? "--ids" : "--ids-input");
    if (src->emb && (src->text || src->ids))
        return cli_usage(err, "--source-embeddings excludes %s",
                         src->text ? "--source" : "--source-ids");
    o->color_mode = o->color ? out_color_parse(o->color) : OUT_COLOR_AUTO;
    if (o->color_mode < 0)
        return cli_usage(err, "--color: expected auto, always or never, got '%s'", o->color);
    o->cols = -1;
    rc = o->width ? cli_parse_width(o->width, &o->cols, err) : ATTN_OK;
    if (rc) return rc;
    if (cli_same_file(o->maps, o->context))
        return cli_usage(err, "--maps and --context name the same file '%s'", o->maps);
    if (o->raw_text && !o->maps && !o->context && !o->predictions && !o->stats_cmd && !o->lens_cmd)
        return cli_usage(err, "--raw-text needs a CSV output: --maps, --context or --predictions");
    if (!o->top_k && !o->target && !o->lens_cmd && (o->last || o->predictions))
        return cli_usage(err, "%s needs --top-k K or --target TOKEN",
                         o->last ? "--last" : "--predictions");
    if (cli_same_file(o->maps, o->predictions) || cli_same_file(o->context, o->predictions))
        return cli_usage(err, "--predictions names the same file '%s' as %s", o->predictions,
                         cli_same_file(o->maps, o->predictions) ? "--maps" : "--context");
    o->batch = !cli_input_flag(in, false) && !o->list_dumps;
    const char *const stdin_flags[] = {"--config", "--embeddings", "--source-embeddings",
                                       "--mean-over"};
    const char *const stdin_paths[] = {o->config, in->emb, src->emb, o->mean_over};
    rc = cli_check_stdin(stdin_flags, stdin_paths, 4,
                         o->batch ? "--text, --ids or --embeddings FILE" : NULL, err);
    if (rc) return rc;
    if (o->top_k && (rc = cli_parse_int(o->top_k, "--top-k", INT_MIN, INT_MAX, &o->k, err)))
        return rc;
    if ((rc = cli_threads(o->threads, err))) return rc;
    if (o->keyed && !o->batch)
        return cli_usage(err, "--keyed reads keyed lines from standard input; drop %s",
                         cli_input_flag(in, false));
    if ((rc = cli_selection_parse(&o->sel, o->layers, o->heads, o->stack, o->kind, err)))
        return rc;
    if (cli_selection_given(&o->sel) && !has_map_output(o))
        return cli_usage(err, "--layers, --heads, --stack and --kind select maps and dumps: give "
                              "--maps, --dump, --heatmap or --html, or no output flag (the view)");
    if (o->stats_cmd) o->stats = o->out ? o->out : "-";
    if ((rc = check_picks(o, err))) return rc;
    if ((rc = run_intervene_check(o, err)) || (rc = run_dump_check(o, err)) || (rc = run_aggregate_check(o, err)) ||
        (rc = run_heatmap_check(o, err)) || (rc = run_html_check(o, err)) ||
        (rc = run_stats_check(o, err)))
        return rc;
    return ATTN_OK;
}

/* Opens the output files before any work, so that a path that cannot be
 * written (a missing folder, a directory) fails at once; open_outputs
 * writes into them. */
static attn_status open_files(runner *r, const run_opts *o, attn_error *err) {
    attn_status rc = ATTN_OK;
    if (o->maps) rc = attn_outfile_open(&r->maps_out, o->maps, err);
    if (!rc && o->context) rc = attn_outfile_open(&r->ctx_out, o->context, err);
    if (!rc && o->predictions) rc = attn_outfile_open(&r->pred_out, o->predictions, err);
    return rc;
}

/* Opens the model and refuses the flags it cannot serve. */
static attn_status open_model(runner *r, run_opts *o, attn_error *err) {
    const cli_model_needs needs = {
        .who = o->lens_cmd ? "attn lens" : o->top_k ? "--top-k" : "--target",
        .lm_head = o->top_k != NULL || o->target != NULL || o->lens_cmd};
    attn_status rc = cli_model_open(&r->model, o->config, &needs, err);
    if (rc) return rc;
    r->cfg = attn_model_config(r->model);
    r->tok = attn_model_tokenizer(r->model);
    r->rc.cfg = r->cfg;
    r->top_k = o->lens_cmd ? 0 : o->k; /* attn lens: its own top k (lens.c) */
    if (o->top_k && (o->k < 1 || o->k > r->cfg->vocab_size))
        return cli_usage(err, "--top-k: expected an integer from 1 to %d (vocab_size), got %d",
                         r->cfg->vocab_size, o->k);
    if ((rc = cli_selection_check(&o->sel, r->cfg, err)) ||
        (rc = check_pick_vocabulary(r, "--from", o->from, &o->from_pick, err)) ||
        (rc = check_pick_vocabulary(r, "--to", o->to, &o->to_pick, err)))
        return rc;
    r->batch = o->batch;
    if ((rc = run_intervene_open(r, o, err))) return rc;
    r->rc.from = o->from ? &o->from_pick : NULL;
    r->rc.to = o->to ? &o->to_pick : NULL;
    return cli_check_source(r->cfg, cli_input_flag(&o->source, true),
                            o->batch || o->list_dumps ? NULL
                                                         : "--source, --source-ids or --source-embeddings",
                            err);
}

/* The inputs the flags give (in batch mode, only the source). The vector
 * files are read before the token ids are parsed: when several inputs are
 * bad, the message is about the first in that order. */
static attn_status load_inputs(const runner *r, const run_opts *o, cli_input *in, cli_input *src,
                               attn_error *err) {
    const char *src_flag = cli_input_flag(&o->source, true);
    const char *flag = cli_input_flag(&o->input, false);
    attn_status rc = ATTN_OK;
    if (o->source.emb) rc = cli_input_load(src, r->model, &o->source, src_flag, err);
    if (!rc && o->input.emb) rc = cli_input_load(in, r->model, &o->input, flag, err);
    if (!rc && src_flag && !o->source.emb)
        rc = cli_input_load(src, r->model, &o->source, src_flag, err);
    if (!rc && flag && !o->input.emb) rc = cli_input_load(in, r->model, &o->input, flag, err);
    return rc;
}

/* The flag that gave the encoder input, for its messages. */
static const char *source_flag(const run_opts *o) {
    const char *flag = cli_input_flag(&o->source, true);
    return flag ? flag : "source";
}

/* Refuses a sequence longer than the model holds before anything of its
 * input is written: the forward pass checks it too, but only once the
 * encoder's values (and the view's heading) are out, which a bad batch line
 * would leave behind. */
static attn_status check_length(const runner *r, const cli_input *in, const char *what,
                                attn_error *err) {
    if (in->n <= (size_t)r->cfg->max_seq_len) return ATTN_OK;
    return cli_usage(err, "%s: sequence of %zu positions is longer than max_seq_len %d", what,
                     in->n, r->cfg->max_seq_len);
}

/* Refuses an input (and its encoder input src, or NULL) that the model or
 * the flags cannot take, before anything of it is written. */
static attn_status check_one(const runner *r, const cli_input *in, const cli_input *src,
                             const char *what, const char *src_what, attn_error *err) {
    attn_status rc = ATTN_OK;
    const attn_labels *sl = src ? &src->labels : NULL;
    if ((src && (rc = check_length(r, src, src_what, err))) ||
        (rc = check_length(r, in, what, err)))
        return rc;
    if ((rc = check_pick_input("--from", r->rc.from, &in->labels, sl, err)) ||
        (rc = check_pick_input("--to", r->rc.to, &in->labels, sl, err))) {
        if (r->batch) attn_error_prefix(err, "%s", what); /* the line's number */
        return rc;
    }
    return ATTN_OK;
}

/* Runs one input (and its encoder input src, or NULL) through the model;
 * every requested value streams to the sinks. */
static attn_status run_one(runner *r, long input, const cli_input *in, const cli_input *src,
                           const char *what, const char *src_what, attn_error *err) {
    attn_status rc = check_one(r, in, src, what, src_what, err);
    if (!rc) rc = run_intervene_before(r, in, src, err);
    if (rc) return rc;
    r->rc.input = input;
    r->rc.main = &in->labels;
    r->rc.source = src ? &src->labels : NULL;
    attn_session_reset(r->sess);
    int begun = 0; /* outputs whose begin ran, so that their end runs */
    for (; !rc && begun < r->n_outs; begun++)
        if (r->outs[begun].begin) rc = r->outs[begun].begin(r->outs[begun].self, &r->rc, err);
    if (!rc && r->view_mode) view_input_header(&r->view);
    if (src) {
        attn_input si = cli_input_view(src);
        rc = attn_session_encode(r->sess, &si, &r->cap, err);
        if (rc) attn_error_prefix(err, "%s", src_what);
    }
    if (!rc) {
        attn_input mi = cli_input_view(in);
        rc = attn_session_forward(r->sess, &mi, &r->cap, err);
        if (rc) attn_error_prefix(err, "%s", what);
    }
    for (int i = 0; i < begun; i++) {
        if (!r->outs[i].end) continue;
        attn_error end_err = {0};
        attn_status end_rc = r->outs[i].end(r->outs[i].self, &r->rc, rc == ATTN_OK, &end_err);
        if (end_rc && !rc) {
            rc = end_rc;
            if (err) *err = end_err;
        }
    }
    r->rc.main = r->rc.source = NULL;
    return rc;
}

/* --top-k: CSV to --predictions FILE, else a readable listing on standard
 * output (inside the view, or after the CSV outputs that use standard output). */
static int open_predictions(runner *r, const run_opts *o, attn_error *err) {
    int rc;
    bool maps_stdout = o->maps && strcmp(o->maps, "-") == 0;
    bool ctx_stdout = o->context && strcmp(o->context, "-") == 0;
    FILE *f = stdout;
    if (o->predictions) f = r->pred_out.f;
    if ((!o->predictions || strcmp(o->predictions, "-") == 0) && (maps_stdout || ctx_stdout)) {
        r->pred_tmp = tmpfile();
        if (!r->pred_tmp) return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
        f = r->pred_tmp;
    }
    attn_capture c;
    if (o->predictions) {
        attn_csv_predictions_header(f, o->ablate != NULL);
        rc = attn_csv_predictions_init(&r->topk.csv, f, r->top_k, o->last, &r->rc, r->tok,
                                       o->raw_text, err);
        c = (attn_capture){attn_csv_predictions_wants, attn_csv_predictions_emit, &r->topk.csv};
        r->pred = &r->topk.csv.pred;
    } else {
        r->topk.view = (predictions_view){.f = f, .run = &r->rc, .tok = r->tok};
        rc = attn_predictions_init(&r->topk.view.pred, r->top_k, o->last, err);
        c = (attn_capture){attn_predictions_wants, predictions_view_emit, &r->topk.view};
        r->pred = &r->topk.view.pred;
    }
    if (rc) return rc;
    r->pred->target = r->target;
    return attn_fanout_add(&r->fo, c, err);
}

static attn_status open_outputs(runner *r, const run_opts *o, attn_error *err) {
    /* the interventions change the values before any output sees them */
    attn_status rc = run_intervene_start(r, o, err);
    if (rc) return rc;
    if (o->maps) {
        attn_csv_maps_header(r->maps_out.f);
        r->maps = (attn_csv_maps){.f = r->maps_out.f, .run = &r->rc, .raw_text = o->raw_text};
        attn_capture maps = {attn_csv_maps_wants, attn_csv_maps_emit, &r->maps};
        if ((rc = run_aggregate_wrap(r, o, maps, &maps, err)) ||
            (rc = run_select(r, o, maps, &maps, err)) || (rc = attn_fanout_add(&r->fo, maps, err)))
            return rc;
    }
    if (o->context) {
        FILE *f = r->ctx_out.f;
        if (o->maps && strcmp(o->maps, "-") == 0 && strcmp(o->context, "-") == 0) {
            r->ctx_tmp = tmpfile();
            if (!r->ctx_tmp)
                return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
            f = r->ctx_tmp;
        }
        attn_csv_context_header(f, r->cfg->d_model);
        r->ctx = (attn_csv_context){.f = f, .run = &r->rc, .raw_text = o->raw_text};
        attn_capture ctx = {attn_csv_context_wants, attn_csv_context_emit, &r->ctx};
        if ((rc = attn_fanout_add(&r->fo, ctx, err))) return rc;
    }
    if (wants_view(o)) {
        r->view_mode = true;
        r->view = (view_opts){.f = stdout,
                              .color = out_color_enabled(o->color_mode, stdout),
                              .width = o->cols < 0 ? out_term_width(stdout) : o->cols,
                              .full = o->full,
                              .run = &r->rc};
        attn_capture view = {view_wants, view_emit, &r->view};
        if ((rc = run_select(r, o, view, &view, err)) || (rc = attn_fanout_add(&r->fo, view, err)))
            return rc;
    }
    if ((rc = run_dump_open(r, o, err)) || (rc = run_heatmap_open(r, o, err)) ||
        (rc = run_html_open(r, o, err)) || (rc = run_stats_open(r, o, err)) ||
        (rc = run_lens_open(r, o, err)))
        return rc;
    if ((r->top_k > 0 || r->target >= 0) && (rc = open_predictions(r, o, err))) return rc;
    r->cap = attn_fanout_capture(&r->fo);
    return ATTN_OK;
}

/* Commits the outputs in order; after a failure the later ones are removed.
 * Output held back for standard output follows there. */
static attn_status close_outputs(runner *r, attn_error *err) {
    attn_status rc = attn_outfile_commit(&r->maps_out, err);
    cli_spool(&r->ctx_tmp, !rc); /* both on stdout: maps, a blank line, then the context */
    if (rc) attn_outfile_abort(&r->ctx_out);
    else rc = attn_outfile_commit(&r->ctx_out, err);
    cli_spool(&r->pred_tmp, !rc); /* after the other outputs on stdout */
    if (rc) attn_outfile_abort(&r->pred_out);
    else rc = attn_outfile_commit(&r->pred_out, err);
    for (int i = 0; !rc && i < r->n_outs; i++)
        if (r->outs[i].commit) rc = r->outs[i].commit(r->outs[i].self, err);
    if (!rc && (r->view_mode || r->pred) && (fflush(stdout) != 0 || ferror(stdout)))
        rc = attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    return rc;
}

/* Splits a batch line SOURCE<TAB>TARGET at its first tab: line keeps the
 * source, *target is the rest. */
/* A batch line as an input: text, or token ids with --ids-input. */
static cli_input_args line_args(const char *s, bool ids_input) {
    return ids_input ? (cli_input_args){.ids = s} : (cli_input_args){.text = s};
}

/* Line `index` (from 0) of batch mode, len bytes once its line end is cut
 * (the line is changed in place): loads its inputs and runs them. An
 * encoder-decoder without a source from the flags (fixed_src NULL) takes
 * it from the line. */
typedef struct batch_ctx {
    runner *r;
    const run_opts *o;
    const cli_input *fixed_src;
} batch_ctx;

/* A batch line as the inputs of its run (changed in place): *in, and for an
 * encoder-decoder without a fixed source (fixed_src NULL) *src; *key with
 * --keyed. */
static attn_status load_line(const runner *r, const run_opts *o, const cli_input *fixed_src,
                          char *line, size_t len, const char *what, cli_input *in, cli_input *src,
                          char **key, attn_error *err) {
    const bool split = r->cfg->arch == ATTN_ARCH_ENCODER_DECODER && !fixed_src;
    char *source = NULL, *target = NULL;
    attn_status rc = ATTN_OK;
    *key = NULL;
    if (o->keyed) {
        char *rest;
        size_t rest_len;
        if ((rc = cli_split_key(line, len, what, key, &rest, &rest_len, err))) return rc;
        line = rest;
        len = rest_len;
    }
    if ((rc = cli_split_batch_line(line, len, split, what, &source, &target, err))) return rc;
    const cli_input_args src_args = line_args(split ? source : line, o->ids_input);
    const cli_input_args args = line_args(target, o->ids_input);
    if (split) rc = cli_input_load(src, r->model, &src_args, what, err);
    if (!rc) rc = cli_input_load(in, r->model, &args, what, err);
    return rc;
}

static attn_status run_line(void *ctx, long index, char *line, size_t len, const char *what,
                            attn_error *err) {
    const batch_ctx *b = ctx;
    runner *r = b->r;
    const run_opts *o = b->o;
    const bool split = r->cfg->arch == ATTN_ARCH_ENCODER_DECODER && !b->fixed_src;
    cli_input in = {0}, src = {0};
    char *key = NULL;
    attn_status rc = load_line(r, o, b->fixed_src, line, len, what, &in, &src, &key, err);
    char src_what[80];
    snprintf(src_what, sizeof src_what, "%s (source)", what);
    r->rc.key = key;
    if (!rc) rc = run_one(r, index, &in, split ? &src : b->fixed_src, what,
                            split ? src_what : source_flag(o), err);
    r->rc.key = NULL;
    cli_input_free(&in);
    cli_input_free(&src);
    return rc;
}

static bool is_stdout(const char *path) { return path && strcmp(path, "-") == 0; }

/* Progress goes to standard error when it is a terminal, unless --quiet or
 * the run writes to that same terminal on standard output. */
static bool progress_wanted(const runner *r, const run_opts *o) {
    if (o->quiet || !isatty(STDERR_FILENO)) return false;
    const bool to_stdout = r->view_mode || (r->pred && !o->predictions) ||
                           is_stdout(o->maps) || is_stdout(o->context) ||
                           is_stdout(o->predictions) || is_stdout(o->stats) || is_stdout(o->html) ||
                           is_stdout(o->lens);
    return !(to_stdout && isatty(STDOUT_FILENO));
}

/* Batch mode: one input per line of standard input (cli_batch_each). */
static attn_status run_batch(runner *r, const run_opts *o, const cli_input *fixed_src,
                             bool *bad_lines, attn_error *err) {
    batch_ctx b = {r, o, fixed_src};
    cli_progress progress;
    cli_progress_start(&progress, stdin, progress_wanted(r, o));
    return cli_batch_each(stdin, run_line, &b, &progress, bad_lines, err);
}

/* The input of the flags, or in batch mode every line of standard input. */
static attn_status run_inputs(runner *r, const run_opts *o, const cli_input *in,
                              const cli_input *src, bool *bad_lines, attn_error *err) {
    if (o->batch && cli_stdin_closed)
        return cli_usage(err, "standard input is closed: give --text, --ids or --embeddings, "
                              "or one input per line on standard input");
    if (o->batch) return run_batch(r, o, src, bad_lines, err);
    return run_one(r, 0, in, src, cli_input_flag(&o->input, false), source_flag(o), err);
}

static void runner_free(runner *r) {
    for (int i = r->n_outs - 1; i >= 0; i--)
        if (r->outs[i].abort) r->outs[i].abort(r->outs[i].self);
    attn_outfile_abort(&r->maps_out);
    attn_outfile_abort(&r->ctx_out);
    if (r->ctx_tmp) fclose(r->ctx_tmp);
    attn_outfile_abort(&r->pred_out);
    if (r->pred_tmp) fclose(r->pred_tmp);
    attn_csv_predictions_free(&r->topk.csv);
    attn_predictions_free(&r->topk.view.pred);
    run_intervene_free(r);
    attn_session_free(r->sess);
    attn_model_close(r->model);
}

static attn_status rows_begin(void *self, const attn_run_info *run, attn_error *err) {
    (void)run;
    run_rows *s = self;
    s->mem = open_memstream(&s->buf, &s->len);
    if (!s->mem) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", s->what);
    *s->f = s->mem;
    return ATTN_OK;
}

/* A failed input's rows go; a good one's join the file. */
static attn_status rows_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    (void)run;
    run_rows *s = self;
    if (!s->mem) return ATTN_OK;
    const bool closed = fclose(s->mem) == 0;
    s->mem = NULL;
    *s->f = NULL;
    attn_status rc = ATTN_OK;
    if (!closed) rc = attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", s->what);
    else if (ok && s->len) fwrite(s->buf, 1, s->len, s->file.f); /* errors: at commit */
    free(s->buf);
    s->buf = NULL;
    s->len = 0;
    return rc;
}

static attn_status rows_commit(void *self, attn_error *err) {
    run_rows *s = self;
    return attn_outfile_commit(&s->file, err);
}

static void rows_abort(void *self) {
    run_rows *s = self;
    if (s->mem) fclose(s->mem);
    free(s->buf);
    attn_outfile_abort(&s->file);
    s->release(s);
}

attn_status run_rows_open(runner *r, run_rows *rows, const char *path, attn_error *err) {
    attn_status rc = attn_outfile_open(&rows->file, path, err);
    if (rc) {
        rows->release(rows);
        return rc;
    }
    return run_add_output(r, (run_output){.self = rows, .begin = rows_begin, .end = rows_end,
                                          .commit = rows_commit, .abort = rows_abort},
                          err);
}

attn_status run_add_output(runner *r, run_output out, attn_error *err) {
    if (r->n_outs == RUN_OUTPUTS_MAX) {
        if (out.abort) out.abort(out.self);
        return attn_error_set(err, ATTN_ERR_INTERNAL, "more than %d outputs", RUN_OUTPUTS_MAX);
    }
    r->outs[r->n_outs++] = out;
    return ATTN_OK;
}

attn_status run_select(runner *r, const run_opts *o, attn_capture c, attn_capture *out,
                       attn_error *err) {
    *out = c;
    if (!cli_selection_given(&o->sel)) return ATTN_OK;
    if (r->n_selects == RUN_SELECT_MAX)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "more than %d selected outputs",
                              RUN_SELECT_MAX);
    cli_select_sink *s = &r->selects[r->n_selects++];
    *s = (cli_select_sink){.sel = &o->sel, .inner = c};
    *out = cli_select_capture(s);
    return ATTN_OK;
}

const char *run_input_name(const attn_run_info *run, char *buf, size_t cap) {
    if (run->key) return run->key;
    snprintf(buf, cap, "%ld", run->input);
    return buf;
}

int cmd_run(int argc, char **argv) { return run_main(argc, argv, RUN_CMD_RUN); }

int run_main(int argc, char **argv, run_cmd cmd) {
    run_opts o = {.stats_cmd = cmd == RUN_CMD_STATS, .lens_cmd = cmd == RUN_CMD_LENS};
    bool help = false;
    attn_error err = {0};
    if (parse_flags(argc, argv, &o, &help, &err)) return cli_lib_error(&err);
    if (help && o.stats_cmd) return cli_help(run_stats_usage);
    if (help && o.lens_cmd) return cli_help(run_lens_usage);
    if (help) {
        fputs(run_usage, stdout);
        fputs(run_usage_more, stdout);
        return cli_help(run_usage_examples);
    }
    runner r = {.target = -1};
    cli_input in = {0}, src = {0};
    const cli_input *src_in = cli_input_flag(&o.source, true) ? &src : NULL;
    bool bad_lines = false;
    int status = EXIT_OK;
    if (check_flags(&o, &err) || open_files(&r, &o, &err) || open_model(&r, &o, &err))
        status = cli_lib_error(&err);
    else if (o.list_dumps) {
        if (run_dump_list(&r, &o, &err)) status = cli_lib_error(&err);
    } else if (load_inputs(&r, &o, &in, &src, &err) ||
               (!o.batch && check_one(&r, &in, src_in, cli_input_flag(&o.input, false),
                                      source_flag(&o), &err)) ||
               attn_session_new(&r.sess, r.model, &err) ||
               /* every input is one pass: one key/value cache for all the layers */
               attn_session_set_reuse_cache(r.sess, true, &err) || open_outputs(&r, &o, &err) ||
               run_inputs(&r, &o, &in, src_in, &bad_lines, &err) || close_outputs(&r, &err))
        status = cli_lib_error(&err);
    else if (bad_lines)
        status = EXIT_FAIL;
    cli_input_free(&in);
    cli_input_free(&src);
    runner_free(&r);
    return status;
}
