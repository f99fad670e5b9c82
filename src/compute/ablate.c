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

/* Columns c0 .. c0+n-1 of data [rows, cols]: 0, or their mean over the rows. */
static void knock_out(float *data, int rows, int cols, int c0, int n, attn_ablate_mode mode) {
    for (int c = c0; c < c0 + n; c++) {
        float fill = 0;
        if (mode == ATTN_ABLATE_MEAN && rows > 0) {
            double sum = 0;
            for (int r = 0; r < rows; r++) sum += data[(size_t)r * (size_t)cols + (size_t)c];
            fill = (float)(sum / rows);
        }
        for (int r = 0; r < rows; r++) data[(size_t)r * (size_t)cols + (size_t)c] = fill;
    }
}

static attn_status ablation_edit(void *user, const attn_capture_key *key, float *data, int rows,
                                 int cols, int row_offset, attn_error *err) {
    (void)row_offset, (void)err;
    const attn_ablation *a = user;
    for (int i = 0; i < a->n; i++) {
        const attn_ablate_spec *sp = &a->specs[i];
        if (!names(sp, key)) continue;
        if (key->value == ATTN_V_MLP_OUT || sp->head < 0)
            knock_out(data, rows, cols, 0, cols, a->mode); /* the MLP, or every head */
        else
            knock_out(data, rows, cols, sp->head * a->head_dim, a->head_dim, a->mode);
    }
    return ATTN_OK;
}

attn_capture attn_ablation_capture(attn_ablation *a) {
    return (attn_capture){.wants = ablation_wants, .emit = ablation_emit, .user = a,
                          .edit = ablation_edit};
}
