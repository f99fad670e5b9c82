/* Private: the model's weights as views into the safetensors mapping. */
#ifndef ATTN_MODEL_H
#define ATTN_MODEL_H

#include "attn/attn.h"

/* y = x W^T + b; the sizes come from the config (the shapes beside each
 * field below, checked when the model is built). */
typedef struct attn_linear {
    const float *w; /* [out, in] */
    const float *b; /* [out], NULL when the config has no bias */
} attn_linear;

typedef struct attn_norm_weights {
    const float *w; /* [D] */
    const float *b; /* [D] layernorm only, else NULL */
} attn_norm_weights;

/* The config's norm (RMSNorm or LayerNorm, kernels.h) of T rows (forward.c):
 * out is (T, D), inp is (T, D); out may equal inp. */
void attn_norm_apply(const attn_config *cfg, float *out, const float *inp,
                     const attn_norm_weights *nw, int T);

typedef struct attn_attention_weights {
    attn_linear q; /* [H*hd, D]  */
    attn_linear k; /* [KV*hd, D] */
    attn_linear v; /* [KV*hd, D] */
    attn_linear o; /* [D, H*hd]  */
} attn_attention_weights;

typedef struct attn_block_weights {
    attn_norm_weights attn_norm;
    attn_attention_weights attn;
    bool has_cross;               /* decoder blocks of an encoder-decoder */
    attn_norm_weights cross_norm;
    attn_attention_weights cross; /* k, v read the encoder output */
    bool has_mlp;                 /* false for mlp = none */
    attn_norm_weights mlp_norm;
    attn_linear up;               /* [F, D] */
    attn_linear gate;             /* [F, D] swiglu only, else w == NULL */
    attn_linear down;             /* [D, F] */
} attn_block_weights;

typedef struct attn_stack_weights {
    int n_layers;
    attn_block_weights *blocks;   /* [n_layers] */
    bool has_embed_norm;
    attn_norm_weights embed_norm; /* "embed_norm" or "encoder.embed_norm" */
    bool has_final_norm;
    attn_norm_weights final_norm; /* "norm" or "encoder.norm" */
    bool causal;                  /* decoder stacks */
    attn_stack stack;             /* CSV name */
    bool source;                  /* encoder of an encoder-decoder */
} attn_stack_weights;

struct attn_model {
    attn_config cfg;
    attn_safetensors *st;  /* owns the mapping every pointer below points into */
    attn_tokenizer *tok;   /* NULL when the config has no tokenizer */
    const float *tok_embed; /* [V, D] */
    const float *pos_embed; /* [max_seq_len, D], learned positions only */
    attn_stack_weights main;    /* decoder, or the encoder of an encoder-only model */
    attn_stack_weights encoder; /* encoder of an encoder-decoder (n_layers 0 otherwise) */
    const float *lm_head;   /* [V, D]: tok_embed when tied, NULL when none */
};

/* ATTN_ERR_IO when st's file, mapped by attn_safetensors_open, no longer
 * has the size and modification time it had then (rewritten in place: the
 * mapping may have mixed old and new weights; base/util.h attn_image_check);
 * ATTN_OK otherwise and for tensors parsed from memory. The forward pass
 * checks it after every pass. */
attn_status attn_safetensors_check(const attn_safetensors *st, attn_error *err);

#endif
