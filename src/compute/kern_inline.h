/* Private: the scalar building blocks shared by compute/kernels.c and
 * compute/flash.c, inlined into every instruction set's code: kern_dot's
 * tree of 16 lanes and kern_exp's steps (the vector versions of flash.c
 * use the same constants, operation for operation). */
#ifndef ATTN_KERN_INLINE_H
#define ATTN_KERN_INLINE_H

#include <stdint.h>
#include <string.h>

/* kern_exp's constants: the clamp, the rounding shifter (1.5 * 2^23), 1/ln2,
 * ln2 in two parts (Cody-Waite) and P (Cephes expf) */
#define KEXP_LO (-110.0f)
#define KEXP_HI 100.0f
#define KEXP_SHIFT 12582912.0f
#define KEXP_LOG2E 1.44269504088896341f
#define KEXP_LN2_HI 0.693359375f
#define KEXP_LN2_LO (-2.12194440e-4f)
#define KEXP_P0 1.9875691500e-4f
#define KEXP_P1 1.3981999507e-3f
#define KEXP_P2 8.3334519073e-3f
#define KEXP_P3 4.1665795894e-2f
#define KEXP_P4 1.6666665459e-1f
#define KEXP_P5 5.0000001201e-1f


/* The helpers below are inlined into each clone (a helper that is not would
 * be compiled for the baseline only). */
#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* kern_dot's order: element i goes to lane i % 16 (in order within the
 * lane, from +0), then the 16 lanes are added in a fixed tree: kern_dot,
 * kern_wsum and the norms' sums (kernels.c), kern_linear's lanes (gemm.c)
 * and the sums of kern_flash's exponentials (flash.c). A lane never holds
 * -0 (it starts at +0, and x + y is -0 only when both are), so neither does
 * the result. */
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
    float p = KEXP_P0;
    p = p * r + KEXP_P1;
    p = p * r + KEXP_P2;
    p = p * r + KEXP_P3;
    p = p * r + KEXP_P4;
    p = p * r + KEXP_P5;
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
    x = select_f32(x < KEXP_LO, KEXP_LO, x);
    x = select_f32(x > KEXP_HI, KEXP_HI, x);
    const float shifter = KEXP_SHIFT;
    float t = x * KEXP_LOG2E + shifter;
    float kf = t - shifter; /* round(x / ln2), as a float */
    float r = x - kf * KEXP_LN2_HI;
    r = r - kf * KEXP_LN2_LO;
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

#endif
