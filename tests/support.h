/* Helpers shared by the Check test binaries: reproducible random numbers,
 * temporary folders, whole-file I/O, random models written as safetensors,
 * running the attn binary, and running a suite. Failures are Check
 * assertions. */
#ifndef ATTN_TESTS_SUPPORT_H
#define ATTN_TESTS_SUPPORT_H

#include "attn/attn.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random numbers ---- */

/* splitmix64: a reproducible stream from a fixed seed ({seed}). */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
uint64_t tu_rng_u64(tu_rng *r);
/* n, divided by $ATTN_TEST_DIVISOR when set (the asan and valgrind test
 * setups set it: the same checks on fewer random cases), at least 1. */
long tu_scaled(long n);
double tu_rng_unif(tu_rng *r);   /* uniform in (0, 1) */
float tu_rng_signed(tu_rng *r);  /* uniform in (-1, 1): 2 * unif - 1, as a float */
double tu_rng_normal(tu_rng *r); /* standard normal (Box-Muller) */

/* ---- files and folders ---- */

/* The whole file, NUL-terminated and malloc'd; NULL when it cannot be opened.
 * tu_read_file_n also stores its length (without the NUL) in *len. */
char *tu_read_file(const char *path);
char *tu_read_file_n(const char *path, size_t *len);
/* Writes n bytes to path (created or truncated). */
void tu_write_file(const char *path, const void *data, size_t n);
/* Writes the string text to dir/name. */
void tu_write_text(const char *dir, const char *name, const char *text);
/* Creates a fresh folder $TMPDIR/<prefix>XXXXXX (/tmp without TMPDIR) and
 * stores its path in dir[cap]. */
void tu_tmpdir(char *dir, size_t cap, const char *prefix);
/* Removes dir and everything below it; 0 on success. */
int tu_rm_tree(const char *dir);

/* ---- files built byte by byte ---- */

typedef struct tu_bytes {
    unsigned char *p; /* [n] malloc'd; the caller frees it */
    size_t n, cap;
} tu_bytes;
void tu_bytes_put(tu_bytes *b, const void *src, size_t n);
void tu_bytes_le32(tu_bytes *b, uint32_t v); /* 4 bytes, little-endian */

/* ---- random models: tensors collected here, written by attn_safetensors_write ---- */

#define TU_MAX_TENSORS 256
#define TU_NAME_MAX 128
typedef struct tu_tensors {
    size_t n;
    attn_tensor_spec specs[TU_MAX_TENSORS]; /* .name points into names, .data is malloc'd */
    char names[TU_MAX_TENSORS][TU_NAME_MAX];
} tu_tensors;

/* Adds tensor `name`, [d0] when d1 == 0 else [d0, d1]; returns its
 * d0 * max(d1, 1) floats (uninitialised) for the caller to fill. */
float *tu_tensors_add(tu_tensors *ts, const char *name, int64_t d0, int64_t d1);
/* The same, filled with base + scale * tu_rng_signed(r) (float arithmetic). */
const attn_tensor_spec *tu_tensors_rand(tu_tensors *ts, tu_rng *r, const char *name, int64_t d0,
                                        int64_t d1, float base, float scale);
/* The tensor of that name, NULL when there is none. */
const attn_tensor_spec *tu_tensors_find(const tu_tensors *ts, const char *name);
/* Writes every tensor, in the order added, to path. */
void tu_tensors_write(const tu_tensors *ts, const char *path);
/* Frees the data; ts holds no tensor again. */
void tu_tensors_free(tu_tensors *ts);

/* ---- a small decoder in a folder (the CLI and error tests run it) ---- */

/* Vocabulary of 11 words ("<unk>" = id 0), d_model 8, 2 heads, d_ff 16,
 * max_seq_len 12, one pre-norm LayerNorm block, GELU, no bias, learned
 * positions, lm_head tied; word tokenizer vocab.txt. */
enum { TU_DEC_V = 11, TU_DEC_D = 8, TU_DEC_F = 16, TU_DEC_T = 12 };
/* Adds its tensors with random values from r, in this order: tok_embed,
 * pos_embed, the block's, norm.weight, norm.bias. q_rows: the rows of
 * blocks.0.attn.q.weight (TU_DEC_D for a valid model). */
void tu_decoder_tensors(tu_tensors *ts, tu_rng *r, int q_rows);
/* Writes those tensors to dir/model.safetensors, and dir/vocab.txt. */
void tu_decoder_write_weights(const char *dir, tu_rng *r, int q_rows);
/* Writes dir/config.json; extra: members put before "tokenizer", each
 * followed by a comma ("" for none). */
void tu_decoder_write_config(const char *dir, const char *extra);

/* ---- running programs and suites ---- */

/* One run of a program. */
typedef struct tu_result {
    int status; /* exit status, or 128 + signal */
    char *out;  /* standard output */
    char *err;  /* standard error */
} tu_result;

/* Runs exe with args (NULL-terminated, without argv[0]) in folder dir, which
 * also holds the captured output while it runs. stdin_text: standard input
 * (NULL: /dev/null). env: "NAME=VALUE" to set or "NAME" to unset,
 * NULL-terminated, or NULL. */
tu_result tu_run(const char *exe, const char *dir, const char *stdin_text,
                 const char *const *env, const char *const *args);
void tu_result_free(tu_result *r);

/* Runs every test of suite s (output as CK_VERBOSITY says, normal by
 * default), frees it, and returns the exit status for main: EXIT_SUCCESS
 * when all passed, else EXIT_FAILURE. */
int tu_run_suite(Suite *s);

#endif
