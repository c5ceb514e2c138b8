/* scheduler.h: the window and the per-host queues.  The window counts fetches
 * that can make progress (resolving, connecting, exchanging); one that must
 * wait for its host (its connection limit, its first TLS handshake) waits in
 * that host's queue and gives its place in the window to a fetch of a host
 * that has room.  The next fetch to run is taken round-robin among ready
 * hosts, so a blocked or slow host never starves the others (Heritrix's
 * per-host queues, scrapy's download slots).  Knows nothing of HTTP: what
 * "room" is, and how to start an item, are the caller's callbacks. */
#ifndef VL_SCHEDULER_H
#define VL_SCHEDULER_H

#include "loop.h"
#include "pool.h"
#include "util.h"

/* Embedded in what is scheduled (a fetch). */
struct sched_item {
    struct list_node link;     /* in host->queued while waiting */
    struct host *host;         /* where it waits; set by the caller */
    int active;                /* counted in the window */
};

/* May an item of h start now? */
typedef int sched_room_fn(void *ctx, struct host *h);
/* It is in the window now: go.  May re-enter sched (queue it again, leave). */
typedef void sched_start_fn(void *ctx, struct sched_item *it);

struct sched {
    vl_loop *loop;
    struct list_node ready;    /* hosts with queued items and room, in turn */
    int active, max_active;
    int pumping, pump_deferred;
    sched_room_fn *has_room;
    sched_start_fn *start;
    void *ctx;
};

void sched_init(struct sched *s, vl_loop *loop, int max_active, sched_room_fn *has_room,
                sched_start_fn *start, void *ctx);
/* Leave the window (if in it) and wait at it->host: at the back (new work)
 * or the front (work already begun: a redirect, a retry). */
void sched_queue(struct sched *s, struct sched_item *it, int front);
/* Take it out of its host's queue and out of the window, whichever it is
 * in (done, canceled, or pausing outside both, e.g. a retry delay). */
void sched_leave(struct sched *s, struct sched_item *it);
/* Put an item that is not queued into the window directly (a fetch that
 * needs no wait), even past max_active; 1 if it was not counted yet. */
void sched_enter(struct sched *s, struct sched_item *it);
/* h may have room now: it goes in turn if anything waits there. */
void sched_kick(struct sched *s, struct host *h);
/* A host entry about to be freed by the pool must not be in the ring. */
int sched_idle(const struct host *h);
int sched_queued(const struct host *h);

#endif
