/* Kernels against naive double-precision implementations written here, on
 * random inputs with fixed seeds. Each test prints its measured max error. */
#include "kernels.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 + Box-Muller: reproducible normal samples */
typedef struct { uint64_t s; } rng_t;
static uint64_t rng_u64(rng_t *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unif(rng_t *r) { return ((rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double rng_normal(rng_t *r) {
    return sqrt(-2.0 * log(rng_unif(r))) * cos(2.0 * M_PI * rng_unif(r));
}
static float *randn(rng_t *r, size_t n, double scale) {
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(rng_normal(r) * scale);
    return p;
}

START_TEST(test_linear) {
    rng_t r = {11};
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
    rng_t r = {12};
    const int T = 19, OC = 11;
    for (int C = 1; C <= 41; C += 5) {
        float *x = randn(&r, (size_t)T * C, 1.0), *w = randn(&r, (size_t)OC * C, 1.0);
        float *b = randn(&r, OC, 1.0);
        float *all = malloc(sizeof(float) * T * OC), *one = malloc(sizeof(float) * OC);
        kern_linear(all, x, w, b, T, C, OC);
        for (int t = 0; t < T; t++) {
            kern_linear(one, x + (size_t)t * C, w, b, 1, C, OC);
            ck_assert_int_eq(memcmp(one, all + (size_t)t * OC, sizeof(float) * OC), 0);
            for (int o = 0; o < OC; o++)
                ck_assert(kern_dot(x + (size_t)t * C, w + (size_t)o * C, C) + b[o] == one[o]);
        }
        free(x), free(w), free(b), free(all), free(one);
    }
}
END_TEST

START_TEST(test_dot_small_sizes) {
    rng_t r = {13};
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

START_TEST(test_norms) {
    rng_t r = {21};
    const int T = 7, C = 96;
    float *x = randn(&r, (size_t)T * C, 2.0), *w = randn(&r, C, 1.0), *b = randn(&r, C, 1.0);
    for (int i = 0; i < T * C; i++) x[i] += 3.0f; /* a non-zero mean */
    float *y = malloc(sizeof(float) * T * C);
    double ref[96];
    for (int kind = 0; kind < 3; kind++) { /* layernorm+bias, layernorm no bias, rmsnorm */
        const double eps = kind == 2 ? 1e-6 : 1e-5;
        if (kind == 2) kern_rmsnorm(y, x, w, T, C, eps);
        else kern_layernorm(y, x, w, kind == 0 ? b : NULL, T, C, eps);
        double maxerr = 0;
        for (int t = 0; t < T; t++) {
            ref_norm(ref, x + t * C, w, kind == 0 ? b : NULL, C, eps, kind == 2);
            for (int i = 0; i < C; i++) {
                double e = fabs(y[t * C + i] - ref[i]) / fmax(1.0, fabs(ref[i]));
                if (e > maxerr) maxerr = e;
            }
        }
        printf("norm kind %d: max rel error %.3g (tolerance 1e-6)\n", kind, maxerr);
        ck_assert_double_lt(maxerr, 1e-6);
    }
    /* in place gives the same result */
    float *z = malloc(sizeof(float) * T * C);
    memcpy(z, x, sizeof(float) * T * C);
    kern_layernorm(y, x, w, b, T, C, 1e-5);
    kern_layernorm(z, z, w, b, T, C, 1e-5);
    ck_assert_int_eq(memcmp(y, z, sizeof(float) * T * C), 0);
    free(x), free(w), free(b), free(y), free(z);
}
END_TEST

START_TEST(test_activations) {
    rng_t r = {31};
    const size_t n = 2000;
    float *x = randn(&r, n, 3.0), *y = malloc(sizeof(float) * n);
    double maxerr[4] = {0};
    for (int k = 0; k < 4; k++) {
        memcpy(y, x, sizeof(float) * n);
        if (k == 0) kern_relu(y, n);
        if (k == 1) kern_gelu(y, n);
        if (k == 2) kern_gelu_tanh(y, n);
        if (k == 3) kern_silu(y, n);
        for (size_t i = 0; i < n; i++) {
            double v = x[i], ref;
            if (k == 0) ref = v > 0 ? v : 0;
            else if (k == 1) ref = v * 0.5 * (1 + erf(v / sqrt(2.0)));
            else if (k == 2) ref = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * pow(v, 3))));
            else ref = v * (1 / (1 + exp(-v)));
            double e = fabs(y[i] - ref) / fmax(1e-3, fabs(ref));
            if (e > maxerr[k]) maxerr[k] = e;
        }
    }
    printf("relu %.3g gelu %.3g gelu_tanh %.3g silu %.3g: max rel error (tolerance 2e-7, relu 0)\n",
           maxerr[0], maxerr[1], maxerr[2], maxerr[3]);
    ck_assert(maxerr[0] == 0.0);
    for (int k = 1; k < 4; k++) ck_assert_double_lt(maxerr[k], 2e-7);
    /* the two gelus differ (the test could tell them apart) */
    float a = 1.5f, b = 1.5f;
    kern_gelu(&a, 1);
    kern_gelu_tanh(&b, 1);
    ck_assert(a != b);
    free(x), free(y);
}
END_TEST

START_TEST(test_softmax) {
    rng_t r = {41};
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

START_TEST(test_rope) {
    rng_t r = {51};
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
    tcase_add_test(tc, test_dot_small_sizes);
    tcase_add_test(tc, test_norms);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_sinusoidal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
