/* The error contract of attn/attn.h (Conventions): every public function
 * that can fail, of attn/attn.h and attn/write.h, called on an input it must
 * refuse. With err == NULL it returns the right non-zero status and does not
 * crash (each test runs in its own process, so a crash fails that test
 * alone); with an err it returns the same status, stores it in err->status
 * and writes a non-empty one-line message; pointer outputs are left NULL and
 * counts 0. The models are the random decoder of tests/support.h. */
#include "attn/attn.h"
#include "attn/write.h"
#include "support.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char tmpdir[256];
static tu_rng rng = {4242};
static attn_model *model; /* the small decoder in tmpdir, loaded by setup */

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void setup(void) {
    tu_tmpdir(tmpdir, sizeof tmpdir, "attn-test-errors-");
    tu_decoder_write_weights(tmpdir, &rng, TU_DEC_D);
    tu_decoder_write_config(tmpdir, "");
    char cfg[512];
    path_in(cfg, sizeof cfg, "config.json");
    attn_error err = {0};
    ck_assert_msg(attn_model_open(&model, cfg, &err) == ATTN_OK, "%s", err.message);
}

static void teardown(void) {
    attn_model_close(model);
    model = NULL;
    ck_assert_int_eq(tu_rm_tree(tmpdir), 0);
}

/* n random bytes (garbage for the parsers). */
static unsigned char *garbage(size_t n) {
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)tu_rng_u64(&rng);
    return b;
}

/* ---- the check ---- */

/* A call of the function under test on a failing input, with `err` as its
 * attn_error argument; it checks its own outputs and returns the status. */
typedef attn_status (*failing_call)(attn_error *err);

/* Runs call with err == NULL, then with an err: the same status `want`
 * both times, and with an err a message that is one non-empty line. */
static void refused(const char *what, failing_call call, attn_status want) {
    attn_status got = call(NULL);
    ck_assert_msg(got == want, "%s, err == NULL: status %d, expected %d", what, (int)got,
                  (int)want);
    attn_error err;
    memset(&err, 0, sizeof err);
    got = call(&err);
    ck_assert_msg(got == want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want,
                  err.message);
    ck_assert_msg(err.status == want, "%s: err.status %d, expected %d", what, (int)err.status,
                  (int)want);
    ck_assert_msg(err.message[0] != '\0', "%s: empty message", what);
    ck_assert_msg(strchr(err.message, '\n') == NULL && strchr(err.message, '\r') == NULL,
                  "%s: message is not one line: %s", what, err.message);
    printf("    %s\n", err.message);
}

/* ---- config ---- */

static attn_status config_bad_json(attn_error *err) {
    static const char json[] = "{\"format\": \"attn/1\", \"architecture\": ";
    attn_config cfg;
    return attn_config_parse(&cfg, json, strlen(json), "c.json", NULL, err);
}

/* The small decoder's config without "d_model". */
static attn_status config_missing_key(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "config.json");
    char *json = tu_read_file(path);
    ck_assert_ptr_nonnull(json);
    char *key = strstr(json, "\"d_model\":");
    ck_assert_ptr_nonnull(key);
    char *end = strchr(key, ',');
    memmove(key, end + 1, strlen(end + 1) + 1);
    attn_config cfg;
    attn_status rc = attn_config_parse(&cfg, json, strlen(json), "c.json", NULL, err);
    free(json);
    return rc;
}

static attn_status config_load_missing(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no-such-config.json");
    attn_config cfg;
    return attn_config_load(&cfg, path, err);
}

/* ---- safetensors ---- */

static attn_status safetensors_open_missing(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no-such.safetensors");
    attn_safetensors *st = (attn_safetensors *)&rng;
    attn_status rc = attn_safetensors_open(&st, path, err);
    ck_assert_ptr_null(st);
    return rc;
}

static attn_status safetensors_open_garbage(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "garbage.safetensors");
    unsigned char *g = garbage(300);
    tu_write_file(path, g, 300);
    free(g);
    attn_safetensors *st = (attn_safetensors *)&rng;
    attn_status rc = attn_safetensors_open(&st, path, err);
    ck_assert_ptr_null(st);
    return rc;
}

static attn_status safetensors_parse_garbage(attn_error *err) {
    unsigned char *g = garbage(300);
    attn_safetensors *st = (attn_safetensors *)&rng;
    attn_status rc = attn_safetensors_parse(&st, g, 300, "garbage", err);
    ck_assert_ptr_null(st);
    free(g);
    return rc;
}

static attn_status safetensors_write_no_folder(attn_error *err) {
    float data[6];
    for (int i = 0; i < 6; i++) data[i] = tu_rng_signed(&rng);
    attn_tensor_spec spec = {.name = "w", .ndim = 2, .shape = {2, 3}, .data = data};
    char path[512];
    path_in(path, sizeof path, "no/such/folder/w.safetensors");
    return attn_safetensors_write(path, &spec, 1, err);
}

/* ---- tokenizers ---- */

static attn_tokenizer_config llama2c_config(const char *path) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    snprintf(tc.path, sizeof tc.path, "%s", path);
    return tc;
}

static attn_status tokenizer_open_missing(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no-such-tokenizer.bin");
    attn_tokenizer_config tc = llama2c_config(path);
    attn_tokenizer *tok = (attn_tokenizer *)&rng;
    attn_status rc = attn_tokenizer_open(&tok, &tc, err);
    ck_assert_ptr_null(tok);
    return rc;
}

/* A llama2.c tokenizer file of 3 bytes: shorter than its int32 header. */
static attn_status tokenizer_open_short(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "short.bin");
    tu_write_file(path, "\x05\x00\x00", 3);
    attn_tokenizer_config tc = llama2c_config(path);
    attn_tokenizer *tok = (attn_tokenizer *)&rng;
    attn_status rc = attn_tokenizer_open(&tok, &tc, err);
    ck_assert_ptr_null(tok);
    return rc;
}

/* A word vocabulary without a single token. */
static attn_status tokenizer_memory_empty_vocab(attn_error *err) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_WORD;
    snprintf(tc.unk, sizeof tc.unk, "<unk>");
    attn_tokenizer *tok = (attn_tokenizer *)&rng;
    attn_status rc = attn_tokenizer_from_memory(&tok, &tc, "", 0, "vocab.txt", err);
    ck_assert_ptr_null(tok);
    return rc;
}

/* An entry of a llama2.c tokenizer file: float32 score, int32 length, bytes. */
static void put_entry(tu_bytes *b, float score, const char *s) {
    uint32_t bits;
    memcpy(&bits, &score, 4);
    tu_bytes_le32(b, bits);
    tu_bytes_le32(b, (uint32_t)strlen(s));
    tu_bytes_put(b, s, strlen(s));
}

/* max_token_length 6; <unk>, BOS, EOS and "hello": no piece and no
 * byte-fallback id for "x". */
static attn_tokenizer *tiny_llama2c(void) {
    tu_bytes b = {0};
    tu_bytes_le32(&b, 6);
    put_entry(&b, 0, "<unk>");
    put_entry(&b, 0, "\n<s>\n");
    put_entry(&b, 0, "\n</s>\n");
    put_entry(&b, -1.5f, "hello");
    attn_tokenizer_config tc = llama2c_config("");
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_tokenizer_from_memory(&tok, &tc, b.p, b.n, "tiny.bin", &err) == ATTN_OK,
                  "%s", err.message);
    free(b.p);
    return tok;
}

static attn_status tokenizer_encode_no_piece(attn_error *err) {
    attn_tokenizer *tok = tiny_llama2c();
    int *ids = (int *)&rng;
    size_t n = 99;
    attn_status rc = attn_tokenizer_encode(tok, "x", 1, &ids, &n, err);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    attn_tokenizer_free(tok);
    return rc;
}

static attn_status tokenizer_encode_null_text(attn_error *err) {
    int *ids = (int *)&rng;
    size_t n = 99;
    attn_status rc = attn_tokenizer_encode(attn_model_tokenizer(model), NULL, 3, &ids, &n, err);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    return rc;
}

/* ---- models ---- */

static attn_status model_open_missing(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no-such-config.json");
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_open(&m, path, err);
    ck_assert_ptr_null(m);
    return rc;
}

/* A fresh folder tmpdir/<name>. */
static void subdir(char *out, size_t cap, const char *name) {
    path_in(out, cap, name);
    ck_assert_msg(mkdir(out, 0755) == 0 || exists(out), "cannot create %s", out);
}

/* The small decoder's tensors but the last `drop` ones, written to
 * dir/model.safetensors and opened; *cfg = the small decoder's config. */
static attn_safetensors *decoder_without_last(const char *dir, size_t drop, attn_config *cfg) {
    static tu_tensors ts;
    tu_decoder_tensors(&ts, &rng, TU_DEC_D);
    ck_assert_uint_gt(ts.n, drop);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    attn_error err = {0};
    ck_assert_msg(attn_safetensors_write(path, ts.specs, ts.n - drop, &err) == ATTN_OK, "%s",
                  err.message);
    tu_tensors_free(&ts);
    attn_safetensors *st = NULL;
    ck_assert_msg(attn_safetensors_open(&st, path, &err) == ATTN_OK, "%s", err.message);
    *cfg = *attn_model_config(model);
    return st;
}

/* norm.bias, the last tensor, is missing. */
static attn_status model_from_parts_missing_tensor(attn_error *err) {
    char dir[512];
    subdir(dir, sizeof dir, "parts");
    attn_config cfg;
    attn_safetensors *st = decoder_without_last(dir, 1, &cfg);
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_from_parts(&m, &cfg, st, NULL, err);
    ck_assert_ptr_null(m);
    return rc;
}

/* blocks.0.attn.q.weight is [D + 2, D] instead of [D, D]. */
static attn_status model_from_parts_wrong_shape(attn_error *err) {
    static tu_tensors ts;
    tu_decoder_tensors(&ts, &rng, TU_DEC_D + 2);
    char path[512];
    path_in(path, sizeof path, "wide.safetensors");
    tu_tensors_write(&ts, path);
    tu_tensors_free(&ts);
    attn_safetensors *st = NULL;
    attn_error e = {0};
    ck_assert_msg(attn_safetensors_open(&st, path, &e) == ATTN_OK, "%s", e.message);
    attn_config cfg = *attn_model_config(model);
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_from_parts(&m, &cfg, st, NULL, err);
    ck_assert_ptr_null(m);
    return rc;
}

/* A parsed config whose weights file does not exist. */
static attn_status model_open_config_missing(attn_error *err) {
    attn_config cfg = *attn_model_config(model);
    path_in(cfg.weights, sizeof cfg.weights, "no-such.safetensors");
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_open_config(&m, &cfg, "parsed", err);
    ck_assert_ptr_null(m);
    return rc;
}

/* A whole model folder with a tensor missing, through attn_model_open. */
static attn_status model_open_missing_tensor(attn_error *err) {
    char dir[512], path[600];
    subdir(dir, sizeof dir, "broken");
    tu_decoder_write_weights(dir, &rng, TU_DEC_D);
    tu_decoder_write_config(dir, "");
    attn_config cfg;
    attn_safetensors_close(decoder_without_last(dir, 1, &cfg));
    snprintf(path, sizeof path, "%s/config.json", dir);
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_open(&m, path, err);
    ck_assert_ptr_null(m);
    return rc;
}

/* A tensor the config does not explain: the config says no MLP. */
static attn_status model_from_parts_unexplained(attn_error *err) {
    char dir[512];
    subdir(dir, sizeof dir, "parts");
    attn_config cfg;
    attn_safetensors *st = decoder_without_last(dir, 0, &cfg);
    cfg.mlp = ATTN_MLP_NONE;
    attn_model *m = (attn_model *)&rng;
    attn_status rc = attn_model_from_parts(&m, &cfg, st, NULL, err);
    ck_assert_ptr_null(m);
    return rc;
}

/* ---- sessions ---- */

static attn_status session_new_no_model(attn_error *err) {
    attn_session *s = (attn_session *)&rng;
    attn_status rc = attn_session_new(&s, NULL, err);
    ck_assert_ptr_null(s);
    return rc;
}

static attn_session *new_session(void) {
    attn_session *s = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_session_new(&s, model, &err) == ATTN_OK, "%s", err.message);
    return s;
}

/* Random ids of the vocabulary. */
static void random_ids(int *ids, size_t n) {
    for (size_t i = 0; i < n; i++) ids[i] = (int)(tu_rng_u64(&rng) % TU_DEC_V);
}

/* A decoder has no encoder to give a source to. */
static attn_status session_encode_decoder(attn_error *err) {
    attn_session *s = new_session();
    int src[3];
    random_ids(src, 3);
    attn_input in = {.ids = src, .n = 3};
    attn_status rc = attn_session_encode(s, &in, NULL, err);
    attn_session_free(s);
    return rc;
}

static attn_status forward_ids(const int *ids, size_t n, const attn_capture *cap,
                               attn_error *err) {
    attn_session *s = new_session();
    attn_input in = {.ids = ids, .n = n};
    attn_status rc = attn_session_forward(s, &in, cap, err);
    ck_assert_uint_eq(attn_session_length(s), 0);
    attn_session_free(s);
    return rc;
}

static attn_status session_forward_id_outside(attn_error *err) {
    int ids[4];
    random_ids(ids, 4);
    ids[2] = TU_DEC_V;
    return forward_ids(ids, 4, NULL, err);
}

static attn_status session_forward_too_long(attn_error *err) {
    int ids[TU_DEC_T + 1];
    random_ids(ids, TU_DEC_T + 1);
    return forward_ids(ids, TU_DEC_T + 1, NULL, err);
}

/* Capture sinks that fail: with a message, and without one. */
static bool wants_weights(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

static attn_status emit_fails(void *user, const attn_capture_key *key,
                              const attn_capture_view *view, attn_error *err) {
    (void)user, (void)key, (void)view;
    return attn_error_set(err, ATTN_ERR_IO, "the sink cannot write");
}

static attn_status emit_fails_silently(void *user, const attn_capture_key *key,
                                       const attn_capture_view *view, attn_error *err) {
    (void)user, (void)key, (void)view, (void)err;
    return ATTN_ERR_IO;
}

static attn_status session_forward_sink_fails(attn_error *err) {
    int ids[5];
    random_ids(ids, 5);
    attn_capture cap = {wants_weights, emit_fails, NULL};
    attn_status rc = forward_ids(ids, 5, &cap, err);
    if (err) ck_assert_str_eq(err->message, "the sink cannot write");
    return rc;
}

static attn_status session_forward_sink_fails_silently(attn_error *err) {
    int ids[5];
    random_ids(ids, 5);
    attn_capture cap = {wants_weights, emit_fails_silently, NULL};
    attn_status rc = forward_ids(ids, 5, &cap, err);
    if (err) ck_assert_msg(strstr(err->message, "blocks.0.attn.weights"), "%s", err->message);
    return rc;
}

/* ---- top-k ---- */

static float logits[TU_DEC_V];
static attn_prediction top[TU_DEC_V + 1];

static void random_logits(void) {
    for (int i = 0; i < TU_DEC_V; i++) logits[i] = 4 * tu_rng_signed(&rng);
}

static attn_status topk_zero(attn_error *err) {
    random_logits();
    return attn_topk(top, 0, logits, TU_DEC_V, err);
}

static attn_status topk_past_vocab(attn_error *err) {
    random_logits();
    return attn_topk(top, TU_DEC_V + 1, logits, TU_DEC_V, err);
}

/* ---- llama2.c import ---- */

static attn_status llama2c_header_short(attn_error *err) {
    unsigned char *g = garbage(20);
    attn_llama2c_header h;
    attn_status rc = attn_llama2c_parse_header(&h, g, 20, "ck.bin", err);
    free(g);
    return rc;
}

static attn_status import_missing_checkpoint(attn_error *err) {
    char ck[512], tok[512], out[512];
    path_in(ck, sizeof ck, "no-such-checkpoint.bin");
    path_in(tok, sizeof tok, "no-such-tokenizer.bin");
    path_in(out, sizeof out, "imported");
    attn_status rc = attn_import_llama2c(ck, tok, out, 0, err);
    ck_assert(!exists(out));
    return rc;
}

/* ---- embeddings ---- */

static attn_status embeddings_bad_csv(attn_error *err) {
    char csv[128];
    snprintf(csv, sizeof csv, "%.6f,%.6f\n%.6f,x\n", (double)tu_rng_signed(&rng),
             (double)tu_rng_signed(&rng), (double)tu_rng_signed(&rng));
    float *out = (float *)&rng;
    size_t rows = 99;
    attn_status rc = attn_embeddings_parse(&out, &rows, csv, strlen(csv), 2, 0, "e.csv", err);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(rows, 0);
    return rc;
}

/* 11 bytes against a limit of 10. */
static attn_status read_stream_over_limit(attn_error *err) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fputs("0123456789a", f);
    rewind(f);
    char *buf = (char *)&rng;
    size_t len = 99;
    attn_status rc = attn_read_stream(f, 10, "eleven", "a test", &buf, &len, err);
    fclose(f);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    return rc;
}

static attn_status embeddings_load_missing(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no-such.csv");
    float *out = (float *)&rng;
    size_t rows = 99;
    attn_status rc = attn_embeddings_load(&out, &rows, path, 2, 0, err);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(rows, 0);
    return rc;
}

/* ---- writers (attn/write.h) ---- */

static attn_status outfile_open_no_folder(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "no/such/folder/out.csv");
    attn_outfile o;
    attn_status rc = attn_outfile_open(&o, path, err);
    ck_assert_ptr_null(o.f);
    ck_assert_ptr_null(o.path);
    ck_assert_ptr_null(o.tmp);
    return rc;
}

/* Both CSV sinks write one value each into an attn_outfile whose stream
 * refuses every write; their emit has no failure of its own (ATTN_OK, and
 * no crash with err == NULL); attn_outfile_commit reports the failed writes
 * and leaves no file behind. */
static attn_status outfile_commit_failed_writes(attn_error *err) {
    char path[512];
    path_in(path, sizeof path, "maps.csv");
    attn_outfile o;
    attn_error e = {0};
    ck_assert_msg(attn_outfile_open(&o, path, &e) == ATTN_OK, "%s", e.message);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s", o.tmp);
    ck_assert_int_eq(fclose(o.f), 0);
    o.f = fopen(tmp, "r"); /* every write to it fails */
    ck_assert_ptr_nonnull(o.f);

    int ids[4];
    random_ids(ids, 4);
    attn_labels labels;
    ck_assert_int_eq(attn_labels_from_ids(&labels, attn_model_tokenizer(model), ids, 4), ATTN_OK);
    attn_run_info run = {.input = 0, .main = &labels, .cfg = attn_model_config(model)};
    float data[4 * TU_DEC_D];
    for (int i = 0; i < 4 * TU_DEC_D; i++) data[i] = tu_rng_signed(&rng);
    attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = 0, .head = 1, .causal = true};
    attn_capture_view view = {.rows = 4, .cols = 4, .data = data};
    attn_csv_maps maps = {.f = o.f, .run = &run};
    ck_assert_int_eq(attn_csv_maps_emit(&maps, &key, &view, err), ATTN_OK);
    key = (attn_capture_key){.value = ATTN_V_HIDDEN, .layer = -1, .head = -1, .causal = true};
    view = (attn_capture_view){.rows = 4, .cols = TU_DEC_D, .data = data};
    attn_csv_context ctx = {.f = o.f, .run = &run};
    ck_assert_int_eq(attn_csv_context_emit(&ctx, &key, &view, err), ATTN_OK);
    attn_labels_free(&labels);

    attn_status rc = attn_outfile_commit(&o, err);
    ck_assert(!exists(path));
    ck_assert(!exists(tmp));
    return rc;
}

/* A backslash that starts no escape (its byte is a newline: the message
 * must still be one line); the count is left 0. */
static attn_status unescape_bad_escape(attn_error *err) {
    static const char text[] = "ok\\\n";
    char out[sizeof text];
    size_t n = 99;
    attn_status rc = attn_unescape_text(out, &n, text, sizeof text - 1, err);
    ck_assert_uint_eq(n, 0);
    return rc;
}

static bool wants_nothing(void *user, const attn_capture_key *key) {
    (void)user, (void)key;
    return false;
}

static attn_status fanout_full(attn_error *err) {
    attn_fanout fo = {0};
    attn_capture c = {wants_nothing, emit_fails, NULL};
    for (int i = 0; i < ATTN_FANOUT_MAX; i++)
        ck_assert_int_eq(attn_fanout_add(&fo, c, err), ATTN_OK);
    attn_status rc = attn_fanout_add(&fo, c, err);
    ck_assert_int_eq(fo.n, ATTN_FANOUT_MAX);
    return rc;
}

/* ---- every refusal, one forked test each ---- */

static const struct refusal {
    const char *what;
    failing_call call;
    attn_status want;
} refusals[] = {
    {"attn_config_parse: bad JSON", config_bad_json, ATTN_ERR_FORMAT},
    {"attn_config_parse: a required key missing", config_missing_key, ATTN_ERR_FORMAT},
    {"attn_config_load: no such file", config_load_missing, ATTN_ERR_IO},
    {"attn_safetensors_open: no such file", safetensors_open_missing, ATTN_ERR_IO},
    {"attn_safetensors_open: garbage", safetensors_open_garbage, ATTN_ERR_FORMAT},
    {"attn_safetensors_parse: garbage", safetensors_parse_garbage, ATTN_ERR_FORMAT},
    {"attn_safetensors_write: no such folder", safetensors_write_no_folder, ATTN_ERR_IO},
    {"attn_tokenizer_open: no such file", tokenizer_open_missing, ATTN_ERR_IO},
    {"attn_tokenizer_open: a 3-byte llama2.c file", tokenizer_open_short, ATTN_ERR_FORMAT},
    {"attn_tokenizer_from_memory: an empty vocabulary", tokenizer_memory_empty_vocab,
     ATTN_ERR_FORMAT},
    {"attn_tokenizer_encode: a byte without a piece", tokenizer_encode_no_piece, ATTN_ERR_USAGE},
    {"attn_tokenizer_encode: NULL text of length 3", tokenizer_encode_null_text, ATTN_ERR_USAGE},
    {"attn_model_open: no such file", model_open_missing, ATTN_ERR_IO},
    {"attn_model_open: a tensor missing", model_open_missing_tensor, ATTN_ERR_FORMAT},
    {"attn_model_open_config: no such weights file", model_open_config_missing, ATTN_ERR_IO},
    {"attn_model_from_parts: a tensor missing", model_from_parts_missing_tensor, ATTN_ERR_FORMAT},
    {"attn_model_from_parts: a tensor of the wrong shape", model_from_parts_wrong_shape,
     ATTN_ERR_FORMAT},
    {"attn_model_from_parts: a tensor the config does not use", model_from_parts_unexplained,
     ATTN_ERR_FORMAT},
    {"attn_session_new: no model", session_new_no_model, ATTN_ERR_USAGE},
    {"attn_session_encode: a decoder given a source", session_encode_decoder, ATTN_ERR_USAGE},
    {"attn_session_forward: an id outside the vocabulary", session_forward_id_outside,
     ATTN_ERR_USAGE},
    {"attn_session_forward: longer than max_seq_len", session_forward_too_long, ATTN_ERR_USAGE},
    {"attn_session_forward: the sink fails", session_forward_sink_fails, ATTN_ERR_IO},
    {"attn_session_forward: the sink fails without a message",
     session_forward_sink_fails_silently, ATTN_ERR_IO},
    {"attn_topk: k = 0", topk_zero, ATTN_ERR_USAGE},
    {"attn_topk: k = V + 1", topk_past_vocab, ATTN_ERR_USAGE},
    {"attn_llama2c_parse_header: 20 bytes", llama2c_header_short, ATTN_ERR_FORMAT},
    {"attn_import_llama2c: no such checkpoint", import_missing_checkpoint, ATTN_ERR_IO},
    {"attn_embeddings_parse: a field that is not a number", embeddings_bad_csv, ATTN_ERR_FORMAT},
    {"attn_embeddings_load: no such file", embeddings_load_missing, ATTN_ERR_IO},
    {"attn_read_stream: more than its limit", read_stream_over_limit, ATTN_ERR_FORMAT},
    {"attn_outfile_open: no such folder", outfile_open_no_folder, ATTN_ERR_IO},
    {"attn_csv_*_emit, attn_outfile_commit: every write failed", outfile_commit_failed_writes,
     ATTN_ERR_IO},
    {"attn_fanout_add: past ATTN_FANOUT_MAX", fanout_full, ATTN_ERR_USAGE},
    {"attn_unescape_text: a backslash before a line break", unescape_bad_escape, ATTN_ERR_FORMAT},
};
enum { N_REFUSALS = sizeof refusals / sizeof refusals[0] };

START_TEST(refusal) {
    const struct refusal *r = &refusals[_i];
    printf("refusal %d: %s\n", _i, r->what); /* names the call should it crash */
    fflush(stdout);
    refused(r->what, r->call, r->want);
}
END_TEST

/* The labels constructors take no attn_error: they can only run out of
 * memory (here: more labels than memory can hold), and leave no labels. */
START_TEST(labels_out_of_memory) {
    const size_t huge = SIZE_MAX / 4;
    int ids[2];
    random_ids(ids, 2);
    attn_labels l;
    ck_assert_int_eq(attn_labels_from_ids(&l, attn_model_tokenizer(model), ids, huge),
                     ATTN_ERR_NOMEM);
    ck_assert_ptr_null(l.text);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_str_eq(attn_labels_at(&l, 0), "?");
    attn_labels_free(&l);
    ck_assert_int_eq(attn_labels_from_positions(&l, huge), ATTN_ERR_NOMEM);
    ck_assert_ptr_null(l.text);
    ck_assert_uint_eq(l.n, 0);
    attn_labels_free(&l);
}
END_TEST

static Suite *errors_suite(void) {
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    /* once, in the parent process: every forked test inherits the model,
     * and the folder is removed even when a test crashed */
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, refusal, 0, N_REFUSALS);
    tcase_add_test(tc, labels_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* a crash fails one test, never hides the others; under valgrind (which
     * sets CK_FORK=no) forked children would report the parent's fixture as
     * lost, and valgrind reports a crash itself */
    setenv("CK_FORK", "yes", 0);
    return tu_run_suite(errors_suite());
}
