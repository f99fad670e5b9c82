/* The forward pass and sessions on models built in memory (struct attn_model
 * filled with random weights, no files), checked against properties
 * (masks, KV cache, GQA, bidirectionality, cross-attention, capture) and
 * against a naive double-precision forward written here, independently of
 * the library's kernels. */
#include "model/model.h"
#include "support.h"
#include "attn/write.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

/* ------------------------------------------------------------------------ */
/* Random numbers: tu_rng (tests/support.h), fixed seeds                     */


/* ------------------------------------------------------------------------ */
/* Models in memory                                                          */

#define MAX_ALLOCS 512
typedef struct tmodel {
    struct attn_model m;
    void *allocs[MAX_ALLOCS];
    int n_allocs;
    tu_rng rng;
} tmodel;

static void *tm_alloc(tmodel *tm, size_t bytes) {
    ck_assert_int_lt(tm->n_allocs, MAX_ALLOCS);
    void *p = calloc(1, bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    tm->allocs[tm->n_allocs++] = p;
    return p;
}

/* n floats of N(mean, 0.3^2) */
static float *tm_rand(tmodel *tm, size_t n, double mean) {
    float *p = tm_alloc(tm, n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(mean + 0.3 * tu_rng_normal(&tm->rng));
    return p;
}

static attn_linear tm_linear(tmodel *tm, int out, int in) {
    attn_linear l = {.w = tm_rand(tm, (size_t)out * in, 0.0)};
    l.b = tm->m.cfg.bias ? tm_rand(tm, (size_t)out, 0.0) : NULL;
    return l;
}

static attn_norm_weights tm_norm(tmodel *tm) {
    const attn_config *c = &tm->m.cfg;
    attn_norm_weights n = {.w = tm_rand(tm, (size_t)c->d_model, 1.0)};
    n.b = c->norm == ATTN_NORM_LAYERNORM ? tm_rand(tm, (size_t)c->d_model, 0.0) : NULL;
    return n;
}

static attn_attention_weights tm_attention(tmodel *tm) {
    const attn_config *c = &tm->m.cfg;
    int D = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    attn_attention_weights a = {.q = tm_linear(tm, qd, D), .k = tm_linear(tm, kvd, D),
                                .v = tm_linear(tm, kvd, D), .o = tm_linear(tm, D, qd)};
    return a;
}

static void tm_stack(tmodel *tm, attn_stack_weights *st, int n_layers, bool cross, bool causal,
                     attn_stack stack, bool source) {
    const attn_config *c = &tm->m.cfg;
    st->n_layers = n_layers;
    st->blocks = tm_alloc(tm, sizeof(attn_block_weights) * (size_t)(n_layers ? n_layers : 1));
    for (int l = 0; l < n_layers; l++) {
        attn_block_weights *b = &st->blocks[l];
        b->attn_norm = tm_norm(tm);
        b->attn = tm_attention(tm);
        b->has_cross = cross;
        if (cross) {
            b->cross_norm = tm_norm(tm);
            b->cross = tm_attention(tm);
        }
        b->has_mlp = c->mlp != ATTN_MLP_NONE;
        if (b->has_mlp) {
            b->mlp_norm = tm_norm(tm);
            b->up = tm_linear(tm, c->d_ff, c->d_model);
            if (c->mlp == ATTN_MLP_SWIGLU) b->gate = tm_linear(tm, c->d_ff, c->d_model);
            b->down = tm_linear(tm, c->d_model, c->d_ff);
        }
    }
    st->has_final_norm = c->final_norm;
    if (c->final_norm) st->final_norm = tm_norm(tm);
    st->causal = causal;
    st->stack = stack;
    st->source = source;
}

static tmodel *tm_build(const attn_config *cfg, uint64_t seed) {
    tmodel *tm = calloc(1, sizeof *tm);
    ck_assert_ptr_nonnull(tm);
    tm->rng.s = seed;
    tm->m.cfg = *cfg;
    const attn_config *c = &tm->m.cfg;
    tm->m.tok_embed = tm_rand(tm, (size_t)c->vocab_size * c->d_model, 0.0);
    if (c->positional == ATTN_POS_LEARNED)
        tm->m.pos_embed = tm_rand(tm, (size_t)c->max_seq_len * c->d_model, 0.0);
    bool encdec = c->arch == ATTN_ARCH_ENCODER_DECODER, enc = c->arch == ATTN_ARCH_ENCODER;
    tm_stack(tm, &tm->m.main, c->n_layers, encdec, !enc,
             enc ? ATTN_STACK_ENCODER : ATTN_STACK_DECODER, false);
    if (encdec)
        tm_stack(tm, &tm->m.encoder, c->n_encoder_layers, false, false, ATTN_STACK_ENCODER, true);
    if (c->lm_head == ATTN_LM_HEAD_TIED) tm->m.lm_head = tm->m.tok_embed;
    if (c->lm_head == ATTN_LM_HEAD_SEPARATE)
        tm->m.lm_head = tm_rand(tm, (size_t)c->vocab_size * c->d_model, 0.0);
    return tm;
}

static void tm_free(tmodel *tm) {
    for (int i = 0; i < tm->n_allocs; i++) free(tm->allocs[i]);
    free(tm);
}

/* A small decoder; tests change fields from here. */
static attn_config base_cfg(void) {
    attn_config c;
    memset(&c, 0, sizeof c);
    c.arch = ATTN_ARCH_DECODER;
    c.vocab_size = 29;
    c.d_model = 16;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = 4;
    c.d_ff = 24;
    c.max_seq_len = 32;
    c.n_layers = 2;
    c.positional = ATTN_POS_LEARNED;
    c.rope_theta = 10000.0;
    c.embed_scale = 1.0;
    c.norm = ATTN_NORM_LAYERNORM;
    c.norm_eps = 1e-5;
    c.norm_position = ATTN_NORM_PRE;
    c.final_norm = true;
    c.mlp = ATTN_MLP_GELU;
    c.bias = true;
    c.lm_head = ATTN_LM_HEAD_TIED;
    return c;
}

static void rand_ids(int *ids, int n, int V, uint64_t seed) {
    tu_rng r = {seed};
    for (int i = 0; i < n; i++) ids[i] = (int)(tu_rng_u64(&r) % (uint64_t)V);
}

/* ------------------------------------------------------------------------ */
/* A recording capture sink                                                  */

typedef struct rec {
    attn_capture_key key;
    int rows, cols, off;
    float *data;
} rec;

typedef struct sink {
    unsigned want_mask;  /* bit per attn_value */
    const char *only;    /* when set: only this name is wanted */
    int n_wants;         /* wants() calls */
    int fail_after;      /* > 0: the fail_after-th emit fails */
    bool silent;         /* ... without a message */
    bool alongside;      /* emit_alongside: emits may run beside the pass */
    int in_parallel;     /* emits made inside the pass's parallel region */
    rec *recs;
    int n, cap;
} sink;

#define BIT(v) (1u << (v))
#define ALL_VALUES (BIT(ATTN_V_COUNT) - 1u)

static bool sink_wants(void *user, const attn_capture_key *key) {
    sink *s = user;
    s->n_wants++;
    if (s->only) {
        char name[128];
        attn_capture_name(key, name, sizeof name);
        return strcmp(name, s->only) == 0;
    }
    return (s->want_mask & BIT(key->value)) != 0;
}

static attn_status sink_emit(void *user, const attn_capture_key *key, const attn_capture_view *view,
                     attn_error *err) {
    sink *s = user;
    if (s->fail_after > 0 && s->n + 1 == s->fail_after) {
        if (s->silent) return ATTN_ERR_IO;
        err->status = ATTN_ERR_IO;
        snprintf(err->message, sizeof err->message, "sink: disk full");
        return ATTN_ERR_IO;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->recs = realloc(s->recs, sizeof(rec) * (size_t)s->cap);
        ck_assert_ptr_nonnull(s->recs);
    }
#if defined(_OPENMP)
    s->in_parallel += omp_in_parallel();
#endif
    rec *r = &s->recs[s->n++];
    r->key = *key;
    r->rows = view->rows;
    r->cols = view->cols;
    r->off = view->row_offset;
    r->data = malloc(sizeof(float) * (size_t)view->rows * view->cols + 1);
    ck_assert_ptr_nonnull(r->data);
    memcpy(r->data, view->data, sizeof(float) * (size_t)view->rows * view->cols);
    return ATTN_OK;
}

static void sink_clear(sink *s) {
    for (int i = 0; i < s->n; i++) free(s->recs[i].data);
    free(s->recs);
    s->recs = NULL;
    s->n = s->cap = 0;
    s->n_wants = 0;
}

static attn_capture sink_capture(sink *s) {
    attn_capture c = {.wants = sink_wants, .emit = sink_emit, .user = s,
                      .emit_alongside = s && s->alongside};
    return c;
}

/* The nth (0-based) record matching value/layer/head/kind/source, or NULL. */
static const rec *find_rec(const sink *s, attn_value v, int layer, int head, attn_attn_kind kind,
                           bool source, int nth) {
    for (int i = 0; i < s->n; i++) {
        const attn_capture_key *k = &s->recs[i].key;
        if (k->value == v && k->layer == layer && k->head == head && k->source == source &&
            (k->kind == kind || v < ATTN_V_ATTN_IN || v > ATTN_V_ATTN_OUT) && nth-- == 0)
            return &s->recs[i];
    }
    return NULL;
}

static int run_ids(attn_session *ss, const int *ids, size_t n, sink *s, attn_error *err) {
    attn_input in = {.ids = ids, .n = n};
    attn_capture cap = sink_capture(s);
    return attn_session_forward(ss, &in, s ? &cap : NULL, err);
}

static int encode_ids(attn_session *ss, const int *ids, size_t n, sink *s, attn_error *err) {
    attn_input in = {.ids = ids, .n = n};
    attn_capture cap = sink_capture(s);
    return attn_session_encode(ss, &in, s ? &cap : NULL, err);
}

/* ------------------------------------------------------------------------ */
/* A naive double-precision forward, literal and independent of kernels.c    */

#define MAXT 16
#define MAXL 4
#define MAXH 8

typedef struct ref_out {
    double hidden[MAXT * 64];
    double logits[MAXT * 64];
    /* attention weights [source][kind][layer][head][query][key] */
    double w[2][2][MAXL][MAXH][MAXT][MAXT];
} ref_out;

/* out (T, OC) = x (T, C) W^T + b, W (OC, C) */
static void ref_linear(double *out, const double *x, const attn_linear *l, int T, int OC, int C) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OC; o++) {
            double acc = l->b ? l->b[o] : 0.0;
            for (int i = 0; i < C; i++) acc += x[t * C + i] * (double)l->w[o * C + i];
            out[t * OC + o] = acc;
        }
}

static void ref_norm(const attn_config *c, double *x, const attn_norm_weights *nw, int T) {
    int D = c->d_model;
    for (int t = 0; t < T; t++) {
        double *r = x + t * D, mean = 0, sq = 0;
        for (int i = 0; i < D; i++) mean += r[i] / D;
        if (c->norm == ATTN_NORM_RMSNORM) {
            for (int i = 0; i < D; i++) sq += r[i] * r[i] / D;
            for (int i = 0; i < D; i++) r[i] = r[i] / sqrt(sq + c->norm_eps) * nw->w[i];
        } else {
            for (int i = 0; i < D; i++) sq += (r[i] - mean) * (r[i] - mean) / D;
            for (int i = 0; i < D; i++)
                r[i] = (r[i] - mean) / sqrt(sq + c->norm_eps) * nw->w[i] + nw->b[i];
        }
    }
}

/* Rotates pair (2i, 2i+1) of a head vector at position p as a complex number. */
static void ref_rope(double *v, int hd, int p, double theta) {
    for (int i = 0; i < hd / 2; i++) {
        double a = p * pow(theta, -2.0 * i / hd), re = v[2 * i], im = v[2 * i + 1];
        v[2 * i] = re * cos(a) - im * sin(a);
        v[2 * i + 1] = re * sin(a) + im * cos(a);
    }
}

/* out (T, D) = attention of x (T, D) over kv_in (Tk, D); records weights in wrec[h][t][j]. */
static void ref_attention(const attn_config *c, double *out, const double *x, const double *kv_in,
                          int T, int Tk, const attn_attention_weights *w, bool causal, bool rope,
                          double (*wrec)[MAXT][MAXT]) {
    int D = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    double *q = calloc((size_t)T * H * hd, sizeof(double));
    double *k = calloc((size_t)Tk * KV * hd, sizeof(double));
    double *v = calloc((size_t)Tk * KV * hd, sizeof(double));
    double *cat = calloc((size_t)T * H * hd, sizeof(double));
    ref_linear(q, x, &w->q, T, H * hd, D);
    ref_linear(k, kv_in, &w->k, Tk, KV * hd, D);
    ref_linear(v, kv_in, &w->v, Tk, KV * hd, D);
    if (rope) {
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) ref_rope(q + (t * H + h) * hd, hd, t, c->rope_theta);
        for (int t = 0; t < Tk; t++)
            for (int g = 0; g < KV; g++) ref_rope(k + (t * KV + g) * hd, hd, t, c->rope_theta);
    }
    for (int h = 0; h < H; h++) {
        int g = h / (H / KV);
        for (int t = 0; t < T; t++) {
            double s[MAXT], mx = -INFINITY, sum = 0;
            for (int j = 0; j < Tk; j++) {
                s[j] = 0;
                for (int d = 0; d < hd; d++) s[j] += q[(t * H + h) * hd + d] * k[(j * KV + g) * hd + d];
                s[j] /= sqrt((double)hd);
                if (causal && j > t) s[j] = -INFINITY;
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j < Tk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int j = 0; j < Tk; j++) {
                s[j] /= sum;
                wrec[h][t][j] = s[j];
                for (int d = 0; d < hd; d++)
                    cat[(t * H + h) * hd + d] += s[j] * v[(j * KV + g) * hd + d];
            }
        }
    }
    ref_linear(out, cat, &w->o, T, D, H * hd);
    free(q), free(k), free(v), free(cat);
}

static void ref_mlp(const attn_config *c, double *out, const double *x, const attn_block_weights *b,
                    int T) {
    int D = c->d_model, F = c->d_ff;
    double *u = calloc((size_t)T * F, sizeof(double)), *g = calloc((size_t)T * F, sizeof(double));
    ref_linear(u, x, &b->up, T, F, D);
    if (c->mlp == ATTN_MLP_SWIGLU) ref_linear(g, x, &b->gate, T, F, D);
    for (int i = 0; i < T * F; i++) {
        double a = u[i];
        switch (c->mlp) {
        case ATTN_MLP_RELU: u[i] = a > 0 ? a : 0; break;
        case ATTN_MLP_GELU: u[i] = 0.5 * a * (1 + erf(a / sqrt(2.0))); break;
        case ATTN_MLP_GELU_TANH:
            u[i] = 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
            break;
        case ATTN_MLP_SWIGLU: u[i] = g[i] / (1 + exp(-g[i])) * a; break;
        default: break;
        }
    }
    ref_linear(out, u, &b->down, T, D, F);
    free(u), free(g);
}

static void ref_embed(const attn_model *m, double *x, const int *ids, int T) {
    const attn_config *c = &m->cfg;
    int D = c->d_model;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            double e = m->tok_embed[ids[t] * D + i] * c->embed_scale;
            if (c->positional == ATTN_POS_LEARNED) e += m->pos_embed[t * D + i];
            if (c->positional == ATTN_POS_SINUSOIDAL) {
                double a = t / pow(10000.0, (double)(i - i % 2) / D);
                e += i % 2 ? cos(a) : sin(a);
            }
            x[t * D + i] = e;
        }
}

/* Runs a stack in place on x (T, D); enc (S, D) for cross-attention. */
static void ref_stack(const attn_model *m, const attn_stack_weights *st, double *x, int T,
                      const double *enc, int S, ref_out *ro) {
    const attn_config *c = &m->cfg;
    int D = c->d_model, src = st->source ? 1 : 0;
    bool pre = c->norm_position == ATTN_NORM_PRE, rope = c->positional == ATTN_POS_ROPE;
    double *n = calloc((size_t)T * D, sizeof(double)), *y = calloc((size_t)T * D, sizeof(double));
    for (int l = 0; l < st->n_layers; l++) {
        const attn_block_weights *b = &st->blocks[l];
        /* self-attention */
        memcpy(n, x, sizeof(double) * T * D);
        if (pre) ref_norm(c, n, &b->attn_norm, T);
        ref_attention(c, y, n, n, T, T, &b->attn, st->causal, rope, ro->w[src][0][l]);
        for (int i = 0; i < T * D; i++) x[i] += y[i];
        if (!pre) ref_norm(c, x, &b->attn_norm, T);
        if (b->has_cross) {
            memcpy(n, x, sizeof(double) * T * D);
            if (pre) ref_norm(c, n, &b->cross_norm, T);
            ref_attention(c, y, n, enc, T, S, &b->cross, false, false, ro->w[src][1][l]);
            for (int i = 0; i < T * D; i++) x[i] += y[i];
            if (!pre) ref_norm(c, x, &b->cross_norm, T);
        }
        if (b->has_mlp) {
            memcpy(n, x, sizeof(double) * T * D);
            if (pre) ref_norm(c, n, &b->mlp_norm, T);
            ref_mlp(c, y, n, b, T);
            for (int i = 0; i < T * D; i++) x[i] += y[i];
            if (!pre) ref_norm(c, x, &b->mlp_norm, T);
        }
    }
    if (st->has_final_norm) ref_norm(c, x, &st->final_norm, T);
    free(n), free(y);
}

static void ref_forward(const attn_model *m, const int *ids, int T, const int *src, int S,
                        ref_out *ro) {
    const attn_config *c = &m->cfg;
    double enc[MAXT * 64];
    if (c->arch == ATTN_ARCH_ENCODER_DECODER) {
        ref_embed(m, enc, src, S);
        ref_stack(m, &m->encoder, enc, S, NULL, 0, ro);
    }
    ref_embed(m, ro->hidden, ids, T);
    ref_stack(m, &m->main, ro->hidden, T, enc, S, ro);
    if (m->lm_head)
        for (int t = 0; t < T; t++)
            for (int v = 0; v < c->vocab_size; v++) {
                double a = 0;
                for (int i = 0; i < c->d_model; i++)
                    a += ro->hidden[t * c->d_model + i] * m->lm_head[v * c->d_model + i];
                ro->logits[t * c->vocab_size + v] = a;
            }
}

/* ------------------------------------------------------------------------ */
/* (f) the library against the reference, one config per variant            */

typedef struct variant {
    const char *name;
    void (*set)(attn_config *c);
} variant;

static void v_pre_ln_learned(attn_config *c) { (void)c; }
static void v_pre_rms_rope_swiglu_gqa(attn_config *c) {
    c->norm = ATTN_NORM_RMSNORM, c->positional = ATTN_POS_ROPE, c->mlp = ATTN_MLP_SWIGLU;
    c->bias = false, c->n_kv_heads = 2, c->head_dim = 6, c->lm_head = ATTN_LM_HEAD_SEPARATE;
    c->rope_theta = 500.0, c->norm_eps = 1e-6;
}
static void v_post_ln_sin_relu(attn_config *c) {
    c->norm_position = ATTN_NORM_POST, c->final_norm = false, c->positional = ATTN_POS_SINUSOIDAL;
    c->mlp = ATTN_MLP_RELU, c->lm_head = ATTN_LM_HEAD_NONE, c->n_layers = 3;
}
static void v_pre_rms_none_geltanh_scale(attn_config *c) {
    c->norm = ATTN_NORM_RMSNORM, c->positional = ATTN_POS_NONE, c->mlp = ATTN_MLP_GELU_TANH;
    c->bias = false, c->embed_scale = 4.0, c->n_heads = 2, c->n_kv_heads = 1, c->head_dim = 10;
}
static void v_attention_only_mqa_rope(attn_config *c) {
    c->mlp = ATTN_MLP_NONE, c->positional = ATTN_POS_ROPE, c->n_heads = 8, c->n_kv_heads = 1;
    c->head_dim = 2, c->d_ff = 0, c->n_layers = 1;
}
static void v_post_rms_rope_swiglu_final(attn_config *c) {
    c->norm_position = ATTN_NORM_POST, c->final_norm = true, c->norm = ATTN_NORM_RMSNORM;
    c->positional = ATTN_POS_ROPE, c->mlp = ATTN_MLP_SWIGLU;
}
static void v_encoder_post_ln(attn_config *c) {
    c->arch = ATTN_ARCH_ENCODER, c->norm_position = ATTN_NORM_POST, c->final_norm = false;
    c->lm_head = ATTN_LM_HEAD_NONE;
}
static void v_encoder_pre_rope(attn_config *c) {
    c->arch = ATTN_ARCH_ENCODER, c->positional = ATTN_POS_ROPE, c->n_kv_heads = 2;
    c->lm_head = ATTN_LM_HEAD_SEPARATE, c->mlp = ATTN_MLP_GELU_TANH;
}
static void v_encdec_post_sin(attn_config *c) {
    c->arch = ATTN_ARCH_ENCODER_DECODER, c->n_encoder_layers = 2;
    c->norm_position = ATTN_NORM_POST, c->final_norm = false, c->positional = ATTN_POS_SINUSOIDAL;
    c->mlp = ATTN_MLP_RELU, c->embed_scale = 4.0; /* sqrt(d_model) */
}
static void v_encdec_pre_rms_rope_gqa(attn_config *c) {
    c->arch = ATTN_ARCH_ENCODER_DECODER, c->n_encoder_layers = 3, c->n_layers = 2;
    c->norm = ATTN_NORM_RMSNORM, c->positional = ATTN_POS_ROPE, c->mlp = ATTN_MLP_SWIGLU;
    c->bias = false, c->n_kv_heads = 2, c->head_dim = 5, c->lm_head = ATTN_LM_HEAD_SEPARATE;
}
static void v_encdec_pre_ln_learned(attn_config *c) {
    c->arch = ATTN_ARCH_ENCODER_DECODER, c->n_encoder_layers = 1, c->n_layers = 2;
    c->mlp = ATTN_MLP_GELU;
}

static const variant variants[] = {
    {"decoder pre layernorm learned gelu bias tied", v_pre_ln_learned},
    {"decoder pre rmsnorm rope swiglu gqa hd=6 separate", v_pre_rms_rope_swiglu_gqa},
    {"decoder post layernorm sinusoidal relu no-final no-head", v_post_ln_sin_relu},
    {"decoder pre rmsnorm none gelu_tanh scale=4 mqa hd=10", v_pre_rms_none_geltanh_scale},
    {"decoder attention-only rope mqa H=8 hd=2", v_attention_only_mqa_rope},
    {"decoder post rmsnorm rope swiglu final", v_post_rms_rope_swiglu_final},
    {"encoder post layernorm learned", v_encoder_post_ln},
    {"encoder pre rope gqa gelu_tanh", v_encoder_pre_rope},
    {"encoder-decoder post layernorm sinusoidal relu scale", v_encdec_post_sin},
    {"encoder-decoder pre rmsnorm rope swiglu gqa hd=5", v_encdec_pre_rms_rope_gqa},
    {"encoder-decoder pre layernorm learned gelu", v_encdec_pre_ln_learned},
};
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

START_TEST(test_against_reference) {
    const variant *var = &variants[_i];
    attn_config c = base_cfg();
    var->set(&c);
    tmodel *tm = tm_build(&c, 1000 + (uint64_t)_i);
    const int T = 9, S = 7;
    int ids[9], src[7];
    rand_ids(ids, T, c.vocab_size, 77 + (uint64_t)_i);
    rand_ids(src, S, c.vocab_size, 99 + (uint64_t)_i);
    ref_out *ro = calloc(1, sizeof *ro);
    ck_assert_ptr_nonnull(ro);
    bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    ref_forward(&tm->m, ids, T, src, encdec ? S : 0, ro);

    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink s = {.want_mask = BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_LOGITS)};
    if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, &s, &err), ATTN_OK);
    ck_assert_msg(run_ids(ss, ids, T, &s, &err) == ATTN_OK, "%s", err.message);

    /* hidden: normwise relative error */
    const rec *hid = find_rec(&s, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    ck_assert_ptr_nonnull(hid);
    ck_assert_int_eq(hid->rows, T);
    ck_assert_int_eq(hid->cols, c.d_model);
    double maxabs = 0, maxref = 0;
    for (int i = 0; i < T * c.d_model; i++) {
        maxabs = fmax(maxabs, fabs(hid->data[i] - ro->hidden[i]));
        maxref = fmax(maxref, fabs(ro->hidden[i]));
    }
    double hid_rel = maxabs / fmax(1.0, maxref);

    /* logits */
    double logit_rel = 0;
    const rec *lg = find_rec(&s, ATTN_V_LOGITS, -1, -1, ATTN_KIND_SELF, false, 0);
    if (tm->m.lm_head) {
        ck_assert_ptr_nonnull(lg);
        ck_assert_int_eq(lg->cols, c.vocab_size);
        double ma = 0, mr = 0;
        for (int i = 0; i < T * c.vocab_size; i++) {
            ma = fmax(ma, fabs(lg->data[i] - ro->logits[i]));
            mr = fmax(mr, fabs(ro->logits[i]));
        }
        logit_rel = ma / fmax(1.0, mr);
    } else {
        ck_assert_ptr_null(lg);
    }

    /* every weight map of every stack, layer, kind, head */
    double werr = 0;
    int maps = 0;
    for (int src_stack = 0; src_stack < 2; src_stack++)
        for (int kind = 0; kind < 2; kind++) {
            const attn_stack_weights *st = src_stack ? &tm->m.encoder : &tm->m.main;
            if (src_stack && !encdec) continue;
            if (kind == 1 && (src_stack || !encdec)) continue;
            int rows = src_stack ? S : T, cols = kind ? S : rows;
            for (int l = 0; l < st->n_layers; l++)
                for (int h = 0; h < c.n_heads; h++) {
                    const rec *r = find_rec(&s, ATTN_V_WEIGHTS, l, h, (attn_attn_kind)kind,
                                            src_stack == 1, 0);
                    ck_assert_msg(r != NULL, "missing weights s%d k%d l%d h%d", src_stack, kind, l,
                                  h);
                    ck_assert_int_eq(r->rows, rows);
                    ck_assert_int_eq(r->cols, cols);
                    for (int t = 0; t < rows; t++)
                        for (int j = 0; j < cols; j++)
                            werr = fmax(werr, fabs(r->data[t * cols + j] -
                                                   ro->w[src_stack][kind][l][h][t][j]));
                    maps++;
                }
        }
    printf("reference [%s]: hidden rel %.3g (tol 1e-4), logits rel %.3g (tol 1e-4), weights abs "
           "%.3g over %d maps (tol 2e-5)\n",
           var->name, hid_rel, logit_rel, werr, maps);
    ck_assert_double_lt(hid_rel, 1e-4);
    ck_assert_double_lt(logit_rel, 1e-4);
    ck_assert_double_lt(werr, 2e-5);
    ck_assert_int_gt(maps, 0);

    sink_clear(&s);
    attn_session_free(ss);
    tm_free(tm);
    free(ro);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A session that reuses one key/value cache for every layer (one pass)     */

/* Every value of a run with the option on is byte for byte the one of a
 * run without it, also after a longer input left a larger cache behind
 * (batch mode reuses the session); a continuation is refused, and so is
 * changing the option while the session holds positions. */
START_TEST(test_reuse_cache_same_bytes) {
    const variant *var = &variants[_i];
    attn_config c = base_cfg();
    var->set(&c);
    tmodel *tm = tm_build(&c, 2000 + (uint64_t)_i);
    enum { T = 9, LONG = 15, S = 7 };
    int ids[LONG], src[S];
    rand_ids(ids, LONG, c.vocab_size, 177 + (uint64_t)_i);
    rand_ids(src, S, c.vocab_size, 199 + (uint64_t)_i);
    bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    attn_error err;
    attn_session *kept, *reused;
    ck_assert_int_eq(attn_session_new(&kept, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_new(&reused, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_set_reuse_cache(reused, true, &err), ATTN_OK);

    sink a = {.want_mask = ALL_VALUES}, b = {.want_mask = ALL_VALUES};
    if (encdec) ck_assert_int_eq(encode_ids(kept, src, S, &a, &err), ATTN_OK);
    ck_assert_msg(run_ids(kept, ids + 3, T, &a, &err) == ATTN_OK, "%s", err.message);
    /* a longer input first, then the same one as kept's */
    if (encdec) ck_assert_int_eq(encode_ids(reused, src, S, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(reused, ids, LONG, NULL, &err), ATTN_OK);
    attn_session_reset(reused);
    if (encdec) ck_assert_int_eq(encode_ids(reused, src, S, &b, &err), ATTN_OK);
    ck_assert_msg(run_ids(reused, ids + 3, T, &b, &err) == ATTN_OK, "%s", err.message);

    ck_assert_int_gt(a.n, 0);
    ck_assert_int_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        const rec *x = &a.recs[i], *y = &b.recs[i];
        char name[128], other[128];
        attn_capture_name(&x->key, name, sizeof name);
        attn_capture_name(&y->key, other, sizeof other);
        ck_assert_msg(strcmp(name, other) == 0 && x->key.causal == y->key.causal,
                      "record %d: %s against %s", i, name, other);
        ck_assert_msg(x->rows == y->rows && x->cols == y->cols && x->off == y->off,
                      "%s: shapes differ", name);
        ck_assert_msg(memcmp(x->data, y->data, sizeof(float) * (size_t)x->rows * x->cols) == 0,
                      "%s: bytes differ with the reused cache", name);
    }
    printf("reuse cache [%s]: %d values byte-identical\n", var->name, a.n);

    /* no continuation, no change while positions are held */
    if (tm->m.main.causal) {
        ck_assert_int_eq(run_ids(reused, ids, 1, NULL, &err), ATTN_ERR_USAGE);
        ck_assert_msg(strstr(err.message, "cannot be continued") != NULL, "%s", err.message);
    }
    ck_assert_int_eq(attn_session_length(reused), T);
    ck_assert_int_eq(attn_session_set_reuse_cache(reused, false, &err), ATTN_ERR_USAGE);
    ck_assert_msg(strstr(err.message, "reset it") != NULL, "%s", err.message);
    ck_assert_int_eq(attn_session_set_reuse_cache(reused, true, &err), ATTN_OK); /* no change */
    attn_session_reset(reused);
    ck_assert_int_eq(attn_session_set_reuse_cache(reused, false, &err), ATTN_OK);

    sink_clear(&a);
    sink_clear(&b);
    attn_session_free(kept);
    attn_session_free(reused);
    tm_free(tm);
}
END_TEST

/* A pass that will not be continued stops after what is asked of it
 * (forward.c, pass_end_of): asked for one value of one block, it gives that
 * value alone, with the bytes of the whole pass, for every kind of value
 * (the maps, where the block stops after its scores, and the rest), every
 * block and both attentions. A session that will be continued runs
 * everything: asked for block 0's weights only, its next position is the
 * same bytes as one pass over all the positions. */
START_TEST(test_pass_end_same_bytes) {
    const variant *var = &variants[_i];
    attn_config c = base_cfg();
    var->set(&c);
    c.n_layers = 3;
    tmodel *tm = tm_build(&c, 2100 + (uint64_t)_i);
    enum { T = 9, S = 7 };
    int ids[T + 1], src[S];
    rand_ids(ids, T + 1, c.vocab_size, 277 + (uint64_t)_i);
    rand_ids(src, S, c.vocab_size, 299 + (uint64_t)_i);
    const bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    attn_error err;
    attn_session *ss;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_set_reuse_cache(ss, true, &err), ATTN_OK);
    sink all = {.want_mask = ALL_VALUES};
    if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, T, &all, &err), ATTN_OK);
    const attn_value vals[] = {ATTN_V_ATTN_IN, ATTN_V_Q, ATTN_V_K, ATTN_V_V, ATTN_V_SCORES,
                               ATTN_V_WEIGHTS, ATTN_V_HEAD_CONTEXT, ATTN_V_CONCAT,
                               ATTN_V_ATTN_OUT, ATTN_V_MLP_OUT, ATTN_V_RESID};
    int checked = 0;
    for (int i = 0; i < all.n; i++) {
        const rec *x = &all.recs[i];
        bool asked = x->key.value == ATTN_V_EMBED || x->key.value == ATTN_V_HIDDEN;
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) asked |= x->key.value == vals[v];
        if (!asked || x->key.source || (x->key.head > 0 && x->key.head != c.n_heads - 1 &&
                                        x->key.head != c.n_kv_heads - 1))
            continue;
        char name[128];
        attn_capture_name(&x->key, name, sizeof name);
        sink one = {.only = name};
        attn_session_reset(ss);
        if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
        ck_assert_msg(run_ids(ss, ids, T, &one, &err) == ATTN_OK, "%s: %s", name, err.message);
        ck_assert_msg(one.n == 1, "%s: %d values emitted", name, one.n);
        ck_assert_msg(one.recs[0].rows == x->rows && one.recs[0].cols == x->cols &&
                          memcmp(one.recs[0].data, x->data,
                                 sizeof(float) * (size_t)x->rows * x->cols) == 0,
                      "[%s] %s alone: other bytes than in the whole pass", var->name, name);
        sink_clear(&one);
        checked++;
    }
    printf("pass end [%s]: %d values asked alone, the whole pass's bytes\n", var->name, checked);
    ck_assert_int_ge(checked, 3 * 9);

    /* continued: block 0's weights only, then one more position */
    if (tm->m.main.causal) {
        attn_session *kept;
        ck_assert_int_eq(attn_session_new(&kept, &tm->m, &err), ATTN_OK);
        sink w0 = {.only = "blocks.0.attn.weights.h0"}, last = {.want_mask = BIT(ATTN_V_HIDDEN)};
        if (encdec) ck_assert_int_eq(encode_ids(kept, src, S, NULL, &err), ATTN_OK);
        ck_assert_int_eq(run_ids(kept, ids, T, &w0, &err), ATTN_OK);
        ck_assert_int_eq(w0.n, 1);
        ck_assert_int_eq(run_ids(kept, ids + T, 1, &last, &err), ATTN_OK);
        sink whole = {.want_mask = BIT(ATTN_V_HIDDEN)};
        attn_session_reset(ss);
        ck_assert_int_eq(attn_session_set_reuse_cache(ss, false, &err), ATTN_OK);
        if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
        ck_assert_int_eq(run_ids(ss, ids, T + 1, &whole, &err), ATTN_OK);
        ck_assert_int_eq(last.n, 1);
        ck_assert_msg(memcmp(last.recs[0].data, whole.recs[0].data + (size_t)T * c.d_model,
                             sizeof(float) * (size_t)c.d_model) == 0,
                      "[%s] continued after a pass that asked for block 0 only: other bytes",
                      var->name);
        sink_clear(&w0), sink_clear(&last), sink_clear(&whole);
        attn_session_free(kept);
    }
    sink_clear(&all);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* A sink that allows it (emit_alongside) gets each head's weights and
 * context while the pass makes the next head's, on 2 and 3 threads: the
 * same values in the same order with the same bytes as a sink that does
 * not, for weights beside the fused pass (every block but the last asks for
 * the context too) and for the maps alone (a pass that ends with the last
 * block's maps); an emit that fails there stops the pass with its error.
 * Heads of 64 and 200 positions: enough work for the threads. */
START_TEST(test_maps_alongside_same_bytes) {
    attn_config c = base_cfg();
    c.d_model = 128, c.n_heads = 2, c.n_kv_heads = 2, c.head_dim = 64, c.d_ff = 64;
    c.max_seq_len = 256;
    tmodel *tm = tm_build(&c, 2200);
    enum { T = 200 };
    int ids[T];
    rand_ids(ids, T, c.vocab_size, 377);
    attn_error err;
    attn_session *ss;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_set_reuse_cache(ss, true, &err), ATTN_OK);
    const unsigned masks[2] = {BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_HEAD_CONTEXT) | BIT(ATTN_V_HIDDEN),
                               BIT(ATTN_V_WEIGHTS)};
    for (int threads = 2; threads <= 3; threads++)
        for (int k = 0; k < 2; k++) {
            attn_set_threads(threads);
            sink plain = {.want_mask = masks[k]}, beside = {.want_mask = masks[k], .alongside = true};
            attn_session_reset(ss);
            ck_assert_int_eq(run_ids(ss, ids, T, &plain, &err), ATTN_OK);
            attn_session_reset(ss);
            ck_assert_int_eq(run_ids(ss, ids, T, &beside, &err), ATTN_OK);
            ck_assert_int_eq(plain.n, beside.n);
            ck_assert_int_ge(plain.n, c.n_layers * c.n_heads);
            for (int i = 0; i < plain.n; i++) {
                const rec *x = &plain.recs[i], *y = &beside.recs[i];
                char name[128], other[128];
                attn_capture_name(&x->key, name, sizeof name);
                attn_capture_name(&y->key, other, sizeof other);
                ck_assert_msg(strcmp(name, other) == 0, "record %d: %s against %s", i, name, other);
                ck_assert_msg(x->rows == y->rows && x->cols == y->cols &&
                                  memcmp(x->data, y->data,
                                         sizeof(float) * (size_t)x->rows * x->cols) == 0,
                              "%d threads: %s beside the pass: other bytes", threads, name);
            }
            printf("maps alongside (%d threads, %s): %d values, the same bytes, %d beside the "
                   "pass\n", threads, k ? "maps alone" : "with the fused pass", plain.n,
                   beside.in_parallel);
            ck_assert_int_eq(plain.in_parallel, 0);
#if defined(_OPENMP)
            ck_assert_int_ge(beside.in_parallel, c.n_heads - 1); /* all but the last head's */
#endif
            sink fails = {.want_mask = masks[k], .alongside = true, .fail_after = 3};
            attn_session_reset(ss);
            ck_assert_int_eq(run_ids(ss, ids, T, &fails, &err), ATTN_ERR_IO);
            ck_assert_msg(strstr(err.message, "disk full") != NULL, "%s", err.message);
            ck_assert_int_eq(fails.n, 2);
            sink_clear(&plain), sink_clear(&beside), sink_clear(&fails);
        }
    attn_set_threads(0);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* The residual stream at block l's input, as the clean pass a captured it. */
static const rec *stream_at(const sink *a, int l) {
    return l == 0 ? find_rec(a, ATTN_V_EMBED, -1, -1, ATTN_KIND_SELF, false, 0)
                  : find_rec(a, ATTN_V_RESID, l - 1, -1, ATTN_KIND_SELF, false, 0);
}

static bool same_rec(const rec *x, const rec *y) {
    return x && y && x->rows == y->rows && x->cols == y->cols && x->off == y->off &&
           memcmp(x->data, y->data, sizeof(float) * (size_t)x->rows * x->cols) == 0;
}

/* attn_session_rerun_from(l) on the stream captured at block l's input:
 * every value it offers has the bytes of the whole pass (blocks l.., hidden,
 * logits, nothing before l); with a head of block l ablated it has the bytes
 * of a whole ablated pass, and differs from the clean one. Both with a cache
 * per layer and with the reused cache. */
START_TEST(test_rerun_from_same_bytes) {
    const variant *var = &variants[_i];
    attn_config c = base_cfg();
    var->set(&c);
    tmodel *tm = tm_build(&c, 3100 + (uint64_t)_i);
    enum { T = 7, S = 5 };
    int ids[T], src[S];
    rand_ids(ids, T, c.vocab_size, 311 + (uint64_t)_i);
    rand_ids(src, S, c.vocab_size, 313 + (uint64_t)_i);
    const bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    const int L = tm->m.main.n_layers;
    attn_error err;
    int checked = 0;
    for (int reuse = 0; reuse < 2; reuse++) {
        attn_session *ss, *full;
        ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
        ck_assert_int_eq(attn_session_new(&full, &tm->m, &err), ATTN_OK);
        ck_assert_int_eq(attn_session_set_reuse_cache(ss, reuse, &err), ATTN_OK);
        sink a = {.want_mask = ALL_VALUES};
        if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
        ck_assert_msg(run_ids(ss, ids, T, &a, &err) == ATTN_OK, "%s", err.message);
        for (int l = 0; l <= L; l++) {
            const rec *x = stream_at(&a, l);
            ck_assert_ptr_nonnull(x);
            /* without an intervention: the clean pass's bytes */
            sink b = {.want_mask = ALL_VALUES};
            attn_capture cb = sink_capture(&b);
            ck_assert_msg(attn_session_rerun_from(ss, l, x->data, T, &cb, &err) == ATTN_OK, "%s",
                          err.message);
            int expected = 0;
            for (int i = 0; i < a.n; i++) {
                const attn_capture_key *k = &a.recs[i].key;
                if (!k->source && k->value != ATTN_V_EMBED && (k->layer >= l || k->layer < 0))
                    expected++;
            }
            ck_assert_int_eq(b.n, expected);
            for (int i = 0; i < b.n; i++) {
                const attn_capture_key *k = &b.recs[i].key;
                ck_assert(!k->source && k->value != ATTN_V_EMBED && (k->layer >= l || k->layer < 0));
                ck_assert_msg(same_rec(&b.recs[i], find_rec(&a, k->value, k->layer, k->head, k->kind,
                                                            false, 0)),
                              "[%s] rerun from %d: value %d of layer %d head %d differs", var->name,
                              l, (int)k->value, k->layer, k->head);
            }
            sink_clear(&b);
            if (l == L) continue;
            /* head 1 of block l ablated: the whole ablated pass's bytes */
            char spec[16];
            snprintf(spec, sizeof spec, "%d.1", l);
            attn_ablation ab;
            ck_assert_int_eq(attn_ablation_parse(&ab, spec, &tm->m.cfg, &err), ATTN_OK);
            sink d = {.want_mask = BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_LOGITS)};
            sink e = {.want_mask = BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_LOGITS)};
            attn_fanout fd = {0}, fe = {0};
            ck_assert_int_eq(attn_fanout_add(&fd, attn_ablation_capture(&ab), &err), ATTN_OK);
            ck_assert_int_eq(attn_fanout_add(&fd, sink_capture(&d), &err), ATTN_OK);
            ck_assert_int_eq(attn_fanout_add(&fe, attn_ablation_capture(&ab), &err), ATTN_OK);
            ck_assert_int_eq(attn_fanout_add(&fe, sink_capture(&e), &err), ATTN_OK);
            attn_capture cd = attn_fanout_capture(&fd), ce = attn_fanout_capture(&fe);
            ck_assert_int_eq(attn_session_rerun_from(ss, l, x->data, T, &cd, &err), ATTN_OK);
            attn_session_reset(full);
            if (encdec) ck_assert_int_eq(encode_ids(full, src, S, NULL, &err), ATTN_OK);
            attn_input in = {.ids = ids, .n = T};
            ck_assert_int_eq(attn_session_forward(full, &in, &ce, &err), ATTN_OK);
            ck_assert_int_eq(d.n, e.n);
            ck_assert_int_gt(d.n, 0);
            for (int i = 0; i < d.n; i++) {
                const rec *r = &d.recs[i];
                ck_assert_msg(same_rec(r, &e.recs[i]), "[%s] ablated %s: rerun and whole pass differ",
                              var->name, spec);
                const rec *clean = find_rec(&a, r->key.value, -1, -1, ATTN_KIND_SELF, false, 0);
                ck_assert_msg(!same_rec(r, clean), "[%s] ablating %s changed nothing", var->name,
                              spec);
            }
            sink_clear(&d);
            sink_clear(&e);
            checked++;
        }
        /* refusals */
        ck_assert_int_eq(attn_session_rerun_from(ss, L + 1, a.recs[0].data, T, NULL, &err),
                         ATTN_ERR_USAGE);
        ck_assert_int_eq(attn_session_rerun_from(ss, 0, stream_at(&a, 0)->data, T - 1, NULL, &err),
                         ATTN_ERR_USAGE);
        ck_assert_int_eq(attn_session_rerun_from(ss, 0, NULL, T, NULL, &err), ATTN_ERR_USAGE);
        sink_clear(&a);
        attn_session_free(ss);
        attn_session_free(full);
    }
    printf("rerun from [%s]: %d layers x 2 caches, clean and ablated bytes identical\n", var->name,
           checked / 2);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (a) causal decoder: weights above the diagonal exactly 0, rows sum to 1   */

START_TEST(test_causal_mask) {
    attn_config c = base_cfg();
    c.positional = ATTN_POS_ROPE;
    tmodel *tm = tm_build(&c, 1);
    int ids[12];
    rand_ids(ids, 12, c.vocab_size, 2);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink s = {.want_mask = BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_SCORES)};
    ck_assert_int_eq(run_ids(ss, ids, 12, &s, &err), ATTN_OK);
    double maxdev = 0;
    int n = 0;
    for (int i = 0; i < s.n; i++) {
        const rec *r = &s.recs[i];
        ck_assert_int_eq(r->rows, 12);
        ck_assert_int_eq(r->cols, 12);
        for (int t = 0; t < 12; t++) {
            double sum = 0;
            for (int j = 0; j < 12; j++) {
                float v = r->data[t * 12 + j];
                if (r->key.value == ATTN_V_WEIGHTS) {
                    if (j > t) ck_assert_msg(v == 0.0f, "weight above the diagonal: %g", v);
                    else ck_assert(v > 0.0f);
                    sum += v;
                } else if (j > t) {
                    ck_assert(v != 0.0f); /* scores are before the mask */
                }
            }
            if (r->key.value == ATTN_V_WEIGHTS) maxdev = fmax(maxdev, fabs(sum - 1.0));
        }
        n++;
    }
    ck_assert_int_eq(n, 2 * c.n_layers * c.n_heads);
    printf("causal: max |row sum - 1| %.3g (tol 1e-5)\n", maxdev);
    ck_assert_double_lt(maxdev, 1e-5);
    sink_clear(&s);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (b) one call == chunks (the KV cache)                                     */

static void check_chunks(attn_config c, uint64_t seed) {
    tmodel *tm = tm_build(&c, seed);
    enum { T = 14 };
    int ids[T], src[5];
    rand_ids(ids, T, c.vocab_size, seed + 1);
    rand_ids(src, 5, c.vocab_size, seed + 2);
    bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    attn_error err;
    attn_session *ss;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);

    sink whole = {.want_mask = BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_LOGITS)};
    if (encdec) ck_assert_int_eq(encode_ids(ss, src, 5, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, T, &whole, &err), ATTN_OK);
    ck_assert_uint_eq(attn_session_length(ss), T);
    const rec *hw = find_rec(&whole, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);

    for (int chunk = 1; chunk <= 3; chunk += 2) {
        attn_session_reset(ss);
        ck_assert_uint_eq(attn_session_length(ss), 0);
        if (encdec) ck_assert_int_eq(encode_ids(ss, src, 5, NULL, &err), ATTN_OK);
        sink part = {.want_mask = whole.want_mask};
        int calls = 0;
        for (int p = 0; p < T; p += chunk, calls++) {
            int n = p + chunk <= T ? chunk : T - p;
            ck_assert_int_eq(run_ids(ss, ids + p, (size_t)n, &part, &err), ATTN_OK);
            ck_assert_uint_eq(attn_session_length(ss), (size_t)(p + n));
        }
        double herr = 0, werr = 0;
        for (int k = 0; k < calls; k++) {
            const rec *h = find_rec(&part, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, k);
            ck_assert_ptr_nonnull(h);
            ck_assert_int_eq(h->off, k * chunk);
            for (int i = 0; i < h->rows * c.d_model; i++)
                herr = fmax(herr, fabs(h->data[i] - hw->data[h->off * c.d_model + i]));
            for (int kind = 0; kind < (encdec ? 2 : 1); kind++)
                for (int l = 0; l < c.n_layers; l++)
                    for (int hh = 0; hh < c.n_heads; hh++) {
                        const rec *a = find_rec(&part, ATTN_V_WEIGHTS, l, hh, (attn_attn_kind)kind,
                                                false, k);
                        const rec *b = find_rec(&whole, ATTN_V_WEIGHTS, l, hh,
                                                (attn_attn_kind)kind, false, 0);
                        ck_assert_ptr_nonnull(a);
                        ck_assert_int_eq(a->off, k * chunk);
                        /* self: keys 0 .. the chunk's last position; cross: the source */
                        ck_assert_int_eq(a->cols, kind ? 5 : a->off + a->rows);
                        for (int t = 0; t < a->rows; t++)
                            for (int j = 0; j < b->cols; j++) {
                                float got = j < a->cols ? a->data[t * a->cols + j] : 0.0f;
                                werr = fmax(werr, fabs(got - b->data[(a->off + t) * b->cols + j]));
                            }
                    }
        }
        printf("chunks of %d (%s): hidden max abs diff %.3g (tol 1e-5), weights %.3g (tol 1e-6)\n",
               chunk, c.arch == ATTN_ARCH_DECODER ? "decoder" : "encoder-decoder", herr, werr);
        ck_assert_double_lt(herr, 1e-5);
        ck_assert_double_lt(werr, 1e-6);
        sink_clear(&part);
    }
    sink_clear(&whole);
    attn_session_free(ss);
    tm_free(tm);
}

START_TEST(test_kv_cache_chunks) {
    attn_config c = base_cfg();
    check_chunks(c, 10); /* learned positions */
    c.positional = ATTN_POS_ROPE;
    c.n_kv_heads = 2;
    check_chunks(c, 20);
    c = base_cfg();
    c.positional = ATTN_POS_SINUSOIDAL;
    c.arch = ATTN_ARCH_ENCODER_DECODER;
    c.n_encoder_layers = 2;
    check_chunks(c, 30);
}
END_TEST

/* The KV cache grows past its first allocation and up to max_seq_len exactly. */
START_TEST(test_cache_growth_to_max) {
    attn_config c = base_cfg();
    c.max_seq_len = 40;
    c.positional = ATTN_POS_ROPE;
    tmodel *tm = tm_build(&c, 5);
    int ids[40];
    rand_ids(ids, 40, c.vocab_size, 6);
    attn_session *a, *b;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&a, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_new(&b, &tm->m, &err), ATTN_OK);
    sink sa = {.want_mask = BIT(ATTN_V_HIDDEN)}, sb = sa;
    ck_assert_int_eq(run_ids(a, ids, 40, &sa, &err), ATTN_OK);
    for (int p = 0; p < 40; p++) ck_assert_int_eq(run_ids(b, ids + p, 1, &sb, &err), ATTN_OK);
    ck_assert_int_eq(sb.n, 40);
    for (int p = 0; p < 40; p++)
        ck_assert_int_eq(memcmp(sb.recs[p].data, sa.recs[0].data + p * c.d_model,
                                sizeof(float) * c.d_model), 0);
    ck_assert_int_eq(run_ids(b, ids, 1, NULL, &err), ATTN_ERR_USAGE);
    sink_clear(&sa), sink_clear(&sb);
    attn_session_free(a), attn_session_free(b);
    tm_free(tm);
}
END_TEST

/* The fused pass (kern_flash) gives every head's context; a captured head
 * also gets its weights the usual way (scores, softmax). The context
 * recomputed from the captured weights and values in double (weights . V)
 * agrees with the emitted context within 1e-6 of sum_j w_j |v_jd|; the
 * hidden state is the same bytes with and without the captures, and fed in
 * chunks of 1 and 7 positions (T = 70: several key tiles and query tiles). */
static void check_fused_context(attn_config c, uint64_t seed) {
    tmodel *tm = tm_build(&c, seed);
    enum { T = 70, S = 40 };
    int ids[T], src[S];
    rand_ids(ids, T, c.vocab_size, seed + 1);
    rand_ids(src, S, c.vocab_size, seed + 2);
    const bool encdec = c.arch == ATTN_ARCH_ENCODER_DECODER;
    const int H = c.n_heads, hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
    attn_error err;
    attn_session *ss;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink all = {.want_mask = BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_V) | BIT(ATTN_V_HEAD_CONTEXT) |
                             BIT(ATTN_V_HIDDEN)};
    if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, T, &all, &err), ATTN_OK);
    double maxrel = 0;
    int heads = 0;
    for (int kind = 0; kind < (encdec ? 2 : 1); kind++)
        for (int l = 0; l < c.n_layers; l++)
            for (int h = 0; h < H; h++, heads++) {
                const attn_attn_kind k = (attn_attn_kind)kind;
                const rec *w = find_rec(&all, ATTN_V_WEIGHTS, l, h, k, false, 0);
                const rec *v = find_rec(&all, ATTN_V_V, l, h / group, k, false, 0);
                const rec *ctx = find_rec(&all, ATTN_V_HEAD_CONTEXT, l, h, k, false, 0);
                ck_assert(w && v && ctx);
                ck_assert_int_eq(w->rows, T);
                ck_assert_int_eq(w->cols, kind ? S : T);
                ck_assert_int_eq(v->rows, w->cols);
                for (int t = 0; t < T; t++)
                    for (int d = 0; d < hd; d++) {
                        double ref = 0, mag = 0;
                        for (int j = 0; j < w->cols; j++) {
                            const double x = (double)w->data[t * w->cols + j] * v->data[j * hd + d];
                            ref += x, mag += fabs(x);
                        }
                        maxrel = fmax(maxrel, fabs(ctx->data[t * hd + d] - ref) / mag);
                    }
            }
    printf("fused context (%s, %d heads): max |ctx - weights.V| / sum|w v| = %.3g (tol 1e-6)\n",
           encdec ? "encoder-decoder" : "decoder", heads, maxrel);
    ck_assert_double_lt(maxrel, 1e-6);
    const rec *hw = find_rec(&all, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    const size_t row_bytes = sizeof(float) * (size_t)c.d_model;
    for (int chunk = T; chunk >= 1; chunk = chunk == T ? 7 : chunk == 7 ? 1 : 0) {
        attn_session_reset(ss);
        if (encdec) ck_assert_int_eq(encode_ids(ss, src, S, NULL, &err), ATTN_OK);
        sink part = {.want_mask = BIT(ATTN_V_HIDDEN)};
        for (int p = 0; p < T; p += chunk)
            ck_assert_int_eq(run_ids(ss, ids + p, (size_t)(T - p < chunk ? T - p : chunk), &part,
                                     &err), ATTN_OK);
        for (int k = 0, p = 0; k < part.n; p += part.recs[k++].rows)
            ck_assert_msg(memcmp(part.recs[k].data, (const char *)hw->data + p * row_bytes,
                                 part.recs[k].rows * row_bytes) == 0,
                          "chunks of %d: the hidden state at %d differs from the captured run",
                          chunk, p);
        sink_clear(&part);
    }
    sink_clear(&all);
    attn_session_free(ss);
    tm_free(tm);
}

START_TEST(test_fused_context) {
    attn_config c = base_cfg();
    c.max_seq_len = 80;
    c.d_model = 48, c.n_heads = 4, c.head_dim = 20; /* a vector of 16 and 4 left over */
    check_fused_context(c, 50);
    c.positional = ATTN_POS_ROPE;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    check_fused_context(c, 60);
    c = base_cfg();
    c.max_seq_len = 80;
    c.arch = ATTN_ARCH_ENCODER_DECODER;
    c.positional = ATTN_POS_SINUSOIDAL;
    c.n_encoder_layers = 2;
    check_fused_context(c, 70);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (c) GQA == MHA with repeated K/V heads                                    */

START_TEST(test_gqa_equals_repeated_heads) {
    attn_config c = base_cfg();
    c.n_heads = 6, c.n_kv_heads = 2, c.head_dim = 3, c.positional = ATTN_POS_ROPE;
    tmodel *g = tm_build(&c, 40);
    /* the same model with KV = H: kv head h / (H/KV) repeated for every query head */
    tmodel *mh = calloc(1, sizeof *mh);
    ck_assert_ptr_nonnull(mh);
    mh->m = g->m;
    mh->m.cfg.n_kv_heads = c.n_heads;
    mh->m.main.blocks = tm_alloc(mh, sizeof(attn_block_weights) * (size_t)c.n_layers);
    int hd = c.head_dim, D = c.d_model, group = c.n_heads / c.n_kv_heads;
    for (int l = 0; l < c.n_layers; l++) {
        attn_block_weights *b = &mh->m.main.blocks[l];
        *b = g->m.main.blocks[l];
        attn_linear *ls[2] = {&b->attn.k, &b->attn.v};
        for (int which = 0; which < 2; which++) {
            const attn_linear *src = ls[which];
            float *w = tm_alloc(mh, sizeof(float) * (size_t)c.n_heads * hd * D);
            float *bb = tm_alloc(mh, sizeof(float) * (size_t)c.n_heads * hd);
            for (int h = 0; h < c.n_heads; h++) {
                int kvh = h / group;
                memcpy(w + (size_t)h * hd * D, src->w + (size_t)kvh * hd * D,
                       sizeof(float) * hd * D);
                memcpy(bb + h * hd, src->b + kvh * hd, sizeof(float) * hd);
            }
            ls[which]->w = w;
            ls[which]->b = bb;
        }
    }
    int ids[10];
    rand_ids(ids, 10, c.vocab_size, 41);
    attn_session *a, *b;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&a, &g->m, &err), ATTN_OK);
    ck_assert_int_eq(attn_session_new(&b, &mh->m, &err), ATTN_OK);
    sink sa = {.want_mask = BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_K)}, sb = sa;
    ck_assert_int_eq(run_ids(a, ids, 10, &sa, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(b, ids, 10, &sb, &err), ATTN_OK);
    const rec *ha = find_rec(&sa, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    const rec *hb = find_rec(&sb, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    double e = 0;
    for (int i = 0; i < 10 * D; i++) e = fmax(e, fabs(ha->data[i] - hb->data[i]));
    printf("gqa vs repeated heads: hidden max abs diff %.3g (tol 1e-5)\n", e);
    ck_assert_double_lt(e, 1e-5);
    /* K is emitted per kv head: KV maps per layer, head = kv head */
    ck_assert_int_eq(sa.n - 1, c.n_layers * c.n_kv_heads);
    ck_assert_int_eq(sb.n - 1, c.n_layers * c.n_heads);
    ck_assert_ptr_null(find_rec(&sa, ATTN_V_K, 0, 2, ATTN_KIND_SELF, false, 0));
    sink_clear(&sa), sink_clear(&sb);
    attn_session_free(a), attn_session_free(b);
    for (int i = 0; i < mh->n_allocs; i++) free(mh->allocs[i]);
    free(mh);
    tm_free(g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (d) encoder-only: bidirectional                                           */

START_TEST(test_encoder_bidirectional) {
    attn_config c = base_cfg();
    c.arch = ATTN_ARCH_ENCODER;
    c.lm_head = ATTN_LM_HEAD_NONE;
    tmodel *tm = tm_build(&c, 50);
    int ids[8];
    rand_ids(ids, 8, c.vocab_size, 51);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink s1 = {.want_mask = BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_HIDDEN)};
    ck_assert_int_eq(run_ids(ss, ids, 8, &s1, &err), ATTN_OK);
    int maps = 0;
    for (int i = 0; i < s1.n; i++) {
        const rec *r = &s1.recs[i];
        ck_assert_int_eq(r->key.stack, ATTN_STACK_ENCODER);
        ck_assert(!r->key.source);
        if (r->key.value != ATTN_V_WEIGHTS) continue;
        maps++;
        for (int t = 0; t < 8; t++)
            for (int j = t + 1; j < 8; j++) ck_assert(r->data[t * 8 + j] > 0.0f);
    }
    ck_assert_int_eq(maps, c.n_layers * c.n_heads);
    ids[7] = (ids[7] + 1) % c.vocab_size;
    attn_session_reset(ss);
    sink s2 = {.want_mask = BIT(ATTN_V_HIDDEN)};
    ck_assert_int_eq(run_ids(ss, ids, 8, &s2, &err), ATTN_OK);
    const rec *a = find_rec(&s1, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    const rec *b = find_rec(&s2, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    double d = 0;
    for (int i = 0; i < c.d_model; i++) d = fmax(d, fabs(a->data[i] - b->data[i]));
    printf("encoder: changing the last token moves position 0 by %.3g (must be > 1e-3)\n", d);
    ck_assert_double_gt(d, 1e-3);
    sink_clear(&s1), sink_clear(&s2);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (e) encoder-decoder: cross-attention                                      */

START_TEST(test_cross_attention) {
    attn_config c = base_cfg();
    c.arch = ATTN_ARCH_ENCODER_DECODER;
    c.n_encoder_layers = 2;
    c.positional = ATTN_POS_SINUSOIDAL;
    tmodel *tm = tm_build(&c, 60);
    int ids[6], src[9];
    rand_ids(ids, 6, c.vocab_size, 61);
    rand_ids(src, 9, c.vocab_size, 62);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink enc = {.want_mask = BIT(ATTN_V_EMBED) | BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_WEIGHTS)};
    ck_assert_int_eq(encode_ids(ss, src, 9, &enc, &err), ATTN_OK);
    ck_assert_uint_eq(attn_session_length(ss), 0);
    /* the encoder's values: source = true, stack encoder, S rows */
    ck_assert_int_eq(enc.n, 2 + c.n_encoder_layers * c.n_heads);
    for (int i = 0; i < enc.n; i++) {
        ck_assert(enc.recs[i].key.source);
        ck_assert_int_eq(enc.recs[i].key.stack, ATTN_STACK_ENCODER);
        ck_assert_int_eq(enc.recs[i].rows, 9);
    }
    sink s1 = {.want_mask = BIT(ATTN_V_WEIGHTS) | BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_K)};
    ck_assert_int_eq(run_ids(ss, ids, 6, &s1, &err), ATTN_OK);
    double maxdev = 0;
    int cross_maps = 0;
    for (int i = 0; i < s1.n; i++) {
        const rec *r = &s1.recs[i];
        ck_assert(!r->key.source);
        ck_assert_int_eq(r->key.stack, ATTN_STACK_DECODER);
        if (r->key.value == ATTN_V_K) {
            ck_assert_int_eq(r->rows, r->key.kind == ATTN_KIND_CROSS ? 9 : 6);
            continue;
        }
        if (r->key.value != ATTN_V_WEIGHTS || r->key.kind != ATTN_KIND_CROSS) continue;
        cross_maps++;
        ck_assert_int_eq(r->rows, 6);
        ck_assert_int_eq(r->cols, 9);
        for (int t = 0; t < 6; t++) {
            double sum = 0;
            for (int j = 0; j < 9; j++) {
                ck_assert(r->data[t * 9 + j] > 0.0f); /* no mask */
                sum += r->data[t * 9 + j];
            }
            maxdev = fmax(maxdev, fabs(sum - 1));
        }
    }
    ck_assert_int_eq(cross_maps, c.n_layers * c.n_heads);
    printf("cross: max |row sum - 1| %.3g (tol 1e-5)\n", maxdev);
    ck_assert_double_lt(maxdev, 1e-5);

    /* another source changes the decoder's output; encode() restarts the decoder */
    src[0] = (src[0] + 3) % c.vocab_size;
    ck_assert_int_eq(encode_ids(ss, src, 9, NULL, &err), ATTN_OK);
    sink s2 = {.want_mask = BIT(ATTN_V_HIDDEN)};
    ck_assert_int_eq(run_ids(ss, ids, 6, &s2, &err), ATTN_OK);
    const rec *a = find_rec(&s1, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    const rec *b = find_rec(&s2, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    ck_assert_int_eq(b->off, 0);
    double d = 0;
    for (int i = 0; i < 6 * c.d_model; i++) d = fmax(d, fabs(a->data[i] - b->data[i]));
    printf("cross: changing source token 0 moves the decoder output by %.3g (must be > 1e-3)\n", d);
    ck_assert_double_gt(d, 1e-3);
    sink_clear(&enc), sink_clear(&s1), sink_clear(&s2);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (g) capture: only what is wanted                                          */

START_TEST(test_capture_only_wanted) {
    attn_config c = base_cfg();
    c.arch = ATTN_ARCH_ENCODER_DECODER;
    c.n_encoder_layers = 1;
    c.n_kv_heads = 2;
    tmodel *tm = tm_build(&c, 70);
    int ids[5], src[4];
    rand_ids(ids, 5, c.vocab_size, 71);
    rand_ids(src, 4, c.vocab_size, 72);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);

    /* nothing wanted: wants() is asked, emit() never called */
    sink none = {.want_mask = 0};
    ck_assert_int_eq(encode_ids(ss, src, 4, &none, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 5, &none, &err), ATTN_OK);
    ck_assert_int_eq(none.n, 0);
    ck_assert_int_gt(none.n_wants, 0);
    /* a NULL capture and a capture without wants() work too */
    attn_session_reset(ss);
    ck_assert_int_eq(encode_ids(ss, src, 4, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 5, NULL, &err), ATTN_OK);

    /* one name */
    const char *names[] = {"blocks.1.attn.weights.h2", "blocks.0.cross.k.h1",
                           "encoder.blocks.0.attn.scores.h3", "blocks.1.mlp.out",
                           "encoder.hidden", "logits", "embed", "blocks.0.resid",
                           "blocks.1.cross.concat", "blocks.0.attn.context.h0"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        attn_session_reset(ss);
        sink one = {.only = names[i]};
        ck_assert_int_eq(encode_ids(ss, src, 4, &one, &err), ATTN_OK);
        ck_assert_int_eq(run_ids(ss, ids, 5, &one, &err), ATTN_OK);
        ck_assert_msg(one.n == 1, "%s: %d emits", names[i], one.n);
        char got[128];
        attn_capture_name(&one.recs[0].key, got, sizeof got);
        ck_assert_str_eq(got, names[i]);
        sink_clear(&one);
    }

    /* counts per value: Q per query head, K and V per kv head, per layer and kind */
    attn_session_reset(ss);
    sink all = {.want_mask = ALL_VALUES};
    ck_assert_int_eq(encode_ids(ss, src, 4, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 5, &all, &err), ATTN_OK);
    int count[ATTN_V_COUNT] = {0};
    for (int i = 0; i < all.n; i++) count[all.recs[i].key.value]++;
    int L = c.n_layers, H = c.n_heads, KV = c.n_kv_heads;
    ck_assert_int_eq(count[ATTN_V_EMBED], 1);
    ck_assert_int_eq(count[ATTN_V_ATTN_IN], 2 * L);
    ck_assert_int_eq(count[ATTN_V_Q], 2 * L * H);
    ck_assert_int_eq(count[ATTN_V_K], 2 * L * KV);
    ck_assert_int_eq(count[ATTN_V_V], 2 * L * KV);
    ck_assert_int_eq(count[ATTN_V_SCORES], 2 * L * H);
    ck_assert_int_eq(count[ATTN_V_WEIGHTS], 2 * L * H);
    ck_assert_int_eq(count[ATTN_V_HEAD_CONTEXT], 2 * L * H);
    ck_assert_int_eq(count[ATTN_V_CONCAT], 2 * L);
    ck_assert_int_eq(count[ATTN_V_ATTN_OUT], 2 * L);
    ck_assert_int_eq(count[ATTN_V_MLP_OUT], L);
    ck_assert_int_eq(count[ATTN_V_RESID], L);
    ck_assert_int_eq(count[ATTN_V_HIDDEN], 1);
    ck_assert_int_eq(count[ATTN_V_LOGITS], 1);
    /* shapes */
    const rec *r = find_rec(&all, ATTN_V_CONCAT, 0, -1, ATTN_KIND_SELF, false, 0);
    ck_assert_int_eq(r->cols, H * c.head_dim);
    r = find_rec(&all, ATTN_V_V, 1, 1, ATTN_KIND_CROSS, false, 0);
    ck_assert_int_eq(r->rows, 4);
    ck_assert_int_eq(r->cols, c.head_dim);
    r = find_rec(&all, ATTN_V_LOGITS, -1, -1, ATTN_KIND_SELF, false, 0);
    ck_assert_int_eq(r->cols, c.vocab_size);

    /* a captured head's context equals its columns of concat, and the hidden
     * state does not depend on what was captured (byte for byte) */
    const rec *cat = find_rec(&all, ATTN_V_CONCAT, 1, -1, ATTN_KIND_SELF, false, 0);
    const rec *ctx = find_rec(&all, ATTN_V_HEAD_CONTEXT, 1, 3, ATTN_KIND_SELF, false, 0);
    for (int t = 0; t < 5; t++)
        for (int d = 0; d < c.head_dim; d++)
            ck_assert(ctx->data[t * c.head_dim + d] ==
                      cat->data[t * H * c.head_dim + 3 * c.head_dim + d]);
    attn_session_reset(ss);
    sink hid = {.want_mask = BIT(ATTN_V_HIDDEN)};
    ck_assert_int_eq(encode_ids(ss, src, 4, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 5, &hid, &err), ATTN_OK);
    const rec *h1 = find_rec(&all, ATTN_V_HIDDEN, -1, -1, ATTN_KIND_SELF, false, 0);
    ck_assert_int_eq(memcmp(h1->data, hid.recs[0].data, sizeof(float) * 5 * c.d_model), 0);

    sink_clear(&none), sink_clear(&all), sink_clear(&hid);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* A failing emit stops the pass with its error; the session stays usable. */
START_TEST(test_capture_error_stops) {
    attn_config c = base_cfg();
    tmodel *tm = tm_build(&c, 80);
    int ids[5];
    rand_ids(ids, 5, c.vocab_size, 81);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink s = {.want_mask = ALL_VALUES, .fail_after = 7};
    ck_assert_int_eq(run_ids(ss, ids, 5, &s, &err), ATTN_ERR_IO);
    ck_assert_str_eq(err.message, "sink: disk full");
    ck_assert_int_eq(s.n, 6);
    ck_assert_uint_eq(attn_session_length(ss), 0);
    /* a sink that fails without a message gets one naming the value */
    sink quiet = {.want_mask = ALL_VALUES, .fail_after = 3, .silent = true};
    ck_assert_int_eq(run_ids(ss, ids, 5, &quiet, &err), ATTN_ERR_IO);
    ck_assert_int_eq(err.status, ATTN_ERR_IO);
    ck_assert_str_eq(err.message, "capture of blocks.0.attn.q.h0 failed");
    ck_assert_int_eq(run_ids(ss, ids, 5, &quiet, NULL), ATTN_ERR_IO); /* err may be NULL */
    sink_clear(&quiet);
    sink ok = {.want_mask = BIT(ATTN_V_HIDDEN)};
    ck_assert_int_eq(run_ids(ss, ids, 5, &ok, &err), ATTN_OK);
    ck_assert_uint_eq(attn_session_length(ss), 5);
    sink_clear(&s), sink_clear(&ok);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* Embeddings given directly == the ids' embedding rows (rope: nothing added). */
START_TEST(test_embeddings_input) {
    attn_config c = base_cfg();
    c.positional = ATTN_POS_ROPE;
    c.embed_scale = 2.0;
    tmodel *tm = tm_build(&c, 90);
    int ids[6];
    rand_ids(ids, 6, c.vocab_size, 91);
    float emb[6 * 16];
    for (int t = 0; t < 6; t++)
        for (int i = 0; i < 16; i++) emb[t * 16 + i] = tm->m.tok_embed[ids[t] * 16 + i] * 2.0f;
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    sink a = {.want_mask = BIT(ATTN_V_HIDDEN) | BIT(ATTN_V_EMBED)}, b = a;
    ck_assert_int_eq(run_ids(ss, ids, 6, &a, &err), ATTN_OK);
    attn_session_reset(ss);
    attn_input in = {.embeddings = emb, .n = 6};
    attn_capture cap = sink_capture(&b);
    ck_assert_int_eq(attn_session_forward(ss, &in, &cap, &err), ATTN_OK);
    ck_assert_int_eq(a.n, 2);
    ck_assert_int_eq(b.n, 2);
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(memcmp(a.recs[k].data, b.recs[k].data, sizeof(float) * 6 * 16), 0);
    sink_clear(&a), sink_clear(&b);
    attn_session_free(ss);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* (h) errors                                                                */

START_TEST(test_errors) {
    attn_config c = base_cfg();
    c.vocab_size = 512;
    c.max_seq_len = 512;
    tmodel *tm = tm_build(&c, 100);
    attn_session *ss;
    attn_error err;
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    int ids[8] = {1, 2, 3, 600, 4, 5, 6, 7};
    ck_assert_int_eq(run_ids(ss, ids, 8, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_str_eq(err.message, "token id 600 at position 3 is outside the vocabulary (0..511)");
    ids[3] = -1;
    ck_assert_int_eq(run_ids(ss, ids, 8, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_uint_eq(attn_session_length(ss), 0);
    ids[3] = 3;
    ck_assert_int_eq(run_ids(ss, ids, 0, NULL, &err), ATTN_ERR_USAGE);

    int *many = calloc(700, sizeof(int));
    ck_assert_int_eq(run_ids(ss, many, 700, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_str_eq(err.message, "sequence of 700 positions is longer than max_seq_len 512");
    /* 500 + 13 > 512, counting the positions already in the session */
    ck_assert_int_eq(run_ids(ss, many, 500, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, many, 13, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_str_eq(err.message, "sequence of 513 positions is longer than max_seq_len 512");
    ck_assert_int_eq(run_ids(ss, many, 12, NULL, &err), ATTN_OK);
    ck_assert_uint_eq(attn_session_length(ss), 512);
    free(many);

    /* encode() on a decoder */
    ck_assert_int_eq(encode_ids(ss, ids, 3, NULL, &err), ATTN_ERR_USAGE);
    attn_session_free(ss);
    tm_free(tm);

    /* an encoder-only session must be empty */
    c = base_cfg();
    c.arch = ATTN_ARCH_ENCODER;
    tm = tm_build(&c, 101);
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_OK);
    err.message[0] = 0;
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_ERR_USAGE);
    ck_assert(strlen(err.message) > 0);
    attn_session_reset(ss);
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_OK);
    attn_session_free(ss);
    tm_free(tm);

    /* encoder-decoder: forward before encode; bad source ids */
    c = base_cfg();
    c.arch = ATTN_ARCH_ENCODER_DECODER;
    c.n_encoder_layers = 1;
    tm = tm_build(&c, 102);
    ck_assert_int_eq(attn_session_new(&ss, &tm->m, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_ERR_USAGE);
    int bad[2] = {0, 29};
    ck_assert_int_eq(encode_ids(ss, bad, 2, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_str_eq(err.message, "token id 29 at position 1 is outside the vocabulary (0..28)");
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(encode_ids(ss, ids, 3, NULL, &err), ATTN_OK);
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_OK);
    attn_session_reset(ss); /* forgets the encoder output too */
    ck_assert_int_eq(run_ids(ss, ids, 3, NULL, &err), ATTN_ERR_USAGE);
    attn_session_free(ss);
    attn_session_free(NULL);
    tm_free(tm);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* names                                                                     */

static void check_name(attn_value v, bool source, int layer, attn_attn_kind kind, int head,
                       const char *want) {
    attn_capture_key k = {.value = v, .stack = source ? ATTN_STACK_ENCODER : ATTN_STACK_DECODER,
                          .source = source, .layer = layer, .kind = kind, .head = head};
    char buf[128];
    size_t n = attn_capture_name(&k, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_uint_eq(attn_capture_name(&k, NULL, 0), strlen(want));
    char small[6];
    ck_assert_uint_eq(attn_capture_name(&k, small, sizeof small), strlen(want));
    ck_assert_uint_eq(strlen(small), strlen(want) < 5 ? strlen(want) : 5);
}

START_TEST(test_names) {
    check_name(ATTN_V_WEIGHTS, false, 3, ATTN_KIND_SELF, 2, "blocks.3.attn.weights.h2");
    check_name(ATTN_V_Q, true, 0, ATTN_KIND_SELF, 0, "encoder.blocks.0.attn.q.h0");
    check_name(ATTN_V_K, false, 1, ATTN_KIND_CROSS, 1, "blocks.1.cross.k.h1");
    check_name(ATTN_V_V, false, 1, ATTN_KIND_CROSS, -1, "blocks.1.cross.v");
    check_name(ATTN_V_ATTN_IN, false, 0, ATTN_KIND_SELF, -1, "blocks.0.attn.in");
    check_name(ATTN_V_SCORES, false, 12, ATTN_KIND_SELF, 11, "blocks.12.attn.scores.h11");
    check_name(ATTN_V_HEAD_CONTEXT, false, 0, ATTN_KIND_CROSS, 3, "blocks.0.cross.context.h3");
    check_name(ATTN_V_CONCAT, false, 0, ATTN_KIND_SELF, -1, "blocks.0.attn.concat");
    check_name(ATTN_V_ATTN_OUT, true, 2, ATTN_KIND_SELF, -1, "encoder.blocks.2.attn.out");
    check_name(ATTN_V_MLP_OUT, false, 0, ATTN_KIND_SELF, -1, "blocks.0.mlp.out");
    check_name(ATTN_V_RESID, false, 0, ATTN_KIND_SELF, -1, "blocks.0.resid");
    check_name(ATTN_V_RESID, true, 4, ATTN_KIND_SELF, -1, "encoder.blocks.4.resid");
    check_name(ATTN_V_EMBED, false, -1, ATTN_KIND_SELF, -1, "embed");
    check_name(ATTN_V_EMBED, true, -1, ATTN_KIND_SELF, -1, "encoder.embed");
    check_name(ATTN_V_HIDDEN, false, -1, ATTN_KIND_SELF, -1, "hidden");
    check_name(ATTN_V_HIDDEN, true, -1, ATTN_KIND_SELF, -1, "encoder.hidden");
    check_name(ATTN_V_LOGITS, false, -1, ATTN_KIND_SELF, -1, "logits");
    const char *vn[ATTN_V_COUNT] = {"embed",   "in",     "q",      "k",      "v",
                                    "scores",  "weights", "context", "concat", "out",
                                    "out",     "resid",  "hidden", "logits"};
    for (int v = 0; v < ATTN_V_COUNT; v++) ck_assert_str_eq(attn_value_name((attn_value)v), vn[v]);
}
END_TEST

static Suite *forward_suite(void) {
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_reference, 0, N_VARIANTS);
    tcase_add_loop_test(tc, test_reuse_cache_same_bytes, 0, N_VARIANTS);
    tcase_add_loop_test(tc, test_pass_end_same_bytes, 0, N_VARIANTS);
    tcase_add_test(tc, test_maps_alongside_same_bytes);
    tcase_add_loop_test(tc, test_rerun_from_same_bytes, 0, N_VARIANTS);
    tcase_add_test(tc, test_causal_mask);
    tcase_add_test(tc, test_kv_cache_chunks);
    tcase_add_test(tc, test_cache_growth_to_max);
    tcase_add_test(tc, test_fused_context);
    tcase_add_test(tc, test_gqa_equals_repeated_heads);
    tcase_add_test(tc, test_encoder_bidirectional);
    tcase_add_test(tc, test_cross_attention);
    tcase_add_test(tc, test_capture_only_wanted);
    tcase_add_test(tc, test_capture_error_stops);
    tcase_add_test(tc, test_embeddings_input);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(forward_suite()); }
