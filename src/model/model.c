/* model.c: config + safetensors + tokenizer -> struct attn_model.
 *
 * Every tensor the config needs (docs/model-format.md, "Tensor names") is
 * looked up, checked for shape and bound as a view into the mapped file. A
 * tensor the config does not explain is refused: a model must be exactly
 * what its config says.
 */
#include "model/model.h"

#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    const attn_config *cfg;
    attn_safetensors *st;
    bool *claimed; /* [count] tensors explained by the config */
    attn_error *err;
} binder;

/* name = prefix + "." + part (just part when prefix is ""); a name longer
 * than the buffer is an error (the names of a valid config are far shorter). */
static int tname(const binder *b, char *name, size_t cap, const char *prefix, const char *part) {
    int n = snprintf(name, cap, "%s%s%s", prefix, prefix[0] ? "." : "", part);
    if (n < 0 || (size_t)n >= cap)
        return attn_error_set(b->err, ATTN_ERR_INTERNAL,
                              "%s: the name of tensor %.100s%s%s is longer than %zu bytes",
                              attn_safetensors_name(b->st), prefix, prefix[0] ? "." : "", part,
                              cap - 1);
    return ATTN_OK;
}

/* "[d0, d1, ...]" into buf[cap], cut short when it does not fit. */
static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Finds `name`, checks its shape is [d0] or [d0, d1] (d1 < 0: 1-D), claims it. */
static const float *need(binder *b, const char *name, int64_t d0, int64_t d1) {
    const attn_tensor *t = attn_safetensors_find(b->st, name);
    const char *file = attn_safetensors_name(b->st);
    if (!t) {
        attn_error_set(b->err, ATTN_ERR_FORMAT, "%s: missing tensor \"%s\"", file, name);
        return NULL;
    }
    int ndim = d1 < 0 ? 1 : 2;
    int64_t want[2] = {d0, d1};
    bool ok = t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
    if (!ok) {
        char got[160], exp[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, want);
        attn_error_set(b->err, ATTN_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, expected %s",
                       file, name, got, exp);
        return NULL;
    }
    for (size_t i = 0; i < attn_safetensors_count(b->st); i++)
        if (attn_safetensors_at(b->st, i) == t) b->claimed[i] = true;
    return t->data;
}

/* Binds prefix.part.weight [d0, d1] (d1 < 0: [d0]) into *w and, when
 * has_bias, prefix.part.bias [d0] into *bias (else NULL). */
static int bind_weight_bias(binder *b, const char *prefix, const char *part, int d0, int d1,
                            bool has_bias, const float **w, const float **bias) {
    char base[256], name[256];
    int rc;
    *bias = NULL;
    if ((rc = tname(b, base, sizeof base, prefix, part)) ||
        (rc = tname(b, name, sizeof name, base, "weight")))
        return rc;
    if (!(*w = need(b, name, d0, d1))) return b->err->status;
    if (!has_bias) return ATTN_OK;
    if ((rc = tname(b, name, sizeof name, base, "bias"))) return rc;
    if (!(*bias = need(b, name, d0, -1))) return b->err->status;
    return ATTN_OK;
}

/* prefix.part: a linear layer [out, in], with a bias when the config has them. */
static int bind_linear(binder *b, attn_linear *l, const char *prefix, const char *part, int out,
                       int in) {
    l->out = out;
    l->in = in;
    return bind_weight_bias(b, prefix, part, out, in, b->cfg->bias, &l->w, &l->b);
}

/* prefix.part: a norm [D], with a bias for layernorm. */
static int bind_norm(binder *b, attn_norm_weights *n, const char *prefix, const char *part) {
    return bind_weight_bias(b, prefix, part, b->cfg->d_model, -1,
                            b->cfg->norm == ATTN_NORM_LAYERNORM, &n->w, &n->b);
}

/* prefix.part.{q,k,v,o}: one attention sub-layer. */
static int bind_attention(binder *b, attn_attention_weights *a, const char *prefix,
                          const char *part) {
    const attn_config *c = b->cfg;
    char base[256];
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int rc;
    if ((rc = tname(b, base, sizeof base, prefix, part)) ||
        (rc = bind_linear(b, &a->q, base, "q", qd, c->d_model)) ||
        (rc = bind_linear(b, &a->k, base, "k", kvd, c->d_model)) ||
        (rc = bind_linear(b, &a->v, base, "v", kvd, c->d_model)))
        return rc;
    return bind_linear(b, &a->o, base, "o", c->d_model, qd);
}

/* One block, prefix "blocks.i" or "encoder.blocks.i". */
static int bind_block(binder *b, attn_block_weights *blk, const char *prefix, bool cross) {
    const attn_config *c = b->cfg;
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
    if ((rc = bind_norm(b, &blk->mlp_norm, prefix, "mlp_norm")) ||
        (rc = bind_linear(b, &blk->up, prefix, "mlp.up", c->d_ff, c->d_model)))
        return rc;
    if (c->mlp == ATTN_MLP_SWIGLU &&
        (rc = bind_linear(b, &blk->gate, prefix, "mlp.gate", c->d_ff, c->d_model)))
        return rc;
    return bind_linear(b, &blk->down, prefix, "mlp.down", c->d_model, c->d_ff);
}

/* Binds one stack: `prefix` is "blocks" or "encoder.blocks"; `top` is "" or
 * "encoder" for the stack-level norms ("norm", "embed_norm"). */
static int bind_stack(binder *b, attn_stack_weights *s, int n_layers, const char *prefix,
                      const char *top, bool cross) {
    int rc;
    s->has_embed_norm = b->cfg->embed_norm;
    if (s->has_embed_norm && (rc = bind_norm(b, &s->embed_norm, top, "embed_norm"))) return rc;
    s->n_layers = n_layers;
    s->blocks = attn_calloc_array((size_t)n_layers, sizeof *s->blocks, "model blocks", b->err);
    if (!s->blocks) return ATTN_ERR_NOMEM;
    for (int i = 0; i < n_layers; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%d", prefix, i);
        if ((rc = bind_block(b, &s->blocks[i], name, cross))) return rc;
    }
    s->has_final_norm = b->cfg->final_norm;
    if (s->has_final_norm) return bind_norm(b, &s->final_norm, top, "norm");
    return ATTN_OK;
}

static int bind_model(attn_model *m, binder *b) {
    const attn_config *c = &m->cfg;
    int rc;
    if (!(m->tok_embed = need(b, "tok_embed", c->vocab_size, c->d_model))) return b->err->status;
    if (c->positional == ATTN_POS_LEARNED &&
        !(m->pos_embed = need(b, "pos_embed", c->max_seq_len, c->d_model)))
        return b->err->status;

    bool encdec = c->arch == ATTN_ARCH_ENCODER_DECODER;
    m->main.causal = c->arch != ATTN_ARCH_ENCODER;
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
             !(m->lm_head = need(b, "lm_head.weight", c->vocab_size, c->d_model)))
        return b->err->status;

    for (size_t i = 0; i < attn_safetensors_count(b->st); i++) {
        if (!b->claimed[i])
            return attn_error_set(b->err, ATTN_ERR_FORMAT,
                                  "%s: unexpected tensor \"%s\" (the config does not use it)",
                                  attn_safetensors_name(b->st),
                                  attn_safetensors_at(b->st, i)->name);
    }
    return ATTN_OK;
}

attn_status attn_model_from_parts(attn_model **out, const attn_config *cfg, attn_safetensors *st,
                          attn_tokenizer *tok, attn_error *err) {
    *out = NULL;
    attn_error local; /* the binder reads the status back from err */
    if (!err) err = &local;
    attn_model *m = calloc(1, sizeof *m);
    if (!m) {
        attn_safetensors_close(st);
        attn_tokenizer_free(tok);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    }
    m->cfg = *cfg;
    m->st = st;
    m->tok = tok;
    binder b = {.cfg = &m->cfg, .st = st, .err = err};
    b.claimed = attn_calloc_array(attn_safetensors_count(st), sizeof(bool), "tensor table", err);
    int rc = b.claimed ? bind_model(m, &b) : (int)err->status;
    free(b.claimed);
    if (rc == ATTN_OK && tok && attn_tokenizer_size(tok) > cfg->vocab_size)
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "the tokenizer has %d tokens but vocab_size is %d",
                            attn_tokenizer_size(tok), cfg->vocab_size);
    if (rc) {
        attn_model_close(m);
        return rc;
    }
    *out = m;
    return ATTN_OK;
}

attn_status attn_model_open(attn_model **out, const char *config_path, attn_error *err) {
    *out = NULL;
    attn_config cfg;
    int rc = attn_config_load(&cfg, config_path, err);
    if (rc) return rc;
    attn_safetensors *st = NULL;
    if ((rc = attn_safetensors_open(&st, cfg.weights, err))) return rc;
    attn_tokenizer *tok = NULL;
    if (cfg.has_tokenizer && (rc = attn_tokenizer_open(&tok, &cfg.tokenizer, err))) {
        attn_safetensors_close(st);
        return rc;
    }
    return attn_model_from_parts(out, &cfg, st, tok, err);
}

void attn_model_close(attn_model *m) {
    if (!m) return;
    free(m->main.blocks);
    free(m->encoder.blocks);
    attn_tokenizer_free(m->tok);
    attn_safetensors_close(m->st);
    free(m);
}

const attn_config *attn_model_config(const attn_model *m) { return &m->cfg; }
const attn_tokenizer *attn_model_tokenizer(const attn_model *m) { return m->tok; }

const attn_tensor *attn_model_tensor(const attn_model *m, const char *name) {
    return m && name ? attn_safetensors_find(m->st, name) : NULL;
}
