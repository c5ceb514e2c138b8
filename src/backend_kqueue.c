/* backend_kqueue.c: BSD/macOS readiness through one kqueue, level-triggered
 * (no EV_CLEAR), interest changes batched into the next kevent() call.
 * Compiled on the BSDs and macOS, or on Linux against libkqueue with
 * -DVL_USE_KQUEUE (make check-kqueue).  Never blocks except in backend_poll. */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__) || defined(VL_USE_KQUEUE)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "backend.h"
#include "loop.h"

struct kqueue_state {
    int kq;
    struct kevent *changes;      /* pending interest changes, flushed by poll */
    int nchanges, changes_cap;
    struct kevent *events;
    int cap;
    /* kqueue reports read and write readiness as two events; these merge
     * them into one per fd, as epoll gives (seen[fd] == gen: out[slot[fd]]). */
    unsigned *seen;
    int *slot;
    int seen_cap;
    unsigned gen;
};

static int note_fd(struct kqueue_state *st, int fd)
{
    if (fd < st->seen_cap)
        return 0;
    int cap = st->seen_cap ? st->seen_cap : 256;
    while (cap <= fd)
        cap *= 2;
    unsigned *seen = realloc(st->seen, (size_t)cap * sizeof(*seen));
    if (!seen)
        return -ENOMEM;
    st->seen = seen;
    int *slot = realloc(st->slot, (size_t)cap * sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    st->slot = slot;
    memset(st->seen + st->seen_cap, 0, (size_t)(cap - st->seen_cap) * sizeof(*seen));
    st->seen_cap = cap;
    return 0;
}

int backend_init(struct vl_loop *loop)
{
    struct kqueue_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->kq = kqueue();
    if (st->kq < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    loop->backend = st;
    return 0;
}

void backend_free(struct vl_loop *loop)
{
    struct kqueue_state *st = loop->backend;
    if (!st)
        return;
    close(st->kq);
    free(st->seen);
    free(st->slot);
    free(st->changes);
    free(st->events);
    free(st);
    loop->backend = NULL;
}

int backend_resize(struct vl_loop *loop, int setsize)
{
    struct kqueue_state *st = loop->backend;
    if (setsize <= st->cap)
        return 0;
    struct kevent *ev = realloc(st->events, (size_t)setsize * sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    st->events = ev;
    st->cap = setsize;
    return 0;
}

static int push_change(struct kqueue_state *st, int fd, int filter, int flags)
{
    if (st->nchanges == st->changes_cap) {
        int cap = st->changes_cap ? st->changes_cap * 2 : 64;
        struct kevent *c = realloc(st->changes, (size_t)cap * sizeof(*c));
        if (!c)
            return -ENOMEM;
        st->changes = c;
        st->changes_cap = cap;
    }
    EV_SET(&st->changes[st->nchanges++], (uintptr_t)fd, filter, flags, 0, 0, NULL);
    return 0;
}

/* Changes wait for the next kevent() call: one syscall per iteration for
 * every interest change made during it. */
int backend_modify(struct vl_loop *loop, int fd, int old_mask, int new_mask)
{
    struct kqueue_state *st = loop->backend;
    int rc = note_fd(st, fd);
    if (rc == 0 && ((old_mask ^ new_mask) & VL_READ))
        rc = push_change(st, fd, EVFILT_READ, (new_mask & VL_READ) ? EV_ADD : EV_DELETE);
    if (rc == 0 && ((old_mask ^ new_mask) & VL_WRITE))
        rc = push_change(st, fd, EVFILT_WRITE, (new_mask & VL_WRITE) ? EV_ADD : EV_DELETE);
    if (rc == 0 && new_mask == 0) {
        /* The fd may be closed right after this: flush its deletes now, so
         * a later fd with the same number is not hit by them. */
        struct timespec zero = {0, 0};
        if (kevent(st->kq, st->changes, st->nchanges, NULL, 0, &zero) < 0 && errno != ENOENT &&
            errno != EBADF)
            rc = -errno;
        st->nchanges = 0;
    }
    return rc;
}

int backend_poll(struct vl_loop *loop, struct backend_event *out, int max, int timeout_ms)
{
    struct kqueue_state *st = loop->backend;
    struct timespec ts, *tp = NULL;
    if (max > st->cap)
        max = st->cap;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    int n = kevent(st->kq, st->changes, st->nchanges, st->events, max, tp);
    st->nchanges = 0;
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int k = 0;
    st->gen++;
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &st->events[i];
        int fd = (int)e->ident, mask;
        if (e->flags & EV_ERROR) {
            /* A change that failed: a delete of an fd already closed is
             * harmless; anything else wakes the owner, whose call then
             * reports the real error. */
            if (e->data == ENOENT || e->data == EBADF)
                continue;
            mask = VL_READ | VL_WRITE;
        } else if (e->flags & EV_EOF) {
            /* the peer closed or the socket failed: wake both ways so
             * read() returns 0 or getsockopt(SO_ERROR) the error */
            mask = VL_READ | VL_WRITE;
        } else {
            mask = e->filter == EVFILT_READ ? VL_READ : VL_WRITE;
        }
        if (fd < st->seen_cap && st->seen[fd] == st->gen) {
            out[st->slot[fd]].events |= mask;
            continue;
        }
        if (fd < st->seen_cap) {
            st->seen[fd] = st->gen;
            st->slot[fd] = k;
        }
        out[k].fd = fd;
        /* libkqueue reads SO_ERROR (clearing it) to fill fflags: keep it */
        out[k].err = (e->flags & EV_EOF) ? (int)e->fflags : 0;
        out[k++].events = mask;
    }
    return k;
}

int backend_fd(const struct vl_loop *loop)
{
    const struct kqueue_state *st = loop->backend;
    return st->kq;
}

void backend_flush(struct vl_loop *loop)
{
    struct kqueue_state *st = loop->backend;
    struct timespec zero = {0, 0};
    if (st->nchanges && kevent(st->kq, st->changes, st->nchanges, NULL, 0, &zero) >= 0)
        st->nchanges = 0;
}

const char *backend_name(void) { return "kqueue"; }
#endif
