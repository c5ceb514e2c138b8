/* util.c: small string helpers shared by every module. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

char *vl_strdup(const char *s) { return s ? vl_strndup(s, strlen(s)) : NULL; }

char *vl_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void vl_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Case-insensitive comparison of a length-delimited string with b. */
int vl_strcaseeq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

void vl_buf_add(struct vl_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void vl_buf_addc(struct vl_buf *b, char c) { vl_buf_add(b, &c, 1); }
void vl_buf_adds(struct vl_buf *b, const char *s) { vl_buf_add(b, s, strlen(s)); }

void vl_buf_add_uint(struct vl_buf *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10));
    vl_buf_add(b, tmp + i, sizeof(tmp) - i);
}

void vl_buf_free(struct vl_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

const char *vl_buf_str(const struct vl_buf *b) { return b->p ? b->p : ""; }
