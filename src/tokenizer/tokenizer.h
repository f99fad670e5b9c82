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
/* hf (hf.c): a Hugging Face tokenizer.json, checked part by part, built by
 * the gpt2 back end (byte-level BPE) or the spbpe one (SentencePiece-style). */
int attn_tokenizer_hf_build(attn_tokenizer *tok, const char *buf, size_t len, const char *name,
                            attn_error *err);
/* What hf.c read from a SentencePiece-style tokenizer.json (Llama 1/2,
 * Mistral, TinyLlama: BPE on the whole text, "\u2581" for spaces) for the
 * spbpe back end (spbpe.c). The cJSON values belong to the caller and are
 * only read during the build. */
typedef struct attn_spbpe_spec {
    const struct cJSON *vocab;  /* model.vocab: an object token -> id */
    const struct cJSON *merges; /* model.merges: "A B" strings or [A, B] pairs */
    bool prepend;          /* "\u2581" put in front of each stretch of text */
    bool prepend_first;    /* ... only of the stretch at the text's start (Metaspace "first") */
    bool prepend_if_absent; /* ... only when it does not start with one already (Metaspace) */
    bool split;            /* each "\u2581" starts a new word, BPE word by word (Metaspace) */
    bool byte_fallback;    /* characters not in the vocabulary as their <0xNN> bytes */
    const char *unk;       /* model.unk_token, or NULL */
    bool fuse_unk;         /* a run of unknown characters is one unk */
    bool decode_metaspace; /* decoder Metaspace: no byte fallback, every "\u2581" of the
                              first token dropped (when strip) */
    bool decode_strip;     /* the first token's leading space is dropped */
    const char *prefix, *suffix; /* TemplateProcessing: the special token before / after
                                    the text, or NULL */
    const struct cJSON *added;   /* added_tokens (checked by hf.c), or NULL */
} attn_spbpe_spec;
/* spbpe (spbpe.c); name is the file's name for messages. */
int attn_tokenizer_spbpe_build(attn_tokenizer *tok, const attn_spbpe_spec *spec,
                               const char *name, attn_error *err);
/* Parses a JSON file's image (a UTF-8 BOM skipped) into *root; malformed JSON
 * is ATTN_ERR_FORMAT naming name, the line and the column (gpt2.c). */
typedef struct cJSON cJSON;
int attn_tokenizer_json_parse(const char *buf, size_t len, const char *name, cJSON **root,
                              attn_error *err);
int attn_tokenizer_llama2c_build(attn_tokenizer *tok, const char *buf, size_t len,
                                 const char *name, attn_error *err);

/* The size of an open-addressing table for n keys: 2^k slots, k the least
 * with at least 2 * n (n is bounded by a file's size: no overflow). */
static inline size_t attn_table_size(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

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
