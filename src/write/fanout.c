/* The fan-out: one capture that feeds several sinks. */
#include "attn/write.h"

attn_status attn_fanout_add(attn_fanout *fo, attn_capture c, attn_error *err) {
    if (fo->n >= ATTN_FANOUT_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "a fan-out feeds at most %d sinks",
                              ATTN_FANOUT_MAX);
    fo->sinks[fo->n++] = c;
    return ATTN_OK;
}

static bool fanout_wants(void *user, const attn_capture_key *key) {
    attn_fanout *fo = user;
    for (int i = 0; i < fo->n; i++)
        if (fo->sinks[i].wants && fo->sinks[i].wants(fo->sinks[i].user, key)) return true;
    return false;
}

static attn_status fanout_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                       attn_error *err) {
    attn_fanout *fo = user;
    for (int i = 0; i < fo->n; i++) {
        const attn_capture *s = &fo->sinks[i];
        if (!s->wants || !s->wants(s->user, key)) continue;
        attn_status rc = s->emit(s->user, key, v, err);
        if (rc) return rc;
    }
    return ATTN_OK;
}

/* Every sink's edit, in the order they were added, before any emit. */
static attn_status fanout_edit(void *user, const attn_capture_key *key, float *data, int rows,
                               int cols, int row_offset, attn_error *err) {
    attn_fanout *fo = user;
    for (int i = 0; i < fo->n; i++) {
        const attn_capture *s = &fo->sinks[i];
        if (!s->edit || !s->wants || !s->wants(s->user, key)) continue;
        attn_status rc = s->edit(s->user, key, data, rows, cols, row_offset, err);
        if (rc) return rc;
    }
    return ATTN_OK;
}

attn_capture attn_fanout_capture(attn_fanout *fo) {
    bool alongside = fo->n > 0; /* when every sink allows it */
    for (int i = 0; i < fo->n; i++) alongside = alongside && fo->sinks[i].emit_alongside;
    return (attn_capture){.wants = fanout_wants, .emit = fanout_emit, .user = fo,
                          .edit = fanout_edit, .emit_alongside = alongside};
}
