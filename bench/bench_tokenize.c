/* The C side of bench_tokenizer.py: attn's gpt2 tokenizer (the library's
 * attn_tokenizer_encode, as `attn tokenize` and `attn run --text` call it)
 * timed on a list of texts.
 *
 *   bench-tokenize VOCAB MERGES UNITS [--repeat R] [--ids OUT]
 *
 * UNITS is a file of texts separated by NUL bytes, each encoded by one call.
 * Each repetition loads the tokenizer afresh (an empty cache of pieces) and
 * encodes all of them in order ("cold": the cache fills as it goes, as in one
 * `attn tokenize` or a batch of lines), then all of them again with the same
 * tokenizer ("warm": every piece already seen). The fastest repetition of
 * each is reported, as one line:
 *   bytes=N units=N tokens=N seconds=S mb_per_s=X warm_mb_per_s=W load_ms=L
 * (seconds and mb_per_s are the cold pass; MB is 10^6 bytes of input).
 * --ids OUT writes the ids of each unit of the last cold pass,
 * comma-separated, one line a unit.
 */
#include "attn/attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The whole file at path (NUL-terminated), or NULL with a message. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    attn_error err;
    if (!f || attn_read_stream(f, (size_t)1 << 30, path, "a benchmark input", &buf, len, &err))
        fprintf(stderr, "bench-tokenize: %s: %s\n", path, f ? err.message : "cannot open");
    if (f) fclose(f);
    return buf;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench-tokenize VOCAB MERGES UNITS [--repeat R] [--ids OUT]\n");
        return 2;
    }
    int repeat = 5;
    const char *ids_path = NULL;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ids") == 0 && i + 1 < argc) ids_path = argv[++i];
        else {
            fprintf(stderr, "bench-tokenize: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    size_t vl = 0, ml = 0, ul = 0;
    char *v = slurp(argv[1], &vl), *m = slurp(argv[2], &ml), *u = slurp(argv[3], &ul);
    if (!v || !m || !u) return 1;
    attn_error err;
    /* the units: NUL-separated; a trailing NUL ends the last one */
    size_t n_units = 0;
    for (size_t i = 0; i < ul; i++) n_units += u[i] == '\0';
    if (ul && u[ul - 1] != '\0') n_units++;
    size_t *start = malloc((n_units + 1) * sizeof *start);
    if (!start) return 1;
    size_t k = 0;
    start[k++] = 0;
    for (size_t i = 0; i < ul && k <= n_units; i++)
        if (u[i] == '\0') start[k++] = i + 1;
    start[n_units] = ul + (ul && u[ul - 1] != '\0'); /* one past the last unit's NUL */
    double best = 1e30, best_warm = 1e30, load = 1e30;
    size_t tokens = 0;
    FILE *out = NULL;
    for (int r = 0; r < repeat; r++) {
        attn_tokenizer *tok;
        double t0 = now();
        if (attn_tokenizer_gpt2_from_memory(&tok, v, vl, argv[1], m, ml, argv[2], &err)) {
            fprintf(stderr, "bench-tokenize: %s\n", err.message);
            return 1;
        }
        if (now() - t0 < load) load = now() - t0;
        for (int pass = 0; pass < 2; pass++) {
            const bool ids_now = r == repeat - 1 && pass == 0 && ids_path;
            if (ids_now && !(out = fopen(ids_path, "w"))) {
                fprintf(stderr, "bench-tokenize: cannot write %s\n", ids_path);
                return 1;
            }
            double spent = 0;
            tokens = 0;
            for (size_t i = 0; i < n_units; i++) {
                const char *text = u + start[i];
                size_t len = start[i + 1] - start[i] - 1;
                int *ids = NULL;
                size_t n = 0;
                double a = now();
                if (attn_tokenizer_encode_flags(tok, text, len, 0, &ids, &n, &err)) {
                    fprintf(stderr, "bench-tokenize: unit %zu: %s\n", i, err.message);
                    return 1;
                }
                spent += now() - a;
                tokens += n;
                if (ids_now) {
                    for (size_t j = 0; j < n; j++) fprintf(out, j ? ",%d" : "%d", ids[j]);
                    fputc('\n', out);
                }
                free(ids);
            }
            double *b = pass ? &best_warm : &best;
            if (spent < *b) *b = spent;
        }
        attn_tokenizer_free(tok);
    }
    if (out && fclose(out)) {
        fprintf(stderr, "bench-tokenize: cannot write %s\n", ids_path);
        return 1;
    }
    size_t bytes = ul - n_units; /* without the separators */
    printf("bytes=%zu units=%zu tokens=%zu seconds=%.6f mb_per_s=%.2f warm_mb_per_s=%.2f "
           "load_ms=%.1f\n",
           bytes, n_units, tokens, best, (double)bytes / best / 1e6, (double)bytes / best_warm / 1e6,
           1e3 * load);
    free(start);
    free(u);
    free(v);
    free(m);
    return 0;
}
