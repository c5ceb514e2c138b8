/* http.c: request heads and llhttp-driven response parsing.
 * Bounds: the response header block (max_header_bytes) and each captured
 * header value (HDR_VALUE_MAX). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "util.h"
#include "volley.h"

#define HDR_VALUE_MAX 8192
#define CHUNK_EXT_MAX 4096

/* ---------------------------------------------------------------- request */

int http_header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int user_has(const struct http_head_spec *s, const char *name)
{
    for (size_t i = 0; i < s->nheaders; i++)
        if (http_header_is(s->headers[i], name))
            return 1;
    return 0;
}

static int dropped(const struct http_head_spec *s, const char *line)
{
    for (size_t i = 0; i < ARRAY_LEN(s->drop_prefix) && s->drop_prefix[i]; i++)
        if (http_header_is(line, s->drop_prefix[i]))
            return 1;
    return 0;
}

/* A header line from -H: "Name:" alone removes that default (curl's rule). */
static int empty_value(const char *line)
{
    const char *c = strchr(line, ':');
    if (!c)
        return 1;
    for (c++; *c == ' ' || *c == '\t'; c++)
        ;
    return *c == '\0';
}

int http_build_head(const struct http_head_spec *s, char **out, size_t *len)
{
    size_t cap = strlen(s->method) + strlen(s->target) + strlen(s->authority) +
                 strlen(s->user_agent) + 256;
    for (size_t i = 0; i < s->nheaders; i++)
        cap += strlen(s->headers[i]) + 2;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    size_t n = 0;
#define PUT(...) n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__)
    PUT("%s %s HTTP/1.1\r\n", s->method, s->target);
    if (!user_has(s, "Host"))
        PUT("Host: %s\r\n", s->authority);
    if (!user_has(s, "User-Agent"))
        PUT("User-Agent: %s\r\n", s->user_agent);
    if (!user_has(s, "Accept"))
        PUT("Accept: */*\r\n");
    if (s->accept_encoding && !user_has(s, "Accept-Encoding"))
        PUT("Accept-Encoding: gzip, deflate\r\n");
    if (!user_has(s, "Connection"))
        PUT("Connection: keep-alive\r\n");
    if (s->has_body) {
        if (!user_has(s, "Content-Type"))
            PUT("Content-Type: application/x-www-form-urlencoded\r\n");
        if (!user_has(s, "Content-Length"))
            PUT("Content-Length: %llu\r\n", (unsigned long long)s->body_len);
    }
    for (size_t i = 0; i < s->nheaders; i++)
        if (!empty_value(s->headers[i]) && !dropped(s, s->headers[i]))
            PUT("%s\r\n", s->headers[i]);
    PUT("\r\n");
#undef PUT
    *out = buf;
    *len = n;
    return 0;
}

/* --------------------------------------------------------------- response */

static struct http_resp *R(llhttp_t *p) { return p->data; }

static int count_header(struct http_resp *r, size_t len)
{
    r->header_bytes += len;
    if (r->header_bytes > r->max_header_bytes) {
        vl_fmt(r->err, sizeof(r->err), "http: header block over %zu bytes", r->max_header_bytes);
        return -1;
    }
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_header(R(p), len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    if (count_header(r, len + 4) < 0)
        return -1;
    /* llhttp may hand a name over in pieces when it spans two reads. */
    if (r->fname_len + len < sizeof(r->fname))
        memcpy(r->fname + r->fname_len, at, len);
    r->fname_len += len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    static const char *const names[HH_COUNT] = {"location", "content-encoding", "retry-after"};
    r->capture = -1;
    if (r->fname_len < sizeof(r->fname))
        for (int i = 0; i < HH_COUNT; i++)
            if (vl_strcaseeq_n(r->fname, r->fname_len, names[i]))
                r->capture = i;
    r->fname_len = 0;
    r->value_start = 1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    if (count_header(r, len) < 0)
        return -1;
    if (r->capture < 0)
        return 0;
    char *old = r->hdr[r->capture];
    size_t olen = old ? strlen(old) : 0;
    /* RFC 9110 §5.3: a repeated field is its values joined with ", " */
    const char *sep = (old && r->value_start) ? ", " : "";
    size_t slen = strlen(sep);
    r->value_start = 0;
    if (olen + slen + len > HDR_VALUE_MAX)
        return 0;
    char *v = realloc(old, olen + slen + len + 1);
    if (!v)
        return -1;
    memcpy(v + olen, sep, slen);
    memcpy(v + olen + slen, at, len);
    v[olen + slen + len] = '\0';
    r->hdr[r->capture] = v;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    R(p)->capture = -1;
    return 0;
}

static void clear_captures(struct http_resp *r)
{
    for (int i = 0; i < HH_COUNT; i++) {
        free(r->hdr[i]);
        r->hdr[i] = NULL;
    }
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    int status = p->status_code;
    r->status = status;
    if (status >= 100 && status < 200 && status != 101) {
        /* RFC 9110 §15.2: interim responses (100, 103) precede the final one;
         * skip them, header bytes included, and parse on. */
        r->header_bytes = 0;
        clear_captures(r);
        return 0;
    }
    if (status == 101) {
        vl_fmt(r->err, sizeof(r->err), "http: unexpected 101 Switching Protocols");
        return -1;
    }
    r->headers_done = 1;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
    r->content_length = p->content_length;
    /* RFC 9110 §6.4.1: no body after HEAD, 204 or 304, whatever
     * Content-Length says (a 304's describes the representation). */
    if (r->head_request || status == 204 || status == 304)
        return 1;
    if (r->chunked) {
        r->chunk_pause = 1; /* the first chunk-size line is next */
        return HPE_PAUSED;
    }
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    if (p->content_length == 0)
        R(p)->last_chunk = 1;
    return 0;
}

static int on_chunk_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    if (r->last_chunk)
        return 0;
    r->chunk_pause = 1; /* the next chunk-size line follows */
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    r->body_bytes += len;
    int rc = r->on_body(r->data, at, len);
    if (rc < 0) {
        if (!r->err[0])
            vl_fmt(r->err, sizeof(r->err), "http: body sink failed");
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    if (!r->headers_done)
        return 0; /* the end of an interim response */
    r->complete = 1;
    r->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED; /* stop here: bytes after the response are not ours */
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_status = on_status;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        s.on_chunk_header = on_chunk_header;
        s.on_chunk_complete = on_chunk_complete;
        init = 1;
    }
    return &s;
}

void http_resp_init(struct http_resp *r, size_t max_header_bytes, int head_request,
                    http_body_fn *on_body_fn, void *data)
{
    memset(r, 0, sizeof(*r));
    llhttp_init(&r->parser, HTTP_RESPONSE, settings());
    r->parser.data = r;
    r->max_header_bytes = max_header_bytes;
    r->head_request = head_request;
    r->capture = -1;
    r->on_body = on_body_fn;
    r->data = data;
}

void http_resp_free(struct http_resp *r) { clear_captures(r); }

static void parse_error(struct http_resp *r, llhttp_errno_t e)
{
    if (r->err[0])
        return; /* a callback said precisely what went wrong */
    const char *reason = llhttp_get_error_reason(&r->parser);
    if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
        vl_fmt(r->err, sizeof(r->err),
               "http: both Transfer-Encoding and Content-Length in response (RFC 9112 6.3)");
    else if (e == HPE_INVALID_CHUNK_SIZE || (r->headers_done && r->chunked))
        vl_fmt(r->err, sizeof(r->err), "http: malformed chunked body (llhttp: %s)",
               reason ? reason : llhttp_errno_name(e));
    else
        vl_fmt(r->err, sizeof(r->err), "http: malformed response (llhttp: %s)",
               reason ? reason : llhttp_errno_name(e));
}

/* One byte of a chunk-size line.  Chunk extensions are dropped here, before
 * llhttp sees them: llhttp 8.1 (Debian's) rejects a valid ";a=1;b=2", and
 * RFC 9112 §7.1.1 has recipients ignore extensions they do not know. */
static llhttp_errno_t feed_chunk_line_byte(struct http_resp *r, char c)
{
    if (c == '\n') {
        r->chunk_line = 0;
        r->chunk_ext = 0;
    } else if (r->chunk_ext && c != '\r') {
        if (++r->chunk_ext > CHUNK_EXT_MAX) {
            vl_fmt(r->err, sizeof(r->err), "http: chunk extension over %d bytes", CHUNK_EXT_MAX);
            return HPE_USER;
        }
        return HPE_OK;
    } else if (c == ';') {
        r->chunk_ext = 1;
        return HPE_OK;
    }
    return llhttp_execute(&r->parser, &c, 1);
}

long http_resp_feed(struct http_resp *r, const char *buf, size_t len)
{
    if (r->complete)
        return 0; /* bytes after the response are not ours */
    size_t off = 0;
    while (off < len) {
        llhttp_errno_t e;
        const char *start = buf + off;
        if (r->chunk_line) {
            e = feed_chunk_line_byte(r, buf[off]);
            off++;
            if (e == HPE_OK)
                continue;
            start = NULL;
        } else {
            e = llhttp_execute(&r->parser, start, len - off);
            if (e == HPE_OK)
                return (long)len;
        }
        if (e == HPE_PAUSED && start) {
            const char *pos = llhttp_get_error_pos(&r->parser);
            size_t used = pos ? (size_t)(pos - start) : len - off;
            if (r->complete)
                return (long)(off + used);
            if (r->chunk_pause) {
                r->chunk_pause = 0;
                r->chunk_line = 1;
                llhttp_resume(&r->parser);
                off += used;
                continue;
            }
        } else if (e == HPE_PAUSED && r->complete) {
            return (long)off; /* the last byte of a chunk line ended the message */
        }
        parse_error(r, e);
        return -VL_EHTTP;
    }
    return (long)len;
}

int http_resp_eof(struct http_resp *r)
{
    if (r->complete)
        return 0;
    if (r->headers_done && !r->chunked && !r->has_content_length) {
        /* RFC 9112 §6.3 rule 8: the body ends when the connection closes. */
        llhttp_errno_t e = llhttp_finish(&r->parser);
        if (e == HPE_OK || (e == HPE_PAUSED && r->complete)) {
            r->complete = 1;
            r->keep_alive = 0;
            return 0;
        }
    }
    if (!r->headers_done && r->header_bytes == 0 && r->parser.status_code == 0)
        vl_fmt(r->err, sizeof(r->err), "http: connection closed before any response");
    else if (!r->headers_done)
        vl_fmt(r->err, sizeof(r->err), "http: connection closed inside the response headers");
    else if (r->chunked)
        vl_fmt(r->err, sizeof(r->err), "http: truncated chunked body (got %llu bytes)",
               (unsigned long long)r->body_bytes);
    else
        vl_fmt(r->err, sizeof(r->err),
               "http: body shorter than Content-Length (got %llu of %llu bytes)",
               (unsigned long long)r->body_bytes, (unsigned long long)r->content_length);
    return -VL_EHTTP;
}

/* ------------------------------------------------------------ Retry-After */

#define RETRY_AFTER_CLAMP_S 86400

int64_t http_retry_after_us(const char *v, time_t now)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        /* delay-seconds = 1*DIGIT; saturate instead of overflowing */
        int64_t secs = 0;
        for (; *v >= '0' && *v <= '9'; v++)
            if (secs < RETRY_AFTER_CLAMP_S)
                secs = secs * 10 + (*v - '0');
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v)
            return -1;
        return (secs < RETRY_AFTER_CLAMP_S ? secs : RETRY_AFTER_CLAMP_S) * 1000000;
    }
    /* IMF-fixdate, the obsolete RFC 850 form, and asctime's. */
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < ARRAY_LEN(forms); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(v, forms[i], &tm);
        if (!end)
            continue;
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            continue;
        time_t when = timegm(&tm);
        if (when == (time_t)-1)
            return -1;
        if (when <= now)
            return 0;
        int64_t d = (int64_t)when - (int64_t)now;
        return (d < RETRY_AFTER_CLAMP_S ? d : RETRY_AFTER_CLAMP_S) * 1000000;
    }
    return -1;
}
