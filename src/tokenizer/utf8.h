/* Private: UTF-8 helpers of the tokenizers (gpt2.c, spbpe.c). Well-formed means the
 * Unicode Standard's table 3-7: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
#ifndef ATTN_TOKENIZER_UTF8_H
#define ATTN_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* For lead byte b: the number of continuation bytes (0 for ASCII, -1 for a
 * byte that cannot lead) and the range [*lo, *hi] of the first of them. */
static inline int attn_utf8_need(unsigned b, unsigned *lo, unsigned *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) return 0;
    if (b >= 0xC2 && b <= 0xDF) return 1;
    if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) *lo = 0xA0;
        if (b == 0xED) *hi = 0x9F; /* no surrogates */
        return 2;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) *lo = 0x90;
        if (b == 0xF4) *hi = 0x8F; /* up to U+10FFFF */
        return 3;
    }
    return -1;
}

/* The length of the well-formed character at s[0..n) (n >= 1), or 0 when
 * there is none; then *bad (if not NULL) is the length of the maximal
 * ill-formed subpart there (at least 1), the unit U+FFFD replaces. */
static inline size_t attn_utf8_len(const unsigned char *s, size_t n, size_t *bad) {
    unsigned lo, hi;
    int need = attn_utf8_need(s[0], &lo, &hi);
    size_t i = 1;
    if (need < 0) {
        if (bad) *bad = 1;
        return 0;
    }
    for (; i <= (size_t)need && i < n; i++) {
        unsigned c = s[i];
        if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF)) break;
    }
    if (i == (size_t)need + 1) return i;
    if (bad) *bad = i;
    return 0;
}

/* The well-formed character at s[0..n) (n >= 1) decoded into *cp; returns
 * its length, or 0 when there is none. */
static inline size_t attn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    size_t g = attn_utf8_len(s, n, NULL);
    if (!g) return 0;
    uint32_t v = g == 1 ? s[0] : s[0] & (0x3Fu >> (g - 1));
    for (size_t i = 1; i < g; i++) v = v << 6 | (s[i] & 0x3Fu);
    *cp = v;
    return g;
}

/* Is s[0..n) well-formed UTF-8? */
static inline bool attn_utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t g = s[i] < 0x80 ? 1 : attn_utf8_len(s + i, n - i, NULL);
        if (!g) return false;
        i += g;
    }
    return true;
}

/* s[0..n) with U+FFFD (EF BF BD) for each maximal ill-formed subpart (as
 * Python's decode(errors="replace") and the WHATWG decoder do), into out
 * (room for 3 * n bytes); returns the length. */
static inline size_t attn_utf8_replace(const unsigned char *s, size_t n, unsigned char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t bad = 0, g = attn_utf8_len(s + i, n - i, &bad);
        if (g) {
            for (size_t j = 0; j < g; j++) out[k++] = s[i + j];
            i += g;
        } else {
            out[k++] = 0xEF;
            out[k++] = 0xBF;
            out[k++] = 0xBD;
            i += bad;
        }
    }
    return k;
}

#endif
