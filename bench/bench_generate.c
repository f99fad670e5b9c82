/* bench_generate: the cost of one greedy decoding step as the sequence grows,
 * with the session's key/value cache (one new position per step) and without
 * it (the whole prefix re-run at every step), in the same process.
 *
 * Usage: bench_generate [--steps N] [--window W] [--repeat R] [--no-baseline]
 *                       [--random] [--checkpoint FILE --tokenizer FILE]
 *
 * The model is stories260K (llama2.c, imported into a temporary folder) when
 * shared/models/stories260K is present beside the source tree, else a random
 * model of the same shape (d_model 64, 5 layers, 8 heads / 4 kv heads, d_ff
 * 172, vocab 512, max_seq_len 512, rope, rmsnorm, swiglu, tied lm_head).
 * Step 1 feeds BOS (id 1); step i feeds the argmax of step i-1's logits.
 * Prints the mean time per step in windows of W steps (1-64, 65-128, ...)
 * and the ratio last window / first window. The cached run is repeated R
 * times and each window keeps its fastest repetition (the machine is
 * shared); the baseline runs once. */
#include "attn/attn.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef ATTN_SOURCE_ROOT
#define ATTN_SOURCE_ROOT "."
#endif

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(const attn_error *err) {
    fprintf(stderr, "bench_generate: %s\n", err->message);
    return 1;
}

/* ---- a random model of stories260K's shape ---- */

static uint64_t rng_s = 42;
static float frand(void) {
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2 - 1);
}

enum { RD = 64, RL = 5, RH = 8, RKV = 4, RF = 172, RV = 512, RT = 512 };

static int write_random_model(const char *dir, char *cfg_path, size_t cap, attn_error *err) {
    attn_tensor_spec specs[2 + 9 * RL];
    char names[2 + 9 * RL][48];
    float *bufs[2 + 9 * RL];
    size_t n = 0;
    const int hd = RD / RH;
#define T2(rows, cols, scale, ...)                                                         \
    do {                                                                                   \
        snprintf(names[n], sizeof names[n], __VA_ARGS__);                                 \
        size_t cnt = (size_t)(rows) * (size_t)(((cols) != 0) ? (cols) : 1);                      \
        bufs[n] = malloc(cnt * sizeof(float));                                             \
        if (!bufs[n]) return 1;                                                            \
        for (size_t i = 0; i < cnt; i++) bufs[n][i] = (float)(scale) * frand();            \
        specs[n] = (attn_tensor_spec){.name = names[n], .ndim = ((cols) != 0) ? 2 : 1,            \
                                      .data = bufs[n]};                                    \
        specs[n].shape[0] = (rows);                                                        \
        if ((cols) != 0) specs[n].shape[1] = (cols);                                              \
        n++;                                                                               \
    } while (0)
    T2(RV, RD, 1.0, "tok_embed");
    for (int l = 0; l < RL; l++) {
        T2(RD, 0, 1.0, "blocks.%d.attn_norm.weight", l);
        T2(RH * hd, RD, 0.2, "blocks.%d.attn.q.weight", l);
        T2(RKV * hd, RD, 0.2, "blocks.%d.attn.k.weight", l);
        T2(RKV * hd, RD, 0.2, "blocks.%d.attn.v.weight", l);
        T2(RD, RH * hd, 0.2, "blocks.%d.attn.o.weight", l);
        T2(RD, 0, 1.0, "blocks.%d.mlp_norm.weight", l);
        T2(RF, RD, 0.2, "blocks.%d.mlp.gate.weight", l);
        T2(RF, RD, 0.2, "blocks.%d.mlp.up.weight", l);
        T2(RD, RF, 0.1, "blocks.%d.mlp.down.weight", l);
    }
    T2(RD, 0, 1.0, "norm.weight");
#undef T2
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = attn_safetensors_write(path, specs, n, err);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    if (rc) return rc;
    snprintf(cfg_path, cap, "%s/config.json", dir);
    FILE *f = fopen(cfg_path, "w");
    if (!f) return 1;
    fprintf(f,
            "{\"format\": \"attn/1\", \"architecture\": \"decoder\", \"vocab_size\": %d, "
            "\"d_model\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"d_ff\": %d, "
            "\"max_seq_len\": %d, \"n_layers\": %d, \"positional\": \"rope\", "
            "\"norm\": \"rmsnorm\", \"norm_position\": \"pre\", \"mlp\": \"swiglu\", "
            "\"bias\": false, \"lm_head\": \"tied\", \"weights\": \"model.safetensors\"}\n",
            RV, RD, RH, RKV, RF, RT, RL);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the runs ---- */

typedef struct logits_sink {
    float *row; /* [V] last row */
    int V;
} logits_sink;

static bool sink_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_LOGITS;
}

static attn_status sink_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err) {
    (void)key, (void)err;
    logits_sink *s = user;
    memcpy(s->row, v->data + (size_t)(v->rows - 1) * v->cols, sizeof(float) * (size_t)s->V);
    return ATTN_OK;
}

/* Cached: one position per step. t[i] = microseconds of step i; seq gets the ids fed. */
static int run_cached(attn_session *s, const attn_capture *cap, logits_sink *ls, int steps,
                      int *seq, double *t, attn_error *err) {
    attn_session_reset(s);
    int next = 1;
    for (int i = 0; i < steps; i++) {
        seq[i] = next;
        attn_input in = {.ids = &seq[i], .n = 1};
        double t0 = now_us();
        int rc = attn_session_forward(s, &in, cap, err);
        next = attn_argmax(ls->row, ls->V);
        t[i] = now_us() - t0;
        if (rc) return rc;
    }
    return ATTN_OK;
}

/* No cache: step i re-runs positions 0..i from an empty session. */
static int run_uncached(attn_session *s, const attn_capture *cap, logits_sink *ls, int steps,
                        int *seq, double *t, attn_error *err) {
    int next = 1;
    for (int i = 0; i < steps; i++) {
        seq[i] = next;
        attn_input in = {.ids = seq, .n = (size_t)i + 1};
        double t0 = now_us();
        attn_session_reset(s);
        int rc = attn_session_forward(s, &in, cap, err);
        next = attn_argmax(ls->row, ls->V);
        t[i] = now_us() - t0;
        if (rc) return rc;
    }
    return ATTN_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int parse_pos(const char *s, const char *flag, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > INT_MAX) {
        fprintf(stderr, "bench_generate: %s: expected a positive integer, got '%s'\n", flag, s);
        return 2;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    int steps = 0, window = 64, repeat = 5;
    bool baseline = true, random_model = false;
    const char *ckpt = ATTN_SOURCE_ROOT "/../shared/models/stories260K/stories260K.bin";
    const char *tokp = ATTN_SOURCE_ROOT "/../shared/models/stories260K/tok512.bin";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--steps") == 0 && has) {
            if (parse_pos(argv[++i], a, &steps)) return 2;
        } else if (strcmp(a, "--window") == 0 && has) {
            if (parse_pos(argv[++i], a, &window)) return 2;
        } else if (strcmp(a, "--repeat") == 0 && has) {
            if (parse_pos(argv[++i], a, &repeat)) return 2;
        } else if (strcmp(a, "--no-baseline") == 0) {
            baseline = false;
        } else if (strcmp(a, "--random") == 0) {
            random_model = true;
        } else if (strcmp(a, "--checkpoint") == 0 && has) {
            ckpt = argv[++i];
        } else if (strcmp(a, "--tokenizer") == 0 && has) {
            tokp = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            puts("Usage: bench_generate [--steps N] [--window W] [--repeat R] [--no-baseline]\n"
                 "                      [--random] [--checkpoint FILE --tokenizer FILE]");
            return 0;
        } else {
            fprintf(stderr, "bench_generate: unknown or incomplete option '%s'\n", a);
            return 2;
        }
    }

    char tmp[] = "/tmp/attn-bench-generate.XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("bench_generate: mkdtemp");
        return 1;
    }
    char cfg[4200], out[4096];
    attn_error err = {0};
    int status = 1;
    const char *what;
    if (!random_model && access(ckpt, R_OK) == 0 && access(tokp, R_OK) == 0) {
        snprintf(out, sizeof out, "%s/model", tmp);
        if (attn_import_llama2c(ckpt, tokp, out, 0, &err)) {
            fail(&err);
            goto cleanup;
        }
        snprintf(cfg, sizeof cfg, "%s/config.json", out);
        what = ckpt;
    } else {
        if (write_random_model(tmp, cfg, sizeof cfg, &err)) {
            fprintf(stderr, "bench_generate: cannot write the random model: %s\n", err.message);
            goto cleanup;
        }
        what = "random weights of stories260K's shape";
    }
    attn_model *m = NULL;
    attn_session *s = NULL;
    if (attn_model_open(&m, cfg, &err) || attn_session_new(&s, m, &err)) {
        fail(&err);
        attn_model_close(m);
        goto cleanup;
    }
    const attn_config *c = attn_model_config(m);
    if (steps == 0 || steps > c->max_seq_len) steps = c->max_seq_len;
    if (window > steps) window = steps;
    logits_sink ls = {.V = c->vocab_size};
    ls.row = calloc((size_t)c->vocab_size, sizeof(float));
    attn_capture cap = {sink_wants, sink_emit, &ls};
    int *seq = calloc((size_t)steps, sizeof *seq), *seq2 = calloc((size_t)steps, sizeof *seq2);
    double *t = malloc(sizeof(double) * (size_t)steps);
    double *nc = malloc(sizeof(double) * (size_t)steps);
    int nw = (steps + window - 1) / window;
    double *wbest = malloc(sizeof(double) * (size_t)nw);
    if (!ls.row || !seq || !seq2 || !t || !nc || !wbest) {
        fprintf(stderr, "bench_generate: out of memory\n");
        goto done;
    }

    printf("model: %s\n  d_model %d, %d layers, %d heads (%d kv), d_ff %d, vocab %d, "
           "max_seq_len %d\n",
           what, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->d_ff, c->vocab_size,
           c->max_seq_len);
    printf("steps: %d (step 1 feeds BOS, each next step the previous argmax), window %d, "
           "cached runs: %d (fastest kept per window)\n\n",
           steps, window, repeat);

    for (int w = 0; w < nw; w++) wbest[w] = INFINITY;
    double cached_total = INFINITY;
    for (int r = 0; r < repeat; r++) {
        if (run_cached(s, &cap, &ls, steps, seq, t, &err)) {
            fail(&err);
            goto done;
        }
        double tot = 0;
        for (int w = 0; w < nw; w++) {
            int a = w * window, b = a + window < steps ? a + window : steps;
            double sum = 0;
            for (int i = a; i < b; i++) sum += t[i];
            if (sum / (b - a) < wbest[w]) wbest[w] = sum / (b - a);
            tot += sum;
        }
        if (tot < cached_total) cached_total = tot;
    }
    double nc_total = 0;
    if (baseline) {
        if (run_uncached(s, &cap, &ls, steps, seq2, nc, &err)) {
            fail(&err);
            goto done;
        }
        for (int i = 0; i < steps; i++) nc_total += nc[i];
        if (memcmp(seq, seq2, sizeof(int) * (size_t)steps) != 0)
            printf("note: the cached and uncached runs chose different tokens\n");
    }

    printf("%-12s %18s %20s\n", "steps", "cached us/step", baseline ? "no-cache us/step" : "");
    double nc_first = 0, nc_last = 0;
    for (int w = 0; w < nw; w++) {
        int a = w * window, b = a + window < steps ? a + window : steps;
        char label[32];
        snprintf(label, sizeof label, "%d-%d", a + 1, b);
        printf("%-12s %18.1f", label, wbest[w]);
        if (baseline) {
            double sum = 0;
            for (int i = a; i < b; i++) sum += nc[i];
            double mean = sum / (b - a);
            if (w == 0) nc_first = mean;
            if (w == nw - 1) nc_last = mean;
            printf(" %20.1f", mean);
        }
        putchar('\n');
    }
    printf("%-12s %17.2fx", "last/first", wbest[nw - 1] / wbest[0]);
    if (baseline) printf(" %19.2fx", nc_last / nc_first);
    putchar('\n');
    if (nw >= 2) {
        /* least-squares line through (mean cached positions of a window, its
         * time): what one more cached position costs a step */
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int w = 0; w < nw; w++) {
            int a = w * window, b = a + window < steps ? a + window : steps;
            double x = (a + 1 + b) / 2.0; /* step i (from 1) attends to i positions */
            sx += x, sy += wbest[w], sxx += x * x, sxy += x * wbest[w];
        }
        double slope = (nw * sxy - sx * sy) / (nw * sxx - sx * sx), icpt = (sy - slope * sx) / nw;
        printf("%-12s %14.1f ns   (per position and head: %.2f ns; at 0 positions: %.1f us)\n",
               "per position", slope * 1e3, slope * 1e3 / (c->n_layers * c->n_heads), icpt);
    }
    printf("%-12s %16.1fms", "total", cached_total / 1e3);
    if (baseline)
        printf(" %18.1fms   (no-cache / cached: %.1fx)", nc_total / 1e3, nc_total / cached_total);
    putchar('\n');
    status = 0;
done:
    free(ls.row), free(seq), free(seq2), free(t), free(nc), free(wbest);
    attn_session_free(s);
    attn_model_close(m);
cleanup:
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
