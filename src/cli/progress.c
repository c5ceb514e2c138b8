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
    atomic_init(&p->skipped, 0);
    /* Positional URLs only: the total is known from the start. */
    atomic_init(&p->total, o->input ? -1 : (long long)o->nurls);
    p->t0_ms = monotonic_ms();
}

void progress_started(struct progress *p) { atomic_fetch_add(&p->started, 1); }

void progress_skipped(struct progress *p) { atomic_fetch_add(&p->skipped, 1); }

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

/* ", ETA 1h02m" from the rate so far, or "" while the total is unknown. */
static void eta(char *buf, size_t len, long long total, unsigned long long done, double rate)
{
    buf[0] = '\0';
    if (total < 0 || rate <= 0 || done >= (unsigned long long)total)
        return;
    double left = (double)((unsigned long long)total - done) / rate;
    if (left > 360000)
        left = 360000;
    unsigned s = (unsigned)(left + 0.5);
    if (s >= 3600)
        snprintf(buf, len, ", ETA %uh%02um", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, len, ", ETA %um%02us", s / 60, s % 60);
    else
        snprintf(buf, len, ", ETA %us", s);
}

/* The counters as one line: "volley: 12/30 done, ..." (skipped counted done). */
static void format_line(struct progress *p, char *line, size_t len, int report)
{
    unsigned long long started = atomic_load(&p->started), fetched = atomic_load(&p->done);
    unsigned long long failed = atomic_load(&p->failed), skipped = atomic_load(&p->skipped);
    unsigned long long done = fetched + skipped;
    long long total = atomic_load(&p->total);
    double secs = (double)(monotonic_ms() - p->t0_ms) / 1000.0;
    double rate = secs > 0 ? (double)fetched / secs : 0.0;
    char bytes[32], left[32];
    int n;
    human_bytes(bytes, sizeof(bytes), atomic_load(&p->bytes));
    eta(left, sizeof(left), total, done, rate);
    if (total >= 0)
        n = snprintf(line, len, "volley: %s%llu/%lld done", report ? "progress: " : "", done,
                     total);
    else
        n = snprintf(line, len, "volley: %s%llu done", report ? "progress: " : "", done);
    if (report)
        snprintf(line + n, len - (size_t)n,
                 ", %llu ok, %llu failed, %llu skipped, %llu in flight, %llu records written, "
                 "%s, %.1f req/s%s", fetched - failed, failed, skipped,
                 started > fetched ? started - fetched : 0, fetched, bytes, rate, left);
    else
        snprintf(line + n, len - (size_t)n, ", %llu in flight, %llu failed, %s, %.1f req/s%s",
                 started > fetched ? started - fetched : 0, failed, bytes, rate, left);
}

void progress_report(struct progress *p)
{
    char line[512];
    format_line(p, line, sizeof(line), 1);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void progress_draw(struct progress *p)
{
    if (!p->on)
        return;
    char line[PROGRESS_MAX_COLUMNS + 64];
    format_line(p, line, sizeof(line), 0);
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
