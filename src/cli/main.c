/* main.c: the volley command.  Reads URLs (arguments, then -i FILE, as a
 * stream), fetches them under the concurrency window, and prints one record
 * per URL plus a summary.  Uses only volley.h.
 *
 * The window is run here with vl_fetch_start rather than vl_gather: on
 * SIGINT/SIGTERM the in-flight fetches that outlive --grace are cancelled,
 * which needs their vl_fetch handles, and vl_gather does not give them out
 * (a vl_gather_cancel would let this go back to vl_gather). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "body.h"
#include "cli.h"
#include "warc.h"

/* One request in flight: its fetch (for cancelling) and its input item. */
struct slot {
    vl_fetch *fetch;            /* NULL when the slot is free */
    struct input_item *it;      /* owned while in flight */
    struct worker *w;
    int next_free;
    struct warc_exchange *wx;   /* --warc: this slot's exchanges */
    struct body_capture body;   /* --body: this fetch's body, bounded by --body-max */
};

/* A worker's run: TAKING new requests from the input; DRAINING once the
 * input has ended or a signal came (no new requests, the in-flight ones
 * finish, or are cancelled when --grace runs out); DONE when none is left. */
enum run_state { RUN_TAKING, RUN_DRAINING, RUN_DONE };
static const char *const run_state_names[] = {"TAKING", "DRAINING", "DONE"};

/* One loop, one client, its share of the window; -t N runs N of these. */
struct worker {
    struct input *in;
    struct cli_opts *o;
    int id;
    vl_loop *loop;
    vl_client *client;
    enum run_state state;
    int paused;                 /* the input had nothing queued: wait for its wake pipe */
    int refilling;              /* inside refill (a result delivered inside it) */
    int starved;                /* the input had nothing queued at the last ask */
    pthread_t thread;
    int window;
    int read_ahead;             /* its share of --read-ahead (0 = 4 x its window) */
    int nthreads;               /* how many share the rates */
    struct slot *slots;         /* nslots of them: the read-ahead */
    int nslots;
    int stalled;                /* the read-ahead is full of fetches waiting at hosts */
    int throttled_hosts;        /* from its client's stats at the end */
    int free_slot;              /* head of the free list, -1 when full */
    int inflight;
    vl_timer *grace_timer;      /* after a signal: cancel what is still in flight */
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
static struct warc *warc;           /* --warc: its own lock (warc.c) */

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

static void write_record(struct worker *w, const vl_result *r, const char *id_json,
                         const struct out_body *body);

/* A bad input line: its record says why, and nothing is fetched. */
static void error_record(struct worker *w, const struct input_item *it)
{
    vl_result r = {.index = it->index, .url = it->url ? it->url : "", .error = it->error,
                   .err = -VL_EUSAGE};
    r.timings = (vl_timings){-1, -1, -1, -1, -1, -1, -1, -1};
    progress_started(&progress);
    write_record(w, &r, it->id_json, &(struct out_body){.on = w->o->body});
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

static int next_request(struct worker *w, vl_request *req)
{
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
            progress_skipped(&progress);
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
static void write_record(struct worker *w, const vl_result *r, const char *id_json,
                         const struct out_body *body)
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
    const char *line = out_format_body(r, w->o->json, id_json, body, &len);
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
    const struct cli_opts *o = data;
    (void)loop;
    pthread_mutex_lock(&out_lock);
    if (progress.on)
        progress_draw(&progress);
    else
        progress_report(&progress);
    pthread_mutex_unlock(&out_lock);
    vl_timer_start(t, progress.on ? PROGRESS_PERIOD_MS : (uint64_t)(o->progress_every_s * 1000));
}

/* --------------------------------------------------------- signals
 * The handler only writes a byte to a pipe that every worker's loop watches
 * (async-signal-safe; a flag alone would wait for the next epoll wake-up).
 * The pipe is never drained, so each loop sees it.  A second signal exits
 * at once: every record written so far is a whole line (one write each). */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_first;     /* the first SIGINT/SIGTERM, 0 none */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig_first)
        _exit(128 + sig);
    sig_first = sig;
    if (sig_pipe[1] >= 0) {
        ssize_t n = write(sig_pipe[1], "s", 1);
        (void)n;
    }
    errno = saved;
}

static int signals_install(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* the input thread's read() goes on */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return 0;
}

static void signals_remove(void)
{
    int fd = sig_pipe[1];
    sig_pipe[1] = -1; /* a late signal no longer writes (to a reused fd number) */
    if (fd >= 0)
        close(fd);
    if (sig_pipe[0] >= 0)
        close(sig_pipe[0]);
    sig_pipe[0] = -1;
}

/* ------------------------------------------------------------- the window */
static void refill(struct worker *w);

static void set_run_state(struct worker *w, enum run_state s)
{
    if (w->o->verbose)
        fprintf(stderr, "volley: worker %d %s -> %s (%d in flight)\n", w->id,
                run_state_names[w->state], run_state_names[s], w->inflight);
    w->state = s;
    if (s == RUN_DONE)
        vl_loop_stop(w->loop);
}

/* Draining: done once the last fetch in flight has its record. */
static void maybe_done(struct worker *w)
{
    if (w->state == RUN_DRAINING && w->inflight == 0)
        set_run_state(w, RUN_DONE);
}

static void slot_release(struct worker *w, struct slot *sl)
{
    sl->it = NULL;
    sl->fetch = NULL;
    sl->next_free = w->free_slot;
    w->free_slot = (int)(sl - w->slots);
    w->inflight--;
}

static void on_fetch_result(const vl_result *r, void *data)
{
    struct slot *sl = data;
    struct worker *w = sl->w;
    struct out_body ob = {.on = w->o->body};
    if (w->o->body && r->ok && (body_capture_final(&sl->body, r->bytes) < 0 ||
                                body_decode(&sl->body, r->content_type, &ob) < 0))
        ob = (struct out_body){.on = 1, .none = 1};
    write_record(w, r, sl->it->id_json, &ob);
    body_capture_end(&sl->body);
    input_item_free(sl->it);
    slot_release(w, sl);
    refill(w);
    maybe_done(w);
}

/* vl_fetch_start could not even start: the record says so. */
static void start_failed(struct worker *w, struct input_item *it, int rc)
{
    vl_result r = {.index = it->index, .url = it->url, .err = rc, .error = vl_strerror(rc)};
    r.timings = (vl_timings){-1, -1, -1, -1, -1, -1, -1, -1};
    write_record(w, &r, it->id_json, &(struct out_body){.on = w->o->body});
    input_item_free(it);
}

/* Read ahead past -c only when it helps: the client has room in flight
 * that no queued fetch can take (their hosts are at their limits, held by
 * a rate or a pause).  Otherwise memory stays what -c needs. */
static int want_more(struct worker *w)
{
    if (w->inflight < w->window)
        return 1;
    vl_client_stats cs;
    vl_client_stats_get(w->client, &cs);
    return cs.in_flight < cs.max_in_flight && !cs.runnable;
}

static void refill(struct worker *w)
{
    if (w->refilling)
        return; /* a result delivered inside refill: the outer loop goes on */
    w->refilling = 1;
    while (w->state == RUN_TAKING && !w->paused && w->free_slot >= 0 && want_more(w)) {
        vl_request req = {0};
        int rc = next_request(w, &req);
        if (rc == -EAGAIN) {
            w->paused = 1;
            break;
        }
        if (rc <= 0) {
            set_run_state(w, RUN_DRAINING);
            break;
        }
        struct slot *sl = &w->slots[w->free_slot];
        struct input_item *it = req.user;
        w->free_slot = sl->next_free;
        sl->it = it;
        req.user = NULL;
        if (w->o->body) { /* with -o too: the library hands the body to both */
            body_capture_begin(&sl->body, w->o->body_max);
            req.on_body = body_capture_add;
            req.body_data = &sl->body;
        }
        w->inflight++;
        if (sl->wx) {
            req.on_wire = warc_on_wire;
            req.wire_data = sl->wx;
        }
        rc = vl_fetch_start(w->client, &req, on_fetch_result, sl, &sl->fetch);
        if (rc < 0) {
            slot_release(w, sl);
            start_failed(w, it, rc);
        }
    }
    w->refilling = 0;
    /* bounded memory wins over reading on: say so once per stall */
    vl_client_stats cs;
    vl_client_stats_get(w->client, &cs);
    int stalled = w->state == RUN_TAKING && w->free_slot < 0 && cs.in_flight < cs.max_in_flight &&
                  !cs.runnable;
    if (stalled && !w->stalled && w->o->verbose)
        fprintf(stderr, "volley: worker %d: read-ahead full: %d requests started, %d in flight "
                "(of %d), %d wait for their hosts; reading no further until one is done\n",
                w->id, w->inflight, cs.in_flight, cs.max_in_flight, cs.queued);
    w->stalled = stalled;
    maybe_done(w);
}

/* The input thread queued more URLs (or reached the end). */
static void on_wake(vl_loop *loop, int fd, int events, void *data)
{
    struct worker *w = data;
    (void)loop;
    (void)fd;
    (void)events;
    input_drain_wake(w->in, w->id);
    w->paused = 0;
    refill(w);
}

static void on_grace_over(vl_loop *loop, vl_timer *t, void *data)
{
    struct worker *w = data;
    (void)loop;
    (void)t;
    /* each cancelled fetch's record comes from the loop's deferred phase */
    for (int i = 0; i < w->nslots; i++)
        if (w->slots[i].fetch)
            vl_fetch_cancel(w->slots[i].fetch);
}

/* SIGINT/SIGTERM: take nothing new; --grace for what is in flight. */
static void on_signal_pipe(vl_loop *loop, int fd, int events, void *data)
{
    struct worker *w = data;
    (void)events;
    vl_io_stop(loop, fd); /* the byte stays in the pipe for the other loops */
    if (w->state == RUN_TAKING)
        set_run_state(w, RUN_DRAINING);
    if (w->state == RUN_DRAINING && !vl_timer_active(w->grace_timer))
        vl_timer_start(w->grace_timer, (uint64_t)(w->o->grace_s * 1000.0 + 0.5));
    maybe_done(w);
}

/* The whole run of one worker: its window, the input's wake pipe and the
 * signal pipe on its loop. */
static int run_window(struct worker *w)
{
    int wake_fd = input_wake_fd(w->in, w->id);
    int rc = -ENOMEM;
    /* every request started, in flight or waiting in its host's queue:
     * the client keeps at most -c of them in flight (its scheduler) */
    w->nslots = w->read_ahead > 0 ? w->read_ahead : 4 * w->window;
    w->slots = calloc((size_t)w->nslots, sizeof(*w->slots));
    w->grace_timer = vl_timer_new(w->loop, on_grace_over, w);
    if (!w->slots || !w->grace_timer)
        goto out;
    for (int i = 0; i < w->nslots; i++) {
        w->slots[i].w = w;
        w->slots[i].next_free = i + 1 < w->nslots ? i + 1 : -1;
        if (warc && !(w->slots[i].wx = warc_exchange_new(warc)))
            goto out;
    }
    w->free_slot = 0;
    if ((rc = vl_io_start(w->loop, wake_fd, VL_READ, on_wake, w)) < 0 ||
        (rc = vl_io_start(w->loop, sig_pipe[0], VL_READ, on_signal_pipe, w)) < 0)
        goto out;
    w->state = RUN_TAKING;
    refill(w);
    while (w->state != RUN_DONE) {
        int n = vl_loop_run_once(w->loop, -1);
        if (n < 0) {
            rc = n;
            break;
        }
    }
out:
    /* an early error with fetches in flight: cancel them and deliver */
    if (w->slots)
        on_grace_over(w->loop, NULL, w);
    while (w->inflight > 0 && vl_loop_run_once(w->loop, 0) >= 0)
        ;
    vl_io_stop(w->loop, wake_fd);
    if (sig_pipe[0] >= 0)
        vl_io_stop(w->loop, sig_pipe[0]);
    vl_timer_free(w->grace_timer);
    w->grace_timer = NULL;
    for (int i = 0; w->slots && i < w->nslots; i++) {
        warc_exchange_free(w->slots[i].wx);
        body_capture_free(&w->slots[i].body);
    }
    free(w->slots);
    w->slots = NULL;
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
    long per = o->warc ? 6 : 4; /* --warc: two spool files */
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
    co.read_ahead = w->read_ahead;
    /* each host's URLs go to one thread (input.c): its limits (--per-host,
     * --per-host-rate, --per-host-delay) hold as given; the run-wide --rate
     * is split evenly, so the sum never exceeds it */
    co.rate_per_s /= w->nthreads;
    vl_timer *progress_timer = NULL;
    /* the live line on a terminal, else --progress-every's lines */
    int every = !progress.on && w->o->progress_every_s > 0;
    if (w->draws_progress && (progress.on || every) &&
        (progress_timer = vl_timer_new(loop, on_progress_timer, w->o)))
        vl_timer_start(progress_timer, progress.on ? PROGRESS_PERIOD_MS
                                                   : (uint64_t)(w->o->progress_every_s * 1000));
    w->rc = vl_client_new(loop, &co, &client, w->err, sizeof(w->err));
    w->loop = loop;
    w->client = client;
    if (w->rc == 0)
        w->rc = run_window(w);
    vl_timer_free(progress_timer);
    if (client) {
        vl_client_stats cs;
        vl_client_stats_get(client, &cs);
        w->throttled_hosts = cs.throttled_hosts;
    }
    vl_client_free(client);
    vl_loop_free(loop);
    input_worker_gone(w->in, w->id); /* what is still queued here goes to another */
    if (w->o->verbose)
        fprintf(stderr, "volley: worker %d: %llu records, %llu skipped\n", w->id,
                (unsigned long long)w->st.urls, (unsigned long long)w->st.skipped);
    /* An explicit call, not a pthread key destructor: it also runs when
     * -t 1 works on the main thread, where exit() runs no destructors. */
    out_thread_end();
    body_thread_end();
    return NULL;
}

static int run_cli(struct cli_opts *o)
{
    struct input *in = NULL;
    struct worker *w = NULL;
    struct cli_stats st = {0};
    int throttled_hosts = 0;
    struct timespec t0;
    char err[256] = "";
    int status = 1, nthreads = o->threads;

    if (o->output_dir && mkdir(o->output_dir, 0755) < 0 && errno != EEXIST)
        fprintf(stderr, "volley: cannot create %s: %s (each fetch will fail)\n", o->output_dir,
                strerror(errno));
    fit_fd_limit(o);
    if (o->client.insecure)
        fprintf(stderr, "volley: warning: --insecure: TLS certificates and host names are not verified\n");
    if (nthreads == 0)
        nthreads = cli_cores();
    if (nthreads > o->client.concurrency)
        nthreads = o->client.concurrency;
    if (o->verbose)
        fprintf(stderr, "volley: %d thread%s (-t %d%s), each host in one of them\n", nthreads,
                nthreads == 1 ? "" : "s", o->threads,
                o->threads == 0 ? ": one per core this process may use" : "");
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
    if (o->warc && warc_open(o->warc, o->warc_max_size, &warc, err, sizeof(err)) < 0) {
        fprintf(stderr, "volley: %s\n", err);
        records_close(records);
        records = NULL;
        return 2;
    }
    /* each worker's queue holds two of its windows: the loops never starve,
     * and memory stays bounded however long the list */
    in = input_open(o, o->input_json ? input_parse_json : NULL, nthreads,
                    (size_t)(o->client.concurrency / nthreads + 1) * 2 + 64, err, sizeof(err));
    if (!in) {
        fprintf(stderr, "volley: %s\n", err);
        records_close(records);
        records = NULL;
        warc_close(warc);
        warc = NULL;
        return 2;
    }
    w = calloc((size_t)nthreads, sizeof(*w));
    if (!w || signals_install() < 0)
        goto out;
    progress_init(&progress, o);
    w[0].draws_progress = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nthreads; i++) {
        w[i].in = in;
        w[i].id = i;
        w[i].o = o;
        w[i].nthreads = nthreads;
        /* the window split evenly, the remainder to the first threads */
        w[i].window = o->client.concurrency / nthreads + (i < o->client.concurrency % nthreads);
        if (o->client.read_ahead > 0)
            w[i].read_ahead = o->client.read_ahead / nthreads +
                              (i < o->client.read_ahead % nthreads);
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
        throttled_hosts += w[i].throttled_hosts;
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
    if (throttled_hosts)
        fprintf(stderr, "volley: %d host%s slowed down by 429/503 answers\n", throttled_hosts,
                throttled_hosts == 1 ? "" : "s");
    if (o->resume)
        fprintf(stderr, "volley: resume: %llu already ok in %s, not fetched again\n",
                (unsigned long long)st.skipped, o->records);
    if (rc == -VL_EUSAGE)
        status = 2;
    else
        status = (rc == 0 && st.failed == 0) ? 0 : 1;
    if (sig_first) {
        fprintf(stderr, "volley: stopped by %s: URLs not started have no record (--resume "
                "fetches them)\n", sig_first == SIGINT ? "SIGINT" : "SIGTERM");
        status = 128 + sig_first;
    }
out:
    signals_remove();
    free(w);
    input_close(in);
    records_close(records);
    records = NULL;
    if (warc_close(warc) < 0 && status == 0)
        status = 1; /* said on stderr */
    warc = NULL;
    return status;
}

int main(int argc, char **argv)
{
    pid_t parent_at_start = getppid(); /* --die-with-parent compares with it */
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
    if (rc == 0 && o.die_with_parent) {
        char err[160];
        if (cli_die_with_parent(parent_at_start, err, sizeof(err)) < 0) {
            fprintf(stderr, "volley: %s\n", err);
            rc = 2;
        }
    }
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
