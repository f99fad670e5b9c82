/* JSON config -> struct attn_config, with all validation. The keys, their
 * types and defaults are those of docs/model-format.md, "Config keys".
 *
 * The parser is strict on purpose: every key is checked for type and range,
 * unknown keys (typos) and duplicate keys are refused by name, and the
 * config's implied tensor sizes are bounded before anyone allocates them.
 * Every message starts with "NAME: " and names the key at fault. */
#include "base/json.h"
#include "base/util.h"
#include "model/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* Enum names: the index is the enum value.                                  */

static const char *const arch_names[] = {"decoder", "encoder", "encoder-decoder"};
static const char *const positional_names[] = {"learned", "sinusoidal", "rope", "none"};
static const char *const norm_names[] = {"layernorm", "rmsnorm"};
static const char *const norm_position_names[] = {"pre", "post"};
static const char *const mlp_names[] = {"relu", "gelu", "gelu_tanh", "swiglu", "none"};
static const char *const lm_head_names[] = {"none", "tied", "separate"};
static const char *const tokenizer_type_names[] = {"word", "llama2c", "gpt2", "hf"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *enum_name(const char *const *names, size_t n, int v) {
    return v >= 0 && (size_t)v < n ? names[v] : "unknown";
}

bool attn_arch_causal(attn_arch a) { return a != ATTN_ARCH_ENCODER; }

const char *attn_arch_name(attn_arch a) { return enum_name(arch_names, COUNT(arch_names), (int)a); }
const char *attn_positional_name(attn_positional p) {
    return enum_name(positional_names, COUNT(positional_names), (int)p);
}
const char *attn_norm_name(attn_norm_kind n) {
    return enum_name(norm_names, COUNT(norm_names), (int)n);
}
const char *attn_mlp_name(attn_mlp_kind m) { return enum_name(mlp_names, COUNT(mlp_names), (int)m); }
const char *attn_lm_head_name(attn_lm_head h) {
    return enum_name(lm_head_names, COUNT(lm_head_names), (int)h);
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */

enum {
    K_FORMAT, K_ARCHITECTURE, K_VOCAB_SIZE, K_D_MODEL, K_N_HEADS, K_N_KV_HEADS, K_HEAD_DIM,
    K_D_FF, K_MAX_SEQ_LEN, K_N_LAYERS, K_N_ENCODER_LAYERS, K_POSITIONAL, K_ROPE_THETA,
    K_EMBED_SCALE, K_NORM, K_NORM_EPS, K_NORM_POSITION, K_FINAL_NORM, K_MLP, K_BIAS, K_LM_HEAD,
    K_WEIGHTS, K_TOKENIZER, K_EMBED_NORM, K_COUNT
};
static const char *const top_keys[K_COUNT] = {
    "format", "architecture", "vocab_size", "d_model", "n_heads", "n_kv_heads", "head_dim",
    "d_ff", "max_seq_len", "n_layers", "n_encoder_layers", "positional", "rope_theta",
    "embed_scale", "norm", "norm_eps", "norm_position", "final_norm", "mlp", "bias", "lm_head",
    "weights", "tokenizer", "embed_norm",
};

enum {
    T_TYPE, T_VOCAB, T_LOWERCASE, T_UNK, T_BOS, T_EOS, T_PATH, T_SPECIAL, T_SPECIAL_TOKENS,
    T_ADD_EOS, T_MERGES, T_COUNT
};
static const char *const tok_keys[T_COUNT] = {"type", "vocab", "lowercase", "unk", "bos", "eos",
                                              "path", "special", "special_tokens", "add_eos",
                                              "merges"};

/* Parsing context: what messages are prefixed with, where paths resolve. */
typedef struct ctx {
    const char *name;     /* the buffer's name */
    const char *base_dir; /* NULL: keep paths as written, check no file */
    attn_error *err;
} ctx;

static int fail(const ctx *c, const char *fmt, ...) ATTN_PRINTF(2, 3);
static int fail(const ctx *c, const char *fmt, ...) {
    char msg[ATTN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return attn_error_set(c->err, ATTN_ERR_FORMAT, "%s: %s", c->name, msg);
}

/* A number as short as possible but never misleading (1.0000000000000002
 * must not print as "1"). */
static void format_number(char *buf, size_t cap, double x) {
    snprintf(buf, cap, "%.15g", x);
    if (strtod(buf, NULL) != x) snprintf(buf, cap, "%.17g", x);
}

/* ------------------------------------------------------------------------ */
/* Did-you-mean                                                              */

/* Levenshtein distance, case-insensitive; strings longer than 63 bytes get a
 * large distance (no suggestion). */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'A' && ca <= 'Z') ca += 'a' - 'A';
            if (cb >= 'A' && cb <= 'Z') cb += 'a' - 'A';
            size_t best = diag + (ca != cb);
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            if (up + 1 < best) best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known key, or NULL when none is close enough to be a typo. */
static const char *suggest(const char *key, const char *const *known, size_t n) {
    const char *best = NULL;
    size_t best_d = 3; /* at most 2 edits */
    size_t len = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, known[i]);
        if (d < best_d && d < len) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

/* Files the members of object `obj` under their key's index in `known`;
 * refuses unknown and duplicate keys. `prefix` ("" or "tokenizer.") is
 * how keys are named in messages. */
static int collect_keys(const ctx *c, const cJSON *obj, const char *prefix,
                        const char *const *known, size_t n, const cJSON **slots) {
    for (size_t i = 0; i < n; i++) slots[i] = NULL;
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        size_t k = 0;
        while (k < n && strcmp(key, known[k]) != 0) k++;
        if (k == n) {
            const char *s = suggest(key, known, n);
            if (s)
                return fail(c, "unknown key \"%s%.100s\" (did you mean \"%s%s\"?)", prefix, key,
                            prefix, s);
            bool tok_key = false;
            for (size_t t = 0; t < T_COUNT; t++) tok_key |= strcmp(key, tok_keys[t]) == 0;
            if (!prefix[0] && tok_key)
                return fail(c, "unknown key \"%.100s\" (tokenizer keys go inside \"tokenizer\")",
                            key);
            return fail(c, "unknown key \"%s%.100s\"", prefix, key);
        }
        if (slots[k]) return fail(c, "duplicate key \"%s%s\"", prefix, known[k]);
        slots[k] = it;
    }
    return ATTN_OK;
}

/* ------------------------------------------------------------------------ */
/* Typed getters: each names the key on failure.                             */

static int get_int(const ctx *c, const cJSON *v, const char *key, int *out) {
    if (!cJSON_IsNumber(v))
        return fail(c, "key \"%s\": expected a positive integer, got %s", key,
                    attn_json_type(v, true));
    double x = v->valuedouble;
    char num[64];
    format_number(num, sizeof num, x);
    if (!isfinite(x) || x != floor(x))
        return fail(c, "key \"%s\": expected a positive integer, got %s", key, num);
    if (x < 1) return fail(c, "key \"%s\": expected a positive integer, got %s", key, num);
    const int max = attn_config_key_max(key);
    if (x > max)
        return fail(c, "key \"%s\": %s is more than the limit of %d for %s", key, num, max, key);
    *out = (int)x;
    return ATTN_OK;
}

/* A finite number > 0. */
static int get_positive(const ctx *c, const cJSON *v, const char *key, double *out) {
    if (!cJSON_IsNumber(v))
        return fail(c, "key \"%s\": expected a positive number, got %s", key,
                    attn_json_type(v, true));
    double x = v->valuedouble;
    char num[64];
    format_number(num, sizeof num, x);
    if (!isfinite(x)) return fail(c, "key \"%s\": expected a finite number, got %s", key, num);
    if (!(x > 0)) return fail(c, "key \"%s\": expected a number > 0, got %s", key, num);
    *out = x;
    return ATTN_OK;
}

static int get_bool(const ctx *c, const cJSON *v, const char *key, bool *out) {
    if (!cJSON_IsBool(v))
        return fail(c, "key \"%s\": expected true or false, got %s", key, attn_json_type(v, true));
    *out = cJSON_IsTrue(v);
    return ATTN_OK;
}

static int get_enum(const ctx *c, const cJSON *v, const char *key, const char *const *names,
                    size_t n, int *out) {
    char allowed[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof allowed; i++) {
        int w = snprintf(allowed + used, sizeof allowed - used, "%s\"%s\"", i ? ", " : "",
                         names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (!cJSON_IsString(v))
        return fail(c, "key \"%s\": expected one of %s, got %s", key, allowed,
                    attn_json_type(v, true));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v->valuestring, names[i]) == 0) {
            *out = (int)i;
            return ATTN_OK;
        }
    }
    return fail(c, "key \"%s\": unknown value \"%.100s\" (expected one of %s)", key,
                v->valuestring, allowed);
}

/* A non-empty string that fits in cap bytes with its NUL. */
static int get_string(const ctx *c, const cJSON *v, const char *key, char *out, size_t cap) {
    if (!cJSON_IsString(v) || !v->valuestring)
        return fail(c, "key \"%s\": expected a string, got %s", key, attn_json_type(v, true));
    size_t len = strlen(v->valuestring);
    if (len == 0) return fail(c, "key \"%s\": must not be empty", key);
    if (len >= cap)
        return fail(c, "key \"%s\": is %zu bytes long (at most %zu)", key, len, cap - 1);
    memcpy(out, v->valuestring, len + 1);
    return ATTN_OK;
}

/* A path, resolved against c->base_dir and checked to be a regular file
 * there; kept as written when c->base_dir is NULL. */
static int get_path(const ctx *c, const cJSON *v, const char *key, char out[ATTN_PATH_MAX]) {
    char rel[ATTN_PATH_MAX];
    int rc = get_string(c, v, key, rel, sizeof rel);
    if (rc) return rc;
    if (!c->base_dir) {
        memcpy(out, rel, strlen(rel) + 1);
        return ATTN_OK;
    }
    attn_error tmp;
    if (attn_path_join(out, ATTN_PATH_MAX, c->base_dir, rel, &tmp) != ATTN_OK)
        return fail(c, "key \"%s\": path \"%.200s\" joined to folder \"%.200s\" is longer than %d "
                       "bytes",
                    key, rel, c->base_dir, ATTN_PATH_MAX - 1);
    struct stat st;
    if (stat(out, &st) != 0)
        return fail(c, "key \"%s\": file %.900s does not exist or cannot be reached", key, out);
    if (!S_ISREG(st.st_mode))
        return fail(c, "key \"%s\": %.900s is not a regular file", key, out);
    return ATTN_OK;
}

/* A token string of the word tokenizer: non-empty, short, one line. */
static int get_token(const ctx *c, const cJSON *v, const char *key, char out[ATTN_TOKEN_MAX]) {
    int rc = get_string(c, v, key, out, ATTN_TOKEN_MAX);
    if (rc) return rc;
    if (strpbrk(out, "\n\r"))
        return fail(c, "key \"%s\": a token cannot contain a line break (the vocabulary has one "
                       "token per line)",
                    key);
    return ATTN_OK;
}

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                  */

/* "special": an array of distinct tokens (the tokenizer checks that they
 * are in the vocabulary). */
static int get_special(const ctx *c, const cJSON *v, attn_tokenizer_config *tc) {
    if (!cJSON_IsArray(v))
        return fail(c, "key \"tokenizer.special\": expected an array of tokens, got %s",
                    attn_json_type(v, true));
    tc->n_special = 0;
    for (const cJSON *it = v->child; it; it = it->next) {
        if (tc->n_special == ATTN_SPECIAL_MAX)
            return fail(c, "key \"tokenizer.special\": more than %d tokens", ATTN_SPECIAL_MAX);
        char key[64];
        snprintf(key, sizeof key, "tokenizer.special[%d]", tc->n_special);
        char *t = tc->special[tc->n_special];
        int rc = get_token(c, it, key, t);
        if (rc) return rc;
        if (strpbrk(t, " \t\v\f"))
            return fail(c, "key \"%s\": a token cannot contain white space (the vocabulary has "
                           "none)",
                        key);
        for (int o = 0; o < tc->n_special; o++)
            if (strcmp(tc->special[o], t) == 0)
                return fail(c, "key \"%s\": \"%.100s\" is listed twice (also at [%d])", key, t,
                            o);
        tc->n_special++;
    }
    return ATTN_OK;
}

static int parse_tokenizer(const ctx *c, const cJSON *obj, attn_tokenizer_config *tc) {
    if (!cJSON_IsObject(obj))
        return fail(c, "key \"tokenizer\": expected an object, got %s", attn_json_type(obj, true));
    const cJSON *k[T_COUNT];
    int rc = collect_keys(c, obj, "tokenizer.", tok_keys, T_COUNT, k);
    if (rc) return rc;
    if (!k[T_TYPE]) return fail(c, "missing required key \"tokenizer.type\"");
    int type = 0;
    rc = get_enum(c, k[T_TYPE], "tokenizer.type", tokenizer_type_names,
                  COUNT(tokenizer_type_names), &type);
    if (rc) return rc;
    tc->type = (attn_tokenizer_type)type;

    /* keys of the other type */
    static const bool used_by[4][T_COUNT] = {
        /* type vocab lowercase unk bos eos path special special_tokens add_eos merges */
        {true, true, true, true, true, true, false, true, true, true, false},        /* word */
        {true, false, false, false, false, false, true, false, false, false, false}, /* llama2c */
        {true, true, false, false, false, false, false, false, false, false, true},  /* gpt2 */
        {true, false, false, false, false, false, true, false, false, false, false}, /* hf */
    };
    static const char *const type_keys[4] = {
        "type, vocab, lowercase, unk, bos, eos, add_eos, special, special_tokens", "type, path",
        "type, vocab, merges", "type, path"};
    for (int i = 0; i < T_COUNT; i++) {
        if (k[i] && !used_by[type][i])
            return fail(c, "key \"tokenizer.%s\" does not belong to tokenizer type \"%s\" "
                           "(its keys: %s)",
                        tok_keys[i], tokenizer_type_names[type], type_keys[type]);
    }

    if (tc->type == ATTN_TOKENIZER_LLAMA2C || tc->type == ATTN_TOKENIZER_HF) {
        if (!k[T_PATH]) return fail(c, "missing required key \"tokenizer.path\"");
        return get_path(c, k[T_PATH], "tokenizer.path", tc->path);
    }
    if (tc->type == ATTN_TOKENIZER_GPT2) {
        if (!k[T_VOCAB]) return fail(c, "missing required key \"tokenizer.vocab\"");
        if (!k[T_MERGES]) return fail(c, "missing required key \"tokenizer.merges\"");
        if ((rc = get_path(c, k[T_VOCAB], "tokenizer.vocab", tc->path))) return rc;
        return get_path(c, k[T_MERGES], "tokenizer.merges", tc->merges);
    }

    if (!k[T_VOCAB]) return fail(c, "missing required key \"tokenizer.vocab\"");
    if ((rc = get_path(c, k[T_VOCAB], "tokenizer.vocab", tc->path))) return rc;
    tc->lowercase = false;
    if (k[T_LOWERCASE] && (rc = get_bool(c, k[T_LOWERCASE], "tokenizer.lowercase", &tc->lowercase)))
        return rc;
    if (!k[T_UNK]) return fail(c, "missing required key \"tokenizer.unk\"");
    if ((rc = get_token(c, k[T_UNK], "tokenizer.unk", tc->unk))) return rc;
    if (k[T_BOS] && !cJSON_IsNull(k[T_BOS])) {
        if ((rc = get_token(c, k[T_BOS], "tokenizer.bos", tc->bos))) return rc;
        tc->has_bos = true;
    }
    if (k[T_EOS] && !cJSON_IsNull(k[T_EOS])) {
        if ((rc = get_token(c, k[T_EOS], "tokenizer.eos", tc->eos))) return rc;
        tc->has_eos = true;
    }
    if (k[T_ADD_EOS]) {
        bool add = true;
        if ((rc = get_bool(c, k[T_ADD_EOS], "tokenizer.add_eos", &add))) return rc;
        if (!tc->has_eos)
            return fail(c, "key \"tokenizer.add_eos\" needs an end-of-sequence token "
                           "(\"tokenizer.eos\" is null or absent)");
        tc->eos_not_added = !add;
    }
    if (k[T_SPECIAL_TOKENS]) {
        bool on = true;
        if ((rc = get_bool(c, k[T_SPECIAL_TOKENS], "tokenizer.special_tokens", &on))) return rc;
        tc->special_off = !on;
    }
    return k[T_SPECIAL] ? get_special(c, k[T_SPECIAL], tc) : ATTN_OK;
}

/* ------------------------------------------------------------------------ */
/* Whole config                                                               */

/* a * b elements, refused when over ATTN_CONFIG_ELEMS_MAX. */
static int check_elems(const ctx *c, const char *what, uint64_t a, uint64_t b, uint64_t *out) {
    return attn_check_elems(c->err, c->name, what, a, b, out);
}

/* Files the top-level members; refuses a missing required key and a format
 * other than "attn/1". */
static int parse_keys(const ctx *c, const cJSON *root, const cJSON *k[K_COUNT]) {
    if (!cJSON_IsObject(root))
        return fail(c, "expected a JSON object at the top level, got %s",
                    attn_json_type(root, true));
    int rc = collect_keys(c, root, "", top_keys, K_COUNT, k);
    if (rc) return rc;

    /* required keys, in the order of the table in docs/model-format.md */
    static const int required[] = {K_FORMAT,    K_ARCHITECTURE, K_VOCAB_SIZE, K_D_MODEL,
                                   K_N_HEADS,   K_MAX_SEQ_LEN,  K_N_LAYERS,   K_POSITIONAL,
                                   K_NORM,      K_NORM_POSITION, K_MLP,       K_BIAS,
                                   K_LM_HEAD,   K_WEIGHTS};
    for (size_t i = 0; i < COUNT(required); i++)
        if (!k[required[i]]) return fail(c, "missing required key \"%s\"", top_keys[required[i]]);

    if (!cJSON_IsString(k[K_FORMAT]) || strcmp(k[K_FORMAT]->valuestring, "attn/1") != 0) {
        if (cJSON_IsString(k[K_FORMAT]))
            return fail(c, "key \"format\": expected \"attn/1\", got \"%.100s\"",
                        k[K_FORMAT]->valuestring);
        return fail(c, "key \"format\": expected \"attn/1\", got %s",
                    attn_json_type(k[K_FORMAT], true));
    }
    return ATTN_OK;
}

/* architecture, positional, norm, norm_position, mlp, lm_head */
static int parse_enums(const ctx *c, const cJSON *const k[K_COUNT], attn_config *cfg) {
    int e = 0, rc;
    if ((rc = get_enum(c, k[K_ARCHITECTURE], "architecture", arch_names, COUNT(arch_names), &e)))
        return rc;
    cfg->arch = (attn_arch)e;
    if ((rc = get_enum(c, k[K_POSITIONAL], "positional", positional_names,
                       COUNT(positional_names), &e)))
        return rc;
    cfg->positional = (attn_positional)e;
    if ((rc = get_enum(c, k[K_NORM], "norm", norm_names, COUNT(norm_names), &e))) return rc;
    cfg->norm = (attn_norm_kind)e;
    if ((rc = get_enum(c, k[K_NORM_POSITION], "norm_position", norm_position_names,
                       COUNT(norm_position_names), &e)))
        return rc;
    cfg->norm_position = (attn_norm_position)e;
    if ((rc = get_enum(c, k[K_MLP], "mlp", mlp_names, COUNT(mlp_names), &e))) return rc;
    cfg->mlp = (attn_mlp_kind)e;
    if ((rc = get_enum(c, k[K_LM_HEAD], "lm_head", lm_head_names, COUNT(lm_head_names), &e)))
        return rc;
    cfg->lm_head = (attn_lm_head)e;
    return ATTN_OK;
}

/* The integer sizes: the required ones, d_ff (unless mlp is "none"),
 * n_encoder_layers (encoder-decoder only), n_kv_heads and head_dim with
 * their defaults. */
static int parse_sizes(const ctx *c, const cJSON *const k[K_COUNT], attn_config *cfg) {
    int rc;
    if ((rc = get_int(c, k[K_VOCAB_SIZE], "vocab_size", &cfg->vocab_size))) return rc;
    if ((rc = get_int(c, k[K_D_MODEL], "d_model", &cfg->d_model))) return rc;
    if ((rc = get_int(c, k[K_N_HEADS], "n_heads", &cfg->n_heads))) return rc;
    if ((rc = get_int(c, k[K_MAX_SEQ_LEN], "max_seq_len", &cfg->max_seq_len))) return rc;
    if ((rc = get_int(c, k[K_N_LAYERS], "n_layers", &cfg->n_layers))) return rc;

    if (k[K_D_FF]) {
        if ((rc = get_int(c, k[K_D_FF], "d_ff", &cfg->d_ff))) return rc;
    } else if (cfg->mlp != ATTN_MLP_NONE) {
        return fail(c, "missing required key \"d_ff\" (needed by mlp \"%s\")",
                    mlp_names[cfg->mlp]);
    }

    if (cfg->arch == ATTN_ARCH_ENCODER_DECODER) {
        if (!k[K_N_ENCODER_LAYERS])
            return fail(c, "missing required key \"n_encoder_layers\" (needed by architecture "
                           "\"encoder-decoder\")");
        if ((rc = get_int(c, k[K_N_ENCODER_LAYERS], "n_encoder_layers", &cfg->n_encoder_layers)))
            return rc;
    } else if (k[K_N_ENCODER_LAYERS]) {
        return fail(c, "key \"n_encoder_layers\" is only for architecture \"encoder-decoder\", "
                       "not \"%s\"",
                    arch_names[cfg->arch]);
    }

    cfg->n_kv_heads = cfg->n_heads;
    if (k[K_N_KV_HEADS] && (rc = get_int(c, k[K_N_KV_HEADS], "n_kv_heads", &cfg->n_kv_heads)))
        return rc;
    if (cfg->n_kv_heads > cfg->n_heads)
        return fail(c, "key \"n_kv_heads\": %d is more than n_heads %d", cfg->n_kv_heads,
                    cfg->n_heads);
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return fail(c, "key \"n_heads\": %d is not divisible by n_kv_heads %d", cfg->n_heads,
                    cfg->n_kv_heads);

    if (k[K_HEAD_DIM]) return get_int(c, k[K_HEAD_DIM], "head_dim", &cfg->head_dim);
    if (cfg->d_model % cfg->n_heads != 0)
        return fail(c, "key \"d_model\": %d is not divisible by n_heads %d (or give "
                       "\"head_dim\" explicitly)",
                    cfg->d_model, cfg->n_heads);
    cfg->head_dim = cfg->d_model / cfg->n_heads;
    return ATTN_OK;
}

/* rope_theta, and the even widths rope and sinusoidal positions need. */
static int parse_positions(const ctx *c, const cJSON *const k[K_COUNT], attn_config *cfg) {
    int rc;
    cfg->rope_theta = 10000.0;
    if (k[K_ROPE_THETA]) {
        if (cfg->positional != ATTN_POS_ROPE)
            return fail(c, "key \"rope_theta\" is only for positional \"rope\", not \"%s\"",
                        positional_names[cfg->positional]);
        if ((rc = get_positive(c, k[K_ROPE_THETA], "rope_theta", &cfg->rope_theta))) return rc;
    }
    if (cfg->positional == ATTN_POS_ROPE && cfg->head_dim % 2 != 0)
        return fail(c, "key \"head_dim\": %d is odd, but positional \"rope\" rotates pairs and "
                       "needs an even head_dim",
                    cfg->head_dim);
    if (cfg->positional == ATTN_POS_SINUSOIDAL && cfg->d_model % 2 != 0)
        return fail(c, "key \"d_model\": %d is odd, but positional \"sinusoidal\" needs an even "
                       "d_model",
                    cfg->d_model);
    return ATTN_OK;
}

/* embed_scale, norm_eps, final_norm, bias, embed_norm, with their defaults. */
static int parse_numbers_and_flags(const ctx *c, const cJSON *const k[K_COUNT],
                                   attn_config *cfg) {
    int rc;
    cfg->embed_scale = 1.0;
    if (k[K_EMBED_SCALE] && (rc = get_positive(c, k[K_EMBED_SCALE], "embed_scale",
                                               &cfg->embed_scale)))
        return rc;
    cfg->norm_eps = 1e-5;
    if (k[K_NORM_EPS] && (rc = get_positive(c, k[K_NORM_EPS], "norm_eps", &cfg->norm_eps)))
        return rc;
    cfg->final_norm = cfg->norm_position == ATTN_NORM_PRE;
    if (k[K_FINAL_NORM] && (rc = get_bool(c, k[K_FINAL_NORM], "final_norm", &cfg->final_norm)))
        return rc;
    if ((rc = get_bool(c, k[K_BIAS], "bias", &cfg->bias))) return rc;
    cfg->embed_norm = false;
    if (k[K_EMBED_NORM] && (rc = get_bool(c, k[K_EMBED_NORM], "embed_norm", &cfg->embed_norm)))
        return rc;
    return ATTN_OK;
}

/* Every tensor and row the config implies stays under 2^31 elements (each
 * factor is already at most 2^24). */
static int check_implied_sizes(const ctx *c, const attn_config *cfg) {
    uint64_t q_dim = 0, kv_dim = 0;
    int rc;
    if ((rc = check_elems(c, "vocab_size * d_model", (uint64_t)cfg->vocab_size,
                          (uint64_t)cfg->d_model, NULL)) ||
        (rc = check_elems(c, "max_seq_len * d_model", (uint64_t)cfg->max_seq_len,
                          (uint64_t)cfg->d_model, NULL)) ||
        (rc = check_elems(c, "n_heads * head_dim", (uint64_t)cfg->n_heads,
                          (uint64_t)cfg->head_dim, &q_dim)) ||
        (rc = check_elems(c, "n_kv_heads * head_dim", (uint64_t)cfg->n_kv_heads,
                          (uint64_t)cfg->head_dim, &kv_dim)) ||
        (rc = check_elems(c, "n_heads * head_dim * d_model", q_dim, (uint64_t)cfg->d_model,
                          NULL)) ||
        (rc = check_elems(c, "n_kv_heads * head_dim * d_model", kv_dim, (uint64_t)cfg->d_model,
                          NULL)) ||
        (rc = check_elems(c, "d_ff * d_model", (uint64_t)cfg->d_ff, (uint64_t)cfg->d_model,
                          NULL)))
        return rc;
    return ATTN_OK;
}

/* weights and the tokenizer. */
static int parse_files(const ctx *c, const cJSON *const k[K_COUNT], attn_config *cfg) {
    int rc;
    if ((rc = get_path(c, k[K_WEIGHTS], "weights", cfg->weights))) return rc;
    if (k[K_TOKENIZER]) {
        if ((rc = parse_tokenizer(c, k[K_TOKENIZER], &cfg->tokenizer))) return rc;
        cfg->has_tokenizer = true;
    }
    return ATTN_OK;
}

/* The whole config, in the order its checks name keys: the keys present,
 * then the enums (which decide what the rest means), the sizes, the
 * positions, the numbers and flags, the sizes implied, the files. */
static int parse_root(const ctx *c, const cJSON *root, attn_config *cfg) {
    const cJSON *k[K_COUNT];
    int rc;
    if ((rc = parse_keys(c, root, k)) || (rc = parse_enums(c, k, cfg)) ||
        (rc = parse_sizes(c, k, cfg)) || (rc = parse_positions(c, k, cfg)) ||
        (rc = parse_numbers_and_flags(c, k, cfg)) || (rc = check_implied_sizes(c, cfg)) ||
        (rc = parse_files(c, k, cfg)))
        return rc;
    return ATTN_OK;
}

/* Line and column (1-based) of byte `off` of json. */
static void line_col(const char *json, size_t off, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (json[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* cJSON turns the escape \u0000 into a NUL that silently cuts a key or
 * value short ("lm_head\u0000x" would read as "lm_head"): find one in a
 * buffer cJSON accepted. Returns its offset, or len when there is none. */
static size_t find_nul_escape(const char *json, size_t len) {
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            if (json[i] == '"') in_string = true;
        } else if (json[i] == '"') {
            in_string = false;
        } else if (json[i] == '\\' && i + 1 < len) {
            if (json[i + 1] == 'u' && i + 5 < len && memcmp(json + i + 2, "0000", 4) == 0)
                return i;
            i++; /* the escaped character */
        }
    }
    return len;
}

attn_status attn_config_parse(attn_config *cfg, const char *json, size_t len, const char *name,
                      const char *base_dir, attn_error *err) {
    ctx c = {name ? name : "config", base_dir, err};
    if (!cfg) return attn_error_set(err, ATTN_ERR_USAGE, "%s: no config to fill", c.name);
    memset(cfg, 0, sizeof *cfg);
    if (!json || len == 0) return fail(&c, "empty file, expected a JSON object");
    const size_t bom = attn_bom_len(json, len);
    json += bom;
    len -= bom;
    if (len == 0) return fail(&c, "empty file, expected a JSON object");

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
    if (!root) {
        size_t line, col;
        if (off >= len) off = len - 1;
        line_col(json, off, &line, &col);
        /* cJSON reports the last byte when it ran out of input: give the
         * size too, so a truncated file shows as such */
        return fail(&c, "malformed JSON near line %zu, column %zu (byte %zu of %zu)", line, col,
                    off < len ? off + 1 : len, len);
    }
    /* cJSON stops after the first value; anything but white space after it
     * is refused */
    while (off < len && (json[off] == ' ' || json[off] == '\t' || json[off] == '\n' ||
                         json[off] == '\r'))
        off++;
    int rc;
    size_t nul = find_nul_escape(json, off);
    if (off < len) {
        size_t line, col;
        line_col(json, off, &line, &col);
        rc = fail(&c, "malformed JSON: unexpected content after the top-level value at line %zu, "
                      "column %zu (byte %zu)",
                  line, col, off + 1);
    } else if (nul < len) {
        size_t line, col;
        line_col(json, nul, &line, &col);
        rc = fail(&c, "a string contains the escape \\u0000 (NUL) at line %zu, column %zu; "
                      "keys and values cannot contain NUL",
                  line, col);
    } else {
        rc = parse_root(&c, root, cfg);
    }
    cJSON_Delete(root);
    return rc;
}

attn_status attn_config_load(attn_config *cfg, const char *path, attn_error *err) {
    if (!cfg || !path) return attn_error_set(err, ATTN_ERR_USAGE, "attn_config_load: no path");
    char *buf;
    size_t len;
    int rc = attn_read_file(path, ATTN_CONFIG_FILE_MAX, "a config", &buf, &len, err);
    if (rc) return rc;

    char dir[ATTN_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) {
            free(buf);
            return attn_error_set(err, ATTN_ERR_IO, "%s: folder name is longer than %d bytes",
                                  path, ATTN_PATH_MAX - 1);
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    rc = attn_config_parse(cfg, buf, len, path, dir, err);
    free(buf);
    return rc;
}
