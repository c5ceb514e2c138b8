/* threads.c: one loop and one client per thread, all fetching at once.
 *
 * Nothing in volley is shared between loops, so threads need no locks: each
 * thread creates its own loop and client, runs the blocking vl_gather over
 * the whole URL list, and frees both.  The main thread only adds up.
 *
 *   threads [-t THREADS] [-c N] [--cacert FILE] [-k] [-i FILE] URL...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>

#include "example.h"

struct worker {
    pthread_t tid;
    int id;
    const struct ex *opts;      /* shared, read only */
    struct ex x;                /* this thread's iterator and tally */
    int rc;
    double secs;
    char err[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    vl_client *client = NULL;
    w->x = *w->opts;            /* the URL strings stay shared and read-only */
    w->x.next = 0;
    uint64_t t0 = ex_now_us();
    vl_loop *loop = vl_loop_new();
    if (!loop) {
        w->rc = -1;
        return NULL;
    }
    w->rc = vl_client_new(loop, &w->x.client, &client, w->err, sizeof(w->err));
    if (w->rc == 0)
        w->rc = vl_gather(client, w->x.window, ex_next, &w->x, ex_result, &w->x);
    vl_client_free(client);
    vl_loop_free(loop);
    w->secs = (double)(ex_now_us() - t0) / 1e6;
    return NULL;
}

int main(int argc, char **argv)
{
    struct ex x;
    int fds_before = ex_count_fds();
    if (ex_parse(&x, "threads", argc, argv))
        return 2;
    struct worker *ws = calloc((size_t)x.threads, sizeof(*ws));
    if (!ws)
        return 1;
    uint64_t t0 = ex_now_us();
    int started = 0;
    for (int i = 0; i < x.threads; i++, started++) {
        ws[i].id = i;
        ws[i].opts = &x;
        if (pthread_create(&ws[i].tid, NULL, work, &ws[i]) != 0) {
            fprintf(stderr, "threads: cannot start thread %d\n", i);
            break;
        }
    }
    int bad = started < x.threads;
    for (int i = 0; i < started; i++) {
        struct worker *w = &ws[i];
        pthread_join(w->tid, NULL);
        printf("threads: thread %d: %llu ok, %llu failed, %llu bytes in %.3f s%s%s\n", i,
               (unsigned long long)w->x.ok, (unsigned long long)w->x.failed,
               (unsigned long long)w->x.bytes, w->secs, w->rc < 0 ? ": " : "",
               w->rc < 0 ? (w->err[0] ? w->err : vl_strerror(w->rc)) : "");
        if (w->rc < 0 || w->x.ok != x.nurls)
            bad = 1;
        x.ok += w->x.ok;
        x.failed += w->x.failed;
        x.bytes += w->x.bytes;
    }
    free(ws);
    x.expected = (uint64_t)x.nurls * (uint64_t)started; /* each thread fetched the whole list */
    int status = ex_finish(&x, fds_before, (double)(ex_now_us() - t0) / 1e6);
    return status ? status : bad;
}
