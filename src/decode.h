/* decode.h: streaming decoding of content and transfer codings, stacked
 * (RFC 9110 §8.4: "deflate, gzip" was deflated, then gzipped; it is
 * gunzipped, then inflated).  gzip and deflate (zlib-wrapped or raw) with
 * zlib, br with libbrotlidec, zstd with libzstd.  Constant memory per
 * layer: the library's window and a 16 KiB output chunk on the stack,
 * whatever the body's size.  Knows nothing of HTTP. */
#ifndef VL_DECODE_H
#define VL_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define DECODE_MAX_LAYERS 4  /* codings undone at most, identity not counted */

enum decode_kind { DECODE_GZIP, DECODE_DEFLATE, DECODE_BR, DECODE_ZSTD };

struct decode_layer {
    enum decode_kind kind;
    int started;           /* the library's state exists */
    int raw;               /* deflate without the zlib wrapper */
    int ended;             /* a complete stream was seen */
    uint64_t in_bytes;     /* input taken so far */
    unsigned char head[2]; /* deflate: the first bytes, held until the wrapper is known */
    int nhead;
    z_stream z;            /* gzip, deflate */
    void *lib;             /* BrotliDecoderState or ZSTD_DStream */
};

struct decoder {
    int nlayers;           /* 0: nothing to decode */
    struct decode_layer *layer; /* nlayers of them, in decoding order; malloc'ed only
                                   for a coded body (most fetches embed an idle one) */
};

typedef int decode_out_fn(void *data, const char *chunk, size_t len);

/* Set d up for a coding list as sent ("gzip", "deflate, identity, br"),
 * NULL or empty for none.  0, or -VL_EDECODE with a message in err for an
 * unknown coding or too many (d is then free of resources). */
int decoder_init(struct decoder *d, const char *codings, char *err, size_t errlen);
/* Is there anything to decode? */
int decoder_active(const struct decoder *d);
/* Decode in through every layer, passing the output to out.  0, the
 * sink's negative code, or -VL_EDECODE with a message in err. */
int decoder_feed(struct decoder *d, const char *in, size_t len, decode_out_fn *out, void *data,
                 char *err, size_t errlen);
/* At the end of the body: -VL_EDECODE if a stream was cut short. */
int decoder_finish(struct decoder *d, char *err, size_t errlen);
void decoder_free(struct decoder *d);

#endif
