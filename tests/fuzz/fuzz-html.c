/* libFuzzer entry point for the HTML head view's writer and escapes
 * (attn/write.h, src/write/html.c): attn_html_text, attn_json_string and
 * the attn_html_* page sink, with fuzzer-chosen labels and map values.
 *
 * Input: 3 bytes of shape (labels, rows, flags), then NUL-separated texts:
 * the page's title, the key, the labels; what follows the last NUL (or the
 * bytes after the texts) are the map's values, 4 bytes each as a float
 * (NaN, infinities and values outside [0, 1] too) with flag 1, else one
 * byte each as b / 255.
 *
 * Checked: the HTML escape of any bytes is valid UTF-8 with no control byte
 * and none of & < > " ' but as references, and reads back (references
 * undone) to the visible escape (attn_escape_text); the JSON escape has no
 * < > & or raw U+2028/U+2029 and reads back (a small JSON string reader) to
 * the same. The page holds as many "<script" as "</script", no "<!--", its
 * map's base64 decodes to round(255 clamp(w)) of each value kept (a causal
 * map: keys 0..i of row i), and an input that ends failed leaves no trace
 * in a regular file (flag 8) or is marked failed in memory. See README.md. */
#include "attn/write.h"
#include "fuzz-common.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LABELS_MAX 12
#define ROWS_MAX 12

/* Is s[0..n) well-formed UTF-8 without control bytes but line feeds? Then
 * the visible escape (fuzz-escape checks it) changes nothing but doubles
 * each backslash and writes each line feed as two bytes. */
static bool clean_text(const char *s, size_t n) {
    size_t grow = 0;
    for (size_t i = 0; i < n; i++) grow += s[i] == '\\' || s[i] == '\n';
    return attn_escape_text(NULL, 0, s, n) == n + grow;
}

/* out[*len] of what f wrote (malloc'd); f is a memstream. */
typedef struct mem {
    char *buf;
    size_t n;
    FILE *f;
} mem;

static void mem_open(mem *m) {
    m->buf = NULL;
    m->n = 0;
    m->f = open_memstream(&m->buf, &m->n);
    if (!m->f) __builtin_trap();
}

static void mem_close(mem *m) {
    if (fclose(m->f) != 0) __builtin_trap();
}

/* What escape writes of s[0..n), in memory. */
typedef attn_status (*escape_fn)(FILE *f, const char *s, size_t n, attn_error *err);
static mem escaped(escape_fn escape, const char *s, size_t n) {
    mem m;
    mem_open(&m);
    if (escape(m.f, s, n, NULL) != ATTN_OK) __builtin_trap();
    mem_close(&m);
    return m;
}

static char *visible(const char *s, size_t n, size_t *len) {
    *len = attn_escape_text(NULL, 0, s, n);
    char *v = malloc(*len + 1);
    if (!v) __builtin_trap();
    attn_escape_text(v, *len + 1, s, n);
    return v;
}

static void check_html_text(const char *s, size_t n) {
    mem m = escaped(attn_html_text, s, n);
    size_t vlen;
    char *v = visible(s, n, &vlen);
    if (!clean_text(m.buf, m.n)) __builtin_trap();
    /* undo the references; nothing else may stand for & < > " ' */
    char *back = malloc(m.n + 1);
    size_t k = 0;
    static const char *const refs[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    static const char chars[] = "&<>\"'";
    for (size_t i = 0; i < m.n;) {
        unsigned char c = (unsigned char)m.buf[i];
        if (c < 0x20 || c == 0x7f || strchr("<>\"'", c)) __builtin_trap();
        if (c == '&') {
            int r = 0;
            while (r < 5 && strncmp(m.buf + i, refs[r], strlen(refs[r])) != 0) r++;
            if (r == 5) __builtin_trap();
            back[k++] = chars[r];
            i += strlen(refs[r]);
        } else {
            back[k++] = (char)c;
            i++;
        }
    }
    if (k != vlen || memcmp(back, v, k) != 0) __builtin_trap();
    free(back);
    free(v);
    free(m.buf);
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Reads the JSON string j[0..n) (quotes included) into out (n bytes);
 * returns its length, or traps when it is not one JSON string. */
static size_t read_json_string(const char *j, size_t n, char *out) {
    if (n < 2 || j[0] != '"' || j[n - 1] != '"') __builtin_trap();
    size_t k = 0;
    for (size_t i = 1; i + 1 < n;) {
        unsigned char c = (unsigned char)j[i];
        if (c < 0x20 || c == '"') __builtin_trap();
        if (c != '\\') {
            out[k++] = (char)c;
            i++;
            continue;
        }
        if (i + 2 >= n) __builtin_trap();
        char e = j[i + 1];
        if (e == '"' || e == '\\' || e == '/') {
            out[k++] = e;
            i += 2;
        } else if (e == 'u') {
            if (i + 6 > n - 1) __builtin_trap();
            unsigned cp = 0;
            for (int d = 0; d < 4; d++) {
                int h = hexval(j[i + 2 + d]);
                if (h < 0) __builtin_trap();
                cp = cp << 4 | (unsigned)h;
            }
            if (cp >= 0xd800 && cp < 0xe000) __builtin_trap(); /* never written */
            if (cp < 0x80) {
                out[k++] = (char)cp;
            } else if (cp < 0x800) {
                out[k++] = (char)(0xc0 | cp >> 6);
                out[k++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[k++] = (char)(0xe0 | cp >> 12);
                out[k++] = (char)(0x80 | (cp >> 6 & 0x3f));
                out[k++] = (char)(0x80 | (cp & 0x3f));
            }
            i += 6;
        } else {
            __builtin_trap(); /* the writer uses no other escape */
        }
    }
    return k;
}

static void check_json_string(const char *s, size_t n) {
    mem m = escaped(attn_json_string, s, n);
    if (!clean_text(m.buf, m.n)) __builtin_trap();
    for (size_t i = 0; i < m.n; i++) {
        unsigned char c = (unsigned char)m.buf[i];
        if (c == '<' || c == '>' || c == '&' || c < 0x20 || c == 0x7f) __builtin_trap();
        if (c == 0xe2 && i + 2 < m.n && (unsigned char)m.buf[i + 1] == 0x80 &&
            ((unsigned char)m.buf[i + 2] & 0xfe) == 0xa8)
            __builtin_trap(); /* U+2028 / U+2029 end a JavaScript line */
    }
    size_t vlen;
    char *v = visible(s, n, &vlen);
    char *back = malloc(m.n + 1);
    size_t k = read_json_string(m.buf, m.n, back);
    if (k != vlen || memcmp(back, v, k) != 0) __builtin_trap();
    free(back);
    free(v);
    free(m.buf);
}

static size_t count(const char *s, size_t n, const char *what) {
    size_t c = 0, w = strlen(what);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(s + i, what, w) == 0) c++;
    return c;
}

static int b64val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static unsigned char expect_byte(float w) {
    if (!(w > 0)) return 0; /* NaN and below 0 */
    if (w >= 1) return 255;
    return (unsigned char)floor((double)w * 255.0 + 0.5);
}

/* Checks the map's base64 text in page[0..n) against the values. */
static void check_map(const char *page, size_t n, const float *w, int rows, int cols, bool causal) {
    const char *tag = strstr(page, "class=\"attn-map\"");
    if (!tag) __builtin_trap();
    const char *p = strchr(tag, '>');
    if (!p) __builtin_trap();
    p++;
    const char *end = strstr(p, "</script>");
    if (!end || end > page + n) __builtin_trap();
    unsigned char *bytes = malloc((size_t)(end - p) + 1);
    size_t nb = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; p < end; p++) {
        if (*p == '\n') continue;
        if (*p == '=') break;
        int v = b64val(*p);
        if (v < 0) __builtin_trap();
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[nb++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    size_t k = 0;
    for (int r = 0; r < rows; r++) {
        int keep = causal && r + 1 < cols ? r + 1 : cols;
        for (int c = 0; c < keep; c++, k++)
            if (k >= nb || bytes[k] != expect_byte(w[(size_t)r * (size_t)cols + (size_t)c]))
                __builtin_trap();
    }
    if (k != nb) __builtin_trap();
    free(bytes);
}

/* Writes a page to f: one input with one map, ended ok or not, and with
 * second a second input that the emit begins. */
static void write_page(FILE *f, const attn_run_info *run, const char *title, const float *w,
                       int rows, int cols, bool causal, bool cross, bool ok, bool second) {
    attn_html h;
    attn_error err;
    if (attn_html_begin(&h, f, run, title, &err) != ATTN_OK) __builtin_trap();
    attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = 1, .head = 2, .causal = causal,
                            .kind = cross ? ATTN_KIND_CROSS : ATTN_KIND_SELF};
    attn_capture_view v = {.rows = rows, .cols = cols, .data = w};
    if (!attn_html_wants(NULL, &key)) __builtin_trap();
    if (attn_html_input_begin(&h, &err) != ATTN_OK) __builtin_trap();
    if (attn_html_emit(&h, &key, &v, &err) != ATTN_OK) __builtin_trap();
    if (attn_html_input_end(&h, ok, &err) != ATTN_OK) __builtin_trap();
    if (second) { /* a second input, begun by the emit */
        if (attn_html_emit(&h, &key, &v, &err) != ATTN_OK) __builtin_trap();
    }
    if (attn_html_end(&h, &err) != ATTN_OK) __builtin_trap();
    if (ferror(f)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const int n_labels = data[0] % LABELS_MAX + 1, rows = data[1] % (ROWS_MAX + 1);
    const unsigned flags = data[2];
    const bool float_values = flags & 1, causal = flags & 2, ok = flags & 4, regular = flags & 8,
               cross = flags & 16, keyed = flags & 32, second = flags & 64;
    /* texts: title, key, labels */
    char *texts[LABELS_MAX + 2] = {0};
    size_t pos = 3;
    int nt = 0;
    while (nt < n_labels + 2) {
        const uint8_t *z = pos < size ? memchr(data + pos, 0, size - pos) : NULL;
        size_t len = z ? (size_t)(z - data) - pos : 0;
        texts[nt] = malloc(len + 1);
        if (!texts[nt]) __builtin_trap();
        if (len) memcpy(texts[nt], data + pos, len);
        texts[nt][len] = '\0';
        check_html_text(texts[nt], len);
        check_json_string(texts[nt], len);
        nt++;
        if (z) pos += len + 1;
    }
    /* the values: the rest, cycled */
    const int cols = n_labels;
    float *w = malloc(sizeof(float) * (size_t)(rows ? rows : 1) * (size_t)cols);
    if (!w) __builtin_trap();
    size_t rest = pos < size ? size - pos : 0;
    for (int i = 0; i < rows * cols; i++) {
        if (float_values && rest >= 4) {
            memcpy(&w[i], data + pos + (size_t)i % (rest / 4) * 4, 4);
        } else {
            w[i] = rest ? data[pos + (size_t)i % rest] / 255.0f : (float)(i % 7) / 6.0f;
        }
    }
    attn_labels labels = {.n = (size_t)n_labels, .text = texts + 2};
    attn_labels source = {.n = (size_t)n_labels, .text = texts + 2};
    attn_config cfg = {.arch = ATTN_ARCH_ENCODER_DECODER, .n_layers = 2, .n_heads = 3};
    attn_run_info run = {.input = 7, .key = keyed ? texts[1] : NULL, .main = &labels,
                         .source = cross ? &source : NULL, .cfg = &cfg};
    FILE *f;
    mem m = {0};
    if (regular) {
        f = tmpfile();
        if (!f) __builtin_trap();
    } else {
        mem_open(&m);
        f = m.f;
    }
    write_page(f, &run, texts[0], w, rows, cols, causal, cross, ok, second);
    char *page;
    size_t n;
    if (regular) {
        long len = ftell(f);
        if (len < 0 || fseek(f, 0, SEEK_SET) != 0) __builtin_trap();
        page = malloc((size_t)len + 1);
        if (fread(page, 1, (size_t)len, f) != (size_t)len) __builtin_trap();
        fclose(f);
        n = (size_t)len;
    } else {
        mem_close(&m);
        page = m.buf;
        n = m.n;
    }
    if (!clean_text(page, n)) __builtin_trap();
    if (count(page, n, "<script") != count(page, n, "</script") || count(page, n, "<!--"))
        __builtin_trap();
    if (n < 8 || memcmp(page + n - 8, "</html>\n", 8) != 0) __builtin_trap();
    const size_t inputs = count(page, n, "class=\"attn-input\"");
    const size_t failed = count(page, n, "\"ok\":false");
    if (ok || !regular) {
        if (inputs != 1u + second) __builtin_trap();
        if (failed != (ok ? 0u : 1u)) __builtin_trap();
        check_map(page, n, w, rows, cols, causal);
    } else if (inputs != (size_t)second || failed) { /* cut off the file */
        __builtin_trap();
    }
    free(page);
    free(w);
    for (int i = 0; i < nt; i++) free(texts[i]);
    return 0;
}
