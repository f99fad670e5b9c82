/* attn generate and the next-token predictions (attn_topk, attn run --top-k).
 *
 * Random small models (decoder, and encoder-decoder) are written here with
 * attn_safetensors_write and a config file in a temporary folder, with a
 * word tokenizer. The real binary ($ATTN_EXE) generates; each generated
 * token must be the argmax (lowest id on ties, computed here) of a fresh,
 * cache-free run of the whole prefix through the library; the streamed maps
 * must equal the maps of one run of the whole final sequence. Top-k is
 * checked against a full sort and a double-precision softmax written here. */
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

static char tmpdir[256];
static const char *attn_exe;

static void setup(void) {
    tu_tmpdir(tmpdir, sizeof tmpdir, "attn-test-generate.");
    attn_exe = getenv("ATTN_EXE");
}
static void teardown(void) { tu_rm_tree(tmpdir); }

/* ---- random numbers (tu_rng, tests/support.h) ---- */
static tu_rng rng;
static uint64_t rng_u64(void) { return tu_rng_u64(&rng); }
static double unif(void) { return (double)(rng_u64() >> 11) / 9007199254740992.0; }

/* ---- a random model ---- */
typedef struct mspec {
    const char *arch, *positional, *norm, *mlp, *lm_head;
    int V, D, H, KV, F, T, L, LE;
    bool bias;
    bool eos;             /* the tokenizer has eos "</s>" (id 0) */
    bool no_bos;          /* the tokenizer has no bos (else "<s>", id 2) */
    bool zero_final_norm; /* norm.weight = 0: every logit is exactly 0 (all tie) */
    double wscale;        /* linear weights uniform in +-wscale/sqrt(in); 0: 1.5 */
    uint64_t seed;
} mspec;

/* Adds a tensor filled with offset + scale * u, u uniform in [-1, 1). */
static void add(tu_tensors *b, const char *name, int64_t rows, int64_t cols, double scale,
                double offset) {
    float *d = tu_tensors_add(b, name, rows, cols);
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    for (size_t j = 0; j < n; j++) d[j] = (float)(offset + scale * (2 * unif() - 1));
}

static void add_norm(tu_tensors *b, const mspec *m, const char *prefix, double w) {
    char name[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(b, name, m->D, 0, w == 0 ? 0 : 0.3, w);
    if (strcmp(m->norm, "layernorm") == 0) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        add(b, name, m->D, 0, w == 0 ? 0 : 0.1, 0);
    }
}

static void add_linear(tu_tensors *b, const mspec *m, const char *prefix, int out, int in) {
    char name[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(b, name, out, in, (m->wscale > 0 ? m->wscale : 1.5) / sqrt(in), 0);
    if (m->bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        add(b, name, out, 0, 0.2, 0);
    }
}

static void add_attention(tu_tensors *b, const mspec *m, const char *p) {
    int hd = m->D / m->H;
    char name[96];
    snprintf(name, sizeof name, "%s.q", p);
    add_linear(b, m, name, m->H * hd, m->D);
    snprintf(name, sizeof name, "%s.k", p);
    add_linear(b, m, name, m->KV * hd, m->D);
    snprintf(name, sizeof name, "%s.v", p);
    add_linear(b, m, name, m->KV * hd, m->D);
    snprintf(name, sizeof name, "%s.o", p);
    add_linear(b, m, name, m->D, m->H * hd);
}

static void add_stack(tu_tensors *b, const mspec *m, const char *stack, int layers, bool cross) {
    char p[96];
    for (int l = 0; l < layers; l++) {
        snprintf(p, sizeof p, "%s.%d.attn_norm", stack, l);
        add_norm(b, m, p, 1.0);
        snprintf(p, sizeof p, "%s.%d.attn", stack, l);
        add_attention(b, m, p);
        if (cross) {
            snprintf(p, sizeof p, "%s.%d.cross_norm", stack, l);
            add_norm(b, m, p, 1.0);
            snprintf(p, sizeof p, "%s.%d.cross", stack, l);
            add_attention(b, m, p);
        }
        snprintf(p, sizeof p, "%s.%d.mlp_norm", stack, l);
        add_norm(b, m, p, 1.0);
        snprintf(p, sizeof p, "%s.%d.mlp.up", stack, l);
        add_linear(b, m, p, m->F, m->D);
        if (strcmp(m->mlp, "swiglu") == 0) {
            snprintf(p, sizeof p, "%s.%d.mlp.gate", stack, l);
            add_linear(b, m, p, m->F, m->D);
        }
        snprintf(p, sizeof p, "%s.%d.mlp.down", stack, l);
        add_linear(b, m, p, m->D, m->F);
    }
}

/* Writes tmpdir/<name>.json, <name>.safetensors and vocab.txt; returns the config path. */
static char *write_model(const mspec *m, const char *name) {
    rng.s = m->seed;
    tu_tensors *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    bool encdec = strcmp(m->arch, "encoder-decoder") == 0;
    add(b, "tok_embed", m->V, m->D, 1.0, 0);
    if (strcmp(m->positional, "learned") == 0) add(b, "pos_embed", m->T, m->D, 0.5, 0);
    add_stack(b, m, "blocks", m->L, encdec);
    if (encdec) add_stack(b, m, "encoder.blocks", m->LE, false);
    /* pre-norm models here: a final norm on every stack */
    add_norm(b, m, "norm", m->zero_final_norm ? 0.0 : 1.0);
    if (encdec) add_norm(b, m, "encoder.norm", 1.0);
    if (strcmp(m->lm_head, "separate") == 0) add(b, "lm_head.weight", m->V, m->D, 1.0, 0);

    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, name);
    tu_tensors_write(b, path);
    tu_tensors_free(b);
    free(b);

    snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("</s>\n<unk>\n<s>\n", f);
    for (int i = 3; i < m->V; i++) fprintf(f, "w%d\n", i);
    ck_assert_int_eq(fclose(f), 0);

    char *cfg = malloc(512);
    snprintf(cfg, 512, "%s/%s.json", tmpdir, name);
    f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"format\": \"attn/1\", \"architecture\": \"%s\", \"vocab_size\": %d, "
            "\"d_model\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"d_ff\": %d, "
            "\"max_seq_len\": %d, \"n_layers\": %d, ",
            m->arch, m->V, m->D, m->H, m->KV, m->F, m->T, m->L);
    if (encdec) fprintf(f, "\"n_encoder_layers\": %d, ", m->LE);
    fprintf(f,
            "\"positional\": \"%s\", \"norm\": \"%s\", \"norm_position\": \"pre\", "
            "\"mlp\": \"%s\", \"bias\": %s, \"lm_head\": \"%s\", \"weights\": "
            "\"%s.safetensors\", \"tokenizer\": {\"type\": \"word\", \"vocab\": \"vocab.txt\", "
            "\"unk\": \"<unk>\", \"bos\": %s, \"eos\": %s}}\n",
            m->positional, m->norm, m->mlp, m->bias ? "true" : "false", m->lm_head, name,
            m->no_bos ? "null" : "\"<s>\"", m->eos ? "\"</s>\"" : "null");
    ck_assert_int_eq(fclose(f), 0);
    return cfg;
}

static const mspec decoder_rope = {.arch = "decoder", .positional = "rope", .norm = "rmsnorm",
                                   .mlp = "swiglu", .lm_head = "separate", .V = 29, .D = 16, .H = 4,
                                   .KV = 2, .F = 24, .T = 20, .L = 2, .seed = 1001};
static const mspec decoder_learned = {.arch = "decoder", .positional = "learned",
                                      .norm = "layernorm", .mlp = "gelu", .lm_head = "tied",
                                      .V = 23, .D = 12, .H = 3, .KV = 3, .F = 20, .T = 18,
                                      .L = 3, .bias = true, .wscale = 6, .seed = 1002};
static const mspec encdec = {.arch = "encoder-decoder", .positional = "sinusoidal",
                             .norm = "layernorm", .mlp = "relu", .lm_head = "separate", .V = 25,
                             .D = 16, .H = 4, .KV = 4, .F = 32, .T = 16, .L = 2, .LE = 2,
                             .bias = true, .seed = 1008};

/* ---- running the binary ---- */

/* Runs attn with args (NULL-terminated) in tmpdir; its standard output and
 * error are kept as the files "stdout" and "stderr" there. Returns the exit
 * status (a crash fails the test). */
static int run_attn(const char *const *args) {
    tu_result r = tu_run(attn_exe, tmpdir, NULL, NULL, args);
    ck_assert_msg(r.status < 128, "attn died of signal %d; stderr: %s", r.status - 128, r.err);
    char path[512];
    snprintf(path, sizeof path, "%s/stdout", tmpdir);
    tu_write_file(path, r.out, strlen(r.out));
    snprintf(path, sizeof path, "%s/stderr", tmpdir);
    tu_write_file(path, r.err, strlen(r.err));
    int status = r.status;
    tu_result_free(&r);
    return status;
}

static char *slurp(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return tu_read_file(path);
}

/* The ids of a tokens CSV (pos,token_id,token; plain tokens); checks pos. */
static int read_tokens(const char *name, int *ids, int cap) {
    char *s = slurp(name);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strncmp(s, "pos,token_id,token\n", 19) == 0, "header: %.40s", s);
    int n = 0;
    for (char *line = strchr(s, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        int pos, id;
        ck_assert_int_eq(sscanf(line, "%d,%d,", &pos, &id), 2);
        ck_assert_int_eq(pos, n);
        ck_assert_int_lt(n, cap);
        ids[n++] = id;
    }
    free(s);
    return n;
}

/* ---- the library side: logits and maps of whole sequences ---- */

typedef struct grab {
    float *logits; /* [V] last row */
    int V;
    /* weights of the whole sequence: [(stack*2+kind) * 8 + layer][head] -> [rows, cols] */
    float *maps[4 * 8][8];
    int rows[4 * 8][8], cols[4 * 8][8];
    bool want_maps;
} grab;

static bool grab_wants(void *user, const attn_capture_key *key) {
    const grab *g = user;
    return (key->value == ATTN_V_LOGITS && !key->source) ||
           (g->want_maps && key->value == ATTN_V_WEIGHTS);
}

static attn_status grab_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err) {
    (void)err;
    grab *g = user;
    if (key->value == ATTN_V_LOGITS) {
        ck_assert_int_eq(v->cols, g->V);
        memcpy(g->logits, v->data + (size_t)(v->rows - 1) * v->cols, sizeof(float) * g->V);
        return ATTN_OK;
    }
    ck_assert_int_lt(key->layer, 8);
    ck_assert_int_lt(key->head, 8);
    int slot = ((int)key->stack * 2 + (int)key->kind) * 8 + key->layer;
    size_t n = (size_t)v->rows * v->cols;
    float *d = malloc(n * sizeof *d);
    memcpy(d, v->data, n * sizeof *d);
    free(g->maps[slot][key->head]);
    g->maps[slot][key->head] = d;
    g->rows[slot][key->head] = v->rows;
    g->cols[slot][key->head] = v->cols;
    return ATTN_OK;
}

/* Argmax written here: the first index of the largest value. */
static int naive_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Runs ids[0..n-1] from an empty session (after encoding src). */
static void full_run(attn_session *s, grab *g, const int *src, size_t sn, const int *ids,
                     size_t n) {
    attn_error err = {0};
    attn_capture cap = {grab_wants, grab_emit, g};
    attn_session_reset(s);
    if (src) {
        attn_input in = {.ids = src, .n = sn};
        ck_assert_msg(attn_session_encode(s, &in, &cap, &err) == ATTN_OK, "%s", err.message);
    }
    attn_input in = {.ids = ids, .n = n};
    ck_assert_msg(attn_session_forward(s, &in, &cap, &err) == ATTN_OK, "%s", err.message);
}

/* Generates with the binary, then checks every token and every map entry. */
static void check_generation(const mspec *m, const char *name, const int *prompt, int pn,
                             const int *src, int sn, int steps) {
    char *cfg = write_model(m, name);
    char ids_arg[256] = "", src_arg[256] = "", steps_arg[16], maps[512], tokens[512];
    for (int i = 0; i < pn; i++)
        snprintf(ids_arg + strlen(ids_arg), sizeof ids_arg - strlen(ids_arg), "%s%d",
                 i ? "," : "", prompt[i]);
    for (int i = 0; i < sn; i++)
        snprintf(src_arg + strlen(src_arg), sizeof src_arg - strlen(src_arg), "%s%d",
                 i ? "," : "", src[i]);
    snprintf(steps_arg, sizeof steps_arg, "%d", steps);
    snprintf(maps, sizeof maps, "%s/maps.csv", tmpdir);
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", tmpdir);
    const char *args[] = {"generate", "--config", cfg, "--ids", ids_arg, "--steps", steps_arg,
                          "--maps", maps, "--tokens", tokens,
                          sn ? "--source-ids" : NULL, src_arg, NULL};
    int rc = run_attn(args);
    char *errs = slurp("stderr");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, errs);
    free(errs);

    int seq[64];
    int n = read_tokens("tokens.csv", seq, 64);
    int want_n = pn + steps <= m->T ? pn + steps : m->T;
    ck_assert_int_eq(n, want_n);
    for (int i = 0; i < pn; i++) ck_assert_int_eq(seq[i], prompt[i]);

    attn_error err = {0};
    attn_model *model;
    ck_assert_msg(attn_model_open(&model, cfg, &err) == ATTN_OK, "%s", err.message);
    attn_session *s;
    ck_assert_int_eq(attn_session_new(&s, model, &err), ATTN_OK);
    grab g = {.V = m->V};
    g.logits = malloc(sizeof(float) * m->V);

    /* every generated token = argmax of a cache-free run of its prefix */
    int distinct = 0;
    for (int p = pn; p < n; p++) {
        full_run(s, &g, sn ? src : NULL, (size_t)sn, seq, (size_t)p);
        int want = naive_argmax(g.logits, m->V);
        ck_assert_msg(seq[p] == want, "position %d: generated %d, argmax of the prefix %d", p,
                      seq[p], want);
        if (p > pn && seq[p] != seq[p - 1]) distinct++;
    }
    printf("%s: %d tokens, %d changes of token\n", name, n - pn, distinct);
    ck_assert_msg(distinct >= 2, "%s: the generated tokens barely change; pick another seed", name);

    /* stdout: the generated tokens' text, streamed, then a newline */
    char *out = slurp("stdout");
    char want_text[2048] = "";
    const attn_tokenizer *tok = attn_model_tokenizer(model);
    for (int p = pn; p < n; p++) {
        size_t len = strlen(want_text);
        attn_tokenizer_decode(tok, seq[p - 1], seq[p], want_text + len, sizeof want_text - len);
    }
    if (n > pn) strcat(want_text, "\n");
    ck_assert_str_eq(out, want_text);
    free(out);

    /* the maps: every entry of one whole-sequence run, and nothing else */
    g.want_maps = true;
    full_run(s, &g, sn ? src : NULL, (size_t)sn, seq, (size_t)n);
    char *csv = slurp("maps.csv");
    ck_assert_ptr_nonnull(csv);
    const char *hdr = "input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n";
    ck_assert_msg(strncmp(csv, hdr, strlen(hdr)) == 0, "maps header");
    size_t rows = 0, expect = 0;
    double maxdiff = 0;
    for (char *line = csv + strlen(hdr); *line; line = strchr(line, '\n') + 1) {
        char stack[16], kind[16], qtok[32], ktok[32];
        int input, layer, head, q, k;
        double w;
        ck_assert_int_eq(sscanf(line, "%d,%15[^,],%d,%15[^,],%d,%d,%31[^,],%d,%31[^,],%lf", &input,
                                stack, &layer, kind, &head, &q, qtok, &k, ktok, &w),
                         10);
        int st = strcmp(stack, "encoder") == 0, kd = strcmp(kind, "cross") == 0;
        int slot = (st * 2 + kd) * 8 + layer;
        const float *mp = g.maps[slot][head];
        ck_assert_ptr_nonnull(mp);
        ck_assert_int_lt(q, g.rows[slot][head]);
        ck_assert_int_lt(k, g.cols[slot][head]);
        double d = fabs(w - mp[(size_t)q * g.cols[slot][head] + k]);
        if (d > maxdiff) maxdiff = d;
        rows++;
    }
    /* decoder self: causal rows; cross: S per query; encoder: S x S */
    int L = m->L, H = m->H;
    expect = (size_t)L * H * (size_t)n * (n + 1) / 2;
    if (sn) expect += (size_t)L * H * n * sn + (size_t)m->LE * H * sn * sn;
    ck_assert_uint_eq(rows, expect);
    printf("%s: %zu map entries, max |streamed - whole run| = %.3g\n", name, rows, maxdiff);
    ck_assert_double_le(maxdiff, 1e-6);
    free(csv);
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 8; j++) free(g.maps[i][j]);
    free(g.logits);
    attn_session_free(s);
    attn_model_close(model);
    free(cfg);
}

START_TEST(test_greedy_decoder_rope) {
    int prompt[] = {2, 5, 9, 4};
    check_generation(&decoder_rope, "rope", prompt, 4, NULL, 0, 12);
}
END_TEST

START_TEST(test_greedy_decoder_learned) {
    int prompt[] = {2, 7};
    check_generation(&decoder_learned, "learned", prompt, 2, NULL, 0, 14);
}
END_TEST

START_TEST(test_greedy_encoder_decoder) {
    int prompt[] = {2};
    int src[] = {2, 8, 9, 10, 11, 0};
    check_generation(&encdec, "encdec", prompt, 1, src, 6, 10);
}
END_TEST

/* Past max_seq_len: stops there with one warning line, exit 0. */
START_TEST(test_max_seq_len) {
    int prompt[] = {2, 3, 4};
    check_generation(&decoder_rope, "full", prompt, 3, NULL, 0, 40); /* T = 20 */
    char *errs = slurp("stderr");
    ck_assert_str_eq(errs, "attn: stopped at max_seq_len 20\n");
    free(errs);
}
END_TEST

/* All logits 0 (final norm weight 0): ties go to the lowest id, 0; with
 * eos "</s>" = id 0 generation stops at once, silently. */
START_TEST(test_ties_and_eos) {
    mspec m = decoder_rope;
    m.zero_final_norm = true;
    char *cfg = write_model(&m, "ties");
    char tokens[512];
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", tmpdir);
    const char *args[] = {"generate", "--config", cfg, "--ids", "2,5", "--steps", "4",
                          "--tokens", tokens, NULL};
    ck_assert_int_eq(run_attn(args), 0);
    int seq[16];
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 16), 6);
    for (int i = 2; i < 6; i++) ck_assert_int_eq(seq[i], 0);
    free(cfg);

    m.eos = true;
    cfg = write_model(&m, "eos");
    args[2] = cfg;
    ck_assert_int_eq(run_attn(args), 0);
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 16), 2);
    char *out = slurp("stdout"), *errs = slurp("stderr");
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(errs, "");
    free(out), free(errs);
    /* a text prompt: BOS added, the EOS the tokenizer appends dropped */
    const char *args2[] = {"generate", "--config", cfg, "--text", "w5 w6", "--steps", "0",
                           "--tokens", tokens, NULL};
    ck_assert_int_eq(run_attn(args2), 0);
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 16), 3);
    ck_assert_int_eq(seq[0], 2);
    ck_assert_int_eq(seq[1], 5);
    ck_assert_int_eq(seq[2], 6);
    free(cfg);
}
END_TEST

/* Usage errors: exit 2, one line naming the flag or the reason. */
START_TEST(test_generate_usage) {
    char *cfg = write_model(&decoder_rope, "u");
    struct { const char *args[12]; const char *needle; } cases[] = {
        {{"generate", "--config", cfg, "--ids", "1", NULL}, "--steps"},
        {{"generate", "--config", cfg, "--steps", "2", NULL}, "--text or --ids"},
        {{"generate", "--config", cfg, "--ids", "1", "--steps", "x", NULL}, "--steps"},
        {{"generate", "--config", cfg, "--ids", "1", "--text", "a", "--steps", "1", NULL},
         "exclude"},
        {{"generate", "--config", cfg, "--ids", "99", "--steps", "1", NULL}, "99"},
        {{"generate", "--config", cfg, "--ids", "1", "--steps", "1", "--source-ids", "1", NULL},
         "--source-ids"},
        {{"generate", "--config", cfg, "--ids", "1", "--steps", "1", "--bogus", NULL}, "--bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_attn(cases[i].args);
        char *errs = slurp("stderr");
        ck_assert_msg(rc == 2, "case %zu: exit %d (%s)", i, rc, errs);
        ck_assert_msg(strstr(errs, cases[i].needle) != NULL, "case %zu: '%s'", i, errs);
        ck_assert_msg(strchr(errs, '\n') == errs + strlen(errs) - 1, "case %zu: one line", i);
        free(errs);
    }
    /* an encoder-only model, and a model without lm_head */
    mspec e = decoder_rope;
    e.arch = "encoder";
    e.lm_head = "none";
    char *ecfg = write_model(&e, "enc");
    const char *a1[] = {"generate", "--config", ecfg, "--ids", "1", "--steps", "1", NULL};
    ck_assert_int_eq(run_attn(a1), 2);
    char *errs = slurp("stderr");
    ck_assert_msg(strstr(errs, "encoder") != NULL, "%s", errs);
    free(errs);
    mspec nh = decoder_rope;
    nh.lm_head = "none";
    char *ncfg = write_model(&nh, "nohead");
    const char *a2[] = {"generate", "--config", ncfg, "--ids", "1", "--steps", "1", NULL};
    ck_assert_int_eq(run_attn(a2), 2);
    errs = slurp("stderr");
    ck_assert_msg(strstr(errs, "lm_head") != NULL, "%s", errs);
    free(errs);
    const char *a3[] = {"run", "--config", ncfg, "--ids", "1", "--top-k", "2", NULL};
    ck_assert_int_eq(run_attn(a3), 2);
    errs = slurp("stderr");
    ck_assert_msg(strstr(errs, "--top-k") != NULL && strstr(errs, "lm_head") != NULL, "%s", errs);
    free(errs);
    free(cfg), free(ecfg), free(ncfg);
}
END_TEST

/* ---- top-k ---- */

typedef struct ent { int id; float logit; } ent;
static int cmp_ent(const void *a, const void *b) {
    const ent *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* attn_topk against a full sort and a long-double softmax, on rows with many ties. */
START_TEST(test_topk_library) {
    rng.s = 77;
    const int V = 300;
    float *row = malloc(sizeof(float) * V);
    ent *sorted = malloc(sizeof(ent) * V);
    attn_prediction *top = malloc(sizeof(attn_prediction) * V);
    for (int trial = 0; trial < 20; trial++) {
        /* few distinct values: many ties */
        int levels = 1 + trial * 3;
        for (int i = 0; i < V; i++)
            row[i] = (float)((int)(unif() * levels)) * 0.75f - 4.0f + (trial == 19 ? 30.0f : 0);
        for (int i = 0; i < V; i++) sorted[i] = (ent){i, row[i]};
        qsort(sorted, V, sizeof *sorted, cmp_ent);
        long double mx = row[0], sum = 0;
        for (int i = 1; i < V; i++)
            if (row[i] > mx) mx = row[i];
        for (int i = 0; i < V; i++) sum += expl((long double)row[i] - mx);
        int ks[] = {1, 2, 5, 17, V};
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            int k = ks[j];
            attn_error err = {0};
            ck_assert_int_eq(attn_topk(top, k, row, V, &err), ATTN_OK);
            double total = 0;
            for (int r = 0; r < k; r++) {
                ck_assert_int_eq(top[r].id, sorted[r].id);
                ck_assert(top[r].logit == sorted[r].logit);
                double want = (double)(expl((long double)row[top[r].id] - mx) / sum);
                ck_assert_double_eq_tol(top[r].prob, want, 1e-14);
                total += top[r].prob;
            }
            if (k == V) {
                printf("levels %d: sum of all probabilities - 1 = %.3g\n", levels, total - 1);
                ck_assert_double_eq_tol(total, 1.0, 1e-6);
            }
        }
        ck_assert_int_eq(attn_argmax(row, V), sorted[0].id);
    }
    attn_error err = {0};
    ck_assert_int_eq(attn_topk(top, 0, row, V, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(attn_topk(top, V + 1, row, V, &err), ATTN_ERR_USAGE);
    /* a NaN never wins */
    row[0] = NAN;
    row[1] = -1e30f;
    ck_assert_int_ne(attn_argmax(row, V), 0);
    free(row), free(sorted), free(top);
}
END_TEST

/* attn run --top-k: CSV rows against the library's logits sorted here. */
START_TEST(test_topk_cli) {
    char *cfg = write_model(&decoder_learned, "tk");
    const int V = decoder_learned.V, K = 4;
    const char *args[] = {"run", "--config", cfg, "--ids", "2,5,6,7,8", "--top-k", "4",
                          "--predictions", "-", NULL};
    int rc = run_attn(args);
    char *errs = slurp("stderr");
    ck_assert_msg(rc == 0, "%s", errs);
    free(errs);
    char *out = slurp("stdout");
    const char *hdr = "input,pos,rank,token_id,token,logit,prob\n";
    ck_assert_msg(strncmp(out, hdr, strlen(hdr)) == 0, "%.60s", out);

    attn_error err = {0};
    attn_model *model;
    ck_assert_int_eq(attn_model_open(&model, cfg, &err), ATTN_OK);
    attn_session *s;
    ck_assert_int_eq(attn_session_new(&s, model, &err), ATTN_OK);
    grab g = {.V = V};
    g.logits = malloc(sizeof(float) * V);
    ent *sorted = malloc(sizeof(ent) * V);
    int ids[] = {2, 5, 6, 7, 8};
    const char *line = out + strlen(hdr);
    for (int pos = 0; pos < 5; pos++) {
        full_run(s, &g, NULL, 0, ids, (size_t)pos + 1);
        for (int i = 0; i < V; i++) sorted[i] = (ent){i, g.logits[i]};
        qsort(sorted, V, sizeof *sorted, cmp_ent);
        double mx = sorted[0].logit, sum = 0;
        for (int i = 0; i < V; i++) sum += exp((double)g.logits[i] - mx);
        for (int r = 0; r < K; r++) {
            int input, p, rank, id;
            char tokbuf[32];
            double logit, prob;
            ck_assert_int_eq(sscanf(line, "%d,%d,%d,%d,%31[^,],%lf,%lf", &input, &p, &rank, &id,
                                    tokbuf, &logit, &prob),
                             7);
            ck_assert_int_eq(input, 0);
            ck_assert_int_eq(p, pos);
            ck_assert_int_eq(rank, r + 1);
            ck_assert_int_eq(id, sorted[r].id);
            ck_assert_str_eq(tokbuf, attn_tokenizer_piece(attn_model_tokenizer(model), id));
            ck_assert((float)logit == sorted[r].logit);
            ck_assert_double_eq_tol(prob, exp((double)sorted[r].logit - mx) / sum, 1e-8);
            line = strchr(line, '\n') + 1;
        }
    }
    ck_assert_str_eq(line, "");
    free(out);

    /* --last: only position 4 */
    const char *args2[] = {"run", "--config", cfg, "--ids", "2,5,6,7,8", "--top-k", "2",
                           "--last", "--predictions", "-", NULL};
    ck_assert_int_eq(run_attn(args2), 0);
    out = slurp("stdout");
    int lines = 0;
    for (const char *c = out; *c; c++) lines += *c == '\n';
    ck_assert_int_eq(lines, 3);
    ck_assert_ptr_nonnull(strstr(out, "\n0,4,1,"));
    ck_assert_ptr_nonnull(strstr(out, "\n0,4,2,"));
    free(out);

    /* K out of range, --last without --top-k */
    const char *bad1[] = {"run", "--config", cfg, "--ids", "2", "--top-k", "24", NULL};
    ck_assert_int_eq(run_attn(bad1), 2);
    const char *bad2[] = {"run", "--config", cfg, "--ids", "2", "--top-k", "0", NULL};
    ck_assert_int_eq(run_attn(bad2), 2);
    const char *bad3[] = {"run", "--config", cfg, "--ids", "2", "--last", NULL};
    ck_assert_int_eq(run_attn(bad3), 2);
    /* K = V is allowed; the readable listing goes to stdout */
    const char *ok[] = {"run", "--config", cfg, "--ids", "2", "--top-k", "23", "--context",
                        "-", NULL};
    ck_assert_int_eq(run_attn(ok), 0);
    out = slurp("stdout");
    ck_assert_ptr_nonnull(strstr(out, "next-token predictions for input 0 (top 23 of 23)"));
    free(out);

    free(sorted), free(g.logits);
    attn_session_free(s);
    attn_model_close(model);
    free(cfg);
}
END_TEST

/* ---- the bundled models ---- */

#define MODELS ATTN_SOURCE_ROOT "/models"
#define PARALLEL ATTN_SOURCE_ROOT "/data/parallel.tsv"
#define CORPUS ATTN_SOURCE_ROOT "/data/corpus.txt"

/* The target of `source` in data/parallel.tsv (split, source, target,
 * alignment), malloc'd; fails the test when the file has no such pair. */
static char *parallel_target(const char *source) {
    char *tsv = tu_read_file(PARALLEL);
    ck_assert_ptr_nonnull(tsv);
    char *found = NULL;
    for (char *line = tsv; line && *line && !found; line = strchr(line, '\n'), line += !!line) {
        char *src = strchr(line, '\t');
        if (!src) break;
        src++;
        char *tgt = strchr(src, '\t');
        if (tgt && (size_t)(tgt - src) == strlen(source) && strncmp(src, source, strlen(source)) == 0) {
            tgt++;
            found = strndup(tgt, strcspn(tgt, "\t\n"));
        }
    }
    free(tsv);
    ck_assert_msg(found, "data/parallel.tsv has no pair for \"%s\"", source);
    return found;
}

/* The token texts of a tokens CSV (pos,token_id,token; plain tokens),
 * joined by spaces into out; returns how many rows it has. */
static int tokens_text(const char *name, char *out, size_t cap, int *first_id) {
    char *csv = slurp(name);
    ck_assert_ptr_nonnull(csv);
    ck_assert_msg(strncmp(csv, "pos,token_id,token\n", 19) == 0, "header: %.40s", csv);
    out[0] = '\0';
    int n = 0;
    for (char *line = csv + 19; *line; n++) {
        char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        *end = '\0';
        int pos, id, used = 0;
        ck_assert_int_eq(sscanf(line, "%d,%d,%n", &pos, &id, &used), 2);
        ck_assert_int_eq(pos, n);
        if (n == 0 && first_id) *first_id = id;
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", n ? " " : "", line + used);
        line = end + 1;
    }
    free(csv);
    return n;
}

/* For each bundled model whose tokenizer has an end-of-sequence token, an
 * input on which it generates that token: generation must stop there, long
 * before --steps, and print and list the text before it only. A model with
 * an end token but no entry here fails the test (add its input). The
 * translator starts from its start token alone (no --text): its output must
 * be data/parallel.tsv's translation. */
START_TEST(test_bundled_models_stop_at_eos) {
    static const struct {
        const char *model, *source; /* source: the encoder input (encoder-decoders) */
    } inputs[] = {
        {"tiny-translator", "the cat sits on the mat ."},
    };
    DIR *d = opendir(MODELS);
    ck_assert_ptr_nonnull(d);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char cfg[512];
        snprintf(cfg, sizeof cfg, "%s/%s/config.json", MODELS, e->d_name);
        if (access(cfg, R_OK) != 0) continue;
        attn_error err = {0};
        attn_model *model;
        ck_assert_msg(attn_model_open(&model, cfg, &err) == ATTN_OK, "%s", err.message);
        const attn_tokenizer *tok = attn_model_tokenizer(model);
        const int eos = tok ? attn_tokenizer_eos(tok) : -1;
        if (eos < 0) {
            printf("%s: no end-of-sequence token\n", e->d_name);
            attn_model_close(model);
            continue;
        }
        size_t k = 0;
        while (k < sizeof inputs / sizeof inputs[0] && strcmp(inputs[k].model, e->d_name) != 0) k++;
        ck_assert_msg(k < sizeof inputs / sizeof inputs[0],
                      "models/%s has an end token: give it an input in this test", e->d_name);
        ck_assert_msg(inputs[k].source, "models/%s: only encoder-decoders are handled", e->d_name);
        const attn_config *c = attn_model_config(model);
        ck_assert_int_eq(c->arch, ATTN_ARCH_ENCODER_DECODER);
        const char *eos_text = attn_tokenizer_piece(tok, eos);
        const int steps = c->max_seq_len - 1; /* as many as fit after the start token */
        char steps_arg[16], tokens[512];
        snprintf(steps_arg, sizeof steps_arg, "%d", steps);
        snprintf(tokens, sizeof tokens, "%s/tokens.csv", tmpdir);
        const char *args[] = {"generate", "--config", cfg, "--source", inputs[k].source,
                              "--steps", steps_arg, "--tokens", tokens, NULL};
        int rc = run_attn(args);
        char *out = slurp("stdout"), *errs = slurp("stderr");
        ck_assert_msg(rc == 0, "%s: exit %d: %s", e->d_name, rc, errs);
        ck_assert_str_eq(errs, ""); /* no "stopped at max_seq_len" */
        /* what data/parallel.tsv translates it to, from the start token, then the end */
        char *want = parallel_target(inputs[k].source);
        char listed[1024];
        int first = -1;
        int n = tokens_text("tokens.csv", listed, sizeof listed, &first);
        printf("%s: --source \"%s\" --steps %d: %d positions, printed \"%.*s\"\n", e->d_name,
               inputs[k].source, steps, n, (int)strcspn(out, "\n"), out);
        ck_assert_int_eq(first, attn_tokenizer_bos(tok));
        char want_listed[1024];
        snprintf(want_listed, sizeof want_listed, "%s %s", attn_tokenizer_piece(tok, first), want);
        ck_assert_str_eq(listed, want_listed);
        char want_out[1024];
        snprintf(want_out, sizeof want_out, "%s\n", want);
        ck_assert_str_eq(out, want_out);
        ck_assert_int_lt(n - 1, steps);
        ck_assert_msg(!strstr(out, eos_text) && !strstr(listed, eos_text), "%s printed", eos_text);
        /* and it stopped because the next token is the end: the argmax of a
         * cache-free run of the whole sequence (the library, not the binary) */
        int seq[64];
        int sn = read_tokens("tokens.csv", seq, 64);
        int *src = NULL;
        size_t src_n = 0;
        ck_assert_int_eq(attn_tokenizer_encode(tok, inputs[k].source, strlen(inputs[k].source),
                                               &src, &src_n, &err),
                         ATTN_OK);
        attn_session *s;
        ck_assert_int_eq(attn_session_new(&s, model, &err), ATTN_OK);
        grab g = {.V = c->vocab_size};
        g.logits = malloc(sizeof(float) * (size_t)g.V);
        full_run(s, &g, src, src_n, seq, (size_t)sn);
        ck_assert_int_eq(naive_argmax(g.logits, g.V), eos);
        free(g.logits);
        attn_session_free(s);
        free(src), free(want), free(out), free(errs);
        attn_model_close(model);
        checked++;
    }
    closedir(d);
    ck_assert_int_ge(checked, 1);
}
END_TEST

/* An encoder-decoder starts from bos without --text / --ids; without a bos
 * (or a tokenizer) it needs them; a decoder always does. */
START_TEST(test_encdec_prompt_default) {
    mspec m = encdec;
    char *cfg = write_model(&m, "start");
    char tokens[512];
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", tmpdir);
    const char *args[] = {"generate", "--config", cfg, "--source-ids", "2,8,9", "--steps", "3",
                          "--tokens", tokens, NULL};
    int rc = run_attn(args);
    char *errs = slurp("stderr");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, errs);
    free(errs);
    int seq[16];
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 16), 4);
    ck_assert_int_eq(seq[0], 2); /* "<s>": line 3 of vocab.txt */
    /* the same as --ids 2 */
    const char *args2[] = {"generate", "--config", cfg, "--source-ids", "2,8,9", "--ids", "2",
                           "--steps", "3", "--tokens", tokens, NULL};
    ck_assert_int_eq(run_attn(args2), 0);
    int seq2[16];
    ck_assert_int_eq(read_tokens("tokens.csv", seq2, 16), 4);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(seq2[i], seq[i]);
    free(cfg);
    m.no_bos = true;
    cfg = write_model(&m, "nobos");
    args[2] = cfg;
    ck_assert_int_eq(run_attn(args), 2);
    errs = slurp("stderr");
    ck_assert_msg(strstr(errs, "bos") && strstr(errs, "--text or --ids") &&
                      strchr(errs, '\n') == errs + strlen(errs) - 1,
                  "%s", errs);
    free(errs);
    free(cfg);
}
END_TEST

/* The words data/corpus.txt has after `prefix` (a sentence's start, with a
 * trailing space), as " w1 w2 ... " with each word once. */
static void corpus_next_words(const char *prefix, char *out, size_t cap) {
    char *txt = tu_read_file(CORPUS);
    ck_assert_ptr_nonnull(txt);
    snprintf(out, cap, " ");
    for (char *line = txt; *line;) {
        char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        char *sent = memchr(line, '\t', (size_t)(end - line));
        sent = sent ? sent + 1 : line;
        size_t pl = strlen(prefix);
        if ((size_t)(end - sent) > pl && strncmp(sent, prefix, pl) == 0) {
            char word[64];
            size_t wl = strcspn(sent + pl, " \n");
            snprintf(word, sizeof word, " %.*s ", (int)wl, sent + pl);
            if (!strstr(out, word)) snprintf(out + strlen(out), cap - strlen(out), "%s", word + 1);
        }
        line = *end ? end + 1 : end;
    }
    free(txt);
}

/* models/tiny-encoder fills "<mask>" written in --text: one token at its
 * position, predicted as the word data/corpus.txt always has there; the
 * readable listing says "at", not "after" (an encoder predicts the token at
 * a position). --no-special splits it again. */
START_TEST(test_encoder_mask_from_text) {
    const char *cfg = MODELS "/tiny-encoder/config.json";
    char allowed[256];
    corpus_next_words("the sun rises in the ", allowed, sizeof allowed);
    printf("data/corpus.txt after \"the sun rises in the\":%s\n", allowed);
    ck_assert_str_eq(allowed, " east ");
    const char *args[] = {"run", "--config", cfg, "--text", "the sun rises in the <mask> .",
                          "--top-k", "3", "--predictions", "-", NULL};
    int rc = run_attn(args);
    char *out = slurp("stdout");
    ck_assert_msg(rc == 0, "exit %d", rc);
    /* 7 positions x 3 ranks; at position 5 rank 1 is "east" */
    int rows = 0;
    char best5[64] = "";
    for (char *line = strchr(out, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        int input, pos, rank, id;
        char token[64];
        ck_assert_int_eq(sscanf(line, "%d,%d,%d,%d,%63[^,]", &input, &pos, &rank, &id, token), 5);
        if (pos == 5 && rank == 1) snprintf(best5, sizeof best5, "%s", token);
        rows++;
    }
    ck_assert_int_eq(rows, 7 * 3);
    ck_assert_str_eq(best5, "east");
    free(out);
    /* the readable listing: predictions at each position */
    const char *view[] = {"run", "--config", cfg, "--text", "the sun rises in the <mask> .",
                          "--top-k", "3", "--context", "-", NULL};
    ck_assert_int_eq(run_attn(view), 0);
    out = slurp("stdout");
    const char *listing = strstr(out, "\ntoken predictions for input 0 (top 3 of 193; an encoder "
                                      "predicts the token at each position)\n  at 0 \"the\":\n");
    ck_assert_msg(listing, "%s", out);
    ck_assert_msg(strstr(listing, "\n  at 5 \"<mask>\":\n      1  \"east\""), "%s", listing);
    ck_assert_ptr_null(strstr(listing, "after"));
    ck_assert_ptr_null(strstr(out, "next-token"));
    free(out);
    /* --no-special: '<' "mask" '>' are three tokens ("mask" is no word of the vocabulary) */
    const char *plain[] = {"run", "--config", cfg, "--text", "the sun rises in the <mask> .",
                           "--top-k", "1", "--predictions", "-", "--no-special", NULL};
    ck_assert_int_eq(run_attn(plain), 0);
    out = slurp("stdout");
    rows = 0;
    for (char *c = out; *c; c++) rows += *c == '\n';
    ck_assert_int_eq(rows, 1 + 9);
    free(out);
    /* batch lines too */
    tu_result r = tu_run(attn_exe, tmpdir, "the <mask>\nthe<mask>\n", NULL,
                         (const char *const[]){"run", "--config", cfg, "--context", "-", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\n0,1,<mask>,"));
    ck_assert_ptr_nonnull(strstr(r.out, "\n1,1,<mask>,"));
    ck_assert_ptr_null(strstr(r.out, "\n0,2,"));
    tu_result_free(&r);
    /* explain's token list */
    const char *ex[] = {"explain", "--config", cfg, "--text", "the<mask>", NULL};
    ck_assert_int_eq(run_attn(ex), 0);
    out = slurp("stdout");
    ck_assert_msg(strstr(out, "<mask>") && !strstr(out, "<unk>"), "%s", out);
    free(out);
    const char *ex2[] = {"explain", "--config", cfg, "--text", "the<mask>", "--no-special", NULL};
    ck_assert_int_eq(run_attn(ex2), 0);
    out = slurp("stdout");
    ck_assert_msg(strstr(out, "<unk>") && !strstr(out, "<mask>"), "%s", out);
    free(out);
}
END_TEST

/* tiny-encoder's config with `tokenizer_extra` added to its tokenizer, in
 * tmpdir (the vocabulary and weights by absolute path); returns its path. */
static char *encoder_config(const char *name, const char *tokenizer_extra) {
    char *cfg = malloc(512);
    snprintf(cfg, 512, "%s/%s.json", tmpdir, name);
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"format\": \"attn/1\", \"architecture\": \"encoder\", \"d_model\": 64, "
            "\"n_heads\": 4, \"d_ff\": 256, \"n_layers\": 2, \"max_seq_len\": 32, "
            "\"positional\": \"sinusoidal\", \"norm\": \"layernorm\", \"norm_eps\": 1e-05, "
            "\"norm_position\": \"post\", \"final_norm\": false, \"mlp\": \"gelu\", "
            "\"bias\": true, \"lm_head\": \"tied\", \"vocab_size\": 193, "
            "\"weights\": \"%s/tiny-encoder/model.safetensors\", "
            "\"tokenizer\": {\"type\": \"word\", \"vocab\": \"%s/tiny-encoder/vocab.txt\", "
            "\"lowercase\": true, \"unk\": \"<unk>\"%s}}\n",
            MODELS, MODELS, tokenizer_extra);
    ck_assert_int_eq(fclose(f), 0);
    return cfg;
}

/* How many positions `attn run --context -` of text has on cfg. */
static int context_rows(const char *cfg, const char *text) {
    const char *args[] = {"run", "--config", cfg, "--text", text, "--context", "-", NULL};
    int rc = run_attn(args);
    char *errs = slurp("stderr");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, errs);
    free(errs);
    char *out = slurp("stdout");
    int rows = -1; /* the header */
    for (char *c = out; *c; c++) rows += *c == '\n';
    free(out);
    return rows;
}

/* The config keys "special" and "special_tokens" through the binary. */
START_TEST(test_special_config) {
    /* the same model as bundled: <mask> whole */
    char *cfg = encoder_config("plain", "");
    ck_assert_int_eq(context_rows(cfg, "the <mask> ."), 3);
    ck_assert_int_eq(context_rows(cfg, "the riverbank ."), 3); /* "riverbank": one <unk> */
    free(cfg);
    /* "bank" listed: matched inside "riverbank" */
    cfg = encoder_config("listed", ", \"special\": [\"bank\"]");
    ck_assert_int_eq(context_rows(cfg, "the riverbank ."), 4);
    ck_assert_int_eq(context_rows(cfg, "the <mask> ."), 3);
    free(cfg);
    /* switched off */
    cfg = encoder_config("off", ", \"special_tokens\": false");
    ck_assert_int_eq(context_rows(cfg, "the <mask> ."), 5);
    free(cfg);
    /* a listed token outside the vocabulary: refused, exit 1, one line naming it */
    cfg = encoder_config("bad", ", \"special\": [\"<mask>\", \"[CLS]\"]");
    const char *args[] = {"run", "--config", cfg, "--text", "the", NULL};
    ck_assert_int_eq(run_attn(args), 1);
    char *errs = slurp("stderr");
    ck_assert_msg(strncmp(errs, "attn: ", 6) == 0 && strstr(errs, "vocab.txt") &&
                      strstr(errs, "\"[CLS]\"") && strstr(errs, "not in the vocabulary") &&
                      strchr(errs, '\n') == errs + strlen(errs) - 1,
                  "%s", errs);
    free(errs);
    free(cfg);
    /* a bad value: the key named */
    cfg = encoder_config("badtype", ", \"special\": \"<mask>\"");
    args[2] = cfg;
    ck_assert_int_eq(run_attn(args), 1);
    errs = slurp("stderr");
    ck_assert_msg(strstr(errs, "\"tokenizer.special\"") && strstr(errs, "array"), "%s", errs);
    free(errs);
    free(cfg);
}
END_TEST

/* A decoder's readable listing says "after" (the next token). */
START_TEST(test_decoder_predictions_after) {
    const char *args[] = {"run", "--config", MODELS "/tiny-decoder/config.json", "--text",
                          "the cat sits", "--top-k", "2", "--context", "-", NULL};
    ck_assert_int_eq(run_attn(args), 0);
    char *out = slurp("stdout");
    const char *listing = strstr(out, "\nnext-token predictions for input 0 (top 2 of 192)\n"
                                      "  after 0 \"the\":\n");
    ck_assert_msg(listing, "%s", out);
    ck_assert_ptr_nonnull(strstr(listing, "\n  after 2 \"sits\":\n"));
    ck_assert_ptr_null(strstr(listing, "  at "));
    free(out);
}
END_TEST

/* generate --no-special: the prompt's "<unk>" is one token, or three. */
START_TEST(test_generate_no_special) {
    const char *cfg = MODELS "/tiny-decoder/config.json";
    char tokens[512];
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", tmpdir);
    const char *args[] = {"generate", "--config", cfg, "--text", "the <unk>", "--steps", "0",
                          "--tokens", tokens, NULL, NULL};
    ck_assert_int_eq(run_attn(args), 0);
    int seq[8];
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 8), 2);
    ck_assert_int_eq(seq[1], 0); /* <unk>: line 1 of vocab.txt */
    args[9] = "--no-special";
    ck_assert_int_eq(run_attn(args), 0);
    ck_assert_int_eq(read_tokens("tokens.csv", seq, 8), 4); /* the < unk > */
}
END_TEST

static Suite *generate_suite(void) {
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("generate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_greedy_decoder_rope);
    tcase_add_test(tc, test_greedy_decoder_learned);
    tcase_add_test(tc, test_greedy_encoder_decoder);
    tcase_add_test(tc, test_max_seq_len);
    tcase_add_test(tc, test_ties_and_eos);
    tcase_add_test(tc, test_generate_usage);
    tcase_add_test(tc, test_topk_library);
    tcase_add_test(tc, test_topk_cli);
    tcase_add_test(tc, test_bundled_models_stop_at_eos);
    tcase_add_test(tc, test_encdec_prompt_default);
    tcase_add_test(tc, test_encoder_mask_from_text);
    tcase_add_test(tc, test_special_config);
    tcase_add_test(tc, test_decoder_predictions_after);
    tcase_add_test(tc, test_generate_no_special);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(generate_suite()); }
