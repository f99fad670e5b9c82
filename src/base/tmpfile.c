/* Files and folders that appear under their name only when complete
 * (base/tmpfile.h). */
#include "base/tmpfile.h"

#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_ATTEMPTS 100

/* A starting point for the names, different for every call: the time, the
 * process and a counter (two threads in the same nanosecond still differ). */
static uint64_t tmp_seed(void) {
    static atomic_uint_fast64_t calls;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t n = (uint64_t)atomic_fetch_add(&calls, 1);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 32) ^
           n * UINT64_C(0x9e3779b97f4a7c15);
}

int attn_tmp_create(char *tmp, size_t cap, const char *path, int *fd) {
    size_t n = strlen(path);
    if (cap < n || cap - n < ATTN_TMP_SUFFIX_SIZE) return ENAMETOOLONG;
    memcpy(tmp, path, n);
    uint64_t x = tmp_seed();
    for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        snprintf(tmp + n, cap - n, ".tmp.%06llx", (unsigned long long)((x >> 40) & 0xffffff));
        /* O_EXCL: a name that exists, a symbolic link included, is never
         * opened, so the temporary is always a new file of our own */
        if (fd ? (*fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) >= 0
               : mkdir(tmp, 0777) == 0)
            return 0;
        if (errno != EEXIST) return errno;
    }
    return EEXIST;
}

int attn_tmpfile_open(const char *path, FILE **f, char **tmp, attn_tmp_step *step) {
    *f = NULL;
    *tmp = NULL;
    size_t cap;
    char *name = NULL;
    if (!attn_add_size(strlen(path), ATTN_TMP_SUFFIX_SIZE, &cap) || !(name = malloc(cap))) {
        *step = ATTN_TMP_NAME;
        return ENOMEM;
    }
    int fd, e = attn_tmp_create(name, cap, path, &fd);
    if (e) {
        free(name);
        *step = ATTN_TMP_CREATE;
        return e;
    }
    FILE *s = fdopen(fd, "wb");
    if (!s) {
        e = errno;
        close(fd);
        unlink(name);
        free(name);
        *step = ATTN_TMP_OPEN;
        return e;
    }
    *f = s;
    *tmp = name;
    return 0;
}

int attn_tmpfile_commit(FILE *f, const char *tmp, const char *path, int write_err,
                        attn_tmp_step *step) {
    *step = ATTN_TMP_WRITE;
    int e = write_err;
    if (!e && (fflush(f) != 0 || ferror(f))) e = errno ? errno : EIO;
    /* To disk before the rename: otherwise a crash soon after can leave the
     * rename done but the data not yet written, an empty or partial file
     * under the target's name, which is what the temporary is there to
     * prevent. */
    if (!e && fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        *step = ATTN_TMP_RENAME;
    }
    if (e) unlink(tmp);
    return e;
}

void attn_tmpfile_discard(FILE *f, const char *tmp) {
    if (f) fclose(f);
    if (tmp) unlink(tmp);
}
