/* follow.c: fetch URLs as they arrive on standard input.
 *
 * The loop itself watches fd 0 (non-blocking, a read watcher like any
 * socket's), so a URL written into the pipe starts fetching at once with
 * vl_fetch_start, while earlier ones are still in flight.  One line per
 * result on stdout, as each completes; a stats line on stderr every second
 * from a vl_timer.  Reading pauses while too many fetches wait (backpressure
 * on the writer), and the program exits at EOF once every fetch finished.
 *
 *   producer | follow [-c N] [--cacert FILE] [-k]
 *
 * Output: "INDEX STATUS BYTES TIME_MS URL" or "INDEX ERR MESSAGE URL". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <volley.h>

#define LINE_MAX_BYTES 8192         /* longer input lines are skipped whole */
#define STATS_PERIOD_MS 1000
#define BACKLOG_PER_SLOT 4          /* read no further while started - done >= 4 x -c */

struct follow {
    vl_loop *loop;
    vl_client *client;
    vl_timer *stats;
    vl_timer *pump;                 /* stdin is a regular file: read it from a timer */
    char buf[LINE_MAX_BYTES];
    size_t len;
    int skipping;                   /* inside a line longer than buf */
    int eof, reading, file_input;
    int backlog;
    int64_t index;
    uint64_t started, done, ok, failed, bytes, skipped;
    uint64_t t0_ms;
};

static void maybe_finish(struct follow *f);
static void resume(struct follow *f);

static void on_result(const vl_result *r, void *data)
{
    struct follow *f = data;
    f->done++;
    f->bytes += r->bytes;
    if (r->ok) {
        f->ok++;
        printf("%lld %d %llu %.1f %s\n", (long long)r->index, r->status,
               (unsigned long long)r->bytes, r->time_ms, r->url);
    } else {
        f->failed++;
        printf("%lld ERR %s %s\n", (long long)r->index, r->error ? r->error : "failed", r->url);
    }
    resume(f);
    maybe_finish(f);
}

/* Trim spaces and CR; NULL for blank lines and # comments. */
static char *clean(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return (n == 0 || s[0] == '#') ? NULL : s;
}

static void start(struct follow *f, char *line)
{
    char *url = clean(line);
    if (!url)
        return;
    vl_request req = {.url = url, .index = f->index++};
    f->started++;
    if (vl_fetch_start(f->client, &req, on_result, f, NULL) < 0) {
        f->done++;
        f->failed++;
        printf("%lld ERR out of memory %s\n", (long long)req.index, url);
    }
}

static int backlog_full(const struct follow *f)
{
    return f->started - f->done >= (uint64_t)f->backlog;
}

/* Start a fetch for each complete line in buf, while the backlog allows. */
static void take_lines(struct follow *f)
{
    size_t pos = 0;
    while (!backlog_full(f)) {
        char *nl = memchr(f->buf + pos, '\n', f->len - pos);
        if (!nl)
            break;
        *nl = '\0';
        if (!f->skipping)
            start(f, f->buf + pos);
        f->skipping = 0;
        pos = (size_t)(nl - f->buf) + 1;
    }
    memmove(f->buf, f->buf + pos, f->len - pos);
    f->len -= pos;
    if (f->len == sizeof(f->buf)) { /* a line longer than the buffer: drop it */
        f->skipping = 1;
        f->skipped++;
        f->len = 0;
    }
}

static void stop_reading(struct follow *f)
{
    if (!f->reading)
        return;
    f->reading = 0;
    if (f->file_input)
        vl_timer_stop(f->pump);
    else
        vl_io_stop(f->loop, 0);
}

static void on_stdin(vl_loop *loop, int fd, int events, void *data);

static int start_reading(struct follow *f)
{
    if (f->reading || f->eof)
        return 0;
    if (f->file_input) {
        vl_timer_start(f->pump, 0);
    } else {
        int rc = vl_io_start(f->loop, 0, VL_READ, on_stdin, f);
        if (rc < 0)
            return rc;
    }
    f->reading = 1;
    return 0;
}

static void at_eof(struct follow *f)
{
    stop_reading(f);
    f->eof = 1;
    if (f->len && !f->skipping && f->len < sizeof(f->buf)) {
        f->buf[f->len] = '\0'; /* a last line without a newline */
        start(f, f->buf);
    }
    f->len = 0;
    maybe_finish(f);
}

/* One read per readiness: a fast writer cannot starve the fetches. */
static void on_stdin(vl_loop *loop, int fd, int events, void *data)
{
    struct follow *f = data;
    (void)loop;
    (void)events;
    ssize_t n = read(fd, f->buf + f->len, sizeof(f->buf) - f->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            fprintf(stderr, "follow: reading stdin: %s\n", strerror(errno));
        at_eof(f);
        return;
    }
    f->len += (size_t)n;
    take_lines(f);
    if (backlog_full(f))
        stop_reading(f); /* resume() reads on once results come back */
}

static void on_pump(vl_loop *loop, vl_timer *t, void *data)
{
    struct follow *f = data;
    on_stdin(loop, 0, VL_READ, f);
    if (f->reading)
        vl_timer_start(t, 0);
}

static void resume(struct follow *f)
{
    if (f->eof || backlog_full(f))
        return;
    take_lines(f); /* lines already read wait here while the backlog was full */
    if (!backlog_full(f))
        start_reading(f);
}

static void print_stats(struct follow *f, const char *what)
{
    double secs = (double)(vl_loop_now_ms(f->loop) - f->t0_ms) / 1000.0;
    fprintf(stderr, "follow: %s %.1f s: %llu started, %llu done (%llu ok, %llu failed), "
            "%llu in flight, %llu bytes%s\n", what, secs, (unsigned long long)f->started,
            (unsigned long long)f->done, (unsigned long long)f->ok,
            (unsigned long long)f->failed, (unsigned long long)(f->started - f->done),
            (unsigned long long)f->bytes, f->eof ? ", input closed" : "");
}

static void on_stats(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    print_stats(data, "at");
    vl_timer_start(t, STATS_PERIOD_MS);
}

static void maybe_finish(struct follow *f)
{
    if (!f->eof || f->done != f->started)
        return;
    vl_timer_stop(f->stats);
    print_stats(f, "done after");
    vl_loop_stop(f->loop); /* idle keep-alive connections would keep it running */
}

static int parse(int argc, char **argv, vl_client_opts *o)
{
    static const struct option opts[] = {
        {"concurrency", required_argument, 0, 'c'}, {"cacert", required_argument, 0, 'C'},
        {"insecure", no_argument, 0, 'k'}, {0, 0, 0, 0}};
    vl_client_opts_init(o);
    for (int c; (c = getopt_long(argc, argv, "c:k", opts, NULL)) != -1;) {
        switch (c) {
        case 'c': o->concurrency = atoi(optarg); break;
        case 'C': o->cacert = optarg; break;
        case 'k': o->insecure = 1; break;
        default:
            fprintf(stderr, "usage: producer | follow [-c N] [--cacert FILE] [-k]\n");
            return 2;
        }
    }
    return optind == argc && o->concurrency > 0 ? 0 : 2;
}

int main(int argc, char **argv)
{
    struct follow f = {0};
    vl_client_opts o;
    char err[256] = "";
    if (parse(argc, argv, &o))
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0); /* a reader of the pipe sees each result at once */
    int flags = fcntl(0, F_GETFL);
    if (flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) < 0) {
        fprintf(stderr, "follow: stdin: %s\n", strerror(errno));
        return 1;
    }
    f.backlog = o.concurrency * BACKLOG_PER_SLOT;
    f.loop = vl_loop_new();
    if (!f.loop || vl_client_new(f.loop, &o, &f.client, err, sizeof(err)) < 0) {
        fprintf(stderr, "follow: %s\n", err[0] ? err : "cannot create the loop");
        return 1;
    }
    f.t0_ms = vl_loop_now_ms(f.loop);
    f.stats = vl_timer_new(f.loop, on_stats, &f);
    f.pump = vl_timer_new(f.loop, on_pump, &f);
    vl_timer_start(f.stats, STATS_PERIOD_MS);
    int rc = start_reading(&f);
    if (rc == -EPERM) {
        f.file_input = 1; /* a regular file: epoll cannot watch it, and it never blocks */
        rc = start_reading(&f);
    }
    if (rc < 0) {
        fprintf(stderr, "follow: cannot watch stdin: %s\n", vl_strerror(rc));
        at_eof(&f);
    }
    rc = vl_loop_run(f.loop);
    if (rc < 0)
        fprintf(stderr, "follow: %s\n", vl_strerror(rc));
    stop_reading(&f);
    vl_timer_free(f.stats);
    vl_timer_free(f.pump);
    vl_client_free(f.client);
    vl_loop_free(f.loop);
    fcntl(0, F_SETFL, flags);
    return rc < 0 ? 1 : f.failed ? 1 : 0;
}
