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
    "Usage: attn generate --config PATH [--text STRING | --ids N,N,...] --steps N\n"
    "                     [--source STRING | --source-ids N,...] [--maps FILE] [--tokens FILE]\n"
    "\n"
    "Continues the prompt greedily: at each step the most likely next token (the\n"
    "lowest id on ties) is appended and fed back, reusing the key/value cache. The\n"
    "generated text (not the prompt) is printed on standard output as it is made.\n"
    "Generation stops after N tokens, at the tokenizer's end-of-sequence token (its\n"
    "\"eos\", e.g. </s>; not printed, not fed, not listed), or when the sequence\n"
    "reaches max_seq_len (with a warning on standard error). Decoder and\n"
    "encoder-decoder models with an lm_head.\n"
    "\n"
    "  --config PATH         the model's config file, or a folder holding config.json,\n"
    "                        or '-' (standard input; its relative paths are then from\n"
    "                        the current folder)\n"
    "  --text STRING         the prompt, tokenized by the model's tokenizer (a trailing\n"
    "                        end-of-sequence token that the tokenizer adds is dropped)\n"
    "  --ids N,N,...         the prompt as token ids\n"
    "                        (a decoder needs one of the two; without them an\n"
    "                        encoder-decoder starts from the tokenizer's bos alone)\n"
    "  --steps N             how many tokens to generate (0: run the prompt only)\n"
    "  --threads N           threads of the matrix products (default: $ATTN_THREADS,\n"
    "                        else the online cores); the output is the same for any N\n"
    "  --source STRING       encoder input of an encoder-decoder model (encoded once)\n"
    "  --source-ids N,N,...  the same as token ids\n"
    "  --no-special          split special tokens (\"<mask>\", every <...> of the\n"
    "                        vocabulary) in --text / --source like other text\n"
    "  --special             match the special tokens of a gpt2 tokenizer\n"
    "                        (\"<|endoftext|>\"), which are plain text without it\n"
    "  --maps FILE           attention weights of the whole sequence as CSV, in the\n"
    "                        columns of 'attn run --maps' ('-' = standard output)\n"
    "  --tokens FILE         every position as CSV: pos,token_id,token (the prompt,\n"
    "                        then the generated tokens; '-' = standard output)\n"
    "  --raw-text            write the token texts of the CSVs as they are (see below)\n"
    "  -h, --help            show this help\n"
    "\n"
    "When --maps or --tokens is '-', the text is not printed (standard output carries\n"
    "the CSV; with both, the maps come first, then a blank line, then the tokens).\n"
    "Token texts in the CSVs: one record per line. Control bytes are written as\n"
    "\\n \\t \\r or \\xNN, a backslash as \\\\, and bytes that are not valid UTF-8 as\n"
    "\\xNN; a field with a comma, a quote or leading/trailing spaces is quoted\n"
    "(RFC 4180). --raw-text keeps the bytes as they are (quoted when they hold a\n"
    "line break). The text on standard output is always as decoded.\n"
    "\n"
    "Examples:\n"
    "  attn generate --config models/tiny-decoder --text \"the cat\" --steps 5\n"
    "  attn generate --config models/tiny-translator --source \"the cat sits on the mat .\" --steps 10\n"
    "  attn generate --config models/tiny-decoder --text \"the sun\" --steps 4 --tokens tokens.csv\n"
    "\n"
    "Files appear only when complete. Exit status: 0 success, 1 failure, 2 usage error.\n";

typedef struct gen_opts {
    const char *config, *steps, *maps, *tokens, *threads;
    cli_input_args prompt; /* --text, --ids */
    cli_input_args source; /* --source, --source-ids */
    bool raw_text;         /* --raw-text */
    int n_steps;           /* --steps N (check_flags) */
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
    bool raw_text;    /* --raw-text: the CSVs' token texts as they are */
    attn_csv_maps maps;
    last_logits ll;
    attn_fanout fo;
    attn_capture cap;
    attn_run_info rc;
    cli_input source; /* the encoder input of an encoder-decoder */
    int *prompt;      /* [prompt_n] */
    size_t prompt_n;
    attn_labels main_l;
    size_t labels_cap;
    int *seq;         /* [labels_cap] ids of the main stack */
    size_t n;         /* == main_l.n */
    char *text;       /* decode buffer */
    size_t text_cap;
} generator;

static attn_status parse_flags(int argc, char **argv, gen_opts *o, bool *help, attn_error *err) {
    const cli_flag flags[] = {
        {"config", 'c', .value = &o->config},
        {"text", .value = &o->prompt.text},
        {"ids", .value = &o->prompt.ids},
        {"steps", .value = &o->steps},
        {"threads", .value = &o->threads},
        {"source", .value = &o->source.text},
        {"source-ids", .value = &o->source.ids},
        {"maps", .value = &o->maps},
        {"tokens", .value = &o->tokens},
        {"raw-text", .set = &o->raw_text},
        {"no-special", .set = &cli_no_special},
        {"special", .set = &cli_special},
        {NULL},
    };
    return cli_parse_flags(argc, argv, "generate", flags, help, err);
}

/* Refuses missing flags and flags that exclude each other; parses --steps. */
static attn_status check_flags(gen_opts *o, attn_error *err) {
    if (!o->config) return cli_usage(err, "--config PATH is required");
    if (cli_check_special(err)) return ATTN_ERR_USAGE;
    if (o->prompt.text && o->prompt.ids)
        return cli_usage(err, "--text and --ids exclude each other");
    if (o->source.text && o->source.ids)
        return cli_usage(err, "--source and --source-ids exclude each other");
    if (!o->steps) return cli_usage(err, "--steps N is required");
    attn_status rc = cli_parse_int(o->steps, "--steps", 0, INT_MAX, &o->n_steps, err);
    if (rc || (rc = cli_threads(o->threads, err))) return rc;
    if (o->raw_text && !o->maps && !o->tokens)
        return cli_usage(err, "--raw-text needs a CSV output: --maps or --tokens");
    if (cli_same_file(o->maps, o->tokens))
        return cli_usage(err, "--maps and --tokens name the same file '%s'", o->maps);
    const char *const stdin_flag[] = {"--config"};
    return cli_check_stdin(stdin_flag, &o->config, 1, NULL, err);
}

/* Opens the output files before any work, so that a path that cannot be
 * written (a missing folder, a directory) fails at once; open_outputs
 * writes into them. */
static attn_status open_files(generator *g, const gen_opts *o, attn_error *err) {
    attn_status rc = ATTN_OK;
    if (o->maps) rc = attn_outfile_open(&g->maps_out, o->maps, err);
    if (!rc && o->tokens) rc = attn_outfile_open(&g->tokens_out, o->tokens, err);
    return rc;
}

/* Opens the model; refuses one that cannot generate and a source that does
 * not fit it. */
static attn_status open_model(generator *g, const gen_opts *o, attn_error *err) {
    const cli_model_needs needs = {.who = "generate", .decoding = true, .lm_head = true};
    attn_status rc = cli_model_open(&g->model, o->config, &needs, err);
    if (rc) return rc;
    g->cfg = attn_model_config(g->model);
    g->tok = attn_model_tokenizer(g->model);
    if (!cli_input_flag(&o->prompt, false) && g->cfg->arch != ATTN_ARCH_ENCODER_DECODER)
        return cli_usage(err, "give the prompt with --text or --ids");
    return cli_check_source(g->cfg, cli_input_flag(&o->source, true), "--source or --source-ids",
                            err);
}

/* The prompt of an encoder-decoder given none: the decoder's start token. */
static attn_status start_prompt(generator *g, attn_error *err) {
    const int bos = g->tok ? attn_tokenizer_bos(g->tok) : -1;
    if (bos < 0 && !g->tok)
        return cli_usage(err, "the model has no tokenizer, so no start token (bos) to begin "
                              "decoding from: give the decoder's first tokens with --ids");
    if (bos < 0)
        return cli_usage(err, "the model's tokenizer has no start token (bos) to begin decoding "
                              "from: give the decoder's first tokens with --text or --ids");
    if (!(g->prompt = malloc(sizeof *g->prompt)))
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    g->prompt[0] = bos;
    g->prompt_n = 1;
    return ATTN_OK;
}

/* The source (an encoder-decoder has one, see open_model) and the prompt's
 * ids; from text, a trailing end-of-sequence token that the tokenizer adds
 * is dropped: the text is to be continued, not ended. Without a prompt (an
 * encoder-decoder, see open_model) the decoder starts from bos alone. */
static attn_status load_inputs(generator *g, const gen_opts *o, attn_error *err) {
    attn_status rc;
    const char *src_flag = cli_input_flag(&o->source, true);
    if (src_flag && (rc = cli_input_load(&g->source, g->model, &o->source, src_flag, err)))
        return rc;
    const cli_input_args *p = &o->prompt;
    if (!cli_input_flag(p, false)) return start_prompt(g, err);
    rc = cli_input_ids(g->cfg, g->tok, p->text, p->ids, cli_input_flag(p, false), &g->prompt,
                       &g->prompt_n, err);
    if (rc || p->ids) return rc;
    const int eos = attn_tokenizer_eos(g->tok);
    if (eos >= 0 && g->prompt_n > 1 && g->prompt[g->prompt_n - 1] == eos) g->prompt_n--;
    return ATTN_OK;
}

/* The buffers for the logits and the decoded text, and the labels the
 * writers see. */
static attn_status generator_init(generator *g, attn_error *err) {
    g->ll.V = g->cfg->vocab_size;
    g->ll.row = calloc((size_t)g->ll.V, sizeof(float));
    g->text_cap = 1 << 17;
    g->text = malloc(g->text_cap);
    if (!g->ll.row || !g->text) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    const bool encdec = g->cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    g->rc = (attn_run_info){.input = 0, .main = &g->main_l,
                            .source = encdec ? &g->source.labels : NULL, .cfg = g->cfg};
    return ATTN_OK;
}

/* Appends id to the sequence: its id, its label and its row of --tokens. */
static attn_status push_token(generator *g, int id, attn_error *err) {
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
        attn_csv_field(g->tokens_f, s, g->raw_text);
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

static attn_status open_outputs(generator *g, const gen_opts *o, attn_error *err) {
    attn_status rc;
    bool maps_stdout = o->maps && strcmp(o->maps, "-") == 0;
    bool tokens_stdout = o->tokens && strcmp(o->tokens, "-") == 0;
    g->stream_text = !maps_stdout && !tokens_stdout;
    g->raw_text = o->raw_text;
    if (o->maps) {
        attn_csv_maps_header(g->maps_out.f);
        g->maps = (attn_csv_maps){.f = g->maps_out.f, .run = &g->rc, .raw_text = o->raw_text};
        attn_capture maps = {attn_csv_maps_wants, attn_csv_maps_emit, &g->maps};
        if ((rc = attn_fanout_add(&g->fo, maps, err))) return rc;
    }
    if (o->tokens) {
        g->tokens_f = g->tokens_out.f;
        if (maps_stdout && tokens_stdout) {
            if (!(g->tokens_tmp = tmpfile()))
                return attn_error_set(err, ATTN_ERR_IO, "cannot create a temporary file");
            g->tokens_f = g->tokens_tmp;
        }
        fputs("pos,token_id,token\n", g->tokens_f);
    }
    attn_capture logits = {logits_wants, logits_emit, &g->ll};
    if ((rc = attn_fanout_add(&g->fo, logits, err))) return rc;
    g->cap = attn_fanout_capture(&g->fo);
    return ATTN_OK;
}

static attn_status close_outputs(generator *g, attn_error *err) {
    attn_status rc = attn_outfile_commit(&g->maps_out, err);
    cli_spool(&g->tokens_tmp, !rc); /* both on stdout: maps, a blank line, then the tokens */
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
    cli_input_free(&g->source);
    free(g->prompt);
    attn_labels_free(&g->main_l);
    free(g->ll.row);
    free(g->seq);
    free(g->text);
}

/* Encodes the source, then runs the prompt; keeps its last logits when
 * want_logits. */
static attn_status run_prompt(generator *g, bool want_logits, attn_error *err) {
    attn_status rc;
    if (g->cfg->arch == ATTN_ARCH_ENCODER_DECODER) {
        attn_input si = cli_input_view(&g->source);
        if ((rc = attn_session_encode(g->sess, &si, &g->cap, err))) {
            attn_error_prefix(err, "--source");
            return rc;
        }
    }
    if (g->prompt_n > (size_t)g->cfg->max_seq_len)
        return cli_usage(err, "the prompt has %zu tokens, more than max_seq_len %d", g->prompt_n,
                         g->cfg->max_seq_len);
    for (size_t i = 0; i < g->prompt_n; i++)
        if ((rc = push_token(g, g->prompt[i], err))) return rc;
    g->ll.want = want_logits;
    attn_input in = {.ids = g->seq, .n = g->prompt_n};
    if ((rc = attn_session_forward(g->sess, &in, &g->cap, err))) attn_error_prefix(err, "prompt");
    return rc;
}

/* Runs the prompt, then generates up to `steps` tokens, each fed back alone. */
static attn_status generate(generator *g, int steps, attn_error *err) {
    attn_status rc = run_prompt(g, steps > 0, err);
    if (rc) return rc;
    const int eos = g->tok ? attn_tokenizer_eos(g->tok) : -1;
    const size_t max = (size_t)g->cfg->max_seq_len;
    bool printed = false;
    for (int step = 0; step < steps; step++) {
        if (!g->ll.got) return attn_error_set(err, ATTN_ERR_INTERNAL, "internal error: no logits");
        int next = attn_argmax(g->ll.row, g->ll.V);
        if (next == eos) break; /* the end of the text: silently */
        if (g->n >= max) {
            if (printed) putchar('\n');
            fflush(stdout);
            fprintf(stderr, "attn: stopped at max_seq_len %d\n", g->cfg->max_seq_len);
            return ATTN_OK;
        }
        int prev = g->seq[g->n - 1];
        if ((rc = push_token(g, next, err))) return rc;
        print_token(g, prev, next);
        printed = true;
        g->ll.want = step + 1 < steps;
        g->ll.got = false;
        attn_input one = {.ids = &g->seq[g->n - 1], .n = 1};
        if ((rc = attn_session_forward(g->sess, &one, &g->cap, err))) {
            if (g->stream_text) putchar('\n');
            return rc;
        }
    }
    if (printed && g->stream_text) putchar('\n');
    return ATTN_OK;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o = {0};
    bool help = false;
    attn_error err = {0};
    if (parse_flags(argc, argv, &o, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(generate_usage);
    generator g = {0};
    int status = EXIT_OK;
    if (check_flags(&o, &err) || open_files(&g, &o, &err) || open_model(&g, &o, &err) ||
        load_inputs(&g, &o, &err) || generator_init(&g, &err) ||
        attn_session_new(&g.sess, g.model, &err) || open_outputs(&g, &o, &err) ||
        generate(&g, o.n_steps, &err) || close_outputs(&g, &err))
        status = cli_lib_error(&err);
    generator_free(&g);
    return status;
}
