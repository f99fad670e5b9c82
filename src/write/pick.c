/* Positions picked by a position or a token's text (attn/write.h:
 * attn_pick), what --from and --to of attn run give. */
#include "attn/write.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

attn_status attn_pick_parse(attn_pick *p, const char *s, attn_error *err) {
    *p = (attn_pick){0};
    if (!s || !*s) return attn_error_set(err, ATTN_ERR_USAGE, "expected a position or a token, got ''");
    if (s[0] == '=') {
        if (!s[1])
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "expected a token after '=' (\"=3\" is the token 3)");
        p->text = s + 1;
        return ATTN_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    const bool number = end != s && *end == '\0' && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'));
    if (!number) {
        p->text = s;
        return ATTN_OK;
    }
    if (errno == ERANGE || v > INT_MAX || v < -(long)INT_MAX)
        return attn_error_set(err, ATTN_ERR_USAGE, "position %s is out of range", s);
    p->pos = v;
    return ATTN_OK;
}

/* SentencePiece's word mark, U+2581 in UTF-8. */
static const char word_mark[] = "\xe2\x96\x81";

bool attn_pick_matches(const attn_pick *p, const char *label) {
    if (!p || !p->text || !label) return false;
    if (strcmp(label, p->text) == 0) return true;
    if (label[0] == ' ') return strcmp(label + 1, p->text) == 0;
    const size_t m = sizeof word_mark - 1;
    return strncmp(label, word_mark, m) == 0 && strcmp(label + m, p->text) == 0;
}

bool attn_pick_has(const attn_pick *p, const attn_labels *l, int pos) {
    if (!p) return true;
    const long n = l ? (long)l->n : 0;
    if (pos < 0 || pos >= n) return false;
    if (p->text) return attn_pick_matches(p, l->text[pos]);
    return pos == (p->pos < 0 ? n + p->pos : p->pos);
}

size_t attn_pick_count(const attn_pick *p, const attn_labels *l) {
    if (!l) return 0;
    if (!p) return l->n;
    size_t n = 0;
    for (size_t i = 0; i < l->n && i <= INT_MAX; i++) n += attn_pick_has(p, l, (int)i);
    return n;
}
