/* url.h: http(s) URLs as people write them, parsed and normalised as the
 * WHATWG URL Standard says browsers do, and split into what a request
 * needs.  Knows nothing of sockets. */
#ifndef VL_URL_H
#define VL_URL_H

#include <stddef.h>

/* Every string is owned by the struct and freed by url_free. */
struct url {
    int https;
    int port;         /* always set: the default when the URL names none */
    char *host;       /* ASCII, lower-case (IDN as A-labels), IPv6 without brackets */
    char *authority;  /* for Host: "host", "host:8080", "[::1]:8080"; no credentials */
    char *target;     /* origin-form: "/path?query", never empty, never a fragment */
    char *key;        /* pool key: "http://host:port" */
    char *href;       /* the normalised absolute URL, as requested: credentials kept,
                         default port and fragment left out */
    char *userinfo;   /* "user:password" percent-encoded as in href, or NULL */
};

/* Parse s (any bytes, NUL-terminated) into u.  0, or -VL_EURL (-ENOMEM) with
 * a message in err and nothing in u to free. */
int url_parse(const char *s, struct url *u, char *err, size_t errlen);
void url_free(struct url *u);
/* Resolve ref (a Location value: relative, "//host/p" or absolute) against
 * base as the WHATWG parser does into a new malloc'ed normalised URL, with
 * its fragment if it has one; NULL when either does not parse.  A ref with a
 * scheme other than http(s) is returned as written, scheme lower-cased. */
char *url_resolve(const char *base, const char *ref);

#endif
