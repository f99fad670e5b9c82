/* attention: one attention sub-layer (self causal / bidirectional, cross),
 * grouped heads, RoPE, the key/value cache and the capture of its values.
 *
 * Per head, each query row runs the same three loops whichever way the
 * head is computed: scores (kern_dot * 1/sqrt(hd)), kern_softmax over the
 * visible keys, context (kern_axpy over the visible keys in key order). When
 * the head's scores or weights are captured those rows are kept in one
 * [T, Tk] matrix (reused for the next head); otherwise one Tk-sized row is
 * reused for every query, so no T x Tk matrix is ever built. The numbers are
 * byte-identical either way. */
#include "attention.h"

#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int attn_buf_reserve(attn_buf *b, size_t n, const char *what, attn_error *err) {
    if (n <= b->cap && b->p) return ATTN_OK;
    float *p = attn_alloc_array(n, sizeof(float), what, err);
    if (!p) return ATTN_ERR_NOMEM;
    free(b->p);
    b->p = p;
    b->cap = n;
    return ATTN_OK;
}

void attn_buf_free(attn_buf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

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
        for (int g = 0; g < KV; g++) {
            memcpy(k + (size_t)g * cap * hd, kv->k + (size_t)g * kv->cap * hd,
                   (size_t)keep * hd * sizeof(float));
            memcpy(v + (size_t)g * cap * hd, kv->v + (size_t)g * kv->cap * hd,
                   (size_t)keep * hd * sizeof(float));
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
}

bool attn_cap_wants(const attn_capture *cap, const attn_capture_key *key) {
    return cap && cap->wants && cap->emit && cap->wants(cap->user, key);
}

int attn_cap_emit(const attn_capture *cap, const attn_capture_key *key, const float *data,
                  int rows, int cols, int row_offset, attn_error *err) {
    attn_capture_view view = {.rows = rows, .cols = cols, .data = data, .row_offset = row_offset};
    attn_error local;
    if (!err) err = &local; /* the sink may always write an error */
    err->status = ATTN_OK;
    err->message[0] = '\0';
    int rc = cap->emit(cap->user, key, &view, err);
    if (rc == ATTN_OK) return ATTN_OK;
    if (err->message[0] == '\0') {
        /* the sink returned an error without describing it */
        char name[256];
        attn_capture_name(key, name, sizeof name);
        attn_error_set(err, (attn_status)rc, "capture of %s failed", name);
    }
    err->status = (attn_status)rc;
    return rc;
}

/* Writes a projection's rows (T, n_heads*hd) (position-major, src) into the
 * head-major block dst [n_heads, stride, hd] at rows row0 .. row0+T-1,
 * rotating row t for position pos0 + t when rope is true (ropebuf holds
 * hd floats: the cos then the sin table of one position). */
static void scatter_heads(float *dst, const float *src, int T, int n_heads, int hd, int stride,
                          int row0, int pos0, bool rope, double theta, float *ropebuf) {
    for (int t = 0; t < T; t++) {
        if (rope) kern_rope_table(ropebuf, ropebuf + hd / 2, pos0 + t, hd, theta);
        for (int h = 0; h < n_heads; h++) {
            float *d = dst + ((size_t)h * stride + row0 + t) * hd;
            memcpy(d, src + ((size_t)t * n_heads + h) * hd, (size_t)hd * sizeof(float));
            if (rope) kern_rope_apply(d, ropebuf, ropebuf + hd / 2, hd);
        }
    }
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
    scatter_heads(kv->k, s->q.p, S, p->KV, p->hd, kv->cap, 0, 0, false, 0.0, NULL);
    kern_linear(s->q.p, enc, w->v.w, w->v.b, S, p->D, kvd);
    scatter_heads(kv->v, s->q.p, S, p->KV, p->hd, kv->cap, 0, 0, false, 0.0, NULL);
    return ATTN_OK;
}

/* The scores of one query against keys 0 .. n-1 of one head.
 * srow is (n), q is (hd), keys is (n, hd). */
static void score_row(float *srow, const float *q, const float *keys, int n, int hd, float scale) {
    for (int j = 0; j < n; j++) srow[j] = kern_dot(q, keys + (size_t)j * hd, hd) * scale;
}

/* ctx = sum over j < n of w[j] * vals[j], in key order.
 * ctx is (hd), w is (n), vals is (n, hd). */
static void context_row(float *ctx, const float *w, const float *vals, int n, int hd) {
    memset(ctx, 0, (size_t)hd * sizeof(float));
    for (int j = 0; j < n; j++) kern_axpy(ctx, w[j], vals + (size_t)j * hd, hd);
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
    scatter_heads(s->qh.p, s->q.p, T, H, hd, T, 0, pos0, rope, p->rope_theta, s->rope.p);

    /* self: append the new keys (rotated) and values to the cache */
    if (self) {
        kern_linear(s->q.p, x, w->k.w, w->k.b, T, D, KV * hd);
        scatter_heads(kv->k, s->q.p, T, KV, hd, kv->cap, pos0, pos0, rope, p->rope_theta,
                      s->rope.p);
        kern_linear(s->q.p, x, w->v.w, w->v.b, T, D, KV * hd);
        scatter_heads(kv->v, s->q.p, T, KV, hd, kv->cap, pos0, pos0, false, 0.0, NULL);
    }

    for (int h = 0; h < H; h++) {
        key = key_of(base, ATTN_V_Q, h);
        if (attn_cap_wants(cap, &key) &&
            (rc = attn_cap_emit(cap, &key, s->qh.p + (size_t)h * T * hd, T, hd, pos0, err)))
            return rc;
    }
    for (int g = 0; g < KV; g++) {
        key = key_of(base, ATTN_V_K, g);
        if (attn_cap_wants(cap, &key) &&
            (rc = attn_cap_emit(cap, &key, kv->k + (size_t)g * kv->cap * hd, Tk, hd, 0, err)))
            return rc;
    }
    for (int g = 0; g < KV; g++) {
        key = key_of(base, ATTN_V_V, g);
        if (attn_cap_wants(cap, &key) &&
            (rc = attn_cap_emit(cap, &key, kv->v + (size_t)g * kv->cap * hd, Tk, hd, 0, err)))
            return rc;
    }

    for (int h = 0; h < H; h++) {
        const int g = h / group;
        const float *keys = kv->k + (size_t)g * kv->cap * hd;
        const float *vals = kv->v + (size_t)g * kv->cap * hd;
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
                score_row(mat + (size_t)t * Tk, qhead + (size_t)t * hd, keys, Tk, hd, scale);
            if (want_s && (rc = attn_cap_emit(cap, &ks, mat, T, Tk, pos0, err))) return rc;
            for (int t = 0; t < T; t++) {
                int n = causal ? pos0 + t + 1 : Tk;
                kern_softmax(mat + (size_t)t * Tk, n, Tk);
                context_row(ctx + (size_t)t * hd, mat + (size_t)t * Tk, vals, n, hd);
            }
            if (want_w && (rc = attn_cap_emit(cap, &kw, mat, T, Tk, pos0, err))) return rc;
        } else {
            float *row = s->row.p;
            for (int t = 0; t < T; t++) {
                int n = causal ? pos0 + t + 1 : Tk;
                score_row(row, qhead + (size_t)t * hd, keys, n, hd, scale);
                kern_softmax(row, n, n);
                context_row(ctx + (size_t)t * hd, row, vals, n, hd);
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
