/* tls.c: the TLS layer of a connection, with mbedTLS 2.28.
 *
 * Owns, per client (struct tls_ctx): one ssl_config, one entropy source and
 * ctr_drbg, one parsed CA chain, and a bounded LRU cache of TLS sessions
 * keyed by the caller's session key ("host:port").  Per connection (struct
 * tls_conn): one mbedtls_ssl_context and a few words; nothing else.
 *
 * Never blocks: the bio callbacks turn EAGAIN into WANT_READ/WANT_WRITE,
 * which the conn ops turn into -EAGAIN with conn->want set.  TLS may want to
 * write while the caller reads and the other way round, so callers must
 * always wait for conn->want, not for the direction they had in mind.
 *
 * Where mbedTLS 2.28 falls short, this file fills in:
 *  - IP-literal hosts: no SNI (RFC 6066 §3 forbids literal addresses there)
 *    and the certificate must carry a matching iPAddress subjectAltName
 *    (RFC 6125 §6.2.1); mbedTLS only checks DNS names, so verify_cb does it.
 *  - Telling a resumed handshake from a full one (not in the public API):
 *    a resumed session keeps the master secret of the one we offered.
 *  - A clear error for a record cut short by EOF (mbedTLS reports 0).
 * Those read a few fields of mbedTLS 2.28's public structs (ssl.in_left,
 * session->master, session->peer_cert), each in one helper below.
 *
 * Knows nothing of HTTP. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "tls.h"

#if MBEDTLS_VERSION_NUMBER < 0x02100000 || MBEDTLS_VERSION_NUMBER >= 0x03000000
#error "tls.c is written for mbedTLS 2.16 .. 2.28"
#endif

/* Sessions kept per client: one per host:port is all resumption needs, and
 * 1024 hosts cover a crawl's working set; the least recently used goes. */
#define SESSION_CACHE_MAX 1024
#define SESSION_BUCKETS 1024 /* power of two */
/* writev gathers small iov pieces into one record of at most this many bytes
 * (one record and one send() instead of one per piece). */
#define COALESCE_BYTES 4096

/* ------------------------------------------------------------ structs */

struct session_entry {
    struct list_node lru;       /* in ctx->lru, most recently used last */
    struct session_entry *next; /* hash chain */
    uint32_t hash;
    mbedtls_ssl_session session; /* owned; peer certificate dropped */
    char key[];
};

struct tls_ctx {
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    int *suites; /* ciphersuite list the config points to */
    int have_ca;
    int insecure;
    struct session_entry *buckets[SESSION_BUCKETS];
    struct list_node lru;
    size_t nsessions;
};

enum tls_state { TLS_HANDSHAKING, TLS_OPEN, TLS_EOF, TLS_FAILED };

/* Per connection.  Owned by conn->tls; freed by tls_close. */
struct tls_conn {
    mbedtls_ssl_context ssl;
    struct tls_ctx *ctx;
    enum tls_state state;
    int sys_errno;        /* errno of the last failed send/recv */
    int mismatch_noted;   /* verify_cb wrote the hostname message */
    size_t pending_write; /* bytes of a record mbedTLS holds after WANT_WRITE */
    uint64_t offered_tag; /* first bytes of the offered session's master secret */
    unsigned char ip[16]; /* the host as an address, for IP literals */
    int ip_len;           /* 4, 16, or 0 for a DNS name */
    const char *key;      /* session key, in names[] */
    struct conn *below;   /* TLS inside TLS (a target through an https proxy): the
                             proxy's TLS, owned, sharing the fd; NULL: the socket */
    char names[];         /* host '\0' key '\0' */
};

static const char *alpn_protocols[] = {"http/1.1", NULL};
/* RFC 9113 §3.2: h2 offered first; the server picks (--http2, the default). */
static const char *alpn_h2_protocols[] = {"h2", "http/1.1", NULL};

/* mbedTLS 2.28 offers secp521r1 first, and a TLS 1.2 server that honours the
 * client's order (nginx's default) then spends ~5 ms of our CPU per full
 * handshake on it.  X25519 and P-256 first; weak and rare curves dropped. */
static const mbedtls_ecp_group_id curve_preference[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    MBEDTLS_ECP_DP_CURVE25519,
#endif
#if defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED)
    MBEDTLS_ECP_DP_SECP256R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    MBEDTLS_ECP_DP_SECP384R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
    MBEDTLS_ECP_DP_SECP521R1,
#endif
    MBEDTLS_ECP_DP_NONE,
};

/* AES-GCM (AES-NI) before ChaCha20 (software in mbedTLS), forward secret
 * suites first; then the rest of mbedTLS's defaults, for odd servers. */
static const int suite_preference[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};

/* --------------------------------------------------------- small helpers */

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void mbed_errstr(int ret, char *buf, size_t len)
{
    mbedtls_strerror(ret, buf, len);
}

/* The first 8 bytes of a master secret identify a session well enough to
 * tell whether the server resumed the one we offered. */
static uint64_t master_tag(const mbedtls_ssl_session *s)
{
    uint64_t tag;
    memcpy(&tag, s->master, sizeof(tag));
    return tag;
}

/* A verified connection never needs the peer's certificate again (we do not
 * renegotiate), and with MBEDTLS_SSL_KEEP_PEER_CERTIFICATE (Debian's build)
 * the parsed chain would cost a few KiB per connection and per cached
 * session.  mbedTLS 2.28 has no API for this; the field is public there. */
static void drop_peer_cert(mbedtls_ssl_session *s)
{
#if defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE)
    if (s && s->peer_cert) {
        mbedtls_x509_crt_free(s->peer_cert);
        mbedtls_free(s->peer_cert);
        s->peer_cert = NULL;
    }
#else
    (void)s;
#endif
}

/* ------------------------------------------------------ session cache */

static struct session_entry **bucket_of(struct tls_ctx *ctx, uint32_t hash)
{
    return &ctx->buckets[hash & (SESSION_BUCKETS - 1)];
}

static struct session_entry *cache_find(struct tls_ctx *ctx, const char *key)
{
    uint32_t h = hash_key(key);
    for (struct session_entry *e = *bucket_of(ctx, h); e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void cache_remove(struct tls_ctx *ctx, struct session_entry *e)
{
    struct session_entry **pp = bucket_of(ctx, e->hash);
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    list_remove(&e->lru);
    mbedtls_ssl_session_free(&e->session);
    free(e);
    ctx->nsessions--;
}

static void cache_forget(struct tls_ctx *ctx, const char *key)
{
    struct session_entry *e = cache_find(ctx, key);
    if (e)
        cache_remove(ctx, e);
}

/* Remember the session of a finished handshake under key (best effort: out
 * of memory only costs a later full handshake). */
static void cache_save(struct tls_ctx *ctx, const char *key, const mbedtls_ssl_context *ssl)
{
    struct session_entry *e = cache_find(ctx, key);
    if (!e) {
        if (ctx->nsessions >= SESSION_CACHE_MAX)
            cache_remove(ctx, container_of(ctx->lru.next, struct session_entry, lru));
        size_t klen = strlen(key);
        e = calloc(1, sizeof(*e) + klen + 1);
        if (!e)
            return;
        memcpy(e->key, key, klen + 1);
        e->hash = hash_key(key);
        mbedtls_ssl_session_init(&e->session);
        struct session_entry **b = bucket_of(ctx, e->hash);
        e->next = *b;
        *b = e;
        list_insert_tail(&ctx->lru, &e->lru);
        ctx->nsessions++;
    } else {
        list_remove(&e->lru);
        list_insert_tail(&ctx->lru, &e->lru);
    }
    /* mbedtls_ssl_session_copy frees what e->session held before. */
    if (mbedtls_ssl_get_session(ssl, &e->session) != 0) {
        cache_remove(ctx, e);
        return;
    }
    drop_peer_cert(&e->session);
}

/* --------------------------------------------------------------- CA load */

static const char *const system_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Gentoo */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL, CentOS */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS, OpenBSD */
    "/usr/local/etc/openssl/cert.pem",                   /* Homebrew (Intel) */
    "/opt/homebrew/etc/openssl@3/cert.pem",              /* Homebrew (arm64) */
    "/usr/local/share/certs/ca-root-nss.crt",            /* FreeBSD */
};
static const char *const system_ca_dirs[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mbedTLS skips certificates it cannot parse inside a bundle (returning how
 * many) as long as one parsed: system bundles carry a few it does not know.
 * A file where nothing parses is an error. */
static int load_ca_file(struct tls_ctx *ctx, const char *path, const char *what, char *err,
                        size_t errlen)
{
    if (access(path, R_OK) != 0) {
        vl_fmt(err, errlen, "tls: cannot load CA file %s%s: %s", path, what, strerror(errno));
        return -VL_ETLS;
    }
    int ret = mbedtls_x509_crt_parse_file(&ctx->ca, path);
    if (ret < 0) {
        char msg[160];
        mbed_errstr(ret, msg, sizeof(msg));
        vl_fmt(err, errlen, "tls: cannot load CA file %s%s: %s", path, what, msg);
        return -VL_ETLS;
    }
    ctx->have_ca = 1;
    return 0;
}

/* What load_ca_dir has seen: files by inode, certificates by content. */
struct seen {
    uint64_t *v;
    size_t n, cap;
};

static int seen_add(struct seen *s, uint64_t x)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == x)
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        uint64_t *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return 1; /* out of memory: treat as new, costs a duplicate at worst */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 1;
}

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a 64 */
    while (n--)
        h = (h ^ *p++) * 1099511628211u;
    return h;
}

/* Every certificate in the files of dir, each once.  A directory such as
 * /etc/ssl/certs holds each CA three times (NAME.pem, its HASH.0 link, and the
 * bundle file); mbedtls_x509_crt_parse_path would keep all three copies
 * (1.7 MB and 20 ms instead of 0.5 MB and 6 ms on Debian).  Files that hold
 * no certificate (READMEs, CRLs) are skipped, as OpenSSL does. */
static int load_ca_dir(struct tls_ctx *ctx, const char *dir, const char *what, char *err,
                       size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        vl_fmt(err, errlen, "tls: cannot load CA directory %s%s: %s", dir, what, strerror(errno));
        return -VL_ETLS;
    }
    struct seen files = {0}, certs = {0};
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        vl_fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
            !seen_add(&files, ((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino))
            continue;
        mbedtls_x509_crt tmp;
        mbedtls_x509_crt_init(&tmp);
        if (mbedtls_x509_crt_parse_file(&tmp, path) >= 0)
            for (mbedtls_x509_crt *c = &tmp; c && c->version; c = c->next)
                if (seen_add(&certs, hash_bytes(c->raw.p, c->raw.len)) &&
                    mbedtls_x509_crt_parse_der(&ctx->ca, c->raw.p, c->raw.len) == 0)
                    ctx->have_ca = 1;
        mbedtls_x509_crt_free(&tmp);
    }
    closedir(d);
    free(files.v);
    free(certs.v);
    return 0;
}

/* $SSL_CERT_DIR is a colon-separated list, as OpenSSL reads it. */
static int load_ca_dir_list(struct tls_ctx *ctx, const char *list, char *err, size_t errlen)
{
    char dir[4096];
    while (*list) {
        size_t n = strcspn(list, ":");
        if (n > 0 && n < sizeof(dir)) {
            memcpy(dir, list, n);
            dir[n] = '\0';
            int ret = load_ca_dir(ctx, dir, " (from SSL_CERT_DIR)", err, errlen);
            if (ret)
                return ret;
        }
        list += n + (list[n] == ':');
    }
    return 0;
}

/* CA sources, first found wins: opts->cacert; $SSL_CERT_FILE; $SSL_CERT_DIR;
 * the system bundle; the system directory.  Finding none is
 * not an error here (plain-HTTP clients need no CA): handshakes then fail
 * with a message that says so. */
static int load_ca(struct tls_ctx *ctx, const char *cacert, char *err, size_t errlen)
{
    if (cacert && *cacert)
        return load_ca_file(ctx, cacert, "", err, errlen);
    /* The file wins: a directory is parsed whole, not looked up by hash as
     * OpenSSL does, so reading both would mostly parse duplicates. */
    const char *env_file = getenv("SSL_CERT_FILE");
    if (env_file && *env_file)
        return load_ca_file(ctx, env_file, " (from SSL_CERT_FILE)", err, errlen);
    const char *env_dir = getenv("SSL_CERT_DIR");
    if (env_dir && *env_dir)
        return load_ca_dir_list(ctx, env_dir, err, errlen);
    for (size_t i = 0; i < ARRAY_LEN(system_ca_files); i++)
        if (is_file(system_ca_files[i]))
            return load_ca_file(ctx, system_ca_files[i], "", err, errlen);
    for (size_t i = 0; i < ARRAY_LEN(system_ca_dirs); i++)
        if (is_dir(system_ca_dirs[i]))
            return load_ca_dir(ctx, system_ca_dirs[i], "", err, errlen);
    return 0;
}

/* ------------------------------------------------------------------ bio */

/* The layer below is a connection of its own (the proxy's TLS): its
 * -EAGAIN says which way it waits; its failures keep their message. */
static int below_result(struct tls_conn *t, ssize_t n, int failed)
{
    if (n >= 0)
        return (int)n;
    if (n == -EAGAIN)
        return t->below->want == VL_WRITE ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_SSL_WANT_READ;
    t->sys_errno = n > -VL_EBASE ? (int)-n : EPROTO;
    return failed;
}

static int bio_send(void *data, const unsigned char *buf, size_t len)
{
    struct conn *c = data;
    struct tls_conn *t = c->tls;
    if (t->below) {
        struct iovec iov = {(void *)buf, len};
        return below_result(t, t->below->ops->writev(t->below, &iov, 1),
                            MBEDTLS_ERR_NET_SEND_FAILED);
    }
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        t->sys_errno = errno;
        if (errno == EPIPE || errno == ECONNRESET)
            return MBEDTLS_ERR_NET_CONN_RESET;
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int bio_recv(void *data, unsigned char *buf, size_t len)
{
    struct conn *c = data;
    struct tls_conn *t = c->tls;
    if (t->below)
        return below_result(t, t->below->ops->read(t->below, buf, len),
                            MBEDTLS_ERR_NET_RECV_FAILED);
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_READ;
        t->sys_errno = errno;
        if (errno == ECONNRESET)
            return MBEDTLS_ERR_NET_CONN_RESET;
        return MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

/* WANT_READ/WANT_WRITE -> -EAGAIN with c->want; anything else -> 0. */
static int wait_for(struct conn *c, int ret)
{
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
        c->want = VL_READ;
        return -EAGAIN;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        c->want = VL_WRITE;
        return -EAGAIN;
    }
    return 0;
}

/* ----------------------------------------------------- certificate names */

static int san_is_ip(const mbedtls_x509_buf *b)
{
    return b->tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7); /* GeneralName iPAddress */
}

static int san_is_dns(const mbedtls_x509_buf *b)
{
    return b->tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2); /* GeneralName dNSName */
}

/* RFC 6125 §6.2.1: an IP reference identity matches an iPAddress SAN of the
 * same octets; the CN is never consulted for addresses. */
static int cert_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, int ip_len)
{
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s; s = s->next)
        if (s->buf.p && san_is_ip(&s->buf) && s->buf.len == (size_t)ip_len &&
            memcmp(s->buf.p, ip, (size_t)ip_len) == 0)
            return 1;
    return 0;
}

static void append(char *buf, size_t len, size_t *used, const char *s, size_t n)
{
    if (*used + 2 >= len)
        return;
    if (*used > 0) {
        buf[(*used)++] = ',';
        buf[(*used)++] = ' ';
    }
    if (n > len - 1 - *used)
        n = len - 1 - *used;
    memcpy(buf + *used, s, n);
    *used += n;
    buf[*used] = '\0';
}

/* The names a certificate is for, for messages: its DNS and IP SANs, or its
 * subject CN when it has no SAN. */
static void cert_names(const mbedtls_x509_crt *crt, char *buf, size_t len)
{
    size_t used = 0;
    int shown = 0;
    buf[0] = '\0';
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
        char ip[INET6_ADDRSTRLEN];
        if (shown == 4) {
            append(buf, len, &used, "...", 3);
            return;
        }
        if (san_is_dns(&s->buf)) {
            append(buf, len, &used, (const char *)s->buf.p, s->buf.len);
            shown++;
        } else if (san_is_ip(&s->buf) && (s->buf.len == 4 || s->buf.len == 16)) {
            inet_ntop(s->buf.len == 4 ? AF_INET : AF_INET6, s->buf.p, ip, sizeof(ip));
            append(buf, len, &used, ip, strlen(ip));
            shown++;
        }
    }
    if (shown)
        return;
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next)
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            append(buf, len, &used, (const char *)n->val.p, n->val.len);
            return;
        }
    append(buf, len, &used, "no name", 7);
}

/* Called by mbedTLS for each certificate of the chain, leaf last (depth 0). */
static int verify_cb(void *data, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct conn *c = data;
    struct tls_conn *t = c->tls;
    if (depth != 0)
        return 0;
    if (t->ip_len && !cert_has_ip(crt, t->ip, t->ip_len))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    if (*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        /* The certificate is gone once the handshake fails: name it now. */
        char names[160];
        cert_names(crt, names, sizeof(names));
        vl_fmt(c->err, sizeof(c->err), "tls: hostname mismatch (cert for %s, wanted %s)", names,
               t->names);
        t->mismatch_noted = 1;
    }
    return 0;
}

/* --------------------------------------------------------------- errors */

static void verify_message(struct conn *c, struct tls_conn *t)
{
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        vl_fmt(c->err, sizeof(c->err), "tls: certificate not trusted (unknown CA)");
    else if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        vl_fmt(c->err, sizeof(c->err), "tls: certificate expired");
    else if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        vl_fmt(c->err, sizeof(c->err), "tls: certificate not yet valid");
    else if (flags & MBEDTLS_X509_BADCERT_REVOKED)
        vl_fmt(c->err, sizeof(c->err), "tls: certificate revoked");
    else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        if (!t->mismatch_noted)
            vl_fmt(c->err, sizeof(c->err), "tls: hostname mismatch (wanted %s)", t->names);
    } else {
        char info[200];
        int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
        while (n > 0 && (info[n - 1] == '\n' || info[n - 1] == ' '))
            info[--n] = '\0';
        for (char *p = info; *p; p++)
            if (*p == '\n')
                *p = ';';
        vl_fmt(c->err, sizeof(c->err), "tls: certificate verify failed: %s",
               n > 0 ? info : "unknown reason");
    }
}

/* RFC 5246 §7.2 names of the alerts servers send most. */
static const struct {
    unsigned code;
    const char *name;
} alert_names[] = {
    {10, "unexpected_message"},
    {20, "bad_record_mac"},
    {40, "handshake_failure"},
    {42, "bad_certificate"},
    {47, "illegal_parameter"},
    {48, "unknown_ca"},
    {50, "decode_error"},
    {70, "protocol_version"},
    {71, "insufficient_security"},
    {80, "internal_error"},
    {112, "unrecognized_name"},
    {116, "certificate_required"},
    {120, "no_application_protocol"},
};

static const char *alert_name(unsigned code)
{
    for (size_t i = 0; i < ARRAY_LEN(alert_names); i++)
        if (alert_names[i].code == code)
            return alert_names[i].name;
    return "alert";
}

/* A record cut short by EOF: mbedTLS had read part of it (ssl.in_left counts
 * the bytes of the current record read so far; 0 between records). */
static int eof_mid_record(const struct tls_conn *t)
{
    return t->ssl.in_left > 0;
}

/* Format c->err for a failed mbedTLS call made while doing `phase`. */
static void describe_failure(struct conn *c, struct tls_conn *t, int ret, const char *phase)
{
    char msg[160];
    switch (ret) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        verify_message(c, t);
        return;
    case MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED:
        vl_fmt(c->err, sizeof(c->err),
               "tls: no CA certificates found (use --cacert, SSL_CERT_FILE or -k)");
        return;
    case MBEDTLS_ERR_NET_CONN_RESET:
        vl_fmt(c->err, sizeof(c->err), "tls: connection reset by peer%s%s",
               *phase ? " during " : "", phase);
        return;
    case MBEDTLS_ERR_SSL_CONN_EOF:
        if (eof_mid_record(t))
            vl_fmt(c->err, sizeof(c->err), "tls: truncated record (peer closed the connection%s%s)",
                   *phase ? " during " : "", phase);
        else
            vl_fmt(c->err, sizeof(c->err), "tls: connection closed by peer%s%s",
                   *phase ? " during " : "", phase);
        return;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        if (t->below && t->below->err[0]) {
            vl_fmt(c->err, sizeof(c->err), "tls: through the proxy: %s", t->below->err);
            return;
        }
        vl_fmt(c->err, sizeof(c->err), "tls: %s: %s (%s)",
               ret == MBEDTLS_ERR_NET_SEND_FAILED ? "send" : "recv", strerror(t->sys_errno),
               c->peer);
        return;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: {
        /* ssl.in_msg[1] is the alert's description (RFC 5246 §7.2). */
        unsigned code = t->ssl.in_msg ? t->ssl.in_msg[1] : 0u;
        vl_fmt(c->err, sizeof(c->err), "tls: %s failed: peer sent fatal alert %u (%s)",
               *phase ? phase : "connection", code, alert_name(code));
        return;
    }
    case MBEDTLS_ERR_SSL_INVALID_RECORD:
        /* An https:// URL for a plain-HTTP port: the "record" is a status line
         * (the record header sits in ssl.in_hdr). */
        if (t->ssl.in_hdr && memcmp(t->ssl.in_hdr, "HTTP/", 5) == 0) {
            vl_fmt(c->err, sizeof(c->err),
                   "tls: %s failed: the server answered in plain HTTP, not TLS", phase);
            return;
        }
        break;
    default:
        break;
    }
    mbed_errstr(ret, msg, sizeof(msg));
    vl_fmt(c->err, sizeof(c->err), "tls: %s failed: %s", *phase ? phase : "connection", msg);
}

/* ------------------------------------------------------------ conn ops */

static int handshake_done(struct conn *c, struct tls_conn *t)
{
    const mbedtls_ssl_session *s = mbedtls_ssl_get_session_pointer(&t->ssl);
    c->tls_resumed = t->offered_tag != 0 && s && master_tag(s) == t->offered_tag;
    t->state = TLS_OPEN;
    drop_peer_cert(t->ssl.session);
    cache_save(t->ctx, t->key, &t->ssl);
    return 0;
}

static int tls_handshake(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (t->state != TLS_HANDSHAKING)
        return t->state == TLS_FAILED ? -VL_ETLS : 0;
    int ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == 0)
        return handshake_done(c, t);
    if (wait_for(c, ret))
        return -EAGAIN;
    t->state = TLS_FAILED;
    /* RFC 5246 §7.2: a session whose handshake failed must not be resumed. */
    cache_forget(t->ctx, t->key);
    if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED) {
        vl_fmt(c->err, sizeof(c->err), "tls: out of memory");
        return -ENOMEM;
    }
    describe_failure(c, t, ret, "handshake");
    return -VL_ETLS;
}

/* Returns decrypted bytes, 0 at EOF (close_notify, or the peer closed the
 * TCP connection between records: HTTP decides whether the body was whole),
 * -EAGAIN with c->want, or -VL_ETLS with c->err. */
static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
    struct tls_conn *t = c->tls;
    if (t->state == TLS_EOF)
        return 0;
    if (t->state != TLS_OPEN) {
        vl_fmt(c->err, sizeof(c->err), "tls: read on a connection without a handshake");
        return -VL_ETLS;
    }
    if (len == 0)
        return 0;
    int ret = mbedtls_ssl_read(&t->ssl, buf, len);
    if (ret > 0)
        return ret;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        /* mbedtls_ssl_read maps EOF to 0 even inside a record. */
        if (ret == 0 && eof_mid_record(t)) {
            describe_failure(c, t, MBEDTLS_ERR_SSL_CONN_EOF, "");
            t->state = TLS_FAILED;
            return -VL_ETLS;
        }
        t->state = TLS_EOF;
        return 0;
    }
    /* mbedtls_ssl_read hands out decrypted data it holds before touching the
     * socket, and reads the socket one record at a time, so -EAGAIN here
     * never strands data the fd's readiness would not announce. */
    if (wait_for(c, ret))
        return -EAGAIN;
    describe_failure(c, t, ret, "");
    t->state = TLS_FAILED;
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -VL_ETLS;
}

/* Gather iov pieces from (*i, *off) into buf, up to cap bytes, without
 * splitting a piece; returns the byte count. */
static size_t gather(unsigned char *buf, size_t cap, const struct iovec *iov, int iovcnt, int i,
                     size_t off)
{
    size_t n = 0;
    for (; i < iovcnt; i++, off = 0) {
        size_t piece = iov[i].iov_len - off;
        if (n + piece > cap)
            break;
        memcpy(buf + n, (const char *)iov[i].iov_base + off, piece);
        n += piece;
    }
    return n;
}

static void advance(const struct iovec *iov, int iovcnt, int *i, size_t *off, size_t n)
{
    while (n > 0 && *i < iovcnt) {
        size_t piece = iov[*i].iov_len - *off;
        if (n < piece) {
            *off += n;
            return;
        }
        n -= piece;
        (*i)++;
        *off = 0;
    }
}

/* Write iov in order, as records of up to 16 KiB (small pieces gathered into
 * one record).  Returns the bytes consumed (partial writes happen),
 * -EAGAIN with c->want, or -VL_ETLS with c->err.
 *
 * mbedTLS rule for non-blocking writes: once mbedtls_ssl_write returned
 * WANT_WRITE it holds an encrypted record of the next pending_write bytes, and
 * the next call must offer those same bytes again.  So after -EAGAIN, or after
 * a partial count, the caller must call again with the same remaining data
 * (more may follow it); handing different bytes would send the old ones. */
static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    struct tls_conn *t = c->tls;
    unsigned char scratch[COALESCE_BYTES];
    size_t done = 0, off = 0, total = 0;
    int i = 0;
    if (t->state != TLS_OPEN) {
        vl_fmt(c->err, sizeof(c->err), "tls: write on a %s connection",
               t->state == TLS_HANDSHAKING ? "handshaking" : "closed");
        return -VL_ETLS;
    }
    for (int k = 0; k < iovcnt; k++)
        total += iov[k].iov_len;
    while (done < total) {
        const unsigned char *p;
        size_t n;
        while (iov[i].iov_len == off) {
            i++;
            off = 0;
        }
        if (t->pending_write) {
            /* mbedTLS resends its buffered record and does not read p. */
            p = (const unsigned char *)iov[i].iov_base + off;
            n = t->pending_write;
            if (n > total - done) {
                vl_fmt(c->err, sizeof(c->err), "tls: write retried with less data than pending");
                return -VL_ETLS;
            }
        } else if (iov[i].iov_len - off < COALESCE_BYTES && i + 1 < iovcnt &&
                   (n = gather(scratch, sizeof(scratch), iov, iovcnt, i, off)) >
                       iov[i].iov_len - off) {
            p = scratch;
        } else {
            p = (const unsigned char *)iov[i].iov_base + off;
            n = iov[i].iov_len - off;
        }
        int ret = mbedtls_ssl_write(&t->ssl, p, n);
        if (ret > 0) {
            t->pending_write = 0;
            advance(iov, iovcnt, &i, &off, (size_t)ret);
            done += (size_t)ret;
            continue;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE && !t->pending_write) {
            int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
            t->pending_write = max > 0 && n > (size_t)max ? (size_t)max : n;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ) {
            if (done)
                return (ssize_t)done;
            return wait_for(c, ret);
        }
        describe_failure(c, t, ret, "");
        t->state = TLS_FAILED;
        return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -VL_ETLS;
    }
    return (ssize_t)done;
}

static void tls_close(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (!t)
        return;
    /* Best effort close_notify (RFC 5246 §7.2.1); a full socket or a gone
     * peer is not worth waiting for. */
    if (t->state == TLS_OPEN)
        (void)mbedtls_ssl_close_notify(&t->ssl);
    mbedtls_ssl_free(&t->ssl);
    if (t->below) {
        t->below->ops->close(t->below); /* its fd is c's: closed by c's owner */
        free(t->below);
    }
    free(t);
    c->tls = NULL;
}

static const struct conn_ops tls_ops = {"tls", tls_read, tls_writev, tls_handshake, tls_close, 0};

/* ------------------------------------------------------------ public */

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    while (!list_empty(&ctx->lru))
        cache_remove(ctx, container_of(ctx->lru.next, struct session_entry, lru));
    mbedtls_ssl_config_free(&ctx->conf);
    free(ctx->suites);
    mbedtls_x509_crt_free(&ctx->ca);
    mbedtls_ctr_drbg_free(&ctx->drbg);
    mbedtls_entropy_free(&ctx->entropy);
    free(ctx);
}

/* suite_preference (those this mbedTLS has), then its defaults in order. */
static int *ordered_suites(void)
{
    const int *all = mbedtls_ssl_list_ciphersuites();
    size_t n = 0, k = 0;
    while (all[n])
        n++;
    int *out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(suite_preference); i++)
        for (size_t j = 0; j < n; j++)
            if (all[j] == suite_preference[i])
                out[k++] = all[j];
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        while (i < ARRAY_LEN(suite_preference) && suite_preference[i] != all[j])
            i++;
        if (i == ARRAY_LEN(suite_preference))
            out[k++] = all[j];
    }
    out[k] = 0;
    return out;
}

static int setup_config(struct tls_ctx *ctx, int offer_h2, char *err, size_t errlen)
{
    static const unsigned char pers[] = "volley tls";
    char msg[160];
    int ret = mbedtls_ctr_drbg_seed(&ctx->drbg, mbedtls_entropy_func, &ctx->entropy, pers,
                                    sizeof(pers) - 1);
    if (ret == 0)
        ret = mbedtls_ssl_config_defaults(&ctx->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret == 0)
        ret = mbedtls_ssl_conf_alpn_protocols(&ctx->conf,
                                              offer_h2 ? alpn_h2_protocols : alpn_protocols);
    if (ret != 0) {
        mbed_errstr(ret, msg, sizeof(msg));
        vl_fmt(err, errlen, "tls: setup failed: %s", msg);
        return -VL_ETLS;
    }
    if (!(ctx->suites = ordered_suites())) {
        vl_fmt(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    mbedtls_ssl_conf_ciphersuites(&ctx->conf, ctx->suites);
    mbedtls_ssl_conf_curves(&ctx->conf, curve_preference);
    mbedtls_ssl_conf_rng(&ctx->conf, mbedtls_ctr_drbg_random, &ctx->drbg);
    /* TLS 1.0 and 1.1 are deprecated (RFC 8996). */
    mbedtls_ssl_conf_min_version(&ctx->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_session_tickets(&ctx->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    mbedtls_ssl_conf_renegotiation(&ctx->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_authmode(&ctx->conf, ctx->insecure ? MBEDTLS_SSL_VERIFY_NONE
                                                        : MBEDTLS_SSL_VERIFY_REQUIRED);
    if (ctx->have_ca)
        mbedtls_ssl_conf_ca_chain(&ctx->conf, &ctx->ca, NULL);
    return 0;
}

int tls_ctx_new(const vl_client_opts *opts, struct tls_ctx **out, char *err, size_t errlen)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        vl_fmt(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    mbedtls_ssl_config_init(&ctx->conf);
    mbedtls_entropy_init(&ctx->entropy);
    mbedtls_ctr_drbg_init(&ctx->drbg);
    mbedtls_x509_crt_init(&ctx->ca);
    list_init(&ctx->lru);
    ctx->insecure = opts->insecure;
    /* With verification off no CA is read, so a missing bundle is no error. */
    int ret = ctx->insecure ? 0 : load_ca(ctx, opts->cacert, err, errlen);
    if (ret == 0)
        ret = setup_config(ctx, opts->http_version != VL_HTTP_1_1, err, errlen);
    if (ret != 0) {
        tls_ctx_free(ctx);
        return ret;
    }
    *out = ctx;
    return 0;
}

/* host as given in a URL: "example.com", "example.com.", "127.0.0.1",
 * "::1" or "[::1]".  Writes the name to verify against into dst (brackets
 * and a final dot removed) and its address form into t->ip. */
static void set_host(struct tls_conn *t, char *dst, const char *host)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n > 1 && host[n - 1] == '.')
        n--;
    memcpy(dst, host, n);
    dst[n] = '\0';
    if (inet_pton(AF_INET, dst, t->ip) == 1)
        t->ip_len = 4;
    else if (inet_pton(AF_INET6, dst, t->ip) == 1)
        t->ip_len = 16;
}

int tls_has_session(struct tls_ctx *ctx, const char *session_key)
{
    return cache_find(ctx, session_key) != NULL;
}

/* c already speaks TLS (to an https proxy, through its CONNECT tunnel): that
 * TLS moves to a connection object of its own below t, whose bio it then
 * uses (RFC 9110 §9.3.6: the tunnel's bytes are the proxy TLS's payload). */
static int move_below(struct conn *c, struct tls_conn *t)
{
    struct conn *below = calloc(1, sizeof(*below));
    if (!below) {
        vl_fmt(c->err, sizeof(c->err), "tls: out of memory");
        return -ENOMEM;
    }
    below->fd = c->fd;
    below->ops = c->ops;
    below->tls = c->tls;
    below->id = c->id;
    memcpy(below->peer, c->peer, sizeof(below->peer));
    struct tls_conn *outer = below->tls;
    mbedtls_ssl_set_bio(&outer->ssl, below, bio_send, bio_recv, NULL);
    mbedtls_ssl_set_verify(&outer->ssl, verify_cb, below);
    t->below = below;
    c->tls = NULL;
    return 0;
}

int tls_attach(struct tls_ctx *ctx, struct conn *c, const char *host, const char *session_key)
{
    size_t hlen = strlen(host), klen = strlen(session_key);
    struct tls_conn *t = calloc(1, sizeof(*t) + hlen + klen + 2);
    if (!t) {
        vl_fmt(c->err, sizeof(c->err), "tls: out of memory");
        return -ENOMEM;
    }
    t->ctx = ctx;
    set_host(t, t->names, host);
    t->key = t->names + strlen(t->names) + 1;
    memcpy((char *)t->key, session_key, klen + 1);
    mbedtls_ssl_init(&t->ssl);
    int ret = mbedtls_ssl_setup(&t->ssl, &ctx->conf);
    /* SNI and mbedTLS's own name check are for DNS names only. */
    if (ret == 0 && !t->ip_len)
        ret = mbedtls_ssl_set_hostname(&t->ssl, t->names);
    if (ret != 0) {
        char msg[160];
        mbed_errstr(ret, msg, sizeof(msg));
        vl_fmt(c->err, sizeof(c->err), "tls: setup failed: %s", msg);
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -VL_ETLS;
    }
    if (c->tls && move_below(c, t) < 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return -ENOMEM;
    }
    mbedtls_ssl_set_bio(&t->ssl, c, bio_send, bio_recv, NULL);
    mbedtls_ssl_set_verify(&t->ssl, verify_cb, c);
    struct session_entry *e = cache_find(ctx, t->key);
    if (e && mbedtls_ssl_set_session(&t->ssl, &e->session) == 0) {
        t->offered_tag = master_tag(&e->session);
        list_remove(&e->lru);
        list_insert_tail(&ctx->lru, &e->lru);
    }
    c->tls = t;
    c->ops = &tls_ops;
    c->tls_resumed = 0;
    return 0;
}

void tls_describe(const struct conn *c, char *buf, size_t len)
{
    const struct tls_conn *t = c->tls;
    if (!t) {
        vl_fmt(buf, len, "%s", c->ops ? c->ops->name : "tcp");
        return;
    }
    const char *suite = mbedtls_ssl_get_ciphersuite(&t->ssl); /* NULL until handshake done */
    if (!suite) {
        vl_fmt(buf, len, "TLS handshake %s",
               t->state == TLS_HANDSHAKING ? "in progress" : "failed");
        return;
    }
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
    vl_fmt(buf, len, "%s %s alpn=%s%s", mbedtls_ssl_get_version(&t->ssl), suite,
           alpn ? alpn : "none", c->tls_resumed ? " resumed" : "");
}

int tls_alpn_is_h2(const struct conn *c)
{
    const struct tls_conn *t = c->tls;
    const char *alpn = t ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : NULL;
    return alpn && strcmp(alpn, "h2") == 0;
}
