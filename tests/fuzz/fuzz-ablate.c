/* libFuzzer entry point for the ablation specs (attn_ablation_parse,
 * src/compute/ablate.c) and the ablation's edit of the values.
 *
 * Input: byte 0 picks a config (architecture, layers, encoder layers,
 * heads, whether there is an MLP), byte 1 the mode and the shape of a
 * value; the rest is the spec text (--ablate's value), NUL-terminated here.
 *   - The parser returns ATTN_OK or ATTN_ERR_USAGE with one line of
 *     message; on ATTN_OK every spec is in range for the config.
 *   - The edit of a random [rows, H*hd] concat and [rows, D] MLP output for
 *     every layer keeps the values finite and leaves the columns of heads
 *     that no spec names unchanged. */
#include "attn/attn.h"
#include "fuzz-common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 4096) return 0;
    const uint8_t b0 = data[0], b1 = data[1];
    static const attn_arch archs[] = {ATTN_ARCH_DECODER, ATTN_ARCH_ENCODER,
                                      ATTN_ARCH_ENCODER_DECODER};
    attn_config cfg = {.arch = archs[b0 % 3], .n_layers = 1 + (b0 >> 2) % 4,
                       .n_heads = 1 + (b0 >> 4) % 4, .head_dim = 2,
                       .mlp = b0 & 0x80 ? ATTN_MLP_NONE : ATTN_MLP_GELU};
    cfg.n_encoder_layers = cfg.arch == ATTN_ARCH_ENCODER_DECODER ? 1 + b1 % 3 : 0;
    cfg.d_model = cfg.n_heads * cfg.head_dim;
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    static attn_ablation a;
    attn_error err = {0};
    attn_status rc = attn_ablation_parse(&a, text, &cfg, &err);
    free(text);
    if (rc) {
        fuzz_check_error(&err, rc);
        if (rc != ATTN_ERR_USAGE) __builtin_trap();
        return 0;
    }
    if (a.n < 1 || a.n > ATTN_ABLATE_MAX) __builtin_trap();
    for (int i = 0; i < a.n; i++) {
        const attn_ablate_spec *s = &a.specs[i];
        const int L = s->source ? cfg.n_encoder_layers : cfg.n_layers;
        if (s->layer < 0 || s->layer >= L || s->head < -1 || s->head >= cfg.n_heads) __builtin_trap();
        if (s->mlp && cfg.mlp == ATTN_MLP_NONE) __builtin_trap();
        if (s->kind == ATTN_KIND_CROSS && (s->source || cfg.arch != ATTN_ARCH_ENCODER_DECODER))
            __builtin_trap();
    }
    a.mode = b1 & 1 ? ATTN_ABLATE_MEAN : ATTN_ABLATE_ZERO;
    const attn_capture c = attn_ablation_capture(&a);
    const int rows = 1 + (b1 >> 1) % 5, cols = cfg.d_model;
    float v[5 * 8], before[5 * 8];
    for (int i = 0; i < rows * cols; i++) before[i] = v[i] = (float)((i * 37 + b1) % 11) - 5.0f;
    for (int src = 0; src < 2; src++)
        for (int layer = 0; layer < 4; layer++)
            for (int value = 0; value < 2; value++)
                for (int kind = 0; kind < 2; kind++) {
                    const attn_capture_key key = {.value = value ? ATTN_V_MLP_OUT : ATTN_V_CONCAT,
                                                  .source = src, .layer = layer, .head = -1,
                                                  .kind = kind ? ATTN_KIND_CROSS : ATTN_KIND_SELF};
                    if (!c.wants(c.user, &key)) continue;
                    memcpy(v, before, sizeof v);
                    if (c.edit(c.user, &key, v, rows, cols, 0, &err)) __builtin_trap();
                    for (int h = 0; h < cfg.n_heads; h++) {
                        bool named = false;
                        for (int i = 0; i < a.n; i++) {
                            const attn_ablate_spec *s = &a.specs[i];
                            named |= s->source == src && s->layer == layer &&
                                     (value ? s->mlp
                                            : !s->mlp && (int)s->kind == kind &&
                                                  (s->head < 0 || s->head == h));
                        }
                        for (int r = 0; r < rows; r++)
                            for (int j = h * cfg.head_dim; j < (h + 1) * cfg.head_dim; j++) {
                                const float x = v[r * cols + j];
                                if (!isfinite(x)) __builtin_trap();
                                if (!named && x != before[r * cols + j]) __builtin_trap();
                            }
                    }
                }
    return 0;
}
