/* conn.c: plain TCP connections (the "tcp" vtable) and the connector, which
 * turns an address list into one connected non-blocking socket the RFC 8305
 * way: one attempt at a time, the next started after 250 ms or as soon as
 * the previous fails, the first to connect wins and the others are closed.
 * Knows nothing of HTTP or TLS. */
#include <arpa/inet.h>
#include <ctype.h>
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

const struct conn_ops tcp_ops = {"tcp", tcp_read, tcp_writev, tcp_handshake, tcp_close, 1};

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
    int fd;                      /* -1 when not started, failed, or handed over */
    int err;                     /* errno of a failed attempt, 0 otherwise */
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
    uint64_t start_us;
    connector_cb *cb;
    connector_trace_cb *trace;
    void *data;
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
    k->att[idx].err = err;
    if (k->trace) {
        char peer[64], line[160];
        sockaddr_format(&k->addrs.addr[idx].sa, peer, sizeof(peer));
        vl_fmt(line, sizeof(line), "connect %s failed: %s", peer, strerror(err));
        k->trace(k->data, line);
    }
}

/* The error reported first is the most telling one: anything beats a
 * refusal (a timeout or unreachable network says more about the path). */
static int primary_error(const struct connector *k)
{
    int primary = 0;
    for (int i = 0; i < k->next; i++) {
        int err = k->att[i].err;
        if (err && (!primary || primary == ECONNREFUSED))
            primary = err;
    }
    return primary ? primary : ECONNREFUSED;
}

/* "connect: connection refused (127.0.0.1:80, [::1]:80)", and when the
 * attempts failed differently, "; network is unreachable ([::1]:80)" after. */
static void failure_message(const struct connector *k, int primary, char *msg, size_t len)
{
    int errs[CONNECT_MAX_ADDRS + 1], nerrs = 0;
    size_t used;
    errs[nerrs++] = primary;
    for (int i = 0; i < k->next; i++) {
        int seen = 0;
        for (int j = 0; j < nerrs; j++)
            seen |= errs[j] == k->att[i].err;
        if (!seen && k->att[i].err)
            errs[nerrs++] = k->att[i].err;
    }
    vl_fmt(msg, len, "connect: ");
    for (int j = 0; j < nerrs; j++) {
        const char *what =
            (errs[j] == EMFILE || errs[j] == ENFILE) ? "too many open files" : strerror(errs[j]);
        used = strlen(msg);
        vl_fmt(msg + used, len - used, "%s%c%s (", j ? "; " : "", tolower((unsigned char)what[0]),
               what + 1);
        for (int i = 0, first = 1; i < k->next; i++) {
            char peer[64];
            if (k->att[i].err != errs[j])
                continue;
            sockaddr_format(&k->addrs.addr[i].sa, peer, sizeof(peer));
            used = strlen(msg);
            vl_fmt(msg + used, len - used, "%s%s", first ? "" : ", ", peer);
            first = 0;
        }
        used = strlen(msg);
        vl_fmt(msg + used, len - used, ")");
    }
}

/* Ends the connector: closes every other attempt and frees k before the
 * callback runs, so the callback may start or cancel anything else. */
static void finish(struct connector *k, int fd, int idx)
{
    connector_cb *cb = k->cb;
    void *data = k->data;
    char peer[64] = "", msg[700] = "";
    int err = 0;
    vl_timer_stop(&k->delay);
    for (int i = 0; i < CONNECT_MAX_ADDRS; i++)
        attempt_close(k, &k->att[i]);
    if (fd >= 0) {
        sockaddr_format(&k->addrs.addr[idx].sa, peer, sizeof(peer));
        if (k->trace) {
            char line[160];
            vl_fmt(line, sizeof(line), "connected to %s (attempt %d/%d) after %.1f ms", peer,
                   idx + 1, k->addrs.n, (double)(loop_now_us(k->loop) - k->start_us) / 1000.0);
            k->trace(k->data, line);
        }
        vl_io_stop(k->loop, fd);
    } else {
        int primary = primary_error(k);
        failure_message(k, primary, msg, sizeof(msg));
        err = (primary == EMFILE || primary == ENFILE) ? -VL_ELIMIT : -VL_ECONNECT;
    }
    free(k);
    if (fd >= 0)
        cb(data, fd, 0, NULL, peer);
    else
        cb(data, -1, err, msg, NULL);
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
    if (soerr == 0)
        soerr = loop->event_err; /* a backend that consumed SO_ERROR (libkqueue) */
    if (soerr == 0) {
        /* Readiness can be stale: an event queued for an fd number that was
         * closed and reused in the same batch.  Only a peer proves a connection. */
        union vl_sockaddr peer;
        socklen_t pl = sizeof(peer);
        if (getpeername(fd, &peer.sa, &pl) < 0 && errno == ENOTCONN)
            return;
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
    /* EINTR on a non-blocking connect: the attempt goes on asynchronously. */
    if (connect(fd, &addr->sa, len) < 0 && errno != EINPROGRESS && errno != EINTR) {
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
        /* RFC 8305 §5: the next attempt waits for this one's Connection
         * Attempt Delay, from now (a failure re-arms it from its own start). */
        if (k->next < k->addrs.n)
            timer_start_us(&k->delay, CONNECT_ATTEMPT_DELAY_US);
        else
            vl_timer_stop(&k->delay);
        return;
    }
    if (k->live == 0)
        finish(k, -1, -1);
}

int connector_start(vl_loop *loop, const struct addr_list *addrs, connector_cb *cb,
                    connector_trace_cb *trace, void *data, struct connector **out)
{
    if (addrs->n <= 0 || addrs->n > CONNECT_MAX_ADDRS)
        return -EINVAL;
    struct connector *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->loop = loop;
    k->addrs = *addrs;
    k->cb = cb;
    k->trace = trace;
    k->data = data;
    k->start_us = loop_now_us(loop);
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
