/* forward: blocks and stacks, sessions and the key/value cache; calls the
 * capture sink.
 *
 * A session runs the main stack over new positions that follow the cached
 * ones. Per layer it keeps the keys and values of every past position
 * (attention.h, grown geometrically up to max_seq_len), so n new positions
 * cost O(n * length). A session that will not be continued (reuse_cache: the
 * one-shot commands) keeps one cache, [KV, hd, T], reused layer after layer
 * as the encoder's is, and stops after the last value its sink asks for
 * (pass_end_of). Scratch is O(T * max(D, F)) plus one [T, Tk] matrix while
 * a head's scores or weights are captured (two when the sink takes them
 * beside the pass), one [Tk, hd] block while its keys or values are, and
 * the logits [T, V] only when they are.
 *
 * Block, pre-norm:  x = x + Attn(Norm(x)); [x = x + Cross(CrossNorm(x), enc)];
 *                   x = x + MLP(Norm(x))
 * Block, post-norm: x = Norm(x + Attn(x)); [x = Norm(x + Cross(x, enc))];
 *                   x = Norm(x + MLP(x))
 * MLP: down(act(up(x))), or swiglu: down(silu(gate(x)) * up(x)). */
#include "compute/attention.h"
#include "compute/kernels.h"
#include "model/model.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct attn_session {
    const attn_model *m;
    size_t len;               /* main-stack positions held in self_kv */
    attn_kv_cache *self_kv;   /* [main.n_layers] */
    attn_kv_cache *cross_kv;  /* [main.n_layers]: cross keys/values of the encoder output */
    attn_kv_cache enc_kv;     /* encoder self-attention (and main stack when reuse_cache), reused
                                 layer after layer */
    int S;                    /* encoder positions; 0 until attn_session_encode succeeds */
    bool reuse_cache;         /* one pass only: the main stack reuses enc_kv layer after layer */
    attn_buf x, xn, y;        /* [T, D] residual stream, sub-layer input, sub-layer output */
    attn_buf h1, h2;          /* [T, F] MLP hidden (h2: swiglu gate) */
    attn_buf logits;          /* [T, V], only when captured */
    attn_buf pe;              /* [D] one sinusoidal row */
    attn_attn_scratch as;
};

attn_status attn_session_new(attn_session **out, const attn_model *m, attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_new: out is NULL");
    *out = NULL;
    if (!m) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_new: no model");
    attn_session *s = calloc(1, sizeof *s);
    if (!s) return attn_error_set(err, ATTN_ERR_NOMEM, "session: out of memory");
    s->m = m;
    int L = m->main.n_layers;
    s->self_kv = attn_calloc_array((size_t)(L > 0 ? L : 0), sizeof *s->self_kv,
                                   "key/value caches", err);
    s->cross_kv = attn_calloc_array((size_t)(L > 0 ? L : 0), sizeof *s->cross_kv,
                                    "cross key/value caches", err);
    if (!s->self_kv || !s->cross_kv) {
        attn_session_free(s);
        return ATTN_ERR_NOMEM;
    }
    *out = s;
    return ATTN_OK;
}

void attn_session_free(attn_session *s) {
    if (!s) return;
    int L = s->m->main.n_layers;
    for (int l = 0; l < L; l++) {
        if (s->self_kv) attn_kv_free(&s->self_kv[l]);
        if (s->cross_kv) attn_kv_free(&s->cross_kv[l]);
    }
    free(s->self_kv);
    free(s->cross_kv);
    attn_kv_free(&s->enc_kv);
    attn_buf_free(&s->x);
    attn_buf_free(&s->xn);
    attn_buf_free(&s->y);
    attn_buf_free(&s->h1);
    attn_buf_free(&s->h2);
    attn_buf_free(&s->logits);
    attn_buf_free(&s->pe);
    attn_attn_scratch_free(&s->as);
    free(s);
}

void attn_session_reset(attn_session *s) {
    if (!s) return;
    s->len = 0;
    s->S = 0;
}

size_t attn_session_length(const attn_session *s) { return s ? s->len : 0; }

attn_status attn_session_set_reuse_cache(attn_session *s, bool on, attn_error *err) {
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_set_reuse_cache: no session");
    if (s->len > 0 && on != s->reuse_cache)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "the session holds %zu positions; reset it before %s the reuse of "
                              "the key/value cache",
                              s->len, on ? "turning on" : "turning off");
    s->reuse_cache = on;
    if (on) /* the per-layer caches are not used any more */
        for (int l = 0; l < s->m->main.n_layers; l++) attn_kv_free(&s->self_kv[l]);
    return ATTN_OK;
}

/* ------------------------------------------------------------------------ */

/* The sizes of every attention sub-layer (cross-attention ignores rope). */
static attn_attn_params attn_params(const attn_config *cfg) {
    return (attn_attn_params){.D = cfg->d_model, .H = cfg->n_heads, .KV = cfg->n_kv_heads,
                              .hd = cfg->head_dim, .rope = cfg->positional == ATTN_POS_ROPE,
                              .rope_theta = cfg->rope_theta};
}

/* The key of value v of stack st; attention values of self-attention in a
 * causal stack are marked causal, which is also what masks that attention
 * (attn_attention reads it from its base key). */
static attn_capture_key make_key(const attn_stack_weights *st, attn_value v, int layer,
                                 attn_attn_kind kind) {
    attn_capture_key k = {.value = v, .stack = st->stack, .source = st->source,
                          .layer = layer, .kind = kind, .head = -1,
                          .causal = st->causal && kind == ATTN_KIND_SELF &&
                                    v >= ATTN_V_ATTN_IN && v <= ATTN_V_ATTN_OUT};
    return k;
}

/* ---- element-wise work on the threads ----
 * The norms, the activations and the residual sums run in chunks of
 * PAR_ELEMS elements (whole rows for the norms), a multiple of every vector
 * width and the same for any thread count, each chunk by one thread. Each
 * element (each row) is computed alone, in the same code path as in one
 * call, so the bytes do not depend on the threads. */
#define PAR_ELEMS 16384

/* The threads for `chunks` chunks: one below 2 chunks. */
static int par_threads(size_t chunks) { return attn_threads_for(0, 0, (long)chunks); }

void attn_norm_apply(const attn_config *cfg, float *out, const float *inp,
                     const attn_norm_weights *nw, int T) {
    const int D = cfg->d_model;
    const int rows = D >= PAR_ELEMS ? 1 : PAR_ELEMS / (D > 0 ? D : 1);
    const long chunks = (T + rows - 1) / rows;
    const int threads = par_threads((size_t)chunks);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (long c = 0; c < chunks; c++) {
        const int t0 = (int)c * rows, n = T - t0 < rows ? T - t0 : rows;
        const size_t at = (size_t)t0 * D;
        if (cfg->norm == ATTN_NORM_RMSNORM)
            kern_rmsnorm(out + at, inp + at, nw->w, n, D, cfg->norm_eps);
        else
            kern_layernorm(out + at, inp + at, nw->w, nw->b, n, D, cfg->norm_eps);
    }
}

/* On the threads, x (n) in place: f(x) when f is given, else x *= y (mul,
 * the swiglu product) or x += y (the residual), y (n). */
static void par_apply(void (*f)(float *, size_t), bool mul, float *restrict x,
                      const float *restrict y, size_t n) {
    const size_t chunks = (n + PAR_ELEMS - 1) / PAR_ELEMS;
    const int threads = par_threads(chunks);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (long c = 0; c < (long)chunks; c++) {
        const size_t i = (size_t)c * PAR_ELEMS, m = n - i < PAR_ELEMS ? n - i : PAR_ELEMS;
        if (f)
            f(x + i, m);
        else if (mul)
            kern_mul(x + i, y + i, m);
        else
            for (size_t k = i; k < i + m; k++) x[k] += y[k];
    }
}

/* The input of a sub-layer that reads s->x (T, D): Norm(x) in s->xn when
 * pre-norm, x itself when post-norm. */
static const float *sublayer_in(attn_session *s, const attn_norm_weights *nw, int T) {
    const attn_config *cfg = &s->m->cfg;
    if (cfg->norm_position != ATTN_NORM_PRE) return s->x.p;
    attn_norm_apply(cfg, s->xn.p, s->x.p, nw, T);
    return s->xn.p;
}

/* The residual of a sub-layer whose output is s->y (T, D): x += y, then
 * x = Norm(x) when post-norm. */
static void add_residual(attn_session *s, const attn_norm_weights *nw, int T) {
    const attn_config *cfg = &s->m->cfg;
    par_apply(NULL, false, s->x.p, s->y.p, (size_t)T * cfg->d_model);
    if (cfg->norm_position != ATTN_NORM_PRE) attn_norm_apply(cfg, s->x.p, s->x.p, nw, T);
}

/* out is (T, D), x is (T, D), h1, h2 are (T, F) scratch. */
static void mlp(const attn_config *cfg, float *out, const float *x, const attn_block_weights *b,
                float *h1, float *h2, int T) {
    const int D = cfg->d_model, F = cfg->d_ff;
    const size_t n = (size_t)T * F;
    kern_linear(h1, x, b->up.w, b->up.b, T, D, F);
    switch (cfg->mlp) {
    case ATTN_MLP_RELU: par_apply(kern_relu, false, h1, NULL, n); break;
    case ATTN_MLP_GELU: par_apply(kern_gelu, false, h1, NULL, n); break;
    case ATTN_MLP_GELU_TANH: par_apply(kern_gelu_tanh, false, h1, NULL, n); break;
    case ATTN_MLP_SWIGLU:
        kern_linear(h2, x, b->gate.w, b->gate.b, T, D, F);
        par_apply(kern_silu, false, h2, NULL, n);
        par_apply(NULL, true, h1, h2, n);
        break;
    case ATTN_MLP_NONE: break;
    }
    kern_linear(out, h1, b->down.w, b->down.b, T, F, D);
}

static attn_status reserve_scratch(attn_session *s, int T, attn_error *err) {
    const attn_config *cfg = &s->m->cfg;
    size_t td, tf;
    if (!attn_mul_size((size_t)T, (size_t)cfg->d_model, &td) ||
        !attn_mul_size((size_t)T, (size_t)(cfg->d_ff > 0 ? cfg->d_ff : 0), &tf))
        return attn_error_set(err, ATTN_ERR_NOMEM, "forward scratch: size overflows");
    int rc;
    if ((rc = attn_buf_reserve(&s->x, td, "residual stream", err)) ||
        (rc = attn_buf_reserve(&s->xn, td, "forward scratch", err)) ||
        (rc = attn_buf_reserve(&s->y, td, "forward scratch", err)) ||
        (rc = attn_buf_reserve(&s->pe, (size_t)cfg->d_model, "position scratch", err)))
        return rc;
    if (cfg->mlp != ATTN_MLP_NONE) {
        if ((rc = attn_buf_reserve(&s->h1, tf, "MLP scratch", err))) return rc;
        if (cfg->mlp == ATTN_MLP_SWIGLU && (rc = attn_buf_reserve(&s->h2, tf, "MLP scratch", err)))
            return rc;
    }
    return ATTN_OK;
}

/* Checks the input of a pass of in->n positions starting at pos0. */
static attn_status check_input(const attn_session *s, const attn_input *in, size_t pos0,
                               attn_error *err) {
    const attn_config *cfg = &s->m->cfg;
    if (!in) return attn_error_set(err, ATTN_ERR_USAGE, "no input");
    if (in->n == 0) return attn_error_set(err, ATTN_ERR_USAGE, "empty input: no positions to run");
    if (!in->ids && !in->embeddings)
        return attn_error_set(err, ATTN_ERR_USAGE, "input has neither token ids nor embeddings");
    if (in->ids && in->embeddings)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "input has both token ids and embeddings; give one");
    size_t max = (size_t)cfg->max_seq_len;
    if (pos0 > max || in->n > max - pos0) {
        if (in->n > SIZE_MAX - pos0)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "sequence of %zu new positions is longer than max_seq_len %d",
                                  in->n, cfg->max_seq_len);
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "sequence of %zu positions is longer than max_seq_len %d",
                              pos0 + in->n, cfg->max_seq_len);
    }
    if (in->ids) {
        for (size_t i = 0; i < in->n; i++)
            if (in->ids[i] < 0 || in->ids[i] >= cfg->vocab_size)
                return attn_error_set(err, ATTN_ERR_USAGE,
                                      "token id %d at position %zu is outside the vocabulary "
                                      "(0..%d)",
                                      in->ids[i], pos0 + i, cfg->vocab_size - 1);
    }
    return ATTN_OK;
}

/* The input of the first block at positions pos0 .. pos0+T-1.
 * x is (T, D). */
static void embed(attn_session *s, float *x, const attn_input *in, int T, int pos0) {
    const attn_model *m = s->m;
    const attn_config *cfg = &m->cfg;
    const int D = cfg->d_model;
    if (in->embeddings) {
        memcpy(x, in->embeddings, (size_t)T * D * sizeof(float));
        return;
    }
    for (int t = 0; t < T; t++) {
        const float *e = m->tok_embed + (size_t)in->ids[t] * D;
        float *xr = x + (size_t)t * D;
        for (int i = 0; i < D; i++) xr[i] = (float)(e[i] * cfg->embed_scale);
        if (cfg->positional == ATTN_POS_LEARNED) {
            const float *pe = m->pos_embed + (size_t)(pos0 + t) * D;
            for (int i = 0; i < D; i++) xr[i] += pe[i];
        } else if (cfg->positional == ATTN_POS_SINUSOIDAL) {
            kern_sinusoidal(s->pe.p, pos0 + t, D);
            for (int i = 0; i < D; i++) xr[i] += s->pe.p[i];
        }
    }
}

/* ---- how far a pass must go ----
 * A pass that will not be continued (reuse_cache) stops after the last
 * block the sink asks anything of: its blocks past that one, the final
 * norm and the logits are not computed; and when all it asks of that block
 * is its self-attention's input, queries, keys, scores or weights, the
 * block stops there too (no values, context, output projection or MLP).
 * Whatever is computed is computed as in the whole pass: the same bytes. */
typedef struct pass_end {
    int last;       /* the last block to run; n_layers: all, the final norm and logits too */
    bool maps_only; /* block `last` needs only its self-attention's maps */
} pass_end;

/* Does the sink want value v of block l (kind), of head -1 or 0 .. heads-1? */
static bool wants_heads(const attn_capture *cap, const attn_stack_weights *st, attn_value v,
                        int l, attn_attn_kind kind, int heads) {
    attn_capture_key k = make_key(st, v, l, kind);
    for (k.head = -1; k.head < heads; k.head++)
        if (attn_cap_wants(cap, &k)) return true;
    return false;
}

/* The maps of an attention sub-layer: what it makes before its values. */
static bool is_map(attn_value v) {
    return v == ATTN_V_ATTN_IN || v == ATTN_V_Q || v == ATTN_V_K || v == ATTN_V_SCORES ||
           v == ATTN_V_WEIGHTS;
}

/* Any value of an attention sub-layer (kind) of block l: its maps (maps),
 * or any of its other values (!maps). */
static bool wants_attention(const attn_capture *cap, const attn_stack_weights *st, int l,
                            attn_attn_kind kind, bool maps, const attn_config *cfg) {
    for (int v = ATTN_V_ATTN_IN; v <= ATTN_V_ATTN_OUT; v++) {
        if (is_map((attn_value)v) != maps) continue;
        const int heads = v == ATTN_V_K || v == ATTN_V_V ? cfg->n_kv_heads
                          : v == ATTN_V_Q || v == ATTN_V_SCORES || v == ATTN_V_WEIGHTS ||
                                  v == ATTN_V_HEAD_CONTEXT
                              ? cfg->n_heads
                              : 0;
        if (wants_heads(cap, st, (attn_value)v, l, kind, heads)) return true;
    }
    return false;
}

static pass_end pass_end_of(const attn_session *s, const attn_stack_weights *st, int l0,
                            const attn_capture *cap) {
    const attn_config *cfg = &s->m->cfg;
    const int L = st->n_layers;
    pass_end all = {L, false};
    if (!s->reuse_cache || st != &s->m->main) return all;
    if (wants_heads(cap, st, ATTN_V_HIDDEN, -1, ATTN_KIND_SELF, 0) ||
        wants_heads(cap, st, ATTN_V_LOGITS, -1, ATTN_KIND_SELF, 0))
        return all;
    for (int l = L - 1; l >= l0; l--) {
        const attn_block_weights *b = &st->blocks[l];
        if (wants_heads(cap, st, ATTN_V_RESID, l, ATTN_KIND_SELF, 0) ||
            wants_heads(cap, st, ATTN_V_MLP_OUT, l, ATTN_KIND_SELF, 0) ||
            (b->has_cross && (wants_attention(cap, st, l, ATTN_KIND_CROSS, true, cfg) ||
                              wants_attention(cap, st, l, ATTN_KIND_CROSS, false, cfg))) ||
            wants_attention(cap, st, l, ATTN_KIND_SELF, false, cfg))
            return (pass_end){l, false};
        if (wants_attention(cap, st, l, ATTN_KIND_SELF, true, cfg)) return (pass_end){l, true};
    }
    return (pass_end){l0 - 1, false};
}

/* Runs the blocks l0 .. n_layers-1 of st, then its final norm, on s->x (T, D)
 * holding positions pos0 .. pos0+T-1 (the residual stream at block l0's
 * input), or up to the pass's end (pass_end_of). kvs: the self-attention
 * caches, one per layer, or NULL to reuse s->enc_kv for every layer (a
 * stack run once: the encoder, or the main stack of a session with
 * reuse_cache, pos0 0). Emits per-block values and HIDDEN. */
static attn_status run_stack(attn_session *s, const attn_stack_weights *st, int l0, int T,
                             int pos0, attn_kv_cache *kvs, const attn_capture *cap,
                             attn_error *err) {
    const attn_config *cfg = &s->m->cfg;
    const int D = cfg->d_model;
    float *x = s->x.p, *y = s->y.p;
    const attn_attn_params ap = attn_params(cfg);
    const pass_end end = pass_end_of(s, st, l0, cap);
    int rc;

    for (int l = l0; l < st->n_layers && l <= end.last; l++) {
        const attn_block_weights *b = &st->blocks[l];
        attn_kv_cache *kv = kvs ? &kvs[l] : &s->enc_kv;
        if ((rc = attn_kv_reserve(kv, pos0 + T, pos0, cfg->max_seq_len, ap.KV, ap.hd, err)))
            return rc;

        /* self-attention over the cached and the new positions */
        attn_capture_key base = make_key(st, ATTN_V_ATTN_IN, l, ATTN_KIND_SELF);
        const bool maps_only = l == end.last && end.maps_only;
        if ((rc = attn_attention(y, sublayer_in(s, &b->attn_norm, T), &b->attn, &ap, kv, T, pos0,
                                 pos0 + T, &s->as, cap, &base, maps_only, err)))
            return rc;
        if (maps_only) return ATTN_OK;
        add_residual(s, &b->attn_norm, T);

        /* cross-attention to the encoder output */
        if (b->has_cross) {
            base = make_key(st, ATTN_V_ATTN_IN, l, ATTN_KIND_CROSS);
            if ((rc = attn_attention(y, sublayer_in(s, &b->cross_norm, T), &b->cross, &ap,
                                     &s->cross_kv[l], T, pos0, s->S, &s->as, cap, &base, false,
                                     err)))
                return rc;
            add_residual(s, &b->cross_norm, T);
        }

        /* MLP */
        if (b->has_mlp) {
            mlp(cfg, y, sublayer_in(s, &b->mlp_norm, T), b, s->h1.p, s->h2.p, T);
            attn_capture_key k = make_key(st, ATTN_V_MLP_OUT, l, ATTN_KIND_SELF);
            if ((rc = attn_cap_edit(cap, &k, y, T, D, pos0, err))) return rc; /* may change y */
            add_residual(s, &b->mlp_norm, T);
        }

        attn_capture_key k = make_key(st, ATTN_V_RESID, l, ATTN_KIND_SELF);
        if ((rc = attn_cap_edit(cap, &k, x, T, D, pos0, err))) return rc; /* may change x */
    }

    if (end.last < st->n_layers) return ATTN_OK; /* nothing after: no final norm */
    if (st->has_final_norm) attn_norm_apply(cfg, x, x, &st->final_norm, T);
    attn_capture_key k = make_key(st, ATTN_V_HIDDEN, -1, ATTN_KIND_SELF);
    return attn_cap_offer(cap, &k, x, T, D, pos0, err);
}

/* Embeds the input into s->x and emits EMBED. */
static attn_status embed_and_emit(attn_session *s, const attn_stack_weights *st,
                                  const attn_input *in, int T, int pos0, const attn_capture *cap,
                                  attn_error *err) {
    int rc = reserve_scratch(s, T, err);
    if (rc) return rc;
    embed(s, s->x.p, in, T, pos0);
    /* the embedding norm belongs to the embedding layer: vectors given directly skip it */
    if (st->has_embed_norm && !in->embeddings)
        attn_norm_apply(&s->m->cfg, s->x.p, s->x.p, &st->embed_norm, T);
    attn_capture_key k = make_key(st, ATTN_V_EMBED, -1, ATTN_KIND_SELF);
    return attn_cap_offer(cap, &k, s->x.p, T, s->m->cfg.d_model, pos0, err);
}

/* The encoder from block `layer` on over the S source positions in s->x,
 * then every cross-attention layer's keys and values of its output. */
static int encode_from(attn_session *s, int layer, int S, const attn_capture *cap,
                       attn_error *err) {
    const attn_model *m = s->m;
    int rc = run_stack(s, &m->encoder, layer, S, 0, NULL, cap, err);
    if (rc) return rc;
    const attn_attn_params ap = attn_params(&m->cfg);
    for (int l = 0; l < m->main.n_layers; l++) {
        const attn_block_weights *b = &m->main.blocks[l];
        if (!b->has_cross) continue;
        if ((rc = attn_cross_kv(&s->cross_kv[l], s->x.p, &b->cross, &ap, S, &s->as, err)))
            return rc;
    }
    s->S = S;
    /* the weights read above were the file's as it was opened */
    return attn_safetensors_check(m->st, err);
}

attn_status attn_session_encode(attn_session *s, const attn_input *src, const attn_capture *cap,
                                attn_error *err) {
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_encode: no session");
    const attn_model *m = s->m;
    const attn_config *cfg = &m->cfg;
    if (cfg->arch != ATTN_ARCH_ENCODER_DECODER)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "a source input needs an encoder-decoder model; this model is %s",
                              cfg->arch == ATTN_ARCH_DECODER ? "a decoder" : "an encoder");
    int rc = check_input(s, src, 0, err);
    if (rc) return rc;
    /* the decoder positions were computed against the old source */
    s->len = 0;
    s->S = 0;
    const int S = (int)src->n;
    if ((rc = embed_and_emit(s, &m->encoder, src, S, 0, cap, err))) return rc;
    return encode_from(s, 0, S, cap, err);
}

attn_status attn_session_reencode_from(attn_session *s, int layer, const float *x, int S,
                                       const attn_capture *cap, attn_error *err) {
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_reencode_from: no session");
    const attn_model *m = s->m;
    if (m->cfg.arch != ATTN_ARCH_ENCODER_DECODER)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_session_reencode_from: the model has no encoder");
    if (!x) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_reencode_from: x is NULL");
    if (layer < 0 || layer > m->encoder.n_layers)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_session_reencode_from: layer %d is not in 0 .. %d", layer,
                              m->encoder.n_layers);
    if (S <= 0 || s->S != S)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_session_reencode_from: the session holds a source of %d "
                              "positions, not %d",
                              s->S, S);
    int rc = reserve_scratch(s, S, err);
    if (rc) return rc;
    memcpy(s->x.p, x, (size_t)S * (size_t)m->cfg.d_model * sizeof *s->x.p); /* [S, D] */
    s->len = 0;
    s->S = 0;
    return encode_from(s, layer, S, cap, err);
}

/* The main stack's self-attention caches for run_stack: one per layer, or
 * NULL (one reused) when the session will not be continued. */
static attn_kv_cache *main_kvs(attn_session *s) { return s->reuse_cache ? NULL : s->self_kv; }

/* The logits [T, V] of the final hidden states in s->x, when a model with an
 * lm_head is asked for them. */
static attn_status emit_logits(attn_session *s, int T, int pos0, const attn_capture *cap,
                               attn_error *err) {
    const attn_model *m = s->m;
    attn_capture_key k = make_key(&m->main, ATTN_V_LOGITS, -1, ATTN_KIND_SELF);
    if (!m->lm_head || !attn_cap_wants(cap, &k)) return ATTN_OK;
    const int D = m->cfg.d_model, V = m->cfg.vocab_size;
    size_t tv;
    if (!attn_mul_size((size_t)T, (size_t)V, &tv))
        return attn_error_set(err, ATTN_ERR_NOMEM, "logits: size overflows");
    int rc = attn_buf_reserve(&s->logits, tv, "logits", err);
    if (rc) return rc;
    kern_linear(s->logits.p, s->x.p, m->lm_head, NULL, T, D, V);
    return attn_cap_emit(cap, &k, s->logits.p, T, V, pos0, err);
}

attn_status attn_session_forward(attn_session *s, const attn_input *in, const attn_capture *cap,
                                 attn_error *err) {
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_forward: no session");
    const attn_model *m = s->m;
    const attn_config *cfg = &m->cfg;
    const attn_stack_weights *st = &m->main;
    if (cfg->arch == ATTN_ARCH_ENCODER_DECODER && s->S == 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "encoder-decoder model: encode a source before running the "
                              "decoder");
    if (!st->causal && s->len > 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "an encoder-only model is bidirectional and this session already "
                              "holds %zu positions; reset the session first",
                              s->len);
    if (s->reuse_cache && s->len > 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "this session reuses one key/value cache for every layer (one pass "
                              "only) and already holds %zu positions: it cannot be continued; "
                              "reset it first",
                              s->len);
    int rc = check_input(s, in, s->len, err);
    if (rc) return rc;
    const int T = (int)in->n, pos0 = (int)s->len;
    if ((rc = embed_and_emit(s, st, in, T, pos0, cap, err))) return rc;
    if ((rc = run_stack(s, st, 0, T, pos0, main_kvs(s), cap, err)))
        return rc;
    if ((rc = emit_logits(s, T, pos0, cap, err))) return rc;
    s->len += in->n;
    /* the weights read above were the file's as it was opened */
    return attn_safetensors_check(m->st, err);
}

attn_status attn_session_rerun_from(attn_session *s, int layer, const float *x, int T,
                                    const attn_capture *cap, attn_error *err) {
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_rerun_from: no session");
    const attn_model *m = s->m;
    const attn_stack_weights *st = &m->main;
    if (!x) return attn_error_set(err, ATTN_ERR_USAGE, "attn_session_rerun_from: x is NULL");
    if (layer < 0 || layer > st->n_layers)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_session_rerun_from: layer %d is not in 0 .. %d", layer,
                              st->n_layers);
    if (T <= 0 || s->len != (size_t)T)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_session_rerun_from: the session holds %zu positions, not the "
                              "%d of one pass to run again",
                              s->len, T);
    int rc = reserve_scratch(s, T, err);
    if (rc) return rc;
    memcpy(s->x.p, x, (size_t)T * (size_t)m->cfg.d_model * sizeof *s->x.p); /* [T, D] */
    rc = run_stack(s, st, layer, T, 0, main_kvs(s), cap, err);
    if (rc || (rc = emit_logits(s, T, 0, cap, err))) return rc;
    return attn_safetensors_check(m->st, err);
}
