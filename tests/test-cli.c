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
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(cli_suite()); }
