/* http.h: HTTP/1.1 on the wire.  Builds request heads (preformatted once,
 * written with writev) and parses responses with llhttp, handing body bytes
 * to a callback.  Knows nothing of sockets, pools or TLS. */
#ifndef VL_HTTP_H
#define VL_HTTP_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct http_head_spec {
    const char *method;
    const char *target;
    const char *authority;
    const char *user_agent;
    const char *const *headers;  /* "Name: value"; "Name:" removes a default */
    size_t nheaders;
    int has_body;
    uint64_t body_len;
    int accept_encoding;         /* send Accept-Encoding: gzip, deflate */
    const char *drop_prefix[4];  /* header names not to send (redirect to another host) */
};

/* Format the request head into a new malloc'ed buffer.  0 or -ENOMEM. */
int http_build_head(const struct http_head_spec *spec, char **out, size_t *len);
/* Does a "Name: value" string name the header `name`? */
int http_header_is(const char *line, const char *name);

/* Captured response headers that the fetch layer acts on. */
enum { HH_LOCATION, HH_CONTENT_ENCODING, HH_RETRY_AFTER, HH_COUNT };

typedef int http_body_fn(void *data, const char *chunk, size_t len);

struct http_resp {
    llhttp_t parser;
    int status;
    int head_request;          /* response to HEAD: no body whatever the headers say */
    int headers_done;          /* final (non-1xx) headers complete */
    int complete;              /* final message complete */
    int keep_alive;            /* connection may be reused after complete */
    size_t header_bytes;
    size_t max_header_bytes;
    uint64_t content_length;   /* valid when has_content_length */
    int has_content_length;
    int chunked;
    int chunk_pause;           /* llhttp paused before a chunk-size line */
    int chunk_line;            /* feeding a chunk-size line byte by byte */
    int chunk_ext;             /* inside its extensions: bytes skipped */
    int last_chunk;            /* the zero-size chunk was seen */
    uint64_t body_bytes;       /* raw (encoded) body bytes received */
    char fname[24];            /* the header name being read, if short */
    size_t fname_len;
    int capture;               /* which HH_* the current value belongs to, or -1 */
    int value_start;           /* the next value piece starts a new field line */
    char *hdr[HH_COUNT];       /* captured values (malloc'ed, bounded) */
    http_body_fn *on_body;
    void *data;
    char err[256];
};

void http_resp_init(struct http_resp *r, size_t max_header_bytes, int head_request,
                    http_body_fn *on_body, void *data);
void http_resp_free(struct http_resp *r);
/* Feed bytes.  Returns the bytes consumed (all of them unless the final
 * message completed inside the buffer), or a negative code with r->err set. */
long http_resp_feed(struct http_resp *r, const char *buf, size_t len);
/* The peer closed the stream.  0 if that ends the message properly (a
 * close-delimited body), else a negative code with r->err set. */
int http_resp_eof(struct http_resp *r);

/* Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date in any of
 * the three forms §5.6.7 has recipients accept, as microseconds from now
 * (0 for a date in the past), clamped to a day.  -1 when v is NULL or not
 * one of those. */
int64_t http_retry_after_us(const char *v, time_t now);

#endif
