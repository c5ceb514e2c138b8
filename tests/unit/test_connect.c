/* test_connect.c: the happy-eyeballs connector (RFC 8305) with a fake
 * clock.  Real loopback sockets do the connecting; the loop's time moves
 * only when a test says so, so "the next attempt starts after 250 ms" and
 * "a failure starts the next attempt at once" are checked exactly.
 * An attempt that never completes is a connect to a listener whose accept
 * queue is full: Linux drops the SYN and the attempt stays in progress. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn.h"
#include "loop.h"

static uint64_t fake_us;

static uint64_t fake_clock(void *data)
{
    (void)data;
    return fake_us;
}

struct outcome {
    int calls, fd, err;
    char msg[700], peer[64];
    int nattempts;
    uint64_t attempt_us[CONNECT_MAX_ADDRS]; /* fake time each attempt started */
    char trace[32][200];
    int ntrace;
};

static void on_done(void *data, int fd, int err, const char *msg, const char *peer)
{
    struct outcome *o = data;
    o->calls++;
    o->fd = fd;
    o->err = err;
    vl_fmt(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
    vl_fmt(o->peer, sizeof(o->peer), "%s", peer ? peer : "");
}

static void on_trace(void *data, const char *line)
{
    struct outcome *o = data;
    if (strncmp(line, "connect attempt ", 16) == 0 && o->nattempts < CONNECT_MAX_ADDRS)
        o->attempt_us[o->nattempts++] = fake_us;
    if (o->ntrace < (int)ARRAY_LEN(o->trace))
        vl_fmt(o->trace[o->ntrace++], sizeof(o->trace[0]), "%s", line);
}

static double real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Let real I/O happen for up to real_ms, or until the connector called
 * back; the fake clock stands still meanwhile. */
static void pump(vl_loop *loop, struct outcome *o, int real_ms)
{
    double end = real_s() + real_ms / 1000.0;
    while (!o->calls && real_s() < end)
        vl_loop_run_once(loop, 5);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A socket bound to a loopback port: listening (backlog >= 0) or, with
 * backlog < 0, bound only, so connecting to it is refused. */
static int loopback_socket(int family, int backlog, union vl_sockaddr *addr)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = family == AF_INET6 ? sizeof(addr->in6) : sizeof(addr->in4);
    assert_true(fd >= 0);
    memset(addr, 0, sizeof(*addr));
    if (family == AF_INET6) {
        addr->in6.sin6_family = AF_INET6;
        addr->in6.sin6_addr = in6addr_loopback;
    } else {
        addr->in4.sin_family = AF_INET;
        addr->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    assert_int_equal(bind(fd, &addr->sa, len), 0);
    assert_int_equal(getsockname(fd, &addr->sa, &len), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

/* A listener nobody accepts from, its queue filled: connects to it hang. */
struct stalled {
    int lfd, filler[3];
    union vl_sockaddr addr;
};

static void stalled_open(struct stalled *s)
{
    s->lfd = loopback_socket(AF_INET, 0, &s->addr);
    for (int i = 0; i < 3; i++) {
        s->filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(s->filler[i], &s->addr.sa, sizeof(s->addr.in4));
    }
    usleep(50000); /* let the first filler complete its handshake */
}

static void stalled_close(struct stalled *s)
{
    for (int i = 0; i < 3; i++)
        close(s->filler[i]);
    close(s->lfd);
}

static vl_loop *fake_loop(void)
{
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    fake_us = 1000000000u;
    loop_set_clock(loop, fake_clock, NULL);
    return loop;
}

static void start(vl_loop *loop, struct outcome *o, const union vl_sockaddr *a, int n)
{
    struct addr_list l = {.n = n};
    struct connector *k;
    memset(o, 0, sizeof(*o));
    o->fd = -1;
    for (int i = 0; i < n; i++)
        l.addr[i] = a[i];
    assert_int_equal(connector_start(loop, &l, on_done, on_trace, o, &k), 0);
}

static void fmt(const union vl_sockaddr *a, char *buf)
{
    sockaddr_format(&a->sa, buf, 64);
}

/* ---------------------------------------------------------------- tests */

static void refused_first_address_moves_on_without_waiting(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    union vl_sockaddr a[2];
    int refused = loopback_socket(AF_INET6, -1, &a[0]);
    int listener = loopback_socket(AF_INET, 16, &a[1]);
    struct outcome o;
    char want[64];
    uint64_t t0 = fake_us;
    start(loop, &o, a, 2);
    pump(loop, &o, 2000);
    assert_int_equal(o.calls, 1);
    assert_true(o.fd >= 0);
    fmt(&a[1], want);
    assert_string_equal(o.peer, want);
    /* Both attempts ran at the fake start time: no 250 ms wait after a refusal. */
    assert_int_equal(o.nattempts, 2);
    assert_int_equal(o.attempt_us[1], t0);
    assert_int_equal(fake_us, t0);
    close(o.fd);
    close(refused);
    close(listener);
    vl_loop_free(loop);
}

static void stalled_attempt_gets_the_next_one_at_exactly_250ms(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    struct stalled s;
    union vl_sockaddr a[2];
    stalled_open(&s);
    a[0] = s.addr;
    int listener = loopback_socket(AF_INET, 16, &a[1]);
    struct outcome o;
    char want[64];
    uint64_t t0 = fake_us;
    int fds_before = open_fds();
    start(loop, &o, a, 2);
    pump(loop, &o, 300); /* real time passes; fake time does not */
    assert_int_equal(o.calls, 0);
    assert_int_equal(o.nattempts, 1);
    fake_us = t0 + CONNECT_ATTEMPT_DELAY_US - 1;
    pump(loop, &o, 50);
    assert_int_equal(o.nattempts, 1);
    fake_us = t0 + CONNECT_ATTEMPT_DELAY_US;
    pump(loop, &o, 2000);
    assert_int_equal(o.nattempts, 2);
    assert_int_equal(o.attempt_us[1], t0 + CONNECT_ATTEMPT_DELAY_US);
    assert_int_equal(o.calls, 1);
    fmt(&a[1], want);
    assert_string_equal(o.peer, want);
    /* The stalled loser is closed: only the winner is left open. */
    assert_int_equal(open_fds(), fds_before + 1);
    close(o.fd);
    close(listener);
    stalled_close(&s);
    vl_loop_free(loop);
}

static void failure_after_a_stall_starts_the_third_attempt_at_once(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    struct stalled s;
    union vl_sockaddr a[3];
    stalled_open(&s);
    a[0] = s.addr;
    int refused = loopback_socket(AF_INET6, -1, &a[1]);
    int listener = loopback_socket(AF_INET, 16, &a[2]);
    struct outcome o;
    uint64_t t0 = fake_us;
    start(loop, &o, a, 3);
    pump(loop, &o, 100);
    assert_int_equal(o.nattempts, 1);
    fake_us = t0 + CONNECT_ATTEMPT_DELAY_US;
    pump(loop, &o, 2000);
    assert_int_equal(o.calls, 1);
    assert_true(o.fd >= 0);
    assert_int_equal(o.nattempts, 3);
    assert_int_equal(o.attempt_us[1], t0 + CONNECT_ATTEMPT_DELAY_US);
    assert_int_equal(o.attempt_us[2], t0 + CONNECT_ATTEMPT_DELAY_US); /* not 500 ms */
    close(o.fd);
    close(refused);
    close(listener);
    stalled_close(&s);
    vl_loop_free(loop);
}

static void two_stalls_space_three_attempts_250ms_apart(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    struct stalled s1, s2;
    union vl_sockaddr a[3];
    stalled_open(&s1);
    stalled_open(&s2);
    a[0] = s1.addr;
    a[1] = s2.addr;
    int listener = loopback_socket(AF_INET, 16, &a[2]);
    struct outcome o;
    uint64_t t0 = fake_us;
    start(loop, &o, a, 3);
    for (int step = 1; step <= 2; step++) {
        pump(loop, &o, 100);
        assert_int_equal(o.nattempts, step);
        fake_us = t0 + (uint64_t)step * CONNECT_ATTEMPT_DELAY_US;
    }
    pump(loop, &o, 2000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.nattempts, 3);
    assert_int_equal(o.attempt_us[2], t0 + 2 * CONNECT_ATTEMPT_DELAY_US);
    close(o.fd);
    close(listener);
    stalled_close(&s1);
    stalled_close(&s2);
    vl_loop_free(loop);
}

static void all_refused_names_every_address_once(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    union vl_sockaddr a[2];
    int r4 = loopback_socket(AF_INET, -1, &a[0]);
    int r6 = loopback_socket(AF_INET6, -1, &a[1]);
    struct outcome o;
    char p4[64], p6[64], want[200];
    uint64_t t0 = fake_us;
    start(loop, &o, a, 2);
    pump(loop, &o, 2000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.fd, -1);
    assert_int_equal(o.err, -VL_ECONNECT);
    fmt(&a[0], p4);
    fmt(&a[1], p6);
    vl_fmt(want, sizeof(want), "connect: connection refused (%s, %s)", p4, p6);
    assert_string_equal(o.msg, want);
    assert_int_equal(fake_us, t0);
    pump(loop, &o, 50);
    assert_int_equal(o.calls, 1);
    close(r4);
    close(r6);
    vl_loop_free(loop);
}

static void out_of_fds_is_a_limit_error(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    union vl_sockaddr a[2];
    int listener = loopback_socket(AF_INET, 16, &a[0]);
    a[1] = a[0];
    struct outcome o;
    struct rlimit old, low;
    start(loop, &o, a, 2);
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    int probe = dup(0); /* the lowest free fd number: make it the limit */
    close(probe);
    low.rlim_cur = (rlim_t)probe;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pump(loop, &o, 1000);
    setrlimit(RLIMIT_NOFILE, &old);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.err, -VL_ELIMIT);
    assert_non_null(strstr(o.msg, "connect: too many open files ("));
    assert_int_equal(o.nattempts, 1); /* more sockets would not help */
    close(listener);
    vl_loop_free(loop);
}

static void cancel_closes_attempts_and_never_calls_back(void **state)
{
    (void)state;
    vl_loop *loop = fake_loop();
    struct stalled s;
    union vl_sockaddr a[2];
    stalled_open(&s);
    a[0] = s.addr;
    a[1] = s.addr;
    struct outcome o;
    struct addr_list l = {.n = 2};
    struct connector *k;
    l.addr[0] = a[0];
    l.addr[1] = a[1];
    memset(&o, 0, sizeof(o));
    int fds_before = open_fds();
    assert_int_equal(connector_start(loop, &l, on_done, on_trace, &o, &k), 0);
    pump(loop, &o, 100);
    fake_us += CONNECT_ATTEMPT_DELAY_US;
    pump(loop, &o, 100);
    assert_int_equal(o.nattempts, 2);
    assert_int_equal(open_fds(), fds_before + 2);
    connector_cancel(k);
    assert_int_equal(open_fds(), fds_before);
    assert_int_equal(loop->nwatched, 0);
    assert_int_equal(loop->heap_len, 0);
    fake_us += 10 * CONNECT_ATTEMPT_DELAY_US;
    pump(loop, &o, 50);
    assert_int_equal(o.calls, 0);
    stalled_close(&s);
    vl_loop_free(loop);
}

static void interleave_alternates_families_starting_with_the_first(void **state)
{
    (void)state;
    struct addr_list l = {.n = 5};
    const int fam[] = {AF_INET6, AF_INET6, AF_INET6, AF_INET, AF_INET};
    for (int i = 0; i < l.n; i++) {
        memset(&l.addr[i], 0, sizeof(l.addr[i]));
        l.addr[i].sa.sa_family = (sa_family_t)fam[i];
        l.addr[i].in4.sin_port = htons((uint16_t)(i + 1)); /* same offset in both */
    }
    addr_list_interleave(&l);
    const int want_port[] = {1, 4, 2, 5, 3};
    for (int i = 0; i < l.n; i++)
        assert_int_equal(ntohs(l.addr[i].in4.sin_port), want_port[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_first_address_moves_on_without_waiting),
        cmocka_unit_test(stalled_attempt_gets_the_next_one_at_exactly_250ms),
        cmocka_unit_test(failure_after_a_stall_starts_the_third_attempt_at_once),
        cmocka_unit_test(two_stalls_space_three_attempts_250ms_apart),
        cmocka_unit_test(all_refused_names_every_address_once),
        cmocka_unit_test(out_of_fds_is_a_limit_error),
        cmocka_unit_test(cancel_closes_attempts_and_never_calls_back),
        cmocka_unit_test(interleave_alternates_families_starting_with_the_first),
    };
    alarm(60);
    return cmocka_run_group_tests_name("connect", tests, NULL, NULL);
}
