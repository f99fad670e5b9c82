/* Embeddings input (src/model/embeddings.c): CSV and .npy parsing from memory,
 * every refusal with its message, random round trips (CSV written with
 * %.9g and .npy written byte by byte here, both read back exactly), and
 * the forward pass fed vectors equal to what the ids would give. */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned rng = 2024;
static float frand(void) { /* uniform in [-4, 4) */
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xFFFF) / 8192.0f - 4.0f;
}

static int parse(const char *text, int D, int max_rows, float **out, size_t *rows,
                 attn_error *err) {
    return attn_embeddings_parse(out, rows, text, strlen(text), D, max_rows, "e.csv", err);
}

/* Asserts that parsing fails with `status` and a message containing every needle. */
static void refuse(const void *buf, size_t len, const char *name, int D, int max_rows, int status,
                   const char *n1, const char *n2) {
    float *out = (float *)1;
    size_t rows = 99;
    attn_error err = {0};
    int rc = attn_embeddings_parse(&out, &rows, buf, len, D, max_rows, name, &err);
    ck_assert_msg(rc == status, "status %d, expected %d (%s)", rc, status, err.message);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(rows, 0);
    ck_assert_msg(strstr(err.message, name), "message lacks the name: %s", err.message);
    ck_assert_msg(strstr(err.message, n1), "message lacks '%s': %s", n1, err.message);
    if (n2) ck_assert_msg(strstr(err.message, n2), "message lacks '%s': %s", n2, err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
}

static void refuse_csv(const char *text, int D, int max_rows, int status, const char *n1,
                       const char *n2) {
    refuse(text, strlen(text), "e.csv", D, max_rows, status, n1, n2);
}

START_TEST(csv_basic) {
    float *e;
    size_t n;
    attn_error err;
    const char *text = "# the sun\n"
                       "d0,d1,d2\n"
                       "\n"
                       " 1, -2.5 ,3e-1\r\n"
                       "\t# a comment\n"
                       "0,0.125,+4\n"
                       "-1E2,.5,7."; /* no final newline */
    ck_assert_int_eq(parse(text, 3, 0, &e, &n, &err), ATTN_OK);
    ck_assert_uint_eq(n, 3);
    const float want[] = {1, -2.5f, 0.3f, 0, 0.125f, 4, -100, 0.5f, 7};
    for (int i = 0; i < 9; i++) ck_assert_float_eq(e[i], want[i]);
    free(e);
    /* no header, exactly max_rows rows */
    ck_assert_int_eq(parse("1,2\n3,4\n", 2, 2, &e, &n, &err), ATTN_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_float_eq(e[3], 4);
    free(e);
    /* one column */
    ck_assert_int_eq(parse("5\n6\n", 1, 0, &e, &n, &err), ATTN_OK);
    ck_assert_uint_eq(n, 2);
    free(e);
}
END_TEST

START_TEST(csv_refusals) {
    refuse_csv("", 2, 0, ATTN_ERR_FORMAT, "no rows", NULL);
    refuse_csv("# only a comment\n\n", 2, 0, ATTN_ERR_FORMAT, "no rows", NULL);
    refuse_csv("a,b\n", 2, 0, ATTN_ERR_FORMAT, "no rows", NULL);
    refuse_csv("1,2\n3,4,5\n", 2, 0, ATTN_ERR_FORMAT, "line 2", "ragged");
    refuse_csv("1,2\n\n3\n", 2, 0, ATTN_ERR_FORMAT, "line 3", "ragged");
    refuse_csv("1,2,3\n", 2, 0, ATTN_ERR_USAGE, "line 1", "d_model is 2");
    refuse_csv("a,b,c\n1,2\n", 2, 0, ATTN_ERR_USAGE, "header of 3 names", "d_model is 2");
    refuse_csv("1,2\n3,x\n", 2, 0, ATTN_ERR_FORMAT, "line 2, column 2", "'x' is not a number");
    refuse_csv("1,2\n3,\n", 2, 0, ATTN_ERR_FORMAT, "line 2, column 2", "is empty");
    refuse_csv("1,nan\n", 2, 0, ATTN_ERR_FORMAT, "line 1, column 2", "not a finite number");
    refuse_csv("-inf,1\n", 2, 0, ATTN_ERR_FORMAT, "line 1, column 1", "not a finite number");
    refuse_csv("1,2\nInfinity,1\n", 2, 0, ATTN_ERR_FORMAT, "line 2, column 1", "not a finite");
    refuse_csv("1,1e39\n", 2, 0, ATTN_ERR_FORMAT, "column 2", "outside the float32 range");
    refuse_csv("1,0x10\n", 2, 0, ATTN_ERR_FORMAT, "column 2", "not a number");
    refuse_csv("1,2 3\n", 2, 0, ATTN_ERR_FORMAT, "column 2", "not a number");
    refuse_csv("1,2\n3,4\n5,6\n", 2, 2, ATTN_ERR_USAGE, "line 3", "max_seq_len");
    /* a NUL inside a number */
    const char nul[] = "1,2\n3,4\0" "5\n";
    refuse(nul, sizeof nul - 1, "e.csv", 2, 0, ATTN_ERR_FORMAT, "line 2, column 2", NULL);
    /* a field too long to be a number is cut in the message */
    char longf[300] = "1,";
    for (int i = 0; i < 200; i++) strcat(longf, "9");
    refuse_csv(longf, 2, 0, ATTN_ERR_FORMAT, "column 2", "...");
    /* a file named .npy must be one */
    refuse("1,2\n", 4, "x.npy", 2, 0, ATTN_ERR_FORMAT, "not a .npy file", NULL);
}
END_TEST

/* ---- .npy images built here, byte by byte ---- */

typedef struct { unsigned char *p; size_t n; } bytes;

/* major version 1 or 2; the header padded with spaces to a multiple of 64 (+ '\n'). */
static bytes npy(int major, const char *dict, const void *data, size_t data_len) {
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t hlen = dl + 1;
    while ((pre + hlen) % 64) hlen++;
    bytes b = {malloc(pre + hlen + data_len), pre + hlen + data_len};
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (unsigned char)major;
    b.p[7] = 0;
    if (major == 1) {
        b.p[8] = (unsigned char)(hlen & 0xFF);
        b.p[9] = (unsigned char)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++) b.p[8 + i] = (unsigned char)(hlen >> (8 * i));
    }
    memcpy(b.p + pre, dict, dl);
    memset(b.p + pre + dl, ' ', hlen - dl - 1);
    b.p[pre + hlen - 1] = '\n';
    if (data_len) memcpy(b.p + pre + hlen, data, data_len);
    return b;
}

/* little-endian bytes of floats / doubles */
static void le32(unsigned char *out, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(u >> (8 * i));
}
static void le64(unsigned char *out, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(u >> (8 * i));
}

START_TEST(npy_basic) {
    unsigned char d4[6 * 4], d8[6 * 8];
    const double vals[6] = {1, -2, 0.5, 3.25, -0.125, 100};
    for (int i = 0; i < 6; i++) {
        le32(d4 + 4 * i, (float)vals[i]);
        le64(d8 + 8 * i, vals[i]);
    }
    bytes a = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d4, sizeof d4);
    bytes b = npy(2, "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f8\"}", d8, sizeof d8);
    bytes *imgs[] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        float *e;
        size_t n;
        attn_error err;
        ck_assert_int_eq(attn_embeddings_parse(&e, &n, imgs[k]->p, imgs[k]->n, 3, 2, "e.npy", &err),
                         ATTN_OK);
        ck_assert_uint_eq(n, 2);
        for (int i = 0; i < 6; i++) ck_assert_float_eq(e[i], (float)vals[i]);
        free(e);
        free(imgs[k]->p);
    }
}
END_TEST

START_TEST(npy_refusals) {
    unsigned char d[8 * 8];
    for (int i = 0; i < 8; i++) le64(d + 8 * i, i);
    unsigned char f4[8 * 4];
    for (int i = 0; i < 8; i++) le32(f4 + 4 * i, (float)i);
    struct {
        int major;
        const char *dict;
        size_t data_len;
        bool f8;
        int status;
        const char *n1, *n2;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, false,
         ATTN_ERR_FORMAT, "Fortran order", NULL},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16, false,
         ATTN_ERR_FORMAT, "dtype '<i4'", "not supported"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, false,
         ATTN_ERR_FORMAT, "dtype '>f4'", NULL},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", 8, false,
         ATTN_ERR_FORMAT, "dtype '<f2'", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, false,
         ATTN_ERR_FORMAT, "1 dimension", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", 16, false,
         ATTN_ERR_FORMAT, "3 dimensions", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", 0, false,
         ATTN_ERR_FORMAT, "no rows", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", 32, false,
         ATTN_ERR_USAGE, "have 4 numbers", "d_model is 2"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 2), }", 64, true,
         ATTN_ERR_USAGE, "8 rows", "max_seq_len 4"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 12, false,
         ATTN_ERR_FORMAT, "data is 12 bytes", "needs 16"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 20, false,
         ATTN_ERR_FORMAT, "data is 20 bytes", NULL},
        {1, "{'descr': '<f4', 'shape': (2, 2), }", 16, false, ATTN_ERR_FORMAT,
         "malformed .npy header", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}", 16, false,
         ATTN_ERR_FORMAT, "unexpected or repeated key 'extra'", NULL},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", 16,
         false, ATTN_ERR_FORMAT, "repeated key 'descr'", NULL},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2)}", 16, false,
         ATTN_ERR_FORMAT, "not a simple dtype", NULL},
        {1, "['descr']", 16, false, ATTN_ERR_FORMAT, "malformed .npy header", NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 2)}",
         16, false, ATTN_ERR_FORMAT, "malformed", NULL},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 16, false,
         ATTN_ERR_FORMAT, "version 4.0", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = npy(cases[i].major == 4 ? 1 : cases[i].major, cases[i].dict,
                      cases[i].f8 ? (const void *)d : (const void *)f4, cases[i].data_len);
        if (cases[i].major == 4) b.p[6] = 4;
        refuse(b.p, b.n, "e.npy", 2, 4, cases[i].status, cases[i].n1, cases[i].n2);
        free(b.p);
    }
    {
        bytes b = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': "
                         "(4611686018427387904, 2)}",
                      d, 16);
        refuse(b.p, b.n, "e.npy", 2, 0, ATTN_ERR_FORMAT, "too large", NULL);
        free(b.p);
    }
    /* non-finite and out-of-range values, with their element */
    unsigned char bad[4 * 8];
    for (int i = 0; i < 4; i++) le64(bad + 8 * i, 1.0);
    le64(bad + 8 * 3, 1e300);
    bytes b = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", bad, 32);
    refuse(b.p, b.n, "e.npy", 2, 0, ATTN_ERR_FORMAT, "element [1, 1]", "float32 range");
    free(b.p);
    le64(bad + 8 * 3, 1.0);
    le64(bad + 8 * 2, NAN);
    b = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", bad, 32);
    refuse(b.p, b.n, "e.npy", 2, 0, ATTN_ERR_FORMAT, "element [1, 0]", "not a finite");
    free(b.p);
    unsigned char bad4[16];
    for (int i = 0; i < 4; i++) le32(bad4 + 4 * i, 1.0f);
    le32(bad4 + 4, INFINITY);
    b = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", bad4, 16);
    refuse(b.p, b.n, "e.npy", 2, 0, ATTN_ERR_FORMAT, "element [0, 1]", "not a finite");
    /* every truncation of a good image is refused, never read past */
    unsigned char good[16];
    for (int i = 0; i < 4; i++) le32(good + 4 * i, 1.0f);
    free(b.p);
    b = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", good, 16);
    for (size_t cut = 6; cut < b.n; cut++) {
        unsigned char *copy = malloc(cut);
        memcpy(copy, b.p, cut);
        float *e = NULL;
        size_t n;
        attn_error err;
        ck_assert_int_eq(attn_embeddings_parse(&e, &n, copy, cut, 2, 0, "t.npy", &err),
                         ATTN_ERR_FORMAT);
        ck_assert_ptr_null(e);
        free(copy);
    }
    free(b.p);
}
END_TEST

START_TEST(random_round_trips) {
    for (int trial = 0; trial < 50; trial++) {
        int D = 1 + (int)((unsigned)(frand() + 4.0f) * 3) % 17;
        int T = 1 + (int)((unsigned)((frand() + 4.0f) * 7)) % 40;
        float *m = malloc((size_t)T * D * sizeof(float));
        for (int i = 0; i < T * D; i++) {
            float x = frand();
            m[i] = i % 5 == 0 ? x * 1e-20f : i % 7 == 0 ? x * 1e20f : x;
        }
        /* CSV, %.9g round-trips float32 */
        size_t cap = (size_t)T * D * 20 + 64;
        char *csv = malloc(cap);
        size_t len = 0;
        if (trial % 2) len += (size_t)sprintf(csv, "# trial %d\n", trial);
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++)
                len += (size_t)sprintf(csv + len, "%.9g%s", (double)m[t * D + d],
                                       d + 1 < D ? "," : (trial % 3 ? "\n" : "\r\n"));
        float *e;
        size_t n;
        attn_error err;
        ck_assert_msg(attn_embeddings_parse(&e, &n, csv, len, D, T, "r.csv", &err) == ATTN_OK,
                      "%s", err.message);
        ck_assert_uint_eq(n, (size_t)T);
        ck_assert(memcmp(e, m, (size_t)T * D * sizeof(float)) == 0);
        free(e);
        /* one row too many for max_rows */
        ck_assert_int_eq(attn_embeddings_parse(&e, &n, csv, len, D, T - 1 > 0 ? T - 1 : -1,
                                               "r.csv", &err),
                         T - 1 > 0 ? ATTN_ERR_USAGE : ATTN_OK);
        if (T == 1) free(e);
        free(csv);
        /* .npy <f4 */
        unsigned char *d4 = malloc((size_t)T * D * 4);
        for (int i = 0; i < T * D; i++) le32(d4 + 4 * i, m[i]);
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
                 T, D);
        bytes b = npy(1 + trial % 2, dict, d4, (size_t)T * D * 4);
        ck_assert_msg(attn_embeddings_parse(&e, &n, b.p, b.n, D, 0, "r.npy", &err) == ATTN_OK,
                      "%s", err.message);
        ck_assert_uint_eq(n, (size_t)T);
        ck_assert(memcmp(e, m, (size_t)T * D * sizeof(float)) == 0);
        free(e);
        free(b.p);
        free(d4);
        free(m);
    }
}
END_TEST

/* ---- the forward pass fed vectors ---- */

typedef struct {
    float *w;
    int rows, cols, count;
} grab;

static bool g_wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS && key->head == 1;
}
static attn_status g_emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                  attn_error *err) {
    (void)key;
    (void)err;
    grab *g = user;
    g->rows = v->rows;
    g->cols = v->cols;
    g->w = malloc((size_t)v->rows * v->cols * sizeof(float));
    memcpy(g->w, v->data, (size_t)v->rows * v->cols * sizeof(float));
    g->count++;
    return ATTN_OK;
}

/* A 1-layer decoder, learned positions, embed_scale 2, mlp "none": feeding
 * tok_embed[id] * 2 + pos_embed[p] as vectors gives the maps of the ids. */
START_TEST(forward_with_vectors) {
    enum { V = 7, D = 6, H = 2, T = 5, MAXT = 8 };
    static float tok[V * D], pos[MAXT * D], q[D * D], k[D * D], v[D * D], o[D * D], nw[D], nb[D];
    float *all[] = {tok, pos, q, k, v, o};
    int sizes[] = {V * D, MAXT * D, D * D, D * D, D * D, D * D};
    for (int a = 0; a < 6; a++)
        for (int i = 0; i < sizes[a]; i++) all[a][i] = frand() / 4.0f;
    for (int i = 0; i < D; i++) nw[i] = 1.0f, nb[i] = 0.0f;
    attn_tensor_spec specs[] = {
        {"tok_embed", 2, {V, D}, tok},
        {"pos_embed", 2, {MAXT, D}, pos},
        {"blocks.0.attn_norm.weight", 1, {D}, nw},
        {"blocks.0.attn_norm.bias", 1, {D}, nb},
        {"blocks.0.attn.q.weight", 2, {D, D}, q},
        {"blocks.0.attn.k.weight", 2, {D, D}, k},
        {"blocks.0.attn.v.weight", 2, {D, D}, v},
        {"blocks.0.attn.o.weight", 2, {D, D}, o},
        {"norm.weight", 1, {D}, nw},
        {"norm.bias", 1, {D}, nb},
    };
    char dir[256];
    tu_tmpdir(dir, sizeof dir, "attn-test-emb-");
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    attn_error err;
    ck_assert_int_eq(attn_safetensors_write(path, specs, 10, &err), ATTN_OK);
    const char *json =
        "{\"format\":\"attn/1\",\"architecture\":\"decoder\",\"vocab_size\":7,\"d_model\":6,"
        "\"n_heads\":2,\"max_seq_len\":8,\"n_layers\":1,\"positional\":\"learned\","
        "\"embed_scale\":2,\"norm\":\"layernorm\",\"norm_position\":\"pre\",\"mlp\":\"none\","
        "\"bias\":false,\"lm_head\":\"none\",\"weights\":\"w.safetensors\"}";
    attn_config cfg;
    ck_assert_msg(attn_config_parse(&cfg, json, strlen(json), "c.json", dir, &err) == ATTN_OK,
                  "%s", err.message);
    attn_safetensors *st;
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_OK);
    attn_model *m;
    ck_assert_msg(attn_model_from_parts(&m, &cfg, st, NULL, &err) == ATTN_OK, "%s", err.message);

    const int ids[T] = {3, 0, 6, 3, 2};
    char csv[2048];
    size_t len = 0;
    for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++)
            len += (size_t)snprintf(csv + len, sizeof csv - len, "%.9g%c",
                                    (double)(tok[ids[t] * D + d] * 2.0f + pos[t * D + d]),
                                    d + 1 < D ? ',' : '\n');
    float *e;
    size_t n;
    ck_assert_int_eq(attn_embeddings_parse(&e, &n, csv, len, D, MAXT, "x.csv", &err), ATTN_OK);
    ck_assert_uint_eq(n, T);

    grab a = {0}, b = {0};
    attn_session *s;
    ck_assert_int_eq(attn_session_new(&s, m, &err), ATTN_OK);
    attn_input in_ids = {.ids = ids, .n = T};
    attn_capture ca = {g_wants, g_emit, &a}, cb = {g_wants, g_emit, &b};
    ck_assert_int_eq(attn_session_forward(s, &in_ids, &ca, &err), ATTN_OK);
    attn_session_reset(s);
    attn_input in_vec = {.embeddings = e, .n = n};
    ck_assert_int_eq(attn_session_forward(s, &in_vec, &cb, &err), ATTN_OK);
    ck_assert_int_eq(a.count, 1);
    ck_assert_int_eq(b.count, 1);
    double maxdiff = 0;
    for (int i = 0; i < T * T; i++) maxdiff = fmax(maxdiff, fabs(a.w[i] - b.w[i]));
    ck_assert_msg(maxdiff < 1e-6, "maps differ by %g", maxdiff);
    /* causal: position 0 sees only itself */
    ck_assert_float_eq(b.w[0], 1.0f);
    ck_assert_float_eq(b.w[1], 0.0f);
    free(a.w);
    free(b.w);
    free(e);
    attn_session_free(s);
    attn_model_close(m);

    /* an MLP tensor in an mlp "none" model is refused as unexplained */
    attn_tensor_spec extra[11];
    memcpy(extra, specs, sizeof specs);
    extra[10] = (attn_tensor_spec){"blocks.0.mlp.up.weight", 2, {4, D}, q};
    ck_assert_int_eq(attn_safetensors_write(path, extra, 11, &err), ATTN_OK);
    ck_assert_int_eq(attn_safetensors_open(&st, path, &err), ATTN_OK);
    ck_assert_int_ne(attn_model_from_parts(&m, &cfg, st, NULL, &err), ATTN_OK);
    ck_assert_msg(strstr(err.message, "blocks.0.mlp.up.weight"), "%s", err.message);

    ck_assert_int_eq(tu_rm_tree(dir), 0);
}
END_TEST

START_TEST(load_from_file) {
    char dir[256];
    tu_tmpdir(dir, sizeof dir, "attn-test-emb-");
    char path[512];
    snprintf(path, sizeof path, "%s/v.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("1,2\n3,4\n", f);
    fclose(f);
    float *e;
    size_t n;
    attn_error err;
    ck_assert_int_eq(attn_embeddings_load(&e, &n, path, 2, 0, &err), ATTN_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_float_eq(e[2], 3);
    free(e);
    ck_assert_int_eq(attn_embeddings_load(&e, &n, path, 3, 0, &err), ATTN_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    unlink(path);
    ck_assert_int_eq(attn_embeddings_load(&e, &n, path, 2, 0, &err), ATTN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    rmdir(dir);
}
END_TEST

/* An embeddings file over 2 GiB (docs/model-format.md, "Limits"): a sparse
 * one is refused by its size, never read. */
START_TEST(file_limit) {
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir, "attn-test-emb-");
    snprintf(path, sizeof path, "%s/e.csv", dir);
    tu_write_file(path, "1,2,3,4\n", 8);
    ck_assert_int_eq(truncate(path, ((off_t)1 << 31) + 1), 0);
    float *v = NULL;
    size_t rows = 0;
    attn_error err = {0};
    ck_assert_int_eq(attn_embeddings_load(&v, &rows, path, 4, 0, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(v);
    char want[700];
    snprintf(want, sizeof want,
             "%s: file is 2147483649 bytes, more than the 2 GiB limit of an embeddings file "
             "(2147483648 bytes)",
             path);
    ck_assert_str_eq(err.message, want);
    tu_rm_tree(dir);
}
END_TEST

static Suite *embeddings_suite(void) {
    Suite *s = suite_create("embeddings");
    TCase *tc = tcase_create("embeddings");
    tcase_add_test(tc, csv_basic);
    tcase_add_test(tc, csv_refusals);
    tcase_add_test(tc, npy_basic);
    tcase_add_test(tc, npy_refusals);
    tcase_add_test(tc, random_round_trips);
    tcase_add_test(tc, forward_with_vectors);
    tcase_add_test(tc, load_from_file);
    tcase_add_test(tc, file_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(embeddings_suite()); }
