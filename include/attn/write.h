/*
 * attn writers: the library's machine-readable outputs, for programs that
 * link libattn as well as for the attn CLI.
 *
 * Every output format is a capture sink (attn_capture in attn/attn.h): the
 * forward pass hands it each value it wants, and the sink streams it to a
 * FILE. Here: the CSV writers of attention maps, context vectors and
 * next-token predictions, the escapes of their text columns, what they
 * share (position labels, the top-k rows of the predictions), the sinks
 * that make maps from several heads or layers (mean, max, rollout) and the
 * per-head statistics with their CSV, the fan-out
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

/* ---- positions picked by name (write/pick.c; --from and --to) ---- */
/* A position, 0-based (negative counts from the end: -1 is the last), or
 * the text of a token, which picks every position that holds it. A label
 * holds the text when it equals it, or equals it once one leading space
 * (or U+2581, SentencePiece's word mark) is taken off the label: "cat"
 * picks the GPT-2 piece " cat" and the word "cat". */
typedef struct attn_pick {
    const char *text; /* the token's text (not owned); NULL: pos */
    long pos;
} attn_pick;
/* Parses s: an integer is a position, anything else a token's text, and
 * "=TEXT" the token TEXT even when it is a number ("=3"). An empty s, "="
 * alone or an integer past the int range is ATTN_ERR_USAGE. */
ATTN_API attn_status attn_pick_parse(attn_pick *p, const char *s, attn_error *err);
/* Does label hold p's text (always false for a position pick)? */
ATTN_API bool attn_pick_matches(const attn_pick *p, const char *label);
/* Does p pick position pos of the positions labelled l? p NULL picks all. */
ATTN_API bool attn_pick_has(const attn_pick *p, const attn_labels *l, int pos);
/* How many positions of l p picks (l's size when p is NULL). */
ATTN_API size_t attn_pick_count(const attn_pick *p, const attn_labels *l);

/* ---- next-token predictions (write/predictions.c) ---- */
/* What every predictions sink shares: it takes the logits of the main stack
 * (ATTN_V_LOGITS, [T, V]), and reports, after each position (or only the
 * last one of each emitted block of rows), the k most likely next tokens:
 * attn_topk, best first, probabilities a softmax over the whole vocabulary
 * in double, equal logits ranked by the lower id. With a target token, the
 * target follows them when it is not among them (or alone when k is 0), with
 * its rank in the whole vocabulary. With clean logits (the same input's
 * logits from another run, e.g. without an ablation), each reported token
 * also carries its logit and probability there. The CSV writer below and the
 * CLI's readable listing both report them through attn_predictions_each. */
typedef struct attn_predictions {
    int k;                  /* 0 .. vocab_size (0 only with a target) */
    bool last_only;         /* only the last row of each emitted block */
    int target;             /* a token id, or -1: none */
    const float *clean;     /* [clean_rows, V] logits of another run, or NULL */
    int clean_rows;         /* rows of clean: a row past them is an ATTN_ERR_USAGE */
    attn_prediction *top;   /* [k + 1] scratch, owned */
    attn_prediction *other; /* [k + 1] scratch, owned: the same tokens in clean */
    int *rank;              /* [k + 1] scratch, owned */
} attn_predictions;
/* One reported position: n tokens (the k best, then the target when it is
 * not among them), their ranks from 1, and, with clean logits, the same
 * tokens' entries there (else NULL). */
typedef struct attn_prediction_row {
    int pos;
    int n;
    const attn_prediction *top;   /* [n] */
    const int *rank;              /* [n] */
    const attn_prediction *clean; /* [n] or NULL */
} attn_prediction_row;
/* Fills p (no target, no clean logits) and allocates its scratch
 * (ATTN_ERR_NOMEM); attn_predictions_free releases it and accepts NULL or a
 * zeroed p. */
ATTN_API attn_status attn_predictions_init(attn_predictions *p, int k, bool last_only, attn_error *err);
ATTN_API void attn_predictions_free(attn_predictions *p);
/* The values predictions are made from: the main stack's logits. user is
 * not read, so any predictions sink can use this as its wants. */
ATTN_API bool attn_predictions_wants(void *user, const attn_capture_key *key);
typedef attn_status (*attn_prediction_row_fn)(void *user, const attn_prediction_row *row,
                                              attn_error *err);
/* Computes each reported row of the logits v ([rows, V]) in order and hands
 * it to row(user, ...); stops at the first status that is not ATTN_OK (from
 * attn_topk or row) and returns it. */
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

/* ---- numbers as text (write/fmt.c) ---- */
/* attn_format_float writes x into buf (ATTN_FLOAT_TEXT_MAX bytes at least)
 * followed by a NUL and returns the length: the shortest decimal that strtof
 * reads back as x (of the shortest ones, the closest to x), in %g's
 * notation for that number: with dexp the exponent of its first digit,
 * plain decimal when -4 <= dexp <= 8 ("0.0001", "0.25", "123456790"), else
 * d.ddde+XX with two exponent digits at least ("1e+09", "1.4e-45"); no
 * trailing zeros after a decimal point, no '+' sign. -0 is "-0", infinities
 * "inf" and "-inf", NaN "nan", or "-nan" with its sign bit set. These are
 * the bytes of printf("%.9g") whenever that is already the shortest
 * round-trip form; otherwise only the digits are fewer (0.1f: "0.1" where
 * %.9g has "0.100000001"), and the notation follows the shorter number. */
#define ATTN_FLOAT_TEXT_MAX 16 /* "-1.23456789e-38" and its NUL */
ATTN_API size_t attn_format_float(char *buf, float x);
/* v in decimal ("-12"), a NUL after it; returns the length. */
#define ATTN_INT_TEXT_MAX 21 /* "-9223372036854775808" and its NUL */
ATTN_API size_t attn_format_int(char *buf, long long v);

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
    /* --from, --to: the query rows and key columns of the maps that the
     * maps CSV, the terminal view and the statistics keep (attn_pick_has
     * on the rows' and columns' labels); NULL keeps all */
    const attn_pick *from, *to;
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
 * unless raw_text); weight: attn_format_float. Entries
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
 * state (ATTN_V_HIDDEN): input,pos,token,d0,d1,...,d{D-1} (attn_format_float); token as
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

/* Next-token predictions (see attn_predictions), a row per reported token:
 *   input,pos,rank,token_id,token,logit,prob[,clean_logit,clean_prob]
 * pos: the position the prediction follows; rank from 1; token:
 * attn_token_text, as in the maps; logit (float32): attn_format_float;
 * prob (double): %.9g; clean_logit, clean_prob: the same from the clean
 * logits, when the predictions have them (the header's clean flag). */
typedef struct attn_csv_predictions {
    FILE *f;
    const attn_run_info *run;
    const attn_tokenizer *tok; /* token texts; NULL: ids */
    bool raw_text;             /* token texts as they are, not escaped */
    attn_predictions pred;
    int layer; /* >= 0: a column "layer" after "input" (attn_csv_lens sets it); init: -1 */
} attn_csv_predictions;
/* Fills w (k, last_only: see attn_predictions; raw_text: see above);
 * attn_csv_predictions_free releases it and accepts NULL or a zeroed w. */
ATTN_API attn_status attn_csv_predictions_init(attn_csv_predictions *w, FILE *f, int k, bool last_only,
                                               const attn_run_info *run, const attn_tokenizer *tok,
                                               bool raw_text, attn_error *err);
ATTN_API void attn_csv_predictions_free(attn_csv_predictions *w);
ATTN_API void attn_csv_predictions_header(FILE *f, bool clean);
ATTN_API bool attn_csv_predictions_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_predictions_emit(void *user, const attn_capture_key *key,
                                               const attn_capture_view *v, attn_error *err);

/* The logit lens (write/lens.c): each residual stream of the main stack
 * (ATTN_V_RESID, blocks.L.resid) read through the final norm and the
 * unembedding (attn_model_unembed), and its top k per position (as
 * attn_predictions: "what the model would predict if it stopped after
 * layer L"), one CSV row each:
 *   input,layer,pos,rank,token_id,token,logit,prob
 * with the columns of attn_csv_predictions and layer L. The last layer's
 * rows are the model's own predictions. */
typedef struct attn_csv_lens {
    attn_csv_predictions csv;
    const attn_model *model;
    float *logits, *scratch; /* [rows, V], [rows, D], grown as needed */
    size_t logits_cap, scratch_cap;
} attn_csv_lens;
/* Fills w; attn_csv_lens_free releases it and accepts NULL or a zeroed w.
 * ATTN_ERR_USAGE when m has no lm_head. */
ATTN_API attn_status attn_csv_lens_init(attn_csv_lens *w, FILE *f, const attn_model *m, int k,
                                        bool last_only, const attn_run_info *run, bool raw_text,
                                        attn_error *err);
ATTN_API void attn_csv_lens_free(attn_csv_lens *w);
ATTN_API void attn_csv_lens_header(FILE *f);
ATTN_API bool attn_csv_lens_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_lens_emit(void *user, const attn_capture_key *key,
                                        const attn_capture_view *v, attn_error *err);

/* ---- maps made from several heads or layers (write/aggregate.c) ---- */
/* Sinks that stand in front of a maps sink (attn_csv_maps, or any sink that
 * takes ATTN_V_WEIGHTS): they take the weights of single heads and hand
 * `inner` maps made from several, whose key is that of the heads with the
 * head set to a sentinel (ATTN_HEAD_MEAN, ATTN_HEAD_MAX, ATTN_HEAD_ROLLOUT);
 * stack, source, layer, kind and causal are kept, so a maps writer still
 * leaves out the entries a causal mask sets to 0 (they are 0 in every head,
 * and so in every mean, max and rollout of them). Weights are summed and
 * multiplied in double; the map handed on is rounded to float32. Values
 * other than per-head weights pass through to inner as they are. docs/
 * aggregation.md has the formulas. */

/* --reduce: the mean or the largest weight over the heads it is given, per
 * attention sub-layer (one stack, layer and kind). The map of a sub-layer is
 * emitted when head last_head arrives, when a head of another sub-layer (or
 * of another shape) arrives, or at attn_reduce_flush, whichever comes first;
 * the mean is over the heads received. */
typedef enum attn_reduce_op { ATTN_REDUCE_MEAN, ATTN_REDUCE_MAX } attn_reduce_op;
typedef struct attn_reduce {
    attn_capture inner;  /* where the reduced maps go */
    attn_reduce_op op;
    int last_head;       /* the last head a sub-layer sends (e.g. the last one selected);
                            -1: none known, emit only at a change or a flush */
    /* state, owned; from attn_reduce_init, released by attn_reduce_free */
    bool pending;        /* a map is being accumulated */
    attn_capture_key key;
    int rows, cols, row_offset, count;
    double *acc;         /* [rows, cols] */
    float *out;          /* [rows, cols] */
    size_t cap;          /* elements acc and out hold */
} attn_reduce;
/* Fills a (nothing allocated yet: the buffers grow with the maps).
 * ATTN_ERR_USAGE for an unknown op, or a last_head below -1. */
ATTN_API attn_status attn_reduce_init(attn_reduce *a, attn_capture inner, attn_reduce_op op,
                                      int last_head, attn_error *err);
ATTN_API void attn_reduce_free(attn_reduce *a); /* accepts NULL or a zeroed a */
ATTN_API bool attn_reduce_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_reduce_emit(void *user, const attn_capture_key *key,
                                      const attn_capture_view *v, attn_error *err);
/* Emits the map being accumulated, if any (call it after each input). */
ATTN_API attn_status attn_reduce_flush(attn_reduce *a, attn_error *err);
/* Forgets the map being accumulated, if any (an input that failed). */
ATTN_API void attn_reduce_discard(attn_reduce *a);

/* --rollout: attention rollout (Abnar & Zuidema 2020) of each stack's
 * self-attention. For layer l, with A_l the mean over all n_heads heads,
 *   Ã_l = 0.5 A_l + 0.5 I, each row divided by its sum,
 *   R_0 = Ã_0,  R_l = Ã_l · R_{l-1}   (rows: query positions, columns: keys)
 * and R_l is emitted with head ATTN_HEAD_ROLLOUT and layer l when inner
 * wants it. It wants the weights of every head of the self-attention of
 * layers 0 .. L of a stack, L the highest layer whose rollout inner wants;
 * cross-attention weights are not taken (rollout mixes positions of one
 * sequence; cross-attention maps queries of one onto keys of another) and
 * are not passed on. The heads of a layer must come in order 0 .. H-1, the
 * layers in order from 0, each as one square map with row_offset 0 (the
 * whole sequence at once); anything else is ATTN_ERR_USAGE. Layer 0 of a
 * stack starts its product again (a new input). */
typedef struct attn_rollout_stack {
    int layer;           /* the layer being accumulated or last finished; -1: none */
    int heads;           /* heads of `layer` summed so far (n_heads: finished) */
    int n;               /* positions */
    double *a, *r, *tmp; /* [n, n]: the heads' sum, R of the last finished layer, scratch */
    float *out;          /* [n, n] */
    size_t cap;          /* elements each buffer holds */
} attn_rollout_stack;
typedef struct attn_rollout {
    attn_capture inner;
    int n_heads;
    int n_layers[2];     /* of each stack, by attn_stack (0: the model has no such stack) */
    attn_rollout_stack st[2];
} attn_rollout;
/* Fills r for the model of cfg (its heads and the layers of its stacks). */
ATTN_API attn_status attn_rollout_init(attn_rollout *r, attn_capture inner, const attn_config *cfg,
                                       attn_error *err);
ATTN_API void attn_rollout_free(attn_rollout *r); /* accepts NULL or a zeroed r */
ATTN_API bool attn_rollout_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_rollout_emit(void *user, const attn_capture_key *key,
                                       const attn_capture_view *v, attn_error *err);

/* ---- per-head statistics (write/stats.c) ---- */
/* The statistics of one attention map v ([T, Tk] weights), each the mean
 * over its query rows, in double. Query row r is position i = row_offset + r,
 * key column j is position j (for cross-attention: a position of the encoder
 * input, compared with i as a number):
 *   entropy   -sum_j w_ij ln w_ij in nats (entries <= 0 add nothing)
 *   sink      w_i0, the weight on key position 0
 *   distance  sum_j w_ij |i - j|, the mean attended distance
 *   prev      w_i,i-1, the weight on the previous position; rows with i = 0
 *             have none and are left out of this mean (prev_rows counts
 *             the others); a key i-1 past the last key counts as 0
 *   self      w_ii, the weight on the same position (0 past the last key)
 *   to        sum_j w_ij over the key positions j a pick `to` picks
 *             (attn_map_stats_pick only; else 0) */
typedef struct attn_map_stats {
    double entropy, sink, distance, prev, self, to;
    int rows;      /* query rows averaged over (0: an empty map, every mean 0) */
    int prev_rows; /* rows with i >= 1 (0: prev is 0 and means nothing) */
} attn_map_stats;
ATTN_API void attn_map_stats_compute(attn_map_stats *s, const attn_capture_view *v);
/* The same over the query rows that `from` picks (ql: the rows' labels),
 * with `to` the weight on the key positions `to` picks (kl: the keys'
 * labels); a NULL pick picks every position. */
ATTN_API void attn_map_stats_pick(attn_map_stats *s, const attn_capture_view *v,
                                  const attn_labels *ql, const attn_labels *kl,
                                  const attn_pick *from, const attn_pick *to);

/* One CSV row per map of weights (ATTN_V_WEIGHTS) it receives:
 *   input,stack,layer,kind,head,entropy,sink,distance,prev,self[,to]
 * input, stack, kind, head as in the maps CSV; the numbers attn_map_stats,
 * %.9g; prev is an empty field when no row has i >= 1 (a one-position
 * input). With run->from, the means are over the query rows it picks (a
 * map where it picks none has no row); with run->to, the column "to" is
 * the weight on the keys it picks. */
typedef struct attn_csv_stats {
    FILE *f;
    const attn_run_info *run;
    bool raw_text; /* text columns (a key) as they are, not escaped */
} attn_csv_stats;
ATTN_API void attn_csv_stats_header(FILE *f, bool to); /* to: the "to" column too */
ATTN_API bool attn_csv_stats_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_stats_emit(void *user, const attn_capture_key *key,
                                         const attn_capture_view *v, attn_error *err);
/* ---- NumPy .npy files of float32 (write/npy.c) ---- */
/* Bytes a .npy header of at most ATTN_MAX_DIMS dimensions needs. */
#define ATTN_NPY_HEADER_MAX 320
/* The header of a NumPy format 1.0 file holding a little-endian float32
 * ('<f4') array in C order of shape[ndim] (ndim 0..ATTN_MAX_DIMS; no
 * dimension negative): magic, version, length, the dict, padded with spaces
 * and a newline so that the data start at a multiple of 64 bytes. Into
 * buf[cap] (ATTN_NPY_HEADER_MAX always suffice); *len is its length (0 on
 * failure). ATTN_ERR_USAGE for a bad ndim or dimension or a small cap,
 * ATTN_ERR_NOMEM when the element count overflows size_t / 4. */
ATTN_API attn_status attn_npy_header(char *buf, size_t cap, size_t *len, const int64_t *shape,
                                     int ndim, attn_error *err);
/* A .npy file written as a stream: attn_npy_begin writes the header with the
 * whole shape; attn_npy_write appends n values (C order) at a time, as many
 * times as wanted, refusing (ATTN_ERR_INTERNAL) values past the count the
 * header promised; attn_npy_complete tells whether they are all there. The
 * FILE stays the caller's. Write failures are ATTN_ERR_IO ("write failed",
 * for the caller to prefix with the file's name). */
typedef struct attn_npy_writer {
    FILE *f;
    uint64_t total, done; /* values promised by the header, values written */
} attn_npy_writer;
ATTN_API attn_status attn_npy_begin(attn_npy_writer *w, FILE *f, const int64_t *shape, int ndim,
                                    attn_error *err);
ATTN_API attn_status attn_npy_write(attn_npy_writer *w, const float *data, size_t n,
                                    attn_error *err);
ATTN_API bool attn_npy_complete(const attn_npy_writer *w);

/* ---- named dumps: every captured value into its own file (write/dump.c) ---- */
/* Names are those of attn_capture_name without the head suffix (the
 * "per-layer name"): "embed", "blocks.3.attn.weights", "encoder.blocks.0.attn.q",
 * "blocks.1.cross.k", "blocks.0.mlp.out", "blocks.0.resid", "hidden", "logits".
 * docs/dumps.md lists them with their shapes and the file layouts. */
#define ATTN_DUMP_NAME_MAX 96
/* The per-layer name of key into buf[cap] (snprintf-like: returns the length
 * it needs). */
ATTN_API size_t attn_dump_key_name(const attn_capture_key *key, char *buf, size_t cap);
/* Is the value per head (q, k, v, scores, weights, context)? */
ATTN_API bool attn_value_per_head(attn_value v);
/* Does name match one of the shell-style patterns[n] (fnmatch(3), no flags:
 * '*' also matches dots)? */
ATTN_API bool attn_dump_match(const char *const *patterns, size_t n, const char *name);

/* One name a config's forward pass produces, with its shape written as a
 * formula of the sizes: "[H=4, T, T]", "[S, D=64]", "[T, V=50]" (T: the
 * main stack's positions, S: the encoder input's). */
typedef struct attn_dump_entry {
    attn_capture_key key; /* head -1; layer -1 for embed, hidden, logits */
    char name[ATTN_DUMP_NAME_MAX];
    char shape[96];
} attn_dump_entry;
/* Calls fn(user, e) for every name of cfg in the order of the forward pass
 * (the encoder of an encoder-decoder first; in each block attn.in, q, k, v,
 * scores, weights, context, concat, out, then cross.*, mlp.out, resid); stops
 * when fn returns false. Returns the number of calls. */
typedef bool (*attn_dump_entry_fn)(void *user, const attn_dump_entry *e);
ATTN_API size_t attn_dump_each_name(const attn_config *cfg, attn_dump_entry_fn fn, void *user);

typedef enum { ATTN_DUMP_NPY, ATTN_DUMP_CSV, ATTN_DUMP_JSONL } attn_dump_format;
/* "npy", "csv", "jsonl" -> the format; -1 for anything else. */
ATTN_API int attn_dump_format_parse(const char *s);
ATTN_API const char *attn_dump_format_ext(attn_dump_format f); /* "npy", "csv", "jsonl" */

typedef struct attn_dump_opts {
    attn_dump_format format;
    const char *const *patterns; /* [n_patterns], kept by pointer: they must outlive the sink */
    size_t n_patterns;
    const attn_run_info *run;    /* the "input" field of csv and jsonl */
    /* how many heads of each per-head value arrive (in increasing order):
     * n_heads of q, scores, weights and context, n_kv_heads of k and v. The
     * model's n_heads and n_kv_heads, or fewer behind a selection of heads. */
    int n_heads, n_kv_heads;
} attn_dump_opts;

/* The sink. Each value whose per-layer name matches a pattern goes to
 * DIR/NAME.EXT, DIR given by attn_dump_begin for each input:
 *   npy   a [rows, cols] value as such; a per-head value as one array per
 *         layer [heads, rows, cols], heads in the order they came; the
 *         header comes first and each head is written as it is emitted,
 *         so that one head at a time is held (by the forward pass).
 *   csv   header input,name,head,i,j,value; one row per value (head empty
 *         for values that are not per head; i, j: row and column; value:
 *         attn_format_float).
 *   jsonl one line per tensor: {"input":..,"name":..,"shape":[..],"data":[..],
 *         "heads":[..]} (heads: per-head values only), data flat in C order,
 *         attn_format_float, a value that is not finite as null.
 * A file is created new (an existing one is ATTN_ERR_IO: a value named
 * twice). Heads out of order, more heads than announced or rows of another
 * width than the first head's are ATTN_ERR_INTERNAL. */
typedef struct attn_dump attn_dump;
ATTN_API attn_status attn_dump_new(attn_dump **out, const attn_dump_opts *o, attn_error *err);
/* Closes the files still open (without checking them) and frees d; accepts NULL. */
ATTN_API void attn_dump_free(attn_dump *d);
/* Before each input: its files go to the existing folder dir (copied). */
ATTN_API attn_status attn_dump_begin(attn_dump *d, const char *dir, attn_error *err);
/* After each input: every file must be complete (all its heads arrived);
 * closes them, reporting a failed write as ATTN_ERR_IO naming the file. */
ATTN_API attn_status attn_dump_end(attn_dump *d, attn_error *err);
/* Closes the files of the input without checks (the input failed). */
ATTN_API void attn_dump_drop(attn_dump *d);
/* Number of files written (completed) since attn_dump_new. */
ATTN_API size_t attn_dump_files(const attn_dump *d);
ATTN_API bool attn_dump_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_dump_emit(void *user, const attn_capture_key *key,
                                    const attn_capture_view *v, attn_error *err);
/* ---- the HTML head view (write/html.c, docs/html.md) ---- */
/* Text inside HTML and inside JSON strings. Both first apply the visible
 * escapes of attn_escape_text (control bytes, a backslash and bytes that are
 * not well-formed UTF-8 become \n, \t, \r, \\, \xNN), so the text shown
 * is the CSV's token text and the output is valid UTF-8 without control
 * bytes. attn_html_text then writes & < > " ' as character references
 * (safe in element text and in quoted attribute values); attn_json_string
 * writes one JSON string with its quotes, " and \ escaped, and < > & and
 * U+2028, U+2029 as \uXXXX, so it is also safe inside a <script> element
 * (no "</script" or "<!--" can appear) and as a JavaScript literal. s[0..n)
 * may hold any bytes, NUL too. ATTN_ERR_NOMEM is the only failure (of a
 * text over 1 KiB, whose escape is built in memory). */
ATTN_API attn_status attn_html_text(FILE *f, const char *s, size_t n, attn_error *err);
ATTN_API attn_status attn_json_string(FILE *f, const char *s, size_t n, attn_error *err);

/* A capture sink that writes one self-contained HTML page (no network, no
 * external script, font or style) to explore the attention maps
 * (ATTN_V_WEIGHTS) of one or several inputs: the head view (query and key
 * tokens in two columns, lines weighted by the chosen head or by all heads
 * in colour) and a matrix view. It streams: attn_html_begin writes the
 * page's head and style, attn_html_input_begin the labels of the input in
 * w->run, each emit one map as it arrives, attn_html_input_end its end and
 * attn_html_end the script and the closing tags; nothing but the caller's
 * map is held in memory. Each weight is stored as one byte,
 * q = floor(255 * clamp(w, 0, 1) + 1/2), base64-encoded, so the page's
 * weight q / 255 is within 1/510 of w. Entries a causal mask sets to 0
 * (key->causal, key after query) are not stored and are shown as masked.
 * A map's rows may come in several emits (row_offset). The key side of a
 * map shows the labels attn_run_key_labels gives (the source's for
 * cross-attention). Writes are not checked one by one: a failed write shows
 * in ferror(f) (attn_outfile_commit reports it). */
typedef struct attn_html {
    FILE *f;
    const attn_run_info *run; /* the input being run: number, key, labels */
    /* state, set by attn_html_begin */
    long inputs;      /* inputs begun so far */
    bool in_input;    /* between attn_html_input_begin and _end */
    long input_start; /* offset of the current input's first byte; -1: f cannot be cut */
} attn_html;
/* Fills h and writes the page's head; title (NULL: "attn") names the page. */
ATTN_API attn_status attn_html_begin(attn_html *h, FILE *f, const attn_run_info *run,
                                     const char *title, attn_error *err);
/* Starts an input: its number, key and labels (from h->run). An emit
 * outside an input starts one. */
ATTN_API attn_status attn_html_input_begin(attn_html *h, attn_error *err);
/* Ends the input. ok false (the input failed): what was written for it is
 * cut off the file when f is a regular file, else marked so that the page
 * does not show it. */
ATTN_API attn_status attn_html_input_end(attn_html *h, bool ok, attn_error *err);
ATTN_API bool attn_html_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_html_emit(void *user, const attn_capture_key *key,
                                    const attn_capture_view *v, attn_error *err);
/* Ends an input still open (as ok) and writes the script and the closing tags. */
ATTN_API attn_status attn_html_end(attn_html *h, attn_error *err);
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
    const unsigned char *mask; /* [rows, cols] or NULL: the cells where it is not 0
                                * are masked too (a sweep's cells not measured) */
    const char *title;    /* above the map (NULL: none) */
} attn_heatmap_panel;
/* What the panels of an image share. */
typedef struct attn_heatmap_style {
    const char *title;          /* the image's title band (NULL: none) */
    const attn_labels *queries; /* labels of the query positions (rows); NULL: the numbers */
    const attn_labels *keys;    /* labels of the key positions (columns); NULL: the numbers */
    const attn_font *font;      /* NULL: the built-in font */
    bool diverging;             /* signed values (a sweep's differences): see below */
} attn_heatmap_style;
/* Draws panels[n] (all of the same rows, cols and row_offset) into *out
 * (allocated; attn_image_free). A cell's colour is entry
 * round(255 * w / vmax) of the colormap (docs/heatmaps.md: dark purple to
 * light yellow, lightness rising), vmax the largest weight of the image's
 * unmasked cells (1 when none is above 0), a weight below 0 or not finite
 * drawn as 0; masked cells are hatched grey. The colour bar goes from 0 to
 * vmax, ticks at 0, vmax/2 and vmax. Token texts are escaped as in the
 * CSVs (attn_escape_text) and cut to fit (".."). With style->diverging the
 * values are signed (no mask applies unless causal): vmax is the largest
 * |w|, w is drawn from blue (-vmax) through light grey (0) to red (+vmax),
 * each channel linear in w / vmax (docs/heatmaps.md, "Sweeps"), not finite
 * as 0, and the bar goes from -vmax to vmax, ticks at -vmax, 0 and vmax.
 * On failure *out is zeroed. */
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
