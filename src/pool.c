/* pool.c: the keep-alive connection pool.  Idle connections are watched
 * for readability: a server that closes an idle connection (or sends junk
 * into it) gets it closed here rather than failing the next request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void on_idle_timer(vl_loop *loop, vl_timer *t, void *data);

int pool_init(struct pool *p, vl_loop *loop, int max_conns, int per_host, uint64_t idle_timeout_us)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->nbuckets = 256;
    p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
    if (!p->buckets)
        return -ENOMEM;
    list_init(&p->lru);
    p->max_conns = max_conns;
    p->per_host = per_host;
    p->idle_timeout_us = idle_timeout_us;
    timer_init(&p->idle_timer, loop, on_idle_timer, p);
    return 0;
}

static void host_maybe_free(struct pool *p, struct host *h)
{
    if (h->refs || h->nconns || !list_empty(&h->queued) || list_linked(&h->ready_link) ||
        h->throttle_sticky || vl_timer_active(&h->throttle_timer))
        return;
    struct host **pp = &p->buckets[hash_str(h->key) % p->nbuckets];
    while (*pp != h)
        pp = &(*pp)->hnext;
    *pp = h->hnext;
    p->nhosts--;
    free(h->key);
    free(h);
}

static void close_idle(struct pool *p, struct conn *c)
{
    struct host *h = c->host;
    list_remove(&c->link);
    list_remove(&c->lru);
    p->nidle--;
    p->nconns--;
    h->nconns--;
    conn_destroy(p->loop, c);
    host_maybe_free(p, h);
}

void pool_free(struct pool *p)
{
    while (!list_empty(&p->lru))
        close_idle(p, container_of(p->lru.next, struct conn, lru));
    vl_timer_stop(&p->idle_timer);
    for (size_t i = 0; i < p->nbuckets; i++) {
        while (p->buckets[i]) {
            struct host *h = p->buckets[i];
            p->buckets[i] = h->hnext;
            vl_timer_stop(&h->throttle_timer);
            free(h->key);
            free(h);
        }
    }
    free(p->buckets);
}

struct host *pool_host_get(struct pool *p, const char *key)
{
    size_t b = hash_str(key) % p->nbuckets;
    for (struct host *h = p->buckets[b]; h; h = h->hnext) {
        if (strcmp(h->key, key) == 0) {
            h->refs++;
            return h;
        }
    }
    struct host *h = calloc(1, sizeof(*h));
    if (!h || !(h->key = vl_strdup(key))) {
        free(h);
        return NULL;
    }
    list_init(&h->idle);
    list_init(&h->queued);
    list_init(&h->ready_link);
    timer_init(&h->throttle_timer, p->loop, NULL, h);
    list_init(&h->connecting);
    list_init(&h->h2);
    h->refs = 1;
    h->pool = p;
    h->hnext = p->buckets[b];
    p->buckets[b] = h;
    p->nhosts++;
    return h;
}

void pool_host_put(struct pool *p, struct host *h)
{
    h->refs--;
    host_maybe_free(p, h);
}

struct conn *pool_take_idle(struct pool *p, struct host *h)
{
    if (list_empty(&h->idle))
        return NULL;
    /* Most recently used first: the one least likely to have been closed. */
    struct conn *c = container_of(h->idle.prev, struct conn, link);
    list_remove(&c->link);
    list_remove(&c->lru);
    p->nidle--;
    return c; /* still watched for reading: the caller re-points the watcher */
}

void pool_flush_idle(struct pool *p, struct host *h)
{
    while (!list_empty(&h->idle))
        close_idle(p, container_of(h->idle.next, struct conn, link));
}

int pool_has_room(const struct pool *p, const struct host *h)
{
    if (p->per_host > 0 && h->nconns >= p->per_host)
        return 0;
    return p->nconns < p->max_conns || !list_empty(&p->lru);
}

int pool_reserve(struct pool *p, struct host *h)
{
    if (p->per_host > 0 && h->nconns >= p->per_host)
        return 0;
    if (p->nconns >= p->max_conns) {
        if (list_empty(&p->lru))
            return 0;
        close_idle(p, container_of(p->lru.next, struct conn, lru));
    }
    p->nconns++;
    h->nconns++;
    return 1;
}

void pool_unreserve(struct pool *p, struct host *h)
{
    p->nconns--;
    h->nconns--;
}

struct conn *pool_conn_new(struct pool *p, struct host *h, int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->ops = &tcp_ops;
    c->id = ++p->next_conn_id;
    c->host = h;
    list_init(&c->link);
    list_init(&c->lru);
    vl_fmt(c->peer, sizeof(c->peer), "%s", peer);
    p->opened++;
    return c;
}

/* Readable while idle: EOF, an error or unsolicited bytes.  Either way the
 * connection cannot carry another request. */
static void on_idle_readable(vl_loop *loop, int fd, int events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct conn *c = data;
    close_idle(c->host->pool, c);
}

static void arm_idle_timer(struct pool *p)
{
    if (list_empty(&p->lru) || vl_timer_active(&p->idle_timer))
        return;
    struct conn *oldest = container_of(p->lru.next, struct conn, lru);
    uint64_t now = loop_now_us(p->loop), due = oldest->idle_since_us + p->idle_timeout_us;
    timer_start_us(&p->idle_timer, due > now ? due - now : 0);
}

static void on_idle_timer(vl_loop *loop, vl_timer *t, void *data)
{
    struct pool *p = data;
    (void)t;
    uint64_t now = loop_now_us(loop);
    while (!list_empty(&p->lru)) {
        struct conn *c = container_of(p->lru.next, struct conn, lru);
        if (c->idle_since_us + p->idle_timeout_us > now)
            break;
        close_idle(p, c);
    }
    arm_idle_timer(p);
}

void pool_release(struct pool *p, struct conn *c, int reusable)
{
    struct host *h = c->host;
    if (!reusable || p->idle_timeout_us == 0) {
        p->nconns--;
        h->nconns--;
        conn_destroy(p->loop, c);
        host_maybe_free(p, h);
        return;
    }
    c->owner = NULL;
    c->idle_since_us = loop_now_us(p->loop);
    list_insert_tail(&h->idle, &c->link);
    list_insert_tail(&p->lru, &c->lru);
    p->nidle++;
    if (vl_io_start(p->loop, c->fd, VL_READ, on_idle_readable, c) < 0) {
        close_idle(p, c);
        return;
    }
    arm_idle_timer(p);
}
