/* Selection: which layers, heads, stacks and attention kinds the map-like
 * outputs of 'attn run' take (--layers, --heads, --stack, --kind), applied
 * as a filter in front of their sinks, so that what is not selected is
 * never computed or stored (the forward pass asks before it builds a map).
 *
 * What each flag filters:
 *   --stack   every value of the other stack is left out (embed, hidden,
 *             logits included);
 *   --layers  the values of blocks (layer >= 0) of the other layers; stack
 *             values (embed, hidden, logits) pass;
 *   --kind    attention values (in .. out) of the other kind; the blocks'
 *             mlp.out and resid pass;
 *   --heads   per-head values: q, scores, weights and context of the other
 *             query heads, and k and v of a key/value head that no selected
 *             query head reads (grouped-query: query head h reads key/value
 *             head h / (n_heads / n_kv_heads)). Values that are not per
 *             head (concat, out, ...) and maps made from several heads pass. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void ranges_set(cli_ranges *r, long v) {
    if (v < CLI_RANGE_BITS) r->bits[v / 64] |= (uint64_t)1 << (v % 64);
}

bool cli_ranges_has(const cli_ranges *r, int v) {
    if (!r->given) return true;
    if (v < 0 || v >= CLI_RANGE_BITS) return false;
    return (r->bits[v / 64] >> (v % 64)) & 1;
}

/* One number of a list at *p (spaces before it skipped); NULL when none. */
static const char *parse_number(const char *p, long *out) {
    while (*p == ' ') p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    errno = 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (errno == ERANGE || v > INT_MAX) v = INT_MAX; /* out of any range: refused by the check */
    *out = v;
    while (*end == ' ') end++;
    return end;
}

attn_status cli_parse_ranges(const char *s, const char *flag, cli_ranges *out, attn_error *err) {
    cli_ranges r = {.given = true, .arg = s};
    const char *p = s;
    for (;;) {
        long lo, hi;
        const char *q = parse_number(p, &lo);
        if (!q)
            return cli_usage(err, "%s: expected a list of numbers and ranges such as 0,2-5, got '%s'",
                             flag, s);
        hi = lo;
        if (*q == '-') {
            q = parse_number(q + 1, &hi);
            if (!q)
                return cli_usage(err, "%s: expected a number after '-' in '%s'", flag, s);
            if (hi < lo)
                return cli_usage(err, "%s: range %ld-%ld goes down (in '%s')", flag, lo, hi, s);
        }
        if (hi > r.max) r.max = (int)hi;
        for (long v = lo; v <= hi && v < CLI_RANGE_BITS; v++) ranges_set(&r, v);
        if (*q == '\0') break;
        if (*q != ',')
            return cli_usage(err, "%s: expected a list of numbers and ranges such as 0,2-5, got '%s'",
                             flag, s);
        p = q + 1;
    }
    *out = r;
    return ATTN_OK;
}

attn_status cli_selection_parse(cli_selection *sel, const char *layers, const char *heads,
                                const char *stack, const char *kind, attn_error *err) {
    *sel = (cli_selection){.stack = -1, .kind = -1};
    attn_status rc = ATTN_OK;
    if (layers && (rc = cli_parse_ranges(layers, "--layers", &sel->layers, err))) return rc;
    if (heads && (rc = cli_parse_ranges(heads, "--heads", &sel->heads, err))) return rc;
    if (stack) {
        if (strcmp(stack, "encoder") == 0) sel->stack = ATTN_STACK_ENCODER;
        else if (strcmp(stack, "decoder") == 0) sel->stack = ATTN_STACK_DECODER;
        else return cli_usage(err, "--stack: expected encoder or decoder, got '%s'", stack);
    }
    if (kind) {
        if (strcmp(kind, "self") == 0) sel->kind = ATTN_KIND_SELF;
        else if (strcmp(kind, "cross") == 0) sel->kind = ATTN_KIND_CROSS;
        else return cli_usage(err, "--kind: expected self or cross, got '%s'", kind);
    }
    return ATTN_OK;
}

bool cli_selection_given(const cli_selection *sel) {
    return sel->layers.given || sel->heads.given || sel->stack >= 0 || sel->kind >= 0;
}

/* The stacks a model has: an encoder-only model's stack is "encoder", a
 * decoder's "decoder", an encoder-decoder has both. */
static bool has_stack(const attn_config *cfg, int stack) {
    if (cfg->arch == ATTN_ARCH_ENCODER_DECODER) return true;
    return stack == (cfg->arch == ATTN_ARCH_ENCODER ? ATTN_STACK_ENCODER : ATTN_STACK_DECODER);
}

/* The layers of a stack of cfg. */
static int stack_layers(const attn_config *cfg, int stack) {
    if (cfg->arch == ATTN_ARCH_ENCODER_DECODER && stack == ATTN_STACK_ENCODER)
        return cfg->n_encoder_layers;
    return cfg->n_layers;
}

attn_status cli_selection_check(cli_selection *sel, const attn_config *cfg, attn_error *err) {
    if (sel->stack >= 0 && !has_stack(cfg, sel->stack))
        return cli_usage(err, "--stack %s: the model has no %s stack (architecture %s; its stack is %s)",
                         attn_stack_name(sel->stack), attn_stack_name(sel->stack),
                         attn_arch_name(cfg->arch),
                         attn_stack_name(cfg->arch == ATTN_ARCH_ENCODER ? ATTN_STACK_ENCODER
                                                                        : ATTN_STACK_DECODER));
    if (sel->kind == ATTN_KIND_CROSS && cfg->arch != ATTN_ARCH_ENCODER_DECODER)
        return cli_usage(err, "--kind cross: the model has no cross-attention (architecture %s)",
                         attn_arch_name(cfg->arch));
    if (sel->kind == ATTN_KIND_CROSS && sel->stack == ATTN_STACK_ENCODER)
        return cli_usage(err, "--kind cross with --stack encoder: cross-attention is in the decoder");
    if (sel->layers.given) {
        int n = 0;
        const char *what = "";
        if (sel->stack >= 0) {
            n = stack_layers(cfg, sel->stack);
            what = sel->stack == ATTN_STACK_ENCODER ? " (encoder stack)" : " (decoder stack)";
        } else {
            n = cfg->n_layers;
            if (cfg->arch == ATTN_ARCH_ENCODER_DECODER && cfg->n_encoder_layers > n)
                n = cfg->n_encoder_layers;
        }
        if (sel->layers.max >= n)
            return cli_usage(err, "--layers %s: layer %d is out of range: the model has layers 0-%d%s",
                             sel->layers.arg, sel->layers.max, n - 1, what);
    }
    if (sel->heads.given && sel->heads.max >= cfg->n_heads)
        return cli_usage(err, "--heads %s: head %d is out of range: the model has heads 0-%d",
                         sel->heads.arg, sel->heads.max, cfg->n_heads - 1);
    sel->n_heads = cfg->n_heads;
    sel->n_kv_heads = cfg->n_kv_heads > 0 ? cfg->n_kv_heads : cfg->n_heads;
    return ATTN_OK;
}

static bool is_attention_value(attn_value v) { return v >= ATTN_V_ATTN_IN && v <= ATTN_V_ATTN_OUT; }

/* Does a selected query head read key/value head g? */
static bool kv_head_selected(const cli_selection *sel, int g) {
    const int group = sel->n_kv_heads > 0 ? sel->n_heads / sel->n_kv_heads : 1;
    for (int h = g * group; h < (g + 1) * group; h++)
        if (cli_ranges_has(&sel->heads, h)) return true;
    return false;
}

bool cli_selection_wants(const cli_selection *sel, const attn_capture_key *key) {
    if (sel->stack >= 0 && (int)key->stack != sel->stack) return false;
    if (key->layer < 0) return true; /* embed, hidden, logits */
    if (!cli_ranges_has(&sel->layers, key->layer)) return false;
    if (is_attention_value(key->value) && sel->kind >= 0 && (int)key->kind != sel->kind)
        return false;
    if (key->head < 0 || !sel->heads.given) return true;
    if (key->value == ATTN_V_K || key->value == ATTN_V_V) return kv_head_selected(sel, key->head);
    return cli_ranges_has(&sel->heads, key->head);
}

static bool select_wants(void *user, const attn_capture_key *key) {
    const cli_select_sink *s = user;
    return cli_selection_wants(s->sel, key) && s->inner.wants && s->inner.wants(s->inner.user, key);
}

static attn_status select_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                               attn_error *err) {
    const cli_select_sink *s = user;
    return s->inner.emit(s->inner.user, key, v, err);
}

attn_capture cli_select_capture(cli_select_sink *s) {
    if (!cli_selection_given(s->sel)) return s->inner;
    return (attn_capture){select_wants, select_emit, s, .emit_alongside = s->inner.emit_alongside};
}
