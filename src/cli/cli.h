/* cli.h: the volley command's pieces.  Uses only the public header. */
#ifndef VL_CLI_H
#define VL_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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
    int input_json;              /* --input-format json: each line a JSON object */
    const char *records;         /* --records FILE (implies json) */
    int resume;                  /* --resume */
    FILE *input_stream;          /* set by records_fingerprint for a pipe: read -i from it */
    double grace_s;              /* --grace: after SIGINT/SIGTERM, before cancelling (5) */
    double progress_every_s;     /* --progress-every: a line to stderr without a terminal (0 off) */
    const char *warc;            /* --warc FILE (warc.c) */
    uint64_t warc_max_size;      /* --warc-max-size BYTES (0 = one file) */
    int body;                    /* --body: the body in the record (needs --json) */
    size_t body_max;             /* --body-max BYTES (1 MiB) */
    int die_with_parent;         /* --die-with-parent (Linux) */
};

/* Parse argv.  Returns 0, 1 when --help/--version was handled (exit 0), or
 * 2 after printing a usage error. */
int cli_parse(int argc, char **argv, struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);

/* One request of the input list.  Every pointer is owned by the item and
 * freed by input_item_free.  A plain line sets only url and index; a JSON
 * line (input_json.c) may set the rest.  error set: the line is bad, it gets
 * an error record and is never fetched. */
struct input_item {
    int64_t index;
    char *url;
    char *method;                /* NULL: -X, or the default */
    char **headers;              /* NULL: -H as given; else the merged list */
    size_t nheaders;
    char *body;                  /* with has_body: replaces -d / --data-binary */
    size_t body_len;
    int has_body;
    char *id_json;               /* "id" re-serialised compactly, or NULL */
    char *error;                 /* "input: line 7: ..." */
};
void input_item_free(struct input_item *it);
/* Turns one cleaned input line into an item.  lineno: its 1-based line in
 * the file; index: its position among the non-blank non-comment lines.
 * NULL only when out of memory. */
typedef struct input_item *input_parse_fn(const struct cli_opts *o, const char *line,
                                          int64_t lineno, int64_t index);
/* input_json.c: --input-format json (needs jansson; input.c does not). */
struct input_item *input_parse_json(const struct cli_opts *o, const char *line, int64_t lineno,
                                    int64_t index);

/* Input: the URL list, read by a thread of its own into one bounded queue
 * per worker (queue_cap items each), each host's items to one worker.
 * parse: how -i lines become items (NULL: each line is a URL); positional
 * URLs are always plain. */
struct input;
struct input *input_open(struct cli_opts *o, input_parse_fn *parse, int nworkers,
                         size_t queue_cap, char *err, size_t errlen);
/* 1 with *item (caller frees with input_item_free); 0 at the end; -EAGAIN
 * when none is queued yet: input_wake_fd(worker) becomes readable when one is. */
int input_take(struct input *in, int worker, struct input_item **item);
int input_wake_fd(const struct input *in, int worker);
void input_drain_wake(struct input *in, int worker);
/* How many items were queued: at the end (input_take gave 0), all of them. */
int64_t input_count(struct input *in);
/* worker takes nothing more (it ended): what is queued for it, and its
 * hosts from now on, go to the next live worker. */
void input_worker_gone(struct input *in, int worker);
void input_close(struct input *in);
/* The reader's loop, without threads (the fuzz harness calls it on a
 * memory stream): each line of f, read with getline into *line (*cap its
 * size; the caller frees *line), becomes a URL unless it is blank or a '#'
 * comment: cut at a NUL, spaces and tabs trimmed in front, spaces, tabs,
 * CR and LF at the end.  emit gets each URL (valid until it returns);
 * -1 as soon as emit returns < 0, else 0 at the end of f. */
int input_read_urls(FILE *f, char **line, size_t *cap, int (*emit)(void *data, const char *url),
                    void *data);

/* cores.c: the CPUs this process may run on (-t 0), at least 1. */
int cli_cores(void);

/* records.c: --records FILE and --resume. */
struct records_fp {
    char sha256_head[65];        /* hex */
    long long size;              /* -i's size when a regular file, else -1 */
    long long head_bytes;        /* how much of -i the hash covers */
    int args;                    /* positional URLs */
};
struct records;
/* The input's fingerprint.  For a pipe, reads its head now and sets
 * o->input_stream to replay it.  0, or -1 with a message in err. */
int records_fingerprint(struct cli_opts *o, struct records_fp *fp, char *err, size_t errlen);
/* Open (and with --resume first read and repair) o->records.  0, or -1 with
 * a message (exit 2): another input's file, an existing file without
 * --resume, an unreadable one. */
int records_open(const struct cli_opts *o, const struct records_fp *fp, struct records **out,
                 char *err, size_t errlen);
/* 1 when index's last record in the file was ok (--resume skips it). */
int records_done(const struct records *r, int64_t index);
uint64_t records_ok_before(const struct records *r);
/* One whole record line, one write(2) (looping only on a short write). */
int records_write(struct records *r, const char *line, size_t len);
void records_close(struct records *r);

/* Output: one record per URL. */
struct cli_stats {
    uint64_t urls, ok, failed, bytes;
    uint64_t skipped;            /* --resume: already ok in the records file */
};
void out_record(FILE *f, const vl_result *r, int json);
/* The record of r as one line in the calling thread's buffer (valid until
 * the next call on this thread); id_json (may be NULL) is appended as
 * "id" after the contract fields.  NULL when out of memory. */
const char *out_format(const vl_result *r, int json, const char *id_json, size_t *len);
/* Length of the valid UTF-8 sequence at s (avail bytes there), or 0 if it
 * is not one (overlong, a surrogate, past U+10FFFF, cut short). */
int utf8_len(const unsigned char *s, size_t avail);
/* --body's fields of one record (body.c fills it; output.c prints it). */
struct out_body {
    int on;                      /* --body: a failed record says "body": null */
    int none;                    /* no body to show either (out of memory): null */
    int text;                    /* 1: data is UTF-8 text ("body"); 0: the bytes in base64
                                    ("body_base64") */
    const char *data;            /* not NUL-terminated; text may hold NULs */
    size_t len;
    const char *charset;         /* text: the WHATWG encoding name it was read as */
    const char *charset_source;  /* text: "header", "bom", "meta", "detected" or "default" */
    int truncated;               /* the body was longer than --body-max */
};
/* out_format with --body's fields (body may be NULL: none) after the rest. */
const char *out_format_body(const vl_result *r, int json, const char *id_json,
                            const struct out_body *body, size_t *len);
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
    atomic_ullong skipped;              /* --resume: already ok, not fetched */
    atomic_llong total;                 /* input URLs; -1 until the input ends */
    int on;                             /* stderr is a terminal, no --json, -v, --no-progress */
    int shown;                          /* a line is on the screen */
    uint64_t t0_ms;
};
void progress_init(struct progress *p, const struct cli_opts *o);
void progress_started(struct progress *p);
void progress_input_ended(struct progress *p, int64_t total);
void progress_result(struct progress *p, const vl_result *r);
void progress_skipped(struct progress *p);
void progress_draw(struct progress *p);
/* --progress-every, when stderr is no terminal: one whole line. */
void progress_report(struct progress *p);
void progress_erase(struct progress *p);
void out_json_string(FILE *f, const char *s);

/* pdeath.c: --die-with-parent.  parent: getppid() taken at the start of
 * main.  Asks the kernel for SIGKILL when the parent goes, then checks that
 * it had not already gone.  0, or -1 with a message in err. */
int cli_die_with_parent(pid_t parent, char *err, size_t errlen);

#endif
