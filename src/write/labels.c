/* Labels of the positions of one sequence: token texts, or positions for
 * inputs given as vectors. */
#include "attn/write.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *attn_token_text(const attn_tokenizer *tok, int id, char *num, size_t cap) {
    const char *p = tok ? attn_tokenizer_piece(tok, id) : NULL;
    if (p) return p;
    snprintf(num, cap, "%d", id);
    return num;
}

/* The text of label i, written into num[cap] when it is not kept elsewhere. */
typedef const char *(*label_fn)(const void *ctx, size_t i, char *num, size_t cap);

/* Fills l with n labels, copies of text(ctx, i, ...); ATTN_ERR_NOMEM leaves l empty. */
static attn_status build(attn_labels *l, size_t n, label_fn text, const void *ctx) {
    l->text = n <= SIZE_MAX / sizeof *l->text ? calloc(n ? n : 1, sizeof *l->text) : NULL;
    l->n = l->text ? n : 0;
    if (!l->text) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char num[ATTN_ID_TEXT_MAX];
        if (!(l->text[i] = strdup(text(ctx, i, num, sizeof num)))) {
            attn_labels_free(l);
            return ATTN_ERR_NOMEM;
        }
    }
    return ATTN_OK;
}

typedef struct id_labels {
    const attn_tokenizer *tok;
    const int *ids; /* [n] */
} id_labels;

static const char *id_text(const void *ctx, size_t i, char *num, size_t cap) {
    const id_labels *c = ctx;
    return attn_token_text(c->tok, c->ids[i], num, cap);
}

static const char *position_text(const void *ctx, size_t i, char *num, size_t cap) {
    (void)ctx;
    snprintf(num, cap, "%zu", i);
    return num;
}

attn_status attn_labels_from_ids(attn_labels *l, const attn_tokenizer *tok, const int *ids, size_t n) {
    return build(l, n, id_text, &(id_labels){tok, ids});
}

attn_status attn_labels_from_positions(attn_labels *l, size_t n) {
    return build(l, n, position_text, NULL);
}

const char *attn_labels_at(const attn_labels *l, int pos) {
    return l && pos >= 0 && (size_t)pos < l->n ? l->text[pos] : "?";
}

void attn_labels_free(attn_labels *l) {
    if (!l) return;
    if (l->text)
        for (size_t i = 0; i < l->n; i++) free(l->text[i]);
    free(l->text);
    l->text = NULL;
    l->n = 0;
}
