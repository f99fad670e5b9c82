/* The readable view of `attn run`: the tokens, every head's map as a
 * labelled grid (rows: queries, columns: keys, the strongest key of each
 * query marked), shaded as a heatmap on a colour terminal, then the context
 * vectors.
 *
 * A grid wider than the line is cut into bands of key columns, each band
 * with its own header, so every weight is shown. Colour: ANSI 256-colour
 * backgrounds from white (0) to deep blue (1), chosen by out_color_enabled. */
#include "view.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CELL 7  /* one grid column: a 5-character weight, the mark, a space */
#define LABEL 13 /* the query label column */

int out_term_width(FILE *f) {
    const char *env = getenv("COLUMNS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 20 && v <= 100000) return (int)v;
    }
    struct winsize ws;
    int fd = fileno(f);
    if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
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
    const char *nc = getenv("NO_COLOR");
    if (nc && nc[0]) return false;
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

static int line_width(const view_opts *o) {
    int w = out_term_width(o->f);
    return w < 40 ? 40 : w;
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
        fprintf(f, "  %s: %zu input vector%s, labelled by position 0..%zu\n",
                strcmp(name, "tokens") == 0 ? "input" : name, l->n,
                l->n == 1 ? "" : "s", l->n - 1);
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

/* The header of key columns c0 .. c1-1: their positions, then their
 * tokens (unless the labels are just the positions). */
static void band_header(FILE *f, const attn_labels *kl, int c0, int c1) {
    char buf[64];
    for (int line = 0; line < (positional(kl) ? 1 : 2); line++) {
        text_pad(f, "", LABEL, false);
        for (int c = c0; c < c1; c++) {
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

/* The cells c0 .. c1-1 of the weights row [Tk] of query qpos: '·' where the
 * causal mask hides the key, '*' after the strongest key. */
static void band_cells(const view_opts *o, FILE *f, const float *row, int qpos, bool causal,
                       int best, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
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

/* One head's map: a title, then bands of key columns as wide as the line. */
static void emit_map(const view_opts *o, const attn_capture_key *key, const attn_capture_view *v,
                     FILE *f) {
    const attn_labels *ql, *kl;
    attn_run_key_labels(o->run, key, &ql, &kl);
    fprintf(f, "%s layer %d, %s-attention, head %d\n", attn_stack_name(key->stack), key->layer,
            attn_kind_name(key->kind), key->head);
    int *best = strongest_keys(v);
    if (!best) return;
    const bool bare = positional(ql);
    int per_band = (line_width(o) - LABEL) / CELL;
    if (per_band < 1) per_band = 1;
    for (int c0 = 0; c0 < v->cols; c0 += per_band) {
        int c1 = c0 + per_band < v->cols ? c0 + per_band : v->cols;
        if (c0 > 0 || c1 < v->cols) fprintf(f, "  keys %d..%d of %d\n", c0, c1 - 1, v->cols);
        band_header(f, kl, c0, c1);
        for (int r = 0; r < v->rows; r++) {
            int qpos = v->row_offset + r;
            row_label(f, ql, bare, qpos);
            band_cells(o, f, v->data + (size_t)r * (size_t)v->cols, qpos, key->causal, best[r],
                       c0, c1);
            putc('\n', f);
        }
    }
    putc('\n', f);
    free(best);
}

/* The context vectors: one row per position, the columns that fit. */
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
