/*
 * Private: one attention sub-layer of one block (self, causal or
 * bidirectional, or cross), grouped heads, RoPE, the key/value cache, and
 * the capture of its values (ATTN_V_ATTN_IN .. ATTN_V_ATTN_OUT).
 * Shapes use the legend of attn/attn.h.
 */
#ifndef ATTN_ATTENTION_H
#define ATTN_ATTENTION_H

#include "base/util.h"
#include "compute/buf.h"
#include "compute/capture.h"
#include "model/model.h"

/* Keys and values of one attention layer, head-major:
 *   k is [KV, hd, cap], each head's keys transposed so that the scores run
 *   over keys in vector registers: dimension i of position p of kv head g is
 *   at (g * hd + i) * cap + p;
 *   v is [KV, cap, hd], each head's values as rows (the weighted sum runs
 *   over dimensions): position p of kv head g is at (g * cap + p) * hd.
 * The captured K and V views are rows [positions, hd] (V's are the cache's
 * own rows, K's copied out on demand). Self-attention keys are stored after
 * RoPE. */
typedef struct attn_kv_cache {
    float *k, *v;
    int cap; /* positions allocated per head */
} attn_kv_cache;

/* Grows kv to hold at least `need` positions (geometrically, never beyond
 * max_cap, at least need), keeping the first `keep` positions of every head. */
attn_status attn_kv_reserve(attn_kv_cache *kv, int need, int keep, int max_cap, int KV, int hd,
                            attn_error *err);
void attn_kv_free(attn_kv_cache *kv);

/* Scratch memory of attn_attention, owned by the session. */
typedef struct attn_attn_scratch {
    attn_buf q;      /* [T, H*hd] q projection, then [T, KV*hd] k and v projections */
    attn_buf qh;     /* [H, T, hd] queries, head-major, after RoPE */
    attn_buf concat; /* [T, H*hd] */
    attn_buf ctx;    /* [T, hd] one head's context, only when captured */
    attn_buf mat;    /* [T, Tk] one head's scores / weights, only when captured */
    attn_buf rope;   /* [hd] cos then sin of one position */
    attn_buf kvrows; /* [Tk, hd] one head's keys as rows, only when captured */
    attn_buf heads;  /* [H] 1 for a head whose weights its own fused pass makes, else 0 */
    attn_buf mat2;   /* [T, Tk] the next head's weights while one is written (emit_alongside) */
} attn_attn_scratch;

void attn_attn_scratch_free(attn_attn_scratch *s);

typedef struct attn_attn_params {
    int D, H, KV, hd;
    bool rope;         /* rotate q and k of self-attention (positional = rope) */
    double rope_theta;
} attn_attn_params;

/* Computes the keys and values of cross-attention from the encoder output
 * (no RoPE) into kv, which it sizes to S positions.
 * enc is (S, D); kv gets keys [KV, hd, S] and values [KV, S, hd]. */
attn_status attn_cross_kv(attn_kv_cache *kv, const float *enc, const attn_attention_weights *w,
                          const attn_attn_params *p, int S, attn_attn_scratch *s, attn_error *err);

/* The context of every head by the fused pass (kern_flash), split over
 * (head, tile of KERN_FLASH_ROWS queries) tasks between attn_threads()
 * threads when the work is large enough; the same bytes for every thread
 * count. Query t (position pos0 + t) of head h sees keys 0 .. pos0 + t when
 * causal, else all Tk, of kv head h / (H / KV).
 * concat is (T, H*hd): head h's context in columns h*hd .. h*hd + hd - 1.
 * qh is [H, T, hd] the queries, head-major; kv holds >= Tk positions. */
void attn_attend_fused(float *concat, const float *qh, const attn_attn_params *p,
                       const attn_kv_cache *kv, int T, int pos0, int Tk, bool causal);

/* One attention sub-layer.
 * out is (T, D): the output after the o projection (+ bias).
 * x is (T, D): the input (already normed when pre-norm); out must not alias it.
 * base->kind says self or cross.
 *   self:  the new positions are pos0 .. pos0+T-1; their keys and values are
 *          written into kv (which must hold pos0 + T positions) and the
 *          queries attend to keys 0 .. pos0+T-1 (Tk = pos0 + T), causally
 *          when base->causal (query at position p sees keys 0..p): the mask
 *          and the captured keys' causal flag are one fact.
 *   cross: kv holds Tk = S keys and values from attn_cross_kv; no mask,
 *          no RoPE, kv is not written. pos0 is the position of row 0
 *          (row_offset of the captured per-query values).
 * cap may be NULL; base is the key of this sub-layer (stack, source, layer,
 * kind, causal); values are emitted only when cap->wants() them. An emit
 * that fails stops the sub-layer and its status is returned.
 * maps_only (self-attention; the last block a pass needs, when only its
 * maps are asked for): the input, q, k, scores and weights are made and
 * captured, nothing else: no values (kv gets the keys only), no context,
 * no out. */
attn_status attn_attention(float *out, const float *x, const attn_attention_weights *w,
                           const attn_attn_params *p, attn_kv_cache *kv, int T, int pos0, int Tk,
                           attn_attn_scratch *s, const attn_capture *cap,
                           const attn_capture_key *base, bool maps_only, attn_error *err);

#endif
