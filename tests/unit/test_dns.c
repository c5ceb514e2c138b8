/* test_dns.c: the resolver against tests/servers/fakedns.py on a free
 * loopback port: answers, each kind of failure with its message and its
 * time bound, the cache (TTL, negative answers, expiry), one query shared
 * by many callers, cancellation, and what never reaches the network
 * (--resolve, literals, localhost).  Real time; the slowest test is the
 * silent server's 3 s timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "loop.h"

/* ------------------------------------------------------------ fake server */

static pid_t server_pid = -1;
static int server_port;
static char tmpdir[] = "/tmp/volley-test-dns-XXXXXX";
static char config_path[256], stats_path[256], servers_opt[64];

/* ttl1.test's address is a parameter: the expiry test changes it. */
static const char *config_fmt =
    "{\"names\": {"
    "\"ok.test\": {\"A\": [\"127.0.0.1\"], \"AAAA\": [\"::1\"], \"ttl\": 60},"
    "\"v4.test\": {\"A\": [\"127.0.0.1\", \"127.0.0.2\"], \"ttl\": 30},"
    "\"many.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60},"
    "\"case.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60},"
    "\"cancel.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60, \"delay_ms\": 100},"
    "\"orphan.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60, \"delay_ms\": 100},"
    "\"inside.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60},"
    "\"pin.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 1},"
    "\"free.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60, \"delay_ms\": 300},"
    "\"over.test\": {\"A\": [\"127.0.0.1\"], \"ttl\": 60},"
    "\"ttl1.test\": {\"A\": [\"%s\"], \"ttl\": 1},"
    "\"empty.test\": {\"A\": [], \"ttl\": 60},"
    "\"nx.test\": \"nxdomain\","
    "\"fail.test\": \"servfail\","
    "\"silent.test\": \"silent\"},"
    "\"default\": \"nxdomain\"}";

static void write_config(const char *ttl1_addr)
{
    char tmp[300];
    vl_fmt(tmp, sizeof(tmp), "%s.tmp", config_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, config_fmt, ttl1_addr);
    fclose(f);
    assert_int_equal(rename(tmp, config_path), 0);
}

static const char *find_fakedns(void)
{
    static const char *const candidates[] = {"tests/servers/fakedns.py",
                                             "../tests/servers/fakedns.py",
                                             "../../tests/servers/fakedns.py"};
    const char *dir = getenv("VOLLEY_SRCDIR");
    static char path[512];
    if (dir) {
        vl_fmt(path, sizeof(path), "%s/tests/servers/fakedns.py", dir);
        return path;
    }
    for (size_t i = 0; i < ARRAY_LEN(candidates); i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return candidates[0];
}

static int start_server(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    vl_fmt(config_path, sizeof(config_path), "%s/dns.json", tmpdir);
    vl_fmt(stats_path, sizeof(stats_path), "%s/stats.json", tmpdir);
    write_config("127.0.0.1");
    int out[2];
    if (pipe(out) < 0)
        return -1;
    const char *script = find_fakedns();
    server_pid = fork();
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a killed test */
        dup2(out[1], 1);
        close(out[0]);
        execlp("python3", "python3", script, "--config", config_path, "--stats", stats_path,
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* The first line is the port; wait for it with a deadline. */
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    char line[32] = "";
    size_t len = 0;
    while (len < sizeof(line) - 1 && !strchr(line, '\n') && poll(&p, 1, 10000) == 1) {
        ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(out[0]);
    server_port = atoi(line);
    if (server_port <= 0) {
        fprintf(stderr, "fakedns.py (%s) did not print its port: '%s'\n", script, line);
        return -1;
    }
    vl_fmt(servers_opt, sizeof(servers_opt), "127.0.0.1:%d", server_port);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    unlink(config_path);
    unlink(stats_path);
    rmdir(tmpdir);
    return 0;
}

/* Queries the server saw for name and type ("A" or "AAAA"). */
static int queries(const char *name, const char *type)
{
    char buf[65536], key[300];
    FILE *f = fopen(stats_path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    vl_fmt(key, sizeof(key), "\"%s\": {", name);
    char *p = strstr(buf, key);
    if (!p)
        return 0;
    char *end = strchr(p, '}');
    vl_fmt(key, sizeof(key), "\"%s\": ", type);
    char *q = strstr(p, key);
    return q && q < end ? atoi(q + strlen(key)) : 0;
}

/* ------------------------------------------------------------- fixtures */

struct fixture {
    vl_loop *loop;
    struct dns *dns;
    char trace[64][300];
    int ntrace;
};

struct waiter {
    struct fixture *fx;
    struct dns_query *q;
    int calls, err, port, n;
    char first[INET6_ADDRSTRLEN];
    char msg[256];
    const char *resolve_inside; /* cancel itself and resolve this again from the callback */
    uint64_t jump_us;           /* ...after moving the fake clock this far */
    int inside_rc;
};

static uint64_t fake_us;

static uint64_t fake_clock(void *data)
{
    (void)data;
    return fake_us;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_trace(void *data, const char *line)
{
    struct waiter *w = data;
    struct fixture *fx = w->fx;
    if (fx->ntrace < (int)ARRAY_LEN(fx->trace))
        vl_fmt(fx->trace[fx->ntrace++], sizeof(fx->trace[0]), "%s", line);
}

static int traced(struct fixture *fx, const char *needle)
{
    for (int i = 0; i < fx->ntrace; i++)
        if (strstr(fx->trace[i], needle))
            return 1;
    return 0;
}

static void record(struct waiter *w, int err, const struct addr_list *addrs, const char *msg)
{
    w->calls++;
    w->err = err;
    if (err == 0) {
        w->n = addrs->n;
        const union vl_sockaddr *a = &addrs->addr[0];
        w->port = ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in4.sin_port);
        inet_ntop(a->sa.sa_family,
                  a->sa.sa_family == AF_INET6 ? (const void *)&a->in6.sin6_addr
                                              : (const void *)&a->in4.sin_addr,
                  w->first, sizeof(w->first));
    } else {
        vl_fmt(w->msg, sizeof(w->msg), "%s", msg);
    }
}

static void on_answer(void *data, int err, const struct addr_list *addrs, const char *msg)
{
    struct waiter *w = data;
    record(w, err, addrs, msg);
    if (w->resolve_inside) {
        struct addr_list again;
        char m[256];
        dns_cancel(w->q); /* a no-op inside its own callback */
        if (w->jump_us) {
            fake_us += w->jump_us;
            loop_update_time(w->fx->loop);
        }
        w->inside_rc =
            dns_resolve(w->fx->dns, w->resolve_inside, 80, &again, on_answer, NULL, w, NULL, m);
    }
}

static struct fixture *fixture_new(const char *servers, const char *const *resolve, size_t nresolve)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    vl_client_opts o;
    char err[256] = "";
    assert_non_null(fx);
    vl_client_opts_init(&o);
    o.dns_servers = servers;
    o.resolve = resolve;
    o.nresolve = nresolve;
    fx->loop = vl_loop_new();
    assert_non_null(fx->loop);
    int rc = dns_new(fx->loop, &o, &fx->dns, err, sizeof(err));
    if (rc < 0)
        fail_msg("dns_new: %d %s", rc, err);
    return fx;
}

static void fixture_free(struct fixture *fx)
{
    dns_free(fx->dns);
    /* dns_free must leave nothing on the loop: no watcher, no timer. */
    assert_int_equal(fx->loop->nwatched, 0);
    assert_int_equal(fx->loop->heap_len, 0);
    vl_loop_free(fx->loop);
    free(fx);
}

/* Run the loop until *calls reaches want or limit_s passes; returns the
 * seconds it took. */
static double run_until(struct fixture *fx, const int *calls, int want, double limit_s)
{
    double t0 = now_s();
    while (*calls < want && now_s() - t0 < limit_s)
        vl_loop_run_once(fx->loop, 20);
    return now_s() - t0;
}

/* Run the loop until nothing is left on it (the lookup is over). */
static void run_idle(struct fixture *fx, double limit_s)
{
    double t0 = now_s();
    while ((fx->loop->nwatched || fx->loop->heap_len) && now_s() - t0 < limit_s)
        vl_loop_run_once(fx->loop, 20);
    assert_int_equal(fx->loop->nwatched, 0);
    assert_int_equal(fx->loop->heap_len, 0);
}

static int resolve(struct fixture *fx, const char *host, int port, struct waiter *w,
                   struct addr_list *addrs)
{
    w->fx = fx;
    return dns_resolve(fx->dns, host, port, addrs, on_answer, on_trace, w, &w->q, w->msg);
}

static void resolve_and_wait(struct fixture *fx, const char *host, int port, struct waiter *w)
{
    struct addr_list addrs;
    int rc = resolve(fx, host, port, w, &addrs);
    if (rc == 1) {
        record(w, 0, &addrs, NULL);
        return;
    }
    if (rc < 0) {
        w->calls++;
        w->err = rc;
        return;
    }
    assert_int_equal(rc, 0);
    run_until(fx, &w->calls, 1, 10);
    assert_int_equal(w->calls, 1);
}

/* ---------------------------------------------------------------- tests */

static void a_and_aaaa_come_back_with_the_callers_port(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "ok.test", 8080, &w, &addrs), 0);
    run_until(fx, &w.calls, 1, 5);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.port, 8080);
    assert_true(traced(fx, "dns: looking up ok.test"));
    assert_true(traced(fx, "dns: ok.test -> "));
    assert_true(traced(fx, "(ttl 60 s"));
    assert_int_equal(queries("ok.test", "A"), 1);
    assert_int_equal(queries("ok.test", "AAAA"), 1);
    fixture_free(fx);
}

static void second_resolve_is_answered_from_the_cache_without_a_query(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w1 = {0}, w2 = {0};
    struct addr_list addrs;
    struct dns_stats st;
    resolve_and_wait(fx, "v4.test", 80, &w1);
    int before = queries("v4.test", "A");
    assert_int_equal(resolve(fx, "V4.Test", 443, &w2, &addrs), 1); /* names are case-blind */
    assert_int_equal(addrs.n, 2);
    assert_int_equal(ntohs(addrs.addr[1].in4.sin_port), 443);
    assert_int_equal(queries("v4.test", "A"), before);
    assert_true(traced(fx, "(cached, expires in 30 s)"));
    dns_get_stats(fx->dns, &st);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.hits, 1);
    fixture_free(fx);
}

static void nxdomain_names_the_host_and_is_cached_briefly(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0}, w2 = {0};
    struct addr_list addrs;
    resolve_and_wait(fx, "nx.test", 80, &w);
    assert_int_equal(w.err, -VL_EDNS);
    assert_string_equal(w.msg, "dns: no such host (NXDOMAIN) 'nx.test'");
    int before = queries("nx.test", "A");
    assert_true(before >= 1);
    assert_int_equal(resolve(fx, "nx.test", 80, &w2, &addrs), -VL_EDNS);
    assert_string_equal(w2.msg, "dns: no such host (NXDOMAIN) 'nx.test'");
    assert_int_equal(queries("nx.test", "A"), before);
    assert_true(traced(fx, "(cached, expires in 5 s)"));
    fixture_free(fx);
}

static void empty_answer_is_no_addresses(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0};
    resolve_and_wait(fx, "empty.test", 80, &w);
    assert_int_equal(w.err, -VL_EDNS);
    assert_string_equal(w.msg, "dns: no addresses 'empty.test'");
    fixture_free(fx);
}

static void servfail_fails_at_once_and_is_not_cached(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0}, w2 = {0};
    double t0 = now_s();
    resolve_and_wait(fx, "fail.test", 80, &w);
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(w.err, -VL_EDNS);
    assert_string_equal(w.msg, "dns: server failure 'fail.test'");
    assert_true(traced(fx, "not cached"));
    int before = queries("fail.test", "A");
    resolve_and_wait(fx, "fail.test", 80, &w2); /* asks again */
    assert_int_equal(w2.err, -VL_EDNS);
    assert_true(queries("fail.test", "A") > before);
    fixture_free(fx);
}

static void silent_server_times_out_within_the_bound(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "silent.test", 80, &w, &addrs), 0);
    double took = run_until(fx, &w.calls, 1, 8);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.err, -VL_EDNS);
    assert_string_equal(w.msg, "dns: timeout 'silent.test'");
    /* 1000 ms, then 2000 ms on the second try (DNS_TIMEOUT_MS, DNS_TRIES). */
    if (took < 2.5 || took > 4.5)
        fail_msg("timeout after %.2f s, expected about 3 s", took);
    assert_int_equal(queries("silent.test", "A"), 2);
    fixture_free(fx);
}

static void unreachable_server_fails_fast(void **state)
{
    (void)state;
    /* A bound UDP port that never reads: the kernel answers "refused" to
     * every datagram sent to a closed port, so use one that was just closed. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    char servers[64];
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    vl_fmt(servers, sizeof(servers), "127.0.0.1:%d", ntohs(sin.sin_port));
    struct fixture *fx = fixture_new(servers, NULL, 0);
    struct waiter w = {0};
    double t0 = now_s();
    resolve_and_wait(fx, "ok.test", 80, &w);
    assert_int_equal(w.err, -VL_EDNS);
    if (strcmp(w.msg, "dns: server unreachable (connection refused) 'ok.test'") != 0 &&
        strcmp(w.msg, "dns: timeout 'ok.test'") != 0)
        fail_msg("unexpected message '%s'", w.msg);
    assert_true(now_s() - t0 < 4.5);
    fixture_free(fx);
}

static void thousand_concurrent_callers_share_one_query(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter *w = calloc(N, sizeof(*w));
    struct addr_list addrs;
    struct dns_stats st;
    int total = 0;
    assert_non_null(w);
    for (int i = 0; i < N; i++) {
        w[i].fx = fx;
        assert_int_equal(dns_resolve(fx->dns, "many.test", 1000 + i, &addrs, on_answer, NULL, &w[i],
                                     &w[i].q, w[i].msg),
                         0);
    }
    double t0 = now_s();
    while (total < N && now_s() - t0 < 5) {
        vl_loop_run_once(fx->loop, 20);
        total = 0;
        for (int i = 0; i < N; i++)
            total += w[i].calls;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].err, 0);
        assert_int_equal(w[i].port, 1000 + i);
        assert_string_equal(w[i].first, "127.0.0.1");
    }
    assert_int_equal(queries("many.test", "A"), 1);
    assert_int_equal(queries("many.test", "AAAA"), 1);
    dns_get_stats(fx->dns, &st);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.joined, N - 1);
    free(w);
    fixture_free(fx);
}

static void expired_ttl_asks_again_and_sees_the_new_answer(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w1 = {0}, w2 = {0}, w3 = {0};
    struct addr_list addrs;
    int before = queries("ttl1.test", "A");
    resolve_and_wait(fx, "ttl1.test", 80, &w1);
    assert_string_equal(w1.first, "127.0.0.1");
    assert_int_equal(resolve(fx, "ttl1.test", 80, &w2, &addrs), 1); /* still fresh */
    assert_int_equal(queries("ttl1.test", "A"), before + 1);
    write_config("127.0.0.3");
    /* Let the 1 s TTL run out on the loop's clock. */
    double t0 = now_s();
    while (now_s() - t0 < 1.1)
        vl_loop_run_once(fx->loop, 50);
    resolve_and_wait(fx, "ttl1.test", 80, &w3);
    assert_int_equal(w3.err, 0);
    assert_string_equal(w3.first, "127.0.0.3");
    assert_int_equal(queries("ttl1.test", "A"), before + 2);
    write_config("127.0.0.1");
    fixture_free(fx);
}

static void cancelled_waiter_is_never_called_and_the_others_are(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter a = {0}, b = {0}, c = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "cancel.test", 1, &a, &addrs), 0);
    assert_int_equal(resolve(fx, "cancel.test", 2, &b, &addrs), 0);
    assert_int_equal(resolve(fx, "cancel.test", 3, &c, &addrs), 0);
    dns_cancel(b.q);
    run_idle(fx, 5);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.port, 3);
    assert_int_equal(queries("cancel.test", "A"), 1);
    fixture_free(fx);
}

static void lookup_whose_waiters_all_cancelled_still_fills_the_cache(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter a = {0}, b = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "orphan.test", 80, &a, &addrs), 0);
    dns_cancel(a.q);
    run_idle(fx, 5);
    assert_int_equal(a.calls, 0);
    assert_int_equal(resolve(fx, "orphan.test", 80, &b, &addrs), 1);
    assert_int_equal(queries("orphan.test", "A"), 1);
    fixture_free(fx);
}

static void callback_may_cancel_itself_and_resolve_again(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {.resolve_inside = "inside.test"};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "inside.test", 80, &w, &addrs), 0);
    run_idle(fx, 5);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.inside_rc, 1); /* the answer is cached by then */
    fixture_free(fx);
}

/* A callback that finds the answer expired (the clock moved on while it
 * ran) must not free the entry under the loop answering the next waiter. */
static void entry_outlives_its_ttl_while_waiters_are_answered(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter a = {.resolve_inside = "pin.test", .jump_us = 5000000}, b = {0};
    struct addr_list addrs;
    fake_us = 1000000000u;
    loop_set_clock(fx->loop, fake_clock, NULL);
    assert_int_equal(resolve(fx, "pin.test", 80, &a, &addrs), 0);
    assert_int_equal(resolve(fx, "pin.test", 81, &b, &addrs), 0);
    run_until(fx, &b.calls, 1, 5);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.port, 81);
    assert_int_equal(a.inside_rc, 1);
    fixture_free(fx);
}

static void free_with_lookups_in_flight_calls_nobody(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter a = {0}, b = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "free.test", 80, &a, &addrs), 0);
    assert_int_equal(resolve(fx, "silent.test", 80, &b, &addrs), 0);
    vl_loop_run_once(fx->loop, 20);
    fixture_free(fx); /* asserts the loop is left empty */
    assert_int_equal(a.calls + b.calls, 0);
}

static void resolve_overrides_come_first_and_only_for_their_port(void **state)
{
    (void)state;
    const char *const resolve_opts[] = {"over.test:8080:127.0.0.9,[::1]"};
    struct fixture *fx = fixture_new(servers_opt, resolve_opts, 1);
    struct waiter w = {0}, w2 = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, "OVER.test", 8080, &w, &addrs), 1);
    assert_int_equal(addrs.n, 2);
    assert_int_equal(addrs.addr[0].sa.sa_family, AF_INET);
    assert_int_equal(ntohl(addrs.addr[0].in4.sin_addr.s_addr), 0x7f000009);
    assert_int_equal(addrs.addr[1].sa.sa_family, AF_INET6);
    assert_true(traced(fx, "(--resolve)"));
    assert_int_equal(queries("over.test", "A"), 0);
    resolve_and_wait(fx, "over.test", 9090, &w2); /* another port: DNS */
    assert_string_equal(w2.first, "127.0.0.1");
    assert_int_equal(queries("over.test", "A"), 1);
    fixture_free(fx);
}

static void literals_and_localhost_never_ask_anyone(void **state)
{
    (void)state;
    /* No server at all: anything that reached for one would fail. */
    struct fixture *fx = fixture_new("127.0.0.1:9", NULL, 0);
    const char *hosts[] = {"127.0.0.1", "[::1]", "::1", "localhost", "LocalHost.", "api.localhost"};
    struct waiter w = {0};
    struct addr_list addrs;
    struct dns_stats st;
    for (size_t i = 0; i < ARRAY_LEN(hosts); i++) {
        assert_int_equal(resolve(fx, hosts[i], 80, &w, &addrs), 1);
        assert_int_equal(ntohs(addrs.addr[0].sa.sa_family == AF_INET6 ? addrs.addr[0].in6.sin6_port
                                                                      : addrs.addr[0].in4.sin_port),
                         80);
    }
    dns_get_stats(fx->dns, &st);
    assert_int_equal(st.lookups, 0);
    assert_int_equal(fx->loop->nwatched, 0);
    fixture_free(fx);
}

static void invalid_names_fail_without_a_lookup(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    const char *bad[] = {"", "a b", "a..b", "bad/name", ".lead"};
    struct waiter w = {0};
    struct addr_list addrs;
    struct dns_stats st;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(resolve(fx, bad[i], 80, &w, &addrs), -VL_EDNS);
        assert_non_null(strstr(w.msg, "dns: invalid host name"));
    }
    dns_get_stats(fx->dns, &st);
    assert_int_equal(st.lookups, 0);
    fixture_free(fx);
}

static void bad_dns_servers_is_a_usage_error(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    vl_client_opts o;
    struct dns *d = NULL;
    char err[256] = "";
    vl_client_opts_init(&o);
    o.dns_servers = "not-an-address";
    assert_int_equal(dns_new(loop, &o, &d, err, sizeof(err)), -VL_EUSAGE);
    assert_non_null(strstr(err, "--dns-servers"));
    o.dns_servers = NULL;
    const char *const bad_resolve[] = {"nohost"};
    o.resolve = bad_resolve;
    o.nresolve = 1;
    assert_int_equal(dns_new(loop, &o, &d, err, sizeof(err)), -VL_EUSAGE);
    assert_non_null(strstr(err, "--resolve"));
    vl_loop_free(loop);
}

/* A name from /etc/hosts is answered from the file, at once, with no query. */
static void hosts_file_is_honoured_before_dns(void **state)
{
    (void)state;
    char line[512], name[256] = "";
    FILE *f = fopen("/etc/hosts", "r");
    while (f && !name[0] && fgets(line, sizeof(line), f)) {
        char addr[64], host[256];
        if (line[0] == '#' || sscanf(line, "%63s %255s", addr, host) != 2)
            continue;
        if (strncmp(addr, "127.", 4) == 0 && !strstr(host, "localhost") && !strchr(host, '#'))
            vl_fmt(name, sizeof(name), "%s", host);
    }
    if (f)
        fclose(f);
    if (!name[0])
        skip();
    struct fixture *fx = fixture_new(servers_opt, NULL, 0);
    struct waiter w = {0};
    struct addr_list addrs;
    assert_int_equal(resolve(fx, name, 80, &w, &addrs), 1);
    assert_int_equal(addrs.addr[0].sa.sa_family, AF_INET);
    assert_int_equal(queries(name, "A"), 0);
    fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_and_aaaa_come_back_with_the_callers_port),
        cmocka_unit_test(second_resolve_is_answered_from_the_cache_without_a_query),
        cmocka_unit_test(nxdomain_names_the_host_and_is_cached_briefly),
        cmocka_unit_test(empty_answer_is_no_addresses),
        cmocka_unit_test(servfail_fails_at_once_and_is_not_cached),
        cmocka_unit_test(silent_server_times_out_within_the_bound),
        cmocka_unit_test(unreachable_server_fails_fast),
        cmocka_unit_test(thousand_concurrent_callers_share_one_query),
        cmocka_unit_test(expired_ttl_asks_again_and_sees_the_new_answer),
        cmocka_unit_test(cancelled_waiter_is_never_called_and_the_others_are),
        cmocka_unit_test(lookup_whose_waiters_all_cancelled_still_fills_the_cache),
        cmocka_unit_test(callback_may_cancel_itself_and_resolve_again),
        cmocka_unit_test(entry_outlives_its_ttl_while_waiters_are_answered),
        cmocka_unit_test(free_with_lookups_in_flight_calls_nobody),
        cmocka_unit_test(resolve_overrides_come_first_and_only_for_their_port),
        cmocka_unit_test(literals_and_localhost_never_ask_anyone),
        cmocka_unit_test(invalid_names_fail_without_a_lookup),
        cmocka_unit_test(bad_dns_servers_is_a_usage_error),
        cmocka_unit_test(hosts_file_is_honoured_before_dns),
    };
    alarm(120); /* a hung test must not hang the suite */
    return cmocka_run_group_tests_name("dns", tests, start_server, stop_server);
}
