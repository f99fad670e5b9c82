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
 * (GEMM_BLOCK_BYTES), and inside a block the micro-kernel computes an
 * MR x NR tile of out: MR input rows against NR weight rows, an accumulator
 * of 16 lanes for each of the MR * NR elements held in registers across the
 * whole of C, so each loaded vector of inputs serves NR outputs and each
 * vector of weights MR. */
#include "compute/kernels.h"

#include "attn/attn.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

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
/* A block of weight rows that stays in L2 while every input row passes. */
#define GEMM_BLOCK_BYTES (192 * 1024)

/* kern_dot's tree over 16 lanes (kernels.h) */
GEMM_INLINE float tree16(const float *a) {
    float b[8], c[4];
    for (int l = 0; l < 8; l++) b[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) c[l] = b[l] + b[l + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/* One micro-kernel: out[i * ldo + j] = dot(a + i * C, w + j * C) (no bias)
 * for i < m, j < n, m <= MR, n <= NR. */
typedef void (*gemm_tile_fn)(int m, int n, const float *a, const float *w, int C, float *out,
                             size_t ldo);

typedef struct gemm_isa {
    const char *name;
    int mr, nr;
    gemm_tile_fn tile;
} gemm_isa;

/* The dispatch of a tile to the kernel compiled for its m and n: every
 * (m, n) gets its own code (TILE(m, n) with constants), so a short last
 * tile of rows, and the single row of a decoding step, cost only their own
 * rows. */
#define GEMM_CASE_N(TILE, m, n)                                                                   \
    case n:                                                                                       \
        TILE(m, n, a, w, C, out, ldo);                                                            \
        break;
#define GEMM_CASE_M(TILE, m, NCASES)                                                              \
    case m:                                                                                       \
        switch (n) { NCASES(TILE, m) }                                                            \
        break;
#define GEMM_N2(T, m) GEMM_CASE_N(T, m, 1) GEMM_CASE_N(T, m, 2)
#define GEMM_N3(T, m) GEMM_N2(T, m) GEMM_CASE_N(T, m, 3)
#define GEMM_N4(T, m) GEMM_N3(T, m) GEMM_CASE_N(T, m, 4)
#define GEMM_N6(T, m) GEMM_N4(T, m) GEMM_CASE_N(T, m, 5) GEMM_CASE_N(T, m, 6)
#define GEMM_TILES(name, TILE, MCASES, target)                                                    \
    target static void name(int m, int n, const float *a, const float *w, int C, float *out,     \
                            size_t ldo) {                                                         \
        switch (m) { MCASES(TILE) }                                                               \
    }

/* ---- the portable baseline: 16 lanes of fmaf ---- */
#define BASE_MR 2
#define BASE_NR 2

GEMM_INLINE void base_tile(const int m, const int n, const float *a, const float *w, int C,
                           float *out, size_t ldo) {
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            float acc[LANES] = {0};
            const float *x = a + (size_t)i * C, *y = w + (size_t)j * C;
            for (int k = 0; k < C; k++) acc[k % LANES] = fmaf(x[k], y[k], acc[k % LANES]);
            out[(size_t)i * ldo + j] = tree16(acc);
        }
}
#define BASE_M(T) GEMM_CASE_M(T, 1, GEMM_N2) GEMM_CASE_M(T, 2, GEMM_N2)
GEMM_TILES(tile_base, base_tile, BASE_M, )

#if GEMM_X86
/* ---- AVX2 + FMA: 3 x 2 outputs, each 16 lanes in two ymm registers ---- */
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_MR 3
#define AVX2_NR 2

/* The tail of a row (C % 16 elements) as two vectors, zero past C: a zero
 * lane adds fma(0, 0, acc) = acc, exactly. */
AVX2 GEMM_INLINE void avx2_tail(const float *p, int rest, __m256 *lo, __m256 *hi) {
    float t[LANES] = {0};
    memcpy(t, p, sizeof(float) * (size_t)rest);
    *lo = _mm256_loadu_ps(t);
    *hi = _mm256_loadu_ps(t + 8);
}

AVX2 GEMM_INLINE void avx2_store(__m256 lo, __m256 hi, float *dst) {
    float t[LANES];
    _mm256_storeu_ps(t, lo);
    _mm256_storeu_ps(t + 8, hi);
    *dst = tree16(t);
}

AVX2 GEMM_INLINE void avx2_tile(const int m, const int n, const float *a, const float *w, int C,
                                float *out, size_t ldo) {
    __m256 lo[AVX2_MR][AVX2_NR], hi[AVX2_MR][AVX2_NR];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) lo[i][j] = hi[i][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + LANES <= C; k += LANES) {
        __m256 xl[AVX2_MR], xh[AVX2_MR];
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            xl[i] = _mm256_loadu_ps(a + (size_t)i * C + k);
            xh[i] = _mm256_loadu_ps(a + (size_t)i * C + k + 8);
        }
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            const __m256 wl = _mm256_loadu_ps(w + (size_t)j * C + k);
            const __m256 wh = _mm256_loadu_ps(w + (size_t)j * C + k + 8);
#pragma GCC unroll 8
            for (int i = 0; i < m; i++) {
                lo[i][j] = _mm256_fmadd_ps(xl[i], wl, lo[i][j]);
                hi[i][j] = _mm256_fmadd_ps(xh[i], wh, hi[i][j]);
            }
        }
    }
    if (k < C) {
        __m256 xl[AVX2_MR], xh[AVX2_MR];
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) avx2_tail(a + (size_t)i * C + k, C - k, &xl[i], &xh[i]);
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            __m256 wl, wh;
            avx2_tail(w + (size_t)j * C + k, C - k, &wl, &wh);
#pragma GCC unroll 8
            for (int i = 0; i < m; i++) {
                lo[i][j] = _mm256_fmadd_ps(xl[i], wl, lo[i][j]);
                hi[i][j] = _mm256_fmadd_ps(xh[i], wh, hi[i][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) avx2_store(lo[i][j], hi[i][j], out + (size_t)i * ldo + j);
}
#define AVX2_M(T) GEMM_CASE_M(T, 1, GEMM_N2) GEMM_CASE_M(T, 2, GEMM_N2) GEMM_CASE_M(T, 3, GEMM_N2)
GEMM_TILES(tile_avx2, avx2_tile, AVX2_M, AVX2)

/* ---- AVX-512: 4 x 6 outputs, each 16 lanes in one zmm register ---- */
#define AVX512 __attribute__((target("avx512f")))
#define AVX512_MR 4
#define AVX512_NR 6

AVX512 GEMM_INLINE float avx512_tree(__m512 v) {
    float t[LANES];
    _mm512_storeu_ps(t, v);
    return tree16(t);
}

AVX512 GEMM_INLINE void avx512_tile(const int m, const int n, const float *a, const float *w,
                                    int C, float *out, size_t ldo) {
    __m512 acc[AVX512_MR][AVX512_NR];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + LANES <= C; k += LANES) {
        __m512 x[AVX512_MR];
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) x[i] = _mm512_loadu_ps(a + (size_t)i * C + k);
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            const __m512 y = _mm512_loadu_ps(w + (size_t)j * C + k);
#pragma GCC unroll 8
            for (int i = 0; i < m; i++) acc[i][j] = _mm512_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    if (k < C) { /* masked loads: the lanes past C are 0 and leave acc as it is */
        const __mmask16 mask = (__mmask16)((1u << (C - k)) - 1);
        __m512 x[AVX512_MR];
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) x[i] = _mm512_maskz_loadu_ps(mask, a + (size_t)i * C + k);
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) {
            const __m512 y = _mm512_maskz_loadu_ps(mask, w + (size_t)j * C + k);
#pragma GCC unroll 8
            for (int i = 0; i < m; i++) acc[i][j] = _mm512_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) out[(size_t)i * ldo + j] = avx512_tree(acc[i][j]);
}
#define AVX512_M(T)                                                                               \
    GEMM_CASE_M(T, 1, GEMM_N6) GEMM_CASE_M(T, 2, GEMM_N6) GEMM_CASE_M(T, 3, GEMM_N6)             \
    GEMM_CASE_M(T, 4, GEMM_N6)
GEMM_TILES(tile_avx512, avx512_tile, AVX512_M, AVX512)
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

/* Columns per block: a multiple of NR whose weight rows fit the block. */
static int block_cols(int C, int nr) {
    size_t row_bytes = (size_t)(C > 0 ? C : 1) * sizeof(float);
    int block = (int)(GEMM_BLOCK_BYTES / row_bytes) / nr * nr;
    return block < nr ? nr : block;
}

/* Rows per task of the threads: a multiple of every MR (2, 3, 4). */
#define GEMM_TASK_ROWS 48

/* Rows t0 .. t1-1 and columns o0 .. o1-1 of out, with the bias. */
static void linear_part(const gemm_isa *isa, float *out, const float *inp, const float *weight,
                        const float *bias, int t0, int t1, int o0, int o1, int C, int OC) {
    const int mr = isa->mr, nr = isa->nr;
    for (int t = t0; t < t1; t += mr) {
        const int m = t1 - t < mr ? t1 - t : mr;
        for (int o = o0; o < o1; o += nr) {
            const int n = o1 - o < nr ? o1 - o : nr;
            isa->tile(m, n, inp + (size_t)t * C, weight + (size_t)o * C, C,
                      out + (size_t)t * OC + o, (size_t)OC);
        }
    }
    for (int t = t0; t < t1; t++) {
        float *row = out + (size_t)t * OC;
        for (int o = o0; o < o1; o++) row[o] = row[o] + (bias ? bias[o] : 0.0f);
    }
}

void kern_linear_isa(int which, float *restrict out, const float *restrict inp,
                     const float *restrict weight, const float *restrict bias, int T, int C, int OC) {
    const gemm_isa *isa = &isas[which];
    const int block = block_cols(C, isa->nr);
    for (int o0 = 0; o0 < OC; o0 += block)
        linear_part(isa, out, inp, weight, bias, 0, T, o0, OC - o0 < block ? OC : o0 + block, C,
                    OC);
}

/* ---- threads ---- */

static _Atomic int thread_setting; /* attn_set_threads; 0: the online cores */

void attn_set_threads(int n) { thread_setting = n > 0 ? (n < ATTN_THREADS_MAX ? n : ATTN_THREADS_MAX) : 0; }

int attn_threads(void) {
    int n = thread_setting;
    if (n > 0) return n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > ATTN_THREADS_MAX ? ATTN_THREADS_MAX : (int)cores;
}

/* Below this many multiply-adds a product runs on one thread: starting the
 * others would cost more than it saves. */
#define GEMM_THREAD_MIN_WORK (1 << 20)

void kern_linear(float *restrict out, const float *restrict inp, const float *restrict weight,
                 const float *restrict bias, int T, int C, int OC) {
    const gemm_isa *isa = &isas[kern_linear_isa_best()];
    const int block = block_cols(C, isa->nr);
    const int n_cols = (OC + block - 1) / block, n_rows = (T + GEMM_TASK_ROWS - 1) / GEMM_TASK_ROWS;
    const int tasks = n_cols * n_rows;
    int threads = (double)T * C * OC < GEMM_THREAD_MIN_WORK ? 1 : attn_threads();
    if (threads > tasks) threads = tasks;
    /* each element is computed whole by one task, in the documented order:
     * the split changes nothing in the bytes */
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int task = 0; task < tasks; task++) {
        const int c = task % n_cols, r = task / n_cols;
        const int o0 = c * block, t0 = r * GEMM_TASK_ROWS;
        linear_part(isa, out, inp, weight, bias, t0,
                    T - t0 < GEMM_TASK_ROWS ? T : t0 + GEMM_TASK_ROWS, o0,
                    OC - o0 < block ? OC : o0 + block, C, OC);
    }
    (void)threads;
}
