/* gemm: the matrix product of every linear layer, out = inp W^T + b, as a
 * register-blocked, cache-blocked product of rows, with one micro-kernel per
 * instruction set chosen at run time.
 *
 *   out  [T, OC]   row-major
 *   inp  [T, C]    row-major (the activations, read in place)
 *   W    [OC, C]   row-major (PyTorch's layout, read in place: no packing,
 *                  so a single row, a decoding step, costs no more per
 *                  weight than a long input)
 *
 * Order of operations (kernels.h): every output element is the dot product
 * of an input row and a weight row in kern_dot's lanes, element i in lane
 * i % 16, in order within the lane, each step a fused multiply-add from +0,
 * then the 16 lanes added in kern_dot's tree, then the bias (+ 0.0f
 * without). It depends on nothing but the two rows: not on T, on the tile
 * or the block an element falls in, nor on the instruction set (the
 * baseline fuses with fmaf), so every clone and every split of the rows or
 * the columns between threads gives the same bytes.
 *
 * Blocking: the columns (weight rows) go in blocks that fit in L2
 * (GEMM_BLOCK_BYTES); inside a block the micro-kernel computes an MR x NR
 * tile of out (6 x 4 with AVX-512): MR input rows against NR weight rows, an
 * accumulator of 16 lanes for each of the MR * NR elements in registers, so
 * each loaded vector of inputs serves NR outputs and each vector of weights
 * MR. Rows longer than GEMM_KC_MAX go in K blocks: between blocks a tile's
 * accumulators wait in a small per-thread scratch (each lane still takes
 * its elements in order), so the MR input rows of the block stay in L1.
 * The final trees run on 16 accumulators at once in vectors (the same
 * additions as kern_dot's tree). Threads each take a run of columns: each
 * reads its part of the weights only. */
#include "compute/kernels.h"

#include "attn/attn.h"
#include "base/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define GEMM_X86 1
#include <immintrin.h>
#endif

#if defined(__GNUC__)
#define GEMM_INLINE static inline __attribute__((always_inline))
#else
#define GEMM_INLINE static inline
#endif

#define LANES 16
/* input row i's chunk of 16 elements from k (a multiple of 16) on */
#define A(i, k) (a + (size_t)(i) * ars + (size_t)(((k) - k0) / LANES) * aks)

/* kern_dot's tree over 16 lanes (kernels.h) */
GEMM_INLINE float tree16(const float *a) {
    float b[8], c[4];
    for (int l = 0; l < 8; l++) b[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) c[l] = b[l] + b[l + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/* One micro-kernel call: the elements k0 .. k1-1 of the dot products of the
 * m <= MR input rows with the n <= NR weight rows w + j * C. Input row i's
 * elements k .. k+15 (k a multiple of 16) are at A(i, k) = a + i * ars +
 * ((k - k0) / 16) * aks: ars = C, aks = 16 for rows in place (a is row 0's
 * element k0), ars = 16, aks = 16 m for rows packed chunk by chunk
 * (linear_cols).
 * The 16 lanes of element (i, j) start at +0 when k0 == 0, else they are
 * read from acc + (i * NR + j) * 16 (where the call for the K block before
 * left them); when k1 < C they are written back there, and when k1 == C
 * their tree + the bias (+ 0.0f without) goes to out[i * ldo + j]. k0 is a
 * multiple of 16, so every lane takes its elements in order across the
 * blocks: the bytes do not depend on the blocks. */
typedef void (*gemm_tile_fn)(int m, int n, const float *a, size_t ars, size_t aks, const float *w,
                             int C, int k0, int k1, float *acc, float *out, size_t ldo,
                             const float *bias);

typedef struct gemm_isa {
    const char *name;
    int mr, nr;
    gemm_tile_fn tile;
} gemm_isa;

/* The dispatch of a tile to the kernel compiled for its m and n: every
 * (m, n) gets its own code (TILE(m, n) with constants), so a short last
 * tile of rows, and the single row of a decoding step, cost only their own
 * rows. */
#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define GEMM_CASE_N(TILE, m, n)                                                                   \
    case n:                                                                                       \
        TILE(m, n, a, ars, aks, w, C, k0, k1, acc, out, ldo, bias);                               \
        break;
#define GEMM_N1(T, m) GEMM_CASE_N(T, m, 1)
#define GEMM_N2(T, m) GEMM_N1(T, m) GEMM_CASE_N(T, m, 2)
#define GEMM_N3(T, m) GEMM_N2(T, m) GEMM_CASE_N(T, m, 3)
#define GEMM_N4(T, m) GEMM_N3(T, m) GEMM_CASE_N(T, m, 4)
#define GEMM_N5(T, m) GEMM_N4(T, m) GEMM_CASE_N(T, m, 5)
#define GEMM_N6(T, m) GEMM_N5(T, m) GEMM_CASE_N(T, m, 6)
#define GEMM_CASE_M(TILE, m, NR)                                                                  \
    case m:                                                                                       \
        switch (n) { GEMM_CAT(GEMM_N, NR)(TILE, m) }                                              \
        break;
#define GEMM_M1(T, NR) GEMM_CASE_M(T, 1, NR)
#define GEMM_M2(T, NR) GEMM_M1(T, NR) GEMM_CASE_M(T, 2, NR)
#define GEMM_M3(T, NR) GEMM_M2(T, NR) GEMM_CASE_M(T, 3, NR)
#define GEMM_M4(T, NR) GEMM_M3(T, NR) GEMM_CASE_M(T, 4, NR)
#define GEMM_M5(T, NR) GEMM_M4(T, NR) GEMM_CASE_M(T, 5, NR)
#define GEMM_M6(T, NR) GEMM_M5(T, NR) GEMM_CASE_M(T, 6, NR)
#define GEMM_M7(T, NR) GEMM_M6(T, NR) GEMM_CASE_M(T, 7, NR)
#define GEMM_M8(T, NR) GEMM_M7(T, NR) GEMM_CASE_M(T, 8, NR)
#define GEMM_M9(T, NR) GEMM_M8(T, NR) GEMM_CASE_M(T, 9, NR)
#define GEMM_TILES(name, TILE, MR, NR, target)                                                    \
    target static void name(int m, int n, const float *a, size_t ars, size_t aks, const float *w, \
                            int C, int k0, int k1, float *acc, float *out, size_t ldo,           \
                            const float *bias) {                                                  \
        switch (m) { GEMM_CAT(GEMM_M, MR)(TILE, NR) }                                             \
    }

/* ---- the portable baseline: 16 lanes of fmaf ---- */
#define BASE_MR 2
#define BASE_NR 2

GEMM_INLINE void base_tile(const int m, const int n, const float *a, size_t ars, size_t aks,
                           const float *w, int C, int k0, int k1, float *acc, float *out,
                           size_t ldo, const float *bias) {
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            float *lane = acc + (i * BASE_NR + j) * LANES;
            if (k0 == 0) memset(lane, 0, sizeof(float) * LANES);
            const float *y = w + (size_t)j * C;
            for (int k = k0; k < k1; k++)
                lane[k % LANES] = fmaf(A(i, k)[k % LANES], y[k], lane[k % LANES]);
            if (k1 == C) out[(size_t)i * ldo + j] = tree16(lane) + (bias ? bias[j] : 0.0f);
        }
}
GEMM_TILES(tile_base, base_tile, BASE_MR, BASE_NR, )

#if GEMM_X86
/* ---- AVX2 + FMA: 3 x 2 outputs, each 16 lanes in two ymm registers ---- */
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_MR 3
#define AVX2_NR 2

/* kern_dot's tree of up to 8 outputs at once, each given as b[o] = its low
 * 8 lanes + its high 8 (tree16's first level), lane for lane the same
 * additions as tree16: level 2 adds the 128-bit halves of b (c[l] = b[l] +
 * b[l + 4], two outputs a vector), level 3 the pairs c[0] + c[2], c[1] +
 * c[3] (four a vector), level 4 their sum (eight a vector); r[o] for o <
 * cnt. */
AVX2 GEMM_INLINE void avx2_trees(const __m256 *b, int cnt, float *r) {
    __m256 v[8], c[4], g[2];
#pragma GCC unroll 8
    for (int o = 0; o < 8; o++) v[o] = o < cnt ? b[o] : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) /* low half: output 2e, high half: 2e + 1 */
        c[e] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * e], v[2 * e + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * e], v[2 * e + 1], 0x31));
#pragma GCC unroll 2
    for (int f = 0; f < 2; f++) /* per half: c0 + c2, c1 + c3 of two outputs */
        g[f] = _mm256_add_ps(_mm256_shuffle_ps(c[2 * f], c[2 * f + 1], 0x44),
                             _mm256_shuffle_ps(c[2 * f], c[2 * f + 1], 0xEE));
    /* element k holds output 2k (k < 4) or 2(k - 4) + 1 */
    const __m256 z = _mm256_add_ps(_mm256_shuffle_ps(g[0], g[1], 0x88),
                                   _mm256_shuffle_ps(g[0], g[1], 0xDD));
    float t[8];
    _mm256_storeu_ps(t, _mm256_permutevar8x32_ps(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    for (int o = 0; o < cnt; o++) r[o] = t[o];
}

AVX2 GEMM_INLINE void avx2_tile(const int m, const int n, const float *a, size_t ars,
                                size_t aks, const float *w, int C, int k0, int k1, float *acc,
                                float *out, size_t ldo, const float *bias) {
    __m256 lo[AVX2_MR][AVX2_NR], hi[AVX2_MR][AVX2_NR];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            const float *s = acc + (i * AVX2_NR + j) * LANES;
            lo[i][j] = k0 ? _mm256_load_ps(s) : _mm256_setzero_ps();
            hi[i][j] = k0 ? _mm256_load_ps(s + 8) : _mm256_setzero_ps();
        }
    int k = k0;
    /* the low and the high 8 lanes are independent chains: one half at a
     * time keeps 12 accumulators + 2 weights + 1 input in the 16 registers */
    for (; k + LANES <= k1; k += LANES) {
        __m256 y[AVX2_NR];
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) y[j] = _mm256_loadu_ps(w + (size_t)j * C + k);
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            const __m256 x = _mm256_loadu_ps(A(i, k));
#pragma GCC unroll 8
            for (int j = 0; j < n; j++) lo[i][j] = _mm256_fmadd_ps(x, y[j], lo[i][j]);
        }
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) y[j] = _mm256_loadu_ps(w + (size_t)j * C + k + 8);
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            const __m256 x = _mm256_loadu_ps(A(i, k) + 8);
#pragma GCC unroll 8
            for (int j = 0; j < n; j++) hi[i][j] = _mm256_fmadd_ps(x, y[j], hi[i][j]);
        }
    }
    if (k < k1) { /* the tail (C % 16 elements), zero past C: a zero lane
                   * adds fma(0, 0, acc) = acc, exactly */
        const int rest = k1 - k;
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), idx);
        const __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest - 8), idx);
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            const float *x = A(i, k);
            const __m256 xl = _mm256_maskload_ps(x, mlo), xh = _mm256_maskload_ps(x + 8, mhi);
#pragma GCC unroll 8
            for (int j = 0; j < n; j++) {
                const float *y = w + (size_t)j * C + k;
                lo[i][j] = _mm256_fmadd_ps(xl, _mm256_maskload_ps(y, mlo), lo[i][j]);
                hi[i][j] = _mm256_fmadd_ps(xh, _mm256_maskload_ps(y + 8, mhi), hi[i][j]);
            }
        }
    }
    if (k1 < C) {
#pragma GCC unroll 8
        for (int i = 0; i < m; i++)
#pragma GCC unroll 8
            for (int j = 0; j < n; j++) {
                float *s = acc + (i * AVX2_NR + j) * LANES;
                _mm256_store_ps(s, lo[i][j]);
                _mm256_store_ps(s + 8, hi[i][j]);
            }
        return;
    }
    __m256 b[AVX2_MR * AVX2_NR];
    float r[AVX2_MR * AVX2_NR];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) b[i * n + j] = _mm256_add_ps(lo[i][j], hi[i][j]);
    avx2_trees(b, m * n, r);
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) out[(size_t)i * ldo + j] = r[i * n + j] + (bias ? bias[j] : 0.0f);
}
_Static_assert(AVX2_MR * AVX2_NR <= 8, "avx2_trees takes up to 8 outputs");
GEMM_TILES(tile_avx2, avx2_tile, AVX2_MR, AVX2_NR, AVX2)

/* ---- AVX-512: MR x NR outputs, each 16 lanes in one zmm register ---- */
#define AVX512 __attribute__((target("avx512f")))
#define AVX512_MR 6
#define AVX512_NR 4

/* kern_dot's tree of 16 accumulators at once, lane for lane the same
 * additions as tree16: level 1 pairs the 256-bit halves of two vectors
 * (b[l] = a[l] + a[l + 8] of both), level 2 the 128-bit quarters of two of
 * those (c[l] = b[l] + b[l + 4] of four), level 3 the pairs within the
 * quarters (c[0] + c[2], c[1] + c[3] of eight), level 4 the last sum of
 * sixteen. The sum of v[4e + q] ends in element 4q + e. */
AVX512 GEMM_INLINE __m512 avx512_pair(__m512 a, __m512 b, int level) {
    switch (level) {
    case 1:
        return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    case 2:
        return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
    case 3:
        return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xEE));
    default:
        return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD));
    }
}

/* r[q] = tree16 of v[q] for q < cnt (r has room for cnt rounded up to 16) */
AVX512 GEMM_INLINE void avx512_trees(const __m512 *v, int cnt, float *r) {
    for (int g = 0; g < cnt; g += 16) {
        __m512 p[8], q[4], u[2];
#pragma GCC unroll 8
        for (int e = 0; e < 8; e++) {
            const __m512 a = g + 2 * e < cnt ? v[g + 2 * e] : _mm512_setzero_ps();
            const __m512 b = g + 2 * e + 1 < cnt ? v[g + 2 * e + 1] : _mm512_setzero_ps();
            p[e] = avx512_pair(a, b, 1);
        }
#pragma GCC unroll 4
        for (int e = 0; e < 4; e++) q[e] = avx512_pair(p[2 * e], p[2 * e + 1], 2);
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) u[e] = avx512_pair(q[2 * e], q[2 * e + 1], 3);
        const __m512 z = avx512_pair(u[0], u[1], 4);
        /* element 4 l + e holds the sum of v[g + 4 e + l] */
        const __m512i back = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        _mm512_storeu_ps(r + g, _mm512_permutexvar_ps(back, z));
    }
}

AVX512 GEMM_INLINE void avx512_tile(const int m, const int n, const float *a, size_t ars,
                                    size_t aks, const float *w, int C, int k0, int k1, float *acc,
                                    float *out, size_t ldo, const float *bias) {
    __m512 s[AVX512_MR][AVX512_NR];
#pragma GCC unroll 9
    for (int i = 0; i < m; i++)
#pragma GCC unroll 9
        for (int j = 0; j < n; j++)
            s[i][j] = k0 ? _mm512_load_ps(acc + (i * AVX512_NR + j) * LANES) : _mm512_setzero_ps();
    int k = k0;
    for (; k + LANES <= k1; k += LANES) {
        __m512 y[AVX512_NR];
#pragma GCC unroll 9
        for (int j = 0; j < n; j++) y[j] = _mm512_loadu_ps(w + (size_t)j * C + k);
#pragma GCC unroll 9
        for (int i = 0; i < m; i++) {
            const __m512 x = _mm512_loadu_ps(A(i, k));
#pragma GCC unroll 9
            for (int j = 0; j < n; j++) s[i][j] = _mm512_fmadd_ps(x, y[j], s[i][j]);
        }
    }
    if (k < k1) { /* masked loads: the lanes past C are 0 and leave s as it is */
        const __mmask16 mask = (__mmask16)((1u << (k1 - k)) - 1);
        __m512 y[AVX512_NR];
#pragma GCC unroll 9
        for (int j = 0; j < n; j++) y[j] = _mm512_maskz_loadu_ps(mask, w + (size_t)j * C + k);
#pragma GCC unroll 9
        for (int i = 0; i < m; i++) {
            const __m512 x = _mm512_maskz_loadu_ps(mask, A(i, k));
#pragma GCC unroll 9
            for (int j = 0; j < n; j++) s[i][j] = _mm512_fmadd_ps(x, y[j], s[i][j]);
        }
    }
    if (k1 < C) {
#pragma GCC unroll 9
        for (int i = 0; i < m; i++)
#pragma GCC unroll 9
            for (int j = 0; j < n; j++) _mm512_store_ps(acc + (i * AVX512_NR + j) * LANES, s[i][j]);
        return;
    }
    __m512 v[AVX512_MR * AVX512_NR];
    float r[AVX512_MR * AVX512_NR + 15];
#pragma GCC unroll 9
    for (int i = 0; i < m; i++)
#pragma GCC unroll 9
        for (int j = 0; j < n; j++) v[i * n + j] = s[i][j];
    avx512_trees(v, m * n, r);
#pragma GCC unroll 9
    for (int i = 0; i < m; i++)
#pragma GCC unroll 9
        for (int j = 0; j < n; j++) out[(size_t)i * ldo + j] = r[i * n + j] + (bias ? bias[j] : 0.0f);
}
GEMM_TILES(tile_avx512, avx512_tile, AVX512_MR, AVX512_NR, AVX512)
#endif

static const gemm_isa isas[] = {
#if GEMM_X86
    {"avx512", AVX512_MR, AVX512_NR, tile_avx512},
    {"avx2", AVX2_MR, AVX2_NR, tile_avx2},
#endif
    {"baseline", BASE_MR, BASE_NR, tile_base},
};
#define N_ISAS ((int)(sizeof isas / sizeof isas[0]))

static bool isa_runs(const gemm_isa *isa) {
#if GEMM_X86
    if (strcmp(isa->name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(isa->name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    (void)isa;
    return true;
}

const char *kern_linear_isa_name(int i) { return i >= 0 && i < N_ISAS ? isas[i].name : NULL; }

bool kern_linear_isa_runs(int i) { return i >= 0 && i < N_ISAS && isa_runs(&isas[i]); }

int kern_linear_isa_best(void) {
    static int best = -1; /* a benign race: every thread finds the same */
    if (best < 0) {
        int i = 0;
        while (i < N_ISAS - 1 && !isa_runs(&isas[i])) i++;
        best = i;
    }
    return best;
}

/* Blocking. A row of up to GEMM_KC_MAX elements is not split; a longer one
 * goes in K blocks of GEMM_KC (a multiple of 16), so that the MR input rows
 * of a tile stay in L1 while the tiles of a column block pass. The column
 * block: NB weight rows (a multiple of NR), at most GEMM_BLOCK_BYTES of
 * them (they stay in L2 while every input row passes) and at most the
 * scratch's worth of accumulators. Measured on bench_gemm (bench/README.md). */
#define GEMM_KC_MAX 1024
#define GEMM_KC 512
#define GEMM_BLOCK_BYTES (1024 * 1024)
#define GEMM_SCRATCH_FLOATS (16 * 1024)
#define GEMM_MR_MAX 6 /* the largest MR of the micro-kernels */
_Static_assert(BASE_MR <= GEMM_MR_MAX, "the pack buffer holds MR rows");
#if GEMM_X86
_Static_assert(AVX2_MR <= GEMM_MR_MAX && AVX512_MR <= GEMM_MR_MAX, "the pack buffer holds MR rows");
#endif

/* Are the input rows of C elements packed for the micro-kernel (see
 * linear_cols)? */
static bool pack_rows(int C) { return C % 256 == 0 && C >= 1024; }

/* Columns o0 .. o1-1 of out, every row. */
static void linear_cols(const gemm_isa *isa, float *out, const float *inp, const float *weight,
                        const float *bias, int T, int C, int OC, int o0, int o1) {
    _Alignas(64) float acc[GEMM_SCRATCH_FLOATS];
    /* The input rows of a tile, packed chunk by chunk for its K block (the
     * chunk of 16 elements of each row in turn) when their length is a
     * multiple of 1 KiB (C = 1024, 2048, 3072): in place, element k of
     * every row then falls in the same L1 set, and the MR input rows with
     * the NR weight rows evict each other (C = 3072 ran at 70% of the rate
     * of C = 3088). Copying changes no value and no order: the same bytes. */
    _Alignas(64) float pack[GEMM_MR_MAX * GEMM_KC_MAX];
    const bool packed = pack_rows(C);
    const int mr = isa->mr, nr = isa->nr;
    const int kc = C > GEMM_KC_MAX ? GEMM_KC : C;
    size_t row_bytes = (size_t)(C > 0 ? C : 1) * sizeof(float);
    int nb = (int)(GEMM_BLOCK_BYTES / row_bytes) / nr * nr;
    if (kc < C && nb > GEMM_SCRATCH_FLOATS / (mr * LANES) / nr * nr)
        nb = GEMM_SCRATCH_FLOATS / (mr * LANES) / nr * nr;
    if (nb < nr) nb = nr;
    for (int ob = o0; ob < o1; ob += nb) {
        const int oe = o1 - ob < nb ? o1 : ob + nb;
        for (int t = 0; t < T; t += mr) {
            const int m = T - t < mr ? T - t : mr;
            for (int k0 = 0; k0 < C || k0 == 0; k0 += kc) {
                const int k1 = C - k0 < kc ? C : k0 + kc;
                const float *a = inp + (size_t)t * C + k0;
                size_t ars = (size_t)C, aks = LANES;
                if (packed && m > 1) { /* k1 - k0 is a multiple of 16 */
                    float *d = pack;
                    for (int k = k0; k < k1; k += LANES)
                        for (int i = 0; i < m; i++, d += LANES) {
                            const float *src = inp + (size_t)(t + i) * C + k;
                            for (int e = 0; e < LANES; e++) d[e] = src[e];
                        }
                    a = pack;
                    ars = LANES;
                    aks = (size_t)m * LANES;
                }
                for (int o = ob; o < oe; o += nr) {
                    const int n = oe - o < nr ? oe - o : nr;
                    float *s = kc < C ? acc + (size_t)(o - ob) / nr * mr * nr * LANES : acc;
                    isa->tile(m, n, a, ars, aks, weight + (size_t)o * C, C, k0, k1, s,
                              out + (size_t)t * OC + o, (size_t)OC, bias ? bias + o : NULL);
                }
                if (C == 0) break;
            }
        }
    }
}

void kern_linear_isa(int which, float *restrict out, const float *restrict inp,
                     const float *restrict weight, const float *restrict bias, int T, int C, int OC) {
    linear_cols(&isas[which], out, inp, weight, bias, T, C, OC, 0, OC);
}

/* Below this many multiply-adds a product runs on one thread: starting the
 * others would cost more than it saves. */
#define GEMM_THREAD_MIN_WORK (1 << 20)

void kern_linear(float *restrict out, const float *restrict inp, const float *restrict weight,
                 const float *restrict bias, int T, int C, int OC) {
    const gemm_isa *isa = &isas[kern_linear_isa_best()];
    /* each thread takes a run of columns (weight rows): it reads only its
     * part of the weights, and writes whole cache lines of out (the parts
     * are multiples of 16 columns). Each element is computed whole by one
     * thread, in the documented order: the split changes nothing in the
     * bytes. */
    const int units = (OC + 15) / 16;
    const int threads = attn_threads_for((double)T * C * OC, GEMM_THREAD_MIN_WORK, units);
    if (threads <= 1) {
        linear_cols(isa, out, inp, weight, bias, T, C, OC, 0, OC);
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    {
        const int id = omp_get_thread_num(), nt = omp_get_num_threads();
        const int o0 = (int)((long)units * id / nt) * 16;
        const int o1 = id == nt - 1 ? OC : (int)((long)units * (id + 1) / nt) * 16;
        linear_cols(isa, out, inp, weight, bias, T, C, OC, o0, o1);
    }
#else
    linear_cols(isa, out, inp, weight, bias, T, C, OC, 0, OC);
#endif
}
