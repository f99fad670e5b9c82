/* Private: files written in full or not at all.
 *
 * The data goes to a new temporary next to the target, "<path>.tmp.XXXXXX"
 * (six random hex digits), which is renamed onto the target only when it is
 * complete: a reader never sees half a file, and a failed write leaves an
 * existing target as it was. Used by the output files (attn_outfile), the
 * safetensors writer and the llama2.c import (which also builds its whole
 * output folder under such a temporary name).
 *
 * Files get mode 0666 and folders 0777, less the umask, like any file a
 * program creates: the kernel applies the umask when creating them, so the
 * process umask is never read or changed (safe with threads).
 *
 * These return 0 or an errno value, and name the step that failed, so that
 * each caller words its own messages. */
#ifndef ATTN_TMPFILE_H
#define ATTN_TMPFILE_H

#include <stdio.h>

/* Bytes the temporary name adds to the target's, its NUL included. */
#define ATTN_TMP_SUFFIX_SIZE sizeof ".tmp.XXXXXX"

typedef enum attn_tmp_step {
    ATTN_TMP_NAME,   /* allocating the temporary's name (ENOMEM) */
    ATTN_TMP_CREATE, /* creating the temporary */
    ATTN_TMP_OPEN,   /* opening a stream on it */
    ATTN_TMP_WRITE,  /* writing, flushing, syncing or closing it */
    ATTN_TMP_RENAME, /* renaming it onto the target */
} attn_tmp_step;

/* Creates a new file (fd not NULL: opened write-only and close-on-exec, the
 * descriptor in *fd) or folder (fd NULL) named path + ".tmp.XXXXXX", the
 * name written to tmp[cap]. ENAMETOOLONG: cap < strlen(path) +
 * ATTN_TMP_SUFFIX_SIZE; EEXIST: every name tried was taken. */
int attn_tmp_create(char *tmp, size_t cap, const char *path, int *fd);

/* Creates a temporary file for path and opens it as the stream *f; *tmp is
 * its malloc'd name (the caller frees it after commit or discard). On failure
 * nothing is left behind, *f and *tmp are NULL and *step is ATTN_TMP_NAME,
 * ATTN_TMP_CREATE or ATTN_TMP_OPEN. */
int attn_tmpfile_open(const char *path, FILE **f, char **tmp, attn_tmp_step *step);

/* Finishes the temporary file f / tmp: with write_err 0 (the caller's writes
 * went well) flushes f, syncs it to disk, closes it and renames tmp onto path;
 * with write_err an errno value only closes f and removes tmp, and returns
 * write_err. f is closed in any case; on failure tmp is removed and *step is
 * ATTN_TMP_WRITE or ATTN_TMP_RENAME. */
int attn_tmpfile_commit(FILE *f, const char *tmp, const char *path, int write_err,
                        attn_tmp_step *step);

/* Closes f and removes tmp (either may be NULL). */
void attn_tmpfile_discard(FILE *f, const char *tmp);

#endif
