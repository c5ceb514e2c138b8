/* test_review.c: review regressions in the pure parts.  The response parser
 * fed every response in two pieces split at every byte, with the next
 * response pipelined behind it: the body, the bytes consumed and the
 * completion must not depend on where a read ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode.h"
#include "http.h"
#include "volley.h"

struct body {
    char buf[4096];
    size_t len;
};

static int collect(void *data, const char *chunk, size_t len)
{
    struct body *b = data;
    if (b->len + len > sizeof(b->buf))
        return -1;
    memcpy(b->buf + b->len, chunk, len);
    b->len += len;
    return 0;
}

/* Feed raw[0..split) then the rest; returns the bytes consumed in all. */
static long feed_split(struct http_resp *r, const char *raw, size_t len, size_t split)
{
    long a = http_resp_feed(r, raw, split);
    if (a < 0)
        fail_msg("split %zu: first piece failed: %s", split, r->err);
    if (r->complete)
        return a;
    long b = http_resp_feed(r, raw + split, len - split);
    if (b < 0)
        fail_msg("split %zu: second piece failed: %s", split, r->err);
    return a + b;
}

static void check_every_split(const char *resp, const char *want_body)
{
    static const char next[] = "HTTP/1.1 500 Next\r\nContent-Length: 4\r\n\r\nnope";
    char raw[2048];
    size_t rlen = strlen(resp);
    snprintf(raw, sizeof(raw), "%s%s", resp, next);
    size_t len = strlen(raw);
    for (size_t split = 0; split <= len; split++) {
        struct body b = {.len = 0};
        struct http_resp r;
        http_resp_init(&r, 65536, 0, collect, &b);
        long used = feed_split(&r, raw, len, split);
        if (!r.complete)
            fail_msg("split %zu: response not complete", split);
        if (used != (long)rlen)
            fail_msg("split %zu: consumed %ld bytes, the response is %zu", split, used, rlen);
        if (b.len != strlen(want_body) || memcmp(b.buf, want_body, b.len) != 0)
            fail_msg("split %zu: body '%.*s'", split, (int)b.len, b.buf);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
    }
}

static void chunked_with_extensions_parses_the_same_at_every_split(void **state)
{
    (void)state;
    check_every_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;name=value\r\nhello\r\n6;a=1;b=2\r\n world\r\n"
                      "0;last\r\nX-Trailer: yes\r\n\r\n",
                      "hello world");
}

static void chunked_after_an_interim_response_parses_the_same_at_every_split(void **state)
{
    (void)state;
    check_every_split("HTTP/1.1 100 Continue\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3;x=y\r\nabc\r\n0\r\n\r\n",
                      "abc");
}

static void empty_chunked_body_parses_the_same_at_every_split(void **state)
{
    (void)state;
    check_every_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0;e=1\r\n\r\n", "");
}

static void content_length_parses_the_same_at_every_split(void **state)
{
    (void)state;
    check_every_split("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello");
}

/* ------------------------------------------------------------- decoding */

struct count {
    size_t n;
};

static int count_out(void *data, const char *chunk, size_t len)
{
    (void)chunk;
    ((struct count *)data)->n += len;
    return 0;
}

/* Compress n bytes of 'a' with windowBits (raw: -15, zlib: 15, gzip: 31). */
static size_t squeeze(size_t n, int bits, unsigned char *out, size_t cap)
{
    unsigned char *in = malloc(n);
    assert_non_null(in);
    memset(in, 'a', n);
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, bits, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    free(in);
    return len;
}

/* Each stream fed whole, in one call: when the last input byte is used up
 * while the 16 KiB output chunk is full, the output zlib still holds must
 * come out too, not be lost (and the stream called truncated). */
static void highly_compressed_streams_are_decoded_whole(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *encoding;
        int bits;
    } kinds[] = {{"gzip", "gzip", 31}, {"zlib deflate", "deflate", 15}, {"raw deflate", "deflate", -15}};
    unsigned char comp[65536];
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (size_t n = 1000; n <= 200000; n += 997) {
            size_t clen = squeeze(n, kinds[k].bits, comp, sizeof(comp));
            struct decoder d;
            struct count c = {0};
            char err[256] = "";
            assert_int_equal(decoder_init(&d, kinds[k].encoding, err, sizeof(err)), 0);
            int rc = decoder_feed(&d, (const char *)comp, clen, count_out, &c, err, sizeof(err));
            if (rc == 0)
                rc = decoder_finish(&d, err, sizeof(err));
            decoder_free(&d);
            if (rc != 0 || c.n != n)
                fail_msg("%s of %zu bytes ('a' x n, %zu compressed): rc %d (%s), decoded %zu",
                         kinds[k].name, n, clen, rc, err, c.n);
        }
    }
}

/* --------------------------------------------- cancel from a body callback */

#define BIG_BODY_BYTES (1024 * 1024)

/* A child process that answers one request with a 1 MiB body, then exits. */
static pid_t serve_big_body(int *port, int gzip)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a stuck test */
        int c = accept(ls, NULL, NULL);
        char req[4096];
        if (c < 0 || read(c, req, sizeof(req)) <= 0)
            _exit(1);
        static unsigned char body[BIG_BODY_BYTES + 1024];
        size_t blen = BIG_BODY_BYTES;
        if (gzip)
            blen = squeeze(BIG_BODY_BYTES, 31, body, sizeof(body)); /* 'a' x 1 MiB, ~1 KiB */
        else
            memset(body, 'b', blen);
        char head[160];
        int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n",
                         gzip ? "Content-Encoding: gzip\r\n" : "", blen);
        if (write(c, head, (size_t)n) != n)
            _exit(1);
        for (size_t off = 0; off < blen;) {
            ssize_t w = write(c, body + off, blen - off);
            if (w <= 0)
                break; /* the client went away: expected */
            off += (size_t)w;
        }
        _exit(0);
    }
    close(ls);
    return pid;
}

struct cancel_case {
    vl_fetch *fetch;
    int body_calls_after_cancel;
    int canceled;
    int results;
    int err;
};

static int cancel_on_first_chunk(void *data, const char *chunk, size_t len)
{
    struct cancel_case *cc = data;
    (void)chunk;
    (void)len;
    if (cc->canceled) {
        cc->body_calls_after_cancel++;
        return 0;
    }
    cc->canceled = 1;
    vl_fetch_cancel(cc->fetch);
    return 0;
}

static void on_cancel_result(const vl_result *r, void *data)
{
    struct cancel_case *cc = data;
    cc->results++;
    cc->err = r->err;
}

/* A body callback that cancels its own fetch: the fetch ends there, once,
 * with VL_ECANCELED; no more body bytes reach the callback and nothing
 * touches the connection it gave back. */
static void cancel_from_body_callback(int gzip)
{
    int port;
    pid_t pid = serve_big_body(&port, gzip);
    vl_loop *loop = vl_loop_new();
    assert_non_null(loop);
    vl_client_opts o;
    vl_client_opts_init(&o);
    o.read_timeout_s = 5;
    vl_client *cl;
    char err[256];
    assert_int_equal(vl_client_new(loop, &o, &cl, err, sizeof(err)), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", port);
    struct cancel_case cc = {0};
    vl_request req = {.url = url, .on_body = cancel_on_first_chunk, .body_data = &cc};
    assert_int_equal(vl_fetch_start(cl, &req, on_cancel_result, &cc, &cc.fetch), 0);
    for (int i = 0; i < 2000 && cc.results == 0; i++)
        assert_true(vl_loop_run_once(loop, 50) >= 0);
    assert_int_equal(cc.results, 1);
    assert_int_equal(cc.err, -VL_ECANCELED);
    assert_int_equal(cc.body_calls_after_cancel, 0);
    vl_client_free(cl);
    vl_loop_free(loop);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void body_callback_may_cancel_its_own_fetch(void **state)
{
    (void)state;
    cancel_from_body_callback(0);
}

/* The same while a gzip body is being inflated: the decoder the cancel
 * freed must not be used for the rest of that input. */
static void body_callback_may_cancel_its_own_fetch_while_decoding(void **state)
{
    (void)state;
    cancel_from_body_callback(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chunked_with_extensions_parses_the_same_at_every_split),
        cmocka_unit_test(chunked_after_an_interim_response_parses_the_same_at_every_split),
        cmocka_unit_test(empty_chunked_body_parses_the_same_at_every_split),
        cmocka_unit_test(content_length_parses_the_same_at_every_split),
        cmocka_unit_test(highly_compressed_streams_are_decoded_whole),
        cmocka_unit_test(body_callback_may_cancel_its_own_fetch),
        cmocka_unit_test(body_callback_may_cancel_its_own_fetch_while_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
