/*
 * attn writers: the library's machine-readable outputs, for programs that
 * link libattn as well as for the attn CLI.
 *
 * Every output format is a capture sink (attn_capture in attn/attn.h): the
 * forward pass hands it each value it wants, and the sink streams it to a
 * FILE. Here: the CSV writers of attention maps, context vectors and
 * next-token predictions, the escapes of their text columns, what they
 * share (position labels, the top-k rows of the predictions), the heatmap
 * images of attention maps (drawn in memory, written as PNG), the fan-out
 * that feeds several sinks from one forward pass, and output files written
 * to a temporary name and renamed into place when complete (attn_outfile),
 * so a failed or interrupted run leaves nothing half-written. Every emit returns an attn_status and accepts
 * err == NULL. The terminal layouts (the readable maps, the predictions
 * listing, explain) are not here: they belong to the CLI (src/view/).
 *
 * Errors follow the rule of attn/attn.h (Conventions): a function that can
 * fail returns an attn_status (ATTN_OK == 0) and fills a caller-owned
 * attn_error when its err is not NULL; err may always be NULL. The sinks'
 * emit functions return an attn_status and fill err too. A sink does not
 * check each write: a failed write to an attn_outfile's FILE is reported
 * by attn_outfile_commit (ATTN_ERR_IO). The attn_labels_* constructors can
 * only run out of memory: they return ATTN_ERR_NOMEM and take no err.
 */
#ifndef ATTN_WRITE_H
#define ATTN_WRITE_H

#include "attn/attn.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- output files that appear only when complete (write/outfile.c) ---- */
typedef struct attn_outfile {
    FILE *f;
    char *path;     /* final path; NULL for standard output */
    char *tmp;      /* temporary path the data goes to until commit; NULL when the
                       target is written straight through (see attn_outfile_open) */
} attn_outfile;

/* "-" means standard output (never renamed). A regular file or a new path is
 * written to "<path>.tmp.XXXXXX" and renamed onto path by commit. A target
 * that exists and is not a regular file (a device, a FIFO, a socket), and any
 * path under /dev/ or /proc/ (/dev/stdout, /dev/fd/N), is written straight
 * through, so that no rename replaces a device. An empty path is
 * ATTN_ERR_USAGE. */
ATTN_API attn_status attn_outfile_open(attn_outfile *o, const char *path, attn_error *err);
/* Flushes, closes and renames into place; on failure removes the temporary.
 * A failed write (e.g. ENOSPC on /dev/full) is ATTN_ERR_IO. */
ATTN_API attn_status attn_outfile_commit(attn_outfile *o, attn_error *err);
/* Closes and removes the temporary (no-op for standard output or a closed file). */
ATTN_API void attn_outfile_abort(attn_outfile *o);
/* Removes every temporary the library still has open: those of output
 * files, of the safetensors writer and the folder of attn_import_llama2c.
 * Async-signal-safe, for signal handlers and fatal exits. */
ATTN_API void attn_outfile_abort_all(void);

/* ---- labels of the positions of one sequence (write/labels.c) ---- */
typedef struct attn_labels {
    size_t n;
    char **text; /* [n] owned */
} attn_labels;

/* The text of token `id`: the tokenizer's piece, or, without a tokenizer or
 * for an id it does not know, the id in decimal, written into num[cap]
 * (ATTN_ID_TEXT_MAX bytes always suffice). */
#define ATTN_ID_TEXT_MAX 24
ATTN_API const char *attn_token_text(const attn_tokenizer *tok, int id, char *num, size_t cap);
/* Labels from token ids [n]: attn_token_text of each. These two fail only
 * with ATTN_ERR_NOMEM (then l is empty). */
ATTN_API attn_status attn_labels_from_ids(attn_labels *l, const attn_tokenizer *tok, const int *ids, size_t n);
/* Labels "0", "1", ... for inputs given as vectors. */
ATTN_API attn_status attn_labels_from_positions(attn_labels *l, size_t n);
ATTN_API void attn_labels_free(attn_labels *l); /* accepts NULL */
/* The label of position pos, "?" when out of range (or l is NULL). */
ATTN_API const char *attn_labels_at(const attn_labels *l, int pos);

/* ---- next-token predictions (write/predictions.c) ---- */
/* What every predictions sink shares: it takes the logits of the main stack
 * (ATTN_V_LOGITS, [T, V]), and reports, after each position (or only the
 * last one of each emitted block of rows), the k most likely next tokens:
 * attn_topk, best first, probabilities a softmax over the whole vocabulary
 * in double, equal logits ranked by the lower id. The CSV writer below and
 * the CLI's readable listing both report them through attn_predictions_each. */
typedef struct attn_predictions {
    int k;                /* 1 .. vocab_size (attn_topk refuses another k) */
    bool last_only;       /* only the last row of each emitted block */
    attn_prediction *top; /* [k] scratch, owned */
} attn_predictions;
/* Fills p and allocates its scratch (ATTN_ERR_NOMEM); attn_predictions_free
 * releases it and accepts NULL or a zeroed p. */
ATTN_API attn_status attn_predictions_init(attn_predictions *p, int k, bool last_only, attn_error *err);
ATTN_API void attn_predictions_free(attn_predictions *p);
/* The values predictions are made from: the main stack's logits. user is
 * not read, so any predictions sink can use this as its wants. */
ATTN_API bool attn_predictions_wants(void *user, const attn_capture_key *key);
/* Receives the predictions after position pos: top [k], best first. */
typedef attn_status (*attn_prediction_row_fn)(void *user, int pos, const attn_prediction *top, int k,
                                              attn_error *err);
/* Computes the top k of each reported row of the logits v ([rows, V]) in
 * order and hands it to row(user, ...); stops at the first status that is
 * not ATTN_OK (from attn_topk or row) and returns it. */
ATTN_API attn_status attn_predictions_each(attn_predictions *p, const attn_capture_view *v,
                                           attn_prediction_row_fn row, void *user, attn_error *err);

/* ---- text in CSV fields (write/escape.c) ---- */
/* The visible escapes of every text column of the CSV outputs (token texts,
 * labels), so that each record is one physical line and the file is valid
 * UTF-8 without control bytes:
 *   LF -> \n, TAB -> \t, CR -> \r, a backslash -> \\,
 *   every other byte below 0x20, DEL (0x7f), and every byte that is not part
 *   of a well-formed UTF-8 sequence -> \xNN (two lowercase hex digits).
 * Printable ASCII other than the backslash, and well-formed UTF-8 (RFC 3629:
 * shortest form, no surrogates, at most U+10FFFF) stay as they are.
 * attn_escape_text writes the escape of s[0..n) (any bytes, NUL too) into
 * out[cap] like snprintf: at most cap - 1 bytes and a NUL (nothing when cap
 * is 0; out may then be NULL), and returns the length of the whole escape (without the NUL), at
 * most 4 * n: a return >= cap means it was cut. */
ATTN_API size_t attn_escape_text(char *out, size_t cap, const char *s, size_t n);
/* The inverse: reads the escapes above (\xNN with either case) in s[0..n)
 * and writes the bytes they stand for into out, which must hold n + 1 bytes
 * (the text never grows), followed by a NUL; *out_n is their count. Other
 * bytes are copied as they are. A '\' that starts none of the escapes is
 * ATTN_ERR_FORMAT (naming its offset; then *out_n is 0). For every byte
 * string x, unescaping attn_escape_text(x) gives back x. */
ATTN_API attn_status attn_unescape_text(char *out, size_t *out_n, const char *s, size_t n,
                                        attn_error *err);
/* Writes s as one CSV field: escaped as attn_escape_text says unless raw,
 * then RFC 4180-quoted (a quote inside doubled) when it holds a comma or a
 * quote or has a leading or trailing space; raw, also when it holds a CR or
 * LF or has a leading or trailing tab. Raw text is written as it is. */
ATTN_API void attn_csv_field(FILE *f, const char *s, bool raw);

/* ---- CSV (write/csv.c) ---- */
/* Each writer has raw_text: false (the zero of a designated initializer)
 * writes its text columns escaped, true as they are (attn_csv_field). */

/* What the writers need to know about the input being run. */
typedef struct attn_run_info {
    long input;                /* CSV "input" column: the input's 0-based number */
    const char *key;           /* keyed inputs (--keyed): the input's key, written in the
                                  "input" column (and naming its dump folder) in place
                                  of the number; NULL: the number */
    const attn_labels *main;    /* labels of the main stack's positions */
    const attn_labels *source;  /* encoder input of an encoder-decoder, else NULL */
    const attn_config *cfg;
} attn_run_info;
/* The "input" column of run: its key as a CSV field (attn_csv_field), else
 * its number. */
ATTN_API void attn_csv_input(FILE *f, const attn_run_info *run, bool raw_text);
/* The labels of the query rows (*q) and key columns (*k) of an attention
 * value: the encoder input's for the encoder of an encoder-decoder and for
 * cross-attention keys, else the main stack's. */
ATTN_API void attn_run_key_labels(const attn_run_info *run, const attn_capture_key *key,
                                  const attn_labels **q, const attn_labels **k);

/* Attention maps, one row per weight (ATTN_V_WEIGHTS):
 *   input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight
 * input: attn_csv_input; stack: attn_stack_name; kind: attn_kind_name;
 * head: the query head, or the sentinel's name (attn_head_name) of a map
 * made from several heads;
 * tokens: the labels of the query and key positions (attn_csv_field, escaped
 * unless raw_text); weight: %.9g. Entries
 * a causal mask sets to 0 (key->causal, key after query) are left out. */
typedef struct attn_csv_maps {
    FILE *f;
    const attn_run_info *run;
    bool raw_text; /* text columns as they are, not escaped */
} attn_csv_maps;
ATTN_API void attn_csv_maps_header(FILE *f);
ATTN_API bool attn_csv_maps_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_maps_emit(void *user, const attn_capture_key *key,
                                        const attn_capture_view *v, attn_error *err);

/* Context vectors, one row per position of the main stack's final hidden
 * state (ATTN_V_HIDDEN): input,pos,token,d0,d1,...,d{D-1} (%.9g); token as
 * in the maps. */
typedef struct attn_csv_context {
    FILE *f;
    const attn_run_info *run;
    bool raw_text; /* text columns as they are, not escaped */
} attn_csv_context;
ATTN_API void attn_csv_context_header(FILE *f, int d_model);
ATTN_API bool attn_csv_context_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_context_emit(void *user, const attn_capture_key *key,
                                           const attn_capture_view *v, attn_error *err);

/* Next-token predictions (see attn_predictions), k rows per reported position:
 *   input,pos,rank,token_id,token,logit,prob
 * pos: the position the prediction follows; rank from 1; token:
 * attn_token_text, as in the maps; logit and prob: %.9g. */
typedef struct attn_csv_predictions {
    FILE *f;
    const attn_run_info *run;
    const attn_tokenizer *tok; /* token texts; NULL: ids */
    bool raw_text;             /* token texts as they are, not escaped */
    attn_predictions pred;
} attn_csv_predictions;
/* Fills w (k, last_only: see attn_predictions; raw_text: see above);
 * attn_csv_predictions_free releases it and accepts NULL or a zeroed w. */
ATTN_API attn_status attn_csv_predictions_init(attn_csv_predictions *w, FILE *f, int k, bool last_only,
                                               const attn_run_info *run, const attn_tokenizer *tok,
                                               bool raw_text, attn_error *err);
ATTN_API void attn_csv_predictions_free(attn_csv_predictions *w);
ATTN_API void attn_csv_predictions_header(FILE *f);
ATTN_API bool attn_csv_predictions_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_predictions_emit(void *user, const attn_capture_key *key,
                                               const attn_capture_view *v, attn_error *err);

/* ---- heatmap images (write/heatmap.c, write/font.c; docs/heatmaps.md) ---- */
/* An RGB image in memory: rgb is [h, w, 3], 8 bits a channel, rows top first. */
typedef struct attn_image {
    int w, h;
    unsigned char *rgb; /* [h, w, 3], owned */
} attn_image;
ATTN_API void attn_image_free(attn_image *img); /* accepts NULL or a zeroed img */
/* Writes img to f as a PNG (8-bit RGB, stb_image_write): ATTN_ERR_NOMEM
 * when the encoder runs out of memory, ATTN_ERR_IO when a write to f fails
 * (f is not closed; a full disk may show only at fclose). */
ATTN_API attn_status attn_image_write_png(const attn_image *img, FILE *f, attn_error *err);
/* The same PNG in memory: *png malloc'd (free() it), *len its bytes. */
ATTN_API attn_status attn_image_png(const attn_image *img, unsigned char **png, size_t *len,
                                    attn_error *err);

/* A TrueType font for the texts of the images (stb_truetype). Only fonts
 * from a trusted source: stb_truetype does not validate a font file. NULL
 * wherever a font is taken means the built-in font (stb_easy_font, ASCII
 * only: other characters are drawn as '?'). */
typedef struct attn_font attn_font;
/* Reads a .ttf file (at most 64 MiB); ATTN_ERR_IO when it cannot be read,
 * ATTN_ERR_FORMAT when it is no TrueType font. */
ATTN_API attn_status attn_font_open(attn_font **out, const char *path, attn_error *err);
/* The same from a copy of buf[len]; `name` names it in messages. */
ATTN_API attn_status attn_font_from_memory(attn_font **out, const void *buf, size_t len,
                                           const char *name, attn_error *err);
ATTN_API void attn_font_free(attn_font *f); /* accepts NULL */

/* The layout (docs/heatmaps.md, "Layout"), in pixels. One image holds n
 * panels, each one map [T, Tk], in a grid of ceil(sqrt(n)) columns, and one
 * colour bar at the right:
 *   area_w = max(Tk * cell, AREA_MIN), area_h = max(T * cell, AREA_MIN)
 *   panel  = (LABELS + GAP + area_w) x (TITLE + LABELS + GAP + area_h)
 *   width  = 2 PAD + cols panel_w + (cols - 1) SEP + BAR_GAP + BAR_W + TICK + TICK_LABELS
 *   height = 2 PAD + [TITLE when the image has a title] + rows panel_h + (rows - 1) SEP
 * cell = clamp(CELL_BUDGET / max(T, Tk), CELL_MIN, CELL_MAX), then smaller
 * (down to 1) while the image is wider or higher than MAX_SIDE or has more
 * than MAX_PIXELS pixels; an image too large even with 1-pixel cells is
 * ATTN_ERR_USAGE. Of the position labels every label_step-th is drawn
 * (positions 0, k, 2k, ...), label_step = ceil(LABEL_PITCH / cell). */
#define ATTN_HEATMAP_PAD 8
#define ATTN_HEATMAP_TITLE 20
#define ATTN_HEATMAP_LABELS 80
#define ATTN_HEATMAP_GAP 4
#define ATTN_HEATMAP_SEP 16
#define ATTN_HEATMAP_AREA_MIN 120
#define ATTN_HEATMAP_BAR_GAP 16
#define ATTN_HEATMAP_BAR_W 14
#define ATTN_HEATMAP_TICK 4
#define ATTN_HEATMAP_TICK_LABELS 48
#define ATTN_HEATMAP_CELL_MAX 24
#define ATTN_HEATMAP_CELL_MIN 4
#define ATTN_HEATMAP_CELL_BUDGET 800
#define ATTN_HEATMAP_LABEL_PITCH 14
#define ATTN_HEATMAP_MAX_SIDE 8192
#define ATTN_HEATMAP_MAX_PIXELS ((int64_t)1 << 25)
#define ATTN_HEATMAP_PANELS_MAX 4096
typedef struct attn_heatmap_layout {
    int width, height;
    int cell;       /* side of one cell */
    int cols, rows; /* panels across and down */
    int label_step; /* every label_step-th position label is drawn */
} attn_heatmap_layout;
/* The layout of n panels of [T, Tk] (T, Tk >= 1, n 1..PANELS_MAX), with a
 * title band when `title`. */
ATTN_API attn_status attn_heatmap_layout_of(attn_heatmap_layout *lay, int T, int Tk, int n,
                                            bool title, attn_error *err);

/* One map of an image. */
typedef struct attn_heatmap_panel {
    const float *weights; /* [rows, cols]: row r is query position row_offset + r */
    int rows, cols;
    int row_offset;
    bool causal;          /* a causal mask: key positions after the query are masked */
    const char *title;    /* above the map (NULL: none) */
} attn_heatmap_panel;
/* What the panels of an image share. */
typedef struct attn_heatmap_style {
    const char *title;          /* the image's title band (NULL: none) */
    const attn_labels *queries; /* labels of the query positions (rows); NULL: the numbers */
    const attn_labels *keys;    /* labels of the key positions (columns); NULL: the numbers */
    const attn_font *font;      /* NULL: the built-in font */
} attn_heatmap_style;
/* Draws panels[n] (all of the same rows, cols and row_offset) into *out
 * (allocated; attn_image_free). A cell's colour is entry
 * round(255 * w / vmax) of the colormap (docs/heatmaps.md: dark purple to
 * light yellow, lightness rising), vmax the largest weight of the image's
 * unmasked cells (1 when none is above 0), a weight below 0 or not finite
 * drawn as 0; masked cells are hatched grey. The colour bar goes from 0 to
 * vmax, ticks at 0, vmax/2 and vmax. Token texts are escaped as in the
 * CSVs (attn_escape_text) and cut to fit (".."). On failure *out is zeroed. */
ATTN_API attn_status attn_heatmap_render(attn_image *out, const attn_heatmap_panel *panels, int n,
                                         const attn_heatmap_style *style, attn_error *err);
/* Titles of maps (snprintf-like: the length needed is returned):
 *   ATTN_TITLE_MAP   "layer 3, head 2, self (decoder)" ("layer 3, mean, self
 *                    (decoder)" for a map made from several heads, attn_head_name)
 *   ATTN_TITLE_LAYER "layer 3, self (decoder)"
 *   ATTN_TITLE_HEAD  "head 2", or "mean", "max", "rollout" */
typedef enum { ATTN_TITLE_MAP, ATTN_TITLE_LAYER, ATTN_TITLE_HEAD } attn_title_part;
ATTN_API size_t attn_heatmap_title(const attn_capture_key *key, attn_title_part part, char *buf,
                                   size_t cap);

/* ---- fan-out: one capture that feeds several sinks ---- */
#define ATTN_FANOUT_MAX 16
typedef struct attn_fanout {
    attn_capture sinks[ATTN_FANOUT_MAX];
    int n;
} attn_fanout;
/* Adds a sink; fails (ATTN_ERR_USAGE) when ATTN_FANOUT_MAX are there already. */
ATTN_API attn_status attn_fanout_add(attn_fanout *fo, attn_capture c, attn_error *err);
ATTN_API attn_capture attn_fanout_capture(attn_fanout *fo);

#ifdef __cplusplus
}
#endif
#endif
