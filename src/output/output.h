/* Writers: every output format is a capture sink (or fed by one).
 * This is CLI-side code: it prints, the library does not. */
#ifndef ATTN_OUTPUT_H
#define ATTN_OUTPUT_H

#include "attn/attn.h"

#include <stdio.h>

/* ---- output files that appear only when complete (atomic.c) ---- */
typedef struct out_file {
    FILE *f;
    char *path;     /* final path; NULL for standard output */
    char *tmp;      /* temporary path the data goes to until commit */
} out_file;

/* "-" means standard output (never renamed). */
int out_open(out_file *o, const char *path, attn_error *err);
/* Flushes, closes and renames into place; on failure removes the temporary. */
int out_commit(out_file *o, attn_error *err);
/* Closes and removes the temporary (no-op for standard output or a closed file). */
void out_abort(out_file *o);
/* Removes every temporary still open (for signal handlers and fatal exits). */
void out_abort_all(void);

/* ---- labels of the positions of one sequence ---- */
typedef struct seq_labels {
    size_t n;
    char **text; /* [n] owned */
} seq_labels;

/* Labels from token ids: the tokenizer's pieces, or the id itself without one. */
int labels_from_ids(seq_labels *l, const attn_tokenizer *tok, const int *ids, size_t n);
/* Labels "0", "1", ... for inputs given as vectors. */
int labels_from_positions(seq_labels *l, size_t n);
void labels_free(seq_labels *l);
/* The label of position pos, "?" when out of range (or l is NULL). */
const char *labels_at(const seq_labels *l, int pos);

/* ---- text for terminals (text.c) ---- */
/* Width in characters (UTF-8 code points). */
int text_width(const char *s);
/* Prints s in a field of `width` characters, left- or right-aligned. */
void text_pad(FILE *f, const char *s, int width, bool right);
/* Copies a label for display: control bytes escaped (\n, \t, \r, \xHH), at
 * most `width` characters, '~' as the last one when it was cut. */
void text_label(char *out, size_t cap, const char *s, int width);
/* Writes buf[len] to f without the blanks at the ends of lines. */
void text_put_stripped(FILE *f, const char *buf, size_t len);

/* ---- CSV (csv.c) ---- */
/* Writes s as one CSV field, RFC 4180-quoted when it holds a comma, quote,
 * CR/LF, or leading/trailing white space. */
void csv_field(FILE *f, const char *s);

/* What the writers need to know about the input being run. */
typedef struct run_context {
    long input;                /* CSV "input" column */
    const seq_labels *main;    /* labels of the main stack's positions */
    const seq_labels *source;  /* encoder input of an encoder-decoder, else NULL */
    const attn_config *cfg;
} run_context;

typedef struct csv_maps {
    FILE *f;
    const run_context *run;
} csv_maps;
void csv_maps_header(FILE *f);
bool csv_maps_wants(void *user, const attn_capture_key *key);
int csv_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                  attn_error *err);

typedef struct csv_context {
    FILE *f;
    const run_context *run;
} csv_context;
void csv_context_header(FILE *f, int d_model);
bool csv_context_wants(void *user, const attn_capture_key *key);
int csv_context_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err);

/* ---- the readable terminal view (view.c) ---- */
typedef struct view_opts {
    FILE *f;
    bool color;         /* ANSI 256-colour shading */
    int max_cols;       /* context vectors: at most this many columns (0: as wide as fits) */
    const run_context *run;
    int width;          /* line width; 0: out_term_width(f) */
} view_opts;
/* --color=auto|always|never: auto is colour when f is a terminal and
 * NO_COLOR is unset or empty (no-color.org); always forces it, even with
 * NO_COLOR set. out_color_parse returns -1 for another word. */
enum { OUT_COLOR_AUTO, OUT_COLOR_ALWAYS, OUT_COLOR_NEVER };
int out_color_parse(const char *s);
bool out_color_enabled(int mode, FILE *f);
void view_input_header(const view_opts *o);
/* Line width for layouts: $COLUMNS when set (20..100000), else the
 * terminal's width when f is one, else 80. */
int out_term_width(FILE *f);
bool view_wants(void *user, const attn_capture_key *key);
int view_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
              attn_error *err);

/* ---- next-token predictions (topk.c): a sink on ATTN_V_LOGITS ---- */
typedef struct topk_sink {
    FILE *f;
    bool csv;                /* CSV rows (topk_csv_header), else a readable listing */
    int k;                   /* 1 .. vocab_size */
    bool last_only;          /* only the last position of each emitted block of rows */
    const run_context *run;
    const attn_tokenizer *tok; /* token texts; NULL: ids */
    attn_prediction *top;    /* [k] scratch, owned */
} topk_sink;
/* Fills s; returns ATTN_OK or ATTN_ERR_NOMEM. topk_free releases the scratch. */
int topk_init(topk_sink *s, FILE *f, bool csv, int k, bool last_only, const run_context *run,
              const attn_tokenizer *tok);
void topk_free(topk_sink *s);
/* input,pos,rank,token_id,token,logit,prob */
void topk_csv_header(FILE *f);
bool topk_wants(void *user, const attn_capture_key *key);
int topk_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
              attn_error *err);

/* ---- fan-out: one capture that feeds several sinks ---- */
#define FANOUT_MAX 8
typedef struct fanout {
    attn_capture sinks[FANOUT_MAX];
    int n;
} fanout;
void fanout_add(fanout *fo, attn_capture c);
attn_capture fanout_capture(fanout *fo);

/* ---- attn explain (explain.c): every step of one attention head ---- */
typedef struct ex_mat {
    int rows, cols, row_offset;
    float *data; /* [rows, cols] owned copy; NULL until captured */
} ex_mat;
typedef struct explain_head {
    ex_mat val[ATTN_V_COUNT]; /* ATTN_IN .. ATTN_OUT of the chosen layer and head */
} explain_head;
/* What to explain (filled by the caller) and what the sink captured. */
typedef struct explain_req {
    attn_stack stack;
    bool source;     /* the encoder of an encoder-decoder */
    int layer, head, kv_head;
    int n_kinds;     /* 1 or 2 (self, then cross) */
    attn_attn_kind kinds[2];
    explain_head heads[2]; /* [n_kinds] */
    ex_mat embed;    /* EMBED of the stack [T, D] */
    ex_mat prev;     /* RESID of layer - 1 [T, D] */
    ex_mat memory;   /* encoder output [S, D], for cross-attention */
} explain_req;
bool explain_wants(void *user, const attn_capture_key *key); /* user: explain_req */
int explain_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                 attn_error *err);
void explain_req_free(explain_req *r);

typedef struct explain_seq {
    const seq_labels *labels;
    const int *ids;       /* [labels->n], or NULL when given as vectors */
    const char *emb_path; /* the vectors' file when ids is NULL */
} explain_seq;
typedef struct explain_opts {
    FILE *f;
    int width;   /* terminal columns; 0 = no limit */
    int digits;  /* decimals of every number */
    bool full;   /* no abbreviation: every row and column */
    const attn_config *cfg;
    const attn_safetensors *st; /* the model's weights, shown next to the values */
    const char *config_path;
    const explain_seq *seq;     /* the explained stack's input (queries) */
    const explain_seq *source;  /* encoder input of an encoder-decoder (cross keys), or NULL */
} explain_opts;
int explain_print(const explain_opts *o, const explain_req *r, attn_error *err);

#endif
