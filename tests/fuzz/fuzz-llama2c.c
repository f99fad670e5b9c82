/* libFuzzer entry point for the llama2.c checkpoint header parser. The
 * parser compares len with the size the header implies, so every accepted
 * header must imply exactly the input's size. See README.md. */
#include "fuzz-common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    attn_llama2c_header h;
    attn_error err;
    int rc = attn_llama2c_parse_header(&h, data, size, "model.bin", &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
    } else {
        if (h.file_bytes != (uint64_t)size) __builtin_trap();
        if (h.header_bytes != 28 && h.header_bytes != 256) __builtin_trap();
        if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 ||
            h.n_kv_heads <= 0 || h.vocab_size <= 0 || h.seq_len <= 0)
            __builtin_trap();
        if (h.n_heads % h.n_kv_heads || h.dim % h.n_heads || (h.dim / h.n_heads) % 2)
            __builtin_trap();
    }
    return 0;
}
