/* fuzz_tunnel.c: the proxy stage (src/tunnel.h) against any bytes a proxy
 * may send back: HTTP CONNECT responses, SOCKS4 and SOCKS5 replies.
 *
 * Input: one byte choosing the proxy (low 3 bits: http, socks4, socks4a,
 * socks5, socks5h; bit 3: with a user name and password; bit 4: the target
 * is an IPv6 address), then the proxy's bytes.  They are written into one
 * end of a socket pair, whose write side is then shut (the proxy closes
 * after them); the tunnel's handshake runs on the other end until it is
 * done or fails.  Properties: it ends in a bounded number of steps with 0
 * (the stage gone: tcp_ops, no tunnel state) or -VL_EPROXY with a message
 * starting "proxy: ", never -EAGAIN once the bytes are all there and the
 * peer has closed; everything it allocated is freed (ASan). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tunnel.h"

#define STEPS_MAX 64

static const char *const proxies[] = {"http://u:p@h.test", "socks4://u:p@h.test",
                                      "socks4a://u:p@h.test", "socks5://u:p@h.test",
                                      "socks5h://u:p@h.test"};
static const char *const plain[] = {"http://h.test", "socks4://h.test", "socks4a://h.test",
                                    "socks5://h.test", "socks5h://h.test"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    int kind = data[0] & 7, creds = data[0] & 8, v6 = data[0] & 16;
    if (kind > 4)
        return 0;
    struct proxy *p = NULL;
    char err[256];
    if (proxy_parse(creds ? proxies[kind] : plain[kind], &p, err, sizeof(err)) != 0)
        abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
        proxy_free(p);
        return 0;
    }
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    size_t off = 1;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);

    struct conn *c = calloc(1, sizeof(*c));
    c->fd = sv[0];
    c->ops = &tcp_ops;
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    union vl_sockaddr addr = {0};
    if (v6) {
        addr.in6.sin6_family = AF_INET6;
        inet_pton(AF_INET6, "::1", &addr.in6.sin6_addr);
    } else {
        addr.in4.sin_family = AF_INET;
        inet_pton(AF_INET, "127.0.0.1", &addr.in4.sin_addr);
    }
    struct tunnel_target tt = {.host = "a.test", .port = 443, .addr = &addr,
                               .user_agent = "fuzz", .max_header_bytes = 4096};
    int rc = tunnel_attach(c, p, &tt);
    for (int i = 0; rc == 0 && i < STEPS_MAX; i++) {
        rc = c->ops->handshake(c);
        if (rc != -EAGAIN || c->want != VL_WRITE)
            break;
    }
    if (rc == 0 && (c->ops != &tcp_ops || c->tunnel)) {
        fprintf(stderr, "fuzz_tunnel: done, but the stage is still there\n");
        abort();
    }
    if (rc != 0 && (rc != -VL_EPROXY || strncmp(c->err, "proxy: ", 7) != 0)) {
        fprintf(stderr, "fuzz_tunnel: rc %d, message '%s'\n", rc, c->err);
        abort();
    }
    c->ops->close(c);
    close(sv[0]);
    close(sv[1]);
    free(c);
    proxy_free(p);
    return 0;
}
