/* Heatmap images of attention maps: the layout (attn/write.h, docs/heatmaps.md),
 * the colormap, masked cells, labels, titles and the colour bar, drawn into
 * an RGB buffer; PNG through stb_image_write (Debian's libstb). */
#include "attn/write.h"

#include "base/util.h"
#include "write/font.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

/* The colormap: 256 entries from dark purple through blue, teal and green
 * to light yellow (viridis-like). Made in OKLab: lightness L = 0.27 + 0.68 t,
 * hue 315 - 215 t degrees, chroma 0.13 + 0.05 t^2 reduced until the colour
 * lies in the sRGB gamut, t = i / 255. Its relative luminance rises strictly
 * from each entry to the next, and no entry is a grey (R = G = B): the
 * masked cells' greys are none of its colours. */
static const unsigned char colormap[256][3] = {
    { 61,   2,  80}, { 61,   3,  82}, { 61,   4,  83}, { 61,   6,  84},
    { 61,   7,  86}, { 62,   8,  87}, { 62,  10,  89}, { 62,  11,  90},
    { 62,  13,  91}, { 62,  14,  93}, { 62,  16,  94}, { 62,  17,  96},
    { 62,  18,  97}, { 62,  20,  98}, { 62,  21, 100}, { 62,  22, 101},
    { 62,  23, 102}, { 62,  24, 104}, { 62,  26, 105}, { 62,  27, 106},
    { 62,  28, 108}, { 62,  29, 109}, { 62,  30, 110}, { 62,  32, 112},
    { 61,  33, 113}, { 61,  34, 114}, { 61,  35, 115}, { 61,  36, 117},
    { 61,  37, 118}, { 60,  38, 119}, { 60,  40, 120}, { 60,  41, 121},
    { 60,  42, 123}, { 59,  43, 124}, { 59,  44, 125}, { 59,  45, 126},
    { 58,  46, 127}, { 58,  48, 129}, { 58,  49, 130}, { 57,  50, 131},
    { 57,  51, 132}, { 56,  52, 133}, { 56,  53, 134}, { 55,  54, 135},
    { 55,  56, 136}, { 54,  57, 137}, { 54,  58, 138}, { 53,  59, 139},
    { 52,  60, 140}, { 52,  61, 141}, { 51,  62, 142}, { 50,  64, 143},
    { 49,  65, 144}, { 49,  66, 145}, { 48,  67, 146}, { 47,  68, 147},
    { 46,  69, 148}, { 45,  71, 149}, { 44,  72, 150}, { 43,  73, 151},
    { 42,  74, 152}, { 40,  75, 152}, { 39,  76, 153}, { 38,  78, 154},
    { 36,  79, 155}, { 35,  80, 156}, { 33,  81, 156}, { 32,  82, 157},
    { 30,  83, 158}, { 28,  85, 159}, { 26,  86, 159}, { 23,  87, 160},
    { 21,  88, 161}, { 18,  89, 161}, { 15,  91, 162}, { 10,  92, 163},
    {  5,  93, 163}, {  1,  94, 164}, {  4,  96, 163}, {  4,  97, 162},
    {  4,  98, 162}, {  5,  99, 161}, {  0, 100, 162}, {  1, 101, 161},
    {  2, 103, 161}, {  4, 104, 160}, {  6, 105, 160}, {  2, 106, 160},
    {  4, 107, 160}, {  0, 108, 160}, {  3, 109, 160}, {  6, 110, 159},
    {  3, 111, 160}, {  6, 113, 159}, {  3, 114, 160}, {  7, 115, 159},
    {  4, 116, 160}, {  1, 117, 160}, {  6, 118, 159}, {  3, 119, 160},
    {  0, 120, 160}, {  6, 121, 160}, {  4, 122, 160}, {  1, 123, 160},
    {  8, 124, 160}, {  5, 125, 160}, {  3, 126, 161}, {  1, 127, 161},
    {  9, 128, 160}, {  7, 129, 161}, {  5, 130, 161}, {  3, 131, 161},
    {  2, 132, 161}, {  0, 133, 162}, {  9, 134, 161}, {  8, 135, 161},
    {  7, 136, 162}, {  6, 137, 162}, {  5, 138, 162}, {  4, 139, 162},
    {  3, 140, 162}, {  3, 141, 163}, {  2, 143, 163}, {  2, 144, 163},
    {  1, 145, 163}, {  1, 146, 163}, {  1, 147, 163}, {  1, 148, 163},
    {  2, 149, 163}, {  2, 150, 163}, {  3, 151, 163}, {  3, 152, 163},
    {  4, 153, 164}, {  5, 154, 164}, {  7, 155, 164}, {  8, 156, 164},
    { 10, 157, 164}, { 11, 158, 164}, { 13, 159, 164}, {  1, 160, 164},
    {  3, 161, 164}, {  6, 162, 164}, {  9, 163, 164}, { 12, 164, 164},
    { 14, 165, 163}, {  3, 166, 164}, {  7, 167, 163}, { 10, 168, 163},
    { 14, 169, 163}, {  3, 171, 163}, {  8, 171, 163}, { 13, 172, 163},
    {  2, 174, 163}, {  7, 175, 162}, { 13, 176, 162}, {  3, 177, 162},
    {  9, 178, 162}, { 15, 179, 161}, {  7, 180, 161}, { 14, 181, 161},
    {  5, 182, 160}, { 13, 183, 160}, {  5, 184, 160}, { 14, 185, 159},
    {  7, 187, 159}, { 15, 188, 158}, { 10, 189, 158}, {  3, 190, 157},
    { 14, 191, 156}, {  9, 192, 156}, {  4, 193, 155}, { 16, 194, 154},
    { 13, 195, 153}, { 10, 197, 153}, {  7, 198, 152}, {  5, 199, 151},
    {  4, 200, 149}, {  3, 201, 148}, { 18, 202, 147}, { 27, 203, 147},
    { 35, 204, 146}, { 41, 204, 145}, { 46, 205, 144}, { 51, 206, 143},
    { 56, 207, 142}, { 61, 208, 141}, { 65, 208, 140}, { 69, 209, 139},
    { 73, 210, 138}, { 77, 211, 137}, { 80, 211, 136}, { 84, 212, 135},
    { 88, 213, 134}, { 91, 213, 133}, { 94, 214, 132}, { 98, 215, 131},
    {101, 215, 130}, {104, 216, 129}, {107, 217, 128}, {111, 217, 127},
    {114, 218, 126}, {117, 219, 125}, {120, 219, 124}, {123, 220, 123},
    {126, 220, 122}, {129, 221, 120}, {132, 222, 119}, {135, 222, 118},
    {138, 223, 117}, {141, 223, 116}, {144, 224, 115}, {147, 224, 114},
    {150, 225, 112}, {152, 225, 111}, {155, 226, 110}, {158, 227, 109},
    {161, 227, 108}, {164, 228, 106}, {167, 228, 105}, {170, 228, 104},
    {172, 229, 103}, {175, 229, 102}, {178, 230, 100}, {181, 230,  99},
    {184, 231,  98}, {186, 231,  97}, {189, 232,  96}, {192, 232,  94},
    {195, 232,  93}, {197, 233,  92}, {200, 233,  91}, {203, 234,  90},
    {206, 234,  88}, {208, 234,  87}, {211, 235,  86}, {214, 235,  85},
    {216, 235,  84}, {219, 236,  83}, {222, 236,  82}, {225, 236,  80},
    {227, 237,  79}, {230, 237,  78}, {233, 237,  77}, {235, 237,  76},
    {238, 238,  75}, {241, 238,  74}, {243, 238,  73}, {246, 238,  72},
    {249, 239,  72}, {251, 239,  71}, {254, 239,  70}, {255, 239,  92},
    {255, 240, 112}, {255, 240, 129}, {255, 240, 143}, {255, 241, 156},
};

/* The masked cells: a grey ground with a lighter diagonal line wherever
 * (x + y) % 4 == 0 (image coordinates, so the lines run on across cells). */
#define MASK_GROUND 0x90
#define MASK_LINE 0xC8
#define MASK_PERIOD 4
/* Greys of the rest: background, texts, the colour bar's frame and ticks. */
#define GREY_BACKGROUND 0xFF
#define GREY_TITLE 0x00
#define GREY_LABEL 0x30
#define GREY_FRAME 0x60

void attn_image_free(attn_image *img) {
    if (!img) return;
    free(img->rgb);
    *img = (attn_image){0};
}

/* ---- PNG ---- */

typedef struct png_sink {
    FILE *f;                         /* to a file, or */
    unsigned char *buf;              /* [len] to memory */
    size_t len;
    bool failed;
} png_sink;

static void png_to_file(void *ctx, void *data, int size) {
    png_sink *s = ctx;
    if (size > 0 && fwrite(data, 1, (size_t)size, s->f) != (size_t)size) s->failed = true;
}

static void png_to_memory(void *ctx, void *data, int size) {
    png_sink *s = ctx;
    if (size <= 0 || s->failed) return;
    unsigned char *b = realloc(s->buf, s->len + (size_t)size);
    if (!b) {
        s->failed = true;
        return;
    }
    memcpy(b + s->len, data, (size_t)size);
    s->buf = b;
    s->len += (size_t)size;
}

static attn_status check_image(const attn_image *img, attn_error *err) {
    if (!img || !img->rgb || img->w < 1 || img->h < 1 || img->w > ATTN_HEATMAP_MAX_SIDE ||
        img->h > ATTN_HEATMAP_MAX_SIDE)
        return attn_error_set(err, ATTN_ERR_USAGE, "no image to write");
    return ATTN_OK;
}

attn_status attn_image_write_png(const attn_image *img, FILE *f, attn_error *err) {
    attn_status rc = check_image(img, err);
    if (rc) return rc;
    png_sink s = {.f = f};
    if (!stbi_write_png_to_func(png_to_file, &s, img->w, img->h, 3, img->rgb, img->w * 3))
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory encoding a PNG");
    if (s.failed || ferror(f)) return attn_error_set(err, ATTN_ERR_IO, "write failed");
    return ATTN_OK;
}

attn_status attn_image_png(const attn_image *img, unsigned char **png, size_t *len,
                           attn_error *err) {
    *png = NULL;
    *len = 0;
    attn_status rc = check_image(img, err);
    if (rc) return rc;
    png_sink s = {0};
    if (!stbi_write_png_to_func(png_to_memory, &s, img->w, img->h, 3, img->rgb, img->w * 3) ||
        s.failed) {
        free(s.buf);
        return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory encoding a PNG");
    }
    *png = s.buf;
    *len = s.len;
    return ATTN_OK;
}

/* ---- layout ---- */

/* The sizes of panels of [T, Tk] with cells of `cell` pixels. */
typedef struct geometry {
    int64_t area_w, area_h, panel_w, panel_h, width, height;
} geometry;

static geometry measure(int T, int Tk, int cols, int rows, bool title, int64_t cell) {
    geometry g;
    g.area_w = (int64_t)Tk * cell > ATTN_HEATMAP_AREA_MIN ? (int64_t)Tk * cell : ATTN_HEATMAP_AREA_MIN;
    g.area_h = (int64_t)T * cell > ATTN_HEATMAP_AREA_MIN ? (int64_t)T * cell : ATTN_HEATMAP_AREA_MIN;
    g.panel_w = ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP + g.area_w;
    g.panel_h = ATTN_HEATMAP_TITLE + ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP + g.area_h;
    g.width = 2 * ATTN_HEATMAP_PAD + cols * g.panel_w + (cols - 1) * ATTN_HEATMAP_SEP +
              ATTN_HEATMAP_BAR_GAP + ATTN_HEATMAP_BAR_W + ATTN_HEATMAP_TICK +
              ATTN_HEATMAP_TICK_LABELS;
    g.height = 2 * ATTN_HEATMAP_PAD + (title ? ATTN_HEATMAP_TITLE : 0) + rows * g.panel_h +
               (rows - 1) * ATTN_HEATMAP_SEP;
    return g;
}

static bool too_large(const geometry *g) {
    return g->width > ATTN_HEATMAP_MAX_SIDE || g->height > ATTN_HEATMAP_MAX_SIDE ||
           g->width * g->height > ATTN_HEATMAP_MAX_PIXELS;
}

attn_status attn_heatmap_layout_of(attn_heatmap_layout *lay, int T, int Tk, int n, bool title,
                                   attn_error *err) {
    *lay = (attn_heatmap_layout){0};
    if (T < 1 || Tk < 1)
        return attn_error_set(err, ATTN_ERR_USAGE, "heatmap: a map of %d x %d positions", T, Tk);
    if (n < 1 || n > ATTN_HEATMAP_PANELS_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "heatmap: %d maps in one image (1 to %d)", n,
                              ATTN_HEATMAP_PANELS_MAX);
    int cols = 1;
    while (cols * cols < n) cols++;
    int rows = (n + cols - 1) / cols;
    int longest = T > Tk ? T : Tk;
    int64_t cell = ATTN_HEATMAP_CELL_BUDGET / longest;
    if (cell > ATTN_HEATMAP_CELL_MAX) cell = ATTN_HEATMAP_CELL_MAX;
    if (cell < ATTN_HEATMAP_CELL_MIN) cell = ATTN_HEATMAP_CELL_MIN;
    geometry g = measure(T, Tk, cols, rows, title, cell); /* int64: no overflow for int T, Tk */
    while (too_large(&g) && cell > 1) g = measure(T, Tk, cols, rows, title, --cell);
    if (too_large(&g))
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "heatmap: %d map%s of %d x %d positions do not fit in an image of at "
                              "most %d pixels a side and %lld pixels",
                              n, n == 1 ? "" : "s", T, Tk, ATTN_HEATMAP_MAX_SIDE,
                              (long long)ATTN_HEATMAP_MAX_PIXELS);
    *lay = (attn_heatmap_layout){.width = (int)g.width,
                                 .height = (int)g.height,
                                 .cell = (int)cell,
                                 .cols = cols,
                                 .rows = rows,
                                 .label_step = (int)((ATTN_HEATMAP_LABEL_PITCH + cell - 1) / cell)};
    return ATTN_OK;
}

/* ---- drawing ---- */

static void put(attn_image *im, int x, int y, const unsigned char c[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->rgb + ((size_t)y * (size_t)im->w + (size_t)x) * 3, c, 3);
}

static void fill(attn_image *im, int x0, int y0, int w, int h, const unsigned char c[3]) {
    for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < im->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < im->w; x++) put(im, x, y, c);
}

static void grey(unsigned char c[3], int v) { c[0] = c[1] = c[2] = (unsigned char)v; }

/* Blends the coverage mask m in `ink` onto the image: upright with its top
 * left corner at (x, y), or rotated a quarter turn counter-clockwise (read
 * from the bottom up) with its bottom left corner at (x, y). */
static void blend(attn_image *im, const font_mask *m, int x, int y, bool rotated, int ink) {
    for (int my = 0; my < m->h; my++)
        for (int mx = 0; mx < m->w; mx++) {
            unsigned a = m->a[(size_t)my * (size_t)m->w + (size_t)mx];
            if (!a) continue;
            int px = rotated ? x + my : x + mx, py = rotated ? y - 1 - mx : y + my;
            if (px < 0 || py < 0 || px >= im->w || py >= im->h) continue;
            unsigned char *p = im->rgb + ((size_t)py * (size_t)im->w + (size_t)px) * 3;
            for (int k = 0; k < 3; k++) p[k] = (unsigned char)((p[k] * (255 - a) + (unsigned)ink * a + 127) / 255);
        }
}

typedef enum { TEXT_LEFT, TEXT_RIGHT, TEXT_UP } text_place;

/* Draws s at most max_w pixels long: TEXT_LEFT from (x, y) (its top left),
 * TEXT_RIGHT ending at x, TEXT_UP read upwards from (x, y) (the bottom left
 * of its turned box, FONT_LINE wide). */
static attn_status text(attn_image *im, const attn_font *font, const char *s, int x, int y,
                        int max_w, text_place place, int ink, attn_error *err) {
    if (max_w <= 0) return ATTN_OK;
    font_mask m;
    attn_status rc = font_draw(&m, font, s, max_w, err);
    if (rc) return rc;
    if (m.w > 0) blend(im, &m, place == TEXT_RIGHT ? x - m.w : x, y, place == TEXT_UP, ink);
    font_mask_free(&m);
    return ATTN_OK;
}

/* The colormap entry of weight w on a scale to vmax > 0. */
static int shade(float w, double vmax) {
    if (!isfinite(w) || w <= 0) return 0;
    double t = (double)w / vmax;
    return t >= 1 ? 255 : (int)floor(t * 255 + 0.5);
}

/* The diverging scale: blue (t = -1), light grey (0), red (+1). */
static const unsigned char div_neg[3] = {33, 102, 172}, div_mid[3] = {247, 247, 247},
                           div_pos[3] = {178, 24, 43};

/* The colour of signed value w on the diverging scale to vmax > 0. */
static void diverge(unsigned char c[3], double w, double vmax) {
    double t = isfinite(w) ? w / vmax : 0;
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    const unsigned char *end = t < 0 ? div_neg : div_pos;
    const double a = fabs(t);
    for (int i = 0; i < 3; i++)
        c[i] = (unsigned char)floor(div_mid[i] + a * (end[i] - div_mid[i]) + 0.5);
}

static bool masked(const attn_heatmap_panel *p, int r, int c) {
    return (p->causal && c > p->row_offset + r) || (p->mask && p->mask[(size_t)r * (size_t)p->cols + (size_t)c]);
}

static const char *label(const attn_labels *l, int pos, char *num, size_t cap) {
    if (l) return attn_labels_at(l, pos);
    snprintf(num, cap, "%d", pos);
    return num;
}

/* One panel with its top left corner at (x0, y0). */
static attn_status draw_panel(attn_image *im, const attn_heatmap_layout *lay,
                              const attn_heatmap_panel *p, const attn_heatmap_style *s, int x0,
                              int y0, int title_w, double vmax, attn_error *err) {
    const int c = lay->cell;
    const int gx = x0 + ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP;
    const int gy = y0 + ATTN_HEATMAP_TITLE + ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP;
    attn_status rc = ATTN_OK;
    if (p->title)
        rc = text(im, s->font, p->title, x0, y0 + (ATTN_HEATMAP_TITLE - FONT_LINE) / 2, title_w,
                  TEXT_LEFT, GREY_TITLE, err);
    /* the cells: map [rows, cols] */
    for (int r = 0; r < p->rows; r++) {
        const float *row = p->weights + (size_t)r * (size_t)p->cols; /* [cols] */
        for (int k = 0; k < p->cols; k++) {
            const int cx = gx + k * c, cy = gy + r * c;
            if (!masked(p, r, k)) {
                unsigned char dc[3];
                if (s->diverging) diverge(dc, row[k], vmax);
                fill(im, cx, cy, c, c, s->diverging ? dc : colormap[shade(row[k], vmax)]);
                continue;
            }
            for (int y = cy; y < cy + c; y++)
                for (int x = cx; x < cx + c; x++) {
                    unsigned char g[3];
                    grey(g, (x + y) % MASK_PERIOD == 0 ? MASK_LINE : MASK_GROUND);
                    put(im, x, y, g);
                }
        }
    }
    /* labels: the queries left of the rows, the keys above the columns */
    char num[16];
    const int line_top = (c - FONT_LINE) / 2; /* centred on the row or column (may be < 0) */
    for (int r = 0; !rc && r < p->rows; r++) {
        int pos = p->row_offset + r;
        if (pos % lay->label_step) continue;
        rc = text(im, s->font, label(s->queries, pos, num, sizeof num), gx - ATTN_HEATMAP_GAP,
                  gy + r * c + line_top, ATTN_HEATMAP_LABELS - 2, TEXT_RIGHT, GREY_LABEL, err);
    }
    for (int k = 0; !rc && k < p->cols; k++) {
        if (k % lay->label_step) continue;
        rc = text(im, s->font, label(s->keys, k, num, sizeof num), gx + k * c + line_top,
                  gy - ATTN_HEATMAP_GAP, ATTN_HEATMAP_LABELS - 2, TEXT_UP, GREY_LABEL, err);
    }
    return rc;
}

/* The colour bar from 0 (diverging: -vmax) at the bottom to vmax at the
 * top, at (x, y), h pixels high. */
static attn_status draw_bar(attn_image *im, const attn_font *font, int x, int y, int h,
                            double vmax, bool diverging, attn_error *err) {
    unsigned char frame[3];
    grey(frame, GREY_FRAME);
    fill(im, x - 1, y - 1, ATTN_HEATMAP_BAR_W + 2, h + 2, frame);
    for (int i = 0; i < h; i++) {
        int idx = h == 1 ? 255 : (int)floor(255.0 * (h - 1 - i) / (h - 1) + 0.5);
        unsigned char dc[3];
        if (diverging) diverge(dc, (idx / 127.5 - 1) * vmax, vmax);
        fill(im, x, y + i, ATTN_HEATMAP_BAR_W, 1, diverging ? dc : colormap[idx]);
    }
    static const double ticks[] = {0, 0.5, 1};
    attn_status rc = ATTN_OK;
    for (int t = 0; !rc && t < 3; t++) {
        int ty = y + (int)floor((1 - ticks[t]) * (h - 1) + 0.5);
        fill(im, x + ATTN_HEATMAP_BAR_W, ty, ATTN_HEATMAP_TICK, 1, frame);
        char v[32];
        snprintf(v, sizeof v, "%.3g", (diverging ? 2 * ticks[t] - 1 : ticks[t]) * vmax);
        rc = text(im, font, v, x + ATTN_HEATMAP_BAR_W + ATTN_HEATMAP_TICK + 2, ty - FONT_LINE / 2,
                  ATTN_HEATMAP_TICK_LABELS - 2, TEXT_LEFT, GREY_LABEL, err);
    }
    return rc;
}

attn_status attn_heatmap_render(attn_image *out, const attn_heatmap_panel *panels, int n,
                                const attn_heatmap_style *style, attn_error *err) {
    *out = (attn_image){0};
    static const attn_heatmap_style plain = {0};
    const attn_heatmap_style *s = style ? style : &plain;
    if (!panels || n < 1)
        return attn_error_set(err, ATTN_ERR_USAGE, "heatmap: no map to draw");
    const attn_heatmap_panel *p0 = &panels[0];
    for (int i = 0; i < n; i++)
        if (!panels[i].weights || panels[i].rows != p0->rows || panels[i].cols != p0->cols ||
            panels[i].row_offset != p0->row_offset || panels[i].row_offset < 0)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "heatmap: map %d is not of the first map's %d x %d positions", i,
                                  p0->rows, p0->cols);
    attn_heatmap_layout lay;
    attn_status rc = attn_heatmap_layout_of(&lay, p0->rows, p0->cols, n, s->title != NULL, err);
    if (rc) return rc;
    double vmax = 0;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < p0->rows; r++)
            for (int k = 0; k < p0->cols; k++) {
                float w = panels[i].weights[(size_t)r * (size_t)p0->cols + (size_t)k];
                if (s->diverging) w = fabsf(w);
                if (!masked(&panels[i], r, k) && isfinite(w) && w > vmax) vmax = w;
            }
    if (vmax <= 0) vmax = 1;
    size_t bytes;
    if (!attn_mul_size((size_t)lay.width * (size_t)lay.height, 3, &bytes))
        return attn_error_set(err, ATTN_ERR_NOMEM, "heatmap: image size overflows");
    attn_image im = {.w = lay.width, .h = lay.height, .rgb = malloc(bytes)};
    if (!im.rgb)
        return attn_error_set(err, ATTN_ERR_NOMEM, "heatmap: out of memory for a %d x %d image",
                              lay.width, lay.height);
    memset(im.rgb, GREY_BACKGROUND, bytes);
    const geometry g = measure(p0->rows, p0->cols, lay.cols, lay.rows, s->title != NULL, lay.cell);
    const int top = ATTN_HEATMAP_PAD + (s->title ? ATTN_HEATMAP_TITLE : 0);
    if (s->title)
        rc = text(&im, s->font, s->title, ATTN_HEATMAP_PAD,
                  ATTN_HEATMAP_PAD + (ATTN_HEATMAP_TITLE - FONT_LINE) / 2,
                  lay.width - 2 * ATTN_HEATMAP_PAD, TEXT_LEFT, GREY_TITLE, err);
    for (int i = 0; !rc && i < n; i++) {
        int x0 = ATTN_HEATMAP_PAD + (i % lay.cols) * (int)(g.panel_w + ATTN_HEATMAP_SEP);
        int y0 = top + (i / lay.cols) * (int)(g.panel_h + ATTN_HEATMAP_SEP);
        int title_w = lay.cols == 1 ? lay.width - x0 - ATTN_HEATMAP_PAD : (int)g.panel_w;
        rc = draw_panel(&im, &lay, &panels[i], s, x0, y0, title_w, vmax, err);
    }
    if (!rc)
        rc = draw_bar(&im, s->font,
                      ATTN_HEATMAP_PAD + lay.cols * (int)g.panel_w +
                          (lay.cols - 1) * ATTN_HEATMAP_SEP + ATTN_HEATMAP_BAR_GAP,
                      top + ATTN_HEATMAP_TITLE + ATTN_HEATMAP_LABELS + ATTN_HEATMAP_GAP,
                      (int)g.area_h, vmax, s->diverging, err);
    if (rc) {
        attn_image_free(&im);
        return rc;
    }
    *out = im;
    return ATTN_OK;
}

size_t attn_heatmap_title(const attn_capture_key *key, attn_title_part part, char *buf,
                          size_t cap) {
    char num[16], head[24];
    const char *h = attn_head_name(key->head, num, sizeof num);
    if (key->head >= 0) snprintf(head, sizeof head, "head %s", h);
    else snprintf(head, sizeof head, "%s", h);
    const char *kind = attn_kind_name(key->kind), *stack = attn_stack_name(key->stack);
    int n;
    if (part == ATTN_TITLE_HEAD) n = snprintf(buf, cap, "%s", head);
    else if (part == ATTN_TITLE_LAYER)
        n = snprintf(buf, cap, "layer %d, %s (%s)", key->layer, kind, stack);
    else n = snprintf(buf, cap, "layer %d, %s, %s (%s)", key->layer, head, kind, stack);
    return n < 0 ? 0 : (size_t)n;
}
