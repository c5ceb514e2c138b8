/* progress.c: the volley command's one-line progress display.  Drawn on
 * standard error only when it is a terminal (and neither --json nor -v nor
 * --no-progress), redrawn at most PROGRESS_PERIOD_MS apart from a loop
 * timer, erased before anything else is written to the terminal and at the
 * end; never a byte of it into a pipe or a file.  The counters are shared by
 * the worker threads (atomics); drawing and erasing happen under the
 * command's output lock, held by the caller.  Uses only volley.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PROGRESS_MAX_COLUMNS 200

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void progress_init(struct progress *p, const struct cli_opts *o)
{
    const char *term = getenv("TERM");
    memset(p, 0, sizeof(*p));
    p->on = o->progress && (!o->json || o->records) && !o->verbose && isatty(STDERR_FILENO) &&
            !(term && strcmp(term, "dumb") == 0);
    atomic_init(&p->started, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->failed, 0);
    atomic_init(&p->bytes, 0);
    /* Positional URLs only: the total is known from the start. */
    atomic_init(&p->total, o->input ? -1 : (long long)o->nurls);
    p->t0_ms = monotonic_ms();
}

void progress_started(struct progress *p) { atomic_fetch_add(&p->started, 1); }

void progress_input_ended(struct progress *p, int64_t total)
{
    atomic_store(&p->total, (long long)total);
}

void progress_result(struct progress *p, const vl_result *r)
{
    atomic_fetch_add(&p->done, 1);
    atomic_fetch_add(&p->bytes, r->bytes);
    if (!r->ok)
        atomic_fetch_add(&p->failed, 1);
}

/* "12.3 MB": bytes in the largest unit that keeps the number short. */
static void human_bytes(char *buf, size_t len, unsigned long long n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col < PROGRESS_MAX_COLUMNS ? ws.ws_col : PROGRESS_MAX_COLUMNS;
    return 80;
}

void progress_draw(struct progress *p)
{
    if (!p->on)
        return;
    unsigned long long started = atomic_load(&p->started), done = atomic_load(&p->done);
    unsigned long long failed = atomic_load(&p->failed);
    long long total = atomic_load(&p->total);
    double secs = (double)(monotonic_ms() - p->t0_ms) / 1000.0;
    char line[PROGRESS_MAX_COLUMNS + 64], bytes[32];
    int n;
    human_bytes(bytes, sizeof(bytes), atomic_load(&p->bytes));
    if (total >= 0)
        n = snprintf(line, sizeof(line), "volley: %llu/%lld done", done, total);
    else
        n = snprintf(line, sizeof(line), "volley: %llu done", done);
    snprintf(line + n, sizeof(line) - (size_t)n, ", %llu in flight, %llu failed, %s, %.1f req/s",
             started > done ? started - done : 0, failed, bytes,
             secs > 0 ? (double)done / secs : 0.0);
    /* Never wider than the terminal: a wrapped line could not be erased. */
    line[columns() - 1] = '\0';
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->shown = 1;
}

void progress_erase(struct progress *p)
{
    if (!p->shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->shown = 0;
}
