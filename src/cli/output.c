/* output.c: the records the volley command prints, JSON Lines or aligned
 * text.  Field names and meanings follow the contract in DESIGN.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
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
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so every line parses. */
void out_json_string(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    putc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else {
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    putc('"', f);
}

static void out_ms(FILE *f, const char *name, double ms, int comma)
{
    if (ms < 0)
        fprintf(f, "\"%s\":null%s", name, comma ? "," : "");
    else
        fprintf(f, "\"%s\":%.3f%s", name, ms, comma ? "," : "");
}

static void out_json(FILE *f, const vl_result *r)
{
    fprintf(f, "{\"index\":%lld,\"url\":", (long long)r->index);
    out_json_string(f, r->url);
    fprintf(f, ",\"ok\":%s,\"status\":", r->ok ? "true" : "false");
    if (r->status)
        fprintf(f, "%d", r->status);
    else
        fputs("null", f);
    fprintf(f, ",\"bytes\":%llu,\"time_ms\":%.3f,\"redirects\":%d,\"final_url\":",
            (unsigned long long)r->bytes, r->time_ms, r->redirects);
    out_json_string(f, r->final_url);
    fputs(",\"error\":", f);
    out_json_string(f, r->error);
    if (r->file) {
        fputs(",\"file\":", f);
        out_json_string(f, r->file);
    }
    fputs(",\"timings\":{", f);
    out_ms(f, "queue_ms", r->timings.queue_ms, 1);
    out_ms(f, "dns_ms", r->timings.dns_ms, 1);
    out_ms(f, "connect_ms", r->timings.connect_ms, 1);
    out_ms(f, "tls_ms", r->timings.tls_ms, 1);
    out_ms(f, "send_ms", r->timings.send_ms, 1);
    out_ms(f, "ttfb_ms", r->timings.ttfb_ms, 1);
    out_ms(f, "total_ms", r->timings.total_ms, 0);
    fprintf(f, "},\"reused\":%s,\"attempts\":%d}\n", r->reused ? "true" : "false", r->attempts);
}

static void out_text(FILE *f, const vl_result *r)
{
    char status[8];
    if (r->status)
        snprintf(status, sizeof(status), "%d", r->status);
    else
        snprintf(status, sizeof(status), "---");
    fprintf(f, "%-4s %-3s %10llu B %9.1f ms  %s", r->ok ? "ok" : "FAIL", status,
            (unsigned long long)r->bytes, r->time_ms, r->url);
    if (r->error)
        fprintf(f, "  (%s)", r->error);
    if (r->file)
        fprintf(f, "  -> %s", r->file);
    putc('\n', f);
}

void out_record(FILE *f, const vl_result *r, int json)
{
    if (json)
        out_json(f, r);
    else
        out_text(f, r);
}
