/* libFuzzer entry point for input vectors (CSV and .npy): the input is
 * parsed as it is with a few d_model / max_rows / name combinations.
 * See README.md. */
#include "fuzz-common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, int d_model, int max_rows, const char *name) {
    float *out = NULL;
    size_t rows = 0;
    attn_error err;
    int rc = attn_embeddings_parse(&out, &rows, data, size, d_model, max_rows, name, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        free(out);
        return;
    }
    if (max_rows > 0 && rows > (size_t)max_rows) __builtin_trap();
    for (size_t i = 0; i < rows * (size_t)d_model; i++)
        if (!isfinite(out[i])) __builtin_trap();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size, 4, 0, "fuzz.csv");
    one(data, size, 4, 3, "fuzz.npy");
    one(data, size, 1, 0, "fuzz");
    one(data, size, 3, 0, "fuzz");
    return 0;
}
