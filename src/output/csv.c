/* CSV writers (CONTRACT section 3), labels and the capture fan-out. */
#include "output/output.h"

#include <stdlib.h>
#include <string.h>

int labels_from_ids(seq_labels *l, const attn_tokenizer *tok, const int *ids, size_t n) {
    l->n = n;
    l->text = calloc(n ? n : 1, sizeof *l->text);
    if (!l->text) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *p = tok ? attn_tokenizer_piece(tok, ids[i]) : NULL;
        char num[24];
        if (!p) {
            snprintf(num, sizeof num, "%d", ids[i]);
            p = num;
        }
        if (!(l->text[i] = strdup(p))) {
            labels_free(l);
            return ATTN_ERR_NOMEM;
        }
    }
    return ATTN_OK;
}

int labels_from_positions(seq_labels *l, size_t n) {
    l->n = n;
    l->text = calloc(n ? n : 1, sizeof *l->text);
    if (!l->text) return ATTN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        if (!(l->text[i] = strdup(num))) {
            labels_free(l);
            return ATTN_ERR_NOMEM;
        }
    }
    return ATTN_OK;
}

const char *labels_at(const seq_labels *l, int pos) {
    return l && pos >= 0 && (size_t)pos < l->n ? l->text[pos] : "?";
}

void labels_free(seq_labels *l) {
    if (l->text)
        for (size_t i = 0; i < l->n; i++) free(l->text[i]);
    free(l->text);
    l->text = NULL;
    l->n = 0;
}

void csv_field(FILE *f, const char *s) {
    size_t n = strlen(s);
    bool quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    putc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') putc('"', f);
        putc(s[i], f);
    }
    putc('"', f);
}


/* Query and key labels of an attention value. */
static void key_labels(const run_context *run, const attn_capture_key *key, const seq_labels **q,
                       const seq_labels **k) {
    if (key->source) {
        *q = *k = run->source;
    } else {
        *q = run->main;
        *k = key->kind == ATTN_KIND_CROSS ? run->source : run->main;
    }
}

/* Self-attention of a decoder stack is causal. */
static bool is_causal(const run_context *run, const attn_capture_key *key) {
    return key->kind == ATTN_KIND_SELF && key->stack == ATTN_STACK_DECODER && !key->source &&
           run->cfg->arch != ATTN_ARCH_ENCODER;
}

static const char *stack_name(attn_stack s) {
    return s == ATTN_STACK_ENCODER ? "encoder" : "decoder";
}

void csv_maps_header(FILE *f) {
    fputs("input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight\n", f);
}

bool csv_maps_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}

int csv_maps_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                  attn_error *err) {
    (void)err;
    csv_maps *w = user;
    const run_context *run = w->run;
    const seq_labels *ql, *kl;
    key_labels(run, key, &ql, &kl);
    bool causal = is_causal(run, key);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%ld,%s,%d,%s,%d,", run->input, stack_name(key->stack),
             key->layer, key->kind == ATTN_KIND_CROSS ? "cross" : "self", key->head);
    for (int r = 0; r < v->rows; r++) {
        int qpos = v->row_offset + r;
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [cols] */
        for (int c = 0; c < v->cols; c++) {
            if (causal && c > qpos) break; /* masked: exactly 0, left out */
            fputs(prefix, w->f);
            fprintf(w->f, "%d,", qpos);
            csv_field(w->f, labels_at(ql, qpos));
            fprintf(w->f, ",%d,", c);
            csv_field(w->f, labels_at(kl, c));
            fprintf(w->f, ",%.9g\n", (double)row[c]);
        }
    }
    return ATTN_OK;
}

void csv_context_header(FILE *f, int d_model) {
    fputs("input,pos,token", f);
    for (int i = 0; i < d_model; i++) fprintf(f, ",d%d", i);
    putc('\n', f);
}

bool csv_context_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_HIDDEN && !key->source;
}

int csv_context_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                     attn_error *err) {
    (void)key;
    (void)err;
    csv_context *w = user;
    for (int r = 0; r < v->rows; r++) {
        int pos = v->row_offset + r;
        fprintf(w->f, "%ld,%d,", w->run->input, pos);
        csv_field(w->f, labels_at(w->run->main, pos));
        const float *row = v->data + (size_t)r * (size_t)v->cols; /* [D] */
        for (int c = 0; c < v->cols; c++) fprintf(w->f, ",%.9g", (double)row[c]);
        putc('\n', w->f);
    }
    return ATTN_OK;
}

void fanout_add(fanout *fo, attn_capture c) {
    if (fo->n < FANOUT_MAX) fo->sinks[fo->n++] = c;
}

static bool fanout_wants(void *user, const attn_capture_key *key) {
    fanout *fo = user;
    for (int i = 0; i < fo->n; i++)
        if (fo->sinks[i].wants && fo->sinks[i].wants(fo->sinks[i].user, key)) return true;
    return false;
}

static int fanout_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                       attn_error *err) {
    fanout *fo = user;
    for (int i = 0; i < fo->n; i++) {
        const attn_capture *s = &fo->sinks[i];
        if (!s->wants || !s->wants(s->user, key)) continue;
        int rc = s->emit(s->user, key, v, err);
        if (rc) return rc;
    }
    return ATTN_OK;
}

attn_capture fanout_capture(fanout *fo) {
    return (attn_capture){.wants = fanout_wants, .emit = fanout_emit, .user = fo};
}
