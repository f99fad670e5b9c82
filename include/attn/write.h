/*
 * attn writers: capture sinks and the files they write, for programs that
 * link libattn as well as for the attn CLI.
 *
 * Every output format is a capture sink (attn_capture in attn/attn.h): the
 * forward pass hands it each value it wants, and the sink streams it to a
 * FILE. Files are written to a temporary name and renamed into place when
 * complete (attn_outfile), so a failed or interrupted run leaves nothing
 * half-written. The terminal views (the readable maps, explain) are not
 * here: they belong to the CLI (src/view/).
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
    char *tmp;      /* temporary path the data goes to until commit */
} attn_outfile;

/* "-" means standard output (never renamed). */
ATTN_API attn_status attn_outfile_open(attn_outfile *o, const char *path, attn_error *err);
/* Flushes, closes and renames into place; on failure removes the temporary. */
ATTN_API attn_status attn_outfile_commit(attn_outfile *o, attn_error *err);
/* Closes and removes the temporary (no-op for standard output or a closed file). */
ATTN_API void attn_outfile_abort(attn_outfile *o);
/* Removes every temporary still open (for signal handlers and fatal exits). */
ATTN_API void attn_outfile_abort_all(void);

/* ---- labels of the positions of one sequence ---- */
typedef struct attn_labels {
    size_t n;
    char **text; /* [n] owned */
} attn_labels;

/* The text of token `id`: the tokenizer's piece, or, without a tokenizer or
 * for an id it does not know, the id in decimal, written into num[cap]
 * (ATTN_ID_TEXT_MAX bytes always suffice). */
#define ATTN_ID_TEXT_MAX 24
ATTN_API const char *attn_token_text(const attn_tokenizer *tok, int id, char *num, size_t cap);
/* Labels from token ids: the tokenizer's pieces, or the id itself without one. */
ATTN_API attn_status attn_labels_from_ids(attn_labels *l, const attn_tokenizer *tok, const int *ids, size_t n);
/* Labels "0", "1", ... for inputs given as vectors. */
ATTN_API attn_status attn_labels_from_positions(attn_labels *l, size_t n);
ATTN_API void attn_labels_free(attn_labels *l);
/* The label of position pos, "?" when out of range (or l is NULL). */
ATTN_API const char *attn_labels_at(const attn_labels *l, int pos);

/* ---- CSV (write/csv.c) ---- */
/* Writes s as one CSV field, RFC 4180-quoted when it holds a comma, quote,
 * CR/LF, or leading/trailing white space. */
ATTN_API void attn_csv_field(FILE *f, const char *s);

/* What the writers need to know about the input being run. */
typedef struct attn_run_info {
    long input;                /* CSV "input" column */
    const attn_labels *main;    /* labels of the main stack's positions */
    const attn_labels *source;  /* encoder input of an encoder-decoder, else NULL */
    const attn_config *cfg;
} attn_run_info;

typedef struct attn_csv_maps {
    FILE *f;
    const attn_run_info *run;
} attn_csv_maps;
ATTN_API void attn_csv_maps_header(FILE *f);
ATTN_API bool attn_csv_maps_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                  attn_error *err);

typedef struct attn_csv_context {
    FILE *f;
    const attn_run_info *run;
} attn_csv_context;
ATTN_API void attn_csv_context_header(FILE *f, int d_model);
ATTN_API bool attn_csv_context_wants(void *user, const attn_capture_key *key);
ATTN_API attn_status attn_csv_context_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err);

/* ---- fan-out: one capture that feeds several sinks ---- */
#define ATTN_FANOUT_MAX 8
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
