/* dns.h: name resolution driven by the loop.  --resolve overrides first,
 * then IP literals, then localhost names, then the resolver (c-ares: the
 * hosts file, then DNS; with a TTL cache and in-flight de-duplication).
 * No blocking call, ever.  Knows nothing of HTTP. */
#ifndef VL_DNS_H
#define VL_DNS_H

#include <stdint.h>

#include "conn.h"
#include "volley.h"

struct dns;
struct dns_query;

/* Called once per query that did not complete at once, from the loop's
 * timer phase (never inside dns_resolve or inside c-ares): err 0 and addrs
 * (ports set, in the resolver's RFC 6724 order), or err < 0 and msg
 * ("dns: no such host (NXDOMAIN) 'name'").  addrs and msg are only valid
 * during the call.  Inside it, dns_resolve and dns_cancel (of any query)
 * may be called; dns_free may not. */
typedef void dns_cb(void *data, int err, const struct addr_list *addrs, const char *msg);
typedef void dns_trace_cb(void *data, const char *line);

/* Reads opts->resolve, opts->dns_servers ("ADDR[:PORT],...": c-ares asks
 * those instead of resolv.conf's) and /etc/resolv.conf, all here, once.
 * On failure returns -VL_EUSAGE (bad --resolve/--dns-servers), -VL_EDNS or
 * -ENOMEM with a message in err. */
int dns_new(vl_loop *loop, const vl_client_opts *opts, struct dns **out, char *err, size_t errlen);
/* Ends every lookup and frees every query in flight (their callbacks do
 * not run).  Not from inside a dns_cb. */
void dns_free(struct dns *d);

/* Resolve host for port.  Returns 1 with *addrs filled when the answer is
 * known now (override, literal, localhost, cache, hosts file), 0 when cb
 * will run later (*q set, cancellable until cb runs), or a negative code
 * (-VL_EDNS, -ENOMEM) with msg filled (msg has room for 256).  A lookup
 * already in flight for host is shared, not repeated.  trace (may be NULL)
 * gets the lookup's start, its answer (addresses, TTL, cached or not) or
 * its failure, one line each. */
int dns_resolve(struct dns *d, const char *host, int port, struct addr_list *addrs,
                dns_cb *cb, dns_trace_cb *trace, void *data, struct dns_query **q, char *msg);
/* Forget q: its callback never runs.  The lookup goes on for the others
 * waiting on the same name (and fills the cache).  NULL, and q inside its
 * own callback, are no-ops. */
void dns_cancel(struct dns_query *q);

/* Counters, for tests and --verbose summaries. */
struct dns_stats {
    uint64_t lookups;    /* c-ares lookups started (one per name, not per caller) */
    uint64_t hits;       /* answers (positive or negative) from the cache */
    uint64_t joined;     /* callers that waited on a lookup already in flight */
    uint64_t expired;    /* cache entries dropped for their TTL */
    uint64_t evicted;    /* cache entries dropped for room */
    uint64_t failures;   /* lookups that ended in an uncached failure */
};
void dns_get_stats(const struct dns *d, struct dns_stats *out);

#endif
