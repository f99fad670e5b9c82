/* libFuzzer entry point for the word tokenizer: the input is a vocabulary
 * (one token per line) with "<unk>\n" prepended, so the configured unk
 * exists unless the input repeats it. The first byte picks the options; with
 * bit 0x20 the input's second and third lines are listed as special tokens
 * (refused when they are no vocabulary entry). See README.md. */
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
    /* the first byte picks the options: lowercase, bos, eos, eos not added,
     * no special tokens, listed special tokens, encode with ATTN_ENCODE_NO_SPECIAL */
    unsigned flags = size ? data[0] : 0;
    tc.lowercase = flags & 1;
    tc.has_bos = flags & 2;
    tc.has_eos = flags & 4;
    tc.eos_not_added = flags & 8;
    tc.special_off = flags & 16;
    strcpy(tc.bos, "<s>");
    strcpy(tc.eos, "</s>");
    if (flags & 32) { /* lines 2 and 3 of the input, as far as they fit */
        const char *p = memchr(data, '\n', size), *end = (const char *)data + size;
        for (int s = 0; s < 2 && p && p + 1 < end; s++) {
            const char *from = p + 1;
            p = memchr(from, '\n', (size_t)(end - from));
            size_t n = (size_t)((p ? p : end) - from);
            if (n >= ATTN_TOKEN_MAX) n = ATTN_TOKEN_MAX - 1;
            memcpy(tc.special[s], from, n);
            tc.special[s][n] = '\0';
            tc.n_special = s + 1;
        }
    }
    fuzz_tokenizer(&tc, buf, sizeof prefix - 1 + size, flags & 64 ? ATTN_ENCODE_NO_SPECIAL : 0);
    free(buf);
    return 0;
}
