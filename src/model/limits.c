/* The size limits of model/limits.h that take code: the cap of each
 * integer key, and the weights a config implies against its weights file. */
#include "model/limits.h"

#include <string.h>

int attn_config_key_max(const char *key) {
    static const struct { const char *key; int max; } caps[] = {
        {"vocab_size", ATTN_VOCAB_MAX},   {"d_model", ATTN_D_MODEL_MAX},
        {"n_heads", ATTN_HEADS_MAX},      {"n_kv_heads", ATTN_HEADS_MAX},
        {"head_dim", ATTN_HEAD_DIM_MAX},  {"d_ff", ATTN_D_FF_MAX},
        {"max_seq_len", ATTN_SEQ_MAX},    {"n_layers", ATTN_LAYERS_MAX},
        {"n_encoder_layers", ATTN_LAYERS_MAX},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (strcmp(key, caps[i].key) == 0) return caps[i].max;
    return ATTN_CONFIG_INT_MAX;
}

/* Elements of one stack's tensors: `n` blocks (with cross-attention when
 * `cross`), its embed and final norms. */
static uint64_t stack_weights(const attn_config *c, uint64_t n, bool cross) {
    const uint64_t D = (uint64_t)c->d_model, F = (uint64_t)c->d_ff,
                   q = (uint64_t)c->n_heads * (uint64_t)c->head_dim,
                   kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    const uint64_t norm = c->norm == ATTN_NORM_LAYERNORM ? 2 * D : D;
    /* q [q, D], k and v [kv, D], o [D, q], and their biases */
    const uint64_t attn = 2 * q * D + 2 * kv * D + (c->bias ? q + 2 * kv + D : 0);
    uint64_t block = norm + attn + (cross ? norm + attn : 0);
    if (c->mlp != ATTN_MLP_NONE) {
        const uint64_t ups = c->mlp == ATTN_MLP_SWIGLU ? 2 : 1; /* up (and gate) [F, D] */
        block += norm + (ups + 1) * F * D + (c->bias ? ups * F + D : 0);
    }
    return n * block + (c->embed_norm ? norm : 0) + (c->final_norm ? norm : 0);
}

uint64_t attn_config_weight_count(const attn_config *c) {
    /* every factor is capped (limits.h), so none of this can overflow:
     * tensors under 2^31 elements, fewer than 2^17 of them */
    const uint64_t V = (uint64_t)c->vocab_size, D = (uint64_t)c->d_model;
    uint64_t n = V * D;                                               /* tok_embed */
    if (c->positional == ATTN_POS_LEARNED) n += (uint64_t)c->max_seq_len * D; /* pos_embed */
    const bool encdec = c->arch == ATTN_ARCH_ENCODER_DECODER;
    n += stack_weights(c, (uint64_t)c->n_layers, encdec);
    if (encdec) n += stack_weights(c, (uint64_t)c->n_encoder_layers, false);
    if (c->lm_head == ATTN_LM_HEAD_SEPARATE) n += V * D; /* lm_head.weight */
    return n;
}

attn_status attn_config_check_weights_size(const attn_config *cfg, const char *name,
                                           uint64_t file_bytes, attn_error *err) {
    const uint64_t n = attn_config_weight_count(cfg), need = 2 * n;
    if (need <= file_bytes) return ATTN_OK;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: the config implies %llu weights, at least %llu bytes even as "
                          "F16, but the weights file %s has only %llu bytes",
                          name ? name : "config", (unsigned long long)n,
                          (unsigned long long)need, cfg->weights,
                          (unsigned long long)file_bytes);
}
