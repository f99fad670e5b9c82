/* Helpers shared by the Check test binaries: reproducible random numbers,
 * whole-file I/O, and running the attn binary. Failures are Check
 * assertions. */
#ifndef ATTN_TESTS_SUPPORT_H
#define ATTN_TESTS_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: a reproducible stream from a fixed seed ({seed}). */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
uint64_t tu_rng_u64(tu_rng *r);
double tu_rng_unif(tu_rng *r);   /* uniform in (0, 1) */
double tu_rng_normal(tu_rng *r); /* standard normal (Box-Muller) */

/* The whole file, NUL-terminated and malloc'd; NULL when it cannot be opened. */
char *tu_read_file(const char *path);
/* Writes n bytes to path (created or truncated). */
void tu_write_file(const char *path, const void *data, size_t n);

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

#endif
