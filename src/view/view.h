/* The terminal views, for the attn CLI only (not part of libattn): the
 * readable maps and context vectors of `attn run` (maps.c), its readable
 * next-token listing (predictions.c), the step-by-step layout of
 * `attn explain` (explain.c) and the text helpers they share (text.c).
 * They are capture sinks like the library's writers (attn/write.h), but
 * they lay text out for a person at a terminal, so they live with the CLI;
 * the machine formats (CSV) are the library's. */
#ifndef ATTN_VIEW_H
#define ATTN_VIEW_H

#include "attn/write.h"

#include <stdio.h>

/* ---- text for terminals (text.c) ---- */
/* Width in characters (UTF-8 code points). */
int text_width(const char *s);
/* Prints s in a field of `width` characters, left- or right-aligned. */
void text_pad(FILE *f, const char *s, int width, bool right);
/* Copies a label for display: leading spaces shown as U+00B7 (" the" is
 * "·the"), control bytes escaped (\n, \t, \r, \xHH), at most `width`
 * characters, '~' as the last one when it was cut. */
void text_label(char *out, size_t cap, const char *s, int width);
/* Writes buf[len] to f without the blanks at the ends of lines. */
void text_put_stripped(FILE *f, const char *buf, size_t len);

/* ---- the readable view of `attn run` (maps.c) ---- */
/* Per input a header (view_input_header), then every head's map and the
 * context vectors, laid out to the line width: a map whose keys do not fit
 * lists each query's strongest keys, and of more than VIEW_MAX_ROWS
 * queries the first and last VIEW_MAX_ROWS / 2 are shown, unless full. */
#define VIEW_MAX_ROWS 32
typedef struct view_opts {
    FILE *f;
    bool color;         /* ANSI 256-colour shading */
    int width;          /* line width (at least 40 is used); 0: no limit */
    bool full;          /* every weight: grids in bands of key columns, every row */
    const attn_run_info *run;
} view_opts;
/* --color=auto|always|never: auto is colour when f is a terminal, NO_COLOR
 * is unset or empty (no-color.org) and TERM is not "dumb"; always forces
 * it, even with NO_COLOR set. out_color_parse returns -1 for another word. */
enum { OUT_COLOR_AUTO, OUT_COLOR_ALWAYS, OUT_COLOR_NEVER };
int out_color_parse(const char *s);
bool out_color_enabled(int mode, FILE *f);
void view_input_header(const view_opts *o);
/* Line width for layouts: $COLUMNS when set (OUT_WIDTH_MIN..OUT_WIDTH_MAX),
 * else the terminal's width when f is one, else 80. */
#define OUT_WIDTH_MIN 20
#define OUT_WIDTH_MAX 100000
int out_term_width(FILE *f);
bool view_wants(void *user, const attn_capture_key *key);
attn_status view_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                      attn_error *err);

/* ---- next-token predictions, listed readably (predictions.c) ---- */
/* A sink on the main stack's logits (wants: attn_predictions_wants): per
 * emitted block a heading, then for each reported position its label and
 * the k most likely next tokens with id, probability and logit. The caller
 * fills f, run and tok, and sets up pred with attn_predictions_init (and
 * releases it with attn_predictions_free). */
typedef struct predictions_view {
    FILE *f;
    const attn_run_info *run;
    const attn_tokenizer *tok; /* token texts; NULL: ids */
    attn_predictions pred;     /* k, last_only and the scratch */
} predictions_view;
attn_status predictions_view_emit(void *user, const attn_capture_key *key,
                                  const attn_capture_view *v, attn_error *err);

/* ---- attn explain (explain.c): every step of one attention head ---- */
typedef struct ex_mat {
    int rows, cols, row_offset;
    float *data; /* [rows, cols] owned copy; NULL until captured */
} ex_mat;
typedef struct explain_head {
    ex_mat val[ATTN_V_COUNT]; /* ATTN_IN .. ATTN_OUT of the chosen layer and head */
    bool causal;              /* the captured values are under a causal mask (key->causal) */
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
attn_status explain_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                         attn_error *err);
void explain_req_free(explain_req *r);

typedef struct explain_seq {
    const attn_labels *labels;
    const int *ids;       /* [labels->n], or NULL when given as vectors */
    const char *emb_path; /* the vectors' file when ids is NULL */
} explain_seq;
typedef struct explain_opts {
    FILE *f;
    int width;   /* terminal columns; 0 = no limit */
    int digits;  /* decimals of every number */
    bool full;   /* no abbreviation: every row and column */
    const attn_config *cfg;
    const attn_model *model;    /* the weights shown next to the values (attn_model_tensor) */
    const char *config_path;
    const explain_seq *seq;     /* the explained stack's input (queries) */
    const explain_seq *source;  /* encoder input of an encoder-decoder (cross keys), or NULL */
} explain_opts;
/* Lays out what r captured, through memory, then writes it to o->f without
 * blanks at the ends of lines; ATTN_ERR_NOMEM or ATTN_ERR_IO on failure. */
attn_status explain_print(const explain_opts *o, const explain_req *r, attn_error *err);

#endif
