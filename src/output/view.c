/* The readable view of `attn run`: tokens, every head's map as a labelled
 * grid (strongest key per query marked), then the context vectors. */
#include "output/output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CELL 7 /* width of one grid column */

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

/* Copies a label for display: control bytes escaped, at most `width`
 * characters (UTF-8 code points), "~" marking a cut. */
static void display(char *out, size_t cap, const char *s, int width) {
    size_t n = 0;
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 8 < cap; p++) {
        bool cont = (*p & 0xC0) == 0x80;
        if (!cont && chars == width) {
            if (n > 0) {
                /* replace the last character with the cut mark */
                while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80) n--;
                n--;
                out[n++] = '~';
            }
            break;
        }
        if (*p < 0x20 || *p == 0x7f) {
            const char *esc = *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : NULL;
            if (esc) {
                memcpy(out + n, esc, 2);
                n += 2;
            } else {
                n += (size_t)snprintf(out + n, cap - n, "\\x%02x", *p);
            }
            chars++;
            continue;
        }
        out[n++] = (char)*p;
        if (!cont) chars++;
    }
    out[n] = '\0';
}

/* Prints s left-aligned in a field of `width` characters. */
static void pad(FILE *f, const char *s, int width) {
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) chars++;
    fputs(s, f);
    for (int i = chars; i < width; i++) putc(' ', f);
}

static const char *label_at(const seq_labels *l, int pos) {
    return l && pos >= 0 && (size_t)pos < l->n ? l->text[pos] : "?";
}

void view_input_header(const view_opts *o) {
    const run_context *run = o->run;
    FILE *f = o->f;
    char buf[256];
    fprintf(f, "input %ld\n", run->input);
    if (run->source) {
        fprintf(f, "  source (%zu positions):", run->source->n);
        for (size_t i = 0; i < run->source->n; i++) {
            display(buf, sizeof buf, run->source->text[i], 40);
            fprintf(f, " %zu:%s", i, buf);
        }
        putc('\n', f);
    }
    fprintf(f, "  tokens (%zu positions):", run->main->n);
    for (size_t i = 0; i < run->main->n; i++) {
        display(buf, sizeof buf, run->main->text[i], 40);
        fprintf(f, " %zu:%s", i, buf);
    }
    fputs("\n\n", f);
}

bool view_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS || (key->value == ATTN_V_HIDDEN && !key->source);
}

/* ANSI 256-colour background for a weight in [0, 1]: a white-to-blue ramp. */
static void shade(FILE *f, float w) {
    static const int ramp[] = {231, 195, 159, 123, 87, 51, 45, 39, 33, 27, 21};
    int i = (int)lrintf(w * 10.0f);
    if (i < 0) i = 0;
    if (i > 10) i = 10;
    fprintf(f, "\x1b[48;5;%dm\x1b[38;5;%dm", ramp[i], i >= 6 ? 231 : 16);
}

static void emit_map(const view_opts *o, const attn_capture_key *key, const attn_capture_view *v) {
    FILE *f = o->f;
    const run_context *run = o->run;
    const seq_labels *ql = key->source ? run->source : run->main;
    const seq_labels *kl = key->source ? run->source
                           : key->kind == ATTN_KIND_CROSS ? run->source
                                                          : run->main;
    bool causal = key->kind == ATTN_KIND_SELF && key->stack == ATTN_STACK_DECODER &&
                  !key->source && run->cfg->arch != ATTN_ARCH_ENCODER;
    char buf[64];
    fprintf(f, "%s layer %d, %s-attention, head %d  (rows: queries, columns: keys, * strongest key)\n",
            key->stack == ATTN_STACK_ENCODER ? "encoder" : "decoder", key->layer,
            key->kind == ATTN_KIND_CROSS ? "cross" : "self", key->head);
    int lw = 12; /* query label column */
    for (int i = 0; i < lw; i++) putc(' ', f);
    for (int c = 0; c < v->cols; c++) {
        display(buf, sizeof buf, label_at(kl, c), CELL - 1);
        putc(' ', f);
        pad(f, buf, CELL - 1);
    }
    putc('\n', f);
    for (int r = 0; r < v->rows; r++) {
        int qpos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [Tk] */
        int best = 0;
        for (int c = 1; c < v->cols; c++)
            if (row[c] > row[best]) best = c;
        char q[64];
        display(q, sizeof q, label_at(ql, qpos), lw - 5);
        fprintf(f, "%3d ", qpos);
        pad(f, q, lw - 4);
        for (int c = 0; c < v->cols; c++) {
            putc(' ', f);
            if (causal && c > qpos) {
                pad(f, "   .", CELL - 1);
                continue;
            }
            if (o->color) shade(f, row[c]);
            fprintf(f, "%5.3f%c", (double)row[c], c == best ? '*' : ' ');
            if (o->color) fputs("\x1b[0m", f);
        }
        putc('\n', f);
    }
    putc('\n', f);
}

static void emit_hidden(const view_opts *o, const attn_capture_view *v) {
    FILE *f = o->f;
    char buf[64];
    int show = v->cols;
    bool cut = o->max_cols > 0 && v->cols > o->max_cols;
    if (cut) show = o->max_cols - 2;
    fprintf(f, "context vectors (final hidden state, %d dims%s)\n", v->cols,
            cut ? ", middle dims left out" : "");
    for (int r = 0; r < v->rows; r++) {
        int pos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [D] */
        display(buf, sizeof buf, label_at(o->run->main, pos), 8);
        fprintf(f, "%3d ", pos);
        pad(f, buf, 8);
        for (int c = 0; c < show; c++) fprintf(f, " %+7.3f", (double)row[c]);
        if (cut) {
            fputs("  ...", f);
            for (int c = v->cols - 2; c < v->cols; c++) fprintf(f, " %+7.3f", (double)row[c]);
        }
        putc('\n', f);
    }
    putc('\n', f);
}

int view_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
              attn_error *err) {
    (void)err;
    const view_opts *o = user;
    if (key->value == ATTN_V_WEIGHTS)
        emit_map(o, key, v);
    else
        emit_hidden(o, v);
    return ATTN_OK;
}
