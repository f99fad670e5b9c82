/* Tokenizer front: argument checks, file reading and dispatch to the
 * type-specific back ends (word.c, llama2c.c, gpt2.c) through the small ops table
 * in tokenizer.h. */
#include "tokenizer/tokenizer.h"

#include "model/limits.h"

#include <stdlib.h>

attn_status attn_tokenizer_from_memory(attn_tokenizer **out, const attn_tokenizer_config *tc,
                               const void *buf, size_t len, const char *name, attn_error *err) {
    if (!out)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_from_memory: out is NULL");
    *out = NULL;
    if (!tc)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_from_memory: config is NULL");
    if (!buf && len)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_tokenizer_from_memory: buffer is NULL but len is %zu", len);
    if (!name) name = "<tokenizer>";
    if (!buf) buf = "";

    attn_tokenizer *tok = attn_calloc_array(1, sizeof *tok, "tokenizer", err);
    if (!tok) return ATTN_ERR_NOMEM;
    tok->bos = tok->eos = -1;
    int rc;
    switch (tc->type) {
    case ATTN_TOKENIZER_WORD:
        rc = attn_tokenizer_word_build(tok, tc, buf, len, name, err);
        break;
    case ATTN_TOKENIZER_LLAMA2C:
        rc = attn_tokenizer_llama2c_build(tok, buf, len, name, err);
        break;
    case ATTN_TOKENIZER_GPT2:
        rc = attn_error_set(err, ATTN_ERR_USAGE,
                            "%s: a gpt2 tokenizer has two files (vocab.json, merges.txt): use "
                            "attn_tokenizer_gpt2_from_memory",
                            name);
        break;
    case ATTN_TOKENIZER_HF:
        rc = attn_tokenizer_hf_build(tok, buf, len, name, err);
        break;
    default:
        rc = attn_error_set(err, ATTN_ERR_USAGE, "%s: unknown tokenizer type %d", name,
                            (int)tc->type);
        break;
    }
    if (rc != ATTN_OK) {
        free(tok);
        return rc;
    }
    *out = tok;
    return ATTN_OK;
}

attn_status attn_tokenizer_gpt2_from_memory(attn_tokenizer **out, const void *vocab,
                                            size_t vocab_len, const char *vocab_name,
                                            const void *merges, size_t merges_len,
                                            const char *merges_name, attn_error *err) {
    if (!out)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_gpt2_from_memory: out is NULL");
    *out = NULL;
    if ((!vocab && vocab_len) || (!merges && merges_len))
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_tokenizer_gpt2_from_memory: a buffer is NULL but its length "
                              "is not 0");
    attn_tokenizer *tok = attn_calloc_array(1, sizeof *tok, "tokenizer", err);
    if (!tok) return ATTN_ERR_NOMEM;
    tok->bos = tok->eos = -1;
    int rc = attn_tokenizer_gpt2_build(tok, vocab ? vocab : "", vocab_len,
                                       vocab_name ? vocab_name : "<vocab.json>",
                                       merges ? merges : "", merges_len,
                                       merges_name ? merges_name : "<merges.txt>", err);
    if (rc != ATTN_OK) {
        free(tok);
        return rc;
    }
    *out = tok;
    return ATTN_OK;
}

attn_status attn_tokenizer_open(attn_tokenizer **out, const attn_tokenizer_config *tc, attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_open: out is NULL");
    *out = NULL;
    if (!tc) return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_open: config is NULL");
    if (!tc->path[0] || (tc->type == ATTN_TOKENIZER_GPT2 && !tc->merges[0]))
        return attn_error_set(err, ATTN_ERR_USAGE, "tokenizer config has an empty path");
    char *buf, *merges = NULL;
    size_t len, merges_len = 0;
    int rc = attn_read_file(tc->path, ATTN_TOKENIZER_FILE_MAX, "a vocabulary", &buf, &len,
                                  err);
    if (rc != ATTN_OK) return rc;
    if (tc->type == ATTN_TOKENIZER_GPT2) {
        rc = attn_read_file(tc->merges, ATTN_TOKENIZER_FILE_MAX, "a merges file", &merges,
                            &merges_len, err);
        if (rc == ATTN_OK)
            rc = attn_tokenizer_gpt2_from_memory(out, buf, len, tc->path, merges, merges_len,
                                                 tc->merges, err);
    } else {
        rc = attn_tokenizer_from_memory(out, tc, buf, len, tc->path, err);
    }
    free(buf);
    free(merges);
    return rc;
}

void attn_tokenizer_free(attn_tokenizer *tok) {
    if (!tok) return;
    if (tok->ops && tok->ops->destroy) tok->ops->destroy(tok);
    free(tok);
}

int attn_tokenizer_size(const attn_tokenizer *tok) { return tok ? tok->size : 0; }

int attn_tokenizer_bos(const attn_tokenizer *tok) { return tok ? tok->bos : -1; }

int attn_tokenizer_eos(const attn_tokenizer *tok) { return tok ? tok->eos : -1; }

attn_status attn_tokenizer_encode_flags(const attn_tokenizer *tok, const char *text, size_t len,
                                        unsigned flags, int **ids, size_t *n, attn_error *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!tok || !ids || !n)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_tokenizer_encode: tokenizer, ids and n must not be NULL");
    if (!text && len)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_tokenizer_encode: text is NULL but len is %zu", len);
    const unsigned known = ATTN_ENCODE_NO_SPECIAL | ATTN_ENCODE_SPECIAL;
    if (flags & ~known)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_tokenizer_encode: unknown flags 0x%x",
                              flags & ~known);
    if ((flags & known) == known)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "attn_tokenizer_encode: ATTN_ENCODE_SPECIAL and "
                              "ATTN_ENCODE_NO_SPECIAL exclude each other");
    if (!text) text = "";
    /* the ids and the merge scratch grow with the text: bounded first */
    if (len > ATTN_TEXT_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "text of %zu bytes is longer than the %zu-byte (1 MiB) limit of one "
                              "input",
                              len, ATTN_TEXT_MAX);
    return tok->ops->encode(tok, text, len, flags, ids, n, err);
}

attn_status attn_tokenizer_encode(const attn_tokenizer *tok, const char *text, size_t len, int **ids,
                          size_t *n, attn_error *err) {
    return attn_tokenizer_encode_flags(tok, text, len, 0, ids, n, err);
}

const char *attn_tokenizer_piece(const attn_tokenizer *tok, int id) {
    if (!tok || id < 0 || id >= tok->size) return NULL;
    return tok->pieces[id];
}

size_t attn_tokenizer_decode(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    if (!buf || cap == 0) return 0;
    buf[0] = '\0';
    if (!tok || id < 0 || id >= tok->size) return 0;
    return tok->ops->decode(tok, prev, id, buf, cap);
}
