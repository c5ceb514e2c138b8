/* test_embedding.c: the loop driven by a host (volley.h, "embedding").
 * Socket callbacks: what is reported, when, with which socketp, and which
 * calls are refused where; the timer callback's deadlines; the time slice
 * that bounds one run_once or action.  A fake clock (loop_set_clock) makes
 * deadlines exact; fds are real pipes.  Nothing here waits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

static uint64_t fake_clock(void *data) { return *(const uint64_t *)data; }

#define MAX_REPORTS 64

struct host {
    uint64_t now_us;
    /* socket callback */
    int nreports;
    int fd[MAX_REPORTS], what[MAX_REPORTS];
    void *socketp[MAX_REPORTS];
    void *assign;               /* given to vl_socket_assign on the first report */
    int assign_rc;
    int fail_next;              /* the next IN/OUT report returns this */
    /* timer callback */
    int ntimer;
    int timer_ms[MAX_REPORTS];
};

static int on_socket(vl_loop *loop, int fd, int what, void *user, void *socketp)
{
    struct host *h = user;
    assert_true(h->nreports < MAX_REPORTS);
    h->fd[h->nreports] = fd;
    h->what[h->nreports] = what;
    h->socketp[h->nreports++] = socketp;
    if (!socketp && what != VL_POLL_REMOVE && h->assign)
        h->assign_rc = vl_socket_assign(loop, fd, h->assign);
    if (what != VL_POLL_REMOVE && h->fail_next) {
        int rc = h->fail_next;
        h->fail_next = 0;
        return rc;
    }
    return 0;
}

static void on_timer(vl_loop *loop, int ms, void *user)
{
    struct host *h = user;
    (void)loop;
    assert_true(h->ntimer < MAX_REPORTS);
    h->timer_ms[h->ntimer++] = ms;
}

static vl_loop *host_loop(struct host *h)
{
    memset(h, 0, sizeof(*h));
    h->now_us = 1000000;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    loop_set_clock(loop, fake_clock, &h->now_us);
    assert_int_equal(vl_loop_set_socket_cb(loop, on_socket, h), 0);
    assert_int_equal(vl_loop_set_timer_cb(loop, on_timer, h), 0);
    return loop;
}

struct io_log {
    int calls, events;
    vl_loop *loop;
    int nested_rc;
};

static void on_io(vl_loop *loop, int fd, int events, void *data)
{
    struct io_log *l = data;
    (void)fd;
    l->calls++;
    l->events = events;
    l->nested_rc = vl_socket_action(loop, fd, events); /* re-entry is refused */
}

static void pipe_pair(int p[2]) { assert_int_equal(pipe(p), 0); }

/* ------------------------------------------------------- socket callbacks */

static void socket_mode_gives_up_the_backend_fd_and_refuses_the_loop_runners(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    assert_int_equal(vl_loop_fd(loop), -1);
    assert_int_equal(vl_loop_run_once(loop, 0), -EINVAL);
    assert_int_equal(vl_loop_run(loop), -EINVAL);
    assert_int_equal(vl_loop_set_socket_cb(loop, NULL, NULL), 0);
    assert_true(vl_loop_fd(loop) >= 0);
    assert_int_equal(vl_socket_action(loop, 0, VL_POLL_IN), -EINVAL);
    assert_int_equal(vl_timeout_action(loop), -EINVAL);
    vl_loop_free(loop);
}

static void socket_cb_cannot_be_set_while_an_fd_is_watched(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    struct host h = {0};
    struct io_log l = {0};
    int p[2];
    pipe_pair(p);
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, on_io, &l), 0);
    assert_int_equal(vl_loop_set_socket_cb(loop, on_socket, &h), -EBUSY);
    vl_io_stop(loop, p[0]);
    assert_int_equal(vl_loop_set_socket_cb(loop, on_socket, &h), 0);
    vl_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void interest_changes_are_reported_once_each_with_the_assigned_pointer(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    struct io_log l = {0};
    int p[2], marker;
    pipe_pair(p);
    h.assign = &marker;
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, on_io, &l), 0);
    assert_int_equal(h.assign_rc, 0);
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, on_io, &l), 0);   /* same: no report */
    assert_int_equal(vl_io_modify(loop, p[0], VL_READ | VL_WRITE), 0);
    assert_int_equal(vl_io_modify(loop, p[0], VL_WRITE), 0);
    assert_int_equal(vl_io_stop(loop, p[0]), 0);
    assert_int_equal(vl_io_stop(loop, p[0]), 0);                        /* not watched: none */
    assert_int_equal(h.nreports, 4);
    int want_what[] = {VL_POLL_IN, VL_POLL_INOUT, VL_POLL_OUT, VL_POLL_REMOVE};
    void *want_ptr[] = {NULL, &marker, &marker, &marker};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h.fd[i], p[0]);
        assert_int_equal(h.what[i], want_what[i]);
        assert_ptr_equal(h.socketp[i], want_ptr[i]);
    }
    /* After REMOVE the number is a new socket: socketp starts over. */
    h.assign = NULL;
    assert_int_equal(vl_io_start(loop, p[0], VL_WRITE, on_io, &l), 0);
    assert_null(h.socketp[4]);
    assert_int_equal(vl_socket_assign(loop, p[1], &marker), -ENOENT);  /* never watched */
    vl_io_stop(loop, p[0]);
    vl_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void host_refusing_a_watch_fails_the_watch(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    struct io_log l = {0};
    int p[2];
    pipe_pair(p);
    h.fail_next = -ENOMEM;
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, on_io, &l), -ENOMEM);
    assert_int_equal(vl_io_stop(loop, p[0]), 0);
    assert_int_equal(h.nreports, 1); /* no REMOVE for a watch that never was */
    vl_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void socket_action_runs_the_watcher_and_refuses_reentry(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    struct io_log l = {0};
    int p[2];
    pipe_pair(p);
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, on_io, &l), 0);
    assert_int_equal(vl_socket_action(loop, p[0], VL_POLL_IN), 1);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.events, VL_READ);
    assert_int_equal(l.nested_rc, -EBUSY);
    /* Error or hang-up comes as both: the read watcher still fires, for read. */
    assert_int_equal(vl_socket_action(loop, p[0], VL_POLL_INOUT), 1);
    assert_int_equal(l.events, VL_READ);
    /* Only write readiness for a read watcher, and stale fds: nothing runs. */
    assert_int_equal(vl_socket_action(loop, p[0], VL_POLL_OUT), 0);
    assert_int_equal(vl_socket_action(loop, p[1], VL_POLL_IN), 0);
    assert_int_equal(vl_socket_action(loop, 100000, VL_POLL_IN), 0);
    assert_int_equal(l.calls, 2);
    vl_io_stop(loop, p[0]);
    vl_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

/* ---------------------------------------------------------- timer callback */

static void noop_timer(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    (void)t;
    (*(int *)data)++;
}

static void noop_defer(vl_loop *loop, void *data)
{
    (void)loop;
    (*(int *)data)++;
}

static void deadline_changes_are_reported_and_only_those(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    int fired = 0;
    vl_timer *a = vl_timer_new(loop, noop_timer, &fired);
    vl_timer *b = vl_timer_new(loop, noop_timer, &fired);
    assert_int_equal(h.ntimer, 0);               /* nothing pending when set */
    vl_timer_start(a, 100);
    vl_timer_start(b, 300);                      /* later than the nearest: no report */
    assert_int_equal(h.ntimer, 1);
    assert_int_equal(h.timer_ms[0], 100);
    vl_timer_stop(a);                            /* the nearest goes: the next one */
    assert_int_equal(h.ntimer, 2);
    assert_int_equal(h.timer_ms[1], 300);
    int ran = 0;
    assert_int_equal(vl_defer(loop, noop_defer, &ran), 0);   /* work now: 0 ms */
    assert_int_equal(h.ntimer, 3);
    assert_int_equal(h.timer_ms[2], 0);
    assert_int_equal(vl_timeout_action(loop), 1);
    assert_int_equal(ran, 1);
    assert_int_equal(h.ntimer, 4);
    assert_int_equal(h.timer_ms[3], 300);
    h.now_us += 300 * 1000;
    assert_int_equal(vl_timeout_action(loop), 1);
    assert_int_equal(fired, 1);
    assert_int_equal(h.ntimer, 5);
    assert_int_equal(h.timer_ms[4], -1);         /* nothing left: cancel */
    /* A host firing early still gets its one-shot timer back. */
    vl_timer_start(a, 50);
    h.now_us += 10 * 1000;
    assert_int_equal(vl_timeout_action(loop), 0);
    assert_int_equal(h.timer_ms[h.ntimer - 1], 40);
    vl_timer_free(a);
    vl_timer_free(b);
    vl_loop_free(loop);
}

/* Started outside any callback, a timer counts from now, not from the clock
 * cached when volley last ran (a host that was busy for 10 s). */
static void timer_started_from_host_code_counts_from_now(void **state)
{
    (void)state;
    struct host h;
    vl_loop *loop = host_loop(&h);
    int fired = 0;
    vl_timer *t = vl_timer_new(loop, noop_timer, &fired);
    h.now_us += 10 * 1000 * 1000;
    vl_timer_start(t, 1000);
    assert_int_equal(h.timer_ms[h.ntimer - 1], 1000);
    assert_int_equal(vl_timeout_action(loop), 0);
    assert_int_equal(fired, 0);
    vl_timer_free(t);
    vl_loop_free(loop);
}

/* -------------------------------------------------------------- time slice */

struct slow {
    uint64_t *now_us;
    int calls;
};

static void slow_timer(vl_loop *loop, vl_timer *t, void *data)
{
    struct slow *s = data;
    (void)loop;
    (void)t;
    *s->now_us += 3000; /* each callback "takes" 3 ms */
    s->calls++;
}

static void slow_defer(vl_loop *loop, void *data) { slow_timer(loop, NULL, data); }

static void slow_io(vl_loop *loop, int fd, int events, void *data)
{
    (void)fd;
    (void)events;
    slow_timer(loop, NULL, data);
}

static void time_slice_bounds_timers_deferred_and_fds_and_loses_nothing(void **state)
{
    (void)state;
    uint64_t now = 1000000;
    vl_loop *loop = vl_loop_new();
    loop_set_clock(loop, fake_clock, &now);
    vl_loop_set_time_slice(loop, 5);
    struct slow s = {&now, 0};
    vl_timer *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = vl_timer_new(loop, slow_timer, &s);
        vl_timer_start(t[i], 0);
    }
    /* 3 ms each, 5 ms slices: two, then the third. */
    assert_int_equal(vl_loop_run_once(loop, 0), 2);
    assert_int_equal(vl_loop_timeout_ms(loop), 0);
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(s.calls, 3);
    for (int i = 0; i < 3; i++)
        vl_defer(loop, slow_defer, &s);
    assert_int_equal(vl_loop_run_once(loop, 0), 2);
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(s.calls, 6);
    int p[3][2];
    for (int i = 0; i < 3; i++) {
        pipe_pair(p[i]);
        assert_int_equal(write(p[i][1], "x", 1), 1);
        vl_io_start(loop, p[i][0], VL_READ, slow_io, &s);
    }
    assert_int_equal(vl_loop_run_once(loop, 0), 2);
    assert_int_equal(vl_loop_timeout_ms(loop), 0); /* the rest of the batch waits */
    for (int i = 0; i < 3; i++)
        vl_io_stop(loop, p[i][0]);                 /* ... unless its watchers go */
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(s.calls, 8);
    for (int i = 0; i < 3; i++) {
        vl_timer_free(t[i]);
        close(p[i][0]);
        close(p[i][1]);
    }
    vl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(socket_mode_gives_up_the_backend_fd_and_refuses_the_loop_runners),
        cmocka_unit_test(socket_cb_cannot_be_set_while_an_fd_is_watched),
        cmocka_unit_test(interest_changes_are_reported_once_each_with_the_assigned_pointer),
        cmocka_unit_test(host_refusing_a_watch_fails_the_watch),
        cmocka_unit_test(socket_action_runs_the_watcher_and_refuses_reentry),
        cmocka_unit_test(deadline_changes_are_reported_and_only_those),
        cmocka_unit_test(timer_started_from_host_code_counts_from_now),
        cmocka_unit_test(time_slice_bounds_timers_deferred_and_fds_and_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
