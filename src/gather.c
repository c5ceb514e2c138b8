/* gather.c: many fetches under a window, results by callback as they
 * complete; the asyncio.gather of this library.  Pulls requests from an
 * iterator only as slots free up, so memory follows the window, not the
 * length of the list. */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

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
    while (!g->exhausted && !g->paused && g->inflight < g->window) {
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
    g->window = window > 0 ? window : cl->opts.concurrency;
    /* Keep the window below the open-file limit: each fetch may hold a
     * socket, a second happy-eyeballs attempt, an idle pooled connection and
     * an output file (the CLI says so when it lowers -c for this).  Running
     * out of fds must be an error result (EMFILE), never a stall. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        long room = ((long)rl.rlim_cur - 32) / 4;
        if (room < 1)
            room = 1;
        if (g->window > room)
            g->window = (int)room;
    }
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
