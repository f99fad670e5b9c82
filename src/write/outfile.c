/* Output files are written to a temporary name next to the target and
 * renamed at the end (base/tmpfile.h), so a failed or interrupted run leaves
 * nothing behind. The temporaries still open are registered (base/tmpfile.h),
 * so that a signal handler can remove them (attn_outfile_abort_all).
 *
 * A target that exists and is not a regular file (a character device such
 * as /dev/null or /dev/full, a FIFO, a socket), and any path under /dev/ or
 * /proc/ (/dev/stdout, /dev/fd/N, /proc/self/fd/N), is written straight
 * through: renaming a file over it would replace the device or the link
 * for everyone. */
#include "attn/write.h"

#include "base/tmpfile.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every temporary of the library is registered in base/tmpfile.c, which
 * removes them all (async-signal-safe). */
void attn_outfile_abort_all(void) { attn_tmp_remove_all(); }

/* Is path written straight through rather than through a temporary? */
static bool is_direct(const char *path, bool *append) {
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    *append = exists && S_ISREG(sb.st_mode); /* /dev/fd/N on a file the shell opened */
    return strncmp(path, "/dev/", 5) == 0 || strncmp(path, "/proc/", 6) == 0 ||
           (exists && !S_ISREG(sb.st_mode));
}

/* Opens o->path itself for writing (no temporary, no rename). */
static attn_status open_direct(attn_outfile *o, bool append, attn_error *err) {
    int fd = open(o->path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : 0));
    if (fd >= 0 && !(o->f = fdopen(fd, "w"))) close(fd);
    if (o->f) return ATTN_OK;
    attn_status rc = attn_error_set(err, ATTN_ERR_IO, "%s: cannot open: %s", o->path,
                                    strerror(errno));
    free(o->path);
    o->path = NULL;
    return rc;
}

attn_status attn_outfile_open(attn_outfile *o, const char *path, attn_error *err) {
    memset(o, 0, sizeof *o);
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return ATTN_OK;
    }
    if (!path[0]) return attn_error_set(err, ATTN_ERR_USAGE, "an output path is empty");
    o->path = strdup(path);
    if (!o->path) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
    bool append;
    if (is_direct(path, &append)) return open_direct(o, append, err);
    attn_tmp_step step;
    int e = attn_tmpfile_open(path, &o->f, &o->tmp, &step);
    if (e) {
        free(o->path);
        o->path = NULL;
        if (step == ATTN_TMP_NAME)
            return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
        if (step == ATTN_TMP_CREATE)
            return attn_error_set(err, ATTN_ERR_IO, "%s: cannot create: %s", path, strerror(e));
        return attn_error_set(err, ATTN_ERR_IO, "%s: %s", path, strerror(e));
    }
    static const int bufsize = 1 << 20;
    setvbuf(o->f, NULL, _IOFBF, bufsize);
    return ATTN_OK;
}

attn_status attn_outfile_commit(attn_outfile *o, attn_error *err) {
    if (!o->f) return ATTN_OK;
    if (!o->path) { /* standard output */
        o->f = NULL;
        if (fflush(stdout) != 0 || ferror(stdout))
            return attn_error_set(err, ATTN_ERR_IO, "standard output: %s", strerror(errno));
        return ATTN_OK;
    }
    attn_tmp_step step;
    int e;
    if (o->tmp) {
        e = attn_tmpfile_commit(o->f, o->tmp, o->path, 0, &step);
    } else { /* written straight through */
        e = fflush(o->f) != 0 ? errno : ferror(o->f) ? EIO : 0;
        if (fclose(o->f) != 0 && !e) e = errno;
    }
    int rc = ATTN_OK;
    if (e) rc = attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", o->path, strerror(e));
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return rc;
}

void attn_outfile_abort(attn_outfile *o) {
    if (!o->tmp && o->path && o->f) fclose(o->f); /* written straight through */
    if (o->tmp) attn_tmpfile_discard(o->f, o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
