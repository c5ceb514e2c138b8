/* client.h: what a vl_client holds.  Shared by fetch.c, gather.c, client.c. */
#ifndef VL_CLIENT_H
#define VL_CLIENT_H

#include "dns.h"
#include "loop.h"
#include "pool.h"
#include "proxy.h"
#include "scheduler.h"
#include "tls.h"
#include "util.h"
#include "volley.h"

#define CLIENT_RBUF_BYTES 65536

struct vl_client {
    vl_loop *loop;
    vl_client_opts opts;           /* strings below are owned copies */
    char *cacert, *dns_servers, *user_agent;
    char **resolve;
    struct pool pool;
    struct dns *dns;
    struct tls_ctx *tls;           /* created on first https:// use */
    int tls_failed;                /* creating it failed: tls_err says why */
    char tls_err[256];
    struct sched sched;            /* the window and the per-host queues */
    int nfetches;                  /* fetches not yet delivered */
    uint64_t next_fetch_id;
    uint64_t t0_us;                /* for trace timestamps */
    char *rbuf;                    /* one read buffer for every connection */
    struct list_node h2_sessions;  /* every open h2 session (h2.c) */
    struct proxy_config proxies;   /* parsed once; opts' proxy strings are not kept */
    char *proxy_cacert;
    struct tls_ctx *proxy_tls;     /* for https:// proxies, created on first use */
    int proxy_tls_failed;
    char proxy_tls_err[256];
};

void client_trace(vl_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The TLS context, created on first use. NULL with c->tls_err set on failure. */
struct tls_ctx *client_tls(vl_client *c);
/* The TLS context for https:// proxies (proxy_cacert, proxy_insecure);
 * NULL on failure, with proxy_tls_err set. */
struct tls_ctx *client_proxy_tls(vl_client *c);

#endif
