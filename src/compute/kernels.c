/* kernels: norms, activations, softmax, rope, sinusoidal positions.
 * See kernels.h for the shapes and the determinism rule. */
#include "compute/kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Function multiversioning: the hot kernels are compiled for AVX-512, AVX2
 * and the baseline (SSE2 on x86-64), the best one picked at load time
 * (an ifunc; gcc on x86-64 glibc only). Every clone performs the same IEEE
 * operations in the same order on every element (the code below spells out
 * each element's order; vectors only run independent elements side by side),
 * and floating-point contraction is off (gcc's default in ISO C mode, which
 * the build uses: -std=c11; clang is told below), so no clone fuses a
 * multiply-add: all clones give byte-identical results. (Built as GNU C,
 * gcc would be free to fuse in the AVX-512 clone: results would still be
 * deterministic on one machine, but could differ in the last bit between
 * machines with and without it.) Define ATTN_NO_CLONES to build only the
 * baseline. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(ATTN_NO_CLONES)
#define KERN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERN_CLONES
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "compute/kern_inline.h"


ALWAYS_INLINE float dot16(const float *restrict a, const float *restrict b, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i + l < n; l++) acc[l] += a[i + l] * b[i + l];
    return tree16(acc);
}

float kern_dot(const float *restrict a, const float *restrict b, int n) { return dot16(a, b, n); }

/* Four dot products of x[n] with w0..w3[n] at once (x is loaded once), each
 * in kern_dot's order: out[k] == kern_dot(x, wk, n). */
ALWAYS_INLINE void dot16x4(float out[4], const float *restrict x, const float *restrict w0,
                           const float *restrict w1, const float *restrict w2,
                           const float *restrict w3, int n) {
    float a0[LANES] = {0}, a1[LANES] = {0}, a2[LANES] = {0}, a3[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            const float xl = x[i + l];
            a0[l] += xl * w0[i + l];
            a1[l] += xl * w1[i + l];
            a2[l] += xl * w2[i + l];
            a3[l] += xl * w3[i + l];
        }
    for (int l = 0; i + l < n; l++) {
        const float xl = x[i + l];
        a0[l] += xl * w0[i + l];
        a1[l] += xl * w1[i + l];
        a2[l] += xl * w2[i + l];
        a3[l] += xl * w3[i + l];
    }
    out[0] = tree16(a0);
    out[1] = tree16(a1);
    out[2] = tree16(a2);
    out[3] = tree16(a3);
}

void kern_mul(float *restrict out, const float *restrict b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] *= b[i];
}

/* ---- attention: exp, softmax, scores and weighted sums over the key cache ---- */


float kern_exp(float x) { return exp_approx(x); }

/* ---- norms and activations, in float ---- */

ALWAYS_INLINE float abs_f32(float x) { /* |x| as a bit operation (NaN stays NaN) */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u &= 0x7FFFFFFFu;
    memcpy(&x, &u, sizeof x);
    return x;
}

ALWAYS_INLINE float trunc12(float x) { /* x with the low 12 bits of its significand cleared */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u &= 0xFFFFF000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* acc[l] += x[l], x[l] - shift, (x[l] - shift)^2 or x[l]^2 for l < k <= 16
 * (loops over the 16 lanes, which gcc vectorizes; one sum per loop: the two
 * sums of LayerNorm's second pass in one loop are not vectorized) */
ALWAYS_INLINE void sum_into(float *restrict acc, const float *restrict x, int k) {
    for (int l = 0; l < k; l++) acc[l] += x[l];
}
ALWAYS_INLINE void dev_into(float *restrict acc, const float *restrict x, float shift, int k) {
    for (int l = 0; l < k; l++) acc[l] += x[l] - shift;
}
ALWAYS_INLINE void dev2_into(float *restrict acc, const float *restrict x, float shift, int k) {
    for (int l = 0; l < k; l++) acc[l] += (x[l] - shift) * (x[l] - shift);
}
ALWAYS_INLINE void sq_into(float *restrict acc, const float *restrict x, int k) {
    for (int l = 0; l < k; l++) acc[l] += x[l] * x[l];
}

/* LayerNorm of one row, in the order documented in kernels.h. */
ALWAYS_INLINE void layernorm_row(float *y, const float *x, const float *weight,
                                 const float *bias, int C, double eps) {
    float acc0[LANES] = {0}, acc[LANES] = {0}, acc2[LANES] = {0};
    int i = 0;
    for (; i + LANES <= C; i += LANES) sum_into(acc0, x + i, LANES);
    sum_into(acc0, x + i, C - i);
    const float m0 = tree16(acc0) / (float)C; /* pass 1: the mean, to within a few ulp */
    for (i = 0; i + LANES <= C; i += LANES) dev_into(acc, x + i, m0, LANES);
    dev_into(acc, x + i, m0, C - i);
    for (i = 0; i + LANES <= C; i += LANES) dev2_into(acc2, x + i, m0, LANES);
    dev2_into(acc2, x + i, m0, C - i);
    /* pass 2: d = x - m0 (exact when x is within a factor 2 of m0), the rest
     * of the mean m1 = mean(d), and var = mean(d^2) - m1^2 (the variance
     * about a shift, which loses nothing when the shift is near the mean) */
    const float m1 = tree16(acc) / (float)C;
    const double var = (double)(tree16(acc2) / (float)C) - (double)m1 * m1;
    const float rstd = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + eps));
    if (bias)
        for (i = 0; i < C; i++) y[i] = ((x[i] - m0) - m1) * rstd * weight[i] + bias[i];
    else
        for (i = 0; i < C; i++) y[i] = ((x[i] - m0) - m1) * rstd * weight[i];
}

KERN_CLONES
void kern_layernorm(float *out, const float *inp, const float *weight, const float *bias, int T,
                    int C, double eps) {
    for (int t = 0; t < T; t++)
        layernorm_row(out + (size_t)t * C, inp + (size_t)t * C, weight, bias, C, eps);
}

KERN_CLONES
void kern_rmsnorm(float *out, const float *inp, const float *weight, int T, int C, double eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        float acc[LANES] = {0};
        int i = 0;
        for (; i + LANES <= C; i += LANES) sq_into(acc, x + i, LANES);
        sq_into(acc, x + i, C - i);
        const float r = (float)(1.0 / sqrt((double)(tree16(acc) / (float)C) + eps));
        for (i = 0; i < C; i++) y[i] = x[i] * r * weight[i];
    }
}

void kern_relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* c exp(a + b) for a = -th^2/2 of gelu1 (a multiple of 2^-23 times th's
 * ulp^2, in [-200, 0]) and |b| < 2, with exp_approx's reduction and
 * polynomial: n = round((a + b) / ln2), r = (a - n 0.693359375) + b - n
 * (-2.12194440e-4), where a - n 0.693359375 is exact (both are multiples of
 * a power of two that leaves 24 bits for their small difference), so the
 * large part of the exponent is never rounded; then c exp(r), scaled by 2^n
 * in two halves (one rounding into the subnormals). a is clamped to >= -110
 * first (c exp(a + b) is 0 in float below). */
ALWAYS_INLINE float exp_sum_mul(float a, float b, float c) {
    a = select_f32(a < -110.0f, -110.0f, a);
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float t = (a + b) * 1.44269504088896341f + shifter;
    float kf = t - shifter;
    float r = a - kf * 0.693359375f;
    r = r + b;
    r = r - kf * -2.12194440e-4f;
    float y = exp_reduced(r) * c;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t n = (int32_t)(tb - 0x4B400000u);
    return scale_2n(y, n); /* the halves in [-81, 2] */
}

/* GELU, exact form: gelu(x) = x Phi(x), Phi the normal distribution.
 * g = x Phi(-|x|) is computed for t = |x| as
 *   Phi(-t) = 1/2 tau exp(-t^2/2 + P(tau)),  tau = 1 / (1 + t / (2 sqrt 2)),
 * P a polynomial of degree 11 in tau - 1 (no constant term: P = 0 at t = 0),
 * fitted by least squares on [1/(1 + 20/(2 sqrt 2)), 1] to
 * log(2 Phi(-t) / tau) + t^2/2, which is smooth there (t Phi(-t) e^(t^2/2)
 * tends to a constant); its error is below 5e-9, less than the float
 * rounding of P itself. The exponent is split as -th^2/2 + (P - tl (t +
 * th)/2) with th = t cut to 12 significant bits and tl = t - th (th^2/2 is
 * exact), and exp_sum_mul never rounds its large part. Then gelu = g for
 * x <= 0 and x - g (= x (1 - Phi(-x))) for x > 0; for |x| <= 1/2, where
 * that loses about 5 ulp to the rounding of tau near 1, the polynomial
 * below instead. x is clamped to [-20, 20] for g
 * (beyond, g rounds to 0 and gelu to -0 or x); NaN passes through. */
ALWAYS_INLINE float gelu1(float x) {
    float xc = select_f32(x < -20.0f, -20.0f, x);
    xc = select_f32(xc > 20.0f, 20.0f, xc);
    const float t = abs_f32(xc);
    const float tau = 1.0f / (1.0f + t * 0.353553390593273762f);
    const float v = tau - 1.0f;
    float p = -1.128490791e-01f;
    p = p * v + -6.563606858e-01f;
    p = p * v + -1.458562136e+00f;
    p = p * v + -1.548241377e+00f;
    p = p * v + -8.742796779e-01f;
    p = p * v + -4.392524064e-01f;
    p = p * v + -1.517300904e-01f;
    p = p * v + 1.781634241e-01f;
    p = p * v + -1.628035605e-01f;
    p = p * v + -3.032986820e-01f;
    p = p * v + 1.256757379e+00f;
    p = p * v;
    const float th = trunc12(t), tl = t - th;
    const float g = exp_sum_mul((th * th) * -0.5f, p - (tl * (t + th)) * 0.5f, (xc * 0.5f) * tau);
    /* |x| <= 1/2: Phi(x) = 1/2 + x S(x^2), S of degree 5 fitted to
     * erf(x / sqrt 2) / (2x) (relative error 3e-8) */
    const float s = x * x;
    float q = -1.081658527e-03f;
    q = q * s + 8.530800114e-04f;
    q = q * s + -1.371863764e-03f;
    q = q * s + 9.993759915e-03f;
    q = q * s + -6.649128348e-02f;
    q = q * s + 3.989422917e-01f;
    const float small = x * (0.5f + x * q);
    return select_f32(t <= 0.5f, small, select_f32(x > 0.0f, x - g, g));
}

KERN_CLONES
void kern_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gelu1(x[i]);
}

/* x sigmoid(w) = x / (1 + e^-w) for x >= 0, and x e^w 2^24 / (1 + e^w)
 * 2^-24 for x < 0 with e^w = e^-|w| from exp_scaled (scaled by 2^24 so
 * that e^w stays a normal float wherever x sigmoid(w) is one, the result
 * rounded once at the end); x is clamped to >= -120 in that branch (below,
 * the result is -0 anyway). NaN passes through. */
ALWAYS_INLINE float x_sigmoid(float x, float w) {
    const float en = exp_scaled(-abs_f32(w), 24);
    const float d = 1.0f + en * 0x1p-24f;
    const float xc = select_f32(x < -120.0f, -120.0f, x);
    const float neg = ((xc * en) / d) * 0x1p-24f;
    return select_f32(x < 0.0f, neg, x / d);
}

/* gelu_tanh(x) = 1/2 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x +
 * 0.044715 x^3); 2u as x (c1 + c3 x^2) in float. */
KERN_CLONES
void kern_gelu_tanh(float *x, size_t n) {
    const float c1 = 1.59576912160573071f;   /* 2 sqrt(2/pi) */
    const float c3 = 0.0713548162726008262f; /* 2 sqrt(2/pi) 0.044715 */
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = x_sigmoid(v, v * (c1 + c3 * (v * v)));
    }
}

KERN_CLONES
void kern_silu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x_sigmoid(x[i], x[i]);
}


/* m[l] = max(m[l], x[l]) for l < k (as a loop, which gcc vectorizes; the
 * same statement unrolled 16 times is not) */
ALWAYS_INLINE void max_into(float *restrict m, const float *restrict x, int k) {
    for (int l = 0; l < k; l++) m[l] = x[l] > m[l] ? x[l] : m[l];
}

#define MAX_LANES 64

KERN_CLONES
void kern_softmax(float *row, int n_valid, int n) {
    /* the max: 64 running maxima, then the largest of them (max is exact, so
     * the grouping does not change it; a NaN is taken only as row[0], as in
     * a plain loop) */
    float m[MAX_LANES];
    for (int l = 0; l < MAX_LANES; l++) m[l] = row[0];
    int i = 0;
    for (; i + MAX_LANES <= n_valid; i += MAX_LANES) max_into(m, row + i, MAX_LANES);
    max_into(m, row + i, n_valid - i);
    float mx = m[0];
    for (int l = 1; l < MAX_LANES; l++) mx = m[l] > mx ? m[l] : mx;

    for (i = 0; i < n_valid; i++) row[i] = exp_approx(row[i] - mx);

    /* the sum in double: element i goes to lane i % 16, the lanes are added
     * in a fixed tree */
    double acc[LANES];
    for (int l = 0; l < LANES; l++) acc[l] = 0.0;
    i = 0;
    for (; i + LANES <= n_valid; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += row[i + l];
    for (int l = 0; i + l < n_valid; l++) acc[l] += row[i + l];
    for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
    for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
    double sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);

    double inv = 1.0 / sum;
    for (i = 0; i < n_valid; i++) row[i] = (float)(row[i] * inv);
    for (i = n_valid; i < n; i++) row[i] = 0.0f;
}

/* Weighted sums: ctx[d] = kern_dot(w, v_d, n); four rows of values at a
 * time so that w is loaded once for them. */
KERN_CLONES
void kern_wsum(float *restrict ctx, const float *restrict w, const float *restrict vt,
               size_t ldv, int n, int hd) {
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        const float *v = vt + (size_t)d * ldv;
        dot16x4(ctx + d, w, v, v + ldv, v + 2 * ldv, v + 3 * ldv, n);
    }
    for (; d < hd; d++) ctx[d] = dot16(w, vt + (size_t)d * ldv, n);
}

void kern_rope_table(float *cosv, float *sinv, int pos, int hd, double theta) {
    for (int i = 0; i < hd / 2; i++) {
        double freq = pow(theta, -(double)(2 * i) / hd);
        double a = pos * freq;
        cosv[i] = (float)cos(a);
        sinv[i] = (float)sin(a);
    }
}

void kern_rope_apply(float *vec, const float *cosv, const float *sinv, int hd) {
    for (int i = 0; i < hd / 2; i++) {
        float x0 = vec[2 * i], x1 = vec[2 * i + 1];
        vec[2 * i] = x0 * cosv[i] - x1 * sinv[i];
        vec[2 * i + 1] = x0 * sinv[i] + x1 * cosv[i];
    }
}

void kern_sinusoidal(float *out, int pos, int D) {
    for (int i = 0; i < D; i += 2) {
        double a = pos / pow(10000.0, (double)i / D);
        out[i] = (float)sin(a);
        if (i + 1 < D) out[i + 1] = (float)cos(a);
    }
}
