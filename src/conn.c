/* conn.c: plain TCP connections (the "tcp" vtable) and the connector, which
 * turns an address list into one connected non-blocking socket the RFC 8305
 * way: one attempt at a time, the next started after 250 ms or as soon as
 * the previous fails, the first to connect wins and the others are closed.
 * Knows nothing of HTTP or TLS. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

/* ----------------------------------------------------------------- tcp */

static ssize_t tcp_read(struct conn *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->want = VL_READ;
            return -EAGAIN;
        }
        int err = errno;
        vl_fmt(c->err, sizeof(c->err), "recv: %s (%s)", strerror(err), c->peer);
        return -err;
    }
}

static ssize_t tcp_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    /* sendmsg for MSG_NOSIGNAL: a peer that closed must give EPIPE, not kill
     * the embedding process with SIGPIPE. */
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->want = VL_WRITE;
            return -EAGAIN;
        }
        int err = errno;
        vl_fmt(c->err, sizeof(c->err), "send: %s (%s)", strerror(err), c->peer);
        return -err;
    }
}

static int tcp_handshake(struct conn *c)
{
    (void)c;
    return 0;
}

static void tcp_close(struct conn *c) { (void)c; }

const struct conn_ops tcp_ops = {"tcp", tcp_read, tcp_writev, tcp_handshake, tcp_close};

void conn_destroy(vl_loop *loop, struct conn *c)
{
    if (!c)
        return;
    if (c->ops)
        c->ops->close(c);
    if (c->fd >= 0) {
        vl_io_stop(loop, c->fd); /* unregister before close, always */
        close(c->fd);
    }
    free(c);
}

void sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        vl_fmt(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        vl_fmt(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

/* ------------------------------------------------------------ connector */

struct attempt {
    int fd;
    struct connector *k;
    int idx;
};

struct connector {
    vl_loop *loop;
    struct addr_list addrs;
    int next;                    /* next address to try */
    int live;                    /* attempts in progress */
    struct attempt att[CONNECT_MAX_ADDRS];
    vl_timer delay;              /* starts the next attempt */
    connector_cb *cb;
    connector_trace_cb *trace;
    void *data;
    char summary[512];           /* every failed attempt, for the error */
    int last_err;
};

static void attempt_close(struct connector *k, struct attempt *a)
{
    if (a->fd < 0)
        return;
    vl_io_stop(k->loop, a->fd);
    close(a->fd);
    a->fd = -1;
    k->live--;
}

static void note_failure(struct connector *k, int idx, int err)
{
    char peer[64];
    size_t len = strlen(k->summary);
    sockaddr_format(&k->addrs.addr[idx].sa, peer, sizeof(peer));
    if (k->trace) {
        char line[160];
        vl_fmt(line, sizeof(line), "connect %s failed: %s", peer, strerror(err));
        k->trace(k->data, line);
    }
    if (len + 8 < sizeof(k->summary))
        vl_fmt(k->summary + len, sizeof(k->summary) - len, "%s%s", len ? ", " : "", peer);
    /* The error reported is the most telling one: anything beats a refusal. */
    if (!k->last_err || k->last_err == ECONNREFUSED)
        k->last_err = err;
}

static void finish(struct connector *k, int fd, int idx)
{
    char peer[64] = "";
    vl_timer_stop(&k->delay);
    for (int i = 0; i < CONNECT_MAX_ADDRS; i++)
        if (k->att[i].fd >= 0 && k->att[i].fd != fd)
            attempt_close(k, &k->att[i]);
    if (fd >= 0) {
        sockaddr_format(&k->addrs.addr[idx].sa, peer, sizeof(peer));
        vl_io_stop(k->loop, fd);
        k->cb(k->data, fd, 0, NULL, peer);
    } else {
        char msg[700];
        int err = k->last_err ? k->last_err : ECONNREFUSED;
        if (err == EMFILE || err == ENFILE)
            vl_fmt(msg, sizeof(msg), "connect: too many open files (%s)", k->summary);
        else
            vl_fmt(msg, sizeof(msg), "connect: %s (%s)", strerror(err), k->summary);
        /* lower-case the strerror text's first letter, as curl-style messages read */
        if (msg[9] >= 'A' && msg[9] <= 'Z')
            msg[9] = (char)(msg[9] - 'A' + 'a');
        k->cb(k->data, -1, (err == EMFILE || err == ENFILE) ? -VL_ELIMIT : -VL_ECONNECT, msg, NULL);
    }
    free(k);
}

static void start_next(struct connector *k);

static void on_attempt(vl_loop *loop, int fd, int events, void *data)
{
    struct attempt *a = data;
    struct connector *k = a->k;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    (void)loop;
    (void)events;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr == 0) {
        int idx = a->idx;
        a->fd = -1; /* ownership moves to the caller */
        k->live--;
        finish(k, fd, idx);
        return;
    }
    note_failure(k, a->idx, soerr);
    attempt_close(k, a);
    /* RFC 8305 §5: a failure starts the next attempt at once. */
    start_next(k);
}

static void on_delay(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    (void)t;
    start_next(data);
}

static int open_socket(const union vl_sockaddr *addr, int *fd_out)
{
    int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    socklen_t len = addr->sa.sa_family == AF_INET6 ? sizeof(addr->in6) : sizeof(addr->in4);
    if (connect(fd, &addr->sa, len) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* Start attempts until one is in progress or the list is exhausted. */
static void start_next(struct connector *k)
{
    while (k->next < k->addrs.n) {
        int idx = k->next++;
        struct attempt *a = &k->att[idx];
        if (k->trace) {
            char peer[64], line[128];
            sockaddr_format(&k->addrs.addr[idx].sa, peer, sizeof(peer));
            vl_fmt(line, sizeof(line), "connect attempt %d/%d to %s", idx + 1, k->addrs.n, peer);
            k->trace(k->data, line);
        }
        int err = open_socket(&k->addrs.addr[idx], &a->fd);
        if (!err) {
            err = -vl_io_start(k->loop, a->fd, VL_WRITE, on_attempt, a);
            if (err) {
                close(a->fd);
                a->fd = -1;
            }
        }
        if (err) {
            note_failure(k, idx, err);
            if (err == EMFILE || err == ENFILE)
                break; /* more sockets will not help */
            continue;
        }
        k->live++;
        if (k->next < k->addrs.n)
            timer_start_us(&k->delay, CONNECT_ATTEMPT_DELAY_US);
        return;
    }
    if (k->live == 0)
        finish(k, -1, -1);
}

int connector_start(vl_loop *loop, const struct addr_list *addrs, connector_cb *cb,
                    connector_trace_cb *trace, void *data, struct connector **out)
{
    if (addrs->n <= 0)
        return -EINVAL;
    struct connector *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->loop = loop;
    k->addrs = *addrs;
    k->cb = cb;
    k->trace = trace;
    k->data = data;
    for (int i = 0; i < CONNECT_MAX_ADDRS; i++) {
        k->att[i].fd = -1;
        k->att[i].k = k;
        k->att[i].idx = i;
    }
    timer_init(&k->delay, loop, on_delay, k);
    *out = k;
    /* The first attempt is started from here, but its outcome (even an
     * immediate failure) is reported through the loop, never inside this call. */
    timer_start_us(&k->delay, 0);
    return 0;
}

void connector_cancel(struct connector *k)
{
    if (!k)
        return;
    vl_timer_stop(&k->delay);
    for (int i = 0; i < CONNECT_MAX_ADDRS; i++)
        attempt_close(k, &k->att[i]);
    free(k);
}

void addr_list_interleave(struct addr_list *l)
{
    union vl_sockaddr a[CONNECT_MAX_ADDRS], b[CONNECT_MAX_ADDRS];
    int na = 0, nb = 0;
    if (l->n < 2)
        return;
    int first = l->addr[0].sa.sa_family;
    for (int i = 0; i < l->n; i++) {
        if (l->addr[i].sa.sa_family == first)
            a[na++] = l->addr[i];
        else
            b[nb++] = l->addr[i];
    }
    int n = 0;
    for (int i = 0; i < na || i < nb; i++) {
        if (i < na)
            l->addr[n++] = a[i];
        if (i < nb)
            l->addr[n++] = b[i];
    }
}
