/* test_loop.c: the reactor core.  Timers run against a fake clock
 * (loop_set_clock) so ordering and deadlines are exact; fd watchers use real
 * pipes and socketpairs; vl_loop_run uses the real clock with timers of a
 * few milliseconds.  No test waits longer than ~50 ms. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

/* ------------------------------------------------------------- fake clock */

static uint64_t fake_clock(void *data) { return *(const uint64_t *)data; }

/* A loop whose clock reads *now_us. */
static vl_loop *fake_loop(uint64_t *now_us)
{
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    loop_set_clock(loop, fake_clock, now_us);
    return loop;
}

/* ------------------------------------------------------------------ timers */

#define NTIMERS 500

struct fired_log {
    int order[NTIMERS * 4];
    uint64_t at_us[NTIMERS * 4];
    int n;
};

struct tracked_timer {
    vl_timer t;
    int id;
    struct fired_log *log;
};

static void log_fire(vl_loop *loop, vl_timer *t, void *data)
{
    struct tracked_timer *tt = data;
    (void)t;
    assert_true(tt->log->n < NTIMERS * 4);
    tt->log->at_us[tt->log->n] = loop_now_us(loop);
    tt->log->order[tt->log->n++] = tt->id;
}

static void timers_with_random_deadlines_fire_in_deadline_order(void **state)
{
    (void)state;
    uint64_t now = 1000000;
    vl_loop *loop = fake_loop(&now);
    static struct tracked_timer tt[NTIMERS];
    static uint64_t timeout_ms[NTIMERS];
    static int stopped[NTIMERS];
    struct fired_log log = {0};
    srand(20240601);
    for (int i = 0; i < NTIMERS; i++) {
        tt[i].id = i;
        tt[i].log = &log;
        timer_init(&tt[i].t, loop, log_fire, &tt[i]);
        timeout_ms[i] = (uint64_t)(rand() % 200); /* many equal deadlines */
        vl_timer_start(&tt[i].t, timeout_ms[i]);
        assert_true(vl_timer_active(&tt[i].t));
    }
    /* Stop a random fifth from the middle of the heap: heap_remove must
     * keep the rest in order. */
    int nstopped = 0;
    for (int i = 0; i < NTIMERS; i++) {
        stopped[i] = rand() % 5 == 0;
        if (stopped[i]) {
            vl_timer_stop(&tt[i].t);
            assert_false(vl_timer_active(&tt[i].t));
            nstopped++;
        }
    }
    /* Step the clock 1 ms at a time; each timer must fire in the first
     * iteration at or after its deadline, never before. */
    for (int ms = 0; ms <= 200; ms++) {
        now = 1000000 + (uint64_t)ms * 1000;
        vl_loop_run_once(loop, 0);
    }
    assert_int_equal(log.n, NTIMERS - nstopped);
    for (int k = 0; k < log.n; k++) {
        int id = log.order[k];
        if (stopped[id])
            fail_msg("stopped timer %d fired", id);
        if (log.at_us[k] != 1000000 + timeout_ms[id] * 1000)
            fail_msg("timer %d (timeout %llu ms) fired at +%llu us, expected +%llu us", id,
                     (unsigned long long)timeout_ms[id],
                     (unsigned long long)(log.at_us[k] - 1000000),
                     (unsigned long long)timeout_ms[id] * 1000);
        if (k > 0) {
            int prev = log.order[k - 1];
            if (timeout_ms[prev] > timeout_ms[id] ||
                (timeout_ms[prev] == timeout_ms[id] && prev > id))
                fail_msg("timer %d (%llu ms) fired after timer %d (%llu ms): out of order", id,
                         (unsigned long long)timeout_ms[id], prev,
                         (unsigned long long)timeout_ms[prev]);
        }
    }
    vl_loop_free(loop);
}

static void timers_expired_together_fire_in_one_iteration_by_deadline(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    static struct tracked_timer tt[NTIMERS];
    static uint64_t timeout_ms[NTIMERS];
    struct fired_log log = {0};
    srand(7);
    for (int i = 0; i < NTIMERS; i++) {
        tt[i].id = i;
        tt[i].log = &log;
        timer_init(&tt[i].t, loop, log_fire, &tt[i]);
        timeout_ms[i] = (uint64_t)(rand() % 100000);
        vl_timer_start(&tt[i].t, timeout_ms[i]);
    }
    now = 100000ull * 1000;
    int ran = vl_loop_run_once(loop, 0);
    assert_int_equal(ran, NTIMERS);
    assert_int_equal(log.n, NTIMERS);
    for (int k = 1; k < log.n; k++) {
        int a = log.order[k - 1], b = log.order[k];
        if (timeout_ms[a] > timeout_ms[b] || (timeout_ms[a] == timeout_ms[b] && a > b))
            fail_msg("timer %d (%llu ms) fired before timer %d (%llu ms)", a,
                     (unsigned long long)timeout_ms[a], b, (unsigned long long)timeout_ms[b]);
    }
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_loop_free(loop);
}

static void timers_with_equal_deadlines_fire_in_arm_order(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct tracked_timer tt[8];
    struct fired_log log = {0};
    for (int i = 0; i < 8; i++) {
        tt[i].id = i;
        tt[i].log = &log;
        timer_init(&tt[i].t, loop, log_fire, &tt[i]);
    }
    /* Arm in the order 5 3 7 0 6 1 4 2, all for the same instant. */
    static const int arm[8] = {5, 3, 7, 0, 6, 1, 4, 2};
    for (int i = 0; i < 8; i++)
        vl_timer_start(&tt[arm[i]].t, 10);
    /* Re-arming moves a timer to the back of its deadline's queue. */
    vl_timer_start(&tt[3].t, 10);
    static const int want[8] = {5, 7, 0, 6, 1, 4, 2, 3};
    now = 10000;
    vl_loop_run_once(loop, 0);
    assert_int_equal(log.n, 8);
    for (int i = 0; i < 8; i++)
        if (log.order[i] != want[i])
            fail_msg("position %d: expected timer %d, got timer %d", i, want[i], log.order[i]);
    vl_loop_free(loop);
}

static void timer_does_not_fire_before_its_deadline(void **state)
{
    (void)state;
    uint64_t now = 5000;
    vl_loop *loop = fake_loop(&now);
    struct fired_log log = {0};
    struct tracked_timer tt = {.id = 1, .log = &log};
    timer_init(&tt.t, loop, log_fire, &tt);
    vl_timer_start(&tt.t, 3);
    now += 2999;
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 0);
    assert_true(vl_timer_active(&tt.t));
    now += 1;
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(log.n, 1);
    assert_false(vl_timer_active(&tt.t));
    vl_loop_free(loop);
}

/* Callbacks that act on their own timer. */
struct self_ctx {
    int fired;
    uint64_t rearm_ms;  /* re-arm with this timeout ... */
    int rearm_times;    /* ... this many times */
    int stop, free_it;
    vl_timer *other;    /* stop this one too, if set */
    int free_other;
};

static void self_cb(vl_loop *loop, vl_timer *t, void *data)
{
    struct self_ctx *c = data;
    (void)loop;
    c->fired++;
    if (c->other) {
        if (c->free_other)
            vl_timer_free(c->other);
        else
            vl_timer_stop(c->other);
        c->other = NULL;
    }
    if (c->rearm_times > 0) {
        c->rearm_times--;
        vl_timer_start(t, c->rearm_ms);
    }
    if (c->stop)
        vl_timer_stop(t);
    if (c->free_it)
        vl_timer_free(t);
}

static void timer_stopped_inside_its_own_callback_stays_stopped(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {.stop = 1};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 1);
    now = 1000;
    vl_loop_run_once(loop, 0);
    assert_int_equal(c.fired, 1);
    assert_false(vl_timer_active(t));
    now = 1000000;
    vl_loop_run_once(loop, 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void timer_restarted_inside_its_own_callback_fires_after_the_new_timeout(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {.rearm_ms = 10, .rearm_times = 2};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 5);
    uint64_t fire_at_ms[] = {5, 15, 25};
    for (int i = 0; i < 3; i++) {
        now = (fire_at_ms[i] - 1) * 1000;
        vl_loop_run_once(loop, 0);
        if (c.fired != i)
            fail_msg("at %llu ms: expected %d firings, got %d",
                     (unsigned long long)fire_at_ms[i] - 1, i, c.fired);
        now = fire_at_ms[i] * 1000;
        vl_loop_run_once(loop, 0);
        if (c.fired != i + 1)
            fail_msg("at %llu ms: expected %d firings, got %d",
                     (unsigned long long)fire_at_ms[i], i + 1, c.fired);
        assert_int_equal(vl_timer_active(t), i < 2);
    }
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void timer_freed_inside_its_own_callback_is_gone_from_the_loop(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {.free_it = 1};
    struct self_ctx keep = {0};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer *later = vl_timer_new(loop, self_cb, &keep);
    vl_timer_start(t, 1);
    vl_timer_start(later, 50);
    now = 1000;
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(c.fired, 1);
    /* The heap holds only the other timer (run under make asan for the
     * use-after-free half of this test). */
    assert_int_equal(vl_loop_timeout_ms(loop), 49);
    now = 50000;
    vl_loop_run_once(loop, 0);
    assert_int_equal(keep.fired, 1);
    assert_int_equal(c.fired, 1);
    vl_timer_free(later);
    vl_loop_free(loop);
}

static void timer_rearmed_and_then_freed_in_its_callback_never_fires_again(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {.rearm_ms = 0, .rearm_times = 1, .free_it = 1};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 1);
    now = 1000;
    vl_loop_run_once(loop, 0);
    now = 2000;
    vl_loop_run_once(loop, 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_loop_free(loop);
}

static void timer_stopped_by_an_earlier_timer_in_the_same_batch_does_not_fire(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx second = {0};
    vl_timer *b = vl_timer_new(loop, self_cb, &second);
    struct self_ctx first = {.other = b};
    vl_timer *a = vl_timer_new(loop, self_cb, &first);
    vl_timer_start(a, 1);
    vl_timer_start(b, 2);
    now = 5000; /* both expired */
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(first.fired, 1);
    assert_int_equal(second.fired, 0);
    assert_false(vl_timer_active(b));
    vl_timer_free(a);
    vl_timer_free(b);
    vl_loop_free(loop);
}

static void timer_freed_by_an_earlier_timer_in_the_same_batch_does_not_fire(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx second = {0};
    vl_timer *b = vl_timer_new(loop, self_cb, &second);
    struct self_ctx first = {.other = b, .free_other = 1};
    vl_timer *a = vl_timer_new(loop, self_cb, &first);
    vl_timer_start(a, 1);
    vl_timer_start(b, 1);
    now = 5000;
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(first.fired, 1);
    assert_int_equal(second.fired, 0);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_timer_free(a);
    vl_loop_free(loop);
}

/* A timer that re-arms itself with timeout 0 is due again at once (the clock
 * is cached for the iteration).  It must wait for a later pass, not spin
 * inside one run_timers: the guard stops it after 100 firings so that a
 * failing build fails this test instead of hanging. */
static void timer_rearmed_with_zero_timeout_in_its_callback_does_not_spin(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {.rearm_ms = 0, .rearm_times = 100};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 0);
    vl_loop_run_once(loop, 0);
    /* At most one firing per timer phase (before and after the wait). */
    if (c.fired > 2)
        fail_msg("one iteration fired the self-re-arming timer %d times (expected at most 2)",
                 c.fired);
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void timer_free_of_null_and_stop_of_a_stopped_timer_are_harmless(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    struct self_ctx c = {0};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    assert_false(vl_timer_active(t));
    vl_timer_stop(t);
    vl_timer_stop(t);
    assert_false(vl_timer_active(t));
    vl_timer_free(NULL);
    vl_timer_free(t);
    vl_loop_free(loop);
}

/* ---------------------------------------------------------------- deferred */

struct defer_log {
    int order[512];
    int n;
    vl_loop *loop;
    int requeue;  /* each callback queues id + 1000 this many times */
};

struct defer_item {
    struct defer_log *log;
    int id;
};

static struct defer_item items[1024];

static void defer_cb(vl_loop *loop, void *data)
{
    struct defer_item *it = data;
    assert_true(it->log->n < 512);
    it->log->order[it->log->n++] = it->id;
    if (it->log->requeue && it->id < 1000) {
        struct defer_item *again = &items[it->id + 512];
        again->log = it->log;
        again->id = it->id + 1000;
        assert_int_equal(vl_defer(loop, defer_cb, again), 0);
    }
}

static void deferred_callbacks_run_on_the_next_iteration_in_fifo_order(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct defer_log log = {0};
    for (int i = 0; i < 5; i++) {
        items[i] = (struct defer_item){&log, i};
        assert_int_equal(vl_defer(loop, defer_cb, &items[i]), 0);
    }
    assert_int_equal(log.n, 0); /* never inside vl_defer */
    assert_int_equal(vl_loop_run_once(loop, 0), 5);
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.order[i], i);
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 5);
    vl_loop_free(loop);
}

static void callbacks_deferred_from_a_deferred_callback_wait_for_the_next_iteration(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct defer_log log = {.requeue = 1};
    for (int i = 0; i < 3; i++) {
        items[i] = (struct defer_item){&log, i};
        assert_int_equal(vl_defer(loop, defer_cb, &items[i]), 0);
    }
    assert_int_equal(vl_loop_run_once(loop, 0), 3);
    assert_int_equal(log.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(log.order[i], i);
    assert_int_equal(vl_loop_timeout_ms(loop), 0); /* work is pending */
    assert_int_equal(vl_loop_run_once(loop, 0), 3);
    assert_int_equal(log.n, 6);
    for (int i = 0; i < 3; i++)
        assert_int_equal(log.order[3 + i], 1000 + i);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_loop_free(loop);
}

static void deferred_queue_keeps_fifo_order_when_it_grows_while_wrapped(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct defer_log log = {0};
    /* Advance the ring's head, then queue past its first capacity so the
     * growth copies a wrapped ring. */
    for (int i = 0; i < 40; i++) {
        items[i] = (struct defer_item){&log, i};
        assert_int_equal(vl_defer(loop, defer_cb, &items[i]), 0);
    }
    vl_loop_run_once(loop, 0);
    log.n = 0;
    for (int i = 0; i < 300; i++) {
        items[i] = (struct defer_item){&log, i};
        assert_int_equal(vl_defer(loop, defer_cb, &items[i]), 0);
    }
    assert_int_equal(vl_loop_run_once(loop, 0), 300);
    assert_int_equal(log.n, 300);
    for (int i = 0; i < 300; i++)
        if (log.order[i] != i)
            fail_msg("position %d: expected deferred #%d, got #%d", i, i, log.order[i]);
    vl_loop_free(loop);
}

static int deferred_seen_by_timer;

static void count_deferred_cb(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    (void)t;
    deferred_seen_by_timer = ((struct defer_log *)data)->n;
}

static void expired_timers_run_before_deferred_callbacks(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct defer_log log = {0};
    vl_timer t;
    timer_init(&t, loop, count_deferred_cb, &log);
    vl_timer_start(&t, 0);
    items[0] = (struct defer_item){&log, 0};
    vl_defer(loop, defer_cb, &items[0]);
    deferred_seen_by_timer = -1;
    assert_int_equal(vl_loop_run_once(loop, 0), 2);
    if (deferred_seen_by_timer != 0)
        fail_msg("the timer saw %d deferred callbacks already run; expected 0",
                 deferred_seen_by_timer);
    assert_int_equal(log.n, 1);
    vl_loop_free(loop);
}

/* ------------------------------------------------------- vl_loop_timeout_ms */

static void loop_timeout_is_minus_one_with_nothing_armed(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    struct self_ctx c = {0};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 10);
    vl_timer_stop(t);
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void loop_timeout_is_zero_while_a_deferred_callback_is_pending(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {0};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 1000);
    struct defer_log log = {0};
    items[0] = (struct defer_item){&log, 0};
    vl_defer(loop, defer_cb, &items[0]);
    assert_int_equal(vl_loop_timeout_ms(loop), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(vl_loop_timeout_ms(loop), 1000);
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void loop_timeout_rounds_up_to_the_next_millisecond(void **state)
{
    (void)state;
    uint64_t now = 1000000;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {0};
    vl_timer *t = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(t, 5); /* deadline 1005000 us */
    assert_int_equal(vl_loop_timeout_ms(loop), 5);
    now = 1001500; /* 3.5 ms left */
    assert_int_equal(vl_loop_timeout_ms(loop), 4);
    now = 1004999; /* 1 us left: still a whole ms, never 0 early */
    assert_int_equal(vl_loop_timeout_ms(loop), 1);
    now = 1005000;
    assert_int_equal(vl_loop_timeout_ms(loop), 0);
    now = 2000000; /* overdue */
    assert_int_equal(vl_loop_timeout_ms(loop), 0);
    /* A sub-millisecond timer rounds up to 1, not down to 0. */
    timer_start_us(t, 1);
    assert_int_equal(vl_loop_timeout_ms(loop), 1);
    timer_start_us(t, 1500);
    assert_int_equal(vl_loop_timeout_ms(loop), 2);
    vl_timer_free(t);
    vl_loop_free(loop);
}

static void loop_timeout_follows_the_earliest_timer(void **state)
{
    (void)state;
    uint64_t now = 0;
    vl_loop *loop = fake_loop(&now);
    struct self_ctx c = {0};
    vl_timer *a = vl_timer_new(loop, self_cb, &c);
    vl_timer *b = vl_timer_new(loop, self_cb, &c);
    vl_timer_start(a, 300);
    vl_timer_start(b, 20);
    assert_int_equal(vl_loop_timeout_ms(loop), 20);
    vl_timer_stop(b);
    assert_int_equal(vl_loop_timeout_ms(loop), 300);
    vl_timer_free(a);
    vl_timer_free(b);
    vl_loop_free(loop);
}

/* ------------------------------------------------------------- fd watchers */

struct io_log {
    int calls;
    int fd[8];
    int events[8];
    vl_loop *loop;
    int stop_fd;     /* vl_io_stop this fd from the callback, if >= 0 */
    int stop_self;
    int drain;       /* read what is readable */
};

static void io_cb(vl_loop *loop, int fd, int events, void *data)
{
    struct io_log *l = data;
    if (l->calls < 8) {
        l->fd[l->calls] = fd;
        l->events[l->calls] = events;
    }
    l->calls++;
    if (l->stop_fd >= 0)
        assert_int_equal(vl_io_stop(loop, l->stop_fd), 0);
    if (l->stop_self)
        assert_int_equal(vl_io_stop(loop, fd), 0);
    if (l->drain && (events & VL_READ)) {
        char buf[64];
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    }
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void pipe_with_data_is_reported_readable(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct io_log l = {.stop_fd = -1};
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, io_cb, &l), 0);
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(l.calls, 0); /* empty pipe: not readable */
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.fd[0], p[0]);
    assert_int_equal(l.events[0], VL_READ);
    vl_io_stop(loop, p[0]);
    close(p[0]);
    close(p[1]);
    vl_loop_free(loop);
}

static void pipe_with_room_is_reported_writable(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct io_log l = {.stop_fd = -1};
    assert_int_equal(vl_io_start(loop, p[1], VL_WRITE, io_cb, &l), 0);
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(l.fd[0], p[1]);
    assert_int_equal(l.events[0], VL_WRITE);
    /* Fill the pipe: no longer writable. */
    char buf[4096] = {0};
    while (write(p[1], buf, sizeof(buf)) > 0)
        ;
    l.calls = 0;
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(l.calls, 0);
    vl_io_stop(loop, p[1]);
    close(p[0]);
    close(p[1]);
    vl_loop_free(loop);
}

static void io_modify_changes_which_readiness_is_reported(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct io_log l = {.stop_fd = -1};
    assert_int_equal(vl_io_start(loop, sv[0], VL_READ, io_cb, &l), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(l.calls, 0); /* writable, but only reading is watched */

    assert_int_equal(vl_io_modify(loop, sv[0], VL_WRITE), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.events[0], VL_WRITE);

    assert_int_equal(write(sv[1], "ab", 2), 2);
    assert_int_equal(vl_io_modify(loop, sv[0], VL_READ | VL_WRITE), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(l.calls, 2);
    assert_int_equal(l.events[1], VL_READ | VL_WRITE);

    assert_int_equal(vl_io_modify(loop, sv[0], VL_READ), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(l.calls, 3);
    assert_int_equal(l.events[2], VL_READ);

    /* Modifying to 0 stops the watch; modifying an unwatched fd is -ENOENT. */
    assert_int_equal(vl_io_modify(loop, sv[0], 0), 0);
    vl_loop_run_once(loop, 0);
    assert_int_equal(l.calls, 3);
    assert_int_equal(vl_io_modify(loop, sv[0], VL_READ), -ENOENT);
    assert_int_equal(vl_io_modify(loop, 100000, VL_READ), -ENOENT);
    close(sv[0]);
    close(sv[1]);
    vl_loop_free(loop);
}

static void io_start_with_zero_events_stops_the_watch(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct io_log l = {.stop_fd = -1};
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, io_cb, &l), 0);
    assert_int_equal(vl_io_start(loop, p[0], 0, io_cb, &l), 0);
    assert_int_equal(vl_loop_run_once(loop, 0), 0);
    assert_int_equal(l.calls, 0);
    assert_int_equal(vl_io_start(loop, -1, VL_READ, io_cb, &l), -EBADF);
    close(p[0]);
    close(p[1]);
    vl_loop_free(loop);
}

static void fd_stopped_by_another_fds_callback_in_the_same_batch_gets_no_stale_event(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    /* Both readable before the wait, so one epoll_wait returns both; the
     * first callback to run stops the other fd. */
    struct io_log la = {.stop_fd = b[0]}, lb = {.stop_fd = a[0]};
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    assert_int_equal(vl_io_start(loop, a[0], VL_READ, io_cb, &la), 0);
    assert_int_equal(vl_io_start(loop, b[0], VL_READ, io_cb, &lb), 0);
    int ran = vl_loop_run_once(loop, 0);
    if (la.calls + lb.calls != 1)
        fail_msg("expected exactly one callback (the other fd was stopped), got a:%d b:%d",
                 la.calls, lb.calls);
    assert_int_equal(ran, 1);
    vl_io_stop(loop, a[0]);
    vl_io_stop(loop, b[0]);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    vl_loop_free(loop);
}

static void hang_up_wakes_a_read_watcher(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct io_log l = {.stop_fd = -1};
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, io_cb, &l), 0);
    close(p[1]);
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(l.calls, 1);
    assert_true(l.events[0] & VL_READ);
    vl_io_stop(loop, p[0]);
    close(p[0]);
    vl_loop_free(loop);
}

static void loop_fd_is_pollable_readable_when_a_watched_pipe_has_data(void **state)
{
    (void)state;
#if defined(VL_USE_KQUEUE) && defined(__linux__)
    /* libkqueue's Linux "kqueue fd" is the write end of a pipe, not a
     * pollable queue (a real kqueue fd is, on the BSDs and macOS). */
    skip();
#endif
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct io_log l = {.stop_fd = -1, .drain = 1};
    assert_int_equal(vl_io_start(loop, p[0], VL_READ, io_cb, &l), 0);
    struct pollfd pfd = {.fd = vl_loop_fd(loop), .events = POLLIN};
    assert_true(pfd.fd >= 0);
    /* The embedding protocol: ask for the timeout, then poll the fd (kqueue
     * applies batched interest changes in vl_loop_timeout_ms). */
    assert_int_equal(vl_loop_timeout_ms(loop), -1);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    assert_true(pfd.revents & POLLIN);
    /* The foreign loop then runs one non-blocking iteration. */
    assert_int_equal(vl_loop_run_once(loop, 0), 1);
    assert_int_equal(l.calls, 1);
    pfd.revents = 0;
    assert_int_equal(poll(&pfd, 1, 0), 0);
    vl_io_stop(loop, p[0]);
    close(p[0]);
    close(p[1]);
    vl_loop_free(loop);
}

/* ----------------------------------------------------------- vl_loop_run */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct run_ctx {
    int timer_fired, deferred_ran, io_ran;
    int p[2];
    vl_timer *t;
};

static void run_io_cb(vl_loop *loop, int fd, int events, void *data)
{
    struct run_ctx *c = data;
    (void)events;
    char buf[8];
    assert_int_equal(read(fd, buf, sizeof(buf)), 1);
    c->io_ran++;
    vl_io_stop(loop, fd);
}

static void run_defer_cb(vl_loop *loop, void *data)
{
    struct run_ctx *c = data;
    (void)loop;
    c->deferred_ran++;
    assert_int_equal(write(c->p[1], "z", 1), 1);
}

static void run_timer_cb(vl_loop *loop, vl_timer *t, void *data)
{
    struct run_ctx *c = data;
    (void)t;
    c->timer_fired++;
    vl_defer(loop, run_defer_cb, c);
}

static void loop_run_returns_when_nothing_is_left(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    /* An empty loop returns at once. */
    assert_int_equal(vl_loop_run(loop), 0);
    /* timer -> deferred -> write -> io callback that stops its watch. */
    struct run_ctx c = {0};
    make_pipe(c.p);
    c.t = vl_timer_new(loop, run_timer_cb, &c);
    vl_timer_start(c.t, 5);
    assert_int_equal(vl_io_start(loop, c.p[0], VL_READ, run_io_cb, &c), 0);
    uint64_t t0 = wall_ms();
    assert_int_equal(vl_loop_run(loop), 0);
    uint64_t took = wall_ms() - t0;
    assert_int_equal(c.timer_fired, 1);
    assert_int_equal(c.deferred_ran, 1);
    assert_int_equal(c.io_ran, 1);
    if (took > 1000)
        fail_msg("vl_loop_run took %llu ms; expected about 5 (the timer)",
                 (unsigned long long)took);
    vl_timer_free(c.t);
    close(c.p[0]);
    close(c.p[1]);
    vl_loop_free(loop);
}

static void stop_cb(vl_loop *loop, vl_timer *t, void *data)
{
    (void)t;
    (*(int *)data)++;
    vl_loop_stop(loop);
}

static void loop_stop_makes_run_return_with_work_left(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    int stops = 0;
    struct self_ctx far_ctx = {0};
    vl_timer *stopper = vl_timer_new(loop, stop_cb, &stops);
    vl_timer *far = vl_timer_new(loop, self_cb, &far_ctx);
    vl_timer_start(stopper, 2);
    vl_timer_start(far, 60000);
    uint64_t t0 = wall_ms();
    assert_int_equal(vl_loop_run(loop), 0);
    uint64_t took = wall_ms() - t0;
    assert_int_equal(stops, 1);
    assert_int_equal(far_ctx.fired, 0);
    assert_true(vl_timer_active(far));
    if (took > 1000)
        fail_msg("vl_loop_run returned after %llu ms; expected soon after vl_loop_stop at 2 ms",
                 (unsigned long long)took);
    /* The loop runs again after a stop. */
    vl_timer_start(stopper, 1);
    assert_int_equal(vl_loop_run(loop), 0);
    assert_int_equal(stops, 2);
    vl_timer_free(stopper);
    vl_timer_free(far);
    vl_loop_free(loop);
}

static void run_once_with_nothing_to_wait_for_returns_at_once(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    uint64_t t0 = wall_ms();
    assert_int_equal(vl_loop_run_once(loop, -1), 0);
    assert_true(wall_ms() - t0 < 1000);
    vl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_with_random_deadlines_fire_in_deadline_order),
        cmocka_unit_test(timers_expired_together_fire_in_one_iteration_by_deadline),
        cmocka_unit_test(timers_with_equal_deadlines_fire_in_arm_order),
        cmocka_unit_test(timer_does_not_fire_before_its_deadline),
        cmocka_unit_test(timer_stopped_inside_its_own_callback_stays_stopped),
        cmocka_unit_test(timer_restarted_inside_its_own_callback_fires_after_the_new_timeout),
        cmocka_unit_test(timer_freed_inside_its_own_callback_is_gone_from_the_loop),
        cmocka_unit_test(timer_rearmed_and_then_freed_in_its_callback_never_fires_again),
        cmocka_unit_test(timer_stopped_by_an_earlier_timer_in_the_same_batch_does_not_fire),
        cmocka_unit_test(timer_freed_by_an_earlier_timer_in_the_same_batch_does_not_fire),
        cmocka_unit_test(timer_rearmed_with_zero_timeout_in_its_callback_does_not_spin),
        cmocka_unit_test(timer_free_of_null_and_stop_of_a_stopped_timer_are_harmless),
        cmocka_unit_test(deferred_callbacks_run_on_the_next_iteration_in_fifo_order),
        cmocka_unit_test(callbacks_deferred_from_a_deferred_callback_wait_for_the_next_iteration),
        cmocka_unit_test(deferred_queue_keeps_fifo_order_when_it_grows_while_wrapped),
        cmocka_unit_test(expired_timers_run_before_deferred_callbacks),
        cmocka_unit_test(loop_timeout_is_minus_one_with_nothing_armed),
        cmocka_unit_test(loop_timeout_is_zero_while_a_deferred_callback_is_pending),
        cmocka_unit_test(loop_timeout_rounds_up_to_the_next_millisecond),
        cmocka_unit_test(loop_timeout_follows_the_earliest_timer),
        cmocka_unit_test(pipe_with_data_is_reported_readable),
        cmocka_unit_test(pipe_with_room_is_reported_writable),
        cmocka_unit_test(io_modify_changes_which_readiness_is_reported),
        cmocka_unit_test(io_start_with_zero_events_stops_the_watch),
        cmocka_unit_test(fd_stopped_by_another_fds_callback_in_the_same_batch_gets_no_stale_event),
        cmocka_unit_test(hang_up_wakes_a_read_watcher),
        cmocka_unit_test(loop_fd_is_pollable_readable_when_a_watched_pipe_has_data),
        cmocka_unit_test(loop_run_returns_when_nothing_is_left),
        cmocka_unit_test(loop_stop_makes_run_return_with_work_left),
        cmocka_unit_test(run_once_with_nothing_to_wait_for_returns_at_once),
    };
    alarm(60); /* a hung test must not hang the suite */
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
