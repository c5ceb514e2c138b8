/* url.c: the WHATWG URL Standard's basic URL parser (https://url.spec.whatwg.org/
 * §4.4), for the two special schemes volley fetches, http and https.  It owns
 * normalisation as browsers do it (percent-encoding, dot segments, IDNA via
 * libidn2, the IPv4 and IPv6 host forms) and reference resolution of
 * Location values.  Knows nothing of sockets or of HTTP beyond the URL.
 *
 * Issue 11 §3: lists hold URLs as people write them (non-ASCII paths, IDN
 * hosts, spaces, '|', stray '%'); requests, curl and browsers fetch them, so
 * we parse as browsers do instead of rejecting what RFC 3986 does not allow.
 * Input bytes are handled one at a time: each byte >= 0x80 is percent-encoded
 * as is, so invalid UTF-8 becomes %XX (curl's choice) where the spec would
 * substitute U+FFFD. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <idn2.h>

#include "url.h"
#include "util.h"
#include "volley.h"

/* ------------------------------------------------------ percent-encoding */

/* §1.3 percent-encode sets, each beyond the C0 control percent-encode set
 * (C0 controls and every byte above 0x7E).  Node 20 (ada) does not yet put
 * '^' in the path set, and neither do we. */
enum pct_set { SET_FRAGMENT, SET_SPECIAL_QUERY, SET_PATH, SET_USERINFO };

static const char *const pct_extra[] = {
    [SET_FRAGMENT] = " \"<>`",
    [SET_SPECIAL_QUERY] = " \"#<>'",
    [SET_PATH] = " \"#<>?`{}",
    [SET_USERINFO] = " \"#<>?`{}/:;=@[\\]^|",
};

static int pct_needed(unsigned char c, enum pct_set set)
{
    return c < 0x20 || c > 0x7e || strchr(pct_extra[set], c) != NULL;
}

/* Append s[0..n) to b, each byte of set as %XX.  A '%' is never in a set:
 * existing escapes are kept and a stray '%' stays as written (§1.3). */
static void buf_add_pct(struct vl_buf *b, const char *s, size_t n, enum pct_set set)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!pct_needed(c, set))
            continue;
        vl_buf_add(b, s + run, i - run);
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        vl_buf_add(b, esc, 3);
        run = i + 1;
    }
    vl_buf_add(b, s + run, n - run);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* §1.3 percent-decode: "%XX" becomes its byte, anything else stays. */
static void buf_add_decoded(struct vl_buf *b, const char *s, size_t n)
{
    size_t run = 0; /* bytes before i not yet added: added in one go */
    for (size_t i = 0; i < n; i++) {
        int hi = -1, lo = -1;
        if (s[i] == '%' && i + 2 < n) {
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            vl_buf_add(b, s + run, i - run);
            vl_buf_addc(b, (char)(hi * 16 + lo));
            i += 2;
            run = i + 1;
        }
    }
    vl_buf_add(b, s + run, n - run);
}

/* ------------------------------------------------------------------ hosts */

/* Host text quoted in error messages is cut here (the JSON writer copes with
 * any bytes; a page of them helps nobody). */
#define ERR_HOST_MAX 64

static int host_error(char *err, size_t errlen, const char *what, const char *s, size_t n)
{
    vl_fmt(err, errlen, "url: %s '%.*s%s'", what, (int)(n > ERR_HOST_MAX ? ERR_HOST_MAX : n), s,
           n > ERR_HOST_MAX ? "..." : "");
    return -VL_EURL;
}

/* §3.5 IPv6 parser, by inet_pton; written back by inet_ntop so that one
 * address has one spelling in pool keys and Host headers.  s excludes the
 * brackets. */
static int parse_ipv6(const char *s, size_t n, struct vl_buf *out, char *err, size_t errlen)
{
    char text[INET6_ADDRSTRLEN + 1], canon[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    if (n >= sizeof(text))
        return host_error(err, errlen, "malformed IPv6 host", s, n);
    memcpy(text, s, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, addr) != 1 || !inet_ntop(AF_INET6, addr, canon, sizeof(canon)))
        return host_error(err, errlen, "malformed IPv6 host", s, n);
    vl_buf_addc(out, '[');
    vl_buf_adds(out, canon);
    vl_buf_addc(out, ']');
    return 0;
}

/* §3.5 IPv4 number parser: "0x" hex, leading "0" octal, else decimal; an
 * empty number after "0x" is 0.  Values saturate above 2^32. */
static int ipv4_number(const char *s, size_t n, uint64_t *val)
{
    unsigned radix = 10;
    if (n == 0)
        return -1;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2, n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        radix = 8;
        s++, n--;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hexval(s[i]);
        if (d < 0 || (unsigned)d >= radix)
            return -1;
        v = v * radix + (unsigned)d;
        if (v > UINT32_MAX)
            v = (uint64_t)UINT32_MAX + 1;
    }
    *val = v;
    return 0;
}

/* Split host (ASCII) on '.', dropping one empty last part (§3.5). */
static size_t ipv4_parts(const char *s, size_t n, const char *part[], size_t plen[], size_t max)
{
    if (n > 1 && s[n - 1] == '.')
        n--;
    size_t count = 0;
    for (;;) {
        const char *dot = memchr(s, '.', n);
        size_t len = dot ? (size_t)(dot - s) : n;
        if (count == max)
            return max + 1;
        part[count] = s;
        plen[count++] = len;
        if (!dot)
            return count;
        s = dot + 1;
        n -= len + 1;
    }
}

/* §3.5 "ends in a number checker". */
static int ends_in_number(const char *s, size_t n)
{
    uint64_t v;
    if (n > 1 && s[n - 1] == '.')
        n--;
    const char *last = s + n;
    while (last > s && last[-1] != '.')
        last--;
    size_t len = (size_t)(s + n - last);
    if (len == 0)
        return 0;
    size_t digits = 0;
    while (digits < len && isdigit((unsigned char)last[digits]))
        digits++;
    return digits == len || ipv4_number(last, len, &v) == 0;
}

/* §3.5 IPv4 parser: 1 to 4 parts, the last filling the remaining bytes, so
 * "0x7f.1" is 127.0.0.1 and "2130706433" is too. */
static int parse_ipv4(const char *s, size_t n, struct vl_buf *out, char *err, size_t errlen)
{
    const char *part[4];
    size_t plen[4], count = ipv4_parts(s, n, part, plen, 4);
    uint64_t v[4], addr = 0;
    if (count > 4)
        return host_error(err, errlen, "invalid IPv4 host", s, n);
    for (size_t i = 0; i < count; i++)
        if (ipv4_number(part[i], plen[i], &v[i]) < 0 || (i + 1 < count && v[i] > 255))
            return host_error(err, errlen, "invalid IPv4 host", s, n);
    if (v[count - 1] >= (uint64_t)1 << (8 * (5 - count)))
        return host_error(err, errlen, "invalid IPv4 host", s, n);
    for (size_t i = 0; i + 1 < count; i++)
        addr |= v[i] << (8 * (3 - i));
    addr += v[count - 1];
    for (int shift = 24; shift >= 0; shift -= 8) {
        vl_buf_add_uint(out, (addr >> shift) & 255);
        if (shift)
            vl_buf_addc(out, '.');
    }
    return 0;
}

/* §3.3 domain to ASCII.  The spec's shortcut for ASCII names with no "xn--"
 * label is lower-casing; the rest goes through UTS #46 in libidn2,
 * nontransitional first, then transitional (what curl does, so names valid
 * only under IDNA 2003 still resolve).  Returns a malloc'ed name or NULL. */
static int plain_ascii_name(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return 0;
    for (const char *label = s;; label++) {
        if (strncasecmp(label, "xn--", 4) == 0)
            return 0;
        if (!(label = strchr(label, '.')))
            return 1;
    }
}

static char *domain_to_ascii(const char *s)
{
    char *out = NULL;
    if (plain_ascii_name(s)) {
        out = vl_strdup(s);
    } else {
        uint8_t *idn = NULL;
        const uint8_t *in = (const uint8_t *)s;
        if (idn2_lookup_u8(in, &idn, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK &&
            idn2_lookup_u8(in, &idn, IDN2_TRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK)
            return NULL;
        out = vl_strdup((const char *)idn);
        idn2_free(idn);
    }
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* §3.5 forbidden domain code points (ASCII; IDNA leaves nothing else). */
static int forbidden_in_domain(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p >= 0x7f || strchr("#%/:<>?@[\\]^|", *p))
            return 1;
    return 0;
}

/* §3.5 host parser for special schemes: s[0..n) as written between '@' and
 * the port; out gets the serialised host ("[::1]" for IPv6). */
static int parse_host(const char *s, size_t n, struct vl_buf *out, char *err, size_t errlen)
{
    if (n == 0) {
        vl_fmt(err, errlen, "url: empty host");
        return -VL_EURL;
    }
    if (s[0] == '[') {
        if (n < 2 || s[n - 1] != ']')
            return host_error(err, errlen, "malformed IPv6 host", s, n);
        return parse_ipv6(s + 1, n - 2, out, err, errlen);
    }
    struct vl_buf raw = {0};
    buf_add_decoded(&raw, s, n);
    if (raw.oom)
        return -ENOMEM;
    /* a decoded NUL would end the name early: it is forbidden anyway */
    char *ascii = strlen(vl_buf_str(&raw)) == raw.len ? domain_to_ascii(vl_buf_str(&raw)) : NULL;
    vl_buf_free(&raw);
    int rc = 0;
    if (!ascii || !*ascii || forbidden_in_domain(ascii))
        rc = host_error(err, errlen, "invalid host", s, n);
    else if (ends_in_number(ascii, strlen(ascii)))
        rc = parse_ipv4(ascii, strlen(ascii), out, err, errlen);
    else
        vl_buf_adds(out, ascii);
    free(ascii);
    return rc;
}

/* ----------------------------------------------------------------- parser */

/* One parsed URL, every part already percent-encoded as serialised (§4.5). */
struct parts {
    int https;
    int port; /* -1: the scheme's default */
    struct vl_buf user, pass, host;
    struct vl_buf path;          /* "/seg/seg", each segment with its '/' */
    struct vl_buf query, frag;   /* without '?' and '#' */
    int has_query, has_frag;
};

static void parts_free(struct parts *u)
{
    vl_buf_free(&u->user);
    vl_buf_free(&u->pass);
    vl_buf_free(&u->host);
    vl_buf_free(&u->path);
    vl_buf_free(&u->query);
    vl_buf_free(&u->frag);
}

static int parts_oom(const struct parts *u)
{
    return u->user.oom || u->pass.oom || u->host.oom || u->path.oom || u->query.oom ||
           u->frag.oom;
}

static int is_slash(char c) { return c == '/' || c == '\\'; } /* '\' too: special scheme */

/* §4.4 steps 1-3: strip leading and trailing C0 control or space, remove
 * every ASCII tab or newline.  Returns a malloc'ed copy or NULL. */
static char *clean_input(const char *s)
{
    size_t n = strlen(s);
    while (n && (unsigned char)s[0] <= 0x20)
        s++, n--;
    while (n && (unsigned char)s[n - 1] <= 0x20)
        n--;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            *o++ = s[i];
    *o = '\0';
    return out;
}

/* §4.4 scheme start and scheme states: the length of s's scheme (before its
 * ':'), or 0 when s does not start with one. */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t n = 1;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return s[n] == ':' ? n : 0;
}

/* §4.1 single-dot (1) and double-dot (2) URL path segments, %2e spelled
 * in either case included; 0 for any other segment. */
static int dot_segment(const char *s, size_t n)
{
    if (n == 1 && s[0] == '.')
        return 1;
    if (n == 3 && strncasecmp(s, "%2e", 3) == 0)
        return 1;
    if (n == 2 && s[0] == '.' && s[1] == '.')
        return 2;
    if (n == 4 && (strncasecmp(s, ".%2e", 4) == 0 || strncasecmp(s, "%2e.", 4) == 0))
        return 2;
    if (n == 6 && strncasecmp(s, "%2e%2e", 6) == 0)
        return 2;
    return 0;
}

static void path_shorten(struct vl_buf *path)
{
    while (path->len && path->p[path->len - 1] != '/')
        path->len--;
    if (path->len)
        path->p[--path->len] = '\0';
}

/* §4.4 path state, from the first segment's first byte; returns where the
 * path ended ('?', '#' or the end).  ".." removes the last segment (never
 * above the root), "." is dropped; either one last leaves a trailing '/'. */
static const char *parse_path(const char *p, struct vl_buf *path)
{
    for (;;) {
        size_t n = strcspn(p, "/\\?#");
        int more = is_slash(p[n]), dots = dot_segment(p, n);
        if (dots == 2)
            path_shorten(path);
        if (dots == 0 || !more)
            vl_buf_addc(path, '/');
        if (dots == 0)
            buf_add_pct(path, p, n, SET_PATH);
        p += n;
        if (!more)
            return p;
        p++;
    }
}

/* §4.4 query and fragment states, from the byte after '?' or '#'. */
static void parse_query_fragment(const char *p, struct parts *u)
{
    if (*p == '?') {
        size_t n = strcspn(++p, "#");
        u->query.len = 0;
        vl_buf_add(&u->query, "", 0);
        buf_add_pct(&u->query, p, n, SET_SPECIAL_QUERY);
        u->has_query = 1;
        p += n;
    }
    if (*p == '#') {
        buf_add_pct(&u->frag, p + 1, strlen(p + 1), SET_FRAGMENT);
        u->has_frag = 1;
    }
}

/* §4.4 port state: digits only, empty meaning the default. */
static int parse_port(const char *s, size_t n, struct parts *u, char *err, size_t errlen)
{
    long port = 0;
    u->port = -1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            vl_fmt(err, errlen, "url: invalid port '%.*s'", (int)(n > 16 ? 16 : n), s);
            return -VL_EURL;
        }
        if (port <= 65535)
            port = port * 10 + (s[i] - '0');
    }
    /* WHATWG allows port 0, but nothing can be fetched there */
    if (port < 1 || port > 65535) {
        vl_fmt(err, errlen, "url: port out of range");
        return -VL_EURL;
    }
    if (port != (u->https ? 443 : 80))
        u->port = (int)port;
    return 0;
}

/* §4.4 authority and host states, s[0..n) being what lies between the
 * slashes after the scheme and the path: [userinfo '@'] host [':' port].
 * The last '@' ends the userinfo; earlier ones are encoded as %40. */
static int parse_authority(const char *s, size_t n, struct parts *u, char *err, size_t errlen)
{
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@')
            at = s + i;
    if (at) {
        size_t ulen = (size_t)(at - s);
        const char *colon = memchr(s, ':', ulen);
        size_t namelen = colon ? (size_t)(colon - s) : ulen;
        buf_add_pct(&u->user, s, namelen, SET_USERINFO);
        if (colon)
            buf_add_pct(&u->pass, colon + 1, ulen - namelen - 1, SET_USERINFO);
        n -= ulen + 1;
        s = at + 1;
    }
    size_t hlen = 0;
    for (int bracket = 0; hlen < n && (bracket || s[hlen] != ':'); hlen++)
        bracket = s[hlen] == '[' ? 1 : s[hlen] == ']' ? 0 : bracket;
    int rc = parse_host(s, hlen, &u->host, err, errlen);
    if (rc == 0 && hlen < n)
        rc = parse_port(s + hlen + 1, n - hlen - 1, u, err, errlen);
    return rc;
}

/* From the authority on: authority, path, query, fragment. */
static int parse_after_scheme(const char *p, struct parts *u, char *err, size_t errlen)
{
    while (is_slash(*p))
        p++;
    size_t n = strcspn(p, "/\\?#");
    int rc = parse_authority(p, n, u, err, errlen);
    if (rc < 0)
        return rc;
    p += n;
    if (is_slash(*p)) /* §4.4 path start state */
        p++;
    p = parse_path(p, &u->path);
    parse_query_fragment(p, u);
    return 0;
}

static void buf_copy(struct vl_buf *to, const struct vl_buf *from)
{
    to->len = 0;
    vl_buf_add(to, vl_buf_str(from), from->len);
}

/* Take base's credentials, host and port (and, with path, path and query). */
static void inherit(struct parts *u, const struct parts *base, int path)
{
    buf_copy(&u->user, &base->user);
    buf_copy(&u->pass, &base->pass);
    buf_copy(&u->host, &base->host);
    u->port = base->port;
    if (path) {
        buf_copy(&u->path, &base->path);
        buf_copy(&u->query, &base->query);
        u->has_query = base->has_query;
    }
}

/* §4.4 relative state and relative slash state: p is a reference without
 * a scheme (or with base's scheme and no "//"). */
static int parse_relative(const char *p, const struct parts *base, struct parts *u, char *err,
                          size_t errlen)
{
    if (is_slash(p[0]) && is_slash(p[1]))
        return parse_after_scheme(p + 2, u, err, errlen);
    if (is_slash(p[0])) {
        inherit(u, base, 0);
        parse_query_fragment(parse_path(p + 1, &u->path), u);
        return 0;
    }
    inherit(u, base, 1);
    if (*p && *p != '?' && *p != '#') {
        u->has_query = 0;
        path_shorten(&u->path);
        p = parse_path(p, &u->path);
    }
    parse_query_fragment(p, u);
    return 0;
}

static int unsupported_scheme(const char *s, size_t n, char *err, size_t errlen)
{
    vl_fmt(err, errlen, "url: unsupported scheme '%.*s'", (int)(n > 16 ? 16 : n), s);
    return -VL_EURL;
}

/* §4.4 basic URL parser on a cleaned input s, against base (NULL for none).
 * On failure u still owns whatever it holds; the caller frees it. */
static int parse(const char *s, const struct parts *base, struct parts *u, char *err,
                 size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->port = -1;
    size_t n = scheme_len(s);
    if (n == 0 && !base) {
        vl_fmt(err, errlen, "url: malformed URL (no scheme)");
        return -VL_EURL;
    }
    if (n == 0) {
        u->https = base->https;
        return parse_relative(s, base, u, err, errlen);
    }
    if (vl_strcaseeq_n(s, n, "https"))
        u->https = 1;
    else if (!vl_strcaseeq_n(s, n, "http"))
        return unsupported_scheme(s, n, err, errlen);
    s += n + 1;
    /* §4.4 special relative or authority state: "http:x" against an http
     * base is relative; against no base or another scheme it names a host */
    if (base && base->https == u->https)
        return parse_relative(s, base, u, err, errlen);
    return parse_after_scheme(s, u, err, errlen);
}

/* ---------------------------------------------------------- serialising */

static int default_port(const struct parts *u) { return u->https ? 443 : 80; }

/* §4.5: "user:pw", the password and its ':' only when there is one. */
static void put_userinfo(struct vl_buf *b, const struct parts *u)
{
    vl_buf_add(b, vl_buf_str(&u->user), u->user.len);
    if (u->pass.len) {
        vl_buf_addc(b, ':');
        vl_buf_add(b, vl_buf_str(&u->pass), u->pass.len);
    }
}

static int has_credentials(const struct parts *u) { return u->user.len || u->pass.len; }

/* The host and, when not the default, the port: the Host header value. */
static void put_authority(struct vl_buf *b, const struct parts *u)
{
    vl_buf_add(b, vl_buf_str(&u->host), u->host.len);
    if (u->port >= 0) {
        vl_buf_addc(b, ':');
        vl_buf_add_uint(b, (unsigned)u->port);
    }
}

/* §4.5 URL serializer up to the host and port: "http://user:pw@host:81". */
static void put_origin(struct vl_buf *b, const struct parts *u, int credentials)
{
    vl_buf_adds(b, u->https ? "https://" : "http://");
    if (credentials && has_credentials(u)) {
        put_userinfo(b, u);
        vl_buf_addc(b, '@');
    }
    put_authority(b, u);
}

/* The origin-form request target (RFC 9112 §3.2.1): path and query. */
static void put_target(struct vl_buf *b, const struct parts *u)
{
    vl_buf_adds(b, u->path.len ? vl_buf_str(&u->path) : "/");
    if (u->has_query) {
        vl_buf_addc(b, '?');
        vl_buf_add(b, vl_buf_str(&u->query), u->query.len);
    }
}

static void put_href(struct vl_buf *b, const struct parts *u, int fragment)
{
    put_origin(b, u, 1);
    put_target(b, u);
    if (fragment && u->has_frag) {
        vl_buf_addc(b, '#');
        vl_buf_add(b, vl_buf_str(&u->frag), u->frag.len);
    }
}

/* ------------------------------------------------------------ interface */

static char *buf_take(struct vl_buf *b)
{
    if (b->oom) {
        vl_buf_free(b);
        return NULL;
    }
    return b->p ? b->p : vl_strdup("");
}

/* Fill the request's view of p: host without brackets, Host header value,
 * target, pool key, the normalised URL without its fragment, credentials. */
static int fill_url(const struct parts *p, struct url *u)
{
    struct vl_buf host = {0}, authority = {0}, target = {0}, key = {0}, href = {0}, cred = {0};
    const char *h = vl_buf_str(&p->host);
    u->https = p->https;
    u->port = p->port >= 0 ? p->port : default_port(p);
    if (h[0] == '[')
        vl_buf_add(&host, h + 1, p->host.len - 2);
    else
        vl_buf_add(&host, h, p->host.len);
    put_authority(&authority, p);
    put_target(&target, p);
    put_href(&href, p, 0);
    /* the pool key names the port even when it is the default */
    vl_buf_adds(&key, p->https ? "https://" : "http://");
    vl_buf_add(&key, h, p->host.len);
    vl_buf_addc(&key, ':');
    vl_buf_add_uint(&key, (unsigned)u->port);
    if (has_credentials(p))
        put_userinfo(&cred, p);
    u->host = buf_take(&host);
    u->authority = buf_take(&authority);
    u->target = buf_take(&target);
    u->key = buf_take(&key);
    u->href = buf_take(&href);
    u->userinfo = has_credentials(p) ? buf_take(&cred) : NULL;
    if (!u->host || !u->authority || !u->target || !u->key || !u->href ||
        (has_credentials(p) && !u->userinfo))
        return -ENOMEM;
    return 0;
}

int url_parse(const char *s, struct url *u, char *err, size_t errlen)
{
    struct parts p;
    memset(u, 0, sizeof(*u));
    char *in = clean_input(s);
    if (!in) {
        vl_fmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = parse(in, NULL, &p, err, errlen);
    if (rc == 0 && parts_oom(&p))
        rc = -ENOMEM;
    if (rc == 0)
        rc = fill_url(&p, u);
    if (rc == -ENOMEM)
        vl_fmt(err, errlen, "out of memory");
    if (rc < 0)
        url_free(u);
    parts_free(&p);
    free(in);
    return rc;
}

void url_free(struct url *u)
{
    free(u->host);
    free(u->authority);
    free(u->target);
    free(u->key);
    free(u->href);
    free(u->userinfo);
    memset(u, 0, sizeof(*u));
}

/* A reference with a scheme other than http(s) is returned as written (scheme
 * lower-cased), so that parsing it later names the scheme in its error. */
static char *other_scheme(char *ref, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ref[i] = (char)tolower((unsigned char)ref[i]);
    return ref;
}

char *url_resolve(const char *base, const char *ref)
{
    struct parts b = {0}, r = {0};
    char err[256];
    char *bin = base ? clean_input(base) : NULL, *rin = ref ? clean_input(ref) : NULL;
    char *out = NULL;
    if (!bin || !rin)
        goto done;
    size_t n = scheme_len(rin);
    if (n && !vl_strcaseeq_n(rin, n, "http") && !vl_strcaseeq_n(rin, n, "https")) {
        out = other_scheme(rin, n);
        rin = NULL;
        goto done;
    }
    if (parse(bin, NULL, &b, err, sizeof(err)) == 0 && !parts_oom(&b) &&
        parse(rin, &b, &r, err, sizeof(err)) == 0 && !parts_oom(&r)) {
        struct vl_buf href = {0};
        put_href(&href, &r, 1);
        out = buf_take(&href);
    }
    parts_free(&r);
    parts_free(&b);
done:
    free(bin);
    free(rin);
    return out;
}
