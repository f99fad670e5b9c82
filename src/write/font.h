/* Private: the texts of the heatmap images, drawn into coverage masks.
 *
 * Both fonts draw into lines of FONT_LINE pixels: the built-in stb_easy_font
 * (its glyphs 7 pixels high above the baseline, 2 below) and a TrueType
 * font (attn_font, stb_truetype) scaled to that pixel height. */
#ifndef ATTN_WRITE_FONT_H
#define ATTN_WRITE_FONT_H

#include "attn/write.h"

#define FONT_LINE 12
/* Characters of one text at most (the rest is cut, ".." shown). */
#define FONT_CHARS_MAX 512

/* A text drawn as coverage: a[y * w + x] from 0 (none) to 255 (full),
 * [h = FONT_LINE, w]. */
typedef struct font_mask {
    int w, h;
    unsigned char *a; /* [h, w], owned */
} font_mask;

/* Draws text (any bytes up to its NUL: escaped as in the CSVs first, see
 * attn_escape_text; with the built-in font every character beyond ASCII
 * becomes '?') into *m, cut with ".." to at most max_w pixels. font NULL:
 * the built-in font. An empty text gives w = 0. ATTN_ERR_NOMEM only. */
attn_status font_draw(font_mask *m, const attn_font *font, const char *text, int max_w,
                      attn_error *err);
void font_mask_free(font_mask *m);

#endif
