/* The logit lens as CSV (attn/write.h: attn_csv_lens): each residual
 * stream of the main stack through the final norm and the unembedding,
 * its top k written by the predictions writer with a layer column. */
#include "attn/write.h"

#include <stdint.h>
#include <stdlib.h>

attn_status attn_csv_lens_init(attn_csv_lens *w, FILE *f, const attn_model *m, int k,
                               bool last_only, const attn_run_info *run, bool raw_text,
                               attn_error *err) {
    *w = (attn_csv_lens){.model = m};
    const attn_tokenizer *tok = attn_model_tokenizer(m);
    return attn_csv_predictions_init(&w->csv, f, k, last_only, run, tok, raw_text, err);
}

void attn_csv_lens_free(attn_csv_lens *w) {
    if (!w) return;
    attn_csv_predictions_free(&w->csv);
    free(w->logits);
    free(w->scratch);
    w->logits = w->scratch = NULL;
    w->logits_cap = w->scratch_cap = 0;
}

void attn_csv_lens_header(FILE *f) {
    fputs("input,layer,pos,rank,token_id,token,logit,prob\n", f);
}

bool attn_csv_lens_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_RESID && !key->source;
}

/* Makes *buf hold rows * cols floats. */
static attn_status grow(float **buf, size_t *cap, int rows, int cols, attn_error *err) {
    const size_t r = rows > 0 ? (size_t)rows : 1, c = cols > 0 ? (size_t)cols : 1;
    if (r > SIZE_MAX / sizeof(float) / c)
        return attn_error_set(err, ATTN_ERR_NOMEM, "logit lens: size overflows");
    if (r * c <= *cap) return ATTN_OK;
    float *p = realloc(*buf, r * c * sizeof(float));
    if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "logit lens: out of memory");
    *buf = p;
    *cap = r * c;
    return ATTN_OK;
}

attn_status attn_csv_lens_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                               attn_error *err) {
    attn_csv_lens *w = user;
    const attn_config *cfg = attn_model_config(w->model);
    if (v->cols != cfg->d_model)
        return attn_error_set(err, ATTN_ERR_USAGE, "logit lens: a stream of %d columns, not d_model %d",
                              v->cols, cfg->d_model);
    attn_status rc;
    if ((rc = grow(&w->logits, &w->logits_cap, v->rows, cfg->vocab_size, err)) ||
        (rc = grow(&w->scratch, &w->scratch_cap, v->rows, cfg->d_model, err)) ||
        (rc = attn_model_unembed(w->model, v->data, v->rows, w->scratch, w->logits, err)))
        return rc;
    const attn_capture_view lv = {.rows = v->rows, .cols = cfg->vocab_size, .data = w->logits,
                                  .row_offset = v->row_offset}; /* [rows, V] */
    w->csv.layer = key->layer;
    rc = attn_csv_predictions_emit(&w->csv, key, &lv, err);
    w->csv.layer = -1;
    return rc;
}
