/* test_url.c: url_parse (scheme defaults, ports and their bounds, each kind
 * of rejection with its message, IPv6 literals, the origin-form target),
 * url_resolve against the examples of RFC 3986 §5.4, and both against
 * tables of URLs as people write them whose expected values come from the
 * WHATWG URL Standard as Node implements it (url_whatwg_cases.h, made by
 * url_whatwg_cases.js).  Deviations from Node are separate tests, each with
 * its reason.  Pure: no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "url.h"
#include "volley.h"

struct parse_case {
    const char *in, *href, *host, *target;
    int port;
    const char *err; /* NULL: the parse succeeds */
};
struct resolve_case {
    const char *base, *ref, *want;
};
#include "url_whatwg_cases.h"

/* Parse s, which must succeed; the caller frees u. */
static void parse_ok(const char *s, struct url *u)
{
    char err[256] = "";
    int rc = url_parse(s, u, err, sizeof(err));
    if (rc != 0)
        fail_msg("url_parse(\"%s\"): expected success, got %d \"%s\"", s, rc, err);
}

/* Parse s, which must fail with -VL_EURL and a message containing want. */
static void parse_fails(const char *s, const char *want)
{
    char err[256] = "";
    struct url u;
    int rc = url_parse(s, &u, err, sizeof(err));
    if (rc != -VL_EURL)
        fail_msg("url_parse(\"%s\"): expected -VL_EURL, got %d (err \"%s\")", s, rc, err);
    if (!strstr(err, want))
        fail_msg("url_parse(\"%s\"): expected an error containing \"%s\", got \"%s\"", s, want,
                 err);
    /* A failed parse leaves nothing to free. */
    assert_null(u.host);
    assert_null(u.authority);
    assert_null(u.target);
    assert_null(u.key);
    assert_null(u.href);
    assert_null(u.userinfo);
}

static void expect_url(const char *s, int https, int port, const char *host,
                       const char *authority, const char *target, const char *key)
{
    struct url u;
    parse_ok(s, &u);
    if (u.https != https || u.port != port || strcmp(u.host, host) != 0 ||
        strcmp(u.authority, authority) != 0 || strcmp(u.target, target) != 0 ||
        strcmp(u.key, key) != 0)
        fail_msg("url_parse(\"%s\"):\n  expected https=%d port=%d host=%s authority=%s "
                 "target=%s key=%s\n  got      https=%d port=%d host=%s authority=%s "
                 "target=%s key=%s",
                 s, https, port, host, authority, target, key, u.https, u.port, u.host,
                 u.authority, u.target, u.key);
    url_free(&u);
}

/* ---------------------------------------------------------------- url_parse */

static void http_defaults_to_port_80_and_https_to_443(void **state)
{
    (void)state;
    expect_url("http://example.com/a", 0, 80, "example.com", "example.com", "/a",
               "http://example.com:80");
    expect_url("https://example.com/a", 1, 443, "example.com", "example.com", "/a",
               "https://example.com:443");
}

static void explicit_port_appears_in_authority_and_key(void **state)
{
    (void)state;
    expect_url("http://example.com:8080/x", 0, 8080, "example.com", "example.com:8080", "/x",
               "http://example.com:8080");
    expect_url("https://example.com:8443/", 1, 8443, "example.com", "example.com:8443", "/",
               "https://example.com:8443");
}

static void explicit_default_port_is_left_out_of_authority(void **state)
{
    (void)state;
    expect_url("http://example.com:80/", 0, 80, "example.com", "example.com", "/",
               "http://example.com:80");
    expect_url("https://example.com:443/", 1, 443, "example.com", "example.com", "/",
               "https://example.com:443");
    /* 443 on http is not a default: it stays in Host. */
    expect_url("http://example.com:443/", 0, 443, "example.com", "example.com:443", "/",
               "http://example.com:443");
}

static void ports_1_and_65535_are_the_accepted_bounds(void **state)
{
    (void)state;
    expect_url("http://h:1/", 0, 1, "h", "h:1", "/", "http://h:1");
    expect_url("http://h:65535/", 0, 65535, "h", "h:65535", "/", "http://h:65535");
}

static void port_0_and_65536_are_out_of_range(void **state)
{
    (void)state;
    parse_fails("http://example.com:0/", "url: port out of range");
    parse_fails("http://example.com:65536/", "url: port out of range");
    parse_fails("https://example.com:99999999999999999999/", "url: port out of range");
}

static void ftp_scheme_is_unsupported(void **state)
{
    (void)state;
    parse_fails("ftp://x", "url: unsupported scheme 'ftp'");
}

static void scheme_is_case_insensitive(void **state)
{
    (void)state;
    expect_url("HTTPS://example.com/", 1, 443, "example.com", "example.com", "/",
               "https://example.com:443");
}

static void scheme_without_host_is_an_empty_host(void **state)
{
    (void)state;
    parse_fails("http://", "url: empty host");
}

static void unclosed_ipv6_bracket_is_malformed(void **state)
{
    (void)state;
    parse_fails("http://[::1", "url: malformed");
}

static void text_with_a_space_and_no_scheme_is_malformed(void **state)
{
    (void)state;
    parse_fails("not a url", "url: malformed");
}

static void relative_reference_is_malformed_for_want_of_a_scheme(void **state)
{
    (void)state;
    parse_fails("/just/a/path", "url: malformed");
}

static void ipv6_literal_host_is_bare_and_authority_and_key_bracketed(void **state)
{
    (void)state;
    expect_url("http://[::1]:8080/p", 0, 8080, "::1", "[::1]:8080", "/p", "http://[::1]:8080");
    expect_url("https://[2001:DB8::1]/", 1, 443, "2001:db8::1", "[2001:db8::1]", "/",
               "https://[2001:db8::1]:443");
}

static void query_is_kept_and_fragment_dropped_from_target(void **state)
{
    (void)state;
    expect_url("http://h/a/b?x=1&y=2#frag", 0, 80, "h", "h", "/a/b?x=1&y=2", "http://h:80");
    expect_url("http://h/a#frag?notquery", 0, 80, "h", "h", "/a", "http://h:80");
}

static void host_is_lower_cased(void **state)
{
    (void)state;
    expect_url("http://ExAmPlE.COM/Path", 0, 80, "example.com", "example.com", "/Path",
               "http://example.com:80");
}

static void empty_path_gives_target_slash(void **state)
{
    (void)state;
    expect_url("http://h", 0, 80, "h", "h", "/", "http://h:80");
    expect_url("http://h:81", 0, 81, "h", "h:81", "/", "http://h:81");
    expect_url("http://h#frag", 0, 80, "h", "h", "/", "http://h:80");
}

static void query_without_path_gets_a_leading_slash(void **state)
{
    (void)state;
    expect_url("http://h?q", 0, 80, "h", "h", "/?q", "http://h:80");
    expect_url("http://h:8080?q=1#f", 0, 8080, "h", "h:8080", "/?q=1", "http://h:8080");
}

/* -------------------------------------------------------------- url_resolve */

static void expect_resolve(const char *base, const char *ref, const char *want)
{
    char *got = url_resolve(base, ref);
    if (!got || strcmp(got, want) != 0)
        fail_msg("url_resolve(\"%s\", \"%s\"): expected \"%s\", got \"%s\"", base, ref, want,
                 got ? got : "(NULL)");
    free(got);
}

#define RFC_BASE "http://a/b/c/d;p?q"

static void rfc3986_normal_examples_resolve(void **state)
{
    (void)state;
    /* RFC 3986 §5.4.1 */
    static const char *const cases[][2] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"}, /* WHATWG: a special URL's empty path is "/" */
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_resolve(RFC_BASE, cases[i][0], cases[i][1]);
}

static void rfc3986_abnormal_examples_resolve(void **state)
{
    (void)state;
    /* RFC 3986 §5.4.2 */
    static const char *const cases[][2] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        /* RFC 3986 §5.4.2 allows both; WHATWG (and browsers) take the
         * non-strict reading for a reference with the base's scheme */
        {"http:g", "http://a/b/c/g"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_resolve(RFC_BASE, cases[i][0], cases[i][1]);
}

static void absolute_location_replaces_the_base(void **state)
{
    (void)state;
    expect_resolve("http://a/b/c", "https://other.example:8443/x?y",
                   "https://other.example:8443/x?y");
}

static void scheme_relative_location_keeps_the_base_scheme(void **state)
{
    (void)state;
    expect_resolve("https://a/b/c", "//h/p", "https://h/p");
}

/* A relative Location on an IPv6-literal host names the same origin: it must
 * keep the pool key, host and Host header, or a redirect drops credentials
 * and opens a new connection as if the host had changed. */
static void relative_reference_against_an_ipv6_base_keeps_the_same_origin(void **state)
{
    (void)state;
    static const char *const bases[] = {"http://[::1]:8080/a", "https://[2001:db8::1]/x/y"};
    for (size_t i = 0; i < 2; i++) {
        struct url b, r;
        parse_ok(bases[i], &b);
        char *next = url_resolve(bases[i], "/b?c");
        assert_non_null(next);
        parse_ok(next, &r);
        if (strcmp(b.key, r.key) != 0 || strcmp(b.host, r.host) != 0 ||
            strcmp(b.authority, r.authority) != 0)
            fail_msg("url_resolve(\"%s\", \"/b?c\") = \"%s\": expected the same origin, got "
                     "key %s host %s authority %s (base: %s %s %s)",
                     bases[i], next, r.key, r.host, r.authority, b.key, b.host, b.authority);
        assert_string_equal(r.target, "/b?c");
        free(next);
        url_free(&b);
        url_free(&r);
    }
}

static void unparseable_reference_resolves_to_null(void **state)
{
    (void)state;
    char *got = url_resolve(RFC_BASE, "http://[::1");
    if (got)
        fail_msg("expected NULL for an unparseable reference, got \"%s\"", got);
}

/* ------------------------------------------------------ WHATWG / Node table */

static void check_parse_case(const struct parse_case *c)
{
    struct url u;
    if (c->err) {
        parse_fails(c->in, c->err);
        return;
    }
    parse_ok(c->in, &u);
    if (strcmp(u.href, c->href) != 0 || strcmp(u.host, c->host) != 0 ||
        strcmp(u.target, c->target) != 0 || u.port != c->port)
        fail_msg("url_parse(\"%s\"):\n  expected href=%s host=%s target=%s port=%d\n"
                 "  got      href=%s host=%s target=%s port=%d",
                 c->in, c->href, c->host, c->target, c->port, u.href, u.host, u.target, u.port);
    /* the authority is the href's, less scheme, credentials and path */
    const char *auth = strstr(u.href, "://") + 3, *at = strchr(auth, '@');
    if (at && at < auth + strcspn(auth, "/"))
        auth = at + 1;
    if (strncmp(auth, u.authority, strlen(u.authority)) != 0 ||
        auth[strlen(u.authority)] != '/')
        fail_msg("url_parse(\"%s\"): authority %s does not match href %s", c->in, u.authority,
                 u.href);
    url_free(&u);
}

static void urls_as_people_write_them_parse_as_node_does(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(whatwg_parse_cases) / sizeof(whatwg_parse_cases[0]); i++)
        check_parse_case(&whatwg_parse_cases[i]);
}

static void locations_as_servers_write_them_resolve_as_node_does(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(whatwg_resolve_cases) / sizeof(whatwg_resolve_cases[0]); i++)
        expect_resolve(whatwg_resolve_cases[i].base, whatwg_resolve_cases[i].ref,
                       whatwg_resolve_cases[i].want);
}

/* Every resolved Location parses again to itself less its fragment: the
 * normalisation is idempotent, so a redirect's URL is what is requested. */
static void resolved_locations_are_already_normalised(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(whatwg_resolve_cases) / sizeof(whatwg_resolve_cases[0]); i++) {
        struct url u;
        const char *want = whatwg_resolve_cases[i].want;
        parse_ok(want, &u);
        size_t n = strcspn(want, "#");
        if (strlen(u.href) != n || strncmp(u.href, want, n) != 0)
            fail_msg("url_parse(\"%s\"): expected href %.*s, got %s", want, (int)n, want, u.href);
        url_free(&u);
    }
}

/* -------------------------------------------------- deviations from Node */

/* WHATWG allows port 0; no server can be reached there. */
static void port_0_is_refused_though_whatwg_allows_it(void **state)
{
    (void)state;
    parse_fails("http://h:0/", "url: port out of range");
    parse_fails("http://h:00000/", "url: port out of range");
}

/* The spec decodes input as UTF-8 with U+FFFD for bad bytes (%EF%BF%BD);
 * we encode the bytes themselves, as curl does, so they reach the server. */
static void invalid_utf8_is_percent_encoded_byte_for_byte(void **state)
{
    (void)state;
    expect_url("http://h/a\377\376b?q=\300#\377", 0, 80, "h", "h", "/a%FF%FEb?q=%C0",
               "http://h:80");
    expect_resolve("http://h/x/y", "z\200?\341\200", "http://h/x/z%80?%E1%80");
}

/* inet_ntop writes IPv4-mapped addresses dotted (RFC 5952 §5); WHATWG in hex. */
static void ipv4_mapped_ipv6_is_written_dotted(void **state)
{
    (void)state;
    expect_url("http://[::FFFF:1.2.3.4]:81/", 0, 81, "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:81", "/",
               "http://[::ffff:1.2.3.4]:81");
}

/* A Location of another scheme comes back as written, so that parsing it
 * names the scheme ("url: unsupported scheme 'ftp'"). */
static void location_of_another_scheme_is_returned_for_parse_to_refuse(void **state)
{
    (void)state;
    expect_resolve("http://h/a", "FTP://x/y z", "ftp://x/y z");
    expect_resolve("http://h/a", "mailto:u@h", "mailto:u@h");
    parse_fails("ftp://x/y z", "url: unsupported scheme 'ftp'");
}

/* ------------------------------------------------------------ the rest */

static void credentials_stay_out_of_host_header_and_target(void **state)
{
    (void)state;
    struct url u;
    parse_ok("http://user:pa%20ss@Host.example:8080/p?q#f", &u);
    assert_string_equal(u.authority, "host.example:8080");
    assert_string_equal(u.target, "/p?q");
    assert_string_equal(u.key, "http://host.example:8080");
    assert_string_equal(u.userinfo, "user:pa%20ss");
    assert_string_equal(u.href, "http://user:pa%20ss@host.example:8080/p?q");
    url_free(&u);
    parse_ok("http://h/", &u);
    assert_null(u.userinfo);
    url_free(&u);
}

static void unparseable_base_or_location_resolves_to_null(void **state)
{
    (void)state;
    static const char *const refs[] = {"http://a b/", "https://:80/", "//h:99999/",
                                       "http://[::1"};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        char *got = url_resolve("http://h/", refs[i]);
        if (got)
            fail_msg("url_resolve(\"http://h/\", \"%s\"): expected NULL, got \"%s\"", refs[i],
                     got);
    }
    assert_null(url_resolve("not a url", "/x"));
    assert_null(url_resolve(NULL, "/x"));
    assert_null(url_resolve("http://h/", NULL));
}

/* 100 KiB of path and of query, spaces and non-ASCII throughout: no fixed
 * buffer, every byte accounted for. */
static void long_urls_are_encoded_whole(void **state)
{
    (void)state;
    enum { N = 100 * 1024 };
    static const char *const enc[] = {"a", "%20", "%C3"}; /* a lone lead byte */
    char *in = malloc(N + 16), *want = malloc(3 * N + 16);
    assert_non_null(in);
    assert_non_null(want);
    strcpy(in, "http://h/");
    size_t w = 0;
    want[w++] = '/';
    for (size_t i = 0; i < N; i++) {
        in[9 + i] = "a \303"[i % 3];
        memcpy(want + w, enc[i % 3], strlen(enc[i % 3]));
        w += strlen(enc[i % 3]);
    }
    in[9 + N] = '\0';
    want[w] = '\0';
    struct url u;
    parse_ok(in, &u);
    assert_string_equal(u.target, want);
    url_free(&u);
    char *r = url_resolve("http://h/x", in + strlen("http://h"));
    assert_non_null(r);
    assert_string_equal(r + strlen("http://h"), want);
    free(r);
    free(in);
    free(want);
}

/* Arbitrary bytes, every prefix of nasty inputs: no crash, no leak (ASan). */
static void every_prefix_of_the_tables_parses_or_fails_cleanly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(whatwg_parse_cases) / sizeof(whatwg_parse_cases[0]); i++) {
        const char *in = whatwg_parse_cases[i].in;
        for (size_t n = 0; n <= strlen(in); n++) {
            char *p = strndup(in, n), err[64];
            struct url u;
            if (url_parse(p, &u, err, sizeof(err)) == 0)
                url_free(&u);
            free(url_resolve("http://a/b/c?d", p));
            free(url_resolve(p, "../x?y#z"));
            free(p);
        }
    }
}

/* vl_url_host: what volley -t hashes to pick a host's thread, so every
 * spelling of one host must come out the same (issue 16). */
static void vl_url_host_gives_every_spelling_of_a_host_one_name(void **state)
{
    (void)state;
    char buf[64];
    const char *same[] = {"http://example.com/a", "HTTP://EXAMPLE.com:8080/b",
                          "  https://user:pw@Example.COM/c?d#e", "http://example.com"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_int_equal(vl_url_host(same[i], buf, sizeof(buf)), 11);
        assert_string_equal(buf, "example.com");
    }
    assert_int_equal(vl_url_host("http://\xed\x95\x9c\xea\xb5\xad.kr/", buf, sizeof(buf)), 15);
    assert_string_equal(buf, "xn--3e0b707e.kr");
    assert_int_equal(vl_url_host("http://[::1]:81/", buf, sizeof(buf)), 3);
    assert_string_equal(buf, "::1");
    assert_int_equal(vl_url_host("http://0x7f.1/", buf, sizeof(buf)), 9);
    assert_string_equal(buf, "127.0.0.1");
    /* cut as snprintf cuts, the full length returned */
    assert_int_equal(vl_url_host("http://example.com/", buf, 5), 11);
    assert_string_equal(buf, "exam");
    assert_int_equal(vl_url_host("http://example.com/", NULL, 0), 11);
    assert_int_equal(vl_url_host("ftp://example.com/", buf, sizeof(buf)), -VL_EURL);
    assert_int_equal(vl_url_host("http://", buf, sizeof(buf)), -VL_EURL);
    assert_int_equal(vl_url_host(NULL, buf, sizeof(buf)), -VL_EURL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_defaults_to_port_80_and_https_to_443),
        cmocka_unit_test(explicit_port_appears_in_authority_and_key),
        cmocka_unit_test(explicit_default_port_is_left_out_of_authority),
        cmocka_unit_test(ports_1_and_65535_are_the_accepted_bounds),
        cmocka_unit_test(port_0_and_65536_are_out_of_range),
        cmocka_unit_test(ftp_scheme_is_unsupported),
        cmocka_unit_test(scheme_is_case_insensitive),
        cmocka_unit_test(scheme_without_host_is_an_empty_host),
        cmocka_unit_test(unclosed_ipv6_bracket_is_malformed),
        cmocka_unit_test(text_with_a_space_and_no_scheme_is_malformed),
        cmocka_unit_test(relative_reference_is_malformed_for_want_of_a_scheme),
        cmocka_unit_test(ipv6_literal_host_is_bare_and_authority_and_key_bracketed),
        cmocka_unit_test(query_is_kept_and_fragment_dropped_from_target),
        cmocka_unit_test(host_is_lower_cased),
        cmocka_unit_test(empty_path_gives_target_slash),
        cmocka_unit_test(query_without_path_gets_a_leading_slash),
        cmocka_unit_test(rfc3986_normal_examples_resolve),
        cmocka_unit_test(rfc3986_abnormal_examples_resolve),
        cmocka_unit_test(absolute_location_replaces_the_base),
        cmocka_unit_test(scheme_relative_location_keeps_the_base_scheme),
        cmocka_unit_test(relative_reference_against_an_ipv6_base_keeps_the_same_origin),
        cmocka_unit_test(unparseable_reference_resolves_to_null),
        cmocka_unit_test(urls_as_people_write_them_parse_as_node_does),
        cmocka_unit_test(locations_as_servers_write_them_resolve_as_node_does),
        cmocka_unit_test(resolved_locations_are_already_normalised),
        cmocka_unit_test(port_0_is_refused_though_whatwg_allows_it),
        cmocka_unit_test(invalid_utf8_is_percent_encoded_byte_for_byte),
        cmocka_unit_test(ipv4_mapped_ipv6_is_written_dotted),
        cmocka_unit_test(location_of_another_scheme_is_returned_for_parse_to_refuse),
        cmocka_unit_test(credentials_stay_out_of_host_header_and_target),
        cmocka_unit_test(unparseable_base_or_location_resolves_to_null),
        cmocka_unit_test(long_urls_are_encoded_whole),
        cmocka_unit_test(every_prefix_of_the_tables_parses_or_fails_cleanly),
        cmocka_unit_test(vl_url_host_gives_every_spelling_of_a_host_one_name),
    };
    alarm(60); /* a hung test must not hang the suite */
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
