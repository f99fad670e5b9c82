/* libFuzzer entry point for the escapes of the CSV text columns
 * (attn/write.h, src/write/escape.c): attn_escape_text, attn_unescape_text
 * and attn_csv_field. For any bytes: the escape is at most 4 bytes per
 * byte, holds no control byte, is valid UTF-8 and unescapes to the input;
 * cut to a smaller buffer it is a prefix of the whole. The input up to its
 * first NUL written as one CSV field, escaped and raw, reads back (RFC 4180)
 * to the same text, and escaped it is one line. The input read as escaped
 * text either unescapes to no more bytes, or is refused with one line of
 * error. See README.md. */
#include "attn/write.h"
#include "fuzz-common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Well-formed UTF-8 (RFC 3629), decoded code point by code point. */
static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc0 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3
                   : c >= 0xf0 && c < 0xf8 ? 4 : 0;
        if (!len || len > n - i) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        uint32_t min = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
        i += len;
    }
    return true;
}

static void check_escape(const char *in, size_t n) {
    size_t len = attn_escape_text(NULL, 0, in, n);
    if (len > 4 * n) __builtin_trap();
    char *out = malloc(len + 1);
    char *back = malloc(len + 1);
    if (!out || !back) __builtin_trap();
    if (attn_escape_text(out, len + 1, in, n) != len || out[len] != '\0') __builtin_trap();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) __builtin_trap();
    if (!valid_utf8((const unsigned char *)out, len)) __builtin_trap();
    size_t back_n = 0;
    if (attn_unescape_text(back, &back_n, out, len, NULL) != ATTN_OK) __builtin_trap();
    if (back_n != n || memcmp(back, in, n) != 0) __builtin_trap();
    /* a smaller buffer: the same return, a prefix of the whole */
    size_t cap = len / 2 + 1;
    if (attn_escape_text(back, cap, in, n) != len) __builtin_trap();
    if (strlen(back) != cap - 1 || memcmp(back, out, cap - 1) != 0) __builtin_trap();
    free(back);
    free(out);
}

/* Reads the one RFC 4180 field f[0..n) back into out (n + 1 bytes); false
 * when it is not exactly one field. */
static bool read_field(const char *f, size_t n, char *out, size_t *out_n) {
    size_t k = 0;
    if (n == 0 || f[0] != '"') {
        for (size_t i = 0; i < n; i++) {
            if (f[i] == '"' || f[i] == ',' || f[i] == '\n' || f[i] == '\r') return false;
            out[k++] = f[i];
        }
    } else {
        if (n < 2 || f[n - 1] != '"') return false;
        for (size_t i = 1; i < n - 1; i++) {
            if (f[i] == '"') {
                if (i + 1 >= n - 1 || f[i + 1] != '"') return false;
                i++;
            }
            out[k++] = f[i];
        }
    }
    *out_n = k;
    return true;
}

static void check_field(const char *text, bool raw) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return;
    attn_csv_field(f, text, raw);
    if (fclose(f) != 0) __builtin_trap();
    char *field = malloc(n + 1);
    char *back = malloc(n + 1);
    if (!field || !back) __builtin_trap();
    size_t field_n = 0, back_n = 0;
    if (!read_field(buf, n, field, &field_n)) __builtin_trap();
    if (raw) {
        back_n = field_n;
        memcpy(back, field, field_n);
    } else {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) __builtin_trap(); /* one line */
        if (attn_unescape_text(back, &back_n, field, field_n, NULL) != ATTN_OK) __builtin_trap();
    }
    if (back_n != strlen(text) || memcmp(back, text, back_n) != 0) __builtin_trap();
    free(back);
    free(field);
    free(buf);
}

static void check_unescape(const char *in, size_t n) {
    char *out = malloc(n + 1);
    if (!out) __builtin_trap();
    size_t out_n = 99;
    attn_error err;
    attn_status rc = attn_unescape_text(out, &out_n, in, n, &err);
    if (rc != ATTN_OK) {
        fuzz_check_error(&err, rc);
        if (rc != ATTN_ERR_FORMAT || out_n != 0) __builtin_trap();
    } else if (out_n > n || out[out_n] != '\0') {
        __builtin_trap();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = malloc(size + 1); /* the input, and NUL-terminated for the CSV field */
    if (!in) return 0;
    if (size) memcpy(in, data, size);
    in[size] = '\0';
    check_escape(in, size);
    check_field(in, false);
    check_field(in, true);
    check_unescape(in, size);
    free(in);
    return 0;
}
