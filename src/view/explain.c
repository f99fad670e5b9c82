/* attn explain: every step of one attention head, from the numbers the
 * forward pass used.
 *
 * explain_wants / explain_emit form a capture sink that keeps copies of the
 * values of one layer and head (EMBED, the previous block's RESID, ATTN_IN,
 * Q, K, V, SCORES, WEIGHTS, HEAD_CONTEXT, CONCAT, ATTN_OUT, and the encoder
 * output for cross-attention). explain_print then lays them out in order,
 * next to the weights they were made with (read from the model's
 * safetensors file). The only numbers not captured are derived for display:
 * the raw scores Q·Kᵀ (from the captured Q and K rows; the captured scores
 * are their scaled form), the token-embedding and position rows that add up
 * to the captured X, and the pre-rotation A·Wq when the model uses RoPE.
 *
 * Layout: each matrix has a title line "   NAME [rows, cols]  what it is",
 * one or two header lines whose first LW characters are blank, then one
 * line per row whose first LW characters are the row label (position and
 * token, or a dimension). Numbers are "%.{digits}f" in a fixed-width cell
 * (or %e when that does not fit); columns beyond the width are replaced by
 * one "…" column, keeping the first ones and the last. */
#include "view.h"


#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LW 14        /* row label column */
#define WROWS_MAX 12 /* weight matrices taller than this show their first and last rows */

/* ---- the capture sink ---- */

static void mat_free(ex_mat *m) {
    free(m->data);
    memset(m, 0, sizeof *m);
}

void explain_req_free(explain_req *r) {
    for (int k = 0; k < 2; k++)
        for (int v = 0; v < ATTN_V_COUNT; v++) mat_free(&r->heads[k].val[v]);
    mat_free(&r->embed);
    mat_free(&r->prev);
    mat_free(&r->memory);
}

/* Which of r's slots does key fill? NULL when none. */
static ex_mat *slot(explain_req *r, const attn_capture_key *key) {
    if (key->value == ATTN_V_HIDDEN && key->source && r->n_kinds > 0 &&
        (r->kinds[0] == ATTN_KIND_CROSS || (r->n_kinds > 1 && r->kinds[1] == ATTN_KIND_CROSS)))
        return &r->memory;
    if (key->source != r->source || key->stack != r->stack) return NULL;
    if (key->value == ATTN_V_EMBED) return &r->embed;
    if (key->value == ATTN_V_RESID) return key->layer == r->layer - 1 ? &r->prev : NULL;
    if (key->layer != r->layer || key->value < ATTN_V_ATTN_IN || key->value > ATTN_V_ATTN_OUT)
        return NULL;
    for (int k = 0; k < r->n_kinds; k++) {
        if (key->kind != r->kinds[k]) continue;
        switch (key->value) {
        case ATTN_V_Q:
        case ATTN_V_SCORES:
        case ATTN_V_WEIGHTS:
        case ATTN_V_HEAD_CONTEXT:
            return key->head == r->head ? &r->heads[k].val[key->value] : NULL;
        case ATTN_V_K:
        case ATTN_V_V: return key->head == r->kv_head ? &r->heads[k].val[key->value] : NULL;
        default: return &r->heads[k].val[key->value];
        }
    }
    return NULL;
}

bool explain_wants(void *user, const attn_capture_key *key) { return slot(user, key) != NULL; }

attn_status explain_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                 attn_error *err) {
    ex_mat *m = slot(user, key);
    if (!m) return ATTN_OK;
    size_t n = (size_t)v->rows * (size_t)v->cols;
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        attn_capture_name(key, err->message, sizeof err->message);
        strncat(err->message, ": out of memory", sizeof err->message - strlen(err->message) - 1);
        return ATTN_ERR_NOMEM;
    }
    memcpy(p, v->data, n * sizeof *p);
    free(m->data);
    m->data = p;
    m->rows = v->rows;
    m->cols = v->cols;
    m->row_offset = v->row_offset;
    return ATTN_OK;
}

/* ---- layout ---- */

typedef enum { AX_POS, AX_DIM, AX_CONCAT, AX_NAME } ax_kind;
typedef struct axis {
    ax_kind kind;
    const attn_labels *labels; /* AX_POS; NULL: inputs given as vectors, shown by position */
    const char *prefix;       /* AX_DIM: "d", "q", ...; AX_NAME: the one row's label */
    int hd;                   /* AX_CONCAT: head width */
} axis;

enum { MARK_MAX = 1, ROW_SUM = 2, TALL_OK = 4 };

typedef struct pr {
    const explain_opts *o;
    FILE *f;
    int nw;   /* number width */
    int cell; /* nw + 1 marker */
    int section;
} pr;





/* A number with `digits` decimals ("%e" beyond 1e9), never "-0.000". */
static void fmt_num(char *buf, size_t cap, double v, int digits) {
    if (isinf(v))
        snprintf(buf, cap, "%s", v < 0 ? "-inf" : "inf");
    else if (isnan(v))
        snprintf(buf, cap, "nan");
    else if (fabs(v) >= 1e9)
        snprintf(buf, cap, "%.*e", digits, v);
    else
        snprintf(buf, cap, "%.*f", digits, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1))
        memmove(buf, buf + 1, strlen(buf)); /* no "-0.000" */
}

/* A number right-aligned in nw characters (wider when it needs more). */
static void put_num(const pr *p, double v) {
    char buf[64];
    fmt_num(buf, sizeof buf, v, p->o->digits);
    text_pad(p->f, buf, p->nw, true);
}

/* The label of column c (one or two lines: line 0 / line 1). */
static void col_label(char *out, size_t cap, const axis *a, int c, int line, int w) {
    char tmp[64];
    out[0] = '\0';
    switch (a->kind) {
    case AX_POS:
        if (line == 0)
            snprintf(out, cap, "%d", c);
        else
            text_label(out, cap, attn_labels_at(a->labels, c), w);
        break;
    case AX_DIM:
        if (line == 0) snprintf(out, cap, "%s%d", a->prefix, c);
        break;
    case AX_CONCAT:
        if (line == 0) {
            snprintf(tmp, sizeof tmp, "h%d.%d", c / a->hd, c % a->hd);
            text_label(out, cap, tmp, w);
        }
        break;
    case AX_NAME: break;
    }
}

static void row_label(const pr *p, const axis *a, int r) {
    char buf[128], t[96];
    switch (a->kind) {
    case AX_POS:
        text_label(t, sizeof t, a->labels ? attn_labels_at(a->labels, r) : "", LW - 6);
        snprintf(buf, sizeof buf, "  %3d %s", r, t);
        break;
    case AX_DIM: snprintf(buf, sizeof buf, "  %s%d", a->prefix, r); break;
    case AX_CONCAT: snprintf(buf, sizeof buf, "  h%d.%d", r / a->hd, r % a->hd); break;
    case AX_NAME: snprintf(buf, sizeof buf, "  %s", a->prefix); break;
    }
    text_pad(p->f, buf, LW, false);
}

/* The columns shown, in order, -1 standing for one "…" column: all of them
 * when they fit; else the first ones, "…", and the last one; for the
 * concatenated heads (ca is AX_CONCAT), the first columns of every head, each
 * head's cut marked by a "…". Returns the count (at most cols + heads). */
static int col_plan(const pr *p, int cols, int extra, const axis *ca, int *sel) {
    int fit = p->o->full || p->o->width <= 0 ? cols : (p->o->width - LW - extra) / p->cell;
    if (fit < 3) fit = 3;
    int n = 0;
    if (cols <= fit) {
        for (int c = 0; c < cols; c++) sel[n++] = c;
        return n;
    }
    if (ca->kind == AX_CONCAT && ca->hd > 0 && cols / ca->hd > 1 && cols / ca->hd * 2 <= fit) {
        int heads = cols / ca->hd, k = (fit - heads) / heads;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < k && j < ca->hd; j++) sel[n++] = h * ca->hd + j;
            if (k < ca->hd) sel[n++] = -1;
        }
        return n;
    }
    for (int c = 0; c < fit - 2; c++) sel[n++] = c;
    sel[n++] = -1;
    sel[n++] = cols - 1;
    return n;
}

/* m is [rows, cols] doubles; row r is labelled as position / dim row_offset + r.
 * The columns are as wide as the widest number of the matrix needs (at
 * least digits + 4), so no number loses a digit. */
static void print_matrix(pr *pp, const double *m, int rows, int cols, int row_offset,
                         const axis *ra, const axis *ca, unsigned flags) {
    pr local = *pp, *p = &local;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        char nb[64];
        fmt_num(nb, sizeof nb, m[i], p->o->digits);
        if ((int)strlen(nb) > p->nw) p->nw = (int)strlen(nb);
    }
    if (flags & ROW_SUM) p->nw = p->nw < p->o->digits + 4 ? p->o->digits + 4 : p->nw;
    p->cell = p->nw + 1;
    FILE *f = p->f;
    int *sel = malloc(((size_t)cols * 2 + 4) * sizeof *sel);
    if (!sel) return;
    /* the row sums are a convenience: dropped when they would push a column out */
    if ((flags & ROW_SUM) && col_plan(p, cols, p->cell + 2, ca, sel) < cols &&
        col_plan(p, cols, 0, ca, sel) == cols)
        flags &= ~(unsigned)ROW_SUM;
    int extra = (flags & ROW_SUM) ? p->cell + 2 : 0;
    const int nsel = col_plan(p, cols, extra, ca, sel);
    int lines = ca->kind == AX_POS && ca->labels ? 2 : 1;
    char buf[128];
    for (int line = 0; line < lines; line++) {
        for (int i = 0; i < LW; i++) putc(' ', f);
        for (int k = 0; k < nsel; k++) {
            int c = sel[k];
            if (c < 0) {
                text_pad(f, line == 0 ? "…" : "", p->nw, true);
                putc(' ', f);
                continue;
            }
            col_label(buf, sizeof buf, ca, c, line, p->nw);
            text_pad(f, buf, p->nw, true);
            putc(' ', f);
        }
        if ((flags & ROW_SUM) && line == lines - 1) {
            fputs("  ", f);
            text_pad(f, "sum", p->nw, true);
        }
        putc('\n', f);
    }
    bool cut_rows = (flags & TALL_OK) && !p->o->full && rows > WROWS_MAX;
    for (int r = 0; r < rows; r++) {
        if (cut_rows && r == WROWS_MAX - 3) {
            text_pad(f, "  ⋮", LW, false);
            for (int k = 0; k < nsel; k++) {
                text_pad(f, sel[k] < 0 ? "" : "⋮", p->nw, true);
                putc(' ', f);
            }
            putc('\n', f);
            r = rows - 2;
        }
        const double *row = m + (size_t)r * (size_t)cols;
        int best = -1;
        if (flags & MARK_MAX)
            for (int c = 0; c < cols; c++)
                if (best < 0 || row[c] > row[best]) best = c;
        bool best_shown = best < 0;
        for (int k = 0; k < nsel; k++) best_shown |= sel[k] == best;
        row_label(p, ra, row_offset + r);
        for (int k = 0; k < nsel; k++) {
            int c = sel[k];
            if (c < 0) { /* a '*' here: the strongest key is among the columns left out */
                text_pad(f, "…", p->nw, true);
                putc(best_shown ? ' ' : '*', f);
                continue;
            }
            put_num(p, row[c]);
            putc(c == best ? '*' : ' ', f);
        }
        if (flags & ROW_SUM) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += row[c];
            fputs("  ", f);
            put_num(p, s);
        }
        putc('\n', f);
    }
    putc('\n', f);
    free(sel);
}

/* Converts a captured [rows, cols] float matrix to doubles. */
static double *to_double(const float *a, int rows, int cols) {
    size_t n = (size_t)rows * (size_t)cols;
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

static void print_captured(pr *p, const ex_mat *m, const axis *ra, const axis *ca,
                           unsigned flags) {
    double *d = to_double(m->data, m->rows, m->cols);
    if (!d) return;
    print_matrix(p, d, m->rows, m->cols, m->row_offset, ra, ca, flags);
    free(d);
}

static void title(pr *p, const char *name, int rows, int cols, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void title(pr *p, const char *name, int rows, int cols, const char *fmt, ...) {
    fprintf(p->f, "   %s ", name);
    if (rows < 0)
        fprintf(p->f, "[%d]", cols);
    else
        fprintf(p->f, "[%d, %d]", rows, cols);
    if (fmt && fmt[0]) {
        fputs("  ", p->f);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(p->f, fmt, ap);
        va_end(ap);
    }
    putc('\n', p->f);
}

static void section(pr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void section(pr *p, const char *fmt, ...) {
    fprintf(p->f, "%d. ", ++p->section);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    putc('\n', p->f);
}

static void note(pr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(pr *p, const char *fmt, ...) {
    fputs("   ", p->f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    putc('\n', p->f);
}

/* ---- pieces ---- */

/* Rows r0 .. r0+n-1 of a linear weight [out, in], transposed: [in, n]. */
static double *weight_cols(const attn_tensor *t, int r0, int n) {
    int in = (int)t->shape[1];
    double *d = malloc((size_t)in * (size_t)n * sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < in; i++)
        for (int j = 0; j < n; j++) d[(size_t)i * n + j] = t->data[(size_t)(r0 + j) * in + i];
    return d;
}

static const attn_tensor *tensor(const explain_opts *o, const char *prefix, const char *part) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, part);
    return attn_model_tensor(o->model, name);
}

/* The tokens of one sequence, as a table wrapped to the width. */
static void print_tokens(pr *p, const explain_seq *s, const char *what) {
    FILE *f = p->f;
    if (!s->ids) {
        note(p, "%s: %zu vectors from %s", what, s->labels->n,
             s->emb_path ? s->emb_path : "a file");
        note(p, "(no tokens: rows are labelled by their position)");
        putc('\n', f);
        return;
    }
    note(p, "%s: %zu tokens", what, s->labels->n);
    size_t n = s->labels->n, i0 = 0;
    int width = p->o->width > 0 && !p->o->full ? p->o->width : 1 << 30;
    while (i0 < n) {
        /* how many fit on one line */
        int used = 12;
        size_t i1 = i0;
        int w[4096];
        while (i1 < n && i1 - i0 < 4096) {
            char t[64], id[24], pos[24];
            text_label(t, sizeof t, s->labels->text[i1], 16);
            snprintf(id, sizeof id, "%d", s->ids[i1]);
            snprintf(pos, sizeof pos, "%zu", i1);
            int cw = text_width(t);
            if ((int)strlen(id) > cw) cw = (int)strlen(id);
            if ((int)strlen(pos) > cw) cw = (int)strlen(pos);
            if (i1 > i0 && used + cw + 2 > width) break;
            w[i1 - i0] = cw;
            used += cw + 2;
            i1++;
        }
        for (int line = 0; line < 3; line++) {
            fputs(line == 0 ? "     position" : line == 1 ? "     token   " : "     id      ", f);
            for (size_t i = i0; i < i1; i++) {
                char buf[64];
                if (line == 0)
                    snprintf(buf, sizeof buf, "%zu", i);
                else if (line == 1)
                    text_label(buf, sizeof buf, s->labels->text[i], 16);
                else
                    snprintf(buf, sizeof buf, "%d", s->ids[i]);
                fputs("  ", f);
                text_pad(f, buf, w[i - i0], false);
            }
            putc('\n', f);
        }
        i0 = i1;
    }
    putc('\n', f);
}

/* Section: the input X of the explained layer. */
static void print_input(pr *p, const explain_req *r, const explain_seq *s) {
    const explain_opts *o = p->o;
    const attn_config *cfg = o->cfg;
    const int D = cfg->d_model;
    axis pos = {AX_POS, s->ids ? s->labels : NULL, NULL, 0}, dim = {AX_DIM, NULL, "d", 0};
    if (r->layer > 0) {
        section(p, "Input of layer %d: the residual stream after layer %d", r->layer,
                r->layer - 1);
        if (r->prev.data) {
            title(p, "X", r->prev.rows, r->prev.cols, "one row per position");
            print_captured(p, &r->prev, &pos, &dim, 0);
        }
        return;
    }
    const ex_mat *x = &r->embed;
    if (!x->data) return;
    if (!s->ids) {
        section(p, "Input vectors X, one row per position");
        note(p, "read from %s and given to the first block as they are",
             s->emb_path ? s->emb_path : "the file");
        note(p, "(no embedding lookup, no scaling, no positions added%s%s)",
             cfg->embed_norm ? ", no embed_norm" : "",
             cfg->positional == ATTN_POS_ROPE ? "; RoPE still rotates q and k" : "");
        title(p, "X", x->rows, x->cols, "the input vectors");
        print_captured(p, x, &pos, &dim, 0);
        return;
    }
    section(p, "Embeddings X: one row of d_model = %d numbers per token", D);
    const bool has_pos =
        cfg->positional == ATTN_POS_LEARNED || cfg->positional == ATTN_POS_SINUSOIDAL;
    const bool enorm = cfg->embed_norm;
    const char *nname = cfg->norm == ATTN_NORM_RMSNORM ? "rmsnorm" : "layernorm";
    const char *scaled = cfg->embed_scale != 1.0 ? ", times embed_scale" : "";
    if (!has_pos) {
        if (cfg->positional == ATTN_POS_ROPE)
            note(p, "positional rope: no position is added here; q and k are rotated instead.");
        else
            note(p, "positional none: no position is added, so equal tokens get equal rows.");
    }
    if (cfg->embed_scale != 1.0) note(p, "embed_scale = %g", cfg->embed_scale);
    if (has_pos || enorm) {
        /* the parts that make the captured X, from the weights */
        const attn_tensor *te = attn_model_tensor(o->model, "tok_embed");
        const attn_tensor *tp = attn_model_tensor(o->model, "pos_embed");
        const int T = x->rows;
        double *e = malloc((size_t)T * D * sizeof *e), *pe = malloc((size_t)T * D * sizeof *pe);
        if (te && e && pe) {
            for (int t = 0; t < T; t++) {
                const int ap = x->row_offset + t;
                for (int i = 0; i < D; i++) {
                    e[(size_t)t * D + i] =
                        (float)(te->data[(size_t)s->ids[t] * D + i] * cfg->embed_scale);
                    double ang = ap / pow(10000.0, (double)(i - i % 2) / D);
                    pe[(size_t)t * D + i] =
                        cfg->positional == ATTN_POS_LEARNED
                            ? (tp ? tp->data[(size_t)ap * D + i] : NAN)
                            : (double)(float)(i % 2 ? cos(ang) : sin(ang));
                }
            }
            title(p, "E", T, D, "rows of tok_embed for the token ids%s", scaled);
            print_matrix(p, e, T, D, 0, &pos, &dim, 0);
            if (cfg->positional == ATTN_POS_SINUSOIDAL)
                note(p, "P[p][2i] = sin(p / 10000^(2i/%d)), P[p][2i+1] = cos(p / 10000^(2i/%d))",
                     D, D);
            if (cfg->positional == ATTN_POS_LEARNED)
                title(p, "P", T, D, "positions: rows 0..%d of pos_embed (learned)", T - 1);
            else if (has_pos)
                title(p, "P", T, D, "sinusoidal positions of 0..%d", T - 1);
            if (has_pos) print_matrix(p, pe, T, D, 0, &pos, &dim, 0);
        }
        free(e);
        free(pe);
        if (enorm)
            note(p, "embed_norm: %s is normalised (%s with the %sembed_norm weights)",
                 has_pos ? "E + P" : "E", nname, r->source ? "encoder." : "");
        if (has_pos && enorm)
            title(p, "X", x->rows, x->cols, "= %s(E + P), the input of the first block", nname);
        else if (has_pos)
            title(p, "X", x->rows, x->cols, "= E + P, the input of the first block");
        else
            title(p, "X", x->rows, x->cols, "= %s(E), the input of the first block", nname);
    } else {
        title(p, "X", x->rows, x->cols, "rows of tok_embed for the token ids%s", scaled);
    }
    print_captured(p, x, &pos, &dim, 0);
}

/* Q, K or V: weights, bias, captured result. which: 0 q, 1 k, 2 v. */
static void print_projection(pr *p, const explain_req *r, const explain_head *h,
                             const char *prefix, int which, const axis *rows_ax,
                             const char *input_name) {
    const explain_opts *o = p->o;
    const attn_config *cfg = o->cfg;
    const int hd = cfg->head_dim, D = cfg->d_model;
    static const char *const part[] = {"q", "k", "v"};
    static const char *const big[] = {"Q", "K", "V"};
    static const char *const wname[] = {"Wq", "Wk", "Wv"};
    static const char *const bname[] = {"bq", "bk", "bv"};
    const int hsel = which == 0 ? r->head : r->kv_head;
    char pw[16], pb[16];
    snprintf(pw, sizeof pw, "%s.weight", part[which]);
    snprintf(pb, sizeof pb, "%s.bias", part[which]);
    const attn_tensor *w = tensor(o, prefix, pw), *b = tensor(o, prefix, pb);
    char dimp[2] = {part[which][0], 0};
    axis dim = {AX_DIM, NULL, "d", 0}, hdim = {AX_DIM, NULL, dimp, 0};
    if (w) {
        double *wt = weight_cols(w, hsel * hd, hd);
        if (wt) {
            title(p, wname[which], D, hd, "%shead %d: rows %d..%d of %s.%s, transposed",
                  which == 0 ? "" : "kv ", hsel, hsel * hd, hsel * hd + hd - 1, prefix, pw);
            print_matrix(p, wt, D, hd, 0, &dim, &hdim, TALL_OK);
            free(wt);
        }
    }
    if (b) {
        double *bv = malloc((size_t)hd * sizeof *bv);
        if (bv) {
            for (int j = 0; j < hd; j++) bv[j] = b->data[hsel * hd + j];
            title(p, bname[which], -1, hd, "bias, rows %d..%d of %s.%s", hsel * hd,
                  hsel * hd + hd - 1, prefix, pb);
            axis one = {AX_NAME, NULL, bname[which], 0};
            print_matrix(p, bv, 1, hd, 0, &one, &hdim, 0);
            free(bv);
        }
    }
    const ex_mat *m = &h->val[ATTN_V_Q + which];
    if (!m->data) return;
    bool rope = cfg->positional == ATTN_POS_ROPE && h == &r->heads[0] &&
                r->kinds[0] == ATTN_KIND_SELF && which < 2;
    if (rope) {
        /* the projection before rotation, from the captured input rows */
        const ex_mat *in = &h->val[ATTN_V_ATTN_IN];
        if (w && in->data && in->rows == m->rows) {
            double *u = malloc((size_t)m->rows * hd * sizeof *u);
            if (u) {
                for (int t = 0; t < m->rows; t++)
                    for (int j = 0; j < hd; j++) {
                        double s = b ? b->data[hsel * hd + j] : 0.0;
                        for (int i = 0; i < D; i++)
                            s += (double)in->data[(size_t)t * D + i] *
                                 w->data[(size_t)(hsel * hd + j) * D + i];
                        u[(size_t)t * hd + j] = s;
                    }
                title(p, which == 0 ? "Q0" : "K0", m->rows, hd, "%s·%s%s before rotation",
                      input_name, wname[which], b ? " + b" : "");
                print_matrix(p, u, m->rows, hd, m->row_offset, rows_ax, &hdim, 0);
                free(u);
            }
        }
        title(p, big[which], m->rows, m->cols,
              "after RoPE: pair (2i, 2i+1) of row p rotated by p·%g^(-2i/%d)", cfg->rope_theta,
              hd);
    } else {
        title(p, big[which], m->rows, m->cols, "= %s·%s%s", input_name, wname[which],
              b ? " + b" : "");
    }
    print_captured(p, m, rows_ax, &hdim, 0);
}

/* One head of one attention sub-layer (self or cross). */
static void print_head(pr *p, const explain_req *r, int k, const explain_seq *qs,
                       const explain_seq *ks) {
    const explain_opts *o = p->o;
    const attn_config *cfg = o->cfg;
    const explain_head *h = &r->heads[k];
    const bool cross = r->kinds[k] == ATTN_KIND_CROSS;
    const bool causal = !cross && r->stack == ATTN_STACK_DECODER && !r->source &&
                        cfg->arch != ATTN_ARCH_ENCODER;
    const bool pre = cfg->norm_position == ATTN_NORM_PRE;
    const int H = cfg->n_heads, hd = cfg->head_dim, D = cfg->d_model;
    const char *norm = cfg->norm == ATTN_NORM_RMSNORM ? "rmsnorm" : "layernorm";
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.%d.%s", r->source ? "encoder.blocks" : "blocks", r->layer,
             cross ? "cross" : "attn");
    axis qa = {AX_POS, qs->ids ? qs->labels : NULL, NULL, 0};
    axis ka = {AX_POS, ks->ids ? ks->labels : NULL, NULL, 0};
    axis dim = {AX_DIM, NULL, "d", 0};
    const ex_mat *a = &h->val[ATTN_V_ATTN_IN];
    const char *in_name = "A";

    if (cross) {
        section(p, "Cross-attention: decoder queries, encoder keys and values");
        if (r->memory.data) {
            title(p, "M", r->memory.rows, r->memory.cols,
                  "the encoder's output (memory), one row per source position");
            print_captured(p, &r->memory, &ka, &dim, 0);
        }
        if (a->data) {
            if (pre)
                title(p, "A", a->rows, a->cols, "%s(the decoder stream after self-attention)",
                      norm);
            else
                title(p, "A", a->rows, a->cols, "the decoder stream after self-attention");
            print_captured(p, a, &qa, &dim, 0);
        }
    } else if (pre) {
        section(p, "Pre-norm: attention reads A = %s(X), not X", norm);
        if (cfg->norm == ATTN_NORM_RMSNORM)
            note(p, "(each row divided by its root mean square, then times weight)");
        else
            note(p, "(each row moved to mean 0, scaled to variance 1, then * weight + bias)");
        if (a->data) {
            title(p, "A", a->rows, a->cols, "= %s(X) * weight%s", norm,
                  cfg->norm == ATTN_NORM_LAYERNORM ? " + bias" : "");
            print_captured(p, a, &qa, &dim, 0);
        }
    } else {
        in_name = "X";
        note(p, "post-norm: attention reads X itself (the norm comes after the residual add)");
        putc('\n', p->f);
    }

    section(p, "Queries, keys and values of head %d (of %d; head_dim hd = %d)", r->head, H, hd);
    if (cfg->n_kv_heads != H)
        note(p, "grouped heads: n_kv_heads = %d, so query head %d reads key/value head %d",
             cfg->n_kv_heads, r->head, r->kv_head);
    if (cross) {
        print_projection(p, r, h, prefix, 0, &qa, "A");
        print_projection(p, r, h, prefix, 1, &ka, "M");
        print_projection(p, r, h, prefix, 2, &ka, "M");
    } else {
        print_projection(p, r, h, prefix, 0, &qa, in_name);
        print_projection(p, r, h, prefix, 1, &ka, in_name);
        print_projection(p, r, h, prefix, 2, &ka, in_name);
    }

    const ex_mat *q = &h->val[ATTN_V_Q], *kk = &h->val[ATTN_V_K], *v = &h->val[ATTN_V_V];
    const ex_mat *sc = &h->val[ATTN_V_SCORES], *w = &h->val[ATTN_V_WEIGHTS];
    if (q->data && kk->data && sc->data) {
        const int T = q->rows, Tk = kk->rows;
        double *raw = malloc((size_t)T * Tk * sizeof *raw);
        if (raw) {
            for (int i = 0; i < T; i++)
                for (int j = 0; j < Tk; j++) {
                    double s = 0;
                    for (int c = 0; c < hd; c++)
                        s += (double)q->data[(size_t)i * hd + c] * kk->data[(size_t)j * hd + c];
                    raw[(size_t)i * Tk + j] = s;
                }
            section(p, "Scores: how well each query matches each key");
            title(p, "QKᵀ", T, Tk, "row i, column j = q_i · k_j (rows: queries, columns: keys)");
            print_matrix(p, raw, T, Tk, q->row_offset, &qa, &ka, 0);
            free(raw);
        }
        section(p, "Scaled by 1/√hd = 1/√%d = %.4f (keeps scores from growing with hd)", hd,
                1.0 / sqrt((double)hd));
        title(p, "S", sc->rows, sc->cols, "= QKᵀ / √%d", hd);
        print_captured(p, sc, &qa, &ka, 0);
        if (causal) {
            double *mk = to_double(sc->data, sc->rows, sc->cols);
            if (mk) {
                for (int i = 0; i < sc->rows; i++)
                    for (int j = 0; j < sc->cols; j++)
                        if (j > sc->row_offset + i) mk[(size_t)i * sc->cols + j] = -INFINITY;
                section(p, "Causal mask: a query may not look at later positions");
                title(p, "S_masked", sc->rows, sc->cols,
                      "entries above the diagonal (key after query) set to -inf");
                print_matrix(p, mk, sc->rows, sc->cols, sc->row_offset, &qa, &ka, 0);
                free(mk);
            }
        }
    }
    if (w->data) {
        section(p, "Softmax of each row: the attention weights");
        note(p, "each row sums to 1; * marks each query's strongest key");
        if (!p->o->full && p->o->width > 0 && w->cols > 3 &&
            LW + w->cols * (p->nw + 1) > p->o->width) /* as col_plan cuts */
            note(p, "(\"…*\": it is in a column left out; --full or --width shows all)");
        title(p, "weights", w->rows, w->cols, "= exp(s_ij) / Σ_j exp(s_ij)%s",
              causal ? ", and exp(-inf) = 0" : "");
        print_captured(p, w, &qa, &ka, MARK_MAX | ROW_SUM);
    }
    const ex_mat *ctx = &h->val[ATTN_V_HEAD_CONTEXT];
    if (ctx->data && v->data) {
        char cp[2] = "c";
        axis ca = {AX_DIM, NULL, cp, 0};
        section(p, "Context: each query's weighted average of the value rows");
        title(p, "C", ctx->rows, ctx->cols, "= weights · V (row i = Σ_j weight_ij · v_j)");
        print_captured(p, ctx, &qa, &ca, 0);
    }
    const ex_mat *cc = &h->val[ATTN_V_CONCAT], *out = &h->val[ATTN_V_ATTN_OUT];
    const attn_tensor *wo = tensor(o, prefix, "o.weight"), *bo = tensor(o, prefix, "o.bias");
    if (H > 1) {
        section(p, "Heads: concatenated, then projected back to d_model");
        note(p, "all %d heads ran the steps above, each with its own Wq, Wk, Wv", H);
    } else
        section(p, "Output projection back to d_model");
    axis hc = {AX_CONCAT, NULL, NULL, hd};
    if (cc->data && H > 1) {
        title(p, "concat", cc->rows, cc->cols,
              "[C_head0 | C_head1 | ...]: columns h%d.* are C above", r->head);
        print_captured(p, cc, &qa, &hc, 0);
    }
    if (wo) {
        double *wt = weight_cols(wo, 0, D);
        if (wt) {
            title(p, "Wo", H * hd, D, "%s.o.weight, transposed", prefix);
            print_matrix(p, wt, H * hd, D, 0, H > 1 ? &hc : &(axis){AX_DIM, NULL, "c", 0}, &dim,
                         TALL_OK);
            free(wt);
        }
    }
    if (bo) {
        double *bv = malloc((size_t)D * sizeof *bv);
        if (bv) {
            for (int j = 0; j < D; j++) bv[j] = bo->data[j];
            title(p, "bo", -1, D, "bias, %s.o.bias", prefix);
            print_matrix(p, bv, 1, D, 0, &(axis){AX_NAME, NULL, "bo", 0}, &dim, 0);
            free(bv);
        }
    }
    if (out->data) {
        title(p, "out", out->rows, out->cols, "= %s · Wo%s: what the sub-layer adds to the stream",
              H > 1 ? "concat" : "C", bo ? " + bo" : "");
        print_captured(p, out, &qa, &dim, 0);
    }
    if (pre)
        note(p, "next: the block adds out to its input: x = x + out.");
    else
        note(p, "next: the block adds out to its input and normalises: x = %s(x + out).", norm);
    if (cfg->mlp != ATTN_MLP_NONE) note(p, "Then the MLP sub-layer runs on x.");
    putc('\n', p->f);
}

int explain_print(const explain_opts *o, const explain_req *r, attn_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return attn_error_set(err, ATTN_ERR_NOMEM, "explain: out of memory");
    pr p = {.o = o, .f = mem, .nw = o->digits + 4, .cell = o->digits + 5};
    const attn_config *cfg = o->cfg;
    const char *stack = r->stack == ATTN_STACK_ENCODER ? "encoder" : "decoder";
    for (int k = 0; k < r->n_kinds; k++) {
        const bool cross = r->kinds[k] == ATTN_KIND_CROSS;
        fprintf(p.f, "== %s layer %d, head %d: %s-attention%s ==\n\n", stack, r->layer, r->head,
                cross ? "cross" : "self",
                cross                                                               ? ""
                : (r->stack == ATTN_STACK_DECODER && cfg->arch != ATTN_ARCH_ENCODER) ? " (causal)"
                                                                                     : "");
        if (k == 0) {
            if (o->config_path) note(&p, "model: %s", o->config_path);
            note(&p, "%s, d_model %d, %d head%s of head_dim %d,", attn_arch_name(cfg->arch),
                 cfg->d_model, cfg->n_heads, cfg->n_heads == 1 ? "" : "s", cfg->head_dim);
            note(&p, "positional %s, %s-norm %s, mlp %s", attn_positional_name(cfg->positional),
                 cfg->norm_position == ATTN_NORM_PRE ? "pre" : "post", attn_norm_name(cfg->norm),
                 attn_mlp_name(cfg->mlp));
            putc('\n', p.f);
            section(&p, "Tokens");
            if (o->source && o->source != o->seq) print_tokens(&p, o->source, "source (encoder)");
            print_tokens(&p, o->seq, o->source && o->source != o->seq ? "target (decoder)" : "input");
            print_input(&p, r, o->seq);
        }
        print_head(&p, r, k, o->seq, cross ? o->source : o->seq);
    }
    bool bad = ferror(mem) != 0;
    if (fclose(mem) != 0 || bad || !buf) {
        free(buf);
        return attn_error_set(err, ATTN_ERR_NOMEM, "explain: out of memory");
    }
    text_put_stripped(o->f, buf, len);
    free(buf);
    if (fflush(o->f) != 0 || ferror(o->f))
        return attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    return ATTN_OK;
}
