/* fuzz_http_response.c: the response parser (http_resp_*, src/http.h).
 *
 * Input: byte 0 = flags (bit 0: a small header bound), byte 1 = how many
 * split points (0-7), then two bytes (little-endian) per split point, then
 * the response bytes.  For head_request 0 and 1, the response is parsed
 * twice: fed whole, and fed in pieces cut at the split points (taken modulo
 * its length); after the last byte, http_resp_eof unless the message was
 * complete or an error stopped it.  Both runs must agree exactly: the sign
 * of the outcome, the body bytes, status, complete, keep_alive, the bytes
 * consumed, and the captured headers.  Also: consumed never exceeds what
 * was fed, nothing reaches the body callback after complete, an error
 * always comes with a message.
 *
 * It found the header bound counting a split field name twice (fixed: heads
 * are now counted as received; regressions/http_response/ keeps the input),
 * and a bare CR inside a head, which loose llhttp took as the end of the
 * head, delivering the rest of the block as body when fed whole
 * (bare-cr-ends-head-early-in-llhttp; bare CRs are now rejected). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_SPLITS 7

struct body {
    unsigned char *p;
    size_t len, cap;     /* cap: the response's length, which a body cannot exceed */
    const struct http_resp *r;
};

struct run {
    int failed;          /* a feed or eof returned a negative code */
    long consumed;       /* bytes the parser took (until complete or error) */
    int status, complete, keep_alive, headers_done;
    struct body body;
    char *hdr[HH_COUNT];
    char err[256];
};

static void show(const char *name, const struct run *r)
{
    fprintf(stderr, "  %s: %s status %d headers_done %d complete %d keep_alive %d consumed %ld "
            "body %zu bytes%s%s\n", name, r->failed ? "error" : "ok", r->status, r->headers_done,
            r->complete, r->keep_alive, r->consumed, r->body.len, r->err[0] ? ": " : "", r->err);
}

static void die(const char *what, const struct run *a, const struct run *b, int head)
{
    fprintf(stderr, "fuzz_http_response: whole and split feeds disagree on %s (head_request %d)\n",
            what, head);
    show("whole", a);
    show("split", b);
    abort();
}

static int on_body(void *data, const char *chunk, size_t len)
{
    struct body *b = data;
    if (b->r->complete)
        abort(); /* body bytes after the message ended */
    if (len > b->cap - b->len)
        abort(); /* more body than response bytes */
    memcpy(b->p + b->len, chunk, len);
    b->len += len;
    return 0;
}

static void parse(struct run *out, const char *resp, size_t len, const size_t *cuts, int ncuts,
                  int head, size_t max_header)
{
    struct http_resp r;
    memset(out, 0, sizeof(*out));
    out->body.cap = len;
    out->body.p = malloc(len ? len : 1);
    if (!out->body.p)
        abort();
    out->body.r = &r;
    http_resp_init(&r, max_header, head, on_body, &out->body);
    size_t start = 0;
    for (int i = 0; i <= ncuts && !out->failed && !r.complete; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        long n = http_resp_feed(&r, resp + start, end - start);
        if (n < 0) {
            out->failed = 1;
            if (!r.err[0])
                abort(); /* an error without its message */
        } else {
            if ((size_t)n > end - start)
                abort();
            out->consumed += n;
            if ((size_t)n < end - start && !r.complete)
                abort(); /* a short count means the message ended */
        }
        start = end;
    }
    if (!out->failed && !r.complete && http_resp_eof(&r) < 0) {
        out->failed = 1;
        if (!r.err[0])
            abort();
    }
    out->status = r.status;
    out->complete = r.complete;
    out->keep_alive = r.keep_alive;
    out->headers_done = r.headers_done;
    memcpy(out->err, r.err, sizeof(out->err));
    for (int i = 0; i < HH_COUNT; i++) {
        out->hdr[i] = r.hdr[i];
        r.hdr[i] = NULL;
    }
    http_resp_free(&r);
    out->body.r = NULL;
}

static void run_free(struct run *r)
{
    free(r->body.p);
    for (int i = 0; i < HH_COUNT; i++)
        free(r->hdr[i]);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void compare(const struct run *a, const struct run *b, int head)
{
    if (a->failed != b->failed)
        die("the outcome (error or not)", a, b, head);
    if (a->status != b->status)
        die("status", a, b, head);
    if (a->headers_done != b->headers_done)
        die("headers_done", a, b, head);
    if (a->complete != b->complete)
        die("complete", a, b, head);
    if (a->keep_alive != b->keep_alive)
        die("keep_alive", a, b, head);
    if (!a->failed && a->consumed != b->consumed)
        die("bytes consumed", a, b, head);
    /* After an error, the body delivered before it may differ by where
     * the cut fell; without one it must be the same bytes. */
    if (!a->failed && (a->body.len != b->body.len || memcmp(a->body.p, b->body.p, a->body.len)))
        die("body bytes", a, b, head);
    for (int i = 0; i < HH_COUNT && !a->failed; i++)
        if ((a->hdr[i] == NULL) != (b->hdr[i] == NULL) ||
            (a->hdr[i] && strcmp(a->hdr[i], b->hdr[i]) != 0))
            die("a captured header", a, b, head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int small = data[0] & 1;
    int ncuts = data[1] % (MAX_SPLITS + 1);
    size_t pos = 2;
    uint16_t raw[MAX_SPLITS];
    for (int i = 0; i < ncuts; i++, pos += 2)
        raw[i] = pos + 1 < size ? (uint16_t)(data[pos] | data[pos + 1] << 8) : 0;
    if (pos > size)
        pos = size;
    const char *resp = (const char *)data + pos;
    size_t len = size - pos;
    size_t cuts[MAX_SPLITS];
    for (int i = 0; i < ncuts; i++)
        cuts[i] = len ? raw[i] % (len + 1) : 0;
    qsort(cuts, (size_t)ncuts, sizeof(cuts[0]), cmp_size);
    size_t max_header = small ? 256 : 65536;
    for (int head = 0; head <= 1; head++) {
        struct run whole, split;
        parse(&whole, resp, len, NULL, 0, head, max_header);
        parse(&split, resp, len, cuts, ncuts, head, max_header);
        compare(&whole, &split, head);
        run_free(&whole);
        run_free(&split);
    }
    return 0;
}
