#include "base/util.h"

#include "base/tmpfile.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes asked of one read(2): Linux returns at most about 2 GiB a call. */
#define LOAD_CHUNK ((size_t)1 << 30)
#define HUGE_PAGE ((size_t)2 << 20)

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

/* "1 MiB", "64 MiB", "2 GiB", else "N-byte": the limit in a message. */
static void limit_text(char *buf, size_t cap, size_t n) {
    if (n >= ((size_t)1 << 30) && n % ((size_t)1 << 30) == 0)
        snprintf(buf, cap, "%zu GiB", n >> 30);
    else if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0)
        snprintf(buf, cap, "%zu MiB", n >> 20);
    else
        snprintf(buf, cap, "%zu-byte", n);
}

static attn_status over_limit(attn_error *err, const char *name, const char *size, size_t max,
                              const char *what) {
    char lim[32];
    limit_text(lim, sizeof lim, max);
    return attn_error_set(err, ATTN_ERR_FORMAT, "%s: %smore than the %s limit of %s (%zu bytes)",
                          name, size, lim, what, max);
}

attn_status attn_read_stream(FILE *f, size_t max, const char *name, const char *what,
                             char **buf, size_t *len, attn_error *err) {
    *buf = NULL;
    *len = 0;
    size_t cap = 0, n = 0;
    char *b = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max) break; /* read max + 1 bytes or more: over */
            size_t grown = cap ? 2 * cap : 4096;
            char *p = realloc(b, grown + 1); /* + 1: the NUL */
            if (!p) {
                free(b);
                return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
            }
            b = p;
            cap = grown;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(b);
        return attn_error_set(err, ATTN_ERR_IO, "%s: read error", name);
    }
    if (n > max) {
        free(b);
        return over_limit(err, name, "", max, what);
    }
    if (!b && !(b = malloc(1))) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", name);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return ATTN_OK;
}

attn_status attn_read_file(const char *path, size_t max, const char *what, char **buf,
                           size_t *len, attn_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    attn_status rc = ATTN_OK;
    if (fstat(fileno(f), &st) != 0) {
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: is a directory", path);
    } else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max) {
        /* from its size: a sparse 20 MB file is refused without reading it */
        char size[48];
        snprintf(size, sizeof size, "file is %llu bytes, ", (unsigned long long)st.st_size);
        rc = over_limit(err, path, size, max, what);
    } else {
        rc = attn_read_stream(f, max, path, what, buf, len, err);
    }
    fclose(f);
    return rc;
}

/* read(2), again when a signal interrupted it. */
static ssize_t read_retry(int fd, void *buf, size_t n) {
    ssize_t r;
    do r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Reads len bytes of fd into buf; a file that ends before them "shrank",
 * one that has more after them "grew". */
static attn_status load_bytes(int fd, unsigned char *buf, size_t len, const char *path,
                              attn_error *err) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = read_retry(fd, buf + got, len - got < LOAD_CHUNK ? len - got : LOAD_CHUNK);
        if (r < 0)
            return attn_error_set(err, ATTN_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (r == 0)
            return attn_error_set(err, ATTN_ERR_IO,
                                  "%s: the file shrank while being read (%zu of %zu bytes)", path,
                                  got, len);
        got += (size_t)r;
    }
    unsigned char extra;
    if (read_retry(fd, &extra, 1) > 0)
        return attn_error_set(err, ATTN_ERR_IO,
                              "%s: the file grew while being read (beyond %zu bytes)", path, len);
    return ATTN_OK;
}

/* The bytes the image of an n-byte file takes: whole pages. */
static bool image_bytes(size_t n, size_t *cap) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return attn_add_size(n, page - 1, cap) && (*cap -= *cap % page, true);
}

/* Anonymous memory for an n-byte image (*cap bytes, image_bytes). From 2 MiB
 * on it starts on a 2 MiB boundary and asks for transparent huge pages:
 * fewer page faults, which are most of the cost of reading a large file into
 * new memory (three times faster for 100 MB). NULL when out of memory. */
static void *image_alloc(size_t n) {
    size_t cap, big;
    if (!image_bytes(n, &cap)) return NULL;
    if (cap < HUGE_PAGE || !attn_add_size(cap, HUGE_PAGE, &big)) {
        void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    unsigned char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE; /* a multiple of pages */
    if (head) munmap(p, head);
    if (big - head > cap) munmap(p + head + cap, big - head - cap);
#ifdef MADV_HUGEPAGE
    madvise(p + head, cap, MADV_HUGEPAGE); /* a hint: without it, small pages */
#endif
    return p + head;
}

void attn_unload_file(void *data, size_t len) {
    size_t cap;
    if (data && image_bytes(len, &cap)) munmap(data, cap);
}

attn_status attn_load_file(const char *path, void **data, size_t *len, attn_error *err) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    int rc = ATTN_OK;
    void *buf = NULL;
    if (fstat(fd, &sb) != 0)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(EISDIR));
    else if (!S_ISREG(sb.st_mode))
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX)
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: file too large to read", path);
    size_t n = rc == ATTN_OK ? (size_t)sb.st_size : 0;
    if (n > 0 && !(buf = image_alloc(n)))
        rc = attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, n);
    /* (an empty file too is read: one of /proc, sized 0, is not empty) */
    if (rc == ATTN_OK && (rc = load_bytes(fd, buf, n, path, err)) == ATTN_OK) {
        *data = buf;
        *len = n;
    }
    if (rc) attn_unload_file(buf, n);
    close(fd);
    return rc;
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

/* Reads the stream fd (a pipe, a terminal) to its end into img. */
static attn_status map_read_stream(int fd, const char *path, attn_file_image *img,
                                   attn_error *err) {
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        attn_status rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    char *buf;
    size_t len;
    attn_status rc = attn_read_stream(f, SIZE_MAX / 4, path, "a weights file", &buf, &len, err);
    fclose(f);
    if (rc) return rc;
    img->data = (const unsigned char *)buf;
    img->len = len;
    img->kind = ATTN_IMAGE_STREAM;
    return ATTN_OK;
}

attn_status attn_map_file(const char *path, const char *name, attn_file_image *img,
                          attn_error *err) {
    *img = (attn_file_image){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        attn_status rc = attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(EISDIR));
    }
    if (!S_ISREG(sb.st_mode)) return map_read_stream(fd, path, img, err);
    if (sb.st_size > 0 && (uint64_t)sb.st_size <= (uint64_t)SIZE_MAX) {
        size_t n = (size_t)sb.st_size;
        void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            attn_mapping_track(p, n, name); /* full: a SIGBUS in it goes unnamed */
#ifdef MADV_WILLNEED
            madvise(p, n, MADV_WILLNEED); /* a hint: start reading ahead */
#endif
            img->data = p;
            img->len = n;
            img->kind = ATTN_IMAGE_MAPPED;
            img->fd = fd;
            img->mtime_s = (int64_t)sb.st_mtim.tv_sec;
            img->mtime_ns = (int64_t)sb.st_mtim.tv_nsec;
            return ATTN_OK;
        }
    }
    close(fd);
    /* size 0 (the /proc files are not empty), or a file the kernel does not map */
    void *data;
    size_t len;
    attn_status rc = attn_load_file(path, &data, &len, err);
    if (rc) return rc;
    img->data = data;
    img->len = len;
    img->kind = data ? ATTN_IMAGE_LOADED : ATTN_IMAGE_NONE;
    return ATTN_OK;
}

void attn_unmap_file(attn_file_image *img) {
    if (!img) return;
    switch (img->kind) {
    case ATTN_IMAGE_MAPPED:
        attn_mapping_untrack(img->data);
        munmap((void *)(uintptr_t)img->data, img->len);
        close(img->fd);
        break;
    case ATTN_IMAGE_LOADED: attn_unload_file((void *)(uintptr_t)img->data, img->len); break;
    case ATTN_IMAGE_STREAM: free((void *)(uintptr_t)img->data); break;
    case ATTN_IMAGE_NONE: break;
    }
    *img = (attn_file_image){0};
}

attn_status attn_image_check(const attn_file_image *img, const char *name, attn_error *err) {
    if (!img || img->kind != ATTN_IMAGE_MAPPED) return ATTN_OK;
    struct stat sb;
    if (fstat(img->fd, &sb) != 0)
        return attn_error_set(err, ATTN_ERR_IO, "%s: %s", name, strerror(errno));
    if ((uint64_t)sb.st_size == (uint64_t)img->len && (int64_t)sb.st_mtim.tv_sec == img->mtime_s &&
        (int64_t)sb.st_mtim.tv_nsec == img->mtime_ns)
        return ATTN_OK;
    return attn_error_set(err, ATTN_ERR_IO,
                          "%s: the weights file changed while attn was reading it (%s since it "
                          "was opened)",
                          name,
                          (uint64_t)sb.st_size != (uint64_t)img->len ? "its size changed"
                                                                    : "modified in place");
}

/* ---- threads (attn/attn.h; the library's loops ask attn_threads_for) ---- */

static _Atomic int thread_setting; /* attn_set_threads; 0: the online cores */

void attn_set_threads(int n) { thread_setting = n > 0 ? (n < ATTN_THREADS_MAX ? n : ATTN_THREADS_MAX) : 0; }

int attn_threads(void) {
    int n = thread_setting;
    if (n > 0) return n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > ATTN_THREADS_MAX ? ATTN_THREADS_MAX : (int)cores;
}

int attn_threads_for(double work, double min_work, long units) {
    if (work < min_work || units < 2) return 1;
    const int n = attn_threads();
    return units < n ? (int)units : n;
}
