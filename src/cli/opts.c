/* opts.c: the volley command line.  Option names follow curl where curl
 * has one.  Every bad option or value is a usage error: message, exit 2. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: volley [OPTIONS] [URL...]\n"
    "Fetch many URLs at once on one thread; one result per URL.\n"
    "\n"
    "  -i, --input FILE          URLs one per line ('-' = stdin; blank lines and # comments skipped)\n"
    "      --input-format FMT    lines of -i are 'urls' (default) or 'json' objects:\n"
    "                            {\"url\",\"method\",\"headers\",\"body\",\"index\",\"id\"}\n"
    "  -c, --concurrency N       max requests in flight (default 100)\n"
    "      --per-host N          max connections per host:port (default 0 = unlimited)\n"
    "  -X, --request METHOD      request method (default GET, or POST with -d)\n"
    "  -H, --header 'Name: value'  extra request header (repeatable; 'Name:' removes a default)\n"
    "  -d, --data STRING|@FILE   request body (Content-Type application/x-www-form-urlencoded)\n"
    "      --data-binary @FILE   request body streamed from FILE as is\n"
    "  -A, --user-agent STRING   User-Agent (default volley/VERSION)\n"
    "      --timeout SECS        deadline for one attempt (default 300)\n"
    "      --connect-timeout SECS  DNS + TCP + TLS (default 10)\n"
    "      --read-timeout SECS   no byte received while a response is due (default 60)\n"
    "      --max-redirs N        follow redirects up to N (default 10; 0 = do not follow)\n"
    "      --no-decompress       keep gzip/deflate bodies encoded (decoding is on by default)\n"
    "      --max-filesize BYTES  fail bodies larger than BYTES\n"
    "      --read-ahead N        requests read ahead into per-host queues (default 4 x -c)\n"
    "      --rate N[/s|/m|/h]    at most N request starts per second/minute/hour in all\n"
    "      --per-host-rate N[/s|/m]  at most N request starts per unit to each host\n"
    "      --per-host-delay SECS least time between request starts to one host\n"
    "      --cacert FILE         CA certificates to verify servers with\n"
    "  -k, --insecure            do not verify TLS certificates\n"
    "      --resolve HOST:PORT:ADDR  use ADDR for HOST:PORT (repeatable)\n"
    "      --dns-servers ADDR[:PORT],...  DNS servers to ask instead of the system's\n"
    "  -x, --proxy [SCHEME://][USER:PASSWORD@]HOST[:PORT]  proxy for every URL: http://\n"
    "                            (default, port 1080), https, socks4, socks4a, socks5, socks5h;\n"
    "                            '' = none (default: http_proxy, https_proxy, all_proxy)\n"
    "      --noproxy LIST        hosts to reach directly: names (and their subdomains),\n"
    "                            IPs, CIDR ranges, or '*' (default: no_proxy, NO_PROXY)\n"
    "      --proxy-cacert FILE   CA certificates to verify an https:// proxy with\n"
    "      --proxy-insecure      do not verify an https:// proxy's certificate\n"
    "      --retry N             retry transient failures N times (default 0)\n"
    "      --retry-delay SECS    fixed delay between retries (default: exponential backoff)\n"
    "      --retry-max-time SECS  bound all attempts together (default 0 = none)\n"
    "  -o, --output-dir DIR      save each body in DIR (the record's \"file\" names it)\n"
    "      --json                one JSON object per input URL on stdout, in completion order\n"
    "      --records FILE        write the records to FILE (JSON Lines, one write per record;\n"
    "                            implies --json; the first line is a header, not a record)\n"
    "      --resume              with --records: go on with FILE, skipping indexes whose\n"
    "                            last record is ok (the input must be the same list)\n"
    "      --body                with --json: each ok record carries the body: \"body\" (text\n"
    "                            types, as UTF-8, with \"charset\") or \"body_base64\"\n"
    "      --body-max BYTES      --body keeps at most BYTES of each body (default 1 MiB);\n"
    "                            a longer one is cut and says \"body_truncated\": true\n"
    "      --fail                an HTTP status >= 400 counts as a failure\n"
    "      --http1.1             speak HTTP/1.1 only\n"
    "      --http2               offer h2 by ALPN over https, HTTP/1.1 on http (the default)\n"
    "      --http2-prior-knowledge  as --http2, and h2 without upgrade on http:// (h2c)\n"
    "  -t, --threads N           run N loops in N threads, each host in one of them\n"
    "                            (default 1; 0 = one per core this process may use)\n"
    "      --no-progress         no progress line on a terminal\n"
    "      --progress-every SECS  without a terminal: a progress line on stderr every SECS\n"
    "      --grace SECS          on SIGINT/SIGTERM: take no new URLs, give the ones in flight\n"
    "                            SECS (default 5), then cancel them; a second signal exits now\n"
    "      --warc FILE           also write every exchange to FILE as WARC 1.1 (request and\n"
    "                            response records, bytes as on the wire; FILE.warc.gz: gzip per\n"
    "                            record); an existing FILE is appended to\n"
    "      --warc-max-size BYTES roll over to FILE-00001.warc.gz ... once a file reaches BYTES\n"
    "      --die-with-parent     exit (SIGKILL) when the process that started volley dies\n"
    "                            (Linux; for volley run as a job's child, e.g. volley-dask)\n"
    "  -v, --verbose             trace the loop and every state change on stderr\n"
    "  -h, --help                this text\n"
    "      --version             version and build\n"
    "\n"
    "Exit status: 0 when every URL succeeded, 1 when any failed, 2 on a usage error,\n"
    "130 after SIGINT, 143 after SIGTERM.\n";

enum {
    O_PER_HOST = 256, O_TIMEOUT, O_CONNECT_TIMEOUT, O_READ_TIMEOUT, O_MAX_REDIRS,
    O_NO_DECOMPRESS, O_CACERT, O_RESOLVE, O_DNS_SERVERS, O_RETRY, O_RETRY_DELAY,
    O_RETRY_MAX_TIME, O_JSON, O_FAIL, O_VERSION, O_DATA_BINARY, O_MAX_FILESIZE, O_READ_AHEAD,
    O_RATE, O_PER_HOST_RATE, O_PER_HOST_DELAY, O_NO_PROGRESS, O_INPUT_FORMAT, O_RECORDS,
    O_RESUME, O_GRACE, O_PROGRESS_EVERY,
    O_HTTP1_1, O_HTTP2, O_HTTP2_PRIOR,
    O_WARC, O_WARC_MAX_SIZE,
    O_NOPROXY, O_PROXY_CACERT, O_PROXY_INSECURE,
    O_BODY, O_BODY_MAX,
    O_DIE_WITH_PARENT,
};

static const struct option long_opts[] = {
    {"input", required_argument, 0, 'i'},
    {"input-format", required_argument, 0, O_INPUT_FORMAT},
    {"concurrency", required_argument, 0, 'c'},
    {"per-host", required_argument, 0, O_PER_HOST},
    {"request", required_argument, 0, 'X'},
    {"header", required_argument, 0, 'H'},
    {"data", required_argument, 0, 'd'},
    {"data-binary", required_argument, 0, O_DATA_BINARY},
    {"user-agent", required_argument, 0, 'A'},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"connect-timeout", required_argument, 0, O_CONNECT_TIMEOUT},
    {"read-timeout", required_argument, 0, O_READ_TIMEOUT},
    {"max-redirs", required_argument, 0, O_MAX_REDIRS},
    {"no-decompress", no_argument, 0, O_NO_DECOMPRESS},
    {"max-filesize", required_argument, 0, O_MAX_FILESIZE},
    {"read-ahead", required_argument, 0, O_READ_AHEAD},
    {"rate", required_argument, 0, O_RATE},
    {"per-host-rate", required_argument, 0, O_PER_HOST_RATE},
    {"per-host-delay", required_argument, 0, O_PER_HOST_DELAY},
    {"cacert", required_argument, 0, O_CACERT},
    {"insecure", no_argument, 0, 'k'},
    {"resolve", required_argument, 0, O_RESOLVE},
    {"dns-servers", required_argument, 0, O_DNS_SERVERS},
    {"proxy", required_argument, 0, 'x'},
    {"noproxy", required_argument, 0, O_NOPROXY},
    {"proxy-cacert", required_argument, 0, O_PROXY_CACERT},
    {"proxy-insecure", no_argument, 0, O_PROXY_INSECURE},
    {"retry", required_argument, 0, O_RETRY},
    {"retry-delay", required_argument, 0, O_RETRY_DELAY},
    {"retry-max-time", required_argument, 0, O_RETRY_MAX_TIME},
    {"output-dir", required_argument, 0, 'o'},
    {"json", no_argument, 0, O_JSON},
    {"records", required_argument, 0, O_RECORDS},
    {"resume", no_argument, 0, O_RESUME},
    {"fail", no_argument, 0, O_FAIL},
    {"threads", required_argument, 0, 't'},
    {"no-progress", no_argument, 0, O_NO_PROGRESS},
    {"progress-every", required_argument, 0, O_PROGRESS_EVERY},
    {"grace", required_argument, 0, O_GRACE},
    {"warc", required_argument, 0, O_WARC},
    {"warc-max-size", required_argument, 0, O_WARC_MAX_SIZE},
    {"body", no_argument, 0, O_BODY},
    {"body-max", required_argument, 0, O_BODY_MAX},
    {"verbose", no_argument, 0, 'v'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, O_VERSION},
    {"http1.1", no_argument, 0, O_HTTP1_1},
    {"http2", no_argument, 0, O_HTTP2},
    {"http2-prior-knowledge", no_argument, 0, O_HTTP2_PRIOR},
    {"die-with-parent", no_argument, 0, O_DIE_WITH_PARENT},
    {0, 0, 0, 0},
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("volley: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'volley --help' for more information.\n", stderr);
    return 2;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_secs(const char *s, double zero_ok, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || (v == 0 && !zero_ok) || v > 1e7)
        return -1;
    *out = v;
    return 0;
}

/* "N", "N/s", "N/m" or "N/h" (curl's --rate syntax) as starts per second. */
static int parse_rate(const char *s, double *per_s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v <= 0)
        return -1;
    double unit = 1;
    if (*end == '/') {
        if (strcmp(end, "/s") == 0)
            unit = 1;
        else if (strcmp(end, "/m") == 0)
            unit = 60;
        else if (strcmp(end, "/h") == 0)
            unit = 3600;
        else
            return -1;
    } else if (*end) {
        return -1;
    }
    if (v / unit > 1e6)
        return -1;
    *per_s = v / unit;
    return 0;
}

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a)
        return -1;
    a[(*n)++] = v;
    *arr = a;
    return 0;
}

static int set_data(struct cli_opts *o, const char *arg, int binary)
{
    if (arg[0] == '@') {
        o->data_file = arg + 1;
        o->data = NULL;
    } else if (binary) {
        return usage_error("--data-binary takes @FILE here, got '%s'", arg);
    } else {
        o->data = arg;
        o->data_file = NULL;
    }
    return 0;
}

#define INT_OPT(field, lo, hi, name)                                    \
    do {                                                               \
        long v_;                                                       \
        if (parse_int(optarg, lo, hi, &v_) < 0)                        \
            return usage_error("invalid " name " '%s'", optarg);       \
        field = (int)v_;                                               \
    } while (0)

#define SECS_OPT(field, zero_ok, name)                                  \
    do {                                                               \
        if (parse_secs(optarg, zero_ok, &field) < 0)                   \
            return usage_error("invalid " name " '%s'", optarg);       \
    } while (0)

int cli_parse(int argc, char **argv, struct cli_opts *o)
{
    vl_client_opts *c = &o->client;
    memset(o, 0, sizeof(*o));
    vl_client_opts_init(c);
    o->threads = 1;
    o->progress = 1;
    o->grace_s = 5;
    o->body_max = 1u << 20;
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":i:c:X:H:d:A:o:t:x:kvh", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'i': o->input = optarg; break;
        case O_INPUT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                o->input_json = 1;
            else if (strcmp(optarg, "urls") == 0)
                o->input_json = 0;
            else
                return usage_error("invalid --input-format '%s' (want urls or json)", optarg);
            break;
        case 'c': INT_OPT(c->concurrency, 1, 1000000, "concurrency"); break;
        case O_PER_HOST: INT_OPT(c->per_host, 0, 1000000, "--per-host"); break;
        case O_READ_AHEAD: INT_OPT(c->read_ahead, 1, 100000000, "--read-ahead"); break;
        case O_RATE:
            if (parse_rate(optarg, &c->rate_per_s) < 0)
                return usage_error("invalid --rate '%s' (N, N/s, N/m or N/h)", optarg);
            break;
        case O_PER_HOST_RATE:
            if (parse_rate(optarg, &c->per_host_rate_per_s) < 0)
                return usage_error("invalid --per-host-rate '%s' (N, N/s, N/m or N/h)", optarg);
            break;
        case O_PER_HOST_DELAY: SECS_OPT(c->per_host_delay_s, 1, "--per-host-delay"); break;
        case 'X':
            if (!*optarg || strpbrk(optarg, " \t\r\n"))
                return usage_error("invalid method '%s'", optarg);
            o->method = optarg;
            break;
        case 'H':
            if (!strchr(optarg, ':') || strpbrk(optarg, "\r\n"))
                return usage_error("invalid header '%s' (want 'Name: value')", optarg);
            if (push(&o->headers, &o->nheaders, optarg) < 0)
                return usage_error("%s", "out of memory");
            break;
        case 'd':
            if (set_data(o, optarg, 0))
                return 2;
            break;
        case O_DATA_BINARY:
            if (set_data(o, optarg, 1))
                return 2;
            break;
        case 'A': c->user_agent = optarg; break;
        case O_HTTP1_1: c->http_version = VL_HTTP_1_1; break;
        case O_HTTP2: c->http_version = VL_HTTP_2; break;
        case O_HTTP2_PRIOR: c->http_version = VL_HTTP_2_PRIOR; break;
        case O_TIMEOUT: SECS_OPT(c->timeout_s, 0, "--timeout"); break;
        case O_CONNECT_TIMEOUT: SECS_OPT(c->connect_timeout_s, 0, "--connect-timeout"); break;
        case O_READ_TIMEOUT: SECS_OPT(c->read_timeout_s, 0, "--read-timeout"); break;
        case O_MAX_REDIRS: INT_OPT(c->max_redirs, 0, 1000, "--max-redirs"); break;
        case O_NO_DECOMPRESS: c->decompress = 0; break;
        case O_MAX_FILESIZE: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("invalid --max-filesize '%s'", optarg);
            c->max_filesize = v;
            break;
        }
        case O_CACERT: c->cacert = optarg; break;
        case 'k': c->insecure = 1; break;
        case O_RESOLVE:
            if (push(&o->resolve, &o->nresolve, optarg) < 0)
                return usage_error("%s", "out of memory");
            break;
        case O_DNS_SERVERS: c->dns_servers = optarg; break;
        case 'x': c->proxy = optarg; break;
        case O_NOPROXY: c->noproxy = optarg; break;
        case O_PROXY_CACERT: c->proxy_cacert = optarg; break;
        case O_PROXY_INSECURE: c->proxy_insecure = 1; break;
        case O_RETRY: INT_OPT(c->retry, 0, 1000, "--retry"); break;
        case O_RETRY_DELAY: SECS_OPT(c->retry_delay_s, 1, "--retry-delay"); break;
        case O_RETRY_MAX_TIME: SECS_OPT(c->retry_max_time_s, 1, "--retry-max-time"); break;
        case 'o': o->output_dir = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_RECORDS: o->records = optarg; o->json = 1; break;
        case O_RESUME: o->resume = 1; break;
        case O_FAIL: c->fail_on_http_error = 1; break;
        case 't': INT_OPT(o->threads, 0, 256, "--threads"); break;
        case O_NO_PROGRESS: o->progress = 0; break;
        case O_PROGRESS_EVERY: SECS_OPT(o->progress_every_s, 0, "--progress-every"); break;
        case O_GRACE: SECS_OPT(o->grace_s, 1, "--grace"); break;
        case O_WARC:
            if (!*optarg)
                return usage_error("%s", "--warc needs a file name");
            o->warc = optarg;
            break;
        case O_WARC_MAX_SIZE: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || v == 0)
                return usage_error("invalid --warc-max-size '%s' (bytes, > 0)", optarg);
            o->warc_max_size = v;
            break;
        }
        case O_BODY: o->body = 1; break;
        case O_BODY_MAX: {
            long v;
            if (parse_int(optarg, 1, 1L << 30, &v) < 0)
                return usage_error("invalid --body-max '%s' (1 to 1073741824 bytes)", optarg);
            o->body_max = (size_t)v;
            break;
        }
        case 'v': o->verbose = 1; break;
        case O_DIE_WITH_PARENT:
#ifdef __linux__
            o->die_with_parent = 1;
            break;
#else
            return usage_error("%s", "--die-with-parent needs Linux (prctl PR_SET_PDEATHSIG)");
#endif
        case 'h': fputs(usage_text, stdout); return 1;
        case O_VERSION:
            printf("volley %s (%s backend, llhttp, mbedTLS, c-ares, zlib)\n", vl_version(),
                   vl_loop_backend());
            return 1;
        case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    o->urls = argv + optind;
    o->nurls = argc - optind;
    if (!o->nurls && !o->input)
        return usage_error("%s", "no URLs: give URLs as arguments or a list with -i FILE");
    if (o->warc_max_size && !o->warc)
        return usage_error("%s", "--warc-max-size needs --warc FILE");
    if (o->body && !o->json)
        return usage_error("%s", "--body needs --json (or --records FILE): the body goes in "
                           "the JSON record");
    if (o->resume && !o->records)
        return usage_error("%s", "--resume needs --records FILE");
    if (o->method && strcmp(o->method, "HEAD") == 0 && (o->data || o->data_file))
        return usage_error("%s", "-X HEAD cannot send a body");
    c->resolve = o->resolve;
    c->nresolve = o->nresolve;
    /* as curl: the environment's proxies unless -x names one ('' none),
     * its no_proxy unless --noproxy is given */
    vl_client_opts_proxy_env(c);
    return 0;
}

void cli_opts_free(struct cli_opts *o)
{
    if (o->input_stream)
        fclose(o->input_stream);
    free(o->headers);
    free(o->resolve);
}
