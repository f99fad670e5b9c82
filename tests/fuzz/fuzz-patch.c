/* libFuzzer entry point for the activation patching pattern (attn_patch_new,
 * attn_patch_match, attn_patch_plan, src/compute/patch.c) and its edit.
 *
 * Input: byte 0 picks a config (architecture, layers, heads, whether there
 * is an MLP), byte 1 the lengths of the two runs, of the source and the
 * alignment; the rest is the pattern (--names' value), NUL-terminated here.
 *   - attn_patch_new returns ATTN_OK or ATTN_ERR_USAGE with one line; on
 *     ATTN_OK the pattern matches some unit's or site's name.
 *   - the plan's units are in range for the config and the lengths;
 *   - recording a random run and applying every unit to another changes
 *     exactly the unit's columns (a head) or row (a position), and only to
 *     the recorded values. */
#include "attn/attn.h"
#include "fuzz-common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAXT = 6, MAXC = 8 };

static void fill(float *v, int rows, int cols, float base) {
    for (int i = 0; i < rows * cols; i++) v[i] = base + (float)i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 4096) return 0;
    const uint8_t b0 = data[0], b1 = data[1];
    static const attn_arch archs[] = {ATTN_ARCH_DECODER, ATTN_ARCH_ENCODER,
                                      ATTN_ARCH_ENCODER_DECODER};
    attn_config cfg = {.arch = archs[b0 % 3], .n_layers = 1 + (b0 >> 2) % 3,
                       .n_heads = 1 + (b0 >> 4) % 4, .head_dim = 2, .vocab_size = 3,
                       .mlp = b0 & 0x80 ? ATTN_MLP_NONE : ATTN_MLP_GELU};
    cfg.n_encoder_layers = cfg.arch == ATTN_ARCH_ENCODER_DECODER ? 1 + b1 % 2 : 0;
    cfg.d_model = cfg.n_heads * cfg.head_dim;
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    attn_patch *p = NULL;
    attn_error err = {0};
    attn_status rc = attn_patch_new(&p, &cfg, text, &err);
    if (rc) {
        free(text);
        fuzz_check_error(&err, rc);
        if (rc != ATTN_ERR_USAGE || p) __builtin_trap();
        return 0;
    }
    const int from = 1 + b1 % MAXT, into = 1 + (b1 >> 3) % MAXT;
    const int src = cfg.n_encoder_layers ? 1 + (b1 >> 5) % 3 : 0;
    const attn_patch_align align = (attn_patch_align)((b1 >> 6) % 3);
    rc = attn_patch_plan(p, from, into, src, align, &err);
    if (rc) {
        fuzz_check_error(&err, rc);
        if (rc != ATTN_ERR_USAGE) __builtin_trap();
        if (align == ATTN_PATCH_ALIGN_RIGHT && from == into) __builtin_trap();
        goto out;
    }
    if (align == ATTN_PATCH_ALIGN_NONE && from != into) __builtin_trap();
    const int shift = align == ATTN_PATCH_ALIGN_RIGHT ? from - into : 0;
    const attn_capture c = attn_patch_capture(p);
    for (size_t i = 0; i < attn_patch_count(p); i++) {
        const attn_patch_unit *u = attn_patch_at(p, i);
        char name[128];
        attn_patch_unit_name(u, name, sizeof name);
        if (u->head >= 0 && !attn_patch_match(text, name)) {
            /* a head unit comes from a match of it or of its site */
            char site[128];
            memcpy(site, name, sizeof site);
            char *dot = strrchr(site, '.');
            if (!dot) __builtin_trap();
            *dot = '\0';
            if (!attn_patch_match(text, site)) __builtin_trap();
        }
        const int L = u->source ? cfg.n_encoder_layers : cfg.n_layers;
        if (u->layer < 0 || u->layer >= L || u->head >= cfg.n_heads) __builtin_trap();
        if ((u->head >= 0) != (u->value == ATTN_V_CONCAT) || (u->pos >= 0) == (u->head >= 0))
            __builtin_trap();
        const int T_into = u->source ? src : into, T_from = u->source ? src : from;
        const int sh = u->source ? 0 : shift;
        if (u->pos >= T_into || (u->pos >= 0 && (u->pos + sh < 0 || u->pos + sh >= T_from)))
            __builtin_trap();
        const attn_capture_key key = {.value = u->value, .source = u->source, .layer = u->layer,
                                      .kind = u->kind, .head = -1};
        const int cols = cfg.d_model;
        float rec[MAXT * MAXC], v[MAXT * MAXC], before[MAXT * MAXC];
        fill(rec, T_from, cols, 1000.0f);
        if (attn_patch_set_mode(p, ATTN_PATCH_RECORD, 0, &err) || !c.wants(c.user, &key) ||
            c.edit(c.user, &key, rec, T_from, cols, 0, &err))
            __builtin_trap();
        if (attn_patch_set_mode(p, ATTN_PATCH_APPLY, i, &err) || !c.wants(c.user, &key))
            __builtin_trap();
        fill(v, T_into, cols, 0.0f);
        memcpy(before, v, sizeof v);
        if (c.edit(c.user, &key, v, T_into, cols, 0, &err)) __builtin_trap();
        for (int r = 0; r < T_into; r++)
            for (int j = 0; j < cols; j++) {
                const bool in_unit = u->head >= 0 ? j / cfg.head_dim == u->head &&
                                                        r + sh >= 0 && r + sh < T_from
                                                  : r == u->pos;
                const float want = in_unit ? rec[(r + sh) * cols + j] : before[r * cols + j];
                if (v[r * cols + j] != want) __builtin_trap();
            }
    }
out:
    free(text);
    attn_patch_free(p);
    return 0;
}
