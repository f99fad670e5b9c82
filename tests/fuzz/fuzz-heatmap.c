/* libFuzzer entry point for the heatmap renderer (attn/write.h,
 * src/write/heatmap.c, src/write/font.c): fuzzer-chosen sizes, weights and
 * label bytes drawn into memory (no files) by attn_heatmap_render, then
 * encoded as PNG in memory and decoded again with stb_image.
 *
 * Input: byte 0 picks T (1 + b % 40; 255: 300, long enough for 4-pixel
 * cells and thinned labels), byte 1 Tk the same way, byte 2 the flags (bit 0
 * causal, bits 1-2 the number of panels - 1, bit 3 an image title, bit 4
 * labels from the input rather than numbers, bit 5 DejaVu Sans when it is
 * installed, else the built-in font, bit 6 the diverging scale, bit 7 a
 * cell mask: the weights' bytes that are odd), byte 3 the row offset (b % 4,
 * causal maps). Then one byte a weight (b / 200: weights above 1 too; 255 NaN, 254
 * infinity, 253 -1), repeated when the input runs out; the rest up to the
 * end, split at '\n', the labels (any bytes).
 *
 * Checks: a refusal is one line of error; an accepted image has the size of
 * attn_heatmap_layout_of, its masked cells are grey and its other cells
 * are no grey, and its PNG decodes to the same pixels. */
#include "attn/write.h"
#include "fuzz-common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PANELS_MAX 4
#define DEJAVU "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

static const attn_font *dejavu(void) {
    static attn_font *font;
    static bool tried;
    if (!tried) {
        tried = true;
        if (access(DEJAVU, R_OK) == 0 && attn_font_open(&font, DEJAVU, NULL)) font = NULL;
    }
    return font;
}

static int side(uint8_t b) { return b == 255 ? 300 : 1 + b % 40; }

static float weight(uint8_t b) {
    if (b == 255) return __builtin_nanf("");
    if (b == 254) return __builtin_inff();
    if (b == 253) return -1;
    return (float)b / 200;
}

static bool grey(const unsigned char *p) { return p[0] == p[1] && p[1] == p[2]; }

/* Masked cells grey, the others not (the colormap has no grey; the
 * diverging scale's 0 is grey, so there only masked cells are checked). */
static void check_cells(const attn_image *img, const attn_heatmap_layout *lay,
                        const attn_heatmap_panel *p, int n, bool title, bool diverging) {
    int area_w = p->cols * lay->cell > ATTN_HEATMAP_AREA_MIN ? p->cols * lay->cell
                                                              : ATTN_HEATMAP_AREA_MIN;
    int area_h = p->rows * lay->cell > ATTN_HEATMAP_AREA_MIN ? p->rows * lay->cell
                                                              : ATTN_HEATMAP_AREA_MIN;
    int panel_w = ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP + area_w;
    int panel_h = ATTN_HEATMAP_TITLE + ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP + area_h;
    for (int i = 0; i < n; i++) {
        int gx = ATTN_HEATMAP_PAD + (i % lay->cols) * (panel_w + ATTN_HEATMAP_SEP) +
                 ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP;
        int gy = ATTN_HEATMAP_PAD + (title ? ATTN_HEATMAP_TITLE : 0) +
                 (i / lay->cols) * (panel_h + ATTN_HEATMAP_SEP) + ATTN_HEATMAP_TITLE +
                 ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP;
        for (int r = 0; r < p->rows; r++)
            for (int k = 0; k < p->cols; k++) {
                int x = gx + k * lay->cell + lay->cell / 2, y = gy + r * lay->cell + lay->cell / 2;
                const unsigned char *px = img->rgb + ((size_t)y * (size_t)img->w + (size_t)x) * 3;
                bool masked = (p[i].causal && k > p[i].row_offset + r) ||
                              (p[i].mask && p[i].mask[(size_t)r * (size_t)p->cols + (size_t)k]);
                if (diverging ? masked && !grey(px) : grey(px) != masked) __builtin_trap();
            }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const int T = side(data[0]), Tk = side(data[1]), flags = data[2];
    const int n = 1 + ((flags >> 1) & 3);
    const bool causal = flags & 1, title = flags & 8, labels = flags & 16;
    const int offset = causal ? data[3] % 4 : 0;
    const uint8_t *w = data + 4, *end = data + size;
    size_t nw = (size_t)(end - w);
    /* weights [n, T, Tk] */
    size_t count = (size_t)n * (size_t)T * (size_t)Tk;
    float *maps = malloc(count * sizeof *maps);
    if (!maps) return 0;
    unsigned char *mask = malloc((size_t)T * (size_t)Tk);
    if (!mask) {
        free(maps);
        return 0;
    }
    for (size_t i = 0; i < count; i++) maps[i] = nw ? weight(w[i % nw]) : 0.5f;
    for (size_t i = 0; i < (size_t)T * (size_t)Tk; i++) mask[i] = nw ? w[i % nw] & 1 : 0;
    /* labels: the bytes after the weights of one map, split at '\n' */
    size_t skip = (size_t)T * (size_t)Tk < nw ? (size_t)T * (size_t)Tk : nw;
    const uint8_t *text = w + skip;
    char *copy = malloc((size_t)(end - text) + 1);
    int longest = T > Tk ? T : Tk;
    char **texts = calloc((size_t)longest, sizeof *texts);
    if (!copy || !texts) {
        free(maps), free(mask), free(copy), free(texts);
        return 0;
    }
    memcpy(copy, text, (size_t)(end - text));
    copy[end - text] = '\0';
    char *s = copy;
    for (int i = 0; i < longest; i++) {
        texts[i] = s; /* a NUL inside ends the label there */
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0', s = nl + 1;
        else s += strlen(s); /* the rest: empty labels */
    }
    attn_labels lab = {.n = (size_t)longest, .text = texts};
    attn_heatmap_panel p[PANELS_MAX];
    for (int i = 0; i < n; i++)
        p[i] = (attn_heatmap_panel){.weights = maps + (size_t)i * (size_t)T * (size_t)Tk,
                                    .rows = T,
                                    .cols = Tk,
                                    .row_offset = offset,
                                    .causal = causal,
                                    .mask = (flags & 128) ? mask : NULL,
                                    .title = labels ? texts[i % longest] : "head"};
    attn_heatmap_style style = {.title = title ? (labels ? texts[0] : "layer 0, self (decoder)") : NULL,
                                .queries = labels ? &lab : NULL,
                                .keys = labels ? &lab : NULL,
                                .font = (flags & 32) ? dejavu() : NULL,
                                .diverging = (flags & 64) != 0};
    attn_image img;
    attn_error err = {0};
    int rc = attn_heatmap_render(&img, p, n, &style, &err);
    if (rc) {
        fuzz_check_error(&err, rc);
    } else {
        attn_heatmap_layout lay;
        if (attn_heatmap_layout_of(&lay, T, Tk, n, title, NULL)) __builtin_trap();
        if (img.w != lay.width || img.h != lay.height) __builtin_trap();
        check_cells(&img, &lay, p, n, title, style.diverging);
        unsigned char *png;
        size_t len;
        if (attn_image_png(&img, &png, &len, &err) == ATTN_OK) {
            int x, y, c;
            unsigned char *back = stbi_load_from_memory(png, (int)len, &x, &y, &c, 3);
            if (!back || x != img.w || y != img.h ||
                memcmp(back, img.rgb, (size_t)x * (size_t)y * 3) != 0)
                __builtin_trap();
            stbi_image_free(back);
            free(png);
        }
        attn_image_free(&img);
    }
    free(maps), free(mask), free(copy), free(texts);
    return 0;
}
