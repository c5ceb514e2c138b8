/* dns.c: name resolution without blocking the loop.  Order: --resolve
 * overrides, IP literals, localhost names (RFC 6761 §6.3), the cache, then
 * c-ares (the hosts file, then DNS: lookups "fb").
 *
 * c-ares is embedded the way it is meant to be: its socket-state callback
 * starts and stops loop watchers, readiness calls ares_process_fd, and one
 * loop timer follows ares_timeout().  Concurrent lookups of one name share
 * one c-ares lookup; answers are cached by name with clamped TTLs.  Waiters
 * are answered from a zero-delay timer, never inside c-ares's stack.
 * Never calls getaddrinfo, gethostbyname, ares_fds or select.
 * Knows nothing of HTTP. */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

/* A silent server fails the lookup after DNS_TIMEOUT_MS, then twice that on
 * the retry (c-ares doubles the timeout each round of servers): 3 s in all
 * with one server.  The client's connect timeout covers DNS as well. */
#define DNS_TIMEOUT_MS 1000
#define DNS_TRIES 2
#define DNS_TTL_FLOOR_S 1        /* a TTL of 0 would mean one query per fetch */
#define DNS_TTL_CEILING_S 300    /* a moved host is found within 5 minutes */
#define DNS_NEGATIVE_TTL_S 5     /* NXDOMAIN and "no addresses" */
#define DNS_CACHE_MAX 4096       /* entries; least recently used go first */
#define DNS_NAME_MAX 253         /* RFC 1035 §2.3.4, without the final dot */
#define DNS_TIMER_SLACK_US 1000  /* ares_timeout truncates to ms: never wake early */

struct override {
    char *host;
    int port;
    struct addr_list addrs;
};

/* An entry is RESOLVING (c-ares lookup running, waiters queued), POSITIVE or
 * NEGATIVE (cached until expires_us), or FAILED (a failure that is not
 * cached: out of the table, freed once its waiters are answered). */
enum entry_state { ENTRY_RESOLVING, ENTRY_POSITIVE, ENTRY_NEGATIVE, ENTRY_FAILED };

struct dns_entry {
    struct dns *d;
    struct dns_entry *hnext;     /* hash chain (every state but FAILED) */
    struct list_node lru;        /* d->entries, least recently used first */
    struct list_node waiters;    /* struct dns_query.link */
    enum entry_state state;
    int err;                     /* NEGATIVE/FAILED: negative code */
    int ttl_s;                   /* POSITIVE/NEGATIVE: as cached */
    struct addr_list addrs;      /* POSITIVE: ports are 0 */
    uint64_t started_us, expires_us;
    vl_timer deliver;            /* answers the waiters outside c-ares */
    int answering;               /* deliver_waiters is on the stack: keep e */
    char msg[256];
    char name[];                 /* lower case */
};

/* A waiter, owned by dns.c from dns_resolve until its callback returns or
 * dns_cancel. */
enum query_state { QUERY_WAITING, QUERY_ANSWERING };

struct dns_query {
    struct dns_entry *e;
    struct list_node link;
    enum query_state state;
    int port;
    dns_cb *cb;
    dns_trace_cb *trace;
    void *data;
};

struct dns {
    vl_loop *loop;
    struct override *ov;
    size_t nov;
    ares_channel channel;
    vl_timer timer;              /* follows ares_timeout() */
    struct dns_entry **table;    /* hash of entries by name */
    size_t nbuckets, count;
    struct list_node entries;
    int closing;                 /* dns_free is destroying the channel */
    struct dns_stats stats;
    char servers[160];           /* for traces: "127.0.0.1:5353" */
};

/* --------------------------------------------------------- small helpers */

static int parse_ip(const char *s, int port, union vl_sockaddr *out)
{
    char buf[64];
    size_t n = strlen(s);
    memset(out, 0, sizeof(*out));
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    if (inet_pton(AF_INET, s, &out->in4.sin_addr) == 1) {
        out->in4.sin_family = AF_INET;
        out->in4.sin_port = htons((uint16_t)port);
        return 1;
    }
    if (inet_pton(AF_INET6, s, &out->in6.sin6_addr) == 1) {
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)port);
        return 1;
    }
    return 0;
}

static void set_port(struct addr_list *l, int port)
{
    for (int i = 0; i < l->n; i++) {
        if (l->addr[i].sa.sa_family == AF_INET6)
            l->addr[i].in6.sin6_port = htons((uint16_t)port);
        else
            l->addr[i].in4.sin_port = htons((uint16_t)port);
    }
}

/* "127.0.0.1, ::1" (no ports): for traces. */
static void format_addrs(const struct addr_list *l, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->n && used + 2 < len; i++) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = l->addr[i].sa.sa_family == AF_INET6
                            ? (const void *)&l->addr[i].in6.sin6_addr
                            : (const void *)&l->addr[i].in4.sin_addr;
        inet_ntop(l->addr[i].sa.sa_family, a, ip, sizeof(ip));
        vl_fmt(buf + used, len - used, "%s%s", i ? ", " : "", ip);
        used += strlen(buf + used);
    }
}

static void trace_line(dns_trace_cb *trace, void *data, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trace_line(dns_trace_cb *trace, void *data, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (!trace)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    trace(data, line);
}

/* Letters, digits, '-', '_' and '.', at most 253 characters (254 with a
 * final dot), no empty label: anything else never reaches the network. */
static int valid_host_name(const char *host)
{
    size_t n = strlen(host), label = 0;
    if (n == 0 || n > DNS_NAME_MAX + (host[n - 1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* RFC 6761 §6.3: "localhost" and names under it are loopback, answered
 * here without asking anyone. */
static int is_localhost(const char *host)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    if (n < 9 || strncasecmp(host + n - 9, "localhost", 9) != 0)
        return 0;
    return n == 9 || host[n - 10] == '.';
}

/* ------------------------------------------------------------ overrides */

/* "HOST:PORT:ADDR[,ADDR...]" as curl's --resolve; ADDR may be [v6]. */
static int parse_override(const char *spec, struct override *o, char *err, size_t errlen)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char *end;
    memset(o, 0, sizeof(*o));
    if (!c1 || !c2 || c1 == spec)
        goto bad;
    long port = strtol(c1 + 1, &end, 10);
    if (end != c2 || port <= 0 || port > 65535)
        goto bad;
    o->port = (int)port;
    char *list = vl_strdup(c2 + 1);
    if (!list)
        return -ENOMEM;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->addrs.n == CONNECT_MAX_ADDRS ||
            !parse_ip(tok, o->port, &o->addrs.addr[o->addrs.n])) {
            free(list);
            goto bad;
        }
        o->addrs.n++;
    }
    free(list);
    if (o->addrs.n == 0)
        goto bad;
    o->host = vl_strndup(spec, (size_t)(c1 - spec));
    return o->host ? 0 : -ENOMEM;
bad:
    vl_fmt(err, errlen, "--resolve: expected HOST:PORT:ADDR[,ADDR...], got '%s'", spec);
    return -VL_EUSAGE;
}

static const struct override *find_override(const struct dns *d, const char *host, int port)
{
    for (size_t i = 0; i < d->nov; i++)
        if (d->ov[i].port == port && strcasecmp(d->ov[i].host, host) == 0)
            return &d->ov[i];
    return NULL;
}

/* -------------------------------------------------- c-ares on the loop */

static void arm_timer(struct dns *d)
{
    struct timeval tv, *next = ares_timeout(d->channel, NULL, &tv);
    if (!next) {
        vl_timer_stop(&d->timer);
        return;
    }
    uint64_t us = (uint64_t)next->tv_sec * 1000000u + (uint64_t)next->tv_usec;
    timer_start_us(&d->timer, us + DNS_TIMER_SLACK_US);
}

static void on_ares_io(vl_loop *loop, int fd, int events, void *data)
{
    struct dns *d = data;
    (void)loop;
    ares_process_fd(d->channel, (events & VL_READ) ? fd : ARES_SOCKET_BAD,
                    (events & VL_WRITE) ? fd : ARES_SOCKET_BAD);
    arm_timer(d);
}

static void on_ares_timer(vl_loop *loop, vl_timer *t, void *data)
{
    struct dns *d = data;
    (void)loop;
    (void)t;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(d);
}

/* c-ares opens, watches and closes its sockets itself; it tells us here
 * what to watch, and always says "neither" before it closes one. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    int events = (readable ? VL_READ : 0) | (writable ? VL_WRITE : 0);
    if (events)
        vl_io_start(d->loop, fd, events, on_ares_io, d); /* on failure the lookup times out */
    else
        vl_io_stop(d->loop, fd);
}

/* ----------------------------------------------------------------- cache */

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

static struct dns_entry **table_slot(struct dns *d, const char *name)
{
    return &d->table[name_hash(name) & (d->nbuckets - 1)];
}

static struct dns_entry *table_find(struct dns *d, const char *name)
{
    for (struct dns_entry *e = *table_slot(d, name); e; e = e->hnext)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void table_remove(struct dns *d, struct dns_entry *e)
{
    for (struct dns_entry **p = table_slot(d, e->name); *p; p = &(*p)->hnext) {
        if (*p == e) {
            *p = e->hnext;
            e->hnext = NULL;
            d->count--;
            return;
        }
    }
}

/* Keep chains short; a failed growth only makes them longer. */
static void table_grow(struct dns *d)
{
    size_t n = d->nbuckets * 2;
    struct dns_entry **t = calloc(n, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        while (d->table[i]) {
            struct dns_entry *e = d->table[i];
            d->table[i] = e->hnext;
            size_t b = name_hash(e->name) & (n - 1);
            e->hnext = t[b];
            t[b] = e;
        }
    }
    free(d->table);
    d->table = t;
    d->nbuckets = n;
}

static void query_free(struct dns_query *q)
{
    list_remove(&q->link);
    free(q);
}

/* Frees e and its waiters (their callbacks do not run). */
static void entry_free(struct dns_entry *e)
{
    struct dns *d = e->d;
    struct list_node *n;
    if (e->state != ENTRY_FAILED)
        table_remove(d, e);
    vl_timer_stop(&e->deliver);
    while ((n = list_pop_head(&e->waiters)))
        free(container_of(n, struct dns_query, link));
    list_remove(&e->lru);
    free(e);
}

/* An answer still being handed to its waiters is neither stale nor
 * evictable until they all have it. */
static int entry_settled_idle(const struct dns_entry *e)
{
    return (e->state == ENTRY_POSITIVE || e->state == ENTRY_NEGATIVE) &&
           !vl_timer_active(&e->deliver) && !e->answering;
}

static int entry_expired(const struct dns_entry *e, uint64_t now_us)
{
    return entry_settled_idle(e) && now_us >= e->expires_us;
}

/* Bound the cache: drop expired or least recently used answers, looking
 * at a few entries only so one insert never costs a scan of the table. */
static void cache_trim(struct dns *d)
{
    struct list_node *n = d->entries.next;
    for (int looked = 0; d->count >= DNS_CACHE_MAX && n != &d->entries && looked < 16; looked++) {
        struct dns_entry *e = container_of(n, struct dns_entry, lru);
        n = n->next;
        if (entry_settled_idle(e)) {
            entry_free(e);
            d->stats.evicted++;
        }
    }
}

static void deliver_waiters(vl_loop *loop, vl_timer *t, void *data);

static struct dns_entry *entry_new(struct dns *d, const char *host)
{
    size_t n = strlen(host);
    struct dns_entry *e = calloc(1, sizeof(*e) + n + 1);
    if (!e)
        return NULL;
    for (size_t i = 0; i < n; i++)
        e->name[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] - 'A' + 'a' : host[i]);
    e->d = d;
    e->state = ENTRY_RESOLVING;
    e->started_us = loop_now_us(d->loop);
    list_init(&e->waiters);
    timer_init(&e->deliver, d->loop, deliver_waiters, e);
    cache_trim(d);
    if (d->count >= d->nbuckets)
        table_grow(d);
    struct dns_entry **slot = table_slot(d, e->name);
    e->hnext = *slot;
    *slot = e;
    d->count++;
    list_insert_tail(&d->entries, &e->lru);
    return e;
}

/* ------------------------------------------------------------ answers */

/* What a failed lookup is called, and whether it is cached.  c-ares ends a
 * getaddrinfo with the status of the last query of the last lookup method. */
static int settle_failure(struct dns_entry *e, int status)
{
    const char *what;
    int negative = 0;
    switch (status) {
    case ARES_ENOTFOUND: what = "no such host (NXDOMAIN)"; negative = 1; break;
    case ARES_ENODATA: what = "no addresses"; negative = 1; break;
    case ARES_ESERVFAIL: what = "server failure"; break;
    case ARES_ETIMEOUT: what = "timeout"; break;
    case ARES_EREFUSED: what = "query refused by the server"; break;
    case ARES_ECONNREFUSED: what = "server unreachable (connection refused)"; break;
    case ARES_EFORMERR: what = "server rejected the query (FORMERR)"; break;
    case ARES_ENOTIMP: what = "server does not implement the query (NOTIMP)"; break;
    case ARES_EBADRESP: what = "malformed response"; break;
    case ARES_EBADNAME: what = "invalid host name"; break;
    case ARES_EFILE: what = "hosts file unreadable"; break;
    case ARES_ENOMEM: what = "out of memory"; break;
    case ARES_ECANCELLED: what = "lookup cancelled"; break;
    default: what = ares_strerror(status); break;
    }
    vl_fmt(e->msg, sizeof(e->msg), "dns: %s '%s'", what, e->name);
    e->err = status == ARES_ENOMEM ? -ENOMEM : -VL_EDNS;
    if (negative) {
        e->state = ENTRY_NEGATIVE;
        e->ttl_s = DNS_NEGATIVE_TTL_S;
        e->expires_us = loop_now_us(e->d->loop) + (uint64_t)e->ttl_s * 1000000u;
        return 1;
    }
    table_remove(e->d, e);
    e->state = ENTRY_FAILED;
    e->d->stats.failures++;
    return 0;
}

static int clamp_ttl(int ttl)
{
    return ttl < DNS_TTL_FLOOR_S     ? DNS_TTL_FLOOR_S
           : ttl > DNS_TTL_CEILING_S ? DNS_TTL_CEILING_S
                                     : ttl;
}

/* Copies up to CONNECT_MAX_ADDRS distinct addresses in c-ares's order
 * (RFC 6724 sorted); the TTL is the smallest of the addresses' and CNAMEs'. */
static void settle_answer(struct dns_entry *e, const struct ares_addrinfo *res)
{
    int ttl = DNS_TTL_CEILING_S;
    e->addrs.n = 0;
    for (const struct ares_addrinfo_node *a = res->nodes; a && e->addrs.n < CONNECT_MAX_ADDRS;
         a = a->ai_next) {
        union vl_sockaddr sa;
        memset(&sa, 0, sizeof(sa));
        if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(sa.in4))
            memcpy(&sa.in4, a->ai_addr, sizeof(sa.in4));
        else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(sa.in6))
            memcpy(&sa.in6, a->ai_addr, sizeof(sa.in6));
        else
            continue;
        int dup = 0;
        for (int i = 0; i < e->addrs.n && !dup; i++)
            dup = memcmp(&e->addrs.addr[i], &sa, sizeof(sa)) == 0;
        if (dup)
            continue;
        e->addrs.addr[e->addrs.n++] = sa;
        if (a->ai_ttl < ttl)
            ttl = a->ai_ttl;
    }
    for (const struct ares_addrinfo_cname *c = res->cnames; c; c = c->next)
        if (c->ttl < ttl)
            ttl = c->ttl;
    set_port(&e->addrs, 0);
    e->ttl_s = clamp_ttl(ttl);
    e->state = ENTRY_POSITIVE;
    e->expires_us = loop_now_us(e->d->loop) + (uint64_t)e->ttl_s * 1000000u;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_entry *e = arg;
    (void)timeouts;
    if (e->d->closing || status == ARES_EDESTRUCTION) {
        ares_freeaddrinfo(res); /* dns_free frees the entries */
        return;
    }
    if (status == ARES_SUCCESS && res)
        settle_answer(e, res);
    if (e->state == ENTRY_RESOLVING || e->addrs.n == 0)
        settle_failure(e, status == ARES_SUCCESS ? ARES_ENODATA : status);
    ares_freeaddrinfo(res);
    /* Answer the waiters from the loop's timer phase, outside c-ares. */
    timer_start_us(&e->deliver, 0);
}

/* The result of a settled entry for one port: 1 and addrs, or err and msg. */
static int entry_result(const struct dns_entry *e, int port, struct addr_list *addrs, char *msg)
{
    if (e->state == ENTRY_POSITIVE) {
        *addrs = e->addrs;
        set_port(addrs, port);
        return 1;
    }
    vl_fmt(msg, 256, "%s", e->msg);
    return e->err;
}

static void trace_result(const struct dns_entry *e, int cached, dns_trace_cb *trace, void *data)
{
    char list[256];
    uint64_t now_us = loop_now_us(e->d->loop);
    double ms = (double)(now_us - e->started_us) / 1000.0;
    long left_s = e->expires_us > now_us ? (long)((e->expires_us - now_us + 999999) / 1000000u) : 0;
    if (!trace)
        return;
    if (e->state == ENTRY_POSITIVE) {
        format_addrs(&e->addrs, list, sizeof(list));
        if (cached)
            trace_line(trace, data, "dns: %s -> %s (cached, expires in %ld s)", e->name, list,
                       left_s);
        else
            trace_line(trace, data, "dns: %s -> %s (ttl %d s, %.1f ms)", e->name, list, e->ttl_s,
                       ms);
    } else if (e->state == ENTRY_NEGATIVE && cached) {
        trace_line(trace, data, "%s (cached, expires in %ld s)", e->msg, left_s);
    } else {
        if (e->state == ENTRY_NEGATIVE)
            trace_line(trace, data, "%s (after %.1f ms, cached %d s)", e->msg, ms, e->ttl_s);
        else
            trace_line(trace, data, "%s (after %.1f ms, not cached)", e->msg, ms);
    }
}

static void deliver_waiters(vl_loop *loop, vl_timer *t, void *data)
{
    struct dns_entry *e = data;
    struct list_node *n;
    (void)loop;
    (void)t;
    e->answering = 1; /* a callback may resolve again, or start other lookups */
    while ((n = list_pop_head(&e->waiters))) {
        struct dns_query *q = container_of(n, struct dns_query, link);
        struct addr_list addrs;
        char msg[256] = "";
        int rc = entry_result(e, q->port, &addrs, msg);
        trace_result(e, 0, q->trace, q->data);
        q->state = QUERY_ANSWERING; /* dns_cancel(q) from the callback is a no-op */
        q->cb(q->data, rc < 0 ? rc : 0, rc < 0 ? NULL : &addrs, rc < 0 ? msg : NULL);
        free(q);
    }
    e->answering = 0;
    if (e->state == ENTRY_FAILED)
        entry_free(e);
}

/* ------------------------------------------------------------- lifecycle */

static void describe_servers(struct dns *d)
{
    struct ares_addr_port_node *list = NULL;
    size_t used = 0;
    vl_fmt(d->servers, sizeof(d->servers), "(none)");
    if (ares_get_servers_ports(d->channel, &list) != ARES_SUCCESS)
        return;
    for (struct ares_addr_port_node *s = list; s && used + 2 < sizeof(d->servers); s = s->next) {
        char ip[INET6_ADDRSTRLEN];
        int port = s->udp_port ? s->udp_port : 53;
        inet_ntop(s->family, &s->addr, ip, sizeof(ip));
        vl_fmt(d->servers + used, sizeof(d->servers) - used,
               s->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d", used ? "," : "", ip, port);
        used += strlen(d->servers + used);
    }
    ares_free_data(list);
}

static int init_ares(struct dns *d, const vl_client_opts *opts, char *err, size_t errlen)
{
    struct ares_options o;
    char lookups[] = "fb"; /* the hosts file, then DNS */
    memset(&o, 0, sizeof(o));
    /* Without NOCHECKRESP, c-ares 1.18 drops SERVFAIL/REFUSED/NOTIMP answers,
     * skips the server and, with no server left, ends the lookup with its
     * initial status, ARES_ECONNREFUSED: "connection refused" for a server
     * that answered.  With it the answer's rcode is reported as it is; the
     * cost is no failover to the next server on those rcodes (timeouts and
     * unreachable servers still fail over). */
    o.flags = ARES_FLAG_NOCHECKRESP;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = DNS_TRIES;
    o.lookups = lookups;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = d;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
               ARES_OPT_SOCK_STATE_CB;
    /* ares_library_init is needed on Windows only, and is not thread-safe. */
    int rc = ares_init_options(&d->channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        d->channel = NULL;
        vl_fmt(err, errlen, "dns: cannot start the resolver: %s", ares_strerror(rc));
        return rc == ARES_ENOMEM ? -ENOMEM : -VL_EDNS;
    }
    if (opts->dns_servers) {
        rc = *opts->dns_servers ? ares_set_servers_ports_csv(d->channel, opts->dns_servers)
                                : ARES_EBADSTR;
        if (rc != ARES_SUCCESS) {
            vl_fmt(err, errlen, "--dns-servers: expected ADDR[:PORT][,ADDR[:PORT]...], got '%s'",
                   opts->dns_servers);
            return rc == ARES_ENOMEM ? -ENOMEM : -VL_EUSAGE;
        }
    }
    describe_servers(d);
    return 0;
}

int dns_new(vl_loop *loop, const vl_client_opts *opts, struct dns **out, char *err, size_t errlen)
{
    struct dns *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->loop = loop;
    list_init(&d->entries);
    timer_init(&d->timer, loop, on_ares_timer, d);
    d->nbuckets = 64;
    d->table = calloc(d->nbuckets, sizeof(*d->table));
    if (opts->nresolve)
        d->ov = calloc(opts->nresolve, sizeof(*d->ov));
    if (!d->table || (opts->nresolve && !d->ov)) {
        dns_free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < opts->nresolve; i++) {
        int rc = parse_override(opts->resolve[i], &d->ov[i], err, errlen);
        if (rc < 0) {
            dns_free(d);
            return rc;
        }
        d->nov++;
    }
    int rc = init_ares(d, opts, err, errlen);
    if (rc < 0) {
        dns_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void dns_free(struct dns *d)
{
    if (!d)
        return;
    d->closing = 1;
    /* Ends every lookup (callbacks see ARES_EDESTRUCTION and do nothing) and
     * stops watching each socket before closing it. */
    if (d->channel)
        ares_destroy(d->channel);
    vl_timer_stop(&d->timer);
    while (!list_empty(&d->entries))
        entry_free(container_of(d->entries.next, struct dns_entry, lru));
    for (size_t i = 0; i < d->nov; i++)
        free(d->ov[i].host);
    free(d->ov);
    free(d->table);
    free(d);
}

void dns_get_stats(const struct dns *d, struct dns_stats *out) { *out = d->stats; }

/* ------------------------------------------------------------- resolving */

/* Answers known without a lookup: overrides, literals, localhost. */
static int resolve_local(struct dns *d, const char *host, int port, struct addr_list *addrs,
                         dns_trace_cb *trace, void *data)
{
    char list[256];
    const struct override *o = find_override(d, host, port);
    if (o) {
        *addrs = o->addrs;
        format_addrs(addrs, list, sizeof(list));
        trace_line(trace, data, "dns: %s:%d -> %s (--resolve)", host, port, list);
        return 1;
    }
    if (parse_ip(host, port, &addrs->addr[0])) {
        addrs->n = 1;
        return 1;
    }
    if (is_localhost(host)) {
        /* v6 first as getaddrinfo orders them; happy eyeballs then covers a
         * server listening on 127.0.0.1 only. */
        parse_ip("::1", port, &addrs->addr[0]);
        parse_ip("127.0.0.1", port, &addrs->addr[1]);
        addrs->n = 2;
        trace_line(trace, data, "dns: %s -> ::1, 127.0.0.1 (RFC 6761 localhost, no lookup)", host);
        return 1;
    }
    return 0;
}

/* The entry for host, fresh or just started; NULL when out of memory. */
static struct dns_entry *lookup_entry(struct dns *d, const char *host, dns_trace_cb *trace,
                                      void *data)
{
    char key[DNS_NAME_MAX + 2];
    size_t n = strlen(host);
    for (size_t i = 0; i <= n; i++)
        key[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] - 'A' + 'a' : host[i]);
    struct dns_entry *e = table_find(d, key);
    if (e && entry_expired(e, loop_now_us(d->loop))) {
        d->stats.expired++;
        entry_free(e);
        e = NULL;
    }
    if (e) {
        list_remove(&e->lru);
        list_insert_tail(&d->entries, &e->lru);
        if (e->state == ENTRY_RESOLVING) {
            d->stats.joined++;
            trace_line(trace, data, "dns: %s: lookup in flight, waiting for it", e->name);
        } else {
            d->stats.hits++;
        }
        return e;
    }
    e = entry_new(d, host);
    if (!e)
        return NULL;
    d->stats.lookups++;
    trace_line(trace, data, "dns: looking up %s (A+AAAA; hosts file, then %s; %d ms x %d tries)",
               e->name, d->servers, DNS_TIMEOUT_MS, DNS_TRIES);
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(d->channel, e->name, NULL, &hints, on_addrinfo, e);
    arm_timer(d);
    return e;
}

int dns_resolve(struct dns *d, const char *host, int port, struct addr_list *addrs,
                dns_cb *cb, dns_trace_cb *trace, void *data, struct dns_query **q, char *msg)
{
    if (q)
        *q = NULL;
    memset(addrs, 0, sizeof(*addrs));
    if (resolve_local(d, host, port, addrs, trace, data))
        return 1;
    if (!valid_host_name(host)) {
        vl_fmt(msg, 256, "dns: invalid host name '%.200s'", host);
        return -VL_EDNS;
    }
    struct dns_entry *e = lookup_entry(d, host, trace, data);
    if (!e) {
        vl_fmt(msg, 256, "dns: out of memory resolving '%s'", host);
        return -ENOMEM;
    }
    if (e->state != ENTRY_RESOLVING) {
        /* Cached, or answered while c-ares was called (the hosts file). */
        int cached = !vl_timer_active(&e->deliver);
        trace_result(e, cached, trace, data);
        int rc = entry_result(e, port, addrs, msg);
        if (!cached && list_empty(&e->waiters)) {
            vl_timer_stop(&e->deliver);
            if (e->state == ENTRY_FAILED)
                entry_free(e);
        }
        return rc;
    }
    struct dns_query *w = calloc(1, sizeof(*w));
    if (!w) {
        vl_fmt(msg, 256, "dns: out of memory resolving '%s'", host);
        return -ENOMEM;
    }
    w->e = e;
    w->port = port;
    w->cb = cb;
    w->trace = trace;
    w->data = data;
    w->state = QUERY_WAITING;
    list_insert_tail(&e->waiters, &w->link);
    if (q)
        *q = w;
    return 0;
}

void dns_cancel(struct dns_query *q)
{
    /* The lookup goes on for the other waiters, and fills the cache. */
    if (q && q->state == QUERY_WAITING)
        query_free(q);
}
