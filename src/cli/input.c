/* input.c: the URL list, read by a thread of its own so that no loop thread
 * ever blocks on a pipe or a slow disk (`tail -f log | volley -i -`).  Lines
 * go into bounded queues (memory follows the window, not the list), one per
 * worker: with -t N each item goes to the worker that owns its host (a hash
 * of the host name, see owner_of), so a host's pool, TLS sessions, limits
 * and DNS answers live in one loop.  A worker that finds its queue empty
 * asks to be woken through its own pipe, which its loop watches.
 *
 * The reader blocks while the queue it must fill is full, so one busy host
 * holds up the others' items: read-ahead stays bounded whatever the mix, and
 * it cannot deadlock, since that queue's worker takes from it without
 * waiting on anyone (its fetches end by their own deadlines), and a worker
 * that stops (input_worker_gone) hands its queue and its hosts to the next
 * live one. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* One worker's queue of items (owned), a ring of cap. */
struct ring {
    struct input_item **items;
    size_t head, count;
};

struct input {
    struct cli_opts *o;
    input_parse_fn *parse;       /* NULL: each line is a URL */
    FILE *f;
    pthread_t reader;
    int reader_started;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    struct ring *rings;          /* per worker */
    size_t cap;                  /* of each ring */
    int reader_waits;            /* the ring the reader waits to have room in, -1 none */
    int64_t next_index;          /* position of the next line queued */
    int64_t pushed;              /* items queued so far (all of them at eof) */
    int eof, closing;
    int nworkers;
    int (*wake)[2];              /* per worker: a pipe its loop watches */
    int *wants_wake;
    int *gone;                   /* per worker: it takes no more (input_worker_gone) */
    char *line;                  /* the reader's getline buffer */
};

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

/* Under lock: wake worker i if it found its queue empty. */
static void wake_one(struct input *in, int i)
{
    if (in->wants_wake[i]) {
        in->wants_wake[i] = 0;
        ssize_t n = write(in->wake[i][1], "x", 1);
        (void)n; /* a full pipe already holds a wake-up */
    }
}

/* Under lock: wake every worker that found its queue empty. */
static void wake_waiters(struct input *in)
{
    for (int i = 0; i < in->nworkers; i++)
        wake_one(in, i);
}

/* FNV-1a, 64 bits: stable across runs and machines, so a host always lands
 * on the same worker for a given -t. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* The worker whose hosts include this item's, -1 for any worker (a bad
 * line, a URL that does not parse: it fails with its own error wherever it
 * goes).  The host is the one the fetch will use (vl_url_host), so every
 * spelling of a name is one host; names longer than the buffer are told
 * apart by their first 255 bytes, the same for each spelling. */
static int home_of(const struct input *in, const struct input_item *it)
{
    char host[256];
    if (in->nworkers == 1)
        return 0;
    if (it->error || vl_url_host(it->url, host, sizeof(host)) < 0)
        return -1;
    return (int)(fnv1a(host) % (uint64_t)in->nworkers);
}

/* Under lock: the live worker that takes home's items: home itself, else
 * the next live one after it (the same one for all of home's hosts); for
 * -1, the live one with the shortest queue.  -1 when none is live. */
static int owner_of(const struct input *in, int home)
{
    if (home < 0) {
        int best = -1;
        for (int i = 0; i < in->nworkers; i++)
            if (!in->gone[i] && (best < 0 || in->rings[i].count < in->rings[best].count))
                best = i;
        return best;
    }
    for (int k = 0; k < in->nworkers; k++) {
        int i = (home + k) % in->nworkers;
        if (!in->gone[i])
            return i;
    }
    return -1;
}

static struct input_item *ring_pop(struct input *in, int i)
{
    struct ring *r = &in->rings[i];
    struct input_item *it = r->items[r->head];
    r->head = (r->head + 1) % in->cap;
    r->count--;
    return it;
}

void input_item_free(struct input_item *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->nheaders; i++)
        free(it->headers[i]);
    free(it->headers);
    free(it->url);
    free(it->method);
    free(it->body);
    free(it->id_json);
    free(it->error);
    free(it);
}

static struct input_item *plain_item(const char *url, int64_t index)
{
    struct input_item *it = calloc(1, sizeof(*it));
    if (it && !(it->url = strdup(url))) {
        free(it);
        return NULL;
    }
    if (it)
        it->index = index;
    return it;
}

/* Queue one item (taking ownership) on its owner's ring, waiting while
 * that ring is full; -1 when the input is being closed or the item could
 * not be made (NULL: out of memory). */
static int push(struct input *in, struct input_item *it)
{
    if (!it)
        return -1;
    int home = home_of(in, it); /* parsing the URL outside the lock */
    /* Cancellation (input_close) is meant for a reader blocked in read();
     * never inside the lock. */
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_mutex_lock(&in->lock);
    int to;
    /* every worker gone (they stopped early): wait for input_close */
    while ((to = owner_of(in, home)) < 0 || in->rings[to].count == in->cap) {
        if (in->closing)
            break;
        in->reader_waits = to;
        pthread_cond_wait(&in->not_full, &in->lock);
    }
    in->reader_waits = -1;
    int rc = -1;
    if (!in->closing) {
        struct ring *r = &in->rings[to];
        r->items[(r->head + r->count) % in->cap] = it;
        r->count++;
        in->pushed++;
        wake_one(in, to);
        rc = 0;
    }
    pthread_mutex_unlock(&in->lock);
    if (rc < 0)
        input_item_free(it);
    pthread_setcancelstate(old, NULL);
    return rc;
}

/* The reading loop of input_read_urls, with each line's 1-based number. */
static int read_lines(FILE *f, char **line, size_t *cap,
                      int (*emit)(void *data, const char *url, int64_t lineno), void *data)
{
    int64_t lineno = 0;
    while (getline(line, cap, f) >= 0) {
        char *u = clean_line(*line);
        lineno++;
        if (u && emit(data, u, lineno) < 0)
            return -1;
    }
    return 0;
}

struct plain_emit {
    int (*emit)(void *data, const char *url);
    void *data;
};

static int emit_plain(void *data, const char *url, int64_t lineno)
{
    struct plain_emit *pe = data;
    (void)lineno;
    return pe->emit(pe->data, url);
}

int input_read_urls(FILE *f, char **line, size_t *cap, int (*emit)(void *data, const char *url),
                    void *data)
{
    struct plain_emit pe = {emit, data};
    return read_lines(f, line, cap, emit_plain, &pe);
}

/* One line of -i: a plain URL or, with a parser, whatever it makes of it. */
static int push_line(void *data, const char *line, int64_t lineno)
{
    struct input *in = data;
    int64_t index = in->next_index++;
    if (in->parse)
        return push(in, in->parse(in->o, line, lineno, index));
    return push(in, plain_item(line, index));
}

static void *reader_main(void *arg)
{
    struct input *in = arg;
    size_t cap = 0;
    int stop = 0;
    /* The line buffer lives in *in, so input_close frees it even when it
     * had to cancel this thread inside getline. */
    for (int i = 0; i < in->o->nurls && !stop; i++)
        stop = push(in, plain_item(in->o->urls[i], in->next_index++)) < 0;
    if (!stop && in->f)
        read_lines(in->f, &in->line, &cap, push_line, in);
    pthread_mutex_lock(&in->lock);
    in->eof = 1;
    wake_waiters(in);
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

struct input *input_open(struct cli_opts *o, input_parse_fn *parse, int nworkers,
                         size_t queue_cap, char *err, size_t errlen)
{
    struct input *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->o = o;
    in->parse = parse;
    in->nworkers = nworkers;
    in->cap = queue_cap;
    in->reader_waits = -1;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->not_full, NULL);
    in->rings = calloc((size_t)nworkers, sizeof(*in->rings));
    in->wake = calloc((size_t)nworkers, sizeof(*in->wake));
    in->wants_wake = calloc((size_t)nworkers, sizeof(int));
    in->gone = calloc((size_t)nworkers, sizeof(int));
    if (!in->rings || !in->wake || !in->wants_wake || !in->gone) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nworkers; i++) {
        if (!(in->rings[i].items = calloc(queue_cap, sizeof(*in->rings[i].items)))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < nworkers; i++)
        in->wake[i][0] = in->wake[i][1] = -1;
    for (int i = 0; i < nworkers; i++) {
        if (pipe2(in->wake[i], O_CLOEXEC | O_NONBLOCK) < 0) {
            snprintf(err, errlen, "pipe: %s", strerror(errno));
            goto fail;
        }
    }
    if (o->input_stream) {
        in->f = o->input_stream; /* ours to close from now on */
        o->input_stream = NULL;
    } else if (o->input) {
        in->f = strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "re");
        if (!in->f) {
            snprintf(err, errlen, "cannot open input %s: %s", o->input, strerror(errno));
            goto fail;
        }
    }
    if (pthread_create(&in->reader, NULL, reader_main, in) != 0) {
        snprintf(err, errlen, "cannot start the input thread");
        goto fail;
    }
    in->reader_started = 1;
    return in;
fail:
    input_close(in);
    return NULL;
}

/* Under lock: worker's next item, from its own ring or else from the ring
 * of a gone worker whose hosts it inherited; NULL when none is queued. */
static struct input_item *take_locked(struct input *in, int worker)
{
    int from = -1;
    if (in->rings[worker].count)
        from = worker;
    for (int i = 0; from < 0 && i < in->nworkers; i++)
        if (in->gone[i] && in->rings[i].count && owner_of(in, i) == worker)
            from = i;
    if (from < 0)
        return NULL;
    struct input_item *it = ring_pop(in, from);
    /* Wake the reader once the ring it waits on is half empty, not per URL:
     * a wake-up per URL was a context switch per request (perf: 30% of the
     * CPU in the scheduler in the many scenario). */
    if (in->reader_waits == from && in->rings[from].count <= in->cap / 2) {
        in->reader_waits = -1;
        pthread_cond_signal(&in->not_full);
    }
    return it;
}

int input_take(struct input *in, int worker, struct input_item **item)
{
    int rc;
    pthread_mutex_lock(&in->lock);
    if ((*item = take_locked(in, worker))) {
        rc = 1;
    } else if (in->eof) {
        rc = 0;
    } else {
        in->wants_wake[worker] = 1;
        rc = -EAGAIN;
    }
    pthread_mutex_unlock(&in->lock);
    return rc;
}

void input_worker_gone(struct input *in, int worker)
{
    pthread_mutex_lock(&in->lock);
    in->gone[worker] = 1;
    /* its queue and its hosts go to the next live worker; the reader,
     * if it waits on this one's ring, picks its new target */
    int heir = owner_of(in, worker);
    if (heir >= 0 && in->rings[worker].count) {
        in->wants_wake[heir] = 1;
        wake_one(in, heir);
    }
    pthread_cond_broadcast(&in->not_full);
    pthread_mutex_unlock(&in->lock);
}

int64_t input_count(struct input *in)
{
    pthread_mutex_lock(&in->lock);
    int64_t n = in->pushed;
    pthread_mutex_unlock(&in->lock);
    return n;
}

int input_wake_fd(const struct input *in, int worker) { return in->wake[worker][0]; }

void input_drain_wake(struct input *in, int worker)
{
    char buf[64];
    while (read(in->wake[worker][0], buf, sizeof(buf)) > 0)
        ;
}

void input_close(struct input *in)
{
    if (!in)
        return;
    if (in->reader_started) {
        pthread_mutex_lock(&in->lock);
        int done = in->eof;
        in->closing = 1;
        pthread_cond_broadcast(&in->not_full);
        pthread_mutex_unlock(&in->lock);
        /* A reader still blocked in read() (the workers stopped early) is
         * cancelled there: getline is a cancellation point. */
        if (!done)
            pthread_cancel(in->reader);
        pthread_join(in->reader, NULL);
    }
    for (int i = 0; in->rings && i < in->nworkers; i++) {
        while (in->rings[i].items && in->rings[i].count)
            input_item_free(ring_pop(in, i));
        free(in->rings[i].items);
    }
    for (int i = 0; in->wake && i < in->nworkers; i++) {
        if (in->wake[i][0] >= 0)
            close(in->wake[i][0]);
        if (in->wake[i][1] >= 0)
            close(in->wake[i][1]);
    }
    if (in->f && in->f != stdin)
        fclose(in->f);
    pthread_cond_destroy(&in->not_full);
    pthread_mutex_destroy(&in->lock);
    free(in->line);
    free(in->rings);
    free(in->wake);
    free(in->wants_wake);
    free(in->gone);
    free(in);
}
