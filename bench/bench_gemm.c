/* The linear layers' GEMM (kern_linear, every instruction set this CPU
 * runs) against OpenBLAS's sgemm on the same shapes, in the same process:
 * GPT-2-small's projections (768 x 768, q/k/v 768 -> 2304) and MLP (768 ->
 * 3072, 3072 -> 768) at T = 1, 128 and 512, on 1 and on 2 threads.
 *
 *   bench_gemm [--repeat R] [--blas PATH] [--threads LIST] [--T LIST] [--C N]
 *
 * (--C: only the shapes with that many input columns)
 *
 * OpenBLAS is loaded at run time (dlopen), so attn does not link it; the
 * default path is Debian's libopenblas0-pthread. Without it only attn's
 * numbers are printed. Prints the CPU model and OpenBLAS's core name: on
 * Intel CPUs with AVX-512, Debian's OpenBLAS 0.3.21 needs
 * OPENBLAS_CORETYPE=SkylakeX to use its AVX-512 kernel (it is set here when
 * the CPU has AVX-512 and the variable is not).
 *
 * On one thread, times are the thread's CPU time (time when another process
 * has the core is not counted) and every instruction set is timed
 * (kern_linear_isa); on 2 threads they are wall-clock times of kern_linear
 * (attn_set_threads) against sgemm with openblas_set_num_threads. The
 * repetitions alternate sgemm and attn, and each keeps its best, so a
 * burst of load on the shared machine hits both alike; the ratio is
 * sgemm's best time over attn's. */
#include "compute/kernels.h"

#include "attn/attn.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* The thread's CPU time (one thread) or the wall clock (threads). */
static double now(int wall) {
    struct timespec ts;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                snprintf(buf, cap, "%s", p + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

static float *rand_floats(size_t n) {
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    return p;
}

/* "1,2" -> {1, 2}; at most cap numbers, each > 0 */
static int parse_list(const char *s, int *out, int cap) {
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 100000) return 0;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return *s ? 0 : n;
}

typedef struct {
    sgemm_fn sgemm;
    void (*set_threads)(int);
} blas_lib;

/* Seconds of one call, best of repeat; which < 0: sgemm, else that isa
 * (threads == 1) or kern_linear (threads > 1) */
static double time_one(const blas_lib *b, int which, int threads, const float *x, const float *w,
                       float *y, int T, int C, int OC, int inner) {
    const int wall = threads > 1;
    double t0 = now(wall);
    for (int i = 0; i < inner; i++) {
        if (which < 0)
            b->sgemm(ROW_MAJOR, NO_TRANS, TRANS, T, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC);
        else if (threads == 1)
            kern_linear_isa(which, y, x, w, NULL, T, C, OC);
        else
            kern_linear(y, x, w, NULL, T, C, OC);
    }
    return (now(wall) - t0) / inner;
}

int main(int argc, char **argv) {
    int only_C = 0, repeat = 5, threads[4] = {1, 2}, n_threads = 2, Ts[8] = {128, 512, 1}, n_T = 3;
    const char *blas = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--blas") == 0 && i + 1 < argc) blas = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
                 (n_threads = parse_list(argv[++i], threads, 4)) > 0) {
        } else if (strcmp(argv[i], "--T") == 0 && i + 1 < argc &&
                   (n_T = parse_list(argv[++i], Ts, 8)) > 0) {
        } else if (strcmp(argv[i], "--C") == 0 && i + 1 < argc &&
                   parse_list(argv[++i], &only_C, 1) == 1) {
        } else {
            fprintf(stderr, "usage: bench_gemm [--repeat R] [--blas PATH] [--threads LIST] "
                            "[--T LIST] [--C N]\n");
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    blas_lib lib = {NULL, NULL};
    const char *core = "not loaded";
    void *h = dlopen(blas, RTLD_NOW | RTLD_LOCAL);
    if (h) {
        lib.sgemm = (sgemm_fn)(size_t)dlsym(h, "cblas_sgemm");
        lib.set_threads = (void (*)(int))(size_t)dlsym(h, "openblas_set_num_threads");
        char *(*corename)(void) = (char *(*)(void))(size_t)dlsym(h, "openblas_get_corename");
        if (corename) core = corename();
        if (!lib.set_threads) lib.sgemm = NULL; /* not OpenBLAS: its threads are unknown */
    }
    printf("CPU: %s\nOpenBLAS: %s (core %s)\nattn kern_linear uses: %s\nbest of %d, alternating "
           "sgemm and attn; 1 thread: CPU time, 2+ threads: wall clock\n\n",
           cpu, h ? blas : "absent (apt-get install libopenblas0-pthread)", core,
           kern_linear_isa_name(kern_linear_isa_best()), repeat);
    const int shapes[][2] = {{768, 768}, {768, 2304}, {768, 3072}, {3072, 768}};
    printf("%3s %5s %5s %5s  %-9s %9s", "thr", "T", "C", "OC", "isa", "GFLOP/s");
    printf(lib.sgemm ? " %13s %9s\n" : "\n", "sgemm GFLOP/s", "ratio");
    for (int th = 0; th < n_threads; th++)
        for (int ti = 0; ti < n_T; ti++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const int T = Ts[ti], C = shapes[s][0], OC = shapes[s][1], nt = threads[th];
                if (only_C && C != only_C) continue;
                float *x = rand_floats((size_t)T * C), *w = rand_floats((size_t)OC * C);
                float *y = rand_floats((size_t)T * OC);
                const double flop = 2.0 * T * C * OC;
                const int inner = 1 + (int)(1e9 / flop);
                int isas[8], n_isa = 0;
                if (nt == 1) {
                    for (int i = 0; kern_linear_isa_name(i) && n_isa < 8; i++)
                        if (kern_linear_isa_runs(i) &&
                            (strcmp(kern_linear_isa_name(i), "baseline") != 0 || T == 1))
                            isas[n_isa++] = i;
                } else
                    isas[n_isa++] = kern_linear_isa_best();
                attn_set_threads(nt);
                if (lib.sgemm) lib.set_threads(nt);
                double blas_best = 1e30, best[8];
                for (int i = 0; i < n_isa; i++) best[i] = 1e30;
                for (int r = 0; r < repeat; r++) {
                    if (lib.sgemm) {
                        double t = time_one(&lib, -1, nt, x, w, y, T, C, OC, inner);
                        if (t < blas_best) blas_best = t;
                        /* OpenBLAS's threads spin for 2^28 cycles (its THREAD_TIMEOUT)
                         * after a call before they sleep: alternating with attn in one
                         * process they would hold a core through attn's 2-thread turn
                         * (it measured at its 1-thread rate). 150 ms covers that down to
                         * 1.8 GHz. */
                        if (nt > 1) usleep(150000);
                    }
                    for (int i = 0; i < n_isa; i++) {
                        double t = time_one(&lib, isas[i], nt, x, w, y, T, C, OC, inner);
                        if (t < best[i]) best[i] = t;
                    }
                    if (nt > 1 && lib.sgemm) usleep(20000); /* and OpenMP's, before sgemm */
                }
                for (int i = 0; i < n_isa; i++) {
                    printf("%3d %5d %5d %5d  %-9s %9.1f", nt, T, C, OC,
                           kern_linear_isa_name(isas[i]), flop / best[i] * 1e-9);
                    if (lib.sgemm)
                        printf(" %13.1f %9.2f\n", flop / blas_best * 1e-9, blas_best / best[i]);
                    else
                        printf("\n");
                }
                fflush(stdout);
                free(x), free(w), free(y);
            }
    attn_set_threads(0);
    return 0;
}
