/* test_tls.c: src/tls.c against real TLS servers on loopback.
 *
 * Certificates come from tests/lib/certs.py (a throwaway CA in a temp dir);
 * servers are tests/lib/tls_helpers.py processes (one per test, stopped by
 * PID).  Each client connection goes through the real connector (conn.c), then
 * tls_attach and the conn ops, driven by a vl_loop with a deadline timer, the
 * way fetch.c drives them.  Run from the repository root (tests/run.py does). */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "conn.h"
#include "loop.h"
#include "tls.h"

#define RUN_DEADLINE_MS 15000
#define SERVER_START_MS 10000
#define HELPER "tests/lib/tls_helpers.py"
#define CERTS "tests/lib/certs.py"

static char g_dir[64]; /* certificates: g_dir/good.crt, g_dir/ca/ca.crt ... */

static const char *cert_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    if (strcmp(name, "ca") == 0 || strcmp(name, "ca2") == 0)
        snprintf(p, 256, "%s/%s/ca.crt", g_dir, name);
    else if (strcmp(name, "key") == 0)
        snprintf(p, 256, "%s/leaf.key", g_dir);
    else
        snprintf(p, 256, "%s/%s.crt", g_dir, name);
    return p;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- servers */

struct server {
    pid_t pid;
    int port;
};

/* Servers still running, stopped by the per-test teardown when an assertion
 * jumped out of a test before its own server_stop. */
static struct server *g_live[8];

static void live_add(struct server *s)
{
    for (size_t i = 0; i < ARRAY_LEN(g_live); i++)
        if (!g_live[i]) {
            g_live[i] = s;
            return;
        }
}

static void live_remove(struct server *s)
{
    for (size_t i = 0; i < ARRAY_LEN(g_live); i++)
        if (g_live[i] == s)
            g_live[i] = NULL;
}

/* Start tls_helpers.py in mode (cert: a name for cert_path, or NULL) and read
 * the port it prints, within SERVER_START_MS. */
static void server_start(struct server *s, const char *mode, const char *cert)
{
    int pfd[2];
    char logpath[128];
    assert_int_equal(pipe(pfd), 0);
    snprintf(logpath, sizeof(logpath), "%s/server-%s.log", g_dir, mode);
    const char *certfile = cert ? cert_path(cert) : NULL;
    const char *keyfile = cert_path("key");
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(pfd[1], 1);
        if (log >= 0)
            dup2(log, 2);
        close(pfd[0]);
        if (certfile)
            execlp("python3", "python3", HELPER, "--mode", mode, "--cert", certfile, "--key",
                   keyfile, (char *)NULL);
        else
            execlp("python3", "python3", HELPER, "--mode", mode, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    live_add(s);
    char line[32] = "";
    size_t len = 0;
    uint64_t deadline = now_ms() + SERVER_START_MS;
    while (!memchr(line, '\n', len) && len < sizeof(line) - 1) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = read(pfd[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pfd[0]);
    line[len] = '\0';
    s->port = atoi(line);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        live_remove(s);
        fail_msg("TLS test server (%s) did not report a port within %d ms (see %s)", mode,
                 SERVER_START_MS, logpath);
    }
}

static void server_stop(struct server *s)
{
    live_remove(s);
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* ------------------------------------------------------- one connection */

enum phase { P_CONNECT, P_HANDSHAKE, P_WRITE, P_READ, P_DONE };

struct run {
    vl_loop *loop;
    struct tls_ctx *ctx;
    struct conn *c;
    struct connector *k;
    vl_timer deadline;
    enum phase phase;
    const char *host;
    char key[64];
    int stop_after_handshake;
    int sndbuf; /* SO_SNDBUF for the socket, 0 = default */
    /* what to send after the handshake */
    const struct iovec *iov;
    int iovcnt;
    size_t sent;     /* bytes of iov written */
    int iov_idx;     /* cursor: first unsent piece ... */
    size_t iov_off;  /* ... and the bytes of it already sent */
    int grow;        /* offer 2 pieces per call, 3 right after a short write */
    int short_write; /* the last writev returned -EAGAIN or a partial count */
    int write_eagain, write_partial;
    /* outcome */
    int rc; /* 0 or the failing op's code */
    char err[256];
    char resp[8192];
    size_t resp_len;
    int eof;
};

static void step(struct run *r);

static void finish_run(struct run *r, int rc)
{
    r->rc = rc;
    if (rc && r->c)
        snprintf(r->err, sizeof(r->err), "%s", r->c->err);
    r->phase = P_DONE;
    vl_timer_stop(&r->deadline);
    if (r->c)
        vl_io_stop(r->loop, r->c->fd);
}

static void on_io(vl_loop *loop, int fd, int events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    step(data);
}

static void on_deadline(vl_loop *loop, vl_timer *t, void *data)
{
    struct run *r = data;
    (void)loop;
    (void)t;
    if (r->k) {
        connector_cancel(r->k);
        r->k = NULL;
    }
    snprintf(r->err, sizeof(r->err), "test deadline in phase %d", (int)r->phase);
    r->rc = -ETIMEDOUT;
    r->phase = P_DONE;
    if (r->c)
        vl_io_stop(r->loop, r->c->fd);
}

/* Offer writev the unsent rest of the iov, from the cursor (iov_idx,
 * iov_off): all of it, or with `grow` 2 pieces, 3 right after a short write
 * (a caller may append data between calls: a retry then offers the same
 * bytes first and more after them, and tls.c must not count the new ones as
 * sent before it has sent them). */
static int do_write(struct run *r)
{
    struct iovec rest[8];
    int n = 0, limit = r->grow ? 2 + r->short_write : (int)ARRAY_LEN(rest);
    for (int i = r->iov_idx; i < r->iovcnt && n < limit; i++) {
        size_t skip = i == r->iov_idx ? r->iov_off : 0;
        rest[n].iov_base = (char *)r->iov[i].iov_base + skip;
        rest[n].iov_len = r->iov[i].iov_len - skip;
        n++;
    }
    if (n == 0) {
        r->phase = P_READ;
        return 1;
    }
    ssize_t w = r->c->ops->writev(r->c, rest, n);
    r->short_write = 1;
    if (w == -EAGAIN) {
        r->write_eagain++;
        return 0;
    }
    if (w < 0) {
        finish_run(r, (int)w);
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += rest[i].iov_len;
    if ((size_t)w < total)
        r->write_partial++;
    else
        r->short_write = 0;
    r->sent += (size_t)w;
    for (size_t left = (size_t)w; left > 0;) {
        size_t piece = r->iov[r->iov_idx].iov_len - r->iov_off;
        if (left < piece) {
            r->iov_off += left;
            break;
        }
        left -= piece;
        r->iov_idx++;
        r->iov_off = 0;
    }
    return 1;
}

static int do_read(struct run *r)
{
    char tmp[4096];
    ssize_t n = r->c->ops->read(r->c, tmp, sizeof(tmp));
    if (n == -EAGAIN)
        return 0;
    if (n < 0) {
        finish_run(r, (int)n);
        return 0;
    }
    if (n == 0) {
        r->eof = 1;
        finish_run(r, 0);
        return 0;
    }
    size_t room = sizeof(r->resp) - 1 - r->resp_len;
    memcpy(r->resp + r->resp_len, tmp, (size_t)n < room ? (size_t)n : room);
    r->resp_len += (size_t)n < room ? (size_t)n : room;
    r->resp[r->resp_len] = '\0';
    /* the sha server answers one line and waits for us to close */
    if (memchr(r->resp, '\n', r->resp_len) && r->iovcnt && !strstr(r->resp, "HTTP/"))
        finish_run(r, 0);
    return 1;
}

static void step(struct run *r)
{
    for (;;) {
        if (r->phase == P_HANDSHAKE) {
            int rc = r->c->ops->handshake(r->c);
            if (rc == -EAGAIN)
                break;
            if (rc < 0) {
                finish_run(r, rc);
                return;
            }
            if (r->stop_after_handshake) {
                finish_run(r, 0);
                return;
            }
            r->phase = r->iovcnt ? P_WRITE : P_READ;
        } else if (r->phase == P_WRITE) {
            if (!do_write(r))
                break;
        } else if (r->phase == P_READ) {
            if (!do_read(r))
                break;
        } else {
            return;
        }
    }
    if (r->phase != P_DONE)
        vl_io_start(r->loop, r->c->fd, r->c->want, on_io, r);
}

static void on_connect(void *data, int fd, int err, const char *msg, const char *peer)
{
    struct run *r = data;
    r->k = NULL;
    if (fd < 0) {
        snprintf(r->err, sizeof(r->err), "%s", msg);
        r->rc = err;
        r->phase = P_DONE;
        vl_timer_stop(&r->deadline);
        return;
    }
    r->c = calloc(1, sizeof(*r->c));
    assert_non_null(r->c);
    r->c->fd = fd;
    r->c->ops = &tcp_ops;
    if (r->sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &r->sndbuf, sizeof(r->sndbuf));
    list_init(&r->c->link);
    list_init(&r->c->lru);
    snprintf(r->c->peer, sizeof(r->c->peer), "%s", peer);
    int rc = tls_attach(r->ctx, r->c, r->host, r->key);
    if (rc) {
        finish_run(r, rc);
        return;
    }
    r->phase = P_HANDSHAKE;
    step(r);
}

/* Connect to 127.0.0.1:port, attach TLS for host, handshake, then write iov
 * (if any) and read until EOF (or one line for the sha server).  The
 * connection stays in r->c for the caller to inspect and destroy. */
static void run_once(struct run *r, vl_loop *loop, struct tls_ctx *ctx, int port, const char *host)
{
    struct addr_list addrs = {.n = 1};
    addrs.addr[0].in4.sin_family = AF_INET;
    addrs.addr[0].in4.sin_port = htons((uint16_t)port);
    addrs.addr[0].in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->loop = loop;
    r->ctx = ctx;
    r->host = host;
    if (!r->key[0])
        snprintf(r->key, sizeof(r->key), "%s:%d", host, port);
    r->phase = P_CONNECT;
    timer_init(&r->deadline, loop, on_deadline, r);
    vl_timer_start(&r->deadline, RUN_DEADLINE_MS);
    assert_int_equal(connector_start(loop, &addrs, on_connect, NULL, r, &r->k), 0);
    while (r->phase != P_DONE)
        assert_true(vl_loop_run_once(loop, 1000) >= 0);
}

static void run_free(struct run *r)
{
    if (r->c)
        conn_destroy(r->loop, r->c);
    r->c = NULL;
}

static struct tls_ctx *ctx_new(const char *cacert, int insecure)
{
    vl_client_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.cacert = cacert;
    opts.insecure = insecure;
    struct tls_ctx *ctx = NULL;
    char err[256] = "";
    int rc = tls_ctx_new(&opts, &ctx, err, sizeof(err));
    if (rc)
        fail_msg("tls_ctx_new: %d %s", rc, err);
    return ctx;
}

static const char HTTP_GET[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* One GET to 127.0.0.1:port with ctx, naming host; the outcome lands in r
 * (the connection is already destroyed). */
static void get_once(struct run *r, struct tls_ctx *ctx, int port, const char *host)
{
    static struct iovec iov[3];
    /* three pieces, to exercise gathering into one record */
    iov[0] = (struct iovec){(void *)HTTP_GET, 4};
    iov[1] = (struct iovec){(void *)(HTTP_GET + 4), 10};
    iov[2] = (struct iovec){(void *)(HTTP_GET + 14), sizeof(HTTP_GET) - 1 - 14};
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    r->iov = iov;
    r->iovcnt = 3;
    run_once(r, loop, ctx, port, host);
    run_free(r);
    vl_loop_free(loop);
}

/* Expect a handshake against a server with `cert` to fail with a message
 * starting with want_prefix (and containing want_also, if given). */
static void expect_failure(const char *cert, const char *host, const char *want_prefix,
                           const char *want_also)
{
    struct server s;
    server_start(&s, "www", cert);
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, host);
    server_stop(&s);
    tls_ctx_free(ctx);
    if (r.rc == 0)
        fail_msg("%s cert for %s: handshake succeeded, expected \"%s...\"", cert, host,
                 want_prefix);
    assert_int_equal(r.rc, -VL_ETLS);
    if (strncmp(r.err, want_prefix, strlen(want_prefix)) != 0 ||
        (want_also && !strstr(r.err, want_also)))
        fail_msg("%s cert for %s: error \"%s\", expected \"%s...%s\"", cert, host, r.err,
                 want_prefix, want_also ? want_also : "");
}

/* --------------------------------------------------------------- tests */

static void trusted_cert_handshakes_offers_alpn_and_reads_the_body(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "www", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    vl_loop *loop = vl_loop_new();
    struct run r = {0};
    r.stop_after_handshake = 1;
    run_once(&r, loop, ctx, s.port, "localhost");
    assert_int_equal(r.rc, 0);
    char desc[160];
    tls_describe(r.c, desc, sizeof(desc));
    assert_non_null(strstr(desc, "TLSv1.2 TLS-"));
    assert_non_null(strstr(desc, " alpn=http/1.1"));
    assert_null(strstr(desc, "resumed"));
    assert_int_equal(r.c->tls_resumed, 0);
    run_free(&r);
    vl_loop_free(loop);

    struct run g = {0};
    get_once(&g, ctx, s.port, "localhost");
    server_stop(&s);
    tls_ctx_free(ctx);
    if (g.rc)
        fail_msg("GET failed: %s", g.err);
    assert_true(g.eof);
    assert_non_null(strstr(g.resp, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(g.resp, "\r\n\r\nhello over tls\n"));
}

static void second_connection_to_one_key_resumes_the_session(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "www", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    int resumed[4];
    char desc[4][160];
    for (int i = 0; i < 4; i++) {
        vl_loop *loop = vl_loop_new();
        struct run r = {0};
        r.stop_after_handshake = 1;
        if (i == 3)
            snprintf(r.key, sizeof(r.key), "other-key");
        run_once(&r, loop, ctx, s.port, "localhost");
        if (r.rc)
            fail_msg("handshake %d failed: %s", i, r.err);
        resumed[i] = r.c->tls_resumed;
        tls_describe(r.c, desc[i], sizeof(desc[i]));
        run_free(&r);
        vl_loop_free(loop);
    }
    server_stop(&s);
    tls_ctx_free(ctx);
    print_message("first: %s\nsecond: %s\n", desc[0], desc[1]);
    assert_int_equal(resumed[0], 0);
    assert_int_equal(resumed[1], 1);
    assert_int_equal(resumed[2], 1);
    assert_int_equal(resumed[3], 0); /* nothing cached under another key */
    assert_non_null(strstr(desc[1], " resumed"));
}

static void ip_literal_host_is_verified_against_ip_sans(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "www", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, "127.0.0.1");
    server_stop(&s);
    tls_ctx_free(ctx);
    if (r.rc)
        fail_msg("GET https://127.0.0.1 with an IP SAN failed: %s", r.err);
    assert_non_null(strstr(r.resp, "hello over tls"));
}

static void ip_literal_without_matching_ip_san_fails(void **state)
{
    (void)state;
    expect_failure("wronghost", "127.0.0.1",
                   "tls: hostname mismatch (cert for wrong.test, "
                   "wanted 127.0.0.1)",
                   NULL);
    /* good has IP:127.0.0.1 and IP:::1 but not this one; also bracket form */
    expect_failure("good", "[::2]", "tls: hostname mismatch (cert for localhost, a.test",
                   "wanted ::2)");
}

static void expired_cert_fails_as_expired(void **state)
{
    (void)state;
    expect_failure("expired", "localhost", "tls: certificate expired", NULL);
}

static void future_cert_fails_as_not_yet_valid(void **state)
{
    (void)state;
    expect_failure("future", "localhost", "tls: certificate not yet valid", NULL);
}

static void self_signed_cert_fails_as_untrusted(void **state)
{
    (void)state;
    expect_failure("selfsigned", "localhost", "tls: certificate not trusted (unknown CA)", NULL);
}

static void cert_from_unknown_ca_fails_as_untrusted(void **state)
{
    (void)state;
    expect_failure("unknown_ca", "localhost", "tls: certificate not trusted (unknown CA)", NULL);
}

static void wrong_hostname_fails_naming_both_names(void **state)
{
    (void)state;
    expect_failure("wronghost", "localhost",
                   "tls: hostname mismatch (cert for wrong.test, wanted localhost)", NULL);
    expect_failure("good", "nothere.test", "tls: hostname mismatch (cert for localhost, a.test",
                   "wanted nothere.test)");
}

static void insecure_accepts_every_bad_cert(void **state)
{
    (void)state;
    static const char *const bad[] = {"expired", "selfsigned", "unknown_ca", "wronghost"};
    struct tls_ctx *ctx = ctx_new(NULL, 1);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct server s;
        server_start(&s, "www", bad[i]);
        struct run r = {0};
        get_once(&r, ctx, s.port, "localhost");
        server_stop(&s);
        if (r.rc)
            fail_msg("insecure GET to %s cert failed: %s", bad[i], r.err);
        assert_non_null(strstr(r.resp, "hello over tls"));
    }
    tls_ctx_free(ctx);
}

static void bad_ca_file_is_reported_by_ctx_new(void **state)
{
    (void)state;
    vl_client_opts opts;
    memset(&opts, 0, sizeof(opts));
    struct tls_ctx *ctx = NULL;
    char err[256] = "", path[128];
    opts.cacert = cert_path("key"); /* a key, not a certificate */
    assert_int_equal(tls_ctx_new(&opts, &ctx, err, sizeof(err)), -VL_ETLS);
    assert_null(ctx);
    if (strncmp(err, "tls: cannot load CA file ", 25) != 0 || !strstr(err, "leaf.key: "))
        fail_msg("unexpected message: %s", err);
    snprintf(path, sizeof(path), "%s/missing.pem", g_dir);
    opts.cacert = path;
    assert_int_equal(tls_ctx_new(&opts, &ctx, err, sizeof(err)), -VL_ETLS);
    if (!strstr(err, "missing.pem: No such file or directory"))
        fail_msg("unexpected message: %s", err);
    /* insecure needs no CA, so it does not even look */
    opts.insecure = 1;
    assert_int_equal(tls_ctx_new(&opts, &ctx, err, sizeof(err)), 0);
    tls_ctx_free(ctx);
}

/* GET through a context made with SSL_CERT_FILE / SSL_CERT_DIR set as given
 * (NULL: unset); returns the run's rc and copies its error. */
static int get_with_env(int port, const char *file, const char *dir, char *err, size_t errlen)
{
    char *old_file = getenv("SSL_CERT_FILE") ? strdup(getenv("SSL_CERT_FILE")) : NULL;
    char *old_dir = getenv("SSL_CERT_DIR") ? strdup(getenv("SSL_CERT_DIR")) : NULL;
    if (file)
        setenv("SSL_CERT_FILE", file, 1);
    else
        unsetenv("SSL_CERT_FILE");
    if (dir)
        setenv("SSL_CERT_DIR", dir, 1);
    else
        unsetenv("SSL_CERT_DIR");
    struct tls_ctx *ctx = ctx_new(NULL, 0);
    old_file ? setenv("SSL_CERT_FILE", old_file, 1) : unsetenv("SSL_CERT_FILE");
    old_dir ? setenv("SSL_CERT_DIR", old_dir, 1) : unsetenv("SSL_CERT_DIR");
    free(old_file);
    free(old_dir);
    struct run r = {0};
    get_once(&r, ctx, port, "localhost");
    tls_ctx_free(ctx);
    snprintf(err, errlen, "%s", r.err);
    return r.rc;
}

static void ssl_cert_file_and_dir_environment_variables_are_used(void **state)
{
    (void)state;
    char err[256], dir[128], path[256];
    /* a directory as OpenSSL's c_rehash leaves it: the CA, a hash link to it,
     * and a file that is no certificate */
    snprintf(dir, sizeof(dir), "%s/cadir", g_dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/test-ca.pem", dir);
    assert_int_equal(symlink(cert_path("ca"), path), 0);
    snprintf(path, sizeof(path), "%s/abcdef12.0", dir);
    assert_int_equal(symlink("test-ca.pem", path), 0);
    snprintf(path, sizeof(path), "%s/README", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);

    struct server s;
    server_start(&s, "www", "good");
    int file_rc = get_with_env(s.port, cert_path("ca"), NULL, err, sizeof(err));
    if (file_rc)
        fail_msg("GET with SSL_CERT_FILE failed: %s", err);
    int dir_rc = get_with_env(s.port, NULL, dir, err, sizeof(err));
    if (dir_rc)
        fail_msg("GET with SSL_CERT_DIR failed: %s", err);
    /* the file wins over the directory; the system bundle does not know our CA */
    int sys_rc = get_with_env(s.port, "/etc/ssl/certs/ca-certificates.crt", dir, err, sizeof(err));
    server_stop(&s);
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        assert_int_equal(sys_rc, -VL_ETLS);
        assert_string_equal(err, "tls: certificate not trusted (unknown CA)");
    }
}

static void raw_server_failure(const char *mode, const char *want)
{
    struct server s;
    server_start(&s, mode, NULL);
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, "localhost");
    server_stop(&s);
    tls_ctx_free(ctx);
    if (r.rc == 0 || strncmp(r.err, want, strlen(want)) != 0)
        fail_msg("%s: rc %d error \"%s\", expected \"%s...\"", mode, r.rc, r.err, want);
    assert_int_equal(r.rc, -VL_ETLS);
}

static void reset_during_handshake_fails_cleanly(void **state)
{
    (void)state;
    raw_server_failure("reset-handshake", "tls: connection reset by peer during handshake");
}

static void eof_during_handshake_fails_cleanly(void **state)
{
    (void)state;
    raw_server_failure("eof-handshake", "tls: connection closed by peer during handshake");
}

static void truncated_handshake_record_fails_cleanly(void **state)
{
    (void)state;
    raw_server_failure("truncated-handshake", "tls: truncated record (peer closed the "
                                              "connection during handshake)");
}

static void fatal_alert_from_the_server_is_named(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "tls13-only", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, "localhost");
    server_stop(&s);
    tls_ctx_free(ctx);
    assert_int_equal(r.rc, -VL_ETLS);
    assert_string_equal(r.err, "tls: handshake failed: peer sent fatal alert 70 "
                               "(protocol_version)");
}

static void plain_http_server_is_recognised(void **state)
{
    (void)state;
    raw_server_failure("plain-http", "tls: handshake failed: the server answered in plain "
                                     "HTTP, not TLS");
}

static void truncated_record_in_body_is_an_error_not_eof(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "truncated-body", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, "localhost");
    server_stop(&s);
    tls_ctx_free(ctx);
    assert_non_null(strstr(r.resp, "HTTP/1.1 200 OK")); /* the intact records arrived */
    if (r.rc != -VL_ETLS || strncmp(r.err, "tls: truncated record", 21) != 0)
        fail_msg("rc %d error \"%s\", expected a truncated record error", r.rc, r.err);
}

static void peer_closing_without_close_notify_reads_as_eof(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "www-no-notify", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    struct run r = {0};
    get_once(&r, ctx, s.port, "localhost");
    server_stop(&s);
    tls_ctx_free(ctx);
    if (r.rc)
        fail_msg("expected EOF, got error: %s", r.err);
    assert_true(r.eof);
    assert_non_null(strstr(r.resp, "\r\n\r\nhello over tls\n"));
}

/* 3 MiB in iov pieces of odd sizes through a small send buffer: writev must
 * return partial counts and -EAGAIN, and every byte must arrive in order,
 * even when the caller offers more pieces on a retry than on the first try
 * (mbedTLS has then already encrypted a record of the first try's bytes). */
static void large_writev_survives_eagain_and_partial_writes(void **state)
{
    (void)state;
    enum { TOTAL = 3 << 20, NPIECES = 8192 };
    static unsigned char data[TOTAL];
    static struct iovec iov[NPIECES + 1];
    static char header[32];
    /* mostly pieces that gather into one record by twos and by threes */
    static const size_t sizes[] = {1000, 1200, 1300, 1, 700, 900, 1000, 1200, 16385, 1100};
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 11));
    snprintf(header, sizeof(header), "%d\n", TOTAL);
    iov[0] = (struct iovec){header, strlen(header)};
    size_t off = 0;
    int n = 1;
    for (; n < NPIECES && off < TOTAL; n++) {
        size_t len = sizes[n % ARRAY_LEN(sizes)];
        if (len > TOTAL - off || n == NPIECES - 1)
            len = TOTAL - off;
        iov[n] = (struct iovec){data + off, len};
        off += len;
    }
    assert_int_equal(off, TOTAL);
    unsigned char digest[32];
    char hex[65];
    assert_int_equal(mbedtls_sha256_ret(data, TOTAL, digest, 0), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);

    struct server s;
    server_start(&s, "sha", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    vl_loop *loop = vl_loop_new();
    struct run r = {0};
    r.iov = iov;
    r.iovcnt = n;
    r.sndbuf = 16384; /* so the kernel pushes back early and often */
    r.grow = 1;
    run_once(&r, loop, ctx, s.port, "localhost");
    if (r.rc)
        fail_msg("sha run failed: %s", r.err);
    print_message("writev: %d x -EAGAIN, %d partial counts\n", r.write_eagain, r.write_partial);
    run_free(&r);
    vl_loop_free(loop);
    server_stop(&s);
    tls_ctx_free(ctx);
    assert_int_equal(r.sent, strlen(header) + TOTAL);
    assert_true(r.write_eagain > 0);
    if (strncmp(r.resp, hex, 64) != 0)
        fail_msg("server saw sha256 %.64s, sent %s", r.resp, hex);
}

/* The benchmark target is <= 48 KiB of client memory per idle TLS connection:
 * count heap bytes held by N open connections after their handshakes. */
static void idle_heap(int full)
{
    enum { N = 20 };
    struct server s;
    server_start(&s, "www", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    vl_loop *loop = vl_loop_new();
    static struct run r[N];
    /* one connection first, so the session cache and lazy mbedTLS state exist */
    memset(r, 0, sizeof(r));
    r[0].stop_after_handshake = 1;
    run_once(&r[0], loop, ctx, s.port, "localhost");
    assert_int_equal(r[0].rc, 0);
    struct mallinfo2 before = mallinfo2();
    for (int i = 1; i < N; i++) {
        r[i].stop_after_handshake = 1;
        if (full)
            snprintf(r[i].key, sizeof(r[i].key), "key-%d", i); /* nothing to resume */
        run_once(&r[i], loop, ctx, s.port, "localhost");
        if (r[i].rc)
            fail_msg("connection %d: %s", i, r[i].err);
    }
    struct mallinfo2 after = mallinfo2();
    for (int i = 0; i < N; i++)
        run_free(&r[i]);
    vl_loop_free(loop);
    server_stop(&s);
    tls_ctx_free(ctx);
    if (after.uordblks == 0 && before.uordblks == 0) {
        print_message("mallinfo2 reports nothing (sanitizer allocator?): not measured\n");
        return;
    }
    double per_conn = ((double)after.uordblks - (double)before.uordblks) / (N - 1);
    print_message("heap per idle TLS connection (%s handshake, with struct conn and "
                  "its session cache entry): %.0f bytes\n",
                  full ? "full" : "resumed", per_conn);
    assert_true(per_conn <= 48 * 1024);
}

static void idle_connection_heap_stays_under_48_kib(void **state)
{
    (void)state;
    idle_heap(0);
    idle_heap(1);
}

/* Handshake once under key; returns whether the session was resumed. */
static int handshake_resumed(vl_loop *loop, struct tls_ctx *ctx, int port, const char *key)
{
    struct run r = {0};
    r.stop_after_handshake = 1;
    snprintf(r.key, sizeof(r.key), "%s", key);
    run_once(&r, loop, ctx, port, "localhost");
    if (r.rc)
        fail_msg("handshake for %s failed: %s", key, r.err);
    int resumed = r.c->tls_resumed;
    run_free(&r);
    return resumed;
}

/* The cache holds 1024 sessions and forgets the least recently used. */
static void session_cache_evicts_the_least_recently_used_of_1024(void **state)
{
    (void)state;
    enum { MAX = 1024 };
    char key[32];
    struct server s;
    server_start(&s, "www", "good");
    struct tls_ctx *ctx = ctx_new(cert_path("ca"), 0);
    vl_loop *loop = vl_loop_new();
    for (int i = 0; i < MAX; i++) { /* fills the cache: key-0 is the oldest */
        snprintf(key, sizeof(key), "key-%d", i);
        assert_false(handshake_resumed(loop, ctx, s.port, key));
    }
    assert_true(handshake_resumed(loop, ctx, s.port, "key-0"));    /* now the newest */
    assert_false(handshake_resumed(loop, ctx, s.port, "key-new")); /* evicts key-1 */
    int key1 = handshake_resumed(loop, ctx, s.port, "key-1");
    int key0 = handshake_resumed(loop, ctx, s.port, "key-0");
    int key2 = handshake_resumed(loop, ctx, s.port, "key-2");
    vl_loop_free(loop);
    tls_ctx_free(ctx);
    server_stop(&s);
    assert_false(key1); /* evicted */
    assert_true(key0);
    /* key-1's handshake just now evicted the oldest again: key-2 */
    assert_false(key2);
}

/* ------------------------------------------------------------- fixture */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int stop_servers(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(g_live); i++)
        if (g_live[i])
            server_stop(g_live[i]);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (access(CERTS, R_OK) != 0 || access(HELPER, R_OK) != 0) {
        fprintf(stderr, "test_tls: run from the repository root (%s not found)\n", CERTS);
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/volley-tls-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 60 python3 %s %s > /dev/null", CERTS, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_tls: %s failed\n", cmd);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0] && !getenv("VOLLEY_KEEP_TMP"))
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(trusted_cert_handshakes_offers_alpn_and_reads_the_body,
                                  stop_servers),
        cmocka_unit_test_teardown(second_connection_to_one_key_resumes_the_session, stop_servers),
        cmocka_unit_test_teardown(ip_literal_host_is_verified_against_ip_sans, stop_servers),
        cmocka_unit_test_teardown(ip_literal_without_matching_ip_san_fails, stop_servers),
        cmocka_unit_test_teardown(expired_cert_fails_as_expired, stop_servers),
        cmocka_unit_test_teardown(future_cert_fails_as_not_yet_valid, stop_servers),
        cmocka_unit_test_teardown(self_signed_cert_fails_as_untrusted, stop_servers),
        cmocka_unit_test_teardown(cert_from_unknown_ca_fails_as_untrusted, stop_servers),
        cmocka_unit_test_teardown(wrong_hostname_fails_naming_both_names, stop_servers),
        cmocka_unit_test_teardown(insecure_accepts_every_bad_cert, stop_servers),
        cmocka_unit_test_teardown(bad_ca_file_is_reported_by_ctx_new, stop_servers),
        cmocka_unit_test_teardown(ssl_cert_file_and_dir_environment_variables_are_used,
                                  stop_servers),
        cmocka_unit_test_teardown(reset_during_handshake_fails_cleanly, stop_servers),
        cmocka_unit_test_teardown(eof_during_handshake_fails_cleanly, stop_servers),
        cmocka_unit_test_teardown(truncated_handshake_record_fails_cleanly, stop_servers),
        cmocka_unit_test_teardown(fatal_alert_from_the_server_is_named, stop_servers),
        cmocka_unit_test_teardown(plain_http_server_is_recognised, stop_servers),
        cmocka_unit_test_teardown(truncated_record_in_body_is_an_error_not_eof, stop_servers),
        cmocka_unit_test_teardown(peer_closing_without_close_notify_reads_as_eof, stop_servers),
        cmocka_unit_test_teardown(large_writev_survives_eagain_and_partial_writes, stop_servers),
        cmocka_unit_test_teardown(idle_connection_heap_stays_under_48_kib, stop_servers),
        cmocka_unit_test_teardown(session_cache_evicts_the_least_recently_used_of_1024,
                                  stop_servers),
    };
    return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
