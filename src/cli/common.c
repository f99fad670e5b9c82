#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("attn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_exit_code(int status) { return status == ATTN_ERR_USAGE ? EXIT_USAGE : EXIT_FAIL; }

int cli_lib_error(const attn_error *err) {
    return cli_error(cli_exit_code(err->status), "%s", err->message);
}

int cli_parse_ids(const char *s, int vocab_size, const char *what, int **ids, size_t *n,
                  attn_error *err) {
    *ids = NULL;
    *n = 0;
    size_t cap = 16, count = 0;
    int *out = malloc(cap * sizeof *out);
    if (!out) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", what);
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' && count == 0) break; /* empty list */
        errno = 0;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || errno == ERANGE || v < INT_MIN || v > INT_MAX) {
            int len = 0;
            while (p[len] && p[len] != ',' && len < 32) len++;
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE, "%s: '%.*s' is not a token id", what, len,
                                  p);
        }
        if (v < 0 || v >= vocab_size) {
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: token id %ld is outside the vocabulary (0..%d)", what, v,
                                  vocab_size - 1);
        }
        if (count == cap) {
            cap *= 2;
            int *grown = realloc(out, cap * sizeof *out);
            if (!grown) {
                free(out);
                return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", what);
            }
            out = grown;
        }
        out[count++] = (int)v;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        if (*p != ',') {
            free(out);
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: expected ',' between token ids, found '%c'", what, *p);
        }
        p++;
    }
    if (count == 0) {
        free(out);
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: no token ids", what);
    }
    *ids = out;
    *n = count;
    return ATTN_OK;
}

int cli_input_ids(const attn_config *cfg, const attn_tokenizer *tok, const char *text,
                  const char *ids, const char *what, int **out, size_t *n, attn_error *err) {
    *out = NULL;
    *n = 0;
    if (ids) return cli_parse_ids(ids, cfg->vocab_size, what, out, n, err);
    if (!tok)
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "%s: the model has no tokenizer; give token ids instead", what);
    int rc = attn_tokenizer_encode(tok, text, strlen(text), out, n, err);
    if (rc) {
        attn_error_prefix(err, "%s", what);
        return rc;
    }
    if (*n == 0) {
        free(*out);
        *out = NULL;
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: the text has no tokens", what);
    }
    return ATTN_OK;
}

int cli_parse_int(const char *s, const char *flag, int min, int max, int *out) {
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    bool number = end != s && *end == '\0' && errno != ERANGE;
    if (!number && min == INT_MIN && max == INT_MAX)
        return cli_error(EXIT_USAGE, "%s: expected an integer, got '%s'", flag, s);
    if (!number || v < min || v > max)
        return cli_error(EXIT_USAGE, "%s: expected an integer from %d to %d, got '%s'", flag, min,
                         max, s);
    *out = (int)v;
    return 0;
}
