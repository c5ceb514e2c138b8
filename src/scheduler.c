/* scheduler.c: per-host queues and the window.  The pump runs from the loop's
 * deferred phase (never on a caller's stack), takes one item from the first
 * ready host, and puts the host back at the end of the ring if it still has
 * items and room: round-robin, one start per host per turn. */
#include "scheduler.h"

static void pump(vl_loop *loop, void *data);

void sched_init(struct sched *s, vl_loop *loop, int max_active, sched_room_fn *has_room,
                sched_start_fn *start, void *ctx)
{
    s->loop = loop;
    list_init(&s->ready);
    s->active = 0;
    s->max_active = max_active;
    s->pumping = s->pump_deferred = 0;
    s->has_room = has_room;
    s->start = start;
    s->ctx = ctx;
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
    if (list_empty(&h->queued))
        return;
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

void sched_queue(struct sched *s, struct sched_item *it, int front)
{
    out_of_window(s, it);
    if (list_linked(&it->link))
        list_remove(&it->link);
    struct list_node *h = &it->host->queued;
    if (front) { /* insert after the head: first in line */
        it->link.next = h->next;
        it->link.prev = h;
        h->next->prev = &it->link;
        h->next = &it->link;
    } else {
        list_insert_tail(h, &it->link);
    }
    sched_kick(s, it->host);
}

void sched_leave(struct sched *s, struct sched_item *it)
{
    if (list_linked(&it->link)) {
        list_remove(&it->link);
        if (list_empty(&it->host->queued) && list_linked(&it->host->ready_link))
            list_remove(&it->host->ready_link);
    }
    out_of_window(s, it);
}

void sched_enter(struct sched *s, struct sched_item *it)
{
    if (list_linked(&it->link))
        list_remove(&it->link);
    if (!it->active) {
        it->active = 1;
        s->active++;
    }
}

int sched_idle(const struct host *h) { return !list_linked(&h->ready_link) && list_empty(&h->queued); }
int sched_queued(const struct host *h) { return !list_empty(&h->queued); }

static void pump(vl_loop *loop, void *data)
{
    struct sched *s = data;
    (void)loop;
    s->pump_deferred = 0;
    s->pumping = 1;
    while (s->active < s->max_active && !list_empty(&s->ready)) {
        struct list_node *n = list_pop_head(&s->ready);
        struct host *h = container_of(n, struct host, ready_link);
        if (list_empty(&h->queued) || !s->has_room(s->ctx, h))
            continue; /* its room went meanwhile: a kick brings it back */
        struct sched_item *it = container_of(list_pop_head(&h->queued), struct sched_item, link);
        it->active = 1;
        s->active++;
        /* h stays alive across start (which may finish the item and drop
         * its reference), and goes back in turn if it has more and room. */
        h->refs++;
        s->start(s->ctx, it);
        if (!list_empty(&h->queued) && !list_linked(&h->ready_link) && s->has_room(s->ctx, h))
            list_insert_tail(&s->ready, &h->ready_link);
        pool_host_put(h->pool, h);
    }
    s->pumping = 0;
}
