/* loop.c: the reactor core.  Owns fd watchers (an array indexed by fd),
 * timers (a binary min-heap keyed by deadline), the deferred queue and the
 * cached clock.  Each iteration runs, in this order: update the clock,
 * expired timers, deferred callbacks, wait for readiness, dispatch.
 * It must never block except in the backend wait, and knows nothing of HTTP. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "loop.h"

#define EVENTS_PER_WAIT 1024
/* reported_us values besides a deadline: nothing pending, and "report next
 * time whatever the deadline" (after the host's timer fired). */
#define DEADLINE_NONE UINT64_MAX
#define DEADLINE_UNKNOWN (UINT64_MAX - 1)

static void report_deadline(vl_loop *loop);

/* With a time slice (vl_loop_set_time_slice), one call does about a slice
 * of work (waiting excluded): each phase stops once the slice is spent,
 * after at least one callback, so every phase makes progress in every call
 * and what is left waits, in order, for the next.  Reads the clock, so only
 * when a slice is set. */
static int slice_spent(vl_loop *loop)
{
    if (!loop->slice_end_us)
        return 0;
    loop_update_time(loop);
    return loop->now_us >= loop->slice_end_us;
}

static void slice_start(vl_loop *loop)
{
    loop->slice_end_us = loop->slice_us ? loop->now_us + loop->slice_us : 0;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void loop_update_time(vl_loop *loop)
{
    loop->now_us = loop->clock ? loop->clock(loop->clock_data) : monotonic_us();
}

void loop_set_clock(vl_loop *loop, uint64_t (*fn)(void *data), void *data)
{
    loop->clock = fn;
    loop->clock_data = data;
    loop_update_time(loop);
}
uint64_t loop_now_us(const vl_loop *loop) { return loop->now_us; }
uint64_t vl_loop_now_ms(const vl_loop *loop) { return loop->now_us / 1000u; }
const char *vl_loop_backend(void) { return backend_name(); }

vl_loop *vl_loop_new(void)
{
    vl_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->batch = malloc(EVENTS_PER_WAIT * sizeof(*loop->batch));
    if (!loop->batch || backend_init(loop) < 0 || backend_resize(loop, EVENTS_PER_WAIT) < 0) {
        backend_free(loop);
        free(loop->batch);
        free(loop);
        return NULL;
    }
    loop->reported_us = DEADLINE_NONE;
    loop->reporting_fd = -1;
    loop_update_time(loop);
    return loop;
}

void vl_loop_free(vl_loop *loop)
{
    if (!loop)
        return;
    backend_free(loop);
    free(loop->batch);
    free(loop->io);
    free(loop->heap);
    free(loop->dq);
    free(loop);
}

void vl_loop_set_trace(vl_loop *loop, vl_trace_cb *cb, void *data)
{
    loop->trace = cb;
    loop->trace_data = data;
}

/* ------------------------------------------------------------ fd watchers */

static int io_reserve(vl_loop *loop, int fd)
{
    if (fd < loop->io_cap)
        return 0;
    int cap = loop->io_cap ? loop->io_cap : 64;
    while (cap <= fd)
        cap *= 2;
    struct io_watch *io = realloc(loop->io, (size_t)cap * sizeof(*io));
    if (!io)
        return -ENOMEM;
    memset(io + loop->io_cap, 0, (size_t)(cap - loop->io_cap) * sizeof(*io));
    loop->io = io;
    loop->io_cap = cap;
    return 0;
}

/* Tell whoever watches fds (the kernel through the backend, or the host's
 * socket callback) that fd's interest goes from w->events to events. */
static int report_interest(vl_loop *loop, int fd, struct io_watch *w, int events)
{
    loop->reporting_fd = fd;
    int err = loop->socket_cb(loop, fd, events ? events : VL_POLL_REMOVE, loop->socket_user,
                              w->socketp);
    loop->reporting_fd = -1;
    if (!events) {
        w->socketp = NULL; /* the number may come back as another socket */
        return 0;
    }
    return err < 0 ? err : 0;
}

static int set_interest(vl_loop *loop, int fd, struct io_watch *w, int events)
{
    if (loop->socket_cb)
        return report_interest(loop, fd, w, events);
    return backend_modify(loop, fd, w->events, events);
}

int vl_io_start(vl_loop *loop, int fd, int events, vl_io_cb *cb, void *data)
{
    if (fd < 0)
        return -EBADF;
    if (events == 0)
        return vl_io_stop(loop, fd);
    int err = io_reserve(loop, fd);
    if (err < 0)
        return err;
    struct io_watch *w = &loop->io[fd];
    if (w->events != events) {
        err = set_interest(loop, fd, w, events);
        if (err < 0)
            return err;
    }
    if (!w->events)
        loop->nwatched++;
    w->events = events;
    w->cb = cb;
    w->data = data;
    return 0;
}

int vl_io_modify(vl_loop *loop, int fd, int events)
{
    if (fd < 0 || fd >= loop->io_cap || !loop->io[fd].events)
        return -ENOENT;
    if (events == 0)
        return vl_io_stop(loop, fd);
    struct io_watch *w = &loop->io[fd];
    if (w->events == events)
        return 0; /* only touch the kernel when the set changes */
    int err = set_interest(loop, fd, w, events);
    if (err < 0)
        return err;
    w->events = events;
    return 0;
}

int vl_io_stop(vl_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->io_cap || !loop->io[fd].events)
        return 0;
    struct io_watch *w = &loop->io[fd];
    int err = set_interest(loop, fd, w, 0);
    w->events = 0;
    w->cb = NULL;
    w->data = NULL;
    loop->nwatched--;
    /* EBADF/ENOENT: the fd was closed already; the watch is gone either way. */
    return (err == -EBADF || err == -ENOENT) ? 0 : err;
}

/* ------------------------------------------------------------ timer heap */

static int timer_less(const vl_timer *a, const vl_timer *b)
{
    if (a->deadline_us != b->deadline_us)
        return a->deadline_us < b->deadline_us;
    return a->seq < b->seq;
}

static void heap_set(vl_loop *loop, size_t i, vl_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(vl_loop *loop, size_t i)
{
    vl_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(vl_loop *loop, size_t i)
{
    vl_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_less(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_less(loop->heap[child], t))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

static void heap_remove(vl_loop *loop, vl_timer *t)
{
    size_t i = t->heap_index;
    vl_timer *last = loop->heap[--loop->heap_len];
    t->heap_index = SIZE_MAX;
    if (last == t)
        return;
    heap_set(loop, i, last);
    if (i > 0 && timer_less(last, loop->heap[(i - 1) / 2]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

void timer_init(vl_timer *t, vl_loop *loop, vl_timer_cb *cb, void *data)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->cb = cb;
    t->data = data;
    t->heap_index = SIZE_MAX;
}

int vl_timer_active(const vl_timer *t) { return t->heap_index != SIZE_MAX; }

void vl_timer_stop(vl_timer *t)
{
    if (!vl_timer_active(t))
        return;
    heap_remove(t->loop, t);
    if (!t->loop->depth)
        report_deadline(t->loop);
}

void timer_start_us(vl_timer *t, uint64_t timeout_us)
{
    vl_loop *loop = t->loop;
    /* Outside callbacks (a host starting a fetch from its own loop) the
     * cached clock may be seconds old: a deadline from it would come early. */
    if (!loop->depth)
        loop_update_time(loop);
    if (vl_timer_active(t))
        heap_remove(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        vl_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            abort(); /* growth of a pointer array: out of memory is not recoverable here */
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->deadline_us = loop->now_us + timeout_us;
    t->seq = loop->timer_seq++;
    heap_set(loop, loop->heap_len++, t);
    heap_up(loop, t->heap_index);
    if (!loop->depth)
        report_deadline(loop);
}

void vl_timer_start(vl_timer *t, uint64_t timeout_ms) { timer_start_us(t, timeout_ms * 1000u); }

vl_timer *vl_timer_new(vl_loop *loop, vl_timer_cb *cb, void *data)
{
    vl_timer *t = malloc(sizeof(*t));
    if (t)
        timer_init(t, loop, cb, data);
    return t;
}

void vl_timer_free(vl_timer *t)
{
    if (!t)
        return;
    vl_timer_stop(t);
    free(t);
}

/* Run the timers due now that were armed before this pass: one re-armed
 * from its own callback with timeout 0 waits for the next pass instead of
 * spinning here (ties in the heap go to the older seq, so once the root is
 * that new, every due timer left is). */
static int run_timers(vl_loop *loop)
{
    int ran = 0;
    uint64_t armed_before = loop->timer_seq;
    while (loop->heap_len && loop->heap[0]->deadline_us <= loop->now_us &&
           loop->heap[0]->seq < armed_before) {
        vl_timer *t = loop->heap[0];
        heap_remove(loop, t);
        t->cb(loop, t, t->data); /* may re-arm or free t */
        ran++;
        if (slice_spent(loop))
            break;
    }
    return ran;
}

/* --------------------------------------------------------------- deferred */

int vl_defer(vl_loop *loop, vl_defer_cb *cb, void *data)
{
    if (loop->dq_len == loop->dq_cap) {
        size_t cap = loop->dq_cap ? loop->dq_cap * 2 : 64;
        struct deferred *q = malloc(cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        for (size_t i = 0; i < loop->dq_len; i++)
            q[i] = loop->dq[(loop->dq_head + i) % loop->dq_cap];
        free(loop->dq);
        loop->dq = q;
        loop->dq_cap = cap;
        loop->dq_head = 0;
    }
    loop->dq[(loop->dq_head + loop->dq_len) % loop->dq_cap] = (struct deferred){cb, data};
    loop->dq_len++;
    if (!loop->depth)
        report_deadline(loop);
    return 0;
}

/* Run the callbacks queued before this call; ones they queue wait for the
 * next iteration, so a callback that re-defers itself cannot starve I/O. */
static int run_deferred(vl_loop *loop)
{
    size_t n = loop->dq_len, i = 0;
    while (i < n) {
        struct deferred d = loop->dq[loop->dq_head];
        loop->dq_head = (loop->dq_head + 1) % loop->dq_cap;
        loop->dq_len--;
        d.cb(loop, d.data);
        i++;
        if (slice_spent(loop))
            break;
    }
    return (int)i;
}

/* ------------------------------------------------------------- iteration */

static int next_timeout(vl_loop *loop)
{
    if (loop->dq_len || loop->batch_pos < loop->batch_len)
        return 0;
    if (!loop->heap_len)
        return -1;
    loop_update_time(loop);
    uint64_t d = loop->heap[0]->deadline_us;
    if (d <= loop->now_us)
        return 0;
    uint64_t ms = (d - loop->now_us + 999) / 1000; /* round up: never wake early */
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* A foreign loop asks this before it polls vl_loop_fd(): batched interest
 * changes (kqueue) are applied first, so the fd it polls knows them all. */
int vl_loop_timeout_ms(vl_loop *loop)
{
    if (loop->backend)
        backend_flush(loop);
    return next_timeout(loop);
}

int vl_loop_fd(const vl_loop *loop) { return loop->backend ? backend_fd(loop) : -1; }

static int wait_timeout(vl_loop *loop, int requested)
{
    int t = next_timeout(loop); /* the changes go with the wait itself */
    if (requested < 0)
        return t;
    return (t < 0 || requested < t) ? requested : t;
}

/* Run fd's callback for the ready events it is watched for. */
static int dispatch(vl_loop *loop, int fd, int events, int err)
{
    /* An earlier callback in this batch may have stopped watching fd.
     * Errors and hang-ups arrive as both events, so they always fire. */
    if (fd < 0 || fd >= loop->io_cap)
        return 0;
    struct io_watch *w = &loop->io[fd];
    int fired = events & w->events;
    if (!fired)
        return 0;
    loop->event_err = err;
    w->cb(loop, fd, fired, w->data);
    loop->event_err = 0;
    return 1;
}

void vl_loop_set_time_slice(vl_loop *loop, int ms)
{
    loop->slice_us = ms > 0 ? (uint64_t)ms * 1000u : 0;
}

/* Dispatch the batch from where the last call stopped.  Events left over
 * when the slice is spent keep their order and go first next time, so no
 * fd can starve the ones behind it. */
static int dispatch_batch(vl_loop *loop)
{
    int ran = 0;
    while (loop->batch_pos < loop->batch_len) {
        const struct backend_event *e = &loop->batch[loop->batch_pos++];
        ran += dispatch(loop, e->fd, e->events, e->err);
        if (slice_spent(loop))
            break;
    }
    return ran;
}

static int run_once(vl_loop *loop, int timeout_ms)
{
    loop_update_time(loop);
    slice_start(loop);
    int ran = run_timers(loop);
    ran += run_deferred(loop);
    if (loop->stop)
        return ran;
    if (loop->batch_pos < loop->batch_len) {
        /* The last batch is not finished: finish it before waiting again. */
        ran += dispatch_batch(loop);
        return ran + (slice_spent(loop) ? 0 : run_timers(loop));
    }
    int timeout = wait_timeout(loop, timeout_ms);
    if (timeout < 0 && !loop->nwatched)
        return ran; /* nothing could ever wake us */
    uint64_t before = loop->now_us;
    int n = backend_poll(loop, loop->batch, EVENTS_PER_WAIT, timeout);
    loop_update_time(loop);
    if (loop->slice_end_us)
        loop->slice_end_us += loop->now_us - before; /* the wait is not work */
    loop->iteration++;
    if (loop->trace) {
        char line[128];
        snprintf(line, sizeof(line), "loop#%llu: wait %d ms -> %d events after %.1f ms, %d fds, %zu timers",
                 (unsigned long long)loop->iteration, timeout, n,
                 (double)(loop->now_us - before) / 1000.0, loop->nwatched, loop->heap_len);
        loop->trace(loop->trace_data, line);
    }
    if (n < 0)
        return n;
    loop->batch_pos = 0;
    loop->batch_len = n;
    ran += dispatch_batch(loop);
    if (!slice_spent(loop)) /* the timers phase has had its turn in this call */
        ran += run_timers(loop);
    return ran;
}

int vl_loop_run_once(vl_loop *loop, int timeout_ms)
{
    if (loop->socket_cb)
        return -EINVAL; /* the host waits for fds; see vl_socket_action */
    uint64_t outer_slice = loop->slice_end_us; /* a nested call (vl_gather in a callback) */
    loop->depth++;
    int ran = run_once(loop, timeout_ms);
    loop->depth--;
    loop->slice_end_us = outer_slice;
    return ran;
}

void vl_loop_stop(vl_loop *loop) { loop->stop = 1; }

int vl_loop_run(vl_loop *loop)
{
    if (loop->socket_cb)
        return -EINVAL; /* the host drives this loop */
    loop->stop = 0;
    while (!loop->stop && (loop->nwatched || loop->heap_len || loop->dq_len)) {
        int r = vl_loop_run_once(loop, -1);
        if (r < 0)
            return r;
    }
    loop->stop = 0;
    return 0;
}

/* ------------------------------------------- embedding: socket callbacks */

static uint64_t next_deadline(const vl_loop *loop)
{
    if (loop->dq_len)
        return 0;
    return loop->heap_len ? loop->heap[0]->deadline_us : DEADLINE_NONE;
}

/* Tell the host's timer callback the nearest deadline if it changed since
 * the last report.  Called when a change happens outside callbacks, and once
 * at the end of each action (inside them, changes only accumulate). */
static void report_deadline(vl_loop *loop)
{
    if (!loop->timer_cb)
        return;
    uint64_t d = next_deadline(loop);
    if (d == loop->reported_us)
        return;
    loop->reported_us = d;
    int ms = -1;
    if (d != DEADLINE_NONE) {
        loop_update_time(loop);
        uint64_t left = d > loop->now_us ? (d - loop->now_us + 999) / 1000 : 0;
        ms = left > INT_MAX ? INT_MAX : (int)left;
    }
    loop->timer_cb(loop, ms, loop->timer_user);
}

int vl_loop_set_socket_cb(vl_loop *loop, vl_socket_cb *cb, void *user)
{
    if (loop->nwatched || loop->depth)
        return -EBUSY;
    loop->batch_pos = loop->batch_len = 0; /* nothing watched: every event is stale */
    if (cb && !loop->socket_cb) {
        backend_free(loop); /* the host owns every fd, so we keep none */
    } else if (!cb && loop->socket_cb) {
        int err = backend_init(loop);
        if (err == 0)
            err = backend_resize(loop, EVENTS_PER_WAIT);
        if (err < 0) {
            backend_free(loop);
            return err;
        }
    }
    loop->socket_cb = cb;
    loop->socket_user = user;
    return 0;
}

int vl_loop_set_timer_cb(vl_loop *loop, vl_host_timer_cb *cb, void *user)
{
    loop->timer_cb = cb;
    loop->timer_user = user;
    loop->reported_us = DEADLINE_NONE; /* the host has no timer armed yet */
    report_deadline(loop);
    return 0;
}

int vl_socket_assign(vl_loop *loop, int fd, void *socketp)
{
    if (fd < 0 || fd >= loop->io_cap || (!loop->io[fd].events && fd != loop->reporting_fd))
        return -ENOENT;
    loop->io[fd].socketp = socketp;
    return 0;
}

static int action_enter(vl_loop *loop)
{
    if (!loop->socket_cb)
        return -EINVAL;
    if (loop->depth)
        return -EBUSY; /* called from inside a volley callback */
    loop->depth++;
    loop_update_time(loop);
    slice_start(loop);
    loop->iteration++;
    return 0;
}

/* The rest of one iteration: expired timers, then deferred callbacks (the
 * ones queued before this point; what they queue is reported as 0 ms).
 * fd < 0: the host's timer fired. */
static int action_leave(vl_loop *loop, int ran, int fd, int events)
{
    ran += run_timers(loop);
    ran += run_deferred(loop);
    loop->depth--;
    loop->slice_end_us = 0;
    if (loop->trace) {
        char line[128];
        if (fd >= 0)
            snprintf(line, sizeof(line), "loop#%llu: socket action fd=%d events=%d -> %d callbacks, "
                     "%d fds, %zu timers", (unsigned long long)loop->iteration, fd, events, ran,
                     loop->nwatched, loop->heap_len);
        else
            snprintf(line, sizeof(line), "loop#%llu: timeout action -> %d callbacks, %d fds, "
                     "%zu timers", (unsigned long long)loop->iteration, ran, loop->nwatched,
                     loop->heap_len);
        loop->trace(loop->trace_data, line);
    }
    report_deadline(loop);
    return ran;
}

int vl_socket_action(vl_loop *loop, int fd, int events)
{
    int err = action_enter(loop);
    if (err < 0)
        return err;
    int ran = dispatch(loop, fd, events & (VL_READ | VL_WRITE), 0);
    return action_leave(loop, ran, fd, events);
}

int vl_timeout_action(vl_loop *loop)
{
    int err = action_enter(loop);
    if (err < 0)
        return err;
    loop->reported_us = DEADLINE_UNKNOWN; /* the host's one-shot timer is spent */
    return action_leave(loop, 0, -1, 0);
}
