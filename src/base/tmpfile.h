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
 * each caller words its own messages.
 *
 * Every temporary is registered from its creation to its commit or discard
 * (the temporary files of attn_tmpfile_open, the folders of
 * attn_tmpdir_create and attn_tmptree_create), so that a signal handler can remove them all with
 * attn_tmp_remove_all. At most ATTN_TMP_TRACK_MAX at once; beyond that a
 * temporary works as usual but a signal leaves it behind. */
#ifndef ATTN_TMPFILE_H
#define ATTN_TMPFILE_H

#include "attn/attn.h"

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

#define ATTN_TMP_TRACK_MAX 32

/* A temporary folder and the names of the files it may come to hold. */
typedef struct attn_tmpdir {
    char path[ATTN_PATH_MAX];
    const char *const *names; /* [n], valid until discard or forget */
    size_t n;
} attn_tmpdir;

/* Creates a new folder path + ".tmp.XXXXXX" (attn_tmp_create: ENAMETOOLONG,
 * EEXIST or mkdir's errno) into d->path and registers it for
 * attn_tmp_remove_all with the files names[n]. */
int attn_tmpdir_create(attn_tmpdir *d, const char *path, const char *const *names, size_t n);

/* Removes the folder's files d->names, then the folder, and forgets it. */
void attn_tmpdir_discard(attn_tmpdir *d);

/* Forgets the folder (it was renamed into place, or emptied and removed). */
void attn_tmpdir_forget(attn_tmpdir *d);

/* A temporary folder of any content (files and folders, any depth): the
 * output folders of --dump and --heatmap, one folder per batch input in
 * them. Removed whole (attn_tree_remove) on discard and by
 * attn_tmp_remove_all. */
typedef struct attn_tmptree {
    char path[ATTN_PATH_MAX];
} attn_tmptree;

/* Creates a new folder path + ".tmp.XXXXXX" into t->path and registers it. */
int attn_tmptree_create(attn_tmptree *t, const char *path);
/* Renames the folder onto path (an empty folder there is replaced; a folder
 * with files is ENOTEMPTY or EEXIST) and forgets it. On failure it stays. */
int attn_tmptree_commit(attn_tmptree *t, const char *path);
/* Removes the folder and all it holds, and forgets it. */
void attn_tmptree_discard(attn_tmptree *t);
/* Removes path and everything under it, symbolic links as links, without
 * following any (openat with O_NOFOLLOW, unlinkat); async-signal-safe (the
 * entries are read with the getdents64 system call). At most 16 levels deep.
 * Returns 0 or the first errno value met. */
int attn_tree_remove(const char *path);

/* Removes every registered temporary: the files, then the folders' files and
 * the folders, then the trees. Async-signal-safe (only unlink, open, unlinkat, close and
 * rmdir, and lock-free atomics), for signal handlers; the registry is left
 * as it is. */
void attn_tmp_remove_all(void);

/* ---- mapped files, for a SIGBUS handler ----
 * A file mapped read-only (attn_map_file, base/util.h) loses the pages past
 * its end when someone truncates it; touching one raises SIGBUS. The
 * mappings are registered here so that a handler can tell that case (the
 * faulting address in a registered mapping: a file that changed under the
 * program) from any other bus error. */
#define ATTN_MAP_TRACK_MAX 32

/* Registers the mapping [p, p + len) of the file called name (valid until
 * attn_mapping_untrack); false when ATTN_MAP_TRACK_MAX are registered. */
bool attn_mapping_track(const void *p, size_t len, const char *name);
/* Forgets the mapping that starts at p. */
void attn_mapping_untrack(const void *p);
/* The name of the registered mapping that holds addr, or NULL.
 * Async-signal-safe (lock-free atomics only). */
const char *attn_mapping_at(const void *addr);

#endif
