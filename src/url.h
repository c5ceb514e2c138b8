/* url.h: absolute http(s) URLs split into what a request needs.
 * Parsing is liburiparser's (RFC 3986); this module only validates and
 * extracts.  Knows nothing of sockets. */
#ifndef VL_URL_H
#define VL_URL_H

#include <stddef.h>

struct url {
    int https;
    int port;
    char *host;       /* lower-case, IPv6 without brackets */
    char *authority;  /* for Host: "host", "host:8080", "[::1]:8080" */
    char *target;     /* origin-form: "/path?query", never empty */
    char *key;        /* pool key: "http://host:port" */
};

/* Parse s into u (owned strings).  0, or -VL_EURL with a message in err. */
int url_parse(const char *s, struct url *u, char *err, size_t errlen);
void url_free(struct url *u);
/* Resolve ref against base (RFC 3986 §5) into a new malloc'ed string, or NULL. */
char *url_resolve(const char *base, const char *ref);

#endif
