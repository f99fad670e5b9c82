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
 * unk; bos / eos, when configured, are added first / last (eos not when the
 * config says "add_eos": false).
 *
 * Special tokens (unless "special_tokens": false, or ATTN_ENCODE_NO_SPECIAL):
 * every vocabulary entry written <...> (at least one byte inside, none of
 * them '<', '>') and every token the config lists in "special" is matched
 * whole, before the rules above, wherever it starts: also glued to a word
 * ("the<mask>" is "the" "<mask>") or inside one (a listed "[MASK]" in
 * "a[MASK]b" gives "a" "[MASK]" "b"). Matching is on the bytes as written
 * (not lowercased); where several match at one position the longest wins.
 * A <...> text that is no vocabulary entry ("<cat>") is split as usual.
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
    bool add_eos;       /* append eos (when there is one) */
    int unk;
    /* special tokens; special false: none */
    bool special;
    size_t angle_max;   /* the longest <...> entry in bytes; 0: none */
    int *listed;        /* [n_listed] ids of the config's "special" tokens, longest first */
    int n_listed;
    unsigned char first[32]; /* bit set: the first bytes of the listed tokens */
} word_impl;

static bool word_is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static bool word_is_punct(unsigned char c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

static bool word_is_angle_inner(unsigned char c) {
    return c != '<' && c != '>' && c != 0 && !word_is_space(c);
}

/* Is the token t[len] written <...>? */
static bool word_is_angle(const char *t, size_t len) {
    if (len < 3 || t[0] != '<' || t[len - 1] != '>') return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!word_is_angle_inner((unsigned char)t[i])) return false;
    return true;
}

static bool word_first_has(const word_impl *w, unsigned char c) {
    return (w->first[c >> 3] >> (c & 7)) & 1;
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
    free(w->listed);
    free(w->text);
    free(w->pieces);
    free(w->piece_len);
    free(w);
}

static void word_destroy(attn_tokenizer *tok) {
    word_free_impl(tok->impl);
    tok->impl = NULL;
}

/* The longest special token that starts at text[i] (i < len): its length,
 * its id in *id; 0 when none does. key: angle_max + 1 bytes of scratch. */
static size_t word_special_at(const word_impl *w, const char *text, size_t len, size_t i,
                              char *key, int *id) {
    size_t best = 0;
    if (text[i] == '<' && w->angle_max) {
        /* the one <...> that starts here, if the vocabulary has it */
        size_t j = i + 1;
        while (j < len && j - i < w->angle_max && word_is_angle_inner((unsigned char)text[j])) j++;
        if (j < len && j - i < w->angle_max && text[j] == '>' && j > i + 1) {
            size_t kl = j + 1 - i;
            memcpy(key, text + i, kl);
            key[kl] = '\0';
            int found = word_lookup(w, key);
            if (found >= 0) {
                best = kl;
                *id = found;
            }
        }
    }
    if (w->n_listed && word_first_has(w, (unsigned char)text[i])) {
        for (int s = 0; s < w->n_listed; s++) {
            const int t = w->listed[s];
            const size_t tl = w->piece_len[t];
            if (tl <= best) break; /* longest first: no longer one follows */
            if (tl <= len - i && memcmp(text + i, w->pieces[t], tl) == 0) {
                best = tl;
                *id = t;
                break;
            }
        }
    }
    return best;
}

static int word_encode(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                       int **ids, size_t *n, attn_error *err) {
    const word_impl *w = tok->impl;
    const bool special = w->special && !(flags & ATTN_ENCODE_NO_SPECIAL);
    /* at most one id per byte, plus bos and eos */
    size_t cap;
    if (!attn_add_size(len, 2, &cap))
        return attn_error_set(err, ATTN_ERR_NOMEM, "text of %zu bytes is too long to encode", len);
    int *out = attn_alloc_array(cap, sizeof *out, "token ids", err);
    if (!out) return ATTN_ERR_NOMEM;
    char *word = attn_alloc_array(len + 1, 1, "word buffer", err);
    char *key = special ? attn_alloc_array(w->angle_max + 1, 1, "word buffer", err) : NULL;
    if (!word || (special && !key)) {
        free(out);
        free(word);
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
        int sid;
        size_t sl = special ? word_special_at(w, text, len, i, key, &sid) : 0;
        if (sl) {
            out[k++] = sid;
            i += sl;
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
            if (special && j > i && word_first_has(w, d) && word_special_at(w, text, len, j, key, &sid))
                break; /* a listed special token starts inside the word */
            if (d == 0) has_nul = true;
            word[j - i] = (char)(w->lowercase && d >= 'A' && d <= 'Z' ? d - 'A' + 'a' : d);
            j++;
        }
        word[j - i] = '\0';
        int id = has_nul ? -1 : word_lookup(w, word);
        out[k++] = id >= 0 ? id : w->unk;
        i = j;
    }
    if (tok->eos >= 0 && w->add_eos) out[k++] = tok->eos;
    free(word);
    free(key);
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

/* The config's "special" tokens, each of which must be in the vocabulary,
 * into w->listed: the longest first (insertion sort: at most
 * ATTN_SPECIAL_MAX), a token listed twice once. */
static int word_listed(word_impl *w, const attn_tokenizer_config *tc, const char *name,
                       attn_error *err) {
    if (tc->n_special < 0 || tc->n_special > ATTN_SPECIAL_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: %d special tokens, at most %d", name,
                              tc->n_special, ATTN_SPECIAL_MAX);
    if (tc->n_special == 0) return ATTN_OK;
    w->listed = attn_alloc_array((size_t)tc->n_special, sizeof *w->listed, "special tokens", err);
    if (!w->listed) return ATTN_ERR_NOMEM;
    for (int s = 0; s < tc->n_special; s++) {
        int id;
        int rc = word_special(w, "special", tc->special[s], name, &id, err);
        if (rc) return rc;
        bool dup = false;
        for (int o = 0; o < w->n_listed && !dup; o++) dup = w->listed[o] == id;
        if (dup) continue;
        int at = w->n_listed++;
        while (at > 0 && w->piece_len[w->listed[at - 1]] < w->piece_len[id]) {
            w->listed[at] = w->listed[at - 1];
            at--;
        }
        w->listed[at] = id;
        const unsigned char c = (unsigned char)w->pieces[id][0];
        w->first[c >> 3] |= (unsigned char)(1u << (c & 7));
    }
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
        if (tl > w->angle_max && word_is_angle(t, tl)) w->angle_max = tl;
        start = next;
    }
    tok->size = (int)lines;

    rc = word_special(w, "unk", tc->unk, name, &w->unk, err);
    if (rc == ATTN_OK && tc->has_bos) rc = word_special(w, "bos", tc->bos, name, &tok->bos, err);
    if (rc == ATTN_OK && tc->has_eos) rc = word_special(w, "eos", tc->eos, name, &tok->eos, err);
    if (rc == ATTN_OK) rc = word_listed(w, tc, name, err);
    if (rc != ATTN_OK) goto fail;
    w->add_eos = !tc->eos_not_added;
    w->special = !tc->special_off;

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
