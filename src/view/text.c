/* Text helpers shared by the terminal views (maps, explain, predictions):
 * widths in characters (UTF-8 code points), padding, and labels made safe
 * to print. */
#include "view.h"

#include <string.h>

int text_width(const char *s) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

void text_pad(FILE *f, const char *s, int width, bool right) {
    int n = text_width(s);
    if (right)
        for (int i = n; i < width; i++) putc(' ', f);
    fputs(s, f);
    if (!right)
        for (int i = n; i < width; i++) putc(' ', f);
}

void text_label(char *out, size_t cap, const char *s, int width) {
    /* 1. leading spaces shown as U+00B7 '·' (" the" reads "·the"), control
     *    bytes escaped: \n \t \r \xHH */
    char esc[1024];
    size_t n = 0;
    bool lead = true;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 5 < sizeof esc; p++) {
        lead = lead && *p == ' ';
        if (lead) {
            memcpy(esc + n, "\xc2\xb7", 2);
            n += 2;
            continue;
        }
        if (*p >= 0x20 && *p != 0x7f) {
            esc[n++] = (char)*p;
            continue;
        }
        const char *e = *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : NULL;
        if (e) {
            memcpy(esc + n, e, 2);
            n += 2;
        } else {
            n += (size_t)snprintf(esc + n, sizeof esc - n, "\\x%02x", *p);
        }
    }
    esc[n] = '\0';
    /* 2. at most `width` characters; a cut shows as '~' in the last one */
    if (cap == 0) return;
    int total = text_width(esc), keep = total <= width ? total : width - 1;
    size_t i = 0;
    for (int chars = 0; esc[i]; i++) {
        if (((unsigned char)esc[i] & 0xC0) != 0x80 && chars++ == keep) break;
    }
    if (keep < 0) i = 0;
    if (i > cap - 2) i = cap - 2; /* room for '~' and NUL; labels are far shorter */
    memcpy(out, esc, i);
    if (total > width && width > 0) out[i++] = '~';
    out[i] = '\0';
}

void text_put_stripped(FILE *f, const char *buf, size_t len) {
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len, t = e;
        while (t > i && buf[t - 1] == ' ') t--;
        fwrite(buf + i, 1, t - i, f);
        if (nl) putc('\n', f);
        i = e + 1;
    }
}
