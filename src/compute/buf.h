/* Private: a growable float buffer, the scratch memory of the forward pass. */
#ifndef ATTN_BUF_H
#define ATTN_BUF_H

#include "base/util.h"

/* A growable float buffer (scratch memory reused across calls). */
typedef struct attn_buf {
    float *p;
    size_t cap; /* floats */
} attn_buf;

/* Makes b hold at least n floats (contents are not kept); `what` names it in
 * an out-of-memory message. */
attn_status attn_buf_reserve(attn_buf *b, size_t n, const char *what, attn_error *err);
void attn_buf_free(attn_buf *b);

#endif
