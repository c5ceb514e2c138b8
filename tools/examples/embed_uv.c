/* embed_uv.c: volley inside a libuv loop.
 *
 * libuv watches volley's one fd (vl_loop_fd, a uv_poll_t for reading) and a
 * uv_timer_t set to volley's next-timeout hint; either one calls
 * vl_loop_run_once(loop, 0) and re-arms the hint.  A hint of 0 ms (work left
 * over from a time slice, results to deliver) goes to a uv_idle_t instead:
 * libuv runs a 0 ms timer started from a timer callback again in the same
 * timer phase, without updating its clock, so a burst would run to its end
 * before any other timer; an idle handle runs once per loop iteration.
 * Another uv_timer_t is the host's own work, ticking every --period ms; its
 * lateness shows whether volley ever held the loop.
 *
 *   embed_uv [-c N] [--cacert FILE] [-k] [--period MS] [-i FILE] URL...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <uv.h>

#include "example.h"

struct host {
    struct ex *x;
    vl_loop *vl;
    vl_gather_op *g;
    uv_poll_t poll;          /* vl_loop_fd */
    uv_timer_t vl_timer;     /* volley's next deadline */
    uv_idle_t vl_idle;       /* volley has work now */
    uv_timer_t tick;         /* the host's own timer */
    int done;
    int err;
};

static void on_vl_timer(uv_timer_t *t);
static void on_vl_idle(uv_idle_t *i);

/* After every call into volley: its next deadline may have moved. */
static void rearm(struct host *h)
{
    int ms = vl_loop_timeout_ms(h->vl);
    if (ms == 0) {
        uv_timer_stop(&h->vl_timer);
        uv_idle_start(&h->vl_idle, on_vl_idle);
        return;
    }
    uv_idle_stop(&h->vl_idle);
    if (ms < 0)
        uv_timer_stop(&h->vl_timer);
    else
        uv_timer_start(&h->vl_timer, on_vl_timer, (uint64_t)ms, 0);
}

static void close_all(struct host *h)
{
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, NULL);
    uv_close((uv_handle_t *)&h->vl_timer, NULL);
    uv_close((uv_handle_t *)&h->vl_idle, NULL);
    uv_close((uv_handle_t *)&h->tick, NULL);
}

static void run_volley(struct host *h)
{
    uint64_t t0 = ex_now_us();
    int rc = vl_loop_run_once(h->vl, 0);
    ex_held(h->x, t0);
    if (rc < 0)
        h->err = rc;
    if (h->done || h->err) {
        close_all(h); /* uv_run returns once the handles are closed */
        return;
    }
    rearm(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_volley(p->data);
}

static void on_vl_timer(uv_timer_t *t) { run_volley(t->data); }

static void on_vl_idle(uv_idle_t *i) { run_volley(i->data); }

static void on_tick(uv_timer_t *t)
{
    struct host *h = t->data;
    uv_update_time(t->loop);
    ex_tick(h->x, ex_now_us());
    uv_timer_start(t, on_tick, (uint64_t)h->x->period_ms, 0);
}

static void on_done(vl_loop *loop, void *data)
{
    (void)loop;
    ((struct host *)data)->done = 1;
}

static int run(struct ex *x, vl_loop *vl, vl_client *client)
{
    uv_loop_t uv;
    struct host h = {.x = x, .vl = vl};
    int rc = uv_loop_init(&uv);
    if (rc < 0) {
        fprintf(stderr, "embed_uv: %s\n", uv_strerror(rc));
        return -1;
    }
    uv_poll_init(&uv, &h.poll, vl_loop_fd(vl));
    uv_timer_init(&uv, &h.vl_timer);
    uv_idle_init(&uv, &h.vl_idle);
    uv_timer_init(&uv, &h.tick);
    h.poll.data = h.vl_timer.data = h.vl_idle.data = h.tick.data = &h;
    rc = vl_gather_start(client, x->window, ex_next, x, ex_result, x, on_done, &h, &h.g);
    if (rc < 0) {
        close_all(&h);
    } else {
        uv_poll_start(&h.poll, UV_READABLE, on_poll);
        uv_timer_start(&h.tick, on_tick, (uint64_t)x->period_ms, 0);
        x->due_us = ex_now_us() + (uint64_t)x->period_ms * 1000u;
        rearm(&h);
    }
    uv_run(&uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&uv) < 0)
        fprintf(stderr, "embed_uv: handles left open on the uv loop\n");
    vl_gather_free(h.g);
    return rc < 0 ? rc : h.err;
}

int main(int argc, char **argv)
{
    /* libuv opens a process-wide pipe with its first loop and keeps it (its
     * signal lock); count fds after that, so only volley's are compared. */
    uv_loop_t warm;
    if (uv_loop_init(&warm) == 0)
        uv_loop_close(&warm);
    return ex_main("embed_uv", argc, argv, ex_count_fds(), run);
}
