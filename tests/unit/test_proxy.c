/* test_proxy.c: proxy URLs (curl's -x syntax), the noproxy list (curl's
 * rules: suffixes, '*', IP literals, CIDR ranges), the choice per URL, the
 * pool keys of routes and the environment as curl reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy.h"
#include "url.h"

static struct proxy *parse_ok(const char *s)
{
    struct proxy *p = NULL;
    char err[256] = "";
    int rc = proxy_parse(s, &p, err, sizeof(err));
    if (rc != 0)
        fail_msg("proxy_parse(%s): %d %s", s, rc, err);
    return p;
}

static void proxy_urls_parse_with_curls_defaults(void **state)
{
    (void)state;
    struct proxy *p = parse_ok("proxy.test");
    assert_int_equal(p->kind, PROXY_HTTP);
    assert_string_equal(p->host, "proxy.test");
    assert_int_equal(p->port, 1080);
    assert_null(p->user);
    assert_null(p->auth);
    assert_string_equal(p->name, "http://proxy.test:1080");
    proxy_free(p);

    p = parse_ok("HTTP://Proxy.Test:3128/");
    assert_int_equal(p->kind, PROXY_HTTP);
    assert_string_equal(p->host, "proxy.test");
    assert_int_equal(p->port, 3128);
    proxy_free(p);

    p = parse_ok("socks5h://[::1]:9050");
    assert_int_equal(p->kind, PROXY_SOCKS5H);
    assert_string_equal(p->host, "::1");
    assert_int_equal(p->port, 9050);
    assert_string_equal(p->name, "socks5h://[::1]:9050");
    proxy_free(p);

    static const struct {
        const char *s;
        enum proxy_kind kind;
        int port;
    } kinds[] = {{"socks4://h", PROXY_SOCKS4, 1080}, {"socks4a://h", PROXY_SOCKS4A, 1080},
                 {"socks5://h", PROXY_SOCKS5, 1080}, {"socks5h://h", PROXY_SOCKS5H, 1080},
                 {"https://h", PROXY_HTTPS, 443}, {"http://h", PROXY_HTTP, 1080}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        p = parse_ok(kinds[i].s);
        assert_int_equal(p->kind, kinds[i].kind);
        assert_int_equal(p->port, kinds[i].port);
        proxy_free(p);
    }
    p = parse_ok("https://u:p@h:8443");
    assert_string_equal(p->auth, "Basic dTpw"); /* Basic over TLS too */
    assert_string_equal(p->name, "https://h:8443");
    proxy_free(p);
}

static void proxy_credentials_are_percent_decoded_and_kept_out_of_the_name(void **state)
{
    (void)state;
    struct proxy *p = parse_ok("http://us%40er:p%3Ass@w@h.test:8080");
    assert_string_equal(p->user, "us@er");
    assert_string_equal(p->pass, "p:ss@w"); /* the last '@' ends the userinfo */
    assert_string_equal(p->host, "h.test");
    /* base64("us@er:p:ss@w") */
    assert_string_equal(p->auth, "Basic dXNAZXI6cDpzc0B3");
    assert_null(strstr(p->name, "us"));
    proxy_free(p);

    p = parse_ok("http://alice@h.test");
    assert_string_equal(p->user, "alice");
    assert_string_equal(p->pass, "");
    assert_string_equal(p->auth, "Basic YWxpY2U6");
    proxy_free(p);

    p = parse_ok("socks5://bob:pw@h.test"); /* SOCKS has its own: no Basic header */
    assert_string_equal(p->user, "bob");
    assert_null(p->auth);
    proxy_free(p);

    p = parse_ok("http://a%zzb:x%4@h.test"); /* not an escape: kept as written */
    assert_string_equal(p->user, "a%zzb");
    assert_string_equal(p->pass, "x%4");
    proxy_free(p);
}

static void bad_proxy_urls_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *s, *want;
    } bad[] = {
        {"ftp://h", "proxy: unsupported scheme 'ftp'"},
        {"http://h:0", "proxy: bad host or port 'h:0'"},
        {"http://h:65536", "proxy: bad host or port 'h:65536'"},
        {"http://h:", "proxy: bad host or port 'h:'"},
        {"http://:80", "proxy: bad host or port ':80'"},
        {"http://u:p@", "proxy: bad host or port ''"},
        {"http://[::1", "proxy: bad host or port '[::1'"},
        {"http://h x", "proxy: bad host or port 'h x'"},
        {"", "proxy: bad host or port ''"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy *p = NULL;
        char err[256] = "";
        assert_int_equal(proxy_parse(bad[i].s, &p, err, sizeof(err)), -VL_EUSAGE);
        assert_null(p);
        if (strcmp(err, bad[i].want) != 0)
            fail_msg("%s: expected '%s', got '%s'", bad[i].s, bad[i].want, err);
    }
}

static void noproxy_matches_as_curl(void **state)
{
    (void)state;
    static const struct {
        const char *list, *host;
        int match;
    } cases[] = {
        {"example.com", "example.com", 1},
        {"example.com", "www.example.com", 1},
        {"example.com", "nonexample.com", 0},
        {"example.com", "example.com.org", 0},
        {".example.com", "example.com", 1},
        {".example.com", "a.b.example.com", 1},
        {"example.com.", "www.example.com", 1},
        {"EXAMPLE.com", "www.example.com", 1},
        {"example.com", "www.example.com.", 1}, /* a trailing dot on the host */
        {"ample.com", "www.example.com", 0},
        {"*", "anything.test", 1},
        {"*", "10.1.2.3", 1},
        {"a.test,*", "b.test", 1},
        {"a.test, b.test c.test", "c.test", 1},
        {"a.test,,b.test", "b.test", 1},
        {"", "a.test", 0},
        {"127.0.0.1", "127.0.0.1", 1},
        {"127.0.0.1", "127.0.0.2", 0},
        {"127.0.0.0/8", "127.9.9.9", 1},
        {"127.0.0.0/8", "128.0.0.1", 0},
        {"192.168.0.0/16", "192.168.200.1", 1},
        {"192.168.0.0/17", "192.168.200.1", 0},
        {"10.0.0.0/0", "8.8.8.8", 1},
        {"10.0.0.0/33", "10.0.0.1", 0},
        {"::1", "::1", 1},
        {"fd00::/8", "fd12:3456::1", 1},
        {"fd00::/8", "fe80::1", 0},
        {"2001:db8::/33", "2001:db8:7fff::1", 1},
        {"2001:db8::/33", "2001:db8:8000::1", 0},
        {"127.0.0.1", "localhost", 0},      /* names are not resolved to match */
        {"localhost", "127.0.0.1", 0},
        {"1.2.3.4", "a.1.2.3.4.test", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = proxy_noproxy_match(cases[i].list, cases[i].host);
        if (got != cases[i].match)
            fail_msg("noproxy '%s' host '%s': expected %d, got %d", cases[i].list,
                     cases[i].host, cases[i].match, got);
    }
}

static struct url parse_url(const char *s)
{
    struct url u;
    char err[256];
    if (url_parse(s, &u, err, sizeof(err)) != 0)
        fail_msg("url_parse(%s): %s", s, err);
    return u;
}

static void each_scheme_gets_its_proxy_and_noproxy_wins(void **state)
{
    (void)state;
    vl_client_opts o;
    vl_client_opts_init(&o);
    o.http_proxy = "http://hp.test:1";
    o.https_proxy = "socks5h://sp.test:2";
    o.noproxy = "direct.test";
    struct proxy_config pc;
    char err[256];
    assert_int_equal(proxy_config_init(&pc, &o, err, sizeof(err)), 0);
    struct url a = parse_url("http://a.test/"), b = parse_url("https://b.test/"),
               d = parse_url("https://x.direct.test/");
    assert_string_equal(proxy_for(&pc, &a)->name, "http://hp.test:1");
    assert_string_equal(proxy_for(&pc, &b)->name, "socks5h://sp.test:2");
    assert_null(proxy_for(&pc, &d));
    proxy_config_free(&pc);

    o.proxy = ""; /* -x '': none at all, whatever the per-scheme ones say */
    assert_int_equal(proxy_config_init(&pc, &o, err, sizeof(err)), 0);
    assert_null(proxy_for(&pc, &a));
    assert_null(proxy_for(&pc, &b));
    proxy_config_free(&pc);

    o.proxy = "u:p@one.test:3";
    assert_int_equal(proxy_config_init(&pc, &o, err, sizeof(err)), 0);
    assert_string_equal(proxy_for(&pc, &a)->name, "http://one.test:3");
    assert_string_equal(proxy_for(&pc, &b)->name, "http://one.test:3");

    /* forwarded requests share the proxy's connections; a tunnel is its target's */
    char *ka = proxy_pool_key(proxy_for(&pc, &a), &a);
    char *kb = proxy_pool_key(proxy_for(&pc, &b), &b);
    assert_string_equal(ka, "proxy http://one.test:3 as u");
    assert_string_equal(kb, "https://b.test:443 via http://one.test:3 as u");
    assert_int_equal(proxy_tunnels(proxy_for(&pc, &a), &a), 0);
    assert_int_equal(proxy_tunnels(proxy_for(&pc, &b), &b), 1);
    free(ka);
    free(kb);
    proxy_config_free(&pc);
    url_free(&a);
    url_free(&b);
    url_free(&d);

    o.proxy = "gopher://x";
    assert_int_equal(proxy_config_init(&pc, &o, err, sizeof(err)), -VL_EUSAGE);
    assert_string_equal(err, "proxy: unsupported scheme 'gopher'");
}

static void environment_is_read_as_curl_reads_it(void **state)
{
    (void)state;
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    vl_client_opts o;
    vl_client_opts_init(&o);
    setenv("HTTP_PROXY", "http://httpoxy.test", 1);
    setenv("HTTPS_PROXY", "http://upper.test", 1);
    setenv("ALL_PROXY", "http://all.test", 1);
    setenv("NO_PROXY", "np.test", 1);
    assert_int_equal(vl_client_opts_proxy_env(&o), 3);
    assert_string_equal(o.http_proxy, "http://all.test"); /* HTTP_PROXY is never read */
    assert_string_equal(o.https_proxy, "http://upper.test");
    assert_string_equal(o.noproxy, "np.test");

    vl_client_opts_init(&o);
    setenv("http_proxy", "http://lower.test", 1);
    setenv("https_proxy", "http://lower-s.test", 1);
    setenv("no_proxy", "", 1); /* set, though empty: it wins, as in curl */
    o.noproxy = "given.test";  /* what the caller set stays */
    assert_int_equal(vl_client_opts_proxy_env(&o), 2);
    assert_string_equal(o.http_proxy, "http://lower.test");
    assert_string_equal(o.https_proxy, "http://lower-s.test");
    assert_string_equal(o.noproxy, "given.test");
    vl_client_opts_init(&o);
    vl_client_opts_proxy_env(&o);
    assert_string_equal(o.noproxy, "");
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    vl_client_opts_init(&o);
    assert_int_equal(vl_client_opts_proxy_env(&o), 0);
    assert_null(o.http_proxy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proxy_urls_parse_with_curls_defaults),
        cmocka_unit_test(proxy_credentials_are_percent_decoded_and_kept_out_of_the_name),
        cmocka_unit_test(bad_proxy_urls_are_refused_with_a_reason),
        cmocka_unit_test(noproxy_matches_as_curl),
        cmocka_unit_test(each_scheme_gets_its_proxy_and_noproxy_wins),
        cmocka_unit_test(environment_is_read_as_curl_reads_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
