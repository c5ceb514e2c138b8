/* fuzz_retry_after.c: http_retry_after_us (src/http.h).
 *
 * Input: 5 bytes of "now" (seconds since the epoch, little-endian: 0 to
 * year ~36800, where real clocks are), then the header value (up to its
 * first NUL).  Properties: the result is -1 or within [0, 86400 s] in
 * microseconds; a value that is only digits (and spaces/tabs around
 * them) is never -1; NULL gives -1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define DAY_US (86400LL * 1000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int64_t now = 0;
    for (int i = 4; i >= 0; i--)
        now = now << 8 | data[i];
    char *v = malloc(size - 5 + 1);
    if (!v)
        return 0;
    memcpy(v, data + 5, size - 5);
    v[size - 5] = '\0';
    int64_t us = http_retry_after_us(v, (time_t)now);
    if (us != -1 && (us < 0 || us > DAY_US)) {
        fprintf(stderr, "fuzz_retry_after: '%s' at %lld gave %lld\n", v, (long long)now,
                (long long)us);
        abort();
    }
    const char *p = v + strspn(v, " \t");
    size_t digits = strspn(p, "0123456789");
    if (digits && p[digits + strspn(p + digits, " \t")] == '\0' && us < 0) {
        fprintf(stderr, "fuzz_retry_after: delay-seconds '%s' gave -1\n", v);
        abort();
    }
    if (http_retry_after_us(NULL, (time_t)now) != -1)
        abort();
    free(v);
    return 0;
}
