/* backend_epoll.c: Linux readiness through one level-triggered epoll set.
 * Owns the epoll fd; never blocks except inside backend_poll. */
#if defined(__linux__) && !defined(VL_USE_KQUEUE)
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"
#include "loop.h"

struct epoll_state {
    int epfd;
    int cap;
    struct epoll_event *events;
};

int backend_init(struct vl_loop *loop)
{
    struct epoll_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    loop->backend = st;
    return 0;
}

void backend_free(struct vl_loop *loop)
{
    struct epoll_state *st = loop->backend;
    if (!st)
        return;
    close(st->epfd);
    free(st->events);
    free(st);
    loop->backend = NULL;
}

int backend_resize(struct vl_loop *loop, int setsize)
{
    struct epoll_state *st = loop->backend;
    if (setsize <= st->cap)
        return 0;
    struct epoll_event *ev = realloc(st->events, (size_t)setsize * sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    st->events = ev;
    st->cap = setsize;
    return 0;
}

int backend_modify(struct vl_loop *loop, int fd, int old_mask, int new_mask)
{
    struct epoll_state *st = loop->backend;
    struct epoll_event ev = {0};
    int op;
    if (new_mask == 0)
        op = EPOLL_CTL_DEL;
    else
        op = old_mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (new_mask & VL_READ)
        ev.events |= EPOLLIN;
    if (new_mask & VL_WRITE)
        ev.events |= EPOLLOUT;
    ev.data.fd = fd;
    if (epoll_ctl(st->epfd, op, fd, &ev) < 0)
        return -errno;
    return 0;
}

int backend_poll(struct vl_loop *loop, struct backend_event *out, int max, int timeout_ms)
{
    struct epoll_state *st = loop->backend;
    if (max > st->cap)
        max = st->cap;
    if (max <= 0) {
        if (backend_resize(loop, 64) < 0)
            return -ENOMEM;
        max = 64;
    }
    int n = epoll_wait(st->epfd, st->events, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        int mask = 0;
        if (e & EPOLLIN)
            mask |= VL_READ;
        if (e & EPOLLOUT)
            mask |= VL_WRITE;
        /* Errors and hang-ups wake both directions: the owner's read or
         * write call then returns the real error (ECONNREFUSED, EOF...). */
        if (e & (EPOLLERR | EPOLLHUP))
            mask |= VL_READ | VL_WRITE;
        out[i].fd = st->events[i].data.fd;
        out[i].events = mask;
        out[i].err = 0; /* SO_ERROR still holds it */
    }
    return n;
}

int backend_fd(const struct vl_loop *loop)
{
    const struct epoll_state *st = loop->backend;
    return st->epfd;
}

void backend_flush(struct vl_loop *loop) { (void)loop; /* epoll applies changes at once */ }

const char *backend_name(void) { return "epoll"; }
#endif
