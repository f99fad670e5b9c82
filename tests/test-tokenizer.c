/* Tokenizer tests: the word tokenizer, the llama2.c tokenizer on hand-made
 * files (expected ids derived by hand in the comments), file refusals, a
 * randomized comparison of the heap-based merging against a naive copy of
 * llama2.c's loop, and stories260K's tok512.bin against the fixture written by
 * tests/reference/llama2c_encode.py; the gpt2 tokenizer on hand-made vocab.json /
 * merges.txt (expected ids derived by hand in the comments). */
#include "attn/attn.h"
#include "support.h"

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOK512 ATTN_SOURCE_ROOT "/../shared/models/stories260K/tok512.bin"
#define FIXTURE ATTN_SOURCE_ROOT "/tests/data/llama2c_prompts.tsv"

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

static attn_tokenizer_config word_config(bool lowercase, const char *unk, const char *bos,
                                         const char *eos) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_WORD;
    tc.lowercase = lowercase;
    snprintf(tc.unk, sizeof tc.unk, "%s", unk);
    if (bos) {
        tc.has_bos = true;
        snprintf(tc.bos, sizeof tc.bos, "%s", bos);
    }
    if (eos) {
        tc.has_eos = true;
        snprintf(tc.eos, sizeof tc.eos, "%s", eos);
    }
    return tc;
}

static attn_tokenizer *word_tok(const char *vocab, bool lowercase, const char *unk, const char *bos,
                                const char *eos) {
    attn_tokenizer_config tc = word_config(lowercase, unk, bos, eos);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    int rc = attn_tokenizer_from_memory(&tok, &tc, vocab, strlen(vocab), "vocab.txt", &err);
    ck_assert_msg(rc == ATTN_OK, "vocabulary refused: %s", err.message);
    ck_assert_ptr_nonnull(tok);
    return tok;
}

/* Expects the refusal of a word vocabulary, with every `needles` in the message. */
static void word_refused(const char *vocab, size_t len, const char *unk, const char *bos,
                         const char *eos, const char *needle1, const char *needle2) {
    attn_tokenizer_config tc = word_config(false, unk, bos, eos);
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    int rc = attn_tokenizer_from_memory(&tok, &tc, vocab, len, "vocab.txt", &err);
    ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
    ck_assert_int_eq(err.status, ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, needle1), "message \"%s\" lacks \"%s\"", err.message,
                  needle1);
    if (needle2)
        ck_assert_msg(strstr(err.message, needle2), "message \"%s\" lacks \"%s\"", err.message,
                      needle2);
    ck_assert_msg(!strchr(err.message, '\n'), "message has a newline: %s", err.message);
}

static void expect_ids_len(const attn_tokenizer *tok, const char *text, size_t len,
                           const int *want, size_t nwant) {
    int *ids = NULL;
    size_t n = 99;
    attn_error err = {0};
    int rc = attn_tokenizer_encode(tok, text, len, &ids, &n, &err);
    ck_assert_msg(rc == ATTN_OK, "encode failed: %s", err.message);
    ck_assert_ptr_nonnull(ids);
    char got[512] = "", tmp[16];
    for (size_t i = 0; i < n && strlen(got) < 480; i++) {
        snprintf(tmp, sizeof tmp, "%d,", ids[i]);
        strcat(got, tmp);
    }
    ck_assert_msg(n == nwant, "text \"%.*s\": %zu ids (%s), expected %zu", (int)len, text, n, got,
                  nwant);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "text \"%.*s\": id %zu is %d, expected %d (got %s)",
                      (int)len, text, i, ids[i], want[i], got);
    free(ids);
}

#define EXPECT_IDS(tok, text, ...)                                                                 \
    do {                                                                                           \
        const int want_[] = {__VA_ARGS__};                                                         \
        expect_ids_len(tok, text, strlen(text), want_, sizeof want_ / sizeof want_[0]);            \
    } while (0)

static void expect_decode(const attn_tokenizer *tok, int prev, int id, const char *want,
                          size_t want_len) {
    char buf[64];
    memset(buf, 'X', sizeof buf);
    size_t n = attn_tokenizer_decode(tok, prev, id, buf, sizeof buf);
    ck_assert_msg(n == want_len, "decode(%d, %d): length %zu, expected %zu", prev, id, n, want_len);
    ck_assert_msg(memcmp(buf, want, want_len) == 0, "decode(%d, %d) = \"%s\", expected \"%s\"",
                  prev, id, buf, want);
    ck_assert_int_eq(buf[n], '\0');
}

/* A deterministic generator, so a failure can be reproduced. */
static uint32_t rng_next(uint64_t *s) {
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(*s >> 33);
}
static int rng_int(uint64_t *s, int lo, int hi) { /* [lo, hi] */
    return lo + (int)(rng_next(s) % (uint32_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------------ */
/* word tokenizer                                                             */

/* ids = line numbers from 0 */
static const char *VOCAB =
    "<unk>\n"  /* 0 */
    "the\n"    /* 1 */
    "cat\n"    /* 2 */
    "sat\n"    /* 3 */
    "on\n"     /* 4 */
    "mat\n"    /* 5 */
    ".\n"      /* 6 */
    "'\n"      /* 7 */
    "don\n"    /* 8 */
    "t\n"      /* 9 */
    ",\n"      /* 10 */
    "!\n"      /* 11 */
    "caf\xc3\xa9\n" /* 12 "café" */
    "The\n"    /* 13 */
    "<s>\n"    /* 14 */
    "</s>\n"   /* 15 */
    "-\n"      /* 16 */
    "42";      /* 17, last line without a newline */

START_TEST(word_punctuation) {
    attn_tokenizer *tok = word_tok(VOCAB, true, "<unk>", NULL, NULL);
    ck_assert_int_eq(attn_tokenizer_size(tok), 18);
    ck_assert_int_eq(attn_tokenizer_bos(tok), -1);
    ck_assert_int_eq(attn_tokenizer_eos(tok), -1);
    EXPECT_IDS(tok, "The cat sat on the mat.", 1, 2, 3, 4, 1, 5, 6);
    EXPECT_IDS(tok, "don't", 8, 7, 9);
    EXPECT_IDS(tok, "mat.cat", 5, 6, 2);
    /* punctuation not in the vocabulary is unk on its own */
    EXPECT_IDS(tok, "cat?!", 2, 0, 11);
    EXPECT_IDS(tok, "hello,world!", 0, 10, 0, 11);
    EXPECT_IDS(tok, "--42--", 16, 16, 17, 16, 16);
    EXPECT_IDS(tok, "(cat)", 0, 2, 0);
    /* every ASCII punctuation character is a token of its own: 32 unks */
    const char *punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    ck_assert_uint_eq(strlen(punct), 32);
    int *ids;
    size_t n;
    attn_error err;
    ck_assert_int_eq(attn_tokenizer_encode(tok, punct, strlen(punct), &ids, &n, &err), ATTN_OK);
    ck_assert_uint_eq(n, 32);
    ck_assert_int_eq(ids[0], 11);  /* ! */
    ck_assert_int_eq(ids[6], 7);   /* ' */
    ck_assert_int_eq(ids[11], 10); /* , */
    ck_assert_int_eq(ids[12], 16); /* - */
    ck_assert_int_eq(ids[13], 6);  /* . */
    ck_assert_int_eq(ids[1], 0);   /* " */
    free(ids);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_whitespace_and_bytes) {
    attn_tokenizer *tok = word_tok(VOCAB, false, "<unk>", NULL, NULL);
    EXPECT_IDS(tok, " \t the\ncat\r\nsat\v\fon  ", 1, 2, 3, 4);
    /* bytes >= 0x80 are word characters */
    EXPECT_IDS(tok, "caf\xc3\xa9 caf\xc3\xa9s caf", 12, 0, 0);
    /* a NUL byte is a word character: "the\0cat" is one unknown word */
    expect_ids_len(tok, "the\0cat on", 10, (const int[]){0, 4}, 2);
    /* only len bytes are read */
    expect_ids_len(tok, "the cat", 3, (const int[]){1}, 1);
    /* empty and blank text: no ids */
    expect_ids_len(tok, "", 0, NULL, 0);
    expect_ids_len(tok, NULL, 0, NULL, 0);
    expect_ids_len(tok, " \n\t", 3, NULL, 0);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_lowercase) {
    attn_tokenizer *tok = word_tok(VOCAB, false, "<unk>", NULL, NULL);
    EXPECT_IDS(tok, "The the THE tHe", 13, 1, 0, 0);
    EXPECT_IDS(tok, "CAT Cat cat", 0, 0, 2);
    attn_tokenizer_free(tok);
    tok = word_tok(VOCAB, true, "<unk>", NULL, NULL);
    /* lowercased before lookup: "The" is unreachable */
    EXPECT_IDS(tok, "The the THE tHe", 1, 1, 1, 1);
    EXPECT_IDS(tok, "CAT Cat cat", 2, 2, 2);
    /* only ASCII is lowered: "CAFÉ" -> "cafÉ", not in the vocabulary */
    EXPECT_IDS(tok, "CAF\xc3\xa9 CAF\xc3\x89", 12, 0);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_bos_eos_unk) {
    attn_tokenizer *tok = word_tok(VOCAB, true, "<unk>", "<s>", "</s>");
    ck_assert_int_eq(attn_tokenizer_bos(tok), 14);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 15);
    EXPECT_IDS(tok, "the dog", 14, 1, 0, 15);
    EXPECT_IDS(tok, "", 14, 15);
    attn_tokenizer_free(tok);
    tok = word_tok(VOCAB, true, "<unk>", "<s>", NULL);
    EXPECT_IDS(tok, "cat", 14, 2);
    attn_tokenizer_free(tok);
    tok = word_tok(VOCAB, true, "<unk>", NULL, "</s>");
    EXPECT_IDS(tok, "cat", 2, 15);
    attn_tokenizer_free(tok);
    /* unk can be any vocabulary token */
    tok = word_tok(VOCAB, true, ".", NULL, NULL);
    EXPECT_IDS(tok, "dog cat", 6, 2);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_piece_decode) {
    attn_tokenizer *tok = word_tok(VOCAB, true, "<unk>", "<s>", "</s>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 0), "<unk>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 12), "caf\xc3\xa9");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 17), "42");
    ck_assert_ptr_null(attn_tokenizer_piece(tok, -1));
    ck_assert_ptr_null(attn_tokenizer_piece(tok, 18));
    ck_assert_ptr_null(attn_tokenizer_piece(NULL, 0));
    expect_decode(tok, -1, 1, "the", 3);
    expect_decode(tok, 14, 1, "the", 3);   /* after bos: no space */
    expect_decode(tok, 1, 2, " cat", 4);
    expect_decode(tok, 2, 15, " </s>", 5);
    expect_decode(tok, 15, 6, " .", 2);
    expect_decode(tok, 7, 18, "", 0); /* out of range */
    expect_decode(tok, 7, -5, "", 0);
    /* truncation to cap - 1 */
    char buf[3] = "ZZZ";
    ck_assert_uint_eq(attn_tokenizer_decode(tok, 1, 2, buf, 3), 2);
    ck_assert_str_eq(buf, " c");
    ck_assert_uint_eq(attn_tokenizer_decode(tok, 1, 2, buf, 1), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(attn_tokenizer_decode(tok, 1, 2, buf, 0), 0);
    attn_tokenizer_free(tok);
    /* without a bos, only the start (-1) has no space */
    tok = word_tok(VOCAB, true, "<unk>", NULL, NULL);
    expect_decode(tok, 14, 1, " the", 4);
    expect_decode(tok, -1, 1, "the", 3);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_vocab_forms) {
    /* CRLF lines, final line without newline */
    attn_tokenizer *tok = word_tok("<unk>\r\nab\r\ncd", false, "<unk>", NULL, NULL);
    ck_assert_int_eq(attn_tokenizer_size(tok), 3);
    ck_assert_str_eq(attn_tokenizer_piece(tok, 1), "ab");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 2), "cd");
    EXPECT_IDS(tok, "cd ab x", 2, 1, 0);
    attn_tokenizer_free(tok);
    tok = word_tok("<unk>\n", false, "<unk>", NULL, NULL);
    ck_assert_int_eq(attn_tokenizer_size(tok), 1);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_vocab_refusals) {
    word_refused("<unk>\n\nb\n", 9, "<unk>", NULL, NULL, "vocab.txt:2:", "empty");
    word_refused("<unk>\nb\n\n", 9, "<unk>", NULL, NULL, "vocab.txt:3:", "empty");
    word_refused("<unk>\nb\n\r\n", 10, "<unk>", NULL, NULL, "vocab.txt:3:", "empty");
    word_refused("<unk>\nb\nc d\n", 12, "<unk>", NULL, NULL, "vocab.txt:3:", "whitespace");
    word_refused("<unk>\nb\tc\n", 10, "<unk>", NULL, NULL, "vocab.txt:2:", "whitespace");
    word_refused("<unk>\n b\n", 9, "<unk>", NULL, NULL, "vocab.txt:2:", "whitespace");
    word_refused("<unk>\nb\rc\n", 10, "<unk>", NULL, NULL, "vocab.txt:2:", "whitespace");
    word_refused("<unk>\nb\0c\n", 10, "<unk>", NULL, NULL, "vocab.txt:2:", "NUL");
    word_refused("<unk>\nb\nc\nb\n", 12, "<unk>", NULL, NULL, "vocab.txt:4:", "duplicate");
    word_refused("<unk>\nb\nc\nb\n", 12, "<unk>", NULL, NULL, "\"b\"", "line 2");
    word_refused("", 0, "<unk>", NULL, NULL, "vocab.txt", "no tokens");
    word_refused("a\nb\n", 4, "<unk>", NULL, NULL, "vocab.txt", "\"<unk>\"");
    word_refused("<unk>\nb\n", 8, "<unk>", "<s>", NULL, "bos", "\"<s>\"");
    word_refused("<unk>\nb\n<s>\n", 12, "<unk>", "<s>", "</s>", "eos", "\"</s>\"");
    word_refused("<unk>\nb\n", 8, "", NULL, NULL, "unk", "vocabulary");
}
END_TEST

/* Random vocabulary, random sentences of its words joined by random
 * whitespace: the ids are the chosen words' line numbers. */
START_TEST(word_random_round_trip) {
    enum { NWORDS = 400, NSENT = 300, MAXW = 40 };
    uint64_t seed = 12345 + (uint64_t)_i;
    static char words[NWORDS][12];
    const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789\xc3\xa9\xe2\x82\xac";
    size_t vlen = 0;
    static char vocab[NWORDS * 13 + 16];
    vlen += (size_t)sprintf(vocab, "<unk>\n");
    for (int w = 1; w < NWORDS; w++) {
        for (;;) {
            int len = rng_int(&seed, 1, 10);
            for (int c = 0; c < len; c++)
                words[w][c] = alphabet[rng_int(&seed, 0, (int)sizeof alphabet - 2)];
            words[w][len] = '\0';
            bool dup = false;
            for (int o = 1; o < w && !dup; o++) dup = strcmp(words[o], words[w]) == 0;
            if (!dup) break;
        }
        vlen += (size_t)sprintf(vocab + vlen, "%s%s", words[w], w + 1 < NWORDS ? "\n" : "");
    }
    bool lowercase = _i % 2 == 1;
    attn_tokenizer *tok = word_tok(vocab, lowercase, "<unk>", NULL, NULL);
    ck_assert_int_eq(attn_tokenizer_size(tok), NWORDS);
    const char spaces[] = " \t\n\r\v\f";
    for (int s = 0; s < NSENT; s++) {
        int nw = rng_int(&seed, 0, MAXW), want[MAXW];
        char text[MAXW * 16 + 8];
        size_t tl = 0;
        for (int k = rng_int(&seed, 0, 2); k > 0; k--) text[tl++] = spaces[rng_int(&seed, 0, 5)];
        for (int w = 0; w < nw; w++) {
            want[w] = rng_int(&seed, 1, NWORDS - 1);
            for (const char *c = words[want[w]]; *c; c++) {
                char ch = *c;
                if (lowercase && ch >= 'a' && ch <= 'z' && rng_int(&seed, 0, 1)) ch -= 'a' - 'A';
                text[tl++] = ch;
            }
            for (int k = rng_int(&seed, w + 1 < nw ? 1 : 0, 3); k > 0; k--)
                text[tl++] = spaces[rng_int(&seed, 0, 5)];
        }
        expect_ids_len(tok, text, tl, want, (size_t)nw);
    }
    attn_tokenizer_free(tok);
}
END_TEST

/* Special tokens (ids = line numbers, written by hand): the <...> entries of
 * the vocabulary, and the tokens a config lists, match whole. */
static const char *SPECIAL_VOCAB =
    "<unk>\n"   /* 0 */
    "<mask>\n"  /* 1  <...>: special */
    "the\n"     /* 2 */
    "sun\n"     /* 3 */
    "<\n"       /* 4 */
    "mask\n"    /* 5 */
    ">\n"       /* 6 */
    ".\n"       /* 7 */
    "[MASK]\n"  /* 8  special only when listed */
    "<s>\n"     /* 9  <...> */
    "</s>\n"    /* 10 <...> ('/' inside) */
    "[\n"       /* 11 */
    "]\n"       /* 12 */
    "MASK\n"    /* 13 */
    "rises\n"   /* 14 */
    "<a<b>\n"   /* 15 not <...> ('<' inside): never matched from text */
    "<=>\n"     /* 16 <...> */
    "<mask>.\n" /* 17 not <...> (ends with '.'): special only when listed */
    "<>";       /* 18 not <...> (nothing inside) */

static attn_tokenizer *special_tok(const char *const *listed, int n, bool off) {
    attn_tokenizer_config tc = word_config(true, "<unk>", NULL, NULL);
    for (int i = 0; i < n; i++) snprintf(tc.special[i], sizeof tc.special[i], "%s", listed[i]);
    tc.n_special = n;
    tc.special_off = off;
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    int rc = attn_tokenizer_from_memory(&tok, &tc, SPECIAL_VOCAB, strlen(SPECIAL_VOCAB),
                                        "vocab.txt", &err);
    ck_assert_msg(rc == ATTN_OK, "vocabulary refused: %s", err.message);
    return tok;
}

/* Encodes with ATTN_ENCODE_NO_SPECIAL. */
static void expect_plain_ids(const attn_tokenizer *tok, const char *text, const int *want,
                             size_t nwant) {
    int *ids = NULL;
    size_t n = 0;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_encode_flags(tok, text, strlen(text), ATTN_ENCODE_NO_SPECIAL,
                                                 &ids, &n, &err),
                     ATTN_OK);
    ck_assert_msg(n == nwant, "\"%s\" without special tokens: %zu ids, expected %zu", text, n,
                  nwant);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "\"%s\" without special tokens: id %zu is %d, not %d",
                      text, i, ids[i], want[i]);
    free(ids);
}

START_TEST(word_special_angle) {
    attn_tokenizer *tok = special_tok(NULL, 0, false);
    /* whole, between spaces, glued to words and punctuation */
    EXPECT_IDS(tok, "the <mask> rises", 2, 1, 14);
    EXPECT_IDS(tok, "the<mask>", 2, 1);
    EXPECT_IDS(tok, "<mask>the", 1, 2);
    EXPECT_IDS(tok, "the<mask>sun", 2, 1, 3);
    EXPECT_IDS(tok, "<mask>.", 1, 7);
    EXPECT_IDS(tok, "<mask><mask>", 1, 1);
    EXPECT_IDS(tok, "<<mask>>", 4, 1, 6);
    EXPECT_IDS(tok, "<s>the sun</s>", 9, 2, 3, 10);
    EXPECT_IDS(tok, "<=>", 16);
    EXPECT_IDS(tok, "<unk>", 0);
    /* as written: not lowercased first, so "<MASK>" is '<' "mask" '>' */
    EXPECT_IDS(tok, "<MASK>", 4, 5, 6);
    /* not a whole <...> of the vocabulary: split as usual */
    EXPECT_IDS(tok, "<mask", 4, 5);
    EXPECT_IDS(tok, "mask>", 5, 6);
    EXPECT_IDS(tok, "< mask>", 4, 5, 6);
    EXPECT_IDS(tok, "<mask >", 4, 5, 6);
    EXPECT_IDS(tok, "<cat>", 4, 0, 6);
    EXPECT_IDS(tok, "<maskmaskmaskmask>", 4, 0, 6); /* longer than any <...> entry */
    EXPECT_IDS(tok, "<= >", 4, 0, 6);
    EXPECT_IDS(tok, "<>", 4, 6);
    EXPECT_IDS(tok, "<a<b>", 4, 0, 4, 0, 6);
    EXPECT_IDS(tok, "<mask>.", 1, 7); /* "<mask>." is not listed here */
    EXPECT_IDS(tok, "[MASK]", 11, 5, 12);
    /* a NUL byte inside never matches */
    expect_ids_len(tok, "<ma\0sk>", 7, (const int[]){4, 0, 6}, 3);
    /* only len bytes are read: the '>' after them does not complete "<mask>" */
    expect_ids_len(tok, "<mask>", 5, (const int[]){4, 5}, 2);
    /* switched off per call: every '<' and '>' on its own again */
    expect_plain_ids(tok, "the <mask> rises", (const int[]){2, 4, 5, 6, 14}, 5);
    expect_plain_ids(tok, "the<mask>", (const int[]){2, 4, 5, 6}, 4);
    expect_plain_ids(tok, "</s>", (const int[]){4, 0, 0, 6}, 4); /* "/" and "s": unk */
    attn_tokenizer_free(tok);
    /* switched off in the config */
    tok = special_tok(NULL, 0, true);
    EXPECT_IDS(tok, "the <mask> rises", 2, 4, 5, 6, 14);
    EXPECT_IDS(tok, "<s>", 4, 0, 6);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_special_listed) {
    const char *listed[] = {"[MASK]", "MASK", "<mask>."};
    attn_tokenizer *tok = special_tok(listed, 3, false);
    EXPECT_IDS(tok, "[MASK]", 8);
    EXPECT_IDS(tok, "the [MASK] rises", 2, 8, 14);
    EXPECT_IDS(tok, "the[MASK]", 2, 8);
    EXPECT_IDS(tok, "[MASK][MASK].", 8, 8, 7);
    /* inside a word too: "xx" is unk */
    EXPECT_IDS(tok, "xx[MASK]xx", 0, 8, 0);
    /* a listed word matches as written, also inside words; unlisted "mask" is lowercased */
    EXPECT_IDS(tok, "MASK mask Mask", 13, 5, 5);
    EXPECT_IDS(tok, "theMASK", 2, 13);
    EXPECT_IDS(tok, "MASKthe", 13, 2);
    EXPECT_IDS(tok, "sunMASKsun", 3, 13, 3);
    /* the longest match wins: "[MASK]" over "MASK", "<mask>." over <mask> */
    EXPECT_IDS(tok, "[MASK", 11, 13);
    EXPECT_IDS(tok, "<mask>.", 17);
    EXPECT_IDS(tok, "<mask> .", 1, 7);
    EXPECT_IDS(tok, "<mask>", 1);
    /* case-sensitive */
    EXPECT_IDS(tok, "[mask]", 11, 5, 12);
    expect_plain_ids(tok, "[MASK] MASK", (const int[]){11, 5, 12, 5}, 4);
    attn_tokenizer_free(tok);
    /* a token listed twice counts once */
    const char *twice[] = {"MASK", "MASK"};
    tok = special_tok(twice, 2, false);
    EXPECT_IDS(tok, "theMASKthe", 2, 13, 2);
    attn_tokenizer_free(tok);
    /* switched off: the list is not matched either */
    tok = special_tok(listed, 3, true);
    EXPECT_IDS(tok, "[MASK] <mask>.", 11, 5, 12, 4, 5, 6, 7);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_special_refusals) {
    /* a listed token must be in the vocabulary */
    attn_tokenizer_config tc = word_config(true, "<unk>", NULL, NULL);
    snprintf(tc.special[0], sizeof tc.special[0], "[MASK]");
    snprintf(tc.special[1], sizeof tc.special[1], "[CLS]");
    tc.n_special = 2;
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, SPECIAL_VOCAB, strlen(SPECIAL_VOCAB),
                                                "vocab.txt", &err),
                     ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, "vocab.txt") && strstr(err.message, "special") &&
                      strstr(err.message, "\"[CLS]\"") && strstr(err.message, "vocabulary"),
                  "%s", err.message);
    tc.n_special = ATTN_SPECIAL_MAX + 1;
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, SPECIAL_VOCAB, strlen(SPECIAL_VOCAB),
                                                "vocab.txt", &err),
                     ATTN_ERR_USAGE);
    tc.n_special = -1;
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, SPECIAL_VOCAB, strlen(SPECIAL_VOCAB),
                                                "vocab.txt", &err),
                     ATTN_ERR_USAGE);
    ck_assert_ptr_null(tok);
    /* an unknown encode flag */
    tok = special_tok(NULL, 0, false);
    int *ids = (int *)1;
    size_t n = 5;
    ck_assert_int_eq(attn_tokenizer_encode_flags(tok, "the", 3, 4u, &ids, &n, &err),
                     ATTN_ERR_USAGE);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    attn_tokenizer_free(tok);
}
END_TEST

/* "add_eos": false: eos is the tokenizer's end token but not appended. */
START_TEST(word_eos_not_added) {
    attn_tokenizer_config tc = word_config(true, "<unk>", "<s>", "</s>");
    tc.eos_not_added = true;
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, VOCAB, strlen(VOCAB), "v", &err),
                     ATTN_OK);
    ck_assert_int_eq(attn_tokenizer_bos(tok), 14);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 15);
    EXPECT_IDS(tok, "the cat", 14, 1, 2);
    EXPECT_IDS(tok, "", 14);
    /* written in the text it is still a token: </s> is <...> */
    EXPECT_IDS(tok, "cat </s>", 14, 2, 15);
    attn_tokenizer_free(tok);
}
END_TEST

START_TEST(word_open_file) {
    char path[] = "/tmp/attn-test-vocab-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *v = "<unk>\nhello\nworld\n";
    ck_assert_int_eq(write(fd, v, strlen(v)), (ssize_t)strlen(v));
    close(fd);
    attn_tokenizer_config tc = word_config(true, "<unk>", NULL, NULL);
    snprintf(tc.path, sizeof tc.path, "%s", path);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_open(&tok, &tc, &err), ATTN_OK);
    EXPECT_IDS(tok, "Hello, World", 1, 0, 2);
    attn_tokenizer_free(tok);
    /* a vocabulary error names the file */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "<unk>\nx\nx\n", 10), 10);
    close(fd);
    ck_assert_int_eq(attn_tokenizer_open(&tok, &tc, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, path) && strstr(err.message, ":3:"), "%s", err.message);
    unlink(path);
    ck_assert_int_eq(attn_tokenizer_open(&tok, &tc, &err), ATTN_ERR_IO);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, path), "%s", err.message);
    attn_tokenizer_free(NULL);
}
END_TEST

START_TEST(api_misuse) {
    attn_tokenizer *tok = word_tok(VOCAB, true, "<unk>", NULL, NULL);
    int *ids;
    size_t n;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_encode(tok, NULL, 3, &ids, &n, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(attn_tokenizer_encode(NULL, "a", 1, &ids, &n, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(attn_tokenizer_encode(tok, "a", 1, NULL, &n, &err), ATTN_ERR_USAGE);
    attn_tokenizer_config tc = word_config(true, "<unk>", NULL, NULL);
    ck_assert_int_eq(attn_tokenizer_from_memory(NULL, &tc, "a", 1, "v", &err), ATTN_ERR_USAGE);
    attn_tokenizer *t2 = (attn_tokenizer *)1;
    ck_assert_int_eq(attn_tokenizer_from_memory(&t2, &tc, NULL, 5, "v", &err), ATTN_ERR_USAGE);
    ck_assert_ptr_null(t2);
    tc.path[0] = '\0';
    ck_assert_int_eq(attn_tokenizer_open(&t2, &tc, &err), ATTN_ERR_USAGE);
    ck_assert_int_eq(attn_tokenizer_size(NULL), 0);
    ck_assert_int_eq(attn_tokenizer_bos(NULL), -1);
    attn_tokenizer_free(tok);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* llama2.c tokenizer files built in memory                                  */

typedef struct binbuf {
    tu_bytes bytes;
    size_t starts[600]; /* offset of each entry */
    int n;
} binbuf;

static void bb_raw(binbuf *b, const void *src, size_t n) { tu_bytes_put(&b->bytes, src, n); }
static void bb_i32(binbuf *b, int32_t v) { tu_bytes_le32(&b->bytes, (uint32_t)v); }
static void bb_f32(binbuf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_i32(b, (int32_t)u);
}
static void bb_entry_n(binbuf *b, float score, const char *s, size_t n) {
    ck_assert_int_lt(b->n, 600);
    b->starts[b->n++] = b->bytes.n;
    bb_f32(b, score);
    bb_i32(b, (int32_t)n);
    bb_raw(b, s, n);
}
static void bb_entry(binbuf *b, float score, const char *s) { bb_entry_n(b, score, s, strlen(s)); }

/* max_token_length, <unk>, BOS, EOS and the 256 byte tokens <0x00>..<0xFF> (ids 3..258) */
static void bb_base(binbuf *b, int32_t max_len) {
    memset(b, 0, sizeof *b);
    bb_i32(b, max_len);
    bb_entry(b, 0, "<unk>");
    bb_entry(b, 0, "\n<s>\n");
    bb_entry(b, 0, "\n</s>\n");
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        bb_entry(b, 0, s);
    }
}

static attn_tokenizer *bb_open(const binbuf *b) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    int rc = attn_tokenizer_from_memory(&tok, &tc, b->bytes.p, b->bytes.n, "tok.bin", &err);
    ck_assert_msg(rc == ATTN_OK, "tokenizer refused: %s", err.message);
    return tok;
}

/* The hand-made vocabulary: ids 259.. */
enum { SP = 259, A, B, C, AB, BC, ABC, SP_A, E_ACUTE, X, Y, Z, XY, YZ, SMILE, ZZ, Q, Q2, N_HAND };
static void bb_hand(binbuf *b) {
    bb_base(b, 8);
    bb_entry(b, 0, " ");               /* SP */
    bb_entry(b, 0, "a");               /* A */
    bb_entry(b, 0, "b");               /* B */
    bb_entry(b, 0, "c");               /* C */
    bb_entry(b, 5, "ab");              /* AB */
    bb_entry(b, 7, "bc");              /* BC */
    bb_entry(b, 1, "abc");             /* ABC */
    bb_entry(b, 2, " a");              /* SP_A */
    bb_entry(b, 0, "\xc3\xa9");        /* E_ACUTE "é" */
    bb_entry(b, 0, "x");               /* X */
    bb_entry(b, 0, "y");               /* Y */
    bb_entry(b, 0, "z");               /* Z */
    bb_entry(b, 3, "xy");              /* XY */
    bb_entry(b, 3, "yz");              /* YZ, ties with XY */
    bb_entry(b, 0, "\xf0\x9f\x99\x82"); /* SMILE 🙂 */
    bb_entry(b, -2e10f, "zz");         /* ZZ: below llama2.c's starting best score */
    bb_entry(b, 0, "q");               /* Q */
    bb_entry(b, 9, "q");               /* Q2: same text as Q */
    ck_assert_int_eq(b->n, N_HAND);
}

START_TEST(bpe_hand_merges) {
    binbuf b;
    bb_hand(&b);
    attn_tokenizer *tok = bb_open(&b);
    ck_assert_int_eq(attn_tokenizer_size(tok), N_HAND);
    ck_assert_int_eq(attn_tokenizer_bos(tok), 1);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 2);
    /* "abc": BOS " " a b c; candidate pairs " a" (2), "ab" (5), "bc" (7):
     * "bc" wins -> BOS " " a bc; now " a" (2) and "abc" (1): " a" wins ->
     * BOS " a" bc; " abc" is no piece: done. (Merging left to right would
     * have given "ab" first.) */
    EXPECT_IDS(tok, "abc", 1, SP_A, BC);
    /* "ab": " a" (2) vs "ab" (5): "ab" -> BOS " " ab; " ab" no piece. */
    EXPECT_IDS(tok, "ab", 1, SP, AB);
    /* "xyz": "xy" and "yz" tie at 3: the leftmost wins -> " " xy z */
    EXPECT_IDS(tok, "xyz", 1, SP, XY, Z);
    /* "xyzxyz": xy (3) at 2 places, yz (3) at 2 places, "zx" no piece: the
     * leftmost xy first, then at "xy z x y z": xy(pos 4) vs yz(pos 5): xy. */
    EXPECT_IDS(tok, "xyzxyz", 1, SP, XY, Z, XY, Z);
    /* "yzxy": yz at 0 and xy at 2 tie: yz first (leftmost), then xy. */
    EXPECT_IDS(tok, "yzxy", 1, SP, YZ, XY);
    /* "abab": pairs " a"(2) ab(5) "ba" none ab(5): leftmost ab ->
     * " " ab a b; " ab" none, "aba" none, ab (5) -> " " ab ab. */
    EXPECT_IDS(tok, "abab", 1, SP, AB, AB);
    /* "zz" scores -2e10 <= -1e10: llama2.c never merges it */
    EXPECT_IDS(tok, "zz", 1, SP, Z, Z);
    /* two ids share the text "q": the lowest one is used */
    EXPECT_IDS(tok, "q", 1, SP, Q);
    /* empty text: just BOS, no dummy prefix; len bounds the text */
    EXPECT_IDS(tok, "", 1);
    expect_ids_len(tok, "abc", 1, (const int[]){1, SP_A}, 2);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

START_TEST(bpe_hand_bytes) {
    binbuf b;
    bb_hand(&b);
    attn_tokenizer *tok = bb_open(&b);
    /* a code point with a piece */
    EXPECT_IDS(tok, "\xc3\xa9", 1, SP, E_ACUTE);
    /* "ü" (c3 bc) has no piece: its bytes, id = byte + 3 */
    EXPECT_IDS(tok, "\xc3\xbc", 1, SP, 0xc3 + 3, 0xbc + 3);
    /* an invalid byte */
    EXPECT_IDS(tok, "\xff" "a", 1, SP, 0xff + 3, A);
    /* a continuation byte after "a" joins its group: "a\x80" is no piece,
     * so both bytes fall back ('a' = 0x61) */
    EXPECT_IDS(tok, "a\x80", 1, SP, 0x61 + 3, 0x80 + 3);
    /* groups stop at 4 bytes: the emoji is found, the 5th byte stands alone */
    EXPECT_IDS(tok, "\xf0\x9f\x99\x82\x80", 1, SP, SMILE, 0x80 + 3);
    /* an emoji cut short */
    EXPECT_IDS(tok, "\xf0\x9f\x99", 1, SP, 0xf0 + 3, 0x9f + 3, 0x99 + 3);
    /* NUL is a byte like any other (" " + "a" still merge) */
    expect_ids_len(tok, "a\0b", 3, (const int[]){1, SP_A, 0 + 3, B}, 4);
    /* a lone NUL still gets the dummy prefix (len > 0) */
    expect_ids_len(tok, "\0", 1, (const int[]){1, SP, 3}, 3);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

START_TEST(bpe_hand_decode) {
    binbuf b;
    bb_hand(&b);
    attn_tokenizer *tok = bb_open(&b);
    ck_assert_str_eq(attn_tokenizer_piece(tok, SP_A), " a");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 1), "\n<s>\n");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 3 + 0x41), "<0x41>");
    ck_assert_ptr_null(attn_tokenizer_piece(tok, N_HAND));
    expect_decode(tok, 1, SP_A, "a", 1);    /* after BOS the leading space goes */
    expect_decode(tok, 1, SP, "", 0);
    expect_decode(tok, SP, SP_A, " a", 2);
    expect_decode(tok, -1, SP_A, " a", 2);
    expect_decode(tok, 1, AB, "ab", 2);
    expect_decode(tok, A, 3 + 0x41, "A", 1); /* <0x41> */
    expect_decode(tok, 1, 3 + 0xe9, "\xe9", 1);
    expect_decode(tok, A, 3 + 0x00, "\0", 1);
    expect_decode(tok, A, 1, "\n<s>\n", 5);
    expect_decode(tok, A, N_HAND, "", 0);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

/* Quirks kept from llama2.c: BOS takes part in merges; no " " piece, no dummy
 * prefix; a vocabulary under 259 ids cannot fall back on bytes. */
START_TEST(bpe_quirks) {
    binbuf b;
    memset(&b, 0, sizeof b);
    bb_i32(&b, 8);
    bb_entry(&b, 0, "<unk>");
    bb_entry(&b, 0, "\n<s>\n");
    bb_entry(&b, 0, "\n</s>\n");
    bb_entry(&b, 0, "h");            /* 3 */
    bb_entry(&b, 0, "i");            /* 4 */
    bb_entry(&b, 1, "hi");           /* 5 */
    attn_tokenizer *tok = bb_open(&b);
    /* no " " piece: no dummy prefix */
    EXPECT_IDS(tok, "hi", 1, 5);
    /* 'h' = 0x68: not a piece of its own here -> fallback id 0x68 + 3 = 107 >= 6 ids */
    int *ids = NULL;
    size_t n = 0;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_encode(tok, "hix", 3, &ids, &n, &err), ATTN_ERR_USAGE);
    ck_assert_ptr_null(ids);
    ck_assert_msg(strstr(err.message, "0x78") && strstr(err.message, "offset 2"), "%s",
                  err.message);
    attn_tokenizer_free(tok);
    /* BOS followed by " " merges when "\n<s>\n " is a piece */
    bb_entry(&b, 0, " ");            /* 6 */
    bb_entry(&b, 4, "\n<s>\n ");     /* 7 */
    tok = bb_open(&b);
    /* BOS " " h i: "\n<s>\n " (4) beats "hi" (1), then "hi" */
    EXPECT_IDS(tok, "hi", 7, 5);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

/* llama2.c's merge loop, naively, for comparison with the heap. */
static int naive_lookup(const char **pieces, const int *lens, int n, const char *s, int len) {
    for (int i = 0; i < n; i++)
        if (lens[i] == len && memcmp(pieces[i], s, (size_t)len) == 0) return i;
    return -1;
}

START_TEST(bpe_random_vs_naive) {
    uint64_t seed = 777 + (uint64_t)_i;
    enum { NEXTRA = 120, MAXP = 6 };
    binbuf b;
    bb_base(&b, MAXP);
    const char alpha[] = "abcd ";
    static char store[NEXTRA + 300][MAXP + 1];
    const char *pieces[NEXTRA + 300];
    int lens[NEXTRA + 300];
    float scores[NEXTRA + 300];
    int nv = 0;
    /* base entries */
    for (int i = 0; i < 259; i++) {
        size_t off = b.starts[i] + 4;
        int32_t l = (int32_t)(b.bytes.p[off] | b.bytes.p[off + 1] << 8);
        memcpy(store[nv], b.bytes.p + off + 4, (size_t)l);
        pieces[nv] = store[nv];
        lens[nv] = l;
        scores[nv] = 0;
        nv++;
    }
    for (int i = 0; i < NEXTRA; i++) {
        int l = i < 5 ? 1 : rng_int(&seed, 2, MAXP);
        for (int c = 0; c < l; c++) store[nv][c] = i < 5 ? alpha[i] : alpha[rng_int(&seed, 0, 4)];
        /* few distinct scores, so ties are common; some duplicate texts */
        float s = (float)rng_int(&seed, -4, 4);
        bb_entry_n(&b, s, store[nv], (size_t)l);
        pieces[nv] = store[nv];
        lens[nv] = l;
        scores[nv] = s;
        nv++;
    }
    attn_tokenizer *tok = bb_open(&b);
    for (int t = 0; t < 200; t++) {
        char text[80];
        int tl = rng_int(&seed, 0, 79);
        for (int c = 0; c < tl; c++) text[c] = alpha[rng_int(&seed, 0, 4)];
        /* naive llama2.c */
        int want[100], nw = 0;
        want[nw++] = 1;
        int sp = naive_lookup(pieces, lens, nv, " ", 1);
        if (tl > 0 && sp >= 0) want[nw++] = sp;
        for (int c = 0; c < tl; c++) {
            int id = naive_lookup(pieces, lens, nv, text + c, 1);
            want[nw++] = id >= 0 ? id : (unsigned char)text[c] + 3;
        }
        for (;;) {
            float best = -1e10f;
            int best_id = -1, best_i = -1;
            for (int i = 0; i + 1 < nw; i++) {
                char cat[2 * MAXP + 8];
                int la = lens[want[i]], lb = lens[want[i + 1]];
                memcpy(cat, pieces[want[i]], (size_t)la);
                memcpy(cat + la, pieces[want[i + 1]], (size_t)lb);
                int id = naive_lookup(pieces, lens, nv, cat, la + lb);
                if (id >= 0 && scores[id] > best) {
                    best = scores[id];
                    best_id = id;
                    best_i = i;
                }
            }
            if (best_i < 0) break;
            want[best_i] = best_id;
            memmove(want + best_i + 1, want + best_i + 2, (size_t)(nw - best_i - 2) * sizeof *want);
            nw--;
        }
        expect_ids_len(tok, text, (size_t)tl, want, (size_t)nw);
    }
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

/* A long text stays fast: the heap keeps merging O(n log n). */
START_TEST(bpe_long_text) {
    binbuf b;
    bb_hand(&b);
    attn_tokenizer *tok = bb_open(&b);
    size_t len = 1 << 20;
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < len; i++) text[i] = "abc"[i % 3];
    int *ids;
    size_t n;
    attn_error err;
    ck_assert_int_eq(attn_tokenizer_encode(tok, text, len, &ids, &n, &err), ATTN_OK);
    /* " abcabc...a" (len % 3 == 1): bc (7) merges everywhere first, which
     * removes every "ab" pair; then " a" (2) at the start; then every other
     * a + bc = "abc" (1): BOS " a" bc abc abc ... abc a */
    size_t groups = len / 3;
    ck_assert_uint_eq(n, 1 + 2 + (groups - 1) + 1);
    ck_assert_int_eq(ids[1], SP_A);
    ck_assert_int_eq(ids[2], BC);
    size_t bad = 0; /* one assertion, not 350k (each costs a pipe write in fork mode) */
    for (size_t i = 3; i + 1 < n; i++) bad += ids[i] != ABC;
    ck_assert_uint_eq(bad, 0);
    ck_assert_int_eq(ids[n - 1], A); /* len % 3 == 1: a trailing "a" */
    free(ids);
    free(text);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

/* ---- refusals ---- */

static void bin_refused(const void *p, size_t len, const char *needle1, const char *needle2) {
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    int rc = attn_tokenizer_from_memory(&tok, &tc, p, len, "tok.bin", &err);
    ck_assert_msg(rc == ATTN_ERR_FORMAT, "a %zu-byte file was accepted (expected: %s)", len,
                  needle1);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, "tok.bin"), "message \"%s\" lacks the name", err.message);
    ck_assert_msg(strstr(err.message, needle1), "message \"%s\" lacks \"%s\"", err.message,
                  needle1);
    if (needle2)
        ck_assert_msg(strstr(err.message, needle2), "message \"%s\" lacks \"%s\"", err.message,
                      needle2);
}

static void small_bin(binbuf *b, int32_t max_len) {
    memset(b, 0, sizeof *b);
    bb_i32(b, max_len);
    bb_entry(b, 0, "<unk>");
    bb_entry(b, 0, "\n<s>\n");
    bb_entry(b, 0, "\n</s>\n");
    bb_entry(b, -1.5f, "hello");
}

START_TEST(bpe_truncated) {
    binbuf b;
    small_bin(&b, 6);
    /* the whole file is fine */
    attn_tokenizer *tok = bb_open(&b);
    ck_assert_int_eq(attn_tokenizer_size(tok), 4);
    ck_assert_str_eq(attn_tokenizer_piece(tok, 3), "hello");
    attn_tokenizer_free(tok);
    /* every cut is refused, except at the boundary after the third entry */
    for (size_t cut = 0; cut < b.bytes.n; cut++) {
        char n1[64], n2[64];
        if (cut < 4) {
            bin_refused(b.bytes.p, cut, "at least 4", NULL);
            continue;
        }
        int e = 0;
        while (e + 1 < b.n && b.starts[e + 1] <= cut) e++;
        if (cut == b.starts[e]) {
            if (e == 3) {
                tok = bb_open(&(binbuf){.bytes = {.p = b.bytes.p, .n = cut}});
                ck_assert_int_eq(attn_tokenizer_size(tok), 3);
                attn_tokenizer_free(tok);
            } else {
                snprintf(n1, sizeof n1, "%d entries", e);
                bin_refused(b.bytes.p, cut, n1, "at least 3");
            }
            continue;
        }
        snprintf(n1, sizeof n1, "entry %d is cut short", e);
        snprintf(n2, sizeof n2, "at offset %zu, file ends at %zu)", b.starts[e], cut);
        bin_refused(b.bytes.p, cut, n1, n2);
    }
    /* the last entry cut inside its text: needs 8 + 5 bytes */
    bin_refused(b.bytes.p, b.bytes.n - 1, "needs 13 bytes", NULL);
    bin_refused(b.bytes.p, b.starts[3] + 3, "needs 8 bytes", NULL);
    free(b.bytes.p);
}
END_TEST

START_TEST(bpe_bad_fields) {
    binbuf b;
    /* max_token_length */
    int32_t bad_max[] = {0, -1, 65537, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_max / sizeof *bad_max; i++) {
        small_bin(&b, bad_max[i]);
        char n1[64];
        snprintf(n1, sizeof n1, "max_token_length is %d", (int)bad_max[i]);
        bin_refused(b.bytes.p, b.bytes.n, n1, "1..65536");
        free(b.bytes.p);
    }
    small_bin(&b, 65536);
    attn_tokenizer_free(bb_open(&b));
    free(b.bytes.p);
    /* "\n</s>\n" is 6 bytes: max 5 refuses it at entry 2 */
    small_bin(&b, 6);
    b.bytes.p[0] = 5;
    bin_refused(b.bytes.p, b.bytes.n, "entry 2 has length 6", "1..5");
    free(b.bytes.p);
    /* len 0 and negative */
    int32_t bad_len[] = {0, -1, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_len / sizeof *bad_len; i++) {
        small_bin(&b, 6);
        uint32_t u = (uint32_t)bad_len[i];
        for (int k = 0; k < 4; k++)
            b.bytes.p[b.starts[2] + 4 + (size_t)k] = (unsigned char)(u >> (8 * k));
        char n1[64];
        snprintf(n1, sizeof n1, "entry 2 has length %d", (int)bad_len[i]);
        bin_refused(b.bytes.p, b.bytes.n, n1, NULL);
        free(b.bytes.p);
    }
    /* non-finite scores */
    float bad_score[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        small_bin(&b, 6);
        uint32_t u;
        memcpy(&u, &bad_score[i], 4);
        for (int k = 0; k < 4; k++)
            b.bytes.p[b.starts[1] + (size_t)k] = (unsigned char)(u >> (8 * k));
        bin_refused(b.bytes.p, b.bytes.n, "entry 1", "finite");
        free(b.bytes.p);
    }
    /* too few entries */
    memset(&b, 0, sizeof b);
    bb_i32(&b, 8);
    bin_refused(b.bytes.p, b.bytes.n, "0 entries", "at least 3");
    bb_entry(&b, 0, "<unk>");
    bb_entry(&b, 0, "<s>");
    bin_refused(b.bytes.p, b.bytes.n, "2 entries", "at least 3");
    free(b.bytes.p);
    bin_refused("", 0, "at least 4", NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* stories260K tok512.bin against the Python reference's fixture             */

static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Decodes the fixture's ASCII JSON string at s (starting at the quote) into
 * out; \udc80..\udcff are raw bytes (Python's surrogateescape). Returns the
 * byte length, or (size_t)-1 when malformed; *end gets the char after the quote. */
static size_t json_prompt(const char *s, char *out, const char **end) {
    if (*s++ != '"') return (size_t)-1;
    size_t n = 0;
    while (*s && *s != '"') {
        if (*s != '\\') { out[n++] = *s++; continue; }
        s++;
        char c = *s++;
        switch (c) {
        case '"': case '\\': case '/': out[n++] = c; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            int u = hex4(s);
            if (u < 0) return (size_t)-1;
            s += 4;
            if (u >= 0xD800 && u < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
                int lo = hex4(s + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) return (size_t)-1;
                s += 6;
                n += put_utf8(out + n, 0x10000u + (((unsigned)u - 0xD800u) << 10) + ((unsigned)lo - 0xDC00u));
            } else if (u >= 0xDC80 && u <= 0xDCFF) {
                out[n++] = (char)(u - 0xDC00);
            } else if (u >= 0xD800 && u <= 0xDFFF) {
                return (size_t)-1;
            } else {
                n += put_utf8(out + n, (unsigned)u);
            }
            break;
        }
        default: return (size_t)-1;
        }
    }
    if (*s != '"') return (size_t)-1;
    *end = s + 1;
    return n;
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return false;
        i += k;
    }
    return true;
}

START_TEST(stories260k_fixture) {
    if (access(TOK512, R_OK) != 0) {
        printf("skip: %s is absent, stories260K tokenizer test not run\n", TOK512);
        return;
    }
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    snprintf(tc.path, sizeof tc.path, "%s", TOK512);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_tokenizer_open(&tok, &tc, &err) == ATTN_OK, "%s", err.message);
    /* facts from PROVENANCE.md */
    ck_assert_int_eq(attn_tokenizer_size(tok), 512);
    ck_assert_str_eq(attn_tokenizer_piece(tok, 0), "<unk>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 1), "\n<s>\n");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 2), "\n</s>\n");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 3), "<0x00>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 258), "<0xFF>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 410), " ");

    FILE *f = fopen(FIXTURE, "r");
    ck_assert_msg(f != NULL, "cannot open %s", FIXTURE);
    static char line[1 << 16], prompt[1 << 16], text[1 << 16];
    int prompts = 0, round_trips = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        const char *p;
        size_t plen = json_prompt(line, prompt, &p);
        ck_assert_msg(plen != (size_t)-1 && *p == '\t', "%s:%d: malformed line", FIXTURE, lineno);
        p++;
        int want[4096];
        size_t nw = 0;
        while (*p && *p != '\n') {
            char *e;
            long v = strtol(p, &e, 10);
            ck_assert_msg(e != p && nw < 4096, "%s:%d: bad ids", FIXTURE, lineno);
            want[nw++] = (int)v;
            p = *e == ',' ? e + 1 : e;
        }
        expect_ids_len(tok, prompt, plen, want, nw);
        prompts++;
        /* decoding the ids after BOS gives the text back (the dummy prefix's
         * space is dropped after BOS; byte tokens give back raw bytes) */
        size_t tl = 0;
        for (size_t i = 1; i < nw; i++) {
            char piece[64];
            size_t k = attn_tokenizer_decode(tok, want[i - 1], want[i], piece, sizeof piece);
            memcpy(text + tl, piece, k);
            tl += k;
        }
        if (valid_utf8(prompt, plen)) round_trips++;
        ck_assert_msg(tl == plen && memcmp(text, prompt, plen) == 0,
                      "%s:%d: decode gives \"%.*s\", expected \"%.*s\"", FIXTURE, lineno, (int)tl,
                      text, (int)plen, prompt);
    }
    fclose(f);
    ck_assert_int_ge(prompts, 15);
    ck_assert_int_ge(round_trips, 12);
    attn_tokenizer_free(tok);
}
END_TEST

/* Many entries with the same piece (a hostile or broken file): building the
 * tokenizer must stay linear. It used to walk each duplicate chain to its end
 * before appending, O(n^2): a 9 MB file of 10^6 copies took hours. */
START_TEST(bpe_many_duplicates) {
    const size_t dups = 1000000;
    binbuf b;
    memset(&b, 0, sizeof b);
    bb_i32(&b, 8);
    const char *const special[3] = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int i = 0; i < 3; i++) {
        bb_f32(&b, 0);
        bb_i32(&b, (int32_t)strlen(special[i]));
        bb_raw(&b, special[i], strlen(special[i]));
    }
    for (size_t i = 0; i < dups; i++) {
        bb_f32(&b, (float)i);
        bb_i32(&b, 1);
        bb_raw(&b, "x", 1);
    }
    attn_tokenizer *tok = bb_open(&b);
    ck_assert_int_eq(attn_tokenizer_size(tok), (int)(3 + dups));
    int *ids = NULL;
    size_t n = 0;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_encode(tok, "xx", 2, &ids, &n, &err), ATTN_OK);
    /* BOS, then the lowest id with the piece "x" twice ("xx" is no piece) */
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[1], 3);
    ck_assert_int_eq(ids[2], 3);
    free(ids);
    attn_tokenizer_free(tok);
    free(b.bytes.p);
}
END_TEST

/* ---- limits (docs/model-format.md, "Limits"): the numbers are the table's ---- */

/* n lines: "<unk>", then `tok` `reps` times (distinct when `distinct`: "tN"). */
static char *vocab_lines(size_t n, bool distinct, size_t *len) {
    size_t cap = 16 + n * 12, used = 0;
    char *v = malloc(cap);
    ck_assert_ptr_nonnull(v);
    used += (size_t)snprintf(v, cap, "<unk>\n");
    for (size_t i = 1; i < n; i++)
        used += distinct ? (size_t)snprintf(v + used, cap - used, "t%zu\n", i)
                         : (size_t)snprintf(v + used, cap - used, "a\n");
    *len = used;
    return v;
}

START_TEST(word_limits) {
    /* a token of 65536 bytes is read, one of 65537 refused naming its line */
    size_t n = 6 + 65537 + 1;
    char *v = malloc(n + 1);
    ck_assert_ptr_nonnull(v);
    memcpy(v, "<unk>\n", 6);
    memset(v + 6, 'x', 65536);
    v[6 + 65536] = '\n';
    attn_tokenizer_config tc = word_config(false, "<unk>", NULL, NULL);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_msg(attn_tokenizer_from_memory(&tok, &tc, v, 6 + 65537, "vocab.txt", &err) ==
                      ATTN_OK,
                  "%s", err.message);
    ck_assert_uint_eq(strlen(attn_tokenizer_piece(tok, 1)), 65536);
    attn_tokenizer_free(tok);
    memset(v + 6, 'x', 65537);
    v[6 + 65537] = '\n';
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, v, n, "vocab.txt", &err),
                     ATTN_ERR_FORMAT);
    ck_assert_str_eq(err.message,
                     "vocab.txt:2: token of 65537 bytes is longer than the 65536-byte limit");
    free(v);

    /* 1048576 tokens are read, 1048577 refused by the count */
    size_t len;
    v = vocab_lines(1048576, true, &len);
    ck_assert_msg(attn_tokenizer_from_memory(&tok, &tc, v, len, "vocab.txt", &err) == ATTN_OK,
                  "%s", err.message);
    ck_assert_int_eq(attn_tokenizer_size(tok), 1048576);
    attn_tokenizer_free(tok);
    free(v);
    v = vocab_lines(1048577, false, &len);
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, v, len, "vocab.txt", &err),
                     ATTN_ERR_FORMAT);
    ck_assert_str_eq(err.message,
                     "vocab.txt: 1048577 tokens, more than the limit of 1048576 tokens of a "
                     "vocabulary");
    free(v);
}
END_TEST

START_TEST(bpe_limits) {
    /* 1048577 entries: refused by the count */
    binbuf b;
    memset(&b, 0, sizeof b);
    bb_i32(&b, 8);
    for (size_t i = 0; i < 1048577; i++) {
        bb_f32(&b, 0);
        bb_i32(&b, 1);
        bb_raw(&b, "a", 1);
    }
    attn_tokenizer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.type = ATTN_TOKENIZER_LLAMA2C;
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_from_memory(&tok, &tc, b.bytes.p, b.bytes.n, "tok.bin", &err),
                     ATTN_ERR_FORMAT);
    ck_assert_str_eq(err.message, "tok.bin: more than the limit of 1048576 entries (tokens)");
    free(b.bytes.p);
    /* max_token_length over 65536 names the limit */
    small_bin(&b, 65537);
    bin_refused(b.bytes.p, b.bytes.n, "max_token_length is 65537", "1..65536 (the limit");
    free(b.bytes.p);
}
END_TEST

/* One input text: 1 MiB is encoded (bpe_long_text), one byte more refused. */
START_TEST(text_limit) {
    attn_tokenizer *word = word_tok("<unk>\na\n", false, "<unk>", NULL, NULL);
    binbuf b;
    bb_hand(&b);
    attn_tokenizer *bpe = bb_open(&b);
    const size_t len = (1 << 20) + 1;
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    memset(text, 'a', len);
    attn_tokenizer *toks[2] = {word, bpe};
    for (int k = 0; k < 2; k++) {
        int *ids = (int *)1;
        size_t n = 9;
        attn_error err = {0};
        ck_assert_int_eq(attn_tokenizer_encode(toks[k], text, len, &ids, &n, &err),
                         ATTN_ERR_USAGE);
        ck_assert_ptr_null(ids);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(err.message, "text of 1048577 bytes is longer than the 1048576-byte "
                                      "(1 MiB) limit of one input");
        int *ok = NULL;
        ck_assert_int_eq(attn_tokenizer_encode(toks[k], text, len - 1, &ok, &n, &err), ATTN_OK);
        free(ok);
    }
    free(text);
    free(b.bytes.p);
    attn_tokenizer_free(word);
    attn_tokenizer_free(bpe);
}
END_TEST

/* A vocabulary file over 64 MiB: a sparse one is refused by its size. */
START_TEST(vocab_file_limit) {
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir, "attn-test-tok-");
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    tu_write_file(path, "<unk>\n", 6);
    ck_assert_int_eq(truncate(path, ((off_t)64 << 20) + 1), 0);
    attn_tokenizer_config tc = word_config(false, "<unk>", NULL, NULL);
    snprintf(tc.path, sizeof tc.path, "%s", path);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_open(&tok, &tc, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    char want[700];
    snprintf(want, sizeof want,
             "%s: file is 67108865 bytes, more than the 64 MiB limit of a vocabulary "
             "(67108864 bytes)",
             path);
    ck_assert_str_eq(err.message, want);
    tu_rm_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* gpt2: GPT-2's byte-level BPE on hand-made vocab.json / merges.txt        */

/* The code point of byte b in GPT-2's byte alphabet (encoder.py's
 * bytes_to_unicode, written from its definition): ! .. ~, ¡ .. ¬, ® .. ÿ are
 * themselves, the others U+0100 on in byte order. */
static unsigned g2_char(unsigned b) {
    unsigned n = 0;
    for (unsigned c = 0; c < 256; c++) {
        bool self = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) return self ? c : 0x100 + n;
        if (!self) n++;
    }
    return 0;
}

/* Appends the UTF-8 of code point cp to the string buffer. */
static void g2_put_cp(tu_bytes *o, unsigned cp) {
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800) u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
    else u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
         u[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
    tu_bytes_put(o, u, n);
}

/* A token's raw bytes written in the byte alphabet (JSON-escaped when json). */
static void g2_put_token(tu_bytes *o, const char *raw, size_t n, bool json) {
    for (size_t i = 0; i < n; i++) {
        unsigned c = g2_char((unsigned char)raw[i]);
        if (json && (c == '"' || c == '\\')) tu_bytes_put(o, "\\", 1);
        g2_put_cp(o, c);
    }
}

/* The members of vocab.json: byte b is id b, then extra[i] (raw bytes) is id 256 + i. */
static void g2_put_vocab(tu_bytes *v, const char *const *extra, int n_extra) {
    for (int id = 0; id < 256 + n_extra; id++) {
        char b = (char)id;
        tu_bytes_put(v, id ? ",\"" : "\"", id ? 2 : 1);
        if (id < 256) g2_put_token(v, &b, 1, true);
        else g2_put_token(v, extra[id - 256], strlen(extra[id - 256]), true);
        char num[32];
        int k = snprintf(num, sizeof num, "\": %d", id);
        tu_bytes_put(v, num, (size_t)k);
    }
}

/* vocab.json: byte b is id b, then extra[i] (raw bytes) is id 256 + i.
 * merges.txt: "#version: 0.2", then each merge "A B" (raw bytes, split at
 * the first '|' of the text given). */
static attn_tokenizer *g2_tok(const char *const *extra, int n_extra, const char *const *merges,
                              int n_merges, attn_error *err) {
    tu_bytes v = {0}, m = {0};
    tu_bytes_put(&v, "{", 1);
    g2_put_vocab(&v, extra, n_extra);
    tu_bytes_put(&v, "}\n", 2);
    tu_bytes_put(&m, "#version: 0.2\n", 14);
    for (int i = 0; i < n_merges; i++) {
        const char *bar = strchr(merges[i], '|');
        g2_put_token(&m, merges[i], (size_t)(bar - merges[i]), false);
        tu_bytes_put(&m, " ", 1);
        g2_put_token(&m, bar + 1, strlen(bar + 1), false);
        tu_bytes_put(&m, "\n", 1);
    }
    attn_tokenizer *tok = NULL;
    int rc = attn_tokenizer_gpt2_from_memory(&tok, v.p, v.n, "vocab.json", m.p, m.n, "merges.txt",
                                             err);
    free(v.p);
    free(m.p);
    return rc == ATTN_OK ? tok : NULL;
}

/* Is the gpt2 type built in (PCRE2)? When not, its refusal is checked and
 * the test ends there. */
static bool g2_built_in(void) {
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(NULL, 0, NULL, 0, &err);
    if (tok) {
        attn_tokenizer_free(tok);
        return true;
    }
    ck_assert_msg(strstr(err.message, "not built in") != NULL, "%s", err.message);
    ck_assert_int_eq(err.status, ATTN_ERR_FORMAT);
    return false;
}

static void g2_expect(const attn_tokenizer *tok, const char *text, size_t len, unsigned flags,
                      const int *want, size_t n_want) {
    int *ids = NULL;
    size_t n = 0;
    attn_error err = {0};
    ck_assert_msg(attn_tokenizer_encode_flags(tok, text, len, flags, &ids, &n, &err) == ATTN_OK,
                  "%s", err.message);
    ck_assert_msg(n == n_want, "\"%.*s\": %zu ids, expected %zu", (int)len, text, n, n_want);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "\"%.*s\": id %zu is %d, expected %d", (int)len, text, i,
                      ids[i], want[i]);
    free(ids);
}
#define G2_EXPECT(tok, text, flags, ...)                                                          \
    do {                                                                                          \
        const int want_[] = {__VA_ARGS__};                                                        \
        g2_expect(tok, text, sizeof text - 1, flags, want_, sizeof want_ / sizeof want_[0]);      \
    } while (0)

/* Merges by rank, by hand. */
START_TEST(gpt2_hand_merges) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"he", "ll", "hell", " w", "hello", "bc", "aa", "aaaa"};
    static const char *const merges[] = {"h|e", "l|l", "he|ll", " |w", "hell|o", "b|c", "a|a",
                                         "aa|aa"};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 8, merges, 8, &err);
    ck_assert_msg(tok, "%s", err.message);
    ck_assert_int_eq(attn_tokenizer_size(tok), 264);
    /* "hello": (h,e) rank 0 and (l,l) rank 1 -> he ll; (he,ll) rank 2 -> hell;
     * (hell,o) rank 4 -> hello (260). " world": " w" (259) o r l d. */
    G2_EXPECT(tok, "hello world", 0, 260, 259, 'o', 'r', 'l', 'd');
    /* rank before position: (b,c) rank 5 first, then (a,bc) is no merge */
    G2_EXPECT(tok, "abc", 0, 'a', 261);
    /* a pair that overlaps itself: the leftmost first, as encoder.py */
    G2_EXPECT(tok, "aaa", 0, 262, 'a');
    G2_EXPECT(tok, "aaaaa", 0, 263, 'a');
    /* no merge across pieces: "he" and " hell" are two */
    G2_EXPECT(tok, "h ell", 0, 'h', ' ', 'e', 257);
    g2_expect(tok, "", 0, 0, NULL, 0);
    ck_assert_int_eq(attn_tokenizer_bos(tok), -1);
    ck_assert_int_eq(attn_tokenizer_eos(tok), -1);
    ck_assert_str_eq(attn_tokenizer_piece(tok, 259), " w");
    attn_tokenizer_free(tok);
}
END_TEST

/* \s is Unicode White_Space as in GPT-2's Python `regex` (not JavaScript's):
 * U+0085 is white space, U+FEFF is not. Merges: C2 85 -> X (256), X X -> Y
 * (257); EF BB -> P (258), P BF -> Q (259), Q Q -> R (260). */
START_TEST(gpt2_white_space) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"\xc2\x85", "\xc2\x85\xc2\x85", "\xef\xbb",
                                        "\xef\xbb\xbf", "\xef\xbb\xbf\xef\xbb\xbf", "  "};
    static const char *const merges[] = {"\xc2|\x85", "\xc2\x85|\xc2\x85", "\xef|\xbb",
                                         "\xef\xbb|\xbf", "\xef\xbb\xbf|\xef\xbb\xbf", " | "};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 6, merges, 6, &err);
    ck_assert_msg(tok, "%s", err.message);
    /* "a" "\u0085" "\u0085" "b": \s+(?!\S) leaves the last one before "b" to \s+ */
    G2_EXPECT(tok, "a\xc2\x85\xc2\x85" "b", 0, 'a', 256, 256, 'b');
    /* at the end of the text the run stays whole */
    G2_EXPECT(tok, "a\xc2\x85\xc2\x85", 0, 'a', 257);
    /* U+FEFF is neither white space, letter nor number: one "other" run */
    G2_EXPECT(tok, "a\xef\xbb\xbf\xef\xbb\xbf" "b", 0, 'a', 260, 'b');
    /* ASCII: "a", "  " (ids 261), " b" -> ' ' 'b'; three spaces at the end stay one piece */
    G2_EXPECT(tok, "a   b", 0, 'a', 261, ' ', 'b');
    G2_EXPECT(tok, "a\t\t b", 0, 'a', '\t', '\t', ' ', 'b');
    G2_EXPECT(tok, "x  ", 0, 'x', 261);
    /* contractions are case-sensitive and go before letters */
    G2_EXPECT(tok, "it's", 0, 'i', 't', '\'', 's');
    attn_tokenizer_free(tok);
}
END_TEST

/* <|endoftext|> only with ATTN_ENCODE_SPECIAL; invalid UTF-8 gets U+FFFD per
 * maximal subpart; decoding gives the bytes. */
START_TEST(gpt2_special_invalid_decode) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"<|endoftext|>", "<|end|>"};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 2, NULL, 0, &err);
    ck_assert_msg(tok, "%s", err.message);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 256);
    G2_EXPECT(tok, "a<|endoftext|>b", ATTN_ENCODE_SPECIAL, 'a', 256, 'b');
    G2_EXPECT(tok, "<|end|><|endoftext|", ATTN_ENCODE_SPECIAL, 257, '<', '|', 'e', 'n', 'd', 'o',
              'f', 't', 'e', 'x', 't', '|');
    G2_EXPECT(tok, "a<|end|>", 0, 'a', '<', '|', 'e', 'n', 'd', '|', '>');
    G2_EXPECT(tok, "a<|end|>", ATTN_ENCODE_NO_SPECIAL, 'a', '<', '|', 'e', 'n', 'd', '|', '>');
    int *ids;
    size_t n;
    ck_assert_int_eq(attn_tokenizer_encode_flags(tok, "a", 1,
                                                 ATTN_ENCODE_SPECIAL | ATTN_ENCODE_NO_SPECIAL,
                                                 &ids, &n, &err),
                     ATTN_ERR_USAGE);
    /* U+FFFD is EF BF BD: FF alone; E2 82 (a cut-short prefix) as one; C0 AF as
     * two (C0 never starts a character); ED A0 80 as three (a surrogate: ED's
     * second byte is at most 9F) */
#define FFFD 0xEF, 0xBF, 0xBD
    G2_EXPECT(tok, "\xff", 0, FFFD);
    G2_EXPECT(tok, "x\xe2\x82", 0, 'x', FFFD);
    G2_EXPECT(tok, "\xc0\xaf", 0, FFFD, FFFD);
    G2_EXPECT(tok, "\xed\xa0\x80", 0, FFFD, FFFD, FFFD);
    G2_EXPECT(tok, "\xf0\x9f\x98" "a", 0, FFFD, 'a');
#undef FFFD
    /* decoding: the bytes, NUL too */
    char buf[16];
    ck_assert_uint_eq(attn_tokenizer_decode(tok, -1, 0, buf, sizeof buf), 1);
    ck_assert_int_eq(buf[0], 0);
    ck_assert_uint_eq(attn_tokenizer_decode(tok, -1, 0xE9, buf, sizeof buf), 1);
    ck_assert_int_eq((unsigned char)buf[0], 0xE9);
    ck_assert_uint_eq(attn_tokenizer_decode(tok, -1, 256, buf, sizeof buf), 13);
    ck_assert_str_eq(buf, "<|endoftext|>");
    ck_assert_uint_eq(attn_tokenizer_decode(tok, -1, 256, buf, 5), 4);
    ck_assert_str_eq(buf, "<|en");
    ck_assert_str_eq(attn_tokenizer_piece(tok, ' '), " ");
    attn_tokenizer_free(tok);
}
END_TEST

/* One malformed vocab.json or merges.txt: the status and the message. */
static void g2_refused(const char *vocab, const char *merges, const char *want) {
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    int rc = attn_tokenizer_gpt2_from_memory(&tok, vocab, strlen(vocab), "vocab.json", merges,
                                             strlen(merges), "merges.txt", &err);
    ck_assert_int_eq(rc, ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, want) != NULL, "message \"%s\" lacks \"%s\"", err.message,
                  want);
}

START_TEST(gpt2_refusals) {
    if (!g2_built_in()) return;
    /* a good vocabulary as text, to break in one place */
    tu_bytes v = {0};
    tu_bytes_put(&v, "{", 1);
    for (int id = 0; id < 256; id++) {
        char b = (char)id;
        tu_bytes_put(&v, id ? ",\n\"" : "\"", id ? 3 : 1);
        g2_put_token(&v, &b, 1, true);
        char num[32];
        int k = snprintf(num, sizeof num, "\": %d", id);
        tu_bytes_put(&v, num, (size_t)k);
    }
    char *good = malloc(v.n + 64);
    memcpy(good, v.p, v.n);
    good[v.n] = '\0';
    char buf[8192];
    snprintf(buf, sizeof buf, "%s}", good);
    /* merges: the formats that are fine */
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    const char *ok_merges[] = {"", "#version: 0.2\n", "a b", "a b\r\n", "#version: 0.2\r\na b\n"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "%s, \"ab\": 256}", good);
        ck_assert_msg(attn_tokenizer_gpt2_from_memory(&tok, buf, strlen(buf), "v", ok_merges[i],
                                                      strlen(ok_merges[i]), "m", &err) == ATTN_OK,
                      "%s", err.message);
        attn_tokenizer_free(tok);
    }
    snprintf(buf, sizeof buf, "%s, \"ab\": 256}", good);
    g2_refused(buf, "a b\n\nb a\n", "merges.txt: line 2: expected two tokens separated by one space");
    g2_refused(buf, "#version: 0.2\na  b\n", "merges.txt: line 2: expected two tokens");
    g2_refused(buf, "a\tb\n", "merges.txt: line 1: expected two tokens");
    g2_refused(buf, "a b c\n", "merges.txt: line 1: expected two tokens");
    g2_refused(buf, "a b\nb a\n", "merges.txt: line 2: the merged pair of \"b a\" is not in the vocabulary");
    g2_refused(buf, "a b\nx \xe4\xb8\x80\n", "merges.txt: line 2: U+4E00 is not one of GPT-2's 256 byte characters");
    g2_refused(buf, "#version: 0.2\na b\na b\n", "merges.txt: line 3: the merge \"a b\" is already on line 2");
    g2_refused(buf, "a b\n\xff b\n", "merges.txt: line 2: not valid UTF-8");
    /* vocab.json */
    g2_refused("{\"a\": 0,\n \"b\" 1}", "", "vocab.json: malformed JSON near line 2, column 6");
    g2_refused("[1, 2]", "", "vocab.json: expected a JSON object (token -> id) at the top level, got an array");
    g2_refused("{}", "", "vocab.json: the object has no tokens");
    g2_refused("{\"a\": 0.5}", "", "vocab.json: token \"a\" (entry 0): expected an integer id in 0..1048575, got another number");
    g2_refused("{\"a\": \"0\"}", "", "got a string");
    g2_refused("{\"a\": -1}", "", "expected an integer id");
    g2_refused("{\"a\": 0, \"b\": 0}", "", "vocab.json: id 0 is given to two tokens (\"b\" and \"a\")");
    g2_refused("{\"a\": 0, \"b\": 5}", "", "vocab.json: token \"b\" has id 5, but the file has 2 tokens");
    g2_refused("{\"a\": 0, \"a\": 1}", "", "vocab.json: token \"a\" is listed twice (ids 0 and 1)");
    g2_refused("{\"\": 0}", "", "vocab.json: entry 0 (id 0): a token has 1..65536 bytes, this one 0");
    g2_refused("{\"a \": 0}", "", "vocab.json: token \"a \" (id 0) has U+0020, which is not one of GPT-2's 256 byte characters");
    g2_refused("{\"a\": 0}", "", "vocab.json: no token for byte 0x00 alone (U+0100 in the byte alphabet)");
    snprintf(buf, sizeof buf, "%s}", good);
    buf[2] = (char)0xC2; /* byte 0 ("Ā", C4 80) becomes C2 80 = U+0080: not in the alphabet */
    g2_refused(buf, "", "has U+0080, which is not one of");
    free(good);
    free(v.p);
}
END_TEST

/* Long pieces (the heap, past the cache) and many pieces (the cache's growth)
 * give the same ids as the same pieces one by one. */
START_TEST(gpt2_long_and_many) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"ab", "abab", " x", "ba"};
    static const char *const merges[] = {"a|b", "ab|ab", " |x", "b|a"};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 4, merges, 4, &err);
    ck_assert_msg(tok, "%s", err.message);
    /* "ab" * 1001: (a,b) everywhere, then (ab,ab) left to right: 500 abab + ab */
    size_t len = 2002;
    char *t = malloc(len);
    for (size_t i = 0; i < len; i++) t[i] = i % 2 ? 'b' : 'a';
    int *ids;
    size_t n;
    ck_assert_int_eq(attn_tokenizer_encode(tok, t, len, &ids, &n, &err), ATTN_OK);
    ck_assert_uint_eq(n, 501);
    for (size_t i = 0; i < 500; i++) ck_assert_int_eq(ids[i], 257);
    ck_assert_int_eq(ids[500], 256);
    free(ids);
    free(t);
    /* 30000 distinct pieces " x<number>" and repeats */
    tu_bytes b = {0};
    for (int i = 0; i < 30000; i++) {
        char w[32];
        int k = snprintf(w, sizeof w, " x%d", i % 20000);
        tu_bytes_put(&b, w, (size_t)k);
    }
    ck_assert_int_eq(attn_tokenizer_encode(tok, (const char *)b.p, b.n, &ids, &n, &err), ATTN_OK);
    /* each " x" + number: " x" (258), then the digits ' ' ... as bytes */
    size_t k = 0;
    for (int i = 0; i < 30000; i++) {
        char w[32];
        int m = snprintf(w, sizeof w, "%d", i % 20000);
        ck_assert_int_eq(ids[k++], 258);
        for (int j = 0; j < m; j++) ck_assert_int_eq(ids[k++], w[j]);
    }
    ck_assert_uint_eq(k, n);
    free(ids);
    free(b.p);
    attn_tokenizer_free(tok);
}
END_TEST

/* Pieces that start in ASCII and go on into a non-ASCII letter or space are
 * cut whole (the ASCII fast path hands them to PCRE2): merges across the
 * boundary show it. f C3 -> 256, ' ' C3 -> 257 ("é" is C3 A9). */
START_TEST(gpt2_ascii_then_unicode) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"f\xc3", " \xc3"};
    static const char *const merges[] = {"f|\xc3", " |\xc3"};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 2, merges, 2, &err);
    ck_assert_msg(tok, "%s", err.message);
    G2_EXPECT(tok, "caf\xc3\xa9", 0, 'c', 'a', 256, 0xA9);         /* one piece "café" */
    G2_EXPECT(tok, "x \xc3\xa9", 0, 'x', 257, 0xA9);               /* " é" */
    G2_EXPECT(tok, "caf\xc3\xa9 caf", 0, 'c', 'a', 256, 0xA9, ' ', 'c', 'a', 'f');
    /* "a", " " (U+3000 follows: \s+(?!\S) keeps one back), U+3000, "b" */
    G2_EXPECT(tok, "a \xe3\x80\x80" "b", 0, 'a', ' ', 0xE3, 0x80, 0x80, 'b');
    /* "'" then "é": no contraction, "'" alone */
    G2_EXPECT(tok, "'\xc3\xa9", 0, '\'', 0xC3, 0xA9);
    /* digits then a non-ASCII digit (U+0663 ARABIC-INDIC THREE: \p{N}) */
    static const char *const extra2[] = {"1\xd9"};
    static const char *const merges2[] = {"1|\xd9"};
    attn_tokenizer *tok2 = g2_tok(extra2, 1, merges2, 1, &err);
    ck_assert_msg(tok2, "%s", err.message);
    G2_EXPECT(tok2, "21\xd9\xa3", 0, '2', 256, 0xA3);
    attn_tokenizer_free(tok2);
    attn_tokenizer_free(tok);
}
END_TEST

/* The cache of pieces lasts from call to call and is emptied when full
 * (65,536 pieces): more distinct pieces than that, one call each, still
 * give the right ids, and a piece cached before gives the same ids after. */
START_TEST(gpt2_cache_across_calls) {
    if (!g2_built_in()) return;
    static const char *const extra[] = {"he", "ll", "hell", " w", "hello"};
    static const char *const merges[] = {"h|e", "l|l", "he|ll", " |w", "hell|o"};
    attn_error err = {0};
    attn_tokenizer *tok = g2_tok(extra, 5, merges, 5, &err);
    ck_assert_msg(tok, "%s", err.message);
    G2_EXPECT(tok, "hello world", 0, 260, 259, 'o', 'r', 'l', 'd');
    for (int i = 0; i < 70000; i++) {
        char w[32];
        int k = snprintf(w, sizeof w, " w%dhello", i);
        int *ids;
        size_t n;
        ck_assert_int_eq(attn_tokenizer_encode(tok, w, (size_t)k, &ids, &n, &err), ATTN_OK);
        /* " w" (259), the digits, "hello" (260) */
        ck_assert_uint_eq(n, (size_t)k - 7 + 2);
        ck_assert_int_eq(ids[0], 259);
        for (int j = 2; j < k - 5; j++) ck_assert_int_eq(ids[j - 1], w[j]);
        ck_assert_int_eq(ids[n - 1], 260);
        free(ids);
    }
    G2_EXPECT(tok, "hello world", 0, 260, 259, 'o', 'r', 'l', 'd');
    attn_tokenizer_free(tok);
}
END_TEST

/* ---- hf: Hugging Face tokenizer.json ---- */

/* A tokenizer.json with g2_tok's vocabulary (bytes, then extra[]) and merges
 * (as "A B" strings, or as ["A", "B"] pairs), GPT-2's parts; `front` (JSON
 * members, each followed by a comma) comes first, so that a part it names
 * replaces the default one (cJSON reads the first of two equal keys). */
static char *hf_json(const char *front, const char *const *extra, int n_extra,
                     const char *const *merges, int n_merges, bool pairs) {
    tu_bytes j = {0};
    tu_bytes_put(&j, "{", 1);
    tu_bytes_put(&j, front, strlen(front));
    static const char parts[] =
        "\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
        "\"trim_offsets\":true,\"use_regex\":true},"
        "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
        "\"trim_offsets\":false,\"use_regex\":true},"
        "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
        "\"use_regex\":true},"
        "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
        "\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":\"\",\"fuse_unk\":false,"
        "\"byte_fallback\":false,\"vocab\":{";
    tu_bytes_put(&j, parts, sizeof parts - 1);
    g2_put_vocab(&j, extra, n_extra);
    tu_bytes_put(&j, "},\"merges\":[", 12);
    for (int i = 0; i < n_merges; i++) {
        const char *bar = strchr(merges[i], '|');
        tu_bytes_put(&j, i ? "," : "", i ? 1 : 0);
        tu_bytes_put(&j, pairs ? "[\"" : "\"", pairs ? 2 : 1);
        g2_put_token(&j, merges[i], (size_t)(bar - merges[i]), true);
        tu_bytes_put(&j, pairs ? "\",\"" : " ", pairs ? 3 : 1);
        g2_put_token(&j, bar + 1, strlen(bar + 1), true);
        tu_bytes_put(&j, pairs ? "\"]" : "\"", pairs ? 2 : 1);
    }
    tu_bytes_put(&j, "]}}", 4); /* with the NUL */
    return (char *)j.p;
}

static int hf_open(attn_tokenizer **tok, const char *json, attn_error *err) {
    static const attn_tokenizer_config tc = {.type = ATTN_TOKENIZER_HF};
    return attn_tokenizer_from_memory(tok, &tc, json, strlen(json), "tokenizer.json", err);
}

static const char *const hf_extra[] = {"he", "ll", "hell", " w", "hello", "bc", "aa", "aaaa"};
static const char *const hf_merges[] = {"h|e", "l|l", "he|ll", " |w", "hell|o", "b|c", "a|a",
                                        "aa|aa"};

/* The ids of gpt2_hand_merges from a tokenizer.json, merges as strings and as pairs. */
START_TEST(hf_byte_level) {
    if (!g2_built_in()) return;
    for (int pairs = 0; pairs < 2; pairs++) {
        char *j = hf_json("", hf_extra, 8, hf_merges, 8, pairs);
        attn_tokenizer *tok = NULL;
        attn_error err = {0};
        ck_assert_msg(hf_open(&tok, j, &err) == ATTN_OK, "%s", err.message);
        ck_assert_int_eq(attn_tokenizer_size(tok), 264);
        G2_EXPECT(tok, "hello world", 0, 260, 259, 'o', 'r', 'l', 'd');
        G2_EXPECT(tok, "abc", 0, 'a', 261);
        G2_EXPECT(tok, "aaaaa", 0, 263, 'a');
        G2_EXPECT(tok, "h ell", 0, 'h', ' ', 'e', 257);
        ck_assert_str_eq(attn_tokenizer_piece(tok, 259), " w");
        char buf[16];
        ck_assert_uint_eq(attn_tokenizer_decode(tok, -1, 259, buf, sizeof buf), 2);
        ck_assert_str_eq(buf, " w");
        attn_tokenizer_free(tok);
        free(j);
    }
    /* an added token that is the vocabulary's: <|endoftext|> at 256, special with the flag */
    static const char *const eot[] = {"<|endoftext|>"};
    char *j = hf_json("\"added_tokens\":[{\"id\":256,\"content\":\"<|endoftext|>\",\"special\":true}],",
                      eot, 1, NULL, 0, false);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_msg(hf_open(&tok, j, &err) == ATTN_OK, "%s", err.message);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 256);
    G2_EXPECT(tok, "a<|endoftext|>", ATTN_ENCODE_SPECIAL, 'a', 256);
    G2_EXPECT(tok, "<|", 0, '<', '|');
    attn_tokenizer_free(tok);
    free(j);
}
END_TEST

static void hf_refused(const char *front, bool pairs, const char *const *merges, int n_merges,
                       const char *want) {
    char *j = hf_json(front, hf_extra, 8, merges, n_merges, pairs);
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    ck_assert_int_eq(hf_open(&tok, j, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(err.message, want) != NULL, "message \"%s\" lacks \"%s\"", err.message,
                  want);
    ck_assert_msg(strncmp(err.message, "tokenizer.json", 14) == 0, "%s", err.message);
    free(j);
}

/* Every part attn does not implement is refused, named by its JSON path. */
START_TEST(hf_refusals) {
    if (!g2_built_in()) return;
    static const struct {
        const char *front, *want;
    } cases[] = {
        {"\"normalizer\":{\"type\":\"NFC\"},",
         "normalizer: type \"NFC\" is not supported"},
        {"\"pre_tokenizer\":{\"type\":\"Metaspace\"},", /* the Llama form, GPT-2's other parts */
         "post_processor: type \"ByteLevel\" is not supported (attn reads: null, "
         "TemplateProcessing)"},
        {"\"pre_tokenizer\":{\"type\":\"Split\"},",
         "pre_tokenizer: type \"Split\" is not supported"},
        {"\"pre_tokenizer\":null,",
         "pre_tokenizer: null"},
        {"\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true},",
         "pre_tokenizer.add_prefix_space: true is not supported"},
        {"\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},",
         "pre_tokenizer.use_regex: false"},
        {"\"post_processor\":{\"type\":\"TemplateProcessing\"},",
         "post_processor: type \"TemplateProcessing\""},
        {"\"decoder\":{\"type\":\"Sequence\"},",
         "decoder: type \"Sequence\""},
        {"\"decoder\":[],",
         "decoder: expected null or an object"},
        {"\"truncation\":{\"max_length\":5},",
         "truncation: an object"},
        {"\"model\":{\"type\":\"WordPiece\"},",
         "model: type \"WordPiece\" is not supported"},
        {"\"model\":{\"byte_fallback\":true},",
         "model.byte_fallback: true is not supported"},
        {"\"model\":{\"unk_token\":\"<unk>\"},",
         "model.unk_token: a string \"<unk>\""},
        {"\"model\":{\"continuing_subword_prefix\":\"##\"},",
         "model.continuing_subword_prefix"},
        {"\"model\":{\"merges\":[]},",
         "model.vocab: missing"},
        {"\"model\":{\"vocab\":{},\"merges\":{}},",
         "model.merges: expected an array"},
        {"\"model\":{\"vocab\":{},\"merges\":[\"a b\",7]},",
         "model.merges[1]: expected a string"},
        {"\"model\":{\"vocab\":{},\"merges\":[[\"a\",\"b c\"]]},",
         "model.merges[0]: a token of a pair"},
        {"\"model\":{\"vocab\":{\"a\":1.5},\"merges\":[]},",
         "tokenizer.json: model.vocab: token \"a\""},
        {"\"model\":3,",
         "model: expected an object"},
        {"\"added_tokens\":[{\"id\":300,\"content\":\"<x>\"}],",
         "added_tokens[0]: \"<x>\" (id 300) is not model.vocab's token"},
        {"\"added_tokens\":[{\"id\":0}],",
         "added_tokens[0]: expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        hf_refused(cases[i].front, false, hf_merges, 8, cases[i].want);
    static const char *const bad[] = {"h|e", "q|z"}; /* "qz" is not in the vocabulary */
    hf_refused("", false, bad, 2, "model.merges (line N is model.merges[N-1]): line 2");
    hf_refused("", true, bad, 2, "line 2: the merged pair of \"q z\" is not in the vocabulary");
    /* malformed JSON: the line and column */
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_int_eq(hf_open(&tok, "{\n  \"model\": [1,\n", &err), ATTN_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "tokenizer.json: malformed JSON near line 2") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(hf_open(&tok, "[1]", &err), ATTN_ERR_FORMAT);
    ck_assert_msg(strstr(err.message, "(top level): expected an object") != NULL, "%s",
                  err.message);
}
END_TEST

/* ---- hf: a Llama-style tokenizer.json (SentencePiece converted to BPE) ---- */

/* Ids: 0 <unk>, 1 <s>, 2 </s>, 3 + b the byte b as <0xBB>, then 259 "▁",
 * 260 "a", 261 "b", 262 "c", 263 "▁a", 264 "ab", 265 "▁ab", 266 "bc",
 * 267 "▁▁", 268 "é". Merges by rank: "▁ a", "b c", "a b", "▁a b", "▁ ▁".
 * Llama 2's parts; `front` (JSON members, each with a comma) replaces them. */
#define U2581 "\xe2\x96\x81"
static char *ll_json(const char *front) {
    tu_bytes j = {0};
    tu_bytes_put(&j, "{", 1);
    tu_bytes_put(&j, front, strlen(front));
    static const char parts[] =
        "\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
        "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,"
        "\"rstrip\":false,\"normalized\":false,\"special\":true},"
        "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\","
        "\"special\":true}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
        "\"prepend\":\"" U2581 "\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
        "\"content\":\"" U2581 "\"}]},"
        "\"pre_tokenizer\":null,"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
        "{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
        "\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":"
        "{\"String\":\"" U2581 "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":"
        "\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
        "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
        "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,"
        "\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2";
    tu_bytes_put(&j, parts, sizeof parts - 1);
    for (int b = 0; b < 256; b++) {
        char e[32];
        int n = snprintf(e, sizeof e, ",\"<0x%02X>\":%d", b, 3 + b);
        tu_bytes_put(&j, e, (size_t)n);
    }
    static const char rest[] =
        ",\"" U2581 "\":259,\"a\":260,\"b\":261,\"c\":262,\"" U2581 "a\":263,\"ab\":264,"
        "\"" U2581 "ab\":265,\"bc\":266,\"" U2581 U2581 "\":267,\"\xc3\xa9\":268},"
        "\"merges\":[\"" U2581 " a\",\"b c\",[\"a\",\"b\"],\"" U2581 "a b\",\"" U2581 " " U2581
        "\"]}}";
    tu_bytes_put(&j, rest, sizeof rest); /* with the NUL */
    return (char *)j.p;
}

static attn_tokenizer *ll_open(const char *front) {
    char *j = ll_json(front);
    attn_tokenizer *tok = NULL;
    attn_error err = {0};
    ck_assert_msg(hf_open(&tok, j, &err) == ATTN_OK, "%s", err.message);
    free(j);
    return tok;
}

static void ll_decodes(const attn_tokenizer *tok, int prev, int id, const char *want) {
    char buf[32];
    size_t n = attn_tokenizer_decode(tok, prev, id, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_str_eq(buf, want);
}

/* Ids worked out by hand from the merge ranks above. */
START_TEST(hf_llama_hand) {
    attn_tokenizer *tok = ll_open("");
    ck_assert_int_eq(attn_tokenizer_size(tok), 269);
    ck_assert_int_eq(attn_tokenizer_bos(tok), 1);
    ck_assert_int_eq(attn_tokenizer_eos(tok), 2);
    /* "▁abc": ▁+a (rank 0), then b+c (rank 1) before a+b (2) and ▁a+b (3) */
    G2_EXPECT(tok, "abc", 0, 1, 263, 266);
    G2_EXPECT(tok, "ab", 0, 1, 265);              /* ▁+a, then ▁a+b */
    G2_EXPECT(tok, " a", 0, 1, 259, 263);         /* "▁▁a": ▁+a (0) before ▁+▁ (4) */
    G2_EXPECT(tok, "  ", 0, 1, 267, 259);         /* "▁▁▁": the leftmost ▁+▁ */
    G2_EXPECT(tok, "d", 0, 1, 259, 3 + 'd');      /* byte fallback */
    G2_EXPECT(tok, "\xc3\xa9\xc3\xbc", 0, 1, 259, 268, 3 + 0xC3, 3 + 0xBC); /* é, ü */
    G2_EXPECT(tok, "\xff", 0, 1, 259, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD);      /* U+FFFD */
    G2_EXPECT(tok, "", 0, 1);
    /* </s> is text without --special, the token with it; each stretch gets its ▁ */
    G2_EXPECT(tok, "a</s>", 0, 1, 263, 3 + '<', 3 + '/', 3 + 's', 3 + '>');
    G2_EXPECT(tok, "a</s>", ATTN_ENCODE_SPECIAL, 1, 263, 2);
    G2_EXPECT(tok, "<s>a b", ATTN_ENCODE_SPECIAL, 1, 1, 263, 259, 261);
    /* decoding: ▁ as a space, the first token's (or the one after BOS) dropped */
    ll_decodes(tok, -1, 263, "a");
    ll_decodes(tok, 1, 263, "a");
    ll_decodes(tok, 260, 263, " a");
    ll_decodes(tok, 1, 259, "");
    ll_decodes(tok, 260, 267, "  ");
    ll_decodes(tok, 260, 3 + 'd', "d");
    ll_decodes(tok, 260, 3 + 0xC3, "\xc3");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 263), " a");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 3 + 'd'), "<0x64>");
    ck_assert_str_eq(attn_tokenizer_piece(tok, 1), "<s>");
    attn_tokenizer_free(tok);

    /* no byte fallback: one <unk> for a run (fuse_unk), or one each */
    tok = ll_open("\"model\":{\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":false,"
                  "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"a\":2,\"" U2581 "\":3},\"merges\":[]},"
                  "\"added_tokens\":[],\"post_processor\":null,");
    G2_EXPECT(tok, "dda", 0, 3, 0, 2);
    ck_assert_int_eq(attn_tokenizer_bos(tok), -1);
    attn_tokenizer_free(tok);
    tok = ll_open("\"model\":{\"unk_token\":\"<unk>\",\"fuse_unk\":false,"
                  "\"vocab\":{\"<unk>\":0,\"a\":1,\"" U2581 "\":2},\"merges\":[]},"
                  "\"added_tokens\":[],\"post_processor\":null,");
    G2_EXPECT(tok, "dda", 0, 2, 0, 0, 1);
    attn_tokenizer_free(tok);
}
END_TEST

/* The older form: pre_tokenizer Metaspace, decoder Metaspace. */
START_TEST(hf_llama_metaspace) {
    static const char meta[] = "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\","
                               "\"replacement\":\"" U2581 "\",\"add_prefix_space\":true%s},"
                               "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"" U2581
                               "\",\"add_prefix_space\":true},";
    char front[512];
    snprintf(front, sizeof front, meta, ",\"split\":false");
    attn_tokenizer *tok = ll_open(front);
    G2_EXPECT(tok, " a", 0, 1, 263);              /* starts with ▁: none put in front */
    G2_EXPECT(tok, "a  b", 0, 1, 263, 267, 261);  /* "▁a▁▁b", one word */
    G2_EXPECT(tok, "<s>a", ATTN_ENCODE_SPECIAL, 1, 1, 263);
    ll_decodes(tok, -1, 267, "");                 /* every ▁ of the first token dropped */
    ll_decodes(tok, 260, 267, "  ");
    ll_decodes(tok, 260, 3 + 'd', "<0x64>");      /* no ByteFallback decoder */
    attn_tokenizer_free(tok);
    snprintf(front, sizeof front, meta, ""); /* split: true by default */
    tok = ll_open(front);
    G2_EXPECT(tok, "a  b", 0, 1, 263, 259, 259, 261); /* "▁a", "▁", "▁b" */
    attn_tokenizer_free(tok);
    /* prepend_scheme "first": only the stretch at the text's start */
    tok = ll_open("\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\","
                  "\"prepend_scheme\":\"first\",\"split\":false},");
    G2_EXPECT(tok, "a<s>a", ATTN_ENCODE_SPECIAL, 1, 263, 1, 260);
    G2_EXPECT(tok, "a<s>a", 0, 1, 263, 3 + '<', 3 + 's', 3 + '>', 260);
    attn_tokenizer_free(tok);
}
END_TEST

static void ll_refused(const char *front, const char *want) {
    char *j = ll_json(front);
    attn_tokenizer *tok = (attn_tokenizer *)1;
    attn_error err = {0};
    ck_assert_int_eq(hf_open(&tok, j, &err), ATTN_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strncmp(err.message, "tokenizer.json: ", 16) == 0 &&
                      strstr(err.message, want) != NULL && !strchr(err.message, '\n'),
                  "message \"%s\" lacks \"%s\"", err.message, want);
    free(j);
}

/* Each Llama-form part attn does not implement, named by its JSON path. */
START_TEST(hf_llama_refusals) {
    static const struct {
        const char *front, *want;
    } cases[] = {
        {"\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"},{}]},",
         "normalizer.normalizers[0]: type \"Lowercase\" is not supported"},
        {"\"normalizer\":{\"type\":\"NFKC\"},", "normalizer: type \"NFKC\" is not supported"},
        {"\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
         "\"prepend\":\"_\"},{}]},",
         "normalizer.normalizers[0].prepend: \"_\" is not supported"},
        {"\"pre_tokenizer\":{\"type\":\"Whitespace\"},",
         "pre_tokenizer: type \"Whitespace\" is not supported"},
        {"\"normalizer\":null,", "pre_tokenizer: null is not supported with normalizer null"},
        {"\"pre_tokenizer\":{\"type\":\"Metaspace\"},",
         "normalizer: must be null with pre_tokenizer Metaspace"},
        {"\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\"},",
         "pre_tokenizer.replacement: \"_\" is not supported"},
        {"\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"prepend_scheme\":"
         "\"x\"},",
         "pre_tokenizer.prepend_scheme: expected"},
        {"\"model\":{\"type\":\"Unigram\"},", "model: type \"Unigram\" is not supported"},
        {"\"model\":{\"ignore_merges\":true},", "model.ignore_merges: true is not supported"},
        {"\"model\":{\"dropout\":0.1},", "model.dropout: a number is not supported"},
        {"\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"byte_fallback\":true},"
         "\"added_tokens\":[],\"post_processor\":null,",
         "model.byte_fallback: true, but model.vocab has no token \"<0x00>\""},
        {"\"model\":{\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":\"<nope>\"},\"added_tokens\":"
         "[],\"post_processor\":null,",
         "model.unk_token: \"<nope>\" is not in model.vocab"},
        {"\"model\":{\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]},\"added_tokens\":[],"
         "\"post_processor\":null,",
         "model.merges[0]: the merged token \"ab\" is not in model.vocab"},
        {"\"model\":{\"vocab\":{\"a\":0,\"aa\":1},\"merges\":[\"a a\",\"a a\"]},\"added_tokens\":[],"
         "\"post_processor\":null,",
         "model.merges[1]: the pair is already model.merges[0]"},
        {"\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"a\"]},\"added_tokens\":[],"
         "\"post_processor\":null,",
         "model.merges[0]: expected a string \"A B\""},
        {"\"model\":{\"foo\":1},", "model.foo: is not read by attn"},
        {"\"post_processor\":{\"type\":\"RobertaProcessing\"},",
         "post_processor: type \"RobertaProcessing\" is not supported"},
        {"\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":"
         "\"A\"}},{\"Sequence\":{\"id\":\"B\"}}]},",
         "post_processor.single[1]: not supported"},
        {"\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":"
         "\"<s>\"}},{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{}},",
         "post_processor.special_tokens.<s>: expected"},
        {"\"decoder\":null,", "decoder: null is not supported"},
        {"\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{},{}]},",
         "decoder.decoders: expected 3 or 4 decoders"},
        {"\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\"},{\"type\":"
         "\"Fuse\"},{},{}]},",
         "decoder.decoders[1]: type \"Fuse\" is not supported (attn reads: ByteFallback)"},
        {"\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":"
         "{\"String\":\"" U2581 "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":"
         "\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":2,\"stop\":0}]},",
         "decoder.decoders[3]: expected start 1 and stop 0"},
        {"\"added_tokens\":[{\"id\":1,\"content\":\"<s>\",\"lstrip\":true}],",
         "added_tokens[0].lstrip: true is not supported"},
        {"\"added_tokens\":[{\"id\":5,\"content\":\"<s>\"}],",
         "added_tokens[0]: \"<s>\" (id 5) is not model.vocab's token of that id"},
        {"\"truncation\":{},", "(top level).truncation: an object is not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) ll_refused(cases[i].front, cases[i].want);
}
END_TEST

/* A long text is one word: the heap keeps it fast (a quadratic merge of
 * 600,000 symbols would take minutes). */
START_TEST(hf_llama_long) {
    attn_tokenizer *tok = ll_open("");
    size_t n = 200000, k = 0;
    char *t = malloc(3 * n);
    for (size_t i = 0; i < n; i++) memcpy(t + 3 * i, "ab ", 3);
    int *ids = NULL;
    attn_error err = {0};
    ck_assert_int_eq(attn_tokenizer_encode(tok, t, 3 * n, &ids, &k, &err), ATTN_OK);
    /* "▁ab▁ab...▁ab▁": BOS, then ▁ab each time, and the last ▁ */
    ck_assert_uint_eq(k, n + 2);
    ck_assert_int_eq(ids[0], 1);
    for (size_t i = 1; i <= n; i++) ck_assert_int_eq(ids[i], 265);
    ck_assert_int_eq(ids[n + 1], 259);
    free(ids);
    free(t);
    attn_tokenizer_free(tok);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *w = tcase_create("word");
    tcase_add_test(w, word_punctuation);
    tcase_add_test(w, word_whitespace_and_bytes);
    tcase_add_test(w, word_lowercase);
    tcase_add_test(w, word_bos_eos_unk);
    tcase_add_test(w, word_piece_decode);
    tcase_add_test(w, word_vocab_forms);
    tcase_add_test(w, word_vocab_refusals);
    tcase_add_loop_test(w, word_random_round_trip, 0, 4);
    tcase_add_test(w, word_special_angle);
    tcase_add_test(w, word_special_listed);
    tcase_add_test(w, word_special_refusals);
    tcase_add_test(w, word_eos_not_added);
    tcase_add_test(w, word_open_file);
    tcase_add_test(w, api_misuse);
    suite_add_tcase(s, w);
    TCase *b = tcase_create("llama2c");
    tcase_add_test(b, bpe_hand_merges);
    tcase_add_test(b, bpe_hand_bytes);
    tcase_add_test(b, bpe_hand_decode);
    tcase_add_test(b, bpe_quirks);
    tcase_add_loop_test(b, bpe_random_vs_naive, 0, 8);
    tcase_add_test(b, bpe_long_text);
    tcase_add_test(b, bpe_truncated);
    tcase_add_test(b, bpe_bad_fields);
    suite_add_tcase(s, b);
    TCase *d = tcase_create("llama2c-scale");
    tcase_set_timeout(d, 20); /* the quadratic build took hours */
    tcase_add_test(d, bpe_many_duplicates);
    suite_add_tcase(s, d);
    TCase *l = tcase_create("limits");
    tcase_add_test(l, word_limits);
    tcase_add_test(l, bpe_limits);
    tcase_add_test(l, text_limit);
    tcase_add_test(l, vocab_file_limit);
    suite_add_tcase(s, l);
    TCase *g = tcase_create("gpt2");
    tcase_add_test(g, gpt2_hand_merges);
    tcase_add_test(g, gpt2_white_space);
    tcase_add_test(g, gpt2_special_invalid_decode);
    tcase_add_test(g, gpt2_refusals);
    tcase_add_test(g, gpt2_long_and_many);
    tcase_add_test(g, gpt2_ascii_then_unicode);
    tcase_add_test(g, gpt2_cache_across_calls);
    tcase_add_test(g, hf_byte_level);
    tcase_add_test(g, hf_refusals);
    suite_add_tcase(s, g);
    TCase *ll = tcase_create("hf-llama");
    tcase_add_test(ll, hf_llama_hand);
    tcase_add_test(ll, hf_llama_metaspace);
    tcase_add_test(ll, hf_llama_refusals);
    tcase_add_test(ll, hf_llama_long);
    suite_add_tcase(s, ll);
    TCase *r = tcase_create("stories260k");
    tcase_add_test(r, stories260k_fixture);
    suite_add_tcase(s, r);
    return s;
}

int main(void) { return tu_run_suite(tokenizer_suite()); }
