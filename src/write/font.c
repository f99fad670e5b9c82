/* The texts of the heatmap images: the built-in stb_easy_font (ASCII, drawn
 * from its quads) or a TrueType font (stb_truetype, compiled into Debian's
 * libstb), both into coverage masks of one FONT_LINE-pixel line. */
#include "write/font.h"

#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_truetype.h>

/* stb_easy_font is header-only: its functions are static here; the ones
 * this file does not call would warn. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#define FONT_FILE_MAX ((size_t)64 << 20)
/* The largest glyph bitmap drawn (a 12-pixel font's are far smaller). */
#define GLYPH_MAX 128

struct attn_font {
    unsigned char *data; /* [len] the font file, owned; info points into it */
    stbtt_fontinfo info;
    float scale;  /* font units -> pixels, for a FONT_LINE-pixel line */
    int baseline; /* pixels from the top of the line */
};

attn_status attn_font_from_memory(attn_font **out, const void *buf, size_t len, const char *name,
                                  attn_error *err) {
    *out = NULL;
    if (!buf || len < 12 || len > FONT_FILE_MAX || len > INT32_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: not a TrueType font (%zu bytes)", name,
                              len);
    attn_font *f = calloc(1, sizeof *f);
    unsigned char *data = f ? malloc(len) : NULL;
    if (!data) {
        free(f);
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(data, buf, len);
    f->data = data;
    int offset = stbtt_GetFontOffsetForIndex(data, 0);
    if (offset < 0 || !stbtt_InitFont(&f->info, data, offset)) {
        attn_font_free(f);
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: not a TrueType font", name);
    }
    int ascent, descent, gap;
    stbtt_GetFontVMetrics(&f->info, &ascent, &descent, &gap);
    if (ascent <= descent) {
        attn_font_free(f);
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: a font without a height", name);
    }
    f->scale = stbtt_ScaleForPixelHeight(&f->info, FONT_LINE);
    f->baseline = (int)lroundf((float)ascent * f->scale);
    *out = f;
    return ATTN_OK;
}

attn_status attn_font_open(attn_font **out, const char *path, attn_error *err) {
    *out = NULL;
    char *buf;
    size_t len;
    attn_status rc = attn_read_file(path, FONT_FILE_MAX, "a font", &buf, &len, err);
    if (rc) return rc;
    rc = attn_font_from_memory(out, buf, len, path, err);
    free(buf);
    return rc;
}

void attn_font_free(attn_font *f) {
    if (!f) return;
    free(f->data);
    free(f);
}

void font_mask_free(font_mask *m) {
    if (!m) return;
    free(m->a);
    *m = (font_mask){0};
}

/* The characters of text as the font shows them: escaped (attn_escape_text,
 * valid UTF-8 out), decoded, at most FONT_CHARS_MAX (*cut when more). */
static int decode(unsigned *cp, const char *text, bool builtin, bool *cut) {
    char esc[4 * FONT_CHARS_MAX + 1];
    size_t len = strlen(text);
    *cut = len > FONT_CHARS_MAX;
    size_t n = attn_escape_text(esc, sizeof esc, text, *cut ? FONT_CHARS_MAX : len);
    if (n >= sizeof esc) n = sizeof esc - 1; /* cannot happen: at most 4 bytes a byte */
    int k = 0;
    for (size_t i = 0; i < n && k < FONT_CHARS_MAX;) {
        unsigned char b = (unsigned char)esc[i];
        int extra = b < 0x80 ? 0 : b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
        unsigned c = extra == 0 ? b : extra == 1 ? b & 0x1Fu : extra == 2 ? b & 0x0Fu : b & 0x07u;
        if ((size_t)extra > n - i - 1) break; /* a sequence cut by the buffer (cannot happen) */
        for (int j = 1; j <= extra; j++) c = c << 6 | ((unsigned char)esc[i + (size_t)j] & 0x3Fu);
        i += (size_t)extra + 1;
        cp[k++] = builtin && (c < 32 || c > 126) ? '?' : c;
    }
    return k;
}

/* Advance of each character in pixels, cp[i] -> adv[i] (TrueType: with the
 * kerning to the next one). */
static void advances(int *adv, const unsigned *cp, int n, const attn_font *font) {
    for (int i = 0; i < n; i++) {
        if (!font) {
            char s[2] = {(char)cp[i], 0};
            adv[i] = stb_easy_font_width(s);
            continue;
        }
        int a, lsb;
        stbtt_GetCodepointHMetrics(&font->info, (int)cp[i], &a, &lsb);
        if (i + 1 < n) a += stbtt_GetCodepointKernAdvance(&font->info, (int)cp[i], (int)cp[i + 1]);
        adv[i] = (int)lroundf((float)a * font->scale);
        if (adv[i] < 0) adv[i] = 0;
    }
}

/* Built-in font: the quads of the ASCII text s, filled. */
static attn_status draw_builtin(font_mask *m, const char *s, attn_error *err) {
    size_t n = strlen(s);
    size_t cap = (n + 1) * 64 * 16; /* a glyph has at most a few dozen quads of 64 bytes */
    char *vbuf = malloc(cap);
    if (!vbuf) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory drawing a text");
    int quads = stb_easy_font_print(0, 1, (char *)s, NULL, vbuf, (int)cap);
    for (int q = 0; q < quads; q++) {
        float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
        for (int v = 0; v < 4; v++) {
            float xy[2];
            memcpy(xy, vbuf + ((size_t)q * 4 + (size_t)v) * 16, sizeof xy);
            x0 = fminf(x0, xy[0]), x1 = fmaxf(x1, xy[0]);
            y0 = fminf(y0, xy[1]), y1 = fmaxf(y1, xy[1]);
        }
        for (int y = (int)fmaxf(0, y0); y < (int)fminf((float)m->h, y1); y++)
            for (int x = (int)fmaxf(0, x0); x < (int)fminf((float)m->w, x1); x++)
                m->a[(size_t)y * (size_t)m->w + (size_t)x] = 255;
    }
    free(vbuf);
    return ATTN_OK;
}

/* TrueType: each glyph's bitmap at its pen position. */
static void draw_truetype(font_mask *m, const attn_font *font, const unsigned *cp,
                          const int *adv, int n) {
    unsigned char glyph[GLYPH_MAX * GLYPH_MAX];
    int pen = 0;
    for (int i = 0; i < n; pen += adv[i++]) {
        int g = stbtt_FindGlyphIndex(&font->info, (int)cp[i]);
        int x0, y0, x1, y1;
        stbtt_GetGlyphBitmapBox(&font->info, g, font->scale, font->scale, &x0, &y0, &x1, &y1);
        int gw = x1 - x0, gh = y1 - y0;
        if (gw <= 0 || gh <= 0 || gw > GLYPH_MAX || gh > GLYPH_MAX) continue;
        stbtt_MakeGlyphBitmap(&font->info, glyph, gw, gh, gw, font->scale, font->scale, g);
        for (int y = 0; y < gh; y++) {
            int my = font->baseline + y0 + y;
            if (my < 0 || my >= m->h) continue;
            for (int x = 0; x < gw; x++) {
                int mx = pen + x0 + x;
                if (mx < 0 || mx >= m->w) continue;
                unsigned char *a = &m->a[(size_t)my * (size_t)m->w + (size_t)mx];
                if (glyph[y * gw + x] > *a) *a = glyph[y * gw + x];
            }
        }
    }
}

attn_status font_draw(font_mask *m, const attn_font *font, const char *text, int max_w,
                      attn_error *err) {
    *m = (font_mask){.h = FONT_LINE};
    unsigned *c = calloc(FONT_CHARS_MAX + 2, sizeof *c + sizeof(int));
    if (!c) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory drawing a text");
    int *a = (int *)(c + FONT_CHARS_MAX + 2);
    bool cut;
    int n = decode(c, text, !font, &cut);
    advances(a, c, n, font);
    int total = 0;
    for (int i = 0; i < n; i++) total += a[i];
    if (cut || total > max_w) { /* keep what fits with ".." after it */
        int dots[2];
        unsigned dc[2] = {'.', '.'};
        advances(dots, dc, 2, font);
        int w = dots[0] + dots[1], k = 0;
        while (k < n && w + a[k] <= max_w) w += a[k++];
        n = k;
        if (w <= max_w) {
            c[n] = c[n + 1] = '.';
            a[n] = dots[0], a[n + 1] = dots[1];
            n += 2;
        }
        advances(a, c, n, font); /* the kerning next to the dots */
        for (total = 0, k = 0; k < n && total + a[k] <= max_w; k++) total += a[k];
        n = k;
    }
    attn_status rc = ATTN_OK;
    m->w = total;
    if (total > 0 && !(m->a = calloc((size_t)total * FONT_LINE, 1)))
        rc = attn_error_set(err, ATTN_ERR_NOMEM, "out of memory drawing a text");
    if (!rc && total > 0 && font) draw_truetype(m, font, c, a, n);
    if (!rc && total > 0 && !font) {
        char s[FONT_CHARS_MAX + 3];
        for (int i = 0; i < n; i++) s[i] = (char)c[i];
        s[n] = '\0';
        rc = draw_builtin(m, s, err);
    }
    free(c);
    if (rc) font_mask_free(m);
    return rc;
}
