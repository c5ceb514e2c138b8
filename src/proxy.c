/* proxy.c: proxy URLs, the noproxy list and the choice of a proxy per URL,
 * the way curl makes them (lib/proxy.c there); the environment as curl
 * reads it.  Knows nothing of sockets. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "proxy.h"
#include "util.h"

#define PROXY_DEFAULT_PORT 1080 /* curl's default for every proxy scheme but https */
#define PROXY_HTTPS_PORT 443

void proxy_free(struct proxy *p)
{
    if (!p)
        return;
    free(p->host);
    free(p->user);
    free(p->pass);
    free(p->auth);
    free(p->name);
    free(p);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into a new string (userinfo of a proxy URL). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static const struct {
    const char *scheme;
    enum proxy_kind kind;
} schemes[] = {
    {"http", PROXY_HTTP},       {"https", PROXY_HTTPS},   {"socks4", PROXY_SOCKS4},
    {"socks4a", PROXY_SOCKS4A}, {"socks5", PROXY_SOCKS5}, {"socks5h", PROXY_SOCKS5H},
};

static int parse_scheme(const char **s, struct proxy *p, char *err, size_t errlen)
{
    const char *sep = strstr(*s, "://");
    p->kind = PROXY_HTTP;
    if (!sep)
        return 0;
    size_t n = (size_t)(sep - *s);
    for (size_t i = 0; i < ARRAY_LEN(schemes); i++) {
        if (vl_strcaseeq_n(*s, n, schemes[i].scheme)) {
            p->kind = schemes[i].kind;
            *s = sep + 3;
            return 0;
        }
    }
    vl_fmt(err, errlen, "proxy: unsupported scheme '%.*s'", (int)(n < 32 ? n : 32), *s);
    return -VL_EUSAGE;
}

static int parse_userinfo(const char *s, size_t n, struct proxy *p)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (!(p->user = pct_decode(s, ulen)))
        return -ENOMEM;
    if (!(p->pass = colon ? pct_decode(colon + 1, n - ulen - 1) : vl_strdup("")))
        return -ENOMEM;
    if (!proxy_is_http(p))
        return 0;
    /* RFC 7617: Basic with base64("user:password") */
    size_t plain_len = strlen(p->user) + 1 + strlen(p->pass), b64_len = 0;
    char *plain = malloc(plain_len + 1);
    size_t cap = 6 + (plain_len + 2) / 3 * 4 + 1;
    if (!plain || !(p->auth = malloc(cap))) {
        free(plain);
        return -ENOMEM;
    }
    strcpy(plain, p->user);
    strcat(plain, ":");
    strcat(plain, p->pass);
    memcpy(p->auth, "Basic ", 6);
    int rc = mbedtls_base64_encode((unsigned char *)p->auth + 6, cap - 6, &b64_len,
                                   (const unsigned char *)plain, plain_len);
    free(plain);
    return rc == 0 ? 0 : -ENOMEM;
}

static int parse_hostport(const char *s, size_t n, struct proxy *p, char *err, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            goto bad;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < s + n) {
            if (close[1] != ':')
                goto bad;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen > 253)
        goto bad;
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-_:", host[i]))
            goto bad;
    p->port = p->kind == PROXY_HTTPS ? PROXY_HTTPS_PORT : PROXY_DEFAULT_PORT;
    if (port) {
        long v = 0;
        const char *end = s + n;
        if (port == end)
            goto bad;
        for (const char *q = port; q < end; q++) {
            if (!isdigit((unsigned char)*q) || (v = v * 10 + (*q - '0')) > 65535)
                goto bad;
        }
        if (v == 0)
            goto bad;
        p->port = (int)v;
    }
    if (!(p->host = vl_strndup(host, hlen)))
        return -ENOMEM;
    for (char *q = p->host; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return 0;
bad:
    vl_fmt(err, errlen, "proxy: bad host or port '%.*s'", (int)(n < 200 ? n : 200), s);
    return -VL_EUSAGE;
}

int proxy_parse(const char *s, struct proxy **out, char *err, size_t errlen)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int rc = parse_scheme(&s, p, err, errlen);
    if (rc == 0) {
        size_t n = strcspn(s, "/?#"); /* a path after the authority is ignored, as curl */
        const char *at = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == '@')
                at = s + i; /* the last '@': a password may hold one */
        if (at)
            rc = parse_userinfo(s, (size_t)(at - s), p);
        const char *hp = at ? at + 1 : s;
        if (rc == 0)
            rc = parse_hostport(hp, (size_t)(s + n - hp), p, err, errlen);
    }
    if (rc == 0) {
        const char *scheme = "http";
        for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
            if (schemes[i].kind == p->kind)
                scheme = schemes[i].scheme;
        size_t len = strlen(scheme) + strlen(p->host) + 16;
        if (!(p->name = malloc(len)))
            rc = -ENOMEM;
        else if (strchr(p->host, ':'))
            vl_fmt(p->name, len, "%s://[%s]:%d", scheme, p->host, p->port);
        else
            vl_fmt(p->name, len, "%s://%s:%d", scheme, p->host, p->port);
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            vl_fmt(err, errlen, "out of memory");
        proxy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int config_one(const char *s, struct proxy **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!s || !*s)
        return 0;
    return proxy_parse(s, out, err, errlen);
}

int proxy_config_init(struct proxy_config *pc, const vl_client_opts *o, char *err, size_t errlen)
{
    memset(pc, 0, sizeof(*pc));
    int rc;
    if (o->proxy) {
        rc = config_one(o->proxy, &pc->http, err, errlen);
        if (rc == 0 && pc->http)
            rc = proxy_parse(o->proxy, &pc->https, err, errlen);
    } else {
        rc = config_one(o->http_proxy, &pc->http, err, errlen);
        if (rc == 0)
            rc = config_one(o->https_proxy, &pc->https, err, errlen);
    }
    if (rc == 0 && o->noproxy && !(pc->noproxy = vl_strdup(o->noproxy))) {
        vl_fmt(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0)
        proxy_config_free(pc);
    return rc;
}

void proxy_config_free(struct proxy_config *pc)
{
    proxy_free(pc->http);
    proxy_free(pc->https);
    free(pc->noproxy);
    memset(pc, 0, sizeof(*pc));
}

const struct proxy *proxy_for(const struct proxy_config *pc, const struct url *u)
{
    const struct proxy *p = u->https ? pc->https : pc->http;
    if (p && pc->noproxy && proxy_noproxy_match(pc->noproxy, u->host))
        return NULL;
    return p;
}

/* ---------------------------------------------------------------- noproxy */

/* addr within net/bits (bits < 0: the whole address). */
static int cidr_match(int family, const char *addr, const char *net, int bits)
{
    unsigned char a[16], n[16];
    int total = family == AF_INET ? 32 : 128;
    if (inet_pton(family, addr, a) != 1 || inet_pton(family, net, n) != 1 || bits > total)
        return 0;
    if (bits < 0)
        bits = total;
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, n, (size_t)bytes) != 0)
        return 0;
    return !rest || !((a[bytes] ^ n[bytes]) & (0xff << (8 - rest)));
}

static int match_ip(int family, const char *tok, size_t len, const char *host)
{
    char net[64];
    if (len >= sizeof(net))
        return 0;
    memcpy(net, tok, len);
    net[len] = '\0';
    int bits = -1;
    char *slash = strchr(net, '/');
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || v < 0 || v > 128)
            return 0;
        bits = (int)v;
        *slash = '\0';
    }
    return cidr_match(family, host, net, bits);
}

static int match_name(const char *tok, size_t len, const char *host, size_t hlen)
{
    if (len && tok[len - 1] == '.')
        len--;
    if (len && tok[0] == '.') {
        tok++;
        len--;
    }
    if (!len)
        return 0;
    if (len == hlen)
        return strncasecmp(tok, host, len) == 0;
    return len < hlen && host[hlen - len - 1] == '.' &&
           strncasecmp(tok, host + hlen - len, len) == 0;
}

int proxy_noproxy_match(const char *list, const char *host)
{
    if (!list || !*list || !host || !*host)
        return 0;
    unsigned char buf[16];
    int family = inet_pton(AF_INET, host, buf) == 1    ? AF_INET
                 : inet_pton(AF_INET6, host, buf) == 1 ? AF_INET6
                                                       : 0;
    size_t hlen = strlen(host);
    if (!family && host[hlen - 1] == '.')
        hlen--;
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (!len)
            break;
        if (len == 1 && *p == '*')
            return 1; /* curl takes '*' alone only; in a list it is as good */
        if (family ? match_ip(family, p, len, host) : match_name(p, len, host, hlen))
            return 1;
        p += len;
    }
    return 0;
}

/* ------------------------------------------------------------------ routes */

int proxy_is_http(const struct proxy *p)
{
    return p->kind == PROXY_HTTP || p->kind == PROXY_HTTPS;
}

int proxy_tunnels(const struct proxy *p, const struct url *u)
{
    return !proxy_is_http(p) || u->https;
}

int proxy_uses_tls(const struct proxy *p) { return p->kind == PROXY_HTTPS; }

int proxy_has_stage(const struct proxy *p, const struct url *u)
{
    return proxy_uses_tls(p) || proxy_tunnels(p, u);
}

int proxy_resolves_locally(const struct proxy *p)
{
    return p->kind == PROXY_SOCKS4 || p->kind == PROXY_SOCKS5;
}

char *proxy_pool_key(const struct proxy *p, const struct url *u)
{
    struct vl_buf b = {0};
    if (proxy_tunnels(p, u)) {
        vl_buf_adds(&b, u->key);
        vl_buf_adds(&b, " via ");
    } else {
        vl_buf_adds(&b, "proxy ");
    }
    vl_buf_adds(&b, p->name);
    if (p->user) {
        /* another user name is another session at the proxy (the password
         * stays out of keys, which traces may show) */
        vl_buf_adds(&b, " as ");
        vl_buf_adds(&b, p->user);
    }
    if (b.oom) {
        vl_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* ------------------------------------------------------------- environment */

static const char *env2(const char *lower, const char *upper)
{
    const char *v = getenv(lower);
    return v ? v : upper ? getenv(upper) : NULL;
}

int vl_client_opts_proxy_env(vl_client_opts *o)
{
    int set = 0;
    /* httpoxy (CVE-2016-5385): a CGI program gets the request's "Proxy:"
     * header as HTTP_PROXY, so only the lower-case name counts, as in curl */
    const char *all = env2("all_proxy", "ALL_PROXY");
    const char *http = env2("http_proxy", NULL), *https = env2("https_proxy", "HTTPS_PROXY");
    const char *no = env2("no_proxy", "NO_PROXY");
    if (!o->http_proxy && (http || all) && ++set)
        o->http_proxy = http ? http : all;
    if (!o->https_proxy && (https || all) && ++set)
        o->https_proxy = https ? https : all;
    if (!o->noproxy && no && ++set)
        o->noproxy = no;
    return set;
}
