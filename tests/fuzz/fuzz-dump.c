/* libFuzzer entry point for the named dumps (attn/write.h): the .npy writer
 * (src/write/npy.c) and the dump names and patterns (src/write/dump.c).
 *
 * Input: byte 0 picks the number of dimensions (low nibble, 0 to 9: 9 is
 * refused) and whether the dimensions are small (bit 4: one byte each, 0 to
 * 15) or any 64-bit value (8 bytes each, overflow and negative sizes); byte
 * 1 picks a config (architecture, layers, heads, key/value heads, MLP,
 * lm_head); byte 2 the size of the pieces the data is written in; the rest
 * are patterns, one per line.
 *
 *   - attn_npy_header either refuses the shape with one line of error or
 *     writes a NumPy 1.0 header: the magic, a length that puts the data at
 *     a multiple of 64, printable text ending in '\n' whose shape tuple reads
 *     back to the shape. A small array is written through attn_npy_begin /
 *     attn_npy_write in pieces, complete exactly after its last value, a
 *     value more refused; 2-d arrays read back through the independent .npy
 *     reader of attn_embeddings_parse to the same floats.
 *   - Every name of the config (attn_dump_each_name) is unique, its key
 *     names it (attn_dump_key_name; attn_capture_name with a head for the
 *     per-head values is the name + ".hN"), its shape is "[...]" with two or
 *     three sizes, it matches itself as a pattern and "*"; the patterns of
 *     the input match a name exactly when fnmatch(3) says one of them does,
 *     and the dump sink wants a key exactly when its name matches. */
#include "attn/write.h"
#include "fuzz-common.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the shape tuple of a header back: "'shape': (A, B, ), }". */
static int read_shape(const char *h, size_t n, int64_t *shape) {
    const char *p = memmem(h, n, "'shape': (", 10);
    if (!p) __builtin_trap();
    p += 10;
    int nd = 0;
    while (*p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || *end != ',' || nd == ATTN_MAX_DIMS) __builtin_trap();
        shape[nd++] = v;
        p = end + 1;
        if (*p == ' ') p++;
    }
    return nd;
}

static void check_header(const int64_t *shape, int ndim) {
    char buf[ATTN_NPY_HEADER_MAX];
    size_t len = 99;
    attn_error err;
    attn_status rc = attn_npy_header(buf, sizeof buf, &len, shape, ndim, &err);
    if (rc) {
        fuzz_check_error(&err, rc);
        if (len != 0) __builtin_trap();
        return;
    }
    if (len < 64 || len % 64 != 0 || len > sizeof buf) __builtin_trap();
    if (memcmp(buf, "\x93NUMPY\x01\x00", 8) != 0) __builtin_trap();
    if ((size_t)((unsigned char)buf[8] | (unsigned char)buf[9] << 8) != len - 10) __builtin_trap();
    if (buf[len - 1] != '\n') __builtin_trap();
    for (size_t i = 10; i < len - 1; i++)
        if (buf[i] < 0x20 || buf[i] > 0x7e) __builtin_trap();
    static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    if (memcmp(buf + 10, dict, sizeof dict - 1) != 0) __builtin_trap();
    int64_t back[ATTN_MAX_DIMS];
    if (read_shape(buf, len, back) != ndim) __builtin_trap();
    for (int i = 0; i < ndim; i++)
        if (back[i] != shape[i]) __builtin_trap();
}

/* Writes a small array in pieces of `piece` values and reads it back. */
static void check_write(const int64_t *shape, int ndim, size_t piece) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    float *v = malloc((numel + 1) * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i <= numel; i++) v[i] = (float)i * 0.37f - 3.0f;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) __builtin_trap();
    attn_npy_writer w;
    attn_error err;
    if (attn_npy_begin(&w, f, shape, ndim, &err) != ATTN_OK) __builtin_trap();
    for (size_t at = 0; at < numel;) {
        size_t k = piece < numel - at ? piece : numel - at;
        if (attn_npy_complete(&w)) __builtin_trap();
        if (attn_npy_write(&w, v + at, k, &err) != ATTN_OK) __builtin_trap();
        at += k;
    }
    if (!attn_npy_complete(&w)) __builtin_trap();
    attn_status rc = attn_npy_write(&w, v + numel, 1, &err);
    if (rc != ATTN_ERR_INTERNAL) __builtin_trap();
    fuzz_check_error(&err, rc);
    if (fclose(f) != 0) __builtin_trap();
    if (ndim == 2 && shape[0] > 0 && shape[1] > 0) {
        float *back = NULL;
        size_t rows = 0;
        if (attn_embeddings_parse(&back, &rows, buf, n, (int)shape[1], 0, "fuzz.npy", &err) !=
                ATTN_OK ||
            rows != (size_t)shape[0] || memcmp(back, v, numel * sizeof *v) != 0)
            __builtin_trap();
        free(back);
    }
    free(buf);
    free(v);
}

typedef struct names {
    char (*name)[ATTN_DUMP_NAME_MAX];
    attn_capture_key *key;
    size_t n, cap;
} names;

static bool collect(void *user, const attn_dump_entry *e) {
    names *ns = user;
    if (ns->n == ns->cap) return false;
    size_t len = strlen(e->name);
    if (len == 0 || len >= ATTN_DUMP_NAME_MAX) __builtin_trap();
    char buf[ATTN_DUMP_NAME_MAX];
    if (attn_dump_key_name(&e->key, buf, sizeof buf) != len || strcmp(buf, e->name) != 0)
        __builtin_trap();
    if (attn_value_per_head(e->key.value)) {
        attn_capture_key k = e->key;
        k.head = 3;
        char full[ATTN_DUMP_NAME_MAX + 8], want[ATTN_DUMP_NAME_MAX + 8];
        attn_capture_name(&k, full, sizeof full);
        snprintf(want, sizeof want, "%s.h3", e->name);
        if (strcmp(full, want) != 0) __builtin_trap();
        attn_dump_key_name(&k, buf, sizeof buf);
        if (strcmp(buf, e->name) != 0) __builtin_trap();
    }
    const size_t sl = strlen(e->shape);
    int commas = 0;
    for (size_t i = 0; i < sl; i++) commas += e->shape[i] == ',';
    if (sl < 4 || e->shape[0] != '[' || e->shape[sl - 1] != ']' || commas < 1 || commas > 2)
        __builtin_trap();
    if (commas != (attn_value_per_head(e->key.value) ? 2 : 1)) __builtin_trap();
    const char *self[] = {e->name}, *star[] = {"*"};
    if (!attn_dump_match(self, 1, e->name) || !attn_dump_match(star, 1, e->name)) __builtin_trap();
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->name[i], e->name) == 0) __builtin_trap(); /* unique */
    memcpy(ns->name[ns->n], e->name, len + 1);
    ns->key[ns->n++] = e->key;
    return true;
}

static void check_names(uint8_t pick, const char *text, size_t len) {
    attn_config cfg = {0};
    cfg.arch = (attn_arch)(pick % 3);
    cfg.n_layers = 1 + (pick >> 2) % 3;
    cfg.n_encoder_layers = cfg.arch == ATTN_ARCH_ENCODER_DECODER ? 1 + (pick >> 4) % 2 : 0;
    cfg.n_heads = 4;
    cfg.n_kv_heads = pick & 0x20 ? 2 : 4;
    cfg.head_dim = 8;
    cfg.d_model = 32;
    cfg.vocab_size = 50;
    cfg.mlp = pick & 0x40 ? ATTN_MLP_NONE : ATTN_MLP_GELU;
    cfg.lm_head = pick & 0x80 ? ATTN_LM_HEAD_TIED : ATTN_LM_HEAD_NONE;
    names ns = {.cap = 256};
    ns.name = calloc(ns.cap, sizeof *ns.name);
    ns.key = calloc(ns.cap, sizeof *ns.key);
    if (!ns.name || !ns.key) __builtin_trap();
    size_t calls = attn_dump_each_name(&cfg, collect, &ns);
    if (calls != ns.n || ns.n == 0) __builtin_trap();
    /* the patterns: lines of the text */
    char *copy = malloc(len + 1);
    if (!copy) __builtin_trap();
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *pat[16];
    size_t np = 0;
    for (char *p = copy, *nl; np < 16 && p; p = nl) {
        nl = strchr(p, '\n');
        if (nl) *nl++ = '\0';
        pat[np++] = p;
    }
    attn_dump *d = NULL;
    const attn_dump_opts o = {.patterns = pat, .n_patterns = np, .n_heads = 4, .n_kv_heads = 2};
    if (attn_dump_new(&d, &o, NULL) != ATTN_OK) __builtin_trap();
    for (size_t i = 0; i < ns.n; i++) {
        bool any = false;
        for (size_t j = 0; j < np; j++) any |= fnmatch(pat[j], ns.name[i], 0) == 0;
        if (attn_dump_match(pat, np, ns.name[i]) != any) __builtin_trap();
        attn_capture_key k = ns.key[i];
        if (attn_value_per_head(k.value)) k.head = 1;
        if (attn_dump_wants(d, &k) != any) __builtin_trap();
    }
    attn_dump_free(d);
    free(copy);
    free(ns.name);
    free(ns.key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const int ndim = data[0] & 0x0f;
    const bool small = data[0] & 0x10;
    const uint8_t pick = data[1];
    const size_t piece = 1 + data[2] % 17;
    size_t at = 3;
    int64_t shape[16] = {0};
    bool have = true;
    for (int i = 0; i < ndim && i < 16; i++) {
        if (small) {
            if (at >= size) have = false;
            else shape[i] = data[at++] % 16;
        } else {
            uint64_t u = 0;
            if (size - at < 8) {
                have = false;
            } else {
                for (int b = 0; b < 8; b++) u = u << 8 | data[at++];
            }
            shape[i] = (int64_t)u;
        }
    }
    if (have) {
        check_header(shape, ndim);
        if (small && ndim <= 4) check_write(shape, ndim, piece); /* at most 15^4 values */
    }
    check_names(pick, (const char *)data + at, size - at);
    return 0;
}
