/* embed_sockets.c: a poll() host that owns every fd (libcurl's
 * multi_socket model).
 *
 * With vl_loop_set_socket_cb the loop keeps no epoll fd: volley reports each
 * socket it wants watched (connections, and the resolver's sockets) to
 * on_socket, and its next deadline to on_timer.  The host polls exactly those
 * fds and hands readiness back with vl_socket_action, and its expired timer
 * with vl_timeout_action.
 *
 * It also checks volley's promises and counts every breach: REMOVE comes
 * before close (the fd is still open when REMOVE is reported, and poll never
 * sees a closed fd), socketp is the pointer given to vl_socket_assign, and no
 * fd is left watched once the client is freed.
 *
 *   embed_sockets [-c N] [--cacert FILE] [-k] [--period MS] [-i FILE] URL...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>

#include "example.h"

struct hsock {                  /* the host's record of one watched fd */
    int fd;
    int what;                   /* VL_POLL_IN, _OUT or _INOUT */
    size_t slot;                /* index in host.socks */
};

struct host {
    struct ex *x;
    vl_loop *vl;
    struct hsock **socks;       /* every fd volley asked us to watch */
    size_t nsocks, cap, max_socks;
    struct pollfd *pfds;
    size_t pfd_cap;
    uint64_t timer_due_us;      /* UINT64_MAX: volley needs no timer */
    uint64_t socket_reports, removes, timer_reports, actions;
    uint64_t violations;
    int done;
};

static void violation(struct host *h, const char *what, int fd)
{
    if (h->violations++ < 10)
        fprintf(stderr, "embed_sockets: VIOLATION: %s (fd %d)\n", what, fd);
}

static struct hsock *find(struct host *h, int fd)
{
    for (size_t i = 0; i < h->nsocks; i++)
        if (h->socks[i]->fd == fd)
            return h->socks[i];
    return NULL;
}

static int add_sock(struct host *h, int fd, struct hsock **out)
{
    if (h->nsocks == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct hsock **v = realloc(h->socks, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->socks = v;
        h->cap = cap;
    }
    struct hsock *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->fd = fd;
    s->slot = h->nsocks;
    h->socks[h->nsocks++] = s;
    if (h->nsocks > h->max_socks)
        h->max_socks = h->nsocks;
    *out = s;
    return 0;
}

static void remove_sock(struct host *h, struct hsock *s)
{
    struct hsock *last = h->socks[--h->nsocks];
    h->socks[s->slot] = last;
    last->slot = s->slot;
    free(s);
}

/* Called by volley when an fd's interest changes.  Only records it. */
static int on_socket(vl_loop *vl, int fd, int what, void *user, void *socketp)
{
    struct host *h = user;
    struct hsock *s = socketp;
    h->socket_reports++;
    if (fcntl(fd, F_GETFD) < 0)
        violation(h, "reported after close", fd);
    if (s && s->fd != fd)
        violation(h, "socketp belongs to another fd", fd);
    if (what == VL_POLL_REMOVE) {
        h->removes++;
        if (!s) {
            violation(h, "REMOVE without socketp", fd);
            s = find(h, fd);
        }
        if (s)
            remove_sock(h, s);
        return 0;
    }
    if (!s) {
        if (find(h, fd))
            violation(h, "new socket on an fd still watched", fd);
        int err = add_sock(h, fd, &s);
        if (err < 0)
            return err; /* volley fails the watch, and the fetch with it */
        if (vl_socket_assign(vl, fd, s) < 0)
            violation(h, "vl_socket_assign refused inside the callback", fd);
    }
    s->what = what;
    return 0;
}

/* Called by volley when its nearest deadline changes.  Only records it. */
static void on_timer(vl_loop *vl, int timeout_ms, void *user)
{
    struct host *h = user;
    (void)vl;
    h->timer_reports++;
    h->timer_due_us = timeout_ms < 0 ? UINT64_MAX : ex_now_us() + (uint64_t)timeout_ms * 1000u;
}

static void on_done(vl_loop *loop, void *data)
{
    (void)loop;
    ((struct host *)data)->done = 1;
}

static int ms_until(uint64_t at_us, uint64_t now_us)
{
    if (at_us <= now_us)
        return 0;
    uint64_t ms = (at_us - now_us + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Poll a snapshot of the watched fds; 0 or -errno. */
static int poll_once(struct host *h, size_t *n)
{
    if (h->pfd_cap < h->nsocks) {
        struct pollfd *p = realloc(h->pfds, h->cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        h->pfds = p;
        h->pfd_cap = h->cap;
    }
    *n = h->nsocks;
    for (size_t i = 0; i < *n; i++) {
        struct hsock *s = h->socks[i];
        h->pfds[i] = (struct pollfd){.fd = s->fd, .events = (short)(((s->what & VL_POLL_IN) ? POLLIN : 0) |
                                                                    ((s->what & VL_POLL_OUT) ? POLLOUT : 0))};
    }
    uint64_t now = ex_now_us();
    uint64_t due = h->timer_due_us < h->x->due_us ? h->timer_due_us : h->x->due_us;
    if (poll(h->pfds, (nfds_t)*n, ms_until(due, now)) < 0) {
        *n = 0;
        return errno == EINTR ? 0 : -errno;
    }
    return 0;
}

static int drive(struct host *h)
{
    size_t n;
    int rc = poll_once(h, &n);
    if (rc < 0)
        return rc;
    uint64_t now = ex_now_us();
    if (now >= h->x->due_us)
        ex_tick(h->x, now); /* the host's own work would go here */
    /* The snapshot may go stale while we hand it over: volley ignores fds it
     * no longer watches, and a reused number only sees a spurious wake-up. */
    for (size_t i = 0; i < n; i++) {
        short re = h->pfds[i].revents;
        if (!re)
            continue;
        if (re & POLLNVAL)
            violation(h, "polled a closed fd", h->pfds[i].fd);
        int ev = ((re & POLLIN) ? VL_POLL_IN : 0) | ((re & POLLOUT) ? VL_POLL_OUT : 0);
        if (re & (POLLERR | POLLHUP))
            ev = VL_POLL_INOUT;
        h->actions++;
        uint64_t t0 = ex_now_us();
        rc = vl_socket_action(h->vl, h->pfds[i].fd, ev);
        ex_held(h->x, t0);
        if (rc < 0)
            return rc;
        /* One fd at a time: the host can look at its own timer in between. */
        now = ex_now_us();
        if (now >= h->x->due_us)
            ex_tick(h->x, now);
    }
    if (h->timer_due_us <= ex_now_us()) {
        h->timer_due_us = UINT64_MAX; /* one-shot: volley re-reports it */
        h->actions++;
        uint64_t t0 = ex_now_us();
        rc = vl_timeout_action(h->vl);
        ex_held(h->x, t0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct ex x;
    int fds_before = ex_count_fds();
    if (ex_parse(&x, "embed_sockets", argc, argv))
        return 2;
    struct host h = {.x = &x, .timer_due_us = UINT64_MAX};
    char err[256] = "";
    vl_client *client = NULL;
    vl_gather_op *g = NULL;
    h.vl = vl_loop_new();
    if (!h.vl)
        return 1;
    /* Before anything is watched: the loop gives up its epoll fd. */
    vl_loop_set_socket_cb(h.vl, on_socket, &h);
    vl_loop_set_timer_cb(h.vl, on_timer, &h);
    if (vl_loop_fd(h.vl) != -1)
        violation(&h, "the loop kept a backend fd", vl_loop_fd(h.vl));
    int rc = vl_client_new(h.vl, &x.client, &client, err, sizeof(err));
    uint64_t t0 = ex_now_us();
    if (rc == 0)
        rc = vl_gather_start(client, x.window, ex_next, &x, ex_result, &x, on_done, &h, &g);
    x.due_us = ex_now_us() + (uint64_t)x.period_ms * 1000u;
    while (rc == 0 && !h.done)
        rc = drive(&h);
    if (rc < 0)
        fprintf(stderr, "embed_sockets: %s\n", err[0] ? err : vl_strerror(rc));
    double secs = (double)(ex_now_us() - t0) / 1e6;
    vl_gather_free(g);
    vl_client_free(client); /* closes the idle connections: REMOVE for each */
    for (size_t i = 0; i < h.nsocks; i++)
        violation(&h, "still watched after vl_client_free", h.socks[i]->fd);
    vl_loop_free(h.vl);
    printf("embed_sockets: %llu socket reports (%llu removes), %llu timer reports, "
           "%llu actions, at most %zu fds watched, %llu violations\n",
           (unsigned long long)h.socket_reports, (unsigned long long)h.removes,
           (unsigned long long)h.timer_reports, (unsigned long long)h.actions, h.max_socks,
           (unsigned long long)h.violations);
    for (size_t i = 0; i < h.nsocks; i++)
        free(h.socks[i]);
    free(h.socks);
    free(h.pfds);
    int status = ex_finish(&x, fds_before, secs);
    if (rc < 0)
        return 1;
    return h.violations ? 4 : status;
}
