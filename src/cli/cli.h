/* cli.h: the volley command's pieces.  Uses only the public header. */
#ifndef VL_CLI_H
#define VL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "volley.h"

struct cli_opts {
    vl_client_opts client;
    const char *input;           /* -i FILE or "-" */
    char **urls;                 /* positional URLs */
    int nurls;
    const char *method;
    const char **headers;
    size_t nheaders;
    const char *data;            /* -d STRING */
    const char *data_file;       /* -d @FILE / --data-binary @FILE */
    const char *output_dir;
    int json;
    int verbose;
    int threads;
    int progress;
    const char **resolve;        /* collected --resolve values */
    size_t nresolve;
};

/* Parse argv.  Returns 0, 1 when --help/--version was handled (exit 0), or
 * 2 after printing a usage error. */
int cli_parse(int argc, char **argv, struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);

/* Input: the URL list, read by a thread of its own into a bounded queue. */
struct input;
struct input *input_open(struct cli_opts *o, int nworkers, size_t queue_cap, char *err,
                         size_t errlen);
/* 1 with *url (caller frees) and its index; 0 at the end; -EAGAIN when none
 * is queued yet: input_wake_fd(worker) becomes readable when one is. */
int input_take(struct input *in, int worker, char **url, int64_t *index);
int input_wake_fd(const struct input *in, int worker);
void input_drain_wake(struct input *in, int worker);
int64_t input_count(struct input *in);
void input_close(struct input *in);
/* The reader's loop, without threads (the fuzz harness calls it on a
 * memory stream): each line of f, read with getline into *line (*cap its
 * size; the caller frees *line), becomes a URL unless it is blank or a '#'
 * comment: cut at a NUL, spaces and tabs trimmed in front, spaces, tabs,
 * CR and LF at the end.  emit gets each URL (valid until it returns);
 * -1 as soon as emit returns < 0, else 0 at the end of f. */
int input_read_urls(FILE *f, char **line, size_t *cap, int (*emit)(void *data, const char *url),
                    void *data);

/* Output: one record per URL. */
struct cli_stats {
    uint64_t urls, ok, failed, bytes;
};
void out_record(FILE *f, const vl_result *r, int json);
/* Free the calling thread's record buffer; every thread that called
 * out_record calls this before it ends (a thread-local is not freed with
 * its thread).  out_record may be called again afterwards. */
void out_thread_end(void);

/* The progress line on a terminal (progress.c).  Counters are updated from
 * any worker thread; draw and erase only under the output lock. */
#include <stdatomic.h>
#define PROGRESS_PERIOD_MS 100          /* at most 10 redraws a second */
struct progress {
    atomic_ullong started, done, failed, bytes;
    atomic_llong total;                 /* input URLs; -1 until the input ends */
    int on;                             /* stderr is a terminal, no --json, -v, --no-progress */
    int shown;                          /* a line is on the screen */
    uint64_t t0_ms;
};
void progress_init(struct progress *p, const struct cli_opts *o);
void progress_started(struct progress *p);
void progress_input_ended(struct progress *p, int64_t total);
void progress_result(struct progress *p, const vl_result *r);
void progress_draw(struct progress *p);
void progress_erase(struct progress *p);
void out_json_string(FILE *f, const char *s);

#endif
