/* import_llama2c: a llama2.c checkpoint + tokenizer.bin -> an attn model
 * folder (config.json, model.safetensors, tokenizer.bin).
 *
 * Layouts (attn.h, attn_llama2c_header): the legacy export (version 0) and
 * llama2.c's export.py version1_export. The model is llama2.c's: pre-norm
 * RMSNorm (eps 1e-5), RoPE (theta 10000, interleaved pairs), grouped-query
 * attention without bias, SwiGLU MLP with w1 = gate, w3 = up, w2 = down, a
 * final RMSNorm, a classifier tied to the token embedding or separate.
 *
 * The checkpoint is read into memory (attn_load_file, not mapped: a file
 * truncated meanwhile is an error, never a SIGBUS); the header is validated
 * and the file size compared with what it implies before anything else is
 * allocated. The safetensors tensors are views into that image (one
 * converted copy on a big-endian host). Per-layer tensors are stacked
 * [L, out, in] in the checkpoint and are written as blocks.i.* [out, in].
 *
 * Output: written into a new folder "<out_dir>.tmp.XXXXXX" next to out_dir,
 * loaded back with attn_model_open as a check, then renamed to out_dir
 * (which must be absent or empty), or with ATTN_IMPORT_FORCE, its three
 * files renamed into an existing out_dir one by one. On any failure the
 * temporary folder is removed, and it is registered (base/tmpfile.h) so that
 * the CLI's signal handler removes it too. */
#include "base/bytes.h"
#include "base/tmpfile.h"
#include "base/util.h"
#include "model/limits.h"

#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2C_MAGIC 0x616b3432u      /* "ak42" */
#define L2C_LEGACY_HEADER 28       /* 7 int32 */
#define L2C_V1_HEADER 256

static const char *const field_names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                           "n_kv_heads", "vocab_size", "seq_len"};

/* *acc += a * b (elements), false on overflow */
static bool add_prod(uint64_t *acc, uint64_t a, uint64_t b) {
    uint64_t p;
    return !__builtin_mul_overflow(a, b, &p) && !__builtin_add_overflow(*acc, p, acc);
}

/* a * b * c (elements), false on overflow */
static bool prod3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t ab;
    return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, out);
}

/* The seven header fields f (field_names order), the version, the classifier
 * flag and the header size, from the legacy or the version-1 layout. */
static int l2c_read_fields(attn_llama2c_header *h, const unsigned char *p, size_t len,
                           const char *name, int32_t f[7], attn_error *err) {
    if (len < L2C_LEGACY_HEADER)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %zu bytes, shorter than the %d-byte llama2.c header", name, len,
                              L2C_LEGACY_HEADER);
    if (attn_le32(p) != L2C_MAGIC) {
        for (int i = 0; i < 7; i++) f[i] = attn_le_i32(p + 4 * i);
        h->version = 0;
        h->header_bytes = L2C_LEGACY_HEADER;
        /* a negative vocab_size flags a separate classifier */
        h->shared_classifier = f[5] > 0;
        if (f[5] < 0 && f[5] != INT32_MIN) f[5] = -f[5];
        return ATTN_OK;
    }
    if (len < 8 + 7 * 4 + 1)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %zu bytes, shorter than the version-1 header", name, len);
    int32_t version = attn_le_i32(p + 4);
    if (version != 1)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: llama2.c export version %d; only the legacy format and "
                              "version 1 (float32) can be imported%s",
                              name, (int)version,
                              version == 2 ? " (version 2 is int8-quantized)" : "");
    for (int i = 0; i < 7; i++) f[i] = attn_le_i32(p + 8 + 4 * i);
    unsigned shared = p[8 + 7 * 4];
    if (shared > 1)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: header byte shared_classifier is %u, expected 0 or 1", name,
                              shared);
    if (f[5] <= 0)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: header field vocab_size = %d, expected a positive number "
                              "(version 1 stores the classifier flag separately)",
                              name, (int)f[5]);
    h->version = 1;
    h->shared_classifier = shared == 1;
    h->header_bytes = L2C_V1_HEADER;
    return ATTN_OK;
}

/* Every field positive and within the cap of the config key it becomes
 * (model/limits.h), the heads dividing evenly, an even head size, and every
 * tensor under the config's element cap; fills h's sizes. */
static int l2c_check_fields(attn_llama2c_header *h, const int32_t f[7], const char *name,
                            attn_error *err) {
    /* the config key each field becomes, in field_names order */
    static const char *const keys[7] = {"d_model",    "d_ff",       "n_layers",   "n_heads",
                                        "n_kv_heads", "vocab_size", "max_seq_len"};
    for (int i = 0; i < 7; i++) {
        const int cap = attn_config_key_max(keys[i]);
        if (f[i] <= 0)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: header field %s = %d, expected a positive number", name,
                                  field_names[i], (int)f[i]);
        if (f[i] > cap)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: header field %s = %d is too large (at most %d, the limit "
                                  "of the config key it becomes)",
                                  name, field_names[i], (int)f[i], cap);
    }
    h->dim = f[0];
    h->hidden_dim = f[1];
    h->n_layers = f[2];
    h->n_heads = f[3];
    h->n_kv_heads = f[4];
    h->vocab_size = f[5];
    h->seq_len = f[6];
    if (h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads != 0)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: n_heads %d is not a multiple of n_kv_heads %d", name,
                              h->n_heads, h->n_kv_heads);
    if (h->dim % h->n_heads != 0)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: dim %d is not divisible by n_heads %d",
                              name, h->dim, h->n_heads);
    const uint64_t D = (uint64_t)h->dim, F = (uint64_t)h->hidden_dim,
                   V = (uint64_t)h->vocab_size, S = (uint64_t)h->seq_len;
    const uint64_t hd = D / (uint64_t)h->n_heads;
    if (hd % 2 != 0)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: head size %llu (dim / n_heads) is odd; rotary positions need "
                              "an even head size",
                              name, (unsigned long long)hd);

    /* every tensor the model will have stays under the config's element cap */
    struct { const char *what; uint64_t a, b; } caps[] = {
        {"vocab_size * dim", V, D}, {"seq_len * dim", S, D}, {"dim * dim", D, D},
        {"hidden_dim * dim", F, D},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        int rc = attn_check_elems(err, name, caps[i].what, caps[i].a, caps[i].b, NULL);
        if (rc) return rc;
    }
    return ATTN_OK;
}

/* The file size the header promises: the header, then every float32 of the
 * layout (layout() below); *rope = the floats of one legacy rope table. */
static bool l2c_file_bytes(const attn_llama2c_header *h, uint64_t *bytes, uint64_t *rope) {
    const uint64_t D = (uint64_t)h->dim, F = (uint64_t)h->hidden_dim, L = (uint64_t)h->n_layers,
                   V = (uint64_t)h->vocab_size, S = (uint64_t)h->seq_len;
    const uint64_t hd = D / (uint64_t)h->n_heads, kvd = (uint64_t)h->n_kv_heads * hd;
    uint64_t n = 0, e;
    *rope = 0;
    bool ok = add_prod(&n, V, D)            /* tok_embeddings */
              && add_prod(&n, L, D)         /* attention norms */
              && add_prod(&n, L, D)         /* ffn norms */
              && add_prod(&n, 1, D);        /* final norm */
    ok = ok && prod3(L, D, D, &e) && add_prod(&n, 2, e);       /* wq, wo */
    ok = ok && prod3(L, kvd, D, &e) && add_prod(&n, 2, e);     /* wk, wv */
    ok = ok && prod3(L, F, D, &e) && add_prod(&n, 3, e);       /* w1, w2, w3 */
    if (!h->shared_classifier) ok = ok && add_prod(&n, V, D);  /* classifier */
    if (h->version == 0) {
        ok = ok && !__builtin_mul_overflow(S, hd / 2, rope);
        ok = ok && add_prod(&n, 2, *rope);                      /* rope cos, sin tables */
    }
    return ok && !__builtin_mul_overflow(n, (uint64_t)sizeof(float), bytes) &&
           !__builtin_add_overflow(*bytes, (uint64_t)h->header_bytes, bytes);
}

attn_status attn_llama2c_parse_header(attn_llama2c_header *h, const void *buf, size_t len,
                              const char *name, attn_error *err) {
    if (!name) name = "<checkpoint>";
    if (!h) return attn_error_set(err, ATTN_ERR_USAGE, "%s: no header to fill", name);
    memset(h, 0, sizeof *h);
    if (!buf && len) return attn_error_set(err, ATTN_ERR_USAGE, "%s: NULL buffer", name);
    int32_t f[7];
    int rc;
    if ((rc = l2c_read_fields(h, buf, len, name, f, err)) ||
        (rc = l2c_check_fields(h, f, name, err)))
        return rc;
    uint64_t bytes = 0, rope = 0;
    if (!l2c_file_bytes(h, &bytes, &rope))
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: the header's sizes overflow", name);
    h->file_bytes = bytes;
    if ((uint64_t)len != bytes) {
        char hint[160] = "";
        if (h->version == 0 && (uint64_t)len == bytes - 2 * rope * sizeof(float))
            snprintf(hint, sizeof hint, "; the file matches the layout without the two rope "
                                        "tables, which legacy checkpoints carry");
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: the %s header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                              "n_kv_heads %d, vocab_size %d%s, seq_len %d) implies %llu bytes, "
                              "but the file has %zu bytes%s",
                              name, h->version == 0 ? "legacy" : "version-1", h->dim,
                              h->hidden_dim, h->n_layers, h->n_heads, h->n_kv_heads,
                              h->vocab_size, h->shared_classifier ? "" : " + classifier",
                              h->seq_len, (unsigned long long)bytes, len, hint);
    }
    return ATTN_OK;
}

/* ------------------------------------------------------------------------ */
/* The weights: views into the checkpoint                                    */

typedef struct l2c_weights {
    const float *tok_embed;  /* [V, D] */
    const float *attn_norm;  /* [L, D] */
    const float *wq;         /* [L, D, D] */
    const float *wk, *wv;    /* [L, KV*hd, D] */
    const float *wo;         /* [L, D, D] */
    const float *mlp_norm;   /* [L, D] */
    const float *w1, *w3;    /* [L, F, D] gate, up */
    const float *w2;         /* [L, D, F] down */
    const float *final_norm; /* [D] */
    const float *cls;        /* [V, D], == tok_embed when shared */
} l2c_weights;

/* Points w's fields at consecutive tensors of data (validated sizes). */
static void layout(l2c_weights *w, const attn_llama2c_header *h, const float *data) {
    const size_t D = (size_t)h->dim, F = (size_t)h->hidden_dim, L = (size_t)h->n_layers,
                 V = (size_t)h->vocab_size, hd = D / (size_t)h->n_heads,
                 kvd = (size_t)h->n_kv_heads * hd;
    const float *p = data;
#define TAKE(field, count) (w->field = p, p += (count))
    if (h->version == 0) {
        TAKE(tok_embed, V * D);
        TAKE(attn_norm, L * D);
        TAKE(wq, L * D * D);
        TAKE(wk, L * kvd * D);
        TAKE(wv, L * kvd * D);
        TAKE(wo, L * D * D);
        TAKE(mlp_norm, L * D);
        TAKE(w1, L * F * D);
        TAKE(w2, L * D * F);
        TAKE(w3, L * F * D);
        TAKE(final_norm, D);
        p += 2 * (size_t)h->seq_len * (hd / 2); /* legacy rope tables: RoPE is computed */
    } else {
        TAKE(attn_norm, L * D);
        TAKE(mlp_norm, L * D);
        TAKE(final_norm, D);
        TAKE(tok_embed, V * D);
        TAKE(wq, L * D * D);
        TAKE(wk, L * kvd * D);
        TAKE(wv, L * kvd * D);
        TAKE(wo, L * D * D);
        TAKE(w1, L * F * D);
        TAKE(w2, L * D * F);
        TAKE(w3, L * F * D);
    }
    if (h->shared_classifier)
        w->cls = w->tok_embed;
    else
        TAKE(cls, V * D);
#undef TAKE
}

#define NAME_CAP 48 /* "blocks.16777215.mlp.gate.weight" fits */

/* Fills specs (and the names arena, NAME_CAP bytes per spec) with the attn
 * tensors; returns how many. */
static size_t make_specs(attn_tensor_spec *specs, char *names, const attn_llama2c_header *h,
                         const l2c_weights *w) {
    const int64_t D = h->dim, F = h->hidden_dim, V = h->vocab_size,
                  kvd = (int64_t)h->n_kv_heads * (D / h->n_heads);
    size_t n = 0;
#define SPEC(data_, rows, cols, ...)                                                            \
    do {                                                                                        \
        char *nm = names + n * NAME_CAP;                                                        \
        snprintf(nm, NAME_CAP, __VA_ARGS__);                                                    \
        specs[n] = (attn_tensor_spec){.name = nm, .ndim = (rows) > 0 ? 2 : 1,                   \
                                      .data = (data_)};                                         \
        if ((rows) > 0) {                                                                       \
            specs[n].shape[0] = (rows);                                                         \
            specs[n].shape[1] = (cols);                                                         \
        } else {                                                                                \
            specs[n].shape[0] = (cols);                                                         \
        }                                                                                       \
        n++;                                                                                    \
    } while (0)
    SPEC(w->tok_embed, V, D, "tok_embed");
    for (int l = 0; l < h->n_layers; l++) {
        const size_t L = (size_t)l;
        SPEC(w->attn_norm + L * D, 0, D, "blocks.%d.attn_norm.weight", l);
        SPEC(w->wq + L * D * D, D, D, "blocks.%d.attn.q.weight", l);
        SPEC(w->wk + L * kvd * D, kvd, D, "blocks.%d.attn.k.weight", l);
        SPEC(w->wv + L * kvd * D, kvd, D, "blocks.%d.attn.v.weight", l);
        SPEC(w->wo + L * D * D, D, D, "blocks.%d.attn.o.weight", l);
        SPEC(w->mlp_norm + L * D, 0, D, "blocks.%d.mlp_norm.weight", l);
        SPEC(w->w1 + L * F * D, F, D, "blocks.%d.mlp.gate.weight", l);
        SPEC(w->w3 + L * F * D, F, D, "blocks.%d.mlp.up.weight", l);
        SPEC(w->w2 + L * D * F, D, F, "blocks.%d.mlp.down.weight", l);
    }
    SPEC(w->final_norm, 0, D, "norm.weight");
    if (!h->shared_classifier) SPEC(w->cls, V, D, "lm_head.weight");
#undef SPEC
    return n;
}

/* Writes buf[len] as the file path, through a temporary (base/tmpfile.h),
 * so each file of the folder is on disk before the folder is renamed. */
static int write_bytes(const char *path, const void *buf, size_t len, attn_error *err) {
    FILE *f;
    char *tmp;
    attn_tmp_step step;
    int e = attn_tmpfile_open(path, &f, &tmp, &step);
    if (e) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(e));
    int write_err = len > 0 && fwrite(buf, 1, len, f) != len ? (errno ? errno : EIO) : 0;
    e = attn_tmpfile_commit(f, tmp, path, write_err, &step);
    free(tmp);
    if (e) return attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return ATTN_OK;
}

static int write_config(const char *path, const attn_llama2c_header *h, attn_error *err) {
    char text[1024];
    int n = snprintf(text, sizeof text,
            "{\n"
            "  \"format\": \"attn/1\",\n"
            "  \"architecture\": \"decoder\",\n"
            "  \"vocab_size\": %d,\n"
            "  \"d_model\": %d,\n"
            "  \"n_heads\": %d,\n"
            "  \"n_kv_heads\": %d,\n"
            "  \"d_ff\": %d,\n"
            "  \"max_seq_len\": %d,\n"
            "  \"n_layers\": %d,\n"
            "  \"positional\": \"rope\",\n"
            "  \"rope_theta\": 10000,\n"
            "  \"norm\": \"rmsnorm\",\n"
            "  \"norm_eps\": 1e-5,\n"
            "  \"norm_position\": \"pre\",\n"
            "  \"final_norm\": true,\n"
            "  \"mlp\": \"swiglu\",\n"
            "  \"bias\": false,\n"
            "  \"lm_head\": \"%s\",\n"
            "  \"weights\": \"model.safetensors\",\n"
            "  \"tokenizer\": {\"type\": \"llama2c\", \"path\": \"tokenizer.bin\"}\n"
            "}\n",
            h->vocab_size, h->dim, h->n_heads, h->n_kv_heads, h->hidden_dim, h->seq_len,
            h->n_layers, h->shared_classifier ? "tied" : "separate");
    if (n < 0 || (size_t)n >= sizeof text)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: config text too long", path);
    return write_bytes(path, text, (size_t)n, err);
}


/* ------------------------------------------------------------------------ */
/* The output folder                                                          */

static const char *const out_files[] = {"model.safetensors", "tokenizer.bin", "config.json"};
#define N_OUT_FILES (sizeof out_files / sizeof out_files[0])

/* *nonempty: dir exists and holds something. A dir that exists but is not
 * a folder, or cannot be read, is an error. */
static int dir_state(const char *dir, bool *nonempty, attn_error *err) {
    *nonempty = false;
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT) return ATTN_OK;
        return attn_error_set(err, ATTN_ERR_IO, "%s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return attn_error_set(err, ATTN_ERR_IO, "%s: exists and is not a folder", dir);
    DIR *d = opendir(dir);
    if (!d) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", dir, strerror(errno));
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            *nonempty = true;
            break;
        }
    }
    closedir(d);
    return ATTN_OK;
}

/* Creates a new folder "<base>.tmp.XXXXXX" (mode 0777 less the umask),
 * registered so that a signal handler can remove it with its files
 * (base/tmpfile.h). */
static int make_tmp_dir(attn_tmpdir *tmp, const char *base, attn_error *err) {
    int e = attn_tmpdir_create(tmp, base, out_files, N_OUT_FILES);
    if (e == ENAMETOOLONG) return attn_error_set(err, ATTN_ERR_USAGE, "%s: path too long", base);
    if (e == EEXIST)
        return attn_error_set(err, ATTN_ERR_IO, "%s: cannot find a free temporary folder name",
                              base);
    if (e)
        return attn_error_set(err, ATTN_ERR_IO, "%s: cannot create a folder next to it: %s", base,
                              strerror(e));
    return ATTN_OK;
}

/* Moves the finished files from tmp to dir. */
static int commit_dir(const char *tmp, const char *dir, bool force, attn_error *err) {
    if (rename(tmp, dir) == 0) return ATTN_OK; /* dir absent or empty */
    int e = errno;
    if (!force || (e != ENOTEMPTY && e != EEXIST))
        return attn_error_set(err, ATTN_ERR_IO, "%s: cannot rename %s into place: %s", dir, tmp,
                              strerror(e));
    char from[ATTN_PATH_MAX], to[ATTN_PATH_MAX];
    for (size_t i = 0; i < N_OUT_FILES; i++) { /* config.json last */
        if (snprintf(from, sizeof from, "%s/%s", tmp, out_files[i]) >= (int)sizeof from ||
            snprintf(to, sizeof to, "%s/%s", dir, out_files[i]) >= (int)sizeof to)
            return attn_error_set(err, ATTN_ERR_USAGE, "%s: path too long", dir);
        if (rename(from, to) != 0)
            return attn_error_set(err, ATTN_ERR_IO, "%s: cannot replace: %s", to, strerror(errno));
    }
    rmdir(tmp);
    return ATTN_OK;
}

/* ------------------------------------------------------------------------ */

/* out_dir without its trailing slashes, into dir: a name to create, and a
 * folder that is absent or empty (or anything, with force). */
static int check_out_dir(char dir[ATTN_PATH_MAX], const char *out_dir, bool force,
                         attn_error *err) {
    size_t dl = strlen(out_dir);
    while (dl > 1 && out_dir[dl - 1] == '/') dl--;
    if (dl == 0 || dl >= ATTN_PATH_MAX - 32)
        return attn_error_set(err, ATTN_ERR_USAGE, "output folder '%s': %s", out_dir,
                              dl == 0 ? "empty name" : "path too long");
    memcpy(dir, out_dir, dl);
    dir[dl] = '\0';
    if (strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0 || strcmp(dir, "..") == 0)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "output folder '%s': give a folder name to create", dir);
    bool nonempty;
    int rc = dir_state(dir, &nonempty, err);
    if (rc) return rc;
    if (nonempty && !force)
        return attn_error_set(err, ATTN_ERR_IO,
                              "%s: the output folder exists and is not empty (force replaces "
                              "its model files)",
                              dir);
    return ATTN_OK;
}

/* Reads the tokenizer file into *buf[*len]; it must load, with one piece per
 * id of the model. */
static int read_tokenizer(const char *tokenizer, const char *checkpoint,
                          const attn_llama2c_header *h, char **buf, size_t *len,
                          attn_error *err) {
    int rc = attn_read_file(tokenizer, ATTN_TOKENIZER_FILE_MAX, "a vocabulary", buf, len, err);
    if (rc) return rc;
    attn_tokenizer *tok = NULL;
    attn_tokenizer_config tc = {.type = ATTN_TOKENIZER_LLAMA2C};
    rc = attn_tokenizer_from_memory(&tok, &tc, *buf, *len, tokenizer, err);
    if (rc == ATTN_OK && attn_tokenizer_size(tok) != h->vocab_size)
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "%s: the tokenizer has %d tokens but the checkpoint %s has "
                            "vocab_size %d",
                            tokenizer, attn_tokenizer_size(tok), checkpoint, h->vocab_size);
    attn_tokenizer_free(tok);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* The attn tensors (*specs[*n], their names in *names): views into the
 * checkpoint image `image`, or on a big-endian host into *swapped, one
 * converted copy. The caller frees the three arrays. */
static int make_tensors(const attn_llama2c_header *h, const void *image, const char *checkpoint,
                        float **swapped, attn_tensor_spec **specs, char **names, size_t *n,
                        attn_error *err) {
    const float *data = (const float *)((const unsigned char *)image + h->header_bytes);
    size_t nfloats = (size_t)((h->file_bytes - h->header_bytes) / sizeof(float));
    if (!ATTN_HOST_LE) {
        if (!(*swapped = attn_alloc_array(nfloats, sizeof(float), checkpoint, err)))
            return ATTN_ERR_NOMEM;
        const unsigned char *b = (const unsigned char *)data;
        for (size_t i = 0; i < nfloats; i++) (*swapped)[i] = attn_le_f32(b + 4 * i);
        data = *swapped;
    }
    l2c_weights w;
    layout(&w, h, data);
    size_t nspecs = 3 + 9 * (size_t)h->n_layers; /* n_layers <= 2^24 */
    *specs = attn_calloc_array(nspecs, sizeof **specs, "tensor list", err);
    *names = attn_alloc_array(nspecs, NAME_CAP, "tensor names", err);
    if (!*specs || !*names) return ATTN_ERR_NOMEM;
    *n = make_specs(*specs, *names, h, &w);
    return ATTN_OK;
}

/* Writes the three files into a new temporary folder next to dir, loads
 * them back as a model, and moves them to dir; on failure removes the
 * temporary folder. */
static int write_folder(const char *dir, bool force, const attn_llama2c_header *h,
                        const attn_tensor_spec *specs, size_t n, const char *tok_buf,
                        size_t tok_len, attn_error *err) {
    attn_tmpdir td;
    char path[ATTN_PATH_MAX];
    int rc = make_tmp_dir(&td, dir, err);
    if (rc) return rc;
    const char *tmp = td.path;
    attn_model *model = NULL;
    /* (the names fit: check_out_dir left room for them) */
    if ((rc = attn_path_join(path, sizeof path, tmp, "model.safetensors", err)) ||
        (rc = attn_safetensors_write(path, specs, n, err)) ||
        (rc = attn_path_join(path, sizeof path, tmp, "tokenizer.bin", err)) ||
        (rc = write_bytes(path, tok_buf, tok_len, err)) ||
        (rc = attn_path_join(path, sizeof path, tmp, "config.json", err)) ||
        (rc = write_config(path, h, err)))
        goto fail;
    if ((rc = attn_model_open(&model, path, err))) {
        attn_error_prefix(err, "the imported model does not load");
        goto fail;
    }
    attn_model_close(model);
    if ((rc = commit_dir(tmp, dir, force, err))) goto fail;
    attn_tmpdir_forget(&td);
    return ATTN_OK;

fail:
    attn_tmpdir_discard(&td);
    return rc;
}

attn_status attn_import_llama2c(const char *checkpoint, const char *tokenizer, const char *out_dir,
                        unsigned flags, attn_error *err) {
    if (!checkpoint || !tokenizer || !out_dir)
        return attn_error_set(err, ATTN_ERR_USAGE, "attn_import_llama2c: NULL argument");
    const bool force = (flags & ATTN_IMPORT_FORCE) != 0;
    char dir[ATTN_PATH_MAX];
    int rc = check_out_dir(dir, out_dir, force, err);
    if (rc) return rc;

    void *image = NULL;
    size_t len = 0, tok_len = 0, n = 0;
    char *tok_buf = NULL, *names = NULL;
    attn_tensor_spec *specs = NULL;
    float *swapped = NULL;
    attn_llama2c_header h;
    if (!(rc = attn_load_file(checkpoint, &image, &len, err)) &&
        !(rc = attn_llama2c_parse_header(&h, image, len, checkpoint, err)) &&
        !(rc = read_tokenizer(tokenizer, checkpoint, &h, &tok_buf, &tok_len, err)) &&
        !(rc = make_tensors(&h, image, checkpoint, &swapped, &specs, &names, &n, err)))
        rc = write_folder(dir, force, &h, specs, n, tok_buf, tok_len, err);
    free(swapped);
    free(specs);
    free(names);
    free(tok_buf);
    attn_unload_file(image, len);
    return rc;
}
