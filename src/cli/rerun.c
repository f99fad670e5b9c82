/* One input run once (the base pass), then again and again from one layer
 * on with an intervention in front (attn ablate's head sweep, attn patch's
 * units): the base pass keeps the residual stream at every block's input of
 * both stacks; a rerun of the main stack starts from it at its layer
 * (attn_session_rerun_from), a rerun of the encoder of an encoder-decoder
 * from its layer (attn_session_reencode_from) and then runs the whole
 * decoder. After an encoder rerun the session holds the changed encoder, so
 * the next main-stack rerun first puts the base pass's state back. Each pass
 * keeps the last position's logits. */
#include "cli.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

static bool rerun_wants(void *user, const attn_capture_key *key) {
    const cli_rerun *s = user;
    if (key->source && !s->ex) return false;
    return (key->value == ATTN_V_LOGITS && !key->source) ||
           (s->record && (key->value == ATTN_V_EMBED || key->value == ATTN_V_RESID));
}

static attn_status rerun_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                              attn_error *err) {
    cli_rerun *s = user;
    if (key->value == ATTN_V_LOGITS) {
        if (v->rows < 1 || v->cols != s->V)
            return attn_error_set(err, ATTN_ERR_INTERNAL, "rerun: logits of an unexpected shape");
        memcpy(s->logits, v->data + (size_t)(v->rows - 1) * (size_t)s->V,
               (size_t)s->V * sizeof *s->logits);
        return ATTN_OK;
    }
    const int l = key->value == ATTN_V_EMBED ? 0 : key->layer + 1;
    const int L = key->source ? s->Le : s->L, T = key->source ? s->S : s->T;
    if (l < 0 || l > L || v->rows != T || v->cols != s->D || v->row_offset != 0)
        return attn_error_set(err, ATTN_ERR_INTERNAL,
                              "rerun: a residual stream of an unexpected shape");
    memcpy((key->source ? s->ex : s->x) + (size_t)l * (size_t)T * (size_t)s->D, v->data,
           (size_t)T * (size_t)s->D * sizeof *s->x);
    return ATTN_OK;
}

/* The residual streams of a stack, [L + 1][T, D]. */
static float *streams(int L, int T, int D, const char *what, attn_error *err) {
    size_t td, n;
    if (!attn_mul_size((size_t)T, (size_t)D, &td) || !attn_mul_size(td, (size_t)L + 1, &n)) {
        attn_error_set(err, ATTN_ERR_NOMEM, "%s: size overflows", what);
        return NULL;
    }
    return attn_calloc_array(n, sizeof(float), what, err);
}

attn_status cli_rerun_init(cli_rerun *r, attn_session *sess, const attn_config *cfg,
                           const cli_input *in, const cli_input *src, attn_error *err) {
    *r = (cli_rerun){.sess = sess, .in = in, .src = src, .L = cfg->n_layers, .T = (int)in->n,
                     .D = cfg->d_model, .V = cfg->vocab_size};
    if (!(r->x = streams(r->L, r->T, r->D, "residual streams", err))) return ATTN_ERR_NOMEM;
    if (src) {
        r->Le = cfg->n_encoder_layers, r->S = (int)src->n;
        if (!(r->ex = streams(r->Le, r->S, r->D, "encoder residual streams", err)))
            return ATTN_ERR_NOMEM;
    }
    r->logits = attn_calloc_array((size_t)r->V, sizeof *r->logits, "logits", err);
    return r->logits ? ATTN_OK : ATTN_ERR_NOMEM;
}

void cli_rerun_free(cli_rerun *r) {
    free(r->x);
    free(r->ex);
    free(r->logits);
    r->x = r->ex = r->logits = NULL;
}

/* cap (NULL: none) and the rerun's own capture, in that order. */
static attn_status with_own(cli_rerun *r, const attn_capture *cap, attn_fanout *fo,
                            attn_capture *out, attn_error *err) {
    *fo = (attn_fanout){0};
    const attn_capture own = {.wants = rerun_wants, .emit = rerun_emit, .user = r};
    attn_status rc = cap ? attn_fanout_add(fo, *cap, err) : ATTN_OK;
    if (!rc) rc = attn_fanout_add(fo, own, err);
    if (!rc) *out = attn_fanout_capture(fo);
    return rc;
}

/* A whole pass of the input (and its source), cap in front. */
static attn_status whole(cli_rerun *r, const attn_capture *cap, bool record, attn_error *err) {
    attn_fanout fo;
    attn_capture c;
    attn_status rc = with_own(r, cap, &fo, &c, err);
    r->record = record;
    attn_session_reset(r->sess);
    if (!rc && r->src) {
        const attn_input si = cli_input_view(r->src);
        rc = attn_session_encode(r->sess, &si, &c, err);
    }
    const attn_input mi = cli_input_view(r->in);
    if (!rc) rc = attn_session_forward(r->sess, &mi, &c, err);
    r->record = false;
    r->changed = false;
    return rc;
}

attn_status cli_rerun_base(cli_rerun *r, const attn_capture *cap, attn_error *err) {
    return whole(r, cap, true, err);
}

attn_status cli_rerun_from(cli_rerun *r, bool source, int layer, const attn_capture *cap,
                           attn_error *err) {
    if (layer < 0 || layer > (source ? r->Le : r->L))
        return attn_error_set(err, ATTN_ERR_USAGE, "rerun: layer %d is out of range", layer);
    attn_status rc = ATTN_OK;
    if (!source && r->changed && (rc = whole(r, NULL, false, err))) return rc;
    attn_fanout fo;
    attn_capture c;
    if ((rc = with_own(r, cap, &fo, &c, err))) return rc;
    if (!source) {
        const float *x = r->x + (size_t)layer * (size_t)r->T * (size_t)r->D; /* [T, D] */
        return attn_session_rerun_from(r->sess, layer, x, r->T, &c, err);
    }
    if (!r->ex) return attn_error_set(err, ATTN_ERR_USAGE, "rerun: the model has no encoder");
    const float *ex = r->ex + (size_t)layer * (size_t)r->S * (size_t)r->D; /* [S, D] */
    const attn_input mi = cli_input_view(r->in);
    r->changed = true;
    if ((rc = attn_session_reencode_from(r->sess, layer, ex, r->S, &c, err))) return rc;
    return attn_session_forward(r->sess, &mi, &c, err);
}
