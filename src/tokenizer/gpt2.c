/* GPT-2's byte-level BPE tokenizer (openai/gpt-2 encoder.py), from the
 * vocab.json and merges.txt of GPT-2 checkpoints (encoder.json and vocab.bpe
 * in older copies: the same formats).
 *
 * Files:
 *   vocab.json  a JSON object: token -> id. Tokens are written in GPT-2's
 *               byte alphabet (bytes_to_unicode: the printable bytes ! .. ~,
 *               ¡ .. ¬, ® .. ÿ stand for themselves, the 68 others for
 *               U+0100 .. U+0143 in byte order, so " the" is "Ġthe"). Refused:
 *               not an object, an id that is not an integer in 0..ATTN_VOCAB_MAX-1,
 *               two tokens with one id, a gap in the ids (they run 0..n-1), a
 *               token listed twice, an empty token, a character outside the
 *               byte alphabet, a byte of the 256 with no token of its own.
 *   merges.txt  one merge "A B" a line (two tokens of the byte alphabet, one
 *               space between), the line's position is its rank (first =
 *               merged first); a first line starting "#version" is skipped;
 *               lines end in \n (or \r\n), the last may lack it. Refused: an
 *               empty line, anything but two tokens and one space, a token or
 *               the merged pair that is not in vocab.json, a pair listed twice.
 *   Every message names the file and the line (merges.txt), the line and column
 *   (malformed JSON) or the token and its id (vocab.json).
 *
 * Encoding (the same ids as encoder.py):
 *   1. text that is not valid UTF-8 gets U+FFFD for each maximal ill-formed
 *      subpart, as Python's decode(errors="replace") and the WHATWG decoder
 *      (Node's TextDecoder) do; such a text does not decode back to its bytes;
 *   2. with ATTN_ENCODE_SPECIAL, every vocabulary token written <|...|>
 *      ("<|endoftext|>") is matched whole first (the longest where several
 *      start at one place); otherwise it is text like any other;
 *   3. pre-tokenization by GPT-2's pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      run by PCRE2 (JIT-compiled when the platform has it), with \p{L} and
 *      \p{N} from PCRE2's Unicode tables and \s the Unicode White_Space
 *      property, as in Python's `regex` module that GPT-2 uses (also
 *      Hugging Face's tokenizers and tiktoken): U+0009..U+000D, U+0020,
 *      U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
 *      U+205F, U+3000. (JavaScript's \s differs: it has U+FEFF and lacks
 *      U+0085.) A match in ASCII text is cut by a hand-written path
 *      without PCRE2 (ascii_match; encode_plain says when that is exact);
 *   4. each piece's bytes, one symbol per byte, merged by BPE: repeatedly
 *      the adjacent pair of lowest rank (the leftmost on a tie) becomes the
 *      merged token. This is encoder.py's loop (which merges every
 *      occurrence of the best pair left to right before looking again): a
 *      pair a merge creates contains the new token, so it is never the pair
 *      being merged. A heap of candidate pairs keeps it O(n log n) for long
 *      pieces. The ids of each piece (of at most CACHE_WORD_MAX bytes) are
 *      kept in a cache from call to call, as encoder.py's is, bounded
 *      (emptied when full) and taken under a lock: calls on one tokenizer
 *      from several threads are safe and run one at a time.
 * At most one id per byte of the text after step 1 (3 bytes per replaced byte).
 *
 * Decoding gives each token's bytes; pieces (the labels) are those bytes,
 * NUL-terminated (the token of byte 0 reads as ""). eos is <|endoftext|>
 * when the vocabulary has it (it ends generation; encoding never adds it);
 * there is no bos.
 */
#include "tokenizer/tokenizer.h"

#ifndef ATTN_HAVE_PCRE2

int attn_tokenizer_gpt2_build(attn_tokenizer *tok, const char *vocab, size_t vocab_len,
                              const char *vocab_name, const char *merges, size_t merges_len,
                              const char *merges_name, attn_error *err) {
    (void)tok, (void)vocab, (void)vocab_len, (void)merges, (void)merges_len, (void)merges_name;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: tokenizer type \"gpt2\" is not built in (attn was built without "
                          "PCRE2: install libpcre2-dev and rebuild)",
                          vocab_name);
}

#else

#define PCRE2_CODE_UNIT_WIDTH 8
#include "base/bytes.h"
#include "base/json.h"
#include "model/limits.h"
#include "tokenizer/utf8.h"

#include <limits.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>

#define CACHE_WORD_MAX 128 /* longer pieces are merged every time */
#define CACHE_PIECES_MAX (1u << 16)
#define CACHE_BYTES_MAX (4u << 20)

/* ---- GPT-2's byte alphabet ---- */

/* The code point that stands for byte b (bytes_to_unicode). */
static uint32_t byte_char(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
    unsigned n = 0; /* the others in byte order from U+0100 */
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return 0x100 + n;
}

/* Converts a token in the byte alphabet (UTF-8, len bytes) into bytes, out
 * having room for len bytes; returns the count, or -1 and *bad (the code
 * point at fault, or 0xFFFFFFFF for bad UTF-8). */
static long alphabet_bytes(const int16_t *char_byte, const char *s, size_t len,
                           unsigned char *out, uint32_t *bad) {
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t g = attn_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!g) {
            *bad = 0xFFFFFFFFu;
            return -1;
        }
        if (cp >= 0x144 || char_byte[cp] < 0) {
            *bad = cp;
            return -1;
        }
        out[k++] = (unsigned char)char_byte[cp];
        i += g;
    }
    return (long)k;
}

/* ---- the tokenizer ---- */

typedef struct vocab_slot {
    uint64_t hash; /* FNV-1a of the token's bytes */
    int32_t id;    /* -1: empty */
} vocab_slot;

typedef struct pair_slot {
    uint64_t key;   /* left id << 32 | right id; PAIR_EMPTY: empty */
    int32_t rank;   /* the merge's line among the merges, from 0 */
    int32_t merged; /* the id of left + right */
} pair_slot;
#define PAIR_EMPTY UINT64_MAX

typedef struct gpt2_impl {
    char *text;            /* every token's bytes, each NUL-terminated */
    const char **pieces;   /* [size] into text */
    uint32_t *piece_len;   /* [size] */
    vocab_slot *vocab;     /* [vocab_mask + 1] open addressing, bytes -> id */
    size_t vocab_mask;
    pair_slot *pairs;      /* [pair_mask + 1] open addressing, (left, right) -> merge */
    size_t pair_mask;
    int byte_id[256];      /* the token of each byte alone */
    int *special;          /* [n_special] ids of the <|...|> tokens, longest first */
    int n_special;
    pcre2_code *re;        /* GPT-2's pattern, anchored */
    unsigned char ascii_class[128]; /* C_L, C_N, C_S or C_O of each ASCII byte */
    /* what encoding keeps from call to call: the cache of pieces, scratch,
     * the pattern's match data; taken under lock, one call at a time */
    pthread_mutex_t lock;
    struct encode_state *state;
    pcre2_match_data *md;
} gpt2_impl;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int vocab_find(const gpt2_impl *g, const void *s, size_t n, uint64_t h) {
    for (size_t i = mix64(h) & g->vocab_mask;; i = (i + 1) & g->vocab_mask) {
        int id = g->vocab[i].id;
        if (id < 0) return -1;
        if (g->vocab[i].hash == h && g->piece_len[id] == n && memcmp(g->pieces[id], s, n) == 0)
            return id;
    }
}

static int vocab_lookup(const gpt2_impl *g, const void *s, size_t n) {
    return vocab_find(g, s, n, attn_fnv1a(ATTN_FNV1A_INIT, s, n));
}

static const pair_slot *pair_find(const gpt2_impl *g, int left, int right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = mix64(key) & g->pair_mask;; i = (i + 1) & g->pair_mask) {
        const pair_slot *p = &g->pairs[i];
        if (p->key == key) return p;
        if (p->key == PAIR_EMPTY) return NULL;
    }
}

/* ---- BPE of one piece ---- */

typedef struct bpe_sym {
    int id;         /* -1 once merged into its left neighbour */
    int prev, next; /* indices, -1 at the ends */
} bpe_sym;

typedef struct bpe_cand {
    uint64_t key; /* rank << 32 | left symbol's index: the heap's order */
    int left_id, right_id, merged;
} bpe_cand;

/* What encoding keeps between calls (gpt2_impl.state, under its lock). */
typedef struct encode_state {
    bpe_sym *sym;
    bpe_cand *heap;
    size_t cap; /* symbols sym[] and heap[] (3 * cap) have room for */
    /* the cache: open addressing over the pieces seen so far, emptied when it
     * holds CACHE_PIECES_MAX pieces or CACHE_BYTES_MAX bytes of their text
     * (and as many ids at most): constant memory over any number of calls,
     * a batch of a million lines */
    struct cache_slot {
        uint64_t hash;
        uint32_t off, len;   /* the piece's bytes in bytes[] */
        uint32_t ids, n_ids; /* its ids in ids[] */
    } *slots;                /* [mask + 1]; len == 0: empty */
    size_t mask, used;
    unsigned char *bytes;
    size_t n_bytes, cap_bytes;
    int *ids;
    size_t n_ids, cap_ids;
} encode_state;

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].key > c.key) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
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

static void push_pair(const gpt2_impl *g, const bpe_sym *sym, int left, bpe_cand *heap,
                      size_t *hn) {
    if (left < 0 || sym[left].next < 0) return;
    int l = sym[left].id, r = sym[sym[left].next].id;
    const pair_slot *p = pair_find(g, l, r);
    if (p) heap_push(heap, hn, (bpe_cand){(uint64_t)p->rank << 32 | (uint32_t)left, l, r, p->merged});
}

static int state_reserve(encode_state *st, size_t n, attn_error *err) {
    if (n <= st->cap) return ATTN_OK;
    size_t cap = st->cap ? st->cap : 64;
    while (cap < n) cap *= 2; /* n <= 3 * ATTN_TEXT_MAX: no overflow */
    bpe_sym *s = attn_alloc_array(cap, sizeof *s, "merge symbols", err);
    bpe_cand *h = s ? attn_alloc_array(cap, 3 * sizeof *h, "merge candidates", err) : NULL;
    if (!h) {
        free(s);
        return ATTN_ERR_NOMEM;
    }
    free(st->sym);
    free(st->heap);
    st->sym = s;
    st->heap = h;
    st->cap = cap;
    return ATTN_OK;
}

/* BPE of the piece w[0..n) (n >= 1): its ids appended at out, their count
 * returned in *k. */
static int bpe_piece(const gpt2_impl *g, encode_state *st, const unsigned char *w, size_t n,
                     int *out, size_t *k, attn_error *err) {
    if (n == 1) {
        out[0] = g->byte_id[w[0]];
        *k = 1;
        return ATTN_OK;
    }
    int rc = state_reserve(st, n, err);
    if (rc) return rc;
    bpe_sym *sym = st->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = (bpe_sym){g->byte_id[w[i]], (int)i - 1, i + 1 < n ? (int)i + 1 : -1};
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(g, sym, (int)i, st->heap, &hn);
    while (hn) {
        bpe_cand c = heap_pop(st->heap, &hn);
        int left = (int)(uint32_t)c.key;
        int right = sym[left].next;
        if (sym[left].id != c.left_id || right < 0 || sym[right].id != c.right_id)
            continue; /* stale: a symbol changed since it was pushed */
        sym[left].id = c.merged;
        sym[right].id = -1;
        sym[left].next = sym[right].next;
        if (sym[right].next >= 0) sym[sym[right].next].prev = left;
        push_pair(g, sym, sym[left].prev, st->heap, &hn);
        push_pair(g, sym, left, st->heap, &hn);
    }
    size_t m = 0;
    for (int i = 0; i >= 0; i = sym[i].next) out[m++] = sym[i].id;
    *k = m;
    return ATTN_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what,
                attn_error *err) {
    if (need <= *cap) return ATTN_OK;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = NULL;
    size_t bytes;
    if (attn_mul_size(c, elem, &bytes)) q = realloc(*p, bytes);
    if (!q) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for %s", what);
    *p = q;
    *cap = c;
    return ATTN_OK;
}

/* Doubles the cache's table. */
static int cache_rehash(encode_state *st, attn_error *err) {
    size_t cap = st->mask ? 2 * (st->mask + 1) : 256;
    struct cache_slot *s = attn_calloc_array(cap, sizeof *s, "piece cache", err);
    if (!s) return ATTN_ERR_NOMEM;
    for (size_t i = 0; st->mask && i <= st->mask; i++) {
        if (!st->slots[i].len) continue;
        size_t j = mix64(st->slots[i].hash) & (cap - 1);
        while (s[j].len) j = (j + 1) & (cap - 1);
        s[j] = st->slots[i];
    }
    free(st->slots);
    st->slots = s;
    st->mask = cap - 1;
    return ATTN_OK;
}

/* The ids of piece w[0..n) appended at out (*k of them), through the cache. */
static int encode_piece(const gpt2_impl *g, encode_state *st, const unsigned char *w, size_t n,
                        int *out, size_t *k, attn_error *err) {
    if (n > CACHE_WORD_MAX) return bpe_piece(g, st, w, n, out, k, err);
    uint64_t h = attn_fnv1a(ATTN_FNV1A_INIT, w, n);
    size_t i = 0;
    if (st->mask) {
        for (i = mix64(h) & st->mask; st->slots[i].len; i = (i + 1) & st->mask) {
            const struct cache_slot *s = &st->slots[i];
            if (s->hash == h && s->len == n && memcmp(st->bytes + s->off, w, n) == 0) {
                memcpy(out, st->ids + s->ids, s->n_ids * sizeof *out);
                *k = s->n_ids;
                return ATTN_OK;
            }
        }
    }
    int rc = bpe_piece(g, st, w, n, out, k, err);
    if (rc) return rc;
    /* full: start again (a piece has at most one id per byte, so the ids
     * stay within the bytes' count too) */
    if (st->used >= CACHE_PIECES_MAX || st->n_bytes + n > CACHE_BYTES_MAX) {
        for (size_t j = 0; j <= st->mask; j++) st->slots[j].len = 0;
        st->used = st->n_bytes = st->n_ids = 0;
        i = mix64(h) & st->mask; /* every slot is empty now */
    }
    if (2 * (st->used + 1) > st->mask + 1) {
        if ((rc = cache_rehash(st, err))) return rc;
        for (i = mix64(h) & st->mask; st->slots[i].len; i = (i + 1) & st->mask) {
        }
    }
    if ((rc = grow((void **)&st->bytes, &st->cap_bytes, st->n_bytes + n, 1, "piece cache", err)) ||
        (rc = grow((void **)&st->ids, &st->cap_ids, st->n_ids + *k, sizeof *st->ids,
                   "piece cache", err)))
        return rc;
    st->slots[i] = (struct cache_slot){h, (uint32_t)st->n_bytes, (uint32_t)n,
                                       (uint32_t)st->n_ids, (uint32_t)*k};
    memcpy(st->bytes + st->n_bytes, w, n);
    memcpy(st->ids + st->n_ids, out, *k * sizeof *out);
    st->n_bytes += n;
    st->n_ids += *k;
    st->used++;
    return ATTN_OK;
}

/* ---- pre-tokenization ---- */

/* \s: the Unicode White_Space property (see the top of the file) */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS
    "])|[" WS "]+";

/* ASCII classes of the pattern */
enum { C_L = 1, C_N = 2, C_S = 3, C_O = 4 };
static unsigned char ascii_class(unsigned c) {
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return C_L;
    if (c >= '0' && c <= '9') return C_N;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return C_S;
    return C_O;
}

/* The end of the pattern's match at s[p] in an all-ASCII s[0..n) (p < n):
 * the alternatives in their order. */
static size_t ascii_match(const unsigned char *s, size_t n, size_t p, const unsigned char *cls) {
    unsigned c = s[p];
    if (c == '\'' && p + 1 < n) {
        unsigned a = s[p + 1], b = p + 2 < n ? s[p + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return p + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return p + 3;
    }
    size_t q = p;
    if (c == ' ' && p + 1 < n && cls[s[p + 1]] != C_S) q = p + 1; /* " ?" before a run */
    unsigned k = cls[s[q]];
    if (k != C_S) { /* ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` */
        while (q < n && cls[s[q]] == k) q++;
        return q;
    }
    while (q < n && cls[s[q]] == C_S) q++; /* \s+ */
    if (q == n || q - p == 1) return q;    /* \s+(?!\S) at the end, or \s+ */
    return q - 1;                          /* \s+(?!\S): leaves one before the non-space */
}

/* Appends the ids of plain text s[0..n) (valid UTF-8) at out + *k.
 *
 * A match that starts at an ASCII byte is first cut by ascii_match on the
 * ASCII stretch s[p..r) (r: the next byte >= 0x80, or n). When that match
 * ends before r it is the pattern's match in the whole text too: every byte
 * it looked at is ASCII and below r (the contractions, " ?" and the runs
 * look only forward, and a contraction's letters are ASCII), and a run or
 * a \s+ that stopped at an ASCII byte stops there in the whole text. Only a
 * match that reaches r (it might go on into a non-ASCII letter, digit or
 * space) and a match starting at a non-ASCII byte go to PCRE2. */
static int encode_plain(const gpt2_impl *g, encode_state *st, pcre2_match_data *md,
                        const unsigned char *s, size_t n, int *out, size_t *k, attn_error *err) {
    const unsigned char *cls = g->ascii_class;
    size_t r = 0; /* the first byte >= 0x80 at or after p (or n) */
    for (size_t p = 0; p < n;) {
        size_t e = n;
        if (r < p) r = p;
        while (r < n && s[r] < 0x80) r++;
        if (p < r) e = ascii_match(s, r, p, cls);
        if (e >= r) {
            int rc = pcre2_match(g->re, s, n, p, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return attn_error_set(err, ATTN_ERR_INTERNAL,
                                      "gpt2 pre-tokenizer: no match at byte %zu (PCRE2: %s)", p,
                                      (const char *)msg);
            }
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            e = ov[1];
            if (ov[0] != p || e <= p || e > n)
                return attn_error_set(err, ATTN_ERR_INTERNAL,
                                      "gpt2 pre-tokenizer: empty match at byte %zu", p);
        }
        size_t got;
        int rc = encode_piece(g, st, s + p, e - p, out + *k, &got, err);
        if (rc) return rc;
        *k += got;
        p = e;
    }
    return ATTN_OK;
}

/* The special token at s[0..n), the longest one; -1 if none. */
static int special_at(const gpt2_impl *g, const unsigned char *s, size_t n) {
    for (int i = 0; i < g->n_special; i++) {
        int id = g->special[i];
        size_t m = g->piece_len[id];
        if (m <= n && memcmp(s, g->pieces[id], m) == 0) return id;
    }
    return -1;
}

static int gpt2_encode(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                       int **ids, size_t *n, attn_error *err) {
    gpt2_impl *g = tok->impl;
    const unsigned char *s = (const unsigned char *)text;
    unsigned char *fixed = NULL;
    if (!attn_utf8_valid(s, len)) {
        fixed = attn_alloc_array(len, 3, "text", err); /* len <= ATTN_TEXT_MAX */
        if (!fixed) return ATTN_ERR_NOMEM;
        len = attn_utf8_replace(s, len, fixed);
        s = fixed;
    }
    int *out = attn_alloc_array(len ? len : 1, sizeof *out, "token ids", err);
    if (!out) {
        free(fixed);
        return ATTN_ERR_NOMEM;
    }
    pthread_mutex_lock(&g->lock);
    int rc = ATTN_OK;
    size_t k = 0, from = 0;
    const bool special = (flags & ATTN_ENCODE_SPECIAL) && g->n_special;
    for (size_t i = 0; special && i < len; i++) {
        int id;
        if (s[i] != '<' || (id = special_at(g, s + i, len - i)) < 0) continue;
        if ((rc = encode_plain(g, g->state, g->md, s + from, i - from, out, &k, err))) break;
        out[k++] = id;
        i += g->piece_len[id] - 1;
        from = i + 1;
    }
    if (rc == ATTN_OK) rc = encode_plain(g, g->state, g->md, s + from, len - from, out, &k, err);
    pthread_mutex_unlock(&g->lock);
    free(fixed);
    if (rc) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = k;
    return ATTN_OK;
}

static size_t gpt2_decode(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    (void)prev;
    const gpt2_impl *g = tok->impl;
    return attn_tokenizer_write2(buf, cap, g->pieces[id], g->piece_len[id], "", 0);
}

static void gpt2_free_impl(gpt2_impl *g) {
    if (!g) return;
    if (g->state) {
        free(g->state->sym);
        free(g->state->heap);
        free(g->state->slots);
        free(g->state->bytes);
        free(g->state->ids);
        free(g->state);
        pthread_mutex_destroy(&g->lock);
    }
    pcre2_match_data_free(g->md);
    free(g->text);
    free(g->pieces);
    free(g->piece_len);
    free(g->vocab);
    free(g->pairs);
    free(g->special);
    pcre2_code_free(g->re);
    free(g);
}

static void gpt2_destroy(attn_tokenizer *tok) {
    gpt2_free_impl(tok->impl);
    tok->impl = NULL;
}

static const attn_tokenizer_ops gpt2_ops = {
    .encode = gpt2_encode,
    .decode = gpt2_decode,
    .destroy = gpt2_destroy,
};

/* ---- vocab.json ---- */

/* Line and column (1-based) of byte off of s. */
static void text_place(const char *s, size_t off, size_t *line, size_t *col) {
    size_t l = 1, last = 0; /* the start of the line */
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n') l++, last = i + 1;
    *line = l;
    *col = off - last + 1;
}

int attn_tokenizer_json_parse(const char *buf, size_t len, const char *name, cJSON **root,
                              attn_error *err) {
    size_t bom = attn_bom_len(buf, len);
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(buf + bom, len - bom, &end, 0);
    if (*root) return ATTN_OK;
    size_t off = end && end >= buf + bom && end <= buf + len ? (size_t)(end - buf) : len;
    if (off >= len && len) off = len - 1;
    size_t line, col;
    text_place(buf, off, &line, &col);
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: malformed JSON near line %zu, column %zu (byte %zu of %zu)", name,
                          line, col, len ? off + 1 : 0, len);
}

/* The token's text for messages: at most 60 bytes, quoted by the caller. */
#define TOKEN_SHOWN 60

static int parse_vocab(gpt2_impl *g, const char *buf, size_t len, const char *name,
                       const int16_t *char_byte, size_t *count, attn_error *err) {
    cJSON *root;
    int rc = attn_tokenizer_json_parse(buf, len, name, &root, err);
    if (rc) return rc;
    size_t n = 0, bytes = 0;
    if (!cJSON_IsObject(root)) {
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "%s: expected a JSON object (token -> id) at the top level, got %s",
                            name, attn_json_type(root, false));
        goto out;
    }
    for (const cJSON *e = root->child; e; e = e->next, n++) {
        const char *key = e->string ? e->string : "";
        if (n >= (size_t)ATTN_VOCAB_MAX) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: more than the limit of %d tokens",
                                name, ATTN_VOCAB_MAX);
            goto out;
        }
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || !(v >= 0 && v < ATTN_VOCAB_MAX) || v != (double)(int)v) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: token \"%.*s\" (entry %zu): expected an integer id in "
                                "0..%d, got %s",
                                name, TOKEN_SHOWN, key, n, ATTN_VOCAB_MAX - 1,
                                cJSON_IsNumber(e) ? "another number" : attn_json_type(e, false));
            goto out;
        }
        size_t kl = strlen(key);
        if (kl == 0 || kl > ATTN_TOKEN_BYTES_MAX) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: entry %zu (id %d): a token has 1..%d bytes, this one %zu", name,
                                n, (int)v, ATTN_TOKEN_BYTES_MAX, kl);
            goto out;
        }
        bytes += kl + 1; /* bounded by the file's size */
    }
    if (n == 0) {
        rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: the object has no tokens", name);
        goto out;
    }
    g->text = attn_alloc_array(bytes, 1, "gpt2 vocabulary", err);
    g->pieces = attn_calloc_array(n, sizeof *g->pieces, "gpt2 vocabulary", err);
    g->piece_len = attn_alloc_array(n, sizeof *g->piece_len, "gpt2 vocabulary", err);
    g->vocab_mask = attn_table_size(n) - 1;
    g->vocab = attn_alloc_array(g->vocab_mask + 1, sizeof *g->vocab, "gpt2 vocabulary", err);
    if (!g->text || !g->pieces || !g->piece_len || !g->vocab) {
        rc = ATTN_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i <= g->vocab_mask; i++) g->vocab[i] = (vocab_slot){0, -1};
    size_t t = 0, entry = 0;
    for (const cJSON *e = root->child; e; e = e->next, entry++) {
        int id = (int)e->valuedouble;
        const char *key = e->string;
        if ((size_t)id >= n) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: token \"%.*s\" has id %d, but the file has %zu tokens (ids "
                                "run from 0 to %zu)",
                                name, TOKEN_SHOWN, key, id, n, n - 1);
            goto out;
        }
        if (g->pieces[id]) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: id %d is given to two tokens (\"%.*s\" and \"%.*s\")", name,
                                id, TOKEN_SHOWN, key, TOKEN_SHOWN, g->pieces[id]);
            goto out;
        }
        uint32_t bad = 0;
        long m = alphabet_bytes(char_byte, key, strlen(key), (unsigned char *)g->text + t, &bad);
        if (m < 0) {
            rc = bad == 0xFFFFFFFFu
                     ? attn_error_set(err, ATTN_ERR_FORMAT,
                                      "%s: token \"%.*s\" (id %d) is not valid UTF-8", name,
                                      TOKEN_SHOWN, key, id)
                     : attn_error_set(err, ATTN_ERR_FORMAT,
                                      "%s: token \"%.*s\" (id %d) has U+%04X, which is not one of "
                                      "GPT-2's 256 byte characters",
                                      name, TOKEN_SHOWN, key, id, (unsigned)bad);
            goto out;
        }
        g->text[t + (size_t)m] = '\0';
        uint64_t h = attn_fnv1a(ATTN_FNV1A_INIT, g->text + t, (size_t)m);
        g->piece_len[id] = (uint32_t)m;
        int other = vocab_find(g, g->text + t, (size_t)m, h);
        if (other >= 0) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: token \"%.*s\" is listed twice (ids "
                                "%d and %d)", name, TOKEN_SHOWN, key, other, id);
            goto out;
        }
        g->pieces[id] = g->text + t;
        size_t i = mix64(h) & g->vocab_mask;
        while (g->vocab[i].id >= 0) i = (i + 1) & g->vocab_mask;
        g->vocab[i] = (vocab_slot){h, id};
        t += (size_t)m + 1;
    }
    /* n distinct ids below n: all of 0..n-1 are there */
    for (unsigned b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if ((g->byte_id[b] = vocab_lookup(g, &c, 1)) < 0) {
            char shown[8];
            uint32_t cp = byte_char(b);
            snprintf(shown, sizeof shown, "U+%04X", (unsigned)cp);
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: no token for byte 0x%02X alone (%s in the byte alphabet): "
                                "a byte-level vocabulary has all 256",
                                name, b, shown);
            goto out;
        }
    }
    *count = n;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- merges.txt ---- */

static int parse_merges(gpt2_impl *g, const char *buf, size_t len, const char *name,
                        const int16_t *char_byte, size_t size, attn_error *err) {
    size_t off = attn_bom_len(buf, len), line = 1;
    /* count the merges first (the lines after an optional #version line) */
    size_t lines = 0;
    for (size_t i = off; i < len; i++) lines += buf[i] == '\n';
    if (len > off && buf[len - 1] != '\n') lines++;
    if (lines > (size_t)ATTN_VOCAB_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: more than the limit of %d lines", name,
                              ATTN_VOCAB_MAX);
    g->pair_mask = attn_table_size(lines) - 1;
    g->pairs = attn_alloc_array(g->pair_mask + 1, sizeof *g->pairs, "gpt2 merges", err);
    unsigned char *tmp = attn_alloc_array(len ? len : 1, 1, "gpt2 merges", err);
    if (!g->pairs || !tmp) {
        free(tmp);
        return ATTN_ERR_NOMEM;
    }
    for (size_t i = 0; i <= g->pair_mask; i++) g->pairs[i].key = PAIR_EMPTY;
    int rc = ATTN_OK;
    size_t first_merge_line = 1;
    int32_t rank = 0;
    for (; off < len; line++) {
        const char *s = buf + off;
        const char *nl = memchr(s, '\n', len - off);
        size_t n = nl ? (size_t)(nl - s) : len - off;
        off += n + (nl != NULL);
        if (n && s[n - 1] == '\r') n--;
        if (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0) {
            first_merge_line = 2;
            continue;
        }
        const char *sp = memchr(s, ' ', n);
        if (n == 0 || !sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1))) {
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: line %zu: expected two tokens separated by one space (a "
                                "merge \"A B\"), got \"%.*s\"",
                                name, line, (int)(n < TOKEN_SHOWN ? n : TOKEN_SHOWN), s);
            goto out;
        }
        size_t na = (size_t)(sp - s), nb = n - na - 1;
        int id[3];
        uint32_t bad = 0;
        long ba = alphabet_bytes(char_byte, s, na, tmp, &bad);
        long bb = ba < 0 ? -1 : alphabet_bytes(char_byte, sp + 1, nb, tmp + ba, &bad);
        if (bb < 0) {
            rc = bad == 0xFFFFFFFFu
                     ? attn_error_set(err, ATTN_ERR_FORMAT, "%s: line %zu: not valid UTF-8", name,
                                      line)
                     : attn_error_set(err, ATTN_ERR_FORMAT,
                                      "%s: line %zu: U+%04X is not one of GPT-2's 256 byte "
                                      "characters",
                                      name, line, (unsigned)bad);
            goto out;
        }
        id[0] = vocab_lookup(g, tmp, (size_t)ba);
        id[1] = vocab_lookup(g, tmp + ba, (size_t)bb);
        id[2] = vocab_lookup(g, tmp, (size_t)(ba + bb));
        for (int j = 0; j < 3; j++) {
            if (id[j] >= 0) continue;
            int shown_len = j == 0 ? (int)na : j == 1 ? (int)nb : (int)n;
            const char *shown = j == 1 ? sp + 1 : s;
            rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: line %zu: %s \"%.*s\" is not in the "
                                "vocabulary",
                                name, line, j == 2 ? "the merged pair of" : "the token",
                                shown_len < TOKEN_SHOWN ? shown_len : TOKEN_SHOWN, shown);
            goto out;
        }
        uint64_t key = (uint64_t)(uint32_t)id[0] << 32 | (uint32_t)id[1];
        size_t i = mix64(key) & g->pair_mask;
        for (; g->pairs[i].key != PAIR_EMPTY; i = (i + 1) & g->pair_mask) {
            if (g->pairs[i].key == key) {
                rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                    "%s: line %zu: the merge \"%.*s\" is already on line %zu", name,
                                    line, (int)(n < TOKEN_SHOWN ? n : TOKEN_SHOWN), s,
                                    (size_t)g->pairs[i].rank + first_merge_line);
                goto out;
            }
        }
        g->pairs[i] = (pair_slot){key, rank++, id[2]};
    }
    (void)size;
out:
    free(tmp);
    return rc;
}

/* Special tokens: the <|...|> ones, longest first. */
static int find_special(gpt2_impl *g, size_t n, attn_error *err) {
    size_t k = 0;
    for (size_t id = 0; id < n; id++) {
        const char *p = g->pieces[id];
        size_t m = g->piece_len[id];
        k += m >= 5 && memcmp(p, "<|", 2) == 0 && memcmp(p + m - 2, "|>", 2) == 0;
    }
    if (!k) return ATTN_OK;
    g->special = attn_alloc_array(k, sizeof *g->special, "gpt2 special tokens", err);
    if (!g->special) return ATTN_ERR_NOMEM;
    for (size_t id = 0; id < n; id++) {
        const char *p = g->pieces[id];
        size_t m = g->piece_len[id];
        if (!(m >= 5 && memcmp(p, "<|", 2) == 0 && memcmp(p + m - 2, "|>", 2) == 0)) continue;
        int j = g->n_special++;
        while (j > 0 && g->piece_len[g->special[j - 1]] < m) { /* insertion, longest first */
            g->special[j] = g->special[j - 1];
            j--;
        }
        g->special[j] = (int)id;
    }
    return ATTN_OK;
}

int attn_tokenizer_gpt2_build(attn_tokenizer *tok, const char *vocab, size_t vocab_len,
                              const char *vocab_name, const char *merges, size_t merges_len,
                              const char *merges_name, attn_error *err) {
    int16_t char_byte[0x144]; /* the inverse of byte_char */
    for (size_t c = 0; c < 0x144; c++) char_byte[c] = -1;
    for (unsigned b = 0; b < 256; b++) char_byte[byte_char(b)] = (int16_t)b;

    gpt2_impl *g = attn_calloc_array(1, sizeof *g, "gpt2 tokenizer", err);
    if (!g) return ATTN_ERR_NOMEM;
    size_t n = 0;
    int rc = parse_vocab(g, vocab, vocab_len, vocab_name, char_byte, &n, err);
    if (!rc) rc = parse_merges(g, merges, merges_len, merges_name, char_byte, n, err);
    if (!rc) rc = find_special(g, n, err);
    if (!rc) {
        int code;
        PCRE2_SIZE at;
        g->re = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_ANCHORED, &code, &at, NULL);
        if (!g->re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            rc = attn_error_set(err, ATTN_ERR_INTERNAL,
                                "gpt2 pre-tokenizer pattern, offset %zu: %s (PCRE2 %d)",
                                (size_t)at, (const char *)msg, code);
        } else {
            (void)pcre2_jit_compile(g->re, PCRE2_JIT_COMPLETE); /* else interpreted */
            g->md = pcre2_match_data_create_from_pattern(g->re, NULL);
            g->state = calloc(1, sizeof *g->state);
            if (!g->md || !g->state || pthread_mutex_init(&g->lock, NULL)) {
                free(g->state);
                g->state = NULL; /* no lock to destroy */
                rc = attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for the gpt2 tokenizer");
            }
            for (unsigned c = 0; c < 128; c++) g->ascii_class[c] = ascii_class(c);
        }
    }
    if (rc) {
        gpt2_free_impl(g);
        return rc;
    }
    tok->ops = &gpt2_ops;
    tok->size = (int)n;
    tok->bos = -1;
    tok->eos = vocab_lookup(g, "<|endoftext|>", 13);
    tok->pieces = g->pieces;
    tok->impl = g;
    return ATTN_OK;
}

#endif
