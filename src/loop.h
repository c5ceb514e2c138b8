/* loop.h: the reactor's internals, shared with the backends and with modules
 * that embed timers in their own structs (no allocation per timer).
 * Knows nothing of HTTP, sockets' meaning, or TLS. */
#ifndef VL_LOOP_H
#define VL_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "volley.h"

struct backend_event;

struct vl_timer {
    vl_loop *loop;
    vl_timer_cb *cb;
    void *data;
    uint64_t deadline_us;
    size_t heap_index;   /* position in loop->heap, or SIZE_MAX when stopped */
    uint64_t seq;        /* tie-break: timers with one deadline fire in arm order */
};

struct io_watch {
    int events;          /* interest; 0 = not watched */
    vl_io_cb *cb;
    void *data;
    void *socketp;       /* the host's pointer (vl_socket_assign), socket-callback mode */
};

struct deferred {
    vl_defer_cb *cb;
    void *data;
};

struct vl_loop {
    void *backend;
    uint64_t now_us;             /* cached CLOCK_MONOTONIC */
    struct io_watch *io;         /* indexed by fd */
    int io_cap;
    int nwatched;
    vl_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    struct deferred *dq;         /* ring buffer of deferred callbacks */
    size_t dq_head, dq_len, dq_cap;
    int stop;
    uint64_t iteration;
    vl_trace_cb *trace;
    void *trace_data;
    int event_err;               /* socket error the backend saw, during an io callback */
    uint64_t (*clock)(void *data); /* tests substitute a fake clock */
    void *clock_data;
    int depth;                   /* > 0 while volley runs callbacks (run_once, actions) */
    struct backend_event *batch; /* the last wait's events, dispatched in order */
    int batch_pos, batch_len;    /* pos < len: events left for the next run_once */
    uint64_t slice_us;           /* vl_loop_set_time_slice; 0 none */
    uint64_t slice_end_us;       /* when the current phase's slice is spent; 0 none */
    /* Embedding through socket callbacks (volley.h): the host owns every fd. */
    vl_socket_cb *socket_cb;     /* NULL: the backend watches fds */
    void *socket_user;
    vl_host_timer_cb *timer_cb;
    void *timer_user;
    uint64_t reported_us;        /* deadline last reported to timer_cb */
    int reporting_fd;            /* fd inside socket_cb, else -1 */
};

/* Embedded timers: init once, then start/stop as often as needed. */
void timer_init(vl_timer *t, vl_loop *loop, vl_timer_cb *cb, void *data);
void timer_start_us(vl_timer *t, uint64_t timeout_us);
uint64_t loop_now_us(const vl_loop *loop);
void loop_update_time(vl_loop *loop);
/* For unit tests: read time (microseconds) from fn instead of CLOCK_MONOTONIC. */
void loop_set_clock(vl_loop *loop, uint64_t (*fn)(void *data), void *data);

#endif
