/* embeddings: input vectors given directly instead of tokens (attn run /
 * attn explain --embeddings), from CSV text or a .npy image in memory.
 *
 * Result: [T, D] float32, row-major, one row per position.
 *
 * CSV   one row of D comma-separated numbers per position. Blank lines and
 *       lines whose first non-blank character is '#' are skipped. The first
 *       remaining line may be a header: it is skipped when none of its fields
 *       is a number (e.g. "d0,d1,d2,d3"). Spaces and tabs around fields and a
 *       CR before the LF are allowed. A number is what strtod reads from
 *       [0-9+-.eE] only (no hex, no inf/nan).
 * .npy  NumPy format version 1, 2 or 3: dtype '<f4' or '<f8', C order,
 *       shape (T, D); the data follows the header exactly (no trailing bytes).
 *
 * Malformed content is ATTN_ERR_FORMAT; content that is well formed but does
 * not fit the model (rows of the wrong width, more rows than max_rows) is
 * ATTN_ERR_USAGE, like an id outside the vocabulary. Every message names the
 * buffer and the line and column (CSV) or the element / header field (.npy). */
#include "base/bytes.h"
#include "base/util.h"
#include "model/limits.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NUM_MAX 64                     /* longest number field accepted */

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* A growable [rows, D] float matrix. */
typedef struct grow {
    float *p;
    size_t rows, cap_rows;
    size_t D;
} grow;

static int grow_row(grow *g, float **row, const char *name, attn_error *err) {
    if (g->rows == g->cap_rows) {
        size_t cap = g->cap_rows ? g->cap_rows * 2 : 16, n;
        if (cap < g->cap_rows || !attn_mul_size(cap, g->D, &n) ||
            !attn_mul_size(n, sizeof(float), &n))
            return attn_error_set(err, ATTN_ERR_NOMEM, "%s: too many rows", name);
        float *p = realloc(g->p, n);
        if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
        g->p = p;
        g->cap_rows = cap;
    }
    *row = g->p + g->rows * g->D;
    g->rows++;
    return ATTN_OK;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Classifies a field s[n] (trimmed): 1 = a finite float32 number (*v set),
 * 0 = not a number, -1 = not finite (inf/nan), -2 = outside float32 range. */
static int parse_number(const char *s, size_t n, float *v) {
    if (n == 0 || n >= NUM_MAX) return 0;
    char buf[NUM_MAX];
    memcpy(buf, s, n);
    buf[n] = '\0';
    bool plain = true;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\0') return 0;
        if (!strchr("0123456789+-.eE", buf[i])) plain = false;
    }
    if (!plain) {
        const char *w = buf + (buf[0] == '+' || buf[0] == '-');
        if (strcasecmp(w, "inf") == 0 || strcasecmp(w, "infinity") == 0 ||
            strcasecmp(w, "nan") == 0)
            return -1;
        return 0;
    }
    errno = 0;
    char *end;
    double d = strtod(buf, &end);
    if (end != buf + n) return 0;
    if ((errno == ERANGE && fabs(d) > 1.0) || !isfinite(d) || fabs(d) > FLT_MAX) return -2;
    *v = (float)d;
    return 1;
}

/* Field [b, e) of a line with the blanks around it removed. */
static void trim(const char **b, const char **e) {
    while (*b < *e && is_blank(**b)) (*b)++;
    while (*e > *b && is_blank((*e)[-1])) (*e)--;
}

/* Number of comma-separated fields of line [b, e). */
static size_t count_fields(const char *b, const char *e) {
    size_t n = 1;
    for (const char *p = b; p < e; p++) n += *p == ',';
    return n;
}

/* Does any field of the line [b, e) parse as a number (or inf / nan)? */
static bool line_has_number(const char *b, const char *e) {
    const char *f = b;
    for (const char *p = b;; p++) {
        if (p == e || *p == ',') {
            const char *fb = f, *fe = p;
            trim(&fb, &fe);
            float v;
            if (parse_number(fb, (size_t)(fe - fb), &v) != 0) return true;
            if (p == e) return false;
            f = p + 1;
        }
    }
}

static int parse_csv(grow *g, const char *buf, size_t len, int max_rows, const char *name,
                     attn_error *err) {
    const size_t D = g->D;
    const char *p = buf, *end = buf + len;
    size_t lineno = 0, first_line = 0;
    bool seen_data = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *lb = p;
        p = nl ? nl + 1 : end;
        lineno++;
        if (le > lb && le[-1] == '\r') le--;
        const char *tb = lb, *te = le;
        trim(&tb, &te);
        if (tb == te || *tb == '#') continue;
        size_t nf = count_fields(lb, le);
        if (!seen_data) {
            seen_data = true;
            if (!line_has_number(lb, le)) {
                if (nf != D)
                    return attn_error_set(err, ATTN_ERR_USAGE,
                                          "%s line %zu: a header of %zu names, but the model's "
                                          "d_model is %zu",
                                          name, lineno, nf, D);
                continue; /* header row */
            }
        }
        if (nf != D) {
            if (g->rows == 0)
                return attn_error_set(err, ATTN_ERR_USAGE,
                                      "%s line %zu: %zu numbers, but the model's d_model is %zu",
                                      name, lineno, nf, D);
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s line %zu: %zu numbers where line %zu has %zu (ragged rows)",
                                  name, lineno, nf, first_line, D);
        }
        if (max_rows > 0 && g->rows >= (size_t)max_rows)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s line %zu: more than %d rows (positions), the model's "
                                  "max_seq_len",
                                  name, lineno, max_rows);
        if (g->rows == 0) first_line = lineno;
        float *row = NULL;
        int rc = grow_row(g, &row, name, err);
        if (rc) return rc;
        const char *f = lb;
        size_t col = 0;
        for (const char *q = lb;; q++) {
            if (q != le && *q != ',') continue;
            const char *fb = f, *fe = q;
            trim(&fb, &fe);
            size_t n = (size_t)(fe - fb);
            int shown = n > 32 ? 32 : (int)n;
            int k = parse_number(fb, n, &row[col]);
            if (k != 1) {
                const char *why = k == -1   ? "is not a finite number"
                                  : k == -2 ? "is outside the float32 range"
                                  : n == 0  ? "is empty"
                                            : "is not a number";
                return attn_error_set(err, ATTN_ERR_FORMAT, "%s line %zu, column %zu: '%.*s%s' %s",
                                      name, lineno, col + 1, shown, fb, n > 32 ? "..." : "", why);
            }
            col++;
            if (q == le) break;
            f = q + 1;
        }
    }
    if (g->rows == 0)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: no rows of numbers (one row of %zu "
                              "numbers per position expected)",
                              name, D);
    return ATTN_OK;
}

/* ---- .npy ---- */

typedef struct npy_lex {
    const char *p, *end;
} npy_lex;

static void npy_ws(npy_lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static bool npy_eat(npy_lex *l, char c) {
    npy_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return true;
    }
    return false;
}

/* A quoted Python string literal (no escapes) into out[cap]. */
static bool npy_string(npy_lex *l, char *out, size_t cap) {
    npy_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return false;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return false;
    l->p++;
    out[n] = '\0';
    return true;
}

static bool npy_word(npy_lex *l, const char *w) {
    npy_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0) return false;
    l->p += n;
    return true;
}

/* A shape tuple "(a, b, ...)" with at most `max` entries. */
static bool npy_shape(npy_lex *l, uint64_t *dims, int max, int *ndim) {
    if (!npy_eat(l, '(')) return false;
    *ndim = 0;
    for (;;) {
        if (npy_eat(l, ')')) return true;
        npy_ws(l);
        if (l->p >= l->end || *l->p < '0' || *l->p > '9') return false;
        uint64_t v = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return false;
            v = v * 10 + (uint64_t)(*l->p++ - '0');
        }
        if (*ndim >= max) return false;
        dims[(*ndim)++] = v;
        if (!npy_eat(l, ',')) return npy_eat(l, ')');
    }
}

#define NPY_DIMS_MAX 8

/* What the .npy header says. */
typedef struct npy_header {
    size_t data;     /* offset of the data: the header's end */
    char descr[32];  /* dtype, e.g. "<f4" */
    bool fortran;    /* fortran_order */
    uint64_t dims[NPY_DIMS_MAX];
    int ndim;
} npy_header;

/* The magic and version, then where the header dict starts (*hstart) and
 * how long it is (*hlen). */
static int npy_preamble(const unsigned char *buf, size_t len, const char *name, size_t *hstart,
                        size_t *hlen, attn_error *err) {
    if (len < 10)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: .npy file is truncated (%zu bytes)",
                              name, len);
    int major = buf[6];
    if (major == 1) {
        *hstart = 10;
        *hlen = attn_le16(buf + 8);
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return attn_error_set(err, ATTN_ERR_FORMAT, "%s: .npy file is truncated (%zu bytes)",
                                  name, len);
        *hstart = 12;
        *hlen = attn_le32(buf + 8);
    } else {
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy format version %d.%d is not supported (1, 2 or 3)", name,
                              major, buf[7]);
    }
    if (*hlen > len - *hstart)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy header of %zu bytes runs past the end of the file", name,
                              *hlen);
    return ATTN_OK;
}

static int npy_malformed(const char *name, attn_error *err) {
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: malformed .npy header (expected a dict with 'descr', "
                          "'fortran_order' and 'shape')",
                          name);
}

/* The header dict {'descr': ..., 'fortran_order': ..., 'shape': (...)},
 * each key exactly once and no other. */
static int npy_parse_dict(npy_lex *l, npy_header *h, const char *name, attn_error *err) {
    char key[32];
    bool have_descr = false, have_order = false, have_shape = false;
    if (!npy_eat(l, '{')) return npy_malformed(name, err);
    while (!npy_eat(l, '}')) {
        if (!npy_string(l, key, sizeof key) || !npy_eat(l, ':')) return npy_malformed(name, err);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!npy_string(l, h->descr, sizeof h->descr))
                return attn_error_set(err, ATTN_ERR_FORMAT,
                                      "%s: .npy 'descr' is not a simple dtype string; expected "
                                      "'<f4' or '<f8'",
                                      name);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (npy_word(l, "True"))
                h->fortran = true;
            else if (!npy_word(l, "False"))
                return npy_malformed(name, err);
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!npy_shape(l, h->dims, NPY_DIMS_MAX, &h->ndim)) return npy_malformed(name, err);
            have_shape = true;
        } else {
            return attn_error_set(err, ATTN_ERR_FORMAT, "%s: .npy header has an unexpected or "
                                  "repeated key '%s'",
                                  name, key);
        }
        if (!npy_eat(l, ',')) {
            if (!npy_eat(l, '}')) return npy_malformed(name, err);
            break;
        }
    }
    npy_ws(l);
    if (l->p != l->end || !have_descr || !have_order || !have_shape)
        return npy_malformed(name, err);
    return ATTN_OK;
}

/* The array is [T, D] of '<f4' or '<f8' in C order, fits the model and
 * fills the rest of the file exactly; *isz is the element size. */
static int npy_check_array(const npy_header *h, size_t len, size_t D, int max_rows,
                           const char *name, size_t *isz, attn_error *err) {
    if (strcmp(h->descr, "<f4") == 0)
        *isz = 4;
    else if (strcmp(h->descr, "<f8") == 0)
        *isz = 8;
    else
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy dtype '%s' is not supported; save little-endian float32 "
                              "('<f4') or float64 ('<f8')",
                              name, h->descr);
    if (h->fortran)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy array is in Fortran order; save it in C order "
                              "(numpy.ascontiguousarray)",
                              name);
    if (h->ndim != 2)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy array has %d dimension%s; expected 2 (positions, d_model)",
                              name, h->ndim, h->ndim == 1 ? "" : "s");
    const uint64_t rows = h->dims[0], cols = h->dims[1];
    if (rows == 0)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: .npy array has no rows (shape (0, %llu))",
                              name, (unsigned long long)cols);
    if (cols != (uint64_t)D)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "%s: .npy rows have %llu numbers, but the model's d_model is %zu",
                              name, (unsigned long long)cols, D);
    if (max_rows > 0 && rows > (uint64_t)max_rows)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "%s: %llu rows (positions), more than the model's max_seq_len %d",
                              name, (unsigned long long)rows, max_rows);
    size_t T = (size_t)rows, numel, bytes;
    if (rows > SIZE_MAX || !attn_mul_size(T, D, &numel) || !attn_mul_size(numel, *isz, &bytes))
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: .npy shape is too large", name);
    if (bytes != len - h->data)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: .npy data is %zu bytes; shape (%zu, %zu) of '%s' needs %zu",
                              name, len - h->data, T, D, h->descr, bytes);
    return ATTN_OK;
}

/* Converts the T x D elements d (isz bytes each) to float32 into g. */
static int npy_read_data(grow *g, const unsigned char *d, size_t T, size_t isz,
                         const char *name, attn_error *err) {
    size_t numel = T * g->D; /* checked by npy_check_array */
    g->p = attn_alloc_array(numel, sizeof(float), name, err);
    if (!g->p) return ATTN_ERR_NOMEM;
    g->rows = g->cap_rows = T;
    for (size_t i = 0; i < numel; i++) {
        double v = isz == 4 ? attn_le_f32(d + 4 * i) : attn_le_f64(d + 8 * i);
        if (!isfinite(v) || fabs(v) > FLT_MAX)
            return attn_error_set(err, ATTN_ERR_FORMAT, "%s: element [%zu, %zu] = %g is %s", name,
                                  i / g->D, i % g->D, v,
                                  isfinite(v) ? "outside the float32 range" : "not a finite number");
        g->p[i] = (float)v;
    }
    return ATTN_OK;
}

static int parse_npy(grow *g, const unsigned char *buf, size_t len, int max_rows,
                     const char *name, attn_error *err) {
    size_t hstart = 0, hlen = 0, isz = 0;
    int rc = npy_preamble(buf, len, name, &hstart, &hlen, err);
    if (rc) return rc;
    npy_header h = {.data = hstart + hlen};
    npy_lex l = {(const char *)buf + hstart, (const char *)buf + hstart + hlen};
    if ((rc = npy_parse_dict(&l, &h, name, err)) ||
        (rc = npy_check_array(&h, len, g->D, max_rows, name, &isz, err)))
        return rc;
    return npy_read_data(g, buf + h.data, (size_t)h.dims[0], isz, name, err);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

attn_status attn_embeddings_parse(float **out, size_t *rows, const void *buf, size_t len, int d_model,
                          int max_rows, const char *name, attn_error *err) {
    *out = NULL;
    *rows = 0;
    if (!name) name = "embeddings";
    if (d_model <= 0) return attn_error_set(err, ATTN_ERR_USAGE, "%s: d_model %d", name, d_model);
    if (!buf && len > 0) return attn_error_set(err, ATTN_ERR_USAGE, "%s: no buffer", name);
    grow g = {.D = (size_t)d_model};
    int rc;
    bool npy = len >= sizeof npy_magic && memcmp(buf, npy_magic, sizeof npy_magic) == 0;
    if (npy)
        rc = parse_npy(&g, buf, len, max_rows, name, err);
    else if (ends_with(name, ".npy"))
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "%s: not a .npy file (it does not begin with \\x93NUMPY)", name);
    else /* a byte order mark is skipped; line numbers stay those of the file */
        rc = parse_csv(&g, (const char *)buf + attn_bom_len(buf, len), len - attn_bom_len(buf, len),
                       max_rows, name, err);
    if (rc) {
        free(g.p);
        return rc;
    }
    *out = g.p;
    *rows = g.rows;
    return ATTN_OK;
}

attn_status attn_embeddings_load(float **out, size_t *rows, const char *path, int d_model, int max_rows,
                         attn_error *err) {
    *out = NULL;
    *rows = 0;
    char *buf;
    size_t len;
    int rc = attn_read_file(path, ATTN_EMBEDDINGS_FILE_MAX, "an embeddings file", &buf,
                                  &len, err);
    if (rc) return rc;
    rc = attn_embeddings_parse(out, rows, buf, len, d_model, max_rows, path, err);
    free(buf);
    return rc;
}
