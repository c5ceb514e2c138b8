/* decode.h: streaming Content-Encoding decoding (gzip, zlib-wrapped and raw
 * deflate) with zlib.  Constant memory: a zlib window and a 16 KiB output
 * chunk on the stack, whatever the body's size.  Knows nothing of HTTP. */
#ifndef VL_DECODE_H
#define VL_DECODE_H

#include <stddef.h>
#include <zlib.h>

enum decode_kind { DECODE_NONE, DECODE_GZIP, DECODE_DEFLATE };

struct decoder {
    enum decode_kind kind;
    int started;        /* inflateInit done */
    int raw;            /* deflate without the zlib wrapper */
    int ended;          /* a complete stream was seen */
    unsigned char head[2]; /* deflate: the first bytes, held until the wrapper is known */
    int nhead;
    z_stream z;
};

typedef int decode_out_fn(void *data, const char *chunk, size_t len);

/* Choose by Content-Encoding value; unknown or identity → DECODE_NONE. */
enum decode_kind decode_kind_of(const char *content_encoding);
int decoder_init(struct decoder *d, enum decode_kind kind);
/* Decode in, passing output to out.  0, the sink's negative code, or
 * -VL_EDECODE with a message in err. */
int decoder_feed(struct decoder *d, const char *in, size_t len, decode_out_fn *out, void *data,
                 char *err, size_t errlen);
/* At the end of the body: -VL_EDECODE if the stream was cut short. */
int decoder_finish(struct decoder *d, char *err, size_t errlen);
void decoder_free(struct decoder *d);

#endif
