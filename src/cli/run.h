/* attn run (and attn stats, which is a run with one output): its options,
 * its state, and what the output modules that add sinks to a run plug into.
 *
 * run.c parses the flags, opens the model, runs the inputs and calls each
 * module in turn; a module (dump.c, heatmap.c, html.c, aggregate.c,
 * stats.c) adds its sinks to the fan-out (r->fo) and, when it writes
 * something per input or must finish files at the end, a run_output. */
#ifndef ATTN_CLI_RUN_H
#define ATTN_CLI_RUN_H

#include "cli.h"
#include "view.h"

typedef struct run_opts {
    const char *config;
    cli_input_args input;  /* --text, --ids, --embeddings */
    cli_input_args source; /* --source, --source-ids, --source-embeddings */
    bool ids_input;        /* --ids-input */
    const char *maps, *context, *top_k, *predictions, *color, *width;
    bool last;     /* --last */
    bool full;     /* --full */
    bool raw_text; /* --raw-text */
    /* named dumps (dump.c) */
    const char *dump;   /* --dump PATTERN[,PATTERN...] */
    const char *out;    /* --out DIR (run --dump) or FILE (stats) */
    const char *format; /* --format npy|csv|jsonl */
    bool list_dumps;    /* --list-dumps */
    /* selection (select.c) */
    const char *layers, *heads, *stack, *kind;
    cli_selection sel;
    /* positions of the maps (maps CSV, view, stats): --from queries, --to keys */
    const char *from, *to;
    attn_pick from_pick, to_pick;
    /* aggregation (aggregate.c) */
    const char *reduce; /* --reduce mean|max */
    bool rollout;       /* --rollout */
    /* images and pages (heatmap.c, html.c) */
    const char *heatmap; /* --heatmap DIR */
    bool heatmap_grid;   /* --heatmap-grid */
    const char *html;    /* --html FILE */
    /* batches */
    bool keyed; /* --keyed: each line is KEY<TAB>... */
    bool quiet; /* --quiet: no progress on standard error */
    const char *threads; /* --threads N */
    /* attn stats: the statistics CSV goes to `stats` (--out FILE, or "-") */
    bool stats_cmd;
    const char *stats;
    /* attn lens: the logit lens CSV goes to `lens` (--out FILE, or "-") */
    bool lens_cmd;
    const char *lens;
    const char *attribute; /* attn lens --attribute TOKEN */
    /* interventions: --ablate SPEC[,SPEC...], --ablate-mode zero|mean,
     * --mean-over FILE (the means of mean mode over FILE's inputs) */
    const char *ablate, *ablate_mode, *mean_over;
    const char *target; /* --target TOKEN: its logit and probability */
    /* from the flags above (check_flags) */
    bool batch;     /* no input flag: one input per line of standard input */
    int k;          /* --top-k K, its range checked once the model is open; 0: none */
    int color_mode; /* --color: OUT_COLOR_* */
    int cols;       /* --width; -1: not given */
} run_opts;

/* An output that does something around each input or at the end. Every
 * hook may be NULL. */
typedef struct run_output {
    void *self;
    /* before each input; r->rc (input, key, labels) is filled */
    attn_status (*begin)(void *self, const attn_run_info *run, attn_error *err);
    /* after each input; ok false: the input failed (a bad batch line), and
     * what the output wrote for it must go */
    attn_status (*end)(void *self, const attn_run_info *run, bool ok, attn_error *err);
    /* after the last input: finish and put the files in place */
    attn_status (*commit)(void *self, attn_error *err);
    /* always called last, after commit or after a failure: remove what was
     * not committed, free self */
    void (*abort)(void *self);
} run_output;

/* A CSV file of rows per input (attn stats, attn lens): each input's rows
 * are held in memory until it ends, then join the file; a failed input's
 * go. The module embeds it first in its own struct and fills f (where its
 * writer takes its stream: the input's memory, NULL between inputs),
 * release (frees the module's struct, once the file is aborted or put in
 * place) and what (for messages). */
typedef struct run_rows {
    attn_outfile file;
    FILE **f;
    void (*release)(struct run_rows *rows);
    const char *what;
    FILE *mem; /* this input's rows, until it ends */
    char *buf;
    size_t len;
} run_rows;

#define RUN_OUTPUTS_MAX 8
#define RUN_SELECT_MAX 8

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
    bool batch;          /* inputs are the lines of standard input */
    int top_k;           /* 0: no top k */
    int target;          /* --target's token id; -1: none */
    attn_predictions *pred; /* the predictions of --top-k / --target, or NULL */
    attn_outfile pred_out;   /* --predictions FILE */
    FILE *pred_tmp;      /* predictions held back while other outputs use stdout */
    struct {
        attn_csv_predictions csv; /* --predictions FILE */
        predictions_view view;    /* else: the readable listing */
    } topk;
    run_output outs[RUN_OUTPUTS_MAX];
    int n_outs;
    cli_select_sink selects[RUN_SELECT_MAX];
    int n_selects;
    attn_ablation ablation; /* --ablate */
    attn_ablation_means *means; /* --mean-over */
    struct {
        float *data; /* [rows, V]: the logits of the input without the ablation */
        size_t cap;  /* floats allocated */
        int rows, V;
    } clean;
} runner;

/* Adds an output's hooks (ATTN_ERR_INTERNAL past RUN_OUTPUTS_MAX; then
 * out.abort is called at once). */
attn_status run_add_output(runner *r, run_output out, attn_error *err);
/* c behind the selection of the flags (--layers, --heads, --stack, --kind);
 * c itself when none was given. ATTN_ERR_INTERNAL past RUN_SELECT_MAX. */
attn_status run_select(runner *r, const run_opts *o, attn_capture c, attn_capture *out,
                       attn_error *err);
/* Opens rows->file at path and adds the output's hooks; on failure
 * rows->release has run. */
attn_status run_rows_open(runner *r, run_rows *rows, const char *path, attn_error *err);
/* The name of the current input: its key, else its number, into buf[cap]. */
const char *run_input_name(const attn_run_info *run, char *buf, size_t cap);

/* ---- the output modules. A _check refuses bad flag values before the
 * model is opened; an _open adds the module's sinks and outputs once it is
 * open. Each does nothing (ATTN_OK) when its flags are absent. ---- */
/* dump.c: --dump, --out, --format, --list-dumps */
attn_status run_dump_check(const run_opts *o, attn_error *err);
attn_status run_dump_open(runner *r, const run_opts *o, attn_error *err);
/* --list-dumps: prints every value name of the model with its shape */
attn_status run_dump_list(const runner *r, const run_opts *o, attn_error *err);
/* aggregate.c: --reduce, --rollout; *out is c behind the aggregation, or c */
attn_status run_aggregate_check(const run_opts *o, attn_error *err);
attn_status run_aggregate_wrap(runner *r, const run_opts *o, attn_capture c, attn_capture *out,
                               attn_error *err);
/* heatmap.c: --heatmap, --heatmap-grid */
attn_status run_heatmap_check(const run_opts *o, attn_error *err);
attn_status run_heatmap_open(runner *r, const run_opts *o, attn_error *err);
/* html.c: --html */
attn_status run_html_check(const run_opts *o, attn_error *err);
attn_status run_html_open(runner *r, const run_opts *o, attn_error *err);
/* stats.c: attn stats */
attn_status run_stats_check(const run_opts *o, attn_error *err);
attn_status run_stats_open(runner *r, const run_opts *o, attn_error *err);
/* lens.c: attn lens */
attn_status run_lens_check(const run_opts *o, attn_error *err);
attn_status run_lens_open(runner *r, const run_opts *o, attn_error *err);
/* intervene.c: --ablate, --ablate-mode, --mean-over, --target. _open parses
 * them against the model; _start (the session made, before the outputs)
 * computes --mean-over's means and adds the ablation to the fan-out;
 * _before (before each input's pass) runs the input without the ablation
 * for the predictions' clean logits, when they compare. */
attn_status run_intervene_check(const run_opts *o, attn_error *err);
attn_status run_intervene_open(runner *r, const run_opts *o, attn_error *err);
attn_status run_intervene_start(runner *r, const run_opts *o, attn_error *err);
attn_status run_intervene_before(runner *r, const cli_input *in, const cli_input *src,
                                 attn_error *err);
void run_intervene_free(runner *r);

/* The input flags in the --help of attn stats and attn lens. */
#define RUN_INPUT_HELP \
    "Input (one of; neither: standard input, one input per line):\n" \
    "  --text STRING         text, tokenized by the model's tokenizer\n" \
    "  --ids N,N,...         token ids\n" \
    "  --ids-input           standard input lines are token ids, not text\n" \
    "  --embeddings FILE     vectors instead of tokens (see attn run --help)\n" \
    "  --no-special          split special tokens of the text like other text\n" \
    "  --special             match the special tokens of a gpt2 tokenizer\n" \
    "  --source STRING, --source-ids N,..., --source-embeddings FILE\n" \
    "                        the encoder input of an encoder-decoder model (in\n" \
    "                        batch mode without them, each line is SOURCE<TAB>TARGET)\n" \
    "  --keyed               each line is KEY<TAB>text; the input column carries KEY\n" \
    "  --quiet               no progress on standard error\n" \
    "  --threads N           threads of the matrix products (default: $ATTN_THREADS,\n" \
    "                        else the online cores)\n"

/* The commands that are a run with one output of their own. */
typedef enum run_cmd { RUN_CMD_RUN, RUN_CMD_STATS, RUN_CMD_LENS } run_cmd;
/* The body of attn run; attn stats (stats.c) and attn lens (lens.c) call it
 * with their command, and --help prints run_stats_usage / run_lens_usage. */
extern const char run_stats_usage[], run_lens_usage[];
int run_main(int argc, char **argv, run_cmd cmd);

#endif
