/* The maps CSV writer against the one it replaced (fprintf with %.9g and
 * the text columns written again on every row), in the same process, on
 * random causal maps of GPT-2 size: T = 512 tokens, 12 layers x 12 heads
 * (131,328 rows a head). Both write to a file in $TMPDIR (or /tmp), removed
 * afterwards; the time is that of the emit calls and the final fflush.
 * Prints rows per second of each and their ratio (one thread), the new
 * writer on 2 threads (wall-clock: its rows are made by both threads and
 * written in order), and the float formatting alone (attn_format_float
 * against snprintf %.9g).
 *   bench_csv [LAYERS]   (default 2 layers of 12 heads; 12 for the whole model) */
#include "attn/attn.h"
#include "attn/write.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { T = 512, HEADS = 12 };

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this process: the measure that holds on a shared machine */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The writer of attn 0.1 (write/csv.c before the buffer): one fprintf per field. */
static attn_status old_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                                 attn_error *err) {
    (void)err;
    attn_csv_maps *w = user;
    const attn_run_info *run = w->run;
    const attn_labels *ql, *kl;
    attn_run_key_labels(run, key, &ql, &kl);
    char prefix[128], num[12];
    snprintf(prefix, sizeof prefix, ",%s,%d,%s,%s,", attn_stack_name(key->stack), key->layer,
             attn_kind_name(key->kind), attn_head_name(key->head, num, sizeof num));
    for (int r = 0; r < v->rows; r++) {
        int qpos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols;
        for (int c = 0; c < v->cols; c++) {
            if (key->causal && c > qpos) break;
            attn_csv_input(w->f, run, w->raw_text);
            fputs(prefix, w->f);
            fprintf(w->f, "%d,", qpos);
            attn_csv_field(w->f, attn_labels_at(ql, qpos), w->raw_text);
            fprintf(w->f, ",%d,", c);
            attn_csv_field(w->f, attn_labels_at(kl, c), w->raw_text);
            fprintf(w->f, ",%.9g\n", (double)row[c]);
        }
    }
    return ATTN_OK;
}

typedef attn_status (*emit_fn)(void *, const attn_capture_key *, const attn_capture_view *, attn_error *);

/* Writes layers x HEADS maps with emit into a new file; returns the seconds,
 * *cpu the CPU seconds, *bytes the file size. */
static double run(emit_fn emit, const attn_run_info *run_info, float *const *maps, int layers,
                  long *bytes, double *cpu) {
    char path[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_csv.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    const int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        perror("bench_csv: temporary file");
        exit(1);
    }
    attn_csv_maps w = {.f = f, .run = run_info};
    attn_csv_maps_header(f);
    const double t0 = now_s(), c0 = cpu_s();
    for (int l = 0; l < layers; l++)
        for (int h = 0; h < HEADS; h++) {
            attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = l, .head = h, .causal = true};
            attn_capture_view v = {.rows = T, .cols = T, .data = maps[h]};
            attn_error err = {0};
            if (emit(&w, &key, &v, &err)) {
                fprintf(stderr, "bench_csv: %s\n", err.message);
                exit(1);
            }
        }
    fflush(f);
    const double s = now_s() - t0;
    *cpu = cpu_s() - c0;
    *bytes = ftell(f);
    fclose(f);
    unlink(path);
    return s;
}

int main(int argc, char **argv) {
    const int layers = argc > 1 ? atoi(argv[1]) : 2;
    if (layers < 1 || layers > 48) {
        fprintf(stderr, "usage: bench_csv [LAYERS 1..48]\n");
        return 2;
    }
    /* labels: GPT-2-like token texts, a leading space on most */
    static const char *words[] = {"the", "of", "and", "attention", "model", ",", ".", "is", "Ġ",
                                  "token", "head", "layer", "a", "in", "\"quoted\"", "x"};
    char **texts = malloc(T * sizeof *texts);
    for (int t = 0; t < T; t++) {
        texts[t] = malloc(24);
        snprintf(texts[t], 24, "%s%s", rng() % 4 ? " " : "", words[rng() % 16]);
    }
    attn_labels labels = {.n = T, .text = texts};
    attn_run_info run_info = {.input = 0, .main = &labels};
    /* causal softmax rows: weights in (0, 1), summing to 1, 12 different heads */
    float *maps[HEADS];
    for (int h = 0; h < HEADS; h++) {
        maps[h] = calloc((size_t)T * T, sizeof(float));
        for (int i = 0; i < T; i++) {
            double sum = 0, e[T];
            for (int j = 0; j <= i; j++) sum += e[j] = (double)(rng() >> 11) * 0x1p-53 * 4.0 + 1e-3;
            for (int j = 0; j <= i; j++) maps[h][(size_t)i * T + j] = (float)(e[j] / sum);
        }
    }
    const double rows = (double)layers * HEADS * (T * (T + 1.0) / 2);
    long b_old, b_new;
    double c_old, c_new;
    attn_set_threads(1);
    const double s_new = run(attn_csv_maps_emit, &run_info, maps, layers, &b_new, &c_new);
    const double s_old = run(old_maps_emit, &run_info, maps, layers, &b_old, &c_old);
    attn_set_threads(2);
    long b_two;
    double c_two;
    const double s_two = run(attn_csv_maps_emit, &run_info, maps, layers, &b_two, &c_two);
    attn_set_threads(1);
    if (b_two != b_new) {
        fprintf(stderr, "bench_csv: 2 threads wrote %ld bytes, 1 thread %ld\n", b_two, b_new);
        return 1;
    }
    /* the float formatting alone, on the first map's weights */
    const size_t nf = (size_t)T * T;
    char buf[64];
    size_t sink = 0;
    double t0 = cpu_s();
    for (size_t i = 0; i < nf; i++) sink += attn_format_float(buf, maps[0][i] + 1e-7f);
    const double s_fmt = cpu_s() - t0;
    t0 = cpu_s();
    for (size_t i = 0; i < nf; i++) sink += (size_t)snprintf(buf, sizeof buf, "%.9g", (double)(maps[0][i] + 1e-7f));
    const double s_printf = cpu_s() - t0;
    printf("maps CSV, T=%d, %d layers x %d heads, causal: %.0f rows, to a file in %s\n", T,
           layers, HEADS, rows, getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    printf("| writer | seconds | M rows/s | CPU seconds | M rows/s of CPU | MB/s | file MB |\n"
           "|---|---|---|---|---|---|---|\n");
    printf("| fprintf %%.9g (before) | %.3f | %.2f | %.3f | %.2f | %.0f | %.1f |\n", s_old,
           rows / s_old * 1e-6, c_old, rows / c_old * 1e-6, (double)b_old / s_old * 1e-6,
           (double)b_old * 1e-6);
    printf("| buffer + attn_format_float | %.3f | %.2f | %.3f | %.2f | %.0f | %.1f |\n", s_new,
           rows / s_new * 1e-6, c_new, rows / c_new * 1e-6, (double)b_new / s_new * 1e-6,
           (double)b_new * 1e-6);
    printf("| buffer + attn_format_float, 2 threads | %.3f | %.2f | %.3f | %.2f | %.0f | %.1f |\n",
           s_two, rows / s_two * 1e-6, c_two, rows / c_two * 1e-6, (double)b_two / s_two * 1e-6,
           (double)b_two * 1e-6);
    printf("2 threads against 1: %.2fx (wall-clock)\n", s_new / s_two);
    printf("speed-up %.2fx (CPU %.2fx); one float (CPU): attn_format_float %.1f ns, snprintf %%.9g "
           "%.1f ns (%zu)\n",
           s_old / s_new, c_old / c_new, s_fmt / (double)nf * 1e9, s_printf / (double)nf * 1e9, sink % 10);
    for (int h = 0; h < HEADS; h++) free(maps[h]);
    for (int t = 0; t < T; t++) free(texts[t]);
    free(texts);
    return 0;
}
