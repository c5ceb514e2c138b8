/* scheduler.h: the window, the per-host queues and politeness.  The window
 * counts fetches that can make progress (resolving, connecting,
 * exchanging); one that must wait for its host (its connection limit, its
 * first TLS handshake, its rate, a Retry-After pause) waits in that host's
 * queue and gives its place in the window to a fetch of a host that has
 * room.  The next fetch to run is taken round-robin among ready hosts, so a
 * blocked, slow or rate-limited host never starves the others (Heritrix's
 * per-host queues, scrapy's download slots).  Rates are minimum intervals
 * between request starts, held by loop timers: no busy waiting.  Knows
 * nothing of HTTP: what "room" is, and how to start an item, are the
 * caller's callbacks; statuses come in through sched_feedback. */
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
    uint64_t held_mark_us;     /* hold time of its host and the run when it queued */
    uint64_t throttled_us;     /* time it waited because of a rate or a pause */
};

/* May an item of h start now (connection room)? */
typedef int sched_room_fn(void *ctx, struct host *h);
/* It is in the window now: go.  May re-enter sched (queue it again, leave). */
typedef void sched_start_fn(void *ctx, struct sched_item *it);
typedef void sched_trace_fn(void *ctx, const char *line);

struct sched {
    vl_loop *loop;
    struct list_node ready;    /* hosts with queued items and room, in turn */
    int active, max_active;
    int pumping, pump_deferred;
    sched_room_fn *has_room;
    sched_start_fn *start;
    sched_trace_fn *trace;     /* NULL: quiet */
    void *ctx;
    /* --rate: over the whole run */
    uint64_t rate_interval_us;
    uint64_t next_start_us;
    uint64_t held_us, held_since_us;
    vl_timer rate_timer;
    /* --per-host-rate / --per-host-delay: the least interval per host */
    uint64_t host_interval_us;
    int throttled_hosts;       /* hosts ever slowed by a 429/503 */
    int queued;                /* items waiting in hosts' queues */
};

void sched_init(struct sched *s, vl_loop *loop, int max_active, sched_room_fn *has_room,
                sched_start_fn *start, sched_trace_fn *trace, void *ctx);
/* Minimum intervals between request starts, over the run and per host
 * (0: none). */
void sched_set_rates(struct sched *s, uint64_t run_interval_us, uint64_t host_interval_us);
void sched_free(struct sched *s);
/* Leave the window (if in it) and wait at it->host: at the back (new work)
 * or the front (work already begun: a redirect, a retry). */
void sched_queue(struct sched *s, struct sched_item *it, int front);
/* Take it out of its host's queue and out of the window, whichever it is
 * in (done, canceled, or pausing outside both, e.g. a retry delay). */
void sched_leave(struct sched *s, struct sched_item *it);
/* Put an item that is queued or outside into the window directly. */
void sched_enter(struct sched *s, struct sched_item *it);
/* h may have room now: it goes in turn if anything waits there. */
void sched_kick(struct sched *s, struct host *h);
int sched_queued(const struct host *h);
/* A final status from h: 429 and 503 slow the host (a pause of
 * retry_after_us when >= 0, else its rate halves); later successes bring
 * its rate back step by step (additive increase). */
void sched_feedback(struct sched *s, struct host *h, int status, int64_t retry_after_us);

#endif
