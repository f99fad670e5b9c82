/* The HTML head view: one self-contained page of the attention maps of a
 * run (attn/write.h, docs/html.md). The page's style and script are
 * src/write/html_page.css and html_page.js, compiled in by
 * tools/embed_text.c (write/html_page.h).
 *
 * Layout of the page, in the order it is streamed:
 *   <head> with the style, then in <body>:
 *   <script type="application/json" id="attn-meta">{...}</script>
 *   per input:
 *     <script type="application/json" class="attn-input">{"seq":..,"input":..,
 *       "key":..,"main":[labels],"source":[labels] or null}</script>
 *     per map (or block of rows of a map):
 *       <script type="application/octet-stream" class="attn-map" data-...>BASE64</script>
 *     <script type="application/json" class="attn-end">{"seq":..,"ok":true}</script>
 *   <script>the page's code</script></body></html>
 * A map's bytes: one per weight, row by row, q = floor(255 w + 1/2); a
 * causal map stores row i's keys 0..i only. The script reads a map's text
 * only when it is shown. */
#include "attn/write.h"

#include "base/util.h"
#include "write/html_page.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The visible escape of s[0..n) (attn_escape_text) into *out: buf[cap] when
 * it fits, else malloc'd (*heap set; the caller frees it). */
static attn_status escape_visible(const char *s, size_t n, char *buf, size_t cap, char **out,
                                  size_t *len, char **heap, attn_error *err) {
    *heap = NULL;
    *len = attn_escape_text(buf, cap, s, n);
    *out = buf;
    if (*len < cap) return ATTN_OK;
    size_t need;
    if (!attn_add_size(*len, 1, &need) ||
        !(*heap = attn_alloc_array(need, 1, "escaped text", err)))
        return attn_error_set(err, ATTN_ERR_NOMEM, "escaped text of %zu bytes: out of memory", n);
    attn_escape_text(*heap, need, s, n);
    *out = *heap;
    return ATTN_OK;
}

#define ESCAPE_STACK 4096 /* the escape of up to 1 KiB is built on the stack */

attn_status attn_html_text(FILE *f, const char *s, size_t n, attn_error *err) {
    char buf[ESCAPE_STACK], *t, *heap;
    size_t len;
    attn_status rc = escape_visible(s, n, buf, sizeof buf, &t, &len, &heap, err);
    if (rc) return rc;
    for (size_t i = 0; i < len; i++) {
        switch (t[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: putc(t[i], f);
        }
    }
    free(heap);
    return ATTN_OK;
}

attn_status attn_json_string(FILE *f, const char *s, size_t n, attn_error *err) {
    char buf[ESCAPE_STACK], *t, *heap;
    size_t len;
    attn_status rc = escape_visible(s, n, buf, sizeof buf, &t, &len, &heap, err);
    if (rc) return rc;
    /* t is valid UTF-8 without control bytes (attn_escape_text) */
    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)t[i];
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
        } else if (c == '<' || c == '>' || c == '&') {
            fprintf(f, "\\u%04x", c);
        } else if (c == 0xe2 && i + 2 < len && (unsigned char)t[i + 1] == 0x80 &&
                   ((unsigned char)t[i + 2] == 0xa8 || (unsigned char)t[i + 2] == 0xa9)) {
            fprintf(f, "\\u%04x", 0x2000 + ((unsigned char)t[i + 2] - 0x80)); /* U+2028, U+2029 */
            i += 2;
        } else {
            putc(c, f);
        }
    }
    putc('"', f);
    free(heap);
    return ATTN_OK;
}

/* A JSON array of the labels l (null when l is NULL). */
static attn_status json_labels(FILE *f, const attn_labels *l, attn_error *err) {
    if (!l) {
        fputs("null", f);
        return ATTN_OK;
    }
    putc('[', f);
    for (size_t i = 0; i < l->n; i++) {
        if (i) putc(',', f);
        const char *t = l->text[i];
        attn_status rc = attn_json_string(f, t, strlen(t), err);
        if (rc) return rc;
    }
    putc(']', f);
    return ATTN_OK;
}

attn_status attn_html_begin(attn_html *h, FILE *f, const attn_run_info *run, const char *title,
                            attn_error *err) {
    *h = (attn_html){.f = f, .run = run, .input_start = -1};
    if (!title) title = "attn";
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
          "<title>attn head view: ",
          f);
    attn_status rc = attn_html_text(f, title, strlen(title), err);
    if (rc) return rc;
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", attn_html_page_css);
    fputs("<script type=\"application/json\" id=\"attn-meta\">{\"format\":\"attn-html/1\","
          "\"title\":",
          f);
    if ((rc = attn_json_string(f, title, strlen(title), err))) return rc;
    const attn_config *cfg = run ? run->cfg : NULL;
    if (cfg)
        fprintf(f, ",\"architecture\":\"%s\",\"n_layers\":%d,\"n_encoder_layers\":%d,"
                   "\"n_heads\":%d",
                attn_arch_name(cfg->arch), cfg->n_layers, cfg->n_encoder_layers, cfg->n_heads);
    fputs(",\"precision\":\"uint8: weight = q/255, |error| <= 1/510\"}</script>\n", f);
    return ATTN_OK;
}

/* Where the current input starts, when f is a regular file that can be cut
 * back to it; else -1. */
static long cut_point(FILE *f) {
    struct stat st;
    int fd = fileno(f);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    return ftell(f);
}

attn_status attn_html_input_begin(attn_html *h, attn_error *err) {
    FILE *f = h->f;
    if (h->in_input) {
        attn_status rc = attn_html_input_end(h, true, err);
        if (rc) return rc;
    }
    const attn_run_info *run = h->run;
    h->input_start = cut_point(f);
    h->in_input = true;
    fprintf(f, "<script type=\"application/json\" class=\"attn-input\">{\"seq\":%ld,\"input\":%ld,"
               "\"key\":",
            h->inputs, run ? run->input : h->inputs);
    attn_status rc = ATTN_OK;
    if (run && run->key) rc = attn_json_string(f, run->key, strlen(run->key), err);
    else fputs("null", f);
    if (!rc) {
        fputs(",\"main\":", f);
        rc = json_labels(f, run ? run->main : NULL, err);
    }
    if (!rc) {
        fputs(",\"source\":", f);
        rc = json_labels(f, run ? run->source : NULL, err);
    }
    fputs("}</script>\n", f);
    return rc;
}

attn_status attn_html_input_end(attn_html *h, bool ok, attn_error *err) {
    if (!h->in_input) return ATTN_OK;
    FILE *f = h->f;
    h->in_input = false;
    if (!ok && h->input_start >= 0 && fflush(f) == 0 &&
        ftruncate(fileno(f), (off_t)h->input_start) == 0) {
        /* the input is gone; its sequence number goes to the next one */
        if (fseek(f, h->input_start, SEEK_SET) != 0)
            return attn_error_set(err, ATTN_ERR_IO, "page: cannot drop a failed input");
        return ATTN_OK;
    }
    fprintf(f, "<script type=\"application/json\" class=\"attn-end\">{\"seq\":%ld,\"ok\":%s}"
               "</script>\n",
            h->inputs, ok ? "true" : "false");
    h->inputs++;
    return ATTN_OK;
}

bool attn_html_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of a stream of bytes, 76 digits a line */
typedef struct b64 {
    FILE *f;
    unsigned char in[3];
    int n;      /* bytes in `in` */
    int column; /* digits on the current line */
} b64;

static void b64_flush(b64 *b) {
    if (!b->n) return;
    unsigned v = (unsigned)b->in[0] << 16 | (unsigned)(b->n > 1 ? b->in[1] : 0) << 8 |
                 (unsigned)(b->n > 2 ? b->in[2] : 0);
    char out[4] = {b64_digits[v >> 18 & 63], b64_digits[v >> 12 & 63],
                   b->n > 1 ? b64_digits[v >> 6 & 63] : '=', b->n > 2 ? b64_digits[v & 63] : '='};
    if (b->column == 76) {
        putc('\n', b->f);
        b->column = 0;
    }
    fwrite(out, 1, 4, b->f);
    b->column += 4;
    b->n = 0;
}

static void b64_put(b64 *b, unsigned char c) {
    b->in[b->n++] = c;
    if (b->n == 3) b64_flush(b);
}

/* The byte of a weight: round(255 w) of w clamped to [0, 1] (NaN: 0). */
static unsigned char quantize(float w) {
    double x = w > 0 ? (w < 1 ? (double)w : 1.0) : 0.0;
    return (unsigned char)(x * 255.0 + 0.5);
}

attn_status attn_html_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                           attn_error *err) {
    attn_html *h = user;
    FILE *f = h->f;
    if (v->rows < 0 || v->cols < 0 || v->row_offset < 0 || (v->rows && v->cols && !v->data))
        return attn_error_set(err, ATTN_ERR_USAGE, "page: a map of %d x %d rows from %d", v->rows,
                              v->cols, v->row_offset);
    attn_status rc = h->in_input ? ATTN_OK : attn_html_input_begin(h, err);
    if (rc) return rc;
    char name[160], num[12];
    attn_capture_name(key, name, sizeof name);
    const attn_run_info *run = h->run;
    const char *qside = "main", *kside = "main";
    if (run) {
        const attn_labels *ql, *kl;
        attn_run_key_labels(run, key, &ql, &kl);
        if (ql && ql == run->source) qside = "source";
        if (kl && kl == run->source) kside = "source";
    } else if (key->source) {
        qside = kside = "source";
    } else if (key->kind == ATTN_KIND_CROSS) {
        kside = "source";
    }
    fprintf(f, "<script type=\"application/octet-stream\" class=\"attn-map\" data-seq=\"%ld\" "
               "data-name=\"",
            h->inputs);
    if ((rc = attn_html_text(f, name, strlen(name), err))) return rc;
    fprintf(f, "\" data-stack=\"%s\" data-source=\"%d\" data-layer=\"%d\" data-kind=\"%s\" "
               "data-head=\"%s\" data-q=\"%s\" data-k=\"%s\" data-rows=\"%d\" data-cols=\"%d\" "
               "data-row0=\"%d\" data-causal=\"%d\">\n",
            attn_stack_name(key->stack), key->source ? 1 : 0, key->layer, attn_kind_name(key->kind),
            attn_head_name(key->head, num, sizeof num), qside, kside, v->rows, v->cols,
            v->row_offset, key->causal ? 1 : 0);
    b64 b = {.f = f};
    for (int r = 0; r < v->rows; r++) {
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [cols] */
        const long qpos = (long)v->row_offset + r;
        const int n = key->causal && qpos + 1 < v->cols ? (int)(qpos + 1) : v->cols;
        for (int c = 0; c < n; c++) b64_put(&b, quantize(row[c]));
    }
    b64_flush(&b);
    fputs("\n</script>\n", f);
    return ATTN_OK;
}

attn_status attn_html_end(attn_html *h, attn_error *err) {
    attn_status rc = attn_html_input_end(h, true, err);
    if (rc) return rc;
    /* the script holds no "</script" (tests/html checks the source) */
    fprintf(h->f, "<script>\n%s</script>\n</body>\n</html>\n", attn_html_page_js);
    return ATTN_OK;
}
