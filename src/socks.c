/* socks.c: the SOCKS side of the tunnel stage: SOCKS5 (RFC 1928) with no
 * authentication or user name and password (RFC 1929), names sent to the
 * proxy (socks5h: ATYP 3) or addresses resolved here (socks5: ATYP 1/4);
 * SOCKS4 and 4a (the de-facto protocol, names sent with 4a).  Messages are
 * built in t->out and replies read into t->in exactly as long as they are:
 * nothing after the reply is the proxy's. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tunnel.h"

enum {
    S5_METHOD,   /* reading the chosen method: VER METHOD */
    S5_AUTH,     /* reading the RFC 1929 status: VER STATUS */
    S5_REPLY,    /* reading VER REP RSV ATYP and the address's first byte */
    S5_REPLY_ADDR, /* reading the rest of the bound address and port */
    S4_REPLY,    /* reading the 8-byte SOCKS4 reply */
};

static int fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct conn *c, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vl_fmt(c->err, sizeof(c->err), "proxy: %s", msg);
    return -VL_EPROXY;
}

static void expect(struct tunnel *t, size_t n)
{
    t->in_len = 0;
    t->in_need = n;
}

static void message(struct tunnel *t, size_t n)
{
    t->out_len = n;
    t->out_off = 0;
}

/* ------------------------------------------------------------------ SOCKS4 */

static int socks4_begin(struct conn *c, struct tunnel *t)
{
    unsigned char *o = t->out;
    const char *user = t->proxy->user ? t->proxy->user : "";
    size_t ulen = strlen(user), hlen = strlen(t->host), n = 0;
    if (ulen > 255 || hlen > 255)
        return fail(c, "socks4: user or host name too long (%s)", t->host);
    o[n++] = 4;
    o[n++] = 1; /* CONNECT */
    o[n++] = (unsigned char)(t->port >> 8);
    o[n++] = (unsigned char)t->port;
    if (t->proxy->kind == PROXY_SOCKS4) {
        if (!t->has_addr || t->addr.sa.sa_family != AF_INET)
            return fail(c, "socks4: %s has no IPv4 address (socks4 carries only IPv4)", t->host);
        memcpy(o + n, &t->addr.in4.sin_addr, 4);
        n += 4;
    } else {
        static const unsigned char marker[4] = {0, 0, 0, 1}; /* 0.0.0.x: the name follows */
        memcpy(o + n, marker, 4);
        n += 4;
    }
    memcpy(o + n, user, ulen + 1);
    n += ulen + 1;
    if (t->proxy->kind == PROXY_SOCKS4A) {
        memcpy(o + n, t->host, hlen + 1);
        n += hlen + 1;
    }
    message(t, n);
    expect(t, 8);
    t->step = S4_REPLY;
    return 0;
}

static int socks4_reply(struct conn *c, struct tunnel *t)
{
    static const char *const why[] = {"request rejected or failed",
                                      "no identd on the client", "identd user mismatch"};
    if (t->in[0] != 0)
        return fail(c, "socks4: not a SOCKS4 reply");
    if (t->in[1] == 0x5a)
        return 1;
    int code = t->in[1];
    return fail(c, "socks4: %s (reply %d)",
                code >= 0x5b && code <= 0x5d ? why[code - 0x5b] : "unknown reply", code);
}

/* ------------------------------------------------------------------ SOCKS5 */

static int socks5_request(struct conn *c, struct tunnel *t)
{
    unsigned char *o = t->out;
    size_t n = 0;
    o[n++] = 5;
    o[n++] = 1; /* CONNECT */
    o[n++] = 0;
    if (t->proxy->kind == PROXY_SOCKS5H) {
        size_t hlen = strlen(t->host);
        if (hlen > 255)
            return fail(c, "socks5: host name too long (%s)", t->host);
        o[n++] = 3;
        o[n++] = (unsigned char)hlen;
        memcpy(o + n, t->host, hlen);
        n += hlen;
    } else if (t->has_addr && t->addr.sa.sa_family == AF_INET6) {
        o[n++] = 4;
        memcpy(o + n, &t->addr.in6.sin6_addr, 16);
        n += 16;
    } else if (t->has_addr) {
        o[n++] = 1;
        memcpy(o + n, &t->addr.in4.sin_addr, 4);
        n += 4;
    } else {
        return fail(c, "socks5: no address for %s", t->host);
    }
    o[n++] = (unsigned char)(t->port >> 8);
    o[n++] = (unsigned char)t->port;
    message(t, n);
    expect(t, 5);
    t->step = S5_REPLY;
    return 0;
}

static int socks5_auth(struct conn *c, struct tunnel *t)
{
    const struct proxy *p = t->proxy;
    size_t ul = strlen(p->user), pl = strlen(p->pass), n = 0;
    if (ul > 255 || pl > 255)
        return fail(c, "socks5: user name or password over 255 bytes");
    t->out[n++] = 1; /* RFC 1929 version */
    t->out[n++] = (unsigned char)ul;
    memcpy(t->out + n, p->user, ul);
    n += ul;
    t->out[n++] = (unsigned char)pl;
    memcpy(t->out + n, p->pass, pl);
    n += pl;
    message(t, n);
    expect(t, 2);
    t->step = S5_AUTH;
    return 0;
}

static int socks5_method(struct conn *c, struct tunnel *t)
{
    if (t->in[0] != 5)
        return fail(c, "socks5: not a SOCKS5 reply");
    if (t->in[1] == 0)
        return socks5_request(c, t);
    if (t->in[1] == 2 && t->proxy->user)
        return socks5_auth(c, t);
    if (t->in[1] == 0xff)
        return fail(c, t->proxy->user ? "socks5: no acceptable authentication method"
                                      : "socks5: the proxy wants authentication (no user name "
                                        "given)");
    return fail(c, "socks5: the proxy chose a method not offered");
}

static int socks5_reply(struct conn *c, struct tunnel *t)
{
    static const char *const why[] = {
        NULL, "general SOCKS server failure", "connection not allowed by ruleset",
        "network unreachable", "host unreachable", "connection refused", "TTL expired",
        "command not supported", "address type not supported",
    };
    if (t->in[0] != 5)
        return fail(c, "socks5: not a SOCKS5 reply");
    int rep = t->in[1];
    if (rep != 0)
        return fail(c, "socks5: %s (reply %d)",
                    rep < (int)ARRAY_LEN(why) ? why[rep] : "unknown failure", rep);
    /* the bound address: 4 or 16 bytes, or a name of in[4] bytes; then a port */
    size_t rest;
    switch (t->in[3]) {
    case 1: rest = 4 - 1 + 2; break;
    case 3: rest = (size_t)t->in[4] + 2; break;
    case 4: rest = 16 - 1 + 2; break;
    default: return fail(c, "socks5: bad address type in the reply");
    }
    expect(t, rest);
    t->step = S5_REPLY_ADDR;
    return 0;
}

int socks_begin(struct conn *c, struct tunnel *t)
{
    if (t->proxy->kind == PROXY_SOCKS4 || t->proxy->kind == PROXY_SOCKS4A)
        return socks4_begin(c, t);
    size_t n = 0;
    t->out[n++] = 5;
    if (t->proxy->user) {
        t->out[n++] = 2;
        t->out[n++] = 0; /* no authentication */
        t->out[n++] = 2; /* user name and password */
    } else {
        t->out[n++] = 1;
        t->out[n++] = 0;
    }
    message(t, n);
    expect(t, 2);
    t->step = S5_METHOD;
    return 0;
}

int socks_step(struct conn *c, struct tunnel *t)
{
    switch (t->step) {
    case S5_METHOD: return socks5_method(c, t);
    case S5_AUTH:
        if (t->in[1] != 0)
            return fail(c, "socks5: user name and password rejected");
        return socks5_request(c, t);
    case S5_REPLY: return socks5_reply(c, t);
    case S5_REPLY_ADDR: return 1;
    case S4_REPLY: return socks4_reply(c, t);
    }
    return fail(c, "socks: bad state");
}
