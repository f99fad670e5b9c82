/* Replays inputs through a libFuzzer harness without libFuzzer, so that the
 * normal suite (any compiler, plain, --setup=asan, --setup=valgrind) runs the
 * seed corpus and the regressions of every harness (see README.md).
 *
 * Usage: replay-NAME [--allow-missing] PATH...   each PATH a file, or a
 * folder whose files (not starting with '.', in name order, not recursively)
 * are all replayed; with --allow-missing a PATH that does not exist is
 * skipped (a harness without regressions yet has no folder for them).
 * Each input is given in a buffer of exactly its size, so a read past its end
 * is caught by ASan and valgrind. A harness that finds a bug traps (or the
 * sanitizer stops it): the test fails. Exit 0 when every input was replayed,
 * 1 when a path could not be read, 2 on a usage error. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into an exactly sized buffer; NULL on failure. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    long end = -1;
    if (fseek(f, 0, SEEK_END) == 0) end = ftell(f);
    if (end >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(end > 0 ? (size_t)end : 1);
        if (buf && fread(buf, 1, (size_t)end, f) != (size_t)end) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (buf) *size = (size_t)end;
    return buf;
}

static int replay_file(const char *path) {
    size_t size = 0;
    uint8_t *data = read_all(path, &size);
    if (!data) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        return 1;
    }
    if (size == 0) { /* an exactly empty buffer: a read of data[0] is past the end */
        free(data);
        data = malloc(0);
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout); /* the last name printed is the input that crashed */
    (void)LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

static int replay_dir(const char *dir, size_t *count) {
    struct dirent **names;
    int n = scandir(dir, &names, not_hidden, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: cannot read the folder\n", dir);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(len);
        struct stat st;
        if (!path) {
            rc = 1;
        } else {
            snprintf(path, len, "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                rc |= replay_file(path);
                (*count)++;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    int first = 1;
    bool allow_missing = argc > 1 && strcmp(argv[1], "--allow-missing") == 0;
    if (allow_missing) first++;
    if (argc <= first) {
        fprintf(stderr, "usage: %s [--allow-missing] FILE-OR-FOLDER...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    size_t count = 0;
    for (int i = first; i < argc; i++) {
        struct stat st;
        bool exists = stat(argv[i], &st) == 0;
        if (!exists && errno == ENOENT && allow_missing) {
            printf("replay: %s: none\n", argv[i]);
        } else if (exists && S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &count);
        } else {
            rc |= replay_file(argv[i]);
            count++;
        }
    }
    printf("replay: %zu inputs\n", count);
    return rc;
}
