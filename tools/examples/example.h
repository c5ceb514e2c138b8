/* example.h: what the embedding examples share, so each example file shows
 * only its own loop: options, the URL list as a gather iterator, the result
 * tally, the host timer's lateness, the clock and the open-fd count.
 * Header-only (static inline functions) so every example stays one compile unit
 * that builds with nothing but `pkg-config --cflags --libs volley`. */
#ifndef VL_EXAMPLE_H
#define VL_EXAMPLE_H

#include <dirent.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <volley.h>

#define EX_MAX_ERRORS_SHOWN 10

struct ex {
    const char *name;           /* the example's name, prefixes its lines */
    vl_client_opts client;
    char **urls;                /* from the arguments and -i FILE */
    size_t nurls, cap;
    int window;                 /* fetches in flight (-c, default 50) */
    int period_ms;              /* the host's own timer (--period, default 10) */
    int threads;                /* threads.c: loops in parallel (-t, default 4) */
    int slice_ms;               /* vl_loop_set_time_slice (--slice, default 5; 0 none) */
    size_t next;                /* gather iterator position */
    /* results */
    uint64_t ok, failed, bytes;
    uint64_t expected;          /* results due (0: one per URL) */
    /* the host timer */
    uint64_t ticks, late_max_us, late_sum_us, due_us;
    uint64_t hold_max_us;       /* the longest single call into volley */
};

static inline uint64_t ex_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Open fds of this process, not counting the directory stream itself. */
static inline int ex_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static inline int ex_add_url(struct ex *x, const char *url)
{
    if (x->nurls == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        char **u = realloc(x->urls, cap * sizeof(*u));
        if (!u)
            return -1;
        x->urls = u;
        x->cap = cap;
    }
    if (!(x->urls[x->nurls] = strdup(url)))
        return -1;
    x->nurls++;
    return 0;
}

static inline int ex_read_list(struct ex *x, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (!f)
        return -1;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0 && line[0] != '#' && ex_add_url(x, line) < 0)
            break;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return 0;
}

static inline void ex_usage(const struct ex *x)
{
    fprintf(stderr,
            "usage: %s [-c N] [--cacert FILE] [-k] [--dns-servers ADDR:PORT] [--period MS]\n"
            "       [--slice MS] [-t THREADS] [-i FILE] URL...\n"
            "Fetches every URL while a host timer ticks every --period ms; prints the\n"
            "timer's worst lateness and checks that no fd is left open.\n", x->name);
}

/* Parse argv into x; 0, or 2 after a usage message. */
static inline int ex_parse(struct ex *x, const char *name, int argc, char **argv)
{
    static const struct option opts[] = {
        {"concurrency", required_argument, 0, 'c'}, {"cacert", required_argument, 0, 'C'},
        {"insecure", no_argument, 0, 'k'},          {"period", required_argument, 0, 'p'},
        {"input", required_argument, 0, 'i'},       {"help", no_argument, 0, 'h'},
        {"dns-servers", required_argument, 0, 'D'}, {"threads", required_argument, 0, 't'},
        {"slice", required_argument, 0, 's'},       {0, 0, 0, 0}};
    memset(x, 0, sizeof(*x));
    x->name = name;
    x->window = 50;
    x->period_ms = 10;
    x->threads = 4;
    x->slice_ms = 5;
    vl_client_opts_init(&x->client);
    for (int c; (c = getopt_long(argc, argv, "c:ki:t:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'c': x->window = atoi(optarg); break;
        case 'C': x->client.cacert = optarg; break;
        case 'k': x->client.insecure = 1; break;
        case 'D': x->client.dns_servers = optarg; break;
        case 'p': x->period_ms = atoi(optarg); break;
        case 't': x->threads = atoi(optarg); break;
        case 's': x->slice_ms = atoi(optarg); break;
        case 'i':
            if (ex_read_list(x, optarg) < 0) {
                fprintf(stderr, "%s: cannot read %s\n", name, optarg);
                return 2;
            }
            break;
        default: ex_usage(x); return 2;
        }
    }
    for (int i = optind; i < argc; i++)
        if (ex_add_url(x, argv[i]) < 0)
            return 2;
    if (x->nurls == 0 || x->window < 1 || x->period_ms < 1 || x->threads < 1) {
        ex_usage(x);
        return 2;
    }
    x->client.concurrency = x->window;
    return 0;
}

/* vl_next_cb over the URL list. */
static inline int ex_next(void *data, vl_request *req)
{
    struct ex *x = data;
    if (x->next == x->nurls)
        return 0;
    req->url = x->urls[x->next];
    req->index = (int64_t)x->next;
    x->next++;
    return 1;
}

/* vl_result_cb: count, and show the first few failures. */
static inline void ex_result(const vl_result *r, void *data)
{
    struct ex *x = data;
    x->bytes += r->bytes;
    if (r->ok) {
        x->ok++;
        return;
    }
    if (x->failed++ < EX_MAX_ERRORS_SHOWN)
        fprintf(stderr, "%s: %s: %s\n", x->name, r->url, r->error ? r->error : "failed");
}

/* A call into volley that began at t0_us returned: how long it held the host. */
static inline void ex_held(struct ex *x, uint64_t t0_us)
{
    uint64_t held = ex_now_us() - t0_us;
    if (held > x->hold_max_us)
        x->hold_max_us = held;
}

/* The host timer ticked: record how late, and plan the next tick. */
static inline void ex_tick(struct ex *x, uint64_t now_us)
{
    if (x->due_us && now_us > x->due_us) {
        uint64_t late = now_us - x->due_us;
        x->late_sum_us += late;
        if (late > x->late_max_us)
            x->late_max_us = late;
    }
    x->ticks++;
    x->due_us = now_us + (uint64_t)x->period_ms * 1000u;
}

/* Print the summary; the exit status: 0 all fetched and no fd left open,
 * 1 some fetch failed, 3 fds leaked. */
static inline int ex_finish(struct ex *x, int fds_before, double secs)
{
    int fds_after = ex_count_fds();
    printf("%s: %llu fetched, %llu ok, %llu failed, %llu bytes in %.3f s\n", x->name,
           (unsigned long long)(x->ok + x->failed), (unsigned long long)x->ok,
           (unsigned long long)x->failed, (unsigned long long)x->bytes, secs);
    if (x->due_us) /* the example ran a host timer */
        printf("%s: host timer %d ms: %llu ticks, worst lateness %.3f ms, mean %.3f ms; "
               "longest call into volley %.3f ms\n",
               x->name, x->period_ms, (unsigned long long)x->ticks,
               (double)x->late_max_us / 1000.0,
               x->ticks ? (double)x->late_sum_us / 1000.0 / (double)x->ticks : 0.0,
               (double)x->hold_max_us / 1000.0);
    printf("%s: fds open: %d before, %d after\n", x->name, fds_before, fds_after);
    for (size_t i = 0; i < x->nurls; i++)
        free(x->urls[i]);
    free(x->urls);
    if (fds_after != fds_before)
        return 3;
    return (x->failed || x->ok != (x->expected ? x->expected : x->nurls)) ? 1 : 0;
}

typedef int ex_run_fn(struct ex *x, vl_loop *loop, vl_client *client);

/* The program around an example's run(): parse argv, create the loop (with
 * its time slice) and the client, run, free both, print the summary and
 * compare the open fds with fds_before (counted by the caller before it
 * opened anything of its own).  Returns the exit status. */
static inline int ex_main(const char *name, int argc, char **argv, int fds_before, ex_run_fn *run)
{
    struct ex x;
    if (ex_parse(&x, name, argc, argv))
        return 2;
    char err[256] = "";
    vl_client *client = NULL;
    vl_loop *loop = vl_loop_new();
    if (!loop || vl_client_new(loop, &x.client, &client, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", name, err[0] ? err : "cannot create the loop");
        vl_loop_free(loop);
        return 1;
    }
    /* Give the host its turn at least every slice_ms, even when many
     * connections are ready at once (a TLS handshake step is ~1-5 ms of CPU). */
    vl_loop_set_time_slice(loop, x.slice_ms);
    uint64_t t0 = ex_now_us();
    int rc = run(&x, loop, client);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", name, vl_strerror(rc));
    double secs = (double)(ex_now_us() - t0) / 1e6;
    vl_client_free(client);
    vl_loop_free(loop);
    int status = ex_finish(&x, fds_before, secs);
    return rc < 0 ? 1 : status;
}

#endif
