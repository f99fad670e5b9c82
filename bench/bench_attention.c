/* bench_attention: the per-key cost of one query row of attention (scores,
 * softmax, weighted sum of values) and the cost of a one-row matrix product,
 * with the library's kernels and with the code they replaced, in the same
 * process (so that the ratio holds on a busy machine).
 *
 * Usage: bench_attention [--repeat R]
 *
 * "previous" is the attention row as src/compute/attention.c computed it before the
 * kernels of src/compute/kernels.c were vectorized, reproduced here: keys and values
 * as rows [n, hd], per key a call of an 8-lane dot product, expf per key in
 * the softmax, per key a call of an axpy into the context. "kernels" is
 * kern_scores + kern_softmax + kern_wsum on the cache's transposed [hd, n]
 * blocks. Each time is the fastest of R runs; the checksum line says both
 * compute the same thing (max |difference| of the context).
 *
 * A second table times whole attention of GPT-2-small's shape (12 heads of
 * hd 64, causal, T = 512 and 1024, the context of every head): "rows" is
 * the per-row path attention.c had before the fused pass (per head and
 * query: kern_scores, kern_softmax, kern_wsum over the transposed cache, one
 * thread), "fused" is attn_attend_fused (kern_flash tiles, (head, query
 * tile) tasks) on 1 and 2 threads, with the ratios.
 *
 * A third table does the same for the activations and the norms:
 * "previous" is their double-precision code (libm erf, tanh and exp per
 * element; mean and variance in double), "kernels" the float versions. */
#include "compute/attention.h"
#include "compute/kernels.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* the thread's CPU time, for the activation and norm rows: a busy machine
 * preempts long calls, which CPU time does not count */
static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng_s = 7;
static float frand(void) {
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2 - 1);
}

/* ---- the previous code (functions in another file: not inlined) ---- */

NOINLINE static float prev_dot(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i] * b[i];
    float s0 = acc[0] + acc[4], s1 = acc[1] + acc[5], s2 = acc[2] + acc[6], s3 = acc[3] + acc[7];
    return ((s0 + s2) + (s1 + s3)) + tail;
}

NOINLINE static void prev_axpy(float *restrict y, float a, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

NOINLINE static void prev_softmax(float *row, int n) {
    float mx = row[0];
    for (int i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float e = expf(row[i] - mx);
        row[i] = e;
        sum += e;
    }
    double inv = 1.0 / sum;
    for (int i = 0; i < n; i++) row[i] = (float)(row[i] * inv);
}

static void prev_row(float *ctx, float *row, const float *q, const float *k, const float *v,
                     int n, int hd, float scale) {
    for (int j = 0; j < n; j++) row[j] = prev_dot(q, k + (size_t)j * hd, hd) * scale;
    prev_softmax(row, n);
    memset(ctx, 0, (size_t)hd * sizeof(float));
    for (int j = 0; j < n; j++) prev_axpy(ctx, row[j], v + (size_t)j * hd, hd);
}

NOINLINE static void prev_linear(float *restrict out, const float *restrict inp,
                                 const float *restrict weight, int C, int OC) {
    for (int o = 0; o < OC; o++) out[o] = prev_dot(inp, weight + (size_t)o * C, C) + 0.0f;
}

/* the activations and norms in double, as src/compute/kernels.c had them */
NOINLINE static void prev_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
    }
}

NOINLINE static void prev_gelu_tanh(float *x, size_t n) {
    const double k = sqrt(2.0 / M_PI);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
    }
}

NOINLINE static void prev_silu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(v / (1.0 + exp(-v)));
    }
}

NOINLINE static void prev_layernorm(float *out, const float *inp, const float *weight,
                                    const float *bias, int T, int C, double eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double mean = 0.0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        double var = 0.0;
        for (int i = 0; i < C; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var /= C;
        double rstd = 1.0 / sqrt(var + eps);
        for (int i = 0; i < C; i++) {
            double v = (x[i] - mean) * rstd * weight[i];
            if (bias) v += bias[i];
            y[i] = (float)v;
        }
    }
}

NOINLINE static void prev_rmsnorm(float *out, const float *inp, const float *weight, int T, int C,
                                  double eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int i = 0; i < C; i++) y[i] = (float)(x[i] * r * weight[i]);
    }
}

/* ---- the kernels ---- */

static void kern_row(float *ctx, float *row, const float *q, const float *kt, const float *vt,
                     int n, int hd, float scale) {
    kern_scores(row, q, kt, (size_t)n, n, hd, scale);
    kern_softmax(row, n, n);
    kern_wsum(ctx, row, vt, (size_t)n, n, hd);
}

/* fastest of `repeat` runs of `inner` calls, in ns per call (of clock) */
#define TIME_BEST_ON(clock, out, repeat, inner, call)                                          \
    do {                                                                                       \
        double best_ = INFINITY;                                                               \
        for (int r_ = 0; r_ < (repeat); r_++) {                                                \
            double t0_ = clock();                                                              \
            for (int i_ = 0; i_ < (inner); i_++) call;                                         \
            double t_ = (clock() - t0_) / (inner);                                             \
            if (t_ < best_) best_ = t_;                                                        \
        }                                                                                      \
        (out) = best_;                                                                         \
    } while (0)
#define TIME_BEST(out, repeat, inner, call) TIME_BEST_ON(now_ns, out, repeat, inner, call)
#define TIME_CPU(out, repeat, call) TIME_BEST_ON(cpu_ns, out, repeat, 1, call)

/* The previous attention of one sub-layer: per head h (kv head h), per
 * query t, the scores of its visible keys, their softmax and the weighted
 * sum of the values, in one reused row (attention.c's attend_by_rows).
 * concat is (T, H*hd), qh [H, T, hd], kt and vt [H, hd, T] transposed. */
static void rows_attention(float *concat, float *row, const float *qh, const float *kt,
                           const float *vt, int H, int T, int hd, float scale) {
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            const float *k = kt + (size_t)h * hd * T, *v = vt + (size_t)h * hd * T;
            kern_scores(row, qh + ((size_t)h * T + t) * hd, k, (size_t)T, t + 1, hd, scale);
            kern_softmax(row, t + 1, t + 1);
            kern_wsum(concat + ((size_t)t * H + h) * hd, row, v, (size_t)T, t + 1, hd);
        }
}

/* GPT-2-small's attention (12 heads, hd 64, causal) at T = 512 and 1024:
 * the previous row path against the fused pass on 1 and 2 threads. */
static int bench_gpt2_attention(int repeat) {
    enum { H = 12, HD = 64 };
    const int Ts[] = {512, 1024};
    const float scale = (float)(1.0 / sqrt((double)HD));
    printf("\nGPT-2-small attention: %d heads, hd %d, causal, the context of every head\n"
           "(ms, fastest of %d runs; rows = per query row kern_scores + kern_softmax +\n"
           "kern_wsum on one thread, as before; fused = attn_attend_fused)\n\n",
           H, HD, repeat);
    printf("%6s %10s %12s %12s %11s %11s %11s %11s\n", "T", "rows ms", "fused 1t ms",
           "fused 2t ms", "rows/f1", "rows/f2", "f1/f2", "max rel");
    for (size_t c = 0; c < sizeof Ts / sizeof Ts[0]; c++) {
        const int T = Ts[c];
        const size_t n = (size_t)H * T * HD;
        float *qh = malloc(sizeof(float) * n), *kt = malloc(sizeof(float) * n);
        float *vt = malloc(sizeof(float) * n), *c0 = malloc(sizeof(float) * n);
        float *c1 = malloc(sizeof(float) * n), *c2 = malloc(sizeof(float) * n);
        float *row = malloc(sizeof(float) * (size_t)T);
        attn_kv_cache kv = {0};
        attn_error err;
        if (!qh || !kt || !vt || !c0 || !c1 || !c2 || !row ||
            attn_kv_reserve(&kv, T, 0, T, H, HD, &err)) {
            fprintf(stderr, "bench_attention: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < n; i++) qh[i] = frand();
        /* the cache: keys [H, hd, cap] (= kt), values [H, cap, hd] (vt transposed) */
        for (int h = 0; h < H; h++)
            for (int i = 0; i < HD; i++)
                for (int t = 0; t < T; t++) {
                    const size_t at = ((size_t)h * HD + i) * T + t;
                    kt[at] = kv.k[((size_t)h * HD + i) * kv.cap + t] = frand();
                    vt[at] = kv.v[((size_t)h * kv.cap + t) * HD + i] = frand();
                }
        const attn_attn_params p = {.D = H * HD, .H = H, .KV = H, .hd = HD};
        double tr, t1, t2;
        TIME_BEST(tr, repeat, 1, rows_attention(c0, row, qh, kt, vt, H, T, HD, scale));
        attn_set_threads(1);
        TIME_BEST(t1, repeat, 1, attn_attend_fused(c1, qh, &p, &kv, T, 0, T, true));
        attn_set_threads(2);
        TIME_BEST(t2, repeat, 1, attn_attend_fused(c2, qh, &p, &kv, T, 0, T, true));
        attn_set_threads(0);
        double rel = 0, mag = 0;
        for (size_t i = 0; i < n; i++) mag = fmax(mag, fabs((double)c0[i]));
        for (size_t i = 0; i < n; i++) rel = fmax(rel, fabs((double)c0[i] - c1[i]) / mag);
        printf("%6d %10.2f %12.2f %12.2f %10.2fx %10.2fx %10.2fx %11.2g%s\n", T, tr / 1e6,
               t1 / 1e6, t2 / 1e6, tr / t1, tr / t2, t1 / t2, rel,
               memcmp(c1, c2, sizeof(float) * n) ? "  (1 and 2 threads DIFFER)" : "");
        free(qh), free(kt), free(vt), free(c0), free(c1), free(c2), free(row);
        attn_kv_free(&kv);
    }
    return 0;
}

/* the activation and norm shapes: a block of GPT-2's MLP hidden layer, and
 * rows of d_model 768 (the norms' source is the first NORM_T rows of it) */
enum { ACT_N = 64 * 3072, NORM_T = 64, NORM_C = 768 };

int main(int argc, char **argv) {
    int repeat = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || errno || v < 1 || v > INT_MAX) {
                fprintf(stderr, "bench_attention: --repeat: expected a positive integer\n");
                return 2;
            }
            repeat = (int)v;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("Usage: bench_attention [--repeat R]");
            return 0;
        } else {
            fprintf(stderr, "bench_attention: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }

    enum { MAXN = 512, MAXHD = 64 };
    float *k = malloc(sizeof(float) * MAXN * MAXHD), *v = malloc(sizeof(float) * MAXN * MAXHD);
    float *kt = malloc(sizeof(float) * MAXN * MAXHD), *vt = malloc(sizeof(float) * MAXN * MAXHD);
    float *row = malloc(sizeof(float) * MAXN), q[MAXHD], c1[MAXHD], c2[MAXHD];
    if (!k || !v || !kt || !vt || !row) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }

    printf("one query row of attention: scores + softmax + weighted sum of values\n"
           "(fastest of %d runs; ns per key per head; previous = per-key calls, expf, axpy)\n\n",
           repeat);
    printf("%4s %6s %14s %14s %9s %12s\n", "hd", "keys", "previous ns", "kernels ns", "speedup",
           "max |diff|");
    const int hds[] = {8, 64}, ns[] = {32, 64, 128, 256, 512};
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++) {
        const int hd = hds[a];
        const float scale = (float)(1.0 / sqrt((double)hd));
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int n = ns[b];
            for (int i = 0; i < hd; i++) q[i] = 2.0f * frand();
            for (int j = 0; j < n; j++)
                for (int i = 0; i < hd; i++) {
                    float x = 2.0f * frand(), y = frand();
                    k[(size_t)j * hd + i] = kt[(size_t)i * n + j] = x;
                    v[(size_t)j * hd + i] = vt[(size_t)i * n + j] = y;
                }
            const int inner = 1 + 20000 / (n * hd / 8);
            double tp, tk;
            TIME_BEST(tp, repeat, inner, prev_row(c1, row, q, k, v, n, hd, scale));
            TIME_BEST(tk, repeat, inner, kern_row(c2, row, q, kt, vt, n, hd, scale));
            double diff = 0;
            for (int i = 0; i < hd; i++) diff = fmax(diff, fabs((double)c1[i] - c2[i]));
            printf("%4d %6d %14.2f %14.2f %8.1fx %12.2g\n", hd, n, tp / n, tk / n, tp / tk, diff);
        }
    }

    printf("\none-row matrix product (a decoding step's projections), stories260K's shapes\n"
           "(ns per call; previous = one 8-lane dot product call per output)\n\n");
    printf("%6s %6s %14s %14s %9s\n", "C", "OC", "previous ns", "kernels ns", "speedup");
    const int shapes[][2] = {{64, 64}, {64, 32}, {64, 172}, {172, 64}, {64, 512}};
    float *w = malloc(sizeof(float) * 172 * 512), x[512], y1[512], y2[512];
    if (!w) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }
    for (int i = 0; i < 172 * 512; i++) w[i] = frand();
    for (int i = 0; i < 512; i++) x[i] = frand();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int C = shapes[s][0], OC = shapes[s][1];
        const int inner = 1 + 200000 / (C * OC);
        double tp, tk;
        TIME_BEST(tp, repeat, inner, prev_linear(y1, x, w, C, OC));
        TIME_BEST(tk, repeat, inner, kern_linear(y2, x, w, NULL, 1, C, OC));
        printf("%6d %6d %14.1f %14.1f %8.1fx\n", C, OC, tp, tk, tp / tk);
    }

    if (bench_gpt2_attention(repeat / 40 + 3)) return 1;

    printf("\nactivations (%d elements, std 2) and norms (%d rows of %d, mean 3, std 2)\n"
           "(CPU ns per element, the input copy included; previous = double precision and\n"
           "libm, as before)\n\n",
           ACT_N, NORM_T, NORM_C);
    printf("%-12s %14s %14s %9s %12s\n", "kernel", "previous ns", "kernels ns", "speedup",
           "max |diff|");
    float *src = malloc(sizeof(float) * ACT_N), *a1 = malloc(sizeof(float) * ACT_N);
    float *a2 = malloc(sizeof(float) * ACT_N), *nw = malloc(sizeof(float) * NORM_C);
    float *nb = malloc(sizeof(float) * NORM_C);
    if (!src || !a1 || !a2 || !nw || !nb) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }
    for (int i = 0; i < ACT_N; i++) src[i] = 2.0f * (frand() + frand() + frand());
    for (int i = 0; i < NORM_C; i++) nw[i] = 1.0f + 0.2f * frand(), nb[i] = 0.1f * frand();
    static const char *const kinds[] = {"gelu", "gelu_tanh", "silu", "layernorm", "rmsnorm"};
    for (int kind = 0; kind < 5; kind++) {
        double tp, tk;
        const int reps = repeat / 4 + 3;
        const size_t n = kind < 3 ? ACT_N : (size_t)NORM_T * NORM_C;
#define ACT_CALL(f, y) (memcpy((y), src, sizeof(float) * n), f((y), n))
        if (kind == 0) {
            TIME_CPU(tp, reps, ACT_CALL(prev_gelu, a1));
            TIME_CPU(tk, reps, ACT_CALL(kern_gelu, a2));
        } else if (kind == 1) {
            TIME_CPU(tp, reps, ACT_CALL(prev_gelu_tanh, a1));
            TIME_CPU(tk, reps, ACT_CALL(kern_gelu_tanh, a2));
        } else if (kind == 2) {
            TIME_CPU(tp, reps, ACT_CALL(prev_silu, a1));
            TIME_CPU(tk, reps, ACT_CALL(kern_silu, a2));
        } else if (kind == 3) {
            TIME_CPU(tp, reps, prev_layernorm(a1, src, nw, nb, NORM_T, NORM_C, 1e-5));
            TIME_CPU(tk, reps, kern_layernorm(a2, src, nw, nb, NORM_T, NORM_C, 1e-5));
        } else {
            TIME_CPU(tp, reps, prev_rmsnorm(a1, src, nw, NORM_T, NORM_C, 1e-5));
            TIME_CPU(tk, reps, kern_rmsnorm(a2, src, nw, NORM_T, NORM_C, 1e-5));
        }
#undef ACT_CALL
        double diff = 0;
        for (size_t i = 0; i < n; i++) diff = fmax(diff, fabs((double)a1[i] - a2[i]));
        printf("%-12s %14.3f %14.3f %8.1fx %12.2g\n", kinds[kind], tp / (double)n,
               tk / (double)n, tp / tk, diff);
    }
    free(k), free(v), free(kt), free(vt), free(row), free(w);
    free(src), free(a1), free(a2), free(nw), free(nb);
    return 0;
}
