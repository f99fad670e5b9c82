/* Output folders of attn run (--dump --out DIR, --heatmap DIR): DIR must be
 * new or an empty folder; the files go to a temporary folder next to it
 * (attn_tmptree: a signal removes it too), which is renamed onto DIR when
 * the run is complete and removed when it fails. In batch mode each input
 * gets its own folder in it, named by its number or key; a bad line's
 * folder is removed. */
#include "run.h"
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Is path a folder with nothing in it? */
static bool empty_folder(const char *path) {
    DIR *d = opendir(path);
    if (!d) return false;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

attn_status cli_outdir_check(const char *flag, const char *dir, attn_error *err) {
    if (!dir[0]) return cli_usage(err, "%s: the folder name is empty", flag);
    if (strcmp(dir, "-") == 0)
        return cli_usage(err, "%s -: this output is a folder, not standard output", flag);
    if (strncmp(dir, "/dev/", 5) == 0 || strncmp(dir, "/proc/", 6) == 0 ||
        strncmp(dir, "/sys/", 5) == 0 || strcmp(dir, "/dev") == 0 || strcmp(dir, "/proc") == 0 ||
        strcmp(dir, "/sys") == 0)
        return cli_usage(err, "%s %s: output folders are not written under /dev, /proc or /sys",
                         flag, dir);
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (errno == ENOENT) return ATTN_OK; /* a new folder; its parent is tried at open */
        return attn_error_set(err, ATTN_ERR_IO, "%s %s: %s", flag, dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return cli_usage(err, "%s %s: exists and is not a folder (give a new or empty folder)",
                         flag, dir);
    if (!empty_folder(dir))
        return cli_usage(err, "%s %s: the folder is not empty (give a new or empty folder)", flag,
                         dir);
    return ATTN_OK;
}

char *cli_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

attn_status cli_outdir_open(cli_outdir *d, const char *flag, const char *dir, bool batch,
                            attn_error *err) {
    *d = (cli_outdir){.flag = flag, .batch = batch};
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--; /* "out/" names out: its temporary is out.tmp.X */
    if (!(d->dir = strndup(dir, n))) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    int e = attn_tmptree_create(&d->tree, d->dir);
    if (e)
        return attn_error_set(err, ATTN_ERR_IO, "%s %s: cannot create a folder next to it: %s",
                              flag, dir, strerror(e));
    d->open = true;
    return ATTN_OK;
}

attn_status cli_outdir_begin(cli_outdir *d, const attn_run_info *run, attn_error *err) {
    free(d->input), free(d->input_name);
    d->input = d->input_name = NULL;
    d->input_made = false;
    if (!d->batch) {
        d->input = strdup(d->tree.path);
        d->input_name = strdup(d->dir);
    } else {
        char num[32];
        const char *name = run_input_name(run, num, sizeof num);
        /* --keyed keys are checked as they are read (cli_split_key) */
        if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
            return cli_usage(err, "standard input line %ld: %s: the key '%s' cannot name a "
                                  "folder (it is empty, '.' or '..', or holds a '/')",
                             run->input + 1, d->flag, name);
        d->input = cli_path_join(d->tree.path, name);
        d->input_name = cli_path_join(d->dir, name);
        if (d->input && d->input_name) {
            if (mkdir(d->input, 0777) != 0) {
                if (errno == EEXIST)
                    return cli_usage(err, "standard input line %ld: %s: the key '%s' came "
                                          "before: its folder exists",
                                     run->input + 1, d->flag, name);
                return attn_error_set(err, ATTN_ERR_IO, "%s %s: cannot create: %s", d->flag,
                                      d->input_name, strerror(errno));
            }
            d->input_made = true;
        }
    }
    if (!d->input || !d->input_name) return attn_error_set(err, ATTN_ERR_NOMEM, "out of memory");
    return ATTN_OK;
}

void cli_outdir_end(cli_outdir *d, bool ok) {
    if (!ok && d->input_made) attn_tree_remove(d->input);
    d->input_made = false;
}

attn_status cli_outdir_commit(cli_outdir *d, attn_error *err) {
    int e = attn_tmptree_commit(&d->tree, d->dir);
    if (e)
        return attn_error_set(err, ATTN_ERR_IO, "%s %s: cannot put the folder in place: %s",
                              d->flag, d->dir, strerror(e));
    d->open = false;
    return ATTN_OK;
}

void cli_outdir_free(cli_outdir *d) {
    if (d->open) attn_tmptree_discard(&d->tree);
    d->open = false;
    free(d->dir), free(d->input), free(d->input_name);
    d->dir = d->input = d->input_name = NULL;
}
