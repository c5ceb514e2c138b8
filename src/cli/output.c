/* output.c: the records the volley command prints, JSON Lines or aligned
 * text.  Field names and meanings follow the contract in DESIGN.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int utf8_len(const unsigned char *s, size_t avail)
{
    int n;
    unsigned min;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        n = 2, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 3, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if ((size_t)n > avail)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

/* A record is built in one buffer and written with one fwrite: printf's
 * parsing was 10% of the CPU of 100,000 small GETs (perf). */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n)
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
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(struct buf *b, unsigned long long v)
{
    char tmp[24];
    int i = sizeof(tmp);
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10));
    put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

static void put_i64(struct buf *b, long long v)
{
    if (v < 0) {
        put(b, "-", 1);
        put_u64(b, 0ull - (unsigned long long)v);
    } else {
        put_u64(b, (unsigned long long)v);
    }
}

/* Past this, a duration is a bug elsewhere; it is printed clamped, since
 * converting a double beyond 2^64 µs to an integer is undefined (found by
 * tests/fuzz/fuzz_json.c: an infinite or 1e300 time_ms). */
#define PUT_MS_MAX 1e15 /* about 31,700 years */

/* ms with three decimals (µs resolution), never in exponent form. */
static void put_ms(struct buf *b, double ms)
{
    if (!(ms >= 0))
        ms = 0;
    if (ms > PUT_MS_MAX)
        ms = PUT_MS_MAX;
    unsigned long long us = (unsigned long long)(ms * 1000.0 + 0.5);
    char frac[4] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10), 0};
    put_u64(b, us / 1000);
    put(b, ".", 1);
    put(b, frac, 3);
}

/* Bytes a JSON string cannot hold as they are: control characters, '"',
 * '\\', and the first bytes of UTF-8 sequences (checked one by one). */
static const unsigned char json_special[256] = {
    [0 ... 0x1F] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xFF] = 1,
};

/* A JSON string of n bytes (NULs included); bytes that are not UTF-8
 * become U+FFFD so every line parses. */
static void put_json_mem(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char *run = p;
        /* one put for a run of plain ASCII and valid UTF-8 (a body's text
         * went through put a character at a time) */
        for (int n; p < end;) {
            if (!json_special[*p])
                p++;
            else if (*p >= 0x80 && (n = utf8_len(p, (size_t)(end - p))))
                p += n;
            else
                break;
        }
        put(b, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2);
            p++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(b, esc, 6);
            p++;
        } else { /* not UTF-8 */
            puts_(b, "\\ufffd");
            p++;
        }
    }
    put(b, "\"", 1);
}

/* A JSON string, or null for NULL. */
static void put_json_string(struct buf *b, const char *s)
{
    if (!s)
        puts_(b, "null");
    else
        put_json_mem(b, s, strlen(s));
}

/* --body's fields: after every other field, since they can be long. */
static void put_body(struct buf *b, const vl_result *r, const struct out_body *body)
{
    if (!body || !body->on)
        return;
    if (!r->ok || body->none) {
        puts_(b, ",\"body\":null");
        return;
    }
    if (body->text) {
        puts_(b, ",\"body\":");
        put_json_mem(b, body->data ? body->data : "", body->len);
        puts_(b, ",\"charset\":");
        put_json_string(b, body->charset);
        puts_(b, ",\"charset_source\":");
        put_json_string(b, body->charset_source);
    } else {
        puts_(b, ",\"body_base64\":\""); /* base64: nothing to escape */
        put(b, body->data, body->len);
        put(b, "\"", 1);
    }
    puts_(b, body->truncated ? ",\"body_truncated\":true" : ",\"body_truncated\":false");
}

void out_json_string(FILE *f, const char *s)
{
    struct buf b = {0};
    put_json_string(&b, s);
    if (!b.oom)
        fwrite(b.p, 1, b.len, f);
    free(b.p);
}

static void put_timing(struct buf *b, const char *name, double ms, int comma)
{
    put(b, "\"", 1);
    puts_(b, name);
    puts_(b, "\":");
    if (ms < 0)
        puts_(b, "null");
    else
        put_ms(b, ms);
    if (comma)
        put(b, ",", 1);
}

/* Each worker thread's record buffer, reused: no allocation per record.
 * Freed by out_thread_end() when the thread's work is over. */
static __thread struct buf record_buf;

void out_thread_end(void)
{
    free(record_buf.p);
    memset(&record_buf, 0, sizeof(record_buf));
}

static void format_json(struct buf *b, const vl_result *r, const char *id_json,
                        const struct out_body *body)
{
    puts_(b, "{\"index\":");
    put_i64(b, (long long)r->index);
    puts_(b, ",\"url\":");
    put_json_string(b, r->url);
    puts_(b, r->ok ? ",\"ok\":true,\"status\":" : ",\"ok\":false,\"status\":");
    if (r->status)
        put_i64(b, r->status);
    else
        puts_(b, "null");
    puts_(b, ",\"bytes\":");
    put_u64(b, (unsigned long long)r->bytes);
    puts_(b, ",\"time_ms\":");
    put_ms(b, r->time_ms);
    puts_(b, ",\"redirects\":");
    put_i64(b, r->redirects);
    puts_(b, ",\"final_url\":");
    put_json_string(b, r->final_url);
    puts_(b, ",\"error\":");
    put_json_string(b, r->error);
    if (r->file) {
        puts_(b, ",\"file\":");
        put_json_string(b, r->file);
    }
    puts_(b, ",\"timings\":{");
    put_timing(b, "queue_ms", r->timings.queue_ms, 1);
    put_timing(b, "dns_ms", r->timings.dns_ms, 1);
    put_timing(b, "connect_ms", r->timings.connect_ms, 1);
    put_timing(b, "tls_ms", r->timings.tls_ms, 1);
    put_timing(b, "proxy_ms", r->timings.proxy_ms, 1);
    put_timing(b, "send_ms", r->timings.send_ms, 1);
    put_timing(b, "ttfb_ms", r->timings.ttfb_ms, 1);
    put_timing(b, "total_ms", r->timings.total_ms, 0);
    puts_(b, r->reused ? "},\"reused\":true,\"attempts\":" : "},\"reused\":false,\"attempts\":");
    put_i64(b, r->attempts);
    puts_(b, ",\"throttled_ms\":");
    put_ms(b, r->throttled_ms);
    puts_(b, ",\"http_version\":");
    if (r->http_version)
        put_json_string(b, r->http_version);
    else
        puts_(b, "null");
    if (id_json) {
        /* already JSON (jansson's compact form of the input's "id") */
        puts_(b, ",\"id\":");
        puts_(b, id_json);
    }
    put_body(b, r, body);
    puts_(b, "}\n");
}

static void format_text(struct buf *b, const vl_result *r)
{
    char head[96];
    char status[8];
    if (r->status)
        snprintf(status, sizeof(status), "%d", r->status);
    else
        snprintf(status, sizeof(status), "---");
    snprintf(head, sizeof(head), "%-4s %-3s %10llu B %9.1f ms  ", r->ok ? "ok" : "FAIL", status,
             (unsigned long long)r->bytes, r->time_ms);
    puts_(b, head);
    puts_(b, r->url ? r->url : "");
    if (r->error) {
        puts_(b, "  (");
        puts_(b, r->error);
        puts_(b, ")");
    }
    if (r->file) {
        puts_(b, "  -> ");
        puts_(b, r->file);
    }
    put(b, "\n", 1);
}

const char *out_format(const vl_result *r, int json, const char *id_json, size_t *len)
{
    return out_format_body(r, json, id_json, NULL, len);
}

const char *out_format_body(const vl_result *r, int json, const char *id_json,
                            const struct out_body *body, size_t *len)
{
    struct buf *b = &record_buf;
    b->len = 0;
    b->oom = 0;
    if (json)
        format_json(b, r, id_json, body);
    else
        format_text(b, r);
    if (b->oom)
        return NULL;
    *len = b->len;
    return b->p;
}

void out_record(FILE *f, const vl_result *r, int json)
{
    size_t len;
    const char *p = out_format(r, json, NULL, &len);
    if (p)
        fwrite(p, 1, len, f);
}
