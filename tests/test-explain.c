/* attn explain and the readable view of attn run, through the real binary
 * ($ATTN_EXE) on random models written into a temporary folder.
 *
 * explain: every matrix printed with --full --digits 6 is parsed back and
 * compared with the value the forward pass captured in this process
 * (same model, same input) to the printed precision, and the printed steps
 * are checked against each other in double precision: Q = A·Wq + b (and K,
 * V), S = QKᵀ/√hd, weights = softmax of the masked S, C = weights·V, concat
 * holds C in the head's columns, out = concat·Wo + bo, X = E + P, the
 * weight matrices are the generated ones. Also: --embeddings gives the
 * numbers of the ids, abbreviation to the width, usage errors.
 * view: --color always/never/auto (auto through a pseudo-terminal, with and
 * without NO_COLOR), bands of key columns, run --embeddings. */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static const char *attn_exe;

/* ---- random models ---- */

static tu_rng rng = {777};
static tu_tensors tensors;

static void add(const char *name, int64_t d0, int64_t d1, float base, float scale) {
    tu_tensors_rand(&tensors, &rng, name, d0, d1, base, scale);
}

static const attn_tensor_spec *find(const char *name) { return tu_tensors_find(&tensors, name); }

static void free_tensors(void) { tu_tensors_free(&tensors); }

static const char *vocab = "<unk>\nthe\ncat\nsits\non\nmat\n.\nsun\nrises\nin\neast\n";
enum { V = 11, MAXT = 16 };

typedef struct spec {
    const char *arch;   /* "decoder", "encoder", "encoder-decoder" */
    int D, H, KV, L, LE;
    const char *pos;    /* positional */
    const char *normpos;
    bool bias;
    const char *mlp;    /* "none" or "relu" */
    double scale;       /* embed_scale */
    bool enorm;         /* embed_norm */
} spec;

static void add_attn(const spec *s, const char *prefix, const char *part) {
    char n[96];
    const int hd = s->D / s->H;
    snprintf(n, sizeof n, "%s.%s_norm.weight", prefix, part);
    add(n, s->D, 0, 1, 0.2f);
    snprintf(n, sizeof n, "%s.%s_norm.bias", prefix, part);
    add(n, s->D, 0, 0, 0.2f);
    const char *w[] = {"q", "k", "v", "o"};
    int outs[] = {s->H * hd, s->KV * hd, s->KV * hd, s->D};
    int ins[] = {s->D, s->D, s->D, s->H * hd};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s.%s.weight", prefix, part, w[i]);
        add(n, outs[i], ins[i], 0, 0.6f);
        if (s->bias) {
            snprintf(n, sizeof n, "%s.%s.%s.bias", prefix, part, w[i]);
            add(n, outs[i], 0, 0, 0.3f);
        }
    }
}

static void add_block(const spec *s, const char *prefix, bool cross) {
    add_attn(s, prefix, "attn");
    if (cross) add_attn(s, prefix, "cross");
    if (strcmp(s->mlp, "none") != 0) {
        char n[96];
        snprintf(n, sizeof n, "%s.mlp_norm.weight", prefix);
        add(n, s->D, 0, 1, 0.2f);
        snprintf(n, sizeof n, "%s.mlp_norm.bias", prefix);
        add(n, s->D, 0, 0, 0.2f);
        snprintf(n, sizeof n, "%s.mlp.up.weight", prefix);
        add(n, 2 * s->D, s->D, 0, 0.5f);
        snprintf(n, sizeof n, "%s.mlp.down.weight", prefix);
        add(n, s->D, 2 * s->D, 0, 0.5f);
        if (s->bias) {
            snprintf(n, sizeof n, "%s.mlp.up.bias", prefix);
            add(n, 2 * s->D, 0, 0, 0.2f);
            snprintf(n, sizeof n, "%s.mlp.down.bias", prefix);
            add(n, s->D, 0, 0, 0.2f);
        }
    }
}

static void write_text(const char *name, const char *text) { tu_write_text(tmpdir, name, text); }

/* Writes config.json, model.safetensors and vocab.txt; keeps the tensors. */
static void make_model(const spec *s) {
    free_tensors();
    bool encdec = strcmp(s->arch, "encoder-decoder") == 0;
    bool pre = strcmp(s->normpos, "pre") == 0;
    add("tok_embed", V, s->D, 0, 1.0f);
    if (strcmp(s->pos, "learned") == 0) add("pos_embed", MAXT, s->D, 0, 0.5f);
    if (s->enorm) {
        add("embed_norm.weight", s->D, 0, 1, 0.3f);
        add("embed_norm.bias", s->D, 0, 0, 0.3f);
        if (encdec) {
            add("encoder.embed_norm.weight", s->D, 0, 1, 0.3f);
            add("encoder.embed_norm.bias", s->D, 0, 0, 0.3f);
        }
    }
    char n[96];
    for (int l = 0; l < s->L; l++) {
        snprintf(n, sizeof n, "blocks.%d", l);
        add_block(s, n, encdec);
    }
    for (int l = 0; encdec && l < s->LE; l++) {
        snprintf(n, sizeof n, "encoder.blocks.%d", l);
        add_block(s, n, false);
    }
    if (pre) {
        add("norm.weight", s->D, 0, 1, 0.1f);
        add("norm.bias", s->D, 0, 0, 0.1f);
        if (encdec) {
            add("encoder.norm.weight", s->D, 0, 1, 0.1f);
            add("encoder.norm.bias", s->D, 0, 0, 0.1f);
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    tu_tensors_write(&tensors, path);
    write_text("vocab.txt", vocab);
    char cfg[2048], extra[128] = "";
    if (encdec) snprintf(extra, sizeof extra, "\"n_encoder_layers\":%d,", s->LE);
    if (strcmp(s->mlp, "none") != 0)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "\"d_ff\":%d,", 2 * s->D);
    if (s->enorm) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "\"embed_norm\":true,");
    snprintf(cfg, sizeof cfg,
             "{\"format\":\"attn/1\",\"architecture\":\"%s\",\"vocab_size\":%d,\"d_model\":%d,"
             "\"n_heads\":%d,\"n_kv_heads\":%d,\"max_seq_len\":%d,\"n_layers\":%d,%s"
             "\"positional\":\"%s\",\"embed_scale\":%g,\"norm\":\"layernorm\","
             "\"norm_position\":\"%s\",\"mlp\":\"%s\",\"bias\":%s,\"lm_head\":\"none\","
             "\"weights\":\"model.safetensors\",\"tokenizer\":{\"type\":\"word\","
             "\"vocab\":\"vocab.txt\",\"lowercase\":true,\"unk\":\"<unk>\",\"bos\":null,"
             "\"eos\":null}}",
             s->arch, V, s->D, s->H, s->KV, MAXT, s->L, extra, s->pos, s->scale, s->normpos,
             s->mlp, s->bias ? "true" : "false");
    write_text("config.json", cfg);
}

/* ---- running the binary ---- */

typedef tu_result result;

/* Runs attn with args (NULL-terminated) in tmpdir. env: "NAME=VALUE" to set
 * or "NAME" to unset, NULL-terminated (may be NULL). COLUMNS and NO_COLOR are
 * unset unless env sets them. */
static result run_env(const char *const *env, const char *const *args) {
    const char *all[16] = {"COLUMNS", "NO_COLOR"};
    int n = 2;
    for (int i = 0; env && env[i] && n < 15; i++) all[n++] = env[i];
    all[n] = NULL;
    return tu_run(attn_exe, tmpdir, NULL, all, args);
}

#define RUN(...) run_env(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define RUN_ENV(env, ...) run_env((const char *const[]){env, NULL}, (const char *const[]){__VA_ARGS__, NULL})

#define result_free tu_result_free

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void assert_fails(const result *r, int status, const char *n1, const char *n2) {
    ck_assert_msg(r->status == status, "exit status %d, expected %d; stderr: %s", r->status,
                  status, r->err);
    ck_assert_msg(count_lines(r->err) == 1, "expected one line on stderr, got: %s", r->err);
    ck_assert_msg(strstr(r->err, n1), "stderr lacks '%s': %s", n1, r->err);
    if (n2) ck_assert_msg(strstr(r->err, n2), "stderr lacks '%s': %s", n2, r->err);
    ck_assert_msg(r->out[0] == '\0', "a failed run printed: %.200s", r->out);
}

/* ---- parsing explain's layout ---- */

typedef struct pmat {
    char name[32];
    int rows, cols;
    double *v;    /* [rows, cols] */
    double *sum;  /* [rows]: the extra "sum" column when present, else NULL */
} pmat;

#define PMAX 128
static pmat pm[PMAX];
static int n_pm;

static void free_parsed(void) {
    for (int i = 0; i < n_pm; i++) {
        free(pm[i].v);
        free(pm[i].sum);
    }
    n_pm = 0;
}

/* Skips n UTF-8 characters (or to the end of the line). */
static const char *skip_chars(const char *p, int n) {
    for (int c = 0; c < n && *p && *p != '\n'; c++) {
        p++;
        while ((*p & 0xC0) == 0x80) p++;
    }
    return p;
}

/* Parses every "   NAME [r, c]" / "   NAME [c]" block of the --full layout. */
static void parse_explain(const char *out) {
    free_parsed();
    const char *p = out;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) break;
        char name[32];
        int r = 0, c = 0, used = 0;
        if (strncmp(p, "   ", 3) == 0 && p[3] != ' ' &&
            (sscanf(p + 3, "%31s [%d, %d]%n", name, &r, &c, &used) == 3 ||
             (sscanf(p + 3, "%31s [%d]%n", name, &c, &used) == 2 && (r = 1)))) {
            ck_assert_int_lt(n_pm, PMAX);
            pmat *m = &pm[n_pm++];
            snprintf(m->name, sizeof m->name, "%s", name);
            m->rows = r;
            m->cols = c;
            m->v = calloc((size_t)r * c + 1, sizeof(double));
            m->sum = NULL;
            p = eol + 1;
            int row = 0;
            while (*p && *p != '\n') {
                eol = strchr(p, '\n');
                ck_assert_ptr_nonnull(eol);
                const char *q = skip_chars(p, 14);
                bool header = true;
                for (const char *t = p; t < q; t++)
                    if (*t != ' ') header = false;
                if (!header && row < r) {
                    double vals[512];
                    int nv = 0;
                    while (q < eol && nv < 512) {
                        while (q < eol && (*q == ' ' || *q == '*')) q++;
                        if (q >= eol) break;
                        char *end;
                        vals[nv] = strtod(q, &end);
                        ck_assert_msg(end != q, "%s: not a number at '%.20s'", name, q);
                        nv++;
                        q = end;
                    }
                    ck_assert_msg(nv == c || nv == c + 1, "%s row %d: %d numbers for %d columns",
                                  name, row, nv, c);
                    for (int j = 0; j < c; j++) m->v[(size_t)row * c + j] = vals[j];
                    if (nv == c + 1) {
                        if (!m->sum) m->sum = calloc((size_t)r, sizeof(double));
                        m->sum[row] = vals[c];
                    }
                    row++;
                }
                p = eol + 1;
            }
            ck_assert_msg(row == r, "%s: %d rows parsed, %d expected", name, row, r);
            continue;
        }
        p = eol + 1;
    }
}

/* The k-th (0-based) parsed matrix called name. */
static const pmat *get(const char *name, int k) {
    for (int i = 0; i < n_pm; i++)
        if (strcmp(pm[i].name, name) == 0 && k-- == 0) return &pm[i];
    return NULL;
}

/* ---- the forward pass in this process, capturing everything ---- */

typedef struct {
    char name[96];
    int rows, cols;
    float *data;
} cval;
static cval cv[1024];
static int n_cv;

static bool all_wants(void *user, const attn_capture_key *key) {
    (void)user;
    (void)key;
    return true;
}

static attn_status all_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                    attn_error *err) {
    (void)user;
    (void)err;
    ck_assert_int_lt(n_cv, 1024);
    cval *c = &cv[n_cv++];
    attn_capture_name(key, c->name, sizeof c->name);
    c->rows = v->rows;
    c->cols = v->cols;
    c->data = malloc((size_t)v->rows * v->cols * sizeof(float) + 1);
    memcpy(c->data, v->data, (size_t)v->rows * v->cols * sizeof(float));
    return ATTN_OK;
}

static void free_captured(void) {
    for (int i = 0; i < n_cv; i++) free(cv[i].data);
    n_cv = 0;
}

static const cval *cap(const char *name) {
    for (int i = n_cv - 1; i >= 0; i--)
        if (strcmp(cv[i].name, name) == 0) return &cv[i];
    ck_abort_msg("value %s was not captured", name);
    return NULL;
}

static void forward(const int *ids, size_t n, const int *src, size_t sn) {
    free_captured();
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    attn_model *m;
    attn_error err;
    ck_assert_msg(attn_model_open(&m, path, &err) == ATTN_OK, "%s", err.message);
    attn_session *s;
    ck_assert_int_eq(attn_session_new(&s, m, &err), ATTN_OK);
    attn_capture c = {all_wants, all_emit, NULL};
    if (src) {
        attn_input si = {.ids = src, .n = sn};
        ck_assert_msg(attn_session_encode(s, &si, &c, &err) == ATTN_OK, "%s", err.message);
    }
    attn_input in = {.ids = ids, .n = n};
    ck_assert_msg(attn_session_forward(s, &in, &c, &err) == ATTN_OK, "%s", err.message);
    attn_session_free(s);
    attn_model_close(m);
}

/* |printed - captured| within the rounding of --digits 6. */
static void same_as_captured(const pmat *m, const char *capname) {
    ck_assert_msg(m != NULL, "missing matrix for %s", capname);
    const cval *c = cap(capname);
    ck_assert_msg(m->rows == c->rows && m->cols == c->cols, "%s: printed [%d, %d], captured "
                  "[%d, %d]", m->name, m->rows, m->cols, c->rows, c->cols);
    for (int i = 0; i < m->rows * m->cols; i++)
        ck_assert_msg(fabs(m->v[i] - c->data[i]) <= 5.01e-7 + 1e-6 * fabs(c->data[i]),
                      "%s (%s) [%d]: printed %.9g, forward pass %.9g", m->name, capname, i,
                      m->v[i], (double)c->data[i]);
}

static void close_to(double got, double want, double tol, const char *what, int i) {
    ck_assert_msg(fabs(got - want) <= tol * (1.0 + fabs(want)), "%s [%d]: %.9g vs %.9g", what, i,
                  got, want);
}

/* Checks one explained head (k-th occurrence of the names) against the
 * capture and against itself. prefix: "blocks.0.attn", ...; h: query head. */
static void check_head(const spec *s, int k, const char *prefix, int h, bool causal, bool rope,
                       const char *in_cap, const char *kv_in_cap) {
    const int hd = s->D / s->H, g = h / (s->H / s->KV);
    char n[128];
    const pmat *A = in_cap ? get("A", k) : NULL;
    const pmat *q = get("Q", k), *kk = get("K", k), *v = get("V", k), *S = get("S", k);
    const pmat *w = get("weights", k), *C = get("C", k), *out = get("out", k);
    const pmat *qk = get("QKᵀ", k), *wq = get("Wq", k), *wk = get("Wk", k), *wv = get("Wv", k);
    const pmat *wo = get("Wo", k), *cc = get("concat", k);
    ck_assert(q && kk && v && S && w && C && out && qk && wq && wk && wv && wo);
    if (A) same_as_captured(A, in_cap);
    snprintf(n, sizeof n, "%s.q.h%d", prefix, h);
    same_as_captured(q, n);
    snprintf(n, sizeof n, "%s.k.h%d", prefix, g);
    same_as_captured(kk, n);
    snprintf(n, sizeof n, "%s.v.h%d", prefix, g);
    same_as_captured(v, n);
    snprintf(n, sizeof n, "%s.scores.h%d", prefix, h);
    same_as_captured(S, n);
    snprintf(n, sizeof n, "%s.weights.h%d", prefix, h);
    same_as_captured(w, n);
    snprintf(n, sizeof n, "%s.context.h%d", prefix, h);
    same_as_captured(C, n);
    snprintf(n, sizeof n, "%s.out", prefix);
    same_as_captured(out, n);
    if (s->H > 1) {
        ck_assert_ptr_nonnull(cc);
        snprintf(n, sizeof n, "%s.concat", prefix);
        same_as_captured(cc, n);
    }

    /* the weights shown are the generated ones */
    const char *parts[] = {"q", "k", "v"};
    const pmat *wm[] = {wq, wk, wv};
    for (int p = 0; p < 3; p++) {
        snprintf(n, sizeof n, "%s.%s.weight", prefix, parts[p]);
        const attn_tensor_spec *t = find(n);
        ck_assert_ptr_nonnull(t);
        int r0 = (p == 0 ? h : g) * hd;
        ck_assert_int_eq(wm[p]->rows, s->D);
        ck_assert_int_eq(wm[p]->cols, hd);
        for (int i = 0; i < s->D; i++)
            for (int j = 0; j < hd; j++)
                close_to(wm[p]->v[i * hd + j], t->data[(size_t)(r0 + j) * s->D + i], 1e-6, n, i);
    }
    snprintf(n, sizeof n, "%s.o.weight", prefix);
    const attn_tensor_spec *to = find(n);
    for (int i = 0; i < s->H * hd; i++)
        for (int j = 0; j < s->D; j++)
            close_to(wo->v[i * s->D + j], to->data[(size_t)j * s->H * hd + i], 1e-6, n, i);

    /* the steps, recomputed in double from the printed numbers */
    const int T = q->rows, Tk = kk->rows;
    if (!rope) {
        const cval *x = cap(in_cap);
        const cval *xkv = cap(kv_in_cap);
        const pmat *proj[] = {q, kk, v};
        const cval *src[] = {x, xkv, xkv};
        for (int p = 0; p < 3; p++) {
            snprintf(n, sizeof n, "%s.%s.bias", prefix, parts[p]);
            const attn_tensor_spec *b = find(n);
            int r0 = (p == 0 ? h : g) * hd;
            for (int i = 0; i < proj[p]->rows; i++)
                for (int j = 0; j < hd; j++) {
                    double acc = b ? b->data[r0 + j] : 0;
                    for (int d = 0; d < s->D; d++)
                        acc += (double)src[p]->data[(size_t)i * s->D + d] *
                               wm[p]->v[(size_t)d * hd + j];
                    close_to(proj[p]->v[i * hd + j], acc, 2e-5, parts[p], i);
                }
        }
    }
    for (int i = 0; i < T; i++) {
        double mx = -INFINITY, z = 0;
        for (int j = 0; j < Tk; j++) {
            double dot = 0;
            for (int c = 0; c < hd; c++) dot += q->v[i * hd + c] * kk->v[j * hd + c];
            close_to(qk->v[i * Tk + j], dot, 2e-5, "QKᵀ", i);
            close_to(S->v[i * Tk + j], qk->v[i * Tk + j] / sqrt((double)hd), 2e-6, "S", i);
            if (!(causal && j > i)) mx = fmax(mx, S->v[i * Tk + j]);
        }
        for (int j = 0; j < Tk; j++)
            if (!(causal && j > i)) z += exp(S->v[i * Tk + j] - mx);
        double rowsum = 0;
        for (int j = 0; j < Tk; j++) {
            double want = causal && j > i ? 0.0 : exp(S->v[i * Tk + j] - mx) / z;
            close_to(w->v[i * Tk + j], want, 2e-5, "weights", i);
            rowsum += w->v[i * Tk + j];
        }
        close_to(rowsum, 1.0, 1e-5, "row sum", i);
        ck_assert_ptr_nonnull(w->sum);
        close_to(w->sum[i], 1.0, 1e-6, "printed row sum", i);
        for (int c = 0; c < hd; c++) {
            double acc = 0;
            for (int j = 0; j < Tk; j++) acc += w->v[i * Tk + j] * v->v[j * hd + c];
            close_to(C->v[i * hd + c], acc, 2e-5, "C", i);
            if (cc) close_to(cc->v[i * s->H * hd + h * hd + c], C->v[i * hd + c], 1e-9, "concat", i);
        }
        snprintf(n, sizeof n, "%s.o.bias", prefix);
        const attn_tensor_spec *bo = find(n);
        const pmat *cat = cc ? cc : C;
        for (int d = 0; d < s->D; d++) {
            double acc = bo ? bo->data[d] : 0;
            for (int c = 0; c < s->H * hd; c++) acc += cat->v[i * s->H * hd + c] * wo->v[c * s->D + d];
            close_to(out->v[i * s->D + d], acc, 2e-5, "out", i);
        }
    }
    if (causal) {
        const pmat *sm = get("S_masked", k);
        ck_assert_ptr_nonnull(sm);
        for (int i = 0; i < T; i++)
            for (int j = 0; j < Tk; j++) {
                if (j > i)
                    ck_assert_msg(isinf(sm->v[i * Tk + j]) && sm->v[i * Tk + j] < 0,
                                  "S_masked [%d, %d] is %g, not -inf", i, j, sm->v[i * Tk + j]);
                else
                    ck_assert(sm->v[i * Tk + j] == S->v[i * Tk + j]);
            }
    } else {
        ck_assert_ptr_null(get("S_masked", k));
    }
}

/* X = E + P (learned or sinusoidal) = the captured embedding. */
static void check_embeddings(const spec *s, const int *ids, int T, const char *embed_cap) {
    const pmat *X = get("X", 0);
    same_as_captured(X, embed_cap);
    bool has_pos = strcmp(s->pos, "learned") == 0 || strcmp(s->pos, "sinusoidal") == 0;
    const pmat *E = get("E", 0), *P = get("P", 0);
    if (!has_pos) {
        ck_assert_ptr_null(E);
        ck_assert_ptr_null(P);
        return;
    }
    ck_assert(E && P);
    const attn_tensor_spec *te = find("tok_embed"), *tp = find("pos_embed");
    const attn_tensor_spec *nw = find("embed_norm.weight"), *nb = find("embed_norm.bias");
    ck_assert(s->enorm == (nw != NULL));
    for (int t = 0; t < T; t++) {
        double sum[64], mean = 0, var = 0;
        for (int d = 0; d < s->D; d++) {
            close_to(E->v[t * s->D + d], te->data[ids[t] * s->D + d] * s->scale, 1e-6, "E", t);
            double pw = tp ? tp->data[t * s->D + d]
                           : (d % 2 ? cos(t / pow(10000.0, (double)(d - 1) / s->D))
                                    : sin(t / pow(10000.0, (double)d / s->D)));
            close_to(P->v[t * s->D + d], pw, 1e-6, "P", t);
            sum[d] = E->v[t * s->D + d] + P->v[t * s->D + d];
            mean += sum[d] / s->D;
        }
        for (int d = 0; d < s->D; d++) var += (sum[d] - mean) * (sum[d] - mean) / s->D;
        for (int d = 0; d < s->D; d++) {
            double want = nw ? (sum[d] - mean) / sqrt(var + 1e-5) * nw->data[d] + nb->data[d]
                             : sum[d];
            close_to(X->v[t * s->D + d], want, nw ? 1e-4 : 2e-6, "X", t);
        }
    }
}

static void setup(void) {
    attn_exe = getenv("ATTN_EXE");
    ck_assert_msg(attn_exe != NULL, "ATTN_EXE is not set");
    tu_tmpdir(tmpdir, sizeof tmpdir, "attn-test-explain-");
}

static void teardown(void) {
    free_parsed();
    free_captured();
    free_tensors();
    ck_assert_int_eq(tu_rm_tree(tmpdir), 0);
}

/* ---- explain tests ---- */

/* the cat sits on the mat */
static const int sent[] = {1, 2, 3, 4, 1, 5};

START_TEST(decoder_pre_gqa_layer1) {
    spec s = {"decoder", 8, 4, 2, 2, 0, "learned", "pre", true, "relu", 1.0, false};
    make_model(&s);
    result r = RUN("explain", "--config", "config.json", "--text", "The cat sits on the mat",
                   "--layer", "1", "--head", "3", "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    forward(sent, 6, NULL, 0);
    same_as_captured(get("X", 0), "blocks.0.resid");
    check_head(&s, 0, "blocks.1.attn", 3, true, false, "blocks.1.attn.in", "blocks.1.attn.in");
    ck_assert_ptr_nonnull(strstr(r.out, "query head 3 reads key/value head 1"));
    /* 4 heads on 2 key/value heads: heads 0-1 read kv head 0, heads 2-3 kv head 1 */
    ck_assert_ptr_nonnull(strstr(r.out, "(query heads 2 and 3 share Wk/Wv, and so K and V, "
                                        "of key/value head 1)"));
    ck_assert_ptr_nonnull(strstr(r.out, "   heads 0 and 1 share Wk/Wv of key/value head 0\n"
                                        "   heads 2 and 3 share Wk/Wv of key/value head 1\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "each with its own Wq, but Wk and Wv\n"
                                        "   belong to the 2 key/value heads (n_kv_heads):\n"));
    ck_assert_ptr_null(strstr(r.out, "own Wq, Wk, Wv"));
    ck_assert_ptr_nonnull(strstr(r.out, "Causal mask"));
    result_free(&r);
}
END_TEST

/* explain on a new model of spec s, query head `head`, "the cat". */
static result explain_model_head(const spec *s, const char *head) {
    make_model(s);
    result r = RUN("explain", "--config", "config.json", "--text", "the cat", "--head", head);
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    return r;
}

/* Which query heads share Wk and Wv: every head its own (n_kv_heads =
 * n_heads), all one (n_kv_heads 1), groups of 3, and 9 groups of 2. */
START_TEST(explain_kv_sharing) {
    spec mha = {"decoder", 8, 4, 4, 1, 0, "learned", "pre", false, "none", 1.0, false};
    result r = explain_model_head(&mha, "2");
    ck_assert_ptr_nonnull(strstr(r.out, "all 4 heads ran the steps above, "
                                        "each with its own Wq, Wk, Wv"));
    ck_assert_ptr_null(strstr(r.out, "share"));
    ck_assert_ptr_null(strstr(r.out, "grouped heads"));
    result_free(&r);
    spec mqa = {"decoder", 8, 4, 1, 1, 0, "learned", "pre", false, "none", 1.0, false};
    r = explain_model_head(&mqa, "2");
    ck_assert_ptr_nonnull(strstr(r.out, "query head 2 reads key/value head 0"));
    ck_assert_ptr_nonnull(strstr(r.out, "(query heads 0..3 share Wk/Wv, and so K and V, "
                                        "of key/value head 0)"));
    ck_assert_ptr_nonnull(strstr(r.out, "belong to the 1 key/value head (n_kv_heads):\n"
                                        "   heads 0..3 share Wk/Wv of key/value head 0\n"));
    result_free(&r);
    spec g3 = {"decoder", 12, 6, 2, 1, 0, "learned", "pre", false, "none", 1.0, false};
    r = explain_model_head(&g3, "4");
    ck_assert_ptr_nonnull(strstr(r.out, "query head 4 reads key/value head 1"));
    ck_assert_ptr_nonnull(strstr(r.out, "(query heads 3, 4 and 5 share Wk/Wv"));
    ck_assert_ptr_nonnull(strstr(r.out, "   heads 0, 1 and 2 share Wk/Wv of key/value head 0\n"
                                        "   heads 3, 4 and 5 share Wk/Wv of key/value head 1\n"));
    result_free(&r);
    spec many = {"decoder", 18, 18, 9, 1, 0, "learned", "pre", false, "none", 1.0, false};
    r = explain_model_head(&many, "17"); /* past 8 key/value heads: the rule, one line */
    ck_assert_ptr_nonnull(strstr(r.out, "(query heads 16 and 17 share Wk/Wv"));
    ck_assert_ptr_nonnull(strstr(r.out, "belong to the 9 key/value heads (n_kv_heads):\n"
                                        "   query heads 2g..2g+1 share Wk/Wv of key/value head g "
                                        "(g = 0..8)\n"));
    result_free(&r);
}
END_TEST

START_TEST(decoder_layer0_embeddings_and_vectors) {
    spec s = {"decoder", 6, 2, 2, 1, 0, "learned", "pre", false, "none", 2.0, false};
    make_model(&s);
    result r = RUN("explain", "--config", "config.json", "--ids", "1,2,3,4,1,5", "--head", "1",
                   "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    forward(sent, 6, NULL, 0);
    check_embeddings(&s, sent, 6, "embed");
    check_head(&s, 0, "blocks.0.attn", 1, true, false, "blocks.0.attn.in", "blocks.0.attn.in");

    /* the same vectors through --embeddings: every number from X on is the same */
    char csv[4096];
    size_t len = (size_t)snprintf(csv, sizeof csv, "# E * 2 + P\n");
    const attn_tensor_spec *te = find("tok_embed"), *tp = find("pos_embed");
    for (int t = 0; t < 6; t++)
        for (int d = 0; d < s.D; d++)
            len += (size_t)snprintf(csv + len, sizeof csv - len, "%.9g%c",
                                    (double)(float)(te->data[sent[t] * s.D + d] * 2.0 +
                                                    tp->data[t * s.D + d]),
                                    d + 1 < s.D ? ',' : '\n');
    write_text("x.csv", csv);
    result e = RUN("explain", "--config", "config.json", "--embeddings", "x.csv", "--head", "1",
                   "--full", "--digits", "6");
    ck_assert_msg(e.status == 0, "stderr: %s", e.err);
    ck_assert_ptr_nonnull(strstr(e.out, "6 vectors from x.csv"));
    const char *a = strstr(r.out, "   X [6, 6]"), *b = strstr(e.out, "   X [6, 6]");
    ck_assert(a && b);
    /* from X on the layouts differ only in the row labels: compare the numbers */
    pmat saved[PMAX];
    int n_saved = n_pm;
    memcpy(saved, pm, sizeof pm);
    n_pm = 0; /* keep r's matrices */
    parse_explain(e.out);
    const char *names[] = {"X", "Q", "K", "V", "QKᵀ", "S", "weights", "C", "concat", "out"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const pmat *x = get(names[i], 0), *y = NULL;
        for (int j = 0; j < n_saved; j++)
            if (strcmp(saved[j].name, names[i]) == 0) {
                y = &saved[j];
                break;
            }
        ck_assert_msg(x && y, "%s missing", names[i]);
        ck_assert_int_eq(x->rows * x->cols, y->rows * y->cols);
        for (int j = 0; j < x->rows * x->cols; j++)
            ck_assert_msg(x->v[j] == y->v[j], "%s [%d]: %g with --embeddings, %g with --ids",
                          names[i], j, x->v[j], y->v[j]);
    }
    for (int j = 0; j < n_saved; j++) {
        free(saved[j].v);
        free(saved[j].sum);
    }
    result_free(&e);
    result_free(&r);
}
END_TEST

START_TEST(encoder_post_sinusoidal) {
    spec s = {"encoder", 8, 2, 2, 1, 0, "sinusoidal", "post", false, "relu", 1.0, false};
    make_model(&s);
    result r = RUN("explain", "--config", "config.json", "--text", "the cat sits on the mat",
                   "--head", "1", "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    forward(sent, 6, NULL, 0);
    check_embeddings(&s, sent, 6, "embed");
    ck_assert_ptr_null(get("A", 0)); /* post-norm: attention reads X */
    check_head(&s, 0, "blocks.0.attn", 1, false, false, "embed", "embed");
    ck_assert_ptr_null(strstr(r.out, "Causal mask"));
    result_free(&r);
}
END_TEST

START_TEST(encoder_embed_norm) {
    spec s = {"encoder", 8, 2, 2, 1, 0, "learned", "pre", true, "none", 1.0, true};
    make_model(&s);
    result r = RUN("explain", "--config", "config.json", "--text", "the cat sits on the mat",
                   "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    forward(sent, 6, NULL, 0);
    check_embeddings(&s, sent, 6, "embed");
    ck_assert_ptr_nonnull(strstr(r.out, "= layernorm(E + P)"));
    check_head(&s, 0, "blocks.0.attn", 0, false, false, "blocks.0.attn.in", "blocks.0.attn.in");
    result_free(&r);
    write_text("v.csv", "1,2,3,4,5,6,7,8\n");
    r = RUN("explain", "--config", "config.json", "--embeddings", "v.csv");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "no embed_norm"));
    result_free(&r);
}
END_TEST

START_TEST(encoder_decoder_self_and_cross) {
    spec s = {"encoder-decoder", 8, 2, 1, 2, 2, "rope", "pre", true, "relu", 1.0, false};
    make_model(&s);
    /* source "the sun rises in the east", target "the cat sits" */
    const int src[] = {1, 7, 8, 9, 1, 10}, tgt[] = {1, 2, 3};
    result r = RUN("explain", "--config", "config.json", "--source", "the sun rises in the east",
                   "--text", "the cat sits", "--layer", "1", "--head", "1", "--full", "--digits",
                   "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    forward(tgt, 3, src, 6);
    /* self: rope rotates q and k, so the projection check is on Q0 / K0 */
    check_head(&s, 0, "blocks.1.attn", 1, true, true, "blocks.1.attn.in", "blocks.1.attn.in");
    const pmat *q0 = get("Q0", 0), *q = get("Q", 0), *k0 = get("K0", 0), *kk = get("K", 0);
    ck_assert(q0 && q && k0 && kk);
    /* RoPE keeps each pair's length */
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 4; i += 2) {
            close_to(hypot(q->v[t * 4 + i], q->v[t * 4 + i + 1]),
                     hypot(q0->v[t * 4 + i], q0->v[t * 4 + i + 1]), 1e-5, "rope |q|", t);
            close_to(hypot(kk->v[t * 4 + i], kk->v[t * 4 + i + 1]),
                     hypot(k0->v[t * 4 + i], k0->v[t * 4 + i + 1]), 1e-5, "rope |k|", t);
        }
    /* position 0 is not rotated */
    for (int i = 0; i < 4; i++) close_to(q->v[i], q0->v[i], 1e-6, "rope q at 0", i);
    /* cross: queries from the decoder, keys and values from the encoder output */
    same_as_captured(get("M", 0), "encoder.hidden");
    check_head(&s, 1, "blocks.1.cross", 1, false, false, "blocks.1.cross.in", "encoder.hidden");
    ck_assert_int_eq(get("weights", 1)->rows, 3);
    ck_assert_int_eq(get("weights", 1)->cols, 6);
    result_free(&r);

    /* --kind cross alone; --stack encoder explains the encoder's self-attention */
    r = RUN("explain", "--config", "config.json", "--source", "the sun rises in the east",
            "--text", "the cat sits", "--kind", "cross", "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    ck_assert_ptr_null(get("weights", 1));
    check_head(&s, 0, "blocks.0.cross", 0, false, false, "blocks.0.cross.in", "encoder.hidden");
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--source", "the sun rises in the east",
            "--stack", "encoder", "--layer", "1", "--full", "--digits", "6");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    parse_explain(r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "== encoder layer 1, head 0: self-attention =="));
    same_as_captured(get("X", 0), "encoder.blocks.0.resid");
    check_head(&s, 0, "encoder.blocks.1.attn", 0, false, true, "encoder.blocks.1.attn.in",
               "encoder.blocks.1.attn.in");
    result_free(&r);
}
END_TEST

/* Display width of a line in characters. */
static int line_chars(const char *b, const char *e) {
    int n = 0;
    for (const char *p = b; p < e; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

START_TEST(abbreviation_to_width) {
    spec s = {"decoder", 48, 4, 4, 1, 0, "learned", "pre", true, "none", 1.0, false};
    make_model(&s);
    for (int k = 0; k < 3; k++) {
        const char *w = k == 0 ? "80" : k == 1 ? "120" : "60";
        result r = RUN_ENV(k == 2 ? "COLUMNS=60" : "COLUMNS=999", "explain", "--config",
                           "config.json", "--text", "the cat sits on the mat",
                           k == 2 ? "--digits" : "--width", k == 2 ? "3" : w);
        ck_assert_msg(r.status == 0, "stderr: %s", r.err);
        int width = atoi(w), longest = 0;
        for (const char *p = r.out; *p;) {
            const char *e = strchr(p, '\n');
            int c = line_chars(p, e);
            /* the lines of matrices and of the token table fit the width */
            bool matrix = strncmp(p, "    ", 4) == 0 ||
                          (strncmp(p, "  ", 2) == 0 && p[2] != ' ' && p[3] != ' ');
            if (matrix) {
                if (c > longest) longest = c;
                ck_assert_msg(c <= width, "line of %d > %d: %.*s", c, width, (int)(e - p), p);
            }
            p = e + 1;
        }
        ck_assert_ptr_nonnull(strstr(r.out, "…"));
        ck_assert_ptr_nonnull(strstr(r.out, "d47"));  /* the last column is kept */
        ck_assert_ptr_nonnull(strstr(r.out, "⋮"));    /* weight rows cut */
        if (width >= 80) ck_assert_ptr_nonnull(strstr(r.out, "h3.0")); /* every head in concat */
        ck_assert_int_ge(longest, width - 10);
        result_free(&r);
    }
    result r = RUN("explain", "--config", "config.json", "--text", "the cat", "--full");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_null(strstr(r.out, "…"));
    ck_assert_ptr_null(strstr(r.out, "⋮"));
    result_free(&r);
}
END_TEST

START_TEST(usage_errors) {
    spec s = {"decoder", 8, 4, 2, 2, 0, "learned", "pre", false, "none", 1.0, false};
    make_model(&s);
    result r = RUN("explain", "--help");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Usage: attn explain"));
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--layer", "2");
    assert_fails(&r, 2, "--layer", "from 0 to 1");
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--head", "-1");
    assert_fails(&r, 2, "--head", "from 0 to 3");
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--head", "x");
    assert_fails(&r, 2, "--head", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--kind", "cross");
    assert_fails(&r, 2, "--kind", "encoder-decoder");
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--source", "the");
    assert_fails(&r, 2, "--source", "not an encoder-decoder");
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--stack", "encoder");
    assert_fails(&r, 2, "--stack", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json");
    assert_fails(&r, 2, "--text", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "a", "--ids", "1");
    assert_fails(&r, 2, "exclude", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "a", "--digits", "10");
    assert_fails(&r, 2, "--digits", NULL);
    result_free(&r);
    /* --width: 0 (no limit) or 20..100000 (run shares the rule, tests/view) */
    const char *bad_widths[] = {"19", "1", "100001", "-1", "x", ""};
    for (int i = 0; i < 6; i++) {
        r = RUN("explain", "--config", "config.json", "--text", "a", "--width", bad_widths[i]);
        assert_fails(&r, 2, "--width", "0 (no limit) or a width from 20 to 100000");
        result_free(&r);
    }
    r = RUN("explain", "--config", "config.json", "--text", "a", "--bogus");
    assert_fails(&r, 2, "--bogus", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--ids", "1,99");
    assert_fails(&r, 2, "--ids", "99");
    result_free(&r);
    write_text("bad.csv", "1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7\n");
    r = RUN("explain", "--config", "config.json", "--embeddings", "bad.csv");
    assert_fails(&r, 1, "bad.csv line 2", "ragged");
    result_free(&r);
    write_text("wide.csv", "1,2,3\n");
    r = RUN("explain", "--config", "config.json", "--embeddings", "wide.csv");
    assert_fails(&r, 2, "wide.csv line 1", "d_model is 8");
    result_free(&r);
    r = RUN("explain", "--config", "missing.json", "--text", "a");
    assert_fails(&r, 1, "missing.json", NULL);
    result_free(&r);
    /* an encoder-decoder needs its source */
    spec e = {"encoder-decoder", 8, 2, 2, 1, 1, "sinusoidal", "post", false, "none", 1.0, false};
    make_model(&e);
    r = RUN("explain", "--config", "config.json", "--text", "the cat");
    assert_fails(&r, 2, "--source", NULL);
    result_free(&r);
    r = RUN("explain", "--config", "config.json", "--text", "the cat", "--source", "the",
            "--stack", "encoder", "--kind", "cross");
    assert_fails(&r, 2, "--kind", NULL);
    result_free(&r);
}
END_TEST

/* ---- the readable view of attn run ---- */

START_TEST(view_color_flag) {
    spec s = {"decoder", 8, 2, 2, 1, 0, "learned", "pre", false, "none", 1.0, false};
    make_model(&s);
    result r = RUN("run", "--config", "config.json", "--text", "the cat sits", "--color=always");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\x1b[48;5;"));
    ck_assert_ptr_nonnull(strstr(r.out, "shading: weight 0"));
    result_free(&r);
    r = RUN_ENV("NO_COLOR=1", "run", "--config", "config.json", "--text", "the cat sits",
                "--color", "always");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\x1b[")); /* an explicit request wins over NO_COLOR */
    result_free(&r);
    const char *modes[] = {"--color=never", "--color=auto"};
    for (int i = 0; i < 2; i++) {
        r = RUN("run", "--config", "config.json", "--text", "the cat sits", modes[i]);
        ck_assert_int_eq(r.status, 0);
        ck_assert_ptr_null(strstr(r.out, "\x1b[")); /* not a terminal */
        ck_assert_ptr_null(strstr(r.out, "shading"));
        result_free(&r);
    }
    r = RUN("run", "--config", "config.json", "--text", "the cat", "--color=sometimes");
    assert_fails(&r, 2, "--color", "auto, always or never");
    result_free(&r);
}
END_TEST

/* Runs attn with standard output on a pseudo-terminal; returns what it wrote. */
static char *run_on_pty(const char *no_color, const char *const *args) {
    int master, slave;
    ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(master);
        if (chdir(tmpdir) != 0) _exit(127);
        unsetenv("COLUMNS");
        setenv("TERM", "xterm", 1); /* TERM=dumb would turn colour off (view_dumb_terminal) */
        if (no_color)
            setenv("NO_COLOR", no_color, 1);
        else
            unsetenv("NO_COLOR");
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(slave, 1);
        dup2(devnull, 2);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)attn_exe;
        for (; args[n - 1] && n < 31; n++) argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(attn_exe, argv);
        _exit(127);
    }
    close(slave);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t got = read(master, buf + len, cap - len - 1);
        if (got <= 0) break; /* EIO once the child has closed the terminal */
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(master);
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "attn on a terminal failed: %s", buf);
    return buf;
}

START_TEST(view_auto_color_on_terminal) {
    spec s = {"decoder", 8, 2, 2, 1, 0, "learned", "pre", false, "none", 1.0, false};
    make_model(&s);
    const char *args[] = {"run", "--config", "config.json", "--text", "the cat sits", NULL};
    char *out = run_on_pty(NULL, args);
    ck_assert_msg(strstr(out, "\x1b[48;5;") != NULL, "no colour on a terminal: %s", out);
    free(out);
    out = run_on_pty("1", args);
    ck_assert_msg(strstr(out, "\x1b[") == NULL, "colour despite NO_COLOR=1");
    ck_assert_ptr_nonnull(strstr(out, "head 1"));
    free(out);
    out = run_on_pty("", args); /* empty NO_COLOR does not count */
    ck_assert_ptr_nonnull(strstr(out, "\x1b[48;5;"));
    free(out);
    const char *never[] = {"run", "--config", "config.json", "--text", "the cat sits",
                           "--color=never", NULL};
    out = run_on_pty(NULL, never);
    ck_assert_ptr_null(strstr(out, "\x1b["));
    free(out);
}
END_TEST

/* With --full every weight of a long input shows up in the bands, and each
 * row has one '*'. */
START_TEST(view_bands) {
    spec s = {"encoder", 8, 1, 1, 1, 0, "learned", "pre", false, "none", 1.0, false};
    make_model(&s);
    result r = RUN_ENV("COLUMNS=50", "run", "--config", "config.json", "--full", "--text",
                       "the cat sits on the mat . the sun rises in the east");
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "keys 0..4 of 13"));
    ck_assert_ptr_nonnull(strstr(r.out, "keys 10..12 of 13"));
    /* one '*' per query (after a weight), 13 weights or dots per query */
    int stars = 0, cells = 0;
    for (const char *p = r.out + 1; *p; p++) {
        if (*p == '*' && p[-1] >= '0' && p[-1] <= '9') stars++;
        if (*p == '.' && p[-1] >= '0' && p[-1] <= '1' && p[1] >= '0' && p[1] <= '9' &&
            p[3] >= '0' && p[3] <= '9' && (p[4] == ' ' || p[4] == '*' || p[4] == '\n'))
            cells++;
    }
    ck_assert_int_eq(stars, 13);
    ck_assert_int_ge(cells, 13 * 13); /* + the context vectors' numbers */
    for (const char *p = r.out; *p;) {
        const char *e = strchr(p, '\n');
        ck_assert_msg(line_chars(p, e) <= 50, "line wider than 50: %.*s", (int)(e - p), p);
        p = e + 1;
    }
    result_free(&r);
}
END_TEST

START_TEST(run_with_embeddings) {
    spec s = {"decoder", 6, 2, 2, 1, 0, "learned", "pre", false, "none", 1.0, false};
    make_model(&s);
    const attn_tensor_spec *te = find("tok_embed"), *tp = find("pos_embed");
    char csv[2048];
    size_t len = 0;
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < s.D; d++)
            len += (size_t)snprintf(csv + len, sizeof csv - len, "%.9g%c",
                                    (double)(te->data[sent[t] * s.D + d] + tp->data[t * s.D + d]),
                                    d + 1 < s.D ? ',' : '\n');
    write_text("x.csv", csv);
    result a = RUN("run", "--config", "config.json", "--ids", "1,2,3", "--maps", "-");
    result b = RUN("run", "--config", "config.json", "--embeddings", "x.csv", "--maps", "-");
    ck_assert_msg(a.status == 0 && b.status == 0, "%s %s", a.err, b.err);
    ck_assert_int_eq(count_lines(a.out), count_lines(b.out));
    /* same weights, labels are positions */
    const char *pa = strchr(a.out, '\n') + 1, *pb = strchr(b.out, '\n') + 1;
    while (*pa && *pb) {
        const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
        const char *wa = ea, *wb = eb;
        while (wa[-1] != ',') wa--;
        while (wb[-1] != ',') wb--;
        ck_assert_msg(fabs(strtod(wa, NULL) - strtod(wb, NULL)) < 1e-6, "%.*s vs %.*s",
                      (int)(ea - pa), pa, (int)(eb - pb), pb);
        pa = ea + 1;
        pb = eb + 1;
    }
    ck_assert_ptr_nonnull(strstr(b.out, "0,decoder,0,self,0,2,2,1,1,"));
    result_free(&a);
    result_free(&b);
    b = RUN("run", "--config", "config.json", "--embeddings", "x.csv");
    ck_assert_int_eq(b.status, 0);
    ck_assert_ptr_nonnull(strstr(b.out, "input: 3 input vectors"));
    result_free(&b);
    b = RUN("run", "--config", "config.json", "--embeddings", "x.csv", "--text", "the");
    assert_fails(&b, 2, "--embeddings", "--text");
    result_free(&b);
    b = RUN("run", "--config", "config.json", "--source-embeddings", "x.csv", "--text", "the");
    assert_fails(&b, 2, "--source-embeddings", "not an encoder-decoder");
    result_free(&b);
    b = RUN("run", "--config", "config.json", "--embeddings", "nope.npy");
    assert_fails(&b, 1, "--embeddings", "nope.npy");
    result_free(&b);
}
END_TEST

static Suite *explain_suite(void) {
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("explain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, decoder_pre_gqa_layer1);
    tcase_add_test(tc, explain_kv_sharing);
    tcase_add_test(tc, decoder_layer0_embeddings_and_vectors);
    tcase_add_test(tc, encoder_post_sinusoidal);
    tcase_add_test(tc, encoder_embed_norm);
    tcase_add_test(tc, encoder_decoder_self_and_cross);
    tcase_add_test(tc, abbreviation_to_width);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, view_color_flag);
    tcase_add_test(tc, view_auto_color_on_terminal);
    tcase_add_test(tc, view_bands);
    tcase_add_test(tc, run_with_embeddings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(explain_suite()); }
