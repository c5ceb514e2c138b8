/* body.h: --body, the response body inside the record.  A capture keeps at
 * most --body-max raw (decoded-from-gzip, not yet charset-decoded) bytes of
 * one fetch's body; body_decode turns them into what the record carries:
 * UTF-8 text for text types (with the charset it was read as and why), the
 * raw bytes (base64 in the record) for the others.  Uses only volley.h,
 * glibc iconv and libuchardet; knows nothing of records or JSON. */
#ifndef VL_CLI_BODY_H
#define VL_CLI_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define BODY_MAX_DEFAULT (1u << 20)      /* --body-max: 1 MiB */
#define BODY_DETECT_BYTES 65536          /* what uchardet is shown, at most */
#define BODY_PRESCAN_BYTES 1024          /* WHATWG: <meta> is looked for in the first 1024 */
#define BODY_KEEP_BYTES 16384            /* a capture's buffer kept for the next fetch */

/* One fetch's body, bounded: buf holds the first min(total, max) bytes. */
struct body_capture {
    char *buf;
    size_t len, cap;
    size_t max;
    uint64_t total;                      /* every byte offered, kept or not */
};

/* Start a new body (the buffer of the last one is reused). */
void body_capture_begin(struct body_capture *c, size_t max);
/* A vl_body_cb: data is the struct body_capture.  0, or -ENOMEM. */
int body_capture_add(void *data, const char *chunk, size_t len);
/* The library hands every attempt's body to the sink, a retried one's
 * (a 503's) too, and result.bytes counts the final attempt's only: keep
 * the last final_bytes of the stream.  0, or -1 when none of the final
 * body was kept (the earlier ones filled --body-max). */
int body_capture_final(struct body_capture *c, uint64_t final_bytes);
/* The body has its record: free a large buffer, keep a small one. */
void body_capture_end(struct body_capture *c);
void body_capture_free(struct body_capture *c);

/* The record's body fields for a captured body and the response's
 * Content-Type (may be NULL).  out->data points into the capture or into
 * the calling thread's buffer: valid until the next call on this thread or
 * the capture's next change.  0, or -ENOMEM (out then says nothing). */
int body_decode(const struct body_capture *c, const char *content_type, struct out_body *out);
/* Free the calling thread's buffers and iconv descriptors. */
void body_thread_end(void);

/* ---- the pure pieces (tests/unit/test_body.c) */
/* The WHATWG encoding a label names (trimmed, any case), as its lower-case
 * name ("latin1" -> "windows-1252"), or NULL for an unknown label or one we
 * do not decode (replacement, x-user-defined). */
const char *charset_for_label(const char *label, size_t len);
/* Content-Type's kind: BODY_KIND_* below; *charset and *charset_len (may be NULL)
 * get the charset parameter's value, quotes removed, if there is one. */
enum { BODY_KIND_BINARY, BODY_KIND_TEXT, BODY_KIND_HTML, BODY_KIND_JSON };
int body_kind(const char *content_type, const char **charset, size_t *charset_len);
/* WHATWG HTML "prescan a byte stream to determine its encoding" over the
 * first BODY_PRESCAN_BYTES of buf: the encoding a <meta charset> or
 * <meta http-equiv=content-type content="...charset=..."> names, or NULL. */
const char *charset_prescan(const char *buf, size_t len);
/* The encoding a byte order mark names, and its length in *bom_len. */
const char *charset_bom(const char *buf, size_t len, size_t *bom_len);

#endif
