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

/* A probability in 8 characters: 0.123456, or 1.23e-05 below 0.001 (so
 * that a target far down the ranking does not read 0.000000). */
static void prob(FILE *f, double p) {
    fprintf(f, p > 0 && p < 1e-3 ? "%.2e" : "%.6f", p);
}

/* "  after POS "LABEL":" ("at" for an encoder) and one line per prediction:
 * its rank, text, id, probability and logit, and with clean logits the
 * clean run's probability and logit. */
static attn_status list_row(void *user, const attn_prediction_row *row, attn_error *err) {
    (void)err;
    predictions_view *s = user;
    char num[ATTN_ID_TEXT_MAX];
    fprintf(s->f, "  %s %d ", predicts_at(s) ? "at" : "after", row->pos);
    quoted(s->f, attn_labels_at(s->run->main, row->pos));
    fputs(":\n", s->f);
    for (int j = 0; j < row->n; j++) {
        const attn_prediction *p = &row->top[j];
        const char *t = attn_token_text(s->tok, p->id, num, sizeof num);
        fprintf(s->f, "    %3d  ", row->rank[j]);
        quoted(s->f, t);
        int w = (int)strlen(t) + 2;
        fprintf(s->f, "%*s id %-6d prob ", w < 14 ? 14 - w : 0, "", p->id);
        prob(s->f, p->prob);
        fprintf(s->f, "  logit %+.4f", (double)p->logit);
        if (row->clean) {
            fputs("   clean: prob ", s->f);
            prob(s->f, row->clean[j].prob);
            fprintf(s->f, "  logit %+.4f", (double)row->clean[j].logit);
        }
        putc('\n', s->f);
    }
    return ATTN_OK;
}

/* The listing's heading: what is listed, of how many tokens. */
static void heading(const predictions_view *s, int V) {
    const bool at = predicts_at(s);
    fprintf(s->f, "%s predictions for input %ld (", at ? "token" : "next-token", s->run->input);
    if (s->pred.k > 0) fprintf(s->f, "top %d of %d", s->pred.k, V);
    if (s->pred.target >= 0) {
        char num[ATTN_ID_TEXT_MAX];
        fputs(s->pred.k > 0 ? " and the target " : "the target ", s->f);
        quoted(s->f, attn_token_text(s->tok, s->pred.target, num, sizeof num));
        fprintf(s->f, s->pred.k > 0 ? ", ranked among all" : ", ranked among all %d", V);
    }
    if (s->pred.clean) fputs("; clean: the same without the ablation", s->f);
    fputs(at ? "; an encoder predicts the token at each position)\n" : ")\n", s->f);
}

attn_status predictions_view_emit(void *user, const attn_capture_key *key,
                                  const attn_capture_view *v, attn_error *err) {
    (void)key;
    predictions_view *s = user;
    if (v->rows <= 0) return ATTN_OK;
    heading(s, v->cols);
    attn_status rc = attn_predictions_each(&s->pred, v, list_row, s, err);
    if (rc) return rc;
    putc('\n', s->f);
    return ATTN_OK;
}
