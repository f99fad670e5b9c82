/* The reference test's side of attn (test_gpt2_reference.py): a gpt2
 * tokenizer from VOCAB and MERGES, then for each line of standard input (a
 * text written in hex, two digits a byte; an empty line is the empty text)
 * one line out: the ids, comma-separated, a tab, and the hex of the text
 * the ids decode to (attn_tokenizer_decode, token after token).
 *
 *   gpt2-ids VOCAB MERGES [--special] < texts.hex > ids.txt
 *   gpt2-ids --hf TOKENIZER_JSON [--special] < texts.hex > ids.txt
 *
 * --hf: the same from a Hugging Face tokenizer.json (tokenizer type "hf").
 * The decoded text leaves out the tokenizer's bos (a Llama tokenizer.json's
 * <s>, which encoding puts first), as `attn tokenize --ids` does.
 */
#include "attn/attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 65536 > cap) {
            cap = 2 * cap + 65536;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gpt2-ids VOCAB MERGES [--special] < texts.hex\n");
        return 2;
    }
    unsigned flags = argc > 3 && strcmp(argv[3], "--special") == 0 ? ATTN_ENCODE_SPECIAL : 0;
    const bool hf = strcmp(argv[1], "--hf") == 0;
    size_t vl = 0, ml = 0;
    char *v = slurp(argv[hf ? 2 : 1], &vl), *m = hf ? malloc(1) : slurp(argv[2], &ml);
    if (!v || !m) {
        fprintf(stderr, "gpt2-ids: cannot read %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    attn_tokenizer *tok;
    attn_error err;
    static attn_tokenizer_config tc = {.type = ATTN_TOKENIZER_HF};
    if (hf ? attn_tokenizer_from_memory(&tok, &tc, v, vl, argv[2], &err)
           : attn_tokenizer_gpt2_from_memory(&tok, v, vl, argv[1], m, ml, argv[2], &err)) {
        fprintf(stderr, "gpt2-ids: %s\n", err.message);
        return 1;
    }
    free(v);
    free(m);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    static char piece[70000];
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t n = 0;
        for (ssize_t i = 0; i + 1 < got && line[i] != '\n'; i += 2) {
            int hi = hexval(line[i]), lo = hexval(line[i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "gpt2-ids: bad hex\n");
                return 1;
            }
            line[n++] = (char)(hi * 16 + lo);
        }
        int *ids;
        size_t k;
        if (attn_tokenizer_encode_flags(tok, line, n, flags, &ids, &k, &err)) {
            fprintf(stderr, "gpt2-ids: %s\n", err.message);
            return 1;
        }
        for (size_t i = 0; i < k; i++) printf(i ? ",%d" : "%d", ids[i]);
        putchar('\t');
        for (size_t i = 0; i < k; i++) {
            if (ids[i] == attn_tokenizer_bos(tok)) continue;
            size_t w = attn_tokenizer_decode(tok, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
            for (size_t j = 0; j < w; j++) printf("%02x", (unsigned char)piece[j]);
        }
        putchar('\n');
        free(ids);
    }
    free(line);
    attn_tokenizer_free(tok);
    return ferror(stdout) ? 1 : 0;
}
