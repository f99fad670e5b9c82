/* Numbers as text for the CSV and JSONL writers: the shortest decimal that
 * reads back to the same float32, and integers (declared in attn/write.h,
 * where the notation is described).
 *
 * How attn_format_float finds the digits. A finite nonzero float is
 * v = c * 2^q (c < 2^24). Every real strictly between the midpoints to its
 * neighbours, and the midpoints themselves when c is even (strtof rounds a
 * tie to the even significand), reads back as v. With e2 = q - 2 these
 * bounds and v are x * 2^e2 for the integers
 *   xl = 4c - 2 (4c - 1 at a power of two whose lower neighbour is closer),
 *   xv = 4c, xr = 4c + 2.
 * With j = floor(e2 * log10(2)), F = 2^e2 / 10^j lies in [1, 10), so the
 * scaled values x * F are below 10 * 2^27 and the scaled interval is at
 * least 3 wide. They are computed exactly: the integer part and whether a
 * fraction is left, with
 *   e2 >= 0:  x * 2^(e2 - j) / 5^j       (a 128-bit division; v >= 2^25),
 *   e2 < 0:   x * 5^-j / 2^(-e2 + j)     (a 192-bit product, shifted).
 * The integers n with n * 10^j in the interval form [lo, hi]; the largest r
 * such that a multiple of 10^r lies in [lo, hi] gives the fewest digits, and
 * of the (at most two) multiples next to v the closer one is taken. A tie
 * cannot happen for a float (it would need an interval wider than it is);
 * it would go to the even one. Checked over every float by
 * tests/fmt-exhaustive.c (a benchmark) and on a sample by tests/test-fmt.c. */
#include "attn/write.h"

#include <stdint.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

/* 5^m for m = 0..46, as {high 64 bits, low 64 bits}; made by
 * python3 -c "for m in range(47): p = 5**m; print(hex(p >> 64), hex(p % 2**64))" */
static const uint64_t pow5[47][2] = {
    {0x0000000000000000u, 0x0000000000000001u}, /* 5^0 */
    {0x0000000000000000u, 0x0000000000000005u}, /* 5^1 */
    {0x0000000000000000u, 0x0000000000000019u}, /* 5^2 */
    {0x0000000000000000u, 0x000000000000007du}, /* 5^3 */
    {0x0000000000000000u, 0x0000000000000271u}, /* 5^4 */
    {0x0000000000000000u, 0x0000000000000c35u}, /* 5^5 */
    {0x0000000000000000u, 0x0000000000003d09u}, /* 5^6 */
    {0x0000000000000000u, 0x000000000001312du}, /* 5^7 */
    {0x0000000000000000u, 0x000000000005f5e1u}, /* 5^8 */
    {0x0000000000000000u, 0x00000000001dcd65u}, /* 5^9 */
    {0x0000000000000000u, 0x00000000009502f9u}, /* 5^10 */
    {0x0000000000000000u, 0x0000000002e90eddu}, /* 5^11 */
    {0x0000000000000000u, 0x000000000e8d4a51u}, /* 5^12 */
    {0x0000000000000000u, 0x0000000048c27395u}, /* 5^13 */
    {0x0000000000000000u, 0x000000016bcc41e9u}, /* 5^14 */
    {0x0000000000000000u, 0x000000071afd498du}, /* 5^15 */
    {0x0000000000000000u, 0x0000002386f26fc1u}, /* 5^16 */
    {0x0000000000000000u, 0x000000b1a2bc2ec5u}, /* 5^17 */
    {0x0000000000000000u, 0x000003782dace9d9u}, /* 5^18 */
    {0x0000000000000000u, 0x00001158e460913du}, /* 5^19 */
    {0x0000000000000000u, 0x000056bc75e2d631u}, /* 5^20 */
    {0x0000000000000000u, 0x0001b1ae4d6e2ef5u}, /* 5^21 */
    {0x0000000000000000u, 0x000878678326eac9u}, /* 5^22 */
    {0x0000000000000000u, 0x002a5a058fc295edu}, /* 5^23 */
    {0x0000000000000000u, 0x00d3c21bcecceda1u}, /* 5^24 */
    {0x0000000000000000u, 0x0422ca8b0a00a425u}, /* 5^25 */
    {0x0000000000000000u, 0x14adf4b7320334b9u}, /* 5^26 */
    {0x0000000000000000u, 0x6765c793fa10079du}, /* 5^27 */
    {0x0000000000000002u, 0x04fce5e3e2502611u}, /* 5^28 */
    {0x000000000000000au, 0x18f07d736b90be55u}, /* 5^29 */
    {0x0000000000000032u, 0x7cb2734119d3b7a9u}, /* 5^30 */
    {0x00000000000000fcu, 0x6f7c40458122964du}, /* 5^31 */
    {0x00000000000004eeu, 0x2d6d415b85acef81u}, /* 5^32 */
    {0x00000000000018a6u, 0xe32246c99c60ad85u}, /* 5^33 */
    {0x0000000000007b42u, 0x6fab61f00de36399u}, /* 5^34 */
    {0x000000000002684cu, 0x2e58e9b04570f1fdu}, /* 5^35 */
    {0x00000000000c097cu, 0xe7bc90715b34b9f1u}, /* 5^36 */
    {0x00000000003c2f70u, 0x86aed236c807a1b5u}, /* 5^37 */
    {0x00000000012ced32u, 0xa16a1b11e8262889u}, /* 5^38 */
    {0x0000000005e0a1fdu, 0x2712875988becaadu}, /* 5^39 */
    {0x000000001d6329f1u, 0xc35ca4bfabb9f561u}, /* 5^40 */
    {0x0000000092efd1b8u, 0xd0cf37be5aa1cae5u}, /* 5^41 */
    {0x00000002deaf189cu, 0x140c16b7c528f679u}, /* 5^42 */
    {0x0000000e596b7b0cu, 0x643c7196d9ccd05du}, /* 5^43 */
    {0x00000047bf19673du, 0xf52e37f2410011d1u}, /* 5^44 */
    {0x00000166bb7f0435u, 0xc9e717bb45005915u}, /* 5^45 */
    {0x00000701a97b150cu, 0xf18376a85901bd69u}, /* 5^46 */
};

static u128 pow5_of(int m) { return (u128)pow5[m][0] << 64 | pow5[m][1]; }

/* floor(e * log10(2)) for |e| <= 1650 (78913 / 2^18 is log10(2) to 7
 * digits), with a floor division also for negative e. */
static int floor_log10_pow2(int e) {
    const long t = (long)e * 78913;
    return (int)(t >= 0 ? t / 262144 : -((-t + 262143) / 262144));
}

/* x * 2^e2 / 10^j, x < 2^28, for the j of e2 above: the integer part
 * (below 2^31) and whether it is exact. */
typedef struct {
    uint64_t n;
    bool exact;
} scaled;

static scaled scale(uint64_t x, int e2, int j) {
    scaled r;
    if (e2 >= 0) { /* 0 <= j <= 30, e2 - j <= 72: x << (e2 - j) < 2^100 */
        const u128 num = (u128)x << (e2 - j), den = pow5_of(j);
        const u128 quo = num / den;
        r.n = (uint64_t)quo;
        r.exact = quo * den == num;
        return r;
    }
    /* 1 <= m <= 46, 0 <= s <= 105: x * 5^m = h * 2^64 + low, shifted by s */
    const int m = -j, s = -e2 - m;
    const u128 ph = (u128)x * pow5[m][0], pl = (u128)x * pow5[m][1];
    const u128 h = ph + (pl >> 64);
    const uint64_t low = (uint64_t)pl;
    if (s >= 64) {
        const int t = s - 64; /* <= 41 */
        r.n = (uint64_t)(h >> t);
        r.exact = low == 0 && (h & (((u128)1 << t) - 1)) == 0;
    } else if (s == 0) {
        r.n = low;
        r.exact = true;
    } else {
        r.n = (uint64_t)(h << (64 - s)) | low >> s;
        r.exact = (low & ((UINT64_C(1) << s) - 1)) == 0;
    }
    return r;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* The decimal digits of n (no sign, no NUL) at out; returns their count (1..20). */
static int put_digits(char *out, uint64_t n) {
    char tmp[20];
    int i = 20;
    while (n >= 100) {
        const unsigned d = (unsigned)(n % 100) * 2;
        n /= 100;
        tmp[--i] = digit_pairs[d + 1];
        tmp[--i] = digit_pairs[d];
    }
    if (n >= 10) {
        tmp[--i] = digit_pairs[n * 2 + 1];
        tmp[--i] = digit_pairs[n * 2];
    } else {
        tmp[--i] = (char)('0' + n);
    }
    memcpy(out, tmp + i, (size_t)(20 - i));
    return 20 - i;
}

size_t attn_format_int(char *buf, long long v) {
    char *p = buf;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        *p++ = '-';
        u = 0 - u;
    }
    p += put_digits(p, u);
    *p = '\0';
    return (size_t)(p - buf);
}

static size_t put_text(char *buf, const char *s) {
    const size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return n;
}

size_t attn_format_float(char *buf, float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const bool neg = bits >> 31;
    const uint32_t be = bits >> 23 & 0xff, frac = bits & 0x7fffff;
    if (be == 0xff) return put_text(buf, frac ? (neg ? "-nan" : "nan") : (neg ? "-inf" : "inf"));
    char *p = buf;
    if (neg) *p++ = '-';
    if (be == 0 && frac == 0) {
        *p++ = '0';
        *p = '\0';
        return (size_t)(p - buf);
    }
    const uint64_t c = be ? frac | UINT32_C(1) << 23 : frac;
    const int e2 = (be ? (int)be - 150 : -149) - 2;
    const bool closer_below = frac == 0 && be > 1, bounds_in = (c & 1) == 0;
    const int j = floor_log10_pow2(e2);
    const scaled l = scale(4 * c - (closer_below ? 1 : 2), e2, j);
    const scaled h = scale(4 * c + 2, e2, j);
    const scaled v2 = scale(8 * c, e2, j); /* twice v */
    const uint64_t lo = l.exact && bounds_in ? l.n : l.n + 1;
    const uint64_t hi = h.exact && !bounds_in ? h.n - 1 : h.n;
    /* [lo_r, hi_r]: the multiples of 10^r in [lo, hi], divided by 10^r */
    uint64_t lo_r = lo, hi_r = hi, p10 = 1;
    int r = 0;
    while (hi_r / 10 >= (lo_r + 9) / 10) {
        hi_r /= 10;
        lo_r = (lo_r + 9) / 10;
        p10 *= 10;
        r++;
    }
    /* n0 * 10^r <= v < (n0 + 1) * 10^r; 2v - 2 * n0 * 10^r against 10^r says which is closer */
    const uint64_t n0 = (v2.n >> 1) / p10, d2 = v2.n - 2 * n0 * p10;
    const int cmp = d2 < p10 ? -1 : d2 > p10 ? 1 : v2.exact ? 0 : 1;
    uint64_t n = cmp > 0 || (cmp == 0 && (n0 & 1)) ? n0 + 1 : n0;
    if (n < lo_r) n = lo_r;
    if (n > hi_r) n = hi_r;
    while (n % 10 == 0) {
        n /= 10;
        r++;
    }
    /* v reads back from n * 10^(j + r); dexp: the exponent of its first digit */
    char dig[20];
    const int nd = put_digits(dig, n), dexp = nd - 1 + j + r;
    if (dexp >= -4 && dexp < 9) {
        if (dexp < 0) { /* 0.000ddd */
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -dexp - 1; i++) *p++ = '0';
            memcpy(p, dig, (size_t)nd);
            p += nd;
        } else if (nd <= dexp + 1) { /* ddd000 */
            memcpy(p, dig, (size_t)nd);
            p += nd;
            for (int i = nd; i < dexp + 1; i++) *p++ = '0';
        } else { /* ddd.ddd */
            memcpy(p, dig, (size_t)dexp + 1);
            p += dexp + 1;
            *p++ = '.';
            memcpy(p, dig + dexp + 1, (size_t)(nd - dexp - 1));
            p += nd - dexp - 1;
        }
    } else { /* d.ddde+XX, |XX| <= 45 */
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = dexp < 0 ? '-' : '+';
        const int a = dexp < 0 ? -dexp : dexp;
        *p++ = digit_pairs[a * 2];
        *p++ = digit_pairs[a * 2 + 1];
    }
    *p = '\0';
    return (size_t)(p - buf);
}
