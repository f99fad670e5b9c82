/* CSV writers: attention maps, context vectors and next-token predictions.
 * Their columns are described in attn/write.h and, for the attn CLI, in the
 * README (maps, context) and `attn run --help` (all three). Their text
 * fields go through attn_csv_field (write/escape.c). */
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

attn_status attn_csv_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                  attn_error *err) {
    (void)err;
    attn_csv_maps *w = user;
    const attn_run_info *run = w->run;
    const attn_labels *ql, *kl;
    attn_run_key_labels(run, key, &ql, &kl);
    char prefix[128], num[12];
    snprintf(prefix, sizeof prefix, ",%s,%d,%s,%s,", attn_stack_name(key->stack), key->layer,
             attn_kind_name(key->kind), attn_head_name(key->head, num, sizeof num));
    for (int r = 0; r < v->rows; r++) {
        int qpos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [cols] */
        for (int c = 0; c < v->cols; c++) {
            if (key->causal && c > qpos) break; /* masked: exactly 0, left out */
            attn_csv_input(w->f, run, w->raw_text);
            fputs(prefix, w->f);
            fprintf(w->f, "%d,", qpos);
            attn_csv_field(w->f, attn_labels_at(ql, qpos), w->raw_text);
            fprintf(w->f, ",%d,", c);
            attn_csv_field(w->f, attn_labels_at(kl, c), w->raw_text);
            fprintf(w->f, ",%.9g\n", (double)row[c]);
        }
    }
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
    (void)err;
    attn_csv_context *w = user;
    for (int r = 0; r < v->rows; r++) {
        int pos = v->row_offset + r;
        attn_csv_input(w->f, w->run, w->raw_text);
        fprintf(w->f, ",%d,", pos);
        attn_csv_field(w->f, attn_labels_at(w->run->main, pos), w->raw_text);
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [D] */
        for (int c = 0; c < v->cols; c++) fprintf(w->f, ",%.9g", (double)row[c]);
        putc('\n', w->f);
    }
    return ATTN_OK;
}

void attn_csv_predictions_header(FILE *f) { fputs("input,pos,rank,token_id,token,logit,prob\n", f); }

attn_status attn_csv_predictions_init(attn_csv_predictions *w, FILE *f, int k, bool last_only,
                                      const attn_run_info *run, const attn_tokenizer *tok,
                                      bool raw_text, attn_error *err) {
    w->f = f;
    w->run = run;
    w->tok = tok;
    w->raw_text = raw_text;
    return attn_predictions_init(&w->pred, k, last_only, err);
}

void attn_csv_predictions_free(attn_csv_predictions *w) {
    if (w) attn_predictions_free(&w->pred);
}

bool attn_csv_predictions_wants(void *user, const attn_capture_key *key) {
    return attn_predictions_wants(user, key);
}

/* The k rows of the predictions after position pos. */
static attn_status predictions_row(void *user, int pos, const attn_prediction *top, int k,
                                   attn_error *err) {
    (void)err;
    attn_csv_predictions *w = user;
    char num[ATTN_ID_TEXT_MAX];
    for (int j = 0; j < k; j++) {
        attn_csv_input(w->f, w->run, w->raw_text);
        fprintf(w->f, ",%d,%d,%d,", pos, j + 1, top[j].id);
        attn_csv_field(w->f, attn_token_text(w->tok, top[j].id, num, sizeof num), w->raw_text);
        fprintf(w->f, ",%.9g,%.9g\n", (double)top[j].logit, top[j].prob);
    }
    return ATTN_OK;
}

attn_status attn_csv_predictions_emit(void *user, const attn_capture_key *key,
                                      const attn_capture_view *v, attn_error *err) {
    (void)key;
    attn_csv_predictions *w = user;
    return attn_predictions_each(&w->pred, v, predictions_row, w, err);
}
