#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *attn_version(void) { return ATTN_VERSION_STRING; }

attn_status attn_error_setv(attn_error *err, attn_status status, const char *fmt, va_list ap) {
    if (err) {
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        /* keep it one line */
        for (char *p = err->message; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return (int)status;
}

attn_status attn_error_set(attn_error *err, attn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    attn_error_setv(err, status, fmt, ap);
    va_end(ap);
    return (int)status;
}

void attn_error_prefix(attn_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[ATTN_ERROR_MAX], old[ATTN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    if (snprintf(err->message, sizeof err->message, "%s: %s", prefix, old) < 0)
        memcpy(err->message, old, sizeof old);
}

void *attn_alloc_array(size_t n, size_t size, const char *what, attn_error *err) {
    size_t bytes;
    if (!attn_mul_size(n, size, &bytes)) {
        attn_error_set(err, ATTN_ERR_NOMEM, "%s: size overflows (%zu x %zu bytes)", what, n, size);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory (%zu bytes)", what, bytes);
    return p;
}

void *attn_calloc_array(size_t n, size_t size, const char *what, attn_error *err) {
    size_t bytes;
    if (!attn_mul_size(n, size, &bytes)) {
        attn_error_set(err, ATTN_ERR_NOMEM, "%s: size overflows (%zu x %zu bytes)", what, n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, n ? size : 1);
    if (!p) attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory (%zu bytes)", what, bytes);
    return p;
}

attn_status attn_read_file(const char *path, size_t max_bytes, char **buf, size_t *len,
                           attn_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return attn_error_set(err, ATTN_ERR_IO, "%s: is a directory", path);
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(b);
                fclose(f);
                return attn_error_set(err, ATTN_ERR_FORMAT, "%s: file is larger than %zu bytes",
                                      path, max_bytes);
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(f);
                return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return attn_error_set(err, ATTN_ERR_IO, "%s: read error", path);
    }
    if (n > max_bytes) {
        free(b);
        return attn_error_set(err, ATTN_ERR_FORMAT, "%s: file is larger than %zu bytes", path,
                              max_bytes);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return ATTN_OK;
}

attn_status attn_map_file(const char *path, void **map, size_t *len, attn_error *err) {
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    int rc = ATTN_OK;
    if (fstat(fd, &sb) != 0)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(EISDIR));
    else if (!S_ISREG(sb.st_mode))
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: file too large to map", path);
    if (rc == ATTN_OK && sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = attn_error_set(err, ATTN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        } else {
            *map = m;
            *len = (size_t)sb.st_size;
        }
    }
    close(fd);
    return rc;
}

void attn_unmap_file(void *map, size_t len) {
    if (map) munmap(map, len);
}

attn_status attn_path_join(char *out, size_t cap, const char *dir, const char *rel,
                           attn_error *err) {
    int n;
    if (rel[0] == '/' || !dir || !dir[0])
        n = snprintf(out, cap, "%s", rel);
    else
        n = snprintf(out, cap, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= cap)
        return attn_error_set(err, ATTN_ERR_USAGE, "path too long: %s", rel);
    return ATTN_OK;
}
