/* fuzz_h2_frames.c: the HTTP/2 exchange (src/h2.c over nghttp2) fed a
 * server's bytes.
 *
 * Input: byte 0 = how many streams to open (1 + b % 4; bit 4: the requests
 * carry a 100-byte body), the rest = what the server sends (its preface,
 * SETTINGS and any frames, as they come).  A real session of a real client
 * reads them from a socketpair whose far end is then shut for writing, so
 * the session sees them, then EOF.  Properties: every stream ends exactly
 * once (end or fail, with a message), nothing reaches a stream after that,
 * the response bytes of a stream start with an HTTP/1.1 status line, and
 * everything is freed (ASan, LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "h2.h"

#define MAX_STREAMS 4
#define BODY_BYTES 100

struct owner {
    struct h2_stream *st;
    int ended;          /* end or fail seen */
    size_t bytes, sent_body;
    int sent;
};

static void bad(const char *what)
{
    fprintf(stderr, "fuzz_h2_frames: %s\n", what);
    abort();
}

static void ev_sent(void *o)
{
    struct owner *w = o;
    if (w->ended)
        bad("sent after the end");
    w->sent = 1;
}

static void ev_bytes(void *o, const char *buf, size_t len)
{
    struct owner *w = o;
    if (w->ended)
        bad("bytes after the end");
    if (w->bytes == 0 && (len < 9 || memcmp(buf, "HTTP/1.1 ", 9) != 0))
        bad("a stream's response does not start with a status line");
    w->bytes += len;
}

static void ev_end(void *o)
{
    struct owner *w = o;
    if (w->ended++)
        bad("two ends");
    w->st = NULL;
}

static void ev_fail(void *o, int err, int requeue, const char *msg)
{
    struct owner *w = o;
    (void)requeue;
    if (w->ended++)
        bad("an end after the end");
    if (err >= 0 || !msg || !*msg)
        bad("a failure without a code or message");
    w->st = NULL;
}

static ssize_t ev_body(void *o, char *buf, size_t len)
{
    struct owner *w = o;
    size_t left = BODY_BYTES - w->sent_body;
    if (len > left)
        len = left;
    memset(buf, 'b', len);
    w->sent_body += len;
    return (ssize_t)len;
}

static const struct h2_events events = {ev_sent, ev_bytes, ev_end, ev_fail, ev_body};

static const char head[] = "GET /x HTTP/1.1\r\nHost: fuzz.test\r\nUser-Agent: fuzz\r\n"
                           "Accept: */*\r\nConnection: keep-alive\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    int nstreams = 1 + data[0] % MAX_STREAMS, with_body = (data[0] & 0x10) != 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    size_t off = 1;
    while (off < size) { /* 64 KiB fits a unix socket's buffer */
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);

    vl_loop *loop = vl_loop_new();
    vl_client_opts o;
    vl_client_opts_init(&o);
    o.max_header_bytes = 4096;
    vl_client *cl = NULL;
    char err[256];
    if (!loop || vl_client_new(loop, &o, &cl, err, sizeof(err)) < 0)
        bad("no client");
    struct host *h = pool_host_get(&cl->pool, "http://fuzz.test:80");
    if (!h || !pool_reserve(&cl->pool, h))
        bad("no pool slot");
    struct conn *c = pool_conn_new(&cl->pool, h, sv[0], "fuzz");
    struct h2_session *s = c ? h2_session_new(cl, c, 0) : NULL;
    if (!s)
        bad("no session");
    struct owner w[MAX_STREAMS] = {0};
    for (int i = 0; i < nstreams; i++) {
        char msg[128];
        w[i].st = h2_stream_start(s, head, sizeof(head) - 1, with_body, &events, &w[i], msg,
                                  sizeof(msg));
        if (!w[i].st)
            bad(msg);
    }
    /* the session closes at EOF at the latest; the bound only stops a stall */
    for (int turn = 0; turn < 64; turn++) {
        int open = 0;
        for (int i = 0; i < nstreams; i++)
            open += !w[i].ended;
        if (!open)
            break;
        vl_loop_run_once(loop, 0);
    }
    for (int i = 0; i < nstreams; i++)
        if (!w[i].ended)
            h2_stream_detach(w[i].st); /* as a fetch's timeout would */
    pool_host_put(&cl->pool, h);
    vl_client_free(cl);
    vl_loop_free(loop);
    close(sv[1]);
    return 0;
}
