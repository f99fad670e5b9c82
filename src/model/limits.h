/* Private: the config's size limits, shared by the config parser (config.c)
 * and the llama2.c import (import_llama2c.c), which refuses a checkpoint
 * whose config would not load. */
#ifndef ATTN_MODEL_LIMITS_H
#define ATTN_MODEL_LIMITS_H

#include "base/util.h"

#include <stdint.h>

#define ATTN_CONFIG_INT_MAX (1 << 24)               /* cap of every integer key */
#define ATTN_CONFIG_ELEMS_MAX ((uint64_t)1 << 31)   /* cap of every implied tensor / row */

/* *out = a * b elements; refused (ATTN_ERR_FORMAT, "NAME: WHAT = A * B
 * elements is more than ...") on overflow or over ATTN_CONFIG_ELEMS_MAX.
 * out may be NULL. */
static inline attn_status attn_check_elems(attn_error *err, const char *name, const char *what,
                                           uint64_t a, uint64_t b, uint64_t *out) {
    uint64_t p;
    if (__builtin_mul_overflow(a, b, &p) || p > ATTN_CONFIG_ELEMS_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %s = %llu * %llu elements is more than %llu",
                              name, what, (unsigned long long)a, (unsigned long long)b,
                              (unsigned long long)ATTN_CONFIG_ELEMS_MAX);
    if (out) *out = p;
    return ATTN_OK;
}

#endif
