/* CSV writers: attention maps, context vectors and next-token predictions.
 * Their columns are described in attn/write.h and, for the attn CLI, in the
 * README (maps, context) and `attn run --help` (all three). Their text
 * fields go through attn_csv_field (write/escape.c), their float32 numbers
 * through attn_format_float (write/fmt.c). The maps writer, the one with
 * the most rows, makes the text of each key column and query row once per
 * block and its rows in a buffer written in large chunks. */
#include "attn/write.h"

#include <stdlib.h>
#include <string.h>

void attn_run_key_labels(const attn_run_info *run, const attn_capture_key *key,
                         const attn_labels **q, const attn_labels **k) {
    if (key->source) {
        *q = *k = run->source;
    } else {
        *q = run->main;
        *k = key->kind == ATTN_KIND_CROSS ? run->source : run->main;
    }
}

void attn_csv_input(FILE *f, const attn_run_info *run, bool raw_text) {
    if (run->key) attn_csv_field(f, run->key, raw_text);
    else fprintf(f, "%ld", run->input);
}

void attn_csv_maps_header(FILE *f) {
    fputs("input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n", f);
}

bool attn_csv_maps_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

/* The text pieces of a maps block, made once per emit: for each key
 * column c, ",c,KEY_TOKEN," (key[c] .. key[c + 1] in text), and for each
 * row r, "INPUT,stack,layer,kind,head,QPOS,QUERY_TOKEN" (row[r] ..). */
typedef struct maps_pieces {
    char *text;
    size_t len;
    size_t *key, *row; /* [cols + 1], [rows + 1] offsets into text */
    unsigned char *keep; /* [cols] the key columns --to keeps; NULL: all */
    const attn_labels *ql; /* the query labels (for --from) */
} maps_pieces;

static void maps_pieces_free(maps_pieces *mp) {
    free(mp->text);
    free(mp->key);
    free(mp->row);
    free(mp->keep);
}

static attn_status maps_pieces_make(maps_pieces *mp, const attn_csv_maps *w,
                                    const attn_capture_key *key, const attn_capture_view *v,
                                    attn_error *err) {
    const attn_run_info *run = w->run;
    const attn_labels *ql, *kl;
    attn_run_key_labels(run, key, &ql, &kl);
    memset(mp, 0, sizeof *mp);
    mp->ql = ql;
    FILE *m = NULL;
    if (!(mp->key = malloc(((size_t)v->cols + 1) * sizeof *mp->key)) ||
        !(mp->row = malloc(((size_t)v->rows + 1) * sizeof *mp->row)) ||
        !(m = open_memstream(&mp->text, &mp->len))) {
        maps_pieces_free(mp);
        return attn_error_set(err, ATTN_ERR_NOMEM, "maps CSV: out of memory");
    }
    if (run->to) {
        if (!(mp->keep = malloc((size_t)v->cols + 1))) {
            fclose(m);
            maps_pieces_free(mp);
            return attn_error_set(err, ATTN_ERR_NOMEM, "maps CSV: out of memory");
        }
        for (int c = 0; c < v->cols; c++) mp->keep[c] = attn_pick_has(run->to, kl, c);
    }
    char num[12];
    for (int c = 0; c < v->cols; c++) {
        mp->key[c] = (size_t)ftell(m);
        fprintf(m, ",%d,", c);
        attn_csv_field(m, attn_labels_at(kl, c), w->raw_text);
        putc(',', m);
    }
    mp->key[v->cols] = (size_t)ftell(m);
    for (int r = 0; r < v->rows; r++) {
        const int qpos = v->row_offset + r;
        mp->row[r] = (size_t)ftell(m);
        attn_csv_input(m, run, w->raw_text);
        fprintf(m, ",%s,%d,%s,%s,%d,", attn_stack_name(key->stack), key->layer,
                attn_kind_name(key->kind), attn_head_name(key->head, num, sizeof num), qpos);
        attn_csv_field(m, attn_labels_at(ql, qpos), w->raw_text);
    }
    mp->row[v->rows] = (size_t)ftell(m);
    if (fclose(m) || !mp->text) {
        maps_pieces_free(mp);
        return attn_error_set(err, ATTN_ERR_NOMEM, "maps CSV: out of memory");
    }
    return ATTN_OK;
}

/* The most bytes row r of a map can take: every key column, its text and a
 * number of at most ATTN_FLOAT_TEXT_MAX characters and a newline. */
static size_t row_bound(const maps_pieces *mp, const attn_capture_view *v, int r) {
    const size_t head_n = mp->row[r + 1] - mp->row[r], keys = mp->key[v->cols] - mp->key[0];
    return (size_t)v->cols * (head_n + ATTN_FLOAT_TEXT_MAX + 1) + keys;
}

/* The lines of row r (query qpos = row_offset + r) into dst, which has
 * room for row_bound bytes: the visible key columns that --to keeps, one
 * line each. Returns the bytes written (0 for a row --from leaves out). */
static size_t format_row(char *dst, const maps_pieces *mp, const attn_run_info *run,
                         const attn_labels *ql, const attn_capture_key *key,
                         const attn_capture_view *v, int r) {
    const int qpos = v->row_offset + r;
    if (!attn_pick_has(run->from, ql, qpos)) return 0; /* --from */
    const float *row = v->data + (size_t)r * (size_t)v->cols; /* [cols] */
    const char *head = mp->text + mp->row[r];
    const size_t head_n = mp->row[r + 1] - mp->row[r];
    size_t at = 0;
    for (int c = 0; c < v->cols; c++) {
        if (key->causal && c > qpos) break; /* masked: exactly 0, left out */
        if (mp->keep && !mp->keep[c]) continue; /* --to */
        const size_t kseg_n = mp->key[c + 1] - mp->key[c];
        memcpy(dst + at, head, head_n);
        at += head_n;
        memcpy(dst + at, mp->text + mp->key[c], kseg_n);
        at += kseg_n;
        at += attn_format_float(dst + at, row[c]);
        dst[at++] = '\n';
    }
    return at;
}

/* Rows are made in a buffer of this size (on the stack: nothing is
 * allocated per map for it, unless one row can be longer) and written with
 * one fwrite each time it fills. */
#define MAPS_CHUNK ((size_t)1 << 16)
/* With threads (attn_threads() > 1, maps of at least MAPS_PAR_MIN cells),
 * the rows go in rounds: each thread makes a run of consecutive rows into a
 * buffer of its own of about MAPS_PAR_ROUND bytes, then the buffers are
 * written in row order, so that the file is the same for any count. */
#define MAPS_PAR_MIN ((size_t)1 << 16)
#define MAPS_PAR_ROUND ((size_t)1 << 19)
#define MAPS_PAR_THREADS 8


#ifdef _OPENMP
/* The threaded rounds; ATTN_ERR_NOMEM when the buffers cannot be had (the
 * caller then writes on one thread). */
static attn_status maps_emit_threads(const attn_csv_maps *w, const maps_pieces *mp,
                                     const attn_labels *ql, const attn_capture_key *key,
                                     const attn_capture_view *v, int nt, size_t bound) {
    const int per = bound >= MAPS_PAR_ROUND ? 1 : (int)(MAPS_PAR_ROUND / bound); /* rows a thread */
    const size_t cap = (size_t)per * bound;
    char *bufs[MAPS_PAR_THREADS] = {NULL};
    size_t lens[MAPS_PAR_THREADS];
    attn_status rc = ATTN_OK;
    for (int t = 0; t < nt && !rc; t++)
        if (!(bufs[t] = malloc(cap))) rc = ATTN_ERR_NOMEM;
    for (int r0 = 0; !rc && r0 < v->rows; r0 += nt * per) {
#pragma omp parallel for num_threads(nt) schedule(static, 1)
        for (int t = 0; t < nt; t++) {
            size_t at = 0;
            const int lo = r0 + t * per, hi = lo + per < v->rows ? lo + per : v->rows;
            for (int r = lo; r < hi; r++) at += format_row(bufs[t] + at, mp, w->run, ql, key, v, r);
            lens[t] = at;
        }
        for (int t = 0; t < nt; t++) fwrite(bufs[t], 1, lens[t], w->f);
    }
    for (int t = 0; t < nt; t++) free(bufs[t]);
    return rc;
}
#endif

attn_status attn_csv_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                               attn_error *err) {
    attn_csv_maps *w = user;
    maps_pieces mp;
    attn_status rc = maps_pieces_make(&mp, w, key, v, err);
    if (rc) return rc;
    const attn_labels *ql = mp.ql;
    size_t bound = 1;
    for (int r = 0; r < v->rows; r++) {
        const size_t b = row_bound(&mp, v, r);
        if (b > bound) bound = b;
    }
#ifdef _OPENMP
    int nt = attn_threads();
    if (nt > MAPS_PAR_THREADS) nt = MAPS_PAR_THREADS;
    if (nt > 1 && (size_t)v->rows * (size_t)v->cols >= MAPS_PAR_MIN && v->rows > 1) {
        rc = maps_emit_threads(w, &mp, ql, key, v, nt, bound);
        if (rc != ATTN_ERR_NOMEM) {
            maps_pieces_free(&mp);
            return rc;
        }
        rc = ATTN_OK; /* no memory for the rounds: one thread */
    }
#endif
    char chunk[MAPS_CHUNK];
    char *out = chunk, *big = NULL;
    size_t cap = MAPS_CHUNK, at = 0;
    if (bound > cap) { /* a row longer than the chunk: a buffer of its size */
        if (!(big = malloc(bound))) {
            maps_pieces_free(&mp);
            return attn_error_set(err, ATTN_ERR_NOMEM, "maps CSV: out of memory");
        }
        out = big;
        cap = bound;
    }
    for (int r = 0; r < v->rows; r++) {
        if (at + row_bound(&mp, v, r) > cap) {
            fwrite(out, 1, at, w->f);
            at = 0;
        }
        at += format_row(out + at, &mp, w->run, ql, key, v, r);
    }
    fwrite(out, 1, at, w->f);
    free(big);
    maps_pieces_free(&mp);
    return ATTN_OK;
}

void attn_csv_context_header(FILE *f, int d_model) {
    fputs("input,pos,token", f);
    for (int i = 0; i < d_model; i++) fprintf(f, ",d%d", i);
    putc('\n', f);
}

bool attn_csv_context_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_HIDDEN && !key->source;
}

attn_status attn_csv_context_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err) {
    (void)key;
    attn_csv_context *w = user;
    /* the numbers of one row: a comma and ATTN_FLOAT_TEXT_MAX - 1 bytes at most each, a newline */
    char *line = malloc((size_t)v->cols * ATTN_FLOAT_TEXT_MAX + 2);
    if (!line) return attn_error_set(err, ATTN_ERR_NOMEM, "context CSV: out of memory");
    for (int r = 0; r < v->rows; r++) {
        int pos = v->row_offset + r;
        attn_csv_input(w->f, w->run, w->raw_text);
        fprintf(w->f, ",%d,", pos);
        attn_csv_field(w->f, attn_labels_at(w->run->main, pos), w->raw_text);
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [D] */
        size_t at = 0;
        for (int c = 0; c < v->cols; c++) {
            line[at++] = ',';
            at += attn_format_float(line + at, row[c]);
        }
        line[at++] = '\n';
        fwrite(line, 1, at, w->f);
    }
    free(line);
    return ATTN_OK;
}

void attn_csv_predictions_header(FILE *f, bool clean) {
    fputs(clean ? "input,pos,rank,token_id,token,logit,prob,clean_logit,clean_prob\n"
                : "input,pos,rank,token_id,token,logit,prob\n",
          f);
}

attn_status attn_csv_predictions_init(attn_csv_predictions *w, FILE *f, int k, bool last_only,
                                      const attn_run_info *run, const attn_tokenizer *tok,
                                      bool raw_text, attn_error *err) {
    w->f = f;
    w->run = run;
    w->tok = tok;
    w->raw_text = raw_text;
    w->layer = -1;
    return attn_predictions_init(&w->pred, k, last_only, err);
}

void attn_csv_predictions_free(attn_csv_predictions *w) {
    if (w) attn_predictions_free(&w->pred);
}

bool attn_csv_predictions_wants(void *user, const attn_capture_key *key) {
    return attn_predictions_wants(user, key);
}

/* One logit and probability: ",LOGIT,PROB". */
static void logit_prob(FILE *f, const attn_prediction *p) {
    char logit[ATTN_FLOAT_TEXT_MAX];
    attn_format_float(logit, p->logit);
    fprintf(f, ",%s,%.9g", logit, p->prob); /* prob is a double */
}

/* The rows of the predictions after one position. */
static attn_status predictions_row(void *user, const attn_prediction_row *row, attn_error *err) {
    (void)err;
    attn_csv_predictions *w = user;
    char num[ATTN_ID_TEXT_MAX];
    for (int j = 0; j < row->n; j++) {
        attn_csv_input(w->f, w->run, w->raw_text);
        if (w->layer >= 0) fprintf(w->f, ",%d", w->layer);
        fprintf(w->f, ",%d,%d,%d,", row->pos, row->rank[j], row->top[j].id);
        attn_csv_field(w->f, attn_token_text(w->tok, row->top[j].id, num, sizeof num), w->raw_text);
        logit_prob(w->f, &row->top[j]);
        if (row->clean) logit_prob(w->f, &row->clean[j]);
        putc('\n', w->f);
    }
    return ATTN_OK;
}

attn_status attn_csv_predictions_emit(void *user, const attn_capture_key *key,
                                      const attn_capture_view *v, attn_error *err) {
    (void)key;
    attn_csv_predictions *w = user;
    return attn_predictions_each(&w->pred, v, predictions_row, w, err);
}
