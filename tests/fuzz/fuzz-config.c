/* libFuzzer entry point for the config parser: attn_config_parse on the
 * input as JSON, base_dir NULL (no file is checked). See README.md. */
#include "fuzz-common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    attn_config cfg;
    attn_error err;
    int rc = attn_config_parse(&cfg, (const char *)data, size, "config.json", NULL, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        return 0;
    }
    /* an accepted config is internally consistent */
    if (cfg.vocab_size <= 0 || cfg.d_model <= 0 || cfg.n_heads <= 0 || cfg.n_layers <= 0 ||
        cfg.max_seq_len <= 0)
        __builtin_trap();
    if (!memchr(cfg.weights, '\0', sizeof cfg.weights)) __builtin_trap();
    if (cfg.has_tokenizer && !memchr(cfg.tokenizer.path, '\0', sizeof cfg.tokenizer.path))
        __builtin_trap();
    (void)attn_arch_name(cfg.arch);
    (void)attn_positional_name(cfg.positional);
    (void)attn_norm_name(cfg.norm);
    (void)attn_mlp_name(cfg.mlp);
    return 0;
}
