/* Next-token predictions: a capture sink on ATTN_V_LOGITS ([T, V] rows of
 * the main stack) that lists the k most likely next tokens after each
 * position (or the last one), as CSV or as a readable listing.
 * Probabilities are a softmax over the whole vocabulary in double
 * (attn_topk); equal logits rank by the lower id. */
#include "view.h"

#include <stdlib.h>
#include <string.h>

int topk_init(topk_sink *s, FILE *f, bool csv, int k, bool last_only, const attn_run_info *run,
              const attn_tokenizer *tok) {
    memset(s, 0, sizeof *s);
    s->top = calloc(k > 0 ? (size_t)k : 1, sizeof *s->top);
    if (!s->top) return ATTN_ERR_NOMEM;
    s->f = f;
    s->csv = csv;
    s->k = k;
    s->last_only = last_only;
    s->run = run;
    s->tok = tok;
    return ATTN_OK;
}

void topk_free(topk_sink *s) {
    free(s->top);
    s->top = NULL;
}

void topk_csv_header(FILE *f) { fputs("input,pos,rank,token_id,token,logit,prob\n", f); }

bool topk_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_LOGITS && !key->source;
}

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

attn_status topk_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
              attn_error *err) {
    (void)key;
    topk_sink *s = user;
    const attn_run_info *run = s->run;
    if (v->rows <= 0) return ATTN_OK;
    int first = s->last_only ? v->rows - 1 : 0;
    char num[ATTN_ID_TEXT_MAX];
    if (!s->csv)
        fprintf(s->f, "next-token predictions for input %ld (top %d of %d)\n", run->input, s->k,
                v->cols);
    for (int r = first; r < v->rows; r++) {
        int pos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [V] */
        int rc = attn_topk(s->top, s->k, row, v->cols, err);
        if (rc) return rc;
        if (!s->csv) {
            const char *q = run->main && pos >= 0 && (size_t)pos < run->main->n
                                ? run->main->text[pos]
                                : "?";
            fprintf(s->f, "  after %d ", pos);
            quoted(s->f, q);
            fputs(":\n", s->f);
        }
        for (int j = 0; j < s->k; j++) {
            const attn_prediction *p = &s->top[j];
            const char *t = attn_token_text(s->tok, p->id, num, sizeof num);
            if (s->csv) {
                fprintf(s->f, "%ld,%d,%d,%d,", run->input, pos, j + 1, p->id);
                attn_csv_field(s->f, t);
                fprintf(s->f, ",%.9g,%.9g\n", (double)p->logit, p->prob);
            } else {
                fprintf(s->f, "    %3d  ", j + 1);
                quoted(s->f, t);
                int w = (int)strlen(t) + 2;
                fprintf(s->f, "%*s id %-6d prob %.6f  logit %+.4f\n", w < 14 ? 14 - w : 0, "",
                        p->id, p->prob, (double)p->logit);
            }
        }
    }
    if (!s->csv) putc('\n', s->f);
    return ATTN_OK;
}
