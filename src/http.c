/* http.c: request heads and llhttp-driven response parsing.
 * Bounds: the response head and trailers (max_header_bytes, counted as
 * received), interim responses (HTTP_MAX_INTERIM), chunk extensions
 * (CHUNK_EXT_MAX) and transfer codings (HTTP_MAX_TE_CODINGS). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "util.h"
#include "volley.h"

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
    if (s->proxy_auth)
        cap += strlen(s->proxy_auth) + 32;
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
        PUT("Accept-Encoding: gzip, deflate, br, zstd\r\n");
    if (!user_has(s, "Connection"))
        PUT("Connection: keep-alive\r\n");
    if (s->proxy_auth && !user_has(s, "Proxy-Authorization"))
        PUT("Proxy-Authorization: %s\r\n", s->proxy_auth);
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

static int fail(struct http_resp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct http_resp *r, const char *fmt, ...)
{
    if (!r->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, sizeof(r->err), fmt, ap);
        va_end(ap);
    }
    return -VL_EHTTP;
}

/* Server bytes quoted in an error message: printable ASCII as is, others
 * as \xNN (no terminal escapes from a hostile server), cut with "..." to
 * fit.  Returns out. */
static const char *shown(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0, i = 0;
    for (; i < n && k + 8 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, isprint((unsigned char)s[i]) ? "%c" : "\\x%02x",
                              (unsigned char)s[i]);
    snprintf(out + k, cap - k, "%s", i < n ? "..." : "");
    return out;
}

#define SHOWN(s, n) shown((char[104]){0}, 104, (s), (n))

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    if (r->fname_len + len < sizeof(r->fname))
        memcpy(r->fname + r->fname_len, at, len);
    r->fname_len += len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    static const char *const names[HH_COUNT] = {"location",          "content-encoding",
                                                "retry-after",       "transfer-encoding",
                                                "ratelimit-reset",   "x-ratelimit-reset",
                                                "content-type"};
    static const size_t lens[HH_COUNT] = {8, 16, 11, 17, 15, 17, 12};
    r->capture = -1;
    /* the length first: most fields are none of these (a tenth of the head's
     * parse time went to comparing every name with every one) */
    if (r->fname_len < sizeof(r->fname) && r->phase == HP_HEAD)
        for (int i = 0; i < HH_COUNT; i++)
            if (lens[i] == r->fname_len && strncasecmp(r->fname, names[i], lens[i]) == 0)
                r->capture = i;
    r->fname_len = 0;
    r->cur.len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    if (r->capture < 0)
        return 0;
    vl_buf_add(&r->cur, at, len);
    return r->cur.oom ? -1 : 0;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Keep the value of a captured field line, OWS trimmed (RFC 9110 §5.5). */
static int on_header_value_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    int h = r->capture;
    r->capture = -1;
    if (h < 0)
        return 0;
    const char *v = vl_buf_str(&r->cur);
    size_t n = r->cur.len;
    while (n && is_ows(*v))
        v++, n--;
    while (n && is_ows(v[n - 1]))
        n--;
    char *old = r->hdr[h];
    if (old && h != HH_CONTENT_ENCODING && h != HH_TRANSFER_ENCODING) { /* singletons */
        if (h == HH_LOCATION && (strlen(old) != n || memcmp(old, v, n) != 0))
            r->location_conflict = 1;
        return 0;
    }
    if (old && n == 0)
        return 0; /* an empty list element adds nothing */
    size_t olen = old ? strlen(old) : 0, slen = (old && olen) ? 2 : 0;
    char *nv = realloc(old, olen + slen + n + 1);
    if (!nv)
        return -1;
    memcpy(nv + olen, ", ", slen);
    memcpy(nv + olen + slen, v, n);
    nv[olen + slen + n] = '\0';
    r->hdr[h] = nv;
    return 0;
}

static void clear_captures(struct http_resp *r)
{
    for (int i = 0; i < HH_COUNT; i++) {
        free(r->hdr[i]);
        r->hdr[i] = NULL;
    }
    free(r->te_codings);
    r->te_codings = NULL;
    r->te_chunked = 0;
    r->location_conflict = 0;
}

/* Transfer-Encoding (RFC 9112 §6.1): codings applied in order; chunked, if
 * there, must be the final one and is undone here; the others are left in
 * te_codings for the decoder.  Without chunked the body runs to the close
 * (§6.3 rule 4), which llhttp does for responses.  canon gets the list as
 * llhttp is then shown it: names only, no parameters, no empty elements,
 * so that llhttp's idea of "chunked" and ours cannot differ. */
static int parse_te(struct http_resp *r, const char *v, size_t vlen, char *canon, size_t cap)
{
    char list[HTTP_MAX_TE_CODINGS * 16] = "";
    size_t len = 0, clen = 0;
    int n = 0, chunked_at = -1;
    canon[0] = '\0';
    for (const char *s = v, *end = v + vlen; s < end;) {
        while (s < end && (*s == ',' || is_ows(*s)))
            s++;
        if (s == end)
            break;
        const char *t = s;
        while (s < end && *s != ',' && *s != ';' && !is_ows(*s))
            s++;
        size_t tl = (size_t)(s - t);
        while (s < end && is_ows(*s))
            s++;
        int params = s < end && *s == ';';
        if (s < end && *s != ',' && !params)
            return fail(r, "http: malformed Transfer-Encoding '%s'", SHOWN(v, vlen));
        while (s < end && *s != ',')
            s++; /* parameters: none is defined for these codings, so none is acted on */
        if (++n > HTTP_MAX_TE_CODINGS)
            return fail(r, "http: Transfer-Encoding '%s' has more than %d codings",
                        SHOWN(v, vlen), HTTP_MAX_TE_CODINGS);
        if (chunked_at >= 0)
            return fail(r, "http: Transfer-Encoding '%s': chunked is not the final coding",
                        SHOWN(v, vlen));
        int chunked = vl_strcaseeq_n(t, tl, "chunked");
        if (chunked && params)
            return fail(r, "http: Transfer-Encoding chunked with parameters");
        if (chunked)
            chunked_at = n;
        else if (!vl_strcaseeq_n(t, tl, "identity") && !vl_strcaseeq_n(t, tl, "gzip") &&
                 !vl_strcaseeq_n(t, tl, "x-gzip") && !vl_strcaseeq_n(t, tl, "deflate"))
            return fail(r, "http: unsupported transfer coding '%s'", SHOWN(t, tl));
        clen += (size_t)snprintf(canon + clen, cap - clen, "%s%.*s", clen ? ", " : "", (int)tl, t);
        /* identity: RFC 2616's no-op, still sent by a few servers */
        if (!chunked && !vl_strcaseeq_n(t, tl, "identity"))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%.*s", len ? ", " : "",
                                    (int)tl, t);
    }
    if (n == 0)
        return fail(r, "http: empty Transfer-Encoding");
    r->te_chunked = chunked_at >= 0;
    free(r->te_codings);
    r->te_codings = NULL;
    if (len && !(r->te_codings = vl_strdup(list)))
        return -ENOMEM;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_resp *r = R(p);
    int status = p->status_code;
    r->status = status;
    if (status >= 100 && status < 200 && status != 101) {
        /* RFC 9110 §15.2: an interim response (100, 103) has no content,
         * whatever framing fields it carries; the final one follows. */
        r->got_interim = 1;
        return 1;
    }
    if (status == 101)
        return fail(r, "http: unexpected 101 Switching Protocols");
    if (r->location_conflict)
        return fail(r, "http: several different Location header fields");
    r->headers_done = 1;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    if (r->chunked != r->te_chunked)
        return fail(r, "http: response head and body boundary unclear");
    r->has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
    r->content_length = p->content_length;
    /* RFC 9110 §6.4.1: no body after HEAD, 204 or 304, whatever
     * Content-Length says (a 304's describes the representation). */
    if (r->head_request || status == 204 || status == 304)
        return 1;
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    struct http_resp *r = R(p);
    r->chunk_left = p->content_length;
    if (p->content_length == 0)
        r->last_chunk = 1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_resp *r = R(p);
    if (r->phase == HP_HEAD || r->phase == HP_TRAILERS)
        /* llhttp saw the head end before our scan did: never let bytes of
         * a head or trailer block become body */
        return fail(r, "http: response head and body boundary unclear");
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
    if (r->headers_done) {
        r->complete = 1;
        /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means
         * faulty framing; the connection closes after it. */
        r->keep_alive = llhttp_should_keep_alive(p) &&
                        !(r->hdr[HH_TRANSFER_ENCODING] && p->http_major == 1 && p->http_minor == 0);
    }
    return HPE_PAUSED; /* stop here: bytes after the message are not ours */
}

/* Constant, not filled in on first use: loops in several threads (volley -t)
 * start parsers at once, and a lazily set static was a data race (TSan).
 * The fields not named are zero, as llhttp_settings_init leaves them. */
static const llhttp_settings_t parser_settings = {
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

static const llhttp_settings_t *settings(void) { return &parser_settings; }

static void start_parser(struct http_resp *r)
{
    llhttp_init(&r->parser, HTTP_RESPONSE, settings());
    r->parser.data = r;
}

void http_resp_init(struct http_resp *r, size_t max_header_bytes, int head_request,
                    http_body_fn *on_body_fn, void *data)
{
    memset(r, 0, sizeof(*r));
    start_parser(r);
    r->max_header_bytes = max_header_bytes;
    r->head_request = head_request;
    r->capture = -1;
    r->on_body = on_body_fn;
    r->data = data;
}

void http_resp_free(struct http_resp *r)
{
    clear_captures(r);
    vl_buf_free(&r->blk);
    vl_buf_free(&r->cur);
}

static long llhttp_error(struct http_resp *r, llhttp_errno_t e)
{
    if (r->err[0])
        return -VL_EHTTP; /* a callback said precisely what went wrong */
    const char *reason = llhttp_get_error_reason(&r->parser);
    if (!reason)
        reason = llhttp_errno_name(e);
    if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
        return fail(r, "http: both Transfer-Encoding and Content-Length in response "
                       "(RFC 9112 6.3)");
    if (e == HPE_INVALID_CHUNK_SIZE || (r->headers_done && r->chunked))
        return fail(r, "http: malformed chunked body (llhttp: %s)", reason);
    if (e == HPE_INVALID_TRANSFER_ENCODING)
        return fail(r, "http: malformed Transfer-Encoding (llhttp: %s)", reason);
    return fail(r, "http: malformed response (llhttp: %s)", reason);
}

/* Feed llhttp bytes that must all be taken (a whole block, a chunk line);
 * stopping at the end of the message is fine. */
static long execute_all(struct http_resp *r, const char *p, size_t n)
{
    llhttp_errno_t e = llhttp_execute(&r->parser, p, n);
    if (e == HPE_OK)
        return 0;
    if (e == HPE_PAUSED && (r->complete || r->got_interim)) {
        /* the message may end only where the bytes we handed over end */
        if (llhttp_get_error_pos(&r->parser) != p + n)
            return fail(r, "http: response head and body boundary unclear");
        return 0;
    }
    return llhttp_error(r, e);
}

/* ---- head blocks */

/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [reason-phrase],
 * the code exactly three digits.  A missing SP before an empty reason is
 * accepted, as curl and browsers do; anything else is not guessed at. */
static int check_status_line(struct http_resp *r, const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    const char *what = NULL;
    if (n < 12 || memcmp(s, "HTTP/", 5) != 0 || !isdigit((unsigned char)s[5]) || s[6] != '.' ||
        !isdigit((unsigned char)s[7]))
        what = "no HTTP/x.y version";
    else if (s[5] != '1')
        what = "unsupported HTTP version";
    else if (s[8] != ' ' || !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
             !isdigit((unsigned char)s[11]) || (n > 12 && s[12] != ' '))
        what = "status code not three digits after one space";
    else if (s[9] == '0')
        what = "status code below 100";
    if (what) {
        char q[64];
        return fail(r, "http: malformed status line (%s): '%s'", what, shown(q, sizeof(q), s, n));
    }
    return 0;
}

/* Does the block need rewriting before llhttp sees it?  Bare LF, obs-fold
 * (a line starting with SP/HT) and OWS before a line end all do. */
static int needs_normalising(const char *b, size_t n)
{
    for (const char *p = b, *end = b + n; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
        if (p == b || p[-1] != '\r')
            return 1;
        if (p - b >= 2 && is_ows(p[-2]))
            return 1;
        if (p + 1 < end && is_ows(p[1]))
            return 1;
    }
    return 0;
}

/* Rewrite a block as llhttp wants it: CRLF line ends, no OWS before them,
 * an obs-fold replaced by one SP (RFC 9112 §5.2).  Whitespace before the
 * first field of a head is rejected (§2.2).  Returns a malloc'ed copy. */
static char *normalise(struct http_resp *r, const char *b, size_t n, int head, size_t *outlen)
{
    char *o = malloc(n + n / 2 + 4);
    if (!o)
        return NULL;
    size_t k = 0, line = 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (c == '\r' && i + 1 < n && b[i + 1] == '\n')
            continue;
        if (c != '\n') {
            o[k++] = c;
            continue;
        }
        while (k && is_ows(o[k - 1]) && (line > 0 || !head))
            k--;
        line++;
        if (i + 1 < n && is_ows(b[i + 1])) {
            if (head && line == 1) {
                free(o);
                fail(r, "http: whitespace before the first header field (RFC 9112 2.2)");
                return NULL;
            }
            o[k++] = ' ';
            while (i + 1 < n && is_ows(b[i + 1]))
                i++;
            continue;
        }
        o[k++] = '\r';
        o[k++] = '\n';
    }
    *outlen = k;
    return o;
}

/* Scan p for the end of the block: an empty line.  Returns the bytes that
 * belong to the block; *end is set when it is whole. */
static size_t scan_block(struct http_resp *r, const char *p, size_t n, int *end)
{
    size_t i = 0;
    *end = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t stop = nl ? (size_t)(nl - p) : n;
        if (stop > i) {
            r->line_len += stop - i;
            r->line_cr = p[stop - 1] == '\r';
        }
        if (!nl)
            return n;
        i = stop + 1;
        int blank = r->line_len == 0 || (r->line_len == 1 && r->line_cr);
        r->line_len = 0;
        r->line_cr = 0;
        if (blank) {
            *end = 1;
            return i;
        }
    }
    return i;
}

static long parse_block(struct http_resp *r, const char *b, size_t n);

/* Collect a head or trailer block from p; parse it once whole.  Returns the
 * bytes consumed or a negative code. */
static long take_block(struct http_resp *r, const char *p, size_t n)
{
    size_t skip = 0;
    if (r->phase == HP_HEAD && !r->started) {
        /* empty lines before the status line are ignored (RFC 9112 §2.2) */
        while (skip < n && (p[skip] == '\r' || p[skip] == '\n'))
            skip++;
        if (skip == n) {
            r->header_bytes += n;
            return r->header_bytes > r->max_header_bytes
                       ? fail(r, "http: header block over %zu bytes", r->max_header_bytes)
                       : (long)n;
        }
        r->started = 1;
    }
    int end;
    size_t used = scan_block(r, p + skip, n - skip, &end);
    r->header_bytes += skip + used;
    if (r->header_bytes > r->max_header_bytes)
        return fail(r, "http: header block over %zu bytes", r->max_header_bytes);
    if (r->phase == HP_HEAD && r->prefix_len < sizeof(r->prefix)) {
        /* a server that does not speak HTTP/1 fails now, not 64 KiB later */
        size_t k = sizeof(r->prefix) - r->prefix_len;
        memcpy(r->prefix + r->prefix_len, p + skip, used < k ? used : k);
        r->prefix_len += used < k ? used : k;
        if (memcmp(r->prefix, "HTTP/", r->prefix_len) != 0)
            return fail(r, "http: malformed status line (not an HTTP/1 response)");
    }
    if (!end || r->blk.len) {
        vl_buf_add(&r->blk, p + skip, used);
        if (r->blk.oom)
            return -ENOMEM;
        if (!end)
            return (long)n;
        long rc = parse_block(r, r->blk.p, r->blk.len);
        r->blk.len = 0;
        return rc < 0 ? rc : (long)(skip + used);
    }
    long rc = parse_block(r, p + skip, used); /* whole in this read: no copy */
    return rc < 0 ? rc : (long)(skip + used);
}

/* The head is parsed; set up for what follows it. */
static long after_head(struct http_resp *r)
{
    if (r->got_interim) {
        if (++r->interim > HTTP_MAX_INTERIM)
            return fail(r, "http: more than %d interim (1xx) responses", HTTP_MAX_INTERIM);
        /* the final response starts afresh: parser, captures, limits */
        r->got_interim = 0;
        r->started = 0;
        r->prefix_len = 0;
        r->header_bytes = 0;
        clear_captures(r);
        start_parser(r);
        return 0;
    }
    if (!r->complete)
        r->phase = r->chunked ? HP_CHUNK_LINE : HP_BODY;
    return 0;
}

/* RFC 9112 §2.2: a bare CR is invalid.  Rejected, not replaced: loose
 * llhttp takes CR as a line end and skips the next byte unchecked, so a
 * "\r" inside a block would end the head early there. */
static int has_bare_cr(const char *b, size_t n)
{
    for (const char *p = b, *end = b + n; (p = memchr(p, '\r', (size_t)(end - p))); p++)
        if (p + 1 == end || p[1] != '\n')
            return 1;
    return 0;
}

/* ---- framing fields (RFC 9112 §6.3) */

/* Is this field line (normalised: no OWS before the colon) named `name`? */
static int line_is(const char *l, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && l[k] == ':' && strncasecmp(l, name, k) == 0;
}

static void trim_ows(const char **v, size_t *n)
{
    while (*n && is_ows(**v))
        (*v)++, (*n)--;
    while (*n && is_ows((*v)[*n - 1]))
        (*n)--;
}

/* RFC 9110 §5.6.2: the length of the token at the start of s. */
static size_t strspn_token(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || strchr("!#$%&'*+-.^_`|~", s[i])) && s[i])
        i++;
    return i;
}


/* Content-Length = 1*DIGIT.  A list of identical values, in one field line
 * ("5, 5") or in repeated ones, is taken as that one value (RFC 9110 §8.6),
 * as curl does; differing values, empty elements or anything but digits
 * fail.  num gets the value without leading zeros (at most 20 digits:
 * llhttp then checks it fits 64 bits). */
static int parse_cl(struct http_resp *r, const char *v, size_t vlen, char *num, size_t *numlen)
{
    for (const char *s = v, *end = v + vlen;; s++) {
        while (s < end && is_ows(*s))
            s++;
        const char *d = s;
        while (s < end && isdigit((unsigned char)*s))
            s++;
        const char *dend = s;
        while (s < end && is_ows(*s))
            s++;
        if (d == dend || (s < end && *s != ','))
            return fail(r, "http: malformed Content-Length '%s'", SHOWN(v, vlen));
        while (dend - d > 1 && *d == '0')
            d++;
        size_t dl = (size_t)(dend - d);
        if (dl > 20)
            return fail(r, "http: Content-Length '%s' is too large", SHOWN(v, vlen));
        if (*numlen && (*numlen != dl || memcmp(num, d, dl) != 0))
            return fail(r, "http: Content-Length values differ ('%s' after '%.*s')",
                        SHOWN(v, vlen), (int)*numlen, num);
        memcpy(num, d, dl);
        *numlen = dl;
        if (s == end)
            return 0;
    }
}

/* The head b without its Content-Length and Transfer-Encoding lines, then
 * the canonical ones (num/te NULL: none).  0 or -ENOMEM. */
static int rewrite_framing(const char *b, size_t n, const char *first, const char *num,
                           size_t numlen, const char *te, const char **out, size_t *outlen)
{
    char *o = malloc(n + HTTP_MAX_TE_CODINGS * 16 + 64);
    if (!o)
        return -ENOMEM;
    size_t k = (size_t)(first - b);
    memcpy(o, b, k);
    for (const char *l = first, *end = b + n, *nl;
         (nl = memchr(l, '\n', (size_t)(end - l))) && nl > l + 1; l = nl + 1) {
        size_t len = (size_t)(nl - l) - 1;
        if (line_is(l, len, "content-length") || line_is(l, len, "transfer-encoding"))
            continue;
        memcpy(o + k, l, len + 2);
        k += len + 2;
    }
    if (num)
        k += (size_t)sprintf(o + k, "Content-Length: %.*s\r\n", (int)numlen, num);
    if (te)
        k += (size_t)sprintf(o + k, "Transfer-Encoding: %s\r\n", te);
    memcpy(o + k, "\r\n", 2);
    *out = o;
    *outlen = k + 2;
    return 0;
}

/* Check the framing fields of a head (CRLF line ends, as normalised) and,
 * where needed, rewrite them the way llhttp is to see them: one
 * Content-Length with one value, Transfer-Encoding as a plain list of
 * coding names.  An interim response's are dropped: it has no content,
 * whatever they say.  *out is b itself when nothing changes, else a
 * malloc'ed copy. */
static int frame_fields(struct http_resp *r, const char *b, size_t n, const char **out,
                        size_t *outlen)
{
    int interim = b[9] == '1'; /* the status line is checked */
    char num[21], te[HTTP_MAX_TE_CODINGS * 16];
    size_t numlen = 0;
    int ncl = 0, nte = 0, rewrite = 0;
    const char *first = (const char *)memchr(b, '\n', n) + 1, *end = b + n;
    *out = b;
    *outlen = n;
    for (const char *l = first, *nl; (nl = memchr(l, '\n', (size_t)(end - l))); l = nl + 1) {
        size_t len = (size_t)(nl - l) - 1; /* without its CR */
        if (len == 0)
            break;
        /* RFC 9112 §5.1: field-name is a token, right before the colon;
         * loose llhttp takes "Content Length: 5" as some other field, and
         * the body as running to the close. */
        size_t name = strspn_token(l, len);
        if (name == 0 || name == len || l[name] != ':')
            return fail(r, "http: malformed header field name in '%s'", SHOWN(l, len));
        int cl = line_is(l, len, "content-length"), tenc = line_is(l, len, "transfer-encoding");
        if (!cl && !tenc)
            continue;
        size_t k = cl ? 15 : 18, vlen = len - k;
        const char *v = l + k;
        trim_ows(&v, &vlen);
        ncl += cl;
        nte += tenc;
        if (interim) {
            rewrite = 1;
            continue;
        }
        if (tenc && nte > 1)
            return fail(r, "http: %d Transfer-Encoding header fields in one response", nte);
        int rc = cl ? parse_cl(r, v, vlen, num, &numlen) : parse_te(r, v, vlen, te, sizeof(te));
        if (rc < 0)
            return rc;
        if (cl ? ncl > 1 || vlen != numlen || memcmp(v, num, numlen) != 0
               : strlen(te) != vlen || memcmp(v, te, vlen) != 0)
            rewrite = 1;
    }
    if (ncl && nte && !interim)
        return fail(r, "http: both Transfer-Encoding and Content-Length in response "
                       "(RFC 9112 6.3)");
    if (!rewrite)
        return 0;
    return rewrite_framing(b, n, first, ncl && !interim ? num : NULL, numlen,
                           nte && !interim ? te : NULL, out, outlen);
}

static long parse_block(struct http_resp *r, const char *b, size_t n)
{
    int head = r->phase == HP_HEAD;
    if (has_bare_cr(b, n))
        return fail(r, "http: CR without LF in the response %s (RFC 9112 2.2)",
                    head ? "head" : "trailers");
    if (head && check_status_line(r, b, (size_t)((const char *)memchr(b, '\n', n) - b)) < 0)
        return -VL_EHTTP;
    char *norm = NULL, *framed = NULL;
    const char *blk = b;
    size_t len = n;
    long rc = 0;
    if (needs_normalising(b, n)) {
        if (!(norm = normalise(r, b, n, head, &len)))
            return r->err[0] ? -VL_EHTTP : -ENOMEM;
        blk = norm;
    }
    if (head) {
        const char *f;
        rc = frame_fields(r, blk, len, &f, &len);
        if (f != blk)
            blk = framed = (char *)f;
    }
    if (rc >= 0)
        rc = execute_all(r, blk, len);
    free(norm);
    free(framed);
    if (rc < 0)
        return rc;
    if (head)
        return after_head(r);
    if (!r->complete)
        return fail(r, "http: malformed trailer section");
    return 0;
}

/* ---- chunked framing */

/* One byte of a chunk-size line: chunk-size [ BWS ";" ext ] CRLF
 * (RFC 9112 §7.1).  The hex digits go to llhttp with a CRLF once the line
 * ends; extensions are skipped (recipients ignore those they do not know,
 * §7.1.1; llhttp 8.1 rejects valid ones), bounded. */
static long chunk_line_byte(struct http_resp *r, char c)
{
    if (r->chunk_cr && c != '\n')
        return fail(r, "http: malformed chunked body (CR without LF in a chunk-size line)");
    if (c == '\r') {
        r->chunk_cr = 1;
        return 0;
    }
    if (c == '\n') {
        if (r->chunk_digits == 0)
            return fail(r, "http: malformed chunked body (no chunk size)");
        char line[sizeof(r->chunk_size) + 2];
        memcpy(line, r->chunk_size, r->chunk_digits);
        memcpy(line + r->chunk_digits, "\r\n", 2);
        size_t len = r->chunk_digits + 2;
        r->chunk_digits = r->chunk_ext = 0;
        r->chunk_cr = 0;
        long rc = execute_all(r, line, len);
        if (rc < 0)
            return rc;
        r->phase = r->last_chunk ? HP_TRAILERS : HP_BODY;
        return 0;
    }
    if (r->chunk_ext) {
        if (++r->chunk_ext > CHUNK_EXT_MAX)
            return fail(r, "http: chunk extension over %d bytes", CHUNK_EXT_MAX);
        return 0;
    }
    if (isxdigit((unsigned char)c)) {
        if (r->chunk_digits >= sizeof(r->chunk_size))
            return fail(r, "http: malformed chunked body (chunk size over %zu digits)",
                        sizeof(r->chunk_size));
        r->chunk_size[r->chunk_digits++] = c;
        return 0;
    }
    if (r->chunk_digits && (c == ';' || is_ows(c))) {
        r->chunk_ext = 1;
        return 0;
    }
    return fail(r, "http: malformed chunked body (invalid byte 0x%02x in a chunk-size line)",
                (unsigned char)c);
}

/* One byte of the line end after chunk data: CRLF, or a bare LF. */
static long chunk_end_byte(struct http_resp *r, char c)
{
    if (c == '\r' && !r->chunk_cr) {
        r->chunk_cr = 1;
        return 0;
    }
    if (c != '\n')
        return fail(r, "http: malformed chunked body (chunk data not followed by CRLF)");
    r->chunk_cr = 0;
    long rc = execute_all(r, "\r\n", 2);
    if (rc < 0)
        return rc;
    r->phase = HP_CHUNK_LINE;
    return 0;
}

/* Body bytes straight to llhttp; chunk data no further than its chunk. */
static long feed_body(struct http_resp *r, const char *p, size_t n)
{
    if (r->chunked && n > r->chunk_left)
        n = (size_t)r->chunk_left;
    llhttp_errno_t e = llhttp_execute(&r->parser, p, n);
    if (e == HPE_PAUSED && r->complete) {
        const char *pos = llhttp_get_error_pos(&r->parser);
        return pos ? (long)(pos - p) : (long)n;
    }
    if (e != HPE_OK)
        return llhttp_error(r, e);
    if (r->chunked && (r->chunk_left -= n) == 0)
        r->phase = HP_CHUNK_END;
    return (long)n;
}

long http_resp_feed(struct http_resp *r, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !r->complete) {
        long used;
        switch (r->phase) {
        case HP_HEAD:
        case HP_TRAILERS:
            used = take_block(r, buf + off, len - off);
            break;
        case HP_BODY:
            used = feed_body(r, buf + off, len - off);
            break;
        case HP_CHUNK_LINE:
            used = chunk_line_byte(r, buf[off]);
            used = used < 0 ? used : 1;
            break;
        case HP_CHUNK_END:
            used = chunk_end_byte(r, buf[off]);
            used = used < 0 ? used : 1;
            break;
        default:
            used = fail(r, "http: internal parser state");
        }
        if (used < 0)
            return used;
        off += (size_t)used;
        r->bytes_in += (uint64_t)used;
    }
    return (long)off;
}

int http_resp_eof(struct http_resp *r)
{
    if (r->complete)
        return 0;
    if (r->phase == HP_BODY && !r->chunked && !r->has_content_length) {
        /* RFC 9112 §6.3 rules 4 and 8: the body ends when the connection closes. */
        llhttp_errno_t e = llhttp_finish(&r->parser);
        if (e == HPE_OK || (e == HPE_PAUSED && r->complete)) {
            r->complete = 1;
            r->keep_alive = 0;
            return 0;
        }
    }
    if (r->phase == HP_HEAD && r->bytes_in == 0 && r->header_bytes == 0)
        return fail(r, "http: connection closed before any response");
    if (r->phase == HP_HEAD)
        return fail(r, "http: connection closed inside the response headers");
    if (r->chunked)
        return fail(r, "http: truncated chunked body (got %llu bytes)",
                    (unsigned long long)r->body_bytes);
    return fail(r, "http: body shorter than Content-Length (got %llu of %llu bytes)",
                (unsigned long long)r->body_bytes, (unsigned long long)r->content_length);
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

int64_t http_resume_after_us(const struct http_resp *r, time_t now)
{
    int64_t us = http_retry_after_us(r->hdr[HH_RETRY_AFTER], now);
    if (us >= 0)
        return us;
    us = http_retry_after_us(r->hdr[HH_RATELIMIT_RESET], now);
    if (us >= 0)
        return us;
    const char *x = r->hdr[HH_X_RATELIMIT_RESET];
    if (!x || *x < '0' || *x > '9')
        return -1;
    char *end;
    long long v = strtoll(x, &end, 10); /* saturates: clamped below */
    if (*end)
        return -1;
    long long d = v > 1000000000LL ? v - (long long)now : v;
    if (d < 0)
        d = 0;
    return (int64_t)(d < RETRY_AFTER_CLAMP_S ? d : RETRY_AFTER_CLAMP_S) * 1000000;
}
