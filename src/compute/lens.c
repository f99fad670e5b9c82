/* The logit lens: a residual stream read through the final norm and the
 * unembedding, the same operations in the same order as the forward pass
 * makes the logits with (forward.c), so that the last layer's stream gives
 * the model's logits byte for byte. */
#include "compute/kernels.h"
#include "model/model.h"
#include "base/util.h"


attn_status attn_model_unembed(const attn_model *m, const float *x, int T, float *scratch,
                               float *logits, attn_error *err) {
    if (!m || !x || !scratch || !logits || T < 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_unembed: bad arguments");
    if (!m->lm_head)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "the model has no lm_head: there are no logits to read the "
                              "residual stream through");
    const attn_config *cfg = &m->cfg;
    const attn_stack_weights *st = &m->main;
    const int D = cfg->d_model, V = cfg->vocab_size;
    size_t td;
    if (!attn_mul_size((size_t)T, (size_t)D, &td))
        return attn_error_set(err, ATTN_ERR_NOMEM, "logit lens: size overflows");
    const float *h = x; /* [T, D] */
    if (st->has_final_norm) {
        const attn_norm_weights *nw = &st->final_norm;
        if (cfg->norm == ATTN_NORM_RMSNORM)
            kern_rmsnorm(scratch, x, nw->w, T, D, cfg->norm_eps);
        else
            kern_layernorm(scratch, x, nw->w, nw->b, T, D, cfg->norm_eps);
        h = scratch;
    }
    kern_linear(logits, h, m->lm_head, NULL, T, D, V); /* [T, V] */
    return ATTN_OK;
}
