/* Ablation: heads and MLPs knocked out as the forward pass makes them
 * (attn/attn.h: attn_ablation), through the edit of a capture. */
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A number at *p, moved past it; false when there is none. */
static bool number(const char **p, int *out) {
    if (!isdigit((unsigned char)**p)) return false;
    errno = 0;
    char *end;
    long v = strtol(*p, &end, 10);
    *out = errno == ERANGE || v > INT_MAX ? INT_MAX : (int)v;
    *p = end;
    return true;
}

/* The layers of the stack a spec names. */
static int stack_layers(const attn_config *cfg, bool source) {
    return source ? cfg->n_encoder_layers : cfg->n_layers;
}

/* One spec, s[0 .. n-1]. */
static attn_status parse_one(attn_ablate_spec *sp, const char *s, size_t n, const attn_config *cfg,
                             attn_error *err) {
    char buf[96];
    if (n == 0 || n >= sizeof buf)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "--ablate: expected specs such as 1.0, 1.*, cross:1.0, mlp:1 or "
                              "encoder:0.2, separated by commas");
    memcpy(buf, s, n);
    buf[n] = '\0';
    *sp = (attn_ablate_spec){.kind = ATTN_KIND_SELF, .head = -1};
    const char *p = buf;
    if (strncmp(p, "encoder:", 8) == 0) {
        if (cfg->arch != ATTN_ARCH_ENCODER_DECODER)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "--ablate %s: 'encoder:' names the encoder of an "
                                  "encoder-decoder; this model is %s",
                                  buf, attn_arch_name(cfg->arch));
        sp->source = true;
        p += 8;
    }
    if (strncmp(p, "mlp:", 4) == 0) {
        sp->mlp = true;
        p += 4;
    } else if (strncmp(p, "cross:", 6) == 0) {
        if (sp->source || cfg->arch != ATTN_ARCH_ENCODER_DECODER)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "--ablate %s: cross-attention is in the decoder of an "
                                  "encoder-decoder",
                                  buf);
        sp->kind = ATTN_KIND_CROSS;
        p += 6;
    }
    if (!number(&p, &sp->layer))
        return attn_error_set(err, ATTN_ERR_USAGE, "--ablate %s: expected a layer number", buf);
    if (!sp->mlp) {
        if (*p++ != '.')
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "--ablate %s: expected LAYER.HEAD or LAYER.* (or mlp:LAYER)",
                                  buf);
        if (*p == '*') p++;
        else if (!number(&p, &sp->head))
            return attn_error_set(err, ATTN_ERR_USAGE, "--ablate %s: expected a head or *", buf);
    }
    if (*p)
        return attn_error_set(err, ATTN_ERR_USAGE, "--ablate %s: unexpected '%s'", buf, p);
    const int L = stack_layers(cfg, sp->source);
    if (sp->layer >= L)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "--ablate %s: layer %d is out of range: the %s has layers 0-%d", buf,
                              sp->layer, sp->source ? "encoder" : "model", L - 1);
    if (sp->head >= cfg->n_heads)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "--ablate %s: head %d is out of range: the model has heads 0-%d", buf,
                              sp->head, cfg->n_heads - 1);
    if (sp->mlp && cfg->mlp == ATTN_MLP_NONE)
        return attn_error_set(err, ATTN_ERR_USAGE, "--ablate %s: the model has no MLP", buf);
    return ATTN_OK;
}

attn_status attn_ablation_parse(attn_ablation *a, const char *s, const attn_config *cfg,
                                attn_error *err) {
    *a = (attn_ablation){.mode = ATTN_ABLATE_ZERO, .n_heads = cfg->n_heads,
                         .head_dim = cfg->head_dim};
    if (!s) return attn_error_set(err, ATTN_ERR_USAGE, "--ablate: no specs");
    for (;;) {
        const char *comma = strchr(s, ',');
        const size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (a->n == ATTN_ABLATE_MAX)
            return attn_error_set(err, ATTN_ERR_USAGE, "--ablate: more than %d specs",
                                  ATTN_ABLATE_MAX);
        attn_status rc = parse_one(&a->specs[a->n], s, n, cfg, err);
        if (rc) return rc;
        a->n++;
        if (!comma) return ATTN_OK;
        s = comma + 1;
    }
}

/* Does spec sp name a part of the sub-layer (or MLP) of key? */
static bool names(const attn_ablate_spec *sp, const attn_capture_key *key) {
    if (sp->source != key->source || sp->layer != key->layer) return false;
    if (key->value == ATTN_V_MLP_OUT) return sp->mlp;
    return !sp->mlp && sp->kind == key->kind;
}

static bool ablation_wants(void *user, const attn_capture_key *key) {
    const attn_ablation *a = user;
    if (key->value != ATTN_V_CONCAT && key->value != ATTN_V_MLP_OUT) return false;
    for (int i = 0; i < a->n; i++)
        if (names(&a->specs[i], key)) return true;
    return false;
}

static attn_status ablation_emit(void *user, const attn_capture_key *key,
                                 const attn_capture_view *v, attn_error *err) {
    (void)user, (void)key, (void)v, (void)err;
    return ATTN_OK;
}

/* ---- fixed means ---- */

/* The values one mean is kept of: per stack (0 main, 1 encoder) and layer,
 * the self-attention heads, the cross-attention heads and the MLP. */
enum { SLOT_SELF, SLOT_CROSS, SLOT_MLP, SLOTS };

struct attn_ablation_means {
    int layers;    /* the larger stack's layers */
    double **sum;  /* [2 * layers * SLOTS] of [cols[i]], NULL until seen */
    int *cols;     /* [2 * layers * SLOTS] */
    long *rows;    /* [2 * layers * SLOTS]: positions added */
    bool finished; /* sum holds means */
    long positions; /* the most positions any value had (after finish) */
};

/* The slot of key in m, or -1 for a value no mean is kept of. */
static int slot_of(const attn_ablation_means *m, const attn_capture_key *key) {
    if (key->layer < 0 || key->layer >= m->layers) return -1;
    int slot;
    if (key->value == ATTN_V_MLP_OUT) slot = SLOT_MLP;
    else if (key->value == ATTN_V_CONCAT) slot = key->kind == ATTN_KIND_CROSS ? SLOT_CROSS : SLOT_SELF;
    else return -1;
    return ((key->source ? 1 : 0) * m->layers + key->layer) * SLOTS + slot;
}

attn_status attn_ablation_means_new(attn_ablation_means **out, const attn_config *cfg,
                                    attn_error *err) {
    *out = NULL;
    attn_ablation_means *m = calloc(1, sizeof *m);
    if (!m) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    m->layers = cfg->n_layers > cfg->n_encoder_layers ? cfg->n_layers : cfg->n_encoder_layers;
    const size_t n = 2 * (size_t)(m->layers > 0 ? m->layers : 1) * SLOTS;
    m->sum = calloc(n, sizeof *m->sum);
    m->cols = calloc(n, sizeof *m->cols);
    m->rows = calloc(n, sizeof *m->rows);
    if (!m->sum || !m->cols || !m->rows) {
        attn_ablation_means_free(m);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    }
    *out = m;
    return ATTN_OK;
}

void attn_ablation_means_free(attn_ablation_means *m) {
    if (!m) return;
    for (size_t i = 0; m->sum && i < 2 * (size_t)(m->layers > 0 ? m->layers : 1) * SLOTS; i++)
        free(m->sum[i]);
    free(m->sum);
    free(m->cols);
    free(m->rows);
    free(m);
}

static bool means_wants(void *user, const attn_capture_key *key) {
    return slot_of(user, key) >= 0;
}

static attn_status means_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                              attn_error *err) {
    attn_ablation_means *m = user;
    const int i = slot_of(m, key);
    if (i < 0 || v->rows <= 0) return ATTN_OK;
    if (!m->sum[i]) {
        m->sum[i] = calloc(v->cols > 0 ? (size_t)v->cols : 1, sizeof *m->sum[i]);
        if (!m->sum[i]) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        m->cols[i] = v->cols;
    } else if (m->cols[i] != v->cols) {
        return attn_error_set(err, ATTN_ERR_FORMAT, "ablation means: a value of %d columns, then %d",
                              m->cols[i], v->cols);
    }
    for (int r = 0; r < v->rows; r++) {
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [cols] */
        for (int c = 0; c < v->cols; c++) m->sum[i][c] += row[c];
    }
    m->rows[i] += v->rows;
    return ATTN_OK;
}

attn_capture attn_ablation_means_capture(attn_ablation_means *m) {
    return (attn_capture){.wants = means_wants, .emit = means_emit, .user = m};
}

attn_status attn_ablation_means_finish(attn_ablation_means *m, attn_error *err) {
    const size_t n = 2 * (size_t)(m->layers > 0 ? m->layers : 1) * SLOTS;
    for (size_t i = 0; i < n; i++) {
        if (m->rows[i] > m->positions) m->positions = m->rows[i];
        for (int c = 0; m->sum[i] && c < m->cols[i]; c++) m->sum[i][c] /= (double)m->rows[i];
    }
    m->finished = true;
    if (m->positions == 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "ablation means: no position to average over");
    return ATTN_OK;
}

long attn_ablation_means_positions(const attn_ablation_means *m) { return m->positions; }

/* ---- knocking out ---- */

/* Columns c0 .. c0+n-1 of data [rows, cols]: 0, their mean over the rows,
 * or (fixed, [cols], not NULL) the fixed means. */
static void knock_out(float *data, int rows, int cols, int c0, int n, attn_ablate_mode mode,
                      const double *fixed) {
    for (int c = c0; c < c0 + n; c++) {
        float fill = 0;
        if (mode == ATTN_ABLATE_MEAN && fixed) {
            fill = (float)fixed[c];
        } else if (mode == ATTN_ABLATE_MEAN && rows > 0) {
            double sum = 0;
            for (int r = 0; r < rows; r++) sum += data[(size_t)r * (size_t)cols + (size_t)c];
            fill = (float)(sum / rows);
        }
        for (int r = 0; r < rows; r++) data[(size_t)r * (size_t)cols + (size_t)c] = fill;
    }
}

/* The fixed means of key's value ([cols]), or NULL when a has none. */
static const double *fixed_means(const attn_ablation *a, const attn_capture_key *key, int cols,
                                 attn_error *err, attn_status *rc) {
    const attn_ablation_means *m = a->means;
    if (!m || a->mode != ATTN_ABLATE_MEAN) return NULL;
    const int i = slot_of(m, key);
    if (i < 0 || !m->finished || !m->sum[i] || m->cols[i] != cols) {
        *rc = attn_error_set(err, ATTN_ERR_USAGE,
                             "ablation: no mean of %s layer %d's %s over the batch",
                             key->source ? "encoder" : "the model's", key->layer,
                             key->value == ATTN_V_MLP_OUT ? "MLP" : "heads");
        return NULL;
    }
    return m->sum[i];
}

static attn_status ablation_edit(void *user, const attn_capture_key *key, float *data, int rows,
                                 int cols, int row_offset, attn_error *err) {
    (void)row_offset;
    const attn_ablation *a = user;
    attn_status rc = ATTN_OK;
    for (int i = 0; i < a->n; i++) {
        const attn_ablate_spec *sp = &a->specs[i];
        if (!names(sp, key)) continue;
        const double *fixed = fixed_means(a, key, cols, err, &rc);
        if (rc) return rc;
        if (key->value == ATTN_V_MLP_OUT || sp->head < 0)
            knock_out(data, rows, cols, 0, cols, a->mode, fixed); /* the MLP, or every head */
        else
            knock_out(data, rows, cols, sp->head * a->head_dim, a->head_dim, a->mode, fixed);
    }
    return ATTN_OK;
}

attn_capture attn_ablation_capture(attn_ablation *a) {
    return (attn_capture){.wants = ablation_wants, .emit = ablation_emit, .user = a,
                          .edit = ablation_edit};
}
