/* attn info: what a model is made of. The config's architecture and sizes,
 * the parameter count, the bytes of the weights per dtype, every tensor of
 * the weights file with its shape and dtype, and the tokenizer; readable, or
 * one JSON object (cJSON) with --json. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char info_usage[] =
    "Usage: attn info --config PATH [--json]\n"
    "\n"
    "Shows what a model is made of: its architecture and every size of its config,\n"
    "the number of parameters (exact, and short: 1.2K, 124.4M, 3.5B), the bytes\n"
    "its weights take per dtype as stored in the safetensors file (F32, F16,\n"
    "BF16), every tensor with its shape and dtype, and the tokenizer's kind and\n"
    "vocabulary size. The model is opened and checked as 'attn run' does.\n"
    "\n"
    "  --config PATH   the model's config file, or a folder holding config.json,\n"
    "                  or '-' (standard input; its relative paths are then from\n"
    "                  the current folder)\n"
    "  --json          print one JSON object instead (keys: the config's keys,\n"
    "                  then parameters, parameters_short, weights_bytes,\n"
    "                  tokenizer, tensors; see README.md, \"attn info\")\n"
    "  -h, --help      show this help\n"
    "\n"
    "Parameters: the elements of every tensor of the weights file (a tied lm_head\n"
    "is tok_embed, counted once).\n"
    "\n"
    "Examples:\n"
    "  attn info --config models/tiny-decoder\n"
    "  attn info --config models/tiny-translator/config.json --json\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

/* The dtypes a weights file may hold, in the order they are listed. */
static const attn_dtype dtypes[] = {ATTN_DTYPE_F32, ATTN_DTYPE_F16, ATTN_DTYPE_BF16};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

/* What info reports beyond the config: sums over the tensors. */
typedef struct info_sums {
    uint64_t params;             /* elements of every tensor */
    uint64_t bytes[N_DTYPES];    /* bytes stored per dtype (dtypes[] order) */
    size_t tensors[N_DTYPES];    /* tensors per dtype */
    uint64_t total_bytes;
} info_sums;

/* n in short form: as it is below 1000, else with one decimal and the unit
 * of its power of 1000 (units[0] for thousands, up to units[3]); a value
 * that rounds to 1000 of a unit takes the next one (999950 -> 1.0M). */
static void short_form(uint64_t n, const char *const units[4], char *buf, size_t cap) {
    if (n < 1000) {
        snprintf(buf, cap, "%" PRIu64, n);
        return;
    }
    double v = (double)n / 1000;
    size_t u = 0;
    while (v >= 999.95 && u < 3) {
        v /= 1000;
        u++;
    }
    snprintf(buf, cap, "%.1f%s", v, units[u]);
}

/* A count: 1234 -> "1.2K", 124439808 -> "124.4M", 3.5e9 -> "3.5B". */
static void short_count(uint64_t n, char *buf, size_t cap) {
    static const char *const units[4] = {"K", "M", "B", "T"};
    short_form(n, units, buf, cap);
}

/* Bytes in decimal units: "512 bytes", "457.7 kB", "1.2 GB". */
static void short_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *const units[4] = {" kB", " MB", " GB", " TB"};
    short_form(n, units, buf, cap);
    if (n < 1000) snprintf(buf, cap, "%" PRIu64 " bytes", n);
}

/* Adds up the elements and the stored bytes of every tensor; a sum that
 * would overflow 64 bits is refused (no valid file comes near). */
static attn_status sum_tensors(const attn_safetensors *st, info_sums *s, attn_error *err) {
    *s = (info_sums){0};
    for (size_t i = 0; i < attn_safetensors_count(st); i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        const uint64_t numel = t->numel, size = attn_dtype_size(t->dtype);
        size_t d = 0;
        while (d < N_DTYPES && dtypes[d] != t->dtype) d++;
        if (d == N_DTYPES || size == 0)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: tensor \"%s\": unknown dtype",
                                  attn_safetensors_name(st), t->name);
        if (numel > UINT64_MAX - s->params || numel > (UINT64_MAX - s->total_bytes) / size)
            return attn_error_set(err, ATTN_ERR_FORMAT, "%s: the tensors' sizes overflow",
                                  attn_safetensors_name(st));
        s->params += numel;
        s->bytes[d] += numel * size;
        s->total_bytes += numel * size;
        s->tensors[d]++;
    }
    return ATTN_OK;
}

static const char *tokenizer_kind(attn_tokenizer_type t) {
    static const char *const names[] = {"word", "llama2c", "gpt2", "hf"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "word";
}

static const char *yes_no(bool b) { return b ? "true" : "false"; }

/* "[d0, d1, ...]" into buf[cap]. */
static void shape_text(const attn_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- readable ---- */

static void print_text(const attn_model *m, const char *config, const info_sums *s) {
    const attn_config *c = attn_model_config(m);
    const attn_safetensors *st = attn_model_weights(m);
    const attn_tokenizer *tok = attn_model_tokenizer(m);
    printf("%-18s %s\n", "model", config);
    printf("%-18s %s\n", "architecture", attn_arch_name(c->arch));
    printf("%-18s %d\n", "vocab_size", c->vocab_size);
    printf("%-18s %d\n", "d_model", c->d_model);
    printf("%-18s %d\n", "n_layers", c->n_layers);
    if (c->arch == ATTN_ARCH_ENCODER_DECODER)
        printf("%-18s %d\n", "n_encoder_layers", c->n_encoder_layers);
    printf("%-18s %d\n", "n_heads", c->n_heads);
    printf("%-18s %d\n", "n_kv_heads", c->n_kv_heads);
    printf("%-18s %d\n", "head_dim", c->head_dim);
    printf("%-18s %d\n", "d_ff", c->d_ff);
    printf("%-18s %d\n", "max_seq_len", c->max_seq_len);
    printf("%-18s %s\n", "positional", attn_positional_name(c->positional));
    if (c->positional == ATTN_POS_ROPE) printf("%-18s %g\n", "rope_theta", c->rope_theta);
    printf("%-18s %g\n", "embed_scale", c->embed_scale);
    printf("%-18s %s\n", "norm", attn_norm_name(c->norm));
    printf("%-18s %g\n", "norm_eps", c->norm_eps);
    printf("%-18s %s\n", "norm_position", c->norm_position == ATTN_NORM_PRE ? "pre" : "post");
    printf("%-18s %s\n", "final_norm", yes_no(c->final_norm));
    printf("%-18s %s\n", "embed_norm", yes_no(c->embed_norm));
    printf("%-18s %s\n", "mlp", attn_mlp_name(c->mlp));
    printf("%-18s %s\n", "bias", yes_no(c->bias));
    printf("%-18s %s\n", "lm_head", attn_lm_head_name(c->lm_head));
    char sh[32];
    short_count(s->params, sh, sizeof sh);
    printf("%-18s %" PRIu64 " (%s)\n", "parameters", s->params, sh);
    short_bytes(s->total_bytes, sh, sizeof sh);
    printf("%-18s %s, %" PRIu64 " bytes (%s)\n", "weights", attn_safetensors_name(st),
           s->total_bytes, sh);
    for (size_t d = 0; d < N_DTYPES; d++) {
        if (!s->tensors[d]) continue;
        short_bytes(s->bytes[d], sh, sizeof sh);
        printf("  %-16s %" PRIu64 " bytes (%s), %zu tensor%s\n", attn_dtype_name(dtypes[d]),
               s->bytes[d], sh, s->tensors[d], s->tensors[d] == 1 ? "" : "s");
    }
    if (tok)
        printf("%-18s %s, %d tokens (%s)\n", "tokenizer", tokenizer_kind(c->tokenizer.type),
               attn_tokenizer_size(tok), c->tokenizer.path);
    else
        printf("%-18s none\n", "tokenizer");
    const size_t n = attn_safetensors_count(st);
    size_t wname = 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(attn_safetensors_at(st, i)->name);
        if (l > wname) wname = l;
    }
    printf("\ntensors (%zu):\n", n);
    printf("  %-*s  %-5s %-16s %s\n", (int)wname, "name", "dtype", "shape", "elements");
    for (size_t i = 0; i < n; i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        char shape[ATTN_MAX_DIMS * 24];
        shape_text(t, shape, sizeof shape);
        printf("  %-*s  %-5s %-16s %zu\n", (int)wname, t->name, attn_dtype_name(t->dtype), shape,
               t->numel);
    }
}

/* ---- JSON ---- */

/* A number cJSON writes exactly: a double holds integers up to 2^53. */
static cJSON *add_count(cJSON *o, const char *key, uint64_t v) {
    return cJSON_AddNumberToObject(o, key, (double)v);
}

static bool add_config(cJSON *o, const char *config, const attn_config *c) {
    bool ok = cJSON_AddStringToObject(o, "model", config) &&
              cJSON_AddStringToObject(o, "architecture", attn_arch_name(c->arch)) &&
              cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size) &&
              cJSON_AddNumberToObject(o, "d_model", c->d_model) &&
              cJSON_AddNumberToObject(o, "n_layers", c->n_layers) &&
              cJSON_AddNumberToObject(o, "n_encoder_layers", c->n_encoder_layers) &&
              cJSON_AddNumberToObject(o, "n_heads", c->n_heads) &&
              cJSON_AddNumberToObject(o, "n_kv_heads", c->n_kv_heads) &&
              cJSON_AddNumberToObject(o, "head_dim", c->head_dim) &&
              cJSON_AddNumberToObject(o, "d_ff", c->d_ff) &&
              cJSON_AddNumberToObject(o, "max_seq_len", c->max_seq_len) &&
              cJSON_AddStringToObject(o, "positional", attn_positional_name(c->positional)) &&
              cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta) &&
              cJSON_AddNumberToObject(o, "embed_scale", c->embed_scale) &&
              cJSON_AddStringToObject(o, "norm", attn_norm_name(c->norm)) &&
              cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps) &&
              cJSON_AddStringToObject(o, "norm_position",
                                      c->norm_position == ATTN_NORM_PRE ? "pre" : "post") &&
              cJSON_AddBoolToObject(o, "final_norm", c->final_norm) &&
              cJSON_AddBoolToObject(o, "embed_norm", c->embed_norm) &&
              cJSON_AddStringToObject(o, "mlp", attn_mlp_name(c->mlp)) &&
              cJSON_AddBoolToObject(o, "bias", c->bias) &&
              cJSON_AddStringToObject(o, "lm_head", attn_lm_head_name(c->lm_head));
    return ok;
}

static bool add_tensors(cJSON *o, const attn_safetensors *st) {
    cJSON *list = cJSON_AddArrayToObject(o, "tensors");
    if (!list) return false;
    for (size_t i = 0; i < attn_safetensors_count(st); i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            return false;
        }
        cJSON *shape = NULL;
        if (!cJSON_AddStringToObject(e, "name", t->name) ||
            !cJSON_AddStringToObject(e, "dtype", attn_dtype_name(t->dtype)) ||
            !(shape = cJSON_AddArrayToObject(e, "shape")) ||
            !add_count(e, "elements", t->numel) ||
            !add_count(e, "bytes", (uint64_t)t->numel * attn_dtype_size(t->dtype)))
            return false;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t->shape[d]);
            if (!v || !cJSON_AddItemToArray(shape, v)) {
                cJSON_Delete(v);
                return false;
            }
        }
    }
    return true;
}

static bool add_sums(cJSON *o, const attn_model *m, const info_sums *s) {
    char sh[32];
    short_count(s->params, sh, sizeof sh);
    cJSON *bytes = NULL;
    if (!add_count(o, "parameters", s->params) ||
        !cJSON_AddStringToObject(o, "parameters_short", sh) ||
        !cJSON_AddStringToObject(o, "weights", attn_safetensors_name(attn_model_weights(m))) ||
        !add_count(o, "weights_bytes_total", s->total_bytes) ||
        !(bytes = cJSON_AddObjectToObject(o, "weights_bytes")))
        return false;
    for (size_t d = 0; d < N_DTYPES; d++)
        if (s->tensors[d] && !add_count(bytes, attn_dtype_name(dtypes[d]), s->bytes[d]))
            return false;
    const attn_config *c = attn_model_config(m);
    const attn_tokenizer *tok = attn_model_tokenizer(m);
    if (!tok) return cJSON_AddNullToObject(o, "tokenizer") != NULL;
    cJSON *t = cJSON_AddObjectToObject(o, "tokenizer");
    return t && cJSON_AddStringToObject(t, "type", tokenizer_kind(c->tokenizer.type)) &&
           cJSON_AddNumberToObject(t, "vocab_size", attn_tokenizer_size(tok)) &&
           cJSON_AddStringToObject(t, "path", c->tokenizer.path);
}

static attn_status print_json(const attn_model *m, const char *config, const info_sums *s,
                              attn_error *err) {
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && add_config(o, config, attn_model_config(m)) && add_sums(o, m, s) &&
        add_tensors(o, attn_model_weights(m)))
        text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return attn_error_set(err, ATTN_ERR_NOMEM, "info: out of memory");
    puts(text);
    cJSON_free(text);
    return ATTN_OK;
}

int cmd_info(int argc, char **argv) {
    const char *config = NULL;
    bool json = false, help = false;
    const cli_flag flags[] = {
        {"config", 'c', .value = &config},
        {"json", .set = &json},
        {NULL},
    };
    attn_error err = {0};
    if (cli_parse_flags(argc, argv, "info", flags, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(info_usage);
    if (!config) return cli_error(EXIT_USAGE, "--config PATH is required");
    attn_model *m = NULL;
    info_sums s;
    attn_status rc = cli_model_open(&m, config, NULL, &err);
    if (!rc) rc = sum_tensors(attn_model_weights(m), &s, &err);
    if (!rc) {
        if (json) rc = print_json(m, config, &s, &err);
        else print_text(m, config, &s);
    }
    attn_model_close(m);
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = attn_error_set(&err, ATTN_ERR_IO, "standard output: write error");
    return rc ? cli_lib_error(&err) : EXIT_OK;
}
