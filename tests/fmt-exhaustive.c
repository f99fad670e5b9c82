/* attn_format_float over every one of the 2^32 float bit patterns: strtof
 * reads the text back as the same bits (NaN: a NaN of the same sign, written
 * "nan" or "-nan"), the text is no longer than %.9g's, and on every 1024th
 * pattern it is byte for byte the brute-force shortest of fmt-ref.h.
 * Two threads (or ATTN_FMT_THREADS) share the patterns; prints the time.
 * Not in the test suites (about 5 minutes on 2 cores): run it with
 *   meson test -C build --benchmark fmt-exhaustive
 * or build/tests/fmt-exhaustive [FIRST LAST] for a range of patterns (hex). */
#include "attn/write.h"
#include "fmt-ref.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct part {
    uint64_t first, end; /* patterns [first, end) */
    uint64_t bad, sampled;
} part;

static void report(uint64_t *bad, uint32_t b, const char *got, const char *want) {
    if ((*bad)++ < 10) fprintf(stderr, "bits %08x: \"%s\", want %s\n", (unsigned)b, got, want);
}

static void *run_part(void *arg) {
    part *pt = arg;
    for (uint64_t i = pt->first; i < pt->end; i++) {
        const uint32_t b = (uint32_t)i;
        if ((b & 0xfffffff) == 0 && i != pt->first) { /* progress, every 2^28 patterns */
            fprintf(stderr, "fmt-exhaustive: %08x..%08x done, %llu wrong so far\n", (unsigned)pt->first,
                    (unsigned)(i - 1), (unsigned long long)pt->bad);
        }
        const float x = ref_float(b);
        char got[ATTN_FLOAT_TEXT_MAX + 8];
        const size_t n = attn_format_float(got, x);
        if (n != strlen(got) || n >= ATTN_FLOAT_TEXT_MAX) {
            report(&pt->bad, b, got, "(a length below ATTN_FLOAT_TEXT_MAX)");
            continue;
        }
        if (isnan(x)) {
            if (strcmp(got, signbit(x) ? "-nan" : "nan")) report(&pt->bad, b, got, "nan");
            continue;
        }
        if (!ref_reads_back(got, x)) {
            report(&pt->bad, b, got, "(what reads back)");
            continue;
        }
        if ((b & 1023) == 0x155) { /* a sample: the brute-force shortest, and not longer than %.9g */
            char want[48], g9[48];
            snprintf(g9, sizeof g9, "%.9g", (double)x);
            if (isinf(x) || x == 0) snprintf(want, sizeof want, "%s", g9);
            else ref_shortest(want, sizeof want, x);
            if (strcmp(got, want)) report(&pt->bad, b, got, want);
            if (strlen(got) > strlen(g9)) report(&pt->bad, b, got, g9);
            pt->sampled++;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t first = 0, end = UINT64_C(1) << 32;
    if (argc == 3) {
        first = strtoull(argv[1], NULL, 16);
        end = strtoull(argv[2], NULL, 16) + 1;
    }
    const char *env = getenv("ATTN_FMT_THREADS");
    int nt = env ? atoi(env) : 2;
    if (nt < 1 || nt > 64) nt = 2;
    part parts[64];
    pthread_t th[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const uint64_t per = (end - first + (uint64_t)nt - 1) / (uint64_t)nt;
    for (int t = 0; t < nt; t++) {
        parts[t] = (part){.first = first + per * (uint64_t)t, .end = first + per * (uint64_t)(t + 1)};
        if (parts[t].end > end) parts[t].end = end;
        if (parts[t].first > end) parts[t].first = end;
        if (pthread_create(&th[t], NULL, run_part, &parts[t])) {
            fprintf(stderr, "fmt-exhaustive: cannot start a thread\n");
            return 1;
        }
    }
    uint64_t bad = 0, sampled = 0;
    for (int t = 0; t < nt; t++) {
        pthread_join(th[t], NULL);
        bad += parts[t].bad;
        sampled += parts[t].sampled;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("fmt-exhaustive: %llu patterns %08llx..%08llx, %llu against the brute force, %d threads, "
           "%.1f s (%.1f ns a pattern and thread), %llu wrong\n",
           (unsigned long long)(end - first), (unsigned long long)first,
           (unsigned long long)(end - 1), (unsigned long long)sampled, nt, s,
           s * 1e9 * nt / (double)(end - first), (unsigned long long)bad);
    return bad != 0;
}
