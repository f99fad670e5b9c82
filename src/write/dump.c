/* Named dumps (attn/write.h): the names of a config's values with their
 * shapes, pattern matching over them, and the sink that writes each matched
 * value to its own file as .npy, long-form CSV or JSON lines.
 *
 * A per-head value (q, k, v, scores, weights, context) arrives one head at a
 * time, [rows, cols] each; its file holds [heads, rows, cols]. The file is
 * opened at the first head with the whole shape in its header (the number of
 * heads is announced in attn_dump_opts), each head is appended as it comes,
 * and the file is closed after the last one. Within one sub-layer the
 * forward pass interleaves the heads of scores, weights and context, so a
 * few files are open at once (DUMP_OPEN_MAX). */
#include "attn/write.h"

#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool attn_value_per_head(attn_value v) {
    return v == ATTN_V_Q || v == ATTN_V_K || v == ATTN_V_V || v == ATTN_V_SCORES ||
           v == ATTN_V_WEIGHTS || v == ATTN_V_HEAD_CONTEXT;
}

size_t attn_dump_key_name(const attn_capture_key *key, char *buf, size_t cap) {
    attn_capture_key k = *key;
    k.head = -1;
    return attn_capture_name(&k, buf, cap);
}

bool attn_dump_match(const char *const *patterns, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return true;
    return false;
}

/* ---- the names of a config ---- */

typedef struct lister {
    attn_dump_entry_fn fn;
    void *user;
    size_t calls;
    bool stop;
} lister;

static void put(lister *l, const attn_capture_key *key, const char *fmt, ...)
    ATTN_PRINTF(3, 4);
static void put(lister *l, const attn_capture_key *key, const char *fmt, ...) {
    if (l->stop) return;
    attn_dump_entry e = {.key = *key};
    e.key.head = -1;
    attn_dump_key_name(&e.key, e.name, sizeof e.name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.shape, sizeof e.shape, fmt, ap);
    va_end(ap);
    l->calls++;
    if (!l->fn(l->user, &e)) l->stop = true;
}

/* The names of one stack: q is the symbol of its positions ("T" or "S"). */
static void list_stack(lister *l, const attn_config *cfg, attn_stack stack, bool source,
                       int n_layers, bool cross, const char *q, bool logits) {
    const int D = cfg->d_model, H = cfg->n_heads, hd = cfg->head_dim;
    const int KV = cfg->n_kv_heads > 0 ? cfg->n_kv_heads : H;
    const bool causal = attn_arch_causal(cfg->arch) && stack == ATTN_STACK_DECODER;
    attn_capture_key k = {.stack = stack, .source = source, .layer = -1, .head = -1};
    k.value = ATTN_V_EMBED;
    put(l, &k, "[%s, D=%d]", q, D);
    for (int layer = 0; layer < n_layers; layer++) {
        k.layer = layer;
        for (int kind = 0; kind < (cross ? 2 : 1); kind++) {
            const char *kq = kind ? "S" : q; /* the keys' positions */
            k.kind = kind ? ATTN_KIND_CROSS : ATTN_KIND_SELF;
            k.causal = causal && !kind;
            k.value = ATTN_V_ATTN_IN, put(l, &k, "[%s, D=%d]", q, D);
            k.value = ATTN_V_Q, put(l, &k, "[H=%d, %s, hd=%d]", H, q, hd);
            k.value = ATTN_V_K, put(l, &k, "[KV=%d, %s, hd=%d]", KV, kq, hd);
            k.value = ATTN_V_V, put(l, &k, "[KV=%d, %s, hd=%d]", KV, kq, hd);
            k.value = ATTN_V_SCORES, put(l, &k, "[H=%d, %s, %s]", H, q, kq);
            k.value = ATTN_V_WEIGHTS, put(l, &k, "[H=%d, %s, %s]", H, q, kq);
            k.value = ATTN_V_HEAD_CONTEXT, put(l, &k, "[H=%d, %s, hd=%d]", H, q, hd);
            k.value = ATTN_V_CONCAT, put(l, &k, "[%s, H*hd=%d]", q, H * hd);
            k.value = ATTN_V_ATTN_OUT, put(l, &k, "[%s, D=%d]", q, D);
        }
        k.kind = ATTN_KIND_SELF;
        k.causal = false;
        if (cfg->mlp != ATTN_MLP_NONE) k.value = ATTN_V_MLP_OUT, put(l, &k, "[%s, D=%d]", q, D);
        k.value = ATTN_V_RESID, put(l, &k, "[%s, D=%d]", q, D);
    }
    k.layer = -1;
    k.value = ATTN_V_HIDDEN, put(l, &k, "[%s, D=%d]", q, D);
    if (logits) k.value = ATTN_V_LOGITS, put(l, &k, "[%s, V=%d]", q, cfg->vocab_size);
}

size_t attn_dump_each_name(const attn_config *cfg, attn_dump_entry_fn fn, void *user) {
    lister l = {.fn = fn, .user = user};
    const bool lm = cfg->lm_head != ATTN_LM_HEAD_NONE;
    switch (cfg->arch) {
    case ATTN_ARCH_ENCODER_DECODER:
        list_stack(&l, cfg, ATTN_STACK_ENCODER, true, cfg->n_encoder_layers, false, "S", false);
        list_stack(&l, cfg, ATTN_STACK_DECODER, false, cfg->n_layers, true, "T", lm);
        break;
    case ATTN_ARCH_ENCODER:
        list_stack(&l, cfg, ATTN_STACK_ENCODER, false, cfg->n_layers, false, "T", lm);
        break;
    default:
        list_stack(&l, cfg, ATTN_STACK_DECODER, false, cfg->n_layers, false, "T", lm);
        break;
    }
    return l.calls;
}

int attn_dump_format_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "npy") == 0) return ATTN_DUMP_NPY;
    if (strcmp(s, "csv") == 0) return ATTN_DUMP_CSV;
    if (strcmp(s, "jsonl") == 0) return ATTN_DUMP_JSONL;
    return -1;
}

const char *attn_dump_format_ext(attn_dump_format f) {
    return f == ATTN_DUMP_CSV ? "csv" : f == ATTN_DUMP_JSONL ? "jsonl" : "npy";
}

/* ---- the sink ---- */

#define DUMP_OPEN_MAX 8

/* One file being written. */
typedef struct dump_file {
    char name[ATTN_DUMP_NAME_MAX];
    char *path;        /* malloc'd; NULL: the slot is free */
    FILE *f;
    bool per_head;
    int expect, got;   /* heads announced, heads written */
    int last_head;
    int rows, cols;    /* of each head */
    attn_npy_writer npy;
    uint64_t n_data;   /* jsonl: values written, for the commas */
    int *heads;        /* jsonl: [expect] the heads in order */
} dump_file;

struct attn_dump {
    attn_dump_opts o;
    char *dir;
    dump_file open[DUMP_OPEN_MAX];
    size_t files;
};

attn_status attn_dump_new(attn_dump **out, const attn_dump_opts *o, attn_error *err) {
    *out = NULL;
    if (o->n_heads < 1 || o->n_kv_heads < 1 || (int)o->format < 0 || o->format > ATTN_DUMP_JSONL)
        return attn_error_set(err, ATTN_ERR_USAGE, "dump: bad options");
    attn_dump *d = calloc(1, sizeof *d);
    if (!d) return attn_error_set(err, ATTN_ERR_NOMEM, "dump: out of memory");
    d->o = *o;
    *out = d;
    return ATTN_OK;
}

static void file_close(dump_file *df, bool remove_it) {
    if (df->f) fclose(df->f);
    if (remove_it && df->path) remove(df->path);
    free(df->path);
    free(df->heads);
    memset(df, 0, sizeof *df);
}

void attn_dump_drop(attn_dump *d) {
    if (!d) return;
    for (int i = 0; i < DUMP_OPEN_MAX; i++) file_close(&d->open[i], true);
}

void attn_dump_free(attn_dump *d) {
    if (!d) return;
    attn_dump_drop(d);
    free(d->dir);
    free(d);
}

size_t attn_dump_files(const attn_dump *d) { return d ? d->files : 0; }

attn_status attn_dump_begin(attn_dump *d, const char *dir, attn_error *err) {
    attn_dump_drop(d);
    free(d->dir);
    d->dir = strdup(dir);
    return d->dir ? ATTN_OK : attn_error_set(err, ATTN_ERR_NOMEM, "dump: out of memory");
}

/* Ends the file: the closing text of csv / jsonl, flush, close. */
static attn_status file_finish(attn_dump *d, dump_file *df, attn_error *err) {
    if (d->o.format == ATTN_DUMP_JSONL) {
        fputc(']', df->f);
        if (df->per_head) {
            fputs(",\"heads\":[", df->f);
            for (int i = 0; i < df->got; i++) fprintf(df->f, "%s%d", i ? "," : "", df->heads[i]);
            fputc(']', df->f);
        }
        fputs("}\n", df->f);
    }
    int e = ferror(df->f) ? EIO : 0;
    if (fclose(df->f) != 0 && !e) e = errno;
    df->f = NULL;
    if (e) {
        attn_status rc = attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", df->path,
                                        strerror(e));
        file_close(df, true);
        return rc;
    }
    d->files++;
    file_close(df, false);
    return ATTN_OK;
}

attn_status attn_dump_end(attn_dump *d, attn_error *err) {
    attn_status rc = ATTN_OK;
    for (int i = 0; !rc && i < DUMP_OPEN_MAX; i++) {
        dump_file *df = &d->open[i];
        if (!df->path) continue;
        if (df->got != df->expect)
            rc = attn_error_set(err, ATTN_ERR_INTERNAL, "%s: %d of its %d heads arrived", df->name,
                                df->got, df->expect);
        else
            rc = file_finish(d, df, err);
    }
    if (rc) attn_dump_drop(d);
    return rc;
}

bool attn_dump_wants(void *user, const attn_capture_key *key) {
    const attn_dump *d = user;
    char name[ATTN_DUMP_NAME_MAX];
    if (attn_dump_key_name(key, name, sizeof name) >= sizeof name) return false;
    return attn_dump_match(d->o.patterns, d->o.n_patterns, name);
}

/* A JSON string (quotes, backslashes and control bytes escaped; other bytes as they are). */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Creates the file of name and writes what comes before the data. */
static attn_status file_open(attn_dump *d, dump_file *df, const char *name,
                             const attn_capture_key *key, const attn_capture_view *v,
                             attn_error *err) {
    memset(df, 0, sizeof *df);
    snprintf(df->name, sizeof df->name, "%s", name);
    df->per_head = attn_value_per_head(key->value);
    df->expect = !df->per_head ? 1
                 : key->value == ATTN_V_K || key->value == ATTN_V_V ? d->o.n_kv_heads
                                                                    : d->o.n_heads;
    df->last_head = -1;
    df->rows = v->rows;
    df->cols = v->cols;
    const char *ext = attn_dump_format_ext(d->o.format);
    size_t need = strlen(d->dir) + strlen(name) + strlen(ext) + 3;
    if (!(df->path = malloc(need)) ||
        (d->o.format == ATTN_DUMP_JSONL && df->per_head &&
         !(df->heads = calloc((size_t)df->expect, sizeof *df->heads)))) {
        file_close(df, false);
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
    }
    snprintf(df->path, need, "%s/%s.%s", d->dir, name, ext);
    int fd = open(df->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 && !(df->f = fdopen(fd, "w"))) close(fd);
    if (!df->f) {
        attn_status rc = attn_error_set(err, ATTN_ERR_IO, "%s: cannot create: %s", df->path,
                                        errno == EEXIST ? "the value came twice" : strerror(errno));
        free(df->path);
        df->path = NULL;
        file_close(df, false);
        return rc;
    }
    int64_t shape[3] = {df->expect, v->rows, v->cols};
    const int64_t *sh = df->per_head ? shape : shape + 1;
    const int ndim = df->per_head ? 3 : 2;
    attn_status rc = ATTN_OK;
    switch (d->o.format) {
    case ATTN_DUMP_NPY:
        rc = attn_npy_begin(&df->npy, df->f, sh, ndim, err);
        break;
    case ATTN_DUMP_CSV:
        fputs("input,name,head,i,j,value\n", df->f);
        break;
    case ATTN_DUMP_JSONL:
        fputs("{\"input\":", df->f);
        if (d->o.run && d->o.run->key) json_string(df->f, d->o.run->key);
        else fprintf(df->f, "%ld", d->o.run ? d->o.run->input : 0L);
        fputs(",\"name\":", df->f);
        json_string(df->f, name);
        fputs(",\"shape\":[", df->f);
        for (int i = 0; i < ndim; i++) fprintf(df->f, "%s%lld", i ? "," : "", (long long)sh[i]);
        fputs("],\"data\":[", df->f);
        break;
    }
    if (rc) {
        attn_error_prefix(err, "%s", df->path);
        file_close(df, true);
    }
    return rc;
}

/* Appends one [rows, cols] block (one head, or the whole value). */
static attn_status file_append(attn_dump *d, dump_file *df, const attn_capture_key *key,
                               const attn_capture_view *v, attn_error *err) {
    const size_t n = (size_t)v->rows * (size_t)v->cols;
    attn_status rc = ATTN_OK;
    switch (d->o.format) {
    case ATTN_DUMP_NPY:
        rc = attn_npy_write(&df->npy, v->data, n, err);
        if (rc) attn_error_prefix(err, "%s", df->path);
        break;
    case ATTN_DUMP_CSV: {
        char hb[16];
        const char *head = df->per_head ? attn_head_name(key->head, hb, sizeof hb) : "";
        for (int i = 0; i < v->rows; i++)
            for (int j = 0; j < v->cols; j++) {
                if (d->o.run) attn_csv_input(df->f, d->o.run, false);
                else fputc('0', df->f);
                char num[ATTN_FLOAT_TEXT_MAX];
                attn_format_float(num, v->data[(size_t)i * v->cols + j]);
                fprintf(df->f, ",%s,%s,%d,%d,%s\n", df->name, head, i + v->row_offset, j, num);
            }
        break;
    }
    case ATTN_DUMP_JSONL:
        for (size_t i = 0; i < n; i++, df->n_data++) {
            if (df->n_data) fputc(',', df->f);
            const float x = v->data[i];
            char num[ATTN_FLOAT_TEXT_MAX];
            if (isfinite(x)) attn_format_float(num, x);
            fputs(isfinite(x) ? num : "null", df->f);
        }
        if (df->heads) df->heads[df->got] = key->head;
        break;
    }
    df->got++;
    df->last_head = key->head;
    return rc;
}

attn_status attn_dump_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                           attn_error *err) {
    attn_dump *d = user;
    char name[ATTN_DUMP_NAME_MAX];
    attn_dump_key_name(key, name, sizeof name);
    if (!d->dir) return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: dump before its input began", name);
    if (v->rows < 0 || v->cols < 0)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: negative size", name);
    const bool per_head = attn_value_per_head(key->value);
    if (per_head && key->head < 0)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: a per-head value without a head", name);
    dump_file *df = NULL, *free_slot = NULL;
    for (int i = 0; i < DUMP_OPEN_MAX; i++) {
        if (d->open[i].path && strcmp(d->open[i].name, name) == 0) df = &d->open[i];
        else if (!d->open[i].path && !free_slot) free_slot = &d->open[i];
    }
    attn_status rc;
    if (!df) {
        if (!free_slot)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "%s: more than %d dump files open at once",
                                  name, DUMP_OPEN_MAX);
        if ((rc = file_open(d, free_slot, name, key, v, err))) return rc;
        df = free_slot;
    } else if (key->head <= df->last_head || df->got >= df->expect) {
        rc = attn_error_set(err, ATTN_ERR_INTERNAL,
                            "%s: head %d came after head %d (%d of %d heads written)", name,
                            key->head, df->last_head, df->got, df->expect);
        file_close(df, true);
        return rc;
    } else if (v->rows != df->rows || v->cols != df->cols) {
        rc = attn_error_set(err, ATTN_ERR_INTERNAL, "%s: head %d is [%d, %d], head %d was [%d, %d]",
                            name, key->head, v->rows, v->cols, df->last_head, df->rows, df->cols);
        file_close(df, true);
        return rc;
    }
    if ((rc = file_append(d, df, key, v, err))) {
        file_close(df, true);
        return rc;
    }
    if (df->got == df->expect) return file_finish(d, df, err);
    return ATTN_OK;
}
