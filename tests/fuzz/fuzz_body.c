/* fuzz_body.c: --body's charset module (src/cli/body.c: the Content-Type
 * parameters, the BOM, the WHATWG <meta> prescan, uchardet, iconv) and the
 * record writer's body fields (out_format_body).
 *
 * Input: a Content-Type value up to the first '\n', one byte choosing
 * --body-max (0: the whole body, else 1-255 bytes), then the body.
 * Properties: body_decode returns 0; text comes out as valid UTF-8 with a
 * known charset and source, at most 3 bytes per input byte (+3 for a last
 * U+FFFD); base64 is exactly 4 * ceil(n / 3) characters; the record line
 * ends in "}\n" and holds no raw control character. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/body.c" /* its static helpers too; one translation unit */

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || (size_t)(nl - data) + 2 > size)
        return 0;
    size_t ctlen = (size_t)(nl - data);
    char *ct = malloc(ctlen + 1);
    if (!ct)
        return 0;
    memcpy(ct, data, ctlen);
    ct[ctlen] = '\0';
    size_t max = nl[1] ? nl[1] : (size_t)-1;
    const char *body = (const char *)nl + 2;
    size_t blen = size - ctlen - 2;

    (void)charset_prescan(body, blen);
    struct body_capture c = {0};
    body_capture_begin(&c, max);
    /* fed in pieces of 7, as a body arrives */
    for (size_t off = 0; off < blen; off += 7)
        if (body_capture_add(&c, body + off, blen - off < 7 ? blen - off : 7) != 0)
            abort();
    struct out_body ob;
    if (body_decode(&c, strlen(ct) == ctlen ? ct : NULL, &ob) != 0)
        abort();
    if (ob.text) {
        if (!ob.charset || !ob.charset_source || !charset_for_label(ob.charset, strlen(ob.charset)))
            abort();
        if (!valid_utf8((const unsigned char *)ob.data, ob.len) && strcmp(ob.charset, "utf-8"))
            abort(); /* iconv's output; UTF-8 goes out as is, the writer fixes it */
        if (ob.len > 3 * c.len + 3)
            abort();
    } else if (ob.len != 4 * ((c.len + 2) / 3)) {
        abort();
    }
    vl_result r = {.url = "http://x/", .ok = 1, .status = 200};
    size_t len;
    const char *line = out_format_body(&r, 1, NULL, &ob, &len);
    if (!line || len < 2 || memcmp(line + len - 2, "}\n", 2) != 0)
        abort();
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)line[i] < 0x20)
            abort();
    if (!valid_utf8((const unsigned char *)line, len))
        abort();
    body_capture_free(&c);
    free(ct);
    return 0;
}
