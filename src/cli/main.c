/* main.c: the volley command.  Reads URLs (arguments, then -i FILE, as a
 * stream), fetches them with vl_gather under the concurrency window, and
 * prints one record per URL plus a summary.  Uses only volley.h. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* One loop, one client, its share of the window; -t N runs N of these. */
struct worker {
    struct input *in;
    struct cli_opts *o;
    int id;
    vl_gather_op *gather;
    int done;
    int starved;                /* the input had nothing queued at the last ask */
    pthread_t thread;
    int window;
    int per_host;               /* its share of --per-host (0 = unlimited) */
    int draws_progress;         /* this worker's loop redraws the progress line */
    char path[4096];            /* -o: the file for the current request */
    struct cli_stats st;
    int write_failed;           /* a records_write failed (said once) */
    int rc;
    char err[256];
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int out_tty;
static struct progress progress;    /* drawn and erased under out_lock */
static struct records *records;     /* --records: written under out_lock */

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* "DIR/INDEX-NAME": stable for a run and never colliding, since the index
 * is unique; NAME is the URL's last path segment, made safe. */
static void output_path(char *out, size_t outlen, const char *dir, int64_t index, const char *url)
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
    snprintf(out, outlen, "%s/%lld-%s", dir, (long long)index, name);
}

static void write_record(struct worker *w, const vl_result *r, const char *id_json);

/* A bad input line: its record says why, and nothing is fetched. */
static void error_record(struct worker *w, const struct input_item *it)
{
    vl_result r = {.index = it->index, .url = it->url ? it->url : "", .error = it->error,
                   .err = -VL_EUSAGE};
    r.timings = (vl_timings){-1, -1, -1, -1, -1, -1, -1};
    progress_started(&progress);
    write_record(w, &r, it->id_json);
}

/* The request for one item; strings point into the item (or the options),
 * which lives until its result (req->user). */
static void fill_request(struct worker *w, struct input_item *it, vl_request *req)
{
    struct cli_opts *o = w->o;
    req->url = it->url;
    req->method = it->method ? it->method : o->method;
    if (it->headers) {
        req->headers = (const char *const *)it->headers;
        req->nheaders = it->nheaders;
    } else {
        req->headers = o->headers;
        req->nheaders = o->nheaders;
    }
    if (it->has_body) {
        req->body = it->body;
        req->body_len = it->body_len;
    } else if (o->data) {
        req->body = o->data;
        req->body_len = strlen(o->data);
    } else {
        req->body_file = o->data_file;
    }
    req->index = it->index;
    req->user = it;
    if (o->output_dir) {
        output_path(w->path, sizeof(w->path), o->output_dir, it->index, it->url);
        req->output_file = w->path;
    }
}

static int next_request(void *data, vl_request *req)
{
    struct worker *w = data;
    for (;;) {
        struct input_item *it;
        int rc = input_take(w->in, w->id, &it);
        if (rc == 0)
            progress_input_ended(&progress, input_count(w->in));
        w->starved = rc == -EAGAIN;
        if (rc <= 0)
            return rc; /* the end, or -EAGAIN: the wake pipe resumes the gather */
        if (records_done(records, it->index)) {
            w->st.skipped++; /* --resume: its last record is ok */
            input_item_free(it);
            continue;
        }
        if (it->error) {
            error_record(w, it);
            input_item_free(it);
            continue;
        }
        progress_started(&progress);
        fill_request(w, it, req);
        return 1;
    }
}

/* Records are written whole, one thread at a time. */
static void on_result(const vl_result *r, void *data)
{
    struct input_item *it = r->user;
    write_record(data, r, it ? it->id_json : NULL);
    input_item_free(it);
}

static void write_record(struct worker *w, const vl_result *r, const char *id_json)
{
    w->st.urls++;
    if (r->ok)
        w->st.ok++;
    else
        w->st.failed++;
    w->st.bytes += r->bytes;
    progress_result(&progress, r);
    pthread_mutex_lock(&out_lock);
    if (out_tty)
        progress_erase(&progress); /* the record goes to the same terminal */
    size_t len;
    const char *line = out_format(r, w->o->json, id_json, &len);
    if (line && records && records_write(records, line, len) < 0 && !w->write_failed) {
        w->write_failed = 1;
        fprintf(stderr, "volley: cannot write %s: %s\n", w->o->records, strerror(errno));
    } else if (line && !records) {
        fwrite(line, 1, len, stdout);
    }
    /* a terminal, or a producer that is slower than us (tail -f | volley):
     * the record goes out now rather than when the buffer fills */
    if (out_tty || w->starved)
        fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static void on_progress_timer(vl_loop *loop, vl_timer *t, void *data)
{
    (void)loop;
    (void)data;
    pthread_mutex_lock(&out_lock);
    progress_draw(&progress);
    pthread_mutex_unlock(&out_lock);
    vl_timer_start(t, PROGRESS_PERIOD_MS);
}

/* The input thread queued more URLs (or reached the end). */
static void on_wake(vl_loop *loop, int fd, int events, void *data)
{
    struct worker *w = data;
    (void)loop;
    (void)fd;
    (void)events;
    input_drain_wake(w->in, w->id);
    vl_gather_resume(w->gather);
}

static void on_gather_done(vl_loop *loop, void *data)
{
    struct worker *w = data;
    w->done = 1;
    vl_loop_stop(loop);
}

/* vl_gather, with the input's wake pipe on the same loop. */
static int gather_all(struct worker *w, vl_loop *loop, vl_client *client)
{
    int fd = input_wake_fd(w->in, w->id);
    int rc = vl_io_start(loop, fd, VL_READ, on_wake, w);
    if (rc < 0)
        return rc;
    rc = vl_gather_start(client, w->window, next_request, w, on_result, w, on_gather_done, w,
                         &w->gather);
    while (rc == 0 && !w->done) {
        int n = vl_loop_run_once(loop, -1);
        if (n < 0)
            rc = n;
    }
    vl_io_stop(loop, fd);
    vl_gather_free(w->gather);
    w->gather = NULL;
    return rc;
}

static void trace_line(void *data, const char *line)
{
    (void)data;
    fprintf(stderr, "%s\n", line);
}

/* Does this fd count for the leak check?  Everything does, except, on
 * Linux with libkqueue (make check-kqueue), the pipes and eventfds that
 * libkqueue closes asynchronously after kqueue's own fd is closed. */
static int counts_as_ours(int dirfd, const char *name)
{
#if defined(VL_USE_KQUEUE) && defined(__linux__)
    char target[64] = "";
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n > 0 && (strncmp(target, "pipe:", 5) == 0 || strncmp(target, "anon_inode:", 11) == 0 ||
                  strcmp(target, "/dev/null") == 0))
        return 0;
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (n > 0 && strncmp(target, "socket:", 7) == 0 &&
        getsockopt(atoi(name), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX)
        return 0; /* its monitoring thread's socketpair; ours are TCP */
#else
    (void)dirfd;
    (void)name;
#endif
    return 1;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && counts_as_ours(dirfd(d), e->d_name))
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* Name every open fd, for the leak message. */
static void list_fds(FILE *f)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char target[128] = "";
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        if (readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1) < 0)
            continue;
        fprintf(f, " %s=%s", e->d_name, target);
    }
    putc('\n', f);
    closedir(d);
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
    /* per fetch: its socket, a second happy-eyeballs attempt, an idle
     * pooled connection, an output file (the same count as vl_gather's) */
    long per = 4;
    long room = ((long)rl.rlim_cur - 32) / per;
    if (room < 1)
        room = 1;
    if (o->client.concurrency > room) {
        fprintf(stderr, "volley: concurrency lowered from %d to %ld to fit the open-file limit (%ld)\n",
                o->client.concurrency, room, (long)rl.rlim_cur);
        o->client.concurrency = (int)room;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    vl_client_opts co = w->o->client;
    vl_client *client = NULL;
    vl_loop *loop = vl_loop_new();
    w->rc = -ENOMEM;
    if (!loop) {
        snprintf(w->err, sizeof(w->err), "cannot create the event loop");
        return NULL;
    }
    if (w->o->verbose)
        vl_loop_set_trace(loop, trace_line, NULL);
    co.concurrency = w->window;
    co.per_host = w->per_host;
    vl_timer *progress_timer = NULL;
    if (w->draws_progress && progress.on &&
        (progress_timer = vl_timer_new(loop, on_progress_timer, NULL)))
        vl_timer_start(progress_timer, PROGRESS_PERIOD_MS);
    w->rc = vl_client_new(loop, &co, &client, w->err, sizeof(w->err));
    if (w->rc == 0)
        w->rc = gather_all(w, loop, client);
    vl_timer_free(progress_timer);
    vl_client_free(client);
    vl_loop_free(loop);
    /* An explicit call, not a pthread key destructor: it also runs when
     * -t 1 works on the main thread, where exit() runs no destructors. */
    out_thread_end();
    return NULL;
}

static int run_cli(struct cli_opts *o)
{
    struct input *in = NULL;
    struct worker *w = NULL;
    struct cli_stats st = {0};
    struct timespec t0;
    char err[256] = "";
    int status = 1, nthreads = o->threads;

    if (o->output_dir && mkdir(o->output_dir, 0755) < 0 && errno != EEXIST)
        fprintf(stderr, "volley: cannot create %s: %s (each fetch will fail)\n", o->output_dir,
                strerror(errno));
    fit_fd_limit(o);
    if (o->client.insecure)
        fprintf(stderr, "volley: warning: --insecure: TLS certificates and host names are not verified\n");
    if (nthreads > o->client.concurrency)
        nthreads = o->client.concurrency;
    /* Each thread has its own pool: --per-host is split between them, so
     * no more threads than it allows (a share of 0 would mean unlimited). */
    if (o->client.per_host > 0 && nthreads > o->client.per_host)
        nthreads = o->client.per_host;
    if (o->verbose) {
        o->client.trace = trace_line;
        o->client.trace_data = NULL;
    }
    out_tty = isatty(fileno(stdout));
    if (!out_tty)
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (o->records) {
        struct records_fp fp;
        if (records_fingerprint(o, &fp, err, sizeof(err)) < 0 ||
            records_open(o, &fp, &records, err, sizeof(err)) < 0) {
            fprintf(stderr, "volley: %s\n", err);
            return 2;
        }
    }
    /* the queue holds two windows' worth: the loops never starve, and
     * memory stays bounded however long the list */
    in = input_open(o, o->input_json ? input_parse_json : NULL, nthreads, (size_t)o->client.concurrency * 2 + 64, err, sizeof(err));
    if (!in) {
        fprintf(stderr, "volley: %s\n", err);
        records_close(records);
        records = NULL;
        return 2;
    }
    w = calloc((size_t)nthreads, sizeof(*w));
    if (!w)
        goto out;
    progress_init(&progress, o);
    w[0].draws_progress = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nthreads; i++) {
        w[i].in = in;
        w[i].id = i;
        w[i].o = o;
        /* the window split evenly, the remainder to the first threads */
        w[i].window = o->client.concurrency / nthreads + (i < o->client.concurrency % nthreads);
        if (o->client.per_host > 0)
            w[i].per_host = o->client.per_host / nthreads + (i < o->client.per_host % nthreads);
    }
    if (nthreads == 1) {
        worker_main(&w[0]);
    } else {
        for (int i = 0; i < nthreads; i++)
            if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
                w[i].rc = -errno;
                snprintf(w[i].err, sizeof(w[i].err), "cannot start thread %d", i);
                w[i].thread = 0;
            }
        for (int i = 0; i < nthreads; i++)
            if (w[i].thread)
                pthread_join(w[i].thread, NULL);
    }
    double secs = since(&t0);
    int rc = 0;
    for (int i = 0; i < nthreads; i++) {
        st.urls += w[i].st.urls;
        st.ok += w[i].st.ok;
        st.failed += w[i].st.failed;
        st.bytes += w[i].st.bytes;
        st.skipped += w[i].st.skipped;
        if (w[i].write_failed)
            rc = -EIO;
        if (w[i].rc < 0) {
            fprintf(stderr, "volley: %s\n", w[i].err[0] ? w[i].err : vl_strerror(w[i].rc));
            rc = w[i].rc;
        }
    }
    fflush(stdout);
    progress_erase(&progress); /* every worker has ended: no lock needed */
    fprintf(stderr, "volley: %llu URLs, %llu ok, %llu failed, %llu bytes in %.3f s (%.1f req/s)\n",
            (unsigned long long)st.urls, (unsigned long long)st.ok, (unsigned long long)st.failed,
            (unsigned long long)st.bytes, secs, secs > 0 ? (double)st.urls / secs : 0.0);
    if (o->resume)
        fprintf(stderr, "volley: resume: %llu already ok in %s, not fetched again\n",
                (unsigned long long)st.skipped, o->records);
    if (rc == -VL_EUSAGE)
        status = 2;
    else
        status = (rc == 0 && st.failed == 0) ? 0 : 1;
out:
    free(w);
    input_close(in);
    records_close(records);
    records = NULL;
    return status;
}

int main(int argc, char **argv)
{
    int fds_at_start = -1;
    if (getenv("VOLLEY_CHECK_FDS")) {
        /* Count after one loop has come and gone: a backend's one-time
         * process state (libkqueue's helper fds) is not a leak of ours. */
        vl_loop_free(vl_loop_new());
        fds_at_start = count_fds();
    }
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
            fprintf(stderr, "volley: fd leak: %d open at start, %d at exit:", fds_at_start, now);
            list_fds(stderr);
            return 3;
        }
    }
    return rc;
}
