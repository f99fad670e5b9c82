/* attention: one attention sub-layer (self causal / bidirectional, cross),
 * grouped heads, RoPE, the key/value cache and the capture of its values.
 *
 * Per head, each query row runs the same three kernels whichever way the
 * head is computed: kern_scores (q . k * 1/sqrt(hd)) over the visible keys,
 * kern_softmax over them, kern_wsum (the context) over them. Each reads a
 * head's keys or values as one transposed [hd, cap] block of the cache, with
 * the loop over keys innermost so that it runs in vector registers. When the
 * head's scores or weights are captured those rows are kept in one [T, Tk]
 * matrix (reused for the next head); otherwise one Tk-sized row is reused
 * for every query, so no T x Tk matrix is ever built. The numbers are
 * byte-identical either way, and a row's numbers depend only on its query,
 * the keys and values it sees and their count: feeding a sequence at once or
 * position by position gives the same bytes. */
#include "compute/attention.h"

#include "compute/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* *out = a * b * c, false on overflow */
static bool mul3(size_t a, size_t b, size_t c, size_t *out) {
    size_t ab;
    return attn_mul_size(a, b, &ab) && attn_mul_size(ab, c, out);
}

static int reserve3(attn_buf *b, size_t x, size_t y, size_t z, const char *what,
                    attn_error *err) {
    size_t n;
    if (!mul3(x, y, z, &n))
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: size overflows (%zu x %zu x %zu floats)",
                              what, x, y, z);
    return attn_buf_reserve(b, n, what, err);
}

int attn_kv_reserve(attn_kv_cache *kv, int need, int keep, int max_cap, int KV, int hd,
                    attn_error *err) {
    if (need <= kv->cap && kv->k) return ATTN_OK;
    int cap = kv->cap > 0 ? kv->cap : 16;
    while (cap < need && cap < max_cap) cap = cap > max_cap / 2 ? max_cap : cap * 2;
    if (cap > max_cap) cap = max_cap;
    if (cap < need) cap = need;
    size_t n;
    if (!mul3((size_t)KV, (size_t)cap, (size_t)hd, &n))
        return attn_error_set(err, ATTN_ERR_NOMEM, "key/value cache: size overflows");
    float *k = attn_alloc_array(n, sizeof(float), "key cache", err);
    if (!k) return ATTN_ERR_NOMEM;
    float *v = attn_alloc_array(n, sizeof(float), "value cache", err);
    if (!v) {
        free(k);
        return ATTN_ERR_NOMEM;
    }
    if (kv->k && keep > 0) {
        /* [KV, hd, cap] rows: the first keep positions of each (head, dim) */
        for (size_t r = 0; r < (size_t)KV * hd; r++) {
            memcpy(k + r * cap, kv->k + r * kv->cap, (size_t)keep * sizeof(float));
            memcpy(v + r * cap, kv->v + r * kv->cap, (size_t)keep * sizeof(float));
        }
    }
    free(kv->k);
    free(kv->v);
    kv->k = k;
    kv->v = v;
    kv->cap = cap;
    return ATTN_OK;
}

void attn_kv_free(attn_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
    kv->cap = 0;
}

void attn_attn_scratch_free(attn_attn_scratch *s) {
    attn_buf_free(&s->q);
    attn_buf_free(&s->qh);
    attn_buf_free(&s->concat);
    attn_buf_free(&s->ctx);
    attn_buf_free(&s->row);
    attn_buf_free(&s->mat);
    attn_buf_free(&s->rope);
    attn_buf_free(&s->kvrows);
}

/* Rotates, in place, each head vector of a projection's rows x
 * (T, n_heads*hd) for its position pos0 + t (ropebuf holds hd floats: the
 * cos then the sin table of one position). */
static void rope_rows(float *x, int T, int n_heads, int hd, int pos0, double theta,
                      float *ropebuf) {
    for (int t = 0; t < T; t++) {
        kern_rope_table(ropebuf, ropebuf + hd / 2, pos0 + t, hd, theta);
        for (int h = 0; h < n_heads; h++)
            kern_rope_apply(x + ((size_t)t * n_heads + h) * hd, ropebuf, ropebuf + hd / 2, hd);
    }
}

/* A projection's rows src (T, n_heads*hd) -> head-major dst [n_heads, T, hd]. */
static void split_heads(float *dst, const float *src, int T, int n_heads, int hd) {
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++)
            memcpy(dst + ((size_t)h * T + t) * hd, src + ((size_t)t * n_heads + h) * hd,
                   (size_t)hd * sizeof(float));
}

/* A projection's rows src (T, KV*hd) -> the cache block dst [KV, hd, cap]
 * (transposed heads) at positions row0 .. row0+T-1. */
static void store_kv(float *dst, const float *src, int T, int KV, int hd, int cap, int row0) {
    for (int t = 0; t < T; t++)
        for (int g = 0; g < KV; g++) {
            const float *x = src + ((size_t)t * KV + g) * hd;
            float *d = dst + (size_t)g * hd * cap + row0 + t;
            for (int i = 0; i < hd; i++) d[(size_t)i * cap] = x[i];
        }
}

/* Positions 0 .. n-1 of one head's transposed block src [hd, cap] as rows
 * dst (n, hd): the capture's view of K and V. */
static void cache_rows(float *dst, const float *src, int n, int hd, int cap) {
    for (int p = 0; p < n; p++)
        for (int i = 0; i < hd; i++) dst[(size_t)p * hd + i] = src[(size_t)i * cap + p];
}

static attn_capture_key key_of(const attn_capture_key *base, attn_value v, int head) {
    attn_capture_key k = *base;
    k.value = v;
    k.head = head;
    return k;
}

int attn_cross_kv(attn_kv_cache *kv, const float *enc, const attn_attention_weights *w,
                  const attn_attn_params *p, int S, attn_attn_scratch *s, attn_error *err) {
    int rc;
    attn_kv_free(kv);
    if ((rc = attn_kv_reserve(kv, S, 0, S, p->KV, p->hd, err))) return rc;
    if ((rc = reserve3(&s->q, (size_t)S, (size_t)p->KV, (size_t)p->hd, "cross k/v scratch", err)))
        return rc;
    int kvd = p->KV * p->hd;
    kern_linear(s->q.p, enc, w->k.w, w->k.b, S, p->D, kvd);
    store_kv(kv->k, s->q.p, S, p->KV, p->hd, kv->cap, 0);
    kern_linear(s->q.p, enc, w->v.w, w->v.b, S, p->D, kvd);
    store_kv(kv->v, s->q.p, S, p->KV, p->hd, kv->cap, 0);
    return ATTN_OK;
}

int attn_attention(float *out, const float *x, const attn_attention_weights *w,
                   const attn_attn_params *p, attn_kv_cache *kv, int T, int pos0, int Tk,
                   attn_attn_scratch *s, const attn_capture *cap, const attn_capture_key *base,
                   attn_error *err) {
    const int D = p->D, H = p->H, KV = p->KV, hd = p->hd;
    const int group = H / KV;
    const bool self = base->kind == ATTN_KIND_SELF;
    const bool causal = self && p->causal;
    const float scale = (float)(1.0 / sqrt((double)hd));
    attn_capture_key key;
    int rc;

    key = key_of(base, ATTN_V_ATTN_IN, -1);
    if (attn_cap_wants(cap, &key) && (rc = attn_cap_emit(cap, &key, x, T, D, pos0, err)))
        return rc;

    if ((rc = reserve3(&s->q, (size_t)T, (size_t)H, (size_t)hd, "query scratch", err)) ||
        (rc = reserve3(&s->qh, (size_t)T, (size_t)H, (size_t)hd, "query scratch", err)) ||
        (rc = reserve3(&s->concat, (size_t)T, (size_t)H, (size_t)hd, "concat scratch", err)) ||
        (rc = reserve3(&s->ctx, (size_t)T, (size_t)hd, 1, "context scratch", err)) ||
        (rc = reserve3(&s->row, (size_t)Tk, 1, 1, "score scratch", err)) ||
        (rc = reserve3(&s->rope, (size_t)hd, 1, 1, "rope scratch", err)))
        return rc;
    if (self && (rc = reserve3(&s->q, (size_t)T, (size_t)KV, (size_t)hd, "key scratch", err)))
        return rc;

    /* queries: [T, H*hd] -> head-major [H, T, hd], rotated for their positions */
    const bool rope = self && p->rope;
    kern_linear(s->q.p, x, w->q.w, w->q.b, T, D, H * hd);
    if (rope) rope_rows(s->q.p, T, H, hd, pos0, p->rope_theta, s->rope.p);
    split_heads(s->qh.p, s->q.p, T, H, hd);

    /* self: append the new keys (rotated) and values to the cache */
    if (self) {
        kern_linear(s->q.p, x, w->k.w, w->k.b, T, D, KV * hd);
        if (rope) rope_rows(s->q.p, T, KV, hd, pos0, p->rope_theta, s->rope.p);
        store_kv(kv->k, s->q.p, T, KV, hd, kv->cap, pos0);
        kern_linear(s->q.p, x, w->v.w, w->v.b, T, D, KV * hd);
        store_kv(kv->v, s->q.p, T, KV, hd, kv->cap, pos0);
    }

    for (int h = 0; h < H; h++) {
        key = key_of(base, ATTN_V_Q, h);
        if (attn_cap_wants(cap, &key) &&
            (rc = attn_cap_emit(cap, &key, s->qh.p + (size_t)h * T * hd, T, hd, pos0, err)))
            return rc;
    }
    for (int kind = 0; kind < 2; kind++) /* K then V, as rows (Tk, hd) */
        for (int g = 0; g < KV; g++) {
            key = key_of(base, kind == 0 ? ATTN_V_K : ATTN_V_V, g);
            if (!attn_cap_wants(cap, &key)) continue;
            if ((rc = reserve3(&s->kvrows, (size_t)Tk, (size_t)hd, 1, "key/value rows", err)))
                return rc;
            cache_rows(s->kvrows.p, (kind == 0 ? kv->k : kv->v) + (size_t)g * hd * kv->cap, Tk,
                       hd, kv->cap);
            if ((rc = attn_cap_emit(cap, &key, s->kvrows.p, Tk, hd, 0, err))) return rc;
        }

    for (int h = 0; h < H; h++) {
        const int g = h / group;
        const size_t ld = (size_t)kv->cap;
        const float *keys = kv->k + (size_t)g * hd * ld; /* [hd, cap] */
        const float *vals = kv->v + (size_t)g * hd * ld;
        const float *qhead = s->qh.p + (size_t)h * T * hd;
        attn_capture_key ks = key_of(base, ATTN_V_SCORES, h);
        attn_capture_key kw = key_of(base, ATTN_V_WEIGHTS, h);
        attn_capture_key kc = key_of(base, ATTN_V_HEAD_CONTEXT, h);
        bool want_s = attn_cap_wants(cap, &ks), want_w = attn_cap_wants(cap, &kw);
        bool want_c = attn_cap_wants(cap, &kc);
        float *ctx = s->ctx.p;

        if (want_s || want_w) {
            if ((rc = reserve3(&s->mat, (size_t)T, (size_t)Tk, 1, "attention matrix", err)))
                return rc;
            float *mat = s->mat.p;
            for (int t = 0; t < T; t++)
                kern_scores(mat + (size_t)t * Tk, qhead + (size_t)t * hd, keys, ld, Tk, hd, scale);
            if (want_s && (rc = attn_cap_emit(cap, &ks, mat, T, Tk, pos0, err))) return rc;
            for (int t = 0; t < T; t++) {
                int n = causal ? pos0 + t + 1 : Tk;
                kern_softmax(mat + (size_t)t * Tk, n, Tk);
                kern_wsum(ctx + (size_t)t * hd, mat + (size_t)t * Tk, vals, ld, n, hd);
            }
            if (want_w && (rc = attn_cap_emit(cap, &kw, mat, T, Tk, pos0, err))) return rc;
        } else {
            float *row = s->row.p;
            for (int t = 0; t < T; t++) {
                int n = causal ? pos0 + t + 1 : Tk;
                kern_scores(row, qhead + (size_t)t * hd, keys, ld, n, hd, scale);
                kern_softmax(row, n, n);
                kern_wsum(ctx + (size_t)t * hd, row, vals, ld, n, hd);
            }
        }
        if (want_c && (rc = attn_cap_emit(cap, &kc, ctx, T, hd, pos0, err))) return rc;
        for (int t = 0; t < T; t++)
            memcpy(s->concat.p + ((size_t)t * H + h) * hd, ctx + (size_t)t * hd,
                   (size_t)hd * sizeof(float));
    }

    key = key_of(base, ATTN_V_CONCAT, -1);
    if (attn_cap_wants(cap, &key) &&
        (rc = attn_cap_emit(cap, &key, s->concat.p, T, H * hd, pos0, err)))
        return rc;

    kern_linear(out, s->concat.p, w->o.w, w->o.b, T, H * hd, D);
    key = key_of(base, ATTN_V_ATTN_OUT, -1);
    if (attn_cap_wants(cap, &key) && (rc = attn_cap_emit(cap, &key, out, T, D, pos0, err)))
        return rc;
    return ATTN_OK;
}
