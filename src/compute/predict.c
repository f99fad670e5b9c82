/* predict: next-token choices from a logits row (greedy argmax, top-k with
 * probabilities).
 *
 * Order of entries: a larger logit first; equal logits by the lower id; a
 * NaN after every number (so a broken row still gives a deterministic
 * answer; its probabilities are then NaN too). */
#include "base/util.h"

#include <math.h>

/* Does entry (la, ia) rank before (lb, ib)? */
static bool ranks_before(float la, int ia, float lb, int ib) {
    bool na = isnan(la), nb = isnan(lb);
    if (na != nb) return nb;
    if (!na && la != lb) return la > lb;
    return ia < ib;
}

int attn_argmax(const float *row, int V) {
    if (!row || V < 1) return -1;
    int best = 0;
    for (int i = 1; i < V; i++)
        if (ranks_before(row[i], i, row[best], best)) best = i;
    return best;
}

/* heap is a min-heap of n entries under ranks_before: heap[0] ranks last. */
static bool heap_less(const attn_prediction *a, const attn_prediction *b) {
    return ranks_before(b->logit, b->id, a->logit, a->id); /* a ranks after b */
}

static void sift_down(attn_prediction *heap, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_less(&heap[l], &heap[m])) m = l;
        if (r < n && heap_less(&heap[r], &heap[m])) m = r;
        if (m == i) return;
        attn_prediction t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

static void sift_up(attn_prediction *heap, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(&heap[i], &heap[p])) return;
        attn_prediction t = heap[i];
        heap[i] = heap[p];
        heap[p] = t;
        i = p;
    }
}

/* The softmax of row [V] in double, shifted by its largest logit: *mx and
 * the sum of exp(logit - *mx); true when the row holds a NaN (every
 * probability is then NaN). */
static bool softmax_base(const float *logits, int V, double *mx, double *sum) {
    *mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i])) return true;
        if (logits[i] > *mx) *mx = logits[i];
    }
    *sum = 0.0;
    for (int i = 0; i < V; i++) *sum += exp((double)logits[i] - *mx);
    return false;
}

attn_status attn_topk(attn_prediction *out, int k, const float *logits, int V, attn_error *err) {
    if (!out || !logits) return attn_error_set(err, ATTN_ERR_USAGE, "attn_topk: NULL argument");
    if (V < 1) return attn_error_set(err, ATTN_ERR_USAGE, "attn_topk: empty row (V = %d)", V);
    if (k < 1 || k > V)
        return attn_error_set(err, ATTN_ERR_USAGE, "top-k: k = %d, expected 1 to %d", k, V);

    /* the k best in a heap whose root is the worst of them */
    int n = 0;
    for (int i = 0; i < V; i++) {
        attn_prediction e = {.id = i, .logit = logits[i]};
        if (n < k) {
            out[n] = e;
            sift_up(out, n++);
        } else if (ranks_before(e.logit, e.id, out[0].logit, out[0].id)) {
            out[0] = e;
            sift_down(out, n, 0);
        }
    }
    /* heap sort: move the worst to the end, repeatedly: best first */
    for (int end = n - 1; end > 0; end--) {
        attn_prediction t = out[0];
        out[0] = out[end];
        out[end] = t;
        sift_down(out, end, 0);
    }

    double mx, sum;
    const bool nan = softmax_base(logits, V, &mx, &sum);
    for (int j = 0; j < k; j++)
        out[j].prob = nan ? NAN : exp((double)out[j].logit - mx) / sum;
    return ATTN_OK;
}

attn_status attn_token_prediction(attn_prediction *out, const float *logits, int V, int id,
                                  attn_error *err) {
    if (!out || !logits)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_token_prediction: NULL argument");
    if (id < 0 || id >= V)
        return attn_error_set(err, ATTN_ERR_USAGE, "token id %d is out of range 0-%d", id, V - 1);
    double mx, sum;
    const bool nan = softmax_base(logits, V, &mx, &sum);
    *out = (attn_prediction){.id = id, .logit = logits[id],
                             .prob = nan ? NAN : exp((double)logits[id] - mx) / sum};
    return ATTN_OK;
}

int attn_token_rank(const float *logits, int V, int id) {
    if (!logits || id < 0 || id >= V) return 0;
    int rank = 1;
    for (int i = 0; i < V; i++)
        if (i != id && ranks_before(logits[i], i, logits[id], id)) rank++;
    return rank;
}
