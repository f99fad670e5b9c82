/* Files and folders that appear under their name only when complete
 * (base/tmpfile.h). */
#include "base/tmpfile.h"

#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TMP_ATTEMPTS 100

/* ---- the registry of temporaries, for attn_tmp_remove_all ---- */

/* The handler reads these while the program may be changing them: lock-free
 * atomics are the only shared state a signal handler may touch. */
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2 &&
                   ATOMIC_LONG_LOCK_FREE == 2,
               "the temporaries' registry needs lock-free atomics");

/* A registered temporary: a file (path) or a folder (dir). */
typedef struct tmp_slot {
    atomic_bool busy;                /* claimed by a registration */
    _Atomic(const char *) path;      /* a file; NULL: none */
    _Atomic(attn_tmpdir *) dir;      /* a folder; NULL: none */
    _Atomic(attn_tmptree *) tree;    /* a folder of any content; NULL: none */
} tmp_slot;

static tmp_slot slots[ATTN_TMP_TRACK_MAX];

/* Registers the file path, the folder dir or the tree (one of them); false
 * when the registry is full. */
static bool tmp_track(const char *path, attn_tmpdir *dir, attn_tmptree *tree) {
    for (size_t i = 0; i < ATTN_TMP_TRACK_MAX; i++) {
        bool taken = false;
        if (!atomic_compare_exchange_strong(&slots[i].busy, &taken, true)) continue;
        if (path) atomic_store(&slots[i].path, path);
        else if (dir) atomic_store(&slots[i].dir, dir);
        else atomic_store(&slots[i].tree, tree);
        return true;
    }
    return false;
}

/* Forgets the file path, the folder dir or the tree (by pointer). */
static void tmp_untrack(const char *path, const attn_tmpdir *dir, const attn_tmptree *tree) {
    for (size_t i = 0; i < ATTN_TMP_TRACK_MAX; i++) {
        if ((path && atomic_load(&slots[i].path) == path) ||
            (dir && atomic_load(&slots[i].dir) == dir) ||
            (tree && atomic_load(&slots[i].tree) == tree)) {
            atomic_store(&slots[i].path, NULL);
            atomic_store(&slots[i].dir, NULL);
            atomic_store(&slots[i].tree, NULL);
            atomic_store(&slots[i].busy, false);
            return;
        }
    }
}

/* Removes the files of the folder d, then d (async-signal-safe). */
static void tmp_remove_dir(const attn_tmpdir *d) {
    int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        for (size_t k = 0; k < d->n; k++) unlinkat(fd, d->names[k], 0);
        close(fd);
    }
    rmdir(d->path);
}

void attn_tmp_remove_all(void) {
    /* the files first: the files of a folder are written as temporaries in it */
    for (size_t i = 0; i < ATTN_TMP_TRACK_MAX; i++) {
        const char *p = atomic_load(&slots[i].path);
        if (p) unlink(p);
    }
    for (size_t i = 0; i < ATTN_TMP_TRACK_MAX; i++) {
        const attn_tmpdir *d = atomic_load(&slots[i].dir);
        if (d) tmp_remove_dir(d);
    }
    for (size_t i = 0; i < ATTN_TMP_TRACK_MAX; i++) {
        const attn_tmptree *t = atomic_load(&slots[i].tree);
        if (t) attn_tree_remove(t->path);
    }
}

/* ---- the registry of mapped files, for attn_mapping_at ---- */

/* A mapping [begin, end) of the file name; begin 0: a free slot. The
 * handler may read a slot while it is being filled or emptied: end and name
 * are stored before begin, and begin cleared first, so a slot it sees as
 * taken is complete. */
typedef struct map_slot {
    atomic_uintptr_t begin, end;
    _Atomic(const char *) name;
    atomic_bool busy;
} map_slot;

static map_slot maps[ATTN_MAP_TRACK_MAX];

bool attn_mapping_track(const void *p, size_t len, const char *name) {
    for (size_t i = 0; i < ATTN_MAP_TRACK_MAX; i++) {
        bool taken = false;
        if (!atomic_compare_exchange_strong(&maps[i].busy, &taken, true)) continue;
        atomic_store(&maps[i].end, (uintptr_t)p + len);
        atomic_store(&maps[i].name, name);
        atomic_store(&maps[i].begin, (uintptr_t)p);
        return true;
    }
    return false;
}

void attn_mapping_untrack(const void *p) {
    for (size_t i = 0; i < ATTN_MAP_TRACK_MAX; i++) {
        if (!p || atomic_load(&maps[i].begin) != (uintptr_t)p) continue;
        atomic_store(&maps[i].begin, 0);
        atomic_store(&maps[i].name, NULL);
        atomic_store(&maps[i].busy, false);
        return;
    }
}

const char *attn_mapping_at(const void *addr) {
    uintptr_t a = (uintptr_t)addr;
    for (size_t i = 0; i < ATTN_MAP_TRACK_MAX; i++) {
        uintptr_t b = atomic_load(&maps[i].begin);
        if (b && a >= b && a < atomic_load(&maps[i].end)) return atomic_load(&maps[i].name);
    }
    return NULL;
}

/* ---- removing a folder and what it holds ---- */

/* The entries of a directory as the getdents64 system call gives them (the
 * libc readdir allocates, which a signal handler must not). */
struct tree_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

#define TREE_DEPTH_MAX 16

/* Empties the directory open as fd (depth: how deep it is), closes fd. */
static int tree_empty(int fd, int depth) {
    int first = 0;
    char buf[2048] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && !first) first = errno;
            break;
        }
        bool removed = false;
        for (long at = 0; at < n;) {
            const struct tree_dirent *e = (const struct tree_dirent *)(buf + at);
            at += e->reclen;
            if (strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0) continue;
            if (unlinkat(fd, e->name, 0) == 0) {
                removed = true;
                continue;
            }
            if (errno != EISDIR && errno != EPERM) {
                if (!first) first = errno;
                continue;
            }
            int sub = depth < TREE_DEPTH_MAX
                          ? openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                          : -1;
            int e2 = sub < 0 ? (depth < TREE_DEPTH_MAX ? errno : ELOOP) : tree_empty(sub, depth + 1);
            if (!e2 && unlinkat(fd, e->name, AT_REMOVEDIR) != 0) e2 = errno;
            if (e2 && !first) first = e2;
            if (!e2) removed = true;
        }
        /* entries removed while reading: read again from the start, until a
         * pass finds nothing more to remove */
        if (removed && lseek(fd, 0, SEEK_SET) != 0) break;
    }
    close(fd);
    return first;
}

int attn_tree_remove(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return unlink(path) == 0 || errno == ENOENT ? 0 : errno;
    int e = tree_empty(fd, 1);
    if (rmdir(path) != 0 && !e && errno != ENOENT) e = errno;
    return e;
}

int attn_tmptree_create(attn_tmptree *t, const char *path) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = attn_tmp_create(t->path, sizeof t->path, path, NULL);
    if (!e) tmp_track(NULL, NULL, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

int attn_tmptree_commit(attn_tmptree *t, const char *path) {
    struct stat sb;
    /* an empty folder at path is replaced (rmdir refuses one with files) */
    if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && rmdir(path) != 0) return errno;
    if (rename(t->path, path) != 0) return errno;
    tmp_untrack(NULL, NULL, t);
    return 0;
}

void attn_tmptree_discard(attn_tmptree *t) {
    attn_tree_remove(t->path);
    tmp_untrack(NULL, NULL, t);
}

/* attn_tmp_create, then registers the new file (fd not NULL: tmp) or folder
 * (dir), with the signals blocked in between: a signal that arrives once
 * the temporary exists finds it registered. */
static int tmp_create_tracked(char *tmp, size_t cap, const char *path, int *fd,
                              attn_tmpdir *dir) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = attn_tmp_create(tmp, cap, path, fd);
    if (!e) tmp_track(fd ? tmp : NULL, fd ? NULL : dir, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

int attn_tmpdir_create(attn_tmpdir *d, const char *path, const char *const *names, size_t n) {
    d->names = names;
    d->n = n;
    return tmp_create_tracked(d->path, sizeof d->path, path, NULL, d);
}

void attn_tmpdir_discard(attn_tmpdir *d) {
    tmp_remove_dir(d);
    tmp_untrack(NULL, d, NULL);
}

void attn_tmpdir_forget(attn_tmpdir *d) { tmp_untrack(NULL, d, NULL); }

/* ---- creating, committing and discarding ---- */

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
    int fd, e = tmp_create_tracked(name, cap, path, &fd, NULL);
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
        tmp_untrack(name, NULL, NULL);
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
    tmp_untrack(tmp, NULL, NULL);
    return e;
}

void attn_tmpfile_discard(FILE *f, const char *tmp) {
    if (f) fclose(f);
    if (tmp) unlink(tmp);
    tmp_untrack(tmp, NULL, NULL);
}
