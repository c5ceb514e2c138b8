/* fuzz_url.c: url_parse and url_resolve (src/url.h).
 *
 * Input: "BASE\0REF" (no NUL: the whole input is both).  Properties: no
 * crash, leak or UB; url_parse returns 0 or -VL_EURL, with a message on
 * failure and, on success, every field set: host, authority, key, a target
 * starting with '/', a port in 1..65535.
 *
 * And when BASE parses and url_resolve gives an http(s) URL, url_parse
 * accepts it (a Location the resolver turned into a URL is one the fetch
 * layer can follow); a ref of another scheme comes back as written. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "volley.h"

static int parse_checked(const char *s, const char *what)
{
    struct url u;
    char err[256] = "";
    int rc = url_parse(s, &u, err, sizeof(err));
    if (rc == 0) {
        if (!u.host || !u.authority || !u.key || !u.target || u.target[0] != '/' || u.port < 1 ||
            u.port > 65535) {
            fprintf(stderr, "fuzz_url: url_parse(%s) accepted with a bad field\n", what);
            abort();
        }
    } else if (rc != -VL_EURL || !err[0]) {
        fprintf(stderr, "fuzz_url: url_parse(%s) returned %d, message '%s'\n", what, rc, err);
        abort();
    }
    url_free(&u);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *base = buf;
    const char *nul = memchr(buf, '\0', size);
    const char *ref = nul ? nul + 1 : buf;
    int base_ok = parse_checked(base, "base") == 0;
    if (ref != base)
        parse_checked(ref, "ref");
    char *res = url_resolve(base, ref);
    if (res) {
        int rc = parse_checked(res, "resolved");
        /* a ref naming another scheme comes back as written (url.h): only
         * an http(s) result must be one the fetch layer can follow */
        int http = strncmp(res, "http://", 7) == 0 || strncmp(res, "https://", 8) == 0;
        if (base_ok && http && rc != 0) {
            fprintf(stderr, "fuzz_url: url_resolve gave '%s', which url_parse rejects\n", res);
            abort();
        }
        free(res);
    }
    free(buf);
    return 0;
}
