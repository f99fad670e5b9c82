/* safetensors: read + validate + tensor lookup, and the writer (through a
 * temporary renamed into place, base/tmpfile.h).
 *
 * File layout: [u64 little-endian N][N bytes of JSON header][data area].
 * The header maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (offsets relative to the data area), plus an optional "__metadata__"
 * object of strings. Every length and offset read from the file is checked
 * (overflow-checked in uint64_t / size_t) before anything is allocated or
 * dereferenced; the tensors must tile the data area exactly.
 *
 * Ownership: an attn_safetensors owns its name, the tensor names, the
 * converted / realigned copies and (for attn_safetensors_open) the file's
 * image: a read-only mapping of the file (attn_map_file), so that the F32
 * weights are used in place, never copied, and their pages are shared with
 * the page cache (a pipe or a file the kernel cannot map is read instead).
 * For aligned F32 tensors attn_tensor.data points into the caller's buffer
 * or that image.
 *
 * A mapped file truncated on disk while it is open takes its pages away:
 * reading one raises SIGBUS. The validation above touches only the header
 * (and the F16 / BF16 / misaligned tensors it converts); the mapping is
 * registered (base/tmpfile.h, attn_mapping_at), so that the command line's
 * SIGBUS handler says that the weights file changed, removes its temporary
 * outputs and exits 1 instead of dying of the signal. A file replaced by
 * renaming a new one over it (attn_safetensors_write does that) leaves the
 * mapping intact. One rewritten in place at the same size loses no page;
 * attn_safetensors_check (model.h), called after every forward pass, sees
 * its new modification time.
 */
#include "base/bytes.h"
#include "base/json.h"
#include "base/tmpfile.h"
#include "base/util.h"
#include "model/limits.h"
#include "model/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_LEN_BYTES 8
#define ST_METADATA "__metadata__"

struct attn_safetensors {
    char *name;         /* file name or caller's label, for messages */
    attn_file_image file; /* the file's bytes, attn_safetensors_open only */
    size_t n;           /* number of tensors */
    attn_tensor *tensors; /* [n] in header order */
    float **owned;      /* [n] realigned or converted copies; NULL for views */
    char *names;        /* arena holding the n tensor names */
    size_t *slots;      /* [cap] open-addressing table: tensor index + 1, 0 = empty */
    size_t cap;         /* power of two, >= 2 n */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

/* IEEE binary16 -> binary32, exact (every half is a float): zeros,
 * subnormals, normals, infinities and NaNs (payload kept). */
static float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float mag = (float)mant * 0x1p-24f;
        return sign ? -mag : mag;
    }
    if (exp == 31) return attn_f32_from_bits(sign | 0x7f800000u | mant << 13);
    return attn_f32_from_bits(sign | (exp - 15 + 127) << 23 | mant << 13);
}

static float st_bf16_to_f32(uint16_t h) { return attn_f32_from_bits((uint32_t)h << 16); }

/* A JSON number that is an exact non-negative integer <= 2^53. */
static bool st_json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= (double)ATTN_ST_INT_MAX)) return false; /* also NaN */
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return false;
    *out = u;
    return true;
}

size_t attn_dtype_size(attn_dtype d) {
    switch (d) {
    case ATTN_DTYPE_F32: return 4;
    case ATTN_DTYPE_F16:
    case ATTN_DTYPE_BF16: return 2;
    }
    return 0;
}

const char *attn_dtype_name(attn_dtype d) {
    switch (d) {
    case ATTN_DTYPE_F32: return "F32";
    case ATTN_DTYPE_F16: return "F16";
    case ATTN_DTYPE_BF16: return "BF16";
    }
    return "?";
}

/* Valid safetensors dtypes that attn does not read. */
static bool st_dtype_known(const char *s) {
    static const char *const known[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                        "I16",  "U16", "I32", "U32",     "I64",     "U64",
                                        "F64",  "C64", "F4",  "F6_E2M3", "F6_E3M2"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0) return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Name table                                                                */

static int st_table_init(attn_safetensors *st, attn_error *err) {
    size_t cap = 8;
    while (cap / 2 < st->n) {
        if (!attn_mul_size(cap, 2, &cap))
            return attn_error_set(err, ATTN_ERR_NOMEM, "%s: too many tensors (%zu)", st->name,
                                  st->n);
    }
    st->slots = attn_calloc_array(cap, sizeof *st->slots, st->name, err);
    if (!st->slots) return ATTN_ERR_NOMEM;
    st->cap = cap;
    return ATTN_OK;
}

/* Returns the slot holding `name`, or the empty slot where it would go. */
static size_t st_table_probe(const attn_safetensors *st, const char *name) {
    size_t mask = st->cap - 1;
    size_t i = (size_t)attn_fnv1a(ATTN_FNV1A_INIT, name, strlen(name)) & mask;
    while (st->slots[i] != 0 && strcmp(st->tensors[st->slots[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Inserts tensor `idx`; false when its name is already present. */
static bool st_table_insert(attn_safetensors *st, size_t idx) {
    size_t slot = st_table_probe(st, st->tensors[idx].name);
    if (st->slots[slot] != 0) return false;
    st->slots[slot] = idx + 1;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Header checks                                                             */

/* cJSON reads every number as a double, so "9007199254740993" would silently
 * become 2^53. Scan the (already well-formed) header text and require every
 * number literal to be a plain decimal integer <= 2^53. Metadata values are
 * strings, so the only numbers are shapes and offsets. Also refuses \u0000
 * escapes, which cJSON would turn into a silently shortened name. On failure,
 * *member is the 0-based index of the top-level member holding the literal. */
static bool st_scan_header(const char *s, size_t len, size_t *member, size_t *at,
                           size_t *lit_len, bool *nul_escape) {
    int depth = 0;
    size_t m = 0;
    *nul_escape = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] != '\\') continue;
                /* cJSON would cut the string at the NUL of a \u0000 escape */
                if (len - i > 5 && memcmp(s + i + 1, "u0000", 5) == 0) {
                    *member = m;
                    *at = i;
                    *lit_len = 6;
                    *nul_escape = true;
                    return false;
                }
                i++;
            }
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            m++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < len && (s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' ||
                               s[j] == 'E' || (s[j] >= '0' && s[j] <= '9')))
                j++;
            bool ok = (j - i) <= 16 && !(s[i] == '0' && j - i > 1);
            uint64_t v = 0;
            for (size_t k = i; ok && k < j; k++) {
                if (s[k] < '0' || s[k] > '9') ok = false;
                else v = v * 10 + (uint64_t)(s[k] - '0');
            }
            if (!ok || v > ATTN_ST_INT_MAX) {
                *member = m;
                *at = i;
                *lit_len = j - i;
                return false;
            }
            i = j - 1;
        }
    }
    return true;
}

static int st_check_metadata(const attn_safetensors *st, const cJSON *meta, attn_error *err) {
    if (!cJSON_IsObject(meta))
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: " ST_METADATA " is %s, expected an object",
                              st->name, attn_json_type(meta, false));
    for (const cJSON *v = meta->child; v; v = v->next)
        if (!cJSON_IsString(v))
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: " ST_METADATA " key '%s' is %s, expected a string",
                                  st->name, v->string ? v->string : "",
                                  attn_json_type(v, false));
    return ATTN_OK;
}

/* The members of one header entry: dtype, shape and data_offsets, each
 * exactly once, nothing else. */
static int st_entry_keys(const attn_safetensors *st, const cJSON *e, const char *tn,
                         const cJSON **dtype, const cJSON **shape, const cJSON **offs,
                         attn_error *err) {
    const char *sn = st->name;
    if (!cJSON_IsObject(e))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': entry is %s, expected an object with dtype, "
                              "shape, data_offsets",
                              sn, tn, attn_json_type(e, false));
    *dtype = *shape = *offs = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = NULL;
        if (strcmp(k->string, "dtype") == 0) slot = dtype;
        else if (strcmp(k->string, "shape") == 0) slot = shape;
        else if (strcmp(k->string, "data_offsets") == 0) slot = offs;
        else
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: tensor '%s': unexpected key '%s' (expected dtype, shape, "
                                  "data_offsets)",
                                  sn, tn, k->string);
        if (*slot)
            return attn_error_set(err, ATTN_ERR_FORMAT, "%s: tensor '%s': duplicate key '%s'", sn,
                                  tn, k->string);
        *slot = k;
    }
    const char *missing = !*dtype ? "dtype" : !*shape ? "shape" : !*offs ? "data_offsets" : NULL;
    if (missing)
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: tensor '%s': missing %s", sn, tn,
                              missing);
    return ATTN_OK;
}

static int st_entry_dtype(const attn_safetensors *st, const cJSON *dtype, attn_tensor *t,
                          attn_error *err) {
    if (!cJSON_IsString(dtype))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': dtype is %s, expected a string", st->name,
                              t->name, attn_json_type(dtype, false));
    const char *ds = dtype->valuestring;
    if (strcmp(ds, "F32") == 0) t->dtype = ATTN_DTYPE_F32;
    else if (strcmp(ds, "F16") == 0) t->dtype = ATTN_DTYPE_F16;
    else if (strcmp(ds, "BF16") == 0) t->dtype = ATTN_DTYPE_BF16;
    else
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': %s dtype %s (attn reads F32, F16, BF16)",
                              st->name, t->name, st_dtype_known(ds) ? "unsupported" : "unknown",
                              ds);
    return ATTN_OK;
}

/* Fills t->ndim, t->shape and t->numel; *bytes = the size of its data
 * (ds, the dtype as written, is for messages). */
static int st_entry_shape(const attn_safetensors *st, const cJSON *shape, const char *ds,
                          attn_tensor *t, size_t *bytes, attn_error *err) {
    const char *sn = st->name, *tn = t->name;
    if (!cJSON_IsArray(shape))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': shape is %s, expected an array of integers", sn,
                              tn, attn_json_type(shape, false));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ATTN_MAX_DIMS)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': shape has %d dimensions (at most %d)", sn, tn,
                              ndim, ATTN_MAX_DIMS);
    t->ndim = ndim;
    size_t numel = 1;
    int d = 0;
    for (const cJSON *v = shape->child; v; v = v->next, d++) {
        uint64_t dim;
        if (!st_json_uint(v, &dim))
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: tensor '%s': shape[%d] is not a non-negative integer "
                                  "<= 2^53",
                                  sn, tn, d);
        t->shape[d] = (int64_t)dim;
        if (dim > SIZE_MAX || !attn_mul_size(numel, (size_t)dim, &numel))
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: tensor '%s': shape product overflows at shape[%d]", sn, tn,
                                  d);
    }
    t->numel = numel;
    if (!attn_mul_size(numel, attn_dtype_size(t->dtype), bytes))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': byte size overflows (%zu elements of %s)", sn, tn,
                              numel, ds);
    return ATTN_OK;
}

/* The byte range [*begin, *end) of the data area: `bytes` long, inside it. */
static int st_entry_offsets(const attn_safetensors *st, const cJSON *offs, const attn_tensor *t,
                            const char *ds, size_t bytes, uint64_t data_len, uint64_t *begin,
                            uint64_t *end, attn_error *err) {
    const char *sn = st->name, *tn = t->name;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !st_json_uint(offs->child, begin) || !st_json_uint(offs->child->next, end))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets must be [begin, end], two "
                              "non-negative integers <= 2^53",
                              sn, tn);
    if (*begin > *end)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] has begin > end", sn, tn,
                              (unsigned long long)*begin, (unsigned long long)*end);
    if (*end - *begin != (uint64_t)bytes)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, "
                              "expected %zu (%zu elements of %s)",
                              sn, tn, (unsigned long long)*begin, (unsigned long long)*end,
                              (unsigned long long)(*end - *begin), bytes, t->numel, ds);
    if (*end > data_len)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data "
                              "area (%llu bytes)",
                              sn, tn, (unsigned long long)*begin, (unsigned long long)*end,
                              (unsigned long long)data_len);
    return ATTN_OK;
}

/* Validates one header entry; fills t (not data) and its byte range. */
static int st_parse_entry(const attn_safetensors *st, const cJSON *e, attn_tensor *t,
                          uint64_t data_len, uint64_t *begin, uint64_t *end, attn_error *err) {
    const cJSON *dtype, *shape, *offs;
    size_t bytes = 0;
    int rc;
    if ((rc = st_entry_keys(st, e, t->name, &dtype, &shape, &offs, err)) ||
        (rc = st_entry_dtype(st, dtype, t, err)) ||
        (rc = st_entry_shape(st, shape, dtype->valuestring, t, &bytes, err)))
        return rc;
    return st_entry_offsets(st, offs, t, dtype->valuestring, bytes, data_len, begin, end, err);
}

typedef struct st_span {
    uint64_t begin, end;
    size_t idx;
} st_span;

static int st_span_cmp(const void *pa, const void *pb) {
    const st_span *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sorted by begin, the tensors must cover [0, data_len) exactly. */
static int st_check_tiling(const attn_safetensors *st, st_span *spans, uint64_t data_len,
                           attn_error *err) {
    if (st->n > 0) qsort(spans, st->n, sizeof *spans, st_span_cmp);
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < st->n; i++) {
        const char *tn = st->tensors[spans[i].idx].name;
        if (spans[i].begin < pos)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' "
                                  "(ending at %llu)",
                                  st->name, tn, (unsigned long long)spans[i].begin,
                                  (unsigned long long)spans[i].end, prev,
                                  (unsigned long long)pos);
        if (spans[i].begin > pos) {
            if (prev)
                return attn_error_set(err, ATTN_ERR_FORMAT,
                                      "%s: hole of %llu bytes between tensor '%s' (ending at "
                                      "%llu) and tensor '%s' (starting at %llu)",
                                      st->name, (unsigned long long)(spans[i].begin - pos), prev,
                                      (unsigned long long)pos, tn,
                                      (unsigned long long)spans[i].begin);
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: hole of %llu bytes at the start of the data area, before "
                                  "tensor '%s'",
                                  st->name, (unsigned long long)spans[i].begin, tn);
        }
        pos = spans[i].end;
        prev = tn;
    }
    if (pos != data_len) {
        if (prev)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: %llu trailing bytes after tensor '%s' (the data area has "
                                  "%llu bytes, tensors end at %llu)",
                                  st->name, (unsigned long long)(data_len - pos), prev,
                                  (unsigned long long)data_len, (unsigned long long)pos);
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: %llu trailing bytes in the data area but no tensor", st->name,
                              (unsigned long long)data_len);
    }
    return ATTN_OK;
}

/* Points t->data at the bytes or at a converted, aligned copy. */
static int st_materialize(attn_safetensors *st, size_t i, const unsigned char *p,
                          attn_error *err) {
    attn_tensor *t = &st->tensors[i];
    if (t->dtype == ATTN_DTYPE_F32 && ATTN_HOST_LE && (uintptr_t)p % _Alignof(float) == 0) {
        t->data = (const float *)(const void *)p;
        return ATTN_OK;
    }
    float *f = attn_alloc_array(t->numel, sizeof *f, t->name, err);
    if (!f) {
        attn_error_prefix(err, "%s", st->name);
        return ATTN_ERR_NOMEM;
    }
    switch (t->dtype) {
    case ATTN_DTYPE_F32:
        for (size_t k = 0; k < t->numel; k++) f[k] = attn_le_f32(p + 4 * k);
        break;
    case ATTN_DTYPE_F16:
        for (size_t k = 0; k < t->numel; k++) f[k] = st_f16_to_f32(attn_le16(p + 2 * k));
        break;
    case ATTN_DTYPE_BF16:
        for (size_t k = 0; k < t->numel; k++) f[k] = st_bf16_to_f32(attn_le16(p + 2 * k));
        break;
    }
    st->owned[i] = f;
    t->data = f;
    return ATTN_OK;
}

/* The 8-byte header length *hl: within the 100 MB limit and the file. */
static int st_header_length(const attn_safetensors *st, const unsigned char *buf, size_t len,
                            size_t *hl, attn_error *err) {
    const char *sn = st->name;
    if (len == 0)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: file is empty (expected an 8-byte header length, a JSON "
                              "header and tensor data)",
                              sn);
    if (len < ST_LEN_BYTES)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: file is %zu bytes, shorter than the 8-byte header length", sn,
                              len);
    uint64_t hlen = attn_le64(buf);
    if (hlen > ATTN_ST_HEADER_MAX)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: header of %llu bytes is more than the %llu-byte (100 MB) limit",
                              sn, (unsigned long long)hlen, (unsigned long long)ATTN_ST_HEADER_MAX);
    if (hlen > (uint64_t)(len - ST_LEN_BYTES))
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: header length %llu exceeds the file size (%zu bytes, %zu after "
                              "the length)",
                              sn, (unsigned long long)hlen, len, len - ST_LEN_BYTES);
    *hl = (size_t)hlen;
    return ATTN_OK;
}

/* The numbers of the header text[hl] (parsed as root) are plain integers
 * <= 2^53 and no string holds a \u0000 escape (st_scan_header). */
static int st_check_literals(const attn_safetensors *st, const char *text, size_t hl,
                             const cJSON *root, attn_error *err) {
    size_t bad_member, bad_at, bad_len;
    bool nul_escape;
    if (st_scan_header(text, hl, &bad_member, &bad_at, &bad_len, &nul_escape)) return ATTN_OK;
    const cJSON *m = root->child;
    for (size_t k = 0; m && k < bad_member; k++) m = m->next;
    const char *tn = m && m->string ? m->string : "?";
    if (nul_escape)
        return attn_error_set(err, ATTN_ERR_FORMAT,
                              "%s: tensor '%s': header byte %zu: \\u0000 escapes are not "
                              "allowed (names and strings would be cut at the NUL)",
                              st->name, tn, bad_at);
    int shown = bad_len > 40 ? 40 : (int)bad_len;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: tensor '%s': number %.*s%s is not a plain non-negative integer "
                          "<= 2^53",
                          st->name, tn, shown, text + bad_at, shown < (int)bad_len ? "..." : "");
}

/* An upper bound of the JSON values (cJSON nodes) of header s[len]: the
 * containers and commas outside strings, plus one. Refused over
 * ATTN_ST_VALUES_MAX before cJSON allocates a node for each (the header
 * limit alone would let 100 MB of "[0,0,..." take gigabytes). */
static int st_check_values(const attn_safetensors *st, const char *s, size_t len,
                           attn_error *err) {
    size_t values = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
        } else if (s[i] == ',' || s[i] == '[' || s[i] == '{') {
            values++;
        }
    }
    if (values <= ATTN_ST_VALUES_MAX) return ATTN_OK;
    return attn_error_set(err, ATTN_ERR_FORMAT,
                          "%s: header holds %zu JSON values or more, more than the limit of %zu "
                          "(16 per tensor of the %zu-tensor limit)",
                          st->name, values, (size_t)ATTN_ST_VALUES_MAX,
                          (size_t)ATTN_ST_TENSORS_MAX);
}

/* Parses header h[hl] into *root: one JSON object and nothing after it but
 * white space, no NUL byte, its literals checked. */
static int st_parse_json(const attn_safetensors *st, const unsigned char *h, size_t hl,
                         cJSON **root, attn_error *err) {
    const char *sn = st->name;
    *root = NULL;
    /* A NUL-terminated copy of the header (never of the data). */
    char *text = attn_alloc_array(hl + 1, 1, sn, err);
    if (!text) return ATTN_ERR_NOMEM;
    memcpy(text, h, hl);
    text[hl] = '\0';
    int rc = ATTN_OK;
    const char *nul = memchr(text, '\0', hl), *endp = NULL;
    int vrc = nul ? ATTN_OK : st_check_values(st, text, hl, err);
    cJSON *r = nul || vrc ? NULL : cJSON_ParseWithLengthOpts(text, hl, &endp, 0);
    if (vrc) {
        rc = vrc;
    } else if (nul) {
        rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: header has a NUL byte at offset %zu", sn,
                            (size_t)(nul - text));
    } else if (!r) {
        size_t at = endp && endp >= text && endp <= text + hl ? (size_t)(endp - text) : 0;
        rc = attn_error_set(err, ATTN_ERR_FORMAT,
                            "%s: header is not valid JSON (error near byte %zu of %zu)", sn, at,
                            hl);
    }
    for (const char *q = endp; rc == ATTN_OK && q < text + hl; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
            rc = attn_error_set(err, ATTN_ERR_FORMAT,
                                "%s: header has unexpected characters after the JSON object at "
                                "byte %zu",
                                sn, (size_t)(q - text));
    if (rc == ATTN_OK && !cJSON_IsObject(r))
        rc = attn_error_set(err, ATTN_ERR_FORMAT, "%s: header is %s, expected a JSON object", sn,
                            attn_json_type(r, false));
    if (rc == ATTN_OK) rc = st_check_literals(st, text, hl, r, err);
    free(text);
    if (rc != ATTN_OK) {
        cJSON_Delete(r);
        return rc;
    }
    *root = r;
    return ATTN_OK;
}

/* Counts the tensors (every member but __metadata__, which is checked
 * here) into st->n and the bytes of their names into *name_bytes. */
static int st_count_tensors(attn_safetensors *st, const cJSON *root, size_t *name_bytes,
                            attn_error *err) {
    size_t n = 0, bytes = 0;
    bool seen_meta = false;
    int rc;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, ST_METADATA) == 0) {
            if (seen_meta)
                return attn_error_set(err, ATTN_ERR_FORMAT, "%s: duplicate " ST_METADATA,
                                      st->name);
            seen_meta = true;
            if ((rc = st_check_metadata(st, e, err)) != ATTN_OK) return rc;
            continue;
        }
        if (++n > ATTN_ST_TENSORS_MAX)
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: header has more than the limit of %zu tensors", st->name,
                                  (size_t)ATTN_ST_TENSORS_MAX);
        if (!attn_add_size(bytes, strlen(e->string) + 1, &bytes))
            return attn_error_set(err, ATTN_ERR_NOMEM, "%s: tensor names overflow", st->name);
    }
    st->n = n;
    *name_bytes = bytes;
    return ATTN_OK;
}

/* The arrays of st->n tensors, the name arena and table, and *spans[n]. */
static int st_alloc_tensors(attn_safetensors *st, size_t name_bytes, st_span **spans,
                            attn_error *err) {
    const char *sn = st->name;
    size_t n = st->n;
    st->tensors = attn_calloc_array(n, sizeof *st->tensors, sn, err);
    st->owned = st->tensors ? attn_calloc_array(n, sizeof *st->owned, sn, err) : NULL;
    st->names = st->owned ? attn_alloc_array(name_bytes, 1, sn, err) : NULL;
    *spans = st->names ? attn_alloc_array(n, sizeof **spans, sn, err) : NULL;
    if (!*spans) return ATTN_ERR_NOMEM;
    return st_table_init(st, err);
}

/* Names every tensor, refuses a name given twice, and parses its entry
 * (spans[i] its byte range). */
static int st_parse_entries(attn_safetensors *st, const cJSON *root, uint64_t data_len,
                            st_span *spans, attn_error *err) {
    size_t i = 0;
    char *np = st->names;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, ST_METADATA) == 0) continue;
        attn_tensor *t = &st->tensors[i];
        size_t l = strlen(e->string) + 1;
        memcpy(np, e->string, l);
        t->name = np;
        np += l;
        if (!st_table_insert(st, i))
            return attn_error_set(err, ATTN_ERR_FORMAT,
                                  "%s: tensor '%s' appears twice in the header", st->name,
                                  t->name);
        int rc = st_parse_entry(st, e, t, data_len, &spans[i].begin, &spans[i].end, err);
        if (rc != ATTN_OK) return rc;
        spans[i].idx = i;
        i++;
    }
    return ATTN_OK;
}

/* Validates buf and fills st (st->name set). On failure st is half-built;
 * the caller closes it. */
static int st_build(attn_safetensors *st, const unsigned char *buf, size_t len, attn_error *err) {
    size_t hl = 0, name_bytes = 0;
    int rc = st_header_length(st, buf, len, &hl, err);
    if (rc != ATTN_OK) return rc;
    const unsigned char *data = buf + ST_LEN_BYTES + hl;
    uint64_t data_len = (uint64_t)(len - ST_LEN_BYTES - hl);
    cJSON *root;
    if ((rc = st_parse_json(st, buf + ST_LEN_BYTES, hl, &root, err)) != ATTN_OK) return rc;
    st_span *spans = NULL;
    if ((rc = st_count_tensors(st, root, &name_bytes, err)) == ATTN_OK &&
        (rc = st_alloc_tensors(st, name_bytes, &spans, err)) == ATTN_OK &&
        (rc = st_parse_entries(st, root, data_len, spans, err)) == ATTN_OK)
        rc = st_check_tiling(st, spans, data_len, err);
    /* Only now, with every range checked, touch the data. spans[] is sorted,
     * so map each tensor back through idx. */
    for (size_t k = 0; rc == ATTN_OK && k < st->n; k++)
        rc = st_materialize(st, spans[k].idx, data + spans[k].begin, err);
    free(spans);
    cJSON_Delete(root);
    return rc;
}

static attn_safetensors *st_new(const char *name, attn_error *err) {
    attn_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    st->name = strdup(name);
    if (!st->name) {
        free(st);
        attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Public: reading                                                           */

attn_status attn_safetensors_parse(attn_safetensors **out, const void *buf, size_t len, const char *name,
                           attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_safetensors_parse: out is NULL");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!buf && len > 0)
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: NULL buffer of %zu bytes", name, len);
    attn_safetensors *st = st_new(name, err);
    if (!st) return ATTN_ERR_NOMEM;
    int rc = st_build(st, buf, len, err);
    if (rc != ATTN_OK) {
        attn_safetensors_close(st);
        return rc;
    }
    *out = st;
    return ATTN_OK;
}

attn_status attn_safetensors_open(attn_safetensors **out, const char *path, attn_error *err) {
    if (!out) return attn_error_set(err, ATTN_ERR_USAGE, "attn_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return attn_error_set(err, ATTN_ERR_USAGE, "attn_safetensors_open: path is NULL");
    attn_safetensors *st = st_new(path, err);
    if (!st) return ATTN_ERR_NOMEM;
    /* registered under st->name, which lives as long as the mapping */
    int rc = attn_map_file(path, st->name, &st->file, err);
    if (rc) {
        attn_safetensors_close(st);
        return rc;
    }
    static const unsigned char empty[1] = {0}; /* an empty file has no buffer */
    rc = st_build(st, st->file.data ? st->file.data : empty, st->file.len, err);
    if (rc != ATTN_OK) {
        attn_safetensors_close(st);
        return rc;
    }
    *out = st;
    return ATTN_OK;
}

void attn_safetensors_close(attn_safetensors *st) {
    if (!st) return;
    if (st->owned)
        for (size_t i = 0; i < st->n; i++) free(st->owned[i]);
    free(st->owned);
    free(st->tensors);
    free(st->names);
    free(st->slots);
    attn_unmap_file(&st->file);
    free(st->name);
    free(st);
}

attn_status attn_safetensors_check(const attn_safetensors *st, attn_error *err) {
    return st ? attn_image_check(&st->file, st->name, err) : ATTN_OK;
}

const char *attn_safetensors_name(const attn_safetensors *st) { return st ? st->name : NULL; }

size_t attn_safetensors_count(const attn_safetensors *st) { return st ? st->n : 0; }

const attn_tensor *attn_safetensors_at(const attn_safetensors *st, size_t i) {
    if (!st || i >= st->n) return NULL;
    return &st->tensors[i];
}

const attn_tensor *attn_safetensors_find(const attn_safetensors *st, const char *name) {
    if (!st || !name || !st->slots) return NULL;
    size_t slot = st_table_probe(st, name);
    return st->slots[slot] ? &st->tensors[st->slots[slot] - 1] : NULL;
}

/* ------------------------------------------------------------------------ */
/* Public: writing                                                           */

/* Writes n bytes to f: 0 or an errno value. */
static int st_write_all(FILE *f, const void *p, size_t n) {
    if (n > 0 && fwrite(p, 1, n, f) != n) return errno ? errno : EIO;
    return 0;
}

/* Writes x[n] as little-endian float32. */
static int st_write_floats(FILE *f, const float *x, size_t n) {
    if (ATTN_HOST_LE) return st_write_all(f, x, n * sizeof *x);
    unsigned char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            attn_store_le32(buf + 4 * i, u);
        }
        int e = st_write_all(f, buf, 4 * k);
        if (e) return e;
        x += k;
        n -= k;
    }
    return 0;
}

static cJSON *st_raw_uint(uint64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(num);
}

/* Checks the specs and computes each tensor's byte size (the data area in
 * all stays <= 2^53 bytes, so every offset in the header is exact). */
static int st_check_specs(const char *path, const attn_tensor_spec *specs, size_t n,
                          size_t *bytes, attn_error *err) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const attn_tensor_spec *s = &specs[i];
        if (!s->name)
            return attn_error_set(err, ATTN_ERR_USAGE, "%s: tensor %zu has no name", path, i);
        if (strcmp(s->name, ST_METADATA) == 0)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: tensor %zu: the name " ST_METADATA " is reserved", path, i);
        if (s->ndim < 0 || s->ndim > ATTN_MAX_DIMS)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: tensor '%s': ndim %d outside 0..%d", path, s->name,
                                  s->ndim, ATTN_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            if (s->shape[d] < 0 || (uint64_t)s->shape[d] > ATTN_ST_INT_MAX)
                return attn_error_set(err, ATTN_ERR_USAGE,
                                      "%s: tensor '%s': shape[%d] = %lld outside 0..2^53", path,
                                      s->name, d, (long long)s->shape[d]);
            if ((uint64_t)s->shape[d] > SIZE_MAX ||
                !attn_mul_size(numel, (size_t)s->shape[d], &numel))
                return attn_error_set(err, ATTN_ERR_USAGE,
                                      "%s: tensor '%s': shape product overflows", path, s->name);
        }
        if (!attn_mul_size(numel, sizeof(float), &bytes[i]) ||
            __builtin_add_overflow(total, (uint64_t)bytes[i], &total) || total > ATTN_ST_INT_MAX)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: tensor '%s': data size overflows", path, s->name);
        if (numel > 0 && !s->data)
            return attn_error_set(err, ATTN_ERR_USAGE,
                                  "%s: tensor '%s': data is NULL for %zu elements", path, s->name,
                                  numel);
    }
    return ATTN_OK;
}

/* Builds the padded header text: JSON then spaces up to a multiple of 8. */
static int st_build_header(const char *path, const attn_tensor_spec *specs, size_t n,
                           const size_t *bytes, char **out, size_t *out_len, attn_error *err) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const attn_tensor_spec *s = &specs[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToObject(root, s->name, e)) {
            cJSON_Delete(e);
            goto oom;
        }
        cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!cJSON_AddStringToObject(e, "dtype", "F32") || !shape ||
            !cJSON_AddItemToObject(e, "shape", shape)) {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            goto oom;
        }
        if (!offs || !cJSON_AddItemToObject(e, "data_offsets", offs)) {
            cJSON_Delete(offs);
            goto oom;
        }
        for (int d = 0; d < s->ndim; d++) {
            cJSON *v = st_raw_uint((uint64_t)s->shape[d]);
            if (!v || !cJSON_AddItemToArray(shape, v)) {
                cJSON_Delete(v);
                goto oom;
            }
        }
        uint64_t pair[2] = {off, off + bytes[i]};
        for (int k = 0; k < 2; k++) {
            cJSON *v = st_raw_uint(pair[k]);
            if (!v || !cJSON_AddItemToArray(offs, v)) {
                cJSON_Delete(v);
                goto oom;
            }
        }
        off = pair[1];
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    root = NULL;
    if (!json) goto oom;
    size_t jl = strlen(json), padded;
    if (!attn_add_size(jl, 7, &padded) || (padded &= ~(size_t)7) > ATTN_ST_HEADER_MAX) {
        free(json);
        return attn_error_set(err, ATTN_ERR_USAGE,
                              "%s: header of %zu bytes exceeds the 100 MB limit", path, jl);
    }
    char *h = realloc(json, padded + 1);
    if (!h) {
        free(json);
        goto oom;
    }
    memset(h + jl, ' ', padded - jl);
    h[padded] = '\0';
    *out = h;
    *out_len = padded;
    return ATTN_OK;
oom:
    cJSON_Delete(root);
    return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory building the header", path);
}

/* The names must be distinct: checked with a name table like the reader's. */
static int st_check_unique(const char *path, const attn_tensor_spec *specs, size_t n,
                           attn_error *err) {
    attn_safetensors names = {.name = (char *)path, .n = n};
    int rc = ATTN_ERR_NOMEM;
    names.tensors = attn_calloc_array(n, sizeof *names.tensors, path, err);
    if (names.tensors) rc = st_table_init(&names, err);
    for (size_t i = 0; rc == ATTN_OK && i < n; i++) {
        names.tensors[i].name = specs[i].name;
        if (!st_table_insert(&names, i))
            rc = attn_error_set(err, ATTN_ERR_USAGE, "%s: tensor '%s' is given twice", path,
                                specs[i].name);
    }
    free(names.tensors);
    free(names.slots);
    return rc;
}

/* The file image: the header length, the header, the tensors in order.
 * Returns 0 or an errno value. */
static int st_write_image(FILE *f, const char *header, size_t hlen,
                          const attn_tensor_spec *specs, const size_t *bytes, size_t n) {
    unsigned char lenbuf[ST_LEN_BYTES];
    attn_store_le64(lenbuf, (uint64_t)hlen);
    int e = st_write_all(f, lenbuf, sizeof lenbuf);
    if (!e) e = st_write_all(f, header, hlen);
    for (size_t i = 0; !e && i < n; i++)
        if (bytes[i] > 0) e = st_write_floats(f, specs[i].data, bytes[i] / sizeof(float));
    return e;
}

/* Writes the image to a temporary next to path and renames it into place
 * (base/tmpfile.h). */
static int st_write_file(const char *path, const char *header, size_t hlen,
                         const attn_tensor_spec *specs, const size_t *bytes, size_t n,
                         attn_error *err) {
    FILE *f;
    char *tmp;
    attn_tmp_step step;
    int e = attn_tmpfile_open(path, &f, &tmp, &step);
    if (e && step == ATTN_TMP_NAME)
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
    if (e)
        return attn_error_set(err, ATTN_ERR_IO, "%s: cannot create a temporary file: %s", path,
                              strerror(e));
    e = attn_tmpfile_commit(f, tmp, path, st_write_image(f, header, hlen, specs, bytes, n), &step);
    int rc = ATTN_OK;
    if (e && step == ATTN_TMP_RENAME)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                            strerror(e));
    else if (e)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
    free(tmp);
    return rc;
}

attn_status attn_safetensors_write(const char *path, const attn_tensor_spec *tensors, size_t n,
                           attn_error *err) {
    if (!path) return attn_error_set(err, ATTN_ERR_USAGE, "attn_safetensors_write: path is NULL");
    if (n > 0 && !tensors)
        return attn_error_set(err, ATTN_ERR_USAGE, "%s: %zu tensors but no array", path, n);
    size_t *bytes = attn_alloc_array(n, sizeof *bytes, path, err);
    if (!bytes) return ATTN_ERR_NOMEM;
    char *header = NULL;
    size_t hlen = 0;
    int rc = st_check_specs(path, tensors, n, bytes, err);
    if (rc == ATTN_OK) rc = st_check_unique(path, tensors, n, err);
    if (rc == ATTN_OK) rc = st_build_header(path, tensors, n, bytes, &header, &hlen, err);
    if (rc == ATTN_OK) rc = st_write_file(path, header, hlen, tensors, bytes, n, err);
    free(header);
    free(bytes);
    return rc;
}
