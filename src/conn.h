/* conn.h: one connection to a server, behind one small interface shared by
 * the plain-TCP and TLS paths (a vtable: read, writev, handshake, close), so
 * http.c never asks "is this TLS?".  Also the connector that turns a list of
 * addresses into one connected socket (RFC 8305 happy eyeballs).
 * Knows nothing of HTTP. */
#ifndef VL_CONN_H
#define VL_CONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "loop.h"
#include "util.h"

struct conn;

/* Every op returns >= 0 on progress, -EAGAIN when it must wait (then
 * c->want says for what: VL_READ or VL_WRITE; TLS may want either way),
 * or another negative code with c->err holding a precise message. */
struct conn_ops {
    const char *name;                                           /* "tcp" or "tls" */
    ssize_t (*read)(struct conn *c, void *buf, size_t len);     /* 0 = orderly EOF */
    /* After -EAGAIN or a partial count, call again with the same remaining
     * bytes first (more may follow them): mbedTLS has already encrypted
     * what it took, and a TLS record cannot be taken back. */
    ssize_t (*writev)(struct conn *c, const struct iovec *iov, int iovcnt);
    int (*handshake)(struct conn *c);                           /* 0 when done */
    void (*close)(struct conn *c);                              /* release TLS state */
    /* A read shorter than asked means the kernel had no more: the caller may
     * wait for readiness instead of reading into EAGAIN.  Not for TLS, whose
     * layer may hold decrypted bytes the fd will never announce. */
    int short_read_drains;
};

struct host; /* pool.h */

struct conn {
    int fd;
    int want;                    /* VL_READ/VL_WRITE the last -EAGAIN waits for */
    const struct conn_ops *ops;
    void *tls;                   /* TLS layer state, owned by tls.c */
    void *tunnel;                /* proxy stage state while it runs, owned by tunnel.c */
    int tls_resumed;             /* set by tls.c when the session was resumed */
    uint64_t id;
    struct host *host;           /* pool entry, owned by pool.c */
    struct list_node link;       /* in host's idle list */
    struct list_node lru;        /* in pool's idle LRU */
    uint64_t idle_since_us;
    unsigned requests;           /* responses completed on this connection */
    struct vl_fetch *owner;      /* the fetch using it, NULL when idle */
    char peer[64];               /* "127.0.0.1:8080", for messages */
    char err[256];
};

extern const struct conn_ops tcp_ops;

/* Close the socket (stop watching it first) and free c. */
void conn_destroy(vl_loop *loop, struct conn *c);
/* Format addr as "1.2.3.4:80" or "[::1]:80". */
void sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* ------------------------------------------------------------- connector */
#define CONNECT_MAX_ADDRS 16
#define CONNECT_ATTEMPT_DELAY_US 250000u /* RFC 8305 §5: Connection Attempt Delay */

union vl_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

struct addr_list {
    int n;
    union vl_sockaddr addr[CONNECT_MAX_ADDRS];
};

struct connector;
/* Called once, from the loop: with fd >= 0 (connected, non-blocking,
 * TCP_NODELAY, no longer watched) and peer, or with fd < 0, err (-VL_ECONNECT,
 * or -VL_ELIMIT when out of fds) and msg summarising every attempt, e.g.
 * "connect: connection refused (127.0.0.1:80, [::1]:80)".  The connector is
 * already freed when cb runs: do not cancel it from there. */
typedef void connector_cb(void *data, int fd, int err, const char *msg, const char *peer);
typedef void connector_trace_cb(void *data, const char *line);

/* Start connecting to addrs (in the order given: the caller interleaves
 * families).  Returns 0 and *out, or a negative code with nothing started. */
int connector_start(vl_loop *loop, const struct addr_list *addrs, connector_cb *cb,
                    connector_trace_cb *trace, void *data, struct connector **out);
/* Stop and free (closing any socket in progress); never calls cb. */
void connector_cancel(struct connector *k);
/* RFC 8305 §4: interleave address families, starting with the first's. */
void addr_list_interleave(struct addr_list *l);

#endif
