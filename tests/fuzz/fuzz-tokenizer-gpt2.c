/* libFuzzer entry point for the gpt2 tokenizer: the input is vocab.json, a
 * line "#merges#", then merges.txt (no such line: all of it is vocab.json and
 * merges.txt is empty). See README.md. */
#define FUZZ_IDS_PER_BYTE 3 /* a byte that is not UTF-8 becomes U+FFFD, 3 bytes */
#include "fuzz-tokenizer-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char sep[] = "\n#merges#\n";
    const uint8_t *m = memmem(data, size, sep, sizeof sep - 1);
    size_t vlen = m ? (size_t)(m - data) : size;
    const uint8_t *merges = m ? m + sizeof sep - 1 : data + size;
    size_t mlen = (size_t)(data + size - merges);
    attn_tokenizer *tok = NULL;
    attn_error err;
    int rc = attn_tokenizer_gpt2_from_memory(&tok, data, vlen, "vocab.json", merges, mlen,
                                             "merges.txt", &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        if (tok) __builtin_trap();
        return 0;
    }
    fuzz_tokenizer_texts(tok, data, size, ATTN_ENCODE_SPECIAL);
    attn_tokenizer_free(tok);
    return 0;
}
