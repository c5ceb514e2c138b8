/* backend.h: the seam between the loop core and the OS readiness API.
 * One implementation is compiled in: backend_epoll.c (Linux) or
 * backend_kqueue.c (BSD/macOS, or Linux with libkqueue when VL_USE_KQUEUE).
 * A backend knows fds and interest masks; it knows nothing of callbacks. */
#ifndef VL_BACKEND_H
#define VL_BACKEND_H

struct vl_loop;

struct backend_event {
    int fd;
    int events; /* VL_READ | VL_WRITE; errors and hang-ups are reported as both */
    int err;    /* a socket error the backend learned (kqueue EV_EOF fflags), or 0 */
};

int backend_init(struct vl_loop *loop);                 /* 0 or -errno */
void backend_free(struct vl_loop *loop);
int backend_resize(struct vl_loop *loop, int setsize);  /* room for setsize events */
/* Change fd's interest from old_mask to new_mask (either may be 0). */
int backend_modify(struct vl_loop *loop, int fd, int old_mask, int new_mask);
/* Wait up to timeout_ms (-1 forever); fills out[0..n); returns n or -errno. */
int backend_poll(struct vl_loop *loop, struct backend_event *out, int max, int timeout_ms);
int backend_fd(const struct vl_loop *loop);
/* Apply interest changes still batched (kqueue), so that a foreign loop
 * polling backend_fd() sees every watched fd. */
void backend_flush(struct vl_loop *loop);
const char *backend_name(void);

#endif
