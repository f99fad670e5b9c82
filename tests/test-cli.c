/* CLI tests: exit codes, one-line error messages, no output file left behind
 * on failure, batch mode. They run the real `attn` binary ($ATTN_EXE) on
 * small random models written into a temporary folder. */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static const char *attn_exe;

/* ---- helpers ---- */

static tu_rng rng = {12345};
enum { D = TU_DEC_D };

/* The small decoder of tests/support.h; shape_q overrides the q rows (to make it wrong). */
static void make_decoder(int shape_q) { tu_decoder_write_weights(tmpdir, &rng, shape_q); }

static void write_config(const char *extra) { tu_decoder_write_config(tmpdir, extra); }

typedef tu_result result;

/* Runs attn with args (NULL-terminated) in tmpdir, stdin from `input` (NULL: empty). */
static result run_attn(const char *input, const char *const *args) {
    return tu_run(attn_exe, tmpdir, input, NULL, args);
}
#define result_free tu_result_free

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Asserts a failure: the status, exactly one line on stderr containing `needle`. */
static void assert_fails(const result *r, int status, const char *needle) {
    ck_assert_msg(r->status == status, "exit status %d, expected %d; stderr: %s", r->status,
                  status, r->err);
    ck_assert_msg(count_lines(r->err) == 1, "expected one line on stderr, got: %s", r->err);
    ck_assert_msg(strncmp(r->err, "attn: ", 6) == 0, "stderr: %s", r->err);
    ck_assert_msg(strstr(r->err, needle), "stderr lacks '%s': %s", needle, r->err);
}

/* No output file (final or temporary) exists in tmpdir. */
static void assert_no_outputs(void) {
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        ck_assert_msg(!strstr(e->d_name, "out.csv") && !strstr(e->d_name, "ctx.csv") &&
                          !strstr(e->d_name, ".tmp."),
                      "output file left behind: %s", e->d_name);
    }
    closedir(d);
}

static void setup(void) {
    attn_exe = getenv("ATTN_EXE");
    ck_assert_msg(attn_exe != NULL, "ATTN_EXE is not set");
    tu_tmpdir(tmpdir, sizeof tmpdir, "attn-test-cli-");
    make_decoder(D);
    write_config("");
}

static void teardown(void) { ck_assert_int_eq(tu_rm_tree(tmpdir), 0); }

#define RUN(input, ...) run_attn(input, (const char *const[]){__VA_ARGS__, NULL})

/* ---- tests ---- */

START_TEST(help_and_version) {
    result r = RUN(NULL, "--help");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Usage: attn"));
    result_free(&r);
    r = RUN(NULL, "run", "--help");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "--maps"));
    result_free(&r);
    r = RUN(NULL, "--version");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, ATTN_VERSION_STRING));
    result_free(&r);
}
END_TEST

START_TEST(good_run_writes_both_files) {
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "The cat sits on the mat",
                   "--maps", "out.csv", "--context", "ctx.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_str_eq(r.err, "");
    result_free(&r);
    char p[512];
    snprintf(p, sizeof p, "%s/out.csv", tmpdir);
    /* the file has the usual permissions (0666 less the umask), not mkstemp's 0600 */
    mode_t mask = umask(0);
    umask(mask);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0666 & ~mask);
    char *maps = tu_read_file(p);
    ck_assert_ptr_nonnull(maps);
    const char *maps_header =
        "input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n";
    ck_assert(strncmp(maps, maps_header, strlen(maps_header)) == 0);
    /* 6 tokens, causal: 6*7/2 = 21 rows per head, 2 heads */
    ck_assert_int_eq(count_lines(maps), 1 + 2 * 21);
    ck_assert_ptr_nonnull(strstr(maps, "0,decoder,0,self,1,5,mat,4,the,"));
    free(maps);
    snprintf(p, sizeof p, "%s/ctx.csv", tmpdir);
    char *ctx = tu_read_file(p);
    ck_assert_ptr_nonnull(ctx);
    const char *ctx_header = "input,pos,token,d0,d1,d2,d3,d4,d5,d6,d7\n";
    ck_assert(strncmp(ctx, ctx_header, strlen(ctx_header)) == 0);
    ck_assert_int_eq(count_lines(ctx), 7);
    free(ctx);
}
END_TEST

START_TEST(missing_config) {
    result r = RUN(NULL, "run", "--config", "nope.json", "--text", "the cat", "--maps",
                   "out.csv", "--context", "ctx.csv");
    assert_fails(&r, 1, "nope.json");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(unknown_key) {
    write_config("\"n_head\":2,");
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat", "--maps",
                   "out.csv", "--context", "ctx.csv");
    assert_fails(&r, 1, "n_head");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(bad_tensor_shape) {
    make_decoder(D + 2);
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat", "--maps",
                   "out.csv", "--context", "ctx.csv");
    assert_fails(&r, 1, "blocks.0.attn.q.weight");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(truncated_safetensors) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    const off_t cuts[] = {3, 20, st.st_size / 2, st.st_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        make_decoder(D);
        ck_assert_int_eq(truncate(p, cuts[i]), 0);
        result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat", "--maps",
                       "out.csv", "--context", "ctx.csv");
        assert_fails(&r, 1, "model.safetensors");
        result_free(&r);
        assert_no_outputs();
    }
}
END_TEST

START_TEST(bad_ids) {
    result r = RUN(NULL, "run", "--config", "config.json", "--ids", "1,x,3", "--maps", "out.csv");
    assert_fails(&r, 2, "--ids");
    ck_assert_ptr_nonnull(strstr(r.err, "'x'"));
    result_free(&r);
    r = RUN(NULL, "run", "--config", "config.json", "--ids", "1,2,11", "--maps", "out.csv");
    assert_fails(&r, 2, "11");
    result_free(&r);
    r = RUN(NULL, "run", "--config", "config.json", "--ids", "-1", "--maps", "out.csv");
    assert_fails(&r, 2, "-1");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(bad_flags) {
    const char *const cases[][8] = {
        {"run", "--config", "config.json", "--bogus", NULL},
        {"run", "--text", "the cat", NULL},
        {"run", "--config", "config.json", "--text", "a", "--ids", "1", NULL},
        {"run", "--config", "config.json", "--text", "the", "stray", NULL},
        {"run", "--config", NULL},
        {"frobnicate", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--source", "the", NULL},
    };
    const char *needles[] = {"--bogus", "--config", "--ids", "stray", "--config", "frobnicate",
                             "--source"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = run_attn(NULL, cases[i]);
        assert_fails(&r, 2, needles[i]);
        result_free(&r);
    }
    assert_no_outputs();
}
END_TEST

START_TEST(too_long) {
    result r = RUN(NULL, "run", "--config", "config.json", "--text",
                   "the cat sits on the mat . the cat sits on the mat .", "--maps", "out.csv");
    assert_fails(&r, 2, "max_seq_len");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(batch_mode) {
    /* line 3 is longer than max_seq_len (12) */
    const char *input = "the cat\nsun rises in the east\n"
                        "the cat sits on the mat . the cat sits on the mat .\n"
                        "mat\n";
    result r = RUN(input, "run", "--config", "config.json", "--maps", "out.csv", "--context",
                   "ctx.csv");
    ck_assert_int_eq(r.status, 1);
    ck_assert_int_eq(count_lines(r.err), 1);
    ck_assert_msg(strstr(r.err, "line 3"), "stderr: %s", r.err);
    result_free(&r);
    char p[512];
    snprintf(p, sizeof p, "%s/ctx.csv", tmpdir);
    char *ctx = tu_read_file(p);
    ck_assert_ptr_nonnull(ctx); /* kept: complete for the good lines */
    /* inputs 0 (2 tokens), 1 (5 tokens), 3 (1 token) */
    ck_assert_int_eq(count_lines(ctx), 1 + 2 + 5 + 1);
    ck_assert_ptr_nonnull(strstr(ctx, "\n3,0,mat,"));
    ck_assert_ptr_null(strstr(ctx, "\n2,"));

    /* apart from the input column, a batch line equals a single run */
    result s = RUN(NULL, "run", "--config", "config.json", "--text", "mat", "--context", "-");
    ck_assert_int_eq(s.status, 0);
    const char *single_row = strchr(s.out, '\n') + 1; /* "0,0,mat,..." */
    const char *batch_row = strstr(ctx, "\n3,0,mat,") + 1;
    ck_assert_str_eq(batch_row + 1, single_row + 1);
    result_free(&s);
    free(ctx);

    r = RUN("1,2\n1,99\n3\n", "run", "--config", "config.json", "--ids-input", "--context", "-");
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "line 2") && strstr(r.err, "99"), "stderr: %s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\n0,1,cat,"));
    ck_assert_ptr_nonnull(strstr(r.out, "\n2,0,sits,"));
    result_free(&r);
}
END_TEST

START_TEST(readable_view) {
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat sits");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "decoder layer 0, self-attention, head 1"));
    ck_assert_ptr_nonnull(strstr(r.out, "context vectors"));
    ck_assert_ptr_null(strstr(r.out, "\x1b[")); /* not a terminal: no colour */
    result_free(&r);
}
END_TEST

START_TEST(both_to_stdout) {
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat", "--maps", "-",
                   "--context", "-");
    ck_assert_int_eq(r.status, 0);
    const char *ctx = strstr(r.out, "\n\ninput,pos,token,");
    ck_assert_ptr_nonnull(ctx);
    ck_assert(strncmp(r.out, "input,stack,layer", 17) == 0);
    result_free(&r);
}
END_TEST

/* Runs the shell command line `script` in tmpdir, $ATTN naming the binary
 * (for pipes and closed streams). */
static result run_sh(const char *script) {
    char attn_var[512];
    snprintf(attn_var, sizeof attn_var, "ATTN=%s", attn_exe);
    const char *const env[] = {attn_var, NULL};
    return tu_run("/bin/sh", tmpdir, NULL, env, (const char *const[]){"-c", script, NULL});
}

/* tmpdir/name, read whole (NULL when it does not exist). */
static char *read_tmp(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return tu_read_file(p);
}

static bool tmp_exists(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return access(p, F_OK) == 0;
}

/* Asserts that the files a and b of tmpdir exist and hold the same bytes. */
static void assert_same_files(const char *a, const char *b) {
    char *x = read_tmp(a), *y = read_tmp(b);
    ck_assert_msg(x && y, "%s or %s is missing", a, b);
    ck_assert_msg(strcmp(x, y) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* Runs each of the n shell lines scripts[i], which writes maps to
 * m<i+1>.csv and a context to c<i+1>.csv, and asserts that they hold the
 * same bytes as ref-m.csv and ref-c.csv. */
static void assert_scripts_match(const char *const *scripts, int n) {
    for (int i = 0; i < n; i++) {
        result r = run_sh(scripts[i]);
        ck_assert_msg(r.status == 0, "%s: %s", scripts[i], r.err);
        result_free(&r);
        char m[16], c[16];
        snprintf(m, sizeof m, "m%d.csv", i + 1);
        snprintf(c, sizeof c, "c%d.csv", i + 1);
        assert_same_files("ref-m.csv", m);
        assert_same_files("ref-c.csv", c);
    }
}

START_TEST(repeated_flags) {
    /* every command: a flag with a value given twice (in either spelling) is
     * a usage error before any work, so no output file appears */
    const char *const cases[][14] = {
        {"run", "--config", "config.json", "--text", "the cat", "--text", "the mat", "--maps",
         "out.csv", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--maps", "out.csv", "--maps",
         "out2.csv", NULL},
        {"run", "-c", "config.json", "--config=config.json", "--text", "the cat", "--maps",
         "out.csv", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--top-k", "2", "--top-k", "2",
         "--predictions", "out.csv", NULL},
        {"generate", "--config", "config.json", "--text", "the cat", "--steps", "1", "--steps",
         "2", "--tokens", "out.csv", NULL},
        {"generate", "--config", "config.json", "--text", "the", "--steps", "1", "--maps",
         "out.csv", "--tokens", "ctx.csv", "--tokens", "ctx2.csv", NULL},
        {"explain", "--config", "config.json", "--text", "the cat", "--head", "0", "--head", "1",
         NULL},
        {"explain", "--config", "config.json", "--ids", "1,2", "--ids", "1,2", NULL},
        {"import", "llama2c", "--checkpoint", "a.bin", "--tokenizer", "t.bin", "--out",
         "out.csv", "--out", "out2.csv", NULL},
    };
    const char *needles[] = {"--text given twice", "--maps given twice", "--config given twice",
                             "--top-k given twice", "--steps given twice", "--tokens given twice",
                             "--head given twice", "--ids given twice", "--out given twice"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = run_attn(NULL, cases[i]);
        assert_fails(&r, 2, needles[i]);
        char help[64];
        snprintf(help, sizeof help, "see 'attn %s --help'", cases[i][0]);
        ck_assert_msg(strstr(r.err, help), "stderr: %s", r.err);
        ck_assert_str_eq(r.out, "");
        result_free(&r);
        assert_no_outputs();
        ck_assert(!tmp_exists("out2.csv") && !tmp_exists("ctx2.csv"));
    }
    /* a switch may repeat: it means the same */
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat", "--top-k", "1",
                   "--last", "--last", "--predictions", "-");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 2); /* header, one prediction after the last position */
    result_free(&r);
}
END_TEST

enum { EMB_T = 3 };

/* Writes the same random vectors [EMB_T, D] as emb.csv (%.9g, exact for
 * float32) and as emb.npy (<f4, written byte by byte here). */
static void write_vectors(void) {
    float v[EMB_T * D];
    char csv[4096];
    size_t n = 0;
    for (int t = 0; t < EMB_T; t++)
        for (int d = 0; d < D; d++) {
            v[t * D + d] = 3.0f * tu_rng_signed(&rng);
            n += (size_t)snprintf(csv + n, sizeof csv - n, "%.9g%s", (double)v[t * D + d],
                                  d + 1 < D ? "," : "\n");
        }
    tu_write_text(tmpdir, "emb.csv", csv);
    char dict[128];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", EMB_T, D);
    int hlen = ((10 + len + 1 + 63) / 64) * 64 - 10; /* magic 6, version 2, length 2 */
    tu_bytes b = {0};
    tu_bytes_put(&b, "\x93NUMPY\x01\x00", 8);
    const unsigned char hl[2] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    tu_bytes_put(&b, hl, 2);
    tu_bytes_put(&b, dict, (size_t)len);
    for (int i = len; i < hlen - 1; i++) tu_bytes_put(&b, " ", 1);
    tu_bytes_put(&b, "\n", 1);
    for (int i = 0; i < EMB_T * D; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        tu_bytes_le32(&b, u);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/emb.npy", tmpdir);
    tu_write_file(p, b.p, b.n);
    free(b.p);
}

START_TEST(embeddings_stdin) {
    write_vectors();
    /* from a file, as the reference */
    result r = RUN(NULL, "run", "--config", "config.json", "--embeddings", "emb.csv", "--maps",
                   "ref-m.csv", "--context", "ref-c.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    result_free(&r);
    char *ctx = read_tmp("ref-c.csv");
    ck_assert_int_eq(count_lines(ctx), 1 + EMB_T);
    free(ctx);
    /* CSV and .npy on standard input, from a pipe and from a file; the same
     * bytes out as from the path */
    const char *const scripts[] = {
        "cat emb.csv | \"$ATTN\" run --config config.json --embeddings - --maps m1.csv "
        "--context c1.csv",
        "cat emb.npy | \"$ATTN\" run --config config.json --embeddings - --maps m2.csv "
        "--context c2.csv",
        "\"$ATTN\" run --config config.json --embeddings - --maps m3.csv --context c3.csv "
        "< emb.npy",
        "\"$ATTN\" run --config config.json --embeddings emb.npy --maps m4.csv --context c4.csv",
    };
    assert_scripts_match(scripts, 4);
    /* explain reads it too and names it */
    r = RUN(NULL, "explain", "--config", "config.json", "--embeddings", "emb.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    result ri = run_sh("cat emb.npy | \"$ATTN\" explain --config config.json --embeddings -");
    ck_assert_msg(ri.status == 0, "stderr: %s", ri.err);
    ck_assert_ptr_nonnull(strstr(ri.out, "3 vectors from standard input"));
    ck_assert_ptr_nonnull(strstr(r.out, "3 vectors from emb.csv"));
    /* past the inputs' names, the same explanation */
    const char *a = strstr(r.out, "Input vectors X"), *b = strstr(ri.out, "Input vectors X");
    ck_assert(a && b);
    a = strchr(strchr(a, '\n') + 1, '\n');
    b = strchr(strchr(b, '\n') + 1, '\n');
    ck_assert_str_eq(a, b);
    result_free(&r);
    result_free(&ri);
    /* malformed vectors on standard input are named so */
    r = RUN("1,2,3,4,5,6,7,x\n", "run", "--config", "config.json", "--embeddings", "-", "--maps",
            "out.csv");
    assert_fails(&r, 1, "standard input");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(stdin_conflicts) {
    write_vectors();
    const char *const cases[][12] = {
        {"run", "--config", "config.json", "--embeddings", "-", "--source-embeddings", "-",
         "--maps", "out.csv", NULL},
        {"explain", "--config", "config.json", "--embeddings", "-", "--source-embeddings", "-",
         NULL},
        {"run", "--config", "-", "--embeddings", "-", "--maps", "out.csv", NULL},
        {"explain", "--config", "-", "--embeddings", "-", NULL},
        /* no main input: batch mode reads standard input */
        {"run", "--config", "config.json", "--source-embeddings", "-", "--maps", "out.csv",
         NULL},
        {"run", "--config", "-", "--maps", "out.csv", NULL},
    };
    const char *needles[] = {"--embeddings and --source-embeddings both read standard input",
                             "--embeddings and --source-embeddings both read standard input",
                             "--config and --embeddings both read standard input",
                             "--config and --embeddings both read standard input",
                             "--source-embeddings reads standard input, which batch mode reads",
                             "--config reads standard input, which batch mode reads"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = run_attn("1,2,3,4,5,6,7,8\n", cases[i]);
        assert_fails(&r, 2, needles[i]);
        result_free(&r);
        assert_no_outputs();
    }
    /* the same pipe under another name */
    result r = run_sh("cat config.json | \"$ATTN\" run --config /dev/stdin --maps out.csv");
    assert_fails(&r, 2, "--config reads standard input, which batch mode reads");
    result_free(&r);
    /* a closed standard input */
    r = run_sh("\"$ATTN\" run --config config.json --embeddings - --maps out.csv <&-");
    assert_fails(&r, 2, "--embeddings -: standard input is closed");
    result_free(&r);
    r = run_sh("\"$ATTN\" generate --config - --text the --steps 1 <&-");
    assert_fails(&r, 2, "--config -: standard input is closed");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(config_folder) {
    /* --config DIR reads DIR/config.json: the same output as the file */
    const char *const pairs[][2][14] = {
        {{"run", "--config", "config.json", "--text", "the cat sits", "--maps", "a.csv",
          "--context", "b.csv", NULL},
         {"run", "--config", ".", "--text", "the cat sits", "--maps", "a2.csv", "--context",
          "b2.csv", NULL}},
        {{"generate", "--config", "config.json", "--text", "the cat", "--steps", "3", "--maps",
          "a3.csv", "--tokens", "b3.csv", NULL},
         {"generate", "--config", "./", "--text", "the cat", "--steps", "3", "--maps", "a4.csv",
          "--tokens", "b4.csv", NULL}},
    };
    for (int i = 0; i < 2; i++) {
        result r = run_attn(NULL, pairs[i][0]);
        ck_assert_msg(r.status == 0, "stderr: %s", r.err);
        result_free(&r);
        r = run_attn(NULL, pairs[i][1]);
        ck_assert_msg(r.status == 0, "stderr: %s", r.err);
        result_free(&r);
    }
    assert_same_files("a.csv", "a2.csv");
    assert_same_files("b.csv", "b2.csv");
    assert_same_files("a3.csv", "a4.csv");
    assert_same_files("b3.csv", "b4.csv");
    /* from another folder, by its path */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    result r = run_sh("cd sub && \"$ATTN\" explain --config .. --text 'the cat' --width 100");
    result s = RUN(NULL, "explain", "--config", "config.json", "--text", "the cat", "--width",
                   "100");
    ck_assert_msg(r.status == 0 && s.status == 0, "stderr: %s%s", r.err, s.err);
    /* the same explanation, but for the line naming the model */
    const char *a = strstr(r.out, "model: .."), *b = strstr(s.out, "model: config.json");
    ck_assert_msg(a && b, "no model line: %s", r.out);
    ck_assert_str_eq(strchr(a, '\n'), strchr(b, '\n'));
    result_free(&r);
    result_free(&s);
    /* a folder without config.json */
    r = RUN(NULL, "run", "--config", "sub", "--text", "the cat", "--maps", "out.csv");
    assert_fails(&r, 1, "sub: a folder without config.json");
    result_free(&r);
    assert_no_outputs();
}
END_TEST

START_TEST(config_stream) {
    /* a config on standard input (a pipe, "-" or /dev/stdin): read whole, its
     * relative paths from the current folder */
    result r = RUN(NULL, "run", "--config", "config.json", "--text", "the cat sits", "--maps",
                   "ref-m.csv", "--context", "ref-c.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    result_free(&r);
    const char *const scripts[] = {
        "cat config.json | \"$ATTN\" run --config - --text 'the cat sits' --maps m1.csv "
        "--context c1.csv",
        "cat config.json | \"$ATTN\" run --config /dev/stdin --text 'the cat sits' --maps m2.csv "
        "--context c2.csv",
        "\"$ATTN\" run --config - --text 'the cat sits' --maps m3.csv --context c3.csv "
        "< config.json",
        "mkfifo cfg.fifo && { cat config.json > cfg.fifo & } && \"$ATTN\" run --config cfg.fifo "
        "--text 'the cat sits' --maps m4.csv --context c4.csv; s=$?; rm -f cfg.fifo; exit $s",
    };
    assert_scripts_match(scripts, 4);
    r = run_sh("cat config.json | \"$ATTN\" generate --config - --text 'the cat' --steps 2 "
               "--tokens t1.csv && \"$ATTN\" generate --config config.json --text 'the cat' "
               "--steps 2 --tokens t2.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    result_free(&r);
    assert_same_files("t1.csv", "t2.csv");
    /* from another folder the relative paths do not reach the model's files */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    r = run_sh("cd sub && cat ../config.json | \"$ATTN\" explain --config - --text 'the cat'");
    assert_fails(&r, 1, "standard input: key \"weights\": file ./model.safetensors");
    result_free(&r);
    /* larger than a config may be */
    r = run_sh("{ printf '{\"format\": \"attn/1\", \"x\": \"'; head -c 1100000 /dev/zero | "
               "tr '\\0' a; printf '\"}'; } | \"$ATTN\" run --config - --text the");
    assert_fails(&r, 1, "standard input: more than the 1 MiB limit of a config (1048576 bytes)");
    result_free(&r);
}
END_TEST

START_TEST(output_folder_missing) {
    /* an output that cannot be written fails before the model is loaded: with a
     * broken config, the message is still about the output */
    write_config("\"n_head\":2,");
    const char *const cases[][12] = {
        {"run", "--config", "config.json", "--text", "the cat", "--maps", "nodir/out.csv", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--maps", "out.csv", "--context",
         "nodir/ctx.csv", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--top-k", "2", "--predictions",
         "nodir/p.csv", NULL},
        {"run", "--config", "config.json", "--maps", "nodir/out.csv", NULL},
        {"generate", "--config", "config.json", "--text", "the", "--steps", "2", "--maps",
         "nodir/out.csv", NULL},
        {"generate", "--config", "config.json", "--text", "the", "--steps", "2", "--maps",
         "out.csv", "--tokens", "nodir/t.csv", NULL},
        {"run", "--config", "config.json", "--text", "the cat", "--maps", "sub", NULL},
    };
    const char *needles[] = {"nodir/out.csv: cannot create", "nodir/ctx.csv: cannot create",
                             "nodir/p.csv: cannot create", "nodir/out.csv: cannot create",
                             "nodir/out.csv: cannot create", "nodir/t.csv: cannot create",
                             "sub: cannot open: Is a directory"};
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = run_attn("the cat\n", cases[i]);
        assert_fails(&r, 1, needles[i]);
        ck_assert_str_eq(r.out, "");
        result_free(&r);
        assert_no_outputs();
    }
    DIR *d = opendir(sub);
    ck_assert_ptr_nonnull(d);
    int entries = 0;
    while (readdir(d)) entries++;
    closedir(d);
    ck_assert_int_eq(entries, 2); /* . and .. */
}
END_TEST

static Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, good_run_writes_both_files);
    tcase_add_test(tc, missing_config);
    tcase_add_test(tc, unknown_key);
    tcase_add_test(tc, bad_tensor_shape);
    tcase_add_test(tc, truncated_safetensors);
    tcase_add_test(tc, bad_ids);
    tcase_add_test(tc, bad_flags);
    tcase_add_test(tc, too_long);
    tcase_add_test(tc, batch_mode);
    tcase_add_test(tc, readable_view);
    tcase_add_test(tc, both_to_stdout);
    tcase_add_test(tc, repeated_flags);
    tcase_add_test(tc, embeddings_stdin);
    tcase_add_test(tc, stdin_conflicts);
    tcase_add_test(tc, config_folder);
    tcase_add_test(tc, config_stream);
    tcase_add_test(tc, output_folder_missing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(cli_suite()); }
