/* h2.c: HTTP/2 sessions and streams over one connection each, with
 * nghttp2's callback API driven from the loop (see h2.h).  Owns the
 * session's connection, its fd watcher, its idle timer and its output
 * buffer.  A session is closed only from its own io callback or timer (or
 * h2_close_all), never from inside nghttp2's callbacks; a stream is freed
 * only when nghttp2 closes it or its session goes. */
#include <ctype.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"

/* RFC 9113 §6.9.2: flow-control windows sized so that one big body is not
 * held back by WINDOW_UPDATE round trips (nghttp2 returns the window as
 * soon as a DATA chunk has been passed on, and we never hold bytes). */
#define H2_STREAM_WINDOW_BYTES (16u << 20)
#define H2_CONN_WINDOW_BYTES (64u << 20)
#define H2_OUT_FILL_BYTES 65536      /* frames serialised ahead of one writev */
#define H2_DEFAULT_STREAMS 100       /* assumed before the server's SETTINGS (RFC 9113 §6.5.2) */
#define H2_READS_PER_EVENT 16
#define H2_MAX_REQ_FIELDS 128

struct h2_stream {
    struct h2_session *s;
    int32_t id;
    const struct h2_events *ev;
    void *owner;                /* NULL once detached */
    struct list_node link;      /* in s->streams */
    struct vl_buf head;         /* the header block being rendered as HTTP/1.1 */
    int final;                  /* the final (non-1xx) head went to the owner */
    int trailers;               /* the block being received is a trailer section */
    int ended;                  /* END_STREAM received */
    int closed;                 /* nghttp2 closed it */
    int got_bytes;              /* response bytes went to the owner */
    size_t block_bytes;         /* of the header block being received (trailers too) */
    char err[160];              /* our own reason to reset it */
};

struct h2_session {
    vl_client *cl;
    struct conn *c;
    nghttp2_session *ng;
    struct host *host;
    struct list_node hlink;     /* in host->h2 */
    struct list_node clink;     /* in cl->h2_sessions */
    struct list_node streams;   /* every h2_stream not yet freed */
    int nattached;              /* streams with an owner */
    int https;
    int got_settings;
    int goaway;                 /* received: no new streams */
    int draining;               /* a stream starved (read timeout): no new streams either */
    int32_t goaway_last;
    int events;                 /* the fd interest last set */
    int kick_write;             /* frames were submitted outside flush(): write soon */
    struct vl_buf out;          /* serialised frames not yet written */
    size_t out_off;
    vl_timer idle_timer;
    char err[200];              /* nghttp2's last error message */
};

static void trace(struct h2_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct h2_session *s, const char *fmt, ...)
{
    if (!s->cl->opts.trace)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    client_trace(s->cl, "h2#%llu %s", (unsigned long long)s->c->id, line);
}

static const char *frame_name(uint8_t type)
{
    static const char *const names[] = {"DATA",       "HEADERS", "PRIORITY", "RST_STREAM",
                                        "SETTINGS",   "PUSH_PROMISE", "PING", "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION"};
    return type < ARRAY_LEN(names) ? names[type] : "UNKNOWN";
}

static void trace_frame(struct h2_session *s, const char *dir, const nghttp2_frame *fr)
{
    if (!s->cl->opts.trace)
        return;
    char extra[96] = "";
    if (fr->hd.type == NGHTTP2_RST_STREAM)
        vl_fmt(extra, sizeof(extra), " error=%s", nghttp2_http2_strerror(fr->rst_stream.error_code));
    else if (fr->hd.type == NGHTTP2_GOAWAY)
        vl_fmt(extra, sizeof(extra), " last_stream=%d error=%s", fr->goaway.last_stream_id,
               nghttp2_http2_strerror(fr->goaway.error_code));
    trace(s, "%s %s stream=%d flags=0x%02x length=%zu%s", dir, frame_name(fr->hd.type),
          fr->hd.stream_id, fr->hd.flags, fr->hd.length, extra);
}

static struct h2_stream *stream_of(struct h2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s->ng, id) : NULL;
}

static void stream_free(struct h2_stream *st)
{
    list_remove(&st->link);
    vl_buf_free(&st->head);
    free(st);
}

/* Hand the owner an event, the stream marked detached if the owner forgot. */
static void owner_fail(struct h2_stream *st, int err, int requeue, const char *msg)
{
    if (!st->owner)
        return;
    st->ev->fail(st->owner, err, requeue, msg);
    if (st->owner)
        h2_stream_detach(st);
}

/* ------------------------------------------------------ nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *data)
{
    (void)ng;
    struct h2_stream *st = stream_of(data, fr->hd.stream_id);
    if (st && fr->hd.type == NGHTTP2_HEADERS) {
        st->trailers = st->final;
        st->head.len = 0;
        st->block_bytes = 0;
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *data)
{
    (void)ng;
    (void)flags;
    struct h2_session *s = data;
    struct h2_stream *st = stream_of(s, fr->hd.stream_id);
    if (!st || !st->owner)
        return 0;
    size_t max = s->cl->opts.max_header_bytes;
    st->block_bytes += namelen + valuelen + 4; /* as rendered: "name: value\r\n" */
    if (st->block_bytes > max) {
        vl_fmt(st->err, sizeof(st->err), "http2: header block over %zu bytes", max);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    if (st->trailers)
        return 0; /* trailers are bounded, not kept (as over HTTP/1.1) */
    /* nghttp2 has checked names and values (no CR, LF or NUL; pseudo-header
     * order), so the rendering cannot smuggle a field. */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        vl_buf_adds(&st->head, "HTTP/1.1 ");
        vl_buf_add(&st->head, (const char *)value, valuelen);
        vl_buf_adds(&st->head, "\r\n"); /* no reason phrase: h2 has none */
        return 0;
    }
    /* nghttp2 checks Content-Length against the DATA received; the body is
     * framed by END_STREAM, so http.c reads it as close-delimited */
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        return 0;
    vl_buf_add(&st->head, (const char *)name, namelen);
    vl_buf_adds(&st->head, ": ");
    vl_buf_add(&st->head, (const char *)value, valuelen);
    vl_buf_adds(&st->head, "\r\n");
    return 0;
}

static void headers_done(struct h2_session *s, struct h2_stream *st)
{
    (void)s;
    if (st->trailers || !st->owner)
        return;
    vl_buf_adds(&st->head, "\r\n");
    if (st->head.oom) {
        vl_fmt(st->err, sizeof(st->err), "http2: out of memory");
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->final = st->head.len > 9 && st->head.p[9] != '1';
    st->got_bytes = 1;
    st->ev->bytes(st->owner, st->head.p, st->head.len);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *data)
{
    (void)ng;
    struct h2_session *s = data;
    trace_frame(s, "recv", fr);
    struct h2_stream *st = stream_of(s, fr->hd.stream_id);
    switch (fr->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(fr->hd.flags & NGHTTP2_FLAG_ACK) && !s->got_settings) {
            s->got_settings = 1;
            /* more room than assumed: the host's queue may go on */
            sched_kick(&s->cl->sched, s->host);
        }
        break;
    case NGHTTP2_GOAWAY:
        s->goaway = 1;
        s->goaway_last = fr->goaway.last_stream_id;
        break;
    case NGHTTP2_HEADERS:
        if (st)
            headers_done(s, st);
        break;
    default:
        break;
    }
    if (st && (fr->hd.type == NGHTTP2_HEADERS || fr->hd.type == NGHTTP2_DATA) &&
        (fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
        st->ended = 1;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *buf,
                         size_t len, void *data)
{
    (void)ng;
    (void)flags;
    struct h2_stream *st = stream_of(data, id);
    if (st && st->owner && st->final) {
        st->got_bytes = 1;
        st->ev->bytes(st->owner, (const char *)buf, len);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *fr, void *data)
{
    (void)ng;
    struct h2_session *s = data;
    trace_frame(s, "send", fr);
    if (fr->hd.type == NGHTTP2_GOAWAY && fr->goaway.error_code != NGHTTP2_NO_ERROR &&
        !s->err[0]) /* nghttp2 found the server breaking the protocol; its reason is the debug data */
        vl_fmt(s->err, sizeof(s->err), "%s (%.*s)", nghttp2_http2_strerror(fr->goaway.error_code),
               (int)(fr->goaway.opaque_data_len < 120 ? fr->goaway.opaque_data_len : 120),
               fr->goaway.opaque_data ? (const char *)fr->goaway.opaque_data : "");
    struct h2_stream *st = stream_of(s, fr->hd.stream_id);
    if (st && st->owner && (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (fr->hd.type == NGHTTP2_HEADERS || fr->hd.type == NGHTTP2_DATA))
        st->ev->sent(st->owner);
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *fr, int lib_error,
                            void *data)
{
    (void)ng;
    struct h2_stream *st = stream_of(data, fr->hd.stream_id);
    if (st && !st->err[0])
        vl_fmt(st->err, sizeof(st->err), "http2: invalid %s from server: %s",
               frame_name(fr->hd.type), nghttp2_strerror(lib_error));
    return 0;
}

static int on_error(nghttp2_session *ng, int lib_error, const char *msg, size_t len, void *data)
{
    (void)ng;
    (void)lib_error;
    struct h2_session *s = data;
    vl_fmt(s->err, sizeof(s->err), "%.*s", (int)len, msg);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *data)
{
    (void)ng;
    struct h2_session *s = data;
    struct h2_stream *st = stream_of(s, id);
    if (!st)
        return 0;
    st->closed = 1;
    nghttp2_session_set_stream_user_data(s->ng, id, NULL);
    if (st->owner) {
        char msg[256];
        if (code == NGHTTP2_NO_ERROR && st->ended && st->final) {
            st->ev->end(st->owner);
            if (st->owner)
                h2_stream_detach(st);
        } else if (st->err[0]) {
            owner_fail(st, -VL_EHTTP, 0, st->err);
        } else if (code == NGHTTP2_REFUSED_STREAM || (s->goaway && id > s->goaway_last)) {
            vl_fmt(msg, sizeof(msg), "http2: stream reset by server (%s)",
                   s->goaway && id > s->goaway_last ? "GOAWAY" : "REFUSED_STREAM");
            /* not processed (RFC 9113 §8.7), unless part of an answer came */
            owner_fail(st, -VL_EIO, st->got_bytes ? 0 : H2_NOT_PROCESSED, msg);
        } else {
            vl_fmt(msg, sizeof(msg), "http2: stream reset by server (%s)",
                   nghttp2_http2_strerror(code));
            owner_fail(st, -VL_EIO, 0, msg);
        }
    }
    stream_free(st);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *data)
{
    (void)ng;
    (void)id;
    (void)data;
    struct h2_stream *st = src->ptr;
    if (!st->owner)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ssize_t n = st->ev->body(st->owner, (char *)buf, len);
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (n == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
}

/* A request nghttp2 would not send (a header block over its limit, say):
 * the fetch fails once with the reason, instead of on_stream_close taking
 * the local refusal for the server's REFUSED_STREAM and sending it again. */
static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *fr, int lib_error,
                             void *data)
{
    (void)ng;
    struct h2_session *s = data;
    if (fr->hd.type != NGHTTP2_HEADERS || lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED)
        return 0;
    struct h2_stream *st = stream_of(s, fr->hd.stream_id);
    if (st && !st->err[0])
        vl_fmt(st->err, sizeof(st->err), "http2: request not sent: %s", nghttp2_strerror(lib_error));
    return 0;
}

static nghttp2_session_callbacks *cbs;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

/* Once per process, whatever thread comes first: every loop shares them. */
static void callbacks_init(void)
{
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        cbs = NULL;
        return;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
}

static nghttp2_session_callbacks *callbacks(void)
{
    pthread_once(&cbs_once, callbacks_init);
    return cbs;
}

/* ------------------------------------------------------------ the session */

static void session_close(struct h2_session *s, const char *why);

/* Serialise what nghttp2 has to send and write it.  0, or -1 with s->err. */
static int flush(struct h2_session *s)
{
    struct conn *c = s->c;
    s->kick_write = 0;
    for (;;) {
        if (s->out_off == s->out.len) {
            s->out.len = s->out_off = 0;
            while (s->out.len < H2_OUT_FILL_BYTES) {
                const uint8_t *p;
                ssize_t n = nghttp2_session_mem_send(s->ng, &p);
                if (n < 0) {
                    vl_fmt(s->err, sizeof(s->err), "http2: %s", nghttp2_strerror((int)n));
                    return -1;
                }
                if (n == 0)
                    break;
                vl_buf_add(&s->out, (const char *)p, (size_t)n);
            }
            if (s->out.oom) {
                vl_fmt(s->err, sizeof(s->err), "http2: out of memory");
                return -1;
            }
            if (s->out.len == 0)
                return 0;
        }
        struct iovec iov = {s->out.p + s->out_off, s->out.len - s->out_off};
        ssize_t w = c->ops->writev(c, &iov, 1);
        if (w == -EAGAIN)
            return 0;
        if (w < 0) {
            vl_fmt(s->err, sizeof(s->err), "%s", c->err);
            return -1;
        }
        s->out_off += (size_t)w;
    }
}

static void set_interest(struct h2_session *s)
{
    /* Not nghttp2_session_want_write(): it stays true while a request body
     * waits for the server's stream window, and writability would spin. */
    int ev = VL_READ;
    if (s->out_off < s->out.len || s->kick_write)
        ev |= VL_WRITE;
    if (ev != s->events) {
        s->events = ev;
        vl_io_modify(s->cl->loop, s->c->fd, ev);
    }
}

/* Read what the connection has and feed it to nghttp2.  0 to go on, 1 at
 * EOF, -1 on an error (s->err says). */
static int read_some(struct h2_session *s)
{
    struct conn *c = s->c;
    vl_client *cl = s->cl;
    for (int i = 0; i < H2_READS_PER_EVENT; i++) {
        ssize_t n = c->ops->read(c, cl->rbuf, CLIENT_RBUF_BYTES);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            vl_fmt(s->err, sizeof(s->err), "%s", c->err);
            return -1;
        }
        if (n == 0)
            return 1;
        ssize_t used = nghttp2_session_mem_recv(s->ng, (const uint8_t *)cl->rbuf, (size_t)n);
        if (used < 0) {
            if (!s->err[0])
                vl_fmt(s->err, sizeof(s->err), "%s", nghttp2_strerror((int)used));
            return -1;
        }
        if (c->ops->short_read_drains && (size_t)n < CLIENT_RBUF_BYTES)
            return 0;
    }
    return 0;
}

static void on_io(vl_loop *loop, int fd, int events, void *data)
{
    struct h2_session *s = data;
    (void)loop;
    (void)fd;
    int rc = 0;
    if (events & VL_READ)
        rc = read_some(s);
    if (rc < 0) {
        session_close(s, "protocol");
        return;
    }
    if (rc == 1) {
        session_close(s, "eof");
        return;
    }
    if (flush(s) < 0) {
        session_close(s, "write");
        return;
    }
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng) &&
        s->out_off == s->out.len) {
        /* nghttp2 ends a session it found broken (it sent GOAWAY): say why */
        session_close(s, s->err[0] ? "protocol" : "done");
        return;
    }
    set_interest(s);
}

static void on_idle(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    (void)t;
    struct h2_session *s = data;
    trace(s, "idle for %.1f s: closing", s->cl->opts.idle_timeout_s);
    session_close(s, NULL);
}

/* Every attached stream fails; those the server never answered may be
 * sent again elsewhere (the way a stale keep-alive connection's request
 * is), the others fail with why. */
static void session_close(struct h2_session *s, const char *why)
{
    vl_client *cl = s->cl;
    char msg[320];
    if (why && !strcmp(why, "eof"))
        vl_fmt(msg, sizeof(msg), "http2: connection closed before the response completed");
    else if (why && !strcmp(why, "write"))
        vl_fmt(msg, sizeof(msg), "http2: connection reset: %s", s->err);
    else if (why && !strcmp(why, "protocol"))
        vl_fmt(msg, sizeof(msg), "http2: protocol error from server: %s",
               s->err[0] ? s->err : "bad frame");
    else if (s->goaway)
        vl_fmt(msg, sizeof(msg), "http2: connection closed by server (GOAWAY)");
    else
        vl_fmt(msg, sizeof(msg), "http2: connection closed");
    int protocol = why && !strcmp(why, "protocol");
    trace(s, "closing: %s", msg);
    if (!why && flush(s) == 0) { /* our own close: pending frames (RST_STREAM), then goodbye */
        nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
        flush(s);
    }
    list_remove(&s->hlink);
    list_remove(&s->clink);
    vl_timer_stop(&s->idle_timer);
    struct conn *c = s->c;
    struct host *h = s->host;
    h->refs++; /* pool_release would free an entry no fetch holds */
    pool_release(&cl->pool, c, 0); /* gives the slot back */
    s->c = NULL;
    struct list_node *n;
    while ((n = list_pop_head(&s->streams))) {
        struct h2_stream *st = container_of(n, struct h2_stream, link);
        /* above a GOAWAY's last stream: never processed; no byte of an
         * answer yet: maybe processed (only an idempotent request goes again) */
        int requeue = protocol                                  ? 0
                      : s->goaway && st->id > s->goaway_last ? H2_NOT_PROCESSED
                      : !st->got_bytes                        ? H2_MAYBE_PROCESSED
                                                              : 0;
        owner_fail(st, -VL_EIO, requeue, st->err[0] ? st->err : msg);
        vl_buf_free(&st->head);
        free(st);
    }
    nghttp2_session_del(s->ng);
    vl_buf_free(&s->out);
    free(s);
    sched_kick(&cl->sched, h); /* a slot came free: a queued fetch may connect */
    pool_host_put(&cl->pool, h);
}

struct h2_session *h2_session_new(vl_client *cl, struct conn *c, int https)
{
    nghttp2_session_callbacks *cbs = callbacks();
    struct h2_session *s = calloc(1, sizeof(*s));
    if (!cbs || !s)
        goto fail;
    s->cl = cl;
    s->c = c;
    s->host = c->host;
    s->https = https;
    list_init(&s->streams);
    if (nghttp2_session_client_new(&s->ng, cbs, s) != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cl->opts.max_header_bytes},
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              H2_CONN_WINDOW_BYTES) != 0)
        goto fail;
    s->events = VL_READ | VL_WRITE;
    s->kick_write = 1; /* the preface and our SETTINGS */
    if (vl_io_start(cl->loop, c->fd, s->events, on_io, s) < 0)
        goto fail;
    timer_init(&s->idle_timer, cl->loop, on_idle, s);
    timer_start_us(&s->idle_timer, (uint64_t)(cl->opts.idle_timeout_s * 1e6)); /* until a stream */
    c->owner = NULL;
    list_insert_tail(&c->host->h2, &s->hlink);
    list_insert_tail(&cl->h2_sessions, &s->clink);
    c->host->h2_seen = 1;
    trace(s, "session on connection #%llu to %s", (unsigned long long)c->id, c->peer);
    return s;
fail:
    if (s && s->ng)
        nghttp2_session_del(s->ng);
    free(s);
    return NULL;
}

static int has_room(struct h2_session *s)
{
    if (s->goaway || s->draining || !nghttp2_session_check_request_allowed(s->ng))
        return 0;
    uint32_t max = nghttp2_session_get_remote_settings(s->ng,
                                                       NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (!s->got_settings && max > H2_DEFAULT_STREAMS)
        max = H2_DEFAULT_STREAMS;
    return (uint32_t)s->nattached < max;
}

void h2_stream_starved(struct h2_stream *st)
{
    struct h2_session *s = st->s;
    if (s && !s->draining) {
        /* silence on one stream is likely silence on all (a NAT that forgot
         * the connection): later fetches take a new connection, and this
         * one closes when its streams are done or its idle timer fires */
        s->draining = 1;
        trace(s, "stream %d starved: no new streams on this connection", st->id);
    }
}

struct h2_session *h2_session_with_room(struct host *h)
{
    for (struct list_node *n = h->h2.next; n != &h->h2; n = n->next) {
        struct h2_session *s = container_of(n, struct h2_session, hlink);
        if (has_room(s))
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------ the request */

static int connection_specific(const char *name, size_t len, const char *value, size_t vlen)
{
    static const char *const drop[] = {"connection", "keep-alive", "proxy-connection",
                                       "transfer-encoding", "upgrade", "host"};
    for (size_t i = 0; i < ARRAY_LEN(drop); i++)
        if (strlen(drop[i]) == len && memcmp(drop[i], name, len) == 0)
            return 1;
    /* §8.2.2: TE only as "trailers" */
    return len == 2 && memcmp(name, "te", 2) == 0 && !(vlen == 8 && !memcmp(value, "trailers", 8));
}

#define NV(n, nl, v, vl) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE})

/* Parse the HTTP/1.1 head (a copy we may lowercase) into nva. */
static int head_to_nv(char *h, size_t len, int https, nghttp2_nv *nva, size_t *nnv)
{
    char *end = h + len, *eol = memchr(h, '\n', len);
    char *sp1 = memchr(h, ' ', len), *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!eol || !sp1 || !sp2 || sp2 > eol)
        return -1;
    size_t n = 0;
    nva[n++] = NV(":method", 7, h, (size_t)(sp1 - h));
    nva[n++] = NV(":scheme", 7, https ? "https" : "http", https ? 5u : 4u);
    size_t authority = n++;
    nva[authority] = NV(":authority", 10, "", 0);
    nva[n++] = NV(":path", 5, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (char *p = eol + 1; p < end;) {
        char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le)
            break;
        char *line_end = le > p && le[-1] == '\r' ? le - 1 : le;
        if (line_end == p)
            break; /* the blank line */
        char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon)
            return -1;
        size_t nl = (size_t)(colon - p);
        char *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        for (size_t i = 0; i < nl; i++)
            p[i] = (char)tolower((unsigned char)p[i]);
        size_t vl = (size_t)(line_end - v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--; /* RFC 9113 §8.2.1: no trailing whitespace in a field value */
        if (nl == 4 && memcmp(p, "host", 4) == 0)
            nva[authority] = NV(":authority", 10, v, vl);
        if (!connection_specific(p, nl, v, vl)) {
            if (n == H2_MAX_REQ_FIELDS)
                return -1;
            nva[n++] = NV(p, nl, v, vl);
        }
        p = le + 1;
    }
    *nnv = n;
    return 0;
}

struct h2_stream *h2_stream_start(struct h2_session *s, const char *head, size_t head_len,
                                  int has_body, const struct h2_events *ev, void *owner,
                                  char *msg, size_t msglen)
{
    nghttp2_nv nva[H2_MAX_REQ_FIELDS];
    size_t nnv = 0;
    char *copy = vl_strndup(head, head_len);
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (!copy || !st) {
        vl_fmt(msg, msglen, "out of memory");
        goto fail;
    }
    if (head_to_nv(copy, head_len, s->https, nva, &nnv) < 0) {
        vl_fmt(msg, msglen, "http2: request head has over %d fields", H2_MAX_REQ_FIELDS);
        goto fail;
    }
    st->s = s;
    st->ev = ev;
    st->owner = owner;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(s->ng, NULL, nva, nnv, has_body ? &prd : NULL, st);
    if (id < 0) {
        vl_fmt(msg, msglen, "http2: cannot start a stream: %s", nghttp2_strerror(id));
        goto fail;
    }
    free(copy);
    st->id = id;
    list_insert_tail(&s->streams, &st->link);
    s->nattached++;
    vl_timer_stop(&s->idle_timer);
    s->kick_write = 1;
    set_interest(s); /* written from the loop's next turn, never inside the caller's stack */
    return st;
fail:
    free(copy);
    free(st);
    return NULL;
}

void h2_stream_detach(struct h2_stream *st)
{
    if (!st || !st->owner)
        return;
    st->owner = NULL;
    struct h2_session *s = st->s;
    if (!s->c) /* the session is closing */
        return;
    s->nattached--;
    if (!st->closed) {
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        s->kick_write = 1;
        set_interest(s);
    }
    if (s->nattached == 0)
        timer_start_us(&s->idle_timer, (uint64_t)(s->cl->opts.idle_timeout_s * 1e6));
}

const char *h2_stream_peer(const struct h2_stream *st)
{
    return st && st->s->c ? st->s->c->peer : "";
}

void h2_close_all(vl_client *cl)
{
    while (!list_empty(&cl->h2_sessions))
        session_close(container_of(cl->h2_sessions.next, struct h2_session, clink), NULL);
}
