/* Visible escapes for the text columns of the CSV outputs (token texts,
 * labels), so that every record is one physical line; the rule is in
 * attn/write.h (attn_escape_text). */
#include "attn/write.h"

#include <stdint.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

/* The length of the well-formed UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF) that starts s[0..n) (n >= 1, s[0] >= 0x80),
 * or 0 when none does. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0; /* overlong below U+0800 */
        if (c == 0xed) hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90; /* overlong below U+10000 */
        if (c == 0xf4) hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return len;
}

/* One step of the escape of s[0..n) (n >= 1): the bytes s[0..*take) become
 * esc[0..return) when the return is > 0, else they stay as they are. */
static size_t escape_step(const unsigned char *s, size_t n, char esc[4], size_t *take) {
    const unsigned char c = s[0];
    *take = 1;
    char named = c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : c == '\\' ? '\\' : 0;
    if (named) {
        esc[0] = '\\';
        esc[1] = named;
        return 2;
    }
    if (c >= 0x20 && c < 0x7f) return 0;
    if (c >= 0x80) {
        size_t k = utf8_len(s, n);
        if (k) {
            *take = k;
            return 0;
        }
    }
    esc[0] = '\\';
    esc[1] = 'x';
    esc[2] = hex_digits[c >> 4];
    esc[3] = hex_digits[c & 15];
    return 4;
}

size_t attn_escape_text(char *out, size_t cap, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0; /* the whole escaped length, also past cap */
    for (size_t i = 0, take; i < n; i += take) {
        char esc[4];
        size_t k = escape_step(p + i, n - i, esc, &take);
        const char *piece = k ? esc : s + i;
        if (!k) k = take;
        for (size_t j = 0; j < k; j++, len++)
            if (len + 1 < cap) out[len] = piece[j];
    }
    if (cap) out[len < cap ? len : cap - 1] = '\0';
    return len;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

attn_status attn_unescape_text(char *out, size_t *out_n, const char *s, size_t n,
                               attn_error *err) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;
    *out_n = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            out[len++] = (char)p[i];
            continue;
        }
        if (i + 1 == n) {
            out[0] = '\0';
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "escaped text: a lone '\\' at its end (offset %zu)", i);
        }
        unsigned char e = p[i + 1];
        int hi = -1, lo = -1;
        if (e == 'x' && i + 3 < n) {
            hi = hex_value(p[i + 2]);
            lo = hex_value(p[i + 3]);
        }
        if (e == 'n' || e == 't' || e == 'r' || e == '\\') {
            out[len++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : '\\';
            i += 1;
        } else if (hi >= 0 && lo >= 0) {
            out[len++] = (char)(hi << 4 | lo);
            i += 3;
        } else {
            out[0] = '\0';
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "escaped text: '\\' followed by byte 0x%02x at offset %zu is "
                                  "none of \\n \\t \\r \\\\ \\xNN",
                                  e, i);
        }
    }
    out[len] = '\0';
    *out_n = len;
    return ATTN_OK;
}

/* Does s[0..n) need RFC 4180 quotes as a field, written raw or escaped?
 * A comma, a quote, leading or trailing spaces; raw, also a line break or
 * a leading or trailing tab (escaped, they are \n, \r, \t). */
static bool needs_quotes(const char *s, size_t n, bool raw) {
    if (n == 0) return false;
    if (s[0] == ' ' || s[n - 1] == ' ') return true;
    if (raw && (s[0] == '\t' || s[n - 1] == '\t')) return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || (raw && (s[i] == '\n' || s[i] == '\r'))) return true;
    return false;
}

void attn_csv_field(FILE *f, const char *s, bool raw) {
    const size_t n = strlen(s);
    const bool quote = needs_quotes(s, n, raw);
    if (!quote && raw) {
        fwrite(s, 1, n, f);
        return;
    }
    if (quote) putc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        char esc[4];
        size_t take = 1, k = raw ? 0 : escape_step(p + i, n - i, esc, &take);
        if (k) fwrite(esc, 1, k, f);
        for (size_t j = i; !k && j < i + take; j++) {
            if (s[j] == '"') putc('"', f); /* RFC 4180: a quote inside is doubled */
            putc(s[j], f);
        }
        i += take;
    }
    if (quote) putc('"', f);
}
