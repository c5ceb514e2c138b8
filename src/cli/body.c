/* body.c: --body: which charset a captured body is in, and the body as
 * UTF-8.  The rules (README "The body in the record"):
 *   text types (text/ anything, JSON, XML, JavaScript, HTML) are decoded from
 *   1. the Content-Type charset parameter ("header"),
 *   2. else a byte order mark ("bom"),
 *   3. else, for HTML, the WHATWG prescan of the first 1024 bytes for
 *      <meta charset> / http-equiv ("meta"),
 *   4. else uchardet's guess when it has one ("detected"; not for JSON,
 *      which RFC 8259 §8.1 says is UTF-8),
 *   5. else UTF-8 ("default");
 *   every other type is handed over as bytes (base64 in the record).
 * Labels are mapped to encodings as the WHATWG Encoding Standard does (as
 * browsers do: "latin1" and "ascii" mean windows-1252); conversion is glibc
 * iconv, with U+FFFD for every byte iconv cannot read.  The header wins
 * over a BOM, as issue 13 asks (a browser lets the BOM win); a BOM of the
 * chosen encoding is dropped either way.  Knows nothing of JSON or records. */
#include <errno.h>
#include <iconv.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uchardet.h>

#include "body.h"

/* ------------------------------------------------------------ capturing */

void body_capture_begin(struct body_capture *c, size_t max)
{
    c->len = 0;
    c->total = 0;
    c->max = max;
}

int body_capture_add(void *data, const char *chunk, size_t len)
{
    struct body_capture *c = data;
    c->total += len;
    size_t room = c->max - c->len;
    size_t n = len < room ? len : room;
    if (n == 0)
        return 0;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        if (cap > c->max)
            cap = c->max;
        char *p = realloc(c->buf, cap);
        if (!p)
            return -ENOMEM;
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, chunk, n);
    c->len += n;
    return 0;
}

int body_capture_final(struct body_capture *c, uint64_t final_bytes)
{
    if (c->total <= final_bytes)
        return 0;
    uint64_t skip = c->total - final_bytes; /* the earlier attempts' bytes */
    c->total = final_bytes;
    if (skip >= c->len) {
        c->len = 0;
        return final_bytes ? -1 : 0;
    }
    memmove(c->buf, c->buf + skip, c->len - (size_t)skip);
    c->len -= (size_t)skip;
    return 0;
}

void body_capture_end(struct body_capture *c)
{
    if (c->cap > BODY_KEEP_BYTES) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    c->len = 0;
    c->total = 0;
}

void body_capture_free(struct body_capture *c)
{
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

/* -------------------------------------------------------------- labels */

/* The WHATWG Encoding Standard's encodings and their labels (§4.2), with
 * the glibc iconv name that decodes each as the standard says: its "gbk" is
 * the gb18030 decoder, "euc-kr" is windows-949, "shift_jis" is windows-31j,
 * "big5" is Big5-HKSCS.  Labels are space-separated, lower case. */
struct encoding {
    const char *name;
    const char *iconv;
    const char *labels;
};

static const struct encoding encodings[] = {
    {"utf-8", "UTF-8",
     "utf-8 utf8 unicode-1-1-utf-8 unicode11utf8 unicode20utf8 x-unicode20utf8"},
    {"windows-1252", "CP1252",
     "windows-1252 ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 "
     "iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii x-cp1252"},
    {"utf-16le", "UTF-16LE",
     "utf-16le csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16"},
    {"utf-16be", "UTF-16BE", "utf-16be unicodefffe"},
    {"ibm866", "IBM866", "ibm866 866 cp866 csibm866"},
    {"iso-8859-2", "ISO-8859-2",
     "iso-8859-2 csisolatin2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2"},
    {"iso-8859-3", "ISO-8859-3",
     "iso-8859-3 csisolatin3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3"},
    {"iso-8859-4", "ISO-8859-4",
     "iso-8859-4 csisolatin4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4"},
    {"iso-8859-5", "ISO-8859-5",
     "iso-8859-5 csisolatincyrillic cyrillic iso-ir-144 iso8859-5 iso88595 iso_8859-5 "
     "iso_8859-5:1988"},
    {"iso-8859-6", "ISO-8859-6",
     "iso-8859-6 arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6-e "
     "iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987"},
    {"iso-8859-7", "ISO-8859-7",
     "iso-8859-7 csisolatingreek ecma-118 elot_928 greek greek8 iso-ir-126 iso8859-7 iso88597 "
     "iso_8859-7 iso_8859-7:1987 sun_eu_greek"},
    {"iso-8859-8", "ISO-8859-8",
     "iso-8859-8 csiso88598e csisolatinhebrew hebrew iso-8859-8-e iso-ir-138 iso8859-8 iso88598 "
     "iso_8859-8 iso_8859-8:1988 visual"},
    {"iso-8859-8-i", "ISO-8859-8", "iso-8859-8-i csiso88598i logical"},
    {"iso-8859-10", "ISO-8859-10",
     "iso-8859-10 csisolatin6 iso-ir-157 iso8859-10 iso885910 l6 latin6"},
    {"iso-8859-13", "ISO-8859-13", "iso-8859-13 iso8859-13 iso885913"},
    {"iso-8859-14", "ISO-8859-14", "iso-8859-14 iso8859-14 iso885914"},
    {"iso-8859-15", "ISO-8859-15",
     "iso-8859-15 csisolatin9 iso8859-15 iso885915 iso_8859-15 l9"},
    {"iso-8859-16", "ISO-8859-16", "iso-8859-16"},
    {"koi8-r", "KOI8-R", "koi8-r cskoi8r koi koi8 koi8_r"},
    {"koi8-u", "KOI8-U", "koi8-u koi8-ru"},
    {"macintosh", "MACINTOSH", "macintosh csmacintosh mac x-mac-roman"},
    {"windows-874", "CP874", "windows-874 dos-874 iso-8859-11 iso8859-11 iso885911 tis-620"},
    {"windows-1250", "CP1250", "windows-1250 cp1250 x-cp1250"},
    {"windows-1251", "CP1251", "windows-1251 cp1251 x-cp1251"},
    {"windows-1253", "CP1253", "windows-1253 cp1253 x-cp1253"},
    {"windows-1254", "CP1254",
     "windows-1254 cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 "
     "iso_8859-9:1989 l5 latin5 x-cp1254"},
    {"windows-1255", "CP1255", "windows-1255 cp1255 x-cp1255"},
    {"windows-1256", "CP1256", "windows-1256 cp1256 x-cp1256"},
    {"windows-1257", "CP1257", "windows-1257 cp1257 x-cp1257"},
    {"windows-1258", "CP1258", "windows-1258 cp1258 x-cp1258"},
    {"x-mac-cyrillic", "MAC-CYRILLIC", "x-mac-cyrillic x-mac-ukrainian"},
    {"gbk", "GB18030",
     "gbk chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 iso-ir-58 x-gbk"},
    {"gb18030", "GB18030", "gb18030"},
    {"big5", "BIG5-HKSCS", "big5 big5-hkscs cn-big5 csbig5 x-x-big5"},
    {"euc-jp", "EUC-JP", "euc-jp cseucpkdfmtjapanese x-euc-jp"},
    {"iso-2022-jp", "ISO-2022-JP", "iso-2022-jp csiso2022jp"},
    {"shift_jis", "CP932",
     "shift_jis csshiftjis ms932 ms_kanji shift-jis sjis windows-31j x-sjis"},
    {"euc-kr", "CP949",
     "euc-kr cseuckr csksc56011987 iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 "
     "ksc_5601 windows-949"},
};
#define NENCODINGS (sizeof(encodings) / sizeof(encodings[0]))

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

static const struct encoding *encoding_for_label(const char *label, size_t len)
{
    while (len && is_ws((unsigned char)*label))
        label++, len--;
    while (len && is_ws((unsigned char)label[len - 1]))
        len--;
    if (len == 0 || len > 32)
        return NULL;
    for (size_t i = 0; i < NENCODINGS; i++) {
        for (const char *l = encodings[i].labels; *l;) {
            size_t n = strcspn(l, " ");
            if (n == len && strncasecmp(l, label, len) == 0)
                return &encodings[i];
            l += n;
            while (*l == ' ')
                l++;
        }
    }
    return NULL;
}

const char *charset_for_label(const char *label, size_t len)
{
    const struct encoding *e = encoding_for_label(label, len);
    return e ? e->name : NULL;
}

static const struct encoding *encoding_named(const char *name)
{
    for (size_t i = 0; i < NENCODINGS; i++)
        if (strcmp(encodings[i].name, name) == 0)
            return &encodings[i];
    return NULL;
}

/* ------------------------------------------------------- Content-Type */

static int ci_prefix(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && strncasecmp(s, p, pl) == 0;
}

static int ci_suffix(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && strncasecmp(s + n - pl, p, pl) == 0;
}

static int ci_equal(const char *s, size_t n, const char *p)
{
    return strlen(p) == n && strncasecmp(s, p, n) == 0;
}

/* The charset parameter of a Content-Type's parameters (RFC 9110 §8.3.1:
 * ; name=value, value a token or a quoted-string). */
static void find_charset_param(const char *p, const char **cs, size_t *cslen)
{
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        size_t nlen = (size_t)(p - name);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *v = p;
        size_t vlen;
        if (*p == '"') {
            v = ++p;
            while (*p && *p != '"')
                p += (*p == '\\' && p[1]) ? 2 : 1;
            vlen = (size_t)(p - v);
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ';')
                p++;
            vlen = (size_t)(p - v);
        }
        if (ci_equal(name, nlen, "charset")) {
            *cs = v;
            *cslen = vlen;
            return;
        }
    }
}

int body_kind(const char *ct, const char **charset, size_t *charset_len)
{
    const char *cs = NULL;
    size_t cslen = 0;
    if (!ct)
        goto out;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    find_charset_param(ct + n, &cs, &cslen);
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
out:
    if (charset) {
        *charset = cs;
        *charset_len = cslen;
    }
    if (!ct)
        return BODY_KIND_BINARY;
    if (ci_equal(ct, n, "text/html"))
        return BODY_KIND_HTML;
    if (ci_equal(ct, n, "application/json") || ci_suffix(ct, n, "+json"))
        return BODY_KIND_JSON;
    if (ci_prefix(ct, n, "text/") || ci_equal(ct, n, "application/xml") ||
        ci_suffix(ct, n, "+xml") || ci_equal(ct, n, "application/javascript") ||
        ci_equal(ct, n, "application/x-javascript") || ci_equal(ct, n, "application/ecmascript"))
        return BODY_KIND_TEXT;
    return BODY_KIND_BINARY;
}

/* ---------------------------------------------------------------- BOM */

const char *charset_bom(const char *buf, size_t len, size_t *bom_len)
{
    const unsigned char *b = (const unsigned char *)buf;
    *bom_len = 0;
    if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
        return *bom_len = 3, "utf-8";
    if (len >= 2 && b[0] == 0xFE && b[1] == 0xFF)
        return *bom_len = 2, "utf-16be";
    if (len >= 2 && b[0] == 0xFF && b[1] == 0xFE)
        return *bom_len = 2, "utf-16le";
    return NULL;
}

/* --------------------------------------------------- the <meta> prescan
 * WHATWG HTML §13.2.3.2 "prescan a byte stream to determine its encoding",
 * step by step; the spec's "abort" at the end of the bytes is NULL here. */

#define ATTR_MAX BODY_PRESCAN_BYTES

struct scan {
    const unsigned char *b;
    size_t len, pos;
};

struct attr {
    char name[ATTR_MAX + 1], value[ATTR_MAX + 1];
    size_t nlen, vlen;
};

static int ws_or_slash(unsigned char c) { return is_ws(c) || c == '/'; }
static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int is_alpha(unsigned char c) { return (lower(c) >= 'a' && lower(c) <= 'z'); }

static void attr_push(char *s, size_t *n, unsigned char c)
{
    if (*n < ATTR_MAX)
        s[(*n)++] = (char)lower(c);
    s[*n] = '\0';
}

/* "get an attribute": 1 with *a, 0 when there is none (at '>'), -1 at the end. */
static int get_attr(struct scan *s, struct attr *a)
{
    a->nlen = a->vlen = 0;
    a->name[0] = a->value[0] = '\0';
    while (s->pos < s->len && ws_or_slash(s->b[s->pos]))
        s->pos++;
    if (s->pos >= s->len)
        return -1;
    if (s->b[s->pos] == '>')
        return 0;
    for (;; s->pos++) { /* attribute name */
        if (s->pos >= s->len)
            return -1;
        unsigned char c = s->b[s->pos];
        if (c == '=' && a->nlen) {
            s->pos++;
            goto value;
        }
        if (is_ws(c))
            break;
        if (c == '/' || c == '>')
            return 1;
        attr_push(a->name, &a->nlen, c);
    }
    while (s->pos < s->len && is_ws(s->b[s->pos])) /* spaces */
        s->pos++;
    if (s->pos >= s->len)
        return -1;
    if (s->b[s->pos] != '=')
        return 1;
    s->pos++;
value:
    while (s->pos < s->len && is_ws(s->b[s->pos]))
        s->pos++;
    if (s->pos >= s->len)
        return -1;
    unsigned char q = s->b[s->pos];
    if (q == '"' || q == '\'') {
        for (s->pos++;; s->pos++) {
            if (s->pos >= s->len)
                return -1;
            if (s->b[s->pos] == q) {
                s->pos++;
                return 1;
            }
            attr_push(a->value, &a->vlen, s->b[s->pos]);
        }
    }
    if (q == '>')
        return 1;
    for (;; s->pos++) {
        if (s->pos >= s->len)
            return -1;
        unsigned char c = s->b[s->pos];
        if (is_ws(c) || c == '>')
            return 1;
        attr_push(a->value, &a->vlen, c);
    }
}

/* "extract a character encoding from a meta element" (content="..."). */
static const struct encoding *from_content(const char *v, size_t n)
{
    size_t i = 0;
    for (;;) {
        const char *hit = NULL;
        for (; i + 7 <= n; i++)
            if (memcmp(v + i, "charset", 7) == 0) {
                hit = v + i;
                break;
            }
        if (!hit)
            return NULL;
        i += 7;
        while (i < n && is_ws((unsigned char)v[i]))
            i++;
        if (i < n && v[i] == '=')
            break;
    }
    i++;
    while (i < n && is_ws((unsigned char)v[i]))
        i++;
    if (i >= n)
        return NULL;
    if (v[i] == '"' || v[i] == '\'') {
        const char *end = memchr(v + i + 1, v[i], n - i - 1);
        return end ? encoding_for_label(v + i + 1, (size_t)(end - (v + i + 1))) : NULL;
    }
    size_t j = i;
    while (j < n && !is_ws((unsigned char)v[j]) && v[j] != ';')
        j++;
    return encoding_for_label(v + i, j - i);
}

/* After "<meta": its attributes decide.  1 with *out, 0 to go on, -1 at the end. */
static int scan_meta(struct scan *s, const struct encoding **out)
{
    int got_pragma = 0, need_pragma = -1, seen = 0; /* seen: bit per attribute below */
    const struct encoding *cs = NULL;
    struct attr *a = malloc(sizeof(*a));
    int rc;
    if (!a)
        return -1;
    while ((rc = get_attr(s, a)) == 1) {
        int bit = strcmp(a->name, "http-equiv") == 0 ? 1
                  : strcmp(a->name, "content") == 0  ? 2
                  : strcmp(a->name, "charset") == 0  ? 4
                                                     : 0;
        if (!bit || (seen & bit))
            continue; /* only the first of each name counts */
        seen |= bit;
        if (bit == 1 && strcmp(a->value, "content-type") == 0)
            got_pragma = 1;
        else if (bit == 2 && !cs && (cs = from_content(a->value, a->vlen)))
            need_pragma = 1;
        else if (bit == 4) {
            cs = encoding_for_label(a->value, a->vlen);
            need_pragma = 0;
        }
    }
    free(a);
    if (rc < 0)
        return -1;
    if (need_pragma < 0 || (need_pragma == 1 && !got_pragma) || !cs)
        return 0;
    if (strncmp(cs->name, "utf-16", 6) == 0)
        cs = encoding_named("utf-8"); /* §13.2.3.2: a page that can say it is not UTF-16 */
    *out = cs;
    return 1;
}

static int at_n(const struct scan *s, const char *lit, size_t n)
{
    if (s->pos + n > s->len)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s->b[s->pos + i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

#define at(s, lit) at_n(s, lit, sizeof(lit) - 1)

static const struct encoding *prescan(const char *buf, size_t len)
{
    struct scan s = {(const unsigned char *)buf, len < BODY_PRESCAN_BYTES ? len : BODY_PRESCAN_BYTES,
                     0};
    struct attr *a = NULL;
    const struct encoding *found = NULL;
    for (; s.pos < s.len; s.pos++) {
        /* every step below starts at a '<' (a tenth of a --body run's CPU
         * went to looking for one byte by byte) */
        const unsigned char *lt = memchr(s.b + s.pos, '<', s.len - s.pos);
        if (!lt)
            break;
        s.pos = (size_t)(lt - s.b);
        if (at(&s, "<!--")) {
            size_t i = s.pos + 2; /* "<!-->" ends at once */
            while (i + 3 <= s.len && memcmp(s.b + i, "-->", 3) != 0)
                i++;
            if (i + 3 > s.len)
                break;
            s.pos = i + 2;
        } else if (at(&s, "<meta") && s.pos + 5 < s.len && ws_or_slash(s.b[s.pos + 5])) {
            s.pos += 5;
            int rc = scan_meta(&s, &found);
            if (rc != 0)
                break;
        } else if (s.pos + 1 < s.len && s.b[s.pos] == '<' &&
                   (is_alpha(s.b[s.pos + 1]) ||
                    (s.b[s.pos + 1] == '/' && s.pos + 2 < s.len && is_alpha(s.b[s.pos + 2])))) {
            while (s.pos < s.len && !is_ws(s.b[s.pos]) && s.b[s.pos] != '>')
                s.pos++;
            if (!a && !(a = malloc(sizeof(*a))))
                break;
            int rc;
            while ((rc = get_attr(&s, a)) == 1)
                ;
            if (rc < 0)
                break;
        } else if (at(&s, "<!") || at(&s, "</") || at(&s, "<?")) {
            const unsigned char *gt = memchr(s.b + s.pos + 2, '>', s.len - s.pos - 2);
            if (!gt)
                break;
            s.pos = (size_t)(gt - s.b);
        }
    }
    free(a);
    return found;
}

const char *charset_prescan(const char *buf, size_t len)
{
    const struct encoding *e = prescan(buf, len);
    return e ? e->name : NULL;
}

/* ------------------------------------------------------------ detection */

static size_t utf8_cut(const char *s, size_t n);

static __thread uchardet_t detector;

/* Is buf (up to the detection window) UTF-8?  1: yes, with a byte over
 * 0x7F; 0: plain ASCII; -1: not UTF-8.  A sequence cut by the window's or
 * the capture's end counts as UTF-8. */
static int utf8_kind(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t n = len < BODY_DETECT_BYTES ? len : BODY_DETECT_BYTES;
    int high = 0;
    for (size_t i = 0; i < n;) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull))) {
            i += 8; /* eight ASCII bytes at once */
            continue;
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_len(p + i, n - i);
        if (k == 0)
            return (n - i < 4 && utf8_cut(buf + i, n - i) == 0) ? high : -1;
        high = 1;
        i += (size_t)k;
    }
    return high;
}

/* uchardet's guess, when it has one it will name ("" means none), as a
 * WHATWG encoding; its "ASCII" is no guess beyond the UTF-8 default.  Text
 * that is valid UTF-8 is UTF-8 without asking (uchardet says so too, at a
 * tenth of a --body run's CPU), and plain ASCII is left to the default. */
static const struct encoding *detect(const char *buf, size_t len)
{
    int u = utf8_kind(buf, len);
    if (u >= 0)
        return u ? encoding_named("utf-8") : NULL;
    if (!detector && !(detector = uchardet_new()))
        return NULL;
    uchardet_reset(detector);
    if (uchardet_handle_data(detector, buf, len < BODY_DETECT_BYTES ? len : BODY_DETECT_BYTES) != 0)
        return NULL;
    uchardet_data_end(detector);
    const char *name = uchardet_get_charset(detector);
    if (!name || !*name || strcasecmp(name, "ASCII") == 0)
        return NULL;
    /* its names that are no WHATWG label */
    if (strcasecmp(name, "MAC-CYRILLIC") == 0)
        return encoding_named("x-mac-cyrillic");
    if (strcasecmp(name, "UHC") == 0) /* Unified Hangul Code: windows-949 */
        return encoding_named("euc-kr");
    return encoding_for_label(name, strlen(name));
}

/* ----------------------------------------------------------- converting */

struct outbuf {
    char *p;
    size_t len, cap;
};
static __thread struct outbuf utf8_out;

#define ICONV_CACHE 8
static __thread struct {
    const struct encoding *e;
    iconv_t cd;
} iconv_cache[ICONV_CACHE];

static iconv_t cd_for(const struct encoding *e)
{
    int free_slot = -1;
    for (int i = 0; i < ICONV_CACHE; i++) {
        if (iconv_cache[i].e == e)
            return iconv_cache[i].cd;
        if (!iconv_cache[i].e && free_slot < 0)
            free_slot = i;
    }
    iconv_t cd = iconv_open("UTF-8", e->iconv);
    if (cd == (iconv_t)-1)
        return cd;
    if (free_slot < 0) { /* full: the last one goes */
        free_slot = ICONV_CACHE - 1;
        iconv_close(iconv_cache[free_slot].cd);
    }
    iconv_cache[free_slot].e = e;
    iconv_cache[free_slot].cd = cd;
    return cd;
}

static int out_reserve(struct outbuf *o, size_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p)
        return -ENOMEM;
    o->p = p;
    o->cap = cap;
    return 0;
}

/* Where a truncated UTF-8 text may end: before a last sequence that the cut
 * left incomplete. */
static size_t utf8_cut(const char *s, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, back++;
    if (i == 0)
        return n;
    unsigned char c = (unsigned char)s[i - 1];
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return (c >= 0xC0 && back + 1 < need) ? i - 1 : n;
}

/* in -> UTF-8 in utf8_out.  Unreadable bytes become U+FFFD one by one; an
 * incomplete last character is dropped when the body was cut there (the
 * cut falls on a character boundary), else it is one more U+FFFD. */
static int convert(const struct encoding *e, const char *in, size_t n, int truncated)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    struct outbuf *o = &utf8_out;
    o->len = 0;
    iconv_t cd = cd_for(e);
    if (cd == (iconv_t)-1)
        return -errno;
    iconv(cd, NULL, NULL, NULL, NULL);
    char *ip = (char *)in;
    size_t left = n;
    while (left > 0) {
        if (out_reserve(o, left * 3 + 16) < 0)
            return -ENOMEM;
        char *op = o->p + o->len;
        size_t room = o->cap - o->len;
        size_t rc = iconv(cd, &ip, &left, &op, &room);
        o->len = (size_t)(op - o->p);
        if (rc != (size_t)-1)
            break;
        if (errno == E2BIG)
            continue;
        if (errno == EINVAL && truncated)
            break;
        memcpy(o->p + o->len, fffd, 3); /* EILSEQ, or EINVAL at the true end */
        o->len += 3;
        if (errno == EINVAL)
            break;
        ip++, left--;
    }
    /* flush a stateful decoder's last shift (ISO-2022-JP) */
    if (out_reserve(o, 16) < 0)
        return -ENOMEM;
    char *op = o->p + o->len;
    size_t room = o->cap - o->len;
    iconv(cd, NULL, NULL, &op, &room);
    o->len = (size_t)(op - o->p);
    return 0;
}

/* --------------------------------------------------------------- decode */

/* Bytes as base64, with glibc's encoder (libresolv's b64_ntop): mbedTLS's
 * constant-time one cost 10 us per KiB, a fifth of a --body run's CPU. */
static int to_base64(const struct body_capture *c, struct out_body *out)
{
    struct outbuf *o = &utf8_out;
    size_t need = 4 * ((c->len + 2) / 3) + 1;
    o->len = 0;
    if (out_reserve(o, need) < 0)
        return -ENOMEM;
    int n = b64_ntop((const unsigned char *)(c->buf ? c->buf : ""), c->len, o->p, o->cap);
    if (n < 0)
        return -ENOMEM;
    out->data = o->p;
    out->len = (size_t)n;
    return 0;
}

int body_decode(const struct body_capture *c, const char *content_type, struct out_body *out)
{
    const char *label;
    size_t label_len;
    int kind = body_kind(content_type, &label, &label_len);
    int truncated = c->total > c->len;
    memset(out, 0, sizeof(*out));
    out->on = 1;
    out->truncated = truncated;
    if (kind == BODY_KIND_BINARY)
        return to_base64(c, out);
    const char *buf = c->buf ? c->buf : "";
    size_t len = c->len, bom_len = 0;
    const char *bom = charset_bom(buf, len, &bom_len);
    const struct encoding *e = label ? encoding_for_label(label, label_len) : NULL;
    const char *source = "header";
    if (!e && bom) {
        e = encoding_named(bom);
        source = "bom";
    }
    if (!e && kind == BODY_KIND_HTML && (e = prescan(buf, len)))
        source = "meta";
    if (!e && kind != BODY_KIND_JSON && (e = detect(buf, len)))
        source = "detected";
    if (!e) {
        e = encoding_named("utf-8");
        source = "default";
    }
    if (bom && strcmp(bom, e->name) == 0) {
        buf += bom_len; /* the encoding's own BOM is no text */
        len -= bom_len;
    }
    out->text = 1;
    out->charset = e->name;
    out->charset_source = source;
    if (strcmp(e->name, "utf-8") == 0) {
        /* as it is: the record's JSON writer turns bytes that are not
         * UTF-8 into U+FFFD, the same as iconv's path here */
        out->data = buf;
        out->len = truncated ? utf8_cut(buf, len) : len;
        return 0;
    }
    int rc = convert(e, buf, len, truncated);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    out->data = utf8_out.p ? utf8_out.p : "";
    out->len = utf8_out.len;
    return 0;
}

void body_thread_end(void)
{
    for (int i = 0; i < ICONV_CACHE; i++)
        if (iconv_cache[i].e) {
            iconv_close(iconv_cache[i].cd);
            iconv_cache[i].e = NULL;
        }
    if (detector) {
        uchardet_delete(detector);
        detector = NULL;
    }
    free(utf8_out.p);
    memset(&utf8_out, 0, sizeof(utf8_out));
}
