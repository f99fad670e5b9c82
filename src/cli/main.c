/* attn: the command line. One file per subcommand in src/cli/. */
#include "cli.h"
#include "view.h"

#include "base/tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: attn COMMAND [OPTIONS]\n"
    "\n"
    "Runs transformer blocks and shows what attention did.\n"
    "\n"
    "Commands:\n"
    "  run        run a model on text or token ids; write attention maps and context vectors\n"
    "  generate   continue a text greedily, one token at a time (key/value cache)\n"
    "  import     convert a model from another project (llama2c)\n"
    "  explain    show every step of one attention head on one input\n"
    "  stats      per-head statistics of the attention maps as CSV (entropy, sinks, ...)\n"
    "  lens       the logit lens: each layer's residual stream read as predictions\n"
    "  patch      activation patching: each head or position of a clean run put into a corrupted one\n"
    "  ablate     the head sweep: each head (and MLP) ablated in turn, the target's logit\n"
    "  info       what a model is made of: sizes, parameters, tensors, tokenizer\n"
    "  tokenize   how the tokenizer cuts a text (ids and tokens), or ids back to text\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help\n"
    "  -V, --version  show the version\n"
    "\n"
    "Examples:\n"
    "  attn run --config models/tiny-decoder --text \"the cat sat on the mat\"\n"
    "  attn info --config models/tiny-decoder\n"
    "  attn tokenize --config models/tiny-decoder --text \"the cat sat\"\n"
    "\n"
    "'attn COMMAND --help' describes a command. A flag that takes a value may be\n"
    "given once. Exit status: 0 success, 1 failure, 2 usage error.\n";

/* An interrupted run removes its half-written output files and the
 * temporary folder of an import (attn_outfile_abort_all, async-signal-safe),
 * then dies of the signal (so the caller sees the conventional status,
 * 128 + the signal). */
static void on_signal(int sig) {
    attn_outfile_abort_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A bus error in a mapped weights file (base/tmpfile.h, attn_mapping_at):
 * someone truncated it while attn was using it. One line that says so, the
 * temporaries removed, exit status 1. Any other bus error is a crash, as
 * the other signals (on_signal). */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    const char *name = attn_mapping_at(si->si_addr);
    if (!name) {
        on_signal(sig);
        return;
    }
    /* several threads can fault on the truncated mapping at once: the first
     * one speaks and exits, the others wait for that (a lock-free flag is
     * async-signal-safe) */
    static atomic_flag taken = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&taken))
        for (;;) pause();
    attn_outfile_abort_all();
    static const char head[] = "attn: ",
                      tail[] = ": the weights file changed while attn was reading it "
                               "(truncated on disk); no output written\n";
    /* write(2) only: async-signal-safe */
    ssize_t w = write(STDERR_FILENO, head, sizeof head - 1);
    w = write(STDERR_FILENO, name, strlen(name));
    w = write(STDERR_FILENO, tail, sizeof tail - 1);
    (void)w;
    _exit(EXIT_FAIL);
}

/* The signals that end a process by default and can arrive while output
 * files or an import's folder are open: a terminal or job control (INT, QUIT, HUP, TERM), a reader
 * that went away (PIPE), a file size limit (XFSZ). A signal the caller set
 * to be ignored (nohup, a job started with SIGINT ignored) stays ignored. */
static void catch_signals(void) {
    static const int sigs[] = {SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGPIPE, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    struct sigaction bus = {0};
    bus.sa_sigaction = on_sigbus;
    bus.sa_flags = SA_SIGINFO;
    sigemptyset(&bus.sa_mask);
    sigaction(SIGBUS, &bus, NULL);
}

/* A standard stream the caller closed gets /dev/null, so that the first file
 * attn opens cannot take its descriptor (and output meant for standard
 * output land in a file). Batch mode refuses a closed standard input. */
static void reserve_std_fds(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (got >= 0 && got != fd) close(got); /* cannot happen: the lowest free fd is fd */
        if (fd == 0) cli_stdin_closed = true;
    }
}

int main(int argc, char **argv) {
    reserve_std_fds();
    catch_signals();
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)
        return cli_help(usage);
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("attn %s\n", attn_version());
        return EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0) return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0) return cmd_import(argc - 1, argv + 1);
    if (strcmp(cmd, "explain") == 0) return cmd_explain(argc - 1, argv + 1);
    if (strcmp(cmd, "stats") == 0) return cmd_stats(argc - 1, argv + 1);
    if (strcmp(cmd, "lens") == 0) return cmd_lens(argc - 1, argv + 1);
    if (strcmp(cmd, "patch") == 0) return cmd_patch(argc - 1, argv + 1);
    if (strcmp(cmd, "ablate") == 0) return cmd_ablate(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0) return cmd_tokenize(argc - 1, argv + 1);
    return cli_error(EXIT_USAGE, "unknown command '%s' (try 'attn --help')", cmd);
}
