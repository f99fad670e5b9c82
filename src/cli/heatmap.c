/* PNG heatmaps of attn run: --heatmap DIR [--heatmap-grid] (docs/heatmaps.md).
 *
 * The sink (behind the aggregation and the selection, like the maps CSV)
 * draws each attention map as it arrives (attn_heatmap_render) and writes
 * it to DIR/NAME.png, NAME its capture name (blocks.3.attn.weights.h2); in
 * batch mode to DIR/INPUT/NAME.png, INPUT the line's number or key. With
 * --heatmap-grid it keeps the maps of one attention sub-layer (stack,
 * layer, kind) until the next one starts or the input ends, and writes them
 * as one grid, DIR/blocks.3.attn.weights.png.
 *
 * The files go to a new folder next to DIR, "DIR.tmp.XXXXXX", renamed onto
 * DIR when the run is over (DIR must not exist or be empty); a failed run
 * or a signal removes it, a bad batch line its INPUT folder (cli_outdir).
 *
 * The font: $ATTN_FONT, a TrueType file; "none" for the built-in font;
 * unset or empty: DejaVu Sans (fonts-dejavu-core) when it is installed,
 * else the built-in font. */
#include "run.h"
#include "outdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEATMAP_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

typedef struct heatmap_out {
    runner *r;
    bool grid;
    cli_outdir out; /* DIR, its temporary, the current input's folder */
    attn_font *font;
    /* --heatmap-grid: the maps of the current sub-layer, maps [n, rows, cols] */
    attn_capture_key group; /* its key, head -1 */
    int n, rows, cols, row_offset;
    bool causal;
    float *maps;
    size_t maps_cap;         /* floats */
    attn_capture_key *keys;  /* [n] */
    size_t keys_cap;
} heatmap_out;

attn_status run_heatmap_check(const run_opts *o, attn_error *err) {
    if (o->heatmap_grid && !o->heatmap) return cli_usage(err, "--heatmap-grid needs --heatmap DIR");
    if (!o->heatmap) return ATTN_OK;
    return cli_outdir_check("--heatmap", o->heatmap, err);
}

static void group_clear(heatmap_out *h) { h->n = 0; }

static void heatmap_abort(void *self) {
    heatmap_out *h = self;
    cli_outdir_free(&h->out);
    free(h->maps);
    free(h->keys);
    attn_font_free(h->font);
    free(h);
}

/* Writes img to the new file in_dir/name (its message names in_name/name). */
static attn_status write_png(heatmap_out *h, const char *name, const attn_image *img,
                             attn_error *err) {
    char *path = cli_path_join(h->out.input, name);
    if (!path) return attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap: out of memory");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    attn_status rc = ATTN_OK;
    int e = errno;
    if (!f) {
        if (fd >= 0) close(fd);
        rc = attn_error_set(err, ATTN_ERR_IO, "%s/%s: cannot create: %s", h->out.input_name, name,
                            strerror(e));
    } else {
        rc = attn_image_write_png(img, f, err);
        e = errno;
        if (fclose(f) != 0 && !rc) {
            e = errno;
            rc = ATTN_ERR_IO;
        }
        if (rc) attn_error_set(err, rc, "%s/%s: %s", h->out.input_name, name,
                               rc == ATTN_ERR_IO ? strerror(e) : "out of memory encoding a PNG");
    }
    free(path);
    return rc;
}

/* Draws panels[n] with the labels of key's sub-layer and writes the image. */
static attn_status draw(heatmap_out *h, const attn_capture_key *key, const attn_heatmap_panel *p,
                        int n, const char *title, attn_error *err) {
    attn_heatmap_style style = {.title = title, .font = h->font};
    attn_run_key_labels(&h->r->rc, key, &style.queries, &style.keys);
    char name[256];
    size_t len = attn_capture_name(key, name, sizeof name - 4);
    if (len >= sizeof name - 4)
        return attn_error_set(err, ATTN_ERR_INTERNAL, "--heatmap: name too long");
    memcpy(name + len, ".png", 5);
    attn_image img;
    attn_status rc = attn_heatmap_render(&img, p, n, &style, err);
    if (rc) {
        attn_error_prefix(err, "--heatmap %s/%s", h->out.input_name, name);
        return rc;
    }
    rc = write_png(h, name, &img, err);
    attn_image_free(&img);
    return rc;
}

/* --heatmap-grid: the maps kept of the current sub-layer as one image. */
static attn_status flush(heatmap_out *h, attn_error *err) {
    if (h->n == 0) return ATTN_OK;
    attn_heatmap_panel *p = calloc((size_t)h->n, sizeof *p);
    char (*titles)[32] = calloc((size_t)h->n, sizeof *titles);
    attn_status rc = ATTN_OK;
    if (!p || !titles) rc = attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap: out of memory");
    for (int i = 0; !rc && i < h->n; i++) {
        attn_heatmap_title(&h->keys[i], ATTN_TITLE_HEAD, titles[i], sizeof titles[i]);
        p[i] = (attn_heatmap_panel){.weights = h->maps + (size_t)i * (size_t)h->rows * (size_t)h->cols,
                                    .rows = h->rows,
                                    .cols = h->cols,
                                    .row_offset = h->row_offset,
                                    .causal = h->keys[i].causal,
                                    .title = titles[i]};
    }
    char title[128];
    attn_heatmap_title(&h->group, ATTN_TITLE_LAYER, title, sizeof title);
    if (!rc) rc = draw(h, &h->group, p, h->n, title, err);
    free(p);
    free(titles);
    group_clear(h);
    return rc;
}

static bool same_group(const attn_capture_key *a, const attn_capture_key *b) {
    return a->value == b->value && a->stack == b->stack && a->source == b->source &&
           a->layer == b->layer && a->kind == b->kind;
}

/* --heatmap-grid: keeps a copy of the map v [rows, cols] in the group. */
static attn_status keep(heatmap_out *h, const attn_capture_key *key, const attn_capture_view *v,
                        attn_error *err) {
    attn_status rc = ATTN_OK;
    if (h->n > 0 && (!same_group(&h->group, key) || v->rows != h->rows || v->cols != h->cols ||
                     v->row_offset != h->row_offset || h->n == ATTN_HEATMAP_PANELS_MAX))
        rc = flush(h, err);
    if (rc) return rc;
    if (h->n == 0) {
        h->group = *key;
        h->group.head = -1;
        h->rows = v->rows, h->cols = v->cols, h->row_offset = v->row_offset;
    }
    size_t map, need;
    if (__builtin_mul_overflow((size_t)v->rows, (size_t)v->cols, &map) ||
        __builtin_mul_overflow(map, (size_t)h->n + 1, &need))
        return attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap-grid: maps too large");
    if (need > h->maps_cap) {
        size_t cap = need > h->maps_cap * 2 ? need : h->maps_cap * 2;
        float *m = cap <= SIZE_MAX / sizeof *m ? realloc(h->maps, cap * sizeof *m) : NULL;
        if (!m) return attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap-grid: out of memory");
        h->maps = m, h->maps_cap = cap;
    }
    if ((size_t)h->n + 1 > h->keys_cap) {
        size_t cap = h->keys_cap ? h->keys_cap * 2 : 16;
        attn_capture_key *k = realloc(h->keys, cap * sizeof *k);
        if (!k) return attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap-grid: out of memory");
        h->keys = k, h->keys_cap = cap;
    }
    memcpy(h->maps + (size_t)h->n * map, v->data, map * sizeof *h->maps);
    h->keys[h->n++] = *key;
    return ATTN_OK;
}

static bool heatmap_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

static attn_status heatmap_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                                attn_error *err) {
    heatmap_out *h = user;
    if (!h->out.input) return attn_error_set(err, ATTN_ERR_INTERNAL, "--heatmap: no input begun");
    if (h->grid) return keep(h, key, v, err);
    attn_heatmap_panel p = {.weights = v->data, .rows = v->rows, .cols = v->cols,
                            .row_offset = v->row_offset, .causal = key->causal};
    char title[128];
    attn_heatmap_title(key, ATTN_TITLE_MAP, title, sizeof title);
    p.title = title;
    return draw(h, key, &p, 1, NULL, err);
}

static attn_status heatmap_begin(void *self, const attn_run_info *run, attn_error *err) {
    heatmap_out *h = self;
    group_clear(h);
    return cli_outdir_begin(&h->out, run, err);
}

static attn_status heatmap_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    (void)run;
    heatmap_out *h = self;
    attn_status rc = ok ? flush(h, err) : ATTN_OK;
    group_clear(h);
    cli_outdir_end(&h->out, ok && !rc); /* nothing of a bad line */
    return rc;
}

static attn_status heatmap_commit(void *self, attn_error *err) {
    heatmap_out *h = self;
    return cli_outdir_commit(&h->out, err);
}

/* The font of the texts ($ATTN_FONT, see the top of this file); *out NULL:
 * the built-in font. */
static attn_status open_font(attn_font **out, attn_error *err) {
    *out = NULL;
    const char *path = getenv("ATTN_FONT");
    if (path && strcmp(path, "none") == 0) return ATTN_OK;
    if (path && *path) {
        attn_status rc = attn_font_open(out, path, err);
        if (rc) attn_error_prefix(err, "ATTN_FONT");
        return rc;
    }
    if (access(HEATMAP_FONT_DEFAULT, R_OK) == 0 && attn_font_open(out, HEATMAP_FONT_DEFAULT, NULL))
        *out = NULL; /* unreadable: the built-in font */
    return ATTN_OK;
}

attn_status run_heatmap_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->heatmap) return ATTN_OK;
    heatmap_out *h = calloc(1, sizeof *h);
    if (!h) return attn_error_set(err, ATTN_ERR_NOMEM, "--heatmap: out of memory");
    *h = (heatmap_out){.r = r, .grid = o->heatmap_grid};
    attn_status rc = cli_outdir_open(&h->out, "--heatmap", o->heatmap, o->batch, err);
    if (rc) {
        heatmap_abort(h);
        return rc;
    }
    rc = run_add_output(
        r, (run_output){h, heatmap_begin, heatmap_end, heatmap_commit, heatmap_abort}, err);
    if (!rc) rc = open_font(&h->font, err);
    attn_capture c = {heatmap_wants, heatmap_emit, h};
    if (!rc) rc = run_aggregate_wrap(r, o, c, &c, err);
    if (!rc) rc = run_select(r, o, c, &c, err);
    if (!rc) rc = attn_fanout_add(&r->fo, c, err);
    return rc;
}
