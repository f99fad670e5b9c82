/* capture: the names of captured values, stacks and attention kinds
 * (attn_capture_name, attn_value_name, attn_stack_name, attn_kind_name), and
 * the plumbing of the forward pass that asks a sink whether it wants a value
 * and hands it over.
 *
 *   stack level:  "embed", "hidden", "logits"  ("encoder.embed", "encoder.hidden"
 *                 for the encoder of an encoder-decoder)
 *   block level:  "<prefix>.<layer>.<part>.<value>[.h<head>]"
 *                 prefix "blocks" or "encoder.blocks"; part "attn" (self) or
 *                 "cross" for attention values, "mlp" for the MLP output;
 *                 the residual stream is "<prefix>.<layer>.resid". */
#include "compute/capture.h"

#include <stdio.h>

static const char *const value_names[ATTN_V_COUNT] = {
    [ATTN_V_EMBED] = "embed",     [ATTN_V_ATTN_IN] = "in",
    [ATTN_V_Q] = "q",             [ATTN_V_K] = "k",
    [ATTN_V_V] = "v",             [ATTN_V_SCORES] = "scores",
    [ATTN_V_WEIGHTS] = "weights", [ATTN_V_HEAD_CONTEXT] = "context",
    [ATTN_V_CONCAT] = "concat",   [ATTN_V_ATTN_OUT] = "out",
    [ATTN_V_MLP_OUT] = "out",     [ATTN_V_RESID] = "resid",
    [ATTN_V_HIDDEN] = "hidden",   [ATTN_V_LOGITS] = "logits",
};

const char *attn_value_name(attn_value v) {
    if ((int)v < 0 || v >= ATTN_V_COUNT) return "unknown";
    return value_names[v];
}

const char *attn_stack_name(attn_stack s) { return s == ATTN_STACK_ENCODER ? "encoder" : "decoder"; }

const char *attn_kind_name(attn_attn_kind k) { return k == ATTN_KIND_CROSS ? "cross" : "self"; }

const char *attn_head_name(int head, char *buf, size_t cap) {
    switch (head) {
    case -1: return "";
    case ATTN_HEAD_MEAN: return "mean";
    case ATTN_HEAD_MAX: return "max";
    case ATTN_HEAD_ROLLOUT: return "rollout";
    default: break;
    }
    if (head < 0 || !buf || cap == 0) return "?";
    snprintf(buf, cap, "%d", head);
    return buf;
}

static bool is_per_head(attn_value v) {
    return v == ATTN_V_Q || v == ATTN_V_K || v == ATTN_V_V || v == ATTN_V_SCORES ||
           v == ATTN_V_WEIGHTS || v == ATTN_V_HEAD_CONTEXT;
}

size_t attn_capture_name(const attn_capture_key *key, char *buf, size_t cap) {
    char tmp[1];
    if (!buf || cap == 0) {
        buf = tmp;
        cap = sizeof tmp;
    }
    if (!key) {
        buf[0] = '\0';
        return 0;
    }
    const attn_value v = key->value;
    const char *vn = attn_value_name(v);
    int n;
    if (v == ATTN_V_EMBED || v == ATTN_V_HIDDEN || v == ATTN_V_LOGITS) {
        n = snprintf(buf, cap, "%s%s", key->source ? "encoder." : "", vn);
    } else {
        const char *prefix = key->source ? "encoder.blocks" : "blocks";
        if (v == ATTN_V_RESID) {
            n = snprintf(buf, cap, "%s.%d.%s", prefix, key->layer, vn);
        } else if (v == ATTN_V_MLP_OUT) {
            n = snprintf(buf, cap, "%s.%d.mlp.%s", prefix, key->layer, vn);
        } else {
            const char *part = key->kind == ATTN_KIND_CROSS ? "cross" : "attn"; /* tensor names */
            if (is_per_head(v) && key->head >= 0)
                n = snprintf(buf, cap, "%s.%d.%s.%s.h%d", prefix, key->layer, part, vn, key->head);
            else if (is_per_head(v) && key->head < -1)
                n = snprintf(buf, cap, "%s.%d.%s.%s.%s", prefix, key->layer, part, vn,
                             attn_head_name(key->head, NULL, 0));
            else
                n = snprintf(buf, cap, "%s.%d.%s.%s", prefix, key->layer, part, vn);
        }
    }
    return n < 0 ? 0 : (size_t)n;
}

bool attn_cap_wants(const attn_capture *cap, const attn_capture_key *key) {
    return cap && cap->wants && cap->emit && cap->wants(cap->user, key);
}

attn_status attn_cap_emit(const attn_capture *cap, const attn_capture_key *key, const float *data,
                          int rows, int cols, int row_offset, attn_error *err) {
    attn_capture_view view = {.rows = rows, .cols = cols, .data = data, .row_offset = row_offset};
    attn_error local;
    if (!err) err = &local; /* the sink may always write an error */
    err->status = ATTN_OK;
    err->message[0] = '\0';
    attn_status rc = cap->emit(cap->user, key, &view, err);
    if (rc == ATTN_OK) return ATTN_OK;
    if (err->message[0] == '\0') {
        /* the sink returned an error without describing it */
        char name[256];
        attn_capture_name(key, name, sizeof name);
        attn_error_set(err, rc, "capture of %s failed", name);
    }
    err->status = rc;
    return rc;
}

attn_status attn_cap_offer(const attn_capture *cap, const attn_capture_key *key, const float *data,
                           int rows, int cols, int row_offset, attn_error *err) {
    if (!attn_cap_wants(cap, key)) return ATTN_OK;
    return attn_cap_emit(cap, key, data, rows, cols, row_offset, err);
}

attn_status attn_cap_edit(const attn_capture *cap, const attn_capture_key *key, float *data,
                          int rows, int cols, int row_offset, attn_error *err) {
    if (!attn_cap_wants(cap, key)) return ATTN_OK;
    if (cap->edit) {
        attn_error local;
        if (!err) err = &local;
        err->message[0] = '\0';
        attn_status rc = cap->edit(cap->user, key, data, rows, cols, row_offset, err);
        if (rc) {
            if (err->message[0] == '\0') {
                char name[256];
                attn_capture_name(key, name, sizeof name);
                attn_error_set(err, rc, "intervention on %s failed", name);
            }
            return rc;
        }
    }
    return attn_cap_emit(cap, key, data, rows, cols, row_offset, err);
}
