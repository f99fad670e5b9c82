/* Numbers as text (attn/write.h, write/fmt.c): attn_format_float against
 * hand-written texts, against the brute-force shortest of fmt-ref.h (the C
 * library's exact printf and strtof) on edge cases and a few million random
 * floats, the promise that %.9g's bytes stay wherever %.9g was already the
 * shortest, attn_format_int, and the maps and context CSV sinks against a
 * writer made here with fprintf. Every float bit pattern: tests/fmt-exhaustive.c. */
#include "attn/attn.h"
#include "attn/write.h"
#include "fmt-ref.h"
#include "support.h"

#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks x: the text reads back, is the brute-force shortest, has %.9g's
 * bytes when %.9g has as few digits, else fewer digits, and is not longer
 * than the first %.{p}g (p = 1..9) that reads back, with the same digits when
 * that one is as short. Returns the number of failures (and prints them). */
static int check_one(float x) {
    char got[ATTN_FLOAT_TEXT_MAX + 16], want[64], g9[64];
    memset(got, '#', sizeof got);
    const size_t n = attn_format_float(got, x);
    snprintf(g9, sizeof g9, "%.9g", (double)x);
    if (n >= ATTN_FLOAT_TEXT_MAX || strlen(got) != n) {
        fprintf(stderr, "%08x: length %zu\n", (unsigned)ref_bits(x), n);
        return 1;
    }
    if (!isfinite(x) || x == 0) {
        if (strcmp(got, g9)) {
            fprintf(stderr, "%08x: \"%s\", %%.9g \"%s\"\n", (unsigned)ref_bits(x), got, g9);
            return 1;
        }
        return 0;
    }
    int bad = 0;
    ref_shortest(want, sizeof want, x);
    if (strcmp(got, want) || !ref_reads_back(got, x)) {
        fprintf(stderr, "%08x: \"%s\", the shortest \"%s\"\n", (unsigned)ref_bits(x), got, want);
        bad++;
    }
    const int nd = ref_digit_count(got), nd9 = ref_digit_count(g9);
    if (nd == nd9 ? strcmp(got, g9) != 0 : nd > nd9) {
        fprintf(stderr, "%08x: \"%s\" against %%.9g \"%s\"\n", (unsigned)ref_bits(x), got, g9);
        bad++;
    }
    for (int p = 1; p <= 9; p++) { /* the plain %.{p}g search */
        char gp[64];
        snprintf(gp, sizeof gp, "%.*g", p, (double)x);
        if (!ref_reads_back(gp, x)) continue;
        if (nd > ref_digit_count(gp) ||
            (nd == ref_digit_count(gp) && strtod(got, NULL) != strtod(gp, NULL))) {
            fprintf(stderr, "%08x: \"%s\" against %%.%dg \"%s\"\n", (unsigned)ref_bits(x), got, p, gp);
            bad++;
        }
        break;
    }
    return bad;
}

/* x and its n neighbours on each side (of the same sign). */
static int check_around(float x, int n) {
    int bad = 0;
    float lo = x, hi = x;
    bad += check_one(x);
    for (int i = 0; i < n; i++) {
        lo = nextafterf(lo, 0.0f);
        hi = nextafterf(hi, copysignf(INFINITY, x));
        bad += check_one(lo) + check_one(hi);
    }
    return bad;
}

typedef struct text_case {
    float x;
    const char *want;
} text_case;

/* Written by hand: the shortest decimal, and the notation of the README. */
static const text_case float_cases[] = {
    {0.0f, "0"}, {-0.0f, "-0"}, {1.0f, "1"}, {-1.0f, "-1"}, {0.5f, "0.5"}, {0.25f, "0.25"},
    {0.1f, "0.1"}, {0.2f, "0.2"}, {0.3f, "0.3"}, {-0.7f, "-0.7"}, {1.0f / 3.0f, "0.33333334"},
    {2.0f / 3.0f, "0.6666667"}, {100.0f, "100"}, {123.456f, "123.456"}, {0.0001f, "0.0001"},
    {0.00012f, "0.00012"}, {1e-5f, "1e-05"}, {1.5e-5f, "1.5e-05"}, {1e8f, "100000000"},
    {123456792.0f, "123456790"}, {1e9f, "1e+09"}, {1.5e10f, "1.5e+10"},
    {16777216.0f, "16777216"}, {16777217.0f, "16777216"}, {3.14159274f, "3.1415927"},
    {FLT_MAX, "3.4028235e+38"}, {-FLT_MAX, "-3.4028235e+38"}, {FLT_MIN, "1.1754944e-38"},
    {1e-45f, "1e-45"}, {-1e-45f, "-1e-45"}, {2.8e-45f, "3e-45"}, {FLT_TRUE_MIN * 8388607.0f, "1.1754942e-38"},
    {1e38f, "1e+38"}, {1e-38f, "1e-38"}, {1e-10f, "1e-10"}, {9.5f, "9.5"},
    {INFINITY, "inf"}, {-INFINITY, "-inf"},
};
#define N_TEXTS (int)(sizeof float_cases / sizeof float_cases[0])

START_TEST(float_texts) {
    char got[ATTN_FLOAT_TEXT_MAX];
    const size_t n = attn_format_float(got, float_cases[_i].x);
    ck_assert_str_eq(got, float_cases[_i].want);
    ck_assert_uint_eq(n, strlen(float_cases[_i].want));
}
END_TEST

START_TEST(float_nan) {
    char got[ATTN_FLOAT_TEXT_MAX];
    ck_assert_uint_eq(attn_format_float(got, NAN), 3);
    ck_assert_str_eq(got, "nan");
    attn_format_float(got, -NAN);
    ck_assert_str_eq(got, "-nan");
    attn_format_float(got, ref_float(0x7f800001u)); /* a signalling NaN */
    ck_assert_str_eq(got, "nan");
    attn_format_float(got, ref_float(0xffffffffu));
    ck_assert_str_eq(got, "-nan");
}
END_TEST

START_TEST(float_edges) {
    int bad = 0;
    for (uint32_t b = 1; b < 4096; b++) bad += check_one(ref_float(b)); /* the least subnormals */
    for (uint32_t b = 0x7fffffu - 4096; b <= 0x800001u + 4096; b++) /* subnormal to normal */
        bad += check_one(ref_float(b));
    for (uint32_t b = 0x7f7fffffu - 4096; b <= 0x7f7fffffu; b++) bad += check_one(ref_float(b));
    for (int e = -149; e <= 127; e++) bad += check_around(ldexpf(1.0f, e), 3); /* powers of 2 */
    for (int e = -45; e <= 38; e++) { /* powers of 10 and their multiples of the notation switch */
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        const float p = strtof(s, NULL);
        if (p == 0) continue;
        bad += check_around(p, 8) + check_around(-p, 2);
        snprintf(s, sizeof s, "9.9999999e%d", e - 1);
        bad += check_around(strtof(s, NULL), 8);
        snprintf(s, sizeof s, "5e%d", e);
        bad += check_around(strtof(s, NULL), 2);
    }
    const float misc[] = {FLT_MAX, FLT_MIN, FLT_TRUE_MIN, 0.1f, 1e-45f, 0.0001f, 0.00001f, 1e8f,
                          1e9f, 999999936.0f, 99999.9922f, 16777216.0f};
    for (size_t i = 0; i < sizeof misc / sizeof misc[0]; i++) bad += check_around(misc[i], 16);
    ck_assert_int_eq(bad, 0);
}
END_TEST

/* Random bit patterns (every exponent alike, NaN and infinities too), and
 * random weights in (0, 1), small weights and normal values, as the maps and
 * context vectors have: 300,000 in each of two runs against the brute force
 * (12 us each), and 3 million more that must read back. */
START_TEST(float_random) {
    tu_rng r = {20261203u + (unsigned)_i};
    int bad = 0;
    for (long i = 0; i < tu_scaled(75000); i++) {
        bad += check_one(ref_float((uint32_t)tu_rng_u64(&r)));
        bad += check_one((float)tu_rng_unif(&r));
        bad += check_one((float)(tu_rng_unif(&r) * tu_rng_unif(&r) * 1e-3));
        bad += check_one((float)(tu_rng_normal(&r) * 4.0));
    }
    for (long i = 0; i < tu_scaled(1500000); i++) {
        const float x = ref_float((uint32_t)tu_rng_u64(&r)), y = (float)tu_rng_unif(&r);
        char got[ATTN_FLOAT_TEXT_MAX];
        attn_format_float(got, x);
        if (isfinite(x) && !ref_reads_back(got, x) && bad++ < 10)
            fprintf(stderr, "%08x: \"%s\" does not read back\n", (unsigned)ref_bits(x), got);
        attn_format_float(got, y);
        if (!ref_reads_back(got, y) && bad++ < 10)
            fprintf(stderr, "%08x: \"%s\" does not read back\n", (unsigned)ref_bits(y), got);
    }
    ck_assert_int_eq(bad, 0);
}
END_TEST

START_TEST(int_texts) {
    static const struct {
        long long v;
        const char *want;
    } cases[] = {{0, "0"}, {7, "7"}, {-1, "-1"}, {10, "10"}, {99, "99"}, {100, "100"},
                 {123456789, "123456789"}, {-2147483648LL, "-2147483648"},
                 {LLONG_MAX, "9223372036854775807"}, {LLONG_MIN, "-9223372036854775808"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[ATTN_INT_TEXT_MAX];
        ck_assert_uint_eq(attn_format_int(got, cases[i].v), strlen(cases[i].want));
        ck_assert_str_eq(got, cases[i].want);
    }
    tu_rng r = {5u};
    for (long i = 0; i < tu_scaled(100000); i++) {
        const long long v = (long long)tu_rng_u64(&r) >> (tu_rng_u64(&r) % 64);
        char got[ATTN_INT_TEXT_MAX], want[32];
        attn_format_int(got, v);
        snprintf(want, sizeof want, "%lld", v);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

/* The maps CSV as the writer of attn 0.1 made it, with fprintf, except the weight: attn_format_float. */
static void maps_expected(FILE *f, const attn_run_info *run, const attn_capture_key *key,
                          const attn_capture_view *v) {
    char hb[16];
    for (int r = 0; r < v->rows; r++) {
        const int q = v->row_offset + r;
        for (int c = 0; c < v->cols && !(key->causal && c > q); c++) {
            char num[ATTN_FLOAT_TEXT_MAX];
            attn_format_float(num, v->data[(size_t)r * (size_t)v->cols + (size_t)c]);
            if (run->key) attn_csv_field(f, run->key, false);
            else fprintf(f, "%ld", run->input);
            fprintf(f, ",%s,%d,%s,%s,%d,", attn_stack_name(key->stack), key->layer,
                    attn_kind_name(key->kind), attn_head_name(key->head, hb, sizeof hb), q);
            attn_csv_field(f, attn_labels_at(run->main, q), false);
            fprintf(f, ",%d,", c);
            attn_csv_field(f, attn_labels_at(run->main, c), false);
            fprintf(f, ",%s\n", num);
        }
    }
}

static char *emit_maps(const attn_run_info *run, const attn_capture_key *key,
                       const attn_capture_view *v, bool reference, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    ck_assert_ptr_nonnull(f);
    if (reference) {
        maps_expected(f, run, key, v);
    } else {
        attn_csv_maps w = {.f = f, .run = run};
        ck_assert_int_eq(attn_csv_maps_emit(&w, key, v, NULL), ATTN_OK);
    }
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* Random maps, causal or not, a key or a number as input, labels that need
 * escapes and quotes, one of them longer than the writer's 64 KiB chunk: the
 * same bytes as the fprintf writer above, and every weight reads back.
 * Cases 3 and 4 are maps large enough for the writer's threads (2 and 3):
 * the same bytes too. */
START_TEST(csv_maps_same_rows) {
    tu_rng r = {77u + (unsigned)_i};
    const int T = _i == 1 ? 20 : _i == 3 ? 300 : _i == 4 ? 257 : 40 + _i * 17;
    attn_set_threads(_i >= 3 ? _i - 1 : 1);
    char **texts = calloc((size_t)T, sizeof *texts);
    ck_assert_ptr_nonnull(texts);
    for (int t = 0; t < T; t++) {
        const bool longest = t == 5 && _i == 1; /* 1.1 MB of x and a few bytes to escape */
        const size_t n = longest ? (size_t)1100000 : 1 + tu_rng_u64(&r) % 12;
        texts[t] = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            texts[t][i] = longest && i % 1000 ? 'x' : " ,\"\nab\x01\xc3\xa9xyz"[tu_rng_u64(&r) % 13];
        texts[t][n] = '\0';
    }
    attn_labels labels = {.n = (size_t)T, .text = texts};
    attn_run_info run = {.input = 3, .key = _i == 2 ? "key,\"k\"" : NULL, .main = &labels};
    float *w = malloc((size_t)T * (size_t)T * sizeof *w);
    for (int i = 0; i < T * T; i++)
        w[i] = i % 7 == 0 ? tu_rng_signed(&r) * 1e-30f : (float)tu_rng_unif(&r);
    for (int causal = 0; causal < 2; causal++) {
        attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = 2, .head = _i == 1 ? ATTN_HEAD_MEAN : 3,
                                .causal = causal};
        attn_capture_view v = {.rows = T - 3, .cols = T, .row_offset = 3, .data = w + 3 * T};
        size_t n_got, n_want;
        char *got = emit_maps(&run, &key, &v, false, &n_got);
        char *want = emit_maps(&run, &key, &v, true, &n_want);
        ck_assert_uint_eq(n_got, n_want);
        ck_assert_int_eq(memcmp(got, want, n_got), 0);
        /* the weights read back: the last field of every line, in the writer's order */
        char *line = got, *const end = got + n_got;
        for (int i = 0; i < v.rows; i++)
            for (int c = 0; c < T && !(causal && c > i + 3); c++) {
                /* memchr, not strchr: under ASan's strict_string_checks a
                 * strchr reads the whole rest of the text, line after line */
                char *nl = memchr(line, '\n', (size_t)(end - line));
                ck_assert_ptr_nonnull(nl);
                *nl = '\0';
                const char *comma = strrchr(line, ',');
                ck_assert_ptr_nonnull(comma);
                const float want_w = v.data[(size_t)i * (size_t)T + (size_t)c];
                ck_assert_msg(ref_bits(strtof(comma + 1, NULL)) == ref_bits(want_w), "%d %d: %s", i, c,
                              comma + 1);
                line = nl + 1;
            }
        ck_assert_int_eq(*line, '\0');
        free(got);
        free(want);
    }
    attn_set_threads(1);
    for (int t = 0; t < T; t++) free(texts[t]);
    free(texts);
    free(w);
}
END_TEST

/* The context CSV: every number of every row reads back as the float written. */
START_TEST(csv_context_reads_back) {
    tu_rng r = {9u};
    enum { T = 5, D = 300 };
    static float x[T * D];
    for (int i = 0; i < T * D; i++)
        x[i] = i % 11 == 0 ? ref_float((uint32_t)tu_rng_u64(&r) & 0xff7fffffu) /* finite */
                           : (float)(tu_rng_normal(&r) * 3.0);
    char t0[] = "a", t1[] = "b", t2[] = "c", t3[] = "d", t4[] = "e";
    char *texts[] = {t0, t1, t2, t3, t4};
    attn_labels labels = {.n = T, .text = texts};
    attn_run_info run = {.input = 1, .main = &labels};
    attn_capture_key key = {.value = ATTN_V_HIDDEN, .layer = -1, .head = -1};
    attn_capture_view v = {.rows = T, .cols = D, .data = x};
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    attn_csv_context w = {.f = f, .run = &run};
    ck_assert_int_eq(attn_csv_context_emit(&w, &key, &v, NULL), ATTN_OK);
    ck_assert_int_eq(fclose(f), 0);
    char *p = buf;
    for (int t = 0; t < T; t++) {
        char head[16];
        snprintf(head, sizeof head, "1,%d,%s", t, texts[t]);
        ck_assert_int_eq(strncmp(p, head, strlen(head)), 0);
        p += strlen(head);
        for (int d = 0; d < D; d++) {
            ck_assert_int_eq(*p, ',');
            char *end;
            const float y = strtof(p + 1, &end);
            ck_assert_msg(ref_bits(y) == ref_bits(x[t * D + d]), "pos %d d%d: %.20s", t, d, p + 1);
            p = end;
        }
        ck_assert_int_eq(*p++, '\n');
    }
    ck_assert_int_eq(*p, '\0');
    free(buf);
}
END_TEST

static Suite *fmt_suite(void) {
    Suite *s = suite_create("fmt");
    TCase *tc = tcase_create("float");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, float_texts, 0, N_TEXTS);
    tcase_add_test(tc, float_nan);
    tcase_add_test(tc, float_edges);
    tcase_add_loop_test(tc, float_random, 0, 2);
    tcase_add_test(tc, int_texts);
    suite_add_tcase(s, tc);
    tc = tcase_create("csv");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, csv_maps_same_rows, 0, 5);
    tcase_add_test(tc, csv_context_reads_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(fmt_suite()); }
