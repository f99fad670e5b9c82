/* attn run: one input from flags, or one input per line of standard input. */
#include "cli.h"
#include "view.h"

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
    "Input (one of; neither: standard input, one input per line):\n"
    "  --text STRING         text, tokenized by the model's tokenizer\n"
    "  --ids N,N,...         token ids\n"
    "  --ids-input           standard input lines are token ids, not text\n"
    "  --embeddings FILE     vectors instead of tokens: a CSV row of d_model numbers\n"
    "                        per position, or a .npy [T, d_model]; given to the first\n"
    "                        block as they are (labels: the positions)\n"
    "Encoder input of an encoder-decoder model:\n"
    "  --source STRING       source text\n"
    "  --source-ids N,N,...  source token ids\n"
    "  --source-embeddings FILE  source vectors, as --embeddings\n"
    "                        (in batch mode without these, each line is SOURCE<TAB>TARGET)\n"
    "Outputs (neither: a readable view on standard output):\n"
    "  --maps FILE           attention weights as CSV ('-' = standard output)\n"
    "  --context FILE        final hidden states as CSV ('-' = standard output)\n"
    "  --top-k K             the K most likely next tokens after each position (models\n"
    "                        with an lm_head; K from 1 to vocab_size)\n"
    "  --last                with --top-k: after the last position only\n"
    "  --predictions FILE    with --top-k: the predictions as CSV ('-' = standard output);\n"
    "                        without it they are listed readably on standard output\n"
    "  --color WHEN          heatmap shading of the view: auto (on a terminal, unless\n"
    "                        NO_COLOR is set), always, never (default auto)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Maps CSV columns: input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n"
    "  (entries a causal mask sets to 0 are left out: a missing entry means 0)\n"
    "Context CSV columns: input,pos,token,d0,d1,...\n"
    "Predictions CSV columns: input,pos,rank,token_id,token,logit,prob\n"
    "  (pos: the position the prediction follows; rank from 1; prob: softmax over the\n"
    "  whole vocabulary; equal logits rank by the lower id)\n"
    "Files appear only when complete. When both go to standard output, the maps\n"
    "come first, then a blank line, then the context.\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";

typedef struct run_opts {
    const char *config, *text, *ids, *source, *source_ids, *maps, *context;
    bool ids_input;
    const char *top_k, *predictions; /* --top-k K, --predictions FILE */
    bool last;                       /* --last */
    const char *emb, *source_emb, *color; /* --embeddings, --source-embeddings, --color */
} run_opts;

typedef struct runner {
    attn_model *model;
    const attn_config *cfg;
    const attn_tokenizer *tok;
    attn_session *sess;
    attn_outfile maps_out, ctx_out;
    FILE *ctx_tmp; /* context held back when maps and context both go to stdout */
    attn_csv_maps maps;
    attn_csv_context ctx;
    view_opts view;
    bool view_mode;
    attn_fanout fo;
    attn_capture cap;
    attn_run_info rc;
    int top_k;           /* 0: no predictions */
    attn_outfile pred_out;   /* --predictions FILE */
    FILE *pred_tmp;      /* predictions held back while other outputs use stdout */
    topk_sink topk;
    const float *emb, *src_emb; /* --embeddings / --source-embeddings vectors, or NULL */
    int color;                  /* OUT_COLOR_* */
} runner;

/* Token ids of one input: from an id list or from text. */
static int input_ids(const runner *r, const char *text, const char *ids, const char *what,
                     int **out, size_t *n, attn_error *err) {
    return cli_input_ids(r->cfg, r->tok, text, ids, what, out, n, err);
}

/* Runs one input through the model; every requested value streams to the sinks. */
static int run_one(runner *r, long input, const int *ids, size_t n, const int *src, size_t sn,
                   const char *what, attn_error *err) {
    attn_labels main_l = {0}, src_l = {0};
    const bool has_src = src || r->src_emb; /* vectors: labelled by position */
    int rc = ids ? attn_labels_from_ids(&main_l, r->tok, ids, n) : attn_labels_from_positions(&main_l, n);
    if (!rc && has_src)
        rc = src ? attn_labels_from_ids(&src_l, r->tok, src, sn) : attn_labels_from_positions(&src_l, sn);
    if (rc) {
        attn_labels_free(&main_l);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    }
    r->rc.input = input;
    r->rc.main = &main_l;
    r->rc.source = has_src ? &src_l : NULL;
    attn_session_reset(r->sess);
    if (r->view_mode) view_input_header(&r->view);
    if (has_src) {
        attn_input in = {.ids = src, .embeddings = src ? NULL : r->src_emb, .n = sn};
        rc = attn_session_encode(r->sess, &in, &r->cap, err);
        if (rc) attn_error_prefix(err, "%s (source)", what);
    }
    if (!rc) {
        attn_input in = {.ids = ids, .embeddings = ids ? NULL : r->emb, .n = n};
        rc = attn_session_forward(r->sess, &in, &r->cap, err);
        if (rc) attn_error_prefix(err, "%s", what);
    }
    attn_labels_free(&main_l);
    attn_labels_free(&src_l);
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
    if (o->predictions) {
        if ((rc = attn_outfile_open(&r->pred_out, o->predictions, err))) return rc;
        f = r->pred_out.f;
    }
    if ((!o->predictions || strcmp(o->predictions, "-") == 0) && (maps_stdout || ctx_stdout)) {
        r->pred_tmp = tmpfile();
        if (!r->pred_tmp) return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
        f = r->pred_tmp;
    }
    if (o->predictions) topk_csv_header(f);
    if (topk_init(&r->topk, f, o->predictions != NULL, r->top_k, o->last, &r->rc, r->tok))
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    if ((rc = attn_fanout_add(&r->fo, (attn_capture){topk_wants, topk_emit, &r->topk}, err))) return rc;
    return ATTN_OK;
}

static int open_outputs(runner *r, const run_opts *o, attn_error *err) {
    int rc;
    if (o->maps) {
        if ((rc = attn_outfile_open(&r->maps_out, o->maps, err))) return rc;
        attn_csv_maps_header(r->maps_out.f);
        r->maps = (attn_csv_maps){.f = r->maps_out.f, .run = &r->rc};
        if ((rc = attn_fanout_add(&r->fo, (attn_capture){attn_csv_maps_wants, attn_csv_maps_emit, &r->maps}, err))) return rc;
    }
    if (o->context) {
        if ((rc = attn_outfile_open(&r->ctx_out, o->context, err))) return rc;
        FILE *f = r->ctx_out.f;
        if (o->maps && strcmp(o->maps, "-") == 0 && strcmp(o->context, "-") == 0) {
            r->ctx_tmp = tmpfile();
            if (!r->ctx_tmp)
                return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
            f = r->ctx_tmp;
        }
        attn_csv_context_header(f, r->cfg->d_model);
        r->ctx = (attn_csv_context){.f = f, .run = &r->rc};
        if ((rc = attn_fanout_add(&r->fo, (attn_capture){attn_csv_context_wants, attn_csv_context_emit, &r->ctx}, err))) return rc;
    }
    if (!o->maps && !o->context && !o->predictions) {
        r->view_mode = true;
        r->view = (view_opts){.f = stdout,
                              .color = out_color_enabled(r->color, stdout),
                              .run = &r->rc};
        if ((rc = attn_fanout_add(&r->fo, (attn_capture){view_wants, view_emit, &r->view}, err))) return rc;
    }
    if (r->top_k > 0 && (rc = open_predictions(r, o, err))) return rc;
    r->cap = attn_fanout_capture(&r->fo);
    return ATTN_OK;
}

static int close_outputs(runner *r, attn_error *err) {
    int rc = attn_outfile_commit(&r->maps_out, err);
    if (r->ctx_tmp && !rc) { /* both on stdout: maps, a blank line, then the context */
        putchar('\n');
        rewind(r->ctx_tmp);
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, r->ctx_tmp)) > 0) fwrite(buf, 1, got, stdout);
    }
    if (r->ctx_tmp) fclose(r->ctx_tmp);
    r->ctx_tmp = NULL;
    int rc2 = rc ? (attn_outfile_abort(&r->ctx_out), rc) : (int)attn_outfile_commit(&r->ctx_out, err);
    if (r->pred_tmp && !rc && !rc2) { /* after the other outputs on stdout, a blank line */
        putchar('\n');
        rewind(r->pred_tmp);
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, r->pred_tmp)) > 0) fwrite(buf, 1, got, stdout);
    }
    if (r->pred_tmp) fclose(r->pred_tmp);
    r->pred_tmp = NULL;
    if (rc || rc2) attn_outfile_abort(&r->pred_out);
    else rc2 = attn_outfile_commit(&r->pred_out, err);
    if (!rc && !rc2 && r->top_k > 0 && !r->pred_out.f && (fflush(stdout) != 0 || ferror(stdout)))
        rc2 = attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    if (!rc && r->view_mode && (fflush(stdout) != 0 || ferror(stdout)))
        rc2 = attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    return rc ? rc : rc2;
}

/* Batch mode: one input per line of standard input. Bad lines are reported
 * with their 1-based line number and skipped. Returns the exit status. */
static int run_batch(runner *r, const run_opts *o, const int *fixed_src, size_t fixed_sn) {
    bool encdec = r->cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    int status = EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long index = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        long lineno = index + 1;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char what[64];
        snprintf(what, sizeof what, "standard input line %ld", lineno);
        attn_error err = {0};
        int *ids = NULL, *src = NULL;
        size_t n = 0, sn = 0;
        int rc = ATTN_OK;
        if ((size_t)len != strlen(line)) {
            rc = attn_error_set(&err, ATTN_ERR_USAGE, "%s: contains a NUL byte", what);
        } else {
            char *target = line;
            if (encdec && !fixed_src && !r->src_emb) {
                char *tab = strchr(line, '\t');
                if (!tab) {
                    rc = attn_error_set(&err, ATTN_ERR_USAGE,
                                        "%s: expected SOURCE<TAB>TARGET for an encoder-decoder "
                                        "model (or give --source / --source-ids)",
                                        what);
                } else {
                    *tab = '\0';
                    target = tab + 1;
                    rc = input_ids(r, line, o->ids_input ? line : NULL, what, &src, &sn, &err);
                }
            }
            if (!rc) rc = input_ids(r, target, o->ids_input ? target : NULL, what, &ids, &n, &err);
        }
        if (!rc) {
            const int *s = fixed_src ? fixed_src : src;
            size_t ssn = fixed_src || r->src_emb ? fixed_sn : sn;
            rc = run_one(r, index, ids, n, s, ssn, what, &err);
        }
        free(ids);
        free(src);
        if (rc) {
            cli_error(EXIT_FAIL, "%s", err.message);
            status = EXIT_FAIL;
            if (rc == ATTN_ERR_IO || rc == ATTN_ERR_NOMEM || rc == ATTN_ERR_INTERNAL) {
                free(line);
                return -1; /* fatal: outputs are not trustworthy */
            }
        }
        index++;
    }
    free(line);
    if (ferror(stdin)) {
        cli_error(EXIT_FAIL, "standard input: read error");
        return -1;
    }
    return status;
}

static void runner_free(runner *r) {
    attn_outfile_abort(&r->maps_out);
    attn_outfile_abort(&r->ctx_out);
    if (r->ctx_tmp) fclose(r->ctx_tmp);
    attn_outfile_abort(&r->pred_out);
    if (r->pred_tmp) fclose(r->pred_tmp);
    topk_free(&r->topk);
    attn_session_free(r->sess);
    attn_model_close(r->model);
}

int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    const cli_flag flags[] = {
        {"config", 'c', .value = &o.config},
        {"text", .value = &o.text},
        {"ids", .value = &o.ids},
        {"ids-input", .set = &o.ids_input},
        {"source", .value = &o.source},
        {"source-ids", .value = &o.source_ids},
        {"maps", .value = &o.maps},
        {"context", .value = &o.context},
        {"top-k", .value = &o.top_k},
        {"last", .set = &o.last},
        {"predictions", .value = &o.predictions},
        {"embeddings", .value = &o.emb},
        {"source-embeddings", .value = &o.source_emb},
        {"color", .value = &o.color},
        {NULL},
    };
    bool help;
    attn_error perr = {0};
    if (cli_parse_flags(argc, argv, "run", flags, &help, &perr)) return cli_lib_error(&perr);
    if (help) {
        fputs(run_usage, stdout);
        return EXIT_OK;
    }
    if (!o.config) return cli_error(EXIT_USAGE, "--config PATH is required");
    if (o.text && o.ids) return cli_error(EXIT_USAGE, "--text and --ids exclude each other");
    if (o.source && o.source_ids)
        return cli_error(EXIT_USAGE, "--source and --source-ids exclude each other");
    if (o.ids_input && (o.text || o.ids))
        return cli_error(EXIT_USAGE, "--ids-input reads standard input; drop --text / --ids");
    if (o.emb && (o.text || o.ids || o.ids_input))
        return cli_error(EXIT_USAGE, "--embeddings excludes %s",
                         o.text ? "--text" : o.ids ? "--ids" : "--ids-input");
    if (o.source_emb && (o.source || o.source_ids))
        return cli_error(EXIT_USAGE, "--source-embeddings excludes %s",
                         o.source ? "--source" : "--source-ids");
    int color = o.color ? out_color_parse(o.color) : OUT_COLOR_AUTO;
    if (color < 0)
        return cli_error(EXIT_USAGE, "--color: expected auto, always or never, got '%s'",
                         o.color);
    if (o.maps && o.context && strcmp(o.maps, "-") != 0 && strcmp(o.maps, o.context) == 0)
        return cli_error(EXIT_USAGE, "--maps and --context name the same file '%s'", o.maps);
    if (!o.top_k && (o.last || o.predictions))
        return cli_error(EXIT_USAGE, "%s needs --top-k K", o.last ? "--last" : "--predictions");
    if (o.predictions && strcmp(o.predictions, "-") != 0 &&
        ((o.maps && strcmp(o.maps, o.predictions) == 0) ||
         (o.context && strcmp(o.context, o.predictions) == 0)))
        return cli_error(EXIT_USAGE, "--predictions names the same file '%s' as %s",
                         o.predictions,
                         o.maps && strcmp(o.maps, o.predictions) == 0 ? "--maps" : "--context");
    int top_k = 0; /* its range, 1..vocab_size, is checked once the model is open */
    if (o.top_k && cli_parse_int(o.top_k, "--top-k", INT_MIN, INT_MAX, &top_k, &perr))
        return cli_lib_error(&perr);

    runner r = {0};
    attn_error err = {0};
    const cli_model_needs needs = {.who = "--top-k", .lm_head = o.top_k != NULL};
    if (cli_model_open(&r.model, o.config, &needs, &err)) return cli_lib_error(&err);
    r.cfg = attn_model_config(r.model);
    r.tok = attn_model_tokenizer(r.model);
    r.rc.cfg = r.cfg;
    r.top_k = top_k;
    r.color = color;
    bool batch = !o.text && !o.ids && !o.emb;
    int status = EXIT_OK;
    int *ids = NULL, *src = NULL;
    float *emb = NULL, *src_emb = NULL;
    size_t n = 0, sn = 0;

    if (o.top_k && (top_k < 1 || top_k > r.cfg->vocab_size)) {
        status = cli_error(EXIT_USAGE, "--top-k: expected an integer from 1 to %d (vocab_size), "
                                       "got %d",
                           r.cfg->vocab_size, top_k);
        goto done;
    }
    const char *src_flag = o.source       ? "--source"
                           : o.source_ids ? "--source-ids"
                           : o.source_emb ? "--source-embeddings"
                                          : NULL;
    if (cli_check_source(r.cfg, src_flag,
                         batch ? NULL : "--source, --source-ids or --source-embeddings", &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (o.source_emb) {
        if (attn_embeddings_load(&src_emb, &sn, o.source_emb, r.cfg->d_model,
                                 r.cfg->max_seq_len, &err)) {
            attn_error_prefix(&err, "--source-embeddings");
            status = cli_lib_error(&err);
            goto done;
        }
        r.src_emb = src_emb;
    }
    if (o.emb) {
        if (attn_embeddings_load(&emb, &n, o.emb, r.cfg->d_model, r.cfg->max_seq_len, &err)) {
            attn_error_prefix(&err, "--embeddings");
            status = cli_lib_error(&err);
            goto done;
        }
        r.emb = emb;
    }
    if (o.source || o.source_ids) {
        const char *what = o.source ? "--source" : "--source-ids";
        if (input_ids(&r, o.source, o.source_ids, what, &src, &sn, &err)) {
            status = cli_lib_error(&err);
            goto done;
        }
    }
    if (!batch && !o.emb &&
        input_ids(&r, o.text, o.ids, o.text ? "--text" : "--ids", &ids, &n, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (attn_session_new(&r.sess, r.model, &err) || open_outputs(&r, &o, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (batch) {
        status = run_batch(&r, &o, src, sn);
        if (status < 0) {
            status = EXIT_FAIL;
            goto done;
        }
    } else if (run_one(&r, 0, ids, n, src, sn,
                       o.text ? "--text" : o.ids ? "--ids" : "--embeddings", &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (close_outputs(&r, &err)) status = cli_lib_error(&err);
done:
    free(ids);
    free(src);
    free(emb);
    free(src_emb);
    runner_free(&r);
    return status;
}
