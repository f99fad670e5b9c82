/* The CLI: parses flags, formats output, picks exit codes. Only the CLI
 * (src/cli/ and its views, src/view/) prints; the library never does.
 *
 * The error rule: a CLI function that can fail (a parser, a check, a step
 * of a command) follows the library's contract: it returns an attn_status
 * and fills the caller's attn_error, with ATTN_ERR_USAGE for bad flags and
 * inputs. Only the top level of a command (main, cmd_run, cmd_generate,
 * ...) prints an error and picks the exit code: cli_lib_error prints an
 * attn_error and turns its status into the code. The one exception is the
 * batch loop of 'attn run', which reports each bad input line itself and
 * goes on with the next. */
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

#include "attn/attn.h"
#include "attn/write.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* ---- errors (common.c) ---- */
/* Prints "attn: <message>" on standard error; returns code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the error and returns its exit code (2 for usage errors, else 1). */
int cli_lib_error(const attn_error *err);
/* Exit code for a status. */
int cli_exit_code(int status);
/* Fills err (may be NULL) with a usage error, ATTN_ERR_USAGE, and returns
 * that status. Unlike attn_error_set it keeps line breaks: its messages
 * quote flag values as they were given. */
attn_status cli_usage(attn_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- flags ---- */
/* --help: prints a command's usage text on standard output; returns EXIT_OK. */
int cli_help(const char *usage);
/* One flag of a command: --name, and -short_name when that is not 0. A flag
 * with a value stores it in *value; a switch (value NULL) sets *set. */
typedef struct cli_flag {
    const char *name;
    char short_name;
    const char **value;
    bool *set;
} cli_flag;
/* Parses argv[1..argc) (argv[0] names the command) against flags[], which
 * ends with {NULL}, and -h/--help. At the first -h/--help it stops with
 * *help true. Fails on an unknown flag, a flag without its value, a flag
 * with a value given twice (a switch may repeat) and an argument that is no
 * flag; `cmd` names the command in those messages ("see 'attn CMD --help'"). */
attn_status cli_parse_flags(int argc, char **argv, const char *cmd, const cli_flag *flags,
                            bool *help, attn_error *err);

/* ---- numbers and id lists ---- */
/* Parses the integer value s of `flag` and refuses one outside [min, max];
 * with the whole int range, the message asks for an integer only. */
/* Splits one batch line line[len] (its line end already cut; NUL-terminated
 * at len): refuses a NUL byte inside it; when pair (an encoder-decoder
 * without a source from the flags) cuts it at the first TAB into *source and
 * *target (the line is changed in place), else *target is the whole line and
 * *source NULL. `what` names the line in messages. */
/* Standard input was closed when attn started (main.c gave it /dev/null). */
extern bool cli_stdin_closed;
/* The longest batch line (standard input), in bytes: the longest input text. */
#define CLI_LINE_MAX ATTN_TEXT_MAX
/* Reads one line of f without its '\n' into *buf (grown as needed, at most
 * CLI_LINE_MAX + 1 bytes, NUL-terminated; NUL bytes inside are kept) and
 * returns its length; a longer line is read to its end but not stored, and
 * sets *too_long. Returns -1 at the end of f, -2 when out of memory. */
ssize_t cli_read_line(FILE *f, char **buf, size_t *cap, bool *too_long);
/* One line of batch mode: its 0-based index, the line (its line end and a
 * trailing CR cut; NUL-terminated at len; fn may change it) and `what`, its
 * name in messages ("standard input line N"). */
typedef attn_status (*cli_line_fn)(void *ctx, long index, char *line, size_t len,
                                   const char *what, attn_error *err);
typedef struct cli_progress cli_progress;
/* Batch mode's loop over the lines of f (cli_read_line): a bad line (longer
 * than CLI_LINE_MAX, or one fn refuses with any other status than the three
 * below) is reported on standard error with its number, after what standard
 * output holds so far, sets *bad_lines and is skipped; an I/O, memory or
 * internal error of fn ends the loop and is returned, not printed. progress
 * (NULL: none, else started) counts the lines and is erased before each
 * message and at the end. */
attn_status cli_batch_each(FILE *f, cli_line_fn fn, void *ctx, cli_progress *progress,
                           bool *bad_lines, attn_error *err);
/* Do two output paths name the same file, however spelled ("a.csv" and
 * "./a.csv", a symlink, a hard link)? Existing files are compared by device
 * and inode, new ones by the real path of their folder. "-" is never a file. */
bool cli_same_file(const char *a, const char *b);
attn_status cli_split_batch_line(char *line, size_t len, bool pair, const char *what,
                                 char **source, char **target, attn_error *err);
/* The threads of the matrix products: --threads N (flag, when given), else
 * $ATTN_THREADS when set and not empty, else the library's default (the
 * online cores); 1 to ATTN_THREADS_MAX, else a usage error naming the flag
 * or the variable. */
attn_status cli_threads(const char *flag, attn_error *err);
attn_status cli_parse_int(const char *s, const char *flag, int min, int max, int *out,
                          attn_error *err);
/* --width N of run and explain: 0 (no limit) or OUT_WIDTH_MIN..OUT_WIDTH_MAX
 * (view.h) into *cols; else ATTN_ERR_USAGE naming the flag, *cols unchanged. */
attn_status cli_parse_width(const char *s, int *cols, attn_error *err);
/* Parses "N,N,..." (spaces allowed around numbers). Each id must lie in
 * [0, vocab_size). `what` names the flag or line in messages. *ids is
 * malloc'd. */
attn_status cli_parse_ids(const char *s, int vocab_size, const char *what, int **ids, size_t *n,
                          attn_error *err);
/* --no-special (run, generate, explain): text is encoded without matching
 * special tokens (ATTN_ENCODE_NO_SPECIAL). */
extern bool cli_no_special;
/* --special (run, tokenize, generate, explain): the special tokens of a
 * tokenizer that matches none by default (gpt2: "<|endoftext|>") are matched
 * whole (ATTN_ENCODE_SPECIAL). */
extern bool cli_special;
/* The encode flags of --special / --no-special. */
unsigned cli_encode_flags(void);
/* --special with --no-special: a usage error. */
attn_status cli_check_special(attn_error *err);
/* A token named by a flag (--target, --foil, --attribute): a piece of the
 * vocabulary exactly, else a piece as --from matches it (after its leading
 * space or word mark), else up to case, else an id 0 .. V-1; else a usage
 * error naming the flag. */
attn_status cli_token_arg(const attn_tokenizer *tok, int V, const char *flag, const char *arg,
                          int *id, attn_error *err);
/* Token ids of one input: parsed from `ids` ("N,N,...") when it is given,
 * else `text` encoded by tok (special tokens matched unless cli_no_special).
 * Refuses a model without a tokenizer for text and an input with no tokens.
 * `what` names the flag or line in messages. */
attn_status cli_input_ids(const attn_config *cfg, const attn_tokenizer *tok, const char *text,
                          const char *ids, const char *what, int **out, size_t *n,
                          attn_error *err);

/* ---- standard input and streams ---- */
/* Does reading path (NULL: no) take standard input's data: "-", or a path to
 * the same pipe, terminal or socket as descriptor 0 (/dev/stdin, /dev/fd/0)?
 * A regular file on standard input opened again by name is read on its own. */
bool cli_reads_stdin(const char *path);
/* Refuses flags[i] with paths[i] (NULL: not given) that read standard input
 * (cli_reads_stdin) when it is closed ("-"), when two of them do, or when
 * batch mode reads it (batch_inputs, the flags that avoid batch mode; NULL:
 * not batch mode). */
attn_status cli_check_stdin(const char *const *flags, const char *const *paths, size_t n,
                            const char *batch_inputs, attn_error *err);

/* ---- the model ---- */
/* What a command cannot do without; `who` names the command or flag that
 * needs it in the messages ("generate", "--top-k"). */
typedef struct cli_model_needs {
    const char *who;
    bool decoding; /* refuse an encoder: generation needs a decoder */
    bool lm_head;  /* refuse a model without an lm_head */
} cli_model_needs;
/* Opens the model of `config` and refuses it (closed, *out NULL) when it
 * lacks what needs asks for (needs may be NULL). `config` is a config file;
 * a folder, whose config.json is read; or a stream, read whole (at most
 * ATTN_CONFIG_FILE_MAX bytes) with its relative paths resolved against the
 * current folder: "-" (standard input), a path under /dev/ or /proc/
 * (/dev/stdin, /dev/fd/N) or a FIFO. */
attn_status cli_model_open(attn_model **out, const char *config, const cli_model_needs *needs,
                           attn_error *err);
/* Checks the encoder input against the architecture: `flag`, the flag that
 * gave one (NULL: none), is refused unless the model is an encoder-decoder;
 * an encoder-decoder without one is refused when `required` names the flags
 * to give it with (NULL: none is needed). */
attn_status cli_check_source(const attn_config *cfg, const char *flag, const char *required,
                             attn_error *err);

/* ---- inputs ---- */
/* One input sequence as the flags give it: text, token ids or a file of
 * vectors, at most one of them (none: not given). */
typedef struct cli_input_args {
    const char *text, *ids, *emb;
} cli_input_args;
/* The flag that gave it: --text, --ids or --embeddings, or for the encoder
 * input (source) --source, --source-ids or --source-embeddings; NULL when
 * none was given. */
const char *cli_input_flag(const cli_input_args *a, bool source);

/* One loaded input: token ids or vectors, and the labels of its positions
 * (the tokens' texts, or the positions of vectors). */
typedef struct cli_input {
    int *ids;             /* [T], or NULL for vectors */
    float *vec;           /* [T, D], or NULL for ids */
    size_t n;             /* T */
    attn_labels labels;   /* [T] */
    const char *emb_path; /* the vectors' file ("standard input" for "-") */
} cli_input;
/* Loads the input a gives for model m: vectors from a->emb (CSV or .npy, at
 * most max_seq_len rows of d_model), else token ids as cli_input_ids makes
 * them; `what` names it in messages. cli_input_free releases it, also after
 * a failure. */
attn_status cli_input_load(cli_input *in, const attn_model *m, const cli_input_args *a,
                           const char *what, attn_error *err);
void cli_input_free(cli_input *in);
/* Flags a command refuses: the first one given is a usage error, "FLAG WHY". */
typedef struct cli_refused {
    bool given;
    const char *flag;
} cli_refused;
attn_status cli_refuse(const cli_refused *flags, size_t n, const char *why, attn_error *err);

/* ---- one input run again from one layer on (rerun.c): attn ablate, attn patch ---- */
typedef struct cli_rerun {
    attn_session *sess;
    const cli_input *in, *src; /* the input; the encoder input, or NULL */
    int L, T, D, V;
    int Le, S;     /* the encoder's layers and source positions (0: none) */
    float *x;      /* [L + 1][T, D]: block l's input in the base pass (l = L: the output) */
    float *ex;     /* [Le + 1][S, D]: the same for the encoder, or NULL */
    float *logits; /* [V]: the last position's, of the last pass */
    bool record;   /* the base pass: keep the streams */
    bool changed;  /* the session holds an encoder rerun's state */
} cli_rerun;
/* For input in (and src, NULL for none) of a model of cfg, run by sess. */
attn_status cli_rerun_init(cli_rerun *r, attn_session *sess, const attn_config *cfg,
                           const cli_input *in, const cli_input *src, attn_error *err);
void cli_rerun_free(cli_rerun *r);
/* The base pass, whole, with cap (NULL: none) in front of the recording. */
attn_status cli_rerun_base(cli_rerun *r, const attn_capture *cap, attn_error *err);
/* The main stack (source: the encoder, then the whole decoder) again from
 * block `layer` on, from the base pass's stream there, with cap in front;
 * the same bytes as a whole pass with cap. */
attn_status cli_rerun_from(cli_rerun *r, bool source, int layer, const attn_capture *cap,
                           attn_error *err);
/* --mean-over PATH (intervene.c): each line of PATH an input (token ids when
 * ids, else text; an encoder-decoder's lines SOURCE<TAB>TARGET) run through
 * sess without ablation into *out, finished (attn_ablation_means_free it).
 * A bad line fails with its number; the session is reset after. */
attn_status cli_mean_over(attn_session *sess, const attn_model *model, const char *path,
                          bool ids, attn_ablation_means **out, attn_error *err);
/* The input as the session takes it. */
attn_input cli_input_view(const cli_input *in);

/* ---- keyed batch lines (common.c) ---- */
/* The longest key of a keyed line, in bytes (a file name's limit, NAME_MAX). */
#define CLI_KEY_MAX 255
/* Cuts a keyed batch line line[len] (--keyed: KEY<TAB>rest, its line end
 * already cut) at its first TAB: *key is the key and *rest what follows (the
 * line is changed in place; *rest is line + the key's length + 1 and holds
 * rest_len bytes). The key names a folder of the dump outputs, so it is
 * refused when it is empty, longer than CLI_KEY_MAX bytes, "." or "..", or
 * holds a '/', a control byte (below 0x20, or 0x7f) or a byte that is not
 * valid UTF-8; a line without a TAB is refused too. `what` names the line
 * in messages. */
attn_status cli_split_key(char *line, size_t len, const char *what, char **key, char **rest,
                          size_t *rest_len, attn_error *err);

/* ---- progress of a batch on standard error (progress.c) ---- */
typedef struct cli_progress {
    bool on, shown;
    FILE *in;          /* the batch's input, for the share read */
    off_t total, base; /* its size when a regular file (else -1), where the batch began */
    double start, last;
    long lines;
} cli_progress;
/* enabled false: every call does nothing. The caller decides (a terminal on
 * standard error, no --quiet, nothing of its own on that terminal). */
void cli_progress_start(cli_progress *p, FILE *in, bool enabled);
/* One more line done; redraws at most four times a second. */
void cli_progress_line(cli_progress *p);
/* Erases the progress line (before a message, and at the end). */
void cli_progress_clear(cli_progress *p);

/* ---- selection of layers, heads, stacks and kinds (select.c) ---- */
/* A list of numbers and ranges ("0,2-5"), as a set. Numbers at or above
 * CLI_RANGE_BITS (ATTN_LAYERS_MAX and ATTN_HEADS_MAX) are never in range
 * of a model; only the largest is kept, for the message. */
#define CLI_RANGE_BITS 4096
typedef struct cli_ranges {
    bool given;      /* false: every number */
    int max;         /* the largest number given */
    const char *arg; /* the flag's value, for messages */
    uint64_t bits[CLI_RANGE_BITS / 64];
} cli_ranges;
/* Parses s ("N", "N-M", comma-separated, spaces around numbers allowed) of
 * `flag` into *out; a malformed list or a range that goes down is
 * ATTN_ERR_USAGE naming flag. */
attn_status cli_parse_ranges(const char *s, const char *flag, cli_ranges *out, attn_error *err);
/* Is v in r (always, when r was not given)? */
bool cli_ranges_has(const cli_ranges *r, int v);

/* --layers, --heads, --stack, --kind (see select.c for what each filters). */
typedef struct cli_selection {
    cli_ranges layers, heads;
    int stack;             /* -1: both, else attn_stack */
    int kind;              /* -1: both, else attn_attn_kind */
    int n_heads, n_kv_heads; /* of the model (cli_selection_check) */
} cli_selection;
/* Parses the flags' values (NULL: not given); ATTN_ERR_USAGE for a bad one. */
attn_status cli_selection_parse(cli_selection *sel, const char *layers, const char *heads,
                                const char *stack, const char *kind, attn_error *err);
/* Was any of the four flags given? */
bool cli_selection_given(const cli_selection *sel);
/* Refuses a selection the model cannot serve (a layer or head out of range,
 * naming the valid range; a stack or kind it does not have); then records
 * the model's head counts for cli_selection_wants. */
attn_status cli_selection_check(cli_selection *sel, const attn_config *cfg, attn_error *err);
/* Is the value of key selected? */
bool cli_selection_wants(const cli_selection *sel, const attn_capture_key *key);
/* A sink that passes on to `inner` only what sel selects. */
typedef struct cli_select_sink {
    const cli_selection *sel;
    attn_capture inner;
} cli_select_sink;
/* The filtering capture of s (s->inner itself when nothing is selected);
 * s must outlive its use. */
attn_capture cli_select_capture(cli_select_sink *s);

/* ---- output held back for standard output ---- */
/* A temporary file holding an output that waited while another one used
 * standard output: when `emit`, a blank line and then its bytes go to
 * standard output. Closes it either way and sets *held to NULL (nothing
 * happens when *held is NULL). */
void cli_spool(FILE **held, bool emit);

/* ---- the commands ---- */
int cmd_run(int argc, char **argv);      /* run.c */
int cmd_generate(int argc, char **argv); /* generate.c */
int cmd_import(int argc, char **argv);   /* import.c */
int cmd_explain(int argc, char **argv);  /* explain.c */
int cmd_stats(int argc, char **argv);    /* stats.c */
int cmd_lens(int argc, char **argv);     /* lens.c */
int cmd_patch(int argc, char **argv);    /* patch.c */
int cmd_ablate(int argc, char **argv);   /* ablate.c */
int cmd_info(int argc, char **argv);     /* info.c */
int cmd_tokenize(int argc, char **argv); /* tokenize.c */

#endif
