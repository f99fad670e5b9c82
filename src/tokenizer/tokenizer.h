/* Private: the tokenizer object shared by the front (tokenizer.c) and the
 * type-specific back ends (word.c, llama2c.c, gpt2.c). */
#ifndef ATTN_TOKENIZER_INTERNAL_H
#define ATTN_TOKENIZER_INTERNAL_H

#include "base/util.h"

#include <string.h>

/* What a tokenizer type implements. The front checks the arguments (NULL
 * pointers, id ranges) before calling these, so the back ends may trust them. */
typedef struct attn_tokenizer_ops {
    /* Encodes len bytes of text into a malloc'd array of ids (*ids, *n);
     * flags: ATTN_ENCODE_* (checked by the front). */
    int (*encode)(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                  int **ids, size_t *n, attn_error *err);
    /* Writes the text of `id` following `prev` into buf (cap >= 1), NUL-terminated
     * and truncated to cap-1; returns the length written. id is in range; prev
     * may be anything. */
    size_t (*decode)(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap);
    /* Frees tok->impl (not tok itself). */
    void (*destroy)(attn_tokenizer *tok);
} attn_tokenizer_ops;

struct attn_tokenizer {
    const attn_tokenizer_ops *ops;
    int size;                /* number of ids */
    int bos, eos;            /* -1 when none */
    const char *const *pieces; /* [size] NUL-terminated piece texts, owned by impl */
    void *impl;              /* type-specific state, owned */
};

/* Back-end constructors: fill tok (zeroed but for bos = eos = -1, ops unset)
 * from a memory image of the file; on failure they free whatever they allocated and leave
 * tok->impl NULL. */
int attn_tokenizer_word_build(attn_tokenizer *tok, const attn_tokenizer_config *tc,
                              const char *buf, size_t len, const char *name, attn_error *err);
/* gpt2 (gpt2.c): from vocab.json and merges.txt; "not built in" without PCRE2. */
int attn_tokenizer_gpt2_build(attn_tokenizer *tok, const char *vocab, size_t vocab_len,
                              const char *vocab_name, const char *merges, size_t merges_len,
                              const char *merges_name, attn_error *err);
/* hf (hf.c): a Hugging Face tokenizer.json of byte-level BPE, checked part by
 * part, built by the gpt2 back end. */
int attn_tokenizer_hf_build(attn_tokenizer *tok, const char *buf, size_t len, const char *name,
                            attn_error *err);
/* Parses a JSON file's image (a UTF-8 BOM skipped) into *root; malformed JSON
 * is ATTN_ERR_FORMAT naming name, the line and the column (gpt2.c). */
typedef struct cJSON cJSON;
int attn_tokenizer_json_parse(const char *buf, size_t len, const char *name, cJSON **root,
                              attn_error *err);
int attn_tokenizer_llama2c_build(attn_tokenizer *tok, const char *buf, size_t len,
                                 const char *name, attn_error *err);

/* Copies a then b (either may be empty) into buf, truncated to cap-1 bytes and
 * NUL-terminated; returns the number of bytes written before the NUL. cap >= 1. */
static inline size_t attn_tokenizer_write2(char *buf, size_t cap, const char *a, size_t na,
                                           const char *b, size_t nb) {
    size_t room = cap - 1, w = 0;
    size_t ca = na < room ? na : room;
    if (ca) memcpy(buf, a, ca);
    w = ca;
    room -= ca;
    size_t cb = nb < room ? nb : room;
    if (cb) memcpy(buf + w, b, cb);
    w += cb;
    buf[w] = '\0';
    return w;
}

#endif
