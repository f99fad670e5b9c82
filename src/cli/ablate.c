/* attn ablate: the head sweep. Runs the input once, clean, keeping the
 * residual stream at every block's input (of both stacks); then, for each
 * head of every layer (each MLP too with --mlp), runs the stack again from
 * that layer on with that one component ablated (attn_session_rerun_from, or
 * for the encoder of an encoder-decoder attn_session_reencode_from and the
 * whole decoder, with an attn_ablation capture), and writes the target's
 * logit and probability at the last position against the clean run's. */
#include "cli.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: attn ablate --config PATH (--text TEXT | --ids N,N,...) --target TOKEN\n"
    "                   [--mlp] [--ablate-mode zero|mean] [--mean-over FILE]\n"
    "                   [--out FILE] [--heatmap PNG]\n"
    "\n"
    "The head sweep: ablates each head of self-attention (and of an\n"
    "encoder-decoder's encoder and cross-attention) in turn, each MLP too with\n"
    "--mlp, and shows\n"
    "how the logit and the probability of TARGET at the last position change.\n"
    "The clean run is made once; each ablation runs the stack again only from\n"
    "its layer on, from the clean residual stream at that layer's input: the\n"
    "same numbers as 'attn run --ablate L.H', at a fraction of the cost.\n"
    "\n"
    "  --config PATH         the model's config file or folder; it needs an lm_head\n"
    "  --text TEXT, --ids N,N,...   the input\n"
    "  --source TEXT, --source-ids N,N,...   encoder-decoder: the encoder input\n"
    "  --target TOKEN        the token whose logit is shown (its text, else an id)\n"
    "  --mlp                 the MLPs too, after the heads of their layer\n"
    "  --ablate-mode M       zero (default): the component's output set to 0; mean:\n"
    "                        to its mean over the input's positions\n"
    "  --mean-over FILE      mean mode, the means over every position of FILE's\n"
    "                        inputs (one a line: text, or ids with --ids; an\n"
    "                        encoder-decoder's SOURCE<TAB>TARGET), unablated\n"
    "  --out FILE            the CSV (default: standard output); it appears only\n"
    "                        when complete\n"
    "  --heatmap PNG         also a picture of the sweep: layer x head, each cell the\n"
    "                        head's logit_diff, blue (down) to red (up); panels\n"
    "                        for the encoder's and the cross-attention heads\n"
    "  --threads N           threads of the matrix products\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: layer,kind,head,logit,logit_diff,prob,prob_diff\n"
    "  the first row is the clean run (kind 'clean', diffs 0); then, in an\n"
    "  encoder-decoder, the encoder's by layer (kind encoder, then encoder-mlp);\n"
    "  then one row per component by layer: its heads (kind self, then cross),\n"
    "  then its MLP (kind mlp, head empty); the diffs are ablated minus clean.\n"
    "\n"
    "Examples:\n"
    "  attn ablate --config models/tiny-induction --text \"k f q a k f q\" --target a\n"
    "  attn ablate --config models/tiny-decoder --text \"the cat sits on the\" --target mat --mlp --out sweep.csv\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error (also: a token not in the\n"
    "vocabulary, --mlp on a model without MLPs).\n";

typedef struct ablate_opts {
    const char *config, *target, *mode, *out, *threads, *heatmap, *mean_over;
    bool mlp;
    cli_input_args input, source;
} ablate_opts;

/* The kinds of component swept, in the order of the rows within a layer. */
typedef enum { PART_SELF, PART_CROSS, PART_MLP } part;

typedef struct sweeper {
    attn_model *model;
    const attn_config *cfg;
    attn_session *sess;
    cli_input in, source;
    bool has_source;
    int target;
    attn_ablate_mode mode;
    attn_ablation_means *means; /* --mean-over, or NULL */
    cli_rerun st;
    /* logit_diff of each head for --heatmap: [3][Lmax, H], panels encoder
     * self-attention, (decoder) self-attention, cross-attention */
    float *diff;
    int Lmax;
    char target_text[64];
    attn_outfile out, png;
} sweeper;

static attn_status parse_flags(int argc, char **argv, ablate_opts *o, bool *help,
                               attn_error *err) {
    const cli_flag flags[] = {
        {"config", 'c', .value = &o->config},
        {"text", .value = &o->input.text},
        {"ids", .value = &o->input.ids},
        {"source", .value = &o->source.text},
        {"source-ids", .value = &o->source.ids},
        {"target", .value = &o->target},
        {"mlp", .set = &o->mlp},
        {"ablate-mode", .value = &o->mode},
        {"mean-over", .value = &o->mean_over},
        {"out", 'o', .value = &o->out},
        {"heatmap", .value = &o->heatmap},
        {"threads", .value = &o->threads},
        {NULL},
    };
    return cli_parse_flags(argc, argv, "ablate", flags, help, err);
}

static attn_status check_flags(const ablate_opts *o, sweeper *w, attn_error *err) {
    if (!o->config) return cli_usage(err, "--config PATH is required");
    if (!o->input.text && !o->input.ids) return cli_usage(err, "--text or --ids is required");
    if (o->input.text && o->input.ids) return cli_usage(err, "--text and --ids exclude each other");
    if (o->source.text && o->source.ids)
        return cli_usage(err, "--source and --source-ids exclude each other");
    if (!o->target) return cli_usage(err, "--target TOKEN is required");
    w->mode = ATTN_ABLATE_ZERO;
    if (o->mode && strcmp(o->mode, "mean") == 0) w->mode = ATTN_ABLATE_MEAN;
    else if (o->mode && strcmp(o->mode, "zero") != 0)
        return cli_usage(err, "--ablate-mode: expected zero or mean, got '%s'", o->mode);
    if (o->mean_over && o->mode && w->mode == ATTN_ABLATE_ZERO)
        return cli_usage(err, "--mean-over gives the means of --ablate-mode mean: drop "
                              "--ablate-mode zero");
    if (o->mean_over && !*o->mean_over)
        return cli_usage(err, "--mean-over: expected a file name, got ''");
    if (o->mean_over) w->mode = ATTN_ABLATE_MEAN;
    if (o->out && !*o->out) return cli_usage(err, "--out: expected a file name or '-', got ''");
    if (o->heatmap && (!*o->heatmap || strcmp(o->heatmap, "-") == 0))
        return cli_usage(err, "--heatmap: expected a file name for the PNG, got '%s'", o->heatmap);
    attn_status rc = cli_threads(o->threads, err);
    if (rc) return rc;
    const char *const stdin_flag[] = {"--config", "--mean-over"};
    const char *const stdin_path[] = {o->config, o->mean_over};
    return cli_check_stdin(stdin_flag, stdin_path, 2, NULL, err);
}

static attn_status open_all(sweeper *w, const ablate_opts *o, attn_error *err) {
    const cli_model_needs needs = {.who = "ablate", .lm_head = true};
    attn_status rc = cli_model_open(&w->model, o->config, &needs, err);
    if (rc) return rc;
    w->cfg = attn_model_config(w->model);
    const char *src_flag = cli_input_flag(&o->source, true);
    if ((rc = cli_check_source(w->cfg, src_flag, "--source or --source-ids", err))) return rc;
    if (src_flag) {
        if ((rc = cli_input_load(&w->source, w->model, &o->source, src_flag, err))) return rc;
        w->has_source = true;
    }
    if ((rc = cli_input_load(&w->in, w->model, &o->input, cli_input_flag(&o->input, false), err)) ||
        (rc = cli_token_arg(attn_model_tokenizer(w->model), w->cfg->vocab_size, "--target",
                            o->target, &w->target, err)))
        return rc;
    /* --mlp on a model without MLPs: the parser says so */
    attn_ablation probe;
    if (o->mlp && (rc = attn_ablation_parse(&probe, "mlp:0", w->cfg, err))) {
        char why[sizeof err->message]; /* cli_usage writes err->message */
        snprintf(why, sizeof why, "%s", err->message);
        return cli_usage(err, "--mlp: %s", why);
    }
    if ((rc = attn_session_new(&w->sess, w->model, err)) ||
        (rc = attn_session_set_reuse_cache(w->sess, true, err)) ||
        (rc = cli_rerun_init(&w->st, w->sess, w->cfg, &w->in, w->has_source ? &w->source : NULL,
                             err)))
        return rc;
    const cli_rerun *s = &w->st;
    /* L and n_heads are bounded by the config's limits: no overflow */
    w->Lmax = s->L > s->Le ? s->L : s->Le;
    if (!(w->diff = attn_calloc_array(3 * (size_t)w->Lmax * (size_t)w->cfg->n_heads,
                                      sizeof *w->diff, "heatmap", err)))
        return ATTN_ERR_NOMEM;
    char num[ATTN_ID_TEXT_MAX];
    snprintf(w->target_text, sizeof w->target_text, "%s",
             attn_token_text(attn_model_tokenizer(w->model), w->target, num, sizeof num));
    if (o->mean_over &&
        (rc = cli_mean_over(w->sess, w->model, o->mean_over, o->input.ids != NULL, &w->means, err)))
        return rc;
    if (o->heatmap && (rc = attn_outfile_open(&w->png, o->heatmap, err))) return rc;
    return attn_outfile_open(&w->out, o->out ? o->out : "-", err);
}

/* The target's logit and probability (softmax over the vocabulary, in
 * double) in the last pass's logits. */
static void score(const cli_rerun *s, int target, double *logit, double *prob) {
    attn_prediction p = {0};
    (void)attn_token_prediction(&p, s->logits, s->V, target, NULL); /* target < V: checked */
    *logit = p.logit;
    *prob = p.prob;
}

static void row(FILE *f, const char *layer, const char *kind, const char *head, double logit,
                double dl, double prob, double dp) {
    fprintf(f, "%s,%s,%s,%.9g,%.9g,%.9g,%.9g\n", layer, kind, head, logit, dl, prob, dp);
}

/* The CSV's kind of a component. */
static const char *kind_name(bool source, part p) {
    if (source) return p == PART_MLP ? "encoder-mlp" : "encoder";
    return p == PART_MLP ? "mlp" : p == PART_CROSS ? "cross" : "self";
}

/* One component (head `head` of part p of layer l, or its MLP; of the
 * encoder when source) ablated, its stack run again from layer l on. */
static attn_status one(sweeper *w, bool source, int l, part p, int head, double clean_logit,
                       double clean_prob, attn_error *err) {
    attn_ablation ab = {.n = 1, .mode = w->mode, .n_heads = w->cfg->n_heads,
                        .head_dim = w->cfg->head_dim, .means = w->means};
    ab.specs[0] = (attn_ablate_spec){.source = source, .mlp = p == PART_MLP,
                                     .kind = p == PART_CROSS ? ATTN_KIND_CROSS : ATTN_KIND_SELF,
                                     .layer = l, .head = head};
    const attn_capture cap = attn_ablation_capture(&ab);
    const cli_rerun *s = &w->st;
    attn_status rc = cli_rerun_from(&w->st, source, l, &cap, err);
    if (rc) return rc;
    double logit, prob;
    score(s, w->target, &logit, &prob);
    char layer[16], hd[16] = "";
    snprintf(layer, sizeof layer, "%d", l);
    if (head >= 0) snprintf(hd, sizeof hd, "%d", head);
    row(w->out.f, layer, kind_name(source, p), hd, logit, logit - clean_logit, prob,
        prob - clean_prob);
    const size_t panel = source ? 0 : p == PART_CROSS ? 2 : 1;
    if (head >= 0) /* [3][Lmax, H] */
        w->diff[(panel * (size_t)w->Lmax + (size_t)l) * (size_t)w->cfg->n_heads + (size_t)head] =
            (float)(logit - clean_logit);
    return ATTN_OK;
}

/* --heatmap: the heads' logit_diff as layer x head panels (encoder, self,
 * cross), each of the larger stack's layers: a shorter stack's missing rows
 * are drawn masked. */
static attn_status draw(sweeper *w, bool encdec, attn_error *err) {
    const int L = w->Lmax, H = w->cfg->n_heads;
    char **text = attn_calloc_array((size_t)(L + H), sizeof *text, "heatmap labels", err);
    if (!text) return ATTN_ERR_NOMEM;
    attn_status rc = ATTN_OK;
    for (int i = 0; i < L + H && !rc; i++) {
        char b[32];
        snprintf(b, sizeof b, i < L ? "layer %d" : "head %d", i < L ? i : i - L);
        if (!(text[i] = strdup(b))) rc = attn_error_set(err, ATTN_ERR_NOMEM, "heatmap: out of memory");
    }
    const attn_labels layers = {.n = (size_t)L, .text = text}, heads = {.n = (size_t)H, .text = text + L};
    char title[160];
    snprintf(title, sizeof title, "logit change of '%s' when one head is ablated (%s)",
             w->target_text, w->mode == ATTN_ABLATE_MEAN ? "mean" : "zero");
    const size_t LH = (size_t)L * (size_t)H;
    /* [2][L, H]: the encoder's missing layers, the decoder's */
    unsigned char *mask = attn_calloc_array(2 * LH, 1, "heatmap mask", err);
    if (!mask) rc = ATTN_ERR_NOMEM;
    for (size_t i = 0; mask && i < LH; i++) {
        mask[i] = (int)(i / (size_t)H) >= w->st.Le;
        mask[LH + i] = (int)(i / (size_t)H) >= w->st.L;
    }
    const attn_heatmap_panel all[3] = {
        {.weights = w->diff, .rows = L, .cols = H, .mask = mask, .title = "encoder self-attention"},
        {.weights = w->diff + LH, .rows = L, .cols = H, .mask = mask ? mask + LH : NULL,
         .title = encdec ? "decoder self-attention" : "self-attention"},
        {.weights = w->diff + 2 * LH, .rows = L, .cols = H, .mask = mask ? mask + LH : NULL,
         .title = "cross-attention"},
    };
    const attn_heatmap_style style = {.title = title, .queries = &layers, .keys = &heads,
                                      .diverging = true};
    attn_image img = {0};
    const attn_heatmap_panel *panels = encdec ? all : all + 1;
    if (!rc && !(rc = attn_heatmap_render(&img, panels, encdec ? 3 : 1, &style, err)) &&
        !(rc = attn_image_write_png(&img, w->png.f, err)))
        rc = attn_outfile_commit(&w->png, err);
    attn_image_free(&img);
    free(mask);
    for (int i = 0; i < L + H; i++) free(text[i]);
    free(text);
    return rc;
}

/* The rows of one stack's layer l: its heads (self, then cross), its MLP. */
static attn_status layer_rows(sweeper *w, bool source, int l, bool mlp, double logit, double prob,
                              attn_error *err) {
    const bool cross = !source && w->cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    attn_status rc = ATTN_OK;
    for (int h = 0; !rc && h < w->cfg->n_heads; h++)
        rc = one(w, source, l, PART_SELF, h, logit, prob, err);
    for (int h = 0; !rc && cross && h < w->cfg->n_heads; h++)
        rc = one(w, source, l, PART_CROSS, h, logit, prob, err);
    if (!rc && mlp) rc = one(w, source, l, PART_MLP, -1, logit, prob, err);
    return rc;
}

static attn_status sweep(sweeper *w, bool mlp, attn_error *err) {
    const cli_rerun *s = &w->st;
    attn_status rc = cli_rerun_base(&w->st, NULL, err);
    if (rc) return rc;
    double logit, prob;
    score(s, w->target, &logit, &prob);
    FILE *f = w->out.f;
    fputs("layer,kind,head,logit,logit_diff,prob,prob_diff\n", f);
    row(f, "", "clean", "", logit, 0, prob, 0);
    for (int l = 0; l < s->Le; l++)
        if ((rc = layer_rows(w, true, l, mlp, logit, prob, err))) return rc;
    for (int l = 0; l < s->L; l++)
        if ((rc = layer_rows(w, false, l, mlp, logit, prob, err))) return rc;
    if (w->png.f && (rc = draw(w, w->has_source, err))) return rc;
    return attn_outfile_commit(&w->out, err);
}

int cmd_ablate(int argc, char **argv) {
    ablate_opts o = {0};
    bool help = false;
    attn_error err = {0};
    if (parse_flags(argc, argv, &o, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(usage);
    sweeper w = {0};
    int status = EXIT_OK;
    if (check_flags(&o, &w, &err) || open_all(&w, &o, &err) || sweep(&w, o.mlp, &err))
        status = cli_lib_error(&err);
    attn_outfile_abort(&w.out);
    attn_outfile_abort(&w.png);
    free(w.diff);
    attn_session_free(w.sess);
    attn_ablation_means_free(w.means);
    cli_rerun_free(&w.st);
    cli_input_free(&w.in);
    if (w.has_source) cli_input_free(&w.source);
    attn_model_close(w.model);
    return status;
}
