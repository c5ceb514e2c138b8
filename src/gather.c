/* gather.c: many fetches under a window, results by callback as they
 * complete; the asyncio.gather of this library.  Pulls requests from an
 * iterator only as slots free up, so memory follows the window, not the
 * length of the list. */
#include <errno.h>
#include <stdlib.h>

#include "client.h"
#include "loop.h"

struct vl_gather_op {
    vl_client *cl;
    int window;
    int inflight;
    int exhausted;
    int paused;                 /* the iterator said -EAGAIN: wait for resume */
    int finished;
    int refilling;
    int stalled;                /* the read-ahead is full of requests waiting for their hosts */
    int failed;
    vl_next_cb *next;
    void *next_data;
    vl_result_cb *on_result;
    void *result_data;
    vl_defer_cb *done;
    void *done_data;
};

static void refill(vl_gather_op *g);

static void on_result(const vl_result *r, void *data)
{
    vl_gather_op *g = data;
    g->inflight--;
    if (!r->ok)
        g->failed++;
    if (g->on_result)
        g->on_result(r, g->result_data);
    refill(g);
}

static void refill(vl_gather_op *g)
{
    if (g->refilling)
        return; /* on_result inside refill: the outer loop goes on */
    g->refilling = 1;
    /* past the client's concurrency only when it helps: room in flight that
     * no queued request can take (their hosts are blocked) */
    struct sched *s = &g->cl->sched;
    while (!g->exhausted && !g->paused && g->inflight < g->window &&
           (g->inflight < g->cl->opts.concurrency ||
            (s->active < s->max_active && list_empty(&s->ready)))) {
        vl_request req = {0};
        int rc = g->next(g->next_data, &req);
        if (rc == -EAGAIN) {
            g->paused = 1;
            break;
        }
        if (rc <= 0) {
            g->exhausted = 1;
            break;
        }
        g->inflight++;
        if (vl_fetch_start(g->cl, &req, on_result, g, NULL) < 0) {
            g->inflight--;
            g->failed++;
        }
    }
    g->refilling = 0;
    /* Bounded memory wins over reading on: say so once per stall. */
    int stalled = !g->exhausted && !g->paused && g->inflight >= g->window &&
                  s->active < s->max_active && list_empty(&s->ready);
    if (stalled && !g->stalled)
        client_trace(g->cl, "read-ahead full: %d requests started, %d in flight (of %d), the rest "
                     "wait for their hosts; reading no further until one is done",
                     g->inflight, s->active, s->max_active);
    g->stalled = stalled;
    if (g->exhausted && g->inflight == 0 && !g->finished) {
        g->finished = 1;
        if (g->done)
            g->done(g->cl->loop, g->done_data);
    }
}

int vl_gather_start(vl_client *cl, int window, vl_next_cb *next, void *next_data,
                    vl_result_cb *res, void *result_data, vl_defer_cb *done, void *done_data,
                    vl_gather_op **out)
{
    vl_gather_op *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->cl = cl;
    /* The window is the read-ahead: requests started and not yet done,
     * whether in flight or waiting in their host's queue; the client keeps
     * at most its concurrency of them in flight (scheduler.c). */
    int ahead = cl->opts.read_ahead > 0 ? cl->opts.read_ahead : 4 * cl->opts.concurrency;
    g->window = window > 0 ? window : ahead;
    g->next = next;
    g->next_data = next_data;
    g->on_result = res;
    g->result_data = result_data;
    g->done = done;
    g->done_data = done_data;
    *out = g;
    refill(g);
    return 0;
}

void vl_gather_resume(vl_gather_op *g)
{
    g->paused = 0;
    refill(g);
}

void vl_gather_free(vl_gather_op *g) { free(g); }

static void mark_done(vl_loop *loop, void *data)
{
    *(int *)data = 1;
    vl_loop_stop(loop); /* return from the wait at once, not at the next timer */
}

int vl_gather(vl_client *cl, int window, vl_next_cb *next, void *next_data, vl_result_cb *res,
              void *result_data)
{
    int done = 0;
    vl_gather_op *g;
    if (cl->loop->socket_cb)
        return -EINVAL; /* the host drives this loop: use vl_gather_start */
    int rc = vl_gather_start(cl, window, next, next_data, res, result_data, mark_done, &done, &g);
    if (rc < 0)
        return rc;
    while (!done) {
        rc = vl_loop_run_once(cl->loop, -1);
        if (rc < 0)
            break;
    }
    cl->loop->stop = 0;
    int failed = g->failed;
    vl_gather_free(g);
    return rc < 0 ? rc : failed;
}
