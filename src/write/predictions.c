/* Next-token predictions: the rows of a logits value a predictions sink
 * reports, each with its k most likely next tokens (attn_topk). The CSV
 * writer (attn_csv_predictions, csv.c) and the CLI's readable listing are
 * both built on it. */
#include "attn/write.h"

#include <stdlib.h>
#include <string.h>

attn_status attn_predictions_init(attn_predictions *p, int k, bool last_only, attn_error *err) {
    memset(p, 0, sizeof *p);
    const size_t n = k > 0 ? (size_t)k + 1 : 1;
    p->top = calloc(n, sizeof *p->top);
    p->other = calloc(n, sizeof *p->other);
    p->rank = calloc(n, sizeof *p->rank);
    if (!p->top || !p->other || !p->rank) {
        attn_predictions_free(p);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    }
    p->k = k;
    p->last_only = last_only;
    p->target = -1;
    return ATTN_OK;
}

void attn_predictions_free(attn_predictions *p) {
    if (!p) return;
    free(p->top);
    free(p->other);
    free(p->rank);
    p->top = p->other = NULL;
    p->rank = NULL;
}

bool attn_predictions_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_LOGITS && !key->source;
}

/* Row pos of logits [V]: p's tokens into row. */
static attn_status one_row(attn_predictions *p, const float *logits, int V, int pos,
                           attn_prediction_row *row, attn_error *err) {
    attn_status rc = ATTN_OK;
    int n = 0;
    if (p->k > 0 && (rc = attn_topk(p->top, p->k, logits, V, err))) return rc;
    for (; n < p->k; n++) p->rank[n] = n + 1;
    bool listed = false;
    for (int j = 0; j < n; j++) listed |= p->top[j].id == p->target;
    if (p->target >= 0 && !listed) {
        if ((rc = attn_token_prediction(&p->top[n], logits, V, p->target, err))) return rc;
        p->rank[n++] = attn_token_rank(logits, V, p->target);
    }
    *row = (attn_prediction_row){.pos = pos, .n = n, .top = p->top, .rank = p->rank};
    if (!p->clean) return ATTN_OK;
    if (pos < 0 || pos >= p->clean_rows)
        return attn_error_set(err, ATTN_ERR_USAGE, "predictions: no clean logits at position %d",
                              pos);
    const float *clean = p->clean + (size_t)pos * (size_t)V; /* [V] */
    for (int j = 0; j < n && !rc; j++)
        rc = attn_token_prediction(&p->other[j], clean, V, p->top[j].id, err);
    row->clean = p->other;
    return rc;
}

attn_status attn_predictions_each(attn_predictions *p, const attn_capture_view *v,
                                  attn_prediction_row_fn row, void *user, attn_error *err) {
    for (int r = p->last_only && v->rows > 0 ? v->rows - 1 : 0; r < v->rows; r++) {
        const float *logits = v->data + (size_t)r * (size_t)v->cols; /* [V] */
        attn_prediction_row pr;
        attn_status rc = one_row(p, logits, v->cols, v->row_offset + r, &pr, err);
        if (!rc) rc = row(user, &pr, err);
        if (rc) return rc;
    }
    return ATTN_OK;
}
