/* tunnel.h: the proxy stage of the connection stack, between TCP and TLS
 * (TCP -> [TLS to an https proxy] -> [tunnel: HTTP CONNECT | SOCKS4/4a/5/5h]
 * -> [TLS] -> HTTP).  It is a conn_ops whose handshake speaks the proxy's
 * protocol, driven by readiness like TLS's; once the target is reached the
 * stage removes itself (c->ops is tcp_ops again, or the proxy's TLS, which
 * the target's TLS then runs inside) and TLS or HTTP go on over the same
 * socket.  Knows nothing of fetches or pools. */
#ifndef VL_TUNNEL_H
#define VL_TUNNEL_H

#include <stddef.h>

#include "conn.h"
#include "http.h"
#include "proxy.h"
#include "tls.h"

/* Where the tunnel leads. */
struct tunnel_target {
    const char *host;               /* the target's name (CONNECT, socks4a, socks5h) */
    int port;
    const union vl_sockaddr *addr;  /* resolved here (socks4, socks5), else NULL */
    const char *user_agent;         /* for CONNECT */
    size_t max_header_bytes;        /* the CONNECT response's head bound */
    struct tls_ctx *proxy_tls;      /* https proxy: how to verify it */
    const char *proxy_tls_err;      /* why proxy_tls is NULL */
    int forward_only;               /* https proxy, http URL: only TLS to the proxy */
};

/* Put the tunnel stage on c, connected to p.  The handshake op then runs
 * until 0 (tunnel ready, stage gone), -EAGAIN (c->want says for what), or
 * -VL_EPROXY with c->err naming the hop: "proxy: CONNECT to a.test:443
 * refused (407 Proxy Authentication Required)", "proxy: socks5: host
 * unreachable (reply 4)".  0, or -ENOMEM / -VL_EPROXY with c->err set. */
int tunnel_attach(struct conn *c, const struct proxy *p, const struct tunnel_target *t);

/* ----------------------------------------- shared by tunnel.c and socks.c */
#define TUNNEL_MSG_BYTES 600 /* the largest SOCKS message: 3 + 2 * (1 + 255) */

enum tunnel_phase {
    TUNNEL_PROXY_TLS,               /* the TLS handshake with an https proxy */
    TUNNEL_TALK,                    /* CONNECT or SOCKS */
};

struct tunnel {
    const struct proxy *proxy;      /* the client's, outlives every conn */
    const struct conn_ops *lower;   /* what the stage talks through: tcp, or TLS to the proxy */
    enum tunnel_phase phase;
    int forward_only;               /* done after TUNNEL_PROXY_TLS */
    int step;                       /* the protocol's own steps (socks.c) */
    unsigned char msg[TUNNEL_MSG_BYTES]; /* room for every SOCKS message */
    unsigned char *out;             /* the message being sent: msg, or out_heap */
    unsigned char *out_heap;        /* a CONNECT request longer than msg (long credentials) */
    size_t out_len, out_off;
    unsigned char in[TUNNEL_MSG_BYTES];  /* the reply being read: exactly in_need bytes */
    size_t in_len, in_need;
    char target[300];               /* "a.test:443", "[::1]:443": messages, CONNECT */
    char host[256];
    int port;
    union vl_sockaddr addr;         /* when resolved here */
    int has_addr;
    struct http_resp resp;          /* the CONNECT response */
    char status_line[128];          /* its first bytes, for the reason phrase */
    size_t status_len;
};

/* socks.c: fill t->out with the first message. 0 or -VL_EPROXY (c->err). */
int socks_begin(struct conn *c, struct tunnel *t);
/* t->in holds the in_need bytes asked for: act on them.  1 when the tunnel
 * is up, 0 when the next message (t->out) or reply (t->in_need) is set,
 * or -VL_EPROXY with c->err set. */
int socks_step(struct conn *c, struct tunnel *t);

#endif
