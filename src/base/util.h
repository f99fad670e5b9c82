/* Private helpers shared by the library: errors, checked size arithmetic, files. */
#ifndef ATTN_UTIL_H
#define ATTN_UTIL_H

#include "attn/attn.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Checked size arithmetic: return false on overflow (then *out is unspecified). */
static inline bool attn_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool attn_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* malloc of n * size bytes with an overflow check; NULL on overflow or OOM
 * (and err filled with ATTN_ERR_NOMEM naming `what`). n == 0 allocates 1 byte. */
void *attn_alloc_array(size_t n, size_t size, const char *what, attn_error *err);
void *attn_calloc_array(size_t n, size_t size, const char *what, attn_error *err);

/* Reads a whole file into a malloc'd buffer (NUL-terminated, *len excludes
 * the NUL), as attn_read_stream (attn.h): more than max bytes is refused
 * naming the limit of `what` ("a config"), from the size of a regular file
 * before reading it, while reading for a pipe or a device. */
attn_status attn_read_file(const char *path, size_t max, const char *what, char **buf,
                           size_t *len, attn_error *err);

/* Reads a whole regular file with read(2) into memory of its own, page
 * aligned (*data is NULL for an empty file); release with attn_unload_file.
 * A file read this way cannot lose pages to a truncation by someone else
 * after the load (the weights are mapped instead, attn_map_file), and one
 * that changes size during the load is ATTN_ERR_IO ("the file shrank while
 * being read"). A missing file, a directory or another
 * kind of file is ATTN_ERR_IO naming the path. */
attn_status attn_load_file(const char *path, void **data, size_t *len, attn_error *err);
void attn_unload_file(void *data, size_t len);

/* A file's bytes for a reader that only reads them: the weights. */
typedef enum attn_image_kind {
    ATTN_IMAGE_NONE,   /* nothing held (an empty file) */
    ATTN_IMAGE_MAPPED, /* a read-only mapping of the file (mmap PROT_READ, MAP_PRIVATE) */
    ATTN_IMAGE_LOADED, /* read into pages of its own (attn_load_file) */
    ATTN_IMAGE_STREAM, /* read from a pipe or another stream into malloc'd memory */
} attn_image_kind;

typedef struct attn_file_image {
    const unsigned char *data; /* [len]; NULL when len is 0 */
    size_t len;
    attn_image_kind kind;
    int fd;                    /* MAPPED: the file, kept open for attn_image_check */
    int64_t mtime_s, mtime_ns; /* MAPPED: its modification time when mapped */
} attn_file_image;

/* Opens path read-only and gives its bytes in *img: a regular file of
 * non-zero size is mapped (PROT_READ, MAP_PRIVATE: the pages are the page
 * cache's, shared with every process that reads the file, and none is read
 * before it is touched). A file the kernel cannot map (sysfs attributes), a
 * regular file of size 0 (the /proc files) and a file that is not regular
 * (a pipe, /dev/stdin) are read instead, as attn_load_file (a file whose
 * size changes during the read is ATTN_ERR_IO) or, for a stream, to its
 * end. A directory, a missing file or an unreadable one is ATTN_ERR_IO
 * naming the path. Release with attn_unmap_file (NULL and a zeroed image
 * are fine).
 *
 * A mapped file that someone truncates afterwards takes its pages away:
 * touching one raises SIGBUS. The library cannot recover from it; a program
 * that wants a clear message catches SIGBUS and asks attn_mapping_at
 * (base/tmpfile.h) whether the faulting address lies in a mapped file. The
 * mapping is registered there under name by attn_map_file (when fewer than
 * ATTN_MAP_TRACK_MAX are) and forgotten by attn_unmap_file; name must stay
 * valid until then. Rewriting a file
 * through a new file renamed over it (as attn's own writers do) leaves the
 * mapping as it was. */
attn_status attn_map_file(const char *path, const char *name, attn_file_image *img,
                          attn_error *err);
void attn_unmap_file(attn_file_image *img);

/* A mapped file rewritten in place without a change of size loses no page,
 * so no SIGBUS tells of it: its pages just start to show the new bytes.
 * This sees it afterwards: ATTN_ERR_IO "NAME: the weights file changed while
 * attn was reading it" when the file's size or modification time is not
 * what it was when mapped, else ATTN_OK (also for an image that was read:
 * a copy cannot change). One fstat. */
attn_status attn_image_check(const attn_file_image *img, const char *name, attn_error *err);

/* Joins dir and rel ("a/b" + "c" = "a/b/c"; an absolute rel is kept). */
attn_status attn_path_join(char *out, size_t cap, const char *dir, const char *rel,
                           attn_error *err);

/* Length of the UTF-8 byte order mark at the start of a text buffer (EF BB
 * BF): 3 when it is there, else 0. Text inputs (configs, vocabularies, CSV)
 * skip it, so that it never becomes part of a key, a token or a number. */
static inline size_t attn_bom_len(const void *buf, size_t len) {
    const unsigned char *b = buf;
    return len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF ? 3 : 0;
}

/* The threads for `units` independent units (rows, tiles, chunks) of
 * `work` in all: 1 below min_work or for fewer than 2 units, else
 * attn_threads(), at most one a unit. */
int attn_threads_for(double work, double min_work, long units);

#endif
