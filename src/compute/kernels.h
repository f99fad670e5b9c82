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
 * load time: kern_softmax, kern_scores and kern_wsum (kernels.c) never fuse
 * a multiply-add; kern_linear (gemm.c) always does, in every version (fmaf
 * in the baseline). Vectors only ever run independent elements (or lanes)
 * side by side, so every version gives the same bytes.
 */
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

/* Dot product of a[n] and b[n], accumulated in float with 16 partial sums
 * (lane l takes elements l, l+16, l+32, ... in order, from +0), combined in a
 * fixed tree: b[l] = lane[l] + lane[l+8], c[l] = b[l] + b[l+4], then
 * (c[0] + c[2]) + (c[1] + c[3]). Never -0. The dot products of attention
 * (kern_scores, kern_wsum) are this one, bit for bit. */
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
 * var the biased variance (as PyTorch). Mean and variance in double.
 * out is (T, C), inp is (T, C), weight is (C), bias is (C) or NULL. out may equal inp. */
void kern_layernorm(float *out, const float *inp, const float *weight, const float *bias, int T,
                    int C, double eps);

/* RMSNorm: x / sqrt(mean(x^2) + eps) * w. Mean of squares in double.
 * out is (T, C), inp is (T, C), weight is (C). out may equal inp. */
void kern_rmsnorm(float *out, const float *inp, const float *weight, int T, int C, double eps);

/* In place activations on x[n]; gelu is exact (erf), gelu_tanh the tanh
 * approximation, silu x * sigmoid(x). Computed in double, stored as float. */
void kern_relu(float *x, size_t n);
void kern_gelu(float *x, size_t n);
void kern_gelu_tanh(float *x, size_t n);
void kern_silu(float *x, size_t n);

/* out[n] *= b[n] (the swiglu product). */
void kern_mul(float *restrict out, const float *restrict b, size_t n);

/* exp(x) in float, within 1 ulp of the exact value for every float whose
 * exp is a normal float (checked exhaustively), subnormal results within one
 * subnormal step, 0 below -103.98, inf above 88.73, NaN for NaN. Branch-free
 * (range reduction + polynomial), the exponential of kern_softmax. */
float kern_exp(float x);

/* In place softmax of row[0 .. n_valid-1]: e_i = kern_exp(row[i] - max),
 * summed in double (element i in lane i % 16, the 16 lanes added in a fixed
 * tree), then row[i] = (float)(e_i * (1 / sum)); row[n_valid .. n-1] (masked
 * entries) are set to exactly 0. n_valid >= 1. Each row's bytes depend only
 * on its own n_valid values. */
void kern_softmax(float *row, int n_valid, int n);

/* Attention scores of one query against n keys stored transposed:
 * s[j] = kern_dot(q, key j, hd) * scale, bit for bit, where key j is
 * kt[i * ldk + j] for i < hd (a head's keys as a [hd, ldk] block, ldk >= n).
 * The loop over keys is the inner one, so it runs in vector registers. */
void kern_scores(float *restrict s, const float *restrict q, const float *restrict kt,
                 size_t ldk, int n, int hd, float scale);

/* Weighted sum of n values stored transposed: ctx[d] = sum over j < n of
 * w[j] * vt[d * ldv + j] for d < hd (a head's values as a [hd, ldv] block),
 * with term j in lane j % 16 of its d (in key order within the lane) and the
 * 16 lanes added in a fixed tree: the bytes depend only on n and the data. */
void kern_wsum(float *restrict ctx, const float *restrict w, const float *restrict vt,
               size_t ldv, int n, int hd);

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
