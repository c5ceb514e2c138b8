/* http.h: HTTP/1.1 on the wire.  Builds request heads (preformatted once,
 * written with writev) and parses responses with llhttp, handing body bytes
 * to a callback.  Knows nothing of sockets, pools or TLS. */
#ifndef VL_HTTP_H
#define VL_HTTP_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

struct http_head_spec {
    const char *method;
    const char *target;
    const char *authority;
    const char *user_agent;
    const char *const *headers;  /* "Name: value"; "Name:" removes a default */
    size_t nheaders;
    int has_body;
    uint64_t body_len;
    int accept_encoding;         /* send Accept-Encoding: gzip, deflate, br, zstd */
    const char *drop_prefix[4];  /* header names not to send (redirect to another host) */
    const char *proxy_auth;      /* Proxy-Authorization value (request to an http proxy) */
};

/* Format the request head into a new malloc'ed buffer.  0 or -ENOMEM. */
int http_build_head(const struct http_head_spec *spec, char **out, size_t *len);
/* Does a "Name: value" string name the header `name`? */
int http_header_is(const char *line, const char *name);

/* Captured response headers that the fetch layer acts on.  List fields
 * (Content-Encoding, Transfer-Encoding) are joined with ", " when repeated
 * (RFC 9110 §5.3); Location and Retry-After are singletons: the first one
 * counts, and two different Locations fail the response. */
enum {
    HH_LOCATION,
    HH_CONTENT_ENCODING,
    HH_RETRY_AFTER,
    HH_TRANSFER_ENCODING,
    HH_RATELIMIT_RESET,   /* RateLimit-Reset (IETF draft): seconds */
    HH_X_RATELIMIT_RESET, /* X-RateLimit-Reset: seconds, or a Unix time (GitHub's) */
    HH_CONTENT_TYPE,      /* the first Content-Type: vl_result's content_type */
    HH_COUNT
};

typedef int http_body_fn(void *data, const char *chunk, size_t len);

/* Where the parser is.  The head (status line and fields) and the trailer
 * section are collected whole, checked and normalised before llhttp sees
 * them: bare LF line ends (RFC 9112 §2.2), obs-fold (§5.2) and trailing
 * whitespace (OWS) are rewritten, so a field reaches the callbacks in one
 * piece and every size limit counts the bytes as sent, however they were
 * split across reads.  The head's framing fields are parsed here once and
 * shown to llhttp in one canonical form (one Content-Length value, a plain
 * Transfer-Encoding list), so llhttp cannot frame the body differently
 * from how we read them; a bare CR or a field name that is not a token
 * fails the response.  Chunk-size lines and the CRLF after chunk data are
 * checked here too: Debian's llhttp 8.1 (loose mode) skips those two bytes
 * unchecked, and rejects valid chunk extensions. */
enum http_phase {
    HP_HEAD,        /* status line and header fields */
    HP_BODY,        /* body bytes straight to llhttp (chunk data: chunk_left of them) */
    HP_CHUNK_LINE,  /* a chunk-size line */
    HP_CHUNK_END,   /* the CRLF after chunk data */
    HP_TRAILERS,    /* the trailer section after the last chunk */
};

#define HTTP_MAX_INTERIM 16     /* 1xx responses before the final one */
#define HTTP_MAX_TE_CODINGS 4   /* Transfer-Encoding list entries, chunked included */

struct http_resp {
    llhttp_t parser;
    int status;
    int head_request;          /* response to HEAD: no body whatever the headers say */
    int headers_done;          /* final (non-1xx) headers complete */
    int complete;              /* final message complete */
    int keep_alive;            /* connection may be reused after complete */
    enum http_phase phase;
    size_t header_bytes;       /* bytes of this head (+ trailers), as received */
    size_t max_header_bytes;
    uint64_t bytes_in;         /* every byte fed, interim responses included */
    int interim;               /* 1xx responses skipped */
    int got_interim;           /* the head just parsed was a 1xx */
    struct vl_buf blk;         /* a head block split across reads, collected */
    size_t line_len;           /* bytes of the current line of the block */
    int line_cr;               /* ... whose last byte was CR */
    int started;               /* the status line has begun (blank lines before it skipped) */
    char prefix[5];            /* the first bytes of the status line, checked early */
    size_t prefix_len;
    uint64_t content_length;   /* valid when has_content_length */
    int has_content_length;
    int chunked;
    uint64_t chunk_left;       /* chunk data bytes still to come */
    char chunk_size[24];       /* the hex digits of the chunk-size line */
    size_t chunk_digits;
    size_t chunk_ext;          /* extension bytes skipped (bounded) */
    int chunk_cr;              /* a CR was seen, LF must follow */
    int last_chunk;            /* the zero-size chunk was seen */
    uint64_t body_bytes;       /* raw (encoded) body bytes received */
    char fname[24];            /* the header name being read, if short */
    size_t fname_len;
    int capture;               /* which HH_* the current value belongs to, or -1 */
    struct vl_buf cur;         /* the captured value of the current field line */
    int te_chunked;            /* our reading of Transfer-Encoding: chunked is final */
    int location_conflict;     /* two different Location values */
    char *hdr[HH_COUNT];       /* captured values (malloc'ed, OWS trimmed) */
    char *te_codings;          /* transfer codings to undo, chunked removed, or NULL */
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
/* When may a 429/503's sender be asked again, in µs from now: Retry-After,
 * else RateLimit-Reset, else X-RateLimit-Reset (delta seconds, or a Unix
 * time when over 10^9), clamped to a day; -1 when none says. */
int64_t http_resume_after_us(const struct http_resp *r, time_t now);

#endif
