/* The reference of attn_format_float for tests/test-fmt.c and
 * tests/fmt-exhaustive.c: the shortest decimal that reads back, found by
 * brute force with the C library alone (printf rounds exactly, strtof reads
 * exactly), written in %g's notation. */
#ifndef ATTN_TESTS_FMT_REF_H
#define ATTN_TESTS_FMT_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t ref_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float ref_float(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* Whether s reads back (strtof, all of it) as the bits of x. */
static inline bool ref_reads_back(const char *s, float x) {
    char *end;
    const float y = strtof(s, &end);
    return *end == '\0' && ref_bits(y) == ref_bits(x);
}

/* The decimal d * 10^e (d: 9 digits at most) as %.9g writes it: the
 * double nearest to it, rounded to 9 digits, is d * 10^e again, written with
 * %g's notation for precision 9 and without trailing zeros. */
static inline void ref_text(char *out, size_t cap, long long d, int e) {
    char s[48];
    snprintf(s, sizeof s, "%llde%d", d, e);
    snprintf(out, cap, "%.9g", strtod(s, NULL));
}

/* The shortest decimal that strtof reads back as x (finite, x != 0): for
 * p = 1..9 digits, the p-digit rounding of x (%.*e, exact) and, when it
 * does not read back, its two p-digit neighbours (the interval of x holds
 * one of them if it holds any p-digit decimal, and never both then). The
 * first that reads back is the closest of the shortest. Writes it into
 * out as ref_text says (the sign included) and returns p. */
static inline int ref_shortest(char *out, size_t cap, float x) {
    for (int p = 1; p <= 9; p++) {
        char s[48];
        snprintf(s, sizeof s, "%.*e", p - 1, (double)fabsf(x));
        /* s: d[.ddd]e+XX -> the p digits as an integer d, and exponent e of the last */
        long long d = 0;
        const char *c = s;
        for (; *c != 'e'; c++)
            if (*c != '.') d = d * 10 + (*c - '0');
        int e = atoi(c + 1) - (p - 1);
        long long pow10p = 1;
        for (int i = 1; i < p; i++) pow10p *= 10; /* 10^(p-1): the least p-digit integer */
        long long cand[3] = {d, d - 1, d + 1};
        int ce[3] = {e, e, e};
        if (cand[1] < pow10p) { /* below 10^(p-1): 99..9 one place further */
            cand[1] = pow10p * 10 - 1;
            ce[1] = e - 1;
        }
        if (cand[2] >= pow10p * 10) { /* 10^p: 10..0 one place up */
            cand[2] = pow10p;
            ce[2] = e + 1;
        }
        for (int i = 0; i < 3; i++) {
            char t[48];
            snprintf(t, sizeof t, "%s%llde%d", signbit(x) ? "-" : "", cand[i], ce[i]);
            if (ref_reads_back(t, x)) {
                ref_text(out, cap, signbit(x) ? -cand[i] : cand[i], ce[i]);
                return p;
            }
        }
    }
    snprintf(out, cap, "(none)");
    return 0;
}

/* The count of significant digits of a number in %g's form: its digits
 * before the exponent without leading and trailing zeros. */
static inline int ref_digit_count(const char *s) {
    int n = 0, first = -1, last = -1;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s != '0') {
            if (first < 0) first = n;
            last = n;
        }
        n++;
    }
    return first < 0 ? 0 : last - first + 1;
}

#endif
