/* decode.c: gzip/deflate bodies decoded as they stream in. */
#include <string.h>
#include <strings.h>

#include "decode.h"
#include "util.h"
#include "volley.h"

#define OUT_CHUNK 16384

enum decode_kind decode_kind_of(const char *v)
{
    if (!v)
        return DECODE_NONE;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, " \t,;");
    if (v[n] == ',')
        return DECODE_NONE; /* stacked codings: hand over as is, never guess */
    if (vl_strcaseeq_n(v, n, "gzip") || vl_strcaseeq_n(v, n, "x-gzip"))
        return DECODE_GZIP;
    if (vl_strcaseeq_n(v, n, "deflate"))
        return DECODE_DEFLATE;
    return DECODE_NONE;
}

static int start(struct decoder *d)
{
    memset(&d->z, 0, sizeof(d->z));
    /* gzip: 15 + 16; deflate: the zlib wrapper (15), or raw (-15) when the
     * server sent deflate without it, as some do (RFC 9110 §8.4.1.2). */
    int bits = d->kind == DECODE_GZIP ? 15 + 16 : (d->raw ? -15 : 15);
    if (inflateInit2(&d->z, bits) != Z_OK)
        return -1;
    d->started = 1;
    return 0;
}

int decoder_init(struct decoder *d, enum decode_kind kind)
{
    memset(d, 0, sizeof(*d));
    d->kind = kind;
    /* deflate starts once its first two bytes tell zlib-wrapped from raw */
    return kind == DECODE_GZIP ? start(d) : 0;
}

/* RFC 1950 §2.2: CM = 8, CINFO <= 7, and the 16-bit header a multiple of 31. */
static int zlib_header(const unsigned char *b)
{
    return (b[0] & 0x0f) == 8 && (b[0] >> 4) <= 7 && ((b[0] << 8) | b[1]) % 31 == 0;
}

static int inflate_some(struct decoder *d, const char *in, size_t len, decode_out_fn *out,
                        void *data, char *err, size_t errlen);

void decoder_free(struct decoder *d)
{
    if (d->started)
        inflateEnd(&d->z);
    d->started = 0;
}

static int fail(char *err, size_t errlen, struct decoder *d, const char *what)
{
    vl_fmt(err, errlen, "decode: %s %s (%s)", d->kind == DECODE_GZIP ? "gzip" : "deflate", what,
           d->z.msg ? d->z.msg : "corrupt data");
    return -VL_EDECODE;
}

int decoder_feed(struct decoder *d, const char *in, size_t len, decode_out_fn *out, void *data,
                 char *err, size_t errlen)
{
    if (d->kind == DECODE_DEFLATE && !d->started) {
        while (d->nhead < 2 && len) {
            d->head[d->nhead++] = (unsigned char)*in++;
            len--;
        }
        if (d->nhead < 2)
            return 0;
        d->raw = !zlib_header(d->head);
        if (start(d) < 0)
            return fail(err, errlen, d, "init failed");
        int rc = inflate_some(d, (const char *)d->head, 2, out, data, err, errlen);
        if (rc < 0)
            return rc;
    }
    return inflate_some(d, in, len, out, data, err, errlen);
}

static int inflate_some(struct decoder *d, const char *in, size_t len, decode_out_fn *out,
                        void *data, char *err, size_t errlen)
{
    char buf[OUT_CHUNK];
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = (uInt)len;
    /* A full output chunk may leave output inside zlib even with no input
     * left (a raw deflate stream's last match): call again until it is out. */
    int full = 0;
    while (d->z.avail_in > 0 || (full && !d->ended)) {
        if (d->ended) {
            /* gzip allows several members back to back; anything else
             * after the end of a deflate stream is ignored, as zlib's own
             * tools do. */
            if (d->kind != DECODE_GZIP)
                return 0;
            if (inflateReset(&d->z) != Z_OK)
                return fail(err, errlen, d, "reset failed");
            d->ended = 0;
        }
        d->z.next_out = (Bytef *)buf;
        d->z.avail_out = sizeof(buf);
        int rc = inflate(&d->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return fail(err, errlen, d, "data is corrupt");
        size_t produced = sizeof(buf) - d->z.avail_out;
        full = d->z.avail_out == 0;
        if (produced) {
            int r = out(data, buf, produced);
            if (r < 0)
                return r;
        }
        if (rc == Z_STREAM_END)
            d->ended = 1;
        else if (rc == Z_BUF_ERROR && produced == 0)
            break;
    }
    return 0;
}

int decoder_finish(struct decoder *d, char *err, size_t errlen)
{
    if (d->kind == DECODE_NONE || d->ended)
        return 0;
    if (d->z.total_in == 0 && d->nhead == 0)
        return 0; /* an empty body with a Content-Encoding: nothing to decode */
    vl_fmt(err, errlen, "decode: %s stream truncated", d->kind == DECODE_GZIP ? "gzip" : "deflate");
    return -VL_EDECODE;
}
