/* dns.c: name resolution without blocking the loop.  Order: --resolve
 * overrides, IP literals, "localhost", then the resolver.
 * Knows nothing of HTTP. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

struct override {
    char *host;
    int port;                    /* 0 = any port ("HOST:*:ADDR" is not curl's; kept exact) */
    struct addr_list addrs;
};

struct dns {
    vl_loop *loop;
    struct override *ov;
    size_t nov;
};

static int parse_ip(const char *s, int port, union vl_sockaddr *out)
{
    char buf[64];
    size_t n = strlen(s);
    memset(out, 0, sizeof(*out));
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    if (inet_pton(AF_INET, s, &out->in4.sin_addr) == 1) {
        out->in4.sin_family = AF_INET;
        out->in4.sin_port = htons((uint16_t)port);
        return 1;
    }
    if (inet_pton(AF_INET6, s, &out->in6.sin6_addr) == 1) {
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)port);
        return 1;
    }
    return 0;
}

/* "HOST:PORT:ADDR[,ADDR...]" as curl's --resolve; ADDR may be [v6]. */
static int parse_override(const char *spec, struct override *o, char *err, size_t errlen)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char *end;
    memset(o, 0, sizeof(*o));
    if (!c1 || !c2 || c1 == spec)
        goto bad;
    long port = strtol(c1 + 1, &end, 10);
    if (end != c2 || port <= 0 || port > 65535)
        goto bad;
    o->port = (int)port;
    char *list = vl_strdup(c2 + 1);
    if (!list)
        return -ENOMEM;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->addrs.n == CONNECT_MAX_ADDRS || !parse_ip(tok, o->port, &o->addrs.addr[o->addrs.n])) {
            free(list);
            goto bad;
        }
        o->addrs.n++;
    }
    free(list);
    if (o->addrs.n == 0)
        goto bad;
    o->host = vl_strndup(spec, (size_t)(c1 - spec));
    return o->host ? 0 : -ENOMEM;
bad:
    vl_fmt(err, errlen, "--resolve: expected HOST:PORT:ADDR[,ADDR...], got '%s'", spec);
    return -VL_EUSAGE;
}

int dns_new(vl_loop *loop, const vl_client_opts *opts, struct dns **out, char *err, size_t errlen)
{
    struct dns *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->loop = loop;
    if (opts->nresolve) {
        d->ov = calloc(opts->nresolve, sizeof(*d->ov));
        if (!d->ov) {
            free(d);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < opts->nresolve; i++) {
        int rc = parse_override(opts->resolve[i], &d->ov[i], err, errlen);
        if (rc < 0) {
            dns_free(d);
            return rc;
        }
        d->nov++;
    }
    *out = d;
    return 0;
}

void dns_free(struct dns *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nov; i++)
        free(d->ov[i].host);
    free(d->ov);
    free(d);
}

static void set_port(struct addr_list *l, int port)
{
    for (int i = 0; i < l->n; i++) {
        if (l->addr[i].sa.sa_family == AF_INET6)
            l->addr[i].in6.sin6_port = htons((uint16_t)port);
        else
            l->addr[i].in4.sin_port = htons((uint16_t)port);
    }
}

int dns_resolve(struct dns *d, const char *host, int port, struct addr_list *addrs,
                dns_cb *cb, dns_trace_cb *trace, void *data, struct dns_query **q, char *msg)
{
    (void)cb;
    (void)q;
    for (size_t i = 0; i < d->nov; i++) {
        if (d->ov[i].port == port && strcasecmp(d->ov[i].host, host) == 0) {
            *addrs = d->ov[i].addrs;
            if (trace)
                trace(data, "dns: --resolve override");
            return 1;
        }
    }
    memset(addrs, 0, sizeof(*addrs));
    if (parse_ip(host, port, &addrs->addr[0])) {
        addrs->n = 1;
        return 1;
    }
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) {
        /* RFC 6761 §6.3: localhost is loopback; both families, v6 first as
         * getaddrinfo orders them, so happy eyeballs covers a v4-only server. */
        parse_ip("::1", port, &addrs->addr[0]);
        parse_ip("127.0.0.1", port, &addrs->addr[1]);
        addrs->n = 2;
        set_port(addrs, port);
        return 1;
    }
    vl_fmt(msg, 256, "dns: resolver not available for '%s' (use --resolve)", host);
    return -VL_EDNS;
}

void dns_cancel(struct dns_query *q) { (void)q; }
