/* The readable view of `attn run`: the tokens, every head's map as a
 * labelled grid (rows: queries, columns: keys, the strongest key of each
 * query marked), shaded as a heatmap on a colour terminal, then the context
 * vectors.
 *
 * The view fits the line width (view_opts.width). A grid whose keys do not
 * fit in one line becomes a list of each query's strongest keys, as many as
 * fit, the rest summed ("… N more keys, Σ=0.070"); a map or the context
 * vectors of more than VIEW_MAX_ROWS queries show the first and the last
 * VIEW_MAX_ROWS / 2, so a head takes at most VIEW_MAX_ROWS + 5 lines. With
 * view_opts.full every weight is shown: a grid wider than the line is cut
 * into bands of key columns, each band with its own header, and every row
 * is there. Colour: ANSI 256-colour backgrounds from white (0) to deep blue
 * (1), chosen by out_color_enabled. */
#include "view.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CELL 7  /* one grid column: a 5-character weight, the mark, a space */
#define LABEL 13 /* the query label column */
#define ITEM_LABEL 8 /* a key's token in the list of strongest keys */

int out_term_width(FILE *f) {
    const char *env = getenv("COLUMNS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= OUT_WIDTH_MIN && v <= OUT_WIDTH_MAX) return (int)v;
    }
    struct winsize ws;
    int fd = fileno(f);
    if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= OUT_WIDTH_MIN)
        return ws.ws_col;
    return 80;
}

int out_color_parse(const char *s) {
    if (strcmp(s, "auto") == 0) return OUT_COLOR_AUTO;
    if (strcmp(s, "always") == 0) return OUT_COLOR_ALWAYS;
    if (strcmp(s, "never") == 0) return OUT_COLOR_NEVER;
    return -1;
}

bool out_color_enabled(int mode, FILE *f) {
    if (mode == OUT_COLOR_ALWAYS) return true;
    if (mode == OUT_COLOR_NEVER) return false;
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    if ((nc && nc[0]) || (term && strcmp(term, "dumb") == 0)) return false;
    int fd = fileno(f);
    return fd >= 0 && isatty(fd);
}

/* Are the labels just the positions ("0", "1", ...: inputs given as vectors)? */
static bool positional(const attn_labels *l) {
    if (!l) return false;
    for (size_t i = 0; i < l->n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        if (strcmp(l->text[i], num) != 0) return false;
    }
    return true;
}

/* The width the view lays out to: view_opts.width, at least 40; 0: no limit. */
static int line_width(const view_opts *o) {
    if (o->width <= 0) return INT_MAX / 2;
    return o->width < 40 ? 40 : o->width;
}

/* Is row r of rows shown? Without --full, of more than VIEW_MAX_ROWS rows
 * the first and last VIEW_MAX_ROWS / 2. */
static bool row_shown(const view_opts *o, int r, int rows) {
    return o->full || rows <= VIEW_MAX_ROWS || r < VIEW_MAX_ROWS / 2 ||
           r >= rows - VIEW_MAX_ROWS / 2;
}

/* In place of the rows row_shown leaves out, called for each row r: one
 * line, before the first, naming them (what: "queries") and the CSV flag
 * that has them all. */
static void rows_left_out(const view_opts *o, FILE *f, int r, int rows, int row_offset,
                          const char *what, const char *csv) {
    if (o->full || rows <= VIEW_MAX_ROWS || r != VIEW_MAX_ROWS / 2) return;
    int n = rows - VIEW_MAX_ROWS;
    char note[96], hint[64];
    snprintf(note, sizeof note, "  … %d more %s (%d..%d)", n, what, row_offset + r,
             row_offset + r + n - 1);
    snprintf(hint, sizeof hint, "; all: --full or %s -", csv);
    bool room = text_width(note) + text_width(hint) <= line_width(o);
    fprintf(f, "%s%s\n", note, room ? hint : "");
}

/* The ramp: ANSI 256-colour backgrounds from white (weight 0) to deep blue (1). */
static const int ramp[] = {231, 195, 159, 123, 87, 51, 45, 39, 33, 27, 21};
#define RAMP_N ((int)(sizeof ramp / sizeof ramp[0]))

static void shade(FILE *f, float w) {
    int i = (int)lrintf(w * (RAMP_N - 1));
    if (i < 0) i = 0;
    if (i > RAMP_N - 1) i = RAMP_N - 1;
    fprintf(f, "\x1b[48;5;%dm\x1b[38;5;%dm", ramp[i], i >= 6 ? 231 : 16);
}

/* "  name (n positions): 0:a 1:b ..." wrapped to the line width. */
static void print_positions(const view_opts *o, const char *name, const attn_labels *l) {
    FILE *f = o->f;
    char head[96], buf[256], item[300];
    if (positional(l) && l->n > 0) {
        snprintf(head, sizeof head, "  %s: %zu input vector%s,",
                 strcmp(name, "tokens") == 0 ? "input" : name, l->n, l->n == 1 ? "" : "s");
        snprintf(buf, sizeof buf, "labelled by position 0..%zu", l->n - 1);
        bool wrap = text_width(head) + 1 + text_width(buf) > line_width(o);
        fprintf(f, "%s%s%s\n", head, wrap ? "\n    " : " ", buf);
        return;
    }
    snprintf(head, sizeof head, "  %s (%zu position%s):", name, l->n, l->n == 1 ? "" : "s");
    fputs(head, f);
    int col = text_width(head), width = line_width(o);
    for (size_t i = 0; i < l->n; i++) {
        text_label(buf, sizeof buf, l->text[i], 40);
        snprintf(item, sizeof item, " %zu:%s", i, buf);
        int w = text_width(item);
        if (col + w > width && col > 4) {
            fputs("\n   ", f);
            col = 3;
        }
        fputs(item, f);
        col += w;
    }
    putc('\n', f);
}

void view_input_header(const view_opts *o) {
    const attn_run_info *run = o->run;
    FILE *f = o->f;
    fprintf(f, "input %ld\n", run->input);
    if (run->source) print_positions(o, "source", run->source);
    print_positions(o, "tokens", run->main);
    fputs("  rows: queries, columns: keys, * strongest key\n", f);
    if (run->cfg && attn_arch_causal(run->cfg->arch))
        fputs("  · hidden by the causal mask (weight 0)\n", f);
    if (o->color) {
        fputs("  shading: weight 0 ", f);
        for (int i = 0; i < RAMP_N; i++) {
            shade(f, (float)i / (RAMP_N - 1));
            fputs("  ", f);
        }
        fputs("\x1b[0m 1\n", f);
    }
    putc('\n', f);
}

bool view_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS || (key->value == ATTN_V_HIDDEN && !key->source);
}

/* "NNNN label" in the label column: the position, then its label unless
 * the labels are just the positions (bare). */
static void row_label(FILE *f, const attn_labels *l, bool bare, int pos) {
    char q[64], lab[96];
    text_label(q, sizeof q, bare ? "" : attn_labels_at(l, pos), LABEL - 6);
    snprintf(lab, sizeof lab, "%4d %s", pos, q);
    text_pad(f, lab, LABEL, false);
}

/* The strongest key of each row of v, over the whole row: [rows], malloc'd. */
static int *strongest_keys(const attn_capture_view *v) {
    int *best = malloc((size_t)(v->rows > 0 ? v->rows : 1) * sizeof *best);
    if (!best) return NULL;
    for (int r = 0; r < v->rows; r++) {
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [Tk] */
        best[r] = 0;
        for (int c = 1; c < v->cols; c++)
            if (row[c] > row[best[r]]) best[r] = c;
    }
    return best;
}

/* The key columns the view shows: all v->cols, or those --to picks
 * (run->to), into *n; malloc'd [v->cols]. */
static int *shown_keys(const attn_run_info *run, const attn_labels *kl,
                       const attn_capture_view *v, int *n) {
    int *cols = malloc((size_t)(v->cols > 0 ? v->cols : 1) * sizeof *cols);
    *n = 0;
    if (!cols) return NULL;
    for (int c = 0; c < v->cols; c++)
        if (attn_pick_has(run->to, kl, c)) cols[(*n)++] = c;
    return cols;
}

/* The header of the key columns cols[i0 .. i1-1]: their positions, then
 * their tokens (unless the labels are just the positions). */
static void band_header(FILE *f, const attn_labels *kl, const int *cols, int i0, int i1) {
    char buf[64];
    for (int line = 0; line < (positional(kl) ? 1 : 2); line++) {
        text_pad(f, "", LABEL, false);
        for (int i = i0; i < i1; i++) {
            const int c = cols[i];
            if (line == 0)
                snprintf(buf, sizeof buf, "%d", c);
            else
                text_label(buf, sizeof buf, attn_labels_at(kl, c), CELL - 1);
            putc(' ', f);
            text_pad(f, buf, CELL - 1, false);
        }
        putc('\n', f);
    }
}

/* The cells cols[i0 .. i1-1] of the weights row [Tk] of query qpos: '·'
 * where the causal mask hides the key, '*' after the strongest key. */
static void band_cells(const view_opts *o, FILE *f, const float *row, int qpos, bool causal,
                       int best, const int *cols, int i0, int i1) {
    for (int i = i0; i < i1; i++) {
        const int c = cols[i];
        putc(' ', f);
        if (causal && c > qpos) {
            text_pad(f, "  ·", CELL - 1, false);
            continue;
        }
        if (o->color) shade(f, row[c]);
        fprintf(f, "%5.3f", (double)row[c]);
        if (o->color) fputs("\x1b[0m", f);
        putc(c == best ? '*' : ' ', f);
    }
}

/* The weights of the keys a query can see, strongest first (equal weights:
 * the lower position first). */
typedef struct key_weight {
    float w;
    int key;
} key_weight;
static int by_weight(const void *a, const void *b) {
    const key_weight *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* "  … N more keys, Σ=S" in buf, or when that is wider than room, the
 * short "  …+N"; returns its width in characters. */
static int keys_left_out(char *buf, size_t cap, int n, double sum, int room) {
    snprintf(buf, cap, "  … %d more key%s, Σ=%.3f", n, n == 1 ? "" : "s", sum > 0 ? sum : 0.0);
    if (text_width(buf) > room) snprintf(buf, cap, "  …+%d", n);
    return text_width(buf);
}

/* One query's strongest keys after its label, as many as fit in the line
 * with the long form of what is left out (keys_left_out) and at least one,
 * "KEY:TOKEN WEIGHT" (bare labels: "KEY WEIGHT"), then what is left out.
 * row [Tk]: the weights; of the keys cols[0 .. n-1] (increasing) those
 * before `visible` are the keys the query sees; kw: scratch of [n]. */
static void top_keys(const view_opts *o, FILE *f, const float *row, int visible, const int *cols,
                     int n, const attn_labels *kl, bool bare, key_weight *kw) {
    int seen = 0;
    while (seen < n && cols[seen] < visible) {
        kw[seen] = (key_weight){row[cols[seen]], cols[seen]};
        seen++;
    }
    visible = seen;
    qsort(kw, (size_t)visible, sizeof *kw, by_weight);
    double rest = 0;
    for (int c = 0; c < visible; c++) rest += kw[c].w;
    const int width = line_width(o);
    int col = LABEL, shown = 0;
    char lab[64], item[128], tail[96];
    for (; shown < visible; shown++) {
        text_label(lab, sizeof lab, bare ? "" : attn_labels_at(kl, kw[shown].key), ITEM_LABEL);
        snprintf(item, sizeof item, bare ? "%d" : "%d:%s", kw[shown].key, lab);
        int w = 2 + text_width(item) + 6; /* "  ", the item, " 0.000" */
        double left = rest - kw[shown].w;
        int tw = shown + 1 < visible
                     ? keys_left_out(tail, sizeof tail, visible - shown - 1, left, INT_MAX)
                     : 0;
        if (shown > 0 && col + w + tw > width) break; /* the strongest key always shows */
        fprintf(f, "  %s ", item);
        if (o->color) shade(f, kw[shown].w);
        fprintf(f, "%5.3f", (double)kw[shown].w);
        if (o->color) fputs("\x1b[0m", f);
        col += w;
        rest = left;
    }
    if (shown < visible) {
        keys_left_out(tail, sizeof tail, visible - shown, rest, width - col);
        fputs(tail, f);
    }
}

/* Is query row r of v shown: picked by --from (all of them shown), else
 * row_shown. */
static bool query_shown(const view_opts *o, const attn_labels *ql, const attn_capture_view *v,
                        int r) {
    if (o->run->from) return attn_pick_has(o->run->from, ql, v->row_offset + r);
    return row_shown(o, r, v->rows);
}

/* The note in place of the rows row_shown leaves out (none with --from). */
static void queries_left_out(const view_opts *o, FILE *f, const attn_capture_view *v, int r) {
    if (!o->run->from) rows_left_out(o, f, r, v->rows, v->row_offset, "queries", "--maps");
}

/* The grid of a map in bands of the shown key columns cols[n] as wide as
 * the line (one band when they fit). */
static void map_grid(const view_opts *o, const attn_capture_key *key, const attn_capture_view *v,
                     const attn_labels *ql, const attn_labels *kl, const int *cols, int n,
                     FILE *f) {
    int *best = strongest_keys(v);
    if (!best) return;
    const bool bare = positional(ql);
    int per_band = (line_width(o) - LABEL) / CELL;
    if (per_band < 1) per_band = 1;
    for (int i0 = 0; i0 < n; i0 += per_band) {
        int i1 = i0 + per_band < n ? i0 + per_band : n;
        if (i0 > 0 || i1 < n)
            fprintf(f, "  keys %d..%d of %d\n", cols[i0], cols[i1 - 1], v->cols);
        band_header(f, kl, cols, i0, i1);
        for (int r = 0; r < v->rows; r++) {
            int qpos = v->row_offset + r;
            queries_left_out(o, f, v, r);
            if (!query_shown(o, ql, v, r)) continue;
            row_label(f, ql, bare, qpos);
            band_cells(o, f, v->data + (size_t)r * (size_t)v->cols, qpos, key->causal, best[r],
                       cols, i0, i1);
            putc('\n', f);
        }
    }
    free(best);
}

/* A map whose keys do not fit in the line: a note, then each query's
 * strongest keys among the shown ones cols[n] (top_keys). */
static void map_list(const view_opts *o, const attn_capture_key *key, const attn_capture_view *v,
                     const attn_labels *ql, const attn_labels *kl, const int *cols, int n,
                     FILE *f) {
    key_weight *kw = malloc((size_t)(n > 0 ? n : 1) * sizeof *kw);
    if (!kw) return;
    const bool bare = positional(ql), kbare = positional(kl);
    char note[128];
    snprintf(note, sizeof note, "  each query's strongest keys, %s (all %d: --full or --maps -)",
             kbare ? "key weight" : "key:token weight", n);
    if (text_width(note) > line_width(o))
        snprintf(note, sizeof note, "  strongest keys (all: --full)");
    fprintf(f, "%s\n", note);
    for (int r = 0; r < v->rows; r++) {
        int qpos = v->row_offset + r;
        queries_left_out(o, f, v, r);
        if (!query_shown(o, ql, v, r)) continue;
        row_label(f, ql, bare, qpos);
        int visible = key->causal && qpos + 1 < v->cols ? qpos + 1 : v->cols;
        top_keys(o, f, v->data + (size_t)r * (size_t)v->cols, visible, cols, n, kl, kbare, kw);
        putc('\n', f);
    }
    free(kw);
}

/* One head's map: a title, then the grid when its shown keys fit in the
 * line or with full, else each query's strongest keys. A map of which
 * --from picks no query is left out. */
static void emit_map(const view_opts *o, const attn_capture_key *key, const attn_capture_view *v,
                     FILE *f) {
    const attn_labels *ql, *kl;
    attn_run_key_labels(o->run, key, &ql, &kl);
    if (o->run->from) {
        int picked = 0;
        for (int r = 0; r < v->rows && !picked; r++)
            picked = attn_pick_has(o->run->from, ql, v->row_offset + r);
        if (!picked) return;
    }
    int n;
    int *cols = shown_keys(o->run, kl, v, &n);
    if (!cols || n == 0) { /* --to picks no key of this map */
        free(cols);
        return;
    }
    fprintf(f, "%s layer %d, %s-attention, head %d\n", attn_stack_name(key->stack), key->layer,
            attn_kind_name(key->kind), key->head);
    if (!o->full && LABEL + n * CELL > line_width(o))
        map_list(o, key, v, ql, kl, cols, n, f);
    else
        map_grid(o, key, v, ql, kl, cols, n, f);
    free(cols);
    putc('\n', f);
}

static void emit_hidden(const view_opts *o, const attn_capture_view *v) {
    FILE *f = o->f;
    char buf[64];
    int fit = (line_width(o) - LABEL) / 8; /* " %+7.3f" */
    if (fit < 3) fit = 3;
    bool cut = v->cols > fit;
    int show = cut ? fit - 2 : v->cols; /* then "…" and the last column */
    fprintf(f, "context vectors (final hidden state, %d dims)\n", v->cols);
    text_pad(f, "", LABEL, false);
    for (int c = 0; c < show; c++) {
        snprintf(buf, sizeof buf, "d%d", c);
        putc(' ', f);
        text_pad(f, buf, 7, true);
    }
    if (cut) {
        snprintf(buf, sizeof buf, "d%d", v->cols - 1);
        fprintf(f, "       …");
        putc(' ', f);
        text_pad(f, buf, 7, true);
    }
    putc('\n', f);
    const bool bare = positional(o->run->main);
    for (int r = 0; r < v->rows; r++) {
        int pos = v->row_offset + r;
        rows_left_out(o, f, r, v->rows, v->row_offset, "positions", "--context");
        if (!row_shown(o, r, v->rows)) continue;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [D] */
        row_label(f, o->run->main, bare, pos);
        for (int c = 0; c < show; c++) fprintf(f, " %+7.3f", (double)row[c]);
        if (cut) fprintf(f, "       … %+7.3f", (double)row[v->cols - 1]);
        putc('\n', f);
    }
    putc('\n', f);
}

attn_status view_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
              attn_error *err) {
    (void)err;
    const view_opts *o = user;
    if (key->value != ATTN_V_WEIGHTS) {
        emit_hidden(o, v);
        return ATTN_OK;
    }
    /* one map at a time through memory, so that lines end without blanks */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        emit_map(o, key, v, o->f);
        return ATTN_OK;
    }
    emit_map(o, key, v, mem);
    if (fclose(mem) == 0 && buf) text_put_stripped(o->f, buf, len);
    free(buf);
    return ATTN_OK;
}
