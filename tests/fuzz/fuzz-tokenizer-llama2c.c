/* libFuzzer entry point for the llama2.c tokenizer (tokenizer.bin image).
 * See README.md. */
#include "fuzz-tokenizer-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    strcpy(tc.path, "tokenizer.bin");
    fuzz_tokenizer(&tc, data, size, 0);
    return 0;
}
