/* The readable listing of token predictions: for each reported position its
 * label, then the k most likely tokens with id, probability and logit
 * (attn_predictions, attn/write.h, computes them; the CSV form is the
 * library's attn_csv_predictions). A decoder's logits at a position predict
 * the next token, after it; an encoder's (a masked language model) predict
 * the token at the position itself, so the listing says "at" there. */
#include "view.h"

#include <string.h>

/* Writes s quoted, with control bytes, quotes and backslashes escaped. */
static void quoted(FILE *f, const char *s) {
    putc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else putc(*p, f);
    }
    putc('"', f);
}

/* Does the model predict the token at each position (an encoder) rather
 * than the one after it? */
static bool predicts_at(const predictions_view *s) {
    return s->run->cfg && s->run->cfg->arch == ATTN_ARCH_ENCODER;
}

/* "  after POS "LABEL":" ("at" for an encoder) and one line per prediction. */
static attn_status list_row(void *user, int pos, const attn_prediction *top, int k,
                            attn_error *err) {
    (void)err;
    predictions_view *s = user;
    char num[ATTN_ID_TEXT_MAX];
    fprintf(s->f, "  %s %d ", predicts_at(s) ? "at" : "after", pos);
    quoted(s->f, attn_labels_at(s->run->main, pos));
    fputs(":\n", s->f);
    for (int j = 0; j < k; j++) {
        const char *t = attn_token_text(s->tok, top[j].id, num, sizeof num);
        fprintf(s->f, "    %3d  ", j + 1);
        quoted(s->f, t);
        int w = (int)strlen(t) + 2;
        fprintf(s->f, "%*s id %-6d prob %.6f  logit %+.4f\n", w < 14 ? 14 - w : 0, "", top[j].id,
                top[j].prob, (double)top[j].logit);
    }
    return ATTN_OK;
}

attn_status predictions_view_emit(void *user, const attn_capture_key *key,
                                  const attn_capture_view *v, attn_error *err) {
    (void)key;
    predictions_view *s = user;
    if (v->rows <= 0) return ATTN_OK;
    if (predicts_at(s))
        fprintf(s->f,
                "token predictions for input %ld (top %d of %d; an encoder predicts the token "
                "at each position)\n",
                s->run->input, s->pred.k, v->cols);
    else
        fprintf(s->f, "next-token predictions for input %ld (top %d of %d)\n", s->run->input,
                s->pred.k, v->cols);
    attn_status rc = attn_predictions_each(&s->pred, v, list_row, s, err);
    if (rc) return rc;
    putc('\n', s->f);
    return ATTN_OK;
}
