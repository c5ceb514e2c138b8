/* fuzz_json.c: the CLI's JSON writer (out_record with json=1 and
 * out_json_string, src/cli/output.c).
 *
 * Input: byte 0 = flags (which of url/error/final_url/file are NULL or
 * absent, ok, reused), 8 bytes of time_ms (a raw double: NaN, infinities
 * and huge values included), 4 of status, then url, error, final_url and
 * file separated by NULs.  Properties: the record is one line ending in
 * '\n', valid UTF-8, and exactly one JSON object by RFC 8259 (a strict
 * validator below, written for this harness: the product has no JSON
 * parser); each string field decodes back to the input bytes when those
 * are valid UTF-8; out_json_string's output is one JSON string with the
 * same rule. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* ---------------------------------------------------- a strict validator */

struct json {
    const unsigned char *p, *end;
    int depth;
    /* the decoded value of the top-level member named `want`, if any */
    const char *want;
    char *got;
    size_t got_len;
    int found;
};

/* Length of the UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or
 * code points above U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], cp, min;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int valid_utf8(const unsigned char *p, size_t len)
{
    for (const unsigned char *end = p + len; p < end;) {
        size_t n = utf8_seq(p, end);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

static void ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(struct json *j, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++, j->p++) {
        if (j->p >= j->end)
            return -1;
        unsigned c = *j->p;
        unsigned d = c >= '0' && c <= '9' ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static void out_byte(char *out, size_t *n, unsigned char c)
{
    if (out)
        out[*n] = (char)c;
    (*n)++;
}

static void out_cp(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out_byte(out, n, (unsigned char)cp);
    } else if (cp < 0x800) {
        out_byte(out, n, (unsigned char)(0xC0 | cp >> 6));
        out_byte(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out_byte(out, n, (unsigned char)(0xE0 | cp >> 12));
        out_byte(out, n, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
        out_byte(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else {
        out_byte(out, n, (unsigned char)(0xF0 | cp >> 18));
        out_byte(out, n, (unsigned char)(0x80 | (cp >> 12 & 0x3F)));
        out_byte(out, n, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
        out_byte(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    }
}

/* A string at j->p (the opening quote); its decoded bytes into out (which
 * has room for as many bytes as the literal has) if not NULL. */
static int string(struct json *j, char *out, size_t *outlen)
{
    size_t n = 0;
    if (j->p >= j->end || *j->p != '"')
        return -1;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned c = *j->p;
        if (c < 0x20)
            return -1; /* control characters must be escaped */
        if (c != '\\') {
            size_t len = utf8_seq(j->p, j->end);
            if (!len)
                return -1;
            for (size_t i = 0; i < len; i++)
                out_byte(out, &n, j->p[i]);
            j->p += len;
            continue;
        }
        if (++j->p >= j->end)
            return -1;
        c = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", (int)c);
        if (c && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            out_byte(out, &n, (unsigned char)map[simple - "\"\\/bfnrt"]);
            continue;
        }
        unsigned cp, lo;
        if (c != 'u' || hex4(j, &cp) < 0)
            return -1;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1; /* a lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
                return -1;
            j->p += 2;
            if (hex4(j, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        out_cp(out, &n, cp);
    }
    if (j->p >= j->end)
        return -1;
    j->p++;
    if (outlen)
        *outlen = n;
    return 0;
}

static int digits(struct json *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s ? 0 : -1;
}

/* number = [ "-" ] int [ frac ] [ exp ]; int = "0" / digit1-9 *DIGIT */
static int number(struct json *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (digits(j) < 0)
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (digits(j) < 0)
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (digits(j) < 0)
            return -1;
    }
    return 0;
}

static int literal(struct json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int value(struct json *j);

static int members(struct json *j, int object)
{
    char close = object ? '}' : ']';
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        ws(j);
        int capture = 0;
        if (object) {
            const unsigned char *key = j->p;
            if (string(j, NULL, NULL) < 0)
                return -1;
            size_t klen = (size_t)(j->p - key) - 2;
            capture = j->depth == 1 && j->want && strlen(j->want) == klen &&
                      memcmp(key + 1, j->want, klen) == 0;
            ws(j);
            if (j->p >= j->end || *j->p++ != ':')
                return -1;
            ws(j);
        }
        if (capture && j->p < j->end && *j->p == '"') {
            free(j->got);
            j->got = malloc((size_t)(j->end - j->p) + 1);
            if (!j->got || string(j, j->got, &j->got_len) < 0)
                return -1;
            j->found = 1;
        } else if (value(j) < 0) {
            return -1;
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        return -1;
    }
}

static int value(struct json *j)
{
    if (j->p >= j->end || j->depth > 64)
        return -1;
    switch (*j->p) {
    case '{':
    case '[': {
        j->depth++;
        int rc = members(j, *j->p == '{');
        j->depth--;
        return rc;
    }
    case '"':
        return string(j, NULL, NULL);
    case 't':
        return literal(j, "true");
    case 'f':
        return literal(j, "false");
    case 'n':
        return literal(j, "null");
    default:
        return number(j);
    }
}

/* Is [p, p+len) exactly one JSON value (whitespace around it allowed)? */
static int one_value(const char *p, size_t len, const char *want, char **got, size_t *got_len)
{
    struct json j = {(const unsigned char *)p, (const unsigned char *)p + len, 0, want, NULL, 0, 0};
    ws(&j);
    int ok = value(&j) == 0;
    ws(&j);
    ok = ok && j.p == j.end;
    if (ok && want && j.found) {
        *got = j.got;
        *got_len = j.got_len;
    } else {
        free(j.got);
        if (got)
            *got = NULL;
    }
    return ok;
}

/* ------------------------------------------------------------ the harness */

static void fail(const char *what, const char *out, size_t len)
{
    fprintf(stderr, "fuzz_json: %s: %.*s\n", what, (int)(len > 2000 ? 2000 : len), out);
    abort();
}

/* The writer's output for s (NULL: null) must decode back to s when s is UTF-8. */
static void check_field(const char *out, size_t len, const char *key, const char *s)
{
    char *got = NULL;
    size_t got_len = 0;
    if (!one_value(out, len, key, &got, &got_len))
        fail("not one JSON object", out, len);
    if (!s) {
        free(got);
        return;
    }
    if (!got)
        fail(key, out, len); /* a string field that is not a string */
    size_t n = strlen(s);
    if (valid_utf8((const unsigned char *)s, n) && (got_len != n || memcmp(got, s, n) != 0))
        fail("a field does not decode to its bytes", out, len);
    free(got);
}

static char *memstream_of(const vl_result *r, const char *s, size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (!f)
        abort();
    if (r)
        out_record(f, r, 1);
    else
        out_json_string(f, s);
    fclose(f);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 13)
        return 0;
    unsigned flags = data[0];
    double ms;
    int32_t status;
    memcpy(&ms, data + 1, sizeof(ms));
    memcpy(&status, data + 9, sizeof(status));
    char *buf = malloc(size - 13 + 4);
    if (!buf)
        return 0;
    memcpy(buf, data + 13, size - 13);
    memset(buf + size - 13, 0, 4);
    /* four NUL-separated strings; missing ones are empty */
    const char *str[4];
    const char *p = buf;
    for (int i = 0; i < 4; i++) {
        str[i] = p;
        if (p < buf + size - 13)
            p += strlen(p) + 1;
    }
    vl_result r;
    memset(&r, 0, sizeof(r));
    r.index = (int64_t)status * 977;
    r.url = (flags & 1) ? NULL : str[0];
    r.ok = (flags & 2) != 0;
    r.status = status;
    r.bytes = (uint64_t)status * 65537u;
    r.time_ms = ms;
    r.redirects = status;
    r.error = (flags & 4) ? NULL : str[1];
    r.final_url = (flags & 8) ? NULL : str[2];
    r.file = (flags & 16) ? str[3] : NULL;
    r.reused = (flags & 32) != 0;
    r.attempts = (int)(flags >> 6);
    r.timings.queue_ms = -ms;
    r.timings.dns_ms = -1;
    r.timings.connect_ms = ms / 3;
    r.timings.tls_ms = ms * 1e300;
    r.timings.send_ms = ms;
    r.timings.ttfb_ms = (double)status;
    r.timings.total_ms = ms;

    size_t len;
    char *out = memstream_of(&r, NULL, &len);
    if (len == 0 || out[len - 1] != '\n' || memchr(out, '\n', len - 1))
        fail("not one line", out, len);
    if (!valid_utf8((const unsigned char *)out, len))
        fail("not UTF-8", out, len);
    static const char *const keys[] = {"url", "error", "final_url", "file"};
    const char *vals[] = {r.url, r.error, r.final_url, r.file};
    for (int i = 0; i < 4; i++)
        check_field(out, len, keys[i], vals[i]);
    free(out);

    for (int i = 0; i < 4; i++) {
        out = memstream_of(NULL, str[i], &len);
        char *got = NULL;
        size_t got_len = 0;
        struct json j = {(const unsigned char *)out, (const unsigned char *)out + len, 0, NULL,
                         NULL, 0, 0};
        got = malloc(len + 1);
        if (!got || string(&j, got, &got_len) < 0 || j.p != j.end)
            fail("out_json_string: not one JSON string", out, len);
        size_t n = strlen(str[i]);
        if (valid_utf8((const unsigned char *)str[i], n) &&
            (got_len != n || memcmp(got, str[i], n) != 0))
            fail("out_json_string: does not decode to its bytes", out, len);
        free(got);
        free(out);
    }
    free(buf);
    return 0;
}
