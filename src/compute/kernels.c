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

/* The helpers below are inlined into each clone (a helper that is not would
 * be compiled for the baseline only). */
#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* kern_dot's order: element i goes to lane i % 16 (in order within the
 * lane, from +0), then the 16 lanes are added in a fixed tree. Every dot
 * product of this file (matrix products, attention scores, weighted sums of
 * values) uses it. A lane never holds -0 (it starts at +0, and x + y is -0
 * only when both are), so neither does the result. */
#define LANES 16

/* The tree: b[l] = a[l] + a[l+8], c[l] = b[l] + b[l+4], then
 * (c[0] + c[2]) + (c[1] + c[3]): halves, quarters, pairs, as a vector
 * reduction goes. gcc turns the plain loops into some 30 scalar adds and
 * shuffles (more work than a 64-long dot product itself), so with GNU C the
 * first two steps are written on vector types (same additions, same
 * order). */
#if defined(__GNUC__)
typedef float kern_v8f __attribute__((vector_size(32)));
typedef float kern_v4f __attribute__((vector_size(16)));

ALWAYS_INLINE float tree16(const float *a) {
    kern_v8f lo, hi, b;
    kern_v4f bl, bh, c;
    memcpy(&lo, a, sizeof lo);
    memcpy(&hi, a + 8, sizeof hi);
    b = lo + hi;
    memcpy(&bl, &b, sizeof bl);
    memcpy(&bh, (const char *)&b + sizeof bl, sizeof bh);
    c = bl + bh;
    return (c[0] + c[2]) + (c[1] + c[3]);
}
#else
ALWAYS_INLINE float tree16(const float *a) {
    float b[8], c[4];
    for (int l = 0; l < 8; l++) b[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) c[l] = b[l] + b[l + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
}
#endif

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

/* exp(x): x = n ln2 + r with n = round(x / ln2) (the 1.5 * 2^23 trick) and
 * r reduced in two steps (Cody-Waite: n * 0.693359375 is exact for the
 * |n| <= 160 used here), exp(r) = 1 + r + r^2 P(r) with P of degree 5 (the
 * Cephes expf coefficients), then scaled by 2^n in two halves so that results
 * below FLT_MIN round once to the right subnormal and results above FLT_MAX
 * become inf. x is clamped to [-110, 100] first (exp is 0 resp. inf beyond in
 * float); NaN passes through (both comparisons are false). Branch-free, so
 * gcc vectorizes loops of it for every target. */
ALWAYS_INLINE float select_f32(int c, float a, float b) { /* c ? a : b, as bit operations */
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint32_t m = 0u - (uint32_t)(c != 0);
    const uint32_t r = (ua & m) | (ub & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(r) for the reduced argument: 1 + r + r^2 P(r) (Cephes). */
ALWAYS_INLINE float exp_reduced(float r) {
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return (p * (r * r) + r) + 1.0f;
}

/* y 2^n in two halves (2^(n>>1), then the rest), so that a result below
 * FLT_MIN rounds once to the right subnormal; each half must be a normal
 * power of two (the callers' ranges). */
ALWAYS_INLINE float scale_2n(float y, int32_t n) {
    int32_t n1 = n >> 1, n2 = n - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return (y * s1) * s2;
}

ALWAYS_INLINE float exp_scaled(float x, int32_t k) {
    /* the clamps as bit selects: written as ?: gcc turns them into branches
     * (the clamped path folds to a constant), and loops with branches are
     * vectorized only for AVX-512 */
    x = select_f32(x < -110.0f, -110.0f, x);
    x = select_f32(x > 100.0f, 100.0f, x);
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f + shifter;
    float kf = t - shifter; /* round(x / ln2), as a float */
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float y = exp_reduced(r);
    /* n = kf as an integer, from the low bits of t (no float-to-int
     * conversion, so a NaN x is not undefined behaviour) */
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t n = (int32_t)(tb - 0x4B400000u) + k;
    /* the halves in [-80, 80] (k = 0) or [-68, 12] (k = 24, x <= 0): normal */
    return scale_2n(y, n);
}

ALWAYS_INLINE float exp_approx(float x) { return exp_scaled(x, 0); }

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

/* Scores, head width 8: one key per iteration, its 8 products added in
 * kern_dot's tree (lanes 8-15 are empty), + 0 for the sign of a zero (see
 * scores_any); the loop over keys vectorizes. */
ALWAYS_INLINE void scores_hd8(float *restrict s, const float *restrict q,
                              const float *restrict kt, size_t ld, int n, float scale) {
    const float *restrict k0 = kt, *restrict k1 = kt + ld, *restrict k2 = kt + 2 * ld;
    const float *restrict k3 = kt + 3 * ld, *restrict k4 = kt + 4 * ld;
    const float *restrict k5 = kt + 5 * ld, *restrict k6 = kt + 6 * ld;
    const float *restrict k7 = kt + 7 * ld;
    const float q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
    const float q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    for (int j = 0; j < n; j++) {
        float c0 = q0 * k0[j] + q4 * k4[j], c1 = q1 * k1[j] + q5 * k5[j];
        float c2 = q2 * k2[j] + q6 * k6[j], c3 = q3 * k3[j] + q7 * k7[j];
        s[j] = (((c0 + c2) + (c1 + c3)) + 0.0f) * scale;
    }
}

/* lane[j] (=|+=) qi * k[j] for a block of keys */
ALWAYS_INLINE void lane_set(float *restrict lane, float qi, const float *restrict k, int m) {
    for (int j = 0; j < m; j++) lane[j] = qi * k[j];
}
ALWAYS_INLINE void lane_add(float *restrict lane, float qi, const float *restrict k, int m) {
    for (int j = 0; j < m; j++) lane[j] += qi * k[j];
}

/* Scores, any head width: keys SC_BLOCK at a time, each of kern_dot's 16
 * lanes an array over the block's keys, filled one row of the [hd, ld]
 * block at a time (a vectorized multiply-add over keys), then added in
 * kern_dot's tree. A lane starts with its first product instead of
 * 0 + product, which changes at most the sign of a zero lane and so of a
 * zero sum; the final + 0 turns -0 into +0 and changes nothing else, so s[j]
 * equals kern_dot's bit for bit. */
#define SC_BLOCK 64

ALWAYS_INLINE void scores_any(float *restrict s, const float *restrict q,
                              const float *restrict kt, size_t ld, int n, int hd, float scale) {
    float lane[LANES][SC_BLOCK];
    for (int j0 = 0; j0 < n; j0 += SC_BLOCK) {
        const int m = n - j0 < SC_BLOCK ? n - j0 : SC_BLOCK;
        /* rows in order, row i into lane i % 16: each lane still adds its
         * rows in order, and consecutive updates go to different lanes */
        for (int l = 0; l < LANES; l++) {
            if (l < hd) lane_set(lane[l], q[l], kt + (size_t)l * ld + j0, m);
            else
                for (int j = 0; j < m; j++) lane[l][j] = 0.0f;
        }
        for (int i = LANES; i < hd; i++)
            lane_add(lane[i % LANES], q[i], kt + (size_t)i * ld + j0, m);
        for (int j = 0; j < m; j++) {
            float b[8], c[4];
            for (int l = 0; l < 8; l++) b[l] = lane[l][j] + lane[l + 8][j];
            for (int l = 0; l < 4; l++) c[l] = b[l] + b[l + 4];
            s[j0 + j] = (((c[0] + c[2]) + (c[1] + c[3])) + 0.0f) * scale;
        }
    }
}

KERN_CLONES
void kern_scores(float *restrict s, const float *restrict q, const float *restrict kt,
                 size_t ldk, int n, int hd, float scale) {
    if (hd == 8) scores_hd8(s, q, kt, ldk, n, scale);
    else scores_any(s, q, kt, ldk, n, hd, scale);
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

/* ---- fused attention (FlashAttention's online softmax), one head ----
 *
 * The order of operations of one query row r (kernels.h): for each key tile
 * j it sees (keys 32j .. 32j+31 that it sees, nc of them), in increasing j:
 *   s_c   = kern_dot(q, key c, hd) * scale      (kern_scores' bytes)
 *   mt    = max_c s_c,  m' = j == 0 ? mt : max(m, mt)
 *   alpha = kern_exp(m - m')                      (not used for j == 0)
 *   p_c   = kern_exp(s_c - m')
 *   ts    = p_c summed in 16 lanes (c in lane c % 16, from +0), kern_dot's tree
 *   l'    = j == 0 ? ts : l * alpha + ts
 *   tv_d  = ((0 + p_0 v_0d) + p_1 v_1d) + ... + p_{nc-1} v_{nc-1,d}
 *   o'_d  = j == 0 ? tv_d : o_d * alpha + tv_d
 * then ctx_d = o_d / l. Each element is one chain of IEEE operations that
 * depends only on its row, the tiles' keys and values and how many of them
 * the row sees: the vectors below run independent keys (scores) or
 * dimensions (values) side by side, and a block of rows runs each row's
 * chain unchanged. */

#define FL_KEYS KERN_FLASH_KEYS

/* kern_dot(q, key) for a key stored down a column of kt (stride ld) */
ALWAYS_INLINE float dot_strided(const float *restrict q, const float *restrict k, size_t ld,
                                    int hd) {
    float acc[LANES] = {0};
    for (int i = 0; i < hd; i++) acc[i % LANES] = acc[i % LANES] + q[i] * k[(size_t)i * ld];
    return tree16(acc);
}
#define FL_RB 4 /* query rows of a register block */

#if defined(__GNUC__)
/* 16 keys (scores) or 16 dimensions (the weighted sum of values) */
typedef float kern_v16f __attribute__((vector_size(64)));
#define FL_VEC 16
#else
#define FL_VEC 0 /* no vector types: the element loops do everything */
#endif

/* s[r][c] for rows r < RB of q (RB, hd) and the keys c0 .. c0 + NS*16 - 1
 * of the tile at key j0 of kt [hd, ldk], in vectors of 16 keys, each in
 * kern_dot's order: lane l (dimensions l, l+16, ... in order, from +0), the
 * lanes added in kern_dot's tree, computed lane pair by lane pair so that
 * only a few partial sums are live. */
#if FL_VEC
ALWAYS_INLINE void flash_lane(kern_v16f acc[FL_RB][2], const float *restrict q, const int RB,
                              const int NS, int hd, const float *restrict kt, size_t ldk,
                              int l) {
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) acc[r][u] = (kern_v16f){0};
    for (int i = l; i < hd; i += LANES) {
        kern_v16f k[2];
        for (int u = 0; u < NS; u++) memcpy(&k[u], kt + (size_t)i * ldk + u * FL_VEC, sizeof k[u]);
        for (int r = 0; r < RB; r++) {
            const float qi = q[(size_t)r * hd + i];
            for (int u = 0; u < NS; u++) acc[r][u] = acc[r][u] + qi * k[u];
        }
    }
}

/* c[l] of kern_dot's tree for l < 4: (lane l + lane l+8) + (lane l+4 + lane l+12) */
ALWAYS_INLINE void flash_quarter(kern_v16f c[FL_RB][2], const float *restrict q, const int RB,
                                 const int NS, int hd, const float *restrict kt, size_t ldk,
                                 int l) {
    kern_v16f a[FL_RB][2], b[FL_RB][2];
    flash_lane(a, q, RB, NS, hd, kt, ldk, l);
    flash_lane(b, q, RB, NS, hd, kt, ldk, l + 8);
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) c[r][u] = a[r][u] + b[r][u];
    flash_lane(a, q, RB, NS, hd, kt, ldk, l + 4);
    flash_lane(b, q, RB, NS, hd, kt, ldk, l + 12);
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) c[r][u] = c[r][u] + (a[r][u] + b[r][u]);
}

ALWAYS_INLINE void flash_scores_vec(float s[FL_RB][FL_KEYS], const float *restrict q,
                                    const int RB, const int NS, int hd, const float *restrict kt,
                                    size_t ldk, int j0, int c0, float scale) {
    const float *k = kt + j0 + c0;
    kern_v16f x[FL_RB][2], y[FL_RB][2], z[FL_RB][2];
    flash_quarter(x, q, RB, NS, hd, k, ldk, 0);
    flash_quarter(y, q, RB, NS, hd, k, ldk, 2);
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) x[r][u] = x[r][u] + y[r][u]; /* c[0] + c[2] */
    flash_quarter(y, q, RB, NS, hd, k, ldk, 1);
    flash_quarter(z, q, RB, NS, hd, k, ldk, 3);
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) {
            const kern_v16f sv = (x[r][u] + (y[r][u] + z[r][u])) * scale;
            memcpy(&s[r][c0 + u * FL_VEC], &sv, sizeof sv);
        }
}
#endif

/* s[r][c] for rows r < RB and the keys c < nc of the tile: NS vectors of
 * keys at a time, then single vectors, then the keys left over one by one
 * (the same chain per element). */
ALWAYS_INLINE void flash_scores(float s[FL_RB][FL_KEYS], const float *restrict q, const int RB,
                                const int NS, int hd, const float *restrict kt, size_t ldk,
                                int j0, int nc, float scale) {
    int c = 0;
#if FL_VEC
    for (; c + NS * FL_VEC <= nc; c += NS * FL_VEC)
        flash_scores_vec(s, q, RB, NS, hd, kt, ldk, j0, c, scale);
    for (; c + FL_VEC <= nc; c += FL_VEC) flash_scores_vec(s, q, RB, 1, hd, kt, ldk, j0, c, scale);
#endif
    for (; c < nc; c++)
        for (int r = 0; r < RB; r++) s[r][c] = dot_strided(q + (size_t)r * hd, kt + j0 + c, ldk, hd) * scale;
}

/* o[r][d] = first ? tv : o[r][d] * alpha[r] + tv, tv = sum over c < nc of
 * p[r][c] v[c][d] (c < ncr[r] when ncr is given: row r's own count), for
 * rows r < RB of o (rows ldo apart) and the dimensions d0 .. d0 + NS*16 - 1
 * (vectors) of v (nc, hd), the tile's values as rows. */
#if FL_VEC
ALWAYS_INLINE void flash_pv_vec(float *restrict o, size_t ldo, const float p[FL_RB][FL_KEYS],
                                const float *alpha, bool first, const int RB, const int NS,
                                const float *restrict v, int hd, int nc, const int *ncr, int d0) {
    kern_v16f t[FL_RB][2];
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) t[r][u] = (kern_v16f){0};
    for (int c = 0; c < nc; c++) {
        kern_v16f x[2];
        for (int u = 0; u < NS; u++) memcpy(&x[u], v + (size_t)c * hd + d0 + u * FL_VEC, sizeof x[u]);
        for (int r = 0; r < RB; r++) {
            if (ncr && c >= ncr[r]) continue; /* a key row r does not see */
            const float pc = p[r][c];
            for (int u = 0; u < NS; u++) t[r][u] = t[r][u] + pc * x[u];
        }
    }
    for (int r = 0; r < RB; r++)
        for (int u = 0; u < NS; u++) {
            float *dst = o + (size_t)r * ldo + d0 + u * FL_VEC;
            kern_v16f y = t[r][u];
            if (!first) {
                kern_v16f old;
                memcpy(&old, dst, sizeof old);
                y = old * alpha[r] + t[r][u];
            }
            memcpy(dst, &y, sizeof y);
        }
}
#endif

ALWAYS_INLINE void flash_pv(float *restrict o, size_t ldo, const float p[FL_RB][FL_KEYS],
                            const float *alpha, bool first, const int RB, const int NS,
                            const float *restrict v, int hd, int nc, const int *ncr) {
    int d = 0;
#if FL_VEC
    for (; d + NS * FL_VEC <= hd; d += NS * FL_VEC)
        flash_pv_vec(o, ldo, p, alpha, first, RB, NS, v, hd, nc, ncr, d);
    for (; d + FL_VEC <= hd; d += FL_VEC)
        flash_pv_vec(o, ldo, p, alpha, first, RB, 1, v, hd, nc, ncr, d);
#endif
    for (; d < hd; d++)
        for (int r = 0; r < RB; r++) {
            float tv = 0.0f;
            const int n = ncr ? ncr[r] : nc;
            for (int c = 0; c < n; c++) tv = tv + p[r][c] * v[(size_t)c * hd + d];
            float *dst = o + (size_t)r * ldo + d;
            *dst = first ? tv : *dst * alpha[r] + tv;
        }
}

/* One register block: rows r < RB of the tile, each seeing the same nc keys
 * of the key tile at j0, or (ncr given: the causal diagonal) its own ncr[r]
 * >= 1 of them, nc the largest; m, l are the rows' running max and sum. A
 * row's scores, max, exponentials, sum and products are those of its own
 * keys only, each in the same order as in a block of that row alone: the
 * same bytes. */
ALWAYS_INLINE void flash_block(float *restrict o, size_t ldo, const float *restrict q,
                               float *restrict m, float *restrict l, const int RB, const int NS,
                               const float *restrict kt, size_t ldk, const float *restrict v,
                               int hd, int j0, int nc, const int *ncr, float scale) {
    float s[FL_RB][FL_KEYS], alpha[FL_RB];
    const bool first = j0 == 0;
    flash_scores(s, q, RB, NS, hd, kt, ldk, j0, nc, scale);
    for (int r = 0; r < RB; r++) {
        const int n = ncr ? ncr[r] : nc;
        float mx[LANES];
        for (int u = 0; u < LANES; u++) mx[u] = s[r][0];
        int c = 0;
        for (; c + LANES <= n; c += LANES) max_into(mx, s[r] + c, LANES);
        max_into(mx, s[r] + c, n - c);
        float mt = mx[0];
        for (int u = 1; u < LANES; u++) mt = mx[u] > mt ? mx[u] : mt;
        const float mnew = first || mt > m[r] ? mt : m[r];
        alpha[r] = first ? 0.0f : exp_approx(m[r] - mnew);
        m[r] = mnew;
        for (c = 0; c < n; c++) s[r][c] = exp_approx(s[r][c] - mnew);
        float acc[LANES] = {0};
        for (c = 0; c + LANES <= n; c += LANES) sum_into(acc, s[r] + c, LANES);
        sum_into(acc, s[r] + c, n - c);
        const float ts = tree16(acc);
        l[r] = first ? ts : l[r] * alpha[r] + ts;
    }
    flash_pv(o, ldo, (const float(*)[FL_KEYS])s, alpha, first, RB, NS, v + (size_t)j0 * hd, hd,
             nc, ncr);
}

/* The blocks of 1 .. 4 rows, each inlined with its sizes as constants:
 * scores with NS vectors of keys, the values with NS vectors of dimensions. */
ALWAYS_INLINE void flash_block_rows(float *restrict o, size_t ldo, const float *restrict q,
                                    float *m, float *l, int rb, const float *restrict kt,
                                    size_t ldk, const float *restrict v, int hd, int j0, int nc,
                                    const int *ncr, float scale) {
    switch (rb) {
    case 4: flash_block(o, ldo, q, m, l, 4, 1, kt, ldk, v, hd, j0, nc, ncr, scale); break;
    case 3: flash_block(o, ldo, q, m, l, 3, 1, kt, ldk, v, hd, j0, nc, ncr, scale); break;
    case 2: flash_block(o, ldo, q, m, l, 2, 2, kt, ldk, v, hd, j0, nc, ncr, scale); break;
    default: flash_block(o, ldo, q, m, l, 1, 2, kt, ldk, v, hd, j0, nc, ncr, scale); break;
    }
}

/* The same, with ncr (the causal diagonal's count per row) or without: two
 * inlined copies, so that the common case (NULL) has no per-row test. */
ALWAYS_INLINE void flash_block_n(float *restrict o, size_t ldo, const float *restrict q, float *m,
                                 float *l, int rb, const float *restrict kt, size_t ldk,
                                 const float *restrict v, int hd, int j0, int nc, const int *ncr,
                                 float scale) {
    if (ncr)
        flash_block_rows(o, ldo, q, m, l, rb, kt, ldk, v, hd, j0, nc, ncr, scale);
    else
        flash_block_rows(o, ldo, q, m, l, rb, kt, ldk, v, hd, j0, nc, NULL, scale);
}

KERN_CLONES
void kern_flash(float *restrict ctx, size_t ldc, const float *restrict q, int n, int vis0,
                bool causal, const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                float scale) {
    float m[KERN_FLASH_ROWS], l[KERN_FLASH_ROWS];
    if (n <= 0) return;
    /* row r sees keys 0 .. seen(r) - 1 */
#define FL_SEEN(r) (causal ? vis0 + (r) : vis0)
    const int last = FL_SEEN(n - 1);
    for (int j0 = 0; j0 < last; j0 += FL_KEYS) {
        for (int r0 = 0; r0 < n; r0 += FL_RB) {
            const int rb = n - r0 < FL_RB ? n - r0 : FL_RB;
            /* the keys of the tile that rows r0 .. r0+rb-1 see: the same
             * count for all (one block), or, on the causal diagonal, a
             * count per row (one block of the rows that see any, each with
             * its own count) */
            int lo = FL_SEEN(r0) - j0, hi = FL_SEEN(r0 + rb - 1) - j0;
            lo = lo < FL_KEYS ? lo : FL_KEYS;
            hi = hi < FL_KEYS ? hi : FL_KEYS;
            if (lo == hi) {
                if (lo > 0) /* a tile no row sees is skipped */
                    flash_block_n(ctx + (size_t)r0 * ldc, ldc, q + (size_t)r0 * hd, m + r0,
                                  l + r0, rb, kt, ldk, v, hd, j0, lo, NULL, scale);
            } else {
                int ncr[FL_RB], r1 = r0; /* counts grow with the row: skip those of 0 */
                while (r1 < r0 + rb && FL_SEEN(r1) - j0 <= 0) r1++;
                if (r1 == r0 + rb) continue; /* a tile no row sees */
                for (int r = r1; r < r0 + rb; r++) {
                    const int nc = FL_SEEN(r) - j0;
                    ncr[r - r1] = nc < FL_KEYS ? nc : FL_KEYS;
                }
                flash_block_n(ctx + (size_t)r1 * ldc, ldc, q + (size_t)r1 * hd, m + r1, l + r1,
                              r0 + rb - r1, kt, ldk, v, hd, j0, hi, ncr, scale);
            }
        }
    }
    for (int r = 0; r < n; r++) {
        float *o = ctx + (size_t)r * ldc;
        if (FL_SEEN(r) <= 0) {
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            continue;
        }
        const float lr = l[r];
        for (int d = 0; d < hd; d++) o[d] = o[d] / lr;
    }
#undef FL_SEEN
}
