/* Progress of a batch on standard error: lines done, lines per second and,
 * when standard input is a regular file, the share read and the time left.
 * One line redrawn in place at most four times a second, cleared before any
 * message and at the end, so nothing of it stays on the terminal. */
#include "cli.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, FILE *in, bool enabled) {
    *p = (cli_progress){.on = enabled, .in = in, .total = -1};
    if (!enabled) return;
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        off_t at = ftello(in);
        p->total = st.st_size;
        p->base = at > 0 ? at : 0; /* what was read before the batch (none, usually) */
    }
    p->start = p->last = now_seconds();
}

/* "1h02m", "3m05s", "12s" */
static void format_duration(char *buf, size_t cap, double s) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

void cli_progress_line(cli_progress *p) {
    if (!p->on) return;
    p->lines++;
    double t = now_seconds();
    if (t - p->last < 0.25) return;
    p->last = t;
    double elapsed = t - p->start, rate = elapsed > 0 ? (double)p->lines / elapsed : 0;
    char tail[64] = "";
    off_t at = p->total > 0 ? ftello(p->in) : -1;
    if (at > p->base && p->total > p->base) {
        double done = (double)(at - p->base) / (double)(p->total - p->base);
        if (done > 1) done = 1;
        char eta[24];
        format_duration(eta, sizeof eta, elapsed * (1 - done) / done);
        snprintf(tail, sizeof tail, ", %.0f%% read, about %s left", done * 100, eta);
    }
    fprintf(stderr, "\r\033[K%ld lines, %.1f lines/s%s", p->lines, rate, tail);
    fflush(stderr);
    p->shown = true;
}

void cli_progress_clear(cli_progress *p) {
    if (!p->shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->shown = false;
}
