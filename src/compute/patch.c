/* Activation patching (attn/attn.h: attn_patch): the values of one run kept
 * at the sites a name pattern matches, and one unit of them put into a later
 * run through the edit of a capture.
 *
 * Shapes: T = positions of a run, S = of the source, D = d_model,
 * H = n_heads, hd = head_dim, V = vocab_size. A context site is
 * ATTN_V_CONCAT [T, H*hd]; mlp.out and resid sites are [T, D]. */
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One site: a value of one layer of one stack that the pattern matched. */
typedef struct site {
    attn_value value; /* ATTN_V_CONCAT, ATTN_V_MLP_OUT, ATTN_V_RESID */
    bool source;
    attn_attn_kind kind;
    int layer;
    bool *heads;      /* [H] context sites: the heads matched */
    float *rec;       /* [rows, cols] recorded by the from run, or NULL */
    int rows, cols;   /* of rec; cols = H*hd or D */
} site;

struct attn_patch {
    attn_config cfg;
    site *sites;
    size_t n_sites;
    attn_patch_unit *units; /* the plan */
    size_t n_units;
    int shift;               /* into position p reads from position p + shift (main stack) */
    int from_len, src_len;
    attn_patch_mode mode;
    size_t unit;             /* ATTN_PATCH_APPLY */
    float *logits;           /* [V] the last position's, of the last run */
    bool have_logits;
};

/* ---- names and the pattern ---- */

/* Do the characters of pattern p[0 .. pn-1] match s whole? '*' is any run. */
static bool glob(const char *p, size_t pn, const char *s) {
    size_t pi = 0, star = (size_t)-1;
    const char *back = NULL;
    while (*s) {
        if (pi < pn && p[pi] == '*') {
            star = ++pi;
            back = s;
        } else if (pi < pn && p[pi] == *s) {
            pi++;
            s++;
        } else if (back) {
            pi = star;
            s = ++back;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*') pi++;
    return pi == pn;
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '*';
}

/* The first bad element of pattern: NULL when well formed, else a static
 * description of what is wrong. */
static const char *pattern_problem(const char *pattern) {
    if (!pattern || !*pattern) return "expected names such as blocks.*.attn.context";
    for (const char *s = pattern;; s++) {
        const char *e = s;
        while (*e && *e != ',') {
            if (!name_char(*e)) return "names hold letters, digits, '.', '_' and '*' only";
            e++;
        }
        if (e == s) return "an empty name (two commas, or one at an end)";
        if (!*e) return NULL;
        s = e;
    }
}

bool attn_patch_match(const char *pattern, const char *name) {
    if (!name || pattern_problem(pattern)) return false;
    for (const char *s = pattern;;) {
        const char *e = strchr(s, ',');
        const size_t n = e ? (size_t)(e - s) : strlen(s);
        if (glob(s, n, name)) return true;
        if (!e) return false;
        s = e + 1;
    }
}

/* The site's name: "blocks.1.attn.context", "encoder.blocks.0.resid", ... */
static size_t site_name(attn_value value, bool source, attn_attn_kind kind, int layer, int head,
                        char *buf, size_t cap) {
    const char *prefix = source ? "encoder.blocks" : "blocks";
    int n;
    if (value == ATTN_V_CONCAT && head >= 0)
        n = snprintf(buf, cap, "%s.%d.%s.context.h%d", prefix, layer,
                     kind == ATTN_KIND_CROSS ? "cross" : "attn", head);
    else if (value == ATTN_V_CONCAT)
        n = snprintf(buf, cap, "%s.%d.%s.context", prefix, layer,
                     kind == ATTN_KIND_CROSS ? "cross" : "attn");
    else if (value == ATTN_V_MLP_OUT)
        n = snprintf(buf, cap, "%s.%d.mlp.out", prefix, layer);
    else
        n = snprintf(buf, cap, "%s.%d.resid", prefix, layer);
    return n < 0 ? 0 : (size_t)n;
}

size_t attn_patch_unit_name(const attn_patch_unit *u, char *buf, size_t cap) {
    char tmp[1];
    if (!buf || cap == 0) buf = tmp, cap = sizeof tmp;
    if (!u) return buf[0] = '\0', 0;
    return site_name(u->value, u->source, u->kind, u->layer, u->head, buf, cap);
}

/* ---- making and freeing ---- */

void attn_patch_free(attn_patch *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_sites; i++) {
        free(p->sites[i].heads);
        free(p->sites[i].rec);
    }
    free(p->sites);
    free(p->units);
    free(p->logits);
    free(p);
}

/* Adds the site (value, source, kind, layer) when the pattern matches it
 * (for a context site: it, or one of its heads). */
static attn_status add_site(attn_patch *p, const char *pattern, attn_value value, bool source,
                            attn_attn_kind kind, int layer, attn_error *err) {
    char name[96];
    site_name(value, source, kind, layer, -1, name, sizeof name);
    const bool whole = attn_patch_match(pattern, name);
    bool *heads = NULL, any = whole;
    if (value == ATTN_V_CONCAT) {
        const int H = p->cfg.n_heads;
        if (!(heads = calloc((size_t)H, sizeof *heads)))
            return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        for (int h = 0; h < H; h++) {
            site_name(value, source, kind, layer, h, name, sizeof name);
            heads[h] = whole || attn_patch_match(pattern, name);
            any |= heads[h];
        }
    }
    if (!any) {
        free(heads);
        return ATTN_OK;
    }
    p->sites[p->n_sites++] = (site){.value = value, .source = source, .kind = kind,
                                    .layer = layer, .heads = heads};
    return ATTN_OK;
}

attn_status attn_patch_new(attn_patch **out, const attn_config *cfg, const char *pattern,
                           attn_error *err) {
    *out = NULL;
    const char *bad = pattern_problem(pattern);
    if (bad) return attn_error_set(err, ATTN_ERR_USAGE, "--names '%s': %s", pattern ? pattern : "", bad);
    attn_patch *p = calloc(1, sizeof *p);
    if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    p->cfg = *cfg;
    const bool encdec = cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    const int per_layer = 4; /* self context, cross context, mlp.out, resid */
    size_t cap;
    if (!attn_mul_size((size_t)cfg->n_layers + (size_t)cfg->n_encoder_layers, per_layer, &cap) ||
        !(p->sites = calloc(cap ? cap : 1, sizeof *p->sites)) ||
        !(p->logits = calloc((size_t)cfg->vocab_size, sizeof *p->logits))) {
        attn_patch_free(p);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    }
    attn_status rc = ATTN_OK;
    for (int enc = encdec ? 1 : 0; enc >= 0 && !rc; enc--) {
        const bool source = enc == 1;
        const int L = source ? cfg->n_encoder_layers : cfg->n_layers;
        for (int l = 0; l < L && !rc; l++) {
            rc = add_site(p, pattern, ATTN_V_CONCAT, source, ATTN_KIND_SELF, l, err);
            if (!rc && encdec && !source)
                rc = add_site(p, pattern, ATTN_V_CONCAT, false, ATTN_KIND_CROSS, l, err);
            if (!rc && cfg->mlp != ATTN_MLP_NONE)
                rc = add_site(p, pattern, ATTN_V_MLP_OUT, source, ATTN_KIND_SELF, l, err);
            if (!rc) rc = add_site(p, pattern, ATTN_V_RESID, source, ATTN_KIND_SELF, l, err);
        }
    }
    if (!rc && p->n_sites == 0)
        rc = attn_error_set(err, ATTN_ERR_USAGE,
                            "--names '%s' matches nothing this model can patch: its names are "
                            "%sblocks.L.attn.context[.hH]%s%s and blocks.L.resid, L 0-%d",
                            pattern, encdec ? "[encoder.]" : "", encdec ? ", blocks.L.cross.context[.hH]" : "",
                            cfg->mlp != ATTN_MLP_NONE ? ", blocks.L.mlp.out" : "", cfg->n_layers - 1);
    if (rc) {
        attn_patch_free(p);
        return rc;
    }
    *out = p;
    return ATTN_OK;
}

/* ---- the plan ---- */

attn_status attn_patch_plan(attn_patch *p, int from_len, int into_len, int src_len,
                            attn_patch_align align, attn_error *err) {
    if (from_len <= 0 || into_len <= 0 || src_len < 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "patching: empty input");
    if (align == ATTN_PATCH_ALIGN_NONE && from_len != into_len)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "the clean input has %d tokens and the corrupted one %d: patching "
                              "pairs positions, so give inputs of one length (or --align left|right)",
                              from_len, into_len);
    p->shift = align == ATTN_PATCH_ALIGN_RIGHT ? from_len - into_len : 0;
    p->from_len = from_len;
    p->src_len = src_len;
    const int H = p->cfg.n_heads;
    /* at most max(H, T) units per site */
    const int per = H > into_len ? H : into_len > src_len ? into_len : src_len;
    size_t cap;
    if (!attn_mul_size(p->n_sites, (size_t)per, &cap))
        return attn_error_set(err, ATTN_ERR_NOMEM, "patching: too many units");
    free(p->units);
    p->n_units = 0;
    if (!(p->units = calloc(cap ? cap : 1, sizeof *p->units)))
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_sites; i++) {
        const site *s = &p->sites[i];
        const attn_patch_unit base = {.value = s->value, .source = s->source, .kind = s->kind,
                                      .layer = s->layer, .head = -1, .pos = -1};
        if (s->value == ATTN_V_CONCAT) {
            for (int h = 0; h < H; h++)
                if (s->heads[h]) {
                    p->units[p->n_units] = base;
                    p->units[p->n_units++].head = h;
                }
            continue;
        }
        const int T = s->source ? src_len : into_len, shift = s->source ? 0 : p->shift;
        for (int t = 0; t < T; t++) {
            if (t + shift < 0 || t + shift >= (s->source ? src_len : from_len)) continue;
            p->units[p->n_units] = base;
            p->units[p->n_units++].pos = t;
        }
    }
    if (p->n_units == 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "patching: no unit to patch (no position of the corrupted input has "
                              "one in the clean input)");
    return ATTN_OK;
}

size_t attn_patch_count(const attn_patch *p) { return p ? p->n_units : 0; }

const attn_patch_unit *attn_patch_at(const attn_patch *p, size_t i) {
    return p && i < p->n_units ? &p->units[i] : NULL;
}

attn_status attn_patch_set_mode(attn_patch *p, attn_patch_mode mode, size_t unit,
                                attn_error *err) {
    if (mode == ATTN_PATCH_APPLY && unit >= p->n_units)
        return attn_error_set(err, ATTN_ERR_USAGE, "patching: unit %zu of %zu", unit, p->n_units);
    p->mode = mode;
    p->unit = unit;
    p->have_logits = false;
    return ATTN_OK;
}

const float *attn_patch_logits(const attn_patch *p) {
    return p && p->have_logits ? p->logits : NULL;
}

/* ---- the capture ---- */

static site *site_of(attn_patch *p, const attn_capture_key *key) {
    if (key->value != ATTN_V_CONCAT && key->value != ATTN_V_MLP_OUT && key->value != ATTN_V_RESID)
        return NULL;
    for (size_t i = 0; i < p->n_sites; i++) {
        site *s = &p->sites[i];
        if (s->value == key->value && s->source == key->source && s->layer == key->layer &&
            (s->value != ATTN_V_CONCAT || s->kind == key->kind))
            return s;
    }
    return NULL;
}

static bool patch_wants(void *user, const attn_capture_key *key) {
    attn_patch *p = user;
    if (key->value == ATTN_V_LOGITS) return !key->source;
    if (p->mode == ATTN_PATCH_PASS) return false;
    const site *s = site_of(p, key);
    if (!s) return false;
    if (p->mode == ATTN_PATCH_RECORD) return true;
    const attn_patch_unit *u = &p->units[p->unit];
    return s->value == u->value && s->source == u->source && s->layer == u->layer &&
           s->kind == u->kind;
}

static attn_status patch_emit(void *user, const attn_capture_key *key,
                              const attn_capture_view *v, attn_error *err) {
    (void)err;
    attn_patch *p = user;
    if (key->value != ATTN_V_LOGITS || v->rows <= 0) return ATTN_OK;
    const int V = p->cfg.vocab_size;
    if (v->cols != V)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "patching: logits of %d columns, not %d",
                              v->cols, V);
    memcpy(p->logits, v->data + (size_t)(v->rows - 1) * (size_t)V, (size_t)V * sizeof *p->logits);
    p->have_logits = true;
    return ATTN_OK;
}

/* The from run: keeps rows row_offset .. of data [rows, cols]. */
static attn_status record(site *s, const float *data, int rows, int cols, int row_offset,
                          attn_error *err) {
    size_t need, bytes;
    const int total = row_offset + rows;
    if (row_offset < 0 || total < row_offset)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "patching: bad rows");
    if (!attn_mul_size((size_t)total, (size_t)cols, &need) ||
        !attn_mul_size(need, sizeof(float), &bytes))
        return attn_error_set(err, ATTN_ERR_NOMEM, "patching: the recorded values overflow");
    if (row_offset == 0 || !s->rec || s->cols != cols) {
        if (row_offset != 0)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "patching: a recording must start at position 0");
        free(s->rec);
        s->rec = NULL;
    }
    float *r = realloc(s->rec, bytes ? bytes : 1);
    if (!r) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    s->rec = r;
    memcpy(r + (size_t)row_offset * (size_t)cols, data, (size_t)rows * (size_t)cols * sizeof *r);
    s->rows = total;
    s->cols = cols;
    return ATTN_OK;
}

static attn_status patch_edit(void *user, const attn_capture_key *key, float *data, int rows,
                              int cols, int row_offset, attn_error *err) {
    attn_patch *p = user;
    site *s = site_of(p, key);
    if (!s || p->mode == ATTN_PATCH_PASS) return ATTN_OK;
    if (p->mode == ATTN_PATCH_RECORD) return record(s, data, rows, cols, row_offset, err);
    const attn_patch_unit *u = &p->units[p->unit];
    char name[96];
    const int from_rows = s->source ? p->src_len : p->from_len;
    if (!s->rec || s->cols != cols || s->rows != from_rows) {
        site_name(s->value, s->source, s->kind, s->layer, -1, name, sizeof name);
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "patching %s: no recording of %d positions and %d columns to "
                              "patch from",
                              name, from_rows, cols);
    }
    const int shift = s->source ? 0 : p->shift;
    if (s->value == ATTN_V_CONCAT) {
        /* head u->head: columns c0 .. c0+hd-1 of every row that has a from row */
        const int hd = p->cfg.head_dim, c0 = u->head * hd;
        if (c0 + hd > cols)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "patching: head %d out of %d columns",
                                  u->head, cols);
        for (int r = 0; r < rows; r++) {
            const int f = row_offset + r + shift;
            if (f < 0 || f >= s->rows) continue;
            memcpy(data + (size_t)r * (size_t)cols + (size_t)c0,
                   s->rec + (size_t)f * (size_t)cols + (size_t)c0, (size_t)hd * sizeof *data);
        }
        return ATTN_OK;
    }
    /* one position: row u->pos of the into run */
    const int r = u->pos - row_offset, f = u->pos + shift;
    if (r < 0 || r >= rows || f < 0 || f >= s->rows) return ATTN_OK;
    memcpy(data + (size_t)r * (size_t)cols, s->rec + (size_t)f * (size_t)cols,
           (size_t)cols * sizeof *data);
    return ATTN_OK;
}

attn_capture attn_patch_capture(attn_patch *p) {
    return (attn_capture){.wants = patch_wants, .emit = patch_emit, .user = p, .edit = patch_edit};
}
