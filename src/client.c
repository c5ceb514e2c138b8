/* client.c: a client owns the options, the pool, the resolver and the TLS
 * context that its fetches share; plus version and error names. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "client.h"
#include "h2.h"
#include "fetch.h"

#ifndef VL_VERSION_STRING
#define VL_VERSION_STRING "0.1.0"
#endif

const char *vl_version(void) { return VL_VERSION_STRING; }

const char *vl_strerror(int err)
{
    static const char *const names[] = {
        [VL_EURL - VL_EBASE] = "malformed or unsupported URL",
        [VL_EDNS - VL_EBASE] = "name resolution failed",
        [VL_ECONNECT - VL_EBASE] = "connection failed",
        [VL_ETLS - VL_EBASE] = "TLS failure",
        [VL_EHTTP - VL_EBASE] = "HTTP protocol error",
        [VL_ETIMEOUT - VL_EBASE] = "timed out",
        [VL_EIO - VL_EBASE] = "I/O error",
        [VL_EDECODE - VL_EBASE] = "content decoding failed",
        [VL_EREDIRECT - VL_EBASE] = "redirect failed",
        [VL_ETOOBIG - VL_EBASE] = "size limit exceeded",
        [VL_ESTATUS - VL_EBASE] = "HTTP error status",
        [VL_ECANCELED - VL_EBASE] = "canceled",
        [VL_EUSAGE - VL_EBASE] = "invalid argument",
        [VL_ELIMIT - VL_EBASE] = "out of file descriptors",
        [VL_EPROXY - VL_EBASE] = "proxy failure",
    };
    int e = -err;
    if (err == 0)
        return "success";
    if (e > VL_EBASE && e - VL_EBASE < (int)ARRAY_LEN(names) && names[e - VL_EBASE])
        return names[e - VL_EBASE];
    if (e > 0 && e < VL_EBASE)
        return strerror(e);
    return "unknown error";
}

void vl_client_opts_init(vl_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->concurrency = 100;
    o->connect_timeout_s = 10;
    o->read_timeout_s = 60;
    o->timeout_s = 300;
    o->idle_timeout_s = 30;
    o->max_redirs = 10;
    o->decompress = 1;
    o->max_header_bytes = 65536;
}

void client_trace(vl_client *c, const char *fmt, ...)
{
    if (!c->opts.trace)
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "[%10.3f] ",
                     (double)(loop_now_us(c->loop) - c->t0_us) / 1000.0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    c->opts.trace(c->opts.trace_data, line);
}

struct tls_ctx *client_tls(vl_client *c)
{
    if (!c->tls && !c->tls_failed) {
        if (tls_ctx_new(&c->opts, &c->tls, c->tls_err, sizeof(c->tls_err)) < 0)
            c->tls_failed = 1;
    }
    return c->tls;
}

struct tls_ctx *client_proxy_tls(vl_client *c)
{
    if (!c->proxy_tls && !c->proxy_tls_failed) {
        vl_client_opts o = c->opts;
        o.cacert = c->proxy_cacert;
        o.insecure = c->opts.proxy_insecure;
        o.http_version = VL_HTTP_1_1; /* CONNECT and forwarding speak HTTP/1.1 to the proxy */
        if (tls_ctx_new(&o, &c->proxy_tls, c->proxy_tls_err, sizeof(c->proxy_tls_err)) < 0)
            c->proxy_tls_failed = 1;
    }
    return c->proxy_tls;
}

static int copy_opts(vl_client *c, const vl_client_opts *o)
{
    c->opts = *o;
    if ((o->cacert && !(c->cacert = vl_strdup(o->cacert))) ||
        (o->proxy_cacert && !(c->proxy_cacert = vl_strdup(o->proxy_cacert))) ||
        (o->dns_servers && !(c->dns_servers = vl_strdup(o->dns_servers))))
        return -ENOMEM;
    char ua[64];
    vl_fmt(ua, sizeof(ua), "volley/%s", vl_version());
    if (!(c->user_agent = vl_strdup(o->user_agent ? o->user_agent : ua)))
        return -ENOMEM;
    if (o->nresolve) {
        if (!(c->resolve = calloc(o->nresolve, sizeof(char *))))
            return -ENOMEM;
        for (size_t i = 0; i < o->nresolve; i++)
            if (!(c->resolve[i] = vl_strdup(o->resolve[i])))
                return -ENOMEM;
    }
    c->opts.cacert = c->cacert;
    c->opts.dns_servers = c->dns_servers;
    c->opts.user_agent = c->user_agent;
    c->opts.resolve = (const char *const *)c->resolve;
    return 0;
}

static int check_opts(const vl_client_opts *o, char *err, size_t errlen)
{
    if (o->concurrency < 1) {
        vl_fmt(err, errlen, "concurrency must be at least 1");
        return -VL_EUSAGE;
    }
    if (o->per_host < 0 || o->max_redirs < 0 || o->retry < 0 || o->read_ahead < 0 ||
        !(o->rate_per_s >= 0 && o->rate_per_s <= 1e6) ||
        !(o->per_host_rate_per_s >= 0 && o->per_host_rate_per_s <= 1e6) ||
        !(o->per_host_delay_s >= 0 && o->per_host_delay_s <= 86400)) {
        vl_fmt(err, errlen, "limits must not be negative");
        return -VL_EUSAGE;
    }
    const double max_s = 1e7; /* ~115 days: keeps every µs count inside uint64 */
    if (!(o->connect_timeout_s > 0 && o->connect_timeout_s <= max_s) ||
        !(o->read_timeout_s > 0 && o->read_timeout_s <= max_s) ||
        !(o->timeout_s > 0 && o->timeout_s <= max_s) ||
        !(o->idle_timeout_s >= 0 && o->idle_timeout_s <= max_s) ||
        !(o->retry_delay_s >= 0 && o->retry_delay_s <= max_s) ||
        !(o->retry_max_time_s >= 0 && o->retry_max_time_s <= max_s)) {
        vl_fmt(err, errlen, "timeouts must be positive and at most %.0f s", max_s);
        return -VL_EUSAGE;
    }
    return 0;
}

static void sched_trace(void *ctx, const char *line) { client_trace(ctx, "%s", line); }

/* Fetches in flight stay below the open-file limit: each may hold a socket,
 * a second happy-eyeballs attempt, an idle pooled connection and an output
 * file (the CLI says so when it lowers -c for this).  Running out of fds
 * must be an error result (EMFILE), never a stall. */
static int max_in_flight(int concurrency)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        long room = ((long)rl.rlim_cur - 32) / 4;
        if (room < 1)
            room = 1;
        if (concurrency > room)
            return (int)room;
    }
    return concurrency;
}

int vl_client_new(vl_loop *loop, const vl_client_opts *opts, vl_client **out, char *err,
                  size_t errlen)
{
    int rc = check_opts(opts, err, errlen);
    if (rc < 0)
        return rc;
    vl_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    list_init(&c->h2_sessions);
    c->t0_us = loop_now_us(loop);
    rc = copy_opts(c, opts);
    if (rc == 0 && !(c->rbuf = malloc(CLIENT_RBUF_BYTES)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = proxy_config_init(&c->proxies, opts, err, errlen);
    c->opts.proxy = c->opts.http_proxy = c->opts.https_proxy = c->opts.noproxy = NULL;
    if (rc == 0)
        /* Busy connections are bounded by the fetches in flight; as many
         * again may wait idle for reuse.  Evicting an idle connection of
         * one host to open one to another, at a fixed total, made 2,000
         * GETs over 50 TLS hosts at -c 50 open ~900 connections; with the
         * idle allowance they open ~100 (aiohttp's limit also counts only
         * connections in use). */
        rc = pool_init(&c->pool, loop, 2 * opts->concurrency, opts->per_host,
                       (uint64_t)(opts->idle_timeout_s * 1e6));
    if (rc == 0)
        rc = dns_new(loop, &c->opts, &c->dns, err, errlen);
    if (rc == 0)
    {
        sched_init(&c->sched, loop, max_in_flight(opts->concurrency), fetch_host_has_room,
                   fetch_sched_start, opts->trace ? sched_trace : NULL, c);
        double host_s = opts->per_host_rate_per_s > 0 ? 1.0 / opts->per_host_rate_per_s : 0;
        if (opts->per_host_delay_s > host_s)
            host_s = opts->per_host_delay_s;
        sched_set_rates(&c->sched, opts->rate_per_s > 0 ? (uint64_t)(1e6 / opts->rate_per_s) : 0,
                        (uint64_t)(host_s * 1e6));
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            vl_fmt(err, errlen, "out of memory");
        vl_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void vl_client_stats_get(const vl_client *c, vl_client_stats *out)
{
    out->in_flight = c->sched.active;
    out->max_in_flight = c->sched.max_active;
    out->queued = c->sched.queued;
    out->throttled_hosts = c->sched.throttled_hosts;
    out->runnable = !list_empty(&c->sched.ready);
}

void vl_client_free(vl_client *c)
{
    if (!c)
        return;
    h2_close_all(c); /* before the scheduler: closing kicks the host's queue */
    sched_free(&c->sched);
    if (c->pool.buckets)
        pool_free(&c->pool);
    dns_free(c->dns);
    if (c->tls)
        tls_ctx_free(c->tls);
    proxy_config_free(&c->proxies); /* after the pool: a conn's tunnel points into it */
    if (c->proxy_tls)
        tls_ctx_free(c->proxy_tls);
    free(c->proxy_cacert);
    for (size_t i = 0; c->resolve && i < c->opts.nresolve; i++)
        free(c->resolve[i]);
    free(c->resolve);
    free(c->cacert);
    free(c->dns_servers);
    free(c->user_agent);
    free(c->rbuf);
    free(c);
}

vl_loop *vl_client_loop(const vl_client *c) { return c->loop; }
