/* Aggregation of the maps of attn run: --reduce mean|max and --rollout
 * (docs/aggregation.md). run_aggregate_wrap puts the library's sinks
 * (attn_reduce, attn_rollout in attn/write.h) in front of a maps sink; the
 * CSV maps, the heatmaps and the page all call it.
 *
 *   --reduce: csv <- reduce <- selection <- fan-out. The selection in front
 *     lets only the selected heads through; the reduce emits a sub-layer's
 *     map when the last selected head arrives (heads come in order), or at
 *     the end of the input.
 *   --rollout: csv <- selection <- rollout <- fan-out. The rollout needs
 *     every head of every layer below the layers selected, so it sits in
 *     front of the selection, which then picks the R_l that are written
 *     (--layers, --stack); the caller's own selection gets a capture that
 *     wants nothing. */
#include "run.h"

#include <stdlib.h>
#include <string.h>

attn_status run_aggregate_check(const run_opts *o, attn_error *err) {
    if (!o->reduce && !o->rollout) return ATTN_OK;
    const char *flag = o->reduce ? "--reduce" : "--rollout";
    if (o->stats_cmd)
        return cli_usage(err, "%s does not apply to attn stats (its rows are per head); drop it",
                         flag);
    if (o->reduce && strcmp(o->reduce, "mean") != 0 && strcmp(o->reduce, "max") != 0)
        return cli_usage(err, "--reduce: expected mean or max, got '%s'", o->reduce);
    if (o->reduce && o->rollout)
        return cli_usage(err, "--reduce and --rollout exclude each other (rollout takes the mean "
                              "of every head of each layer)");
    if (!o->maps && !o->heatmap && !o->html)
        return cli_usage(err, "%s needs a map output: --maps, --heatmap or --html", flag);
    if (o->rollout && o->sel.heads.given)
        return cli_usage(err, "--rollout takes the mean of every head of each layer; drop --heads");
    if (o->rollout && o->sel.kind == ATTN_KIND_CROSS)
        return cli_usage(err, "--rollout is defined for self-attention only; drop --kind cross");
    return ATTN_OK;
}

/* One wrapped maps sink; freed by its run_output's abort. */
typedef struct aggregate {
    bool rollout;
    attn_reduce reduce;
    attn_rollout roll;
} aggregate;

/* After each input: the reduce's last map, when the input's heads ended
 * before the last selected one (they never do in attn run). */
static attn_status aggregate_end(void *self, const attn_run_info *run, bool ok, attn_error *err) {
    (void)run;
    aggregate *a = self;
    if (a->rollout) return ATTN_OK; /* layer 0 of the next input starts again */
    if (!ok) {
        attn_reduce_discard(&a->reduce);
        return ATTN_OK;
    }
    return attn_reduce_flush(&a->reduce, err);
}

static void aggregate_abort(void *self) {
    aggregate *a = self;
    attn_reduce_free(&a->reduce);
    attn_rollout_free(&a->roll);
    free(a);
}

/* The last head the selection lets through (heads come in order). */
static int last_selected_head(const run_opts *o, const attn_config *cfg) {
    for (int h = cfg->n_heads - 1; h >= 0; h--)
        if (cli_ranges_has(&o->sel.heads, h)) return h;
    return -1;
}

attn_status run_aggregate_wrap(runner *r, const run_opts *o, attn_capture c, attn_capture *out,
                               attn_error *err) {
    *out = c;
    if (!o->reduce && !o->rollout) return ATTN_OK;
    aggregate *a = calloc(1, sizeof *a);
    if (!a) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    a->rollout = o->rollout;
    attn_status rc = run_add_output(
        r, (run_output){.self = a, .end = aggregate_end, .abort = aggregate_abort}, err);
    if (rc) return rc;
    if (o->reduce) {
        const attn_reduce_op op = strcmp(o->reduce, "max") == 0 ? ATTN_REDUCE_MAX : ATTN_REDUCE_MEAN;
        if ((rc = attn_reduce_init(&a->reduce, c, op, last_selected_head(o, r->cfg), err)))
            return rc;
        *out = (attn_capture){attn_reduce_wants, attn_reduce_emit, &a->reduce};
        return ATTN_OK;
    }
    attn_capture selected;
    if ((rc = run_select(r, o, c, &selected, err)) ||
        (rc = attn_rollout_init(&a->roll, selected, r->cfg, err)) ||
        (rc = attn_fanout_add(&r->fo, (attn_capture){attn_rollout_wants, attn_rollout_emit, &a->roll},
                              err)))
        return rc;
    *out = (attn_capture){0}; /* the rollout feeds c itself */
    return ATTN_OK;
}
