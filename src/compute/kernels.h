/*
 * Private: the numeric kernels of the forward pass.
 *
 * Shapes use the legend of attn/attn.h (T, D, H, KV, hd, F, V). Every
 * function writes its outputs first, then reads its inputs, then takes sizes.
 *
 * Determinism: every output element is produced by one loop whose order of
 * floating-point operations depends only on the sizes, never on how many
 * rows are computed together. Splitting output rows across threads later
 * therefore gives byte-identical results.
 *
 * The hot kernels are compiled for several instruction sets and picked at
 * load time: kern_softmax, kern_wsum, the norms and the activations
 * (kernels.c) never fuse a multiply-add; kern_linear (gemm.c), kern_scores
 * and kern_flash (flash.c) always do, in every version (fmaf in the
 * baseline). Vectors only ever
 * run independent elements (or lanes) side by side, so every version gives
 * the same bytes.
 */
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

/* Dot product of a[n] and b[n], accumulated in float with 16 partial sums
 * (lane l takes elements l, l+16, l+32, ... in order, from +0), combined in a
 * fixed tree: b[l] = lane[l] + lane[l+8], c[l] = b[l] + b[l+4], then
 * (c[0] + c[2]) + (c[1] + c[3]). Never -0. kern_wsum's sums are this one,
 * bit for bit. */
float kern_dot(const float *restrict a, const float *restrict b, int n);

/* out = inp W^T + b (compute/gemm.c, a register- and cache-blocked GEMM):
 * out[t][o] = the dot product of input row t and weight row o in
 * kern_dot's lanes (element i in lane i % 16, in order within the lane,
 * from +0) with every step a fused multiply-add, the lanes added in
 * kern_dot's tree, then + b[o] (+ 0.0f without bias): bit for bit, whatever
 * T and whichever instruction set runs it.
 * out is (T, OC), inp is (T, C), weight is (OC, C) (PyTorch layout), bias is (OC) or NULL.
 * out must not alias inp. */
void kern_linear(float *restrict out, const float *restrict inp, const float *restrict weight,
                 const float *restrict bias, int T, int C, int OC);
/* The instruction sets of kern_linear, 0 .. while kern_linear_isa_name is
 * not NULL ("avx512", "avx2", "baseline"); kern_linear_isa_runs tells which
 * this CPU has, kern_linear_isa_best which kern_linear uses; kern_linear_isa
 * runs one of them (one that runs). For the tests and benchmarks. */
const char *kern_linear_isa_name(int i);
bool kern_linear_isa_runs(int i);
int kern_linear_isa_best(void);
void kern_linear_isa(int which, float *restrict out, const float *restrict inp,
                     const float *restrict weight, const float *restrict bias, int T, int C, int OC);

/* LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * w + b,
 * var the biased variance (as PyTorch), in float, each row alone:
 *   m0 = S(x) / C, S the sum in kern_dot's order (element i in lane i % 16
 *        from +0, the fixed tree);
 *   d_i = x_i - m0, m1 = S(d) / C, q = S(d^2) / C (two sums in one pass);
 *   var = (double)q - (double)m1 * m1 (clamped at 0),
 *   rstd = (float)(1 / sqrt(var + eps)) in double;
 *   y_i = ((x_i - m0) - m1) * rstd * w_i (+ b_i), left to right in float.
 * m0 + m1 is the mean to about 2^-24 of the spread of the row, whatever its
 * offset (x_i - m0 is exact when x_i is within a factor 2 of m0), so large
 * offsets cost nothing. Error: |y_i - exact| <= 2^-24 KERN_NORM_ERR(C)
 * (1 + |w_i| (1 + |xhat_i|) + |b_i|), xhat_i the exact normalized value
 * (the C/32 is the worst case of the float sums; measured at most 2.2
 * for C from 1 to 4096, with mean 1e3 and std 1e-2 too: tests/test-kernels.c).
 * out is (T, C), inp is (T, C), weight is (C), bias is (C) or NULL. out may equal inp. */
#define KERN_NORM_ERR(C) (8.0 + (double)(C) / 32.0)
void kern_layernorm(float *out, const float *inp, const float *weight, const float *bias, int T,
                    int C, double eps);

/* RMSNorm: x / sqrt(mean(x^2) + eps) * w, in float, each row alone:
 * q = S(x^2) / C (S as in kern_layernorm), r = (float)(1 / sqrt(q + eps))
 * in double, y_i = x_i * r * w_i. Error: |y_i - exact| <= 2^-24
 * KERN_NORM_ERR(C) |exact| (measured at most 3.1).
 * out is (T, C), inp is (T, C), weight is (C). out may equal inp. */
void kern_rmsnorm(float *out, const float *inp, const float *weight, int T, int C, double eps);

/* In place activations on x[n], in float, branch-free (vectorized), each
 * element alone (the same bits whatever n). Errors are against the float64
 * value, in ulps of it where it is a normal float and in subnormal steps
 * (2^-149) below FLT_MIN; checked on all 2^32 floats by the benchmark
 * activations-exhaustive (bench/exhaustive_activations.c) and on random
 * values, edge cases and a stride of all floats by tests/test-kernels.c.
 * NaN gives NaN (its sign and payload unspecified: they may differ between
 * the scalar and vector code); +-inf give the limits; -0 gives -0.
 *
 * kern_relu: x > 0 ? x : 0, exact.
 * kern_gelu: x Phi(x) = 1/2 x (1 + erf(x / sqrt 2)). |x| <= 1/2: x (1/2 +
 *   x S(x^2)), S a polynomial of degree 5; else x > 0: x - g, x < 0: g, with
 *   g = x Phi(-|x|) = x 1/2 tau exp(-x^2/2 + P(tau)), tau = 1 / (1 + |x| /
 *   (2 sqrt 2)), P of degree 11, the exponent kept exact in its large part
 *   (see kernels.c). Error <= KERN_GELU_ULP_NEAR ulp for x >= -1/2 and
 *   KERN_GELU_ULP ulp below (relative 7.8e-7: the error of
 *   exp and of the rational factor), KERN_GELU_SUB steps for subnormal results.
 * kern_gelu_tanh: 1/2 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
 *   computed as x sigmoid(2u) with 2u = x (c1 + c3 x^2) in float. Error <=
 *   KERN_GELU_TANH_ERR 2^-24 (1 + |2u|) |exact| + 2^-149: a few ulp where the
 *   result matters, growing in the tail x < -2 (where 1 + tanh(u) cancels,
 *   even in float64) with the rounding of 2u, up to relative 2e-5 near x = -9.
 * kern_silu: x sigmoid(x) = x / (1 + e^-x), with kern_exp's exponential
 *   (scaled by 2^24 for x < 0 so that no result is lost to underflow early).
 *   Error <= KERN_SILU_ULP ulp, KERN_SILU_SUB steps for subnormal results. */
#define KERN_GELU_ULP_NEAR 3.0
#define KERN_GELU_ULP 6.5
#define KERN_GELU_SUB 3.0
#define KERN_GELU_TANH_ERR 3.0
#define KERN_SILU_ULP 3.5
#define KERN_SILU_SUB 1.5
void kern_relu(float *x, size_t n);
void kern_gelu(float *x, size_t n);
void kern_gelu_tanh(float *x, size_t n);
void kern_silu(float *x, size_t n);

/* out[n] *= b[n] (the swiglu product). */
void kern_mul(float *restrict out, const float *restrict b, size_t n);

/* exp(x) in float, within 1 ulp of the exact value for every float whose
 * exp is a normal float (checked exhaustively), subnormal results within one
 * subnormal step, 0 below -103.98, inf above 88.73, NaN for NaN. Branch-free
 * (range reduction + polynomial), the exponential of kern_softmax, kern_silu
 * and kern_gelu_tanh (and, with the exponent split, of kern_gelu). */
float kern_exp(float x);

/* In place softmax of row[0 .. n_valid-1]: e_i = kern_exp(row[i] - max),
 * summed in double (element i in lane i % 16, the 16 lanes added in a fixed
 * tree), then row[i] = (float)(e_i * (1 / sum)); row[n_valid .. n-1] (masked
 * entries) are set to exactly 0. n_valid >= 1. Each row's bytes depend only
 * on its own n_valid values. */
void kern_softmax(float *row, int n_valid, int n);

/* Attention scores of one query against n keys stored transposed
 * (compute/flash.c): s[j] = chain(q, key j) * scale, where chain(a, b) is
 * the fused multiply-adds acc = fma(a_i, b_i, acc) for i = 0 .. hd-1 in
 * order from acc = +0, and key j is kt[i * ldk + j] for i < hd (a head's
 * keys as a [hd, ldk] block, ldk >= n): the scores of kern_flash, bit for
 * bit, on every instruction set. */
void kern_scores(float *restrict s, const float *restrict q, const float *restrict kt,
                 size_t ldk, int n, int hd, float scale);

/* Weighted sum of n values stored transposed: ctx[d] = sum over j < n of
 * w[j] * vt[d * ldv + j] for d < hd (a head's values as a [hd, ldv] block),
 * with term j in lane j % 16 of its d (in key order within the lane) and the
 * 16 lanes added in a fixed tree: the bytes depend only on n and the data. */
void kern_wsum(float *restrict ctx, const float *restrict w, const float *restrict vt,
               size_t ldv, int n, int hd);

/* Fused attention of one head for n <= KERN_FLASH_ROWS queries
 * (FlashAttention's online softmax, compute/flash.c): ctx row r =
 * softmax(q_r K^T * scale) V over the keys 0 .. seen(r) - 1 that row r
 * sees, seen(r) = vis0 + r when causal, else vis0, without building a score
 * matrix.
 *   ctx is (n, hd) rows ldc apart (a head's columns of the concatenation),
 *   q is (n, hd), kt [hd, ldk] the kv head's keys transposed (key j of
 *   dimension i at kt[i * ldk + j]), v (>= max seen, hd) its values as rows;
 *   sout, when not NULL, gets row r's scores s_c (c < seen(r), kern_scores'
 *   bytes) at sout[r * lds + c].
 * Keys go in tiles at fixed absolute positions (tile j: keys
 * KERN_FLASH_KEYS j .. KERN_FLASH_KEYS (j+1) - 1). Row r, for each tile it
 * sees (its keys c of the tile, nc of them), in order:
 *   s_c   = chain(q_r, key c) * scale                  (kern_scores)
 *   mt    = max_c s_c,  m' = first tile ? mt : (mt > m ? mt : m)
 *   alpha = kern_exp(m - m')                           (not on the first tile)
 *   p_c   = kern_exp(s_c - m')
 *   ts    = the p_c in 16 lanes (c in lane c % 16, in order, from +0),
 *           added in kern_dot's tree
 *   l'    = first ? ts : fma(l, alpha, ts)
 *   tv_d  = the chain fma(p_c, v_cd, tv_d) over c in order from +0
 *   o'_d  = first ? tv_d : fma(o_d, alpha, tv_d)
 * then ctx_d = o_d / l. Each element is one chain of IEEE operations that
 * depends only on its row, the keys and values it sees and their count:
 * not on n, on the other rows, on which rows are computed together, nor on
 * the instruction set, so a sequence split into query chunks or threads
 * gives the same bytes. A key a row does not see is never read for it, and
 * a tile no row sees is skipped. seen(r) = 0 gives a row of zeros. Against
 * softmax(scores) V in float64: error of the order of (KERN_FLASH_KEYS +
 * n_tiles) 2^-24 of sum_j w_j |v_j| (tests/test-kernels.c checks 1e-6 of
 * it). */
#define KERN_FLASH_ROWS 32
#define KERN_FLASH_KEYS 64
void kern_flash(float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                const float *restrict q, int n, int vis0, bool causal, const float *restrict kt,
                size_t ldk, const float *restrict v, int hd, float scale);
/* kern_flash and kern_scores on one instruction set, by kern_linear's
 * numbering (one that runs; the baseline when this build has no such
 * version). For the tests: every set gives the same bytes. */
void kern_flash_isa(int which, float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                    const float *restrict q, int n, int vis0, bool causal,
                    const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                    float scale);
void kern_scores_isa(int which, float *restrict s, const float *restrict q,
                     const float *restrict kt, size_t ldk, int n, int hd, float scale);

/* RoPE (interleaved pairs, as llama2.c): the angles of position pos for one
 * head vector of hd floats: angle_i = pos * theta^(-2i/hd) for pair i.
 * cosv, sinv are (hd/2); computed in double. */
void kern_rope_table(float *cosv, float *sinv, int pos, int hd, double theta);
/* Rotates each pair (2i, 2i+1) of vec by angle_i:
 * (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos). vec is (hd), cosv, sinv are (hd/2).
 * An odd last element (hd odd) is left as is. */
void kern_rope_apply(float *vec, const float *cosv, const float *sinv, int hd);

/* Sinusoidal position row: out[2i] = sin(p / 10000^(2i/D)), out[2i+1] = cos(same).
 * out is (D); computed in double. */
void kern_sinusoidal(float *out, int pos, int D);

#endif
