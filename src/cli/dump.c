/* Named dumps of attn run: --dump PATTERN[,PATTERN...] --out DIR
 * [--format npy|csv|jsonl], and --list-dumps (docs/dumps.md).
 *
 * The files go to a temporary folder next to DIR, DIR.tmp.XXXXXX
 * (attn_tmptree: registered, so that a signal removes it too), renamed
 * onto DIR when the run is complete; a failed run removes it. DIR
 * must not exist or be an empty folder (which the rename replaces). In
 * batch mode each input has its own folder in it, named by
 * run_input_name; a bad line's folder is removed. The sink itself
 * (attn_dump, write/dump.c) writes the files; the selection (--layers,
 * --heads, ...) sits in front of it. */
#include "run.h"
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The patterns of --dump split at commas, in place of the copy s (at most
 * cap of them); an empty one is a usage error. */
static attn_status split_patterns(char *s, const char *arg, const char **pat, size_t cap,
                                  size_t *n, attn_error *err) {
    *n = 0;
    for (char *p = s;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p)
            return cli_usage(err, "--dump '%s': an empty pattern (patterns are separated by commas)",
                             arg);
        if (*n == cap) return cli_usage(err, "--dump '%s': more than %zu patterns", arg, cap);
        pat[(*n)++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return ATTN_OK;
}

#define DUMP_PATTERNS_MAX 64

attn_status run_dump_check(const run_opts *o, attn_error *err) {
    if (o->stats_cmd || o->lens_cmd) { /* their --out is their CSV */
        if (o->dump || o->format || o->list_dumps)
            return cli_usage(err, "attn %s has no %s (see attn run)", o->stats_cmd ? "stats" : "lens",
                             o->dump ? "--dump" : o->format ? "--format" : "--list-dumps");
        return ATTN_OK;
    }
    if (o->format && !o->dump) return cli_usage(err, "--format needs --dump");
    if (o->list_dumps && o->out)
        return cli_usage(err, "--list-dumps prints the names and writes nothing: drop --out");
    if (o->out && !o->dump) return cli_usage(err, "--out needs --dump");
    if (o->format && attn_dump_format_parse(o->format) < 0)
        return cli_usage(err, "--format: expected npy, csv or jsonl, got '%s'", o->format);
    if (!o->dump) return ATTN_OK;
    char *copy = strdup(o->dump);
    if (!copy) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    const char *pat[DUMP_PATTERNS_MAX];
    size_t n;
    attn_status rc = split_patterns(copy, o->dump, pat, DUMP_PATTERNS_MAX, &n, err);
    free(copy);
    if (rc) return rc;
    if (o->list_dumps) return ATTN_OK; /* the listing shows the names the patterns match */
    if (!o->out) return cli_usage(err, "--dump needs --out DIR (the folder of the files)");
    return cli_outdir_check("--out", o->out, err);
}

/* ---- the output: the temporary folder, one folder per batch input ---- */

typedef struct dump_out {
    attn_dump *sink;
    char *copy;                         /* the patterns' storage */
    const char *pat[DUMP_PATTERNS_MAX];
    size_t n_pat;
    cli_outdir out;                     /* DIR, its temporary, the input's folder */
} dump_out;

static attn_status dump_begin(void *self, const attn_run_info *run, attn_error *err) {
    dump_out *d = self;
    attn_status rc = cli_outdir_begin(&d->out, run, err);
    return rc ? rc : attn_dump_begin(d->sink, d->out.input, err);
}

static attn_status dump_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    (void)run;
    dump_out *d = self;
    attn_status rc = ATTN_OK;
    if (ok) rc = attn_dump_end(d->sink, err);
    else attn_dump_drop(d->sink);
    cli_outdir_end(&d->out, ok && !rc);
    return rc;
}

static attn_status dump_commit(void *self, attn_error *err) {
    dump_out *d = self;
    return cli_outdir_commit(&d->out, err);
}

static void dump_abort(void *self) {
    dump_out *d = self;
    attn_dump_free(d->sink);
    cli_outdir_free(&d->out);
    free(d->copy);
    free(d);
}

/* ---- names ---- */

typedef struct name_check {
    const char *pattern;
    bool found;
} name_check;

static bool check_one(void *user, const attn_dump_entry *e) {
    name_check *c = user;
    c->found = attn_dump_match(&c->pattern, 1, e->name);
    return !c->found;
}

/* Every pattern must match a name of cfg. */
static attn_status check_patterns(const attn_config *cfg, const char *const *pat, size_t n,
                                  attn_error *err) {
    for (size_t i = 0; i < n; i++) {
        name_check c = {.pattern = pat[i]};
        attn_dump_each_name(cfg, check_one, &c);
        if (!c.found)
            return cli_usage(err, "--dump: the pattern '%s' matches no value of this model (see "
                                  "attn run --config ... --list-dumps)",
                             pat[i]);
    }
    return ATTN_OK;
}

/* How many query heads and key/value heads the selection lets through. */
static void selected_heads(const run_opts *o, const attn_config *cfg, int *nq, int *nkv) {
    const int H = cfg->n_heads, KV = cfg->n_kv_heads > 0 ? cfg->n_kv_heads : H;
    const int group = H / KV;
    *nq = *nkv = 0;
    for (int g = 0; g < KV; g++) {
        bool any = false;
        for (int h = g * group; h < (g + 1) * group; h++)
            if (cli_ranges_has(&o->sel.heads, h)) any = true, ++*nq;
        if (any) ++*nkv;
    }
}

attn_status run_dump_open(runner *r, const run_opts *o, attn_error *err) {
    if (!o->dump) return ATTN_OK;
    dump_out *d = calloc(1, sizeof *d);
    if (!d) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    attn_status rc = ATTN_OK;
    if (!(d->copy = strdup(o->dump))) rc = attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    if (!rc) rc = split_patterns(d->copy, o->dump, d->pat, DUMP_PATTERNS_MAX, &d->n_pat, err);
    if (!rc) rc = check_patterns(r->cfg, d->pat, d->n_pat, err);
    int nq = 0, nkv = 0;
    selected_heads(o, r->cfg, &nq, &nkv);
    const attn_dump_opts opts = {
        .format = o->format ? (attn_dump_format)attn_dump_format_parse(o->format) : ATTN_DUMP_NPY,
        .patterns = d->pat, .n_patterns = d->n_pat, .run = &r->rc,
        .n_heads = nq, .n_kv_heads = nkv};
    if (!rc) rc = attn_dump_new(&d->sink, &opts, err);
    if (!rc) rc = cli_outdir_open(&d->out, "--out", o->out, o->batch, err);
    if (rc) {
        dump_abort(d);
        return rc;
    }
    run_output out = {.self = d, .begin = dump_begin, .end = dump_end, .commit = dump_commit,
                      .abort = dump_abort};
    if ((rc = run_add_output(r, out, err))) return rc; /* d is freed */
    /* the dumps only format and write: they may be written beside the pass */
    attn_capture c = {attn_dump_wants, attn_dump_emit, d->sink, .emit_alongside = true};
    if ((rc = run_select(r, o, c, &c, err))) return rc;
    return attn_fanout_add(&r->fo, c, err);
}

/* ---- --list-dumps ---- */

typedef struct lister {
    const char *const *pat;
    size_t n_pat;
    const cli_selection *sel;
    int width;
    FILE *f;
} lister;

static bool listed(const lister *l, const attn_dump_entry *e) {
    if (l->n_pat && !attn_dump_match(l->pat, l->n_pat, e->name)) return false;
    return cli_selection_wants(l->sel, &e->key);
}

static bool measure(void *user, const attn_dump_entry *e) {
    lister *l = user;
    int n = (int)strlen(e->name);
    if (listed(l, e) && n > l->width) l->width = n;
    return true;
}

static bool print_entry(void *user, const attn_dump_entry *e) {
    lister *l = user;
    if (listed(l, e)) fprintf(l->f, "%-*s  %s\n", l->width, e->name, e->shape);
    return true;
}

attn_status run_dump_list(const runner *r, const run_opts *o, attn_error *err) {
    lister l = {.sel = &o->sel, .f = stdout};
    char *copy = NULL;
    const char *pat[DUMP_PATTERNS_MAX];
    attn_status rc = ATTN_OK;
    if (o->dump) {
        if (!(copy = strdup(o->dump))) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        rc = split_patterns(copy, o->dump, pat, DUMP_PATTERNS_MAX, &l.n_pat, err);
        if (!rc) rc = check_patterns(r->cfg, pat, l.n_pat, err);
        l.pat = pat;
    }
    if (!rc) {
        attn_dump_each_name(r->cfg, measure, &l);
        attn_dump_each_name(r->cfg, print_entry, &l);
        if (fflush(stdout) != 0 || ferror(stdout))
            rc = attn_error_set(err, ATTN_ERR_IO, "standard output: write failed");
    }
    free(copy);
    return rc;
}
