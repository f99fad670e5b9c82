/* Output files are written to a temporary name next to the target and
 * renamed at the end, so a failed or interrupted run leaves nothing behind. */
#include "attn/write.h"

#include "base/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporaries currently open, so a signal handler can remove them. */
#define OPEN_MAX 16
static char *volatile open_tmps[OPEN_MAX];

static void track(char *tmp, bool on) {
    for (int i = 0; i < OPEN_MAX; i++) {
        if (on && !open_tmps[i]) {
            open_tmps[i] = tmp;
            return;
        }
        if (!on && open_tmps[i] == tmp) {
            open_tmps[i] = NULL;
            return;
        }
    }
}

void attn_outfile_abort_all(void) {
    for (int i = 0; i < OPEN_MAX; i++)
        if (open_tmps[i]) unlink(open_tmps[i]); /* async-signal-safe */
}

attn_status attn_outfile_open(attn_outfile *o, const char *path, attn_error *err) {
    memset(o, 0, sizeof *o);
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return ATTN_OK;
    }
    size_t n = strlen(path);
    o->path = strdup(path);
    o->tmp = malloc(n + 16);
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return attn_error_set(err, ATTN_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    track(o->tmp, true);
    /* mkstemp creates 0600; the final file gets the usual 0666 less the umask
     * (the CLI is single-threaded, so reading the umask this way is safe).
     * Should fchmod fail, the file just stays private. */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    o->f = fdopen(fd, "w");
    if (!o->f) {
        int e = errno;
        close(fd);
        attn_outfile_abort(o);
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
    bool bad = ferror(o->f) != 0;
    int e = errno;
    if (fclose(o->f) != 0 && !bad) {
        bad = true;
        e = errno;
    }
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        bad = true;
        e = errno;
    }
    int rc = ATTN_OK;
    if (bad) {
        unlink(o->tmp);
        rc = attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", o->path, strerror(e));
    }
    track(o->tmp, false);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return rc;
}

void attn_outfile_abort(attn_outfile *o) {
    if (o->f && o->path) fclose(o->f);
    if (o->tmp) {
        unlink(o->tmp);
        track(o->tmp, false);
    }
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
