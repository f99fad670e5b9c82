/* libFuzzer entry point for the batch line split of 'attn run' (standard
 * input, one input per line): cli_split_batch_line, which splits one line
 * (already stripped of its \n / \r) into source and target at the first TAB
 * when pair is true (encoder-decoder models without --source), and refuses
 * NUL bytes. The first input byte's low bit is pair, the rest is the line.
 *
 * The contract checked (the batch split of attn run, src/cli/common.c): the line is accepted exactly when it has no NUL byte and,
 * for a pair, a TAB; then for a pair *source is the text before the first TAB
 * and *target the text after it, and otherwise *target is the whole line and
 * *source NULL; a refusal is ATTN_ERR_USAGE with one line of message. */
#include "cli.h"
#include "fuzz-common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool pair = data[0] & 1;
    size_t len = size - 1;
    char *line = malloc(len + 1), *copy = malloc(len + 1);
    if (!line || !copy) __builtin_trap();
    memcpy(line, data + 1, len);
    line[len] = '\0';
    memcpy(copy, line, len + 1);
    bool has_nul = memchr(copy, '\0', len) != NULL;
    const char *tab = memchr(copy, '\t', len);
    bool accept = !has_nul && (!pair || tab);

    char *source = NULL, *target = NULL;
    attn_error err;
    attn_status rc = cli_split_batch_line(line, len, pair, "line", &source, &target, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        if (accept || rc != ATTN_ERR_USAGE) __builtin_trap();
    } else {
        if (!accept || !target) __builtin_trap();
        if (pair) {
            size_t at = (size_t)(tab - copy);
            if (!source || strlen(source) != at || memcmp(source, copy, at) != 0) __builtin_trap();
            if (strcmp(target, copy + at + 1) != 0) __builtin_trap();
        } else {
            if (source || strcmp(target, copy) != 0) __builtin_trap();
        }
    }
    free(line);
    free(copy);
    return 0;
}
