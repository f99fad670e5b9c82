/* libFuzzer entry point for the CLI's value parsers (src/cli/common.c):
 * cli_parse_ids ("N,N,...", --ids and --ids-input lines) and cli_parse_int
 * (integer flag values), and cli_parse_width (--width of run and explain). The first input byte picks a vocabulary size and an
 * integer range, the rest is the text (up to its first NUL, as in argv).
 * An accepted id list holds ids inside the vocabulary, is made of digits,
 * signs, spaces and commas only, and reads back the same when printed; an
 * accepted integer lies in its range and reads back the same; an accepted
 * width is 0 or OUT_WIDTH_MIN..OUT_WIDTH_MAX and reads back the same. See
 * README.md. */
#include "cli.h"
#include "fuzz-common.h"
#include "view.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int vocab_sizes[] = {1, 2, 6, 190, 512, 32000, 1 << 20, INT_MAX};
static const int ranges[][2] = {{0, 100}, {1, INT_MAX}, {INT_MIN, INT_MAX}, {-5, 5}};

static void check_ids(const char *text, int vocab_size) {
    int *ids = (int *)&ids; /* not NULL: the parser must reset it */
    size_t n = 99;
    attn_error err;
    int rc = cli_parse_ids(text, vocab_size, "--ids", &ids, &n, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        if (ids || n != 0) __builtin_trap();
        if (rc != ATTN_ERR_USAGE && rc != ATTN_ERR_NOMEM) __builtin_trap();
        if (strncmp(err.message, "--ids: ", 7) != 0) __builtin_trap();
        return;
    }
    if (!ids || n == 0) __builtin_trap();
    if (strspn(text, "0123456789+- \t\n\v\f\r,") != strlen(text)) __builtin_trap();
    /* print the ids and read them back */
    size_t cap = n * 12 + 1, len = 0;
    char *again = malloc(cap);
    if (!again) __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size) __builtin_trap();
        len += (size_t)snprintf(again + len, cap - len, "%s%d", i ? "," : "", ids[i]);
    }
    int *ids2 = NULL;
    size_t n2 = 0;
    if (cli_parse_ids(again, vocab_size, "again", &ids2, &n2, NULL) != ATTN_OK) __builtin_trap();
    if (n2 != n || memcmp(ids, ids2, n * sizeof *ids) != 0) __builtin_trap();
    free(ids2);
    free(again);
    free(ids);
}

static void check_int(const char *text, int min, int max) {
    int out = 12345;
    attn_error err = {0};
    attn_status rc = cli_parse_int(text, "--flag", min, max, &out, &err);
    if (rc != ATTN_OK) {
        if (rc != ATTN_ERR_USAGE || err.status != ATTN_ERR_USAGE || out != 12345 ||
            err.message[0] == '\0')
            __builtin_trap();
        return;
    }
    if (out < min || out > max) __builtin_trap();
    char again[16];
    snprintf(again, sizeof again, "%d", out);
    int back = 0;
    if (cli_parse_int(again, "--flag", min, max, &back, NULL) != ATTN_OK || back != out) __builtin_trap();
}

static void check_width(const char *text) {
    int cols = 12345;
    attn_error err = {0};
    attn_status rc = cli_parse_width(text, &cols, &err);
    if (rc != ATTN_OK) {
        if (rc != ATTN_ERR_USAGE || err.status != ATTN_ERR_USAGE || cols != 12345 ||
            strncmp(err.message, "--width: ", 9) != 0)
            __builtin_trap();
        return;
    }
    if (cols != 0 && (cols < OUT_WIDTH_MIN || cols > OUT_WIDTH_MAX)) __builtin_trap();
    char again[16];
    snprintf(again, sizeof again, "%d", cols);
    int back = -1;
    if (cli_parse_width(again, &back, NULL) != ATTN_OK || back != cols) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned pick = data[0];
    char *text = malloc(size); /* the rest, NUL-terminated */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check_ids(text, vocab_sizes[pick % 8]);
    const int *range = ranges[(pick / 8) % 4];
    check_int(text, range[0], range[1]);
    check_width(text);
    free(text);
    return 0;
}
