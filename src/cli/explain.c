/* attn explain: every step of one attention head on one input, with the
 * values the forward pass computed (captured through the capture sink) and
 * the few that the view recomputes for display (see src/view/explain.c). */
#include "cli.h"
#include "view.h"

#include <stdio.h>
#include <string.h>

static const char explain_usage[] =
    "Usage: attn explain --config PATH INPUT [--layer L] [--head H] [OPTIONS]\n"
    "\n"
    "Shows, for one attention head, every step on the input: the tokens, the\n"
    "embeddings (and positions), Q, K and V with the weights that made them,\n"
    "the raw scores QKᵀ, their scaling by 1/√head_dim, the causal mask of a\n"
    "decoder, the softmax weights, the context vectors, and how the heads are\n"
    "concatenated and projected. The values are those the forward pass computed,\n"
    "captured as it ran; a few are recomputed for display from them and the\n"
    "weights: the raw scores QKᵀ (from the captured Q and K), the token-embedding\n"
    "and position rows that add up to the embeddings, and, under RoPE, Q and K\n"
    "before rotation.\n"
    "\n"
    "  --config PATH              the model's config file, or a folder holding\n"
    "                             config.json, or '-' (standard input; its relative\n"
    "                             paths are then from the current folder)\n"
    "Input (one of):\n"
    "  --text STRING              text, tokenized by the model's tokenizer\n"
    "  --ids N,N,...              token ids\n"
    "  --embeddings FILE          input vectors instead of tokens: CSV (one row of\n"
    "                             d_model numbers per position) or .npy [T, d_model];\n"
    "                             '-' = standard input (.npy known by its magic bytes)\n"
    "  --no-special               split special tokens (\"<mask>\") in --text and\n"
    "                             --source like other text (see docs/model-format.md)\n"
    "  --special                  match the special tokens of a gpt2 tokenizer\n"
    "                             (\"<|endoftext|>\"), which are plain text without it\n"
    "Encoder input of an encoder-decoder model (one of):\n"
    "  --source STRING | --source-ids N,N,... | --source-embeddings FILE\n"
    "What to explain:\n"
    "  --layer L                  block, from 0 (default 0)\n"
    "  --head H                   query head, from 0 (default 0)\n"
    "  --stack encoder|decoder    encoder-decoder: 'encoder' explains the encoder's\n"
    "                             self-attention on the source (default: decoder)\n"
    "  --kind self|cross|both     encoder-decoder decoder: self-attention, cross-\n"
    "                             attention to the source, or both (default both)\n"
    "Layout:\n"
    "  --width N                  line width (default: $COLUMNS, the terminal's, or\n"
    "                             80; 0: no limit; else 20 to 100000); wider\n"
    "                             matrices keep their first and last columns\n"
    "                             around a '…'\n"
    "  --digits N                 decimals of every number, 0-9 (default 3)\n"
    "  --full                     never abbreviate rows or columns\n"
    "  -h, --help                 show this help\n"
    "\n"
    "CSV vectors: comma-separated, '#' comment lines and one header row of\n"
    "names allowed. Labels of vector inputs are their positions 0, 1, ...\n"
    "\n"
    "Examples:\n"
    "  attn explain --config models/tiny-decoder --text \"the cat sat\" --layer 1 --head 2\n"
    "  attn explain --config models/tiny-translator --source \"the cat sits\" --text \"dine\" --kind cross\n"
    "  attn explain --config models/tiny-encoder --text \"the <mask> rises\" --width 120 --digits 2\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

typedef struct ex_opts {
    const char *config;
    cli_input_args input;  /* --text, --ids, --embeddings */
    cli_input_args source; /* --source, --source-ids, --source-embeddings */
    const char *layer, *head, *stack, *kind, *width, *digits;
    bool full;
    /* from the flags above (check_flags) */
    int cols;     /* --width; -1: not given */
    int decimals; /* --digits */
} ex_opts;

/* What explain works on: the model, the head chosen and the inputs. */
typedef struct explainer {
    attn_model *model;
    const attn_config *cfg;
    bool encdec;        /* the model is an encoder-decoder */
    bool enc_of_encdec; /* --stack encoder of an encoder-decoder */
    attn_session *sess;
    cli_input in, src;  /* the main input, the encoder input */
    explain_req req;    /* the head to explain; the sink fills in its values */
} explainer;

static attn_status parse_flags(int argc, char **argv, ex_opts *o, bool *help, attn_error *err) {
    const cli_flag flags[] = {
        {"config", 'c', .value = &o->config},
        {"text", .value = &o->input.text},
        {"ids", .value = &o->input.ids},
        {"embeddings", .value = &o->input.emb},
        {"source", .value = &o->source.text},
        {"source-ids", .value = &o->source.ids},
        {"source-embeddings", .value = &o->source.emb},
        {"layer", .value = &o->layer},
        {"head", .value = &o->head},
        {"stack", .value = &o->stack},
        {"kind", .value = &o->kind},
        {"width", .value = &o->width},
        {"digits", .value = &o->digits},
        {"full", .set = &o->full},
        {"no-special", .set = &cli_no_special},
        {"special", .set = &cli_special},
        {NULL},
    };
    return cli_parse_flags(argc, argv, "explain", flags, help, err);
}

/* How many of an input's flags are set. */
static int count_given(const cli_input_args *a) {
    return (a->text != NULL) + (a->ids != NULL) + (a->emb != NULL);
}

/* Refuses flags that exclude each other and words that are not choices;
 * parses the layout numbers. */
static attn_status check_flags(ex_opts *o, attn_error *err) {
    if (!o->config) return cli_usage(err, "--config PATH is required");
    if (cli_check_special(err)) return ATTN_ERR_USAGE;
    if (count_given(&o->input) > 1)
        return cli_usage(err, "--text, --ids and --embeddings exclude each other");
    if (count_given(&o->source) > 1)
        return cli_usage(err, "--source, --source-ids and --source-embeddings exclude each other");
    if (o->stack && strcmp(o->stack, "encoder") != 0 && strcmp(o->stack, "decoder") != 0)
        return cli_usage(err, "--stack: expected 'encoder' or 'decoder', got '%s'", o->stack);
    if (o->kind && strcmp(o->kind, "self") != 0 && strcmp(o->kind, "cross") != 0 &&
        strcmp(o->kind, "both") != 0)
        return cli_usage(err, "--kind: expected 'self', 'cross' or 'both', got '%s'", o->kind);
    o->cols = -1;
    o->decimals = 3;
    attn_status rc = ATTN_OK;
    if (o->width) rc = cli_parse_width(o->width, &o->cols, err);
    if (!rc && o->digits) rc = cli_parse_int(o->digits, "--digits", 0, 9, &o->decimals, err);
    const char *const stdin_flags[] = {"--config", "--embeddings", "--source-embeddings"};
    const char *const stdin_paths[] = {o->config, o->input.emb, o->source.emb};
    if (!rc) rc = cli_check_stdin(stdin_flags, stdin_paths, 3, NULL, err);
    return rc;
}

/* Opens the model; notes whether it is an encoder-decoder and whether its
 * encoder is the stack explained. */
static attn_status open_model(explainer *e, const ex_opts *o, attn_error *err) {
    attn_status rc = cli_model_open(&e->model, o->config, NULL, err);
    if (rc) return rc;
    e->cfg = attn_model_config(e->model);
    e->encdec = e->cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    e->enc_of_encdec = e->encdec && o->stack && strcmp(o->stack, "encoder") == 0;
    return ATTN_OK;
}

/* --kind: self, cross or both; where cross-attention exists, both by
 * default, else self. */
static void choose_kinds(explain_req *req, bool cross_exists, const char *kind) {
    if (cross_exists && kind && strcmp(kind, "cross") == 0) {
        req->n_kinds = 1;
        req->kinds[0] = ATTN_KIND_CROSS;
    } else if (cross_exists && (!kind || strcmp(kind, "both") == 0)) {
        req->n_kinds = 2;
        req->kinds[0] = ATTN_KIND_SELF;
        req->kinds[1] = ATTN_KIND_CROSS;
    } else {
        req->n_kinds = 1;
        req->kinds[0] = ATTN_KIND_SELF;
    }
}

/* Which stack, layer, head and kinds of attention: checked against the
 * model, then written to e->req. */
static attn_status choose_head(explainer *e, const ex_opts *o, attn_error *err) {
    const attn_config *cfg = e->cfg;
    if (o->stack) {
        bool want_enc = strcmp(o->stack, "encoder") == 0;
        if ((cfg->arch == ATTN_ARCH_DECODER && want_enc) ||
            (cfg->arch == ATTN_ARCH_ENCODER && !want_enc))
            return cli_usage(err, "--stack %s: the model is %s %s with no %s stack", o->stack,
                             cfg->arch == ATTN_ARCH_ENCODER ? "an" : "a",
                             attn_arch_name(cfg->arch), o->stack);
    }
    const int n_layers = e->enc_of_encdec ? cfg->n_encoder_layers : cfg->n_layers;
    int layer = 0, head = 0;
    attn_status rc = ATTN_OK;
    if (o->layer) rc = cli_parse_int(o->layer, "--layer", 0, n_layers - 1, &layer, err);
    if (!rc && o->head) rc = cli_parse_int(o->head, "--head", 0, cfg->n_heads - 1, &head, err);
    if (rc) return rc;
    const bool cross_exists = e->encdec && !e->enc_of_encdec;
    if (o->kind && strcmp(o->kind, "self") != 0 && !cross_exists)
        return cli_usage(err,
                         "--kind %s: cross-attention exists only in the decoder of an "
                         "encoder-decoder model%s",
                         o->kind, e->encdec ? " (drop --stack encoder)" : "");
    explain_req *req = &e->req;
    req->stack = cfg->arch == ATTN_ARCH_ENCODER || e->enc_of_encdec ? ATTN_STACK_ENCODER
                                                                   : ATTN_STACK_DECODER;
    req->source = e->enc_of_encdec;
    req->layer = layer;
    req->head = head;
    req->kv_head = head / (cfg->n_heads / cfg->n_kv_heads);
    choose_kinds(req, cross_exists, o->kind);
    return ATTN_OK;
}

/* Refuses inputs the model cannot take, then loads them: the source, then
 * the main input. The encoder of an encoder-decoder needs only the source. */
static attn_status load_inputs(explainer *e, const ex_opts *o, attn_error *err) {
    const char *src_flag = cli_input_flag(&o->source, true);
    const char *flag = cli_input_flag(&o->input, false);
    attn_status rc = cli_check_source(e->cfg, src_flag,
                                      "--source, --source-ids or --source-embeddings", err);
    if (rc) return rc;
    if (!flag && !e->enc_of_encdec)
        return cli_usage(err, "give an input: --text, --ids or --embeddings");
    if (src_flag && (rc = cli_input_load(&e->src, e->model, &o->source, src_flag, err)))
        return rc;
    if (flag && (rc = cli_input_load(&e->in, e->model, &o->input, flag, err))) return rc;
    return ATTN_OK;
}

/* The forward pass, its sink capturing the chosen layer and head. */
static attn_status run_forward(explainer *e, bool has_main, attn_error *err) {
    attn_status rc = attn_session_new(&e->sess, e->model, err);
    if (!rc) rc = attn_session_set_reuse_cache(e->sess, true, err); /* one pass */
    if (rc) return rc;
    attn_capture cap = {explain_wants, explain_emit, &e->req};
    if (e->encdec) {
        attn_input si = cli_input_view(&e->src);
        if ((rc = attn_session_encode(e->sess, &si, &cap, err))) {
            attn_error_prefix(err, "source");
            return rc;
        }
    }
    if (has_main) {
        attn_input mi = cli_input_view(&e->in);
        rc = attn_session_forward(e->sess, &mi, &cap, err);
    }
    return rc;
}

/* Lays out the captured head on standard output, with the weights. */
static attn_status print_head(const explainer *e, const ex_opts *o, attn_error *err) {
    explain_seq seq_main = {&e->in.labels, e->in.ids, e->in.emb_path};
    explain_seq seq_src = {&e->src.labels, e->src.ids, e->src.emb_path};
    explain_opts eo = {.f = stdout, .width = o->cols < 0 ? out_term_width(stdout) : o->cols,
                       .digits = o->decimals, .full = o->full, .cfg = e->cfg, .model = e->model,
                       .config_path = o->config,
                       .seq = e->enc_of_encdec ? &seq_src : &seq_main,
                       .source = e->encdec && !e->enc_of_encdec ? &seq_src : NULL};
    return explain_print(&eo, &e->req, err);
}

int cmd_explain(int argc, char **argv) {
    ex_opts o = {0};
    bool help = false;
    attn_error err = {0};
    if (parse_flags(argc, argv, &o, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(explain_usage);
    explainer e = {0};
    const bool has_main = cli_input_flag(&o.input, false) != NULL;
    int status = EXIT_OK;
    if (check_flags(&o, &err) || open_model(&e, &o, &err) || choose_head(&e, &o, &err) ||
        load_inputs(&e, &o, &err) || run_forward(&e, has_main, &err) || print_head(&e, &o, &err))
        status = cli_lib_error(&err);
    explain_req_free(&e.req);
    cli_input_free(&e.in);
    cli_input_free(&e.src);
    attn_session_free(e.sess);
    attn_model_close(e.model);
    return status;
}
