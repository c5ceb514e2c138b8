/* main.c: the volley command.  Reads URLs (arguments, then -i FILE, as a
 * stream), fetches them with vl_gather under the concurrency window, and
 * prints one record per URL plus a summary.  Uses only volley.h. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct input {
    struct cli_opts *o;
    int argi;
    FILE *f;
    char *line;
    size_t cap;
    int64_t index;
    char path[4096];            /* -o: the file for the current request */
};

struct run {
    struct cli_opts *o;
    FILE *out;
    int out_tty;
    struct cli_stats st;
    struct timespec t0;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Trim spaces and CR/LF; NULL for blank lines and # comments. */
static char *clean_line(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return (n == 0 || s[0] == '#') ? NULL : s;
}

/* "DIR/INDEX-NAME": stable for a run and never colliding, since the index
 * is unique; NAME is the URL's last path segment, made safe. */
static void output_path(struct input *in, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *path = p + strcspn(p, "/?#");
    size_t plen = strcspn(path, "?#");
    const char *seg = path;
    for (size_t i = 0; i < plen; i++)
        if (path[i] == '/')
            seg = path + i + 1;
    size_t slen = (size_t)(path + plen - seg);
    char name[101];
    size_t n = 0;
    for (size_t i = 0; i < slen && n < sizeof(name) - 1; i++) {
        char c = seg[i];
        int safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == '_';
        name[n++] = safe ? c : '_';
    }
    name[n] = '\0';
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        snprintf(name, sizeof(name), "index");
    snprintf(in->path, sizeof(in->path), "%s/%lld-%s", in->o->output_dir, (long long)in->index, name);
}

static int next_request(void *data, vl_request *req)
{
    struct input *in = data;
    struct cli_opts *o = in->o;
    const char *url = NULL;
    if (in->argi < o->nurls) {
        url = o->urls[in->argi++];
    } else {
        while (in->f && getline(&in->line, &in->cap, in->f) >= 0)
            if ((url = clean_line(in->line)))
                break;
        if (!url)
            return 0;
    }
    req->url = url;
    req->method = o->method;
    req->headers = o->headers;
    req->nheaders = o->nheaders;
    if (o->data) {
        req->body = o->data;
        req->body_len = strlen(o->data);
    }
    req->body_file = o->data_file;
    req->index = in->index;
    if (o->output_dir) {
        output_path(in, url);
        req->output_file = in->path;
    }
    in->index++;
    return 1;
}

static void on_result(const vl_result *r, void *data)
{
    struct run *run = data;
    run->st.urls++;
    if (r->ok)
        run->st.ok++;
    else
        run->st.failed++;
    run->st.bytes += r->bytes;
    out_record(run->out, r, run->o->json);
    if (run->out_tty)
        fflush(run->out);
}

static void trace_line(void *data, const char *line)
{
    (void)data;
    fprintf(stderr, "%s\n", line);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* Raise the soft fd limit to the hard one and keep the window below it:
 * running out of fds must be an error result, never a hang. */
static void fit_fd_limit(struct cli_opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        if (want == RLIM_INFINITY || want > (1u << 20))
            want = 1u << 20;
        if (want > rl.rlim_cur) {
            rl.rlim_cur = want;
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* per fetch: its socket, a second happy-eyeballs attempt, an output file */
    long per = o->output_dir ? 3 : 2;
    long room = ((long)rl.rlim_cur - 32) / per;
    if (room < 1)
        room = 1;
    if (o->client.concurrency > room) {
        fprintf(stderr, "volley: concurrency lowered from %d to %ld to fit the open-file limit (%ld)\n",
                o->client.concurrency, room, (long)rl.rlim_cur);
        o->client.concurrency = (int)room;
    }
}

static int run_cli(struct cli_opts *o)
{
    struct input in = {.o = o};
    struct run run = {.o = o, .out = stdout};
    vl_loop *loop = NULL;
    vl_client *client = NULL;
    char err[256] = "";
    int status = 1;

    if (o->input) {
        in.f = strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "re");
        if (!in.f) {
            fprintf(stderr, "volley: cannot open input %s: %s\n", o->input, strerror(errno));
            return 2;
        }
    }
    if (o->output_dir && mkdir(o->output_dir, 0755) < 0 && errno != EEXIST)
        fprintf(stderr, "volley: cannot create %s: %s (each fetch will fail)\n", o->output_dir,
                strerror(errno));
    fit_fd_limit(o);
    if (o->verbose) {
        o->client.trace = trace_line;
        o->client.trace_data = NULL;
    }
    loop = vl_loop_new();
    if (!loop) {
        fprintf(stderr, "volley: cannot create the event loop\n");
        goto out;
    }
    if (o->verbose)
        vl_loop_set_trace(loop, trace_line, NULL);
    int rc = vl_client_new(loop, &o->client, &client, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "volley: %s\n", err[0] ? err : vl_strerror(rc));
        status = rc == -VL_EUSAGE ? 2 : 1;
        goto out;
    }
    run.out_tty = isatty(fileno(stdout));
    if (!run.out_tty)
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    clock_gettime(CLOCK_MONOTONIC, &run.t0);
    rc = vl_gather(client, o->client.concurrency, next_request, &in, on_result, &run);
    double secs = since(&run.t0);
    fflush(stdout);
    fprintf(stderr, "volley: %llu URLs, %llu ok, %llu failed, %llu bytes in %.3f s (%.1f req/s)\n",
            (unsigned long long)run.st.urls, (unsigned long long)run.st.ok,
            (unsigned long long)run.st.failed, (unsigned long long)run.st.bytes, secs,
            secs > 0 ? (double)run.st.urls / secs : 0.0);
    if (rc < 0)
        fprintf(stderr, "volley: %s\n", vl_strerror(rc));
    status = (rc == 0 && run.st.failed == 0) ? 0 : 1;
out:
    vl_client_free(client);
    vl_loop_free(loop);
    if (in.f && in.f != stdin)
        fclose(in.f);
    free(in.line);
    return status;
}

int main(int argc, char **argv)
{
    int fds_at_start = getenv("VOLLEY_CHECK_FDS") ? count_fds() : -1;
    struct cli_opts o;
    signal(SIGPIPE, SIG_IGN);
    int rc = cli_parse(argc, argv, &o);
    if (rc == 0)
        rc = run_cli(&o);
    else if (rc == 1)
        rc = 0;
    cli_opts_free(&o);
    if (fds_at_start >= 0) {
        int now = count_fds();
        if (now > fds_at_start) {
            fprintf(stderr, "volley: fd leak: %d open at start, %d at exit\n", fds_at_start, now);
            return 3;
        }
    }
    return rc;
}
