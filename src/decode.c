/* decode.c: stacked content/transfer decoding as bodies stream in. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zstd.h>

#include "decode.h"
#include "util.h"
#include "volley.h"

#define OUT_CHUNK 16384
/* RFC 9659 §3: zstd in HTTP needs windows up to 8 MiB; a larger one is an
 * error rather than a 128 MiB allocation per response. */
#define ZSTD_WINDOW_LOG_MAX 23

static const char *const kind_names[] = {"gzip", "deflate", "br", "zstd"};

static int kind_of(const char *t, size_t n, enum decode_kind *k)
{
    if (vl_strcaseeq_n(t, n, "gzip") || vl_strcaseeq_n(t, n, "x-gzip"))
        *k = DECODE_GZIP;
    else if (vl_strcaseeq_n(t, n, "deflate"))
        *k = DECODE_DEFLATE;
    else if (vl_strcaseeq_n(t, n, "br"))
        *k = DECODE_BR;
    else if (vl_strcaseeq_n(t, n, "zstd"))
        *k = DECODE_ZSTD;
    else
        return -1;
    return 0;
}

static int fail(char *err, size_t errlen, const struct decode_layer *l, const char *what,
                const char *detail)
{
    vl_fmt(err, errlen, "decode: %s %s%s%s%s", kind_names[l->kind], what, detail ? " (" : "",
           detail ? detail : "", detail ? ")" : "");
    return -VL_EDECODE;
}

static int zlib_start(struct decode_layer *l)
{
    memset(&l->z, 0, sizeof(l->z));
    /* gzip: 15 + 16; deflate: the zlib wrapper (15), or raw (-15) when the
     * server sent deflate without it, as some do (RFC 9110 §8.4.1.2). */
    int bits = l->kind == DECODE_GZIP ? 15 + 16 : (l->raw ? -15 : 15);
    if (inflateInit2(&l->z, bits) != Z_OK)
        return -1;
    l->started = 1;
    return 0;
}

static int layer_start(struct decode_layer *l)
{
    switch (l->kind) {
    case DECODE_GZIP:
        return zlib_start(l);
    case DECODE_DEFLATE:
        return 0; /* starts once its first two bytes tell zlib-wrapped from raw */
    case DECODE_BR:
        l->lib = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        break;
    case DECODE_ZSTD:
        l->lib = ZSTD_createDStream();
        if (l->lib && ZSTD_isError(ZSTD_DCtx_setParameter(l->lib, ZSTD_d_windowLogMax,
                                                          ZSTD_WINDOW_LOG_MAX))) {
            ZSTD_freeDStream(l->lib);
            l->lib = NULL;
        }
        break;
    }
    if (!l->lib)
        return -1;
    l->started = 1;
    return 0;
}

static void layer_free(struct decode_layer *l)
{
    if (!l->started)
        return;
    if (l->kind == DECODE_GZIP || l->kind == DECODE_DEFLATE)
        inflateEnd(&l->z);
    else if (l->kind == DECODE_BR)
        BrotliDecoderDestroyInstance(l->lib);
    else
        ZSTD_freeDStream(l->lib);
    l->lib = NULL;
    l->started = 0;
}

void decoder_free(struct decoder *d)
{
    for (int i = 0; i < d->nlayers; i++)
        layer_free(&d->layer[i]);
    free(d->layer);
    d->layer = NULL;
    d->nlayers = 0;
}

int decoder_active(const struct decoder *d) { return d->nlayers > 0; }

int decoder_init(struct decoder *d, const char *codings, char *err, size_t errlen)
{
    enum decode_kind kinds[DECODE_MAX_LAYERS];
    int n = 0;
    memset(d, 0, sizeof(*d));
    for (const char *s = codings ? codings : ""; *s;) {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *t = s;
        size_t tl = strcspn(s, ", \t;");
        s += strcspn(s, ",");
        if (tl == 0 || vl_strcaseeq_n(t, tl, "identity"))
            continue;
        if (n == DECODE_MAX_LAYERS) {
            vl_fmt(err, errlen, "decode: more than %d codings in '%.100s'", DECODE_MAX_LAYERS,
                   codings);
            return -VL_EDECODE;
        }
        if (kind_of(t, tl, &kinds[n]) < 0) {
            vl_fmt(err, errlen, "decode: unsupported content coding '%.*s'",
                   (int)(tl > 40 ? 40 : tl), t);
            return -VL_EDECODE;
        }
        n++;
    }
    if (n && !(d->layer = calloc((size_t)n, sizeof(*d->layer)))) {
        vl_fmt(err, errlen, "decode: out of memory");
        return -VL_EDECODE;
    }
    /* the last coding applied is the first undone */
    for (int i = 0; i < n; i++) {
        struct decode_layer *l = &d->layer[i];
        l->kind = kinds[n - 1 - i];
        d->nlayers = i + 1;
        if (layer_start(l) < 0) {
            fail(err, errlen, l, "decoder cannot start", "out of memory");
            decoder_free(d);
            return -VL_EDECODE;
        }
    }
    return 0;
}

/* RFC 1950 §2.2: CM = 8, CINFO <= 7, and the 16-bit header a multiple of 31. */
static int zlib_header(const unsigned char *b)
{
    return (b[0] & 0x0f) == 8 && (b[0] >> 4) <= 7 && ((b[0] << 8) | b[1]) % 31 == 0;
}

static int feed_layer(struct decoder *d, int i, const char *in, size_t len, decode_out_fn *out,
                      void *data, char *err, size_t errlen);

/* Output of layer i goes to layer i + 1, or to the sink after the last. */
static int emit(struct decoder *d, int i, const char *p, size_t n, decode_out_fn *out,
                void *data, char *err, size_t errlen)
{
    if (i + 1 < d->nlayers)
        return feed_layer(d, i + 1, p, n, out, data, err, errlen);
    return out(data, p, n);
}

static int inflate_some(struct decoder *d, int i, const char *in, size_t len,
                        decode_out_fn *out, void *data, char *err, size_t errlen)
{
    struct decode_layer *l = &d->layer[i];
    char buf[OUT_CHUNK];
    l->z.next_in = (Bytef *)in;
    l->z.avail_in = (uInt)len;
    /* A full output chunk may leave output inside zlib even with no input
     * left (a raw deflate stream's last match): call again until it is out. */
    int full = 0;
    while (l->z.avail_in > 0 || (full && !l->ended)) {
        if (l->ended) {
            /* gzip allows several members back to back; anything else
             * after the end of a deflate stream is ignored, as zlib's own
             * tools do. */
            if (l->kind != DECODE_GZIP)
                return 0;
            if (inflateReset(&l->z) != Z_OK)
                return fail(err, errlen, l, "reset failed", NULL);
            l->ended = 0;
        }
        l->z.next_out = (Bytef *)buf;
        l->z.avail_out = sizeof(buf);
        int rc = inflate(&l->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return fail(err, errlen, l, "data is corrupt", l->z.msg ? l->z.msg : "corrupt data");
        size_t produced = sizeof(buf) - l->z.avail_out;
        full = l->z.avail_out == 0;
        if (produced) {
            int r = emit(d, i, buf, produced, out, data, err, errlen);
            if (r < 0)
                return r;
        }
        if (rc == Z_STREAM_END)
            l->ended = 1;
        else if (rc == Z_BUF_ERROR && produced == 0)
            break;
    }
    return 0;
}

static int feed_zlib(struct decoder *d, int i, const char *in, size_t len, decode_out_fn *out,
                     void *data, char *err, size_t errlen)
{
    struct decode_layer *l = &d->layer[i];
    if (l->kind == DECODE_DEFLATE && !l->started) {
        while (l->nhead < 2 && len) {
            l->head[l->nhead++] = (unsigned char)*in++;
            len--;
        }
        if (l->nhead < 2)
            return 0;
        l->raw = !zlib_header(l->head);
        if (zlib_start(l) < 0)
            return fail(err, errlen, l, "init failed", NULL);
        int rc = inflate_some(d, i, (const char *)l->head, 2, out, data, err, errlen);
        if (rc < 0)
            return rc;
    }
    return inflate_some(d, i, in, len, out, data, err, errlen);
}

static int feed_br(struct decoder *d, int i, const char *in, size_t len, decode_out_fn *out,
                   void *data, char *err, size_t errlen)
{
    struct decode_layer *l = &d->layer[i];
    const uint8_t *next_in = (const uint8_t *)in;
    size_t avail_in = len;
    char buf[OUT_CHUNK];
    for (;;) {
        if (l->ended)
            return avail_in ? fail(err, errlen, l, "data after the end of the stream", NULL) : 0;
        uint8_t *next_out = (uint8_t *)buf;
        size_t avail_out = sizeof(buf);
        BrotliDecoderResult rc =
            BrotliDecoderDecompressStream(l->lib, &avail_in, &next_in, &avail_out, &next_out, NULL);
        if (rc == BROTLI_DECODER_RESULT_ERROR)
            return fail(err, errlen, l, "data is corrupt",
                        BrotliDecoderErrorString(BrotliDecoderGetErrorCode(l->lib)));
        size_t produced = sizeof(buf) - avail_out;
        if (produced) {
            int r = emit(d, i, buf, produced, out, data, err, errlen);
            if (r < 0)
                return r;
        }
        if (rc == BROTLI_DECODER_RESULT_SUCCESS)
            l->ended = 1;
        else if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
            return 0;
    }
}

static int feed_zstd(struct decoder *d, int i, const char *in, size_t len, decode_out_fn *out,
                     void *data, char *err, size_t errlen)
{
    struct decode_layer *l = &d->layer[i];
    ZSTD_inBuffer ib = {in, len, 0};
    char buf[OUT_CHUNK];
    /* Frames may follow each other (RFC 8878 §3.1); the output of one is
     * drained whenever the buffer came back full. */
    for (;;) {
        ZSTD_outBuffer ob = {buf, sizeof(buf), 0};
        size_t rc = ZSTD_decompressStream(l->lib, &ob, &ib);
        if (ZSTD_isError(rc))
            return fail(err, errlen, l, "data is corrupt", ZSTD_getErrorName(rc));
        if (ob.pos) {
            int r = emit(d, i, buf, ob.pos, out, data, err, errlen);
            if (r < 0)
                return r;
        }
        l->ended = rc == 0;
        if (ib.pos == ib.size && ob.pos < ob.size)
            return 0;
    }
}

static int feed_layer(struct decoder *d, int i, const char *in, size_t len, decode_out_fn *out,
                      void *data, char *err, size_t errlen)
{
    struct decode_layer *l = &d->layer[i];
    l->in_bytes += len;
    switch (l->kind) {
    case DECODE_GZIP:
    case DECODE_DEFLATE:
        return feed_zlib(d, i, in, len, out, data, err, errlen);
    case DECODE_BR:
        return feed_br(d, i, in, len, out, data, err, errlen);
    case DECODE_ZSTD:
        return feed_zstd(d, i, in, len, out, data, err, errlen);
    }
    return -VL_EDECODE;
}

int decoder_feed(struct decoder *d, const char *in, size_t len, decode_out_fn *out, void *data,
                 char *err, size_t errlen)
{
    if (d->nlayers == 0)
        return out(data, in, len);
    if (len == 0)
        return 0;
    return feed_layer(d, 0, in, len, out, data, err, errlen);
}

int decoder_finish(struct decoder *d, char *err, size_t errlen)
{
    for (int i = 0; i < d->nlayers; i++) {
        const struct decode_layer *l = &d->layer[i];
        if (l->ended)
            continue;
        if (i == 0 && l->in_bytes == 0)
            return 0; /* an empty body with a coding: nothing to decode */
        /* An inner layer that got nothing: the outer stream ended empty,
         * and an empty stream is not a coding of any content. */
        vl_fmt(err, errlen, "decode: %s stream truncated", kind_names[l->kind]);
        return -VL_EDECODE;
    }
    return 0;
}
