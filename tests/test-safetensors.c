/* Tests for the safetensors reader and writer (public API only).
 *
 * Files are either written by attn_safetensors_write or built byte by byte
 * here (u64 length + header text + data), so every refusal can be produced
 * on purpose. Expected values never come from the code under test: F16 goes
 * through the compiler's _Float16 where it has one (else through the
 * definition, sign * significand * 2^exponent with ldexpf), BF16 through a
 * 16-bit shift, F32 is
 * compared bit for bit with what was written, and the writer's output is
 * re-read with cJSON and raw byte comparisons. The load tests also open
 * models (attn_model_open), for what the loader checks in the values. */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* GCC defines __FLT16_MAX__ exactly when it supports _Float16; clang 14 on
 * x86-64 has no _Float16 and the test falls back to the definition. */
#ifdef __FLT16_MAX__
#define HAVE_REF_FLOAT16 1
__extension__ typedef _Float16 ref_f16;
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* Random numbers: tu_rng (splitmix64, tests/support.h). */
static float rng_float(tu_rng *r) { /* in [-2, 2), never all zeros */
    return (float)((double)(tu_rng_u64(r) >> 11) * 0x1p-53 * 4.0 - 2.0);
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void make_tmpdir(char *dir, size_t cap) { tu_tmpdir(dir, cap, "attn-st-"); }

static size_t count_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    unsigned char *b = (unsigned char *)tu_read_file_n(path, n);
    ck_assert_msg(b != NULL, "cannot open %s", path);
    return b;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A safetensors image: claimed header length, header text, data bytes. */
static unsigned char *build_raw(uint64_t claimed, const char *header, const void *data,
                                size_t dlen, size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + dlen;
    unsigned char *b = malloc(*len + 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(claimed >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    return b;
}

static unsigned char *build(const char *header, const void *data, size_t dlen, size_t *len) {
    return build_raw(strlen(header), header, data, dlen, len);
}

/* dlen bytes of random data (for files whose content does not matter). */
static unsigned char *random_bytes(size_t dlen, uint64_t seed) {
    tu_rng r = {seed};
    unsigned char *d = malloc(dlen ? dlen : 1);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < dlen; i++) d[i] = (unsigned char)tu_rng_u64(&r);
    return d;
}

static void assert_one_line(const attn_error *err) {
    ck_assert_ptr_null(strchr(err->message, '\n'));
    ck_assert_uint_gt(strlen(err->message), 0);
}

/* Parses header + dlen random bytes and expects ATTN_ERR_FORMAT with a
 * message that names the buffer and contains each of the given pieces. */
static void expect_refusal(const char *header, size_t dlen, const char *piece1,
                           const char *piece2) {
    unsigned char *data = random_bytes(dlen, 77);
    size_t len;
    unsigned char *b = build(header, data, dlen, &len);
    attn_safetensors *st = (attn_safetensors *)(uintptr_t)1;
    attn_error err = {0};
    int rc = attn_safetensors_parse(&st, b, len, "img.safetensors", &err);
    ck_assert_msg(rc == ATTN_ERR_FORMAT, "header %s: rc %d, message: %s", header, rc, err.message);
    ck_assert_int_eq(err.status, ATTN_ERR_FORMAT);
    ck_assert_ptr_null(st);
    assert_one_line(&err);
    ck_assert_msg(strstr(err.message, "img.safetensors"), "no file name in: %s", err.message);
    if (piece1) ck_assert_msg(strstr(err.message, piece1), "no \"%s\" in: %s", piece1, err.message);
    if (piece2) ck_assert_msg(strstr(err.message, piece2), "no \"%s\" in: %s", piece2, err.message);
    free(b);
    free(data);
}

static attn_safetensors *parse_ok(const void *b, size_t len) {
    attn_safetensors *st = NULL;
    attn_error err = {0};
    int rc = attn_safetensors_parse(&st, b, len, "ok.safetensors", &err);
    ck_assert_msg(rc == ATTN_OK, "rc %d: %s", rc, err.message);
    ck_assert_ptr_nonnull(st);
    return st;
}

static void assert_same_floats(const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(float_bits(got[i]) == float_bits(want[i]), "element %zu: %08x != %08x", i,
                      float_bits(got[i]), float_bits(want[i]));
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */

START_TEST(test_roundtrip_random) {
    tu_rng r = {0x5eed0001};
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);

    enum { NT = 7 };
    /* names deliberately out of alphabetical order */
    const char *names[NT] = {"zeta", "blocks.0.attn.q.weight", "alpha", "m", "tok_embed",
                             "b\"quoted\\name", "norm.weight"};
    attn_tensor_spec specs[NT];
    float *bufs[NT];
    for (int i = 0; i < NT; i++) {
        specs[i].name = names[i];
        specs[i].ndim = 1 + (int)(tu_rng_u64(&r) % 4);
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) {
            specs[i].shape[d] = 1 + (int64_t)(tu_rng_u64(&r) % 7);
            numel *= (size_t)specs[i].shape[d];
        }
        bufs[i] = malloc(numel * sizeof(float));
        ck_assert_ptr_nonnull(bufs[i]);
        for (size_t k = 0; k < numel; k++) {
            /* arbitrary bit patterns (NaNs included) must survive exactly */
            uint32_t u = (uint32_t)tu_rng_u64(&r);
            if (k % 2 == 0) u = float_bits(rng_float(&r));
            memcpy(&bufs[i][k], &u, 4);
        }
        specs[i].data = bufs[i];
    }
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_write(path, specs, NT, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(count_entries(dir), 1); /* no temporary left */

    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_str_eq(attn_safetensors_name(st), path);
    ck_assert_uint_eq(attn_safetensors_count(st), NT);
    for (int i = 0; i < NT; i++) {
        const attn_tensor *t = attn_safetensors_at(st, (size_t)i);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_int_eq(t->dtype, ATTN_DTYPE_F32);
        ck_assert_int_eq(t->ndim, specs[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            ck_assert_int_eq(t->shape[d], specs[i].shape[d]);
            numel *= (size_t)specs[i].shape[d];
        }
        ck_assert_uint_eq(t->numel, numel);
        ck_assert_uint_eq((uintptr_t)t->data % 4, 0);
        assert_same_floats(t->data, bufs[i], numel);
        ck_assert_ptr_eq(attn_safetensors_find(st, names[i]), t);
    }
    ck_assert_ptr_null(attn_safetensors_at(st, NT));
    ck_assert_ptr_null(attn_safetensors_find(st, "missing"));
    ck_assert_ptr_null(attn_safetensors_find(st, "alph"));
    ck_assert_ptr_null(attn_safetensors_find(st, "__metadata__"));
    attn_safetensors_close(st);

    /* The raw file, read without the library: length, padding, header, data. */
    size_t flen;
    unsigned char *raw = read_bytes(path, &flen);
    ck_assert_uint_ge(flen, 8);
    uint64_t n = le64(raw);
    ck_assert_uint_eq(n % 8, 0);
    ck_assert_uint_le(8 + n, flen);
    ck_assert_int_eq(raw[8], '{');
    const char *hdr = (const char *)raw + 8;
    size_t jl = (size_t)n;
    while (jl > 0 && hdr[jl - 1] == ' ') jl--;
    ck_assert_int_eq(hdr[jl - 1], '}');
    ck_assert_uint_lt(n - jl, 8);
    cJSON *root = cJSON_ParseWithLength(hdr, (size_t)n);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), NT);
    uint64_t off = 0;
    int i = 0;
    for (cJSON *e = root->child; e; e = e->next, i++) {
        ck_assert_str_eq(e->string, names[i]); /* header order = given order */
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F32");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        ck_assert_int_eq(cJSON_GetArraySize(shape), specs[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) {
            ck_assert_int_eq((int64_t)cJSON_GetArrayItem(shape, d)->valuedouble, specs[i].shape[d]);
            numel *= (size_t)specs[i].shape[d];
        }
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        uint64_t b0 = (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
        uint64_t b1 = (uint64_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
        ck_assert_uint_eq(b0, off);
        ck_assert_uint_eq(b1 - b0, numel * 4);
        ck_assert_int_eq(memcmp(raw + 8 + n + b0, bufs[i], numel * 4), 0);
        off = b1;
    }
    ck_assert_uint_eq(8 + n + off, flen);
    cJSON_Delete(root);
    free(raw);
    for (int k = 0; k < NT; k++) free(bufs[k]);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_many_tensors_lookup) {
    /* enough names to fill and probe the hash table well */
    enum { NT = 1000 };
    tu_rng r = {0x5eed0002};
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/many.safetensors", dir);
    static char names[NT][32];
    static float vals[NT][2];
    attn_tensor_spec *specs = calloc(NT, sizeof *specs);
    ck_assert_ptr_nonnull(specs);
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], sizeof names[i], "blocks.%d.w%llu", NT - i,
                 (unsigned long long)(tu_rng_u64(&r) % 1000));
        vals[i][0] = rng_float(&r);
        vals[i][1] = (float)i;
        specs[i].name = names[i];
        specs[i].ndim = 1;
        specs[i].shape[0] = 2;
        specs[i].data = vals[i];
    }
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_write(path, specs, NT, &err) == ATTN_OK, "%s", err.message);
    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(attn_safetensors_count(st), NT);
    for (int i = 0; i < NT; i++) {
        const attn_tensor *t = attn_safetensors_find(st, names[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_ptr_eq(t, attn_safetensors_at(st, (size_t)i));
        assert_same_floats(t->data, vals[i], 2);
    }
    attn_safetensors_close(st);
    free(specs);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_zero_d_and_zero_size) {
    tu_rng r = {0x5eed0003};
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/z.safetensors", dir);
    float scalar = rng_float(&r), v[3] = {rng_float(&r), rng_float(&r), rng_float(&r)};
    attn_tensor_spec specs[5] = {
        {.name = "empty_first", .ndim = 2, .shape = {3, 0}, .data = NULL},
        {.name = "scalar", .ndim = 0, .data = &scalar},
        {.name = "vec", .ndim = 1, .shape = {3}, .data = v},
        {.name = "empty_mid", .ndim = 1, .shape = {0}, .data = v},
        {.name = "empty_last", .ndim = 3, .shape = {2, 0, 5}, .data = NULL},
    };
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_write(path, specs, 5, &err) == ATTN_OK, "%s", err.message);
    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(attn_safetensors_count(st), 5);
    const attn_tensor *t = attn_safetensors_find(st, "scalar");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_uint_eq(t->numel, 1);
    assert_same_floats(t->data, &scalar, 1);
    t = attn_safetensors_find(st, "empty_first");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[1], 0);
    ck_assert_uint_eq(t->numel, 0);
    ck_assert_uint_eq(attn_safetensors_find(st, "empty_mid")->numel, 0);
    ck_assert_uint_eq(attn_safetensors_find(st, "empty_last")->numel, 0);
    assert_same_floats(attn_safetensors_find(st, "vec")->data, v, 3);
    ck_assert_str_eq(attn_safetensors_at(st, 4)->name, "empty_last");
    attn_safetensors_close(st);

    /* no tensors at all */
    ck_assert_msg(attn_safetensors_write(path, NULL, 0, &err) == ATTN_OK, "%s", err.message);
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(attn_safetensors_count(st), 0);
    ck_assert_ptr_null(attn_safetensors_at(st, 0));
    ck_assert_ptr_null(attn_safetensors_find(st, "scalar"));
    attn_safetensors_close(st);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_overwrite_existing) {
    tu_rng r = {0x5eed0004};
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/o.safetensors", dir);
    float a[2] = {rng_float(&r), rng_float(&r)}, b[3] = {rng_float(&r), rng_float(&r), rng_float(&r)};
    attn_tensor_spec sa = {.name = "a", .ndim = 1, .shape = {2}, .data = a};
    attn_tensor_spec sb = {.name = "b", .ndim = 1, .shape = {3}, .data = b};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, &sa, 1, &err), ATTN_OK);
    ck_assert_int_eq(attn_safetensors_write(path, &sb, 1, &err), ATTN_OK);
    ck_assert_uint_eq(count_entries(dir), 1);
    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(attn_safetensors_count(st), 1);
    ck_assert_ptr_null(attn_safetensors_find(st, "a"));
    assert_same_floats(attn_safetensors_find(st, "b")->data, b, 3);
    attn_safetensors_close(st);
    tu_rm_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hand-built files: alignment, metadata, F16, BF16                          */

START_TEST(test_unaligned_data_area) {
    tu_rng r = {0x5eed0005};
    float a[6], b[2];
    for (int i = 0; i < 6; i++) a[i] = rng_float(&r);
    for (int i = 0; i < 2; i++) b[i] = rng_float(&r);
    unsigned char data[32];
    memcpy(data, a, 24);
    memcpy(data + 24, b, 8);
    const char *base = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}";
    for (int pad = 0; pad < 8; pad++) {
        char header[256];
        snprintf(header, sizeof header, "%s%*s", base, pad, "");
        size_t len;
        unsigned char *img = build(header, data, sizeof data, &len); /* malloc: 16-aligned */
        size_t data_at = 8 + strlen(header);
        attn_safetensors *st = parse_ok(img, len);
        const attn_tensor *ta = attn_safetensors_find(st, "a"), *tb = attn_safetensors_find(st, "b");
        ck_assert_uint_eq((uintptr_t)ta->data % 4, 0);
        ck_assert_uint_eq((uintptr_t)tb->data % 4, 0);
        assert_same_floats(ta->data, a, 6);
        assert_same_floats(tb->data, b, 2);
        bool inside = (const unsigned char *)ta->data >= img &&
                      (const unsigned char *)ta->data < img + len;
        if (data_at % 4 == 0) /* aligned F32 is a view, not a copy */
            ck_assert_ptr_eq(ta->data, (const void *)(img + data_at));
        else
            ck_assert(!inside);
        attn_safetensors_close(st);

        if (data_at % 4 != 0) { /* and through open() / mmap */
            char dir[256], path[512];
            make_tmpdir(dir, sizeof dir);
            snprintf(path, sizeof path, "%s/u.safetensors", dir);
            tu_write_file(path, img, len);
            attn_error err = {0};
            ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
            assert_same_floats(attn_safetensors_find(st, "a")->data, a, 6);
            assert_same_floats(attn_safetensors_find(st, "b")->data, b, 2);
            ck_assert_uint_eq((uintptr_t)attn_safetensors_find(st, "b")->data % 4, 0);
            attn_safetensors_close(st);
            tu_rm_tree(dir);
        }
        free(img);
    }
}
END_TEST

START_TEST(test_metadata_ignored) {
    tu_rng r = {0x5eed0006};
    float a[2] = {rng_float(&r), rng_float(&r)};
    const char *header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
                         "\"a\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}";
    size_t len;
    unsigned char *img = build(header, a, sizeof a, &len);
    attn_safetensors *st = parse_ok(img, len);
    ck_assert_uint_eq(attn_safetensors_count(st), 1);
    ck_assert_str_eq(attn_safetensors_at(st, 0)->name, "a");
    ck_assert_ptr_null(attn_safetensors_find(st, "__metadata__"));
    assert_same_floats(attn_safetensors_find(st, "a")->data, a, 2);
    attn_safetensors_close(st);
    free(img);
    /* whitespace after the JSON object (the padding) is fine, as is an empty header object */
    img = build("{}   \n", NULL, 0, &len);
    st = parse_ok(img, len);
    ck_assert_uint_eq(attn_safetensors_count(st), 0);
    attn_safetensors_close(st);
    free(img);
}
END_TEST

/* IEEE 754 binary16 by its definition: 1 sign, 5 exponent (bias 15), 10
 * fraction bits; every value is exact in a float, so ldexpf is exact. */
static float f16_by_definition(uint16_t h) {
    int exponent = (h >> 10) & 0x1f;
    int fraction = h & 0x3ff;
    float sign = (h & 0x8000) ? -1.0f : 1.0f;
    if (exponent == 0x1f) return fraction ? copysignf(NAN, sign) : sign * INFINITY;
    if (exponent == 0) return sign * ldexpf((float)fraction, -24); /* subnormal or zero */
    return sign * ldexpf((float)(fraction | 0x400), exponent - 25);
}

#ifdef HAVE_REF_FLOAT16
static float ref_f16_to_float(uint16_t h) {
    ref_f16 x;
    memcpy(&x, &h, sizeof h);
    return (float)x;
}

/* the fallback agrees with the compiler on all 65536 patterns */
START_TEST(test_f16_definition_matches_compiler) {
    for (uint32_t i = 0; i <= 0xffff; i++) {
        float want = ref_f16_to_float((uint16_t)i), got = f16_by_definition((uint16_t)i);
        if (isnan(want))
            ck_assert_msg(isnan(got) && !!signbit(got) == !!signbit(want), "0x%04x", i);
        else
            ck_assert_msg(float_bits(got) == float_bits(want), "0x%04x: got %a, want %a", i,
                          (double)got, (double)want);
    }
}
END_TEST
#else
#define ref_f16_to_float f16_by_definition
#endif

START_TEST(test_f16_conversion) {
    enum { NR = 4000 };
    static const uint16_t special[] = {
        0x0000, 0x8000,         /* +-0 */
        0x0001, 0x8001, 0x0002, /* smallest subnormals */
        0x03ff, 0x83ff, 0x0200, /* largest subnormal, a middle one */
        0x0400, 0x8400,         /* smallest normals */
        0x3c00, 0xbc00, 0x3555, /* 1, -1, ~1/3 */
        0x7bff, 0xfbff,         /* +-65504 */
        0x7c00, 0xfc00,         /* +-inf */
        0x7e00, 0xfe00, 0x7c01, 0x7fff /* NaNs, quiet and signalling */
    };
    const size_t ns = sizeof special / sizeof special[0];
    size_t n = NR + ns;
    uint16_t *h = malloc(n * 2);
    ck_assert_ptr_nonnull(h);
    tu_rng r = {0x5eed0007};
    for (size_t i = 0; i < NR; i++) h[i] = (uint16_t)tu_rng_u64(&r);
    memcpy(h + NR, special, sizeof special);
    unsigned char *data = malloc(n * 2);
    for (size_t i = 0; i < n; i++) { /* little-endian in the file */
        data[2 * i] = (unsigned char)h[i];
        data[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    char header[256];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", n, 2 * n);
    size_t len;
    unsigned char *img = build(header, data, 2 * n, &len);
    attn_safetensors *st = parse_ok(img, len);
    const attn_tensor *t = attn_safetensors_find(st, "h");
    ck_assert_int_eq(t->dtype, ATTN_DTYPE_F16);
    ck_assert_uint_eq(t->numel, n);
    size_t subnormals = 0, infs = 0, nans = 0;
    for (size_t i = 0; i < n; i++) {
        float want = ref_f16_to_float(h[i]);
        float got = t->data[i];
        if (isnan(want)) {
            nans++;
            ck_assert_msg(isnan(got), "0x%04x: got %g, want NaN", h[i], (double)got);
            ck_assert_int_eq(!!signbit(got), !!signbit(want));
        } else {
            if (isinf(want)) infs++;
            if (want != 0 && fabsf(want) < 0x1p-14f) subnormals++;
            ck_assert_msg(float_bits(got) == float_bits(want), "0x%04x: got %a, want %a", h[i],
                          (double)got, (double)want);
        }
    }
    ck_assert_uint_gt(subnormals, 5);
    ck_assert_uint_ge(infs, 2);
    ck_assert_uint_ge(nans, 4);
    attn_safetensors_close(st);
    free(img);
    free(data);
    free(h);
}
END_TEST

START_TEST(test_bf16_conversion) {
    enum { N = 3001 }; /* odd: the F32 tensor after it starts at 2 mod 4 */
    tu_rng r = {0x5eed0008};
    uint16_t h[N];
    for (size_t i = 0; i < N; i++) h[i] = (uint16_t)tu_rng_u64(&r);
    h[0] = 0x7f80; /* inf */
    h[1] = 0xff81; /* NaN with payload */
    h[2] = 0x0001; /* subnormal */
    float tail[3] = {rng_float(&r), rng_float(&r), rng_float(&r)};
    unsigned char data[2 * N + 12];
    for (size_t i = 0; i < N; i++) {
        data[2 * i] = (unsigned char)h[i];
        data[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    memcpy(data + 2 * N, tail, 12);
    char header[256];
    snprintf(header, sizeof header,
             "{\"b\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
             "\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[%d,%d]}}",
             N, 2 * N, 2 * N, 2 * N + 12);
    while (strlen(header) % 4 != 0) strcat(header, " ");
    ck_assert_uint_eq(strlen(header) % 4, 0); /* data area aligned, the F32 tensor is not */
    size_t len;
    unsigned char *img = build(header, data, sizeof data, &len);
    attn_safetensors *st = parse_ok(img, len);
    const attn_tensor *t = attn_safetensors_find(st, "b");
    ck_assert_int_eq(t->dtype, ATTN_DTYPE_BF16);
    ck_assert_uint_eq(t->numel, N);
    for (size_t i = 0; i < N; i++)
        ck_assert_msg(float_bits(t->data[i]) == (uint32_t)h[i] << 16, "0x%04x -> %08x", h[i],
                      float_bits(t->data[i]));
    ck_assert(isinf(t->data[0]));
    const attn_tensor *tf = attn_safetensors_find(st, "t");
    ck_assert_uint_eq((uintptr_t)tf->data % 4, 0);
    assert_same_floats(tf->data, tail, 3);
    attn_safetensors_close(st);
    free(img);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Refusals                                                                  */

START_TEST(test_truncated) {
    tu_rng r = {0x5eed0009};
    char dir[256], path[512], cut_path[600];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    snprintf(cut_path, sizeof cut_path, "%s/cut.safetensors", dir);
    float a[4], b[3];
    for (int i = 0; i < 4; i++) a[i] = rng_float(&r);
    for (int i = 0; i < 3; i++) b[i] = rng_float(&r);
    attn_tensor_spec specs[2] = {{.name = "first", .ndim = 1, .shape = {4}, .data = a},
                                 {.name = "second", .ndim = 1, .shape = {3}, .data = b}};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, specs, 2, &err), ATTN_OK);
    size_t flen;
    unsigned char *raw = read_bytes(path, &flen);
    size_t hdr_end = 8 + (size_t)le64(raw);
    ck_assert_uint_eq(flen, hdr_end + 28);
    struct {
        size_t cut;
        const char *piece;
    } cuts[] = {
        {0, "empty"},           {1, "8-byte"},         {4, "8-byte"},
        {7, "8-byte"},          {8, "exceeds the file size"}, {9, "exceeds the file size"},
        {hdr_end / 2, "exceeds the file size"},  {hdr_end - 1, "exceeds the file size"},
        {hdr_end, "'first'"},   {hdr_end + 1, "'first'"},      {hdr_end + 15, "'first'"},
        {hdr_end + 16, "'second'"}, {flen - 1, "'second'"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        attn_safetensors *st = NULL;
        int rc = attn_safetensors_parse(&st, raw, cuts[i].cut, "cut.safetensors", &err);
        ck_assert_msg(rc == ATTN_ERR_FORMAT, "cut %zu: rc %d", cuts[i].cut, rc);
        ck_assert_ptr_null(st);
        ck_assert_msg(strstr(err.message, cuts[i].piece), "cut %zu: %s", cuts[i].cut,
                      err.message);
        assert_one_line(&err);
        /* the same through open() */
        tu_write_file(cut_path, raw, cuts[i].cut);
        rc = attn_safetensors_open(&st, cut_path, &err);
        ck_assert_msg(rc == ATTN_ERR_FORMAT, "open cut %zu: rc %d", cuts[i].cut, rc);
        ck_assert_ptr_null(st);
        ck_assert_msg(strstr(err.message, cut_path) && strstr(err.message, cuts[i].piece),
                      "open cut %zu: %s", cuts[i].cut, err.message);
    }
    /* the whole file is fine, one extra byte is not */
    attn_safetensors *st = parse_ok(raw, flen);
    attn_safetensors_close(st);
    unsigned char *longer = malloc(flen + 1);
    memcpy(longer, raw, flen);
    longer[flen] = 0x5a;
    ck_assert_int_eq(attn_safetensors_parse(&st, longer, flen + 1, "x", &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "'second'"));
    ck_assert_ptr_nonnull(strstr(err.message, "trailing"));
    free(longer);
    free(raw);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_header_length_beyond_file) {
    size_t len;
    unsigned char *img = build_raw(1000, "{}", NULL, 0, &len);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "big.st", &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "big.st"));
    ck_assert_ptr_nonnull(strstr(err.message, "header length 1000 exceeds the file size"));
    free(img);
    /* a length that would wrap around when added to 8 */
    img = build_raw(UINT64_MAX - 3, "{}", NULL, 0, &len);
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "big.st", &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(st);
    free(img);
}
END_TEST

START_TEST(test_header_over_100mb) {
    /* in memory: claimed 100 MB + 1 with a small buffer */
    size_t len;
    unsigned char *img = build_raw(100000001, "{}", NULL, 0, &len);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "huge.st", &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "100000001"));
    free(img);

    /* on disk, a sparse file large enough that only the 100 MB limit refuses it */
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sparse.safetensors", dir);
    for (int k = 0; k < 2; k++) {
        uint64_t claimed = k == 0 ? 100000001u : 100000000u;
        int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, 8 + 100000001 + 16), 0);
        unsigned char l[8];
        for (int i = 0; i < 8; i++) l[i] = (unsigned char)(claimed >> (8 * i));
        ck_assert_int_eq(pwrite(fd, l, 8, 0), 8);
        close(fd);
        int rc = attn_safetensors_open(&st, path, &err);
        ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(err.message, path));
        if (k == 0)
            ck_assert_msg(strstr(err.message, "limit"), "%s", err.message);
        else /* exactly 100 MB is allowed; the zeros then fail as a header */
            ck_assert_msg(!strstr(err.message, "limit"), "%s", err.message);
    }
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_malformed_json) {
    expect_refusal("{\"a\":", 0, "JSON", NULL);
    expect_refusal("not json", 0, "JSON", NULL);
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}", 4, "JSON",
                   NULL);
    expect_refusal("", 0, "JSON", NULL);
    expect_refusal("[]", 0, "expected a JSON object", NULL);
    expect_refusal("\"str\"", 0, "expected a JSON object", NULL);
    expect_refusal("{} x", 0, "after the JSON object", NULL);
    expect_refusal("{}{}", 0, "after the JSON object", NULL);
    /* a NUL byte inside the header */
    const char h[] = "{}\0     ";
    unsigned char img[8 + sizeof h - 1];
    memset(img, 0, 8);
    img[0] = sizeof h - 1;
    memcpy(img + 8, h, sizeof h - 1);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, sizeof img, "nul.st", &err),
                     ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "NUL"));
}
END_TEST

START_TEST(test_entry_not_object) {
    expect_refusal("{\"w\":3}", 0, "'w'", "expected an object");
    expect_refusal("{\"w\":[0,4]}", 0, "'w'", "expected an object");
    expect_refusal("{\"w\":\"F32\"}", 0, "'w'", "expected an object");
}
END_TEST

START_TEST(test_missing_keys) {
    expect_refusal("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "missing dtype");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "'w'",
                   "missing shape");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'w'", "missing data_offsets");
    expect_refusal("{\"w\":{}}", 0, "'w'", "missing");
}
END_TEST

START_TEST(test_extra_and_duplicate_keys) {
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                   "'w'", "'x'");
    expect_refusal(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
        "'w'", "dtype");
}
END_TEST

START_TEST(test_bad_dtype) {
    expect_refusal("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "'w'",
                   "unsupported dtype F64 (attn reads F32, F16, BF16)");
    expect_refusal("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "'w'",
                   "unsupported dtype I64");
    expect_refusal("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                   "F33");
    expect_refusal("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                   "f32");
    expect_refusal("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                   "dtype");
}
END_TEST

START_TEST(test_bad_dims) {
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                   "'w'", "shape[0]");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4, "'w'",
                   "shape[0]");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "'w'",
                   "shape");
    /* 2^53 + 1 rounds to 2^53 as a double: must still be refused */
    expect_refusal(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[9007199254740993,0],\"data_offsets\":[0,0]}}", 0,
        "'w'", "9007199254740993");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e400],\"data_offsets\":[0,4]}}", 4, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                   "\"data_offsets\":[0,4]}}",
                   4, "'w'", "dimensions");
    /* a bad number in the second entry names the second tensor */
    expect_refusal("{\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[4,8]}}",
                   8, "'w'", NULL);
    /* exactly 2^53 is a valid dimension (the size check then refuses it) */
    expect_refusal(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[9007199254740992],\"data_offsets\":[0,4]}}", 4,
        "'w'", "expected 36028797018963968");
}
END_TEST

START_TEST(test_size_mismatch) {
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
                   "'w'", "expected 24");
    expect_refusal("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
                   "'w'", "expected 12");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}", 0, "'w'",
                   "expected 4");
}
END_TEST

START_TEST(test_shape_overflow) {
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                   "\"data_offsets\":[0,4]}}",
                   4, "'w'", "overflow");
    /* numel fits, numel * 4 does not */
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,1024],"
                   "\"data_offsets\":[0,4]}}",
                   4, "'w'", "overflow");
    /* a zero dimension after huge ones: still refused once the product overflows */
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],"
                   "\"data_offsets\":[0,0]}}",
                   0, "'w'", "overflow");
}
END_TEST

START_TEST(test_bad_offsets) {
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "'w'",
                   "outside");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'w'",
                   "begin > end");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'w'",
                   "data_offsets");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "'w'",
                   "data_offsets");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "'w'",
                   NULL);
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0}}}", 8,
                   "'w'", "data_offsets");
    expect_refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                   "\"data_offsets\":[9007199254740984,9007199254740992]}}",
                   8, "'w'", "outside");
}
END_TEST

START_TEST(test_overlap) {
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12, "'b'", "overlaps tensor 'a'");
    /* the same bytes twice */
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   8, "'b'", "'a'");
    /* header order differs from offset order */
    expect_refusal("{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   16, "'b'", "overlaps tensor 'a'");
    /* an empty tensor inside another one */
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                   8, "'e'", "'a'");
}
END_TEST

START_TEST(test_hole) {
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                   20, "'a'", "'b'");
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                   "'a'", "hole");
}
END_TEST

START_TEST(test_trailing_bytes) {
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "'a'",
                   "4 trailing bytes");
    expect_refusal("{}", 3, "trailing", NULL);
    expect_refusal("{\"__metadata__\":{}}", 1, "trailing", NULL);
}
END_TEST

START_TEST(test_duplicate_names) {
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "'a'", "twice");
    expect_refusal("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate", "__metadata__");
    /* "a\u0000x" would be cut to "a" by cJSON: refused, not silently merged */
    expect_refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "'a'", "u0000");
    expect_refusal("{\"__metadata__\":{\"k\":\"v\\u0000\"}}", 0, "u0000", NULL);
    /* an escaped backslash followed by u0000 is an ordinary name */
    float v[1] = {0.75f};
    size_t len;
    unsigned char *img =
        build("{\"b\\\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v, 4,
              &len);
    attn_safetensors *st = parse_ok(img, len);
    ck_assert_ptr_nonnull(attn_safetensors_find(st, "b\\u0000"));
    attn_safetensors_close(st);
    free(img);
}
END_TEST

START_TEST(test_bad_metadata) {
    expect_refusal("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__", "'k'");
    expect_refusal("{\"__metadata__\":[\"x\"]}", 0, "__metadata__", "expected an object");
    expect_refusal("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "__metadata__", "'k'");
}
END_TEST

START_TEST(test_open_errors) {
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    attn_safetensors *st = (attn_safetensors *)(uintptr_t)1;
    attn_error err = {0};

    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_ERR_IO);
    ck_assert_ptr_null(st);
    ck_assert_int_eq(err.status, ATTN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, strerror(ENOENT)));

    ck_assert_int_eq(attn_safetensors_open(&st, dir, &err), ATTN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, dir));
    ck_assert_ptr_nonnull(strstr(err.message, strerror(EISDIR)));

    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    tu_write_file(path, "", 0);
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, "empty"));

    tu_write_file(path, "\x02\0\0\0\0", 5);
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.message, "5 bytes"));
    ck_assert_ptr_null(st);
    tu_rm_tree(dir);
}
END_TEST

/* A file whose size changes while it is read is an error, never a short or
 * stale read: sysfs attributes claim 4096 bytes and hold fewer (a file that
 * "shrank"), /proc files claim 0 and hold more (one that "grew"). */
START_TEST(test_open_size_changed) {
    struct {
        const char *path, *piece;
    } cases[] = {
        {"/sys/devices/system/cpu/online", "the file shrank while being read"},
        {"/proc/self/status", "the file grew while being read"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct stat sb;
        if (stat(cases[i].path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            printf("skip %s: not a regular file here\n", cases[i].path);
            continue;
        }
        attn_safetensors *st = (attn_safetensors *)(uintptr_t)1;
        attn_error err = {0};
        ck_assert_int_eq(attn_safetensors_open(&st, cases[i].path, &err), ATTN_ERR_IO);
        ck_assert_ptr_null(st);
        assert_one_line(&err);
        ck_assert_msg(strstr(err.message, cases[i].path) && strstr(err.message, cases[i].piece),
                      "%s", err.message);
    }
}
END_TEST

/* x[N], several pages of random floats, written to dir/w.safetensors
 * (path) and opened. */
enum { MAP_N = 5000 };
static attn_safetensors *open_mapped(char *dir, size_t dcap, char *path, size_t pcap, float *x,
                                     uint64_t seed) {
    tu_rng r = {seed};
    make_tmpdir(dir, dcap);
    snprintf(path, pcap, "%s/w.safetensors", dir);
    for (int i = 0; i < MAP_N; i++) x[i] = rng_float(&r);
    attn_tensor_spec s = {.name = "x", .ndim = 2, .shape = {50, 100}, .data = x};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, &s, 1, &err), ATTN_OK);
    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    return st;
}

/* The line of /proc/self/maps whose range holds p, into line[cap]; false
 * when none does. */
static bool mapping_of(const void *p, char *line, size_t cap) {
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    bool found = false;
    while (!found && fgets(line, (int)cap, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi)
            found = true;
    }
    fclose(f);
    return found;
}

/* Aligned F32 tensors are used in place: their data lies in a read-only,
 * private mapping of the file itself (not in memory of the program's own). */
START_TEST(test_open_maps_in_place) {
    static float x[MAP_N];
    char dir[256], path[512], line[1024];
    attn_safetensors *st = open_mapped(dir, sizeof dir, path, sizeof path, x, 0x5eed00c0);
    const float *d = attn_safetensors_find(st, "x")->data;
    assert_same_floats(d, x, MAP_N);
    ck_assert_msg(mapping_of(d, line, sizeof line), "no mapping holds %p", (const void *)d);
    line[strcspn(line, "\n")] = '\0';
    char perms[8] = "";
    ck_assert_int_eq(sscanf(line, "%*x-%*x %7s", perms), 1);
    ck_assert_msg(strcmp(perms, "r--p") == 0, "mapping %s is not read-only private", line);
    ck_assert_msg(strstr(line, "w.safetensors") != NULL, "%s does not map %s", line, path);
    attn_safetensors_close(st);
    /* closed: unmapped */
    ck_assert(!mapping_of(d, line, sizeof line) || !strstr(line, "w.safetensors"));
    tu_rm_tree(dir);
}
END_TEST

/* A file replaced by a new one renamed over it (attn_safetensors_write
 * does that) leaves the open tensors as they were: the mapping holds the
 * old file. */
START_TEST(test_open_survives_rename) {
    static float x[MAP_N], y[MAP_N];
    char dir[256], path[512];
    attn_safetensors *st = open_mapped(dir, sizeof dir, path, sizeof path, x, 0x5eed00c1);
    tu_rng r = {0x5eed00c2};
    for (int i = 0; i < MAP_N; i++) y[i] = rng_float(&r);
    attn_tensor_spec s = {.name = "x", .ndim = 2, .shape = {50, 100}, .data = y};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, &s, 1, &err), ATTN_OK);
    assert_same_floats(attn_safetensors_find(st, "x")->data, x, MAP_N);
    attn_safetensors_close(st);
    tu_rm_tree(dir);
}
END_TEST

/* The wait status of a child process that runs fn(arg) then exits 0. */
static int in_child(void (*fn)(const void *), const void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Reads the MAP_N floats at d, with SIGBUS at its default action. */
static void read_floats(const void *d) {
    signal(SIGBUS, SIG_DFL);
    volatile float sum = 0;
    for (int i = 0; i < MAP_N; i++) sum += ((const float *)d)[i];
}

/* A mapped file truncated on disk takes its pages away: a process that
 * then reads a tensor is killed by SIGBUS (which is what the command
 * line's handler turns into a message, tests/memory/test_sigbus.py). The
 * read happens in a child, so the test itself survives. */
START_TEST(test_open_truncated_sigbus) {
    static float x[MAP_N];
    char dir[256], path[512];
    attn_safetensors *st = open_mapped(dir, sizeof dir, path, sizeof path, x, 0x5eed00c3);
    const float *d = attn_safetensors_find(st, "x")->data;
    ck_assert_int_eq(truncate(path, 0), 0);
    int status = in_child(read_floats, d);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
                  "child status %#x: expected death by SIGBUS", status);
    attn_safetensors_close(st);
    tu_rm_tree(dir);
}
END_TEST

/* A file that is not a regular file (a pipe, as /dev/stdin may be) cannot
 * be mapped: it is read to its end instead. */
START_TEST(test_open_pipe) {
    static float x[MAP_N];
    char dir[256], path[512];
    attn_safetensors *ref = open_mapped(dir, sizeof dir, path, sizeof path, x, 0x5eed00c4);
    attn_safetensors_close(ref);
    size_t len;
    char *bytes = tu_read_file_n(path, &len);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    /* the writer: a child, so that a file larger than the pipe's buffer fits */
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(write(fds[1], bytes, len) == (ssize_t)len ? 0 : 1);
    }
    close(fds[1]);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fds[0]);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_open(&st, fdpath, &err) == ATTN_OK, "%s", err.message);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_same_floats(attn_safetensors_find(st, "x")->data, x, MAP_N);
    attn_safetensors_close(st);
    free(bytes);
    tu_rm_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Non-finite weights: a model refuses them at load, naming the first one   */

/* The small decoder of tests/support.h in dir, with element `at` of tensor
 * `name` set to v (the others random); opens it as a model. */
static attn_status open_decoder_with(const char *dir, const char *name, size_t at, float v,
                                     attn_error *err) {
    static tu_tensors ts;
    tu_rng r = {0x5eed00d0 + at};
    tu_decoder_write_weights(dir, &r, TU_DEC_D); /* and vocab.txt */
    tu_decoder_write_config(dir, "");
    tu_decoder_tensors(&ts, &r, TU_DEC_D);
    const attn_tensor_spec *t = tu_tensors_find(&ts, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    ((float *)t->data)[at] = v;
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_tensors_write(&ts, path);
    tu_tensors_free(&ts);
    snprintf(path, sizeof path, "%s/config.json", dir);
    attn_model *m = NULL;
    attn_status rc = attn_model_open(&m, path, err);
    ck_assert(rc == ATTN_OK ? m != NULL : m == NULL);
    attn_model_close(m);
    return rc;
}

START_TEST(test_model_refuses_nonfinite) {
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    /* tensor, element, value, what the message must say (D = 8, F = 16) */
    struct {
        const char *name;
        size_t at;
        float v;
        const char *piece;
    } cases[] = {
        {"blocks.0.attn.q.weight", 17, NAN, "tensor \"blocks.0.attn.q.weight\": element 17 "
                                            "(row 2, column 1) is NaN"},
        {"tok_embed", 0, INFINITY, "tensor \"tok_embed\": element 0 (row 0, column 0) is +inf"},
        {"blocks.0.mlp.down.weight", 8 * 16 - 1, -INFINITY,
         "tensor \"blocks.0.mlp.down.weight\": element 127 (row 7, column 15) is -inf"},
        {"norm.bias", 5, -NAN, "tensor \"norm.bias\": element 5 is NaN"},
        {"pos_embed", 12 * 8 - 3, INFINITY, "element 93 (row 11, column 5) is +inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_error err = {0};
        attn_status rc = open_decoder_with(dir, cases[i].name, cases[i].at, cases[i].v, &err);
        ck_assert_msg(rc == ATTN_ERR_FORMAT, "case %zu: rc %d %s", i, rc, err.message);
        assert_one_line(&err);
        ck_assert_msg(strstr(err.message, "model.safetensors") &&
                          strstr(err.message, cases[i].piece),
                      "case %zu: no '%s' in: %s", i, cases[i].piece, err.message);
    }
    /* extreme finite values load */
    const float fine[] = {FLT_MAX, -FLT_MAX, 0x1p-149f, -0.0f, FLT_MIN};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        attn_error err = {0};
        ck_assert_msg(open_decoder_with(dir, "blocks.0.attn.k.weight", 3 + i, fine[i], &err) ==
                          ATTN_OK,
                      "%a: %s", (double)fine[i], err.message);
    }
    tu_rm_tree(dir);
}
END_TEST

/* attn_model_weights lists the tensors the model was built from, in the
 * order they were written, with their shapes and stored dtypes; a tensor
 * found through it is the one attn_model_tensor finds. */
/* A weights file rewritten in place at the same size loses no page (no
 * SIGBUS): the next forward pass sees its new modification time and fails
 * with ATTN_ERR_IO, rather than giving values of mixed weights. */
START_TEST(test_model_rewritten_in_place) {
    char dir[256], path[600], weights[600];
    make_tmpdir(dir, sizeof dir);
    tu_rng r = {0x5eed0e0f};
    tu_decoder_write_weights(dir, &r, TU_DEC_D);
    tu_decoder_write_config(dir, "");
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    /* an old modification time: the rewrite below surely changes it */
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    ck_assert_int_eq(utimensat(AT_FDCWD, weights, old, 0), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    attn_model *m = NULL;
    attn_session *ss = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_model_open(&m, path, &err) == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(attn_session_new(&ss, m, &err), ATTN_OK);
    int ids[3] = {1, 2, 3};
    attn_input in = {.ids = ids, .n = 3};
    ck_assert_msg(attn_session_forward(ss, &in, NULL, &err) == ATTN_OK, "%s", err.message);
    int fd = open(weights, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    float same = 0.25f; /* the size stays */
    ck_assert_int_eq(pwrite(fd, &same, sizeof same, sb.st_size - 4), 4);
    close(fd);
    attn_session_reset(ss);
    ck_assert_int_eq(attn_session_forward(ss, &in, NULL, &err), ATTN_ERR_IO);
    assert_one_line(&err);
    ck_assert_msg(strstr(err.message, weights) &&
                      strstr(err.message, "the weights file changed while attn was reading it"),
                  "%s", err.message);
    attn_session_free(ss);
    attn_model_close(m);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_model_weights_lists_tensors) {
    char dir[256], path[600];
    make_tmpdir(dir, sizeof dir);
    static tu_tensors ts;
    tu_rng r = {0x5eed0e0e};
    tu_decoder_write_weights(dir, &r, TU_DEC_D);
    tu_decoder_write_config(dir, "");
    tu_decoder_tensors(&ts, &r, TU_DEC_D);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_tensors_write(&ts, path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    attn_model *m = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_model_open(&m, path, &err) == ATTN_OK, "%s", err.message);
    const attn_safetensors *st = attn_model_weights(m);
    ck_assert_ptr_nonnull(st);
    ck_assert_uint_eq(attn_safetensors_count(st), ts.n);
    for (size_t i = 0; i < ts.n; i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        const attn_tensor_spec *want = &ts.specs[i];
        ck_assert_str_eq(t->name, want->name);
        ck_assert_int_eq(t->ndim, want->ndim);
        size_t numel = 1;
        for (int d = 0; d < want->ndim; d++) {
            ck_assert_int_eq(t->shape[d], want->shape[d]);
            numel *= (size_t)want->shape[d];
        }
        ck_assert_uint_eq(t->numel, numel);
        ck_assert_int_eq(t->dtype, ATTN_DTYPE_F32);
        ck_assert_ptr_eq(attn_model_tensor(m, want->name), t);
    }
    ck_assert_ptr_null(attn_model_weights(NULL));
    attn_model_close(m);
    tu_tensors_free(&ts);
    tu_rm_tree(dir);
}
END_TEST

/* The dtype names are safetensors' ("F32", "F16", "BF16") and the sizes
 * those of the stored elements; an F16 and a BF16 tensor keep their dtype. */
START_TEST(test_dtype_names_and_sizes) {
    ck_assert_str_eq(attn_dtype_name(ATTN_DTYPE_F32), "F32");
    ck_assert_str_eq(attn_dtype_name(ATTN_DTYPE_F16), "F16");
    ck_assert_str_eq(attn_dtype_name(ATTN_DTYPE_BF16), "BF16");
    ck_assert_str_eq(attn_dtype_name((attn_dtype)99), "?");
    ck_assert_uint_eq(attn_dtype_size(ATTN_DTYPE_F32), 4);
    ck_assert_uint_eq(attn_dtype_size(ATTN_DTYPE_F16), 2);
    ck_assert_uint_eq(attn_dtype_size(ATTN_DTYPE_BF16), 2);
    ck_assert_uint_eq(attn_dtype_size((attn_dtype)99), 0);
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[12,22]},"
                         "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[22,26]}}";
    const unsigned char data[26] = {0x00, 0x3c, 0x00, 0x40, 0x00, 0xc0, 0x00, 0x3c, 0x00, 0x40,
                                    0x00, 0x42, 0x80, 0x3f, 0x00, 0x40, 0x80, 0x3f, 0x00, 0x40,
                                    0x80, 0x3f, 0x00, 0x00, 0x80, 0x3f};
    size_t len;
    unsigned char *img = build(header, data, sizeof data, &len);
    attn_safetensors *st = parse_ok(img, len);
    const char *names[] = {"h", "b", "f"}, *dtypes[] = {"F16", "BF16", "F32"};
    const size_t numel[] = {6, 5, 1};
    ck_assert_uint_eq(attn_safetensors_count(st), 3);
    for (size_t i = 0; i < 3; i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_str_eq(attn_dtype_name(t->dtype), dtypes[i]);
        ck_assert_uint_eq(t->numel * attn_dtype_size(t->dtype), i < 2 ? 2 * numel[i] : 4);
    }
    attn_safetensors_close(st);
    free(img);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Writer failures                                                           */

START_TEST(test_write_missing_dir) {
    char dir[256], path[600];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/no/such/dir/w.safetensors", dir);
    float x[2] = {1.5f, -2.25f};
    attn_tensor_spec s = {.name = "x", .ndim = 1, .shape = {2}, .data = x};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, &s, 1, &err), ATTN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    struct stat sb;
    ck_assert_int_ne(stat(path, &sb), 0);
    ck_assert_uint_eq(count_entries(dir), 0);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_write_refuses_bad_specs) {
    tu_rng r = {0x5eed000a};
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float x[4];
    for (int i = 0; i < 4; i++) x[i] = rng_float(&r);
    attn_tensor_spec good = {.name = "x", .ndim = 1, .shape = {4}, .data = x};
    struct {
        attn_tensor_spec s[2];
        size_t n;
        const char *piece;
    } cases[] = {
        {{good, {.name = "x", .ndim = 1, .shape = {2}, .data = x}}, 2, "'x'"},
        {{{.name = "y", .ndim = 9, .data = x}}, 1, "'y'"},
        {{{.name = "y", .ndim = -1, .data = x}}, 1, "'y'"},
        {{{.name = "y", .ndim = 2, .shape = {2, -3}, .data = x}}, 1, "'y'"},
        {{{.name = "y", .ndim = 2, .shape = {1ll << 40, 1ll << 40}, .data = x}}, 1, "overflow"},
        {{{.name = "y", .ndim = 1, .shape = {4}, .data = NULL}}, 1, "'y'"},
        {{good, {.name = NULL, .ndim = 1, .shape = {4}, .data = x}}, 2, "tensor 1"},
        {{{.name = "__metadata__", .ndim = 1, .shape = {4}, .data = x}}, 1, "__metadata__"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_error err = {0};
        int rc = attn_safetensors_write(path, cases[i].s, cases[i].n, &err);
        ck_assert_msg(rc == ATTN_ERR_USAGE, "case %zu: rc %d %s", i, rc, err.message);
        ck_assert_msg(strstr(err.message, cases[i].piece), "case %zu: %s", i, err.message);
        ck_assert_uint_eq(count_entries(dir), 0);
    }
    /* a failing write leaves an existing file as it was */
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(path, &good, 1, &err), ATTN_OK);
    ck_assert_int_eq(attn_safetensors_write(path, cases[0].s, 2, &err), ATTN_ERR_USAGE);
    ck_assert_uint_eq(count_entries(dir), 1);
    attn_safetensors *st = NULL;
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_OK);
    ck_assert_uint_eq(attn_safetensors_count(st), 1);
    assert_same_floats(attn_safetensors_at(st, 0)->data, x, 4);
    attn_safetensors_close(st);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(test_write_rename_fails) {
    /* the target is a non-empty directory: the temporary is written, the
     * rename fails, and the temporary must be gone */
    char dir[256], target[512], inner[600];
    make_tmpdir(dir, sizeof dir);
    snprintf(target, sizeof target, "%s/w.safetensors", dir);
    ck_assert_int_eq(mkdir(target, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", target);
    tu_write_file(inner, "k", 1);
    float x[2] = {0.5f, 3.0f};
    attn_tensor_spec s = {.name = "x", .ndim = 1, .shape = {2}, .data = x};
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_write(target, &s, 1, &err), ATTN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, target));
    ck_assert_uint_eq(count_entries(dir), 1); /* just the directory */
    unlink(inner);
    tu_rm_tree(dir);
}
END_TEST

/* ---- Limits (docs/model-format.md, "Limits"): the numbers are the table's ---- */

START_TEST(test_header_limit_message) {
    size_t len;
    unsigned char *img = build_raw(100000001, "{}", NULL, 0, &len);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "huge.st", &err), ATTN_ERR_FORMAT);
    ck_assert_str_eq(err.message,
                     "huge.st: header of 100000001 bytes is more than the 100000000-byte (100 MB) "
                     "limit");
    free(img);
}
END_TEST

/* A header of n zero-sized tensors "t0", "t1", ...; `bare`: each entry is
 * just 0 (the count is checked before the entries are). */
static char *many_tensors(size_t n, bool bare) {
    size_t cap = 64 + n * 64, used = 0;
    char *h = malloc(cap);
    ck_assert_ptr_nonnull(h);
    h[used++] = '{';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(h + used, cap - used,
                                 bare ? "%s\"t%zu\":0"
                                      : "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],"
                                        "\"data_offsets\":[0,0]}",
                                 i ? "," : "", i);
    snprintf(h + used, cap - used, "}");
    return h;
}

START_TEST(test_tensor_count_limit) {
    /* 262144 tensors are read */
    char *h = many_tensors(262144, false);
    size_t len;
    unsigned char *img = build(h, NULL, 0, &len);
    attn_safetensors *st = parse_ok(img, len);
    ck_assert_uint_eq(attn_safetensors_count(st), 262144);
    ck_assert_ptr_nonnull(attn_safetensors_find(st, "t262143"));
    attn_safetensors_close(st);
    free(img);
    free(h);
    /* one more is refused by the count */
    h = many_tensors(262145, true);
    img = build(h, NULL, 0, &len);
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "many.st", &err), ATTN_ERR_FORMAT);
    ck_assert_str_eq(err.message, "many.st: header has more than the limit of 262144 tensors");
    free(img);
    free(h);
}
END_TEST

/* A shape of 4194304 numbers: refused before cJSON builds a node for each. */
START_TEST(test_header_values_limit) {
    const size_t n = 4194304;
    char *h = malloc(64 + 2 * n);
    ck_assert_ptr_nonnull(h);
    size_t used = (size_t)sprintf(h, "{\"w\":{\"dtype\":\"F32\",\"shape\":[");
    for (size_t i = 0; i < n; i++) {
        h[used++] = '0';
        h[used++] = ',';
    }
    used--; /* the last comma */
    sprintf(h + used, "],\"data_offsets\":[0,0]}}");
    size_t len;
    unsigned char *img = build(h, NULL, 0, &len);
    attn_safetensors *st = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_safetensors_parse(&st, img, len, "wide.st", &err), ATTN_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "wide.st: header holds 4194311 JSON values or more, more "
                                      "than the limit of 4194304 (16 per tensor of the "
                                      "262144-tensor limit)"),
                  "%s", err.message);
    free(img);
    free(h);
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_roundtrip_random);
    tcase_add_test(rt, test_many_tensors_lookup);
    tcase_add_test(rt, test_zero_d_and_zero_size);
    tcase_add_test(rt, test_overwrite_existing);
    suite_add_tcase(s, rt);

    TCase *rd = tcase_create("read");
    tcase_add_test(rd, test_unaligned_data_area);
    tcase_add_test(rd, test_metadata_ignored);
    tcase_add_test(rd, test_f16_conversion);
#ifdef HAVE_REF_FLOAT16
    tcase_add_test(rd, test_f16_definition_matches_compiler);
#endif
    tcase_add_test(rd, test_bf16_conversion);
    suite_add_tcase(s, rd);

    TCase *rf = tcase_create("refusals");
    tcase_add_test(rf, test_truncated);
    tcase_add_test(rf, test_header_length_beyond_file);
    tcase_add_test(rf, test_header_over_100mb);
    tcase_add_test(rf, test_header_limit_message);
    tcase_add_test(rf, test_tensor_count_limit);
    tcase_add_test(rf, test_header_values_limit);
    tcase_add_test(rf, test_malformed_json);
    tcase_add_test(rf, test_entry_not_object);
    tcase_add_test(rf, test_missing_keys);
    tcase_add_test(rf, test_extra_and_duplicate_keys);
    tcase_add_test(rf, test_bad_dtype);
    tcase_add_test(rf, test_bad_dims);
    tcase_add_test(rf, test_size_mismatch);
    tcase_add_test(rf, test_shape_overflow);
    tcase_add_test(rf, test_bad_offsets);
    tcase_add_test(rf, test_overlap);
    tcase_add_test(rf, test_hole);
    tcase_add_test(rf, test_trailing_bytes);
    tcase_add_test(rf, test_duplicate_names);
    tcase_add_test(rf, test_bad_metadata);
    tcase_add_test(rf, test_open_errors);
    tcase_add_test(rf, test_open_size_changed);
    suite_add_tcase(s, rf);

    TCase *ld = tcase_create("load");
    tcase_add_test(ld, test_open_maps_in_place);
    tcase_add_test(ld, test_open_survives_rename);
    tcase_add_test(ld, test_open_truncated_sigbus);
    tcase_add_test(ld, test_open_pipe);
    tcase_add_test(ld, test_model_rewritten_in_place);
    tcase_add_test(ld, test_model_refuses_nonfinite);
    tcase_add_test(ld, test_model_weights_lists_tensors);
    tcase_add_test(ld, test_dtype_names_and_sizes);
    suite_add_tcase(s, ld);

    TCase *wr = tcase_create("write-failures");
    tcase_add_test(wr, test_write_missing_dir);
    tcase_add_test(wr, test_write_refuses_bad_specs);
    tcase_add_test(wr, test_write_rename_fails);
    suite_add_tcase(s, wr);
    return s;
}

int main(void) { return tu_run_suite(safetensors_suite()); }
