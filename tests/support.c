#include "support.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t tu_rng_u64(tu_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_rng_unif(tu_rng *r) {
    return ((double)(tu_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

float tu_rng_signed(tu_rng *r) { return (float)(2.0 * tu_rng_unif(r) - 1.0); }

double tu_rng_normal(tu_rng *r) {
    return sqrt(-2.0 * log(tu_rng_unif(r))) * cos(2.0 * M_PI * tu_rng_unif(r));
}

char *tu_read_file_n(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

char *tu_read_file(const char *path) { return tu_read_file_n(path, NULL); }

void tu_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void tu_write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tu_write_file(path, text, strlen(text));
}

void tu_tmpdir(char *dir, size_t cap, const char *prefix) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, cap, "%s/%sXXXXXX", base && *base ? base : "/tmp", prefix);
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot create %s", dir);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int tu_rm_tree(const char *dir) { return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void tu_bytes_put(tu_bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

void tu_bytes_le32(tu_bytes *b, uint32_t v) {
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    tu_bytes_put(b, le, 4);
}

float *tu_tensors_add(tu_tensors *ts, const char *name, int64_t d0, int64_t d1) {
    ck_assert_uint_lt(ts->n, TU_MAX_TENSORS);
    size_t i = ts->n++;
    snprintf(ts->names[i], sizeof ts->names[i], "%s", name);
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    float *d = malloc((n ? n : 1) * sizeof *d);
    ck_assert_ptr_nonnull(d);
    ts->specs[i] = (attn_tensor_spec){.name = ts->names[i], .ndim = d1 ? 2 : 1, .data = d};
    ts->specs[i].shape[0] = d0;
    ts->specs[i].shape[1] = d1;
    return d;
}

const attn_tensor_spec *tu_tensors_rand(tu_tensors *ts, tu_rng *r, const char *name, int64_t d0,
                                        int64_t d1, float base, float scale) {
    float *d = tu_tensors_add(ts, name, d0, d1);
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    for (size_t i = 0; i < n; i++) d[i] = base + scale * tu_rng_signed(r);
    return &ts->specs[ts->n - 1];
}

const attn_tensor_spec *tu_tensors_find(const tu_tensors *ts, const char *name) {
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->specs[i].name, name) == 0) return &ts->specs[i];
    return NULL;
}

void tu_tensors_write(const tu_tensors *ts, const char *path) {
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_write(path, ts->specs, ts->n, &err) == ATTN_OK, "%s",
                  err.message);
}

void tu_tensors_free(tu_tensors *ts) {
    for (size_t i = 0; i < ts->n; i++) free((float *)ts->specs[i].data);
    ts->n = 0;
}

void tu_decoder_tensors(tu_tensors *ts, tu_rng *r, int q_rows) {
    enum { V = TU_DEC_V, D = TU_DEC_D, F = TU_DEC_F, T = TU_DEC_T };
    tu_tensors_rand(ts, r, "tok_embed", V, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "pos_embed", T, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.attn_norm.weight", D, 0, 1, 0.1f);
    tu_tensors_rand(ts, r, "blocks.0.attn_norm.bias", D, 0, 0, 0.1f);
    tu_tensors_rand(ts, r, "blocks.0.attn.q.weight", q_rows, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.attn.k.weight", D, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.attn.v.weight", D, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.attn.o.weight", D, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.mlp_norm.weight", D, 0, 1, 0.1f);
    tu_tensors_rand(ts, r, "blocks.0.mlp_norm.bias", D, 0, 0, 0.1f);
    tu_tensors_rand(ts, r, "blocks.0.mlp.up.weight", F, D, 0, 0.5f);
    tu_tensors_rand(ts, r, "blocks.0.mlp.down.weight", D, F, 0, 0.5f);
    tu_tensors_rand(ts, r, "norm.weight", D, 0, 1, 0.1f);
    tu_tensors_rand(ts, r, "norm.bias", D, 0, 0, 0.1f);
}

void tu_decoder_write_weights(const char *dir, tu_rng *r, int q_rows) {
    static tu_tensors ts; /* large; tests are single-threaded */
    tu_decoder_tensors(&ts, r, q_rows);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_tensors_write(&ts, path);
    tu_tensors_free(&ts);
    tu_write_text(dir, "vocab.txt", "<unk>\nthe\ncat\nsits\non\nmat\n.\nsun\nrises\nin\neast\n");
}

void tu_decoder_write_config(const char *dir, const char *extra) {
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":%d,"
             "\"d_model\":%d,\"n_heads\":2,\"d_ff\":%d,\"max_seq_len\":%d,\"n_layers\":1,"
             "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
             "\"mlp\":\"gelu\",\"bias\":false,\"lm_head\":\"tied\","
             "\"weights\":\"model.safetensors\",%s"
             "\"tokenizer\":{\"type\":\"word\",\"vocab\":\"vocab.txt\",\"lowercase\":true,"
             "\"unk\":\"<unk>\",\"bos\":null,\"eos\":null}}",
             TU_DEC_V, TU_DEC_D, TU_DEC_F, TU_DEC_T, extra);
    tu_write_text(dir, "config.json", buf);
}

tu_result tu_run(const char *exe, const char *dir, const char *stdin_text,
                 const char *const *env, const char *const *args) {
    ck_assert_msg(exe != NULL, "no program to run (is ATTN_EXE set?)");
    char outp[512], errp[512], inp[512];
    snprintf(outp, sizeof outp, "%s/.stdout", dir);
    snprintf(errp, sizeof errp, "%s/.stderr", dir);
    snprintf(inp, sizeof inp, "%s/.stdin", dir);
    const char *in = "/dev/null";
    if (stdin_text) {
        tu_write_file(inp, stdin_text, strlen(stdin_text));
        in = inp;
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        for (int i = 0; env && env[i]; i++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", env[i]);
            char *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                setenv(kv, eq + 1, 1);
            } else {
                unsetenv(kv);
            }
        }
        int i = open(in, O_RDONLY), o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || e < 0) _exit(127);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        char *argv[64];
        int n = 0;
        argv[n++] = (char *)exe;
        for (int a = 0; args[a] && n < 63; a++) argv[n++] = (char *)args[a];
        argv[n] = NULL;
        execv(exe, argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    tu_result r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)};
    r.out = tu_read_file(outp);
    r.err = tu_read_file(errp);
    ck_assert_ptr_nonnull(r.out);
    ck_assert_ptr_nonnull(r.err);
    unlink(outp);
    unlink(errp);
    if (stdin_text) unlink(inp);
    return r;
}

void tu_result_free(tu_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

long tu_scaled(long n) {
    const char *d = getenv("ATTN_TEST_DIVISOR");
    long div = d ? strtol(d, NULL, 10) : 1;
    if (div < 1) div = 1;
    return n / div > 0 ? n / div : 1;
}
