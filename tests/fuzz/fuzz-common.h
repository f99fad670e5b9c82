/* Shared checks for the libFuzzer harnesses in this folder. */
#ifndef ATTN_FUZZ_COMMON_H
#define ATTN_FUZZ_COMMON_H

#include "attn/attn.h"

#include <string.h>

/* A failure must leave one terminated line naming something. */
static inline void fuzz_check_error(const attn_error *err, int rc) {
    if (rc == ATTN_OK || err->status != (attn_status)rc) __builtin_trap();
    if (!memchr(err->message, '\0', sizeof err->message)) __builtin_trap();
    if (strchr(err->message, '\n') || err->message[0] == '\0') __builtin_trap();
}

#endif
