/* scheduler.c: per-host queues, the window and politeness.  The pump runs
 * from the loop's deferred phase (never on a caller's stack), takes one
 * item from the first ready host, and puts the host back at the end of the
 * ring if it still has items and room: round-robin, one start per host per
 * turn.  A host held by its rate or a pause leaves the ring and comes back
 * when its timer fires; the run's rate holds the whole pump the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scheduler.h"

/* Back-off without Retry-After: a host with no rate of its own starts at
 * 2 requests a second; each 429/503 halves the rate, down to one a minute.
 * Each success adds RECOVER_PER_S to it (additive increase, as TCP and
 * scrapy's AutoThrottle recover) until the host's own rate, or
 * RECOVERED_PER_S for a host without one, is reached. */
#define BACKOFF_START_US 500000u
#define BACKOFF_MAX_US 60000000u
#define PAUSE_MAX_US 300000000u   /* a Retry-After is honoured up to 5 min */
#define RECOVER_PER_S 0.5
#define RECOVERED_PER_S 50.0

static void pump(vl_loop *loop, void *data);

static void trace(struct sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct sched *s, const char *fmt, ...)
{
    if (!s->trace)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->trace(s->ctx, line);
}

static void on_rate_timer(vl_loop *loop, vl_timer *t, void *data);

void sched_init(struct sched *s, vl_loop *loop, int max_active, sched_room_fn *has_room,
                sched_start_fn *start, sched_trace_fn *trace_fn, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    list_init(&s->ready);
    s->max_active = max_active;
    s->has_room = has_room;
    s->start = start;
    s->trace = trace_fn;
    s->ctx = ctx;
    timer_init(&s->rate_timer, loop, on_rate_timer, s);
}

void sched_set_rates(struct sched *s, uint64_t run_interval_us, uint64_t host_interval_us)
{
    s->rate_interval_us = run_interval_us;
    s->host_interval_us = host_interval_us;
}

void sched_free(struct sched *s)
{
    if (s->loop) /* set up at all */
        vl_timer_stop(&s->rate_timer);
}

static void schedule_pump(struct sched *s)
{
    if (s->pump_deferred || s->pumping)
        return;
    s->pump_deferred = 1;
    vl_defer(s->loop, pump, s);
}

void sched_kick(struct sched *s, struct host *h)
{
    if (list_empty(&h->queued) || vl_timer_active(&h->throttle_timer))
        return; /* a held host comes back when its timer fires */
    if (!list_linked(&h->ready_link) && s->has_room(s->ctx, h))
        list_insert_tail(&s->ready, &h->ready_link);
    if (!list_empty(&s->ready) && s->active < s->max_active)
        schedule_pump(s);
}

static void out_of_window(struct sched *s, struct sched_item *it)
{
    if (!it->active)
        return;
    it->active = 0;
    s->active--;
    if (!list_empty(&s->ready))
        schedule_pump(s);
}

/* Time the host and the run have been held so far, for throttled_ms. */
static uint64_t held_total(const struct sched *s, const struct host *h, uint64_t now)
{
    uint64_t t = h->held_us + s->held_us;
    if (h->held_since_us)
        t += now - h->held_since_us;
    if (s->held_since_us)
        t += now - s->held_since_us;
    return t;
}

void sched_queue(struct sched *s, struct sched_item *it, int front)
{
    out_of_window(s, it);
    if (list_linked(&it->link))
        list_remove(&it->link);
    else
        s->queued++;
    struct host *h = it->host;
    struct list_node *q = &h->queued;
    h->sched = s;
    it->held_mark_us = held_total(s, h, loop_now_us(s->loop));
    if (front) { /* insert after the head: first in line */
        it->link.next = q->next;
        it->link.prev = q;
        q->next->prev = &it->link;
        q->next = &it->link;
    } else {
        list_insert_tail(q, &it->link);
    }
    sched_kick(s, h);
}

void sched_leave(struct sched *s, struct sched_item *it)
{
    if (list_linked(&it->link)) {
        struct host *h = it->host;
        list_remove(&it->link);
        s->queued--;
        if (list_empty(&h->queued)) {
            if (list_linked(&h->ready_link))
                list_remove(&h->ready_link);
            if (vl_timer_active(&h->throttle_timer)) { /* nothing left to hold */
                vl_timer_stop(&h->throttle_timer);
                h->held_us += loop_now_us(s->loop) - h->held_since_us;
                h->held_since_us = 0;
            }
        }
    }
    out_of_window(s, it);
}

void sched_enter(struct sched *s, struct sched_item *it)
{
    if (list_linked(&it->link)) {
        list_remove(&it->link);
        s->queued--;
    }
    if (!it->active) {
        it->active = 1;
        s->active++;
    }
}

int sched_queued(const struct host *h) { return !list_empty(&h->queued); }

/* ------------------------------------------------------------- holding */

static void on_host_timer(vl_loop *loop, vl_timer *t, void *data)
{
    struct host *h = data;
    struct sched *s = h->sched;
    (void)loop;
    (void)t;
    h->held_us += loop_now_us(s->loop) - h->held_since_us;
    h->held_since_us = 0;
    sched_kick(s, h);
}

static void hold_host(struct sched *s, struct host *h, uint64_t until, uint64_t now)
{
    if (!h->held_since_us)
        h->held_since_us = now;
    timer_init(&h->throttle_timer, s->loop, on_host_timer, h);
    timer_start_us(&h->throttle_timer, until - now);
}

static void on_rate_timer(vl_loop *loop, vl_timer *t, void *data)
{
    struct sched *s = data;
    (void)loop;
    (void)t;
    s->held_us += loop_now_us(s->loop) - s->held_since_us;
    s->held_since_us = 0;
    schedule_pump(s);
}

static uint64_t host_interval(const struct sched *s, const struct host *h)
{
    return h->backoff_interval_us > s->host_interval_us ? h->backoff_interval_us
                                                        : s->host_interval_us;
}

/* The next item of h goes: its hold time, the rates' next start. */
static struct sched_item *take(struct sched *s, struct host *h, uint64_t now)
{
    struct sched_item *it = container_of(list_pop_head(&h->queued), struct sched_item, link);
    s->queued--;
    uint64_t held = held_total(s, h, now) - it->held_mark_us;
    it->throttled_us += held;
    it->active = 1;
    s->active++;
    h->next_start_us = now + host_interval(s, h);
    if (s->rate_interval_us)
        s->next_start_us = (s->next_start_us > now ? s->next_start_us : now) + s->rate_interval_us;
    return it;
}

static void pump(vl_loop *loop, void *data)
{
    struct sched *s = data;
    (void)loop;
    s->pump_deferred = 0;
    s->pumping = 1;
    while (s->active < s->max_active && !list_empty(&s->ready)) {
        uint64_t now = loop_now_us(s->loop);
        if (s->next_start_us > now) { /* --rate: the whole run waits for its next start */
            if (!vl_timer_active(&s->rate_timer)) {
                if (!s->held_since_us)
                    s->held_since_us = now;
                timer_start_us(&s->rate_timer, s->next_start_us - now);
            }
            break;
        }
        struct list_node *n = list_pop_head(&s->ready);
        struct host *h = container_of(n, struct host, ready_link);
        if (list_empty(&h->queued) || !s->has_room(s->ctx, h))
            continue; /* its room went meanwhile: a kick brings it back */
        uint64_t when = h->next_start_us > h->paused_until_us ? h->next_start_us
                                                              : h->paused_until_us;
        if (when > now) {
            hold_host(s, h, when, now);
            continue;
        }
        struct sched_item *it = take(s, h, now);
        /* h stays alive across start (which may finish the item and drop
         * its reference), and goes back in turn if it has more and room. */
        h->refs++;
        s->start(s->ctx, it);
        if (!list_empty(&h->queued) && !list_linked(&h->ready_link) &&
            !vl_timer_active(&h->throttle_timer) && s->has_room(s->ctx, h))
            list_insert_tail(&s->ready, &h->ready_link);
        pool_host_put(h->pool, h);
    }
    s->pumping = 0;
}

/* ------------------------------------------------------------ back-off */

static double per_s(uint64_t interval_us) { return interval_us ? 1e6 / (double)interval_us : 0; }

void sched_feedback(struct sched *s, struct host *h, int status, int64_t retry_after_us)
{
    uint64_t now = loop_now_us(s->loop);
    if (status == 429 || status == 503) {
        if (!h->throttle_sticky)
            s->throttled_hosts++;
        h->throttle_sticky = 1;
        if (retry_after_us >= 0) {
            uint64_t pause = (uint64_t)retry_after_us < PAUSE_MAX_US ? (uint64_t)retry_after_us
                                                                     : PAUSE_MAX_US;
            if (now + pause > h->paused_until_us) {
                h->paused_until_us = now + pause;
                trace(s, "host %s: %d, paused %.1f s (Retry-After)", h->key, status,
                      (double)pause / 1e6);
            }
            return;
        }
        uint64_t old = host_interval(s, h);
        uint64_t next = old ? 2 * old : BACKOFF_START_US;
        if (next > BACKOFF_MAX_US)
            next = BACKOFF_MAX_US;
        h->backoff_interval_us = next;
        if (h->next_start_us < now + next)
            h->next_start_us = now + next; /* from this answer on, not from the last start */
        trace(s, "host %s: %d, rate %s%.2f/s -> %.2f/s", h->key, status, old ? "" : "unlimited ",
              per_s(old), per_s(next));
        return;
    }
    if (status >= 400 || !h->backoff_interval_us)
        return;
    double rate = per_s(h->backoff_interval_us) + RECOVER_PER_S;
    double goal = s->host_interval_us ? per_s(s->host_interval_us) : RECOVERED_PER_S;
    uint64_t old = h->backoff_interval_us;
    if (rate >= goal) {
        h->backoff_interval_us = 0;
        h->throttle_sticky = h->paused_until_us > now;
        trace(s, "host %s: rate recovered (%.2f/s -> %s)", h->key, per_s(old),
              s->host_interval_us ? "its --per-host-rate" : "unlimited");
        return;
    }
    h->backoff_interval_us = (uint64_t)(1e6 / rate);
    trace(s, "host %s: rate %.2f/s -> %.2f/s (recovering)", h->key, per_s(old), rate);
}
