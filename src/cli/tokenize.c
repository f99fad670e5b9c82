/* attn tokenize: how the model's tokenizer cuts a text (ids and token
 * texts), and the other way, token ids decoded to text. One input from the
 * flags, or in batch mode one per line of standard input (bad lines are
 * reported with their number and skipped, as in 'attn run'). Readable, CSV
 * (input,pos,id,token) or JSON lines (cJSON). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tokenize_usage[] =
    "Usage: attn tokenize --config PATH [--text STRING | --ids N,N,...]\n"
    "                     [--ids-input] [--format text|csv|jsonl] [--no-special]\n"
    "                     [--special]\n"
    "\n"
    "Shows how the model's tokenizer cuts a text: the token ids and the text of\n"
    "each token. With --ids it decodes: the ids become the text they stand for.\n"
    "Without --text and --ids, each line of standard input is one input (batch\n"
    "mode, as in 'attn run'): a bad line is reported with its number and skipped,\n"
    "and the exit status is then 1.\n"
    "\n"
    "  --config PATH      the model's config file, or a folder holding config.json,\n"
    "                     or '-' (standard input; its relative paths are then from\n"
    "                     the current folder)\n"
    "  --text STRING      the text to tokenize\n"
    "  --ids N,N,...      token ids to decode into text\n"
    "  --ids-input        in batch mode, each line is token ids to decode\n"
    "  --format F         text (default: readable), csv (columns input,pos,id,token;\n"
    "                     token texts escaped as in 'attn run --maps') or jsonl\n"
    "                     (one object per input: input, text, ids, tokens)\n"
    "  --no-special       split special tokens (\"<mask>\", every <...> of the\n"
    "                     vocabulary) like other text, not as one token\n"
    "  --special          match the special tokens of a gpt2 tokenizer\n"
    "                     (\"<|endoftext|>\"), which are plain text without it\n"
    "  -h, --help         show this help\n"
    "\n"
    "The readable form lists pos, id and token (a token with a leading or trailing\n"
    "space is quoted; control bytes are shown as \\n, \\t, \\xNN). Decoding prints\n"
    "the text alone, without the tokenizer's bos and eos (encoding adds them), so\n"
    "that the text encodes back to the ids. In the CSV and JSON lines, input is 0\n"
    "for --text / --ids, else the 0-based index of the line; text is the input's\n"
    "text, or with ids the decoded text. A text or token that is not UTF-8 is\n"
    "written into the JSON with the escapes of the CSV (\\xNN).\n"
    "\n"
    "Examples:\n"
    "  attn tokenize --config models/tiny-decoder --text \"the cat sat\"\n"
    "  attn tokenize --config models/tiny-decoder --ids 3,17,42\n"
    "  printf 'the cat\\nthe dog\\n' | attn tokenize --config models/tiny-decoder --format csv\n"
    "\n"
    "Exit status: 0 success, 1 failure (in batch mode: some line was bad), 2 usage error.\n";

typedef enum { FMT_TEXT, FMT_CSV, FMT_JSONL } tok_format;

typedef struct tok_opts {
    const char *config, *text, *ids, *format;
    bool ids_input;
    tok_format fmt;
} tok_opts;

/* One input, tokenized or decoded. */
typedef struct tok_item {
    long input;       /* the CSV / JSON "input": 0, or the line's index */
    bool decoding;    /* the input was ids */
    const char *text; /* the text given (tokenizing) */
    int *ids;         /* [n] */
    size_t n;
    char *decoded;    /* the text of ids (decoding), malloc'd */
} tok_item;

static attn_status check_flags(tok_opts *o, attn_error *err) {
    if (!o->config) return cli_usage(err, "--config PATH is required");
    if (cli_check_special(err)) return ATTN_ERR_USAGE;
    if (o->text && o->ids) return cli_usage(err, "--text and --ids exclude each other");
    if (o->ids_input && (o->text || o->ids))
        return cli_usage(err, "--ids-input is for batch mode: drop --text / --ids");
    if (!o->format || strcmp(o->format, "text") == 0) o->fmt = FMT_TEXT;
    else if (strcmp(o->format, "csv") == 0) o->fmt = FMT_CSV;
    else if (strcmp(o->format, "jsonl") == 0) o->fmt = FMT_JSONL;
    else
        return cli_usage(err, "--format: expected 'text', 'csv' or 'jsonl', got '%s'",
                         o->format);
    const char *const stdin_flags[] = {"--config"};
    const char *const stdin_paths[] = {o->config};
    return cli_check_stdin(stdin_flags, stdin_paths, 1,
                           o->text || o->ids ? NULL : "--text or --ids", err);
}

/* The text of ids[n] as generated text reads (attn_tokenizer_decode, token
 * after token) into *out, malloc'd. The tokenizer's bos and eos are left
 * out (they are what encoding adds), so the text encodes back to the ids. */
static attn_status decode_ids(const attn_tokenizer *tok, const int *ids, size_t n, char **out,
                              attn_error *err) {
    enum { PIECE_MAX = 65536 + 16 }; /* a vocabulary entry, its space and a NUL */
    *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    char *piece = malloc(PIECE_MAX);
    bool ok = f && piece;
    const int bos = attn_tokenizer_bos(tok), eos = attn_tokenizer_eos(tok);
    for (size_t i = 0; ok && i < n; i++) {
        if (ids[i] == bos || ids[i] == eos) continue;
        size_t got = attn_tokenizer_decode(tok, i ? ids[i - 1] : -1, ids[i], piece, PIECE_MAX);
        ok = fwrite(piece, 1, got, f) == got;
    }
    free(piece);
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        free(*out);
        *out = NULL;
        return attn_error_set(err, ATTN_ERR_NOMEM, "decoding: out of memory");
    }
    return ATTN_OK;
}

/* Tokenizes or decodes one input: ids (a list "N,N,...") or text. `what`
 * names it in messages. */
static attn_status load_item(tok_item *it, const attn_model *m, const char *text,
                             const char *ids, const char *what, attn_error *err) {
    const attn_config *cfg = attn_model_config(m);
    const attn_tokenizer *tok = attn_model_tokenizer(m); /* cmd_tokenize checked it */
    it->decoding = ids != NULL;
    it->text = text;
    if (ids) {
        attn_status rc = cli_parse_ids(ids, cfg->vocab_size, what, &it->ids, &it->n, err);
        return rc ? rc : decode_ids(tok, it->ids, it->n, &it->decoded, err);
    }
    attn_status rc = attn_tokenizer_encode_flags(tok, text, strlen(text),
                                                 cli_encode_flags(),
                                                 &it->ids, &it->n, err);
    if (rc) attn_error_prefix(err, "%s", what);
    return rc;
}

static void item_free(tok_item *it) {
    free(it->ids);
    free(it->decoded);
    *it = (tok_item){0};
}

/* A token's text for the terminal: control bytes and bytes that are not
 * UTF-8 escaped (attn_escape_text), quoted when it begins or ends with a
 * space. */
static void put_token(FILE *f, const char *s) {
    const size_t n = strlen(s);
    size_t need = attn_escape_text(NULL, 0, s, n);
    char *buf = malloc(need + 1);
    if (buf) attn_escape_text(buf, need + 1, s, n);
    const char *show = buf ? buf : "?";
    const bool quote = n && (s[0] == ' ' || s[n - 1] == ' ');
    fprintf(f, quote ? "\"%s\"" : "%s", show);
    free(buf);
}

static void print_text(const tok_item *it, const attn_tokenizer *tok, bool batch) {
    if (it->decoding) {
        if (batch) printf("input %ld: ", it->input);
        printf("%s\n", it->decoded);
        return;
    }
    if (batch) printf("input %ld: ", it->input);
    printf("%zu token%s\n", it->n, it->n == 1 ? "" : "s");
    printf("%5s %7s  %s\n", "pos", "id", "token");
    for (size_t i = 0; i < it->n; i++) {
        char num[ATTN_ID_TEXT_MAX];
        printf("%5zu %7d  ", i, it->ids[i]);
        put_token(stdout, attn_token_text(tok, it->ids[i], num, sizeof num));
        putchar('\n');
    }
}

static void print_csv(const tok_item *it, const attn_tokenizer *tok) {
    for (size_t i = 0; i < it->n; i++) {
        char num[ATTN_ID_TEXT_MAX];
        printf("%ld,%zu,%d,", it->input, i, it->ids[i]);
        attn_csv_field(stdout, attn_token_text(tok, it->ids[i], num, sizeof num), false);
        putchar('\n');
    }
}

/* Is s[0..n) well-formed UTF-8? attn_escape_text leaves such text as it is
 * but for its control bytes (and DEL) and backslashes: \n \t \r \\ add one
 * byte each, \xNN three; every byte that is not UTF-8 adds three more. */
static bool is_utf8(const char *s, size_t n) {
    size_t want = n;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t' || c == '\r' || c == '\\') want += 1;
        else if (c < 0x20 || c == 0x7f) want += 3;
    }
    return attn_escape_text(NULL, 0, s, n) == want;
}

/* A JSON string of s: as it is when it is UTF-8 (cJSON escapes control
 * bytes), else with the visible escapes of the CSV (attn_escape_text). */
static cJSON *json_text(const char *s) {
    const size_t n = strlen(s);
    if (is_utf8(s, n)) return cJSON_CreateString(s);
    const size_t need = attn_escape_text(NULL, 0, s, n);
    char *buf = malloc(need + 1);
    cJSON *j = buf ? cJSON_CreateString((attn_escape_text(buf, need + 1, s, n), buf)) : NULL;
    free(buf);
    return j;
}

static attn_status print_jsonl(const tok_item *it, const attn_tokenizer *tok, attn_error *err) {
    cJSON *o = cJSON_CreateObject(), *ids = NULL, *tokens = NULL;
    cJSON *text = json_text(it->decoding ? it->decoded : it->text);
    bool ok = o && text && cJSON_AddNumberToObject(o, "input", (double)it->input) &&
              cJSON_AddItemToObject(o, "text", text);
    if (!ok) cJSON_Delete(text);
    ok = ok && (ids = cJSON_AddArrayToObject(o, "ids")) &&
         (tokens = cJSON_AddArrayToObject(o, "tokens"));
    for (size_t i = 0; ok && i < it->n; i++) {
        char num[ATTN_ID_TEXT_MAX];
        cJSON *id = cJSON_CreateNumber(it->ids[i]);
        cJSON *t = json_text(attn_token_text(tok, it->ids[i], num, sizeof num));
        ok = id && t && cJSON_AddItemToArray(ids, id) && cJSON_AddItemToArray(tokens, t);
        if (!ok) {
            cJSON_Delete(id);
            cJSON_Delete(t);
        }
    }
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line) return attn_error_set(err, ATTN_ERR_NOMEM, "tokenize: out of memory");
    puts(line);
    cJSON_free(line);
    return ATTN_OK;
}

static attn_status print_item(const tok_opts *o, const tok_item *it, const attn_model *m,
                              bool batch, attn_error *err) {
    const attn_tokenizer *tok = attn_model_tokenizer(m);
    switch (o->fmt) {
    case FMT_TEXT: print_text(it, tok, batch); break;
    case FMT_CSV: print_csv(it, tok); break;
    case FMT_JSONL: return print_jsonl(it, tok, err);
    }
    return ATTN_OK;
}

/* What the lines of batch mode share. */
typedef struct tok_batch {
    const tok_opts *o;
    const attn_model *m;
} tok_batch;

/* One line of batch mode (cli_line_fn). */
static attn_status do_line(void *ctx, long index, char *line, size_t len, const char *what,
                           attn_error *err) {
    const tok_batch *b = ctx;
    char *source, *text;
    attn_status rc = cli_split_batch_line(line, len, false, what, &source, &text, err);
    if (rc) return rc;
    tok_item it = {.input = index};
    const bool ids = b->o->ids_input;
    rc = load_item(&it, b->m, ids ? NULL : text, ids ? text : NULL, what, err);
    if (!rc) rc = print_item(b->o, &it, b->m, true, err);
    item_free(&it);
    return rc;
}

/* Batch mode, with the bad-line rules of 'attn run' (cli_batch_each). */
static attn_status do_batch(const tok_opts *o, const attn_model *m, bool *bad_lines,
                            attn_error *err) {
    if (cli_stdin_closed)
        return cli_usage(err, "standard input is closed: give --text or --ids, or one input "
                              "per line on standard input");
    tok_batch b = {o, m};
    return cli_batch_each(stdin, do_line, &b, NULL, bad_lines, err);
}

static attn_status do_one(const tok_opts *o, const attn_model *m, attn_error *err) {
    tok_item it = {0};
    attn_status rc = load_item(&it, m, o->text, o->ids, o->ids ? "--ids" : "--text", err);
    if (!rc && o->fmt == FMT_CSV) puts("input,pos,id,token");
    if (!rc) rc = print_item(o, &it, m, false, err);
    item_free(&it);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tok_opts o = {0};
    bool help = false;
    const cli_flag flags[] = {
        {"config", 'c', .value = &o.config},
        {"text", .value = &o.text},
        {"ids", .value = &o.ids},
        {"ids-input", .set = &o.ids_input},
        {"format", .value = &o.format},
        {"no-special", .set = &cli_no_special},
        {"special", .set = &cli_special},
        {NULL},
    };
    attn_error err = {0};
    if (cli_parse_flags(argc, argv, "tokenize", flags, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(tokenize_usage);
    if (check_flags(&o, &err)) return cli_lib_error(&err);
    attn_model *m = NULL;
    attn_status rc = cli_model_open(&m, o.config, NULL, &err);
    bool bad_lines = false;
    if (!rc && !attn_model_tokenizer(m))
        rc = cli_usage(&err, "--config %s: the model has no tokenizer (its config names none)",
                       o.config);
    if (!rc && o.fmt == FMT_CSV && !o.text && !o.ids) puts("input,pos,id,token");
    if (!rc) rc = o.text || o.ids ? do_one(&o, m, &err) : do_batch(&o, m, &bad_lines, &err);
    attn_model_close(m);
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = attn_error_set(&err, ATTN_ERR_IO, "standard output: write error");
    if (rc) return cli_lib_error(&err);
    return bad_lines ? EXIT_FAIL : EXIT_OK;
}
