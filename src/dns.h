/* dns.h: name resolution driven by the loop.  --resolve overrides first,
 * then IP literals, then the resolver (c-ares, with a TTL cache and
 * in-flight de-duplication).  No blocking call, ever.  Knows nothing of HTTP. */
#ifndef VL_DNS_H
#define VL_DNS_H

#include "conn.h"
#include "volley.h"

struct dns;
struct dns_query;

/* Called once per query that did not complete at once: err 0 and addrs,
 * or err < 0 and msg ("dns: no such host (NXDOMAIN)").  addrs is only valid
 * during the call.  cached says the answer came from the cache. */
typedef void dns_cb(void *data, int err, const struct addr_list *addrs, const char *msg);
typedef void dns_trace_cb(void *data, const char *line);

int dns_new(vl_loop *loop, const vl_client_opts *opts, struct dns **out, char *err, size_t errlen);
/* Cancels every query in flight (their callbacks do not run). */
void dns_free(struct dns *d);

/* Resolve host for port.  Returns 1 with *addrs filled when the answer is
 * known now (override, literal, cache), 0 when cb will run later (*q set,
 * cancellable), or a negative code with msg filled (msg has room for 256). */
int dns_resolve(struct dns *d, const char *host, int port, struct addr_list *addrs,
                dns_cb *cb, dns_trace_cb *trace, void *data, struct dns_query **q, char *msg);
void dns_cancel(struct dns_query *q);

#endif
