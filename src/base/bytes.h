/* Private byte helpers shared by the file parsers and writers: little-endian
 * loads and stores (safetensors, .npy, llama2.c checkpoints and tokenizers
 * are little-endian on every host) and the 64-bit FNV-1a hash of the name
 * tables. */
#ifndef ATTN_BYTES_H
#define ATTN_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ATTN_HOST_LE 1 /* a float in memory is its little-endian file image */
#else
#define ATTN_HOST_LE 0
#endif

static inline uint16_t attn_le16(const void *p) {
    const unsigned char *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t attn_le32(const void *p) {
    const unsigned char *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t attn_le64(const void *p) {
    const unsigned char *b = p;
    return (uint64_t)attn_le32(b) | (uint64_t)attn_le32(b + 4) << 32;
}

static inline int32_t attn_le_i32(const void *p) {
    uint32_t u = attn_le32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The float32 whose IEEE bits are `bits`. */
static inline float attn_f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The IEEE bits of the float32 f. */
static inline uint32_t attn_f32_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float attn_le_f32(const void *p) { return attn_f32_from_bits(attn_le32(p)); }

static inline double attn_le_f64(const void *p) {
    uint64_t u = attn_le64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void attn_store_le32(void *p, uint32_t v) {
    unsigned char *b = p;
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static inline void attn_store_le64(void *p, uint64_t v) {
    unsigned char *b = p;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* 64-bit FNV-1a of n bytes, streamable: attn_fnv1a(attn_fnv1a(ATTN_FNV1A_INIT,
 * a, na), b, nb) is the hash of a followed by b. */
#define ATTN_FNV1A_INIT UINT64_C(0xcbf29ce484222325)
static inline uint64_t attn_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

#endif
