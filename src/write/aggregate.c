/* Maps made from several heads or layers (attn/write.h): the mean or the
 * largest weight over the heads of an attention sub-layer (attn_reduce), and
 * attention rollout across the layers of a stack (attn_rollout, Abnar &
 * Zuidema 2020). docs/aggregation.md has the formulas.
 *
 * Shapes: n = positions of a self-attention map (rows = cols = n); a
 * reduced map is [rows, cols] like the heads it comes from (T, Tk). */
#include "attn/write.h"
#include "base/util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x as float32; a finite x beyond float32's range becomes the largest float
 * of its sign (a conversion out of range is undefined in C). */
static float to_float(double x) {
    if (x > FLT_MAX) return isinf(x) ? (float)x : FLT_MAX;
    if (x < -FLT_MAX) return isinf(x) ? (float)x : -FLT_MAX;
    return (float)x;
}

/* Elements of a view [rows, cols], checked: ATTN_ERR_USAGE for a negative
 * size or data missing, ATTN_ERR_NOMEM for a product that overflows. */
static attn_status view_elems(const attn_capture_view *v, const char *who, size_t *n,
                              attn_error *err) {
    if (v->rows < 0 || v->cols < 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: a map of %d x %d weights", who, v->rows,
                              v->cols);
    if (!attn_mul_size((size_t)v->rows, (size_t)v->cols, n))
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: a map of %d x %d weights is too large", who,
                              v->rows, v->cols);
    if (*n > 0 && !v->data) return attn_error_set(err, ATTN_ERR_USAGE, "%s: a map without data", who);
    return ATTN_OK;
}

/* Grows *p to hold n elements of `size` bytes (keeps nothing of it). */
static attn_status grow(void **p, size_t n, size_t size, const char *what, attn_error *err) {
    void *q = attn_alloc_array(n, size, what, err);
    if (!q) return ATTN_ERR_NOMEM;
    free(*p);
    *p = q;
    return ATTN_OK;
}

static bool is_head_weights(const attn_capture_key *key) {
    return key->value == ATTN_V_WEIGHTS && key->head >= 0;
}

static bool inner_wants(const attn_capture *c, const attn_capture_key *key) {
    return c->wants && c->emit && c->wants(c->user, key);
}

/* Hands data [rows, cols] to c when it wants key. */
static attn_status offer(const attn_capture *c, const attn_capture_key *key, const float *data,
                         int rows, int cols, int row_offset, attn_error *err) {
    if (!inner_wants(c, key)) return ATTN_OK;
    const attn_capture_view v = {.rows = rows, .cols = cols, .data = data, .row_offset = row_offset};
    return c->emit(c->user, key, &v, err);
}

/* ---- --reduce mean|max ---- */

attn_status attn_reduce_init(attn_reduce *a, attn_capture inner, attn_reduce_op op, int last_head,
                             attn_error *err) {
    *a = (attn_reduce){0};
    if (op != ATTN_REDUCE_MEAN && op != ATTN_REDUCE_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "reduce: unknown operation %d", (int)op);
    if (last_head < -1)
        return attn_error_set(err, ATTN_ERR_USAGE, "reduce: last head %d is below -1", last_head);
    a->inner = inner;
    a->op = op;
    a->last_head = last_head;
    return ATTN_OK;
}

void attn_reduce_free(attn_reduce *a) {
    if (!a) return;
    free(a->acc);
    free(a->out);
    a->acc = NULL;
    a->out = NULL;
    a->cap = 0;
    a->pending = false;
}

static int reduce_sentinel(const attn_reduce *a) {
    return a->op == ATTN_REDUCE_MAX ? ATTN_HEAD_MAX : ATTN_HEAD_MEAN;
}

bool attn_reduce_wants(void *user, const attn_capture_key *key) {
    attn_reduce *a = user;
    if (!is_head_weights(key)) return inner_wants(&a->inner, key);
    attn_capture_key k = *key;
    k.head = reduce_sentinel(a);
    return inner_wants(&a->inner, &k);
}

/* Does the map v of key belong to the sub-layer being accumulated? */
static bool same_sublayer(const attn_reduce *a, const attn_capture_key *key,
                          const attn_capture_view *v) {
    const attn_capture_key *p = &a->key;
    return key->stack == p->stack && key->source == p->source && key->layer == p->layer &&
           key->kind == p->kind && key->causal == p->causal && v->rows == a->rows &&
           v->cols == a->cols && v->row_offset == a->row_offset;
}

attn_status attn_reduce_flush(attn_reduce *a, attn_error *err) {
    if (!a->pending) return ATTN_OK;
    a->pending = false;
    const size_t n = (size_t)a->rows * (size_t)a->cols; /* checked when the map began */
    const double scale = a->op == ATTN_REDUCE_MEAN && a->count > 0 ? 1.0 / a->count : 1.0;
    for (size_t i = 0; i < n; i++) a->out[i] = to_float(a->acc[i] * scale);
    attn_capture_key k = a->key;
    k.head = reduce_sentinel(a);
    return offer(&a->inner, &k, a->out, a->rows, a->cols, a->row_offset, err);
}

void attn_reduce_discard(attn_reduce *a) { a->pending = false; }

attn_status attn_reduce_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                             attn_error *err) {
    attn_reduce *a = user;
    if (!is_head_weights(key))
        return a->inner.emit ? a->inner.emit(a->inner.user, key, v, err) : ATTN_OK;
    attn_status rc;
    size_t n;
    if ((rc = view_elems(v, "reduce", &n, err))) return rc;
    if (a->pending && !same_sublayer(a, key, v) && (rc = attn_reduce_flush(a, err))) return rc;
    if (!a->pending) {
        if (n > a->cap || !a->acc) {
            if ((rc = grow((void **)&a->acc, n, sizeof(double), "reduced map", err)) ||
                (rc = grow((void **)&a->out, n, sizeof(float), "reduced map", err)))
                return rc;
            a->cap = n;
        }
        a->pending = true;
        a->key = *key;
        a->rows = v->rows;
        a->cols = v->cols;
        a->row_offset = v->row_offset;
        a->count = 0;
        for (size_t i = 0; i < n; i++) a->acc[i] = v->data[i]; /* [rows, cols] */
    } else if (a->op == ATTN_REDUCE_MEAN) {
        for (size_t i = 0; i < n; i++) a->acc[i] += v->data[i];
    } else {
        for (size_t i = 0; i < n; i++)
            if (v->data[i] > a->acc[i]) a->acc[i] = v->data[i];
    }
    a->count++;
    return key->head == a->last_head ? attn_reduce_flush(a, err) : ATTN_OK;
}

/* ---- --rollout ---- */

attn_status attn_rollout_init(attn_rollout *r, attn_capture inner, const attn_config *cfg,
                              attn_error *err) {
    *r = (attn_rollout){0};
    if (!cfg || cfg->n_heads < 1 || cfg->n_layers < 0 || cfg->n_encoder_layers < 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "rollout: a config with heads and layers is needed");
    r->inner = inner;
    r->n_heads = cfg->n_heads;
    switch (cfg->arch) {
    case ATTN_ARCH_ENCODER: r->n_layers[ATTN_STACK_ENCODER] = cfg->n_layers; break;
    case ATTN_ARCH_DECODER: r->n_layers[ATTN_STACK_DECODER] = cfg->n_layers; break;
    case ATTN_ARCH_ENCODER_DECODER:
        r->n_layers[ATTN_STACK_ENCODER] = cfg->n_encoder_layers;
        r->n_layers[ATTN_STACK_DECODER] = cfg->n_layers;
        break;
    default: return attn_error_set(err, ATTN_ERR_USAGE, "rollout: unknown architecture");
    }
    r->st[0].layer = r->st[1].layer = -1;
    return ATTN_OK;
}

void attn_rollout_free(attn_rollout *r) {
    if (!r) return;
    for (int s = 0; s < 2; s++) {
        attn_rollout_stack *st = &r->st[s];
        free(st->a);
        free(st->r);
        free(st->tmp);
        free(st->out);
        *st = (attn_rollout_stack){.layer = -1};
    }
}

/* Is key the weights of a head of a layer the rollout can take? */
static bool rollout_input(const attn_rollout *r, const attn_capture_key *key) {
    return key->value == ATTN_V_WEIGHTS && key->kind == ATTN_KIND_SELF && key->head >= 0 &&
           key->head < r->n_heads && (key->stack == ATTN_STACK_DECODER ||
                                      key->stack == ATTN_STACK_ENCODER) &&
           key->layer >= 0 && key->layer < r->n_layers[key->stack];
}

bool attn_rollout_wants(void *user, const attn_capture_key *key) {
    attn_rollout *r = user;
    if (key->value != ATTN_V_WEIGHTS) return inner_wants(&r->inner, key);
    if (!rollout_input(r, key)) return false;
    /* the product up to any later layer wanted needs this layer */
    attn_capture_key k = *key;
    k.head = ATTN_HEAD_ROLLOUT;
    for (k.layer = key->layer; k.layer < r->n_layers[key->stack]; k.layer++)
        if (inner_wants(&r->inner, &k)) return true;
    return false;
}

/* Room for n x n maps in every buffer of st. */
static attn_status rollout_reserve(attn_rollout_stack *st, int n, attn_error *err) {
    size_t nn;
    if (!attn_mul_size((size_t)n, (size_t)n, &nn))
        return attn_error_set(err, ATTN_ERR_NOMEM, "rollout: %d positions are too many", n);
    if (nn <= st->cap && st->a) return ATTN_OK;
    attn_status rc;
    if ((rc = grow((void **)&st->a, nn, sizeof(double), "rollout", err)) ||
        (rc = grow((void **)&st->r, nn, sizeof(double), "rollout", err)) ||
        (rc = grow((void **)&st->tmp, nn, sizeof(double), "rollout", err)) ||
        (rc = grow((void **)&st->out, nn, sizeof(float), "rollout", err))) {
        st->cap = 0;
        return rc;
    }
    st->cap = nn;
    return ATTN_OK;
}

static void swap(double **x, double **y) {
    double *t = *x;
    *x = *y;
    *y = t;
}

/* The heads of st->layer are all in st->a (their sum, [n, n]): st->r
 * becomes R of that layer. */
static void rollout_finish(attn_rollout_stack *st, int n_heads) {
    const size_t n = (size_t)st->n;
    double *a = st->a; /* [n, n] */
    const double w = 0.5 / n_heads;
    for (size_t i = 0; i < n; i++) {
        double *row = a + i * n, sum = 0;
        for (size_t j = 0; j < n; j++) {
            row[j] = w * row[j] + (i == j ? 0.5 : 0.0); /* 0.5 A + 0.5 I, A the mean */
            sum += row[j];
        }
        if (sum != 0 && isfinite(sum))
            for (size_t j = 0; j < n; j++) row[j] /= sum;
    }
    if (st->layer == 0) {
        swap(&st->a, &st->r); /* R_0 = Ã_0 */
        return;
    }
    /* tmp = Ã_l · R_{l-1}: tmp[i][j] = sum_k Ã[i][k] R[k][j] */
    double *t = st->tmp, *r = st->r;
    memset(t, 0, n * n * sizeof *t);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++) {
            const double aik = a[i * n + k];
            if (aik == 0) continue; /* the masked half of a causal map */
            const double *rk = r + k * n;
            double *ti = t + i * n;
            for (size_t j = 0; j < n; j++) ti[j] += aik * rk[j];
        }
    swap(&st->tmp, &st->r);
}

attn_status attn_rollout_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                              attn_error *err) {
    attn_rollout *r = user;
    if (key->value != ATTN_V_WEIGHTS)
        return r->inner.emit ? r->inner.emit(r->inner.user, key, v, err) : ATTN_OK;
    if (!rollout_input(r, key)) return ATTN_OK; /* cross-attention, stack values: not taken */
    char name[128];
    attn_capture_name(key, name, sizeof name);
    size_t nn;
    attn_status rc = view_elems(v, "rollout", &nn, err);
    if (rc) return rc;
    if (v->rows != v->cols || v->rows < 1 || v->row_offset != 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "rollout: %s is %d x %d from row %d; it needs the square map of "
                              "the whole sequence at once",
                              name, v->rows, v->cols, v->row_offset);
    attn_rollout_stack *st = &r->st[key->stack];
    const int n = v->rows;
    if (key->head == 0) {
        if (key->layer > 0 && (st->layer != key->layer - 1 || st->heads != r->n_heads || st->n != n))
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "rollout: %s came before every head of layer %d of %d positions",
                                  name, key->layer - 1, n);
        if ((rc = rollout_reserve(st, n, err))) return rc;
        st->layer = key->layer;
        st->heads = 0;
        st->n = n;
        for (size_t i = 0; i < nn; i++) st->a[i] = v->data[i];
    } else {
        if (st->layer != key->layer || st->heads != key->head || st->n != n)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "rollout: %s came out of order (heads go 0 to %d, layers from 0)",
                                  name, r->n_heads - 1);
        for (size_t i = 0; i < nn; i++) st->a[i] += v->data[i];
    }
    if (++st->heads < r->n_heads) return ATTN_OK;
    rollout_finish(st, r->n_heads);
    attn_capture_key k = *key;
    k.head = ATTN_HEAD_ROLLOUT;
    if (!inner_wants(&r->inner, &k)) return ATTN_OK;
    for (size_t i = 0; i < nn; i++) st->out[i] = to_float(st->r[i]);
    return offer(&r->inner, &k, st->out, n, n, 0, err);
}
