/* What the commands share: errors, flags, numbers and id lists, the model,
 * inputs, and output held back for standard output. */
#include "cli.h"
#include "view.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- errors ---- */

/* Writes s to f with every control byte (and DEL) as \xNN, so that a name
 * or value taken from a file or a flag cannot drive the terminal (ESC, BEL). */
static void put_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            putc(*p, f);
    }
}

int cli_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    fputs("attn: ", stderr);
    if (n >= 0) put_escaped(stderr, msg);
    else fputs("(message lost: out of memory)", stderr);
    fputc('\n', stderr);
    free(msg);
    return code;
}

int cli_exit_code(int status) { return status == ATTN_ERR_USAGE ? EXIT_USAGE : EXIT_FAIL; }

int cli_lib_error(const attn_error *err) {
    return cli_error(cli_exit_code(err->status), "%s", err->message);
}

attn_status cli_usage(attn_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = ATTN_ERR_USAGE;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return ATTN_ERR_USAGE;
}

/* ---- flags ---- */

int cli_help(const char *usage) {
    fputs(usage, stdout);
    return EXIT_OK;
}

/* More than any command has (the tables are written in the commands). */
#define CLI_FLAGS_MAX 48

/* The flag getopt_long returned as c: its short name, or 256 + its index. */
static const cli_flag *flag_of(const cli_flag *flags, size_t n, int c) {
    if (c >= 256) return (size_t)(c - 256) < n ? &flags[c - 256] : NULL;
    for (size_t i = 0; i < n; i++)
        if (flags[i].short_name && flags[i].short_name == c) return &flags[i];
    return NULL;
}

attn_status cli_parse_flags(int argc, char **argv, const char *cmd, const cli_flag *flags,
                            bool *help, attn_error *err) {
    struct option longopts[CLI_FLAGS_MAX + 2];
    char shorts[2 * CLI_FLAGS_MAX + 3] = ":h"; /* the leading ':': a missing value returns ':' */
    size_t n = 0, ns = 2;
    *help = false;
    for (; flags[n].name; n++) {
        if (n == CLI_FLAGS_MAX)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: more than %d flags", cmd,
                                  CLI_FLAGS_MAX);
        const cli_flag *f = &flags[n];
        int has_arg = f->value ? required_argument : no_argument;
        longopts[n] = (struct option){f->name, has_arg, NULL, f->short_name ? f->short_name
                                                                           : 256 + (int)n};
        if (f->short_name) {
            shorts[ns++] = f->short_name;
            if (f->value) shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    optind = 1;
    bool given[CLI_FLAGS_MAX] = {0};
    int c;
    while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        if (c == 'h') {
            *help = true;
            return ATTN_OK;
        }
        if (c == ':')
            return cli_usage(err, "%s needs a value (see 'attn %s --help')", argv[optind - 1],
                             cmd);
        const cli_flag *f = flag_of(flags, n, c);
        if (!f)
            return cli_usage(err, "unknown option '%s' (see 'attn %s --help')", argv[optind - 1],
                             cmd);
        if (f->value && given[f - flags])
            return cli_usage(err, "--%s given twice (see 'attn %s --help')", f->name, cmd);
        given[f - flags] = true;
        if (f->value) *f->value = optarg;
        else *f->set = true;
    }
    if (optind < argc)
        return cli_usage(err, "unexpected argument '%s' (see 'attn %s --help')", argv[optind],
                         cmd);
    return ATTN_OK;
}

/* ---- numbers and id lists ---- */

attn_status cli_parse_int(const char *s, const char *flag, int min, int max, int *out,
                          attn_error *err) {
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    bool number = end != s && *end == '\0' && errno != ERANGE;
    if (!number && min == INT_MIN && max == INT_MAX)
        return cli_usage(err, "%s: expected an integer, got '%s'", flag, s);
    if (!number || v < min || v > max)
        return cli_usage(err, "%s: expected an integer from %d to %d, got '%s'", flag, min, max,
                         s);
    *out = (int)v;
    return ATTN_OK;
}

attn_status cli_parse_width(const char *s, int *cols, attn_error *err) {
    int v = 0;
    if (cli_parse_int(s, "--width", 0, OUT_WIDTH_MAX, &v, NULL) || (v > 0 && v < OUT_WIDTH_MIN))
        return cli_usage(err, "--width: expected 0 (no limit) or a width from %d to %d, got '%s'",
                         OUT_WIDTH_MIN, OUT_WIDTH_MAX, s);
    *cols = v;
    return ATTN_OK;
}

attn_status cli_parse_ids(const char *s, int vocab_size, const char *what, int **ids, size_t *n,
                          attn_error *err) {
    *ids = NULL;
    *n = 0;
    size_t cap = 16, count = 0;
    int *out = malloc(cap * sizeof *out);
    if (!out) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", what);
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' && count == 0) break; /* empty list */
        errno = 0;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || errno == ERANGE || v < INT_MIN || v > INT_MAX) {
            int len = 0;
            while (p[len] && p[len] != ',' && len < 32) len++;
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE, "%s: '%.*s' is not a token id", what, len,
                                  p);
        }
        if (v < 0 || v >= vocab_size) {
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: token id %ld is outside the vocabulary (0..%d)", what, v,
                                  vocab_size - 1);
        }
        if (count == cap) {
            cap *= 2;
            int *grown = realloc(out, cap * sizeof *out);
            if (!grown) {
                free(out);
                return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", what);
            }
            out = grown;
        }
        out[count++] = (int)v;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        if (*p != ',') {
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: expected ',' between token ids, found '%c'", what, *p);
        }
        p++;
    }
    if (count == 0) {
        free(out);
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: no token ids", what);
    }
    *ids = out;
    *n = count;
    return ATTN_OK;
}

bool cli_no_special;
bool cli_special;

unsigned cli_encode_flags(void) {
    return cli_no_special ? ATTN_ENCODE_NO_SPECIAL : cli_special ? ATTN_ENCODE_SPECIAL : 0u;
}

attn_status cli_check_special(attn_error *err) {
    if (cli_special && cli_no_special)
        return cli_usage(err, "--special and --no-special exclude each other");
    return ATTN_OK;
}

attn_status cli_input_ids(const attn_config *cfg, const attn_tokenizer *tok, const char *text,
                          const char *ids, const char *what, int **out, size_t *n,
                          attn_error *err) {
    *out = NULL;
    *n = 0;
    if (ids) return cli_parse_ids(ids, cfg->vocab_size, what, out, n, err);
    if (!tok)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "%s: the model has no tokenizer; give token ids instead", what);
    attn_status rc = attn_tokenizer_encode_flags(
        tok, text, strlen(text), cli_encode_flags(), out, n, err);
    if (rc) {
        attn_error_prefix(err, "%s", what);
        return rc;
    }
    if (*n == 0) {
        free(*out);
        *out = NULL;
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: the text has no tokens", what);
    }
    return ATTN_OK;
}

/* ---- standard input and streams ---- */

bool cli_stdin_closed; /* set by main.c */

bool cli_reads_stdin(const char *path) {
    if (!path) return false;
    if (strcmp(path, "-") == 0) return true;
    struct stat sp, s0;
    return stat(path, &sp) == 0 && !S_ISREG(sp.st_mode) && fstat(0, &s0) == 0 &&
           sp.st_dev == s0.st_dev && sp.st_ino == s0.st_ino;
}

attn_status cli_check_stdin(const char *const *flags, const char *const *paths, size_t n,
                            const char *batch_inputs, attn_error *err) {
    const char *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!cli_reads_stdin(paths[i])) continue;
        if (cli_stdin_closed && strcmp(paths[i], "-") == 0)
            return cli_usage(err, "%s -: standard input is closed", flags[i]);
        if (first)
            return cli_usage(err, "%s and %s both read standard input: give one of them a file",
                             first, flags[i]);
        if (batch_inputs)
            return cli_usage(err,
                             "%s reads standard input, which batch mode reads as its inputs: "
                             "give %s",
                             flags[i], batch_inputs);
        first = flags[i];
    }
    return ATTN_OK;
}

/* ---- the model ---- */

/* A config read as a stream rather than as a file in a folder: "-", a path
 * under /dev/ or /proc/ (/dev/stdin, /dev/fd/N, /proc/self/fd/N), or an
 * existing path that is no regular file or folder (a FIFO, a device). */
static bool config_is_stream(const char *path) {
    struct stat sb;
    return strcmp(path, "-") == 0 || strncmp(path, "/dev/", 5) == 0 ||
           strncmp(path, "/proc/", 6) == 0 ||
           (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode));
}

/* Opens the model of a config read whole from a stream (at most
 * ATTN_CONFIG_FILE_MAX bytes); its relative paths are resolved against the
 * current folder, since a stream has none. */
static attn_status model_open_stream(attn_model **out, const char *path, attn_error *err) {
    const bool std = strcmp(path, "-") == 0;
    const char *name = std ? "standard input" : path;
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf;
    size_t len;
    attn_status rc = attn_read_stream(f, ATTN_CONFIG_FILE_MAX, name, "a config", &buf, &len, err);
    if (!std) fclose(f);
    if (rc) return rc;
    attn_config cfg;
    rc = attn_config_parse(&cfg, buf, len, name, ".", err);
    free(buf);
    return rc ? rc : attn_model_open_config(out, &cfg, name, err);
}

/* Opens the model of `config`: a config file, a model folder holding
 * config.json, or a stream (config_is_stream). */
static attn_status model_open_any(attn_model **out, const char *config, attn_error *err) {
    *out = NULL;
    struct stat sb;
    if (config_is_stream(config)) return model_open_stream(out, config, err);
    if (stat(config, &sb) != 0 || !S_ISDIR(sb.st_mode)) return attn_model_open(out, config, err);
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s%sconfig.json", config,
                     config[strlen(config) - 1] == '/' ? "" : "/");
    if (n < 0 || (size_t)n >= sizeof path)
        return attn_error_set(err, ATTN_ERR_IO, "%s: the path is too long", config);
    if (stat(path, &sb) != 0)
        return attn_error_set(err, ATTN_ERR_IO, "%s: a folder without config.json", config);
    return attn_model_open(out, path, err);
}

attn_status cli_model_open(attn_model **out, const char *config, const cli_model_needs *needs,
                           attn_error *err) {
    attn_status rc = model_open_any(out, config, err);
    if (rc || !needs) return rc;
    const attn_config *cfg = attn_model_config(*out);
    if (needs->decoding && cfg->arch == ATTN_ARCH_ENCODER)
        rc = cli_usage(err,
                       "%s: the model is an encoder (bidirectional); generation needs a decoder "
                       "or an encoder-decoder",
                       needs->who);
    else if (needs->lm_head && cfg->lm_head == ATTN_LM_HEAD_NONE)
        rc = cli_usage(err,
                       "%s: the model has no lm_head (lm_head \"none\"), so it predicts no tokens",
                       needs->who);
    if (rc) {
        attn_model_close(*out);
        *out = NULL;
    }
    return rc;
}

attn_status cli_check_source(const attn_config *cfg, const char *flag, const char *required,
                             attn_error *err) {
    const bool encdec = cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    if (flag && !encdec)
        return cli_usage(err, "%s: the model is %s %s, not an encoder-decoder", flag,
                         cfg->arch == ATTN_ARCH_ENCODER ? "an" : "a", attn_arch_name(cfg->arch));
    if (!flag && encdec && required)
        return cli_usage(err, "the model is an encoder-decoder: give its encoder input with %s",
                         required);
    return ATTN_OK;
}

/* ---- inputs ---- */

const char *cli_input_flag(const cli_input_args *a, bool source) {
    if (a->text) return source ? "--source" : "--text";
    if (a->ids) return source ? "--source-ids" : "--ids";
    if (a->emb) return source ? "--source-embeddings" : "--embeddings";
    return NULL;
}

/* The vectors of --embeddings PATH: a file, or standard input for "-" (read
 * whole, at most ATTN_EMBEDDINGS_FILE_MAX bytes; .npy when it begins with the .npy
 * magic, else CSV). */
static attn_status load_vectors(cli_input *in, const char *path, const attn_config *cfg,
                                attn_error *err) {
    if (strcmp(path, "-") != 0)
        return attn_embeddings_load(&in->vec, &in->n, path, cfg->d_model, cfg->max_seq_len, err);
    in->emb_path = "standard input";
    char *buf;
    size_t len;
    attn_status rc = attn_read_stream(stdin, ATTN_EMBEDDINGS_FILE_MAX, in->emb_path,
                                      "an embeddings file", &buf, &len, err);
    if (rc) return rc;
    rc = attn_embeddings_parse(&in->vec, &in->n, buf, len, cfg->d_model, cfg->max_seq_len,
                               in->emb_path, err);
    free(buf);
    return rc;
}

attn_status cli_input_load(cli_input *in, const attn_model *m, const cli_input_args *a,
                           const char *what, attn_error *err) {
    const attn_config *cfg = attn_model_config(m);
    const attn_tokenizer *tok = attn_model_tokenizer(m);
    attn_status rc;
    if (a->emb) {
        in->emb_path = a->emb;
        rc = load_vectors(in, a->emb, cfg, err);
        if (rc) {
            attn_error_prefix(err, "%s", what);
            return rc;
        }
        rc = attn_labels_from_positions(&in->labels, in->n);
    } else {
        rc = cli_input_ids(cfg, tok, a->text, a->ids, what, &in->ids, &in->n, err);
        if (rc) return rc;
        rc = attn_labels_from_ids(&in->labels, tok, in->ids, in->n);
    }
    return rc ? attn_error_set(err, ATTN_ERR_NOMEM, "out of memory") : ATTN_OK;
}

void cli_input_free(cli_input *in) {
    free(in->ids);
    free(in->vec);
    attn_labels_free(&in->labels);
    *in = (cli_input){0};
}

attn_input cli_input_view(const cli_input *in) {
    return (attn_input){.ids = in->ids, .embeddings = in->vec, .n = in->n};
}

/* ---- output held back for standard output ---- */

void cli_spool(FILE **held, bool emit) {
    if (!*held) return;
    if (emit) {
        putchar('\n');
        rewind(*held);
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, *held)) > 0) fwrite(buf, 1, got, stdout);
    }
    fclose(*held);
    *held = NULL;
}

attn_status cli_split_batch_line(char *line, size_t len, bool pair, const char *what,
                                 char **source, char **target, attn_error *err) {
    *source = *target = NULL;
    if (memchr(line, '\0', len)) return cli_usage(err, "%s: contains a NUL byte", what);
    if (!pair) {
        *target = line;
        return ATTN_OK;
    }
    char *tab = memchr(line, '\t', len);
    if (!tab)
        return cli_usage(err,
                         "%s: expected SOURCE<TAB>TARGET for an encoder-decoder model (or give "
                         "--source / --source-ids)",
                         what);
    *tab = '\0';
    *source = line;
    *target = tab + 1;
    return ATTN_OK;
}

attn_status cli_split_key(char *line, size_t len, const char *what, char **key, char **rest,
                          size_t *rest_len, attn_error *err) {
    *key = *rest = NULL;
    *rest_len = 0;
    if (memchr(line, '\0', len)) return cli_usage(err, "%s: contains a NUL byte", what);
    char *tab = memchr(line, '\t', len);
    if (!tab) return cli_usage(err, "%s: expected KEY<TAB>... (--keyed), found no TAB", what);
    size_t n = (size_t)(tab - line);
    *tab = '\0';
    if (n == 0) return cli_usage(err, "%s: empty key (--keyed)", what);
    if (n > CLI_KEY_MAX)
        return cli_usage(err, "%s: key of %zu bytes, longer than %d (--keyed)", what, n,
                         CLI_KEY_MAX);
    if (strcmp(line, ".") == 0 || strcmp(line, "..") == 0)
        return cli_usage(err, "%s: key '%s' cannot name a folder (--keyed)", what, line);
    /* a key that needs no escape has no control byte, no backslash and is
     * valid UTF-8 */
    if (strchr(line, '/') || attn_escape_text(NULL, 0, line, n) != n)
        return cli_usage(err,
                         "%s: key holds a '/', a backslash, a control byte or bytes that are "
                         "not UTF-8 (--keyed)",
                         what);
    *key = line;
    *rest = tab + 1;
    *rest_len = len - n - 1;
    return ATTN_OK;
}

/* The file a path names once written: its device and inode when it exists,
 * else the real path of its folder and its last component, into buf. */
static bool file_identity(const char *path, struct stat *sb, char *buf, size_t cap) {
    if (stat(path, sb) == 0) return true;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[PATH_MAX], real[PATH_MAX];
    /* the folder: "." without a slash, "/" for "/name", else the part before it */
    int n = !slash ? snprintf(dir, sizeof dir, ".")
            : slash == path ? snprintf(dir, sizeof dir, "/")
                            : snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (n < 0 || !realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
    snprintf(buf, cap, "%s/%s", real, base);
    return false;
}

bool cli_same_file(const char *a, const char *b) {
    if (!a || !b || strcmp(a, "-") == 0 || strcmp(b, "-") == 0) return false;
    if (strcmp(a, b) == 0) return true;
    struct stat sa, sb;
    char na[2 * PATH_MAX], nb[2 * PATH_MAX];
    bool ea = file_identity(a, &sa, na, sizeof na), eb = file_identity(b, &sb, nb, sizeof nb);
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !ea && !eb && strcmp(na, nb) == 0;
}

ssize_t cli_read_line(FILE *f, char **buf, size_t *cap, bool *too_long) {
    size_t n = 0;
    int c;
    *too_long = false;
    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') break;
        if (n == CLI_LINE_MAX) { /* keep reading to the line's end, storing nothing */
            *too_long = true;
            continue;
        }
        if (n + 1 >= *cap) {
            size_t grown = *cap ? *cap * 2 : 256;
            char *p = realloc(*buf, grown);
            if (!p) return -2;
            *buf = p;
            *cap = grown;
        }
        (*buf)[n++] = (char)c;
    }
    if (c == EOF && n == 0 && !*too_long) return -1;
    if (!*buf) { /* an empty last line */
        if (!(*buf = malloc(1))) return -2;
        *cap = 1;
    }
    (*buf)[n] = '\0';
    return (ssize_t)n;
}

attn_status cli_batch_each(FILE *f, cli_line_fn fn, void *ctx, cli_progress *progress,
                           bool *bad_lines, attn_error *err) {
    cli_progress off = {0};
    if (!progress) progress = &off;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool too_long;
    attn_status rc = ATTN_OK;
    for (long index = 0; !rc && (len = cli_read_line(f, &line, &cap, &too_long)) >= 0;
         index++) {
        while (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
        char what[64];
        snprintf(what, sizeof what, "standard input line %ld", index + 1);
        attn_error line_err = {0};
        if (too_long)
            rc = cli_usage(&line_err, "%s: longer than %zu bytes", what, (size_t)CLI_LINE_MAX);
        else
            rc = fn(ctx, index, line, (size_t)len, what, &line_err);
        if (rc == ATTN_ERR_IO || rc == ATTN_ERR_NOMEM || rc == ATTN_ERR_INTERNAL) {
            if (err) *err = line_err;
        } else if (rc) {
            fflush(stdout); /* the message follows the output of the lines before it */
            cli_progress_clear(progress);
            cli_lib_error(&line_err);
            *bad_lines = true;
            rc = ATTN_OK;
        }
        cli_progress_line(progress);
    }
    cli_progress_clear(progress);
    free(line);
    if (!rc && len == -2) rc = attn_error_set(err, ATTN_ERR_NOMEM, "standard input: out of memory");
    if (!rc && ferror(f)) rc = attn_error_set(err, ATTN_ERR_IO, "standard input: read error");
    return rc;
}

attn_status cli_threads(const char *flag, attn_error *err) {
    const char *env = getenv("ATTN_THREADS");
    const char *what = flag ? "--threads" : "ATTN_THREADS";
    const char *s = flag ? flag : env && *env ? env : NULL;
    if (!s) return ATTN_OK;
    int n = 0;
    attn_status rc = cli_parse_int(s, what, 1, ATTN_THREADS_MAX, &n, err);
    if (!rc) attn_set_threads(n);
    return rc;
}

attn_status cli_token_arg(const attn_tokenizer *tok, int V, const char *flag, const char *arg,
                          int *id, attn_error *err) {
    const attn_pick pick = {.text = arg};
    for (int pass = 0; tok && pass < 3; pass++)
        for (int i = 0; i < V; i++) {
            const char *piece = attn_tokenizer_piece(tok, i);
            if (!piece) continue;
            if (pass == 0 ? strcmp(piece, arg) == 0
                : pass == 1 ? attn_pick_matches(&pick, piece)
                            : strcasecmp(piece, arg) == 0)
                return *id = i, ATTN_OK;
        }
    char *end;
    errno = 0;
    const long v = strtol(arg, &end, 10);
    if (*arg && !*end && !errno && v >= 0 && v < V) return *id = (int)v, ATTN_OK;
    return cli_usage(err, "%s '%s': no token of the vocabulary is '%s', nor is it an id 0-%d", flag,
                     arg, arg, V - 1);
}

attn_status cli_refuse(const cli_refused *flags, size_t n, const char *why, attn_error *err) {
    for (size_t i = 0; i < n; i++)
        if (flags[i].given) return cli_usage(err, "%s %s", flags[i].flag, why);
    return ATTN_OK;
}
