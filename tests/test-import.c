/* attn_import_llama2c and attn_llama2c_parse_header: random small llama2.c
 * checkpoints written here in the byte layouts of llama2.c's export.py
 * (legacy with a shared or a separate classifier, version 1 with either),
 * imported, and every tensor of the result compared with the floats the
 * test wrote; refusals of broken checkpoints, tokenizers and output folders,
 * none of which may leave a folder behind; the real stories260K when present. */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ATTN_SOURCE_ROOT
#define ATTN_SOURCE_ROOT "."
#endif
#define STORIES_DIR ATTN_SOURCE_ROOT "/../shared/models/stories260K/"

static char tmpdir[256];

static void setup(void) { tu_tmpdir(tmpdir, sizeof tmpdir, "attn-test-import."); }

static void teardown(void) { tu_rm_tree(tmpdir); }

/* ---- random numbers (tu_rng, tests/support.h) ---- */
static tu_rng rng;
static uint64_t rng_u64(void) { return tu_rng_u64(&rng); }
static float frand(void) { return (float)((double)(rng_u64() >> 11) / 9007199254740992.0 * 2 - 1); }
static float *randv(size_t n) {
    float *p = malloc(n * sizeof *p + 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* ---- a small llama2.c model, written in the export layouts ---- */
typedef struct ck_model {
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len;
    bool shared;
    float *embed, *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3, *norm, *cls;
    float *rope; /* [2, seq_len, hd/2] legacy tables (arbitrary values: readers skip them) */
} ck_model;

static ck_model make_model(uint64_t seed, bool shared) {
    rng.s = seed;
    ck_model m = {.dim = 16, .hidden = 24, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 40,
                  .seq_len = 8, .shared = shared};
    size_t D = 16, F = 24, L = 2, V = 40, kvd = 2 * 4;
    m.embed = randv(V * D);
    m.attn_norm = randv(L * D);
    m.wq = randv(L * D * D);
    m.wk = randv(L * kvd * D);
    m.wv = randv(L * kvd * D);
    m.wo = randv(L * D * D);
    m.ffn_norm = randv(L * D);
    m.w1 = randv(L * F * D);
    m.w2 = randv(L * D * F);
    m.w3 = randv(L * F * D);
    m.norm = randv(D);
    m.cls = shared ? m.embed : randv(V * D);
    m.rope = randv(2 * 8 * 2);
    return m;
}

static void free_model(ck_model *m) {
    free(m->embed), free(m->attn_norm), free(m->wq), free(m->wk), free(m->wv), free(m->wo);
    free(m->ffn_norm), free(m->w1), free(m->w2), free(m->w3), free(m->norm), free(m->rope);
    if (!m->shared) free(m->cls);
}

/* A growing byte buffer (tests/support.h). */
typedef tu_bytes bytes;
static void put(bytes *b, const void *src, size_t n) { tu_bytes_put(b, src, n); }
static void put_i32(bytes *b, int32_t v) { tu_bytes_le32(b, (uint32_t)v); }
static void put_f32(bytes *b, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_i32(b, (int32_t)u);
    }
}

/* llama2.c export.py legacy_export (version 0) or version1_export. */
static bytes serialize(const ck_model *m, int version) {
    bytes b = {0};
    size_t D = (size_t)m->dim, F = (size_t)m->hidden, L = (size_t)m->layers,
           V = (size_t)m->vocab, kvd = (size_t)m->kv_heads * (D / (size_t)m->heads);
    int32_t hdr[7] = {m->dim, m->hidden, m->layers, m->heads, m->kv_heads, m->vocab, m->seq_len};
    if (version == 0) {
        if (!m->shared) hdr[5] = -hdr[5];
        for (int i = 0; i < 7; i++) put_i32(&b, hdr[i]);
        put_f32(&b, m->embed, V * D);
        put_f32(&b, m->attn_norm, L * D);
        put_f32(&b, m->wq, L * D * D);
        put_f32(&b, m->wk, L * kvd * D);
        put_f32(&b, m->wv, L * kvd * D);
        put_f32(&b, m->wo, L * D * D);
        put_f32(&b, m->ffn_norm, L * D);
        put_f32(&b, m->w1, L * F * D);
        put_f32(&b, m->w2, L * D * F);
        put_f32(&b, m->w3, L * F * D);
        put_f32(&b, m->norm, D);
        put_f32(&b, m->rope, 2 * (size_t)m->seq_len * (D / (size_t)m->heads / 2));
        if (!m->shared) put_f32(&b, m->cls, V * D);
    } else {
        put_i32(&b, 0x616b3432);
        put_i32(&b, 1);
        for (int i = 0; i < 7; i++) put_i32(&b, hdr[i]);
        unsigned char flag = m->shared ? 1 : 0;
        put(&b, &flag, 1);
        unsigned char zero = 0;
        while (b.n < 256) put(&b, &zero, 1);
        put_f32(&b, m->attn_norm, L * D);
        put_f32(&b, m->ffn_norm, L * D);
        put_f32(&b, m->norm, D);
        put_f32(&b, m->embed, V * D);
        put_f32(&b, m->wq, L * D * D);
        put_f32(&b, m->wk, L * kvd * D);
        put_f32(&b, m->wv, L * kvd * D);
        put_f32(&b, m->wo, L * D * D);
        put_f32(&b, m->w1, L * F * D);
        put_f32(&b, m->w2, L * D * F);
        put_f32(&b, m->w3, L * F * D);
        if (!m->shared) put_f32(&b, m->cls, V * D);
    }
    return b;
}

/* A llama2.c tokenizer.bin with n pieces: <unk>, BOS, EOS, then "a".."z", "aa".. */
static bytes make_tokenizer(int n) {
    bytes b = {0};
    put_i32(&b, 8);
    for (int i = 0; i < n; i++) {
        char piece[16];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "\n<s>\n");
        else if (i == 2) snprintf(piece, sizeof piece, "\n</s>\n");
        else if (i < 29) snprintf(piece, sizeof piece, "%c", 'a' + (i - 3));
        else snprintf(piece, sizeof piece, "%c%c", 'a' + (i - 29) / 26, 'a' + (i - 29) % 26);
        float score = i < 3 ? 0.0f : (float)-i;
        put_f32(&b, &score, 1);
        put_i32(&b, (int32_t)strlen(piece));
        put(&b, piece, strlen(piece));
    }
    return b;
}


static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Nothing named out_name, and no out_name.tmp.* folder, in tmpdir. */
static void assert_nothing_left(const char *out_name) {
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t n = strlen(out_name);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, out_name, n) == 0 && (e->d_name[n] == '\0' || e->d_name[n] == '.'))
            ck_abort_msg("left behind: %s/%s", tmpdir, e->d_name);
    }
    closedir(d);
}

/* The tensor `name` of st holds exactly n floats equal to want. */
static void assert_tensor(const attn_safetensors *st, const char *name, const float *want,
                          int64_t rows, int64_t cols) {
    const attn_tensor *t = attn_safetensors_find(st, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    ck_assert_int_eq(t->ndim, cols ? 2 : 1);
    ck_assert_int_eq(t->shape[0], rows);
    if (cols) ck_assert_int_eq(t->shape[1], cols);
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    ck_assert_uint_eq(t->numel, n);
    ck_assert_msg(memcmp(t->data, want, n * sizeof(float)) == 0, "tensor %s differs", name);
}

/* Imports checkpoint + tokenizer into tmpdir/out; returns the status. */
static int import_bytes(const bytes *ck, const bytes *tok, const char *out_name, unsigned flags,
                        attn_error *err) {
    char ckp[512], tokp[512], out[512];
    path_in(ckp, sizeof ckp, "model.bin");
    path_in(tokp, sizeof tokp, "tok.bin");
    path_in(out, sizeof out, out_name);
    tu_write_file(ckp, ck->p, ck->n);
    tu_write_file(tokp, tok->p, tok->n);
    return attn_import_llama2c(ckp, tokp, out, flags, err);
}

static void check_import(int version, bool shared) {
    ck_model m = make_model(100 + (uint64_t)version * 2 + shared, shared);
    bytes ck = serialize(&m, version), tok = make_tokenizer(m.vocab);
    attn_error err = {0};
    int rc = import_bytes(&ck, &tok, "out", 0, &err);
    ck_assert_msg(rc == ATTN_OK, "import failed: %s", err.message);

    char p[512];
    path_in(p, sizeof p, "out/config.json");
    attn_config cfg;
    rc = attn_config_load(&cfg, p, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(cfg.arch, ATTN_ARCH_DECODER);
    ck_assert_int_eq(cfg.d_model, 16);
    ck_assert_int_eq(cfg.d_ff, 24);
    ck_assert_int_eq(cfg.n_layers, 2);
    ck_assert_int_eq(cfg.n_heads, 4);
    ck_assert_int_eq(cfg.n_kv_heads, 2);
    ck_assert_int_eq(cfg.head_dim, 4);
    ck_assert_int_eq(cfg.vocab_size, 40);
    ck_assert_int_eq(cfg.max_seq_len, 8);
    ck_assert_int_eq(cfg.positional, ATTN_POS_ROPE);
    ck_assert_double_eq(cfg.rope_theta, 10000.0);
    ck_assert_int_eq(cfg.norm, ATTN_NORM_RMSNORM);
    ck_assert_double_eq_tol(cfg.norm_eps, 1e-5, 1e-12);
    ck_assert_int_eq(cfg.norm_position, ATTN_NORM_PRE);
    ck_assert(cfg.final_norm);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_SWIGLU);
    ck_assert(!cfg.bias);
    ck_assert_int_eq(cfg.lm_head, shared ? ATTN_LM_HEAD_TIED : ATTN_LM_HEAD_SEPARATE);
    ck_assert(cfg.has_tokenizer);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_LLAMA2C);

    path_in(p, sizeof p, "out/model.safetensors");
    attn_safetensors *st;
    rc = attn_safetensors_open(&st, p, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(attn_safetensors_count(st), 2 + 9 * 2 + (shared ? 0 : 1));
    assert_tensor(st, "tok_embed", m.embed, 40, 16);
    assert_tensor(st, "norm.weight", m.norm, 16, 0);
    if (!shared) assert_tensor(st, "lm_head.weight", m.cls, 40, 16);
    ck_assert((attn_safetensors_find(st, "lm_head.weight") != NULL) == !shared);
    for (size_t l = 0; l < 2; l++) {
        char name[64];
#define T(suffix, src, rows, cols)                                                       \
        snprintf(name, sizeof name, "blocks.%zu." suffix, l);                            \
        assert_tensor(st, name, (src) + l * (size_t)(rows) * (size_t)((cols) ? (cols) : 1), \
                      rows, cols)
        T("attn_norm.weight", m.attn_norm, 16, 0);
        T("attn.q.weight", m.wq, 16, 16);
        T("attn.k.weight", m.wk, 8, 16);
        T("attn.v.weight", m.wv, 8, 16);
        T("attn.o.weight", m.wo, 16, 16);
        T("mlp_norm.weight", m.ffn_norm, 16, 0);
        T("mlp.gate.weight", m.w1, 24, 16);
        T("mlp.up.weight", m.w3, 24, 16);
        T("mlp.down.weight", m.w2, 16, 24);
#undef T
    }
    attn_safetensors_close(st);

    /* the tokenizer is copied byte for byte, and the folder loads as a model */
    path_in(p, sizeof p, "out/tokenizer.bin");
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *got = malloc(tok.n + 1);
    ck_assert_uint_eq(fread(got, 1, tok.n + 1, f), tok.n);
    fclose(f);
    ck_assert_int_eq(memcmp(got, tok.p, tok.n), 0);
    free(got);
    path_in(p, sizeof p, "out/config.json");
    attn_model *model;
    rc = attn_model_open(&model, p, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    attn_model_close(model);

    free(ck.p), free(tok.p);
    free_model(&m);
}

START_TEST(test_legacy_shared) { check_import(0, true); }
END_TEST
START_TEST(test_legacy_separate) { check_import(0, false); }
END_TEST
START_TEST(test_v1_shared) { check_import(1, true); }
END_TEST
START_TEST(test_v1_separate) { check_import(1, false); }
END_TEST

/* The header parser on its own: fields, flags and the implied size, which
 * is computed here from the layout (not from the parser). */
START_TEST(test_parse_header) {
    for (int version = 0; version <= 1; version++) {
        for (int shared = 0; shared <= 1; shared++) {
            ck_model m = make_model(7, shared);
            bytes ck = serialize(&m, version);
            attn_llama2c_header h;
            attn_error err = {0};
            int rc = attn_llama2c_parse_header(&h, ck.p, ck.n, "mem", &err);
            ck_assert_msg(rc == ATTN_OK, "%s", err.message);
            ck_assert_int_eq(h.version, version);
            ck_assert_int_eq(h.dim, 16);
            ck_assert_int_eq(h.hidden_dim, 24);
            ck_assert_int_eq(h.n_layers, 2);
            ck_assert_int_eq(h.n_heads, 4);
            ck_assert_int_eq(h.n_kv_heads, 2);
            ck_assert_int_eq(h.vocab_size, 40);
            ck_assert_int_eq(h.seq_len, 8);
            ck_assert_int_eq(h.shared_classifier, shared);
            ck_assert_uint_eq(h.header_bytes, version ? 256 : 28);
            /* 40*16 embed + 2*(16+16) norms + 16 final + 2*(256+128+128+256+3*384) */
            uint64_t floats = 640 + 64 + 16 + 2 * (256 + 128 + 128 + 256 + 3 * 384);
            if (!shared) floats += 640;
            if (version == 0) floats += 2 * 8 * 2;
            ck_assert_uint_eq(h.file_bytes, (version ? 256 : 28) + 4 * floats);
            ck_assert_uint_eq(h.file_bytes, ck.n);
            free(ck.p);
            free_model(&m);
        }
    }
}
END_TEST

/* Random small headers against the rules restated here: accepted exactly
 * when every field is positive, n_heads is a multiple of n_kv_heads, dim of
 * n_heads, the head size is even, and the length is the one computed here. */
START_TEST(test_parse_header_random) {
    rng.s = 4242;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        int version = (int)(rng_u64() % 2);
        int32_t f[7];
        /* mostly plausible values (powers of two), sometimes anything in -2..11 */
        for (int i = 0; i < 7; i++)
            f[i] = rng_u64() % 4 ? (int32_t)(1u << (rng_u64() % 4))
                                 : (int32_t)(rng_u64() % 14) - 2;
        bool shared = version == 1 ? rng_u64() % 2 : f[5] > 0;
        int64_t V = f[5] < 0 && version == 0 ? -(int64_t)f[5] : f[5];
        bool valid = f[0] > 0 && f[1] > 0 && f[2] > 0 && f[3] > 0 && f[4] > 0 && V > 0 &&
                     f[6] > 0 && f[3] % f[4] == 0 && f[0] % f[3] == 0 && (f[0] / f[3]) % 2 == 0;
        bool positive = f[0] > 0 && f[1] > 0 && f[2] > 0 && f[3] > 0 && f[4] > 0 && V > 0 &&
                        f[6] > 0;
        uint64_t want = 0;
        if (positive) { /* the size the layout would have, valid or not */
            int64_t D = f[0], F = f[1], L = f[2], kvd = f[4] * (D / f[3]), S = f[6];
            int64_t n = V * D + 2 * L * D + D + 2 * L * D * D + 2 * L * kvd * D + 3 * L * F * D;
            if (!shared) n += V * D;
            if (version == 0) n += 2 * S * (D / f[3] / 2);
            want = (uint64_t)(version ? 256 : 28) + 4 * (uint64_t)n;
        }
        size_t len = positive ? (size_t)want : 256 + rng_u64() % 64;
        if (positive && rng_u64() % 4 == 0) len += (rng_u64() % 2) ? 4 : (size_t)-4;
        unsigned char *buf = calloc(len + 4, 1);
        ck_assert_ptr_nonnull(buf);
        bytes hb = {0};
        if (version) {
            put_i32(&hb, 0x616b3432);
            put_i32(&hb, 1);
        }
        for (int i = 0; i < 7; i++) put_i32(&hb, f[i]);
        if (version) {
            unsigned char flag = shared;
            put(&hb, &flag, 1);
        }
        memcpy(buf, hb.p, hb.n < len ? hb.n : len);
        free(hb.p);
        attn_llama2c_header h;
        attn_error err = {0};
        int rc = attn_llama2c_parse_header(&h, buf, len, "rand", &err);
        bool ok = valid && len == want;
        ck_assert_msg((rc == ATTN_OK) == ok, "iter %d: v%d fields %d %d %d %d %d %d %d len %zu "
                      "(want %llu): rc %d %s", iter, version, f[0], f[1], f[2], f[3], f[4], f[5],
                      f[6], len, (unsigned long long)want, rc, err.message);
        if (ok) {
            accepted++;
            ck_assert_uint_eq(h.file_bytes, want);
            ck_assert_int_eq(h.shared_classifier, shared);
        } else {
            ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
            ck_assert(strncmp(err.message, "rand: ", 6) == 0);
        }
        free(buf);
    }
    printf("random headers: %d of 20000 accepted\n", accepted);
    ck_assert_int_gt(accepted, 500);
}
END_TEST

/* Refused imports: the status, a message naming the file and containing
 * `needle`, and no output folder or temporary left behind. */
static void expect_refusal(const bytes *ck, const bytes *tok, int want_status,
                           const char *needle) {
    attn_error err = {0};
    int rc = import_bytes(ck, tok, "out", 0, &err);
    ck_assert_msg(rc == want_status, "status %d (want %d): %s", rc, want_status, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
    ck_assert_msg(strchr(err.message, '\n') == NULL, "message has a newline: %s", err.message);
    assert_nothing_left("out");
}

START_TEST(test_truncated) {
    for (int version = 0; version <= 1; version++) {
        ck_model m = make_model(11, false);
        bytes ck = serialize(&m, version), tok = make_tokenizer(40);
        size_t full = ck.n;
        size_t cuts[] = {0, 3, 27, 28, 100, 255, 256, 300, full / 2, full - 4, full - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            if (cuts[i] >= full) continue;
            ck.n = cuts[i];
            printf("v%d cut at %zu of %zu\n", version, cuts[i], full);
            /* cuts inside the header are caught as a short file or a bad field */
            attn_error err = {0};
            int rc = import_bytes(&ck, &tok, "out", 0, &err);
            ck_assert_msg(rc == ATTN_ERR_FORMAT, "cut %zu: status %d: %s", cuts[i], rc,
                          err.message);
            ck_assert_msg(strstr(err.message, "model.bin") != NULL, "%s", err.message);
            assert_nothing_left("out");
            if (cuts[i] >= (version ? 256u : 28u)) {
                char want[128];
                snprintf(want, sizeof want, "implies %zu bytes, but the file has %zu bytes", full,
                         cuts[i]);
                ck_assert_msg(strstr(err.message, want) != NULL, "%s", err.message);
            }
        }
        /* a trailing extra float is refused too */
        ck.n = full;
        float extra = 1.0f;
        put_f32(&ck, &extra, 1);
        expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "but the file has");
        free(ck.p), free(tok.p);
        free_model(&m);
    }
}
END_TEST

static void set_i32(bytes *b, size_t off, int32_t v) {
    b->p[off] = (unsigned char)v;
    b->p[off + 1] = (unsigned char)(v >> 8);
    b->p[off + 2] = (unsigned char)(v >> 16);
    b->p[off + 3] = (unsigned char)(v >> 24);
}

START_TEST(test_bad_headers) {
    static const char *const fields[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                          "n_kv_heads", "vocab_size", "seq_len"};
    for (int version = 0; version <= 1; version++) {
        ck_model m = make_model(13, true);
        bytes ck = serialize(&m, version), tok = make_tokenizer(40);
        size_t base = version ? 8 : 0;
        bytes bad = {0};
        /* inflated: n_layers 1000 promises far more than the file holds */
        put(&bad, ck.p, ck.n);
        set_i32(&bad, base + 8, 1000);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "n_layers 1000");
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "but the file has");
        /* zero and negative fields (a negative legacy vocab_size means a
         * separate classifier, so it is tested by zero only there) */
        for (int f = 0; f < 7; f++) {
            for (int v = -1; v <= 0; v++) {
                if (version == 0 && f == 5 && v == -1) continue;
                memcpy(bad.p, ck.p, ck.n);
                set_i32(&bad, base + 4 * (size_t)f, v == 0 ? 0 : -3);
                char want[64];
                snprintf(want, sizeof want, "%s = %d, expected a positive number", fields[f],
                         v == 0 ? 0 : -3);
                expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, want);
            }
        }
        /* huge values */
        memcpy(bad.p, ck.p, ck.n);
        set_i32(&bad, base + 0, 0x7fffffff);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "dim = 2147483647 is too large");
        /* each field one over the limit of the config key it becomes
         * (docs/model-format.md, "Limits") */
        static const int32_t caps[7] = {65536, 1048576, 4096, 4096, 4096, 1048576, 1048576};
        for (int f = 0; f < 7; f++) {
            memcpy(bad.p, ck.p, ck.n);
            set_i32(&bad, base + 4 * (size_t)f, caps[f] + 1);
            char want[96];
            snprintf(want, sizeof want, "%s = %d is too large (at most %d, the limit", fields[f],
                     (int)caps[f] + 1, (int)caps[f]);
            expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, want);
        }
        /* n_heads 4 with n_kv_heads 3 */
        memcpy(bad.p, ck.p, ck.n);
        set_i32(&bad, base + 16, 3);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "n_heads 4 is not a multiple of n_kv_heads 3");
        /* more kv heads than heads */
        memcpy(bad.p, ck.p, ck.n);
        set_i32(&bad, base + 16, 8);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "not a multiple of n_kv_heads 8");
        /* dim 16 with 3 heads (and 3 kv heads) */
        memcpy(bad.p, ck.p, ck.n);
        set_i32(&bad, base + 12, 3);
        set_i32(&bad, base + 16, 3);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "dim 16 is not divisible by n_heads 3");
        /* odd head size: dim 16, 16 heads -> 1 */
        memcpy(bad.p, ck.p, ck.n);
        set_i32(&bad, base + 12, 16);
        set_i32(&bad, base + 16, 16);
        expect_refusal(&bad, &tok, ATTN_ERR_FORMAT, "odd");
        free(bad.p), free(ck.p), free(tok.p);
        free_model(&m);
    }
    /* version 1 only: other versions, a bad flag byte */
    ck_model m = make_model(17, true);
    bytes ck = serialize(&m, 1), tok = make_tokenizer(40);
    set_i32(&ck, 4, 2);
    expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "version 2");
    set_i32(&ck, 4, 1);
    ck.p[36] = 7;
    expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "shared_classifier is 7");
    free(ck.p), free(tok.p);
    free_model(&m);
    /* legacy without the rope tables: refused, with the hint */
    m = make_model(19, true);
    ck = serialize(&m, 0);
    tok = make_tokenizer(40);
    ck.n -= 4 * 2 * 8 * 2;
    expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "without the two rope tables");
    free(ck.p), free(tok.p);
    free_model(&m);
}
END_TEST

START_TEST(test_bad_tokenizer) {
    ck_model m = make_model(23, true);
    bytes ck = serialize(&m, 0), tok = make_tokenizer(40);
    size_t full = tok.n;
    /* cut inside an entry: the tokenizer reader refuses it */
    size_t cuts[] = {0, 2, 4 + 3, full / 2 + 1, full - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tok.n = cuts[i];
        attn_error err = {0};
        int rc = import_bytes(&ck, &tok, "out", 0, &err);
        printf("tokenizer cut at %zu: %s\n", cuts[i], err.message);
        ck_assert_int_ne(rc, ATTN_OK);
        ck_assert_msg(strstr(err.message, "tok.bin") != NULL, "%s", err.message);
        assert_nothing_left("out");
    }
    /* a whole entry short, and one too many: the count must match vocab_size */
    free(tok.p);
    tok = make_tokenizer(39);
    expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "the tokenizer has 39 tokens");
    free(tok.p);
    tok = make_tokenizer(41);
    expect_refusal(&ck, &tok, ATTN_ERR_FORMAT, "the tokenizer has 41 tokens");
    free(ck.p), free(tok.p);
    free_model(&m);
}
END_TEST

START_TEST(test_output_folder) {
    ck_model m = make_model(29, true);
    bytes ck = serialize(&m, 1), tok = make_tokenizer(40);
    char out[512], p[512];
    path_in(out, sizeof out, "out");
    attn_error err = {0};

    /* an existing empty folder is fine */
    ck_assert_int_eq(mkdir(out, 0777), 0);
    ck_assert_int_eq(import_bytes(&ck, &tok, "out", 0, &err), ATTN_OK);
    /* now it is not empty: refused, untouched */
    path_in(p, sizeof p, "out/config.json");
    struct stat before, after;
    ck_assert_int_eq(stat(p, &before), 0);
    int rc = import_bytes(&ck, &tok, "out", 0, &err);
    ck_assert_int_eq(rc, ATTN_ERR_IO);
    ck_assert_msg(strstr(err.message, "exists and is not empty") != NULL, "%s", err.message);
    ck_assert_msg(strstr(err.message, out) != NULL, "%s", err.message);
    ck_assert_int_eq(stat(p, &after), 0);
    ck_assert_int_eq(before.st_ino, after.st_ino);
    /* with force: the three files are replaced, another file stays */
    path_in(p, sizeof p, "out/notes.txt");
    tu_write_file(p, "keep", 4);
    ck_model m2 = make_model(31, false);
    bytes ck2 = serialize(&m2, 0);
    rc = import_bytes(&ck2, &tok, "out", ATTN_IMPORT_FORCE, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(access(p, F_OK), 0);
    path_in(p, sizeof p, "out/model.safetensors");
    attn_safetensors *st;
    ck_assert_int_eq(attn_safetensors_open(&st, p, &err), ATTN_OK);
    assert_tensor(st, "lm_head.weight", m2.cls, 40, 16);
    attn_safetensors_close(st);
    /* a failed forced import leaves the folder as it was */
    ck2.n -= 4;
    rc = import_bytes(&ck2, &tok, "out", ATTN_IMPORT_FORCE, &err);
    ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) ck_assert_ptr_null(strstr(e->d_name, ".tmp."));
    closedir(d);
    /* a file where the folder should be */
    path_in(p, sizeof p, "plain");
    tu_write_file(p, "x", 1);
    rc = import_bytes(&ck, &tok, "plain", ATTN_IMPORT_FORCE, &err);
    ck_assert_int_eq(rc, ATTN_ERR_IO);
    ck_assert_msg(strstr(err.message, "not a folder") != NULL, "%s", err.message);
    /* a missing parent folder */
    rc = import_bytes(&ck, &tok, "no/such/out", 0, &err);
    ck_assert_int_eq(rc, ATTN_ERR_IO);
    ck_assert_msg(strstr(err.message, "no/such/out") != NULL, "%s", err.message);
    free(ck.p), free(ck2.p), free(tok.p);
    free_model(&m);
    free_model(&m2);
}
END_TEST

/* The real stories260K (shared/models), when it is there. */
START_TEST(test_stories260k) {
    const char *ckp = STORIES_DIR "stories260K.bin", *tokp = STORIES_DIR "tok512.bin";
    if (access(ckp, R_OK) != 0 || access(tokp, R_OK) != 0) {
        printf("skipped: %s not present\n", ckp);
        return;
    }
    char out[512], p[512];
    path_in(out, sizeof out, "stories");
    attn_error err = {0};
    int rc = attn_import_llama2c(ckp, tokp, out, 0, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    path_in(p, sizeof p, "stories/config.json");
    attn_model *model;
    rc = attn_model_open(&model, p, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    const attn_config *c = attn_model_config(model);
    ck_assert_int_eq(c->d_model, 64);
    ck_assert_int_eq(c->n_layers, 5);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->n_kv_heads, 4);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->d_ff, 172);
    ck_assert_int_eq(c->max_seq_len, 512);
    ck_assert_int_eq(c->lm_head, ATTN_LM_HEAD_TIED);
    ck_assert_int_eq(attn_tokenizer_size(attn_model_tokenizer(model)), 512);
    attn_model_close(model);

    /* two tensors against the checkpoint's floats at offsets from PROVENANCE.md:
     * tok_embed first after the 28-byte header; the final norm after
     * 512*64 + 5*64 + 5*4096 + 2*5*2048 + 5*4096 + 5*64 + 3*5*172*64 floats */
    FILE *f = fopen(ckp, "rb");
    ck_assert_ptr_nonnull(f);
    float *emb = malloc(512 * 64 * sizeof(float)), norm[64];
    ck_assert_int_eq(fseek(f, 28, SEEK_SET), 0);
    ck_assert_uint_eq(fread(emb, sizeof(float), 512 * 64, f), 512 * 64);
    long off = 28 + 4L * (512 * 64 + 5 * 64 + 5 * 4096 + 2 * 5 * 2048 + 5 * 4096 + 5 * 64 +
                          3 * 5 * 172 * 64);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    ck_assert_uint_eq(fread(norm, sizeof(float), 64, f), 64);
    fclose(f);
    path_in(p, sizeof p, "stories/model.safetensors");
    attn_safetensors *st;
    ck_assert_int_eq(attn_safetensors_open(&st, p, &err), ATTN_OK);
    assert_tensor(st, "tok_embed", emb, 512, 64);
    assert_tensor(st, "norm.weight", norm, 64, 0);
    ck_assert_uint_eq(attn_safetensors_count(st), 2 + 9 * 5);
    attn_safetensors_close(st);
    free(emb);
}
END_TEST

static Suite *import_suite(void) {
    Suite *s = suite_create("import");
    TCase *tc = tcase_create("llama2c");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_legacy_shared);
    tcase_add_test(tc, test_legacy_separate);
    tcase_add_test(tc, test_v1_shared);
    tcase_add_test(tc, test_v1_separate);
    tcase_add_test(tc, test_parse_header);
    tcase_add_test(tc, test_parse_header_random);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_bad_tokenizer);
    tcase_add_test(tc, test_output_folder);
    tcase_add_test(tc, test_stories260k);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(import_suite()); }
