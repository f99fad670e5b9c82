/* Hugging Face tokenizer.json (type "hf"): the file's parts are checked one
 * by one against what attn implements, then built by one of two back ends.
 * The pre_tokenizer tells which: ByteLevel is GPT-2's kind (gpt2.c), null or
 * Metaspace Llama's (spbpe.c). Anything else is refused with a message
 * naming the file and the JSON path of the part, e.g. `tokenizer.json:
 * normalizer: type "NFC" is not supported (attn reads: null)`.
 *
 * GPT-2's kind, byte-level BPE (gpt2.c: the same pre-tokenizer, byte
 * alphabet, BPE and decoding; no second copy of the merge code; needs PCRE2):
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
 *
 * Llama's kind, SentencePiece converted to BPE (spbpe.c; no PCRE2):
 *   normalizer     Sequence [Prepend "\u2581", Replace {"String": " "} ->
 *                  "\u2581"] with pre_tokenizer null, or null with
 *   pre_tokenizer  Metaspace: replacement "\u2581", prepend_scheme always /
 *                  first / never (or add_prefix_space true / false), split;
 *   model          BPE: vocab, merges, byte_fallback (all 256 <0xNN> tokens
 *                  then), unk_token (in the vocabulary), fuse_unk; dropout
 *                  null, ignore_merges false, no prefix or suffix; unknown
 *                  keys refused;
 *   post_processor null or TemplateProcessing: single = $A with at most one
 *                  SpecialToken before (BOS) and one after;
 *   decoder        Sequence [Replace "\u2581" -> " ", ByteFallback, Fuse,
 *                  Strip " " 1 0 (may be left out)] or Metaspace;
 *   added_tokens   each the vocabulary's token of its id; single_word,
 *                  lstrip, rstrip, normalized false; the special ones
 *                  matched only with --special;
 *   truncation, padding: null.
 * Malformed JSON names the line and column; a bad merge names
 * "model.merges[i]".
 */
#include "tokenizer/tokenizer.h"

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
    char list[96];
    size_t k = 0;
    for (const char *p = ok; *p && k + 3 < sizeof list; p++) { /* "a|b" as "a, b" */
        if (*p == '|') list[k++] = ',', list[k++] = ' ';
        else list[k++] = *p;
    }
    list[k] = '\0';
    snprintf(msg, sizeof msg, "type \"%.60s\" is not supported (attn reads: %s%s)",
             t ? t : "(none)", null_ok ? "null, " : "", list);
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
    v = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"); /* ByteLevel */
    if ((rc = want_bool(c, v, "pre_tokenizer", "add_prefix_space", 0, true)) ||
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

/* ---- the SentencePiece-style form (Llama 1/2, Mistral): spbpe.c ---- */

#define META "\xE2\x96\x81" /* U+2581 */

/* Key k of v must be the string want (absent_ok: or absent). */
static int want_string(const hf_ctx *c, const cJSON *v, const char *path, const char *k,
                       const char *want, bool absent_ok) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, k);
    if ((!x && absent_ok) || (cJSON_IsString(x) && strcmp(x->valuestring, want) == 0))
        return ATTN_OK;
    char where[128], msg[200];
    snprintf(where, sizeof where, "%s.%s", path, k);
    if (cJSON_IsString(x))
        snprintf(msg, sizeof msg, "\"%.40s\" is not supported (attn reads: \"%s\")",
                 x->valuestring, want);
    else
        snprintf(msg, sizeof msg, "%s is not supported (attn reads: \"%s\")",
                 x ? attn_json_type(x, true) : "missing", want);
    return refuse(c, where, msg);
}

/* Object v at path must have exactly the keys of keys[] (NULL-terminated)
 * that are present, none other: the first unknown one is refused. */
static int want_keys(const hf_ctx *c, const cJSON *v, const char *path,
                     const char *const *keys) {
    for (const cJSON *e = v->child; e; e = e->next) {
        bool known = false;
        for (const char *const *k = keys; *k && !known; k++) known = strcmp(*k, e->string) == 0;
        if (known) continue;
        char where[160];
        snprintf(where, sizeof where, "%s.%.60s", path, e->string);
        return refuse(c, where, "is not read by attn (the part would not give the same ids)");
    }
    return ATTN_OK;
}

/* normalizer: Sequence [Prepend "\u2581", Replace " " -> "\u2581"]. */
static int sp_normalizer(const hf_ctx *c, const cJSON *v) {
    static const char ok[] = "Sequence [Prepend \"\\u2581\", Replace \" \" -> \"\\u2581\"]";
    char msg[200];
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(v, "normalizers");
    int rc = want_type(c, v, "normalizer", "Sequence", false);
    if (rc) return rc;
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != 2) {
        snprintf(msg, sizeof msg, "expected two normalizers (attn reads: %s)", ok);
        return refuse(c, "normalizer.normalizers", msg);
    }
    const cJSON *a = list->child, *b = list->child->next, *pat;
    if ((rc = want_type(c, a, "normalizer.normalizers[0]", "Prepend", false)) ||
        (rc = want_string(c, a, "normalizer.normalizers[0]", "prepend", META, false)) ||
        (rc = want_type(c, b, "normalizer.normalizers[1]", "Replace", false)) ||
        (rc = want_string(c, b, "normalizer.normalizers[1]", "content", META, false)))
        return rc;
    pat = cJSON_GetObjectItemCaseSensitive(b, "pattern");
    if (!cJSON_IsObject(pat) || pat->child == NULL || pat->child->next != NULL ||
        (rc = want_string(c, pat, "normalizer.normalizers[1].pattern", "String", " ", false)))
        return rc ? rc : refuse(c, "normalizer.normalizers[1].pattern",
                                "expected {\"String\": \" \"} (attn reads no Regex)");
    return ATTN_OK;
}

/* prepend_scheme / add_prefix_space of a Metaspace part: 0 never, 1 always,
 * 2 first; -1 after refusing. */
static int sp_scheme(const hf_ctx *c, const cJSON *v, const char *path) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "prepend_scheme");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "add_prefix_space");
    char where[96];
    if (s && !cJSON_IsNull(s)) {
        static const char *const names[3] = {"never", "always", "first"};
        for (int i = 0; i < 3; i++)
            if (cJSON_IsString(s) && strcmp(s->valuestring, names[i]) == 0) return i;
        snprintf(where, sizeof where, "%s.prepend_scheme", path);
        refuse(c, where, "expected \"always\", \"first\" or \"never\"");
        return -1;
    }
    if (!a || cJSON_IsNull(a)) return 1;
    if (cJSON_IsBool(a)) return cJSON_IsTrue(a) ? 1 : 0;
    snprintf(where, sizeof where, "%s.add_prefix_space", path);
    refuse(c, where, "expected true or false");
    return -1;
}

/* pre_tokenizer Metaspace, replacement "\u2581". */
static int sp_metaspace(const hf_ctx *c, const cJSON *v, attn_spbpe_spec *sp) {
    static const char *const keys[] = {"type", "replacement", "str_rep", "add_prefix_space",
                                       "prepend_scheme", "split", NULL};
    int rc, scheme;
    if ((rc = want_keys(c, v, "pre_tokenizer", keys)) ||
        (rc = want_string(c, v, "pre_tokenizer", "replacement", META, true)) ||
        (rc = want_string(c, v, "pre_tokenizer", "str_rep", META, true)))
        return rc;
    if ((scheme = sp_scheme(c, v, "pre_tokenizer")) < 0) return ATTN_ERR_FORMAT;
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(v, "split");
    if (split && !cJSON_IsBool(split) && !cJSON_IsNull(split))
        return refuse(c, "pre_tokenizer.split", "expected true or false");
    sp->prepend = scheme != 0;
    sp->prepend_first = scheme == 2;
    sp->prepend_if_absent = true;
    sp->split = !split || !cJSON_IsFalse(split); /* true unless said (tokenizers' default) */
    return ATTN_OK;
}

/* model: BPE with byte_fallback, unk_token, fuse_unk. */
static int sp_model(const hf_ctx *c, const cJSON *m, attn_spbpe_spec *sp) {
    static const char *const keys[] = {"type", "dropout", "unk_token", "continuing_subword_prefix",
                                       "end_of_word_suffix", "fuse_unk", "byte_fallback",
                                       "ignore_merges", "vocab", "merges", NULL};
    int rc;
    if (!m) return refuse(c, "model", "missing");
    if (!cJSON_IsObject(m)) return refuse(c, "model", "expected an object");
    if ((type_of(m) && (rc = want_type(c, m, "model", "BPE", false))) ||
        (rc = want_keys(c, m, "model", keys)) ||
        (rc = want_null(c, m, "model", "dropout", false)) ||
        (rc = want_null(c, m, "model", "continuing_subword_prefix", true)) ||
        (rc = want_null(c, m, "model", "end_of_word_suffix", true)) ||
        (rc = want_bool(c, m, "model", "ignore_merges", 0, true)))
        return rc;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(m, "byte_fallback");
    const cJSON *fu = cJSON_GetObjectItemCaseSensitive(m, "fuse_unk");
    if (unk && !cJSON_IsNull(unk) && !cJSON_IsString(unk))
        return refuse(c, "model.unk_token", "expected null or a string");
    if ((bf && !cJSON_IsBool(bf) && !cJSON_IsNull(bf)))
        return refuse(c, "model.byte_fallback", "expected true or false");
    if ((fu && !cJSON_IsBool(fu) && !cJSON_IsNull(fu)))
        return refuse(c, "model.fuse_unk", "expected true or false");
    sp->vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    sp->merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    sp->unk = cJSON_IsString(unk) ? unk->valuestring : NULL;
    sp->byte_fallback = cJSON_IsTrue(bf);
    sp->fuse_unk = cJSON_IsTrue(fu);
    return ATTN_OK;
}

/* post_processor: null or TemplateProcessing, single = [special?, $A, special?]. */
static int sp_post(const hf_ctx *c, const cJSON *v, attn_spbpe_spec *sp) {
    static const char form[] =
        "attn reads [$A], [SpecialToken, $A], [$A, SpecialToken] or [SpecialToken, $A, "
        "SpecialToken]";
    if (!v || cJSON_IsNull(v)) return ATTN_OK;
    int rc = want_type(c, v, "post_processor", "TemplateProcessing", true);
    if (rc) return rc;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(v, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(v, "special_tokens");
    if (!cJSON_IsArray(single)) return refuse(c, "post_processor.single", "expected an array");
    int i = 0, seq = -1, n = cJSON_GetArraySize(single);
    for (const cJSON *e = single->child; e; e = e->next, i++) {
        char where[96], msg[200];
        snprintf(where, sizeof where, "post_processor.single[%d]", i);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t ? t : s, "id");
        if (s && cJSON_IsString(id) && strcmp(id->valuestring, "A") == 0 && seq < 0) {
            seq = i;
            continue;
        }
        if (!t || !cJSON_IsString(id) || (seq < 0 ? i != 0 : i != seq + 1)) {
            snprintf(msg, sizeof msg, "not supported (%s)", form);
            return refuse(c, where, msg);
        }
        /* the token's ids in special_tokens: one id, the vocabulary's (spbpe.c looks it up) */
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(specials, id->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(st, "ids");
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(st, "tokens");
        if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1 || !cJSON_IsArray(toks) ||
            cJSON_GetArraySize(toks) != 1 || !cJSON_IsString(toks->child) ||
            strcmp(toks->child->valuestring, id->valuestring) != 0) {
            snprintf(where, sizeof where, "post_processor.special_tokens.%.40s", id->valuestring);
            return refuse(c, where, "expected {\"ids\": [ID], \"tokens\": [the same token]}");
        }
        if (seq < 0) sp->prefix = id->valuestring;
        else sp->suffix = id->valuestring;
    }
    if (seq < 0 || n > 3) {
        char msg[200];
        snprintf(msg, sizeof msg, "not supported (%s)", form);
        return refuse(c, "post_processor.single", msg);
    }
    return ATTN_OK;
}

/* decoder: Sequence [Replace "\u2581" -> " ", ByteFallback, Fuse, Strip " " 1 0]
 * (Strip may be left out), or Metaspace. */
static int sp_decoder(const hf_ctx *c, const cJSON *v, attn_spbpe_spec *sp) {
    static const char ok[] = "Sequence [Replace \"\\u2581\" -> \" \", ByteFallback, Fuse, Strip "
                             "\" \" 1 0] or Metaspace";
    char msg[200];
    if (!v || cJSON_IsNull(v)) {
        snprintf(msg, sizeof msg, "null is not supported (attn reads: %s)", ok);
        return refuse(c, "decoder", msg);
    }
    int rc = want_type(c, v, "decoder", "Sequence|Metaspace", false);
    if (rc) return rc;
    if (strcmp(type_of(v), "Metaspace") == 0) {
        int scheme;
        if ((rc = want_string(c, v, "decoder", "replacement", META, true))) return rc;
        if ((scheme = sp_scheme(c, v, "decoder")) < 0) return ATTN_ERR_FORMAT;
        sp->decode_metaspace = true;
        sp->decode_strip = scheme != 0;
        return ATTN_OK;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(v, "decoders");
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
    if (n != 3 && n != 4) {
        snprintf(msg, sizeof msg, "expected 3 or 4 decoders (attn reads: %s)", ok);
        return refuse(c, "decoder.decoders", msg);
    }
    static const char *const types[4] = {"Replace", "ByteFallback", "Fuse", "Strip"};
    int i = 0;
    for (const cJSON *d = list->child; d; d = d->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "decoder.decoders[%d]", i);
        if ((rc = want_type(c, d, where, types[i], false))) return rc;
    }
    const cJSON *rep = list->child, *pat = cJSON_GetObjectItemCaseSensitive(rep, "pattern");
    if ((rc = want_string(c, rep, "decoder.decoders[0]", "content", " ", false))) return rc;
    if (!cJSON_IsObject(pat) || !pat->child || pat->child->next ||
        (rc = want_string(c, pat, "decoder.decoders[0].pattern", "String", META, false)))
        return rc ? rc : refuse(c, "decoder.decoders[0].pattern",
                                "expected {\"String\": \"\\u2581\"}");
    if (n == 4) {
        const cJSON *st = list->child->next->next->next;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(st, "start");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(st, "stop");
        if ((rc = want_string(c, st, "decoder.decoders[3]", "content", " ", false))) return rc;
        if (!cJSON_IsNumber(a) || a->valuedouble != 1 || !cJSON_IsNumber(b) || b->valuedouble != 0)
            return refuse(c, "decoder.decoders[3]", "expected start 1 and stop 0 (attn reads "
                                                    "Strip \" \" 1 0)");
        sp->decode_strip = true;
    }
    return ATTN_OK;
}

/* added_tokens: each one the vocabulary's token of its id, matched whole,
 * not normalized, no stripping. */
static int sp_added(const hf_ctx *c, const cJSON *a, const cJSON *vocab) {
    if (!a || cJSON_IsNull(a)) return ATTN_OK;
    if (!cJSON_IsArray(a)) return refuse(c, "added_tokens", "expected an array");
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        char where[64], msg[200];
        snprintf(where, sizeof where, "added_tokens[%d]", i);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(s) || !s->valuestring[0])
            return refuse(c, where, "expected an object with an integer \"id\" and a non-empty "
                                    "string \"content\"");
        const cJSON *v = cJSON_IsObject(vocab) ? cJSON_GetObjectItemCaseSensitive(vocab,
                                                                                s->valuestring)
                                               : NULL;
        if (!cJSON_IsNumber(v) || v->valuedouble != id->valuedouble) {
            snprintf(msg, sizeof msg, "\"%.60s\" (id %g) is not model.vocab's token of that id "
                                      "(attn reads added tokens that are in the vocabulary)",
                     s->valuestring, id->valuedouble);
            return refuse(c, where, msg);
        }
        static const char *const flags[4] = {"single_word", "lstrip", "rstrip", "normalized"};
        for (int f = 0; f < 4; f++) {
            int rc = want_bool(c, e, where, flags[f], 0, true);
            if (rc) return rc;
        }
    }
    return ATTN_OK;
}

static int sp_build(const hf_ctx *c, const cJSON *root, attn_tokenizer *tok) {
    attn_spbpe_spec sp = {0};
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int rc;
    if (!pre || cJSON_IsNull(pre)) {
        if (!norm || cJSON_IsNull(norm))
            return refuse(c, "pre_tokenizer", "null is not supported with normalizer null (attn "
                                              "reads: ByteLevel, Metaspace, or null after the "
                                              "normalizer Sequence [Prepend, Replace])");
        if ((rc = sp_normalizer(c, norm))) return rc;
        sp.prepend = true;
    } else {
        if ((rc = want_type(c, pre, "pre_tokenizer", "ByteLevel|Metaspace", true))) return rc;
        if (norm && !cJSON_IsNull(norm))
            return refuse(c, "normalizer", "must be null with pre_tokenizer Metaspace");
        if ((rc = sp_metaspace(c, pre, &sp))) return rc;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if ((rc = sp_model(c, m, &sp)) ||
        (rc = sp_post(c, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &sp)) ||
        (rc = sp_decoder(c, cJSON_GetObjectItemCaseSensitive(root, "decoder"), &sp)) ||
        (rc = want_null(c, root, "(top level)", "truncation", false)) ||
        (rc = want_null(c, root, "(top level)", "padding", false)))
        return rc;
    sp.added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if ((rc = sp_added(c, sp.added, sp.vocab))) return rc;
    if (cJSON_IsNull(sp.added)) sp.added = NULL;
    return attn_tokenizer_spbpe_build(tok, &sp, c->name, c->err);
}

/* ---- the byte-level form (GPT-2): gpt2.c ---- */

static int byte_level_build(const hf_ctx *c, const cJSON *root, attn_tokenizer *tok) {
    const char *name = c->name;
    attn_error *err = c->err;
#ifndef ATTN_HAVE_PCRE2
    (void)root, (void)tok, (void)check_parts, (void)merges_text, (void)check_added;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: pre_tokenizer: ByteLevel (GPT-2's byte-level BPE) is not built in "
                          "(attn was built without PCRE2: install libpcre2-dev and rebuild)",
                          name);
#else
    char *vocab = NULL, *merges = NULL;
    size_t merges_len = 0;
    char vocab_name[ATTN_PATH_MAX + 32], merges_name[ATTN_PATH_MAX + 64];
    snprintf(vocab_name, sizeof vocab_name, "%s: model.vocab", name);
    snprintf(merges_name, sizeof merges_name, "%s: model.merges (line N is model.merges[N-1])",
             name);
    int rc = check_parts(c, root);
    if (rc) goto out;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(v)) {
        rc = refuse(c, "model.vocab", v ? "expected an object (token -> id)" : "missing");
        goto out;
    }
    if ((rc = merges_text(c, cJSON_GetObjectItemCaseSensitive(m, "merges"), &merges,
                          &merges_len)))
        goto out;
    if (!(vocab = cJSON_PrintUnformatted(v))) {
        rc = attn_error_set(err, ATTN_ERR_NOMEM, "out of memory for %s", name);
        goto out;
    }
    rc = attn_tokenizer_gpt2_build(tok, vocab, strlen(vocab), vocab_name, merges, merges_len,
                                   merges_name, err);
    if (!rc && (rc = check_added(c, root, tok))) {
        tok->ops->destroy(tok);
        tok->ops = NULL;
    }
out:
    cJSON_free(vocab);
    free(merges);
    return rc;
#endif
}

int attn_tokenizer_hf_build(attn_tokenizer *tok, const char *buf, size_t len, const char *name,
                            attn_error *err) {
    hf_ctx c = {name, err};
    cJSON *root = NULL;
    int rc = attn_tokenizer_json_parse(buf, len, name, &root, err);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) {
        rc = refuse(&c, "(top level)", "expected an object");
    } else {
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
        const char *t = cJSON_IsObject(pre) ? type_of(pre) : NULL;
        rc = t && strcmp(t, "ByteLevel") == 0 ? byte_level_build(&c, root, tok)
                                              : sp_build(&c, root, tok);
    }
    cJSON_Delete(root);
    return rc;
}
