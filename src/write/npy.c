/* NumPy .npy files of float32 arrays, written as a stream: the header with
 * the whole shape first, then the values in C order, in as many pieces as
 * the caller likes (one head at a time for the per-head dumps).
 *
 * Format 1.0 (numpy/lib/format.py): the magic "\x93NUMPY", the version bytes
 * 1 0, a little-endian uint16 header length, then the header: a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (A, B, ), }
 * padded with spaces and ended by '\n' so that the data starts at a multiple
 * of 64 bytes. The data are little-endian IEEE float32 whatever the host. */
#include "attn/write.h"

#include <stdio.h>
#include <string.h>

enum { NPY_PREAMBLE = 10, NPY_ALIGN = 64 };

attn_status attn_npy_header(char *buf, size_t cap, size_t *len, const int64_t *shape, int ndim,
                            attn_error *err) {
    *len = 0;
    if (ndim < 0 || ndim > ATTN_MAX_DIMS)
        return attn_error_set(err, ATTN_ERR_USAGE, ".npy header: %d dimensions (0 to %d)", ndim,
                              ATTN_MAX_DIMS);
    char dict[ATTN_NPY_HEADER_MAX];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return attn_error_set(err, ATTN_ERR_USAGE, ".npy header: dimension %d is negative (%lld)",
                                  i, (long long)shape[i]);
        if (__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel) || numel > SIZE_MAX / 4)
            return attn_error_set(err, ATTN_ERR_NOMEM, ".npy header: the element count overflows");
        /* a 1-d shape is written (N,), as Python does */
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%lld,%s", (long long)shape[i],
                              i + 1 < ndim ? " " : "");
    }
    n += (size_t)snprintf(dict + n, sizeof dict - n, "), }");
    /* preamble + dict + spaces + '\n' is a multiple of NPY_ALIGN */
    size_t total = (NPY_PREAMBLE + n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total > cap)
        return attn_error_set(err, ATTN_ERR_USAGE, ".npy header: %zu bytes do not fit in %zu",
                              total, cap);
    const size_t hlen = total - NPY_PREAMBLE;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + NPY_PREAMBLE, dict, n);
    memset(buf + NPY_PREAMBLE + n, ' ', hlen - n - 1);
    buf[total - 1] = '\n';
    *len = total;
    return ATTN_OK;
}

attn_status attn_npy_begin(attn_npy_writer *w, FILE *f, const int64_t *shape, int ndim,
                           attn_error *err) {
    memset(w, 0, sizeof *w);
    char hdr[ATTN_NPY_HEADER_MAX];
    size_t len;
    attn_status rc = attn_npy_header(hdr, sizeof hdr, &len, shape, ndim, err);
    if (rc) return rc;
    w->f = f;
    w->total = 1;
    for (int i = 0; i < ndim; i++) w->total *= (uint64_t)shape[i]; /* checked by the header */
    if (fwrite(hdr, 1, len, f) != len) return attn_error_set(err, ATTN_ERR_IO, "write failed");
    return ATTN_OK;
}

static bool host_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

attn_status attn_npy_write(attn_npy_writer *w, const float *data, size_t n, attn_error *err) {
    if (n > w->total - w->done)
        return attn_error_set(err, ATTN_ERR_INTERNAL,
                              ".npy data: %zu more values than the %llu of the header", n,
                              (unsigned long long)(w->total - w->done));
    if (host_little_endian()) {
        if (fwrite(data, sizeof *data, n, w->f) != n)
            return attn_error_set(err, ATTN_ERR_IO, "write failed");
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8),
                                  (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
            if (fwrite(b, 1, 4, w->f) != 4) return attn_error_set(err, ATTN_ERR_IO, "write failed");
        }
    }
    w->done += n;
    return ATTN_OK;
}

bool attn_npy_complete(const attn_npy_writer *w) { return w->done == w->total; }
