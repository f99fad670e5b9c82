/* llama2.c tokenizer (tokenizer.bin) and its byte-pair encoding.
 *
 * File (little-endian): int32 max_token_length, then one entry per id until
 * the end of the file: float32 score, int32 len, len bytes of piece text (no
 * terminator). The file stores no count. Refused: a file under 4 bytes,
 * max_token_length outside 1..65536, a len outside 1..max_token_length, a
 * non-finite score, an entry cut short by the end of the file, fewer than 3
 * entries (<unk>, BOS, EOS), more than ATTN_VOCAB_MAX entries (model/limits.h,
 * like max_token_length's 65536: docs/model-format.md, "Limits"). Messages
 * number the entries from 0, so "entry N" is id N.
 *
 * Ids 0, 1, 2 are <unk>, BOS, EOS as in llama2.c; byte b falls back to id b + 3.
 *
 * Encoding is llama2.c's encode() (karpathy/llama2.c run.c) with bos = 1,
 * eos = 0:
 *   1. BOS (id 1);
 *   2. the piece " " as a dummy prefix when the text is non-empty (llama2.c
 *      would emit id -1 when the vocabulary has no " "; we skip it);
 *   3. the text cut into groups: a byte plus the continuation bytes
 *      (0b10xxxxxx) that follow it, at most 4 bytes in all (so a stray
 *      continuation byte starts a group of its own); each group becomes its
 *      piece if there is one, else one byte-fallback id per byte;
 *   4. while some adjacent pair (BOS included, as in llama2.c) concatenates
 *      to a piece whose score is > -1e10 (llama2.c's initial best score), merge
 *      the pair with the highest score, the leftmost one on ties.
 * Step 4 here uses a heap of candidate pairs over a linked list of symbols,
 * O(n log n) in the number of initial symbols; llama2.c rescans all pairs
 * after every merge (O(n^2)) but picks the same pair each time: the heap
 * orders by score, then by the left symbol's position, and entries whose
 * symbols changed since are discarded when popped.
 *
 * Differences from llama2.c, on inputs it does not handle:
 *   - Piece lookup compares all len bytes (llama2.c compares C strings, so a
 *     piece with an embedded NUL byte is cut at it there). Text may contain
 *     NUL bytes (llama2.c's text is a C string): NUL is a byte like any other.
 *   - When two ids have the same piece text, lookup returns the lowest id
 *     (llama2.c's bsearch over the sorted vocabulary returns one of them).
 *   - A byte with no piece whose fallback id b + 3 is not in the vocabulary
 *     (vocabularies under 259 ids) is refused with an error (llama2.c would
 *     read out of bounds).
 *
 * Decoding is llama2.c's decode(): after BOS a leading ' ' of the piece is
 * dropped, and a piece spelled exactly <0xHH> (two hex digits, either case)
 * becomes that raw byte (llama2.c's sscanf would accept a few looser forms).
 */
#include "tokenizer/tokenizer.h"

#include "base/bytes.h"
#include "model/limits.h"

#include <limits.h>
#include <math.h>
#include <stb_ds.h>
#include <stdlib.h>

#define BPE_MAX_TOKEN_LENGTH ATTN_TOKEN_BYTES_MAX /* model/limits.h */
#define BPE_UNK 0
#define BPE_BOS 1
#define BPE_EOS 2
#define BPE_BYTE0 3
/* llama2.c's encode starts its best score at -1e10: no pair scoring at or below it merges. */
#define BPE_MIN_SCORE (-1e10f)

typedef struct hash_entry {
    uint64_t key; /* 64-bit FNV-1a of a piece's bytes */
    int value;    /* lowest id whose piece has this hash */
    int last;     /* highest id with it: the end of the next_same chain, so that
                     appending is O(1) even for many duplicate pieces */
} hash_entry;

typedef struct bpe_impl {
    char *text;          /* all pieces, each NUL-terminated */
    const char **pieces; /* [size] into text */
    int *piece_len;      /* [size] */
    float *scores;       /* [size] */
    int *next_same;      /* [size] next higher id with the same hash, -1 at the end */
    hash_entry *map;     /* stb_ds hash map: hash -> lowest id with it */
    int max_len;         /* max_token_length */
    int space;           /* id of " ", or -1 */
} bpe_impl;

/* The lowest id whose piece is the concatenation a + b, or -1. Read-only on
 * the map (see word_lookup in word.c for why the _ts form). */
static int bpe_lookup2(const bpe_impl *b, const char *a, size_t na, const char *c, size_t nc) {
    size_t n = na + nc;
    if (n == 0 || n > (size_t)b->max_len) return -1;
    uint64_t h = attn_fnv1a(attn_fnv1a(ATTN_FNV1A_INIT, a, na), c, nc);
    ptrdiff_t slot;
    (void)stbds_hmget_key_ts((void *)b->map, sizeof *b->map, &h, sizeof b->map->key, &slot,
                             STBDS_HM_BINARY);
    if (slot < 0) return -1;
    for (int id = b->map[slot].value; id >= 0; id = b->next_same[id]) {
        const char *p = b->pieces[id];
        if ((size_t)b->piece_len[id] == n && memcmp(p, a, na) == 0 && memcmp(p + na, c, nc) == 0)
            return id;
    }
    return -1;
}

static void bpe_free_impl(bpe_impl *b) {
    if (!b) return;
    hmfree(b->map);
    free(b->text);
    free(b->pieces);
    free(b->piece_len);
    free(b->scores);
    free(b->next_same);
    free(b);
}

static void bpe_destroy(attn_tokenizer *tok) {
    bpe_free_impl(tok->impl);
    tok->impl = NULL;
}

/* ---- merging: symbols in a doubly linked list, candidate pairs in a heap ---- */

typedef struct bpe_sym {
    int id;
    int prev, next; /* indices into the symbol array, -1 at the ends */
    bool alive;
} bpe_sym;

typedef struct bpe_cand {
    float score;
    int left, right; /* symbol indices (left < right in sequence order) */
    int left_id, right_id, merged;
} bpe_cand;

/* a comes out of the heap before b: higher score, then leftmost. */
static bool cand_before(const bpe_cand *a, const bpe_cand *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(bpe_cand *heap, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&c, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = c;
}

static bpe_cand heap_pop(bpe_cand *heap, size_t *n) {
    bpe_cand top = heap[0];
    bpe_cand last = heap[--(*n)];
    size_t i = 0, size = *n;
    for (;;) {
        size_t l = 2 * i + 1, best;
        if (l >= size) break;
        best = l;
        if (l + 1 < size && cand_before(&heap[l + 1], &heap[l])) best = l + 1;
        if (!cand_before(&heap[best], &last)) break;
        heap[i] = heap[best];
        i = best;
    }
    if (size) heap[i] = last;
    return top;
}

/* Pushes the pair (left, right) when it merges into a piece. */
static void push_pair(const bpe_impl *b, const bpe_sym *sym, int left, int right, bpe_cand *heap,
                      size_t *hn) {
    if (left < 0 || right < 0) return;
    int li = sym[left].id, ri = sym[right].id;
    int m = bpe_lookup2(b, b->pieces[li], (size_t)b->piece_len[li], b->pieces[ri],
                        (size_t)b->piece_len[ri]);
    if (m < 0 || !(b->scores[m] > BPE_MIN_SCORE)) return;
    bpe_cand c = {b->scores[m], left, right, li, ri, m};
    heap_push(heap, hn, c);
}

/* Merges ids[0..*n) in place as llama2.c does. */
static int bpe_merge(const bpe_impl *b, int *ids, size_t *n, attn_error *err) {
    size_t count = *n;
    if (count < 2) return ATTN_OK;
    /* every merge removes one symbol and pushes at most 2 pairs */
    size_t heap_cap;
    if (!attn_mul_size(count, 3, &heap_cap))
        return attn_error_set(err, ATTN_ERR_NOMEM, "text too long to encode (%zu tokens)", count);
    bpe_sym *sym = attn_alloc_array(count, sizeof *sym, "merge symbols", err);
    bpe_cand *heap = attn_alloc_array(heap_cap, sizeof *heap, "merge candidates", err);
    if (!sym || !heap) {
        free(sym);
        free(heap);
        return ATTN_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        sym[i].id = ids[i];
        sym[i].prev = i == 0 ? -1 : (int)(i - 1);
        sym[i].next = i + 1 == count ? -1 : (int)(i + 1);
        sym[i].alive = true;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < count; i++) push_pair(b, sym, (int)i, (int)(i + 1), heap, &hn);
    while (hn) {
        bpe_cand c = heap_pop(heap, &hn);
        bpe_sym *l = &sym[c.left], *r = &sym[c.right];
        if (!l->alive || !r->alive || l->next != c.right || l->id != c.left_id ||
            r->id != c.right_id)
            continue; /* stale */
        l->id = c.merged;
        r->alive = false;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = c.left;
        push_pair(b, sym, l->prev, c.left, heap, &hn);
        push_pair(b, sym, c.left, l->next, heap, &hn);
    }
    size_t k = 0;
    for (int i = 0; i >= 0; i = sym[i].next) ids[k++] = sym[i].id;
    *n = k;
    free(sym);
    free(heap);
    return ATTN_OK;
}

static int bpe_encode(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                      int **ids, size_t *n, attn_error *err) {
    (void)flags; /* no special tokens: ATTN_ENCODE_NO_SPECIAL changes nothing */
    const bpe_impl *b = tok->impl;
    /* BOS + dummy prefix + at most one id per byte */
    size_t cap;
    if (!attn_add_size(len, 2, &cap) || cap > (size_t)INT_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "text of %zu bytes is too long to encode", len);
    int *out = attn_alloc_array(cap, sizeof *out, "token ids", err);
    if (!out) return ATTN_ERR_NOMEM;
    size_t k = 0;
    out[k++] = BPE_BOS;
    if (len > 0 && b->space >= 0) out[k++] = b->space;
    for (size_t i = 0; i < len;) {
        size_t g = 1;
        while (g < 4 && i + g < len && ((unsigned char)text[i + g] & 0xC0) == 0x80) g++;
        int id = bpe_lookup2(b, text + i, g, "", 0);
        if (id >= 0) {
            out[k++] = id;
        } else {
            for (size_t j = 0; j < g; j++) {
                unsigned char c = (unsigned char)text[i + j];
                int fb = BPE_BYTE0 + c;
                if (fb >= tok->size) {
                    free(out);
                    return attn_error_set(err, ATTN_ERR_USAGE,
                                          "text byte 0x%02x at offset %zu has no piece and no "
                                          "byte-fallback id %d (the tokenizer has %d ids)",
                                          c, i + j, fb, tok->size);
                }
                out[k++] = fb;
            }
        }
        i += g;
    }
    int rc = bpe_merge(b, out, &k, err);
    if (rc != ATTN_OK) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = k;
    return ATTN_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t bpe_decode(const attn_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    const bpe_impl *b = tok->impl;
    const char *p = b->pieces[id];
    size_t n = (size_t)b->piece_len[id];
    if (prev == BPE_BOS && p[0] == ' ') {
        p++;
        n--;
    }
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
        int hi = hexval(p[3]), lo = hexval(p[4]);
        if (hi >= 0 && lo >= 0) {
            char byte = (char)(hi * 16 + lo);
            return attn_tokenizer_write2(buf, cap, &byte, 1, "", 0);
        }
    }
    return attn_tokenizer_write2(buf, cap, p, n, "", 0);
}

static const attn_tokenizer_ops bpe_ops = {
    .encode = bpe_encode,
    .decode = bpe_decode,
    .destroy = bpe_destroy,
};

/* Pass 1 over the entries after max_token_length: validates the layout and
 * counts the entries and the bytes of their texts (each with a NUL). */
static int bpe_scan(const char *buf, size_t len, int32_t max_len, const char *name,
                    size_t *count_out, size_t *text_bytes, attn_error *err) {
    size_t count = 0, bytes = 0;
    for (size_t off = 4; off < len; count++) {
        size_t left = len - off;
        if (left < 8)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: entry %zu is cut short (needs 8 bytes at offset %zu, file "
                                  "ends at %zu)",
                                  name, count, off, len);
        float score = attn_le_f32(buf + off);
        int32_t n = attn_le_i32(buf + off + 4);
        if (!isfinite(score))
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: entry %zu at offset %zu has score %g, expected a finite "
                                  "number",
                                  name, count, off, (double)score);
        if (n < 1 || n > max_len)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: entry %zu has length %d at offset %zu, expected "
                                  "1..%d (max_token_length)",
                                  name, count, (int)n, off + 4, (int)max_len);
        if (left - 8 < (size_t)n)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: entry %zu is cut short (needs %zu bytes at offset %zu, file "
                                  "ends at %zu)",
                                  name, count, 8 + (size_t)n, off, len);
        off += 8 + (size_t)n;
        bytes += (size_t)n + 1; /* cannot overflow: bounded by len */
        if (count >= (size_t)ATTN_VOCAB_MAX)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: more than the limit of %d entries (tokens)", name,
                                  ATTN_VOCAB_MAX);
    }
    if (count < 3)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %zu entries, expected at least 3 (<unk>, BOS, EOS)", name,
                              count);
    *count_out = count;
    *text_bytes = bytes;
    return ATTN_OK;
}

/* Files piece `id` in the hash map: a new hash starts a chain, a hash
 * already there (another piece, or the same text again) is appended to its
 * chain, which so stays in ascending id order. */
static void bpe_index_piece(bpe_impl *b, int id) {
    uint64_t h = attn_fnv1a(ATTN_FNV1A_INIT, b->pieces[id], (size_t)b->piece_len[id]);
    ptrdiff_t slot;
    (void)stbds_hmget_key_ts((void *)b->map, sizeof *b->map, &h, sizeof b->map->key, &slot,
                             STBDS_HM_BINARY);
    b->next_same[id] = -1;
    if (slot < 0) {
        /* hmput without its typeof-based macro (not in -std=c11) */
        b->map = stbds_hmput_key(b->map, sizeof *b->map, &h, sizeof h, STBDS_HM_BINARY);
        ptrdiff_t at = stbds_temp(b->map - 1);
        b->map[at].key = h;
        b->map[at].value = id;
        b->map[at].last = id;
    } else {
        b->next_same[b->map[slot].last] = id;
        b->map[slot].last = id;
    }
}

int attn_tokenizer_llama2c_build(attn_tokenizer *tok, const char *buf, size_t len,
                                 const char *name, attn_error *err) {
    if (len < 4)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: file is %zu bytes, expected at least 4 (int32 max_token_length)",
                              name, len);
    int32_t max_len = attn_le_i32(buf);
    if (max_len < 1 || max_len > BPE_MAX_TOKEN_LENGTH)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: max_token_length is %d at offset 0, expected 1..%d (the "
                              "limit of a token's length)",
                              name, (int)max_len, BPE_MAX_TOKEN_LENGTH);
    size_t count = 0, text_bytes = 0;
    int rc = bpe_scan(buf, len, max_len, name, &count, &text_bytes, err);
    if (rc) return rc;

    /* Pass 2: copy. */
    bpe_impl *b = attn_calloc_array(1, sizeof *b, "llama2c tokenizer", err);
    if (!b) return ATTN_ERR_NOMEM;
    b->max_len = (int)max_len;
    b->text = attn_alloc_array(text_bytes, 1, "llama2c tokenizer pieces", err);
    b->pieces = attn_alloc_array(count, sizeof *b->pieces, "llama2c tokenizer", err);
    b->piece_len = attn_alloc_array(count, sizeof *b->piece_len, "llama2c tokenizer", err);
    b->scores = attn_alloc_array(count, sizeof *b->scores, "llama2c tokenizer", err);
    b->next_same = attn_alloc_array(count, sizeof *b->next_same, "llama2c tokenizer", err);
    if (!b->text || !b->pieces || !b->piece_len || !b->scores || !b->next_same) {
        bpe_free_impl(b);
        return ATTN_ERR_NOMEM;
    }
    hmdefault(b->map, -1);
    size_t off = 4, t = 0;
    for (size_t id = 0; id < count; id++) {
        int32_t n = attn_le_i32(buf + off + 4);
        b->scores[id] = attn_le_f32(buf + off);
        b->piece_len[id] = (int)n;
        b->pieces[id] = b->text + t;
        memcpy(b->text + t, buf + off + 8, (size_t)n);
        b->text[t + (size_t)n] = '\0';
        t += (size_t)n + 1;
        off += 8 + (size_t)n;
        bpe_index_piece(b, (int)id);
    }
    b->space = bpe_lookup2(b, " ", 1, "", 0);

    tok->ops = &bpe_ops;
    tok->size = (int)count;
    tok->bos = BPE_BOS;
    tok->eos = BPE_EOS;
    tok->pieces = b->pieces;
    tok->impl = b;
    return ATTN_OK;
}
