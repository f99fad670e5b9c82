/* flash: attention's scores and its fused pass (FlashAttention's online
 * softmax, kern_flash), one version per instruction set, chosen at run time
 * (kern_linear's sets and test: AVX-512, AVX2 + FMA, the baseline).
 *
 * Order of operations (kernels.h): a score is one chain of fused
 * multiply-adds over the head's dimensions in order, from +0, times the
 * scale; a tile's weighted sum of values is one chain of fused multiply-adds
 * over its keys in order, from +0; a tile's sum of exponentials goes in 16
 * lanes (key c in lane c % 16) added in kern_dot's tree. Vectors run
 * independent keys (scores) or dimensions (values) side by side, never the
 * terms of one chain, so the vector width changes no byte: each set below is
 * the one body (compute/flash_isa.h) over its own vectors, and the baseline
 * runs it on scalars with fmaf.
 *
 * The blocks: 4 query rows against 64 keys (AVX-512: 16 accumulators of 16
 * keys, each key vector loaded once for the 4 rows); the weighted sum keeps
 * 4 rows x 64 dimensions. */
#include "compute/kernels.h"

#include "compute/kern_inline.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(ATTN_NO_CLONES)
#define FLASH_X86 1
#include <immintrin.h>
#endif

#define FL_KEYS KERN_FLASH_KEYS
#define FL_RB 4 /* query rows of a register block */
#if defined(__GNUC__)
#define FL_ALIGNED __attribute__((aligned(64)))
#else
#define FL_ALIGNED
#endif

/* kern_exp, element for element (kern_inline.h) */
ALWAYS_INLINE float fl_exp1(float x) { return exp_approx(x); }
ALWAYS_INLINE float fl_tree16(const float *lane) { return tree16(lane); }

/* ---- the baseline: scalars, fmaf ---- */

#define FL_ISA(x) x##_base
#define FL_FN ALWAYS_INLINE
#define FL_API static
#define FL_W 1
#define FL_SV 4
#define FL_DV 4
#define vf float
#define FL_ZERO() 0.0f
#define FL_SET1(x) (x)
#define FL_LOAD(p) (*(p))
#define FL_STORE(p, x) (*(p) = (x))
#define FL_LOADN(p, n) ((n) > 0 ? *(p) : 0.0f)
#define fl_mask int
#define FL_MASK(n) ((n) > 0)
#define FL_LOADM(p, m) ((m) ? *(p) : 0.0f)
#define FL_STOREN(p, x, n) ((n) > 0 ? (void)(*(p) = (x)) : (void)0)
#define FL_ADD(a, b) ((a) + (b))
#define FL_SUB(a, b) ((a) - (b))
#define FL_MUL(a, b) ((a) * (b))
#define FL_DIV(a, b) ((a) / (b))
#define FL_FMA(a, b, c) fmaf(a, b, c)
#define FL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FL_EXP(x) fl_exp1(x)
#define FL_SCALAR 1 /* fl_exp1 itself */
#include "compute/flash_isa.h"

#if FLASH_X86
/* ---- AVX2 + FMA: 8 floats ---- */

#define AVX2 __attribute__((target("avx2,fma")))

/* the lanes below n set: the mask of maskload / maskstore */
AVX2 static inline __m256i avx2_first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* y 2^n, n from the low bits of t (exp_scaled's scale_2n, in two halves) */
AVX2 static inline __m256 scale_2n_avx2(__m256 y, __m256 t) {
    const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    const __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    const __m256i b1 = _mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23);
    const __m256i b2 = _mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(b1)), _mm256_castsi256_ps(b2));
}

#define FL_ISA(x) x##_avx2
#define FL_FN static inline __attribute__((always_inline, target("avx2,fma")))
#define FL_API AVX2 static
#define FL_W 8
#define FL_SV 2
#define FL_DV 2
#define vf __m256
#define FL_ZERO() _mm256_setzero_ps()
#define FL_SET1(x) _mm256_set1_ps(x)
#define FL_LOAD(p) _mm256_loadu_ps(p)
#define FL_STORE(p, x) _mm256_storeu_ps(p, x)
#define FL_LOADN(p, n) _mm256_maskload_ps(p, avx2_first(n))
#define fl_mask __m256i
#define FL_MASK(n) avx2_first(n)
#define FL_LOADM(p, m) _mm256_maskload_ps(p, m)
#define FL_STOREN(p, x, n) _mm256_maskstore_ps(p, avx2_first(n), x)
#define FL_ADD(a, b) _mm256_add_ps(a, b)
#define FL_SUB(a, b) _mm256_sub_ps(a, b)
#define FL_MUL(a, b) _mm256_mul_ps(a, b)
#define FL_DIV(a, b) _mm256_div_ps(a, b)
#define FL_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define FL_MAX(a, b) _mm256_max_ps(a, b)
#define FL_MIN(a, b) _mm256_min_ps(a, b)
#define FL_SCALE_2N(y, t) scale_2n_avx2(y, t)
#define FL_EXP(x) FL_ISA(exp)(x)
#include "compute/flash_isa.h"

/* ---- AVX-512: 16 floats ---- */

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/* the lanes below n set (none for n <= 0, all for n >= 16) */
AVX512 static inline __mmask16 avx512_first(int n) {
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u);
}

AVX512 static inline __m512 scale_2n_avx512(__m512 y, __m512 t) {
    const __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    const __m512i n1 = _mm512_srai_epi32(n, 1), n2 = _mm512_sub_epi32(n, n1);
    const __m512i b1 = _mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23);
    const __m512i b2 = _mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(_mm512_mul_ps(y, _mm512_castsi512_ps(b1)), _mm512_castsi512_ps(b2));
}

#define FL_ISA(x) x##_avx512
#define FL_FN static inline __attribute__((always_inline, target("avx512f,avx2,fma")))
#define FL_API AVX512 static
#define FL_W 16
#define FL_SV 4
#define FL_DV 4
#define vf __m512
#define FL_ZERO() _mm512_setzero_ps()
#define FL_SET1(x) _mm512_set1_ps(x)
#define FL_LOAD(p) _mm512_loadu_ps(p)
#define FL_STORE(p, x) _mm512_storeu_ps(p, x)
#define FL_LOADN(p, n) _mm512_maskz_loadu_ps(avx512_first(n), p)
#define fl_mask __mmask16
#define FL_MASK(n) avx512_first(n)
#define FL_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define FL_STOREN(p, x, n) _mm512_mask_storeu_ps(p, avx512_first(n), x)
#define FL_ADD(a, b) _mm512_add_ps(a, b)
#define FL_SUB(a, b) _mm512_sub_ps(a, b)
#define FL_MUL(a, b) _mm512_mul_ps(a, b)
#define FL_DIV(a, b) _mm512_div_ps(a, b)
#define FL_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define FL_MAX(a, b) _mm512_max_ps(a, b)
#define FL_MIN(a, b) _mm512_min_ps(a, b)
#define FL_SCALE_2N(y, t) scale_2n_avx512(y, t)
#define FL_EXP(x) FL_ISA(exp)(x)
#include "compute/flash_isa.h"
#endif

/* ---- dispatch ---- */

typedef void (*flash_fn)(float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                         const float *restrict q, int n, int vis0, bool causal,
                         const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                         float scale);
typedef void (*scores_fn)(float *restrict s, const float *restrict q, const float *restrict kt,
                          size_t ldk, int n, int hd, float scale);

typedef struct flash_isa {
    const char *name; /* as kern_linear_isa_name */
    flash_fn flash;
    scores_fn scores;
} flash_isa;

static const flash_isa isas[] = {
#if FLASH_X86
    {"avx512", flash_avx512, scores_row_avx512},
    {"avx2", flash_avx2, scores_row_avx2},
#endif
    {"baseline", flash_base, scores_row_base},
};
#define N_ISAS ((int)(sizeof isas / sizeof isas[0]))

/* The set kern_linear uses, by name (the baseline when this build lacks it). */
static const flash_isa *isa_of(int which) {
    const char *name = kern_linear_isa_name(which);
    for (int i = 0; name && i < N_ISAS; i++)
        if (strcmp(isas[i].name, name) == 0) return &isas[i];
    return &isas[N_ISAS - 1];
}

static const flash_isa *best_isa(void) {
    static const flash_isa *best; /* a benign race: every thread finds the same */
    if (!best) best = isa_of(kern_linear_isa_best());
    return best;
}

void kern_flash(float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                const float *restrict q, int n, int vis0, bool causal, const float *restrict kt,
                size_t ldk, const float *restrict v, int hd, float scale) {
    if (n <= 0) return;
    best_isa()->flash(ctx, ldc, sout, lds, q, n, vis0, causal, kt, ldk, v, hd, scale);
}

void kern_scores(float *restrict s, const float *restrict q, const float *restrict kt,
                 size_t ldk, int n, int hd, float scale) {
    best_isa()->scores(s, q, kt, ldk, n, hd, scale);
}

void kern_flash_isa(int which, float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                    const float *restrict q, int n, int vis0, bool causal,
                    const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                    float scale) {
    if (n <= 0) return;
    isa_of(which)->flash(ctx, ldc, sout, lds, q, n, vis0, causal, kt, ldk, v, hd, scale);
}

void kern_scores_isa(int which, float *restrict s, const float *restrict q,
                     const float *restrict kt, size_t ldk, int n, int hd, float scale) {
    isa_of(which)->scores(s, q, kt, ldk, n, hd, scale);
}
