/* Word tokenizer: a vocabulary of one token per line (line number = id).
 *
 * Vocabulary file: lines separated by '\n'; the last line may lack its '\n';
 * one trailing '\r' per line is stripped (CRLF files). Refused: an empty line,
 * a token containing ASCII whitespace or a NUL byte, a duplicate token, a file
 * with no tokens, more than ATTN_VOCAB_MAX tokens, a token longer than
 * ATTN_TOKEN_BYTES_MAX bytes (model/limits.h; docs/model-format.md, "Limits").
 *
 * Text splitting (bytes, independent of the locale):
 *   - ASCII whitespace (space, \t, \n, \v, \f, \r) separates words;
 *   - every ASCII punctuation character (ispunct in the C locale:
 *     !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is a token of its own;
 *   - every other byte is a word character: letters, digits, bytes >= 0x80
 *     (so UTF-8 words stay whole), control bytes and NUL. A word containing a
 *     NUL byte can never be in the vocabulary (refused there), so it maps to unk.
 * With lowercase, ASCII A-Z are lowered before lookup. Unknown words map to
 * unk; bos / eos, when configured, are added first / last.
 */
#include "tokenizer/tokenizer.h"

#include "model/limits.h"

#include <limits.h>
#include <stb_ds.h>
#include <stdlib.h>

typedef struct word_entry {
    char *key; /* points into word_impl.text */
    int value; /* id */
} word_entry;

typedef struct word_impl {
    char *text;         /* the vocabulary, one NUL-terminated token per id */
    const char **pieces; /* [size] into text */
    size_t *piece_len;  /* [size] */
    word_entry *map;    /* stb_ds string hash map token -> id (keys not copied) */
    bool lowercase;
    int unk;
} word_impl;

static bool word_is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static bool word_is_punct(unsigned char c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

/* Read-only lookup (stb_ds's shget writes a temporary into the map's header,
 * which would make concurrent encodes on one tokenizer race). -1 when absent. */
static int word_lookup(const word_impl *w, const char *key) {
    ptrdiff_t slot;
    (void)stbds_hmget_key_ts((void *)w->map, sizeof *w->map, (void *)key, sizeof w->map->key, &slot,
                             STBDS_HM_STRING);
    return slot < 0 ? -1 : w->map[slot].value;
}

static void word_free_impl(word_impl *w) {
    if (!w) return;
    shfree(w->map);
    free(w->text);
    free(w->pieces);
    free(w->piece_len);
    free(w);
}

static void word_destroy(attn_tokenizer *tok) {
    word_free_impl(tok->impl);
    tok->impl = NULL;
}

static int word_encode(const attn_tokenizer *tok, const char *text, size_t len, int **ids,
                       size_t *n, attn_error *err) {
    const word_impl *w = tok->impl;
    /* at most one id per byte, plus bos and eos */
    size_t cap;
    if (!attn_add_size(len, 2, &cap))
        return attn_error_set(err, ATTN_ERR_NOMEM, "text of %zu bytes is too long to encode", len);
    int *out = attn_alloc_array(cap, sizeof *out, "token ids", err);
    if (!out) return ATTN_ERR_NOMEM;
    char *word = attn_alloc_array(len + 1, 1, "word buffer", err);
    if (!word) {
        free(out);
        return ATTN_ERR_NOMEM;
    }
    size_t k = 0;
    if (tok->bos >= 0) out[k++] = tok->bos;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (word_is_space(c)) {
            i++;
            continue;
        }
        if (word_is_punct(c)) {
            char p[2] = {(char)c, '\0'};
            int id = word_lookup(w, p);
            out[k++] = id >= 0 ? id : w->unk;
            i++;
            continue;
        }
        size_t j = i;
        bool has_nul = false;
        while (j < len) {
            unsigned char d = (unsigned char)text[j];
            if (word_is_space(d) || word_is_punct(d)) break;
            if (d == 0) has_nul = true;
            word[j - i] = (char)(w->lowercase && d >= 'A' && d <= 'Z' ? d - 'A' + 'a' : d);
            j++;
        }
        word[j - i] = '\0';
        int id = has_nul ? -1 : word_lookup(w, word);
        out[k++] = id >= 0 ? id : w->unk;
        i = j;
    }
    if (tok->eos >= 0) out[k++] = tok->eos;
    free(word);
    *ids = out;
    *n = k;
    return ATTN_OK;
}

static size_t word_decode(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    const word_impl *w = tok->impl;
    bool space = !(prev == -1 || (tok->bos >= 0 && prev == tok->bos));
    return attn_tokenizer_write2(buf, cap, " ", space ? 1 : 0, w->pieces[id], w->piece_len[id]);
}

static const attn_tokenizer_ops word_ops = {
    .encode = word_encode,
    .decode = word_decode,
    .destroy = word_destroy,
};

/* Finds a configured special token; refuses it when absent. */
static int word_special(const word_impl *w, const char *what, const char *token, const char *name,
                        int *id, attn_error *err) {
    size_t tl = strnlen(token, ATTN_TOKEN_MAX);
    *id = tl < ATTN_TOKEN_MAX ? word_lookup(w, token) : -1;
    if (*id < 0)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: the %s token \"%.*s\" is not in the vocabulary", name, what,
                              (int)(tl < 200 ? tl : 200), token);
    return ATTN_OK;
}

int attn_tokenizer_word_build(attn_tokenizer *tok, const attn_tokenizer_config *tc,
                              const char *buf, size_t len, const char *name, attn_error *err) {
    word_impl *w = attn_calloc_array(1, sizeof *w, "word tokenizer", err);
    if (!w) return ATTN_ERR_NOMEM;
    w->lowercase = tc->lowercase;
    int rc = ATTN_OK;

    /* Copy the file (without a byte order mark) so every line can be
     * NUL-terminated in place. */
    const size_t bom = buf ? attn_bom_len(buf, len) : 0;
    buf += bom;
    len -= bom;
    w->text = attn_alloc_array(len + 1, 1, "vocabulary", err);
    if (!w->text) {
        rc = ATTN_ERR_NOMEM;
        goto fail;
    }
    if (len) memcpy(w->text, buf, len);
    w->text[len] = '\0';

    /* Count lines: a line ends at '\n' or at the end of a non-empty tail. */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') lines++;
    if (len && buf[len - 1] != '\n') lines++;
    if (lines == 0) {
        rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: the vocabulary has no tokens", name);
        goto fail;
    }
    if (lines > (size_t)ATTN_VOCAB_MAX) {
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "%s: %zu tokens, more than the limit of %d tokens of a vocabulary",
                            name, lines, ATTN_VOCAB_MAX);
        goto fail;
    }
    w->pieces = attn_alloc_array(lines, sizeof *w->pieces, "vocabulary", err);
    w->piece_len = attn_alloc_array(lines, sizeof *w->piece_len, "vocabulary", err);
    if (!w->pieces || !w->piece_len) {
        rc = ATTN_ERR_NOMEM;
        goto fail;
    }
    shdefault(w->map, -1);

    size_t start = 0;
    for (size_t line = 0; line < lines; line++) {
        size_t end = start;
        while (end < len && buf[end] != '\n') end++;
        size_t next = end + 1;
        if (end > start && buf[end - 1] == '\r') end--;
        size_t tl = end - start;
        char *t = w->text + start;
        if (tl == 0) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s:%zu: empty line, expected one token per line", name, line + 1);
            goto fail;
        }
        if (tl > ATTN_TOKEN_BYTES_MAX) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s:%zu: token of %zu bytes is longer than the %d-byte limit",
                                name, line + 1, tl, ATTN_TOKEN_BYTES_MAX);
            goto fail;
        }
        for (size_t i = 0; i < tl; i++) {
            unsigned char c = (unsigned char)t[i];
            if (word_is_space(c) || c == 0) {
                rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                    "%s:%zu: token contains %s (byte 0x%02x at column %zu), "
                                    "expected one token without whitespace per line",
                                    name, line + 1, c == 0 ? "a NUL byte" : "whitespace", c,
                                    i + 1);
                goto fail;
            }
        }
        t[tl] = '\0';
        int prev = word_lookup(w, t);
        if (prev >= 0) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s:%zu: duplicate token \"%.*s\" (first on line %d)", name,
                                line + 1, (int)(tl < 200 ? tl : 200), t, prev + 1);
            goto fail;
        }
        shput(w->map, t, (int)line);
        w->pieces[line] = t;
        w->piece_len[line] = tl;
        start = next;
    }
    tok->size = (int)lines;

    rc = word_special(w, "unk", tc->unk, name, &w->unk, err);
    if (rc == ATTN_OK && tc->has_bos) rc = word_special(w, "bos", tc->bos, name, &tok->bos, err);
    if (rc == ATTN_OK && tc->has_eos) rc = word_special(w, "eos", tc->eos, name, &tok->eos, err);
    if (rc != ATTN_OK) goto fail;

    tok->ops = &word_ops;
    tok->pieces = w->pieces;
    tok->impl = w;
    return ATTN_OK;

fail:
    word_free_impl(w);
    tok->impl = NULL;
    tok->size = 0;
    tok->bos = tok->eos = -1;
    return rc;
}
