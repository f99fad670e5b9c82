/* attn ablate: the head sweep. Runs the input once, clean, keeping the
 * residual stream at every block's input; then, for each head of every
 * layer (each MLP too with --mlp), runs the stack again from that layer on
 * with that one component ablated (attn_session_rerun_from with an
 * attn_ablation capture), and writes the target's logit and probability at
 * the last position against the clean run's. */
#include "cli.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: attn ablate --config PATH (--text TEXT | --ids N,N,...) --target TOKEN\n"
    "                   [--mlp] [--ablate-mode zero|mean] [--out FILE] [--heatmap PNG]\n"
    "\n"
    "The head sweep: ablates each head of self-attention (and of cross-attention\n"
    "in an encoder-decoder's decoder) in turn, each MLP too with --mlp, and shows\n"
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
    "  --out FILE            the CSV (default: standard output); it appears only\n"
    "                        when complete\n"
    "  --heatmap PNG         also a picture of the sweep: layer x head, each cell the\n"
    "                        head's logit_diff, blue (down) to red (up); a second\n"
    "                        panel for cross-attention heads\n"
    "  --threads N           threads of the matrix products\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: layer,kind,head,logit,logit_diff,prob,prob_diff\n"
    "  the first row is the clean run (kind 'clean', diffs 0); then one row per\n"
    "  component by layer: its heads (kind self, then cross), then its MLP (kind\n"
    "  mlp, head empty); the diffs are ablated minus clean. The encoder of an\n"
    "  encoder-decoder is not swept (attn run --ablate encoder:L.H ablates it).\n"
    "\n"
    "Examples:\n"
    "  attn ablate --config models/tiny-induction --text \"k f q a k f q\" --target a\n"
    "  attn ablate --config models/tiny-decoder --text \"the cat sits on the\" --target mat --mlp --out sweep.csv\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error (also: a token not in the\n"
    "vocabulary, --mlp on a model without MLPs).\n";

typedef struct ablate_opts {
    const char *config, *target, *mode, *out, *threads, *heatmap;
    bool mlp;
    cli_input_args input, source;
} ablate_opts;

/* What one pass leaves: the residual stream at each block's input (clean
 * pass only) and the last position's logits. */
typedef struct stream {
    int L, T, D, V;
    float *x;      /* [L + 1][T, D]: block l's input (l = L: the last block's output) */
    float *logits; /* [V] of the last position */
    bool record;   /* keep the stream (the clean pass) */
} stream;

static bool stream_wants(void *user, const attn_capture_key *key) {
    const stream *s = user;
    if (key->source) return false;
    return key->value == ATTN_V_LOGITS ||
           (s->record && (key->value == ATTN_V_EMBED || key->value == ATTN_V_RESID));
}

static attn_status stream_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                               attn_error *err) {
    stream *s = user;
    if (key->value == ATTN_V_LOGITS) {
        if (v->rows < 1 || v->cols != s->V)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "ablate: logits of an unexpected shape");
        memcpy(s->logits, v->data + (size_t)(v->rows - 1) * (size_t)s->V,
               (size_t)s->V * sizeof *s->logits);
        return ATTN_OK;
    }
    const int l = key->value == ATTN_V_EMBED ? 0 : key->layer + 1;
    if (l < 0 || l > s->L || v->rows != s->T || v->cols != s->D || v->row_offset != 0)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "ablate: a residual stream of an unexpected shape");
    memcpy(s->x + (size_t)l * (size_t)s->T * (size_t)s->D, v->data,
           (size_t)s->T * (size_t)s->D * sizeof *s->x);
    return ATTN_OK;
}

typedef struct sweeper {
    attn_model *model;
    const attn_config *cfg;
    attn_session *sess;
    cli_input in, source;
    bool has_source;
    int target;
    attn_ablate_mode mode;
    stream st;
    float *diff; /* [2][L, H] logit_diff of each self (then cross) head, for --heatmap */
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
    if (o->out && !*o->out) return cli_usage(err, "--out: expected a file name or '-', got ''");
    if (o->heatmap && (!*o->heatmap || strcmp(o->heatmap, "-") == 0))
        return cli_usage(err, "--heatmap: expected a file name for the PNG, got '%s'", o->heatmap);
    attn_status rc = cli_threads(o->threads, err);
    if (rc) return rc;
    const char *const stdin_flag[] = {"--config"};
    return cli_check_stdin(stdin_flag, &o->config, 1, NULL, err);
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
    stream *s = &w->st;
    s->L = w->cfg->n_layers, s->T = (int)w->in.n, s->D = w->cfg->d_model, s->V = w->cfg->vocab_size;
    size_t td, n;
    if (!attn_mul_size((size_t)s->T, (size_t)s->D, &td) ||
        !attn_mul_size(td, (size_t)s->L + 1, &n))
        return attn_error_set(err, ATTN_ERR_NOMEM, "residual streams: size overflows");
    s->x = attn_calloc_array(n, sizeof *s->x, "residual streams", err); /* [L + 1][T, D] */
    s->logits = attn_calloc_array((size_t)s->V, sizeof *s->logits, "logits", err);
    if (!s->x || !s->logits) return ATTN_ERR_NOMEM;
    /* L and n_heads are bounded by the config's limits: no overflow */
    if (!(w->diff = attn_calloc_array(2 * (size_t)s->L * (size_t)w->cfg->n_heads, sizeof *w->diff,
                                      "heatmap", err)))
        return ATTN_ERR_NOMEM;
    char num[ATTN_ID_TEXT_MAX];
    snprintf(w->target_text, sizeof w->target_text, "%s",
             attn_token_text(attn_model_tokenizer(w->model), w->target, num, sizeof num));
    if ((rc = attn_session_new(&w->sess, w->model, err)) ||
        (rc = attn_session_set_reuse_cache(w->sess, true, err)))
        return rc;
    if (o->heatmap && (rc = attn_outfile_open(&w->png, o->heatmap, err))) return rc;
    return attn_outfile_open(&w->out, o->out ? o->out : "-", err);
}

/* The target's logit and probability (softmax over the vocabulary, in
 * double) in the last pass's logits. */
static void score(const stream *s, int target, double *logit, double *prob) {
    double m = -INFINITY, z = 0;
    for (int i = 0; i < s->V; i++)
        if (s->logits[i] > m) m = s->logits[i];
    for (int i = 0; i < s->V; i++) z += exp((double)s->logits[i] - m);
    *logit = s->logits[target];
    *prob = exp(*logit - m) / z;
}

static void row(FILE *f, const char *layer, const char *kind, const char *head, double logit,
                double dl, double prob, double dp) {
    fprintf(f, "%s,%s,%s,%.9g,%.9g,%.9g,%.9g\n", layer, kind, head, logit, dl, prob, dp);
}

/* One component: its spec ("1.2", "cross:1.2", "mlp:1") ablated from its layer on. */
static attn_status one(sweeper *w, int l, const char *kind, int head, double clean_logit,
                       double clean_prob, attn_error *err) {
    char spec[48], layer[16], hd[16] = "";
    if (strcmp(kind, "mlp") == 0) snprintf(spec, sizeof spec, "mlp:%d", l);
    else snprintf(spec, sizeof spec, "%s%d.%d", strcmp(kind, "cross") == 0 ? "cross:" : "", l, head);
    attn_ablation ab;
    attn_status rc = attn_ablation_parse(&ab, spec, w->cfg, err);
    if (rc) return rc;
    ab.mode = w->mode;
    attn_fanout fo = {0};
    const attn_capture sc = {.wants = stream_wants, .emit = stream_emit, .user = &w->st};
    if ((rc = attn_fanout_add(&fo, attn_ablation_capture(&ab), err)) ||
        (rc = attn_fanout_add(&fo, sc, err)))
        return rc;
    const attn_capture cap = attn_fanout_capture(&fo);
    const stream *s = &w->st;
    const float *x = s->x + (size_t)l * (size_t)s->T * (size_t)s->D; /* [T, D] */
    if ((rc = attn_session_rerun_from(w->sess, l, x, s->T, &cap, err))) return rc;
    double logit, prob;
    score(s, w->target, &logit, &prob);
    snprintf(layer, sizeof layer, "%d", l);
    if (head >= 0) snprintf(hd, sizeof hd, "%d", head);
    row(w->out.f, layer, kind, hd, logit, logit - clean_logit, prob, prob - clean_prob);
    if (head >= 0) /* [2][L, H] */
        w->diff[((size_t)(strcmp(kind, "cross") == 0) * (size_t)s->L + (size_t)l) *
                    (size_t)w->cfg->n_heads + (size_t)head] = (float)(logit - clean_logit);
    return ATTN_OK;
}

/* --heatmap: the heads' logit_diff as layer x head panels (self, cross). */
static attn_status draw(sweeper *w, bool cross, attn_error *err) {
    const int L = w->st.L, H = w->cfg->n_heads;
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
    const attn_heatmap_panel panels[2] = {
        {.weights = w->diff, .rows = L, .cols = H, .title = "self-attention"},
        {.weights = w->diff + (size_t)L * (size_t)H, .rows = L, .cols = H, .title = "cross-attention"},
    };
    const attn_heatmap_style style = {.title = title, .queries = &layers, .keys = &heads,
                                      .diverging = true};
    attn_image img = {0};
    if (!rc && !(rc = attn_heatmap_render(&img, panels, cross ? 2 : 1, &style, err)) &&
        !(rc = attn_image_write_png(&img, w->png.f, err)))
        rc = attn_outfile_commit(&w->png, err);
    attn_image_free(&img);
    for (int i = 0; i < L + H; i++) free(text[i]);
    free(text);
    return rc;
}

static attn_status sweep(sweeper *w, bool mlp, attn_error *err) {
    stream *s = &w->st;
    const attn_capture sc = {.wants = stream_wants, .emit = stream_emit, .user = s};
    attn_status rc;
    if (w->has_source) {
        const attn_input src = cli_input_view(&w->source);
        if ((rc = attn_session_encode(w->sess, &src, NULL, err))) return rc;
    }
    const attn_input in = cli_input_view(&w->in);
    s->record = true;
    if ((rc = attn_session_forward(w->sess, &in, &sc, err))) return rc;
    s->record = false;
    double logit, prob;
    score(s, w->target, &logit, &prob);
    FILE *f = w->out.f;
    fputs("layer,kind,head,logit,logit_diff,prob,prob_diff\n", f);
    row(f, "", "clean", "", logit, 0, prob, 0);
    const bool cross = w->cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    for (int l = 0; l < s->L; l++) {
        for (int h = 0; h < w->cfg->n_heads; h++)
            if ((rc = one(w, l, "self", h, logit, prob, err))) return rc;
        for (int h = 0; cross && h < w->cfg->n_heads; h++)
            if ((rc = one(w, l, "cross", h, logit, prob, err))) return rc;
        if (mlp && (rc = one(w, l, "mlp", -1, logit, prob, err))) return rc;
    }
    if (w->png.f && (rc = draw(w, cross, err))) return rc;
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
    free(w.st.x);
    free(w.st.logits);
    cli_input_free(&w.in);
    if (w.has_source) cli_input_free(&w.source);
    attn_model_close(w.model);
    return status;
}
