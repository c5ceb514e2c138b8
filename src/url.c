/* url.c: URL validation and splitting with liburiparser. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <uriparser/Uri.h>

#include "url.h"
#include "util.h"
#include "volley.h"

static size_t range_len(const UriTextRangeA *r)
{
    return (r->first && r->afterLast) ? (size_t)(r->afterLast - r->first) : 0;
}

/* The origin-form target: everything after the authority, minus the fragment. */
static char *make_target(const char *s)
{
    const char *p = strstr(s, "://");
    p = p ? p + 3 : s;
    p += strcspn(p, "/?#");
    size_t n = strcspn(p, "#");
    if (n == 0)
        return vl_strdup("/");
    if (*p == '?') {
        char *t = malloc(n + 2);
        if (t) {
            t[0] = '/';
            memcpy(t + 1, p, n);
            t[n + 1] = '\0';
        }
        return t;
    }
    return vl_strndup(p, n);
}

int url_parse(const char *s, struct url *u, char *err, size_t errlen)
{
    UriUriA uri;
    const char *errpos = NULL;
    memset(u, 0, sizeof(*u));
    if (uriParseSingleUriA(&uri, s, &errpos) != URI_SUCCESS) {
        vl_fmt(err, errlen, "url: malformed URL");
        return -VL_EURL;
    }
    int rc = -VL_EURL;
    size_t slen = range_len(&uri.scheme);
    if (slen == 0) {
        vl_fmt(err, errlen, "url: malformed URL (no scheme)");
        goto out;
    }
    if (vl_strcaseeq_n(uri.scheme.first, slen, "https"))
        u->https = 1;
    else if (!vl_strcaseeq_n(uri.scheme.first, slen, "http")) {
        vl_fmt(err, errlen, "url: unsupported scheme '%.*s'", (int)(slen > 16 ? 16 : slen),
               uri.scheme.first);
        goto out;
    }
    size_t hlen = range_len(&uri.hostText);
    if (hlen == 0) {
        vl_fmt(err, errlen, "url: missing host");
        goto out;
    }
    if (uri.hostData.ipFuture.first) {
        vl_fmt(err, errlen, "url: unsupported host form");
        goto out;
    }
    u->port = u->https ? 443 : 80;
    size_t plen = range_len(&uri.portText);
    if (plen) {
        long port = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)uri.portText.first[i]) || port > 65535) {
                port = 65536;
                break;
            }
            port = port * 10 + (uri.portText.first[i] - '0');
        }
        if (port < 1 || port > 65535) {
            vl_fmt(err, errlen, "url: port out of range");
            goto out;
        }
        u->port = (int)port;
    }
    u->host = vl_strndup(uri.hostText.first, hlen);
    u->target = make_target(s);
    if (!u->host || !u->target) {
        rc = -ENOMEM;
        goto out;
    }
    for (char *p = u->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int v6 = uri.hostData.ip6 != NULL;
    if (v6) {
        /* one spelling per address, so pool keys and origins compare equal */
        char canon[INET6_ADDRSTRLEN];
        if (!inet_ntop(AF_INET6, uri.hostData.ip6->data, canon, sizeof(canon)) ||
            !(free(u->host), u->host = vl_strdup(canon))) {
            rc = -ENOMEM;
            goto out;
        }
        hlen = strlen(canon);
    }
    int deflt = u->port == (u->https ? 443 : 80);
    size_t alen = hlen + 16;
    u->authority = malloc(alen);
    u->key = malloc(alen + 16);
    if (!u->authority || !u->key) {
        rc = -ENOMEM;
        goto out;
    }
    const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
    if (deflt)
        snprintf(u->authority, alen, "%s%s%s", lb, u->host, rb);
    else
        snprintf(u->authority, alen, "%s%s%s:%d", lb, u->host, rb, u->port);
    snprintf(u->key, alen + 16, "%s://%s%s%s:%d", u->https ? "https" : "http", lb, u->host, rb,
             u->port);
    rc = 0;
out:
    uriFreeUriMembersA(&uri);
    if (rc < 0)
        url_free(u);
    return rc;
}

void url_free(struct url *u)
{
    free(u->host);
    free(u->authority);
    free(u->target);
    free(u->key);
    memset(u, 0, sizeof(*u));
}

/* Replace the first "[...]" of url by "[host]"; frees url. */
static char *respell_ip6(char *url, const char *host, size_t hlen)
{
    char *lb = strchr(url, '['), *rb = lb ? strchr(lb, ']') : NULL;
    if (!rb)
        return url;
    size_t head = (size_t)(lb - url) + 1, tail = strlen(rb);
    char *out = malloc(head + hlen + tail + 1);
    if (out) {
        memcpy(out, url, head);
        memcpy(out + head, host, hlen);
        memcpy(out + head + hlen, rb, tail + 1);
    }
    free(url);
    return out;
}

char *url_resolve(const char *base, const char *ref)
{
    UriUriA b, r, res;
    const char *ep;
    char *out = NULL;
    int bracket_host = 0;
    if (uriParseSingleUriA(&b, base, &ep) != URI_SUCCESS)
        return NULL;
    if (uriParseSingleUriA(&r, ref, &ep) != URI_SUCCESS) {
        uriFreeUriMembersA(&b);
        return NULL;
    }
    if (uriAddBaseUriA(&res, &r, &b) == URI_SUCCESS) {
        /* uriparser writes IPv6 hosts out in full ([0000:...:0001]); a
         * reference that kept the base's host keeps its spelling too. */
        bracket_host = res.hostData.ip6 && b.hostData.ip6 &&
                       memcmp(res.hostData.ip6->data, b.hostData.ip6->data, 16) == 0;
        int len = 0;
        if (uriToStringCharsRequiredA(&res, &len) == URI_SUCCESS) {
            out = malloc((size_t)len + 1);
            if (out && uriToStringA(out, &res, len + 1, NULL) != URI_SUCCESS) {
                free(out);
                out = NULL;
            }
        }
        uriFreeUriMembersA(&res);
    }
    if (out && bracket_host)
        out = respell_ip6(out, b.hostText.first, range_len(&b.hostText));
    uriFreeUriMembersA(&r);
    uriFreeUriMembersA(&b);
    return out;
}
