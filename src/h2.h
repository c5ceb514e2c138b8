/* h2.h: the HTTP/2 exchange (RFC 9113), with nghttp2 doing framing, HPACK
 * and flow control.  A session owns one connection (after ALPN picked h2,
 * or h2c by prior knowledge) and carries many streams, one per fetch.  The
 * nghttp2 session never touches the socket: we feed it what the
 * connection reads and write what it produces, from the loop.
 *
 * A stream's response reaches its owner as the bytes of an HTTP/1.1
 * response (a status line and header fields rendered from the decoded
 * header block, then the DATA payload, close-delimited), so http.c's one
 * parser captures, bounds and checks the headers of both protocols and
 * fetch.c handles both the same way (status, redirects, retries, decoding,
 * sinks).  Knows nothing of fetch policy. */
#ifndef VL_H2_H
#define VL_H2_H

#include <stddef.h>
#include <sys/types.h>

#include "client.h"

struct h2_session;
struct h2_stream;

/* The owner's side of a stream.  Each runs from the loop, possibly inside
 * nghttp2's callbacks: the owner may detach its stream there (and start or
 * cancel fetches), never close the session. */
#define H2_NOT_PROCESSED 1
#define H2_MAYBE_PROCESSED 2

struct h2_events {
    void (*sent)(void *owner);                                /* request fully written */
    void (*bytes)(void *owner, const char *buf, size_t len);  /* response, as HTTP/1.1 */
    void (*end)(void *owner);                                 /* stream ended cleanly */
    /* The stream failed with msg.  requeue: 0, H2_NOT_PROCESSED (REFUSED_STREAM
     * or above a GOAWAY's last-stream-id: safe to send again, RFC 9113 §8.7),
     * or H2_MAYBE_PROCESSED (the connection died before any of its response:
     * the server may have acted on it; only an idempotent request goes again,
     * once, as an HTTP/1.1 stale retry). */
    void (*fail)(void *owner, int err, int requeue, const char *msg);
    /* Request body bytes into buf: > 0 bytes, 0 at the end, < 0 an error. */
    ssize_t (*body)(void *owner, char *buf, size_t len);
};

/* Make an h2 session of c (connected, TLS done if any), c's ownership
 * passing to the session (it keeps c's pool slot until it closes).
 * Returns NULL (c untouched) when out of memory or nghttp2 fails. */
struct h2_session *h2_session_new(vl_client *cl, struct conn *c, int https);
/* A session of h that can take one more stream now, or NULL. */
struct h2_session *h2_session_with_room(struct host *h);
/* Start a request on s from its HTTP/1.1 head (as http_build_head made
 * it): the request line and fields become pseudo-headers and lower-case
 * fields, connection-specific ones dropped (RFC 9113 §8.2.2).  has_body:
 * the body comes from ev->body.  NULL with msg set on failure. */
struct h2_stream *h2_stream_start(struct h2_session *s, const char *head, size_t head_len,
                                  int has_body, const struct h2_events *ev, void *owner,
                                  char *msg, size_t msglen);
/* The owner is done with the stream (finished, failed, canceled): no more
 * events; an open stream is reset (CANCEL). */
void h2_stream_detach(struct h2_stream *st);
/* st's fetch hit its read timeout: its session takes no new streams. */
void h2_stream_starved(struct h2_stream *st);
/* "127.0.0.1:443": the peer of st's connection, for messages. */
const char *h2_stream_peer(const struct h2_stream *st);
/* Close every session of cl (vl_client_free; no stream is attached). */
void h2_close_all(vl_client *cl);

#endif
