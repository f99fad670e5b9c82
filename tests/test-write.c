/* The writers' text columns (attn/write.h): attn_escape_text and
 * attn_unescape_text against hand-written expected strings, random bytes
 * through both (the round trip, no control byte, valid UTF-8), and
 * attn_csv_field and the maps and context CSV sinks, escaped and raw,
 * written to a memory stream and compared byte for byte. */
#include "attn/attn.h"
#include "attn/write.h"
#include "support.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One case: n bytes of `in` (NUL inside allowed) and the expected escape. */
typedef struct escape_case {
    const char *in;
    size_t n;
    const char *want;
} escape_case;

#define CASE(lit, want) {lit, sizeof lit - 1, want}
static const escape_case escapes[] = {
    CASE("", ""),
    CASE("plain text, with \"quotes\" and ~!", "plain text, with \"quotes\" and ~!"),
    CASE("\n<s>\n", "\\n<s>\\n"), /* llama2.c's start token */
    CASE("\n</s>\n", "\\n</s>\\n"),
    CASE("a\tb\rc\nd", "a\\tb\\rc\\nd"),
    CASE("back\\slash", "back\\\\slash"),
    CASE("\\n", "\\\\n"), /* a backslash and an n stay two characters */
    CASE("\\x41", "\\\\x41"),
    CASE("\x01\x02\x1f", "\\x01\\x02\\x1f"),
    CASE("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    CASE("\x07\x08\x0b\x0c", "\\x07\\x08\\x0b\\x0c"), /* BEL BS VT FF: \xNN, not \a \b \v \f */
    CASE("del\x7f", "del\\x7f"),
    CASE("a\0b", "a\\x00b"),
    CASE(" \x20~", "  ~"),
    /* well-formed UTF-8 stays: 2, 3 and 4 bytes, the largest code point, C1 controls */
    CASE("caf\xc3\xa9", "caf\xc3\xa9"),
    CASE("\xe2\x82\xac 5", "\xe2\x82\xac 5"),
    CASE("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),
    CASE("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"),
    CASE("\xc2\x85", "\xc2\x85"),
    CASE("\xef\xbb\xbf", "\xef\xbb\xbf"), /* U+FEFF */
    CASE("\xed\x9f\xbf", "\xed\x9f\xbf"), /* U+D7FF, just below the surrogates */
    CASE("\xee\x80\x80", "\xee\x80\x80"), /* U+E000, just above them */
    /* invalid UTF-8: every byte of it as \xNN */
    CASE("\xc3", "\\xc3"),                   /* a lead byte at the end */
    CASE("\xc3" "a", "\\xc3a"),              /* a lead byte before ASCII */
    CASE("\x80", "\\x80"),                   /* a lone continuation byte */
    CASE("\xbf\xbf", "\\xbf\\xbf"),
    CASE("\xc0\x80", "\\xc0\\x80"),          /* overlong NUL */
    CASE("\xc1\xbf", "\\xc1\\xbf"),          /* overlong */
    CASE("\xe0\x80\x80", "\\xe0\\x80\\x80"), /* overlong 3-byte */
    CASE("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf"),
    CASE("\xed\xa0\x80", "\\xed\\xa0\\x80"), /* a surrogate, U+D800 */
    CASE("\xf0\x80\x80\x80", "\\xf0\\x80\\x80\\x80"),
    CASE("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"), /* U+110000 */
    CASE("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"),
    CASE("\xff\xfe", "\\xff\\xfe"),
    CASE("\xe2\x82", "\\xe2\\x82"),          /* cut short at the end */
    CASE("\xe2\x82" "x\xe2\x82\xac", "\\xe2\\x82x\xe2\x82\xac"), /* cut short, then whole */
    CASE("\xf0\x9f\x98", "\\xf0\\x9f\\x98"),
    CASE("\xc3\xc3\xa9", "\\xc3\xc3\xa9"),   /* a lead byte, then a whole sequence */
};
enum { N_ESCAPES = sizeof escapes / sizeof escapes[0] };

START_TEST(escape_exact) {
    const escape_case *c = &escapes[_i];
    char out[64];
    size_t len = attn_escape_text(out, sizeof out, c->in, c->n);
    ck_assert_uint_eq(len, strlen(c->want));
    ck_assert_str_eq(out, c->want);
    /* and back */
    char back[64];
    size_t back_n = 99;
    attn_error err = {0};
    ck_assert_msg(attn_unescape_text(back, &back_n, out, len, &err) == ATTN_OK, "%s", err.message);
    ck_assert_uint_eq(back_n, c->n);
    ck_assert_mem_eq(back, c->in, c->n);
    ck_assert_int_eq(back[back_n], '\0');
}
END_TEST

/* Like snprintf: the whole length is returned, at most cap - 1 bytes written. */
START_TEST(escape_cut) {
    char out[8];
    memset(out, 'Z', sizeof out);
    ck_assert_uint_eq(attn_escape_text(out, 0, "\n\n", 2), 4);
    ck_assert_int_eq(out[0], 'Z'); /* cap 0: nothing written */
    ck_assert_uint_eq(attn_escape_text(out, 3, "\n\n", 2), 4);
    ck_assert_str_eq(out, "\\n");
    ck_assert_uint_eq(attn_escape_text(out, 5, "\n\n", 2), 4);
    ck_assert_str_eq(out, "\\n\\n");
    ck_assert_uint_eq(attn_escape_text(out, 4, "\x01", 1), 4);
    ck_assert_str_eq(out, "\\x0");
    ck_assert_uint_eq(attn_escape_text(out, 1, "abc", 3), 3);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(unescape_exact) {
    static const struct {
        const char *in, *want;
        size_t want_n;
    } cases[] = {
        {"", "", 0},
        {"no escapes, \"at all\"", "no escapes, \"at all\"", 20},
        {"\\n\\t\\r\\\\", "\n\t\r\\", 4},
        {"\\x41\\x7a\\x00!", "Az\0!", 4},
        {"\\xAB\\xaB\\xff", "\xab\xab\xff", 3}, /* either case */
        {"\\\\x41", "\\x41", 4},
        {"caf\xc3\xa9", "caf\xc3\xa9", 5},
        {"raw\nbytes\x01", "raw\nbytes\x01", 10}, /* other bytes copied as they are */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t n = 99;
        attn_error err = {0};
        ck_assert_msg(attn_unescape_text(out, &n, cases[i].in, strlen(cases[i].in), &err) ==
                          ATTN_OK,
                      "%s: %s", cases[i].in, err.message);
        ck_assert_uint_eq(n, cases[i].want_n);
        ck_assert_mem_eq(out, cases[i].want, n);
        ck_assert_int_eq(out[n], '\0');
    }
}
END_TEST

START_TEST(unescape_refused) {
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"abc\\", "escaped text: a lone '\\' at its end (offset 3)"},
        {"\\", "escaped text: a lone '\\' at its end (offset 0)"},
        {"a\\qb", "escaped text: '\\' followed by byte 0x71 at offset 1 is none of \\n \\t \\r "
                  "\\\\ \\xNN"},
        {"\\a", "escaped text: '\\' followed by byte 0x61 at offset 0 is none of \\n \\t \\r "
                "\\\\ \\xNN"},
        {"\\\n", "escaped text: '\\' followed by byte 0x0a at offset 0 is none of \\n \\t \\r "
                 "\\\\ \\xNN"},
        {"\\x4", "escaped text: '\\' followed by byte 0x78 at offset 0 is none of \\n \\t \\r "
                 "\\\\ \\xNN"},
        {"\\x", "escaped text: '\\' followed by byte 0x78 at offset 0 is none of \\n \\t \\r "
                "\\\\ \\xNN"},
        {"ok\\xg0", "escaped text: '\\' followed by byte 0x78 at offset 2 is none of \\n \\t \\r "
                    "\\\\ \\xNN"},
        {"\\x0G", "escaped text: '\\' followed by byte 0x78 at offset 0 is none of \\n \\t \\r "
                  "\\\\ \\xNN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t n = 99;
        attn_error err = {0};
        ck_assert_int_eq(attn_unescape_text(out, &n, cases[i].in, strlen(cases[i].in), &err),
                         ATTN_ERR_FORMAT);
        ck_assert_int_eq(err.status, ATTN_ERR_FORMAT);
        ck_assert_str_eq(err.message, cases[i].msg);
        ck_assert_uint_eq(n, 0);
        n = 99;
        ck_assert_int_eq(attn_unescape_text(out, &n, cases[i].in, strlen(cases[i].in), NULL),
                         ATTN_ERR_FORMAT);
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

/* Is s[0..n) well-formed UTF-8? Written apart from the library's check:
 * decodes each code point, then checks its range and shortest form. */
static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] >> 6) != 2) return false;
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

/* Random byte strings (mostly bytes that need care: controls, backslashes,
 * high bytes, pieces of UTF-8): the escape is at most 4 bytes per byte, has
 * no control byte, is valid UTF-8, keeps valid UTF-8 input as it is apart
 * from the ASCII escapes, and unescapes to the input. */
START_TEST(escape_random_round_trip) {
    tu_rng rng = {20261202};
    static const unsigned char pool[] = {'\n', '\t', '\r', '\\', 0,    1,    0x1b, 0x7f, 'a',
                                         ' ',  ',',  '"',  'x',  0x80, 0xbf, 0xc2, 0xc3,
                                         0xe0, 0xe2, 0xed, 0xf0, 0xf4, 0xf5, 0xff, 0xa0};
    for (int round = 0; round < 20000; round++) {
        unsigned char in[24];
        size_t n = (size_t)(tu_rng_u64(&rng) % sizeof in);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = tu_rng_u64(&rng);
            in[i] = r & 1 ? pool[(r >> 1) % sizeof pool] : (unsigned char)(r >> 8);
        }
        char out[4 * sizeof in + 1];
        size_t len = attn_escape_text(out, sizeof out, (const char *)in, n);
        ck_assert_uint_le(len, 4 * n);
        ck_assert_uint_eq(strlen(out), len);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)out[i];
            ck_assert_msg(c >= 0x20 && c != 0x7f, "control byte 0x%02x in the escape", c);
        }
        ck_assert(valid_utf8((const unsigned char *)out, len));
        char back[sizeof out];
        size_t back_n;
        ck_assert_int_eq(attn_unescape_text(back, &back_n, out, len, NULL), ATTN_OK);
        ck_assert_uint_eq(back_n, n);
        ck_assert_mem_eq(back, in, n);
        /* valid UTF-8 without ASCII that needs an escape comes out as it went in */
        bool plain = valid_utf8(in, n);
        for (size_t i = 0; i < n; i++)
            plain = plain && in[i] >= 0x20 && in[i] != 0x7f && in[i] != '\\';
        if (plain) {
            ck_assert_uint_eq(len, n);
            ck_assert_mem_eq(out, in, n);
        }
    }
}
END_TEST

/* What f received, NUL-terminated (f: open_memstream, then closed). */
typedef struct mem_out {
    FILE *f;
    char *buf;
    size_t n;
} mem_out;

static void mem_open(mem_out *m) {
    m->buf = NULL;
    m->n = 0;
    m->f = open_memstream(&m->buf, &m->n);
    ck_assert_ptr_nonnull(m->f);
}

static const char *mem_close(mem_out *m) {
    ck_assert_int_eq(fclose(m->f), 0);
    m->f = NULL;
    return m->buf;
}

START_TEST(csv_field_exact) {
    static const struct {
        const char *in, *escaped, *raw;
    } cases[] = {
        {"", "", ""},
        {"plain", "plain", "plain"},
        {"\n<s>\n", "\\n<s>\\n", "\"\n<s>\n\""},
        {"a,b", "\"a,b\"", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\"", "\"say \"\"hi\"\"\""},
        {"\"", "\"\"\"\"", "\"\"\"\""},
        {" lead", "\" lead\"", "\" lead\""},
        {"trail ", "\"trail \"", "\"trail \""},
        {" ", "\" \"", "\" \""},
        {"\tx", "\\tx", "\"\tx\""}, /* an escaped tab is no blank */
        {"x\t", "x\\t", "\"x\t\""},
        {"a\rb", "a\\rb", "\"a\rb\""},
        {",\n", "\",\\n\"", "\",\n\""},
        {"\"\x01", "\"\"\"\\x01\"", "\"\"\"\x01\""},
        {"\x01", "\\x01", "\x01"},
        {"back\\slash", "back\\\\slash", "back\\slash"},
        {"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9"},
        {"\xff\"", "\"\\xff\"\"\"", "\"\xff\"\"\""},
        {"<0x0A>", "<0x0A>", "<0x0A>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int raw = 0; raw < 2; raw++) {
            mem_out m;
            mem_open(&m);
            attn_csv_field(m.f, cases[i].in, raw);
            ck_assert_str_eq(mem_close(&m), raw ? cases[i].raw : cases[i].escaped);
            free(m.buf);
        }
    }
}
END_TEST

/* The maps and context sinks on labels with control bytes: every row one
 * line, the labels escaped, or raw with raw_text. */
START_TEST(csv_sinks_escape_labels) {
    char l0[] = "\n<s>\n", l1[] = " tab\there", l2[] = "a,\"b\"";
    char *texts[] = {l0, l1, l2};
    attn_labels labels = {.n = 3, .text = texts};
    attn_run_info run = {.input = 7, .main = &labels};
    const float w[] = {1.0f, 0.0f, 0.0f, 0.25f, 0.75f, 0.0f, 0.5f, 0.125f, 0.375f}; /* [3, 3] */
    attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = 1, .head = 2, .causal = true};
    attn_capture_view view = {.rows = 2, .cols = 3, .row_offset = 1, .data = w + 3};
    static const char want_maps[] =
        "7,decoder,1,self,2,1,\" tab\\there\",0,\\n<s>\\n,0.25\n"
        "7,decoder,1,self,2,1,\" tab\\there\",1,\" tab\\there\",0.75\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",0,\\n<s>\\n,0.5\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",1,\" tab\\there\",0.125\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",2,\"a,\"\"b\"\"\",0.375\n";
    static const char want_maps_raw[] =
        "7,decoder,1,self,2,1,\" tab\there\",0,\"\n<s>\n\",0.25\n"
        "7,decoder,1,self,2,1,\" tab\there\",1,\" tab\there\",0.75\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",0,\"\n<s>\n\",0.5\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",1,\" tab\there\",0.125\n"
        "7,decoder,1,self,2,2,\"a,\"\"b\"\"\",2,\"a,\"\"b\"\"\",0.375\n";
    for (int raw = 0; raw < 2; raw++) {
        mem_out m;
        mem_open(&m);
        attn_csv_maps maps = {.f = m.f, .run = &run, .raw_text = raw};
        ck_assert_int_eq(attn_csv_maps_emit(&maps, &key, &view, NULL), ATTN_OK);
        ck_assert_str_eq(mem_close(&m), raw ? want_maps_raw : want_maps);
        free(m.buf);
    }
    attn_capture_key hkey = {.value = ATTN_V_HIDDEN, .layer = -1, .head = -1};
    attn_capture_view hview = {.rows = 3, .cols = 2, .data = w};
    static const char want_ctx[] = "7,0,\\n<s>\\n,1,0\n7,1,\" tab\\there\",0,0.25\n"
                                   "7,2,\"a,\"\"b\"\"\",0.75,0\n";
    static const char want_ctx_raw[] = "7,0,\"\n<s>\n\",1,0\n7,1,\" tab\there\",0,0.25\n"
                                       "7,2,\"a,\"\"b\"\"\",0.75,0\n";
    for (int raw = 0; raw < 2; raw++) {
        mem_out m;
        mem_open(&m);
        attn_csv_context ctx = {.f = m.f, .run = &run, .raw_text = raw};
        ck_assert_int_eq(attn_csv_context_emit(&ctx, &hkey, &hview, NULL), ATTN_OK);
        ck_assert_str_eq(mem_close(&m), raw ? want_ctx_raw : want_ctx);
        free(m.buf);
    }
}
END_TEST

/* attn_pick: positions (negative from the end), token texts (with a
 * leading space or SentencePiece's U+2581 taken off the label), "=TEXT",
 * and the values refused. */
START_TEST(pick_parse_and_match) {
    char l0[] = "the", l1[] = " cat", l2[] = "\xe2\x96\x81" "cat", l3[] = "3", l4[] = "  cat";
    char *texts[] = {l0, l1, l2, l3, l4};
    const attn_labels labels = {.n = 5, .text = texts};
    static const struct {
        const char *arg;
        bool picks[5];
        size_t count;
    } cases[] = {
        {"0", {1, 0, 0, 0, 0}, 1},   {"4", {0, 0, 0, 0, 1}, 1},  {"-1", {0, 0, 0, 0, 1}, 1},
        {"-5", {1, 0, 0, 0, 0}, 1},  {"5", {0}, 0},              {"-6", {0}, 0},
        {"cat", {0, 1, 1, 0, 0}, 2}, {"=3", {0, 0, 0, 1, 0}, 1}, {"3", {0, 0, 0, 1, 0}, 1},
        {" cat", {0, 1, 0, 0, 1}, 2}, {"=-1", {0}, 0},           {"The", {0}, 0},
        {"the", {1, 0, 0, 0, 0}, 1}, {"+1", {0}, 0},             {"1x", {0}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_pick p;
        attn_error err = {0};
        ck_assert_msg(attn_pick_parse(&p, cases[i].arg, &err) == ATTN_OK, "%s", cases[i].arg);
        for (int pos = 0; pos < 5; pos++)
            ck_assert_msg(attn_pick_has(&p, &labels, pos) == cases[i].picks[pos], "%s at %d",
                          cases[i].arg, pos);
        ck_assert(!attn_pick_has(&p, &labels, -1) && !attn_pick_has(&p, &labels, 5));
        ck_assert_uint_eq(attn_pick_count(&p, &labels), cases[i].count);
    }
    ck_assert(attn_pick_has(NULL, &labels, 2));
    ck_assert_uint_eq(attn_pick_count(NULL, &labels), 5);
    static const char *const bad[] = {"", "=", "99999999999", "-99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn_pick p;
        attn_error err = {0};
        ck_assert_int_eq(attn_pick_parse(&p, bad[i], &err), ATTN_ERR_USAGE);
        ck_assert(err.message[0] != '\0' && !strchr(err.message, '\n'));
    }
}
END_TEST

/* The maps CSV keeps only the rows and columns of run->from and run->to. */
START_TEST(csv_maps_picks) {
    char l0[] = "a", l1[] = "b", l2[] = "a";
    char *texts[] = {l0, l1, l2};
    attn_labels labels = {.n = 3, .text = texts};
    attn_pick from, to;
    ck_assert_int_eq(attn_pick_parse(&from, "a", NULL), ATTN_OK);
    ck_assert_int_eq(attn_pick_parse(&to, "-3", NULL), ATTN_OK);
    attn_run_info run = {.input = 1, .main = &labels, .from = &from, .to = &to};
    const float w[] = {1.0f, 0.0f, 0.0f, 0.25f, 0.75f, 0.0f, 0.5f, 0.125f, 0.375f}; /* [3, 3] */
    attn_capture_key key = {.value = ATTN_V_WEIGHTS, .layer = 0, .head = 1, .causal = true};
    attn_capture_view view = {.rows = 3, .cols = 3, .data = w};
    mem_out m;
    mem_open(&m);
    attn_csv_maps maps = {.f = m.f, .run = &run};
    ck_assert_int_eq(attn_csv_maps_emit(&maps, &key, &view, NULL), ATTN_OK);
    ck_assert_str_eq(mem_close(&m), "1,decoder,0,self,1,0,a,0,a,1\n1,decoder,0,self,1,2,a,0,a,0.5\n");
    free(m.buf);
}
END_TEST

static Suite *write_suite(void) {
    Suite *s = suite_create("write");
    TCase *tc = tcase_create("escape");
    tcase_add_loop_test(tc, escape_exact, 0, N_ESCAPES);
    tcase_add_test(tc, escape_cut);
    tcase_add_test(tc, unescape_exact);
    tcase_add_test(tc, unescape_refused);
    tcase_add_test(tc, escape_random_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("csv");
    tcase_add_test(tc, csv_field_exact);
    tcase_add_test(tc, csv_sinks_escape_labels);
    tcase_add_test(tc, csv_maps_picks);
    tcase_add_test(tc, pick_parse_and_match);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(write_suite()); }
