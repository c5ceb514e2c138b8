/* proxy.h: which proxy (if any) a URL goes through, as curl chooses it:
 * the proxy URLs of the options (parsed once per client), the noproxy list
 * (host suffixes, '*', IP literals and CIDR ranges), the pool key of the
 * route.  Also the environment lookup (vl_client_opts_proxy_env).  Knows
 * nothing of sockets: tunnel.c and socks.c speak to the proxies. */
#ifndef VL_PROXY_H
#define VL_PROXY_H

#include <stddef.h>

#include "url.h"
#include "volley.h"

enum proxy_kind {
    PROXY_HTTP,     /* http://: absolute-form for http URLs, CONNECT for https */
    PROXY_HTTPS,    /* https://: the same, over TLS to the proxy */
    PROXY_SOCKS4,   /* socks4://: IPv4 resolved here */
    PROXY_SOCKS4A,  /* socks4a://: names resolved by the proxy */
    PROXY_SOCKS5,   /* socks5://: names resolved here */
    PROXY_SOCKS5H,  /* socks5h://: names resolved by the proxy */
};

/* One parsed proxy URL; every string owned. */
struct proxy {
    enum proxy_kind kind;
    char *host;         /* IPv6 without brackets */
    int port;
    char *user, *pass;  /* percent-decoded, or NULL */
    char *auth;         /* "Basic ..." for Proxy-Authorization (http(s), with a user), or NULL */
    char *name;         /* "http://127.0.0.1:3128": messages, traces, pool keys; no credentials */
};

/* The client's proxy settings: at most one proxy per URL scheme. */
struct proxy_config {
    struct proxy *http, *https;  /* NULL: direct */
    char *noproxy;               /* owned copy, or NULL */
};

/* Parse "[SCHEME://][USER[:PASSWORD]@]HOST[:PORT][/]" (curl's -x syntax:
 * http:// by default, port 1080 by default).  0 and *out, or -VL_EUSAGE
 * (-ENOMEM) with a message in err. */
int proxy_parse(const char *s, struct proxy **out, char *err, size_t errlen);
void proxy_free(struct proxy *p);

/* From opts: proxy ("" = none, for every URL) else http_proxy and
 * https_proxy per scheme; noproxy.  0, or a negative code with err. */
int proxy_config_init(struct proxy_config *pc, const vl_client_opts *o, char *err, size_t errlen);
void proxy_config_free(struct proxy_config *pc);

/* The proxy for u, or NULL to go direct. */
const struct proxy *proxy_for(const struct proxy_config *pc, const struct url *u);

/* Does host (lower-case, IPv6 without brackets) match the noproxy list?
 * As curl: a list of names separated by commas (and blanks); '*' alone
 * matches all; a name matches itself and its subdomains (a leading dot is
 * ignored); an IP literal matches the same address, or a CIDR range
 * "10.0.0.0/8", "fd00::/8". */
int proxy_noproxy_match(const char *list, const char *host);

/* An HTTP proxy (http:// or https://): forwards http URLs, CONNECT for https. */
int proxy_is_http(const struct proxy *p);
/* Does reaching u through p need a tunnel (SOCKS, or CONNECT for https)?
 * Else p forwards the request itself (absolute-form). */
int proxy_tunnels(const struct proxy *p, const struct url *u);
/* Is p spoken to over TLS (https://)? */
int proxy_uses_tls(const struct proxy *p);
/* Does the connection to p need the proxy stage (a tunnel, or TLS to p)? */
int proxy_has_stage(const struct proxy *p, const struct url *u);
/* Must the target's name be resolved here (socks4, socks5)? */
int proxy_resolves_locally(const struct proxy *p);
/* The pool key of u's route through p, malloc'ed: requests forwarded by an
 * http proxy share its connections ("proxy http://h:p"); a tunnel is a
 * connection to its target ("https://a.test:443 via http://h:p").  NULL
 * when out of memory. */
char *proxy_pool_key(const struct proxy *p, const struct url *u);

#endif
