/* warc.h: --warc FILE, a sink for the library's raw-bytes tap (vl_wire_cb).
 * Writes WARC 1.1 (ISO 28500:2017): a warcinfo record at the head of every
 * file, then for each exchange that received at least one response byte a
 * request record and a response record holding the bytes as they crossed
 * the connection.  Uses only volley.h (plus zlib and mbedTLS's sha1). */
#ifndef VL_CLI_WARC_H
#define VL_CLI_WARC_H

#include <stdint.h>

#include "volley.h"

struct warc;
/* Open path for appending (created when missing; a name ending in ".gz"
 * compresses each record as its own gzip member).  max_bytes > 0: roll
 * over to PATH-00001.warc.gz ... once a file has reached it; with such
 * files already there the highest one is appended to.  0, or -1 with a
 * message in err. */
int warc_open(const char *path, uint64_t max_bytes, struct warc **out, char *err, size_t errlen);
/* Flush and close.  0, or -1 when any write failed (said on stderr once). */
int warc_close(struct warc *w);

/* One fetch's exchanges (its attempts and redirect hops, one at a time):
 * set req->on_wire = warc_on_wire and req->wire_data to it.  Spools each
 * exchange (memory, then a temp file beside the WARC file) and writes its
 * two records whole under the writer's lock when the exchange ends, so
 * several threads may share one struct warc. */
struct warc_exchange;
struct warc_exchange *warc_exchange_new(struct warc *w);
void warc_exchange_free(struct warc_exchange *x);
void warc_on_wire(void *data, const vl_wire_event *ev);

#endif
