/* libFuzzer entry point for the safetensors parser (built with
 * -Dfuzzing=true, see README.md).
 * Every accepted image must give tensors whose data can be read in full. */
#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    attn_safetensors *st = NULL;
    attn_error err;
    if (attn_safetensors_parse(&st, data, size, "fuzz", &err) != ATTN_OK) {
        /* the message must be one terminated line */
        if (!memchr(err.message, '\0', sizeof err.message) || strchr(err.message, '\n'))
            __builtin_trap();
        return 0;
    }
    volatile float sink = 0;
    for (size_t i = 0; i < attn_safetensors_count(st); i++) {
        const attn_tensor *t = attn_safetensors_at(st, i);
        if (attn_safetensors_find(st, t->name) != t) __builtin_trap();
        for (size_t k = 0; k < t->numel; k++) sink += t->data[k];
    }
    (void)sink;
    attn_safetensors_close(st);
    return 0;
}
