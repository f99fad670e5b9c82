/* exhaustive_activations: kern_gelu, kern_gelu_tanh and kern_silu on every
 * one of the 2^32 float bit patterns against float64 references, with the
 * bounds documented in src/compute/kernels.h. Prints the max error of each
 * (in ulps of the float64 value where it is a normal float, in subnormal
 * steps where it is below FLT_MIN; gelu_tanh's as a relative error in
 * units of 2^-24 (1 + |2u|), its bound) and fails if a bound is broken.
 *
 * Usage: exhaustive_activations [--threads N] [--stride S]
 * (S > 1 checks every S-th bit pattern only, for a quick run.) */
#include "compute/kernels.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_GELU, F_TANH, F_SILU, NF };
static const char *const names[NF] = {"gelu", "gelu_tanh", "silu"};

/* the documented bounds (kernels.h) */
/* normal results (gelu: for x < -1/2, KERN_GELU_ULP_NEAR above), subnormal
 * results in steps of 2^-149 */
static const double ulp_bound[NF] = {KERN_GELU_ULP, 1e30, KERN_SILU_ULP};
static const double sub_bound[NF] = {KERN_GELU_SUB, 1e30, KERN_SILU_SUB};
/* gelu_tanh: |error| <= 2^-24 (1 + |2u|) tanh_bound |ref| + 2^-149 */
static const double tanh_bound = KERN_GELU_TANH_ERR;

typedef struct {
    uint64_t lo, hi, stride;
    double max_ulp[NF], max_sub[NF], tanh_k, gelu_near;
    float worst[NF];
    uint64_t bad[NF];
    float first_bad[NF];
} job;

static double two_u(double x) { return 2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x); }

static double ref_of(int f, double x) {
    if (isinf(x)) return x > 0 ? x : -0.0; /* the limits (the formulas give NaN) */
    if (f == F_GELU) return 0.5 * x * erfc(-x * M_SQRT1_2);
    if (f == F_TANH) return x / (1.0 + exp(-two_u(x)));
    return x / (1.0 + exp(-x));
}

static void check(job *j, int f, float x, float got) {
    double ref = ref_of(f, x);
    int ok;
    if (isnan(x)) ok = isnan(got) != 0;
    else if (isnan(ref)) ok = isnan(got) != 0;
    else if (fabs(ref) > FLT_MAX) ok = got == ref;
    else if (f == F_TANH) {
        double e = fabs(got - ref);
        double k = e <= 0x1p-149 ? 0.0 : (e - 0x1p-149) / (0x1p-24 * (1.0 + fabs(two_u(x))) * fabs(ref));
        ok = k <= tanh_bound;
        if (k > j->tanh_k) j->tanh_k = k, j->worst[f] = x;
    } else if (fabs(ref) < FLT_MIN) {
        double e = fabs(got - ref) / 0x1p-149;
        ok = e <= sub_bound[f];
        if (e > j->max_sub[f]) j->max_sub[f] = e;
    } else {
        int ex;
        frexp(ref, &ex);
        double e = fabs(got - ref) / ldexp(1.0, ex - 24);
        if (f == F_GELU && x >= -0.5f) {
            ok = e <= KERN_GELU_ULP_NEAR;
            if (e > j->gelu_near) j->gelu_near = e;
        } else {
            ok = e <= ulp_bound[f];
            if (e > j->max_ulp[f]) j->max_ulp[f] = e, j->worst[f] = x;
        }
    }
    if (!ok && j->bad[f]++ == 0) j->first_bad[f] = x;
}

static void *run(void *arg) {
    job *j = arg;
    enum { B = 4096 };
    float x[B], y[NF][B];
    uint64_t k = j->lo;
    while (k < j->hi) {
        int m = 0;
        for (; m < B && k < j->hi; m++, k += j->stride) {
            uint32_t u = (uint32_t)k;
            memcpy(&x[m], &u, sizeof u);
        }
        for (int f = 0; f < NF; f++) memcpy(y[f], x, sizeof(float) * (size_t)m);
        kern_gelu(y[F_GELU], (size_t)m);
        kern_gelu_tanh(y[F_TANH], (size_t)m);
        kern_silu(y[F_SILU], (size_t)m);
        for (int f = 0; f < NF; f++)
            for (int i = 0; i < m; i++) check(j, f, x[i], y[f][i]);
    }
    return NULL;
}

static int parse(const char *s, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    long threads = 2, stride = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            if (parse(argv[++i], 64, &threads)) {
                fprintf(stderr, "exhaustive_activations: --threads: expected 1 to 64\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc) {
            if (parse(argv[++i], INT_MAX, &stride)) {
                fprintf(stderr, "exhaustive_activations: --stride: expected a positive integer\n");
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("Usage: exhaustive_activations [--threads N] [--stride S]");
            return 0;
        } else {
            fprintf(stderr, "exhaustive_activations: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    job jobs[64];
    pthread_t tid[64];
    const uint64_t total = 0x100000000ull, per = (total / (uint64_t)stride + (uint64_t)threads - 1) /
                                                   (uint64_t)threads * (uint64_t)stride;
    for (long t = 0; t < threads; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].lo = (uint64_t)t * per;
        jobs[t].hi = jobs[t].lo + per < total ? jobs[t].lo + per : total;
        jobs[t].stride = (uint64_t)stride;
        if (pthread_create(&tid[t], NULL, run, &jobs[t])) {
            fprintf(stderr, "exhaustive_activations: cannot start a thread\n");
            return 1;
        }
    }
    for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    int fail = 0;
    printf("every %ld-th of the 2^32 floats, against float64 references\n", stride);
    for (int f = 0; f < NF; f++) {
        double mu = 0, ms = 0, tail = 0, near = 0;
        uint64_t bad = 0;
        float worst = 0, first = 0;
        for (long t = 0; t < threads; t++) {
            if (jobs[t].max_ulp[f] > mu) mu = jobs[t].max_ulp[f], worst = jobs[t].worst[f];
            if (jobs[t].max_sub[f] > ms) ms = jobs[t].max_sub[f];
            if (jobs[t].gelu_near > near) near = jobs[t].gelu_near;
            if (jobs[t].tanh_k > tail) tail = jobs[t].tanh_k, worst = jobs[t].worst[f];
            if (jobs[t].bad[f] && !bad) first = jobs[t].first_bad[f];
            bad += jobs[t].bad[f];
        }
        if (f == F_TANH)
            printf("%-9s max error %.3f x 2^-24 (1 + |2u|) |ref| + 2^-149 (bound %.1f) at x = %a\n",
                   names[f], tail, tanh_bound, (double)worst);
        else if (f == F_GELU)
            printf("%-9s x >= -1/2: max %.3f ulp (bound %.1f); x < -1/2: max %.3f ulp (bound %.1f) "
                   "at x = %a; subnormal results %.3f steps (bound %.1f)\n", names[f], near,
                   KERN_GELU_ULP_NEAR, mu, ulp_bound[f], (double)worst, ms, sub_bound[f]);
        else
            printf("%-9s max %.3f ulp (bound %.1f) at x = %a, subnormal results %.3f steps "
                   "(bound %.1f)\n", names[f], mu, ulp_bound[f], (double)worst, ms, sub_bound[f]);
        if (bad) {
            printf("  %llu wrong, the first at x = %a\n", (unsigned long long)bad, (double)first);
            fail = 1;
        }
    }
    return fail;
}
