/* Labels of the positions of one sequence: token texts, or positions for
 * inputs given as vectors. */
#include "attn/write.h"

#include <stdlib.h>
#include <string.h>

const char *attn_token_text(const attn_tokenizer *tok, int id, char *num, size_t cap) {
    const char *p = tok ? attn_tokenizer_piece(tok, id) : NULL;
    if (p) return p;
    snprintf(num, cap, "%d", id);
    return num;
}

attn_status attn_labels_from_ids(attn_labels *l, const attn_tokenizer *tok, const int *ids, size_t n) {
    l->n = n;
    l->text = calloc(n ? n : 1, sizeof *l->text);
    if (!l->text) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char num[ATTN_ID_TEXT_MAX];
        if (!(l->text[i] = strdup(attn_token_text(tok, ids[i], num, sizeof num)))) {
            attn_labels_free(l);
            return ATTN_ERR_NOMEM;
        }
    }
    return ATTN_OK;
}

attn_status attn_labels_from_positions(attn_labels *l, size_t n) {
    l->n = n;
    l->text = calloc(n ? n : 1, sizeof *l->text);
    if (!l->text) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        if (!(l->text[i] = strdup(num))) {
            attn_labels_free(l);
            return ATTN_ERR_NOMEM;
        }
    }
    return ATTN_OK;
}

const char *attn_labels_at(const attn_labels *l, int pos) {
    return l && pos >= 0 && (size_t)pos < l->n ? l->text[pos] : "?";
}

void attn_labels_free(attn_labels *l) {
    if (l->text)
        for (size_t i = 0; i < l->n; i++) free(l->text[i]);
    free(l->text);
    l->text = NULL;
    l->n = 0;
}
