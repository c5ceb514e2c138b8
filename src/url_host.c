/* url_host.c: vl_url_host, the host of a URL as the fetch will see it, for
 * callers that spread a list over loops (the CLI's -t partitioning) and want
 * every spelling of one host ("Example.COM", "example.com.", IDN forms) to
 * land in the same place.  Knows nothing of sockets. */
#include <errno.h>
#include <string.h>

#include "url.h"
#include "volley.h"

int vl_url_host(const char *url, char *buf, size_t buflen)
{
    struct url u;
    char err[8];
    if (!url)
        return -VL_EURL;
    int rc = url_parse(url, &u, err, sizeof(err));
    if (rc < 0)
        return rc;
    size_t n = strlen(u.host);
    if (buflen > 0) {
        size_t k = n < buflen - 1 ? n : buflen - 1;
        memcpy(buf, u.host, k);
        buf[k] = '\0';
    }
    url_free(&u);
    return n > (size_t)INT32_MAX ? -VL_ETOOBIG : (int)n;
}
