/* Hugging Face tokenizer.json (type "hf"), the byte-level BPE of GPT-2 and
 * its kind: the file's parts are checked one by one against what attn
 * implements, and its vocabulary and merges go to the gpt2 back end (gpt2.c:
 * the same pre-tokenizer, byte alphabet, BPE and decoding; no second copy of
 * the merge code).
 *
 * Accepted (anything else is refused with a message naming the file and the
 * JSON path of the part, e.g. `tokenizer.json: normalizer: type "NFC" is not
 * supported (attn reads: null)`):
 *   model          type "BPE" (or no type), vocab: an object token -> id,
 *                  merges: strings "A B" or pairs ["A", "B"] (both exist),
 *                  dropout null, unk_token null, byte_fallback false,
 *                  continuing_subword_prefix and end_of_word_suffix null or "";
 *                  fuse_unk and ignore_merges are ignored (without an unk token
 *                  and with every byte in the vocabulary they change nothing
 *                  for GPT-2's files);
 *   normalizer     null;
 *   pre_tokenizer  ByteLevel with add_prefix_space false and use_regex true
 *                  (the default), i.e. GPT-2's pattern then the byte alphabet;
 *                  trim_offsets is about offsets, not ids;
 *   post_processor null or ByteLevel (offsets only);
 *   decoder        null or ByteLevel;
 *   added_tokens   each one must be the vocabulary's token of that id (GPT-2's
 *                  <|endoftext|> is); tokens written <|...|> are special as in
 *                  the gpt2 type (matched only with --special);
 *   truncation, padding: null.
 * Malformed JSON names the line and column; a merge that the gpt2 back end
 * refuses names "model.merges[i]".
 */
#include "tokenizer/tokenizer.h"

#ifndef ATTN_HAVE_PCRE2

int attn_tokenizer_hf_build(attn_tokenizer *tok, const char *buf, size_t len, const char *name,
                            attn_error *err) {
    (void)tok, (void)buf, (void)len;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: tokenizer type \"hf\" is not built in (attn was built without "
                          "PCRE2: install libpcre2-dev and rebuild)",
                          name);
}

#else

#include "base/json.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct hf_ctx {
    const char *name;
    attn_error *err;
} hf_ctx;

static int refuse(const hf_ctx *c, const char *path, const char *what) {
    return attn_error_set(c->err, ATTN_ERR_FORMAT, "%s: %s: %s", c->name, path, what);
}

/* The "type" string of part v (NULL when absent or not a string). */
static const char *type_of(const cJSON *v) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Refuses part `path` (an object, not null) of a type other than those in ok[]
 * ("a|b"), naming what attn reads. */
static int want_type(const hf_ctx *c, const cJSON *v, const char *path, const char *ok,
                     bool null_ok) {
    char msg[256];
    if (!cJSON_IsObject(v)) {
        snprintf(msg, sizeof msg, "expected %san object, got %s", null_ok ? "null or " : "",
                 attn_json_type(v, false));
        return refuse(c, path, msg);
    }
    const char *t = type_of(v);
    size_t n = t ? strlen(t) : 0;
    for (const char *p = ok; t && *p;) {
        const char *bar = strchr(p, '|');
        size_t m = bar ? (size_t)(bar - p) : strlen(p);
        if (m == n && memcmp(p, t, n) == 0) return ATTN_OK;
        p += m + (bar != NULL);
    }
    snprintf(msg, sizeof msg, "type \"%.60s\" is not supported (attn reads: %s%s)",
             t ? t : "(none)", null_ok ? "null, " : "", ok);
    return refuse(c, path, msg);
}

/* Key k of object v must be absent, null or equal to the boolean want (want
 * < 0: must be absent or null). */
static int want_bool(const hf_ctx *c, const cJSON *v, const char *path, const char *k, int want,
                     bool absent_ok) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, k);
    char where[128], msg[160];
    snprintf(where, sizeof where, "%s.%s", path, k);
    if (!x || cJSON_IsNull(x)) {
        if (absent_ok || want < 0) return ATTN_OK;
        snprintf(msg, sizeof msg, "missing (attn reads: %s)", want ? "true" : "false");
        return refuse(c, where, msg);
    }
    if (want >= 0 && cJSON_IsBool(x) && cJSON_IsTrue(x) == (want != 0)) return ATTN_OK;
    snprintf(msg, sizeof msg, "%s is not supported (attn reads: %s)", attn_json_type(x, true),
             want < 0 ? "null" : want ? "true" : "false");
    return refuse(c, where, msg);
}

/* Key k of v absent, null, or "" (empty_ok). */
static int want_null(const hf_ctx *c, const cJSON *v, const char *path, const char *k,
                     bool empty_ok) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, k);
    if (!x || cJSON_IsNull(x) || (empty_ok && cJSON_IsString(x) && !x->valuestring[0]))
        return ATTN_OK;
    char where[128], msg[160];
    snprintf(where, sizeof where, "%s.%s", path, k);
    snprintf(msg, sizeof msg, "%s%s%.40s%s is not supported (attn reads: null%s)",
             attn_json_type(x, true), cJSON_IsString(x) ? " \"" : "",
             cJSON_IsString(x) ? x->valuestring : "", cJSON_IsString(x) ? "\"" : "",
             empty_ok ? " or \"\"" : "");
    return refuse(c, where, msg);
}

static int check_parts(const hf_ctx *c, const cJSON *root) {
    int rc;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "normalizer")) && !cJSON_IsNull(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s%.60s%s is not supported (attn reads: null)",
                 type_of(v) ? "type \"" : "", type_of(v) ? type_of(v) : attn_json_type(v, true),
                 type_of(v) ? "\"" : "");
        return refuse(c, "normalizer", msg);
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!v || cJSON_IsNull(v))
        return refuse(c, "pre_tokenizer", "null is not supported (attn reads: ByteLevel)");
    if ((rc = want_type(c, v, "pre_tokenizer", "ByteLevel", false)) ||
        (rc = want_bool(c, v, "pre_tokenizer", "add_prefix_space", 0, true)) ||
        (rc = want_bool(c, v, "pre_tokenizer", "use_regex", 1, true)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "post_processor")) && !cJSON_IsNull(v) &&
        (rc = want_type(c, v, "post_processor", "ByteLevel", true)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "decoder")) && !cJSON_IsNull(v) &&
        (rc = want_type(c, v, "decoder", "ByteLevel", true)))
        return rc;
    if ((rc = want_null(c, root, "(top level)", "truncation", false)) ||
        (rc = want_null(c, root, "(top level)", "padding", false)))
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!m) return refuse(c, "model", "missing");
    if (!cJSON_IsObject(m))
        return refuse(c, "model", "expected an object");
    if (type_of(m) && (rc = want_type(c, m, "model", "BPE", false))) return rc;
    if ((rc = want_null(c, m, "model", "dropout", false)) ||
        (rc = want_null(c, m, "model", "unk_token", false)) ||
        (rc = want_bool(c, m, "model", "byte_fallback", 0, true)) ||
        (rc = want_null(c, m, "model", "continuing_subword_prefix", true)) ||
        (rc = want_null(c, m, "model", "end_of_word_suffix", true)))
        return rc;
    return ATTN_OK;
}

/* model.merges as merges.txt text (one "A B" a line) into *out (malloc'd). */
static int merges_text(const hf_ctx *c, const cJSON *merges, char **out, size_t *len) {
    if (!cJSON_IsArray(merges))
        return refuse(c, "model.merges", "expected an array of \"A B\" strings or [A, B] pairs");
    size_t need = 1, i = 0;
    for (const cJSON *e = merges->child; e; e = e->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "model.merges[%zu]", i);
        if (cJSON_IsString(e)) {
            if (strchr(e->valuestring, '\n')) return refuse(c, where, "a line break in a merge");
            need += strlen(e->valuestring) + 1;
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
            const char *a = e->child->valuestring, *b = e->child->next->valuestring;
            if (strpbrk(a, " \n") || strpbrk(b, " \n") || !*a || !*b)
                return refuse(c, where, "a token of a pair is empty or holds a space or a line "
                                        "break");
            need += strlen(a) + strlen(b) + 2;
        } else {
            return refuse(c, where, "expected a string \"A B\" or a pair [\"A\", \"B\"]");
        }
    }
    char *t = malloc(need); /* need is bounded by the file's size */
    if (!t) return attn_error_set(c->err, ATTN_ERR_NOMEM, "out of memory for %s", c->name);
    size_t n = 0;
    for (const cJSON *e = merges->child; e; e = e->next) {
        n += (size_t)(cJSON_IsString(e) ? sprintf(t + n, "%s\n", e->valuestring)
                                        : sprintf(t + n, "%s %s\n", e->child->valuestring,
                                                  e->child->next->valuestring));
    }
    *out = t;
    *len = n;
    return ATTN_OK;
}

/* Each added token must be the vocabulary's token of its id. */
static int check_added(const hf_ctx *c, const cJSON *root, const attn_tokenizer *tok) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!a || cJSON_IsNull(a)) return ATTN_OK;
    if (!cJSON_IsArray(a)) return refuse(c, "added_tokens", "expected an array");
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(s))
            return refuse(c, where, "expected an object with an integer \"id\" and a string "
                                    "\"content\"");
        double v = id->valuedouble;
        const char *p = v >= 0 && v < tok->size && v == (double)(int)v ? tok->pieces[(int)v] : NULL;
        if (!p || strcmp(p, s->valuestring) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "\"%.60s\" (id %g) is not model.vocab's token of that id "
                                      "(attn reads added tokens that are in the vocabulary)",
                     s->valuestring, v);
            return refuse(c, where, msg);
        }
    }
    return ATTN_OK;
}

int attn_tokenizer_hf_build(attn_tokenizer *tok, const char *buf, size_t len, const char *name,
                            attn_error *err) {
    hf_ctx c = {name, err};
    cJSON *root = NULL;
    int rc = attn_tokenizer_json_parse(buf, len, name, &root, err);
    if (rc) return rc;
    char *vocab = NULL, *merges = NULL;
    size_t merges_len = 0;
    char vocab_name[ATTN_PATH_MAX + 32], merges_name[ATTN_PATH_MAX + 64];
    snprintf(vocab_name, sizeof vocab_name, "%s: model.vocab", name);
    snprintf(merges_name, sizeof merges_name, "%s: model.merges (line N is model.merges[N-1])",
             name);
    if (!cJSON_IsObject(root)) {
        rc = refuse(&c, "(top level)", "expected an object");
        goto out;
    }
    if ((rc = check_parts(&c, root))) goto out;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(v)) {
        rc = refuse(&c, "model.vocab", v ? "expected an object (token -> id)" : "missing");
        goto out;
    }
    if ((rc = merges_text(&c, cJSON_GetObjectItemCaseSensitive(m, "merges"), &merges,
                          &merges_len)))
        goto out;
    if (!(vocab = cJSON_PrintUnformatted(v))) {
        rc = attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for %s", name);
        goto out;
    }
    rc = attn_tokenizer_gpt2_build(tok, vocab, strlen(vocab), vocab_name, merges, merges_len,
                                   merges_name, err);
    if (!rc && (rc = check_added(&c, root, tok))) {
        tok->ops->destroy(tok);
        tok->ops = NULL;
    }
out:
    cJSON_free(vocab);
    free(merges);
    cJSON_Delete(root);
    return rc;
}

#endif
