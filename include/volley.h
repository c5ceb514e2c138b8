/* volley.h: the one public header of libvolley.
 *
 * Reads top to bottom: version, errors, the loop (fd watchers, timers,
 * deferred callbacks), the client (options, connection pool), one fetch
 * (request, result, timings, body sink), gather.
 *
 * Threads: a loop and everything created on it (watchers, timers, clients,
 * fetches) belong to the one thread that runs the loop.  Many loops in one
 * process, one per thread, are fine; nothing here is shared between them.
 *
 * Errors: functions return 0 (or a count) on success and a negative code on
 * failure: -errno for OS errors, -VL_E* for volley's own kinds.
 * vl_strerror() names each.  The library never prints (except the trace
 * stream the caller asked for), never exits, never aborts on bad input. */
#ifndef VOLLEY_H
#define VOLLEY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VL_VERSION_MAJOR 0
#define VL_VERSION_MINOR 1
#define VL_VERSION_PATCH 0
#define VL_VERSION_NUM (VL_VERSION_MAJOR * 10000 + VL_VERSION_MINOR * 100 + VL_VERSION_PATCH)
/* The library's version as "MAJOR.MINOR.PATCH"; static storage. */
const char *vl_version(void);

/* ---------------------------------------------------------------- errors */
enum {
    VL_EBASE = 20000,
    VL_EURL,       /* the URL is malformed or its scheme unsupported */
    VL_EDNS,       /* name resolution failed */
    VL_ECONNECT,   /* no connection could be made */
    VL_ETLS,       /* TLS handshake or record failure */
    VL_EHTTP,      /* the response broke HTTP/1.1 */
    VL_ETIMEOUT,   /* a deadline fired */
    VL_EIO,        /* reading or writing a socket or file failed */
    VL_EDECODE,    /* the body's content coding could not be decoded */
    VL_EREDIRECT,  /* redirect loop, chain too long, or bad Location */
    VL_ETOOBIG,    /* a bound was exceeded (header block, --max-filesize) */
    VL_ESTATUS,    /* HTTP status >= 400 and fail_on_http_error is set */
    VL_ECANCELED,  /* vl_fetch_cancel() was called */
    VL_EUSAGE,     /* an option or argument is invalid */
    VL_ELIMIT,     /* out of file descriptors (EMFILE/ENFILE) */
    VL_EPROXY      /* the proxy refused the tunnel or broke its protocol */
};
/* Name of a negative error code; static storage, never NULL. */
const char *vl_strerror(int err);

/* The host of url as a fetch of it would see it: ASCII, lower-case, IDN as
 * A-labels, IPv6 without brackets.  Written NUL-terminated into buf, cut to
 * buflen - 1 bytes as snprintf does; returns the host's full length, or
 * -VL_EURL when url does not parse (-ENOMEM).  Thread-safe: for spreading a
 * URL list over loops by host (volley -t partitions its input this way). */
int vl_url_host(const char *url, char *buf, size_t buflen);

/* ------------------------------------------------------------------ loop */
#define VL_READ 1
#define VL_WRITE 2

typedef struct vl_loop vl_loop;
typedef struct vl_timer vl_timer;

/* Called when fd is ready for any of the requested events. */
typedef void vl_io_cb(vl_loop *loop, int fd, int events, void *data);
typedef void vl_timer_cb(vl_loop *loop, vl_timer *timer, void *data);
typedef void vl_defer_cb(vl_loop *loop, void *data);
/* Trace hook: one formatted line (no newline) per loop iteration. */
typedef void vl_trace_cb(void *data, const char *line);

/* Create a loop on the calling thread; NULL when out of memory or fds. */
vl_loop *vl_loop_new(void);
/* Free the loop.  Every watcher, timer and client on it must be gone. */
void vl_loop_free(vl_loop *loop);

/* Watch fd for events (VL_READ|VL_WRITE); replaces any earlier watch of fd.
 * events == 0 stops watching (same as vl_io_stop).  The loop never closes
 * fd: call vl_io_stop before close().  Callable from any callback. */
int vl_io_start(vl_loop *loop, int fd, int events, vl_io_cb *cb, void *data);
/* Change only the interest of an fd already watched. */
int vl_io_modify(vl_loop *loop, int fd, int events);
int vl_io_stop(vl_loop *loop, int fd);

/* Timers.  A timer is owned by the caller; vl_timer_free stops it first.
 * vl_timer_start (re)arms it to fire once after timeout_ms. */
vl_timer *vl_timer_new(vl_loop *loop, vl_timer_cb *cb, void *data);
void vl_timer_start(vl_timer *timer, uint64_t timeout_ms);
void vl_timer_stop(vl_timer *timer);
int vl_timer_active(const vl_timer *timer);
void vl_timer_free(vl_timer *timer);

/* Run cb(loop, data) once, at the start of the next loop iteration, outside
 * every other callback's stack.  0 or -ENOMEM. */
int vl_defer(vl_loop *loop, vl_defer_cb *cb, void *data);

/* Run until vl_loop_stop() or until nothing is left to wait for (no fd
 * watched, no timer armed, nothing deferred).  0 or -errno. */
int vl_loop_run(vl_loop *loop);
/* One iteration: expired timers, deferred callbacks, then wait for events up
 * to timeout_ms (-1: until the next timer; 0: do not wait) and dispatch them.
 * Returns the number of callbacks run, or -errno. */
int vl_loop_run_once(vl_loop *loop, int timeout_ms);
/* Bound the work of one vl_loop_run_once (its wait excluded), and of one
 * vl_socket_action or vl_timeout_action, to about ms.  Each phase (expired
 * timers, deferred callbacks, ready fds) stops once the slice is spent,
 * after at least one callback, none cut short; what is left runs first, in
 * order, in the next call, and vl_loop_timeout_ms is 0 meanwhile.  For hosts
 * whose own timers must stay on time while, say, 500 fetches start or 50
 * TLS handshakes finish at once.  0 (the default): no bound.  With a slice
 * the cached clock is refreshed after each callback. */
void vl_loop_set_time_slice(vl_loop *loop, int ms);
void vl_loop_stop(vl_loop *loop);
/* The cached monotonic clock, read once per iteration. */
uint64_t vl_loop_now_ms(const vl_loop *loop);
/* For a foreign loop: the backend fd (epoll/kqueue, pollable for reading)
 * and the ms until the next timer (-1 none, 0 work is pending now).  Ask
 * for the timeout again after every call into volley (vl_fetch_start
 * included): the nearest deadline may have moved. */
int vl_loop_fd(const vl_loop *loop);
int vl_loop_timeout_ms(vl_loop *loop);
/* Trace every iteration (wait timeout, events, timers run) to cb. */
void vl_loop_set_trace(vl_loop *loop, vl_trace_cb *cb, void *data);
/* "epoll" or "kqueue". */
const char *vl_loop_backend(void);

/* ------------------------------------------- embedding: socket callbacks
 * Two ways to run volley inside someone else's event loop.
 *
 * (a) Watch one fd.  Poll vl_loop_fd() for reading, wake up after at most
 *     vl_loop_timeout_ms(), and call vl_loop_run_once(loop, 0) after either.
 *     Simplest; the backend's epoll/kqueue fd is the one fd the host sees.
 *     vl_loop_set_time_slice bounds how long each call keeps the host.
 *
 * (b) Own every fd (libcurl's multi_socket model, c-ares's sock_state_cb).
 *     Set both callbacks below before watching anything.  From then on the
 *     loop has no backend fd: every interest change of every fd on this loop
 *     is reported to the socket callback, and every change of the nearest
 *     deadline to the timer callback.  The host watches the fds itself and
 *     calls vl_socket_action() when one is ready and vl_timeout_action() when
 *     its timer fires.  vl_loop_run, vl_loop_run_once and vl_gather (the
 *     blocking form) return -EINVAL in this mode; use vl_gather_start.
 *
 *     These calls take the loop, not a client: every fd a client opens (its
 *     connections, and the resolver's sockets, which c-ares opens and the
 *     client watches through the same loop) goes through its loop's watchers,
 *     so one pair of callbacks covers every client on the loop.
 *
 * Guarantees:
 *   - VL_POLL_REMOVE for an fd always comes before the library closes it, so
 *     the host never watches a closed (or reused) fd number.  A later report
 *     for the same number is a new socket: its socketp starts as NULL again.
 *   - A report happens only when the interest really changes.
 *   - Readiness the host reports for an fd that is no longer watched (a stale
 *     event from the same poll batch) is ignored; spurious readiness of a
 *     watched fd is harmless (reads and writes just return EAGAIN).
 *   - The timer callback is called whenever the nearest deadline changes and
 *     once after every vl_timeout_action; 0 ms means work is pending now
 *     (deferred callbacks: results to deliver), -1 means no timer is needed.
 *     The host keeps one one-shot timer and replaces it on each call.
 *
 * Which calls are allowed where:
 *   - inside the socket callback: vl_socket_assign and vl_loop_now_ms only;
 *     it may run inside any call listed below, so it must only record the
 *     change (the host's own fd set) and return.
 *   - inside the timer callback: vl_loop_now_ms only; record ms and return.
 *   - from the host's own event handlers (outside every volley callback):
 *     vl_socket_action, vl_timeout_action, vl_fetch_start, vl_fetch_cancel,
 *     vl_gather_start, vl_timer_*, vl_defer, vl_client_new/free.
 *   - inside volley's callbacks (results, vl_timer, vl_io, vl_defer), which run
 *     from within the two actions: as in any loop (start/cancel fetches, arm
 *     timers), but never vl_socket_action or vl_timeout_action (-EBUSY). */
#define VL_POLL_IN 1     /* == VL_READ */
#define VL_POLL_OUT 2    /* == VL_WRITE */
#define VL_POLL_INOUT 3
#define VL_POLL_REMOVE 4

/* what: VL_POLL_IN, _OUT, _INOUT (the new interest) or _REMOVE (stop
 * watching fd: it is about to be closed or handed to another watcher).
 * socketp: the pointer last given to vl_socket_assign for fd, or NULL.
 * Return 0, or a negative errno when the host cannot make the change and
 * has left its own record of fd as it was: the library then fails the
 * watch (and the fetch using fd); a refused new fd gets no REMOVE, a
 * refused change keeps the old interest.  A REMOVE's return is ignored. */
typedef int vl_socket_cb(vl_loop *loop, int fd, int what, void *user, void *socketp);
/* timeout_ms: fire once after this many ms (0: as soon as possible),
 * replacing the earlier timer; -1: cancel it. */
typedef void vl_host_timer_cb(vl_loop *loop, int timeout_ms, void *user);

/* Set (or with NULL clear) the socket callback.  Only while no fd is watched
 * on the loop (before the first fetch): -EBUSY otherwise.  Setting it closes
 * the backend fd (vl_loop_fd returns -1); clearing it opens a new one. */
int vl_loop_set_socket_cb(vl_loop *loop, vl_socket_cb *cb, void *user);
/* Set (or clear) the timer callback; when set, it is called at once if a
 * deadline is already pending.  0. */
int vl_loop_set_timer_cb(vl_loop *loop, vl_host_timer_cb *cb, void *user);
/* Attach the host's pointer to a watched fd; it is passed to every later
 * socket callback for fd until VL_POLL_REMOVE.  0, or -ENOENT when fd is not
 * watched (or being reported). */
int vl_socket_assign(vl_loop *loop, int fd, void *socketp);
/* fd is ready: events is VL_POLL_IN and/or VL_POLL_OUT (an error or hang-up:
 * pass both).  Runs fd's callback, then expired timers and deferred
 * callbacks; reports the next deadline.  Returns the number of callbacks
 * run, -EINVAL without a socket callback, -EBUSY from inside a callback. */
int vl_socket_action(vl_loop *loop, int fd, int events);
/* The host's timer fired: run expired timers and deferred callbacks, then
 * report the next deadline (always, even when unchanged).  As above. */
int vl_timeout_action(vl_loop *loop);

/* ---------------------------------------------------------------- client */
typedef struct vl_client vl_client;

typedef struct vl_client_opts {
    int concurrency;            /* max fetches in flight (100): resolving, connecting or
                                   exchanging; one waiting for its host (--per-host, its
                                   first TLS handshake) waits in that host's queue */
    int per_host;               /* max connections per scheme/host/port (0 = unlimited) */
    double connect_timeout_s;   /* DNS + TCP + TLS (10) */
    double read_timeout_s;      /* no byte while a response is due (60) */
    double timeout_s;           /* one attempt, leaving the queue to last byte (300) */
    double idle_timeout_s;      /* idle keep-alive connections closed after (30) */
    int max_redirs;             /* redirects followed (10; 0 = none) */
    int decompress;             /* send Accept-Encoding and decode gzip/deflate (1) */
    int fail_on_http_error;     /* status >= 400 is a failure (0) */
    int insecure;               /* skip TLS verification (0) */
    const char *cacert;         /* CA bundle file (NULL: environment, then system) */
    const char *const *resolve; /* "HOST:PORT:ADDR" overrides, as curl's --resolve */
    size_t nresolve;
    const char *dns_servers;    /* "ADDR[:PORT],..." for the resolver (NULL: system) */
    int retry;                  /* retries of transient failures (0) */
    double retry_delay_s;       /* fixed delay between retries (0 = backoff) */
    double retry_max_time_s;    /* all attempts together (0 = unbounded) */
    size_t max_header_bytes;    /* response header block bound (65536) */
    uint64_t max_filesize;      /* decoded body bound (0 = unbounded) */
    const char *user_agent;     /* NULL: "volley/VERSION" */
    vl_trace_cb *trace;         /* --verbose lines (state changes, TLS, DNS); NULL none */
    void *trace_data;
    int read_ahead;             /* requests a gather keeps started: in flight plus waiting
                                   in their hosts' queues (0: 4 x concurrency) */
    double rate_per_s;          /* request starts per second over the client (0: no limit) */
    double per_host_rate_per_s; /* request starts per second to one host (0: no limit) */
    double per_host_delay_s;    /* least time between request starts to one host (0) */
    int http_version;           /* VL_HTTP_* below (VL_HTTP_DEFAULT) */
    /* Proxies, as curl's -x and environment: "[SCHEME://][USER:PASSWORD@]HOST[:PORT]",
     * SCHEME http (the default; port 1080 by default), https, socks4, socks4a, socks5
     * (names resolved here) or socks5h (names resolved by the proxy).  USER and
     * PASSWORD are percent-decoded; they go to the proxy only.  https (TLS to
     * the proxy, default port 443, verified like a server) as well. */
    const char *proxy;          /* every URL (-x); "" = none, not even the two below */
    const char *http_proxy;     /* http:// URLs when proxy is NULL (the env's http_proxy) */
    const char *https_proxy;    /* https:// URLs when proxy is NULL (HTTPS_PROXY) */
    const char *noproxy;        /* hosts reached directly, as curl's --noproxy: "a.test,
                                   .b.test, 10.0.0.0/8, ::1" (a name and its subdomains,
                                   IP literals, CIDR ranges) or "*" (every host) */
    const char *proxy_cacert;   /* CA file for https:// proxies (NULL: environment, system) */
    int proxy_insecure;         /* do not verify an https:// proxy (0) */
} vl_client_opts;

/* Which HTTP to speak (curl's --http1.1, --http2, --http2-prior-knowledge). */
enum {
    VL_HTTP_DEFAULT = 0,        /* https offers h2,http/1.1 by ALPN; http is HTTP/1.1 */
    VL_HTTP_1_1 = 1,            /* HTTP/1.1 only (ALPN offers http/1.1) */
    VL_HTTP_2 = 2,              /* as the default */
    VL_HTTP_2_PRIOR = 3,        /* as the default, and h2 without upgrade on http:// (h2c) */
};

/* What a client is doing right now. */
typedef struct vl_client_stats {
    int in_flight;              /* fetches resolving, connecting or exchanging */
    int max_in_flight;          /* concurrency (lowered to fit the fd limit) */
    int queued;                 /* fetches waiting in their hosts' queues */
    int throttled_hosts;        /* hosts slowed by a 429/503 so far */
    int runnable;               /* some queued fetch's host has room: it starts next */
} vl_client_stats;

/* Fill opts with the defaults above. */
void vl_client_opts_init(vl_client_opts *opts);
/* The proxies of the environment, read as curl reads them: http_proxy
 * (lower-case only: an HTTP_PROXY can come from a CGI request's "Proxy:"
 * header, httpoxy), https_proxy or HTTPS_PROXY, all_proxy or ALL_PROXY for
 * either when unset, no_proxy or NO_PROXY.  Sets opts->http_proxy,
 * https_proxy and noproxy where still NULL (pointers into the environment:
 * valid while it is unchanged); returns how many it set.  The library never
 * reads the environment by itself: an embedder chooses. */
int vl_client_opts_proxy_env(vl_client_opts *opts);
/* Create a client on loop.  opts is copied (strings too).  On failure
 * returns a negative code and writes a message to errbuf. */
int vl_client_new(vl_loop *loop, const vl_client_opts *opts, vl_client **out,
                  char *errbuf, size_t errlen);
/* Close every connection and free the client.  No fetch may be running. */
void vl_client_free(vl_client *client);
void vl_client_stats_get(const vl_client *client, vl_client_stats *out);
vl_loop *vl_client_loop(const vl_client *client);

/* ----------------------------------------------------------------- fetch */
/* Body sink: called with each decoded body chunk; return 0 to go on, or a
 * negative code to fail the fetch.  Runs inside the loop's io callback; it
 * may start fetches and cancel any fetch, its own included.  Only the body
 * of the response that becomes the result comes here: a redirect's and a
 * retried status's (a 503's, with retry set) are dropped.  One exception:
 * an attempt cut off mid-body (a reset) and then retried has already handed
 * over its first bytes; the next attempt's body follows from its first
 * byte, and vl_result.bytes counts the final attempt only, so the body is
 * the last `bytes` bytes the sink got (output_file is rewritten instead). */
typedef int vl_body_cb(void *data, const char *chunk, size_t len);

/* Raw-bytes tap (for WARC writers): the exchange's bytes exactly as they
 * cross the connection, above TLS (and any proxy tunnel), before parsing.
 * One fetch makes one exchange per attempt, redirect hop and stale-retry:
 *   VL_WIRE_START    the request is about to be written: url, peer
 *   VL_WIRE_SENT     request bytes written (head, then body), in order
 *   VL_WIRE_RECV     response bytes the parser took for this response, in
 *                    order (status line, headers, body with its chunked
 *                    framing, interim 1xx responses included); bytes after
 *                    the response are not part of it and not reported; a
 *                    read the parser rejected is reported whole
 *   VL_WIRE_PAYLOAD  the response body with the chunked framing removed and
 *                    its content coding kept (a redirect's body too); may
 *                    come before the VL_WIRE_RECV that carries the same bytes
 *   VL_WIRE_END      the exchange is over: complete says whether the whole
 *                    response was received; err (0 or negative) why not, or
 *                    why the fetch failed after it (sent/recv: the totals)
 * Every START gets one END.  The callback runs inside the loop's io
 * callbacks, on the loop's thread; it must not call into volley. */
enum { VL_WIRE_START = 1, VL_WIRE_SENT, VL_WIRE_RECV, VL_WIRE_PAYLOAD, VL_WIRE_END };
typedef struct vl_wire_event {
    int type;
    const char *url;                /* START: the URL requested, normalised */
    const char *peer;               /* START: "1.2.3.4:443" or "[::1]:80" */
    const char *data;               /* SENT, RECV, PAYLOAD: the bytes */
    size_t len;
    int complete;                   /* END */
    int err;                        /* END */
    uint64_t sent_bytes, recv_bytes;/* END */
} vl_wire_event;
typedef void vl_wire_cb(void *data, const vl_wire_event *ev);

typedef struct vl_request {
    const char *url;
    const char *method;             /* NULL: GET, or POST when a body is given */
    const char *const *headers;     /* "Name: value" strings */
    size_t nheaders;
    const char *body;               /* request body in memory (may hold NULs) */
    size_t body_len;
    const char *body_file;          /* or: stream the body from this file */
    const char *output_file;        /* save the body here (removed on failure) */
    vl_body_cb *on_body;            /* or: hand the body to this callback */
    void *body_data;
    int64_t index;                  /* copied into the result */
    void *user;                     /* copied into the result */
    vl_wire_cb *on_wire;            /* raw-bytes tap (NULL: none) */
    void *wire_data;
} vl_request;

typedef struct vl_timings {         /* milliseconds; -1 when the phase did not happen */
    double queue_ms;                /* waiting for a slot or connection */
    double dns_ms, connect_ms, tls_ms;
    double send_ms;                 /* request fully written, from start */
    double ttfb_ms;                 /* first response byte, from start */
    double total_ms;                /* from leaving the queue to the end */
    double proxy_ms;                /* the proxy's tunnel (CONNECT, SOCKS) after connect */
} vl_timings;

typedef struct vl_result {          /* valid only during the result callback */
    int64_t index;
    const char *url;
    int ok;                         /* 1 success, 0 failure */
    int status;                     /* final HTTP status, 0 if none */
    uint64_t bytes;                 /* decoded body bytes */
    double time_ms;                 /* from submission to the end */
    int redirects;
    const char *final_url;          /* last URL requested, NULL if never requested */
    int err;                        /* 0 or a negative code */
    const char *error;              /* NULL or a human-readable message */
    const char *file;               /* output_file if the body was saved */
    vl_timings timings;
    int reused;                     /* the last attempt used a pooled connection */
    int attempts;                   /* attempts made (1 + retries) */
    void *user;
    double throttled_ms;            /* time waited for a rate limit or a host's pause */
    const char *http_version;       /* "1.1" or "2" of the last exchange; NULL if none */
    const char *content_type;       /* the final response's Content-Type value, or NULL */
} vl_result;

typedef void vl_result_cb(const vl_result *result, void *data);
typedef struct vl_fetch vl_fetch;

/* Start one fetch.  req is copied; cb runs exactly once, from the loop's
 * deferred phase (never inside this call), after which the fetch is freed.
 * A malformed URL is not an error here: its result reports it.  Returns 0
 * or -ENOMEM.  *out (if not NULL) may be passed to vl_fetch_cancel until cb. */
int vl_fetch_start(vl_client *client, const vl_request *req, vl_result_cb *cb,
                   void *data, vl_fetch **out);
/* Fail the fetch with VL_ECANCELED; its callback still runs once. */
void vl_fetch_cancel(vl_fetch *fetch);

/* ---------------------------------------------------------------- gather */
/* Iterator: fill *req and return 1; return 0 at the end; or return -EAGAIN
 * when no request is ready yet (a pipe that has not delivered the next line):
 * the gather then waits for vl_gather_resume().  Strings in *req need live
 * only until the next call. */
typedef int vl_next_cb(void *data, vl_request *req);
typedef struct vl_gather_op vl_gather_op;

/* Start fetching requests from next with at most window in flight (0: the
 * client's concurrency).  Each result goes to on_result as it completes;
 * done (may be NULL) runs once after the last.  Memory is bounded by the
 * window, not by the number of requests. */
int vl_gather_start(vl_client *client, int window, vl_next_cb *next, void *next_data,
                    vl_result_cb *on_result, void *result_data,
                    vl_defer_cb *done, void *done_data, vl_gather_op **out);
/* The iterator may have more now (after it returned -EAGAIN).  Call from
 * the loop's thread, e.g. from an fd watcher; not from inside next. */
void vl_gather_resume(vl_gather_op *g);
void vl_gather_free(vl_gather_op *g);
/* The blocking form: runs the client's loop until every request is done.
 * Returns the number of failed fetches, or a negative code. */
int vl_gather(vl_client *client, int window, vl_next_cb *next, void *next_data,
              vl_result_cb *on_result, void *result_data);

#ifdef __cplusplus
}
#endif
#endif
