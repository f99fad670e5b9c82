/* Tests of the config parser (the keys of docs/model-format.md): values and
 * defaults of valid configs, every refusal with the key it must name, path
 * resolution, malformed / truncated / unterminated buffers, and random valid
 * configs. */
#include "attn/attn.h"
#include "model/limits.h"
#include "support.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "cfg.json"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static int parse_text(attn_config *cfg, const char *json, attn_error *err) {
    return attn_config_parse(cfg, json, strlen(json), NAME, NULL, err);
}

static int parse_obj_in(attn_config *cfg, const cJSON *root, const char *base_dir,
                        attn_error *err) {
    char *s = cJSON_PrintUnformatted(root);
    ck_assert_ptr_nonnull(s);
    int rc = attn_config_parse(cfg, s, strlen(s), NAME, base_dir, err);
    cJSON_free(s);
    return rc;
}

static int parse_obj(attn_config *cfg, const cJSON *root, attn_error *err) {
    return parse_obj_in(cfg, root, NULL, err);
}

static void set_num(cJSON *o, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}
static void set_str(cJSON *o, const char *key, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddStringToObject(o, key, v);
}
static void set_bool(cJSON *o, const char *key, bool v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddBoolToObject(o, key, v);
}
static void del(cJSON *o, const char *key) { cJSON_DeleteItemFromObjectCaseSensitive(o, key); }

/* A minimal valid decoder: only the required keys. */
static cJSON *base_decoder(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "attn/1");
    cJSON_AddStringToObject(o, "architecture", "decoder");
    cJSON_AddNumberToObject(o, "vocab_size", 37);
    cJSON_AddNumberToObject(o, "d_model", 96);
    cJSON_AddNumberToObject(o, "n_heads", 6);
    cJSON_AddNumberToObject(o, "d_ff", 200);
    cJSON_AddNumberToObject(o, "max_seq_len", 33);
    cJSON_AddNumberToObject(o, "n_layers", 3);
    cJSON_AddStringToObject(o, "positional", "rope");
    cJSON_AddStringToObject(o, "norm", "rmsnorm");
    cJSON_AddStringToObject(o, "norm_position", "pre");
    cJSON_AddStringToObject(o, "mlp", "swiglu");
    cJSON_AddBoolToObject(o, "bias", false);
    cJSON_AddStringToObject(o, "lm_head", "tied");
    cJSON_AddStringToObject(o, "weights", "model.safetensors");
    return o;
}

static cJSON *word_tokenizer(void) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "word");
    cJSON_AddStringToObject(t, "vocab", "vocab.txt");
    cJSON_AddStringToObject(t, "unk", "<unk>");
    return t;
}

/* Asserts a refusal with ATTN_ERR_FORMAT whose message starts with the
 * buffer's name and contains every needle. */
static void check_refused_msg(int rc, const attn_error *err, const char *const *needles) {
    ck_assert_msg(rc == ATTN_ERR_FORMAT, "expected ATTN_ERR_FORMAT, got %d (%s)", rc,
                  rc ? err->message : "accepted");
    ck_assert_int_eq(err->status, ATTN_ERR_FORMAT);
    ck_assert_msg(strncmp(err->message, NAME ": ", strlen(NAME) + 2) == 0,
                  "message does not start with the name: %s", err->message);
    ck_assert_msg(!strchr(err->message, '\n'), "message is not one line: %s", err->message);
    for (; *needles; needles++)
        ck_assert_msg(strstr(err->message, *needles), "message lacks '%s': %s", *needles,
                      err->message);
}

#define REFUSED_OBJ(root, ...)                                                                 \
    do {                                                                                       \
        attn_config cfg_;                                                                      \
        attn_error err_ = {0};                                                                 \
        const char *const needles_[] = {__VA_ARGS__, NULL};                                    \
        check_refused_msg(parse_obj(&cfg_, (root), &err_), &err_, needles_);                   \
    } while (0)

#define REFUSED_TEXT(text, ...)                                                                \
    do {                                                                                       \
        attn_config cfg_;                                                                      \
        attn_error err_ = {0};                                                                 \
        const char *const needles_[] = {__VA_ARGS__, NULL};                                    \
        check_refused_msg(parse_text(&cfg_, (text), &err_), &err_, needles_);                  \
    } while (0)

#define ACCEPTED_OBJ(root, cfg)                                                                \
    do {                                                                                       \
        attn_error err_ = {0};                                                                 \
        int rc_ = parse_obj((cfg), (root), &err_);                                             \
        ck_assert_msg(rc_ == ATTN_OK, "refused: %s", err_.message);                            \
    } while (0)

/* Temporary folders (tests/support.h) */
static void make_tmpdir(char *out, size_t cap) { tu_tmpdir(out, cap, "attn-config-"); }

/* ------------------------------------------------------------------------ */
/* Valid configs                                                              */

START_TEST(decoder_all_keys) {
    /* every key given explicitly, values chosen to differ from every default */
    const char *json =
        "{\n"
        "  \"format\": \"attn/1\",\n"
        "  \"architecture\": \"decoder\",\n"
        "  \"vocab_size\": 512, \"d_model\": 48, \"n_heads\": 8, \"n_kv_heads\": 2,\n"
        "  \"head_dim\": 10, \"d_ff\": 130, \"max_seq_len\": 77, \"n_layers\": 5,\n"
        "  \"positional\": \"rope\", \"rope_theta\": 500000.5, \"embed_scale\": 0.25,\n"
        "  \"norm\": \"rmsnorm\", \"norm_eps\": 1e-6, \"norm_position\": \"pre\",\n"
        "  \"final_norm\": false, \"mlp\": \"swiglu\", \"bias\": true, \"lm_head\": \"separate\",\n"
        "  \"weights\": \"sub/w.safetensors\",\n"
        "  \"tokenizer\": {\"type\": \"word\", \"vocab\": \"v.txt\", \"lowercase\": true,\n"
        "                \"unk\": \"[UNK]\", \"bos\": \"<s>\", \"eos\": \"</s>\"}\n"
        "}\n";
    attn_config cfg;
    attn_error err = {0};
    int rc = parse_text(&cfg, json, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(cfg.arch, ATTN_ARCH_DECODER);
    ck_assert_int_eq(cfg.vocab_size, 512);
    ck_assert_int_eq(cfg.d_model, 48);
    ck_assert_int_eq(cfg.n_heads, 8);
    ck_assert_int_eq(cfg.n_kv_heads, 2);
    ck_assert_int_eq(cfg.head_dim, 10);
    ck_assert_int_eq(cfg.d_ff, 130);
    ck_assert_int_eq(cfg.max_seq_len, 77);
    ck_assert_int_eq(cfg.n_layers, 5);
    ck_assert_int_eq(cfg.n_encoder_layers, 0);
    ck_assert_int_eq(cfg.positional, ATTN_POS_ROPE);
    ck_assert(cfg.rope_theta == 500000.5);
    ck_assert(cfg.embed_scale == 0.25);
    ck_assert_int_eq(cfg.norm, ATTN_NORM_RMSNORM);
    ck_assert(cfg.norm_eps == 1e-6);
    ck_assert_int_eq(cfg.norm_position, ATTN_NORM_PRE);
    ck_assert(!cfg.final_norm);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_SWIGLU);
    ck_assert(cfg.bias);
    ck_assert_int_eq(cfg.lm_head, ATTN_LM_HEAD_SEPARATE);
    ck_assert_str_eq(cfg.weights, "sub/w.safetensors");
    ck_assert(cfg.has_tokenizer);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_WORD);
    ck_assert_str_eq(cfg.tokenizer.path, "v.txt");
    ck_assert(cfg.tokenizer.lowercase);
    ck_assert_str_eq(cfg.tokenizer.unk, "[UNK]");
    ck_assert(cfg.tokenizer.has_bos);
    ck_assert_str_eq(cfg.tokenizer.bos, "<s>");
    ck_assert(cfg.tokenizer.has_eos);
    ck_assert_str_eq(cfg.tokenizer.eos, "</s>");
}
END_TEST

START_TEST(decoder_defaults) {
    cJSON *root = base_decoder();
    attn_config cfg;
    memset(&cfg, 0xA5, sizeof cfg); /* the parser must fill everything */
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.arch, ATTN_ARCH_DECODER);
    ck_assert_int_eq(cfg.vocab_size, 37);
    ck_assert_int_eq(cfg.d_model, 96);
    ck_assert_int_eq(cfg.n_heads, 6);
    ck_assert_int_eq(cfg.d_ff, 200);
    ck_assert_int_eq(cfg.max_seq_len, 33);
    ck_assert_int_eq(cfg.n_layers, 3);
    ck_assert_int_eq(cfg.positional, ATTN_POS_ROPE);
    ck_assert_int_eq(cfg.norm, ATTN_NORM_RMSNORM);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_SWIGLU);
    ck_assert(!cfg.bias);
    ck_assert_int_eq(cfg.lm_head, ATTN_LM_HEAD_TIED);
    ck_assert_str_eq(cfg.weights, "model.safetensors");
    /* defaults */
    ck_assert_int_eq(cfg.n_kv_heads, 6);  /* = n_heads */
    ck_assert_int_eq(cfg.head_dim, 16);   /* = 96 / 6 */
    ck_assert(cfg.rope_theta == 10000.0);
    ck_assert(cfg.embed_scale == 1.0);
    ck_assert(cfg.norm_eps == 1e-5);
    ck_assert(cfg.final_norm);            /* pre-norm */
    ck_assert(!cfg.embed_norm);
    ck_assert_int_eq(cfg.n_encoder_layers, 0);
    ck_assert(!cfg.has_tokenizer);
    /* deterministic filling: the unused tokenizer part is zeroed */
    ck_assert_int_eq(cfg.tokenizer.path[0], 0);
    ck_assert(!cfg.tokenizer.has_bos && !cfg.tokenizer.has_eos && !cfg.tokenizer.lowercase);
    cJSON_Delete(root);
}
END_TEST

START_TEST(encoder_word_tokenizer) {
    cJSON *root = base_decoder();
    set_str(root, "architecture", "encoder");
    set_str(root, "positional", "sinusoidal");
    set_str(root, "norm", "layernorm");
    set_str(root, "norm_position", "post");
    set_str(root, "mlp", "gelu");
    set_str(root, "lm_head", "none");
    set_bool(root, "bias", true);
    set_num(root, "d_model", 30); /* head_dim 5: odd is fine without rope */
    cJSON *t = word_tokenizer();
    cJSON_AddNullToObject(t, "bos");
    cJSON_AddItemToObject(root, "tokenizer", t);
    attn_config cfg;
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.arch, ATTN_ARCH_ENCODER);
    ck_assert_int_eq(cfg.positional, ATTN_POS_SINUSOIDAL);
    ck_assert_int_eq(cfg.norm, ATTN_NORM_LAYERNORM);
    ck_assert_int_eq(cfg.norm_position, ATTN_NORM_POST);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_GELU);
    ck_assert_int_eq(cfg.lm_head, ATTN_LM_HEAD_NONE);
    ck_assert(cfg.bias);
    ck_assert_int_eq(cfg.head_dim, 5);
    ck_assert(!cfg.final_norm); /* default for post */
    ck_assert(cfg.rope_theta == 10000.0);
    ck_assert(cfg.has_tokenizer);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_WORD);
    ck_assert_str_eq(cfg.tokenizer.path, "vocab.txt");
    ck_assert_str_eq(cfg.tokenizer.unk, "<unk>");
    ck_assert(!cfg.tokenizer.lowercase); /* default */
    ck_assert(!cfg.tokenizer.has_bos);   /* null */
    ck_assert(!cfg.tokenizer.has_eos);   /* absent */
    ck_assert_int_eq(cfg.tokenizer.bos[0], 0);
    cJSON_Delete(root);
}
END_TEST

START_TEST(encoder_decoder_llama2c) {
    cJSON *root = base_decoder();
    set_str(root, "architecture", "encoder-decoder");
    set_num(root, "n_encoder_layers", 4);
    set_str(root, "positional", "learned");
    set_str(root, "mlp", "gelu_tanh");
    set_str(root, "norm_position", "post");
    set_bool(root, "final_norm", true);
    set_str(root, "lm_head", "separate");
    set_bool(root, "embed_norm", true);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "llama2c");
    cJSON_AddStringToObject(t, "path", "/abs/tokenizer.bin");
    cJSON_AddItemToObject(root, "tokenizer", t);
    attn_config cfg;
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.arch, ATTN_ARCH_ENCODER_DECODER);
    ck_assert_int_eq(cfg.n_encoder_layers, 4);
    ck_assert_int_eq(cfg.n_layers, 3);
    ck_assert_int_eq(cfg.positional, ATTN_POS_LEARNED);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_GELU_TANH);
    ck_assert(cfg.final_norm); /* explicit, overrides the post default */
    ck_assert(cfg.embed_norm);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_LLAMA2C);
    ck_assert_str_eq(cfg.tokenizer.path, "/abs/tokenizer.bin");
    cJSON_Delete(root);
}
END_TEST

START_TEST(mlp_none_without_d_ff) {
    cJSON *root = base_decoder();
    set_str(root, "mlp", "none");
    del(root, "d_ff");
    set_str(root, "positional", "none");
    set_str(root, "lm_head", "none");
    attn_config cfg;
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.mlp, ATTN_MLP_NONE);
    ck_assert_int_eq(cfg.d_ff, 0);
    ck_assert_int_eq(cfg.positional, ATTN_POS_NONE);
    /* d_ff may still be given with mlp none */
    set_num(root, "d_ff", 12);
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.d_ff, 12);
    /* and is required by every other mlp */
    set_str(root, "mlp", "relu");
    del(root, "d_ff");
    REFUSED_OBJ(root, "\"d_ff\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(integral_forms_and_bounds) {
    cJSON *root = base_decoder();
    attn_config cfg;
    /* integral values written with a fraction or an exponent are integers */
    attn_error err = {0};
    const char *json =
        "{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":1.0e2,"
        "\"d_model\":64.0,\"n_heads\":4,\"d_ff\":8,\"max_seq_len\":1048576,\"n_layers\":1,"
        "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
        "\"mlp\":\"relu\",\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w\"}";
    ck_assert_msg(parse_text(&cfg, json, &err) == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(cfg.vocab_size, 100);
    ck_assert_int_eq(cfg.d_model, 64);
    ck_assert_int_eq(cfg.max_seq_len, 1 << 20); /* the cap of max_seq_len itself is allowed */
    /* one above the cap is not */
    set_num(root, "n_layers", (1 << 24) + 1);
    REFUSED_OBJ(root, "\"n_layers\"", "16777217");
    cJSON_Delete(root);
}
END_TEST

START_TEST(enum_names) {
    ck_assert_str_eq(attn_arch_name(ATTN_ARCH_DECODER), "decoder");
    ck_assert_str_eq(attn_arch_name(ATTN_ARCH_ENCODER), "encoder");
    ck_assert_str_eq(attn_arch_name(ATTN_ARCH_ENCODER_DECODER), "encoder-decoder");
    ck_assert_str_eq(attn_positional_name(ATTN_POS_LEARNED), "learned");
    ck_assert_str_eq(attn_positional_name(ATTN_POS_SINUSOIDAL), "sinusoidal");
    ck_assert_str_eq(attn_positional_name(ATTN_POS_ROPE), "rope");
    ck_assert_str_eq(attn_positional_name(ATTN_POS_NONE), "none");
    ck_assert_str_eq(attn_norm_name(ATTN_NORM_LAYERNORM), "layernorm");
    ck_assert_str_eq(attn_norm_name(ATTN_NORM_RMSNORM), "rmsnorm");
    ck_assert_str_eq(attn_mlp_name(ATTN_MLP_RELU), "relu");
    ck_assert_str_eq(attn_mlp_name(ATTN_MLP_GELU), "gelu");
    ck_assert_str_eq(attn_mlp_name(ATTN_MLP_GELU_TANH), "gelu_tanh");
    ck_assert_str_eq(attn_mlp_name(ATTN_MLP_SWIGLU), "swiglu");
    ck_assert_str_eq(attn_mlp_name(ATTN_MLP_NONE), "none");
    ck_assert_str_eq(attn_lm_head_name(ATTN_LM_HEAD_NONE), "none");
    ck_assert_str_eq(attn_lm_head_name(ATTN_LM_HEAD_TIED), "tied");
    ck_assert_str_eq(attn_lm_head_name(ATTN_LM_HEAD_SEPARATE), "separate");
    /* out of range values do not crash */
    ck_assert_ptr_nonnull(attn_arch_name((attn_arch)99));
    ck_assert_ptr_nonnull(attn_mlp_name((attn_mlp_kind)-1));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Refusals                                                                   */

START_TEST(unknown_keys) {
    cJSON *root = base_decoder();
    cJSON_AddNumberToObject(root, "n_head", 4);
    REFUSED_OBJ(root, "unknown key \"n_head\"", "did you mean \"n_heads\"");
    del(root, "n_head");

    cJSON_AddNumberToObject(root, "rope_thetta", 4);
    REFUSED_OBJ(root, "\"rope_thetta\"", "\"rope_theta\"");
    del(root, "rope_thetta");

    cJSON_AddNumberToObject(root, "completely_unrelated", 4);
    REFUSED_OBJ(root, "unknown key \"completely_unrelated\"");
    del(root, "completely_unrelated");

    /* case matters: "D_model" is not "d_model" */
    cJSON_AddNumberToObject(root, "D_model", 4);
    REFUSED_OBJ(root, "\"D_model\"");
    del(root, "D_model");

    /* inside the tokenizer */
    cJSON *t = word_tokenizer();
    cJSON_AddBoolToObject(t, "lowercse", true);
    cJSON_AddItemToObject(root, "tokenizer", t);
    REFUSED_OBJ(root, "\"tokenizer.lowercse\"", "\"tokenizer.lowercase\"");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "lowercse");

    /* a key of the other tokenizer type */
    cJSON_AddStringToObject(t, "path", "x.bin");
    REFUSED_OBJ(root, "\"tokenizer.path\"");
    del(root, "tokenizer");
    t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "llama2c");
    cJSON_AddStringToObject(t, "path", "tok.bin");
    cJSON_AddStringToObject(t, "unk", "<unk>");
    cJSON_AddItemToObject(root, "tokenizer", t);
    REFUSED_OBJ(root, "\"tokenizer.unk\"");

    /* a tokenizer key at the top level */
    del(root, "tokenizer");
    cJSON_AddStringToObject(root, "unk", "<unk>");
    REFUSED_OBJ(root, "\"unk\"", "inside \"tokenizer\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(duplicate_keys) {
    cJSON *root = base_decoder();
    cJSON_AddNumberToObject(root, "d_model", 96); /* same value: still refused */
    REFUSED_OBJ(root, "duplicate key \"d_model\"");
    cJSON_Delete(root);

    REFUSED_TEXT("{\"format\":\"attn/1\",\"format\":\"attn/1\"}", "duplicate", "\"format\"");

    root = base_decoder();
    cJSON *t = word_tokenizer();
    cJSON_AddStringToObject(t, "unk", "<other>");
    cJSON_AddItemToObject(root, "tokenizer", t);
    REFUSED_OBJ(root, "duplicate key \"tokenizer.unk\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(wrong_types) {
    static const struct {
        const char *key;
        const char *value; /* JSON text */
    } cases[] = {
        {"d_model", "\"96\""},     {"n_heads", "true"},       {"vocab_size", "null"},
        {"n_layers", "[3]"},       {"max_seq_len", "{}"},     {"bias", "1"},
        {"bias", "\"true\""},      {"final_norm", "0"},       {"positional", "3"},
        {"mlp", "null"},           {"architecture", "[]"},    {"rope_theta", "\"1e4\""},
        {"norm_eps", "false"},     {"embed_scale", "\"2\""},  {"weights", "5"},
        {"weights", "null"},       {"tokenizer", "[]"},       {"tokenizer", "\"word\""},
        {"tokenizer", "null"},     {"format", "1"},           {"n_kv_heads", "\"2\""},
        {"head_dim", "16.5"},      {"d_ff", "false"},         {"norm", "{\"a\":1}"},
        {"embed_norm", "1"},       {"embed_norm", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = base_decoder();
        cJSON *v = cJSON_Parse(cases[i].value);
        ck_assert_ptr_nonnull(v);
        del(root, cases[i].key);
        cJSON_AddItemToObject(root, cases[i].key, v);
        char needle[64];
        snprintf(needle, sizeof needle, "\"%s\"", cases[i].key);
        REFUSED_OBJ(root, needle);
        cJSON_Delete(root);
    }
    /* tokenizer members */
    static const struct {
        const char *key;
        const char *value;
    } tcases[] = {
        {"type", "1"},  {"vocab", "[]"}, {"lowercase", "\"yes\""}, {"unk", "0"},
        {"bos", "1"},   {"eos", "true"},
    };
    for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) {
        cJSON *root = base_decoder();
        cJSON *t = word_tokenizer();
        cJSON_DeleteItemFromObjectCaseSensitive(t, tcases[i].key);
        cJSON_AddItemToObject(t, tcases[i].key, cJSON_Parse(tcases[i].value));
        cJSON_AddItemToObject(root, "tokenizer", t);
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\"", tcases[i].key);
        REFUSED_OBJ(root, needle);
        cJSON_Delete(root);
    }
}
END_TEST

START_TEST(bad_integers) {
    static const char *const keys[] = {"vocab_size", "d_model",    "n_heads",  "d_ff",
                                       "max_seq_len", "n_layers",  "n_kv_heads", "head_dim"};
    static const double bad[] = {0, -1, -4096, 2.5, 0.999, 1e300, 16777217, -0.0};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            cJSON *root = base_decoder();
            set_num(root, keys[k], bad[b]);
            char needle[64];
            snprintf(needle, sizeof needle, "\"%s\"", keys[k]);
            REFUSED_OBJ(root, needle);
            cJSON_Delete(root);
        }
    }
    /* n_encoder_layers too */
    cJSON *root = base_decoder();
    set_str(root, "architecture", "encoder-decoder");
    set_num(root, "n_encoder_layers", 0);
    REFUSED_OBJ(root, "\"n_encoder_layers\"");
    set_num(root, "n_encoder_layers", 1.5);
    REFUSED_OBJ(root, "\"n_encoder_layers\"");
    cJSON_Delete(root);
    /* the non-integral value is shown as written, not rounded */
    REFUSED_TEXT("{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":37,"
                 "\"d_model\":64.5,\"n_heads\":4,\"d_ff\":8,\"max_seq_len\":16,\"n_layers\":1,"
                 "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
                 "\"mlp\":\"relu\",\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w\"}",
                 "\"d_model\"", "64.5");
    /* 1 + 2^-52 is not an integer and must not be shown as "1" */
    REFUSED_TEXT("{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":37,"
                 "\"d_model\":64,\"n_heads\":4,\"d_ff\":8,\"max_seq_len\":16,"
                 "\"n_layers\":1.0000000000000002,"
                 "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
                 "\"mlp\":\"relu\",\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w\"}",
                 "\"n_layers\"", "1.0000000000000002");
}
END_TEST

START_TEST(bad_numbers) {
    static const char *const keys[] = {"norm_eps", "embed_scale", "rope_theta"};
    static const double bad[] = {0, -1e-5, -3};
    for (size_t k = 0; k < 3; k++) {
        for (size_t b = 0; b < 3; b++) {
            cJSON *root = base_decoder();
            set_num(root, keys[k], bad[b]);
            char needle[64];
            snprintf(needle, sizeof needle, "\"%s\"", keys[k]);
            REFUSED_OBJ(root, needle);
            cJSON_Delete(root);
        }
    }
    /* non-finite: JSON has no inf, but 1e999 overflows to it */
    REFUSED_TEXT("{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":37,"
                 "\"d_model\":64,\"n_heads\":4,\"d_ff\":8,\"max_seq_len\":16,\"n_layers\":1,"
                 "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
                 "\"mlp\":\"relu\",\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w\","
                 "\"embed_scale\":1e999}",
                 "\"embed_scale\"");
    REFUSED_TEXT("{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":37,"
                 "\"d_model\":64,\"n_heads\":4,\"d_ff\":8,\"max_seq_len\":16,\"n_layers\":1,"
                 "\"positional\":\"learned\",\"norm\":\"layernorm\",\"norm_position\":\"pre\","
                 "\"mlp\":\"relu\",\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w\","
                 "\"norm_eps\":-1e999}",
                 "\"norm_eps\"");
}
END_TEST

START_TEST(bad_enums) {
    static const struct {
        const char *key, *value, *allowed;
    } cases[] = {
        {"architecture", "decoder-only", "encoder-decoder"},
        {"architecture", "Decoder", "decoder"},
        {"positional", "alibi", "sinusoidal"},
        {"norm", "batchnorm", "rmsnorm"},
        {"norm_position", "sandwich", "post"},
        {"mlp", "geglu", "swiglu"},
        {"mlp", "", "gelu_tanh"},
        {"lm_head", "shared", "separate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = base_decoder();
        set_str(root, cases[i].key, cases[i].value);
        char needle[64], value[64];
        snprintf(needle, sizeof needle, "\"%s\"", cases[i].key);
        snprintf(value, sizeof value, "\"%s\"", cases[i].value);
        REFUSED_OBJ(root, needle, value, cases[i].allowed);
        cJSON_Delete(root);
    }
    /* the mlp message lists every allowed value, "none" included */
    cJSON *root = base_decoder();
    set_str(root, "mlp", "silu");
    REFUSED_OBJ(root, "\"relu\"", "\"gelu\"", "\"gelu_tanh\"", "\"swiglu\"", "\"none\"");
    cJSON_Delete(root);

    root = base_decoder();
    cJSON *t = word_tokenizer();
    cJSON_DeleteItemFromObjectCaseSensitive(t, "type");
    cJSON_AddStringToObject(t, "type", "sentencepiece");
    cJSON_AddItemToObject(root, "tokenizer", t);
    REFUSED_OBJ(root, "\"tokenizer.type\"", "sentencepiece", "llama2c");
    cJSON_Delete(root);
}
END_TEST

START_TEST(bad_format) {
    cJSON *root = base_decoder();
    set_str(root, "format", "attn/2");
    REFUSED_OBJ(root, "\"format\"", "attn/2");
    set_str(root, "format", "attn/1 ");
    REFUSED_OBJ(root, "\"format\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(missing_required) {
    static const char *const required[] = {
        "format", "architecture", "vocab_size", "d_model", "n_heads", "d_ff", "max_seq_len",
        "n_layers", "positional", "norm", "norm_position", "mlp", "bias", "lm_head", "weights"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        cJSON *root = base_decoder();
        del(root, required[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "missing required key \"%s\"", required[i]);
        REFUSED_OBJ(root, needle);
        cJSON_Delete(root);
    }
    /* inside the tokenizer */
    static const char *const tok_required[] = {"type", "vocab", "unk"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *root = base_decoder();
        cJSON *t = word_tokenizer();
        cJSON_DeleteItemFromObjectCaseSensitive(t, tok_required[i]);
        cJSON_AddItemToObject(root, "tokenizer", t);
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\"", tok_required[i]);
        REFUSED_OBJ(root, needle);
        cJSON_Delete(root);
    }
    cJSON *root = base_decoder();
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "llama2c");
    cJSON_AddItemToObject(root, "tokenizer", t);
    REFUSED_OBJ(root, "\"tokenizer.path\"");
    cJSON_Delete(root);
    /* an empty object names the first required key */
    REFUSED_TEXT("{}", "missing required key \"format\"");
}
END_TEST

START_TEST(encoder_layers_by_architecture) {
    cJSON *root = base_decoder();
    set_num(root, "n_encoder_layers", 2);
    REFUSED_OBJ(root, "\"n_encoder_layers\"", "decoder");
    set_str(root, "architecture", "encoder");
    REFUSED_OBJ(root, "\"n_encoder_layers\"", "encoder");
    set_str(root, "architecture", "encoder-decoder");
    attn_config cfg;
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.n_encoder_layers, 2);
    del(root, "n_encoder_layers");
    REFUSED_OBJ(root, "missing required key \"n_encoder_layers\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(kv_heads) {
    cJSON *root = base_decoder(); /* n_heads 6 */
    set_num(root, "n_kv_heads", 4);
    REFUSED_OBJ(root, "\"n_heads\"", "6", "not divisible", "n_kv_heads 4");
    set_num(root, "n_kv_heads", 12);
    REFUSED_OBJ(root, "\"n_kv_heads\"", "12");
    attn_config cfg;
    static const int ok[] = {1, 2, 3, 6};
    for (size_t i = 0; i < 4; i++) {
        set_num(root, "n_kv_heads", ok[i]);
        ACCEPTED_OBJ(root, &cfg);
        ck_assert_int_eq(cfg.n_kv_heads, ok[i]);
        ck_assert_int_eq(cfg.n_heads, 6);
    }
    cJSON_Delete(root);
}
END_TEST

START_TEST(head_dim_rules) {
    cJSON *root = base_decoder(); /* rope, d_model 96, n_heads 6 */
    attn_config cfg;
    /* odd explicit head_dim with rope */
    set_num(root, "head_dim", 7);
    REFUSED_OBJ(root, "\"head_dim\"", "7");
    /* odd derived head_dim with rope: 90 / 6 = 15 */
    del(root, "head_dim");
    set_num(root, "d_model", 90);
    REFUSED_OBJ(root, "\"head_dim\"", "15");
    /* without rope it is fine */
    set_str(root, "positional", "learned");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.head_dim, 15);
    /* d_model not divisible by n_heads and no head_dim */
    set_num(root, "d_model", 100);
    REFUSED_OBJ(root, "\"d_model\"", "100", "n_heads 6");
    /* an explicit head_dim lifts the divisibility requirement */
    set_num(root, "head_dim", 12);
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.head_dim, 12);
    ck_assert_int_eq(cfg.d_model, 100);
    /* sinusoidal needs an even d_model */
    set_str(root, "positional", "sinusoidal");
    set_num(root, "d_model", 99);
    REFUSED_OBJ(root, "\"d_model\"", "99", "sinusoidal");
    set_num(root, "d_model", 98);
    ACCEPTED_OBJ(root, &cfg);
    cJSON_Delete(root);
}
END_TEST

START_TEST(rope_theta_rules) {
    cJSON *root = base_decoder();
    attn_config cfg;
    set_num(root, "rope_theta", 1e6);
    ACCEPTED_OBJ(root, &cfg);
    ck_assert(cfg.rope_theta == 1e6);
    static const char *const others[] = {"learned", "sinusoidal", "none"};
    for (size_t i = 0; i < 3; i++) {
        set_str(root, "positional", others[i]);
        REFUSED_OBJ(root, "\"rope_theta\"", others[i]);
    }
    cJSON_Delete(root);
}
END_TEST

START_TEST(size_limits) {
    attn_config cfg;
    cJSON *root = base_decoder();
    set_str(root, "positional", "learned");
    /* 2^20 * 2^12 = 2^32 elements of tok_embed */
    set_num(root, "vocab_size", 1 << 20);
    set_num(root, "d_model", 4096);
    set_num(root, "n_heads", 32);
    REFUSED_OBJ(root, "vocab_size * d_model");
    /* 2^17 * 2^14 = 2^31 exactly is allowed, one more row is not */
    set_num(root, "vocab_size", 1 << 17);
    set_num(root, "d_model", 1 << 14);
    set_num(root, "n_heads", 1 << 7);
    set_num(root, "d_ff", 1 << 17);
    ACCEPTED_OBJ(root, &cfg);
    set_num(root, "vocab_size", (1 << 17) + 1);
    REFUSED_OBJ(root, "vocab_size * d_model");
    set_num(root, "vocab_size", 50);
    set_num(root, "max_seq_len", (1 << 17) + 1);
    REFUSED_OBJ(root, "max_seq_len * d_model");
    set_num(root, "max_seq_len", 64);
    set_num(root, "d_ff", (1 << 17) + 3);
    REFUSED_OBJ(root, "d_ff * d_model");
    set_num(root, "d_ff", 64);
    /* a huge head_dim: q projection rows * d_model */
    set_num(root, "head_dim", 1 << 16);
    REFUSED_OBJ(root, "n_heads * head_dim * d_model");
    /* every factor at its cap: must be refused, not overflow */
    set_num(root, "n_heads", 1 << 12);
    set_num(root, "head_dim", 1 << 16);
    set_num(root, "d_model", 1 << 16);
    REFUSED_OBJ(root, "n_heads * head_dim * d_model");
    cJSON_Delete(root);
}
END_TEST

START_TEST(token_strings) {
    cJSON *root = base_decoder();
    cJSON *t = word_tokenizer();
    cJSON_AddItemToObject(root, "tokenizer", t);
    attn_config cfg;
    char big[ATTN_TOKEN_MAX + 1];
    memset(big, 'x', sizeof big);
    big[ATTN_TOKEN_MAX - 1] = '\0'; /* ATTN_TOKEN_MAX - 1 bytes: fits */
    static const char *const keys[] = {"unk", "bos", "eos"};
    for (size_t i = 0; i < 3; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(t, keys[i]);
        cJSON_AddStringToObject(t, keys[i], big);
        ACCEPTED_OBJ(root, &cfg);
        big[ATTN_TOKEN_MAX - 1] = 'x';
        big[ATTN_TOKEN_MAX] = '\0'; /* ATTN_TOKEN_MAX bytes: too long */
        cJSON_DeleteItemFromObjectCaseSensitive(t, keys[i]);
        cJSON_AddStringToObject(t, keys[i], big);
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\"", keys[i]);
        REFUSED_OBJ(root, needle);
        cJSON_DeleteItemFromObjectCaseSensitive(t, keys[i]);
        cJSON_AddStringToObject(t, keys[i], "");
        REFUSED_OBJ(root, needle, "empty");
        cJSON_DeleteItemFromObjectCaseSensitive(t, keys[i]);
        cJSON_AddStringToObject(t, keys[i], "a\nb");
        REFUSED_OBJ(root, needle);
        cJSON_DeleteItemFromObjectCaseSensitive(t, keys[i]);
        cJSON_AddStringToObject(t, keys[i], "<tok>");
        big[ATTN_TOKEN_MAX - 1] = '\0';
    }
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_str_eq(cfg.tokenizer.unk, "<tok>");
    ck_assert_str_eq(cfg.tokenizer.bos, "<tok>");
    /* empty paths */
    cJSON_DeleteItemFromObjectCaseSensitive(t, "vocab");
    cJSON_AddStringToObject(t, "vocab", "");
    REFUSED_OBJ(root, "\"tokenizer.vocab\"");
    set_str(root, "weights", "");
    REFUSED_OBJ(root, "\"weights\"");
    cJSON_Delete(root);
}
END_TEST

/* The word tokenizer's special-token keys and add_eos (docs/model-format.md). */
START_TEST(special_token_keys) {
    cJSON *root = base_decoder();
    cJSON *t = word_tokenizer();
    cJSON_AddItemToObject(root, "tokenizer", t);
    attn_config cfg;
    /* absent: <...> entries are special, nothing listed, eos (none) would be added */
    ACCEPTED_OBJ(root, &cfg);
    ck_assert(!cfg.tokenizer.special_off);
    ck_assert_int_eq(cfg.tokenizer.n_special, 0);
    ck_assert(!cfg.tokenizer.eos_not_added);
    /* a list, kept in order; the switch */
    cJSON_AddItemToObject(t, "special", cJSON_Parse("[\"[MASK]\", \"<mask>\", \"x\"]"));
    cJSON_AddFalseToObject(t, "special_tokens");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.tokenizer.n_special, 3);
    ck_assert_str_eq(cfg.tokenizer.special[0], "[MASK]");
    ck_assert_str_eq(cfg.tokenizer.special[1], "<mask>");
    ck_assert_str_eq(cfg.tokenizer.special[2], "x");
    ck_assert(cfg.tokenizer.special_off);
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special_tokens");
    cJSON_AddTrueToObject(t, "special_tokens");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert(!cfg.tokenizer.special_off);
    /* an empty list */
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special");
    cJSON_AddItemToObject(t, "special", cJSON_CreateArray());
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.tokenizer.n_special, 0);
    /* bad lists */
    static const struct {
        const char *value, *needle1, *needle2;
    } bad[] = {
        {"\"<mask>\"", "\"tokenizer.special\"", "array"},
        {"{}", "\"tokenizer.special\"", "array"},
        {"[1]", "\"tokenizer.special[0]\"", "string"},
        {"[\"a\", null]", "\"tokenizer.special[1]\"", "string"},
        {"[\"\"]", "\"tokenizer.special[0]\"", "empty"},
        {"[\"a b\"]", "\"tokenizer.special[0]\"", "white space"},
        {"[\"a\\nb\"]", "\"tokenizer.special[0]\"", "line break"},
        {"[\"<m>\", \"x\", \"<m>\"]", "\"tokenizer.special[2]\"", "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(t, "special");
        cJSON *v = cJSON_Parse(bad[i].value);
        ck_assert_ptr_nonnull(v);
        cJSON_AddItemToObject(t, "special", v);
        REFUSED_OBJ(root, bad[i].needle1, bad[i].needle2);
    }
    /* ATTN_SPECIAL_MAX tokens fit, one more does not */
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special");
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < ATTN_SPECIAL_MAX; i++) {
        char tok[16];
        snprintf(tok, sizeof tok, "<t%d>", i);
        cJSON_AddItemToArray(list, cJSON_CreateString(tok));
    }
    cJSON_AddItemToObject(t, "special", list);
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.tokenizer.n_special, ATTN_SPECIAL_MAX);
    ck_assert_str_eq(cfg.tokenizer.special[ATTN_SPECIAL_MAX - 1], "<t63>");
    cJSON_AddItemToArray(list, cJSON_CreateString("<one-more>"));
    REFUSED_OBJ(root, "\"tokenizer.special\"", "more than 64");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special_tokens");
    cJSON_AddStringToObject(t, "special_tokens", "no");
    REFUSED_OBJ(root, "\"tokenizer.special_tokens\"", "true or false");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "special_tokens");
    /* add_eos: a bool, and only with an eos */
    cJSON_AddFalseToObject(t, "add_eos");
    REFUSED_OBJ(root, "\"tokenizer.add_eos\"", "\"tokenizer.eos\"");
    cJSON_AddNullToObject(t, "eos");
    REFUSED_OBJ(root, "\"tokenizer.add_eos\"", "\"tokenizer.eos\"");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "eos");
    cJSON_AddStringToObject(t, "eos", "</s>");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert(cfg.tokenizer.has_eos && cfg.tokenizer.eos_not_added);
    cJSON_DeleteItemFromObjectCaseSensitive(t, "add_eos");
    cJSON_AddTrueToObject(t, "add_eos");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert(cfg.tokenizer.has_eos && !cfg.tokenizer.eos_not_added);
    cJSON_DeleteItemFromObjectCaseSensitive(t, "add_eos");
    cJSON_AddNumberToObject(t, "add_eos", 0);
    REFUSED_OBJ(root, "\"tokenizer.add_eos\"", "true or false");
    /* not keys of the llama2c tokenizer */
    static const char *const word_only[] = {"special", "special_tokens", "add_eos"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "type", "llama2c");
        cJSON_AddStringToObject(l, "path", "tok.bin");
        cJSON_AddItemToObject(l, word_only[i], i ? cJSON_CreateFalse() : cJSON_CreateArray());
        cJSON_DeleteItemFromObjectCaseSensitive(root, "tokenizer");
        cJSON_AddItemToObject(root, "tokenizer", l);
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\"", word_only[i]);
        REFUSED_OBJ(root, needle, "llama2c");
    }
    cJSON_Delete(root);
}
END_TEST

/* The gpt2 tokenizer's keys (vocab, merges) and the hf tokenizer's (path):
 * accepted, each required one missing, and every key of another type. */
static cJSON *set_tokenizer(cJSON *root, const char *type, const char *k1, const char *v1,
                            const char *k2, const char *v2) {
    cJSON_DeleteItemFromObjectCaseSensitive(root, "tokenizer");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", type);
    if (k1) cJSON_AddStringToObject(t, k1, v1);
    if (k2) cJSON_AddStringToObject(t, k2, v2);
    cJSON_AddItemToObject(root, "tokenizer", t);
    return t;
}

START_TEST(gpt2_hf_tokenizer_keys) {
    cJSON *root = base_decoder();
    attn_config cfg;
    set_tokenizer(root, "gpt2", "vocab", "vocab.json", "merges", "merges.txt");
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_GPT2);
    ck_assert_str_eq(cfg.tokenizer.path, "vocab.json");
    ck_assert_str_eq(cfg.tokenizer.merges, "merges.txt");
    set_tokenizer(root, "gpt2", "vocab", "vocab.json", NULL, NULL);
    REFUSED_OBJ(root, "missing required key \"tokenizer.merges\"");
    set_tokenizer(root, "gpt2", "merges", "merges.txt", NULL, NULL);
    REFUSED_OBJ(root, "missing required key \"tokenizer.vocab\"");
    cJSON *t = set_tokenizer(root, "gpt2", "vocab", "vocab.json", "merges", "merges.txt");
    cJSON_AddNumberToObject(t, "merges_x", 1);
    REFUSED_OBJ(root, "\"tokenizer.merges_x\"");
    set_tokenizer(root, "gpt2", "vocab", "vocab.json", "merges", "");
    REFUSED_OBJ(root, "\"tokenizer.merges\"");
    static const char *const not_gpt2[] = {"path", "unk", "lowercase", "bos", "eos", "special",
                                           "special_tokens", "add_eos"};
    for (size_t i = 0; i < sizeof not_gpt2 / sizeof *not_gpt2; i++) {
        t = set_tokenizer(root, "gpt2", "vocab", "vocab.json", "merges", "merges.txt");
        cJSON_AddStringToObject(t, not_gpt2[i], "x");
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\" does not belong", not_gpt2[i]);
        REFUSED_OBJ(root, needle, "\"gpt2\"", "type, vocab, merges");
    }
    set_tokenizer(root, "hf", "path", "tokenizer.json", NULL, NULL);
    ACCEPTED_OBJ(root, &cfg);
    ck_assert_int_eq(cfg.tokenizer.type, ATTN_TOKENIZER_HF);
    ck_assert_str_eq(cfg.tokenizer.path, "tokenizer.json");
    set_tokenizer(root, "hf", NULL, NULL, NULL, NULL);
    REFUSED_OBJ(root, "missing required key \"tokenizer.path\"");
    static const char *const not_hf[] = {"vocab", "merges", "unk", "special", "add_eos"};
    for (size_t i = 0; i < sizeof not_hf / sizeof *not_hf; i++) {
        set_tokenizer(root, "hf", "path", "tokenizer.json", not_hf[i], "x");
        char needle[64];
        snprintf(needle, sizeof needle, "\"tokenizer.%s\" does not belong", not_hf[i]);
        REFUSED_OBJ(root, needle, "\"hf\"", "(its keys: type, path)");
    }
    /* the type's message lists every type */
    set_tokenizer(root, "huggingface", "path", "tokenizer.json", NULL, NULL);
    REFUSED_OBJ(root, "\"tokenizer.type\"", "\"word\"", "\"llama2c\"", "\"gpt2\"", "\"hf\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(not_an_object) {
    REFUSED_TEXT("[]", "object");
    REFUSED_TEXT("\"attn/1\"", "object");
    REFUSED_TEXT("null", "object");
    REFUSED_TEXT("42", "object");
    attn_config cfg;
    attn_error err = {0};
    ck_assert_int_eq(attn_config_parse(&cfg, "", 0, NAME, NULL, &err), ATTN_ERR_FORMAT);
    ck_assert_int_eq(attn_config_parse(&cfg, NULL, 0, NAME, NULL, &err), ATTN_ERR_FORMAT);
    ck_assert(strncmp(err.message, NAME ": ", strlen(NAME) + 2) == 0);
}
END_TEST

START_TEST(malformed_json) {
    REFUSED_TEXT("{\"format\": \"attn/1\",, }", "JSON", "line 1");
    REFUSED_TEXT("{\n  \"format\": \"attn/1\",\n  \"d_model\": 6x4\n}\n", "JSON", "line 3");
    REFUSED_TEXT("{\n\n\n\n  'format': 1}", "JSON", "line 5");
    REFUSED_TEXT("{\"format\": \"attn/1\"} trailing", "JSON");
    REFUSED_TEXT("{\"format\": \"attn/1\"}{}", "JSON");
    REFUSED_TEXT("   ", "JSON");
    /* trailing white space is fine */
    cJSON *root = base_decoder();
    char *s = cJSON_Print(root);
    size_t n = strlen(s);
    char *padded = malloc(n + 8);
    ck_assert_ptr_nonnull(padded);
    memcpy(padded, s, n);
    memcpy(padded + n, " \n\t\r\n  ", 8);
    attn_config cfg;
    attn_error err = {0};
    ck_assert_msg(parse_text(&cfg, padded, &err) == ATTN_OK, "%s", err.message);
    free(padded);
    cJSON_free(s);
    cJSON_Delete(root);
}
END_TEST

START_TEST(nul_escapes) {
    /* cJSON would cut "lm_head\u0000zz" to "lm_head": refused instead */
    REFUSED_TEXT("{\"format\":\"attn/1\",\n\"lm_head\\u0000zz\":\"tied\"}", "u0000", "line 2");
    cJSON *root = base_decoder();
    cJSON *t = word_tokenizer();
    cJSON_AddItemToObject(root, "tokenizer", t);
    char *s = cJSON_PrintUnformatted(root);
    /* splice a NUL escape into the unk token "<unk>" -> "<u\u0000nk>" */
    char buf[2048];
    char *at = strstr(s, "<unk>");
    ck_assert_ptr_nonnull(at);
    snprintf(buf, sizeof buf, "%.*s<u\\u0000nk>%s", (int)(at - s), s, at + 5);
    REFUSED_TEXT(buf, "u0000");
    /* an escaped backslash followed by "u0000" is an ordinary 6-byte token */
    snprintf(buf, sizeof buf, "%.*s\\\\u0000%s", (int)(at - s), s, at + 5);
    attn_config cfg;
    attn_error err = {0};
    ck_assert_msg(parse_text(&cfg, buf, &err) == ATTN_OK, "%s", err.message);
    ck_assert_str_eq(cfg.tokenizer.unk, "\\u0000");
    cJSON_free(s);
    cJSON_Delete(root);
}
END_TEST

START_TEST(truncated_json) {
    cJSON *root = base_decoder();
    cJSON_AddItemToObject(root, "tokenizer", word_tokenizer());
    char *s = cJSON_Print(root);
    size_t n = strlen(s);
    attn_config cfg;
    attn_error err = {0};
    ck_assert_msg(attn_config_parse(&cfg, s, n, NAME, NULL, &err) == ATTN_OK, "%s", err.message);
    /* every proper prefix is refused; the length is passed explicitly, the
     * rest of the buffer (valid JSON) must not be read */
    for (size_t cut = 0; cut < n; cut++) {
        attn_error e = {0};
        int rc = attn_config_parse(&cfg, s, cut, NAME, NULL, &e);
        ck_assert_msg(rc == ATTN_ERR_FORMAT, "prefix of %zu bytes: rc %d", cut, rc);
        ck_assert_msg(strncmp(e.message, NAME ": ", strlen(NAME) + 2) == 0, "%s", e.message);
    }
    cJSON_free(s);
    cJSON_Delete(root);
}
END_TEST

/* The buffer ends right before an inaccessible page: reading one byte past
 * len would crash the test. */
START_TEST(unterminated_buffer) {
    long page = sysconf(_SC_PAGESIZE);
    ck_assert(page > 0);
    char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);

    cJSON *root = base_decoder();
    set_num(root, "n_kv_heads", 3);
    char *s = cJSON_PrintUnformatted(root);
    size_t n = strlen(s);
    ck_assert((long)n < page);
    char *buf = map + page - n;
    memcpy(buf, s, n); /* no NUL */
    attn_config cfg;
    attn_error err = {0};
    ck_assert_msg(attn_config_parse(&cfg, buf, n, NAME, NULL, &err) == ATTN_OK, "%s",
                  err.message);
    ck_assert_int_eq(cfg.n_kv_heads, 3);
    ck_assert_str_eq(cfg.weights, "model.safetensors");

    /* truncated inside a number, a string, a literal: refused, no over-read */
    static const char *const tails[] = {"{\"format\":\"attn/1\",\"d_model\":12",
                                        "{\"format\":\"attn/",
                                        "{\"format\":\"attn/1\",\"bias\":tru",
                                        "{\"format\":\"attn/1\",\"d_model\":1e",
                                        "{\"format\":\"attn/1\",\"x\":\"\\u00",
                                        "{\"format\":\"attn/1\",\"x\":\"\\"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t m = strlen(tails[i]);
        memcpy(map + page - m, tails[i], m);
        attn_error e = {0};
        ck_assert_int_eq(attn_config_parse(&cfg, map + page - m, m, NAME, NULL, &e),
                         ATTN_ERR_FORMAT);
    }
    cJSON_free(s);
    cJSON_Delete(root);
    munmap(map, (size_t)page * 2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Files                                                                      */

START_TEST(paths_with_base_dir) {
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    cJSON *root = base_decoder();
    cJSON_AddItemToObject(root, "tokenizer", word_tokenizer());
    attn_config cfg;
    attn_error err = {0};
    char expect[ATTN_PATH_MAX];

    /* nothing exists yet: the weights are named, with the resolved path */
    int rc = parse_obj_in(&cfg, root, dir, &err);
    snprintf(expect, sizeof expect, "%s/model.safetensors", dir);
    {
        const char *const needles[] = {"\"weights\"", expect, NULL};
        check_refused_msg(rc, &err, needles);
    }
    tu_write_text(dir, "model.safetensors", "not checked here");
    rc = parse_obj_in(&cfg, root, dir, &err);
    snprintf(expect, sizeof expect, "%s/vocab.txt", dir);
    {
        const char *const needles[] = {"\"tokenizer.vocab\"", expect, NULL};
        check_refused_msg(rc, &err, needles);
    }
    /* a folder is not a file */
    ck_assert_int_eq(mkdir(expect, 0700), 0);
    rc = parse_obj_in(&cfg, root, dir, &err);
    {
        const char *const needles[] = {"\"tokenizer.vocab\"", "regular file", NULL};
        check_refused_msg(rc, &err, needles);
    }
    rmdir(expect);
    tu_write_text(dir, "vocab.txt", "<unk>\nhello\n");
    rc = parse_obj_in(&cfg, root, dir, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    snprintf(expect, sizeof expect, "%s/model.safetensors", dir);
    ck_assert_str_eq(cfg.weights, expect);
    snprintf(expect, sizeof expect, "%s/vocab.txt", dir);
    ck_assert_str_eq(cfg.tokenizer.path, expect);

    /* without base_dir: kept as written, nothing checked */
    set_str(root, "weights", "nowhere/x.safetensors");
    rc = parse_obj(&cfg, root, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_str_eq(cfg.weights, "nowhere/x.safetensors");
    /* llama2c path, missing */
    del(root, "tokenizer");
    set_str(root, "weights", "model.safetensors");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "llama2c");
    cJSON_AddStringToObject(t, "path", "tok.bin");
    cJSON_AddItemToObject(root, "tokenizer", t);
    rc = parse_obj_in(&cfg, root, dir, &err);
    {
        const char *const needles[] = {"\"tokenizer.path\"", "tok.bin", NULL};
        check_refused_msg(rc, &err, needles);
    }
    cJSON_Delete(root);
    tu_rm_tree(dir);
}
END_TEST

START_TEST(load_resolves_paths) {
    char dir[256], sub[300], path[400], expect[ATTN_PATH_MAX];
    make_tmpdir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/m", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/tok", sub);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    tu_write_text(sub, "w.safetensors", "x");
    tu_write_text(sub, "tok/vocab.txt", "<unk>\n");
    tu_write_text(dir, "outside.bin", "y");

    cJSON *root = base_decoder();
    set_str(root, "weights", "w.safetensors");
    cJSON *t = word_tokenizer();
    cJSON_DeleteItemFromObjectCaseSensitive(t, "vocab");
    cJSON_AddStringToObject(t, "vocab", "tok/vocab.txt");
    cJSON_AddItemToObject(root, "tokenizer", t);
    char *s = cJSON_Print(root);
    tu_write_text(sub, "config.json", s);
    cJSON_free(s);

    attn_config cfg;
    attn_error err = {0};
    snprintf(path, sizeof path, "%s/config.json", sub);
    int rc = attn_config_load(&cfg, path, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    snprintf(expect, sizeof expect, "%s/w.safetensors", sub);
    ck_assert_str_eq(cfg.weights, expect);
    snprintf(expect, sizeof expect, "%s/tok/vocab.txt", sub);
    ck_assert_str_eq(cfg.tokenizer.path, expect);
    ck_assert_int_eq(cfg.d_model, 96);

    /* ".." and absolute paths */
    set_str(root, "weights", "../outside.bin");
    s = cJSON_Print(root);
    tu_write_text(sub, "config.json", s);
    cJSON_free(s);
    rc = attn_config_load(&cfg, path, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    snprintf(expect, sizeof expect, "%s/../outside.bin", sub);
    ck_assert_str_eq(cfg.weights, expect);
    snprintf(expect, sizeof expect, "%s/outside.bin", dir);
    set_str(root, "weights", expect);
    s = cJSON_Print(root);
    tu_write_text(sub, "config.json", s);
    cJSON_free(s);
    rc = attn_config_load(&cfg, path, &err);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_str_eq(cfg.weights, expect);

    /* a bare file name resolves against "." */
    char cwd[ATTN_PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(sub), 0);
    set_str(root, "weights", "w.safetensors");
    s = cJSON_Print(root);
    tu_write_text(".", "config.json", s);
    cJSON_free(s);
    rc = attn_config_load(&cfg, "config.json", &err);
    int chdir_back = chdir(cwd);
    ck_assert_msg(rc == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(chdir_back, 0);
    ck_assert_str_eq(cfg.weights, "./w.safetensors");

    /* a missing weights file is named with its resolved path */
    set_str(root, "weights", "gone.safetensors");
    s = cJSON_Print(root);
    tu_write_text(sub, "config.json", s);
    cJSON_free(s);
    rc = attn_config_load(&cfg, path, &err);
    snprintf(expect, sizeof expect, "%s/gone.safetensors", sub);
    {
        const char *const needles[] = {"\"weights\"", expect, NULL};
        ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
        ck_assert_msg(strncmp(err.message, path, strlen(path)) == 0, "%s", err.message);
        for (const char *const *p = needles; *p; p++)
            ck_assert_msg(strstr(err.message, *p), "lacks %s: %s", *p, err.message);
    }

    /* a config that cannot be read is an I/O error naming the file */
    snprintf(path, sizeof path, "%s/absent.json", sub);
    rc = attn_config_load(&cfg, path, &err);
    ck_assert_int_eq(rc, ATTN_ERR_IO);
    ck_assert_int_eq(err.status, ATTN_ERR_IO);
    ck_assert_msg(strstr(err.message, path), "%s", err.message);
    /* a folder either */
    rc = attn_config_load(&cfg, sub, &err);
    ck_assert_int_eq(rc, ATTN_ERR_IO);

    cJSON_Delete(root);
    tu_rm_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Random valid configs                                                       */

typedef struct rng {
    uint64_t s;
} rng;
static uint64_t rng_next(rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}
static int rng_int(rng *r, int lo, int hi) { /* inclusive */
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}
static bool rng_bool(rng *r) { return rng_next(r) & 1; }

static void random_token(rng *r, char *out) {
    static const char chars[] = "abcXYZ<>[]/|_-#0123456789";
    int n = rng_int(r, 1, 12);
    for (int i = 0; i < n; i++) out[i] = chars[rng_int(r, 0, (int)sizeof chars - 2)];
    out[n] = '\0';
}

/* Builds a random valid config as a shuffled list of members, and what the
 * parser must produce from it. */
static cJSON *random_config(rng *r, attn_config *ex) {
    memset(ex, 0, sizeof *ex);
    cJSON *items[32];
    int n = 0;
#define ADD(key, item)                                                                         \
    do {                                                                                       \
        cJSON *it_ = (item);                                                                   \
        it_->string = strdup(key);                                                             \
        items[n++] = it_;                                                                      \
    } while (0)
    static const char *const archs[] = {"decoder", "encoder", "encoder-decoder"};
    static const char *const poss[] = {"learned", "sinusoidal", "rope", "none"};
    static const char *const norms[] = {"layernorm", "rmsnorm"};
    static const char *const nps[] = {"pre", "post"};
    static const char *const mlps[] = {"relu", "gelu", "gelu_tanh", "swiglu", "none"};
    static const char *const heads[] = {"none", "tied", "separate"};

    ex->arch = (attn_arch)rng_int(r, 0, 2);
    ex->positional = (attn_positional)rng_int(r, 0, 3);
    ex->norm = (attn_norm_kind)rng_int(r, 0, 1);
    ex->norm_position = (attn_norm_position)rng_int(r, 0, 1);
    ex->mlp = (attn_mlp_kind)rng_int(r, 0, 4);
    ex->lm_head = (attn_lm_head)rng_int(r, 0, 2);
    ex->bias = rng_bool(r);
    ADD("format", cJSON_CreateString("attn/1"));
    ADD("architecture", cJSON_CreateString(archs[ex->arch]));
    ADD("positional", cJSON_CreateString(poss[ex->positional]));
    ADD("norm", cJSON_CreateString(norms[ex->norm]));
    ADD("norm_position", cJSON_CreateString(nps[ex->norm_position]));
    ADD("mlp", cJSON_CreateString(mlps[ex->mlp]));
    ADD("lm_head", cJSON_CreateString(heads[ex->lm_head]));
    ADD("bias", cJSON_CreateBool(ex->bias));

    /* heads: n_kv_heads divides n_heads */
    int kv = rng_int(r, 1, 8), group = rng_int(r, 1, 6);
    ex->n_heads = kv * group;
    ex->n_kv_heads = rng_bool(r) ? kv : ex->n_heads;
    if (ex->n_kv_heads != ex->n_heads || rng_bool(r))
        ADD("n_kv_heads", cJSON_CreateNumber(ex->n_kv_heads));
    ADD("n_heads", cJSON_CreateNumber(ex->n_heads));
    bool rope = ex->positional == ATTN_POS_ROPE;
    if (rng_bool(r)) { /* explicit head_dim, d_model anything (even for sinusoidal) */
        ex->head_dim = rng_int(r, 1, 80);
        if (rope && ex->head_dim % 2) ex->head_dim++;
        ex->d_model = rng_int(r, 1, 300);
        if (ex->positional == ATTN_POS_SINUSOIDAL && ex->d_model % 2) ex->d_model++;
        ADD("head_dim", cJSON_CreateNumber(ex->head_dim));
    } else {           /* derived head_dim */
        ex->head_dim = rng_int(r, 1, 40);
        if (rope && ex->head_dim % 2) ex->head_dim++;
        ex->d_model = ex->head_dim * ex->n_heads;
        if (ex->positional == ATTN_POS_SINUSOIDAL && ex->d_model % 2) {
            ex->head_dim *= 2;
            ex->d_model *= 2;
        }
    }
    ADD("d_model", cJSON_CreateNumber(ex->d_model));
    ex->vocab_size = rng_int(r, 1, 70000);
    ADD("vocab_size", cJSON_CreateNumber(ex->vocab_size));
    ex->max_seq_len = rng_int(r, 1, 4096);
    ADD("max_seq_len", cJSON_CreateNumber(ex->max_seq_len));
    ex->n_layers = rng_int(r, 1, 48);
    ADD("n_layers", cJSON_CreateNumber(ex->n_layers));
    if (ex->arch == ATTN_ARCH_ENCODER_DECODER) {
        ex->n_encoder_layers = rng_int(r, 1, 24);
        ADD("n_encoder_layers", cJSON_CreateNumber(ex->n_encoder_layers));
    }
    if (ex->mlp != ATTN_MLP_NONE || rng_bool(r)) {
        ex->d_ff = rng_int(r, 1, 20000);
        ADD("d_ff", cJSON_CreateNumber(ex->d_ff));
    }
    ex->rope_theta = 10000.0;
    if (rope && rng_bool(r)) {
        ex->rope_theta = (double)rng_int(r, 1, 1 << 20) * 0.5;
        ADD("rope_theta", cJSON_CreateNumber(ex->rope_theta));
    }
    ex->embed_scale = 1.0;
    if (rng_bool(r)) {
        /* values with a short decimal form: cJSON prints 15 significant digits */
        ex->embed_scale = (double)rng_int(r, 1, 1 << 16) / 64.0;
        ADD("embed_scale", cJSON_CreateNumber(ex->embed_scale));
    }
    ex->norm_eps = 1e-5;
    if (rng_bool(r)) {
        char eps[32];
        snprintf(eps, sizeof eps, "%de-%d", rng_int(r, 1, 9), rng_int(r, 1, 12));
        ex->norm_eps = strtod(eps, NULL);
        ADD("norm_eps", cJSON_CreateNumber(ex->norm_eps));
    }
    ex->final_norm = ex->norm_position == ATTN_NORM_PRE;
    if (rng_bool(r)) {
        ex->final_norm = rng_bool(r);
        ADD("final_norm", cJSON_CreateBool(ex->final_norm));
    }
    snprintf(ex->weights, sizeof ex->weights, "w%d/model-%d.safetensors", rng_int(r, 0, 99),
             rng_int(r, 0, 999));
    ADD("weights", cJSON_CreateString(ex->weights));
    int tk = rng_int(r, 0, 2);
    if (tk == 1) {
        ex->has_tokenizer = true;
        ex->tokenizer.type = ATTN_TOKENIZER_WORD;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", "word");
        snprintf(ex->tokenizer.path, sizeof ex->tokenizer.path, "vocab-%d.txt",
                 rng_int(r, 0, 9999));
        cJSON_AddStringToObject(t, "vocab", ex->tokenizer.path);
        random_token(r, ex->tokenizer.unk);
        cJSON_AddStringToObject(t, "unk", ex->tokenizer.unk);
        if (rng_bool(r)) {
            ex->tokenizer.lowercase = rng_bool(r);
            cJSON_AddBoolToObject(t, "lowercase", ex->tokenizer.lowercase);
        }
        int b = rng_int(r, 0, 2); /* absent, null, token */
        if (b == 1) cJSON_AddNullToObject(t, "bos");
        if (b == 2) {
            ex->tokenizer.has_bos = true;
            random_token(r, ex->tokenizer.bos);
            cJSON_AddStringToObject(t, "bos", ex->tokenizer.bos);
        }
        int e = rng_int(r, 0, 2);
        if (e == 1) cJSON_AddNullToObject(t, "eos");
        if (e == 2) {
            ex->tokenizer.has_eos = true;
            random_token(r, ex->tokenizer.eos);
            cJSON_AddStringToObject(t, "eos", ex->tokenizer.eos);
            if (rng_bool(r)) {
                ex->tokenizer.eos_not_added = rng_bool(r);
                cJSON_AddBoolToObject(t, "add_eos", !ex->tokenizer.eos_not_added);
            }
        }
        if (rng_bool(r)) {
            ex->tokenizer.special_off = rng_bool(r);
            cJSON_AddBoolToObject(t, "special_tokens", !ex->tokenizer.special_off);
        }
        if (rng_bool(r)) { /* distinct tokens: the index makes each one unique */
            cJSON *list = cJSON_CreateArray();
            ex->tokenizer.n_special = rng_int(r, 0, 4);
            for (int i = 0; i < ex->tokenizer.n_special; i++) {
                char *tok = ex->tokenizer.special[i];
                random_token(r, tok);
                snprintf(tok + strlen(tok), ATTN_TOKEN_MAX - strlen(tok), "%d", i);
                cJSON_AddItemToArray(list, cJSON_CreateString(tok));
            }
            cJSON_AddItemToObject(t, "special", list);
        }
        ADD("tokenizer", t);
    } else if (tk == 2) {
        ex->has_tokenizer = true;
        ex->tokenizer.type = ATTN_TOKENIZER_LLAMA2C;
        cJSON *t = cJSON_CreateObject();
        snprintf(ex->tokenizer.path, sizeof ex->tokenizer.path, "/models/tok%d.bin",
                 rng_int(r, 0, 99));
        cJSON_AddStringToObject(t, "path", ex->tokenizer.path);
        cJSON_AddStringToObject(t, "type", "llama2c");
        ADD("tokenizer", t);
    }
#undef ADD
    /* shuffle the members, then chain them into the object */
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(r, 0, i);
        cJSON *tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
    }
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i < n; i++) {
        char *key = items[i]->string;
        items[i]->string = NULL;
        cJSON_AddItemToObject(root, key, items[i]);
        free(key);
    }
    return root;
}

static void assert_same_config(const attn_config *a, const attn_config *ex, int iter) {
#define EQ(f) ck_assert_msg(a->f == ex->f, "iteration %d: field " #f " differs", iter)
#define STR(f) ck_assert_msg(strcmp(a->f, ex->f) == 0, "iteration %d: " #f " %s != %s", iter, \
                             a->f, ex->f)
    EQ(arch); EQ(vocab_size); EQ(d_model); EQ(n_heads); EQ(n_kv_heads); EQ(head_dim); EQ(d_ff);
    EQ(max_seq_len); EQ(n_layers); EQ(n_encoder_layers); EQ(positional); EQ(rope_theta);
    EQ(embed_scale); EQ(norm); EQ(norm_eps); EQ(norm_position); EQ(final_norm); EQ(mlp);
    EQ(bias); EQ(lm_head); STR(weights); EQ(has_tokenizer);
    if (ex->has_tokenizer) {
        EQ(tokenizer.type); STR(tokenizer.path); EQ(tokenizer.lowercase);
        STR(tokenizer.unk); EQ(tokenizer.has_bos); EQ(tokenizer.has_eos);
        STR(tokenizer.bos); STR(tokenizer.eos); EQ(tokenizer.eos_not_added);
        EQ(tokenizer.special_off); EQ(tokenizer.n_special);
        for (int i = 0; i < ex->tokenizer.n_special; i++) STR(tokenizer.special[i]);
    }
#undef EQ
#undef STR
}

START_TEST(random_valid_configs) {
    rng r = {0x9E3779B97F4A7C15ull};
    for (int iter = 0; iter < 3000; iter++) {
        attn_config ex, got;
        cJSON *root = random_config(&r, &ex);
        char *s = (iter % 2) ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
        ck_assert_ptr_nonnull(s);
        attn_error err = {0};
        memset(&got, iter & 0xff, sizeof got);
        int rc = attn_config_parse(&got, s, strlen(s), NAME, NULL, &err);
        ck_assert_msg(rc == ATTN_OK, "iteration %d refused: %s\n%s", iter, err.message, s);
        assert_same_config(&got, &ex, iter);
        /* the same config with one random member removed or renamed: refused
         * when the member was required, a renamed key always */
        cJSON *victim = root->child;
        int pick = rng_int(&r, 0, cJSON_GetArraySize(root) - 1);
        for (int i = 0; i < pick; i++) victim = victim->next;
        char key[64];
        snprintf(key, sizeof key, "%s", victim->string);
        cJSON *moved = cJSON_DetachItemViaPointer(root, victim);
        char typo[80];
        snprintf(typo, sizeof typo, "%sx", key);
        cJSON_AddItemToObject(root, typo, moved);
        cJSON_free(s);
        s = cJSON_PrintUnformatted(root);
        rc = attn_config_parse(&got, s, strlen(s), NAME, NULL, &err);
        char needle[96];
        snprintf(needle, sizeof needle, "unknown key \"%s\"", typo);
        ck_assert_msg(rc == ATTN_ERR_FORMAT && strstr(err.message, needle),
                      "iteration %d: renamed %s: rc %d: %s", iter, key, rc, err.message);
        cJSON_free(s);
        cJSON_Delete(root);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Limits (docs/model-format.md, "Limits"): the numbers are the table's.     */

/* Each integer key at its documented cap is accepted, one more is refused
 * with a message naming the key and the limit. `setup` makes the other keys
 * fit (the implied tensors stay under 2^31 elements). */
START_TEST(key_limits) {
    static const struct {
        const char *key;
        int cap;
        const char *setup; /* "k=v,k=v" numeric keys set first; "encdec" for n_encoder_layers */
    } cases[] = {
        {"vocab_size", 1048576, ""},
        {"d_model", 65536, "n_heads=4,head_dim=2,d_ff=8"},
        {"n_heads", 4096, "head_dim=2,n_kv_heads=1"},
        {"n_kv_heads", 4096, "n_heads=4096,head_dim=2"},
        {"head_dim", 65536, "n_heads=1"},
        {"d_ff", 1048576, ""},
        {"max_seq_len", 1048576, ""},
        {"n_layers", 4096, ""},
        {"n_encoder_layers", 4096, "encdec"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = base_decoder();
        if (strcmp(cases[i].setup, "encdec") == 0) {
            set_str(root, "architecture", "encoder-decoder");
        } else if (cases[i].setup[0]) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", cases[i].setup);
            for (char *kv = strtok(buf, ","); kv; kv = strtok(NULL, ",")) {
                char *eq = strchr(kv, '=');
                *eq = '\0';
                set_num(root, kv, atof(eq + 1));
            }
        }
        attn_config cfg;
        set_num(root, cases[i].key, cases[i].cap);
        ACCEPTED_OBJ(root, &cfg);
        set_num(root, cases[i].key, cases[i].cap + 1.0);
        char want[160], num[96];
        snprintf(want, sizeof want, "key \"%s\"", cases[i].key);
        snprintf(num, sizeof num, "%d is more than the limit of %d", cases[i].cap + 1,
                 cases[i].cap);
        REFUSED_OBJ(root, want, num);
        cJSON_Delete(root);
    }
}
END_TEST

/* A config file over 1 MiB: a sparse 20 MB one is refused by its size
 * (never read), one of exactly 1 MiB is read. */
START_TEST(config_file_limit) {
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    tu_write_text(dir, "model.safetensors", "not checked here");
    cJSON *root = base_decoder();
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t jl = strlen(json);
    const size_t sizes[] = {1048576, 1048577, 20u << 20};
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(json, 1, jl, f), jl);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(truncate(path, (off_t)sizes[k]), 0); /* NUL bytes after the JSON */
        attn_config cfg;
        attn_error err = {0};
        int rc = attn_config_load(&cfg, path, &err);
        ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
        ck_assert_msg(!strchr(err.message, '\n'), "%s", err.message);
        if (k == 0) { /* read: the NULs are refused as JSON, not as size */
            ck_assert_msg(!strstr(err.message, "limit"), "%s", err.message);
        } else {
            char want[800];
            snprintf(want, sizeof want, "%s: file is %zu bytes, more than the 1 MiB limit of a "
                                        "config (1048576 bytes)",
                     path, sizes[k]);
            ck_assert_str_eq(err.message, want);
        }
    }
    /* a pipe has no size: refused while reading, naming the limit too */
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *w = fopen(path, "wb");
        if (!w) _exit(1);
        static char zeros[1 << 16];
        for (int i = 0; i < 17 * 16 + 1; i++)
            if (fwrite(zeros, 1, sizeof zeros, w) != sizeof zeros) break;
        fclose(w);
        _exit(0);
    }
    attn_config cfg;
    attn_error err = {0};
    ck_assert_int_eq(attn_config_load(&cfg, path, &err), ATTN_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want,
             "%s: more than the 1 MiB limit of a config (1048576 bytes)", path);
    ck_assert_str_eq(err.message, want);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(json);
    tu_rm_tree(dir);
}
END_TEST

/* The weights a config implies, counted by hand from docs/model-format.md,
 * "Tensor names". */
START_TEST(implied_weight_count) {
    attn_config cfg;
    cJSON *root = base_decoder();
    ACCEPTED_OBJ(root, &cfg);
    /* tok_embed 37*96 = 3552; a block: attn_norm 96, q k v o 4*96*96 = 36864,
     * mlp_norm 96, up gate down 3*200*96 = 57600: 94656, three of them
     * 283968; the final norm 96 */
    ck_assert_uint_eq(attn_config_weight_count(&cfg), 3552 + 283968 + 96);
    /* learned positions, layernorm, biases, grouped kv heads (2 of 16),
     * gelu, a separate head, an encoder-decoder with embedding norms and
     * post norms (no final norm) */
    set_str(root, "architecture", "encoder-decoder");
    set_num(root, "n_encoder_layers", 2);
    set_num(root, "n_layers", 1);
    set_num(root, "n_kv_heads", 2);
    set_str(root, "positional", "learned");
    set_str(root, "norm", "layernorm");
    set_str(root, "norm_position", "post");
    set_str(root, "mlp", "gelu");
    set_bool(root, "bias", true);
    set_bool(root, "embed_norm", true);
    set_str(root, "lm_head", "separate");
    ACCEPTED_OBJ(root, &cfg);
    /* tok_embed 3552, pos_embed 33*96 = 3168; norm 192; attention q 9216 +
     * k, v 2*32*96 = 6144 + o 9216 + biases 96+32+32+96 = 24832; mlp
     * 2*19200 + 200 + 96 = 38696; decoder block 3*192 + 2*24832 + 38696 =
     * 88936 (+ embed_norm 192); encoder block 2*192 + 24832 + 38696 = 63912,
     * two of them + embed_norm 192 = 128016; lm_head 3552 */
    ck_assert_uint_eq(attn_config_weight_count(&cfg),
                      3552 + 3168 + 88936 + 192 + 128016 + 3552);
    cJSON_Delete(root);
}
END_TEST

/* Every bundled model: the count equals the elements its file holds. */
START_TEST(implied_weight_count_bundled) {
    static const char *const models[] = {"tiny-decoder", "tiny-encoder", "tiny-translator"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/models/%s/config.json", ATTN_SOURCE_ROOT, models[i]);
        attn_config cfg;
        attn_error err = {0};
        ck_assert_msg(attn_config_load(&cfg, path, &err) == ATTN_OK, "%s", err.message);
        attn_safetensors *st = NULL;
        ck_assert_msg(attn_safetensors_open(&st, cfg.weights, &err) == ATTN_OK, "%s",
                      err.message);
        uint64_t sum = 0;
        for (size_t k = 0; k < attn_safetensors_count(st); k++)
            sum += attn_safetensors_at(st, k)->numel;
        ck_assert_uint_eq(attn_config_weight_count(&cfg), sum);
        attn_safetensors_close(st);
    }
}
END_TEST

/* Sizes that multiply past the weights file: refused by attn_model_open
 * before the file is read. */
START_TEST(implied_weights_over_file) {
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    cJSON *root = base_decoder();
    set_num(root, "vocab_size", 1048576);
    set_num(root, "d_model", 2048);
    set_num(root, "n_heads", 16);
    set_num(root, "d_ff", 8192);
    set_num(root, "n_layers", 64);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    tu_write_text(dir, "config.json", json);
    free(json);
    /* 1 MiB of weights file for 2^31 + 64 * (4 * 2^22 + 3 * 2^24 + 2 * 2048) + 2048 weights */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_write_file(path, "x", 1);
    ck_assert_int_eq(truncate(path, 1 << 20), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    attn_model *m = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_model_open(&m, path, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(m);
    const uint64_t n = ((uint64_t)1 << 31) + 64 * (4 * ((uint64_t)1 << 22) +
                                                  3 * ((uint64_t)1 << 24) + 2 * 2048) + 2048;
    char want[1024];
    snprintf(want, sizeof want,
             "%s: the config implies %llu weights, at least %llu bytes even as F16, but the "
             "weights file %s/model.safetensors has only 1048576 bytes",
             path, (unsigned long long)n, (unsigned long long)(2 * n), dir);
    ck_assert_str_eq(err.message, want);
    tu_rm_tree(dir);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, decoder_all_keys);
    tcase_add_test(tc, decoder_defaults);
    tcase_add_test(tc, encoder_word_tokenizer);
    tcase_add_test(tc, encoder_decoder_llama2c);
    tcase_add_test(tc, gpt2_hf_tokenizer_keys);
    tcase_add_test(tc, mlp_none_without_d_ff);
    tcase_add_test(tc, integral_forms_and_bounds);
    tcase_add_test(tc, enum_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_test(tc, unknown_keys);
    tcase_add_test(tc, duplicate_keys);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, bad_integers);
    tcase_add_test(tc, bad_numbers);
    tcase_add_test(tc, bad_enums);
    tcase_add_test(tc, bad_format);
    tcase_add_test(tc, missing_required);
    tcase_add_test(tc, encoder_layers_by_architecture);
    tcase_add_test(tc, kv_heads);
    tcase_add_test(tc, head_dim_rules);
    tcase_add_test(tc, rope_theta_rules);
    tcase_add_test(tc, size_limits);
    tcase_add_test(tc, token_strings);
    tcase_add_test(tc, special_token_keys);
    tcase_add_test(tc, not_an_object);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, malformed_json);
    tcase_add_test(tc, nul_escapes);
    tcase_add_test(tc, truncated_json);
    tcase_add_test(tc, unterminated_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, paths_with_base_dir);
    tcase_add_test(tc, load_resolves_paths);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, key_limits);
    tcase_add_test(tc, config_file_limit);
    tcase_add_test(tc, implied_weight_count);
    tcase_add_test(tc, implied_weight_count_bundled);
    tcase_add_test(tc, implied_weights_over_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_add_test(tc, random_valid_configs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(config_suite()); }
