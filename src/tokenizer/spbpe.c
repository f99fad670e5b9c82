/* SentencePiece-style BPE as Hugging Face's tokenizers runs it: the BPE
 * model of a Llama 1/2, TinyLlama or Mistral tokenizer.json (SentencePiece
 * converted to BPE). hf.c reads the file's parts and hands the vocabulary,
 * the merges and the options over in an attn_spbpe_spec (tokenizer.h).
 *
 * Encoding (the ids of Hugging Face's Tokenizer.encode with
 * add_special_tokens, tokenizers' models/bpe/model.rs):
 *   1. text that is not valid UTF-8 gets U+FFFD for each maximal ill-formed
 *      subpart (as the gpt2 type: tokenizers takes a Rust or JS string);
 *   2. the added tokens are matched whole, the longest first where several
 *      start at one place: the special ones (<s>, </s>, <unk>) only with
 *      ATTN_ENCODE_SPECIAL, the others unless ATTN_ENCODE_NO_SPECIAL; the
 *      stretches of text between them go on alone (an empty one gives no id);
 *   3. normalization of each stretch: "\u2581" put in front (normalizer
 *      Prepend; Metaspace: only when it does not start with one already, and
 *      with prepend_scheme "first" only for the stretch at offset 0), every
 *      space " " replaced by "\u2581";
 *   4. no pre-tokenization: the whole stretch is one word (Metaspace with
 *      split true: a new word before each "\u2581");
 *   5. the word as Unicode characters, each the vocabulary's token of it,
 *      else (byte_fallback) one token <0xNN> per UTF-8 byte, else the unk
 *      token (one for a run of them with fuse_unk), else nothing;
 *   6. merges by rank: repeatedly the adjacent pair of lowest rank, the
 *      leftmost on a tie, becomes its merged token. A heap of candidate
 *      pairs over a linked list of symbols: O(n log n) in the characters of
 *      a word, which is the whole text;
 *   7. the post-processor's special token before (BOS <s>) and after.
 * At most 6 ids per byte of text (3 for a space become "\u2581" in byte
 * fallback, 3 more for the "\u2581" put in front of a one-byte stretch),
 * plus the prefix and suffix.
 *
 * Decoding (the decoder Sequence [Replace "\u2581" -> " ", ByteFallback,
 * Fuse, Strip " " 1 0]): a token's text with "\u2581" as " ", a <0xNN> token
 * as its byte; the first token of a text (prev < 0 or prev = BOS) loses one
 * leading space, as Strip does to the fused text. Decoder Metaspace: "\u2581"
 * as " " but dropped in the first token, <0xNN> tokens as written. Labels
 * (pieces) are the tokens with "\u2581" as " " (<0xNN> as written).
 */
#include "tokenizer/tokenizer.h"

#include "base/bytes.h"
#include "base/json.h"
#include "model/limits.h"
#include "tokenizer/utf8.h"

#include <stdio.h>
#include <stdlib.h>

#define META "\xE2\x96\x81" /* U+2581, the SentencePiece space */
#define META_LEN 3
#define TOKEN_SHOWN 60

typedef struct sp_slot {
    uint64_t hash; /* FNV-1a of the token's bytes */
    int32_t id;    /* -1: empty */
} sp_slot;

typedef struct sp_pair {
    uint64_t key;   /* left id << 32 | right id; SP_EMPTY: empty */
    int32_t rank;   /* the merge's index in model.merges */
    int32_t merged; /* the id of left + right */
} sp_pair;
#define SP_EMPTY UINT64_MAX

typedef struct sp_impl {
    char *raw;            /* every token as written in the file, NUL-terminated */
    const char **tokens;  /* [size] into raw */
    uint32_t *token_len;  /* [size] */
    char *shown;          /* the labels, "\u2581" as " ", NUL-terminated */
    const char **pieces;  /* [size] into shown */
    int16_t *byte_of;     /* [size] the byte of a <0xNN> token, -1 for the others */
    sp_slot *vocab;       /* [vocab_mask + 1] open addressing, token -> id */
    size_t vocab_mask;
    sp_pair *pairs;       /* [pair_mask + 1] open addressing, (left, right) -> merge */
    size_t pair_mask;
    int byte_id[256];     /* the <0xNN> tokens, -1 when absent */
    bool starts[256];     /* the first bytes of the added tokens */
    int *match;           /* [n_match] added tokens, longest first */
    bool *match_special;  /* [n_match] */
    int n_match;
    int unk, prefix, suffix; /* -1 when none */
    attn_spbpe_spec opt;  /* the flags (its pointers are not kept) */
} sp_impl;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int sp_lookup(const sp_impl *p, const void *s, size_t n) {
    uint64_t h = attn_fnv1a(ATTN_FNV1A_INIT, s, n);
    for (size_t i = mix64(h) & p->vocab_mask;; i = (i + 1) & p->vocab_mask) {
        int id = p->vocab[i].id;
        if (id < 0) return -1;
        if (p->vocab[i].hash == h && p->token_len[id] == n && memcmp(p->tokens[id], s, n) == 0)
            return id;
    }
}

static const sp_pair *sp_pair_find(const sp_impl *p, int left, int right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = mix64(key) & p->pair_mask;; i = (i + 1) & p->pair_mask) {
        const sp_pair *q = &p->pairs[i];
        if (q->key == key) return q;
        if (q->key == SP_EMPTY) return NULL;
    }
}

/* ---- encoding ---- */

typedef struct sp_sym {
    int id;         /* -1 once merged into its left neighbour */
    int prev, next; /* indices, -1 at the ends */
} sp_sym;

typedef struct sp_cand {
    uint64_t key; /* rank << 32 | left symbol's index: the heap's order */
    int left_id, right_id, merged;
} sp_cand;

typedef struct sp_state {
    unsigned char *norm; /* the normalized stretch */
    size_t cap_norm;
    sp_sym *sym;
    size_t cap_sym;
    sp_cand *heap;
    size_t cap_heap;
    int *ids; /* the output */
    size_t n_ids, cap_ids;
} sp_state;

static int sp_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what,
                   attn_error *err) {
    if (need <= *cap) return ATTN_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2; /* need is bounded by a few times ATTN_TEXT_MAX */
    size_t bytes;
    void *q = attn_mul_size(c, elem, &bytes) ? realloc(*p, bytes) : NULL;
    if (!q) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for %s", what);
    *p = q;
    *cap = c;
    return ATTN_OK;
}

static void cand_push(sp_cand *h, size_t *n, sp_cand c) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].key > c.key) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static sp_cand cand_pop(sp_cand *h, size_t *n) {
    sp_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].key < h[c].key) c++;
        if (h[c].key >= last.key) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Pushes the pair starting at symbol `left` when it is a merge (the heap
 * grows as needed: it holds at most 3 entries a symbol, stale ones too). */
static int cand_add(const sp_impl *p, sp_state *st, size_t *hn, int left, attn_error *err) {
    if (left < 0 || st->sym[left].next < 0) return ATTN_OK;
    int l = st->sym[left].id, r = st->sym[st->sym[left].next].id;
    const sp_pair *q = sp_pair_find(p, l, r);
    if (!q) return ATTN_OK;
    int rc = sp_grow((void **)&st->heap, &st->cap_heap, *hn + 1, sizeof *st->heap,
                     "merge candidates", err);
    if (!rc)
        cand_push(st->heap, hn, (sp_cand){(uint64_t)q->rank << 32 | (uint32_t)left, l, r,
                                          q->merged});
    return rc;
}

/* BPE of the word w[0..n) (valid UTF-8, n >= 1): its ids appended to st->ids. */
static int sp_word(const sp_impl *p, sp_state *st, const unsigned char *w, size_t n,
                   attn_error *err) {
    /* at most one symbol per byte */
    int rc = sp_grow((void **)&st->sym, &st->cap_sym, n, sizeof *st->sym, "merge symbols", err);
    if (rc) return rc;
    sp_sym *sym = st->sym;
    int m = 0;
    bool unk_open = false; /* the last symbol is an unk that fuse_unk may extend */
    for (size_t i = 0; i < n;) {
        size_t g = attn_utf8_len(w + i, n - i, NULL);
        if (!g) g = 1; /* not reached: the text was made valid */
        int id = sp_lookup(p, w + i, g);
        if (id >= 0) {
            sym[m++].id = id;
            unk_open = false;
        } else if (p->opt.byte_fallback) { /* hf.c checked that all 256 are there */
            for (size_t j = 0; j < g; j++) sym[m++].id = p->byte_id[w[i + j]];
            unk_open = false;
        } else if (p->unk >= 0 && !(unk_open && p->opt.fuse_unk)) {
            sym[m++].id = p->unk;
            unk_open = true;
        }
        i += g;
    }
    for (int i = 0; i < m; i++) {
        sym[i].prev = i - 1;
        sym[i].next = i + 1 < m ? i + 1 : -1;
    }
    size_t hn = 0;
    for (int i = 0; !rc && i + 1 < m; i++) rc = cand_add(p, st, &hn, i, err);
    while (!rc && hn) {
        sp_cand c = cand_pop(st->heap, &hn);
        int left = (int)(uint32_t)c.key, right = sym[left].next;
        if (sym[left].id != c.left_id || right < 0 || sym[right].id != c.right_id)
            continue; /* stale: a symbol changed since the pair was pushed */
        sym[left].id = c.merged;
        sym[right].id = -1;
        sym[left].next = sym[right].next;
        if (sym[right].next >= 0) sym[sym[right].next].prev = left;
        rc = cand_add(p, st, &hn, sym[left].prev, err);
        if (!rc) rc = cand_add(p, st, &hn, left, err);
    }
    if (rc) return rc;
    if ((rc = sp_grow((void **)&st->ids, &st->cap_ids, st->n_ids + (size_t)m + 2,
                      sizeof *st->ids, "token ids", err)))
        return rc;
    for (int i = m ? 0 : -1; i >= 0; i = sym[i].next) st->ids[st->n_ids++] = sym[i].id;
    return ATTN_OK;
}

/* A stretch of text s[0..n) between added tokens, at offset `at` of the text. */
static int sp_stretch(const sp_impl *p, sp_state *st, const unsigned char *s, size_t n,
                      size_t at, attn_error *err) {
    if (n == 0) return ATTN_OK;
    const attn_spbpe_spec *o = &p->opt;
    bool front = o->prepend && (!o->prepend_first || at == 0);
    if (front && o->prepend_if_absent &&
        (s[0] == ' ' || (n >= META_LEN && memcmp(s, META, META_LEN) == 0)))
        front = false;
    /* at most 3 bytes per byte, and 3 in front */
    int rc = sp_grow((void **)&st->norm, &st->cap_norm, 3 * n + META_LEN, 1, "normalized text",
                     err);
    if (rc) return rc;
    size_t k = 0;
    if (front) memcpy(st->norm, META, META_LEN), k = META_LEN;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(st->norm + k, META, META_LEN);
            k += META_LEN;
        } else {
            st->norm[k++] = s[i];
        }
    }
    if (!o->split) return sp_word(p, st, st->norm, k, err);
    size_t from = 0; /* Metaspace split: "\u2581" begins each word but the first */
    for (size_t i = META_LEN; i + META_LEN <= k; i++) {
        if (memcmp(st->norm + i, META, META_LEN) != 0) continue;
        if ((rc = sp_word(p, st, st->norm + from, i - from, err))) return rc;
        from = i;
        i += META_LEN - 1;
    }
    return sp_word(p, st, st->norm + from, k - from, err);
}

/* The added token that starts at s[0..n) and may be matched, or -1. */
static int sp_match_at(const sp_impl *p, const unsigned char *s, size_t n, unsigned flags) {
    for (int j = 0; j < p->n_match; j++) {
        int id = p->match[j];
        if (p->match_special[j] && !(flags & ATTN_ENCODE_SPECIAL)) continue;
        size_t m = p->token_len[id];
        if (m <= n && memcmp(s, p->tokens[id], m) == 0) return id;
    }
    return -1;
}

static int sp_push(sp_state *st, int id, attn_error *err) {
    int rc = sp_grow((void **)&st->ids, &st->cap_ids, st->n_ids + 1, sizeof *st->ids,
                     "token ids", err);
    if (!rc) st->ids[st->n_ids++] = id;
    return rc;
}

static int sp_encode(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                     int **ids, size_t *n, attn_error *err) {
    const sp_impl *p = tok->impl;
    const unsigned char *s = (const unsigned char *)text;
    unsigned char *fixed = NULL;
    if (!attn_utf8_valid(s, len)) {
        if (!(fixed = attn_alloc_array(len, 3, "text", err))) return ATTN_ERR_NOMEM;
        len = attn_utf8_replace(s, len, fixed);
        s = fixed;
    }
    sp_state st = {0};
    int rc = p->prefix >= 0 ? sp_push(&st, p->prefix, err) : ATTN_OK;
    size_t from = 0;
    bool any = p->n_match > 0 && !(flags & ATTN_ENCODE_NO_SPECIAL);
    for (size_t i = 0; !rc && any && i < len; i++) {
        int id;
        if (!p->starts[s[i]]) continue;
        if ((id = sp_match_at(p, s + i, len - i, flags)) < 0) continue;
        rc = sp_stretch(p, &st, s + from, i - from, from, err);
        if (rc || (rc = sp_push(&st, id, err))) break;
        i += p->token_len[id] - 1;
        from = i + 1;
    }
    if (!rc) rc = sp_stretch(p, &st, s + from, len - from, from, err);
    if (!rc && p->suffix >= 0) rc = sp_push(&st, p->suffix, err);
    free(fixed);
    free(st.norm);
    free(st.sym);
    free(st.heap);
    if (rc) {
        free(st.ids);
        return rc;
    }
    *ids = st.ids ? st.ids : malloc(sizeof(int));
    if (!*ids) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for token ids");
    *n = st.n_ids;
    return ATTN_OK;
}

/* ---- decoding ---- */

static size_t sp_decode(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    const sp_impl *p = tok->impl;
    bool first = (prev < 0 || prev == p->prefix) && p->opt.decode_strip;
    if (!p->opt.decode_metaspace && p->byte_of[id] >= 0) {
        char b = (char)p->byte_of[id];
        return attn_tokenizer_write2(buf, cap, &b, first && b == ' ' ? 0 : 1, "", 0);
    }
    if (!p->opt.decode_metaspace) {
        const char *t = p->pieces[id];
        if (first && t[0] == ' ') t++;
        return attn_tokenizer_write2(buf, cap, t, strlen(t), "", 0);
    }
    /* Metaspace: every "\u2581" of the first token dropped, the others " " */
    const char *t = p->tokens[id];
    size_t n = p->token_len[id], w = 0;
    for (size_t i = 0; i < n && w + 1 < cap;) {
        if (n - i >= META_LEN && memcmp(t + i, META, META_LEN) == 0) {
            if (!first) buf[w++] = ' ';
            i += META_LEN;
        } else {
            buf[w++] = t[i++];
        }
    }
    buf[w] = '\0';
    return w;
}

static void sp_free_impl(sp_impl *p) {
    if (!p) return;
    free(p->raw);
    free(p->tokens);
    free(p->token_len);
    free(p->shown);
    free(p->pieces);
    free(p->byte_of);
    free(p->vocab);
    free(p->pairs);
    free(p->match);
    free(p->match_special);
    free(p);
}

static void sp_destroy(attn_tokenizer *tok) {
    sp_free_impl(tok->impl);
    tok->impl = NULL;
}

static const attn_tokenizer_ops sp_ops = {
    .encode = sp_encode,
    .decode = sp_decode,
    .destroy = sp_destroy,
};

/* ---- building ---- */

static int hexdigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int sp_vocab(sp_impl *p, const cJSON *v, const char *name, size_t *count,
                    attn_error *err) {
    if (!cJSON_IsObject(v))
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: model.vocab: %s", name,
                              v ? "expected an object (token -> id)" : "missing");
    size_t n = 0, bytes = 0;
    for (const cJSON *e = v->child; e; e = e->next, n++) {
        const char *key = e->string ? e->string : "";
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (n >= (size_t)ATTN_VOCAB_MAX)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: more than the limit of %d tokens", name,
                                  ATTN_VOCAB_MAX);
        if (!(d >= 0 && d < ATTN_VOCAB_MAX) || d != (double)(int)d)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: token \"%.*s\" (entry %zu): expected an "
                                  "integer id in 0..%d, got %s",
                                  name, TOKEN_SHOWN, key, n, ATTN_VOCAB_MAX - 1,
                                  cJSON_IsNumber(e) ? "another number"
                                                    : attn_json_type(e, false));
        size_t kl = strlen(key);
        if (kl == 0 || kl > ATTN_TOKEN_BYTES_MAX)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: entry %zu (id %d): a token has 1..%d "
                                  "bytes, this one %zu",
                                  name, n, (int)d, ATTN_TOKEN_BYTES_MAX, kl);
        bytes += kl + 1; /* bounded by the file's size */
    }
    if (n == 0)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: model.vocab: the object has no tokens",
                              name);
    p->raw = attn_alloc_array(bytes, 1, "tokenizer vocabulary", err);
    p->shown = attn_alloc_array(bytes, 1, "tokenizer vocabulary", err);
    p->tokens = attn_calloc_array(n, sizeof *p->tokens, "tokenizer vocabulary", err);
    p->pieces = attn_calloc_array(n, sizeof *p->pieces, "tokenizer vocabulary", err);
    p->token_len = attn_alloc_array(n, sizeof *p->token_len, "tokenizer vocabulary", err);
    p->byte_of = attn_alloc_array(n, sizeof *p->byte_of, "tokenizer vocabulary", err);
    p->vocab_mask = attn_table_size(n) - 1;
    p->vocab = attn_alloc_array(p->vocab_mask + 1, sizeof *p->vocab, "tokenizer vocabulary", err);
    if (!p->raw || !p->shown || !p->tokens || !p->pieces || !p->token_len || !p->byte_of ||
        !p->vocab)
        return ATTN_ERR_NOMEM;
    for (size_t i = 0; i <= p->vocab_mask; i++) p->vocab[i] = (sp_slot){0, -1};
    size_t t = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        int id = (int)e->valuedouble;
        const char *key = e->string;
        size_t kl = strlen(key);
        if ((size_t)id >= n)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: token \"%.*s\" has id %d, but there are %zu "
                                  "tokens (ids run from 0 to %zu)",
                                  name, TOKEN_SHOWN, key, id, n, n - 1);
        if (p->tokens[id])
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: id %d is given to two tokens (\"%.*s\" and "
                                  "\"%.*s\")",
                                  name, id, TOKEN_SHOWN, key, TOKEN_SHOWN, p->tokens[id]);
        int other = sp_lookup(p, key, kl);
        if (other >= 0)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: model.vocab: token \"%.*s\" is listed twice (ids %d and "
                                  "%d)",
                                  name, TOKEN_SHOWN, key, other, id);
        memcpy(p->raw + t, key, kl + 1);
        p->tokens[id] = p->raw + t;
        p->token_len[id] = (uint32_t)kl;
        /* the label: "\u2581" as " " (never longer) */
        size_t w = 0;
        for (size_t i = 0; i < kl;) {
            if (kl - i >= META_LEN && memcmp(key + i, META, META_LEN) == 0) {
                p->shown[t + w++] = ' ';
                i += META_LEN;
            } else {
                p->shown[t + w++] = key[i++];
            }
        }
        p->shown[t + w] = '\0';
        p->pieces[id] = p->shown + t;
        int hi = kl == 6 && memcmp(key, "<0x", 3) == 0 && key[5] == '>' ? hexdigit(key[3]) : -1;
        int lo = hi >= 0 ? hexdigit(key[4]) : -1;
        p->byte_of[id] = (int16_t)(lo >= 0 ? hi * 16 + lo : -1);
        uint64_t h = attn_fnv1a(ATTN_FNV1A_INIT, key, kl);
        size_t i = mix64(h) & p->vocab_mask;
        while (p->vocab[i].id >= 0) i = (i + 1) & p->vocab_mask;
        p->vocab[i] = (sp_slot){h, id};
        t += kl + 1;
    }
    *count = n;
    return ATTN_OK;
}

static int sp_merges(sp_impl *p, const cJSON *m, const char *name, attn_error *err) {
    if (!cJSON_IsArray(m))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: model.merges: expected an array of \"A B\" strings or [A, B] "
                              "pairs",
                              name);
    size_t count = (size_t)cJSON_GetArraySize(m);
    if (count > (size_t)ATTN_VOCAB_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: model.merges: more than the limit of %d merges", name,
                              ATTN_VOCAB_MAX);
    p->pair_mask = attn_table_size(count) - 1;
    p->pairs = attn_alloc_array(p->pair_mask + 1, sizeof *p->pairs, "tokenizer merges", err);
    if (!p->pairs) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i <= p->pair_mask; i++) p->pairs[i].key = SP_EMPTY;
    char *both = NULL; /* A then B, for the merged token's lookup */
    size_t cap = 0;
    int rc = ATTN_OK;
    int32_t rank = 0;
    for (const cJSON *e = m->child; e; e = e->next, rank++) {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && sp != e->valuestring && sp[1] && !strchr(sp + 1, ' ')) {
                a = e->valuestring, na = (size_t)(sp - a);
                b = sp + 1, nb = strlen(b);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next) && e->child->valuestring[0] &&
                   e->child->next->valuestring[0]) {
            a = e->child->valuestring, na = strlen(a);
            b = e->child->next->valuestring, nb = strlen(b);
        }
        if (!a) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: model.merges[%d]: expected a string \"A B\" (two tokens, "
                                "one space) or a pair [\"A\", \"B\"]",
                                name, (int)rank);
            break;
        }
        if ((rc = sp_grow((void **)&both, &cap, na + nb, 1, "tokenizer merges", err))) break;
        memcpy(both, a, na);
        memcpy(both + na, b, nb);
        int ia = sp_lookup(p, a, na), ib = sp_lookup(p, b, nb), im = sp_lookup(p, both, na + nb);
        if (ia < 0 || ib < 0 || im < 0) {
            const char *what = ia < 0 ? a : ib < 0 ? b : both;
            int shown = (int)(ia < 0 ? na : ib < 0 ? nb : na + nb);
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: model.merges[%d]: %s \"%.*s\" is not in model.vocab", name,
                                (int)rank, ia < 0 || ib < 0 ? "the token" : "the merged token",
                                shown < TOKEN_SHOWN ? shown : TOKEN_SHOWN, what);
            break;
        }
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        size_t i = mix64(key) & p->pair_mask;
        for (; p->pairs[i].key != SP_EMPTY && p->pairs[i].key != key; i = (i + 1) & p->pair_mask)
            ;
        if (p->pairs[i].key == key) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: model.merges[%d]: the pair is already model.merges[%d]",
                                name, (int)rank, (int)p->pairs[i].rank);
            break;
        }
        p->pairs[i] = (sp_pair){key, rank, im};
    }
    free(both);
    return rc;
}

/* The added tokens to match in the text, longest first. */
static int sp_added(sp_impl *p, const cJSON *a, attn_error *err) {
    int k = a ? cJSON_GetArraySize(a) : 0;
    if (k <= 0) return ATTN_OK;
    p->match = attn_alloc_array((size_t)k, sizeof *p->match, "added tokens", err);
    p->match_special = attn_alloc_array((size_t)k, sizeof *p->match_special, "added tokens", err);
    if (!p->match || !p->match_special) return ATTN_ERR_NOMEM;
    for (const cJSON *e = a->child; e; e = e->next) {
        int id = (int)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble; /* hf.c checked */
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        int j = p->n_match++;
        while (j > 0 && p->token_len[p->match[j - 1]] < p->token_len[id]) {
            p->match[j] = p->match[j - 1];
            p->match_special[j] = p->match_special[j - 1];
            j--;
        }
        p->match[j] = id;
        p->match_special[j] = special;
        p->starts[(unsigned char)p->tokens[id][0]] = true;
    }
    return ATTN_OK;
}

int attn_tokenizer_spbpe_build(attn_tokenizer *tok, const attn_spbpe_spec *spec,
                               const char *name, attn_error *err) {
    sp_impl *p = attn_calloc_array(1, sizeof *p, "tokenizer", err);
    if (!p) return ATTN_ERR_NOMEM;
    p->opt = *spec;
    p->opt.vocab = p->opt.merges = p->opt.added = NULL;
    p->opt.unk = p->opt.prefix = p->opt.suffix = NULL;
    p->unk = p->prefix = p->suffix = -1;
    size_t n = 0;
    int rc = sp_vocab(p, spec->vocab, name, &n, err);
    if (!rc) rc = sp_merges(p, spec->merges, name, err);
    for (unsigned b = 0; !rc && b < 256; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        p->byte_id[b] = sp_lookup(p, t, 6);
        if (p->byte_id[b] < 0 && spec->byte_fallback)
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: model.byte_fallback: true, but model.vocab has no token "
                                "\"%s\" (attn reads a byte fallback with all 256 <0xNN> tokens)",
                                name, t);
    }
    const char *const names[3] = {spec->unk, spec->prefix, spec->suffix};
    int *const ids[3] = {&p->unk, &p->prefix, &p->suffix};
    static const char *const where[3] = {"model.unk_token", "post_processor.single",
                                         "post_processor.single"};
    for (int i = 0; !rc && i < 3; i++) {
        if (!names[i]) continue;
        if ((*ids[i] = sp_lookup(p, names[i], strlen(names[i]))) < 0)
            rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: %s: \"%.*s\" is not in model.vocab",
                                name, where[i], TOKEN_SHOWN, names[i]);
    }
    if (!rc) rc = sp_added(p, spec->added, err);
    if (rc) {
        sp_free_impl(p);
        return rc;
    }
    tok->ops = &sp_ops;
    tok->size = (int)n;
    tok->bos = p->prefix;
    tok->eos = sp_lookup(p, "</s>", 4);
    tok->pieces = p->pieces;
    tok->impl = p;
    return ATTN_OK;
}
