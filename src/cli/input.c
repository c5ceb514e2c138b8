/* input.c: the URL list, read by a thread of its own so that no loop thread
 * ever blocks on a pipe or a slow disk (`tail -f log | volley -i -`).  Lines
 * go into a bounded queue (memory follows the window, not the list); a
 * worker that finds the queue empty asks to be woken through its own pipe,
 * which its loop watches. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct input {
    struct cli_opts *o;
    input_parse_fn *parse;       /* NULL: each line is a URL */
    FILE *f;
    pthread_t reader;
    int reader_started;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    struct input_item **ring;    /* queued items (owned) */
    size_t cap, head, count;
    int64_t next_index;          /* position of the next line queued */
    int64_t taken;               /* items handed to workers */
    int eof, closing;
    int nworkers;
    int (*wake)[2];              /* per worker: a pipe its loop watches */
    int *wants_wake;
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

/* Under lock: wake every worker that found the queue empty. */
static void wake_waiters(struct input *in)
{
    for (int i = 0; i < in->nworkers; i++) {
        if (in->wants_wake[i]) {
            in->wants_wake[i] = 0;
            ssize_t n = write(in->wake[i][1], "x", 1);
            (void)n; /* a full pipe already holds a wake-up */
        }
    }
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

/* Queue one item (taking ownership); -1 when the input is being closed or
 * the item could not be made (NULL: out of memory). */
static int push(struct input *in, struct input_item *it)
{
    if (!it)
        return -1;
    /* Cancellation (input_close) is meant for a reader blocked in read();
     * never inside the lock. */
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_mutex_lock(&in->lock);
    while (in->count == in->cap && !in->closing)
        pthread_cond_wait(&in->not_full, &in->lock);
    int rc = -1;
    if (!in->closing) {
        in->ring[(in->head + in->count) % in->cap] = it;
        in->count++;
        wake_waiters(in);
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
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->not_full, NULL);
    in->ring = calloc(queue_cap, sizeof(*in->ring));
    in->wake = calloc((size_t)nworkers, sizeof(*in->wake));
    in->wants_wake = calloc((size_t)nworkers, sizeof(int));
    if (!in->ring || !in->wake || !in->wants_wake) {
        snprintf(err, errlen, "out of memory");
        goto fail;
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

int input_take(struct input *in, int worker, struct input_item **item)
{
    int rc;
    pthread_mutex_lock(&in->lock);
    if (in->count) {
        *item = in->ring[in->head];
        in->head = (in->head + 1) % in->cap;
        in->count--;
        in->taken++;
        /* Wake the reader once the queue is half empty, not per URL: a
         * wake-up per URL was a context switch per request (perf: 30% of
         * the CPU in the scheduler in the many scenario). */
        if (in->count == in->cap / 2)
            pthread_cond_signal(&in->not_full);
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

int64_t input_count(struct input *in)
{
    pthread_mutex_lock(&in->lock);
    int64_t n = in->taken;
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
    for (size_t i = 0; i < in->count; i++)
        input_item_free(in->ring[(in->head + i) % in->cap]);
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
    free(in->ring);
    free(in->wake);
    free(in->wants_wake);
    free(in);
}
