/* Next-token predictions: the rows of a logits value a predictions sink
 * reports, each with its k most likely next tokens (attn_topk). The CSV
 * writer (attn_csv_predictions, csv.c) and the CLI's readable listing are
 * both built on it. */
#include "attn/write.h"

#include <stdlib.h>
#include <string.h>

attn_status attn_predictions_init(attn_predictions *p, int k, bool last_only, attn_error *err) {
    memset(p, 0, sizeof *p);
    p->top = calloc(k > 0 ? (size_t)k : 1, sizeof *p->top);
    if (!p->top) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    p->k = k;
    p->last_only = last_only;
    return ATTN_OK;
}

void attn_predictions_free(attn_predictions *p) {
    if (!p) return;
    free(p->top);
    p->top = NULL;
}

bool attn_predictions_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_LOGITS && !key->source;
}

attn_status attn_predictions_each(attn_predictions *p, const attn_capture_view *v,
                                  attn_prediction_row_fn row, void *user, attn_error *err) {
    for (int r = p->last_only && v->rows > 0 ? v->rows - 1 : 0; r < v->rows; r++) {
        const float *logits = v->data + (size_t)r * (size_t)v->cols; /* [V] */
        attn_status rc = attn_topk(p->top, p->k, logits, v->cols, err);
        if (!rc) rc = row(user, v->row_offset + r, p->top, p->k, err);
        if (rc) return rc;
    }
    return ATTN_OK;
}
