/* attn patch: activation patching. Runs a clean and a corrupted input, then
 * the corrupted one again once per unit the --names pattern matches, with
 * that one unit (a head's context, or one position of an MLP output or of
 * the residual stream) taken from the clean run (attn_patch), and writes the
 * logit difference of each run and how much of the clean one it recovers.
 * Each unit reruns only the layers from its own on (cli_rerun). */
#include "cli.h"
#include "base/util.h"
#include "outdir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: attn patch --config PATH --clean TEXT --corrupt TEXT --target TOKEN\n"
    "                  [--foil TOKEN] --names PATTERN [--align left|right] [--out FILE]\n"
    "                  [--heatmap DIR]\n"
    "\n"
    "Activation patching (as in Wang et al. 2022, the IOI circuit): runs the clean\n"
    "and the corrupted input, then the corrupted one again for every unit the\n"
    "pattern names, with that one unit taken from the clean run. A unit is one\n"
    "head's context (its columns of the concatenated heads, before the output\n"
    "projection, at every position), or one position of an MLP's output or of the\n"
    "residual stream after a block. The score of a run is the logit of TARGET\n"
    "minus that of FOIL (the logit of TARGET alone without --foil) at the last\n"
    "position; recovered = (patched - corrupt) / (clean - corrupt): 0 is the\n"
    "corrupted run, 1 the clean one.\n"
    "\n"
    "  --config PATH         the model's config file or folder; it needs an lm_head\n"
    "  --clean TEXT, --clean-ids N,N,...       the clean input\n"
    "  --corrupt TEXT, --corrupt-ids N,N,...   the corrupted input\n"
    "  --source TEXT, --source-ids N,N,...     encoder-decoder: the encoder input,\n"
    "                        one for both runs\n"
    "  --target TOKEN        the token whose logit is scored (its text, else an id)\n"
    "  --foil TOKEN          the token it is compared with\n"
    "  --names PATTERN       what to patch, comma-separated; '*' stands for any\n"
    "                        characters: blocks.L.attn.context (each head; one head:\n"
    "                        blocks.L.attn.context.hH), blocks.L.cross.context,\n"
    "                        blocks.L.mlp.out and blocks.L.resid (each position),\n"
    "                        encoder.blocks.L.* for an encoder-decoder's encoder;\n"
    "                        e.g. 'blocks.*.attn.context' or 'blocks.*.resid'\n"
    "  --align left|right    inputs of different token lengths: pair position p of\n"
    "                        the corrupted input with p of the clean one (left), or\n"
    "                        count both from their last token (right); positions\n"
    "                        without a partner are not patched (default: the lengths\n"
    "                        must be equal)\n"
    "  --patch-from RUN, --patch-into RUN\n"
    "                        clean or corrupt: the run whose values are taken\n"
    "                        (default clean) and the input they are put into\n"
    "                        (default corrupt); --patch-from corrupt --patch-into\n"
    "                        clean is noising instead of denoising\n"
    "  --out FILE            the CSV (default: standard output); it appears only\n"
    "                        when complete\n"
    "  --heatmap DIR         also a PNG per kind of site in the new folder DIR:\n"
    "                        blocks.attn.context.png (layer x head),\n"
    "                        blocks.resid.png (layer x position), ...; each cell\n"
    "                        the unit's recovered, blue (< 0) to red (> 0)\n"
    "  --threads N           threads of the matrix products\n"
    "  -h, --help            show this help\n"
    "\n"
    "Columns: name,layer,head,pos,token,logit_diff,recovered\n"
    "  the first two rows are the runs 'clean' and 'corrupt' (recovered 1 and 0);\n"
    "  then one row per unit in model order: name as blocks.1.attn.context.h2 or\n"
    "  blocks.0.resid, head (heads) or pos and its token in the patched input\n"
    "  (positions); logit_diff of the patched run.\n"
    "\n"
    "Examples:\n"
    "  attn patch --config models/tiny-induction --clean \"k f q a k f q\" --corrupt \"k f q b k f q\" --target a --foil b --names 'blocks.*.attn.context'\n"
    "  attn patch --config models/tiny-induction --clean \"k f q a k f q\" --corrupt \"k f q b k f q\" --target a --foil b --names 'blocks.*.resid' --out patch.csv\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error (also: a pattern that matches\n"
    "nothing, a token not in the vocabulary, runs with the same score).\n";

typedef struct patch_opts {
    const char *config, *target, *foil, *names, *align, *out, *threads, *from, *into, *heatmap;
    cli_input_args clean, corrupt, source;
} patch_opts;

typedef struct patcher {
    attn_model *model;
    const attn_config *cfg;
    const attn_tokenizer *tok;
    attn_session *sess;
    attn_patch *patch;
    attn_capture cap;
    cli_input runs[2]; /* clean, corrupt */
    cli_input source;
    bool has_source;
    int target, foil; /* foil -1: none */
    int from, into;   /* 0 clean, 1 corrupt */
    attn_outfile out;
    double *recovered; /* [units] for --heatmap */
    cli_outdir hm;     /* --heatmap DIR */
    cli_rerun rerun;   /* the into run again from each unit's layer */
    char target_text[64], foil_text[64];
} patcher;

static attn_status parse_flags(int argc, char **argv, patch_opts *o, bool *help,
                               attn_error *err) {
    const cli_flag flags[] = {
        {"config", 'c', .value = &o->config},
        {"clean", .value = &o->clean.text},
        {"clean-ids", .value = &o->clean.ids},
        {"corrupt", .value = &o->corrupt.text},
        {"corrupt-ids", .value = &o->corrupt.ids},
        {"source", .value = &o->source.text},
        {"source-ids", .value = &o->source.ids},
        {"target", .value = &o->target},
        {"foil", .value = &o->foil},
        {"names", .value = &o->names},
        {"align", .value = &o->align},
        {"patch-from", .value = &o->from},
        {"patch-into", .value = &o->into},
        {"out", 'o', .value = &o->out},
        {"threads", .value = &o->threads},
        {"heatmap", .value = &o->heatmap},
        {NULL},
    };
    return cli_parse_flags(argc, argv, "patch", flags, help, err);
}

/* clean or corrupt, as 0 or 1. */
static attn_status parse_run(const char *s, const char *flag, int def, int *out, attn_error *err) {
    if (!s) return *out = def, ATTN_OK;
    if (strcmp(s, "clean") == 0) return *out = 0, ATTN_OK;
    if (strcmp(s, "corrupt") == 0) return *out = 1, ATTN_OK;
    return cli_usage(err, "%s: expected clean or corrupt, got '%s'", flag, s);
}

static attn_status check_flags(const patch_opts *o, patcher *p, attn_patch_align *align,
                               attn_error *err) {
    if (!o->config) return cli_usage(err, "--config PATH is required");
    const struct {
        const cli_input_args *a;
        const char *what;
    } in[] = {{&o->clean, "--clean or --clean-ids"}, {&o->corrupt, "--corrupt or --corrupt-ids"}};
    for (int i = 0; i < 2; i++) {
        if (!in[i].a->text && !in[i].a->ids) return cli_usage(err, "%s is required", in[i].what);
        if (in[i].a->text && in[i].a->ids)
            return cli_usage(err, "%s: give one of them", in[i].what);
    }
    if (o->source.text && o->source.ids)
        return cli_usage(err, "--source and --source-ids exclude each other");
    if (!o->target) return cli_usage(err, "--target TOKEN is required");
    if (!o->names) return cli_usage(err, "--names PATTERN is required (e.g. 'blocks.*.attn.context')");
    *align = ATTN_PATCH_ALIGN_NONE;
    if (o->align && strcmp(o->align, "left") == 0) *align = ATTN_PATCH_ALIGN_LEFT;
    else if (o->align && strcmp(o->align, "right") == 0) *align = ATTN_PATCH_ALIGN_RIGHT;
    else if (o->align) return cli_usage(err, "--align: expected left or right, got '%s'", o->align);
    attn_status rc = parse_run(o->from, "--patch-from", 0, &p->from, err);
    if (rc || (rc = parse_run(o->into, "--patch-into", 1, &p->into, err))) return rc;
    if (o->out && !*o->out) return cli_usage(err, "--out: expected a file name or '-', got ''");
    if ((rc = cli_threads(o->threads, err))) return rc;
    if (o->heatmap && (rc = cli_outdir_check("--heatmap", o->heatmap, err))) return rc;
    const char *const stdin_flag[] = {"--config"};
    return cli_check_stdin(stdin_flag, &o->config, 1, NULL, err);
}

static attn_status open_all(patcher *p, const patch_opts *o, attn_patch_align align,
                            attn_error *err) {
    const cli_model_needs needs = {.who = "patch", .lm_head = true};
    attn_status rc = cli_model_open(&p->model, o->config, &needs, err);
    if (rc) return rc;
    p->cfg = attn_model_config(p->model);
    p->tok = attn_model_tokenizer(p->model);
    const char *src_flag = cli_input_flag(&o->source, true);
    if ((rc = cli_check_source(p->cfg, src_flag, "--source or --source-ids", err))) return rc;
    if (src_flag) {
        if ((rc = cli_input_load(&p->source, p->model, &o->source, src_flag, err))) return rc;
        p->has_source = true;
    }
    if ((rc = cli_input_load(&p->runs[0], p->model, &o->clean, o->clean.text ? "--clean" : "--clean-ids", err)) ||
        (rc = cli_input_load(&p->runs[1], p->model, &o->corrupt,
                             o->corrupt.text ? "--corrupt" : "--corrupt-ids", err)))
        return rc;
    if ((rc = cli_token_arg(p->tok, p->cfg->vocab_size, "--target", o->target, &p->target, err))) return rc;
    p->foil = -1;
    if (o->foil && (rc = cli_token_arg(p->tok, p->cfg->vocab_size, "--foil", o->foil, &p->foil, err))) return rc;
    if (p->foil == p->target)
        return cli_usage(err, "--foil '%s' is the target itself: the difference is always 0", o->foil);
    if ((rc = attn_patch_new(&p->patch, p->cfg, o->names, err))) return rc;
    rc = attn_patch_plan(p->patch, (int)p->runs[p->from].n, (int)p->runs[p->into].n,
                         p->has_source ? (int)p->source.n : 0, align, err);
    if (rc) return rc;
    p->cap = attn_patch_capture(p->patch);
    if (o->heatmap &&
        !(p->recovered = attn_calloc_array(attn_patch_count(p->patch), sizeof *p->recovered,
                                           "heatmap", err)))
        return ATTN_ERR_NOMEM;
    char num[ATTN_ID_TEXT_MAX];
    snprintf(p->target_text, sizeof p->target_text, "%s",
             attn_token_text(p->tok, p->target, num, sizeof num));
    if (p->foil >= 0)
        snprintf(p->foil_text, sizeof p->foil_text, "%s",
                 attn_token_text(p->tok, p->foil, num, sizeof num));
    const attn_run_info run = {.input = 0};
    if (o->heatmap && ((rc = cli_outdir_open(&p->hm, "--heatmap", o->heatmap, false, err)) ||
                       (rc = cli_outdir_begin(&p->hm, &run, err))))
        return rc;
    if ((rc = attn_session_new(&p->sess, p->model, err)) ||
        (rc = attn_session_set_reuse_cache(p->sess, true, err)))
        return rc;
    return attn_outfile_open(&p->out, o->out ? o->out : "-", err);
}

/* The score of the last run: the target's logit minus the foil's. */
static attn_status score_of(const patcher *p, double *score, attn_error *err) {
    const float *lg = attn_patch_logits(p->patch);
    if (!lg) return attn_error_set(err, ATTN_ERR_INTERNAL, "patch: no logits");
    *score = (double)lg[p->target] - (p->foil >= 0 ? (double)lg[p->foil] : 0.0);
    return ATTN_OK;
}

/* One run of input `which` in the capture's current mode; its score. */
static attn_status run_one(patcher *p, int which, double *score, attn_error *err) {
    attn_session_reset(p->sess);
    attn_status rc;
    if (p->has_source) {
        const attn_input src = cli_input_view(&p->source);
        if ((rc = attn_session_encode(p->sess, &src, &p->cap, err))) return rc;
    }
    const attn_input in = cli_input_view(&p->runs[which]);
    if ((rc = attn_session_forward(p->sess, &in, &p->cap, err))) return rc;
    return score_of(p, score, err);
}

static void row(FILE *f, const char *name, const char *layer, const char *head, const char *pos,
                const char *token, double diff, double recovered) {
    attn_csv_field(f, name, false);
    fprintf(f, ",%s,%s,%s,", layer, head, pos);
    attn_csv_field(f, token, false);
    fprintf(f, ",%.9g,%.9g\n", diff, recovered);
}

static attn_status patch_all(patcher *p, attn_error *err) {
    double clean, corrupt;
    attn_status rc;
    if ((rc = attn_patch_set_mode(p->patch, ATTN_PATCH_PASS, 0, err)) ||
        (rc = run_one(p, 0, &clean, err)) || (rc = run_one(p, 1, &corrupt, err)))
        return rc;
    const double den = clean - corrupt;
    if (!(den != 0))
        return cli_usage(err, "the clean and the corrupted input give the same logit difference "
                              "(%.9g): nothing to recover (different inputs, or another --target "
                              "or --foil)",
                         clean);
    if ((rc = attn_patch_set_mode(p->patch, ATTN_PATCH_RECORD, 0, err))) return rc;
    double ignored;
    if ((rc = run_one(p, p->from, &ignored, err))) return rc;
    /* the into run once more, keeping its residual streams: each unit runs
     * only the layers from its own on (cli_rerun) */
    if ((rc = attn_patch_set_mode(p->patch, ATTN_PATCH_PASS, 0, err)) ||
        (rc = cli_rerun_init(&p->rerun, p->sess, p->cfg, &p->runs[p->into],
                             p->has_source ? &p->source : NULL, err)) ||
        (rc = cli_rerun_base(&p->rerun, &p->cap, err)))
        return rc;
    FILE *f = p->out.f;
    fputs("name,layer,head,pos,token,logit_diff,recovered\n", f);
    row(f, "clean", "", "", "", "", clean, 1);
    row(f, "corrupt", "", "", "", "", corrupt, 0);
    for (size_t i = 0; i < attn_patch_count(p->patch); i++) {
        const attn_patch_unit *u = attn_patch_at(p->patch, i);
        double s = 0;
        if ((rc = attn_patch_set_mode(p->patch, ATTN_PATCH_APPLY, i, err)) ||
            (rc = cli_rerun_from(&p->rerun, u->source, u->layer, &p->cap, err)) ||
            (rc = score_of(p, &s, err)))
            return rc;
        char name[128], layer[16], head[16] = "", pos[16] = "", num[ATTN_ID_TEXT_MAX];
        const char *token = "";
        attn_patch_unit_name(u, name, sizeof name);
        snprintf(layer, sizeof layer, "%d", u->layer);
        if (u->head >= 0) snprintf(head, sizeof head, "%d", u->head);
        if (u->pos >= 0) {
            snprintf(pos, sizeof pos, "%d", u->pos);
            const cli_input *in = u->source ? &p->source : &p->runs[p->into];
            token = in->ids ? attn_token_text(p->tok, in->ids[u->pos], num, sizeof num) : pos;
        }
        row(f, name, layer, head, pos, token, s, (s - corrupt) / den);
        if (p->recovered) p->recovered[i] = (s - corrupt) / den;
    }
    return ATTN_OK;
}

/* A kind of site: the units of one value of one stack (and attention kind). */
static bool same_family(const attn_patch_unit *a, const attn_patch_unit *b) {
    return a->value == b->value && a->source == b->source &&
           (a->value != ATTN_V_CONCAT || a->kind == b->kind);
}

/* The family's file name ("encoder.blocks.attn.context") when pattern is
 * false, else its names as a pattern ("encoder.blocks.*.attn.context"). */
static void family_name(const attn_patch_unit *u, bool pattern, char *buf, size_t cap) {
    const char *what = u->value == ATTN_V_MLP_OUT ? "mlp.out"
                       : u->value == ATTN_V_RESID ? "resid"
                       : u->kind == ATTN_KIND_CROSS ? "cross.context"
                                                    : "attn.context";
    snprintf(buf, cap, "%sblocks.%s%s", u->source ? "encoder." : "", pattern ? "*." : "", what);
}

/* Labels "PREFIX0", "PREFIX1", ... or (tok) the texts of ids [n]. */
static attn_status labels(attn_labels *l, size_t n, const char *prefix, const int *ids,
                          const attn_tokenizer *tok, attn_error *err) {
    l->n = 0;
    l->text = attn_calloc_array(n, sizeof *l->text, "heatmap labels", err);
    if (!l->text) return ATTN_ERR_NOMEM;
    for (; l->n < n; l->n++) {
        char b[ATTN_ID_TEXT_MAX + 32], num[ATTN_ID_TEXT_MAX];
        if (ids) snprintf(b, sizeof b, "%zu %s", l->n, attn_token_text(tok, ids[l->n], num, sizeof num));
        else snprintf(b, sizeof b, "%s%zu", prefix, l->n);
        if (!(l->text[l->n] = strdup(b)))
            return attn_error_set(err, ATTN_ERR_NOMEM, "heatmap: out of memory");
    }
    return ATTN_OK;
}

static void labels_free(attn_labels *l) {
    for (size_t i = 0; l->text && i < l->n; i++) free(l->text[i]);
    free(l->text);
}

/* One family's picture (its first unit `first`): layer x head or layer x
 * position, each patched unit's recovered; cells not patched are masked. */
static attn_status draw_family(patcher *p, size_t first, const char *dir, attn_error *err) {
    const attn_patch_unit *u0 = attn_patch_at(p->patch, first);
    const bool heads = u0->value == ATTN_V_CONCAT;
    const cli_input *in = u0->source ? &p->source : &p->runs[p->into];
    const int rows = u0->source ? p->cfg->n_encoder_layers : p->cfg->n_layers;
    const int cols = heads ? p->cfg->n_heads : (int)in->n;
    /* rows, n_heads and the positions are bounded by the config's limits */
    const size_t cells = (size_t)rows * (size_t)cols;
    float *w = attn_calloc_array(cells, sizeof *w, "heatmap", err);   /* [rows, cols] */
    unsigned char *mask = attn_alloc_array(cells, 1, "heatmap", err); /* [rows, cols] */
    attn_labels ls = {0}, ks = {0};
    attn_status rc = w && mask ? ATTN_OK : ATTN_ERR_NOMEM;
    if (mask) memset(mask, 1, cells);
    for (size_t i = first; !rc && i < attn_patch_count(p->patch); i++) {
        const attn_patch_unit *u = attn_patch_at(p->patch, i);
        if (!same_family(u, u0)) continue;
        const size_t c = (size_t)u->layer * (size_t)cols + (size_t)(heads ? u->head : u->pos);
        w[c] = (float)p->recovered[i];
        mask[c] = 0;
    }
    if (!rc) rc = labels(&ls, (size_t)rows, "layer ", NULL, NULL, err);
    if (!rc) rc = labels(&ks, (size_t)cols, "head ", heads ? NULL : in->ids, p->tok, err);
    char name[64], sites[64], title[256];
    family_name(u0, false, name, sizeof name);
    family_name(u0, true, sites, sizeof sites);
    snprintf(title, sizeof title, "%s: recovered '%s'%s%s%s", sites, p->target_text,
             p->foil >= 0 ? " - '" : "", p->foil >= 0 ? p->foil_text : "", p->foil >= 0 ? "'" : "");
    const attn_heatmap_panel panel = {.weights = w, .rows = rows, .cols = cols, .mask = mask,
                                      .title = heads ? "layer x head" : "layer x position"};
    const attn_heatmap_style style = {.title = title, .queries = &ls, .keys = &ks, .diverging = true};
    attn_image img = {0};
    if (!rc) rc = attn_heatmap_render(&img, &panel, 1, &style, err);
    char file[80];
    snprintf(file, sizeof file, "%s.png", name);
    char *path = rc ? NULL : cli_path_join(dir, file);
    if (!rc && !path) rc = attn_error_set(err, ATTN_ERR_NOMEM, "heatmap: out of memory");
    FILE *f = path ? fopen(path, "wb") : NULL;
    if (path && !f) rc = attn_error_set(err, ATTN_ERR_IO, "--heatmap %s: %s", file, strerror(errno));
    if (f) {
        rc = attn_image_write_png(&img, f, err);
        if (fclose(f) != 0 && !rc) rc = attn_error_set(err, ATTN_ERR_IO, "--heatmap %s: write failed", file);
    }
    free(path);
    attn_image_free(&img);
    labels_free(&ls);
    labels_free(&ks);
    free(w);
    free(mask);
    return rc;
}

/* --heatmap DIR: a picture per family, in DIR once all are written. */
static attn_status draw_all(patcher *p, attn_error *err) {
    attn_status rc = ATTN_OK;
    for (size_t i = 0; !rc && i < attn_patch_count(p->patch); i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = same_family(attn_patch_at(p->patch, j), attn_patch_at(p->patch, i));
        if (!seen) rc = draw_family(p, i, p->hm.input, err);
    }
    if (rc) return rc;
    cli_outdir_end(&p->hm, true);
    return cli_outdir_commit(&p->hm, err);
}

int cmd_patch(int argc, char **argv) {
    patch_opts o = {0};
    bool help = false;
    attn_error err = {0};
    if (parse_flags(argc, argv, &o, &help, &err)) return cli_lib_error(&err);
    if (help) return cli_help(usage);
    patcher p = {0};
    attn_patch_align align = ATTN_PATCH_ALIGN_NONE;
    int status = EXIT_OK;
    if (check_flags(&o, &p, &align, &err) || open_all(&p, &o, align, &err) ||
        patch_all(&p, &err) || (o.heatmap && draw_all(&p, &err)) ||
        attn_outfile_commit(&p.out, &err))
        status = cli_lib_error(&err);
    attn_outfile_abort(&p.out);
    free(p.recovered);
    cli_rerun_free(&p.rerun);
    cli_outdir_free(&p.hm);
    attn_session_free(p.sess);
    attn_patch_free(p.patch);
    cli_input_free(&p.runs[0]);
    cli_input_free(&p.runs[1]);
    if (p.has_source) cli_input_free(&p.source);
    attn_model_close(p.model);
    return status;
}
