/* libFuzzer entry point for the word tokenizer: the input is a vocabulary
 * (one token per line) with "<unk>\n" prepended, so the configured unk
 * exists unless the input repeats it. See README.md. */
#include "fuzz-tokenizer-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char prefix[] = "<unk>\n";
    uint8_t *buf = malloc(sizeof prefix - 1 + size + 1);
    if (!buf) return 0;
    memcpy(buf, prefix, sizeof prefix - 1);
    if (size) memcpy(buf + sizeof prefix - 1, data, size);

    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_WORD;
    strcpy(tc.path, "vocab.txt");
    strcpy(tc.unk, "<unk>");
    /* the first byte picks the options: lowercase, bos, eos */
    unsigned flags = size ? data[0] : 0;
    tc.lowercase = flags & 1;
    tc.has_bos = flags & 2;
    tc.has_eos = flags & 4;
    strcpy(tc.bos, "<s>");
    strcpy(tc.eos, "</s>");
    fuzz_tokenizer(&tc, buf, sizeof prefix - 1 + size);
    free(buf);
    return 0;
}
