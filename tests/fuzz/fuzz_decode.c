/* fuzz_decode.c: every Content-Encoding decoder (src/decode.h: gzip,
 * deflate, br, zstd, stacked as a coding list), against the stacked-codings
 * API (decoder_init with a coding list, decoder_active); built only once
 * decode.h has it.
 *
 * Input: the coding list ("deflate, identity, gzip") up to the first '\n',
 * then one byte choosing the piece size (1-256) of the split feed, then
 * the body.  The body is decoded twice, fed whole and fed in pieces.
 * Properties: decoder_init returns 0 or -VL_EDECODE with a message;
 * decoder_feed returns 0, the sink's own code, or -VL_EDECODE with a
 * message (decoder_finish: 0 or -VL_EDECODE); both runs agree on the
 * outcome and on the decoded bytes (length and hash).  Output is bounded:
 * the sink stops at 64 MiB by returning SINK_FULL, so a zip bomb ends
 * quickly, and such a run is not compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "volley.h"

#define OUT_MAX (64u << 20)
#define SINK_FULL (-7777)
#define CODINGS_MAX 256

struct sink {
    uint64_t len, hash;
    int full;
};

static int sink(void *data, const char *chunk, size_t len)
{
    struct sink *s = data;
    if (s->len + len > OUT_MAX) {
        s->full = 1;
        return SINK_FULL;
    }
    for (size_t i = 0; i < len; i++)
        s->hash = (s->hash ^ (unsigned char)chunk[i]) * 0x100000001b3ull; /* FNV-1a */
    s->len += len;
    return 0;
}

static void check_rc(int rc, const char *err, const char *what)
{
    if (rc == 0 || rc == SINK_FULL)
        return;
    if (rc != -VL_EDECODE || !err[0]) {
        fprintf(stderr, "fuzz_decode: %s returned %d, message '%s'\n", what, rc, err);
        abort();
    }
}

/* Decode body with the coding list, in pieces of `piece` bytes (0: whole).
 * 1 decoded, 0 a decode error, -1 the sink was full. */
static int decode(const char *codings, const char *body, size_t len, size_t piece, struct sink *s)
{
    struct decoder d;
    char err[256] = "";
    memset(s, 0, sizeof(*s));
    s->hash = 0xcbf29ce484222325ull;
    int rc = decoder_init(&d, codings, err, sizeof(err));
    check_rc(rc, err, "decoder_init");
    if (rc < 0) {
        decoder_free(&d);
        return 0;
    }
    int result = 1;
    if (decoder_active(&d)) {
        for (size_t off = 0; off < len || (len == 0 && off == 0); off += piece ? piece : len) {
            size_t n = piece && piece < len - off ? piece : len - off;
            err[0] = '\0';
            rc = decoder_feed(&d, body + off, n, sink, s, err, sizeof(err));
            check_rc(rc, err, "decoder_feed");
            if (rc == SINK_FULL && !s->full)
                abort(); /* the sink's code without the sink saying so */
            if (rc < 0)
                break;
            if (len == 0)
                break;
        }
        if (rc == 0) {
            err[0] = '\0';
            rc = decoder_finish(&d, err, sizeof(err));
            check_rc(rc, err, "decoder_finish");
        }
        result = s->full ? -1 : rc == 0;
    }
    decoder_free(&d);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < CODINGS_MAX ? size : CODINGS_MAX);
    if (!nl || (size_t)(nl - data) + 2 > size)
        return 0;
    char codings[CODINGS_MAX + 1];
    size_t clen = (size_t)(nl - data);
    memcpy(codings, data, clen);
    codings[clen] = '\0';
    size_t piece = (size_t)nl[1] + 1;
    const char *body = (const char *)nl + 2;
    size_t len = size - clen - 2;
    struct sink whole, split;
    int a = decode(codings, body, len, 0, &whole);
    int b = decode(codings, body, len, piece, &split);
    if (a < 0 || b < 0)
        return 0; /* the bound, reached at a point that depends on the pieces */
    if (a != b || (a && (whole.len != split.len || whole.hash != split.hash))) {
        fprintf(stderr, "fuzz_decode: '%s' whole (%s, %llu bytes) and in %zu-byte pieces "
                "(%s, %llu bytes) disagree\n", codings, a ? "ok" : "error",
                (unsigned long long)whole.len, piece, b ? "ok" : "error",
                (unsigned long long)split.len);
        abort();
    }
    return 0;
}
