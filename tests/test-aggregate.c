/* The aggregation and statistics sinks (attn/write.h: attn_reduce,
 * attn_rollout, attn_map_stats_compute, attn_csv_stats) on small maps made
 * here: random softmax rows for the mean, max and rollout, checked against
 * sums and products written out in this file in double; a hand-made map
 * whose statistics are worked out by hand; the CSV row byte for byte; and
 * the refusals (heads or layers out of order, a map that is not square). */
#include "attn/attn.h"
#include "attn/write.h"
#include "support.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 5  /* positions of the maps */
#define H 3  /* heads */
#define L 3  /* layers */

/* A sink that keeps the maps it gets (up to 8) and wants what `want` says. */
typedef struct collect {
    int n;
    attn_capture_key keys[8];
    float data[8][N * N];
    int rows[8], cols[8];
    int want_layer; /* -1: every layer */
} collect;

static bool collect_wants(void *user, const attn_capture_key *key) {
    const collect *c = user;
    return key->value == ATTN_V_WEIGHTS && (c->want_layer < 0 || key->layer == c->want_layer);
}

static attn_status collect_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                                attn_error *err) {
    (void)err;
    collect *c = user;
    ck_assert_int_lt(c->n, 8);
    ck_assert_int_le(v->rows * v->cols, N * N);
    c->keys[c->n] = *key;
    c->rows[c->n] = v->rows;
    c->cols[c->n] = v->cols;
    memcpy(c->data[c->n], v->data, sizeof(float) * (size_t)(v->rows * v->cols));
    c->n++;
    return ATTN_OK;
}

/* Random softmax rows [rows, cols], causal when asked (entries after the
 * query exactly 0). */
static void random_map(float *w, int rows, int cols, bool causal, tu_rng *rng) {
    for (int i = 0; i < rows; i++) {
        double sum = 0, e[N];
        int n = causal ? i + 1 : cols;
        for (int j = 0; j < n; j++) sum += e[j] = exp(3 * tu_rng_normal(rng));
        for (int j = 0; j < cols; j++) w[i * cols + j] = j < n ? (float)(e[j] / sum) : 0.0f;
    }
}

static attn_capture_key weights_key(int layer, int head, attn_attn_kind kind) {
    return (attn_capture_key){.value = ATTN_V_WEIGHTS, .stack = ATTN_STACK_DECODER, .layer = layer,
                              .kind = kind, .head = head, .causal = kind == ATTN_KIND_SELF};
}

static attn_status send(attn_capture c, attn_capture_key key, const float *w, int rows, int cols,
                        attn_error *err) {
    const attn_capture_view v = {.rows = rows, .cols = cols, .data = w};
    if (!c.wants(c.user, &key)) return ATTN_OK;
    return c.emit(c.user, &key, &v, err);
}

START_TEST(reduce_mean_max) {
    tu_rng rng = {7};
    float w[H][N * 4];
    for (int h = 0; h < H; h++) random_map(w[h], N, 4, false, &rng);
    for (int op = 0; op < 2; op++) {
        collect c = {.want_layer = -1};
        attn_reduce a;
        attn_error err;
        ck_assert_int_eq(attn_reduce_init(&a, (attn_capture){collect_wants, collect_emit, &c},
                                          op ? ATTN_REDUCE_MAX : ATTN_REDUCE_MEAN, H - 1, &err),
                         ATTN_OK);
        attn_capture cap = {attn_reduce_wants, attn_reduce_emit, &a};
        for (int h = 0; h < H; h++) {
            ck_assert_int_eq(c.n, 0); /* nothing before the last head */
            ck_assert_int_eq(send(cap, weights_key(1, h, ATTN_KIND_CROSS), w[h], N, 4, &err), ATTN_OK);
        }
        ck_assert_int_eq(c.n, 1);
        ck_assert_int_eq(c.keys[0].head, op ? ATTN_HEAD_MAX : ATTN_HEAD_MEAN);
        ck_assert_int_eq(c.keys[0].layer, 1);
        ck_assert_int_eq(c.keys[0].kind, ATTN_KIND_CROSS);
        ck_assert_int_eq(c.rows[0], N);
        ck_assert_int_eq(c.cols[0], 4);
        for (int k = 0; k < N * 4; k++) {
            double want = op ? w[0][k] : 0;
            for (int h = 0; h < H; h++)
                want = op ? fmax(want, w[h][k]) : want + (double)w[h][k] / H;
            ck_assert_float_eq_tol(c.data[0][k], want, 1e-7);
        }
        ck_assert_int_eq(attn_reduce_flush(&a, &err), ATTN_OK); /* nothing pending */
        ck_assert_int_eq(c.n, 1);
        attn_reduce_free(&a);
    }
}
END_TEST

/* last_head -1: a map is emitted at a change of sub-layer and at the flush;
 * the mean is over the heads that came. */
START_TEST(reduce_flush_on_change) {
    tu_rng rng = {8};
    float w[2][N * N];
    random_map(w[0], N, N, true, &rng);
    random_map(w[1], N, N, true, &rng);
    collect c = {.want_layer = -1};
    attn_reduce a;
    attn_error err;
    ck_assert_int_eq(attn_reduce_init(&a, (attn_capture){collect_wants, collect_emit, &c},
                                      ATTN_REDUCE_MEAN, -1, &err), ATTN_OK);
    attn_capture cap = {attn_reduce_wants, attn_reduce_emit, &a};
    ck_assert_int_eq(send(cap, weights_key(0, 0, ATTN_KIND_SELF), w[0], N, N, &err), ATTN_OK);
    ck_assert_int_eq(send(cap, weights_key(0, 2, ATTN_KIND_SELF), w[1], N, N, &err), ATTN_OK);
    ck_assert_int_eq(c.n, 0);
    ck_assert_int_eq(send(cap, weights_key(1, 0, ATTN_KIND_SELF), w[1], N, N, &err), ATTN_OK);
    ck_assert_int_eq(c.n, 1);
    ck_assert(c.keys[0].causal);
    for (int k = 0; k < N * N; k++)
        ck_assert_float_eq_tol(c.data[0][k], ((double)w[0][k] + w[1][k]) / 2, 1e-7);
    ck_assert_int_eq(attn_reduce_flush(&a, &err), ATTN_OK);
    ck_assert_int_eq(c.n, 2);
    ck_assert_int_eq(c.keys[1].layer, 1);
    ck_assert_mem_eq(c.data[1], w[1], sizeof w[1]); /* the mean of one head is that head */
    /* a discarded map is not emitted */
    ck_assert_int_eq(send(cap, weights_key(2, 0, ATTN_KIND_SELF), w[0], N, N, &err), ATTN_OK);
    attn_reduce_discard(&a);
    ck_assert_int_eq(attn_reduce_flush(&a, &err), ATTN_OK);
    ck_assert_int_eq(c.n, 2);
    /* a map of negative size is refused */
    const attn_capture_key key = weights_key(0, 0, ATTN_KIND_SELF);
    const attn_capture_view bad = {.rows = -1, .cols = 2, .data = w[0]};
    ck_assert_int_eq(attn_reduce_emit(&a, &key, &bad, &err), ATTN_ERR_USAGE);
    attn_reduce_free(&a);
    attn_reduce_free(NULL);
}
END_TEST

/* A rollout of a decoder of H heads and L layers in front of c; its capture. */
static attn_capture rollout_on(attn_rollout *r, collect *c) {
    const attn_config cfg = {.arch = ATTN_ARCH_DECODER, .n_heads = H, .n_layers = L};
    attn_error err;
    ck_assert_int_eq(attn_rollout_init(r, (attn_capture){collect_wants, collect_emit, c}, &cfg, &err),
                     ATTN_OK);
    return (attn_capture){attn_rollout_wants, attn_rollout_emit, r};
}

/* Ã = 0.5 mean + 0.5 I, rows renormalised, and R = Ã · prev (prev NULL: R = Ã). */
static void rollout_step(double *r, const float w[H][N * N], const double *prev) {
    double a[N * N];
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < N; j++) {
            double m = 0;
            for (int h = 0; h < H; h++) m += w[h][i * N + j];
            a[i * N + j] = 0.5 * m / H + (i == j ? 0.5 : 0);
            sum += a[i * N + j];
        }
        for (int j = 0; j < N; j++) a[i * N + j] /= sum;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += a[i * N + k] * (prev ? prev[k * N + j] : k == j);
            r[i * N + j] = s;
        }
}

START_TEST(rollout_product) {
    tu_rng rng = {9};
    float w[L][H][N * N];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) random_map(w[l][h], N, N, true, &rng);
    collect c = {.want_layer = 1}; /* only R_1 is wanted: layers 0 and 1 are taken */
    attn_rollout r;
    attn_error err;
    attn_capture cap = rollout_on(&r, &c);
    attn_capture_key k2 = weights_key(2, 0, ATTN_KIND_SELF), kx = weights_key(0, 0, ATTN_KIND_CROSS);
    ck_assert(!cap.wants(cap.user, &k2)); /* no later layer wanted */
    ck_assert(!cap.wants(cap.user, &kx)); /* cross-attention is not taken */
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            ck_assert_int_eq(send(cap, weights_key(l, h, ATTN_KIND_SELF), w[l][h], N, N, &err), ATTN_OK);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.keys[0].head, ATTN_HEAD_ROLLOUT);
    ck_assert_int_eq(c.keys[0].layer, 1);
    ck_assert(c.keys[0].causal);
    double r0[N * N], r1[N * N];
    rollout_step(r0, (const float(*)[N * N])w[0], NULL);
    rollout_step(r1, (const float(*)[N * N])w[1], r0);
    for (int k = 0; k < N * N; k++) ck_assert_float_eq_tol(c.data[0][k], r1[k], 1e-6);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) ck_assert(c.data[0][i * N + j] == 0.0f); /* still causal */
    /* every layer wanted: a new input starts at layer 0 again */
    c = (collect){.want_layer = -1};
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            ck_assert_int_eq(send(cap, weights_key(l, h, ATTN_KIND_SELF), w[l][h], N, N, &err), ATTN_OK);
    ck_assert_int_eq(c.n, L);
    for (int k = 0; k < N * N; k++) ck_assert_float_eq_tol(c.data[0][k], r0[k], 1e-6);
    for (int k = 0; k < N * N; k++) ck_assert_float_eq_tol(c.data[1][k], r1[k], 1e-6);
    attn_rollout_free(&r);
}
END_TEST

START_TEST(rollout_refusals) {
    tu_rng rng = {10};
    float w[N * N];
    random_map(w, N, N, false, &rng);
    collect c = {.want_layer = -1};
    attn_rollout r;
    attn_error err;
    attn_capture cap = rollout_on(&r, &c);
    /* layer 1 before layer 0 */
    ck_assert_int_eq(send(cap, weights_key(1, 0, ATTN_KIND_SELF), w, N, N, &err), ATTN_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "blocks.1.attn.weights.h0"));
    /* head 2 after head 0 */
    ck_assert_int_eq(send(cap, weights_key(0, 0, ATTN_KIND_SELF), w, N, N, &err), ATTN_OK);
    ck_assert_int_eq(send(cap, weights_key(0, 2, ATTN_KIND_SELF), w, N, N, &err), ATTN_ERR_USAGE);
    /* not square, and not from row 0 */
    ck_assert_int_eq(send(cap, weights_key(0, 0, ATTN_KIND_SELF), w, N, N - 1, &err), ATTN_ERR_USAGE);
    const attn_capture_key key = weights_key(0, 0, ATTN_KIND_SELF);
    const attn_capture_view late = {.rows = 1, .cols = 1, .data = w, .row_offset = 3};
    ck_assert_int_eq(attn_rollout_emit(&r, &key, &late, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(c.n, 0);
    attn_rollout_free(&r);
    attn_rollout_free(NULL);
    const attn_config none = {.arch = ATTN_ARCH_DECODER};
    ck_assert_int_eq(attn_rollout_init(&r, (attn_capture){0}, &none, &err), ATTN_ERR_USAGE);
}
END_TEST

/* Worked out by hand:
 *   rows [1 0 0], [.5 .5 0], [.25 .25 .5]
 *   entropy  (0 + ln 2 + (ln 4 / 2 + ln 2 / 2)) / 3 = (2.5 ln 2) / 3
 *   sink     (1 + .5 + .25) / 3 = 7/12
 *   distance (0 + .5 + (.25*2 + .25*1)) / 3 = 1.25 / 3
 *   prev     (.5 + .25) / 2 = .375     (row 0 left out)
 *   self     (1 + .5 + .5) / 3 = 2/3 */
static const float hand[9] = {1, 0, 0, .5f, .5f, 0, .25f, .25f, .5f};

START_TEST(stats_by_hand) {
    attn_map_stats s;
    const attn_capture_view v = {.rows = 3, .cols = 3, .data = hand};
    attn_map_stats_compute(&s, &v);
    ck_assert_int_eq(s.rows, 3);
    ck_assert_int_eq(s.prev_rows, 2);
    ck_assert_double_eq_tol(s.entropy, 2.5 * log(2.0) / 3, 1e-12);
    ck_assert_double_eq_tol(s.sink, 7.0 / 12, 1e-12);
    ck_assert_double_eq_tol(s.distance, 1.25 / 3, 1e-12);
    ck_assert_double_eq_tol(s.prev, 0.375, 1e-12);
    ck_assert_double_eq_tol(s.self, 2.0 / 3, 1e-12);
    /* the last row alone, at position 2 (row_offset): the same row's numbers */
    const attn_capture_view last = {.rows = 1, .cols = 3, .data = hand + 6, .row_offset = 2};
    attn_map_stats_compute(&s, &last);
    ck_assert_double_eq_tol(s.distance, 0.75, 1e-12);
    ck_assert_double_eq_tol(s.prev, 0.25, 1e-12);
    ck_assert_double_eq_tol(s.self, 0.5, 1e-12);
    /* cross-attention with fewer keys than queries: keys past the last count 0 */
    const attn_capture_view wide = {.rows = 3, .cols = 1, .data = (const float[]){1, 1, 1}};
    attn_map_stats_compute(&s, &wide);
    ck_assert_double_eq_tol(s.self, 1.0 / 3, 1e-12);
    ck_assert_double_eq_tol(s.prev, 0.5, 1e-12); /* row 1's key 0; row 2's key 1 is past the end */
    ck_assert_double_eq_tol(s.distance, 1.0, 1e-12);
    /* an empty map */
    const attn_capture_view empty = {.rows = 0, .cols = 3, .data = hand};
    attn_map_stats_compute(&s, &empty);
    ck_assert_int_eq(s.rows, 0);
    ck_assert(s.entropy == 0 && s.sink == 0);
}
END_TEST

START_TEST(stats_csv_rows) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    const attn_run_info run = {.input = 4};
    attn_csv_stats w = {.f = f, .run = &run};
    attn_csv_stats_header(f, false);
    attn_capture_key key = weights_key(1, 2, ATTN_KIND_SELF);
    const attn_capture_view v = {.rows = 3, .cols = 3, .data = hand};
    ck_assert(attn_csv_stats_wants(&w, &key));
    ck_assert_int_eq(attn_csv_stats_emit(&w, &key, &v, NULL), ATTN_OK);
    const attn_capture_view one = {.rows = 1, .cols = 3, .data = hand};
    key.stack = ATTN_STACK_ENCODER;
    key.kind = ATTN_KIND_CROSS;
    key.head = 0;
    ck_assert_int_eq(attn_csv_stats_emit(&w, &key, &one, NULL), ATTN_OK);
    const attn_run_info keyed = {.input = 5, .key = "doc,7"};
    w.run = &keyed;
    ck_assert_int_eq(attn_csv_stats_emit(&w, &key, &one, NULL), ATTN_OK);
    fclose(f);
    ck_assert_str_eq(buf,
                     "input,stack,layer,kind,head,entropy,sink,distance,prev,self\n"
                     "4,decoder,1,self,2,0.57762265,0.583333333,0.416666667,0.375,0.666666667\n"
                     "4,encoder,1,cross,0,0,1,0,,1\n"
                     "\"doc,7\",encoder,1,cross,0,0,1,0,,1\n");
    free(buf);
    attn_capture_key q = key;
    q.value = ATTN_V_Q;
    ck_assert(!attn_csv_stats_wants(&w, &q));
}
END_TEST

static Suite *aggregate_suite(void) {
    Suite *s = suite_create("aggregate");
    TCase *tc = tcase_create("sinks");
    tcase_add_test(tc, reduce_mean_max);
    tcase_add_test(tc, reduce_flush_on_change);
    tcase_add_test(tc, rollout_product);
    tcase_add_test(tc, rollout_refusals);
    tcase_add_test(tc, stats_by_hand);
    tcase_add_test(tc, stats_csv_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(aggregate_suite()); }
