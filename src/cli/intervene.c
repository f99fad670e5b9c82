/* The interventions of attn run, stats and lens (docs/interventions.md):
 *   --ablate SPEC[,...]  heads and MLPs knocked out (attn_ablation, in front
 *                        of every output in the fan-out);
 *   --ablate-mode M      zero or mean;
 *   --mean-over FILE     mean mode's means over the inputs of FILE, from the
 *                        model without ablation (attn_ablation_means), in a
 *                        pass over FILE before the first input (cli_mean_over,
 *                        attn ablate's too);
 *   --target TOKEN       the token whose logit, probability and rank the
 *                        predictions list. With --ablate, the predictions
 *                        (--top-k, --target) also give each token's logit and
 *                        probability without the ablation: each input is
 *                        then run once more, first, without it, and only its
 *                        logits are kept (the clean logits, [T, V]). */
#include "run.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

attn_status run_intervene_check(const run_opts *o, attn_error *err) {
    if (o->ablate_mode && !o->ablate) return cli_usage(err, "--ablate-mode needs --ablate SPEC");
    if (o->ablate_mode && strcmp(o->ablate_mode, "zero") != 0 && strcmp(o->ablate_mode, "mean") != 0)
        return cli_usage(err, "--ablate-mode: expected zero or mean, got '%s'", o->ablate_mode);
    if (o->mean_over && !o->ablate)
        return cli_usage(err, "--mean-over gives the means of --ablate-mode mean: it needs "
                              "--ablate SPEC");
    if (o->mean_over && o->ablate_mode && strcmp(o->ablate_mode, "zero") == 0)
        return cli_usage(err, "--mean-over gives the means of --ablate-mode mean: drop "
                              "--ablate-mode zero");
    if (o->mean_over && !*o->mean_over)
        return cli_usage(err, "--mean-over: expected a file name, got ''");
    if (o->target && (o->stats_cmd || o->lens_cmd))
        return cli_usage(err, "--target is a flag of attn run%s",
                         o->lens_cmd ? " (attn lens --attribute TOKEN splits a token's logit)"
                                     : "");
    return ATTN_OK;
}

attn_status run_intervene_open(runner *r, const run_opts *o, attn_error *err) {
    attn_status rc;
    r->target = -1;
    if (o->target && (rc = cli_token_arg(r->tok, r->cfg->vocab_size, "--target", o->target,
                                         &r->target, err)))
        return rc;
    if (!o->ablate) return ATTN_OK;
    if ((rc = attn_ablation_parse(&r->ablation, o->ablate, r->cfg, err))) return rc;
    if ((o->ablate_mode && strcmp(o->ablate_mode, "mean") == 0) || o->mean_over)
        r->ablation.mode = ATTN_ABLATE_MEAN;
    return ATTN_OK;
}

attn_status cli_mean_over(attn_session *sess, const attn_model *model, const char *path,
                          bool ids, attn_ablation_means **out, attn_error *err) {
    *out = NULL;
    const attn_config *cfg = attn_model_config(model);
    const bool pair = cfg->arch == ATTN_ARCH_ENCODER_DECODER;
    FILE *f = fopen(path, "rb");
    if (!f) return attn_error_set(err, ATTN_ERR_IO, "--mean-over %s: %s", path, strerror(errno));
    attn_ablation_means *m = NULL;
    attn_status rc = attn_ablation_means_new(&m, cfg, err);
    const attn_capture cap = m ? attn_ablation_means_capture(m) : (attn_capture){0};
    char *line = NULL;
    size_t buf_cap = 0;
    ssize_t len = 0;
    bool too_long = false;
    long n = 0;
    while (!rc && (len = cli_read_line(f, &line, &buf_cap, &too_long)) >= 0) {
        while (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
        char what[80];
        snprintf(what, sizeof what, "--mean-over %s line %ld", path, ++n);
        if (too_long) {
            rc = cli_usage(err, "%s: longer than %zu bytes", what, (size_t)CLI_LINE_MAX);
            break;
        }
        char *source = NULL, *target = NULL;
        cli_input in = {0}, src = {0};
        rc = cli_split_batch_line(line, (size_t)len, pair, what, &source, &target, err);
        const cli_input_args sa = ids ? (cli_input_args){.ids = source}
                                      : (cli_input_args){.text = source};
        const cli_input_args ta = ids ? (cli_input_args){.ids = target}
                                      : (cli_input_args){.text = target};
        if (!rc && pair) rc = cli_input_load(&src, model, &sa, what, err);
        if (!rc) rc = cli_input_load(&in, model, &ta, what, err);
        attn_session_reset(sess);
        if (!rc && pair) {
            attn_input si = cli_input_view(&src);
            rc = attn_session_encode(sess, &si, &cap, err);
        }
        if (!rc) {
            attn_input mi = cli_input_view(&in);
            rc = attn_session_forward(sess, &mi, &cap, err);
        }
        if (rc && rc != ATTN_ERR_USAGE) attn_error_prefix(err, "%s", what);
        cli_input_free(&in);
        cli_input_free(&src);
    }
    free(line);
    if (!rc && len == -2) rc = attn_error_set(err, ATTN_ERR_NOMEM, "--mean-over: out of memory");
    if (!rc && ferror(f)) rc = attn_error_set(err, ATTN_ERR_IO, "--mean-over %s: read error", path);
    fclose(f);
    if (!rc && n == 0) rc = cli_usage(err, "--mean-over %s: no inputs in it", path);
    if (!rc) rc = attn_ablation_means_finish(m, err);
    attn_session_reset(sess);
    if (rc) attn_ablation_means_free(m);
    else *out = m;
    return rc;
}

attn_status run_intervene_start(runner *r, const run_opts *o, attn_error *err) {
    if (!o->ablate) return ATTN_OK;
    attn_status rc = ATTN_OK;
    if (o->mean_over) {
        /* FILE's lines are ids when the run's inputs are */
        rc = cli_mean_over(r->sess, r->model, o->mean_over, o->ids_input || o->input.ids,
                           &r->means, err);
        r->ablation.means = r->means;
    }
    if (!rc) rc = attn_fanout_add(&r->fo, attn_ablation_capture(&r->ablation), err);
    return rc;
}

/* The clean pass's sink: the main stack's logits into r->clean. */
static attn_status clean_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                              attn_error *err) {
    (void)key;
    runner *r = user;
    size_t rows, need;
    if (v->row_offset < 0 || v->rows < 0 ||
        !attn_add_size((size_t)v->row_offset, (size_t)v->rows, &rows) ||
        !attn_mul_size(rows, (size_t)v->cols, &need))
        return attn_error_set(err, ATTN_ERR_INTERNAL, "clean logits: bad shape");
    if (need > r->clean.cap) {
        float *grown = realloc(r->clean.data, need * sizeof *grown);
        if (!grown) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
        r->clean.data = grown;
        r->clean.cap = need;
    }
    memcpy(r->clean.data + (size_t)v->row_offset * (size_t)v->cols, v->data,
           (size_t)v->rows * (size_t)v->cols * sizeof *v->data);
    if ((int)rows > r->clean.rows) r->clean.rows = (int)rows;
    r->clean.V = v->cols;
    return ATTN_OK;
}

attn_status run_intervene_before(runner *r, const cli_input *in, const cli_input *src,
                                 attn_error *err) {
    if (!r->pred || !r->ablation.n) return ATTN_OK;
    const attn_capture cap = {attn_predictions_wants, clean_emit, r};
    r->clean.rows = 0;
    attn_session_reset(r->sess);
    attn_status rc = ATTN_OK;
    if (src) {
        attn_input si = cli_input_view(src);
        rc = attn_session_encode(r->sess, &si, &cap, err);
    }
    if (!rc) {
        attn_input mi = cli_input_view(in);
        rc = attn_session_forward(r->sess, &mi, &cap, err);
    }
    r->pred->clean = r->clean.data;
    r->pred->clean_rows = r->clean.rows;
    return rc;
}

void run_intervene_free(runner *r) {
    free(r->clean.data);
    r->clean.data = NULL;
    attn_ablation_means_free(r->means);
    r->means = NULL;
}
