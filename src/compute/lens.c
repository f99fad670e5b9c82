/* The logit lens: a residual stream read through the final norm and the
 * unembedding, the same operations in the same order as the forward pass
 * makes the logits with (forward.c), so that the last layer's stream gives
 * the model's logits byte for byte. */
#include "compute/kernels.h"
#include "model/model.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>


attn_status attn_model_unembed(const attn_model *m, const float *x, int T, float *scratch,
                               float *logits, attn_error *err) {
    if (!m || !x || !scratch || !logits || T < 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_model_unembed: bad arguments");
    if (!m->lm_head)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "the model has no lm_head: there are no logits to read the "
                              "residual stream through");
    const attn_config *cfg = &m->cfg;
    const attn_stack_weights *st = &m->main;
    const int D = cfg->d_model, V = cfg->vocab_size;
    size_t td;
    if (!attn_mul_size((size_t)T, (size_t)D, &td))
        return attn_error_set(err, ATTN_ERR_NOMEM, "logit lens: size overflows");
    const float *h = x; /* [T, D] */
    if (st->has_final_norm) {
        attn_norm_apply(cfg, scratch, x, &st->final_norm, T);
        h = scratch;
    }
    kern_linear(logits, h, m->lm_head, NULL, T, D, V); /* [T, V] */
    return ATTN_OK;
}

/* ---- direct logit attribution ---- */

/* One part of the stream, before the frozen scale: at each position its
 * projection on u (dot) and the sum of its D values (csum, for layernorm's
 * mean), so that its contribution is (dot - csum / D * usum) / scale. */
typedef struct part_acc {
    attn_attribution_part pub;
    double *dot, *csum, *logit; /* [T] each */
} part_acc;

struct attn_attribution {
    const attn_model *m;
    int target;
    double *u;        /* [D] the unembedding row of the target, times the final norm's weight */
    double usum;      /* sum of u */
    double bias_term; /* the final layernorm's bias times the unembedding row */
    double *vu, *v1;  /* [hd] scratch: one head's o columns times u, times ones */
    int T, row_offset; /* of the input; T = -1 until the embeddings arrive */
    part_acc *parts;
    size_t n, cap;
    double *scale, *logit; /* [T] the frozen scale and the model's logit, from the last stream */
    bool have_last, finished;
};

static void parts_clear(attn_attribution *a) {
    for (size_t i = 0; i < a->n; i++) {
        free(a->parts[i].dot);
        free(a->parts[i].csum);
        free(a->parts[i].logit);
    }
    a->n = 0;
    free(a->scale);
    free(a->logit);
    a->scale = a->logit = NULL;
    a->T = -1;
    a->row_offset = 0;
    a->have_last = a->finished = false;
}

void attn_attribution_reset(attn_attribution *a) {
    if (a) parts_clear(a);
}

void attn_attribution_free(attn_attribution *a) {
    if (!a) return;
    parts_clear(a);
    free(a->parts);
    free(a->u);
    free(a->vu);
    free(a->v1);
    free(a);
}

attn_status attn_attribution_new(attn_attribution **out, const attn_model *m, int target,
                                 attn_error *err) {
    *out = NULL;
    if (!m) return attn_error_set(err, ATTN_ERR_USAGE, "attn_attribution_new: no model");
    const attn_config *cfg = &m->cfg;
    if (!m->lm_head)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "the model has no lm_head: there is no logit to attribute");
    if (cfg->norm_position != ATTN_NORM_PRE)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "direct logit attribution needs a pre-norm model: in a post-norm "
                              "model the residual stream is normed after every sub-layer");
    if (target < 0 || target >= cfg->vocab_size)
        return attn_error_set(err, ATTN_ERR_USAGE, "target token %d is out of range 0-%d", target,
                              cfg->vocab_size - 1);
    attn_attribution *a = calloc(1, sizeof *a);
    const int D = cfg->d_model, hd = cfg->head_dim;
    if (!a || !(a->u = calloc((size_t)D, sizeof *a->u)) ||
        !(a->vu = calloc((size_t)hd, sizeof *a->vu)) || !(a->v1 = calloc((size_t)hd, sizeof *a->v1))) {
        attn_attribution_free(a);
        return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
    }
    a->m = m;
    a->target = target;
    a->T = -1;
    const float *row = m->lm_head + (size_t)target * (size_t)D; /* [D] */
    const attn_norm_weights *fn = m->main.has_final_norm ? &m->main.final_norm : NULL;
    for (int d = 0; d < D; d++) {
        a->u[d] = (double)row[d] * (fn ? (double)fn->w[d] : 1.0);
        a->usum += a->u[d];
        if (fn && fn->b) a->bias_term += (double)fn->b[d] * (double)row[d];
    }
    *out = a;
    return ATTN_OK;
}

/* A new part with its [T] arrays; NULL when out of memory. */
static part_acc *part_add(attn_attribution *a, attn_part_type type, attn_attn_kind kind, int layer,
                          int head) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        part_acc *p = realloc(a->parts, cap * sizeof *p);
        if (!p) return NULL;
        a->parts = p;
        a->cap = cap;
    }
    part_acc *p = &a->parts[a->n];
    const size_t T = (size_t)(a->T > 0 ? a->T : 1);
    *p = (part_acc){.pub = {.type = type, .kind = kind, .layer = layer, .head = head}};
    p->dot = calloc(T, sizeof *p->dot);
    p->csum = calloc(T, sizeof *p->csum);
    p->logit = calloc(T, sizeof *p->logit);
    if (!p->dot || !p->csum || !p->logit) {
        free(p->dot);
        free(p->csum);
        free(p->logit);
        return NULL;
    }
    a->n++;
    return p;
}

/* A part that is a [T, D] block of the stream (the embeddings, an MLP). */
static void part_rows(const attn_attribution *a, part_acc *p, const float *x, int D) {
    for (int t = 0; t < a->T; t++) {
        const float *r = x + (size_t)t * (size_t)D; /* [D] */
        double dot = 0, sum = 0;
        for (int d = 0; d < D; d++) {
            dot += (double)r[d] * a->u[d];
            sum += r[d];
        }
        p->dot[t] = dot;
        p->csum[t] = sum;
    }
}

static bool attribution_wants(void *user, const attn_capture_key *key) {
    const attn_attribution *a = user;
    if (key->source) return false;
    switch (key->value) {
    case ATTN_V_EMBED:
    case ATTN_V_CONCAT: /* after any intervention: what the o projection reads */
    case ATTN_V_MLP_OUT: return true;
    case ATTN_V_RESID: return key->layer == a->m->main.n_layers - 1;
    default: return false;
    }
}

/* Head h of the sub-layer of key: its context, columns h*hd .. of concat
 * [T, H*hd], times columns h of the o projection [D, H*hd], then, after the
 * last head, the o bias. */
static attn_status head_part(attn_attribution *a, const attn_capture_key *key, int h,
                             const float *concat, attn_error *err) {
    const attn_config *cfg = &a->m->cfg;
    const int D = cfg->d_model, H = cfg->n_heads, hd = cfg->head_dim;
    const attn_block_weights *b = &a->m->main.blocks[key->layer];
    const attn_linear *o = key->kind == ATTN_KIND_CROSS ? &b->cross.o : &b->attn.o;
    for (int i = 0; i < hd; i++) {
        double vu = 0, v1 = 0;
        for (int d = 0; d < D; d++) {
            const double w = o->w[(size_t)d * (size_t)(H * hd) + (size_t)(h * hd + i)];
            vu += w * a->u[d];
            v1 += w;
        }
        a->vu[i] = vu;
        a->v1[i] = v1;
    }
    part_acc *p = part_add(a, ATTN_PART_HEAD, key->kind, key->layer, h);
    if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
    for (int t = 0; t < a->T; t++) {
        const float *c = concat + (size_t)t * (size_t)(H * hd) + (size_t)(h * hd); /* [hd] */
        double dot = 0, sum = 0;
        for (int i = 0; i < hd; i++) {
            dot += (double)c[i] * a->vu[i];
            sum += (double)c[i] * a->v1[i];
        }
        p->dot[t] = dot;
        p->csum[t] = sum;
    }
    if (h != H - 1 || !o->b) return ATTN_OK;
    p = part_add(a, ATTN_PART_ATTN_BIAS, key->kind, key->layer, -1);
    if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
    double dot = 0, sum = 0;
    for (int d = 0; d < D; d++) {
        dot += (double)o->b[d] * a->u[d];
        sum += o->b[d];
    }
    for (int t = 0; t < a->T; t++) {
        p->dot[t] = dot;
        p->csum[t] = sum;
    }
    return ATTN_OK;
}

/* The last stream x [T, D]: the frozen scale and the model's logit. */
static attn_status last_stream(attn_attribution *a, const float *x, attn_error *err) {
    const attn_config *cfg = &a->m->cfg;
    const int D = cfg->d_model;
    const size_t T = (size_t)a->T;
    if (!(a->scale = calloc(T ? T : 1, sizeof *a->scale)) ||
        !(a->logit = calloc(T ? T : 1, sizeof *a->logit)))
        return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
    const bool fn = a->m->main.has_final_norm, rms = cfg->norm == ATTN_NORM_RMSNORM;
    for (size_t t = 0; t < T; t++) {
        const float *r = x + t * (size_t)D; /* [D] */
        double mean = 0, dot = 0;
        for (int d = 0; d < D; d++) {
            mean += r[d];
            dot += (double)r[d] * a->u[d];
        }
        mean /= D;
        double ms = 0;
        for (int d = 0; d < D; d++) {
            const double c = rms ? r[d] : r[d] - mean;
            ms += c * c;
        }
        a->scale[t] = fn ? sqrt(ms / D + cfg->norm_eps) : 1.0;
        const double centred = fn && !rms ? dot - mean * a->usum : dot;
        a->logit[t] = centred / a->scale[t] + a->bias_term;
    }
    a->have_last = true;
    return ATTN_OK;
}

static attn_status attribution_emit(void *user, const attn_capture_key *key,
                                    const attn_capture_view *v, attn_error *err) {
    attn_attribution *a = user;
    const int D = a->m->cfg.d_model;
    if (key->value == ATTN_V_EMBED) {
        if (a->T >= 0)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "attribution: a second input; reset it between inputs");
        a->T = v->rows;
        a->row_offset = v->row_offset;
    } else if (a->T < 0 || v->rows != a->T) {
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attribution: values of %d positions, the embeddings had %d", v->rows,
                              a->T);
    }
    part_acc *p;
    switch (key->value) {
    case ATTN_V_EMBED:
    case ATTN_V_MLP_OUT:
        p = part_add(a, key->value == ATTN_V_EMBED ? ATTN_PART_EMBED : ATTN_PART_MLP,
                     ATTN_KIND_SELF, key->value == ATTN_V_EMBED ? -1 : key->layer, -1);
        if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
        part_rows(a, p, v->data, D);
        return ATTN_OK;
    case ATTN_V_CONCAT:
        for (int h = 0; h < a->m->cfg.n_heads; h++) {
            attn_status rc = head_part(a, key, h, v->data, err);
            if (rc) return rc;
        }
        return ATTN_OK;
    case ATTN_V_RESID: return last_stream(a, v->data, err);
    default: return ATTN_OK;
    }
}

attn_capture attn_attribution_capture(attn_attribution *a) {
    return (attn_capture){attribution_wants, attribution_emit, a};
}

attn_status attn_attribution_finish(attn_attribution *a, attn_error *err) {
    if (!a || !a->have_last)
        return attn_error_set(err, ATTN_ERR_USAGE, "attribution: no input was run");
    if (a->finished) return ATTN_OK;
    const attn_config *cfg = &a->m->cfg;
    const bool centred = a->m->main.has_final_norm && cfg->norm != ATTN_NORM_RMSNORM;
    if (a->m->main.has_final_norm && a->bias_term != 0) {
        part_acc *p = part_add(a, ATTN_PART_NORM_BIAS, ATTN_KIND_SELF, -1, -1);
        if (!p) return attn_error_set(err, ATTN_ERR_NOMEM, "attribution: out of memory");
        for (int t = 0; t < a->T; t++) p->dot[t] = a->bias_term * a->scale[t]; /* not scaled */
    }
    for (int t = 0; t < a->T; t++) {
        double sum = 0;
        for (size_t i = 0; i < a->n; i++) {
            part_acc *p = &a->parts[i];
            const double c = centred && p->pub.type != ATTN_PART_NORM_BIAS
                                 ? p->dot[t] - p->csum[t] / cfg->d_model * a->usum
                                 : p->dot[t];
            p->logit[t] = c / a->scale[t];
            sum += p->logit[t];
        }
        const double logit = a->logit[t];
        if (!(fabs(sum - logit) <= 1e-4 * fmax(1.0, fabs(logit))))
            return attn_error_set(err, ATTN_ERR_INTERNAL,
                                  "attribution: at position %d the parts sum to %.9g, the logit "
                                  "is %.9g",
                                  a->row_offset + t, sum, logit);
    }
    for (size_t i = 0; i < a->n; i++) a->parts[i].pub.logit = a->parts[i].logit;
    a->finished = true;
    return ATTN_OK;
}

int attn_attribution_positions(const attn_attribution *a) { return a && a->T > 0 ? a->T : 0; }
int attn_attribution_row_offset(const attn_attribution *a) { return a ? a->row_offset : 0; }
size_t attn_attribution_count(const attn_attribution *a) { return a && a->finished ? a->n : 0; }

const attn_attribution_part *attn_attribution_at(const attn_attribution *a, size_t i) {
    return a && a->finished && i < a->n ? &a->parts[i].pub : NULL;
}

const double *attn_attribution_logit(const attn_attribution *a) {
    return a && a->finished ? a->logit : NULL;
}
