/* Output files are written to a temporary name next to the target and
 * renamed at the end (base/tmpfile.h), so a failed or interrupted run leaves
 * nothing behind. The temporaries still open are listed here, so that a
 * signal handler can remove them (attn_outfile_abort_all). */
#include "attn/write.h"

#include "base/tmpfile.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
    o->path = strdup(path);
    if (!o->path) return attn_error_set(err, ATTN_ERR_NOMEM, "%s: out of memory", path);
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
    track(o->tmp, true);
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
    int e = attn_tmpfile_commit(o->f, o->tmp, o->path, 0, &step);
    int rc = ATTN_OK;
    if (e) rc = attn_error_set(err, ATTN_ERR_IO, "%s: write failed: %s", o->path, strerror(e));
    track(o->tmp, false);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return rc;
}

void attn_outfile_abort(attn_outfile *o) {
    if (o->tmp) {
        attn_tmpfile_discard(o->f, o->tmp);
        track(o->tmp, false);
    }
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
