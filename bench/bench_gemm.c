/* The linear layers' GEMM (kern_linear, every instruction set this CPU
 * runs) against OpenBLAS's sgemm on the same shapes, in the same process:
 * GPT-2-small's projections and MLP at T = 128 and 512, one thread.
 *
 *   bench_gemm [--repeat R] [--blas PATH]
 *
 * OpenBLAS is loaded at run time (dlopen), so attn does not link it; the
 * default path is Debian's libopenblas0-pthread. Without it only attn's
 * numbers are printed. Prints the CPU model and OpenBLAS's core name: on
 * Intel CPUs with AVX-512, Debian's OpenBLAS 0.3.21 needs
 * OPENBLAS_CORETYPE=SkylakeX to use its AVX-512 kernel (it is set here when
 * the CPU has AVX-512 and the variable is not). Times are the thread's CPU
 * time (one thread each), best of R. */
#include "compute/kernels.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* The thread's CPU time: on a shared machine, time when another process has
 * the core is not counted (both contenders run on this one thread). */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

int main(int argc, char **argv) {
    int repeat = 5;
    const char *blas = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--blas") == 0 && i + 1 < argc) blas = argv[++i];
        else {
            fprintf(stderr, "usage: bench_gemm [--repeat R] [--blas PATH]\n");
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    sgemm_fn sgemm = NULL;
    const char *core = "not loaded";
    void *h = dlopen(blas, RTLD_NOW | RTLD_LOCAL);
    if (h) {
        sgemm = (sgemm_fn)(size_t)dlsym(h, "cblas_sgemm");
        char *(*corename)(void) = (char *(*)(void))(size_t)dlsym(h, "openblas_get_corename");
        if (corename) core = corename();
    }
    printf("CPU: %s\nOpenBLAS: %s (core %s)\nattn kern_linear uses: %s\none thread, best of %d\n\n",
           cpu, h ? blas : "absent (apt-get install libopenblas0-pthread)", core,
           kern_linear_isa_name(kern_linear_isa_best()), repeat);
    const int shapes[][3] = {{128, 768, 768},  {128, 768, 3072}, {128, 3072, 768},
                             {512, 768, 768},  {512, 768, 3072}, {512, 3072, 768},
                             {1, 768, 768},    {1, 768, 3072}};
    printf("%5s %5s %5s  %-9s %9s", "T", "C", "OC", "isa", "GFLOP/s");
    printf(sgemm ? " %13s %9s\n" : "\n", "sgemm GFLOP/s", "ratio");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int T = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = rand_floats((size_t)T * C), *w = rand_floats((size_t)OC * C);
        float *y = rand_floats((size_t)T * OC);
        const double flop = 2.0 * T * C * OC;
        const int inner = 1 + (int)(2e9 / flop);
        double blas_best = 0;
        if (sgemm) {
            blas_best = 1e30;
            for (int r = 0; r < repeat; r++) {
                double t0 = now();
                for (int i = 0; i < inner; i++)
                    sgemm(ROW_MAJOR, NO_TRANS, TRANS, T, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC);
                double t = (now() - t0) / inner;
                if (t < blas_best) blas_best = t;
            }
        }
        for (int isa = 0; kern_linear_isa_name(isa); isa++) {
            if (!kern_linear_isa_runs(isa) || (strcmp(kern_linear_isa_name(isa), "baseline") == 0 && T > 1))
                continue;
            double best = 1e30;
            for (int r = 0; r < repeat; r++) {
                double t0 = now();
                for (int i = 0; i < inner; i++) kern_linear_isa(isa, y, x, w, NULL, T, C, OC);
                double t = (now() - t0) / inner;
                if (t < best) best = t;
            }
            printf("%5d %5d %5d  %-9s %9.1f", T, C, OC, kern_linear_isa_name(isa), flop / best * 1e-9);
            if (sgemm)
                printf(" %13.1f %9.2f\n", flop / blas_best * 1e-9, blas_best / best);
            else
                printf("\n");
        }
        free(x), free(w), free(y);
    }
    return 0;
}
