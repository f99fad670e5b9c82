/* Per-head statistics of attention maps (attn/write.h): the numbers
 * (attn_map_stats_compute) and their CSV writer (attn_csv_stats). docs/
 * aggregation.md has the formulas.
 *
 * Shapes: a map v is [T, Tk] weights, row r the query at position
 * i = row_offset + r, column j the key at position j. */
#include "attn/write.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

void attn_map_stats_compute(attn_map_stats *s, const attn_capture_view *v) {
    attn_map_stats_pick(s, v, NULL, NULL, NULL, NULL);
}

void attn_map_stats_pick(attn_map_stats *s, const attn_capture_view *v, const attn_labels *ql,
                         const attn_labels *kl, const attn_pick *from, const attn_pick *to) {
    *s = (attn_map_stats){0};
    if (!v || !v->data || v->rows <= 0 || v->cols <= 0) return;
    const int64_t cols = v->cols;
    /* the picked keys, matched once per map rather than once per weight
     * (a text pick compares strings); without memory, matched per weight */
    unsigned char *picked = to ? malloc((size_t)cols) : NULL;
    if (picked)
        for (int64_t j = 0; j < cols; j++) picked[j] = attn_pick_has(to, kl, (int)j);
    double entropy = 0, sink = 0, distance = 0, prev = 0, self = 0, on = 0;
    for (int r = 0; r < v->rows; r++) {
        const int64_t i = (int64_t)v->row_offset + r;
        if (from && !attn_pick_has(from, ql, (int)i)) continue;
        const float *row = v->data + (size_t)r * (size_t)cols; /* [Tk] */
        double e = 0, d = 0, o = 0;
        for (int64_t j = 0; j < cols; j++) {
            const double w = row[j];
            if (w > 0) e -= w * log(w); /* 0 ln 0 = 0 */
            d += w * (double)(i > j ? i - j : j - i);
            if (to && (picked ? picked[j] : attn_pick_has(to, kl, (int)j))) o += w;
        }
        s->rows++;
        entropy += e;
        distance += d;
        on += o;
        sink += row[0];
        if (i >= 0 && i < cols) self += row[i];
        if (i >= 1) {
            s->prev_rows++;
            if (i - 1 < cols) prev += row[i - 1];
        }
    }
    free(picked);
    if (s->rows == 0) return;
    const double n = s->rows;
    s->entropy = entropy / n;
    s->sink = sink / n;
    s->distance = distance / n;
    s->self = self / n;
    s->to = on / n;
    s->prev = s->prev_rows > 0 ? prev / s->prev_rows : 0;
}

void attn_csv_stats_header(FILE *f, bool to) {
    fputs(to ? "input,stack,layer,kind,head,entropy,sink,distance,prev,self,to\n"
             : "input,stack,layer,kind,head,entropy,sink,distance,prev,self\n",
          f);
}

bool attn_csv_stats_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

attn_status attn_csv_stats_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                                attn_error *err) {
    (void)err;
    attn_csv_stats *w = user;
    attn_map_stats s;
    const attn_labels *ql, *kl;
    attn_run_key_labels(w->run, key, &ql, &kl);
    attn_map_stats_pick(&s, v, ql, kl, w->run->from, w->run->to);
    if (s.rows == 0) return ATTN_OK; /* --from picks no query of this map */
    char num[12];
    attn_csv_input(w->f, w->run, w->raw_text);
    fprintf(w->f, ",%s,%d,%s,%s,%.9g,%.9g,%.9g,", attn_stack_name(key->stack), key->layer,
            attn_kind_name(key->kind), attn_head_name(key->head, num, sizeof num), s.entropy,
            s.sink, s.distance);
    if (s.prev_rows > 0) fprintf(w->f, "%.9g", s.prev);
    fprintf(w->f, ",%.9g", s.self);
    if (w->run->to) fprintf(w->f, ",%.9g", s.to);
    putc('\n', w->f);
    return ATTN_OK;
}
