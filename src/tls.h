/* tls.h: the TLS layer of a connection, with mbedTLS.  One tls_ctx per
 * client (one ssl_config, one entropy + ctr_drbg, one parsed CA chain, the
 * per-host:port session cache); one small state per connection behind the
 * conn_ops vtable.  Never blocks: WANT_READ/WANT_WRITE become -EAGAIN with
 * conn->want set.  Knows nothing of HTTP. */
#ifndef VL_TLS_H
#define VL_TLS_H

#include <stddef.h>

#include "conn.h"
#include "volley.h"

struct tls_ctx;

/* Build the client-wide TLS context from opts (cacert, insecure).  CA lookup:
 * opts->cacert; $SSL_CERT_FILE / $SSL_CERT_DIR; the system bundle.
 * Returns 0, or a negative code with a message in err. */
int tls_ctx_new(const vl_client_opts *opts, struct tls_ctx **out, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/* Layer TLS over c (already connected): sets c->ops to the TLS vtable and
 * c->tls.  host is used for SNI and verification; session_key (e.g.
 * "host:port") selects the cached session to offer.  The handshake then runs
 * through c->ops->handshake until it returns 0. */
int tls_attach(struct tls_ctx *ctx, struct conn *c, const char *host, const char *session_key);

/* Is a session cached under session_key (the next handshake can resume)? */
int tls_has_session(struct tls_ctx *ctx, const char *session_key);

/* After a completed handshake: "TLSv1.2 ECDHE-... alpn=http/1.1 resumed". */
void tls_describe(const struct conn *c, char *buf, size_t len);

/* After a completed handshake: did the server pick h2 by ALPN? */
int tls_alpn_is_h2(const struct conn *c);

#endif
