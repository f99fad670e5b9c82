/* Output folders of attn run (outdir.c): --dump --out DIR, --heatmap DIR. */
#ifndef ATTN_CLI_OUTDIR_H
#define ATTN_CLI_OUTDIR_H

#include "cli.h"

#include "base/tmpfile.h"

/* DIR appears only when complete: the files go to DIR.tmp.XXXXXX (a
 * registered temporary, removed by a signal too), renamed onto DIR at
 * commit. In batch mode each input has a folder in it, named by its number
 * or key (run_input_name). */
typedef struct cli_outdir {
    const char *flag;   /* for messages: "--out", "--heatmap" */
    bool batch;
    char *dir;          /* the target, without trailing slashes */
    attn_tmptree tree;  /* the temporary folder */
    bool open;          /* the temporary exists (not yet committed) */
    char *input;        /* the current input's folder: tree.path, or tree.path/INPUT */
    char *input_name;   /* the same as the user will see it: DIR or DIR/INPUT */
    bool input_made;    /* this input created `input` (batch mode) */
} cli_outdir;
/* Before the model opens: dir must be new or an empty folder, not "-", not
 * under /dev, /proc or /sys (usage errors, exit 2). */
attn_status cli_outdir_check(const char *flag, const char *dir, attn_error *err);
/* Creates the temporary folder (ATTN_ERR_IO: e.g. a missing parent). */
attn_status cli_outdir_open(cli_outdir *d, const char *flag, const char *dir, bool batch,
                            attn_error *err);
/* Before each input: d->input is where its files go (in batch mode a new
 * folder; a key that came before is a usage error, a bad line). */
attn_status cli_outdir_begin(cli_outdir *d, const attn_run_info *run, attn_error *err);
/* After each input; ok false: its folder is removed. */
void cli_outdir_end(cli_outdir *d, bool ok);
/* Renames the temporary onto DIR (an empty DIR is replaced). */
attn_status cli_outdir_commit(cli_outdir *d, attn_error *err);
/* "a/b", malloc'd (NULL when out of memory): a file in an input's folder. */
char *cli_path_join(const char *a, const char *b);
/* Removes the temporary unless committed, and frees d's names. */
void cli_outdir_free(cli_outdir *d);

#endif
