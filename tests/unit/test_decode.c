/* test_decode.c: stacked content codings (decode.c).  Every coding and
 * stacks of them, fed whole and split at many points, must give back the
 * original bytes exactly; unknown codings, too many layers, corrupt and
 * truncated streams fail with a message naming the cause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "decode.h"
#include "volley.h"

#define MAX_BYTES (1 << 20)

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static int collect(void *data, const char *chunk, size_t len)
{
    struct buf *b = data;
    if (b->len + len > MAX_BYTES)
        return -1;
    buf_put(b, chunk, len);
    return 0;
}

/* Text and noise, so each coding meets literal and repeated stretches. */
static struct buf original(size_t n)
{
    struct buf b = {0};
    uint32_t x = 2463534242u;
    while (b.len < n) {
        char line[64];
        int k = snprintf(line, sizeof(line), "line %zu: the quick brown fox\n", b.len);
        buf_put(&b, line, (size_t)k);
        for (int i = 0; i < 20; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            unsigned char c = (unsigned char)x;
            buf_put(&b, &c, 1);
        }
    }
    b.len = n;
    return b;
}

static struct buf encode(const char *coding, const struct buf *in)
{
    struct buf out = {0};
    size_t cap = in->len + in->len / 2 + 1024;
    out.p = malloc(cap);
    out.cap = cap;
    assert_non_null(out.p);
    if (strcmp(coding, "br") == 0) {
        size_t n = cap;
        assert_int_equal(BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, in->len, in->p, &n,
                                               out.p), BROTLI_TRUE);
        out.len = n;
    } else if (strcmp(coding, "zstd") == 0) {
        /* with the frame checksum: without one (zstd's default), a flipped
         * literal byte cannot be told from data, by any decoder */
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        assert_non_null(cc);
        assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)));
        size_t n = ZSTD_compress2(cc, out.p, cap, in->p, in->len);
        assert_false(ZSTD_isError(n));
        ZSTD_freeCCtx(cc);
        out.len = n;
    } else {
        int bits = strcmp(coding, "gzip") == 0 ? 31 : strcmp(coding, "deflate") == 0 ? 15 : -15;
        z_stream z = {0};
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = in->p;
        z.avail_in = (uInt)in->len;
        z.next_out = out.p;
        z.avail_out = (uInt)cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        out.len = z.total_out;
        deflateEnd(&z);
    }
    return out;
}

/* Decode enc (labelled codings) fed in pieces of `piece` bytes (0: whole). */
static int decode(const char *codings, const struct buf *enc, size_t piece, struct buf *out,
                  char *err, size_t errlen)
{
    struct decoder d;
    int rc = decoder_init(&d, codings, err, errlen);
    if (rc < 0)
        return rc;
    size_t step = piece ? piece : enc->len;
    for (size_t off = 0; off < enc->len && rc == 0; off += step) {
        size_t n = enc->len - off < step ? enc->len - off : step;
        rc = decoder_feed(&d, (const char *)enc->p + off, n, collect, out, err, errlen);
    }
    if (rc == 0)
        rc = decoder_finish(&d, err, errlen);
    decoder_free(&d);
    return rc;
}

static void every_coding_and_stack_round_trips_however_it_is_split(void **state)
{
    (void)state;
    /* label as sent, the codings applied in that order ("raw" = raw deflate) */
    static const struct {
        const char *label;
        const char *applied[4];
    } cases[] = {
        {"gzip", {"gzip"}},
        {"x-gzip", {"gzip"}},
        {"deflate", {"deflate"}},
        {"deflate", {"raw"}},
        {"br", {"br"}},
        {"zstd", {"zstd"}},
        {"deflate, identity, gzip", {"deflate", "gzip"}},
        {"gzip, br", {"gzip", "br"}},
        {"br,zstd", {"br", "zstd"}},
        {"zstd, gzip, deflate, br", {"zstd", "gzip", "deflate", "br"}},
        {"GZIP , Identity", {"gzip"}},
    };
    static const size_t pieces[] = {0, 1, 2, 7, 1000, 16384};
    struct buf orig = original(100000);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct buf enc = {0};
        buf_put(&enc, orig.p, orig.len);
        for (int i = 0; i < 4 && cases[c].applied[i]; i++) {
            struct buf next = encode(cases[c].applied[i], &enc);
            free(enc.p);
            enc = next;
        }
        for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
            if (pieces[k] == 1 && enc.len > 30000)
                continue; /* byte by byte: only the small stacks, to stay fast */
            struct buf out = {0};
            char err[256] = "";
            int rc = decode(cases[c].label, &enc, pieces[k], &out, err, sizeof(err));
            if (rc != 0 || out.len != orig.len || memcmp(out.p, orig.p, orig.len) != 0)
                fail_msg("'%s' in pieces of %zu: rc %d (%s), %zu bytes out of %zu", cases[c].label,
                         pieces[k], rc, err, out.len, orig.len);
            free(out.p);
        }
        free(enc.p);
    }
    free(orig.p);
}

static void expect_fail(const char *codings, const struct buf *enc, const char *msg)
{
    struct buf out = {0};
    char err[256] = "";
    int rc = decode(codings, enc, 0, &out, err, sizeof(err));
    if (rc != -VL_EDECODE || !strstr(err, msg))
        fail_msg("'%s': expected -VL_EDECODE with \"%s\", got %d \"%s\"", codings, msg, rc, err);
    free(out.p);
}

static void unknown_codings_and_long_stacks_fail_by_name(void **state)
{
    (void)state;
    struct buf some = original(1000);
    expect_fail("x-foo", &some, "unsupported content coding 'x-foo'");
    expect_fail("gzip, compress", &some, "unsupported content coding 'compress'");
    expect_fail("gzip, gzip, gzip, gzip, gzip", &some, "more than 4 codings");
    struct decoder d;
    char err[128];
    assert_int_equal(decoder_init(&d, "identity, , identity", err, sizeof(err)), 0);
    assert_false(decoder_active(&d));
    assert_int_equal(decoder_init(&d, NULL, err, sizeof(err)), 0);
    assert_false(decoder_active(&d));
    free(some.p);
}

static void corrupt_and_truncated_streams_fail(void **state)
{
    (void)state;
    struct buf orig = original(50000);
    static const char *const codings[] = {"gzip", "deflate", "br", "zstd"};
    for (size_t i = 0; i < 4; i++) {
        struct buf enc = encode(codings[i], &orig);
        size_t full = enc.len;
        enc.len = full * 6 / 10;
        expect_fail(codings[i], &enc, "truncated");
        enc.len = full;
        for (size_t k = enc.len / 2; k < enc.len / 2 + 32; k++)
            enc.p[k] ^= 0x5a;
        struct buf out = {0};
        char err[256] = "";
        int rc = decode(codings[i], &enc, 0, &out, err, sizeof(err));
        if (rc == 0 && out.len == orig.len && memcmp(out.p, orig.p, orig.len) == 0)
            fail_msg("%s: a corrupted stream decoded to the original", codings[i]);
        if (rc == 0)
            fail_msg("%s: a corrupted stream decoded without error (%zu bytes)", codings[i],
                     out.len);
        free(out.p);
        free(enc.p);
    }
    free(orig.p);
}

static void an_empty_body_with_a_coding_decodes_to_nothing(void **state)
{
    (void)state;
    struct buf none = {0}, out = {0};
    char err[128] = "";
    assert_int_equal(decode("gzip, br, zstd", &none, 0, &out, err, sizeof(err)), 0);
    assert_int_equal(out.len, 0);
}

static void an_outer_stream_that_ends_empty_leaves_the_inner_coding_truncated(void **state)
{
    (void)state;
    /* "gzip, br": a valid empty br stream carried no gzip stream at all;
     * an empty body was reported as the decoded content. */
    struct buf none = {0};
    struct buf br = encode("br", &none), gz = encode("gzip", &none);
    expect_fail("gzip, br", &br, "gzip stream truncated");
    expect_fail("zstd, gzip", &gz, "zstd stream truncated");
    /* the empty content, properly coded twice, is still fine */
    struct buf twice = encode("br", &gz), out = {0};
    char err[128] = "";
    assert_int_equal(decode("gzip, br", &twice, 0, &out, err, sizeof(err)), 0);
    assert_int_equal(out.len, 0);
    free(br.p);
    free(gz.p);
    free(twice.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_coding_and_stack_round_trips_however_it_is_split),
        cmocka_unit_test(unknown_codings_and_long_stacks_fail_by_name),
        cmocka_unit_test(corrupt_and_truncated_streams_fail),
        cmocka_unit_test(an_empty_body_with_a_coding_decodes_to_nothing),
        cmocka_unit_test(an_outer_stream_that_ends_empty_leaves_the_inner_coding_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
