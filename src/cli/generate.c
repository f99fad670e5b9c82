/* attn generate: greedy decoding. The prompt runs once; then every new
 * token is fed alone (one position per attn_session_forward), the session's
 * key/value cache holding the past, so a step costs O(length) in attention
 * and O(1) in the matrix products. Text streams to standard output token by
 * token; the attention maps and the token list stream to their files. */
#include "cli.h"
#include "view.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char generate_usage[] =
    "Usage: attn generate --config PATH (--text STRING | --ids N,N,...) --steps N\n"
    "                     [--maps FILE] [--tokens FILE] [--source STRING | --source-ids N,...]\n"
    "\n"
    "Continues the prompt greedily: at each step the most likely next token (the\n"
    "lowest id on ties) is appended and fed back, reusing the key/value cache. The\n"
    "generated text (not the prompt) is printed on standard output as it is made.\n"
    "Generation stops after N tokens, at the tokenizer's end-of-sequence token (not\n"
    "printed, not fed, not listed), or when the sequence reaches max_seq_len (with a\n"
    "warning on standard error). Decoder and encoder-decoder models with an lm_head.\n"
    "\n"
    "  --config PATH         the model's config file\n"
    "  --text STRING         the prompt, tokenized by the model's tokenizer (a trailing\n"
    "                        end-of-sequence token that the tokenizer adds is dropped)\n"
    "  --ids N,N,...         the prompt as token ids\n"
    "  --steps N             how many tokens to generate (0: run the prompt only)\n"
    "  --source STRING       encoder input of an encoder-decoder model (encoded once)\n"
    "  --source-ids N,N,...  the same as token ids\n"
    "  --maps FILE           attention weights of the whole sequence as CSV, in the\n"
    "                        columns of 'attn run --maps' ('-' = standard output)\n"
    "  --tokens FILE         every position as CSV: pos,token_id,token (the prompt,\n"
    "                        then the generated tokens; '-' = standard output)\n"
    "  -h, --help            show this help\n"
    "\n"
    "When --maps or --tokens is '-', the text is not printed (standard output carries\n"
    "the CSV; with both, the maps come first, then a blank line, then the tokens).\n"
    "Files appear only when complete. Exit status: 0 success, 1 failure, 2 usage error.\n";

typedef struct gen_opts {
    const char *config, *text, *ids, *source, *source_ids, *maps, *tokens, *steps;
} gen_opts;

/* Keeps the last row of the logits, when wanted. */
typedef struct last_logits {
    float *row; /* [V] */
    int V;
    bool want, got;
} last_logits;

static bool logits_wants(void *user, const attn_capture_key *key) {
    const last_logits *ll = user;
    return ll->want && key->value == ATTN_V_LOGITS && !key->source;
}

static attn_status logits_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                       attn_error *err) {
    (void)key;
    last_logits *ll = user;
    if (v->rows < 1 || v->cols != ll->V)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "logits of unexpected shape [%d, %d]",
                              v->rows, v->cols);
    memcpy(ll->row, v->data + (size_t)(v->rows - 1) * (size_t)v->cols,
           (size_t)v->cols * sizeof(float));
    ll->got = true;
    return ATTN_OK;
}

typedef struct generator {
    attn_model *model;
    const attn_config *cfg;
    const attn_tokenizer *tok;
    attn_session *sess;
    attn_outfile maps_out, tokens_out;
    FILE *tokens_f;   /* tokens_out.f, or a temporary when both CSVs go to stdout */
    FILE *tokens_tmp;
    bool stream_text; /* print the text on stdout */
    attn_csv_maps maps;
    last_logits ll;
    attn_fanout fo;
    attn_capture cap;
    attn_run_info rc;
    attn_labels main_l, src_l;
    size_t labels_cap;
    int *seq;         /* [labels_cap] ids of the main stack */
    size_t n;         /* == main_l.n */
    char *text;       /* decode buffer */
    size_t text_cap;
} generator;

static int push_token(generator *g, int id, attn_error *err) {
    if (g->main_l.n == g->labels_cap) {
        size_t cap = g->labels_cap ? 2 * g->labels_cap : 64;
        char **t = realloc(g->main_l.text, cap * sizeof *t);
        if (t) g->main_l.text = t;
        int *q = t ? realloc(g->seq, cap * sizeof *q) : NULL;
        if (!q) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        g->seq = q;
        g->labels_cap = cap;
    }
    char num[ATTN_ID_TEXT_MAX];
    char *s = strdup(attn_token_text(g->tok, id, num, sizeof num));
    if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    g->main_l.text[g->main_l.n++] = s;
    g->seq[g->n++] = id;
    if (g->tokens_f) {
        fprintf(g->tokens_f, "%zu,%d,", g->n - 1, id);
        attn_csv_field(g->tokens_f, s);
        putc('\n', g->tokens_f);
    }
    return ATTN_OK;
}

/* Prints the text of id following prev (-1: none). */
static void print_token(generator *g, int prev, int id) {
    if (!g->stream_text) return;
    if (g->tok) {
        size_t len = attn_tokenizer_decode(g->tok, prev, id, g->text, g->text_cap);
        fwrite(g->text, 1, len, stdout);
    } else {
        printf("%s%d", prev < 0 ? "" : " ", id);
    }
    fflush(stdout);
}

static int open_outputs(generator *g, const gen_opts *o, attn_error *err) {
    int rc;
    bool maps_stdout = o->maps && strcmp(o->maps, "-") == 0;
    bool tokens_stdout = o->tokens && strcmp(o->tokens, "-") == 0;
    g->stream_text = !maps_stdout && !tokens_stdout;
    if (o->maps) {
        if ((rc = attn_outfile_open(&g->maps_out, o->maps, err))) return rc;
        attn_csv_maps_header(g->maps_out.f);
        g->maps = (attn_csv_maps){.f = g->maps_out.f, .run = &g->rc};
        if ((rc = attn_fanout_add(&g->fo, (attn_capture){attn_csv_maps_wants, attn_csv_maps_emit, &g->maps}, err))) return rc;
    }
    if (o->tokens) {
        if ((rc = attn_outfile_open(&g->tokens_out, o->tokens, err))) return rc;
        g->tokens_f = g->tokens_out.f;
        if (maps_stdout && tokens_stdout) {
            if (!(g->tokens_tmp = tmpfile()))
                return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
            g->tokens_f = g->tokens_tmp;
        }
        fputs("pos,token_id,token\n", g->tokens_f);
    }
    if ((rc = attn_fanout_add(&g->fo, (attn_capture){logits_wants, logits_emit, &g->ll}, err))) return rc;
    g->cap = attn_fanout_capture(&g->fo);
    return ATTN_OK;
}

static int close_outputs(generator *g, attn_error *err) {
    int rc = attn_outfile_commit(&g->maps_out, err);
    if (g->tokens_tmp && !rc) {
        putchar('\n');
        rewind(g->tokens_tmp);
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, g->tokens_tmp)) > 0) fwrite(buf, 1, got, stdout);
    }
    if (g->tokens_tmp) fclose(g->tokens_tmp);
    g->tokens_tmp = NULL;
    if (rc) {
        attn_outfile_abort(&g->tokens_out);
        return rc;
    }
    if ((rc = attn_outfile_commit(&g->tokens_out, err))) return rc;
    if (fflush(stdout) != 0 || ferror(stdout))
        return attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    return ATTN_OK;
}

static void generator_free(generator *g) {
    attn_outfile_abort(&g->maps_out);
    attn_outfile_abort(&g->tokens_out);
    if (g->tokens_tmp) fclose(g->tokens_tmp);
    attn_session_free(g->sess);
    attn_model_close(g->model);
    attn_labels_free(&g->main_l);
    attn_labels_free(&g->src_l);
    free(g->ll.row);
    free(g->seq);
    free(g->text);
}

/* Token ids from --ids or --text; what names the flag. */
static int prompt_ids(const generator *g, const char *text, const char *ids, const char *what,
                      bool drop_eos, int **out, size_t *n, attn_error *err) {
    int rc = cli_input_ids(g->cfg, g->tok, text, ids, what, out, n, err);
    if (rc || ids) return rc;
    int eos = attn_tokenizer_eos(g->tok);
    if (drop_eos && eos >= 0 && *n > 1 && (*out)[*n - 1] == eos) (*n)--;
    return ATTN_OK;
}

/* Runs the prompt, then generates; returns an exit status. */
static int generate(generator *g, const int *prompt, size_t pn, const int *src, size_t sn,
                    int steps) {
    attn_error err = {0};
    int rc;
    const int eos = g->tok ? attn_tokenizer_eos(g->tok) : -1;
    const size_t max = (size_t)g->cfg->max_seq_len;
    if (src) {
        attn_input in = {.ids = src, .n = sn};
        if ((rc = attn_session_encode(g->sess, &in, &g->cap, &err))) {
            attn_error_prefix(&err, "--source");
            return cli_lib_error(&err);
        }
    }
    if (pn > max)
        return cli_error(EXIT_USAGE, "the prompt has %zu tokens, more than max_seq_len %d", pn,
                         g->cfg->max_seq_len);
    for (size_t i = 0; i < pn; i++)
        if ((rc = push_token(g, prompt[i], &err))) return cli_lib_error(&err);
    g->ll.want = steps > 0;
    attn_input in = {.ids = g->seq, .n = pn};
    if ((rc = attn_session_forward(g->sess, &in, &g->cap, &err))) {
        attn_error_prefix(&err, "prompt");
        return cli_lib_error(&err);
    }
    bool printed = false;
    for (int step = 0; step < steps; step++) {
        if (!g->ll.got) return cli_error(EXIT_FAIL, "internal error: no logits");
        int next = attn_argmax(g->ll.row, g->ll.V);
        if (next == eos) break; /* the end of the text: silently */
        if (g->n >= max) {
            if (printed) putchar('\n');
            fflush(stdout);
            fprintf(stderr, "attn: stopped at max_seq_len %d\n", g->cfg->max_seq_len);
            return EXIT_OK;
        }
        int prev = g->seq[g->n - 1];
        if ((rc = push_token(g, next, &err))) return cli_lib_error(&err);
        print_token(g, prev, next);
        printed = true;
        g->ll.want = step + 1 < steps;
        g->ll.got = false;
        attn_input one = {.ids = &g->seq[g->n - 1], .n = 1};
        if ((rc = attn_session_forward(g->sess, &one, &g->cap, &err))) {
            if (g->stream_text) putchar('\n');
            return cli_lib_error(&err);
        }
    }
    if (printed && g->stream_text) putchar('\n');
    return EXIT_OK;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o = {0};
    const cli_flag flags[] = {
        {"config", 'c', .value = &o.config},
        {"text", .value = &o.text},
        {"ids", .value = &o.ids},
        {"steps", .value = &o.steps},
        {"source", .value = &o.source},
        {"source-ids", .value = &o.source_ids},
        {"maps", .value = &o.maps},
        {"tokens", .value = &o.tokens},
        {NULL},
    };
    bool help;
    attn_error perr = {0};
    if (cli_parse_flags(argc, argv, "generate", flags, &help, &perr)) return cli_lib_error(&perr);
    if (help) {
        fputs(generate_usage, stdout);
        return EXIT_OK;
    }
    if (!o.config) return cli_error(EXIT_USAGE, "--config PATH is required");
    if (!o.text && !o.ids) return cli_error(EXIT_USAGE, "give the prompt with --text or --ids");
    if (o.text && o.ids) return cli_error(EXIT_USAGE, "--text and --ids exclude each other");
    if (o.source && o.source_ids)
        return cli_error(EXIT_USAGE, "--source and --source-ids exclude each other");
    if (!o.steps) return cli_error(EXIT_USAGE, "--steps N is required");
    int steps;
    if (cli_parse_int(o.steps, "--steps", 0, INT_MAX, &steps, &perr)) return cli_lib_error(&perr);
    if (o.maps && o.tokens && strcmp(o.maps, "-") != 0 && strcmp(o.maps, o.tokens) == 0)
        return cli_error(EXIT_USAGE, "--maps and --tokens name the same file '%s'", o.maps);

    generator g = {0};
    attn_error err = {0};
    int status = EXIT_OK;
    int *ids = NULL, *src = NULL;
    size_t n = 0, sn = 0;
    const cli_model_needs needs = {.who = "generate", .decoding = true, .lm_head = true};
    if (cli_model_open(&g.model, o.config, &needs, &err)) return cli_lib_error(&err);
    g.cfg = attn_model_config(g.model);
    g.tok = attn_model_tokenizer(g.model);
    const char *src_flag = o.source ? "--source" : o.source_ids ? "--source-ids" : NULL;
    if (cli_check_source(g.cfg, src_flag, "--source or --source-ids", &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if ((o.source || o.source_ids) &&
        prompt_ids(&g, o.source, o.source_ids, o.source ? "--source" : "--source-ids", false,
                   &src, &sn, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    if (prompt_ids(&g, o.text, o.ids, o.text ? "--text" : "--ids", true, &ids, &n, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }

    g.ll.V = g.cfg->vocab_size;
    g.ll.row = calloc((size_t)g.ll.V, sizeof(float));
    g.text_cap = 1 << 17;
    g.text = malloc(g.text_cap);
    if (!g.ll.row || !g.text) {
        status = cli_error(EXIT_FAIL, "out of memory");
        goto done;
    }
    if (src && attn_labels_from_ids(&g.src_l, g.tok, src, sn)) {
        status = cli_error(EXIT_FAIL, "out of memory");
        goto done;
    }
    g.rc = (attn_run_info){.input = 0, .main = &g.main_l, .source = src ? &g.src_l : NULL,
                         .cfg = g.cfg};
    if (attn_session_new(&g.sess, g.model, &err) || open_outputs(&g, &o, &err)) {
        status = cli_lib_error(&err);
        goto done;
    }
    status = generate(&g, ids, n, src, sn, steps);
    if (status == EXIT_OK && close_outputs(&g, &err)) status = cli_lib_error(&err);
done:
    free(ids);
    free(src);
    generator_free(&g);
    return status;
}
