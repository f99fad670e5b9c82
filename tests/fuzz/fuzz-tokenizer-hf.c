/* libFuzzer entry point for the hf tokenizer: the input is a whole
 * tokenizer.json (attn_tokenizer_from_memory, type hf). See README.md. */
#define FUZZ_IDS_PER_BYTE 6 /* GPT-2: a byte not UTF-8 is U+FFFD, 3 bytes; Llama: a space is
                               "\u2581" (3 byte tokens), and 3 more in front of a stretch */
#include "fuzz-tokenizer-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const attn_tokenizer_config tc = {.type = ATTN_TOKENIZER_HF};
    fuzz_tokenizer(&tc, data, size, ATTN_ENCODE_SPECIAL);
    return 0;
}
