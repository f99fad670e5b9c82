/* buf: growable float scratch buffers. */
#include "compute/buf.h"

#include <stdlib.h>

attn_status attn_buf_reserve(attn_buf *b, size_t n, const char *what, attn_error *err) {
    if (n <= b->cap && b->p) return ATTN_OK;
    float *p = attn_alloc_array(n, sizeof(float), what, err);
    if (!p) return ATTN_ERR_NOMEM;
    free(b->p);
    b->p = p;
    b->cap = n;
    return ATTN_OK;
}

void attn_buf_free(attn_buf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}
