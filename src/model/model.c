/* model.c: config + safetensors + tokenizer -> struct attn_model.
 *
 * Every tensor the config needs (the names and shapes of "Tensor names" in
 * docs/model-format.md) is looked up, checked for shape and for finite
 * values (once, O(weights)) and bound as a view into the file's image. A
 * tensor the config does not explain is refused: a model must be exactly
 * what its config says.
 */
#include "model/model.h"

#include "base/bytes.h"
#include "base/util.h"
#include "model/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct binder {
    const attn_config *cfg;
    attn_safetensors *st;
    bool *claimed; /* [count] tensors explained by the config */
    attn_error *err;
} binder;

/* name = prefix + "." + part (just part when prefix is ""); a name longer
 * than the buffer is an error (the names of a valid config are far shorter). */
static attn_status tname(const binder *b, char *name, size_t cap, const char *prefix,
                         const char *part) {
    int n = snprintf(name, cap, "%s%s%s", prefix, prefix[0] ? "." : "", part);
    if (n < 0 || (size_t)n >= cap)
        return attn_error_set(b->err, ATTN_ERR_INTERNAL,
                              "%s: the name of tensor %.100s%s%s is longer than %zu bytes",
                              attn_safetensors_name(b->st), prefix, prefix[0] ? "." : "", part,
                              cap - 1);
    return ATTN_OK;
}

/* "[d0, d1, ...]" */
static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* The index of the first NaN or infinity of x[n], or n when all are finite.
 * On the bits (exponent all ones), whatever the floating-point flags; blocks
 * without one are passed in a loop the compiler vectorizes. */
static size_t first_nonfinite(const float *x, size_t n) {
    /* blocks on the threads, 64 at a time as they come (reading the
     * weights is the first touch of their pages, which the threads then
     * share, and a page's fault costs what it costs), the first bad block
     * looked at again alone */
    enum { BLOCK = 4096 };
    const long blocks = (long)((n + BLOCK - 1) / BLOCK);
    long first = blocks;
    const int threads = attn_threads_for((double)blocks, 4, blocks);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 64) reduction(min : first) num_threads(threads) if (threads > 1)
#endif
    for (long blk = 0; blk < blocks; blk++) {
        const size_t i = (size_t)blk * BLOCK, m = n - i < BLOCK ? n - i : BLOCK;
        uint32_t bad = 0;
        for (size_t k = 0; k < m; k++)
            bad |= (attn_f32_bits(x[i + k]) & 0x7f800000u) == 0x7f800000u;
        if (bad && blk < first) first = blk;
    }
    for (size_t k = (size_t)first * BLOCK; k < n; k++)
        if (!isfinite(x[k])) return k;
    return n;
}

/* A tensor with a NaN or an infinity is refused, naming the first one: it
 * would make every map and context vector that reads it NaN. */
static attn_status check_finite(const binder *b, const attn_tensor *t) {
    size_t i = first_nonfinite(t->data, t->numel);
    if (i == t->numel) return ATTN_OK;
    float v = t->data[i];
    const char *what = isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
    char where[64] = "";
    if (t->ndim == 2)
        snprintf(where, sizeof where, " (row %zu, column %zu)", i / (size_t)t->shape[1],
                 i % (size_t)t->shape[1]);
    return attn_error_set(b->err, ATTN_ERR_FORMAT,
                          "%s: tensor \"%s\": element %zu%s is %s; weights must be finite",
                          attn_safetensors_name(b->st), t->name, i, where, what);
}

/* *data = the tensor `name`, after checking its shape is [d0] or [d0, d1]
 * (d1 < 0: 1-D) and that its values are finite; claims it. */
static attn_status need(binder *b, const float **data, const char *name, int64_t d0, int64_t d1) {
    const attn_tensor *t = attn_safetensors_find(b->st, name);
    const char *file = attn_safetensors_name(b->st);
    if (!t) return attn_error_set(b->err, ATTN_ERR_FORMAT, "%s: missing tensor \"%s\"", file, name);
    int ndim = d1 < 0 ? 1 : 2;
    int64_t want[2] = {d0, d1};
    bool ok = t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
    if (!ok) {
        char got[160], exp[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, want);
        return attn_error_set(b->err, ATTN_ERR_FORMAT,
                              "%s: tensor \"%s\" has shape %s, expected %s", file, name, got, exp);
    }
    attn_status rc = check_finite(b, t);
    if (rc) return rc;
    for (size_t i = 0; i < attn_safetensors_count(b->st); i++)
        if (attn_safetensors_at(b->st, i) == t) b->claimed[i] = true;
    *data = t->data;
    return ATTN_OK;
}

/* prefix.part.weight [d0, d1] (d1 < 0: [d0]) into *w and, when with_bias,
 * prefix.part.bias [d0] into *bias (else NULL). */
static attn_status bind_weights(binder *b, const float **w, const float **bias, const char *prefix,
                                const char *part, int64_t d0, int64_t d1, bool with_bias) {
    char base[256], name[256];
    int rc;
    if ((rc = tname(b, base, sizeof base, prefix, part)) ||
        (rc = tname(b, name, sizeof name, base, "weight")) ||
        (rc = need(b, w, name, d0, d1)))
        return rc;
    *bias = NULL;
    if (!with_bias) return ATTN_OK;
    if ((rc = tname(b, name, sizeof name, base, "bias"))) return rc;
    return need(b, bias, name, d0, -1);
}

/* prefix.part: a linear layer [out, in] (+ bias when the config has one). */
static attn_status bind_linear(binder *b, attn_linear *l, const char *prefix, const char *part,
                               int out, int in) {
    return bind_weights(b, &l->w, &l->b, prefix, part, out, in, b->cfg->bias);
}

/* prefix.part: a norm [D] (+ bias for layernorm). */
static attn_status bind_norm(binder *b, attn_norm_weights *n, const char *prefix,
                             const char *part) {
    return bind_weights(b, &n->w, &n->b, prefix, part, b->cfg->d_model, -1,
                        b->cfg->norm == ATTN_NORM_LAYERNORM);
}

/* prefix.part.{q,k,v,o} */
static attn_status bind_attention(binder *b, attn_attention_weights *a, const char *prefix,
                                  const char *part) {
    const attn_config *c = b->cfg;
    const int D = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    char name[256];
    int rc;
    if ((rc = tname(b, name, sizeof name, prefix, part)) ||
        (rc = bind_linear(b, &a->q, name, "q", qd, D)) ||
        (rc = bind_linear(b, &a->k, name, "k", kvd, D)) ||
        (rc = bind_linear(b, &a->v, name, "v", kvd, D)) ||
        (rc = bind_linear(b, &a->o, name, "o", D, qd)))
        return rc;
    return ATTN_OK;
}

/* The block `prefix` ("blocks.3"): attention, cross-attention when `cross`,
 * MLP unless mlp = none. */
static attn_status bind_block(binder *b, attn_block_weights *blk, const char *prefix, bool cross) {
    const attn_config *c = b->cfg;
    const int D = c->d_model, F = c->d_ff;
    int rc;
    memset(blk, 0, sizeof *blk);
    if ((rc = bind_norm(b, &blk->attn_norm, prefix, "attn_norm")) ||
        (rc = bind_attention(b, &blk->attn, prefix, "attn")))
        return rc;
    blk->has_cross = cross;
    if (cross && ((rc = bind_norm(b, &blk->cross_norm, prefix, "cross_norm")) ||
                  (rc = bind_attention(b, &blk->cross, prefix, "cross"))))
        return rc;
    blk->has_mlp = c->mlp != ATTN_MLP_NONE;
    if (!blk->has_mlp) return ATTN_OK;
    const bool gate = c->mlp == ATTN_MLP_SWIGLU;
    if ((rc = bind_norm(b, &blk->mlp_norm, prefix, "mlp_norm")) ||
        (rc = bind_linear(b, &blk->up, prefix, "mlp.up", F, D)) ||
        (gate && (rc = bind_linear(b, &blk->gate, prefix, "mlp.gate", F, D))) ||
        (rc = bind_linear(b, &blk->down, prefix, "mlp.down", D, F)))
        return rc;
    return ATTN_OK;
}

/* Binds one stack: `prefix` is "blocks" or "encoder.blocks"; `top` is "" or
 * "encoder" for the stack-level norms ("embed_norm", "norm"). */
static attn_status bind_stack(binder *b, attn_stack_weights *s, int n_layers, const char *prefix,
                              const char *top, bool cross) {
    int rc;
    s->has_embed_norm = b->cfg->embed_norm;
    if (s->has_embed_norm && (rc = bind_norm(b, &s->embed_norm, top, "embed_norm"))) return rc;
    s->n_layers = n_layers;
    s->blocks = attn_calloc_array((size_t)n_layers, sizeof *s->blocks, "model blocks", b->err);
    if (!s->blocks) return ATTN_ERR_NOMEM;
    for (int i = 0; i < n_layers; i++) {
        char layer[16], name[128];
        snprintf(layer, sizeof layer, "%d", i);
        if ((rc = tname(b, name, sizeof name, prefix, layer)) ||
            (rc = bind_block(b, &s->blocks[i], name, cross)))
            return rc;
    }
    s->has_final_norm = b->cfg->final_norm;
    if (s->has_final_norm) return bind_norm(b, &s->final_norm, top, "norm");
    return ATTN_OK;
}

/* Fails on the first tensor of the file that no binding claimed. */
static attn_status check_all_claimed(const binder *b) {
    for (size_t i = 0; i < attn_safetensors_count(b->st); i++)
        if (!b->claimed[i])
            return attn_error_set(b->err, ATTN_ERR_FORMAT,
                                  "%s: unexpected tensor \"%s\" (the config does not use it)",
                                  attn_safetensors_name(b->st),
                                  attn_safetensors_at(b->st, i)->name);
    return ATTN_OK;
}

static attn_status bind_model(attn_model *m, binder *b) {
    const attn_config *c = &m->cfg;
    const bool encdec = c->arch == ATTN_ARCH_ENCODER_DECODER;
    int rc;
    if ((rc = need(b, &m->tok_embed, "tok_embed", c->vocab_size, c->d_model)) ||
        (c->positional == ATTN_POS_LEARNED &&
         (rc = need(b, &m->pos_embed, "pos_embed", c->max_seq_len, c->d_model))))
        return rc;

    m->main.causal = attn_arch_causal(c->arch);
    m->main.stack = c->arch == ATTN_ARCH_ENCODER ? ATTN_STACK_ENCODER : ATTN_STACK_DECODER;
    m->main.source = false;
    if ((rc = bind_stack(b, &m->main, c->n_layers, "blocks", "", encdec))) return rc;
    if (encdec) {
        m->encoder.causal = false;
        m->encoder.stack = ATTN_STACK_ENCODER;
        m->encoder.source = true;
        rc = bind_stack(b, &m->encoder, c->n_encoder_layers, "encoder.blocks", "encoder", false);
        if (rc) return rc;
    }
    if (c->lm_head == ATTN_LM_HEAD_TIED)
        m->lm_head = m->tok_embed;
    else if (c->lm_head == ATTN_LM_HEAD_SEPARATE &&
             (rc = need(b, &m->lm_head, "lm_head.weight", c->vocab_size, c->d_model)))
        return rc;
    return check_all_claimed(b);
}

attn_status attn_model_from_parts(attn_model **out, const attn_config *cfg, attn_safetensors *st,
                                  attn_tokenizer *tok, attn_error *err) {
    if (out) *out = NULL;
    attn_model *m = out && cfg && st ? calloc(1, sizeof *m) : NULL;
    if (!m) { /* the parts are owned here also on failure */
        attn_safetensors_close(st);
        attn_tokenizer_free(tok);
        if (out && cfg && st) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_from_parts: %s is NULL",
                              !out ? "out" : !cfg ? "the config" : "the weights");
    }
    m->cfg = *cfg;
    m->st = st;
    m->tok = tok;
    binder b = {.cfg = &m->cfg, .st = st, .err = err};
    b.claimed = attn_calloc_array(attn_safetensors_count(st), sizeof(bool), "tensor table", err);
    int rc = b.claimed ? bind_model(m, &b) : ATTN_ERR_NOMEM;
    free(b.claimed);
    if (rc == ATTN_OK && tok && attn_tokenizer_size(tok) > cfg->vocab_size)
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "the tokenizer has %d tokens but vocab_size is %d",
                            attn_tokenizer_size(tok), cfg->vocab_size);
    if (rc) {
        attn_model_close(m);
        return (attn_status)rc;
    }
    *out = m;
    return ATTN_OK;
}

attn_status attn_model_open_config(attn_model **out, const attn_config *cfg, const char *name,
                                   attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_open_config: out is NULL");
    *out = NULL;
    if (!cfg) return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_open_config: cfg is NULL");
    /* sizes that multiply past what the weights file holds are refused
     * before the file is read and anything is allocated for them */
    struct stat sb;
    int rc;
    if (stat(cfg->weights, &sb) == 0 && S_ISREG(sb.st_mode) &&
        (rc = attn_config_check_weights_size(cfg, name, (uint64_t)sb.st_size, err)))
        return rc;
    attn_safetensors *st = NULL;
    if ((rc = attn_safetensors_open(&st, cfg->weights, err))) return rc;
    attn_tokenizer *tok = NULL;
    if (cfg->has_tokenizer && (rc = attn_tokenizer_open(&tok, &cfg->tokenizer, err))) {
        attn_safetensors_close(st);
        return rc;
    }
    return attn_model_from_parts(out, cfg, st, tok, err);
}

attn_status attn_model_open(attn_model **out, const char *config_path, attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_open: out is NULL");
    *out = NULL;
    attn_config cfg;
    int rc = attn_config_load(&cfg, config_path, err);
    if (rc) return rc;
    return attn_model_open_config(out, &cfg, config_path, err);
}

void attn_model_close(attn_model *m) {
    if (!m) return;
    free(m->main.blocks);
    free(m->encoder.blocks);
    attn_tokenizer_free(m->tok);
    attn_safetensors_close(m->st);
    free(m);
}

const attn_config *attn_model_config(const attn_model *m) { return m ? &m->cfg : NULL; }
const attn_tokenizer *attn_model_tokenizer(const attn_model *m) { return m ? m->tok : NULL; }

const attn_tensor *attn_model_tensor(const attn_model *m, const char *name) {
    return m && name ? attn_safetensors_find(m->st, name) : NULL;
}

const attn_safetensors *attn_model_weights(const attn_model *m) { return m ? m->st : NULL; }
