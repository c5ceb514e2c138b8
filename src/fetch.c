/* fetch.c: one request as a state machine driven by readiness events.
 *
 *   QUEUED -> RESOLVING -> CONNECTING -> TLS_HANDSHAKE -> SENDING
 *          -> AWAIT_HEADERS -> BODY -> DONE | FAILED
 *
 * A pooled connection goes from QUEUED straight to SENDING.  Every change
 * goes through set_state(), which time-stamps it, arms that phase's timer
 * and traces it; every exit goes through finish(), which releases the slot
 * and the connection exactly once.  The result is delivered from the loop's
 * deferred phase, never on the caller's stack. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "decode.h"
#include "h2.h"
#include "http.h"
#include "tunnel.h"
#include "url.h"

enum fstate {
    F_QUEUED,
    F_RESOLVING,
    F_CONNECTING,
    F_TUNNEL,            /* the proxy stage (tunnel.c): TLS to the proxy, CONNECT, SOCKS */
    F_TLS_HANDSHAKE,
    F_SENDING,
    F_AWAIT_HEADERS,
    F_BODY,
    F_RETRY_WAIT,
    F_DONE,
    F_FAILED
};

static const char *const state_names[] = {
    "QUEUED", "RESOLVING", "CONNECTING", "TUNNEL", "TLS_HANDSHAKE", "SENDING",
    "AWAIT_HEADERS", "BODY", "RETRY_WAIT", "DONE", "FAILED",
};

#define SEND_CHUNK_BYTES 16384
#define STALE_RETRY_MAX 3
#define READS_PER_EVENT 16

struct vl_fetch {
    vl_client *cl;
    uint64_t id;
    enum fstate state;
    struct sched_item item;         /* its host's queue and the window (scheduler.c) */
    struct list_node clink;         /* host->connecting while RESOLVING/CONNECTING */
    vl_result_cb *cb;
    void *cb_data;

    /* the request, owned copies */
    char *url_str;
    struct url url;
    int url_ok;
    char *method;
    char **headers;
    size_t nheaders;
    char *body;
    size_t body_len;
    char *body_file;
    char *output_file;
    vl_body_cb *on_body;
    void *body_data;
    int64_t index;
    void *user;

    /* on the wire */
    char *head;
    size_t head_len, head_off;
    uint64_t body_total, body_off;  /* request body bytes to send / sent */
    int body_fd;
    char *sendbuf;
    size_t send_len, send_off;
    struct host *host;
    struct conn *conn;
    int reserved;                   /* holds a pool slot before its conn exists */
    struct connector *connector;
    struct dns_query *dq;
    int began;                      /* left the queue once: timers set, t_start */
    int no_retry;                   /* the failure at hand must not be retried */
    int tls_probe;                  /* this fetch's handshake will give its host a session */
    int reused;
    int stale_retried;
    uint64_t exchange_bytes;        /* response bytes read in this exchange (t_first is
                                     * the first exchange's, redirects included) */
    int sink_err;                   /* why the body sink refused bytes */
    struct http_resp resp;
    struct h2_stream *h2s;          /* the exchange's h2 stream, when over HTTP/2 */
    int http_version;               /* of the last exchange: 0 none, 1 HTTP/1.1, 2 HTTP/2 */
    int h2_requeues;                /* sent again because an h2 server never processed it */
    int h2_maybe_resent;            /* sent again after a connection died with no answer */

    /* the response body */
    uint64_t bytes;
    int out_fd;
    struct decoder dec;
    int dec_checked;                /* dec chosen for this response */
    int status_retry;               /* this response's status: 0 not asked yet, 1 retry, -1 final */
    uint64_t status_retry_us;       /* the delay chosen with it */
    vl_timer deadline_timer;        /* --retry-max-time, over all attempts */

    vl_timer phase_timer, total_timer;
    uint64_t t_submit, t_state, t_start, t_dns0, t_dns, t_conn, t_tls, t_sent, t_first, t_end;
    uint64_t last_io;

    int err;
    char errmsg[512];
    int redirects, attempts;

    /* the raw-bytes tap (vl_request.on_wire): one exchange open at a time */
    vl_wire_cb *on_wire;
    void *wire_data;
    int wire_open;
    int wire_err;                   /* the error finish() was given */
    uint64_t wire_sent, wire_recv;
    size_t pauth_off, pauth_len;    /* our Proxy-Authorization line in head: kept from the tap */
    /* the route (proxy.c): direct, or through proxy */
    const struct proxy *proxy;
    union vl_sockaddr target_addr;  /* socks4/socks5: the target, resolved here first */
    int target_resolved;
    uint64_t t_proxy;               /* the tunnel was up */
};

static void on_io(vl_loop *loop, int fd, int events, void *data);
static void finish(vl_fetch *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void try_acquire(vl_fetch *f);
static void resolve_hop(vl_fetch *f);
static struct host *route_host(vl_fetch *f);
static void do_send(vl_fetch *f);
static int transient_error(const vl_fetch *f, int err);
static int maybe_retry(vl_fetch *f);
static void reset_response(vl_fetch *f);
static void end_tls_probe(vl_fetch *f);
static void end_attempt(vl_fetch *f, int reusable, int failed);
static void upgrade_to_h2(vl_fetch *f);
static void start_h2_exchange(vl_fetch *f, struct h2_session *s);

static uint64_t now_us(const vl_fetch *f) { return loop_now_us(f->cl->loop); }
static double ms_between(uint64_t a, uint64_t b) { return (double)(b - a) / 1000.0; }

/* ------------------------------------------------------- the raw-bytes tap
 * vl_request.on_wire (volley.h): an exchange opens when its request is about
 * to be written and ends when its connection is released (release_conn), on
 * every path: done, redirect, retry, stale retry, failure. */

static void wire_bytes(vl_fetch *f, int type, const char *p, size_t len)
{
    if (!f->wire_open || !len)
        return;
    vl_wire_event ev = {.type = type, .data = p, .len = len};
    if (type == VL_WIRE_SENT)
        f->wire_sent += len;
    else if (type == VL_WIRE_RECV)
        f->wire_recv += len;
    f->on_wire(f->wire_data, &ev);
}

static void wire_start(vl_fetch *f)
{
    if (!f->on_wire)
        return;
    vl_wire_event ev = {.type = VL_WIRE_START, .url = f->url.href,
                        .peer = f->conn ? f->conn->peer : h2_stream_peer(f->h2s)};
    f->wire_open = 1;
    f->wire_sent = f->wire_recv = 0;
    f->on_wire(f->wire_data, &ev);
}

/* Head bytes [from, from + len) to the tap, without the proxy's
 * credentials: a WARC file (or any tap) must not hold them. */
static void wire_head(vl_fetch *f, size_t from, size_t len)
{
    size_t a = f->pauth_off, b = f->pauth_off + f->pauth_len, to = from + len;
    if (!f->pauth_len || to <= a || from >= b) {
        wire_bytes(f, VL_WIRE_SENT, f->head + from, len);
        return;
    }
    if (from < a)
        wire_bytes(f, VL_WIRE_SENT, f->head + from, a - from);
    if (to > b)
        wire_bytes(f, VL_WIRE_SENT, f->head + b, to - b);
}

/* The written prefix (w bytes) of iov. */
static void wire_sent(vl_fetch *f, const struct iovec *iov, int n, size_t w)
{
    for (int i = 0; i < n && w; i++) {
        size_t k = iov[i].iov_len < w ? iov[i].iov_len : w;
        if (f->head && iov[i].iov_base == f->head + f->head_off)
            wire_head(f, f->head_off, k);
        else
            wire_bytes(f, VL_WIRE_SENT, iov[i].iov_base, k);
        w -= k;
    }
}

static void wire_end(vl_fetch *f)
{
    if (!f->wire_open)
        return;
    f->wire_open = 0;
    vl_wire_event ev = {.type = VL_WIRE_END, .complete = f->resp.complete, .err = f->wire_err,
                        .sent_bytes = f->wire_sent, .recv_bytes = f->wire_recv};
    f->on_wire(f->wire_data, &ev);
}

/* ------------------------------------------------------------ bookkeeping */

static void set_state(vl_fetch *f, enum fstate s)
{
    vl_client *cl = f->cl;
    uint64_t now = now_us(f);
    if (cl->opts.trace) {
        char fd[24] = "";
        if (f->conn)
            vl_fmt(fd, sizeof(fd), " fd=%d", f->conn->fd);
        client_trace(cl, "fetch#%llu %s -> %s%s +%.1fms", (unsigned long long)f->id,
                     state_names[f->state], state_names[s], fd, ms_between(f->t_state, now));
    }
    int making = s == F_RESOLVING || s == F_CONNECTING;
    if (making && !list_linked(&f->clink))
        list_insert_tail(&f->host->connecting, &f->clink);
    else if (!making && list_linked(&f->clink))
        list_remove(&f->clink);
    /* Only a QUEUED fetch waits in its host's queue: a retry scheduled
     * while waiting there must not leave a stale link. */
    if (s != F_QUEUED && list_linked(&f->item.link))
        sched_enter(&cl->sched, &f->item);
    f->state = s;
    f->t_state = now;
    switch (s) {
    case F_QUEUED: /* waiting for a slot (after a redirect or a stale retry) is no phase */
        vl_timer_stop(&f->phase_timer);
        break;
    case F_RESOLVING: /* --connect-timeout covers DNS + TCP + TLS */
        timer_start_us(&f->phase_timer, (uint64_t)(cl->opts.connect_timeout_s * 1e6));
        break;
    case F_SENDING: /* --read-timeout: no byte moved while a response is due */
        f->last_io = now;
        timer_start_us(&f->phase_timer, (uint64_t)(cl->opts.read_timeout_s * 1e6));
        break;
    case F_DONE:
    case F_FAILED:
        vl_timer_stop(&f->phase_timer);
        vl_timer_stop(&f->total_timer);
        break;
    default:
        break;
    }
}

static void on_phase_timeout(vl_loop *loop, vl_timer *t, void *data)
{
    vl_fetch *f = data;
    const vl_client_opts *o = &f->cl->opts;
    (void)loop;
    if (f->state == F_RETRY_WAIT) {
        set_state(f, F_QUEUED);
        sched_queue(&f->cl->sched, &f->item, 1); /* first in line at its host */
        return;
    }
    if (f->state <= F_TLS_HANDSHAKE) {
        finish(f, -VL_ETIMEOUT, "timeout: connect after %.1f s in %s", o->connect_timeout_s,
               state_names[f->state]);
        return;
    }
    /* The read timer is lazy: bytes only stamp last_io; re-arm for the rest. */
    uint64_t limit = (uint64_t)(o->read_timeout_s * 1e6), idle = now_us(f) - f->last_io;
    if (idle < limit) {
        timer_start_us(t, limit - idle);
        return;
    }
    if (f->h2s)
        h2_stream_starved(f->h2s);
    finish(f, -VL_ETIMEOUT, "timeout: read after %.1f s in %s", o->read_timeout_s,
           state_names[f->state]);
}

static void on_total_timeout(vl_loop *loop, vl_timer *t, void *data)
{
    vl_fetch *f = data;
    (void)loop;
    (void)t;
    finish(f, -VL_ETIMEOUT, "timeout: total after %.1f s in %s", f->cl->opts.timeout_s,
           state_names[f->state]);
}

/* ------------------------------------------------------------- the result */

static double phase_ms(uint64_t from, uint64_t to) { return (from && to) ? ms_between(from, to) : -1; }

static void deliver(vl_loop *loop, void *data)
{
    vl_fetch *f = data;
    vl_client *cl = f->cl;
    (void)loop;
    vl_result r = {0};
    r.index = f->index;
    r.url = f->url_str;
    r.ok = f->err == 0;
    r.status = f->resp.headers_done ? f->resp.status : 0;
    r.bytes = f->bytes;
    r.time_ms = ms_between(f->t_submit, f->t_end);
    r.redirects = f->redirects;
    r.final_url = f->t_start ? f->url.href : NULL; /* normalised: what was requested */
    r.err = f->err;
    r.error = f->err ? f->errmsg : NULL;
    r.file = (f->output_file && f->err == 0) ? f->output_file : NULL;
    r.timings.queue_ms = f->t_start ? ms_between(f->t_submit, f->t_start) : ms_between(f->t_submit, f->t_end);
    r.timings.dns_ms = phase_ms(f->t_dns0, f->t_dns);
    r.timings.connect_ms = phase_ms(f->t_dns, f->t_conn);
    r.timings.tls_ms = phase_ms(f->t_proxy ? f->t_proxy : f->t_conn, f->t_tls);
    r.timings.proxy_ms = phase_ms(f->t_conn, f->t_proxy);
    r.timings.send_ms = phase_ms(f->t_start, f->t_sent);
    r.timings.ttfb_ms = phase_ms(f->t_start, f->t_first);
    r.timings.total_ms = f->t_start ? ms_between(f->t_start, f->t_end) : 0;
    r.reused = f->reused;
    r.attempts = f->attempts;
    r.user = f->user;
    r.throttled_ms = (double)f->item.throttled_us / 1000.0;
    r.http_version = f->http_version == 2 ? "2" : f->http_version == 1 ? "1.1" : NULL;
    r.content_type = f->resp.headers_done ? f->resp.hdr[HH_CONTENT_TYPE] : NULL;
    f->cb(&r, f->cb_data);

    cl->nfetches--;
    http_resp_free(&f->resp);
    decoder_free(&f->dec);
    url_free(&f->url);
    for (size_t i = 0; i < f->nheaders; i++)
        free(f->headers[i]);
    free(f->headers);
    free(f->url_str);
    free(f->method);
    free(f->body);
    free(f->body_file);
    free(f->output_file);
    free(f->head);
    free(f->sendbuf);
    free(f);
}

/* --------------------------------------------------------------- releasing */

static void close_output(vl_fetch *f, int failed)
{
    if (f->out_fd >= 0) {
        close(f->out_fd);
        f->out_fd = -1;
        if (failed)
            unlink(f->output_file); /* no partial files of failed fetches */
    }
}

static void close_body_source(vl_fetch *f)
{
    if (f->body_fd >= 0) {
        close(f->body_fd);
        f->body_fd = -1;
    }
}

/* Give the connection (or the reserved slot) back to the pool. */
static void release_conn(vl_fetch *f, int reusable)
{
    struct pool *p = &f->cl->pool;
    wire_end(f); /* every exchange ends with its connection */
    if (f->h2s) {
        h2_stream_detach(f->h2s); /* the session keeps the connection */
        f->h2s = NULL;
    }
    if (f->conn) {
        struct conn *c = f->conn;
        f->conn = NULL;
        c->owner = NULL;
        pool_release(p, c, reusable); /* re-points or stops the fd's watcher */
    } else if (f->reserved) {
        pool_unreserve(p, f->host);
    }
    f->reserved = 0;
}

static void adopt_conn(vl_fetch *f, struct conn *c);

/* Late binding (as browsers' socket pools do): a fetch still resolving or
 * connecting takes a connection to its host that came free meanwhile, and
 * drops its own attempt.  A connect that is slow (a SYN dropped by a full
 * accept queue costs 1 s) then costs nothing. */
static void adopt_idle(vl_loop *loop, void *data)
{
    vl_fetch *f = data;
    (void)loop;
    if (f->state != F_RESOLVING && f->state != F_CONNECTING)
        return;
    if (f->stale_retried)
        return; /* it connects anew because an idle connection just died */
    struct conn *c = pool_take_idle(&f->cl->pool, f->host);
    if (!c)
        return;
    /* drop the lookup or connect, the reserved slot, and a TLS probe: this
     * fetch resumes nothing now, so the others may go */
    end_attempt(f, 0, 0);
    client_trace(f->cl, "fetch#%llu takes idle connection #%llu instead of its own attempt",
                 (unsigned long long)f->id, (unsigned long long)c->id);
    adopt_conn(f, c);
}

/* The first handshake to an https host without a cached session is done
 * (or failed): the fetches held back for it may go, and resume. */
static void end_tls_probe(vl_fetch *f)
{
    if (!f->tls_probe)
        return;
    f->tls_probe = 0;
    f->host->tls_probing = 0;
    sched_kick(&f->cl->sched, f->host);
}

/* Should f wait for another fetch's first handshake to this host?  Opening
 * N connections at once to a new host costs N full handshakes; waiting one
 * handshake for the session costs 1 full and N-1 resumed ones (RFC 5077),
 * a fraction of the CPU on both ends. */
/* --http2-prior-knowledge on an http:// URL: h2c to the origin, directly
 * or through a tunnel (SOCKS), never to a proxy that forwards HTTP/1.1. */
static int h2c_by_prior_knowledge(const vl_fetch *f)
{
    return !f->url.https && f->cl->opts.http_version == VL_HTTP_2_PRIOR &&
           !(f->proxy && !proxy_tunnels(f->proxy, &f->url));
}

static int wait_for_session(vl_fetch *f)
{
    /* A host that speaks h2 (or will, by prior knowledge) gets one new
     * connection at a time: its streams serve the fetches waiting here. */
    if (f->cl->opts.http_version != VL_HTTP_1_1 && (f->host->h2_seen || h2c_by_prior_knowledge(f))) {
        if (f->host->tls_probing)
            return 1;
        f->host->tls_probing = 1;
        f->tls_probe = 1;
        return 0;
    }
    if (!f->url.https || f->cl->tls_failed)
        return 0;
    struct tls_ctx *tls = client_tls(f->cl);
    char key[300];
    vl_fmt(key, sizeof(key), "%s:%d", f->url.host, f->url.port);
    if (!tls || tls_has_session(tls, key))
        return 0;
    if (f->host->tls_probing)
        return 1;
    f->host->tls_probing = 1;
    f->tls_probe = 1;
    return 0;
}

/* A connection or slot of h came free: the fetches queued there go in
 * turn, or else the oldest fetch still connecting may take it over; both
 * from the deferred phase so that failures never recurse. */
static void kick_host(vl_client *cl, struct host *h)
{
    if (sched_queued(h))
        sched_kick(&cl->sched, h);
    else if (!list_empty(&h->idle) && !list_empty(&h->connecting))
        vl_defer(cl->loop, adopt_idle, container_of(h->connecting.next, vl_fetch, clink));
}

/* Stop whatever the current attempt holds: lookup, connect, connection,
 * output file (removed when the attempt failed). */
static void end_attempt(vl_fetch *f, int reusable, int failed)
{
    if (f->dq) {
        dns_cancel(f->dq);
        f->dq = NULL;
    }
    if (f->connector) {
        connector_cancel(f->connector);
        f->connector = NULL;
    }
    if (f->conn && reusable)
        f->conn->requests++;
    release_conn(f, reusable);
    close_output(f, failed);
    end_tls_probe(f);
}

/* ----------------------------------------------------------------- retries */

#define RETRY_BACKOFF_MAX_US 30000000u   /* exponential backoff stops growing at 30 s */
#define RETRY_AFTER_MAX_US 300000000u    /* a server's Retry-After is honoured up to 5 min */

static const char *effective_method(const vl_fetch *f)
{
    return f->method ? f->method : ((f->body || f->body_file) ? "POST" : "GET");
}

/* RFC 9110 §9.2.2: only idempotent requests are retried. */
static int idempotent(const vl_fetch *f)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    const char *m = effective_method(f);
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (strcmp(m, ok[i]) == 0)
            return 1;
    return 0;
}

static int transient_status(int s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Failures worth another attempt: the network's, not the request's. */
static int transient_error(const vl_fetch *f, int err)
{
    if (f->no_retry || f->cl->opts.retry == 0)
        return 0;
    if (err == -VL_ECONNECT || err == -VL_ETIMEOUT)
        return 1;
    if (err == -VL_EDNS)
        return strstr(f->errmsg, "timeout") != NULL;
    /* a reset or an early close before the response was complete */
    return (err == -VL_EIO || err == -VL_EHTTP) && (f->conn || f->h2s) && !f->resp.complete &&
           (strstr(f->errmsg, "reset") || strstr(f->errmsg, "closed before"));
}

static uint64_t backoff_us(const vl_fetch *f)
{
    const vl_client_opts *o = &f->cl->opts;
    /* A server's Retry-After is a minimum, as in curl: the larger wins. */
    int64_t ra = http_retry_after_us(f->resp.headers_done ? f->resp.hdr[HH_RETRY_AFTER] : NULL,
                                     time(NULL));
    if (ra > (int64_t)RETRY_AFTER_MAX_US)
        ra = RETRY_AFTER_MAX_US;
    if (o->retry_delay_s > 0) {
        uint64_t fixed = (uint64_t)(o->retry_delay_s * 1e6);
        return ra > (int64_t)fixed ? (uint64_t)ra : fixed;
    }
    if (ra >= 0)
        return (uint64_t)ra;
    /* 1 s, 2 s, 4 s ... with "equal jitter": half fixed, half random, so
     * many fetches failing together do not come back together. */
    uint64_t base = 1000000u << (f->attempts - 1 < 5 ? f->attempts - 1 : 5);
    if (base > RETRY_BACKOFF_MAX_US)
        base = RETRY_BACKOFF_MAX_US;
    return base / 2 + (uint64_t)rand() % (base / 2 + 1);
}

/* Whether the options allow another attempt, and after how long. */
static int retry_allowed(const vl_fetch *f, uint64_t *delay)
{
    const vl_client *cl = f->cl;
    if (f->attempts < 1 || f->attempts > cl->opts.retry || !idempotent(f))
        return 0;
    *delay = backoff_us(f);
    return !(cl->opts.retry_max_time_s > 0 &&
             now_us(f) + *delay - f->t_submit > (uint64_t)(cl->opts.retry_max_time_s * 1e6));
}

static void schedule_retry(vl_fetch *f, uint64_t delay);

/* Schedule another attempt if the options allow it.  1 when scheduled. */
static int maybe_retry(vl_fetch *f)
{
    uint64_t delay;
    if (!retry_allowed(f, &delay))
        return 0;
    schedule_retry(f, delay);
    return 1;
}

/* A transient status (503, 429, ...) is retried or final: decided once,
 * when its head is complete, so its body can be dropped like a redirect's
 * (the sinks see only the body of the response that is the result). */
static int status_retry(vl_fetch *f)
{
    if (!f->status_retry)
        f->status_retry = transient_status(f->resp.status) && f->cl->opts.retry && !f->no_retry &&
                                  retry_allowed(f, &f->status_retry_us)
                              ? 1
                              : -1;
    return f->status_retry > 0;
}

static void schedule_retry(vl_fetch *f, uint64_t delay)
{
    vl_client *cl = f->cl;
    client_trace(cl, "fetch#%llu attempt %d failed (%s); retry %d/%d in %.0f ms",
                 (unsigned long long)f->id, f->attempts,
                 f->errmsg[0] ? f->errmsg : "retryable status", f->attempts, cl->opts.retry,
                 (double)delay / 1000.0);
    end_attempt(f, f->resp.complete && f->resp.keep_alive, 1);
    vl_timer_stop(&f->total_timer);
    f->errmsg[0] = '\0';
    reset_response(f);
    f->attempts++;
    f->reused = 0;
    set_state(f, F_RETRY_WAIT);
    sched_leave(&cl->sched, &f->item); /* a delay makes no progress: out of the window */
    kick_host(cl, f->host); /* its slot is free for the whole delay */
    timer_start_us(&f->phase_timer, delay); /* a loop timer: the loop waits for it */
}

static void on_deadline(vl_loop *loop, vl_timer *t, void *data)
{
    vl_fetch *f = data;
    (void)loop;
    (void)t;
    f->no_retry = 1;
    finish(f, -VL_ETIMEOUT, "timeout: retry-max-time after %.1f s in %s",
           f->cl->opts.retry_max_time_s, state_names[f->state]);
}

static void finish(vl_fetch *f, int err, const char *fmt, ...)
{
    vl_client *cl = f->cl;
    assert(f->state != F_DONE && f->state != F_FAILED);
    f->wire_err = err;
    if (err && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
        va_end(ap);
    }
    if (err && transient_error(f, err) && maybe_retry(f))
        return;
    f->err = err;
    sched_leave(&cl->sched, &f->item);
    if (f->dq) {
        dns_cancel(f->dq);
        f->dq = NULL;
    }
    end_attempt(f, !err && f->resp.complete && f->resp.keep_alive, err != 0);
    close_body_source(f);
    vl_timer_stop(&f->deadline_timer);
    /* the decoder is freed in deliver: finish may run inside it (a body
     * callback that cancels), with its layers still on the stack */
    f->t_end = now_us(f);
    set_state(f, err ? F_FAILED : F_DONE);
    if (f->host) {
        kick_host(cl, f->host);
        pool_host_put(&cl->pool, f->host);
        f->host = NULL;
    }
    vl_defer(cl->loop, deliver, f);
}

/* ----------------------------------------------------------------- sinks */

static int open_output(vl_fetch *f)
{
    f->out_fd = open(f->output_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->out_fd < 0) {
        int e = errno;
        vl_fmt(f->resp.err, sizeof(f->resp.err), "output: cannot open %s: %s", f->output_file,
               strerror(e));
        return -VL_EIO;
    }
    return 0;
}

static int write_all(vl_fetch *f, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(f->out_fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            vl_fmt(f->resp.err, sizeof(f->resp.err), "output: write %s: %s", f->output_file,
                   strerror(e));
            return -VL_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Decoded body bytes arrive here: count, bound, save or hand over. */
static int sink_body(void *data, const char *chunk, size_t len)
{
    vl_fetch *f = data;
    const vl_client_opts *o = &f->cl->opts;
    f->bytes += len;
    if (o->max_filesize && f->bytes > o->max_filesize) {
        vl_fmt(f->resp.err, sizeof(f->resp.err), "http: body over --max-filesize %llu bytes",
               (unsigned long long)o->max_filesize);
        return f->sink_err = -VL_ETOOBIG;
    }
    if (f->output_file) {
        if ((f->out_fd < 0 && open_output(f) < 0) || write_all(f, chunk, len) < 0)
            return f->sink_err = -VL_EIO;
    }
    if (f->on_body) {
        int rc = f->on_body(f->body_data, chunk, len);
        if (rc < 0) {
            vl_fmt(f->resp.err, sizeof(f->resp.err), "body callback failed: %s", vl_strerror(rc));
            return f->sink_err = rc;
        }
        if (f->state == F_DONE || f->state == F_FAILED)
            return -VL_ECANCELED; /* it canceled this fetch: stop the decoder and the parser */
    }
    return 0;
}

static int will_follow(const vl_fetch *f);

/* The codings to undo, in the order the server applied them: the content
 * codings (unless --no-decompress), then the transfer codings other than
 * chunked, which are always undone: never hand over still-encoded bytes
 * as the body (RFC 9112 §6.1). */
static int start_decoder(vl_fetch *f)
{
    const char *ce = f->cl->opts.decompress ? f->resp.hdr[HH_CONTENT_ENCODING] : NULL;
    const char *te = f->resp.te_codings;
    char *both = NULL;
    f->dec_checked = 1;
    if (ce && te) {
        size_t n = strlen(ce) + strlen(te) + 3;
        if (!(both = malloc(n))) {
            vl_fmt(f->resp.err, sizeof(f->resp.err), "out of memory");
            return -ENOMEM;
        }
        snprintf(both, n, "%s, %s", ce, te);
    }
    int rc = decoder_init(&f->dec, both ? both : ce ? ce : te, f->resp.err, sizeof(f->resp.err));
    free(both);
    return rc;
}

/* Raw (possibly encoded) body bytes from the parser. */
static int raw_body(void *data, const char *chunk, size_t len)
{
    vl_fetch *f = data;
    if (f->state == F_DONE || f->state == F_FAILED)
        return -1; /* the body callback canceled this fetch: stop the parser */
    wire_bytes(f, VL_WIRE_PAYLOAD, chunk, len);
    if (will_follow(f) || status_retry(f))
        return 0; /* a redirect's or a retried answer's own body is read and dropped */
    if (!f->dec_checked) {
        int rc = start_decoder(f);
        if (rc < 0)
            return f->sink_err = rc;
    }
    int rc = decoder_feed(&f->dec, chunk, len, sink_body, f, f->resp.err, sizeof(f->resp.err));
    if (rc == -VL_EDECODE)
        f->sink_err = rc;
    return rc;
}

/* ------------------------------------------------------- request building */

static int build_head(vl_fetch *f)
{
    vl_client *cl = f->cl;
    struct http_head_spec spec = {0};
    int has_body = f->body || f->body_file;
    spec.method = f->method ? f->method : (has_body ? "POST" : "GET");
    spec.target = f->url.target;
    spec.authority = f->url.authority;
    spec.user_agent = cl->opts.user_agent;
    spec.headers = (const char *const *)f->headers;
    spec.nheaders = f->nheaders;
    spec.has_body = has_body;
    spec.body_len = f->body_total;
    spec.accept_encoding = cl->opts.decompress;
    struct vl_buf absolute = {0};
    if (f->proxy && !proxy_tunnels(f->proxy, &f->url)) {
        /* RFC 9112 §3.2.2: absolute-form to a proxy, without the URL's
         * credentials (those are the origin's, never in a request line) */
        vl_buf_adds(&absolute, "http://");
        vl_buf_adds(&absolute, f->url.authority);
        vl_buf_adds(&absolute, f->url.target);
        if (absolute.oom)
            return -ENOMEM;
        spec.target = absolute.p;
        spec.proxy_auth = f->proxy->auth;
    }
    free(f->head);
    f->head = NULL;
    f->pauth_off = f->pauth_len = 0;
    int rc = http_build_head(&spec, &f->head, &f->head_len);
    vl_buf_free(&absolute);
    if (rc == 0 && spec.proxy_auth) {
        /* where our Proxy-Authorization line is, to keep it from the tap */
        static const char name[] = "\r\nProxy-Authorization: ";
        const char *p = memmem(f->head, f->head_len, name, sizeof(name) - 1);
        const char *e = p ? memmem(p + 2, f->head_len - (size_t)(p + 2 - f->head), "\r\n", 2) : NULL;
        if (p && e) {
            f->pauth_off = (size_t)(p + 2 - f->head);
            f->pauth_len = (size_t)(e + 2 - (p + 2));
        }
    }
    return rc;
}

static int open_body_source(vl_fetch *f)
{
    struct stat st;
    f->body_fd = open(f->body_file, O_RDONLY | O_CLOEXEC);
    if (f->body_fd < 0 || fstat(f->body_fd, &st) < 0) {
        int e = errno;
        vl_fmt(f->errmsg, sizeof(f->errmsg), "request body: cannot read %s: %s", f->body_file,
               strerror(e));
        return -VL_EIO;
    }
    f->body_total = (uint64_t)st.st_size;
    return 0;
}

/* ----------------------------------------------------------- state steps */

static void want(vl_fetch *f, int events) { vl_io_modify(f->cl->loop, f->conn->fd, events); }

/* After a connection op: -EAGAIN waits for what the connection wants, other
 * errors end the fetch as err_kind.  1 when the caller must stop here. */
static int waits_or_fails(vl_fetch *f, long rc, int err_kind)
{
    if (rc == -EAGAIN) {
        want(f, f->conn->want);
        return 1;
    }
    if (rc < 0) {
        finish(f, err_kind, "%s", f->conn->err);
        return 1;
    }
    return 0;
}

/* Forget the last response (before a new request, a redirect or a retry),
 * so a later failure never reports an earlier response's status. */
static void reset_response(vl_fetch *f)
{
    http_resp_free(&f->resp);
    const char *m = f->method ? f->method : "";
    http_resp_init(&f->resp, f->cl->opts.max_header_bytes, strcmp(m, "HEAD") == 0, raw_body, f);
    decoder_free(&f->dec);
    f->dec_checked = 0;
    f->status_retry = 0;
    f->bytes = 0;
}

static void prepare_exchange(vl_fetch *f)
{
    f->exchange_bytes = 0;
    f->head_off = 0;
    f->body_off = 0;
    f->send_len = f->send_off = 0;
    if (f->body_fd >= 0)
        lseek(f->body_fd, 0, SEEK_SET);
    reset_response(f);
    f->wire_err = 0;
}

static void start_exchange(vl_fetch *f)
{
    prepare_exchange(f);
    f->http_version = 1;
    wire_start(f);
    set_state(f, F_SENDING);
    do_send(f);
}

/* Refill the send buffer from the body file; 0, or -VL_EIO. */
static int refill_from_file(vl_fetch *f)
{
    if (!f->sendbuf && !(f->sendbuf = malloc(SEND_CHUNK_BYTES)))
        return -ENOMEM;
    ssize_t n;
    uint64_t left = f->body_total - f->body_off; /* never past Content-Length */
    size_t want_bytes = left < SEND_CHUNK_BYTES ? (size_t)left : SEND_CHUNK_BYTES;
    do
        n = read(f->body_fd, f->sendbuf, want_bytes);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        vl_fmt(f->errmsg, sizeof(f->errmsg), "request body: %s changed while sending (%s)",
               f->body_file, n < 0 ? strerror(errno) : "shorter than its size");
        return -VL_EIO;
    }
    f->send_len = (size_t)n;
    f->send_off = 0;
    return 0;
}

static void do_send(vl_fetch *f)
{
    struct conn *c = f->conn;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (f->head_off < f->head_len)
            iov[n++] = (struct iovec){f->head + f->head_off, f->head_len - f->head_off};
        if (f->body && f->body_off < f->body_total) {
            iov[n++] = (struct iovec){f->body + f->body_off, (size_t)(f->body_total - f->body_off)};
        } else if (f->body_fd >= 0 && f->body_off < f->body_total) {
            if (f->send_off == f->send_len && refill_from_file(f) < 0) {
                finish(f, -VL_EIO, NULL);
                return;
            }
            iov[n++] = (struct iovec){f->sendbuf + f->send_off, f->send_len - f->send_off};
        }
        if (n == 0)
            break;
        ssize_t w = c->ops->writev(c, iov, n);
        if (waits_or_fails(f, w, -VL_EIO))
            return;
        wire_sent(f, iov, n, (size_t)w);
        f->last_io = now_us(f);
        size_t hw = f->head_len - f->head_off;
        if ((size_t)w <= hw) {
            f->head_off += (size_t)w;
            continue;
        }
        f->head_off = f->head_len;
        w -= (ssize_t)hw;
        f->body_off += (uint64_t)w;
        if (f->body_fd >= 0)
            f->send_off += (size_t)w;
    }
    f->t_sent = now_us(f);
    set_state(f, F_AWAIT_HEADERS);
    want(f, VL_READ);
}

/* A reused connection that dies before any response byte: the server
 * closed it while it sat idle, so the request was never answered (curl and
 * aiohttp retry it too; RFC 9112 §9.3.1).  The retry takes a new connection
 * when the per-host limit allows (try_acquire); only when it had to take
 * another idle one may that die too and be retried again, STALE_RETRY_MAX
 * in all per request (a redirect is a new request).  Like curl, this does
 * not look at the method: nothing of the request was answered. */
static int retry_stale(vl_fetch *f)
{
    if (!f->reused || f->stale_retried >= STALE_RETRY_MAX || f->exchange_bytes)
        return 0;
    f->stale_retried++;
    client_trace(f->cl, "fetch#%llu reused connection died before a response: retrying on a new "
                 "one, closing the host's other idle connections", (unsigned long long)f->id);
    release_conn(f, 0);
    /* The others are older than this one: taking one of them would likely
     * fail the same way, and the one retry with it. */
    pool_flush_idle(&f->cl->pool, f->host);
    f->reused = 0;
    if (!pool_reserve(&f->cl->pool, f->host)) {
        /* the per-host limit is full: wait for a slot like any other fetch */
        set_state(f, F_QUEUED);
        sched_queue(&f->cl->sched, &f->item, 1);
        return 1;
    }
    f->reserved = 1;
    set_state(f, F_RESOLVING);
    try_acquire(f);
    return 1;
}

/* ---------------------------------------------------------------- redirects */

static int is_redirect(int s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }

static int will_follow(const vl_fetch *f)
{
    /* an empty Location is no redirect: the 3xx is the final response, as
     * in curl (RFC 9110 §10.2.2 wants a URI-reference there) */
    const char *loc = f->resp.hdr[HH_LOCATION];
    return f->resp.headers_done && is_redirect(f->resp.status) && f->cl->opts.max_redirs > 0 &&
           loc != NULL && *loc != '\0';
}

/* Credentials set with -H go to the origin they were meant for only. */
static void drop_credentials(vl_fetch *f)
{
    size_t kept = 0;
    for (size_t i = 0; i < f->nheaders; i++) {
        if (http_header_is(f->headers[i], "Authorization") || http_header_is(f->headers[i], "Cookie"))
            free(f->headers[i]);
        else
            f->headers[kept++] = f->headers[i];
    }
    f->nheaders = kept;
}

/* RFC 9110 §15.4: 303 turns any method but HEAD into GET; 301/302 after a
 * POST do too, as browsers, curl and requests do; 307/308 keep both. */
static void rewrite_method(vl_fetch *f, int status)
{
    const char *m = effective_method(f);
    int to_get = status == 303 ? strcmp(m, "HEAD") != 0
                               : (status == 301 || status == 302) && strcmp(m, "POST") == 0;
    if (!to_get)
        return;
    free(f->method);
    f->method = NULL;
    free(f->body);
    f->body = NULL;
    free(f->body_file);
    f->body_file = NULL;
    close_body_source(f);
    f->body_total = f->body_len = 0;
}

static void follow_redirect(vl_fetch *f)
{
    vl_client *cl = f->cl;
    const char *loc = f->resp.hdr[HH_LOCATION];
    if (f->redirects >= cl->opts.max_redirs) {
        finish(f, -VL_EREDIRECT, "redirect: too many redirects (%d)", cl->opts.max_redirs);
        return;
    }
    char *next = url_resolve(f->url.href, loc);
    struct url nu;
    char err[256];
    if (!next) {
        finish(f, -VL_EREDIRECT, "redirect: malformed Location '%.200s'", loc);
        return;
    }
    if (url_parse(next, &nu, err, sizeof(err)) < 0) {
        finish(f, -VL_EREDIRECT, "redirect: %s in Location '%.200s'", err, next);
        free(next);
        return;
    }
    client_trace(cl, "fetch#%llu redirect %d (%d of %d) -> %s", (unsigned long long)f->id,
                 f->resp.status, f->redirects + 1, cl->opts.max_redirs, next);
    rewrite_method(f, f->resp.status);
    if (strcmp(nu.host, f->url.host) != 0 || nu.port != f->url.port || nu.https != f->url.https)
        drop_credentials(f);
    end_attempt(f, f->resp.complete && f->resp.keep_alive, 0);
    free(next);
    url_free(&f->url);
    f->url = nu;
    /* the new URL's route: another proxy, or none (noproxy) */
    struct host *h = route_host(f);
    if (h != f->host) {
        kick_host(cl, f->host);
        pool_host_put(&cl->pool, f->host);
        f->host = f->item.host = h;
    } else if (h) {
        pool_host_put(&cl->pool, h);
    }
    f->redirects++;
    f->reused = 0;
    f->stale_retried = 0;
    f->t_dns0 = f->t_dns = f->t_conn = f->t_tls = f->t_proxy = 0;
    if (!f->host || build_head(f) < 0) {
        finish(f, -ENOMEM, "out of memory");
        return;
    }
    reset_response(f);
    set_state(f, F_QUEUED);
    /* a new request: through its host's queue, so that host's limits and
     * rate hold for it, first in line there */
    sched_queue(&cl->sched, &f->item, 1);
}

static void response_complete(vl_fetch *f, int leftover)
{
    if (leftover)
        f->resp.keep_alive = 0; /* bytes after the response: never reuse */
    /* every complete response tells the scheduler how the host is doing */
    sched_feedback(&f->cl->sched, f->host, f->resp.status,
                   http_resume_after_us(&f->resp, time(NULL)));
    if (will_follow(f)) {
        follow_redirect(f);
        return;
    }
    if (f->dec_checked && decoder_finish(&f->dec, f->resp.err, sizeof(f->resp.err)) < 0) {
        finish(f, -VL_EDECODE, "%s", f->resp.err);
        return;
    }
    if (status_retry(f)) {
        schedule_retry(f, f->status_retry_us);
        return;
    }
    if (f->output_file && f->out_fd < 0 && open_output(f) < 0) {
        finish(f, -VL_EIO, "%s", f->resp.err);
        return;
    }
    if (f->cl->opts.fail_on_http_error && f->resp.status >= 400) {
        finish(f, -VL_ESTATUS, "http: status %d", f->resp.status);
        return;
    }
    finish(f, 0, NULL);
}

static void on_eof(vl_fetch *f)
{
    if (!f->exchange_bytes && retry_stale(f))
        return;
    if (http_resp_eof(&f->resp) < 0) {
        finish(f, -VL_EHTTP, "%s", f->resp.err);
        return;
    }
    response_complete(f, 0);
}

/* Response bytes of the exchange: read from the connection (HTTP/1.1) or
 * an h2 stream's rendering of its frames (h2.h).  1 when the fetch has
 * moved on (complete, failed, canceled from its body callback). */
static int take_response_bytes(vl_fetch *f, const char *buf, size_t n)
{
    f->last_io = now_us(f);
    if (!f->t_first)
        f->t_first = f->last_io;
    f->exchange_bytes += (uint64_t)n;
    long used = http_resp_feed(&f->resp, buf, n);
    if (f->state == F_DONE || f->state == F_FAILED)
        return 1; /* canceled from its body callback: c is gone already */
    wire_bytes(f, VL_WIRE_RECV, buf, used < 0 ? n : (size_t)used);
    if (used < 0) {
        finish(f, f->sink_err ? f->sink_err : -VL_EHTTP, "%s", f->resp.err);
        return 1;
    }
    if (f->state == F_AWAIT_HEADERS && f->resp.headers_done)
        set_state(f, F_BODY);
    if (f->resp.complete) {
        response_complete(f, used < (long)n);
        return 1;
    }
    return 0;
}

static void do_read(vl_fetch *f)
{
    vl_client *cl = f->cl;
    struct conn *c = f->conn;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = c->ops->read(c, cl->rbuf, CLIENT_RBUF_BYTES);
        if (n == -EAGAIN) {
            want(f, c->want);
            return;
        }
        if (n < 0) {
            if (retry_stale(f))
                return;
            finish(f, n == -VL_ETLS ? -VL_ETLS : -VL_EIO, "%s", c->err);
            return;
        }
        if (n == 0) {
            on_eof(f);
            return;
        }
        if (take_response_bytes(f, cl->rbuf, (size_t)n))
            return; /* done, failed, redirected, or canceled: c may be gone */
        if (c->ops->short_read_drains && (size_t)n < CLIENT_RBUF_BYTES) {
            want(f, VL_READ); /* saves the recv that would only say EAGAIN */
            return;
        }
    }
}

static void start_tls(vl_fetch *f);

static void do_handshake(vl_fetch *f)
{
    struct conn *c = f->conn;
    if (waits_or_fails(f, c->ops->handshake(c), f->state == F_TUNNEL ? -VL_EPROXY : -VL_ETLS))
        return;
    if (f->state == F_TUNNEL) {
        f->t_proxy = now_us(f);
        client_trace(f->cl, "fetch#%llu proxy: %s %s:%d through %s in %.1f ms",
                     (unsigned long long)f->id,
                     proxy_tunnels(f->proxy, &f->url) ? "tunnel to" : "TLS to forward to",
                     f->url.host, f->url.port, f->proxy->name, ms_between(f->t_conn, f->t_proxy));
        start_tls(f);
        return;
    }
    f->t_tls = now_us(f);
    end_tls_probe(f);
    if (f->cl->opts.trace) {
        char desc[256];
        tls_describe(c, desc, sizeof(desc));
        client_trace(f->cl, "fetch#%llu tls: %s in %.1f ms", (unsigned long long)f->id, desc,
                     ms_between(f->t_conn, f->t_tls));
    }
    if (tls_alpn_is_h2(c)) {
        upgrade_to_h2(f);
        return;
    }
    start_exchange(f);
}

static void on_io(vl_loop *loop, int fd, int events, void *data)
{
    vl_fetch *f = data;
    (void)loop;
    (void)fd;
    (void)events;
    switch (f->state) {
    case F_TUNNEL:
    case F_TLS_HANDSHAKE:
        do_handshake(f);
        break;
    case F_SENDING:
        do_send(f);
        break;
    case F_AWAIT_HEADERS:
    case F_BODY:
        do_read(f);
        break;
    default:
        break;
    }
}

static void on_connected(void *data, int fd, int err, const char *msg, const char *peer)
{
    vl_fetch *f = data;
    vl_client *cl = f->cl;
    f->connector = NULL;
    if (fd < 0) {
        finish(f, err, "%s%s", f->proxy ? "proxy: " : "", msg);
        return;
    }
    struct conn *c = pool_conn_new(&cl->pool, f->host, fd, peer);
    if (!c) {
        close(fd);
        finish(f, -ENOMEM, "out of memory");
        return;
    }
    f->reserved = 0; /* the slot now belongs to the connection */
    f->conn = c;
    c->owner = f;
    f->t_conn = now_us(f);
    if (vl_io_start(cl->loop, fd, VL_READ, on_io, f) < 0) {
        finish(f, -VL_EIO, "loop: cannot watch fd %d", fd);
        return;
    }
    if (f->proxy && proxy_has_stage(f->proxy, &f->url)) {
        struct tunnel_target tt = {f->url.host, f->url.port,
                                   f->target_resolved ? &f->target_addr : NULL,
                                   cl->opts.user_agent, cl->opts.max_header_bytes,
                                   proxy_uses_tls(f->proxy) ? client_proxy_tls(cl) : NULL,
                                   cl->proxy_tls_err, !proxy_tunnels(f->proxy, &f->url)};
        int rc = tunnel_attach(c, f->proxy, &tt);
        if (rc < 0) {
            finish(f, rc, "%s", c->err);
            return;
        }
        set_state(f, F_TUNNEL);
        do_handshake(f);
        return;
    }
    start_tls(f);
}

/* The connection (or tunnel) is up: TLS for https, else the request. */
static void start_tls(vl_fetch *f)
{
    vl_client *cl = f->cl;
    struct conn *c = f->conn;
    if (!f->url.https) {
        if (h2c_by_prior_knowledge(f))
            upgrade_to_h2(f); /* RFC 9113 §3.3 */
        else
            start_exchange(f);
        return;
    }
    struct tls_ctx *tls = client_tls(cl);
    if (!tls) {
        finish(f, -VL_ETLS, "%s", cl->tls_err);
        return;
    }
    char key[300];
    vl_fmt(key, sizeof(key), "%s:%d", f->url.host, f->url.port);
    if (tls_attach(tls, c, f->url.host, key) < 0) {
        finish(f, -VL_ETLS, "%s", c->err[0] ? c->err : "tls: cannot start a session");
        return;
    }
    set_state(f, F_TLS_HANDSHAKE);
    do_handshake(f);
}

static void conn_trace(void *data, const char *line)
{
    vl_fetch *f = data;
    client_trace(f->cl, "fetch#%llu %s", (unsigned long long)f->id, line);
}

static void start_connect(vl_fetch *f, struct addr_list *addrs)
{
    f->t_dns = now_us(f);
    set_state(f, F_CONNECTING);
    addr_list_interleave(addrs);
    int rc = connector_start(f->cl->loop, addrs, on_connected,
                             f->cl->opts.trace ? conn_trace : NULL, f, &f->connector);
    if (rc < 0)
        finish(f, rc, "connect: %s", strerror(-rc));
}

/* The name to look up next: the target's (direct, or a proxy that wants
 * an address: socks4/socks5, before the proxy's own), else the proxy's. */
static int hop_is_proxy(const vl_fetch *f)
{
    return f->proxy && (f->target_resolved || !proxy_resolves_locally(f->proxy));
}

static void on_resolved(void *data, int err, const struct addr_list *addrs, const char *msg);

static void resolved(vl_fetch *f, const struct addr_list *addrs)
{
    struct addr_list copy = *addrs;
    if (f->proxy && !hop_is_proxy(f)) {
        addr_list_interleave(&copy);
        /* SOCKS4 carries IPv4 only: its first IPv4 address, not the first
         * one (localhost is ::1 first); socks.c names the lack of one */
        int pick = 0;
        for (int i = 0; f->proxy->kind == PROXY_SOCKS4 && i < copy.n; i++)
            if (copy.addr[i].sa.sa_family == AF_INET) {
                pick = i;
                break;
            }
        f->target_addr = copy.addr[pick];
        f->target_resolved = 1;
        resolve_hop(f);
        return;
    }
    start_connect(f, &copy);
}

static void resolve_hop(vl_fetch *f)
{
    vl_client *cl = f->cl;
    struct addr_list addrs;
    char msg[256] = "";
    int to_proxy = hop_is_proxy(f);
    const char *name = to_proxy ? f->proxy->host : f->url.host;
    int rc = dns_resolve(cl->dns, name, to_proxy ? f->proxy->port : f->url.port, &addrs,
                         on_resolved, cl->opts.trace ? conn_trace : NULL, f, &f->dq, msg);
    if (rc < 0)
        finish(f, rc, "%s%s", to_proxy ? "proxy: " : "", msg);
    else if (rc == 1)
        resolved(f, &addrs);
}

static void on_resolved(void *data, int err, const struct addr_list *addrs, const char *msg)
{
    vl_fetch *f = data;
    f->dq = NULL;
    if (err < 0) {
        finish(f, err, "%s%s", hop_is_proxy(f) ? "proxy: " : "", msg);
        return;
    }
    resolved(f, addrs);
}

/* The pool entry of f->url's route, which proxy.c chooses (with a
 * reference): its own origin's when direct, else one the proxy's key names. */
static struct host *route_host(vl_fetch *f)
{
    vl_client *cl = f->cl;
    f->proxy = proxy_for(&cl->proxies, &f->url);
    if (!f->proxy)
        return pool_host_get(&cl->pool, f->url.key);
    client_trace(cl, "fetch#%llu proxy: %s for %s://%s", (unsigned long long)f->id,
                 f->proxy->name, f->url.https ? "https" : "http", f->url.authority);
    char *key = proxy_pool_key(f->proxy, &f->url);
    struct host *h = key ? pool_host_get(&cl->pool, key) : NULL;
    free(key);
    return h;
}

/* Use the pooled connection c for this request. */
static void adopt_conn(vl_fetch *f, struct conn *c)
{
    f->conn = c;
    c->owner = f;
    f->reused = 1;
    /* Idle connections are watched for reading already: re-pointing the
     * watcher costs no syscall, and the request is written at once. */
    if (vl_io_start(f->cl->loop, c->fd, VL_READ, on_io, f) < 0) {
        finish(f, -VL_EIO, "loop: cannot watch fd %d", c->fd);
        return;
    }
    start_exchange(f);
}

/* Leave the queue: an idle connection, a new one, or wait at the host. */
static void try_acquire(vl_fetch *f)
{
    vl_client *cl = f->cl;
    if (f->state == F_QUEUED) {
        /* After a stale retry a new connection comes first; an idle one
         * still serves when the host is at its limit: it may hold the
         * host's last slot, and nothing would wake a fetch waiting for it. */
        struct conn *c = NULL;
        struct h2_session *hs = h2_session_with_room(f->host); /* a free stream first */
        int fresh = !hs && f->stale_retried && pool_reserve(&cl->pool, f->host);
        if (!hs && !fresh && !(c = pool_take_idle(&cl->pool, f->host)) &&
            (wait_for_session(f) || !pool_reserve(&cl->pool, f->host))) {
            end_tls_probe(f); /* a probe that could not start is none */
            sched_queue(&cl->sched, &f->item, 1);
            return;
        }
        if (!f->t_start)
            f->t_start = now_us(f);
        /* --timeout: one attempt, redirects included */
        if (!vl_timer_active(&f->total_timer))
            timer_start_us(&f->total_timer, (uint64_t)(cl->opts.timeout_s * 1e6));
        if (!f->attempts)
            f->attempts = 1;
        if (hs) {
            f->reused = 1;
            start_h2_exchange(f, hs);
            return;
        }
        if (c) {
            adopt_conn(f, c);
            return;
        }
        f->reserved = 1;
        set_state(f, F_RESOLVING);
    }
    f->t_dns0 = now_us(f);
    f->target_resolved = 0;
    resolve_hop(f);
}

/* The scheduler's "room" for a host: an idle connection, or a slot for a
 * new one unless the host's first TLS handshake is still under way. */
int fetch_host_has_room(void *ctx, struct host *h)
{
    vl_client *cl = ctx;
    if (!list_empty(&h->idle) || h2_session_with_room(h))
        return 1;
    if (h->tls_probing)
        return 0;
    return pool_has_room(&cl->pool, h);
}

/* The scheduler's start: f is in the window now. */
void fetch_sched_start(void *ctx, struct sched_item *it)
{
    vl_fetch *f = container_of(it, vl_fetch, item);
    vl_client *cl = ctx;
    if (!f->began) {
        f->began = 1;
        if (cl->opts.retry && cl->opts.retry_max_time_s > 0)
            timer_start_us(&f->deadline_timer, (uint64_t)(cl->opts.retry_max_time_s * 1e6));
    }
    try_acquire(f);
}

/* ------------------------------------------------------------- public API */

static int copy_request(vl_fetch *f, const vl_request *req)
{
    f->url_str = vl_strdup(req->url ? req->url : "");
    if (!f->url_str)
        return -ENOMEM;
    if ((req->method && !(f->method = vl_strdup(req->method))) ||
        (req->body_file && !(f->body_file = vl_strdup(req->body_file))) ||
        (req->output_file && !(f->output_file = vl_strdup(req->output_file))))
        return -ENOMEM;
    if (req->body) {
        if (!(f->body = malloc(req->body_len ? req->body_len : 1)))
            return -ENOMEM;
        memcpy(f->body, req->body, req->body_len);
        f->body_len = req->body_len;
        f->body_total = req->body_len;
    }
    if (req->nheaders) {
        if (!(f->headers = calloc(req->nheaders, sizeof(char *))))
            return -ENOMEM;
        for (size_t i = 0; i < req->nheaders; i++, f->nheaders++)
            if (!(f->headers[i] = vl_strdup(req->headers[i])))
                return -ENOMEM;
    }
    return 0;
}

int vl_fetch_start(vl_client *cl, const vl_request *req, vl_result_cb *cb, void *data,
                   vl_fetch **out)
{
    vl_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->cl = cl;
    f->id = ++cl->next_fetch_id;
    f->cb = cb;
    f->cb_data = data;
    f->index = req->index;
    f->user = req->user;
    f->on_body = req->on_body;
    f->body_data = req->body_data;
    f->on_wire = req->on_wire;
    f->wire_data = req->wire_data;
    f->body_fd = f->out_fd = -1;
    f->t_submit = f->t_state = now_us(f);
    list_init(&f->item.link);
    list_init(&f->clink);
    timer_init(&f->phase_timer, cl->loop, on_phase_timeout, f);
    timer_init(&f->total_timer, cl->loop, on_total_timeout, f);
    timer_init(&f->deadline_timer, cl->loop, on_deadline, f);
    http_resp_init(&f->resp, cl->opts.max_header_bytes, 0, raw_body, f);
    cl->nfetches++;
    if (out)
        *out = f;
    int rc = copy_request(f, req);
    if (rc < 0) {
        finish(f, rc, "out of memory");
        return 0;
    }
    if (url_parse(f->url_str, &f->url, f->errmsg, sizeof(f->errmsg)) < 0) {
        finish(f, -VL_EURL, NULL);
        return 0;
    }
    f->url_ok = 1;
    if (f->body_file && open_body_source(f) < 0) {
        finish(f, -VL_EIO, NULL);
        return 0;
    }
    f->host = f->item.host = route_host(f);
    if (f->host && build_head(f) < 0) {
        finish(f, -ENOMEM, "out of memory");
        return 0;
    }
    if (!f->host) {
        finish(f, -ENOMEM, "out of memory");
        return 0;
    }
    sched_queue(&cl->sched, &f->item, 0);
    return 0;
}

void vl_fetch_cancel(vl_fetch *f)
{
    if (f && f->state != F_DONE && f->state != F_FAILED)
        finish(f, -VL_ECANCELED, "canceled");
}

/* ------------------------------------------------------ the h2 exchange */
/* The same response handling as HTTP/1.1: h2.c renders each stream's
 * response as HTTP/1.1 bytes into take_response_bytes; END_STREAM is the
 * close that ends a close-delimited body. */

#define H2_REQUEUE_MAX 8 /* an unprocessed request sent again (GOAWAY, REFUSED_STREAM) */

static void h2_sent(void *owner)
{
    vl_fetch *f = owner;
    f->t_sent = f->last_io = now_us(f);
    if (f->state == F_SENDING)
        set_state(f, f->resp.headers_done ? F_BODY : F_AWAIT_HEADERS);
}

static void h2_bytes(void *owner, const char *buf, size_t len)
{
    take_response_bytes(owner, buf, len);
}

static void h2_end(void *owner)
{
    vl_fetch *f = owner;
    if (http_resp_eof(&f->resp) < 0) {
        finish(f, -VL_EHTTP, "%s", f->resp.err);
        return;
    }
    response_complete(f, 0);
}

/* The server never processed the request (RFC 9113 §8.7): send it again
 * on a stream with room or a new connection, as curl does, without
 * counting an attempt. */
static void h2_fail(void *owner, int err, int requeue, const char *msg)
{
    vl_fetch *f = owner;
    if (requeue == H2_MAYBE_PROCESSED && (!idempotent(f) || f->h2_maybe_resent))
        requeue = 0; /* a POST the server may have acted on is not sent twice */
    if (!requeue || f->h2_requeues >= H2_REQUEUE_MAX) {
        finish(f, err, "%s", msg);
        return;
    }
    if (requeue == H2_MAYBE_PROCESSED)
        f->h2_maybe_resent = 1;
    f->h2_requeues++;
    client_trace(f->cl, "fetch#%llu %s: not processed, sending it again (%d of %d)",
                 (unsigned long long)f->id, msg, f->h2_requeues, H2_REQUEUE_MAX);
    end_attempt(f, 0, 1);
    f->reused = 0;
    reset_response(f);
    set_state(f, F_QUEUED);
    sched_queue(&f->cl->sched, &f->item, 1);
}

static ssize_t h2_body(void *owner, char *buf, size_t len)
{
    vl_fetch *f = owner;
    uint64_t left = f->body_total - f->body_off;
    if (len > left)
        len = (size_t)left;
    if (len == 0)
        return 0;
    if (f->body) {
        memcpy(buf, f->body + f->body_off, len);
    } else {
        ssize_t n;
        do
            n = read(f->body_fd, buf, len);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            finish(f, -VL_EIO, "request body: %s changed while sending (%s)", f->body_file,
                   n < 0 ? strerror(errno) : "shorter than its size");
            return -1;
        }
        len = (size_t)n;
    }
    f->body_off += len;
    f->last_io = now_us(f);
    wire_bytes(f, VL_WIRE_SENT, buf, len);
    return (ssize_t)len;
}

static const struct h2_events h2_events = {h2_sent, h2_bytes, h2_end, h2_fail, h2_body};

static void start_h2_exchange(vl_fetch *f, struct h2_session *s)
{
    char msg[256];
    prepare_exchange(f);
    f->http_version = 2;
    set_state(f, F_SENDING);
    f->h2s = h2_stream_start(s, f->head, f->head_len, f->body || f->body_fd >= 0, &h2_events, f,
                             msg, sizeof(msg));
    if (!f->h2s) {
        finish(f, -VL_EHTTP, "%s", msg);
        return;
    }
    /* the raw-bytes tap sees an h2 exchange as HTTP/1.1: the head it was
     * made from, the body as read, the response as rendered (h2.h) */
    wire_start(f);
    wire_bytes(f, VL_WIRE_SENT, f->head, f->head_len);
}

/* The connection f just made speaks h2: it becomes a session (owning the
 * connection and its pool slot) and f its first stream. */
static void upgrade_to_h2(vl_fetch *f)
{
    struct h2_session *s = h2_session_new(f->cl, f->conn, f->url.https);
    if (!s) {
        finish(f, -ENOMEM, "http2: cannot start a session: out of memory");
        return;
    }
    f->conn = NULL;
    end_tls_probe(f); /* the fetches held back for this connection find its streams */
    start_h2_exchange(f, s);
}
