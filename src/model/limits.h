/* Private: every size limit of the files attn reads, in one place. The table
 * "Limits" of docs/model-format.md lists them; each is enforced before any
 * allocation whose size depends on it, with a message naming the limit.
 *
 * Users: the config parser (config.c), the llama2.c import
 * (import_llama2c.c, which refuses a checkpoint whose config would not
 * load), the safetensors reader (safetensors.c), the tokenizers
 * (src/tokenizer), the embeddings reader (embeddings.c) and the model
 * loader (model.c: the weights the config implies against the file's size).
 * The file limits a caller needs for its own reading are public (attn.h);
 * the CLI's batch line limit, CLI_LINE_MAX, is ATTN_TEXT_MAX. */
#ifndef ATTN_MODEL_LIMITS_H
#define ATTN_MODEL_LIMITS_H

#include "base/util.h"

#include <stdint.h>

/* ---- config.json ---- */
/* ATTN_CONFIG_FILE_MAX (attn.h): bytes of a config file (1 MiB) */
#define ATTN_CONFIG_INT_MAX (1 << 24)          /* cap of an integer a config could ever hold */
/* Per key (attn_config_key_max): every integer key has its own cap. */
#define ATTN_VOCAB_MAX (1 << 20)    /* vocab_size; also the ids of a tokenizer file */
#define ATTN_D_MODEL_MAX (1 << 16)  /* d_model */
#define ATTN_HEADS_MAX (1 << 12)    /* n_heads, n_kv_heads */
#define ATTN_HEAD_DIM_MAX (1 << 16) /* head_dim */
#define ATTN_D_FF_MAX (1 << 20)     /* d_ff */
#define ATTN_SEQ_MAX (1 << 20)      /* max_seq_len */
#define ATTN_LAYERS_MAX (1 << 12)   /* n_layers, n_encoder_layers */
#define ATTN_CONFIG_ELEMS_MAX ((uint64_t)1 << 31) /* cap of every implied tensor / row */

/* ---- safetensors ---- */
#define ATTN_ST_HEADER_MAX ((uint64_t)100 * 1000 * 1000) /* bytes of JSON header (100 MB) */
#define ATTN_ST_TENSORS_MAX ((size_t)1 << 18)            /* tensors in one file */
#define ATTN_ST_VALUES_MAX (16 * ATTN_ST_TENSORS_MAX)     /* JSON values of the header */
#define ATTN_ST_INT_MAX ((uint64_t)1 << 53) /* a dimension or an offset: an exact JSON integer */

/* ---- tokenizers, input text ---- */
#define ATTN_TOKENIZER_FILE_MAX ((size_t)64 << 20) /* bytes of a vocabulary file (64 MiB) */
#define ATTN_TOKEN_BYTES_MAX 65536 /* bytes of one vocabulary entry (llama2.c max_token_length) */
/* ATTN_TEXT_MAX (attn.h): bytes of one input text (1 MiB): at most ATTN_TEXT_MAX + 2
 * token ids */

/* ---- embeddings ---- */
/* ATTN_EMBEDDINGS_FILE_MAX (attn.h): bytes of a CSV / .npy file (2 GiB) */

/* *out = a * b elements; refused (ATTN_ERR_FORMAT, "NAME: WHAT = A * B
 * elements is more than ...") on overflow or over ATTN_CONFIG_ELEMS_MAX.
 * out may be NULL. */
static inline attn_status attn_check_elems(attn_error *err, const char *name, const char *what,
                                           uint64_t a, uint64_t b, uint64_t *out) {
    uint64_t p;
    if (__builtin_mul_overflow(a, b, &p) || p > ATTN_CONFIG_ELEMS_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %s = %llu * %llu elements is more than %llu",
                              name, what, (unsigned long long)a, (unsigned long long)b,
                              (unsigned long long)ATTN_CONFIG_ELEMS_MAX);
    if (out) *out = p;
    return ATTN_OK;
}

/* The cap of the integer config key `key` ("d_model": ATTN_D_MODEL_MAX);
 * ATTN_CONFIG_INT_MAX for a key without one of its own. */
int attn_config_key_max(const char *key);

/* The number of weights (elements of all tensors) the config implies: the
 * tensors of "Tensor names" in docs/model-format.md. At most about 2^47
 * for a config that parsed (each tensor under ATTN_CONFIG_ELEMS_MAX). */
uint64_t attn_config_weight_count(const attn_config *cfg);

/* Refuses (ATTN_ERR_FORMAT, naming `name`, the config) a weights file of
 * file_bytes that cannot hold the weights cfg implies, even at 2 bytes a
 * weight (F16 / BF16): before the file is read or anything is allocated
 * for the model. */
attn_status attn_config_check_weights_size(const attn_config *cfg, const char *name,
                                           uint64_t file_bytes, attn_error *err);

#endif
