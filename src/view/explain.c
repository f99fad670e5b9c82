/* attn explain: every step of one attention head, from the numbers the
 * forward pass used.
 *
 * explain_wants / explain_emit form a capture sink that keeps copies of the
 * values of one layer and head (EMBED, the previous block's RESID, ATTN_IN,
 * Q, K, V, SCORES, WEIGHTS, HEAD_CONTEXT, CONCAT, ATTN_OUT, and the encoder
 * output for cross-attention). explain_print then lays them out in order,
 * next to the weights they were made with (the model's tensors,
 * attn_model_tensor). The only numbers not captured are derived for display:
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

/* The head of r that captures key's kind of attention; NULL when none. */
static explain_head *head_of(explain_req *r, const attn_capture_key *key) {
    for (int k = 0; k < r->n_kinds; k++)
        if (key->kind == r->kinds[k]) return &r->heads[k];
    return NULL;
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
    explain_head *h = head_of(r, key);
    if (!h) return NULL;
    switch (key->value) {
    case ATTN_V_Q:
    case ATTN_V_SCORES:
    case ATTN_V_WEIGHTS:
    case ATTN_V_HEAD_CONTEXT: return key->head == r->head ? &h->val[key->value] : NULL;
    case ATTN_V_K:
    case ATTN_V_V: return key->head == r->kv_head ? &h->val[key->value] : NULL;
    default: return &h->val[key->value];
    }
}

bool explain_wants(void *user, const attn_capture_key *key) { return slot(user, key) != NULL; }

attn_status explain_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                         attn_error *err) {
    explain_req *r = user;
    ex_mat *m = slot(r, key);
    if (!m) return ATTN_OK;
    size_t n = (size_t)v->rows * (size_t)v->cols;
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        char name[160];
        attn_capture_name(key, name, sizeof name);
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
    }
    if (key->value >= ATTN_V_ATTN_IN && key->value <= ATTN_V_ATTN_OUT)
        head_of(r, key)->causal = key->causal;
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

enum { MARK_MAX = 1, ROW_SUM = 2, TALL_OK = 4, VECTOR = 8 /* show(): a vector, one row */ };

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

/* Writes fmt's text and ends the line. */
static void vline(pr *p, const char *fmt, va_list ap) {
    vfprintf(p->f, fmt, ap);
    putc('\n', p->f);
}

/* "   NAME [rows, cols]  what it is" ([cols] when rows < 0). */
static void vtitle(pr *p, const char *name, int rows, int cols, const char *fmt, va_list ap) {
    fprintf(p->f, "   %s ", name);
    if (rows < 0)
        fprintf(p->f, "[%d]", cols);
    else
        fprintf(p->f, "[%d, %d]", rows, cols);
    if (fmt && fmt[0]) fputs("  ", p->f);
    vline(p, fmt ? fmt : "", ap);
}

static void title(pr *p, const char *name, int rows, int cols, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void title(pr *p, const char *name, int rows, int cols, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vtitle(p, name, rows, cols, fmt, ap);
    va_end(ap);
}

/* "N. what the step does", numbered in order. */
static void section(pr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void section(pr *p, const char *fmt, ...) {
    fprintf(p->f, "%d. ", ++p->section);
    va_list ap;
    va_start(ap, fmt);
    vline(p, fmt, ap);
    va_end(ap);
}

static void note(pr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(pr *p, const char *fmt, ...) {
    fputs("   ", p->f);
    va_list ap;
    va_start(ap, fmt);
    vline(p, fmt, ap);
    va_end(ap);
}

/* A matrix derived for display, m [rows, cols] (owned, freed here): its
 * title (NAME [cols] with the VECTOR flag, a single row), then the matrix.
 * Nothing is shown when m is NULL (it could not be allocated). */
static void show(pr *p, const char *name, double *m, int rows, int cols, int row_offset,
                 const axis *ra, const axis *ca, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 10, 11)));
static void show(pr *p, const char *name, double *m, int rows, int cols, int row_offset,
                 const axis *ra, const axis *ca, unsigned flags, const char *fmt, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, fmt);
    vtitle(p, name, (flags & VECTOR) ? -1 : rows, cols, fmt, ap);
    va_end(ap);
    print_matrix(p, m, rows, cols, row_offset, ra, ca, flags & ~(unsigned)VECTOR);
    free(m);
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

/* Entries off .. off+n-1 of a bias [out], as doubles [n]. */
static double *bias_part(const attn_tensor *t, int off, int n) {
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (d)
        for (int j = 0; j < n; j++) d[j] = t->data[off + j];
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

/* ", times embed_scale" when the embeddings are scaled. */
static const char *scaled(const attn_config *cfg) {
    return cfg->embed_scale != 1.0 ? ", times embed_scale" : "";
}

/* The parts that make the captured X [T, D], from the weights: E, the rows
 * of tok_embed for the token ids (times embed_scale), and P, the learned or
 * sinusoidal positions (when the model adds them), both as the forward pass
 * rounds them (float). */
static void print_embed_parts(pr *p, const ex_mat *x, const explain_seq *s, bool has_pos,
                              const axis *pos, const axis *dim) {
    const attn_config *cfg = p->o->cfg;
    const int D = cfg->d_model, T = x->rows;
    const attn_tensor *te = attn_model_tensor(p->o->model, "tok_embed");
    const attn_tensor *tp = attn_model_tensor(p->o->model, "pos_embed");
    double *e = malloc((size_t)T * D * sizeof *e), *pe = malloc((size_t)T * D * sizeof *pe);
    if (te && e && pe) {
        for (int t = 0; t < T; t++) {
            const int ap = x->row_offset + t;
            for (int i = 0; i < D; i++) {
                e[(size_t)t * D + i] =
                    (float)(te->data[(size_t)s->ids[t] * D + i] * cfg->embed_scale);
                double ang = ap / pow(10000.0, (double)(i - i % 2) / D);
                pe[(size_t)t * D + i] = cfg->positional == ATTN_POS_LEARNED
                                            ? (tp ? tp->data[(size_t)ap * D + i] : NAN)
                                            : (double)(float)(i % 2 ? cos(ang) : sin(ang));
            }
        }
        title(p, "E", T, D, "rows of tok_embed for the token ids%s", scaled(cfg));
        print_matrix(p, e, T, D, 0, pos, dim, 0);
        if (cfg->positional == ATTN_POS_SINUSOIDAL)
            note(p, "P[p][2i] = sin(p / 10000^(2i/%d)), P[p][2i+1] = cos(p / 10000^(2i/%d))", D,
                 D);
        if (cfg->positional == ATTN_POS_LEARNED)
            title(p, "P", T, D, "positions: rows 0..%d of pos_embed (learned)", T - 1);
        else if (has_pos)
            title(p, "P", T, D, "sinusoidal positions of 0..%d", T - 1);
        if (has_pos) print_matrix(p, pe, T, D, 0, pos, dim, 0);
    }
    free(e);
    free(pe);
}

/* Section: X from token ids, the embeddings (and positions) of the first block. */
static void print_embeddings(pr *p, const explain_req *r, const axis *pos, const axis *dim,
                             const explain_seq *s) {
    const attn_config *cfg = p->o->cfg;
    const ex_mat *x = &r->embed;
    section(p, "Embeddings X: one row of d_model = %d numbers per token", cfg->d_model);
    const bool has_pos =
        cfg->positional == ATTN_POS_LEARNED || cfg->positional == ATTN_POS_SINUSOIDAL;
    const bool enorm = cfg->embed_norm;
    const char *nname = attn_norm_name(cfg->norm);
    if (!has_pos) {
        if (cfg->positional == ATTN_POS_ROPE)
            note(p, "positional rope: no position is added here; q and k are rotated instead.");
        else
            note(p, "positional none: no position is added, so equal tokens get equal rows.");
    }
    if (cfg->embed_scale != 1.0) note(p, "embed_scale = %g", cfg->embed_scale);
    if (has_pos || enorm) {
        print_embed_parts(p, x, s, has_pos, pos, dim);
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
        title(p, "X", x->rows, x->cols, "rows of tok_embed for the token ids%s", scaled(cfg));
    }
    print_captured(p, x, pos, dim, 0);
}

/* Section: the input X of the explained layer. */
static void print_input(pr *p, const explain_req *r, const explain_seq *s) {
    const attn_config *cfg = p->o->cfg;
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
    if (s->ids) {
        print_embeddings(p, r, &pos, &dim, s);
        return;
    }
    section(p, "Input vectors X, one row per position");
    note(p, "read from %s and given to the first block as they are",
         s->emb_path ? s->emb_path : "the file");
    note(p, "(no embedding lookup, no scaling, no positions added%s%s)",
         cfg->embed_norm ? ", no embed_norm" : "",
         cfg->positional == ATTN_POS_ROPE ? "; RoPE still rotates q and k" : "");
    title(p, "X", x->rows, x->cols, "the input vectors");
    print_captured(p, x, &pos, &dim, 0);
}

/* The head being explained: what every step of print_head reads. */
typedef struct shown_head {
    const explain_req *r;
    const explain_head *h;
    bool cross;       /* cross-attention: queries from the decoder, keys from the encoder */
    char prefix[96];  /* the sub-layer's tensors: "blocks.0.attn", "encoder.blocks.1.attn", ... */
    axis qa, ka, dim; /* query rows, key rows, d_model columns */
} shown_head;

/* in [T, D] · rows r0 .. r0+n-1 of the linear weight w [out, D], transposed,
 * plus the same entries of the bias b (may be NULL): [T, n]. */
static double *project(const ex_mat *in, const attn_tensor *w, const attn_tensor *b, int r0,
                       int n) {
    const int D = in->cols;
    double *u = malloc((size_t)in->rows * (size_t)n * sizeof *u);
    if (!u) return NULL;
    for (int t = 0; t < in->rows; t++)
        for (int j = 0; j < n; j++) {
            double s = b ? b->data[r0 + j] : 0.0;
            for (int i = 0; i < D; i++)
                s += (double)in->data[(size_t)t * D + i] * w->data[(size_t)(r0 + j) * D + i];
            u[(size_t)t * n + j] = s;
        }
    return u;
}

/* Q, K or V: weights, bias, captured result. which: 0 q, 1 k, 2 v. */
static void print_projection(pr *p, const shown_head *sh, int which, const axis *rows_ax,
                             const char *input_name) {
    const attn_config *cfg = p->o->cfg;
    const int hd = cfg->head_dim, D = cfg->d_model;
    static const char *const part[] = {"q", "k", "v"};
    static const char *const big[] = {"Q", "K", "V"};
    static const char *const wname[] = {"Wq", "Wk", "Wv"};
    static const char *const bname[] = {"bq", "bk", "bv"};
    const int hsel = which == 0 ? sh->r->head : sh->r->kv_head, r0 = hsel * hd;
    char pw[16], pb[16];
    snprintf(pw, sizeof pw, "%s.weight", part[which]);
    snprintf(pb, sizeof pb, "%s.bias", part[which]);
    const attn_tensor *w = tensor(p->o, sh->prefix, pw), *b = tensor(p->o, sh->prefix, pb);
    char dimp[2] = {part[which][0], 0};
    axis hdim = {AX_DIM, NULL, dimp, 0}, one = {AX_NAME, NULL, bname[which], 0};
    if (w)
        show(p, wname[which], weight_cols(w, r0, hd), D, hd, 0, &sh->dim, &hdim, TALL_OK,
             "%shead %d: rows %d..%d of %s.%s, transposed", which == 0 ? "" : "kv ", hsel, r0,
             r0 + hd - 1, sh->prefix, pw);
    if (b)
        show(p, bname[which], bias_part(b, r0, hd), 1, hd, 0, &one, &hdim, VECTOR,
             "bias, rows %d..%d of %s.%s", r0, r0 + hd - 1, sh->prefix, pb);
    const ex_mat *m = &sh->h->val[ATTN_V_Q + which];
    if (!m->data) return;
    if (cfg->positional == ATTN_POS_ROPE && !sh->cross && which < 2) {
        /* the projection before rotation, from the captured input rows */
        const ex_mat *in = &sh->h->val[ATTN_V_ATTN_IN];
        if (w && in->data && in->rows == m->rows)
            show(p, which == 0 ? "Q0" : "K0", project(in, w, b, r0, hd), m->rows, hd,
                 m->row_offset, rows_ax, &hdim, 0, "%s·%s%s before rotation", input_name,
                 wname[which], b ? " + b" : "");
        title(p, big[which], m->rows, m->cols,
              "after RoPE: pair (2i, 2i+1) of row p rotated by p·%g^(-2i/%d)", cfg->rope_theta,
              hd);
    } else {
        title(p, big[which], m->rows, m->cols, "= %s·%s%s", input_name, wname[which],
              b ? " + b" : "");
    }
    print_captured(p, m, rows_ax, &hdim, 0);
}

/* Section: what the attention sub-layer reads. Returns its name in the
 * formulas: "A" (normed, or the decoder stream of cross-attention) or "X". */
static const char *print_reads(pr *p, const shown_head *sh) {
    const attn_config *cfg = p->o->cfg;
    const char *norm = attn_norm_name(cfg->norm);
    const ex_mat *a = &sh->h->val[ATTN_V_ATTN_IN], *mem = &sh->r->memory;
    if (sh->cross) {
        section(p, "Cross-attention: decoder queries, encoder keys and values");
        if (mem->data) {
            title(p, "M", mem->rows, mem->cols,
                  "the encoder's output (memory), one row per source position");
            print_captured(p, mem, &sh->ka, &sh->dim, 0);
        }
        if (a->data) {
            if (cfg->norm_position == ATTN_NORM_PRE)
                title(p, "A", a->rows, a->cols, "%s(the decoder stream after self-attention)",
                      norm);
            else
                title(p, "A", a->rows, a->cols, "the decoder stream after self-attention");
            print_captured(p, a, &sh->qa, &sh->dim, 0);
        }
        return "A";
    }
    if (cfg->norm_position != ATTN_NORM_PRE) {
        note(p, "post-norm: attention reads X itself (the norm comes after the residual add)");
        putc('\n', p->f);
        return "X";
    }
    section(p, "Pre-norm: attention reads A = %s(X), not X", norm);
    if (cfg->norm == ATTN_NORM_RMSNORM)
        note(p, "(each row divided by its root mean square, then times weight)");
    else
        note(p, "(each row moved to mean 0, scaled to variance 1, then * weight + bias)");
    if (a->data) {
        title(p, "A", a->rows, a->cols, "= %s(X) * weight%s", norm,
              cfg->norm == ATTN_NORM_LAYERNORM ? " + bias" : "");
        print_captured(p, a, &sh->qa, &sh->dim, 0);
    }
    return "A";
}

/* "heads 2 and 3", "heads 0, 1 and 2" or "heads 0..7" (more than three):
 * the query heads that share key/value head g, of cfg. */
static void heads_of_kv(char *buf, size_t cap, const attn_config *cfg, int g) {
    const int n = cfg->n_heads / cfg->n_kv_heads, h0 = g * n;
    if (n == 1) snprintf(buf, cap, "head %d", h0);
    else if (n == 2) snprintf(buf, cap, "heads %d and %d", h0, h0 + 1);
    else if (n == 3) snprintf(buf, cap, "heads %d, %d and %d", h0, h0 + 1, h0 + 2);
    else snprintf(buf, cap, "heads %d..%d", h0, h0 + n - 1);
}

/* Grouped-query attention: which query heads share each key/value head's
 * Wk and Wv, one line per key/value head (up to 8; past that the rule). */
static void note_kv_groups(pr *p) {
    const attn_config *cfg = p->o->cfg;
    const int G = cfg->n_kv_heads, n = cfg->n_heads / G;
    char heads[64];
    if (G > 8) {
        note(p, "query heads %dg..%dg+%d share Wk/Wv of key/value head g (g = 0..%d)", n, n,
             n - 1, G - 1);
        return;
    }
    for (int g = 0; g < G; g++) {
        heads_of_kv(heads, sizeof heads, cfg, g);
        note(p, "%s share Wk/Wv of key/value head %d", heads, g);
    }
}

/* Section: Q, K and V of the head, from the input named in_name (the keys
 * and values of cross-attention come from the encoder's output M). */
static void print_qkv(pr *p, const shown_head *sh, const char *in_name) {
    const attn_config *cfg = p->o->cfg;
    section(p, "Queries, keys and values of head %d (of %d; head_dim hd = %d)", sh->r->head,
            cfg->n_heads, cfg->head_dim);
    if (cfg->n_kv_heads != cfg->n_heads) {
        char heads[64];
        heads_of_kv(heads, sizeof heads, cfg, sh->r->kv_head);
        note(p, "grouped heads: n_kv_heads = %d, so query head %d reads key/value head %d",
             cfg->n_kv_heads, sh->r->head, sh->r->kv_head);
        note(p, "(query %s share Wk/Wv, and so K and V, of key/value head %d)", heads,
             sh->r->kv_head);
    }
    const char *kv_in = sh->cross ? "M" : in_name;
    print_projection(p, sh, 0, &sh->qa, in_name);
    print_projection(p, sh, 1, &sh->ka, kv_in);
    print_projection(p, sh, 2, &sh->ka, kv_in);
}

/* q [T, hd] · k [Tk, hd]ᵀ, the raw scores: [T, Tk]. */
static double *raw_scores(const ex_mat *q, const ex_mat *k) {
    const int T = q->rows, Tk = k->rows, hd = q->cols;
    double *raw = malloc((size_t)T * Tk * sizeof *raw);
    if (!raw) return NULL;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < Tk; j++) {
            double s = 0;
            for (int c = 0; c < hd; c++)
                s += (double)q->data[(size_t)i * hd + c] * k->data[(size_t)j * hd + c];
            raw[(size_t)i * Tk + j] = s;
        }
    return raw;
}

/* The scores sc [T, Tk] with every key after its query set to -inf. */
static double *masked_scores(const ex_mat *sc) {
    double *mk = to_double(sc->data, sc->rows, sc->cols);
    if (!mk) return NULL;
    for (int i = 0; i < sc->rows; i++)
        for (int j = 0; j < sc->cols; j++)
            if (j > sc->row_offset + i) mk[(size_t)i * sc->cols + j] = -INFINITY;
    return mk;
}

/* Sections: the raw scores QKᵀ, scaled by 1/√hd, and masked when causal. */
static void print_scores(pr *p, const shown_head *sh) {
    const ex_mat *q = &sh->h->val[ATTN_V_Q], *k = &sh->h->val[ATTN_V_K];
    const ex_mat *sc = &sh->h->val[ATTN_V_SCORES];
    const int hd = p->o->cfg->head_dim;
    if (!q->data || !k->data || !sc->data) return;
    double *raw = raw_scores(q, k);
    if (raw) section(p, "Scores: how well each query matches each key");
    show(p, "QKᵀ", raw, q->rows, k->rows, q->row_offset, &sh->qa, &sh->ka, 0,
         "row i, column j = q_i · k_j (rows: queries, columns: keys)");
    section(p, "Scaled by 1/√hd = 1/√%d = %.4f (keeps scores from growing with hd)", hd,
            1.0 / sqrt((double)hd));
    title(p, "S", sc->rows, sc->cols, "= QKᵀ / √%d", hd);
    print_captured(p, sc, &sh->qa, &sh->ka, 0);
    if (!sh->h->causal) return;
    double *mk = masked_scores(sc);
    if (mk) section(p, "Causal mask: a query may not look at later positions");
    show(p, "S_masked", mk, sc->rows, sc->cols, sc->row_offset, &sh->qa, &sh->ka, 0,
         "entries above the diagonal (key after query) set to -inf");
}

/* Section: the softmax weights, each query's strongest key marked. */
static void print_weights(pr *p, const shown_head *sh) {
    const ex_mat *w = &sh->h->val[ATTN_V_WEIGHTS];
    if (!w->data) return;
    section(p, "Softmax of each row: the attention weights");
    note(p, "each row sums to 1; * marks each query's strongest key");
    if (!p->o->full && p->o->width > 0 && w->cols > 3 &&
        LW + w->cols * (p->nw + 1) > p->o->width) /* as col_plan cuts */
        note(p, "(\"…*\": it is in a column left out; --full or --width shows all)");
    title(p, "weights", w->rows, w->cols, "= exp(s_ij) / Σ_j exp(s_ij)%s",
          sh->h->causal ? ", and exp(-inf) = 0" : "");
    print_captured(p, w, &sh->qa, &sh->ka, MARK_MAX | ROW_SUM);
}

/* Section: the head's context, the weighted average of the value rows. */
static void print_context(pr *p, const shown_head *sh) {
    const ex_mat *ctx = &sh->h->val[ATTN_V_HEAD_CONTEXT], *v = &sh->h->val[ATTN_V_V];
    if (!ctx->data || !v->data) return;
    char cp[2] = "c";
    axis ca = {AX_DIM, NULL, cp, 0};
    section(p, "Context: each query's weighted average of the value rows");
    title(p, "C", ctx->rows, ctx->cols, "= weights · V (row i = Σ_j weight_ij · v_j)");
    print_captured(p, ctx, &sh->qa, &ca, 0);
}

/* Section: the heads concatenated, the output projection and its result. */
static void print_output(pr *p, const shown_head *sh) {
    const attn_config *cfg = p->o->cfg;
    const int H = cfg->n_heads, hd = cfg->head_dim, D = cfg->d_model;
    const ex_mat *cc = &sh->h->val[ATTN_V_CONCAT], *out = &sh->h->val[ATTN_V_ATTN_OUT];
    const attn_tensor *wo = tensor(p->o, sh->prefix, "o.weight");
    const attn_tensor *bo = tensor(p->o, sh->prefix, "o.bias");
    if (H > 1) {
        section(p, "Heads: concatenated, then projected back to d_model");
        if (cfg->n_kv_heads == H) {
            note(p, "all %d heads ran the steps above, each with its own Wq, Wk, Wv", H);
        } else {
            note(p, "all %d heads ran the steps above, each with its own Wq, but Wk and Wv", H);
            note(p, "belong to the %d key/value head%s (n_kv_heads):", cfg->n_kv_heads,
                 cfg->n_kv_heads == 1 ? "" : "s");
            note_kv_groups(p);
        }
    } else
        section(p, "Output projection back to d_model");
    axis hc = {AX_CONCAT, NULL, NULL, hd}, c = {AX_DIM, NULL, "c", 0};
    axis one = {AX_NAME, NULL, "bo", 0};
    if (cc->data && H > 1) {
        title(p, "concat", cc->rows, cc->cols,
              "[C_head0 | C_head1 | ...]: columns h%d.* are C above", sh->r->head);
        print_captured(p, cc, &sh->qa, &hc, 0);
    }
    if (wo)
        show(p, "Wo", weight_cols(wo, 0, D), H * hd, D, 0, H > 1 ? &hc : &c, &sh->dim, TALL_OK,
             "%s.o.weight, transposed", sh->prefix);
    if (bo)
        show(p, "bo", bias_part(bo, 0, D), 1, D, 0, &one, &sh->dim, VECTOR, "bias, %s.o.bias",
             sh->prefix);
    if (out->data) {
        title(p, "out", out->rows, out->cols, "= %s · Wo%s: what the sub-layer adds to the stream",
              H > 1 ? "concat" : "C", bo ? " + bo" : "");
        print_captured(p, out, &sh->qa, &sh->dim, 0);
    }
}

/* What the block does with the sub-layer's output next. */
static void print_next(pr *p) {
    const attn_config *cfg = p->o->cfg;
    if (cfg->norm_position == ATTN_NORM_PRE)
        note(p, "next: the block adds out to its input: x = x + out.");
    else
        note(p, "next: the block adds out to its input and normalises: x = %s(x + out).",
             attn_norm_name(cfg->norm));
    if (cfg->mlp != ATTN_MLP_NONE) note(p, "Then the MLP sub-layer runs on x.");
    putc('\n', p->f);
}

/* One head of one attention sub-layer (self or cross), step by step. */
static void print_head(pr *p, const explain_req *r, int k, const explain_seq *qs,
                       const explain_seq *ks) {
    shown_head sh = {.r = r,
                     .h = &r->heads[k],
                     .cross = r->kinds[k] == ATTN_KIND_CROSS,
                     .qa = {AX_POS, qs->ids ? qs->labels : NULL, NULL, 0},
                     .ka = {AX_POS, ks->ids ? ks->labels : NULL, NULL, 0},
                     .dim = {AX_DIM, NULL, "d", 0}};
    snprintf(sh.prefix, sizeof sh.prefix, "%s.%d.%s", r->source ? "encoder.blocks" : "blocks",
             r->layer, sh.cross ? "cross" : "attn");
    const char *in_name = print_reads(p, &sh);
    print_qkv(p, &sh, in_name);
    print_scores(p, &sh);
    print_weights(p, &sh);
    print_context(p, &sh);
    print_output(p, &sh);
    print_next(p);
}

attn_status explain_print(const explain_opts *o, const explain_req *r, attn_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return attn_error_set(err, ATTN_ERR_NOMEM, "explain: out of memory");
    pr p = {.o = o, .f = mem, .nw = o->digits + 4, .cell = o->digits + 5};
    const attn_config *cfg = o->cfg;
    for (int k = 0; k < r->n_kinds; k++) {
        const bool cross = r->kinds[k] == ATTN_KIND_CROSS;
        fprintf(p.f, "== %s layer %d, head %d: %s-attention%s ==\n\n", attn_stack_name(r->stack),
                r->layer, r->head, attn_kind_name(r->kinds[k]),
                r->heads[k].causal ? " (causal)" : "");
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
