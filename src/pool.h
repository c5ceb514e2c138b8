/* pool.h: keep-alive connections per (scheme, host, port), with a total and
 * a per-host limit, idle expiry, and per-host wait lists for fetches that
 * must wait for a connection.  Owns connections that are idle; a busy
 * connection is owned by its fetch.  Knows nothing of HTTP. */
#ifndef VL_POOL_H
#define VL_POOL_H

#include "conn.h"
#include "util.h"

struct host {
    char *key;                  /* "https://host:port" */
    struct host *hnext;         /* hash chain */
    struct list_node idle;      /* idle conns, most recently used last */
    struct list_node queued;    /* fetches waiting for room here (scheduler.c) */
    struct list_node ready_link; /* in the scheduler's ring of hosts with room */
    struct list_node connecting; /* fetches resolving or connecting here */
    int nconns;                 /* open: connecting, busy and idle */
    int refs;                   /* fetches holding this entry */
    struct pool *pool;
    int tls_probing;            /* a first full handshake is under way here */
    /* politeness, kept by scheduler.c */
    struct sched *sched;        /* the scheduler this host's fetches wait in */
    uint64_t next_start_us;     /* no request starts here before (rate, delay) */
    uint64_t paused_until_us;   /* a 429/503's Retry-After */
    uint64_t backoff_interval_us; /* raised by 429/503 without Retry-After (0 none) */
    uint64_t held_us;           /* time spent held by the above, in all */
    uint64_t held_since_us;     /* held now since (0: not held) */
    vl_timer throttle_timer;    /* ends the hold */
    int throttle_sticky;        /* back-off state to keep though nothing uses the host */
    /* HTTP/2, kept by h2.c */
    struct list_node h2;        /* its h2 sessions */
    int h2_seen;                /* it spoke h2: open one connection at a time */
};

struct pool {
    vl_loop *loop;
    struct host **buckets;
    size_t nbuckets, nhosts;
    struct list_node lru;       /* every idle conn, least recently used first */
    int nconns, nidle;
    int max_conns;              /* total open connections */
    int per_host;               /* 0 = unlimited */
    uint64_t idle_timeout_us;
    vl_timer idle_timer;
    uint64_t next_conn_id;
    uint64_t opened;            /* connections ever opened, for stats */
};

int pool_init(struct pool *p, vl_loop *loop, int max_conns, int per_host, uint64_t idle_timeout_us);
void pool_free(struct pool *p);
/* Find or create the entry for key, taking a reference. */
struct host *pool_host_get(struct pool *p, const char *key);
void pool_host_put(struct pool *p, struct host *h);
/* An idle connection to h (now owned by the caller), or NULL. */
struct conn *pool_take_idle(struct pool *p, struct host *h);
/* Close every idle connection to h (the server was found closing them:
 * the others, older than the one just found dead, likely are too).  h must
 * be held (a reference) by the caller. */
void pool_flush_idle(struct pool *p, struct host *h);
/* May the caller open a new connection to h?  Reserves the slot (counts it
 * in nconns) and returns 1, evicting an idle connection elsewhere when the
 * total limit is reached; returns 0 when h is at its per-host limit. */
int pool_reserve(struct pool *p, struct host *h);
/* Would pool_reserve succeed (without reserving)? */
int pool_has_room(const struct pool *p, const struct host *h);
/* Give back a reserved slot that never became a connection. */
void pool_unreserve(struct pool *p, struct host *h);
/* Hand a connection back: kept idle when reusable, else closed. */
void pool_release(struct pool *p, struct conn *c, int reusable);
/* Allocate a connection object for a connected fd (counted by pool_reserve). */
struct conn *pool_conn_new(struct pool *p, struct host *h, int fd, const char *peer);

#endif
