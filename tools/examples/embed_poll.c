/* embed_poll.c: volley inside a plain poll() loop that the host owns.
 *
 * The host watches one fd of volley's, vl_loop_fd() (epoll, pollable for
 * reading), next to its own timer, and calls vl_loop_run_once(loop, 0)
 * whenever that fd is readable or volley's next-timeout hint has passed.
 * volley never blocks the host: run_once(0) does the ready work and returns.
 *
 *   embed_poll [-c N] [--cacert FILE] [-k] [--period MS] [-i FILE] URL...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>

#include "example.h"

static void on_done(vl_loop *loop, void *data)
{
    (void)loop;
    *(int *)data = 1;
}

/* ms from now until at_us, rounded up (never wake early), at least 0. */
static int ms_until(uint64_t at_us, uint64_t now_us)
{
    if (at_us <= now_us)
        return 0;
    uint64_t ms = (at_us - now_us + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int run(struct ex *x, vl_loop *loop, vl_client *client)
{
    int done = 0;
    vl_gather_op *g;
    int rc = vl_gather_start(client, x->window, ex_next, x, ex_result, x, on_done, &done, &g);
    if (rc < 0)
        return rc;
    x->due_us = ex_now_us() + (uint64_t)x->period_ms * 1000u;
    while (!done) {
        /* Ask volley after every call into it: its next deadline may move. */
        int volley_ms = vl_loop_timeout_ms(loop);
        uint64_t now = ex_now_us();
        uint64_t volley_due = volley_ms < 0 ? UINT64_MAX : now + (uint64_t)volley_ms * 1000u;
        int wait_ms = ms_until(x->due_us, now);
        if (volley_ms >= 0 && volley_ms < wait_ms)
            wait_ms = volley_ms;
        struct pollfd p = {.fd = vl_loop_fd(loop), .events = POLLIN};
        if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        now = ex_now_us();
        if (now >= x->due_us)
            ex_tick(x, now); /* the host's own work would go here */
        if (p.revents || now >= volley_due) {
            uint64_t t0 = ex_now_us();
            rc = vl_loop_run_once(loop, 0);
            ex_held(x, t0);
            if (rc < 0)
                break;
            rc = 0;
        }
    }
    vl_gather_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    return ex_main("embed_poll", argc, argv, ex_count_fds(), run);
}
