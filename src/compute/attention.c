/* attention: one attention sub-layer (self causal / bidirectional, cross),
 * grouped heads, RoPE, the key/value cache and the capture of its values.
 *
 * The context of every head comes from one fused pass (kern_flash,
 * FlashAttention's online softmax over tiles of keys at fixed absolute
 * positions): no [T, Tk] matrix, the (head, tile of 32 queries) tasks split
 * between threads, and a row's bytes depend only on its query, the keys and
 * values it sees and their count, so a sequence fed at once or position by
 * position, on any number of threads, gives the same bytes. A head whose
 * scores or weights are captured gets them one head at a time in a [T, Tk]
 * matrix: its weights alone from its own fused pass (the scores it made,
 * then kern_softmax over the visible keys), its scores by kern_scores over
 * every key (the fused pass's bytes for the keys it sees). The maps are
 * never used for the context, which is therefore the same bytes whether or
 * not anything is captured (within 1e-6 relative of weights . V). A sink
 * that allows it (emit_alongside) gets a head's maps while the next head's
 * are made in a second matrix; maps_only (the last block a pass needs) makes
 * the maps alone, without values or context. */
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

static attn_status reserve3(attn_buf *b, size_t x, size_t y, size_t z, const char *what,
                            attn_error *err) {
    size_t n;
    if (!mul3(x, y, z, &n))
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: size overflows (%zu x %zu x %zu floats)",
                              what, x, y, z);
    return attn_buf_reserve(b, n, what, err);
}

attn_status attn_kv_reserve(attn_kv_cache *kv, int need, int keep, int max_cap, int KV, int hd,
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
        /* keys [KV, hd, cap]: the first keep positions of each (head, dim);
         * values [KV, cap, hd]: the first keep rows of each head */
        for (size_t r = 0; r < (size_t)KV * hd; r++)
            memcpy(k + r * cap, kv->k + r * kv->cap, (size_t)keep * sizeof(float));
        for (size_t g = 0; g < (size_t)KV; g++)
            memcpy(v + g * cap * hd, kv->v + g * kv->cap * hd, (size_t)keep * hd * sizeof(float));
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
    attn_buf_free(&s->mat);
    attn_buf_free(&s->rope);
    attn_buf_free(&s->kvrows);
    attn_buf_free(&s->heads);
    attn_buf_free(&s->mat2);
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

/* Below this many floats moved the layout changes run on one thread. */
#define ATTN_THREAD_MIN_COPY (1 << 16)

/* The threads for moving T rows of n_heads heads of hd floats, a head each. */
static int copy_threads(int T, int n_heads, int hd) {
    return attn_threads_for((double)T * n_heads * hd, ATTN_THREAD_MIN_COPY, n_heads);
}

/* A projection's rows src (T, n_heads*hd) -> head-major rows dst
 * [n_heads, ld, hd] at rows row0 .. row0+T-1 of each head, the heads on the
 * threads: the queries split into heads (ld T, row0 0) and the value cache
 * [KV, cap, hd] (ld cap, row0 the first new position). */
static void store_head_rows(float *dst, const float *src, int T, int n_heads, int hd, int ld,
                            int row0) {
    const int threads = copy_threads(T, n_heads, hd);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int h = 0; h < n_heads; h++)
        for (int t = 0; t < T; t++)
            memcpy(dst + ((size_t)h * ld + row0 + t) * hd, src + ((size_t)t * n_heads + h) * hd,
                   (size_t)hd * sizeof(float));
    (void)threads;
}

/* A projection's rows src (T, KV*hd) -> the key cache dst [KV, hd, cap]
 * (transposed heads) at positions row0 .. row0+T-1, the heads on the threads. */
static void store_keys(float *dst, const float *src, int T, int KV, int hd, int cap, int row0) {
    const int threads = copy_threads(T, KV, hd);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int g = 0; g < KV; g++)
        for (int t = 0; t < T; t++) {
            const float *x = src + ((size_t)t * KV + g) * hd;
            float *d = dst + (size_t)g * hd * cap + row0 + t;
            for (int i = 0; i < hd; i++) d[(size_t)i * cap] = x[i];
        }
    (void)threads;
}

/* Positions 0 .. n-1 of one head's transposed keys src [hd, cap] as rows
 * dst (n, hd): the capture's view of K. */
static void key_rows(float *dst, const float *src, int n, int hd, int cap) {
    for (int p = 0; p < n; p++)
        for (int i = 0; i < hd; i++) dst[(size_t)p * hd + i] = src[(size_t)i * cap + p];
}

/* The key of value v of this sub-layer; head -1 for values that are not per head. */
static attn_capture_key key_of(const attn_capture_key *base, attn_value v, int head) {
    attn_capture_key k = *base;
    k.value = v;
    k.head = head;
    return k;
}

/* Captures data [rows, cols] as value v (of head `head`, or -1) of this
 * sub-layer, when the sink wants it. */
static attn_status capture(const attn_capture *cap, const attn_capture_key *base, attn_value v,
                           int head, const float *data, int rows, int cols, int row_offset,
                           attn_error *err) {
    attn_capture_key key = key_of(base, v, head);
    return attn_cap_offer(cap, &key, data, rows, cols, row_offset, err);
}

/* Captures the keys (v = ATTN_V_K) or values (ATTN_V_V) of kv head g as rows
 * [Tk, hd]: the values are such rows in the cache, the keys are copied out
 * of the transposed cache into rows, only when wanted. */
static attn_status capture_cache(const attn_capture *cap, const attn_capture_key *base,
                                 attn_value v, int g, const attn_kv_cache *kv, int Tk, int hd,
                                 attn_buf *rows, attn_error *err) {
    attn_capture_key key = key_of(base, v, g);
    if (!attn_cap_wants(cap, &key)) return ATTN_OK;
    if (v == ATTN_V_V)
        return attn_cap_emit(cap, &key, kv->v + (size_t)g * kv->cap * hd, Tk, hd, 0, err);
    attn_status rc = reserve3(rows, (size_t)Tk, (size_t)hd, 1, "key rows", err);
    if (rc) return rc;
    key_rows(rows->p, kv->k + (size_t)g * hd * kv->cap, Tk, hd, kv->cap);
    return attn_cap_emit(cap, &key, rows->p, Tk, hd, 0, err);
}

/* k = x Wk^T (+ bk), rotated for its positions when rope, and (when
 * `values`) v = x Wv^T (+ bv) of the rows x (T, D) at positions pos0 ..
 * pos0+T-1, written into the cache kv (keys [KV, hd, cap], values [KV,
 * cap, hd]); proj [T, KV*hd] is scratch. */
static void store_projected_kv(attn_kv_cache *kv, float *proj, const float *x,
                               const attn_attention_weights *w, const attn_attn_params *p, int T,
                               int pos0, bool rope, float *ropebuf, bool values) {
    const int KV = p->KV, hd = p->hd;
    kern_linear(proj, x, w->k.w, w->k.b, T, p->D, KV * hd);
    if (rope) rope_rows(proj, T, KV, hd, pos0, p->rope_theta, ropebuf);
    store_keys(kv->k, proj, T, KV, hd, kv->cap, pos0);
    if (!values) return;
    kern_linear(proj, x, w->v.w, w->v.b, T, p->D, KV * hd);
    store_head_rows(kv->v, proj, T, KV, hd, kv->cap, pos0);
}

attn_status attn_cross_kv(attn_kv_cache *kv, const float *enc, const attn_attention_weights *w,
                          const attn_attn_params *p, int S, attn_attn_scratch *s, attn_error *err) {
    int rc;
    attn_kv_free(kv);
    if ((rc = attn_kv_reserve(kv, S, 0, S, p->KV, p->hd, err))) return rc;
    if ((rc = reserve3(&s->q, (size_t)S, (size_t)p->KV, (size_t)p->hd, "cross k/v scratch", err)))
        return rc;
    store_projected_kv(kv, s->q.p, enc, w, p, S, 0, false, NULL, true);
    return ATTN_OK;
}

/* Sizes the scratch of T queries over Tk keys; the [T, Tk] matrix and the
 * key/value rows are sized only when they are captured. s->q later holds the
 * [T, KV*hd] key and value projections too: KV <= H (the config checks that
 * n_kv_heads divides n_heads). */
static attn_status reserve_scratch(attn_attn_scratch *s, const attn_attn_params *p, int T,
                                   attn_error *err) {
    const size_t t = (size_t)T, H = (size_t)p->H, hd = (size_t)p->hd;
    int rc;
    if ((rc = reserve3(&s->q, t, H, hd, "query scratch", err)) ||
        (rc = reserve3(&s->qh, t, H, hd, "query scratch", err)) ||
        (rc = reserve3(&s->concat, t, H, hd, "concat scratch", err)) ||
        (rc = reserve3(&s->ctx, t, hd, 1, "context scratch", err)) ||
        (rc = reserve3(&s->rope, hd, 1, 1, "rope scratch", err)))
        return rc;
    return ATTN_OK;
}

/* What one head attends with: its queries and its kv head's part of the cache. */
typedef struct head_view {
    const float *q;         /* [T, hd] the head's queries, positions pos0 .. pos0+T-1 */
    const float *k;         /* [hd, ld] the kv head's keys, transposed, Tk positions */
    const float *v;         /* [Tk, hd] the kv head's values, rows */
    size_t ld;
    int T, Tk, hd, pos0;
    bool causal;
    float scale;            /* 1 / sqrt(hd) */
} head_view;

/* Head h of this sub-layer, reading kv head g = h / (H / KV). */
static head_view view_of(const float *qh, const attn_attn_params *p, const attn_kv_cache *kv,
                         int h, int T, int pos0, int Tk, bool causal) {
    const int hd = p->hd, g = h / (p->H / p->KV);
    return (head_view){.q = qh + (size_t)h * T * hd,
                       .k = kv->k + (size_t)g * hd * kv->cap,
                       .v = kv->v + (size_t)g * kv->cap * hd,
                       .ld = (size_t)kv->cap, .T = T, .Tk = Tk, .hd = hd, .pos0 = pos0,
                       .causal = causal, .scale = (float)(1.0 / sqrt((double)hd))};
}

/* The keys query t sees: all Tk, or 0 .. pos0+t under the causal mask. */
static int visible(const head_view *a, int t) { return a->causal ? a->pos0 + t + 1 : a->Tk; }

/* Below this many multiply-adds (scores and weighted sums of every head) the
 * fused pass runs on one thread. */
#define ATTN_THREAD_MIN_WORK (1 << 20)

/* Keys seen by T queries, summed: T Tk, or the causal triangle. */
static double keys_seen(int T, int pos0, int Tk, bool causal) {
    return causal ? (double)T * pos0 + (double)T * (T + 1) / 2 : (double)T * Tk;
}

/* Rows t0 .. t0+n-1 of head h by the fused pass: the context into columns
 * h*hd of concat, and, when mat (a [T, Tk] matrix) is given, the rows'
 * weights into it: their scores from the pass, then kern_softmax over the
 * visible keys (the masked entries exactly 0). */
static void fused_tile(float *concat, float *mat, const head_view *a, int H, int h, int t0,
                       int n) {
    const size_t hd = (size_t)a->hd, Tk = (size_t)a->Tk;
    kern_flash(concat + (size_t)t0 * H * hd + (size_t)h * hd, (size_t)H * hd,
               mat ? mat + (size_t)t0 * Tk : NULL, Tk, a->q + (size_t)t0 * hd, n, visible(a, t0),
               a->causal, a->k, a->ld, a->v, a->hd, a->scale);
    if (mat)
        for (int t = t0; t < t0 + n; t++) kern_softmax(mat + (size_t)t * Tk, visible(a, t), a->Tk);
}

/* The fused pass over the heads h with skip == NULL or skip[h] == 0: one
 * task per (head, tile of KERN_FLASH_ROWS queries), each computed whole by
 * one thread with its scratch on its stack, so the bytes do not depend on
 * the threads. */
static void fused_heads(float *concat, const float *qh, const attn_attn_params *p,
                        const attn_kv_cache *kv, int T, int pos0, int Tk, bool causal,
                        const float *skip) {
    const int H = p->H, hd = p->hd;
    const int tiles = (T + KERN_FLASH_ROWS - 1) / KERN_FLASH_ROWS, tasks = H * tiles;
    const int threads = attn_threads_for(2.0 * H * hd * keys_seen(T, pos0, Tk, causal),
                                         ATTN_THREAD_MIN_WORK, tasks);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
#endif
    for (int task = 0; task < tasks; task++) { /* each head's last (largest) tiles first */
        const int h = task / tiles, t0 = (tiles - 1 - task % tiles) * KERN_FLASH_ROWS;
        if (skip && skip[h] != 0.0f) continue;
        const int n = T - t0 < KERN_FLASH_ROWS ? T - t0 : KERN_FLASH_ROWS;
        const head_view a = view_of(qh, p, kv, h, T, pos0, Tk, causal);
        fused_tile(concat, NULL, &a, H, h, t0, n);
    }
    (void)threads;
}

void attn_attend_fused(float *concat, const float *qh, const attn_attn_params *p,
                       const attn_kv_cache *kv, int T, int pos0, int Tk, bool causal) {
    fused_heads(concat, qh, p, kv, T, pos0, Tk, causal, NULL);
}

/* Head h's scores (every key, before the mask) then weights (masked
 * entries exactly 0), captured from one [T, Tk] matrix mat: kern_scores
 * over every key (the fused pass's bytes for the keys it sees), then
 * kern_softmax over the visible keys of each row. The rows go to the
 * threads, each row whole to one (the same bytes for any count), a few at
 * a time as they come (the softmax's rows grow with the causal mask). */
static attn_status capture_scores(float *mat, const head_view *a, const attn_capture *cap,
                                  const attn_capture_key *base, int h, attn_error *err) {
    const size_t Tk = (size_t)a->Tk, hd = (size_t)a->hd;
    const int threads =
        attn_threads_for(2.0 * a->T * a->Tk * a->hd, ATTN_THREAD_MIN_WORK, a->T);
    int rc;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
#endif
    for (int t = 0; t < a->T; t++)
        kern_scores(mat + t * Tk, a->q + t * hd, a->k, a->ld, a->Tk, a->hd, a->scale);
    if ((rc = capture(cap, base, ATTN_V_SCORES, h, mat, a->T, a->Tk, a->pos0, err))) return rc;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
#endif
    for (int t = 0; t < a->T; t++) kern_softmax(mat + t * Tk, visible(a, t), a->Tk);
    (void)threads;
    return capture(cap, base, ATTN_V_WEIGHTS, h, mat, a->T, a->Tk, a->pos0, err);
}

/* ctx (T, hd) = head h's columns of concat (T, H*hd). */
static void get_head(float *ctx, const float *concat, int T, int H, int h, int hd) {
    for (int t = 0; t < T; t++)
        memcpy(ctx + (size_t)t * hd, concat + ((size_t)t * H + h) * hd, (size_t)hd * sizeof(float));
}

/* Does the sink want head h's scores, its weights? */
static void wanted_maps(const attn_capture *cap, const attn_capture_key *base, int h,
                        bool *scores, bool *weights) {
    const attn_capture_key ks = key_of(base, ATTN_V_SCORES, h), kw = key_of(base, ATTN_V_WEIGHTS, h);
    *scores = attn_cap_wants(cap, &ks);
    *weights = *scores || attn_cap_wants(cap, &kw);
}

/* Head h's captures once its maps are made: its weights (mat, when made),
 * then its context (when wanted). */
static attn_status emit_head(attn_attn_scratch *s, const attn_attn_params *p,
                             const attn_capture *cap, const attn_capture_key *base, int h,
                             const float *mat, int T, int pos0, int Tk, attn_error *err) {
    int rc;
    if (mat && (rc = capture(cap, base, ATTN_V_WEIGHTS, h, mat, T, Tk, pos0, err))) return rc;
    const attn_capture_key kc = key_of(base, ATTN_V_HEAD_CONTEXT, h);
    if (!attn_cap_wants(cap, &kc)) return ATTN_OK;
    get_head(s->ctx.p, s->concat.p, T, p->H, h, p->hd);
    return attn_cap_emit(cap, &kc, s->ctx.p, T, p->hd, pos0, err);
}

/* Unit i of `units` of head h's weights into mat [T, Tk]: a tile of
 * queries by the fused pass, its context into concat too (fused), or one
 * row of scores over the visible keys and its softmax (the maps alone);
 * the last (largest, when causal) first. */
static void weights_unit(float *concat, float *mat, const head_view *a, int H, int h, bool fused,
                         int i, int units) {
    const int u = units - 1 - i;
    if (fused) {
        const int t0 = u * KERN_FLASH_ROWS;
        fused_tile(concat, mat, a, H, h, t0, a->T - t0 < KERN_FLASH_ROWS ? a->T - t0 : KERN_FLASH_ROWS);
        return;
    }
    float *row = mat + (size_t)u * a->Tk;
    kern_scores(row, a->q + (size_t)u * a->hd, a->k, a->ld, visible(a, u), a->hd, a->scale);
    kern_softmax(row, visible(a, u), a->Tk);
}

/* Below this many floats a [T, Tk] matrix gets a second one, so that a
 * head's weights are written while the next head's are made. */
#define ATTN_ALONGSIDE_MAX_FLOATS ((size_t)16 << 20)

/* May this sub-layer's maps be written beside the pass: the sink allows it
 * (emit_alongside), no head's scores are wanted, and a second matrix is
 * small enough? */
static bool maps_alongside(const attn_capture *cap, const attn_capture_key *base, int H, int T,
                           int Tk) {
    if (!cap || !cap->emit_alongside || (size_t)T * (size_t)Tk > ATTN_ALONGSIDE_MAX_FLOATS)
        return false;
    for (int h = 0; h < H; h++) {
        const attn_capture_key ks = key_of(base, ATTN_V_SCORES, h);
        if (attn_cap_wants(cap, &ks)) return false;
    }
    return true;
}

/* Every head's maps and captures, head by head in order: its scores and
 * weights (when wanted), then its context (when wanted). A head whose
 * weights alone are wanted gets them from weights_unit's units on the
 * threads as they come (fused: from its own fused pass, which also makes
 * its context; else, the maps alone, from its scores over the visible
 * keys); a head whose scores are wanted gets both by capture_scores. When
 * the maps may be written beside the pass (maps_alongside), each head's
 * captures are made on one thread while the others make the next head's
 * weights in the other matrix, the emitting thread joining them when done;
 * else each head's captures follow its weights. Every unit is computed
 * whole by one thread: the same bytes either way. */
static attn_status maps_heads(attn_attn_scratch *s, const attn_attn_params *p,
                              const attn_kv_cache *kv, int T, int pos0, int Tk, bool causal,
                              bool fused, const attn_capture *cap, const attn_capture_key *base,
                              attn_error *err) {
    const int H = p->H;
    const bool alongside = maps_alongside(cap, base, H, T, Tk);
    int rc;
    const int units = fused ? (T + KERN_FLASH_ROWS - 1) / KERN_FLASH_ROWS : T;
    const int threads =
        attn_threads_for(2.0 * p->hd * keys_seen(T, pos0, Tk, causal), ATTN_THREAD_MIN_WORK, units);
    int prev = -1, next_buf = 0; /* alongside: the head whose captures are still to come */
    const float *prev_mat = NULL;
    for (int h = 0; h <= H; h++) {
        bool scores = false, weights = false;
        if (h < H) wanted_maps(cap, base, h, &scores, &weights);
        const bool make = weights && !scores;
        /* the matrices only once a head's maps are wanted (the same size
         * for every head: sized, they stay where they are) */
        if (weights && ((rc = reserve3(&s->mat, (size_t)T, (size_t)Tk, 1, "attention matrix",
                                       err)) ||
                        (alongside && (rc = reserve3(&s->mat2, (size_t)T, (size_t)Tk, 1,
                                                     "attention matrix", err)))))
            return rc;
        float *mat = next_buf ? s->mat2.p : s->mat.p;
        const head_view a = view_of(s->qh.p, p, kv, h < H ? h : 0, T, pos0, Tk, causal);
        if (scores && (rc = capture_scores(mat, &a, cap, base, h, err))) return rc;
        attn_status erc = ATTN_OK;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) if (threads > 1 && make)
#endif
        {
#if defined(_OPENMP)
#pragma omp single nowait
#endif
            if (prev >= 0) erc = emit_head(s, p, cap, base, prev, prev_mat, T, pos0, Tk, err);
            if (make) {
#if defined(_OPENMP)
#pragma omp for schedule(dynamic) nowait
#endif
                for (int i = 0; i < units; i++)
                    weights_unit(s->concat.p, mat, &a, H, h, fused, i, units);
            }
        }
        if (erc) return erc;
        if (h == H) break;
        if (alongside) {
            prev = h;
            prev_mat = make ? mat : NULL;
            next_buf ^= make;
        } else if ((rc = emit_head(s, p, cap, base, h, make ? mat : NULL, T, pos0, Tk, err))) {
            return rc;
        }
    }
    (void)threads;
    return ATTN_OK;
}

/* Every head's context into s->concat (one fused pass for the heads whose
 * weights alone are not wanted; maps_heads's own pass for those), then the
 * per-head captures (maps_heads). */
static attn_status attend_and_capture(attn_attn_scratch *s, const attn_attn_params *p,
                                      const attn_kv_cache *kv, int T, int pos0, int Tk,
                                      bool causal, const attn_capture *cap,
                                      const attn_capture_key *base, attn_error *err) {
    const int H = p->H;
    int rc, own = 0;
    if ((rc = reserve3(&s->heads, (size_t)H, 1, 1, "head flags", err))) return rc;
    for (int h = 0; h < H; h++) {
        bool scores, weights;
        wanted_maps(cap, base, h, &scores, &weights);
        s->heads.p[h] = weights && !scores ? 1.0f : 0.0f;
        own += weights && !scores;
    }
    fused_heads(s->concat.p, s->qh.p, p, kv, T, pos0, Tk, causal, own ? s->heads.p : NULL);
    return maps_heads(s, p, kv, T, pos0, Tk, causal, true, cap, base, err);
}

attn_status attn_attention(float *out, const float *x, const attn_attention_weights *w,
                           const attn_attn_params *p, attn_kv_cache *kv, int T, int pos0, int Tk,
                           attn_attn_scratch *s, const attn_capture *cap,
                           const attn_capture_key *base, bool maps_only, attn_error *err) {
    const int D = p->D, H = p->H, KV = p->KV, hd = p->hd;
    const bool self = base->kind == ATTN_KIND_SELF, rope = self && p->rope;
    const bool causal = self && base->causal;
    int rc;
    if ((rc = capture(cap, base, ATTN_V_ATTN_IN, -1, x, T, D, pos0, err)) ||
        (rc = reserve_scratch(s, p, T, err)))
        return rc;

    /* q = x Wq^T (+ bq), rotated for its positions: [T, H*hd] -> head-major [H, T, hd] */
    kern_linear(s->q.p, x, w->q.w, w->q.b, T, D, H * hd);
    if (rope) rope_rows(s->q.p, T, H, hd, pos0, p->rope_theta, s->rope.p);
    store_head_rows(s->qh.p, s->q.p, T, H, hd, T, 0);
    /* self: the new positions' k (rotated) and v join the cache; cross: kv is the encoder's */
    maps_only = maps_only && self;
    if (self) store_projected_kv(kv, s->q.p, x, w, p, T, pos0, rope, s->rope.p, !maps_only);

    for (int h = 0; h < H; h++)
        if ((rc = capture(cap, base, ATTN_V_Q, h, s->qh.p + (size_t)h * T * hd, T, hd, pos0, err)))
            return rc;
    for (int g = 0; g < KV; g++)
        if ((rc = capture_cache(cap, base, ATTN_V_K, g, kv, Tk, hd, &s->kvrows, err))) return rc;
    if (maps_only) return maps_heads(s, p, kv, T, pos0, Tk, causal, false, cap, base, err);
    for (int g = 0; g < KV; g++)
        if ((rc = capture_cache(cap, base, ATTN_V_V, g, kv, Tk, hd, &s->kvrows, err))) return rc;

    /* per head h, reading kv head g = h / (H / KV):
     * context_h = softmax(mask(q_h k_g^T / sqrt(hd))) v_g, into columns h of concat */
    if ((rc = attend_and_capture(s, p, kv, T, pos0, Tk, causal, cap, base, err))) return rc;
    /* the heads side by side; an intervention (ablation, patching) may change them here */
    const attn_capture_key kc = key_of(base, ATTN_V_CONCAT, -1);
    if ((rc = attn_cap_edit(cap, &kc, s->concat.p, T, H * hd, pos0, err))) return rc;

    /* out = concat Wo^T (+ bo) */
    kern_linear(out, s->concat.p, w->o.w, w->o.b, T, H * hd, D);
    return capture(cap, base, ATTN_V_ATTN_OUT, -1, out, T, D, pos0, err);
}
