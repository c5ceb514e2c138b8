/* tunnel.c: the proxy stage as a conn_ops ("tunnel"): TLS to an https
 * proxy first (tls.c, verified by the proxy's name), then sends the proxy's
 * messages and reads its replies without blocking, then steps aside.  HTTP
 * CONNECT is here (RFC 9110 §9.3.6; the response is read with http.c's
 * parser, as a head without body); SOCKS in socks.c.  Modelled on curl's
 * connection filters (lib/cf-h1-proxy.c, lib/socks.c): one more filter in
 * the chain, so nothing above asks which kind of proxy it goes through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel.h"

static ssize_t tunnel_read(struct conn *c, void *buf, size_t len)
{
    (void)buf;
    (void)len;
    vl_fmt(c->err, sizeof(c->err), "proxy: read before the tunnel is up");
    return -VL_EPROXY;
}

static ssize_t tunnel_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    (void)iov;
    (void)iovcnt;
    vl_fmt(c->err, sizeof(c->err), "proxy: write before the tunnel is up");
    return -VL_EPROXY;
}

static void tunnel_free(struct conn *c)
{
    struct tunnel *t = c->tunnel;
    if (!t)
        return;
    http_resp_free(&t->resp);
    free(t->out_heap);
    free(t);
    c->tunnel = NULL;
}

/* The stage and whatever it talks through (TLS to the proxy). */
static void tunnel_close(struct conn *c)
{
    const struct conn_ops *lower = c->tunnel ? ((struct tunnel *)c->tunnel)->lower : &tcp_ops;
    tunnel_free(c);
    c->ops = lower;
    lower->close(c);
}

/* A socket error inside the tunnel names the hop. */
static int hop_error(struct conn *c, ssize_t rc)
{
    if (rc == -EAGAIN)
        return -EAGAIN;
    char why[sizeof(c->err)];
    vl_fmt(why, sizeof(why), "%s", c->err);
    vl_fmt(c->err, sizeof(c->err), "proxy: %s", why);
    return -VL_EPROXY;
}

/* Send what is left of t->out.  0 when all is sent. */
static int send_out(struct conn *c, struct tunnel *t)
{
    while (t->out_off < t->out_len) {
        struct iovec iov = {t->out + t->out_off, t->out_len - t->out_off};
        ssize_t n = t->lower->writev(c, &iov, 1);
        if (n < 0)
            return hop_error(c, n);
        t->out_off += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------ HTTP CONNECT */

static int no_body(void *data, const char *chunk, size_t len)
{
    (void)data;
    (void)chunk;
    (void)len;
    return 0;
}

/* The CONNECT request into buf (snprintf's contract: the length it needs). */
static int format_connect(char *buf, size_t cap, const struct tunnel *t, const char *user_agent)
{
    const char *auth = t->proxy->auth;
    return snprintf(buf, cap,
                    "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%sUser-Agent: %s\r\n"
                    "Proxy-Connection: Keep-Alive\r\n\r\n",
                    t->target, t->target, auth ? "Proxy-Authorization: " : "", auth ? auth : "",
                    auth ? "\r\n" : "", user_agent);
}

static int connect_begin(struct conn *c, struct tunnel *t, const struct tunnel_target *tt)
{
    int n = format_connect(NULL, 0, t, tt->user_agent);
    if (n < 0) {
        vl_fmt(c->err, sizeof(c->err), "proxy: cannot format the CONNECT request to %s", t->target);
        return -VL_EPROXY;
    }
    if ((size_t)n >= sizeof(t->msg)) { /* long credentials or User-Agent */
        if (!(t->out_heap = malloc((size_t)n + 1))) {
            vl_fmt(c->err, sizeof(c->err), "out of memory");
            return -ENOMEM;
        }
        t->out = t->out_heap;
    }
    format_connect((char *)t->out, (size_t)n + 1, t, tt->user_agent);
    t->out_len = (size_t)n;
    http_resp_init(&t->resp, tt->max_header_bytes, 1, no_body, NULL);
    return 0;
}

/* "407 Proxy Authentication Required" from the status line, printable. */
static void status_text(const struct tunnel *t, char *buf, size_t len)
{
    const char *s = t->status_line, *end = s + t->status_len;
    const char *sp = memchr(s, ' ', t->status_len);
    size_t n = 0;
    for (const char *q = sp ? sp + 1 : end; q < end && *q != '\r' && *q != '\n' && n + 1 < len; q++)
        buf[n++] = (*q >= 0x20 && *q < 0x7f) ? *q : '?';
    buf[n] = '\0';
    if (!n)
        vl_fmt(buf, len, "%d", t->resp.status);
}

static int connect_done(struct conn *c, struct tunnel *t, int leftover)
{
    if (t->resp.status < 200 || t->resp.status > 299) {
        char st[100];
        status_text(t, st, sizeof(st));
        vl_fmt(c->err, sizeof(c->err), "proxy: CONNECT to %s refused (%s)", t->target, st);
        return -VL_EPROXY;
    }
    if (leftover) {
        /* the target has not been spoken to: these bytes cannot be its */
        vl_fmt(c->err, sizeof(c->err), "proxy: CONNECT to %s: bytes after the proxy's response",
               t->target);
        return -VL_EPROXY;
    }
    return 1;
}

/* Read the proxy's response.  1 when the tunnel is up. */
static int connect_read(struct conn *c, struct tunnel *t)
{
    char buf[4096];
    for (;;) {
        ssize_t n = t->lower->read(c, buf, sizeof(buf));
        if (n < 0)
            return hop_error(c, n);
        if (n == 0) {
            vl_fmt(c->err, sizeof(c->err),
                   "proxy: CONNECT to %s: the proxy closed the connection before its response",
                   t->target);
            return -VL_EPROXY;
        }
        size_t keep = sizeof(t->status_line) - t->status_len;
        if (keep > (size_t)n)
            keep = (size_t)n;
        memcpy(t->status_line + t->status_len, buf, keep);
        t->status_len += keep;
        long used = http_resp_feed(&t->resp, buf, (size_t)n);
        if (used < 0) {
            vl_fmt(c->err, sizeof(c->err), "proxy: CONNECT to %s: %s", t->target, t->resp.err);
            return -VL_EPROXY;
        }
        if (t->resp.complete)
            return connect_done(c, t, used < n);
    }
}

/* ----------------------------------------------------------------- driver */

static int tunnel_done(struct conn *c, struct tunnel *t)
{
    const struct conn_ops *lower = t->lower;
    tunnel_free(c);
    c->ops = lower;
    return 0;
}

static int tunnel_handshake(struct conn *c)
{
    struct tunnel *t = c->tunnel;
    if (t->phase == TUNNEL_PROXY_TLS) {
        int rc = t->lower->handshake(c);
        if (rc < 0)
            return hop_error(c, rc);
        if (t->forward_only)
            return tunnel_done(c, t);
        t->phase = TUNNEL_TALK;
    }
    for (;;) {
        int rc = send_out(c, t);
        if (rc < 0)
            return rc;
        if (proxy_is_http(t->proxy)) {
            rc = connect_read(c, t);
        } else if (t->in_len < t->in_need) {
            ssize_t n = t->lower->read(c, t->in + t->in_len, t->in_need - t->in_len);
            if (n < 0)
                return hop_error(c, n);
            if (n == 0) {
                vl_fmt(c->err, sizeof(c->err), "proxy: %s: the proxy closed the connection",
                       t->proxy->kind >= PROXY_SOCKS5 ? "socks5" : "socks4");
                return -VL_EPROXY;
            }
            t->in_len += (size_t)n;
            continue;
        } else {
            rc = socks_step(c, t);
        }
        if (rc < 0)
            return rc;
        if (rc == 1)
            return tunnel_done(c, t);
    }
}

static const struct conn_ops tunnel_ops = {"tunnel", tunnel_read, tunnel_writev,
                                           tunnel_handshake, tunnel_close, 0};

int tunnel_attach(struct conn *c, const struct proxy *p, const struct tunnel_target *tt)
{
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t) {
        vl_fmt(c->err, sizeof(c->err), "out of memory");
        return -ENOMEM;
    }
    t->proxy = p;
    t->port = tt->port;
    t->out = t->msg;
    size_t hl = strlen(tt->host);
    if (hl >= sizeof(t->host)) { /* never cut: the proxy would reach another host */
        vl_fmt(c->err, sizeof(c->err), "proxy: host name too long for a tunnel (%zu bytes, at most %zu)",
               hl, sizeof(t->host) - 1);
        free(t);
        return -VL_EPROXY;
    }
    memcpy(t->host, tt->host, hl + 1);
    if (strchr(tt->host, ':'))
        vl_fmt(t->target, sizeof(t->target), "[%s]:%d", tt->host, tt->port);
    else
        vl_fmt(t->target, sizeof(t->target), "%s:%d", tt->host, tt->port);
    if (tt->addr) {
        t->addr = *tt->addr;
        t->has_addr = 1;
    }
    t->phase = TUNNEL_TALK;
    t->forward_only = tt->forward_only;
    int rc = 0;
    if (proxy_uses_tls(p)) {
        /* verified like any server, by the proxy's own name */
        rc = tt->proxy_tls ? tls_attach(tt->proxy_tls, c, p->host, p->name) : -VL_ETLS;
        if (rc < 0) {
            char why[sizeof(c->err)];
            vl_fmt(why, sizeof(why), "%s",
                   tt->proxy_tls ? c->err : tt->proxy_tls_err ? tt->proxy_tls_err : "tls: no context");
            vl_fmt(c->err, sizeof(c->err), "proxy: %s", why);
            free(t);
            return rc == -ENOMEM ? rc : -VL_EPROXY;
        }
        t->phase = TUNNEL_PROXY_TLS;
    }
    t->lower = c->ops;
    c->tunnel = t;
    c->ops = &tunnel_ops;
    if (!t->forward_only)
        rc = proxy_is_http(p) ? connect_begin(c, t, tt) : socks_begin(c, t);
    if (rc < 0) {
        /* resp is only initialised by connect_begin's success; a TLS to
         * the proxy stays on c, closed with it */
        c->ops = t->lower;
        c->tunnel = NULL;
        free(t->out_heap);
        free(t);
    }
    return rc;
}
