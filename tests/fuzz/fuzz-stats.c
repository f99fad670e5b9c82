/* libFuzzer entry point for the aggregation and statistics sinks
 * (attn/write.h, src/write/aggregate.c and src/write/stats.c):
 * attn_reduce (mean or max), attn_rollout and attn_csv_stats, the first two
 * in front of the maps CSV writer, all writing to memory streams. The input
 * chooses a model (heads, layers, stack), a shape and a series of maps
 * (layer, head, kind, weights) in any order, also out of order and of other
 * shapes: every call returns ATTN_OK or an error with one line of message,
 * never crashes. With well-formed weights (each row a distribution) the
 * outputs keep their ranges: a mean or max map lies in [0, 1], every row of
 * a rollout sums to 1, and the statistics lie in their bounds (entropy in
 * [0, ln Tk], shares in [0, 1], distance at most the farthest key).
 *
 * Input: 6 header bytes, then maps.
 *   b0  bit 0: raw float32 weights (4 bytes each, NaN and infinities too),
 *       else one byte each, rows normalised; bit 1: max, else mean; bit 2:
 *       causal self-attention; bit 3: every other map is cross-attention;
 *       bit 4: the encoder stack; bits 5-6: row_offset 0..3; bit 7: cols = rows
 *   b1, b2  rows, cols (1 + b % 24)
 *   b3  heads (1 + b % 4); b4 layers (1 + b % 3); b5 the reduce's last head
 *       (b % (heads + 1) - 1)
 *   each map: a byte e: layer e % (layers + 1), head (e >> 2) % (heads + 1)
 *       (one past the last of each is out of range), bit 7: a byte follows
 *       that changes rows (1 + b % 24; cols too when b0 bit 7), then the
 *       weights, rows * cols of them.
 * The picks of --from and --to (attn_pick): from is the position
 * (b5 >> 4) - 8 when b5 bit 3 is set; to is the last 8 bytes of the input
 * (fewer when it is shorter) parsed as text by attn_pick_parse, used when
 * they parse. Both filter the maps CSV and the statistics, whose ranges
 * hold over the picked rows too. See README.md. */
#include "attn/write.h"
#include "fuzz-common.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIM_MAX 24
#define MAPS_MAX 64

/* The sink behind the reduce and the rollout: the maps CSV, and the
 * ranges of well-formed outputs. */
typedef struct check_sink {
    attn_csv_maps csv;
    bool well_formed; /* every input map so far had distribution rows */
    bool rollout;
} check_sink;

static bool check_wants(void *user, const attn_capture_key *key) {
    return attn_csv_maps_wants(&((check_sink *)user)->csv, key);
}

static attn_status check_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                              attn_error *err) {
    check_sink *c = user;
    if (key->head != ATTN_HEAD_MEAN && key->head != ATTN_HEAD_MAX && key->head != ATTN_HEAD_ROLLOUT)
        __builtin_trap();
    if (v->rows < 0 || v->cols < 0 || v->rows > DIM_MAX || v->cols > DIM_MAX) __builtin_trap();
    if (c->well_formed) {
        for (int r = 0; r < v->rows; r++) {
            double sum = 0;
            for (int j = 0; j < v->cols; j++) {
                const float w = v->data[r * v->cols + j];
                if (!(w >= 0 && w <= 1.00001f)) __builtin_trap();
                sum += w;
            }
            if (c->rollout && fabs(sum - 1) > 1e-3) __builtin_trap();
        }
    }
    return attn_csv_maps_emit(&c->csv, key, v, err);
}

static void check_stats_ranges(const attn_capture_view *v, const attn_run_info *run) {
    attn_map_stats s;
    attn_map_stats_pick(&s, v, run->main, run->main, run->from, run->to);
    if (s.rows > v->rows || !(s.to >= 0 && s.to <= 1 + 1e-5)) __builtin_trap();
    attn_map_stats_compute(&s, v);
    const double far = (double)v->row_offset + v->rows + v->cols;
    if (!(s.entropy >= -1e-6 && s.entropy <= log((double)v->cols) + 1e-4)) __builtin_trap();
    if (!(s.sink >= 0 && s.sink <= 1 + 1e-5) || !(s.self >= 0 && s.self <= 1 + 1e-5) ||
        !(s.prev >= 0 && s.prev <= 1 + 1e-5) || !(s.distance >= 0 && s.distance <= far))
        __builtin_trap();
    if (s.rows != v->rows || s.prev_rows > s.rows) __builtin_trap();
}

/* One map's weights from the input at *p (n bytes left); false when too few. */
static bool read_map(float *w, int rows, int cols, int row_offset, bool raw, bool causal,
                     const uint8_t **p, size_t *n) {
    const size_t count = (size_t)rows * (size_t)cols, need = count * (raw ? 4 : 1);
    if (*n < need) return false;
    if (raw) {
        memcpy(w, *p, need);
    } else {
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                float x = (*p)[r * cols + j];
                if (causal && j > row_offset + r) x = 0;
                w[r * cols + j] = x;
                sum += x;
            }
            for (int j = 0; j < cols; j++) /* an all-zero row: all on key 0 */
                w[r * cols + j] = sum > 0 ? (float)(w[r * cols + j] / sum) : j == 0;
        }
    }
    *p += need;
    *n -= need;
    return true;
}

static void check_status(attn_status rc, const attn_error *err) {
    if (rc == ATTN_OK) return;
    fuzz_check_error(err, rc);
    if (rc != ATTN_ERR_USAGE) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    const uint8_t b0 = data[0];
    const bool raw = b0 & 1, causal = b0 & 4, cross = b0 & 8, square = b0 & 128;
    const int row_offset = (b0 >> 5) & 3;
    int rows = 1 + data[1] % DIM_MAX, cols = square ? rows : 1 + data[2] % DIM_MAX;
    const int heads = 1 + data[3] % 4, layers = 1 + data[4] % 3;
    const int last_head = data[5] % (heads + 1) - 1;
    const attn_stack stack = b0 & 16 ? ATTN_STACK_ENCODER : ATTN_STACK_DECODER;
    const attn_config cfg = {.arch = stack == ATTN_STACK_ENCODER ? ATTN_ARCH_ENCODER : ATTN_ARCH_DECODER,
                             .n_heads = heads, .n_layers = layers};
    const uint8_t *p = data + 6;
    size_t n = size - 6;

    char *buf[3] = {NULL};
    size_t len[3] = {0};
    FILE *f[3];
    for (int i = 0; i < 3; i++)
        if (!(f[i] = open_memstream(&buf[i], &len[i]))) __builtin_trap();
    attn_labels labels; /* positions "0", "1", ... */
    if (attn_labels_from_positions(&labels, DIM_MAX + 4)) __builtin_trap();
    char text[9];
    const size_t tn = size - 6 < 8 ? size - 6 : 8;
    memcpy(text, data + size - tn, tn);
    text[tn] = '\0';
    const attn_pick from = {.pos = (data[5] >> 4) - 8};
    attn_pick to;
    attn_error perr = {0};
    attn_status prc = attn_pick_parse(&to, text, &perr);
    if (prc) check_status(prc, &perr);
    const attn_run_info run = {.input = 0, .main = &labels, .from = data[5] & 8 ? &from : NULL,
                               .to = prc ? NULL : &to};
    check_sink reduce_out = {.csv = {.f = f[0], .run = &run}, .well_formed = !raw};
    check_sink roll_out = {.csv = {.f = f[1], .run = &run}, .well_formed = !raw, .rollout = true};
    attn_csv_stats stats = {.f = f[2], .run = &run};
    attn_reduce red;
    attn_rollout roll;
    attn_error err;
    if (attn_reduce_init(&red, (attn_capture){check_wants, check_emit, &reduce_out},
                         b0 & 2 ? ATTN_REDUCE_MAX : ATTN_REDUCE_MEAN, last_head, &err) ||
        attn_rollout_init(&roll, (attn_capture){check_wants, check_emit, &roll_out}, &cfg, &err))
        __builtin_trap();
    const attn_capture sinks[2] = {{attn_reduce_wants, attn_reduce_emit, &red},
                                   {attn_rollout_wants, attn_rollout_emit, &roll}};
    static float w[DIM_MAX * DIM_MAX];
    for (int m = 0; m < MAPS_MAX && n > 0; m++) {
        const uint8_t e = *p++;
        n--;
        if ((e & 128) && n > 0) {
            rows = 1 + *p++ % DIM_MAX;
            n--;
            if (square) cols = rows;
        }
        const attn_capture_key key = {.value = ATTN_V_WEIGHTS, .stack = stack,
                                      .layer = e % (layers + 1), .head = (e >> 2) % (heads + 1),
                                      .kind = cross && (m & 1) ? ATTN_KIND_CROSS : ATTN_KIND_SELF,
                                      .causal = causal && !(cross && (m & 1))};
        if (!read_map(w, rows, cols, row_offset, raw, key.causal, &p, &n)) break;
        const attn_capture_view v = {.rows = rows, .cols = cols, .data = w, .row_offset = row_offset};
        for (int s = 0; s < 2; s++) {
            if (!sinks[s].wants(sinks[s].user, &key)) continue;
            err = (attn_error){0};
            check_status(sinks[s].emit(sinks[s].user, &key, &v, &err), &err);
        }
        if (attn_csv_stats_wants(&stats, &key) &&
            attn_csv_stats_emit(&stats, &key, &v, &err) != ATTN_OK)
            __builtin_trap();
        if (!raw) check_stats_ranges(&v, &run);
    }
    err = (attn_error){0};
    check_status(attn_reduce_flush(&red, &err), &err);
    attn_reduce_free(&red);
    attn_rollout_free(&roll);
    attn_labels_free(&labels);
    for (int i = 0; i < 3; i++) {
        if (fclose(f[i]) != 0) __builtin_trap();
        if (len[i] && buf[i][len[i] - 1] != '\n') __builtin_trap(); /* whole rows */
        free(buf[i]);
    }
    return 0;
}
