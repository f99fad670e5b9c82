/* attn explain: every step of one attention head on one input, with the
 * numbers the forward pass used (captured through the capture sink). */
#include "cli.h"
#include "view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char explain_usage[] =
    "Usage: attn explain --config PATH INPUT [--layer L] [--head H] [OPTIONS]\n"
    "\n"
    "Shows, for one attention head, every step on the input: the tokens, the\n"
    "embeddings (and positions), Q, K and V with the weights that made them,\n"
    "the raw scores QKᵀ, their scaling by 1/√head_dim, the causal mask of a\n"
    "decoder, the softmax weights, the context vectors, and how the heads are\n"
    "concatenated and projected. Every number is the one the forward pass used.\n"
    "\n"
    "Input (one of):\n"
    "  --text STRING              text, tokenized by the model's tokenizer\n"
    "  --ids N,N,...              token ids\n"
    "  --embeddings FILE          input vectors instead of tokens: CSV (one row of\n"
    "                             d_model numbers per position) or .npy [T, d_model]\n"
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
    "                             80); wider matrices keep their first and last\n"
    "                             columns around a '…'\n"
    "  --digits N                 decimals of every number, 0-9 (default 3)\n"
    "  --full                     never abbreviate rows or columns\n"
    "  -h, --help                 show this help\n"
    "\n"
    "CSV vectors: comma-separated, '#' comment lines and one header row of\n"
    "names allowed. Labels of vector inputs are their positions 0, 1, ...\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

typedef struct ex_opts {
    const char *config, *text, *ids, *emb, *source, *source_ids, *source_emb;
    const char *layer, *head, *stack, *kind, *width, *digits;
    bool full;
} ex_opts;

/* One input sequence: ids (from text or a list) or vectors from a file. */
typedef struct ex_input {
    int *ids;
    float *vec;
    size_t n;
    attn_labels labels;
    const char *emb_path;
} ex_input;

static void input_free(ex_input *in) {
    free(in->ids);
    free(in->vec);
    attn_labels_free(&in->labels);
}

static int load_input(ex_input *in, const attn_config *cfg, const attn_tokenizer *tok,
                      const char *text, const char *ids, const char *emb, const char *flag,
                      attn_error *err) {
    int rc;
    if (emb) {
        in->emb_path = emb;
        rc = attn_embeddings_load(&in->vec, &in->n, emb, cfg->d_model, cfg->max_seq_len, err);
        if (rc) {
            attn_error_prefix(err, "%s", flag);
            return rc;
        }
        return attn_labels_from_positions(&in->labels, in->n)
                   ? attn_error_set(err, ATTN_ERR_NOMEM, "out of memory")
                   : ATTN_OK;
    }
    rc = cli_input_ids(cfg, tok, text, ids, flag, &in->ids, &in->n, err);
    if (rc) return rc;
    return attn_labels_from_ids(&in->labels, tok, in->ids, in->n)
               ? attn_error_set(err, ATTN_ERR_NOMEM, "out of memory")
               : ATTN_OK;
}

static attn_input as_input(const ex_input *in) {
    return (attn_input){.ids = in->ids, .embeddings = in->vec, .n = in->n};
}

/* How many of the given flags are set. */
static int count_set(const char *a, const char *b, const char *c) {
    return (a != NULL) + (b != NULL) + (c != NULL);
}

int cmd_explain(int argc, char **argv) {
    ex_opts o = {0};
    const cli_flag flags[] = {
        {"config", 'c', .value = &o.config},
        {"text", .value = &o.text},
        {"ids", .value = &o.ids},
        {"embeddings", .value = &o.emb},
        {"source", .value = &o.source},
        {"source-ids", .value = &o.source_ids},
        {"source-embeddings", .value = &o.source_emb},
        {"layer", .value = &o.layer},
        {"head", .value = &o.head},
        {"stack", .value = &o.stack},
        {"kind", .value = &o.kind},
        {"width", .value = &o.width},
        {"digits", .value = &o.digits},
        {"full", .set = &o.full},
        {NULL},
    };
    bool help;
    attn_error perr = {0};
    if (cli_parse_flags(argc, argv, "explain", flags, &help, &perr)) return cli_lib_error(&perr);
    if (help) {
        fputs(explain_usage, stdout);
        return EXIT_OK;
    }
    if (!o.config) return cli_error(EXIT_USAGE, "--config PATH is required");
    if (count_set(o.text, o.ids, o.emb) > 1)
        return cli_error(EXIT_USAGE, "--text, --ids and --embeddings exclude each other");
    if (count_set(o.source, o.source_ids, o.source_emb) > 1)
        return cli_error(EXIT_USAGE,
                         "--source, --source-ids and --source-embeddings exclude each other");
    if (o.stack && strcmp(o.stack, "encoder") != 0 && strcmp(o.stack, "decoder") != 0)
        return cli_error(EXIT_USAGE, "--stack: expected 'encoder' or 'decoder', got '%s'",
                         o.stack);
    if (o.kind && strcmp(o.kind, "self") != 0 && strcmp(o.kind, "cross") != 0 &&
        strcmp(o.kind, "both") != 0)
        return cli_error(EXIT_USAGE, "--kind: expected 'self', 'cross' or 'both', got '%s'",
                         o.kind);
    int width = -1, digits = 3;
    if ((o.width && cli_parse_int(o.width, "--width", 0, 100000, &width, &perr)) ||
        (o.digits && cli_parse_int(o.digits, "--digits", 0, 9, &digits, &perr)))
        return cli_lib_error(&perr);

    attn_error err = {0};
    attn_model *model = NULL;
    attn_safetensors *st = NULL;
    attn_session *sess = NULL;
    ex_input in = {0}, src = {0};
    explain_req req = {0};
    int status = EXIT_OK;
    if (cli_model_open(&model, o.config, NULL, &err)) return cli_lib_error(&err);
    const attn_config *cfg = attn_model_config(model);
    const attn_tokenizer *tok = attn_model_tokenizer(model);
    const bool encdec = cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    const bool has_main = o.text || o.ids || o.emb;
    const bool has_src = o.source || o.source_ids || o.source_emb;
    const char *arch = attn_arch_name(cfg->arch);
    const char *an = cfg->arch == ATTN_ARCH_ENCODER ? "an" : "a";

    /* which stack, layer, head and kind */
    bool enc_of_encdec = encdec && o.stack && strcmp(o.stack, "encoder") == 0;
    if (o.stack) {
        bool want_enc = strcmp(o.stack, "encoder") == 0;
        if ((cfg->arch == ATTN_ARCH_DECODER && want_enc) ||
            (cfg->arch == ATTN_ARCH_ENCODER && !want_enc)) {
            status = cli_error(EXIT_USAGE, "--stack %s: the model is %s %s with no %s stack",
                               o.stack, an, arch, o.stack);
            goto done;
        }
    }
    int n_layers = enc_of_encdec ? cfg->n_encoder_layers : cfg->n_layers;
    int layer = 0, head = 0;
    if ((o.layer && cli_parse_int(o.layer, "--layer", 0, n_layers - 1, &layer, &err)) ||
        (o.head && cli_parse_int(o.head, "--head", 0, cfg->n_heads - 1, &head, &err))) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (o.kind && strcmp(o.kind, "self") != 0 && (!encdec || enc_of_encdec)) {
        status = cli_error(EXIT_USAGE,
                           "--kind %s: cross-attention exists only in the decoder of an "
                           "encoder-decoder model%s",
                           o.kind, encdec ? " (drop --stack encoder)" : "");
        goto done;
    }
    const char *src_flag = o.source       ? "--source"
                           : o.source_ids ? "--source-ids"
                           : o.source_emb ? "--source-embeddings"
                                          : NULL;
    if (cli_check_source(cfg, src_flag, "--source, --source-ids or --source-embeddings", &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (!has_main && !enc_of_encdec) {
        status = cli_error(EXIT_USAGE, "give an input: --text, --ids or --embeddings");
        goto done;
    }

    req.stack = cfg->arch == ATTN_ARCH_ENCODER || enc_of_encdec ? ATTN_STACK_ENCODER
                                                                : ATTN_STACK_DECODER;
    req.source = enc_of_encdec;
    req.layer = layer;
    req.head = head;
    req.kv_head = head / (cfg->n_heads / cfg->n_kv_heads);
    if (encdec && !enc_of_encdec && o.kind && strcmp(o.kind, "cross") == 0) {
        req.n_kinds = 1;
        req.kinds[0] = ATTN_KIND_CROSS;
    } else if (encdec && !enc_of_encdec && (!o.kind || strcmp(o.kind, "both") == 0)) {
        req.n_kinds = 2;
        req.kinds[0] = ATTN_KIND_SELF;
        req.kinds[1] = ATTN_KIND_CROSS;
    } else {
        req.n_kinds = 1;
        req.kinds[0] = ATTN_KIND_SELF;
    }

    /* inputs */
    if (has_src && load_input(&src, cfg, tok, o.source, o.source_ids, o.source_emb,
                              o.source ? "--source"
                              : o.source_ids ? "--source-ids"
                                             : "--source-embeddings",
                              &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (has_main && load_input(&in, cfg, tok, o.text, o.ids, o.emb,
                               o.text ? "--text" : o.ids ? "--ids" : "--embeddings", &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (attn_safetensors_open(&st, cfg->weights, &err) || attn_session_new(&sess, model, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }

    /* the forward pass, capturing the chosen layer and head */
    attn_capture cap = {explain_wants, explain_emit, &req};
    if (encdec) {
        attn_input si = as_input(&src);
        if (attn_session_encode(sess, &si, &cap, &err)) {
            attn_error_prefix(&err, "source");
            status = cli_lib_error(&err);
            goto done;
        }
    }
    if (has_main) {
        attn_input mi = as_input(&in);
        if (attn_session_forward(sess, &mi, &cap, &err)) {
            status = cli_lib_error(&err);
            goto done;
        }
    }

    explain_seq seq_main = {&in.labels, in.ids, in.emb_path};
    explain_seq seq_src = {&src.labels, src.ids, src.emb_path};
    if (width < 0) width = out_term_width(stdout);
    explain_opts eo = {.f = stdout, .width = width, .digits = digits, .full = o.full,
                       .cfg = cfg, .st = st, .config_path = o.config,
                       .seq = enc_of_encdec ? &seq_src : &seq_main,
                       .source = encdec && !enc_of_encdec ? &seq_src : NULL};
    if (explain_print(&eo, &req, &err)) status = cli_lib_error(&err);

done:
    explain_req_free(&req);
    input_free(&in);
    input_free(&src);
    attn_session_free(sess);
    attn_safetensors_close(st);
    attn_model_close(model);
    return status;
}
