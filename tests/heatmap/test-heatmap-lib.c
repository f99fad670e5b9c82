/* The heatmap renderer's library API (attn/write.h) without the CLI: the
 * layout at its limits (the numbers worked out by hand from the formula of
 * docs/heatmaps.md), refusals with one line of error, titles, fonts, and
 * the PNG of an image read back with stb_image. */
#include "attn/write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        checks++;                                                                            \
        if (!(cond)) {                                                                       \
            failures++;                                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                      \
            printf(__VA_ARGS__);                                                             \
            putchar('\n');                                                                   \
        }                                                                                    \
    } while (0)

static bool one_line(const attn_error *e) {
    return e->message[0] && !strchr(e->message, '\n');
}

static void test_layout(void) {
    attn_heatmap_layout l;
    attn_error e = {0};
    /* 6 positions: 24-pixel cells, the area at least 120, no thinning */
    CHECK(attn_heatmap_layout_of(&l, 6, 6, 1, false, &e) == ATTN_OK, "6x6");
    CHECK(l.cell == 24 && l.label_step == 1 && l.width == 16 + 84 + 144 + 82 &&
              l.height == 16 + 104 + 144,
          "6x6: cell %d step %d %dx%d", l.cell, l.label_step, l.width, l.height);
    /* 3 positions: the area's minimum */
    CHECK(attn_heatmap_layout_of(&l, 3, 2, 1, false, NULL) == ATTN_OK && l.width == 16 + 84 + 120 + 82 &&
              l.height == 16 + 104 + 120, "3x2: %dx%d", l.width, l.height);
    /* 200 positions: the 4-pixel floor, every 4th label */
    CHECK(attn_heatmap_layout_of(&l, 200, 200, 1, false, NULL) == ATTN_OK && l.cell == 4 &&
              l.label_step == 4 && l.width == 982 && l.height == 920,
          "200: cell %d step %d %dx%d", l.cell, l.label_step, l.width, l.height);
    /* 16 heads of 500 positions: 4 px too wide, 3 px too many pixels, 2 px fit */
    CHECK(attn_heatmap_layout_of(&l, 500, 500, 16, true, NULL) == ATTN_OK && l.cell == 2 &&
              l.cols == 4 && l.rows == 4 && l.width == 4482 && l.height == 4500 &&
              l.label_step == 7,
          "16x500: cell %d %dx%d step %d", l.cell, l.width, l.height, l.label_step);
    /* 5 panels: 3 columns, 2 rows */
    CHECK(attn_heatmap_layout_of(&l, 4, 4, 5, true, NULL) == ATTN_OK && l.cols == 3 && l.rows == 2,
          "5 panels: %d x %d", l.cols, l.rows);
    /* too large even with 1-pixel cells; bad sizes */
    CHECK(attn_heatmap_layout_of(&l, 10000, 10000, 1, false, &e) == ATTN_ERR_USAGE && one_line(&e) &&
              l.width == 0,
          "10000: %s", e.message);
    CHECK(attn_heatmap_layout_of(&l, 0, 3, 1, false, &e) == ATTN_ERR_USAGE && one_line(&e), "T 0");
    CHECK(attn_heatmap_layout_of(&l, 3, 3, 0, false, &e) == ATTN_ERR_USAGE, "n 0");
    CHECK(attn_heatmap_layout_of(&l, 3, 3, ATTN_HEATMAP_PANELS_MAX + 1, false, &e) == ATTN_ERR_USAGE,
          "too many panels");
    CHECK(attn_heatmap_layout_of(&l, 2147483647, 1, 1, false, &e) == ATTN_ERR_USAGE, "INT_MAX");
}

static void test_titles(void) {
    char buf[64];
    attn_capture_key k = {.value = ATTN_V_WEIGHTS, .stack = ATTN_STACK_DECODER, .layer = 3,
                          .kind = ATTN_KIND_SELF, .head = 2};
    attn_heatmap_title(&k, ATTN_TITLE_MAP, buf, sizeof buf);
    CHECK(strcmp(buf, "layer 3, head 2, self (decoder)") == 0, "%s", buf);
    k.head = ATTN_HEAD_MEAN;
    k.kind = ATTN_KIND_CROSS;
    attn_heatmap_title(&k, ATTN_TITLE_MAP, buf, sizeof buf);
    CHECK(strcmp(buf, "layer 3, mean, cross (decoder)") == 0, "%s", buf);
    k.stack = ATTN_STACK_ENCODER;
    k.kind = ATTN_KIND_SELF;
    attn_heatmap_title(&k, ATTN_TITLE_LAYER, buf, sizeof buf);
    CHECK(strcmp(buf, "layer 3, self (encoder)") == 0, "%s", buf);
    k.head = ATTN_HEAD_ROLLOUT;
    attn_heatmap_title(&k, ATTN_TITLE_HEAD, buf, sizeof buf);
    CHECK(strcmp(buf, "rollout") == 0, "%s", buf);
    k.head = 11;
    size_t n = attn_heatmap_title(&k, ATTN_TITLE_MAP, buf, 5);
    CHECK(n == strlen("layer 3, head 11, self (encoder)") && strcmp(buf, "laye") == 0, "cut: %zu %s",
          n, buf);
}

static void test_render(void) {
    /* a causal 3 x 3 map: the masked cells grey, weight 0 dark, 1 light */
    const float w[9] = {1, 0.7f, 0.7f, 0.25f, 0.75f, 0.7f, 0, 0.5f, 0.5f}; /* [3, 3] */
    attn_heatmap_panel p = {.weights = w, .rows = 3, .cols = 3, .causal = true, .title = "t"};
    attn_image img;
    attn_error e = {0};
    CHECK(attn_heatmap_render(&img, &p, 1, NULL, &e) == ATTN_OK, "render: %s", e.message);
    attn_heatmap_layout l;
    attn_heatmap_layout_of(&l, 3, 3, 1, false, NULL);
    CHECK(img.w == l.width && img.h == l.height, "size %dx%d", img.w, img.h);
    const int gx = 8 + 84, gy = 8 + 104, c = l.cell;
#define PX(r, k) (img.rgb + ((size_t)(gy + (r) * c + c / 2) * (size_t)img.w + (size_t)(gx + (k) * c + c / 2)) * 3)
    const unsigned char *zero = PX(2, 0), *one = PX(0, 0), *masked = PX(0, 1), *quarter = PX(1, 0);
    CHECK(masked[0] == masked[1] && masked[1] == masked[2], "masked cell grey");
    CHECK(!(zero[0] == zero[1] && zero[1] == zero[2]), "weight 0 is no grey");
    CHECK(zero[0] + zero[1] + zero[2] < quarter[0] + quarter[1] + quarter[2] &&
              quarter[0] + quarter[1] + quarter[2] < one[0] + one[1] + one[2],
          "0 darker than 0.25 darker than 1");
    CHECK(memcmp(PX(2, 1), PX(2, 2), 3) == 0, "equal weights, equal colours");
    unsigned char *png;
    size_t len;
    CHECK(attn_image_png(&img, &png, &len, &e) == ATTN_OK, "png");
    int x, y, ch;
    unsigned char *back = stbi_load_from_memory(png, (int)len, &x, &y, &ch, 3);
    CHECK(back && x == img.w && y == img.h && ch == 3 &&
              memcmp(back, img.rgb, (size_t)x * (size_t)y * 3) == 0,
          "PNG reads back");
    stbi_image_free(back);
    free(png);
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        attn_status rc = attn_image_write_png(&img, full, &e);
        if (!rc && fflush(full) != 0) rc = ATTN_ERR_IO;
        CHECK(rc == ATTN_ERR_IO, "/dev/full: %d", rc);
        fclose(full);
    }
    attn_image_free(&img);
    attn_image_free(&img); /* zeroed: a second free is harmless */
    /* panels of other sizes, no panel, no weights */
    attn_heatmap_panel two[2] = {p, p};
    two[1].rows = 2;
    CHECK(attn_heatmap_render(&img, two, 2, NULL, &e) == ATTN_ERR_USAGE && one_line(&e) && !img.rgb,
          "mixed sizes: %s", e.message);
    CHECK(attn_heatmap_render(&img, NULL, 1, NULL, &e) == ATTN_ERR_USAGE, "no panels");
    p.weights = NULL;
    CHECK(attn_heatmap_render(&img, &p, 1, NULL, &e) == ATTN_ERR_USAGE, "no weights");
}

static void test_fonts(void) {
    attn_font *f = (attn_font *)1;
    attn_error e = {0};
    CHECK(attn_font_from_memory(&f, "not a font at all", 17, "junk", &e) == ATTN_ERR_FORMAT && !f &&
              one_line(&e) && strstr(e.message, "junk"),
          "junk: %s", e.message);
    CHECK(attn_font_open(&f, "/no/such/font.ttf", &e) == ATTN_ERR_IO && !f && one_line(&e),
          "missing: %s", e.message);
    attn_font_free(NULL);
}

int main(void) {
    test_layout();
    test_titles();
    test_render();
    test_fonts();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
