/* Kernels against naive double-precision implementations written here, on
 * random inputs with fixed seeds. Each test prints its measured max error. */
#include "compute/kernels.h"
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *randn(tu_rng *r, size_t n, double scale) {
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(tu_rng_normal(r) * scale);
    return p;
}

START_TEST(test_linear) {
    tu_rng r = {11};
    const int T = 13, C = 300, OC = 37;
    float *x = randn(&r, (size_t)T * C, 1.0), *w = randn(&r, (size_t)OC * C, 0.5);
    float *b = randn(&r, OC, 1.0), *y = malloc(sizeof(float) * T * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        kern_linear(y, x, w, with_bias ? b : NULL, T, C, OC);
        double maxrel = 0;
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++) {
                double ref = with_bias ? b[o] : 0.0, mag = with_bias ? fabs(b[o]) : 0.0;
                for (int i = 0; i < C; i++) {
                    ref += (double)x[t * C + i] * w[o * C + i];
                    mag += fabs((double)x[t * C + i] * w[o * C + i]);
                }
                /* relative to the sum of magnitudes (the condition of the sum) */
                double rel = fabs(y[t * OC + o] - ref) / mag;
                if (rel > maxrel) maxrel = rel;
            }
        printf("linear C=%d bias=%d: max error / sum|x w| = %.3g (tolerance 1e-6)\n", C, with_bias,
               maxrel);
        ck_assert_double_lt(maxrel, 1e-6);
    }
    free(x), free(w), free(b), free(y);
}
END_TEST

/* Output rows do not depend on how many rows are computed together (the
 * property that lets threads split rows): row t alone == row t of the batch,
 * byte for byte, for sizes around the tile and vector widths. */
START_TEST(test_linear_rows_independent) {
    tu_rng r = {12};
    const int T = 19, OC = 11;
    for (int C = 1; C <= 41; C += 5) {
        float *x = randn(&r, (size_t)T * C, 1.0), *w = randn(&r, (size_t)OC * C, 1.0);
        float *b = randn(&r, OC, 1.0);
        float *all = malloc(sizeof(float) * T * OC), *one = malloc(sizeof(float) * OC);
        kern_linear(all, x, w, b, T, C, OC);
        for (int t = 0; t < T; t++) {
            kern_linear(one, x + (size_t)t * C, w, b, 1, C, OC);
            ck_assert_int_eq(memcmp(one, all + (size_t)t * OC, sizeof(float) * OC), 0);
        }
        free(x), free(w), free(b), free(all), free(one);
    }
}
END_TEST

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* kern_linear's documented order, written out plainly: kern_dot's lanes,
 * each a chain of fmaf from +0, kern_dot's tree, then + bias (+ 0.0f). */
static float ref_linear_elem(const float *x, const float *w, const float *b, int o, int C) {
    float lane[16] = {0};
    for (int k = 0; k < C; k++) lane[k % 16] = fmaf(x[k], w[(size_t)o * C + k], lane[k % 16]);
    float p[8], q[4];
    for (int l = 0; l < 8; l++) p[l] = lane[l] + lane[l + 8];
    for (int l = 0; l < 4; l++) q[l] = p[l] + p[l + 4];
    return ((q[0] + q[2]) + (q[1] + q[3])) + (b ? b[o] : 0.0f);
}

/* Every instruction set this CPU runs gives the bytes of the documented
 * order, for sizes around the micro-tiles (2 x 2, 3 x 2, 4 x 6), the 16 lanes and
 * the cache blocks, with and without bias. So all of them give
 * the same bytes on any machine that runs them. */
START_TEST(test_linear_isas_same_bytes) {
    tu_rng r = {13};
    const int Ts[] = {1, 2, 3, 5, 9};
    /* 1100, 3000, 3072: rows in K blocks of 512 (kern_linear above 1024),
     * 1100 and 3000 with a last block that is not a multiple of 16; 1024,
     * 2048, 3072: input rows packed for the micro-kernel (a multiple of 1 KiB) */
    const int Cs[] = {1, 15, 16, 17, 255, 1024, 1100, 2048, 3000, 3072};
    const int OCs[] = {1, 5, 7, 13, 64, 70};
    int ran = 0;
    for (int isa = 0; kern_linear_isa_name(isa); isa++) {
        if (!kern_linear_isa_runs(isa)) {
            printf("linear: %s does not run on this CPU (skipped)\n", kern_linear_isa_name(isa));
            continue;
        }
        ran++;
        long compared = 0;
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++)
                for (size_t oi = 0; oi < sizeof OCs / sizeof OCs[0]; oi++) {
                    const int T = Ts[ti], C = Cs[ci], OC = OCs[oi];
                    float *x = randn(&r, (size_t)T * C, 1.0), *w = randn(&r, (size_t)OC * C, 0.3);
                    float *b = randn(&r, OC, 1.0), *y = malloc(sizeof(float) * T * OC);
                    ck_assert_ptr_nonnull(y);
                    const bool bias = (ti + oi) % 2 == 0;
                    kern_linear_isa(isa, y, x, w, bias ? b : NULL, T, C, OC);
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < OC; o++) {
                            float want = ref_linear_elem(x + (size_t)t * C, w, bias ? b : NULL, o, C);
                            ck_assert_msg(same_bits(y[(size_t)t * OC + o], want),
                                          "%s T=%d C=%d OC=%d t=%d o=%d: %a != %a",
                                          kern_linear_isa_name(isa), T, C, OC, t, o,
                                          (double)y[(size_t)t * OC + o], (double)want);
                            compared++;
                        }
                    free(x), free(w), free(b), free(y);
                }
        printf("linear: %s gives the documented bytes (%ld elements)\n", kern_linear_isa_name(isa),
               compared);
    }
    ck_assert_int_ge(ran, 1);
    /* kern_linear takes the widest that runs (the list goes widest first) */
    int first = 0;
    while (!kern_linear_isa_runs(first)) first++;
    ck_assert_int_eq(kern_linear_isa_best(), first);
    printf("linear: this CPU uses %s\n", kern_linear_isa_name(first));
}
END_TEST

/* kern_linear on 1, 2 and 3 threads (each a run of the columns, and the
 * K blocks of a long row) gives the bytes of the documented order, and the
 * rows of T = 64 are the rows of T = 1. */
START_TEST(test_linear_threads_same_bytes) {
    tu_rng r = {14};
    const int shapes[][3] = {{64, 3072, 100}, {64, 1100, 70}, {64, 768, 200}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int T = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
        float *x = randn(&r, (size_t)T * C, 1.0), *w = randn(&r, (size_t)OC * C, 0.3);
        float *b = randn(&r, OC, 1.0), *y = malloc(sizeof(float) * T * OC);
        ck_assert_ptr_nonnull(y);
        for (int threads = 1; threads <= 3; threads++) {
            attn_set_threads(threads);
            for (int rows = T; rows >= 1; rows = rows == T ? 1 : 0) {
                for (int t0 = 0; t0 < T; t0 += rows)
                    kern_linear(y + (size_t)t0 * OC, x + (size_t)t0 * C, w, b, rows, C, OC);
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < OC; o++) {
                        float want = ref_linear_elem(x + (size_t)t * C, w, b, o, C);
                        ck_assert_msg(same_bits(y[(size_t)t * OC + o], want),
                                      "threads=%d rows=%d C=%d OC=%d t=%d o=%d: %a != %a",
                                      threads, rows, C, OC, t, o,
                                      (double)y[(size_t)t * OC + o], (double)want);
                    }
            }
        }
        attn_set_threads(0);
        free(x), free(w), free(b), free(y);
    }
    printf("linear: 1, 2 and 3 threads, T = 64 and T = 1, give the documented bytes\n");
}
END_TEST

/* kern_dot's documented order, written out plainly: element i in lane
 * i % 16 (from +0, in order), then the fixed tree. The library's kernels run
 * in the SIMD version picked for this machine; this is plain scalar code. */
static float ref_dot_order(const float *a, const float *b, size_t stride_b, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i++) acc[i % 16] += a[i] * b[(size_t)i * stride_b];
    float t8[8], t4[4];
    for (int l = 0; l < 8; l++) t8[l] = acc[l] + acc[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}


START_TEST(test_dot_order) {
    tu_rng r = {14};
    for (int n = 0; n <= 70; n++) {
        float *a = randn(&r, n + 1, 1.0), *b = randn(&r, n + 1, 1.0);
        ck_assert_msg(same_bits(kern_dot(a, b, n), ref_dot_order(a, b, 1, n)), "n=%d", n);
        free(a), free(b);
    }
}
END_TEST

START_TEST(test_dot_small_sizes) {
    tu_rng r = {13};
    for (int n = 0; n <= 40; n++) {
        float *a = randn(&r, n + 1, 1.0), *b = randn(&r, n + 1, 1.0);
        double ref = 0, mag = 0;
        for (int i = 0; i < n; i++) ref += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
        double e = fabs(kern_dot(a, b, n) - ref);
        ck_assert_msg(e <= 1e-6 * mag + 1e-30, "n=%d error %g", n, e);
        free(a), free(b);
    }
}
END_TEST

static void ref_norm(double *out, const float *x, const float *w, const float *b, int C,
                     double eps, int rms) {
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) var += rms ? (double)x[i] * x[i] : (x[i] - mean) * (x[i] - mean);
    var /= C;
    for (int i = 0; i < C; i++)
        out[i] = (rms ? x[i] : x[i] - mean) / sqrt(var + eps) * w[i] + (b ? b[i] : 0.0);
}

/* LayerNorm and RMSNorm against float64, on rows of several widths and on
 * rows with a large offset (mean 1e3, std 1e-2: a one-pass float mean or
 * variance would be wrong by about 1e-3 / 1e-2 relative). The error of
 * output i, in units of 2^-24 (1 + |w_i| (1 + |xhat_i|) + |b_i|) for
 * LayerNorm (xhat the normalized value) and 2^-24 |ref_i| for RMSNorm,
 * must stay within kernels.h's KERN_NORM_ERR(C). */
START_TEST(test_norms) {
    tu_rng r = {21};
    const int widths[] = {1, 7, 16, 33, 64, 96, 768, 1000, 4096};
    const double offsets[][2] = {{0.0, 1.0}, {3.0, 2.0}, {1e3, 1e-2}, {-1e3, 1e-2}};
    for (size_t a = 0; a < sizeof widths / sizeof widths[0]; a++) {
        const int C = widths[a], T = 3;
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            float *x = randn(&r, (size_t)T * C, offsets[o][1]), *w = randn(&r, C, 1.0);
            float *b = randn(&r, C, 1.0), *y = malloc(sizeof(float) * T * C);
            double *ref = malloc(sizeof(double) * C);
            for (int i = 0; i < T * C; i++) x[i] += (float)offsets[o][0];
            double worst[3] = {0};
            for (int kind = 0; kind < 3; kind++) { /* layernorm+bias, no bias, rmsnorm */
                const double eps = kind == 2 ? 1e-6 : 1e-5;
                const float *bias = kind == 0 ? b : NULL;
                if (kind == 2) kern_rmsnorm(y, x, w, T, C, eps);
                else kern_layernorm(y, x, w, bias, T, C, eps);
                for (int t = 0; t < T; t++) {
                    ref_norm(ref, x + (size_t)t * C, w, bias, C, eps, kind == 2);
                    for (int i = 0; i < C; i++) {
                        double e = fabs(y[(size_t)t * C + i] - ref[i]), unit;
                        if (kind == 2) unit = fabs(ref[i]) + 1e-30;
                        else {
                            double bi = bias ? bias[i] : 0.0, xhat = (ref[i] - bi) / w[i];
                            unit = 1.0 + fabs(w[i]) * (1.0 + fabs(xhat)) + fabs(bi);
                        }
                        worst[kind] = fmax(worst[kind], e / (0x1p-24 * unit));
                    }
                }
            }
            if (C >= 64 || C == 33)
                printf("norms C=%d mean %g std %g: layernorm %.2f, no bias %.2f, rmsnorm %.2f "
                       "(x 2^-24 units; bound %.0f)\n",
                       C, offsets[o][0], offsets[o][1], worst[0], worst[1], worst[2],
                       KERN_NORM_ERR(C));
            for (int kind = 0; kind < 3; kind++)
                ck_assert_msg(worst[kind] <= KERN_NORM_ERR(C), "C=%d offset %g kind %d: %g", C,
                              offsets[o][0], kind, worst[kind]);
            free(x), free(w), free(b), free(y), free(ref);
        }
    }
}
END_TEST

/* Rows are normalized alone: row t of a batch == the row by itself, byte for
 * byte, and in place == out of place. */
START_TEST(test_norms_rows_independent) {
    tu_rng r = {22};
    for (int C = 1; C <= 70; C += 3) {
        const int T = 5;
        float *x = randn(&r, (size_t)T * C, 3.0), *w = randn(&r, C, 1.0), *b = randn(&r, C, 1.0);
        float *all = malloc(sizeof(float) * T * C), *one = malloc(sizeof(float) * C);
        for (int kind = 0; kind < 2; kind++) {
            if (kind) kern_rmsnorm(all, x, w, T, C, 1e-6);
            else kern_layernorm(all, x, w, b, T, C, 1e-5);
            for (int t = 0; t < T; t++) {
                if (kind) kern_rmsnorm(one, x + (size_t)t * C, w, 1, C, 1e-6);
                else kern_layernorm(one, x + (size_t)t * C, w, b, 1, C, 1e-5);
                ck_assert_int_eq(memcmp(one, all + (size_t)t * C, sizeof(float) * C), 0);
            }
            float *z = malloc(sizeof(float) * T * C);
            memcpy(z, x, sizeof(float) * T * C);
            if (kind) kern_rmsnorm(z, z, w, T, C, 1e-6);
            else kern_layernorm(z, z, w, b, T, C, 1e-5);
            ck_assert_int_eq(memcmp(z, all, sizeof(float) * T * C), 0);
            free(z);
        }
        free(x), free(w), free(b), free(all), free(one);
    }
}
END_TEST

/* ---- activations against float64, with kernels.h's bounds ---- */

enum { ACT_GELU, ACT_TANH, ACT_SILU, N_ACT };

static double act_two_u(double x) { return 2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x); }

/* float64 references, in forms that do not cancel (1 + erf(x) and
 * 1 + tanh(x) lose everything for x < -6 in double) */
static double act_ref(int f, double x) {
    if (isinf(x)) return x > 0 ? x : -0.0; /* the limits (the formulas give NaN) */
    if (f == ACT_GELU) return 0.5 * x * erfc(-x * M_SQRT1_2);
    if (f == ACT_TANH) return x / (1.0 + exp(-act_two_u(x)));
    return x / (1.0 + exp(-x));
}

static void act_run(int f, float *y, size_t n) {
    if (f == ACT_GELU) kern_gelu(y, n);
    else if (f == ACT_TANH) kern_gelu_tanh(y, n);
    else kern_silu(y, n);
}

/* the error of got against the reference at x divided by the documented
 * bound (<= 1 passes); NaN in gives NaN out, inf where the reference is */
static double act_score(int f, float x, float got) {
    const double ref = act_ref(f, x);
    if (isnan(x) || isnan(ref)) return isnan(got) ? 0.0 : INFINITY;
    if (fabs(ref) > FLT_MAX) return got == ref ? 0.0 : INFINITY;
    const double e = fabs(got - ref);
    if (e <= (f == ACT_TANH ? 0x1p-149 : 0.0)) return 0.0; /* (also where the bound is 0 * inf) */
    if (f == ACT_TANH)
        return (e - 0x1p-149) / (0x1p-24 * (1.0 + fabs(act_two_u(x))) * fabs(ref)) /
               KERN_GELU_TANH_ERR;
    if (fabs(ref) < FLT_MIN) return e / 0x1p-149 / (f == ACT_GELU ? KERN_GELU_SUB : KERN_SILU_SUB);
    int ex;
    frexp(ref, &ex);
    const double ulps = e / ldexp(1.0, ex - 24);
    if (f == ACT_GELU) return ulps / (x < -0.5f ? KERN_GELU_ULP : KERN_GELU_ULP_NEAR);
    return ulps / KERN_SILU_ULP;
}

START_TEST(test_activations) {
    static const char *const names[N_ACT] = {"gelu", "gelu_tanh", "silu"};
    const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, -FLT_MIN, 0x1p-149f,
                           -0x1p-149f, 0x1p-140f, -0x1p-126f, FLT_MAX, -FLT_MAX, 1e30f, -1e30f,
                           0.5f, -0.5f, 0.50000006f, -0.50000006f, 1.0f, -1.0f, 20.0f, -20.0f,
                           20.000002f, -20.000002f, -13.0f, -13.2f, -14.0f, -14.8f, -15.0f,
                           -9.0f, -9.3f, -10.0f, -87.3f, -88.8f, -91.9f, -103.0f, -110.0f,
                           -119.9f, -120.0f, -121.0f, 88.8f, 1e-7f, -1e-7f, 3.0f, -3.0f,
                           /* the worst cases of the exhaustive run */
                           0x1.392ad2p-1f, -0x1.baaf3ap+1f, -0x1.1dcf18p+3f, -0x1.9b0a48p+1f};
    const size_t n_edges = sizeof edges / sizeof edges[0];
    /* edges, random values (normal with std 3 and 10, uniform on [-25, 25])
     * and a stride through all bit patterns */
    const size_t n_rand = 30000, n_stride = 0x100000000ull / 65521 + 1;
    const size_t n = n_edges + n_rand + n_stride;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    tu_rng r = {31};
    size_t m = 0;
    for (size_t i = 0; i < n_edges; i++) x[m++] = edges[i];
    for (size_t i = 0; i < n_rand; i++)
        x[m++] = i % 3 == 2 ? 25.0f * tu_rng_signed(&r)
                            : (float)(tu_rng_normal(&r) * (i % 3 ? 10.0 : 3.0));
    for (size_t i = 0; i < n_stride; i++) {
        uint32_t u = (uint32_t)(i * 65521u + 7u);
        memcpy(&x[m++], &u, sizeof u);
    }
    for (int f = 0; f < N_ACT; f++) {
        memcpy(y, x, sizeof(float) * n);
        act_run(f, y, n);
        double worst = 0;
        float worst_x = 0, worst_y = 0;
        for (size_t i = 0; i < n; i++) {
            double s = act_score(f, x[i], y[i]);
            if (s > worst || (isnan(s) && !isnan(worst))) worst = s, worst_x = x[i], worst_y = y[i];
            /* one element alone gives the same bits as in the vector loop */
            if (i < n_edges + 200) {
                float one = x[i];
                act_run(f, &one, 1);
                ck_assert_msg(memcmp(&one, &y[i], sizeof one) == 0, "%s(%a) alone", names[f],
                              (double)x[i]);
            }
        }
        printf("%s: %zu values, max error %.3f of its bound (at x = %a)\n", names[f], n, worst,
               (double)worst_x);
        ck_assert_msg(worst <= 1.0, "%s(%a) = %a: %.3f of the bound", names[f], (double)worst_x,
                      (double)worst_y, worst);
    }
    /* exact values and signs */
    float v[] = {0.0f, -0.0f, INFINITY, -INFINITY, -1e30f};
    for (int f = 0; f < N_ACT; f++) {
        float z[5];
        memcpy(z, v, sizeof z);
        act_run(f, z, 5);
        ck_assert(z[0] == 0.0f && !signbit(z[0]) && z[1] == 0.0f && signbit(z[1]));
        ck_assert(z[2] == INFINITY && z[3] == 0.0f && signbit(z[3]) && z[4] == 0.0f);
    }
    /* relu */
    float *yr = malloc(sizeof(float) * n_rand);
    memcpy(yr, x + n_edges, sizeof(float) * n_rand);
    kern_relu(yr, n_rand);
    for (size_t i = 0; i < n_rand; i++)
        ck_assert(yr[i] == (x[n_edges + i] > 0 ? x[n_edges + i] : 0.0f));
    /* the two gelus differ (the test could tell them apart) */
    float a = 1.5f, b = 1.5f;
    kern_gelu(&a, 1);
    kern_gelu_tanh(&b, 1);
    ck_assert(a != b);
    free(x), free(y), free(yr);
}
END_TEST

START_TEST(test_softmax) {
    tu_rng r = {41};
    const int n = 50;
    double maxerr = 0, maxsum = 0;
    for (int trial = 0; trial < 40; trial++) {
        float *row = randn(&r, n, trial < 20 ? 2.0 : 30.0);
        if (trial % 3 == 0)
            for (int i = 0; i < n; i++) row[i] += 1000.0f; /* must not overflow */
        float orig[50];
        memcpy(orig, row, sizeof orig);
        int valid = 1 + trial % n;
        kern_softmax(row, valid, n);
        double mx = -INFINITY, sum = 0, got = 0;
        for (int i = 0; i < valid; i++) mx = fmax(mx, orig[i]);
        for (int i = 0; i < valid; i++) sum += exp((double)orig[i] - mx);
        for (int i = 0; i < valid; i++) {
            double ref = exp((double)orig[i] - mx) / sum;
            ck_assert(isfinite(row[i]));
            maxerr = fmax(maxerr, fabs(row[i] - ref));
            got += row[i];
        }
        for (int i = valid; i < n; i++) ck_assert(row[i] == 0.0f); /* masked: exactly 0 */
        maxsum = fmax(maxsum, fabs(got - 1.0));
        free(row);
    }
    printf("softmax: max abs error %.3g (tolerance 1e-6), max |row sum - 1| %.3g (1e-6)\n",
           maxerr, maxsum);
    ck_assert_double_lt(maxerr, 1e-6);
    ck_assert_double_lt(maxsum, 1e-6);
}
END_TEST

/* Every float x against exp((double)x), on a stride through all bit
 * patterns plus the edges; an exhaustive run over all 2^32 floats (done
 * when the kernel was written) gave 0.990 ulp and 0.75 of the smallest
 * subnormal. */
START_TEST(test_exp) {
    double max_ulp = 0, max_sub = 0;
    long checked = 0, bad = 0;
    float first_bad = 0;
    const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-30f, -1e-30f, 0.34657359f,
                           -0.34657359f, 88.72283f, 88.72284f, 88.7229f, -87.33654f, -87.3366f,
                           -103.27893f, -103.97208f, -103.9721f, -104.0f, -109.9f, -110.0f,
                           -110.1f, -150.0f, -1e4f, -1e30f, -3.4e38f, 100.0f, 1e30f};
    const size_t n_edges = sizeof edges / sizeof edges[0];
    /* (no ck_assert inside the loop: each one costs a system call) */
    for (uint64_t k = 0; k < 0x100000000ull / 257 + n_edges; k++) {
        float x;
        if (k < n_edges) x = edges[k];
        else {
            uint32_t u = (uint32_t)((k - n_edges) * 257u + 13u);
            memcpy(&x, &u, sizeof x);
        }
        if (isnan(x)) continue;
        double ref = exp((double)x);
        float got = kern_exp(x);
        bool ok;
        checked++;
        if (ref > FLT_MAX) {
            ok = isinf(got) && got > 0;
        } else if (ref < FLT_MIN) { /* subnormal or 0: within one subnormal step */
            double e = fabs(got - ref) / 0x1p-149;
            ok = e <= 1.0;
            if (e > max_sub) max_sub = e;
        } else {
            int ex;
            frexp(ref, &ex);
            double e = fabs(got - ref) / ldexp(1.0, ex - 24); /* in ulps of the exact value */
            ok = e <= 1.0;
            if (e > max_ulp) max_ulp = e;
        }
        if (!ok && bad++ == 0) first_bad = x;
    }
    printf("exp: %ld floats, max error %.3f ulp (tolerance 1), subnormal results %.3f steps "
           "(tolerance 1)\n", checked, max_ulp, max_sub);
    ck_assert_msg(bad == 0, "%ld wrong, the first exp(%a) = %a", bad, first_bad,
                  kern_exp(first_bad));
    ck_assert(kern_exp(0.0f) == 1.0f && kern_exp(-0.0f) == 1.0f);
    ck_assert(kern_exp(-INFINITY) == 0.0f && !signbit(kern_exp(-INFINITY)));
    ck_assert(isinf(kern_exp(INFINITY)));
    ck_assert(isnan(kern_exp(NAN)) && isnan(kern_exp(-NAN)));
}
END_TEST

/* kern_softmax == its documented computation written out plainly (kern_exp,
 * sum in double with 16 lanes and the tree), bit for bit, for every length
 * around the vector widths; masked entries exactly 0. */
START_TEST(test_softmax_order) {
    tu_rng r = {42};
    for (int n = 1; n <= 150; n++) {
        for (int kind = 0; kind < 3; kind++) {
            double scale = kind == 0 ? 1.0 : kind == 1 ? 20.0 : 300.0; /* 300: e^-x underflows */
            float *row = randn(&r, n, scale), *ref = malloc(sizeof(float) * n);
            int valid = kind == 2 ? 1 + (n * 7) % n : n;
            float mx = row[0];
            for (int i = 1; i < valid; i++) mx = row[i] > mx ? row[i] : mx;
            double acc[16] = {0};
            for (int i = 0; i < valid; i++) {
                ref[i] = kern_exp(row[i] - mx);
                acc[i % 16] += ref[i];
            }
            for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
            for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
            double inv = 1.0 / ((acc[0] + acc[2]) + (acc[1] + acc[3]));
            for (int i = 0; i < valid; i++) ref[i] = (float)(ref[i] * inv);
            for (int i = valid; i < n; i++) ref[i] = 0.0f;
            kern_softmax(row, valid, n);
            ck_assert_msg(memcmp(row, ref, sizeof(float) * n) == 0, "n=%d valid=%d", n, valid);
            free(row), free(ref);
        }
    }
}
END_TEST

/* Softmax rows with a huge spread (most weights underflow to exactly 0), a
 * single visible key, and equal scores. */
START_TEST(test_softmax_extremes) {
    float row[40];
    for (int i = 0; i < 40; i++) row[i] = -1000.0f * (float)i;
    kern_softmax(row, 40, 40);
    ck_assert(row[0] == 1.0f);
    for (int i = 1; i < 40; i++) ck_assert(row[i] == 0.0f && !signbit(row[i]));
    for (int i = 0; i < 40; i++) row[i] = (float)i * -3.0f;
    kern_softmax(row, 40, 40);
    double sum = 0;
    for (int i = 0; i < 40; i++) {
        double ref = exp(-3.0 * i) * (1 - exp(-3.0)) / (1 - exp(-120.0));
        /* 1e-7 relative, or two subnormal steps (the last ones are subnormal) */
        ck_assert_msg(fabs(row[i] - ref) <= 1e-7 * ref + 0x1p-148, "i=%d %g vs %g", i, row[i], ref);
        sum += row[i];
    }
    ck_assert_double_lt(fabs(sum - 1.0), 1e-6);
    row[0] = 7.5f;
    row[1] = 1e30f;
    kern_softmax(row, 1, 2); /* one visible key: weight 1, the masked one 0 */
    ck_assert(row[0] == 1.0f && row[1] == 0.0f);
    for (int i = 0; i < 33; i++) row[i] = 2.25f;
    kern_softmax(row, 33, 33);
    for (int i = 0; i < 33; i++) ck_assert(row[i] == row[0]);
    ck_assert_double_lt(fabs(row[0] * 33.0 - 1.0), 1e-6);
}
END_TEST

/* A score's documented chain, written out plainly: fmaf over the
 * dimensions in order from +0, times the scale; key j down a column of kt
 * (stride ld). */
static float ref_score(const float *q, const float *kt, size_t ld, int hd, float scale) {
    float acc = 0.0f;
    for (int i = 0; i < hd; i++) acc = fmaf(q[i], kt[(size_t)i * ld], acc);
    return acc * scale;
}

/* The instruction sets of this machine, by kern_linear's numbering: the
 * count, their numbers in isa[]. */
static int isas_here(int isa[8]) {
    int n = 0;
    for (int i = 0; kern_linear_isa_name(i) && n < 8; i++)
        if (kern_linear_isa_runs(i)) isa[n++] = i;
    return n;
}

/* kern_scores against the documented chain, bit for bit, on every
 * instruction set this machine runs, for head widths around the vector
 * widths and lengths around the blocks; the keys sit transposed in a [hd,
 * ld] block with ld > n. Zeros in q and -0 products included. */
START_TEST(test_scores) {
    tu_rng r = {61};
    const int hds[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 64, 65, 100, 128, 256};
    const int ns[] = {1, 2, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 300};
    int isa[8];
    const int n_isa = isas_here(isa);
    ck_assert_int_ge(n_isa, 1);
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int hd = hds[a], n = ns[b], ld = n + 5;
            float *q = randn(&r, hd, 1.0), *kt = randn(&r, (size_t)hd * ld, 1.0);
            float *s = malloc(sizeof(float) * n);
            ck_assert_ptr_nonnull(s);
            if (b % 3 == 0) /* zero queries against negative keys: -0 products */
                for (int i = 0; i < hd; i++) q[i] = i % 2 ? -0.0f : 0.0f;
            const float scale = (float)(1.0 / sqrt((double)hd));
            for (int k = 0; k <= n_isa; k++) {
                if (k < n_isa) kern_scores_isa(isa[k], s, q, kt, (size_t)ld, n, hd, scale);
                else kern_scores(s, q, kt, (size_t)ld, n, hd, scale);
                for (int j = 0; j < n; j++) {
                    float want = ref_score(q, kt + j, (size_t)ld, hd, scale);
                    ck_assert_msg(same_bits(s[j], want), "%s hd=%d n=%d j=%d: %a vs %a",
                                  k < n_isa ? kern_linear_isa_name(isa[k]) : "best", hd, n, j,
                                  (double)s[j], (double)want);
                }
            }
            free(q), free(kt), free(s);
        }
    for (int k = 0; k < n_isa; k++)
        printf("scores: %s gives the documented bytes\n", kern_linear_isa_name(isa[k]));
}
END_TEST

/* kern_wsum: ctx[d] == kern_dot(w, values of d, n) bit for bit, and close to
 * the double sum. */
START_TEST(test_wsum) {
    tu_rng r = {71};
    const int hds[] = {1, 3, 4, 5, 8, 16, 33, 64};
    const int ns[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 511};
    double maxrel = 0;
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int hd = hds[a], n = ns[b], ld = n + 3;
            float *w = randn(&r, n, 1.0), *vt = randn(&r, (size_t)hd * ld, 1.0);
            float ctx[64];
            kern_softmax(w, n, n);
            kern_wsum(ctx, w, vt, (size_t)ld, n, hd);
            for (int d = 0; d < hd; d++) {
                const float *v = vt + (size_t)d * ld;
                ck_assert_msg(same_bits(ctx[d], kern_dot(w, v, n)), "hd=%d n=%d d=%d", hd, n, d);
                double ref = 0, mag = 0;
                for (int j = 0; j < n; j++) ref += (double)w[j] * v[j], mag += fabs((double)w[j] * v[j]);
                maxrel = fmax(maxrel, fabs(ctx[d] - ref) / mag);
            }
            free(w), free(vt);
        }
    printf("wsum: max error / sum|w v| = %.3g (tolerance 1e-6)\n", maxrel);
    ck_assert_double_lt(maxrel, 1e-6);
}
END_TEST

/* kern_flash, the fused attention of one head: against softmax(q k^T *
 * scale) v in double within 1e-6 of sum_j w_j |v_jd| (the size of the
 * weighted sum), for head widths around the vector widths and key counts
 * around the key tiles, causal and not; a row's bytes are the same computed
 * alone (n = 1) or in a tile of KERN_FLASH_ROWS queries; and keys a row does
 * not see contribute exactly nothing: set to NaN (in the cache slack past
 * the keys, and past the row's own keys in its alone run) they change no byte. */
static void ref_attention_row(double *out, const float *q, const float *kt, size_t ld,
                              const float *v, int seen, int hd, float scale) {
    double *w = malloc(sizeof(double) * (size_t)seen), mx = -INFINITY, sum = 0;
    ck_assert_ptr_nonnull(w);
    for (int j = 0; j < seen; j++) {
        double d = 0;
        for (int i = 0; i < hd; i++) d += (double)q[i] * kt[(size_t)i * ld + j];
        w[j] = d * scale;
        mx = fmax(mx, w[j]);
    }
    for (int j = 0; j < seen; j++) sum += (w[j] = exp(w[j] - mx));
    for (int d = 0; d < hd; d++) out[d] = 0;
    for (int j = 0; j < seen; j++)
        for (int d = 0; d < hd; d++) out[d] += w[j] / sum * v[(size_t)j * hd + d];
    for (int d = 0; d < hd; d++) { /* out[hd + d]: sum_j w_j |v_jd| */
        out[hd + d] = 0;
        for (int j = 0; j < seen; j++) out[hd + d] += w[j] / sum * fabs(v[(size_t)j * hd + d]);
    }
    free(w);
}

/* kern_flash's documented order of one row (kernels.h), written out
 * plainly in scalars: tiles of KERN_FLASH_KEYS keys, the chain of each
 * score, the running max, kern_exp, the sum in 16 lanes and kern_dot's
 * tree, and fmaf chains for l and the values. */
static void ref_flash_row(float *out, const float *q, const float *kt, size_t ld, const float *v,
                          int seen, int hd, float scale, float *sout) {
    float m = 0, l = 0, s[KERN_FLASH_KEYS], o[300];
    ck_assert_int_le(hd, 300);
    for (int j0 = 0; j0 < seen; j0 += KERN_FLASH_KEYS) {
        const int nc = seen - j0 < KERN_FLASH_KEYS ? seen - j0 : KERN_FLASH_KEYS;
        const bool first = j0 == 0;
        for (int c = 0; c < nc; c++) s[c] = ref_score(q, kt + j0 + c, ld, hd, scale);
        if (sout) memcpy(sout + j0, s, sizeof(float) * (size_t)nc);
        float mt = s[0];
        for (int c = 1; c < nc; c++) mt = s[c] > mt ? s[c] : mt;
        const float mnew = first || mt > m ? mt : m;
        const float alpha = first ? 0.0f : kern_exp(m - mnew);
        m = mnew;
        float lane[16] = {0};
        for (int c = 0; c < nc; c++) lane[c % 16] += (s[c] = kern_exp(s[c] - mnew));
        float t8[8], t4[4];
        for (int u = 0; u < 8; u++) t8[u] = lane[u] + lane[u + 8];
        for (int u = 0; u < 4; u++) t4[u] = t8[u] + t8[u + 4];
        const float ts = (t4[0] + t4[2]) + (t4[1] + t4[3]);
        l = first ? ts : fmaf(l, alpha, ts);
        for (int d = 0; d < hd; d++) {
            float tv = 0.0f;
            for (int c = 0; c < nc; c++) tv = fmaf(s[c], v[(size_t)(j0 + c) * hd + d], tv);
            o[d] = first ? tv : fmaf(o[d], alpha, tv);
        }
    }
    for (int d = 0; d < hd; d++) out[d] = seen > 0 ? o[d] / l : 0.0f;
}

START_TEST(test_flash) {
    tu_rng r = {81};
    const int hds[] = {1, 2, 3, 8, 15, 16, 17, 32, 33, 64, 65, 128};
    const int tks[] = {1, 2, 5, 31, 32, 33, 63, 64, 65, 100, 129, 200};
    int isa[8];
    const int n_isa = isas_here(isa);
    double maxrel = 0;
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof tks / sizeof tks[0]; b++)
            for (int causal = 0; causal < 2; causal++) {
                const int hd = hds[a], Tk = tks[b], ld = Tk + 7;
                /* T queries at positions Tk - T .. Tk - 1 (causal) */
                const int T = Tk < 45 ? Tk : 45, pos0 = Tk - T;
                const float scale = (float)(1.0 / sqrt((double)hd));
                float *q = randn(&r, (size_t)T * hd, 1.0), *kt = randn(&r, (size_t)hd * ld, 1.0);
                float *v = randn(&r, (size_t)ld * hd, 1.0);
                float *ctx = malloc(sizeof(float) * (size_t)T * hd);
                float *kt1 = malloc(sizeof(float) * (size_t)hd * ld);
                float *v1 = malloc(sizeof(float) * (size_t)ld * hd);
                double *ref = malloc(sizeof(double) * 2 * (size_t)hd);
                float *want = malloc(sizeof(float) * (size_t)hd);
                float *sc = malloc(sizeof(float) * (size_t)T * Tk), *sref = malloc(sizeof(float) * Tk);
                ck_assert(ctx && kt1 && v1 && ref && want && sc && sref);
                for (int i = 0; i < hd; i++)
                    for (int j = Tk; j < ld; j++) kt[(size_t)i * ld + j] = NAN;
                for (size_t e = (size_t)Tk * hd; e < (size_t)ld * hd; e++) v[e] = NAN;
                /* the queries in tiles of KERN_FLASH_ROWS, the rows ldc = hd + 3 apart, the
                 * columns between the rows poisoned: they must stay as they are */
                const size_t ldc = (size_t)hd + 3;
                float *wide = malloc(sizeof(float) * (size_t)T * ldc);
                ck_assert_ptr_nonnull(wide);
                for (int k = 0; k <= n_isa; k++) {
                    for (size_t e = 0; e < (size_t)T * ldc; e++) wide[e] = NAN;
                    for (int t0 = 0; t0 < T; t0 += KERN_FLASH_ROWS) {
                        const int n = T - t0 < KERN_FLASH_ROWS ? T - t0 : KERN_FLASH_ROWS;
                        float *so = k % 2 ? sc + (size_t)t0 * Tk : NULL; /* with scores, or not */
                        if (k < n_isa)
                            kern_flash_isa(isa[k], wide + (size_t)t0 * ldc, ldc, so, (size_t)Tk,
                                           q + (size_t)t0 * hd, n, causal ? pos0 + t0 + 1 : Tk,
                                           causal, kt, (size_t)ld, v, hd, scale);
                        else
                            kern_flash(wide + (size_t)t0 * ldc, ldc, so, (size_t)Tk,
                                       q + (size_t)t0 * hd, n, causal ? pos0 + t0 + 1 : Tk,
                                       causal, kt, (size_t)ld, v, hd, scale);
                    }
                    const char *name = k < n_isa ? kern_linear_isa_name(isa[k]) : "best";
                    for (int t = 0; t < T; t++) {
                        const int seen = causal ? pos0 + t + 1 : Tk;
                        ref_flash_row(want, q + (size_t)t * hd, kt, (size_t)ld, v, seen, hd,
                                      scale, sref);
                        for (int d = 0; d < hd; d++)
                            ck_assert_msg(same_bits(wide[(size_t)t * ldc + d], want[d]),
                                          "%s hd=%d Tk=%d causal=%d row %d d %d: %a != %a", name,
                                          hd, Tk, causal, t, d,
                                          (double)wide[(size_t)t * ldc + d], (double)want[d]);
                        for (size_t d = (size_t)hd; d < ldc && t + 1 < T; d++)
                            ck_assert_msg(isnan(wide[(size_t)t * ldc + d]), "%s: wrote past hd",
                                          name);
                        if (k % 2)
                            ck_assert_msg(memcmp(sc + (size_t)t * Tk, sref,
                                                 sizeof(float) * (size_t)seen) == 0,
                                          "%s hd=%d Tk=%d row %d: scores", name, hd, Tk, t);
                    }
                }
                for (int t = 0; t < T; t++) {
                    const int seen = causal ? pos0 + t + 1 : Tk;
                    /* alone, with every key it does not see poisoned */
                    memcpy(kt1, kt, sizeof(float) * (size_t)hd * ld);
                    memcpy(v1, v, sizeof(float) * (size_t)ld * hd);
                    for (int i = 0; i < hd; i++)
                        for (int j = seen; j < ld; j++) kt1[(size_t)i * ld + j] = NAN;
                    for (size_t e = (size_t)seen * hd; e < (size_t)ld * hd; e++) v1[e] = NAN;
                    kern_flash(ctx + (size_t)t * hd, (size_t)hd, NULL, 0, q + (size_t)t * hd, 1,
                               seen, causal, kt1, (size_t)ld, v1, hd, scale);
                    ck_assert_msg(memcmp(ctx + (size_t)t * hd, wide + (size_t)t * ldc,
                                         sizeof(float) * (size_t)hd) == 0,
                                  "hd=%d Tk=%d causal=%d row %d: alone != in its tile", hd, Tk,
                                  causal, t);
                    ref_attention_row(ref, q + (size_t)t * hd, kt, (size_t)ld, v, seen, hd,
                                      scale);
                    for (int d = 0; d < hd; d++) {
                        const double e = fabs(ctx[(size_t)t * hd + d] - ref[d]) / ref[hd + d];
                        ck_assert_msg(isfinite(ctx[(size_t)t * hd + d]), "hd=%d Tk=%d", hd, Tk);
                        maxrel = fmax(maxrel, e);
                    }
                }
                free(q), free(kt), free(v), free(ctx), free(kt1), free(v1), free(ref), free(wide);
                free(want), free(sc), free(sref);
            }
    for (int k = 0; k < n_isa; k++)
        printf("flash: %s gives the documented bytes, with and without scores\n",
               kern_linear_isa_name(isa[k]));
    printf("flash: max error / sum_j w_j |v_j| = %.3g (tolerance 1e-6)\n", maxrel);
    ck_assert_double_lt(maxrel, 1e-6);
}
END_TEST

START_TEST(test_rope) {
    tu_rng r = {51};
    const int hd = 24;
    const double theta[2] = {10000.0, 500000.0};
    float cosv[12], sinv[12];
    double maxerr = 0;
    for (int ti = 0; ti < 2; ti++)
        for (int pos = 0; pos < 600; pos += 37) {
            float *v = randn(&r, hd, 1.0), orig[24];
            memcpy(orig, v, sizeof orig);
            kern_rope_table(cosv, sinv, pos, hd, theta[ti]);
            kern_rope_apply(v, cosv, sinv, hd);
            for (int i = 0; i < hd / 2; i++) {
                /* (x0 + i x1) * exp(i * pos * theta^(-2i/hd)) */
                double complex_re, complex_im;
                double ang = pos * pow(theta[ti], -2.0 * i / hd);
                complex_re = orig[2 * i] * cos(ang) - orig[2 * i + 1] * sin(ang);
                complex_im = orig[2 * i] * sin(ang) + orig[2 * i + 1] * cos(ang);
                maxerr = fmax(maxerr, fabs(v[2 * i] - complex_re));
                maxerr = fmax(maxerr, fabs(v[2 * i + 1] - complex_im));
            }
            if (pos == 0) ck_assert_int_eq(memcmp(v, orig, sizeof orig), 0);
            free(v);
        }
    printf("rope: max abs error %.3g (tolerance 1e-6)\n", maxerr);
    ck_assert_double_lt(maxerr, 1e-6);
}
END_TEST

START_TEST(test_sinusoidal) {
    const int D = 33; /* odd: the last element is a sin */
    float pe[33];
    double maxerr = 0;
    for (int p = 0; p < 1000; p += 7) {
        kern_sinusoidal(pe, p, D);
        for (int i = 0; i < D; i++) {
            int two_i = i - i % 2;
            double a = p / pow(10000.0, (double)two_i / D);
            double ref = i % 2 ? cos(a) : sin(a);
            maxerr = fmax(maxerr, fabs(pe[i] - ref));
        }
    }
    printf("sinusoidal: max abs error %.3g (tolerance 1e-7)\n", maxerr);
    ck_assert_double_lt(maxerr, 1e-7);
}
END_TEST

static Suite *kernels_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_linear);
    tcase_add_test(tc, test_linear_rows_independent);
    tcase_add_test(tc, test_linear_isas_same_bytes);
    tcase_add_test(tc, test_linear_threads_same_bytes);
    tcase_add_test(tc, test_dot_order);
    tcase_add_test(tc, test_dot_small_sizes);
    tcase_add_test(tc, test_norms);
    tcase_add_test(tc, test_norms_rows_independent);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_softmax_order);
    tcase_add_test(tc, test_softmax_extremes);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_scores);
    tcase_add_test(tc, test_wsum);
    tcase_add_test(tc, test_flash);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_sinusoidal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(kernels_suite()); }
