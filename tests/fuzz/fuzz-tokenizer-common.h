/* Shared body of the tokenizer harnesses: after a successful parse, encode a
 * few fixed texts and a slice of the input (with the encode flags given, and
 * without special tokens), decode every id produced, and look at every
 * piece. */
#ifndef ATTN_FUZZ_TOKENIZER_COMMON_H
#define ATTN_FUZZ_TOKENIZER_COMMON_H

#include "fuzz-common.h"

#include <stdint.h>
#include <stdlib.h>

#ifndef FUZZ_IDS_PER_BYTE
#define FUZZ_IDS_PER_BYTE 1 /* the most ids one byte of text can give */
#endif

static inline void fuzz_encode_decode(const attn_tokenizer *tok, const char *text, size_t len,
                                      unsigned flags) {
    int *ids = NULL;
    size_t n = 0;
    attn_error err;
    int rc = attn_tokenizer_encode_flags(tok, text, len, flags, &ids, &n, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        free(ids);
        return;
    }
    int size = attn_tokenizer_size(tok);
    char buf[64];
    char tiny[2];
    int prev = -1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= size) __builtin_trap();
        if (!attn_tokenizer_piece(tok, ids[i])) __builtin_trap();
        size_t w = attn_tokenizer_decode(tok, prev, ids[i], buf, sizeof buf);
        if (w >= sizeof buf || buf[w] != '\0') __builtin_trap();
        w = attn_tokenizer_decode(tok, prev, ids[i], tiny, sizeof tiny);
        if (w >= sizeof tiny || tiny[w] != '\0') __builtin_trap();
        prev = ids[i];
    }
    /* at most FUZZ_IDS_PER_BYTE ids per byte, plus bos and eos */
    if (n > FUZZ_IDS_PER_BYTE * len + 2) __builtin_trap();
    free(ids);
}

/* The checks after a successful parse (see the top of the file). */
static inline void fuzz_tokenizer_texts(const attn_tokenizer *tok, const uint8_t *data,
                                        size_t size, unsigned flags) {
    int nids = attn_tokenizer_size(tok);
    if (nids <= 0) __builtin_trap();
    for (int id = 0; id < nids; id++)
        if (!attn_tokenizer_piece(tok, id)) __builtin_trap();
    if (attn_tokenizer_piece(tok, -1) || attn_tokenizer_piece(tok, nids)) __builtin_trap();
    char buf[32];
    (void)attn_tokenizer_decode(tok, -1, -1, buf, sizeof buf);
    (void)attn_tokenizer_decode(tok, -1, nids, buf, sizeof buf);
    (void)attn_tokenizer_decode(tok, attn_tokenizer_bos(tok), 0, buf, 0);

    static const char *const texts[] = {
        "", " ", "hello world", "The Quick, brown fox!", "a  b\tc\r\nd",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\x80\xbf\xff\xfe", "<unk> <s> </s>",
        "the<mask> <<mask>> <mask", "[MASK]x[MASK][MASK", "<> <<>> <a<b> <=>", "<mask>.",
        "a<|endoftext|>b <|x|> I'm   here\t\n\n 42 \xc2\x85\xef\xbb\xbf \xe6\x97\xa5",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        fuzz_encode_decode(tok, texts[i], strlen(texts[i]), flags);
        fuzz_encode_decode(tok, texts[i], strlen(texts[i]), ATTN_ENCODE_NO_SPECIAL);
    }
    fuzz_encode_decode(tok, "a\0b", 3, flags);
    fuzz_encode_decode(tok, "<a\0b>", 5, flags);
    /* a slice of the input as text */
    size_t from = size / 3, len = size - from;
    if (len > 512) len = 512;
    fuzz_encode_decode(tok, (const char *)data + from, len, flags);
    fuzz_encode_decode(tok, (const char *)data + from, len, (flags & ATTN_ENCODE_SPECIAL) ? 0 : flags ^ ATTN_ENCODE_NO_SPECIAL);
    /* the whole input too: its own lines are the vocabulary, so every <...>
     * entry and every listed token occurs in it */
    fuzz_encode_decode(tok, (const char *)data, size, flags);
}

static inline void fuzz_tokenizer(const attn_tokenizer_config *tc, const uint8_t *data,
                                  size_t size, unsigned flags) {
    attn_tokenizer *tok = NULL;
    attn_error err;
    int rc = attn_tokenizer_from_memory(&tok, tc, data, size, "fuzz-tokenizer", &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        if (tok) __builtin_trap();
        return;
    }
    fuzz_tokenizer_texts(tok, data, size, flags);
    attn_tokenizer_free(tok);
}

#endif
